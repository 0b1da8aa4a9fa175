"""The language model's tokenizer: words as byte-level BPE, motion codes as one token each.

A MARS message mixes words and motion codes in one string, motion tokens glued to nothing
and every word preceded by a space (``mini_mars.interleave.render``)::

    "<FACE_3><BODY_17> Hello<FACE_4><BODY_2> world"
    -> <FACE_3> | <BODY_17> | " Hello" | <FACE_4> | <BODY_2> | " world"

- **Words** go through a byte-level BPE (GPT-2 style) trained here in seconds with
  ``tokenizers`` on the training text (motion tokens stripped first, so BPE never learns
  pieces of ``<FACE_``). Byte-level means any text can be encoded, with no unknown token.
- **Motion tokens** ``<FACE_0> .. <FACE_{K-1}>``, ``<BODY_0> .. <BODY_{K-1}>`` are *added
  special tokens*: the tokenizer matches them before BPE runs, so each is exactly one id and
  never split, and they never swallow the space of the next word. They get contiguous ids
  (the face block, then the body block), so a model's logits for, say, every face token are
  one slice: :func:`motion_token_ids` returns the blocks.
- **Chat tokens** ``<|system|>``, ``<|user|>``, ``<|assistant|>`` open a message, ``<|end|>``
  closes it (and is the eos token, so generation stops at the end of the reply),
  ``<|begin|>`` starts a conversation, ``<|pad|>`` pads batches.
- **Whole texts** (``whole_texts``: the training pairs' fixed system prompt) are one added
  token each. A model trained from scratch learns nothing from an instruction that never
  changes and is never in the loss, yet spelled out in BPE it is 94 tokens, about 45 % of
  an average cpu-mini training sequence: as one token, training is close to twice as fast.
  The same string anywhere else (generation, evaluation) maps to the same token. Pretrained
  bases keep the full prompt: they can read it.

The chat template (Jinja, stored in the tokenizer) renders a conversation as::

    <|begin|><|system|>...<|end|><|user|>...<|end|><|assistant|>...<|end|>

with ``{% generation %}`` around every assistant content + ``<|end|>``, so that
``apply_chat_template(..., return_assistant_tokens_mask=True)`` marks exactly the tokens the
model must learn to say (the loss is on those only, as in the paper). Pretrained tokenizers
keep their own template (:func:`add_motion_tokens`); when it has no generation markers,
:func:`encode_chats` finds the assistant tokens by rendering the prefixes of the
conversation instead.

Saved with ``save_pretrained`` as ``tokenizer.json`` + JSON configs + ``chat_template.jinja``
(no pickle); loaded with ``AutoTokenizer.from_pretrained(folder)``.

Note: motion tokens are *special*, so ``decode(ids, skip_special_tokens=True)`` drops them
along with the chat tokens; decode replies with ``skip_special_tokens=False``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .interleave import motion_token_names  # the token strings live with the text format

BOS, EOS, PAD = "<|begin|>", "<|end|>", "<|pad|>"
ROLES = ("system", "user", "assistant")
CHAT_TOKENS = {role: f"<|{role}|>" for role in ROLES}
SPECIAL_TOKENS = [PAD, BOS, EOS, *CHAT_TOKENS.values()]  # ids 0..5 of a trained tokenizer

# Every message is <|role|>content<|end|>; assistant content and its <|end|> are wrapped in
# {% generation %} so transformers can return the assistant mask. No newlines between
# messages: fewer tokens, and the content after a special token is tokenized on its own.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('roles must be system, user or assistant; got ' + message['role']) }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{% else %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

MAX_FIXED_PROMPTS = 4  # more distinct system prompts than this are content, left to BPE
_STRIP = re.compile(r"<(?:FACE|BODY)_\d+>|<\|\w+\|>")  # motion and chat tokens: not for BPE to learn
_CODE = re.compile(r"<(FACE|BODY)_(\d+)>")


# ---------------------------------------------------------------------------------------
# Building tokenizers
# ---------------------------------------------------------------------------------------
def train_text_tokenizer(texts: Iterable[str], *, vocab_size: int, face_codes: int, body_codes: int,
                         min_frequency: int = 2, whole_texts: Iterable[str] = ()):  # fmt: skip
    """A byte-level BPE trained on ``texts`` (message contents), plus chat and motion tokens.

    ``vocab_size`` counts the BPE vocabulary with its 6 chat tokens (a small corpus may give
    fewer); the ``face_codes + body_codes`` motion tokens come on top, then one token per
    string of ``whole_texts`` (e.g. the fixed system prompt; see the module docstring),
    which BPE does not train on. Returns a ``PreTrainedTokenizerFast`` with the chat
    template set. Deterministic for the same texts.

    >>> tok = train_text_tokenizer(["<FACE_3><BODY_1> Hello world"] * 10, vocab_size=300,
    ...                            face_codes=4, body_codes=4)        # doctest: +SKIP
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if face_codes < 1 or body_codes < 1:
        raise ValueError(f"face_codes and body_codes must be at least 1; got {face_codes}, {body_codes}")
    bpe = Tokenizer(models.BPE())  # no unk token: byte-level BPE can spell anything with its 256 bytes
    # no prefix space: " Hello" and "Hello" stay different tokens, as the text format wants
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,  # a merge must be seen twice: no merges for one-off strings
        special_tokens=SPECIAL_TOKENS,  # ids 0..5, never split
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, even unseen ones
        show_progress=False,
    )
    whole = sorted({w for w in whole_texts if w})
    bpe.train_from_iterator((_STRIP.sub("", t) for t in texts if t not in whole), trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    tok.chat_template = CHAT_TEMPLATE
    add_motion_tokens(tok, face_codes, body_codes)  # the same path as for a pretrained tokenizer
    if whole:  # after the motion blocks, which stay contiguous; matched verbatim before BPE runs
        from tokenizers import AddedToken

        tok.add_tokens([AddedToken(w, special=True, normalized=False) for w in whole], special_tokens=True)
    return tok


def fixed_system_prompts(conversations: Iterable[list[dict]]) -> set[str]:
    """The system prompts of ``conversations`` (lists of chat messages) when there are at
    most ``MAX_FIXED_PROMPTS`` distinct ones, else none: the ``whole_texts`` for
    :func:`train_text_tokenizer` (one fixed prompt, as ``pairs.build_pairs`` writes)."""
    prompts = {m["content"] for conv in conversations for m in conv if m["role"] == "system"}
    return prompts if len(prompts) <= MAX_FIXED_PROMPTS else set()


def add_motion_tokens(tokenizer, face_codes: int, body_codes: int) -> int:
    """Add ``<FACE_k>`` / ``<BODY_k>`` to ``tokenizer`` (in place) as special tokens with
    contiguous ids; returns how many tokens were added (0 if all are there already).

    For a pretrained tokenizer: if it has no chat template, ours is set (and its chat tokens
    added); if it has no pad token, eos pads (or ``<|pad|>`` is added when there is no eos).
    Resize the model's embeddings to ``len(tokenizer)`` afterwards.
    """
    from tokenizers import AddedToken

    names = motion_token_names(face_codes, body_codes)
    vocab = tokenizer.get_vocab()
    present = [n for n in names if n in vocab]
    if present and len(present) != len(names):
        raise ValueError(f"the tokenizer already has {len(present)} of the {len(names)} motion tokens "
                         f"(e.g. {present[0]}): another K? expected none or all of {names[0]}..{names[-1]}")  # fmt: skip
    added = 0
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHAT_TEMPLATE
        missing = [t for t in (BOS, EOS, *CHAT_TOKENS.values()) if t not in vocab]
        added += tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing],
                                      special_tokens=True)  # fmt: skip
        if tokenizer.bos_token is None:
            tokenizer.bos_token = BOS  # the template starts with it
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token  # padding is masked out anyway (attention mask, labels -100)
        else:
            added += tokenizer.add_tokens([AddedToken(PAD, special=True, normalized=False)], special_tokens=True)
            tokenizer.pad_token = PAD
    if not present:
        # one call, in order: <FACE_0> .. <BODY_{K-1}> get consecutive ids after the vocabulary.
        # normalized=False: matched on the raw text; no lstrip/rstrip: the word's space stays its own
        added += tokenizer.add_tokens([AddedToken(n, special=True, normalized=False) for n in names],
                                      special_tokens=True)  # fmt: skip
    motion_token_ids(tokenizer)  # checks that the blocks came out contiguous
    return added


