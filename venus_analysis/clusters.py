"""Data-driven clusters of face and body poses, as in the paper's analysis of VENUS.

The paper (Kim, Chung et al., ACL 2025, "Speaking Beyond Language") took 10 random frames
per video from about 1,000 videos, embedded the frames with t-SNE and grouped them with
DBSCAN. It found **7 face clusters** (expression + jaw) and **8 body clusters** (upper body
+ hands): neutral and positive faces dominate, relaxed lowered arms are the most common
body pose, and chin-on-hand and expressive hands are frequent. This module repeats that
analysis on any VENUS-format data (the synthetic VENUS or real rows), in bounded memory:

1. :func:`sample_frames` streams over the segments (``extraction.segment_rows`` and
   ``extraction.segment_utterances(row, full=True)``, smoothed as MARS does) and keeps at
   most ``per_video`` frames per video by *bottom-k reservoir sampling*: every frame gets a
   pseudo-random key, and each video keeps the frames with the ``per_video`` smallest keys
   seen so far. That is a uniform sample without replacement of the video's frames; only
   ``videos x per_video`` frames are ever held. The key of a frame depends only on the seed
   and on (video, segment, utterance, frame), so the sample is the same whatever order the
   rows come in (a shuffled stream gives the same frames). Frames with NaN or infinite values
   are counted (``FrameSample.n_nonfinite``) and skipped.
2. :func:`cluster_frames` takes the tokenizer features of one part (face: 53 = 50 FLAME
   expression coefficients + jaw; body: 117 = nine upper-body joints + both hands),
   standardises each column (z-score; a constant column becomes 0), reduces them with PCA
   to at most 30 dimensions, embeds them in 2-D with t-SNE (``init="pca"``, fixed
   ``random_state``; or UMAP if ``umap-learn`` is installed) and runs DBSCAN on the 2-D
   embedding. Clusters are numbered by size (0 = largest); -1 is noise.
3. :attr:`ClusterResult.describe` gives per-cluster means of measures a person can read
   (from :mod:`motion_features`): for the body, hand-to-chin distance, the higher wrist's
   height, the distance between the wrists, finger curl, and the share of frames with a
   hand at the face or raised (the thresholds of ``cues.CueThresholds``); for the face, jaw
   opening, the projections on the synthetic smile / frown / surprise directions and the
   size of the expression vector. That is what lets you *name* a cluster ("hands in the
   lap", "chin on hand", ...). The representative of a cluster is its medoid-like member:
   the frame nearest the cluster mean in the standardised feature space.
   :func:`embedding_figure` and :func:`representatives_figure` show them.

The eps rule (``eps=None``)
    DBSCAN needs a radius ``eps``. With ``min_samples = k`` (default
    :func:`default_min_samples`: 1 % of the frames, at least 5 and at most 50), each
    point's distance to its k-th nearest neighbour in the 2-D embedding is computed and
    ``eps = EPS_FACTOR x median`` of those distances (``EPS_FACTOR = 3``). Inside a t-SNE
    cluster the points are spread about evenly, so the median k-distance measures the
    typical spacing inside clusters; three times that closes the small gaps within a
    cluster while the empty margins t-SNE puts between well-separated groups stay open.
    The textbook alternative, the knee of the sorted k-distance curve
    (:func:`k_distance_knee`), falls inside the clusters' own spread on t-SNE embeddings:
    on a mixture of 4 well-separated groups (400 points) it gave 6 clusters and 7 % noise,
    where 2-4 x the median gave exactly 4 and no noise. Pass ``eps`` yourself to override; the
    number of clusters is sensitive to it, so look at :func:`embedding_figure` before
    trusting a count.

Faces and identity. A person's resting face differs from everyone else's, so on the
synthetic VENUS the face clusters of the raw features are people (each cluster holds the
frames of one or two speakers), not expressions. ``cluster_frames(...,
relative_to="speaker")`` subtracts each speaker's median sampled frame first
(:func:`relative_features`); on the synthetic data the faces then form one continuous
cloud (its smiles and frowns vary smoothly, with no separate groups). Whether the paper
centred per person is not stated; the default (no centring) follows its description.

Caveats. t-SNE distances between clusters mean little, and cluster counts depend on the
perplexity, the eps rule, and the sample, so the paper's 7 and 8 are one outcome of one
setting, not a property of the data; compare counts across seeds. On the synthetic data
the clusters follow the poses the generator plants (hands in the lap, hand to chin,
raised hands, beats; smiles, frowns, speech), so the method can be checked against a
known truth. The smile/frown directions are the synthetic generator's convention; FLAME's
coefficients have no official names, so on real data those two columns are exploratory.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import extraction, schema
from . import motion_features as mf

PARTS = ("face", "body")
METHODS = ("tsne", "umap")
MIN_FRAMES = 10  # fewer frames than this cannot be embedded sensibly
MAX_PCA_DIMS = 30
EPS_FACTOR = 3.0  # eps = EPS_FACTOR x median k-distance (see the module docstring)
NOISE_COLOR = "#b0b0b0"

_FACE_FULL = schema.FACE_LAYOUT.length  # 156
_BODY_FULL = schema.BODY_DIM  # 179


# ---------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------
@dataclass
class FrameSample:
    """Frames sampled from a dataset, one row per frame, and how they were sampled.

    Per frame (``n`` rows, all numpy):

    - ``face`` (n, 53) and ``body`` (n, 117): the tokenizer features (float32);
    - ``face_full`` (n, 156): every face float in the 156 FLAME layout (a legacy 153-float
      row is widened with a zero head rotation; ``has_head_rotation`` is then False);
    - ``body_full`` (n, 179): every SMPL-X float;
    - ``head_rotation`` (n, 3): the face's head rotation (zeros where absent);
    - ``video_id`` (object), ``segment_id``, ``utterance_id``, ``speaker`` (-1 unknown,
      -1 segment id when the row has none), ``frame`` (frame index at 25 fps).

    Rows are sorted by video id, segment, utterance and frame. ``n_frames_seen`` counts the
    finite frames the sample was drawn from, ``n_nonfinite`` the frames skipped for NaN or
    infinite values, ``n_segments`` the segments read.
    """

    face: np.ndarray
    body: np.ndarray
    face_full: np.ndarray
    body_full: np.ndarray
    head_rotation: np.ndarray
    has_head_rotation: np.ndarray
    video_id: np.ndarray
    segment_id: np.ndarray
    utterance_id: np.ndarray
    speaker: np.ndarray
    frame: np.ndarray
    per_video: int
    seed: int
    n_segments: int = 0
    n_frames_seen: int = 0
    n_nonfinite: int = 0

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def n_videos(self) -> int:
        """Number of distinct videos in the sample."""
        return len(set(self.video_id.tolist()))

    def features(self, part: str) -> np.ndarray:
        """The tokenizer features of ``part``: (n, 53) for "face", (n, 117) for "body"."""
        _check_part(part)
        return self.face if part == "face" else self.body

    def meta(self) -> pd.DataFrame:
        """One row per frame: video_id, segment_id, utterance_id, speaker, frame."""
        return pd.DataFrame({
            "video_id": self.video_id, "segment_id": self.segment_id, "utterance_id": self.utterance_id,
            "speaker": self.speaker, "frame": self.frame,
        })  # fmt: skip

    def frames_per_video(self) -> pd.Series:
        """Number of sampled frames of each video."""
        return pd.Series(self.video_id).value_counts().sort_index()


# Per-frame arrays of a FrameSample, in the order they are gathered.
_FIELDS = ("face", "body", "face_full", "body_full", "head_rotation", "has_head_rotation",
           "segment_id", "utterance_id", "speaker", "frame")  # fmt: skip


def _check_part(part) -> None:
    if part not in PARTS:
        raise ValueError(f"part must be 'face' (expression + jaw, 53 columns) or 'body' (upper body + hands, "
                         f"117 columns); got {part!r}")  # fmt: skip


def _check_data(data) -> None:
    """A DatasetDict is refused with the names of its splits; other forms go to extraction."""
    import datasets

    if isinstance(data, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        raise ValueError(
            f"sample_frames takes one split, not a DatasetDict: pass e.g. data[{next(iter(data), 'train')!r}] "
            f"(splits: {list(data)})"
        )


def _frame_keys(seed: int, video, segment, utterance: int, n: int) -> np.ndarray:
    """Pseudo-random keys in [0, 1) for the ``n`` frames of one utterance.

    They depend only on the seed and the utterance's identity, not on the data order.
    """
    ident = zlib.crc32(f"{video}\x1f{segment}\x1f{utterance}".encode())
    return np.random.default_rng([int(seed), ident]).random(n)


def _widen_face(face_full: np.ndarray) -> tuple[np.ndarray, bool]:
    """A face block in the 156 layout, and whether it carries a head rotation."""
    if face_full.shape[1] == _FACE_FULL:
        return face_full, True
    legacy = schema.FACE_LAYOUT_LEGACY
    out = np.zeros((len(face_full), _FACE_FULL), dtype=face_full.dtype)
    out[:, schema.FACE_LAYOUT.expression] = face_full[:, legacy.expression]
    out[:, schema.FACE_LAYOUT.jaw] = face_full[:, legacy.jaw]
    out[:, schema.FACE_LAYOUT.shape] = face_full[:, legacy.shape]
    return out, False


class _Reservoir:
    """The frames with the ``k`` smallest keys seen so far of one video."""

    def __init__(self, k: int):
        self.k = k
        self.keys = np.empty(0)
        self.arrays: dict[str, np.ndarray] | None = None

    @property
    def threshold(self) -> float:
        """Keys at or above this cannot enter (inf while the reservoir is not full)."""
        return float(self.keys.max()) if len(self.keys) >= self.k else math.inf

    def offer(self, keys: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        """Merge candidate frames (already below the threshold) and keep the ``k`` smallest keys."""
        if len(keys) > self.k:  # only the k smallest candidates can matter
            best = np.argpartition(keys, self.k - 1)[: self.k]
            keys, arrays = keys[best], {name: a[best] for name, a in arrays.items()}
        if self.arrays is None:
            all_keys, merged = keys, arrays
        else:
            all_keys = np.concatenate([self.keys, keys])
            merged = {name: np.concatenate([self.arrays[name], a]) for name, a in arrays.items()}
        keep = np.argsort(all_keys, kind="stable")[: self.k]
        self.keys = all_keys[keep]
        self.arrays = {name: a[keep] for name, a in merged.items()}


def sample_frames(data, *, per_video: int = 10, seed: int = 0, progress: bool = False) -> FrameSample:
    """Up to ``per_video`` random frames of every video of ``data``, in bounded memory.

    ``data`` is one split (``datasets.Dataset`` or ``IterableDataset``, e.g. streamed from
    the Hub), a ``pyarrow.Table`` or an iterable of rows, as :func:`extraction.segment_rows`
    accepts; a ``DatasetDict`` raises ``ValueError`` naming its splits. Rows are read one at
    a time with ``segment_utterances(row, full=True)`` (smoothed); frames of all segments of
    a video compete for its ``per_video`` places (bottom-k reservoir sampling, see the module
    docstring), so memory is bounded by ``videos x per_video`` frames. The sample is the
    same for the same seed, whatever the row order. Frames with NaN or infinite values are
    skipped and counted in ``n_nonfinite``. Rows without a ``video_id`` are grouped by
    segment id. ``progress`` shows a tqdm bar over segments.

    Raises ``ValueError`` when ``per_video < 1`` or when no finite frame was found.
    """
    from tqdm.auto import tqdm

    if int(per_video) < 1:
        raise ValueError(f"per_video must be at least 1; got {per_video}")
    per_video = int(per_video)
    _check_data(data)
    reservoirs: dict[str, _Reservoir] = {}
    n_segments = n_seen = n_bad = 0
    rows, total = extraction.segment_rows(data)
    for row in tqdm(rows, total=total, unit="segment", desc="sampling frames", disable=not progress):
        segment = extraction.segment_utterances(row, full=True)
        n_segments += 1
        video = segment.video_id if segment.video_id is not None else f"<segment {segment.segment_id}>"
        video = str(video)
        seg_id = -1 if segment.segment_id is None else int(segment.segment_id)
        res = reservoirs.setdefault(video, _Reservoir(per_video))
        for utt in segment.utterances:
            n = len(utt.frames)
            if n == 0:
                continue
            keys = _frame_keys(seed, video, seg_id, utt.utterance_id, n)
            face_full, has_head = _widen_face(utt.face_full)
            head = utt.head_rotation if utt.head_rotation is not None else np.zeros((n, 3), np.float32)
            finite = (np.isfinite(face_full).all(axis=1) & np.isfinite(utt.body_full).all(axis=1)
                      & np.isfinite(head).all(axis=1))  # fmt: skip
            n_bad += int(n - finite.sum())
            n_seen += int(finite.sum())
            take = np.flatnonzero(finite & (keys < res.threshold))
            if len(take) == 0:
                continue
            res.offer(keys[take], {
                "face": utt.face[take], "body": utt.body[take], "face_full": face_full[take],
                "body_full": utt.body_full[take], "head_rotation": head[take],
                "has_head_rotation": np.full(len(take), has_head),
                "segment_id": np.full(len(take), seg_id, np.int64),
                "utterance_id": np.full(len(take), utt.utterance_id, np.int64),
                "speaker": np.full(len(take), -1 if utt.speaker is None else utt.speaker, np.int64),
                "frame": np.asarray(utt.frames)[take].astype(np.int64),
            })  # fmt: skip
    kept = {v: r for v, r in sorted(reservoirs.items()) if r.arrays is not None}
    if not kept:
        raise ValueError(
            f"no frames to sample: read {n_segments} segments, {n_bad} frames with NaN/inf; expected a split "
            "(or rows) of VENUS segments whose utterances have face and body frames"
        )
    arrays = {name: np.concatenate([r.arrays[name] for r in kept.values()]) for name in _FIELDS}
    video_ids = np.array([v for v, r in kept.items() for _ in range(len(r.keys))], dtype=object)
    block = np.repeat(np.arange(len(kept)), [len(r.keys) for r in kept.values()])  # videos, sorted by id
    order = np.lexsort((arrays["frame"], arrays["utterance_id"], arrays["segment_id"], block))
    arrays = {name: a[order] for name, a in arrays.items()}
    return FrameSample(
        face=arrays["face"].astype(np.float32, copy=False), body=arrays["body"].astype(np.float32, copy=False),
        face_full=arrays["face_full"].astype(np.float32, copy=False),
        body_full=arrays["body_full"].astype(np.float32, copy=False),
        head_rotation=arrays["head_rotation"].astype(np.float32, copy=False),
        has_head_rotation=arrays["has_head_rotation"].astype(bool), video_id=video_ids[order],
        segment_id=arrays["segment_id"], utterance_id=arrays["utterance_id"], speaker=arrays["speaker"],
        frame=arrays["frame"], per_video=per_video, seed=int(seed), n_segments=n_segments,
        n_frames_seen=n_seen, n_nonfinite=n_bad,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# Embedding and clustering
# ---------------------------------------------------------------------------------------
RELATIVE_TO = ("speaker", "video")


def relative_features(sample: FrameSample, part: str, relative_to: str = "speaker") -> np.ndarray:
    """The tokenizer features of ``part`` minus the median of their person's sampled frames.

    ``relative_to="speaker"`` groups frames by (video, speaker), ``"video"`` by video. A
    person's resting face (and, less so, posture) differs from everyone else's; without
    this, t-SNE groups the frames of each person together and the clusters are identities
    rather than expressions. The medians come from the sample itself, so they are rough
    with few frames per person (5 per speaker at the paper's 10 per video).
    """
    _check_part(part)
    if relative_to not in RELATIVE_TO:
        raise ValueError(f"relative_to must be one of {RELATIVE_TO} or None; got {relative_to!r}")
    x = sample.features(part).astype(np.float64)
    keys = sample.video_id.astype(str)
    if relative_to == "speaker":
        keys = np.char.add(np.char.add(keys, "\x1f"), sample.speaker.astype(str))
    _, group = np.unique(keys, return_inverse=True)
    out = np.empty_like(x)
    for g in range(group.max() + 1):
        rows = group == g
        out[rows] = x[rows] - np.median(x[rows], axis=0)
    return out


def standardize(x) -> np.ndarray:
    """Columns of ``x`` as z-scores (float64); a constant column (std < 1e-8) becomes 0."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std < 1e-8, 1.0, std)


def reduce_pca(z: np.ndarray, max_dims: int = MAX_PCA_DIMS, seed: int = 0) -> np.ndarray:
    """Project standardised features on their first principal components (at most ``max_dims``)."""
    from sklearn.decomposition import PCA

    dims = max(1, min(max_dims, z.shape[1], z.shape[0] - 1))
    return PCA(n_components=dims, random_state=seed).fit_transform(z)


def embed_2d(x: np.ndarray, *, method: str = "tsne", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """A 2-D embedding of the rows of ``x`` with t-SNE (``init="pca"``) or UMAP.

    The perplexity is capped at ``(n - 1) / 3`` so that small samples still work. UMAP needs
    the optional ``umap-learn`` package (not a dependency of venus-mars).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    n = len(x)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ImportError(
                "method='umap' needs the optional package umap-learn (pip install umap-learn); "
                "it is not a dependency of venus-mars. Use method='tsne' (the paper's choice) otherwise."
            ) from None
        reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, n - 1)), random_state=seed)
        return np.asarray(reducer.fit_transform(x), dtype=np.float64)
    from sklearn.manifold import TSNE

    perp = float(min(perplexity, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto", random_state=seed)
    return np.asarray(tsne.fit_transform(x), dtype=np.float64)


def default_min_samples(n: int) -> int:
    """DBSCAN's ``min_samples`` for ``n`` points: 1 % of them, at least 5, at most 50."""
    return int(min(50, max(5, round(0.01 * n))))


def k_distances(embedding: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest neighbour (the point itself counting as the first).

    That is the neighbourhood DBSCAN's ``min_samples = k`` looks at; sorted, it is the
    k-distance curve.
    """
    from sklearn.neighbors import NearestNeighbors

    k = int(min(k, len(embedding)))
    dist, _ = NearestNeighbors(n_neighbors=k).fit(embedding).kneighbors(embedding)
    return dist[:, -1]


def eps_rule(embedding: np.ndarray, min_samples: int, factor: float = EPS_FACTOR) -> float:
    """The default DBSCAN radius: ``factor`` x the median k-distance (k = ``min_samples``).

    See the module docstring for why the median and not the knee of the curve.
    """
    d = k_distances(embedding, min_samples)
    eps = float(factor * np.median(d))
    return eps if eps > 0 else float(np.max(d)) or 1e-9  # many identical points: any positive radius


def k_distance_knee(embedding: np.ndarray, min_samples: int) -> float:
    """The knee of the sorted k-distance curve (the point farthest from the chord), for comparison.

    The textbook way to pick DBSCAN's eps; on t-SNE embeddings it is usually too large (see
    the module docstring). Not used by default.
    """
    d = np.sort(k_distances(embedding, min_samples))
    if len(d) < 3 or d[-1] == d[0]:
        return float(d[-1])
    x = np.linspace(0, 1, len(d))
    y = (d - d[0]) / (d[-1] - d[0])
    return float(d[np.argmax(x - y)])  # the chord is y = x; the curve is convex, below it


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster ids renumbered 0, 1, ... by decreasing size (ties by old id); noise stays -1."""
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    mapping = {int(old): new for new, old in enumerate(order)}
    return np.array([mapping.get(int(v), -1) for v in labels], dtype=np.int64)


def _representatives(z: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """{cluster: index of the member nearest the cluster mean in ``z``}."""
    out = {}
    for c in np.unique(labels[labels >= 0]).tolist():
        members = np.flatnonzero(labels == c)
        centre = z[members].mean(axis=0)
        out[int(c)] = int(members[np.argmin(((z[members] - centre) ** 2).sum(axis=1))])
    return out


# ---------------------------------------------------------------------------------------
# Measures that name a cluster
# ---------------------------------------------------------------------------------------
def frame_measures(sample: FrameSample, part: str) -> pd.DataFrame:
    """Readable per-frame measures of ``part`` (one row per sampled frame).

    Body (from ``body_full`` and the face's jaw, as ``cues.cue_measures`` does):
    ``hand_to_face_m`` (nearer hand's knuckles to the chin), ``wrist_height_m`` (the higher
    wrist above its shoulder; about -0.4 at rest), ``wrist_spread_m`` (distance between the
    wrists), ``finger_curl_rad`` (mean over both hands), ``hand_at_face`` and
    ``hand_raised`` (0/1, by the default ``cues.CueThresholds``). Face: ``jaw_open_rad``,
    ``smile``, ``frown``, ``surprise`` (projections on the synthetic directions),
    ``expression_norm`` (length of the 50 coefficients).
    """
    _check_part(part)
    from .cues import CueThresholds

    th = CueThresholds()
    if part == "face":
        face = sample.face
        return pd.DataFrame({
            "jaw_open_rad": mf.jaw_opening(face),
            "smile": mf.expression_projection(face, "smile"),
            "frown": mf.expression_projection(face, "frown"),
            "surprise": mf.expression_projection(face, "surprise"),
            "expression_norm": np.linalg.norm(face[:, schema.FACE_TOKEN_EXPRESSION].astype(np.float64), axis=1),
        })  # fmt: skip
    rot = mf.local_rotations(sample.body_full, sample.face_full)
    joints = mf.joints_from_body(sample.body_full, sample.face_full)
    h2f = mf.hand_to_face_distance(joints, rot).min(axis=1)
    height = mf.wrist_height(joints).max(axis=1)
    J = schema.JOINT_INDEX
    spread = np.linalg.norm(joints[:, J["left_wrist"]] - joints[:, J["right_wrist"]], axis=1)
    return pd.DataFrame({
        "hand_to_face_m": h2f, "wrist_height_m": height, "wrist_spread_m": spread,
        "finger_curl_rad": mf.finger_curl(sample.body_full).mean(axis=1),
        "hand_at_face": (h2f < th.hand_to_face).astype(float), "hand_raised": (height > th.hand_raised).astype(float),
    })  # fmt: skip


def _describe(measures: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Per-cluster counts, shares and mean measures; clusters by id (= by size), noise last."""
    df = measures.copy()
    df.insert(0, "cluster", labels)
    table = df.groupby("cluster").mean()
    counts = df.groupby("cluster").size()
    table.insert(0, "n", counts)
    table.insert(1, "share", counts / len(df))
    order = [c for c in table.index if c >= 0] + [c for c in table.index if c < 0]
    return table.loc[order].reset_index()


# ---------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------
@dataclass
class ClusterResult:
    """What :func:`cluster_frames` found for one part.

    ``embedding`` (n, 2) and ``labels`` (n,) follow the sample's rows; clusters are numbered
    by size (0 = largest), -1 is noise. ``sizes`` has one row per cluster (cluster, n,
    share of all frames), by size, noise last; ``representatives`` maps a cluster to the
    sample index of its representative frame; ``describe`` holds per-cluster means of
    :func:`frame_measures` (noise last). ``meta`` is the sample's per-frame metadata (for
    hover text).
    """

    part: str
    method: str
    embedding: np.ndarray
    labels: np.ndarray
    eps: float
    min_samples: int
    seed: int
    perplexity: float
    pca_dims: int
    sizes: pd.DataFrame
    representatives: dict[int, int]
    describe: pd.DataFrame
    meta: pd.DataFrame = field(repr=False)

    @property
    def n_clusters(self) -> int:
        """Number of clusters (noise not counted)."""
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    @property
    def noise_share(self) -> float:
        """Share of frames DBSCAN left as noise."""
        return float(np.mean(self.labels < 0)) if len(self.labels) else 0.0

    def to_dict(self) -> dict:
        """A JSON-safe summary: part, method, n, eps, min_samples, clusters, sizes, describe."""

        def records(df):
            return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in df.to_dict("records")]

        return {
            "part": self.part, "method": self.method, "n": int(len(self.labels)), "eps": float(self.eps),
            "min_samples": int(self.min_samples), "seed": int(self.seed), "perplexity": float(self.perplexity),
            "pca_dims": int(self.pca_dims), "n_clusters": self.n_clusters, "noise_share": self.noise_share,
            "representatives": {str(c): int(i) for c, i in self.representatives.items()},
            "sizes": records(self.sizes), "describe": records(self.describe),
        }  # fmt: skip


def cluster_frames(
    sample: FrameSample,
    part: str,
    *,
    method: str = "tsne",
    eps: float | None = None,
    min_samples: int | None = None,
    seed: int = 0,
    perplexity: float = 30.0,
    pca_dims: int = MAX_PCA_DIMS,
    relative_to: str | None = None,
) -> ClusterResult:
    """Cluster the sampled frames of one part: z-score, PCA, 2-D t-SNE (or UMAP), DBSCAN.

    ``part`` is "face" (53 columns: expression + jaw) or "body" (117: upper body + hands).
    Columns are standardised (a constant column becomes 0), reduced by PCA to at most
    ``pca_dims`` dimensions and embedded in 2-D by :func:`embed_2d` (``method`` "tsne", the
    paper's choice, or "umap" when umap-learn is installed; ``seed`` fixes it). DBSCAN then
    runs on the 2-D embedding with ``min_samples`` (default :func:`default_min_samples`) and
    ``eps`` (default :func:`eps_rule`: 3 x the median distance to the ``min_samples``-th
    neighbour). ``relative_to`` ("speaker" or "video") first subtracts each person's median
    frame (:func:`relative_features`; needs a FrameSample). Representatives are the members
    nearest their cluster's mean in the standardised feature space.

    ``sample`` is a :class:`FrameSample`, or any (n, 53) / (n, 117) array (then ``describe``
    has only counts and shares, and there is no metadata). Raises ``ValueError`` for an
    unknown part or method, fewer than ``MIN_FRAMES`` (10) frames, or features of the wrong
    width or with NaN.
    """
    from sklearn.cluster import DBSCAN

    _check_part(part)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    width = schema.FACE_TOKEN_DIM if part == "face" else schema.BODY_TOKEN_DIM
    if isinstance(sample, FrameSample):
        x, meta = sample.features(part), sample.meta()
    else:
        x = np.asarray(sample, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"{part} features must be a FrameSample or an (n, {width}) array; got shape {x.shape}")
        meta = pd.DataFrame({"frame": np.arange(len(x))})
    n = len(x)
    if n < MIN_FRAMES:
        raise ValueError(f"cluster_frames needs at least {MIN_FRAMES} frames for a 2-D embedding; got {n} "
                         "(sample more videos or a larger per_video)")  # fmt: skip
    if not np.isfinite(x).all():
        raise ValueError(f"the {part} features have NaN or infinite values (sample_frames skips such frames)")
    if relative_to is not None:
        if not isinstance(sample, FrameSample):
            raise ValueError("relative_to needs a FrameSample (it groups frames by video and speaker)")
        x = relative_features(sample, part, relative_to)
    z = standardize(x)
    reduced = reduce_pca(z, pca_dims, seed)
    embedding = embed_2d(reduced, method=method, seed=seed, perplexity=perplexity)
    k = default_min_samples(n) if min_samples is None else int(min_samples)
    if k < 1:
        raise ValueError(f"min_samples must be at least 1; got {min_samples}")
    radius = eps_rule(embedding, k) if eps is None else float(eps)
    if not radius > 0:
        raise ValueError(f"eps must be positive; got {eps}")
    labels = _relabel_by_size(DBSCAN(eps=radius, min_samples=k).fit_predict(embedding))
    if isinstance(sample, FrameSample):
        describe = _describe(frame_measures(sample, part), labels)
    else:
        describe = _describe(pd.DataFrame(index=range(n)), labels)
    sizes = describe[["cluster", "n", "share"]].copy()
    return ClusterResult(
        part=part, method=method, embedding=embedding, labels=labels, eps=radius, min_samples=k, seed=int(seed),
        perplexity=float(perplexity), pca_dims=reduced.shape[1], sizes=sizes,
        representatives=_representatives(z, labels), describe=describe, meta=meta,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------
def _cluster_colors(k: int) -> list[str]:
    import plotly.express as px

    palette = px.colors.qualitative.Plotly + px.colors.qualitative.D3 + px.colors.qualitative.Set3
    return [palette[i % len(palette)] for i in range(k)]


def embedding_figure(result: ClusterResult, *, title: str | None = None, height: int = 550):
    """The 2-D embedding as a scatter plot, one trace per cluster (noise grey, drawn first).

    Hovering a point shows its cluster, video, segment, utterance and frame.
    """
    import plotly.graph_objects as go

    meta = result.meta
    cols = [c for c in ("video_id", "segment_id", "utterance_id", "frame") if c in meta]
    custom = meta[cols].astype(str).to_numpy()
    hover = "<br>".join(f"{c}: %{{customdata[{i}]}}" for i, c in enumerate(cols))
    fig = go.Figure()
    colors = _cluster_colors(result.n_clusters)
    for c in [-1] + list(range(result.n_clusters)):
        members = np.flatnonzero(result.labels == c)
        if len(members) == 0:
            continue
        name = f"noise ({len(members)})" if c < 0 else f"cluster {c} ({len(members)})"
        fig.add_trace(go.Scattergl(
            x=np.round(result.embedding[members, 0], 3), y=np.round(result.embedding[members, 1], 3),
            mode="markers", name=name, customdata=custom[members],
            marker=dict(size=5 if c >= 0 else 4, color=NOISE_COLOR if c < 0 else colors[c],
                        opacity=0.5 if c < 0 else 0.8),
            hovertemplate=f"<b>{name}</b><br>{hover}<extra></extra>",
        ))  # fmt: skip
    fig.update_layout(
        title=title or f"{result.part} frames: {result.method} + DBSCAN, {result.n_clusters} clusters "
                       f"(eps {result.eps:.2f}, min_samples {result.min_samples}, n {len(result.labels)})",
        xaxis_title=f"{result.method} 1", yaxis_title=f"{result.method} 2", template="plotly_white",
        height=height, legend=dict(itemsizing="constant"),
    )  # fmt: skip
    return fig


def representatives_figure(sample: FrameSample, result: ClusterResult, *, max_clusters: int = 12,
                           cols: int = 4, height: int | None = None):
    """One static pose per cluster: its representative frame, drawn by ``animation``'s helpers.

    Body: the 3-D skeleton (``animation``'s bone and head traces, same axis ranges and
    camera in every panel). Face: the schematic face (mouth from the jaw, turned by the head
    rotation), and below the panels one expression strip whose column ``c`` holds the 50
    coefficients of cluster ``c``'s representative. Panels are titled with the cluster id
    and size; at most ``max_clusters`` (the largest) are shown, ``cols`` per row.
    """
    from plotly.subplots import make_subplots

    from . import animation as an
    from .figures import expression_heatmap

    if result.n_clusters == 0:
        raise ValueError("the result has no clusters to show (every frame is noise); try a larger eps")
    if len(sample) != len(result.labels):
        raise ValueError(f"the sample has {len(sample)} frames but the result {len(result.labels)}: "
                         "pass the sample the result was computed from")  # fmt: skip
    shown = list(range(min(result.n_clusters, max_clusters)))
    idx = [result.representatives[c] for c in shown]
    n_sizes = dict(zip(result.sizes["cluster"], result.sizes["n"]))
    titles = [f"cluster {c} (n={n_sizes[c]}, {n_sizes[c] / len(result.labels):.0%})" for c in shown]
    ncols = max(1, min(cols, len(shown)))
    nrows = math.ceil(len(shown) / ncols)
    if result.part == "body":
        specs = [[{"type": "scene"}] * ncols for _ in range(nrows)]
        fig = make_subplots(rows=nrows, cols=ncols, specs=specs, subplot_titles=titles,
                            horizontal_spacing=0.01, vertical_spacing=0.06)  # fmt: skip
        joints = an.joints_of_body(sample.body_full[idx], sample.face_full[idx], "representative frames")
        box = an._scene_layout(an._scene_box([joints]))
        for k in range(len(shown)):
            r, c = k // ncols + 1, k % ncols + 1
            an._add_skeleton(fig, joints[k : k + 1], row=r, col=c)
            fig.update_scenes(box, row=r, col=c)
        fig.update_layout(height=height or 330 * nrows)
    else:
        specs = [[{"type": "xy"}] * ncols for _ in range(nrows)]
        specs.append([{"type": "xy", "colspan": ncols}] + [None] * (ncols - 1))
        fig = make_subplots(rows=nrows + 1, cols=ncols, specs=specs, subplot_titles=titles + [""],
                            row_heights=[1.0] * nrows + [0.8], vertical_spacing=0.08)  # fmt: skip
        head = np.where(sample.has_head_rotation[idx, None], sample.head_rotation[idx], 0.0)
        expression, jaw, head = an.face_parts(sample.face_full[idx], head)
        for k in range(len(shown)):
            an._add_face(fig, jaw[k : k + 1], head[k : k + 1], row=k // ncols + 1, col=k % ncols + 1)
        strip = expression_heatmap(np.array(shown, dtype=float), expression)
        strip.hovertemplate = "cluster %{x}<br>coefficient %{y}<br>%{z:.3f}<extra></extra>"
        strip.colorbar = dict(thickness=10, title="coef", len=0.8 / (nrows + 0.8), y=0, yanchor="bottom")
        fig.add_trace(strip, row=nrows + 1, col=1)
        fig.update_xaxes(title="cluster (representative frame)", tickvals=shown, row=nrows + 1, col=1)
        fig.update_yaxes(title="expression", row=nrows + 1, col=1)
        fig.update_layout(height=height or 260 * nrows + 260)
    fig.update_layout(
        title=f"Representative {result.part} pose of each cluster ({result.method} + DBSCAN)",
        template="plotly_white", margin=dict(l=10, r=10, t=60, b=30), showlegend=False,
    )  # fmt: skip
    return fig
