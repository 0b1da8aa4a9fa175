"""Animated views of one utterance: a 3-D stick figure, a schematic face, the words.

Every figure here is a plotly figure with *client-side* animation frames: the frames,
the play/pause buttons and the time slider all live inside the figure, so it animates in
the browser with no Python kernel behind it (robust on Colab, and in exported HTML).

- :func:`skeleton_figure`: the 55-joint skeleton (body and hands) in 3-D;
- :func:`face_figure`: a 2-D schematic face (mouth from the jaw, head tilt and turn from
  the head rotation) over a heat strip of the 50 expression coefficients;
- :func:`utterance_figure`: skeleton + face + words + expression strip, one slider;
- :func:`side_by_side`: two or three tracks of one utterance (say ground truth,
  reconstruction, generated) as skeletons sharing one slider;
- :func:`matplotlib_animation` / :func:`to_jshtml`: a fallback for where plotly does not
  render;
- :func:`save_html`: a standalone HTML file that works offline.

A *track* is any of: a (T, 179) SMPL-X body array, a (T, 117) tokenizer body array (lower
body held seated), a (T, 55, 3) array of joint positions, or an ``UtteranceArrays``.

Coordinates. The skeleton lives in SMPL coordinates (metres, y up, x to the subject's
left, z forward). Plotly's 3-D scenes put z up, so the figures draw the point (x, y, z) at
plotly's (x, -z, y): a rotation, not a mirror. The camera sits in front of the person,
who faces the viewer; the subject's left hand appears on the viewer's right, as it does
when someone faces you.

Long utterances are decimated to at most ``max_frames`` animation frames (the first and
last frames are always kept; the slider still reads the real time in seconds), and
coordinates are rounded to millimetres, so a 20 s utterance builds in well under a second
and exports to a small file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import kinematics, schema
from .extraction import UtteranceArrays, segment_utterances
from .files import atomic_write_text
from .figures import SPEAKER_COLORS, expression_heatmap
from .motion_features import joints_from_body

# The one place that turns a body track into joint positions: (body, face=None) -> (T, 55, 3).
# Swap in another function of that signature (say a real SMPL-X model's joints) to change
# how every figure here poses.
_joints_from_body = joints_from_body


FPS = schema.FPS
MAX_FRAMES = 150  # default cap on animation frames (6 s at 25 fps; longer tracks are decimated)
DECIMALS = 3  # coordinates are rounded to millimetres
BONE_PARENTS = np.array(schema.JOINT_PARENTS[1:])  # parent of each of the 54 bones
BONE_CHILDREN = np.arange(1, schema.N_JOINTS)  # child joint of each bone
N_BONES = len(BONE_CHILDREN)  # 54
POINTS_PER_BONE = 3  # parent, child, a NaN gap (plotly breaks the line at NaN)
MIDLINE_COLOR = "#444444"
SIDE_COLORS = {"left": SPEAKER_COLORS[0], "right": SPEAKER_COLORS[1]}
HIGHLIGHT = "rgba(255, 200, 0, 0.55)"


# ---------------------------------------------------------------------------------------
# Inputs: tracks, faces, words, time
# ---------------------------------------------------------------------------------------
def _check_finite(arr: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(arr).reshape(len(arr), -1).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{what} has NaN or infinite values at frames {rows[:5].tolist()} (of {len(arr)})")


def joints_of(track, what: str = "track") -> np.ndarray:
    """(T, 55, 3) joint positions of a track (see the module docstring for what a track is).

    An ``UtteranceArrays`` uses its 179-column body when it has one (``full=True``), else
    its 117 tokenizer columns, and its face track for the jaw. Raises ``ValueError`` naming
    the accepted shapes, or the frames with NaN.
    """
    if isinstance(track, UtteranceArrays):
        body = track.body_full if track.body_full is not None else track.body
        face = track.face_full if track.face_full is not None else track.face
        return joints_of_body(body, face, what)
    arr = np.asarray(track, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[1:] == (schema.N_JOINTS, 3):
        if len(arr) == 0:
            raise ValueError(f"{what} has no frames")
        _check_finite(arr, what)
        return arr
    if arr.ndim == 2 and arr.shape[1] in (schema.BODY_DIM, schema.BODY_TOKEN_DIM):
        return joints_of_body(arr, None, what)
    raise ValueError(
        f"{what} must be a (T, {schema.BODY_DIM}) or (T, {schema.BODY_TOKEN_DIM}) body array, "
        f"a (T, {schema.N_JOINTS}, 3) joints array or an UtteranceArrays; got shape {arr.shape}"
    )


def joints_of_body(body, face=None, what: str = "body") -> np.ndarray:
    """(T, 55, 3) joint positions of a (T, 179) or (T, 117) body track; ``face`` gives the jaw."""
    body = np.asarray(body, dtype=np.float64)
    if len(body) == 0:
        raise ValueError(f"{what} has no frames")
    _check_finite(body, what)
    if face is not None:
        face = np.asarray(face, dtype=np.float64)
        _check_finite(face, f"the face track of {what}")
    return _joints_from_body(body, face)


def face_parts(face, head_rotation=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(expression (T, 50), jaw (T, 3), head rotation (T, 3) or None) of a face track.

    ``face`` has 156 columns (FLAME: the head rotation is read from it), 153 (legacy FLAME,
    no head rotation) or 53 (tokenizer: expression + jaw); an ``UtteranceArrays`` is read
    whole. ``head_rotation`` (T, 3) overrides the face's own. Raises ``ValueError`` naming
    the accepted widths.
    """
    if isinstance(face, UtteranceArrays):
        if head_rotation is None:
            head_rotation = face.head_rotation
        face = face.face_full if face.face_full is not None else face.face
    face = np.asarray(face, dtype=np.float64)
    if face.ndim != 2 or face.shape[1] not in (schema.FACE_TOKEN_DIM, *schema.FACE_LAYOUTS):
        raise ValueError(
            f"a face track is (T, {schema.FACE_LAYOUT.length}), (T, {schema.FACE_LAYOUT_LEGACY.length}) "
            f"or (T, {schema.FACE_TOKEN_DIM}) (tokenizer: expression + jaw); got shape {face.shape}"
        )
    if len(face) == 0:
        raise ValueError("the face track has no frames")
    _check_finite(face, "the face track")
    if face.shape[1] == schema.FACE_TOKEN_DIM:
        expression, jaw, head = face[:, schema.FACE_TOKEN_EXPRESSION], face[:, schema.FACE_TOKEN_JAW], None
    else:
        layout = schema.face_layout_for(face.shape[1])
        expression, jaw = face[:, layout.expression], face[:, layout.jaw]
        head = face[:, layout.head_rotation] if layout.head_rotation is not None else None
    if head_rotation is not None:
        head = np.asarray(head_rotation, dtype=np.float64)
        if head.shape != (len(face), 3):
            raise ValueError(f"head_rotation must be ({len(face)}, 3) axis-angles; got {head.shape}")
        _check_finite(head, "head_rotation")
    return expression, jaw, head


