"""Training a face or body tokenizer, nanoGPT style: one flat loop you can read top to bottom.

    data --load_motion--> frames --random windows--> VQVAE --loss--> AdamW step
                                                      |
            every eval_every steps: test-split L1, perplexity, usage -> log.json, best/, last/

The schedule is the paper's: the learning rate rises linearly over the first ``warmup``
share of steps, then is multiplied by 0.1 at 50 % and again at 75 % of the steps.

A run folder ``out`` ends up holding::

    config.json  model.safetensors   the best tokenizer (load_tokenizer(out))
    metrics.json                     test-split metrics of the best model and the baselines
    log.json                         one record per evaluation ("epoch")
    best/                            checkpoint with the lowest test L1
    last/                            the latest checkpoint, with optimizer and RNG states

``resume=True`` continues from ``last/`` and ends exactly where an uninterrupted run of
the same seed ends: the window sampler's numpy RNG, torch's RNG (dead-code resets), AdamW
and the schedule are all in the checkpoint, and evaluation draws no random numbers.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from .config import PARTS, VQConfig, VQTrainConfig
from .config import preset as get_preset
from .motion_data import MotionFrames, input_options, load_motion
from .vqvae import VQVAE

HELD_OUT_SHARE = 0.1  # without a test split, this share of train utterances is held out


@dataclass
class TrainResult:
    """What :func:`train_tokenizer` returns."""

    out: Path  # the run folder
    model: VQVAE  # the best model (eval mode); the last one if the run was stopped early
    metrics: dict  # metrics.json (empty if the run was stopped early)
    log: list = field(default_factory=list)  # log.json records
    step: int = 0  # steps done
    finished: bool = True  # False when stopped by stop_after


# ---------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------
def pick_device(device=None) -> torch.device:
    """CUDA if present, else Apple MPS, else CPU (or the one asked for)."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def lr_factor(steps: int, warmup: float, milestones=(0.5, 0.75)):
    """The paper's schedule as a multiplier of the base lr, for torch's LambdaLR."""
    w = max(1, int(warmup * steps))

    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / w)  # linear warm-up: 1/w, 2/w, ..., 1
        return ramp * 0.1 ** sum(step >= m * steps for m in milestones)  # x0.1 at each milestone

    return factor


def load_splits(data, part: str, tcfg: VQTrainConfig, progress: bool = False,
                reference: str = "none", head_rotation: bool = False) -> tuple[MotionFrames, MotionFrames]:
    """(train, test) frames of ``part``; a held-out 10 % of train utterances if there is no test split.
    ``reference`` and ``head_rotation`` say what the tokenizer reads (``motion_data.input_options``)."""
    if isinstance(data, (str, os.PathLike)):
        from venus_analysis.loading import load_venus

        data = load_venus(str(data))
    if not hasattr(data, "keys") or "train" not in data:
        raise ValueError(f"train_tokenizer needs a DatasetDict with 'train' and 'test' splits (as load_venus(source) "
                         f"returns); got {type(data).__name__}")  # fmt: skip
    try:
        train = load_motion(data["train"], part, max_frames=tcfg.max_frames, seed=tcfg.seed, progress=progress,
                            reference=reference, head_rotation=head_rotation)
    except ValueError as err:
        raise ValueError(f"no {part} training data in the train split: {err}") from None
    if "test" in data:
        try:
            test = load_motion(data["test"], part, max_frames=tcfg.max_frames, seed=tcfg.seed, progress=progress,
                               reference=reference, head_rotation=head_rotation)
        except ValueError as err:
            raise ValueError(f"no {part} test data in the test split: {err}") from None
        return train, test
    if len(train) < 2:
        raise ValueError(f"no test split, and only {len(train)} train utterance: too few to hold some out")
    order = np.random.default_rng(tcfg.seed).permutation(len(train))
    k = max(1, int(round(HELD_OUT_SHARE * len(train))))
    print(f"no test split: holding out {k} of {len(train)} train utterances ({HELD_OUT_SHARE:.0%}) for evaluation")
    return train.select(np.sort(order[k:])), train.select(np.sort(order[:k]))


