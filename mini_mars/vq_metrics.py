"""How good is a tokenizer? Reconstruction metrics, codebook statistics and baselines.

The MARS paper scores its VQ-VAEs on mesh vertices (VMSE, LVD), which needs the licensed
FLAME / SMPL-X models. The same definitions apply in parameter space and, for the body, in
joint space through the package's own skeleton, which need nothing licensed. Everything
here compares a list of ground-truth tracks ``X_i`` (T_i, D) with their reconstructions
``Y_i``; frames are pooled over utterances (a long utterance weighs more), utterances are
cut at 512 frames as MARS does (:data:`MAX_FRAMES`), and all numbers are in VENUS units
(expression coefficients, radians) unless said otherwise.

Parameter space (:func:`parameter_metrics`), over a column group G (all columns; face:
``expression`` 0:50, ``jaw`` 50:53; body: ``upper`` 0:27, ``hands`` 27:117):

- ``l1``       = mean_{t, d in G} |Y_td - X_td|
- ``l2``       = mean_{t, d in G} (Y_td - X_td)^2 (mean *squared* error: VMSE's analogue)
- ``velocity_l1`` = mean_{t >= 1, d} |(Y_t - Y_{t-1})_d - (X_t - X_{t-1})_d| (per frame,
  inside each utterance)
- ``diversity`` (the paper's): draw 1,000 random pairs of frames (i, j) from the pooled
  frames, take mean ||F_i - F_j||_2; repeat 10 times and average; fixed seed, and the same
  pairs for ground truth and reconstruction so the two are comparable
- ``variance`` (the paper's Variation) = mean over utterances of mean_d Var_t(F_td)
- ``fd`` = Fréchet distance between Gaussians fitted to the GT frames (mu_x, S_x) and the
  reconstructed frames (mu_y, S_y): ||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x S_y)^(1/2)).
  A distribution distance on parameters (not the FGD of gesture papers, which uses a
  learned feature extractor).

Joint space, body only (:func:`joint_metrics`): the 117 tokenizer columns go through
``motion_features.joints_from_body`` (seated neutral pose for everything untokenized), and
the metrics use the 36 joints that the tokenized rotations move (:data:`MPJPE_JOINTS`:
shoulders, elbows, wrists, 30 finger joints; the collars and the head hang from the
untokenized spine and neck, so their positions never change and would only dilute the mean):

- ``mpjpe`` = mean_{t, j} ||P^Y_tj - P^X_tj||_2 in metres (``mpjpe_upper``, ``mpjpe_hands``
  split the joints into the 6 arm joints and the 30 finger joints)
- ``velocity_mpjpe`` = mean_{t >= 1, j} ||(P^Y_t - P^Y_{t-1})_j - (P^X_t - P^X_{t-1})_j||_2,
  metres per frame (x 25 for m/s)

Codebook (:func:`codebook_stats`) over the codes of every real latent step of a split:
``codebook_usage`` = share of the K codes used at least once, ``perplexity`` = exp(-sum_k
p_k ln p_k) with p_k the share of steps on code k (K when all codes are equally used, 1
when one code takes everything), ``dead_codes`` = codes never used.

Baselines on the same test utterances, with the same error metrics (prefixes
``mean_pose_`` and ``nearest_window_``): every frame set to the training mean frame; and
every 8-frame test window replaced by its nearest training window (:func:`nearest_window_baseline`).

:func:`evaluate` returns all of it as one flat dict of floats, :func:`format_metrics` prints
it. :func:`cue_agreement` checks that the cue detectors of the analysis layer fire on the
reconstruction where they fire on the ground truth; :func:`vertex_metrics` computes the
paper's vertex metrics when the licensed models are at hand.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import torch

from venus_analysis import cues as cue_lib
from venus_analysis import extraction, schema
from venus_analysis import motion_features as mf

from .vqvae import device_of
from .motion_data import HEAD, MotionFrames, input_options, segments_of, speaker_references, utterance_track

MAX_FRAMES = schema.WINDOW_FRAMES  # 512: MARS cuts every utterance here
WINDOW = schema.FRAMES_PER_TOKEN  # 8 frames: the nearest-window baseline's unit (the paper's code)
DIVERSITY_PAIRS, DIVERSITY_REPEATS = 1000, 10  # the paper's diversity protocol
SEED = 0

GROUPS = {
    "face": {"expression": schema.FACE_TOKEN_EXPRESSION, "jaw": schema.FACE_TOKEN_JAW},
    "body": {"upper": schema.BODY_TOKEN_UPPER,
             "hands": slice(schema.BODY_TOKEN_LEFT_HAND.start, schema.BODY_TOKEN_RIGHT_HAND.stop)},
}  # fmt: skip


def _moved_joints() -> tuple[np.ndarray, np.ndarray]:
    """(arm joints, finger joints): the tokenized joints whose parent is tokenized too, so
    that the tokenized rotations move them."""
    tokenized = set()
    for name, j in schema.JOINT_INDEX.items():
        try:
            schema.token_joint_slice(name)
            tokenized.add(j)
        except KeyError:
            continue
    moved = sorted(j for j in tokenized if schema.JOINT_PARENTS[j] in tokenized)
    fingers = [j for j in moved if schema.JOINT_NAMES[j].split("_", 1)[-1][:-1] in schema.FINGERS]
    arms = [j for j in moved if j not in fingers]
    return np.array(arms), np.array(fingers)


ARM_JOINTS, FINGER_JOINTS = _moved_joints()
MPJPE_JOINTS = np.concatenate([ARM_JOINTS, FINGER_JOINTS])  # 6 + 30 = 36

# The error metrics every method (model and baselines) gets, in table order.
ERROR_KEYS = {
    "face": ["l1", "l2", "l1_expression", "l2_expression", "l1_jaw", "l2_jaw", "l1_head", "l2_head",
             "velocity_l1", "fd"],  # *_head only for a face tokenizer that reads the head rotation
    "body": ["l1", "l2", "l1_upper", "l2_upper", "l1_hands", "l2_hands", "velocity_l1", "fd",
             "mpjpe", "mpjpe_upper", "mpjpe_hands", "velocity_mpjpe"],
}  # fmt: skip
BASELINES = {"mean_pose": "mean pose", "nearest_window": "nearest window"}


# ---------------------------------------------------------------------------------------
# Running a model
# ---------------------------------------------------------------------------------------
def _run(model, frames: MotionFrames, batch_size: int, device) -> tuple[list[np.ndarray], np.ndarray]:
    """(reconstructions cut at MAX_FRAMES, codes of every real latent step) of all
    utterances, from ``model(x, mask)`` in eval mode without gradients."""
    was_training = getattr(model, "training", False)
    model.eval()
    recons, codes = [], []
    try:
        with torch.no_grad():
            for x, mask in frames.batches(batch_size, MAX_FRAMES):
                out = model(x.to(device), mask.to(device))
                rec = out.recon.detach().float().cpu().numpy()
                n = mask.sum(1).numpy()
                recons += [rec[i, : n[i]].copy() for i in range(len(n))]
                if getattr(out, "codes", None) is not None and getattr(out, "code_mask", None) is not None:
                    codes.append(out.codes[out.code_mask].cpu().numpy())
    finally:
        model.train(was_training)
    return recons, (np.concatenate(codes) if codes else np.zeros(0, np.int64))


def reconstruct(model, frames: MotionFrames, *, batch_size: int = 64, device="cpu") -> list[np.ndarray]:
    """Reconstructions (n_i, D) of every utterance of ``frames``, in VENUS units.

    Utterances are cut at 512 frames as MARS does (compare with :func:`ground_truth`, cut
    the same way). The model runs in eval mode (its training mode is restored after) without
    gradients; inputs are moved to ``device`` (the model must already be there). ``model``
    is anything whose ``model(x, mask).recon`` is (B, T, D), e.g. a :class:`VQVAE`.
    """
    return _run(model, frames, batch_size, device)[0]


def ground_truth(frames: MotionFrames, max_len: int = MAX_FRAMES) -> list[np.ndarray]:
    """Every utterance's frames (n_i, D), cut at ``max_len`` like :func:`reconstruct`."""
    return [frames.utterance(i)[:max_len] for i in range(len(frames))]


