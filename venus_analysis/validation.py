"""Check VENUS rows against the data contract, and drop what is broken with a receipt.

``validate_row`` lists every :class:`Problem` of one row; each names the row, the field,
the utterance when there is one, and what was found versus what was expected.
``validate`` runs it over a ``datasets`` Dataset / IterableDataset / DatasetDict or a list
of rows and returns a :class:`ValidationReport`.

A caller then chooses to fail (:class:`VenusValidationError`) or to skip: ``clean_row``
removes what a problem spoils and says what it removed in a :class:`SkipRecord`, which a
:class:`SkipReport` adds up. Each problem has a *scope* that decides what is removed:

- ``"row"``: the row cannot be trusted as a whole (a missing column, parallel lists of
  different lengths, an empty conversation, two feature layouts in one track, ...); the
  row is dropped.
- ``"utterance"``: one utterance is wrong (bad times, a word outside it, NaN in its
  frames, a wrong feature length, ...); its conversation entry and its frames in both
  tracks are dropped.
- ``"frames"``: frame entries that belong to no utterance (orphans, unreadable
  ``utt_id``); those entries are dropped.

Tolerances (module constants):

- ``WORD_TOLERANCE_S`` = 0.05 s: a word may start or end this far outside its utterance
  (WhisperX word times and utterance times are rounded separately).
- ``FRAME_TOLERANCE_S`` = 1.0 s: a frame of an utterance may lie this far outside the
  utterance's [start, end]. Frames come from active-speaker detection, not from the ASR
  times, and the released MARS code itself picks the stored frames *closest* to the start
  and end, so small overhangs are normal; a frame seconds away means a wrong ``utt_id``.

Numeric checks on frames are vectorised with numpy (via ``frames.read_track``); Python
loops run over utterances and words, never over frames.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import islice
from operator import itemgetter

import numpy as np
import pyarrow as pa

from venus_analysis import schema
from venus_analysis.frames import read_track

WORD_TOLERANCE_S = 0.05
FRAME_TOLERANCE_S = 1.0

CONVERSATION_FIELDS = ("utterance_id", "speaker", "text", "start_time", "end_time", "words")
WORD_FIELDS = ("word", "start_time", "end_time")
TRACK_FIELDS = ("utt_id", "frame", "features")
TRACKS = (schema.FACE, schema.BODY)
# Accepted feature lengths per track, with the layout each length means.
FEATURE_LENGTHS = {
    schema.FACE: {schema.FACE_LAYOUT.length: "FLAME", schema.FACE_LAYOUT_LEGACY.length: "legacy"},
    schema.BODY: {schema.BODY_DIM: "SMPL-X"},
}
_LIST_TYPES = (list, tuple, np.ndarray, pa.Array)
_MAX_LISTED = 5  # how many ids/positions a message lists before "..."


# ---------------------------------------------------------------------------------------
# Problems and reports
# ---------------------------------------------------------------------------------------
@dataclass
class Problem:
    """One thing wrong with one row: where it is, what was found and what was expected.

    ``kind`` is a short stable code (``feature_length``, ``non_finite``, ...); ``scope``
    says what skip mode removes for it: ``"row"``, ``"utterance"`` or ``"frames"``.
    """

    row_index: int | None
    video_id: str | None
    segment_id: int | None
    field: str
    message: str
    utterance_id: int | str | None = None
    kind: str = "invalid"
    scope: str = "row"
    split: str | None = None

    def location(self) -> str:
        """``"train row 3 (video abcDEF12345, segment 0)"``: which row this is about."""
        row = "row ?" if self.row_index is None else f"row {self.row_index}"
        if self.split:
            row = f"{self.split} {row}"
        return f"{row} (video {self.video_id}, segment {self.segment_id})"

    def __str__(self) -> str:
        parts = [self.location(), self.field]
        if self.utterance_id is not None:
            parts.append(f"utterance {self.utterance_id}")
        return ", ".join(parts) + f": {self.message}"

    def to_dict(self) -> dict:
        """The problem as a plain dict (JSON-ready)."""
        return asdict(self)


@dataclass
class ValidationReport:
    """The problems found in a dataset, with row counts and a readable summary."""

    problems: list[Problem] = field(default_factory=list)
    n_rows: int = 0
    n_bad_rows: int = 0

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def counts_by_kind(self) -> dict[str, int]:
        """Number of problems of each kind, most frequent first."""
        return dict(Counter(p.kind for p in self.problems).most_common())

    def format(self, max_lines: int = 20) -> str:
        """A human report: totals, counts by kind and the first ``max_lines`` problems."""
        if self.ok:
            return f"VENUS validation: {self.n_rows} rows checked, no problems."
        kinds = ", ".join(f"{k} {n}" for k, n in self.counts_by_kind().items())
        lines = [
            f"VENUS validation: {len(self.problems)} problems in {self.n_bad_rows} of "
            f"{self.n_rows} rows ({kinds}).",
        ]
        lines += [f"  - {p}" for p in self.problems[:max_lines]]
        if len(self.problems) > max_lines:
            lines.append(f"  ... and {len(self.problems) - max_lines} more")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The report as a plain dict (JSON-ready)."""
        return {
            "ok": self.ok,
            "n_rows": self.n_rows,
            "n_bad_rows": self.n_bad_rows,
            "counts_by_kind": self.counts_by_kind(),
            "problems": [p.to_dict() for p in self.problems],
        }

    def raise_if_bad(self) -> None:
        """Raise :class:`VenusValidationError` if any problem was found."""
        if not self.ok:
            raise VenusValidationError(self.problems)

    def __str__(self) -> str:
        return self.format()


