"""Load VENUS from the synthetic generator, the Hub, a ``save_to_disk`` folder or parquet.

``load_venus`` gives the same ``datasets`` Features whatever the source (the contract in
``schema``), then validates:

- ``on_error="raise"`` (default): stop at the first bad row with a
  :class:`~venus_analysis.validation.VenusValidationError` listing its problems;
- ``on_error="skip"``: drop bad utterances / rows, warn with a summary and keep every
  removal in a :class:`~venus_analysis.validation.SkipReport`
  (``load_venus(..., return_report=True)`` returns ``(data, report)``);
- ``on_error="ignore"`` (or ``validate=False``): no check.

Non-streaming data are checked in one pass over Arrow batches when loading; skip mode
then rewrites only if something is wrong (a ``Dataset.map`` that leaves good rows as they
are). Streaming data are checked lazily, row by row as they are iterated, by an
``IterableDataset.map``: nothing is read at load time, an error surfaces when the bad row
is reached, and the returned SkipReport fills up as the data are iterated (it is keyed by
row, so iterating twice does not count twice; DataLoader worker processes fill their own
copies).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import warnings
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import datasets
import pyarrow as pa
from datasets.table import cast_array_to_feature, table_cast

from venus_analysis import schema
from venus_analysis.files import atomic_folder
from venus_analysis.validation import (
    SkipReport,
    ValidationReport,
    VenusValidationError,
    arrow_row,
    clean_row,
    iter_rows,
    row_problems,
)

logger = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip", "ignore")
KNOWN_SPLITS = ("train", "validation", "test")
HUB_PROBE_TIMEOUT_S = 5.0
_HUB_NAME = re.compile(r"^\w[\w.-]*/\w[\w.-]*$")
# Rows per batch in the Arrow maps: a real row holds ~20 MB of floats. Streaming maps take
# one row at a time, so memory stays flat and a bad row fails exactly when it is reached.
_MAP_ROWS = 4
_USE_INSTEAD = (
    "Use load_venus('synthetic') for the built-in synthetic VENUS, or a local copy: "
    "load_venus('/path/to/folder') with a save_to_disk folder or the Hub's parquet files."
)


class VenusLoadError(RuntimeError):
    """A VENUS source could not be opened or does not fit the data contract."""


class VenusSkipWarning(UserWarning):
    """Skip mode removed rows, utterances or frames (details in the SkipReport)."""


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------
def load_venus(
    source="synthetic",
    split: str | None = None,
    *,
    streaming: bool = False,
    on_error: str = "raise",
    validate: bool = True,
    cache_dir: str | None = None,
    return_report: bool = False,
    progress: bool = True,
    **synthetic_kwargs,
):
    """Load VENUS data with the contract's Features, validated as ``on_error`` says.

    ``source``: ``"synthetic"`` (``synthetic.generate_venus(**synthetic_kwargs)``), a Hub
    name such as ``"winston1214/VENUS-1K"``, or a local path: a ``save_to_disk`` folder, a
    ``.parquet`` file, or a folder of parquet files named by split (``train.parquet``,
    ``data/train-00000-of-00001.parquet``, ``train/0000.parquet``). A single-split source
    (one file, a saved ``Dataset``) becomes split ``split or "train"``.

    Returns a ``DatasetDict`` (``split=None``) or a ``Dataset`` (iterable versions when
    ``streaming``); with ``return_report=True`` returns ``(data, report)`` where report is
    a SkipReport (skip mode), a ValidationReport (raise mode, not streaming) or None.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}; got {on_error!r}")
    if synthetic_kwargs and source != "synthetic":
        raise TypeError(
            f"unexpected keyword arguments {sorted(synthetic_kwargs)}: they are passed to the "
            "synthetic generator and only apply to source='synthetic'"
        )
    data, name = _open(source, split, streaming, cache_dir, progress, synthetic_kwargs)
    data = type(data)({key: normalise(ds, f"{name} [{key}]") for key, ds in data.items()})
    report = None
    if validate and on_error != "ignore":
        data, report = _validate_splits(data, on_error, streaming, progress)
    result = data[split] if split is not None else data
    return (result, report) if return_report else result