# ---------------------------------------------------------------------------------------
# The motion vocabulary
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MotionVocab:
    """Where the motion tokens sit in a tokenizer: ``face_ids[k]`` is the id of ``<FACE_k>``,
    ``body_ids[k]`` of ``<BODY_k>``; each block is contiguous (``face_ids = arange(a, a + K)``)."""

    face_ids: np.ndarray
    body_ids: np.ndarray

    @property
    def face_range(self) -> tuple[int, int]:
        """(first id, last id + 1) of the face block: ``logits[..., slice(*face_range)]``."""
        return int(self.face_ids[0]), int(self.face_ids[-1]) + 1

    @property
    def body_range(self) -> tuple[int, int]:
        """(first id, last id + 1) of the body block."""
        return int(self.body_ids[0]), int(self.body_ids[-1]) + 1

    def code(self, ids) -> np.ndarray:
        """The code ``k`` of every id (``<FACE_k>`` or ``<BODY_k>``), -1 for other tokens."""
        ids = np.asarray(ids, dtype=np.int64)
        (f0, f1), (b0, b1) = self.face_range, self.body_range
        return np.where((ids >= f0) & (ids < f1), ids - f0, np.where((ids >= b0) & (ids < b1), ids - b0, -1))

    def part(self, ids) -> np.ndarray:
        """``"face"``, ``"body"`` or ``""`` (a text token) for every id."""
        ids = np.asarray(ids, dtype=np.int64)
        (f0, f1), (b0, b1) = self.face_range, self.body_range
        return np.where((ids >= f0) & (ids < f1), "face", np.where((ids >= b0) & (ids < b1), "body", ""))


