"""The face and body tokenizers: a 1-D convolutional VQ-VAE with an EMA codebook.

MARS turns a motion track (T frames x D parameters) into T/8 discrete codes, so that a
language model can read and write motion as tokens ``<FACE_k>`` / ``<BODY_k>``. The design
follows the paper (after MoMask):

    x (B, T, D) --normalise--> encoder --> z_e (B, d, T/8) --quantise--> z_q --> decoder --> x_hat

- the **encoder** is a stack of 1-D convolutions over time: an input projection, then
  ``down`` blocks that each halve the frame rate (stride-2 convolution) and mix context
  with a dilated residual stack (dilations 1, 3, 9), then a projection to the code
  dimension d. Three halvings: one code per 8 frames (0.32 s at 25 fps);
- the **quantiser** replaces every latent vector by its nearest codebook vector (L2), and
  learns the codebook by exponential moving averages of the vectors assigned to each code
  (no gradient), resetting codes nobody uses to current encoder outputs;
- the **decoder** mirrors the encoder with nearest-neighbour upsampling.

Masking: utterances have different lengths, so batches are padded. Padded frames must not
teach anything: they are left out of the reconstruction and velocity losses, and their
latent steps (a step is real when any of its 8 frames is) are left out of the codebook's
EMA statistics, the commitment loss and the usage counts. (The released code passes a
``mask`` its quantiser does not accept, and builds the latent mask with a Python loop; here
it is one reshape.)

Inputs are in VENUS units; the model normalises them with per-column statistics set from
the training data (:meth:`VQVAE.set_normalization`), saved with the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from venus_analysis import schema

from .config import VQConfig

def column_weights(cfg: VQConfig) -> torch.Tensor:
    """(D,) loss weight of every input column: the jaw weighs ``jaw_weight`` in the face
    (its 3 columns carry speech), the head rotation ``head_weight`` (when tokenized); the
    hands ``hands_weight`` against the upper body, the SMPL-X head joint ``body_head_weight``."""
    w = torch.ones(cfg.in_dim)
    if cfg.part == "face":
        w[schema.FACE_TOKEN_JAW] = cfg.jaw_weight
        w[schema.FACE_TOKEN_DIM :] = cfg.head_weight  # the head rotation, when tokenized (columns 53:56)
    else:
        w[schema.BODY_TOKEN_LEFT_HAND.start : schema.BODY_TOKEN_RIGHT_HAND.stop] = cfg.hands_weight
        w[schema.token_joint_slice("head")] = cfg.body_head_weight  # the head joint: nods and head shakes
    return w


def latent_mask(mask: torch.Tensor, frames_per_token: int) -> torch.Tensor:
    """(B, T) frame mask -> (B, T / frames_per_token) latent mask: a latent step is real when
    any of its frames is. T must be a multiple of frames_per_token (pad first)."""
    B, T = mask.shape
    return mask.view(B, T // frames_per_token, frames_per_token).any(dim=-1)


# ---------------------------------------------------------------------------------------
# Encoder and decoder
# ---------------------------------------------------------------------------------------
class ResBlock(nn.Module):
    """x + W2 relu(W1_dilated relu(x)): a residual block that sees ``3 dilation`` frames
    around each step without changing the length."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)  # 3 taps, `dilation` apart
        self.mix = nn.Conv1d(width, width, 1)  # 1x1: mixes channels only

    def forward(self, x):
        return x + self.mix(F.relu(self.conv(F.relu(x))))


def res_stack(width: int, dilations) -> nn.Sequential:
    """Residual blocks with the given dilations (1, 3, 9: receptive field grows to 27 steps)."""
    return nn.Sequential(*[ResBlock(width, d) for d in dilations])


