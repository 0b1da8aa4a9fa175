"""The bias audit: representation measures, group differences with cluster-bootstrap
intervals, and the planted channel differences of the synthetic data found (and nothing else)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from venus_analysis import bias


# ---------------------------------------------------------------------------------------
# Representation
# ---------------------------------------------------------------------------------------
def test_gini_known_values():
    assert bias.gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert bias.gini([0, 0, 0, 1]) == pytest.approx(0.75)  # (n - 1) / n when one holds all
    assert bias.gini([1, 3]) == pytest.approx(0.25)  # |1 - 3| / (2 * 2 * mean 2) ... pairs over 2 n^2 mean
    assert np.isnan(bias.gini([]))
    with pytest.raises(ValueError, match="non-negative"):
        bias.gini([3, -1, 2])


def test_top_k_share():
    assert bias.top_k_share([1, 2, 7], 1) == pytest.approx(0.7)
    assert bias.top_k_share([1, 2, 7], 5) == pytest.approx(1.0)


def test_representation_of_the_synthetic_channels(audit_synth):
    data, truth, tables = audit_synth
    rep = bias.representation(tables.utterances, tables.segments)
    per_channel = pd.concat([data[s].to_pandas()[["channel_id"]] for s in data])["channel_id"].value_counts()
    assert rep["segments"] == sum(len(data[s]) for s in data)
    assert rep["channels"]["n"] == len(per_channel)
    assert rep["channels"]["gini"] == pytest.approx(bias.gini(per_channel.to_numpy()))
    assert rep["channels"]["top1_share"] == pytest.approx(per_channel.max() / per_channel.sum())
    assert 0 < rep["channels"]["gini"] < 1  # Zipf-like channel sizes: concentrated, not total
    # The planted talk-time imbalance: the host (speaker 0) talks more on average.
    assert rep["talk_time"]["speaker0_share_mean"] > 0.5
    trunc = rep["truncation"]
    assert 0 < trunc["share_utterances_cut"] < 0.2  # the long monologues, cut at 512 frames
    assert trunc["share_frames_cut_in_cut_utterances"] > trunc["share_frames_cut"]


# ---------------------------------------------------------------------------------------
# Group differences on constructed tables
# ---------------------------------------------------------------------------------------
def _table(effect: float, rng) -> pd.DataFrame:
    """Utterances of 40 videos in two groups; group "b" has ``effect`` x the measure."""
    rows = []
    for v in range(40):
        g = "a" if v < 20 else "b"
        level = rng.lognormal(0, 0.1) * (effect if g == "b" else 1.0)  # per-video level
        for _ in range(10):
            rows.append({"video_id": f"v{v}", "grp": g, "seconds": 5.0, "n_frames": 125,
                         "x": level * rng.lognormal(0, 0.3)})  # fmt: skip
    return pd.DataFrame(rows)


def test_group_differences_find_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    found = bias.group_differences(_table(1.5, rng), "grp", ["x"], n_boot=500, cluster="video_id")
    b = found.set_index("group").loc["b"]
    assert b["rel_diff"] == pytest.approx(0.5, abs=0.12)
    assert b["ci_low"] > 0.2 and b["flagged"] and b["excludes_zero"]
    assert found.set_index("group").loc["a", "flagged"]  # a is lower than the rest (b)
    null = bias.group_differences(_table(1.0, rng), "grp", ["x"], n_boot=500, cluster="video_id")
    assert not null["flagged"].any()
    assert (null["ci_low"] < 0.2).all() and (null["ci_high"] > -0.2).all()


def test_small_groups_and_rare_events_are_not_tested():
    rng = np.random.default_rng(1)
    t = _table(3.0, rng)
    t.loc[t["video_id"].isin(["v20", "v21", "v22"]), "grp"] = "c"  # a group of 3 videos
    t["cue_nod"] = 0
    t.loc[:5, "cue_nod"] = 1  # 6 events in all
    res = bias.group_differences(t, "grp", ["x", "cue_nod"], n_boot=200, cluster="video_id")
    c = res[(res["group"] == "c")]
    assert not c["tested"].any() and c["ci_low"].isna().all()
    assert not res.loc[res["measure"] == "cue_nod", "tested"].any()


def test_group_differences_name_a_missing_column():
    t = _table(1.0, np.random.default_rng(2))
    with pytest.raises(ValueError, match="no column 'channel'"):
        bias.group_differences(t, "channel", ["x"])
    with pytest.raises(ValueError, match="no column 'jitter_body'"):
        bias.group_differences(t, "grp", ["jitter_body"], cluster="video_id")


def test_resampling_unit():
    t = pd.DataFrame({"video_id": ["a", "b"], "channel_id": ["c1", "c2"], "speaker": [0, 1]})
    assert bias.resampling_unit(t, "channel_id") == "video_id"
    assert bias.resampling_unit(t, "speaker") == "channel_id"  # hosts repeat across a channel's videos
    assert bias.resampling_unit(t.assign(channel_id="unknown"), "speaker") == "video_id"


# ---------------------------------------------------------------------------------------
# The planted truth
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def audit(audit_synth):
    return bias.audit(audit_synth[2], n_boot=1000, seed=0)


def _channel_records(audit, truth, key="behaviour") -> pd.DataFrame:
    rank = {c["channel_id"]: c["rank"] for c in truth.channels}
    df = pd.DataFrame(audit[key])
    df = df[df["group_by"] == "channel_id"].copy()
    df["rank"] = df["group"].map(rank)
    return df


def test_planted_channels_are_found_with_intervals_excluding_zero(audit_synth, audit):
    _, truth, _ = audit_synth
    beh = _channel_records(audit, truth).set_index(["rank", "measure"])
    for measure in ("jaw_opening", "head_oscillation"):  # both scale with expressivity
        animated, reserved = beh.loc[(1, measure)], beh.loc[(2, measure)]
        assert animated["flagged"] and animated["ci_low"] > 0.2, (measure, animated.to_dict())
        assert reserved["flagged"] and reserved["ci_high"] < -0.2, (measure, reserved.to_dict())
    qual = _channel_records(audit, truth, "quality").set_index(["rank", "measure"])
    shaky = qual.loc[(3, "jitter_body")]
    assert shaky["flagged"] and shaky["ci_low"] > 1.0  # 4x jitter
    # Jitter inflates every speed of the shaky channel: marked as confounded, not as behaviour.
    shaky_beh = beh.loc[3]
    assert shaky_beh.loc["hand_speed", "flagged"] and shaky_beh["confounded_by_quality"].all()
    assert not beh.drop(index=3, level=0)["confounded_by_quality"].any()


def test_unplanted_channels_and_roles_are_not_flagged(audit_synth, audit):
    _, truth, _ = audit_synth
    beh, qual = _channel_records(audit, truth), _channel_records(audit, truth, "quality")
    unplanted = [r for r in beh["rank"].unique() if r not in (1, 2, 3)]
    tested = beh[beh["rank"].isin(unplanted) & beh["tested"]]
    assert tested["rank"].nunique() >= 2  # ranks 0 and 4 have enough videos to be tested
    assert not tested["flagged"].any(), tested[tested["flagged"]][["rank", "measure", "rel_diff", "ci_low", "ci_high"]]
    assert not qual[qual["rank"].isin(unplanted)]["flagged"].any()
    flagged = pd.DataFrame(audit["flagged"])
    assert not (flagged["group_by"] == "speaker").any()  # no behaviour difference by role was planted
    # A topic can only be flagged through a planted channel that makes most of its videos.
    main_topics = {c["main_topic"] for c in truth.channels if c["rank"] in (1, 2, 3)}
    assert set(flagged.loc[flagged["group_by"] == "topic", "group"]) <= main_topics


def test_sentiment_faces_are_found(audit):
    beh = pd.DataFrame(audit["behaviour"])
    sent = beh[beh["group_by"] == "sentiment"].set_index(["group", "measure"])
    assert sent.loc[("negative", "cue_frown"), "flagged"] and sent.loc[("negative", "cue_frown"), "rel_diff"] > 2
    # Smiles are rarer (a few dozen events) and resampled over six channels: the positive
    # group's interval is wide, but neutral sentences clearly lack them.
    assert sent.loc[("positive", "cue_smile"), "rel_diff"] > 1
    assert sent.loc[("neutral", "cue_smile"), "flagged"] and sent.loc[("neutral", "cue_smile"), "ci_high"] < -0.2


def test_audit_is_json_safe_and_says_what_venus_lacks(audit):
    import json

    text = json.dumps(audit, allow_nan=False)
    assert "demographic" in audit["not_in_venus"]
    assert json.loads(text)["settings"]["min_effect"] == 0.2
