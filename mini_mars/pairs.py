"""Conversations -> chat training pairs for the language model.

MARS learns to answer one speaker's interleaved utterance (words and ``<FACE_k><BODY_k>``
pairs, see :mod:`mini_mars.interleave`) with the other speaker's next one. For each
segment (one row), :func:`build_pairs`

1. extracts the utterances' motion (``extraction.segment_utterances``, smoothed as MARS
   does) and encodes each utterance with the face and body tokenizers
   (:func:`encode_utterances`, the first 512 frames, as the paper's window);
2. interleaves every utterance's words with its codes and renders it as text;
3. makes a pair of every two consecutive utterances of the conversation by different
   speakers: user = utterance ``j``, assistant = utterance ``j + 1``; with
   ``context_turns=n`` up to ``n`` earlier turns come first.

Which utterances become turns: the released code skips harmful utterances (they are
already absent from the VENUS conversation; one still listed is skipped here too) and
utterances without motion features. We also skip utterances without words (a reply that
says nothing teaches the text model nothing). Every skip is counted in :class:`PairStats`,
and a pair is only made of two utterances that are *adjacent* in the conversation: a
skipped utterance breaks the chain rather than letting ``j`` answer ``j + 2``.

Codes depend on padding. The encoder's convolutions see the zeros after an utterance's end
(its zero padding reaches layers past the first as bias, not as zeros), so the same
utterance padded to 512 frames or to its own length gets different codes near its end
(an untrained tokenizer: 15-30 % of codes). Padding to the longest utterance of a batch
would make an utterance's codes depend on its batch mates. Here every utterance is padded
to its own length rounded up to ``pad_multiple`` frames (default 64; 512 is the paper's
fixed window) and only utterances padded to the same length share a batch: the codes are a
function of the utterance alone, whatever the batching or row order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import datasets
import numpy as np
import pyarrow as pa
import torch

from venus_analysis import extraction, schema

from .interleave import interleave_utterance, render, strip_motion
from .vqvae import device_of
from .motion_data import input_options, segments_of, speaker_references, utterance_track

SYSTEM_PROMPT = (
    "You are one of the two people in a recorded conversation. Each message mixes spoken words "
    "with nonverbal tokens: a <FACE_k> token directly followed by a <BODY_k> token describes "
    "the speaker's facial expression and body movement over 0.32 seconds, one such pair after "
    "another, placed among the words where the movement happens. Reply as the other person, "
    "in the same format: your words interleaved with <FACE_k><BODY_k> pairs."
)

MAX_ERRORS_KEPT = 20  # messages of skipped rows kept in PairStats.errors

PAIR_FEATURES = datasets.Features(
    {
        "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
        "video_id": datasets.Value("string"),
        "segment_id": datasets.Value("int64"),
        "user_utterance_id": datasets.Value("int64"),
        "assistant_utterance_id": datasets.Value("int64"),
        "user_speaker": datasets.Value("int64"),
        "assistant_speaker": datasets.Value("int64"),
        "user_text": datasets.Value("string"),
        "assistant_text": datasets.Value("string"),
        "n_user_pairs": datasets.Value("int64"),
        "n_assistant_pairs": datasets.Value("int64"),
        "n_context_turns": datasets.Value("int64"),
    }
)


@dataclass
class PairStats:
    """What :func:`build_pairs` read, made and left out (one split).

    ``utterances = interleaved + skipped_no_frames + skipped_no_words + harmful_skipped``.
    Of every two consecutive utterances of a conversation, exactly one of ``pairs``,
    ``same_speaker_next`` and ``lost_to_skips`` counts the couple.
    """

    segments: int = 0  # rows read
    rows_skipped: int = 0  # rows that raised a ValueError (on_error="skip")
    utterances: int = 0  # conversation utterances of the rows read
    interleaved: int = 0  # utterances that became turns
    skipped_no_frames: int = 0  # no aligned face + body frames
    skipped_no_words: int = 0  # frames but no (non-empty) word
    harmful_skipped: int = 0  # in the conversation yet listed in harmful_utterance_id
    harmful_listed: int = 0  # ids listed in harmful_utterance_id (normally absent already)
    words: int = 0  # words of the interleaved utterances
    empty_words: int = 0  # blank word strings dropped
    motion_pairs: int = 0  # <FACE><BODY> pairs in the interleaved utterances
    leftover_pairs: int = 0  # pairs placed at the end (their frame is after the utterance)
    pairs_before_start: int = 0  # pairs whose frame lay before the utterance's start
    truncated_utterances: int = 0  # utterances longer than the 512-frame window
    truncated_frames: int = 0  # frames the window cut off
    truncated_pairs: int = 0  # pairs those frames would have given
    pairs: int = 0  # training pairs made
    same_speaker_next: int = 0  # consecutive turns of the same (or an unknown) speaker
    lost_to_skips: int = 0  # consecutive utterances of which one was skipped
    errors: list[str] = field(default_factory=list)  # the first messages of skipped rows

    def to_dict(self) -> dict:
        """A JSON-safe dict of every count."""
        return asdict(self)


@dataclass
class _Turn:
    utterance_id: int
    speaker: int | None
    content: str  # the rendered interleaved utterance
    text: str  # its words
    n_pairs: int


# ---------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------
def _encode_part(model, tracks: list[np.ndarray], pad_multiple: int, window: int, batch_size: int) -> list[np.ndarray]:
    """Codes of each ``(n, D)`` track (cut at ``window``), batched by equal padded length."""
    fpt = model.cfg.frames_per_token
    n = np.array([min(len(t), window) for t in tracks], dtype=np.int64)
    padded = np.minimum(-(-n // pad_multiple) * pad_multiple, window)  # own length, rounded up
    padded = -(-padded // fpt) * fpt  # a window not a multiple of 8 still gives whole steps
    out = [np.zeros(0, dtype=np.int64) for _ in tracks]
    order = np.lexsort((np.arange(len(n)), padded))  # by padded length, then input order
    order = order[n[order] > 0]  # nothing to encode for an utterance without frames
    device, was_training = device_of(model), getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.no_grad():
            for length in np.unique(padded[order]).tolist():
                same = order[padded[order] == length]  # only equal padded lengths share a batch
                for s in range(0, len(same), batch_size):
                    chunk = same[s : s + batch_size]
                    x = np.zeros((len(chunk), length, tracks[chunk[0]].shape[1]), dtype=np.float32)
                    for b, i in enumerate(chunk):  # one copy per utterance
                        x[b, : n[i]] = tracks[i][: n[i]]
                    mask = np.arange(length)[None, :] < n[chunk][:, None]
                    codes, _ = model.encode(torch.from_numpy(x).to(device), torch.from_numpy(mask).to(device))
                    codes = codes.cpu().numpy().astype(np.int64)
                    for b, i in enumerate(chunk):
                        out[i] = codes[b, : -(-n[i] // fpt)]  # the real steps: ceil(n / 8)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return out


def face_inputs(face_vq, utterances, references: dict | None = None) -> list[np.ndarray]:
    """The face tracks a face tokenizer reads (``motion_data.utterance_track``: expression
    and jaw, plus the head rotation when ``cfg.head_rotation``), minus the speaker's resting
    face when it was trained that way (``cfg.reference == "speaker"``, see ``motion_data``).
    ``references``: ``{(video_id, segment_id, speaker): (D,)}``; by default computed from
    the given utterances, segment by segment."""
    utterances = list(utterances)
    opts = input_options(getattr(face_vq, "cfg", None))
    tracks = [utterance_track(u, "face", opts["head_rotation"]) for u in utterances]
    if opts["reference"] != "speaker":
        return tracks
    if references is None:
        references = {}
        for seg in segments_of(utterances):
            for speaker, ref in speaker_references(seg, opts["head_rotation"]).items():
                references[(seg[0].video_id, seg[0].segment_id, speaker)] = ref
    return [t - references[(u.video_id, u.segment_id, u.speaker)] if len(t) else t
            for t, u in zip(tracks, utterances)]  # fmt: skip


def _check_encoding(face_vq, body_vq, pad_multiple: int, batch_size: int) -> None:
    """The two tokenizers agree on frames per token; padding and batch size make sense."""
    fpt = face_vq.cfg.frames_per_token
    if body_vq.cfg.frames_per_token != fpt:
        raise ValueError(f"the face and body tokenizers must use the same frames per token; "
                         f"got {fpt} and {body_vq.cfg.frames_per_token}")  # fmt: skip
    if pad_multiple < 1 or pad_multiple % fpt:
        raise ValueError(f"pad_multiple must be a positive multiple of {fpt} frames; got {pad_multiple}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")


def encode_utterances(face_vq, body_vq, utterances, *, batch_size: int = 64, pad_multiple: int = 64,
                      window: int = schema.WINDOW_FRAMES, references: dict | None = None,
                      ) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """``(face_codes, body_codes)`` (int64, ``ceil(min(n, window) / 8)`` each) per utterance.

    ``utterances``: :class:`~venus_analysis.extraction.UtteranceArrays` (``face`` (n, 53),
    ``body`` (n, 117)); the first ``window`` (512) frames are encoded, in eval mode without
    gradients (a model in training mode is put back afterwards). Each utterance is padded
    to its length rounded up to ``pad_multiple`` frames (512: the paper's fixed window) and
    batched only with utterances of the same padded length, so its codes do not depend on
    the batching. Utterances without frames get empty codes. The result is in input order.
    Faces are read as :func:`face_inputs` gives them (``references`` goes there).
    """
    utterances = list(utterances)
    _check_encoding(face_vq, body_vq, pad_multiple, batch_size)
    face = _encode_part(face_vq, face_inputs(face_vq, utterances, references), pad_multiple, window, batch_size)
    body = _encode_part(body_vq, [u.body for u in utterances], pad_multiple, window, batch_size)
    return list(zip(face, body))


# ---------------------------------------------------------------------------------------
# One segment
# ---------------------------------------------------------------------------------------
def _label(row) -> str:
    """How errors name a row (as extraction does)."""
    return (f"row (video_id={extraction.row_value(row, 'video_id')!r}, "
            f"segment_id={extraction.row_value(row, 'segment_id')!r})")  # fmt: skip


def _words_of(label: str, words_field, k: int) -> tuple[list, list]:
    """Utterance ``k``'s ``(words, start_times)``, from a list of per-utterance dicts (how
    ``datasets`` returns them) or a dict of per-utterance lists. Empty when absent."""
    where = f"{schema.CONVERSATION}.words"
    if words_field is None:
        return [], []
    entry = words_field if isinstance(words_field, Mapping) else words_field[k]
    if entry is None:
        return [], []
    if not isinstance(entry, Mapping):
        raise ValueError(f"{label}: {where}[{k}]: expected a dict with lists 'word' and 'start_time'; "
                         f"got {type(entry).__name__}")  # fmt: skip
    words, starts = entry.get("word"), entry.get("start_time")
    if isinstance(words_field, Mapping):  # dict of per-utterance lists
        try:
            words, starts = (None if v is None else v[k] for v in (words, starts))
        except (IndexError, TypeError, KeyError):
            raise ValueError(f"{label}: {where}: expected lists 'word' and 'start_time' with one entry per "
                             f"utterance; utterance {k} has none") from None  # fmt: skip
    words = [] if words is None else list(words)
    starts = [None] * len(words) if starts is None else list(starts)
    if len(starts) != len(words):
        raise ValueError(f"{label}: {where}[{k}].start_time: has {len(starts)} entries; "
                         f"expected {len(words)} (one per word)")  # fmt: skip
    bad = [i for i, w in enumerate(words) if not isinstance(w, str)]
    if bad:
        raise ValueError(f"{label}: {where}[{k}].word: entry {bad[0]} is {words[bad[0]]!r}; expected a string")
    return words, starts


@dataclass
class _Segment:
    """One row read and sorted: its utterances, their words, which become turns, and the
    tracks the tokenizers will read (``face``, ``body``: one per kept utterance)."""

    video_id: str
    segment_id: int
    utterances: list
    words: list[tuple[list, list]]
    keep: list[int]
    face: list[np.ndarray]
    body: list[np.ndarray]


def _read_segment(row, face_vq, stats: PairStats) -> _Segment:
    """A row's utterances and words, checked; the skips counted in ``stats``."""
    label = _label(row)
    seg = extraction.segment_utterances(row)  # raises ValueError naming the row and field
    conv = extraction.conversation_of(row) or {}
    words_field = conv.get("words")
    if words_field is not None and not isinstance(words_field, (list, tuple, Mapping)):
        raise ValueError(f"{label}: {schema.CONVERSATION}.words: expected one entry per utterance; "
                         f"got {type(words_field).__name__}")  # fmt: skip
    if isinstance(words_field, (list, tuple)) and len(words_field) != len(seg.utterances):
        raise ValueError(f"{label}: {schema.CONVERSATION}.words: has {len(words_field)} entries; "
                         f"expected {len(seg.utterances)} (one per utterance)")  # fmt: skip
    words = [_words_of(label, words_field, k) for k in range(len(seg.utterances))]
    stats.harmful_listed += len(extraction.row_value(row, schema.HARMFUL, []) or [])
    stats.utterances += len(seg.utterances)

    keep = []
    for k, utt in enumerate(seg.utterances):
        ws, starts = words[k]
        kept = [i for i, w in enumerate(ws) if w.strip()]  # blank words would vanish on parsing
        stats.empty_words += len(ws) - len(kept)
        words[k] = ([ws[i].strip() for i in kept], [starts[i] for i in kept])
        if utt.harmful:
            stats.harmful_skipped += 1
        elif len(utt.frames) == 0:
            stats.skipped_no_frames += 1
        elif not words[k][0]:
            stats.skipped_no_words += 1
        else:
            keep.append(k)

    # resting faces from all of a speaker's frames in the segment, as the tokenizer was trained
    head = input_options(getattr(face_vq, "cfg", None))["head_rotation"]
    refs = {(seg.video_id, seg.segment_id, s): r for s, r in speaker_references(seg.utterances, head).items()}
    kept_utts = [seg.utterances[k] for k in keep]
    return _Segment(seg.video_id, seg.segment_id, seg.utterances, words, keep,
                    face_inputs(face_vq, kept_utts, refs), [u.body for u in kept_utts])  # fmt: skip


