"""Static plotly figures of one conversation: who speaks when, and what the features do.

These are the tour's first looks at a row; the animated skeleton and face views, and the
conversation browser widget, build on them.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from . import schema

SPEAKER_COLORS = ("#1f77b4", "#ff7f0e")


def turn_timeline(row: dict, max_seconds: float | None = None) -> go.Figure:
    """Both speakers' utterances as bars on a time axis; hover shows each utterance's text.

    ``row`` is one VENUS row (a dict as ``datasets`` returns it). ``max_seconds`` limits the
    view to the first seconds of the segment.
    """
    conv = row[schema.CONVERSATION]
    fig = go.Figure()
    for spk in (0, 1):
        idx = [i for i, s in enumerate(conv["speaker"]) if s == spk]
        starts = np.array([conv["start_time"][i] for i in idx])
        ends = np.array([conv["end_time"][i] for i in idx])
        fig.add_trace(
            go.Bar(
                x=ends - starts, base=starts, y=[f"speaker {spk}"] * len(idx), orientation="h",
                marker_color=SPEAKER_COLORS[spk], name=f"speaker {spk}",
                customdata=[[conv["utterance_id"][i], conv["text"][i][:120]] for i in idx],
                hovertemplate="utterance %{customdata[0]}<br>%{base:.1f}-%{x:.1f} s<br>%{customdata[1]}<extra></extra>",
            )  # fmt: skip
        )
    fig.update_layout(
        title=f"Turns of video {row['video_id']}, segment {row['segment_id']}",
        xaxis_title="seconds from the segment start", barmode="overlay", height=260,
        margin=dict(l=10, r=10, t=50, b=40), showlegend=False,
    )  # fmt: skip
    if max_seconds is not None:
        fig.update_xaxes(range=[0, max_seconds])
    return fig


def feature_traces(
    frames: np.ndarray,
    series: dict[str, np.ndarray],
    words: dict | None = None,
    title: str = "",
) -> go.Figure:
    """Lines of a few per-frame quantities over time, with the utterance's words on top.

    ``frames`` are frame indices (25 fps); ``series`` maps a label to one value per frame;
    ``words`` is the utterance's ``{"word", "start_time", "end_time"}`` dict.
    """
    t = np.asarray(frames) / schema.FPS
    fig = go.Figure()
    for label, values in series.items():
        fig.add_trace(go.Scatter(x=t, y=np.asarray(values), mode="lines", name=label))
    if words:
        lo = min(float(np.min(v)) for v in series.values())
        fig.add_trace(
            go.Scatter(
                x=words["start_time"], y=[lo] * len(words["word"]), mode="markers+text",
                text=words["word"], textposition="bottom center", marker=dict(size=5, color="grey"),
                name="words", hoverinfo="text",
            )  # fmt: skip
        )
    fig.update_layout(title=title, xaxis_title="seconds from the segment start", height=320,
                      margin=dict(l=10, r=10, t=50, b=40))  # fmt: skip
    return fig


def expression_heatmap(times: np.ndarray, expression: np.ndarray) -> go.Heatmap:
    """A heatmap trace of expression coefficients over time: x = seconds, y = coefficient.

    ``expression`` is (T, K) (K = 50 FLAME coefficients); red is positive, blue negative,
    white zero. Values are rounded to 3 decimals to keep the figure small.
    """
    expression = np.asarray(expression, dtype=np.float64)
    return go.Heatmap(
        x=np.round(np.asarray(times, dtype=np.float64), 3), y=np.arange(expression.shape[1]),
        z=np.round(expression.T, 3).astype(np.float32), colorscale="RdBu", reversescale=True, zmid=0,
        name="expression", hovertemplate="t %{x:.2f} s<br>coefficient %{y}<br>%{z:.3f}<extra></extra>",
    )  # fmt: skip


def expression_strip(frames: np.ndarray, expression: np.ndarray, title: str = "") -> go.Figure:
    """The expression coefficients of one utterance as a heat strip (frames x coefficients).

    ``frames`` are frame indices (25 fps); ``expression`` is (T, 50), e.g. ``utt.face[:, :50]``
    (``schema.FACE_TOKEN_EXPRESSION``). Look for bands: a smile or a frown moves several
    coefficients together for a second or two.
    """
    fig = go.Figure(expression_heatmap(np.asarray(frames) / schema.FPS, expression))
    fig.update_layout(title=title, xaxis_title="seconds from the segment start", yaxis_title="coefficient",
                      height=320, margin=dict(l=10, r=10, t=50, b=40))  # fmt: skip
    return fig
