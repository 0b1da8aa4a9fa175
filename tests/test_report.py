"""The offline HTML report and its figures (venus_analysis.report)."""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import re

import plotly.graph_objects as go
import pytest

from venus_analysis import bias, report


@pytest.fixture(scope="session")
def small_analysis(synth):
    """A full analysis of the small synthetic VENUS, computed once per session."""
    from venus_analysis import analysis

    return analysis.analyze(synth, source="synthetic", n_boot=200, progress=False)


@pytest.fixture(scope="session")
def small_html(small_analysis):
    return report.build_report(small_analysis, title="small synthetic VENUS: dataset analysis")


def _json_results(a) -> dict:
    """The results as they come back from stats.json / cues.json / bias.json."""
    return json.loads(json.dumps(a.results))


def test_plotlyjs_inline_exactly_once_and_no_network(small_html):
    assert small_html.count("* plotly.js v") == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", small_html, re.I)
    from plotly.offline import get_plotlyjs

    outside = small_html.replace(get_plotlyjs(), "")  # the bundle itself names its CDN (for geo maps)
    assert len(outside) < len(small_html) and "cdn.plot.ly" not in outside and "<script src=\"http" not in outside
    assert small_html.count("Plotly.newPlot") >= 5  # the figures are there, as divs


def test_every_section_in_order(small_html):
    positions = [small_html.find(f"<h2>{html.escape(s)}</h2>") for s in report.SECTIONS]
    assert all(p >= 0 for p in positions), [s for s, p in zip(report.SECTIONS, positions) if p < 0]
    assert positions == sorted(positions)


def test_values_from_the_results_appear(small_analysis, small_html):
    res = small_analysis.results
    n = res["stats"]["all"]["segments"]
    assert f"<td>{n:,}</td>" in small_html
    gini = res["bias"]["representation"]["channels"]["gini"]
    assert f"Gini coefficient (0 = every channel equal, near 1 = one channel holds all) is {gini:.2f}" in small_html
    for r in res["bias"]["flagged"]:
        assert html.escape(str(r["group"])) in small_html
    assert f"{len(res['bias']['flagged'])} differences are flagged" in small_html


def test_a_flagged_channel_is_named_in_table_and_forest(small_analysis):
    res = _json_results(small_analysis)
    rec = next(r for r in res["bias"]["behaviour"] if r["group_by"] == "channel_id" and r["tested"])
    rec.update(flagged=True, rel_diff=999.0, ci_low=900.0, ci_high=1100.0, group="UCflaggedChannel0000000")
    res["bias"]["flagged"] = [rec]
    page = report.build_report(res, title="t")
    assert page.count("UCflaggedChannel0000000") >= 2  # the table and the forest plot's data
    labels = [r["group"] for r in report.forest_records(res["bias"])]
    assert labels[0] == "UCflaggedChannel0000000", labels[:3]  # flagged first, largest first


def test_text_from_the_data_is_escaped(small_analysis):
    res = _json_results(small_analysis)
    evil = "</script><script>alert(1)</script>"
    cue = next(iter(res["cues"]["top_words"]))
    res["cues"]["top_words"][cue][0]["word"] = evil
    res["bias"]["flagged"] = [{**res["bias"]["behaviour"][0], "group": "<img src=x onerror=alert(2)>", "flagged": True}]
    res["stats"]["source"] = "<b>src</b>"
    page = report.build_report(res, title="<script>alert('title')</script>")
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;b&gt;src&lt;/b&gt;" in page


def test_no_clusters_is_said_not_crashed_on(small_analysis):
    bare = dataclasses.replace(small_analysis, sample=None, clusters={})
    bare.results = copy.deepcopy(small_analysis.results)
    bare.results["cues"]["clusters"] = {}
    assert report.cluster_figures(bare) == []
    page = report.build_report(bare, title="no clusters")
    assert "No cluster figures" in page and "Clusters were not computed" in page


def test_cluster_figures_when_present(small_analysis):
    figs = report.cluster_figures(small_analysis)
    assert figs and all(isinstance(f, go.Figure) for _, f in figs)
    assert {t.split(":")[0] for t, _ in figs} <= {"face", "body"}


def test_cluster_scatter_is_capped(small_analysis):
    result = next(iter(small_analysis.clusters.values()))
    cap = max(10, len(result.labels) // 3)
    figs = report.cluster_figures(dataclasses.replace(small_analysis, sample=None, clusters={"face": result}), max_points=cap)
    assert len(figs) == 1  # no sample: no representatives panel
    drawn = sum(len(t.x) for t in figs[0][1].data)
    assert drawn == cap


def test_figures_rebuild_from_json(small_analysis):
    res = _json_results(small_analysis)
    figs = [
        report.utterance_length_figure(res["bias"]), report.channel_figure(res["bias"]),
        report.talk_time_figure(res["bias"]), report.top_words_figure(res["cues"]),
        report.sentiment_figure(res["cues"]), report.forest_figure(res["bias"]),
        report.consistency_figure(res["stats"]),
        *(report.cue_rates_figure(res["cues"], by) for by in res["cues"]["rates_by"]),
    ]  # fmt: skip
    assert all(isinstance(f, go.Figure) and f.data for f in figs)


def test_builders_say_what_is_missing():
    for builder in (report.utterance_length_figure, report.channel_figure, report.talk_time_figure,
                    report.top_words_figure, report.sentiment_figure, report.forest_figure, report.consistency_figure):
        with pytest.raises(ValueError, match="the results have no"):
            builder({})
    page = report.build_report({"stats": {}, "cues": {}, "bias": {}}, title="empty")
    assert page.count("Not shown: the results have no") >= 5


def test_distributions_are_binned_not_raw(small_analysis):
    u = small_analysis.tables.utterances
    fig = report.utterance_length_figure(small_analysis.results["bias"], u["seconds"].to_numpy(), bins=30)
    assert len(fig.data[0].x) == 30 and sum(fig.data[0].y) == u["seconds"].notna().sum()
    shares = bias.speaker0_shares(small_analysis.tables.segments)
    assert len(shares) == small_analysis.results["bias"]["representation"]["segments"]
    assert shares.mean() == pytest.approx(small_analysis.results["bias"]["representation"]["talk_time"]["speaker0_share_mean"])


def test_forest_records_respect_the_cap(small_analysis):
    recs = report.forest_records(small_analysis.results["bias"], max_rows=7)
    assert len(recs) <= 7
    flags = [r["flagged"] for r in recs]
    assert flags == sorted(flags, reverse=True)  # flagged ones first
