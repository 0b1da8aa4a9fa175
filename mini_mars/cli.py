"""The one command-line entry point, ``venus-mars``.

It sits on top of both layers (``venus_analysis`` for data, ``mini_mars`` for the model),
so it lives here and never inside ``venus_analysis``. Subcommands::

    venus-mars demo                         the main job on the built-in synthetic VENUS
    venus-mars data synth --out DIR         write a synthetic VENUS dataset (train/test)
    venus-mars data validate SOURCE         check every row; exit 0 clean, 1 problems, 2 unreadable
    venus-mars data info SOURCE             a summary table (segments, utterances, words, ...)
    venus-mars analyze SOURCE --out DIR     statistics, cues, bias audit: JSON, report.html, data card
    venus-mars train-vq --part face|body    train a motion tokenizer (VQ-VAE); metrics next to baselines
    venus-mars train-lm --vq DIR            chat pairs through the tokenizers in DIR, then the language model
    venus-mars generate --run DIR --prompt  MARS's reply (words + gestures); --say puts gestures on given words
    venus-mars clean-notebooks              student copies of the notebooks (solutions removed) in notebooks/clean

SOURCE is ``synthetic``, a Hub name such as ``winston1214/VENUS-1K``, or a local folder or
parquet file (see ``venus_analysis.loading.load_venus``).
"""

from __future__ import annotations

import argparse
import sys
import time

EXIT_OK, EXIT_PROBLEMS, EXIT_UNREADABLE = 0, 1, 2


def _add_synth_args(p: argparse.ArgumentParser) -> None:
    from venus_analysis.synthetic import SyntheticConfig

    d = SyntheticConfig()
    p.add_argument("--segments", type=int, default=d.n_segments, help=f"segments to generate (default {d.n_segments})")
    p.add_argument("--seconds", type=float, default=d.seconds, help=f"seconds per segment (default {d.seconds:g}; 600 = real VENUS)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default 0)")


def _load(source: str, split: str | None, args, on_error: str = "ignore") -> object:
    """Load a source for the data commands, the synthetic one with the CLI's knobs."""
    from venus_analysis.loading import load_venus

    kwargs = {}
    if source == "synthetic":
        kwargs = {"n_segments": args.segments, "seconds": args.seconds, "seed": args.seed}
    return load_venus(source, split=split, on_error=on_error, **kwargs)


def _load_or_say(source: str, split: str | None, args, on_error: str = "ignore"):
    """:func:`_load`, or None after saying why the source cannot be read at all (the
    commands then exit with EXIT_UNREADABLE)."""
    try:
        return _load(source, split, args, on_error=on_error)
    except Exception as err:  # anything that stops us reading the source at all
        print(f"cannot read {source!r}: {err}", file=sys.stderr)
        return None


def cmd_demo(args) -> int:
    """Everything end to end on the synthetic VENUS: tokenizers, LM, evaluation, report."""
    from .demo import run_demo

    run_demo(args.preset, args.out, segments=args.segments, seconds=args.seconds, seed=args.seed, lm_steps=args.lm_steps,
             vq_steps=args.vq_steps)
    return EXIT_OK


def cmd_data_synth(args) -> int:
    """Write a synthetic VENUS dataset (train/test) and its planted truth to a folder."""
    from venus_analysis.summary import format_summary, summarize
    from venus_analysis.synthetic import SyntheticConfig, generate, save_synthetic

    cfg = SyntheticConfig(n_segments=args.segments, seconds=args.seconds, seed=args.seed)
    data, truth = generate(cfg, progress=True)
    out = save_synthetic(data, truth, args.out)
    print(f"wrote {out} (load it with load_venus({str(out)!r}))")
    print(format_summary(summarize(data)))
    return EXIT_OK


