"""Benchmark: what the cluster analysis (sample frames, t-SNE + DBSCAN) costs on a CPU.

    python bench/clusters.py [--sizes 500 1000 2000] [--segments N] [--seconds S] [--cache-dir DIR]

The data is the synthetic VENUS (``venus_analysis.synthetic.generate_venus``, cached). For
each size N, ``sample_frames`` draws ceil(N / videos) frames per video of the train split
(timed: it reads every segment, so its time follows the data, not N), then exactly N of
those frames are clustered, face and body, with ``cluster_frames`` (z-score, PCA, t-SNE,
DBSCAN with the default eps rule; timed separately, one run each). The paper's full setting
is 10 frames from each of ~1,000 videos, i.e. ~10,000 frames per part: extrapolate from the
largest size (Barnes-Hut t-SNE grows roughly as N log N) or pass ``--sizes 10000``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from venus_analysis import clusters as cl  # noqa: E402
from venus_analysis.synthetic import generate_venus  # noqa: E402


def _subset(sample: cl.FrameSample, n: int, seed: int) -> cl.FrameSample:
    """A FrameSample of ``n`` of the sample's frames, chosen at random."""
    idx = np.sort(np.random.default_rng(seed).choice(len(sample), size=n, replace=False))
    per_frame = {k: v[idx] for k, v in vars(sample).items() if isinstance(v, np.ndarray)}
    return cl.FrameSample(**per_frame, per_video=sample.per_video, seed=sample.seed, n_segments=sample.n_segments,
                          n_frames_seen=sample.n_frames_seen, n_nonfinite=sample.n_nonfinite)  # fmt: skip


def main() -> None:
    """Time sampling and clustering at each size and print one table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000])
    p.add_argument("--segments", type=int, default=40)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None, help="where the synthetic data is cached (default: the package's)")
    args = p.parse_args()
    dsd = generate_venus(args.segments, args.seconds, args.seed, cache_dir=args.cache_dir, progress=False)
    train = dsd["train"]
    videos = len(set(train["video_id"]))
    print(f"synthetic VENUS: {len(train)} train segments of {args.seconds:g} s, {videos} videos; "
          f"t-SNE perplexity 30, PCA <= {cl.MAX_PCA_DIMS} dims, eps = {cl.EPS_FACTOR:g} x median k-distance")  # fmt: skip
    t0 = time.perf_counter()  # first call: imports and thread pools, reported on its own
    cl.cluster_frames(np.random.default_rng(0).normal(size=(100, 53)), "face")
    print(f"cold start (imports, a first t-SNE of 100 points): {time.perf_counter() - t0:.2f} s")
    header = (f"{'frames':>7} {'per video':>9} {'sampling':>9} {'face t-SNE+DBSCAN':>18} {'clusters':>8} "
              f"{'body t-SNE+DBSCAN':>18} {'clusters':>8}")  # fmt: skip
    print(header)
    for n in args.sizes:
        per_video = math.ceil(n / videos)
        t0 = time.perf_counter()
        sample = cl.sample_frames(train, per_video=per_video, seed=args.seed)
        t_sample = time.perf_counter() - t0
        if len(sample) < n:
            print(f"{n:>7} only {len(sample)} frames available; use more --segments")
            continue
        sub = _subset(sample, n, args.seed)
        row = f"{n:>7,} {per_video:>9} {t_sample:>8.2f}s"
        for part in ("face", "body"):
            t0 = time.perf_counter()
            res = cl.cluster_frames(sub, part, seed=args.seed)
            row += f" {time.perf_counter() - t0:>17.2f}s {res.n_clusters:>8}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
