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

The language model has its own two configs: :class:`LMConfig` (architecture, or a pretrained
``base`` to fine-tune, optionally with LoRA) and :class:`LMTrainConfig` (the training loop);
``preset(name).lm`` and ``preset(name).lm_train`` hold them (smoke ~0.14 M parameters,
cpu-mini ~1.2-1.4 M depending on the vocabulary learnt, gpu-small ~25 M, paper = full
fine-tuning of Qwen2.5-3B-Instruct).

``preset("cpu-mini").vq("face")`` is the face tokenizer's :class:`VQConfig`;
``dataclasses.replace`` overrides single fields. Configs go to and from JSON with
:func:`to_dict` / :func:`from_dict` (they are saved next to every checkpoint).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

PARTS = ("face", "body")
REFERENCES = ("none", "speaker")  # see VQConfig.reference


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
    head_weight: float = 5.0  # face with head_rotation: weight of the 3 head columns (nods are small and brief)
    body_head_weight: float = 1.0  # body: weight of the SMPL-X head joint's 3 columns (the nods and shakes)
    # What the tokens leave out: "speaker" subtracts each speaker's resting face (the median
    # of their expression coefficients over the segment) before tokenizing, so codes carry
    # expression changes rather than identity; "none" tokenizes raw coefficients (the paper).
    reference: str = "none"
    # Face only: also tokenize the head rotation (3 axis-angle columns after the 53). The
    # paper leaves it out (its body tokens carry the SMPL-X head joint, part of a nod). An
    # experiment, off in every preset: at cpu-mini, head weight 1 left the head unlearnt and
    # head weight 5 lost the jaw, smiles and frowns (see the README).
    head_rotation: bool = False

    def __post_init__(self):
        if self.part not in PARTS:
            raise ValueError(f"VQConfig.part must be one of {PARTS}; got {self.part!r}")
        if self.recon_loss not in ("l1", "smooth_l1", "l2"):
            raise ValueError(f"VQConfig.recon_loss must be 'l1', 'smooth_l1' or 'l2'; got {self.recon_loss!r}")
        for name in ("width", "down", "codebook_size", "code_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"VQConfig.{name} must be at least 1; got {getattr(self, name)}")
        if self.reference not in REFERENCES:
            raise ValueError(f"VQConfig.reference must be one of {REFERENCES}; got {self.reference!r}")
        if self.reference == "speaker" and self.part != "face":
            raise ValueError("VQConfig.reference='speaker' applies to the face tokenizer only")
        if self.head_rotation and self.part != "face":
            raise ValueError("VQConfig.head_rotation applies to the face tokenizer only")
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"VQConfig.ema_decay must be in (0, 1); got {self.ema_decay}")

    @property
    def in_dim(self) -> int:
        """Parameters per frame: face 53 (expression 50 + jaw 3), 56 with the head rotation;
        body 117 (upper body 27 + hands 90)."""
        return {"face": 53 + 3 * self.head_rotation, "body": 117}[self.part]

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


LM_ARCHS = ("llama", "gpt2")


