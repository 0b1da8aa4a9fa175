"""A conversation browser built from core ipywidgets.

Two dropdowns (segment, utterance), the turn timeline of both speakers, the transcript
with the chosen utterance highlighted, and the animated figure of that utterance. Only
core widgets (Dropdown, HTML, Output, boxes) are used, so it works in JupyterLab,
Notebook 7 and Colab; the plotly figures inside animate client-side, so playing them needs
no round trip to the kernel.

    from venus_analysis.widgets import ConversationBrowser
    ConversationBrowser(data["train"])
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import plotly.graph_objects as go
import pyarrow as pa
from IPython.display import display

from . import animation, schema
from .extraction import segment_utterances
from .figures import turn_timeline

_HIGHLIGHT = "background:#fff3b0;border-left:4px solid #f0a500;padding-left:4px"


def segment_labels(data) -> list[tuple[str, int]]:
    """``(label, index)`` per row of a dataset, read from the small columns only."""
    if isinstance(data, (list, tuple)):
        rows = data
    else:
        small = [c for c in ("video_id", "segment_id", "title") if c in data.column_names]
        rows = data.select_columns(small).to_list()
    labels = []
    for i, r in enumerate(rows):
        title = (r.get("title") or "")[:50]
        labels.append((f"{i}: {r['video_id']} / segment {r['segment_id']}" + (f" · {title}" if title else ""), i))
    return labels


def _row(data, index: int) -> dict:
    """One row with its frame tracks left as Arrow (fast for 15,000-frame real rows)."""
    if isinstance(data, (list, tuple)):
        return data[index]
    table: pa.Table = data.with_format("arrow")[index : index + 1]
    row = {c: table.column(c)[0].as_py() for c in table.column_names if c not in (schema.FACE, schema.BODY)}
    row["_table"] = table
    return row


class ConversationBrowser:
    """Browse conversations: pick a segment and an utterance; see turns, transcript, motion.

    ``data`` is a ``datasets.Dataset`` (or a list of VENUS rows). ``max_frames`` caps the
    animation frames of the figure (long utterances are decimated, the timeline stays in
    seconds). Display the browser by leaving it last in a cell, or with ``display()``.
    """

    def __init__(self, data, *, max_frames: int = animation.MAX_FRAMES, height: int = 760):
        if len(data) == 0:
            raise ValueError("the dataset has no rows to browse")
        self.data = data
        self.max_frames = max_frames
        self.height = height
        self.segment = widgets.Dropdown(options=segment_labels(data), description="segment", layout={"width": "60%"})
        self.utterance = widgets.Dropdown(options=[], description="utterance", layout={"width": "60%"})
        self.timeline = widgets.Output()
        self.transcript = widgets.HTML()
        self.figure = widgets.Output()
        self.status = widgets.HTML()
        self.widget = widgets.VBox(
            [widgets.HBox([self.segment, self.status]), self.timeline, self.transcript, self.utterance, self.figure]
        )
        self.widget.add_class("venus-conversation-browser")
        self._row: dict | None = None
        self._utterances: dict[int, object] = {}
        self.segment.observe(lambda change: self.show_segment(change["new"]), names="value")
        self.utterance.observe(lambda change: self.show_utterance(change["new"]), names="value")
        self.show_segment(self.segment.value)

    # -- what the controls do -----------------------------------------------------------
    def show_segment(self, index: int) -> None:
        """Load segment ``index``: its timeline, transcript and first utterance with frames."""
        self._row = _row(self.data, index)
        source = (self._row.pop("_table"), 0) if "_table" in self._row else self._row
        self._utterances = {u.utterance_id: u for u in segment_utterances(source, full=True) if u.n_frames > 0}
        conv = self._row[schema.CONVERSATION]
        options = [
            (f"{uid} · speaker {spk} · {text[:60]}", uid)
            for uid, spk, text in zip(conv["utterance_id"], conv["speaker"], conv["text"])
            if uid in self._utterances
        ]
        with self.timeline:
            self.timeline.clear_output(wait=True)
            display(turn_timeline(self._row))
        self.status.value = f"{len(conv['utterance_id'])} utterances, {len(options)} with frames"
        self.utterance.options = options  # may fire show_utterance through the observer
        if options and self.utterance.value != options[0][1]:
            self.utterance.value = options[0][1]
        elif options:
            self.show_utterance(options[0][1])

    def show_utterance(self, utterance_id: int | None) -> None:
        """Highlight utterance ``utterance_id`` in the transcript and animate it."""
        if utterance_id is None or self._row is None:
            return
        self.transcript.value = self.transcript_html(utterance_id)
        with self.figure:
            self.figure.clear_output(wait=True)
            display(self.figure_for(utterance_id))

    def figure_for(self, utterance_id: int) -> go.Figure:
        """The animated figure of one utterance of the current segment."""
        return animation.utterance_figure(
            self._utterances[utterance_id],
            words=animation.words_of(self._row, utterance_id),
            max_frames=self.max_frames,
            height=self.height,
        )

    def transcript_html(self, selected: int | None = None) -> str:
        """The current segment's transcript as HTML, with ``selected`` highlighted."""
        conv = self._row[schema.CONVERSATION]
        lines = []
        for uid, spk, start, text in zip(conv["utterance_id"], conv["speaker"], conv["start_time"], conv["text"]):
            style = _HIGHLIGHT if uid == selected else ""
            cls = "venus-utterance selected" if uid == selected else "venus-utterance"
            lines.append(
                f'<div class="{cls}" data-utterance="{uid}" style="{style}">'
                f"<b>{start:6.1f} s · speaker {spk}</b>: {html.escape(text)}</div>"
            )
        style = "font-size:13px;max-height:220px;overflow-y:auto;border:1px solid #ddd;padding:2px"
        return f'<div class="venus-transcript" style="{style}">' + "".join(lines) + "</div>"

    def _ipython_display_(self) -> None:
        display(self.widget)
