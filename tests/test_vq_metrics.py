"""Tokenizer metrics (mini_mars.vq_metrics): every metric on inputs with a known answer,
evaluate() and its table on a small untrained tokenizer, cue survival with a perfect
stand-in model, and the vertex metrics with a fake SMPL-X model."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mini_mars import vq_metrics as vm
from mini_mars.config import preset
from mini_mars.motion_data import MotionFrames
from mini_mars.vqvae import VQVAE
from venus_analysis import schema
from venus_analysis import motion_features as mf


def frames_of(part, lengths, seed=0, scale=0.3):
    """Random MotionFrames of ``part`` with utterances of the given lengths."""
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths, dtype=np.int64)
    D = preset("smoke").vq(part).in_dim  # face 53 (expression, jaw), body 117
    frames = rng.normal(0.0, scale, (int(lengths.sum()), D)).astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return MotionFrames(part, frames, starts, lengths, [("v", 0, i) for i in range(len(lengths))])


class PerfectModel(torch.nn.Module):
    """A stand-in tokenizer whose reconstruction is its input."""

    def forward(self, x, mask=None):
        return SimpleNamespace(recon=x, codes=None, code_mask=None)


@pytest.fixture(scope="module")
def smoke_models():
    torch.manual_seed(0)
    out = {}
    for part in ("face", "body"):
        model = VQVAE(preset("smoke").vq(part))
        train = frames_of(part, [40, 24, 64], seed=1)
        mean, std = train.normalization()
        model.set_normalization(mean, std)
        model.train()
        with torch.no_grad():  # one forward pass in training mode initialises the codebook
            model(*train.padded(np.arange(len(train))))
        out[part] = model
    return out


# ---------------------------------------------------------------------------------------
# Parameter space
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("part", ["face", "body"])
def test_identical_inputs_give_zero_error(part):
    gt = vm.ground_truth(frames_of(part, [30, 17, 9]))
    m = vm.parameter_metrics(gt, [g.copy() for g in gt], part)
    for k in vm.ERROR_KEYS[part]:
        if k in m:
            assert m[k] == pytest.approx(0.0, abs=1e-8), k
    assert m["diversity_gt"] == m["diversity_recon"] and m["variance_gt"] == m["variance_recon"]


def test_constant_offset():
    gt = vm.ground_truth(frames_of("face", [30, 17]))
    c = 0.25
    m = vm.parameter_metrics(gt, [g + c for g in gt], "face")
    for k in ("l1", "l1_expression", "l1_jaw"):
        assert m[k] == pytest.approx(c)
    for k in ("l2", "l2_expression", "l2_jaw"):
        assert m[k] == pytest.approx(c**2)
    assert m["velocity_l1"] == pytest.approx(0.0, abs=1e-6)  # float32 rounding of x + c
    assert m["fd"] == pytest.approx(gt[0].shape[1] * c**2, rel=1e-5)  # ||mean shift||^2
    assert m["variance_recon"] == pytest.approx(m["variance_gt"])


def test_offset_in_one_group_only():
    gt = vm.ground_truth(frames_of("body", [20]))
    rec = [g.copy() for g in gt]
    rec[0][:, schema.BODY_TOKEN_LEFT_HAND] += 0.1
    m = vm.parameter_metrics(gt, rec, "body")
    assert m["l1_upper"] == 0.0 and m["l1_hands"] == pytest.approx(0.05)  # 45 of 90 hand columns
    assert m["l1"] == pytest.approx(0.1 * 45 / 117)


def test_velocity_error_of_a_ramp():
    gt = [np.zeros((10, 3))]
    rec = [np.arange(10.0)[:, None] * np.array([[0.1, 0.2, 0.3]])]  # steps of 0.1, 0.2, 0.3
    assert vm.parameter_metrics(gt, rec)["velocity_l1"] == pytest.approx(0.2)


def test_diversity_and_variance_known_values():
    a, b = np.zeros(4), np.full(4, 1.5)  # ||a - b|| = 3
    two = [np.stack([a, b])]
    # random pairs (with replacement) of two frames: half of them are distinct
    assert vm.diversity(two) == pytest.approx(1.5, abs=0.1)
    assert vm.diversity([np.stack([a, b, a, b])], seed=1) == pytest.approx(1.5, abs=0.1)
    assert vm.diversity([np.tile(a, (10, 1))]) == 0.0
    assert vm.diversity(two) == vm.diversity(two)  # fixed seed
    # per-parameter variance over time of [0, 2] is 1; averaged over utterances
    assert vm.variance([np.array([[0.0, 0.0], [2.0, 2.0]]), np.zeros((5, 2))]) == pytest.approx(0.5)


def test_frechet_distance_of_an_affine_copy():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (400, 5)) @ rng.normal(0.0, 1.0, (5, 5))
    b = 2.0 * a + 1.0  # cov_b = 4 cov_a, so sqrtm(cov_a cov_b) = 2 cov_a
    expected = np.sum((a.mean(0) + 1.0) ** 2) + np.trace(np.cov(a, rowvar=False))
    assert vm.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert vm.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # a singular covariance (a constant track, as the mean-pose baseline) stays finite
    fd = vm.frechet_distance(a, np.zeros_like(a))
    assert np.isfinite(fd) and fd == pytest.approx(np.sum(a.mean(0) ** 2) + np.trace(np.cov(a, rowvar=False)), rel=1e-4)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must be equal"):
        vm.parameter_metrics([np.zeros((5, 3))], [np.zeros((4, 3))])
    with pytest.raises(ValueError, match="2 ground-truth"):
        vm.parameter_metrics([np.zeros((5, 3))] * 2, [np.zeros((5, 3))])


# ---------------------------------------------------------------------------------------
# Joint space
# ---------------------------------------------------------------------------------------
def test_mpjpe_joints_are_the_moved_upper_body_and_hand_joints():
    names = [schema.JOINT_NAMES[j] for j in vm.MPJPE_JOINTS]
    assert len(names) == 36 and "left_elbow" in names and "right_thumb3" in names
    assert "head" not in names and "left_collar" not in names and "spine3" not in names


def test_mpjpe_of_a_shoulder_rotation():
    theta = 0.4
    gt = np.zeros((6, schema.BODY_TOKEN_DIM))
    rec = gt.copy()
    rec[:, schema.token_joint_slice("left_shoulder")] = (0.0, 0.0, theta)  # about z, through the shoulder
    m = vm.joint_metrics([gt], [rec])
    pos = mf.joints_from_body(gt[:1])[0]
    shoulder = pos[schema.JOINT_INDEX["left_shoulder"]]
    # every joint below the left shoulder moves on a circle around the z axis through it
    below = [j for j in vm.MPJPE_JOINTS if schema.JOINT_NAMES[j].startswith("left_") and j != schema.JOINT_INDEX["left_shoulder"]]
    rho = np.linalg.norm((pos[below] - shoulder)[:, :2], axis=1)
    assert m["mpjpe"] == pytest.approx((2 * rho * np.sin(theta / 2)).sum() / 36, rel=1e-6)
    assert m["velocity_mpjpe"] == pytest.approx(0.0, abs=1e-12)  # the error is constant in time
    assert vm.joint_metrics([gt], [gt.copy()])["mpjpe"] == 0.0


def test_joint_metrics_pool_utterances_without_velocity_across_them():
    theta = 0.4
    still = np.zeros((5, schema.BODY_TOKEN_DIM))
    turned = still.copy()
    turned[:, schema.token_joint_slice("left_shoulder")] = (0.0, 0.0, theta)
    # utterance 1 reconstructed turned all along, utterance 2 exactly: the error jumps only
    # between the two, which is no velocity error of either
    m = vm.joint_metrics([still, still[:3]], [turned, still[:3].copy()])
    one = vm.joint_metrics([still], [turned])
    assert m["velocity_mpjpe"] == pytest.approx(0.0, abs=1e-12)
    assert m["mpjpe"] == pytest.approx(one["mpjpe"] * 5 / 8)  # frames pooled: 5 wrong of 8
    pg = vm.joint_positions([still, still[:3]])
    assert pg.shape == (8, 36, 3) and np.allclose(pg[0], mf.joints_from_body(still[:1])[0, vm.MPJPE_JOINTS])
    given = vm.joint_metrics([still, still[:3]], [turned, still[:3].copy()], gt_joints=pg)
    assert given == m  # precomputed ground-truth joints: the same numbers
    with pytest.raises(ValueError, match=r"joint positions must be \(8, 36, 3\)"):
        vm.joint_metrics([still, still[:3]], [turned, still[:3].copy()], gt_joints=pg[:5])


def test_a_finger_error_stays_in_the_hands():
    rng = np.random.default_rng(0)
    gt = rng.normal(0.0, 0.2, (12, schema.BODY_TOKEN_DIM))
    rec = gt.copy()
    rec[:, schema.token_joint_slice("right_index1")] += 0.3
    m = vm.joint_metrics([gt], [rec])
    assert m["mpjpe_upper"] == 0.0 and m["mpjpe_hands"] > 0.0
    assert m["mpjpe"] == pytest.approx(m["mpjpe_hands"] * 30 / 36)
    with pytest.raises(ValueError, match="117"):
        vm.joint_metrics([np.zeros((3, 53))], [np.zeros((3, 53))])


# ---------------------------------------------------------------------------------------
# Codebook and baselines
# ---------------------------------------------------------------------------------------
def test_codebook_stats_on_known_codes():
    s = vm.codebook_stats(np.array([0, 0, 1, 1, -1, -1]), 4)  # -1 is padding
    assert s == {"codebook_usage": 0.5, "perplexity": pytest.approx(2.0), "dead_codes": 2.0}
    assert vm.codebook_stats(np.arange(8), 8)["perplexity"] == pytest.approx(8.0)
    assert vm.codebook_stats(np.zeros(10, int), 8) == {"codebook_usage": 0.125, "perplexity": 1.0, "dead_codes": 7.0}
    with pytest.raises(ValueError, match="outside"):
        vm.codebook_stats(np.array([9]), 4)


def test_mean_pose_baseline_error_is_the_distance_to_the_mean():
    gt = vm.ground_truth(frames_of("face", [20, 11]))
    mean = np.full(gt[0].shape[1], 0.1)
    m = vm.error_metrics(gt, vm.mean_pose_baseline(gt, mean), "face")
    assert m["l1"] == pytest.approx(np.abs(np.concatenate(gt) - mean).mean())
    # the prediction does not move: its velocity error is the ground truth's own motion
    assert m["velocity_l1"] == pytest.approx(np.concatenate([np.abs(np.diff(g, axis=0)) for g in gt]).mean())


def test_nearest_window_finds_the_training_window_itself():
    train = frames_of("body", [19, 8, 33])  # lengths not a multiple of 8: the last window overlaps
    mean, std = train.normalization()
    gt = vm.ground_truth(train)
    pred = vm.nearest_window_baseline(gt, train, mean, std)
    assert [p.shape for p in pred] == [g.shape for g in gt]
    for g, p in zip(gt, pred):
        assert np.allclose(g, p, atol=1e-6)
    short = vm.nearest_window_baseline([gt[0][:5]], train, mean, std, max_train_windows=3)  # padded, capped
    assert short[0].shape == (5, schema.BODY_TOKEN_DIM) and np.isfinite(short[0]).all()


# ---------------------------------------------------------------------------------------
# A model: reconstruct, evaluate, format
# ---------------------------------------------------------------------------------------
def test_reconstruct_cuts_at_512_and_restores_the_mode(smoke_models):
    model = smoke_models["face"]
    model.train()
    test = frames_of("face", [600, 13])
    rec = vm.reconstruct(model, test, batch_size=1)
    assert [r.shape for r in rec] == [(512, 53), (13, 53)] and model.training
    assert [g.shape for g in vm.ground_truth(test)] == [(512, 53), (13, 53)]
    perfect = vm.reconstruct(PerfectModel(), test)
    assert np.array_equal(perfect[1], test.utterance(1))


@pytest.mark.parametrize("part", ["face", "body"])
def test_evaluate_returns_every_key_as_finite_floats(smoke_models, part):
    model = smoke_models[part]
    train, test = frames_of(part, [40, 24, 64], seed=1), frames_of(part, [30, 50, 9], seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    m = vm.evaluate(model, test, train, batch_size=2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # eval: no EMA update
    groups = list(vm.GROUPS[part])
    keys = [k for k in vm.ERROR_KEYS[part] if not k.endswith("_head")]  # no head rotation in these tokens
    expected = set(keys) | {
        "diversity_gt", "diversity_recon", "variance_gt", "variance_recon", "codebook_usage", "perplexity", "dead_codes",
    } | {f"{b}_{k}" for b in vm.BASELINES for k in keys}  # fmt: skip
    assert set(m) == expected and {f"l1_{g}" for g in groups} <= set(m)
    assert all(type(v) is float and math.isfinite(v) for v in m.values())
    assert json.loads(json.dumps(m)) == m
    # the codebook figures are those of a full pass of encode()
    codes = vm.encode_codes(model, test, batch_size=2)
    assert len(codes) == sum(math.ceil(n / 8) for n in test.lengths)
    assert {k: m[k] for k in ("codebook_usage", "perplexity", "dead_codes")} == vm.codebook_stats(codes, model.cfg.codebook_size)
    assert m["mean_pose_l1"] == pytest.approx(np.abs(np.concatenate(vm.ground_truth(test)) - train.normalization()[0]).mean())
    if part == "body":
        assert m["mpjpe"] > 0 and m["mean_pose_mpjpe"] > 0
    # without training frames: the model's normalisation mean, and no nearest-window baseline
    alone = vm.evaluate(model, test)
    assert alone["mean_pose_l1"] == pytest.approx(m["mean_pose_l1"], rel=1e-5)
    assert not any(k.startswith("nearest_window_") for k in alone)
    with pytest.raises(ValueError, match="tokenizer"):
        vm.evaluate(model, frames_of("face" if part == "body" else "body", [10]))


def test_format_metrics_table(smoke_models):
    test = frames_of("body", [30, 20], seed=3)
    m = vm.evaluate(smoke_models["body"], test, frames_of("body", [40, 24], seed=4))
    text = vm.format_metrics(m)
    header = text.splitlines()[0]
    assert "model" in header and "mean pose" in header and "nearest window" in header
    for key in ("l1_hands", "mpjpe", "velocity_mpjpe", "fd"):
        assert any(line.split()[0] == key for line in text.splitlines()), key
    assert "diversity" in text and "codebook" in text and "perplexity" in text
    no_baseline = vm.format_metrics({"l1": 0.5})
    assert "0.5" in no_baseline and "-" in no_baseline.splitlines()[2]


# ---------------------------------------------------------------------------------------
# Cue survival
# ---------------------------------------------------------------------------------------
def test_cue_agreement_with_a_perfect_model(synth):
    table = vm.cue_agreement(PerfectModel(), PerfectModel(), synth["test"], max_utterances=80)
    assert list(table.columns) == ["cue", "part", "reconstructed", "gt_events", "recon_events", "gt_matched", "recon_matched"]
    # head cues go through the body tokens' head joint (the paper's layout), so they count
    assert list(table.cue[-2:]) == ["nod", "head_shake"] and table.reconstructed.iloc[-1]
    without_body = vm.cue_agreement(PerfectModel(), None, synth["test"], max_utterances=10)
    assert not without_body.reconstructed.iloc[-1]
    assert set(table.cue) >= {"smile", "frown", "hand_to_face", "hand_raised", "gesture"}
    with_events = table[table.gt_events > 0]
    assert len(with_events) >= 4  # the synthetic data plants most cues within 80 utterances
    assert (with_events.gt_matched == 1.0).all() and (with_events.recon_matched == 1.0).all()
    assert (table.gt_events == table.recon_events).all()


def test_cue_agreement_with_an_untrained_tokenizer(synth, smoke_models):
    table = vm.cue_agreement(None, smoke_models["body"], synth["test"], max_utterances=20)
    face = table[table.part == "face"]
    assert not face.reconstructed.any() and (face.gt_events == face.recon_events).all()  # no face model: GT
    assert table[table.part == "body"].reconstructed.all()
    shares = table[["gt_matched", "recon_matched"]].to_numpy().ravel()
    assert all(math.isnan(x) or 0.0 <= x <= 1.0 for x in shares)


# ---------------------------------------------------------------------------------------
# Vertex metrics
# ---------------------------------------------------------------------------------------
class ColumnsAsVertices:
    """A stand-in body model whose vertex k of frame t is (x_tk, 0, 0)."""

    def vertices(self, track):
        track = np.asarray(track, dtype=np.float64)
        return np.stack([track, np.zeros_like(track), np.zeros_like(track)], axis=-1)


def test_vertex_metric_formulas():
    gt = [np.zeros((30, 4)), np.zeros((10, 4))]
    rec = [np.full((30, 4), 0.5), np.full((10, 4), 0.5)]
    m = vm.vertex_metrics(gt, rec, ColumnsAsVertices())
    assert m == {"vmse": pytest.approx(0.25), "lvd": pytest.approx(0.5), "windowed_vertex_l2": pytest.approx(0.5)}
    assert vm.vertex_metrics(gt[0], gt[0], ColumnsAsVertices())["vmse"] == 0.0
    capped = vm.vertex_metrics(gt, [np.full((30, 4), 0.5), np.zeros((10, 4))], ColumnsAsVertices(), max_frames=30)
    assert capped["vmse"] == pytest.approx(0.25)


def test_vertex_metrics_with_a_fake_smplx(tmp_path):
    pytest.importorskip("smplx")
    from tests.test_body_models import write_fake_smplx
    from venus_analysis.body_models import SmplxBody

    write_fake_smplx(tmp_path / "SMPLX_NEUTRAL.npz")
    body = SmplxBody(tmp_path, batch_frames=8)
    gt = vm.ground_truth(frames_of("body", [6, 4], scale=0.2))
    assert vm.vertex_metrics(gt, gt, body)["vmse"] == pytest.approx(0.0, abs=1e-10)
    rec = [g.copy() for g in gt]
    for r in rec:
        r[:, schema.token_joint_slice("left_elbow")] += 0.3
    m = vm.vertex_metrics(gt, rec, body)
    assert all(math.isfinite(v) and v > 0 for v in m.values())
    assert m["lvd"] >= m["windowed_vertex_l2"] * 0.999  # the L1 norm of a 3-D vector is at least its L2 norm
    # the fake model's first 55 vertices are our skeleton's joints: the elbow error moves them
    # as the package's FK does
    v = body.vertices(rec[0])[:, :55] - body.vertices(gt[0])[:, :55]
    fk = mf.joints_from_body(rec[0]) - mf.joints_from_body(gt[0])
    assert np.allclose(v, fk, atol=1e-5)


def test_a_face_with_head_rotation_gets_head_errors():
    rng = np.random.default_rng(0)
    gt = [rng.normal(size=(20, 56)).astype(np.float32)]
    rec = [gt[0].copy()]
    rec[0][:, 53:56] += 0.5  # only the head is off
    m = vm.parameter_metrics(gt, rec, spread=False)  # 56 columns: a face with the head rotation
    assert m["l1_head"] == pytest.approx(0.5) and m["l1_expression"] == 0 and m["l1_jaw"] == 0