def words_of(row: dict, utterance_id: int) -> dict:
    """The ``{"word", "start_time", "end_time"}`` dict of one utterance of a VENUS row."""
    conv = row[schema.CONVERSATION]
    ids = [int(i) for i in conv["utterance_id"]]
    if int(utterance_id) not in ids:
        raise ValueError(f"utterance {utterance_id} is not in this row's conversation (ids {ids[:10]}...)")
    return conv["words"][ids.index(int(utterance_id))]


def _check_words(words) -> dict | None:
    if words is None:
        return None
    try:
        w = {k: list(words[k]) for k in ("word", "start_time", "end_time")}
    except (KeyError, TypeError):
        raise ValueError('words must be a dict with lists "word", "start_time", "end_time" (seconds)') from None
    if not len(w["word"]) == len(w["start_time"]) == len(w["end_time"]):
        raise ValueError('words: "word", "start_time" and "end_time" must have the same length')
    return w


def word_at(words: dict, times) -> np.ndarray:
    """Index of the word being spoken at each time (seconds), -1 between words.

    A word covers ``[start_time, end_time)``; when two words overlap the later one wins.
    """
    t = np.asarray(times, dtype=np.float64)[..., None]
    starts = np.asarray(words["start_time"], dtype=np.float64)
    ends = np.asarray(words["end_time"], dtype=np.float64)
    inside = (starts <= t) & (t < ends)  # (..., n_words)
    last = inside.shape[-1] - 1 - np.argmax(inside[..., ::-1], axis=-1)
    return np.where(inside.any(axis=-1), last, -1)


def frame_times(n: int, fps: float = FPS, frames=None, start_time: float = 0.0) -> np.ndarray:
    """Time in seconds of each of ``n`` frames: ``frames / fps``, or ``start_time + arange(n) / fps``."""
    if fps <= 0:
        raise ValueError(f"fps must be positive; got {fps}")
    if frames is None:
        return start_time + np.arange(n) / fps
    f = np.asarray(frames, dtype=np.float64).reshape(-1)
    if len(f) != n:
        raise ValueError(f"frames has {len(f)} entries but the track has {n} frames")
    return f / fps


def decimate(n: int, max_frames: int | None = MAX_FRAMES) -> np.ndarray:
    """Indices of at most ``max_frames`` evenly spread frames out of ``n``; first and last kept."""
    if max_frames is None or n <= max_frames:
        return np.arange(n)
    if max_frames < 2:
        raise ValueError(f"max_frames must be at least 2; got {max_frames}")
    return np.unique(np.round(np.linspace(0, n - 1, max_frames)).astype(int))


