"""Bias audit: who VENUS represents, how behaviour differs between groups, and where the
face and body estimators did worse.

Three parts, all computed from :class:`behaviour.BehaviourTables`:

- **Representation** (:func:`representation`): how concentrated the segments are in a few
  channels (Gini coefficient, top-k share), topics, the talk-time balance between the two
  speakers of a segment, the utterance-length distribution and what the 512-frame MARS
  window cuts off long utterances.
- **Behaviour by group** (:func:`group_differences`): for each group (a channel, a topic, a
  speaker role, a sentiment) and each measure, the group's mean against the rest of the
  data as a relative difference, with a bootstrap confidence interval that resamples whole
  videos when channels are compared and whole channels otherwise (utterances of one video
  are not independent: same people, same camera; nor are the videos of one channel, which
  share a host). Groups with fewer than 5 such units are listed but not tested. The
  interval's level is Bonferroni-adjusted for the number of groups compared, so that with
  25 channels one of them is not flagged by chance alone. A group is **flagged** when the
  whole interval lies beyond +-``min_effect`` (default 20 %): the difference is both
  unlikely to be noise and large enough to matter; ``excludes_zero`` reports the weaker
  statement.
- **Extraction quality** by group: the same comparison for frame coverage, frame gaps and
  jitter (high-frequency energy of the raw parameters), the proxies of how well EMOCA/OSX
  tracked a group.

What VENUS does not contain: :data:`NOT_IN_VENUS`. Fairness questions about age, gender,
skin tone, language variety or disability cannot be answered from the released data;
audit those groups only with labels collected under a protocol of their own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import behaviour, cues, schema

NOT_IN_VENUS = (
    "VENUS has no demographic labels (no age, gender, ethnicity, skin tone, accent, language "
    "variety or disability), no speaker identities across videos (speaker 0/1 is the order "
    "within a segment), no audio or video frames and no consent metadata. The groups this "
    "audit can compare are the ones the rows carry: channel, topic (only when titles are "
    "available; the released rows have none), speaker role within a segment, the sentiment "
    "of a sentence, and the person within one video (video_id:speaker)."
)
# Behaviour measures compared between groups (per-utterance means; cue counts as rates).
BEHAVIOUR_MEASURES: tuple[str, ...] = (
    "hand_speed", "energy_arms", "energy_hands", "energy_head", "head_oscillation",
    "expression_amplitude", "jaw_opening", "speech_rate",
    *(f"cue_{c}" for c in cues.CUE_NAMES if c != "jaw_open"),
)  # fmt: skip
# Frame gaps are counted in ``coverage`` (a gap lowers it); gap counts per minute are too
# rare per channel (a handful) to compare on their own.
QUALITY_MEASURES: tuple[str, ...] = ("coverage", "jitter_body", "jitter_face")
GROUPS: tuple[str, ...] = ("channel_id", "topic", "speaker")


def gini(counts) -> float:
    """Gini coefficient of non-negative counts: 0 = all equal, towards 1 = one holds all.

    Mean absolute difference between all pairs over twice the mean, computed from the
    sorted counts: G = sum_i (2 i - n - 1) x_(i) / (n sum x), i = 1..n.
    """
    x = np.sort(np.asarray(counts, dtype=np.float64).reshape(-1))
    if len(x) == 0 or x.sum() <= 0:
        return float("nan")
    if np.any(x < 0):
        raise ValueError("gini: counts must be non-negative")
    i = np.arange(1, len(x) + 1)
    return float(np.sum((2 * i - len(x) - 1) * x) / (len(x) * x.sum()))


def top_k_share(counts, k: int) -> float:
    """Share of the total held by the ``k`` largest counts."""
    x = np.sort(np.asarray(counts, dtype=np.float64).reshape(-1))[::-1]
    return float(x[:k].sum() / x.sum()) if x.sum() > 0 else float("nan")


def speaker0_shares(segments: pd.DataFrame) -> pd.Series:
    """Speaker 0's share of talk seconds per segment (``BehaviourTables.segments``);
    segments without speech are left out."""
    total = segments["talk_0"] + segments["talk_1"]
    return (segments["talk_0"] / total.where(total > 0)).dropna()


def representation(utterances: pd.DataFrame, segments: pd.DataFrame) -> dict:
    """Representation in a dataset from its utterance and segment tables
    (``BehaviourTables.utterances`` and ``.segments``).

    Returns a JSON-safe dict: ``channels`` (number, Gini of segments per channel, top-1/5/10
    shares, the segment counts), ``topics`` (segment shares), ``talk_time`` (speaker 0's
    share of talk per segment: mean, s.d., share of segments where one speaker has over
    70 %), ``utterance_seconds`` (quantiles, share over the 20.48 s window) and
    ``truncation`` (utterances and frames cut by the 512-frame window, overall and per
    channel).
    """
    seg = segments
    per_channel = seg.groupby("channel_id").size().sort_values(ascending=False)
    per_topic = seg.groupby("topic").size().sort_values(ascending=False)
    share0 = speaker0_shares(seg)
    u = utterances[utterances["n_frames"] > 0]
    window_s = schema.WINDOW_FRAMES / schema.FPS
    seconds = utterances["seconds"].dropna()
    by_channel = u.groupby("channel_id")[["frames_cut", "n_frames"]].sum()
    return {
        "segments": int(len(seg)),
        "channels": {
            "n": int(len(per_channel)),
            "gini": gini(per_channel.to_numpy()),
            "top1_share": top_k_share(per_channel.to_numpy(), 1),
            "top5_share": top_k_share(per_channel.to_numpy(), 5),
            "top10_share": top_k_share(per_channel.to_numpy(), 10),
            "segments_per_channel": {str(k): int(v) for k, v in per_channel.items()},
        },
        "topics": {str(k): float(v / len(seg)) for k, v in per_topic.items()},
        "talk_time": {
            "speaker0_share_mean": float(share0.mean()) if len(share0) else float("nan"),
            "speaker0_share_sd": float(share0.std(ddof=0)) if len(share0) else float("nan"),
            "share_segments_one_speaker_over_70pct": float(((share0 > 0.7) | (share0 < 0.3)).mean()) if len(share0) else float("nan"),
        },
        "utterance_seconds": {
            **{f"q{int(q * 100)}": float(seconds.quantile(q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)},
            "share_over_window": float((seconds > window_s).mean()) if len(seconds) else float("nan"),
            "window_seconds": window_s,
        },
        "truncation": {
            "share_utterances_cut": float((u["frames_cut"] > 0).mean()) if len(u) else float("nan"),
            "share_frames_cut": float(u["frames_cut"].sum() / max(u["n_frames"].sum(), 1)),
            "share_frames_cut_in_cut_utterances": float(
                u.loc[u["frames_cut"] > 0, "frames_cut"].sum() / max(u.loc[u["frames_cut"] > 0, "n_frames"].sum(), 1)),
            "share_frames_cut_by_channel": {str(k): float(r.frames_cut / max(r.n_frames, 1)) for k, r in by_channel.iterrows()},
        },
    }


def _value_and_weight(table: pd.DataFrame, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-row value and weight of a measure, so that sum(w x) / sum(w) is its mean.

    Cue counts become events per minute weighted by minutes (so the mean is total events
    over total minutes); ``speech_rate`` is words per second weighted by seconds;
    ``frame_gaps_per_minute`` likewise; motion and quality measures are weighted by frames
    (a mean over frames). Rows without frames, or with NaN, get weight 0.
    """
    seconds = table["seconds"].to_numpy(dtype=np.float64)
    frames = table["n_frames"].to_numpy(dtype=np.float64) if "n_frames" in table else np.ones(len(table))
    has = frames > 0
    if measure.startswith("cue_"):
        x, w = table[measure].to_numpy(dtype=np.float64) / np.maximum(seconds / 60.0, 1e-9), seconds / 60.0
    elif measure == "speech_rate":
        x, w = table["words"].to_numpy(dtype=np.float64) / np.maximum(seconds, 1e-9), seconds
    elif measure == "frame_gaps_per_minute":
        x, w = table["frame_gaps"].to_numpy(dtype=np.float64) / np.maximum(seconds / 60.0, 1e-9), seconds / 60.0
    else:
        x, w = table[measure].to_numpy(dtype=np.float64), frames
    w = np.where(has & np.isfinite(x) & np.isfinite(w) & (seconds > 0), w, 0.0)
    return np.where(w > 0, x, 0.0), w


