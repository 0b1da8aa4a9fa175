"""Motion frames for the tokenizers: every utterance of a split, flat in memory, with the
random windows the VQ-VAE trains on and the padded utterances it is evaluated on.

:func:`load_motion` streams a split through ``venus_analysis.extraction.iter_utterances``
(smoothed with Savitzky-Golay, as MARS does) and keeps one part's tokenizer columns (face:
53, body: 117) of every utterance in one float32 array, with each utterance's start and
length. Memory is ``frames x columns x 4`` bytes (the default synthetic VENUS: 82 MB face,
180 MB body); beyond ``max_frames`` a random subset of whole utterances is kept and the
rest is counted in ``dropped_utterances``.
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
        return MotionFrames(self.part, frames, starts, lengths, [self.keys[i] for i in idx])

    def normalization(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-column mean and standard deviation over all frames (float64 sums)."""
        f = self.frames.astype(np.float64)
        return f.mean(axis=0), f.std(axis=0)

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


def load_motion(data, part: str, *, max_frames: int | None = None, min_frames: int = 8, seed: int = 0,
                progress: bool = False) -> MotionFrames:
    """Every utterance of a split as :class:`MotionFrames` of one part ("face" or "body").

    ``data`` is a split (``datasets.Dataset``, streaming ``IterableDataset``, Arrow table or
    rows). Utterances with fewer than ``min_frames`` frames are skipped and counted. With
    ``max_frames``, a random subset of whole utterances (fixed by ``seed``) is kept.
    Raises ValueError for an unknown part or when no utterance is left.
    """
    if part not in PART_DIM:
        raise ValueError(f"part must be 'face' or 'body'; got {part!r}")
    totals = extraction.ExtractionTotals()
    chunks, keys = [], []
    for utt in extraction.iter_utterances(data, smooth=True, min_frames=min_frames, progress=progress, totals=totals):
        chunks.append(np.ascontiguousarray(utt.face if part == "face" else utt.body, dtype=np.float32))
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
    frames = np.concatenate([chunks[i] for i in keep]) if len(keep) else np.zeros((0, PART_DIM[part]), np.float32)
    lengths = lengths[keep]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    if not np.isfinite(frames).all():
        bad = int((~np.isfinite(frames)).any(axis=1).sum())
        raise ValueError(f"{bad} {part} frames hold NaN or inf; validate the data first (venus-mars data validate)")
    return MotionFrames(part, frames, starts, lengths, [keys[i] for i in keep], dropped, totals.skipped_utterances)