def _segment_turns(seg: _Segment, codes: list[tuple[np.ndarray, np.ndarray]], fpt: int, stats: PairStats) -> list:
    """One :class:`_Turn` or None (skipped) per utterance of ``seg``, its kept utterances
    interleaved with their ``codes``."""
    turns: list[_Turn | None] = [None] * len(seg.utterances)
    for k, (face, body) in zip(seg.keep, codes):
        utt, (w, starts) = seg.utterances[k], seg.words[k]
        start = utt.start_time if utt.start_time is not None else float(utt.frames[0]) / schema.FPS
        end = utt.end_time if utt.end_time is not None else float(utt.frames[-1]) / schema.FPS
        inter = interleave_utterance(w, starts, start, end, utt.frames, face, body, frames_per_token=fpt)
        stats.interleaved += 1
        stats.words += inter.n_words
        stats.motion_pairs += inter.n_pairs
        stats.leftover_pairs += inter.n_leftover
        stats.pairs_before_start += inter.n_before_start
        stats.truncated_utterances += inter.n_truncated_frames > 0
        stats.truncated_frames += inter.n_truncated_frames
        stats.truncated_pairs += inter.n_truncated_pairs
        turns[k] = _Turn(utt.utterance_id, utt.speaker, render(inter.tokens), " ".join(w), inter.n_pairs)
    return turns


