"""The Markdown data card (venus_analysis.datacard), built from hand-made results dicts."""

from __future__ import annotations

import copy

import pytest

from venus_analysis import datacard


def _record(group_by, group, measure, rel, lo, hi, flagged, **kw):
    return {"group_by": group_by, "group": group, "measure": measure, "n_rows": 50, "n_clusters": 6,
            "mean_group": 1.0 + rel, "mean_rest": 1.0, "rel_diff": rel, "ci_low": lo, "ci_high": hi,
            "level": 0.99, "tested": True, "excludes_zero": flagged, "flagged": flagged, **kw}  # fmt: skip


def fake_results(source: str = "synthetic") -> dict:
    """A small results dict with the shape of Analysis.results."""
    flagged_b = _record("channel_id", "UCanimated00000000000000", "hand_speed", 0.8123, 0.51, 1.12, True,
                        confounded_by_quality=True)  # fmt: skip
    flagged_q = _record("channel_id", "UCanimated00000000000000", "jitter_body", 2.5, 2.1, 2.9, True)
    calm = _record("speaker", "1", "hand_speed", 0.05, -0.1, 0.2, False, confounded_by_quality=False)
    split = {"segments": 1234, "turns": 20000, "sentences": 40000, "words": 300000, "unique_words": 5000,
             "turns_per_dialogue_mean": 16.2, "seconds_per_utterance_mean": 6.1, "seconds_per_utterance_median": 3.7,
             "speech_hours": 33.3, "face_frames": 3_000_000, "frame_coverage": 0.97, "harmful": 4}  # fmt: skip
    return {
        "stats": {"source": source, "all": split, "splits": {"train": split}, "paper_consistency": []},
        "cues": {
            "speech_minutes": 2000.0, "rates": {"nod": 3.0},
            "sentiment": [{"sentiment": "neutral", "n": 600, "share": 0.6, "paper_share": 0.6379},
                          {"sentiment": "positive", "n": 250, "share": 0.25, "paper_share": 0.1736},
                          {"sentiment": "negative", "n": 150, "share": 0.15, "paper_share": 0.1885}],
            "clusters": {"face": {"n": 400, "n_clusters": 6, "noise_share": 0.1},
                         "body": {"error": "cluster_frames needs at least 10 frames"}},
        },  # fmt: skip
        "bias": {
            "representation": {
                "segments": 1234,
                "channels": {"n": 40, "gini": 0.61234, "top1_share": 0.2, "top5_share": 0.55, "top10_share": 0.8,
                             "segments_per_channel": {"UCanimated00000000000000": 200}},
                "topics": {"life": 0.3, "interview": 0.2},
                "talk_time": {"speaker0_share_mean": 0.5678, "speaker0_share_sd": 0.11,
                              "share_segments_one_speaker_over_70pct": 0.1357},
                "utterance_seconds": {"q50": 3.7, "q90": 12.4, "share_over_window": 0.04, "window_seconds": 20.48},
                "truncation": {"share_utterances_cut": 0.0412, "share_frames_cut": 0.061,
                               "share_frames_cut_in_cut_utterances": 0.33},
            },  # fmt: skip
            "behaviour": [flagged_b, calm], "quality": [flagged_q], "flagged": [flagged_b, flagged_q],
            "groups_not_audited": [], "not_in_venus": "no demographic labels",
            "settings": {"n_boot": 500, "level": 0.95, "min_effect": 0.2, "seed": 0},
        },
        "meta": {"source": source, "splits": ["train"], "segments": 1234, "seed": 0, "per_video": 10, "n_boot": 500},
    }


def _front_matter(card: str) -> dict:
    """The YAML front matter, parsed with PyYAML when installed, else by a small parser."""
    assert card.startswith("---\n")
    text = card.split("---\n", 2)[1]
    try:
        import yaml
    except ImportError:
        out, key = {}, None
        for line in text.splitlines():
            if line.startswith("- "):
                out[key].append(line[2:].strip().strip('"'))
            else:
                key, _, value = line.partition(":")
                out[key] = value.strip().strip('"') if value.strip() else []
        return out
    return yaml.safe_load(text)


def _section(card: str, name: str) -> str:
    start = card.index(f"\n## {name}\n")
    end = card.find("\n## ", start + 1)
    return card[start : end if end > 0 else None]


def test_sections_in_hugging_face_order():
    card = datacard.data_card(fake_results(), dataset_name="synthetic VENUS")
    positions = [card.find(f"\n## {s}\n") for s in datacard.SECTIONS]
    assert all(p > 0 for p in positions), [s for s, p in zip(datacard.SECTIONS, positions) if p < 0]
    assert positions == sorted(positions)
    assert card.index("\n# Dataset Card for synthetic VENUS") < positions[0]


