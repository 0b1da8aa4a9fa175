"""The synthetic VENUS: format, determinism, realism knobs, and the planted truth.

The planted-rule tests measure the motion the way an analysis would (from the dataset's
feature tracks and words only, never from the truth file), then compare windows that
start at trigger words with windows at other words.
"""

from __future__ import annotations

import numpy as np
import pytest

from venus_analysis import kinematics, schema
from venus_analysis import synthetic_rules as rules
from venus_analysis.frames import read_track, utterance_groups
from venus_analysis.synthetic import SyntheticConfig, generate, generate_venus, load_synthetic_truth, save_synthetic

J = schema.JOINT_INDEX


def test_columns_and_features_match_the_contract(synth):
    for split in schema.SPLITS:
        ds = synth[split]
        assert ds.features == schema.VENUS_FEATURES
        assert len(ds) > 0
    row = synth["train"][0]
    assert len(row["video_id"]) == 11
    assert row["fps"] == schema.FPS
    # nested columns come back as dicts of lists, frames as "<index>_..." strings
    assert isinstance(row["conversation"], dict) and isinstance(row["conversation"]["text"], list)
    assert all(isinstance(f, str) and f.split("_")[0].isdigit() for f in row["facial_expression"]["frame"][:50])
    assert len(row["facial_expression"]["features"][0]) == schema.FACE_DIM
    assert len(row["body_language"]["features"][0]) == schema.BODY_DIM


def test_generation_is_deterministic_and_seed_dependent():
    cfg = dict(n_segments=3, seconds=30.0)
    a, ta = generate(SyntheticConfig(seed=11, **cfg), progress=False)
    b, tb = generate(SyntheticConfig(seed=11, **cfg), progress=False)
    c, _ = generate(SyntheticConfig(seed=12, **cfg), progress=False)
    for split in schema.SPLITS:
        assert a[split].data.table.equals(b[split].data.table)
    assert ta.events == tb.events
    assert a["train"]["conversation"] != c["train"]["conversation"]


def test_splits_hold_whole_videos(synth):
    train = set(synth["train"]["video_id"])
    test = set(synth["test"]["video_id"])
    assert train and test and not train & test


def test_root_pose_constant_and_face_identity_fixed_per_utterance(synth):
    row = synth["train"][1]
    body = read_track(row["body_language"])
    assert np.all(body.features[:, schema.BODY_ROOT] == 0.0)
    face = read_track(row["facial_expression"])
    order, ids, starts = utterance_groups(face.utt_ids, face.frames)
    shapes = face.features[order][:, schema.FACE_LAYOUT.shape]
    first = shapes[starts[0] : starts[1]]
    assert np.allclose(first, first[0])  # identity shape does not move within an utterance


def test_conversation_realism(synth, truth):
    rates, gaps, n_overlap, n_turns = [], [], 0, 0
    for row in synth["train"]:
        conv = row["conversation"]
        starts, ends = np.array(conv["start_time"]), np.array(conv["end_time"])
        assert np.all(ends > starts)
        assert np.all(np.diff(starts) > 0), "utterances are in time order"
        speakers = np.array(conv["speaker"])
        assert set(speakers) <= {0, 1}
        n_turns += int(np.sum(speakers[1:] != speakers[:-1]))
        for words in conv["words"]:
            dur = words["end_time"][-1] - words["start_time"][0]
            if dur > 3:
                rates.append(len(words["word"]) / dur)
        g = starts[1:] - ends[:-1]
        gaps += g.tolist()
        n_overlap += int(np.sum(g < 0))
    assert 2.3 < np.median(rates) < 3.7, "speech rate around 2.5-3.5 words/s"
    assert n_overlap > 0 and n_overlap < 0.2 * len(gaps), "a few overlaps"
    assert np.median(gaps) > 0.1, "pauses between turns"
    assert n_turns > 0.7 * len(gaps), "mostly alternating speakers"
    shares = {k: 0 for k in rules.SENTIMENT_SHARES}
    for s in truth.sentences:
        shares[s["sentiment"]] += 1
    total = sum(shares.values())
    for k, target in rules.SENTIMENT_SHARES.items():
        assert abs(shares[k] / total - target) < 0.06, (k, shares[k] / total)


def test_channels_are_heavy_tailed():
    data, truth = generate(SyntheticConfig(n_segments=60, seconds=15.0, seed=5), progress=False)
    ids = np.concatenate([np.array(data[s]["channel_id"]) for s in schema.SPLITS])
    counts = np.sort(np.unique(ids, return_counts=True)[1])[::-1]
    assert counts[0] >= 3 * np.median(counts), counts
    assert {c["channel_id"] for c in truth.channels} >= set(ids)


def test_harmful_utterances_are_listed_and_removed():
    data, truth = generate(SyntheticConfig(n_segments=6, seconds=60.0, seed=2, harmful_rate=0.2), progress=False)
    n_harmful = 0
    for split in schema.SPLITS:
        for row in data[split]:
            harmful = set(row["harmful_utterance_id"])
            n_harmful += len(harmful)
            assert not harmful & set(row["conversation"]["utterance_id"])
            assert not harmful & set(int(u) for u in row["facial_expression"]["utt_id"])
    assert n_harmful > 0