class VenusValidationError(ValueError):
    """VENUS data broke the contract; ``problems`` holds every :class:`Problem` found."""

    def __init__(self, problems: list[Problem], max_listed: int = 5):
        self.problems = list(problems)
        kinds = ", ".join(f"{k} {n}" for k, n in Counter(p.kind for p in self.problems).items())
        lines = [f"{len(self.problems)} problem(s) in the VENUS data ({kinds}):"]
        lines += [f"  - {p}" for p in self.problems[:max_listed]]
        if len(self.problems) > max_listed:
            lines.append(f"  ... and {len(self.problems) - max_listed} more")
        lines.append(
            "Pass on_error='skip' to drop the broken utterances/rows (every removal is "
            "counted in a SkipReport) or on_error='ignore' to load without checking."
        )
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return (type(self), (self.problems,))


@dataclass
class SkipRecord:
    """What skip mode removed from one row, and why (problem kinds)."""

    row_index: int | None = None
    video_id: str | None = None
    segment_id: int | None = None
    split: str | None = None
    row_dropped: bool = False
    reasons: list[str] = field(default_factory=list)  # kinds that dropped the whole row
    utterances: dict = field(default_factory=dict)  # dropped utterance id -> kind
    frames: dict = field(default_factory=dict)  # kind -> number of frame entries dropped

    @property
    def changed(self) -> bool:
        """True when anything was removed."""
        return self.row_dropped or bool(self.utterances) or bool(self.frames)

    def __str__(self) -> str:
        where = Problem(self.row_index, self.video_id, self.segment_id, "", "", split=self.split)
        if self.row_dropped:
            return f"{where.location()}: dropped the row ({', '.join(self.reasons)})"
        parts = []
        if self.utterances:
            listed = ", ".join(f"{u} ({k})" for u, k in self.utterances.items())
            parts.append(f"dropped utterances {listed}")
        if self.frames:
            listed = ", ".join(f"{k} {n}" for k, n in self.frames.items())
            parts.append(f"dropped {sum(self.frames.values())} frame entries ({listed})")
        return f"{where.location()}: " + ("; ".join(parts) or "nothing removed")


@dataclass
class SkipReport:
    """Everything skip mode removed, row by row, with totals by problem kind.

    Records are keyed by (split, row index): iterating a lazily validated (streaming)
    dataset twice replaces a row's record instead of counting it twice.
    """

    n_rows: int = 0
    _records: dict = field(default_factory=dict, repr=False)
    _problems: dict = field(default_factory=dict, repr=False)
    _seen: set = field(default_factory=set, repr=False)

    def add(self, record: SkipRecord, problems: list[Problem] = ()) -> None:
        """Count one checked row; keep its record and problems if anything was wrong."""
        key = (record.split, record.row_index)
        if key not in self._seen or record.row_index is None:
            self._seen.add(key)
            self.n_rows += 1
        if record.changed or problems:
            self._records[key] = record
            self._problems[key] = list(problems)

    @property
    def records(self) -> list[SkipRecord]:
        """One record per row that lost something."""
        return [r for r in self._records.values() if r.changed]

    @property
    def problems(self) -> list[Problem]:
        """Every problem found in the checked rows."""
        return [p for ps in self._problems.values() for p in ps]

    def rows_by_kind(self) -> dict[str, int]:
        """Dropped rows per kind (the first reason of each row)."""
        return dict(Counter(r.reasons[0] for r in self.records if r.row_dropped))

    def utterances_by_kind(self) -> dict[str, int]:
        """Dropped utterances per kind."""
        return dict(Counter(k for r in self.records for k in r.utterances.values()))

    def frames_by_kind(self) -> dict[str, int]:
        """Dropped frame entries per kind (both tracks together)."""
        total: Counter = Counter()
        for r in self.records:
            total.update(r.frames)
        return dict(total)

    @property
    def n_rows_dropped(self) -> int:
        """Number of rows removed."""
        return sum(r.row_dropped for r in self.records)

    @property
    def n_utterances_dropped(self) -> int:
        """Number of utterances removed (not counting those inside dropped rows)."""
        return sum(len(r.utterances) for r in self.records)

    @property
    def n_frames_dropped(self) -> int:
        """Number of frame entries removed (not counting those inside dropped rows)."""
        return sum(self.frames_by_kind().values())

    def summary(self) -> str:
        """One line: how many rows, utterances and frame entries were skipped."""
        return (
            f"skipped {self.n_rows_dropped} of {self.n_rows} rows, "
            f"{self.n_utterances_dropped} utterances and {self.n_frames_dropped} frame entries"
        )

    def format(self, max_lines: int = 20) -> str:
        """A human report: totals by kind and the first ``max_lines`` row records."""
        lines = [f"VENUS skip report: {self.summary()}."]
        for label, counts in (
            ("rows", self.rows_by_kind()),
            ("utterances", self.utterances_by_kind()),
            ("frames", self.frames_by_kind()),
        ):
            if counts:
                lines.append(f"  {label}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
        records = self.records
        lines += [f"  - {r}" for r in records[:max_lines]]
        if len(records) > max_lines:
            lines.append(f"  ... and {len(records) - max_lines} more rows")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The report as a plain dict (JSON-ready)."""
        return {
            "n_rows": self.n_rows,
            "n_rows_dropped": self.n_rows_dropped,
            "n_utterances_dropped": self.n_utterances_dropped,
            "n_frames_dropped": self.n_frames_dropped,
            "rows_by_kind": self.rows_by_kind(),
            "utterances_by_kind": self.utterances_by_kind(),
            "frames_by_kind": self.frames_by_kind(),
            "records": [asdict(r) for r in self.records],
            "problems": [p.to_dict() for p in self.problems],
        }

    def __str__(self) -> str:
        return self.format()


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------
def _py(value):
    """A pyarrow scalar as a Python value (anything else unchanged)."""
    return value.as_py() if isinstance(value, pa.Scalar) and not isinstance(value, pa.StructScalar) else value


_INT64 = np.iinfo(np.int64)


def _as_int(value) -> int | None:
    """An id as int: ints, numpy ints and integer strings such as ``"12"``; else None.

    Values outside int64 count as not an id (the contract stores ids as int64).
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)
    if isinstance(value, (int, np.integer)) and _INT64.min <= value <= _INT64.max:
        return int(value)
    return None


