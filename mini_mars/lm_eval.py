"""Honest evaluation of a trained mini MARS: numbers next to the baselines they must beat.

The paper reports perplexity, BERTScore, METEOR and the NLL of face and body tokens, with
no baseline; its best NLL-F (7.295) is worse than guessing uniformly (ln 512 = 6.24). Here
every number comes with the figure a trivial model gets, and on the synthetic VENUS the
model is also checked against what the generator planted.

=====================================  ===================================================
function                               what it measures
=====================================  ===================================================
:func:`token_nll`                      perplexity and NLL of face / body / text tokens of
                                       the replies (teacher forcing)
:func:`baseline_nll`                   the same NLLs for uniform codes (ln K) and for the
                                       training code frequencies (unigram)
:func:`text_scores`                    corpus BLEU and chrF of the reply words (sacrebleu);
                                       METEOR and BERTScore when their corpus / model
                                       is on this machine (:func:`meteor`, :func:`bertscore`)
:func:`reply_category`                 playful / apologetic / None for a reply text
:func:`cue_reply_accuracy`             synthetic: does the prompt's manner (carried only
                                       by its motion tokens) pick the reply's category?
:func:`association`                    synthetic: does the model put a smile at "haha", a
                                       frown at "not", ...? (precision / recall)
:func:`motion_scores`                  decoded motion of generated replies vs the real
                                       replies: Fréchet distance, diversity, variance,
                                       next to random, unigram and nearest-neighbour codes
:func:`evaluate_lm`                    all of the above as one flat dict (+ tables)
=====================================  ===================================================

Conventions: a *conversation* is a list of ``{"role", "content"}`` messages; *pairs* are
the rows of ``mini_mars.pairs.build_pairs`` (a ``datasets.Dataset`` or a list of dicts with
``messages``, ``video_id``, ``segment_id``, ``user_utterance_id``, ``user_text``,
``assistant_text``); the last message of a pair is the assistant's reply and everything
before it is the prompt. Natural logarithms throughout. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Sequence

import numpy as np
import torch
from transformers import DynamicCache

from venus_analysis import cues as cue_lib
from venus_analysis import schema
from venus_analysis import synthetic_rules as rules

from . import generate
from .interleave import parse, strip_motion
from .lm import cache_kwargs
from .lm_tokenizer import encode_chats, motion_token_ids
from .vq_metrics import diversity, frechet_distance, variance
from .vqvae import device_of

NAN = float("nan")
MOTION_SOURCES = ("model", "data", "random", "unigram", "nearest_neighbour")
SYNTHETIC_KEYS = (
    "association_precision", "association_recall", "association_precision_data", "association_recall_data",
    "cue_reply_accuracy_with_cues", "cue_reply_accuracy_cues_masked", "cue_reply_chance", "cue_reply_majority",
    "cue_choice_accuracy_with_cues", "cue_choice_accuracy_cues_masked", "choice_too_long",
    "n_prompts", "n_triggers", "not_detectable", "too_long_for_context",
)  # fmt: skip


# ---------------------------------------------------------------------------------------
# Input helpers
# ---------------------------------------------------------------------------------------
def _conversations(data, name: str = "conversations") -> list[list[dict]]:
    """Message lists from a list of conversations, a list of pair rows or a Dataset of pairs."""
    if hasattr(data, "column_names"):
        if "messages" not in data.column_names:
            raise ValueError(f"{name}: the dataset has no 'messages' column (it has {data.column_names})")
        convs = list(data["messages"])
    else:
        convs = [row["messages"] if isinstance(row, dict) else row for row in data]
    if not convs:
        raise ValueError(f"{name}: no conversations given")
    for i, conv in enumerate(convs):
        if not isinstance(conv, (list, tuple)) or not all(isinstance(m, dict) and "role" in m for m in conv):
            raise ValueError(f"{name}[{i}]: expected a list of {{'role', 'content'}} messages; got {conv!r:.80}")
    return [list(c) for c in convs]


def _rows(pairs, name: str = "pairs") -> list[dict]:
    """Pair rows as dicts (a Dataset is read row by row); a ValueError when empty or odd."""
    rows = [dict(r) for r in pairs] if pairs is not None else []
    if not rows:
        raise ValueError(f"{name}: no pairs given (expected the rows of mini_mars.pairs.build_pairs)")
    for i, row in enumerate(rows):
        msgs = row.get("messages")
        if not msgs or msgs[-1].get("role") != "assistant":
            raise ValueError(f"{name}[{i}]: expected 'messages' ending with the assistant's reply")
    return rows


def _pick(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` items: all of them, or a sorted random subset."""
    if limit is None or n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _prompt(row: dict) -> list[dict]:
    """The chat messages a pair's reply answers: everything but the reply."""
    return list(row["messages"][:-1])


def _k(tokenizer) -> tuple[int, int]:
    """(K_face, K_body) of a tokenizer; a ValueError if it has no motion tokens."""
    vocab = motion_token_ids(tokenizer)
    return len(vocab.face_ids), len(vocab.body_ids)


def _check_vq(tokenizer, face_vq, body_vq) -> tuple[int, int]:
    """The tokenizer's K per part, checked against the VQ-VAEs' codebooks."""
    kf, kb = _k(tokenizer)
    for part, k, vq in (("face", kf, face_vq), ("body", kb, body_vq)):
        size = getattr(getattr(vq, "cfg", None), "codebook_size", None)
        if size is not None and size != k:
            raise ValueError(f"the tokenizer has {k} <{part.upper()}_k> tokens but the {part} VQ-VAE has "
                             f"{size} codes: use the tokenizers the language model was trained with")  # fmt: skip
    return kf, kb