def test_front_matter_parses():
    meta = _front_matter(datacard.data_card(fake_results(), dataset_name='odd "name": x', license="cc-by-nc-nd-4.0"))
    assert meta["pretty_name"] == 'odd "name": x'
    assert meta["license"] == "cc-by-nc-nd-4.0"
    assert meta["language"] == ["en"]
    assert meta["size_categories"] == ["1K<n<10K"]  # 1,234 segments
    assert "synthetic" in meta["tags"] and meta["task_categories"]


@pytest.mark.parametrize("n, label", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (89_459, "10K<n<100K"),
                                      (10**6, "1M<n<10M"), (None, "unknown")])  # fmt: skip
def test_size_category(n, label):
    assert datacard.size_category(n) == label


def test_bias_numbers_are_the_results():
    res = fake_results()
    section = _section(datacard.data_card(res, dataset_name="x"), "Bias, Risks, and Limitations")
    rep = res["bias"]["representation"]
    assert f"Gini coefficient of segments per channel {rep['channels']['gini']:.3f}" in section  # 0.612
    assert "40 channels" in section and "20.0 %" in section and "55.0 %" in section
    assert f"{100 * rep['talk_time']['speaker0_share_mean']:.1f} %" in section  # 56.8 %
    assert "13.6 %" in section and "4.1 % of utterances" in section
    assert "neutral 60.0 % (paper 63.79 %)" in section
    assert "2 group differences are flagged" in section
    assert "| channel_id | UCanimated00000000000000 | hand_speed | +81.2 % | [+51.0 %, +112.0 %] | 0.9900 | yes |" in section
    assert "**Confounded by quality**: 1 of the 1 flagged behaviour differences" in section


def test_synthetic_card_says_synthetic():
    card = datacard.data_card(fake_results("synthetic"), dataset_name="my sample")
    assert "# Dataset Card for my sample (synthetic)" in card
    assert "This card describes synthetic data" in card and "data_cards/synthetic_venus.md" in card
    assert "No estimator was run" in card


def test_real_card_names_the_pseudo_labels():
    card = datacard.data_card(fake_results("winston1214/VENUS-1K"), dataset_name="VENUS-1K", license="unknown")
    assert "synthetic data" not in card and "(synthetic)" not in card
    creation = _section(card, "Dataset Creation")
    for tool in ("WhisperX", "EMOCA", "OSX", "WildGuard", "pseudo-labels"):
        assert tool in creation
    assert "load_venus('winston1214/VENUS-1K')" in card
    assert datacard.data_card(fake_results("synthetic"), dataset_name="x", synthetic=False).count("synthetic data") == 0


def test_missing_pieces_are_stated():
    res = fake_results()
    res["cues"]["clusters"] = {}
    res["bias"]["flagged"] = []
    del res["cues"]["sentiment"]
    del res["meta"]
    card = datacard.data_card(res, dataset_name="x")
    assert "No group was flagged" in card
    assert "not computed for this card" in card
    assert "Sentence sentiment**: not measured" in card
    assert "The bias audit flagged no group difference." in card


def test_cluster_errors_and_the_paper_are_reported():
    card = datacard.data_card(fake_results(), dataset_name="x")
    assert "face: 6 clusters of 400 sampled frames" in card
    assert "body: not clustered (cluster_frames needs at least 10 frames)" in card
    assert "7 face and 8 body clusters" in card
    assert "arXiv" in _section(card, "Citation") and "2506.00958" in card


def test_how_it_was_made_and_empty_results():
    card = datacard.data_card(fake_results(), dataset_name="x", command="venus-mars analyze synthetic --out out",
                              date="2025-01-02")  # fmt: skip
    made = _section(card, "How This Card Was Made")
    assert "venus-mars analyze synthetic --out out" in made and "2025-01-02" in made
    from venus_analysis import __version__

    assert __version__ in made
    bare = datacard.data_card({"stats": {}, "cues": {}, "bias": {}}, dataset_name="empty")
    assert all(f"\n## {s}\n" in bare for s in datacard.SECTIONS) and "n/a" in bare


def test_table_cells_from_data_are_escaped():
    res = copy.deepcopy(fake_results())
    res["bias"]["flagged"][0]["group"] = "a|b<script>"
    card = datacard.data_card(res, dataset_name="x")
    assert "a\\|b&lt;script&gt;" in card and "<script>" not in card
