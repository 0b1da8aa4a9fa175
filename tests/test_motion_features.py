"""Kinematic features (motion_features): each responds to the cue the synthetic data plants,
and the unit behaviour (units, widths, short tracks, gaps) is right."""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from venus_analysis import kinematics, schema
from venus_analysis import motion_features as mf
from venus_analysis import synthetic_rules as rules
from venus_analysis.extraction import segment_utterances
from venus_analysis.synthetic import SyntheticConfig, generate

J = schema.JOINT_INDEX
FPS = schema.FPS
ARM_CUES = ("hand_to_chin", "beat", "air_quotes", "crossed_arms", "open_arms", "shrug")
SEED = int(os.environ.get("VENUS_MF_TEST_SEED", 5))  # the margins below hold for seeds 0-14


# ---------------------------------------------------------------------------------------
# One small synthetic dataset, its features per frame, and the planted events
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames_table():
    """Per-frame features of every utterance, with masks of the planted cue events."""
    dsd, truth = generate(SyntheticConfig(n_segments=10, seconds=60, seed=SEED), progress=False)
    events = defaultdict(list)
    for e in truth.events:
        events[(e["video_id"], e["segment_id"], e["utterance_id"])].append(e)
    parts = defaultdict(list)
    strong_chin = []  # right hand-to-face distance at the middle of strong hand_to_chin events
    for split in dsd:
        for row in dsd[split]:
            words = dict(zip(row["conversation"]["utterance_id"], row["conversation"]["words"]))
            for u in segment_utterances(row, full=True):
                f = u.frames
                if len(f) == 0:
                    continue
                rot = mf.local_rotations(u.body, u.face, u.head_rotation)
                joints = kinematics.forward_kinematics(rot)
                h2f = mf.hand_to_face_distance(joints, rot)
                parts["utterance"].append(np.full(len(f), len(parts["utterance"])))
                parts["h2f"].append(h2f)
                parts["wrist"].append(mf.wrist_height(joints))
                parts["speed"].append(mf.hand_speed(joints, frames=f))
                parts["curl"].append(mf.finger_curl(u.body))
                parts["head"].append(mf.nod_shake_energy(u.head_rotation, frames=f))
                parts["jaw"].append(mf.jaw_opening(u.face))
                parts["smile_proj"].append(mf.expression_projection(u.face, "smile"))
                w = words[u.utterance_id]
                w0 = (np.array(w["start_time"]) * FPS).astype(int)
                w1 = (np.array(w["end_time"]) * FPS).astype(int)
                parts["speaking"].append(((f[:, None] >= w0) & (f[:, None] < w1)).any(axis=1))
                evs = events[(u.video_id, u.segment_id, u.utterance_id)]
                for cue in (*rules.CUES, "crossed_arms", "open_arms"):
                    mine = [e for e in evs if e["cue"] == cue]
                    s = np.array([e["start_frame"] for e in mine], dtype=int).reshape(-1, 1)
                    e_ = np.array([e["end_frame"] for e in mine], dtype=int).reshape(-1, 1)
                    parts[cue].append(((f >= s) & (f < e_)).any(axis=0) if mine else np.zeros(len(f), bool))
                    # "near": inside or within half a second of an event (envelopes ramp, filters ring)
                    near = ((f >= s - 12) & (f < e_ + 12)).any(axis=0) if mine else np.zeros(len(f), bool)
                    parts[cue + "_near"].append(near)
                for e in evs:  # strong hand_to_chin events that no other arm gesture overlaps
                    if e["cue"] != "hand_to_chin" or e["strength"] < 0.93:
                        continue
                    if any(o["cue"] in ARM_CUES and o is not e and o["start_frame"] < e["end_frame"]
                           and o["end_frame"] > e["start_frame"] for o in evs):  # fmt: skip
                        continue
                    middle = (e["start_frame"] + e["end_frame"]) // 2
                    k = np.abs(f - middle) <= 2  # the middle frames (one may be a gap)
                    if k.any():
                        strong_chin.append(np.median(h2f[k, 1]))
    table = {k: np.concatenate(v) for k, v in parts.items()}
    table["idle_arms"] = ~np.logical_or.reduce([table[c + "_near"] for c in ARM_CUES])
    table["strong_chin"] = np.array(strong_chin)
    return table


