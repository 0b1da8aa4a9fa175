"""Benchmark: validating one real-sized VENUS row (15,000 frames of 156 + 179 floats).

    python bench/validate.py [--repeat N]

Prints the median time of ``validate_row`` on the row read from Arrow (what ``validate``
and ``load_venus`` do) and on a row already holding numpy-backed Arrow tracks, plus the
time to validate and clean a row with one bad frame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from tests.test_validation import BODY, _as_table, big_row  # noqa: E402
from venus_analysis import schema  # noqa: E402
from venus_analysis.validation import arrow_row, clean_row, validate_row  # noqa: E402


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    row = big_row()
    arrow = arrow_row(_as_table(row), 0)
    validate_row(arrow)  # warm up imports and caches
    t_clean = _median_seconds(lambda: validate_row(arrow, 0), args.repeat)
    flat = np.zeros(15_000 * schema.BODY_DIM, dtype=np.float32)
    flat[schema.BODY_DIM * 800 + 5] = np.nan
    row[BODY]["features"] = pa.ListArray.from_arrays(row[BODY]["features"].offsets, pa.array(flat))
    t_bad = _median_seconds(lambda: clean_row(row, validate_row(row, 0)), args.repeat)
    print("one row of 15,000 frames (156 + 179 floats each):")
    print(f"  validate_row from Arrow, clean row:        {t_clean * 1000:8.1f} ms (median of {args.repeat})")
    print(f"  validate_row + clean_row, one NaN frame:   {t_bad * 1000:8.1f} ms (median of {args.repeat})")


if __name__ == "__main__":
    main()