def utterance_key(raw) -> int | str:
    """How a conversation ``utterance_id`` is named in problems: the int, or the raw text."""
    parsed = _as_int(raw)
    if parsed is not None:
        return parsed
    return raw if isinstance(raw, str) else repr(raw)


def _type_name(value) -> str:
    return "None" if value is None else f"a {type(value).__name__}"


def _short(items, limit: int = _MAX_LISTED) -> str:
    items = list(items)
    text = ", ".join(str(i) for i in items[:limit])
    return f"[{text}{', ...' if len(items) > limit else ''}]"


def _more(count: int, noun: str = "entries") -> str:
    return "" if count <= 1 else f" ({count} {noun} in all)"


def _floats(values) -> tuple[np.ndarray, np.ndarray]:
    """Numbers to float64 (NaN where an entry is not a number) and a mask of non-numbers."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):  # ragged nesting
        arr = None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "iuf":
        return arr.astype(np.float64), np.zeros(len(arr), dtype=bool)
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            out[i] = float(v)
        else:
            bad[i] = True
    return out, bad


def _groups(mask: np.ndarray, ids: np.ndarray) -> list[tuple[int, int, int]]:
    """For the entries in ``mask``: (utterance id, first position, count) per utterance."""
    pos = np.flatnonzero(mask)
    if len(pos) == 0:
        return []
    uids, first, counts = np.unique(ids[pos], return_index=True, return_counts=True)
    return [(int(u), int(pos[f]), int(c)) for u, f, c in zip(uids, first, counts)]


def _raw_entry(track, name: str, pos: int):
    """The stored value of one track entry (for messages)."""
    if isinstance(track, pa.StructScalar):
        return track[name].values[pos].as_py()
    value = track[name][pos]
    return value.as_py() if isinstance(value, pa.Scalar) else value


class _Collector:
    """Builds the problems of one row with its context filled in."""

    def __init__(self, row_index, video_id, segment_id):
        self.context = (row_index, video_id, segment_id)
        self.problems: list[Problem] = []

    def add(self, kind: str, field: str, message: str, utterance_id=None, scope: str | None = None):
        """Record a problem; its scope is "utterance" when it names one, else "row"."""
        if scope is None:
            scope = "row" if utterance_id is None else "utterance"
        self.problems.append(
            Problem(*self.context, field, message, utterance_id=utterance_id, kind=kind, scope=scope)
        )


# ---------------------------------------------------------------------------------------
# Row checks
# ---------------------------------------------------------------------------------------
@dataclass
class _ConversationInfo:
    """What the track checks need from the conversation."""

    ids: set  # parsed integer ids
    timed_ids: np.ndarray  # unique ids whose start/end are valid ...
    starts: np.ndarray  # ... and their times
    ends: np.ndarray


def validate_row(row: dict, row_index: int | None = None) -> list[Problem]:
    """Every problem of one VENUS row (an empty list when the row keeps the contract).

    ``row`` is a dict of columns as ``datasets`` returns it (nested columns as dicts of
    lists); the feature tracks may also be ``pyarrow`` struct scalars (the fast path used
    by :func:`validate`). Ids may be ints or integer strings (the loader casts them).
    """
    if not isinstance(row, Mapping):
        out = _Collector(row_index, None, None)
        out.add("wrong_type", "row", f"is {_type_name(row)}; expected a dict of columns")
        return out.problems
    video_id, segment_id = _py(row.get("video_id")), _py(row.get("segment_id"))
    out = _Collector(row_index, video_id, segment_id)
    for column in schema.REQUIRED_COLUMNS:
        if column not in row:
            out.add("missing_column", column,
                    f"the row has no column {column!r}; expected {schema.REQUIRED_COLUMNS}, found {sorted(row)}")
    _check_header(row, out)
    conv = _check_conversation(row[schema.CONVERSATION], out) if schema.CONVERSATION in row else None
    harmful = _check_harmful(row[schema.HARMFUL], conv, out) if schema.HARMFUL in row else set()
    for name in TRACKS:
        if name in row:
            _check_track(name, row[name], conv, harmful, out)
    return out.problems


def _check_header(row, out: _Collector) -> None:
    if "video_id" in row:
        video_id = _py(row["video_id"])
        if not isinstance(video_id, str) or not video_id:
            out.add("wrong_type", "video_id",
                    f"is {video_id!r}; expected the YouTube video id as a non-empty string")
    if "segment_id" in row and _as_int(_py(row["segment_id"])) is None:
        out.add("wrong_type", "segment_id",
                f"is {_py(row['segment_id'])!r}; expected an integer segment index")
    fps = _py(row.get("fps"))
    is_number = isinstance(fps, (int, float, np.number)) and not isinstance(fps, bool)
    if fps is not None and not (is_number and fps == schema.FPS):
        out.add("unexpected_fps", "fps",
                f"is {fps!r}; expected {schema.FPS} (every VENUS feature track is sampled at {schema.FPS} fps)")


def _check_conversation(conv, out: _Collector) -> _ConversationInfo | None:
    """Row-level shape checks, then per-utterance checks. None if the shape is broken."""
    name = schema.CONVERSATION
    if isinstance(conv, pa.Scalar):
        conv = conv.as_py()
    if not isinstance(conv, Mapping):
        hint = ""
        if isinstance(conv, list) and conv and isinstance(conv[0], Mapping):
            hint = " (this is a list of records; VENUS stores parallel lists)"
        out.add("wrong_type", name, f"is {_type_name(conv)}{hint}; expected a dict of parallel "
                f"lists ({', '.join(CONVERSATION_FIELDS)})")
        return None
    if not _check_parallel_lists(conv, name, CONVERSATION_FIELDS, "conversation", "utterance", "ragged_conversation", out):
        return None
    if len(conv["utterance_id"]) == 0:
        out.add("empty_conversation", name, "has no utterances; expected at least one")
        return None

    raw_ids = list(conv["utterance_id"])
    keys = [utterance_key(r) for r in raw_ids]
    ids = [_as_int(r) for r in raw_ids]
    for pos, (raw, uid) in enumerate(zip(raw_ids, ids)):
        if uid is None:
            out.add("unparseable_utt_id", f"{name}.utterance_id",
                    f"entry {pos} is {raw!r}; expected an integer utterance id", keys[pos])
    positions: dict[int, list[int]] = {}
    for pos, uid in enumerate(ids):
        if uid is not None:
            positions.setdefault(uid, []).append(pos)
    for uid, where in positions.items():
        if len(where) > 1:
            out.add("duplicate_utterance_id", f"{name}.utterance_id",
                    f"appears {len(where)} times (entries {where}); expected unique ids", uid)
    for pos, speaker in enumerate(conv["speaker"]):
        if _as_int(speaker) not in (0, 1) or isinstance(speaker, str):
            out.add("speaker_not_binary", f"{name}.speaker",
                    f"speaker is {speaker!r}; expected 0 or 1 (two speakers)", keys[pos])
    for pos, text in enumerate(conv["text"]):
        if not isinstance(text, str):
            out.add("wrong_type", f"{name}.text", f"is {_type_name(text)}; expected a string", keys[pos])

    starts, ends, valid = _check_times(conv["start_time"], conv["end_time"], keys, name, out)
    for pos, words in enumerate(conv["words"]):
        interval = (starts[pos], ends[pos]) if valid[pos] else None
        _check_words(words, keys[pos], interval, out)

    unique = np.array([len(positions.get(i, ())) == 1 for i in ids]) if ids else np.zeros(0, bool)
    timed = valid & unique
    timed_ids = np.array([i if i is not None else -1 for i in ids], dtype=np.int64)[timed]
    order = np.argsort(timed_ids)
    return _ConversationInfo(
        ids=set(positions),
        timed_ids=timed_ids[order],
        starts=starts[timed][order],
        ends=ends[timed][order],
    )


_TIME_CHECKS = [  # (kind, field, message template); s/e: the times as floats, rs/re: as stored
    ("wrong_type", "start_time", "start_time is {rs!r}; expected a number of seconds"),
    ("wrong_type", "end_time", "end_time is {re!r}; expected a number of seconds"),
    ("non_finite", "start_time", "start_time is {s}; expected a finite number of seconds"),
    ("non_finite", "end_time", "end_time is {e}; expected a finite number of seconds"),
    ("negative_time", "start_time", "starts at {s:.3f} s; expected >= 0 (seconds from the segment start)"),
    ("negative_time", "end_time", "ends at {e:.3f} s; expected >= 0 (seconds from the segment start)"),
    ("end_before_start", "end_time", "ends at {e:.3f} s, before its start {s:.3f} s; expected end >= start"),
]


def _check_parallel_lists(value, name: str, fields, what: str, entry: str, ragged_kind: str, out) -> bool:
    """Check a dict of parallel lists: every field present, each a list, all one length.

    Reports what is missing, mistyped or ragged (as ``ragged_kind``) and returns False then.
    """
    ok = True
    for key in fields:
        if key not in value:
            out.add("missing_field", f"{name}.{key}", f"is missing; the {what} has {sorted(value)}, expected {list(fields)}")
            ok = False
        elif not isinstance(value[key], _LIST_TYPES):
            out.add("wrong_type", f"{name}.{key}", f"is {_type_name(value[key])}; expected a list with one entry per {entry}")
            ok = False
    if not ok:
        return False
    lengths = {key: len(value[key]) for key in fields}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k} {n}" for k, n in lengths.items())
        out.add(ragged_kind, name, f"parallel lists have different lengths ({listed}); expected one entry per {entry} in each")
        return False
    return True


def _check_times(start_values, end_values, keys, prefix: str, out: _Collector, utterance=None):
    """Start/end checks for parallel time lists (utterances or words).

    Without ``utterance`` every entry is an utterance named by ``keys``, one problem each;
    with it the entries are that utterance's words, one problem per kind (the first word,
    and a count). Returns (starts, ends, valid mask).
    """
    starts, bad_s = _floats(start_values)
    ends, bad_e = _floats(end_values)
    fin_s, fin_e = np.isfinite(starts), np.isfinite(ends)
    masks = [
        bad_s, bad_e, ~bad_s & ~fin_s, ~bad_e & ~fin_e,
        fin_s & (starts < 0), fin_e & (ends < 0) & ~(starts < 0), fin_s & fin_e & (ends < starts),
    ]  # fmt: skip
    for (kind, sub, template), mask in zip(_TIME_CHECKS, masks):
        hits = np.flatnonzero(mask)
        for i in hits if utterance is None else hits[:1]:
            message = template.format(s=starts[i], e=ends[i], rs=start_values[i], re=end_values[i])
            if utterance is None:
                out.add(kind, f"{prefix}.{sub}", message, keys[i])
            else:
                message = f"word {i} ({keys[i]!r}) {message}{_more(len(hits), 'words')}"
                out.add(kind, f"{prefix}.{sub}", message, utterance)
    valid = fin_s & fin_e & (starts >= 0) & (ends >= starts)
    return starts, ends, valid


def _check_words(words, key, interval, out: _Collector) -> None:
    """Checks of one utterance's word list (utterance scope)."""
    name = f"{schema.CONVERSATION}.words"
    if not isinstance(words, Mapping):
        out.add("wrong_type", name,
                f"is {_type_name(words)}; expected a dict with lists {list(WORD_FIELDS)}", key)
        return
    for sub in WORD_FIELDS:
        if sub not in words:
            out.add("missing_field", f"{name}.{sub}", f"is missing; expected {list(WORD_FIELDS)}", key)
            return
        if not isinstance(words[sub], _LIST_TYPES):
            out.add("wrong_type", f"{name}.{sub}", f"is {_type_name(words[sub])}; expected a list", key)
            return
    lengths = {sub: len(words[sub]) for sub in WORD_FIELDS}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k} {n}" for k, n in lengths.items())
        out.add("ragged_words", name,
                f"parallel lists have different lengths ({listed}); expected one entry per word", key)
        return
    texts = list(words["word"])
    not_str = [i for i, w in enumerate(texts) if not isinstance(w, str)]
    if not_str:
        out.add("wrong_type", f"{name}.word",
                f"word {not_str[0]} is {_type_name(texts[not_str[0]])}; expected a string"
                f"{_more(len(not_str), 'words')}", key)
    starts, ends, valid = _check_times(words["start_time"], words["end_time"], texts, name, out, utterance=key)
    if len(starts) > 1:
        order_bad = np.flatnonzero(np.diff(starts) < 0)
        if len(order_bad):
            i = order_bad[0] + 1
            out.add("words_unsorted", f"{name}.start_time",
                    f"word {i} ({texts[i]!r}) starts at {starts[i]:.3f} s, before word {i - 1} at "
                    f"{starts[i - 1]:.3f} s; expected words in time order", key)
    if interval is not None:
        lo, hi = interval[0] - WORD_TOLERANCE_S, interval[1] + WORD_TOLERANCE_S
        outside = np.flatnonzero(valid & ((starts < lo) | (ends > hi)))
        if len(outside):
            i = outside[0]
            out.add("word_outside_utterance", name,
                    f"word {i} ({texts[i]!r}) spans {starts[i]:.3f}-{ends[i]:.3f} s; expected inside "
                    f"the utterance's {interval[0]:.3f}-{interval[1]:.3f} s (tolerance {WORD_TOLERANCE_S} s)"
                    f"{_more(len(outside), 'words')}", key)


