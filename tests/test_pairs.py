"""Chat training pairs from conversations: turns, texts, token counts, order, context, stats."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_mars.config import preset
from mini_mars.interleave import parse
from mini_mars.pairs import SYSTEM_PROMPT, build_pair_splits, build_pairs, encode_utterances, face_inputs, text_only
from mini_mars.motion_data import speaker_references
from mini_mars.vqvae import VQVAE
from venus_analysis import extraction

from .factories import make_row


@pytest.fixture(scope="module")
def models():
    """Untrained smoke tokenizers with a random codebook, so that codes vary."""
    torch.manual_seed(0)
    out = []
    for part in ("face", "body"):
        vq = VQVAE(preset("smoke").vq(part))
        vq.quantizer.codebook.normal_()
        out.append(vq.eval())
    return out


@pytest.fixture(scope="module")
def small():
    """Four 30 s segments; the train one holds a 568-frame utterance (cut by the window)."""
    import datasets

    from venus_analysis.synthetic import generate_venus

    dsd = generate_venus(n_segments=4, seconds=30, seed=1, progress=False)
    return datasets.concatenate_datasets([dsd["train"], dsd["test"]])


@pytest.fixture(scope="module")
def built(small, models):
    return build_pairs(small, *models, progress=False)


def _utterances(ds):
    """{(video_id, segment_id, utterance_id): UtteranceArrays} and the conversation order."""
    utts, order = {}, {}
    for row in ds:
        seg = extraction.segment_utterances(row)
        for k, u in enumerate(seg):
            utts[(seg.video_id, seg.segment_id, u.utterance_id)] = u
            order[(seg.video_id, seg.segment_id, u.utterance_id)] = k
    return utts, order


def _key(r, role):
    return (r["video_id"], r["segment_id"], r[f"{role}_utterance_id"])


def test_pairs_are_next_turns_with_conversation_texts_and_token_counts(small, built):
    pairs, stats = built
    utts, order = _utterances(small)
    assert len(pairs) == stats.pairs > 0
    for r in pairs:
        user, reply = utts[_key(r, "user")], utts[_key(r, "assistant")]
        assert order[_key(r, "assistant")] == order[_key(r, "user")] + 1  # the very next turn
        assert user.speaker == r["user_speaker"] != r["assistant_speaker"] == reply.speaker
        assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]
        assert r["messages"][0]["content"] == SYSTEM_PROMPT
        for role, utt, msg in (("user", user, r["messages"][1]), ("assistant", reply, r["messages"][2])):
            assert r[f"{role}_text"] == utt.text  # synthetic texts are the words joined
            p = parse(msg["content"])
            assert p.text == utt.text and p.n_bad == 0
            assert p.n_pairs == r[f"n_{role}_pairs"] == -(-min(utt.n_frames, 512) // 8)
    n_utts = sum(len(c["utterance_id"]) for c in small["conversation"])
    assert stats.utterances == n_utts == stats.interleaved + stats.skipped_no_frames + stats.skipped_no_words + stats.harmful_skipped
    assert stats.pairs + stats.same_speaker_next + stats.lost_to_skips == n_utts - stats.segments


def test_truncation_is_counted(small, built):
    _, stats = built
    utts, _ = _utterances(small)
    long = [u.n_frames for u in utts.values() if u.n_frames > 512]
    assert long and stats.truncated_utterances == len(long)
    assert stats.truncated_frames == sum(n - 512 for n in long)
    assert stats.truncated_pairs == sum(-(-n // 8) - 64 for n in long)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_pairs_do_not_depend_on_row_order(small, built, models, seed):
    perm = np.random.default_rng(seed).permutation(len(small))
    shuffled, _ = build_pairs(small.select(perm), *models, progress=False, batch_size=3)

    def as_set(ds):
        return {(_key(r, "user"), _key(r, "assistant"), tuple(m["content"] for m in r["messages"])) for r in ds}

    assert as_set(shuffled) == as_set(built[0])


def test_rows_encoded_together_or_one_at_a_time_give_the_same_pairs(small, built, models):
    alone, stats = build_pairs(small, *models, progress=False, segments_per_batch=1)
    assert alone.to_list() == built[0].to_list() and stats.to_dict() == built[1].to_dict()
    assert len(small) > 1 and len(alone) > 0
    with pytest.raises(ValueError, match="segments_per_batch must be at least 1; got 0"):
        build_pairs(small, *models, progress=False, segments_per_batch=0)


def test_codes_do_not_depend_on_batching(small, models):
    seg = extraction.segment_utterances(small.with_format("arrow")[0:1])
    utts = [u for u in seg if u.n_frames]
    refs = {(seg.video_id, seg.segment_id, s): r for s, r in speaker_references(seg.utterances).items()}
    batched = encode_utterances(*models, utts, batch_size=64)
    alone = [encode_utterances(*models, [u], batch_size=1, references=refs)[0] for u in utts[::-1]][::-1]
    for (f1, b1), (f2, b2), u in zip(batched, alone, utts):
        assert np.array_equal(f1, f2) and np.array_equal(b1, b2) and len(f1) == -(-min(u.n_frames, 512) // 8)


def test_context_turns_alternate_and_end_with_the_user(small, built, models):
    base = {(_key(r, "user")): r["messages"][1]["content"] for r in built[0]}
    base.update({(_key(r, "assistant")): r["messages"][2]["content"] for r in built[0]})
    pairs, _ = build_pairs(small, *models, progress=False, context_turns=3)
    assert len(pairs) == len(built[0]) and max(pairs["n_context_turns"]) == 3
    _, order = _utterances(small)
    by_position = {(k[0], k[1], pos): k for k, pos in order.items()}
    for r in pairs:
        n = r["n_context_turns"]
        roles = [m["role"] for m in r["messages"]]
        assert roles[0] == "system" and roles[-2:] == ["user", "assistant"]
        # alternating, ending with the user turn
        assert roles[1:-1] == ["user" if (n - i) % 2 == 0 else "assistant" for i in range(n + 1)]
        j = order[_key(r, "user")]
        for i, msg in enumerate(r["messages"][1 : 1 + n]):  # the n turns right before the user's
            key = by_position[(r["video_id"], r["segment_id"], j - n + i)]
            assert msg["content"] == base[key]


def _bad_rows():
    """A row with an utterance without frames, one without words, and harmful ids."""
    row = make_row(n_utterances=5, frames_per_utterance=24, harmful=(4,))
    face, body = row["facial_expression"], row["body_language"]
    for track in (face, body):  # utterance 1 loses its frames
        keep = [i for i, u in enumerate(track["utt_id"]) if u != "1"]
        for name in ("utt_id", "frame", "features"):
            track[name] = [track[name][i] for i in keep]
    row["conversation"]["words"][2] = {"word": [], "start_time": [], "end_time": []}  # utterance 2: no words
    row["harmful_utterance_id"].append(0)  # listed yet still in the conversation: skipped
    return row


def test_skips_are_counted_not_silent(models):
    pairs, stats = build_pairs([_bad_rows()], *models, progress=False)
    assert (stats.utterances, stats.interleaved, stats.skipped_no_frames, stats.skipped_no_words) == (4, 1, 1, 1)
    assert stats.harmful_skipped == 1  # utterance 0, listed as harmful
    # utterance 3 is the only turn: the couples (0, 1), (1, 2), (2, 3) are all lost
    assert stats.harmful_listed == 2 and stats.lost_to_skips == 3
    assert stats.pairs == 0 and len(pairs) == 0 and pairs.column_names[0] == "messages"


def test_a_long_hand_made_utterance_is_cut_and_counted(models):
    row = make_row(n_utterances=2, frames_per_utterance=520)
    pairs, stats = build_pairs([row], *models, progress=False)
    assert (stats.truncated_utterances, stats.truncated_frames, stats.truncated_pairs) == (2, 16, 2)
    assert pairs[0]["n_user_pairs"] == pairs[0]["n_assistant_pairs"] == 64
    assert stats.words == 6 and pairs[0]["user_text"] == "hello there w0"


def test_bad_rows_raise_naming_the_row_or_are_skipped(models):
    good = make_row(n_utterances=3, frames_per_utterance=16, video_id="goodVIDEO01")
    bad = copy.deepcopy(good)
    bad["video_id"] = "badVIDEO001"
    bad["conversation"]["words"][1]["start_time"] = [0.0]  # 3 words, 1 time
    with pytest.raises(ValueError, match=r"video_id='badVIDEO001'.*conversation\.words\[1\]\.start_time"):
        build_pairs([good, bad], *models, progress=False)
    broken = copy.deepcopy(good)
    broken["facial_expression"]["frame"][0] = "x_0"
    pairs, stats = build_pairs([good, bad, broken], *models, progress=False, on_error="skip")
    assert stats.rows_skipped == 2 and len(stats.errors) == 2 and "facial_expression" in stats.errors[1]
    assert len(pairs) == 2 and set(pairs["video_id"]) == {"goodVIDEO01"}


def test_pair_splits(small, models):
    import datasets

    dsd = datasets.DatasetDict({"train": small.select([0]), "test": small.select([1, 2])})
    out, stats = build_pair_splits(dsd, *models, progress=False)
    assert set(out) == {"train", "test"} and len(out["test"]) == stats["test"].pairs
    assert stats["train"].to_dict()["segments"] == 1


def test_faces_are_read_relative_to_the_speakers_resting_face(small, models):
    seg = extraction.segment_utterances(small.with_format("arrow")[0:1])
    utts = [u for u in seg if u.n_frames]
    key = (seg.video_id, seg.segment_id)
    assert models[0].cfg.reference == "speaker" and not models[0].cfg.head_rotation
    refs = {(*key, s): r for s, r in speaker_references(seg.utterances).items()}
    assert len(refs) == 2
    centred = face_inputs(models[0], utts, refs)
    for u, f in zip(utts, centred):
        assert np.allclose(f + refs[(*key, u.speaker)], u.face)
    assert all(np.array_equal(a, b) for a, b in zip(face_inputs(models[0], utts), centred))  # default: same refs
    # a face tokenizer that reads the head rotation gets it appended, centred too
    head_vq = VQVAE(dataclasses.replace(preset("smoke").vq("face"), head_rotation=True))
    head_refs = {(*key, s): r for s, r in speaker_references(seg.utterances, head_rotation=True).items()}
    for u, f in zip(utts, face_inputs(head_vq, utts, head_refs)):
        assert np.allclose(f + head_refs[(*key, u.speaker)], np.c_[u.face, u.head_rotation])
    raw = VQVAE(dataclasses.replace(preset("smoke").vq("face"), reference="none"))
    assert all(np.array_equal(f, u.face) for f, u in zip(face_inputs(raw, utts), utts))  # nothing off


def test_text_only_pairs_keep_the_words_and_drop_every_motion_token(built):
    pairs = built[0]
    plain = text_only(pairs)
    assert len(plain) == len(pairs) and plain.column_names == pairs.column_names
    for row, bare in zip(pairs.select(range(min(20, len(pairs)))), plain):
        for m, b in zip(row["messages"], bare["messages"]):
            assert b["role"] == m["role"]
            if m["role"] == "system":
                assert b["content"] == m["content"] == SYSTEM_PROMPT
            else:
                assert "<FACE_" not in b["content"] and "<BODY_" not in b["content"]
                assert b["content"].split() == parse(m["content"]).words
        assert parse(row["messages"][-1]["content"]).n_pairs > 0  # the original still has its motion


def test_four_frames_per_code_gives_a_pair_every_four_frames(small):
    """The cpu-gestures layout (VQConfig.down = 2): the same code, twice the pairs."""
    from dataclasses import replace

    from mini_mars.generate import reply_from_text

    assert preset("cpu-gestures").vq_face.frames_per_token == preset("cpu-gestures").vq_body.frames_per_token == 4
    torch.manual_seed(0)
    vqs = []
    for part in ("face", "body"):
        vq = VQVAE(replace(preset("smoke").vq(part), down=2))
        vq.quantizer.codebook.normal_()
        vqs.append(vq.eval())
    pairs, stats = build_pairs(small, *vqs, progress=False)
    utts, _ = _utterances(small)
    for r in pairs:
        for role in ("user", "assistant"):
            assert r[f"n_{role}_pairs"] == -(-min(utts[_key(r, role)].n_frames, 512) // 4)
    long = [u.n_frames for u in utts.values() if u.n_frames > 512]
    assert stats.truncated_pairs == sum(-(-n // 4) - 128 for n in long)
    row = next(r for r in pairs if utts[_key(r, "assistant")].n_frames < 512)  # not cut by the window
    reply = reply_from_text(row["messages"][-1]["content"], *vqs)
    assert len(reply.face) == len(reply.body) == 4 * row["n_assistant_pairs"]
    assert 0 < reply.word_times.max() < len(reply.face) / 25  # the words sit on the 4-frame timeline
