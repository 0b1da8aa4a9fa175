"""One call for the whole dataset analysis: statistics, cues, sentiment, clusters, bias.

:func:`analyze` runs every analysis of this package on a dataset and returns an
:class:`Analysis` (the JSON-safe results plus the tables behind them); :func:`write_analysis`
writes the results as ``stats.json``, ``cues.json``, ``bias.json``, an offline
``report.html`` and a data card ``data_card.md``, which is what
``venus-mars analyze SOURCE --out DIR`` does. The same code runs on the built-in synthetic
VENUS and, unchanged, on ``winston1214/VENUS-1K`` on Colab; only the three passes over the
data (statistics, behaviour, frame sampling) touch every segment, each one segment at a
time, so memory stays bounded.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from . import behaviour, bias, clusters, cues, sentiment, statistics
from .files import atomic_folder

TOP_WORDS = 10  # words kept per cue in cues.json
MIN_WORD_COUNT = 5  # a word must occur this often to be ranked


@dataclass
class Analysis:
    """Results of :func:`analyze`: ``results`` (JSON-safe dicts ``stats``, ``cues``,
    ``bias``, ``meta``) and the objects behind them, for notebooks and figures."""

    results: dict
    tables: behaviour.BehaviourTables
    split_stats: dict = field(default_factory=dict)
    sample: clusters.FrameSample | None = None
    clusters: dict = field(default_factory=dict)  # part -> ClusterResult
    timings: dict = field(default_factory=dict)


def _json_safe(value):
    """Numbers, NaN and numpy types of nested results as plain JSON values (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    return value


def _records(df: pd.DataFrame) -> list[dict]:
    return _json_safe(df.to_dict("records"))


def _splits(data) -> dict:
    """{split name: dataset} of a DatasetDict / dict, or {"data": data} for one split."""
    if isinstance(data, (datasets.DatasetDict, datasets.IterableDatasetDict, dict)):
        if not len(data):
            raise ValueError("analyze: the dataset has no splits")
        return dict(data)
    return {"data": data}


def _combined(splits: dict):
    """All splits as one dataset, each row once: a cheap concatenation of memory-mapped
    tables, or of streams (one split after the other); a list of rows for other inputs."""
    parts = list(splits.values())
    if len(parts) == 1:
        return parts[0]
    for kind in (datasets.Dataset, datasets.IterableDataset):
        if all(isinstance(p, kind) for p in parts):
            return datasets.concatenate_datasets(parts)
    return [row for p in parts for row in p]


def cue_results(tables: behaviour.BehaviourTables, *, top_k: int = TOP_WORDS,
                min_count: int = MIN_WORD_COUNT, thresholds: cues.CueThresholds | None = None) -> dict:
    """The cue part of the analysis (JSON-safe): rates per minute of speech overall and by
    speaker, channel, topic and sentence sentiment; the top words per cue by lift; the
    sentiment distribution next to the paper's; the cue thresholds used."""
    u, s = tables.utterances, tables.sentences
    co = tables.cooccurrence.table(min_count)
    out = {
        "speech_minutes": tables.speech_minutes,
        "rates": _records(behaviour.cue_rates(u))[0] if len(u) else {},
        "rates_by": {g: _records(behaviour.cue_rates(u, g)) for g in ("speaker", "channel_id", "topic")},
        "top_words": {c: _records(cues.top_words(co, c, k=top_k, min_count=min_count, phrases=False))
                      for c in tables.cooccurrence.cues},  # fmt: skip
        "thresholds": asdict(thresholds or cues.CueThresholds()),
        "skipped": tables.skipped,
    }
    if len(s):
        out["rates_by"]["sentiment"] = _records(behaviour.cue_rates(s, "sentiment"))
        out["sentiment"] = _records(sentiment.sentiment_shares(s["sentiment"]))
        out["sentences"] = int(len(s))
    return out


def analyze(data, *, source: str = "data", per_video: int = 10, n_boot: int = 1000, seed: int = 0,
            workers: int | None = None, cluster: bool = True, progress: bool = True) -> Analysis:
    """Run every analysis on ``data`` (a DatasetDict, one split, or rows).

    Statistics are computed per split and over all splits; behaviour, sentiment, clusters
    and the bias audit over all splits together. ``per_video`` frames per video are sampled
    for the t-SNE + DBSCAN clusters (``cluster=False`` skips them); ``n_boot`` bootstrap
    replicates per interval; ``workers`` processes measure behaviour (default: the number
    of CPU cores, at most 4). ``source`` names the data in the results.
    """
    splits = _splits(data)
    combined = _combined(splits)
    workers = workers or min(4, os.cpu_count() or 1)
    timings = {}

    t0 = time.perf_counter()
    split_stats = {name: statistics.compute_stats(d, progress=progress) for name, d in splits.items()}
    total = statistics.DatasetStats()
    for st in split_stats.values():
        total.merge(st)
    timings["statistics_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tables = behaviour.measure_behaviour(combined, workers=workers, progress=progress)
    timings["behaviour_s"] = time.perf_counter() - t0
    if not len(tables.utterances):
        raise ValueError(f"analyze: {source} has no utterances to analyse ({tables.n_segments} segments read)")

    sample, cluster_results, cluster_dicts = None, {}, {}
    if cluster:
        t0 = time.perf_counter()
        sample = clusters.sample_frames(combined, per_video=per_video, seed=seed, progress=progress)
        for part in ("face", "body"):
            try:
                cluster_results[part] = clusters.cluster_frames(sample, part, seed=seed)
                cluster_dicts[part] = cluster_results[part].to_dict()
            except ValueError as err:  # too few frames: say so in the results
                cluster_dicts[part] = {"error": str(err)}
        timings["clusters_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    audit = bias.audit(tables, n_boot=n_boot, seed=seed)
    timings["bias_s"] = time.perf_counter() - t0

    stats_dict = {
        "source": source,
        "all": total.to_dict(),
        "splits": {name: st.to_dict() for name, st in split_stats.items()},
        "paper_consistency": statistics.paper_consistency(total),
    }
    cue_dict = {**cue_results(tables), "clusters": cluster_dicts}
    meta = {"source": source, "splits": list(splits), "segments": tables.n_segments, "seed": seed,
            "per_video": per_video, "n_boot": n_boot, "timings": timings}  # fmt: skip
    results = {"stats": _json_safe(stats_dict), "cues": _json_safe(cue_dict), "bias": _json_safe(audit),
               "meta": _json_safe(meta)}  # fmt: skip
    return Analysis(results, tables, split_stats, sample, cluster_results, timings)


def write_analysis(analysis: Analysis, out_dir: str | os.PathLike, *, dataset_name: str | None = None,
                   command: str | None = None, overwrite: bool = True) -> Path:
    """Write ``stats.json``, ``cues.json``, ``bias.json``, ``meta.json``, ``report.html``
    and ``data_card.md`` into ``out_dir`` (atomically: a temporary folder, then a rename).

    ``dataset_name`` titles the report and the card (default: the analysis' source);
    ``command`` is how the card says it was made (default: the Python calls). Returns the
    folder.
    """
    from . import datacard, report

    name = dataset_name or analysis.results["meta"]["source"]
    with atomic_folder(out_dir, overwrite=overwrite) as tmp:
        for key in ("stats", "cues", "bias", "meta"):
            (tmp / f"{key}.json").write_text(json.dumps(analysis.results[key], indent=1, allow_nan=False))
        (tmp / "report.html").write_text(report.build_report(analysis, title=f"{name}: dataset analysis"))
        (tmp / "data_card.md").write_text(datacard.data_card(analysis.results, dataset_name=name, command=command))
    return Path(out_dir)