def _times_for(n, fps, frames, words, tracks=()) -> np.ndarray:
    """Frame times: explicit ``frames``, else an UtteranceArrays' frames, else from the words."""
    if frames is None:
        frames = next((t.frames for t in tracks if isinstance(t, UtteranceArrays)), None)
    start = float(words["start_time"][0]) if frames is None and words and words["word"] else 0.0
    return frame_times(n, fps, frames, start)


# ---------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------
def to_scene(points: np.ndarray) -> np.ndarray:
    """SMPL coordinates (x left, y up, z forward) to plotly's z-up scene: (x, -z, y)."""
    p = np.asarray(points)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def bone_points(joints: np.ndarray) -> np.ndarray:
    """(T, 54 * 3, 3) points of all bones: parent, child, NaN, for each of the 54 bones.

    Drawn as one line, the NaN rows break it between bones, so one trace draws them all.
    """
    joints = np.asarray(joints, dtype=np.float64)
    gap = np.full(joints[:, BONE_CHILDREN].shape, np.nan)
    pts = np.stack([joints[:, BONE_PARENTS], joints[:, BONE_CHILDREN], gap], axis=2)
    return pts.reshape(len(joints), N_BONES * POINTS_PER_BONE, 3)


def _bone_colors() -> np.ndarray:
    """0 midline, 1 left, 2 right, per bone point (for a 3-colour line colorscale)."""
    side = [1 if n.startswith("left_") else 2 if n.startswith("right_") else 0 for n in schema.JOINT_NAMES]
    return np.repeat(np.array(side)[BONE_CHILDREN], POINTS_PER_BONE)


def head_centre(joints: np.ndarray) -> np.ndarray:
    """(T, 3) a point inside the head: halfway from the Head joint to between the eyes."""
    j = schema.JOINT_INDEX
    eyes = (joints[:, j["left_eye"]] + joints[:, j["right_eye"]]) / 2
    return (joints[:, j["head"]] + eyes) / 2


def _scene_box(all_joints: list[np.ndarray]) -> dict:
    """Fixed axis ranges (in scene coordinates) covering every frame, plus a seated-person box."""
    pts = np.concatenate([to_scene(j).reshape(-1, 3) for j in all_joints])
    lo = np.minimum(pts.min(axis=0), [-0.5, -0.6, -0.6]) - 0.05
    hi = np.maximum(pts.max(axis=0), [0.5, 0.2, 0.8]) + 0.05
    span = hi - lo
    ratio = span / span.max()
    return {"ranges": list(zip(lo.round(2).tolist(), hi.round(2).tolist())), "aspect": ratio}


def _scene_layout(box: dict) -> dict:
    axes = {}
    for name, title, (lo, hi) in zip(("xaxis", "yaxis", "zaxis"), ("left-right", "back-front", "up"), box["ranges"]):
        axes[name] = dict(range=[lo, hi], title=title, showticklabels=False, backgroundcolor="#f4f4f4")
    x, y, z = box["aspect"]
    return dict(
        **axes,
        aspectmode="manual",
        aspectratio=dict(x=x, y=y, z=z),
        camera=dict(eye=dict(x=0.3, y=-1.5, z=0.3), up=dict(x=0, y=0, z=1), center=dict(x=0, y=0, z=0)),
    )


# Schematic face, in head coordinates (x left, y up, z forward; 1 = half the head's width).
def _circle(cx, cy, r, z, n=12):
    a = np.linspace(0, 2 * np.pi, n)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a), np.full(n, z)], axis=1)


def _arc(cx, cy, r, z, a0, a1, n=8):
    a = np.linspace(a0, a1, n)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a), np.full(n, z)], axis=1)


_FACE_LINES = [  # drawn as one NaN-separated line; they turn with the head
    _circle(0.38, 0.25, 0.12, 0.88),  # left eye (the subject's left)
    _circle(-0.38, 0.25, 0.12, 0.88),  # right eye
    _arc(0.38, 0.3, 0.22, 0.86, 0.5, 2.6),  # brows
    _arc(-0.38, 0.3, 0.22, 0.86, 0.5, 2.6),
    np.array([[0.0, 0.2, 0.95], [0.0, -0.18, 1.2], [-0.1, -0.24, 1.02]]),  # nose
]
_MOUTH_X = np.linspace(-0.35, 0.35, 9)
_UPPER_LIP = np.stack([_MOUTH_X, -0.58 + 0.05 * np.cos(_MOUTH_X * np.pi / 0.7), np.full(len(_MOUTH_X), 0.86)], axis=1)
_LOWER_LIP = _UPPER_LIP[::-1] + [0.0, -0.02, 0.0]  # right to left, so the lips close a loop
_LIP_WEIGHT = np.sin(np.linspace(0, np.pi, len(_MOUTH_X)))  # corners stay, the middle follows the jaw
_JAW_PIVOT = np.array([0.0, -0.1, 0.0])
_OUTLINE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 40)), 1.3 * np.sin(np.linspace(0, 2 * np.pi, 40))], axis=1)


