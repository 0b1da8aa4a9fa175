"""Per-utterance arrays from VENUS rows, fast: the input of the tokenizers and the analyses.

One VENUS row is a ten-minute segment whose face and body tracks hold one entry per stored
frame, tagged with an utterance id. :func:`segment_utterances` turns one row into the
utterances of its conversation, in conversation order, each with

- ``face``: ``(n, 53)`` float32, the tokenizer's face inputs (expression 50 + jaw 3);
- ``body``: ``(n, 117)`` float32, the tokenizer's body inputs (upper body + both hands);
- ``head_rotation``: ``(n, 3)`` axis-angle, or ``None`` for the legacy 153-float face;
- ``frames``: ``(n,)`` the frame indices at 25 fps, ascending;

optionally smoothed with the paper's Savitzky-Golay rule (:func:`smooth_track`).
:func:`iter_utterances` streams over a whole dataset, one segment in memory at a time, and
:func:`pad_or_truncate` / :func:`stack_window` make the fixed 512-frame windows MARS trains on.

Rows can be given as

- the Python dict that indexing a ``datasets.Dataset`` returns (``dataset[i]``);
- a one-row ``pyarrow.Table`` or ``RecordBatch`` (what ``dataset.with_format("arrow")``
  returns), or a pair ``(table, i)`` meaning row ``i`` of a table or record batch.

Arrow rows are much faster: their feature buffers become numpy arrays without ever being
turned into Python floats (see ``frames.read_track``). Nothing here loops over frames in
Python; the loops are over utterances. All utterances of a segment are gathered and
smoothed together, and each utterance's arrays are views into those segment arrays.

Face and body tracks of an utterance can store different frames (the active-speaker
detector misses a run of one but not the other), so the two are aligned on the frames they
share; :class:`SegmentStats` counts what alignment, duplicates, harmful and unknown
utterance ids left out.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
from scipy.signal import savgol_coeffs, savgol_filter

from . import schema
from .frames import FrameTrack, read_track, utterance_groups

# The columns extraction reads (anything else in a row is ignored).
# Columns read when streaming a Dataset (the optional per-row labels are small scalars).
_COLUMNS = ["video_id", "segment_id", schema.CONVERSATION, schema.FACE, schema.BODY, schema.HARMFUL, "channel_id", "title"]
_MISSING = object()  # marks a column the row does not have


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------
@dataclass
class UtteranceArrays:
    """The aligned face and body arrays of one utterance (one entry per kept frame).

    ``face_full`` / ``body_full`` hold every stored float (156 or 153 / 179) when asked for
    with ``full=True``. After windowing (``iter_utterances(window=...)``) the arrays have the
    window's length, ``mask`` marks the real frames, padded ``frames`` are -1 and ``n_cut``
    counts the frames the window cut off the end.

    The arrays of one segment's utterances are views into shared per-segment arrays (no
    copy per utterance): to keep a few utterances of many segments, keep ``face.copy()``
    etc., or the whole segments stay in memory.
    """

    utterance_id: int
    speaker: int | None
    frames: np.ndarray  # (n,) int64 frame index at 25 fps, ascending
    face: np.ndarray  # (n, 53) float32
    body: np.ndarray  # (n, 117) float32
    head_rotation: np.ndarray | None  # (n, 3) float32; None for the 153-float face layout
    start_time: float | None = None  # seconds from the segment start (from the conversation)
    end_time: float | None = None
    text: str | None = None
    face_full: np.ndarray | None = None  # (n, 156 or 153)
    body_full: np.ndarray | None = None  # (n, 179)
    video_id: str | None = None
    segment_id: int | None = None
    in_conversation: bool = True  # False for track ids missing from the conversation
    harmful: bool = False  # True when the id is listed in harmful_utterance_id
    dropped_by_alignment: int = 0  # face + body frames of this utterance without a partner
    mask: np.ndarray | None = None  # (window,) bool, set by windowing
    n_cut: int = 0  # frames cut by the window

    @property
    def n_frames(self) -> int:
        """Number of real (not padded) frames."""
        return int(self.mask.sum()) if self.mask is not None else len(self.frames)


@dataclass
class SegmentStats:
    """What one row held and what extraction left out, in frame entries per track.

    With ``skip_unknown=True``, for each track:
    ``entries = kept + dropped_by_alignment + duplicates + harmful + unknown``, where
    ``kept`` is ``sum(frames_per_utterance.values())``.
    """

    video_id: str | None
    segment_id: int | None
    face_layout: str  # "flame156" or "flame153"
    face_entries: int  # frame entries stored in facial_expression
    body_entries: int  # frame entries stored in body_language
    frames_per_utterance: dict[int, int] = field(default_factory=dict)  # aligned frames kept
    face_harmful: int = 0  # entries whose id is in harmful_utterance_id (not in the conversation)
    body_harmful: int = 0
    face_unknown: int = 0  # entries whose id is neither in the conversation nor harmful
    body_unknown: int = 0
    face_duplicates: int = 0  # repeated (utterance, frame) entries; the first one is kept
    body_duplicates: int = 0
    face_dropped_by_alignment: int = 0  # face frames with no body frame of the same index
    body_dropped_by_alignment: int = 0
    utterances_without_frames: list[int] = field(default_factory=list)

    @property
    def frames_kept(self) -> int:
        """Aligned frames returned over all utterances."""
        return sum(self.frames_per_utterance.values())


@dataclass
class SegmentArrays:
    """The utterances of one row in conversation order, with the row's :class:`SegmentStats`."""

    video_id: str | None
    segment_id: int | None
    utterances: list[UtteranceArrays]
    stats: SegmentStats

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self) -> Iterator[UtteranceArrays]:
        return iter(self.utterances)


