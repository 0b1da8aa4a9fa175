"""Frame tracks from Arrow buffers to numpy, with no Python loop over frames.

A VENUS row stores each feature track (``facial_expression``, ``body_language``) as three
parallel lists: ``utt_id`` (string or int), ``frame`` (``"<index>_..."``) and ``features``
(a list of floats per frame). A real row holds ~15,000 frames, so converting them to Python
objects costs seconds; here the Arrow offsets and values buffers become numpy arrays
directly, and only the entries that fail to parse are looked at one by one.

``read_track`` is the one entry point: it takes a track as a ``pyarrow.StructScalar`` /
``StructArray`` slice, a table row, or the Python dict of lists that ``datasets`` returns,
and gives a :class:`FrameTrack`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_INT_PATTERN = r"^\s*[+-]?\d{1,18}\s*$"  # at most 18 digits: always fits in int64


@dataclass
class TrackIssue:
    """One entry of a track that could not be read: its position, field and what is wrong."""

    position: int  # index of the frame entry inside the track
    field: str  # "utt_id", "frame" or "features"
    message: str


@dataclass
class FrameTrack:
    """One feature track of one row, as numpy arrays (one entry per stored frame).

    ``features`` is ``(n, dim)`` float32 when every entry has the same length, else
    ``None`` (see ``lengths``). Entries whose ``utt_id`` or ``frame`` did not parse hold -1
    there and are listed in ``issues``.
    """

    utt_ids: np.ndarray  # (n,) int64
    frames: np.ndarray  # (n,) int64 frame index at 25 fps
    features: np.ndarray | None  # (n, dim) float32
    lengths: np.ndarray  # (n,) int64 number of floats per entry
    issues: list[TrackIssue] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.utt_ids)

    @property
    def dim(self) -> int | None:
        """Feature length shared by all entries (``None`` if empty or ragged)."""
        if self.features is None or len(self.utt_ids) == 0:
            return None
        return int(self.features.shape[1])


def parse_int_array(arr: pa.Array, name: str, issues: list[TrackIssue]) -> np.ndarray:
    """Parse an Arrow array of integer-like strings (or ints) to int64; -1 where it fails.

    Every entry that fails is listed in ``issues`` with its position and ``name``.
    """
    if pa.types.is_integer(arr.type):
        out = arr.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        for pos in np.flatnonzero(~arr.is_valid().to_numpy(zero_copy_only=False)):
            issues.append(TrackIssue(int(pos), name, "is missing (null)"))
        return out
    if pa.types.is_floating(arr.type):
        arr = pc.cast(arr, pa.string())
    arr = pc.cast(arr, pa.string())
    # Fast path for the usual case (only digits), ~10x cheaper than the regex below: a plain
    # Arrow cast. Anything else ("-3", " 7", or hex, which Arrow reads and int() does not)
    # takes the regex path.
    if arr.null_count == 0 and pc.all(pc.ascii_is_decimal(arr)).as_py():
        try:
            return pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            pass  # more than 18 digits: the regex below reports it
    ok = pc.fill_null(pc.match_substring_regex(arr, _INT_PATTERN), False)
    ok_np = ok.to_numpy(zero_copy_only=False)
    out = np.full(len(arr), -1, dtype=np.int64)
    if ok_np.any():
        good = pc.utf8_trim_whitespace(pc.filter(arr, ok))
        good = pc.replace_substring_regex(good, r"^\+", "")  # int("+5") is 5; Arrow's cast rejects "+"
        out[ok_np] = pc.cast(good, pa.int64()).to_numpy(zero_copy_only=False)
    for pos in np.flatnonzero(~ok_np):
        value = arr[int(pos)].as_py()
        issues.append(TrackIssue(int(pos), name, f"{value!r} is not an integer"))
    return out


def _frame_heads(arr: pa.Array) -> pa.Array:
    """The first ``_``-separated field of each frame string (ints pass through)."""
    if pa.types.is_integer(arr.type):
        return arr
    arr = pc.cast(arr, pa.string())
    return pc.list_element(pc.split_pattern(arr, "_", max_splits=1), 0)


def _as_struct_array(track) -> pa.StructArray:
    """Normalise the accepted inputs to a StructArray with one element per frame."""
    if isinstance(track, pa.StructScalar):
        track = {name: track[name] for name in ("utt_id", "frame", "features")}
        return pa.StructArray.from_arrays(
            [track["utt_id"].values, track["frame"].values, track["features"].values],
            names=["utt_id", "frame", "features"],
        )
    if isinstance(track, dict):
        missing = [k for k in ("utt_id", "frame", "features") if k not in track]
        if missing:
            raise KeyError(f"the track has no {missing} (expected utt_id, frame, features)")
        arrays = []
        for name in ("utt_id", "frame", "features"):
            value = track[name]
            if value is None:
                value = []
            if isinstance(value, pa.Array):
                arrays.append(value)
            elif name == "features" and isinstance(value, np.ndarray) and value.ndim == 2:
                flat = pa.array(value.astype(np.float32, copy=False).ravel())
                offsets = pa.array(np.arange(0, value.size + 1, value.shape[1], dtype=np.int32))
                arrays.append(pa.ListArray.from_arrays(offsets, flat))
            elif name == "features":
                arrays.append(_features_from_python(value))
            else:
                arrays.append(pa.array(list(value)))
        lens = {len(a) for a in arrays}
        if len(lens) != 1:
            raise ValueError(
                "utt_id, frame and features must have one entry per frame; got lengths "
                f"{[len(a) for a in arrays]}"
            )
        return pa.StructArray.from_arrays(arrays, names=["utt_id", "frame", "features"])
    raise TypeError(f"cannot read a feature track from {type(track).__name__}")


def _features_from_python(value) -> pa.Array:
    """Lists of floats (or numpy rows) to a ListArray; anything non-numeric becomes null."""
    try:
        return pa.array(
            [None if v is None else np.asarray(v, dtype=np.float32) for v in value],
            type=pa.list_(pa.float32()),
        )
    except (TypeError, ValueError, pa.ArrowInvalid):
        items = []
        for v in value:
            try:
                items.append(None if v is None else np.asarray(v, dtype=np.float32))
            except (TypeError, ValueError):
                items.append(None)  # reported as an unreadable entry by read_track
        return pa.array(items, type=pa.list_(pa.float32()))


def read_track(track) -> FrameTrack:
    """Read one row's feature track into numpy arrays without a Python loop over frames.

    ``track`` is a ``pyarrow.StructArray`` with one element per frame (fields ``utt_id``,
    ``frame``, ``features``), a ``pyarrow.StructScalar`` of lists (one row of a table
    column), or the dict of lists that ``datasets`` returns for a row.
    """
    arr = _as_struct_array(track)
    issues: list[TrackIssue] = []
    utt_ids = parse_int_array(arr.field("utt_id"), "utt_id", issues)
    frames = parse_int_array(_frame_heads(arr.field("frame")), "frame", issues)
    feats = arr.field("features")
    if isinstance(feats, pa.ChunkedArray):
        feats = feats.combine_chunks()
    if not pa.types.is_list(feats.type) and not pa.types.is_large_list(feats.type):
        raise TypeError(f"features must be a list of floats per frame; got {feats.type}")
    valid = feats.is_valid().to_numpy(zero_copy_only=False)
    for pos in np.flatnonzero(~valid):
        issues.append(TrackIssue(int(pos), "features", "is missing or not a list of numbers"))
    offsets = feats.offsets.to_numpy()
    lengths = np.diff(offsets).astype(np.int64)
    lengths[~valid] = 0
    # ``.values`` ignores the slice: for one row of a table it is the float buffer of the
    # whole chunk, so cut this track's floats out before converting (else O(chunk) per row).
    values = feats.values
    values = values.slice(offsets[0], offsets[-1] - offsets[0]) if len(offsets) else values[:0]
    if not pa.types.is_floating(values.type):
        values = pc.cast(values, pa.float32())
    if values.null_count:  # fill_null copies the buffer even when there is nothing to fill
        values = values.fill_null(np.nan)
    flat = values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    features = None
    if len(lengths) == 0:
        features = np.zeros((0, 0), dtype=np.float32)
    elif valid.all() and (lengths == lengths[0]).all():
        features = flat.reshape(len(lengths), int(lengths[0]))
    return FrameTrack(utt_ids=utt_ids, frames=frames, features=features, lengths=lengths, issues=issues)


def utterance_groups(utt_ids: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group a track's entries by utterance, each group sorted by frame index.

    Returns ``(order, unique_ids, starts)``: ``order`` permutes the entries so utterances
    are contiguous (ascending id) and frames ascend inside each; utterance ``unique_ids[k]``
    occupies ``order[starts[k]:starts[k + 1]]`` (``starts`` has one extra final element).
    """
    order = np.lexsort((frames, utt_ids))  # last key is the primary one
    sorted_ids = utt_ids[order]
    unique_ids, first = np.unique(sorted_ids, return_index=True)
    starts = np.append(first, len(sorted_ids)).astype(np.int64)
    return order, unique_ids, starts


def iter_tables(data, batch_size: int = 16, *, progress: bool = False, desc: str | None = None):
    """Yield a dataset's rows as ``pyarrow.Table`` batches of at most ``batch_size`` segments.

    Works for a ``datasets.Dataset`` (memory-mapped batches, no Python objects), a
    streaming ``IterableDataset`` (Arrow batches as they arrive) and a list of row dicts.
    Memory stays bounded by one batch, whatever the size of the dataset.
    """
    from tqdm.auto import tqdm

    if isinstance(data, (list, tuple)):
        total = (len(data) + batch_size - 1) // batch_size
        batches = (pa.Table.from_pylist(list(data[i : i + batch_size])) for i in range(0, len(data), batch_size))
    else:
        total = None
        if hasattr(data, "__len__"):
            try:
                total = (len(data) + batch_size - 1) // batch_size
            except TypeError:
                total = None
        batches = data.with_format("arrow").iter(batch_size=batch_size)
    yield from tqdm(batches, total=total, desc=desc, unit="batch", disable=not progress, leave=False)