def encode_codes(model, frames: MotionFrames, *, batch_size: int = 64, device="cpu") -> np.ndarray:
    """The codes of every real latent step of ``frames`` (one full pass of ``model.encode``), (N,)."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for x, mask in frames.batches(batch_size, MAX_FRAMES):
            codes, cmask = model.encode(x.to(device), mask.to(device))
            out.append(codes[cmask].cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


# ---------------------------------------------------------------------------------------
# Parameter space
# ---------------------------------------------------------------------------------------
def _pair_check(gt, recon) -> tuple[list[np.ndarray], list[np.ndarray]]:
    gt = [np.asarray(g, dtype=np.float64) for g in gt]
    recon = [np.asarray(r, dtype=np.float64) for r in recon]
    if len(gt) != len(recon):
        raise ValueError(f"{len(gt)} ground-truth tracks but {len(recon)} reconstructions")
    for i, (g, r) in enumerate(zip(gt, recon)):
        if g.shape != r.shape or g.ndim != 2:
            raise ValueError(f"utterance {i}: ground truth {g.shape} and reconstruction {r.shape} must be equal (T, D)")
    if not gt or sum(len(g) for g in gt) == 0:
        raise ValueError("no frames to compare")
    return gt, recon


def diversity(tracks, *, pairs: int = DIVERSITY_PAIRS, repeats: int = DIVERSITY_REPEATS, seed: int = SEED) -> float:
    """The paper's Diversity: mean ||F_i - F_j||_2 over ``pairs`` random pairs of the pooled
    frames, averaged over ``repeats`` draws (fixed ``seed``, so two sets of tracks with the
    same lengths are compared on the same pairs). Pairs are drawn with replacement."""
    f = np.concatenate([np.asarray(t, dtype=np.float64) for t in tracks])
    if len(f) < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(f), (repeats, pairs))
    j = rng.integers(0, len(f), (repeats, pairs))
    return float(np.linalg.norm(f[i] - f[j], axis=-1).mean(axis=1).mean())


def variance(tracks) -> float:
    """The paper's Variation: mean over utterances of the per-parameter variance over time,
    averaged over parameters: mean_i mean_d Var_t(F^i_td)."""
    return float(np.mean([np.asarray(t, dtype=np.float64).var(axis=0).mean() for t in tracks if len(t)]))


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b`` (N, D):
    ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 sqrtm(S_a S_b)). ``scipy.linalg.sqrtm``; when its
    result is not finite, ``eps`` is added to both diagonals; a small imaginary part
    (numerical) is dropped, a large one raises. Clamped at 0."""
    from scipy import linalg

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False)) if len(a) > 1 else np.zeros((a.shape[1],) * 2)
    cov_b = np.atleast_2d(np.cov(b, rowvar=False)) if len(b) > 1 else np.zeros((b.shape[1],) * 2)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular covariances are expected (mean pose)
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():
            off = np.eye(len(cov_a)) * eps
            covmean = linalg.sqrtm((cov_a + off) @ (cov_b + off))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3 * max(1.0, np.abs(covmean).max())):
            raise ValueError(f"sqrtm gave a large imaginary part ({np.abs(covmean.imag).max():.3g})")
        covmean = covmean.real
    fd = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean)
    return float(max(fd, 0.0))