@torch.no_grad()
def evaluate_test(model: VQVAE, test: MotionFrames, batch_size: int = 64, amp=nullcontext) -> dict:
    """Masked L1 in VENUS units, perplexity and codebook usage over the whole test split.

    The model runs in eval mode (no EMA update, no dead-code reset), so evaluating draws no
    random numbers and changes nothing: training continues exactly as without it."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    err, n, counts = 0.0, 0, torch.zeros(model.cfg.codebook_size, dtype=torch.float64)
    for x, mask in test.batches(batch_size):
        x, mask = x.to(device), mask.to(device)
        with amp():
            out = model(x, mask)
        err += float(((out.recon.float() - x).abs().mean(-1) * mask).sum())  # sum over real frames of mean |x_hat - x|
        n += int(mask.sum())
        counts += torch.bincount(out.codes[out.code_mask].cpu(), minlength=model.cfg.codebook_size).double()
    model.train(was_training)
    p = counts / counts.sum().clamp(min=1)  # how often each code is used
    return {"l1": err / max(n, 1),
            "perplexity": float(torch.exp(-(p * torch.log(p + 1e-12)).sum())),  # exp(entropy): K if uniform
            "codebook_usage": float((counts > 0).double().mean())}  # fmt: skip


def final_metrics(model: VQVAE, test: MotionFrames, train: MotionFrames) -> tuple[dict, str]:
    """Test metrics of the model and the baselines, and their table (``vq_metrics`` if present)."""
    if importlib.util.find_spec(f"{__package__}.vq_metrics") is not None:  # the full metrics module
        from . import vq_metrics

        metrics = vq_metrics.evaluate(model, test, train)
        return metrics, vq_metrics.format_metrics(metrics)
    # Fallback: the model and the mean-pose baseline (predict the mean training frame).
    metrics = evaluate_test(model, test)
    mean = train.normalization()[0].astype(np.float32)
    metrics["mean_pose_l1"] = float(np.abs(test.frames - mean).mean())
    table = (f"{'metric':16s} {'model':>10s} {'mean pose':>10s}\n{'l1':16s} {metrics['l1']:10.4f} "
             f"{metrics['mean_pose_l1']:10.4f}\n{'perplexity':16s} {metrics['perplexity']:10.2f}\n"
             f"{'codebook_usage':16s} {metrics['codebook_usage']:10.2%}")
    return metrics, table


def _configs(preset: str, part: str, steps, overrides: dict) -> tuple[VQConfig, VQTrainConfig]:
    """The preset's configs with ``steps`` and any field overrides (by name) applied."""
    p = get_preset(preset)
    vq, tr = p.vq(part), p.vq_train
    vq_names, tr_names = {f.name for f in dataclasses.fields(VQConfig)}, {f.name for f in dataclasses.fields(VQTrainConfig)}
    unknown = sorted(set(overrides) - vq_names - tr_names - {"part"})
    if unknown:
        raise ValueError(f"unknown config fields {unknown}; VQConfig has {sorted(vq_names)}, "
                         f"VQTrainConfig has {sorted(tr_names)}")  # fmt: skip
    vq = dataclasses.replace(vq, **{k: v for k, v in overrides.items() if k in vq_names - {"part"}})
    tr = dataclasses.replace(tr, **{k: v for k, v in overrides.items() if k in tr_names})
    if steps is not None:
        tr = dataclasses.replace(tr, steps=int(steps))
    if tr.window % vq.frames_per_token:
        raise ValueError(f"window ({tr.window}) must be a multiple of frames_per_token ({vq.frames_per_token})")
    return vq, tr