# ---------------------------------------------------------------------------------------
# 1. Token NLL (teacher forcing)
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def token_nll(model, tokenizer, conversations, *, batch_size: int = 16) -> dict:
    """Per-token negative log-likelihood of the assistant tokens, by kind.

    With ``x`` a conversation's ids and ``A`` its assistant targets ``{t >= 1 : mask_t}``
    (``encode_chats``; the reply and its end token), ``nll_t = -ln p(x_t | x_<t)``:
    ``perplexity = exp(mean_{t in A} nll_t)``; ``nll_face`` / ``nll_body`` / ``nll_text`` =
    mean nll_t over the targets that are FACE / BODY / other tokens (counts ``n_face``,
    ``n_body``, ``n_text``). NLL-B is the model's raw NLL over the whole vocabulary: the
    pairing rule of generation (a BODY must follow a FACE) is *not* applied;
    ``nll_body_paired`` = mean -ln softmax over the BODY block only is the NLL under it.
    Conversations longer than the model's context are cut (``n_truncated``).
    """
    convs = _conversations(conversations)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    vocab = motion_token_ids(tokenizer)
    b0, b1 = vocab.body_range
    limit = generate.max_positions(model)
    encoded, truncated = [], 0
    for ids, mask in encode_chats(tokenizer, convs):
        ids, mask = np.asarray(ids, np.int64), np.asarray(mask, bool)
        if limit is not None and len(ids) > limit:
            ids, mask, truncated = ids[:limit], mask[:limit], truncated + 1
        encoded.append((ids, mask))
    if not any(m[1:].any() for _, m in encoded):
        raise ValueError("no assistant tokens to score: every conversation needs an assistant message")

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    nll, target, paired = [], [], []  # per target token: -ln p, its id, -ln p within the BODY block
    try:
        order = np.argsort([-len(ids) for ids, _ in encoded], kind="stable")  # similar lengths: little padding
        for s in range(0, len(order), batch_size):
            batch = [encoded[i] for i in order[s : s + batch_size]]
            L = max(len(ids) for ids, _ in batch)
            x = np.full((len(batch), L), pad, np.int64)
            attn = np.zeros((len(batch), L), np.int64)
            for r, (ids, _) in enumerate(batch):
                x[r, : len(ids)], attn[r, : len(ids)] = ids, 1
            x, attn = torch.from_numpy(x).to(device), torch.from_numpy(attn).to(device)
            logits = model(input_ids=x, attention_mask=attn).logits  # right padding, masked
            for r, (ids, mask) in enumerate(batch):
                t = np.flatnonzero(mask[1:]) + 1  # targets t >= 1, predicted from position t - 1
                prev = torch.from_numpy(t - 1).to(logits.device)
                tgt = torch.from_numpy(ids[t]).to(logits.device)
                z = logits[r, prev].float()  # (n_targets, V): only the rows scored, never (B, L, V) in fp32
                logp = z.gather(1, tgt[:, None])[:, 0] - torch.logsumexp(z, dim=-1)  # ln p(x_t | x_<t)
                nll.append(-logp.cpu().numpy())
                # under the pairing rule a BODY is chosen among BODY tokens only: renormalise over the block
                block = torch.logsumexp(z[:, b0:b1], dim=-1) - torch.logsumexp(z, dim=-1)
                paired.append((block - logp).cpu().numpy())
                target.append(ids[t])
    finally:
        model.train(was_training)
    nll, target, paired = np.concatenate(nll), np.concatenate(target), np.concatenate(paired)
    part = vocab.part(target)
    face, body, text = part == "face", part == "body", part == ""

    def mean(sel):
        return float(nll[sel].mean()) if sel.any() else NAN

    return {
        "perplexity": float(math.exp(min(float(nll.mean()), 700.0))),
        "nll": float(nll.mean()),
        "nll_face": mean(face),
        "nll_body": mean(body),
        "nll_body_paired": float(paired[body].mean()) if body.any() else NAN,
        "nll_text": mean(text),
        "n_face": int(face.sum()),
        "n_body": int(body.sum()),
        "n_text": int(text.sum()),
        "n_targets": len(nll),
        "n_truncated": truncated,
    }


# ---------------------------------------------------------------------------------------
# 2. Baseline NLLs
# ---------------------------------------------------------------------------------------
def _assistant_codes(convs: list[list[dict]], k_face: int, k_body: int) -> tuple[np.ndarray, np.ndarray]:
    """Face and body codes of every assistant message (well-formed pairs only)."""
    face, body = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for conv in convs:
        for m in conv:
            if m.get("role") == "assistant":
                p = parse(m.get("content") or "", codebook_size=max(k_face, k_body))
                keep = (p.face < k_face) & (p.body < k_body)
                face.append(p.face[keep]), body.append(p.body[keep])
    return np.concatenate(face), np.concatenate(body)


def unigram_probs(codes, k: int) -> np.ndarray:
    """Add-one smoothed code frequencies: p_k = (c_k + 1) / (N + K)."""
    counts = np.bincount(np.asarray(codes, np.int64), minlength=k)[:k]
    return (counts + 1.0) / (counts.sum() + k)


def baseline_nll(train_conversations, test_conversations, tokenizer) -> dict:
    """NLL of the test assistant motion tokens under two models that ignore all context.

    ``nll_face_uniform = ln K_face``, ``nll_body_uniform = ln K_body``;
    ``nll_*_unigram`` = -mean_{test codes c} ln p_c with p the add-one smoothed code
    frequencies of the train assistant messages, p_k = (c_k + 1) / (N + K). Codes are read
    with ``interleave.parse`` (well-formed pairs). NaN when the test has no motion tokens.
    """
    kf, kb = _k(tokenizer)
    train_f, train_b = _assistant_codes(_conversations(train_conversations, "train_conversations"), kf, kb)
    test_f, test_b = _assistant_codes(_conversations(test_conversations, "test_conversations"), kf, kb)

    def ce(train, test, k):  # cross-entropy of the test codes under the train unigram
        return float(-np.log(unigram_probs(train, k)[test]).mean()) if len(test) else NAN

    return {
        "nll_face_uniform": math.log(kf),
        "nll_body_uniform": math.log(kb),
        "nll_face_unigram": ce(train_f, test_f, kf),
        "nll_body_unigram": ce(train_b, test_b, kb),
        "n_face_train": len(train_f),
        "n_face_test": len(test_f),
    }


# ---------------------------------------------------------------------------------------
# 3. Text scores
# ---------------------------------------------------------------------------------------
# The paper's two text metrics need resources we never download on our own: METEOR needs
# nltk's WordNet corpus (for synonym matches), BERTScore a pretrained encoder (1.4 GB for
# bert_score's English default). Each is computed when its resources are on this machine.
BERTSCORE_MODEL = ("roberta-large", 17)  # bert_score's default for English: the model and the layer it reads
TEXT_METRICS_HOWTO = ("meteor needs nltk and its WordNet corpus (pip install 'venus-mars[text]'; python -m "
                      "nltk.downloader wordnet); bertscore_f1 needs bert-score and roberta-large on disk "
                      "(the [text] extra; then huggingface-cli download roberta-large)")  # fmt: skip


