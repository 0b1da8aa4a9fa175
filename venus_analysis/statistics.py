"""The paper's Table 2 quantities, measured on data, and checked against the paper itself.

``compute_stats`` streams a dataset in Arrow batches into a :class:`DatasetStats` reducer.
Everything is read from Arrow list lengths and per-utterance columns; feature vectors are
never read, and frames are counted per utterance from the ``utt_id`` lists with numpy
(no Python loop over frames).

Memory. Per-frame data is never kept. The reducer keeps

- a few per-utterance scalars (words, seconds, face and body frame counts) and one gap per
  speaker change, as float/int numpy arrays, so that medians are exact. Utterances are
  ~1/500 of frames: the real VENUS (1.1 M turns) needs ~50 MB for them;
- one talk-time share and one turn count per segment;
- the set of unique normalised words: the one quantity whose memory grows with the
  vocabulary (527,270 words in the paper, some tens of MB as Python strings).

Rules (documented because the numbers depend on them):

- sentences: an utterance's text is split at runs of ``.``, ``!`` and ``?``; every piece
  that is not blank after trimming is one sentence (so "Hi. How are you" is 2, and "..."
  is 0);
- words: the entries of the word-level ``words.word`` list (WhisperX words);
  unique words are normalised by lowercasing and deleting ASCII punctuation and whitespace
  (``don't`` and ``dont`` are the same word); empty results are dropped;
- turn-taking: utterances of a segment are ordered by start time; for each consecutive
  pair with *different* speakers, gap = next start - previous end; a negative gap is an
  overlap;
- speaker balance: per segment, speaker 0's summed utterance seconds / all utterance
  seconds;
- frames per utterance: stored ``facial_expression`` frames whose ``utt_id`` is the
  utterance's id (ids parsed as integers, so ``"7"`` and ``7`` agree); an utterance with no
  frames counts 0; frames of ids not in the conversation are counted as orphans; the body
  track is counted the same way;
- coverage: stored face frames / (utterance seconds x 25 fps), over all utterances;
- truncation: an utterance with more than ``schema.WINDOW_FRAMES`` (512) stored face frames
  is longer than the window, and its frames past 512 are cut;
- harmful share: harmful ids / (harmful ids + kept utterances).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import schema
from .frames import parse_int_array, iter_tables

# Sentence ends: a run of . ! ? ; ASCII punctuation (0x21-0x2F, 0x3A-0x40, 0x5B-0x60,
# 0x7B-0x7E) and whitespace are deleted from words. Both patterns are valid in RE2 and re.
SENTENCE_SPLIT = r"[.!?]+"
WORD_STRIP = r"[!-/:-@\[-`{-~\s]"

_ARRAYS = {"utt_words": np.int64, "utt_seconds": np.float64, "utt_sentences": np.int64,
           "utt_face_frames": np.int64, "utt_body_frames": np.int64, "gaps": np.float64,
           "segment_turns": np.int64, "speaker0_share": np.float64}  # fmt: skip


@dataclass
class DatasetStats:
    """Streaming reducer of the Table 2 quantities; feed it Arrow batches with ``add_table``.

    Per-utterance and per-segment scalars are kept as numpy chunks, one per batch, in
    ``chunks`` (exact medians; memory grows with utterances, never with frames; see
    ``values``); ``vocabulary`` grows with the vocabulary. The chunk names: ``utt_words``,
    ``utt_seconds``, ``utt_sentences``, ``utt_face_frames``, ``utt_body_frames`` (one per
    utterance), ``gaps`` (one per speaker change, seconds, negative = overlap),
    ``segment_turns`` (one per segment), ``speaker0_share`` (one per segment with speech).
    """

    segments: int = 0
    harmful: int = 0
    orphan_face_frames: int = 0  # face frames whose utt_id is not in the conversation
    vocabulary: set = field(default_factory=set)
    chunks: dict = field(default_factory=lambda: {name: [] for name in _ARRAYS})

    def values(self, name: str) -> np.ndarray:
        """All values of one per-utterance / per-segment quantity, as one numpy array."""
        return np.concatenate([np.zeros(0, _ARRAYS[name]), *self.chunks[name]])

    @property
    def turns(self) -> int:
        """Number of utterances (turns) kept in the conversations."""
        return sum(len(c) for c in self.chunks["utt_words"])

    def add_table(self, table: pa.Table) -> None:
        """Add one Arrow batch of rows (any number of segments)."""
        conv = table.column(schema.CONVERSATION).combine_chunks()
        if "null" in str(conv.type):  # Python rows whose lists were all empty: no types
            conv = conv.cast(_CONVERSATION_TYPE)
        n_rows = table.num_rows
        row = pc.list_parent_indices(conv.field("utterance_id")).to_numpy(zero_copy_only=False)
        uid = _flat(conv.field("utterance_id"), np.int64)
        speaker = _flat(conv.field("speaker"), np.int64)
        start = _flat(conv.field("start_time"), np.float64)
        seconds = _flat(conv.field("end_time"), np.float64) - start
        words = pc.list_flatten(conv.field("words"))
        word_lists = words.field("word") if len(words) else pa.array([], pa.list_(pa.string()))
        self.segments += n_rows
        self.harmful += int(pc.sum(pc.list_value_length(table.column(schema.HARMFUL).combine_chunks())).as_py() or 0)
        self.vocabulary.update(_normalised_words(pc.list_flatten(word_lists)))
        keys = row * _KEY + uid
        face, orphans = _frames_per_utterance(table.column(schema.FACE).combine_chunks(), keys)
        body, _ = _frames_per_utterance(table.column(schema.BODY).combine_chunks(), keys)
        self.orphan_face_frames += orphans
        talk = np.bincount(row, weights=seconds, minlength=n_rows)
        talk0 = np.bincount(row, weights=seconds * (speaker == 0), minlength=n_rows)
        new = {"utt_words": _lengths(word_lists), "utt_seconds": seconds,
               "utt_sentences": _sentences(pc.list_flatten(conv.field("text"))),
               "utt_face_frames": face, "utt_body_frames": body,
               "gaps": _gaps(row, speaker, start, start + seconds),
               "segment_turns": np.bincount(row, minlength=n_rows),
               "speaker0_share": talk0[talk > 0] / talk[talk > 0]}  # fmt: skip
        for name, value in new.items():
            self.chunks[name].append(value)

    def merge(self, other: "DatasetStats") -> "DatasetStats":
        """Add ``other``'s counts to this reducer (in place) and return it."""
        self.segments += other.segments
        self.harmful += other.harmful
        self.orphan_face_frames += other.orphan_face_frames
        self.vocabulary |= other.vocabulary
        for name in _ARRAYS:
            self.chunks[name] += other.chunks[name]
        return self

    def to_dict(self) -> dict:
        """The measured quantities as a flat dict of plain Python numbers."""
        v = {name: self.values(name) for name in _ARRAYS}
        frames, seconds, words, gaps = v["utt_face_frames"], v["utt_seconds"], v["utt_words"], v["gaps"]
        sentences, shares = v["utt_sentences"], v["speaker0_share"]
        total_s = float(seconds.sum())
        window = schema.WINDOW_FRAMES
        overlaps = gaps < 0
        return {
            "segments": self.segments,
            "turns": self.turns,
            "sentences": int(sentences.sum()),
            "words": int(words.sum()),
            "unique_words": len(self.vocabulary),
            "turns_per_dialogue_mean": _ratio(self.turns, self.segments),
            "turns_per_dialogue_median": _median(v["segment_turns"]),
            "sentences_per_turn_mean": _ratio(sentences.sum(), self.turns),
            "words_per_utterance_mean": _mean(words),
            "words_per_utterance_median": _median(words),
            "seconds_per_utterance_mean": _mean(seconds),
            "seconds_per_utterance_median": _median(seconds),
            "speech_hours": total_s / 3600.0,
            "speech_rate_words_per_s": _ratio(words.sum(), total_s),
            "face_frames": int(frames.sum()),
            "body_frames": int(v["utt_body_frames"].sum()),
            "orphan_face_frames": self.orphan_face_frames,
            "frames_per_utterance_mean": _mean(frames),
            "frames_per_utterance_median": _median(frames),
            "frame_coverage": _ratio(frames.sum(), total_s * schema.FPS),
            "share_utterances_over_window": _ratio((frames > window).sum(), len(frames)),
            "share_frames_cut_by_window": _ratio(np.maximum(frames - window, 0).sum(), frames.sum()),
            "speaker_changes": len(gaps),
            "gap_mean_s": _mean(gaps),
            "gap_median_s": _median(gaps),
            "overlap_share": _ratio(overlaps.sum(), len(gaps)),
            "overlap_mean_s": _mean(-gaps[overlaps]),
            "speaker0_share_mean": _mean(shares),
            "speaker0_share_std": float(shares.std()) if len(shares) else float("nan"),
            "harmful": self.harmful,
            "harmful_share": _ratio(self.harmful, self.harmful + self.turns),
        }


