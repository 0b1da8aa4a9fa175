"""Kinematic features of face and body tracks, for the analysis layer.

Every function here works on whole tracks at once (numpy over frames, no Python loop over
frames) and on real VENUS data as well as on the synthetic data. Inputs are the arrays that
``extraction.segment_utterances`` returns for one utterance:

- body tracks of 179 floats (``body_full``) or of the 117 tokenizer floats (``body``);
- face tracks of 156 or 153 floats (``face_full``) or of the 53 tokenizer floats (``face``);
- the face's head rotation, (T, 3) axis-angle (``head_rotation``).

Positions come from the package's own skeleton (``kinematics.forward_kinematics``), so they
are in metres, y up, x to the subject's left, z forward, with the pelvis at the origin. The
widths of every input are recognised through ``schema``: nothing here hard-codes an index
range.

Real tracks have gaps (the active-speaker detector misses frames). The time-derivative
features (:func:`hand_speed`, :func:`head_angular_velocity`, :func:`nod_shake_energy`)
accept the utterance's ``frames`` so that a gap is treated as the time it really lasted,
not as one frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, sosfiltfilt
from scipy.spatial.transform import Rotation

from . import kinematics, schema
from . import synthetic_rules as rules

J = schema.JOINT_INDEX
FPS = schema.FPS

# Accepted widths (number of floats per frame) of each kind of track.
BODY_WIDTHS = (schema.BODY_DIM, schema.BODY_TOKEN_DIM)  # 179 full SMPL-X, 117 tokenizer
FACE_WIDTHS = (schema.FACE_TOKEN_DIM, *sorted(schema.FACE_LAYOUTS))  # 53 tokenizer, 153, 156


# ---------------------------------------------------------------------------------------
# Width checks and column lookup
# ---------------------------------------------------------------------------------------
def _as_track(x, what: str) -> np.ndarray:
    """``x`` as a float64 (T, D) array; a single frame (D,) becomes (1, D)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a (frames, columns) array; got shape {arr.shape}")
    return arr


def _body_width(body: np.ndarray) -> int:
    width = body.shape[-1]
    if width not in BODY_WIDTHS:
        raise ValueError(
            f"a body track has {schema.BODY_DIM} columns (SMPL-X via OSX) or "
            f"{schema.BODY_TOKEN_DIM} (the tokenizer's upper body + hands); got {width}"
        )
    return width


def _face_columns(width: int, part: str) -> slice:
    """Slice of ``part`` ("expression" or "jaw") in a face track of ``width`` columns."""
    if width == schema.FACE_TOKEN_DIM:
        return schema.FACE_TOKEN_EXPRESSION if part == "expression" else schema.FACE_TOKEN_JAW
    if width in schema.FACE_LAYOUTS:
        return getattr(schema.face_layout_for(width), part)
    raise ValueError(
        f"a face track has {schema.FACE_TOKEN_DIM} columns (the tokenizer's expression + jaw), "
        f"{schema.FACE_LAYOUT.length} (FLAME) or {schema.FACE_LAYOUT_LEGACY.length} (legacy FLAME); got {width}"
    )


def _face_jaw(face) -> np.ndarray:
    face = _as_track(face, "face")
    return face[:, _face_columns(face.shape[1], "jaw")]


@lru_cache(maxsize=1)
def _token_joints() -> tuple[np.ndarray, np.ndarray]:
    """Skeleton indices of the joints stored in the 117 tokenizer columns, and their columns."""
    joints, columns = [], []
    for name, j in schema.JOINT_INDEX.items():
        try:
            s = schema.token_joint_slice(name)
        except KeyError:  # not a stored joint, or not tokenized (lower body, spine, neck)
            continue
        joints.append(j)
        columns.extend(range(s.start, s.stop))
    return np.array(joints), np.array(columns)


def _hand_columns(width: int) -> tuple[slice, slice]:
    """(left, right) slices of the 15 finger joints' axis-angles in a body track."""
    if width == schema.BODY_DIM:
        return schema.BODY_LEFT_HAND, schema.BODY_RIGHT_HAND
    return schema.BODY_TOKEN_LEFT_HAND, schema.BODY_TOKEN_RIGHT_HAND


