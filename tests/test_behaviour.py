"""The behaviour pass: utterance, sentence and segment tables, jitter, topics, cue rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from venus_analysis import behaviour, cues


@pytest.fixture(scope="module")
def tables(synth):
    return behaviour.measure_behaviour(synth["train"])


def test_one_row_per_utterance_and_segment(synth, tables):
    train = synth["train"]
    n_utts = sum(len(c["utterance_id"]) for c in train["conversation"])
    assert len(tables.utterances) == n_utts
    assert tables.n_segments == len(train) == len(tables.segments)
    u = tables.utterances
    assert set(u["speaker"]) == {0, 1}
    assert (u["n_frames"] > 0).all() and (u["coverage"] > 0.5).all()
    assert u["speaker_key"].str.contains(":").all()
    # Talk seconds per segment add up to the utterance seconds.
    assert tables.segments[["talk_0", "talk_1"]].to_numpy().sum() == pytest.approx(u["seconds"].sum())


def test_parallel_shards_give_the_same_tables(synth, tables):
    two = behaviour.measure_behaviour(synth["train"], workers=2)
    pd.testing.assert_frame_equal(two.utterances, tables.utterances)
    pd.testing.assert_frame_equal(two.sentences, tables.sentences)
    assert two.cooccurrence.n_word == tables.cooccurrence.n_word


def test_cue_counts_match_detect_cues(synth, tables):
    from venus_analysis import extraction

    row = synth["train"][0]
    utt = extraction.segment_utterances(row, full=True).utterances[0]
    events = cues.detect_cues(utt)
    first = tables.utterances.iloc[0]
    for c in cues.CUE_NAMES:
        assert first[f"cue_{c}"] == sum(e.cue == c for e in events)


def test_sentences_hold_the_events_that_start_in_them(tables):
    s, u = tables.sentences, tables.utterances
    assert {"compound", "sentiment"} <= set(s.columns)
    per_utt = s.groupby(["video_id", "segment_id", "utterance_id"])[[f"cue_{c}" for c in cues.CUE_NAMES]].sum()
    joined = u.set_index(["video_id", "segment_id", "utterance_id"])[per_utt.columns].loc[per_utt.index]
    # Events between sentences (in the pause) or after the last word are in no sentence.
    assert (per_utt.to_numpy() <= joined.to_numpy()).all()
    assert per_utt.to_numpy().sum() > 0.6 * joined.to_numpy().sum()


def test_jitter_estimates_white_noise():
    rng = np.random.default_rng(0)
    x = 0.02 * rng.standard_normal((4000, 10)) + np.linspace(0, 1, 4000)[:, None]  # noise on a slow ramp
    frames = np.arange(4000)
    assert behaviour.jitter(x, frames) == pytest.approx(0.02, rel=0.05)
    assert np.isnan(behaviour.jitter(x[:2], frames[:2]))
    # Frames next to a gap are not used: a jump across the gap is not noise.
    gappy = np.r_[np.arange(100), np.arange(200, 300)]
    y = np.r_[np.zeros(100), np.ones(100)][:, None] * np.ones((1, 3))
    assert behaviour.jitter(y, gappy) == pytest.approx(0.0)


def test_shaky_channel_has_four_times_the_jitter(audit_synth):
    _, truth, tables = audit_synth
    u = tables.utterances
    shaky = next(c["channel_id"] for c in truth.channels if c["rank"] == 3)
    ratio = u.loc[u["channel_id"] == shaky, "jitter_body"].median() / u.loc[u["channel_id"] != shaky, "jitter_body"].median()
    assert 3.0 < ratio < 5.0  # planted: 0.03 vs 0.0075 (smooth motion adds a little to both)


def test_topic_of_title():
    assert behaviour.topic_of_title("Two Mics #3: Weekly recap (recap)") == "recap"
    assert behaviour.topic_of_title("An interview with a chef") == "interview"
    assert behaviour.topic_of_title("Cooking with grandma") == "other"
    assert behaviour.topic_of_title(None) == "unknown"


def test_topics_come_from_synthetic_titles(synth, tables):
    titles = synth["train"]["title"]
    assert set(tables.utterances["topic"]) <= {t.rsplit("(", 1)[1].rstrip(")") for t in titles}


def test_cue_rates_per_minute(tables):
    u = tables.utterances
    overall = behaviour.cue_rates(u)
    assert overall.loc[0, "minutes"] == pytest.approx(u["seconds"].sum() / 60)
    assert overall.loc[0, "nod"] == pytest.approx(u["cue_nod"].sum() / (u["seconds"].sum() / 60))
    by = behaviour.cue_rates(u, "speaker")
    assert list(by["speaker"]) == [0, 1]
    assert by["minutes"].sum() == pytest.approx(overall.loc[0, "minutes"])
    by_sent = behaviour.cue_rates(tables.sentences, "sentiment")
    rate = by_sent.set_index("sentiment")
    assert rate.loc["negative", "frown"] > 3 * rate.loc["neutral", "frown"]  # the planted sentiment faces
    assert rate.loc["positive", "smile"] > 2 * rate.loc["neutral", "smile"]


def test_a_utterance_without_frames_is_kept_and_counted():
    from tests.factories import make_row

    row = make_row(n_utterances=3)
    row["facial_expression"] = {k: [v for v, u in zip(vals, row["facial_expression"]["utt_id"]) if int(u) != 1]
                                for k, vals in row["facial_expression"].items()}  # fmt: skip
    row["body_language"] = {k: [v for v, u in zip(vals, row["body_language"]["utt_id"]) if int(u) != 1]
                            for k, vals in row["body_language"].items()}  # fmt: skip
    t = behaviour.measure_behaviour([row])
    assert len(t.utterances) == 3
    assert t.skipped["utterances_without_frames"] == 1
    empty = t.utterances.set_index("utterance_id").loc[1]
    assert empty["n_frames"] == 0 and np.isnan(empty["hand_speed"])