def _encode_segments(segs: list[_Segment], face_vq, body_vq, batch_size: int, pad_multiple: int) -> list[list]:
    """The codes of several segments' kept utterances, encoded together: batches of equal
    padded length across segments are fuller than one segment's (the same codes: they do
    not depend on the batching). The 337k frames of the demo's training split took the
    body tokenizer 4.9 s one segment at a time, 2.8 s together."""
    face = _encode_part(face_vq, [t for s in segs for t in s.face], pad_multiple, schema.WINDOW_FRAMES, batch_size)
    body = _encode_part(body_vq, [t for s in segs for t in s.body], pad_multiple, schema.WINDOW_FRAMES, batch_size)
    out, i = [], 0
    for s in segs:
        out.append(list(zip(face[i : i + len(s.keep)], body[i : i + len(s.keep)])))
        i += len(s.keep)
    return out


def _context(turns: list, j: int, n: int) -> list[dict]:
    """Up to ``n`` turns before ``j`` as alternating messages (the user's speaker: "user").

    Walks back while the turns exist (not skipped) and the speakers alternate, so the
    messages alternate too and the last one is the assistant's, right before the user turn.
    """
    user_speaker, out, k = turns[j].speaker, [], j - 1
    while (len(out) < n and k >= 0 and turns[k] is not None and turns[k].speaker is not None
           and turns[k].speaker != turns[k + 1].speaker):  # fmt: skip
        role = "user" if turns[k].speaker == user_speaker else "assistant"
        out.append({"role": role, "content": turns[k].content})
        k -= 1
    return out[::-1]