def _rotate(rotations: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations applied to (N, 3) or (T, N, 3) points: (T, N, 3)."""
    points = np.broadcast_to(points, (len(rotations),) + points.shape[-2:])
    return np.einsum("tij,tnj->tni", rotations, points)


def face_drawing(jaw: np.ndarray, head_rotation: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """2-D drawings of the schematic face at each frame, as seen from the front.

    Returns ``(lines (T, N, 2), mouth (T, M, 2))``: the outline, eyes, brows and nose as one
    NaN-separated line, and the mouth as a closed polygon. The head rotation turns the
    features and tilts the outline; the jaw's axis-angle swings the lower lip about a pivot
    near the ear, so the mouth opens as the jaw does.
    """
    n = len(jaw)
    head = np.zeros((n, 3)) if head_rotation is None else np.asarray(head_rotation, dtype=np.float64)
    r_head = kinematics.axis_angle_to_matrix(head)
    r_jaw = kinematics.axis_angle_to_matrix(np.asarray(jaw, dtype=np.float64))
    gap = np.full((1, 3), np.nan)
    features = np.concatenate([np.concatenate([part, gap]) for part in _FACE_LINES])
    turned = _rotate(r_head, features)[..., :2]  # front view: the viewer's right is +x
    roll = np.arctan2(-r_head[:, 0, 1], r_head[:, 1, 1])  # in-plane angle of the head's up axis
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    outline = np.stack([c * _OUTLINE[:, 0] - s * _OUTLINE[:, 1], s * _OUTLINE[:, 0] + c * _OUTLINE[:, 1]], axis=-1)
    lines = np.concatenate([outline, np.full((n, 1, 2), np.nan), turned], axis=1)
    opened = _rotate(r_jaw, _LOWER_LIP - _JAW_PIVOT) + _JAW_PIVOT  # (T, M, 3)
    lower = _LOWER_LIP + _LIP_WEIGHT[:, None] * (opened - _LOWER_LIP)
    lips = np.concatenate([np.broadcast_to(_UPPER_LIP, lower.shape), lower], axis=1)
    mouth = _rotate(r_head, lips)[..., :2]
    return lines, mouth


# ---------------------------------------------------------------------------------------
# Building blocks: each adds its traces and returns the per-frame updates of those traces
# ---------------------------------------------------------------------------------------
def _r(a: np.ndarray) -> np.ndarray:
    """Round to millimetres and store as float32 (compact in the figure's JSON)."""
    return np.round(a, DECIMALS).astype(np.float32)


def _add_skeleton(fig, joints, row, col, show_joints=False) -> dict[int, list[dict]]:
    """Bones (one trace), head and optional joint markers; returns {trace index: frame updates}."""
    bones = to_scene(bone_points(joints))
    head = to_scene(head_centre(joints))
    colorscale = [[0, MIDLINE_COLOR], [0.5, SIDE_COLORS["left"]], [1, SIDE_COLORS["right"]]]
    fig.add_trace(
        go.Scatter3d(
            x=_r(bones[0, :, 0]), y=_r(bones[0, :, 1]), z=_r(bones[0, :, 2]), mode="lines", name="bones",
            line=dict(width=6, color=_bone_colors(), colorscale=colorscale, cmin=0, cmax=2),
            hoverinfo="skip", showlegend=False,
        ), row=row, col=col,
    )  # fmt: skip
    updates = {len(fig.data) - 1: [dict(type="scatter3d", x=_r(b[:, 0]), y=_r(b[:, 1]), z=_r(b[:, 2])) for b in bones]}
    fig.add_trace(
        go.Scatter3d(
            x=_r(head[:1, 0]), y=_r(head[:1, 1]), z=_r(head[:1, 2]), mode="markers", name="head",
            marker=dict(size=16, color="#c9a27e", opacity=0.45), hoverinfo="skip", showlegend=False,
        ), row=row, col=col,
    )  # fmt: skip
    head = np.round(head, DECIMALS).tolist()  # one point: plain lists are cheaper than arrays here
    updates[len(fig.data) - 1] = [dict(type="scatter3d", x=[x], y=[y], z=[z]) for x, y, z in head]
    if show_joints:
        pts = to_scene(joints)
        fig.add_trace(
            go.Scatter3d(
                x=_r(pts[0, :, 0]), y=_r(pts[0, :, 1]), z=_r(pts[0, :, 2]), mode="markers", name="joints",
                marker=dict(size=2, color="black"), text=schema.JOINT_NAMES, hoverinfo="text", showlegend=False,
            ), row=row, col=col,
        )  # fmt: skip
        updates[len(fig.data) - 1] = [dict(type="scatter3d", x=_r(p[:, 0]), y=_r(p[:, 1]), z=_r(p[:, 2])) for p in pts]
    return updates


def _add_face(fig, jaw, head, row, col) -> dict[int, list[dict]]:
    """The schematic face (features line + filled mouth); returns the per-frame updates."""
    lines, mouth = face_drawing(jaw, head)
    fig.add_trace(
        go.Scatter(x=_r(lines[0, :, 0]), y=_r(lines[0, :, 1]), mode="lines", name="face",
                   line=dict(color="#333333", width=2), hoverinfo="skip", showlegend=False),
        row=row, col=col,
    )  # fmt: skip
    updates = {len(fig.data) - 1: [dict(type="scatter", x=_r(p[:, 0]), y=_r(p[:, 1])) for p in lines]}
    fig.add_trace(
        go.Scatter(x=_r(mouth[0, :, 0]), y=_r(mouth[0, :, 1]), mode="lines", fill="toself", name="mouth",
                   fillcolor="#8b1a1a", line=dict(color="#5a0f0f", width=1), hoverinfo="skip", showlegend=False),
        row=row, col=col,
    )  # fmt: skip
    updates[len(fig.data) - 1] = [dict(type="scatter", x=_r(p[:, 0]), y=_r(p[:, 1])) for p in mouth]
    ref = fig.get_subplot(row, col)
    x_name = ref.xaxis.plotly_name.replace("axis", "")
    fig.update_xaxes(range=[-1.7, 1.7], visible=False, row=row, col=col)
    fig.update_yaxes(range=[-1.6, 1.6], visible=False, scaleanchor=x_name, row=row, col=col)
    return updates


def _add_cursor(fig, times, y_range, row, col) -> dict[int, list[dict]]:
    """A vertical line at the current time; returns its per-frame updates."""
    fig.add_trace(
        go.Scatter(x=[times[0]] * 2, y=list(y_range), mode="lines", name="now", line=dict(color="black", width=2),
                   hoverinfo="skip", showlegend=False),
        row=row, col=col,
    )  # fmt: skip
    return {len(fig.data) - 1: [dict(type="scatter", x=[float(t), float(t)]) for t in times]}


WORD_ROWS = 3  # words are staggered over three rows so that neighbours do not overlap


def _add_words(fig, words, times, t_range, row, col, cursor=True) -> dict[int, list[dict]]:
    """All words on a timeline and the current word highlighted (a box behind it).

    The highlight is one trace per frame: the word's box as a filled polygon, a gap, then
    one point carrying the word in bold. ``cursor`` adds a vertical line at the current time.
    """
    n = len(words["word"])
    starts, ends = np.asarray(words["start_time"], float), np.asarray(words["end_time"], float)
    mids, levels = (starts + ends) / 2, np.arange(n) % WORD_ROWS
    fig.add_trace(
        go.Scatter(
            x=mids, y=levels, text=words["word"], mode="text", name="words", textfont=dict(color="#777777", size=11),
            customdata=np.stack([starts, ends], axis=1), showlegend=False,
            hovertemplate="%{text}<br>%{customdata[0]:.2f}-%{customdata[1]:.2f} s<extra></extra>",
        ), row=row, col=col,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=[], y=[], text=[], mode="lines+text", fill="toself", fillcolor=HIGHLIGHT, line=dict(width=0),
                   textfont=dict(color="black", size=13), texttemplate="<b>%{text}</b>", name="current word",
                   hoverinfo="skip", showlegend=False),
        row=row, col=col,
    )  # fmt: skip
    highlight = []
    for k in word_at(words, times):
        if k < 0:  # between words: nothing highlighted
            highlight.append(dict(type="scatter", x=[], y=[], text=[]))
            continue
        s, e, m, lo, hi = float(starts[k]), float(ends[k]), float(mids[k]), levels[k] - 0.45, levels[k] + 0.45
        highlight.append(dict(
            type="scatter", x=[s, e, e, s, s, None, m], y=[lo, lo, hi, hi, lo, None, float(levels[k])],
            text=["", "", "", "", "", "", words["word"][k]],
        ))  # fmt: skip
    updates = {len(fig.data) - 1: highlight}
    if cursor:
        updates.update(_add_cursor(fig, times, (-0.6, WORD_ROWS - 0.4), row, col))
    # With a strip below (no cursor here) the strip's axis carries the time labels.
    fig.update_xaxes(range=list(t_range), showticklabels=cursor, row=row, col=col)
    fig.update_yaxes(range=[WORD_ROWS - 0.4, -0.6], visible=False, row=row, col=col)
    return updates


def _add_note(fig, text, row, col) -> None:
    """A line of text in an otherwise empty panel (e.g. a transcript without word times)."""
    note = go.Scatter(x=[0.5], y=[0.5], text=[text], mode="text", hoverinfo="skip", showlegend=False)
    fig.add_trace(note, row=row, col=col)
    fig.update_xaxes(range=[0, 1], visible=False, row=row, col=col)
    fig.update_yaxes(range=[0, 1], visible=False, row=row, col=col)


def _add_strip(fig, expression, times, t_range, row, col) -> dict[int, list[dict]]:
    """Heat strip of the expression coefficients (static) with a moving time cursor."""
    ref = fig.get_subplot(row, col)
    domain = ref.yaxis.domain
    heat = expression_heatmap(times, expression)
    heat.colorbar = dict(len=domain[1] - domain[0], y=(domain[0] + domain[1]) / 2, thickness=10, title="coef")
    fig.add_trace(heat, row=row, col=col)
    updates = _add_cursor(fig, times, (-0.5, expression.shape[1] - 0.5), row, col)
    fig.update_xaxes(range=list(t_range), title="seconds from the segment start", row=row, col=col)
    fig.update_yaxes(title="expression", range=[-0.5, expression.shape[1] - 0.5], row=row, col=col)
    return updates


def _t_range(times, words) -> tuple[float, float]:
    lo, hi = float(times[0]), float(times[-1])
    if words and words["word"]:
        lo, hi = min(lo, float(words["start_time"][0])), max(hi, float(words["end_time"][-1]))
    pad = 0.02 * max(hi - lo, 0.1)
    return lo - pad, hi + pad


def _animate(fig: go.Figure, updates: dict[int, list[dict]], times: np.ndarray, fps: float) -> go.Figure:
    """Attach the frames (one per entry of ``times``), a slider and play/pause buttons."""
    traces = sorted(updates)
    # Plain dicts: plotly validates each frame once, when they are attached to the figure.
    fig.frames = [dict(name=str(k), data=[updates[i][k] for i in traces], traces=traces) for k in range(len(times))]
    step_ms = 1000.0 / fps if len(times) < 2 else 1000.0 * (times[-1] - times[0]) / (len(times) - 1)
    no_transition = dict(transition=dict(duration=0), mode="immediate")
    play = dict(frame=dict(duration=max(step_ms, 1.0), redraw=True), fromcurrent=True, **no_transition)
    pause = dict(frame=dict(duration=0, redraw=False), **no_transition)
    jump = dict(frame=dict(duration=0, redraw=True), **no_transition)  # 3-D scenes need redraw=True
    fig.update_layout(
        template="plotly_white",
        updatemenus=[dict(
            type="buttons", direction="left", x=0.0, y=0, xanchor="left", yanchor="top", pad=dict(t=40, r=10),
            showactive=False,
            buttons=[dict(label="▶ play", method="animate", args=[None, play]),
                     dict(label="❚❚ pause", method="animate", args=[[None], pause])],
        )],
        sliders=[dict(
            active=0, x=0.16, len=0.84, y=0, yanchor="top", pad=dict(t=30, b=10),
            currentvalue=dict(prefix="t = ", suffix=" s", visible=True),
            steps=[dict(method="animate", label=f"{t:.2f}", args=[[str(k)], jump]) for k, t in enumerate(times)],
        )],
    )  # fmt: skip
    return fig


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------
def skeleton_figure(
    track,
    fps: float = FPS,
    words: dict | None = None,
    title: str = "Skeleton",
    frames=None,
    max_frames: int | None = MAX_FRAMES,
    show_joints: bool = False,
    height: int = 600,
) -> go.Figure:
    """An animated 3-D stick figure (body and hands) of one track, with play and a slider.

    ``track`` is a body array (T, 179) or (T, 117), joints (T, 55, 3) or an UtteranceArrays.
    ``words`` (``{"word", "start_time", "end_time"}``, seconds) adds a word timeline whose
    current word is highlighted in step with the frames. Time: ``frames`` (frame indices at
    ``fps``), else the UtteranceArrays' frames, else the first word's start (or 0) plus
    ``arange(T) / fps``. At most ``max_frames`` animation frames (None: all).
    """
    return side_by_side({title: track}, words=words, fps=fps, frames=frames, max_frames=max_frames,
                        title=None, show_joints=show_joints, height=height)  # fmt: skip


def side_by_side(
    tracks: dict,
    words: dict | None = None,
    fps: float = FPS,
    frames=None,
    max_frames: int | None = MAX_FRAMES,
    title: str | None = None,
    show_joints: bool = False,
    height: int = 600,
) -> go.Figure:
    """One to four tracks of the same utterance as 3-D skeletons sharing one slider.

    ``tracks`` maps a label (``"ground truth"``, ``"reconstruction"``, ``"generated"``) to a
    track (see :func:`skeleton_figure`); all tracks must have the same number of frames.
    Every scene has the same axis ranges and camera, so sizes and motions compare directly.
    """
    if not isinstance(tracks, dict) or not 1 <= len(tracks) <= 4:
        raise ValueError("tracks must be a dict of 1 to 4 {label: track} entries")
    words = _check_words(words)
    joints = {name: joints_of(track, f"track {name!r}") for name, track in tracks.items()}
    lengths = {name: len(j) for name, j in joints.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"tracks must have the same number of frames; got {lengths}")
    n = next(iter(lengths.values()))
    keep = decimate(n, max_frames)
    times = _times_for(n, fps, frames, words, tracks.values())[keep]
    joints = {name: j[keep] for name, j in joints.items()}

    cols = len(joints)
    specs = [[{"type": "scene"}] * cols]
    row_heights = None
    if words:
        specs.append([{"type": "xy", "colspan": cols}] + [None] * (cols - 1))
        row_heights = [0.8, 0.2]
    titles = list(joints) if cols > 1 else [title or next(iter(joints))]
    fig = make_subplots(rows=len(specs), cols=cols, specs=specs, row_heights=row_heights,
                        subplot_titles=titles, vertical_spacing=0.05, horizontal_spacing=0.01)  # fmt: skip
    updates: dict[int, list[dict]] = {}
    box = _scene_layout(_scene_box(list(joints.values())))
    for c, j in enumerate(joints.values(), start=1):
        updates.update(_add_skeleton(fig, j, row=1, col=c, show_joints=show_joints))
        fig.update_scenes(box, row=1, col=c)
    if words:
        updates.update(_add_words(fig, words, times, _t_range(times, words), row=2, col=1))
    fig.update_layout(title=title if cols > 1 else None, height=height, margin=dict(l=10, r=10, t=50, b=90))
    return _animate(fig, updates, times, fps)


def face_figure(
    face,
    head_rotation=None,
    fps: float = FPS,
    words: dict | None = None,
    title: str = "Face",
    frames=None,
    max_frames: int | None = MAX_FRAMES,
    height: int = 600,
) -> go.Figure:
    """An animated schematic face over a heat strip of the 50 expression coefficients.

    ``face`` is a face track of 156, 153 or 53 columns, or an UtteranceArrays. The mouth
    opens with the jaw; the head turns, nods and tilts with the head rotation (from the
    156-column layout, the UtteranceArrays, or ``head_rotation``; a 153- or 53-column track
    without it stays upright). The strip shows the coefficients over time (rows =
    coefficients, red positive, blue negative) and a cursor at the current frame; ``words``
    adds the word timeline.
    """
    words = _check_words(words)
    expression, jaw, head = face_parts(face, head_rotation)
    n = len(jaw)
    keep = decimate(n, max_frames)
    times = _times_for(n, fps, frames, words, [face])[keep]
    t_range = _t_range(times, words)
    rows = [0.55, 0.15, 0.3] if words else [0.62, 0.38]
    fig = make_subplots(rows=len(rows), cols=1, row_heights=rows, vertical_spacing=0.04)
    updates = _add_face(fig, jaw[keep], None if head is None else head[keep], row=1, col=1)
    if words:
        updates.update(_add_words(fig, words, times, t_range, row=2, col=1, cursor=False))
    updates.update(_add_strip(fig, expression[keep], times, t_range, row=len(rows), col=1))
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=90))
    return _animate(fig, updates, times, fps)


