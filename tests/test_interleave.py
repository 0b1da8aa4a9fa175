"""Interleaving words with motion codes: the paper's rule, the text form, parsing back."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_mars.interleave import (
    BODY_TOKEN,
    FACE_TOKEN,
    interleave_utterance,
    is_motion_token,
    motion_token_names,
    parse,
    render,
    strip_motion,
    timeline,
)


def oracle(words, starts, utt_start, utt_end, frames, face, body, fpt=8, fps=25):
    """The rule written plainly: an event list sorted by (frame, word first, index)."""
    first = int(utt_start * fps)
    last = max(int(utt_end * fps), first)
    events, prev = [], first
    for i, (w, t) in enumerate(zip(words, starts)):
        f = first if t is None or math.isnan(t) else int(t * fps)
        f = max(min(max(f, first), last), prev)  # clipped, and never before the previous word
        prev = f
        events.append((f, 0, i, [w]))
    placed = 0
    for i in range(len(face)):
        if fpt * i >= len(frames) or frames[fpt * i] > last:
            break
        events.append((max(int(frames[fpt * i]), first), 1, i, [FACE_TOKEN.format(face[i]), BODY_TOKEN.format(body[i])]))
        placed += 1
    events.sort(key=lambda e: e[:3])
    tokens = [t for e in events for t in e[3]]
    for i in range(placed, len(face)):
        tokens += [FACE_TOKEN.format(face[i]), BODY_TOKEN.format(body[i])]
    return tokens


def split_tokens(tokens):
    """(words, face codes, body codes, pairs adjacent?) of a token list."""
    words = [t for t in tokens if not is_motion_token(t)]
    face = [int(t[6:-1]) for t in tokens if t.startswith("<FACE_")]
    body = [int(t[6:-1]) for t in tokens if t.startswith("<BODY_")]
    adjacent = all(
        (t.startswith("<FACE_") and tokens[i + 1].startswith("<BODY_"))
        or (t.startswith("<BODY_") and tokens[i - 1].startswith("<FACE_"))
        for i, t in enumerate(tokens)
        if is_motion_token(t)
    )
    return words, face, body, adjacent


def test_worked_example_of_the_docstring():
    r = interleave_utterance(["so", "yes"], [1.0, 1.32], 1.0, 1.6, np.arange(25, 41), [3, 4], [17, 2])
    assert r.tokens == ["so", "<FACE_3>", "<BODY_17>", "yes", "<FACE_4>", "<BODY_2>"]
    assert (r.n_words, r.n_pairs, r.n_leftover, r.n_truncated_frames) == (2, 2, 0, 0)
    assert render(r.tokens) == "so<FACE_3><BODY_17> yes<FACE_4><BODY_2>"


def test_render_format():
    tokens = ["<FACE_3>", "<BODY_17>", "Hello", "<FACE_4>", "<BODY_2>", "world"]
    assert render(tokens) == "<FACE_3><BODY_17> Hello<FACE_4><BODY_2> world"
    assert motion_token_names(2, 3) == ["<FACE_0>", "<FACE_1>", "<BODY_0>", "<BODY_1>", "<BODY_2>"]


def test_gaps_ties_leftovers_and_truncation():
    frames = np.r_[100:108, 120:140]  # 28 stored frames with a gap: pairs at 100, 120, 128, 136
    r = interleave_utterance(["a", "b", "c"], [4.0, 4.8, 5.2], 4.0, 5.2, frames, [1, 2, 3, 4], [5, 6, 7, 8])
    # "a" ties pair 0 at frame 100, "b" ties pair 1 at frame 120 (the gap shifts it), "c" is
    # at the end frame 130; pair 3 at frame 136 is after the end: a leftover
    assert r.tokens == ["a", "<FACE_1>", "<BODY_5>", "b", "<FACE_2>", "<BODY_6>", "<FACE_3>", "<BODY_7>",
                        "c", "<FACE_4>", "<BODY_8>"]  # fmt: skip
    assert r.n_leftover == 1
    long = interleave_utterance(["x"], [0.0], 0.0, 30.0, np.arange(530), np.zeros(64, int), np.zeros(64, int))
    assert (long.n_pairs, long.n_truncated_pairs, long.n_truncated_frames) == (64, 3, 18)


def test_pairs_before_the_start_are_placed_at_it_after_the_words():
    r = interleave_utterance(["hi"], [1.0], 1.0, 2.0, np.arange(20, 40), [7, 8, 9], [1, 2, 3])
    assert r.tokens[:3] == ["hi", "<FACE_7>", "<BODY_1>"] and r.n_before_start == 1 and r.n_leftover == 0


def test_bad_codes_raise():
    with pytest.raises(ValueError, match="must pair up"):
        interleave_utterance([], [], 0, 1, np.arange(16), [1, 2], [1])
    with pytest.raises(ValueError, match="negative codes"):
        interleave_utterance([], [], 0, 1, np.arange(16), [1, -1], [1, 2])


word = st.text(alphabet="abcXYZ,.'", min_size=1, max_size=5)


@st.composite
def utterances(draw):
    n_words = draw(st.integers(0, 12))
    start = draw(st.floats(0, 20, allow_nan=False))
    dur = draw(st.floats(0, 6, allow_nan=False))
    starts = draw(st.lists(st.one_of(st.floats(start - 1, start + dur + 1, allow_nan=False), st.none()),
                           min_size=n_words, max_size=n_words))  # fmt: skip
    n_frames = draw(st.integers(0, 200))
    offset = int(start * 25) + draw(st.integers(-10, 10))
    gaps = draw(st.lists(st.integers(1, 4), min_size=n_frames, max_size=n_frames))
    frames = offset + np.cumsum(gaps) - gaps[0] if n_frames else np.zeros(0, int)
    n_codes = draw(st.integers(0, -(-n_frames // 8) + 2))
    face = draw(st.lists(st.integers(0, 600), min_size=n_codes, max_size=n_codes))
    body = draw(st.lists(st.integers(0, 600), min_size=n_codes, max_size=n_codes))
    words = draw(st.lists(word, min_size=n_words, max_size=n_words))
    return words, starts, start, start + dur, np.asarray(frames, dtype=np.int64), face, body


@settings(max_examples=150, deadline=None)
@given(u=utterances())
def test_interleaving_follows_the_rule(u):
    words, face, body = u[0], u[5], u[6]
    r = interleave_utterance(*u)
    assert r.tokens == oracle(*u)
    got_words, got_face, got_body, adjacent = split_tokens(r.tokens)
    assert got_words == words  # every word once, in order
    assert got_face == face and got_body == body and adjacent  # every code once, in order, in pairs
    if r.n_leftover:  # leftovers are the last pairs, after every word
        tail = r.tokens[len(r.tokens) - 2 * r.n_leftover :]
        assert all(is_motion_token(t) for t in tail)
    assert r.n_pairs == len(face) and r.n_words == len(words)


@settings(max_examples=150, deadline=None)
@given(u=utterances())
def test_parse_inverts_render(u):
    r = interleave_utterance(*u)
    p = parse(render(r.tokens))
    assert p.words == u[0] and p.face.tolist() == u[5] and p.body.tolist() == u[6]
    assert p.n_bad == 0 and p.text == " ".join(u[0])
    # words_before: the number of words ahead of each pair in the token list
    pair_at = [i for i, t in enumerate(r.tokens) if t.startswith("<FACE_")]
    assert p.words_before.tolist() == [sum(not is_motion_token(t) for t in r.tokens[:i]) for i in pair_at]
    assert strip_motion(render(r.tokens)) == p.text


def test_parse_counts_malformed_generations():
    p = parse("<FACE_1> hi <BODY_2><BODY_3><FACE_x>")
    assert p.words == ["hi"] and p.n_pairs == 0
    assert (p.n_unpaired_face, p.n_unpaired_body, p.n_malformed) == (1, 2, 1)
    q = parse("hey<FACE_1><FACE_2>  <BODY_3>there<FACE_9999><BODY_1> <BODY_>", codebook_size=512)
    assert q.words == ["hey", "there"] and q.face.tolist() == [2] and q.body.tolist() == [3]
    assert (q.n_unpaired_face, q.n_unpaired_body, q.n_malformed) == (1, 1, 2)
    assert q.words_before.tolist() == [1] and q.text == "hey there"
    assert strip_motion("a<FACE_1><BODY_x>b  c") == "a b c"


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="<>FACEBODY_0123x hi\n", max_size=60))
def test_parse_never_raises(text):
    p = parse(text, codebook_size=100)
    assert len(p.face) == len(p.body) == len(p.words_before)
    assert p.text == " ".join(p.words)


def test_timeline():
    p = parse("so<FACE_3><BODY_17> yes well<FACE_4><BODY_2> then and")
    times, n_frames = timeline(p)
    # "so" before pair 0 (frame 0); "yes", "well" before pair 1 (frame 8); then 2.5 words/s
    assert np.allclose(times, [0.0, 0.32, 0.32, 0.64, 0.64 + 0.4]) and n_frames == 16
    assert timeline(parse(""))[1] == 0
