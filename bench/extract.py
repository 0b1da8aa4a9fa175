"""Benchmark: per-utterance extraction + smoothing, ours against the released code's way.

    python bench/extract.py [--segments N] [--seconds S] [--reference-segments M]

The data is the synthetic VENUS (``venus_analysis.synthetic.generate_venus``), which has the
released data's columns and layouts; it is cached on disk and read memory-mapped.

Throughput is in aligned frames per second: each frame is one face row (53 floats) and one
body row (117 floats) of an utterance, smoothed with the paper's Savitzky-Golay rule.

- ours: ``iter_utterances`` over the ``datasets.Dataset`` (Arrow buffers to numpy, one
  segment at a time); also ``segment_utterances`` on Python dict rows.
- reference: the approach of the released MARS code, written here for comparison: a Python
  loop over every frame entry (``int(utt_id)``, ``int(frame.split('_')[0])``, one
  ``torch.tensor`` per frame), ``torch.stack`` per utterance, then scipy's ``savgol_filter``
  per utterance. It is timed end to end from the dataset (rows converted to Python by
  ``datasets``, as the released code reads them), and the loop alone is reported too.

The reference is slow, so it runs on the first ``--reference-segments`` segments only;
ours runs on all of them. The two are timed alternately, ``--repeat`` times, and medians of
wall-clock times are reported: on a shared machine a single run can be off by 2x.

Memory: each size (1x and 4x the segments) runs in a fresh subprocess that streams the
cached dataset from disk and reports

- the tracemalloc peak: every allocation made through Python's and numpy's allocators
  (numpy reports its array buffers to tracemalloc), i.e. what the code holds at once;
- the peak of pyarrow's memory pool, which tracemalloc does not see;
- the growth of anonymous resident memory (Linux ``RssAnon``), as a cross-check.

Plain RSS is not the headline figure: the dataset is memory-mapped, and every page of the
Arrow file that has been read counts as resident (file-backed page cache the OS can drop at
any time), so RSS grows with the amount of data read even when nothing is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from venus_analysis import schema  # noqa: E402
from venus_analysis.extraction import iter_utterances, segment_utterances  # noqa: E402

FACE_LAYOUT = schema.FACE_LAYOUT
BODY_TOKENS = schema.BODY_TOKEN_SLICE


# ---------------------------------------------------------------------------------------
# The reference: the released code's per-frame approach (written for this benchmark)
# ---------------------------------------------------------------------------------------
def _face_pick(feats: list) -> list:
    """The 53 tokenizer floats of one face entry, by list slicing (expression + jaw)."""
    return feats[FACE_LAYOUT.expression] + feats[FACE_LAYOUT.jaw]


def _body_pick(feats: list) -> list:
    """The 117 tokenizer floats of one body entry."""
    return feats[BODY_TOKENS]


def reference_segment(row: dict) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """One dict row to ``(utterance_id, frames, face, body)`` per utterance, frame by frame.

    Face and body are aligned on their common frames, like ours, so the outputs can be
    compared.
    """
    import torch
    from scipy.signal import savgol_filter

    per_track = []
    for name, pick in ((schema.FACE, _face_pick), (schema.BODY, _body_pick)):
        track = row[name]
        per_utt: dict[int, dict[int, "torch.Tensor"]] = {}
        for utt_id, frame, feats in zip(track["utt_id"], track["frame"], track["features"]):
            uid = int(utt_id)
            index = int(frame.split("_")[0])
            per_utt.setdefault(uid, {})[index] = torch.tensor(pick(feats))
        per_track.append(per_utt)
    face_by_utt, body_by_utt = per_track
    out = []
    for uid in row[schema.CONVERSATION]["utterance_id"]:
        face, body = face_by_utt.get(uid, {}), body_by_utt.get(uid, {})
        common = sorted(face.keys() & body.keys())
        if not common:
            continue
        f = torch.stack([face[i] for i in common]).numpy()
        b = torch.stack([body[i] for i in common]).numpy()
        window = schema.savgol_window_for(len(common))
        if window:
            f = savgol_filter(f, window, schema.SAVGOL_POLYORDER, axis=0)
            b = savgol_filter(b, window, schema.SAVGOL_POLYORDER, axis=0)
        out.append((uid, np.array(common), f, b))
    return out


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------
def _ours_dataset(ds) -> tuple[float, int]:
    """Seconds and frames for iter_utterances over the whole Dataset."""
    t0 = time.perf_counter()
    frames = sum(u.n_frames for u in iter_utterances(ds, progress=False))
    return time.perf_counter() - t0, frames


def _compare_per_segment(ds, n_segments: int) -> dict[str, float]:
    """One pass over the first segments, timing each way on each segment back to back.

    Interleaving the methods segment by segment exposes them to the same machine load.
    Returns seconds per method and the frame count.
    """
    arrow = ds.with_format("arrow")
    t = dict.fromkeys(["convert", "reference", "ours_dict", "ours_arrow"], 0.0)
    frames = 0
    for i in range(n_segments):
        t0 = time.perf_counter()
        row = ds[i]  # what the released code reads: the row as Python objects
        t1 = time.perf_counter()
        ref = reference_segment(row)
        t2 = time.perf_counter()
        ours = segment_utterances(row)
        t3 = time.perf_counter()
        fast = segment_utterances(arrow[i : i + 1])
        t4 = time.perf_counter()
        for key, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            t[key] += dt
        frames += sum(len(r[1]) for r in ref)
        assert frames and sum(u.n_frames for u in ours) == sum(u.n_frames for u in fast) == sum(len(r[1]) for r in ref)
        del row, ref, ours, fast
    return {**t, "frames": frames}


def _check_same(row: dict) -> float:
    """Largest difference between ours and the reference on one row (they must agree)."""
    ours = [u for u in segment_utterances(row) if u.n_frames]
    ref = reference_segment(row)
    assert [u.utterance_id for u in ours] == [r[0] for r in ref], "utterances differ"
    worst = 0.0
    for u, (_, frames, face, body) in zip(ours, ref):
        assert np.array_equal(u.frames, frames), "frames differ"
        worst = max(worst, float(np.abs(u.face - face).max()), float(np.abs(u.body - body).max()))
    return worst


# ---------------------------------------------------------------------------------------
# Memory (run in a fresh subprocess per size)
# ---------------------------------------------------------------------------------------
def _rss_anon_bytes() -> int | None:
    """Anonymous resident memory of this process (Linux), excluding memory-mapped files."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _memory_child(folder: str) -> None:
    """Stream every utterance of the dataset saved in ``folder``; print memory figures as JSON."""
    import tracemalloc

    import datasets
    import pyarrow as pa

    dsd = datasets.load_from_disk(folder)  # memory-mapped: nothing is read yet
    ds = datasets.concatenate_datasets([dsd[s] for s in dsd])
    arrow_before = pa.default_memory_pool().max_memory()  # loading allocates next to nothing
    rss_start = _rss_anon_bytes()
    rss_peak = rss_start
    tracemalloc.start()
    frames, last = 0, None
    for utt in iter_utterances(ds, window=schema.WINDOW_FRAMES, progress=False):
        frames += utt.n_frames
        if (utt.video_id, utt.segment_id) != last:  # sample once per segment
            last = (utt.video_id, utt.segment_id)
            rss = _rss_anon_bytes()
            rss_peak = max(rss_peak, rss) if rss is not None else None
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({
        "segments": len(ds),
        "frames": frames,
        "tracemalloc_peak": traced_peak,
        "arrow_pool_peak": pa.default_memory_pool().max_memory(),
        "arrow_pool_before": arrow_before,
        "rss_anon_growth": None if rss_start is None else rss_peak - rss_start,
    }))  # fmt: skip


