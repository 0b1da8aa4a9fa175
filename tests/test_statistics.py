"""Table 2 statistics: the streaming reducer against brute-force Python over rows."""

from __future__ import annotations

import math
import re

import datasets
import numpy as np
import pytest

from tests.factories import make_row
from venus_analysis import schema
from venus_analysis.statistics import (
    DatasetStats,
    compute_split_stats,
    compute_stats,
    format_consistency,
    paper_consistency,
)
from venus_analysis.synthetic import SyntheticConfig, generate


@pytest.fixture(scope="module")
def dsd():
    data, _ = generate(SyntheticConfig(n_segments=10, seconds=60.0, seed=5), progress=False)
    return data


@pytest.fixture(scope="module")
def rows(dsd):
    return [row for split in dsd for row in dsd[split].to_list()]


def _utterances(rows):
    """Per utterance (row index, id, speaker, start, end, words, text), brute force."""
    out = []
    for r, row in enumerate(rows):
        c = row["conversation"]
        for i in range(len(c["utterance_id"])):
            out.append((r, c["utterance_id"][i], c["speaker"][i], c["start_time"][i],
                        c["end_time"][i], c["words"][i]["word"], c["text"][i]))  # fmt: skip
    return out


def _frame_counts(rows, track=schema.FACE):
    counts = {}
    for r, row in enumerate(rows):
        for u in row[track]["utt_id"]:
            counts[(r, int(u))] = counts.get((r, int(u)), 0) + 1
    return counts


def test_counts_match_brute_force(dsd, rows):
    d = compute_stats(dsd).to_dict()
    utts = _utterances(rows)
    assert d["segments"] == len(rows)
    assert d["turns"] == len(utts)
    assert d["words"] == sum(len(u[5]) for u in utts)
    vocab = {re.sub(r"[!-/:-@\[-`{-~\s]", "", w.lower()) for u in utts for w in u[5]} - {""}
    assert d["unique_words"] == len(vocab)
    sentences = sum(sum(1 for p in re.split(r"[.!?]+", u[6]) if p.strip()) for u in utts)
    assert d["sentences"] == sentences
    assert d["turns_per_dialogue_mean"] == pytest.approx(len(utts) / len(rows))


def test_frames_coverage_truncation_harmful_match_brute_force(dsd, rows):
    d = compute_stats(dsd, batch_size=3).to_dict()
    utts = _utterances(rows)
    counts = _frame_counts(rows)
    per_utt = np.array([counts.get((u[0], u[1]), 0) for u in utts])
    assert d["face_frames"] == sum(counts.values()) == per_utt.sum()
    assert d["body_frames"] == sum(_frame_counts(rows, schema.BODY).values())
    assert d["frames_per_utterance_mean"] == pytest.approx(per_utt.mean())
    assert d["frames_per_utterance_median"] == pytest.approx(np.median(per_utt))
    seconds = sum(u[4] - u[3] for u in utts)
    assert d["frame_coverage"] == pytest.approx(per_utt.sum() / (seconds * schema.FPS))
    assert d["seconds_per_utterance_mean"] == pytest.approx(seconds / len(utts))
    over = per_utt > schema.WINDOW_FRAMES
    assert d["share_utterances_over_window"] == pytest.approx(over.mean())
    cut = np.maximum(per_utt - schema.WINDOW_FRAMES, 0).sum() / per_utt.sum()
    assert d["share_frames_cut_by_window"] == pytest.approx(cut)
    harmful = sum(len(r["harmful_utterance_id"]) for r in rows)
    assert d["harmful"] == harmful
    assert d["harmful_share"] == pytest.approx(harmful / (harmful + len(utts)))


def test_gaps_overlaps_and_balance_match_brute_force(dsd, rows):
    d = compute_stats(dsd).to_dict()
    gaps, shares = [], []
    for r in range(len(rows)):
        us = sorted((u for u in _utterances(rows[r : r + 1])), key=lambda u: u[3])
        gaps += [b[3] - a[4] for a, b in zip(us, us[1:]) if a[2] != b[2]]
        talk = sum(u[4] - u[3] for u in us)
        if talk > 0:
            shares.append(sum(u[4] - u[3] for u in us if u[2] == 0) / talk)
    assert d["speaker_changes"] == len(gaps) > 0
    assert d["gap_mean_s"] == pytest.approx(np.mean(gaps))
    assert d["overlap_share"] == pytest.approx(np.mean(np.array(gaps) < 0))
    assert d["overlap_share"] > 0  # the generator plants overlaps
    assert d["speaker0_share_mean"] == pytest.approx(np.mean(shares))
    assert d["speaker0_share_std"] == pytest.approx(np.std(shares))


