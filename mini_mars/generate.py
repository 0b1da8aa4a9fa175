"""Generation: a reply with words *and* gestures, and the way back from tokens to motion.

The language model writes one token at a time. Left alone it could write a ``<FACE_k>``
with no ``<BODY_k>`` after it, which no decoder can turn into motion. Two rules make every
reply decodable (:class:`MotionPairsProcessor`, a ``transformers`` logits processor):

1. after a ``<FACE_k>`` the next token must be a ``<BODY_j>`` (every other logit -> -inf);
2. a ``<BODY_j>`` may only follow a ``<FACE_k>``.

Only the ``K`` codes the tokenizers know exist in the vocabulary, so any code the model
picks decodes. Two ways to reply:

- :func:`generate_reply`: the model chooses words and gestures (``model.generate`` with
  the processor above and the usual sampling controls); :func:`generate_replies` answers
  many prompts in batches, each reply with its own seed;
- :func:`gesture_for`: the words are given (e.g. "yes, exactly") and the model only
  chooses where to put which gesture pairs between them, by sampling among
  "next word" and the face tokens at every word boundary.

Both return a :class:`Reply`: the text, the parsed words and codes, and the decoded face
and body tracks on a timeline aligned with the words (``interleave.timeline``), ready for
``venus_analysis.animation`` (:meth:`Reply.figure`) and the cue detectors
(:meth:`Reply.utterance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import (DynamicCache, LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper,
                          TopPLogitsWarper)

from venus_analysis import schema
from venus_analysis.extraction import UtteranceArrays

from .interleave import Parsed, parse, strip_motion, timeline
from .lm import cache_kwargs
from .lm_tokenizer import MotionVocab, motion_token_ids
from .motion_data import HEAD
from .vqvae import device_of
from .pairs import SYSTEM_PROMPT


class MotionPairsProcessor(LogitsProcessor):
    """Masks logits so that FACE and BODY tokens always come in pairs (see the module doc)."""

    def __init__(self, vocab: MotionVocab):
        self.face = slice(*vocab.face_range)
        self.body = slice(*vocab.body_range)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """``scores`` (batch, vocab) for the next token, given ``input_ids`` (batch, length)."""
        last = input_ids[:, -1]
        after_face = (last >= self.face.start) & (last < self.face.stop)  # (batch,) rule 1 applies
        out = torch.full_like(scores, float("-inf"))
        out[after_face, self.body] = scores[after_face, self.body]  # rule 1: only a BODY may follow
        out[~after_face] = scores[~after_face]
        out[~after_face, self.body] = float("-inf")  # rule 2: no BODY without its FACE
        return out


@dataclass
class Reply:
    """One generated reply: its text (words and motion tokens), what was parsed from it, and
    the decoded motion. ``face`` (T, 53) or (T, 56) (expression, jaw, then the head rotation
    when the face tokenizer reads it) and ``body`` (T, 117) are in VENUS units, T = 8 x
    pairs; ``word_times`` (seconds from the reply's start) place each word on them."""

    text: str
    parsed: Parsed
    face: np.ndarray
    body: np.ndarray
    word_times: np.ndarray
    n_tokens: int

    @property
    def words(self) -> list[str]:
        """The reply's words, motion tokens left out."""
        return self.parsed.words

    @property
    def plain_text(self) -> str:
        """The words joined by spaces."""
        return self.parsed.text

    def word_track(self) -> dict:
        """``{"word", "start_time", "end_time"}`` lists, the form the animations take."""
        t = self.word_times
        end = np.append(t[1:], t[-1] + 0.4) if len(t) else t
        return {"word": list(self.words), "start_time": t.tolist(), "end_time": np.maximum(end, t + 0.1).tolist()}

    @property
    def head_rotation(self) -> np.ndarray:
        """(T, 3) head rotation: decoded from the face tokens when they carry it, else the
        body tokens' SMPL-X head joint (the paper's layout; the neck is not tokenized)."""
        if self.face.shape[1] > schema.FACE_TOKEN_DIM:
            return self.face[:, HEAD]
        return self.body[:, schema.token_joint_slice("head")]

    def utterance(self, utterance_id: int = 0) -> UtteranceArrays:
        """The reply as an ``UtteranceArrays``, for ``venus_analysis.cues.detect_cues`` and
        the animations."""
        n = len(self.face)
        return UtteranceArrays(utterance_id=utterance_id, speaker=1, frames=np.arange(n, dtype=np.int64),
                               face=self.face[:, : schema.FACE_TOKEN_DIM], body=self.body,
                               head_rotation=self.head_rotation, start_time=0.0, end_time=n / schema.FPS,
                               text=self.plain_text)  # fmt: skip

    def figure(self, title: str | None = None):
        """An animated plotly figure of the reply (skeleton, face, words, expression strip)."""
        from venus_analysis.animation import utterance_figure

        if len(self.face) == 0:
            raise ValueError(f"this reply has no gestures to show (text: {self.plain_text!r})")
        return utterance_figure(self.utterance(), words=self.word_track(), title=title or f"MARS: “{self.plain_text}”")


def decode_codes(face_vq, body_vq, face_codes, body_codes, face_reference=None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of codes -> (face (8P, 53 or 56), body (8P, 117)) in VENUS units.

    A face tokenizer trained with ``reference="speaker"`` writes expressions relative to a
    resting face; ``face_reference`` (its width) adds one back (default: none, i.e. the
    average resting face of the training speakers, which the centred codes are relative to)."""
    face_codes, body_codes = np.asarray(face_codes, np.int64), np.asarray(body_codes, np.int64)
    if len(face_codes) != len(body_codes):
        raise ValueError(f"face and body codes must pair up; got {len(face_codes)} and {len(body_codes)}")
    if len(face_codes) == 0:
        return np.zeros((0, face_vq.in_dim), np.float32), np.zeros((0, body_vq.in_dim), np.float32)
    with torch.no_grad():
        face = face_vq.decode(torch.as_tensor(face_codes, device=device_of(face_vq))[None])[0].float().cpu().numpy()
        body = body_vq.decode(torch.as_tensor(body_codes, device=device_of(body_vq))[None])[0].float().cpu().numpy()
    if face_reference is not None:
        face = face + np.asarray(face_reference, np.float32)
    return face, body


def as_transcript(words: str) -> str:
    """Typed words in the form the model learnt its text in, WhisperX's: the first letter a
    capital and a final full stop when no punctuation ends them ("yes, exactly" ->
    "Yes, exactly."). The byte-level tokenizer, trained on transcripts, splits "yes," and
    "Yes," into different tokens, so lower-case, unpunctuated typing is text the model
    has barely seen."""
    words = " ".join(words.split())
    if not words:
        return words
    words = words[0].upper() + words[1:]
    return words if words[-1] in ".!?" else words + "."


def messages_for(prompt: str, *, mask_cues: bool = False, system_prompt: str = SYSTEM_PROMPT,
                 history: list[dict] | None = None) -> list[dict]:
    """The chat messages for a user turn: system prompt, optional earlier turns, the prompt.

    ``prompt`` is plain words or an interleaved utterance (``interleave.render``);
    ``mask_cues`` strips its motion tokens (the "cues masked" ablation)."""
    content = strip_motion(prompt) if mask_cues else prompt
    return [{"role": "system", "content": system_prompt}, *(history or []), {"role": "user", "content": content}]


def _prompt_ids(tokenizer, messages: list[dict], device) -> torch.Tensor:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):  # transformers versions differ here
        ids = ids["input_ids"]
    return torch.tensor([list(ids)], dtype=torch.long, device=device)


def reply_from_text(text: str, face_vq, body_vq, face_reference=None) -> Reply:
    """A reply text (words and motion tokens, e.g. a real assistant message) as a
    :class:`Reply`: parsed, its pairs decoded, its words on the motion's timeline."""
    parsed = parse(text, codebook_size=face_vq.cfg.codebook_size)
    face, body = decode_codes(face_vq, body_vq, parsed.face, parsed.body, face_reference)
    times, _ = timeline(parsed, face_vq.cfg.frames_per_token)
    return Reply(text.strip(), parsed, face, body, times, 0)


def _reply(tokenizer, new_ids, face_vq, body_vq, face_reference) -> Reply:
    text = tokenizer.decode(new_ids, skip_special_tokens=False)
    for special in (tokenizer.eos_token, tokenizer.pad_token, "<|end|>"):
        if special:
            text = text.replace(special, "")
    reply = reply_from_text(text, face_vq, body_vq, face_reference)
    reply.n_tokens = len(new_ids)
    return reply


def _end_ids(tokenizer) -> list[int]:
    ends = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end|>")]
    return sorted({i for i in ends if i is not None and i != tokenizer.unk_token_id})


def max_positions(model) -> int | None:
    """The longest sequence ``model`` can read (its context), when its config says."""
    cfg = getattr(model, "config", None)
    return getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)


class SeededSampler(LogitsProcessor):
    """Sampling as the last logits processor, every row of a batch with its own random stream.

    ``transformers`` samples a whole batch from torch's global generator, so a reply would
    depend on the other prompts in its batch. Here row r draws from a ``torch.Generator``
    seeded ``seeds[r]``: the usual warpers first (temperature, top-k, top-p, in the order
    ``transformers`` applies them), then one token drawn from the softmax; only that
    token's score stays finite, so greedy search (``do_sample=False``) takes it. A reply is
    then the same whether it is generated alone or in any batch."""

    def __init__(self, seeds, temperature: float, top_k: int | None, top_p: float | None):
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        warpers = [TemperatureLogitsWarper(temperature)] if temperature != 1.0 else []
        if top_k:  # None or 0: no top-k
            warpers.append(TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
        self.warpers = LogitsProcessorList(warpers)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """``scores`` (batch, vocab) -> 0 at each row's drawn token, -inf elsewhere."""
        p = torch.softmax(self.warpers(input_ids, scores).float(), dim=-1).cpu()
        drawn = torch.cat([torch.multinomial(p[r], 1, generator=g) for r, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(len(out)), drawn.to(out.device)] = 0.0
        return out


def _messages(prompt: str | list[dict], mask_cues: bool) -> list[dict]:
    """Chat messages for a prompt (plain or interleaved text, or ready messages, copied);
    ``mask_cues`` strips the motion tokens of the last user turn."""
    if not isinstance(prompt, list):
        return messages_for(prompt, mask_cues=mask_cues)
    messages = [dict(m) for m in prompt]
    if mask_cues:
        last = max(i for i, m in enumerate(messages) if m["role"] == "user")
        messages[last]["content"] = strip_motion(messages[last]["content"])
    return messages


@torch.no_grad()
def generate_replies(model, tokenizer, face_vq, body_vq, prompts, *, mask_cues: bool = False,
                     max_new_tokens: int = 160, do_sample: bool = True, temperature: float = 0.8,
                     top_k: int | None = 50, top_p: float | None = 0.95, repetition_penalty: float = 1.0,
                     seed: int | None = 0, min_new_tokens: int = 0, face_reference=None, batch_size: int = 32,
                     progress: bool = False) -> list[Reply]:  # fmt: skip
    """MARS's replies to several prompts, generated ``batch_size`` at a time; the options
    are :func:`generate_reply`'s, and reply i is sampled with seed ``seed + i``.

    Every row of a batch draws from its own generator (:class:`SeededSampler`), so reply i
    is the one ``generate_reply(prompts[i], seed=seed + i)`` gives, in any batch (up to the
    rounding of a padded batch's arithmetic, which can rarely tip a draw). Prompts are
    left-padded (each ends where its reply starts; the attention mask hides the padding)
    and batched by length, so that little is padded. One forward pass serves a whole batch
    at each step: the cpu-mini model's 50 sampled evaluation replies take 3.5-3.7 s in
    batches of 32 instead of 9.6-11.6 s one by one (64: 6.2 s, as the growing key-value cache
    is copied at every step)."""
    from tqdm.auto import tqdm

    if isinstance(prompts, str) or (len(prompts) and isinstance(prompts[0], dict)):
        raise TypeError("generate_replies takes a list of prompts (each a text or a list of chat messages); "
                        "for one prompt use generate_reply, or pass [prompt]")  # fmt: skip
    device = device_of(model)
    ids = [_prompt_ids(tokenizer, _messages(p, mask_cues), device)[0].tolist() for p in prompts]
    context = max_positions(model)
    limits = []  # the most new tokens each prompt leaves room for
    for i, x in enumerate(ids):
        if context is not None and len(x) >= context:
            which = "the prompt" if len(ids) == 1 else f"prompt {i}"
            raise ValueError(f"{which} is {len(x)} tokens, and the model reads at most {context}: "
                             f"shorten it (or drop earlier turns)")  # fmt: skip
        limits.append(max_new_tokens if context is None else min(max_new_tokens, context - len(x)))
    sample = do_sample and temperature > 0  # temperature 0: the greedy reply, as in gesture_for
    base = seed if seed is not None else int(torch.randint(0, 2**31 - 1, ()))  # unseeded: torch's global RNG
    ends = _end_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ends[0]
    # batches of prompts with the same room to reply (nearly always max_new_tokens), by length
    order = sorted(range(len(ids)), key=lambda i: (-limits[i], len(ids[i])))
    batches = []
    for i in order:
        if batches and limits[batches[-1][0]] == limits[i] and len(batches[-1]) < batch_size:
            batches[-1].append(i)
        else:
            batches.append([i])
    replies = [None] * len(ids)
    bar = tqdm(total=len(ids), desc="generating replies", unit="reply", disable=not progress)
    for batch in batches:
        n = max(len(ids[i]) for i in batch)
        x = torch.full((len(batch), n), pad, dtype=torch.long)
        attention = torch.zeros_like(x)
        for r, i in enumerate(batch):  # left padding: every prompt ends at column n
            x[r, n - len(ids[i]) :], attention[r, n - len(ids[i]) :] = torch.tensor(ids[i]), 1
        processors = [MotionPairsProcessor(motion_token_ids(tokenizer))]
        if sample:
            processors.append(SeededSampler([base + i for i in batch], temperature, top_k, top_p))
        limit = limits[batch[0]]
        out = model.generate(x.to(device), attention_mask=attention.to(device), max_new_tokens=limit,
                             min_new_tokens=min(min_new_tokens, limit), repetition_penalty=repetition_penalty,
                             logits_processor=LogitsProcessorList(processors), do_sample=False, temperature=None,
                             top_k=None, top_p=None, eos_token_id=ends, pad_token_id=pad)  # fmt: skip
        for r, i in enumerate(batch):
            new = out[r, n:].tolist()
            cut = next((k + 1 for k, t in enumerate(new) if t in ends), len(new))  # after its end: padding
            replies[i] = _reply(tokenizer, new[:cut], face_vq, body_vq, face_reference)
        bar.update(len(batch))
    bar.close()
    return replies


def generate_reply(model, tokenizer, face_vq, body_vq, prompt: str | list[dict], *, mask_cues: bool = False,
                   max_new_tokens: int = 160, do_sample: bool = True, temperature: float = 0.8,
                   top_k: int | None = 50, top_p: float | None = 0.95, repetition_penalty: float = 1.0,
                   seed: int | None = 0, min_new_tokens: int = 0, face_reference=None) -> Reply:
    """MARS's reply to ``prompt`` (plain or interleaved text, or ready chat messages).

    Sampling: ``temperature``, ``top_k``, ``top_p`` (``do_sample=False`` or temperature 0:
    greedy); ``repetition_penalty`` > 1 makes tokens already in the text less likely
    (CTRL's rule, as ``transformers`` applies it: a small, undertrained model's greedy
    replies otherwise tend to loop). ``seed`` makes a sampled reply repeatable (it seeds the
    reply's own generator; None: drawn from torch's global one). The logits processor
    guarantees paired motion tokens. ``mask_cues`` strips the motion tokens of the (last)
    user turn; ``min_new_tokens`` forbids ending earlier (benchmarks use it for a fixed
    length). ``max_new_tokens`` is cut to what the model's context leaves after the prompt.
    Many prompts at once: :func:`generate_replies`.
    """
    return generate_replies(model, tokenizer, face_vq, body_vq, [prompt], mask_cues=mask_cues,
                            max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature, top_k=top_k,
                            top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
                            min_new_tokens=min_new_tokens, face_reference=face_reference)[0]  # fmt: skip


def _word_pieces(tokenizer, words: list[str]) -> list[tuple[list[int], list[int]]]:
    """Token ids of every word, written at the reply's start (no space) and after something
    (one space before it), as ``interleave.render`` writes them."""
    return [(tokenizer.encode(w, add_special_tokens=False), tokenizer.encode(" " + w, add_special_tokens=False))
            for w in words]  # fmt: skip


@torch.no_grad()
def gesture_for(model, tokenizer, face_vq, body_vq, words: str, prompt: str | list[dict] = "", *,
                temperature: float = 0.8, seed: int | None = 0, max_pairs: int = 64, face_reference=None) -> Reply:
    """Say ``words`` with gestures the model chooses: the words are forced, in order; at
    every word boundary a gesture pair comes with the model's total probability of a
    ``<FACE_k>`` there (against all words and the end: the forced word takes their place),
    and then its code is drawn from the FACE tokens (``temperature`` 0: the most likely
    choice each time), followed by its ``<BODY_j>``. ``prompt`` is the user turn being
    answered. At most ``max_pairs`` pairs (64 = the 512-frame window), fewer when the
    model's context leaves less room after the prompt and the words; a prompt and words
    that do not fit at all raise a ValueError saying so."""
    vocab = motion_token_ids(tokenizer)
    f0, f1 = vocab.face_range
    b0, b1 = vocab.body_range
    end_id = _end_ids(tokenizer)[0]
    pieces = _word_pieces(tokenizer, words.split())
    messages = prompt if isinstance(prompt, list) else messages_for(prompt)
    device = device_of(model)
    ids = _prompt_ids(tokenizer, messages, device)
    context = max_positions(model)
    if context is not None:  # prompt + words (+ the end) must fit; each pair takes 2 of what is left
        n_words = sum(len(spaced) for _, spaced in pieces) + 1
        room = context - ids.shape[1] - n_words
        if room < 0:
            raise ValueError(f"the prompt ({ids.shape[1]} tokens) and the words ({n_words} tokens) do not fit in "
                             f"the model's context of {context} tokens: shorten them")  # fmt: skip
        max_pairs = min(max_pairs, room // 2)
    gen = torch.Generator().manual_seed(seed if seed is not None else 0)

    def pick(logits: torch.Tensor, allowed: torch.Tensor) -> int:
        """One id among ``allowed``, from the model's logits restricted to them."""
        z = logits[allowed].float().cpu()
        if temperature <= 0:
            return int(allowed[int(z.argmax())])
        p = torch.softmax(z / temperature, dim=0)
        return int(allowed[int(torch.multinomial(p, 1, generator=gen))])

    face_ids = torch.arange(f0, f1, device=device)
    body_ids = torch.arange(b0, b1, device=device)
    out, w, pairs = [], 0, 0  # emitted ids; words written; gesture pairs
    cache, step_ids = DynamicCache(), ids  # the keys and values so far, filled in place
    while True:
        logits = model(input_ids=step_ids, use_cache=True, **cache_kwargs(cache)).logits[0, -1]
        if out and f0 <= out[-1] < f1:
            new = [pick(logits, body_ids)]  # rule 1: the FACE's BODY
            pairs += 1
        else:  # a word boundary: first *whether* a gesture comes here, then *which* one
            word = pieces[w][1 if out else 0] if w < len(pieces) else [end_id]
            # P(gesture) = the model's total probability of any FACE token; everything else
            # (any word, the end) stands for "go on speaking": the forced word takes its place
            p_face = float(torch.softmax(logits.float(), dim=-1)[f0:f1].sum())
            gesture = pairs < max_pairs and (p_face > 0.5 if temperature <= 0 else
                                              float(torch.rand(1, generator=gen)) < p_face)
            if gesture:
                new = [pick(logits, face_ids)]
            else:  # all the word's pieces in one forward pass: nothing is chosen inside a word
                new, w = list(word), w + 1
        if new[0] == end_id:
            break
        out += new
        step_ids = torch.tensor([new], device=device)
    return _reply(tokenizer, out, face_vq, body_vq, face_reference)