@dataclass
class ExtractionTotals:
    """Running totals over many segments; pass one to ``iter_utterances(totals=...)``."""

    segments: int = 0
    utterances: int = 0  # utterances yielded
    frames: int = 0  # real frames yielded (after the window cut)
    frames_cut: int = 0  # frames the window cut off
    skipped_utterances: int = 0  # utterances with fewer than min_frames frames
    harmful_frames: int = 0  # face + body entries, as in SegmentStats
    unknown_frames: int = 0
    duplicate_frames: int = 0
    dropped_by_alignment: int = 0

    def add_segment(self, stats: SegmentStats) -> None:
        """Add one segment's :class:`SegmentStats`."""
        self.segments += 1
        self.harmful_frames += stats.face_harmful + stats.body_harmful
        self.unknown_frames += stats.face_unknown + stats.body_unknown
        self.duplicate_frames += stats.face_duplicates + stats.body_duplicates
        self.dropped_by_alignment += stats.face_dropped_by_alignment + stats.body_dropped_by_alignment


# ---------------------------------------------------------------------------------------
# Smoothing and windows
# ---------------------------------------------------------------------------------------
def _float_dtype(x: np.ndarray) -> np.dtype:
    """The dtype scipy's savgol_filter returns for ``x``: float32 stays, all else is float64."""
    return x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def smooth_track(x, n_frames: int | None = None) -> np.ndarray:
    """Savitzky-Golay smoothing along time (axis 0) with the paper's rule.

    The window is ``schema.savgol_window_for(n)`` (5, or 3 for 3-4 frames), polynomial order
    2, scipy's default ``mode="interp"``; fewer than 3 frames are returned unchanged. With
    ``n_frames``, only the first ``n_frames`` rows are real (e.g. a padded window): the rule
    uses ``n_frames`` and the padding is left as it is. Returns a new array.

    Note that a 3-frame window with a quadratic fits every 3 points exactly, so the rule
    leaves 3- and 4-frame utterances unchanged (up to rounding).
    """
    x = np.asarray(x)
    n = len(x) if n_frames is None else int(n_frames)
    if not 0 <= n <= len(x):
        raise ValueError(f"n_frames must be between 0 and {len(x)} (the array's length); got {n}")
    out = x.astype(_float_dtype(x), copy=True)
    window = schema.savgol_window_for(n)
    if window:
        out[:n] = savgol_filter(x[:n], window, schema.SAVGOL_POLYORDER, axis=0)
    return out


@functools.lru_cache(maxsize=None)
def _weights(window: int, pos: int | None) -> np.ndarray:
    """Savitzky-Golay weights (scipy's) giving the smoothed value at ``pos`` (None: the centre).

    Cached: computing them costs a least-squares solve, ~0.1 ms, on every call otherwise.
    """
    weights = savgol_coeffs(window, schema.SAVGOL_POLYORDER, pos=pos, use="dot")
    weights.flags.writeable = False  # shared by every caller
    return weights