def _check_harmful(value, conv: _ConversationInfo | None, out: _Collector) -> set[int]:
    """harmful_utterance_id: a list of ints (None counts as empty), none left in the conversation."""
    name = schema.HARMFUL
    value = _py(value)
    if value is None:
        return set()
    if not isinstance(value, _LIST_TYPES):
        out.add("wrong_type", name, f"is {_type_name(value)}; expected a list of utterance ids")
        return set()
    harmful = set()
    for pos, raw in enumerate(value):
        uid = _as_int(raw)
        if uid is None:
            out.add("unparseable_utt_id", name, f"entry {pos} is {raw!r}; expected an integer utterance id")
        else:
            harmful.add(uid)
    if conv is not None:
        for uid in sorted(harmful & conv.ids):
            out.add("harmful_still_present", f"{schema.CONVERSATION}.utterance_id",
                    f"is listed in {name}; expected harmful utterances removed from the conversation", uid)
    return harmful


def _check_track_shape(name: str, track, out: _Collector) -> bool:
    """Container checks of a feature track; False when it cannot be read further."""
    if isinstance(track, pa.StructScalar):
        if not track.is_valid:
            out.add("wrong_type", name, "is null; expected a dict of lists (utt_id, frame, features)")
            return False
        present = [f.name for f in track.type]
        missing = [k for k in TRACK_FIELDS if k not in present]
        for key in missing:
            out.add("missing_field", f"{name}.{key}",
                    f"is missing; the track has {present}, expected {list(TRACK_FIELDS)}")
        if missing:
            return False
        feats = track.type.field("features").type
        leaf = feats.value_type.value_type if pa.types.is_list(feats) and pa.types.is_list(feats.value_type) else None
        if leaf is None or not (pa.types.is_floating(leaf) or pa.types.is_integer(leaf) or pa.types.is_null(leaf)):
            out.add("wrong_type", f"{name}.features", f"has type {feats}; expected a list of floats per frame")
            return False
        return True
    track = _py(track)
    if not isinstance(track, Mapping):
        out.add("wrong_type", name, f"is {_type_name(track)}; expected a dict of lists (utt_id, frame, features)")
        return False
    if not _check_parallel_lists(track, name, TRACK_FIELDS, "track", "frame", "ragged_track", out):
        return False
    feats = track["features"]
    if isinstance(feats, list):  # look at one entry only: O(1), catches strings for floats
        first = next((f for f in feats if f is not None), None)
        if first is not None:
            inner = first[0] if isinstance(first, (list, tuple)) and len(first) else 0.0
            if not isinstance(first, (list, tuple, np.ndarray)) or isinstance(inner, (str, bytes, bool)):
                shown = inner if isinstance(first, (list, tuple)) else first
                out.add("wrong_type", f"{name}.features",
                        f"entries hold {_type_name(shown)} ({str(shown)[:40]!r}); expected a list of floats per frame")
                return False
    return True