class Encoder(nn.Module):
    """(B, D, T) -> (B, d, T / 2**down)."""

    def __init__(self, in_dim: int, cfg: VQConfig):
        super().__init__()
        layers = [nn.Conv1d(in_dim, cfg.width, 3, padding=1), nn.ReLU()]
        for _ in range(cfg.down):
            # kernel 4, stride 2, padding 1: exactly halves an even length
            layers += [nn.Conv1d(cfg.width, cfg.width, 4, stride=2, padding=1), res_stack(cfg.width, cfg.dilations)]
        layers += [nn.Conv1d(cfg.width, cfg.code_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """(B, d, L) -> (B, D, L * 2**down), the encoder in mirror."""

    def __init__(self, out_dim: int, cfg: VQConfig):
        super().__init__()
        layers = [nn.Conv1d(cfg.code_dim, cfg.width, 3, padding=1), nn.ReLU()]
        for _ in range(cfg.down):
            layers += [res_stack(cfg.width, tuple(reversed(cfg.dilations))),
                       nn.Upsample(scale_factor=2, mode="nearest"),  # repeat every step twice ...
                       nn.Conv1d(cfg.width, cfg.width, 3, padding=1)]  # ... then smooth the repeats  # fmt: skip
        layers += [nn.Conv1d(cfg.width, cfg.width, 3, padding=1), nn.ReLU(), nn.Conv1d(cfg.width, out_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


# ---------------------------------------------------------------------------------------
# The quantiser
# ---------------------------------------------------------------------------------------
@dataclass
class Quantized:
    """What :class:`EMAQuantizer` returns for a batch of N latent vectors."""

    z_q: torch.Tensor  # (N, d) straight-through: the value of z_q, the gradient of z_e
    codes: torch.Tensor  # (N,) long, index of the nearest code
    commitment: torch.Tensor  # scalar: mean ||z_e - sg(z_q)||^2 over real vectors
    counts: torch.Tensor  # (K,) how many real vectors chose each code
    perplexity: torch.Tensor  # exp(entropy of code use): K if all codes equally used, 1 if one


class EMAQuantizer(nn.Module):
    """Nearest-neighbour vector quantisation with an exponential-moving-average codebook."""

    def __init__(self, K: int, dim: int, decay: float = 0.99, dead_threshold: float = 1.0, eps: float = 1e-5):
        super().__init__()
        self.K, self.dim, self.decay, self.dead_threshold, self.eps = K, dim, decay, dead_threshold, eps
        self.register_buffer("codebook", torch.zeros(K, dim))
        self.register_buffer("ema_count", torch.zeros(K))  # N_k: running number of vectors per code
        self.register_buffer("ema_sum", torch.zeros(K, dim))  # m_k: running sum of those vectors
        self.register_buffer("initialized", torch.tensor(False))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N,) index of the nearest code by L2."""
        # ||z - c||^2 = ||z||^2 - 2 z.c + ||c||^2; the ||z||^2 term is the same for every code
        dist = self.codebook.pow(2).sum(1)[None, :] - 2 * z @ self.codebook.t()
        return dist.argmin(dim=1)

    @torch.no_grad()
    def _init_from(self, z: torch.Tensor) -> None:
        """First batch: codes start at K random encoder outputs (repeated, jittered if fewer)."""
        idx = torch.randint(len(z), (self.K,), device=z.device) if len(z) < self.K else torch.randperm(len(z), device=z.device)[: self.K]
        start = z[idx] + (0.01 * z.std() * torch.randn_like(z[idx]) if len(z) < self.K else 0.0)
        self.codebook.copy_(start)
        self.ema_sum.copy_(start)
        self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, onehot: torch.Tensor) -> None:
        """One EMA step of the codebook from the real vectors z (N, d) and their codes."""
        counts, sums = onehot.sum(0), onehot.t() @ z  # n_k and the sum of vectors assigned to k
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)  # N_k <- g N_k + (1-g) n_k
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)  # m_k <- g m_k + (1-g) sum_k
        n = self.ema_count.sum()
        # Laplace smoothing keeps N_k > 0, so an unused code's vector is not divided by zero
        smoothed = (self.ema_count + self.eps) / (n + self.K * self.eps) * n
        self.codebook.copy_(self.ema_sum / smoothed[:, None])  # c_k = m_k / N_k: the mean of its vectors
        # Dead codes (almost never chosen lately) restart at random current encoder outputs,
        # so that all K codes keep being useful.
        dead = self.ema_count < self.dead_threshold
        if dead.any():
            pick = z[torch.randint(len(z), (int(dead.sum()),), device=z.device)]
            self.codebook[dead] = pick
            self.ema_sum[dead] = pick
            self.ema_count[dead] = 1.0

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> Quantized:
        """Quantise (N, d) latent vectors; only rows where ``mask`` is True count."""
        mask = torch.ones(len(z), dtype=torch.bool, device=z.device) if mask is None else mask
        real = z[mask].detach()
        if self.training and not bool(self.initialized) and len(real):
            self._init_from(real)
        codes = self.nearest(z.detach())
        z_q = self.codebook[codes]
        onehot = F.one_hot(codes[mask], self.K).to(z.dtype)
        if self.training and len(real):
            self._ema_update(real, onehot)
        counts = onehot.sum(0)
        p = counts / counts.sum().clamp(min=1)
        perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum())
        # commitment: pull the encoder towards its chosen code (the codebook moves by EMA)
        diff = (z - z_q.detach()).pow(2).mean(dim=1)
        commitment = (diff * mask).sum() / mask.sum().clamp(min=1)
        z_q = z + (z_q - z).detach()  # straight-through: forward uses z_q, backward copies dL/dz_q to z
        return Quantized(z_q, codes, commitment, counts.detach(), perplexity.detach())


# ---------------------------------------------------------------------------------------
# The VQ-VAE
# ---------------------------------------------------------------------------------------
@dataclass
class VQOutput:
    """Result of :meth:`VQVAE.forward`: the reconstruction (VENUS units), codes, the losses."""

    recon: torch.Tensor  # (B, T, D)
    codes: torch.Tensor  # (B, L) long, L = T / frames_per_token
    code_mask: torch.Tensor  # (B, L) bool
    loss: torch.Tensor  # scalar: recon + velocity_weight * velocity + commitment * commit
    losses: dict  # float parts: recon, velocity, commitment, perplexity


class VQVAE(nn.Module):
    """A face or body tokenizer: ``forward`` for training, ``encode`` / ``decode`` for use."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.in_dim
        self.encoder, self.decoder = Encoder(D, cfg), Decoder(D, cfg)
        self.quantizer = EMAQuantizer(cfg.codebook_size, cfg.code_dim, cfg.ema_decay, cfg.dead_code_threshold)
        self.register_buffer("mean", torch.zeros(D))
        self.register_buffer("std", torch.ones(D))
        self.register_buffer("weights", column_weights(cfg))

    @property
    def in_dim(self) -> int:
        """Parameters per frame (53 or 56 face, 117 body; ``VQConfig.in_dim``)."""
        return self.cfg.in_dim

    def set_normalization(self, mean, std) -> None:
        """Per-column mean and standard deviation of the training frames (std floored at 1e-3)."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-3))

    def _check(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate shapes; pad T up to a multiple of frames_per_token (padding is masked)."""
        if x.ndim != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"{self.cfg.part} tokenizer: expected (batch, frames, {self.in_dim}); got {tuple(x.shape)}")
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match (batch, frames) = {tuple(x.shape[:2])}")
        pad = -x.shape[1] % self.cfg.frames_per_token
        if pad:
            x, mask = F.pad(x, (0, 0, 0, pad)), F.pad(mask, (0, pad))
        return x, mask.bool()

    def _quantize(self, x: torch.Tensor, mask: torch.Tensor):
        """Normalise, encode, quantise: (z_q (B, d, L), Quantized, latent mask (B, L))."""
        # padded frames become exactly 0 after normalising, so whatever the padding holds, the
        # convolutions near an utterance's end see the same input
        x = (x - self.mean) / self.std * mask[..., None]
        z = self.encoder(x.transpose(1, 2))  # (B, d, L)
        B, d, L = z.shape
        lmask = latent_mask(mask, self.cfg.frames_per_token)
        q = self.quantizer(z.transpose(1, 2).reshape(B * L, d), lmask.reshape(-1))
        return q.z_q.view(B, L, d).transpose(1, 2), q, lmask

    def _masked_l(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Column-weighted reconstruction distance over real frames (l1, smooth-l1 or l2)."""
        kind = self.cfg.recon_loss
        err = (a - b).abs() if kind == "l1" else F.smooth_l1_loss(a, b, reduction="none") if kind == "smooth_l1" else (a - b).pow(2)
        per_frame = (err * self.weights).sum(-1) / self.weights.sum()  # weighted mean over columns
        return (per_frame * mask).sum() / mask.sum().clamp(min=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> VQOutput:
        """Reconstruct a padded batch (B, T, D) in VENUS units; ``mask`` (B, T) marks real frames."""
        T = x.shape[1]
        x, mask = self._check(x, mask)
        z_q, q, lmask = self._quantize(x, mask)
        x_hat = self.decoder(z_q).transpose(1, 2)  # normalised units
        target = (x - self.mean) / self.std
        recon = self._masked_l(x_hat, target, mask)
        # velocity: differences of consecutive frames, only where both frames are real
        both = mask[:, 1:] & mask[:, :-1]
        velocity = self._masked_l(x_hat[:, 1:] - x_hat[:, :-1], target[:, 1:] - target[:, :-1], both)
        loss = recon + self.cfg.velocity_weight * velocity + self.cfg.commitment * q.commitment
        B, L = lmask.shape
        out = x_hat * self.std + self.mean
        return VQOutput(out[:, :T], q.codes.view(B, L), lmask, loss,
                        {"recon": recon.item(), "velocity": velocity.item(), "commitment": q.commitment.item(),
                         "perplexity": q.perplexity.item()})  # fmt: skip

    @torch.no_grad()
    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) tracks -> (codes (B, L) long, code mask (B, L) bool), L = ceil(T / 8).
        Padded steps get code -1."""
        x, mask = self._check(x, mask)
        _, q, lmask = self._quantize(x, mask)
        codes = q.codes.view(lmask.shape)
        return codes.masked_fill(~lmask, -1), lmask

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, L) codes -> (B, L * 8, D) tracks in VENUS units (codes < 0 decode as code 0)."""
        if codes.ndim != 2:
            raise ValueError(f"codes must be (batch, steps); got {tuple(codes.shape)}")
        if int(codes.max()) >= self.cfg.codebook_size:
            raise ValueError(f"code {int(codes.max())} is outside the codebook of {self.cfg.codebook_size}")
        z_q = self.quantizer.codebook[codes.clamp(min=0)].transpose(1, 2)  # (B, d, L)
        return self.decoder(z_q).transpose(1, 2) * self.std + self.mean


def device_of(module) -> torch.device:
    """The device of a module's first parameter (the CPU for anything without parameters)."""
    p = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
    return p.device if p is not None else torch.device("cpu")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
