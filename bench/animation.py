"""Benchmark: how long the animated figures take to build, and how big their HTML is.

    python bench/animation.py [--repeat R] [--matplotlib]

For tracks of 100, 500 and 2,000 frames (4 s, 20 s, 80 s at 25 fps) of the synthetic
VENUS, it times (median of ``--repeat`` runs, after one warm-up run):

- ``utterance_figure`` (skeleton + face + words + expression strip), ``skeleton_figure``,
  ``face_figure`` and ``side_by_side`` with three tracks, all at the default
  ``max_frames`` (longer tracks are decimated);
- ``utterance_figure`` with ``max_frames=None`` (every frame), to show what decimation saves;

and reports the number of animation frames, the standalone HTML size (plotly.js inlined,
about 4.6 MB of it) and the size of the figure's own data (the HTML without plotly.js).
``--matplotlib`` also times the matplotlib ``to_jshtml`` fallback (slow: seconds).

The long tracks are made by joining the consecutive utterances of a synthetic segment (the
frames stay segment times, the words are the conversation's words in that span).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from venus_analysis import animation, schema  # noqa: E402
from venus_analysis.extraction import UtteranceArrays, segment_utterances  # noqa: E402
from venus_analysis.synthetic import SyntheticConfig, generate  # noqa: E402

SIZES = (100, 500, 2000)


def long_track(n: int) -> tuple[UtteranceArrays, dict]:
    """An UtteranceArrays of ``n`` frames joined from a synthetic segment, and its words."""
    data, _ = generate(SyntheticConfig(n_segments=2, seconds=180, seed=0), progress=False)
    row = data["train"][0] if len(data["train"]) else data["test"][0]
    utts = [u for u in segment_utterances(row, full=True) if u.n_frames > 0]
    keys = ("frames", "face_full", "body_full", "head_rotation")
    parts = {k: np.concatenate([getattr(u, k) for u in utts])[:n] for k in keys}
    if len(parts["frames"]) < n:
        sys.exit(f"the synthetic segment holds only {len(parts['frames'])} frames; need {n}")
    conv = row[schema.CONVERSATION]
    t0, t1 = parts["frames"][0] / schema.FPS, parts["frames"][-1] / schema.FPS
    words = {"word": [], "start_time": [], "end_time": []}
    for w in conv["words"]:
        for word, s, e in zip(w["word"], w["start_time"], w["end_time"]):
            if t0 <= s <= t1:
                words["word"].append(word), words["start_time"].append(s), words["end_time"].append(e)
    utt = UtteranceArrays(
        utterance_id=0, speaker=0, frames=parts["frames"], face=parts["face_full"][:, schema.FACE_TOKEN_COLUMNS],
        body=parts["body_full"][:, schema.BODY_TOKEN_SLICE], head_rotation=parts["head_rotation"],
        face_full=parts["face_full"], body_full=parts["body_full"], text=" ".join(words["word"]),
    )  # fmt: skip
    return utt, words


def timed(build, repeat: int):
    """(median seconds, last figure) of ``repeat`` calls after one warm-up call."""
    fig = build()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fig = build()
        times.append(time.perf_counter() - start)
    return statistics.median(times), fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--matplotlib", action="store_true", help="also time the matplotlib to_jshtml fallback")
    args = parser.parse_args()

    full, all_words = long_track(max(SIZES))
    print(f"default max_frames = {animation.MAX_FRAMES}; median of {args.repeat} runs after a warm-up\n")
    print(f"{'frames':>6}  {'figure':<26} {'anim frames':>11} {'build s':>8} {'html MB':>8} {'data MB':>8}")
    for n in SIZES:
        utt = UtteranceArrays(**{**full.__dict__, **{k: getattr(full, k)[:n] for k in
                                 ("frames", "face", "body", "head_rotation", "face_full", "body_full")}})  # fmt: skip
        t1 = utt.frames[-1] / schema.FPS
        words = {k: [v for v, s in zip(all_words[k], all_words["start_time"]) if s <= t1] for k in all_words}
        cases = {
            "utterance_figure": lambda: animation.utterance_figure(utt, words=words),
            "skeleton_figure": lambda: animation.skeleton_figure(utt, words=words),
            "face_figure": lambda: animation.face_figure(utt, words=words),
            "side_by_side (3 tracks)": lambda: animation.side_by_side(
                {"ground truth": utt.body_full, "tokenizer": utt.body, "joints": animation.joints_of(utt)},
                words=words, frames=utt.frames),
            "utterance_figure all frames": lambda: animation.utterance_figure(utt, words=words, max_frames=None),
        }  # fmt: skip
        for name, build in cases.items():
            if name.endswith("all frames") and n > 500:
                continue  # thousands of frames: exactly what decimation is for
            seconds, fig = timed(build, args.repeat)
            html = len(fig.to_html(include_plotlyjs=True, auto_play=False).encode())
            data = len(fig.to_html(include_plotlyjs=False, auto_play=False).encode())
            print(f"{n:>6}  {name:<26} {len(fig.frames):>11} {seconds:>8.3f} {html / 1e6:>8.2f} {data / 1e6:>8.2f}")
        if args.matplotlib:
            start = time.perf_counter()
            html = animation.to_jshtml(utt, words=words)
            seconds = time.perf_counter() - start
            shown = len(animation.decimate(n, 75))  # matplotlib_animation's default max_frames
            print(f"{n:>6}  {'matplotlib to_jshtml':<26} {shown:>11} {seconds:>8.3f} {len(html) / 1e6:>8.2f}")


if __name__ == "__main__":
    main()
