"""The VENUS data contract as code.

Every index range, column name and constant that describes one row of the released VENUS
data lives here (source: Kim, Chung et al., ACL 2025, and the authors' released code; see
``data_cards/venus.md``). Nothing else in the project hard-codes a slice of a feature
vector: import it from this module.

One row is one ten-minute segment ("dialogue") of a two-person podcast:

- ``conversation``: the utterances (speaker 0/1, text, start/end seconds) with word times;
- ``facial_expression``: one entry per video frame of the active speaker, 156 FLAME
  floats (EMOCA-v2), tagged with the utterance id and a frame string ``"<index>_..."``;
- ``body_language``: the same for 179 SMPL-X floats (OSX);
- ``harmful_utterance_id``: ids removed from the conversation by the safety filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets

# ---------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------
FPS = 25  # frames per second of every VENUS feature track
FRAMES_PER_TOKEN = 8  # MARS VQ-VAEs downsample time by 2**3: one token = 8 frames = 0.32 s
WINDOW_FRAMES = 512  # MARS pads/truncates every utterance to 512 frames (20.48 s)
SEGMENT_SECONDS = 600  # one VENUS row is a 600 s cut of a video

# Savitzky-Golay smoothing applied by MARS before tokenizing (window 5, polynomial order 2).
SAVGOL_WINDOW = 5
SAVGOL_POLYORDER = 2


def savgol_window_for(n_frames: int) -> int:
    """Savitzky-Golay window the paper's rule gives an utterance of ``n_frames`` frames.

    The window is 5; shorter utterances get the largest odd window that fits (3 for 3 or 4
    frames); an utterance of fewer than 3 frames is not smoothed (returns 0).
    """
    if n_frames < SAVGOL_POLYORDER + 1:
        return 0
    window = min(SAVGOL_WINDOW, n_frames)
    return window if window % 2 == 1 else window - 1


# ---------------------------------------------------------------------------------------
# Per-frame layouts (index ranges, end exclusive)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceLayout:
    """Where each FLAME quantity sits in one face feature vector (EMOCA-v2 output)."""

    name: str
    length: int
    expression: slice
    head_rotation: slice | None  # axis-angle; the legacy 153 layout has none
    jaw: slice
    shape: slice

    def tokenizer_columns(self) -> list[int]:
        """Column indices of the 53 tokenizer inputs: 50 expression + 3 jaw."""
        return list(range(self.expression.start, self.expression.stop)) + list(
            range(self.jaw.start, self.jaw.stop)
        )


FACE_LAYOUT = FaceLayout(
    name="flame156",
    length=156,
    expression=slice(0, 50),
    head_rotation=slice(50, 53),
    jaw=slice(53, 56),
    shape=slice(56, 156),
)
FACE_LAYOUT_LEGACY = FaceLayout(
    name="flame153",
    length=153,
    expression=slice(0, 50),
    head_rotation=None,
    jaw=slice(50, 53),
    shape=slice(53, 153),
)
FACE_LAYOUTS = {FACE_LAYOUT.length: FACE_LAYOUT, FACE_LAYOUT_LEGACY.length: FACE_LAYOUT_LEGACY}
FACE_DIM = FACE_LAYOUT.length
N_EXPRESSION = 50


def face_layout_for(length: int) -> FaceLayout:
    """Return the face layout of a feature vector of ``length`` floats (156 or 153).

    Raises ``ValueError`` naming the accepted lengths for anything else.
    """
    try:
        return FACE_LAYOUTS[int(length)]
    except KeyError:
        raise ValueError(
            f"a face feature vector has {sorted(FACE_LAYOUTS)} floats "
            f"(FLAME 156, or the legacy 153 without head rotation); got {length}"
        ) from None


# Body: SMPL-X parameters from OSX, all rotations axis-angle.
BODY_DIM = 179
BODY_ROOT = slice(0, 3)  # global orientation; constant in VENUS, carries nothing
BODY_JOINTS = slice(3, 66)  # 21 body joints (SMPL-X joints 1..21), 3 floats each
BODY_LEFT_HAND = slice(66, 111)  # 15 joints
BODY_RIGHT_HAND = slice(111, 156)  # 15 joints
BODY_JAW = slice(156, 159)
BODY_BETAS = slice(159, 169)
BODY_EXPRESSION = slice(169, 179)

# Tokenizer inputs (what MARS's VQ-VAEs see).
FACE_TOKEN_COLUMNS = FACE_LAYOUT.tokenizer_columns()  # 53 = expression 50 + jaw 3
FACE_TOKEN_DIM = len(FACE_TOKEN_COLUMNS)
BODY_TOKEN_SLICE = slice(39, 156)  # 9 upper-body joints (L_Collar..R_Wrist) + both hands
BODY_TOKEN_DIM = BODY_TOKEN_SLICE.stop - BODY_TOKEN_SLICE.start  # 117
# Groups inside the 117 tokenizer columns (used by the losses and metrics).
BODY_TOKEN_UPPER = slice(0, 27)
BODY_TOKEN_LEFT_HAND = slice(27, 72)
BODY_TOKEN_RIGHT_HAND = slice(72, 117)
FACE_TOKEN_EXPRESSION = slice(0, 50)
FACE_TOKEN_JAW = slice(50, 53)

# ---------------------------------------------------------------------------------------
# The SMPL-X skeleton topology (joint names and parents are facts of the model's design)
# ---------------------------------------------------------------------------------------
_BODY_JOINT_NAMES = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
]  # fmt: skip
_FACE_JOINT_NAMES = ["jaw", "left_eye", "right_eye"]
FINGERS = ["index", "middle", "pinky", "ring", "thumb"]  # SMPL-X hand joint order
_HAND_JOINT_NAMES = [f"{finger}{k}" for finger in FINGERS for k in (1, 2, 3)]
JOINT_NAMES: list[str] = (
    _BODY_JOINT_NAMES
    + _FACE_JOINT_NAMES
    + [f"left_{n}" for n in _HAND_JOINT_NAMES]
    + [f"right_{n}" for n in _HAND_JOINT_NAMES]
)
N_JOINTS = len(JOINT_NAMES)  # 55
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}


def _parents() -> list[int]:
    body = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
    face = [15, 15, 15]  # jaw and both eyes hang from the head
    hands = []
    for wrist in (JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]):
        start = len(body) + len(face) + len(hands)
        for f in range(len(FINGERS)):
            first = start + 3 * f
            hands += [wrist, first, first + 1]  # knuckle -> wrist, then a chain of three
    return body + face + hands


JOINT_PARENTS: list[int] = _parents()

# The 21 body joints stored at BODY_JOINTS are SMPL-X joints 1..21, in this order.
BODY_JOINT_ORDER = _BODY_JOINT_NAMES[1:]
# Nested subsets of the SMPL-X topology: SMPL-H = body + hands, SMPL = body only
# (SMPL's own two hand joints are the SMPL-H/X wrists' children and are not modelled here).
SMPLH_JOINTS = [i for i, n in enumerate(JOINT_NAMES) if n not in _FACE_JOINT_NAMES]
SMPL_BODY_JOINTS = list(range(len(_BODY_JOINT_NAMES)))


def body_joint_slice(name: str) -> slice:
    """Slice of a 179-float body vector holding the axis-angle of body joint ``name``.

    Works for the 21 body joints (``"head"``, ``"right_elbow"``, ...) and the 30 finger
    joints (``"left_index1"``, ...).
    """
    if name in BODY_JOINT_ORDER:
        start = BODY_JOINTS.start + 3 * BODY_JOINT_ORDER.index(name)
    elif name.startswith(("left_", "right_")) and name.split("_", 1)[1] in _HAND_JOINT_NAMES:
        side, joint = name.split("_", 1)
        base = BODY_LEFT_HAND.start if side == "left" else BODY_RIGHT_HAND.start
        start = base + 3 * _HAND_JOINT_NAMES.index(joint)
    else:
        raise KeyError(f"{name!r} is not a body or hand joint stored in the 179-float vector")
    return slice(start, start + 3)


def token_joint_slice(name: str) -> slice:
    """Slice of a 117-float body *tokenizer* vector holding the axis-angle of ``name``."""
    s = body_joint_slice(name)
    if s.start < BODY_TOKEN_SLICE.start:
        raise KeyError(f"{name!r} is not among the tokenized upper-body and hand joints")
    return slice(s.start - BODY_TOKEN_SLICE.start, s.stop - BODY_TOKEN_SLICE.start)


# ---------------------------------------------------------------------------------------
# Columns and datasets Features
# ---------------------------------------------------------------------------------------
CONVERSATION = "conversation"
FACE = "facial_expression"
BODY = "body_language"
HARMFUL = "harmful_utterance_id"

# Columns the project reads; a source missing one of them cannot be used.
REQUIRED_COLUMNS = ["video_id", "segment_id", CONVERSATION, FACE, BODY, HARMFUL]
# Columns the synthetic data also carries. The real data's names for these are
# unverified; when a source has other extra columns they are kept as they are.
OPTIONAL_COLUMNS = ["channel_id", "title", "duration", "fps"]

WORDS_FEATURE = datasets.Sequence(
    {
        "word": datasets.Value("string"),
        "start_time": datasets.Value("float64"),
        "end_time": datasets.Value("float64"),
    }
)
CONVERSATION_FEATURE = datasets.Sequence(
    {
        "utterance_id": datasets.Value("int64"),
        "speaker": datasets.Value("int64"),
        "text": datasets.Value("string"),
        "start_time": datasets.Value("float64"),
        "end_time": datasets.Value("float64"),
        "words": WORDS_FEATURE,
    }
)
# utt_id and frame are strings: the released code reads them with int(utt_id) and
# int(frame.split('_')[0]), and real rows store ids both as strings and as integers.
FRAMES_FEATURE = datasets.Sequence(
    {
        "utt_id": datasets.Value("string"),
        "frame": datasets.Value("string"),
        "features": datasets.Sequence(datasets.Value("float32")),
    }
)

REQUIRED_FEATURES = datasets.Features(
    {
        "video_id": datasets.Value("string"),
        "segment_id": datasets.Value("int64"),
        CONVERSATION: CONVERSATION_FEATURE,
        FACE: FRAMES_FEATURE,
        BODY: FRAMES_FEATURE,
        HARMFUL: datasets.Sequence(datasets.Value("int64")),
    }
)
OPTIONAL_FEATURES = datasets.Features(
    {
        "channel_id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "duration": datasets.Value("string"),
        "fps": datasets.Value("int64"),
    }
)
# The Features of a synthetic row, and of any loaded row that has all optional columns.
VENUS_FEATURES = datasets.Features({**REQUIRED_FEATURES, **OPTIONAL_FEATURES})

SPLITS = ("train", "test")
HUB_DATASETS = ("winston1214/VENUS-1K", "winston1214/VENUS-5K", "winston1214/VENUS-10K")


def parse_frame_index(frame: str | int) -> int:
    """Frame index of one ``frame`` field: the first ``_``-separated field, as an int.

    Mirrors the released code's ``int(frame.split('_')[0])``; raises ``ValueError`` with the
    offending value when it is not of that form.
    """
    if isinstance(frame, (int,)) and not isinstance(frame, bool):
        return int(frame)
    head = str(frame).split("_")[0]
    try:
        return int(head)
    except ValueError:
        raise ValueError(
            f"frame {frame!r} does not start with an integer frame index ('<index>_...')"
        ) from None


def format_duration(start_s: float, end_s: float) -> str:
    """Format a segment's place in its video as VENUS does: ``"01:01:00 ~ 01:11:00"``."""

    def hms(t: float) -> str:
        t = int(round(t))
        return f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"

    return f"{hms(start_s)} ~ {hms(end_s)}"
