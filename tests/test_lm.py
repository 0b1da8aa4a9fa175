"""The language model: tokenizer (motion tokens, chat template, assistant mask), labels,
training (loss drops, safetensors + JSON files, exact resume), pretrained bases (full
fine-tuning and LoRA) and clear errors. Smoke preset on a few dozen hand-made pairs whose
replies follow from one word of the user message; well under a minute on one core."""

from __future__ import annotations

import json
import math

import datasets
import numpy as np
import pytest
import torch

from mini_mars.config import LMConfig, preset
from mini_mars.lm import build_model, count_parameters, load_trained
from mini_mars.lm_tokenizer import (
    CHAT_TEMPLATE,
    _prefix_mask,
    add_motion_tokens,
    MAX_FIXED_PROMPTS,
    encode_chats,
    fixed_system_prompts,
    motion_token_ids,
    train_text_tokenizer,
)
from mini_mars.train_lm import collate, epoch_batches, tokenize, train_lm

SYSTEM = "The text contains nonverbal tokens <FACE_k> and <BODY_k>."
# The reply is fixed by one key word of the user message, so it can be learned exactly.
REPLIES = {
    "hello": "<FACE_1><BODY_2> hi<FACE_5><BODY_6> there",
    "bye": "<FACE_3><BODY_4> see you<FACE_3><BODY_4> soon",
    "yes": "<FACE_7><BODY_8> great<FACE_9><BODY_1> news",
    "no": "<FACE_2><BODY_9> oh<FACE_2><BODY_9> sorry",
}
FILLER = ["well", "so", "um", "right", "okay", "look"]
STEPS, EVAL_EVERY = 60, 20  # the smoke preset's


def toy_pairs(n: int, offset: int = 0) -> list[dict]:
    """``n`` rows {"messages": [system, user, assistant]} in the interleaved text format."""
    keys, rows = list(REPLIES), []
    for i in range(offset, offset + n):
        key = keys[i % len(keys)]
        user = (f"<FACE_{i % 10}><BODY_{3 * i % 10}> {FILLER[i % 6]}<FACE_{(i + 1) % 10}><BODY_{i % 7}> {key} "
                f"{FILLER[i // 6 % 6]}")  # fmt: skip
        rows.append({"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user},
                                  {"role": "assistant", "content": REPLIES[key]}]})  # fmt: skip
    return rows


PAIRS = {"train": toy_pairs(48), "test": toy_pairs(16, offset=100)}
K = preset("smoke").vq_face.codebook_size  # 32 face and 32 body tokens


