"""Networks: the time embedding formula, per-sample independence, layouts, config round trips and the
EDM preconditioning (against Karras et al.'s Table 1 and the exact Gaussian denoiser)."""
import json

import numpy as np
import pytest
import torch

from symbreak.experiments.models.denoisers import ExactDenoiser, NetworkDenoiser
from symbreak.experiments.models.networks import (
    EDMPreconditioned,
    MLPConfig,
    TimeEmbedding,
    TimeEmbeddingConfig,
    UNetConfig,
    build_network,
    network_config_from_dict,
)
from symbreak.theory import VE, Gaussian, VPLinear


def randomised(config, seed=0):
    """The network with every parameter (the zero-initialised output layer too) drawn at random."""
    torch.manual_seed(seed)
    net = build_network(config)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn_like(p))
    return net.eval()


def test_time_embedding_matches_the_formula_and_is_deterministic():
    """e(t) = [F(t), F(log(t) / 8)], F(v) = [v, sin(2 pi f_k v), cos(2 pi f_k v)], f_k geometric."""
    t = torch.tensor([1e-6, 1e-3, 0.29, 0.5, 1.0], dtype=torch.float64)
    freqs = np.geomspace(0.5, 16.0, 5)

    def fourier(v):
        phase = 2 * np.pi * v[:, None] * freqs
        return np.concatenate([v[:, None], np.sin(phase), np.cos(phase)], axis=1)
    for log_time, expected in ((False, fourier(t.numpy())),
                               (True, np.hstack([fourier(t.numpy()), fourier(np.log(t.numpy()) / 8)]))):
        cfg = TimeEmbeddingConfig(n_frequencies=5, min_frequency=0.5, max_frequency=16.0, log_time=log_time)
        torch.manual_seed(1)
        a = TimeEmbedding(cfg).double()
        torch.manual_seed(2)
        b = TimeEmbedding(cfg).double()
        np.testing.assert_allclose(a(t).numpy(), expected, rtol=0, atol=1e-12)
        assert torch.equal(a(t), b(t)) and cfg.features == expected.shape[1]
        assert len(a.state_dict()) == 0  # never trained, never saved
    assert torch.isfinite(a(torch.zeros(2, dtype=torch.float64))).all()  # log t is floored at 1e-12


