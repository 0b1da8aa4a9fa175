"""Corrupted VENUS rows and files: each gives a clear error or a counted skip.

Every row case corrupts one valid factory row in one way and checks that
- ``validate_row`` reports it with the expected kind, naming the row, the field and what
  was expected;
- ``clean_row`` removes exactly what the problem's scope says and counts it, and what is
  left validates clean;
- no numpy / pyarrow / datasets exception escapes (only our errors, or ValueError-family
  errors we raise ourselves).
File cases write corrupted data to parquet and go through ``load_venus``.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import make_row, rows_to_dataset
from venus_analysis import schema
from venus_analysis.loading import VenusLoadError, load_venus
from venus_analysis.validation import VenusValidationError, clean_row, validate_row

FACE, BODY, CONV = schema.FACE, schema.BODY, schema.CONVERSATION
ROW_INDEX = 7
OURS = (VenusLoadError, VenusValidationError, ValueError, KeyError, TypeError)


def call_ours(fn, *args, **kwargs):
    """Call ``fn``; an exception must be one of ours, never numpy/pyarrow/datasets'."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:
        top = type(err).__module__.split(".")[0]
        assert isinstance(err, OURS) and top not in ("pyarrow", "numpy", "datasets"), (
            f"leaked {type(err).__module__}.{type(err).__name__}: {err}"
        )
        raise


def frames_of(row, track, uid):
    """Positions of utterance ``uid``'s entries in a track."""
    return [i for i, u in enumerate(row[track]["utt_id"]) if u == str(uid)]


# ---------------------------------------------------------------------------------------
# Corruptions: each takes a fresh valid row (3 utterances x 30 frames) and breaks it
# ---------------------------------------------------------------------------------------
def face_150(r):
    r[FACE]["features"][17] = r[FACE]["features"][17][:150]


def body_178_one(r):
    r[BODY]["features"][40] = r[BODY]["features"][40][:178]


def body_178_all(r):
    r[BODY]["features"] = [f[:178] for f in r[BODY]["features"]]


def nan_face(r):
    r[FACE]["features"][35][4] = math.nan


def inf_body(r):
    r[BODY]["features"][70][100] = math.inf


def inf_word_time(r):
    r[CONV]["words"][1]["start_time"][1] = math.inf


def negative_start(r):
    r[CONV]["start_time"][0] = -0.5


def end_before_start(r):
    r[CONV]["end_time"][2] = r[CONV]["start_time"][2] - 1.0


def word_end_before_start(r):
    w = r[CONV]["words"][0]
    w["end_time"][0] = w["start_time"][0] - 0.2


def word_outside(r):
    r[CONV]["words"][2]["end_time"][2] = r[CONV]["end_time"][2] + 3.0


def duplicate_utterance_id(r):
    r[CONV]["utterance_id"][2] = r[CONV]["utterance_id"][1]


def frame_abc(r):
    r[FACE]["frame"][5] = "abc_1"


def track_utt_x(r):
    r[BODY]["utt_id"][3] = "x"


def conversation_utt_x(r):
    r[CONV]["utterance_id"][1] = "x"


def conversation_utt_huge(r):
    r[CONV]["utterance_id"][0] = "9" * 25


def none_features(r):
    r[FACE]["features"][12] = None


def orphan_frames(r):
    for track in (FACE, BODY):
        for i in range(4):
            r[track]["utt_id"].append("9")
            r[track]["frame"].append(f"{900 + i}_1")
            r[track]["features"].append(list(r[track]["features"][0]))


def harmful_still_present(r):
    r[schema.HARMFUL] = [1]


def speaker_2(r):
    r[CONV]["speaker"][1] = 2


def ragged_conversation(r):
    r[CONV]["text"] = r[CONV]["text"][:2]


def missing_column(r):
    del r[BODY]


def missing_nested_field(r):
    del r[CONV]["words"]


def missing_track_field(r):
    del r[FACE]["frame"]


def mixed_lengths(r):
    for i in frames_of(r, FACE, 1):
        r[FACE]["features"][i] = r[FACE]["features"][i][:153]


def empty_conversation(r):
    r[CONV] = {k: [] for k in r[CONV]}
    for track in (FACE, BODY):
        r[track] = {"utt_id": [], "frame": [], "features": []}


def features_as_strings(r):
    r[FACE]["features"] = [[str(v) for v in f] for f in r[FACE]["features"]]