@pytest.fixture(scope="module")
def tok():
    texts = [m["content"] for row in PAIRS["train"] for m in row["messages"]]
    return train_text_tokenizer(texts, vocab_size=preset("smoke").lm.vocab_size, face_codes=K, body_codes=K)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An uninterrupted smoke run."""
    return train_lm(PAIRS, preset="smoke", out=tmp_path_factory.mktemp("lm") / "full", progress=False)


# ---------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------
def test_motion_tokens_are_one_id_each_and_contiguous(tok):
    ids = tok("<FACE_3><BODY_17>", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<FACE_3>", "<BODY_17>"]
    text = "<FACE_3><BODY_17> Hello<FACE_4><BODY_2> world"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    hello, world = (tok(w, add_special_tokens=False)["input_ids"] for w in (" Hello", " world"))
    assert ids == ids[:2] + hello + tok.convert_tokens_to_ids(["<FACE_4>", "<BODY_2>"]) + world  # words as in plain text
    assert tok.decode(ids) == text
    mv = motion_token_ids(tok)
    assert len(mv.face_ids) == len(mv.body_ids) == K
    assert np.array_equal(np.diff(np.r_[mv.face_ids, mv.body_ids]), np.ones(2 * K - 1))  # face block, then body block
    assert mv.face_range == (mv.face_ids[0], mv.face_ids[0] + K) and mv.body_range[0] == mv.face_range[1]
    assert mv.code(ids).tolist() == [3, 17] + [-1] * len(hello) + [4, 2] + [-1] * len(world)
    assert mv.part(ids[:2]).tolist() == ["face", "body"]
    assert len(tok) == len(tok.get_vocab()) <= preset("smoke").lm.vocab_size + 2 * K


def test_chat_template_round_trip_and_save(tok, tmp_path):
    from transformers import AutoTokenizer

    msgs = PAIRS["train"][0]["messages"]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == ("<|begin|><|system|>" + SYSTEM + "<|end|><|user|>" + msgs[1]["content"] + "<|end|><|assistant|>"
                    + msgs[2]["content"] + "<|end|>")  # fmt: skip
    ids = tok.apply_chat_template(msgs)["input_ids"]
    assert tok.decode(ids) == text  # byte-level: lossless
    prompt = tok.apply_chat_template(msgs[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|user|>" + msgs[1]["content"] + "<|end|><|assistant|>") and text.startswith(prompt)
    assert tok.eos_token == "<|end|>" and tok.pad_token_id is not None
    tok.save_pretrained(tmp_path)
    for f in tmp_path.iterdir():
        assert f.suffix in (".json", ".jinja") and f.read_bytes()[:1] != b"\x80", f
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.apply_chat_template(msgs)["input_ids"] == ids
    a, b = motion_token_ids(again), motion_token_ids(tok)
    assert np.array_equal(a.face_ids, b.face_ids) and np.array_equal(a.body_ids, b.body_ids)


def test_a_fixed_system_prompt_is_one_token_and_many_are_left_to_bpe():
    convs = [row["messages"] for row in PAIRS["train"]]
    texts = [m["content"] for c in convs for m in c]
    assert fixed_system_prompts(convs) == {SYSTEM}
    many = [[{"role": "system", "content": f"prompt number {i}"}] for i in range(MAX_FIXED_PROMPTS + 1)]
    assert fixed_system_prompts(many) == set()
    plain = train_text_tokenizer(texts, vocab_size=preset("smoke").lm.vocab_size, face_codes=K, body_codes=K)
    whole = train_text_tokenizer(texts, vocab_size=preset("smoke").lm.vocab_size, face_codes=K, body_codes=K,
                                 whole_texts=fixed_system_prompts(convs))  # fmt: skip
    assert len(plain(SYSTEM, add_special_tokens=False)["input_ids"]) > 5
    assert whole.convert_ids_to_tokens(whole(SYSTEM, add_special_tokens=False)["input_ids"]) == [SYSTEM]
    n_plain, n_whole = (len(t.apply_chat_template(convs[0])["input_ids"]) for t in (plain, whole))
    assert n_whole == n_plain - len(plain(SYSTEM, add_special_tokens=False)["input_ids"]) + 1
    assert whole.decode(whole.apply_chat_template(convs[0])["input_ids"]) == plain.apply_chat_template(convs[0], tokenize=False)
    mv = motion_token_ids(whole)  # the motion blocks stay contiguous, the prompt comes after them
    assert np.array_equal(np.diff(np.r_[mv.face_ids, mv.body_ids]), np.ones(2 * K - 1))
    assert whole.convert_tokens_to_ids(SYSTEM) == len(whole) - 1 == mv.body_range[1]
    other = whole("a different prompt", add_special_tokens=False)["input_ids"]  # anything else: BPE, lossless
    assert len(other) > 1 and whole.decode(other) == "a different prompt"


def test_assistant_mask_covers_exactly_the_replies(tok):
    two_turns = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "<FACE_1><BODY_1> hello"},
                 {"role": "assistant", "content": REPLIES["hello"]}, {"role": "user", "content": " no"},
                 {"role": "assistant", "content": "<FACE_0><BODY_0> fine"}]  # fmt: skip
    (ids, mask), = encode_chats(tok, [two_turns])
    ids, mask = np.array(ids), np.array(mask, dtype=bool)
    runs = np.split(np.flatnonzero(mask), np.flatnonzero(np.diff(np.flatnonzero(mask)) > 1) + 1)
    assert [tok.decode(ids[r]) for r in runs] == [REPLIES["hello"] + "<|end|>", "<FACE_0><BODY_0> fine<|end|>"]
    assert tok.convert_ids_to_tokens([int(ids[r[0] - 1]) for r in runs]) == ["<|assistant|>"] * 2  # header not trained
    assert _prefix_mask(tok, two_turns) == (ids.tolist(), mask.astype(int).tolist())  # the fallback agrees


def test_labels_are_ignored_on_system_and_user_tokens(tok):
    data = tokenize(tok, [r["messages"] for r in PAIRS["train"][:6]], max_length=256)
    b = collate(data, np.arange(6), tok.pad_token_id)
    ids, labels, attn = b["input_ids"], b["labels"], b["attention_mask"]
    assert ids.shape == labels.shape == attn.shape and int(attn.sum()) == int(data.lengths.sum())
    for row in range(6):
        n = int(data.lengths[row])
        assert (labels[row, n:] == -100).all() and (ids[row, n:] == tok.pad_token_id).all()  # padding
        start = tok.apply_chat_template(PAIRS["train"][row]["messages"][:2], add_generation_prompt=True)["input_ids"]
        assert (labels[row, : len(start)] == -100).all()  # system, user and the <|assistant|> header
        assert torch.equal(labels[row, len(start) : n], ids[row, len(start) : n])  # the reply and its <|end|>


def test_length_grouped_batches_cover_each_example_once():
    lengths = np.random.default_rng(0).integers(5, 500, size=103)
    batches = epoch_batches(lengths, 8, 4, seed=0, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(103)) and len(batches) == math.ceil(103 / 8)
    assert all(np.array_equal(a, b) for a, b in zip(batches, epoch_batches(lengths, 8, 4, seed=0, epoch=0)))
    other = epoch_batches(lengths, 8, 4, seed=0, epoch=1)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))  # a new order every epoch
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 0.85 * sum(len(b) * lengths[b].max() for b in np.array_split(np.arange(103), 13))  # less padding


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
def test_training_lowers_the_eval_loss(full_run):
    log, m = full_run.log, full_run.metrics
    assert full_run.finished and full_run.step == STEPS
    assert [r["step"] for r in log] == list(range(0, STEPS + 1, EVAL_EVERY))
    assert abs(log[0]["eval_loss"] - m["uniform_loss"]) < 1.0  # untrained: about ln V
    assert m["eval_loss"] < 0.3 * log[0]["eval_loss"]  # measured: 0.64 vs 5.90 (0.11 x)
    assert m["perplexity"] == pytest.approx(math.exp(m["eval_loss"]))
    assert m["steps"] == STEPS and m["n_parameters"] == count_parameters(full_run.model) > 50_000
    assert m["truncated"] == {"train": 0, "test": 0} and m["train_tokens_per_s"] > 0
    assert json.loads((full_run.out / "metrics.json").read_text()) == m
    assert json.loads((full_run.out / "train_log.json").read_text()) == log


def test_run_folder_is_safetensors_and_json_only(full_run):
    out = full_run.out
    names = {f.relative_to(out).as_posix() for f in out.rglob("*") if f.is_file()}
    assert {"config.json", "train_log.json", "metrics.json", "tokenizer/tokenizer.json", "model/config.json",
            "model/model.safetensors", "model/tokenizer.json", "checkpoints/last/model.safetensors",
            "checkpoints/last/optimizer.safetensors", "checkpoints/last/optimizer.json",
            "checkpoints/last/state.json"} <= names  # fmt: skip
    for f in out.rglob("*"):
        if f.is_file():
            assert f.suffix in (".json", ".safetensors", ".jinja"), f
            assert f.read_bytes()[:1] != b"\x80", f"{f} looks like a pickle"
    assert not list(out.rglob(".*")), "temporary files left behind"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["preset"] == "smoke" and cfg["lm"]["hidden_size"] == 64 and cfg["motion"]["face_codes"] == K
    state = json.loads((out / "checkpoints/last/state.json").read_text())
    assert state["step"] == STEPS and {"python", "numpy"} <= set(state["rng"])
    model, tok = load_trained(out)
    x = torch.tensor([tok.apply_chat_template(PAIRS["test"][0]["messages"][:2], add_generation_prompt=True)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(x).logits, full_run.model(x).logits, atol=1e-6)


def test_resume_matches_uninterrupted_run(full_run, tmp_path):
    out = tmp_path / "run"
    stopped = train_lm(PAIRS, preset="smoke", out=out, progress=False, stop_after=30)
    assert not stopped.finished and stopped.step == 30
    assert json.loads((out / "checkpoints/last/state.json").read_text())["step"] == 20  # "killed" after step 30
    resumed = train_lm(PAIRS, preset="smoke", out=out, progress=False, resume=True)
    assert resumed.finished and resumed.step == STEPS
    assert resumed.metrics["eval_loss"] == pytest.approx(full_run.metrics["eval_loss"], abs=1e-6)
    assert [r["eval_loss"] for r in resumed.log] == pytest.approx([r["eval_loss"] for r in full_run.log], abs=1e-6)


def test_truncation_is_counted_not_silent(tok):
    convs = [r["messages"] for r in PAIRS["train"][:10]]
    full = tokenize(tok, convs, max_length=256)
    n = int(np.median(full.lengths))
    cut = tokenize(tok, convs, max_length=n - 3)
    assert cut.truncated == int((full.lengths > n - 3).sum()) > 0
    assert cut.lengths.max() <= n - 3 and cut.dropped == 0  # replies cut short, not gone
    gone = tokenize(tok, convs, max_length=5)  # not even the user message fits
    assert gone.dropped == 10 and gone.ids == [] and gone.summary()["dropped"] == 10


# ---------------------------------------------------------------------------------------
# Pretrained bases
# ---------------------------------------------------------------------------------------
QWEN_LIKE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
             "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")  # no generation markers


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A tiny random LlamaForCausalLM (untied head) + a BPE tokenizer with a Qwen-like chat
    template and no motion tokens, saved like a Hub checkpoint."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    bpe.train_from_iterator([SYSTEM, " hello there well so um right okay look hi see you soon"] * 20, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>")  # no pad token, like many bases
    tok.chat_template = QWEN_LIKE
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=256, tie_word_embeddings=False,
                                         eos_token_id=tok.eos_token_id))  # fmt: skip
    path = tmp_path_factory.mktemp("base")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, len(tok)


def test_pretrained_base_gets_motion_tokens_and_trains(base_dir, tmp_path):
    path, n_old = base_dir
    model, tok = build_model(LMConfig(base=str(path)), face_codes=K, body_codes=K)
    mv = motion_token_ids(tok)
    assert len(tok) == n_old + 2 * K and mv.face_range[0] == n_old and tok.pad_token == "<|im_end|>"
    for emb in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):  # untied: both grew
        assert emb.shape[0] == len(tok)
        assert torch.allclose(emb[n_old:], emb[:n_old].mean(0).expand(2 * K, -1))  # new rows at the mean
    r = train_lm(PAIRS, preset="smoke", out=tmp_path / "ft", steps=1, eval_every=1, base=str(path), progress=False)
    assert r.finished and math.isfinite(r.metrics["eval_loss"]) and r.metrics["n_trainable"] == r.metrics["n_parameters"]
    (ids, mask), = encode_chats(r.tokenizer, [PAIRS["train"][0]["messages"]])  # no generation markers: prefix path
    assert r.tokenizer.decode([i for i, m in zip(ids, mask) if m]) == REPLIES["hello"] + "<|im_end|>\n"
    model2, tok2 = load_trained(r.out)
    assert len(tok2) == len(tok) and model2.get_input_embeddings().weight.shape[0] == len(tok)


def test_lora_trains_only_adapters_and_new_token_rows(base_dir, tmp_path):
    path, n_old = base_dir
    cfg = LMConfig(base=str(path), lora=True, lora_r=4, lora_alpha=8)
    model, tok = build_model(cfg, face_codes=K, body_codes=K)
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in n or "trainable_tokens" in n for n in trained)
    assert any("embed_tokens" in n for n in trained) and any("lm_head" in n for n in trained)  # untied: both ends
    assert count_parameters(model, trainable_only=True) < 0.5 * count_parameters(model)
    r = train_lm(PAIRS, preset="smoke", out=tmp_path / "lora", steps=2, eval_every=2, base=str(path), lora=True,
                 lora_r=4, lora_alpha=8, progress=False)  # fmt: skip
    assert r.finished and math.isfinite(r.metrics["eval_loss"])
    assert r.metrics["n_trainable"] == count_parameters(model, trainable_only=True)
    assert not hasattr(r.model, "peft_config")  # saved and returned merged
    base_model, _ = load_trained(path)
    merged, _ = load_trained(r.out)
    old, new = base_model.get_input_embeddings().weight, merged.get_input_embeddings().weight
    assert torch.equal(new[:n_old], old)  # the base vocabulary is untouched
    assert not torch.equal(new[n_old:], new[n_old:].mean(0).expand(2 * K, -1))  # the new rows learned


def test_add_motion_tokens_to_a_tokenizer_without_template(base_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir[0])
    tok.chat_template = None
    assert add_motion_tokens(tok, 4, 6) > 10
    assert tok.chat_template == CHAT_TEMPLATE and tok.pad_token is not None
    assert (len(motion_token_ids(tok).face_ids), len(motion_token_ids(tok).body_ids)) == (4, 6)
    assert add_motion_tokens(tok, 4, 6) == 0  # idempotent
    with pytest.raises(ValueError, match="already has 10 of the 16"):
        add_motion_tokens(tok, 8, 8)


def test_offline_base_error_says_how_to_use_a_folder():
    with pytest.raises(OSError, match=r"offline.*base='DIR'"):
        build_model(LMConfig(base="nobody/no-such-model-xyz"), face_codes=4, body_codes=4)


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors(full_run, tmp_path):
    kw = dict(preset="smoke", out=tmp_path / "bad", progress=False)
    with pytest.raises(ValueError, match="train split is empty"):
        train_lm({"train": [], "test": PAIRS["test"]}, **kw)
    with pytest.raises(ValueError, match="no 'messages' column"):
        train_lm({"train": datasets.Dataset.from_dict({"text": ["hi"]}), "test": PAIRS["test"]}, **kw)
    bad = [{"messages": [{"role": "user", "content": " hi"}, {"role": "bot", "content": " yo"}]}]
    with pytest.raises(ValueError, match=r"train split, row 0, message 1: expected \{'role': one of"):
        train_lm({"train": bad, "test": PAIRS["test"]}, **kw)
    with pytest.raises(ValueError, match="no assistant message"):
        train_lm({"train": [{"messages": [{"role": "user", "content": " hi"}]}], "test": PAIRS["test"]}, **kw)
    with pytest.raises(ValueError, match="'train' and 'test' splits"):
        train_lm(PAIRS["train"], **kw)
    with pytest.raises(ValueError, match="unknown config fields"):
        train_lm(PAIRS, lrr=1.0, **kw)
    with pytest.raises(ValueError, match=r"another config .*lr: 0\.003 vs 0\.001"):
        train_lm(PAIRS, preset="smoke", out=full_run.out, progress=False, resume=True, lr=1e-3)
    assert json.loads((full_run.out / "metrics.json").read_text()) == full_run.metrics  # left as it was
    with pytest.raises(ValueError, match="lora=True needs a pretrained base"):
        LMConfig(lora=True)


def test_motion_embeddings_start_from_the_codebooks(tok):
    from mini_mars.lm import init_motion_embeddings

    torch.manual_seed(0)
    model, _ = build_model(preset("smoke").lm, tok)
    gen = torch.Generator().manual_seed(1)
    books = {"face": torch.randn(K, 4, generator=gen) * torch.tensor([1.0, 5.0, 0.1, 2.0]),
             "body": torch.randn(K, 4, generator=gen)}  # fmt: skip
    before = model.get_input_embeddings().weight.detach().clone()
    init_motion_embeddings(model, tok, books, share=1.0)
    emb = model.get_input_embeddings().weight.detach()
    mv = motion_token_ids(tok)
    face = emb[torch.as_tensor(mv.face_ids)]
    z = (books["face"] - books["face"].mean(0)) / books["face"].std(0)  # distances after z-scoring are kept
    d_code, d_emb = torch.pdist(z), torch.pdist(face)
    assert np.corrcoef(d_code.numpy(), d_emb.numpy())[0, 1] > 0.8
    sigma = model.config.initializer_range
    assert 0.5 * sigma < face.std().item() < 1.5 * sigma  # the scale of the other rows
    others = np.setdiff1d(np.arange(len(tok)), np.r_[mv.face_ids, mv.body_ids])
    assert torch.equal(emb[others], before[others])  # words and chat tokens untouched
    init_motion_embeddings(model, tok, books)  # the default: half the codebook's structure, half noise
    half = model.get_input_embeddings().weight.detach()[torch.as_tensor(mv.face_ids)]
    assert 0.3 < np.corrcoef(d_code.numpy(), torch.pdist(half).numpy())[0, 1] < 0.9
    assert torch.linalg.matrix_rank(half) == K > torch.linalg.matrix_rank(face)  # full rank with the noise
    with pytest.raises(ValueError, match=r"face codebook is \(3, 4\); expected \(32, d\)"):
        init_motion_embeddings(model, tok, {"face": torch.zeros(3, 4), "body": books["body"]})


def test_train_lm_uses_the_codebooks_unless_told_otherwise(tmp_path):
    gen = torch.Generator().manual_seed(1)
    books = {"face": torch.randn(K, 4, generator=gen), "body": torch.randn(K, 4, generator=gen)}
    runs = {init: train_lm(PAIRS, preset="smoke", out=tmp_path / init, steps=1, progress=False, codebooks=books,
                           motion_init=init, lr=1e-9)  # fmt: skip
            for init in ("codebook", "random")}
    rows = {}
    for init, run in runs.items():
        mv = motion_token_ids(run.tokenizer)
        rows[init] = run.model.get_input_embeddings().weight.detach()[torch.as_tensor(mv.face_ids)]
    z = (books["face"] - books["face"].mean(0)) / books["face"].std(0)
    r = {init: np.corrcoef(torch.pdist(z).numpy(), torch.pdist(e).numpy())[0, 1] for init, e in rows.items()}
    assert r["codebook"] > 0.3 and abs(r["random"]) < 0.2
