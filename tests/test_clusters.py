"""Data-driven cue clusters (t-SNE + DBSCAN of sampled frames), as in the paper's analysis.

Checked on a constructed mixture whose groups are known, and on the small synthetic VENUS,
whose generator plants hand-to-chin poses among mostly resting hands. Every t-SNE run is
on a few hundred points and is shared through module fixtures, so the file stays fast.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.factories import make_row
from venus_analysis import clusters as cl
from venus_analysis import schema


@pytest.fixture(scope="module")
def sample(synth):
    """50 frames of each of the 9 train videos (450 frames)."""
    return cl.sample_frames(synth["train"], per_video=50, seed=0)


@pytest.fixture(scope="module")
def body(sample):
    return cl.cluster_frames(sample, "body", seed=0)


@pytest.fixture(scope="module")
def face(sample):
    return cl.cluster_frames(sample, "face", seed=0)


# ---------------------------------------------------------------------------------------
# A constructed mixture: the pipeline must find its groups
# ---------------------------------------------------------------------------------------
def _mixture(groups=4, per_group=100, width=schema.BODY_TOKEN_DIM, seed=0):
    """``groups`` poses (random joint angles within +-0.6 rad) with small jitter around each."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.6, 0.6, (groups, width))
    x = np.concatenate([c + rng.normal(0, 0.05, (per_group, width)) for c in centres])
    truth = np.repeat(np.arange(groups), per_group)
    order = rng.permutation(len(x))  # interleave the groups
    return x[order], truth[order]


def test_mixture_of_four_poses_gives_four_pure_clusters():
    x, truth = _mixture()
    res = cl.cluster_frames(x, "body", seed=0)
    assert res.n_clusters == 4
    assert res.noise_share < 0.02
    # Purity: each cluster is (almost) one group, and each group maps to a different cluster.
    majority = []
    for c in range(4):
        members = truth[res.labels == c]
        counts = np.bincount(members, minlength=4)
        assert counts.max() / len(members) > 0.98
        majority.append(int(counts.argmax()))
    assert sorted(majority) == [0, 1, 2, 3]
    # Sizes sorted by size, shares sum to one with noise; representatives are members.
    assert list(res.sizes["n"])[: res.n_clusters] == sorted(res.sizes["n"][: res.n_clusters], reverse=True)
    assert res.sizes["share"].sum() == pytest.approx(1.0)
    assert all(res.labels[i] == c for c, i in res.representatives.items())
    assert res.embedding.shape == (len(x), 2)


def test_face_width_mixture_and_fixed_eps():
    x, truth = _mixture(groups=3, per_group=80, width=schema.FACE_TOKEN_DIM, seed=1)
    res = cl.cluster_frames(x, "face", seed=1)
    assert res.n_clusters == 3
    # An eps far below the point spacing leaves every frame as noise: the radius is honoured.
    tiny = cl.cluster_frames(x, "face", seed=1, eps=1e-6)
    assert tiny.n_clusters == 0 and tiny.noise_share == 1.0


def test_eps_rule_is_a_multiple_of_the_median_k_distance():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 2))
    d = cl.k_distances(emb, 5)
    assert cl.eps_rule(emb, 5) == pytest.approx(cl.EPS_FACTOR * np.median(d))
    assert 0 < cl.k_distance_knee(emb, 5) <= d.max()
    assert cl.default_min_samples(100) == 5 and cl.default_min_samples(2000) == 20
    assert cl.default_min_samples(10**6) == 50


def test_standardize_guards_constant_columns():
    x = np.column_stack([np.arange(10.0), np.full(10, 3.0)])
    z = cl.standardize(x)
    assert np.isfinite(z).all()
    assert np.allclose(z[:, 1], 0) and z[:, 0].std() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------
