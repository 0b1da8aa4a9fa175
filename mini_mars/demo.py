"""``venus-mars demo``: the whole of mini MARS, end to end, on the built-in synthetic VENUS.

    synthetic VENUS --> summary --> face + body tokenizers --> chat pairs --> language model
        --> evaluation (NLL vs baselines, planted associations, cue-dependent replies)
        --> runs/demo/report.html + metrics.json

Every step says what it does and how long it took. The run folder::

    out/vq/face, out/vq/body   the tokenizers (train_vq runs)
    out/mars/                  the language model run (pipeline.train_mars), with copies of the tokenizers
    out/metrics.json           one flat dict of floats (elapsed_seconds, perplexity, nll_face, ...)
    out/report.html            metrics with their baselines, and a few replies animated next to the real ones
"""

from __future__ import annotations

import functools
import html
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from venus_analysis.files import atomic_write_text

from .checkpoint import write_json

# Data per preset: the smoke demo must finish in under a minute, cpu-mini in a few.
DATA_SIZE = {"smoke": (24, 60.0)}  # (segments, seconds per segment); others: the generator's default
DEFAULT_DATA = (150, 120.0)
# Generator options per preset. cpu-gestures, the model that can nod, also hears backchannels
# ("Yes, exactly.", said slowly, with the nod its words trigger): without them no training
# reply is shorter than 4 words, and two typed words are text the model has never seen end a turn.
DATA_OPTIONS = {"cpu-gestures": {"backchannel_rate": 0.12}}
DATA_FILE = "data.json"  # the run's generate_venus arguments, to rebuild its data (notebook 08)
# Replies generated for the evaluation (association; motion scores use at most half).
EVAL_REPLIES = {"smoke": 12}  # others: 100
REPLIES_SHOWN = 3


def _say(progress: bool):
    return print if progress else (lambda *a, **k: None)


def run_demo(preset: str = "cpu-mini", out="runs/demo", *, segments: int | None = None,
             seconds: float | None = None, seed: int = 0, lm_steps: int | None = None,
             vq_steps: int | None = None, progress: bool = True) -> dict:
    """Run everything and write ``out``; returns the metrics dict (also in ``metrics.json``).
    ``lm_steps`` overrides the preset's language-model steps (cpu-mini: 600, which learn the
    motion codes and the cue-dependent replies; 300 learn the codes but not yet the replies);
    ``vq_steps`` the tokenizers' (cpu-mini: 400). ``elapsed_seconds`` counts all of the
    call, from the imports of torch, transformers and datasets to the report written."""
    t0 = time.perf_counter()
    from venus_analysis import schema
    from venus_analysis.summary import format_summary, summarize
    from venus_analysis.synthetic import generate_venus

    from .config import preset as preset_config
    from .lm_eval import format_lm_metrics
    from .pipeline import load_mars, train_mars
    say = _say(progress)
    out = Path(out)
    timings = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = now - since
        say(f"[{now - t0:6.1f} s] {name}: {now - since:.1f} s")
        return now

    t = lap("imports (torch, transformers, datasets)", t0)
    data_kw = demo_data(preset, segments, seconds, seed)
    options = "".join(f", {k} {v}" for k, v in DATA_OPTIONS.get(preset, {}).items())
    say(f"venus-mars demo, preset {preset}: synthetic VENUS ({data_kw['n_segments']} segments x "
        f"{data_kw['seconds']:g} s, seed {seed}{options})")  # fmt: skip
    data, truth = generate_venus(**data_kw, progress=progress, return_truth=True)
    write_json(out / DATA_FILE, data_kw)
    t = lap("data", t)
    summary = summarize(data)
    say(format_summary(summary))
    t = lap("summary", t)

    fpt = preset_config(preset).vq_face.frames_per_token
    say(f"\n1/3 motion tokenizers: face and body VQ-VAEs turn every {fpt} frames ({fpt / schema.FPS:.2f} s) into one code")
    for line in train_tokenizers(preset, out / "vq", data_kw, steps=vq_steps, progress=progress):
        say(line)
    t = lap("face + body tokenizers", t)

    say("\n2/3 the language model: replies to the other speaker, words and <FACE_k><BODY_k> pairs")
    result, pairs, _ = train_mars(data, out / "vq", preset, out / "mars", steps=lm_steps, progress=progress, seed=seed)
    t = lap("pairs + language model", t)

    say("\n3/3 evaluation: perplexity and NLL against baselines, planted associations, cue-dependent replies")
    mars = load_mars(out / "mars")
    metrics, tables = evaluate_run(mars, out / "mars", pairs, truth, EVAL_REPLIES.get(preset, 100),
                                   parallel=_parallel(preset), progress=progress, seed=seed)  # fmt: skip
    t = lap("evaluation", t)
    replies = _example_replies(mars, pairs["test"], tables)
    metrics = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    metrics["lm_eval_loss"] = float(result.metrics.get("eval_loss", math.nan))
    atomic_write_text(out / "report.html", build_report(metrics, tables, replies, preset, timings))
    lap("report", t)
    metrics["elapsed_seconds"] = time.perf_counter() - t0  # all of it, the imports and the report included
    write_json(out / "metrics.json", metrics)
    say("\n" + format_lm_metrics(metrics))
    say(f"\ndone in {metrics['elapsed_seconds']:.0f} s: {out / 'report.html'}, {out / 'metrics.json'}")
    return metrics