def _group_errors(gt: list[np.ndarray], recon: list[np.ndarray], groups: dict[str, slice]) -> dict[str, float]:
    x, y = np.concatenate(gt), np.concatenate(recon)
    d = y - x
    out = {"l1": float(np.abs(d).mean()), "l2": float((d**2).mean())}
    for name, cols in groups.items():
        out[f"l1_{name}"] = float(np.abs(d[:, cols]).mean())
        out[f"l2_{name}"] = float((d[:, cols] ** 2).mean())
    vel = [np.abs(np.diff(r, axis=0) - np.diff(g, axis=0)) for g, r in zip(gt, recon) if len(g) > 1]
    out["velocity_l1"] = float(np.concatenate(vel).mean()) if vel else 0.0
    out["fd"] = frechet_distance(x, y)
    return out


def parameter_metrics(gt, recon, part: str | None = None, *, spread: bool = True) -> dict[str, float]:
    """Parameter-space metrics (module docstring) of lists of (T_i, D) arrays.

    Keys: ``l1``, ``l2``, ``l1_<group>``/``l2_<group>`` (groups of ``part``, "face" or
    "body"; guessed from D = 53 or 56 / 117 when None; face with D = 56 adds ``head``), ``velocity_l1``, ``fd``; with ``spread``
    also ``diversity_gt``, ``diversity_recon``, ``variance_gt``, ``variance_recon``.
    """
    gt, recon = _pair_check(gt, recon)
    D = gt[0].shape[1]
    if part is None:
        part = {schema.FACE_TOKEN_DIM: "face", schema.FACE_TOKEN_DIM + 3: "face", schema.BODY_TOKEN_DIM: "body"}.get(D)
    groups = dict(GROUPS[part]) if part in GROUPS and D in {"face": (53, 56), "body": (117,)}[part] else {}
    if part == "face" and D == 56:
        groups["head"] = HEAD  # a face tokenizer that reads the head rotation too
    out = _group_errors(gt, recon, groups)
    if spread:
        out.update(diversity_gt=diversity(gt), diversity_recon=diversity(recon),
                   variance_gt=variance(gt), variance_recon=variance(recon))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------
