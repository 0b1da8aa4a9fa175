"""Motion for the synthetic VENUS, made through the package's own skeleton.

Every gesture is a target the skeleton must reach: "hand to chin" solves the right arm's
rotations so that its knuckles sit at the chin of ``kinematics.chin_position``, "crossed
arms" puts each wrist in front of the other elbow, and so on. Poses are solved once per
process by least squares on our own forward kinematics, then blended in time:

    pose(t) = idle(t) + e(t) * (gesture - idle(t))

where e(t) is a smooth envelope (raised-cosine attack, hold, release). Oscillating cues
(nod, head shake, beats, air-quote finger flexes) add a sine wave under the envelope.
Speech opens and closes the jaw about four times a second; breathing rocks the spine; slow
random sway moves the torso and head; a per-channel white noise stands in for the jitter
of the EMOCA/OSX estimators. All rotations are axis-angle, in SMPL-X joint order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import least_squares

from . import kinematics, schema
from . import synthetic_rules as rules

J = schema.JOINT_INDEX
FPS = schema.FPS


@dataclass
class CueEvent:
    """One cue in an utterance: which, from which frame to which (utterance-relative)."""

    cue: str
    start: int  # first frame, relative to the utterance's first frame
    end: int  # one past the last frame
    strength: float  # 1.0 = full gesture
    trigger: str | None = None  # the word that caused it; None for background cues
    rule: str | None = None


@dataclass
class Style:
    """How one speaker moves (per-speaker planted differences for bias analyses)."""

    expressivity: float  # scales gesture amplitude and face intensity
    gesture_rate: float  # scales the chance that a rule fires, and background cue rates
    words_per_second: float
    jitter: float  # std of the estimator noise added to every parameter (per channel)
    shape: np.ndarray  # (100,) FLAME identity
    betas: np.ndarray  # (10,) SMPL-X shape
    neutral_face: np.ndarray  # (50,) resting expression


# ---------------------------------------------------------------------------------------
# Key poses, solved on our skeleton
# ---------------------------------------------------------------------------------------
def _seated_base() -> np.ndarray:
    """(55, 3) local rotations of a person seated upright: thighs forward, shins down."""
    rot = np.zeros((schema.N_JOINTS, 3))
    for side in ("left", "right"):
        rot[J[f"{side}_hip"]] = (-np.pi / 2, 0.0, 0.0)  # thigh swings forward to horizontal
        rot[J[f"{side}_knee"]] = (np.pi / 2, 0.0, 0.0)  # shin hangs down again
    # relaxed fingers: a light curl of every finger joint toward the palm
    for side, sign in (("left", -1.0), ("right", 1.0)):
        for finger in schema.FINGERS[:4]:
            for k in (1, 2, 3):
                rot[J[f"{side}_{finger}{k}"]] = (0.0, 0.0, sign * 0.25)
    return rot


_ARM = {side: [J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]] for side in ("left", "right")}


def _solve_arm(
    base: np.ndarray, side: str, target: np.ndarray, effector: str, x0: np.ndarray,
    elbow_hint: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Rotations of one arm (shoulder, elbow, wrist) that bring ``effector`` to ``target``.

    Least squares on the position error plus a small pull toward zero rotation, so the
    solution is the least twisted arm that reaches (deterministic for a given start). An
    ``elbow_hint`` pulls the elbow toward a natural place (e.g. low, for hand-to-chin).
    Only the arm's own chain is recomputed per step: the shoulder's parent is fixed.
    """
    shoulder, elbow, wrist = _ARM[side]
    eff = J[effector]
    full = kinematics.forward_kinematics(base)
    collar = schema.JOINT_PARENTS[shoulder]
    # world rotation of the collar = product of local rotations from the pelvis down
    chain, j = [], collar
    while j >= 0:
        chain.append(j)
        j = schema.JOINT_PARENTS[j]
    collar_rot = np.eye(3)
    for j in reversed(chain):
        collar_rot = collar_rot @ kinematics.axis_angle_to_matrix(base[j])
    offsets = kinematics.rest_offsets()
    tail = [] if eff == wrist else [eff]  # a finger knuckle hangs from the wrist

    def arm_points(p):
        mats = kinematics.axis_angle_to_matrix(p.reshape(3, 3))
        r_sh = collar_rot @ mats[0]
        p_sh = full[collar] + collar_rot @ offsets[shoulder]
        p_el = p_sh + r_sh @ offsets[elbow]
        r_el = r_sh @ mats[1]
        p_wr = p_el + r_el @ offsets[wrist]
        p_eff = p_wr + (r_el @ mats[2]) @ offsets[tail[0]] if tail else p_wr
        return p_el, p_eff

    def residual(p):
        p_el, p_eff = arm_points(p)
        hint = 3.0 * (p_el - elbow_hint) if elbow_hint is not None else np.zeros(3)
        return np.r_[10.0 * (p_eff - target), hint, 0.05 * p, 0.3 * p[6:]]  # wrists near straight

    sol = least_squares(residual, x0.ravel(), method="lm", max_nfev=400)
    out = base.copy()
    out[[shoulder, elbow, wrist]] = sol.x.reshape(3, 3)
    return out


