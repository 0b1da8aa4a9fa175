"""Behaviour per utterance and per sentence: the one streaming pass the analyses share.

:func:`measure_behaviour` reads a dataset split one segment at a time and returns
:class:`BehaviourTables`: one row per utterance (who spoke, in which channel and topic,
how long, how well the estimator covered it, how much each body part moved, how noisy
the parameters are, and how many events of each cue it holds), one row per sentence (its
VADER sentiment and the cue events that start inside it), and the cue-word co-occurrence
counts of :mod:`cues`. Frames are never kept: memory grows with utterances (a few hundred
bytes each), not with frames. The cue rates, the bias audit and the analysis report are
group-bys of these tables.

Utterance measures (columns of ``BehaviourTables.utterances``):

==========================  =============================================================
column                      meaning
==========================  =============================================================
``seconds``, ``words``      utterance length (end - start) and its word count
``n_frames``                stored face/body frames of the utterance (aligned pairs)
``coverage``                n_frames / (seconds x 25): 1 = every frame estimated
``frame_gaps``              number of jumps in the stored frame indices (missing runs)
``frames_cut``              frames past the 512-frame MARS window (lost in training)
``hand_speed``              mean speed of the faster wrist, m/s (positions low-passed at 5 Hz)
``energy_<part>``           mean joint speed of a body part (head, torso, arms, hands), m/s
``head_oscillation``        mean nod + shake energy (band-passed head rotation), rad RMS
``expression_amplitude``    RMS distance of the 50 expression coefficients from their
                            utterance median (how much the face moves)
``jaw_opening``             mean jaw opening while speaking, rad
``jitter_body``             estimator noise of the 117 body tokenizer parameters, rad:
                            sqrt(mean(second difference^2) / 6) over consecutive raw
                            frames (white noise of s.d. s gives s; smooth motion adds
                            little at 25 fps)
``jitter_face``             the same for the 50 expression coefficients (raw, unsmoothed)
``cue_<name>``              number of detected events of each cue (:mod:`cues`)
==========================  =============================================================

Groups: ``speaker`` is the role in the row (0 or 1; VENUS has no identities, so
``speaker_key`` = video_id:speaker is the finest unit, one person within one video);
``channel_id`` is read when the dataset has that column (the synthetic data does; the
real column name on the Hub is unverified), otherwise "unknown"; ``topic`` comes from a
``title`` column (:func:`topic_of_title`), otherwise "unknown": the released VENUS rows
carry no titles (the paper took them from YouTube).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import datasets
import numpy as np
import pandas as pd

from . import cues, extraction, schema, sentiment

J = schema.JOINT_INDEX
# Joints of each body part whose speed is its motion energy.
BODY_PARTS: dict[str, list[int]] = {
    "head": [J["neck"], J["head"]],
    "torso": [J["spine1"], J["spine2"], J["spine3"]],
    "arms": [J[f"{s}_{j}"] for s in ("left", "right") for j in ("collar", "shoulder", "elbow", "wrist")],
    "hands": [J[f"{s}_{f}{k}"] for s in ("left", "right") for f in schema.FINGERS for k in (1, 2, 3)],
}
# Topic keywords matched in a title when it does not end in "(topic)"; the first three are
# the paper's most frequent title topics (interview 6.64 %, life 4.51 %, recap 4.3 %).
TOPIC_KEYWORDS: dict[str, tuple[str, ...]] = {
    "interview": ("interview", "interviews"),
    "life": ("life", "lifestyle"),
    "recap": ("recap", "recaps"),
    "sports": ("sports", "sport", "game", "nba", "nfl", "football"),
    "tech": ("tech", "technology", "gadgets", "ai"),
    "movies": ("movie", "movies", "film", "cinema"),
    "business": ("business", "money", "markets", "founders"),
    "health": ("health", "fitness", "wellness"),
}
_PART_JOINTS = sorted({j for idx in BODY_PARTS.values() for j in idx})
UNKNOWN = "unknown"
MEASURES: tuple[str, ...] = (
    "hand_speed", *(f"energy_{p}" for p in BODY_PARTS), "head_oscillation", "expression_amplitude",
    "jaw_opening", "jitter_body", "jitter_face", "coverage",
)  # fmt: skip


def topic_of_title(title: str | None) -> str:
    """The topic of a video title: a trailing "(topic)" if present, else the first
    :data:`TOPIC_KEYWORDS` topic whose keyword is a word of the title, else "other"
    ("unknown" when there is no title)."""
    if not title:
        return UNKNOWN
    m = re.search(r"\(([^()]+)\)\s*$", title)
    if m:
        return m.group(1).strip().lower()
    words = set(re.findall(r"[a-z]+", title.lower()))
    for topic, keys in TOPIC_KEYWORDS.items():
        if words.intersection(keys):
            return topic
    return "other"


def jitter(x: np.ndarray, frames: np.ndarray) -> float:
    """Estimator noise of a raw track (n, d): sqrt(mean(d2^2) / 6) over frames whose two
    neighbours are stored consecutively (d2 = x[t+1] - 2 x[t] + x[t-1]); NaN when no frame
    has both neighbours. For white noise of s.d. s on a still pose this gives s."""
    frames = np.asarray(frames)
    if len(frames) < 3:
        return float("nan")
    ok = (frames[2:] - frames[1:-1] == 1) & (frames[1:-1] - frames[:-2] == 1)
    if not ok.any():
        return float("nan")
    d2 = (x[2:] - 2 * x[1:-1] + x[:-2])[ok]
    return float(np.sqrt(np.mean(d2.astype(np.float64) ** 2) / 6.0))


def _part_energy(joints: np.ndarray, frames: np.ndarray, fps: float) -> dict[str, float]:
    """Mean joint speed (m/s) of each body part, positions low-passed like gestures."""
    if len(frames) < 2:
        return {f"energy_{p}": float("nan") for p in BODY_PARTS}
    pos = cues._lowpass_joints(joints, _PART_JOINTS, fps)
    dt = np.diff(frames) / fps  # a gap counts as the time it lasted
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=-1) / dt[:, None]  # (n-1, 55)
    return {f"energy_{p}": float(speed[:, idx].mean()) for p, idx in BODY_PARTS.items()}


def utterance_measures(utt: extraction.UtteranceArrays, raw: extraction.UtteranceArrays | None = None, *,
                       fps: float = schema.FPS, thresholds: cues.CueThresholds | None = None) -> tuple[dict, list]:
    """(measures, cue events) of one utterance read with ``full=True`` (smoothed).

    ``raw`` is the same utterance read with ``smooth=False`` (for the jitter columns; NaN
    without it). The measures are the numeric columns of :func:`measure_behaviour`'s
    utterance table, except the lengths.
    """
    th = thresholds or cues.CueThresholds()
    n, frames = len(utt.frames), np.asarray(utt.frames)
    out = {"n_frames": n, "frame_gaps": int((np.diff(frames) > 1).sum()) if n else 0,
           "frames_cut": max(n - schema.WINDOW_FRAMES, 0)}  # fmt: skip
    if n == 0:
        out.update({m: float("nan") for m in MEASURES if m != "coverage"})
        out.update({f"cue_{c}": 0 for c in cues.CUE_NAMES})
        return out, []
    pose = cues.utterance_pose(utt)
    measures = cues.cue_measures(utt, fps=fps, band=th.band, pose=pose)
    events = cues.detect_cues(utt, fps=fps, thresholds=th, measures=measures)
    expression = utt.face[:, schema.FACE_TOKEN_EXPRESSION].astype(np.float64)
    spread = expression - np.median(expression, axis=0)
    out.update({
        "hand_speed": float(measures["gesture"].mean()),
        **_part_energy(pose[1], frames, fps),
        "head_oscillation": float(np.nanmean(measures["nod"] + measures["head_shake"])) if utt.head_rotation is not None else float("nan"),
        "expression_amplitude": float(np.sqrt(np.mean(np.sum(spread**2, axis=1)))),
        "jaw_opening": float(measures["jaw_open"].mean()),
        "jitter_body": jitter(raw.body, raw.frames) if raw is not None else float("nan"),
        "jitter_face": jitter(raw.face[:, schema.FACE_TOKEN_EXPRESSION], raw.frames) if raw is not None else float("nan"),
    })  # fmt: skip
    counts = Counter(e.cue for e in events)
    out.update({f"cue_{c}": counts.get(c, 0) for c in cues.CUE_NAMES})
    return out, events


@dataclass
class BehaviourTables:
    """What :func:`measure_behaviour` measured: utterance, sentence and segment tables, the
    cue-word co-occurrence counts, and what was skipped (counted by reason).

    ``segments`` has one row per segment: video_id, segment_id, channel_id, topic,
    utterances (kept in the conversation) and talk_0 / talk_1 (seconds of speech of each
    speaker), so that segments without any utterance are still counted.
    """

    utterances: pd.DataFrame
    sentences: pd.DataFrame
    cooccurrence: cues.CooccurrenceCounter
    segments: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per segment read
    skipped: dict = field(default_factory=dict)

    @property
    def n_segments(self) -> int:
        """Number of segments read (including those without utterances)."""
        return len(self.segments)

    @property
    def speech_minutes(self) -> float:
        """Minutes of speech over all utterances with frames."""
        u = self.utterances
        return float(u.loc[u["n_frames"] > 0, "seconds"].sum() / 60.0)


def _sentence_records(base: dict, words: dict, events: list, fps: float) -> list[dict]:
    """One record per sentence of an utterance, with the cue events starting inside it."""
    starts = np.array([e.start_frame for e in events], dtype=np.float64) / fps
    names = np.array([e.cue for e in events], dtype=object)
    out = []
    for k, s in enumerate(sentiment.split_sentences(words)):
        inside = names[(starts >= s.start_time) & (starts <= s.end_time)]
        counts = Counter(inside.tolist())
        out.append({**base, "sentence": k, "start_time": s.start_time, "end_time": s.end_time,
                    "seconds": s.end_time - s.start_time, "n_words": s.n_words, "text": s.text,
                    **{f"cue_{c}": counts.get(c, 0) for c in cues.CUE_NAMES}})  # fmt: skip
    return out


def measure_behaviour(data, *, fps: float = schema.FPS, thresholds: cues.CueThresholds | None = None,
                      window_s: tuple[float, float] = (-0.3, 1.0), workers: int = 1,
                      progress: bool = False) -> BehaviourTables:
    """Measure every utterance and sentence of a dataset split in one streaming pass.

    ``data``: a ``datasets.Dataset`` split, an ``IterableDataset`` (streaming), an Arrow
    table or a list of rows (a ``DatasetDict`` raises a TypeError naming its splits).
    Utterances without frames are kept with ``n_frames = 0`` (their motion measures are
    NaN) and counted in ``skipped["utterances_without_frames"]``; utterances without a
    word list have no sentences (``skipped["utterances_without_words"]``). Sentences get
    their VADER ``compound`` score and ``sentiment`` label after the pass.
    See the module docstring for the columns.

    ``workers > 1`` splits a ``datasets.Dataset`` into that many contiguous shards measured
    in parallel processes (the tables come out in dataset order, as with one worker); other
    inputs are measured in this process.
    """
    kwargs = dict(fps=fps, thresholds=thresholds, window_s=window_s)
    if workers > 1 and isinstance(data, datasets.Dataset) and len(data) >= 2 * workers:
        tables = _measure_in_parallel(data, workers, progress, kwargs)
    else:
        tables = _measure(data, progress=progress, **kwargs)
    s = tables.sentences
    if len(s):
        s["compound"] = sentiment.compound_scores(s["text"].tolist())
        s["sentiment"] = sentiment.label_scores(s["compound"].to_numpy())
    return tables


def _measure_shard(data, index: int, workers: int, kwargs: dict) -> BehaviourTables:
    """One worker's share of :func:`measure_behaviour` (module level, so it can be pickled)."""
    return _measure(data.shard(workers, index, contiguous=True), progress=False, **kwargs)


