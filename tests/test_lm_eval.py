"""Evaluation of the language model (mini_mars.lm_eval): NLLs against hand computations,
baselines, reply categories, planted-association windows on motion we build ourselves,
cue-dependent replies with a scripted generator, and an end-to-end run on an untrained
smoke model with K = 8 codes. Fast: a few seconds on one core."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mini_mars import lm_eval
from mini_mars.config import preset
from mini_mars.generate import Reply
from mini_mars.interleave import parse
from mini_mars.lm import build_model
from mini_mars.lm_tokenizer import encode_chats, motion_token_ids, train_text_tokenizer
from mini_mars.vqvae import VQVAE
from venus_analysis import schema
from venus_analysis import synthetic_rules as rules

K = 8
SYS = "Messages mix words and <FACE_k><BODY_k> tokens."


def pair_row(i: int, user: str, reply: str, video_id: str = "vid00000001", segment_id: int = 0) -> dict:
    """One row as mini_mars.pairs.build_pairs writes it."""
    return {"messages": [{"role": "system", "content": SYS}, {"role": "user", "content": user},
                         {"role": "assistant", "content": reply}],
            "video_id": video_id, "segment_id": segment_id, "user_utterance_id": 2 * i,
            "assistant_utterance_id": 2 * i + 1, "user_text": parse(user).text, "assistant_text": parse(reply).text}  # fmt: skip


USERS = ["hello there my friend", "do you know what time it is", "so you read my message", "well I think so"]
REPLIES = ["haha yes I loved it", "sorry I am late", "no not really", "maybe we should talk"]
ROWS = [pair_row(i, f"<FACE_{i % K}><BODY_{3 * i % K}> {USERS[i % 4]}<FACE_{(i + 2) % K}><BODY_{i % 5}>",
                 f"<FACE_{(i + 1) % K}><BODY_{i % K}> {REPLIES[i % 4]}<FACE_{i % 3}><BODY_{(i + 4) % K}> ok")
        for i in range(12)]  # fmt: skip
TRAIN, TEST = ROWS[:8], ROWS[8:]


@pytest.fixture(scope="module")
def setup():
    """(model, tokenizer, face_vq, body_vq): untrained smoke sizes, K = 8 codes each."""
    texts = [m["content"] for r in ROWS for m in r["messages"]]
    tok = train_text_tokenizer(texts, vocab_size=300, face_codes=K, body_codes=K)
    torch.manual_seed(0)
    model, tok = build_model(preset("smoke").lm, tok)
    vqs = []
    for part in ("face", "body"):
        vq = VQVAE(replace(preset("smoke").vq(part), codebook_size=K))
        with torch.no_grad():
            vq.quantizer.codebook.normal_()  # untrained: all-zero codes would decode to one pose
        vqs.append(vq.eval())
    return model, tok, *vqs


# ---------------------------------------------------------------------------------------
# NLL and baselines
# ---------------------------------------------------------------------------------------
def _hand_nll(model, tok, conv) -> tuple[np.ndarray, np.ndarray]:
    """(-ln p of every assistant target, its id) from the model's logits, one conversation."""
    (ids, mask), = encode_chats(tok, [conv])
    ids, mask = np.array(ids), np.array(mask, bool)
    model.eval()
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.from_numpy(ids)[None]).logits[0].float(), -1).numpy()
    t = np.flatnonzero(mask[1:]) + 1  # targets t >= 1, predicted from t - 1
    return -logp[t - 1, ids[t]], ids[t]