def _segment_pairs(video_id, segment_id, turns: list, context_turns: int, system_prompt: str,
                   stats: PairStats) -> list[dict]:  # fmt: skip
    """The training rows of one segment: every consecutive couple by different speakers."""
    rows = []
    for j in range(len(turns) - 1):
        user, reply = turns[j], turns[j + 1]
        if user is None or reply is None:
            stats.lost_to_skips += 1
            continue
        if user.speaker is None or reply.speaker is None or user.speaker == reply.speaker:
            stats.same_speaker_next += 1
            continue
        context = _context(turns, j, context_turns) if context_turns > 0 else []
        messages = [{"role": "system", "content": system_prompt}, *context,
                    {"role": "user", "content": user.content}, {"role": "assistant", "content": reply.content}]  # fmt: skip
        rows.append({
            "messages": messages, "video_id": video_id, "segment_id": segment_id,
            "user_utterance_id": user.utterance_id, "assistant_utterance_id": reply.utterance_id,
            "user_speaker": user.speaker, "assistant_speaker": reply.speaker,
            "user_text": user.text, "assistant_text": reply.text,
            "n_user_pairs": user.n_pairs, "n_assistant_pairs": reply.n_pairs, "n_context_turns": len(context),
        })  # fmt: skip
        stats.pairs += 1
    return rows


