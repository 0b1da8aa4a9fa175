"""The language model of mini MARS: a decoder-only transformer that reads and writes words
and ``<FACE_k>`` / ``<BODY_k>`` tokens.

Two ways to get one, chosen by :class:`~mini_mars.config.LMConfig`:

- **from scratch** (``base=None``, the offline default): a ``LlamaForCausalLM`` (RMSNorm,
  rotary positions, SwiGLU MLP; or a GPT-2 with ``arch="gpt2"``) sized by the preset, over
  the vocabulary of our trained tokenizer (``lm_tokenizer.train_text_tokenizer``). Nothing
  is downloaded.
- **fine-tuning a pretrained model** (``base="Qwen/Qwen2.5-3B-Instruct"`` or a local
  folder), as the paper does: the model and its tokenizer are loaded with
  ``trust_remote_code=False``, the 2K motion tokens are added, the embedding matrix grows
  to match, and either every weight trains (the paper) or, with ``lora=True``, only LoRA
  adapters plus the new tokens' embedding rows (``peft``).

A finished run stores the model in ``out/model/`` with ``save_pretrained`` (safetensors +
JSON config + the tokenizer). LoRA runs are saved *merged* (the adapters folded into the
weights), so :func:`load_trained` needs neither ``peft`` nor the base model: a trained model
loads the same way however it was trained.
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from pathlib import Path

import torch

from .config import LMConfig
from .lm_tokenizer import add_motion_tokens, motion_token_ids

# LoRA adapts these linear layers (every projection of attention and MLP, as in QLoRA);
# other model types fall back to peft's "all-linear".
LORA_TARGETS = {
    **dict.fromkeys(("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "phi3"),
                    ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    "gpt2": ["c_attn", "c_proj", "c_fc"],  # GPT-2's fused qkv, output and MLP (Conv1D layers)
}  # fmt: skip


@contextlib.contextmanager
def quiet_transformers(quiet: bool = True):
    """Hide transformers' progress bars (loading/writing weights) inside the block."""
    from transformers.utils import logging as hf_logging

    was_disabled = hf_logging.is_progress_bar_enabled() is False
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and not was_disabled:
            hf_logging.enable_progress_bar()


def cache_kwargs(cache) -> dict:
    """The forward pass's keyword argument for a KV cache (a ``transformers.DynamicCache``,
    filled in place): ``cache`` from transformers 5.24 on, which warns at the old
    ``past_key_values`` and drops it in 5.40; ``past_key_values`` before. Decided by the
    installed version, not by the model's signature, which a wrapper (peft, a test's) hides."""
    return {_cache_argument(): cache}


@functools.cache
def _cache_argument() -> str:
    import transformers

    major_minor = tuple(int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])  # "5.24.0.dev0" -> (5, 24)
    return "cache" if major_minor >= (5, 24) else "past_key_values"


def scratch_config(cfg: LMConfig, tokenizer):
    """The transformers config of a from-scratch model: the preset's size over ``len(tokenizer)``."""
    from transformers import GPT2Config, LlamaConfig

    ids = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
               eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=cfg.tie_embeddings)  # fmt: skip
    if cfg.arch == "gpt2":
        return GPT2Config(n_embd=cfg.hidden_size, n_layer=cfg.layers, n_head=cfg.heads, n_inner=cfg.intermediate_size,
                          n_positions=cfg.context, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout,
                          attn_pdrop=cfg.dropout, **ids)  # fmt: skip
    return LlamaConfig(hidden_size=cfg.hidden_size, num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                       num_key_value_heads=cfg.kv_heads, intermediate_size=cfg.intermediate_size,
                       max_position_embeddings=cfg.context, attention_dropout=cfg.dropout,
                       rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta}, **ids)  # fmt: skip


def _offline_error(base: str, err: Exception) -> OSError:
    return OSError(
        f"cannot load the pretrained base {base!r}: it is not a local folder, and the Hugging Face Hub is offline "
        f"(HF_HUB_OFFLINE=1) or unreachable with no copy in the local cache ({type(err).__name__}: {err}). Where "
        f"there is a network, download it once (`hf download {base} --local-dir DIR`, or from_pretrained(...)"
        f".save_pretrained(DIR)) and pass base='DIR' (a folder with config.json, *.safetensors and tokenizer files)."
    )