def utterance_figure(
    utt,
    utterance_id: int | None = None,
    words: dict | None = None,
    fps: float = FPS,
    max_frames: int | None = MAX_FRAMES,
    title: str | None = None,
    show_joints: bool = False,
    height: int = 800,
) -> go.Figure:
    """One utterance at a glance: 3-D skeleton, face, words and expression strip, one slider.

    ``utt`` is an ``UtteranceArrays`` (best from ``segment_utterances(row, full=True)``), or
    a VENUS row together with ``utterance_id`` (the words then come from the row). Without
    ``words`` the transcript is shown instead of the word timeline.
    """
    if not isinstance(utt, UtteranceArrays):
        if utterance_id is None:
            raise ValueError("pass an UtteranceArrays, or a VENUS row and utterance_id=")
        row = utt
        found = [u for u in segment_utterances(row, full=True) if u.utterance_id == int(utterance_id)]
        if not found or found[0].n_frames == 0:
            raise ValueError(f"utterance {utterance_id} has no frames in this row")
        utt = found[0]
        words = words if words is not None else words_of(row, utterance_id)
    words = _check_words(words)
    joints = joints_of(utt, f"utterance {utt.utterance_id}")
    expression, jaw, head = face_parts(utt)
    keep = decimate(len(joints), max_frames)
    times = frame_times(len(joints), fps, utt.frames)[keep]
    t_range = _t_range(times, words)

    fig = make_subplots(
        rows=3, cols=2, column_widths=[0.6, 0.4], row_heights=[0.58, 0.14, 0.28],
        specs=[[{"type": "scene"}, {"type": "xy"}],
               [{"type": "xy", "colspan": 2}, None],
               [{"type": "xy", "colspan": 2}, None]],
        vertical_spacing=0.05, horizontal_spacing=0.02,
    )  # fmt: skip
    updates = _add_skeleton(fig, joints[keep], row=1, col=1, show_joints=show_joints)
    fig.update_scenes(_scene_layout(_scene_box([joints[keep]])), row=1, col=1)
    updates.update(_add_face(fig, jaw[keep], None if head is None else head[keep], row=1, col=2))
    if words:  # the strip below carries the time cursor
        updates.update(_add_words(fig, words, times, t_range, row=2, col=1, cursor=False))
    else:
        _add_note(fig, (utt.text or "(no transcript)")[:140], row=2, col=1)
    updates.update(_add_strip(fig, expression[keep], times, t_range, row=3, col=1))
    if title is None:
        who = f"speaker {utt.speaker}" if utt.speaker is not None else "unknown speaker"
        text = (utt.text or "")[:70] + ("..." if utt.text and len(utt.text) > 70 else "")
        title = f"Utterance {utt.utterance_id} ({who}): “{text}”"
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=90))
    return _animate(fig, updates, times, fps)


