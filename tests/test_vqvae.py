"""The VQ-VAE tokenizer: shapes, masking, the EMA quantiser, and the configuration presets."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mini_mars import config
from mini_mars.vqvae import VQVAE, EMAQuantizer, count_parameters, latent_mask


def _model(part="face", **kw) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(dataclasses.replace(config.preset("smoke").vq(part), **kw))


def test_cpu_gestures_is_cpu_mini_at_four_frames_a_code():
    """The preset the README describes: only the time step, the head and jaw weights and the LM's steps differ."""
    mini, gestures = config.preset("cpu-mini"), config.preset("cpu-gestures")
    for part in ("face", "body"):
        diff = {f.name for f in dataclasses.fields(config.VQConfig)
                if getattr(mini.vq(part), f.name) != getattr(gestures.vq(part), f.name)}
        assert diff == {"face": {"down", "jaw_weight"}, "body": {"down", "body_head_weight"}}[part]
        assert gestures.vq(part).frames_per_token == 4 and mini.vq(part).frames_per_token == 8
    assert gestures.vq_body.body_head_weight == 3.0 and gestures.vq_face.jaw_weight == 2.0
    assert gestures.vq_train == mini.vq_train and gestures.lm == mini.lm
    assert dataclasses.replace(gestures.lm_train, steps=600, eval_every=200) == mini.lm_train
    assert gestures.lm_train.steps == 1500


def test_presets_and_the_cpu_mini_size():
    assert set(config.PRESETS) == {"smoke", "cpu-mini", "cpu-gestures", "gpu-small", "paper"}
    paper = config.preset("paper")
    assert (paper.vq_face.width, paper.vq_face.codebook_size, paper.vq_face.code_dim, paper.vq_body.code_dim) == (512, 512, 8, 16)
    assert paper.vq_train.lr == 1e-4 and paper.vq_train.weight_decay == 0.1 and paper.vq_train.milestones == (0.5, 0.75)
    n = count_parameters(VQVAE(config.preset("cpu-mini").vq("face")))
    assert 1.5e6 < n < 1.9e6  # "~1.7 M parameters"
    with pytest.raises(ValueError, match="unknown preset 'tiny'"):
        config.preset("tiny")
    with pytest.raises(ValueError, match="part must be one of"):
        config.VQConfig(part="hands")
    # identity out of the face tokens, except in the paper's preset (see motion_data)
    assert config.preset("cpu-mini").vq("face").reference == "speaker" and paper.vq_face.reference == "none"
    assert config.preset("cpu-mini").vq("body").reference == "none"
    with pytest.raises(ValueError, match="face tokenizer only"):
        config.VQConfig(part="body", reference="speaker")
    with pytest.raises(ValueError, match="reference must be one of"):
        config.VQConfig(part="face", reference="person")
    assert config.preset("cpu-mini").vq("face").in_dim == 53 and paper.vq_face.in_dim == 53  # head rotation: off
    assert config.VQConfig(part="face", head_rotation=True).in_dim == 56
    with pytest.raises(ValueError, match="head_rotation applies to the face"):
        config.VQConfig(part="body", head_rotation=True)


def test_config_json_round_trip_and_unknown_fields():
    cfg = config.preset("cpu-mini").vq("body")
    assert config.from_dict(config.VQConfig, config.to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="unknown fields \\['colour'\\]"):
        config.from_dict(config.VQConfig, {**config.to_dict(cfg), "colour": 1})


@pytest.mark.parametrize("part,dim,head", [("face", 56, True), ("face", 53, False), ("body", 117, False)])
def test_shapes_with_padding_to_a_multiple_of_eight(part, dim, head):
    m = _model(part) if part == "body" else VQVAE(dataclasses.replace(config.preset("smoke").vq("face"), head_rotation=head))
    assert m.in_dim == dim  # face: expression 50 + jaw 3 (+ head rotation 3)
    x = torch.randn(3, 50, dim)
    out = m(x)
    assert out.recon.shape == (3, 50, dim)
    assert out.codes.shape == out.code_mask.shape == (3, 7)  # 50 frames -> 56 -> 7 tokens
    m.eval()
    codes, cmask = m.encode(x)
    assert codes.shape == (3, 7) and cmask.all()
    assert m.decode(codes).shape == (3, 56, dim)