def words_unsorted(r):
    w = r[CONV]["words"][1]
    for key in ("word", "start_time", "end_time"):
        w[key][0], w[key][1] = w[key][1], w[key][0]


def duplicate_frame(r):
    i = frames_of(r, BODY, 2)[3]
    r[BODY]["frame"][i] = r[BODY]["frame"][i - 1]


def frame_outside_utterance(r):
    i = frames_of(r, FACE, 0)[0]
    r[FACE]["frame"][i] = f"{int(r[FACE]['frame'][i].split('_')[0]) + 250}_0"


def negative_frame(r):
    r[BODY]["frame"][2] = "-4_0"


def ragged_track(r):
    r[BODY]["frame"] = r[BODY]["frame"][:-1]


def ragged_words(r):
    r[CONV]["words"][0]["end_time"] = r[CONV]["words"][0]["end_time"][:2]


def fps_30(r):
    r["fps"] = 30


def text_none(r):
    r[CONV]["text"][2] = None


def conversation_records(r):
    c = r[CONV]
    r[CONV] = [dict(zip(c, values)) for values in zip(*c.values())]


def video_id_none(r):
    r["video_id"] = None


def harmful_abc(r):
    r[schema.HARMFUL] = ["abc"]


def track_none(r):
    r[BODY] = None


def nan_start(r):
    r[CONV]["start_time"][1] = math.nan


def start_as_string(r):
    r[CONV]["start_time"][0] = "1.0"


def segment_id_text(r):
    r["segment_id"] = "first"


def features_not_lists(r):
    r[BODY]["features"] = "0.1 0.2 0.3"


# (corruption, kind, field named, scope, utterance named or None)
CASES = [
    (face_150, "feature_length", "facial_expression.features", "utterance", 0),
    (body_178_one, "feature_length", "body_language.features", "utterance", 1),
    (body_178_all, "feature_length", "body_language.features", "row", None),
    (nan_face, "non_finite", "facial_expression.features", "utterance", 1),
    (inf_body, "non_finite", "body_language.features", "utterance", 2),
    (inf_word_time, "non_finite", "conversation.words.start_time", "utterance", 1),
    (negative_start, "negative_time", "conversation.start_time", "utterance", 0),
    (end_before_start, "end_before_start", "conversation.end_time", "utterance", 2),
    (word_end_before_start, "end_before_start", "conversation.words.end_time", "utterance", 0),
    (word_outside, "word_outside_utterance", "conversation.words", "utterance", 2),
    (duplicate_utterance_id, "duplicate_utterance_id", "conversation.utterance_id", "utterance", 1),
    (frame_abc, "unparseable_frame", "facial_expression.frame", "utterance", 0),
    (track_utt_x, "unparseable_utt_id", "body_language.utt_id", "frames", None),
    (conversation_utt_x, "unparseable_utt_id", "conversation.utterance_id", "utterance", "x"),
    (conversation_utt_huge, "unparseable_utt_id", "conversation.utterance_id", "utterance", "9" * 25),
    (none_features, "missing_features", "facial_expression.features", "utterance", 0),
    (orphan_frames, "orphan_frames", "facial_expression.utt_id", "frames", None),
    (harmful_still_present, "harmful_still_present", "conversation.utterance_id", "utterance", 1),
    (speaker_2, "speaker_not_binary", "conversation.speaker", "utterance", 1),
    (ragged_conversation, "ragged_conversation", "conversation", "row", None),
    (missing_column, "missing_column", "body_language", "row", None),
    (missing_nested_field, "missing_field", "conversation.words", "row", None),
    (missing_track_field, "missing_field", "facial_expression.frame", "row", None),
    (mixed_lengths, "mixed_feature_lengths", "facial_expression.features", "row", None),
    (empty_conversation, "empty_conversation", "conversation", "row", None),
    (features_as_strings, "wrong_type", "facial_expression.features", "row", None),
    (words_unsorted, "words_unsorted", "conversation.words.start_time", "utterance", 1),
    (duplicate_frame, "duplicate_frame", "body_language.frame", "utterance", 2),
    (frame_outside_utterance, "frame_outside_utterance", "facial_expression.frame", "utterance", 0),
    (negative_frame, "negative_time", "body_language.frame", "utterance", 0),
    (ragged_track, "ragged_track", "body_language", "row", None),
    (ragged_words, "ragged_words", "conversation.words", "utterance", 0),
    (fps_30, "unexpected_fps", "fps", "row", None),
    (text_none, "wrong_type", "conversation.text", "utterance", 2),
    (conversation_records, "wrong_type", "conversation", "row", None),
    (video_id_none, "wrong_type", "video_id", "row", None),
    (harmful_abc, "unparseable_utt_id", "harmful_utterance_id", "row", None),
    (track_none, "wrong_type", "body_language", "row", None),
    (nan_start, "non_finite", "conversation.start_time", "utterance", 1),
    (start_as_string, "wrong_type", "conversation.start_time", "utterance", 0),
    (segment_id_text, "wrong_type", "segment_id", "row", None),
    (features_not_lists, "wrong_type", "body_language.features", "row", None),
]
IDS = [case[0].__name__ for case in CASES]