# Joint space (body)
# ---------------------------------------------------------------------------------------
def joint_positions(tracks) -> np.ndarray:
    """(sum T_i, 36, 3) positions of MPJPE_JOINTS (package skeleton, metres) of all frames of
    a list of (T_i, 117) tracks, in order. Forward kinematics runs track by track: its
    (T, 55, 3, 3) rotations then stay in the CPU's cache (all 44k frames of the demo's test
    split in one pass take 3.8 s, track by track 0.8 s)."""
    frames = [np.asarray(t, dtype=np.float64) for t in tracks]
    if sum(len(f) for f in frames) == 0:
        return np.zeros((0, len(MPJPE_JOINTS), 3))
    return np.concatenate([mf.joints_from_body(f)[:, MPJPE_JOINTS] for f in frames if len(f)])


def joint_metrics(gt, recon, *, gt_joints: np.ndarray | None = None, recon_joints: np.ndarray | None = None) -> dict[str, float]:
    """Joint-space metrics of (T_i, 117) body tracks: ``mpjpe``, ``mpjpe_upper``,
    ``mpjpe_hands`` (metres) and ``velocity_mpjpe`` (metres per frame); see the module
    docstring for the joints and the formulas. ``gt_joints`` / ``recon_joints``: their
    :func:`joint_positions`, when already computed (``evaluate`` scores three sets of tracks
    against one ground truth)."""
    gt, recon = _pair_check(gt, recon)
    if gt[0].shape[1] != schema.BODY_TOKEN_DIM:
        raise ValueError(f"joint metrics take (T, {schema.BODY_TOKEN_DIM}) body tracks; got {gt[0].shape[1]} columns")
    pg = joint_positions(gt) if gt_joints is None else gt_joints
    pr = joint_positions(recon) if recon_joints is None else recon_joints
    n = sum(len(g) for g in gt)
    if pg.shape != (n, len(MPJPE_JOINTS), 3) or pr.shape != pg.shape:
        raise ValueError(f"joint positions must be ({n}, {len(MPJPE_JOINTS)}, 3); got {pg.shape} and {pr.shape}")
    err = pr - pg  # (N, 36, 3), frames of all utterances in order
    dist = np.linalg.norm(err, axis=-1)  # (N, 36)
    # velocity error: (P^Y_t - P^Y_{t-1}) - (P^X_t - P^X_{t-1}) = err_t - err_{t-1}, inside each
    # utterance: the differences across the boundary between two utterances are left out
    inside = np.ones(max(n - 1, 0), bool)
    inside[np.cumsum([len(g) for g in gt])[:-1] - 1] = False
    vel = np.linalg.norm(np.diff(err, axis=0)[inside], axis=-1)
    n_arm = len(ARM_JOINTS)
    return {
        "mpjpe": float(dist.mean()),
        "mpjpe_upper": float(dist[:, :n_arm].mean()),
        "mpjpe_hands": float(dist[:, n_arm:].mean()),
        "velocity_mpjpe": float(vel.mean()) if len(vel) else 0.0,
    }


def error_metrics(gt, recon, part: str, **joints) -> dict[str, float]:
    """The error metrics of :data:`ERROR_KEYS` for ``part`` (parameter space, plus joint
    space for the body): what the model and every baseline are scored on. ``joints``:
    :func:`joint_metrics`' precomputed positions, if any."""
    out = parameter_metrics(gt, recon, part, spread=False)
    if part == "body":
        out.update(joint_metrics(gt, recon, **joints))
    return out


# ---------------------------------------------------------------------------------------
# Codebook
# ---------------------------------------------------------------------------------------
def codebook_stats(codes, codebook_size: int) -> dict[str, float]:
    """``codebook_usage`` (share of the K codes used at least once), ``perplexity``
    (exp of the entropy of code use, natural log) and ``dead_codes`` (codes never used) of
    an array of code indices; negative codes (padding) are ignored."""
    codes = np.asarray(codes).reshape(-1)
    codes = codes[codes >= 0].astype(np.int64)
    if len(codes) and codes.max() >= codebook_size:
        raise ValueError(f"code {codes.max()} is outside a codebook of {codebook_size}")
    counts = np.bincount(codes, minlength=codebook_size)
    used = int((counts > 0).sum())
    p = counts[counts > 0] / max(len(codes), 1)
    return {
        "codebook_usage": used / codebook_size,
        "perplexity": float(np.exp(-(p * np.log(p)).sum())) if len(codes) else 0.0,
        "dead_codes": float(codebook_size - used),
    }