def _entry_finite(track, frames) -> np.ndarray:
    """Per frame entry: True when all its floats are finite (ragged tracks included)."""
    if frames.features is not None:
        return np.isfinite(frames.features).all(axis=1) if len(frames) else np.ones(0, bool)
    if isinstance(track, pa.StructScalar):
        feats = track["features"].values
    else:
        feats = track["features"]
        if not isinstance(feats, pa.Array):
            try:
                feats = pa.array(feats, type=pa.list_(pa.float32()))
            except (pa.ArrowException, TypeError, ValueError):
                return np.ones(len(frames), bool)  # unreadable entries are reported already
    offsets = feats.offsets.to_numpy()
    offsets = offsets - offsets[0]
    flat = feats.flatten().cast(pa.float32()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(flat))])
    return (bad[offsets[1:]] - bad[offsets[:-1]]) == 0


def _expected_lengths(name: str) -> str:
    return " or ".join(f"{n} ({label})" for n, label in FEATURE_LENGTHS[name].items())


def _check_track(name: str, track, conv: _ConversationInfo | None, harmful: set[int], out: _Collector) -> None:
    """Checks of one feature track, vectorised over frames; one problem per utterance and kind."""
    if not _check_track_shape(name, track, out):
        return
    try:
        frames = read_track(track)
    except (KeyError, ValueError, TypeError, pa.ArrowException) as err:
        out.add("wrong_type", name,
                f"cannot be read as a feature track ({err}); expected lists utt_id, frame, features")
        return
    n = len(frames)
    ids, index = frames.utt_ids, frames.frames
    bad = {key: np.zeros(n, dtype=bool) for key in TRACK_FIELDS}
    for issue in frames.issues:
        bad[issue.field][issue.position] = True
    utt_ok = ~bad["utt_id"]

    if bad["utt_id"].any():
        pos = int(np.flatnonzero(bad["utt_id"])[0])
        out.add("unparseable_utt_id", f"{name}.utt_id",
                f"frame entry {pos} has utt_id {_raw_entry(track, 'utt_id', pos)!r}"
                f"{_more(int(bad['utt_id'].sum()))}; expected an integer utterance id", scope="frames")
    for uid, pos, count in _groups(bad["frame"] & utt_ok, ids):
        out.add("unparseable_frame", f"{name}.frame",
                f"frame entry {pos} is {_raw_entry(track, 'frame', pos)!r}{_more(count)}; "
                "expected '<index>_...' with an integer frame index", uid)
    for uid, pos, count in _groups(bad["features"] & utt_ok, ids):
        out.add("missing_features", f"{name}.features",
                f"frame entry {pos} has no features (null or not numbers){_more(count)}; "
                "expected a list of floats", uid)

    has_feats = ~bad["features"]
    accepted = list(FEATURE_LENGTHS[name])
    bad_length = has_feats & ~np.isin(frames.lengths, accepted)
    if n and bad_length.all() and len(np.unique(frames.lengths)) == 1:
        out.add("feature_length", f"{name}.features",
                f"every frame entry ({n}) has {frames.lengths[0]} floats; expected {_expected_lengths(name)}")
        return
    for uid, pos, count in _groups(bad_length & utt_ok, ids):
        out.add("feature_length", f"{name}.features",
                f"frame entry {pos} has {frames.lengths[pos]} floats{_more(count)}; "
                f"expected {_expected_lengths(name)}", uid)
    used, counts = np.unique(frames.lengths[has_feats & ~bad_length], return_counts=True)
    if len(used) > 1:
        listed = " and ".join(f"{c} entries with {u}" for u, c in zip(used, counts))
        out.add("mixed_feature_lengths", f"{name}.features",
                f"mixes layouts ({listed}); expected one layout per track")

    finite = _entry_finite(track, frames)
    for uid, pos, count in _groups(~finite & has_feats & utt_ok, ids):
        out.add("non_finite", f"{name}.features",
                f"frame entry {pos} holds NaN or inf{_more(count)}; expected finite floats", uid)

    frame_ok = utt_ok & ~bad["frame"]
    for uid, pos, count in _groups(frame_ok & (index < 0), ids):
        out.add("negative_time", f"{name}.frame",
                f"frame entry {pos} has frame index {index[pos]}{_more(count)}; expected >= 0", uid)
    _check_duplicate_frames(name, ids, index, frame_ok, out)

    if conv is None:
        return
    known = np.array(sorted(conv.ids | harmful), dtype=np.int64)
    orphan = utt_ok & ~np.isin(ids, known)
    if orphan.any():
        out.add("orphan_frames", f"{name}.utt_id",
                f"{int(orphan.sum())} frame entries belong to utterance ids {_short(np.unique(ids[orphan]))}; "
                f"expected ids from the conversation or {schema.HARMFUL}", scope="frames")
    _check_frame_times(name, ids, index, frame_ok, conv, out)