def test_active_speaker_frames_have_gaps_and_follow_utterances(synth):
    n_gapped = 0
    for row in synth["train"]:
        conv = row["conversation"]
        track = read_track(row["facial_expression"])
        order, ids, starts = utterance_groups(track.utt_ids, track.frames)
        assert list(ids) == sorted(conv["utterance_id"])
        for k, uid in enumerate(ids):
            frames = track.frames[order[starts[k] : starts[k + 1]]]
            i = conv["utterance_id"].index(uid)
            assert frames[0] >= int(conv["start_time"][i] * schema.FPS)
            assert frames[-1] <= int(conv["end_time"][i] * schema.FPS)
            n_gapped += int(np.any(np.diff(frames) > 1))
    assert n_gapped > 0


def test_cue_dependent_replies_are_recorded(synth, truth):
    assert len(truth.prompts) > 5
    manners = {p["manner"] for p in truth.prompts}
    assert manners == {"warm", "cold"}
    texts = {}
    for split in schema.SPLITS:
        for row in synth[split]:
            conv = row["conversation"]
            for uid, t in zip(conv["utterance_id"], conv["text"]):
                texts[(row["video_id"], row["segment_id"], uid)] = t
    for p in truth.prompts:
        prompt = texts[(p["video_id"], p["segment_id"], p["prompt_utterance_id"])]
        reply = texts[(p["video_id"], p["segment_id"], p["reply_utterance_id"])]
        assert prompt in rules.AMBIGUOUS_PROMPTS
        assert p["reply_category"] == rules.REPLY_CATEGORY_FOR_MANNER[p["manner"]]
        assert any(reply.startswith(r) for r in rules.REPLY_TEMPLATES[p["reply_category"]])
    # the words alone do not decide the reply: both manners occur with the same prompts
    by_prompt = {}
    for p in truth.prompts:
        by_prompt.setdefault(p["prompt_text"], set()).add(p["manner"])
    assert any(len(m) == 2 for m in by_prompt.values())


def test_cache_and_save_round_trip(tmp_path):
    a = generate_venus(2, 20.0, seed=4, cache_dir=tmp_path, progress=False)
    b = generate_venus(2, 20.0, seed=4, cache_dir=tmp_path, progress=False)  # from the cache
    assert a["train"].data.table.equals(b["train"].data.table)
    assert len(list(tmp_path.iterdir())) == 1
    data, truth = generate(SyntheticConfig(n_segments=2, seconds=20.0, seed=4), progress=False)
    out = save_synthetic(data, truth, tmp_path / "saved")
    assert load_synthetic_truth(out).events == truth.events
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp folder left behind"


def test_bad_config_is_refused_clearly():
    with pytest.raises(ValueError, match="n_segments"):
        SyntheticConfig(n_segments=0)
    with pytest.raises(ValueError, match="seconds"):
        SyntheticConfig(seconds=1)
    with pytest.raises(ValueError, match="backchannel_rate is a probability"):
        SyntheticConfig(backchannel_rate=1.5)


def test_backchannels_are_short_slow_listener_turns(synth):
    from venus_analysis.synthetic_text import BACKCHANNELS

    said = {text for text, _, _ in BACKCHANNELS}
    # Off by default: the default data is that of earlier versions, without them.
    assert not any(" ".join(w["word"]) in said for row in synth["train"] for w in row["conversation"]["words"])
    data, truth = generate(SyntheticConfig(n_segments=24, seconds=90.0, seed=3, backchannel_rate=0.12), progress=False)
    short, long_rates, short_rates, yes = [], [], [], []
    for row in data["train"]:
        conv = row["conversation"]
        for uid, words in zip(conv["utterance_id"], conv["words"]):
            text, dur = " ".join(words["word"]), words["end_time"][-1] - words["start_time"][0]
            if text in said:
                short.append(text)
                short_rates.append(len(words["word"]) / (dur + 0.02))
                if text == "Yes, exactly.":
                    yes.append((row["video_id"], row["segment_id"], uid))
            elif dur > 3:
                long_rates.append(len(words["word"]) / dur)
    n_utt = sum(len(r["conversation"]["utterance_id"]) for r in data["train"])
    assert 0.04 < len(short) / n_utt < 0.25, (len(short), n_utt)
    assert len(yes) >= 3
    # Drawn out: slower than the speakers' running speech, so that a 0.9 s nod fits in them.
    assert np.median(short_rates) < 0.8 * np.median(long_rates), (np.median(short_rates), np.median(long_rates))
    # Their affirmations nod like any other: the truth holds nod events in "Yes, exactly." turns.
    nods = {(e["video_id"], e["segment_id"], e["utterance_id"]) for e in truth.events if e["rule"] == "affirmation_nod"}
    assert sum(k in nods for k in yes) >= 0.5 * len(yes)


