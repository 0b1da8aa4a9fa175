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


def test_normalization_is_over_all_frames_and_kept(body):
    mean, std = body.normalization()
    f = body.frames.astype(np.float64)
    assert np.allclose(mean, f.mean(0)) and np.allclose(std, f.std(0))
    mean[:] = 99.0  # the caller's copy: the kept statistics do not change
    assert np.allclose(body.normalization()[0], f.mean(0))
    part = body.select([0, 1])  # a selection has its own statistics
    assert np.allclose(part.normalization()[0], part.frames.astype(np.float64).mean(0))


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


def test_speaker_reference_takes_each_speakers_resting_face_off(synth):
    from venus_analysis import extraction, schema

    raw = load_motion(synth["train"], "face")
    centred = load_motion(synth["train"], "face", reference="speaker")
    assert raw.keys == centred.keys and raw.offsets is None
    assert centred.offsets.shape == (len(centred), schema.FACE_TOKEN_DIM)
    # the offset of every utterance is its speaker's median expression over the segment
    row = synth["train"][0]
    utts = extraction.segment_utterances(row).utterances
    speaker = utts[0].speaker
    median = np.median(np.concatenate([u.face for u in utts if u.speaker == speaker and len(u.frames)]), axis=0)
    i = centred.keys.index((utts[0].video_id, utts[0].segment_id, utts[0].utterance_id))
    assert np.allclose(centred.offsets[i][schema.FACE_TOKEN_EXPRESSION], median[schema.FACE_TOKEN_EXPRESSION])
    assert (centred.offsets[:, schema.FACE_TOKEN_JAW] == 0).all()  # the jaw is not centred
    # centring removes the spread between speakers but keeps each utterance's own motion
    assert np.allclose(centred.absolute(i, centred.utterance(i)), raw.utterance(i), atol=1e-6)
    assert centred.frames[:, :50].mean(0).std() < raw.frames[:, :50].mean(0).std()
    assert np.allclose(centred.select([i, 0]).offsets, centred.offsets[[i, 0]])


def test_speaker_reference_is_for_the_face_only(synth):
    with pytest.raises(ValueError, match="reference must be"):
        load_motion(synth["train"], "body", reference="speaker")
    with pytest.raises(ValueError, match="reference must be"):
        load_motion(synth["train"], "face", reference="utterance")
