"""Optional real body and face models: SMPL-X (tier 2) and FLAME (tier 3) through ``smplx``.

The package always works with its own licence-free skeleton (``kinematics``). A user who
has registered for the SMPL-X or FLAME model and downloaded its files can get real joints
and meshes for the same VENUS tracks here:

    body = SmplxBody("~/models")              # or set VENUS_MARS_SMPLX_DIR
    joints = body.joints(utt.body_full, utt.face_full)     # (T, 55, 3), like our skeleton
    verts = body.vertices(utt.body_full, utt.face_full)    # (T, 10475, 3); triangles: body.faces

Nothing licensed ships with venus-mars and nothing is downloaded: the model files may not
be redistributed (register at https://smpl-x.is.tue.mpg.de for SMPL-X and at
https://flame.is.tue.mpg.de for FLAME). The ``smplx`` package is an optional extra
(``pip install "venus-mars[smplx]"``) imported only inside functions; its code is under a
non-commercial licence, and none of it is copied here.

Before ``smplx`` is called, :func:`check_model_folder` inspects the folder and says exactly
which file is missing and what layout is expected; left to itself, ``smplx`` reports a
missing file as a bare ``AssertionError: Path ... does not exist!`` and a wrong model type
as ``ValueError: Unknown model type ...``.

Pickle. The model files come as ``.npz`` (numpy) or ``.pkl`` (Python pickle, which can run
code when loaded). venus-mars never unpickles anything. ``.npz`` is preferred; if an
``.npz`` holds pickled entries (object arrays), ``smplx`` (which loads with
``allow_pickle=True``) is given a numeric-only copy instead. A ``.pkl`` model, and FLAME's
landmark embedding (always a ``.pkl``), are unpickled *by smplx*, so they are used only when
the caller passes ``allow_pkl=True``: they are the user's own licensed files, as
trustworthy as the place they were downloaded from.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import schema

SMPLX_URL = "https://smpl-x.is.tue.mpg.de"
FLAME_URL = "https://flame.is.tue.mpg.de"
INSTALL_HINT = 'pip install "venus-mars[smplx]"'
ENV_VARS = {"smplx": "VENUS_MARS_SMPLX_DIR", "flame": "VENUS_MARS_FLAME_DIR"}
GENDERS = ("neutral", "male", "female")

# What smplx reads from a model file (facts of the file format, listed by us).
SMPLX_REQUIRED_KEYS = (
    "v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
    "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
    "lmk_faces_idx", "lmk_bary_coords",
)  # fmt: skip
SMPLX_CONTOUR_KEYS = ("dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")
FLAME_REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
FLAME_EMBEDDING = "flame_static_embedding.pkl"
FLAME_CONTOUR_EMBEDDING = "flame_dynamic_embedding.npy"


class BodyModelError(RuntimeError):
    """A body or face model cannot be used; the message says why and what to do."""


# ---------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------
def _file_name(model_type: str, gender: str, ext: str) -> str:
    prefix = "SMPLX" if model_type == "smplx" else "FLAME"
    return f"{prefix}_{gender.upper()}.{ext}"


def expected_layout(model_type: str = "smplx") -> str:
    """The folder layout smplx expects for ``model_type`` ("smplx" or "flame"), as text."""
    if model_type == "smplx":
        return (
            "Expected layout (what the smplx package looks for):\n"
            "  <folder>/smplx/SMPLX_NEUTRAL.npz   preferred (numpy); SMPLX_MALE.npz, SMPLX_FEMALE.npz for\n"
            "                                     gender='male'/'female'\n"
            "  <folder>/smplx/SMPLX_NEUTRAL.pkl   also accepted with allow_pkl=True (smplx unpickles it)\n"
            "<folder> may also be the smplx/ subfolder itself, or the path of one model file.\n"
            f"Download the SMPL-X model files after registering at {SMPLX_URL} (file names are\n"
            "upper case exactly as above)."
        )
    return (
        "Expected layout (what the smplx package looks for):\n"
        "  <folder>/flame/FLAME_NEUTRAL.pkl            FLAME 2020's generic_model.pkl, renamed\n"
        "                                              (FLAME_MALE.pkl / FLAME_FEMALE.pkl from\n"
        "                                              male_model.pkl / female_model.pkl); .npz also read\n"
        f"  <folder>/flame/{FLAME_EMBEDDING}   the landmark embedding smplx needs\n"
        f"  <folder>/flame/{FLAME_CONTOUR_EMBEDDING}   only for use_face_contour=True\n"
        "<folder> may also be the flame/ subfolder itself.\n"
        f"Download FLAME after registering at {FLAME_URL}. smplx unpickles the .pkl files, so\n"
        "FlameFace needs allow_pkl=True."
    )


def _raw_errors_note() -> str:
    return (
        "(smplx itself would only say 'AssertionError: Path ... does not exist!' or "
        "'Unknown model type ...'.)"
    )


def require_smplx():
    """Import and return the optional ``smplx`` package, or raise :class:`BodyModelError`."""
    try:
        import smplx  # optional dependency: never imported at module level
    except ImportError as err:
        raise BodyModelError(
            f"the optional package 'smplx' is not installed ({err}). Install it with\n"
            f"  {INSTALL_HINT}\n"
            "(or: pip install smplx). venus-mars works without it, using its own skeleton; smplx "
            "is only needed for real SMPL-X/FLAME joints and meshes, and it also needs the model "
            f"files, which you download yourself after registering ({SMPLX_URL}, {FLAME_URL})."
        ) from None
    return smplx


# ---------------------------------------------------------------------------------------
# Finding and checking the model folder
# ---------------------------------------------------------------------------------------
def _check_type(model_type: str) -> str:
    model_type = str(model_type).lower()
    if model_type not in ENV_VARS:
        raise BodyModelError(f"model_type must be one of {sorted(ENV_VARS)}; got {model_type!r}")
    return model_type


def find_model_folder(path: str | os.PathLike | None = None, model_type: str = "smplx") -> Path:
    """The folder (or file) holding the user's model files: ``path`` or the environment.

    Without ``path``, reads ``VENUS_MARS_SMPLX_DIR`` (``model_type="smplx"``) or
    ``VENUS_MARS_FLAME_DIR`` (``"flame"``). Raises :class:`BodyModelError` saying where to
    register and which layout is expected when neither is set or the path does not exist.
    The contents are checked by :func:`check_model_folder`.
    """
    model_type = _check_type(model_type)
    env = ENV_VARS[model_type]
    name = "SMPL-X" if model_type == "smplx" else "FLAME"
    if path is None:
        path = os.environ.get(env) or None
        if path is None:
            raise BodyModelError(
                f"no {name} model folder given: pass its path, or set the environment variable "
                f"{env}=/path/to/models. venus-mars cannot ship the {name} files (their licence "
                f"forbids it).\n{expected_layout(model_type)}"
            )
        source = f"{env}={path!r}"
    else:
        source = repr(str(path))
    folder = Path(path).expanduser()
    if not folder.exists():
        raise BodyModelError(f"the {name} model path {source} does not exist.\n{expected_layout(model_type)}")
    return folder


@dataclass(frozen=True)
class ModelFiles:
    """What :func:`check_model_folder` found: the files smplx will be given."""

    model_type: str  # "smplx" or "flame"
    gender: str
    folder: Path  # the folder that directly holds the model file
    model_file: Path
    ext: str  # "npz" or "pkl"
    extra_files: dict = field(default_factory=dict)  # e.g. {"landmark_embedding": Path}
    pickled_keys: tuple = ()  # entries of the .npz stored as pickled objects
    needs_pickle: bool = False  # True when smplx must unpickle a file to load these
    notes: tuple = ()


def _npz_headers(path: Path) -> dict[str, tuple[tuple, np.dtype]]:
    """Shape and dtype of every array in an .npz, read from the headers only (no data, no pickle)."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if not member.endswith(".npy"):
                    continue
                with zf.open(member) as fp:
                    version = np.lib.format.read_magic(fp)
                    fmt = np.lib.format
                    reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                    shape, _, dtype = reader(fp)
                out[member[: -len(".npy")]] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise BodyModelError(f"{path} is not a readable .npz (numpy zip) file: {err}") from None
    return out


