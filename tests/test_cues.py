"""Cue event detection and cue-word co-occurrence, checked against the synthetic truth.

The library never reads the truth: detection works from the tracks alone, and the tests
compare its events and word rankings with what the generator planted.
"""

from __future__ import annotations

import numpy as np
import pytest

from venus_analysis import cues, extraction, schema
from venus_analysis import synthetic_rules as rules
from venus_analysis.synthetic import DEFAULT_JITTER
from venus_analysis.synthetic_motion import Style, key_poses, pack_features

# Detected cue -> (planted cue, planted rule names whose triggers should top its list).
# detected cue -> (planted cue, its rules)
PLANTED = {
    detected: (planted, [r.name for r in rules.CUE_RULES if r.cue == planted])
    for planted, detected in rules.DETECTED_AS.items()
}


def _triggers(names) -> set[str]:
    return {t for r in rules.CUE_RULES if r.name in names for t in r.triggers}


@pytest.fixture(scope="module")
def utterances(synth):
    """Train utterances with their detected events (small: 24 segments of 90 s)."""
    out = []
    for utt in extraction.iter_utterances(synth["train"], full=True, progress=False, min_frames=3):
        out.append((utt.video_id, utt.segment_id, utt.utterance_id, utt.frames.copy(), cues.detect_cues(utt), utt.speaker))
    return out


@pytest.fixture(scope="module")
def table(synth):
    return cues.cue_word_cooccurrence(synth["train"], min_count=5)


# ---------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------
def test_threshold_runs_merge_gaps_and_drop_short_runs():
    x = np.zeros(40, bool)
    x[2:8] = True  # 6 frames
    x[10:13] = True  # gap of 2 after the first run: merged -> 2..13
    x[20:23] = True  # 3 frames, 7 from each neighbour: too short alone
    x[30:36] = True  # gap of 7: separate
    x[38:40] = True  # gap of 2, runs to the end: merged -> 30..40
    assert cues.threshold_runs(x, merge_gap=4, min_frames=5) == [(2, 13), (30, 40)]
    assert cues.threshold_runs(x, merge_gap=1, min_frames=1) == [(2, 8), (10, 13), (20, 23), (30, 36), (38, 40)]
    assert cues.threshold_runs(x, merge_gap=7, min_frames=1) == [(2, 13), (20, 23), (30, 40)]  # gaps of 7 stay
    assert cues.threshold_runs(x, merge_gap=8, min_frames=1) == [(2, 40)]
    assert cues.threshold_runs(np.zeros(5, bool)) == []
    assert cues.threshold_runs(np.ones(5, bool), min_frames=5) == [(0, 5)]
    assert cues.threshold_runs(np.ones(4, bool), min_frames=5) == []


# ---------------------------------------------------------------------------------------
# Detection against the truth
# ---------------------------------------------------------------------------------------
def _overlap(a0, a1, b0, b1) -> bool:
    return a0 < b1 and b0 < a1


def _truth_by_utterance(truth, cue):
    out = {}
    for e in truth.events:
        if e["split"] == "train" and e["cue"] == cue:
            out.setdefault((e["video_id"], e["segment_id"], e["utterance_id"]), []).append(e)
    return out


# Lowest recall of strong planted events accepted per cue (frowns of negations overlap
# sentiment frowns; beats of low-expressivity speakers are slow).
RECALL = {
    "nod": 0.9, "head_shake": 0.9, "hand_to_face": 0.9, "smile": 0.8, "hand_raised": 0.9, "frown": 0.7, "gesture": 0.65,
}


@pytest.mark.parametrize("cue", list(RECALL))
def test_detected_events_match_the_planted_events(utterances, truth, cue):
    planted = _truth_by_utterance(truth, PLANTED[cue][0])
    expressivity = {(s["video_id"], s["speaker"]): s["expressivity"] for s in truth.speakers}
    hit = strong = detected = true_pos = 0
    for vid, seg, uid, frames, events, speaker in utterances:
        mine = [e for e in events if e.cue == cue]
        theirs = planted.get((vid, seg, uid), [])
        # Face and head cues scale with the speaker's expressivity (the "reserved" channel
        # shows them at about half size), so "strong" asks for a visible amplitude.
        scale = expressivity[vid, speaker] if cue in ("smile", "frown", "nod", "head_shake") else 1.0
        for t in theirs:
            # strong, and whole inside the stored frames (not cut by the utterance's end)
            if t["strength"] * scale >= 0.8 and t["start_frame"] >= frames[0] and t["end_frame"] <= frames[-1]:
                strong += 1
                hit += any(_overlap(e.start_frame, e.end_frame, t["start_frame"], t["end_frame"]) for e in mine)
        detected += len(mine)
        true_pos += sum(
            any(_overlap(e.start_frame, e.end_frame, t["start_frame"] - 5, t["end_frame"] + 5) for t in theirs)
            for e in mine
        )
    assert strong >= 8, (cue, strong)
    assert hit / strong >= RECALL[cue], (cue, "recall", hit, strong)
    assert true_pos / detected > 0.85, (cue, "precision", true_pos, detected)