# Sampling on the synthetic VENUS
# ---------------------------------------------------------------------------------------
def test_sampling_is_bounded_per_video(synth, sample):
    n_videos = len(set(synth["train"]["video_id"]))
    per = sample.frames_per_video()
    assert len(per) == sample.n_videos == n_videos
    assert (per <= 50).all() and (per == 50).all()  # every synthetic video has far more frames
    assert len(sample) == 50 * n_videos
    assert sample.face.shape == (len(sample), 53) and sample.body.shape == (len(sample), 117)
    assert sample.face_full.shape == (len(sample), 156) and sample.body_full.shape == (len(sample), 179)
    assert sample.head_rotation.shape == (len(sample), 3) and sample.has_head_rotation.all()
    assert sample.n_nonfinite == 0 and sample.n_frames_seen > 10 * len(sample)
    # The tokenizer columns are the full rows' tokenizer columns.
    assert np.array_equal(sample.body, sample.body_full[:, schema.BODY_TOKEN_SLICE])
    assert np.array_equal(sample.face, sample.face_full[:, schema.FACE_TOKEN_COLUMNS])
    # No frame is drawn twice.
    keys = set(zip(sample.video_id, sample.segment_id, sample.utterance_id, sample.frame))
    assert len(keys) == len(sample)
    small = cl.sample_frames(synth["train"], per_video=3, seed=0)
    assert (small.frames_per_video() == 3).all()


def _keys(s):
    return list(zip(s.video_id, s.segment_id.tolist(), s.utterance_id.tolist(), s.frame.tolist()))


def test_sampling_is_reproducible_and_seed_dependent(synth):
    train = synth["train"]
    a = cl.sample_frames(train, per_video=10, seed=0)
    b = cl.sample_frames(train, per_video=10, seed=0)
    c = cl.sample_frames(train, per_video=10, seed=1)
    assert _keys(a) == _keys(b) and np.array_equal(a.body_full, b.body_full)
    overlap = len(set(_keys(a)) & set(_keys(c))) / len(a)
    assert overlap < 0.2  # about 10 / (frames per video) expected
    # The sample does not depend on the order the rows come in.
    reversed_rows = cl.sample_frames(train.select(range(len(train) - 1, -1, -1)), per_video=10, seed=0)
    assert _keys(reversed_rows) == _keys(a)


def test_sampling_takes_rows_and_skips_nan_frames():
    rows = [make_row(n_utterances=3, frames_per_utterance=30, seed=i, video_id=f"video{i:06d}x", segment_id=i)
            for i in range(2)]  # fmt: skip
    rows[0]["body_language"]["features"][5] = [float("nan")] * schema.BODY_DIM
    s = cl.sample_frames(rows, per_video=200, seed=0)  # more places than frames: all finite frames kept
    total = 2 * 3 * 30
    assert s.n_nonfinite >= 1  # smoothing spreads a NaN to its neighbours
    assert s.n_frames_seen + s.n_nonfinite == total == len(s) + s.n_nonfinite
    assert np.isfinite(s.body_full).all() and np.isfinite(s.face_full).all()
    assert s.n_segments == 2 and s.n_videos == 2


def test_legacy_face_rows_are_widened():
    rows = [make_row(n_utterances=2, frames_per_utterance=20, face_dim=153)]
    s = cl.sample_frames(rows, per_video=5, seed=0)
    assert s.face_full.shape == (5, 156) and not s.has_head_rotation.any()
    assert np.allclose(s.face_full[:, schema.FACE_LAYOUT.head_rotation], 0)
    assert np.array_equal(s.face[:, 50:], s.face_full[:, schema.FACE_LAYOUT.jaw])


