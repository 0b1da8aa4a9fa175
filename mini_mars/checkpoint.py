"""Checkpoints of a tokenizer run: safetensors for tensors, JSON for everything else.

No pickle anywhere (``torch.save`` pickles, and unpickling a file can run code), so a
checkpoint is a folder of plain files:

==========================  ==========================================================
``model.safetensors``       ``model.state_dict()``: weights and buffers (codebook, EMA
                            counts and sums, normalisation mean/std, loss weights)
``config.json``             the :class:`VQConfig` (and :class:`VQTrainConfig`, preset
                            name, part, package version) the model was built from
``optimizer.safetensors``   AdamW's state flattened: ``"{i}.exp_avg"``, ``"{i}.exp_avg_sq"``,
                            ``"{i}.step"`` for parameter ``i``; the torch RNG state as
                            ``"rng.torch"`` (a uint8 tensor)
``optimizer.json``          the optimizer's param_groups (lr, betas, ...), the lr
                            scheduler's state and which parameters have state
``state.json``              step, best test L1, numpy's window RNG state, anything else
                            JSON-able the trainer needs to continue
==========================  ==========================================================

Only ``model.safetensors`` + ``config.json`` are needed to *use* a tokenizer
(:func:`load_tokenizer`); the others are for resuming training. Every folder is written
under a temporary name and renamed into place (``venus_analysis.files.atomic_folder``),
so a run killed mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from venus_analysis.files import atomic_folder, atomic_write_text

from . import __version__
from .config import VQConfig, VQTrainConfig, from_dict, to_dict
from .vqvae import VQVAE

MODEL_FILE, CONFIG_FILE, OPTIM_FILE, OPTIM_INDEX, STATE_FILE = (
    "model.safetensors", "config.json", "optimizer.safetensors", "optimizer.json", "state.json")  # fmt: skip


def write_json(path, obj) -> Path:
    """``obj`` as indented JSON, written atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _plain(tensors: dict) -> dict:
    """safetensors wants contiguous CPU tensors that share no storage: clone each one."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def config_dict(model: VQVAE, train_cfg: VQTrainConfig | None = None, preset: str | None = None) -> dict:
    """What ``config.json`` holds."""
    return {"part": model.cfg.part, "preset": preset, "version": __version__, "vq": to_dict(model.cfg),
            "train": to_dict(train_cfg) if train_cfg is not None else None}  # fmt: skip


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------
def save_model_files(folder, model: VQVAE, train_cfg: VQTrainConfig | None = None, preset: str | None = None) -> None:
    """``model.safetensors`` + ``config.json`` into an existing folder (each file atomic)."""
    folder = Path(folder)
    tmp = folder / f".{MODEL_FILE}.tmp"
    save_file(_plain(model.state_dict()), str(tmp), metadata={"format": "pt", "part": model.cfg.part})
    tmp.replace(folder / MODEL_FILE)  # os.replace: readers see the old file or the new one
    write_json(folder / CONFIG_FILE, config_dict(model, train_cfg, preset))


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """AdamW's state_dict split into flat tensors ``{"i.name": tensor}`` and a JSON index."""
    sd = optimizer.state_dict()
    tensors, index = {}, {}
    for i, st in sd["state"].items():  # i: the parameter's position in the param groups
        index[str(i)] = {}
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{i}.{name}"] = v
                index[str(i)][name] = "tensor"
            else:  # a plain number (older torch keeps `step` as an int)
                index[str(i)][name] = v
    return tensors, {"param_groups": sd["param_groups"], "state": index}


