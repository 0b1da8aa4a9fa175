"""Our own skeleton and forward kinematics (numpy)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from venus_analysis import kinematics, schema

J = schema.JOINT_INDEX


def _bone_lengths(joints):
    parents = np.array(schema.JOINT_PARENTS[1:])
    return np.linalg.norm(joints[..., 1:, :] - joints[..., parents, :], axis=-1)


def test_rodrigues_matches_scipy():
    v = np.random.default_rng(0).normal(size=(100, 3)) * 2
    v[0] = 0.0
    v[1] = 1e-9
    assert np.allclose(kinematics.axis_angle_to_matrix(v), Rotation.from_rotvec(v).as_matrix(), atol=1e-12)


def test_rest_pose_reproduces_the_table():
    joints = kinematics.rest_joints()
    offsets = kinematics.rest_offsets()
    for j, p in enumerate(schema.JOINT_PARENTS[1:], start=1):
        assert np.allclose(joints[j] - joints[p], offsets[j])
    # the table's proportions: upper arm 0.186 H, forearm 0.146 H
    h = kinematics.STATURE_M
    assert np.isclose(np.linalg.norm(joints[J["left_elbow"]] - joints[J["left_shoulder"]]), 0.186 * h)
    assert np.isclose(np.linalg.norm(joints[J["right_wrist"]] - joints[J["right_elbow"]]), 0.146 * h)
    # left/right mirror images
    left = [j for n, j in J.items() if n.startswith("left_")]
    right = [J["right_" + n[5:]] for n, j in J.items() if n.startswith("left_")]
    assert np.allclose(joints[left] * [-1, 1, 1], joints[right])


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (3, 55, 3), elements=st.floats(-3, 3)))
def test_bone_lengths_do_not_depend_on_the_pose(pose):
    rest = _bone_lengths(kinematics.rest_joints())
    assert np.allclose(_bone_lengths(kinematics.forward_kinematics(pose)), rest)


def test_a_known_rotation_moves_the_child_where_expected():
    pose = np.zeros((55, 3))
    pose[J["left_shoulder"], 2] = -np.pi / 2  # left arm straight down (rotate about z)
    joints = kinematics.forward_kinematics(pose)
    upper = joints[J["left_elbow"]] - joints[J["left_shoulder"]]
    assert np.allclose(upper / np.linalg.norm(upper), [0, -1, 0], atol=1e-9)
    pose[J["left_elbow"], 1] = -np.pi / 2  # then the forearm forward
    joints = kinematics.forward_kinematics(pose)
    fore = joints[J["left_wrist"]] - joints[J["left_elbow"]]
    assert np.allclose(fore / np.linalg.norm(fore), [0, 0, 1], atol=1e-9)
    # a parent's rotation moves the whole chain below it, never the joints above
    assert np.allclose(joints[J["left_shoulder"]], kinematics.rest_joints()[J["left_shoulder"]])


def test_batched_equals_per_frame():
    pose = np.random.default_rng(1).normal(scale=0.4, size=(6, 55, 3))
    batched = kinematics.forward_kinematics(pose)
    for t in range(6):
        assert np.allclose(batched[t], kinematics.forward_kinematics(pose[t]))


def test_body_track_to_local_rotations_round_trip():
    rng = np.random.default_rng(2)
    body = rng.normal(size=(4, schema.BODY_DIM))
    rot = kinematics.local_rotations_from_body(body)
    assert np.allclose(rot[:, 0], 0.0)  # the root carries nothing
    assert np.allclose(rot[:, J["head"]], body[:, schema.body_joint_slice("head")])
    assert np.allclose(rot[:, J["right_thumb3"]], body[:, schema.body_joint_slice("right_thumb3")])
    face = rng.normal(size=(4, schema.FACE_DIM))
    rot = kinematics.local_rotations_from_body(body, face)
    assert np.allclose(rot[:, J["jaw"]], face[:, schema.FACE_LAYOUT.jaw])