def _check_duplicate_frames(name, ids, index, ok, out: _Collector) -> None:
    """The same frame index twice within one utterance."""
    pos = np.flatnonzero(ok)
    order = pos[np.lexsort((index[pos], ids[pos]))]
    repeat = (ids[order][1:] == ids[order][:-1]) & (index[order][1:] == index[order][:-1])
    mask = np.zeros(len(ids), dtype=bool)
    mask[order[1:][repeat]] = True
    for uid, pos, count in _groups(mask, ids):
        out.add("duplicate_frame", f"{name}.frame",
                f"frame {index[pos]} appears more than once (repeat at entry {pos}){_more(count, 'repeats')}; "
                "expected each frame once per utterance", uid)


def _check_frame_times(name, ids, index, ok, conv: _ConversationInfo, out: _Collector) -> None:
    """Frames of an utterance must lie within its [start, end] (plus FRAME_TOLERANCE_S)."""
    if len(conv.timed_ids) == 0:
        return
    at = np.clip(np.searchsorted(conv.timed_ids, ids), 0, len(conv.timed_ids) - 1)
    matched = ok & (conv.timed_ids[at] == ids)
    t = index / schema.FPS
    start, end = conv.starts[at], conv.ends[at]
    outside = matched & ((t < start - FRAME_TOLERANCE_S) | (t > end + FRAME_TOLERANCE_S))
    for uid, pos, count in _groups(outside, ids):
        out.add("frame_outside_utterance", f"{name}.frame",
                f"frame {index[pos]} ({t[pos]:.2f} s, entry {pos}){_more(count)} lies outside the "
                f"utterance's {start[pos]:.2f}-{end[pos]:.2f} s; expected within it "
                f"(tolerance {FRAME_TOLERANCE_S} s)", uid)


