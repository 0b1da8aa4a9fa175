"""Optional SMPL-X / FLAME through smplx (body_models).

Folder checks and the install hint need no smplx. The model tests use FAKE model files made
here from random arrays in the shapes smplx reads (never a real, licensed model file); they
run only when smplx is installed.
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from venus_analysis import body_models as bm
from venus_analysis import kinematics, schema
from venus_analysis import motion_features as mf

N_SMPLX_VERTICES = 10475  # smplx picks fixed vertex ids (up to 9,929) as extra points
N_FLAME_VERTICES = 5023
_UNPICKLED = []  # set by _Tripwire when anything unpickles it


def _tripwire_fired():
    _UNPICKLED.append(True)
    return {}


class _Tripwire:
    """An object that records it was unpickled (stands in for pickled entries of a model file)."""

    def __reduce__(self):
        return (_tripwire_fired, ())


# ---------------------------------------------------------------------------------------
# Fake model files (random arrays in the shapes smplx reads)
# ---------------------------------------------------------------------------------------
def write_fake_smplx(path, seed=0, extra=None):
    """A fake SMPLX_*.npz whose skeleton is ours: joint j sits on vertex j at our rest pose
    and vertex j moves only with joint j, so smplx's posed joints equal our forward kinematics.
    Shape/expression directions leave those vertices alone; pose correctives are zero."""
    rng = np.random.default_rng(seed)
    n_v, n_f, n_j = N_SMPLX_VERTICES, 20908, schema.N_JOINTS
    v_template = rng.normal(0.0, 0.3, (n_v, 3)).astype(np.float32)
    v_template[:n_j] = kinematics.rest_joints()
    j_regressor = np.zeros((n_j, n_v), np.float32)
    j_regressor[np.arange(n_j), np.arange(n_j)] = 1.0
    owner = np.r_[np.arange(n_j), rng.integers(0, n_j, n_v - n_j)]
    weights = np.zeros((n_v, n_j), np.float32)
    weights[np.arange(n_v), owner] = 1.0
    shapedirs = rng.normal(0.0, 0.01, (n_v, 3, 20)).astype(np.float32)  # 10 betas + 10 expressions
    shapedirs[:n_j] = 0.0
    parents = [p if p >= 0 else 2**32 - 1 for p in schema.JOINT_PARENTS]
    arrays = dict(
        v_template=v_template,
        f=rng.integers(0, n_v, (n_f, 3)),
        J_regressor=j_regressor,
        weights=weights,
        kintree_table=np.array([parents, list(range(n_j))], dtype=np.int64),
        shapedirs=shapedirs,
        posedirs=np.zeros((n_v, 3, (n_j - 1) * 9), np.float32),
        hands_componentsl=np.eye(45, dtype=np.float32),
        hands_componentsr=np.eye(45, dtype=np.float32),
        hands_meanl=np.zeros(45, np.float32),
        hands_meanr=np.zeros(45, np.float32),
        lmk_faces_idx=rng.integers(0, n_f, 51),
        lmk_bary_coords=rng.dirichlet(np.ones(3), 51).astype(np.float32),
    )
    arrays.update(extra or {})
    np.savez(path, **arrays)


def write_fake_flame(folder, seed=0):
    """A fake FLAME_NEUTRAL.npz plus the landmark embedding pickle smplx's FLAME reads."""
    rng = np.random.default_rng(seed)
    n_v, n_f, n_j = N_FLAME_VERTICES, 9976, 5  # root, neck, jaw, left eye, right eye
    v_template = rng.normal(0.0, 0.1, (n_v, 3)).astype(np.float32)
    owner = rng.integers(0, n_j, n_v)
    weights = np.zeros((n_v, n_j), np.float32)
    weights[np.arange(n_v), owner] = 1.0
    j_regressor = np.zeros((n_j, n_v), np.float32)
    j_regressor[np.arange(n_j), np.arange(n_j)] = 1.0
    np.savez(
        folder / "FLAME_NEUTRAL.npz",
        v_template=v_template,
        f=rng.integers(0, n_v, (n_f, 3)),
        J_regressor=j_regressor,
        weights=weights,
        kintree_table=np.array([[2**32 - 1, 0, 1, 1, 1], list(range(n_j))], dtype=np.int64),
        shapedirs=rng.normal(0.0, 0.01, (n_v, 3, 20)).astype(np.float32),
        posedirs=np.zeros((n_v, 3, (n_j - 1) * 9), np.float32),
    )
    embedding = {"lmk_face_idx": rng.integers(0, n_f, 51), "lmk_b_coords": rng.dirichlet(np.ones(3), 51)}
    with open(folder / bm.FLAME_EMBEDDING, "wb") as fh:  # a fake of the user's own file
        pickle.dump(embedding, fh)
    return owner


@pytest.fixture(scope="module")
def fake_smplx_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    (root / "smplx").mkdir()
    write_fake_smplx(root / "smplx" / "SMPLX_NEUTRAL.npz")
    return root


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for var in bm.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)