def normalise(data, source_name: str = "the data"):
    """Cast a Dataset / IterableDataset to the contract's Features (see ``schema``).

    Required columns get ``schema.REQUIRED_FEATURES`` types (int ``utt_id`` -> string,
    digit-string ids -> int64, features -> float32), known optional columns
    ``schema.OPTIONAL_FEATURES``; unknown columns and unknown nested fields are kept as
    they are. A missing column or nested field raises :class:`VenusLoadError`; so does a
    value that cannot be cast (naming the column and row; lazily when streaming).
    """
    features = data.features
    if features is None:  # a streaming source that does not announce its Features
        first = next(iter(data.with_format("arrow").iter(batch_size=1)), None)
        if first is None:
            return data
        features = datasets.Features.from_arrow_schema(first.schema)
    columns = list(features)
    missing = [c for c in schema.REQUIRED_COLUMNS if c not in features]
    if missing:
        raise VenusLoadError(
            f"{source_name}: missing required column(s) {missing}. Columns found: {columns}. "
            f"A VENUS source needs {schema.REQUIRED_COLUMNS}."
        )
    target = _target_features(features, source_name)
    if target == features and data.features is not None:
        return data
    cast = partial(_cast_batch, features=target, source_name=source_name)
    kwargs = dict(batched=True, with_indices=True, batch_size=1, features=target)
    if isinstance(data, datasets.Dataset):
        kwargs.update(batch_size=_MAP_ROWS, desc=f"Casting {source_name} to the VENUS features")
    return data.with_format("arrow").map(cast, **kwargs).with_format(None)


def save_venus(data, out_dir, *, overwrite: bool = False) -> Path:
    """Write ``data`` (DatasetDict or Dataset) as a folder ``load_venus`` reads, atomically.

    The folder is written beside ``out_dir`` under a temporary name and renamed into place,
    so a crash never leaves a half-written dataset. An existing ``out_dir`` is replaced
    only with ``overwrite=True``. Returns the folder's path.
    """
    if isinstance(data, dict) and not isinstance(data, datasets.DatasetDict):
        data = datasets.DatasetDict(data)
    if not isinstance(data, (datasets.Dataset, datasets.DatasetDict)):
        raise TypeError(
            f"save_venus needs a Dataset or DatasetDict, got {type(data).__name__} "
            "(an iterable dataset must be materialised first)"
        )
    with atomic_folder(out_dir, overwrite=overwrite) as tmp:
        data.save_to_disk(str(tmp))
    return Path(out_dir).expanduser().resolve()


# ---------------------------------------------------------------------------------------
# Opening sources: each returns a (Iterable)DatasetDict and a name for messages
# ---------------------------------------------------------------------------------------
def _open(source, split, streaming, cache_dir, progress, synthetic_kwargs):
    if isinstance(source, str) and source == "synthetic":
        kwargs = {"progress": progress, **synthetic_kwargs}
        if cache_dir is not None:
            kwargs.setdefault("cache_dir", cache_dir)
        return _open_synthetic(split, streaming, kwargs), "synthetic VENUS"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be 'synthetic', a Hub name or a path; got {type(source).__name__}")
    path = Path(source).expanduser()
    if path.exists():
        return _open_local(path, split, streaming, cache_dir), str(path)
    text = str(source)
    if _HUB_NAME.match(text) and not text.endswith((".parquet", ".arrow")):
        return _open_hub(text, split, streaming, cache_dir), text
    raise VenusLoadError(
        f"{text!r} is not 'synthetic', an existing file or folder, nor a Hub dataset name "
        f"such as {schema.HUB_DATASETS[0]!r}."
    )


def _pick(data: dict, split, name: str):
    """Restrict a dict of splits to ``split`` (all when None), with a clear error."""
    if split is None:
        return data
    if split not in data:
        raise VenusLoadError(f"{name} has no split {split!r}; its splits are {sorted(data)}")
    return type(data)({split: data[split]})


def _to_streaming(data: datasets.DatasetDict) -> datasets.IterableDatasetDict:
    return datasets.IterableDatasetDict({k: v.to_iterable_dataset() for k, v in data.items()})


def _open_synthetic(split, streaming, kwargs):
    try:
        from venus_analysis.synthetic import generate_venus
    except ImportError as err:
        raise VenusLoadError(f"the synthetic VENUS generator is not available ({err})") from err
    if kwargs.pop("return_truth", False):
        raise TypeError("load_venus returns data only; call synthetic.generate_venus(return_truth=True) for the truth")
    data = generate_venus(**kwargs)
    if isinstance(data, datasets.Dataset):
        data = datasets.DatasetDict({split or "train": data})
    data = _pick(data, split, "the synthetic VENUS")
    return _to_streaming(data) if streaming else data


