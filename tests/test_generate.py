"""Generation: paired motion tokens always, forced words in order, decoding back to motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mini_mars.config import preset
from mini_mars.generate import (MotionPairsProcessor, as_transcript, decode_codes, generate_replies, generate_reply,
                                gesture_for, messages_for)
from mini_mars.interleave import render
from mini_mars.lm import build_model
from mini_mars.lm_tokenizer import motion_token_ids, train_text_tokenizer
from mini_mars.pairs import SYSTEM_PROMPT
from mini_mars.vqvae import VQVAE
from venus_analysis import cues

K = 32  # the smoke tokenizers' codebook size


@pytest.fixture(scope="module")
def setup():
    """An untrained smoke LM over a tiny tokenizer, and smoke tokenizers with random codebooks."""
    texts = [render(["<FACE_1>", "<BODY_2>", "yes", "exactly", "<FACE_3>", "<BODY_4>", "right"]),
             "Do you know what time it is?", "Sorry, I know I am late."] * 20  # fmt: skip
    tok = train_text_tokenizer(texts, vocab_size=300, face_codes=K, body_codes=K, whole_texts=[SYSTEM_PROMPT])
    torch.manual_seed(0)
    model, tok = build_model(preset("smoke").lm, tok)
    vqs = []
    for part in ("face", "body"):
        vq = VQVAE(preset("smoke").vq(part))
        vq.quantizer.codebook.normal_()
        vqs.append(vq.eval())
    return model.eval(), tok, *vqs


def test_processor_pairs_face_with_body():
    class Vocab:
        face_range, body_range = (10, 14), (14, 18)

    proc = MotionPairsProcessor(Vocab())
    scores = torch.zeros(3, 20)
    out = proc(torch.tensor([[1, 11], [1, 15], [1, 2]]), scores)
    assert torch.isfinite(out[0]).nonzero().flatten().tolist() == [14, 15, 16, 17]  # after FACE: only BODY
    for row in (1, 2):  # after BODY or a word: anything but BODY
        assert torch.isinf(out[row, 14:18]).all() and torch.isfinite(out[row, :14]).all()


def test_sampled_replies_are_always_decodable(setup):
    model, tok, face_vq, body_vq = setup
    for seed in range(4):  # an untrained model writes tokens at random: the processor must pair them
        reply = generate_reply(model, tok, face_vq, body_vq, "Do you know what time it is?", seed=seed,
                               max_new_tokens=60, temperature=1.5, top_k=None, top_p=None)  # fmt: skip
        assert reply.parsed.n_unpaired_face == 0 and reply.parsed.n_unpaired_body == 0
        assert reply.face.shape == (8 * reply.parsed.n_pairs, 53) and reply.body.shape == (8 * reply.parsed.n_pairs, 117)
        assert len(reply.word_times) == len(reply.words)


def test_batched_replies_are_the_ones_generated_alone(setup):
    model, tok, face_vq, body_vq = setup
    prompts = ["Do you know what time it is?", "<FACE_1><BODY_2> Sorry, I know I am late.", "yes",
               messages_for("Right?")]  # different lengths: left padding
    kw = dict(max_new_tokens=24, temperature=1.5, top_k=None, top_p=0.9)
    alone = [generate_reply(model, tok, face_vq, body_vq, p, seed=7 + i, **kw) for i, p in enumerate(prompts)]
    for batch_size in (1, 3, 32):  # reply i draws from its own generator (seed 7 + i), whatever shares its batch
        batched = generate_replies(model, tok, face_vq, body_vq, prompts, seed=7, batch_size=batch_size, **kw)
        assert [r.text for r in batched] == [r.text for r in alone]
        assert [r.n_tokens for r in batched] == [r.n_tokens for r in alone]
    assert len({r.text for r in alone}) > 1  # not one reply for all: the prompts and seeds count
    greedy = generate_replies(model, tok, face_vq, body_vq, prompts, do_sample=False, max_new_tokens=24)
    assert [r.text for r in greedy] == [generate_reply(model, tok, face_vq, body_vq, p, do_sample=False,
                                                       max_new_tokens=24).text for p in prompts]  # fmt: skip
    cold = generate_replies(model, tok, face_vq, body_vq, prompts, temperature=0, max_new_tokens=24)
    assert [r.text for r in cold] == [r.text for r in greedy]  # temperature 0 is the greedy reply
    with pytest.raises(ValueError, match=r"prompt 1 is \d+ tokens"):
        generate_replies(model, tok, face_vq, body_vq, ["hi", "Sorry, I know I am late. " * 120])
    for one in ("hi", messages_for("hi")):  # one prompt where a list of prompts belongs: said, not misread
        with pytest.raises(TypeError, match="list of prompts"):
            generate_replies(model, tok, face_vq, body_vq, one)
    assert generate_replies(model, tok, face_vq, body_vq, []) == []


def test_gesture_for_says_the_given_words_in_order(setup):
    model, tok, face_vq, body_vq = setup
    for temperature, seed in ((1.0, 0), (1.0, 1), (0.0, 0)):
        reply = gesture_for(model, tok, face_vq, body_vq, "yes, exactly. I think so", "Right?",
                            temperature=temperature, seed=seed)  # fmt: skip
        assert reply.words == ["yes,", "exactly.", "I", "think", "so"]
        assert reply.parsed.n_bad == 0 and np.all(np.diff(reply.word_times) >= 0)
    capped = gesture_for(model, tok, face_vq, body_vq, "yes", temperature=1.0, max_pairs=2)
    assert capped.parsed.n_pairs <= 2


def test_typed_words_take_the_transcripts_form(setup):
    assert as_transcript("yes, exactly") == "Yes, exactly."
    assert as_transcript("  no   way!") == "No way!"  # its own final punctuation is kept
    assert as_transcript("Do you know what time it is?") == "Do you know what time it is?"
    assert as_transcript("") == ""
    from mini_mars.pipeline import Mars

    mars = Mars(*setup)
    assert mars.say("yes, exactly", temperature=1.0, max_pairs=4).words == ["Yes,", "exactly."]
    assert mars.say("yes, exactly", transcript=False, temperature=1.0, max_pairs=4).words == ["yes,", "exactly"]


def test_reply_as_utterance_feeds_the_cue_detectors(setup):
    model, tok, face_vq, body_vq = setup
    reply = gesture_for(model, tok, face_vq, body_vq, "yes exactly", temperature=1.0, seed=3, max_pairs=8)
    utt = reply.utterance()
    assert len(utt.frames) == len(reply.face) == len(reply.body)
    cues.detect_cues(utt)  # runs on generated motion like on real motion
    track = reply.word_track()
    assert track["word"] == reply.words and all(e > s for s, e in zip(track["start_time"], track["end_time"]))


def test_decode_codes_checks_pairs_and_adds_the_reference(setup):
    _, _, face_vq, body_vq = setup
    face, body = decode_codes(face_vq, body_vq, [1, 2], [3, 4])
    assert face.shape == (16, 53) and body.shape == (16, 117)  # face: expression, jaw
    ref = np.arange(face_vq.in_dim, dtype=np.float32)
    shifted, _ = decode_codes(face_vq, body_vq, [1, 2], [3, 4], face_reference=ref)
    assert np.allclose(shifted - face, ref, atol=1e-5)
    with pytest.raises(ValueError, match="must pair up"):
        decode_codes(face_vq, body_vq, [1, 2], [3])
    empty_face, empty_body = decode_codes(face_vq, body_vq, [], [])
    assert empty_face.shape == (0, 53) and empty_body.shape == (0, 117)


def test_masked_prompt_has_no_motion_tokens():
    msgs = messages_for("<FACE_1><BODY_2> Do you<FACE_3><BODY_4> know", mask_cues=True)
    assert msgs[-1] == {"role": "user", "content": "Do you know"} and msgs[0]["role"] == "system"
    vocab_free = messages_for("hi")[-1]["content"]
    assert vocab_free == "hi"


def test_motion_vocab_blocks_are_contiguous(setup):
    _, tok, _, _ = setup
    vocab = motion_token_ids(tok)
    assert vocab.face_range[1] - vocab.face_range[0] == K and vocab.body_range[1] - vocab.body_range[0] == K


def test_mask_cues_also_applies_to_ready_messages(setup, monkeypatch):
    model, tok, face_vq, body_vq = setup
    seen = []
    real = tok.apply_chat_template
    monkeypatch.setattr(tok, "apply_chat_template", lambda msgs, **kw: seen.append(msgs) or real(msgs, **kw))
    msgs = messages_for("<FACE_1><BODY_2> Do you know")
    generate_reply(model, tok, face_vq, body_vq, msgs, mask_cues=True, max_new_tokens=2)
    assert seen[-1][-1]["content"] == "Do you know" and msgs[-1]["content"].startswith("<FACE_1>")  # input untouched


def test_the_head_moves_with_the_body_tokens_head_joint(setup):
    _, _, face_vq, body_vq = setup
    from mini_mars.generate import Reply
    from mini_mars.interleave import parse
    from venus_analysis import schema

    face, body = decode_codes(face_vq, body_vq, [1, 2, 3], [4, 5, 6])
    reply = Reply("", parse(""), face, body, np.zeros(0), 0)
    h = schema.token_joint_slice("head")
    assert np.array_equal(reply.utterance().head_rotation, body[:, h])  # no head in the face tokens
    head_face = np.c_[face, np.ones((len(face), 3), np.float32)]
    assert (Reply("", parse(""), head_face, body, np.zeros(0), 0).head_rotation == 1).all()


def test_replies_fit_the_context_and_too_long_prompts_fail_clearly(setup):
    model, tok, face_vq, body_vq = setup
    context = model.config.max_position_embeddings  # smoke: 256
    prompt = "Sorry, I know I am late. " * 12
    n_prompt = len(tok.apply_chat_template(messages_for(prompt), add_generation_prompt=True, tokenize=True,
                                           return_dict=True)["input_ids"])  # fmt: skip
    assert n_prompt < context
    # asked for more than the context leaves, with no early end: cut to what fits, no warning, no error
    reply = generate_reply(model, tok, face_vq, body_vq, prompt, max_new_tokens=10 * context,
                           min_new_tokens=10 * context, seed=0)  # fmt: skip
    assert reply.n_tokens == context - n_prompt
    with pytest.raises(ValueError, match=r"prompt is \d+ tokens, and the model reads at most 256"):
        generate_reply(model, tok, face_vq, body_vq, prompt * 10)


class AlwaysGesture(torch.nn.Module):
    """The model with every FACE logit raised by 20: it gestures at every word boundary."""

    def __init__(self, model, face_range):
        super().__init__()
        self.model, self.config, self.face_range = model, model.config, face_range

    def forward(self, **kw):
        res = self.model(**kw)
        res.logits[..., self.face_range[0] : self.face_range[1]] += 20.0
        return res


def test_gesture_for_keeps_within_the_context(setup):
    model, tok, face_vq, body_vq = setup
    context = model.config.max_position_embeddings  # smoke: 256
    eager = AlwaysGesture(model, motion_token_ids(tok).face_range)
    prompt = "Do you know what time it is?"
    words = " ".join(["exactly"] * 100)  # 2 tokens each: room for ~19 pairs, fewer than the 64 asked
    reply = gesture_for(eager, tok, face_vq, body_vq, words, prompt, temperature=1.0, seed=0)
    n_prompt = len(tok.apply_chat_template(messages_for(prompt), add_generation_prompt=True, tokenize=True,
                                           return_dict=True)["input_ids"])  # fmt: skip
    assert reply.words == words.split()  # every word still said
    assert 0 < reply.parsed.n_pairs < 64 and n_prompt + reply.n_tokens <= context  # the cap binds, nothing overflows
    assert context - (n_prompt + reply.n_tokens) <= 3  # and it used the room there was (the end, a half pair)
    with pytest.raises(ValueError, match=r"do not fit in the model's context of 256 tokens"):
        gesture_for(model, tok, face_vq, body_vq, " ".join(["exactly"] * 300), prompt)