def motion_token_ids(tokenizer) -> MotionVocab:
    """The face and body blocks of ``tokenizer`` (ours, or a pretrained one after
    :func:`add_motion_tokens`). K of each part is read from the vocabulary; a ValueError
    says what is wrong if the tokens are missing, have gaps or are not contiguous."""
    found = {"FACE": {}, "BODY": {}}
    for tok, i in tokenizer.get_vocab().items():  # includes the added tokens
        m = _CODE.fullmatch(tok)
        if m:
            found[m[1]][int(m[2])] = i
    blocks = []
    for part, ids in found.items():
        k = len(ids)
        if k == 0:
            raise ValueError(f"the tokenizer has no <{part}_k> tokens: call add_motion_tokens(tokenizer, K, K) first")
        if sorted(ids) != list(range(k)):
            raise ValueError(f"<{part}_k> tokens must be k = 0..{k - 1} without gaps; got {sorted(ids)[:5]}...")
        arr = np.array([ids[c] for c in range(k)], dtype=np.int64)
        if not np.array_equal(arr, np.arange(arr[0], arr[0] + k)):
            raise ValueError(f"<{part}_k> token ids are not contiguous ({arr[:5].tolist()}...): add them in one "
                             f"call, in order, as add_motion_tokens does")  # fmt: skip
        blocks.append(arr)
    return MotionVocab(*blocks)


# ---------------------------------------------------------------------------------------
# Conversations -> token ids + assistant mask
# ---------------------------------------------------------------------------------------
def _has_generation_markers(tokenizer) -> bool:
    """Does the chat template mark assistant content with ``{% generation %}`` (any whitespace control)?"""
    return re.search(r"\{%-?\s*generation\s*-?%\}", tokenizer.chat_template or "") is not None


def _prefix_mask(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Assistant mask without generation markers: the reply to message ``i`` spans the
    characters between the rendering of ``messages[:i]`` + generation prompt and the
    rendering of ``messages[:i+1]``; a token is the assistant's when it starts in a span."""
    render = lambda msgs, gen: tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)  # noqa: E731
    full = render(messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before, upto = render(messages[:i], True), render(messages[: i + 1], False)
        if not (upto.startswith(before) and full.startswith(upto)):
            raise ValueError("this chat template does not render a conversation as the concatenation of its "
                             "prefixes, so the assistant tokens cannot be found; add {% generation %} markers")  # fmt: skip
        spans.append((len(before), len(upto)))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(a <= s < b for a, b in spans)) for s, _ in enc["offset_mapping"]]
    return enc["input_ids"], mask


def encode_chats(tokenizer, conversations: list[list[dict]]) -> list[tuple[list[int], list[int]]]:
    """``(input_ids, assistant_mask)`` of every conversation, rendered with the chat template.

    ``assistant_mask`` is 1 on the tokens of *every* assistant message (content and the
    template's end-of-turn tokens) and 0 elsewhere (system, user, role headers). With
    ``{% generation %}`` markers transformers computes it in one batched call; otherwise the
    prefix renderings do (:func:`_prefix_mask`)."""
    if not conversations:
        return []
    if not _has_generation_markers(tokenizer):
        return [_prefix_mask(tokenizer, list(c)) for c in conversations]
    out = tokenizer.apply_chat_template([list(c) for c in conversations], tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)  # fmt: skip
    return list(zip(out["input_ids"], out["assistant_masks"]))