def _arm_guess(side: str, down: float, elbow: float) -> np.ndarray:
    """A starting arm pose: shoulder lowered by ``down`` rad, elbow bent forward by ``elbow``."""
    s = 1.0 if side == "left" else -1.0
    return np.array([[0.0, 0.0, -s * down], [0.0, -s * elbow, 0.0], [0.0, 0.0, 0.0]])


@lru_cache(maxsize=1)
def key_poses() -> dict[str, np.ndarray]:
    """The solved (55, 3) key poses: idle, hand_to_chin, beat, air_quotes, crossed_arms,
    open_arms, shrug. Computed once per process (well under a second)."""
    base = _seated_base()
    chin = kinematics.chin_position(kinematics.forward_kinematics(base)[None], base[None])[0]
    poses = {}
    idle = base
    for side, s in (("left", 1.0), ("right", -1.0)):  # wrists resting on the thighs
        idle = _solve_arm(idle, side, np.array([s * 0.20, 0.05, 0.30]), f"{side}_wrist", _arm_guess(side, 1.2, 1.0))
    poses["idle"] = idle
    # Knuckles of the right middle finger just under and in front of the chin.
    poses["hand_to_chin"] = _solve_arm(
        idle, "right", chin + np.array([0.0, -0.02, 0.03]), "right_middle1", _arm_guess("right", 1.0, 2.2),
        elbow_hint=(-0.18, 0.22, 0.22),
    )
    poses["beat"] = _solve_arm(idle, "right", np.array([-0.18, 0.16, 0.34]), "right_wrist", _arm_guess("right", 1.1, 1.3))

    def both(pose, left_target, right_target, down, elbow, hint=None):
        mirror = lambda h: None if h is None else (-h[0], h[1], h[2])  # noqa: E731
        pose = _solve_arm(pose, "left", np.array(left_target), "left_wrist", _arm_guess("left", down, elbow), hint)
        return _solve_arm(
            pose, "right", np.array(right_target), "right_wrist", _arm_guess("right", down, elbow), mirror(hint)
        )

    poses["air_quotes"] = both(idle, (0.22, 0.50, 0.26), (-0.22, 0.50, 0.26), 0.8, 2.0)
    poses["crossed_arms"] = both(idle, (-0.12, 0.30, 0.17), (0.12, 0.28, 0.20), 1.2, 2.0, hint=(0.24, 0.24, 0.12))
    poses["open_arms"] = both(idle, (0.42, 0.22, 0.30), (-0.42, 0.22, 0.30), 0.9, 0.9)
    shrug = both(idle, (0.34, 0.16, 0.26), (-0.34, 0.16, 0.26), 1.0, 1.4)
    shrug[J["left_collar"]] += (0.0, 0.0, 0.25)  # collars lift the shoulders
    shrug[J["right_collar"]] += (0.0, 0.0, -0.25)
    poses["shrug"] = shrug
    for p in poses.values():
        p.setflags(write=False)
    return poses