def _open_local(path: Path, split, streaming, cache_dir):
    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        try:
            data = datasets.load_from_disk(str(path))
        except Exception as err:  # datasets raises several types for a damaged folder
            raise VenusLoadError(f"{path}: cannot read this save_to_disk folder ({err})") from err
        if isinstance(data, datasets.Dataset):
            data = datasets.DatasetDict({split or "train": data})
        data = _pick(data, split, str(path))
        return _to_streaming(data) if streaming else data
    files = parquet_splits(path)
    files = _pick(files, split, str(path))
    loaded = {}
    for name, paths in files.items():
        try:
            loaded[name] = datasets.load_dataset(
                "parquet", data_files={name: paths}, split=name, streaming=streaming, cache_dir=cache_dir
            )
        except Exception as err:  # datasets wraps pyarrow errors in several types
            raise VenusLoadError(f"{path}: cannot read the parquet file(s) of split {name!r} ({err})") from err
    return (datasets.IterableDatasetDict if streaming else datasets.DatasetDict)(loaded)


def parquet_splits(path: Path) -> dict[str, list[str]]:
    """Parquet files under ``path`` grouped by split, as the Hub names them.

    A file belongs to split ``train``, ``validation`` or ``test`` when its name starts
    with it (``train.parquet``, ``data/train-00000-of-00001.parquet``) or its folder is
    named so (``train/0000.parquet``); any other parquet file is ``train``.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix != ".parquet":
            raise VenusLoadError(f"{path}: expected a .parquet file or a folder; got a {path.suffix or 'plain'} file")
        return {_split_name(path): [str(path)]}
    found = sorted(
        p for p in path.rglob("*.parquet") if not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not found:
        raise VenusLoadError(
            f"{path}: no parquet files and no save_to_disk folder (dataset_dict.json or state.json) here"
        )
    splits: dict[str, list[str]] = {}
    for file in found:
        splits.setdefault(_split_name(file), []).append(str(file))
    return dict(sorted(splits.items(), key=lambda kv: KNOWN_SPLITS.index(kv[0])))


def _split_name(file: Path) -> str:
    head = re.split(r"[-_.]", file.name)[0]
    for name in (head, file.parent.name):
        if name in KNOWN_SPLITS:
            return name
    return "train"


def hub_offline() -> bool:
    """True when Hugging Face offline mode is on (``HF_HUB_OFFLINE``)."""
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return env or bool(getattr(datasets.config, "HF_HUB_OFFLINE", False))


def probe_hub(timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Why the Hub cannot be reached (a short reason), or None when a TCP connect works.

    Skipped (None) behind an HTTPS proxy, where a direct connection proves nothing.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return f"{host}:{port} unreachable: {err}"
    return None


def _open_hub(name: str, split, streaming, cache_dir):
    offline = hub_offline()
    if not offline:
        reason = probe_hub()
        if reason:
            raise VenusLoadError(
                f"cannot reach the Hugging Face Hub to load {name!r} ({reason}). {_USE_INSTEAD} "
                "Set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache."
            )
    try:
        data = datasets.load_dataset(name, split=split, streaming=streaming, cache_dir=cache_dir)
    except Exception as err:  # datasets / huggingface_hub raise many types for this
        why = (
            "HF_HUB_OFFLINE is set and no copy is in the local Hugging Face cache"
            if offline else "the Hub request failed"
        )
        raise VenusLoadError(f"cannot load {name!r}: {why} ({type(err).__name__}: {err}). {_USE_INSTEAD}") from err
    if isinstance(data, (datasets.Dataset, datasets.IterableDataset)):
        data = (datasets.IterableDatasetDict if streaming else datasets.DatasetDict)({split: data})
    return data


# ---------------------------------------------------------------------------------------
# Casting to the contract
# ---------------------------------------------------------------------------------------
def _is_list(feature) -> bool:
    return isinstance(feature, (datasets.List, datasets.LargeList, datasets.Sequence))


def _merge(found, canon, path: str, missing: list[str]):
    """The Features to cast ``found`` to: ``canon``'s types, ``found``'s extra fields."""
    if isinstance(found, datasets.Value) and found.dtype == "null":
        return canon  # an all-null column casts to anything
    if isinstance(canon, dict):
        if not isinstance(found, dict):
            what = "a list of records" if _is_list(found) else f"{found}"
            raise VenusLoadError(f"{path} is {what}; expected a dict of parallel lists with fields {list(canon)}")
        merged = {}
        for key, sub in canon.items():
            if key in found:
                merged[key] = _merge(found[key], sub, f"{path}.{key}", missing)
            else:
                missing.append(f"{path}.{key}")
        merged.update({key: sub for key, sub in found.items() if key not in canon})
        return merged
    if _is_list(canon):
        if not _is_list(found):
            raise VenusLoadError(f"{path} is {_leaf(found)}; expected a list of {_leaf(canon)}")
        return datasets.List(_merge(found.feature, canon.feature, f"{path}[]", missing))
    if isinstance(found, (dict, list)) or _is_list(found):
        raise VenusLoadError(f"{path} is a list or a dict; expected a single {_leaf(canon)}")
    return canon


def _leaf(feature):
    """The innermost type of a (nested) list feature, as text."""
    while _is_list(feature):
        feature = feature.feature
    return feature.dtype if isinstance(feature, datasets.Value) else "a dict of fields"


def _target_features(found: datasets.Features, source_name: str) -> datasets.Features:
    """Contract types for known columns (in the source's column order), others unchanged."""
    target, missing = {}, []
    for name, feature in found.items():
        canon = schema.REQUIRED_FEATURES.get(name) or schema.OPTIONAL_FEATURES.get(name)
        if canon is None:
            target[name] = feature
            continue
        try:
            target[name] = _merge(feature, canon, name, missing)
        except VenusLoadError as err:
            raise VenusLoadError(f"{source_name}: {err}") from None
    if missing:
        raise VenusLoadError(
            f"{source_name}: missing nested field(s) {missing}; every VENUS row needs them "
            "(see venus_analysis.schema.REQUIRED_FEATURES)"
        )
    return datasets.Features(target)


def _cast_batch(table: pa.Table, indices, *, features: datasets.Features, source_name: str) -> pa.Table:
    """Cast one Arrow batch to ``features``; a failure names the column, field and row."""
    try:
        return table_cast(table, features.arrow_schema)
    except Exception as err:  # pyarrow and datasets raise ValueError/TypeError/ArrowInvalid
        raise _cast_error(table, indices, features, source_name, err) from None


def _cast_error(table, indices, features, source_name, err) -> VenusLoadError:
    """Find the first column / nested field / row that does not cast, for the message."""
    for name, feature in features.items():
        column = _fresh(table.column(name).combine_chunks())
        if _casts(column, feature):
            continue
        path, leaf = _bad_field(column, feature, name)
        for i in range(table.num_rows):
            one = _fresh(column.slice(i, 1))
            if not _casts(one, feature):
                video = table.column("video_id")[i].as_py() if "video_id" in table.column_names else None
                return VenusLoadError(
                    f"{source_name}: {path!r} of row {indices[i]} (video {video}) cannot be converted "
                    f"to the VENUS type {leaf}: {_cast_message(one, feature)}"
                )
    return VenusLoadError(f"{source_name}: cannot cast to the VENUS features: {str(err)[:300]}")


def _fresh(array: pa.Array) -> pa.Array:
    """A copy with offset 0 (``StructArray.field`` ignores a slice's offset)."""
    return array.take(pa.array(range(len(array)), type=pa.int64()))


def _cast_message(array, feature) -> str:
    """The first line of the cast error for ``array`` ('' when it casts)."""
    try:
        cast_array_to_feature(array, feature)
    except Exception as err:  # any failure means "does not cast"; reported as text
        return str(err).splitlines()[0][:300] or type(err).__name__
    return ""


def _casts(array, feature) -> bool:
    return not _cast_message(array, feature)


def _bad_field(array, feature, path: str):
    """The deepest nested field of ``array`` that fails to cast: (dotted path, its type)."""
    if isinstance(feature, dict) and pa.types.is_struct(array.type):
        for key, sub in feature.items():
            if array.type.get_field_index(key) >= 0 and not _casts(array.field(key), sub):
                return _bad_field(array.field(key), sub, f"{path}.{key}")
    if _is_list(feature) and (pa.types.is_list(array.type) or pa.types.is_large_list(array.type)):
        child = array.flatten()
        if not _casts(child, feature.feature):
            return _bad_field(child, feature.feature, path)
    return path, feature.dtype if isinstance(feature, datasets.Value) else feature


# ---------------------------------------------------------------------------------------
# Validation while loading
# ---------------------------------------------------------------------------------------
def _validate_splits(data, on_error: str, streaming: bool, progress: bool):
    """Validate (or lazily wrap) every split; returns (data, report)."""
    if streaming:
        report = SkipReport() if on_error == "skip" else None
        wrapped = {
            split: ds.with_format("arrow").map(
                partial(_lazy_check, split=split, on_error=on_error, report=report),
                batched=True, with_indices=True, batch_size=1, features=ds.features,
            ).with_format(None)
            for split, ds in data.items()
        }
        return datasets.IterableDatasetDict(wrapped), report
    if on_error == "raise":
        report = ValidationReport()
        for split, ds in data.items():
            for index, row in iter_rows(ds, progress=progress, desc=f"Validating {split}"):
                problems = row_problems(row, index, split)
                report.n_rows += 1
                if problems:
                    raise VenusValidationError(problems)
        return data, report
    report = SkipReport()
    cleaned = {split: _skip_dataset(ds, split, report, progress) for split, ds in data.items()}
    if report.records:
        warnings.warn(
            f"load_venus {report.summary()}; pass return_report=True for the details "
            f"(by kind: rows {report.rows_by_kind()}, utterances {report.utterances_by_kind()}, "
            f"frames {report.frames_by_kind()})",
            VenusSkipWarning,
            stacklevel=3,
        )
    return datasets.DatasetDict(cleaned), report


def _skip_dataset(ds: datasets.Dataset, split: str, report: SkipReport, progress: bool):
    """Check every row; if any is bad, rewrite the dataset without what is broken."""
    bad = {}
    for index, row in iter_rows(ds, progress=progress, desc=f"Validating {split}"):
        problems = row_problems(row, index, split)
        _, record = clean_row(row, problems, row_index=index, split=split)
        report.add(record, problems)
        if problems:
            bad[index] = problems
    if not bad:
        return ds
    return ds.with_format("arrow").map(
        partial(_clean_batch, bad=bad),
        batched=True, with_indices=True, batch_size=_MAP_ROWS, features=ds.features,
        load_from_cache_file=False, desc=f"Dropping invalid VENUS data ({split})",
    ).with_format(None)


def _clean_batch(table: pa.Table, indices, *, bad: dict) -> pa.Table:
    """Map function: rows listed in ``bad`` are cleaned or dropped; others pass as they are."""
    if not any(i in bad for i in indices):
        return table
    parts = []
    for i, index in enumerate(indices):
        if index not in bad:
            parts.append(table.slice(i, 1))
            continue
        cleaned, _ = clean_row(arrow_row(table, i), bad[index])
        if cleaned is not None:
            parts.append(_row_table(cleaned, table.slice(i, 1)))
    return pa.concat_tables(parts) if parts else table.slice(0, 0)


def _lazy_check(table: pa.Table, indices, *, split: str, on_error: str, report: SkipReport | None) -> pa.Table:
    """Streaming map function: validate rows as they arrive; raise or clean them."""
    parts = []
    for i, index in enumerate(indices):
        row = arrow_row(table, i)
        problems = row_problems(row, index, split)
        if problems and on_error == "raise":
            raise VenusValidationError(problems)
        cleaned, record = clean_row(row, problems, row_index=index, split=split)
        if report is not None:
            report.add(record, problems)
        if record.changed:
            logger.info("VENUS skip: %s", record)
        if cleaned is not None:
            parts.append(table.slice(i, 1) if not problems else _row_table(cleaned, table.slice(i, 1)))
    return pa.concat_tables(parts) if parts else table.slice(0, 0)


def _row_table(row: dict, original: pa.Table) -> pa.Table:
    """A one-row table: ``original`` with the cleaned conversation and tracks put in."""
    for name in (schema.CONVERSATION, schema.FACE, schema.BODY):
        value = row[name]
        if isinstance(value, pa.Scalar):
            continue  # unchanged
        index = original.schema.get_field_index(name)
        field = original.schema.field(index)
        if name == schema.CONVERSATION:
            array = pa.array([value], type=field.type)
        else:
            array = _track_array(value, field.type)
        original = original.set_column(index, field, array)
    return original


def _track_array(track: dict, struct_type: pa.StructType) -> pa.StructArray:
    """One row's track (dict of per-frame lists or Arrow arrays) as a 1-element StructArray."""
    children = []
    for field in struct_type:
        values = track[field.name]
        item_type = field.type.value_type
        if not isinstance(values, pa.Array):
            values = pa.array(values, type=item_type)
        elif values.type != item_type:
            values = values.cast(item_type)
        offsets = pa.array([0, len(values)], type=pa.int32())
        children.append(pa.ListArray.from_arrays(offsets, values, type=field.type))
    return pa.StructArray.from_arrays(children, fields=list(struct_type))