def _data_summary(train: MotionFrames, test: MotionFrames) -> dict:
    """What a resumed run checks it trains on the same data."""
    return {"train_utterances": len(train), "train_frames": train.n_frames,
            "test_utterances": len(test), "test_frames": test.n_frames}  # fmt: skip


RUN_FILES = ("best", "last", "log.json", "metrics.json", ckpt.CONFIG_FILE, ckpt.MODEL_FILE)


# ---------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------
def train_tokenizer(data, part: str, preset: str = "cpu-mini", out=None, *, steps: int | None = None,
                    resume: bool = False, device=None, progress: bool = True, stop_after: int | None = None,
                    **overrides) -> TrainResult:
    """Train the ``part`` ("face" or "body") tokenizer of ``preset`` on ``data``.

    ``data``: a DatasetDict with train and test splits (``load_venus(source)``), or a source
    name. ``out`` defaults to ``runs/vq-<part>-<preset>``. ``steps`` and ``overrides``
    (any VQConfig / VQTrainConfig field, e.g. ``seed=1``, ``eval_every=50``, ``width=64``)
    change the preset. ``resume=True`` continues from ``out/last``. ``stop_after`` stops
    after that many steps without finishing, as if the run were killed (for tests and
    demos of resuming).
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}; got {part!r}")
    vcfg, tcfg = _configs(preset, part, steps, overrides)
    out = Path(out if out is not None else f"runs/vq-{part}-{preset}")
    say = print if progress else (lambda *a, **k: None)
    device = pick_device(device)

    # --- data: frames of every utterance; normalisation from the train frames ---------
    train, test = load_splits(data, part, tcfg, progress=progress, **input_options(vcfg))
    summary = _data_summary(train, test)
    say(f"{part} tokenizer, preset {preset}: {summary['train_utterances']} train utterances "
        f"({summary['train_frames']:,} frames), {summary['test_utterances']} test; {tcfg.steps} steps on {device}")  # fmt: skip

    # --- model, optimiser, schedule: all seeded -----------------------------------------
    torch.manual_seed(tcfg.seed)  # weights and codebook initialisation, dead-code resets
    rng = np.random.default_rng(tcfg.seed)  # which windows are trained on
    model = VQVAE(vcfg)
    model.set_normalization(*train.normalization())  # x_norm = (x - mean) / std, per column
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(tcfg.steps, tcfg.warmup, tcfg.milestones))
    # mixed precision on CUDA only: bf16 where supported (no scaler needed), else fp16 + loss scaling
    amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if device.type == "cuda" else None
    amp = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp_dtype else nullcontext
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    # --- a fresh start, or where the last checkpoint left off ----------------------------
    step, best, log = 0, math.inf, []
    last = out / "last"
    for f in out.glob(".*"):  # temporary files and folders of a run killed mid-write
        if any(f.name.startswith(f".{name}.") for name in RUN_FILES):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    if resume and (last / ckpt.STATE_FILE).is_file():
        saved_vq, saved_tr, raw = ckpt.read_config(last)
        diff = ckpt.config_differences(saved_vq, vcfg) + ckpt.config_differences(saved_tr, tcfg)
        if diff:
            raise ValueError(f"cannot resume {out}: its checkpoint was made with another config "
                             f"(checkpoint vs now): {'; '.join(diff)}")  # fmt: skip
        state = ckpt.read_json(last / ckpt.STATE_FILE)
        if state["data"] != summary:
            raise ValueError(f"cannot resume {out}: it was trained on other data ({state['data']} vs now {summary})")
        ckpt.load_weights(model, last)
        ckpt.load_optimizer(opt, sched, last)  # AdamW moments, lr schedule, torch RNG
        rng.bit_generator.state = state["numpy_rng"]
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step, best = state["step"], state["best_l1"]
        log = [r for r in ckpt.read_json(out / "log.json") if r["step"] <= step]  # drop records after last/
        say(f"resuming {out} at step {step} (best test L1 so far {best:.4f})")
    else:
        if resume:
            say(f"nothing to resume in {out} (no last/ checkpoint): starting from step 0")
        elif any((out / f).exists() for f in RUN_FILES):
            say(f"replacing the previous run in {out}")
        for f in RUN_FILES:
            shutil.rmtree(out / f) if (out / f).is_dir() else (out / f).unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        ckpt.write_json(out / ckpt.CONFIG_FILE, ckpt.config_dict(model, tcfg, preset))

    # --- the loop -----------------------------------------------------------------------
    from tqdm.auto import tqdm

    bar = tqdm(total=tcfg.steps, initial=step, desc=f"train-vq {part}", disable=not progress, unit="step")
    t0, sums, n = time.perf_counter(), {}, 0
    while step < tcfg.steps:
        x, mask = train.random_windows(rng, tcfg.batch_size, tcfg.window)  # (B, window, D), (B, window)
        x, mask = x.to(device), mask.to(device)
        with amp():
            o = model(x, mask)  # loss = recon + 0.5 velocity + beta commitment (masked)
        opt.zero_grad(set_to_none=True)
        scaler.scale(o.loss).backward()
        scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)  # ||g|| <= clip
        scaler.step(opt)
        scaler.update()
        sched.step()  # lr for the next step
        step += 1
        for k, v in {"loss": o.loss.item(), **o.losses}.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        bar.update(1)
        bar.set_postfix(loss=f"{o.loss.item():.3f}", ppl=f"{o.losses['perplexity']:.0f}")

        if step % tcfg.eval_every == 0 or step == tcfg.steps:  # one "epoch" of the log
            ev = evaluate_test(model, test, amp=amp)
            record = {"epoch": len(log) + 1, "step": step, "lr": sched.get_last_lr()[0],
                      **{f"train_{k}": v / n for k, v in sums.items()},
                      **{f"test_{k}": v for k, v in ev.items()}, "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
            sums, n = {}, 0
            log.append(record)
            if ev["l1"] < best:  # keep the model with the lowest test L1
                best = ev["l1"]
                ckpt.save_checkpoint(out / "best", model, state={"step": step, "test_l1": best},
                                     train_cfg=tcfg, preset=preset)  # fmt: skip
            ckpt.write_json(out / "log.json", log)
            state = {"step": step, "best_l1": best, "numpy_rng": rng.bit_generator.state, "data": summary,
                     "scaler": scaler.state_dict() if scaler.is_enabled() else None}  # fmt: skip
            ckpt.save_checkpoint(last, model, optimizer=opt, scheduler=sched, state=state, train_cfg=tcfg, preset=preset)
            if progress:
                bar.write(f"step {step:6d}  train loss {record['train_loss']:.4f}  test L1 {ev['l1']:.4f}  "
                          f"perplexity {ev['perplexity']:.1f}  usage {ev['codebook_usage']:.0%}")  # fmt: skip
        if stop_after is not None and step >= stop_after and step < tcfg.steps:
            bar.close()
            return TrainResult(out, model.eval(), {}, log, step, finished=False)
    bar.close()

    # --- the end: the best model, its test metrics next to the baselines ----------------
    best_model = ckpt.load_weights(VQVAE(vcfg), out / "best").to(device).eval()
    ckpt.save_model_files(out, best_model, tcfg, preset)  # out/ itself is a tokenizer folder
    metrics, table = final_metrics(best_model, test, train)
    metrics = {**{k: float(v) for k, v in metrics.items()},
               "best_step": ckpt.read_json(out / "best" / ckpt.STATE_FILE)["step"], "steps": tcfg.steps}  # fmt: skip
    ckpt.write_json(out / "metrics.json", metrics)
    say(f"\n{part} tokenizer ({preset}), best at step {metrics['best_step']}; test split:\n{table}\nwrote {out}/")
    return TrainResult(out, best_model, metrics, log, step, finished=True)