def cmd_data_validate(args) -> int:
    """Validate every row of a source; print the report; exit 0, 1 or 2."""
    from venus_analysis.validation import validate

    data = _load_or_say(args.source, args.split, args)
    if data is None:
        return EXIT_UNREADABLE
    report = validate(data, progress=True)
    print(report.format(max_lines=args.max_lines))
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def cmd_data_info(args) -> int:
    """Print the summary table of a source."""
    from venus_analysis.summary import format_summary, summarize

    data = _load_or_say(args.source, args.split, args)
    if data is None:
        return EXIT_UNREADABLE
    print(format_summary(summarize(data, args.split, progress=True)))
    return EXIT_OK


def cmd_analyze(args) -> int:
    """Run the whole dataset analysis and write its JSON, report and data card."""
    from venus_analysis.analysis import analyze, write_analysis

    t0 = time.perf_counter()
    # on_error="skip": bad rows are removed and counted (printed by the loader), not fatal.
    data = _load_or_say(args.source, args.split, args, on_error="skip")
    if data is None:
        return EXIT_UNREADABLE
    name = args.name or ("synthetic VENUS" if args.source == "synthetic" else args.source)
    result = analyze(data, source=name, per_video=args.per_video, n_boot=args.n_boot, seed=args.seed,
                     workers=args.workers, cluster=not args.no_clusters, progress=True)  # fmt: skip
    out = write_analysis(result, args.out, dataset_name=name, command="venus-mars " + " ".join(args.argv))
    r = result.results
    print(f"\nanalysed {r['meta']['segments']} segments in {time.perf_counter() - t0:.1f} s; wrote {out}/")
    for f in ("stats.json", "cues.json", "bias.json", "meta.json", "report.html", "data_card.md"):
        print(f"  {f:13s} {(out / f).stat().st_size / 1024:8.1f} KiB")
    flagged = r["bias"]["flagged"]
    print(f"bias audit: {len(flagged)} flagged group differences (see report.html)")
    return EXIT_OK


def cmd_train_vq(args) -> int:
    """Train the face or body tokenizer; write checkpoints, log.json and metrics.json."""
    from .train_vq import train_tokenizer

    data = _load_or_say(args.data, None, args, on_error="skip")
    if data is None:
        return EXIT_UNREADABLE
    out = args.out or f"runs/vq-{args.part}-{args.preset}"
    seed = args.seed if args.train_seed is None else args.train_seed  # --seed seeds data and training
    t0 = time.perf_counter()
    try:
        train_tokenizer(data, args.part, args.preset, out, steps=args.steps, resume=args.resume, device=args.device,
                        seed=seed)  # fmt: skip
    except ValueError as err:  # no usable data, a checkpoint that does not match, ...
        print(f"train-vq: {err}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def cmd_train_lm(args) -> int:
    """Build chat pairs through two trained tokenizers and train the language model."""
    from .pipeline import train_mars

    data = _load_or_say(args.data, None, args, on_error="skip")
    if data is None:
        return EXIT_UNREADABLE
    out = args.out or f"runs/mars-{args.preset}"
    overrides = {k: v for k, v in (("base", args.base), ("lora", args.lora or None)) if v is not None}
    t0 = time.perf_counter()
    try:
        result, _, _ = train_mars(data, args.vq, args.preset, out, steps=args.steps, resume=args.resume,
                                  context_turns=args.context_turns, text_only=args.text_only, **overrides)  # fmt: skip
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"train-lm: {err}", file=sys.stderr)
        return EXIT_PROBLEMS
    m = result.metrics
    print(f"trained in {time.perf_counter() - t0:.1f} s: eval loss {m.get('eval_loss', float('nan')):.3f}, "
          f"perplexity {m.get('perplexity', float('nan')):.1f}; run folder {out}/")  # fmt: skip
    return EXIT_OK


