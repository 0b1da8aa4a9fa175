"""The synthetic VENUS: a deterministic generator of VENUS-format conversations.

``generate_venus()`` returns a ``datasets.DatasetDict`` (``train``/``test``) whose rows have
exactly the columns, dtypes and layouts of the released data (``schema.VENUS_FEATURES``):
string ``frame`` fields, dict-of-lists nested columns, a constant root pose, harmful
utterances listed and removed, gaps in the active-speaker frames. What it contains is
worth studying, because the truth is known (``SyntheticTruth``):

- two speakers per segment taking turns, with pauses and a few overlaps, 2.5-3.5 words/s;
- channels with a heavy-tailed number of segments; a topic per video, named in its title;
- sentence sentiment in the paper's proportions; a few harmful utterances removed;
- motion made through the package's own skeleton (``synthetic_motion``) with the cue-word
  rules of ``synthetic_rules`` planted in it, per-speaker style, and per-channel
  differences (one animated channel, one reserved channel, one with a shaky estimator);
- ambiguous prompts whose manner (warm or cold) decides the category of the reply;
- optionally (``backchannel_rate``), backchannels: the listener's short turns ("Yes,
  exactly.", "No, never.", "Mm-hm."), said slowly enough to hold the nod or head shake
  their words trigger.

The generator's rules are described for people in ``data_cards/synthetic_venus.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from . import schema
from . import synthetic_motion as motion
from . import synthetic_rules as rules
from . import synthetic_text as text
from .files import atomic_folder, atomic_write_text

GENERATOR_VERSION = 5  # bump when the output for a given seed changes
FPS = schema.FPS
TRUTH_FILE = "synthetic_truth.json"


@dataclass
class SyntheticConfig:
    """Knobs of the generator. The defaults make the demo sample (about 2,500 utterances, 15,600 s of speech)."""

    n_segments: int = 150
    seconds: float = 120.0  # segment length; 600 reproduces the real VENUS size
    seed: int = 0
    test_fraction: float = 0.15  # share of *videos* held out (segments of a video stay together)
    n_channels: int | None = None  # default: one channel per ~6 segments, at least 4
    prompt_rate: float = 0.08  # chance a turn is an ambiguous, cue-dependent prompt
    harmful_rate: float = 0.004  # chance an utterance is flagged harmful and removed
    overlap_rate: float = 0.08  # chance a turn starts before the previous one ends
    monologue_rate: float = 0.04  # chance of a long turn (> 20 s, cut by the 512-frame window)
    # chance a turn is a listener's short reply ("Yes, exactly."); 0 keeps the data of earlier
    # versions (and every figure measured on it); ``venus-mars demo --preset cpu-gestures`` uses 0.12
    backchannel_rate: float = 0.0

    def __post_init__(self):
        if self.n_segments < 1:
            raise ValueError(f"n_segments must be at least 1; got {self.n_segments}")
        if self.seconds < 10:
            raise ValueError(f"seconds must be at least 10 (one segment holds a few turns); got {self.seconds}")
        for name in ("prompt_rate", "harmful_rate", "overlap_rate", "monologue_rate", "backchannel_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a probability, in [0, 1]; got {getattr(self, name)}")
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1); got {self.test_fraction}")

    def key(self) -> str:
        """A short hash naming this configuration (and generator version) in the cache."""
        blob = json.dumps({**asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass
class SyntheticTruth:
    """What the generator planted, to check analyses and models against.

    ``events``: one dict per cue event (split, video_id, segment_id, utterance_id, cue,
    start_frame, end_frame (absolute frame indices, end exclusive), trigger, rule,
    strength). ``prompts``: one dict per ambiguous prompt (its utterance, the reply's
    utterance, the manner and the reply category). ``speakers``: style per
    (video_id, speaker). ``channels``: the per-channel planted differences.
    """

    config: dict
    rules: dict
    channels: list[dict] = field(default_factory=list)
    speakers: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    prompts: list[dict] = field(default_factory=list)
    sentences: list[dict] = field(default_factory=list)

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the truth as JSON (atomically: a temp file, then a rename)."""
        atomic_write_text(path, json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "SyntheticTruth":
        """Read a truth file written by ``to_json``."""
        return cls(**json.loads(Path(path).read_text()))


# ---------------------------------------------------------------------------------------
# Channels, speakers, videos
# ---------------------------------------------------------------------------------------
_CHANNEL_NAMES = [
    "The Daily Couch", "Two Mics", "Open Table", "Late Shift", "Coffee Break", "Deep Dive",
    "Side Quest", "Good Company", "Front Row", "Night Owls", "Hot Takes", "Slow Talk",
]  # fmt: skip
# Planted per-channel differences, by channel rank (0 = the largest channel). Other
# channels use the defaults; an analysis should flag exactly these.
PLANTED_CHANNELS = {
    1: {"expressivity": 1.8, "note": "animated: gestures and faces 1.8x larger"},
    2: {"expressivity": 0.55, "note": "reserved: gestures and faces 0.55x"},
    3: {"jitter": 0.03, "gap_rate": 0.6, "note": "shaky estimator: 4x jitter, more frame gaps"},
}
# Individual style: each person's expressivity is the channel's times lognormal(0, sigma).
# Hosts appear in every video of their channel, so an unplanted channel can still differ
# from the rest by ~10-20 % (a real, unplanted difference); the planted ones are larger.
SPEAKER_EXPRESSIVITY_SIGMA = 0.15
DEFAULT_JITTER = 0.0075
DEFAULT_GAP_RATE = 0.15  # chance an utterance loses one or two runs of frames


def _random_id(rng: np.random.Generator, n: int, prefix: str = "") -> str:
    alphabet = np.array(list(string.ascii_letters + string.digits + "-_"))
    return prefix + "".join(rng.choice(alphabet, n))


def _make_channels(rng: np.random.Generator, n: int) -> list[dict]:
    weights = 1.0 / np.arange(1, n + 1) ** 1.1  # Zipf-like: a few channels hold most segments
    channels = []
    for k in range(n):
        planted = PLANTED_CHANNELS.get(k, {})
        channels.append(
            {
                "rank": k,
                "channel_id": _random_id(rng, 22, "UC"),
                "name": _CHANNEL_NAMES[k % len(_CHANNEL_NAMES)] + ("" if k < len(_CHANNEL_NAMES) else f" {k}"),
                "weight": float(weights[k] / weights.sum()),
                "main_topic": text.TOPIC_NAMES[k % len(text.TOPIC_NAMES)],
                "expressivity": planted.get("expressivity", 1.0),
                "jitter": planted.get("jitter", DEFAULT_JITTER),
                "gap_rate": planted.get("gap_rate", DEFAULT_GAP_RATE),
                "planted": planted.get("note", ""),
            }
        )
    return channels


# People's resting faces differ along a few directions, not in all 50 coefficients
# independently (real faces are correlated; 50 independent offsets per person would make
# identity incompressible for an 8-dimensional code). A fixed orthonormal basis of
# IDENTITY_DIMS directions carries them, scaled to keep the same overall variance.
IDENTITY_DIMS = 6
_IDENTITY_BASIS = np.linalg.qr(np.random.default_rng(20250601).normal(size=(schema.N_EXPRESSION, IDENTITY_DIMS)))[0].T


def _resting_face(z: np.ndarray) -> np.ndarray:
    """(50,) resting expression from 50 normal draws: the first IDENTITY_DIMS of them, along
    the identity basis (all 50 are drawn, so the random stream is the same as before)."""
    return np.sqrt(schema.N_EXPRESSION / IDENTITY_DIMS) * z[:IDENTITY_DIMS] @ _IDENTITY_BASIS


def _make_style(rng: np.random.Generator, channel: dict) -> motion.Style:
    return motion.Style(
        expressivity=float(channel["expressivity"] * rng.lognormal(0.0, SPEAKER_EXPRESSIVITY_SIGMA)),
        gesture_rate=float(rng.uniform(0.6, 1.0)),
        words_per_second=float(rng.uniform(2.5, 3.5)),
        jitter=float(channel["jitter"]),
        shape=rng.normal(0.0, 0.5, 100),
        betas=rng.normal(0.0, 0.8, 10),
        neutral_face=_resting_face(rng.normal(0.0, 0.15, schema.N_EXPRESSION)),
    )


# ---------------------------------------------------------------------------------------
# One segment
# ---------------------------------------------------------------------------------------
@dataclass
class _Turn:
    speaker: int
    sentences: list[text.Sentence]
    prompt_manner: str | None = None
    reply_to: int | None = None  # utterance id this turn answers (cue-dependent reply)
    reply_category: str | None = None
    backchannel: bool = False  # a listener's short reply, said slower (BACKCHANNEL_PACE)


# Backchannels are drawn out ("yes... exactly"): spoken at this share of the speaker's rate,
# so that "Yes, exactly." lasts about 1.2 s and holds the 0.9 s nod its words trigger.
BACKCHANNEL_PACE = 0.6


def _plan_turns(rng: np.random.Generator, cfg: SyntheticConfig, topic: str, host_bias: float):
    """An endless stream of turns: who speaks and what they say."""
    speaker, pending_reply = 0, None
    while True:
        if pending_reply is not None:  # the other speaker answers the ambiguous prompt
            category, manner = pending_reply
            reply = rules.REPLY_TEMPLATES[category][rng.integers(len(rules.REPLY_TEMPLATES[category]))]
            sents = text.sentences_from_text(reply, "positive" if category == "playful" else "negative")
            if rng.random() < 0.4:
                sents.append(text.make_sentence(rng, topic))
            yield _Turn(speaker, sents, reply_category=category)
            pending_reply = None
        elif rng.random() < cfg.prompt_rate:
            manner = "warm" if rng.random() < 0.5 else "cold"
            prompt = rules.AMBIGUOUS_PROMPTS[rng.integers(len(rules.AMBIGUOUS_PROMPTS))]
            yield _Turn(speaker, text.sentences_from_text(prompt), prompt_manner=manner)
            pending_reply = (rules.REPLY_CATEGORY_FOR_MANNER[manner], manner)
        elif cfg.backchannel_rate > 0 and rng.random() < cfg.backchannel_rate:  # 0: no draw, the v5 stream
            yield _Turn(speaker, [text.make_backchannel(rng)], backchannel=True)
        else:
            if rng.random() < cfg.monologue_rate:
                n = int(rng.integers(8, 13))
            else:  # the host (speaker 0) talks a little longer: a planted talk-time imbalance
                n = 1 + int(rng.geometric(0.55 if speaker == 1 else 1 / (1 + host_bias)) - 1)
            yield _Turn(speaker, [text.make_sentence(rng, topic) for _ in range(max(n, 1))])
        if pending_reply is not None or rng.random() > 0.1:  # 10 %: the same speaker goes on
            speaker = 1 - speaker


def _segment(rng, cfg, video, seg_index, styles, channel, split, truth):
    """Generate one row (a dict of python/numpy values) and record its truth."""
    conv = {k: [] for k in ("utterance_id", "speaker", "text", "start_time", "end_time", "words")}
    frame_parts = []  # (utt_id, speaker, frames, face, body)
    harmful = []
    t = float(rng.uniform(0.3, 2.0))
    prev_start, uid = 0.0, 0
    prompt_of = {}  # utterance id of the last prompt
    for turn in _plan_turns(rng, cfg, video["topic"], host_bias=1.1):
        style = styles[turn.speaker]
        if rng.random() < cfg.overlap_rate and uid > 0:
            start = max(prev_start + 0.5, t - rng.uniform(0.1, 0.5))  # starts over the other
        else:
            start = t + rng.uniform(0.15, 0.9)
        pace = style.words_per_second * (BACKCHANNEL_PACE if turn.backchannel else 1.0)
        words, w_start, w_end, sent_of = text.time_words(rng, turn.sentences, start, pace)
        end = round(float(w_end[-1]) + 0.05, 3)
        if end > cfg.seconds:
            break
        start = float(w_start[0])
        is_harmful = turn.prompt_manner is None and turn.reply_category is None and rng.random() < cfg.harmful_rate
        if is_harmful:
            harmful.append(uid)
        else:
            _utterance(rng, uid, turn, style, words, w_start, w_end, sent_of, start, end,
                       conv, frame_parts, channel, split, video, seg_index, truth, prompt_of)  # fmt: skip
        prev_start, t, uid = start, max(t, end), uid + 1
    return {
        "video_id": video["video_id"],
        "segment_id": seg_index,
        "conversation": conv,
        "frames": frame_parts,
        "harmful_utterance_id": harmful,
        "channel_id": channel["channel_id"],
        "title": video["title"],
        "duration": schema.format_duration(video["offset"] + seg_index * cfg.seconds,
                                           video["offset"] + (seg_index + 1) * cfg.seconds),  # fmt: skip
        "fps": FPS,
    }


def _utterance(rng, uid, turn, style, words, w_start, w_end, sent_of, start, end,
               conv, frame_parts, channel, split, video, seg_index, truth, prompt_of):  # fmt: skip
    """Words, cue events, motion and frames of one utterance."""
    first, last = int(start * FPS), int(end * FPS)
    n = last - first + 1
    wf = np.clip((w_start * FPS).astype(int) - first, 0, n - 1)
    wf_end = np.clip((w_end * FPS).astype(int) - first, 0, n)
    events = _cue_events(rng, words, wf, n, style, turn, sent_of)
    rot, expr, head = motion.utterance_motion(rng, n, wf, wf_end, events, style, phase=start)
    face, body = motion.pack_features(rot, expr, head, style, rng)
    frames = np.arange(first, last + 1)
    keep = _frame_gaps(rng, n, channel["gap_rate"])
    conv["utterance_id"].append(uid)
    conv["speaker"].append(turn.speaker)
    conv["text"].append(" ".join(words))
    conv["start_time"].append(round(start, 3))
    conv["end_time"].append(end)
    conv["words"].append({"word": words, "start_time": w_start.tolist(), "end_time": w_end.tolist()})
    frame_parts.append((uid, turn.speaker, frames[keep], face[keep], body[keep]))
    key = {"split": split, "video_id": video["video_id"], "segment_id": seg_index, "utterance_id": uid}
    for ev in events:
        truth.events.append({**key, "cue": ev.cue, "start_frame": first + max(ev.start, 0),
                             "end_frame": first + min(ev.end, n), "trigger": ev.trigger,
                             "rule": ev.rule, "strength": round(ev.strength, 3)})  # fmt: skip
    for k, s in enumerate(turn.sentences):
        idx = [i for i, j in enumerate(sent_of) if j == k]
        truth.sentences.append({**key, "sentence": k, "sentiment": s.sentiment,
                                "start_time": float(w_start[idx[0]]), "end_time": float(w_end[idx[-1]])})  # fmt: skip
    if turn.prompt_manner is not None:
        prompt_of["last"] = (uid, turn.prompt_manner, " ".join(words))
    elif turn.reply_category is not None and "last" in prompt_of:
        p_uid, manner, p_text = prompt_of.pop("last")
        truth.prompts.append({**key, "prompt_utterance_id": p_uid, "reply_utterance_id": uid,
                              "prompt_text": p_text, "manner": manner,
                              "reply_category": turn.reply_category})  # fmt: skip


def _cue_events(rng, words, wf, n, style, turn, sent_of) -> list[motion.CueEvent]:
    """The cue events of one utterance: planted rules, sentiment faces, background cues."""
    events = []
    for i, rule in rules.trigger_positions(words):
        if rng.random() < rule.probability * style.gesture_rate:
            s = int(wf[i] + round(rule.onset_s * FPS))
            events.append(motion.CueEvent(rule.cue, s, s + int(rule.duration_s * FPS),
                                          float(rng.uniform(0.8, 1.0)), rules.normalize_word(words[i]), rule.name))  # fmt: skip
    sent_arr = np.asarray(sent_of)
    for k, sentence in enumerate(turn.sentences):
        if sentence.sentiment in rules.SENTIMENT_FACE and rng.random() < 0.7:
            cue, strength = rules.SENTIMENT_FACE[sentence.sentiment]
            idx = np.flatnonzero(sent_arr == k)
            events.append(motion.CueEvent(cue, int(wf[idx[0]]), int(wf[idx[-1]]) + 8, strength, None, f"sentiment_{sentence.sentiment}"))
    if turn.prompt_manner is not None:  # the manner of an ambiguous prompt: whole utterance
        for cue in rules.PROMPT_MANNERS[turn.prompt_manner]:
            events.append(motion.CueEvent(cue, 0, n + 6, 1.0, None, f"prompt_{turn.prompt_manner}"))
    minutes = n / FPS / 60
    for cue, per_minute in rules.BACKGROUND_CUES.items():
        for _ in range(rng.poisson(per_minute * style.gesture_rate * minutes)):
            s = int(rng.integers(0, n))
            dur = int(next(r.duration_s for r in rules.CUE_RULES if r.cue == cue) * FPS)
            events.append(motion.CueEvent(cue, s, s + dur, float(rng.uniform(0.5, 0.9)), None, "background"))
    return events


def _frame_gaps(rng, n: int, gap_rate: float) -> np.ndarray:
    """Boolean mask of the frames kept: the active-speaker detector misses a run or two."""
    keep = np.ones(n, dtype=bool)
    if n > 30 and rng.random() < gap_rate:
        for _ in range(int(rng.integers(1, 3))):
            length = int(rng.integers(3, min(20, n // 4)))
            s = int(rng.integers(1, n - length - 1))
            keep[s : s + length] = False
    return keep


# ---------------------------------------------------------------------------------------
# Rows to Arrow
# ---------------------------------------------------------------------------------------
def _frames_column(rows: list[dict], which: int) -> pa.StructArray:
    """One feature track column (face: which=3, body: which=4) built from numpy buffers."""
    counts = np.array([sum(len(p[2]) for p in r["frames"]) for r in rows])
    row_offsets = pa.array(np.r_[0, np.cumsum(counts)].astype(np.int32))
    parts = [p for r in rows for p in r["frames"]]
    dim = schema.FACE_DIM if which == 3 else schema.BODY_DIM
    if parts:
        utt = np.concatenate([np.full(len(p[2]), p[0]) for p in parts])
        spk = np.concatenate([np.full(len(p[2]), p[1]) for p in parts])
        idx = np.concatenate([p[2] for p in parts])
        feats = np.concatenate([p[which] for p in parts]).astype(np.float32)
    else:
        utt = spk = idx = np.zeros(0, dtype=np.int64)
        feats = np.zeros((0, dim), dtype=np.float32)
    utt_str = pc.cast(pa.array(utt), pa.string())
    # frame strings "<index>_<speaker>": the index first, as the released code expects
    frame_str = pc.binary_join_element_wise(pc.cast(pa.array(idx), pa.string()), pc.cast(pa.array(spk), pa.string()), "_")
    inner_offsets = pa.array(np.arange(0, feats.size + 1, dim, dtype=np.int64))
    per_frame = pa.LargeListArray.from_arrays(inner_offsets, pa.array(feats.ravel()))
    per_frame = per_frame.cast(pa.list_(pa.float32()))
    return pa.StructArray.from_arrays(
        [
            pa.ListArray.from_arrays(row_offsets, utt_str),
            pa.ListArray.from_arrays(row_offsets, frame_str),
            pa.ListArray.from_arrays(row_offsets, per_frame),
        ],
        names=["utt_id", "frame", "features"],
    )


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Generated rows to an Arrow table with exactly ``schema.VENUS_FEATURES``."""
    arrow_schema = schema.VENUS_FEATURES.arrow_schema
    columns = {
        "video_id": pa.array([r["video_id"] for r in rows], pa.string()),
        "segment_id": pa.array([r["segment_id"] for r in rows], pa.int64()),
        schema.CONVERSATION: pa.array([r["conversation"] for r in rows], arrow_schema.field(schema.CONVERSATION).type),
        schema.FACE: _frames_column(rows, 3),
        schema.BODY: _frames_column(rows, 4),
        schema.HARMFUL: pa.array([r["harmful_utterance_id"] for r in rows], pa.list_(pa.int64())),
        "channel_id": pa.array([r["channel_id"] for r in rows], pa.string()),
        "title": pa.array([r["title"] for r in rows], pa.string()),
        "duration": pa.array([r["duration"] for r in rows], pa.string()),
        "fps": pa.array([r["fps"] for r in rows], pa.int64()),
    }
    return pa.table([columns[f.name] for f in arrow_schema], schema=arrow_schema)


def _to_dataset(tables: list[pa.Table], split: str, fingerprint: str) -> datasets.Dataset:
    table = pa.concat_tables(tables)
    info = datasets.DatasetInfo(features=schema.VENUS_FEATURES, description="synthetic VENUS")
    # An explicit fingerprint spares datasets from hashing the whole table (seconds).
    return datasets.Dataset(
        datasets.table.InMemoryTable(table), info=info, split=datasets.NamedSplit(split), fingerprint=fingerprint
    )


# ---------------------------------------------------------------------------------------
# The public entry points
# ---------------------------------------------------------------------------------------
def generate(cfg: SyntheticConfig, progress: bool = True) -> tuple[datasets.DatasetDict, SyntheticTruth]:
    """Generate the synthetic VENUS for ``cfg`` in memory: (DatasetDict, truth)."""
    rng = np.random.default_rng(cfg.seed)
    n_channels = cfg.n_channels or max(4, int(round(cfg.n_segments / 6)))
    channels = _make_channels(rng, n_channels)
    truth = SyntheticTruth(config=asdict(cfg), rules=rules.rules_as_dict(), channels=channels)
    hosts = [_make_style(rng, ch) for ch in channels]
    # Videos of 1-4 segments each, drawn from channels by their heavy-tailed weights.
    videos, n_assigned = [], 0
    weights = np.array([c["weight"] for c in channels])
    while n_assigned < cfg.n_segments:
        k = min(int(rng.integers(1, 5)), cfg.n_segments - n_assigned)
        if not videos and cfg.n_segments > 1:
            k = min(k, cfg.n_segments - 1)  # at least two videos, so both splits can exist
        ch = int(rng.choice(n_channels, p=weights / weights.sum()))
        topic = channels[ch]["main_topic"] if rng.random() < 0.7 else text.TOPIC_NAMES[rng.integers(len(text.TOPIC_NAMES))]
        episode = sum(v["channel"] == ch for v in videos) + 1
        videos.append({"video_id": _random_id(rng, 11), "channel": ch, "n_segments": k, "topic": str(topic),
                       "title": text.make_title(rng, channels[ch]["name"], str(topic), episode),
                       "offset": float(rng.integers(60, 900))})  # fmt: skip
        n_assigned += k
    n_test = int(round(cfg.test_fraction * len(videos)))
    if cfg.test_fraction > 0 and len(videos) > 1:
        n_test = min(max(n_test, 1), len(videos) - 1)
    test_videos = set(rng.choice(len(videos), n_test, replace=False).tolist()) if n_test else set()
    tables = {s: [] for s in schema.SPLITS}
    batch = {s: [] for s in schema.SPLITS}
    bar = tqdm(total=cfg.n_segments, desc="synthesising VENUS segments", unit="seg", disable=not progress)
    for v_index, video in enumerate(videos):
        split = "test" if v_index in test_videos else "train"
        channel = channels[video["channel"]]
        guest = _make_style(rng, channel)
        styles = {0: hosts[video["channel"]], 1: guest}
        for spk, st in styles.items():
            truth.speakers.append({"video_id": video["video_id"], "speaker": spk, "channel_id": channel["channel_id"],
                                   "role": "host" if spk == 0 else "guest", "topic": video["topic"],
                                   "expressivity": st.expressivity, "gesture_rate": st.gesture_rate,
                                   "words_per_second": st.words_per_second, "jitter": st.jitter})  # fmt: skip
        for seg in range(video["n_segments"]):
            batch[split].append(_segment(rng, cfg, video, seg, styles, channel, split, truth))
            if len(batch[split]) == 16:  # bounded Arrow chunks, whatever the dataset size
                tables[split].append(rows_to_table(batch[split]))
                batch[split] = []
            bar.update(1)
    bar.close()
    for s in schema.SPLITS:
        if batch[s]:
            tables[s].append(rows_to_table(batch[s]))
    # A split with no video (one segment, or test_fraction=0) is left out, not written empty.
    dsd = datasets.DatasetDict(
        {s: _to_dataset(tables[s], s, f"venus-synth-{cfg.key()}-{s}") for s in schema.SPLITS if tables[s]}
    )
    return dsd, truth


def default_cache_dir() -> Path:
    """Where generated datasets are cached: ``$VENUS_MARS_CACHE`` or ``~/.cache/venus-mars``."""
    return Path(os.environ.get("VENUS_MARS_CACHE", Path.home() / ".cache" / "venus-mars")) / "synthetic"


def save_synthetic(dsd: datasets.DatasetDict, truth: SyntheticTruth, out_dir: str | os.PathLike) -> Path:
    """Write a generated dataset and its truth to ``out_dir`` atomically.

    The folder is written beside its destination under a temporary name and renamed into
    place, so a crash never leaves a half-written dataset that looks complete.
    """
    with atomic_folder(out_dir) as tmp:
        dsd.save_to_disk(str(tmp))
        truth.to_json(tmp / TRUTH_FILE)
    return Path(out_dir).expanduser().resolve()


def load_synthetic_truth(folder: str | os.PathLike) -> SyntheticTruth:
    """The truth file saved beside a generated dataset folder."""
    path = Path(folder) / TRUTH_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: it is written by generate_venus/`venus-mars data synth`")
    return SyntheticTruth.from_json(path)


def generate_venus(
    n_segments: int = 150,
    seconds: float = 120.0,
    seed: int = 0,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    return_truth: bool = False,
    **config,
):
    """The synthetic VENUS as a ``datasets.DatasetDict`` with ``train`` and ``test`` splits.

    Deterministic for a seed. With ``cache=True`` (the default) the result is saved under
    ``cache_dir`` (default ``default_cache_dir()``) and later calls with the same
    configuration load it memory-mapped in a moment. ``return_truth=True`` also returns
    the ``SyntheticTruth``. Extra keyword arguments set ``SyntheticConfig`` fields.
    """
    cfg = SyntheticConfig(n_segments=n_segments, seconds=seconds, seed=seed, **config)
    if not cache:
        dsd, truth = generate(cfg, progress=progress)
        return (dsd, truth) if return_truth else dsd
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / f"venus-synth-{cfg.key()}"
    if not (folder / TRUTH_FILE).exists():
        dsd, truth = generate(cfg, progress=progress)
        save_synthetic(dsd, truth, folder)
    dsd = datasets.load_from_disk(str(folder))
    return (dsd, load_synthetic_truth(folder)) if return_truth else dsd