def _load(args, segments: int | None = None):
    """The synthetic VENUS (generated once, then loaded memory-mapped): all splits, and its folder."""
    import tempfile

    import datasets

    from venus_analysis.synthetic import generate_venus

    dsd = generate_venus(
        n_segments=segments or args.segments, seconds=args.seconds, seed=args.seed, cache_dir=args.cache_dir,
        progress=False,
    )  # fmt: skip
    files = dsd["train"].cache_files
    if files:  # loaded from the cache: <folder>/train/data-....arrow
        folder = str(Path(files[0]["filename"]).parents[1])
    else:  # held in memory: save it so the memory runs can stream it from disk
        folder = tempfile.mkdtemp(prefix="venus-bench-")
        dsd.save_to_disk(folder)
    return datasets.concatenate_datasets([dsd[s] for s in dsd]), folder


def _memory_run(args, segments: int) -> dict:
    """Run the memory measurement on ``segments`` segments in a fresh Python process."""
    _, folder = _load(args, segments)  # generate and cache first, outside the measured process
    cmd = [sys.executable, __file__, "--memory-child", folder]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:7.1f} MiB"


# ---------------------------------------------------------------------------------------
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=8, help="segments of synthetic VENUS (default 8)")
    parser.add_argument("--seconds", type=float, default=600.0, help="seconds per segment (600 = real size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-segments", type=int, default=2, help="segments timed with the slow reference")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs of each (median reported)")
    parser.add_argument("--memory-factor", type=int, default=4, help="the larger memory run is this many times bigger")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--cache-dir", default=None, help="where the synthetic data is cached (default: the package's)")
    parser.add_argument("--memory-child", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import datasets

    datasets.disable_progress_bars()  # keep the report readable (save/load bars)
    if args.memory_child:
        return _memory_child(args.memory_child)

    ds, _ = _load(args)
    n_ref = min(args.reference_segments, len(ds))
    print(f"data: synthetic VENUS, {len(ds)} segments x {args.seconds:g} s (seed {args.seed}), memory-mapped")

    reference_segment(ds[0])  # warm up torch and scipy before timing anything
    ours_runs, ref_runs = [], []
    for _ in range(args.repeat):  # alternate the two so both see the same machine load
        ours_runs.append(_ours_dataset(ds))
        ref_runs.append(_compare_per_segment(ds, n_ref))
    frames_all = ours_runs[0][1]
    t_ours = statistics.median(t for t, _ in ours_runs)
    ours_fps = frames_all / t_ours
    med = {k: statistics.median(r[k] for r in ref_runs) for k in ref_runs[0]}
    ref_fps = med["frames"] / (med["convert"] + med["reference"])
    print(f"ours, iter_utterances over the Dataset (Arrow): {frames_all} frames in {t_ours:.3f} s "
          f"= {ours_fps:,.0f} frames/s")  # fmt: skip
    print(f"reference (per-frame loop), end to end from the Dataset: {med['frames']:.0f} frames "
          f"({n_ref} segments) in {med['convert'] + med['reference']:.3f} s = {ref_fps:,.0f} frames/s")  # fmt: skip
    print(f"  of which datasets' conversion of the rows to Python: {med['convert']:.3f} s; "
          f"the loop alone: {med['frames'] / med['reference']:,.0f} frames/s")  # fmt: skip
    print(f"ours on the same segments: from Arrow rows {med['frames'] / med['ours_arrow']:,.0f} frames/s, "
          f"from the Python dict rows {med['frames'] / med['ours_dict']:,.0f} frames/s")  # fmt: skip
    print(f"outputs agree: max |ours - reference| = {_check_same(ds[0]):.2e}")
    print(f"SPEED-UP, end to end from the Dataset: {ours_fps / ref_fps:,.1f}x (target >= 50x); "
          f"dict rows, ours vs the loop alone: {med['reference'] / med['ours_dict']:,.1f}x "
          f"(timings: median of {args.repeat} runs, interleaved)")  # fmt: skip

    if args.skip_memory:
        return
    print("memory while streaming (fresh process per size, window 512):")
    for factor in (1, args.memory_factor):
        m = _memory_run(args, args.segments * factor)
        print(f"  {factor}x = {m['segments']:3d} segments, {m['frames']:8d} frames kept by the window: "
              f"tracemalloc peak {_mb(m['tracemalloc_peak'])}, Arrow pool peak {_mb(m['arrow_pool_peak'])} "
              f"(before streaming {_mb(m['arrow_pool_before']).strip()}), "
              f"RssAnon growth {_mb(m['rss_anon_growth'])}")  # fmt: skip


if __name__ == "__main__":
    main()