def demo_data(preset: str, segments: int | None = None, seconds: float | None = None, seed: int = 0) -> dict:
    """The ``generate_venus`` keyword arguments of the demo's data for ``preset``
    (``DATA_SIZE``, ``DATA_OPTIONS``); ``segments`` and ``seconds`` override the size."""
    n_seg, secs = DATA_SIZE.get(preset, DEFAULT_DATA)
    return {"n_segments": segments or n_seg, "seconds": seconds or secs, "seed": seed, **DATA_OPTIONS.get(preset, {})}


def run_data(run_dir) -> dict:
    """The ``generate_venus`` keyword arguments a demo run's data was made with: its
    ``data.json``, in ``run_dir`` or its parent (the demo's ``out`` holds it, ``out/mars`` the
    model); ``{}``, the generator's defaults, for a run without one."""
    from .checkpoint import read_json

    for folder in (Path(run_dir), Path(run_dir).parent):
        if (folder / DATA_FILE).is_file():
            return read_json(folder / DATA_FILE)
    return {}


def train_tokenizers(preset: str, out, data_args: tuple | dict, *, steps: int | None = None, parallel: bool | None = None,
                     progress: bool = True) -> list[str]:  # fmt: skip
    """Train the face and body tokenizers of ``preset`` on ``generate_venus(*data_args)``
    (a tuple: segments, seconds, seed) or ``generate_venus(**data_args)`` (a dict, as from
    :func:`demo_data`) into ``out/face`` and ``out/body``; returns one summary line per
    part. ``parallel``: side by side in two processes of one thread each (both cores busy,
    no contention between torch threads); by default when there are two or more cores and
    the preset is not ``smoke``, whose tokenizers train in less time than two fresh
    interpreters take to start.
    ``steps`` overrides the preset's training steps. Each part is evaluated on the test split
    once, at the end (``venus-mars train-vq`` logs the curve)."""
    say = _say(progress)
    out = Path(out)
    if parallel is None:
        parallel = _parallel(preset)
    if not parallel:
        return [_train_part(part, preset, str(out / part), data_args, steps, one_thread=False) for part in ("face", "body")]
    say("training the face and body tokenizers side by side in two processes ...")
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: safe with torch and tokenizers threads
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        jobs = [pool.submit(_train_part, part, preset, str(out / part), data_args, steps) for part in ("face", "body")]
        return [job.result() for job in jobs]


def _parallel(preset: str) -> bool:
    """Work side by side in two processes: with two or more cores, and not for ``smoke``,
    whose parts take less time than a fresh interpreter takes to start."""
    return (os.cpu_count() or 1) >= 2 and preset != "smoke"