def _mean_init(emb: torch.Tensor, new_ids: list[int], n_old: int) -> None:
    """Set the rows ``new_ids`` of an embedding matrix to the mean of its first ``n_old`` rows.

    Why the mean: a randomly initialised row has a norm unlike the trained rows, and in the
    output matrix it would give the new tokens logits far from the others, so the fine-tuned
    model would start by spouting (or never producing) motion tokens and its text
    predictions would be disturbed. At the mean, every new token starts with about the
    average logit and the pretrained model's distribution over old tokens barely moves
    (Hewitt, "Initializing new word embeddings", 2021); training then pulls them apart."""
    with torch.no_grad():
        emb[new_ids] = emb[:n_old].mean(dim=0, keepdim=True).to(emb.dtype)


def _load_base(cfg: LMConfig, tokenizer, face_codes, body_codes):
    """The pretrained model and tokenizer with motion tokens, embeddings resized; the ids of
    the tokens added to the base tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = cfg.base
    try:
        # trust_remote_code=False: only architectures transformers ships run; a Hub repo's own code never does
        base_tok = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(base, trust_remote_code=False, dtype=torch.float32)
    except OSError as err:
        if Path(base).is_dir():
            raise OSError(f"cannot load the pretrained base from the folder {base!r}: {err}") from err
        raise _offline_error(base, err) from err
    n_old = len(base_tok)
    if tokenizer is None:  # the base tokenizer + our tokens
        if face_codes is None or body_codes is None:
            raise ValueError("build_model with a base and no tokenizer needs face_codes and body_codes (K of each part)")
        tokenizer = base_tok
        add_motion_tokens(tokenizer, face_codes, body_codes)
    else:  # e.g. the tokenizer saved by a run being resumed: must extend the base's
        vb, vt = base_tok.get_vocab(), tokenizer.get_vocab()
        if len(tokenizer) < n_old or any(vt.get(t) != i for t, i in vb.items()):
            raise ValueError(f"the tokenizer given does not extend the tokenizer of {base!r} (it must hold the same "
                             f"{n_old} tokens with the same ids, plus the motion tokens)")  # fmt: skip
    new_ids = list(range(n_old, len(tokenizer)))
    # Grow, never shrink: some checkpoints (Qwen) have more embedding rows than tokens, and
    # the first new ids may fall on such unused (untrained) rows, so all new ids are re-set.
    rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(max(rows, len(tokenizer)), mean_resizing=False)
    _mean_init(model.get_input_embeddings().weight, new_ids, n_old)
    out = model.get_output_embeddings()
    if out is not None and out.weight is not model.get_input_embeddings().weight:  # untied lm_head
        _mean_init(out.weight, new_ids, n_old)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, new_ids


def _lora(model, cfg: LMConfig, new_ids: list[int]):
    """Wrap ``model`` with LoRA adapters; the new tokens' embedding rows train too.

    LoRA changes the linear layers only: it cannot give a token that the base never saw an
    embedding of its own, so the rows of the new motion tokens (all identical at the mean)
    must be trainable. ``trainable_token_indices`` trains exactly those rows (a small delta
    on top of the frozen matrix; for an untied output layer, its rows too), instead of
    ``modules_to_save`` copying and training the whole V x hidden matrix (151k rows for
    Qwen), which would cost memory and let the old tokens drift."""
    from peft import LoraConfig, get_peft_model

    targets = LORA_TARGETS.get(model.config.model_type, "all-linear")
    tied = model.get_output_embeddings() is None or (
        model.get_output_embeddings().weight is model.get_input_embeddings().weight)  # fmt: skip
    if tied:  # a list: peft finds the input embedding (and follows the tied output layer)
        tokens = new_ids
    else:  # name both matrices: the output rows must learn to *produce* the new tokens
        emb = next(n for n, m in model.named_modules() if m is model.get_input_embeddings()).split(".")[-1]
        out = next(n for n, m in model.named_modules() if m is model.get_output_embeddings()).split(".")[-1]
        tokens = {emb: new_ids, out: new_ids}
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=targets,
                      task_type="CAUSAL_LM", trainable_token_indices=tokens)  # fmt: skip
    with warnings.catch_warnings():  # peft 0.21 calls a transformers 5 alias that warns (not our code)
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, lcfg)


def build_model(cfg: LMConfig, tokenizer=None, *, face_codes: int | None = None, body_codes: int | None = None):
    """``(model, tokenizer)`` for ``cfg``, in train mode on the CPU in fp32.

    From scratch (``cfg.base is None``): ``tokenizer`` is required (ours, with motion
    tokens); the model's vocabulary is ``len(tokenizer)`` and its pad/bos/eos ids are the
    tokenizer's. Weights come from torch's global RNG: seed it first.

    With ``cfg.base``: the base model and tokenizer are loaded (``trust_remote_code=False``);
    ``face_codes``/``body_codes`` motion tokens are added (or ``tokenizer``, which must
    extend the base's, is used), the embeddings grow and the new rows start at the mean of
    the old ones. With ``cfg.lora`` the model is a ``peft`` model (see :func:`_lora`). A
    base that cannot be loaded offline raises an OSError saying how to pass a folder.
    """
    if cfg.base is None:
        if tokenizer is None:
            raise ValueError("build_model from scratch needs a tokenizer (lm_tokenizer.train_text_tokenizer)")
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_config(scratch_config(cfg, tokenizer))
        return model.train(), tokenizer
    model, tokenizer, new_ids = _load_base(cfg, tokenizer, face_codes, body_codes)
    if cfg.lora:
        model = _lora(model, cfg, new_ids)
    return model.train(), tokenizer


@torch.no_grad()
def init_motion_embeddings(model, tokenizer, codebooks: dict, *, share: float = 0.5, seed: int = 0) -> None:
    """Start the ``<FACE_k>`` / ``<BODY_k>`` embedding rows from the tokenizers' codebooks.

    ``codebooks``: {"face": (K, d) tensor, "body": (K, d)} (``VQVAE.quantizer.codebook``).
    Each codebook is z-scored per dimension and mapped to the model's width by a fixed
    Gaussian matrix R (d x H, entries N(0, 1/d)); a random Gaussian map roughly keeps
    distances (Johnson-Lindenstrauss), so codes that stand for similar motion start with
    similar embeddings, and, the embeddings being tied, similar output rows: what the model
    learns about one code carries over to its neighbours from the first step, instead of K
    unrelated rows each learnt on their own. A random part keeps the K rows full rank (the
    codebook alone spans only d of the H dimensions), so each code can still move on its own:

        e_k = sigma * (share * z_k R + sqrt(1 - share^2) * n_k),   n_k ~ N(0, I_H)

    with sigma the model's ``initializer_range``, the scale of every other row. Measured at
    cpu-mini, 600 steps with dropout 0.1 (README): eval loss 3.10 with share 0.5, 3.17 with 1.0, 3.43 with
    random rows. Each part gets its own R.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1]; got {share}")
    vocab = motion_token_ids(tokenizer)
    emb = model.get_input_embeddings().weight
    sigma = float(getattr(model.config, "initializer_range", 0.02))
    gen = torch.Generator().manual_seed(seed)
    for part, ids in (("face", vocab.face_ids), ("body", vocab.body_ids)):
        cb = torch.as_tensor(codebooks[part], dtype=torch.float32).cpu()
        if cb.ndim != 2 or len(cb) != len(ids):
            raise ValueError(f"the {part} codebook is {tuple(cb.shape)}; expected ({len(ids)}, d): one vector per "
                             f"<{part.upper()}_k> token of the tokenizer")  # fmt: skip
        z = (cb - cb.mean(0)) / cb.std(0).clamp_min(1e-6)  # z-scored: every latent dimension counts alike
        r = torch.randn(cb.shape[1], emb.shape[1], generator=gen) / cb.shape[1] ** 0.5  # (d, H), N(0, 1/d)
        noise = torch.randn(len(ids), emb.shape[1], generator=gen)
        rows = sigma * (share * z @ r + (1.0 - share**2) ** 0.5 * noise)  # unit variance mix, times sigma
        emb[torch.as_tensor(ids)] = rows.to(emb.dtype)


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of parameters (tied matrices counted once); only those that train if asked."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def load_trained(run_dir, device=None):
    """``(model, tokenizer)`` of a finished run (``run_dir/model/``, or a ``save_pretrained``
    folder itself), in eval mode. LoRA runs were saved merged: no peft, no base needed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(run_dir)
    if (path / "model" / "config.json").is_file():
        path = path / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no trained model in {run_dir}: expected {Path(run_dir) / 'model'}/config.json "
                                f"(written by train_lm at the end of a run)")  # fmt: skip
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=False)
    return model.to(device or "cpu").eval(), tokenizer
