"""Motion frames for the tokenizers: loading, windows, padding, selection, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mini_mars.motion_data import load_motion


@pytest.fixture(scope="module")
def body(synth):
    return load_motion(synth["train"], "body")


def test_every_utterance_is_held_flat(synth, body):
    n_utts = sum(len(c["utterance_id"]) for c in synth["train"]["conversation"])
    assert len(body) + body.skipped_utterances == n_utts
    assert body.frames.shape == (body.n_frames, 117) and body.frames.dtype == np.float32
    assert (body.starts[1:] == np.cumsum(body.lengths)[:-1]).all()


def test_windows_and_padding(body):
    x, mask = body.random_windows(np.random.default_rng(0), 16, 64)
    assert x.shape == (16, 64, 117) and mask.shape == (16, 64)
    assert (x[~mask] == 0).all()  # padding is zero
    xs, ms = body.padded([0, 1])
    n = min(body.lengths[1], 512)
    assert ms[1].sum() == n and np.allclose(xs[1, :n].numpy(), body.utterance(1)[:n])


def test_select_copies_utterances(body):
    part = body.select([2, 0])
    assert len(part) == 2 and part.keys == [body.keys[2], body.keys[0]]
    assert np.array_equal(part.utterance(1), body.utterance(0))


def test_max_frames_keeps_whole_utterances_and_counts_the_rest(synth, body):
    small = load_motion(synth["train"], "body", max_frames=5_000, seed=1)
    assert small.n_frames <= 5_000 and small.dropped_utterances == len(body) - len(small)
    assert set(small.keys) <= set(body.keys)


def test_bad_input(synth):
    with pytest.raises(ValueError, match="part must be 'face' or 'body'"):
        load_motion(synth["train"], "hands")
    with pytest.raises(ValueError, match="no utterance with at least"):
        load_motion(synth["train"].select([]), "face")
