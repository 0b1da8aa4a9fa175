"""Tests of venus_analysis.extraction: per-utterance arrays, smoothing and windows."""

from __future__ import annotations

import copy

import datasets
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import savgol_filter

from tests.factories import make_row, rows_to_dataset
from venus_analysis import schema
from venus_analysis.extraction import (
    ExtractionTotals,
    iter_utterances,
    pad_or_truncate,
    segment_utterances,
    smooth_track,
    smooth_utterances,
    stack_window,
)

FACE, BODY, CONV = schema.FACE, schema.BODY, schema.CONVERSATION


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------
def naive_reference(row: dict, smooth: bool) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Frame-by-frame Python version: (utt id, frames, face 53, body 117, head rotation)."""
    layout = schema.face_layout_for(len(row[FACE]["features"][0]))
    per_track = []
    for name in (FACE, BODY):
        by_utt: dict[int, dict[int, np.ndarray]] = {}
        t = row[name]
        for uid, frame, feats in zip(t["utt_id"], t["frame"], t["features"]):
            by_utt.setdefault(int(uid), {}).setdefault(int(str(frame).split("_")[0]), np.asarray(feats, np.float32))
        per_track.append(by_utt)
    out = []
    for uid in row[CONV]["utterance_id"]:
        face, body = per_track[0].get(uid, {}), per_track[1].get(uid, {})
        frames = sorted(set(face) & set(body))
        f = np.array([face[i] for i in frames], np.float32).reshape(len(frames), layout.length)
        b = np.array([body[i] for i in frames], np.float32).reshape(len(frames), schema.BODY_DIM)
        if smooth:
            f, b = smooth_track(f), smooth_track(b)
        head = None if layout.head_rotation is None else f[:, layout.head_rotation]
        out.append((uid, np.array(frames), f[:, layout.tokenizer_columns()], b[:, schema.BODY_TOKEN_SLICE], head))
    return out


def drop_entries(track: dict, positions) -> None:
    """Remove entries of a dict-of-lists track in place."""
    keep = [i for i in range(len(track["utt_id"])) if i not in set(positions)]
    for key in ("utt_id", "frame", "features"):
        track[key] = [track[key][i] for i in keep]


def add_entries(row: dict, uid: int, frames: range, seed: int = 1) -> None:
    """Append face and body entries of utterance ``uid`` to a dict row."""
    rng = np.random.default_rng(seed)
    for name, dim in ((FACE, len(row[FACE]["features"][0])), (BODY, schema.BODY_DIM)):
        for f in frames:
            row[name]["utt_id"].append(str(uid))
            row[name]["frame"].append(f"{f}_0")
            row[name]["features"].append(rng.standard_normal(dim).astype(np.float32).tolist())


def same_utterances(a, b) -> None:
    """Assert two lists of UtteranceArrays hold identical data."""
    assert [u.utterance_id for u in a] == [u.utterance_id for u in b]
    for x, y in zip(a, b):
        assert (x.video_id, x.segment_id, x.speaker, x.text) == (y.video_id, y.segment_id, y.speaker, y.text)
        for name in ("frames", "face", "body", "head_rotation", "mask"):
            p, q = getattr(x, name), getattr(y, name)
            assert (p is None) == (q is None), name
            if p is not None:
                np.testing.assert_array_equal(p, q, err_msg=name)


# ---------------------------------------------------------------------------------------
# Smoothing
# ---------------------------------------------------------------------------------------
def test_savgol_window_rule():
    assert [schema.savgol_window_for(n) for n in range(9)] == [0, 0, 0, 3, 3, 5, 5, 5, 5]


@pytest.mark.parametrize("n", list(range(1, 13)) + [40, 600])
def test_smooth_track_is_scipy_with_the_papers_rule(n):
    x = np.random.default_rng(n).standard_normal((n, 7))
    window = schema.savgol_window_for(n)
    expected = savgol_filter(x, window, 2, axis=0) if window else x
    out = smooth_track(x)
    np.testing.assert_array_equal(out, expected)
    assert out is not x
    if n >= 5:  # window 5 really smooths; 3 frames with a quadratic fit them exactly
        assert np.abs(out - x).max() > 1e-3
    else:
        np.testing.assert_allclose(out, x, atol=1e-12)


def test_smooth_track_keeps_dtype_and_padding():
    x = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    padded = np.concatenate([x[:9], np.zeros((11, 4), np.float32)])
    out = smooth_track(padded, n_frames=9)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:9], smooth_track(x[:9]))
    np.testing.assert_array_equal(out[9:], 0)
    with pytest.raises(ValueError, match="n_frames"):
        smooth_track(x, n_frames=21)


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 25), min_size=1, max_size=12),
    dim=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_smooth_utterances_equals_smoothing_each_utterance(lengths, dim, seed):
    x = np.random.default_rng(seed).standard_normal((sum(lengths), dim))
    pieces = np.split(x, np.cumsum(lengths)[:-1])
    expected = np.concatenate([smooth_track(p) for p in pieces])
    np.testing.assert_allclose(smooth_utterances(x, lengths), expected, rtol=1e-10, atol=1e-10)


def test_smooth_utterances_rejects_wrong_lengths():
    with pytest.raises(ValueError, match="sum to 10"):
        smooth_utterances(np.zeros((10, 2)), [4, 5])


# ---------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 40), window=st.integers(1, 30), dim=st.integers(1, 3))
def test_pad_or_truncate_counts(n, window, dim):
    x = np.arange(1, n * dim + 1, dtype=np.float32).reshape(n, dim)  # no zeros inside
    padded, mask, n_cut = pad_or_truncate(x, window)
    keep = min(n, window)
    assert padded.shape == (window, dim) and mask.shape == (window,) and mask.dtype == bool
    assert mask.sum() == keep and mask[:keep].all()
    assert n_cut == max(n - window, 0) and keep + n_cut == n
    np.testing.assert_array_equal(padded[:keep], x[:keep])
    np.testing.assert_array_equal(padded[keep:], 0)


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(0, 20), min_size=1, max_size=6), window=st.integers(1, 16))
def test_stack_window_matches_pad_or_truncate(lengths, window):
    arrays = [np.full((n, 2), i + 1.0) for i, n in enumerate(lengths)]
    batch, mask, n_cut = stack_window(arrays, window)
    assert batch.shape == (len(lengths), window, 2) and mask.shape == (len(lengths), window)
    for b, a in enumerate(arrays):
        p, m, c = pad_or_truncate(a, window)
        np.testing.assert_array_equal(batch[b], p)
        np.testing.assert_array_equal(mask[b], m)
        assert n_cut[b] == c
    assert n_cut.sum() == sum(max(n - window, 0) for n in lengths)


def test_stack_window_rejects_mixed_shapes():
    with pytest.raises(ValueError, match="same shape"):
        stack_window([np.zeros((3, 2)), np.zeros((3, 4))], 8)


# ---------------------------------------------------------------------------------------
# One row
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("face_dim", [156, 153])
def test_matches_naive_reference(face_dim, smooth):
    row = make_row(n_utterances=4, frames_per_utterance=12, face_dim=face_dim, seed=3)
    drop_entries(row[FACE], [2, 3, 20])  # gaps in the face track
    drop_entries(row[BODY], [5, 30, 31, 40])  # other gaps in the body track
    seg = segment_utterances(row, smooth=smooth)
    ref = naive_reference(row, smooth)
    assert [u.utterance_id for u in seg] == [r[0] for r in ref] == [0, 1, 2, 3]
    for u, (uid, frames, face, body, head) in zip(seg, ref):
        np.testing.assert_array_equal(u.frames, frames)
        assert u.face.shape == (len(frames), 53) and u.body.shape == (len(frames), 117)
        assert u.face.dtype == u.body.dtype == np.float32
        np.testing.assert_allclose(u.face, face, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(u.body, body, rtol=1e-5, atol=1e-6)
        if face_dim == 153:
            assert u.head_rotation is None
        else:
            np.testing.assert_allclose(u.head_rotation, head, rtol=1e-5, atol=1e-6)
    assert seg.stats.face_layout == ("flame156" if face_dim == 156 else "flame153")


def test_face_layouts_pick_the_right_columns():
    for face_dim in (156, 153):
        row = make_row(n_utterances=1, frames_per_utterance=4, face_dim=face_dim)
        raw = np.array(row[FACE]["features"], np.float32)
        u = segment_utterances(row, smooth=False, full=True).utterances[0]
        layout = schema.face_layout_for(face_dim)
        np.testing.assert_array_equal(u.face[:, :50], raw[:, 0:50])
        np.testing.assert_array_equal(u.face[:, 50:], raw[:, layout.jaw])
        np.testing.assert_array_equal(u.face_full, raw)
        np.testing.assert_array_equal(u.body_full, np.array(row[BODY]["features"], np.float32))
        if face_dim == 156:
            np.testing.assert_array_equal(u.head_rotation, raw[:, 50:53])
        else:
            assert u.head_rotation is None


def test_dict_and_arrow_rows_give_identical_results():
    rows = [make_row(n_utterances=5, frames_per_utterance=9, seed=s, segment_id=s) for s in range(2)]
    drop_entries(rows[1][BODY], [0, 1, 17])
    ds = rows_to_dataset(rows)
    table = ds.data.table
    for i in range(2):
        from_dict = segment_utterances(ds[i])
        from_arrow = segment_utterances(ds.with_format("arrow")[i : i + 1])
        from_pair = segment_utterances((table, i))
        for other in (from_arrow, from_pair):
            same_utterances(from_dict.utterances, other.utterances)
            assert from_dict.stats == other.stats
    assert from_dict.stats.body_dropped_by_alignment == 0 and from_dict.stats.face_dropped_by_alignment == 3


def test_gapped_tracks_are_aligned_on_shared_frames():
    row = make_row(n_utterances=2, frames_per_utterance=10)
    # Utterance 0 is entries 0..9 (frames 25..34): the face misses 27, 28; the body misses 30.
    drop_entries(row[FACE], [2, 3])
    drop_entries(row[BODY], [5])
    seg = segment_utterances(row, smooth=False)
    u0, u1 = seg.utterances
    np.testing.assert_array_equal(u0.frames, [25, 26, 29, 31, 32, 33, 34])
    assert u0.dropped_by_alignment == 3 and u1.dropped_by_alignment == 0
    assert seg.stats.face_dropped_by_alignment == 1  # face frame 30 has no body partner
    assert seg.stats.body_dropped_by_alignment == 2
    assert seg.stats.frames_per_utterance == {0: 7, 1: 10}
    # Aligned rows really come from the same frame in both tracks.
    raw_face = {int(f.split("_")[0]): v for f, v in zip(row[FACE]["frame"], row[FACE]["features"]) if f}
    np.testing.assert_array_equal(u0.face[2], np.array(raw_face[29], np.float32)[schema.FACE_TOKEN_COLUMNS])


def test_entries_in_any_order_and_int_ids():
    row = make_row(n_utterances=3, frames_per_utterance=8, seed=5)
    shuffled = copy.deepcopy(row)
    order = np.random.default_rng(0).permutation(len(row[FACE]["utt_id"]))
    for key in ("utt_id", "frame", "features"):
        shuffled[FACE][key] = [row[FACE][key][i] for i in order]
    shuffled[BODY]["utt_id"] = [int(u) for u in row[BODY]["utt_id"]]  # ids stored as ints
    same_utterances(segment_utterances(row).utterances, segment_utterances(shuffled).utterances)


def test_utterances_follow_conversation_order():
    row = make_row(n_utterances=4, frames_per_utterance=6)
    conv = row[CONV]
    perm = [2, 0, 3, 1]
    for key in conv:
        conv[key] = [conv[key][i] for i in perm]
    seg = segment_utterances(row)
    assert [u.utterance_id for u in seg] == [2, 0, 3, 1]
    assert [u.text for u in seg] == ["hello there w2", "hello there w0", "hello there w3", "hello there w1"]
    assert [u.speaker for u in seg] == [0, 0, 1, 1]
    assert seg.utterances[0].start_time == conv["start_time"][0]


def test_harmful_unknown_duplicate_and_missing_frames_are_counted():
    row = make_row(n_utterances=4, frames_per_utterance=6, harmful=(1,))
    add_entries(row, 1, range(100, 105))  # 5 frames of the harmful utterance
    add_entries(row, 99, range(200, 203))  # 3 frames of an id nobody knows
    row[FACE]["utt_id"].append("0")  # a repeated face frame of utterance 0, other values
    row[FACE]["frame"].append(row[FACE]["frame"][0])
    row[FACE]["features"].append([9.0] * 156)
    drop_entries(row[BODY], range(6, 12))  # utterance 2 (second in the track) loses its body
    seg = segment_utterances(row, smooth=False)
    s = seg.stats
    assert [u.utterance_id for u in seg] == [0, 2, 3]
    assert (s.face_harmful, s.body_harmful, s.face_unknown, s.body_unknown) == (5, 5, 3, 3)
    assert (s.face_duplicates, s.body_duplicates) == (1, 0)
    assert s.utterances_without_frames == [2] and seg.utterances[1].n_frames == 0
    assert seg.utterances[1].face.shape == (0, 53)
    assert s.face_dropped_by_alignment == 6 and s.body_dropped_by_alignment == 0
    assert (seg.utterances[0].face[0] != 9.0).all()  # the first stored duplicate is kept
    for entries, track in ((s.face_entries, "face"), (s.body_entries, "body")):
        lost = sum(getattr(s, f"{track}_{k}") for k in ("harmful", "unknown", "duplicates", "dropped_by_alignment"))
        assert entries == s.frames_kept + lost
    everything = segment_utterances(row, smooth=False, skip_unknown=False)
    extra = [(u.utterance_id, u.in_conversation, u.harmful, u.n_frames, u.speaker) for u in everything][3:]
    assert extra == [(1, False, True, 5, None), (99, False, False, 3, None)]


def test_empty_tracks_and_empty_conversation():
    row = make_row(n_utterances=2, frames_per_utterance=5)
    for name in (FACE, BODY):
        row[name] = {"utt_id": [], "frame": [], "features": []}
    seg = segment_utterances(row)
    assert [u.n_frames for u in seg] == [0, 0] and seg.utterances[0].body.shape == (0, 117)
    assert seg.stats.utterances_without_frames == [0, 1] and seg.stats.frames_kept == 0
    row = make_row(n_utterances=2, frames_per_utterance=5)
    row[CONV] = {k: [] for k in row[CONV]}
    seg = segment_utterances(row)
    assert len(seg) == 0 and seg.stats.face_unknown == seg.stats.body_unknown == 10


# ---------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------
def _rows():
    rows = [make_row(n_utterances=4, frames_per_utterance=10 + 7 * s, seed=s, segment_id=s) for s in range(3)]
    drop_entries(rows[0][FACE], [3, 4])
    rows[2][CONV]["utterance_id"].append(7)  # an utterance with no frames at all
    for key, value in (("speaker", 1), ("text", "no frames"), ("start_time", 50.0), ("end_time", 51.0)):
        rows[2][CONV][key].append(value)
    rows[2][CONV]["words"].append({"word": [], "start_time": [], "end_time": []})
    return rows


def test_iter_utterances_dataset_list_and_streaming_agree(tmp_path):
    rows = _rows()
    ds = rows_to_dataset(rows)
    ds.to_parquet(str(tmp_path / "venus.parquet"))  # read back below as a streaming dataset
    files = str(tmp_path / "venus.parquet")
    streaming = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
    assert isinstance(streaming, datasets.IterableDataset)
    totals = ExtractionTotals()
    from_list = list(iter_utterances(rows, progress=False))
    from_ds = list(iter_utterances(ds, progress=False, totals=totals))
    from_iterable = list(iter_utterances(streaming, progress=False))
    from_table = list(iter_utterances(ds.data.table, progress=False))
    assert len(from_list) == 12  # utterance 7 has no frames and is skipped
    for other in (from_ds, from_iterable, from_table):
        same_utterances(from_list, other)
    assert [(u.segment_id, u.utterance_id) for u in from_ds][:5] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]
    assert totals.segments == 3 and totals.utterances == 12 and totals.skipped_utterances == 1
    assert totals.frames == sum(u.n_frames for u in from_ds) == 4 * 10 + 4 * 17 + 4 * 24 - 2
    assert totals.dropped_by_alignment == 2


def test_iter_utterances_window():
    ds = rows_to_dataset(_rows())
    totals = ExtractionTotals()
    utts = list(iter_utterances(ds, window=16, progress=False, totals=totals))
    plain = list(iter_utterances(ds, progress=False))
    for u, p in zip(utts, plain):
        assert u.face.shape == (16, 53) and u.body.shape == (16, 117) and u.frames.shape == (16,)
        n = min(p.n_frames, 16)
        assert u.n_frames == n and u.n_cut == p.n_frames - n
        np.testing.assert_array_equal(u.face[:n], p.face[:n])
        np.testing.assert_array_equal(u.frames[n:], -1)
    assert totals.frames_cut == sum(max(p.n_frames - 16, 0) for p in plain) > 0


def test_iter_utterances_rejects_a_datasetdict():
    dsd = datasets.DatasetDict({"train": rows_to_dataset([make_row()])})
    with pytest.raises(TypeError, match="split"):
        next(iter_utterances(dsd, progress=False))


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------
def _short_face(row):
    row[FACE]["features"] = [f[:100] for f in row[FACE]["features"]]


def _long_body(row):
    row[BODY]["features"] = [f + [0.0] for f in row[BODY]["features"]]


def _ragged_face(row):
    row[FACE]["features"][4] = row[FACE]["features"][4][:-1]


def _bad_utt_id(row):
    row[BODY]["utt_id"][3] = "x1"


def _bad_frame(row):
    row[FACE]["frame"][2] = "frame_12"


def _unequal_lists(row):
    row[FACE]["frame"] = row[FACE]["frame"][:-1]


def _bad_conversation_id(row):
    row[CONV]["utterance_id"][1] = "one"


def _duplicate_conversation_id(row):
    row[CONV]["utterance_id"][1] = 0


def _missing_column(row):
    del row[BODY]


def _null_track(row):
    row[FACE] = None


BAD = [
    (_short_face, "facial_expression.features", "got 100"),
    (_long_body, "body_language.features", "179"),
    (_ragged_face, "facial_expression.features", "different lengths"),
    (_bad_utt_id, "body_language.utt_id", "entry 3: 'x1'"),
    (_bad_frame, "facial_expression.frame", "entry 2"),
    (_unequal_lists, "facial_expression", "one entry per frame"),
    (_bad_conversation_id, "conversation.utterance_id", "one"),
    (_duplicate_conversation_id, "conversation.utterance_id", "more than once"),
    (_missing_column, "body_language", "no such column"),
    (_null_track, "facial_expression", "missing"),
]


@pytest.mark.parametrize("corrupt, field_name, expected", BAD, ids=[b[0].__name__ for b in BAD])
def test_bad_dict_rows_raise_value_error_naming_row_and_field(corrupt, field_name, expected):
    row = make_row(n_utterances=2, frames_per_utterance=5, video_id="vidBAD00001", segment_id=7)
    corrupt(row)
    with pytest.raises(ValueError) as info:
        segment_utterances(row)
    message = str(info.value)
    assert "vidBAD00001" in message and "segment_id=7" in message
    assert field_name in message and expected in message


@pytest.mark.parametrize("corrupt", [_short_face, _ragged_face, _bad_utt_id, _bad_frame], ids=lambda f: f.__name__)
def test_bad_arrow_rows_raise_value_error_too(corrupt):
    row = make_row(n_utterances=2, frames_per_utterance=5, video_id="vidBAD00002", segment_id=3)
    corrupt(row)
    ds = rows_to_dataset([make_row(), row])
    with pytest.raises(ValueError, match=r"vidBAD00002.*segment_id=3"):
        list(iter_utterances(ds, progress=False))


def test_rows_of_the_wrong_type():
    with pytest.raises(TypeError, match="a row is"):
        segment_utterances(["not", "a", "row"])
    table = rows_to_dataset([make_row(), make_row()]).data.table
    with pytest.raises(ValueError, match="1 row"):
        segment_utterances(table)