# ---------------------------------------------------------------------------------------
# Skip mode
# ---------------------------------------------------------------------------------------
def _take(values, keep: np.ndarray):
    """The entries of one parallel list at positions ``keep`` (same container kind)."""
    if isinstance(values, pa.Array):
        return values.take(pa.array(keep, type=pa.int64()))
    if isinstance(values, np.ndarray):
        return values[keep]
    if len(keep) == 0:
        return []
    if len(keep) == 1:
        return [values[int(keep[0])]]
    return list(itemgetter(*keep.tolist())(values))


def _take_track(track, keep: np.ndarray) -> dict:
    """A track restricted to entries ``keep``: a dict of lists (or of Arrow arrays)."""
    if isinstance(track, pa.StructScalar):
        return {key: track[key].values.take(pa.array(keep, type=pa.int64())) for key in TRACK_FIELDS}
    return {key: (_take(value, keep) if key in TRACK_FIELDS else value) for key, value in track.items()}


def clean_row(
    row: dict, problems: list[Problem], *, row_index: int | None = None, split: str | None = None
) -> tuple[dict | None, SkipRecord]:
    """Remove what ``problems`` spoil; return ``(row or None, SkipRecord)``.

    A row-scope problem drops the row. Utterance-scope problems drop that utterance's
    conversation entry and its frames in both tracks; frame-scope problems (orphan frames,
    unreadable ``utt_id``) drop those entries. A row left without utterances is dropped
    (reason ``empty_after_cleaning``). Tracks keep their input form (lists stay lists,
    Arrow struct scalars become dicts of Arrow arrays). Every removal is in the record,
    which takes the row's index and split from the problems (or from the arguments).
    """
    head = problems[0] if problems else None
    record = SkipRecord(
        row_index=head.row_index if head else row_index,
        video_id=_py(row.get("video_id")) if isinstance(row, Mapping) else None,
        segment_id=_py(row.get("segment_id")) if isinstance(row, Mapping) else None,
        split=head.split if head else split,
    )
    if not problems:
        return row, record
    row_kinds = list(dict.fromkeys(p.kind for p in problems if p.scope == "row"))
    if row_kinds:
        record.row_dropped, record.reasons = True, row_kinds
        return None, record

    bad_utts: dict = {}
    for p in problems:
        if p.scope == "utterance":
            bad_utts.setdefault(p.utterance_id, p.kind)
    conv = row[schema.CONVERSATION]
    if isinstance(conv, pa.Scalar):
        conv = conv.as_py()
    keys = [utterance_key(r) for r in conv["utterance_id"]]
    keep_conv = np.array([k not in bad_utts for k in keys], dtype=bool)
    for key, keep in zip(keys, keep_conv):
        if not keep:
            record.utterances[key] = bad_utts[key]
    n_utt = len(keys)
    new_conv = {
        k: (_take(v, np.flatnonzero(keep_conv)) if isinstance(v, _LIST_TYPES) and len(v) == n_utt else v)
        for k, v in conv.items()
    }

    known = {_as_int(k) for k in keys} | {_as_int(h) for h in (_py(row.get(schema.HARMFUL)) or [])}
    known_ids = np.array(sorted(k for k in known if k is not None), dtype=np.int64)
    bad_int = {k: kind for k, kind in bad_utts.items() if isinstance(k, int)}
    frames_dropped: Counter = Counter()
    new_row = dict(row)
    new_row[schema.CONVERSATION] = new_conv
    for name in TRACKS:
        track = row[name]
        frames = read_track(track)
        utt_bad = np.zeros(len(frames), dtype=bool)
        utt_bad[[i.position for i in frames.issues if i.field == "utt_id"]] = True
        ids = frames.utt_ids
        drop_utt = ~utt_bad & np.isin(ids, list(bad_int))
        orphan = ~utt_bad & ~drop_utt & ~np.isin(ids, known_ids)
        frames_dropped["unparseable_utt_id"] += int(utt_bad.sum())
        frames_dropped["orphan_frames"] += int(orphan.sum())
        uids, counts = np.unique(ids[drop_utt], return_counts=True)
        for uid, count in zip(uids, counts):
            frames_dropped[bad_int[int(uid)]] += int(count)
        keep = ~(utt_bad | drop_utt | orphan)
        if not keep.all():
            new_row[name] = _take_track(track, np.flatnonzero(keep))
    record.frames = {k: n for k, n in frames_dropped.items() if n}
    if not keep_conv.any():
        record.row_dropped, record.reasons = True, ["empty_after_cleaning"]
        return None, record
    return new_row, record


