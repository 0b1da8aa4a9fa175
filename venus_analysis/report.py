"""An offline HTML report of a dataset analysis, and the plotly figures it is made of.

Every figure builder takes the JSON-safe results of :func:`analysis.analyze` (the dicts
written to ``stats.json``, ``cues.json`` and ``bias.json``), so a notebook can rebuild any
figure from those files::

    import json
    from venus_analysis import report
    bias = json.load(open("out/bias.json"))
    report.forest_figure(bias)

Two figures draw distributions when they are given the raw values (utterance lengths,
talk-time shares, from ``Analysis.tables``) and fall back on the summary numbers in the
results otherwise. The cluster figures need the ``Analysis`` itself (its frame ``sample``
and ``clusters``). A builder raises ``ValueError`` when the results lack what it draws;
:func:`build_report` turns that into a note instead of a figure.

:func:`build_report` writes one self-contained HTML page: plotly.js inline once (no
network needed to open it), then one section per analysis, each with a short text for
students. Text taken from the data (channel ids, words, titles) is HTML-escaped.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import __version__, bias, clusters, schema, sentiment

TEMPLATE = "plotly_white"
MAX_GROUPS = 25  # rows of a per-group heatmap / bars of the channel figure
MAX_FOREST_ROWS = 40  # rows of the forest plot (every flagged record first)
MAX_SCATTER_POINTS = 3000  # points of a cluster embedding shown in the report
PAPER_SHARES = sentiment.PAPER_SHARES
RATIO_FLOOR = 0.01  # a -100 % difference is drawn at x0.01 on the forest plot's log axis
FLAG_COLOR, CONFOUND_COLOR, PLAIN_COLOR = "#d62728", "#ff7f0e", "#7f7f7f"


def _layout(fig: go.Figure, title: str, height: int = 420, **kw) -> go.Figure:
    fig.update_layout(title=title, template=TEMPLATE, height=height, margin=dict(l=10, r=10, t=60, b=40), **kw)
    return fig


def _num(x, spec: str = ".2f", missing: str = "n/a") -> str:
    """A number formatted with ``spec``; None or NaN as ``missing``."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return missing
    return format(x, spec)


# ---------------------------------------------------------------------------------------
# Figures from the JSON-safe results
# ---------------------------------------------------------------------------------------
def utterance_length_figure(bias_results: dict, seconds=None, bins: int = 60) -> go.Figure:
    """Histogram of utterance lengths (s) with the 512-frame MARS window (20.48 s) marked.

    ``bias_results`` is ``results["bias"]``; ``seconds`` the utterance lengths (e.g.
    ``analysis.tables.utterances["seconds"]``). Without ``seconds`` the figure shows the
    quantiles stored in the results instead. Bars are binned here, so the figure stays
    small however many utterances there are.
    """
    us = bias_results.get("representation", {}).get("utterance_seconds")
    if not us:
        raise ValueError("the results have no utterance lengths (bias.representation.utterance_seconds)")
    window = us.get("window_seconds", schema.WINDOW_FRAMES / schema.FPS)
    fig = go.Figure()
    if seconds is not None and len(seconds):
        x = np.asarray(seconds, dtype=np.float64)
        x = x[np.isfinite(x)]
        counts, edges = np.histogram(x, bins=bins, range=(0.0, max(float(x.max()), window * 1.1)))
        fig.add_trace(go.Bar(x=np.round((edges[:-1] + edges[1:]) / 2, 2), y=counts, width=np.diff(edges),
                             marker_color="#1f77b4", name="utterances",
                             hovertemplate="%{x:.1f} s: %{y} utterances<extra></extra>"))  # fmt: skip
        fig.update_yaxes(title="utterances")
    else:
        qs = {k: v for k, v in us.items() if k.startswith("q") and v is not None}
        fig.add_trace(go.Bar(y=list(qs), x=list(qs.values()), orientation="h", marker_color="#1f77b4",
                             hovertemplate="%{y}: %{x:.1f} s<extra></extra>"))  # fmt: skip
        fig.update_yaxes(title="quantile (q50 = median)")
    fig.add_vline(x=window, line_dash="dash", line_color=FLAG_COLOR,
                  annotation_text=f"512-frame window ({window:.2f} s)", annotation_position="top right")  # fmt: skip
    fig.update_xaxes(title="utterance length (s)")
    return _layout(fig, f"Utterance length: {_num(us.get('share_over_window'), '.1%')} of utterances are "
                        f"longer than the {window:.2f} s window", showlegend=False)  # fmt: skip


