"""A dataset's size at a glance: segments, utterances, words, frames, minutes of speech.

Counts come straight from Arrow list lengths, batch by batch, so a summary of the real
VENUS never turns frames into Python objects and its memory does not grow with the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import schema
from .frames import iter_tables


@dataclass
class SplitSummary:
    """Sizes of one split (sums over its segments)."""

    split: str
    segments: int = 0
    utterances: int = 0
    harmful_removed: int = 0
    words: int = 0
    face_frames: int = 0
    body_frames: int = 0
    speech_seconds: float = 0.0  # sum of utterance durations (overlaps counted twice)

    @property
    def speech_minutes(self) -> float:
        """Minutes of speech: the summed utterance durations / 60."""
        return self.speech_seconds / 60.0

    def add_table(self, table: pa.Table) -> None:
        """Add one Arrow batch of rows (any number of segments) to the counts."""
        conv = table.column(schema.CONVERSATION).combine_chunks()
        self.segments += table.num_rows
        self.utterances += _total_length(conv.field("utterance_id"))
        self.harmful_removed += _total_length(table.column(schema.HARMFUL).combine_chunks())
        words = pc.list_flatten(conv.field("words"))  # one struct of lists per utterance
        if len(words):
            self.words += _total_length(words.field("word"))
        start = pc.list_flatten(conv.field("start_time")).to_numpy(zero_copy_only=False)
        end = pc.list_flatten(conv.field("end_time")).to_numpy(zero_copy_only=False)
        self.speech_seconds += float(np.nansum(end - start))
        self.face_frames += _total_length(table.column(schema.FACE).combine_chunks().field("frame"))
        self.body_frames += _total_length(table.column(schema.BODY).combine_chunks().field("frame"))

    def to_dict(self) -> dict:
        """The counts as a flat dict (with ``speech_minutes``)."""
        return {**asdict(self), "speech_minutes": round(self.speech_minutes, 2)}


def _total_length(list_array: pa.Array) -> int:
    """Sum of the lengths of the lists in an Arrow list array (nulls count 0)."""
    if len(list_array) == 0:
        return 0
    lengths = pc.list_value_length(list_array)
    return int(pc.sum(lengths).as_py() or 0)


def summarize(data, split: str | None = None, *, batch_size: int = 16, progress: bool = False) -> list[SplitSummary]:
    """Summaries of a ``DatasetDict`` (one per split) or of one ``Dataset`` / ``IterableDataset``.

    Streams Arrow batches of ``batch_size`` segments, so it works on the Hub's streaming
    datasets and on data larger than memory.
    """
    if hasattr(data, "keys") and not hasattr(data, "column_names") or isinstance(data, dict):
        return [summarize(data[name], name, batch_size=batch_size, progress=progress)[0] for name in data]
    out = SplitSummary(split or str(getattr(data, "split", None) or "data"))
    for table in iter_tables(data, batch_size=batch_size, progress=progress, desc=f"summarising {out.split}"):
        out.add_table(table)
    return [out]


def format_summary(summaries: list[SplitSummary]) -> str:
    """A plain-text table of split summaries, with a total row when there are several."""
    cols = [("split", "split"), ("segments", "segments"), ("utterances", "utterances"),
            ("words", "words"), ("face frames", "face_frames"), ("body frames", "body_frames"),
            ("speech min", "speech_minutes"), ("harmful removed", "harmful_removed")]  # fmt: skip
    rows = [s.to_dict() for s in summaries]
    if len(rows) > 1:
        total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "split"}
        total["speech_minutes"] = round(total["speech_minutes"], 2)
        rows.append({"split": "total", **total})
    cells = [[h for h, _ in cols]] + [[f"{r[k]:,}" if isinstance(r[k], int) else f"{r[k]:,.1f}" if isinstance(r[k], float) else str(r[k]) for _, k in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