# ---------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------
def mean_pose_baseline(gt, mean_frame) -> list[np.ndarray]:
    """Every frame replaced by ``mean_frame`` (D,), the training mean."""
    m = np.asarray(mean_frame, dtype=np.float64).reshape(-1)
    return [np.broadcast_to(m, np.shape(g)).copy() for g in gt]


def _windows(track: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping w-frame windows covering ``track`` ((k, w, D), their starts): the last
    window ends at the track's end (overlapping the previous one when T is not a multiple of
    w); a track shorter than w is padded by repeating its last frame."""
    if len(track) < w:
        track = np.concatenate([track, np.repeat(track[-1:], w - len(track), axis=0)])
    starts = list(range(0, len(track) - w + 1, w))
    if starts[-1] + w < len(track):
        starts.append(len(track) - w)
    return np.stack([track[s : s + w] for s in starts]), np.array(starts)


def nearest_window_baseline(gt, train: MotionFrames, mean, std, *, window: int = WINDOW,
                            max_train_windows: int = 20_000, chunk: int = 1024, seed: int = SEED) -> list[np.ndarray]:
    """Every ``window``-frame window of every test track replaced by its nearest training window.

    Training windows are all ``window``-frame windows inside training utterances (stride 1),
    subsampled at random (``seed``) to at most ``max_train_windows`` so the search stays
    cheap (the baseline is then a bit weaker than a search over all windows). Test tracks
    are cut into consecutive windows (the last one aligned to the track's end). Distances
    are Euclidean over the flattened window in normalised units ((x - mean) / std, the
    model's normalisation), computed with ``torch.cdist`` on chunks of ``chunk`` test
    windows. It is a "codebook" of up to 20k real 8-frame clips: a strong baseline that a
    K-code tokenizer has to approach, not necessarily beat.
    """
    mean = np.asarray(mean, dtype=np.float32).reshape(-1)
    std = np.maximum(np.asarray(std, dtype=np.float32).reshape(-1), 1e-3)
    valid = [np.arange(s, s + n - window + 1) for s, n in zip(train.starts, train.lengths) if n >= window]
    valid = np.concatenate(valid) if valid else np.zeros(0, np.int64)
    if len(valid) == 0:
        raise ValueError(f"no training utterance has {window} frames for the nearest-window baseline")
    if len(valid) > max_train_windows:
        valid = np.sort(np.random.default_rng(seed).choice(valid, max_train_windows, replace=False))
    bank_raw = train.frames[valid[:, None] + np.arange(window)[None, :]]  # (M, w, D) VENUS units
    bank = torch.from_numpy(((bank_raw - mean) / std).reshape(len(valid), -1).astype(np.float32))
    pieces = [_windows(np.asarray(g, dtype=np.float32), window) for g in gt]
    queries = np.concatenate([p[0] for p in pieces])
    q = torch.from_numpy(((queries - mean) / std).reshape(len(queries), -1).astype(np.float32))
    nearest = np.concatenate([torch.cdist(q[i : i + chunk], bank).argmin(1).numpy() for i in range(0, len(q), chunk)])
    out, k = [], 0
    for g, (wins, starts) in zip(gt, pieces):
        pred = np.zeros((max(len(g), window), bank_raw.shape[-1]), np.float64)
        for s in starts:  # later windows overwrite the overlap of the last one: fine either way
            pred[s : s + window] = bank_raw[nearest[k]]
            k += 1
        out.append(pred[: len(g)])
    return out


# ---------------------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------------------
def evaluate(model, test: MotionFrames, train: MotionFrames | None = None, *, batch_size: int = 64) -> dict[str, float]:
    """All metrics of a tokenizer on the ``test`` utterances, as one flat dict of floats.

    Model: the error metrics of :data:`ERROR_KEYS` (``l1``, ``l2``, per-group ``l1_*`` /
    ``l2_*``, ``velocity_l1``, ``fd``; body also ``mpjpe``, ``mpjpe_upper``,
    ``mpjpe_hands``, ``velocity_mpjpe``), ``diversity_gt`` / ``diversity_recon``,
    ``variance_gt`` / ``variance_recon``, and the codebook's ``codebook_usage``,
    ``perplexity``, ``dead_codes`` (from the codes of the same pass, equal to a pass of
    ``encode``). Baselines: the same error keys prefixed ``mean_pose_`` (the mean frame of
    ``train``, or the model's normalisation mean when ``train`` is None) and, when ``train``
    is given, ``nearest_window_`` (:func:`nearest_window_baseline`). Utterances are cut at
    512 frames; the model's device is used and its training mode restored.
    """
    part = model.cfg.part
    if test.part != part:
        raise ValueError(f"the model is the {part} tokenizer but the test frames are {test.part!r}")
    if len(test) == 0:
        raise ValueError("no test utterances to evaluate on")
    if train is not None and train.part != part:
        raise ValueError(f"the model is the {part} tokenizer but the training frames are {train.part!r}")
    recon, codes = _run(model, test, batch_size, device_of(model))
    gt = ground_truth(test)
    out = parameter_metrics(gt, recon, part)
    body = part == "body"
    gt_joints = {"gt_joints": joint_positions(gt)} if body else {}  # the ground truth's joints, once
    if body:
        out.update(joint_metrics(gt, recon, **gt_joints))
    out.update(codebook_stats(codes, model.cfg.codebook_size))
    mean = train.normalization()[0] if train is not None else model.mean.detach().cpu().numpy()
    # the mean pose's joints: one frame's, the same for every frame
    still = {"recon_joints": np.broadcast_to(joint_positions([mean[None]]), gt_joints["gt_joints"].shape)} if body else {}
    for k, v in error_metrics(gt, mean_pose_baseline(gt, mean), part, **gt_joints, **still).items():
        out[f"mean_pose_{k}"] = v
    if train is not None:
        m, s = model.mean.detach().cpu().numpy(), model.std.detach().cpu().numpy()
        nearest = nearest_window_baseline(gt, train, m, s, window=model.cfg.frames_per_token)
        for k, v in error_metrics(gt, nearest, part, **gt_joints).items():
            out[f"nearest_window_{k}"] = v
    return {k: float(v) for k, v in out.items()}


def format_metrics(metrics: dict) -> str:
    """A plain-text table: one row per error metric, columns model | mean pose | nearest
    window ("-" where absent); then diversity and variance (GT vs reconstruction) and the
    codebook figures."""
    order = ERROR_KEYS["face"][:8] + ERROR_KEYS["body"][2:6] + ERROR_KEYS["body"][6:]  # groups, then the rest
    names = [k for k in order if k in metrics or any(f"{b}_{k}" in metrics for b in BASELINES)]

    def cell(key):
        v = metrics.get(key)
        return "-" if v is None else f"{v:.4g}"

    header = ["metric", "model", *BASELINES.values()]
    rows = [[k, cell(k), *(cell(f"{b}_{k}") for b in BASELINES)] for k in names]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    lines = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    spread = [(n, metrics.get(f"{n}_gt"), metrics.get(f"{n}_recon")) for n in ("diversity", "variance")]
    for n, g, r in spread:
        if g is not None or r is not None:
            lines.append(f"{n}: ground truth {cell(f'{n}_gt')}, reconstruction {cell(f'{n}_recon')}")
    if "codebook_usage" in metrics:
        lines.append(f"codebook: usage {metrics['codebook_usage']:.1%}, perplexity {cell('perplexity')}, "
                     f"dead codes {cell('dead_codes')}")  # fmt: skip
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Cue survival
# ---------------------------------------------------------------------------------------
CUE_PART = {"smile": "face", "frown": "face", "jaw_open": "face", "hand_to_face": "body",
            "hand_raised": "body", "gesture": "body", "nod": "head", "head_shake": "head"}  # fmt: skip


def _cut(utt: extraction.UtteranceArrays, n: int) -> extraction.UtteranceArrays:
    def c(a):
        return None if a is None else np.array(a[:n])

    return dataclasses.replace(utt, frames=c(utt.frames), face=c(utt.face), body=c(utt.body),
                               head_rotation=c(utt.head_rotation), face_full=c(utt.face_full),
                               body_full=c(utt.body_full))  # fmt: skip


def _motion(part: str, tracks: list[np.ndarray]) -> MotionFrames:
    lengths = np.array([len(t) for t in tracks], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return MotionFrames(part, np.concatenate(tracks).astype(np.float32), starts, lengths, list(range(len(tracks))))


def _with_recon(utt: extraction.UtteranceArrays, face, body) -> extraction.UtteranceArrays:
    """``utt`` with its tokenizer columns replaced by the reconstructed ones (None: kept)."""
    new = {}
    if face is not None:
        new["face"] = face[:, : schema.FACE_TOKEN_DIM].astype(np.float32)
        head = face[:, HEAD] if face.shape[1] > schema.FACE_TOKEN_DIM else None  # tokenized too
        if head is not None:
            new["head_rotation"] = head.astype(np.float32)
        if utt.face_full is not None:
            full = utt.face_full.copy()
            lay = schema.face_layout_for(full.shape[1])
            full[:, lay.expression] = face[:, schema.FACE_TOKEN_EXPRESSION]
            full[:, lay.jaw] = face[:, schema.FACE_TOKEN_JAW]
            if head is not None and lay.head_rotation is not None:
                full[:, lay.head_rotation] = head
            new["face_full"] = full
    if body is not None:
        new["body"] = body.astype(np.float32)
        if "head_rotation" not in new and utt.head_rotation is not None:
            # The paper's body tokens carry the SMPL-X head joint: the face's head rotation
            # is the head and neck joints together, so swap in the reconstructed head part.
            h = schema.token_joint_slice("head")
            new["head_rotation"] = (utt.head_rotation - utt.body[:, h] + body[:, h]).astype(np.float32)
        if utt.body_full is not None:
            full = utt.body_full.copy()
            full[:, schema.BODY_TOKEN_SLICE] = body
            new["body_full"] = full
    return dataclasses.replace(utt, **new)


def _overlapping(a, b) -> int:
    """How many events of ``a`` overlap (share at least one frame with) an event of ``b``."""
    return sum(any(x.start_frame < y.end_frame and y.start_frame < x.end_frame for y in b) for x in a)


def cue_agreement(model_face, model_body, data_split, *, max_utterances: int = 200, batch_size: int = 64,
                  thresholds: cue_lib.CueThresholds | None = None) -> pd.DataFrame:
    """Do the planted cues survive reconstruction? One row per active cue.

    The first ``max_utterances`` utterances (>= 8 frames, cut at 512) of ``data_split`` are
    read with their full tracks; the reconstruction copy has the face tokenizer columns
    (expression 0:50 and jaw 53:56 of the 156 layout) and the body's 39:156 replaced by the
    tokenizers' outputs (and the head rotation, when the face tokenizer reads it), everything
    else (lower body, and the head for a paper-style face tokenizer) from the ground truth.
    ``model_face`` / ``model_body`` may be None: that part stays ground truth.
    :func:`venus_analysis.cues.detect_cues` runs on both.

    Columns: ``cue``; ``part`` ("face", "body" or "head"); ``reconstructed`` (whether the
    cue's track went through a tokenizer here); ``gt_events``, ``recon_events``;
    ``gt_matched`` = share of GT events overlapped by a reconstructed event of the same cue
    (the agreement; NaN without GT events); ``recon_matched`` = share of reconstructed
    events overlapped by a GT event (NaN without any). ``nod`` and ``head_shake`` come last
    (``part="head"``): they read the head rotation, which goes through the face tokenizer
    when it reads it, and otherwise through the body tokenizer's SMPL-X head joint (the
    paper's layout: the reconstruction's head rotation is the ground truth's with the head
    joint's share swapped for the reconstructed one; the neck's share is not tokenized).
    """
    opts = input_options(getattr(model_face, "cfg", None))  # what the face tokenizer reads
    utts, refs = [], []
    stream = extraction.iter_utterances(data_split, smooth=True, full=True, min_frames=1, progress=False)
    for segment in segments_of(stream):
        # resting faces, for a face tokenizer that leaves them out
        by_speaker = speaker_references(segment, opts["head_rotation"])
        for utt in segment:
            if len(utt.frames) >= WINDOW and len(utts) < max_utterances:
                utts.append(_cut(utt, MAX_FRAMES))
                refs.append(by_speaker[utt.speaker])
        if len(utts) >= max_utterances:
            break
    if not utts:
        raise ValueError("no utterance with at least 8 frames in the data")
    face_rec = body_rec = [None] * len(utts)
    if model_face is not None:
        tracks = [utterance_track(u, "face", opts["head_rotation"]) for u in utts]
        if opts["reference"] != "speaker":
            refs = [np.zeros(t.shape[1], np.float32) for t in tracks]
        face_rec = reconstruct(model_face, _motion("face", [t - r for t, r in zip(tracks, refs)]),
                               batch_size=batch_size, device=device_of(model_face))  # fmt: skip
        face_rec = [f + r for f, r in zip(face_rec, refs)]  # back in VENUS units
    if model_body is not None:
        body_rec = reconstruct(model_body, _motion("body", [u.body for u in utts]), batch_size=batch_size,
                               device=device_of(model_body))  # fmt: skip
    active = cue_lib.active_cues(thresholds)
    order = [c for c in active if CUE_PART[c] != "head"] + [c for c in active if CUE_PART[c] == "head"]
    tally = {c: [0, 0, 0, 0] for c in order}  # gt events, recon events, gt matched, recon matched
    for utt, f, b in zip(utts, face_rec, body_rec):
        ev_gt = cue_lib.detect_cues(utt, thresholds=thresholds)
        ev_rec = cue_lib.detect_cues(_with_recon(utt, f, b), thresholds=thresholds)
        for c in order:
            g = [e for e in ev_gt if e.cue == c]
            r = [e for e in ev_rec if e.cue == c]
            t = tally[c]
            t[0] += len(g)
            t[1] += len(r)
            t[2] += _overlapping(g, r)
            t[3] += _overlapping(r, g)
    models = {"face": model_face, "body": model_body, "head": model_face if opts["head_rotation"] else model_body}
    rows = [{"cue": c, "part": CUE_PART[c], "reconstructed": models[CUE_PART[c]] is not None,
             "gt_events": g, "recon_events": r,
             "gt_matched": gm / g if g else math.nan, "recon_matched": rm / r if r else math.nan}
            for c, (g, r, gm, rm) in tally.items()]  # fmt: skip
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# Vertex metrics (licensed models, optional)
# ---------------------------------------------------------------------------------------
def vertex_metrics(gt_body, recon_body, smplx_body, *, window: int = schema.FPS,
                   max_frames: int | None = None) -> dict[str, float]:
    """The paper's vertex metrics through a real body model.

    ``smplx_body`` is a ``venus_analysis.body_models.SmplxBody`` (for (T, 117) or (T, 179)
    body tracks) or anything with ``.vertices(track) -> (T, V, 3)`` in metres, e.g. a
    ``FlameFace`` for (T, 53) face tracks. ``gt_body`` / ``recon_body``: one (T, D) array or
    lists of them. With V_t, W_t the GT and reconstructed vertices of frame t:

    - ``vmse`` = mean_{t, v} ||W_tv - V_tv||^2 (m^2)
    - ``lvd``  = mean_{t, v} ||W_tv - V_tv||_1 (m; the L1 norm of the 3-D difference)
    - ``windowed_vertex_l2`` = mean over ``window``-frame windows (25 = 1 s, consecutive
      inside each utterance, the last one possibly shorter) of mean_{t in window, v}
      ||W_tv - V_tv||_2 (m)

    The paper does not state its units or scaling, so these numbers are not comparable to
    its table. ``max_frames`` caps the frames meshed (the first ones of the list).
    """
    gt = [gt_body] if isinstance(gt_body, np.ndarray) and np.ndim(gt_body) == 2 else list(gt_body)
    rec = [recon_body] if isinstance(recon_body, np.ndarray) and np.ndim(recon_body) == 2 else list(recon_body)
    gt, rec = _pair_check(gt, rec)
    sq, l1, win = [], [], []
    left = max_frames if max_frames is not None else sum(len(g) for g in gt)
    for g, r in zip(gt, rec):
        if left <= 0:
            break
        g, r = g[:left], r[:left]
        left -= len(g)
        d = np.asarray(smplx_body.vertices(r), np.float64) - np.asarray(smplx_body.vertices(g), np.float64)
        sq.append((d**2).sum(-1).mean(1))  # (T,) per-frame mean over vertices
        l1.append(np.abs(d).sum(-1).mean(1))
        e = np.linalg.norm(d, axis=-1).mean(1)
        win += [e[s : s + window].mean() for s in range(0, len(e), window)]
    return {"vmse": float(np.concatenate(sq).mean()), "lvd": float(np.concatenate(l1).mean()),
            "windowed_vertex_l2": float(np.mean(win))}  # fmt: skip


__all__ = [
    "reconstruct", "ground_truth", "encode_codes", "parameter_metrics", "joint_metrics", "error_metrics",
    "diversity", "variance", "frechet_distance", "codebook_stats", "mean_pose_baseline",
    "nearest_window_baseline", "evaluate", "format_metrics", "cue_agreement", "vertex_metrics",
    "MPJPE_JOINTS", "ERROR_KEYS",
]  # fmt: skip