@lru_cache(maxsize=32)
def butter_sos(order: int, cutoff, btype: str, fps: float) -> np.ndarray:
    """Second-order sections of a Butterworth filter (designed once per setting and cached:
    the design costs more than filtering a short utterance)."""
    return butter(order, cutoff, btype=btype, fs=fps, output="sos")  # shared: callers must not modify it


def _times(n: int, fps: float, frames) -> np.ndarray:
    """Sample times in seconds: ``frames / fps`` (checked ascending) or ``arange(n) / fps``."""
    if fps <= 0:
        raise ValueError(f"fps must be positive; got {fps}")
    if frames is None:
        return np.arange(n) / fps
    t = np.asarray(frames, dtype=np.float64).reshape(-1)
    if len(t) != n:
        raise ValueError(f"frames has {len(t)} entries but the track has {n} frames")
    if n > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("frames must be strictly increasing (one entry per stored frame)")
    return t / fps


# ---------------------------------------------------------------------------------------
# Poses and joints
# ---------------------------------------------------------------------------------------
def neutral_seated_pose() -> np.ndarray:
    """(55, 3) local axis-angles of a person seated upright, everything else at rest.

    Both hips are flexed by -pi/2 about x (thighs forward, horizontal) and both knees by
    +pi/2 (shins hanging down); all other joints are zero (upright spine and neck, T-pose
    arms, flat hands). It stands in for the joints the tokenizer does not keep (lower body,
    spine, neck) when a 117-column track is turned into a full pose.
    """
    rot = np.zeros((schema.N_JOINTS, 3))
    for side in ("left", "right"):
        rot[J[f"{side}_hip"], 0] = -np.pi / 2
        rot[J[f"{side}_knee"], 0] = np.pi / 2
    return rot


def _apply_face(rot: np.ndarray, face, head_rotation) -> np.ndarray:
    n = rot.shape[0]
    if face is not None:
        jaw = _face_jaw(face)
        if len(jaw) != n:
            raise ValueError(f"the face track has {len(jaw)} frames but the body track has {n}")
        rot[:, J["jaw"]] = jaw
    if head_rotation is not None:
        head = _as_track(head_rotation, "head_rotation")
        if head.shape != (n, 3):
            raise ValueError(f"head_rotation must be ({n}, 3) axis-angles; got {head.shape}")
        # The face's head rotation is the whole head's orientation: put it on the Head joint
        # and straighten the neck so that it is not applied twice.
        rot[:, J["head"]] = head
        rot[:, J["neck"]] = 0.0
    return rot


def local_rotations_from_tokens(body117, face=None, head_rotation=None) -> np.ndarray:
    """(T, 55, 3) local axis-angles (radians) from a (T, 117) tokenizer body track.

    The tokenizer keeps the nine upper-body joints (collars, Head, shoulders, elbows,
    wrists) and both hands; every other joint takes :func:`neutral_seated_pose` (hips and
    knees seated, spine and neck upright, root zero). ``face`` (53, 153 or 156 columns)
    supplies the jaw. ``head_rotation`` ((T, 3) axis-angle, e.g. ``UtteranceArrays.
    head_rotation``) replaces the body's Head joint and zeroes the neck.

    On real VENUS the face's head rotation is FLAME's global head orientation from EMOCA,
    relative to the camera, while the body's root is constant: putting it on the Head joint
    is a stand-in that is right when the speaker's torso faces the camera. In the synthetic
    data it is exactly the neck + head rotation the generator made.
    """
    body = _as_track(body117, "body117")
    if body.shape[1] != schema.BODY_TOKEN_DIM:
        raise ValueError(
            f"local_rotations_from_tokens takes the {schema.BODY_TOKEN_DIM} tokenizer columns; got "
            f"{body.shape[1]} (use local_rotations() for {schema.BODY_DIM}-column tracks)"
        )
    joints, columns = _token_joints()
    rot = np.broadcast_to(neutral_seated_pose(), (body.shape[0], schema.N_JOINTS, 3)).copy()
    rot[:, joints] = body[:, columns].reshape(body.shape[0], len(joints), 3)
    return _apply_face(rot, face, head_rotation)