def test_token_nll_matches_a_hand_computation(setup):
    model, tok, *_ = setup
    convs = [r["messages"] for r in TEST] + [TEST[0]["messages"][:2] + [{"role": "assistant", "content": "ok"}]]
    nll, ids = map(np.concatenate, zip(*(_hand_nll(model, tok, c) for c in convs)))
    part = motion_token_ids(tok).part(ids)
    model.train()  # token_nll must switch dropout off itself, and restore the mode
    out = lm_eval.token_nll(model, tok, convs, batch_size=2)  # padded batches of unequal lengths
    assert model.training
    assert out["n_face"] + out["n_body"] + out["n_text"] == out["n_targets"] == len(nll)
    assert (out["n_face"], out["n_body"]) == ((part == "face").sum(), (part == "body").sum()) == (8, 8)
    assert out["perplexity"] == pytest.approx(math.exp(nll.mean()), rel=1e-4)
    for kind, sel in (("face", part == "face"), ("body", part == "body"), ("text", part == "")):
        assert out[f"nll_{kind}"] == pytest.approx(nll[sel].mean(), rel=1e-4)
    assert out["nll_body_paired"] < out["nll_body"]  # renormalised over the BODY block only
    with pytest.raises(ValueError, match="no conversations"):
        lm_eval.token_nll(model, tok, [])


def test_baseline_nll_uniform_and_unigram_by_hand(setup):
    _, tok, *_ = setup
    train = [[{"role": "user", "content": "<FACE_7><BODY_7> hi"},  # user motion: not counted
              {"role": "assistant", "content": "<FACE_1><BODY_2> hi<FACE_1><BODY_3> there"}]]
    test = [[{"role": "user", "content": "hey"}, {"role": "assistant", "content": "<FACE_1><BODY_0> x<FACE_5><BODY_2>"}]]
    out = lm_eval.baseline_nll(train, test, tok)
    assert out["nll_face_uniform"] == out["nll_body_uniform"] == pytest.approx(math.log(K))
    # add-one: face counts {1: 2} -> p1 = 3/10, p5 = 1/10; body {2: 1, 3: 1} -> p0 = 1/10, p2 = 2/10
    assert out["nll_face_unigram"] == pytest.approx(-(math.log(0.3) + math.log(0.1)) / 2)
    assert out["nll_body_unigram"] == pytest.approx(-(math.log(0.1) + math.log(0.2)) / 2)


def test_bad_inputs_raise_clear_errors(setup):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    model, tok, face_vq, body_vq = setup
    plain = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()))
    with pytest.raises(ValueError, match="no <FACE_k> tokens"):
        lm_eval.baseline_nll(TRAIN, TEST, plain)
    with pytest.raises(ValueError, match="no pairs"):
        lm_eval.evaluate_lm(model, tok, face_vq, body_vq, TRAIN, [], progress=False)
    big = VQVAE(replace(preset("smoke").vq("face"), codebook_size=2 * K))
    with pytest.raises(ValueError, match="8 <FACE_k> tokens but the face VQ-VAE has 16"):
        lm_eval.motion_scores(model, tok, big, body_vq, TEST, TRAIN)
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        lm_eval.text_scores(["a", "b"], ["a"])


def test_text_scores_ignore_motion_tokens():
    same = lm_eval.text_scores(["<FACE_1><BODY_2> hello there<FACE_3><BODY_0> my friend"], ["hello there my friend"])
    assert same["bleu"] == pytest.approx(100) and same["chrf"] == pytest.approx(100)
    other = lm_eval.text_scores(["completely different words here"], ["hello there my friend"])
    assert other["bleu"] < 5 and other["chrf"] < same["chrf"]


def test_reply_category_of_every_template():
    for category, templates in rules.REPLY_TEMPLATES.items():
        for t in templates:
            assert lm_eval.reply_category(t) == category, t
            assert lm_eval.reply_category(f"<FACE_1><BODY_2> {t}<FACE_0><BODY_0>") == category
    assert lm_eval.reply_category("the weather is nice") is None
    assert lm_eval.reply_category("sorry haha") is None  # one distinctive word each: a tie
    assert lm_eval.reply_category("") is None


def test_nearest_neighbours_by_tfidf():
    assert lm_eval.nearest_neighbours(["the cat sat", "a dog barked", "time for tea"],
                                      ["what time is it", "my dog", ""]).tolist() == [2, 1, 0]  # fmt: skip