def channel_figure(bias_results: dict, max_bars: int = MAX_GROUPS) -> go.Figure:
    """Segments per channel, largest first (the rest summed in one bar), Gini in the title."""
    ch = bias_results.get("representation", {}).get("channels")
    if not ch or not ch.get("segments_per_channel"):
        raise ValueError("the results have no channel counts (bias.representation.channels)")
    counts = sorted(ch["segments_per_channel"].items(), key=lambda kv: -kv[1])
    shown, rest = counts[:max_bars], counts[max_bars:]
    names = [k for k, _ in shown] + ([f"{len(rest)} other channels"] if rest else [])
    values = [v for _, v in shown] + ([sum(v for _, v in rest)] if rest else [])
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=["#1f77b4"] * len(shown) + ["#c7c7c7"] * bool(rest),
                           hovertemplate="%{x}: %{y} segments<extra></extra>"))  # fmt: skip
    fig.update_xaxes(title="channel", tickangle=-45)
    fig.update_yaxes(title="segments")
    return _layout(fig, f"Segments per channel: {ch['n']} channels, Gini {_num(ch.get('gini'))}, "
                        f"top 5 hold {_num(ch.get('top5_share'), '.0%')}", height=450)  # fmt: skip


def talk_time_figure(bias_results: dict, shares=None, bins: int = 20) -> go.Figure:
    """Speaker 0's share of the talk per segment (0.5 = balanced), 30 % / 70 % marked.

    ``shares`` are the per-segment shares (:func:`bias.speaker0_shares`); without them the
    figure shows the summary stored in the results (mean, s.d., share over 70 %).
    """
    tt = bias_results.get("representation", {}).get("talk_time")
    if not tt:
        raise ValueError("the results have no talk-time balance (bias.representation.talk_time)")
    fig = go.Figure()
    if shares is not None and len(shares):
        counts, edges = np.histogram(np.asarray(shares, dtype=np.float64), bins=bins, range=(0.0, 1.0))
        fig.add_trace(go.Bar(x=np.round((edges[:-1] + edges[1:]) / 2, 3), y=counts, width=np.diff(edges),
                             marker_color="#1f77b4", hovertemplate="%{x:.2f}: %{y} segments<extra></extra>"))  # fmt: skip
        fig.update_yaxes(title="segments")
    else:
        mean, sd = tt.get("speaker0_share_mean"), tt.get("speaker0_share_sd")
        fig.add_trace(go.Scatter(x=[mean], y=["speaker 0"], mode="markers", marker=dict(size=12),
                                 error_x=dict(type="data", array=[sd or 0.0])))  # fmt: skip
    for x in (0.3, 0.7):
        fig.add_vline(x=x, line_dash="dot", line_color=FLAG_COLOR)
    fig.add_vline(x=0.5, line_color="#444444")
    fig.update_xaxes(title="speaker 0's share of the segment's talk", range=[0, 1])
    return _layout(fig, f"Talk-time balance: speaker 0 has {_num(tt.get('speaker0_share_mean'), '.0%')} on average; "
                        f"{_num(tt.get('share_segments_one_speaker_over_70pct'), '.0%')} of segments have one "
                        "speaker over 70 %", showlegend=False)  # fmt: skip


GROUP_LABELS = {"speaker": "speaker role", "channel_id": "channel", "topic": "topic", "sentiment": "sentence sentiment"}


def cue_rates_figure(cue_results: dict, by: str, max_groups: int = MAX_GROUPS) -> go.Figure:
    """Cue events per minute of speech for each group of ``by`` ("speaker", "channel_id",
    "topic" or "sentiment"), as a heatmap (rows: groups with the most minutes, then "all")."""
    rows = cue_results.get("rates_by", {}).get(by)
    if not rows:
        raise ValueError(f"the results have no cue rates by {by!r} (cues.rates_by)")
    rows = sorted(rows, key=lambda r: -(r.get("minutes") or 0))[:max_groups]
    overall = cue_results.get("rates") or {}
    cue_names = [c for c in rows[0] if c not in (by, "minutes") and any(r.get(c) for r in rows)]
    labels = [f"speaker {r[by]}" if by == "speaker" else str(r[by]) for r in rows] + (["all"] if overall else [])
    z = [[r.get(c) for c in cue_names] for r in rows] + ([[overall.get(c) for c in cue_names]] if overall else [])
    fig = go.Figure(go.Heatmap(z=np.round(np.array(z, dtype=np.float64), 2), x=cue_names, y=labels, colorscale="Blues",
                               text=np.round(np.array(z, dtype=np.float64), 1), texttemplate="%{text}",
                               hovertemplate="%{y}, %{x}: %{z:.2f} per minute<extra></extra>",
                               colorbar=dict(title="per min")))  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category")
    return _layout(fig, f"Cue events per minute of speech by {GROUP_LABELS.get(by, by)}",
                   height=max(260, 24 * len(labels) + 140))  # fmt: skip