def _cluster_sums(table: pd.DataFrame, x: np.ndarray, w: np.ndarray, cluster: str) -> pd.DataFrame:
    """Per cluster (e.g. video): sum of w x and sum of w."""
    return pd.DataFrame({"c": table[cluster].to_numpy(), "s": w * x, "w": w}).groupby("c")[["s", "w"]].sum()


def _boot_ratio(s: np.ndarray, w: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of sum(s)/sum(w) resampling clusters with replacement."""
    idx = rng.integers(0, len(s), size=(n_boot, len(s)))
    return s[idx].sum(axis=1) / np.maximum(w[idx].sum(axis=1), 1e-300)


def resampling_unit(table: pd.DataFrame, group: str) -> str:
    """The cluster a bootstrap should resample when comparing groups of ``group``.

    Videos, when comparing channels (a channel's videos are its independent units).
    Otherwise channels, when the table knows them: a host speaks in every video of a
    channel, so the videos of one channel are not independent, and resampling videos would
    make a few hosts' personal style look like a property of a speaker role or a topic.
    Videos when the channel is unknown.
    """
    if group != "channel_id" and "channel_id" in table and (table["channel_id"] != behaviour.UNKNOWN).any() \
            and table["channel_id"].nunique() >= 2:
        return "channel_id"
    return "video_id"


def group_differences(table: pd.DataFrame, group: str, measures=BEHAVIOUR_MEASURES, *, cluster: str | None = None,
                      n_boot: int = 2000, level: float = 0.95, min_effect: float = 0.2, min_clusters: int = 5,
                      min_events: int = 30, seed: int = 0) -> pd.DataFrame:
    """Each group's mean of each measure against the rest, with cluster-bootstrap intervals.

    ``table`` is an utterance (or sentence) table of :func:`behaviour.measure_behaviour`;
    ``group`` one of its columns. For group g and a measure: ``mean_group`` and
    ``mean_rest`` (weighted means, see :func:`_value_and_weight`), ``rel_diff =
    mean_group / mean_rest - 1``, and a percentile interval ``ci_low, ci_high`` from
    ``n_boot`` replicates that resample the ``cluster``s of g and of the rest
    independently (default: :func:`resampling_unit`; the column used is in ``cluster``). The interval's level is ``1 - (1 - level) / n_groups`` (Bonferroni over
    the groups tested). ``excludes_zero``: the interval excludes 0; ``flagged``: it lies
    entirely beyond +-``min_effect``. Groups with fewer than ``min_clusters`` clusters are
    not tested (``tested`` False, NaN interval), nor are the rates of cues with fewer than
    ``min_events`` events in the whole table (too rare for a rate to mean much). Raises ValueError for a missing column.
    """
    if group not in table.columns:
        raise ValueError(f"group_differences: the table has no column {group!r}; columns: {list(table.columns)}")
    cluster = cluster or resampling_unit(table, group)
    source = {"speech_rate": "words", "frame_gaps_per_minute": "frame_gaps"}  # measures computed from a column
    for col in (cluster, "seconds", *(source.get(m, m) for m in measures)):
        if col not in table.columns:
            raise ValueError(f"group_differences: the table has no column {col!r}; columns: {list(table.columns)}")
    groups = table[group].astype(str).to_numpy()
    values = sorted(set(groups))
    clusters_of = table[cluster].groupby(groups).nunique()
    tested = [g for g in values if clusters_of.get(g, 0) >= min_clusters]
    alpha = (1 - level) / max(len(tested), 1)
    rng = np.random.default_rng(seed)
    records = []
    for measure in measures:
        x, w = _value_and_weight(table, measure)
        for g in values:
            in_g = groups == g
            sg = _cluster_sums(table[in_g], x[in_g], w[in_g], cluster)
            sr = _cluster_sums(table[~in_g], x[~in_g], w[~in_g], cluster)
            mean_g = sg["s"].sum() / sg["w"].sum() if sg["w"].sum() > 0 else np.nan
            mean_r = sr["s"].sum() / sr["w"].sum() if sr["w"].sum() > 0 else np.nan
            rel = mean_g / mean_r - 1 if mean_r and np.isfinite(mean_r) and mean_r != 0 else np.nan
            lo = hi = np.nan
            ok = g in tested and np.isfinite(rel) and len(sr) >= min_clusters
            if measure.startswith("cue_"):  # a rate from a handful of events is mostly noise
                ok = ok and table[measure].sum() >= min_events
            if ok:
                bg = _boot_ratio(sg["s"].to_numpy(), sg["w"].to_numpy(), n_boot, rng)
                br = _boot_ratio(sr["s"].to_numpy(), sr["w"].to_numpy(), n_boot, rng)
                lo, hi = np.quantile(bg / np.where(br != 0, br, np.nan) - 1, [alpha / 2, 1 - alpha / 2])
            records.append({
                "group_by": group, "group": g, "measure": measure, "n_rows": int(in_g.sum()),
                "cluster": cluster, "n_clusters": int(len(sg)),
                "mean_group": float(mean_g), "mean_rest": float(mean_r), "rel_diff": float(rel),
                "ci_low": float(lo), "ci_high": float(hi), "level": float(1 - alpha), "tested": bool(ok),
                "excludes_zero": bool(ok and (lo > 0 or hi < 0)),
                "flagged": bool(ok and (lo > min_effect or hi < -min_effect)),
            })  # fmt: skip
    return pd.DataFrame(records)


def speaker_spread(utterances: pd.DataFrame, measures=("speech_rate", "hand_speed", "expression_amplitude")) -> pd.DataFrame:
    """Per person (``speaker_key`` = video_id:speaker): minutes of speech and the weighted
    mean of each measure (how individual style varies; VENUS has no identities across
    videos, so one person in two videos counts twice)."""
    out = utterances.groupby("speaker_key")[["seconds"]].sum().rename(columns={"seconds": "minutes"}) / 60.0
    for m in measures:
        x, w = _value_and_weight(utterances, m)
        df = pd.DataFrame({"k": utterances["speaker_key"].to_numpy(), "s": w * x, "w": w}).groupby("k").sum()
        out[m] = df["s"] / df["w"].where(df["w"] > 0)
    return out.reset_index()


def audit(tables: behaviour.BehaviourTables, *, groups=GROUPS, n_boot: int = 2000, level: float = 0.95,
          min_effect: float = 0.2, seed: int = 0) -> dict:
    """The whole bias audit of a :class:`behaviour.BehaviourTables`, as a JSON-safe dict.

    Keys: ``representation`` (:func:`representation`), ``behaviour`` and ``quality``
    (records of :func:`group_differences` for every group column in ``groups`` that has
    more than one value, and behaviour by sentence ``sentiment``), ``flagged`` (the flagged
    records only), ``settings`` and ``not_in_venus`` (:data:`NOT_IN_VENUS`). Behaviour
    records carry ``confounded_by_quality``: the same group is flagged for extraction
    quality (e.g. jitter inflates every speed), so its behaviour difference may be an
    artefact of the estimator. Groupings can also confound each other: a topic that one
    channel dominates inherits that channel's differences (compare the group's make-up
    before reading a topic difference as a topic effect).
    """
    u = tables.utterances
    kw = dict(n_boot=n_boot, level=level, min_effect=min_effect, seed=seed)
    beh, qual, skipped_groups = [], [], []
    for g in groups:
        if g not in u or u[g].nunique() < 2:
            skipped_groups.append(g)
            continue
        beh.append(group_differences(u, g, BEHAVIOUR_MEASURES, **kw))
        qual.append(group_differences(u, g, QUALITY_MEASURES, **kw))
    s = tables.sentences
    if len(s) and "sentiment" in s and s["sentiment"].nunique() > 1:
        beh.append(group_differences(s.assign(n_frames=1), "sentiment",
                                     [f"cue_{c}" for c in cues.CUE_NAMES if c != "jaw_open"], **kw))  # fmt: skip
    beh_df = pd.concat(beh, ignore_index=True) if beh else pd.DataFrame()
    qual_df = pd.concat(qual, ignore_index=True) if qual else pd.DataFrame()
    if len(beh_df):  # a behaviour difference in a group the estimator tracked worse is suspect
        poor = set()
        if len(qual_df):
            bad = qual_df[qual_df["flagged"]]
            poor = set(zip(bad["group_by"], bad["group"]))
        beh_df["confounded_by_quality"] = [(a, b) in poor for a, b in zip(beh_df["group_by"], beh_df["group"])]
    flagged = pd.concat([d[d["flagged"]] for d in (beh_df, qual_df) if len(d)], ignore_index=True) if len(beh_df) or len(qual_df) else pd.DataFrame()
    return {
        "representation": representation(u, tables.segments),
        "behaviour": _records(beh_df),
        "quality": _records(qual_df),
        "flagged": _records(flagged),
        "groups_not_audited": skipped_groups,
        "settings": {"n_boot": n_boot, "level": level, "min_effect": min_effect, "seed": seed,
                     "cluster": "video_id for channels, channel_id otherwise (see resampling_unit)",
                     "min_clusters": 5, "adjustment": "Bonferroni over the groups of each grouping"},
        "not_in_venus": NOT_IN_VENUS,
    }


def _records(df: pd.DataFrame) -> list[dict]:
    """DataFrame rows as JSON-safe dicts (NaN becomes None)."""
    return [] if df is None or not len(df) else df.astype(object).where(df.notna(), None).to_dict("records")