# Which joints each pose gesture moves (the rest keeps the idle motion).
_POSE_JOINTS = {
    "hand_to_chin": _ARM["right"],
    "beat": _ARM["right"],
    "air_quotes": _ARM["left"] + _ARM["right"],
    "crossed_arms": _ARM["left"] + _ARM["right"],
    "open_arms": _ARM["left"] + _ARM["right"],
    "shrug": _ARM["left"] + _ARM["right"] + [J["left_collar"], J["right_collar"]],
}
FACE_CUES = ("smile", "frown")
HEAD_CUES = ("nod", "head_shake")


def envelope(n: int, start: int, end: int, attack: int = 5, release: int = 6) -> np.ndarray:
    """(n,) smooth 0..1 bump that rises over ``attack`` frames from ``start``, holds, and
    falls to 0 over ``release`` frames at ``end`` (raised-cosine ramps; no jumps)."""
    t = np.arange(n, dtype=float)
    rise = np.clip((t - start + 1) / max(attack, 1), 0.0, 1.0)
    fall = np.clip((end - t) / max(release, 1), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall))


def _smooth_noise(rng: np.random.Generator, n: int, dims: int, cutoff_frames: float) -> np.ndarray:
    """(n, dims) slow random motion: white noise through a moving average of ``cutoff_frames``."""
    k = max(int(cutoff_frames), 1)
    noise = rng.standard_normal((n + k, dims))
    c = np.cumsum(noise, axis=0)
    window_sums = c[k:] - c[:-k]  # sum of k consecutive samples, for every start
    return window_sums[:n] / np.sqrt(k)  # divide by sqrt(k): unit variance again


def speaking_envelope(n: int, word_starts: np.ndarray, word_ends: np.ndarray) -> np.ndarray:
    """(n,) 0..1 curve that is 1 while a word is spoken, with soft 2-frame edges."""
    on = np.zeros(n + 4)
    for s, e in zip(word_starts, word_ends):
        on[int(s) + 2 : int(e) + 3] = 1.0  # offset by the kernel's half width
    kernel = np.hanning(5)[1:-1]
    return np.convolve(on, kernel / kernel.sum(), mode="same")[2 : n + 2]