def corrupted(fn) -> dict:
    row = make_row(seed=1)
    fn(row)
    return row


@pytest.mark.parametrize("fn, kind, field, scope, utterance", CASES, ids=IDS)
def test_problem_names_row_field_and_expectation(fn, kind, field, scope, utterance):
    row = corrupted(fn)
    problems = call_ours(validate_row, row, ROW_INDEX)
    hits = [p for p in problems if p.kind == kind and p.field == field]
    assert hits, f"no {kind} problem on {field}; got {[str(p) for p in problems]}"
    p = hits[0]
    assert p.scope == scope
    assert p.utterance_id == utterance
    text = str(p)
    assert text.startswith(f"row {ROW_INDEX} (video ")
    assert field in text
    assert "expected" in p.message
    if utterance is not None:
        assert f"utterance {utterance}" in text


@pytest.mark.parametrize("fn, kind, field, scope, utterance", CASES, ids=IDS)
def test_skip_removes_and_counts_what_is_broken(fn, kind, field, scope, utterance):
    row = corrupted(fn)
    problems = validate_row(row, ROW_INDEX)
    cleaned, record = call_ours(clean_row, row, problems)
    assert record.changed and record.row_index == ROW_INDEX
    if scope == "row":
        assert cleaned is None and record.row_dropped and kind in record.reasons
        return
    if scope == "utterance" and isinstance(utterance, int) and utterance in row[CONV]["utterance_id"]:
        assert record.utterances.get(utterance) == kind or utterance in record.utterances
        assert utterance not in cleaned[CONV]["utterance_id"]
    if scope == "frames":
        assert record.frames.get(kind, 0) > 0
    if cleaned is not None:
        for track in (FACE, BODY):
            assert str(utterance) not in cleaned[track]["utt_id"]
        assert validate_row(cleaned, ROW_INDEX) == []


def test_face_legacy_153_is_accepted():
    assert validate_row(make_row(face_dim=153)) == []


def test_frame_outside_tolerance_is_not_flagged():
    row = make_row()
    i = frames_of(row, FACE, 0)[0]
    row[FACE]["frame"][i] = f"{int(row[FACE]['frame'][i].split('_')[0]) - 10}_0"  # 0.4 s early
    assert validate_row(row) == []


def test_body_root_that_moves_is_not_an_error():
    row = make_row()
    for f in row[BODY]["features"]:
        f[0] = 0.3
    row[BODY]["features"][5][0] = -0.2
    assert validate_row(row) == []


def test_harmful_frames_left_in_tracks_are_not_orphans():
    row = make_row(harmful=(1,))
    for track in (FACE, BODY):
        row[track]["utt_id"].append("1")
        row[track]["frame"].append("40_1")
        row[track]["features"].append(list(row[track]["features"][0]))
    assert validate_row(row) == []


def test_one_problem_per_utterance_not_per_frame():
    row = make_row()
    row[FACE]["features"] = [f[:150] if i % 2 else f for i, f in enumerate(row[FACE]["features"])]
    problems = [p for p in validate_row(row) if p.kind == "feature_length"]
    assert len(problems) == 3
    assert "(15 entries in all)" in problems[0].message


def test_messages_for_face_length_read_as_documented():
    problems = validate_row(corrupted(face_150), 3)
    assert str(problems[0]) == (
        "row 3 (video abcDEF12345, segment 0), facial_expression.features, utterance 0: "
        "frame entry 17 has 150 floats; expected 156 (FLAME) or 153 (legacy)"
    )