def cmd_generate(args) -> int:
    """Load a trained run, answer a prompt (or gesture given words), optionally write HTML."""
    from .pipeline import load_mars

    try:
        mars = load_mars(args.run)
    except (FileNotFoundError, OSError, ValueError) as err:
        print(f"generate: {err}", file=sys.stderr)
        return EXIT_UNREADABLE
    t0 = time.perf_counter()
    if args.say:
        reply = mars.say(args.say, args.prompt or "", temperature=args.temperature, seed=args.seed)
    else:
        if not args.prompt:
            print("generate: give --prompt (what the user says) or --say (words to gesture)", file=sys.stderr)
            return EXIT_PROBLEMS
        reply = mars.reply(args.prompt, temperature=args.temperature, seed=args.seed, mask_cues=False)
    dt = time.perf_counter() - t0
    print(reply.text)
    print(f"\nwords: {reply.plain_text}\n{reply.parsed.n_pairs} gesture pairs ({len(reply.face) / 25:.2f} s of motion); "
          f"generated and decoded in {dt:.2f} s")  # fmt: skip
    if args.html:
        from venus_analysis.animation import save_html

        if len(reply.face) == 0:
            print("no gestures in this reply: nothing to animate", file=sys.stderr)
            return EXIT_PROBLEMS
        print(f"wrote {save_html(reply.figure(), args.html)}")
    return EXIT_OK