def _check_npz(path: Path, model_type: str, use_face_contour: bool) -> tuple[tuple, tuple]:
    """Check an .npz model's keys and shapes; return (pickled keys, notes)."""
    headers = _npz_headers(path)
    required = SMPLX_REQUIRED_KEYS if model_type == "smplx" else FLAME_REQUIRED_KEYS
    if model_type == "smplx" and use_face_contour:
        required = required + SMPLX_CONTOUR_KEYS
    missing = [k for k in required if k not in headers]
    name = "SMPL-X" if model_type == "smplx" else "FLAME"
    if missing:
        raise BodyModelError(
            f"{path} is not a usable {name} model file: it lacks the entries {missing} that smplx reads "
            f"(it has {sorted(headers)[:12]}{' ...' if len(headers) > 12 else ''}). Use the model file "
            f"from {SMPLX_URL if model_type == 'smplx' else FLAME_URL}.\n{expected_layout(model_type)}"
        )
    pickled = tuple(sorted(k for k, (_, dtype) in headers.items() if dtype.hasobject))
    bad = [k for k in required if k in pickled]
    if bad:
        raise BodyModelError(f"{path}: the entries {bad} are pickled Python objects, not numeric arrays")
    v = headers["v_template"][0]
    if len(v) != 2 or v[1] != 3:
        raise BodyModelError(f"{path}: v_template has shape {v}; expected (vertices, 3)")
    n_vertices = v[0]
    for key in ("shapedirs", "posedirs", "weights"):
        if headers[key][0][:1] != (n_vertices,):
            raise BodyModelError(
                f"{path}: {key} has shape {headers[key][0]} but v_template has {n_vertices} vertices; "
                "the file is damaged or mixes two models"
            )
    notes = []
    if model_type == "smplx" and n_vertices == 6890:
        raise BodyModelError(
            f"{path} has 6,890 vertices: that is an SMPL or SMPL-H model, not SMPL-X (10,475 vertices)"
        )
    if pickled:
        notes.append(
            f"{path.name} holds pickled entries {list(pickled)} that smplx does not need; smplx would "
            "unpickle them, so it is given a numeric-only copy instead"
        )
    return pickled, tuple(notes)


