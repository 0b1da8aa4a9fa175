"""load_venus / save_venus: every source gives the same Features and content."""

from __future__ import annotations

import sys
import time
import types

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import make_row, rows_to_dataset
from venus_analysis import loading, schema
from venus_analysis.loading import VenusLoadError, load_venus, save_venus
from venus_analysis.validation import SkipReport, ValidationReport, VenusValidationError

FACE, CONV = schema.FACE, schema.CONVERSATION


@pytest.fixture(scope="module")
def rows():
    return {"train": [make_row(seed=i, video_id=f"train{i:06d}") for i in range(3)],
            "test": [make_row(seed=10 + i, video_id=f"test0{i:06d}", face_dim=153) for i in range(2)]}  # fmt: skip


@pytest.fixture(scope="module")
def expected(rows):
    return datasets.DatasetDict({split: rows_to_dataset(r) for split, r in rows.items()})


def write_parquet(rows, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def load(source, tmp_path, **kwargs):
    return load_venus(source, cache_dir=str(tmp_path / "cache"), progress=False, **kwargs)


def assert_same(data, expected):
    assert sorted(data) == sorted(expected)
    for split in expected:
        assert data[split].features == schema.VENUS_FEATURES
        assert data[split].to_list() == expected[split].to_list()


def test_hub_layout_parquet_folder(tmp_path, rows, expected):
    for split, r in rows.items():
        write_parquet(r, tmp_path / "venus" / "data" / f"{split}-00000-of-00001.parquet")
    data = load(tmp_path / "venus", tmp_path)
    assert isinstance(data, datasets.DatasetDict) and list(data) == ["train", "test"]
    assert_same(data, expected)


def test_parquet_files_named_by_split(tmp_path, rows, expected):
    for split, r in rows.items():
        write_parquet(r, tmp_path / "venus" / f"{split}.parquet")
    assert_same(load(tmp_path / "venus", tmp_path), expected)
    one = load(tmp_path / "venus" / "test.parquet", tmp_path, split="test")
    assert isinstance(one, datasets.Dataset) and one.to_list() == expected["test"].to_list()


def test_save_venus_round_trip(tmp_path, expected):
    out = save_venus(expected, tmp_path / "saved")
    assert_same(load(out, tmp_path), expected)
    assert load(out, tmp_path, split="train").to_list() == expected["train"].to_list()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_single_saved_dataset_is_the_train_split(tmp_path, expected):
    expected["test"].save_to_disk(str(tmp_path / "one"))
    data = load(tmp_path / "one", tmp_path)
    assert list(data) == ["train"] and data["train"].to_list() == expected["test"].to_list()


def test_save_venus_replaces_only_when_asked(tmp_path, expected):
    out = save_venus(expected, tmp_path / "saved")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_venus(expected, out)
    save_venus(datasets.DatasetDict({"train": expected["train"]}), out, overwrite=True)
    assert list(load(out, tmp_path)) == ["train"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]
    with pytest.raises(TypeError, match="materialise"):
        save_venus(expected["train"].to_iterable_dataset(), tmp_path / "x")


def test_streaming_sources_give_the_same_rows(tmp_path, rows, expected):
    for split, r in rows.items():
        write_parquet(r, tmp_path / "venus" / "data" / f"{split}-00000-of-00001.parquet")
    saved = save_venus(expected, tmp_path / "saved")
    for source in (tmp_path / "venus", saved):
        data = load(source, tmp_path, streaming=True)
        assert isinstance(data, datasets.IterableDatasetDict)
        for split in expected:
            assert data[split].features == schema.VENUS_FEATURES
            assert list(data[split]) == expected[split].to_list()
    one = load(saved, tmp_path, streaming=True, split="test")
    assert isinstance(one, datasets.IterableDataset)


def test_int_utt_ids_become_strings_and_extra_columns_stay(tmp_path, rows):
    raw = [dict(r) for r in rows["train"]]
    for r in raw:
        r[FACE] = dict(r[FACE], utt_id=[int(u) for u in r[FACE]["utt_id"]])
        r[CONV] = dict(r[CONV], sentiment=["neutral"] * len(r[CONV]["text"]))
        r["bbox_track"] = [[0.1, 0.2, 0.3, 0.4]]
        del r["title"]
    write_parquet(raw, tmp_path / "train.parquet")
    for streaming in (False, True):
        ds = load(tmp_path / "train.parquet", tmp_path, split="train", streaming=streaming)
        assert ds.features[FACE]["utt_id"] == datasets.List(datasets.Value("string"))
        assert ds.features[CONV]["sentiment"] == datasets.List(datasets.Value("string"))
        assert ds.features["bbox_track"] == datasets.List(datasets.List(datasets.Value("float64")))
        assert "title" not in ds.features
        first = next(iter(ds))
        assert first[FACE]["utt_id"][:2] == ["0", "0"] and first["bbox_track"] == [[0.1, 0.2, 0.3, 0.4]]


def test_on_error_modes(tmp_path, rows):
    bad = [dict(r) for r in rows["train"]]
    bad[1] = make_row(seed=1)
    bad[1][CONV]["speaker"][2] = 5
    saved = save_venus(datasets.DatasetDict({"train": rows_to_dataset(bad)}), tmp_path / "bad")
    where = r"train row 1 \(video abcDEF12345, segment 0\), conversation.speaker"
    with pytest.raises(VenusValidationError, match=where):
        load(saved, tmp_path)
    with pytest.warns(loading.VenusSkipWarning, match="0 of 3 rows, 1 utterances and 60 frame entries"):
        data, report = load(saved, tmp_path, on_error="skip", return_report=True)
    assert isinstance(report, SkipReport) and report.utterances_by_kind() == {"speaker_not_binary": 1}
    assert data["train"][1][CONV]["utterance_id"] == [0, 1]
    for kwargs in ({"on_error": "ignore"}, {"validate": False}):
        data, report = load(saved, tmp_path, return_report=True, **kwargs)
        assert report is None and data["train"][1][CONV]["speaker"] == [0, 1, 5]
    good, report = load(save_venus(datasets.DatasetDict({"train": rows_to_dataset(rows["train"])}),
                                   tmp_path / "good"), tmp_path, return_report=True)  # fmt: skip
    assert isinstance(report, ValidationReport) and report.ok and report.n_rows == 3
    with pytest.raises(ValueError, match="on_error must be one of"):
        load(saved, tmp_path, on_error="warn")


def test_streaming_validation_is_lazy(tmp_path, rows):
    bad = [make_row(seed=i) for i in range(3)]
    bad[2][CONV]["end_time"][0] = -1.0
    saved = save_venus(datasets.DatasetDict({"train": rows_to_dataset(bad)}), tmp_path / "bad")
    data = load(saved, tmp_path, streaming=True, split="train")  # nothing read yet
    seen = []
    with pytest.raises(VenusValidationError, match="train row 2"):
        for row in data:
            seen.append(row)
    assert len(seen) == 2
    data, report = load(saved, tmp_path, streaming=True, split="train", on_error="skip", return_report=True)
    assert report.n_rows == 0
    for _ in range(2):  # iterating twice does not count twice
        kept = list(data)
    assert [len(r[CONV]["utterance_id"]) for r in kept] == [3, 3, 2]
    assert report.n_rows == 3 and report.utterances_by_kind() == {"negative_time": 1}


def test_synthetic_source_uses_the_generator(monkeypatch, expected):
    calls = []

    def fake_generate(**kwargs):
        calls.append(kwargs)
        return expected

    monkeypatch.setitem(sys.modules, "venus_analysis.synthetic", types.SimpleNamespace(generate_venus=fake_generate))
    data = load_venus("synthetic", split="test", n_segments=4, progress=False)
    assert data.to_list() == expected["test"].to_list()
    assert calls == [{"n_segments": 4, "progress": False}]
    stream = load_venus("synthetic", streaming=True, progress=False)
    assert isinstance(stream, datasets.IterableDatasetDict) and list(stream["train"]) == expected["train"].to_list()
    with pytest.raises(TypeError, match="only apply to source='synthetic'"):
        load_venus("winston1214/VENUS-1K", n_segments=4)


def test_generated_synthetic_data_validate_clean():
    from tests.conftest import SMALL

    data, report = load_venus("synthetic", progress=False, return_report=True, **SMALL)
    assert report.ok and report.n_rows == sum(len(d) for d in data.values())
    assert all(d.features == schema.VENUS_FEATURES for d in data.values())


def test_hub_name_offline_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    for kwargs in ({}, {"split": "train", "streaming": True}):
        with pytest.raises(VenusLoadError) as info:
            load_venus("winston1214/VENUS-1K", **kwargs)
        message = str(info.value)
        assert "winston1214/VENUS-1K" in message and "HF_HUB_OFFLINE" in message
        assert "load_venus('synthetic')" in message and "local copy" in message
    assert time.perf_counter() - t0 < 10


def test_unreachable_hub_fails_fast(monkeypatch):
    monkeypatch.setattr(loading, "hub_offline", lambda: False)
    monkeypatch.setattr(loading, "probe_hub", lambda: "huggingface.co:443 unreachable: no route")
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("must not call the Hub"))
    with pytest.raises(VenusLoadError, match="cannot reach the Hugging Face Hub.*load_venus\\('synthetic'\\)"):
        load_venus("winston1214/VENUS-5K")


def test_hub_name_goes_to_load_dataset_and_is_normalised(monkeypatch, rows):
    calls = []
    raw = [dict(r, segment_id=str(r["segment_id"])) for r in rows["train"]]

    def fake_load_dataset(name, **kwargs):
        calls.append((name, kwargs))
        return datasets.Dataset.from_list(raw)

    monkeypatch.setattr(loading, "hub_offline", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_venus("winston1214/VENUS-1K", split="train", progress=False)
    assert calls == [("winston1214/VENUS-1K", {"split": "train", "streaming": False, "cache_dir": None})]
    assert ds.features == schema.VENUS_FEATURES and ds[0]["segment_id"] == 0


def test_source_that_is_neither_path_nor_hub_name(tmp_path):
    with pytest.raises(VenusLoadError, match="not 'synthetic', an existing file or folder, nor a Hub dataset name"):
        load_venus(str(tmp_path / "missing" / "data.parquet"))
    with pytest.raises(TypeError, match="source must be"):
        load_venus(42)