def test_events_are_well_formed(utterances):
    for _, _, _, frames, events, _ in utterances:
        for e in events:
            assert e.cue in cues.CUE_NAMES
            assert frames[0] <= e.start_frame < e.end_frame <= frames[-1] + 1
            assert np.isfinite(e.peak)


def _idle_utterance(jitter: float, n: int = 200) -> extraction.UtteranceArrays:
    rng = np.random.default_rng(0)
    rot = np.broadcast_to(key_poses()["idle"], (n, schema.N_JOINTS, 3)).copy()
    style = Style(expressivity=1.0, gesture_rate=1.0, words_per_second=3.0, jitter=jitter,
                  shape=np.zeros(100), betas=np.zeros(10), neutral_face=rng.normal(0, 0.15, 50))
    expression = np.broadcast_to(style.neutral_face, (n, 50))
    face, body = pack_features(rot, expression, rot[:, schema.JOINT_INDEX["head"]], style, rng)
    lay = schema.FACE_LAYOUT
    return extraction.UtteranceArrays(
        utterance_id=0, speaker=0, frames=np.arange(1000, 1000 + n),
        face=np.concatenate([face[:, lay.expression], face[:, lay.jaw]], axis=1),
        body=body[:, schema.BODY_TOKEN_SLICE], head_rotation=face[:, lay.head_rotation],
        face_full=face, body_full=body,
    )


@pytest.mark.parametrize("jitter", [0.0, DEFAULT_JITTER])
def test_idle_motion_gives_no_cue(jitter):
    assert cues.detect_cues(_idle_utterance(jitter)) == []


def test_empty_and_tiny_utterances():
    utt = _idle_utterance(0.0, n=2)
    assert cues.detect_cues(utt) == []
    empty = _idle_utterance(0.0, n=0)
    assert cues.detect_cues(empty) == []


def test_thresholds_switch_cues_off_and_on(synth):
    utt = next(u for u in extraction.iter_utterances(synth["train"], full=True, progress=False) if u.n_frames > 100)
    none = cues.CueThresholds(**{c: None for c in cues.CUE_NAMES})
    assert cues.detect_cues(utt, thresholds=none) == []
    jaw = cues.CueThresholds(**{c: None for c in cues.CUE_NAMES if c != "jaw_open"}, jaw_open=0.05)
    found = cues.detect_cues(utt, thresholds=jaw)
    assert found and {e.cue for e in found} == {"jaw_open"}  # speech opens the jaw


# ---------------------------------------------------------------------------------------
# Co-occurrence against the planted rules
# ---------------------------------------------------------------------------------------
def test_table_columns_and_arithmetic(table):
    assert list(table.columns) == ["word", "kind", "cue", "n_word", "n_with_cue", "rate", "base_rate", "lift"]
    assert (table["n_word"] >= 5).all()
    assert (table["n_with_cue"] <= table["n_word"]).all()
    assert np.allclose(table["rate"], table["n_with_cue"] / table["n_word"])
    ok = table["base_rate"] > 0
    assert np.allclose(table.loc[ok, "lift"], table.loc[ok, "rate"] / table.loc[ok, "base_rate"])
    assert "i think" in set(table["word"])  # two-word phrases are counted
    assert table.groupby("cue")["base_rate"].nunique().eq(1).all()


@pytest.mark.parametrize("cue", list(PLANTED))
def test_planted_trigger_tops_its_cue(table, cue):
    triggers = _triggers(PLANTED[cue][1])
    top = cues.top_words(table, cue, k=3, min_count=5, phrases=False)
    found = [w for w in top["word"] if w in triggers]
    assert found, (cue, top[["word", "n_word", "lift"]].to_dict("records"))
    assert top.set_index("word").loc[found[0], "lift"] > 2


def test_thinking_phrase_ranks_first_with_phrases(table):
    top = cues.top_words(table, "hand_to_face", k=1)
    assert top["word"][0] in _triggers(["thinking_hand_to_chin"])


def test_print_top_words(table, capsys):
    """Not a check: prints the ranking (run with -s to see it)."""
    with capsys.disabled():
        for cue in PLANTED:
            top = cues.top_words(table, cue, k=5, phrases=False)
            print(f"\n{cue:13s}", ", ".join(f"{w} ({l:.1f})" for w, l in zip(top["word"], top["lift"])))