def _candidates(folder: Path, model_type: str) -> list[str]:
    """Names of files in ``folder`` that look like model files of another name or case."""
    if not folder.is_dir():
        return []
    prefix = "smplx" if model_type == "smplx" else "flame"
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in (".npz", ".pkl")
        and (prefix in p.name.lower() or p.name.lower().endswith("_model.pkl"))
        and p.name not in (FLAME_EMBEDDING, FLAME_CONTOUR_EMBEDDING)
    )


def check_model_folder(
    path: str | os.PathLike | None = None,
    model_type: str = "smplx",
    gender: str = "neutral",
    *,
    use_face_contour: bool = False,
) -> ModelFiles:
    """Inspect a model folder before smplx is called; raise :class:`BodyModelError` if unusable.

    ``path`` is the folder holding ``smplx/`` (or ``flame/``), that subfolder itself, or
    (SMPL-X only) the path of one model file; ``None`` reads ``VENUS_MARS_SMPLX_DIR`` /
    ``VENUS_MARS_FLAME_DIR``. The message of every error names the missing file exactly,
    the expected layout and where to register. An ``.npz`` model is checked for the entries
    smplx reads (from the zip headers: nothing is unpickled); a ``.pkl`` is not opened.
    """
    model_type = _check_type(model_type)
    gender = str(gender).lower()
    if gender not in GENDERS:
        raise BodyModelError(f"gender must be one of {GENDERS}; got {gender!r}")
    root = find_model_folder(path, model_type)
    layout = expected_layout(model_type)
    notes = []

    if root.is_file():
        if model_type == "flame":
            raise BodyModelError(
                f"{root} is a file; FlameFace needs the folder holding {_file_name('flame', gender, 'pkl')} "
                f"and {FLAME_EMBEDDING}.\n{layout}"
            )
        ext = root.suffix.lower().lstrip(".")
        if ext not in ("npz", "pkl"):
            raise BodyModelError(f"{root} is neither an .npz nor a .pkl model file.\n{layout}")
        folder, model_file = root.parent, root
    else:
        sub = root / model_type
        folder = sub if sub.is_dir() else root
        npz, pkl = (folder / _file_name(model_type, gender, e) for e in ("npz", "pkl"))
        if npz.is_file():
            model_file, ext = npz, "npz"
        elif pkl.is_file():
            model_file, ext = pkl, "pkl"
            notes.append(
                f"only {pkl.name} was found: smplx loads it with pickle (venus-mars never does); "
                f"prefer the .npz download from {SMPLX_URL if model_type == 'smplx' else FLAME_URL}"
            )
        else:
            if folder == root and not sub.exists():
                where = (
                    f"{sub / npz.name} (or {pkl.name}); {root} has no {model_type}/ subfolder, and no "
                    f"{npz.name} / {pkl.name} of its own"
                )
            else:
                where = f"{npz} (or {pkl.name} in the same folder)"
            hints = []
            others = _candidates(folder, model_type)
            if others:
                hints.append(
                    f"found {others}: smplx looks for exactly {npz.name} / {pkl.name} (upper case"
                    + (", renamed from FLAME's generic/male/female_model.pkl" if model_type == "flame" else "")
                    + ")"
                    + (", or pass the path of the model file itself" if model_type == "smplx" else "")
                )
                other_genders = [g for g in GENDERS if g != gender and any(
                    n in (_file_name(model_type, g, "npz"), _file_name(model_type, g, "pkl")) for n in others)]
                if other_genders:
                    hints.append(f"or pass gender={other_genders[0]!r} to use the file that is there")
            elif folder.is_dir() and not any(folder.iterdir()):
                hints.append(f"{folder} is empty")
            hint = ("; " + "; ".join(hints)) if hints else ""
            raise BodyModelError(f"missing model file: {where}{hint}.\n{layout}\n{_raw_errors_note()}")

    extra = {}
    if model_type == "flame":
        embedding = folder / FLAME_EMBEDDING
        if not embedding.is_file():
            raise BodyModelError(
                f"missing {embedding}: smplx's FLAME needs this landmark embedding next to the model.\n"
                f"{layout}\n{_raw_errors_note()}"
            )
        extra["landmark_embedding"] = embedding
        if use_face_contour:
            contour = folder / FLAME_CONTOUR_EMBEDDING
            if not contour.is_file():
                raise BodyModelError(f"missing {contour} (needed for use_face_contour=True).\n{layout}")
            extra["contour_embedding"] = contour

    pickled = ()
    if ext == "npz":
        pickled, npz_notes = _check_npz(model_file, model_type, use_face_contour)
        notes.extend(npz_notes)
    needs_pickle = ext == "pkl" or model_type == "flame"
    return ModelFiles(model_type, gender, folder, model_file, ext, extra, pickled, needs_pickle, tuple(notes))