def test_a_row_that_is_not_a_dict():
    problems = call_ours(validate_row, ["not", "a", "row"], 0)
    assert problems[0].kind == "wrong_type" and "expected a dict" in problems[0].message


# ---------------------------------------------------------------------------------------
# Several corruptions in one dataset: skip counts match what was corrupted
# ---------------------------------------------------------------------------------------
def test_skip_counts_match_the_corruptions(tmp_path):
    rows = [make_row(seed=i, video_id=f"video{i:06d}") for i in range(6)]
    speaker_2(rows[1])  # utterance 1 and its 30 + 30 frames
    nan_face(rows[2])  # utterance 1 and its 30 + 30 frames
    orphan_frames(rows[3])  # 4 + 4 orphan frame entries
    ragged_conversation(rows[4])  # whole row
    from datasets import DatasetDict

    dd = DatasetDict({"train": rows_to_dataset(rows)})
    with pytest.warns(UserWarning, match="skipped 1 of 6 rows, 2 utterances and 128 frame entries"):
        data, report = load_venus(_saved(dd, tmp_path), on_error="skip", return_report=True, progress=False)
    assert len(data["train"]) == 5
    assert report.n_rows == 6 and report.n_rows_dropped == 1
    assert report.rows_by_kind() == {"ragged_conversation": 1}
    assert report.utterances_by_kind() == {"speaker_not_binary": 1, "non_finite": 1}
    assert report.frames_by_kind() == {"speaker_not_binary": 60, "non_finite": 60, "orphan_frames": 8}
    kept = data["train"]
    assert [len(r[CONV]["utterance_id"]) for r in kept] == [3, 2, 2, 3, 3]
    assert [len(r[FACE]["utt_id"]) for r in kept] == [90, 60, 60, 90, 90]
    assert "train row 4 (video video000004, segment 0): dropped the row (ragged_conversation)" in report.format()


def _saved(dd, tmp_path):
    from venus_analysis.loading import save_venus

    return save_venus(dd, tmp_path / "saved")


# ---------------------------------------------------------------------------------------
# Files and datasets that do not fit the contract
# ---------------------------------------------------------------------------------------
def _parquet(tmp_path, rows, name="train.parquet"):
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _load(path, tmp_path, **kwargs):
    return call_ours(load_venus, path, cache_dir=str(tmp_path / "cache"), progress=False, **kwargs)


def _rows(n=3):
    return [make_row(seed=i) for i in range(n)]


def test_parquet_missing_a_column(tmp_path):
    rows = _rows()
    for r in rows:
        del r[schema.HARMFUL]
    with pytest.raises(VenusLoadError, match=r"missing required column\(s\) \['harmful_utterance_id'\]") as info:
        _load(_parquet(tmp_path, rows), tmp_path)
    assert "train.parquet" in str(info.value) and "Columns found" in str(info.value)


def test_parquet_missing_a_nested_field(tmp_path):
    rows = _rows()
    for r in rows:
        del r[BODY]["frame"]
    with pytest.raises(VenusLoadError, match=r"missing nested field\(s\) \['body_language.frame'\]"):
        _load(_parquet(tmp_path, rows), tmp_path)


def test_parquet_with_string_ids_loads(tmp_path):
    rows = _rows()
    for r in rows:
        r["segment_id"] = str(r["segment_id"])
        r[CONV]["utterance_id"] = [str(u) for u in r[CONV]["utterance_id"]]
        r[schema.HARMFUL] = ["17"]
    data = _load(_parquet(tmp_path, rows), tmp_path)
    ds = data["train"]
    assert ds.features == schema.VENUS_FEATURES
    assert ds[0]["segment_id"] == 0 and ds[0][CONV]["utterance_id"] == [0, 1, 2]
    assert ds[0][schema.HARMFUL] == [17]


def test_parquet_with_int_utt_ids_comes_back_as_strings(tmp_path):
    rows = _rows()
    for r in rows:
        for track in (FACE, BODY):
            r[track]["utt_id"] = [int(u) for u in r[track]["utt_id"]]
    ds = _load(_parquet(tmp_path, rows), tmp_path, split="train")
    assert ds.features[FACE]["utt_id"].feature.dtype == "string"
    assert ds[0][FACE]["utt_id"][:2] == ["0", "0"]