def local_rotations(body, face=None, head_rotation=None) -> np.ndarray:
    """(T, 55, 3) local axis-angles from a body track of 179 or 117 columns (by width).

    179 columns: every joint as stored (``kinematics.local_rotations_from_body``, root
    zero); 117 columns: :func:`local_rotations_from_tokens`. ``face`` (53/153/156 columns)
    supplies the jaw; ``head_rotation`` replaces the Head joint and zeroes the neck.
    """
    body = _as_track(body, "body")
    if _body_width(body) == schema.BODY_TOKEN_DIM:
        return local_rotations_from_tokens(body, face, head_rotation)
    return _apply_face(kinematics.local_rotations_from_body(body), face, head_rotation)


def joints_from_body(body, face=None, head_rotation=None) -> np.ndarray:
    """(T, 55, 3) joint positions (metres, pelvis at the origin) of a 179- or 117-column track.

    The two widths give the same upper-body and hand joints when the 179-column track's
    spine, neck and lower body are those of :func:`neutral_seated_pose`; otherwise the
    179-column track's spine and neck rotations move the upper body as they should.
    """
    return kinematics.forward_kinematics(local_rotations(body, face, head_rotation))


# ---------------------------------------------------------------------------------------
# Hands and arms
# ---------------------------------------------------------------------------------------
def wrist_height(joints: np.ndarray) -> np.ndarray:
    """(T, 2) height of each wrist above its own shoulder, metres: [:, 0] left, [:, 1] right.

    Negative when the wrist is below the shoulder (resting hands are about -0.4 m); a hand
    raised to the face or in air quotes is near 0 or above it. Measured along the
    skeleton's vertical (y) axis, which is the torso's vertical for a 117-column track.
    """
    joints = np.asarray(joints, dtype=np.float64)
    wrists = joints[:, [J["left_wrist"], J["right_wrist"]], 1]
    shoulders = joints[:, [J["left_shoulder"], J["right_shoulder"]], 1]
    return wrists - shoulders