def save_checkpoint(folder, model: VQVAE, *, optimizer=None, scheduler=None, state: dict | None = None,
                    train_cfg: VQTrainConfig | None = None, preset: str | None = None) -> Path:
    """Write a whole checkpoint folder atomically (it replaces ``folder`` in one rename).

    With an ``optimizer``, its state, the ``scheduler``'s state and the torch RNG state are
    saved too (what resuming needs); ``state`` is any JSON-able dict (step, best metric,
    numpy RNG state, ...)."""
    with atomic_folder(folder) as tmp:
        save_model_files(tmp, model, train_cfg, preset)
        if optimizer is not None:
            tensors, index = optimizer_tensors(optimizer)
            tensors["rng.torch"] = torch.get_rng_state()  # uint8 tensor: the CPU generator
            if torch.cuda.is_available():
                tensors["rng.cuda"] = torch.cuda.get_rng_state()  # dead-code resets draw on the GPU
            if torch.backends.mps.is_available():
                tensors["rng.mps"] = torch.mps.get_rng_state()
            save_file(_plain(tensors), str(tmp / OPTIM_FILE))
            index["scheduler"] = scheduler.state_dict() if scheduler is not None else None
            write_json(tmp / OPTIM_INDEX, index)
        write_json(tmp / STATE_FILE, state or {})
    return Path(folder)


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------
def config_differences(a: VQConfig, b: VQConfig) -> list[str]:
    """``"field: a vs b"`` for every field in which two configs differ."""
    da, db = to_dict(a), to_dict(b)
    return [f"{k}: {da[k]!r} vs {db[k]!r}" for k in da if da[k] != db[k]]


def read_config(path) -> tuple[VQConfig, VQTrainConfig | None, dict]:
    """(VQConfig, VQTrainConfig or None, the raw dict) of a checkpoint or run folder."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: a tokenizer folder holds {MODEL_FILE} and {CONFIG_FILE}")
    raw = read_json(file)
    vq = from_dict(VQConfig, raw["vq"])
    train = from_dict(VQTrainConfig, raw["train"]) if raw.get("train") else None
    return vq, train, raw


def load_weights(model: VQVAE, path) -> VQVAE:
    """Load ``path/model.safetensors`` into ``model``, after checking that the checkpoint was
    made with the same config; a mismatch raises a ValueError naming the fields."""
    path = Path(path)
    saved, _, _ = read_config(path)
    diff = config_differences(saved, model.cfg)
    if diff:
        raise ValueError(f"the checkpoint in {path} does not match this model's config "
                         f"(checkpoint vs model): {'; '.join(diff)}")  # fmt: skip
    file = path / MODEL_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found")
    tensors = load_file(str(file))
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    shapes = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in tensors and tensors[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        raise ValueError(f"{file} does not fit the model its {CONFIG_FILE} describes (edited or from "
                         f"another version?): missing {missing[:5]}, unexpected {unexpected[:5]}, "
                         f"shapes {shapes[:5]}")  # fmt: skip
    model.load_state_dict(tensors)
    return model


def load_tokenizer(path, config: VQConfig | None = None, *, part: str | None = None, device=None) -> VQVAE:
    """A trained face or body tokenizer from a run or checkpoint folder, in eval mode.

    Needs only ``model.safetensors`` and ``config.json``. With ``config`` (or ``part``),
    the checkpoint must have been made with exactly that config (or part); otherwise a
    ValueError names the fields that differ.

    >>> tok = load_tokenizer("runs/vq-face-cpu-mini")          # doctest: +SKIP
    >>> codes, code_mask = tok.encode(x, mask)                 # doctest: +SKIP
    """
    saved, _, _ = read_config(path)
    if part is not None and part != saved.part:
        raise ValueError(f"{path} holds a {saved.part} tokenizer, not {part} (part: {saved.part!r} vs {part!r})")
    if config is not None:
        diff = config_differences(saved, config)
        if diff:
            raise ValueError(f"the checkpoint in {path} does not match the given config "
                             f"(checkpoint vs given): {'; '.join(diff)}")  # fmt: skip
    model = load_weights(VQVAE(saved), path)
    return model.to(device or "cpu").eval()


def load_optimizer(optimizer, scheduler, path) -> None:
    """Restore AdamW, the lr schedule and the torch RNG from a checkpoint folder."""
    path = Path(path)
    index = read_json(path / OPTIM_INDEX)
    tensors = load_file(str(path / OPTIM_FILE))
    state = {}
    for i, entries in index["state"].items():
        state[int(i)] = {name: (tensors[f"{i}.{name}"] if v == "tensor" else v) for name, v in entries.items()}
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in index["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    if scheduler is not None and index.get("scheduler") is not None:
        scheduler.load_state_dict(index["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    if "rng.mps" in tensors and torch.backends.mps.is_available():
        torch.mps.set_rng_state(tensors["rng.mps"])
