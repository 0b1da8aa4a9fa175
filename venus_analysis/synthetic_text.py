"""Words for the synthetic VENUS: topics, sentences with a sentiment, and word timestamps.

A small grammar fills sentence frames with topic vocabulary. Each sentence carries one of
three sentiments in the paper's proportions (``synthetic_rules.SENTIMENT_SHARES``); the
planted trigger words (affirmations, negations, "I think", laughter, emphasis, "quote",
shrug words) are woven in so that the motion generator has something to react to. Words
come out as WhisperX writes them: capitalised at a sentence start and with punctuation
attached ("Yeah," "it.").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import synthetic_rules as rules

TOPICS: dict[str, dict[str, list[str]]] = {
    "interview": {
        "noun": ["career", "first job", "interview", "manager", "team", "startup", "book", "childhood"],
        "title": ["Interview with a founder", "An honest interview", "The long interview"],
    },
    "life": {
        "noun": ["family", "morning routine", "apartment", "weekend", "friendship", "kids", "move"],
        "title": ["Life lately", "Real life talk", "Life advice hour"],
    },
    "recap": {
        "noun": ["episode", "finale", "season", "plot twist", "last week", "cliffhanger", "villain"],
        "title": ["Weekly recap", "Episode recap and reactions", "The recap show"],
    },
    "sports": {
        "noun": ["game", "coach", "draft", "season opener", "trade", "playoffs", "referee"],
        "title": ["Sports talk", "Game night breakdown", "The locker room"],
    },
    "tech": {
        "noun": ["phone", "update", "startup", "robot", "battery", "laptop", "app", "server"],
        "title": ["Tech talk", "Gadgets and code", "The tech review"],
    },
    "movies": {
        "noun": ["movie", "director", "trailer", "soundtrack", "ending", "sequel", "cast"],
        "title": ["Movie night", "Film club", "Cinema chat"],
    },
    "business": {
        "noun": ["market", "budget", "deal", "client", "pitch", "quarter", "meeting", "investor"],
        "title": ["Business hour", "Money and markets", "The founders talk"],
    },
    "health": {
        "noun": ["workout", "diet", "sleep", "doctor", "run", "habit", "recovery", "stretch"],
        "title": ["Health and habits", "The wellness talk", "Fitness chat"],
    },
}
TOPIC_NAMES = tuple(TOPICS)

_PEOPLE = ["my brother", "my sister", "our producer", "a friend", "my neighbor", "the host",
           "my mom", "my dad", "a listener", "my partner", "our guest", "the team"]  # fmt: skip
_TIMES = ["yesterday", "last week", "this morning", "on Sunday", "last year", "today", "recently"]
_PLACES = ["studio", "park", "office", "gym", "city", "cafe", "airport", "stadium"]
_NEUTRAL_ADJ = ["different", "new", "long", "small", "strange", "complicated", "normal", "busy"]
_POS_ADJ = ["great", "amazing", "wonderful", "fantastic", "awesome", "beautiful", "excellent"]
_NEG_ADJ = ["terrible", "awful", "horrible", "sad", "painful", "frustrating", "disappointing"]

_NEUTRAL_FRAMES = [
    "So {person} told me about the {noun} {time}.",
    "We talked about the {noun} with {person}.",
    "The {noun} is {nadj} for most people.",
    "And then we went to the {place} to see the {noun}.",
    "What do you think about the {noun}?",
    "It depends on the {noun} and the {noun2}.",
    "I was at the {place} {time} with {person}.",
    "The {noun} took a {nadj} amount of time.",
    "Let me tell you about the {noun}.",
    "There is a {nadj} story behind the {noun}.",
    "How did the {noun} start for you?",
    "We should look at the {noun} again.",
]
_POSITIVE_FRAMES = [
    "I love the {noun}, it was {padj}.",
    "That {noun} was {padj}, honestly.",
    "We had a {padj} time with {person}.",
    "The {noun} made me so happy.",
    "It was a {padj} {noun}, I enjoyed it.",
    "Thanks to {person} the {noun} was {padj}.",
]
_NEGATIVE_FRAMES = [
    "The {noun} was {nadj2} and I was upset.",
    "I hate when the {noun} goes wrong.",
    "It was a {nadj2} {time} for {person}.",
    "No, the {noun} was a {nadj2} mess.",
    "I do not like the {noun} at all.",
    "That was not a good {noun}, it was {nadj2}.",
    "I never liked the {noun}, it makes me angry.",
    "Nope, the {noun} failed and I was worried.",
]
# Openers and insertions that carry the planted triggers, by sentiment.
_OPENERS = {
    "neutral": [("Yeah,", 0.10), ("Right,", 0.04), ("Well,", 0.10), ("I think", 0.10),
                ("Hmm,", 0.03), ("Maybe", 0.04), ("Perhaps", 0.04), ("Dunno,", 0.03)],
    "positive": [("Yeah,", 0.20), ("Haha,", 0.18), ("Exactly,", 0.08), ("Absolutely,", 0.05),
                 ("I think", 0.08), ("Sure,", 0.05)],
    "negative": [("No,", 0.12), ("Well,", 0.08), ("I think", 0.06), ("Whatever,", 0.06)],
}  # fmt: skip
_EMPHASIS = ["really", "very", "totally", "incredibly"]
# Backchannels: the listener's short turns ("Yes, exactly."), with a sentiment and a weight.
# Most carry an affirmation (a nod), a few a negation (a head shake and a frown), laughter
# or "I think"; "Mm-hm." carries no trigger at all.
BACKCHANNELS: tuple[tuple[str, str, float], ...] = (
    ("Yes, exactly.", "neutral", 0.22), ("Yeah, exactly.", "neutral", 0.10), ("Yeah.", "neutral", 0.10),
    ("Right, right.", "neutral", 0.08), ("Exactly.", "neutral", 0.08), ("Sure, sure.", "neutral", 0.05),
    ("Absolutely.", "positive", 0.05), ("Haha, yeah.", "positive", 0.07), ("Mm-hm.", "neutral", 0.07),
    ("No, never.", "negative", 0.08), ("Nope, not really.", "negative", 0.05),
    ("Hmm, I think so.", "neutral", 0.05),
)  # fmt: skip


@dataclass
class Sentence:
    """One generated sentence: its words (as transcribed) and its sentiment label."""

    words: list[str]
    sentiment: str


def make_sentence(rng: np.random.Generator, topic: str) -> Sentence:
    """Draw one sentence about ``topic`` with a sentiment in the paper's proportions."""
    shares = rules.SENTIMENT_SHARES
    sentiment = rng.choice(list(shares), p=list(shares.values()))
    frames = {"neutral": _NEUTRAL_FRAMES, "positive": _POSITIVE_FRAMES, "negative": _NEGATIVE_FRAMES}
    frame = frames[sentiment][rng.integers(len(frames[sentiment]))]
    nouns = TOPICS[topic]["noun"]
    pick = lambda xs: xs[rng.integers(len(xs))]  # noqa: E731
    adj_pos, adj_neg = pick(_POS_ADJ), pick(_NEG_ADJ)
    if rng.random() < 0.3:  # emphasis before an adjective ("really great")
        adj_pos, adj_neg = f"{pick(_EMPHASIS)} {adj_pos}", f"{pick(_EMPHASIS)} {adj_neg}"
    noun = pick(nouns)
    if rng.random() < 0.06:  # "the, quote, plan" / "the so-called plan"
        noun = f"quote {noun}" if rng.random() < 0.6 else f"so-called {noun}"
    text = frame.format(
        noun=noun, noun2=pick(nouns), person=pick(_PEOPLE), time=pick(_TIMES),
        place=pick(_PLACES), nadj=pick(_NEUTRAL_ADJ), padj=adj_pos, nadj2=adj_neg,
    )  # fmt: skip
    for opener, p in _OPENERS[sentiment]:
        if rng.random() < p:
            keep = text.startswith(("I ", "I'"))  # "Well, I think", not "Well, i think"
            text = f"{opener} {text if keep else text[0].lower() + text[1:]}"
            break
    words = text.split()
    words[0] = words[0][0].upper() + words[0][1:]
    for i in range(len(words) - 1):  # "a amazing" -> "an amazing"
        if words[i].lower() == "a" and words[i + 1][0].lower() in "aeiou":
            words[i] += "n"
    return Sentence(words=words, sentiment=str(sentiment))