def _same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float) and math.isnan(a[k]):
            assert math.isnan(b[k]), k
        else:
            assert a[k] == pytest.approx(b[k]), k


def test_merge_of_halves_equals_whole(dsd):
    train = dsd["train"]
    half = len(train) // 2
    whole = compute_stats(train)
    merged = compute_stats(train.select(range(half))).merge(compute_stats(train.select(range(half, len(train)))))
    _same(merged.to_dict(), whole.to_dict())
    assert merged.vocabulary == whole.vocabulary


def test_streaming_equals_in_memory_and_splits_combine(dsd, rows):
    whole = compute_stats(dsd).to_dict()
    streamed = DatasetStats()
    for split in dsd:
        streamed.merge(compute_stats(dsd[split].to_iterable_dataset(), batch_size=4))
    _same(streamed.to_dict(), whole)
    _same(compute_stats(rows, batch_size=5).to_dict(), whole)
    per_split = compute_split_stats(dsd)
    assert set(per_split) == set(dsd)
    assert sum(s.segments for s in per_split.values()) == whole["segments"]


def test_truncation_share_on_long_utterances():
    rows = [make_row(n_utterances=2, frames_per_utterance=600, segment_id=0),
            make_row(n_utterances=2, frames_per_utterance=100, segment_id=1)]  # fmt: skip
    d = compute_stats(rows).to_dict()
    assert d["frames_per_utterance_median"] == 350
    assert d["share_utterances_over_window"] == pytest.approx(0.5)
    assert d["share_frames_cut_by_window"] == pytest.approx(2 * 88 / 1400)
    assert d["frame_coverage"] == pytest.approx(1.0, abs=0.01)
    assert d["words_per_utterance_mean"] == 3
    assert d["unique_words"] == 4  # hello, there, w0, w1
    assert d["gap_mean_s"] == pytest.approx(0.4)
    assert d["overlap_share"] == 0


def test_harmful_rows_and_empty_data():
    d = compute_stats([make_row(n_utterances=4, harmful=(1,))]).to_dict()
    assert d["turns"] == 3 and d["harmful"] == 1 and d["harmful_share"] == pytest.approx(0.25)
    silent = make_row()
    silent["conversation"] = {k: [] for k in silent["conversation"]}  # frames, no utterances
    d = compute_stats([silent]).to_dict()
    assert d["turns"] == 0 and d["face_frames"] == 0 and d["orphan_face_frames"] == 90
    empty = compute_stats([]).to_dict()
    assert empty["segments"] == 0 and math.isnan(empty["frames_per_utterance_mean"])


def test_paper_consistency_checks_the_paper_against_itself(dsd):
    rows = {r["quantity"]: r for r in paper_consistency()}
    tpd = rows["turns per dialogue"]
    assert tpd["paper"] == 21 and tpd["derived"] == pytest.approx(12.5, abs=0.05)
    assert rows["hours"]["paper"] == 14_910
    assert rows["hours"]["derived"] == pytest.approx(14_910, abs=1)
    assert rows["frames per utterance"]["derived"] == pytest.approx(1382.5)
    assert rows["words per second"]["derived"] == pytest.approx(170.8 / 55.3)
    assert rows["sentiment total %"]["derived"] == pytest.approx(100.0)
    assert all(r["measured"] is None for r in rows.values())
    stats = compute_stats(dsd)
    measured = {r["quantity"]: r for r in paper_consistency(stats)}
    assert measured["dialogues (segments)"]["measured"] == len(dsd["train"]) + len(dsd["test"])
    text = format_consistency(list(measured.values()))
    assert "measured" in text and "12.46" in text and "14,910" in text
    assert "measured" not in format_consistency(list(rows.values())).splitlines()[0]


def test_dataset_stats_is_a_dataclass_with_public_api():
    assert isinstance(compute_stats(datasets.Dataset.from_list([make_row()])), DatasetStats)