def utterance_motion(
    rng: np.random.Generator,
    n_frames: int,
    word_frames: np.ndarray,
    word_end_frames: np.ndarray,
    events: list[CueEvent],
    style: Style,
    phase: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthesise one utterance's motion.

    ``word_frames``/``word_end_frames`` are the words' start/end frames relative to the
    utterance; ``phase`` is the utterance start in seconds (keeps breathing continuous).
    Returns ``(rot (T,55,3), expression (T,50), head (T,3))`` where ``head`` is the head's
    rotation as FLAME sees it (neck + head).
    """
    T = n_frames
    t = np.arange(T) / FPS + phase
    poses = key_poses()
    amp = style.expressivity
    rot = np.broadcast_to(poses["idle"], (T, schema.N_JOINTS, 3)).copy()

    # Breathing (~15 breaths a minute) rocks the upper spine; slow sway moves torso and head.
    breath = np.sin(2 * np.pi * 0.25 * t)
    rot[:, J["spine3"], 0] += 0.015 * breath
    rot[:, J["left_collar"], 2] += 0.01 * breath
    rot[:, J["right_collar"], 2] -= 0.01 * breath
    sway = _smooth_noise(rng, T, 5, cutoff_frames=40)
    rot[:, J["spine1"], 1] += 0.03 * amp * sway[:, 0]
    rot[:, J["spine1"], 2] += 0.015 * amp * sway[:, 1]
    rot[:, J["head"], :2] += 0.04 * amp * sway[:, 2:4]
    rot[:, J["neck"], 0] += 0.02 * amp * sway[:, 4]

    # Speech drives the jaw: a ~4 Hz syllable rhythm while each word is spoken.
    speaking = speaking_envelope(T, word_frames, word_end_frames)
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.2 * t + rng.uniform(0, 2 * np.pi))
    jaw_open = (0.06 + 0.14 * amp) * speaking * syllables
    expression = np.broadcast_to(style.neutral_face, (T, schema.N_EXPRESSION)).copy()
    visemes = _smooth_noise(rng, T, 3, cutoff_frames=4)  # mouth shapes change per syllable
    expression[:, 1:4] += 0.4 * speaking[:, None] * visemes

    for ev in events:
        e = envelope(T, ev.start, ev.end) * ev.strength
        if not e.any():
            continue
        tt = (np.arange(T) - ev.start) / FPS
        if ev.cue == "nod":  # pitch oscillation about the head's x axis, part in the neck
            wave = e * 0.16 * amp * np.sin(2 * np.pi * 2.5 * tt)
            rot[:, J["head"], 0] += wave
            rot[:, J["neck"], 0] += 0.3 * wave
        elif ev.cue == "head_shake":  # yaw oscillation about the vertical axis
            rot[:, J["head"], 1] += e * 0.22 * amp * np.sin(2 * np.pi * 2.0 * tt)
        elif ev.cue in FACE_CUES:
            expression += (e * min(amp, 1.5))[:, None] * rules.expression_vector(ev.cue)
            if ev.cue == "smile":
                jaw_open = jaw_open + 0.05 * e
        elif ev.cue in _POSE_JOINTS:
            idx = _POSE_JOINTS[ev.cue]
            w = np.minimum(e, 1.0)[:, None, None]
            rot[:, idx] += w * (poses[ev.cue][idx] - rot[:, idx])
            if ev.cue == "beat":  # quick down-strokes of the forearm, three a second
                stroke = np.maximum(0.0, np.sin(2 * np.pi * 3.0 * tt)) ** 2
                rot[:, J["right_elbow"], 1] -= e * 0.35 * amp * stroke
                rot[:, J["right_wrist"], 2] += e * 0.3 * amp * stroke
            elif ev.cue == "air_quotes":  # index and middle fingers flex twice
                flex = e * 1.1 * (0.5 - 0.5 * np.cos(2 * np.pi * 2.0 * tt))
                for side, sign in (("left", -1.0), ("right", 1.0)):
                    for finger in ("index", "middle"):
                        for k in (2, 3):
                            rot[:, J[f"{side}_{finger}{k}"], 2] += sign * flex
        else:
            raise ValueError(f"unknown cue {ev.cue!r}")

    rot[:, J["jaw"], 0] = jaw_open  # jaw opens by rotating about its x axis
    head = rot[:, J["head"]] + rot[:, J["neck"]]
    return rot, expression, head


def pack_features(
    rot: np.ndarray, expression: np.ndarray, head: np.ndarray, style: Style, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Lay a motion out as VENUS feature vectors: (T, 156) FLAME and (T, 179) SMPL-X.

    Estimator jitter (white noise of std ``style.jitter``) is added to the pose and
    expression parameters, as EMOCA/OSX estimates shake from frame to frame.
    """
    T = rot.shape[0]
    jaw = rot[:, J["jaw"]]
    noise = lambda *shape: style.jitter * rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    face = np.empty((T, schema.FACE_DIM), dtype=np.float32)
    lay = schema.FACE_LAYOUT
    face[:, lay.expression] = expression + noise(T, schema.N_EXPRESSION)
    face[:, lay.head_rotation] = head + noise(T, 3)
    face[:, lay.jaw] = jaw + 0.5 * noise(T, 3)
    face[:, lay.shape] = style.shape
    body = np.empty((T, schema.BODY_DIM), dtype=np.float32)
    body[:, schema.BODY_ROOT] = 0.0  # constant in VENUS
    body[:, schema.BODY_JOINTS] = rot[:, 1:22].reshape(T, 63) + noise(T, 63)
    hands = rot[:, J["left_index1"] :].reshape(T, 90)
    body[:, schema.BODY_LEFT_HAND.start : schema.BODY_RIGHT_HAND.stop] = hands + noise(T, 90)
    body[:, schema.BODY_JAW] = jaw
    body[:, schema.BODY_BETAS] = style.betas
    body[:, schema.BODY_EXPRESSION] = expression[:, :10]
    return face, body
