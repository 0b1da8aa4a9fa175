"""Animated figures: client-side frames, slider and buttons, bones, words, export, fallback."""

from __future__ import annotations

import re

import numpy as np
import pytest

from venus_analysis import animation, kinematics, schema
from venus_analysis.extraction import segment_utterances

J = schema.JOINT_INDEX
BONE_POINTS = animation.N_BONES * animation.POINTS_PER_BONE  # 54 bones * (parent, child, gap)


def _body(n: int, seed: int = 0) -> np.ndarray:
    """A (n, 179) body track of small, smoothly changing rotations (root zero)."""
    rng = np.random.default_rng(seed)
    slow = np.cumsum(rng.normal(scale=0.01, size=(n, schema.BODY_DIM)), axis=0)
    slow[:, schema.BODY_ROOT] = 0.0
    return slow


def _trace(fig, name: str) -> int:
    """Index of the (first) trace called ``name``."""
    return next(i for i, t in enumerate(fig.data) if t.name == name)


def _frame_data(fig, k: int, name: str):
    """The update the k-th animation frame makes to the trace called ``name``."""
    frame = fig.frames[k]
    return frame.data[list(frame.traces).index(_trace(fig, name))]


def _words():
    """Four words with a pause after the second; boundaries fall exactly on frames at 25 fps."""
    return {
        "word": ["one", "two", "three", "four"],
        "start_time": [0.2, 0.6, 1.2, 1.4],
        "end_time": [0.6, 1.0, 1.4, 1.8],
    }


# ---------------------------------------------------------------------------------------
# Frames, slider, buttons
# ---------------------------------------------------------------------------------------
def test_frames_slider_and_buttons():
    fig = animation.skeleton_figure(_body(500), max_frames=120)
    assert len(fig.frames) == 120
    (slider,) = fig.layout.sliders
    assert len(slider.steps) == 120
    assert [s.args[0][0] for s in slider.steps] == [f.name for f in fig.frames]
    (menu,) = fig.layout.updatemenus
    labels = [b.label for b in menu.buttons]
    assert any("play" in label for label in labels) and any("pause" in label for label in labels)
    play, pause = menu.buttons
    assert play.method == pause.method == "animate"
    assert play.args[0] is None and play.args[1]["fromcurrent"]
    assert list(pause.args[0]) == [None]


def test_bones_are_one_trace_with_gaps():
    fig = animation.skeleton_figure(_body(10))
    assert sum(t.name == "bones" for t in fig.data) == 1
    for k in (0, 9):
        bones = _frame_data(fig, k, "bones")
        x = np.asarray(bones.x, dtype=float)
        assert len(x) == BONE_POINTS == 162
        gaps = np.isnan(x)
        assert gaps.sum() == animation.N_BONES and gaps[2::3].all()


def test_frame_coordinates_are_the_forward_kinematics():
    body = _body(300, seed=1)
    fk = kinematics.forward_kinematics(kinematics.local_rotations_from_body(body))
    fig = animation.skeleton_figure(body, max_frames=50)
    keep = animation.decimate(300, 50)
    k = 17
    bones = _frame_data(fig, k, "bones")
    got = np.stack([np.asarray(bones[a], dtype=float) for a in "xyz"], axis=1)
    joints = fk[keep[k]]
    children = got[1::3]  # the child end of every bone, in scene coordinates (x, -z, y)
    expected = np.stack([joints[1:, 0], -joints[1:, 2], joints[1:, 1]], axis=1)
    np.testing.assert_allclose(children, expected, atol=6e-4)  # rounded to mm, stored as float32
    np.testing.assert_array_equal(children, np.round(expected, 3).astype(np.float32))
    parents = got[0::3]
    np.testing.assert_allclose(parents[:, 2], joints[schema.JOINT_PARENTS[1:], 1], atol=6e-4)


def test_joints_track_is_drawn_as_given_and_person_is_upright_facing_the_camera():
    joints = kinematics.rest_joints()[None].repeat(4, axis=0)
    fig = animation.skeleton_figure(joints)
    pts = np.stack([np.asarray(_frame_data(fig, 0, "bones")[a], dtype=float) for a in "xyz"], axis=1)[1::3]
    head, pelvis = pts[J["head"] - 1], np.zeros(3)
    assert head[2] > pelvis[2] + 0.5  # up is plotly's z
    assert pts[J["left_wrist"] - 1][0] > 0  # the subject's left is +x: the viewer's right
    camera = fig.layout.scene.camera
    assert camera.up.z == 1 and camera.eye.y < 0  # the camera sits in front (forward is -y)
    nose_forward = pts[J["left_eye"] - 1][1]  # eyes are in front of the head: towards -y
    assert nose_forward < head[1]


