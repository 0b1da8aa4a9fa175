"""Words and motion codes in one token sequence, and back.

MARS lets a language model read and write motion by putting the tokenizers' codes among
the words, in the order things happen. One utterance becomes a list of tokens: its words
and one ``<FACE_k><BODY_k>`` pair per 8 frames (0.32 s) of the speaker's motion.

The rule (the paper, and the details of its released code)
-----------------------------------------------------------
1. A word happens at its start frame ``int(t * 25)`` (``t``: seconds from the segment
   start), clipped to the utterance's frames ``[int(start * 25), int(end * 25)]``.
2. Motion pair ``i`` (face code ``i``, body code ``i``: frames ``8i .. 8i+7`` of the
   utterance) happens at the ``8i``-th stored frame of the utterance, ``frames[8 * i]``.
   Stored frames can have gaps (the active-speaker detector misses a run), so this is the
   frame *index* the track holds there, not ``start + 8i``.
3. Everything is sorted by frame; on a tie the word comes first; each word once.
4. Pairs that cannot be placed (their frame lies after the utterance's end, or there is no
   ``8i``-th stored frame) go at the end, in order: the "leftover" pairs.

A worked example: an utterance from 1.00 s to 1.60 s (frames 25..40) that stores frames
25..40 (16 frames, two pairs), saying "so" at 1.00 s and "yes" at 1.32 s (frame 33)::

    events by frame:  25 "so"   25 pair 0   33 "yes"   33 pair 1
    tokens:           so  <FACE_3> <BODY_17>  yes  <FACE_4> <BODY_2>

Pair 0 ties with "so" at frame 25 and pair 1 with "yes" at frame 33: the words go first.

Where we differ from the released code, on purpose (the first three never happen on the
synthetic data, whose frames and words lie inside their utterances; the last one does):

- a pair whose frame lies *before* the utterance's start is placed at the start (like a
  word); the released code leaves it out and, because it then emits only pairs after the
  last one emitted, loses it for good;
- a word starting after the utterance's end is clipped to the end; the released code
  drops it;
- word frames are made non-decreasing (``np.maximum.accumulate``; a missing time takes
  the previous word's frame), so the words always keep their spoken order;
- the released code trims the stored frames to those between the frames closest to the
  utterance's start and end, and places pairs only while ``i < len(frames) // 8``; we use
  all stored frames, the ones the codes were computed from, and place pair ``i`` while
  ``8i < len(frames)`` (a short last block is placed, not left over).

The text form (what the language model reads; the paper did not release its own)
----------------------------------------------------------------------------------
:func:`render` writes motion tokens with no space around them and puts one space before
every word, then strips the leading space::

    ["<FACE_3>", "<BODY_17>", "Hello", "<FACE_4>", "<BODY_2>", "world"]
    -> "<FACE_3><BODY_17> Hello<FACE_4><BODY_2> world"

Byte-level BPE tokenizers (GPT-2, Llama 3, Qwen) fold the space into the word's token
(" Hello"), so the words are tokenized as in ordinary text, and the motion tokens, added as
special tokens, never swallow a space. :func:`parse` reads any text back, including what a
language model makes up: words glued to tokens (``"hi<FACE_1>"``), lone face or body
tokens and malformed ones (``<FACE_x>``) are counted and skipped, never raised on.
Words containing whitespace or looking like motion tokens do not survive the round trip.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from venus_analysis import schema

FACE_TOKEN = "<FACE_{}>"
BODY_TOKEN = "<BODY_{}>"
SPEECH_RATE = 2.5  # words per second assumed for words after the last motion pair (timeline)


def motion_token_names(k_face: int, k_body: int) -> list[str]:
    """The ``k_face + k_body`` new tokens: ``<FACE_0> .. <FACE_{k_face-1}>``, then the BODY ones."""
    return [FACE_TOKEN.format(k) for k in range(k_face)] + [BODY_TOKEN.format(k) for k in range(k_body)]


@functools.lru_cache(maxsize=8)
def _names(template: str, n: int) -> np.ndarray:
    """Object array of ``template.format(k)`` for k < n, to turn codes into strings by indexing."""
    return np.array([template.format(k) for k in range(n)], dtype=object)


def _token_strings(template: str, codes: np.ndarray) -> np.ndarray:
    """Codes -> token strings, vectorised (the name table grows in powers of two)."""
    if len(codes) == 0:
        return np.empty(0, dtype=object)
    top = int(codes.max())
    if top >= 1 << 16:  # absurd codes: no table that big
        return np.array([template.format(k) for k in codes.tolist()], dtype=object)
    size = 1 << max(top, 511).bit_length()  # 512, 1024, ...: few cached tables
    return _names(template, size)[codes]


def _codes(values, name: str) -> np.ndarray:
    """A 1-D int64 array of non-negative codes, or a ValueError naming the argument."""
    codes = np.asarray(values)
    if codes.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of codes; got shape {codes.shape}")
    if codes.dtype.kind not in "iu" and len(codes):
        raise ValueError(f"{name} must hold integer codes; got dtype {codes.dtype}")
    codes = codes.astype(np.int64, copy=False)
    if len(codes) and codes.min() < 0:
        raise ValueError(f"{name} holds negative codes (padding?) at {np.flatnonzero(codes < 0)[:5].tolist()}; "
                         "pass only the real steps of the utterance")  # fmt: skip
    return codes


# ---------------------------------------------------------------------------------------
# Words + codes -> tokens
# ---------------------------------------------------------------------------------------
@dataclass
class Interleaved:
    """One interleaved utterance: the token list and what happened to its words and pairs."""

    tokens: list[str]
    n_words: int
    n_pairs: int  # face/body pairs in the tokens (placed + leftover)
    n_leftover: int  # pairs that could not be placed by time and went at the end
    n_truncated_pairs: int = 0  # pairs the utterance's frames would give beyond the codes given
    n_truncated_frames: int = 0  # stored frames not covered by any code (cut by the 512 window)
    n_before_start: int = 0  # pairs whose frame lay before the utterance's start (placed at it)


def word_frames(word_starts, first: int, last: int, fps: int = schema.FPS) -> np.ndarray:
    """Start frame of every word: ``int(t * fps)`` clipped to ``[first, last]``, non-decreasing.

    A missing (NaN/None) time takes the previous word's frame (the first word: ``first``).
    """
    t = np.asarray(word_starts, dtype=np.float64).ravel()  # None becomes NaN
    frames = np.trunc(t * fps)  # int(t * 25) truncates towards zero, as the released code does
    frames = np.fmax(frames, first)  # rule 1, not before the start; fmax(NaN, first) is first
    np.minimum(frames, last, out=frames)  # ... nor after the end (np.clip costs 10x more)
    return np.maximum.accumulate(frames.astype(np.int64))  # words keep their order; NaN: the previous


def interleave_utterance(
    words,
    word_starts,
    utt_start: float,
    utt_end: float,
    frames,
    face_codes,
    body_codes,
    *,
    frames_per_token: int = schema.FRAMES_PER_TOKEN,
    fps: int = schema.FPS,
) -> Interleaved:
    """Interleave one utterance's words with its motion pairs by time (see the module doc).

    ``words`` / ``word_starts``: the words and their start times (seconds from the segment
    start); ``utt_start`` / ``utt_end``: the utterance's times; ``frames``: its stored frame
    indices, ascending (gaps allowed); ``face_codes`` / ``body_codes``: its codes, one per
    ``frames_per_token`` stored frames from the first (``L`` each; fewer than
    ``ceil(len(frames) / 8)`` when the 512-frame window cut the utterance, counted in
    ``n_truncated_*``). No Python loop over words or frames: one ``searchsorted`` each way.
    """
    words = words if isinstance(words, list) else list(words)
    face, body = _codes(face_codes, "face_codes"), _codes(body_codes, "body_codes")
    if len(face) != len(body):
        raise ValueError(f"face_codes and body_codes must pair up; got {len(face)} and {len(body)} codes")
    if len(word_starts) != len(words):
        raise ValueError(f"got {len(words)} words but {len(word_starts)} start times")
    frames = np.asarray(frames, dtype=np.int64).ravel()
    first = int(utt_start * fps)  # the utterance's frame range, as the released code computes it
    last = max(int(utt_end * fps), first)
    wf = word_frames(word_starts, first, last, fps)

    # Rule 2: pair i sits at the 8i-th stored frame, while there is one and it is not after the end.
    n, n_words = len(face), len(words)
    has_frame = min(n, -(-len(frames) // frames_per_token))  # pairs i with 8i < len(frames)
    pf = frames[: frames_per_token * has_frame : frames_per_token]  # frames[8i], ascending
    n_placed = int(pf.searchsorted(last, side="right"))  # the pairs at or before the end: a prefix
    pf = pf[:n_placed]
    n_before = int(pf.searchsorted(first, side="left"))
    if n_before:
        pf = np.maximum(pf, first)  # before the start: at the start (as words are clipped)

    # Rule 3 as positions in the output: a pair follows every word at or before its frame
    # (ties go to the word: side="right"), a word follows every pair strictly before it.
    k = np.arange(max(n, n_words))
    pair_pos = 2 * k[:n]  # each earlier pair holds two places ...
    pair_pos[:n_placed] += wf.searchsorted(pf, side="right")  # ... and each word at or before it one
    pair_pos[n_placed:] += n_words  # rule 4: leftovers after every word
    word_pos = k[:n_words] + 2 * pf.searchsorted(wf, side="left")
    out = np.empty(n_words + 2 * n, dtype=object)
    out[word_pos] = words
    out[pair_pos] = _token_strings(FACE_TOKEN, face)
    out[pair_pos + 1] = _token_strings(BODY_TOKEN, body)  # face and body always adjacent

    expected = -(-len(frames) // frames_per_token)  # ceil: pairs the stored frames would give
    return Interleaved(
        tokens=out.tolist(),
        n_words=len(words),
        n_pairs=n,
        n_leftover=n - n_placed,
        n_truncated_pairs=max(expected - n, 0),
        n_truncated_frames=max(len(frames) - frames_per_token * n, 0),
        n_before_start=n_before,
    )


# ---------------------------------------------------------------------------------------
# Tokens <-> text
# ---------------------------------------------------------------------------------------
# Anything shaped like a motion token; group 1 is FACE or BODY, group 2 what follows "_".
_MOTION_LIKE = re.compile(r"<(FACE|BODY)_([^<>\s]*)>")


def is_motion_token(token: str) -> bool:
    """True for a well-formed ``<FACE_k>`` or ``<BODY_k>``."""
    m = _MOTION_LIKE.fullmatch(token)
    return bool(m) and m.group(2).isdigit()


def render(tokens) -> str:
    """The text of a token list: motion tokens without spaces, one space before each word,
    the leading space stripped (see the module doc)."""
    return "".join(t if is_motion_token(t) else " " + t for t in tokens).lstrip(" ")


def strip_motion(text: str) -> str:
    """``text`` without motion tokens (malformed ones included), whitespace collapsed: the
    input of the "cues masked" ablation."""
    return " ".join(_MOTION_LIKE.sub(" ", text).split())


@dataclass
class Parsed:
    """What :func:`parse` read from a text."""

    words: list[str]
    face: np.ndarray  # (P,) int64 face code of every well-formed pair
    body: np.ndarray  # (P,) int64 body code of every pair
    words_before: np.ndarray  # (P,) int64 number of words emitted before pair i
    text: str  # the words joined by single spaces
    n_unpaired_face: int = 0  # a FACE token not directly followed by a BODY token
    n_unpaired_body: int = 0  # a BODY token not directly preceded by a FACE token
    n_malformed: int = 0  # <FACE_...>/<BODY_...> whose code is not a (valid) number

    @property
    def n_pairs(self) -> int:
        """Well-formed face/body pairs."""
        return len(self.face)

    @property
    def n_bad(self) -> int:
        """Malformed and unpaired pieces skipped."""
        return self.n_unpaired_face + self.n_unpaired_body + self.n_malformed


def parse(text: str, codebook_size: int | None = None) -> Parsed:
    """Read words and face/body pairs back from a text; never raises on what a model writes.

    A pair is a ``<FACE_i>`` followed directly (only whitespace between) by a ``<BODY_j>``.
    Lone FACE or BODY tokens are counted (``n_unpaired_*``) and skipped; malformed tokens
    (``<FACE_x>``, a code >= ``codebook_size`` when given) are counted (``n_malformed``) and
    dropped first, as if absent. Words are the whitespace-separated pieces between tokens.
    """
    words: list[str] = []
    face, body, before = [], [], []
    pending = None  # the code of a FACE token waiting for its BODY
    unpaired_face = unpaired_body = malformed = 0
    pos = 0
    for m in _MOTION_LIKE.finditer(text):  # a loop over tokens, not characters
        between = text[pos : m.start()].split()
        pos = m.end()
        if between and pending is not None:  # a word came between FACE and BODY
            unpaired_face, pending = unpaired_face + 1, None
        words += between
        kind, code = m.group(1), m.group(2)
        if not code.isdigit() or (codebook_size is not None and int(code) >= codebook_size):
            malformed += 1
            continue
        if kind == "FACE":
            unpaired_face += pending is not None  # FACE after FACE: the first one is lone
            pending = int(code)
        elif pending is None:
            unpaired_body += 1
        else:
            face.append(pending), body.append(int(code)), before.append(len(words))
            pending = None
    unpaired_face += pending is not None
    words += text[pos:].split()
    return Parsed(
        words=words,
        face=np.array(face, dtype=np.int64),
        body=np.array(body, dtype=np.int64),
        words_before=np.array(before, dtype=np.int64),
        text=" ".join(words),
        n_unpaired_face=unpaired_face,
        n_unpaired_body=unpaired_body,
        n_malformed=malformed,
    )


def timeline(parsed: Parsed, frames_per_token: int = schema.FRAMES_PER_TOKEN, fps: int = schema.FPS):
    """When each parsed word is said, if pair ``i`` covers frames ``8i .. 8i+7``.

    A word emitted before pair ``i`` (and after pair ``i-1``) is said at frame ``8i``: by the
    interleaving rule it started in ``(8(i-1), 8i]``, and ``8i`` is that span's end. Words
    after the last pair follow the motion at :data:`SPEECH_RATE` words per second.
    Returns ``(word_times_s (W,) float64, n_frames)``, ``n_frames = 8 * pairs`` (the motion).
    """
    n_pairs = parsed.n_pairs
    k = np.arange(len(parsed.words))
    pair = np.searchsorted(parsed.words_before, k, side="right")  # first pair emitted after word k
    times = pair * frames_per_token / fps
    tail = pair >= n_pairs  # no pair after the word: it follows the motion at the speech rate
    times[tail] = n_pairs * frames_per_token / fps + np.arange(int(tail.sum())) / SPEECH_RATE
    return times.astype(np.float64), n_pairs * frames_per_token