def make_backchannel(rng: np.random.Generator) -> Sentence:
    """Draw one backchannel (``BACKCHANNELS``, by weight): a one-sentence listener turn."""
    weights = np.array([w for _, _, w in BACKCHANNELS])
    said, sentiment, _ = BACKCHANNELS[rng.choice(len(BACKCHANNELS), p=weights / weights.sum())]
    return Sentence(words=said.split(), sentiment=sentiment)


def sentences_from_text(text: str, sentiment: str = "neutral") -> list[Sentence]:
    """A fixed text (the ambiguous prompts and the replies) as ``Sentence``s, one per
    sentence (split after words ending in . ! or ?), all with the given sentiment."""
    out, words = [], []
    for w in text.split():
        words.append(w)
        if w[-1] in ".!?":
            out.append(Sentence(words=words, sentiment=sentiment))
            words = []
    if words:
        out.append(Sentence(words=words, sentiment=sentiment))
    return out


def time_words(
    rng: np.random.Generator, sentences: list[Sentence], start: float, words_per_second: float
) -> tuple[list[str], np.ndarray, np.ndarray, list[int]]:
    """Lay sentences out in time from ``start`` at a speaker's speech rate.

    Word durations grow with word length; a short pause follows each sentence. Returns the
    words, their start and end times (seconds) and, per word, the index of its sentence.
    """
    words, sent_of_word = [], []
    for k, s in enumerate(sentences):
        words += s.words
        sent_of_word += [k] * len(s.words)
    lengths = np.array([len(w) for w in words], dtype=float)
    # Durations proportional to 0.6 + 0.08 * letters, scaled so the mean rate is the target.
    raw = 0.6 + 0.08 * lengths
    durations = raw / raw.mean() / words_per_second * rng.uniform(0.85, 1.15, len(words))
    gaps = np.full(len(words), 0.02)
    last_of_sentence = np.r_[np.diff(sent_of_word) != 0, False]
    gaps[last_of_sentence] = rng.uniform(0.2, 0.6, last_of_sentence.sum())  # sentence pauses
    starts = start + np.r_[0.0, np.cumsum(durations + gaps)[:-1]]
    ends = starts + durations
    return words, np.round(starts, 3), np.round(ends, 3), sent_of_word


def make_title(rng: np.random.Generator, channel_name: str, topic: str, episode: int) -> str:
    """A video title that names its topic, as the paper derived topics from titles."""
    base = TOPICS[topic]["title"][rng.integers(len(TOPICS[topic]["title"]))]
    return f"{channel_name} #{episode}: {base} ({topic})"