# ---------------------------------------------------------------------------------------
# Words
# ---------------------------------------------------------------------------------------
def test_word_at_uses_half_open_intervals():
    words = _words()
    t = np.array([0.0, 0.2, 0.59, 0.6, 1.0, 1.1, 1.2, 1.4, 1.79, 1.8])
    assert animation.word_at(words, t).tolist() == [-1, 0, 0, 1, -1, -1, 2, 3, 3, -1]


def test_highlighted_word_follows_the_frames():
    words = _words()
    fig = animation.skeleton_figure(_body(50), words=words, frames=np.arange(50))
    for k in range(50):
        t = k / schema.FPS
        inside = [i for i, (s, e) in enumerate(zip(words["start_time"], words["end_time"])) if s <= t < e]
        shown = [w for w in _frame_data(fig, k, "current word").text if w]
        assert shown == [words["word"][inside[-1]]] if inside else shown == [], (k, t, shown)


def test_decimation_keeps_first_and_last_frames_and_labels_seconds():
    keep = animation.decimate(1000, 150)
    assert len(keep) == 150 and keep[0] == 0 and keep[-1] == 999 and np.all(np.diff(keep) > 0)
    assert animation.decimate(80, 150).tolist() == list(range(80))
    frames = 424 + np.arange(1000)  # an utterance starting 16.96 s into the segment
    fig = animation.skeleton_figure(_body(1000), frames=frames, max_frames=150)
    labels = [s.label for s in fig.layout.sliders[0].steps]
    assert labels[0] == "16.96" and labels[-1] == f"{(424 + 999) / 25:.2f}"
    assert labels == [f"{f / 25:.2f}" for f in frames[keep]]
    # playback stays in real time: each decimated frame lasts as long as the frames it stands for
    play = fig.layout.updatemenus[0].buttons[0].args[1]
    assert play["frame"]["duration"] == pytest.approx(1000 * 999 / 25 / 149)


# ---------------------------------------------------------------------------------------
# Side by side, face, utterance
# ---------------------------------------------------------------------------------------
def test_side_by_side_three_tracks_share_one_slider():
    body = _body(60)
    tracks = {
        "ground truth": body,
        "reconstruction": body[:, schema.BODY_TOKEN_SLICE],  # the 117 tokenizer columns
        "generated": kinematics.forward_kinematics(kinematics.local_rotations_from_body(body)),
    }
    fig = animation.side_by_side(tracks, words=_words())
    scenes = [k for k in fig.layout.to_plotly_json() if k.startswith("scene")]
    assert sorted(scenes) == ["scene", "scene2", "scene3"]
    assert len(fig.layout.sliders) == 1 and len(fig.layout.sliders[0].steps) == 60
    assert sum(t.name == "bones" for t in fig.data) == 3
    assert {fig.layout[s].xaxis.range for s in scenes} == {fig.layout.scene.xaxis.range}  # one box
    with pytest.raises(ValueError, match="same number of frames"):
        animation.side_by_side({"a": body, "b": body[:50]})


def test_face_mouth_opens_with_the_jaw_and_turns_with_the_head():
    n = 3
    face = np.zeros((n, schema.FACE_LAYOUT.length))
    face[1, schema.FACE_LAYOUT.jaw] = [0.3, 0, 0]  # open the jaw
    face[2, schema.FACE_LAYOUT.head_rotation] = [0, 0.5, 0]  # turn to the subject's left
    fig = animation.face_figure(face)
    heights = [np.ptp(np.asarray(_frame_data(fig, k, "mouth").y, dtype=float)) for k in range(n)]
    assert heights[1] > heights[0] + 0.1
    mouth_x = [np.nanmean(np.asarray(_frame_data(fig, k, "mouth").x, dtype=float)) for k in range(n)]
    assert mouth_x[2] > mouth_x[0] + 0.2  # seen from the front, the face turns to the viewer's right
    strip = fig.data[_trace(fig, "expression")]
    assert np.shape(strip.z) == (schema.N_EXPRESSION, n)
    # the tokenizer's 53 columns and the legacy 153 work too (no head rotation: upright)
    assert len(animation.face_figure(face[:, schema.FACE_TOKEN_COLUMNS]).frames) == n
    legacy = np.zeros((n, schema.FACE_LAYOUT_LEGACY.length))
    assert len(animation.face_figure(legacy).frames) == n


