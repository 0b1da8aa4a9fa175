"""Sentence sentiment with VADER: sentence splitting, labels, and agreement with the
synthetic truth's sentence labels."""

from __future__ import annotations

import pandas as pd
import pytest

from venus_analysis import sentiment


def _words(text: str, start: float = 0.0, step: float = 0.3) -> dict:
    w = text.split()
    return {"word": w, "start_time": [start + i * step for i in range(len(w))],
            "end_time": [start + i * step + 0.25 for i in range(len(w))]}  # fmt: skip


def test_split_sentences_at_end_punctuation_with_times():
    spans = sentiment.split_sentences(_words('Hi there. "Really?!" he said and then'))
    assert [s.text for s in spans] == ["Hi there.", '"Really?!"', "he said and then"]
    assert [s.first_word for s in spans] == [0, 2, 3]
    assert spans[1].start_time == pytest.approx(0.6) and spans[1].end_time == pytest.approx(0.85)
    assert sentiment.split_sentences({"word": [], "start_time": [], "end_time": []}) == []


def test_split_sentences_rejects_ragged_word_lists():
    with pytest.raises(ValueError, match="3/2/3 entries"):
        sentiment.split_sentences({"word": ["a", "b", "c"], "start_time": [0, 1], "end_time": [0, 1, 2]})


def test_labels_follow_the_vader_thresholds():
    labels = sentiment.classify(["I love this, it is wonderful.", "I hate this, it is awful.", "The table is made of wood.", ""])
    assert labels == ["positive", "negative", "neutral", "neutral"]
    assert list(sentiment.label_scores([0.05, 0.049, -0.05, -0.049])) == ["positive", "neutral", "negative", "neutral"]


def test_shares_table_sits_next_to_the_paper():
    table = sentiment.sentiment_shares(["neutral"] * 6 + ["positive"] * 3 + ["negative"])
    assert list(table["sentiment"]) == ["neutral", "positive", "negative"]
    assert list(table["n"]) == [6, 3, 1]
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.set_index("sentiment").loc["negative", "paper_share"] == pytest.approx(0.1885)


def test_vader_agrees_with_the_planted_sentence_labels(synth, truth):
    table = sentiment.sentence_table(synth["train"])
    planted = pd.DataFrame(truth.sentences)
    planted = planted[planted["split"] == "train"]
    both = table.merge(planted, on=["video_id", "segment_id", "utterance_id", "sentence"], suffixes=("", "_true"))
    # Every generated sentence is found, with its word times.
    assert len(both) == len(planted) == len(table)
    assert (both["start_time"] - both["start_time_true"]).abs().max() < 1e-6
    agreement = (both["sentiment"] == both["sentiment_true"]).mean()
    assert agreement > 0.7, agreement  # ~0.8: VADER reads "friend", "yeah", "well" as positive
    by_true = both.groupby("sentiment_true")["sentiment"].agg(lambda s: s.value_counts().idxmax())
    assert by_true.to_dict() == {"negative": "negative", "neutral": "neutral", "positive": "positive"}