def test_parquet_with_an_id_that_is_not_a_number(tmp_path):
    rows = _rows()
    for r in rows:
        r[CONV]["utterance_id"] = [str(u) for u in r[CONV]["utterance_id"]]
    rows[2][CONV]["utterance_id"][1] = "abc"
    with pytest.raises(VenusLoadError) as info:
        _load(_parquet(tmp_path, rows), tmp_path)
    message = str(info.value)
    assert "'conversation.utterance_id' of row 2" in message and "int64" in message and "'abc'" in message


def test_streaming_parquet_with_a_bad_id_fails_when_the_row_is_read(tmp_path):
    rows = _rows()
    for r in rows:
        r["segment_id"] = str(r["segment_id"])
    rows[1]["segment_id"] = "first"
    data = _load(_parquet(tmp_path, rows), tmp_path, streaming=True, split="train")
    with pytest.raises(VenusLoadError, match="'segment_id' of row 1"):
        call_ours(list, data)


def test_parquet_features_that_are_not_numbers(tmp_path):
    rows = _rows()
    for r in rows:
        r[BODY]["features"] = [[str(v) for v in f] for f in r[BODY]["features"]]
    rows[1][BODY]["features"][4][0] = "oops"
    with pytest.raises(VenusLoadError, match=r"'body_language.features' of row 1 .*float32.*'oops'"):
        _load(_parquet(tmp_path, rows), tmp_path)


def test_parquet_conversation_as_records(tmp_path):
    rows = _rows()
    for r in rows:
        conversation_records(r)
    with pytest.raises(VenusLoadError, match="conversation is a list of records; expected a dict of parallel lists"):
        _load(_parquet(tmp_path, rows), tmp_path)


def test_parquet_with_a_bad_row_raises_naming_it(tmp_path):
    rows = _rows()
    face_150(rows[2])
    with pytest.raises(VenusValidationError) as info:
        _load(_parquet(tmp_path, rows), tmp_path)
    message = str(info.value)
    assert "train row 2 (video abcDEF12345, segment 0), facial_expression.features, utterance 0" in message
    assert info.value.problems[0].kind == "feature_length"


def test_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(VenusLoadError, match="expected a .parquet file or a folder"):
        _load(path, tmp_path)


def test_folder_without_data(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VenusLoadError, match="no parquet files and no save_to_disk folder"):
        _load(tmp_path / "empty", tmp_path)


def test_damaged_save_to_disk_folder(tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    (folder / "dataset_dict.json").write_text('{"splits": ["train"]}')
    with pytest.raises(VenusLoadError, match="cannot read this save_to_disk folder"):
        _load(folder, tmp_path)


def test_corrupt_parquet_file(tmp_path):
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(VenusLoadError, match="cannot read the parquet file"):
        _load(path, tmp_path)


def test_unknown_split(tmp_path):
    with pytest.raises(VenusLoadError, match=r"has no split 'validation'; its splits are \['train'\]"):
        _load(_parquet(tmp_path, _rows(1)), tmp_path, split="validation")


def test_validation_error_survives_pickling():
    import pickle

    err = VenusValidationError(validate_row(corrupted(speaker_2), 0))
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.problems[0].kind == "speaker_not_binary"


def test_corruption_catalogue_covers_the_kinds():
    kinds = {case[1] for case in CASES}
    assert len(CASES) >= 25 and len(kinds) >= 20
    assert kinds >= {
        "missing_column", "feature_length", "non_finite", "negative_time", "end_before_start",
        "word_outside_utterance", "duplicate_utterance_id", "unparseable_frame", "unparseable_utt_id",
        "orphan_frames", "harmful_still_present", "speaker_not_binary", "ragged_conversation",
        "words_unsorted", "duplicate_frame", "mixed_feature_lengths", "empty_conversation", "wrong_type",
    }  # fmt: skip


LOCAL_CASES = [case[0] for case in CASES if case[3] != "row"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(LOCAL_CASES), min_size=1, max_size=4, unique=True))
def test_cleaning_any_mix_of_local_corruptions_leaves_a_valid_row(corruptions):
    row = make_row(seed=2, n_utterances=4)
    for fn in corruptions:
        fn(row)
    problems = call_ours(validate_row, row, 0)
    assert problems
    cleaned, record = call_ours(clean_row, row, problems)
    assert record.changed
    assert cleaned is None or validate_row(cleaned) == []
