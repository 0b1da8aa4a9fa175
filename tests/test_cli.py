"""The `venus-mars` command: demo (smoke), data synth / validate / info, and their exit codes."""

from __future__ import annotations

import json
import math
import re

import pyarrow.parquet as pq
import pytest

from mini_mars.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_UNREADABLE, main
from tests.factories import make_row, rows_to_dataset

SMALL = ["--segments", "3", "--seconds", "30", "--seed", "1"]


def test_demo_runs_everything_end_to_end(capsys, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "smoke", "--out", str(out), "--segments", "8", "--seconds", "40",
                 "--vq-steps", "12", "--lm-steps", "20"]) == EXIT_OK  # fmt: skip
    printed = capsys.readouterr().out
    for header in ("segments", "utterances", "face: test L1", "language model", "evaluation", "nll_face"):
        assert header in printed, header
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("elapsed_seconds", "perplexity", "nll_face", "nll_body", "nll_face_uniform", "nll_body_uniform",
                "nll_face_unigram", "nll_body_unigram", "association_precision", "association_recall",
                "cue_reply_accuracy_with_cues", "cue_reply_accuracy_cues_masked"):  # the keys
        assert isinstance(metrics[key], float), key
    assert metrics["nll_face_uniform"] == pytest.approx(math.log(32))  # smoke: K = 32
    laps = dict((name, float(at)) for at, name in re.findall(r"\[\s*([\d.]+) s\] ([^:]+):", printed))
    assert list(laps)[0].startswith("imports") and list(laps)[-1] == "report"
    assert metrics["elapsed_seconds"] >= laps["report"] - 0.05  # the whole call (laps print 0.1 s): the report counted
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "Plotly" in html and "NLL of face tokens" in html
    for part in ("face", "body"):  # --vq-steps and --lm-steps reach the training loops
        log = json.loads((out / "vq" / part / "log.json").read_text())
        assert [r["step"] for r in log] == [12]  # one evaluation, at the end (smoke evaluates every 10 elsewhere)
    assert json.loads((out / "mars" / "train_log.json").read_text())[-1]["step"] == 20
    from mini_mars.demo import run_data

    # the data's arguments travel with the run, so a notebook can rebuild that very data
    assert run_data(out / "mars") == {"n_segments": 8, "seconds": 40.0, "seed": 0} == run_data(out)
    assert run_data(tmp_path / "elsewhere") == {}  # a run from before data.json: the generator's defaults


def test_each_preset_has_its_demo_data():
    from mini_mars.demo import DEFAULT_DATA, demo_data

    assert demo_data("cpu-mini") == {"n_segments": DEFAULT_DATA[0], "seconds": DEFAULT_DATA[1], "seed": 0}
    assert demo_data("cpu-gestures", seed=2)["backchannel_rate"] > 0  # the model that nods hears backchannels
    assert demo_data("smoke", segments=3, seconds=30.0) == {"n_segments": 3, "seconds": 30.0, "seed": 0}


def test_synth_then_validate_and_info(tmp_path, capsys):
    out_dir = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out_dir), *SMALL]) == EXIT_OK
    assert (out_dir / "synthetic_truth.json").exists()
    assert json.loads((out_dir / "synthetic_truth.json").read_text())["config"]["n_segments"] == 3
    assert main(["data", "validate", str(out_dir)]) == EXIT_OK
    capsys.readouterr()
    assert main(["data", "info", str(out_dir), "--split", "train"]) == EXIT_OK
    table = capsys.readouterr().out
    assert "train" in table and "utterances" in table


def test_validate_reports_problems_with_exit_1(tmp_path, capsys):
    bad = make_row()
    bad["conversation"]["end_time"][1] = bad["conversation"]["start_time"][1] - 1.0
    path = tmp_path / "bad.parquet"
    pq.write_table(rows_to_dataset([bad, make_row(seed=2, segment_id=1)]).data.table, path)
    assert main(["data", "validate", str(path)]) == EXIT_PROBLEMS
    out = capsys.readouterr().out
    assert "abcDEF12345" in out and "end_time" in out


@pytest.mark.parametrize("source", ["/no/such/folder", "winston1214/VENUS-1K"])
def test_unreadable_sources_exit_2(source, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["data", "validate", source]) == EXIT_UNREADABLE
    assert main(["data", "info", source]) == EXIT_UNREADABLE
    assert "cannot read" in capsys.readouterr().err


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as err:
        main(["data", "synth"])  # --out is required
    assert err.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_analyze_writes_json_report_and_card(tmp_path, capsys):
    out = tmp_path / "analysis"
    code = main(["analyze", "synthetic", "--segments", "24", "--seconds", "90", "--seed", "3",
                 "--out", str(out), "--n-boot", "100", "--per-video", "20"])  # fmt: skip
    assert code == EXIT_OK
    names = {p.name for p in out.iterdir()}
    assert {"stats.json", "cues.json", "bias.json", "report.html", "data_card.md"} <= names
    stats = json.loads((out / "stats.json").read_text())
    assert stats["all"]["segments"] == 24
    cues = json.loads((out / "cues.json").read_text())
    assert "nod" in cues["top_words"] and cues["sentiment"]
    bias = json.loads((out / "bias.json").read_text())
    assert bias["representation"]["segments"] == 24
    assert "synthetic" in (out / "data_card.md").read_text().lower()
    printed = capsys.readouterr().out
    assert "analysed 24 segments" in printed and "report.html" in printed


def test_analyze_an_unreadable_source_exits_2(tmp_path, capsys):
    code = main(["analyze", str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    assert code == EXIT_UNREADABLE
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