def _measure_in_parallel(data, workers: int, progress: bool, kwargs: dict) -> BehaviourTables:
    """Measure contiguous shards of a Dataset in ``workers`` processes and join them in order."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    # fork: workers inherit the imported modules and the memory-mapped dataset (POSIX only);
    # elsewhere the default start method re-imports, which is slower but works.
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(_measure_shard, data, i, workers, kwargs) for i in range(workers)]
        parts = [f.result() for f in tqdm(futures, desc=f"measuring behaviour ({workers} processes)",
                                          unit="shard", disable=not progress)]  # fmt: skip
    counter = parts[0].cooccurrence
    skipped = Counter()
    for p in parts[1:]:
        counter.merge(p.cooccurrence)
    for p in parts:
        skipped.update(p.skipped)
    return BehaviourTables(*(pd.concat([getattr(p, name) for p in parts], ignore_index=True)
                             for name in ("utterances", "sentences")), counter,
                           pd.concat([p.segments for p in parts], ignore_index=True), dict(skipped))  # fmt: skip


def _measure(data, *, fps: float, thresholds: cues.CueThresholds | None, window_s: tuple[float, float],
             progress: bool) -> BehaviourTables:
    """The single-process pass of :func:`measure_behaviour` (without sentiment scoring)."""
    from tqdm.auto import tqdm

    th = thresholds or cues.CueThresholds()
    counter = cues.CooccurrenceCounter(cues.active_cues(th), window_s=window_s, fps=fps)
    utt_records, sent_records, seg_records, skipped = [], [], [], Counter()
    rows, total = extraction.segment_rows(data)
    for row in tqdm(rows, total=total, unit="segment", desc="measuring behaviour", disable=not progress):
        meta = {"video_id": extraction.row_value(row, "video_id"),
                "segment_id": extraction.row_value(row, "segment_id"),
                "channel_id": extraction.row_value(row, "channel_id", UNKNOWN),
                "topic": topic_of_title(extraction.row_value(row, "title"))}  # fmt: skip
        words_of = cues.utterance_words(row)
        smooth = extraction.segment_utterances(row, full=True)
        raw = {u.utterance_id: u for u in extraction.segment_utterances(row, smooth=False)}
        talk = Counter()
        for utt in smooth:
            if not utt.in_conversation:
                continue
            measures, events = utterance_measures(utt, raw.get(utt.utterance_id), fps=fps, thresholds=th)
            seconds = float(utt.end_time - utt.start_time) if utt.start_time is not None else float("nan")
            talk[utt.speaker] += seconds
            words = words_of.get(utt.utterance_id)
            base = {**meta, "utterance_id": utt.utterance_id, "speaker": utt.speaker,
                    "speaker_key": f"{meta['video_id']}:{utt.speaker}"}  # fmt: skip
            utt_records.append({**base, "start_time": utt.start_time, "seconds": seconds,
                                "words": len(words["word"]) if words else 0,
                                "coverage": measures["n_frames"] / (seconds * fps) if seconds > 0 else float("nan"),
                                **measures})  # fmt: skip
            if measures["n_frames"] == 0:
                skipped["utterances_without_frames"] += 1
            if words is None:
                skipped["utterances_without_words"] += 1
                continue
            sent_records += _sentence_records(base, words, events, fps)
            if measures["n_frames"]:
                counter.add(words, events)
        seg_records.append({**meta, "utterances": sum(u.in_conversation for u in smooth),
                            "talk_0": talk.get(0, 0.0), "talk_1": talk.get(1, 0.0)})  # fmt: skip
    segments = pd.DataFrame(seg_records, columns=["video_id", "segment_id", "channel_id", "topic", "utterances", "talk_0", "talk_1"])
    return BehaviourTables(pd.DataFrame(utt_records), pd.DataFrame(sent_records), counter, segments, dict(skipped))


def cue_rates(table: pd.DataFrame, by: str | list[str] | None = None, *, min_seconds: float = 0.0) -> pd.DataFrame:
    """Cue events per minute of speech, overall or per group.

    ``table`` is ``BehaviourTables.utterances`` or ``.sentences``; ``by`` a column or
    columns (e.g. "speaker", "channel_id", "topic", "sentiment"). Only rows with frames
    count (sentences: all rows; utterances: ``n_frames > 0``), so a missing track does not
    lower a rate. Returns one row per group: ``minutes`` and one ``<cue>`` column per cue
    (events per minute); groups with less than ``min_seconds`` of speech are left out.
    """
    t = table[table["n_frames"] > 0] if "n_frames" in table else table
    cue_cols = [f"cue_{c}" for c in cues.CUE_NAMES]
    keys = [by] if isinstance(by, str) else list(by or [])
    if keys:
        g = t.groupby(keys, dropna=False)[["seconds", *cue_cols]].sum().reset_index()
    else:
        g = t[["seconds", *cue_cols]].sum().to_frame().T
    g = g[g["seconds"] >= min_seconds].copy()
    minutes = g["seconds"].to_numpy(dtype=np.float64) / 60.0
    for c in cues.CUE_NAMES:
        g[c] = np.where(minutes > 0, g.pop(f"cue_{c}").to_numpy(dtype=np.float64) / np.maximum(minutes, 1e-12), np.nan)
    g.insert(len(keys), "minutes", minutes)
    return g.drop(columns="seconds").reset_index(drop=True)