def test_utterance_figure_from_a_synthetic_row(synth, truth):
    event = next(e for e in truth.events if e["cue"] == "hand_to_chin")
    key = (event["video_id"], event["segment_id"])
    row = next(r for r in synth[event["split"]] if (r["video_id"], r["segment_id"]) == key)
    fig = animation.utterance_figure(row, utterance_id=event["utterance_id"])
    utt = next(u for u in segment_utterances(row, full=True) if u.utterance_id == event["utterance_id"])
    keep = animation.decimate(len(utt.frames), animation.MAX_FRAMES)
    assert len(fig.frames) == len(keep) and len(fig.layout.sliders[0].steps) == len(keep)
    names = {t.name for t in fig.data}
    assert {"bones", "head", "face", "mouth", "words", "current word", "expression", "now"} <= names
    # the planted hand-to-chin shows: during it a hand is far closer to the jaw than usual
    fingers = [j - 1 for n, j in J.items() if n.startswith(("left_", "right_")) and n[-1] in "123" and "_eye" not in n]

    def hand_to_jaw(k):
        pts = np.stack([np.asarray(_frame_data(fig, k, "bones")[a], dtype=float) for a in "xyz"], axis=1)[1::3]
        return np.linalg.norm(pts[fingers] - pts[J["jaw"] - 1], axis=1).min()

    times = utt.frames[keep]
    during = (times >= event["start_frame"]) & (times < event["end_frame"])
    k = int(np.flatnonzero(during)[during.sum() // 2])
    outside = [hand_to_jaw(i) for i in np.flatnonzero(~during)[::10]]
    assert hand_to_jaw(k) < 0.4 * np.median(outside)
    # the words and the words' highlight come from the row
    words = animation.words_of(row, event["utterance_id"])
    t = utt.frames[keep[k]] / schema.FPS
    i = animation.word_at(words, t)
    shown = [w for w in _frame_data(fig, k, "current word").text if w]
    assert shown == ([words["word"][i]] if i >= 0 else [])


def test_utterance_figure_needs_an_utterance():
    with pytest.raises(ValueError, match="utterance_id"):
        animation.utterance_figure({"conversation": {}})


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------
def test_bad_tracks_give_clear_errors():
    with pytest.raises(ValueError, match=r"\(T, 179\).*\(T, 117\).*\(T, 55, 3\)"):
        animation.skeleton_figure(np.zeros((10, 100)))
    body = _body(10)
    body[4, 20] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*frames \[4\]"):
        animation.skeleton_figure(body)
    joints = np.zeros((5, schema.N_JOINTS, 3))
    joints[2, 3, 1] = np.inf
    with pytest.raises(ValueError, match=r"frames \[2\]"):
        animation.side_by_side({"a": joints})
    with pytest.raises(ValueError, match="156.*153.*53"):
        animation.face_figure(np.zeros((10, 60)))
    with pytest.raises(ValueError, match="words"):
        animation.skeleton_figure(_body(5), words={"word": ["a"]})
    with pytest.raises(ValueError, match="frames has 3 entries"):
        animation.skeleton_figure(_body(5), frames=[1, 2, 3])
    with pytest.raises(ValueError, match="no frames"):
        animation.skeleton_figure(np.zeros((0, schema.BODY_DIM)))


# ---------------------------------------------------------------------------------------
# Export and fallback
# ---------------------------------------------------------------------------------------
def test_save_html_is_standalone_and_atomic(tmp_path):
    fig = animation.skeleton_figure(_body(20), words=_words())
    path = animation.save_html(fig, tmp_path / "skeleton.html")
    html = path.read_text(encoding="utf-8")
    assert "plotly.js v" in html and "Plotly.newPlot" in html  # the bundle is inlined
    assert re.search(r"<script[^>]*\bsrc\s*=", html) is None  # nothing loaded from the network
    assert '"frames"' in html or "addFrames" in html
    assert [p.name for p in tmp_path.iterdir()] == ["skeleton.html"]  # no temp file left
    assert animation.save_html(fig, tmp_path / "new" / "folder" / "s.html").is_file()


def test_matplotlib_fallback_makes_jshtml_with_frames():
    html = animation.to_jshtml(_body(5), words=_words(), title="fallback")
    assert html.count("data:image/png;base64") == 5
    anim = animation.matplotlib_animation(kinematics.rest_joints()[None].repeat(3, axis=0))
    assert "<img" in animation.to_jshtml(anim)


def test_a_long_utterance_is_decimated_to_max_frames():
    # Build time is measured by bench/animation.py, not here.
    fig = animation.skeleton_figure(_body(500), words=_words())
    assert len(fig.frames) == animation.MAX_FRAMES
