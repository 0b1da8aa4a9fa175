"""The model commands end to end at the smoke size: train-vq, train-lm, generate, demo."""

from __future__ import annotations

import json
import math

import pytest

from mini_mars.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_UNREADABLE, main

SMALL = ["--segments", "6", "--seconds", "40", "--seed", "1"]


@pytest.fixture(scope="module")
def mars_run(tmp_path_factory):
    """Smoke tokenizers and a smoke language model trained through the CLI."""
    root = tmp_path_factory.mktemp("mars")
    for part in ("face", "body"):
        assert main(["train-vq", "--part", part, "--preset", "smoke", "--out", str(root / "vq" / part), *SMALL]) == EXIT_OK
    assert main(["train-lm", "--vq", str(root / "vq"), "--preset", "smoke", "--out", str(root / "mars"), *SMALL]) == EXIT_OK
    return root


def test_train_lm_writes_a_self_contained_run(mars_run):
    run = mars_run / "mars"
    for f in ("model/config.json", "model/model.safetensors", "vq/face/model.safetensors", "vq/body/config.json",
              "pairs.json", "metrics.json", "train_log.json"):  # fmt: skip
        assert (run / f).is_file(), f
    pairs = json.loads((run / "pairs.json").read_text())
    assert pairs["train"]["pairs"] > 0 and pairs["test"]["pairs"] > 0
    assert math.isfinite(json.loads((run / "metrics.json").read_text())["eval_loss"])


def test_generate_replies_and_gestures_given_words(mars_run, capsys, tmp_path):
    run = str(mars_run / "mars")
    assert main(["generate", "--run", run, "--prompt", "Do you know what time it is?"]) == EXIT_OK
    assert "gesture pairs" in capsys.readouterr().out
    html = tmp_path / "reply.html"
    code = main(["generate", "--run", run, "--say", "yes, exactly", "--temperature", "1.5", "--html", str(html)])
    out = capsys.readouterr().out
    assert "words: Yes, exactly." in out  # typed words in the transcripts' form (as_transcript)
    if "\n0 gesture pairs" in out:  # an untrained model may choose no gesture at all
        assert code == EXIT_PROBLEMS and not html.exists()
    else:
        assert code == EXIT_OK and "<html>" in html.read_text()[:200]


def test_generate_and_train_lm_bad_input(tmp_path, capsys):
    assert main(["generate", "--run", str(tmp_path / "nothing"), "--prompt", "hi"]) == EXIT_UNREADABLE
    assert "no trained model" in capsys.readouterr().err
    assert main(["train-lm", "--vq", str(tmp_path / "novq"), "--preset", "smoke", "--out", str(tmp_path / "m"), *SMALL]) == EXIT_PROBLEMS
    assert "tokenizer" in capsys.readouterr().err


def test_demo_evaluation_in_two_processes_gives_the_serial_numbers(mars_run):
    """demo.evaluate_run(parallel=True) runs the association in a second process that loads
    the run from disk; every number and the per-cue table must match the serial evaluation."""
    from mini_mars.demo import evaluate_run
    from mini_mars.pipeline import build_training_pairs, load_mars
    from venus_analysis.synthetic import generate_venus

    data, truth = generate_venus(6, 40.0, 1, progress=False, return_truth=True)
    mars = load_mars(mars_run / "mars")
    pairs, _ = build_training_pairs(data, mars.face_vq, mars.body_vq, progress=False)
    serial, serial_tables = evaluate_run(mars, mars_run / "mars", pairs, truth, 4, parallel=False, progress=False)
    parallel, parallel_tables = evaluate_run(mars, mars_run / "mars", pairs, truth, 4, parallel=True, progress=False)
    assert serial["n_replies"] > 0 and math.isfinite(serial["nll_face"])  # the association did run
    assert set(parallel) == set(serial)
    for k, v in serial.items():
        assert parallel[k] == pytest.approx(v, nan_ok=True), k
    assert len(serial_tables["cues"]) > 0  # (NaN precisions: compare as JSON, where NaN equals NaN)
    assert json.dumps(parallel_tables["cues"]) == json.dumps(serial_tables["cues"])


def test_association_replies_split_between_takers_sum_to_the_whole(mars_run):
    """association_counts with a shared reply counter: whoever takes reply j, it is the same
    reply (seed + j), so the summed counts of two takers equal one association()."""
    import itertools

    from mini_mars.lm_eval import association, association_counts, association_summary
    from mini_mars.pipeline import build_training_pairs, load_mars
    from venus_analysis.synthetic import generate_venus

    data = generate_venus(6, 40.0, 1, progress=False)
    mars = load_mars(mars_run / "mars")
    pairs, _ = build_training_pairs(data, mars.face_vq, mars.body_vq, progress=False)
    args = (mars.model, mars.tokenizer, mars.face_vq, mars.body_vq, pairs["test"])
    whole = association(*args, max_replies=6, seed=3)
    assert whole["n_replies"] == 6 and whole["n_triggers"] > 0
    evens, odds = iter([0, 2, 4, 99]), iter([5, 1, 3, 6])  # out of order; j >= 6 stops a taker
    parts = [association_counts(*args, max_replies=6, seed=3, next_reply=lambda it=it: next(it)) for it in (evens, odds)]
    assert sum(sum(c[0] for c in p["model"].values()) for p in parts) == whole["n_triggers"]
    assert json.dumps(association_summary(*parts)) == json.dumps(whole)
    counter = itertools.count()  # one taker with the counter: all of it
    assert json.dumps(association_summary(association_counts(*args, max_replies=6, seed=3,
                                                             next_reply=lambda: next(counter)))) == json.dumps(whole)  # fmt: skip