_CONVERSATION_TYPE = datasets.Features({schema.CONVERSATION: schema.CONVERSATION_FEATURE}).arrow_schema.field(0).type
_KEY = np.int64(1) << 32  # (row, utterance id) -> one int64 key; ids must be < 2**32


def _flat(list_array: pa.Array, dtype) -> np.ndarray:
    """Flatten an Arrow list array to a numpy array (nulls become NaN / -1)."""
    flat = pc.list_flatten(list_array)
    fill = np.nan if np.issubdtype(dtype, np.floating) else -1
    return flat.fill_null(fill).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _lengths(list_array: pa.Array) -> np.ndarray:
    """Length of each list (null lists count 0)."""
    return pc.list_value_length(list_array).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def _sentences(texts: pa.Array) -> np.ndarray:
    """Sentences per text: non-blank pieces after splitting at runs of . ! ? ."""
    pieces = pc.split_pattern_regex(texts.fill_null(""), SENTENCE_SPLIT)
    nonblank = pc.not_equal(pc.utf8_trim_whitespace(pc.list_flatten(pieces)), "")
    parent = pc.list_parent_indices(pieces).to_numpy(zero_copy_only=False)
    return np.bincount(parent, weights=nonblank.to_numpy(zero_copy_only=False), minlength=len(texts)).astype(np.int64)