@dataclass(frozen=True)
class LMConfig:
    """The language model: a small decoder-only transformer trained from scratch, or a
    pretrained causal LM (``base``) fine-tuned fully or with LoRA."""

    arch: str = "llama"  # from scratch: "llama" (RMSNorm, RoPE, SwiGLU) or "gpt2"
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 4  # grouped-query attention when < heads (llama only)
    intermediate_size: int = 512  # MLP width
    context: int = 512  # max_position_embeddings: the longest sequence the model can see
    dropout: float = 0.0  # attention dropout (llama); every dropout (gpt2)
    rope_theta: float = 10_000.0  # RoPE base (llama)
    tie_embeddings: bool = True  # input and output embeddings share one matrix (saves V x hidden)
    vocab_size: int = 2000  # byte-level BPE vocabulary of the trained text tokenizer (special tokens come on top)
    # From scratch: where the <FACE_k>/<BODY_k> embeddings start. "codebook": from the VQ's
    # codebook vectors (codes that mean similar motion start close; see lm.init_motion_embeddings),
    # "random": like every other row. cpu-mini, 600 steps (dropout 0.1 then): NLL-F 3.66 against 4.61 (README).
    motion_init: str = "codebook"
    base: str | None = None  # a Hub name or local folder of a pretrained causal LM to fine-tune (then the
    #                          architecture fields above and vocab_size are ignored: the base has its own)
    lora: bool = False  # with base: train LoRA adapters (+ the new token rows) instead of every weight
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05

    def __post_init__(self):
        if self.arch not in LM_ARCHS:
            raise ValueError(f"LMConfig.arch must be one of {LM_ARCHS}; got {self.arch!r}")
        for name in ("hidden_size", "layers", "heads", "kv_heads", "intermediate_size", "context", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"LMConfig.{name} must be at least 1; got {getattr(self, name)}")
        if self.hidden_size % self.heads or self.heads % self.kv_heads:
            raise ValueError(f"LMConfig: hidden_size ({self.hidden_size}) must be a multiple of heads ({self.heads}) "
                             f"and heads a multiple of kv_heads ({self.kv_heads})")  # fmt: skip
        if self.vocab_size <= 256:
            raise ValueError(f"LMConfig.vocab_size must exceed the 256 byte symbols of byte-level BPE; got {self.vocab_size}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"LMConfig: dropout and lora_dropout must be in [0, 1); got {self.dropout}, {self.lora_dropout}")
        if self.motion_init not in ("codebook", "random"):
            raise ValueError(f"LMConfig.motion_init must be 'codebook' or 'random'; got {self.motion_init!r}")
        if self.lora and not self.base:
            raise ValueError("LMConfig.lora=True needs a pretrained base (LoRA adapts a trained model); set base too")


@dataclass(frozen=True)
class LMTrainConfig:
    """How the language model is trained (loss on assistant tokens only)."""

    steps: int = 300  # optimizer steps
    batch_size: int = 16  # conversations per batch and device
    grad_accum: int = 1  # batches summed into one optimizer step
    lr: float = 2e-3
    weight_decay: float = 0.1  # AdamW, on matrices only (not norms, biases)
    warmup: float = 0.05  # share of steps with a linear warm-up
    schedule: str = "cosine"  # decay after warm-up: "cosine" or "linear"
    min_lr: float = 0.1  # the lr ends at this share of ``lr``
    grad_clip: float = 1.0
    eval_every: int = 100  # steps between test-split evaluations (and checkpoints)
    max_length: int = 512  # tokens per conversation; longer ones are cut (and counted)
    mega_batch: int = 32  # length grouping: batches per shuffled group sorted by length
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "grad_accum", "eval_every", "max_length", "mega_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"LMTrainConfig.{name} must be at least 1; got {getattr(self, name)}")
        if self.schedule not in ("cosine", "linear"):
            raise ValueError(f"LMTrainConfig.schedule must be 'cosine' or 'linear'; got {self.schedule!r}")
        if not 0.0 <= self.warmup < 1.0 or not 0.0 <= self.min_lr <= 1.0:
            raise ValueError(f"LMTrainConfig: warmup must be in [0, 1) and min_lr in [0, 1]; got "
                             f"{self.warmup}, {self.min_lr}")  # fmt: skip


@dataclass(frozen=True)
class Preset:
    """A named bundle of configs at one size."""

    name: str
    vq_face: VQConfig
    vq_body: VQConfig
    vq_train: VQTrainConfig
    notes: str = ""
    extra: dict = field(default_factory=dict)
    lm: LMConfig = field(default_factory=LMConfig)  # the language model
    lm_train: LMTrainConfig = field(default_factory=LMTrainConfig)  # and how it is trained

    def vq(self, part: str) -> VQConfig:
        """The tokenizer config of ``part`` ("face" or "body")."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}; got {part!r}")
        return self.vq_face if part == "face" else self.vq_body


def _pair(**kw) -> tuple[VQConfig, VQConfig]:
    face_dim, body_dim = kw.pop("face_code_dim", 8), kw.pop("body_code_dim", 16)
    # ours: identity out of the face tokens (the paper keeps it in); the head rotation stays
    # out as in the paper (tried in: at cpu-mini it cost the jaw, smiles and frowns)
    face_ref, head = kw.pop("face_reference", "speaker"), kw.pop("head_rotation", False)
    jaw, body_head = kw.pop("jaw_weight", 5.0), kw.pop("body_head_weight", 1.0)  # each part's own weight
    return (VQConfig(part="face", code_dim=face_dim, reference=face_ref, head_rotation=head, jaw_weight=jaw, **kw),
            VQConfig(part="body", code_dim=body_dim, body_head_weight=body_head, **kw))


PRESETS: dict[str, Preset] = {
    "smoke": Preset("smoke", *_pair(width=32, codebook_size=32, face_code_dim=4, body_code_dim=4),
                    VQTrainConfig(window=32, batch_size=8, steps=30, lr=1e-3, eval_every=10),
                    notes="CI: seconds per tokenizer",
                    # ~0.15 M parameters: seconds on one core
                    lm=LMConfig(hidden_size=64, layers=2, heads=4, kv_heads=4, intermediate_size=192, context=256,
                                dropout=0.1, vocab_size=400),
                    lm_train=LMTrainConfig(steps=60, batch_size=8, lr=3e-3, warmup=0.1, eval_every=20, max_length=256,
                                           mega_batch=4)),
    "cpu-mini": Preset("cpu-mini", *_pair(width=128, codebook_size=256),
                       # 400 steps at lr 5e-4 in two thirds of the time of 600 at 2e-4: face test L1 0.0214
                       # against 0.0216; body 0.0061-0.0066 (it varies with the thread count's numerics)
                       # against 0.0061. 300 at 8e-4 fall short (face 0.0248). See the README.
                       VQTrainConfig(window=64, batch_size=32, steps=400, lr=5e-4, eval_every=100),
                       notes="default: about a minute per tokenizer on 2 CPU cores",
                       # ~1.4 M parameters (embeddings ~0.3 M of them, tied)
                       # dropout 0: 600 steps are far from overfitting (eval loss tracks train loss), and on a
                       # CPU attention dropout sends scaled_dot_product_attention down its slow path
                       # (9.7k instead of 6.4k tokens/s here)
                       lm=LMConfig(hidden_size=128, layers=4, heads=4, kv_heads=4, intermediate_size=512, context=512,
                                   dropout=0.0, vocab_size=2000),
                       # 600 steps: the cue-dependent replies are learnt (300 learn the motion codes, not yet the
                       # template replies; see the README's table)
                       lm_train=LMTrainConfig(steps=600, batch_size=16, lr=2e-3, warmup=0.05, eval_every=200,
                                              max_length=512)),
    # cpu-mini at 4 frames a code, so that nods and head shakes survive the tokenizers. One code
    # per 8 frames samples motion at 3.125 Hz, below twice a nod's 2.5 Hz (Nyquist): at cpu-mini size
    # no nod came back at any codebook size or head weight. At 4 frames, with the head joint weighted
    # 3, 43 of 55 test nods and 28 of 32 shakes survive (0 of each at 8 frames); the face needs the
    # jaw at 2 (at 5 the 4-frame codebook spent itself on speech and lost every frown). Twice the
    # motion tokens, so the LM needs 1,500 steps: about 12 minutes on 2 cores. See the README.
    # (pairs.SYSTEM_PROMPT still says 0.32 s: it is one token of every trained run's tokenizer,
    # and changing its words would break the runs already trained.)
    "cpu-gestures": Preset("cpu-gestures", *_pair(width=128, codebook_size=256, down=2, body_head_weight=3.0,
                                                  jaw_weight=2.0),
                           VQTrainConfig(window=64, batch_size=32, steps=400, lr=5e-4, eval_every=100),
                           notes="cpu-mini at 4 frames per code: nods and head shakes survive; ~12 min on 2 CPU cores",
                           lm=LMConfig(hidden_size=128, layers=4, heads=4, kv_heads=4, intermediate_size=512,
                                       context=512, dropout=0.0, vocab_size=2000),
                           lm_train=LMTrainConfig(steps=1500, batch_size=16, lr=2e-3, warmup=0.05, eval_every=500,
                                                  max_length=512)),
    "gpu-small": Preset("gpu-small", *_pair(width=512, codebook_size=512),
                        VQTrainConfig(window=64, batch_size=64, steps=5000, lr=2e-4, eval_every=500),
                        notes="a Colab T4: the paper's width, fewer steps",
                        # ~25 M parameters
                        lm=LMConfig(hidden_size=512, layers=6, heads=8, kv_heads=8, intermediate_size=1536, context=1024,
                                    dropout=0.1, vocab_size=8000),
                        lm_train=LMTrainConfig(steps=5000, batch_size=32, lr=6e-4, warmup=0.05, eval_every=500,
                                               max_length=1024)),
    "paper": Preset("paper", *_pair(width=512, codebook_size=512, face_reference="none"),
                    VQTrainConfig(window=64, batch_size=256, steps=300_000, lr=1e-4, eval_every=5000),
                    notes="the paper's settings",
                    # the paper: full fine-tuning of an instruct model, context 4,096; its LM learning rate,
                    # batch and steps are not in VENUS_FACTS.md, these are common full fine-tuning values
                    lm=LMConfig(base="Qwen/Qwen2.5-3B-Instruct", context=4096),
                    lm_train=LMTrainConfig(steps=10_000, batch_size=2, grad_accum=8, lr=1e-5, weight_decay=0.0,
                                           warmup=0.03, eval_every=1000, max_length=4096)),
}  # fmt: skip


def preset(name: str) -> Preset:
    """The preset called ``name`` (``smoke``, ``cpu-mini``, ``cpu-gestures``, ``gpu-small``, ``paper``)."""
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