def test_nod_energy_is_pitch_inside_nods(frames_table):
    t = frames_table
    energy = t["head"]
    inside, outside = energy[t["nod"], 0], energy[~t["nod_near"], 0]
    assert t["nod"].sum() > 50
    assert inside.mean() > 5 * outside.mean()
    assert inside.mean() > 2 * energy[t["nod"] & ~t["head_shake_near"], 1].mean()  # pitch, not yaw


def test_shake_energy_is_yaw_inside_head_shakes(frames_table):
    t = frames_table
    energy = t["head"]
    inside, outside = energy[t["head_shake"], 1], energy[~t["head_shake_near"], 1]
    assert t["head_shake"].sum() > 50
    assert inside.mean() > 5 * outside.mean()
    assert inside.mean() > 2 * energy[t["head_shake"] & ~t["nod_near"], 0].mean()  # yaw, not pitch


def test_hand_reaches_the_chin_in_strong_hand_to_chin_events(frames_table):
    t = frames_table
    assert len(t["strong_chin"]) >= 2
    assert t["strong_chin"].max() < 0.10  # right knuckles within 10 cm of the chin
    idle = t["h2f"][t["idle_arms"]]
    assert idle.shape[0] > 1000
    assert idle.min() > 0.25  # hands resting in the lap are far from the face


def test_wrists_rise_during_air_quotes(frames_table):
    t = frames_table
    during = t["wrist"][t["air_quotes"]].mean(axis=0)
    idle = t["wrist"][t["idle_arms"]].mean(axis=0)
    assert t["air_quotes"].sum() > 20
    assert np.all(during > idle + 0.2)  # both hands, metres


def test_right_hand_is_faster_during_beats(frames_table):
    t = frames_table
    beat = t["beat"] & ~np.logical_or.reduce([t[c + "_near"] for c in ARM_CUES if c != "beat"])
    assert beat.sum() > 50
    assert t["speed"][beat, 1].mean() > 2 * t["speed"][t["idle_arms"], 1].mean()
    # Within the same utterance (same speaker, same estimator jitter) the contrast is sharper.
    ratios = []
    for u in np.unique(t["utterance"][beat]):
        mine = t["utterance"] == u
        if (mine & t["idle_arms"]).sum() >= 10:
            ratios.append(t["speed"][mine & beat, 1].mean() / t["speed"][mine & t["idle_arms"], 1].mean())
    assert len(ratios) >= 3
    assert np.median(ratios) > 3


def test_fingers_curl_during_air_quotes(frames_table):
    t = frames_table
    during = t["curl"][t["air_quotes"]].mean(axis=0)
    idle = t["curl"][t["idle_arms"]]
    assert np.all(during > idle.mean(axis=0) + 0.05)
    assert np.all(idle.std(axis=0) < 0.02)  # relaxed hands stay still


def test_jaw_opens_while_words_are_spoken(frames_table):
    t = frames_table
    jaw, speaking = t["jaw"], t["speaking"]
    assert (~speaking).sum() > 100  # pauses between sentences, inside utterances
    assert jaw[speaking].mean() > 1.5 * jaw[~speaking].mean()
    assert jaw[speaking].mean() > 0.05


def test_smile_projection_rises_in_smiles(frames_table):
    t = frames_table
    assert t["smile_proj"][t["smile"]].mean() > t["smile_proj"][~t["smile_near"]].mean() + 0.3


# ---------------------------------------------------------------------------------------
# Unit behaviour
# ---------------------------------------------------------------------------------------
def _pitch_track(amplitude, freq, n, yaw_offset=0.0):
    """Head rotations: a pure pitch sine in the head's own frame, after a fixed yaw turn."""
    t = np.arange(n) / FPS
    pitch = amplitude * np.sin(2 * np.pi * freq * t)
    r = Rotation.from_rotvec([0.0, yaw_offset, 0.0]) * Rotation.from_rotvec(np.c_[pitch, 0 * t, 0 * t])
    return r.as_rotvec(), t


