"""Nonverbal cue events from face and body tracks, and how they co-occur with words.

:func:`detect_cues` turns one utterance's arrays (``extraction.segment_utterances(row,
full=True)``) into a list of :class:`CueEvent`: runs of frames where a kinematic measure
from :mod:`motion_features` crosses a threshold. Nothing here reads the synthetic truth;
the measures are the same on real VENUS tracks:

========================  ==============================================================
cue                       measure (per frame)
========================  ==============================================================
``nod``                   band-passed head pitch, moving RMS (``nod_shake_energy[:, 0]``)
``head_shake``            band-passed head yaw, moving RMS (``nod_shake_energy[:, 1]``)
``hand_to_face``          distance of the nearer hand's knuckles to the chin (below a limit)
``hand_raised``           the higher wrist's height relative to its shoulder (above a limit)
``gesture``               the faster wrist's speed (positions low-passed at 5 Hz), m/s, sustained
``smile`` / ``frown``     projection of the expression on the synthetic direction
``jaw_open``              jaw opening, radians (off unless a threshold is set)
========================  ==============================================================

The ``smile`` and ``frown`` directions are the synthetic generator's own convention
(``synthetic_rules.EXPRESSION_DIRECTIONS``); FLAME's expression coefficients have no
official names, so on real data these two cues are only exploratory. The default
thresholds were set on the synthetic data (they are physical units where the measure has
them) and should be checked against a few real clips before trusting them there. Tracks
are expected smoothed as ``segment_utterances`` does by default. ``gesture`` is the most
noise-sensitive cue: on the synthetic data, idle hands with twice the default estimator
jitter already cross its threshold now and then, so a shaky real estimator needs a higher
``gesture`` threshold (check the idle speed of a few clips first).

:func:`cue_word_cooccurrence` streams over a dataset and counts, for every normalised word
and two-word phrase, how often a cue event starts in a window around the word's start,
compared with all words (lift). :func:`top_words` ranks the words of one cue.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import sosfiltfilt

from . import extraction, kinematics, schema
from . import motion_features as mf
from .synthetic_rules import normalize_word

CUE_NAMES: tuple[str, ...] = (
    "nod", "head_shake", "hand_to_face", "hand_raised", "gesture", "smile", "frown", "jaw_open",
)


@dataclass(frozen=True)
class CueThresholds:
    """Thresholds and run rules of :func:`detect_cues` (defaults tuned on the synthetic data).

    A cue is on at the frames where its measure passes the threshold; runs separated by
    fewer than ``merge_gap`` frames are merged, and merged runs shorter than
    ``min_frames`` are dropped (``gesture_merge_gap``/``gesture_min_frames`` for gestures).
    A threshold of ``None`` switches that cue off.
    """

    nod: float | None = 0.03  # rad RMS of band-passed head pitch (synthetic nods ~0.05-0.17)
    head_shake: float | None = 0.03  # rad RMS of band-passed head yaw
    hand_to_face: float | None = 0.2  # m, knuckles-to-chin distance below this (lap ~0.58)
    hand_raised: float | None = 0.0  # m, wrist height above its shoulder (rest ~-0.4, hand at chin ~-0.06)
    gesture: float | None = 0.25  # m/s, the faster wrist's low-passed speed, sustained (gesture_min_frames)
    smile: float | None = 0.6  # expression units along the unit smile direction, above the utterance median
    frown: float | None = 0.9  # same for the unit frown direction (speech visemes move it too)
    jaw_open: float | None = None  # rad; speech opens the jaw all the time, so off by default
    merge_gap: int = 4  # frames: runs closer than this are one event
    min_frames: int = 5  # frames: shorter merged runs are dropped
    # A gesture is sustained hand movement (e.g. beats): a single reach of the hand to the
    # face or into the air is fast but brief, so gestures use longer run rules.
    gesture_merge_gap: int = 8
    gesture_min_frames: int = 14
    band: tuple[float, float] = (1.5, 4.0)  # Hz, band of nod/shake energy


@dataclass(frozen=True)
class CueEvent:
    """One detected cue: frames ``start_frame`` to ``end_frame`` (absolute, end exclusive)."""

    cue: str
    start_frame: int
    end_frame: int
    peak: float  # the measure's most extreme value in the event (min distance for hand_to_face)


def threshold_runs(above, merge_gap: int = 4, min_frames: int = 5) -> list[tuple[int, int]]:
    """(start, end) index pairs (end exclusive) of runs of True in a boolean series.

    Runs whose gap (False frames between them) is below ``merge_gap`` are merged; merged
    runs shorter than ``min_frames`` are dropped.
    """
    above = np.asarray(above, dtype=bool).reshape(-1)
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if len(starts) == 0:
        return []
    keep = np.concatenate([[True], starts[1:] - ends[:-1] >= merge_gap])  # a run that starts an event
    starts, ends = starts[keep], np.append(ends[np.flatnonzero(keep)[1:] - 1], ends[-1])
    long = ends - starts >= min_frames
    return list(zip(starts[long].tolist(), ends[long].tolist()))


GESTURE_LOWPASS_HZ = 5.0  # Hz: joint positions are low-passed before the hand speed


def _lowpass(x: np.ndarray, fps: float, cutoff: float) -> np.ndarray:
    """``x`` low-passed along axis 0 (2nd-order Butterworth, forwards and backwards).

    Estimator jitter is white noise up to fps/2 and differentiation amplifies its high
    frequencies; hand strokes are slower than ``cutoff``. Gaps in the track are ignored
    (the stored frames are filtered as if consecutive). Short tracks are returned as they are.
    """
    if len(x) < 10 or not 0 < cutoff < fps / 2:
        return x
    sos = mf.butter_sos(2, cutoff, "low", fps)
    return sosfiltfilt(sos, x, axis=0, padlen=min(9, len(x) - 1))


WRISTS = [schema.JOINT_INDEX["left_wrist"], schema.JOINT_INDEX["right_wrist"]]


def _lowpass_joints(joints: np.ndarray, which, fps: float) -> np.ndarray:
    """(n, 55, 3) positions with the joints ``which`` low-passed at ``GESTURE_LOWPASS_HZ``
    (the filter works column by column, so filtering only the joints a measure reads gives
    the same numbers for them at a fraction of the cost); other joints are left as they are."""
    out = joints.copy()
    out[:, which] = _lowpass(joints[:, which], fps, GESTURE_LOWPASS_HZ)
    return out


def _relative(x: np.ndarray) -> np.ndarray:
    """``x`` minus its median (a person's resting expression differs from zero)."""
    return x - np.median(x) if len(x) else x


def utterance_pose(utt: extraction.UtteranceArrays) -> tuple[np.ndarray, np.ndarray]:
    """(local rotations (n, 55, 3), joint positions (n, 55, 3)) of an utterance's frames."""
    face = utt.face_full if utt.face_full is not None else utt.face
    body = utt.body_full if utt.body_full is not None else utt.body
    rot = mf.local_rotations(body, face)
    return rot, kinematics.forward_kinematics(rot)


def cue_measures(utt: extraction.UtteranceArrays, *, fps: float = schema.FPS,
                 band: tuple[float, float] = (1.5, 4.0), pose=None) -> dict[str, np.ndarray]:
    """Per-frame measure of every cue, (n,) each, for an utterance read with ``full=True``.

    Keys are :data:`CUE_NAMES`; ``hand_to_face`` is a distance (small = on), every other
    measure is large when the cue is on. ``smile``/``frown`` are relative to the utterance's
    median (so a face that smiles through a whole utterance shows no smile event). Head cues
    need ``head_rotation`` (absent for the 153-float face layout: those measures are NaN).
    ``pose``: the utterance's :func:`utterance_pose`, when the caller has it already.
    """
    face = utt.face_full if utt.face_full is not None else utt.face
    n, frames = len(utt.frames), np.asarray(utt.frames)
    if utt.head_rotation is not None and n >= 3:
        energy = mf.nod_shake_energy(utt.head_rotation, fps, band=band, frames=frames)
    else:
        energy = np.full((n, 2), np.nan if utt.head_rotation is None else 0.0)
    rot, joints = pose if pose is not None else utterance_pose(utt)
    return {
        "nod": energy[:, 0],
        "head_shake": energy[:, 1],
        "hand_to_face": mf.hand_to_face_distance(joints, rot).min(axis=1),
        "hand_raised": mf.wrist_height(joints).max(axis=1),
        "gesture": mf.hand_speed(_lowpass_joints(joints, WRISTS, fps), fps, frames).max(axis=1),
        "smile": _relative(mf.expression_projection(face, "smile")),
        "frown": _relative(mf.expression_projection(face, "frown")),
        "jaw_open": mf.jaw_opening(face),
    }


def detect_cues(utt: extraction.UtteranceArrays, *, fps: float = schema.FPS,
                thresholds: CueThresholds | None = None, measures: dict | None = None) -> list[CueEvent]:
    """Cue events of one utterance (read with ``segment_utterances(row, full=True)``).

    Events are runs of frames where a measure of :func:`cue_measures` passes its threshold
    in ``thresholds`` (:class:`CueThresholds`), merged and filtered by
    :func:`threshold_runs`. Runs are taken over the stored frames; a gap in the track
    does not split a run. Sorted by start frame, then cue. ``measures``: the utterance's
    :func:`cue_measures`, when the caller has them already.
    """
    th = thresholds or CueThresholds()
    if len(utt.frames) == 0:
        return []
    frames = np.asarray(utt.frames)
    if measures is None:
        measures = cue_measures(utt, fps=fps, band=th.band)
    events = []
    for cue, x in measures.items():
        limit = getattr(th, cue)
        if limit is None:
            continue
        below = cue == "hand_to_face"
        on = (x < limit) if below else (x > limit)  # NaN never passes
        if cue == "gesture":
            runs = threshold_runs(on, th.gesture_merge_gap, th.gesture_min_frames)
        else:
            runs = threshold_runs(on, th.merge_gap, th.min_frames)
        for a, b in runs:
            peak = x[a:b].min() if below else x[a:b].max()
            events.append(CueEvent(cue, int(frames[a]), int(frames[b - 1]) + 1, float(peak)))
    return sorted(events, key=lambda e: (e.start_frame, e.cue))


def utterance_words(row) -> dict[int, dict]:
    """{utterance id: words dict (word, start_time, ...)} of one row (dict or Arrow);
    utterances without words are left out."""
    conv = extraction.conversation_of(row)
    if not isinstance(conv, dict) or not conv.get("words"):
        return {}
    return {int(u): w for u, w in zip(conv["utterance_id"], conv["words"]) if w}


def _terms(words: list[str]) -> list[list[str]]:
    """Per word position, the normalised word and the two-word phrase starting there."""
    norm = [normalize_word(w) for w in words]
    out = []
    for i, w in enumerate(norm):
        terms = [w] if w else []
        if w and i + 1 < len(norm) and norm[i + 1]:
            terms.append(f"{w} {norm[i + 1]}")
        out.append(terms)
    return out


class CooccurrenceCounter:
    """Counts behind :func:`cue_word_cooccurrence`, fed one utterance at a time.

    ``add(words, events)`` takes an utterance's word list and its detected events; ``table()``
    gives the (word, cue) table. Counters of dataset shards can be merged with ``merge``.
    """

    def __init__(self, cues, *, window_s: tuple[float, float] = (-0.3, 1.0), fps: float = schema.FPS):
        self.cues, self.window_s, self.fps = list(cues), window_s, fps
        self.n_word, self.n_with = Counter(), Counter()
        self.n_total, self.n_total_with = 0, Counter()

    def add(self, words: dict, events: list[CueEvent]) -> None:
        """Count one utterance: its words (``{"word", "start_time", ...}``) and cue events."""
        lo, hi = self.window_s
        t_word = np.asarray(words["start_time"], dtype=np.float64)
        hit = {}  # cue -> (n_words,) bool: an event of the cue starts in [t + lo, t + hi]
        for c in self.cues:
            starts = np.sort([e.start_frame / self.fps for e in events if e.cue == c])
            hit[c] = np.searchsorted(starts, t_word + hi, "right") > np.searchsorted(starts, t_word + lo, "left")
        for i, terms in enumerate(_terms(words["word"])):
            if not terms:
                continue
            hits = [c for c in self.cues if hit[c][i]]
            self.n_total += 1
            self.n_total_with.update(hits)
            for term in terms:
                self.n_word[term] += 1
                for c in hits:
                    self.n_with[term, c] += 1

    def merge(self, other: "CooccurrenceCounter") -> "CooccurrenceCounter":
        """Add another counter's counts (same cues and window) to this one; returns self."""
        self.n_word.update(other.n_word)
        self.n_with.update(other.n_with)
        self.n_total += other.n_total
        self.n_total_with.update(other.n_total_with)
        return self

    def table(self, min_count: int = 5) -> pd.DataFrame:
        """The (word, cue) table described in :func:`cue_word_cooccurrence`."""
        records = [(w, c, n, self.n_with[w, c]) for w, n in self.n_word.items() if n >= min_count for c in self.cues]
        df = pd.DataFrame(records, columns=["word", "cue", "n_word", "n_with_cue"])
        df.insert(1, "kind", np.where(df["word"].str.contains(" "), "phrase", "word"))
        df["rate"] = df["n_with_cue"] / df["n_word"]
        base = {c: self.n_total_with[c] / max(self.n_total, 1) for c in self.cues}
        df["base_rate"] = df["cue"].map(base).astype(float)
        df["lift"] = (df["rate"] / df["base_rate"].where(df["base_rate"] > 0)).astype(float)
        return df.sort_values(["cue", "lift"], ascending=[True, False], ignore_index=True)


def active_cues(thresholds: CueThresholds | None = None) -> list[str]:
    """The cues that ``thresholds`` switches on (a threshold that is not None)."""
    th = thresholds or CueThresholds()
    return [c for c in CUE_NAMES if getattr(th, c) is not None]


def cue_word_cooccurrence(data, *, window_s: tuple[float, float] = (-0.3, 1.0), min_count: int = 5,
                          fps: float = schema.FPS, thresholds: CueThresholds | None = None,
                          progress: bool = False) -> pd.DataFrame:
    """Which words (and two-word phrases) come with which detected cues, over a dataset.

    Streams over ``data`` (a split, an Arrow table or an iterable of rows), one segment in
    memory at a time. For each word occurrence it asks, for each cue, whether a detected
    event (:func:`detect_cues`) starts within ``window_s`` seconds of the word's start
    (inclusive). Words are only counted in utterances with frames.

    Returns one row per (word, cue) with ``n_word >= min_count``: ``n_word`` occurrences,
    ``n_with_cue`` of them with the cue, ``rate = n_with_cue / n_word``, ``base_rate`` (the
    share of all single-word occurrences with the cue) and ``lift = rate / base_rate`` (NaN
    when the base rate is 0). Columns: word, kind ("word" or "phrase"), cue, n_word,
    n_with_cue, rate, base_rate, lift. A phrase inherits the cues of its first word, so
    "yeah that" ranks with "yeah": pass ``phrases=False`` to :func:`top_words` to rank
    single words only. (``behaviour.measure_behaviour`` fills the same counts in its pass.)
    """
    from tqdm.auto import tqdm

    th = thresholds or CueThresholds()
    counter = CooccurrenceCounter(active_cues(th), window_s=window_s, fps=fps)
    rows, total = extraction.segment_rows(data)
    for row in tqdm(rows, total=total, unit="segment", disable=not progress):
        words_of = utterance_words(row)
        for utt in extraction.segment_utterances(row, full=True):
            words = words_of.get(utt.utterance_id)
            if words is None or len(utt.frames) == 0:
                continue
            counter.add(words, detect_cues(utt, fps=fps, thresholds=th))
    return counter.table(min_count)


def top_words(df: pd.DataFrame, cue: str, k: int = 10, min_count: int = 5, phrases: bool = True) -> pd.DataFrame:
    """The ``k`` words of ``df`` (from :func:`cue_word_cooccurrence`) with the highest lift for ``cue``.

    Only words with ``n_word >= min_count`` (and no two-word phrases unless ``phrases``);
    ties in lift go to the more frequent word.
    """
    sel = df[(df["cue"] == cue) & (df["n_word"] >= min_count)]
    if not phrases:
        sel = sel[sel["kind"] == "word"]
    return sel.sort_values(["lift", "n_word"], ascending=False).head(k).reset_index(drop=True)
