"""The one configuration system: dataclasses, and presets of them by name.

Every model and training knob of mini_mars lives in a frozen dataclass here. A *preset*
bundles them at one size:

==============  =========================================================================
preset          meant for
==============  =========================================================================
``smoke``       CI and tests: trains for seconds, learns nothing much
``cpu-mini``    the default: the biggest tokenizer that trains well in about a minute per
                part on 2 CPU cores (width 128, K 256, ~1.7 M parameters)
``gpu-small``   a Colab T4: the paper's width, fewer steps
``paper``       the paper's settings (width 512, K 512, code dim 8 face / 16 body,
                lr 1e-4, AdamW weight decay 0.1, clip 1.0, 10 % warm-up, x0.1 at 50 %
                and x0.01 at 75 % of steps)
==============  =========================================================================

``preset("cpu-mini").vq("face")`` is the face tokenizer's :class:`VQConfig`;
``dataclasses.replace`` overrides single fields. Configs go to and from JSON with
:func:`to_dict` / :func:`from_dict` (they are saved next to every checkpoint).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

PARTS = ("face", "body")


@dataclass(frozen=True)
class VQConfig:
    """One VQ-VAE tokenizer (MoMask-style 1-D convolutions, after the MARS paper)."""

    part: str = "face"  # "face" (53 = expression 50 + jaw 3) or "body" (117 = upper body + hands)
    width: int = 128  # channels of every convolution
    down: int = 3  # stride-2 down blocks: one token per 2**down frames (8 = 0.32 s at 25 fps)
    dilations: tuple[int, ...] = (1, 3, 9)  # dilated residual stack after each down block
    codebook_size: int = 256  # K
    code_dim: int = 8  # dimension of a code vector (paper: 8 face, 16 body)
    ema_decay: float = 0.99  # codebook EMA decay
    dead_code_threshold: float = 1.0  # a code used less than this (EMA count) is reset
    commitment: float = 0.02  # beta: weight of ||z_e - sg(z_q)||
    recon_loss: str = "l1"  # "l1", "smooth_l1" or "l2" (the paper's ablation)
    velocity_weight: float = 0.5  # weight of the velocity (frame difference) loss
    jaw_weight: float = 5.0  # face: jaw columns weigh this much in both losses (paper: 5)
    hands_weight: float = 1.0  # body: weight of the 90 hand columns against the 27 upper-body ones

    def __post_init__(self):
        if self.part not in PARTS:
            raise ValueError(f"VQConfig.part must be one of {PARTS}; got {self.part!r}")
        if self.recon_loss not in ("l1", "smooth_l1", "l2"):
            raise ValueError(f"VQConfig.recon_loss must be 'l1', 'smooth_l1' or 'l2'; got {self.recon_loss!r}")
        for name in ("width", "down", "codebook_size", "code_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"VQConfig.{name} must be at least 1; got {getattr(self, name)}")
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"VQConfig.ema_decay must be in (0, 1); got {self.ema_decay}")

    @property
    def frames_per_token(self) -> int:
        """Frames one code stands for (2**down)."""
        return 2**self.down


@dataclass(frozen=True)
class VQTrainConfig:
    """How a tokenizer is trained (random windows of utterances)."""

    window: int = 64  # frames per training window (a multiple of frames_per_token)
    batch_size: int = 32
    steps: int = 600
    lr: float = 2e-4
    weight_decay: float = 0.1  # AdamW
    grad_clip: float = 1.0
    warmup: float = 0.1  # share of steps with a linear warm-up
    milestones: tuple[float, ...] = (0.5, 0.75)  # the lr is multiplied by 0.1 at each share of steps
    eval_every: int = 100  # steps between evaluations on the test split (one "epoch" of the log)
    max_frames: int = 2_000_000  # frames kept in memory for training (a random subset beyond)
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.window < 8:
            raise ValueError(f"VQTrainConfig: steps and batch_size must be >= 1 and window >= 8; got "
                             f"steps={self.steps}, batch_size={self.batch_size}, window={self.window}")  # fmt: skip


@dataclass(frozen=True)
class Preset:
    """A named bundle of configs at one size."""

    name: str
    vq_face: VQConfig
    vq_body: VQConfig
    vq_train: VQTrainConfig
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def vq(self, part: str) -> VQConfig:
        """The tokenizer config of ``part`` ("face" or "body")."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}; got {part!r}")
        return self.vq_face if part == "face" else self.vq_body


def _pair(**kw) -> tuple[VQConfig, VQConfig]:
    face_dim, body_dim = kw.pop("face_code_dim", 8), kw.pop("body_code_dim", 16)
    return VQConfig(part="face", code_dim=face_dim, **kw), VQConfig(part="body", code_dim=body_dim, **kw)


PRESETS: dict[str, Preset] = {
    "smoke": Preset("smoke", *_pair(width=32, codebook_size=32, face_code_dim=4, body_code_dim=4),
                    VQTrainConfig(window=32, batch_size=8, steps=30, lr=1e-3, eval_every=10),
                    notes="CI: seconds per tokenizer"),
    "cpu-mini": Preset("cpu-mini", *_pair(width=128, codebook_size=256),
                       VQTrainConfig(window=64, batch_size=32, steps=600, lr=2e-4, eval_every=100),
                       notes="default: about a minute per tokenizer on 2 CPU cores"),
    "gpu-small": Preset("gpu-small", *_pair(width=512, codebook_size=512),
                        VQTrainConfig(window=64, batch_size=64, steps=5000, lr=2e-4, eval_every=500),
                        notes="a Colab T4: the paper's width, fewer steps"),
    "paper": Preset("paper", *_pair(width=512, codebook_size=512),
                    VQTrainConfig(window=64, batch_size=256, steps=300_000, lr=1e-4, eval_every=5000),
                    notes="the paper's settings"),
}  # fmt: skip


def preset(name: str) -> Preset:
    """The preset called ``name`` (``smoke``, ``cpu-mini``, ``gpu-small``, ``paper``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def to_dict(cfg) -> dict:
    """A config dataclass as a JSON-safe dict (tuples become lists)."""
    return dataclasses.asdict(cfg)


def from_dict(cls, d: dict):
    """A config dataclass of type ``cls`` from :func:`to_dict`'s output; unknown keys raise
    a ValueError naming them (a checkpoint from another version should not load silently)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {unknown}; known: {sorted(names)}")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return cls(**kw)