@pytest.mark.parametrize("yaw_offset", [0.0, 0.6])
def test_pitch_oscillation_gives_the_expected_angular_velocity(yaw_offset):
    amplitude, freq = 0.15, 2.5
    rotvec, t = _pitch_track(amplitude, freq, 250, yaw_offset)
    omega = mf.head_angular_velocity(rotvec)
    assert omega.shape == (250, 3)
    peak = amplitude * 2 * np.pi * freq  # 2.36 rad/s
    # central differences over 2/25 s shrink a 2.5 Hz sine by sin(x)/x, x = 2 pi f / fps
    x = 2 * np.pi * freq / FPS
    assert np.isclose(np.abs(omega[5:-5, 0]).max(), peak * np.sin(x) / x, rtol=0.01)
    assert np.abs(omega[:, 1:]).max() < 1e-9  # no yaw or roll leaks in, even when turned
    if yaw_offset:  # differences of raw axis-angles would leak into the other components
        naive = np.gradient(rotvec, 1 / FPS, axis=0)
        assert np.abs(naive[:, 2]).max() > 0.1


def test_nod_energy_of_a_sine_is_its_rms():
    rotvec, _ = _pitch_track(0.1, 2.5, 300)
    energy = mf.nod_shake_energy(rotvec)
    assert energy.shape == (300, 2)
    assert np.isclose(np.median(energy[50:-50, 0]), 0.1 / np.sqrt(2), rtol=0.1)
    assert energy[50:-50, 1].max() < 1e-6
    slow, _ = _pitch_track(0.3, 0.2, 300)  # a slow look down and up is not a nod
    assert mf.nod_shake_energy(slow)[50:-50, 0].max() < 0.02


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 12, 20])
def test_short_tracks_do_not_fail(n):
    rotvec, _ = _pitch_track(0.1, 2.5, n)
    rotvec = rotvec.reshape(n, 3)
    for out, width in ((mf.nod_shake_energy(rotvec), 2), (mf.head_angular_velocity(rotvec), 3)):
        assert out.shape == (n, width) and np.isfinite(out).all()
    joints = np.zeros((n, schema.N_JOINTS, 3))
    assert mf.hand_speed(joints).shape == (n, 2)


def test_gaps_count_as_the_time_they_last():
    rotvec, _ = _pitch_track(0.1, 2.5, 200)
    frames = np.r_[0:80, 95:200]  # a 15-frame gap
    full = mf.nod_shake_energy(rotvec)
    gappy = mf.nod_shake_energy(rotvec[frames], frames=frames)
    assert gappy.shape == (len(frames), 2)
    assert np.allclose(gappy[20:60], full[frames][20:60], atol=0.01)
    omega = mf.head_angular_velocity(rotvec[frames], frames=frames)
    assert np.allclose(omega[100:120], mf.head_angular_velocity(rotvec)[frames][100:120])
    with pytest.raises(ValueError, match="strictly increasing"):
        mf.head_angular_velocity(rotvec[:3], frames=[0, 2, 2])
    with pytest.raises(ValueError, match="band"):
        mf.nod_shake_energy(rotvec, band=(2.0, 13.0))


def test_hand_speed_of_a_constant_velocity():
    n = 30
    velocity = np.array([0.3, -0.4, 0.0])  # 0.5 m/s
    joints = np.zeros((n, schema.N_JOINTS, 3))
    frames = np.r_[0:10, 14:34]  # with a gap: speed still in metres per second
    joints[:, J["right_wrist"]] = frames[:, None] / FPS * velocity
    joints[:, J["left_wrist"]] = 0.7
    speed = mf.hand_speed(joints, frames=frames)
    assert np.allclose(speed[:, 1], 0.5) and np.allclose(speed[:, 0], 0.0)
    assert np.allclose(mf.hand_speed(joints[:10])[:, 1], 0.5)
    assert np.allclose(mf.hand_speed(joints[:10], fps=50)[:, 1], 1.0)