# ---------------------------------------------------------------------------------------
# Planted associations, on motion we build
# ---------------------------------------------------------------------------------------
T = 120  # frames of the built replies (15 pairs)
HAHA_AT = 0.97  # s: "haha" is the second word; the smile rule's window is then [14, 67) frames


def fake_vq(part: str, head: bool = False):
    return SimpleNamespace(cfg=replace(preset("smoke").vq(part), codebook_size=K, head_rotation=head and part == "face"))


def built_reply(smiles: list[tuple[int, int]], words=("so", "haha", "yes", "no"), nods=()) -> Reply:
    """A reply saying ``words`` (the 2nd at 0.97 s) with smile events at the frames ``smiles``
    and 2.5 Hz head-pitch nods of the body tokens' head joint at the frames ``nods``."""
    face, body = np.zeros((T, 53), np.float32), np.zeros((T, 117), np.float32)
    for a, b in smiles:
        face[a:b, :50] = rules.expression_vector("smile")  # projection 1.52 > 0.6: a smile event [a, b)
    head = schema.token_joint_slice("head")
    for a, b in nods:  # pitch = rotation about x; 0.15 rad amplitude gives ~0.1 rad RMS > 0.03
        body[a:b, head.start] = 0.15 * np.sin(2 * np.pi * 2.5 * np.arange(b - a) / schema.FPS)
    times = np.array([0.5, HAHA_AT, 3.0, 4.0])[: len(words)]
    return Reply(" ".join(words), parse(" ".join(words)), face, body, times, 0)


@pytest.fixture
def assoc(setup, monkeypatch):
    """association() on one pair whose generated and real motion are built by hand."""
    tok = setup[1]

    def run(smiles, data_smiles=(), nods=(), **kw):
        def gesture_for(*a, **k):
            run.gesture_kw = k
            return built_reply(smiles, nods=nods)

        monkeypatch.setattr(lm_eval.generate, "gesture_for", gesture_for)
        real = built_reply(data_smiles)
        monkeypatch.setattr(lm_eval.generate, "decode_codes", lambda *a, **k: (real.face, real.body))
        # the real reply: "so haha" before pair 3 (timeline: 3 x 8 / 25 = 0.96 s), 15 pairs in all
        reply = "<FACE_0><BODY_0>" * 3 + " so haha" + "<FACE_0><BODY_0>" * 12 + " yes no"
        rows = [pair_row(0, "tell me", reply)]
        return lm_eval.association(None, tok, fake_vq("face"), fake_vq("body"), rows, **kw)

    return run


def test_association_samples_gestures_at_its_temperature(assoc):
    assoc([(25, 50)])
    assert assoc.gesture_kw["temperature"] == 0.8  # the default: as a reply is sampled
    assoc([(25, 50)], temperature=0.0)
    assert assoc.gesture_kw["temperature"] == 0.0


def test_association_window_logic(assoc):
    row = lambda out: next(r for r in out["cues"] if r["cue"] == "smile")  # noqa: E731
    hit = assoc([(25, 50)], data_smiles=[(25, 50)])
    assert row(hit)["triggers"] == 1 and row(hit)["recall"] == 1.0 and row(hit)["precision"] == 1.0
    assert hit["association_recall_data"] == pytest.approx(1 / 4)  # the smile hit; the nod, shake and frown missed
    miss = assoc([(90, 110)])
    assert row(miss)["recall"] == 0.0 and row(miss)["precision"] == 0.0 and miss["association_precision"] == 0.0
    # the window of "haha" at 0.97 s: [0.97 - 0.1 - 0.3, 0.97 - 0.1 + 1.5 + 0.3] s = frames [14.25, 66.75] -> [14, 67)
    assert row(assoc([(67, 90)]))["recall"] == 0.0  # starts right after the window
    assert row(assoc([(66, 90)]))["recall"] == 1.0  # shares frame 66
    assert row(assoc([(5, 14)]))["recall"] == 0.0 and row(assoc([(5, 15)]))["recall"] == 1.0