def cmd_clean_notebooks(args) -> int:
    """Write the student copy (solutions removed, outputs cleared) of every numbered notebook."""
    from venus_analysis.notebook_clean import count_solutions, load_notebook, write_clean

    try:
        written = write_clean(args.src, args.out)
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"clean-notebooks: {err}", file=sys.stderr)
        return EXIT_UNREADABLE
    total = 0
    for path in written:
        removed = count_solutions(load_notebook(f"{args.src}/{path.name}"))
        total += removed
        print(f"  {path} ({removed} solution cells removed)")
    print(f"wrote {len(written)} clean notebooks to {args.out} ({total} solution cells removed)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of ``venus-mars``."""
    parser = argparse.ArgumentParser(
        prog="venus-mars",
        description="Learn and analyse nonverbal communication in conversation (VENUS data, mini MARS).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    from .config import PARTS, PRESETS

    demo = sub.add_parser("demo", help="everything end to end on the synthetic VENUS: tokenizers, LM, evaluation, report")
    demo.add_argument("--preset", default="cpu-mini", choices=sorted(PRESETS), help="size (default cpu-mini; smoke: under a minute)")
    demo.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    demo.add_argument("--segments", type=int, default=None, help="synthetic segments (default: by preset)")
    demo.add_argument("--seconds", type=float, default=None, help="seconds per segment (default: by preset)")
    demo.add_argument("--seed", type=int, default=0, help="random seed for data and training (default 0)")
    demo.add_argument("--lm-steps", type=int, default=None,
                      help="language-model steps (default: the preset's; cpu-mini 600)")
    demo.add_argument("--vq-steps", type=int, default=None,
                      help="steps of each motion tokenizer (default: the preset's; cpu-mini 400)")
    demo.set_defaults(func=cmd_demo)

    data = sub.add_parser("data", help="make, check and summarise VENUS-format data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser("synth", help="write a synthetic VENUS dataset to a folder")
    synth.add_argument("--out", required=True, help="folder to write (replaced atomically)")
    _add_synth_args(synth)
    synth.set_defaults(func=cmd_data_synth)
    for name, func, helptext in (
        ("validate", cmd_data_validate, "check every row; exit 0 clean, 1 problems found, 2 unreadable"),
        ("info", cmd_data_info, "print a summary table"),
    ):
        p = data_sub.add_parser(name, help=helptext)
        p.add_argument("source", help="'synthetic', a Hub name (winston1214/VENUS-1K) or a local folder/parquet file")
        p.add_argument("--split", default=None, help="one split (train/test); default all")
        if name == "validate":
            p.add_argument("--max-lines", type=int, default=50, help="problems to print (default 50)")
        _add_synth_args(p)
        p.set_defaults(func=func)

    an = sub.add_parser("analyze", help="statistics, cues, sentiment, clusters and bias audit: JSON, report.html, data card")
    an.add_argument("source", help="'synthetic', a Hub name (winston1214/VENUS-1K) or a local folder/parquet file")
    an.add_argument("--out", required=True, help="folder to write (replaced atomically), e.g. runs/analysis")
    an.add_argument("--split", default=None, help="one split (train/test); default all")
    an.add_argument("--name", default=None, help="dataset name in the report and card (default: SOURCE)")
    an.add_argument("--per-video", type=int, default=10, help="frames sampled per video for the clusters (paper: 10)")
    an.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates per interval (default 1000)")
    an.add_argument("--workers", type=int, default=None, help="processes for the behaviour pass (default: CPU cores, max 4)")
    an.add_argument("--no-clusters", action="store_true", help="skip the t-SNE + DBSCAN clusters")
    _add_synth_args(an)
    an.set_defaults(func=cmd_analyze)

    tv = sub.add_parser("train-vq", help="train the face or body motion tokenizer (VQ-VAE) and report its test metrics")
    tv.add_argument("--part", required=True, choices=PARTS, help="which tokenizer")
    tv.add_argument("--data", default="synthetic", help="'synthetic' (default), a Hub name or a local folder/parquet file")
    tv.add_argument("--preset", default="cpu-mini", choices=sorted(PRESETS), help="model and training size (default cpu-mini)")
    tv.add_argument("--out", default=None, help="run folder (default runs/vq-<part>-<preset>)")
    tv.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    tv.add_argument("--resume", action="store_true", help="continue the run in --out from its last/ checkpoint")
    tv.add_argument("--train-seed", type=int, default=None, help="training seed only (default: --seed)")
    tv.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    _add_synth_args(tv)  # --segments/--seconds shape the synthetic data; --seed seeds it and the training
    tv.set_defaults(func=cmd_train_vq)

    tl = sub.add_parser("train-lm", help="chat pairs through two trained tokenizers, then the language model")
    tl.add_argument("--data", default="synthetic", help="'synthetic' (default), a Hub name or a local folder/parquet file")
    tl.add_argument("--vq", required=True, help="folder with face/ and body/ tokenizer runs (train-vq --out DIR/face)")
    tl.add_argument("--preset", default="cpu-mini", choices=sorted(PRESETS), help="model and training size (default cpu-mini)")
    tl.add_argument("--out", default=None, help="run folder (default runs/mars-<preset>)")
    tl.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    tl.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last")
    tl.add_argument("--context-turns", type=int, default=0, help="earlier turns given as context (default 0, as the paper)")
    tl.add_argument("--text-only", action="store_true",
                    help="the ablation: train on the words alone, every motion token taken out (pairs.text_only)")
    tl.add_argument("--base", default=None, help="a pretrained causal LM (Hub name or local folder) to fine-tune instead")
    tl.add_argument("--lora", action="store_true", help="with --base: train LoRA adapters (peft) instead of all weights")
    _add_synth_args(tl)
    tl.set_defaults(func=cmd_train_lm)

    gen = sub.add_parser("generate", help="MARS's reply to a prompt, with words and gestures")
    gen.add_argument("--run", required=True, help="a train-lm (or demo: runs/demo/mars) run folder")
    gen.add_argument("--prompt", default=None, help="what the other speaker says")
    gen.add_argument("--say", default=None, help="words for MARS to say; it chooses the gestures (e.g. 'yes, exactly')")
    gen.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8; 0 = greedy for --say)")
    gen.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    gen.add_argument("--html", default=None, help="write the animated reply to this HTML file")
    gen.set_defaults(func=cmd_generate)

    cn = sub.add_parser("clean-notebooks", help="student copies of the numbered notebooks: solutions removed, outputs cleared")
    cn.add_argument("--src", default="notebooks", help="folder of the notebooks (default notebooks)")
    cn.add_argument("--out", default="notebooks/clean", help="folder to write them to (default notebooks/clean)")
    cn.set_defaults(func=cmd_clean_notebooks)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``venus-mars``; returns the exit code."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for "how this was made" notes
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
