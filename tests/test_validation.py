"""Validation of VENUS rows and datasets: clean data passes, reports read well, skip counts."""

from __future__ import annotations

import json
import math

import datasets
import numpy as np
import pyarrow as pa
import pytest

from tests.factories import make_row, rows_to_dataset
from venus_analysis import schema
from venus_analysis.validation import (
    Problem,
    SkipReport,
    ValidationReport,
    VenusValidationError,
    arrow_row,
    clean_row,
    validate,
    validate_row,
)

FACE, BODY, CONV = schema.FACE, schema.BODY, schema.CONVERSATION


def bad_speaker(row):
    row[CONV]["speaker"][1] = 2
    return row


def ragged(row):
    row[CONV]["text"] = row[CONV]["text"][:1]
    return row


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"n_utterances": 1}, {"n_utterances": 6, "frames_per_utterance": 3}, {"face_dim": 153}, {"harmful": (1,)}],
)
def test_valid_factory_rows_have_no_problems(kwargs):
    assert validate_row(make_row(**kwargs), 0) == []


def test_valid_rows_through_datasets_and_arrow_have_no_problems():
    ds = rows_to_dataset([make_row(seed=i) for i in range(3)])
    assert validate_row(ds[1], 1) == []
    table = ds.with_format("arrow")[0:2]
    row = arrow_row(table, 1)
    assert isinstance(row[FACE], pa.StructScalar)
    assert validate_row(row, 1) == []


def test_rows_with_integer_or_numpy_ids_are_accepted():
    row = make_row()
    for track in (FACE, BODY):
        row[track]["utt_id"] = [int(u) for u in row[track]["utt_id"]]
        row[track]["features"] = np.asarray(row[track]["features"], dtype=np.float32)
    row[CONV]["utterance_id"] = [str(u) for u in row[CONV]["utterance_id"]]
    assert validate_row(row) == []


def test_problem_string_and_dict():
    p = Problem(3, "abcDEF12345", 0, "facial_expression.features",
                "frame entry 17 has 150 floats; expected 156 (FLAME) or 153 (legacy)",
                utterance_id=2, kind="feature_length", scope="utterance")  # fmt: skip
    assert str(p) == (
        "row 3 (video abcDEF12345, segment 0), facial_expression.features, utterance 2: "
        "frame entry 17 has 150 floats; expected 156 (FLAME) or 153 (legacy)"
    )
    p.split = "test"
    assert str(p).startswith("test row 3 (video abcDEF12345")
    assert json.loads(json.dumps(p.to_dict()))["kind"] == "feature_length"


def test_validate_dataset_list_and_iterable():
    rows = [make_row(seed=i) for i in range(4)]
    rows[2] = bad_speaker(rows[2])
    for source in (rows, rows_to_dataset(rows), rows_to_dataset(rows).to_iterable_dataset()):
        report = validate(source, progress=False)
        assert report.n_rows == 4 and report.n_bad_rows == 1 and not report.ok
        assert report.counts_by_kind() == {"speaker_not_binary": 1}
        assert report.problems[0].row_index == 2


def test_validate_dataset_dict_tags_splits():
    good = rows_to_dataset([make_row()])
    bad = rows_to_dataset([make_row(), bad_speaker(make_row())])
    report = validate(datasets.DatasetDict({"train": good, "test": bad}), progress=False)
    assert report.n_rows == 3 and report.n_bad_rows == 1
    assert report.problems[0].split == "test" and report.problems[0].row_index == 1
    assert str(report.problems[0]).startswith("test row 1 (video abcDEF12345, segment 0), conversation.speaker")


def test_validate_max_rows_and_bad_source():
    rows = [make_row(seed=i) for i in range(5)]
    assert validate(rows, progress=False, max_rows=2).n_rows == 2
    with pytest.raises(TypeError, match="validate_row checks one row"):
        validate(make_row(), progress=False)


def test_report_format_and_to_dict():
    rows = [bad_speaker(make_row(seed=i)) for i in range(30)]
    report = validate(rows, progress=False)
    text = report.format(max_lines=5)
    assert text.splitlines()[0] == "VENUS validation: 30 problems in 30 of 30 rows (speaker_not_binary 30)."
    assert "... and 25 more" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["n_bad_rows"] == 30 and len(data["problems"]) == 30
    assert ValidationReport(n_rows=3).format() == "VENUS validation: 3 rows checked, no problems."
    with pytest.raises(VenusValidationError):
        report.raise_if_bad()


def test_validation_error_lists_the_first_problems():
    problems = [p for i in range(8) for p in validate_row(bad_speaker(make_row()), i)]
    err = VenusValidationError(problems)
    assert isinstance(err, ValueError) and len(err.problems) == 8
    lines = str(err).splitlines()
    assert lines[0] == "8 problem(s) in the VENUS data (speaker_not_binary 8):"
    assert lines[1].startswith("  - row 0 (video abcDEF12345, segment 0), conversation.speaker, utterance 1")
    assert "... and 3 more" in str(err) and "on_error='skip'" in str(err)


def test_clean_row_keeps_a_valid_row_untouched():
    row = make_row()
    cleaned, record = clean_row(row, [])
    assert cleaned is row and not record.changed


def test_clean_row_drops_an_utterance_and_its_frames_in_both_tracks():
    row = bad_speaker(make_row())
    cleaned, record = clean_row(row, validate_row(row, 4))
    assert cleaned[CONV]["utterance_id"] == [0, 2]
    assert len(cleaned[CONV]["words"]) == 2 and cleaned[CONV]["text"][1] == "hello there w2"
    for track in (FACE, BODY):
        assert "1" not in cleaned[track]["utt_id"] and len(cleaned[track]["features"]) == 60
    assert record.utterances == {1: "speaker_not_binary"} and record.frames == {"speaker_not_binary": 60}
    assert str(record) == (
        "row 4 (video abcDEF12345, segment 0): dropped utterances 1 (speaker_not_binary); "
        "dropped 60 frame entries (speaker_not_binary 60)"
    )
    assert validate_row(cleaned) == []
    assert row[CONV]["utterance_id"] == [0, 1, 2]  # the input is not modified