def _central_into(out: np.ndarray, x: np.ndarray, weights: np.ndarray, where: np.ndarray, block: int = 512):
    """``out[i] = sum_j weights[j] * x[i - h + j]`` (``h = len(weights) // 2``) where ``where[i]``.

    Works through the frames in blocks so the temporaries stay small: big fresh arrays cost
    more to allocate (page faults) than this arithmetic.
    """
    w, half = len(weights), len(weights) // 2
    acc = np.empty((block,) + x.shape[1:], out.dtype)
    term = np.empty_like(acc)
    for s in range(half, len(x) - half, block):  # frames s .. e-1 have `half` neighbours each side
        e = min(s + block, len(x) - half)
        a, t = acc[: e - s], term[: e - s]
        np.multiply(x[s - half : e - half], weights[0], out=a)
        for j in range(1, w):
            a += np.multiply(x[s - half + j : e - half + j], weights[j], out=t)
        np.copyto(out[s:e], a, where=where[s:e].reshape((-1,) + (1,) * (x.ndim - 1)))


def smooth_utterances(x, lengths) -> np.ndarray:
    """Smooth every utterance of a concatenated ``(N, ...)`` array on its own.

    ``lengths`` gives the utterances' frame counts in order (they sum to ``N``). The result
    equals :func:`smooth_track` on each utterance (to float rounding; a test checks it), but
    is computed for all utterances at once: one ``savgol_filter`` call costs ~1 ms of fixed
    overhead, more than smoothing a whole utterance, and scipy.ndimage filters an ``(N, D)``
    array along axis 0 slowly. The weights are scipy's own (``savgol_coeffs``).
    """
    x = np.asarray(x)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.sum() != len(x) or (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0 and sum to {len(x)} (the array's length)")
    ends = np.cumsum(lengths)
    starts = ends - lengths
    windows = np.array([schema.savgol_window_for(int(n)) for n in lengths], dtype=np.int64)
    # Per frame: its utterance's window, and how many frames of the utterance lie before/after it.
    frame_window = np.repeat(windows, lengths)
    before = np.arange(len(x)) - np.repeat(starts, lengths)
    after = np.repeat(lengths, lengths) - 1 - before
    dtype = _float_dtype(x)
    # Every frame is written below, except those of utterances too short to smooth.
    out = np.empty(x.shape, dtype) if (windows > 0).all() else x.astype(dtype, copy=True)
    for w in np.unique(windows[windows > 0]).tolist():
        half = w // 2
        # Frames at least `half` from both ends of their utterance: the central weights,
        # exactly what savgol_filter convolves with.
        inner = (frame_window == w) & (before >= half) & (after >= half)
        _central_into(out, x, _weights(w, None).astype(dtype), inner)
        # The `half` frames at each end: scipy's default mode="interp" fits a polynomial of
        # degree 2 to the first (last) w frames and evaluates it there. That fit is
        # linear in the frames, so savgol_coeffs(pos=p) gives its weights for frame p.
        chosen = windows == w
        k = np.arange(w)[:, None]
        heads = x[starts[chosen][None, :] + k]  # (w, U, ...) first w frames of each utterance
        tails = x[ends[chosen][None, :] - w + k]  # (w, U, ...) last w frames
        for p in range(half):
            edge = _weights(w, p)  # weights of frames 0..w-1
            out[starts[chosen] + p] = np.tensordot(edge, heads, axes=1)
            out[ends[chosen] - 1 - p] = np.tensordot(edge[::-1], tails, axes=1)
    return out


def pad_or_truncate(x, window: int = schema.WINDOW_FRAMES, pad_value: float = 0.0):
    """Pad with ``pad_value`` or cut ``x`` (time on axis 0) to exactly ``window`` frames.

    Returns ``(padded, mask, n_cut)``: ``mask`` is ``(window,)`` bool, True on real frames,
    and ``n_cut`` is how many frames were cut off the end (0 when padded).
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 frame; got {window}")
    x = np.asarray(x)
    keep = min(len(x), window)
    padded = np.full((window,) + x.shape[1:], pad_value, dtype=x.dtype)
    padded[:keep] = x[:keep]
    mask = np.arange(window) < keep
    return padded, mask, len(x) - keep


def stack_window(arrays, window: int = schema.WINDOW_FRAMES, pad_value: float = 0.0):
    """Pad or cut each ``(n_i, ...)`` array to ``window`` frames and stack them.

    Returns ``(batch, mask, n_cut)``: ``batch`` is ``(B, window, ...)``, ``mask`` is
    ``(B, window)`` bool and ``n_cut`` is ``(B,)`` int64 frames cut from each array.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 frame; got {window}")
    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("stack_window needs at least one array")
    tails = {a.shape[1:] for a in arrays}
    if len(tails) != 1:
        raise ValueError(f"all arrays must have the same shape after axis 0; got {sorted(tails)}")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    keep = np.minimum(lengths, window)
    batch = np.full((len(arrays), window) + arrays[0].shape[1:], pad_value, dtype=np.result_type(*arrays))
    for b, a in enumerate(arrays):  # one copy per utterance
        batch[b, : keep[b]] = a[: keep[b]]
    mask = np.arange(window)[None, :] < keep[:, None]
    return batch, mask, lengths - keep


def window_utterance(utt: UtteranceArrays, window: int = schema.WINDOW_FRAMES) -> UtteranceArrays:
    """A copy of ``utt`` with every per-frame array padded or cut to ``window`` frames.

    Padding is 0 (frames: -1); ``mask`` and ``n_cut`` are set.
    """
    frames, mask, n_cut = pad_or_truncate(utt.frames, window, pad_value=-1)

    def fit(a):
        return None if a is None else pad_or_truncate(a, window)[0]

    return replace(
        utt,
        frames=frames,
        face=fit(utt.face),
        body=fit(utt.body),
        head_rotation=fit(utt.head_rotation),
        face_full=fit(utt.face_full),
        body_full=fit(utt.body_full),
        mask=mask,
        n_cut=int(n_cut),
    )


# ---------------------------------------------------------------------------------------
# Reading one row
# ---------------------------------------------------------------------------------------
class _Row:
    """Uniform access to a dict row, a one-row Arrow table or a ``(table, i)`` pair."""

    def __init__(self, row):
        self._dict = self._table = None
        self._i = 0
        if isinstance(row, tuple) and len(row) == 2 and isinstance(row[0], (pa.Table, pa.RecordBatch)):
            self._table, self._i = row
            if not 0 <= int(self._i) < row[0].num_rows:
                raise ValueError(f"row index {self._i} is outside a table of {row[0].num_rows} rows")
        elif isinstance(row, (pa.Table, pa.RecordBatch)):
            if row.num_rows != 1:
                raise ValueError(f"an Arrow row must be a table of 1 row (or a (table, i) pair); got {row.num_rows}")
            self._table = row
        elif isinstance(row, Mapping):
            self._dict = row
        else:
            raise TypeError(f"a row is a dict, a one-row pyarrow Table or (table, i); got {type(row).__name__}")
        video_id, segment_id = self.get("video_id"), self.get("segment_id")
        self.video_id = None if video_id is _MISSING else _py(video_id)
        self.segment_id = None if segment_id is _MISSING else _py(segment_id)
        self.label = f"row (video_id={self.video_id!r}, segment_id={self.segment_id!r})"

    def get(self, name: str):
        """The row's value for column ``name``: a Python value, an Arrow scalar, or _MISSING."""
        if self._dict is not None:
            return self._dict.get(name, _MISSING)
        if name not in self._table.column_names:
            return _MISSING
        return self._table.column(name)[int(self._i)]

    def error(self, where: str, message: str) -> ValueError:
        """A ValueError naming this row and the field ``where``."""
        return ValueError(f"{self.label}: {where}: {message}")


def _py(value):
    """An Arrow scalar as a Python value; anything else as it is."""
    return value.as_py() if isinstance(value, pa.Scalar) else value


def _as_int(value) -> int:
    """An utterance id as an int: ints, integral floats and integer strings are accepted."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise ValueError
    if isinstance(value, (float, np.floating)):
        if not float(value).is_integer():
            raise ValueError
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return int(str(value).strip())


def _int_list(row: _Row, where: str, values) -> list[int]:
    """Parse a short list of ids (loops over utterances, not frames)."""
    out = []
    for pos, value in enumerate(values):
        try:
            out.append(_as_int(value))
        except (TypeError, ValueError):
            raise row.error(where, f"entry {pos} is {value!r}; expected an integer utterance id") from None
    return out


def _list_field(row: _Row, container, name: str, where: str) -> list | None:
    """One list-valued field of a struct column (dict of lists or Arrow struct), or None."""
    if isinstance(container, pa.StructScalar):
        if container.type.get_field_index(name) < 0:
            return None
        item = container[name]
        return item.values.to_pylist() if item.is_valid else None
    value = container.get(name)
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise row.error(f"{where}.{name}", f"expected a list with one entry per utterance; got {type(value).__name__}")
    return list(value)


@dataclass
class _Conversation:
    ids: list[int]
    speaker: list
    text: list
    start_time: list
    end_time: list


def _read_conversation(row: _Row) -> _Conversation:
    """The conversation's utterance ids, speakers, texts and times (words are not read)."""
    conv = row.get(schema.CONVERSATION)
    where = schema.CONVERSATION
    if conv is _MISSING:
        raise row.error(where, "the row has no such column")
    if conv is None or (isinstance(conv, pa.Scalar) and not conv.is_valid):
        raise row.error(where, "is missing (null); expected a dict of lists (utterance_id, speaker, ...)")
    if not isinstance(conv, (Mapping, pa.StructScalar)):
        raise row.error(where, f"expected a dict of lists (utterance_id, speaker, ...); got {type(conv).__name__}")
    raw_ids = _list_field(row, conv, "utterance_id", where)
    if raw_ids is None:
        raise row.error(f"{where}.utterance_id", "is missing; expected one id per utterance")
    ids = _int_list(row, f"{where}.utterance_id", raw_ids)
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise row.error(f"{where}.utterance_id", f"ids {repeated} appear more than once; expected unique ids")
    fields = {}
    for name in ("speaker", "text", "start_time", "end_time"):
        values = _list_field(row, conv, name, where)
        if values is None:
            values = [None] * len(ids)
        if len(values) != len(ids):
            raise row.error(f"{where}.{name}", f"has {len(values)} entries; expected {len(ids)} (one per utterance)")
        fields[name] = values
    speakers = []
    for pos, value in enumerate(fields["speaker"]):
        try:
            speakers.append(None if value is None else _as_int(value))
        except (TypeError, ValueError):
            raise row.error(f"{where}.speaker", f"entry {pos} is {value!r}; expected 0 or 1") from None
    return _Conversation(ids, speakers, fields["text"], fields["start_time"], fields["end_time"])


def _read_harmful(row: _Row) -> list[int]:
    """The ids listed in harmful_utterance_id (empty when the column is absent or null)."""
    value = row.get(schema.HARMFUL)
    if value is _MISSING or value is None:
        return []
    if isinstance(value, pa.Scalar):
        value = value.as_py() or []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise row.error(schema.HARMFUL, f"expected a list of utterance ids; got {type(value).__name__}")
    return _int_list(row, schema.HARMFUL, value)


def _read_track(row: _Row, name: str) -> FrameTrack:
    """Read and check one feature track; every problem becomes a ValueError naming the row."""
    value = row.get(name)
    if value is _MISSING:
        raise row.error(name, "the row has no such column")
    if value is None or (isinstance(value, pa.Scalar) and not value.is_valid):
        raise row.error(name, "is missing (null); expected a dict of lists utt_id, frame, features")
    try:
        track = read_track(value)
    except (ValueError, TypeError, KeyError, AttributeError, pa.ArrowException) as err:
        raise row.error(name, f"cannot be read as utt_id/frame/features lists ({err})") from None
    if track.issues:
        first = track.issues[0]
        more = f" ({len(track.issues) - 1} more problems in this track)" if len(track.issues) > 1 else ""
        raise row.error(
            f"{name}.{first.field}",
            f"entry {first.position}: {first.message}{more}; expected integer utt_id, "
            "frame '<index>_...' and a list of floats per entry",
        )
    expected = "156 or 153" if name == schema.FACE else str(schema.BODY_DIM)
    if track.features is None:  # ragged: entries of different lengths
        common = np.bincount(track.lengths).argmax()
        first = int(np.flatnonzero(track.lengths != common)[0])
        raise row.error(
            f"{name}.features",
            f"entries have different lengths {sorted(set(track.lengths.tolist()))} (entry {first} has "
            f"{track.lengths[first]}); expected {expected} floats in every entry",
        )
    return track


def _face_layout(row: _Row, track: FrameTrack) -> schema.FaceLayout:
    """The face layout for the track's feature length (the full layout for an empty track)."""
    if len(track) == 0:
        return schema.FACE_LAYOUT
    try:
        return schema.face_layout_for(track.dim)
    except ValueError as err:
        raise row.error(f"{schema.FACE}.features", str(err)) from None


def _check_body(row: _Row, track: FrameTrack) -> None:
    if len(track) and track.dim != schema.BODY_DIM:
        raise row.error(
            f"{schema.BODY}.features", f"entries have {track.dim} floats; expected {schema.BODY_DIM} (SMPL-X via OSX)"
        )


def _pair_keys(face_ids, face_frames, body_ids, body_frames):
    """One int64 per (utterance id, frame) pair, ordered like the pairs, for both tracks."""
    ids, frames = np.concatenate([face_ids, body_ids]), np.concatenate([face_frames, body_frames])
    if len(ids) == 0:
        return face_ids.copy(), body_ids.copy()
    span = int(frames.max()) - int(frames.min()) + 1
    if (int(ids.max()) - int(ids.min()) + 1) * span < 2**62:  # Python ints: checked without overflow
        key = (ids - ids.min()) * span + (frames - frames.min())
    else:  # absurdly large ids or frames: dense ranks keep the key small
        id_rank = np.unique(ids, return_inverse=True)[1].astype(np.int64)
        frame_values, frame_rank = np.unique(frames, return_inverse=True)
        key = id_rank * len(frame_values) + frame_rank
    return key[: len(face_ids)], key[len(face_ids) :]


def _align(face_ids, face_frames, body_ids, body_frames):
    """Match face and body entries that share an (utterance id, frame) pair.

    Returns ``(face_unique, body_unique, face_match, body_match)``: ``*_unique`` are the
    positions of each track's distinct pairs (the first stored entry of a repeated pair);
    ``face_unique[face_match]`` and ``body_unique[body_match]`` are the matched entries,
    sorted by (utterance id, frame).
    """
    face_key, body_key = _pair_keys(face_ids, face_frames, body_ids, body_frames)
    # np.unique sorts stably, so return_index gives the first entry of each repeated pair.
    face_keys, face_unique = np.unique(face_key, return_index=True)
    body_keys, body_unique = np.unique(body_key, return_index=True)
    # Both key arrays are sorted and distinct: look each face key up among the body keys.
    at = np.searchsorted(body_keys, face_keys)
    found = at < len(body_keys)
    found[found] = body_keys[at[found]] == face_keys[found]
    return face_unique, body_unique, np.flatnonzero(found), at[found]


def _counts(ids: np.ndarray) -> dict[int, int]:
    """Number of entries per utterance id."""
    values, counts = np.unique(ids, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def segment_utterances(row, *, smooth: bool = True, full: bool = False, skip_unknown: bool = True) -> SegmentArrays:
    """One VENUS row to its utterances' arrays, in conversation order.

    ``row`` is a dict row (``dataset[i]``), a one-row ``pyarrow.Table``/``RecordBatch`` or a
    ``(table, i)`` pair. Face and body are aligned on the frames both store; ``smooth``
    applies :func:`smooth_track` per utterance (to every returned array); ``full`` also
    returns all stored floats (``face_full``, ``body_full``). Conversation utterances without
    frames are returned with empty arrays. With ``skip_unknown=False`` the track's
    utterances missing from the conversation (harmful ones included) follow, by id, with
    ``in_conversation=False`` and no speaker or text.

    Raises ``ValueError`` naming the row and the field for unreadable input.
    """
    r = _Row(row)
    conv = _read_conversation(r)
    harmful = _read_harmful(r)
    face, body = _read_track(r, schema.FACE), _read_track(r, schema.BODY)
    layout = _face_layout(r, face)
    _check_body(r, body)
    face_feats = face.features.reshape(len(face), layout.length)  # (0, 0) -> (0, 156) when empty
    body_feats = body.features.reshape(len(body), schema.BODY_DIM)

    # Classify entries by utterance id: in the conversation, harmful, or unknown.
    conv_ids = np.array(conv.ids, dtype=np.int64)
    harmful_ids = np.array(harmful, dtype=np.int64)
    face_in, body_in = np.isin(face.utt_ids, conv_ids), np.isin(body.utt_ids, conv_ids)
    face_harm = ~face_in & np.isin(face.utt_ids, harmful_ids)
    body_harm = ~body_in & np.isin(body.utt_ids, harmful_ids)
    stats = SegmentStats(
        video_id=r.video_id,
        segment_id=r.segment_id,
        face_layout=layout.name,
        face_entries=len(face),
        body_entries=len(body),
        face_harmful=int(face_harm.sum()),
        body_harmful=int(body_harm.sum()),
        face_unknown=int((~face_in & ~face_harm).sum()),
        body_unknown=int((~body_in & ~body_harm).sum()),
    )

    # Align the entries we return on shared (utterance, frame) pairs.
    face_pos = np.flatnonzero(face_in) if skip_unknown else np.arange(len(face))
    body_pos = np.flatnonzero(body_in) if skip_unknown else np.arange(len(body))
    face_unique, body_unique, face_match, body_match = _align(
        face.utt_ids[face_pos], face.frames[face_pos], body.utt_ids[body_pos], body.frames[body_pos]
    )
    stats.face_duplicates = len(face_pos) - len(face_unique)
    stats.body_duplicates = len(body_pos) - len(body_unique)
    stats.face_dropped_by_alignment = len(face_unique) - len(face_match)
    stats.body_dropped_by_alignment = len(body_unique) - len(body_match)
    # Distinct frames per utterance before alignment, to count each utterance's losses.
    face_distinct = _counts(face.utt_ids[face_pos[face_unique]])
    body_distinct = _counts(body.utt_ids[body_pos[body_unique]])
    face_pos, body_pos = face_pos[face_unique[face_match]], body_pos[body_unique[body_match]]
    ids, frames = face.utt_ids[face_pos], face.frames[face_pos]
    order, group_ids, starts = utterance_groups(ids, frames)
    face_pos, body_pos, frames = face_pos[order], body_pos[order], frames[order]

    # Gather the needed columns of all aligned frames at once, then smooth per utterance.
    # Face columns up to the last one returned (0..55: expression, head rotation, jaw).
    used = [s for s in (layout.expression, layout.head_rotation, layout.jaw) if s is not None]
    face_stop = layout.length if full else max(s.stop for s in used)
    # (Gathering also makes contiguous copies, which smooth faster than views of the Arrow
    # buffers, and leaves the results independent of the row's memory.)
    face_rows = face_feats[face_pos, :face_stop]
    body_rows = body_feats[body_pos] if full else body_feats[body_pos, schema.BODY_TOKEN_SLICE]
    if smooth:
        lengths = np.diff(starts)
        face_rows = smooth_utterances(face_rows, lengths).astype(np.float32, copy=False)
        body_rows = smooth_utterances(body_rows, lengths).astype(np.float32, copy=False)
    face_tok = np.concatenate([face_rows[:, layout.expression], face_rows[:, layout.jaw]], axis=1)  # (N, 53)
    body_tok = body_rows[:, schema.BODY_TOKEN_SLICE] if full else body_rows

    # Where each utterance's aligned frames sit in the gathered arrays.
    where = {int(u): (int(a), int(b)) for u, a, b in zip(group_ids, starts[:-1], starts[1:])}

    def arrays(uid: int, k: int | None) -> UtteranceArrays:
        a, b = where.get(uid, (0, 0))
        # Views into the segment's arrays, no copies (see the note in UtteranceArrays).
        utt = UtteranceArrays(
            utterance_id=uid,
            speaker=conv.speaker[k] if k is not None else None,
            frames=frames[a:b],
            face=face_tok[a:b],
            body=body_tok[a:b],
            head_rotation=None if layout.head_rotation is None else face_rows[a:b, layout.head_rotation],
            start_time=conv.start_time[k] if k is not None else None,
            end_time=conv.end_time[k] if k is not None else None,
            text=conv.text[k] if k is not None else None,
            face_full=face_rows[a:b] if full else None,
            body_full=body_rows[a:b] if full else None,
            video_id=r.video_id,
            segment_id=r.segment_id,
            in_conversation=k is not None,
            harmful=uid in harmful,
            dropped_by_alignment=face_distinct.get(uid, 0) + body_distinct.get(uid, 0) - 2 * (b - a),
        )
        stats.frames_per_utterance[uid] = b - a
        if b == a:
            stats.utterances_without_frames.append(uid)
        return utt

    utterances = [arrays(uid, k) for k, uid in enumerate(conv.ids)]
    if not skip_unknown:
        extra = np.setdiff1d(np.union1d(face.utt_ids, body.utt_ids), conv_ids)  # sorted ids
        utterances += [arrays(int(uid), None) for uid in extra]
    return SegmentArrays(r.video_id, r.segment_id, utterances, stats)


# ---------------------------------------------------------------------------------------
# Streaming over a dataset
# ---------------------------------------------------------------------------------------
def _rows(data) -> tuple[Iterator, int | None]:
    """Rows of ``data`` one at a time, in the fastest form available, and their number."""
    import datasets  # imported here: the rest of the module works on plain rows

    if isinstance(data, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        raise TypeError(f"pick a split first, e.g. data['train'] (splits: {list(data)})")
    if isinstance(data, datasets.Dataset):
        # One-row Arrow tables: zero-copy slices of the (often memory-mapped) table, so
        # nothing is converted to Python lists and memory does not grow with the dataset.
        columns = [c for c in _COLUMNS if c in data.column_names]
        arrow = data.with_format("arrow", columns=columns)
        return arrow.iter(batch_size=1), len(data)
    if isinstance(data, datasets.IterableDataset):
        try:  # Arrow batches as they stream in
            return iter(data.with_format("arrow").iter(batch_size=1)), None
        except (AttributeError, ValueError):  # a datasets version without Arrow streaming
            return iter(data), None
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return ((data, i) for i in range(data.num_rows)), data.num_rows
    total = len(data) if hasattr(data, "__len__") else None
    return iter(data), total


def iter_utterances(
    data,
    *,
    smooth: bool = True,
    window: int | None = None,
    full: bool = False,
    skip_unknown: bool = True,
    min_frames: int = 1,
    progress: bool = True,
    totals: ExtractionTotals | None = None,
) -> Iterator[UtteranceArrays]:
    """Stream the utterances of a dataset, one segment in memory at a time.

    ``data`` is a ``datasets.Dataset`` (read as Arrow, the fast path), an
    ``IterableDataset`` (e.g. ``streaming=True``), a ``pyarrow.Table``, or any iterable of
    rows that :func:`segment_utterances` accepts. Utterances come in dataset order, and in
    conversation order inside a segment; those with fewer than ``min_frames`` aligned frames
    are skipped. With ``window`` (e.g. ``schema.WINDOW_FRAMES``) each utterance is padded or
    cut to that many frames (:func:`window_utterance`, after smoothing). ``totals``, if
    given, is updated in place with counts over all segments. ``progress`` shows a tqdm bar
    over segments.
    """
    from tqdm.auto import tqdm

    rows, total = _rows(data)
    for row in tqdm(rows, total=total, unit="segment", disable=not progress):
        segment = segment_utterances(row, smooth=smooth, full=full, skip_unknown=skip_unknown)
        if totals is not None:
            totals.add_segment(segment.stats)
        for utt in segment.utterances:
            if utt.n_frames < min_frames:
                if totals is not None:
                    totals.skipped_utterances += 1
                continue
            if window is not None:
                utt = window_utterance(utt, window)
            if totals is not None:
                totals.utterances += 1
                totals.frames += utt.n_frames
                totals.frames_cut += utt.n_cut
            yield utt


def segment_rows(data) -> tuple[Iterator, int | None]:
    """A dataset's rows one at a time in the fastest form, and how many there are.

    A ``datasets.Dataset`` gives one-row Arrow tables (zero-copy, memory flat); an
    ``IterableDataset`` streams; a list gives its rows. Every form is accepted by
    :func:`segment_utterances` and :func:`conversation_of`.
    """
    return _rows(data)


def row_value(row, name: str, default=None):
    """One column of one row (dict, one-row Arrow table or ``(table, i)``) as a Python
    value; ``default`` when the row has no such column or the value is null.

    Rows streamed by :func:`segment_rows` carry the optional ``channel_id`` and ``title``
    columns when the dataset has them.
    """
    value = _py(_Row(row).get(name))
    return default if value is _MISSING or value is None else value


def conversation_of(row) -> dict | None:
    """The ``conversation`` column of one row (dict, one-row Arrow table or ``(table, i)``)
    as Python lists, or None when the row has none."""
    return _py(_Row(row).get(schema.CONVERSATION))