def test_association_precision_counts_untriggered_events(assoc):
    out = assoc([(25, 50), (90, 110)])  # one smile at "haha", one in the background
    smile = next(r for r in out["cues"] if r["cue"] == "smile")
    assert (smile["events"], smile["matched_events"], smile["precision"]) == (2, 1, 0.5)
    assert out["association_precision"] == 0.5  # no other scored cue fired
    # scored triggers: haha (smile), yes (nod), no (head shake, frown); only the smile happens
    assert out["n_triggers"] == 4 and out["association_recall"] == 0.25


def test_head_cues_are_scored_through_the_body_head_joint(assoc):
    out = assoc([(25, 50)])  # "yes" -> nod, "no" -> head shake and frown: all scored
    status = {r["cue"]: r["status"] for r in out["cues"]}
    assert status["nod"] == status["head_shake"] == "tokenized" and status["shrug"] == "not_detectable"
    assert out["n_triggers"] == 4 and out["association_recall"] == 0.25  # only the smile: the head never moves
    nod = lambda o: next(r for r in o["cues"] if r["cue"] == "nod")  # noqa: E731
    assert nod(out)["recall"] == 0.0
    # a nod of the decoded head joint at "yes" (3.0 s: window [67, 105) frames) is found
    nodded = assoc([(25, 50)], nods=[(75, 100)])
    assert nod(nodded)["recall"] == 1.0 and nod(nodded)["precision"] == 1.0
    assert nodded["association_recall"] == 0.5


# ---------------------------------------------------------------------------------------
# Cue-dependent replies, with a scripted generator
# ---------------------------------------------------------------------------------------
def test_cue_reply_accuracy(setup, monkeypatch):
    model, tok, face_vq, body_vq = setup
    prompts = [pair_row(i, f"<FACE_{i}><BODY_{i}> {p}<FACE_0><BODY_1>", "<FACE_1><BODY_1> ok", segment_id=i)
               for i, p in enumerate(rules.AMBIGUOUS_PROMPTS[:4])]  # fmt: skip
    cats = ["playful", "apologetic", "apologetic", "playful"]
    truth = SimpleNamespace(prompts=[{"video_id": r["video_id"], "segment_id": r["segment_id"],
                                      "prompt_utterance_id": r["user_utterance_id"], "prompt_text": r["user_text"],
                                      "manner": "warm" if c == "playful" else "cold", "reply_category": c}
                                     for r, c in zip(prompts, cats)])  # fmt: skip
    category_of = {r["user_text"]: c for r, c in zip(prompts, cats)}
    calls = []

    def scripted(model, tok, face_vq, body_vq, prompts, **kw):
        """Right category when the prompt still has its motion tokens, the other one without."""
        calls.append({**kw, "n": len(prompts)})
        out = []
        for messages in prompts:
            text = messages[-1]["content"]
            right = category_of[parse(text).text]
            cat = right if "<FACE_" in text else ("playful" if right == "apologetic" else "apologetic")
            out.append(SimpleNamespace(plain_text=rules.REPLY_TEMPLATES[cat][0]))
        return out

    def choosing(model, tok, messages):
        """Right category with the motion tokens; without them, always 'apologetic' (cue-blind)."""
        text = messages[-1]["content"]
        return (category_of[parse(text).text], 5.0) if "<FACE_" in text else ("apologetic", 1.0)

    monkeypatch.setattr(lm_eval.generate, "generate_replies", scripted)
    monkeypatch.setattr(lm_eval, "reply_choice", choosing)
    out = lm_eval.cue_reply_accuracy(model, tok, face_vq, body_vq, prompts + TEST, truth)
    assert out["n_prompts"] == 4 and len(out["rows"]) == 4  # the other rows are no prompts
    assert out["cue_reply_accuracy_with_cues"] == 1.0 and out["cue_reply_accuracy_cues_masked"] == 0.0
    assert out["cue_choice_accuracy_with_cues"] == 1.0 and out["cue_choice_accuracy_cues_masked"] == 0.5
    assert out["rows"][1]["choice_margin_with_cues"] == 5.0 and out["choice_too_long"] == 0
    assert out["cue_reply_chance"] == 0.5 and out["cue_reply_majority"] == 0.5
    assert all(kw["do_sample"] is False for kw in calls) and [kw["n"] for kw in calls] == [8]  # one batch
    assert out["rows"][0]["truth"] == "playful" and out["rows"][0]["category_cues_masked"] == "apologetic"
    assert lm_eval.cue_reply_accuracy(model, tok, face_vq, body_vq, prompts, truth, max_prompts=1)["n_prompts"] == 1

    none = lm_eval.cue_reply_accuracy(model, tok, face_vq, body_vq, TEST, truth)
    assert none["n_prompts"] == 0 and math.isnan(none["cue_reply_accuracy_with_cues"])
    assert math.isnan(none["cue_reply_accuracy_cues_masked"]) and [kw["n"] for kw in calls] == [8, 2]  # nothing more
    assert math.isnan(none["cue_choice_accuracy_with_cues"])

    def too_long(*a):
        raise ValueError("a prompt with its reply is longer than the model's context")

    monkeypatch.setattr(lm_eval, "reply_choice", too_long)  # counted and scored wrong, not a crash
    long = lm_eval.cue_reply_accuracy(model, tok, face_vq, body_vq, prompts, truth)
    assert long["choice_too_long"] == 8 and long["cue_choice_accuracy_with_cues"] == 0.0
    assert long["cue_reply_accuracy_with_cues"] == 1.0 and math.isnan(long["rows"][0]["choice_margin_cues_masked"])