def test_token_and_full_body_tracks_give_the_same_joints():
    rng = np.random.default_rng(0)
    n = 7
    body = np.zeros((n, schema.BODY_DIM))
    body[:, schema.BODY_TOKEN_SLICE] = rng.normal(0, 0.5, (n, schema.BODY_TOKEN_DIM))
    seated = mf.neutral_seated_pose()
    for side in ("left", "right"):
        for joint in ("hip", "knee"):
            body[:, schema.body_joint_slice(f"{side}_{joint}")] = seated[J[f"{side}_{joint}"]]
    face = rng.normal(0, 0.2, (n, schema.FACE_DIM))
    tokens = body[:, schema.BODY_TOKEN_SLICE]
    full, tok = mf.joints_from_body(body, face), mf.joints_from_body(tokens, face[:, schema.FACE_TOKEN_COLUMNS])
    assert full.shape == tok.shape == (n, schema.N_JOINTS, 3)
    assert np.allclose(full, tok)
    assert np.allclose(mf.finger_curl(body), mf.finger_curl(tokens))
    assert np.allclose(mf.local_rotations(body, face), mf.local_rotations_from_tokens(tokens, face))
    # the jaw comes from the face, in any face width
    assert np.allclose(mf.local_rotations(tokens, face)[:, J["jaw"]], face[:, schema.FACE_LAYOUT.jaw])


def test_head_rotation_replaces_head_and_straightens_neck():
    rng = np.random.default_rng(1)
    body = rng.normal(0, 0.3, (4, schema.BODY_DIM))
    head = rng.normal(0, 0.3, (4, 3))
    rot = mf.local_rotations(body, head_rotation=head)
    assert np.allclose(rot[:, J["head"]], head) and np.allclose(rot[:, J["neck"]], 0.0)
    rot = mf.local_rotations_from_tokens(body[:, schema.BODY_TOKEN_SLICE], head_rotation=head)
    assert np.allclose(rot[:, J["head"]], head)


def test_neutral_seated_pose_sits():
    joints = kinematics.forward_kinematics(mf.neutral_seated_pose())
    for side in ("left", "right"):
        hip, knee, ankle = (joints[J[f"{side}_{j}"]] for j in ("hip", "knee", "ankle"))
        assert knee[2] - hip[2] > 0.35 and abs(knee[1] - hip[1]) < 0.01  # thigh forward, level
        assert knee[1] - ankle[1] > 0.35  # shin hangs down


def test_jaw_opening_and_expression_projection():
    jaw = np.zeros((3, schema.FACE_TOKEN_DIM))
    jaw[:, schema.FACE_TOKEN_JAW] = [[0.2, 0, 0], [0.0, 0, 0], [0.1, 0.05, 0]]
    opening = mf.jaw_opening(jaw)
    assert np.allclose(opening[:2], [0.2, 0.0]) and abs(opening[2] - 0.1) < 0.01
    legacy = np.zeros((1, 153))
    legacy[0, schema.FACE_LAYOUT_LEGACY.jaw] = [0.15, 0, 0]
    assert np.isclose(mf.jaw_opening(legacy)[0], 0.15)
    face = np.zeros((2, schema.FACE_DIM))
    face[1, schema.FACE_LAYOUT.expression] = 2.0 * rules.expression_vector("smile")
    proj = mf.expression_projection(face, "smile")
    assert np.allclose(proj, [0.0, 2.0 * np.linalg.norm(rules.expression_vector("smile"))])
    assert np.allclose(mf.expression_projection(face, rules.expression_vector("smile")), proj)
    assert np.allclose(mf.expression_projection(face[:, :50], "smile"), proj)
    with pytest.raises(ValueError, match="frown"):
        mf.expression_projection(face, "grin")


def test_other_widths_raise_naming_the_expected_ones():
    with pytest.raises(ValueError, match=r"179.*117.*got 100"):
        mf.joints_from_body(np.zeros((2, 100)))
    with pytest.raises(ValueError, match=r"179.*117.*got 156"):
        mf.finger_curl(np.zeros((2, 156)))
    with pytest.raises(ValueError, match=r"53.*156.*153.*got 60"):
        mf.jaw_opening(np.zeros((2, 60)))
    with pytest.raises(ValueError, match=r"53.*156.*153.*got 55"):
        mf.local_rotations(np.zeros((2, 117)), face=np.zeros((2, 55)))
    with pytest.raises(ValueError, match=r"117"):
        mf.local_rotations_from_tokens(np.zeros((2, 179)))
    with pytest.raises(ValueError, match="frames"):
        mf.local_rotations(np.zeros((2, 117)), face=np.zeros((3, 53)))