def test_bad_shapes_and_codes_give_clear_errors():
    m = _model("face")
    with pytest.raises(ValueError, match=r"expected \(batch, frames, 53\); got \(2, 16, 117\)"):
        m(torch.randn(2, 16, 117))
    with pytest.raises(ValueError, match="mask shape"):
        m(torch.randn(2, 16, 53), torch.ones(2, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="outside the codebook"):
        m.decode(torch.full((1, 2), 10_000))


def test_latent_mask_is_any_frame_of_the_token():
    mask = torch.zeros(2, 24, dtype=torch.bool)
    mask[0, :9] = True  # tokens 0 (frames 0-7) and 1 (frame 8)
    mask[1, 16:] = True
    assert latent_mask(mask, 8).tolist() == [[True, True, False], [False, False, True]]


def test_padding_changes_nothing():
    m = _model("body")
    m.train()
    x = torch.randn(2, 64, 117)
    mask = torch.ones(2, 64, dtype=torch.bool)
    mask[1, 30:] = False
    garbage = x.clone()
    garbage[1, 30:] = 1e3 * torch.randn(34, 117)  # whatever the padding holds
    torch.manual_seed(1)
    a = m(x, mask)
    m2 = _model("body")
    m2.train()
    torch.manual_seed(1)
    b = m2(garbage, mask)
    assert torch.allclose(a.loss, b.loss) and torch.equal(a.codes[a.code_mask], b.codes[b.code_mask])
    assert torch.allclose(a.recon[mask], b.recon[mask], atol=1e-5)
    m.eval()
    assert torch.equal(m.encode(x, mask)[0], m.encode(garbage, mask)[0])
    assert (m.encode(x, mask)[0][1, 4:] == -1).all()  # steps 4-7 hold no real frame


def test_padded_steps_stay_out_of_the_codebook_statistics():
    q = EMAQuantizer(K=4, dim=2, decay=0.5, dead_threshold=0.0)  # no resets here
    q.train()
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0], [50.0, 50.0], [60.0, 60.0]])
    q(z, torch.tensor([True, True, False, False]))
    # initialised from the two real vectors only, and the EMA counted two vectors
    assert q.codebook.abs().max() < 2.0
    assert q.ema_count.sum().item() == pytest.approx(0.5 * 4 + 0.5 * 2)


def test_quantiser_picks_the_nearest_code_and_passes_gradients_straight_through():
    q = EMAQuantizer(K=3, dim=2)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]]))
    q.initialized.fill_(True)
    q.eval()
    z = torch.tensor([[0.9, 0.1], [0.1, 4.0], [-1.0, 0.0]], requires_grad=True)
    out = q(z)
    assert out.codes.tolist() == [1, 2, 0]
    assert torch.allclose(out.z_q, q.codebook[out.codes])
    (out.z_q * torch.tensor([[1.0, 2.0]])).sum().backward()
    assert torch.allclose(z.grad, torch.tensor([[1.0, 2.0]]).expand(3, 2))  # identity gradient
    assert out.perplexity.item() == pytest.approx(3.0)  # three codes, used once each


def test_dead_codes_restart_at_encoder_outputs():
    torch.manual_seed(0)
    q = EMAQuantizer(K=8, dim=2, decay=0.9, dead_threshold=0.5)
    q.train()
    q(torch.randn(64, 2))  # initialise
    far = torch.full((32, 2), 100.0) + torch.randn(32, 2)
    for _ in range(30):  # every vector now sits far away: all codes but one starve
        q(far)
    near = (q.codebook - 100.0).norm(dim=1) < 10
    assert near.sum() >= 6  # starved codes were moved to where the data is