def test_mlp_treats_samples_independently_and_accepts_any_layout():
    net = randomised(MLPConfig(dim=64, width=32, depth=2)).double()
    x = torch.randn(5, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.tensor([0.05, 0.2, 0.3, 0.7, 1.0], dtype=torch.float64)
    with torch.no_grad():
        batch = net(x, t)
        single = torch.cat([net(x[i:i + 1], t[i:i + 1]) for i in range(5)])
        flat = net(x.reshape(5, 64), t)
        scalar_t = net(x, 0.3)
    assert batch.shape == x.shape
    torch.testing.assert_close(batch, single, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(flat.reshape(x.shape), batch)
    torch.testing.assert_close(scalar_t[2], batch[2])
    assert (batch[1] - net(x[1:2], 0.9).detach()[0]).abs().max() > 1e-3  # t matters


def test_fresh_networks_predict_zero_noise():
    """The output layers start at zero, so the initial eps-loss is E|eps|^2 = 1 exactly in expectation."""
    for cfg in (MLPConfig(dim=3), UNetConfig((1, 8, 8), base_channels=8, groups=4)):
        net = build_network(cfg)
        x = torch.randn(2, cfg.dim)
        assert torch.equal(net(x, torch.tensor([0.1, 0.9])), torch.zeros_like(x))


def test_unet_layouts_agree_and_groupnorm_keeps_samples_independent():
    cfg = UNetConfig((3, 8, 8), base_channels=8, channel_mult=(1, 2), groups=4)
    net = randomised(cfg)
    last = build_network(UNetConfig((3, 8, 8), base_channels=8, channel_mult=(1, 2), groups=4,
                                    channels_last=True)).eval()
    last.load_state_dict(net.state_dict())
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.1, 0.5, 0.9])
    with torch.no_grad():
        chw = net(x, t)
        hwc = last(x.permute(0, 2, 3, 1), t)
        flat = net(x.reshape(3, -1), t)
        single = net(x[1:2], t[1:2])
    torch.testing.assert_close(hwc, chw.permute(0, 2, 3, 1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(flat.reshape(chw.shape), chw)
    torch.testing.assert_close(single[0], chw[1], rtol=1e-5, atol=1e-6)


def test_unet_for_64x64x3_images():
    cfg = UNetConfig((3, 64, 64), base_channels=16, channel_mult=(1, 2, 2, 2), groups=8)
    net = randomised(cfg)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net(x, torch.tensor([0.2, 0.8]))
        first = net(x[:1], torch.tensor([0.2]))
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(first[0], out[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cfg", [MLPConfig(dim=2, width=16, depth=1, time=TimeEmbeddingConfig(4, 0.5, 4.0)),
                                 UNetConfig((1, 8, 8), base_channels=8, channel_mult=(1, 2), groups=4,
                                            num_res_blocks=2)])
def test_config_round_trips_through_json(cfg):
    back = network_config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    net, twin = randomised(cfg), build_network(back).eval()
    twin.load_state_dict(net.state_dict())
    x = torch.randn(4, cfg.dim)
    assert torch.equal(net(x, torch.full((4,), 0.4)), twin(x, torch.full((4,), 0.4)))


def test_parameter_count_of_the_mlp():
    """time MLP 2(1+2n) -> w -> w; d -> w; depth blocks of (LayerNorm + 3 w x w linears); LayerNorm;
    w -> d; d -> d; the gain w -> d."""
    d, w, depth, n = 3, 16, 2, 4
    expected = (2 * (1 + 2 * n) * w + w + w * w + w) + (d * w + w) + depth * (2 * w + 3 * (w * w + w)) \
        + 2 * w + (w * d + d) + d * d
    for gain in (False, True):
        net = build_network(MLPConfig(dim=d, width=w, depth=depth, time=TimeEmbeddingConfig(n, 0.5, 4.0), time_gain=gain))
        assert sum(p.numel() for p in net.parameters()) == expected + gain * (w * d + d)


@pytest.mark.parametrize("make, match", [
    (lambda: MLPConfig(dim=0), "dim"),
    (lambda: MLPConfig(dim=2, width=2.5), "width"),
    (lambda: MLPConfig(dim=2, time_gain="yes"), "time_gain"),
    (lambda: UNetConfig((1, 8, 8), base_channels=12, groups=8), "base_channels"),
    (lambda: UNetConfig((1, 6, 6), channel_mult=(1, 2, 2)), "divisible"),
    (lambda: UNetConfig((8, 8)), "image_shape"),
    (lambda: TimeEmbeddingConfig(4, 2.0, 1.0), "max_frequency"),
    (lambda: network_config_from_dict({"arch": "transformer"}), "arch"),
    (lambda: network_config_from_dict({"arch": "mlp", "dim": 2, "heads": 4}), "heads"),
    (lambda: build_network({"arch": "mlp"}), "config"),
])
def test_bad_configs_raise_one_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------------------------------------
# EDM preconditioning
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", [VPLinear(), VE()], ids=["vp", "ve"])
def test_edm_preconditioning_is_karras_table_1(schedule):
    """eps of the wrapper equals (x - alpha D) / sigma with EDM's D = c_skip x_h + c_out F(c_in x_h),
    x_h = x / alpha, sigma_h = sigma / alpha (Karras et al. 2022, Table 1), for a random F."""
    inner = randomised(MLPConfig(dim=3, width=16, depth=1)).double()
    sigma_d = 0.7
    wrapped = EDMPreconditioned(inner, schedule, sigma_d)
    t = torch.tensor([0.05, 0.3, 0.6, 0.95], dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    alpha, sigma = (torch.as_tensor(f(t.numpy()))[:, None] for f in (schedule.alpha, schedule.sigma))
    x_h, s_h = x / alpha, sigma / alpha
    c_in, c_skip = 1 / torch.sqrt(s_h**2 + sigma_d**2), sigma_d**2 / (s_h**2 + sigma_d**2)
    c_out = s_h * sigma_d / torch.sqrt(s_h**2 + sigma_d**2)
    d_edm = c_skip * x_h + c_out * inner(c_in * x_h, t)
    with torch.no_grad():
        np.testing.assert_allclose(wrapped(x, t).numpy(), ((x - alpha * d_edm) / sigma).numpy(), rtol=1e-12,
                                   atol=1e-12)


def test_fresh_preconditioned_model_is_the_exact_isotropic_gaussian_denoiser():
    """With F = 0 (a fresh network's zero output layer) the model is the exact eps of N(0, sigma_d^2 I):
    eps = sigma x / (sigma^2 + alpha^2 sigma_d^2), checked against the theory's Gaussian posterior mean."""
    schedule, sigma_d = VPLinear(), 0.8
    model = EDMPreconditioned(build_network(MLPConfig(dim=2)).double(), schedule, sigma_d)
    den = NetworkDenoiser(model.requires_grad_(False), schedule, (2,))
    oracle = ExactDenoiser(Gaussian(np.zeros(2), sigma_d**2 * np.eye(2)), schedule)
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for t in (1e-3, 0.2, 0.5, 1.0):
        np.testing.assert_allclose(den(x, t).numpy(), oracle(x, t).numpy(), rtol=1e-10, atol=1e-12)


def test_preconditioning_rejects_a_bad_sigma_data():
    with pytest.raises(ValueError, match="sigma_data"):
        EDMPreconditioned(build_network(MLPConfig(dim=2)), VPLinear(), 0.0)


def test_mlp_linear_path_has_a_time_dependent_gain():
    """With the output map W_out at zero, eps = (W_skip x) * (1 + G SiLU(time MLP(e(t)))), by hand."""
    net = randomised(MLPConfig(dim=3, width=8, depth=1)).double()
    with torch.no_grad():
        net.out.weight.zero_()
        net.out.bias.zero_()
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0.01, 0.2, 0.4, 0.7, 1.0], dtype=torch.float64)
    emb = torch.nn.functional.silu(net.time(t))
    want = (x @ net.skip.weight.T) * (1 + emb @ net.gain.weight.T + net.gain.bias)
    with torch.no_grad():
        np.testing.assert_allclose(net(x, t).numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-14)
        slope = [float(net(x[:1], tt)[0, 0] / (x[:1] @ net.skip.weight.T)[0, 0]) for tt in (0.1, 0.9)]
    assert abs(slope[0] - slope[1]) > 1e-3  # the slope of eps in x changes with t