# ---------------------------------------------------------------------------------------
# Folder checks (no smplx needed)
# ---------------------------------------------------------------------------------------
def test_no_folder_names_the_env_var_and_where_to_register():
    with pytest.raises(bm.BodyModelError) as err:
        bm.find_model_folder()
    msg = str(err.value)
    assert "VENUS_MARS_SMPLX_DIR" in msg and bm.SMPLX_URL in msg and "smplx/SMPLX_NEUTRAL.npz" in msg
    with pytest.raises(bm.BodyModelError, match="VENUS_MARS_FLAME_DIR") as err:
        bm.find_model_folder(model_type="flame")
    assert bm.FLAME_URL in str(err.value)


def test_env_var_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("VENUS_MARS_SMPLX_DIR", str(tmp_path))
    assert bm.find_model_folder() == tmp_path


def test_missing_path(tmp_path):
    with pytest.raises(bm.BodyModelError, match="does not exist") as err:
        bm.check_model_folder(tmp_path / "nowhere")
    assert "nowhere" in str(err.value) and bm.SMPLX_URL in str(err.value)


def test_empty_folder_names_the_exact_missing_file(tmp_path):
    with pytest.raises(bm.BodyModelError) as err:
        bm.check_model_folder(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "smplx" / "SMPLX_NEUTRAL.npz") in msg
    assert "is empty" in msg and bm.SMPLX_URL in msg and "AssertionError" in msg


def test_misnamed_files_are_pointed_out(tmp_path):
    (tmp_path / "smplx").mkdir()
    (tmp_path / "smplx" / "smplx_neutral.npz").write_bytes(b"")
    (tmp_path / "smplx" / "SMPLX_FEMALE.npz").write_bytes(b"")
    with pytest.raises(bm.BodyModelError) as err:
        bm.check_model_folder(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "smplx" / "SMPLX_NEUTRAL.npz") in msg
    assert "smplx_neutral.npz" in msg and "upper case" in msg and "gender='female'" in msg


def test_a_file_that_is_not_a_model(tmp_path):
    (tmp_path / "SMPLX_NEUTRAL.npz").write_bytes(b"not a zip")
    with pytest.raises(bm.BodyModelError, match="not a readable .npz"):
        bm.check_model_folder(tmp_path)
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", v_template=np.zeros((4, 3)))
    with pytest.raises(bm.BodyModelError, match="lacks the entries") as err:
        bm.check_model_folder(tmp_path)
    assert "J_regressor" in str(err.value)


def test_only_pkl_is_reported(tmp_path):
    (tmp_path / "SMPLX_NEUTRAL.pkl").write_bytes(b"never opened by us")
    files = bm.check_model_folder(tmp_path)
    assert files.ext == "pkl" and files.needs_pickle
    assert any("pickle" in note and ".npz" in note for note in files.notes)


def test_flame_folder_needs_the_landmark_embedding(tmp_path):
    (tmp_path / "flame").mkdir()
    with pytest.raises(bm.BodyModelError) as err:
        bm.check_model_folder(tmp_path, "flame")
    assert str(tmp_path / "flame" / "FLAME_NEUTRAL.npz") in str(err.value) and bm.FLAME_URL in str(err.value)
    (tmp_path / "flame" / "generic_model.pkl").write_bytes(b"")
    with pytest.raises(bm.BodyModelError, match="generic_model.pkl"):
        bm.check_model_folder(tmp_path, "flame")
    (tmp_path / "flame" / "FLAME_NEUTRAL.pkl").write_bytes(b"")
    with pytest.raises(bm.BodyModelError, match=bm.FLAME_EMBEDDING):
        bm.check_model_folder(tmp_path, "flame")


def test_a_fake_model_passes_the_check_without_smplx(fake_smplx_root):
    files = bm.check_model_folder(fake_smplx_root)
    assert files.ext == "npz" and not files.needs_pickle and files.pickled_keys == ()
    assert files.model_file == fake_smplx_root / "smplx" / "SMPLX_NEUTRAL.npz"
    assert bm.check_model_folder(fake_smplx_root / "smplx").model_file == files.model_file
    assert bm.check_model_folder(files.model_file).model_file == files.model_file


def test_missing_smplx_gives_the_install_hint(monkeypatch, fake_smplx_root):
    monkeypatch.setitem(sys.modules, "smplx", None)  # makes `import smplx` raise ImportError
    with pytest.raises(bm.BodyModelError, match=r'pip install "venus-mars\[smplx\]"'):
        bm.SmplxBody(fake_smplx_root)
    with pytest.raises(bm.BodyModelError, match="venus-mars"):
        bm.FlameFace(fake_smplx_root)


# ---------------------------------------------------------------------------------------
# With smplx: fake models load and give joints and meshes
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smplx_body(fake_smplx_root):
    pytest.importorskip("smplx")
    return bm.SmplxBody(fake_smplx_root, batch_frames=16)