def test_reply_log_probs_score_the_last_turn_as_text_only(setup):
    model, tok, *_ = setup
    vocab = motion_token_ids(tok)
    motion = np.r_[np.arange(*vocab.face_range), np.arange(*vocab.body_range)]
    history = TEST[0]["messages"]  # system, user, assistant: an earlier assistant turn
    messages = history + [{"role": "user", "content": "so you read my message"}]
    replies = ["sorry I am late", "haha yes I loved it"]
    got = lm_eval.reply_log_probs(model, tok, messages, replies)
    model.eval()  # as reply_log_probs scores (an earlier test leaves the model in training mode)
    for reply, value in zip(replies, got):  # by hand: softmax over the text tokens, last turn only
        conv = messages + [{"role": "assistant", "content": reply}]
        (ids, mask), = encode_chats(tok, [conv])
        (prefix, _), = encode_chats(tok, [messages])
        ids, mask = np.array(ids), np.array(mask, bool)
        with torch.no_grad():
            z = model(input_ids=torch.from_numpy(ids)[None]).logits[0].float()
        z[:, torch.from_numpy(motion)] = -math.inf
        logp = torch.log_softmax(z, -1).numpy()
        t = np.flatnonzero(mask[1:]) + 1
        t = t[t >= len(prefix)]  # the earlier assistant turn is context, not scored
        assert value == pytest.approx(logp[t - 1, ids[t]].sum(), rel=1e-4)
        raw = _hand_nll(model, tok, conv)[0][-len(t):]
        assert value > -raw.sum()  # ruling the motion tokens out can only raise the text's probability
    with pytest.raises(ValueError, match="longer than the model's context"):
        lm_eval.reply_log_probs(model, tok, [{"role": "user", "content": "hello there " * 200}], ["ok"])