def _pickle_refusal(files: ModelFiles) -> BodyModelError:
    pk = [str(files.model_file)] if files.ext == "pkl" else []
    pk += [str(p) for p in files.extra_files.values() if str(p).endswith(".pkl")]
    return BodyModelError(
        f"loading these model files means smplx unpickles {pk} (a pickle can run code when it is "
        "loaded; venus-mars itself never unpickles anything). If these are your own files, downloaded "
        "from the model's website, pass allow_pkl=True to accept that"
        + (f"; or use the .npz model file from {SMPLX_URL}" if files.model_type == "smplx" else "")
        + "."
    )


class _NumericCopy:
    """A temporary folder with a numeric-only copy of an .npz model (no pickled entries).

    smplx loads .npz files with ``allow_pickle=True``; giving it this copy guarantees that
    nothing is unpickled. smplx reads everything at construction, so the copy is deleted
    right after.
    """

    def __init__(self, files: ModelFiles):
        self.files = files
        self._tmp = None

    def __enter__(self) -> Path:
        if self.files.ext != "npz" or not self.files.pickled_keys:
            return self.files.model_file
        self._tmp = tempfile.mkdtemp(prefix="venus-mars-model-")
        target = Path(self._tmp) / self.files.model_file.name
        with np.load(self.files.model_file, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k not in self.files.pickled_keys}
        np.savez(target, **arrays)
        for name, extra in self.files.extra_files.items():  # FLAME reads its embeddings from the same folder
            shutil.copy(extra, Path(self._tmp) / Path(extra).name)
        return target

    def __exit__(self, *exc):
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return False


