"""Training the language model, nanoGPT style: one flat loop you can read top to bottom.

    pairs --chat template--> token ids + assistant mask --length-grouped batches--> LM
          --cross-entropy on assistant tokens only--> AdamW step (warm-up, cosine decay, clip)
          every eval_every steps: test-split loss and perplexity -> train_log.json, checkpoints/last/

Input: ``{"train": ..., "test": ...}`` (a ``DatasetDict`` or a dict of lists of rows), each
row with a ``messages`` column: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``,
content in the interleaved text format (``"<FACE_3><BODY_17> Hello<FACE_4><BODY_2> world"``).
The loss is on the tokens of **every assistant message** (its content and closing
``<|end|>``), as the paper trains on the listener's reply only; system and user tokens are
context (label -100). MARS pairs have one user and one assistant message, so "every" and
"the last" are the same there; on longer chats, every reply is a lesson.

Why not ``transformers.Trainer``: its checkpoints pickle the optimizer and RNG states
(``torch.save``), and this project unpickles nothing. The loop runs on ``accelerate``, so
the same code trains on the CPU (fp32), one GPU (bf16 where supported, else fp16 with
loss scaling) and several GPUs::

    accelerate launch train.py      # train.py calls train_lm(...); or torchrun --nproc-per-node N train.py.
                                    # DDP by default, FSDP through `accelerate config`

Under DDP every process takes its own batches of one global sequence (batch ``j`` of step
``s`` on process ``r`` is number ``(s * grad_accum + j) * world + r``), so the data order
is a function of the step alone. Checkpoints hold the trainable weights; FSDP runs train
and save their final model but write no checkpoints (their weights are sharded), so they
cannot be resumed, and LoRA under FSDP is untested.

A run folder ``out`` ends up holding::

    config.json          LM config, training config, preset, motion token ids, token counts
    train_log.json       one record per evaluation: train loss, eval loss, perplexity, lr, tokens/s
    metrics.json         the final metrics (also in LMTrainResult.metrics)
    tokenizer/           the tokenizer used (written first, so a resumed run uses the same one)
    model/               the trained model + tokenizer (save_pretrained; LoRA merged): load_trained(out)
    checkpoints/last/    trainable weights, AdamW state, lr schedule, RNG states, step (resumable)

All files are safetensors or JSON, each folder written under a temporary name and renamed.
``resume=True`` continues from ``checkpoints/last/`` and ends with the same eval loss as an
uninterrupted run of the same seed: the data order depends on the step only, and the
weights, AdamW moments, schedule, loss scaler and RNG states (python, numpy, torch) are
restored; evaluation draws no random numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from venus_analysis.files import atomic_folder

from . import __version__
from . import checkpoint as ckpt
from .config import LMConfig, LMTrainConfig, from_dict, to_dict
from .config import preset as get_preset
from .lm import build_model, count_parameters, init_motion_embeddings, quiet_transformers
from .lm_tokenizer import ROLES, encode_chats, fixed_system_prompts, motion_token_ids, train_text_tokenizer

HELD_OUT_SHARE = 0.1  # without a test split, this share of train conversations is held out
RUN_FILES = ("config.json", "train_log.json", "metrics.json", "tokenizer", "model", "checkpoints")


@dataclass
class LMTrainResult:
    """What :func:`train_lm` returns."""

    out: Path  # the run folder
    model: object  # the trained model (eval mode; LoRA merged); the current one if stopped early
    tokenizer: object
    metrics: dict  # eval_loss, perplexity, train_tokens_per_s, steps, n_parameters, truncated, ...
    log: list = field(default_factory=list)  # train_log.json records
    step: int = 0  # steps done
    finished: bool = True  # False when stopped by stop_after


# ---------------------------------------------------------------------------------------
# Data: validation, tokenization, batches
# ---------------------------------------------------------------------------------------
def _conversations(split, name: str) -> list[list[dict]]:
    """The ``messages`` of every row of one split, checked; a ValueError names the row."""
    if hasattr(split, "column_names"):  # a datasets.Dataset
        if "messages" not in split.column_names:
            raise ValueError(f"the {name} split has no 'messages' column (it has {split.column_names}); expected one "
                             f"list of {{'role', 'content'}} messages per row")  # fmt: skip
        convs = split["messages"]
    else:  # a list of rows
        convs = []
        for i, row in enumerate(split):
            if not isinstance(row, dict) or "messages" not in row:
                raise ValueError(f"{name} split, row {i}: expected a dict with a 'messages' key; got {type(row).__name__}"
                                 + (f" with keys {sorted(row)}" if isinstance(row, dict) else ""))  # fmt: skip
            convs.append(row["messages"])
    for i, conv in enumerate(convs):
        if not isinstance(conv, (list, tuple)) or not conv:
            raise ValueError(f"{name} split, row {i}: 'messages' must be a non-empty list of messages; got {conv!r:.80}")
        for j, m in enumerate(conv):
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise ValueError(f"{name} split, row {i}, message {j}: expected {{'role': one of {ROLES}, 'content': "
                                 f"str}}; got {m!r:.120}")  # fmt: skip
        roles = [m["role"] for m in conv]
        if "assistant" not in roles:
            raise ValueError(f"{name} split, row {i}: no assistant message, so nothing to learn (roles {roles})")
        if roles[0] == "assistant":
            raise ValueError(f"{name} split, row {i}: the conversation starts with the assistant; expected a "
                             f"system or user message first (roles {roles})")  # fmt: skip
    return [list(c) for c in convs]


def split_pairs(pairs, seed: int = 0, say=print) -> tuple[list, list]:
    """(train, test) conversations; a held-out 10 % of train if there is no test split."""
    if not hasattr(pairs, "keys") or "train" not in pairs:
        raise ValueError(f"train_lm needs a DatasetDict (or dict) with 'train' and 'test' splits of rows with a "
                         f"'messages' column; got {type(pairs).__name__}")  # fmt: skip
    train = _conversations(pairs["train"], "train")
    if not train:
        raise ValueError("the train split is empty: expected at least one conversation with an assistant message")
    if "test" in pairs:
        test = _conversations(pairs["test"], "test")
        if not test:
            raise ValueError("the test split is empty: expected at least one conversation (or no test split at all)")
        return train, test
    if len(train) < 2:
        raise ValueError("no test split, and only 1 train conversation: too few to hold some out")
    order = np.random.default_rng(seed).permutation(len(train))
    k = max(1, round(HELD_OUT_SHARE * len(train)))
    say(f"no test split: holding out {k} of {len(train)} train conversations ({HELD_OUT_SHARE:.0%}) for evaluation")
    return [train[i] for i in np.sort(order[k:])], [train[i] for i in np.sort(order[:k])]


@dataclass
class Tokenized:
    """One split as token ids and assistant masks (numpy, one array per conversation)."""

    ids: list  # int64 arrays
    mask: list  # bool arrays: True on the tokens that carry the loss
    truncated: int = 0  # conversations cut at max_length
    dropped: int = 0  # conversations left without any assistant token after the cut

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.ids], dtype=np.int64)

    def summary(self) -> dict:
        """Counts a resumed run checks and config.json reports."""
        return {"conversations": len(self.ids), "tokens": int(self.lengths.sum()),
                "target_tokens": int(sum(int(m[1:].sum()) for m in self.mask)),
                "truncated": self.truncated, "dropped": self.dropped}  # fmt: skip


def tokenize(tokenizer, convs: list, max_length: int, chunk: int = 512) -> Tokenized:
    """Render and tokenize conversations; cut them at ``max_length`` tokens (counted) and drop
    those left with no target token (counted: a cut that removes the whole reply)."""
    out = Tokenized([], [])
    for s in range(0, len(convs), chunk):  # batched: the fast tokenizer encodes a chunk in one call
        for ids, mask in encode_chats(tokenizer, convs[s : s + chunk]):
            ids, mask = np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool)
            if len(ids) > max_length:
                out.truncated += 1
                ids, mask = ids[:max_length], mask[:max_length]
            if not mask[1:].any():  # token 0 is never predicted
                out.dropped += 1
                continue
            out.ids.append(ids)
            out.mask.append(mask)
    return out


def epoch_batches(lengths: np.ndarray, batch_size: int, mega_batch: int, seed: int, epoch: int) -> list:
    """The batches (arrays of example indices) of one pass over the data, length-grouped.

    Shuffle, cut into groups of ``mega_batch`` batches, sort each group by length and cut
    it into batches, then shuffle the batches: each batch holds similar lengths (little
    padding) while the order stays random. Seeded by (seed, epoch): the same every time."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    group, batches = batch_size * mega_batch, []
    for s in range(0, len(order), group):
        g = order[s : s + group]
        g = g[np.argsort(-lengths[g], kind="stable")]  # longest first; stable: ties keep the shuffled order
        batches += [g[i : i + batch_size] for i in range(0, len(g), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(data: Tokenized, idx, pad_id: int) -> dict:
    """Padded tensors of the examples ``idx``: input_ids, attention_mask, labels (-100 but
    on assistant tokens), padded (right) to the longest in the batch."""
    L = max(len(data.ids[i]) for i in idx)
    ids = np.full((len(idx), L), pad_id, dtype=np.int64)
    labels = np.full((len(idx), L), -100, dtype=np.int64)
    attn = np.zeros((len(idx), L), dtype=np.int64)
    for row, i in enumerate(idx):
        x, m = data.ids[i], data.mask[i]
        ids[row, : len(x)], attn[row, : len(x)] = x, 1
        labels[row, : len(x)] = np.where(m, x, -100)  # the loss sees assistant tokens only
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(attn),
            "labels": torch.from_numpy(labels)}  # fmt: skip


# ---------------------------------------------------------------------------------------
# Loss, schedule, evaluation
# ---------------------------------------------------------------------------------------
def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of the target tokens: position t predicts token t + 1."""
    # shift the labels, not the logits: slicing (B, T, V) logits would copy them (and their gradient)
    target = F.pad(labels[:, 1:], (0, 1), value=-100)  # the last position predicts nothing
    logits = logits.float()  # fp32 log-softmax: bf16 is too coarse over a large vocabulary (no copy if fp32)
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="sum")


def n_targets(labels: torch.Tensor) -> int:
    """Tokens that carry the loss in a batch (labels shifted by one)."""
    return int((labels[:, 1:] != -100).sum())


def lr_factor(steps: int, warmup: float, schedule: str = "cosine", min_lr: float = 0.1):
    """Linear warm-up over ``warmup`` of the steps, then cosine (or linear) decay to ``min_lr``."""
    w = max(1, int(warmup * steps))

    def factor(step: int) -> float:
        if step < w:
            return (step + 1) / w  # 1/w, 2/w, ..., 1
        t = (step - w) / max(1, steps - w)  # 0 -> 1 over the decay
        decay = 0.5 * (1 + math.cos(math.pi * t)) if schedule == "cosine" else 1 - t
        return min_lr + (1 - min_lr) * decay

    return factor


@torch.no_grad()
def evaluate(model, data: Tokenized, batch_size: int, pad_id: int, accelerator=None) -> dict:
    """Mean loss per target token over the whole split, and its perplexity.

    Batches are sorted by length (least padding) and shared out among processes; the sums
    are added across processes. Eval mode: no dropout, so no random numbers are drawn."""
    was_training = model.training
    model.eval()
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    order = np.argsort(-data.lengths, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    total = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, target count
    for idx in batches[rank::world]:
        b = {k: v.to(device) for k, v in collate(data, idx, pad_id).items()}
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        total += torch.stack([token_loss(logits, b["labels"]).double(), (b["labels"][:, 1:] != -100).sum().double()])
    if world > 1:
        total = accelerator.reduce(total, "sum")
    model.train(was_training)
    loss = float(total[0] / total[1].clamp(min=1))
    return {"eval_loss": loss, "perplexity": math.exp(min(loss, 700.0)), "eval_tokens": int(total[1])}


# ---------------------------------------------------------------------------------------
# Checkpoints (safetensors + JSON, through mini_mars.checkpoint)
# ---------------------------------------------------------------------------------------
def _rng_json() -> dict:
    """Python's and numpy's global RNG states as JSON (torch's goes with the optimizer tensors)."""
    py = random.getstate()
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": [py[0], list(py[1]), py[2]], "numpy": [name, keys.tolist(), pos, has_gauss, gauss]}


def _set_rng_json(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


def _trainable(model) -> dict:
    """The weights that change in training (all of them, or LoRA + the new token rows)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(folder, model, optimizer, scheduler, state: dict, accelerator) -> None:
    """Write ``folder`` atomically: trainable weights, AdamW + schedule + torch RNG (via
    ``checkpoint.optimizer_tensors``), and ``state.json`` (step, data position, RNGs).
    Every process takes part (the RNG states are gathered); the main process writes."""
    tensors, index = ckpt.optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()  # dropout masks are drawn from it
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    if accelerator.num_processes > 1:  # every process has its own generator: keep them all
        dev = accelerator.device
        tensors["rng.torch.all"] = accelerator.gather(torch.get_rng_state().to(dev)[None]).cpu()
        if torch.cuda.is_available():
            tensors["rng.cuda.all"] = accelerator.gather(torch.cuda.get_rng_state().to(dev)[None]).cpu()
    if not accelerator.is_main_process:
        return
    plain = lambda d: {k: v.detach().cpu().contiguous().clone() for k, v in d.items()}  # noqa: E731  own storage each
    with atomic_folder(folder) as tmp:
        save_file(plain(_trainable(model)), str(tmp / ckpt.MODEL_FILE))
        save_file(plain(tensors), str(tmp / ckpt.OPTIM_FILE))
        index["scheduler"] = scheduler.state_dict()
        ckpt.write_json(tmp / ckpt.OPTIM_INDEX, index)
        ckpt.write_json(tmp / ckpt.STATE_FILE, state)


def load_checkpoint(folder, model, optimizer, scheduler, accelerator) -> dict:
    """Restore what :func:`save_checkpoint` wrote; returns ``state.json``."""
    folder = Path(folder)
    weights = load_file(str(folder / ckpt.MODEL_FILE))
    own = _trainable(model)
    if set(weights) != set(own) or any(weights[k].shape != own[k].shape for k in own):
        raise ValueError(f"{folder} does not fit this model: it holds {len(weights)} trainable tensors, the model "
                         f"{len(own)} (another architecture or LoRA setting?)")  # fmt: skip
    with torch.no_grad():
        for k, p in own.items():
            p.copy_(weights[k])
    ckpt.load_optimizer(optimizer, scheduler, folder)  # AdamW moments, lr schedule, torch (and cuda) RNG
    state = ckpt.read_json(folder / ckpt.STATE_FILE)
    _set_rng_json(state["rng"])
    if accelerator.num_processes > 1:
        tensors = load_file(str(folder / ckpt.OPTIM_FILE))
        if "rng.torch.all" in tensors and len(tensors["rng.torch.all"]) == accelerator.num_processes:
            # clone: a row is a view into the stacked states, and set_rng_state crashes on views
            torch.set_rng_state(tensors["rng.torch.all"][accelerator.process_index].clone())
            if "rng.cuda.all" in tensors and torch.cuda.is_available():
                torch.cuda.set_rng_state(tensors["rng.cuda.all"][accelerator.process_index].clone())
    if state.get("scaler") and accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(state["scaler"])
    return state


# ---------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------
def lm_configs(preset: str, steps=None, overrides: dict | None = None) -> tuple[LMConfig, LMTrainConfig, int, int]:
    """(LMConfig, LMTrainConfig, face K, body K) of ``preset`` with ``steps`` and field overrides
    (any LMConfig or LMTrainConfig field by name, and ``face_codes`` / ``body_codes``)."""
    p, overrides = get_preset(preset), dict(overrides or {})
    face_k = overrides.pop("face_codes", p.vq_face.codebook_size)  # the motion vocabulary: K of each tokenizer
    body_k = overrides.pop("body_codes", p.vq_body.codebook_size)
    lm_names = {f.name for f in dataclasses.fields(LMConfig)}
    tr_names = {f.name for f in dataclasses.fields(LMTrainConfig)}
    unknown = sorted(set(overrides) - lm_names - tr_names)
    if unknown:
        raise ValueError(f"unknown config fields {unknown}; LMConfig has {sorted(lm_names)}, LMTrainConfig has "
                         f"{sorted(tr_names)} (and face_codes, body_codes)")  # fmt: skip
    lcfg = dataclasses.replace(p.lm, **{k: v for k, v in overrides.items() if k in lm_names})
    tcfg = dataclasses.replace(p.lm_train, **{k: v for k, v in overrides.items() if k in tr_names})
    if steps is not None:
        tcfg = dataclasses.replace(tcfg, steps=int(steps))
    if tcfg.max_length > lcfg.context:
        raise ValueError(f"max_length ({tcfg.max_length}) exceeds the model's context ({lcfg.context})")
    return lcfg, tcfg, int(face_k), int(body_k)


def _mixed_precision(device) -> str:
    """bf16 on GPUs that support it, else fp16 (with loss scaling); fp32 on CPU and MPS."""
    if str(device) == "cpu" or not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _same_tokenizer(a, b) -> bool:
    return a.get_vocab() == b.get_vocab() and a.chat_template == b.chat_template


# ---------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------
def train_lm(pairs, tokenizer=None, preset: str = "cpu-mini", out=None, *, steps: int | None = None,
             resume: bool = False, progress: bool = True, stop_after: int | None = None, device=None,
             codebooks: dict | None = None, **overrides) -> LMTrainResult:  # fmt: skip
    """Train the language model of ``preset`` on conversation ``pairs``; returns an :class:`LMTrainResult`.

    ``pairs``: ``{"train", "test"}`` splits of rows with a ``messages`` column (see the
    module docstring). ``tokenizer``: ours or a pretrained one with motion tokens; by default
    a byte-level BPE is trained on the train split (K motion tokens per part from the
    preset's VQ codebooks, or ``face_codes=``/``body_codes=``). ``out`` defaults to
    ``runs/lm-<preset>``. ``steps`` and ``overrides`` (any LMConfig / LMTrainConfig field,
    e.g. ``lr=1e-3``, ``base="path/to/model"``, ``lora=True``) change the preset.
    ``resume=True`` continues from ``out/checkpoints/last``; ``stop_after`` stops after that
    many steps without finishing, as if killed. ``device="cpu"`` forces the CPU (pick GPUs
    with CUDA_VISIBLE_DEVICES or ``accelerate launch``). ``codebooks`` ({"face", "body"}: the
    tokenizers' codebook tensors) start the motion-token embeddings of a from-scratch model
    (``motion_init="codebook"``, the default; :func:`mini_mars.lm.init_motion_embeddings`).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    lcfg, tcfg, face_k, body_k = lm_configs(preset, steps, overrides)
    out = Path(out if out is not None else f"runs/lm-{preset}")
    acc = Accelerator(cpu=str(device) == "cpu", mixed_precision=_mixed_precision(device))
    main = acc.is_main_process
    say = print if progress and main else (lambda *a, **k: None)
    train_convs, test_convs = split_pairs(pairs, tcfg.seed, say)  # bad input fails here, before any work

    # --- a fresh start, or the run in `out` to continue -----------------------------------
    last = out / "checkpoints" / "last"
    if main:
        for f in [*out.glob(".*"), *(out / "checkpoints").glob(".*")]:  # temporaries of a run killed mid-write
            if any(f.name.startswith(f".{name}.") for name in (*RUN_FILES, "last")):
                shutil.rmtree(f) if f.is_dir() else f.unlink()
    fsdp = acc.distributed_type == "FSDP"  # sharded weights: our checkpoints would hold shards
    if resume and fsdp:
        raise ValueError("resume=True is not supported under FSDP (its checkpoints hold sharded weights); "
                         "use DDP or a single device to resume")  # fmt: skip
    resuming = resume and (last / ckpt.STATE_FILE).is_file()
    if resuming:
        raw = ckpt.read_json(out / "config.json")
        diff = (ckpt.config_differences(from_dict(LMConfig, raw["lm"]), lcfg)
                + ckpt.config_differences(from_dict(LMTrainConfig, raw["train"]), tcfg))  # fmt: skip
        asked_k = {"face_codes", "body_codes"} & set(overrides)  # else K is the saved tokenizer's
        if asked_k and (raw["motion"]["face_codes"], raw["motion"]["body_codes"]) != (face_k, body_k):
            diff.append(f"face/body codes: {raw['motion']['face_codes']}/{raw['motion']['body_codes']} vs {face_k}/{body_k}")
        if diff:
            raise ValueError(f"cannot resume {out}: its checkpoint was made with another config (checkpoint vs now): "
                             f"{'; '.join(diff)}")  # fmt: skip
        from transformers import AutoTokenizer

        saved_tok = AutoTokenizer.from_pretrained(out / "tokenizer", trust_remote_code=False)
        if tokenizer is not None and not _same_tokenizer(tokenizer, saved_tok):
            raise ValueError(f"cannot resume {out}: the tokenizer given differs from the one the run was started "
                             f"with ({len(tokenizer)} vs {len(saved_tok)} tokens); pass tokenizer=None to reuse it")  # fmt: skip
        tokenizer = saved_tok
    else:
        if resume:
            say(f"nothing to resume in {out} (no checkpoints/last/): starting from step 0")
        elif main and any((out / f).exists() for f in RUN_FILES):
            say(f"replacing the previous run in {out}")
        if main:
            for f in RUN_FILES:
                shutil.rmtree(out / f) if (out / f).is_dir() else (out / f).unlink(missing_ok=True)
            out.mkdir(parents=True, exist_ok=True)
        if tokenizer is None and lcfg.base is None:
            if main:  # BPE on the words of the train split (motion and chat tokens are stripped first)
                t0 = time.perf_counter()
                texts = (m["content"] for c in train_convs for m in c)
                tokenizer = train_text_tokenizer(texts, vocab_size=lcfg.vocab_size, face_codes=face_k, body_codes=body_k,
                                                 whole_texts=fixed_system_prompts(train_convs))  # fmt: skip
                with atomic_folder(out / "tokenizer") as tmp:
                    tokenizer.save_pretrained(tmp)
                say(f"trained a byte-level BPE tokenizer: {len(tokenizer)} tokens ({len(tokenizer) - face_k - body_k} "
                    f"text + {face_k} face + {body_k} body) in {time.perf_counter() - t0:.1f} s")  # fmt: skip
            acc.wait_for_everyone()
            if not main:  # the other processes read the main one's: identical by construction
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(out / "tokenizer", trust_remote_code=False)

    # --- model (seeded), data, optimiser, schedule ---------------------------------------
    set_seed(tcfg.seed)  # python, numpy, torch (all devices): the initial weights
    with quiet_transformers(not progress):
        model, tokenizer = build_model(lcfg, tokenizer, face_codes=face_k, body_codes=body_k)
    if codebooks is not None and lcfg.base is None and lcfg.motion_init == "codebook" and not resuming:
        init_motion_embeddings(model, tokenizer, codebooks, seed=tcfg.seed)
    motion = motion_token_ids(tokenizer)
    if not resuming and main and not (out / "tokenizer").exists():  # a given or pretrained tokenizer: keep a copy
        with atomic_folder(out / "tokenizer") as tmp:
            tokenizer.save_pretrained(tmp)
    train, test = tokenize(tokenizer, train_convs, tcfg.max_length), tokenize(tokenizer, test_convs, tcfg.max_length)
    if not train.ids or not test.ids:
        raise ValueError(f"no conversation keeps an assistant token within max_length={tcfg.max_length} in the "
                         f"{'train' if not train.ids else 'test'} split: raise max_length")  # fmt: skip
    data = {"train": train.summary(), "test": test.summary()}
    for name, d in (("train", train), ("test", test)):
        if d.truncated or d.dropped:  # never silently
            say(f"{name}: {d.truncated} of {len(d.ids) + d.dropped} conversations were longer than max_length="
                f"{tcfg.max_length} and were cut; {d.dropped} lost their whole reply and were dropped")  # fmt: skip
    n_params, n_train_params = count_parameters(model), count_parameters(model, trainable_only=True)
    pad_id = tokenizer.pad_token_id
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]  # matrices and embeddings
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]  # norms and biases: no decay
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": tcfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=tcfg.lr)  # fmt: skip
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(tcfg.steps, tcfg.warmup, tcfg.schedule, tcfg.min_lr))
    # prepare: DDP/FSDP wrapping and autocast on GPUs, the loss scaler for fp16; a no-op on one CPU.
    # The scheduler is stepped by hand (accelerate's wrapper would step it once per process).
    dmodel, dopt = acc.prepare(model, optimizer)
    world, rank, dev = acc.num_processes, acc.process_index, acc.device
    unwrapped = acc.unwrap_model(dmodel)

    step, log = 0, []
    if resuming:
        state = load_checkpoint(last, unwrapped, optimizer, sched, acc)  # restores the RNGs last of all
        if state["data"] != data:
            raise ValueError(f"cannot resume {out}: it was trained on other data ({state['data']} vs now {data})")
        if state["world_size"] != world:
            say(f"note: {out} was trained on {state['world_size']} processes, now {world}: the data order changes")
        step = state["step"]
        log = [r for r in ckpt.read_json(out / "train_log.json") if r["step"] <= step]  # drop records after last/
        say(f"resuming {out} at step {step} (eval loss {log[-1]['eval_loss']:.4f})")
    elif main:
        ckpt.write_json(out / "config.json", {
            "preset": preset, "version": __version__, "lm": to_dict(lcfg), "train": to_dict(tcfg),
            "motion": {"face_codes": len(motion.face_ids), "body_codes": len(motion.body_ids),
                       "face_ids": list(motion.face_range), "body_ids": list(motion.body_range)},
            "vocab": len(tokenizer), "n_parameters": n_params, "n_trainable": n_train_params,
            "world_size": world, "mixed_precision": acc.mixed_precision, "data": data})  # fmt: skip
    say(f"LM ({preset}): {n_params:,} parameters ({n_train_params:,} trained), vocab {len(tokenizer):,}; "
        f"{data['train']['conversations']:,} train conversations ({data['train']['tokens']:,} tokens, "
        f"{data['train']['target_tokens']:,} targets), {data['test']['conversations']:,} test; {tcfg.steps} steps "
        f"of {tcfg.batch_size} x {tcfg.grad_accum} x {world} on {dev} ({'fp32' if acc.mixed_precision == 'no' else acc.mixed_precision})")  # fmt: skip

    lengths, n_batches = train.lengths, math.ceil(len(train.ids) / tcfg.batch_size)
    batches_of = {}  # epoch -> its batches (only the current one is kept)

    def batch(g: int) -> tuple[dict, int]:
        """Global batch number ``g`` (a function of g alone: exact resume, same order under DDP)."""
        epoch, pos = divmod(g, n_batches)
        if epoch not in batches_of:
            batches_of.clear()
            batches_of[epoch] = epoch_batches(lengths, tcfg.batch_size, tcfg.mega_batch, tcfg.seed, epoch)
        idx = batches_of[epoch][pos]
        return collate(train, idx, pad_id), int(lengths[idx].sum())

    def record(ev: dict, train_loss) -> dict:
        return {"step": step, "epoch": round(step * tcfg.batch_size * tcfg.grad_accum * world / len(train.ids), 3),
                "lr": sched.get_last_lr()[0], "train_loss": train_loss, **ev}  # fmt: skip

    if not log:  # step 0: the untrained model (about ln V) is the first point of the curve
        log.append(record(evaluate(dmodel, test, tcfg.batch_size, pad_id, acc), None))
        if main:
            ckpt.write_json(out / "train_log.json", log)

    # --- the loop -------------------------------------------------------------------------
    bar = tqdm(total=tcfg.steps, initial=step, desc="train-lm", unit="step", disable=not (progress and main))
    dmodel.train()
    loss_sum, tgt_sum, tokens, seconds = torch.zeros((), device=dev), 0, 0, 0.0  # since the last record
    run_tokens, run_seconds = 0, 0.0  # this process's whole run, for tokens/s
    while step < tcfg.steps:
        t0 = time.perf_counter()
        micro = [batch((step * tcfg.grad_accum + j) * world + rank) for j in range(tcfg.grad_accum)]
        local_tgt = sum(n_targets(b["labels"]) for b, _ in micro)
        n_tgt = local_tgt
        if world > 1:  # normalise by the targets of *all* processes: DDP averages the gradients
            n_tgt = int(acc.reduce(torch.tensor(local_tgt, device=dev), "sum")) / world
        for j, (b, _) in enumerate(micro):
            b = {k: v.to(dev, non_blocking=True) for k, v in b.items()}
            # no gradient sync until the last micro-batch of the step
            with acc.no_sync(dmodel) if j < len(micro) - 1 else contextlib.nullcontext():
                logits = dmodel(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                loss = token_loss(logits, b["labels"])  # summed, so micro-batches add up exactly
                acc.backward(loss / max(n_tgt, 1))  # = mean over the step's target tokens
            loss_sum += loss.detach()
        acc.clip_grad_norm_(dmodel.parameters(), tcfg.grad_clip)  # unscales fp16 gradients first
        dopt.step()
        dopt.zero_grad(set_to_none=True)
        sched.step()  # lr for the next step
        step += 1
        n_tok = sum(n for _, n in micro)  # real (unpadded) tokens
        dt = time.perf_counter() - t0
        tgt_sum, tokens, seconds = tgt_sum + local_tgt, tokens + n_tok, seconds + dt
        run_tokens, run_seconds = run_tokens + n_tok, run_seconds + dt
        bar.update(1)
        if step % 10 == 0 or step == tcfg.steps:  # .item() waits for the GPU: not every step
            bar.set_postfix(loss=f"{loss_sum.item() / max(tgt_sum, 1):.3f}", tok_s=f"{world * tokens / seconds:,.0f}")

        if step % tcfg.eval_every == 0 or step == tcfg.steps:
            tot = torch.stack([loss_sum.double(), torch.tensor(tgt_sum, device=dev, dtype=torch.float64)])
            tot = acc.reduce(tot, "sum") if world > 1 else tot  # over all processes
            train_loss = float(tot[0] / tot[1].clamp(min=1))  # mean per target token since the last record
            ev = evaluate(dmodel, test, tcfg.batch_size, pad_id, acc)
            log.append({**record(ev, train_loss), "tokens_per_s": round(world * tokens / max(seconds, 1e-9), 1)})
            loss_sum, tgt_sum, tokens, seconds = torch.zeros((), device=dev), 0, 0, 0.0
            next_batch = step * tcfg.grad_accum * world  # the data position (a function of the step)
            state = {"step": step, "next_batch": next_batch, "epoch": next_batch // n_batches,
                     "batch_in_epoch": next_batch % n_batches, "rng": _rng_json(), "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
                     "world_size": world, "data": data}  # fmt: skip
            if main:
                ckpt.write_json(out / "train_log.json", log)
            if not fsdp:
                save_checkpoint(last, unwrapped, optimizer, sched, state, acc)
            acc.wait_for_everyone()
            if progress and main:
                bar.write(f"step {step:6d}  train loss {train_loss:.4f}  eval loss {ev['eval_loss']:.4f}  "
                          f"perplexity {ev['perplexity']:.2f}  {log[-1]['tokens_per_s']:,.0f} tok/s")  # fmt: skip
        if stop_after is not None and step >= stop_after and step < tcfg.steps:
            bar.close()
            return LMTrainResult(out, unwrapped.eval(), tokenizer, {}, log, step, finished=False)
    bar.close()

    # --- the end: the model (LoRA merged) and its metrics ----------------------------------
    acc.wait_for_everyone()
    final = unwrapped
    if hasattr(final, "merge_and_unload"):  # a peft model: fold the adapters into the weights
        final = final.merge_and_unload()
    tps = world * run_tokens / max(run_seconds, 1e-9)
    metrics = {"eval_loss": log[-1]["eval_loss"], "perplexity": log[-1]["perplexity"],
               "uniform_loss": math.log(len(tokenizer)),  # guessing uniformly over the vocabulary
               "train_tokens_per_s": round(tps, 1), "steps": step, "n_parameters": n_params,
               "n_trainable": n_train_params, "truncated": {"train": train.truncated, "test": test.truncated},
               "dropped": {"train": train.dropped, "test": test.dropped}}  # fmt: skip
    # every process calls get_state_dict: under FSDP it gathers the full weights (a collective)
    state_dict = acc.get_state_dict(dmodel) if final is unwrapped else None
    if main:
        with atomic_folder(out / "model") as tmp, quiet_transformers(not progress):
            final.save_pretrained(tmp, state_dict=state_dict)
            tokenizer.save_pretrained(tmp)
        ckpt.write_json(out / "metrics.json", metrics)
    acc.wait_for_everyone()
    say(f"eval loss {metrics['eval_loss']:.4f} (perplexity {metrics['perplexity']:.2f}; uniform "
        f"{metrics['uniform_loss']:.2f}), {tps:,.0f} train tokens/s; wrote {out}/")  # fmt: skip
    return LMTrainResult(out, final.eval(), tokenizer, metrics, log, step, finished=True)