def top_words_figure(cue_results: dict, k: int = 8, cols: int = 4) -> go.Figure:
    """For each cue, the ``k`` words with the highest lift (how much more often the cue
    starts near the word than near any word); hover shows the counts."""
    tw = {c: rows[:k] for c, rows in (cue_results.get("top_words") or {}).items() if rows}
    if not tw:
        raise ValueError("the results have no top words per cue (cues.top_words)")
    nrows = -(-len(tw) // cols)
    fig = make_subplots(rows=nrows, cols=min(cols, len(tw)), subplot_titles=list(tw), horizontal_spacing=0.12,
                        vertical_spacing=0.12)  # fmt: skip
    for i, (cue, rows) in enumerate(tw.items()):
        rows = rows[::-1]  # largest lift on top
        fig.add_trace(go.Bar(
            x=[r["lift"] for r in rows], y=[str(r["word"]) for r in rows], orientation="h", marker_color="#2ca02c",
            customdata=[[r.get("n_with_cue"), r.get("n_word")] for r in rows],
            hovertemplate="%{y}: lift %{x:.1f} (%{customdata[0]} of %{customdata[1]} with the cue)<extra></extra>",
        ), row=i // cols + 1, col=i % cols + 1)  # fmt: skip
    fig.add_vline(x=1.0, line_dash="dot", line_color="#444444")
    return _layout(fig, "Top words per cue (lift; 1 = no more often than any word)", height=300 * nrows,
                   showlegend=False)  # fmt: skip


def sentiment_figure(cue_results: dict) -> go.Figure:
    """Shares of neutral / positive / negative sentences next to the paper's
    63.79 / 17.36 / 18.85 %."""
    rows = cue_results.get("sentiment")
    if not rows:
        raise ValueError("the results have no sentence sentiment (cues.sentiment)")
    labels = [r["sentiment"] for r in rows]
    fig = go.Figure([
        go.Bar(x=labels, y=[r["share"] for r in rows], name="this data", marker_color="#1f77b4",
               text=[_num(r["share"], ".1%") for r in rows]),
        go.Bar(x=labels, y=[r.get("paper_share", PAPER_SHARES.get(r["sentiment"])) for r in rows], name="paper",
               marker_color="#c7c7c7", text=[_num(r.get("paper_share"), ".2%") for r in rows]),
    ])  # fmt: skip
    fig.update_yaxes(title="share of sentences", tickformat=".0%")
    return _layout(fig, f"Sentence sentiment (VADER) against the paper, {sum(r['n'] for r in rows):,} sentences",
                   barmode="group")  # fmt: skip


def forest_records(bias_results: dict, max_rows: int = MAX_FOREST_ROWS) -> list[dict]:
    """The audit records a forest plot shows: every flagged one (largest first), then the
    largest other tested differences, at most ``max_rows``; each gets ``kind``
    ("behaviour" or "quality")."""
    recs = [{**r, "kind": kind} for kind in ("behaviour", "quality") for r in bias_results.get(kind) or []
            if r.get("tested") and r.get("rel_diff") is not None and r.get("ci_low") is not None]  # fmt: skip
    recs.sort(key=lambda r: (not r["flagged"], -abs(r["rel_diff"])))
    return recs[:max_rows]


def forest_figure(bias_results: dict, max_rows: int = MAX_FOREST_ROWS) -> go.Figure:
    """Forest plot of the bias audit: each group's relative difference from the rest with
    its bootstrap interval, per measure, as the ratio of the two means on a log axis. Red: flagged (the interval lies beyond
    +-min_effect, the shaded band); orange: flagged but the group's extraction quality is
    flagged too; grey: not flagged. Flagged records come first, then the largest others."""
    recs = forest_records(bias_results, max_rows)
    if not recs:
        raise ValueError("the results have no tested group differences (bias.behaviour / bias.quality)")
    min_effect = (bias_results.get("settings") or {}).get("min_effect", 0.2)
    n_tested = sum(bool(r.get("tested")) for k in ("behaviour", "quality") for r in bias_results.get(k) or [])
    recs = sorted(recs, key=lambda r: (r["group_by"], str(r["group"]), r["kind"], r["measure"]))
    fig = go.Figure()
    fig.add_vrect(x0=1 - min_effect, x1=1 + min_effect, fillcolor="#2ca02c", opacity=0.12, line_width=0)
    fig.add_vline(x=1, line_color="#444444")
    classes = [("flagged", FLAG_COLOR, lambda r: r["flagged"] and not r.get("confounded_by_quality")),
               ("flagged, quality also flagged", CONFOUND_COLOR, lambda r: r["flagged"] and r.get("confounded_by_quality")),
               ("not flagged", PLAIN_COLOR, lambda r: not r["flagged"])]  # fmt: skip

    def ratio(x):  # group mean / rest mean, floored so that -100 % fits a log axis
        return round(max(1.0 + x, RATIO_FLOOR), 4)

    for name, color, keep in classes:
        sel = [r for r in recs if keep(r)]
        if not sel:
            continue
        fig.add_trace(go.Scatter(
            x=[ratio(r["rel_diff"]) for r in sel], y=[_forest_label(r) for r in sel],
            mode="markers", name=name, marker=dict(color=color, size=8),
            error_x=dict(type="data", symmetric=False, array=[ratio(r["ci_high"]) - ratio(r["rel_diff"]) for r in sel],
                         arrayminus=[ratio(r["rel_diff"]) - ratio(r["ci_low"]) for r in sel]),
            customdata=[[r["rel_diff"], r["ci_low"], r["ci_high"], r.get("level"), r["n_clusters"]] for r in sel],
            hovertemplate="%{y}<br>%{customdata[0]:+.0%} [%{customdata[1]:+.0%}, %{customdata[2]:+.0%}] at level "
                          "%{customdata[3]:.3f}, %{customdata[4]} videos<extra></extra>",
        ))  # fmt: skip
    ticks = [0.01, 0.1, 0.25, 0.5, 1, 2, 4, 10, 30]
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"x{t:g}" for t in ticks],
                     title="group mean / mean of the rest (log scale; x1 = no difference, x2 = twice as high)")  # fmt: skip
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=[_forest_label(r) for r in recs][::-1])
    return _layout(fig, f"Bias audit: {len(recs)} of {n_tested} tested differences (band: +-{min_effect:.0%})",
                   height=22 * len(recs) + 180, legend=dict(orientation="h", y=-0.08))  # fmt: skip


