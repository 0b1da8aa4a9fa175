"""A licence-free SMPL-X-topology skeleton and batched forward kinematics (numpy).

The joint names and parents are facts of the SMPL-X design (``schema.JOINT_NAMES`` and
``schema.JOINT_PARENTS``). The rest-pose bone offsets are *not* taken from any licensed
model file: they come from our own anthropometric table below, built from segment-length
proportions of standing height in the biomechanics literature (Drillis & Contini, 1966,
as tabulated in Winter, "Biomechanics and Motor Control of Human Movement", ch. 4:
upper arm 0.186 H, forearm 0.146 H, hand 0.108 H, thigh 0.245 H, shank 0.246 H,
shoulder width 0.259 H, hip width 0.191 H), for a 1.70 m adult; smaller offsets (spine,
fingers, eyes) are rounded estimates of ours.

Coordinates follow the SMPL family: metres, y up, x to the subject's left, z forward. The
rest pose is the T-pose (arms straight out along +/-x, palms down). Every joint's
axis-angle rotates the bones below it: ``R_world[j] = R_world[parent] @ R_local[j]`` and
``p[child] = p[j] + R_world[j] @ offset[child]``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import schema

STATURE_M = 1.70
_H = STATURE_M

# Offsets of each joint from its parent in the T-pose, for the left side; the right side
# mirrors x. Values in metres.
_LEFT_AND_MIDLINE_OFFSETS: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, 0.0, 0.0),
    "left_hip": (0.191 * _H / 2, -0.07, 0.0),
    "spine1": (0.0, 0.10, -0.01),
    "left_knee": (0.0, -0.245 * _H, 0.0),
    "spine2": (0.0, 0.13, 0.01),
    "left_ankle": (0.0, -0.246 * _H, -0.02),
    "spine3": (0.0, 0.06, 0.0),
    "left_foot": (0.0, -0.05, 0.12),
    "neck": (0.0, 0.21, -0.02),
    "left_collar": (0.03, 0.13, -0.01),
    "head": (0.0, 0.09, 0.03),
    # collar + shoulder reach half the shoulder width from the midline
    "left_shoulder": (0.259 * _H / 2 - 0.03, 0.02, 0.0),
    "left_elbow": (0.186 * _H, 0.0, 0.0),
    "left_wrist": (0.146 * _H, 0.0, 0.0),
    "jaw": (0.0, -0.02, 0.04),
    "left_eye": (0.03, 0.06, 0.08),
    # hand: knuckles at about half the hand length (0.108 H) from the wrist
    "left_index1": (0.090, 0.005, 0.025),
    "left_middle1": (0.095, 0.005, 0.005),
    "left_ring1": (0.090, 0.002, -0.014),
    "left_pinky1": (0.080, -0.002, -0.030),
    "left_thumb1": (0.025, -0.012, 0.030),
}
# Phalanx lengths (proximal->middle, middle->distal), per finger, along the finger's axis.
_PHALANGES = {
    "index": (0.038, 0.023),
    "middle": (0.042, 0.026),
    "ring": (0.039, 0.024),
    "pinky": (0.030, 0.019),
    "thumb": (0.033, 0.028),
}
# Direction the finger points in the T-pose (left hand); the thumb points forward-out.
_FINGER_DIRECTION = {f: np.array([1.0, 0.0, 0.0]) for f in ("index", "middle", "ring", "pinky")}
_FINGER_DIRECTION["thumb"] = np.array([0.6, -0.1, 0.8]) / np.linalg.norm([0.6, -0.1, 0.8])


@lru_cache(maxsize=1)
def rest_offsets() -> np.ndarray:
    """(55, 3) offsets of every joint from its parent in the T-pose (metres)."""
    offsets = np.zeros((schema.N_JOINTS, 3))
    for name, j in schema.JOINT_INDEX.items():
        side = "left" if name.startswith("left_") else "right" if name.startswith("right_") else None
        base = name if side != "right" else "left_" + name[len("right_"):]
        mirror = np.array([-1.0, 1.0, 1.0]) if side == "right" else np.ones(3)
        if base in _LEFT_AND_MIDLINE_OFFSETS:
            offsets[j] = np.array(_LEFT_AND_MIDLINE_OFFSETS[base]) * mirror
            continue
        finger, k = base[len("left_"):-1], int(base[-1])  # e.g. "index", 2
        offsets[j] = _FINGER_DIRECTION[finger] * _PHALANGES[finger][k - 2] * mirror
    offsets.setflags(write=False)
    return offsets


@lru_cache(maxsize=1)
def rest_joints() -> np.ndarray:
    """(55, 3) joint positions of the T-pose with the pelvis at the origin."""
    return forward_kinematics(np.zeros((1, schema.N_JOINTS, 3)))[0]


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues' formula, batched: (..., 3) axis-angle vectors to (..., 3, 3) matrices.

    R = I + sin(t) K + (1 - cos(t)) K^2, with t = |v| and K the cross-product matrix of
    the unit axis v / t. Near t = 0 the Taylor terms sin(t)/t -> 1 and (1-cos t)/t^2 -> 1/2
    keep it exact without dividing by zero.
    """
    v = np.asarray(rotvec, dtype=np.float64)
    t2 = np.sum(v * v, axis=-1)
    t = np.sqrt(t2)
    small = t2 < 1e-12
    safe_t = np.where(small, 1.0, t)
    a = np.where(small, 1.0 - t2 / 6.0, np.sin(safe_t) / safe_t)  # sin(t)/t
    b = np.where(small, 0.5 - t2 / 24.0, (1.0 - np.cos(safe_t)) / np.where(small, 1.0, t2))
    # K built from the *unnormalised* v, so K^2 = v v^T - t^2 I carries t^2: hence a = sin t / t,
    # b = (1-cos t)/t^2, and R = (1 - b t^2) I + a K + b v v^T, written out entry by entry
    # (no 3x3 matmul per frame; 1 - b t^2 is cos t).
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    c = 1.0 - b * t2
    bxy, bxz, byz = b * x * y, b * x * z, b * y * z
    ax, ay, az = a * x, a * y, a * z
    r = np.stack([c + b * x * x, bxy - az, bxz + ay,
                  bxy + az, c + b * y * y, byz - ax,
                  bxz - ay, byz + ax, c + b * z * z], axis=-1)  # fmt: skip
    return r.reshape(v.shape[:-1] + (3, 3))