# ---------------------------------------------------------------------------------------
# Whole splits
# ---------------------------------------------------------------------------------------
def build_pairs(data, face_vq, body_vq, *, context_turns: int = 0, progress: bool = True, batch_size: int = 64,
                pad_multiple: int = 64, on_error: str = "raise", system_prompt: str = SYSTEM_PROMPT,
                segments_per_batch: int = 32):  # fmt: skip
    """Chat training pairs of one split: ``(datasets.Dataset, PairStats)``.

    ``data``: a ``datasets.Dataset``, ``IterableDataset`` or list of rows (anything
    ``extraction.segment_rows`` accepts), read one segment at a time. Each row of the result
    holds ``messages`` (system, up to ``context_turns`` earlier turns alternating
    user/assistant, the user turn, the assistant's reply) and the metadata columns of
    :data:`PAIR_FEATURES`. Rows come in data order, and pairs in conversation order within
    a row; a row's pairs depend on that row only.

    ``on_error="raise"`` (default) lets the ValueError of a bad row propagate (it names the
    row, the field and what was expected); ``"skip"`` counts the row in
    ``stats.rows_skipped`` and keeps its message in ``stats.errors`` (the first 20).

    The utterances of ``segments_per_batch`` rows are encoded together (fuller batches;
    the codes are the same as one row at a time, see :func:`_encode_segments`); their
    tracks are held in memory meanwhile, so lower it for very long segments.
    """
    from tqdm.auto import tqdm

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}")
    if context_turns < 0:
        raise ValueError(f"context_turns must be >= 0; got {context_turns}")
    if segments_per_batch < 1:
        raise ValueError(f"segments_per_batch must be at least 1; got {segments_per_batch}")
    _check_encoding(face_vq, body_vq, pad_multiple, batch_size)
    stats, tables, buffer, pending = PairStats(), [], [], []
    fpt = face_vq.cfg.frames_per_token

    def skip(err: ValueError) -> None:  # a bad row: raised, or counted with its message
        if on_error == "raise":
            raise err
        stats.rows_skipped += 1
        if len(stats.errors) < MAX_ERRORS_KEPT:
            stats.errors.append(str(err))

    def flush():  # encode the pending rows together, then make their pairs in row order
        nonlocal buffer
        for seg, codes in zip(pending, _encode_segments(pending, face_vq, body_vq, batch_size, pad_multiple)):
            try:
                turns = _segment_turns(seg, codes, fpt, stats)
            except ValueError as err:
                skip(err)
                continue
            buffer += _segment_pairs(seg.video_id, seg.segment_id, turns, context_turns, system_prompt, stats)
        pending.clear()
        if len(buffer) >= 1024:  # Arrow chunks: far smaller than Python dicts
            tables.append(pa.Table.from_pylist(buffer, schema=PAIR_FEATURES.arrow_schema))
            buffer = []

    rows, total = extraction.segment_rows(data)
    for row in tqdm(rows, total=total, unit="segment", desc="building pairs", disable=not progress):
        stats.segments += 1
        try:
            pending.append(_read_segment(row, face_vq, stats))
        except ValueError as err:
            skip(err)
            continue
        if len(pending) >= segments_per_batch:
            flush()
    flush()
    tables.append(pa.Table.from_pylist(buffer, schema=PAIR_FEATURES.arrow_schema))
    table = pa.concat_tables(tables)
    dataset = datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=PAIR_FEATURES))
    return dataset, stats


def build_pair_splits(data_dict, face_vq, body_vq, **kw):
    """:func:`build_pairs` on every split of ``data_dict`` (``train``, ``test``, ...):
    ``(datasets.DatasetDict, {split: PairStats})``. Keyword arguments go to build_pairs."""
    out, stats = {}, {}
    for split in data_dict:
        out[split], stats[split] = build_pairs(data_dict[split], face_vq, body_vq, **kw)
    return datasets.DatasetDict(out), stats


def text_only(pairs):
    """The text-only ablation: ``pairs`` (a ``Dataset`` or ``DatasetDict`` of chat pairs)
    with every motion token taken out of the user and assistant messages, words kept in
    order (``interleave.strip_motion``). A model trained on it is the paper's language model
    without the nonverbal tokens: it can only guess the reply's manner from the words. The
    system prompt is kept as it is, so the two models differ in the motion tokens only."""

    def strip(row):
        return {"messages": [m if m["role"] == "system" else {**m, "content": strip_motion(m["content"])}
                             for m in row["messages"]]}  # fmt: skip

    return pairs.map(strip, desc="text only")