# ---------------------------------------------------------------------------------------
# Clusters on the synthetic VENUS
# ---------------------------------------------------------------------------------------
def test_body_clusters_separate_hand_to_face(body):
    assert body.n_clusters >= 2
    d = body.describe.set_index("cluster")
    largest = d.loc[0]
    # The largest cluster is hands at rest: far from the face and low (about -0.4 m).
    assert largest["hand_to_face_m"] > 0.45 and largest["wrist_height_m"] < -0.3
    assert largest["share"] > 0.5
    # Some cluster is hand-to-face: much closer to the chin and mostly over the cue threshold.
    others = d.drop(index=[0, -1], errors="ignore")
    closest = others["hand_to_face_m"].idxmin()
    assert others.loc[closest, "hand_to_face_m"] < largest["hand_to_face_m"] - 0.3
    assert others.loc[closest, "hand_at_face"] > 0.8
    assert set(d.columns) >= {"n", "share", "hand_to_face_m", "wrist_height_m", "wrist_spread_m",
                              "finger_curl_rad", "hand_at_face", "hand_raised"}  # fmt: skip


def test_face_clusters_and_describe(face, sample):
    assert face.n_clusters >= 2
    assert set(face.describe.columns) >= {"jaw_open_rad", "smile", "frown", "surprise", "expression_norm"}
    assert face.describe["n"].sum() == len(sample)
    assert (face.describe["expression_norm"] > 0).all()


def test_to_dict_is_json_safe(body):
    d = body.to_dict()
    back = json.loads(json.dumps(d))
    assert back["n"] == 450 and back["part"] == "body" and back["method"] == "tsne"
    assert back["n_clusters"] == body.n_clusters and back["eps"] == pytest.approx(body.eps)
    assert len(back["sizes"]) == len(body.sizes) and back["describe"][0]["cluster"] == 0


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------
def test_embedding_figure(body):
    fig = cl.embedding_figure(body)
    has_noise = bool((body.labels < 0).any())
    assert len(fig.data) == body.n_clusters + has_noise
    assert sum(len(t.x) for t in fig.data) == len(body.labels)
    assert "utterance_id" in fig.data[-1].hovertemplate and len(fig.data[-1].customdata[0]) == 4


def test_representatives_figures(sample, body, face):
    fig = cl.representatives_figure(sample, body)
    scenes = [k for k in fig.layout if k.startswith("scene")]
    assert len(scenes) >= body.n_clusters
    assert len(fig.data) == 2 * body.n_clusters  # bones + head per cluster
    assert fig.layout.annotations[0].text.startswith("cluster 0 (n=")
    ffig = cl.representatives_figure(sample, face, max_clusters=6, cols=3)
    shown = min(face.n_clusters, 6)
    assert len(ffig.data) == 2 * shown + 1  # face lines + mouth per cluster, one expression strip
    assert ffig.data[-1].type == "heatmap" and np.asarray(ffig.data[-1].z).shape == (50, shown)


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------
def test_bad_inputs(synth, sample):
    with pytest.raises(ValueError, match="part must be 'face'.*'body'"):
        cl.cluster_frames(sample, "hands")
    with pytest.raises(ValueError, match="at least 10 frames"):
        cl.cluster_frames(np.zeros((5, 117)), "body")
    with pytest.raises(ValueError, match=r"\(n, 53\) array"):
        cl.cluster_frames(np.zeros((50, 117)), "face")
    with pytest.raises(ValueError, match="NaN"):
        cl.cluster_frames(np.full((50, 53), np.nan), "face")
    with pytest.raises(ValueError, match="method must be"):
        cl.cluster_frames(np.zeros((50, 53)), "face", method="pca")
    with pytest.raises(ValueError, match="no frames to sample"):
        cl.sample_frames([])
    with pytest.raises(ValueError, match=r"splits: \['train', 'test'\]"):
        cl.sample_frames(synth)
    with pytest.raises(ValueError, match="per_video"):
        cl.sample_frames(synth["train"], per_video=0)
    with pytest.raises(ValueError, match="relative_to must be"):
        cl.relative_features(sample, "face", "channel")


def test_umap_is_optional():
    x, _ = _mixture(groups=2, per_group=20)
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="umap-learn"):
            cl.cluster_frames(x, "body", method="umap")
    else:  # installed: it must run
        assert cl.cluster_frames(x, "body", method="umap").embedding.shape == (40, 2)
