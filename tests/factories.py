"""Small hand-made VENUS rows for unit tests (the synthetic generator makes realistic ones).

``make_row()`` returns one valid row in the canonical format of ``venus_analysis.schema``
(nested columns as dicts of lists), small enough to corrupt field by field in tests.
"""

from __future__ import annotations

import copy

import numpy as np

from venus_analysis import schema


def make_row(
    n_utterances: int = 3,
    frames_per_utterance: int = 30,
    seed: int = 0,
    video_id: str = "abcDEF12345",
    segment_id: int = 0,
    face_dim: int = schema.FACE_DIM,
    harmful: tuple[int, ...] = (),
) -> dict:
    """One valid VENUS row: alternating speakers, 3 words per utterance, 25 fps frames.

    Utterance ``i`` lasts ``frames_per_utterance`` frames and is followed by a 0.4 s pause.
    Ids in ``harmful`` are left out of the conversation (and their frames) and listed in
    ``harmful_utterance_id``.
    """
    rng = np.random.default_rng(seed)
    conv = {k: [] for k in ("utterance_id", "speaker", "text", "start_time", "end_time", "words")}
    face = {"utt_id": [], "frame": [], "features": []}
    body = {"utt_id": [], "frame": [], "features": []}
    t = 1.0
    for uid in range(n_utterances):
        dur = frames_per_utterance / schema.FPS
        start, end = round(t, 2), round(t + dur, 2)
        t = end + 0.4
        if uid in harmful:
            continue
        words = ["hello", "there", f"w{uid}"]
        edges = np.linspace(start, end, len(words) + 1)
        conv["utterance_id"].append(uid)
        conv["speaker"].append(uid % 2)
        conv["text"].append(" ".join(words))
        conv["start_time"].append(start)
        conv["end_time"].append(end)
        conv["words"].append(
            {
                "word": words,
                "start_time": [float(x) for x in edges[:-1]],
                "end_time": [float(x) for x in edges[1:]],
            }
        )
        first = int(start * schema.FPS)
        for f in range(first, first + frames_per_utterance):
            for track, dim in ((face, face_dim), (body, schema.BODY_DIM)):
                track["utt_id"].append(str(uid))
                track["frame"].append(f"{f}_{uid % 2}")
                feats = (0.05 * rng.standard_normal(dim)).astype(np.float32)
                if track is body:
                    feats[schema.BODY_ROOT] = 0.0  # the root pose is constant in VENUS
                track["features"].append([float(x) for x in feats])
    return {
        "video_id": video_id,
        "segment_id": segment_id,
        "conversation": conv,
        "facial_expression": face,
        "body_language": body,
        "harmful_utterance_id": list(harmful),
        "channel_id": "UC_test_channel",
        "title": "A test podcast episode",
        "duration": schema.format_duration(60, 660),
        "fps": schema.FPS,
    }


def rows_to_dataset(rows: list[dict]):
    """A ``datasets.Dataset`` with the canonical VENUS Features holding ``rows``."""
    import datasets

    columns = {k: [copy.deepcopy(r[k]) for r in rows] for k in schema.VENUS_FEATURES}
    return datasets.Dataset.from_dict(columns, features=schema.VENUS_FEATURES)