_LOAD_ERRORS = (AssertionError, ValueError, KeyError, AttributeError, IndexError, TypeError, RuntimeError,
                OSError, ImportError)  # fmt: skip


def _load_error(files: ModelFiles, err: Exception) -> BodyModelError:
    hint = "The file may be damaged or of another model or version."
    if isinstance(err, ImportError) and "chumpy" in str(err):
        hint = (
            "This .pkl was saved with chumpy objects, so unpickling it needs the 'chumpy' package; "
            "an .npz model file avoids that."
        )
    return BodyModelError(
        f"smplx could not build a {files.model_type.upper()} model from {files.model_file}: "
        f"{type(err).__name__}: {err}. {hint}\n{expected_layout(files.model_type)}"
    )


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _fit(values: np.ndarray | None, n: int, width: int) -> np.ndarray:
    """(n, width) array from ``values`` cut or zero-padded to ``width`` columns (zeros if None)."""
    out = np.zeros((n, width), dtype=np.float32)
    if values is not None and width:
        k = min(width, values.shape[1])
        out[:, :k] = values[:, :k]
    return out


# ---------------------------------------------------------------------------------------
# SMPL-X
# ---------------------------------------------------------------------------------------
def _hand_joints(side: str) -> np.ndarray:
    """Skeleton indices of one hand's 15 finger joints, in SMPL-X order."""
    names = [f"{side}_{finger}{k}" for finger in schema.FINGERS for k in (1, 2, 3)]
    return np.array([schema.JOINT_INDEX[n] for n in names])


# Where smplx's arguments sit in our (55, 3) local rotations (SMPL-X joint order).
_BODY21 = np.array([schema.JOINT_INDEX[n] for n in schema.BODY_JOINT_ORDER])
_LEFT_HAND, _RIGHT_HAND = _hand_joints("left"), _hand_joints("right")