def test_reply_choice_sums_the_probability_of_each_category(setup, monkeypatch):
    model, tok, *_ = setup
    n = {c: len(ts) for c, ts in rules.REPLY_TEMPLATES.items()}
    # playful: one template very likely (ln p = -1), the rest unlikely; apologetic: all at ln p = -3
    fake = np.r_[[-1.0] + [-20.0] * (n["playful"] - 1), [-3.0] * n["apologetic"]]
    monkeypatch.setattr(lm_eval, "reply_log_probs", lambda *a, **k: fake)
    cat, margin = lm_eval.reply_choice(model, tok, [])
    assert cat == "playful" and margin == pytest.approx(-1.0 - (-3.0 + math.log(n["apologetic"])), abs=1e-3)
    fake[0] = -5.0  # now the five apologetic templates together outweigh it
    assert lm_eval.reply_choice(model, tok, [])[0] == "apologetic"


# ---------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------
REQUIRED = ["perplexity", "nll_face", "nll_body", "nll_face_uniform", "nll_body_uniform", "nll_face_unigram",
            "nll_body_unigram", "association_precision", "association_recall", "cue_reply_accuracy_with_cues",
            "cue_reply_accuracy_cues_masked", "bleu_model", "chrf_model", "fd_body_model", "fd_body_random",
            "fd_body_unigram", "fd_body_nearest_neighbour", "diversity_body_model", "variance_body_data",
            "fd_face_model"]  # fmt: skip


def test_evaluate_lm_end_to_end(setup):
    model, tok, face_vq, body_vq = setup
    metrics, tables = lm_eval.evaluate_lm(model, tok, face_vq, body_vq, TRAIN, TEST, max_replies=3, progress=False)
    assert set(REQUIRED) <= set(metrics) and all(isinstance(v, float) for v in metrics.values())
    for k in ("association_precision", "association_recall", "cue_reply_accuracy_with_cues",
              "cue_reply_accuracy_cues_masked"):  # fmt: skip
        assert math.isnan(metrics[k]), k  # synthetic-only: NaN on real data
    for k in ("perplexity", "nll_face", "fd_body_random", "fd_body_unigram", "fd_body_nearest_neighbour"):
        assert np.isfinite(metrics[k]), k
    assert metrics["nll_face_uniform"] == pytest.approx(math.log(K))
    assert metrics["chrf_nearest_neighbour"] > metrics["chrf_model"]  # untrained: babble
    assert len(tables["replies"]) == 3 and tables["prompts"] == [] and tables["cues"] == []
    text = lm_eval.format_lm_metrics(metrics)
    for word in ("nll_face", "uniform", "unigram", "fd_body", "nearest neighbour", "association_recall", "n/a"):
        assert word in text, word
    assert f"{metrics['nll_face_uniform']:.4g}" in text


def test_evaluate_lm_with_truth_fills_the_synthetic_metrics(setup):
    model, tok, face_vq, body_vq = setup
    prompt = TEST[0]
    truth = SimpleNamespace(prompts=[{"video_id": prompt["video_id"], "segment_id": prompt["segment_id"],
                                      "prompt_utterance_id": prompt["user_utterance_id"], "prompt_text": "x",
                                      "manner": "warm", "reply_category": "playful"}])  # fmt: skip
    metrics, tables = lm_eval.evaluate_lm(model, tok, face_vq, body_vq, TRAIN, TEST[:2], truth, max_replies=2,
                                          progress=False)  # fmt: skip
    assert metrics["n_prompts"] == 1 and metrics["cue_reply_accuracy_with_cues"] in (0.0, 1.0)
    assert len(tables["prompts"]) == 1 and {r["cue"] for r in tables["cues"]} == set(rules.CUES)
    assert metrics["n_triggers"] >= 1  # "no not really": a frown trigger (and more) in the real reply


def test_reply_category_ignores_words_every_reply_uses():
    from mini_mars.lm_eval import reply_category

    assert reply_category("Yeah, I do not know, right?") is None  # no content word of either category
    assert reply_category("Yeah, sorry, I will fix it") == "apologetic"