def evaluate_run(mars, run_dir, pairs, truth, n_replies: int, *, parallel: bool = False, progress: bool = True,
                 seed: int = 0) -> tuple[dict, dict]:  # fmt: skip
    """``lm_eval.evaluate_lm`` of the trained ``mars`` (saved in ``run_dir``) on ``pairs``,
    with ``n_replies`` generated replies (half of them for the motion scores).

    ``parallel``: the association (the longest part: the model gestures ``n_replies`` real
    replies token by token, which one thread does as fast as two) starts in a second process
    that loads the run from ``run_dir``, while this one does the rest on one thread and then
    joins in: the two take the association's replies from one shared counter
    (``lm_eval.association_counts``). The numbers are those of the serial evaluation."""
    import torch

    from .lm_eval import _rows, association_counts, association_summary, evaluate_lm, merge_association

    args = (mars.model, mars.tokenizer, mars.face_vq, mars.body_vq, pairs["train"], pairs["test"], truth)
    kw = dict(progress=progress, max_replies=n_replies, max_motion_replies=max(1, n_replies // 2), seed=seed)
    if not parallel or truth is None:
        return evaluate_lm(*args, **kw)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: safe with torch and tokenizers threads
    counter = ctx.Value("i", 0)  # the next reply of the association to do, shared by both processes
    threads = torch.get_num_threads()
    test_rows = _rows(pairs["test"])
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_share_counter, initargs=(counter,)) as pool:
        job = pool.submit(_association_part, str(run_dir), test_rows, n_replies, seed)
        torch.set_num_threads(1)  # the other core is the association's
        try:
            metrics, tables = evaluate_lm(*args, **kw, with_association=False)
            mine = association_counts(*args[:4], test_rows, max_replies=n_replies, seed=seed,
                                      next_reply=functools.partial(_take, counter))  # fmt: skip
        finally:
            torch.set_num_threads(threads)
        merge_association(metrics, tables, association_summary(job.result(), mine))
    return metrics, tables


_COUNTER = None  # evaluate_run's shared counter, in its worker process


def _share_counter(counter) -> None:
    """Worker start-up: keep the shared counter of association replies."""
    global _COUNTER
    _COUNTER = counter


def _take(counter) -> int:
    """The next association reply number from a shared counter (and count it as taken)."""
    with counter.get_lock():
        j = counter.value
        counter.value += 1
    return j


def _association_part(run_dir: str, test_rows: list[dict], n_replies: int, seed: int) -> dict:
    """``lm_eval.association_counts`` of the run in ``run_dir``, in a worker process of one
    thread, for the replies it takes from the shared counter."""
    import torch

    from .lm_eval import association_counts
    from .pipeline import load_mars

    torch.set_num_threads(1)
    mars = load_mars(run_dir)
    return association_counts(mars.model, mars.tokenizer, mars.face_vq, mars.body_vq, test_rows, max_replies=n_replies,
                              seed=seed, next_reply=functools.partial(_take, _COUNTER))  # fmt: skip


def _train_part(part: str, preset: str, out: str, data_args: tuple | dict, steps: int | None = None,
                one_thread: bool = True) -> str:  # fmt: skip
    """One tokenizer, e.g. in a worker process (the cached synthetic data is memory-mapped,
    not copied); returns its summary line."""
    import torch

    from venus_analysis.synthetic import generate_venus

    from .config import preset as preset_config
    from .train_vq import train_tokenizer

    if one_thread:
        torch.set_num_threads(1)
    kw = dict(data_args) if isinstance(data_args, dict) else dict(zip(("n_segments", "seconds", "seed"), data_args))
    # one test-split evaluation, at the end (so the last model is the one kept): the learning
    # curve is train-vq's to show, and the evaluations in between cost the body tokenizer, the
    # longer part, 9 s of its 104 (cpu-mini); in the demo runs measured the last was the best
    n_steps = steps or preset_config(preset).vq_train.steps
    result = train_tokenizer(generate_venus(**kw, progress=False), part, preset, out, steps=steps, progress=False,
                             seed=kw.get("seed", 0), eval_every=n_steps)  # fmt: skip
    m = result.metrics
    return f"  {part}: test L1 {m['l1']:.4f} (mean pose {m.get('mean_pose_l1', float('nan')):.4f}), codebook use {m['codebook_usage']:.0%}"


def _example_replies(mars, test_pairs, tables, n: int = REPLIES_SHOWN) -> list[dict]:
    """A few test prompts with the real reply and MARS's, both as decoded motion."""
    from .generate import reply_from_text

    rows = []
    for i in range(min(n, len(test_pairs))):
        pair = test_pairs[i]
        user = next(m["content"] for m in pair["messages"] if m["role"] == "user")
        real = reply_from_text(next(m["content"] for m in pair["messages"] if m["role"] == "assistant"),
                               mars.face_vq, mars.body_vq)  # fmt: skip
        rows.append({"prompt": pair["user_text"], "real": pair["assistant_text"], "generated": mars.reply(user, seed=i),
                     "real_reply": real})  # fmt: skip
    return rows


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}th{background:#f0f0f0}"
        ".note{color:#666;font-style:italic}")  # fmt: skip