# ---------------------------------------------------------------------------------------
# Export and the matplotlib fallback
# ---------------------------------------------------------------------------------------
def save_html(fig: go.Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a standalone HTML file (plotly.js inlined, works offline).

    Missing folders are created. The file is written to a temporary name in the same
    folder, then renamed, so a reader never sees half a file. The animation does not start
    by itself. Returns the path.
    """
    return atomic_write_text(path, fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False))


def matplotlib_animation(
    track,
    fps: float = FPS,
    words: dict | None = None,
    title: str = "",
    frames=None,
    max_frames: int | None = 75,
    size: float = 4.0,
):
    """A ``matplotlib.animation.FuncAnimation`` of the 3-D skeleton (the fallback view).

    Same inputs as :func:`skeleton_figure`; the time and the current word are written under
    the figure. Uses matplotlib's object API with the Agg canvas (no pyplot: no window, no
    global figure to close). Rendering costs about 0.05-0.1 s per frame, hence the smaller
    default ``max_frames``. In a notebook: ``IPython.display.HTML(to_jshtml(anim))``.
    """
    from matplotlib.animation import FuncAnimation
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    words = _check_words(words)
    joints = joints_of(track)
    keep = decimate(len(joints), max_frames)
    times = _times_for(len(joints), fps, frames, words, [track])[keep]
    bones = to_scene(bone_points(joints[keep]))
    head = to_scene(head_centre(joints[keep]))
    current = word_at(words, times) if words else np.full(len(times), -1)
    box = _scene_box([joints[keep]])

    fig = Figure(figsize=(size, size * 1.1), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="3d")
    for (lo, hi), set_lim in zip(box["ranges"], (ax.set_xlim, ax.set_ylim, ax.set_zlim)):
        set_lim(lo, hi)
    ax.set_box_aspect(box["aspect"])
    ax.view_init(elev=10, azim=-80)  # in front of the person, slightly to the side
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_ticklabels([])
    # One line per colour (midline, left, right): the bone points of that side, NaN-separated.
    sides = _bone_colors()
    colors = (MIDLINE_COLOR, SIDE_COLORS["left"], SIDE_COLORS["right"])
    lines = [ax.plot(*bones[0, sides == s].T, color=c, lw=2)[0] for s, c in enumerate(colors)]
    (dot,) = ax.plot(*head[:1].T, "o", ms=14, color="#c9a27e", alpha=0.5)
    label = fig.text(0.5, 0.04, "", ha="center", fontsize=12)
    if title:
        fig.suptitle(title)

    def draw(k):
        for s, line in enumerate(lines):
            line.set_data_3d(*bones[k, sides == s].T)
        dot.set_data_3d(*head[k : k + 1].T)
        word = words["word"][current[k]] if current[k] >= 0 else ""
        label.set_text(f"t = {times[k]:.2f} s   {word}")
        return (*lines, dot, label)

    interval = 1000.0 / fps if len(times) < 2 else 1000.0 * (times[-1] - times[0]) / (len(times) - 1)
    return FuncAnimation(fig, draw, frames=len(times), interval=interval, blit=False)


def to_jshtml(anim_or_track, **kwargs) -> str:
    """The HTML (with embedded frames and a player) of a matplotlib animation.

    Pass a ``FuncAnimation``, or a track plus :func:`matplotlib_animation`'s keywords.
    """
    from matplotlib.animation import Animation

    anim = anim_or_track if isinstance(anim_or_track, Animation) else matplotlib_animation(anim_or_track, **kwargs)
    return anim.to_jshtml()