# ---------------------------------------------------------------------------------------
# Whole datasets
# ---------------------------------------------------------------------------------------
_BATCH_ROWS = 16  # rows per Arrow batch when reading a memory-mapped Dataset (zero-copy)
_SMALL_COLUMNS = ("video_id", "segment_id", schema.CONVERSATION, schema.HARMFUL, "fps")


def arrow_row(table: pa.Table, i: int) -> dict:
    """Row ``i`` of an Arrow table as a dict for :func:`validate_row`.

    Small columns become Python values; the feature tracks stay ``pyarrow`` struct
    scalars (read without Python objects per frame); other columns stay Arrow scalars.
    """
    row = {}
    for name in table.column_names:
        value = table.column(name)[i]
        row[name] = value.as_py() if name in _SMALL_COLUMNS else value
    return row


def _rows_of(data):
    """The rows of a Dataset / IterableDataset (via Arrow batches) or of a list."""
    import datasets

    if isinstance(data, (list, tuple)):
        yield from data
        return
    if isinstance(data, datasets.Dataset):
        batch_size = _BATCH_ROWS
    elif isinstance(data, datasets.IterableDataset):
        batch_size = 1  # decoded, not memory-mapped: hold one row at a time
    else:
        raise TypeError(
            f"cannot read VENUS rows from {type(data).__name__}; expected a datasets Dataset, "
            "IterableDataset, DatasetDict or a list of row dicts (validate_row checks one row)"
        )
    for table in data.with_format("arrow").iter(batch_size=batch_size):
        for i in range(table.num_rows):
            yield arrow_row(table, i)


def iter_rows(data, *, progress: bool = False, max_rows: int | None = None, desc: str = "Validating"):
    """Yield ``(index, row)`` from a Dataset, IterableDataset or list of rows.

    ``datasets`` sources are read in Arrow batches (see :func:`arrow_row`), so a row's
    frames never become Python objects. ``max_rows`` stops early; ``progress`` shows a bar.
    """
    total = len(data) if hasattr(data, "__len__") and not isinstance(data, Mapping) else None
    if max_rows is not None:
        total = max_rows if total is None else min(total, max_rows)
    rows = enumerate(islice(_rows_of(data), max_rows))
    if not progress:
        yield from rows
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="row") as bar:
        for item in rows:
            yield item
            bar.update(1)


def splits_of(source) -> list[tuple[str | None, object]]:
    """``[(split name or None, data)]`` for a dict of splits or a single dataset / list."""
    import datasets

    if isinstance(source, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        return list(source.items())
    if isinstance(source, Mapping) and source and all(
        isinstance(v, (datasets.Dataset, datasets.IterableDataset, list)) for v in source.values()
    ):
        return list(source.items())
    return [(None, source)]


def row_problems(row, index: int | None, split: str | None) -> list[Problem]:
    """:func:`validate_row` with the split recorded on each problem."""
    problems = validate_row(row, index)
    for p in problems:
        p.split = split
    return problems


def validate(source, *, progress: bool = True, max_rows: int | None = None) -> ValidationReport:
    """Validate every row of ``source`` and return a :class:`ValidationReport`.

    ``source`` is a ``datasets.Dataset``, ``IterableDataset``, ``DatasetDict`` /
    ``IterableDatasetDict`` (all splits; problems carry the split name) or a list of row
    dicts. ``max_rows`` limits the rows checked per split.
    """
    report = ValidationReport()
    for split, data in splits_of(source):
        desc = f"Validating {split}" if split else "Validating"
        for index, row in iter_rows(data, progress=progress, max_rows=max_rows, desc=desc):
            problems = row_problems(row, index, split)
            report.n_rows += 1
            if problems:
                report.n_bad_rows += 1
                report.problems.extend(problems)
    return report