def hand_to_face_distance(joints: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """(T, 2) distance (metres) from each hand's middle-finger knuckle to the chin.

    The chin is ``kinematics.chin_position(joints, rot)`` (a point below and in front of
    the jaw joint, carried by the head); ``rot`` are the (T, 55, 3) local rotations the
    ``joints`` were made from. [:, 0] left hand, [:, 1] right hand. A hand on the chin
    gives a few centimetres; hands resting in the lap about half a metre.
    """
    joints = np.asarray(joints, dtype=np.float64)
    chin = kinematics.chin_position(joints, rot)
    knuckles = joints[:, [J["left_middle1"], J["right_middle1"]]]
    return np.linalg.norm(knuckles - chin[:, None], axis=-1)


def hand_speed(joints: np.ndarray, fps: float = FPS, frames=None) -> np.ndarray:
    """(T, 2) speed of each wrist in metres per second: [:, 0] left, [:, 1] right.

    Central differences (``np.gradient``; one-sided at the ends) of the wrist positions
    against time, so the output has the input's length. ``frames`` (the stored frame
    indices) makes a gap count as the time it lasted. Positions are relative to the
    pelvis, so torso sway adds to the speed. A track of one frame has speed 0.
    """
    joints = np.asarray(joints, dtype=np.float64)
    t = _times(len(joints), fps, frames)
    if len(joints) < 2:
        return np.zeros((len(joints), 2))
    wrists = joints[:, [J["left_wrist"], J["right_wrist"]]]
    velocity = np.gradient(wrists, t, axis=0)
    return np.linalg.norm(velocity, axis=-1)


def finger_curl(body) -> np.ndarray:
    """(T, 2) mean bend of the 15 finger joints of each hand, radians: [:, 0] left, [:, 1] right.

    Each finger joint's bend is the angle of its local rotation (the norm of its
    axis-angle); the mean over the hand's 15 joints is 0 for the pose the parameters are
    relative to and grows as the fingers curl (towards 1 rad for a fist). Finger joints bend
    mostly by flexion, so this follows flexion; sideways spread counts too. Accepts 179 or
    117 columns. Note: SMPL-X hand poses may be stored relative to a mean, relaxed hand
    (smplx's ``flat_hand_mean=False``); then 0 is that relaxed hand, not a flat one.
    """
    body = _as_track(body, "body")
    left, right = _hand_columns(_body_width(body))
    hands = np.stack([body[:, left], body[:, right]], axis=1).reshape(len(body), 2, -1, 3)
    return np.linalg.norm(hands, axis=-1).mean(axis=-1)


# ---------------------------------------------------------------------------------------
# Head
# ---------------------------------------------------------------------------------------
def _rotvec_of_relative(rot_a: np.ndarray, rot_b: np.ndarray) -> np.ndarray:
    """Axis-angles of ``rot_a^T @ rot_b`` (the turn from a to b, in a's own frame)."""
    rel = np.swapaxes(rot_a, -1, -2) @ rot_b
    return Rotation.from_matrix(rel.reshape(-1, 3, 3)).as_rotvec().reshape(rel.shape[:-2] + (3,))


def head_angular_velocity(head_rotation, fps: float = FPS, frames=None) -> np.ndarray:
    """(T, 3) angular velocity of the head in its own frame, radians per second.

    Columns: [:, 0] pitch rate (about the head's left-right x axis; positive = chin goes
    down), [:, 1] yaw rate (about its vertical y axis; positive = face turns to the
    subject's left), [:, 2] roll rate (about its forward z axis). ``head_rotation`` is
    (T, 3) axis-angle (FLAME's head rotation, ``UtteranceArrays.head_rotation``);
    ``frames`` makes a gap count as the time it lasted.
    """
    rv = _as_track(head_rotation, "head_rotation")
    if rv.shape[1] != 3:
        raise ValueError(f"head_rotation must be (T, 3) axis-angles; got {rv.shape}")
    n = len(rv)
    t = _times(n, fps, frames)
    out = np.zeros((n, 3))
    if n < 2:
        return out
    # Why relative rotations and not differences of the axis-angle numbers: an axis-angle
    # vector is a chart on the rotation group, not a vector space, so d(rotvec)/dt equals the
    # angular velocity only near the identity. For a head turned 30 degrees to one side, a
    # pure nod changes all three rotvec components. The turn between two frames,
    # R_a^T R_b = exp(w * dt), is exact for any orientation; its axis-angle divided by the
    # time between the frames is the angular velocity w in the head's own frame. That frame
    # makes the columns the head's own pitch/yaw/roll whatever its orientation, and it
    # cancels a constant camera rotation C (EMOCA's head rotation is camera-relative):
    # (C R_a)^T (C R_b) = R_a^T R_b. Like np.gradient: central over two steps inside, one
    # step at the ends (a turn of well under pi between frames two apart is assumed).
    mats = kinematics.axis_angle_to_matrix(rv)
    out[0] = _rotvec_of_relative(mats[0], mats[1]) / (t[1] - t[0])
    out[-1] = _rotvec_of_relative(mats[-2], mats[-1]) / (t[-1] - t[-2])
    if n > 2:
        out[1:-1] = _rotvec_of_relative(mats[:-2], mats[2:]) / (t[2:] - t[:-2])[:, None]
    return out


def nod_shake_energy(
    head_rotation,
    fps: float = FPS,
    band: tuple[float, float] = (1.5, 4.0),
    window_s: float = 0.4,
    frames=None,
    order: int = 2,
) -> np.ndarray:
    """(T, 2) band-limited head oscillation per frame, radians RMS: [:, 0] nod, [:, 1] shake.

    Nodding is pitch oscillation, shaking is yaw oscillation, both at a few cycles a second.
    The head's own pitch and yaw angle series are obtained by integrating
    :func:`head_angular_velocity` over time (so the measure ignores where the camera is and
    works for a head turned to one side); each is band-passed to ``band`` Hz (a Butterworth
    filter of ``order``, run forwards and backwards: no delay) and turned into a moving RMS
    over ``window_s`` seconds, centred. A sine of amplitude A inside the band gives about
    A / sqrt(2); slow turns, drift and frame jitter fall outside the band.

    With ``frames``, a track with gaps is linearly interpolated onto every frame between its
    first and last before filtering, and the result is read back at the stored frames.
    Tracks of fewer than 3 frames give zeros; short tracks are filtered with a shortened
    edge padding (a short track cannot show much of a 1.5 Hz oscillation anyway).
    """
    lo, hi = float(band[0]), float(band[1])
    if not 0 < lo < hi < fps / 2:
        raise ValueError(f"band must satisfy 0 < low < high < fps/2 = {fps / 2}; got {band}")
    omega = head_angular_velocity(head_rotation, fps, frames)
    n = len(omega)
    if n < 3:
        return np.zeros((n, 2))
    t = _times(n, fps, frames)
    # Head-frame pitch and yaw angles, up to a constant (trapezoidal integration).
    steps = 0.5 * (omega[1:, :2] + omega[:-1, :2]) * np.diff(t)[:, None]
    angles = np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    if frames is not None:  # resample onto the regular frame grid the filter needs
        grid = np.arange(np.rint(t[0] * fps), np.rint(t[-1] * fps) + 1) / fps
        regular = np.stack([np.interp(grid, t, angles[:, k]) for k in range(2)], axis=1)
    else:
        grid, regular = t, angles
    sos = butter_sos(order, (lo, hi), "bandpass", fps)
    padlen = min(3 * (2 * len(sos) + 1), len(regular) - 1)
    filtered = sosfiltfilt(sos, regular, axis=0, padlen=padlen)
    window = max(1, int(round(window_s * fps)))
    rms = np.sqrt(uniform_filter1d(filtered**2, size=window, axis=0, mode="nearest"))
    if frames is not None:
        rms = rms[np.rint((t - grid[0]) * fps).astype(int)]
    return rms


# ---------------------------------------------------------------------------------------
# Face
# ---------------------------------------------------------------------------------------
def jaw_opening(face) -> np.ndarray:
    """(T,) how far the jaw is open, radians (0 = closed, a few tenths when wide open).

    The angle by which the jaw's rotation tips the jaw's forward (z) axis downward, from the
    face track's jaw axis-angle (53, 153 or 156 columns). For a pure rotation about the
    left-right axis it equals that rotation's angle; a sideways jaw shift barely changes it.
    Negative values mean the jaw is pushed up past its rest pose (estimator noise).
    """
    jaw = _face_jaw(face)
    forward = kinematics.axis_angle_to_matrix(jaw)[..., :, 2]  # rotated z axis
    return np.arctan2(-forward[:, 1], forward[:, 2])


def expression_projection(face, direction) -> np.ndarray:
    """(T,) projection of the 50 FLAME expression coefficients on a direction.

    ``direction`` is the name of a synthetic expression direction
    (``synthetic_rules.EXPRESSION_DIRECTIONS``: "smile", "frown", "surprise") or a (50,)
    vector; the result is the dot product with the unit direction, in expression-coefficient
    units (a full synthetic smile at strength e adds ``e * |smile|`` to it). ``face`` has
    50 (expression only), 53, 153 or 156 columns. On real data the synthetic directions mean
    nothing in particular (FLAME's coefficients have no official names).
    """
    face = _as_track(face, "face")
    if face.shape[1] == schema.N_EXPRESSION:
        expression = face
    else:
        expression = face[:, _face_columns(face.shape[1], "expression")]
    if isinstance(direction, str):
        if direction not in rules.EXPRESSION_DIRECTIONS:
            raise ValueError(
                f"unknown expression direction {direction!r}; named ones are {sorted(rules.EXPRESSION_DIRECTIONS)}"
            )
        vector = rules.expression_vector(direction)
    else:
        vector = np.asarray(direction, dtype=np.float64).reshape(-1)
        if vector.shape != (schema.N_EXPRESSION,):
            raise ValueError(f"an expression direction has {schema.N_EXPRESSION} entries; got {vector.shape}")
    norm = np.linalg.norm(vector)
    if norm == 0:
        raise ValueError("the expression direction is the zero vector")
    return expression @ (vector / norm)