class SmplxBody:
    """The real SMPL-X model (via ``smplx``) with the call shape of the package's skeleton.

    ``SmplxBody(path=None, gender="neutral")`` finds and checks the model folder
    (:func:`find_model_folder`, :func:`check_model_folder`), then builds the model once.
    :meth:`joints` and :meth:`vertices` take the same tracks as
    ``motion_features.joints_from_body``: a (T, 179) SMPL-X track (or the (T, 117) tokenizer
    columns, with the seated neutral pose for the rest), an optional face track whose jaw
    replaces the body's, and an optional head rotation. Frames are processed in batches of
    ``batch_frames``; results are float32 numpy arrays in metres, y up, with the pelvis at
    the origin (``center=True``) like ``kinematics.forward_kinematics``.

    The hand poses are passed as 45 axis-angles per hand (``use_pca=False``);
    ``flat_hand_mean=False`` (smplx's default, which the Hand4Whole/OSX family of
    estimators also uses as far as their public code shows) adds the model's mean hand, so
    zero means a relaxed hand. The SMPL-X betas and its 10 expression coefficients come from
    the 179-column track; FLAME's 50 expression coefficients of the face track live in
    another space and are not used. ``face`` only supplies the jaw.
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        gender: str = "neutral",
        allow_pkl: bool = False,
        flat_hand_mean: bool = False,
        use_face_contour: bool = False,
        num_betas: int = 10,
        num_expression_coeffs: int = 10,
        batch_frames: int = 256,
        device: str = "cpu",
    ):
        smplx = require_smplx()
        import torch

        self.files = check_model_folder(path, "smplx", gender, use_face_contour=use_face_contour)
        if self.files.ext == "pkl" and not allow_pkl:
            raise _pickle_refusal(self.files)
        self.batch_frames = int(batch_frames)
        self.device = torch.device(device)
        creates = {f"create_{k}": False for k in (
            "betas", "global_orient", "body_pose", "transl", "left_hand_pose", "right_hand_pose",
            "expression", "jaw_pose", "leye_pose", "reye_pose")}  # fmt: skip
        with _NumericCopy(self.files) as model_file:
            try:
                model = smplx.SMPLX(
                    str(model_file), ext=self.files.ext, gender=gender, use_pca=False,
                    flat_hand_mean=flat_hand_mean, use_face_contour=use_face_contour,
                    num_betas=num_betas, num_expression_coeffs=num_expression_coeffs, **creates,
                )  # fmt: skip
            except _LOAD_ERRORS as err:
                raise _load_error(self.files, err) from err
        self.model = model.to(self.device).eval()
        self.faces = np.asarray(model.faces, dtype=np.int64)  # (F, 3) triangles
        self.n_vertices = int(model.get_num_verts())
        self.num_betas = int(model.num_betas)
        self.num_expression_coeffs = int(model.num_expression_coeffs)

    def _run(self, body, face, head_rotation, want_vertices: bool, center: bool):
        import torch

        from . import motion_features  # the same pose rules as the package's own skeleton

        body = np.asarray(body)
        rot = motion_features.local_rotations(body, face, head_rotation).astype(np.float32)
        n = len(rot)
        full = body.ndim == 2 and body.shape[1] == schema.BODY_DIM
        betas = _fit(body[:, schema.BODY_BETAS] if full else None, n, self.num_betas)
        expression = _fit(body[:, schema.BODY_EXPRESSION] if full else None, n, self.num_expression_coeffs)
        J = schema.JOINT_INDEX
        joints, verts = [], []
        tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        with torch.no_grad():
            for s in _chunks(n, self.batch_frames):
                r = rot[s]
                b = len(r)
                out = self.model(
                    betas=tensor(betas[s]), expression=tensor(expression[s]),
                    global_orient=tensor(r[:, J["pelvis"]]),
                    body_pose=tensor(r[:, _BODY21].reshape(b, -1)),
                    left_hand_pose=tensor(r[:, _LEFT_HAND].reshape(b, -1)),
                    right_hand_pose=tensor(r[:, _RIGHT_HAND].reshape(b, -1)),
                    jaw_pose=tensor(r[:, J["jaw"]]), leye_pose=tensor(r[:, J["left_eye"]]),
                    reye_pose=tensor(r[:, J["right_eye"]]),
                    return_verts=want_vertices, return_shaped=False,
                )  # fmt: skip
                origin = out.joints[:, :1] if center else 0.0
                joints.append((out.joints - origin).cpu().numpy())
                if want_vertices:
                    verts.append((out.vertices - origin).cpu().numpy())
        empty = np.zeros((0, 0, 3), dtype=np.float32)
        j = np.concatenate(joints) if joints else empty
        v = (np.concatenate(verts) if verts else empty) if want_vertices else None
        return j, v

    def joints(
        self, body, face=None, head_rotation=None, *, all_joints: bool = False, center: bool = True
    ) -> np.ndarray:
        """(T, 55, 3) SMPL-X joint positions in ``schema.JOINT_NAMES`` order (metres).

        ``all_joints=True`` returns every point smplx computes (55 joints, then points picked
        on the mesh and facial landmarks: 127 by default), (T, J, 3).
        """
        j, _ = self._run(body, face, head_rotation, want_vertices=False, center=center)
        return j if all_joints else j[:, : schema.N_JOINTS]

    def vertices(self, body, face=None, head_rotation=None, *, center: bool = True) -> np.ndarray:
        """(T, V, 3) SMPL-X mesh vertices in metres (V = 10,475); triangles are ``self.faces``."""
        _, v = self._run(body, face, head_rotation, want_vertices=True, center=center)
        return v


# ---------------------------------------------------------------------------------------
# FLAME
# ---------------------------------------------------------------------------------------
class FlameFace:
    """The real FLAME head model (via ``smplx.FLAME``) for VENUS face tracks.

    ``FlameFace(path=None, allow_pkl=True)``: smplx's FLAME loader always unpickles the
    landmark embedding ``flame_static_embedding.pkl`` (and a ``.pkl`` model), so
    ``allow_pkl=True`` is required (see the module notes). :meth:`vertices` takes a
    (T, 156) face track (or the legacy 153, or the 53 tokenizer columns): FLAME's shape
    (up to ``num_betas``), its 50 expression coefficients (up to what the model file
    holds), the head rotation as FLAME's global rotation (zero for 153/53 columns or
    ``with_head_rotation=False``), the jaw, and a zero neck. Results are float32 numpy
    arrays in metres (FLAME's own frame, not centred).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        gender: str = "neutral",
        allow_pkl: bool = False,
        num_betas: int = 100,
        num_expression_coeffs: int = 50,
        batch_frames: int = 512,
        device: str = "cpu",
    ):
        smplx = require_smplx()
        import torch

        if not hasattr(smplx, "FLAME"):
            raise BodyModelError(
                "this version of smplx has no FLAME model class; FLAME meshes are not supported with it "
                f"(install a smplx release that provides smplx.FLAME, e.g. {INSTALL_HINT})"
            )
        self.files = check_model_folder(path, "flame", gender)
        if not allow_pkl:
            raise _pickle_refusal(self.files)
        self.batch_frames = int(batch_frames)
        self.device = torch.device(device)
        creates = {f"create_{k}": False for k in (
            "betas", "global_orient", "body_pose", "transl", "expression", "neck_pose", "jaw_pose",
            "leye_pose", "reye_pose")}  # fmt: skip
        with _NumericCopy(self.files) as model_file:
            try:
                model = smplx.FLAME(
                    str(Path(model_file).parent), ext=self.files.ext, gender=gender,
                    num_betas=num_betas, num_expression_coeffs=num_expression_coeffs, **creates,
                )  # fmt: skip
            except _LOAD_ERRORS as err:
                raise _load_error(self.files, err) from err
        self.model = model.to(self.device).eval()
        self.faces = np.asarray(model.faces, dtype=np.int64)
        self.n_vertices = int(model.get_num_verts())
        self.num_betas = int(model.num_betas)
        self.num_expression_coeffs = int(model.num_expression_coeffs)

    def _params(self, face, with_head_rotation: bool):
        face = np.asarray(face, dtype=np.float32)
        if face.ndim != 2:
            raise ValueError(f"a face track is (frames, columns); got shape {face.shape}")
        width = face.shape[1]
        if width == schema.FACE_TOKEN_DIM:
            expression, jaw = face[:, schema.FACE_TOKEN_EXPRESSION], face[:, schema.FACE_TOKEN_JAW]
            shape = head = None
        else:
            try:
                lay = schema.face_layout_for(width)
            except ValueError:
                raise ValueError(
                    f"a face track has {schema.FACE_TOKEN_DIM}, {schema.FACE_LAYOUT_LEGACY.length} or "
                    f"{schema.FACE_LAYOUT.length} columns; got {width}"
                ) from None
            expression, jaw, shape = face[:, lay.expression], face[:, lay.jaw], face[:, lay.shape]
            head = face[:, lay.head_rotation] if lay.head_rotation is not None else None
        n = len(face)
        head = head if (with_head_rotation and head is not None) else np.zeros((n, 3), np.float32)
        return n, {
            "betas": _fit(shape, n, self.num_betas),
            "expression": _fit(expression, n, self.num_expression_coeffs),
            "global_orient": np.ascontiguousarray(head, dtype=np.float32),
            "jaw_pose": np.ascontiguousarray(jaw, dtype=np.float32),
        }

    def _run(self, face, with_head_rotation: bool, want_vertices: bool):
        import torch

        n, params = self._params(face, with_head_rotation)
        joints, verts = [], []
        with torch.no_grad():
            for s in _chunks(n, self.batch_frames):
                b = s.stop - s.start
                zeros = torch.zeros((b, 3), device=self.device)
                kw = {k: torch.from_numpy(v[s]).to(self.device) for k, v in params.items()}
                out = self.model(neck_pose=zeros, leye_pose=zeros, reye_pose=zeros, return_verts=want_vertices, **kw)
                joints.append(out.joints.cpu().numpy())
                if want_vertices:
                    verts.append(out.vertices.cpu().numpy())
        empty = np.zeros((0, 0, 3), dtype=np.float32)
        return (np.concatenate(joints) if joints else empty), (
            (np.concatenate(verts) if verts else empty) if want_vertices else None
        )

    def vertices(self, face, *, with_head_rotation: bool = True) -> np.ndarray:
        """(T, V, 3) FLAME vertices in metres (V = 5,023); triangles are ``self.faces``."""
        return self._run(face, with_head_rotation, want_vertices=True)[1]

    def joints(self, face, *, with_head_rotation: bool = True) -> np.ndarray:
        """(T, J, 3): FLAME's 5 joints (root, neck, jaw, eyes), then its facial landmarks."""
        return self._run(face, with_head_rotation, want_vertices=False)[0]
