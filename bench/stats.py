"""Benchmark: throughput and peak memory of ``compute_stats`` at 1x and 4x the data.

    python bench/stats.py [--segments N] [--seconds S] [--batch-size B] [--cache-dir DIR]

The data is the synthetic VENUS (``venus_analysis.synthetic.generate_venus``), saved to disk
once and loaded memory-mapped; each size is then streamed with
``Dataset.to_iterable_dataset()`` (both splits) in a fresh subprocess, so one size's
allocations cannot hide in another's.

Throughput is in face frames per second (the frames of the ``facial_expression`` track;
the body track has as many and is counted in the same pass). The first pass is cold (lazy
imports, the Arrow file not yet in the page cache) and is reported on its own; frames/s is
from the median of ``--repeat`` warm passes, all without tracing. One more pass under
``tracemalloc`` gives the memory figures:

- tracemalloc peak: the most bytes held at once through Python's and numpy's allocators
  (numpy reports its buffers to tracemalloc): the per-utterance arrays, the vocabulary set
  and the numpy temporaries of one batch. It should grow with utterances and vocabulary,
  far slower than the data;
- Arrow pool peak: pyarrow's own allocations (batch tables, compute results), which
  tracemalloc does not see; bounded by one batch;
- RssAnon growth: anonymous resident memory, as a cross-check. Plain RSS is not reported:
  the memory-mapped Arrow file counts as resident once read, whatever is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

import pyarrow as pa  # noqa: E402

from venus_analysis.statistics import compute_stats  # noqa: E402
from venus_analysis.synthetic import generate_venus  # noqa: E402


def _rss_anon() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def _streams(dsd):
    return {name: dsd[name].to_iterable_dataset() for name in dsd}


def child(args) -> dict:
    """Measure one size (run in a subprocess); returns the figures as a dict."""
    dsd = generate_venus(args.segments, args.seconds, args.seed, cache_dir=args.cache_dir, progress=False)
    rss0 = _rss_anon()
    times = []
    for _ in range(1 + args.repeat):  # the first pass is cold (imports, page cache)
        t0 = time.perf_counter()
        stats = compute_stats(_streams(dsd), batch_size=args.batch_size)
        times.append(time.perf_counter() - t0)
    elapsed = statistics.median(times[1:])
    arrow_before = pa.default_memory_pool().max_memory()
    tracemalloc.start()
    compute_stats(_streams(dsd), batch_size=args.batch_size)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    d = stats.to_dict()
    return {"segments": d["segments"], "turns": d["turns"], "face_frames": d["face_frames"],
            "unique_words": d["unique_words"], "cold_seconds": times[0], "seconds": elapsed,
            "frames_per_s": d["face_frames"] / elapsed, "tracemalloc_peak": peak,
            "arrow_pool_peak": max(arrow_before, pa.default_memory_pool().max_memory()),
            "rss_anon_growth": _rss_anon() - rss0}  # fmt: skip


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def main() -> None:
    """Generate (or reuse) both sizes, measure each in a subprocess, print side by side."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--segments", type=int, default=20)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3, help="warm passes timed (median reported)")
    p.add_argument("--cache-dir", default=None, help="where the synthetic data is cached (default: the package's)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    results = []
    for scale in (1, 4):
        n = args.segments * scale
        generate_venus(n, args.seconds, args.seed, cache_dir=args.cache_dir, progress=False)  # cache once
        cmd = [sys.executable, __file__, "--child", "--segments", str(n), "--seconds", str(args.seconds),
               "--seed", str(args.seed), "--batch-size", str(args.batch_size), "--repeat", str(args.repeat)]  # fmt: skip
        cmd += ["--cache-dir", args.cache_dir] if args.cache_dir else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        results.append((scale, json.loads(out.stdout.strip().splitlines()[-1])))
    print(f"compute_stats, streaming (to_iterable_dataset) from a saved dataset, batch {args.batch_size}, "
          f"{args.seconds:g} s segments")  # fmt: skip
    print(f"{'':22}" + "".join(f"{f'{s}x':>16}" for s, _ in results))
    fields = [("segments", "segments", "{:,}"), ("turns", "turns", "{:,}"), ("face frames", "face_frames", "{:,}"),
              ("unique words", "unique_words", "{:,}"), ("cold first pass", "cold_seconds", "{:.3f} s"),
              ("warm pass (median)", "seconds", "{:.3f} s"), ("frames/s (warm)", "frames_per_s", "{:,.0f}")]  # fmt: skip
    for label, key, fmt in fields:
        print(f"{label:22}" + "".join(f"{fmt.format(m[key]):>16}" for _, m in results))
    for label, key in (("tracemalloc peak", "tracemalloc_peak"), ("Arrow pool peak", "arrow_pool_peak"),
                       ("RssAnon growth", "rss_anon_growth")):  # fmt: skip
        print(f"{label:22}" + "".join(f"{_mb(m[key]):>16}" for _, m in results))


if __name__ == "__main__":
    main()