class MissingResource(RuntimeError):
    """A metric's package, corpus or model is not on this machine (nothing is downloaded)."""


def _plain(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[list[str], list[str]]:
    """The texts without motion tokens, checked to pair up one to one."""
    hyps, refs = list(hypotheses), list(references)
    if len(hyps) != len(refs):
        raise ValueError(f"got {len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("no hypotheses to score")
    return [strip_motion(h or "") for h in hyps], [strip_motion(r or "") for r in refs]


def text_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """Corpus BLEU and chrF (sacrebleu, default settings, 0-100) of the hypotheses against
    one reference each, on plain words: motion tokens are stripped from both first. Also
    ``meteor`` (:func:`meteor`) and ``bertscore_f1`` (:func:`bertscore`), each NaN when its
    resources are not on this machine (:data:`TEXT_METRICS_HOWTO`)."""
    import sacrebleu

    hyps, refs = _plain(hypotheses, references)
    out = {"bleu": float(sacrebleu.corpus_bleu(hyps, [refs]).score),
           "chrf": float(sacrebleu.corpus_chrf(hyps, [refs]).score)}  # fmt: skip
    for name, metric in (("meteor", meteor), ("bertscore_f1", bertscore)):
        try:
            out[name] = metric(hyps, refs)
        except MissingResource:
            out[name] = NAN
    return out


def _tokens(text: str) -> list[str]:
    """Lower-case words and punctuation marks, for METEOR's word matching."""
    return re.findall(r"[\w']+|[^\w\s]", text.lower())


def _wordnet():
    """nltk's WordNet corpus reader, loaded; MissingResource if nltk or the corpus is missing."""
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()  # LookupError when the corpus is not downloaded
    except ImportError:
        raise MissingResource("METEOR needs nltk: pip install 'venus-mars[text]'") from None
    except LookupError:
        raise MissingResource("METEOR needs nltk's WordNet corpus: python -m nltk.downloader wordnet") from None
    return wordnet


def meteor(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean sentence METEOR (0-1) of the hypotheses against one reference each (nltk's
    implementation: exact, stem and WordNet-synonym matches, then a fragmentation penalty;
    alpha 0.9, beta 3, gamma 0.5), motion tokens stripped. MissingResource without nltk or
    its WordNet corpus."""
    wordnet = _wordnet()
    from nltk.translate.meteor_score import meteor_score

    hyps, refs = _plain(hypotheses, references)
    return float(np.mean([meteor_score([_tokens(r)], _tokens(h), wordnet=wordnet) for h, r in zip(hyps, refs)]))


def _on_disk(model: str) -> bool:
    """A local folder, or a Hub name whose config is already in the local cache."""
    from huggingface_hub import try_to_load_from_cache

    if os.path.isdir(model):
        return True
    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except ValueError:  # not a valid Hub name either (e.g. a folder that does not exist)
        return False


def bertscore(hypotheses: Sequence[str], references: Sequence[str], model: str | None = None,
              layers: int | None = None, batch_size: int = 32) -> float:  # fmt: skip
    """Mean BERTScore F1 of the hypotheses against one reference each (the ``bert_score``
    package: each token's contextual embedding is matched to its most similar one on the
    other side by cosine; no idf weights, no baseline rescaling), motion tokens stripped.

    ``model``: a Hub name or a local folder, and ``layers``: how many of its layers to run
    (the embeddings are the last one's); by default :data:`BERTSCORE_MODEL`. The model must
    already be on disk (nothing is downloaded); MissingResource otherwise, or without
    ``bert-score``."""
    try:
        import bert_score
    except ImportError:
        raise MissingResource("BERTScore needs bert-score: pip install 'venus-mars[text]'") from None
    if model is None:
        model, layers = BERTSCORE_MODEL
    if layers is None:
        raise ValueError("bertscore: give layers (how many of the model's layers to run) with your own model")
    if not _on_disk(model):
        raise MissingResource(f"BERTScore needs the model {model!r} on disk (a folder, or in the Hugging Face "
                              f"cache: huggingface-cli download {model})")  # fmt: skip
    hyps, refs = _plain(hypotheses, references)
    _, _, f1 = bert_score.score(hyps, refs, model_type=model, num_layers=layers, batch_size=batch_size,
                                verbose=False)  # fmt: skip
    return float(f1.mean())


# ---------------------------------------------------------------------------------------
# 4. Reply category
# ---------------------------------------------------------------------------------------
def _words(text: str) -> set[str]:
    return {w for w in (rules.normalize_word(x) for x in strip_motion(text).split()) if w}


# Words every kind of reply uses (function words, fillers, affirmations, times): they say
# nothing about the category, and a babbling model would be scored on them.
COMMON_WORDS = frozenset(
    "a about am and are be could do every first for guess have i it like of oh really right "
    "the time to today told we will would yeah yes you".split())


@functools.lru_cache(maxsize=1)
def category_words() -> dict[str, frozenset[str]]:
    """The distinctive words of every reply category: the content words of its templates
    (not in :data:`COMMON_WORDS`) that no template of another category uses."""
    words = {c: set().union(*(_words(t) for t in ts)) - COMMON_WORDS for c, ts in rules.REPLY_TEMPLATES.items()}
    return {c: frozenset(w - set().union(*(v for d, v in words.items() if d != c))) for c, w in words.items()}


def reply_category(text: str) -> str | None:
    """The ``REPLY_TEMPLATES`` category whose distinctive words (:func:`category_words`) the
    reply shares most: argmax_c |words(text) & D_c|, normalised words; None on a tie
    (including no overlap at all)."""
    words = _words(text or "")
    scores = {c: len(words & d) for c, d in category_words().items()}
    best = max(scores.values())
    winners = [c for c, s in scores.items() if s == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


# ---------------------------------------------------------------------------------------
# 5. Cue-dependent replies (synthetic)
# ---------------------------------------------------------------------------------------
def _key(video_id, segment_id, utterance_id) -> tuple[str, str, str]:
    return str(video_id), str(segment_id), str(utterance_id)  # ids may be stored as int or str


def _masked(messages: list[dict]) -> list[dict]:
    """The prompt with the motion tokens of its last user message stripped."""
    out = [dict(m) for m in messages]
    out[-1]["content"] = strip_motion(out[-1]["content"])
    return out


@torch.no_grad()
def reply_log_probs(model, tokenizer, messages: list[dict], replies: Sequence[str]) -> np.ndarray:
    """ln p(reply | messages) of every plain-text reply, as the model would say it without
    gestures: at each of the reply's tokens (and its end of turn), the next-token
    distribution renormalised over the text tokens (FACE and BODY ruled out, as the logits
    processor rules out what cannot come next), then summed:
    ``sum_t [z_t(x_t) - logsumexp_{v text} z_t(v)]``. Only the last assistant turn is scored.
    The shared prompt is read once (its key-value cache is repeated for every reply)."""
    vocab = motion_token_ids(tokenizer)
    encoded = []
    for ids, mask in encode_chats(tokenizer, [list(messages) + [{"role": "assistant", "content": r}] for r in replies]):
        ids, mask = np.asarray(ids, np.int64), np.asarray(mask, bool)
        last = np.flatnonzero(mask).max()
        mask[: np.flatnonzero(~mask[:last]).max() + 1] = False  # keep the final assistant turn only
        encoded.append((ids, mask))
    limit = generate.max_positions(model)
    if limit is not None and max(len(ids) for ids, _ in encoded) > limit:
        raise ValueError(f"a prompt with its reply is longer than the model's context ({limit} tokens)")
    # the prefix every reply shares, up to (not including) the token before its first target
    first = min(int(np.flatnonzero(m).min()) for _, m in encoded)
    p = first - 1
    if any(not np.array_equal(ids[:p], encoded[0][0][:p]) for ids, _ in encoded):
        raise ValueError("the replies' conversations do not share the prompt's tokens (the chat template "
                         "must render the messages before the reply the same way for every reply)")
    device, was_training = device_of(model), model.training
    model.eval()
    try:
        prefix = torch.from_numpy(encoded[0][0][None, :p]).to(device)
        cache = DynamicCache()  # filled in place (older transformers return a tuple unless given one)
        model(input_ids=prefix, use_cache=True, **cache_kwargs(cache))
        cache.batch_repeat_interleave(len(encoded))
        L = max(len(ids) for ids, _ in encoded) - p
        x = np.zeros((len(encoded), L), np.int64)
        attn = np.zeros((len(encoded), p + L), np.int64)
        attn[:, :p] = 1
        for r, (ids, _) in enumerate(encoded):
            x[r, : len(ids) - p], attn[r, p : len(ids)] = ids[p:], 1  # right padding, masked
        z = model(input_ids=torch.from_numpy(x).to(device), attention_mask=torch.from_numpy(attn).to(device),
                  **cache_kwargs(cache)).logits.float()  # (n, L, V): z[r, i] predicts token p + i + 1
    finally:
        model.train(was_training)
    for lo, hi in (vocab.face_range, vocab.body_range):
        z[..., lo:hi] = -math.inf  # a plain-text reply: motion tokens are not an option
    logp = z - torch.logsumexp(z, dim=-1, keepdim=True)
    out = np.zeros(len(encoded))
    for r, (ids, mask) in enumerate(encoded):
        t = np.flatnonzero(mask)  # targets, all after the prefix
        out[r] = float(logp[r, t - p - 1, torch.from_numpy(ids[t])].sum())
    return out


def reply_choice(model, tokenizer, messages: list[dict]) -> tuple[str, float]:
    """The reply category the model prefers after ``messages`` when it must pick one:
    ``ln P(c) = logsumexp`` of :func:`reply_log_probs` over the category's templates
    (``synthetic_rules.REPLY_TEMPLATES``: the probability that it says one of them).
    Returns the category and the margin ``ln P(best) - ln P(other)`` (nats)."""
    cats = list(rules.REPLY_TEMPLATES)
    texts = [t for c in cats for t in rules.REPLY_TEMPLATES[c]]
    lp = reply_log_probs(model, tokenizer, messages, texts)
    sizes = np.cumsum([0] + [len(rules.REPLY_TEMPLATES[c]) for c in cats])
    score = np.array([np.logaddexp.reduce(lp[a:b]) for a, b in zip(sizes[:-1], sizes[1:])])
    best = np.argsort(-score)
    return cats[best[0]], float(score[best[0]] - score[best[1]])


def cue_reply_accuracy(model, tokenizer, face_vq, body_vq, pairs, truth, *, max_prompts: int | None = None,
                       progress: bool = False, **gen) -> dict:  # fmt: skip
    """Does the model read the prompt's manner from its motion tokens?

    The ambiguous prompts of ``pairs`` (rows whose (video_id, segment_id,
    user_utterance_id) is a ``prompt_utterance_id`` of ``truth.prompts``) say the same words
    warmly or coldly; only the motion tokens tell which, and the truth's reply category
    follows the manner. A greedy reply (``generate_replies``, all prompts batched,
    ``do_sample=False`` unless ``gen`` says otherwise) is generated with the cues and with
    the prompt's motion tokens stripped; accuracy = share of prompts with ``reply_category(reply) == truth category``
    (None counts as wrong). Chance is 0.5 (``cue_reply_majority``: the majority category's
    share, what a cue-blind model that always picks it gets).

    A generated reply can also be no category's template (a hedge), which counts as wrong
    and pulls the masked accuracy *below* chance. The forced choice separates picking the
    right category from committing to one: ``cue_choice_accuracy_*`` = share of prompts
    where :func:`reply_choice` (the likelier category by the model's own probabilities of
    the templates) is the truth's, with and without the cues; a model that cannot read the
    manner scores near 0.5 there (a prompt too long for the context with a template is scored
    wrong and counted in ``choice_too_long``). NaNs and ``n_prompts`` 0 when no prompt is found.
    Returns the metrics and ``rows``, one dict per prompt.
    """
    from tqdm.auto import tqdm

    prompts = {}
    for p in getattr(truth, "prompts", truth) or []:
        prompts.setdefault(_key(p["video_id"], p["segment_id"], p["prompt_utterance_id"]), p)
    found, seen = [], set()
    for row in (pairs or []):
        key = _key(row["video_id"], row["segment_id"], row["user_utterance_id"])
        if key in prompts and key not in seen:
            seen.add(key)
            found.append((dict(row), prompts[key]))
    found = found[:max_prompts] if max_prompts is not None else found
    out = {"cue_reply_accuracy_with_cues": NAN, "cue_reply_accuracy_cues_masked": NAN, "cue_reply_chance": 0.5,
           "cue_choice_accuracy_with_cues": NAN, "cue_choice_accuracy_cues_masked": NAN, "choice_too_long": 0,
           "cue_reply_majority": NAN, "n_prompts": 0, "rows": []}  # fmt: skip
    if not found:
        return out
    gen = {"do_sample": False, **gen}
    conditions = ("with_cues", "cues_masked")
    asked = [(_prompt(row), _masked(_prompt(row))) for row, _ in found]  # per prompt: with, without the cues
    flat = [msgs for pair in asked for msgs in pair]
    replies = generate.generate_replies(model, tokenizer, face_vq, body_vq, flat, progress=progress, **gen)
    rows, too_long = [], 0
    for k, (row, p) in enumerate(tqdm(found, desc="cue-dependent replies: forced choice", unit="prompt",
                                      disable=not progress)):  # fmt: skip
        r = {}
        for c, (cond, msgs) in enumerate(zip(conditions, asked[k])):
            reply = replies[2 * k + c]
            r[f"reply_{cond}"] = reply.plain_text
            r[f"category_{cond}"] = reply_category(reply.plain_text)
            try:
                r[f"choice_{cond}"], r[f"choice_margin_{cond}"] = reply_choice(model, tokenizer, msgs)
            except ValueError:  # the prompt and a template do not fit in the context: counted, scored wrong
                r[f"choice_{cond}"], r[f"choice_margin_{cond}"] = None, NAN
                too_long += 1
        rows.append({"video_id": row["video_id"], "segment_id": row["segment_id"],
                     "user_utterance_id": row["user_utterance_id"],
                     "prompt": p.get("prompt_text", row.get("user_text")), "manner": p.get("manner"),
                     "truth": p["reply_category"], **r})  # fmt: skip
    truth_cat = [r["truth"] for r in rows]
    shares = [truth_cat.count(c) / len(rows) for c in set(truth_cat)]
    out.update({
        "cue_reply_accuracy_with_cues": float(np.mean([r["category_with_cues"] == r["truth"] for r in rows])),
        "cue_reply_accuracy_cues_masked": float(np.mean([r["category_cues_masked"] == r["truth"] for r in rows])),
        "cue_choice_accuracy_with_cues": float(np.mean([r["choice_with_cues"] == r["truth"] for r in rows])),
        "cue_choice_accuracy_cues_masked": float(np.mean([r["choice_cues_masked"] == r["truth"] for r in rows])),
        "choice_too_long": too_long,
        "cue_reply_majority": float(max(shares)),
        "n_prompts": len(rows),
        "rows": rows,
    })  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------
# 6. Planted associations (synthetic)
# ---------------------------------------------------------------------------------------
def _rule_status(rule) -> str:
    """``"tokenized"`` (scored) or ``"not_detectable"`` (no detector for the cue: the shrug).
    Nods and head shakes are scored too: the body tokens carry the SMPL-X head joint
    (``generate.Reply.head_rotation``), as in the paper's layout."""
    return "tokenized" if rule.cue in rules.DETECTED_AS else "not_detectable"


def trigger_windows(words: list[str], word_times, tolerance_s: float = 0.3, *, fps: int = schema.FPS) -> list[tuple]:
    """``(rule, lo, hi)`` per trigger occurrence of a scored rule (:func:`_rule_status`):
    the frames ``[lo, hi)`` = [t + onset - tol, t + onset + duration + tol] x fps around the
    trigger word's time t, where the planted cue would be."""
    out = []
    for i, rule in rules.trigger_positions(list(words)):
        if _rule_status(rule) == "tokenized":
            t = float(word_times[i])
            lo = math.floor((t + rule.onset_s - tolerance_s) * fps)
            hi = math.ceil((t + rule.onset_s + rule.duration_s + tolerance_s) * fps)
            out.append((rule, lo, hi))
    return out


def _overlaps(event, lo: int, hi: int) -> bool:
    """Event frames [start, end) share a frame with [lo, hi)."""
    return event.start_frame < hi and lo < event.end_frame


def _association_counts(reply, tolerance_s: float) -> dict:
    """Per scored rule cue: [trigger occurrences, hits, events of its detected cue, matched events]."""
    windows = trigger_windows(reply.words, reply.word_times, tolerance_s)
    events = cue_lib.detect_cues(reply.utterance()) if len(reply.face) else []
    counts = {}
    for rule in rules.CUE_RULES:
        if _rule_status(rule) != "tokenized":
            continue
        cue = rules.DETECTED_AS[rule.cue]
        mine = [(lo, hi) for r, lo, hi in windows if r.cue == rule.cue]
        evs = [e for e in events if e.cue == cue]
        hits = sum(any(_overlaps(e, lo, hi) for e in evs) for lo, hi in mine)  # recall: a trigger with its cue
        matched = sum(any(_overlaps(e, lo, hi) for lo, hi in mine) for e in evs)  # precision: a cue with a trigger
        counts[rule.cue] = np.array([len(mine), hits, len(evs), matched])
    return counts


def _data_reply(row: dict, face_vq, body_vq) -> generate.Reply:
    """The real reply of a pair as a ``Reply``: its codes decoded, its words on the same
    timeline as a generated reply's (``interleave.timeline``)."""
    return generate.reply_from_text(row["messages"][-1]["content"], face_vq, body_vq)


def association(model, tokenizer, face_vq, body_vq, pairs, *, max_replies: int = 100, seed: int = 0,
                tolerance_s: float = 0.3, temperature: float = 0.8, progress: bool = False) -> dict:  # fmt: skip
    """Recovery of the planted cue-word associations (synthetic data).

    For each test pair (a random ``max_replies`` of them), the model gestures the real
    reply's words (``generate.gesture_for``, answering the pair's prompt); the decoded
    motion goes through ``cues.detect_cues``. Each trigger occurrence of a rule
    (``trigger_positions``) whose cue the tokens carry gets the window [t + onset - tol,
    t + onset + duration + tol] (t: the word's time in ``reply.word_times``):

    - ``association_recall`` = triggers with an event of ``DETECTED_AS[cue]`` overlapping
      their window / trigger occurrences;
    - ``association_precision`` = events (of the detected cues some scored rule produces)
      overlapping a window of a trigger of their cue / such events.

    ``temperature`` is ``gesture_for``'s (0: the likeliest gesture at every step).
    Nods and head shakes come from the body tokens' head joint. Rules without a detector
    (the shrug) are counted in ``not_detectable``; pairs whose prompt and reply words do not
    fit in the model's context, in ``too_long_for_context`` (not scored). The same
    two numbers on the real replies' own codes decoded (``*_data``) are the ceiling the data
    and tokenizers allow: the generator also plants background cues with no trigger
    (``synthetic_rules.BACKGROUND_CUES``), sentiment faces and detector misses, so precision
    stays below 1 even there. ``cues``: one row per planted cue.

    The same as :func:`association_summary` of :func:`association_counts`, which can share
    the replies out among processes.
    """
    return association_summary(association_counts(model, tokenizer, face_vq, body_vq, pairs, max_replies=max_replies,
                                                  seed=seed, tolerance_s=tolerance_s, temperature=temperature,
                                                  progress=progress))  # fmt: skip


def association_counts(model, tokenizer, face_vq, body_vq, pairs, *, max_replies: int = 100, seed: int = 0,
                       tolerance_s: float = 0.3, temperature: float = 0.8, next_reply=None,
                       progress: bool = False) -> dict:  # fmt: skip
    """The counts behind :func:`association` (same arguments), as plain JSON-able numbers:
    ``{"model": {cue: [triggers, hits, events, matched events]}, "data": {...},
    "not_detectable": n, "too_long_for_context": n, "n_replies": n}``.

    ``next_reply``: a callable handing out reply numbers j = 0, 1, ... (one past the last:
    stop), shared by processes that split the replies among them; each reply depends on j
    alone (the j-th picked pair, seed ``seed + j``), so the summed counts are the same
    however they are split. Default: every reply, here, in order."""
    from tqdm.auto import tqdm

    rows = _rows(pairs)
    _check_vq(tokenizer, face_vq, body_vq)
    cues = [r.cue for r in rules.CUE_RULES if _rule_status(r) == "tokenized"]
    counts = {"model": {c: np.zeros(4, np.int64) for c in cues}, "data": {c: np.zeros(4, np.int64) for c in cues},
              "not_detectable": 0, "too_long_for_context": 0}  # fmt: skip
    idx = _pick(len(rows), max_replies, seed)
    order = iter(range(len(idx))) if next_reply is None else iter(next_reply, None)
    bar = tqdm(total=len(idx), desc="gesturing real replies", unit="reply", disable=not progress)
    for j in order:
        if j >= len(idx):
            break
        row = rows[idx[j]]
        bar.update(1)
        words = row.get("assistant_text") or strip_motion(row["messages"][-1]["content"])
        counts["not_detectable"] += sum(_rule_status(r) == "not_detectable" for _, r in rules.trigger_positions(words.split()))
        try:
            reply = generate.gesture_for(model, tokenizer, face_vq, body_vq, words, _prompt(row), seed=seed + j,
                                         temperature=temperature)  # fmt: skip
        except ValueError:  # prompt + words longer than the model's context: counted, not scored
            counts["too_long_for_context"] += 1
            continue
        for source, r in (("model", reply), ("data", _data_reply(row, face_vq, body_vq))):
            for cue, c in _association_counts(r, tolerance_s).items():
                counts[source][cue] += c
    bar.close()
    for source in ("model", "data"):
        counts[source] = {c: v.tolist() for c, v in counts[source].items()}
    return {**counts, "n_replies": len(idx)}


def association_summary(*parts: dict) -> dict:
    """:func:`association`'s result from the :func:`association_counts` of one or more
    processes (their counts are summed)."""

    def ratio(a, b):
        return float(a / b) if b else NAN

    model_c, data_c, skipped = {}, {}, {"not_detectable": 0, "too_long_for_context": 0}
    for part in parts:
        for total, source in ((model_c, "model"), (data_c, "data")):
            for cue, c in part[source].items():
                total[cue] = total.get(cue, np.zeros(4, np.int64)) + np.asarray(c, np.int64)
        for k in skipped:
            skipped[k] += int(part[k])
    zero = np.zeros(4, np.int64)
    mt, dt = sum(model_c.values(), zero), sum(data_c.values(), zero)
    table = []
    for rule in rules.CUE_RULES:
        m, d = model_c.get(rule.cue, zero), data_c.get(rule.cue, zero)
        table.append({"cue": rule.cue, "rule": rule.name, "detected_as": rules.DETECTED_AS.get(rule.cue),
                      "status": _rule_status(rule),
                      "triggers": int(m[0]), "hits": int(m[1]), "recall": ratio(m[1], m[0]),
                      "events": int(m[2]), "matched_events": int(m[3]), "precision": ratio(m[3], m[2]),
                      "hits_data": int(d[1]), "recall_data": ratio(d[1], d[0]),
                      "events_data": int(d[2]), "precision_data": ratio(d[3], d[2])})  # fmt: skip
    return {
        "association_recall": ratio(mt[1], mt[0]),
        "association_precision": ratio(mt[3], mt[2]),
        "association_recall_data": ratio(dt[1], dt[0]),
        "association_precision_data": ratio(dt[3], dt[2]),
        "n_triggers": int(mt[0]),
        "n_replies": max((int(p["n_replies"]) for p in parts), default=0),
        **skipped,
        "cues": table,
    }


# ---------------------------------------------------------------------------------------
# 7. Motion of generated replies vs baselines
# ---------------------------------------------------------------------------------------
def nearest_neighbours(train_texts: Sequence[str], test_texts: Sequence[str]) -> np.ndarray:
    """For every test text, the index of the train text with the highest TF-IDF cosine
    similarity (scikit-learn, fitted on the train texts; ties and empty texts: the first)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    train_texts, test_texts = [t or "" for t in train_texts], [t or "" for t in test_texts]
    if not train_texts:
        raise ValueError("no train texts for the nearest-neighbour baseline")
    try:
        vec = TfidfVectorizer().fit(train_texts)
    except ValueError:  # an empty vocabulary: no word to compare on
        return np.zeros(len(test_texts), np.int64)
    sim = vec.transform(test_texts) @ vec.transform(train_texts).T  # rows are L2-normalised: cosine
    return np.asarray(sim.toarray().argmax(axis=1), np.int64).reshape(-1)


def _spread(prefix: str, gt: list[np.ndarray], tracks: list[np.ndarray], fd: bool = True) -> dict:
    """fd (pooled frames vs the real replies'), diversity and variance of a list of tracks."""
    frames = [t for t in tracks if len(t)]
    n = sum(len(t) for t in frames)
    gt_frames = np.concatenate([g for g in gt if len(g)]) if any(len(g) for g in gt) else None
    out = {f"diversity_{prefix}": diversity(frames) if n >= 2 else NAN,
           f"variance_{prefix}": variance(frames) if frames else NAN}  # fmt: skip
    if fd:
        ok = n >= 2 and gt_frames is not None and len(gt_frames) >= 2
        out[f"fd_{prefix}"] = frechet_distance(gt_frames, np.concatenate(frames)) if ok else NAN
    return out


def _generated(model, tokenizer, face_vq, body_vq, rows, idx, seed, progress, **gen) -> list[generate.Reply]:
    """Sampled replies to the prompts of ``rows[idx]``, the j-th with seed ``seed + j``."""
    return generate.generate_replies(model, tokenizer, face_vq, body_vq, [_prompt(rows[i]) for i in idx], seed=seed,
                                     progress=progress, **gen)  # fmt: skip


def _motion_from_replies(face_vq, body_vq, ks, rows, idx, replies, train_rows, seed) -> dict:
    """Motion and text metrics of given generated replies (``replies[j]`` answers ``rows[idx[j]]``);
    ``ks`` = (K_face, K_body) of the tokenizer."""
    kf, kb = ks
    real = [_data_reply(rows[i], face_vq, body_vq) for i in idx]
    train_f, train_b = _assistant_codes([r["messages"] for r in train_rows], kf, kb)
    pf, pb = unigram_probs(train_f, kf), unigram_probs(train_b, kb)
    rng = np.random.default_rng(seed)
    n_pairs = [r.parsed.n_pairs for r in real]
    codes = {
        "random": [(rng.integers(0, kf, n), rng.integers(0, kb, n)) for n in n_pairs],  # uniform codes
        "unigram": [(rng.choice(kf, n, p=pf), rng.choice(kb, n, p=pb)) for n in n_pairs],  # train frequencies
    }
    nn = nearest_neighbours([r.get("user_text") or strip_motion(_prompt(r)[-1]["content"]) for r in train_rows],
                            [rows[i].get("user_text") or strip_motion(_prompt(rows[i])[-1]["content"]) for i in idx])
    nn_replies = [_data_reply(train_rows[j], face_vq, body_vq) for j in nn]
    tracks = {"model": [(r.face, r.body) for r in replies],
              **{s: [generate.decode_codes(face_vq, body_vq, f, b) for f, b in c] for s, c in codes.items()},
              "nearest_neighbour": [(r.face, r.body) for r in nn_replies]}  # fmt: skip
    gt_face, gt_body = [r.face for r in real], [r.body for r in real]
    out = {**_spread("face_data", gt_face, gt_face, fd=False), **_spread("body_data", gt_body, gt_body, fd=False)}
    for source, fb in tracks.items():
        out.update(_spread(f"face_{source}", gt_face, [f for f, _ in fb]))
        out.update(_spread(f"body_{source}", gt_body, [b for _, b in fb]))
    out["motion_pairs_model"] = float(np.mean([r.parsed.n_pairs for r in replies]))
    out["motion_pairs_data"] = float(np.mean(n_pairs))
    out["words_model"] = float(np.mean([len(r.words) for r in replies]))
    out["words_data"] = float(np.mean([len(r.words) for r in real]))
    out["n_motion_replies"] = len(replies)
    refs = [rows[i].get("assistant_text") or real[j].plain_text for j, i in enumerate(idx)]
    for source, hyps in (("model", replies), ("nearest_neighbour", nn_replies)):
        out.update({f"{name}_{source}": v for name, v in text_scores([r.plain_text for r in hyps], refs).items()})
    out["replies"] = [{"user_text": rows[i].get("user_text"), "reference": refs[j], "model": replies[j].plain_text,
                       "model_text": replies[j].text, "nearest_neighbour": nn_replies[j].plain_text}
                      for j, i in enumerate(idx)]  # fmt: skip
    return out


def motion_scores(model, tokenizer, face_vq, body_vq, pairs, train_pairs, *, max_replies: int = 50, seed: int = 0,
                  progress: bool = False, **gen) -> dict:  # fmt: skip
    """Decoded motion of generated replies against the real replies' own decoded codes.

    Replies (``generate_replies``, sampled, seed ``seed + j`` for the j-th) to a random
    ``max_replies`` of ``pairs``. Per source s and part p (face, body): ``fd_p_s`` =
    Fréchet distance between Gaussians of the pooled frames of s and of the real replies;
    ``diversity_p_s`` / ``variance_p_s`` as in ``vq_metrics`` (the real ones:
    ``*_data``). Sources: ``model``; ``random`` (uniform codes, as many pairs as the real
    reply); ``unigram`` (codes drawn from the add-one smoothed train frequencies);
    ``nearest_neighbour`` (the reply of the train pair whose ``user_text`` is the most
    TF-IDF-similar). Also the text scores of model and nearest neighbour (``bleu_*``,
    ``chrf_*``) and ``replies``, one dict per reply.
    """
    rows, train_rows = _rows(pairs), _rows(train_pairs, "train_pairs")
    ks = _check_vq(tokenizer, face_vq, body_vq)
    idx = _pick(len(rows), max_replies, seed)
    replies = _generated(model, tokenizer, face_vq, body_vq, rows, idx, seed, progress, **gen)
    return _motion_from_replies(face_vq, body_vq, ks, rows, idx, replies, train_rows, seed)


# ---------------------------------------------------------------------------------------
# 8. Everything at once
# ---------------------------------------------------------------------------------------
def evaluate_lm(model, tokenizer, face_vq, body_vq, pairs_train, pairs_test, truth=None, *, max_replies: int = 100,
                max_motion_replies: int = 50, progress: bool = True, seed: int = 0,
                with_association: bool = True) -> tuple[dict, dict]:  # fmt: skip
    """All metrics of a trained mini MARS: ``(metrics, tables)``.

    ``metrics`` is one flat dict of floats: :func:`token_nll` on every test conversation,
    :func:`baseline_nll` (train frequencies), :func:`motion_scores` and the text scores on
    ``min(max_replies, max_motion_replies)`` sampled replies, and with ``truth`` (a
    ``SyntheticTruth``) :func:`association` on ``max_replies`` replies and
    :func:`cue_reply_accuracy` on up to ``max_replies`` ambiguous test prompts (two greedy
    replies each); each generation costs a fraction of a second at cpu-mini size. Without
    ``truth`` (real data) the synthetic-only keys (:data:`SYNTHETIC_KEYS`) are NaN.
    ``tables``: ``"prompts"`` (one row per ambiguous prompt), ``"cues"`` (one row per
    planted cue) and ``"replies"`` (the generated replies next to the real ones).
    ``with_association=False`` leaves the association keys NaN and ``"cues"`` empty, for a
    caller that runs :func:`association` elsewhere (the demo does, in a second process) and
    merges it with :func:`merge_association`.
    """
    train_rows, test_rows = _rows(pairs_train, "pairs_train"), _rows(pairs_test, "pairs_test")
    ks = _check_vq(tokenizer, face_vq, body_vq)
    metrics = dict(token_nll(model, tokenizer, [r["messages"] for r in test_rows]))
    metrics.update(baseline_nll([r["messages"] for r in train_rows], [r["messages"] for r in test_rows], tokenizer))
    idx = _pick(len(test_rows), min(max_replies, max_motion_replies), seed)
    replies = _generated(model, tokenizer, face_vq, body_vq, test_rows, idx, seed, progress)
    motion = _motion_from_replies(face_vq, body_vq, ks, test_rows, idx, replies, train_rows, seed)
    tables = {"replies": motion.pop("replies"), "prompts": [], "cues": []}
    metrics.update(motion)
    metrics.update(dict.fromkeys(SYNTHETIC_KEYS, NAN))
    if truth is not None:
        cr = cue_reply_accuracy(model, tokenizer, face_vq, body_vq, test_rows, truth, max_prompts=max_replies,
                                progress=progress)  # fmt: skip
        tables["prompts"] = cr.pop("rows")
        metrics.update(cr)
        if with_association:
            assoc = association(model, tokenizer, face_vq, body_vq, test_rows, max_replies=max_replies, seed=seed,
                                progress=progress)  # fmt: skip
            merge_association(metrics, tables, assoc)
    return {k: float(v) for k, v in metrics.items()}, tables


def merge_association(metrics: dict, tables: dict, assoc: dict) -> None:
    """Put the result of :func:`association` into :func:`evaluate_lm`'s ``metrics`` and
    ``tables`` (in place): its numbers as floats, its per-cue rows as ``tables["cues"]``."""
    assoc = dict(assoc)
    tables["cues"] = assoc.pop("cues")
    metrics.update({k: float(v) for k, v in assoc.items()})


def _cell(metrics: dict, key: str) -> str:
    v = metrics.get(key)
    if v is None:
        return "-"
    return "n/a" if isinstance(v, float) and math.isnan(v) else f"{v:.4g}"


def _table(metrics: dict, title: str, header: list[str], rows: list[tuple[str, list[str]]]) -> list[str]:
    """A titled block of aligned rows: a name, then the value of each of its metric keys
    (rows with no value at all are left out)."""
    body = [[name, *(_cell(metrics, k) for k in keys)] for name, keys in rows]
    body = [r for r in body if any(c != "-" for c in r[1:])]
    if not body:
        return []
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return [title, line(header), line(["-" * w for w in widths]), *(line(r) for r in body), ""]


def format_lm_metrics(metrics: dict) -> str:
    """Plain-text tables of :func:`evaluate_lm`'s metrics, the model next to its baselines
    ("-": not computed, "n/a": NaN, e.g. synthetic-only metrics on real data)."""
    m = metrics
    lines = _table(m, "Token NLL (nats; lower is better)", ["metric", "model", "uniform", "unigram"], [
        ("nll_face", ["nll_face", "nll_face_uniform", "nll_face_unigram"]),
        ("nll_body", ["nll_body", "nll_body_uniform", "nll_body_unigram"]),
        ("nll_body (paired)", ["nll_body_paired", "nll_body_uniform", "nll_body_unigram"]),
        ("nll_text", ["nll_text", "-", "-"]),
        ("perplexity", ["perplexity", "-", "-"]),
    ])  # fmt: skip
    lines += _table(m, "Reply text (higher is better)", ["metric", "model", "nearest neighbour"],
                    [(k, [f"{k}_model", f"{k}_nearest_neighbour"]) for k in ("bleu", "chrf", "meteor", "bertscore_f1")])  # fmt: skip
    if any(isinstance(m.get(f"{k}_model"), float) and math.isnan(m[f"{k}_model"]) for k in ("meteor", "bertscore_f1")):
        lines.insert(len(lines) - 1, f"(n/a: {TEXT_METRICS_HOWTO})")  # under the table, before its blank line
    src = MOTION_SOURCES
    names = ["real" if s == "data" else s.replace("_", " ") for s in src]
    lines += _table(m, "Decoded motion vs real replies", ["metric", *names], [
        (f"{stat}_{part}", [f"{stat}_{part}_{s}" for s in src])
        for part in ("body", "face") for stat in ("fd", "diversity", "variance")
    ])  # fmt: skip
    lines += _table(m, "Synthetic ground truth", ["metric", "model", "real data / chance"], [
        ("association_precision", ["association_precision", "association_precision_data"]),
        ("association_recall", ["association_recall", "association_recall_data"]),
        ("cue_reply_accuracy (cues)", ["cue_reply_accuracy_with_cues", "cue_reply_chance"]),
        ("cue_reply_accuracy (masked)", ["cue_reply_accuracy_cues_masked", "cue_reply_chance"]),
        ("cue_choice_accuracy (cues)", ["cue_choice_accuracy_with_cues", "cue_reply_chance"]),
        ("cue_choice_accuracy (masked)", ["cue_choice_accuracy_cues_masked", "cue_reply_chance"]),
        ("cue_reply majority share", ["-", "cue_reply_majority"]),
    ])  # fmt: skip
    counts = [f"{k} {int(m[k])}" for k in ("n_face", "n_body", "n_text", "n_prompts", "n_triggers")
              if k in m and not math.isnan(m[k])]  # fmt: skip
    if counts:
        lines.append("counts: " + ", ".join(counts))
    return "\n".join(lines).rstrip()


__all__ = [
    "token_nll", "baseline_nll", "unigram_probs", "text_scores", "meteor", "bertscore", "MissingResource",
    "category_words", "reply_category", "reply_log_probs", "reply_choice",
    "cue_reply_accuracy", "trigger_windows", "association", "nearest_neighbours", "motion_scores",
    "evaluate_lm", "merge_association", "format_lm_metrics", "SYNTHETIC_KEYS",
]  # fmt: skip
