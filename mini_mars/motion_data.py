"""Motion frames for the tokenizers: every utterance of a split, flat in memory, with the
random windows the VQ-VAE trains on and the padded utterances it is evaluated on.

:func:`load_motion` streams a split through ``venus_analysis.extraction.iter_utterances``
(smoothed with Savitzky-Golay, as MARS does) and keeps one part's tokenizer columns (face:
53, body: 117) of every utterance in one float32 array, with each utterance's start and
length. Memory is ``frames x columns x 4`` bytes (the default synthetic VENUS: 82 MB face,
180 MB body); beyond ``max_frames`` a random subset of whole utterances is kept and the
rest is counted in ``dropped_utterances``.

Identity out of the tokens (``reference="speaker"``, the face default): a person's resting
face is an offset on every expression coefficient of every frame they appear in. Left in,
it is most of what an L1 loss over 50 coefficients sees, and a codebook of a few hundred
codes spends itself on telling faces apart instead of smiles from frowns (measured: the
smile coefficient's reconstruction correlated 0.17 with the truth, 0.98 after centring).
So each speaker's median expression over the segment (:func:`speaker_references`) is taken
off before tokenizing and added back after decoding; ``MotionFrames.offsets`` keeps it per
utterance. The median over a whole segment is robust to a cue that fills one utterance (a
smiling question), which a per-utterance median would erase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from venus_analysis import extraction, schema

PART_DIM = {"face": schema.FACE_TOKEN_DIM, "body": schema.BODY_TOKEN_DIM}


@dataclass
class MotionFrames:
    """One part's frames of many utterances: ``frames`` (N, D) float32, utterance ``starts``
    and ``lengths`` (int64) into it, and the utterance keys (video_id, segment_id, utterance_id)."""

    part: str
    frames: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    keys: list
    dropped_utterances: int = 0  # utterances left out by max_frames
    skipped_utterances: int = 0  # utterances with fewer than min_frames frames
    offsets: np.ndarray | None = None  # (n_utterances, D) reference taken off each utterance (None: nothing)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def n_frames(self) -> int:
        """Frames held."""
        return int(self.lengths.sum())

    def utterance(self, i: int) -> np.ndarray:
        """(n_i, D) frames of utterance ``i``."""
        return self.frames[self.starts[i] : self.starts[i] + self.lengths[i]]

    def select(self, indices) -> "MotionFrames":
        """The utterances ``indices`` as their own MotionFrames (frames copied)."""
        idx = np.asarray(indices, dtype=np.int64)
        frames = np.concatenate([self.utterance(i) for i in idx]) if len(idx) else self.frames[:0]
        lengths = self.lengths[idx]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        offsets = None if self.offsets is None else self.offsets[idx]
        return MotionFrames(self.part, frames, starts, lengths, [self.keys[i] for i in idx], offsets=offsets)

    def absolute(self, i: int, track: np.ndarray) -> np.ndarray:
        """A track of utterance ``i`` in token space (e.g. a reconstruction) back in VENUS
        units: the utterance's reference added back (a no-op without references)."""
        return track if self.offsets is None else track + self.offsets[i]

    def normalization(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-column mean and standard deviation over all frames (float64 sums); computed
        once (a couple of seconds on the demo's 337k body frames) and kept: the frames of a
        MotionFrames are not changed in place."""
        if getattr(self, "_normalization", None) is None:
            f = self.frames.astype(np.float64)
            self._normalization = (f.mean(axis=0), f.std(axis=0))
        mean, std = self._normalization
        return mean.copy(), std.copy()

    def random_windows(self, rng: np.random.Generator, batch: int, window: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x (batch, window, D), mask (batch, window)) of random windows.

        Utterances are drawn in proportion to their length (every frame equally likely to
        be trained on); a window starts uniformly inside its utterance where it fits, and a
        shorter utterance is padded with zeros (mask False) after its end.
        """
        if len(self) == 0:
            raise ValueError(f"no {self.part} utterances to draw windows from")
        utt = rng.choice(len(self), size=batch, p=self.lengths / self.lengths.sum())
        span = np.maximum(self.lengths[utt] - window, 0)
        offset = (rng.random(batch) * (span + 1)).astype(np.int64)  # uniform in [0, span]
        take = np.minimum(self.lengths[utt], window)
        idx = self.starts[utt, None] + offset[:, None] + np.arange(window)[None, :]  # (batch, window)
        mask = np.arange(window)[None, :] < take[:, None]
        x = self.frames[np.where(mask, idx, 0)] * mask[..., None]  # padded frames are zero
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(mask)

    def padded(self, indices, max_len: int = schema.WINDOW_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
        """Utterances ``indices`` padded (or cut, as MARS does) to the longest, at most
        ``max_len`` frames: (x (n, T, D), mask (n, T))."""
        indices = np.asarray(indices)
        n = np.minimum(self.lengths[indices], max_len)
        T = int(n.max()) if len(n) else 0
        mask = np.arange(T)[None, :] < n[:, None]
        idx = self.starts[indices, None] + np.arange(T)[None, :]
        x = self.frames[np.where(mask, idx, 0)] * mask[..., None]
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(mask)

    def batches(self, batch_size: int = 64, max_len: int = schema.WINDOW_FRAMES):
        """Padded batches of all utterances in order (for evaluation and encoding)."""
        for i in range(0, len(self), batch_size):
            yield self.padded(np.arange(i, min(i + batch_size, len(self))), max_len)


HEAD = slice(53, 56)  # the head rotation's columns in a face track that carries it


def input_options(cfg) -> dict:
    """What a tokenizer of config ``cfg`` reads, as keyword arguments of :func:`load_motion`
    and :func:`utterance_track`: ``reference`` and ``head_rotation``."""
    return {"reference": getattr(cfg, "reference", "none"), "head_rotation": getattr(cfg, "head_rotation", False)}


def utterance_track(utt, part: str, head_rotation: bool = False) -> np.ndarray:
    """The (n, D) float32 track of one ``UtteranceArrays`` that a ``part`` tokenizer reads:
    body 117; face 53 (expression, jaw), then the head rotation (3) when asked (zeros for
    the 153-float face layout, which has none)."""
    if part == "body":
        return np.ascontiguousarray(utt.body, dtype=np.float32)
    if not head_rotation:
        return np.ascontiguousarray(utt.face, dtype=np.float32)
    head = utt.head_rotation if utt.head_rotation is not None else np.zeros((len(utt.face), 3), np.float32)
    return np.concatenate([utt.face, head], axis=1).astype(np.float32, copy=False)


def speaker_references(utterances, head_rotation: bool = False) -> dict:
    """Each speaker's resting face in one segment: {speaker: (53,) or (56,) float32}, the
    median of their expression coefficients (and head rotation, when tokenized) over all
    their frames; the jaw columns are 0 (the jaw rests shut).

    ``utterances`` are one segment's ``UtteranceArrays`` (e.g. ``segment_utterances(row)
    .utterances``); speakers without frames get no entry.
    """
    by_speaker: dict = {}
    for utt in utterances:
        if len(utt.face):
            by_speaker.setdefault(utt.speaker, []).append(utterance_track(utt, "face", head_rotation))
    centred = np.r_[np.arange(schema.FACE_TOKEN_EXPRESSION.start, schema.FACE_TOKEN_EXPRESSION.stop),
                    np.arange(HEAD.start, HEAD.stop) if head_rotation else []].astype(np.int64)  # fmt: skip
    refs = {}
    for speaker, faces in by_speaker.items():
        ref = np.zeros(faces[0].shape[1], dtype=np.float32)
        ref[centred] = np.median(np.concatenate(faces)[:, centred], axis=0)
        refs[speaker] = ref
    return refs


def segments_of(utterances):
    """Group a stream of ``UtteranceArrays`` (as ``iter_utterances`` yields them, segment by
    segment) into lists of one segment's utterances."""
    run, key = [], None
    for utt in utterances:
        k = (utt.video_id, utt.segment_id)
        if run and k != key:
            yield run
            run = []
        run.append(utt)
        key = k
    if run:
        yield run


def load_motion(data, part: str, *, max_frames: int | None = None, min_frames: int = 8, seed: int = 0,
                progress: bool = False, reference: str = "none", head_rotation: bool = False) -> MotionFrames:
    """Every utterance of a split as :class:`MotionFrames` of one part ("face" or "body").

    ``data`` is a split (``datasets.Dataset``, streaming ``IterableDataset``, Arrow table or
    rows). Utterances with fewer than ``min_frames`` frames are skipped and counted. With
    ``max_frames``, a random subset of whole utterances (fixed by ``seed``) is kept.
    ``reference="speaker"`` (face only) takes each speaker's resting face off their
    frames (see the module doc) and keeps it in ``offsets``. ``head_rotation`` (face only)
    appends the head rotation (:func:`utterance_track`); ``input_options(cfg)`` gives both
    for a tokenizer config. Raises ValueError for an unknown part or reference, or when no
    utterance is left.
    """
    if part not in PART_DIM:
        raise ValueError(f"part must be 'face' or 'body'; got {part!r}")
    if reference not in ("none", "speaker") or (reference == "speaker" and part != "face"):
        raise ValueError(f"reference must be 'none', or 'speaker' for the face; got {reference!r} for the {part}")
    if head_rotation and part != "face":
        raise ValueError("head_rotation is part of the face tokens only")
    totals = extraction.ExtractionTotals()
    chunks, keys, offsets = [], [], []
    # min_frames=1 here and the length check below: the references use every frame of a speaker
    stream = extraction.iter_utterances(data, smooth=True, min_frames=1, progress=progress, totals=totals)
    for segment in segments_of(stream):
        refs = speaker_references(segment, head_rotation) if reference == "speaker" else {}
        for utt in segment:
            if len(utt.frames) < min_frames:
                totals.skipped_utterances += 1
                continue
            track = utterance_track(utt, part, head_rotation)
            ref = refs.get(utt.speaker, np.zeros(track.shape[1], np.float32))
            chunks.append(track - ref if refs else track)
            offsets.append(ref)
            keys.append((utt.video_id, utt.segment_id, utt.utterance_id))
    if not chunks:
        raise ValueError(f"no utterance with at least {min_frames} frames in the data "
                         f"({totals.segments} segments read, {totals.skipped_utterances} utterances too short)")  # fmt: skip
    lengths = np.array([len(c) for c in chunks], dtype=np.int64)
    keep, dropped = np.arange(len(chunks)), 0
    if max_frames is not None and lengths.sum() > max_frames:
        order = np.random.default_rng(seed).permutation(len(chunks))
        keep = np.sort(order[np.cumsum(lengths[order]) <= max_frames])
        dropped = len(chunks) - len(keep)
    frames = np.concatenate([chunks[i] for i in keep]) if len(keep) else np.zeros((0, PART_DIM[part] + 3 * head_rotation), np.float32)
    lengths = lengths[keep]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    if not np.isfinite(frames).all():
        bad = int((~np.isfinite(frames)).any(axis=1).sum())
        raise ValueError(f"{bad} {part} frames hold NaN or inf; validate the data first (venus-mars data validate)")
    offsets = np.stack([offsets[i] for i in keep]) if reference == "speaker" and len(keep) else None
    return MotionFrames(part, frames, starts, lengths, [keys[i] for i in keep], dropped, totals.skipped_utterances,
                        offsets)  # fmt: skip