def _forest_label(r: dict) -> str:
    return f"{r['group_by']}={r['group']} | {r['measure']}"


CONSISTENCY_COLUMNS = ("quantity", "paper", "derived", "derived_from", "measured", "note")


def consistency_figure(stats_results: dict) -> go.Figure:
    """The paper's Table 2 numbers, what its other numbers imply and what this data
    measures (``stats["paper_consistency"]``), as a plotly table."""
    rows = stats_results.get("paper_consistency")
    if not rows:
        raise ValueError("the results have no paper-consistency rows (stats.paper_consistency)")
    cells = [[_cell(r.get(c)) for r in rows] for c in CONSISTENCY_COLUMNS]
    fig = go.Figure(go.Table(header=dict(values=list(CONSISTENCY_COLUMNS), fill_color="#e8e8e8"),
                             cells=dict(values=cells, align="left")))  # fmt: skip
    return _layout(fig, "The paper against itself, and against this data", height=60 + 32 * (len(rows) + 1))


def _cell(v) -> str:
    """A table cell: integers with thousands separators, floats with 2 decimals (0 above 1000)."""
    if v is None:
        return ""
    if isinstance(v, bool) or isinstance(v, str):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if isinstance(v, float) and not np.isfinite(v):
        return ""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"


# ---------------------------------------------------------------------------------------
# Figures that need the Analysis
# ---------------------------------------------------------------------------------------
def _thin(result: clusters.ClusterResult, max_points: int, seed: int = 0) -> clusters.ClusterResult:
    """The result with at most ``max_points`` of its frames (a random subset, in order)."""
    n = len(result.labels)
    if n <= max_points:
        return result
    idx = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    return dataclasses.replace(result, embedding=result.embedding[idx], labels=result.labels[idx],
                               meta=result.meta.iloc[idx].reset_index(drop=True))  # fmt: skip