def _normalised_words(words: pa.Array) -> list[str]:
    """Distinct normalised words of a batch: lowercase, ASCII punctuation deleted, non-empty."""
    norm = pc.replace_substring_regex(pc.utf8_lower(words.drop_null()), WORD_STRIP, "")
    return pc.unique(pc.filter(norm, pc.not_equal(norm, ""))).to_pylist()


def _frames_per_utterance(track: pa.StructArray, keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Stored frames per utterance (aligned with ``keys``) and the count of orphan frames."""
    ids = track.field("utt_id")
    row = pc.list_parent_indices(ids).to_numpy(zero_copy_only=False)
    utt = parse_int_array(pc.list_flatten(ids), "utt_id", [])  # unparsable ids -> -1
    found, counts = np.unique(row * _KEY + utt, return_counts=True)
    if not len(found):
        return np.zeros(len(keys), np.int64), 0
    pos = np.minimum(np.searchsorted(found, keys), len(found) - 1)
    out = np.where(found[pos] == keys, counts[pos], 0).astype(np.int64)
    return out, int(counts.sum() - out.sum())  # assumes utterance ids are unique per row


def _gaps(row: np.ndarray, speaker: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Gap (next start - previous end) at each speaker change inside a segment."""
    order = np.lexsort((start, row))
    row, speaker, start, end = row[order], speaker[order], start[order], end[order]
    change = (row[1:] == row[:-1]) & (speaker[1:] != speaker[:-1])
    return (start[1:] - end[:-1])[change]


def _ratio(num, den) -> float:
    return float(num) / float(den) if den else float("nan")


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def _is_dataset_dict(data) -> bool:
    return isinstance(data, dict) or (hasattr(data, "keys") and not hasattr(data, "column_names"))


def compute_split_stats(data, *, batch_size: int = 16, progress: bool = False) -> dict[str, DatasetStats]:
    """One :class:`DatasetStats` per split of a ``DatasetDict`` (or a dict of datasets)."""
    return {name: compute_stats(data[name], batch_size=batch_size, progress=progress) for name in data}


def compute_stats(data, *, batch_size: int = 16, progress: bool = False) -> DatasetStats:
    """Measure the Table 2 quantities of ``data`` in one streaming pass.

    ``data`` is a ``Dataset``, a streaming ``IterableDataset``, a list of row dicts, or a
    ``DatasetDict`` / dict of those (all splits combined; see ``compute_split_stats`` for
    one result per split). Batches of ``batch_size`` segments are read as Arrow tables.
    """
    if _is_dataset_dict(data):
        out = DatasetStats()
        for stats in compute_split_stats(data, batch_size=batch_size, progress=progress).values():
            out.merge(stats)
        return out
    out = DatasetStats()
    for table in iter_tables(data, batch_size=batch_size, progress=progress, desc="statistics"):
        out.add_table(table)
    return out


# ---------------------------------------------------------------------------------------
# The paper against itself (and against the data)
# ---------------------------------------------------------------------------------------
PAPER = {
    "dialogues": 89_459, "turns": 1_114_328, "sentences": 7_118_654, "unique_words": 527_270,
    "turns_per_dialogue": 21, "hours": 14_910, "words_per_utterance": 170.8,
    "seconds_per_utterance": 55.3, "frames_per_utterance": 547,
    "sentiment_neutral_pct": 63.79, "sentiment_positive_pct": 17.36, "sentiment_negative_pct": 18.85,
}  # fmt: skip


def paper_consistency(stats: DatasetStats | None = None) -> list[dict]:
    """The paper's Table 2 numbers, what its other numbers imply, and (optionally) the data.

    Each row has ``quantity``, ``paper`` (as stated), ``derived`` (computed from the paper's
    other numbers, ``None`` when there is nothing to derive), ``derived_from`` (how),
    ``measured`` (from ``stats``, ``None`` without it) and ``note``.
    """
    p = PAPER
    m = stats.to_dict() if stats is not None else {}
    speech_per_dialogue = p["turns"] * p["seconds_per_utterance"] / p["dialogues"]
    rows = [
        ("dialogues (segments)", p["dialogues"], None, "", "segments", ""),
        ("turns (utterances)", p["turns"], None, "", "turns", ""),
        ("sentences", p["sentences"], None, "", "sentences", "split at . ! ?"),
        ("unique words", p["unique_words"], None, "", "unique_words", "lowercased, punctuation stripped"),
        ("turns per dialogue", p["turns_per_dialogue"], p["turns"] / p["dialogues"], "turns / dialogues",
         "turns_per_dialogue_mean", "stated 21; the totals give 12.5"),
        ("sentences per turn", None, p["sentences"] / p["turns"], "sentences / turns", "sentences_per_turn_mean", ""),
        ("hours", p["hours"], p["dialogues"] * schema.SEGMENT_SECONDS / 3600, "dialogues x 10 min",
         "speech_hours", "measured: summed utterance seconds, not segment length"),
        ("words per utterance", p["words_per_utterance"], None, "", "words_per_utterance_mean", ""),
        ("seconds per utterance", p["seconds_per_utterance"], None, "", "seconds_per_utterance_mean", ""),
        ("words per second", None, p["words_per_utterance"] / p["seconds_per_utterance"],
         "170.8 words / 55.3 s", "speech_rate_words_per_s", ""),
        ("speech seconds per dialogue", None, speech_per_dialogue, "turns x 55.3 s / dialogues", None,
         f"{speech_per_dialogue:.0f} s of speech in a {schema.SEGMENT_SECONDS} s segment"),
        ("frames per utterance", p["frames_per_utterance"], p["seconds_per_utterance"] * schema.FPS,
         "55.3 s x 25 fps", "frames_per_utterance_mean", "547 frames = 21.9 s at 25 fps"),
        ("sentiment neutral %", p["sentiment_neutral_pct"], None, "", None, ""),
        ("sentiment positive %", p["sentiment_positive_pct"], None, "", None, ""),
        ("sentiment negative %", p["sentiment_negative_pct"], None, "", None, ""),
        ("sentiment total %", None, p["sentiment_neutral_pct"] + p["sentiment_positive_pct"]
         + p["sentiment_negative_pct"], "sum of the three", None, ""),
    ]  # fmt: skip
    return [
        {"quantity": q, "paper": paper, "derived": derived, "derived_from": how,
         "measured": m.get(key) if key else None, "note": note}
        for q, paper, derived, how, key, note in rows
    ]  # fmt: skip


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def format_consistency(rows: list[dict]) -> str:
    """A plain-text table of ``paper_consistency`` rows (measured column only if present)."""
    cols = ["quantity", "paper", "derived", "derived_from"]
    if any(r["measured"] is not None for r in rows):
        cols.append("measured")
    cols.append("note")
    cells = [cols] + [[r[c] if isinstance(r[c], str) else _cell(r[c]) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    numeric = {"paper", "derived", "measured"}
    lines = ["  ".join(c.rjust(w) if cols[i] in numeric else c.ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in cells]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