def _tracks(n, seed=1):
    rng = np.random.default_rng(seed)
    body = rng.normal(0.0, 0.4, (n, schema.BODY_DIM)).astype(np.float32)
    face = rng.normal(0.0, 0.2, (n, schema.FACE_DIM)).astype(np.float32)
    return body, face


def test_smplx_joints_match_our_skeleton_on_the_fake_model(smplx_body):
    body, face = _tracks(40)  # 40 frames in batches of 16: three batches
    joints = smplx_body.joints(body, face)
    assert joints.shape == (40, schema.N_JOINTS, 3) and np.isfinite(joints).all()
    # The fake model's skeleton is ours, so smplx's skinning must reproduce our forward
    # kinematics: this checks the mapping of the 179 floats onto smplx's arguments.
    assert np.allclose(joints, mf.joints_from_body(body, face), atol=1e-5)
    tokens = body[:, schema.BODY_TOKEN_SLICE]
    assert np.allclose(smplx_body.joints(tokens), mf.joints_from_body(tokens), atol=1e-5)
    everything = smplx_body.joints(body, face, all_joints=True)
    assert everything.shape[0] == 40 and everything.shape[1] > schema.N_JOINTS
    assert np.isfinite(everything).all()


def test_smplx_vertices_and_faces(smplx_body):
    body, face = _tracks(5)
    verts = smplx_body.vertices(body, face)
    assert verts.shape == (5, N_SMPLX_VERTICES, 3) and np.isfinite(verts).all()
    assert smplx_body.faces.shape[1] == 3 and smplx_body.faces.max() < N_SMPLX_VERTICES
    # vertex j hangs from joint j alone, and the fake shape directions leave it alone
    assert np.allclose(verts[:, : schema.N_JOINTS], smplx_body.joints(body, face), atol=1e-5)
    assert smplx_body.joints(body[:0]).shape[0] == 0


def test_pickled_entries_are_never_unpickled(tmp_path):
    pytest.importorskip("smplx")
    trap = np.empty(1, dtype=object)
    trap[0] = _Tripwire()
    write_fake_smplx(tmp_path / "SMPLX_NEUTRAL.npz", extra={"joint2num": trap})
    files = bm.check_model_folder(tmp_path)
    assert files.pickled_keys == ("joint2num",) and any("numeric-only copy" in n for n in files.notes)
    _UNPICKLED.clear()
    body = bm.SmplxBody(tmp_path)
    assert not _UNPICKLED  # smplx was given a copy without the pickled entry
    assert body.joints(_tracks(2)[0]).shape == (2, schema.N_JOINTS, 3)


def test_pkl_models_need_consent(tmp_path):
    pytest.importorskip("smplx")
    (tmp_path / "SMPLX_NEUTRAL.pkl").write_bytes(b"never opened by us")
    with pytest.raises(bm.BodyModelError, match="allow_pkl=True"):
        bm.SmplxBody(tmp_path)


def test_smplx_errors_are_wrapped(tmp_path):
    pytest.importorskip("smplx")
    flat = np.zeros((N_SMPLX_VERTICES, 3), np.float32)  # shape directions without their last axis
    write_fake_smplx(tmp_path / "SMPLX_NEUTRAL.npz", extra={"shapedirs": flat})
    with pytest.raises(bm.BodyModelError, match="smplx could not build") as err:
        bm.SmplxBody(tmp_path)
    assert "SMPLX_NEUTRAL.npz" in str(err.value)


def test_fake_flame_face(tmp_path):
    pytest.importorskip("smplx")
    folder = tmp_path / "flame"
    folder.mkdir()
    owner = write_fake_flame(folder)
    with pytest.raises(bm.BodyModelError, match="allow_pkl=True") as err:
        bm.FlameFace(tmp_path)
    assert bm.FLAME_EMBEDDING in str(err.value)
    flame = bm.FlameFace(tmp_path, allow_pkl=True, batch_frames=4)
    _, face = _tracks(6)
    verts = flame.vertices(face)
    assert verts.shape == (6, N_FLAME_VERTICES, 3) and np.isfinite(verts).all()
    assert flame.joints(face).shape[:2] == (6, 5 + 51)
    # opening the jaw moves only the vertices the jaw joint carries
    closed, opened = face[:1].copy(), face[:1].copy()
    closed[:, schema.FACE_LAYOUT.jaw] = 0.0
    opened[:, schema.FACE_LAYOUT.jaw] = (0.3, 0.0, 0.0)
    moved = np.linalg.norm(flame.vertices(opened) - flame.vertices(closed), axis=-1)[0] > 1e-6
    assert moved.any() and np.all(owner[moved] == 2)
    legacy = face[:, np.r_[0:50, 53:156]]  # the 153-float layout: no head rotation
    assert flame.vertices(legacy).shape == (6, N_FLAME_VERTICES, 3)
