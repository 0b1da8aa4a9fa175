"""The whole mini MARS, wired: tokenizers -> training pairs -> language model -> replies.

- :func:`train_mars`: pairs from a dataset through two trained tokenizers, then the LM.
  The run folder is self-contained: the tokenizers are copied into ``out/vq/{face,body}``
  next to the LM's ``model/``, so ``venus-mars generate --run out`` needs nothing else.
- :class:`Mars` (:func:`load_mars`): a trained run, ready to answer (``reply``) or to put
  gestures on given words (``say``).

Folder of a run::

    out/vq/face/, out/vq/body/   the tokenizers (model.safetensors + config.json)
    out/pairs.json               how the training pairs were built (PairStats per split)
    out/model/, out/config.json, out/train_log.json, out/metrics.json, out/checkpoints/
                                 the language model (see mini_mars.train_lm)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import load_tokenizer, write_json

PARTS = ("face", "body")


def load_vq_pair(folder, device=None) -> tuple:
    """``(face_vq, body_vq)`` from a folder holding ``face/`` and ``body/`` tokenizer runs
    (as ``venus-mars train-vq --part P --out folder/P`` writes them)."""
    folder = Path(folder)
    missing = [p for p in PARTS if not (folder / p / "config.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} has no {' or '.join(missing)} tokenizer: expected {folder}/face/ and "
                                f"{folder}/body/ (venus-mars train-vq --part face --out {folder}/face)")  # fmt: skip
    return tuple(load_tokenizer(folder / p, part=p, device=device) for p in PARTS)


def copy_vq(src, dst) -> Path:
    """Copy the two tokenizers' final model files (``model.safetensors``, ``config.json``)
    from ``src/{face,body}`` to ``dst/{face,body}``."""
    src, dst = Path(src), Path(dst)
    for p in PARTS:
        (dst / p).mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "config.json"):
            shutil.copy2(src / p / f, dst / p / f)
    return dst


def build_training_pairs(data, face_vq, body_vq, *, context_turns: int = 0, progress: bool = True):
    """``(DatasetDict of chat pairs, {split: PairStats})`` for every split of ``data``."""
    from .pairs import build_pair_splits

    return build_pair_splits(data, face_vq, body_vq, context_turns=context_turns, progress=progress)


def train_mars(data, vq_dir, preset: str = "cpu-mini", out=None, *, steps: int | None = None,
               resume: bool = False, progress: bool = True, context_turns: int = 0, text_only: bool = False,
               **overrides):  # fmt: skip
    """Train the language model of ``preset`` on ``data`` tokenized by the tokenizers in
    ``vq_dir`` (``face/``, ``body/``). Returns ``(LMTrainResult, pairs, pair_stats)``.

    ``overrides`` go to :func:`mini_mars.train_lm.train_lm` (e.g. ``lr=1e-3``,
    ``base="path/to/instruct-model"``, ``lora=True``). ``text_only``: the ablation without
    motion tokens (``pairs.text_only``; the pairs returned are then the text-only ones)."""
    from .train_lm import train_lm

    out = Path(out if out is not None else f"runs/mars-{preset}")
    face_vq, body_vq = load_vq_pair(vq_dir)
    pairs, stats = build_training_pairs(data, face_vq, body_vq, context_turns=context_turns, progress=progress)
    if text_only:
        from .pairs import text_only as strip_pairs

        pairs = strip_pairs(pairs)
    if progress:
        for split, s in stats.items():
            print(f"pairs {split}: {len(pairs[split])} from {s.utterances} utterances "
                  f"({s.truncated_utterances} cut by the 512-frame window)")  # fmt: skip
    result = train_lm(pairs, None, preset, out, steps=steps, resume=resume, progress=progress,
                      face_codes=face_vq.cfg.codebook_size, body_codes=body_vq.cfg.codebook_size,
                      codebooks={"face": face_vq.quantizer.codebook, "body": body_vq.quantizer.codebook},
                      **overrides)  # fmt: skip
    copy_vq(vq_dir, out / "vq")
    write_json(out / "pairs.json", {split: s.to_dict() for split, s in stats.items()})
    return result, pairs, stats


@dataclass
class Mars:
    """A trained mini MARS: the language model, its tokenizer and the two motion tokenizers."""

    model: object
    tokenizer: object
    face_vq: object
    body_vq: object

    def reply(self, prompt, **kw):
        """MARS's answer to ``prompt`` (words, or an interleaved utterance): a
        :class:`~mini_mars.generate.Reply` (see ``generate.generate_reply`` for options)."""
        from .generate import generate_reply

        return generate_reply(self.model, self.tokenizer, self.face_vq, self.body_vq, prompt, **kw)

    def say(self, words: str, prompt="", *, transcript: bool = True, **kw):
        """``words`` said with the gestures MARS chooses (``generate.gesture_for``).
        ``transcript``: first put typed words in the transcripts' form
        (``generate.as_transcript``: "yes, exactly" -> "Yes, exactly.")."""
        from .generate import as_transcript, gesture_for

        words = as_transcript(words) if transcript else words
        return gesture_for(self.model, self.tokenizer, self.face_vq, self.body_vq, words, prompt, **kw)


def load_mars(run_dir, device=None) -> Mars:
    """The :class:`Mars` of a finished :func:`train_mars` run folder."""
    from .lm import load_trained

    run_dir = Path(run_dir)
    model, tokenizer = load_trained(run_dir, device=device)
    face_vq, body_vq = load_vq_pair(run_dir / "vq", device=device)
    return Mars(model, tokenizer, face_vq, body_vq)