def _metric_rows(metrics: dict) -> list[dict]:
    def g(k):
        v = metrics.get(k, math.nan)
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    return [
        {"measure": "NLL of face tokens", "model": g("nll_face"), "unigram": g("nll_face_unigram"), "uniform": g("nll_face_uniform")},
        {"measure": "NLL of body tokens", "model": g("nll_body"), "unigram": g("nll_body_unigram"), "uniform": g("nll_body_uniform")},
        {"measure": "perplexity (assistant tokens)", "model": g("perplexity"), "unigram": "", "uniform": ""},
        {"measure": "planted association precision", "model": g("association_precision"),
         "unigram": "", "uniform": "", "data": g("association_precision_data")},
        {"measure": "planted association recall", "model": g("association_recall"),
         "unigram": "", "uniform": "", "data": g("association_recall_data")},
        {"measure": "cue-dependent reply accuracy, with cues", "model": g("cue_reply_accuracy_with_cues"),
         "unigram": "", "uniform": "0.5 (chance)"},
        {"measure": "cue-dependent reply accuracy, cues masked", "model": g("cue_reply_accuracy_cues_masked"),
         "unigram": "", "uniform": "0.5 (chance)"},
        {"measure": "cue-dependent forced choice, with cues", "model": g("cue_choice_accuracy_with_cues"),
         "unigram": "", "uniform": "0.5 (chance)"},
        {"measure": "cue-dependent forced choice, cues masked", "model": g("cue_choice_accuracy_cues_masked"),
         "unigram": "", "uniform": "0.5 (chance)"},
    ]  # fmt: skip


def build_report(metrics: dict, tables: dict, replies: list[dict], preset: str, timings: dict) -> str:
    """The demo's standalone HTML page (plotly.js inlined once; needs no network)."""
    from plotly.offline import get_plotlyjs

    from venus_analysis.animation import utterance_figure
    from venus_analysis.report import html_table

    from .generate import Reply

    e = html.escape
    parts = [f"<h1>mini MARS demo ({e(preset)})</h1>",
             "<p>A small MARS trained on the synthetic VENUS in this run: two motion tokenizers and a language "
             "model that answers the other speaker with words and gesture tokens. Numbers below are on the test "
             "split; baselines sit next to the model. The paper's best NLL-F (7.295) is worse than uniform "
             "guessing over its 512 codes (ln 512 = 6.24): here you can see whether ours beats both.</p>",
             "<h2>Metrics</h2>", html_table(_metric_rows(metrics))]  # fmt: skip
    for name, rows in (tables or {}).items():
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            parts += [f"<h3>{e(str(name))}</h3>", html_table(rows[:30])]
    parts.append("<h2>Replies</h2>")
    for k, r in enumerate(replies):
        gen: Reply = r["generated"]
        parts.append(f"<h3>Prompt: “{e(r['prompt'])}”</h3><p>Real reply: “{e(r['real'])}”<br>"
                     f"MARS: “{e(gen.plain_text)}” ({gen.parsed.n_pairs} gesture pairs)</p>")  # fmt: skip
        if len(gen.face):
            fig = gen.figure(title="MARS's reply")
            parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
        real = r["real_reply"]
        if len(real.face):
            parts.append(utterance_figure(real.utterance(), words=real.word_track(),
                                          title="The real reply (through the tokenizers)").to_html(
                full_html=False, include_plotlyjs=False))  # fmt: skip
    parts += ["<h2>Timings</h2>", html_table([{"step": k, "seconds": f"{v:.1f}"} for k, v in timings.items()])]
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>mini MARS demo</title>"
            f"<style>{_CSS}</style><script>{get_plotlyjs()}</script></head><body>{''.join(parts)}</body></html>\n")