# ---------------------------------------------------------------------------------------
# Planted rules, measured from the data
# ---------------------------------------------------------------------------------------
def _utterances(data):
    """Per utterance: words with frame indices (absolute) and aligned face/body arrays."""
    for row in data:
        conv = row["conversation"]
        face, body = read_track(row["facial_expression"]), read_track(row["body_language"])
        fo, fids, fs = utterance_groups(face.utt_ids, face.frames)
        bo, bids, bs = utterance_groups(body.utt_ids, body.frames)
        for k, uid in enumerate(fids):
            i = conv["utterance_id"].index(uid)
            sel_f, sel_b = fo[fs[k] : fs[k + 1]], bo[bs[k] : bs[k + 1]]
            words = conv["words"][i]
            yield {
                "words": words["word"],
                "word_frames": (np.array(words["start_time"]) * schema.FPS).astype(int),
                "frames": face.frames[sel_f],
                "face": face.features[sel_f],
                "body": body.features[sel_b],
            }


def _window_stat(cue: str, face: np.ndarray, body: np.ndarray) -> float:
    """How strongly a window of frames shows ``cue`` (larger = more)."""
    head = face[:, schema.FACE_LAYOUT.head_rotation]
    expr = face[:, schema.FACE_LAYOUT.expression]
    if cue == "nod":
        return float(np.abs(np.diff(head[:, 0])).mean())
    if cue == "head_shake":
        return float(np.abs(np.diff(head[:, 1])).mean())
    if cue in ("smile", "frown"):
        d = rules.expression_vector(cue)
        return float((expr @ d / np.linalg.norm(d)).mean())
    rot = kinematics.local_rotations_from_body(body, face)
    joints = kinematics.forward_kinematics(rot)
    if cue == "hand_to_chin":
        chin = kinematics.chin_position(joints, rot)
        return -float(np.linalg.norm(joints[:, J["right_middle1"]] - chin, axis=-1).min())
    if cue == "beat":
        return float(np.linalg.norm(np.diff(joints[:, J["right_wrist"]], axis=0), axis=-1).mean())
    if cue == "air_quotes":
        wrists = joints[:, [J["left_wrist"], J["right_wrist"]], 1] - joints[:, [J["neck"]], 1]
        return float(wrists.min(axis=1).max())
    if cue == "shrug":
        collar = body[:, schema.body_joint_slice("left_collar")][:, 2] - body[:, schema.body_joint_slice("right_collar")][:, 2]
        return float(collar.mean())
    raise KeyError(cue)


@pytest.mark.parametrize("rule", rules.CUE_RULES, ids=lambda r: r.name)
def test_each_planted_rule_is_visible_in_the_motion(synth, rule):
    rng = np.random.default_rng(0)
    other_cue_words = {t for r in rules.CUE_RULES if r.cue == rule.cue for t in r.triggers}
    at_trigger, elsewhere = [], []
    for utt in _utterances(synth["train"]):
        hits = {i for i, r in rules.trigger_positions(utt["words"]) if r.name == rule.name}
        near = {i for i, r in rules.trigger_positions(utt["words"]) if r.cue == rule.cue}
        n_win = int(rule.duration_s * schema.FPS)
        for i, w in enumerate(utt["words"]):
            start = utt["word_frames"][i] + int(rule.onset_s * schema.FPS)
            sel = (utt["frames"] >= start) & (utt["frames"] < start + n_win)
            if sel.sum() < n_win // 2:
                continue
            if i in hits:
                at_trigger.append(_window_stat(rule.cue, utt["face"][sel], utt["body"][sel]))
            elif not near and rules.normalize_word(w) not in other_cue_words and rng.random() < 0.15:
                elsewhere.append(_window_stat(rule.cue, utt["face"][sel], utt["body"][sel]))
    assert len(at_trigger) >= 8, f"too few triggers of {rule.name} in the sample"
    trig, base = np.median(at_trigger), np.median(elsewhere)
    spread = np.percentile(elsewhere, 75) - np.percentile(elsewhere, 25)
    # The typical trigger window shows the cue far more than the typical other window.
    assert trig - base > 1.0 * spread, (rule.name, trig, base, spread)


def test_hand_to_chin_really_reaches_the_chin():
    from venus_analysis.synthetic_motion import key_poses

    pose = key_poses()["hand_to_chin"]
    joints = kinematics.forward_kinematics(pose)
    chin = kinematics.chin_position(joints[None], pose[None])[0]
    assert np.linalg.norm(joints[J["right_middle1"]] - chin) < 0.06  # metres
    idle = key_poses()["idle"]
    idle_joints = kinematics.forward_kinematics(idle)
    assert np.linalg.norm(idle_joints[J["right_middle1"]] - chin) > 0.3


def test_the_data_card_describes_every_planted_rule():
    from pathlib import Path

    card = (Path(__file__).resolve().parents[1] / "data_cards" / "synthetic_venus.md").read_text()
    for rule in rules.CUE_RULES:
        row = next((ln for ln in card.splitlines() if f"`{rule.name}`" in ln), None)
        assert row is not None, f"{rule.name} missing from the card"
        assert ", ".join(rule.triggers) in row and f"| {rule.probability} |" in row
    flat = " ".join(card.split())  # the card wraps lines
    for prompt in rules.AMBIGUOUS_PROMPTS:
        assert prompt in flat, prompt