@lru_cache(maxsize=1)
def _depth_levels() -> list[tuple[np.ndarray, np.ndarray]]:
    """Joints grouped by depth in the tree, as (joints, their parents) index arrays: every
    joint of a level can be placed at once, once the level above is placed."""
    depth = [0] * schema.N_JOINTS
    for j, parent in enumerate(schema.JOINT_PARENTS):  # parents always come before children
        depth[j] = 0 if parent < 0 else depth[parent] + 1
    levels = []
    for d in range(1, max(depth) + 1):
        joints = np.array([j for j in range(schema.N_JOINTS) if depth[j] == d])
        levels.append((joints, np.array([schema.JOINT_PARENTS[j] for j in joints])))
    return levels


def forward_kinematics(local_rotvecs: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Joint positions from local axis-angle rotations, batched over frames.

    ``local_rotvecs`` is (T, 55, 3) (or (55, 3)); returns (T, 55, 3) positions in metres
    with the pelvis at the origin. The loop runs over the levels of the joint tree, never
    over frames.
    """
    rot = np.asarray(local_rotvecs, dtype=np.float64)
    single = rot.ndim == 2
    if single:
        rot = rot[None]
    if rot.shape[1:] != (schema.N_JOINTS, 3):
        raise ValueError(f"expected local rotations of shape (T, {schema.N_JOINTS}, 3); got {rot.shape}")
    offsets = rest_offsets() if offsets is None else offsets
    local = axis_angle_to_matrix(rot)  # (T, 55, 3, 3)
    world_rot = np.empty_like(local)
    pos = np.empty(rot.shape)
    roots = [j for j, parent in enumerate(schema.JOINT_PARENTS) if parent < 0]
    world_rot[:, roots], pos[:, roots] = local[:, roots], offsets[roots]
    for joints, parents in _depth_levels():  # one level of the tree at a time (about a dozen)
        world_rot[:, joints] = world_rot[:, parents] @ local[:, joints]
        # the child sits at its rest offset, turned by its parent's world rotation
        pos[:, joints] = pos[:, parents] + np.einsum("tjab,jb->tja", world_rot[:, parents], offsets[joints])
    return pos[0] if single else pos


def local_rotations_from_body(body: np.ndarray, face: np.ndarray | None = None) -> np.ndarray:
    """(T, 55, 3) local axis-angles from a (T, 179) VENUS body track.

    The root is left at zero (it is constant in VENUS and carries nothing). When a
    (T, 156) face track is given, its jaw replaces the body's jaw (EMOCA's jaw is the
    better estimate); head rotation stays the body's Head joint.
    """
    body = np.asarray(body, dtype=np.float64)
    rot = np.zeros((body.shape[0], schema.N_JOINTS, 3))
    rot[:, 1:22] = body[:, schema.BODY_JOINTS].reshape(-1, 21, 3)
    rot[:, schema.JOINT_INDEX["jaw"]] = body[:, schema.BODY_JAW]
    hands = body[:, schema.BODY_LEFT_HAND.start : schema.BODY_RIGHT_HAND.stop].reshape(-1, 30, 3)
    rot[:, schema.JOINT_INDEX["left_index1"] :] = hands
    if face is not None:
        layout = schema.face_layout_for(np.shape(face)[-1])
        rot[:, schema.JOINT_INDEX["jaw"]] = np.asarray(face)[:, layout.jaw]
    return rot


def chin_position(joints: np.ndarray, local_rotvecs: np.ndarray) -> np.ndarray:
    """(T, 3) position of the chin: a point 6 cm below and 7 cm in front of the jaw joint,
    carried by the jaw's world rotation (the skeleton has no face mesh; this stands in)."""
    jaw = schema.JOINT_INDEX["jaw"]
    chain = []  # world rotation of the jaw = product of local rotations along its chain
    j = jaw
    while j >= 0:
        chain.append(j)
        j = schema.JOINT_PARENTS[j]
    mats = axis_angle_to_matrix(np.asarray(local_rotvecs)[:, chain[::-1]])
    world = mats[:, 0]
    for k in range(1, mats.shape[1]):
        world = world @ mats[:, k]
    return joints[:, jaw] + world @ np.array([0.0, -0.06, 0.07])