def test_association_counts_pairs_too_long_for_the_context(setup, monkeypatch):
    tok = setup[1]

    def too_long(*a, **k):
        raise ValueError("the prompt (500 tokens) and the words (40 tokens) do not fit in the model's context")

    monkeypatch.setattr(lm_eval.generate, "gesture_for", too_long)
    rows = [pair_row(0, "tell me", "<FACE_0><BODY_0> so haha yes no")]
    out = lm_eval.association(None, tok, fake_vq("face"), fake_vq("body"), rows)
    assert out["too_long_for_context"] == 1 and out["n_triggers"] == 0  # counted, not scored
    assert math.isnan(out["association_recall"]) and math.isnan(out["association_recall_data"])


class _NoSynonyms:
    """A WordNet stand-in with no synonyms: METEOR then matches exact words and stems only."""

    @staticmethod
    def synsets(*args, **kwargs):
        return []


def test_meteor_scores_word_matches_and_order(monkeypatch):
    pytest.importorskip("nltk")
    monkeypatch.setattr(lm_eval, "_wordnet", lambda: _NoSynonyms())
    same = lm_eval.meteor(["well I think it is late"], ["well I think it is late"])
    shuffled = lm_eval.meteor(["late it is think I well"], ["well I think it is late"])
    stems = lm_eval.meteor(["she thinks it was <FACE_1><BODY_2>late"], ["she thinking it was late"])
    assert same > 0.95 and 0.0 < shuffled < same  # same words, broken order: the fragmentation penalty
    assert stems > 0.9  # "thinks" / "thinking" match by stem; the motion tokens are stripped
    assert lm_eval.meteor(["haha yes"], ["no not really"]) == 0.0


def test_optional_text_metrics_are_nan_without_their_resources(monkeypatch, tmp_path):
    def missing():
        raise lm_eval.MissingResource("no WordNet here")

    monkeypatch.setattr(lm_eval, "_wordnet", missing)
    monkeypatch.setattr(lm_eval, "BERTSCORE_MODEL", (str(tmp_path / "no-such-model"), 2))
    scores = lm_eval.text_scores(["well I think so"], ["well I think it is"])
    assert scores["bleu"] > 0 and math.isnan(scores["meteor"]) and math.isnan(scores["bertscore_f1"])
    with pytest.raises(lm_eval.MissingResource, match="on disk"):
        lm_eval.bertscore(["a"], ["b"])
    text = lm_eval.format_lm_metrics({f"{k}_model": v for k, v in scores.items()})
    assert "meteor" in text and "n/a: meteor needs nltk" in text


def test_bertscore_with_a_small_local_model(tmp_path):
    """The real bert_score path on a tiny random BERT saved here (no download): identical
    texts score 1, different ones less."""
    pytest.importorskip("bert_score")
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "well", "i", "think", "so", "haha", "yes", "no", "not",
             "really", ",", "."]  # fmt: skip
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"), model_max_length=64).save_pretrained(tmp_path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(tmp_path)  # fmt: skip
    same = lm_eval.bertscore(["well, i think so."], ["well, i think so."], model=str(tmp_path), layers=2)
    other = lm_eval.bertscore(["haha yes"], ["no, not really."], model=str(tmp_path), layers=2)
    assert same == pytest.approx(1.0, abs=1e-4) and other < same - 0.01
    with pytest.raises(ValueError, match="layers"):
        lm_eval.bertscore(["a"], ["b"], model=str(tmp_path))


def test_meteor_without_the_wordnet_corpus_says_how_to_get_it(monkeypatch, tmp_path):
    nltk = pytest.importorskip("nltk")
    from nltk.corpus import wordnet

    if type(wordnet).__name__ != "LazyCorpusLoader":
        pytest.skip("WordNet is already loaded in this process")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # an empty data folder: no corpus anywhere
    with pytest.raises(lm_eval.MissingResource, match="nltk.downloader wordnet"):
        lm_eval.meteor(["well I think so"], ["well I think so"])