def cluster_figures(analysis, max_points: int = MAX_SCATTER_POINTS) -> list[tuple[str, go.Figure]]:
    """(title, figure) pairs of the face and body clusters of an ``Analysis``: the 2-D
    embedding (at most ``max_points`` frames drawn) and one representative pose per
    cluster. Empty when the analysis has no clusters or no frame sample."""
    out = []
    sample = getattr(analysis, "sample", None)
    for part, result in (getattr(analysis, "clusters", None) or {}).items():
        shown = _thin(result, max_points)
        out.append((f"{part}: embedding", clusters.embedding_figure(shown, title=(
            f"{part} frames: {result.method} + DBSCAN, {result.n_clusters} clusters, "
            f"{result.noise_share:.0%} noise ({len(shown.labels)} of {len(result.labels)} frames drawn)"))))
        if sample is not None and result.n_clusters:
            try:
                out.append((f"{part}: representatives", clusters.representatives_figure(sample, result)))
            except ValueError:  # a sample that does not match the result: skip the panel
                pass
    return out


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------
def html_table(rows: list[dict], columns=None, formats: dict | None = None) -> str:
    """An HTML table of records; every cell is escaped. ``formats`` maps a column to a
    format spec (e.g. ``{"share": ".1%"}``); other numbers use :func:`_cell`."""
    if not rows:
        return "<p><em>(none)</em></p>"
    columns = list(columns or rows[0])
    formats = formats or {}

    def fmt(c, v):
        if c in formats and v is not None and not isinstance(v, str):
            return _num(v, formats[c])
        return _cell(v)

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(c, r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _fig_html(builder, *args, **kwargs) -> str:
    """A figure as a div, or an escaped note when the results lack what it draws."""
    try:
        fig = builder(*args, **kwargs)
    except (ValueError, KeyError, TypeError) as err:
        return f"<p class='note'>Not shown: {html.escape(str(err))}.</p>"
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1{border-bottom:2px solid #1f77b4}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}.note{color:#666;font-style:italic}.lead{font-size:1.05em}.wide{overflow-x:auto}"""

SECTIONS = (
    "The data in numbers", "Does the paper agree with itself?", "Utterance length and the 20.48 s window",
    "Who is in the data: channels", "Who talks: talk-time balance", "Nonverbal cues per minute",
    "Which words come with which cue", "Sentence sentiment", "Face and body clusters",
    "Bias audit: differences between groups", "What VENUS does not contain", "Timings",
)  # fmt: skip


def _p(*texts: str) -> str:
    return "".join(f"<p>{t}</p>" for t in texts)


def build_report(analysis, title: str = "Dataset analysis") -> str:
    """One self-contained, offline HTML page of an analysis: plotly.js inline once, then
    one section per analysis (:data:`SECTIONS`) with figures, tables and a short text for
    students. ``analysis`` is an ``analysis.Analysis`` or its JSON-safe ``results`` dict
    (then the distributions fall back on their summaries and there are no cluster
    figures). Text from the data is escaped."""
    from plotly.offline import get_plotlyjs

    res = getattr(analysis, "results", analysis)
    stats, cue, audit, meta = (res.get(k) or {} for k in ("stats", "cues", "bias", "meta"))
    tables = getattr(analysis, "tables", None)
    utt = tables.utterances if tables is not None and len(tables.utterances) else None
    rep = audit.get("representation") or {}
    allst = stats.get("all") or {}
    e = html.escape
    parts: dict[str, str] = {}

    split_rows = [{"split": name, **s} for name, s in (stats.get("splits") or {}).items()] + (
        [{"split": "all", **allst}] if allst else [])  # fmt: skip
    parts[SECTIONS[0]] = _p(
        "One row of VENUS is a ten-minute cut (a <em>segment</em>) of a two-person podcast; a turn is one "
        "<em>utterance</em> of one speaker. The table counts what this data holds, per split.") + html_table(
        split_rows, ["split", "segments", "turns", "sentences", "words", "unique_words", "speech_hours",
                     "face_frames", "frame_coverage", "harmful"], {"frame_coverage": ".1%", "speech_hours": ".2f"})  # fmt: skip
    parts[SECTIONS[1]] = _p(
        "The paper's Table 2 states averages that its own totals do not reproduce: 1,114,328 turns over "
        "89,459 dialogues is 12.5 turns per dialogue, not the 21 stated, and 547 frames per utterance "
        "at 25 fps last 21.9 s, not the 55.3 s stated. <em>paper</em> is what the paper states, "
        "<em>derived</em> what its other numbers imply, <em>measured</em> what this data gives.") + html_table(
        stats.get("paper_consistency") or [], CONSISTENCY_COLUMNS)  # fmt: skip
    window = (rep.get("utterance_seconds") or {}).get("window_seconds", schema.WINDOW_FRAMES / schema.FPS)
    trunc = rep.get("truncation") or {}
    parts[SECTIONS[2]] = _p(
        f"How long the utterances are (a histogram, or the quantiles when only the JSON results are at hand). MARS pads or cuts every utterance to 512 frames "
        f"({window:.2f} s at 25 fps): whatever lies right of the dashed line is cut. Here "
        f"{_num(trunc.get('share_utterances_cut'), '.1%')} of utterances with frames are cut, losing "
        f"{_num(trunc.get('share_frames_cut'), '.1%')} of all frames. The paper reports 55.3 s per "
        "utterance on average, so on real VENUS most of a typical turn lies beyond the window.") + _fig_html(
        utterance_length_figure, audit, None if utt is None else utt["seconds"].to_numpy())  # fmt: skip
    ch = rep.get("channels") or {}
    parts[SECTIONS[3]] = _p(
        "A dataset drawn from YouTube inherits YouTube's long tail: a few channels upload most of the "
        f"podcasts. The Gini coefficient (0 = every channel equal, near 1 = one channel holds all) is "
        f"{_num(ch.get('gini'))} over {ch.get('n', 'n/a')} channels; the largest channel holds "
        f"{_num(ch.get('top1_share'), '.1%')} of the segments and the top 10 hold {_num(ch.get('top10_share'), '.1%')}. "
        "The paper's 27,128 videos come from 869 channels. Whatever a model learns from this data is "
        "weighted towards the big channels' hosts.") + _fig_html(channel_figure, audit)  # fmt: skip
    parts[SECTIONS[4]] = _p(
        "For each segment, the share of talk seconds of speaker 0 (the first speaker of the segment). "
        "Near 0.5 both talk equally; beyond the dotted lines one speaker has more than 70 % of the talk "
        "(an interview with a quiet host, or a monologue). Speaker numbers are the order within a "
        "segment, not identities.") + _fig_html(
        talk_time_figure, audit, None if utt is None else bias.speaker0_shares(tables.segments).to_numpy())  # fmt: skip
    th = cue.get("thresholds") or {}
    parts[SECTIONS[5]] = _p(
        "Cue events (nods, head shakes, hand to face, raised hands, gestures, smiles, frowns) are detected "
        "from the face and body parameters by thresholds, then counted per minute of speech. Read a row "
        "across to see one group's profile; read a column down to compare groups. Differences between "
        "channels can come from people, from the camera or from the estimator: the bias audit below "
        f"tests them. Thresholds used: {e(', '.join(f'{k} {v}' for k, v in th.items() if k in ('nod', 'gesture', 'smile', 'frown')))}."
    ) + "".join(_fig_html(cue_rates_figure, cue, by) for by in GROUP_LABELS if (cue.get("rates_by") or {}).get(by))  # fmt: skip
    parts[SECTIONS[6]] = _p(
        "Lift compares how often a cue starts just around a word (0.3 s before to 1 s after it) with "
        "how often it starts around any word: a lift of 10 means ten times more often. Only words seen "
        "at least 5 times are ranked. A high lift says the cue and the word go together, not that one "
        "causes the other.") + _fig_html(top_words_figure, cue)  # fmt: skip
    parts[SECTIONS[7]] = _p(
        "Each sentence is labelled by VADER, a lexicon of word scores with a few rules (compound score "
        "at least +0.05: positive; at most -0.05: negative). The paper found 63.79 % neutral, 17.36 % "
        "positive and 18.85 % negative sentences with a classifier it does not name, and that frowning "
        "goes with negative sentences (compare the frown column of the sentiment heatmap above).") + _fig_html(
        sentiment_figure, cue) + html_table(cue.get("sentiment") or [], formats={"share": ".2%", "paper_share": ".2%"})  # fmt: skip
    cl_dicts = cue.get("clusters") or {}
    cl_figs = cluster_figures(analysis)
    cl_text = [f"{e(p)}: {d['n_clusters']} clusters of {d['n']} frames, {_num(d.get('noise_share'), '.0%')} noise"
               if "n_clusters" in d else f"{e(p)}: not clustered ({e(str(d.get('error', 'no result')))})"
               for p, d in cl_dicts.items()]  # fmt: skip
    parts[SECTIONS[8]] = _p(
        "As in the paper, a few frames per video are sampled, standardised, reduced to 2-D with t-SNE and "
        "grouped with DBSCAN (grey points are noise). The paper found 7 face and 8 body clusters among "
        "about 1,000 videos, with neutral faces and relaxed, lowered arms the most common. The number of "
        "clusters depends on DBSCAN's radius: treat it as a description, not a discovery.",
        "; ".join(cl_text) or "Clusters were not computed for this analysis.") + (
        "".join(f.to_html(full_html=False, include_plotlyjs=False) for _, f in cl_figs)
        if cl_figs else "<p class='note'>No cluster figures: the analysis has no frame sample or clusters "
                        "(run analyze with cluster=True, or rebuild from the Analysis object, not the JSON).</p>")  # fmt: skip
    settings = audit.get("settings") or {}
    flagged = audit.get("flagged") or []
    parts[SECTIONS[9]] = _p(
        "Each row compares one group (a channel, a topic, a speaker role, a sentence sentiment) with the "
        "rest of the data on one measure: the dot is the ratio of the group's mean to the rest's (x2 = twice "
        "as high; the axis is logarithmic, so x0.5 and x2 are equally far from x1), the whisker its bootstrap "
        f"interval ({settings.get('n_boot', 'n/a')} resamples of whole units: {html.escape(str(settings.get('cluster', 'videos')))}; widened for the number of groups "
        f"compared). A difference is <b>flagged</b> when the whole interval lies outside the shaded band of "
        f"+-{_num(settings.get('min_effect', 0.2), '.0%')}: unlikely to be noise and large enough to matter. "
        "Orange marks a group whose extraction quality (jitter, frame coverage) is flagged as well: its "
        "behaviour difference may be the estimator's, not the people's. A topic that one channel "
        f"dominates inherits that channel's differences. {len(flagged)} differences are flagged.") + _fig_html(
        forest_figure, audit) + html_table(flagged, ["group_by", "group", "measure", "rel_diff", "ci_low", "ci_high",
                                                     "level", "n_clusters", "confounded_by_quality"],
                                           {"rel_diff": "+.1%", "ci_low": "+.1%", "ci_high": "+.1%", "level": ".4f"})  # fmt: skip
    parts[SECTIONS[10]] = _p(e(audit.get("not_in_venus") or bias.NOT_IN_VENUS),
                             "Fairness questions about those attributes cannot be answered from this data; "
                             "audit them only with labels collected under a protocol of their own.")  # fmt: skip
    timings = (meta.get("timings") or getattr(analysis, "timings", None) or {})
    parts[SECTIONS[11]] = html_table([{"step": k, "seconds": v} for k, v in timings.items()], formats={"seconds": ".1f"})

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = (f"<h1>{e(title)}</h1><p class='lead'>Source: <b>{e(str(stats.get('source', meta.get('source', '?'))))}</b>, "
            f"{_cell(allst.get('segments', rep.get('segments')))} segments. Made with venus-mars "
            f"{e(__version__)} on {when}. The figures are interactive (hover, zoom, click legend entries); "
            "the page needs no network. Numbers credited to the paper are from Kim, Chung et al., "
            "<em>Speaking Beyond Language</em>, ACL 2025.</p>")  # fmt: skip
    toc = "<ol>" + "".join(f"<li><a href='#s{i}'>{e(s)}</a></li>" for i, s in enumerate(SECTIONS)) + "</ol>"
    body = "".join(f"<section id='s{i}'><h2>{e(s)}</h2>{parts[s]}</section>" for i, s in enumerate(SECTIONS))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{_CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head>"
            f"<body>{head}{toc}{body}</body></html>\n")  # fmt: skip
