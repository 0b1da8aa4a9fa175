"""Sentence sentiment, measured offline with VADER, as the paper's sentiment figure.

The paper labelled every VENUS sentence as neutral, positive or negative and found
63.79 % / 17.36 % / 18.85 % (and that frowning co-occurs with negative sentences). Their
classifier is not named in the release, so this module uses a transparent, offline method
a student can inspect: VADER (Hutto & Gilbert, ICWSM 2014), a lexicon-and-rules model
whose ``vaderSentiment`` package ships its lexicon (nothing is downloaded at run time).

Rules (the numbers depend on them):

- sentences come from the word-level transcript: a sentence ends at a word whose last
  letter-or-digit is followed by ``.``, ``!`` or ``?`` (closing quotes and brackets after
  it are allowed); words after the last end form one more sentence. Each sentence keeps
  the start of its first word and the end of its last word, so cue events can be placed in
  it;
- a sentence is positive when VADER's compound score is at least +0.05, negative when it
  is at most -0.05, otherwise neutral (the thresholds the VADER authors recommend).

Expect a different split than the paper's on real data: VADER reads "hate" and "love"
but misses sarcasm and domain words, and podcast speech is mostly neutral small talk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from . import extraction

LABELS: tuple[str, ...] = ("neutral", "positive", "negative")
# The paper's sentence sentiment shares (Kim, Chung et al., ACL 2025, section 3).
PAPER_SHARES = {"neutral": 0.6379, "positive": 0.1736, "negative": 0.1885}
POSITIVE_AT = 0.05  # compound >= this: positive (VADER authors' recommended threshold)
NEGATIVE_AT = -0.05  # compound <= this: negative

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


@dataclass(frozen=True)
class SentenceSpan:
    """One sentence of an utterance: its text, first word index, word count and times (s)."""

    text: str
    first_word: int
    n_words: int
    start_time: float
    end_time: float


@lru_cache(maxsize=1)
def _analyzer():
    """The VADER analyser (its lexicon is read once per process)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as err:  # a declared dependency, but a Colab user may skip the install
        raise ImportError("sentence sentiment needs vaderSentiment: pip install vaderSentiment") from err
    return SentimentIntensityAnalyzer()


def compound_scores(texts) -> np.ndarray:
    """VADER's compound score in [-1, 1] of each text (0 for an empty text)."""
    analyzer = _analyzer()
    return np.array([analyzer.polarity_scores(t)["compound"] if t and t.strip() else 0.0 for t in texts], dtype=np.float64)


def label_scores(compound) -> np.ndarray:
    """Sentiment labels (``LABELS``) of compound scores, by the +-0.05 thresholds."""
    c = np.asarray(compound, dtype=np.float64)
    return np.where(c >= POSITIVE_AT, "positive", np.where(c <= NEGATIVE_AT, "negative", "neutral")).astype(object)


def classify(texts) -> list[str]:
    """The sentiment label of each text: ``"neutral"``, ``"positive"`` or ``"negative"``."""
    return list(label_scores(compound_scores(list(texts))))


def split_sentences(words: dict) -> list[SentenceSpan]:
    """Sentences of one utterance's word list (``{"word", "start_time", "end_time"}``).

    A sentence ends at a word ending in ``.``, ``!`` or ``?`` (optionally followed by
    closing quotes or brackets); trailing words without an end form the last sentence.
    Raises ValueError when the three lists differ in length.
    """
    w = list(words.get("word") or [])
    starts, ends = list(words.get("start_time") or []), list(words.get("end_time") or [])
    if not (len(w) == len(starts) == len(ends)):
        raise ValueError(f"words: word/start_time/end_time have {len(w)}/{len(starts)}/{len(ends)} entries; expected equal lengths")
    spans, first = [], 0
    for i, word in enumerate(w):
        if _SENTENCE_END.search(str(word)) or i == len(w) - 1:
            spans.append(SentenceSpan(" ".join(str(x) for x in w[first:i + 1]), first, i + 1 - first,
                                      float(starts[first]), float(ends[i])))  # fmt: skip
            first = i + 1
    return spans


def sentence_table(data, *, progress: bool = False) -> pd.DataFrame:
    """One row per sentence of a dataset split, with its VADER score and label.

    Streams over ``data`` (a split, an Arrow table or rows) one segment at a time.
    Columns: video_id, segment_id, utterance_id, speaker, sentence (index in the
    utterance), start_time, end_time, n_words, text, compound, sentiment. Utterances
    without a word list are skipped (they have no sentence times).
    """
    from tqdm.auto import tqdm

    records = []
    rows, total = extraction.segment_rows(data)
    for row in tqdm(rows, total=total, unit="segment", desc="sentiment", disable=not progress):
        conv = extraction.conversation_of(row) or {}
        video_id, segment_id = extraction.row_value(row, "video_id"), extraction.row_value(row, "segment_id")
        for uid, speaker, words in zip(conv.get("utterance_id", []), conv.get("speaker", []), conv.get("words") or []):
            if not words:
                continue
            for k, s in enumerate(split_sentences(words)):
                records.append((video_id, segment_id, int(uid), speaker, k, s.start_time, s.end_time, s.n_words, s.text))
    columns = ["video_id", "segment_id", "utterance_id", "speaker", "sentence", "start_time", "end_time", "n_words", "text"]
    df = pd.DataFrame(records, columns=columns)
    df["compound"] = compound_scores(df["text"].tolist())
    df["sentiment"] = label_scores(df["compound"].to_numpy())
    return df


def sentiment_shares(labels) -> pd.DataFrame:
    """Counts and shares of each label next to the paper's shares (one row per label)."""
    counts = pd.Series(list(labels), dtype=object).value_counts()
    n = int(counts.sum())
    return pd.DataFrame(
        {
            "sentiment": list(LABELS),
            "n": [int(counts.get(s, 0)) for s in LABELS],
            "share": [counts.get(s, 0) / n if n else float("nan") for s in LABELS],
            "paper_share": [PAPER_SHARES[s] for s in LABELS],
        }
    )
