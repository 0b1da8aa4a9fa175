"""Benchmark: interleaving words with motion codes, ours against the released code's way.

    python bench/interleave.py [--segments N] [--seconds S] [--reference-utterances M]

Inputs: the synthetic VENUS (``venus_analysis.synthetic.generate_venus``, cached), its
utterances' frames (``iter_utterances``) and words, and random codes (one face and one
body code per 8 frames of the first 512), the same for both methods.

- ours: ``mini_mars.interleave.interleave_utterance`` per utterance, frames given as the
  numpy array extraction returns; no Python loop over words or frames.
- reference: the approach of the released MARS code, written here for comparison, with
  our rule's details (so that the outputs can be compared token for token): the
  utterance's frames are found by scanning the whole dataset's list of frame names
  (``"<video>_<segment>_<utterance>_<frame>"``) and parsing each matching name, then one
  Python loop over the words and one over the pairs build the event list, which is sorted.
  Its time is reported end to end and for the loops alone (frames given).

The reference's scan grows with the dataset (each utterance reads every frame name), so
its speed, and the ratio, depend on ``--segments`` and ``--seconds``. It runs on the first
``--reference-utterances`` utterances; ours on all. Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mini_mars.interleave import BODY_TOKEN, FACE_TOKEN, interleave_utterance  # noqa: E402
from venus_analysis import extraction, schema  # noqa: E402

FPT, FPS = schema.FRAMES_PER_TOKEN, schema.FPS


# ---------------------------------------------------------------------------------------
# The reference: the released code's per-word, per-pair approach (written for this benchmark)
# ---------------------------------------------------------------------------------------
def reference_frames(frame_names: list[str], key: str) -> list[int]:
    """The frames of utterance ``key`` (``"<video>_<segment>_<utterance>"``), found by
    scanning every frame name of the dataset, as the released code scans its dataset."""
    frames = []
    for name in frame_names:
        head, frame = name.rsplit("_", 1)
        if head == key:
            frames.append(int(frame))
    frames.sort()
    return frames


def reference_interleave(words, starts, utt_start, utt_end, frames, face, body) -> list[str]:
    """Events in Python lists: one per word, one per pair; sorted by frame, words first."""
    first = int(utt_start * FPS)
    last = max(int(utt_end * FPS), first)
    events, previous = [], first
    for i, (word, t) in enumerate(zip(words, starts)):
        f = first if t is None or t != t else int(t * FPS)  # t != t: NaN
        f = max(min(max(f, first), last), previous)
        previous = f
        events.append((f, 0, i, word))
    placed = 0
    for i in range(len(face)):
        if FPT * i >= len(frames) or frames[FPT * i] > last:
            break  # this pair and the following ones cannot be placed: leftovers
        events.append((max(frames[FPT * i], first), 1, i, None))
        placed += 1
    events.sort(key=lambda e: (e[0], e[1], e[2]))  # ties: words (0) before pairs (1)
    tokens = []
    for _, kind, i, word in events:
        if kind == 0:
            tokens.append(word)
        else:
            tokens += [FACE_TOKEN.format(face[i]), BODY_TOKEN.format(body[i])]
    for i in range(placed, len(face)):
        tokens += [FACE_TOKEN.format(face[i]), BODY_TOKEN.format(body[i])]
    return tokens


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------
def load_inputs(args) -> tuple[list[dict], list[str]]:
    """Every utterance with frames and words (and random codes), and the dataset's frame names."""
    import datasets

    from venus_analysis.synthetic import generate_venus

    extra = {} if args.monologue_rate is None else {"monologue_rate": args.monologue_rate}
    dsd = generate_venus(n_segments=args.segments, seconds=args.seconds, seed=args.seed, progress=False, **extra)
    ds = datasets.concatenate_datasets([dsd[s] for s in dsd])
    rng = np.random.default_rng(args.seed)
    utts, names = [], []
    rows, _ = extraction.segment_rows(ds)
    for row in rows:
        seg = extraction.segment_utterances(row, smooth=False)
        words = extraction.conversation_of(row)["words"]
        for k, u in enumerate(seg):
            key = f"{seg.video_id}_{seg.segment_id}_{u.utterance_id}"
            names += [f"{key}_{f}" for f in u.frames.tolist()]
            if not len(u.frames) or not words[k]["word"]:
                continue
            n = -(-min(len(u.frames), schema.WINDOW_FRAMES) // FPT)
            utts.append({"key": key, "words": words[k]["word"], "starts": words[k]["start_time"],
                         "start": u.start_time, "end": u.end_time, "frames": u.frames,
                         "face": rng.integers(0, 512, n), "body": rng.integers(0, 512, n)})  # fmt: skip
    names = [names[i] for i in rng.permutation(len(names))]  # a dataset's order is not the utterances'
    return utts, names


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------
def time_ours(utts) -> float:
    """Seconds to interleave every utterance with ours."""
    t0 = time.perf_counter()
    for u in utts:
        interleave_utterance(u["words"], u["starts"], u["start"], u["end"], u["frames"], u["face"], u["body"])
    return time.perf_counter() - t0


def time_reference(utts, names) -> tuple[float, float]:
    """Seconds for the reference: (end to end with the frame scan, loops alone)."""
    scan = loops = 0.0
    for u in utts:
        t0 = time.perf_counter()
        frames = reference_frames(names, u["key"])
        t1 = time.perf_counter()
        reference_interleave(u["words"], u["starts"], u["start"], u["end"], frames, u["face"].tolist(), u["body"].tolist())
        t2 = time.perf_counter()
        scan, loops = scan + t1 - t0, loops + t2 - t1
    return scan + loops, loops


def check_same(utts, names) -> int:
    """Utterances on which ours and the reference give the same tokens (all must)."""
    for u in utts:
        ours = interleave_utterance(u["words"], u["starts"], u["start"], u["end"], u["frames"], u["face"], u["body"])
        ref = reference_interleave(u["words"], u["starts"], u["start"], u["end"], reference_frames(names, u["key"]),
                                   u["face"].tolist(), u["body"].tolist())  # fmt: skip
        assert ours.tokens == ref, f"outputs differ on utterance {u['key']}"
    return len(utts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=8, help="segments of synthetic VENUS (default 8)")
    parser.add_argument("--seconds", type=float, default=600.0, help="seconds per segment (600 = real size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--monologue-rate", type=float, default=None,
                        help="share of long turns (> 20 s) in the synthetic data (default: the generator's 0.04)")
    parser.add_argument("--reference-utterances", type=int, default=40, help="utterances timed with the reference")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs of each (median reported)")
    args = parser.parse_args(argv)

    utts, names = load_inputs(args)
    ref_utts = utts[: args.reference_utterances]
    words = sum(len(u["words"]) for u in utts)
    pairs = sum(len(u["face"]) for u in utts)
    print(f"data: synthetic VENUS, {args.segments} segments x {args.seconds:g} s (seed {args.seed}): "
          f"{len(utts)} utterances, {words} words, {pairs} motion pairs, {len(names)} frame names; per utterance "
          f"{words / len(utts):.1f} words and {pairs / len(utts):.1f} pairs")  # fmt: skip
    print(f"outputs identical on {check_same(ref_utts, names)} utterances (token for token)")

    ours, ref_total, ref_loops = [], [], []
    for _ in range(args.repeat):  # alternate the two so both see the same machine load
        ours.append(time_ours(utts))
        total, loops = time_reference(ref_utts, names)
        ref_total.append(total)
        ref_loops.append(loops)
    ours_rate = len(utts) / statistics.median(ours)
    ref_rate = len(ref_utts) / statistics.median(ref_total)
    loops_rate = len(ref_utts) / statistics.median(ref_loops)
    print(f"{'method':<44}{'utterances/s':>14}{'ratio':>10}")
    print(f"{'ours (numpy, per utterance)':<44}{ours_rate:>14,.0f}{'1.0x':>10}")
    print(f"{'reference, end to end (scan + loops)':<44}{ref_rate:>14,.1f}{ours_rate / ref_rate:>9,.0f}x")
    print(f"{'reference, loops alone (frames given)':<44}{loops_rate:>14,.0f}{ours_rate / loops_rate:>9,.1f}x")
    print(f"SPEED-UP, end to end: {ours_rate / ref_rate:,.0f}x (target >= 100x; grows with the dataset, "
          f"as the reference scans {len(names)} frame names per utterance); median of {args.repeat} runs")  # fmt: skip


if __name__ == "__main__":
    main()