def test_clean_row_drops_a_row_with_a_row_level_problem():
    row = ragged(make_row())
    cleaned, record = clean_row(row, validate_row(row, 1))
    assert cleaned is None and record.row_dropped and record.reasons == ["ragged_conversation"]


def test_clean_row_drops_a_row_left_empty():
    row = make_row(n_utterances=1)
    row[CONV]["start_time"][0] = math.nan
    cleaned, record = clean_row(row, validate_row(row))
    assert cleaned is None and record.reasons == ["empty_after_cleaning"]
    assert record.utterances == {0: "non_finite"}


def test_clean_row_on_arrow_rows():
    ds = rows_to_dataset([bad_speaker(make_row())])
    row = arrow_row(ds.with_format("arrow")[0:1], 0)
    cleaned, record = clean_row(row, validate_row(row, 0))
    assert isinstance(cleaned[FACE]["features"], pa.Array) and len(cleaned[FACE]["features"]) == 60
    assert validate_row(cleaned) == []


def test_skip_report_aggregates_and_does_not_double_count():
    report = SkipReport()
    for i, row in enumerate([make_row(), bad_speaker(make_row()), ragged(make_row())]):
        problems = validate_row(row, i)
        report.add(clean_row(row, problems)[1], problems)
    again = bad_speaker(make_row())
    report.add(clean_row(again, validate_row(again, 1))[1], validate_row(again, 1))  # row 1 seen twice
    assert report.n_rows == 3 and report.n_rows_dropped == 1
    assert report.n_utterances_dropped == 1 and report.n_frames_dropped == 60
    assert report.rows_by_kind() == {"ragged_conversation": 1}
    assert json.loads(json.dumps(report.to_dict()))["frames_by_kind"] == {"speaker_not_binary": 60}
    assert report.format().startswith("VENUS skip report: skipped 1 of 3 rows, 1 utterances and 60 frame entries.")


def _big_track(n_utt, per_utt, dim, first_frames, rng):
    n = n_utt * per_utt
    utt = np.repeat(np.arange(n_utt), per_utt)
    frames = (np.repeat(first_frames, per_utt) + np.tile(np.arange(per_utt), n_utt)).astype(np.int64)
    values = pa.array(rng.standard_normal(n * dim).astype(np.float32))
    features = pa.ListArray.from_arrays(pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32)), values)
    return {
        "utt_id": pa.array(utt.astype(str)),
        "frame": pa.array(np.char.add(frames.astype(str), "_0")),
        "features": features,
    }


def _words(start, end, n):
    edges = np.linspace(start, end, n + 1)
    return {"word": ["w"] * n, "start_time": edges[:-1].tolist(), "end_time": edges[1:].tolist()}


def big_row(n_utt=20, per_utt=750):
    """A real-sized row: 20 utterances x 750 frames = 15,000 frames of 156 + 179 floats."""
    rng = np.random.default_rng(0)
    starts = np.arange(n_utt) * (per_utt / schema.FPS + 0.4) + 1.0
    ends = starts + per_utt / schema.FPS
    conv = {
        "utterance_id": list(range(n_utt)),
        "speaker": [i % 2 for i in range(n_utt)],
        "text": ["word " * 170] * n_utt,
        "start_time": starts.tolist(),
        "end_time": ends.tolist(),
        "words": [_words(s, e, 170) for s, e in zip(starts, ends)],
    }
    first = np.ceil(starts * schema.FPS).astype(np.int64)
    row = {"video_id": "bigBIG12345", "segment_id": 0, CONV: conv, schema.HARMFUL: []}
    row[FACE] = _big_track(n_utt, per_utt, schema.FACE_DIM, first, rng)
    row[BODY] = _big_track(n_utt, per_utt, schema.BODY_DIM, first, rng)
    return row


def _as_table(row) -> pa.Table:
    """A one-row Arrow table of ``row`` (tracks built from their Arrow arrays, no Python floats)."""
    columns = {k: [row[k]] for k in ("video_id", "segment_id", CONV, schema.HARMFUL)}
    for name in (FACE, BODY):
        children = [
            pa.ListArray.from_arrays(pa.array([0, len(row[name][f])], pa.int32()), row[name][f])
            for f in ("utt_id", "frame", "features")
        ]
        columns[name] = pa.StructArray.from_arrays(children, names=["utt_id", "frame", "features"])
    return pa.table(columns)


def test_a_real_sized_row_validates_and_cleans():
    # Speed is measured by bench/validate.py; here only the results on a real-sized row.
    row = big_row()
    assert len(row[FACE]["utt_id"]) == 15_000
    assert validate_row(arrow_row(_as_table(row), 0), 0) == []
    # one NaN: the check names its utterance, and cleaning removes exactly that utterance
    flat = np.zeros(15_000 * schema.BODY_DIM, dtype=np.float32)
    flat[schema.BODY_DIM * 800 + 5] = np.nan  # frame entry 800 = utterance 1
    row[BODY]["features"] = pa.ListArray.from_arrays(row[BODY]["features"].offsets, pa.array(flat))
    problems = validate_row(row, 0)
    cleaned, record = clean_row(row, problems)
    assert [p.kind for p in problems] == ["non_finite"] and problems[0].utterance_id == 1
    assert record.frames == {"non_finite": 1500} and validate_row(cleaned) == []
