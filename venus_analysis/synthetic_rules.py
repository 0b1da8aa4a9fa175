"""The ground truth planted in the synthetic VENUS: cue-word rules and cue-dependent replies.

Everything the generator plants is written here as data, so analyses and tests can check
their findings against the truth, and ``data_cards/synthetic_venus.md`` describes the same
rules for people. Nothing here is a claim about real people: the real VENUS has no such
labels, and these rules are a teaching device.

Synthetic expression basis
--------------------------
FLAME's 50 expression coefficients are principal components with no official names. The
generator uses its own named directions in that space (``EXPRESSION_DIRECTIONS``): e.g. a
"smile" is +1.4 on coefficient 0 and +0.5 on coefficient 4. On real data these directions
mean nothing in particular; on synthetic data they are exactly what the generator wrote.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from . import schema


@dataclass(frozen=True)
class CueRule:
    """A planted association: saying one of ``triggers`` starts ``cue`` near the word."""

    name: str  # short id, e.g. "affirmation_nod"
    cue: str  # the motion produced: "nod", "head_shake", "frown", "hand_to_chin", ...
    triggers: tuple[str, ...]  # normalised trigger words (or two-word phrases)
    probability: float  # chance the cue fires at a trigger, before the speaker's gesture rate
    duration_s: float  # how long the cue lasts
    onset_s: float  # cue start relative to the trigger word's start (negative = before)
    description: str

    def to_dict(self) -> dict:
        """The rule as plain JSON-ready data."""
        return asdict(self)


CUE_RULES: tuple[CueRule, ...] = (
    CueRule("affirmation_nod", "nod", ("yes", "yeah", "right", "exactly", "sure", "absolutely"),
            0.85, 0.9, 0.0,
            "Affirmations come with a head nod: pitch oscillates about 2.5 times a second."),
    CueRule("negation_shake", "head_shake", ("no", "not", "never", "nope"),
            0.8, 0.9, 0.0,
            "Negations come with a head shake: yaw oscillates about twice a second."),
    CueRule("negation_frown", "frown", ("no", "not", "never", "nope"),
            0.8, 1.2, -0.1,
            "Negations also bring a frown (the synthetic 'frown' expression direction)."),
    CueRule("thinking_hand_to_chin", "hand_to_chin", ("i think", "well", "hmm", "maybe"),
            0.75, 1.8, -0.2,
            "'I think', 'well', 'hmm' and 'maybe' bring the right hand to the chin."),
    CueRule("laughter_smile", "smile", ("haha", "hahaha", "funny", "hilarious", "laughing"),
            0.9, 1.5, -0.1,
            "Laughter words come with a broad smile and a slightly open jaw."),
    CueRule("emphasis_beat", "beat", ("really", "very", "totally", "huge", "incredibly"),
            0.8, 0.8, -0.1,
            "Emphasis words come with beat gestures: quick down-strokes of the right hand."),
    CueRule("quote_air_quotes", "air_quotes", ("quote", "quotes", "so-called"),
            0.9, 1.2, 0.0,
            "'Quote' and 'so-called' come with air quotes: both hands up, two fingers flexing."),
    CueRule("uncertainty_shrug", "shrug", ("dunno", "whatever", "perhaps"),
            0.8, 1.0, 0.0,
            "'Dunno', 'whatever' and 'perhaps' come with a shrug: collars up, forearms out."),
)
CUES: tuple[str, ...] = tuple(dict.fromkeys(r.cue for r in CUE_RULES))
# Cues that are not tied to a word but run in the background at a per-speaker rate
# (so that a cue's base rate is not zero and co-occurrence lift is meaningful).
# The detected cue (``cues.CUE_NAMES``) that each planted cue shows up as: the detector
# names cues by what it measures, the generator by what it planted.
DETECTED_AS: dict[str, str] = {
    "nod": "nod", "head_shake": "head_shake", "frown": "frown", "hand_to_chin": "hand_to_face",
    "smile": "smile", "beat": "gesture", "air_quotes": "hand_raised",
}  # fmt: skip

BACKGROUND_CUES: dict[str, float] = {  # events per minute of speech at gesture rate 1.0
    "nod": 1.5, "beat": 2.0, "smile": 1.0, "head_shake": 0.5, "hand_to_chin": 0.3,
}  # fmt: skip

# Sentence sentiment drives a mild face, as the paper found frowning with negative speech.
SENTIMENT_FACE = {"positive": ("smile", 0.35), "negative": ("frown", 0.35)}
# Target shares of sentence sentiment (the paper's Figure: 63.79 / 17.36 / 18.85 %).
SENTIMENT_SHARES = {"neutral": 0.6379, "positive": 0.1736, "negative": 0.1885}

# Named directions in FLAME's 50-dim expression space (our convention, see module doc).
EXPRESSION_DIRECTIONS: dict[str, dict[int, float]] = {
    "smile": {0: 1.4, 4: 0.5, 7: 0.3},
    "frown": {0: -0.5, 2: 1.2, 5: 0.8, 9: -0.4},
    "surprise": {1: 1.0, 3: 0.8},
}


def expression_vector(name: str) -> np.ndarray:
    """(50,) expression-coefficient vector of a named synthetic direction."""
    v = np.zeros(schema.N_EXPRESSION, dtype=np.float64)
    for k, value in EXPRESSION_DIRECTIONS[name].items():
        v[k] = value
    return v


# ---------------------------------------------------------------------------------------
# Cue-dependent replies ("Do you know what time it is?" said smiling vs frowning)
# ---------------------------------------------------------------------------------------
AMBIGUOUS_PROMPTS: tuple[str, ...] = (
    "Do you know what time it is?",
    "So you read my message.",
    "That was quite a show last night.",
    "I saw what you posted.",
    "Guess who called me today.",
    "We need to talk about the schedule.",
    "You finished it already.",
    "So this is your new plan.",
)
# The prompt's manner decides the reply: warm (smile + open arms) or cold (frown + crossed
# arms). The words of the prompt are the same in both conditions.
PROMPT_MANNERS: dict[str, tuple[str, ...]] = {
    "warm": ("smile", "open_arms"),
    "cold": ("frown", "crossed_arms"),
}
REPLY_CATEGORY_FOR_MANNER = {"warm": "playful", "cold": "apologetic"}
REPLY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "playful": (
        "Haha, time for a coffee break I guess!",
        "Haha, yes, and I loved every minute of it.",
        "Oh yeah, that was great fun, we should do it again.",
        "Haha, I know, I know, I could not resist.",
        "Yes! I was hoping you would like it.",
    ),
    "apologetic": (
        "Sorry, I know I am late, it will not happen again.",
        "I am sorry, I should have told you first.",
        "You are right, that was a mistake, I apologize.",
        "Sorry about that, I will fix it today.",
        "I know, I know, I am really sorry about it.",
    ),
}
REPLY_CATEGORIES: tuple[str, ...] = tuple(REPLY_TEMPLATES)

_WORD_RE = re.compile(r"[^a-z0-9'\-]+")


def normalize_word(word: str) -> str:
    """Lower-case a transcript word and strip the punctuation WhisperX attaches to it."""
    return _WORD_RE.sub("", word.lower()).strip("'-")


def trigger_positions(words: list[str]) -> list[tuple[int, CueRule]]:
    """Where the planted rules fire in a list of words: (index of trigger start, rule).

    Two-word triggers ("i think") match at their first word. Every rule matching at a
    position is listed (a negation fires both the shake and the frown rule).
    """
    norm = [normalize_word(w) for w in words]
    hits = []
    for i, w in enumerate(norm):
        pair = f"{w} {norm[i + 1]}" if i + 1 < len(norm) else None
        for rule in CUE_RULES:
            if w in rule.triggers or (pair is not None and pair in rule.triggers):
                hits.append((i, rule))
    return hits


def rules_as_dict() -> dict:
    """All planted truth as JSON-ready data (written next to generated datasets)."""
    return {
        "cue_rules": [r.to_dict() for r in CUE_RULES],
        "background_cues_per_minute": BACKGROUND_CUES,
        "sentiment_face": {k: {"cue": v[0], "strength": v[1]} for k, v in SENTIMENT_FACE.items()},
        "sentiment_shares": SENTIMENT_SHARES,
        "expression_directions": {k: {str(i): x for i, x in v.items()} for k, v in EXPRESSION_DIRECTIONS.items()},
        "ambiguous_prompts": list(AMBIGUOUS_PROMPTS),
        "prompt_manners": {k: list(v) for k, v in PROMPT_MANNERS.items()},
        "reply_category_for_manner": REPLY_CATEGORY_FOR_MANNER,
        "reply_templates": {k: list(v) for k, v in REPLY_TEMPLATES.items()},
    }
