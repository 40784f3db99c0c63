"""Training: the noising formula, the learned eps against the exact Gaussian answer, EMA, seeds, cache, CLI."""
import json
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from symbreak.experiments.cli import main
from symbreak.experiments.models import training
from symbreak.experiments.models.networks import MLPConfig, UNetConfig
from symbreak.experiments.models.training import (
    TrainConfig,
    cache_key,
    cache_root,
    data_rms,
    default_train_config,
    ema_decay_at,
    ema_update,
    init_network,
    load_or_train,
    load_or_train_model,
    lr_factor,
    resolved_config,
    sample_times,
    train,
    with_precondition,
)
from symbreak.experiments.runtime.distributed import resolve_device
from symbreak.theory import DiscreteDDPM, Gaussian, SymmetricDeltas, VPCosine, VPLinear

MU, S = 0.5, 0.6  # the 1-D Gaussian data N(MU, S^2)


@dataclass
class Data:
    """A stand-in with the fields of symbreak.analysis.datasets.Dataset that training reads."""

    name: str
    x: np.ndarray
    shape: tuple
    model: object = None
    config: dict = field(default_factory=dict)


def gaussian_data() -> Data:
    model = Gaussian([MU], [[S * S]])
    return Data("gauss-1d", model.sample(10, np.random.default_rng(0)).astype(np.float32), (1,), model,
                {"mu": MU, "s": S})


def vp_linear_alpha_sigma(t):
    """alpha = exp(-19.9 t^2 / 4 - 0.05 t), sigma = sqrt(1 - alpha^2): the paper's continuous schedule,
    beta(t) = 0.1 + 19.9 t."""
    alpha = np.exp(-19.9 * t * t / 4 - 0.05 * t)
    return alpha, np.sqrt(1 - alpha * alpha)


TINY = TrainConfig(MLPConfig(dim=1, width=8, depth=1), steps=6, batch_size=8, warmup_steps=2)


def state(den) -> dict:
    return {k: v.clone() for k, v in den.net.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the objective -------------------------------------------------------------------------------------
def test_batches_noise_the_data_with_the_schedule():
    y0 = 0.75
    source = training.BatchSource(Data("point", np.array([[y0]], np.float32), (1,)), VPLinear(), 64, 3, 0)
    x_t, t, eps = next(source)
    alpha, sigma = vp_linear_alpha_sigma(t.double().numpy())
    np.testing.assert_allclose(x_t[:, 0].numpy(), alpha * y0 + sigma * eps[:, 0].numpy(), rtol=0, atol=1e-6)
    x_again = next(training.BatchSource(Data("point", np.array([[y0]], np.float32), (1,)), VPLinear(), 64, 3, 0))[0]
    assert torch.equal(x_t, x_again)  # seeded


def test_times_are_uniform_on_the_schedule_range():
    gen = torch.Generator().manual_seed(0)
    t = sample_times(VPCosine(), 4000, gen)
    s = VPCosine()
    assert t.min() >= s.t_min and t.max() <= s.T
    assert stats.kstest(t, stats.uniform(loc=s.t_min, scale=s.T - s.t_min).cdf).pvalue > 1e-3
    ddpm = DiscreteDDPM()
    k = np.rint(sample_times(ddpm, 20000, gen) * 1000).astype(int) - 1  # t = (k + 1) / N
    np.testing.assert_allclose(sample_times(ddpm, 5, torch.Generator().manual_seed(1)) * 1000 % 1, 0, atol=1e-9)
    assert k.min() >= 0 and k.max() <= 999
    counts = np.bincount(k // 100, minlength=10)  # ten bins of 100 steps: chi-square against uniform
    assert stats.chisquare(counts).pvalue > 1e-3


def test_ema_update_is_the_convex_combination():
    a = init_network(MLPConfig(dim=2, width=4, depth=1), 0).requires_grad_(False)
    b = init_network(MLPConfig(dim=2, width=4, depth=1), 1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in b.parameters():
            p.normal_(generator=gen)
    before = [p.detach().clone() for p in a.parameters()]
    ema_update(list(a.parameters()), list(b.parameters()), 0.9)
    for old, new, p in zip(before, b.parameters(), a.parameters()):
        torch.testing.assert_close(p, 0.9 * old + 0.1 * new.detach(), rtol=0, atol=4e-7)  # float32 lerp
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(1000, 0.999) == pytest.approx(1001 / 1010)
    assert ema_decay_at(10 ** 6, 0.999) == 0.999


def test_learning_rate_warms_up_then_decays_to_zero():
    cfg = replace(TINY, steps=1000, warmup_steps=100)
    assert lr_factor(0, cfg) == pytest.approx(0.01) and lr_factor(99, cfg) == pytest.approx(1.0)
    assert lr_factor(550, cfg) == pytest.approx(0.5)
    assert lr_factor(1000, cfg) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(700, replace(cfg, lr_schedule="constant")) == 1.0


def gaussian_eps(x, t):
    """The optimal eps for N(MU, S^2): E[eps | x_t] = sigma (x - alpha MU) / (alpha^2 S^2 + sigma^2)."""
    alpha, sigma = vp_linear_alpha_sigma(t)
    return sigma * (x - alpha * MU) / (alpha ** 2 * S ** 2 + sigma ** 2)


@pytest.mark.parametrize("precondition", ["none", "edm"])
def test_mlp_learns_the_exact_eps_of_a_gaussian(precondition):
    """Away from t -> 0, where eps is a small signal under unit noise, the error is a few hundredths
    (measured: at most 0.021 unpreconditioned, 0.045 preconditioned, which puts the non-zero mean in F)."""
    cfg = TrainConfig(MLPConfig(dim=1, width=32, depth=2), steps=800, batch_size=512, lr=5e-3, ema_decay=0.99)
    cfg = with_precondition(cfg, gaussian_data(), precondition)
    result = train(gaussian_data(), VPLinear(), cfg, device="cpu", progress=False)
    worst = 0.0
    for t in (0.15, 0.3, 0.5, 0.8):
        alpha, sigma = vp_linear_alpha_sigma(t)
        spread = np.sqrt(alpha ** 2 * S ** 2 + sigma ** 2)
        x = torch.linspace(alpha * MU - 2 * spread, alpha * MU + 2 * spread, 41, dtype=torch.float64)[:, None]
        with torch.no_grad():
            got = result.denoiser.eps(x, t)[:, 0].numpy()
        worst = max(worst, np.abs(got - gaussian_eps(x[:, 0].numpy(), t)).max())
    assert worst < 0.05
    # the final loss approaches the irreducible E_t Var[eps | x_t] = E_t alpha^2 S^2 / (alpha^2 S^2 + sigma^2)
    floor = integrate.quad(lambda t: (lambda a, s: a * a * S * S / (a * a * S * S + s * s))(
        *vp_linear_alpha_sigma(t)), VPLinear().t_min, 1.0)[0] / (1.0 - VPLinear().t_min)
    assert result.final_loss == pytest.approx(floor, abs=0.015)
    assert result.losses.shape == (800,) and result.losses[:20].mean() > result.final_loss


def test_same_seed_same_weights_other_seed_other_weights():
    data = Data("two-deltas", np.zeros((0, 1), np.float32), (1,), SymmetricDeltas())
    a = state(train(data, VPLinear(), TINY, device="cpu", progress=False).denoiser)
    b = state(train(data, VPLinear(), TINY, device="cpu", progress=False).denoiser)
    c = state(train(data, VPLinear(), replace(TINY, seed=1), device="cpu", progress=False).denoiser)
    assert same_weights(a, b) and not same_weights(a, c)


# --- configuration -------------------------------------------------------------------------------------
def test_train_config_round_trips_and_validates():
    cfg = TrainConfig(UNetConfig((3, 8, 8), base_channels=8, groups=4, channels_last=True), steps=7, seed=3,
                      precondition="edm", sigma_data=0.5)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for bad, match in (({"steps": 0}, "--steps"), ({"batch_size": 2.5}, "--batch-size"), ({"lr": -1.0}, "--lr"),
                       ({"ema_decay": 1.0}, "ema_decay"), ({"lr_schedule": "step"}, "lr_schedule"),
                       ({"precondition": "karras"}, "--precondition"), ({"precondition": "edm"}, "sigma_data"),
                       ({"sigma_data": 1.0}, "sigma_data: unused"),
                       ({"precondition": "edm", "sigma_data": float("nan")}, "sigma_data")):
        with pytest.raises(ValueError, match=match):
            replace(TINY, **bad)


def test_precondition_takes_sigma_data_from_the_data():
    """sigma_data = sqrt(E|y|^2 / d): the exact model's (|mu|^2 + tr Sigma) / d, else the samples' mean square."""
    x = np.random.default_rng(0).normal(0.3, 2.0, size=(50_000, 3)).astype(np.float32)
    points = Data("pts", x, (3,))
    want = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    assert with_precondition(TINY, points, "edm").sigma_data == pytest.approx(want, rel=1e-12)
    assert data_rms(points, rows=7) == pytest.approx(want, rel=1e-12)  # chunking does not change it
    model = Data("g", x[:0], (2,), Gaussian([0.3, -1.0], [[2.0, 0.5], [0.5, 1.0]]))
    assert data_rms(model) == pytest.approx(np.sqrt((0.09 + 1.0 + 3.0) / 2), rel=1e-14)
    assert default_train_config(points).precondition == "edm"  # d = 3
    assert default_train_config(Data("plane", x[:, :2], (2,))).precondition == "none"
    assert with_precondition(default_train_config(points), points, "none").sigma_data is None
    with pytest.raises(ValueError, match="--precondition: edm needs data of non-zero scale"):
        with_precondition(TINY, Data("zeros", np.zeros((4, 1), np.float32), (1,)), "edm")


def test_default_configs_follow_the_data_shape():
    assert default_train_config(Data("d", np.ones((2, 64), np.float32), (8, 8))).network == \
        MLPConfig(dim=64, width=256, depth=2)
    unet = default_train_config(Data("d", np.ones((2, 64), np.float32), (8, 8)), arch="unet").network
    assert (unet.image_shape, unet.channel_mult, unet.channels_last) == ((1, 8, 8), (1, 2), False)
    rgb = default_train_config(Data("c", np.ones((2, 3072), np.float32), (32, 32, 3)), arch="unet").network
    assert (rgb.image_shape, rgb.channel_mult, rgb.channels_last) == ((3, 32, 32), (1, 2, 2, 2), True)
    with pytest.raises(ValueError, match="unet"):
        default_train_config(Data("v", np.ones((2, 315), np.float32), (5, 7, 9)), arch="unet")
    with pytest.raises(ValueError, match="d = 2"):
        train(Data("v", np.zeros((2, 2), np.float32), (2,)), VPLinear(), TINY, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_device_choice():
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="--device"):
        resolve_device("tpu")


# --- the cache ----------------------------------------------------------------------------------------
@pytest.fixture
def deltas():
    return Data("two-deltas", np.zeros((0, 1), np.float32), (1,), SymmetricDeltas(), {"m": 1.0})


@pytest.fixture
def count_training(monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    real = training.train
    monkeypatch.setattr(training, "train", counting)
    return calls


IMAGES = Data("images", np.random.default_rng(0).uniform(-1, 1, (20, 48)).astype(np.float32), (4, 4, 3))
TINY_UNET = TrainConfig(UNetConfig((3, 4, 4), base_channels=4, channel_mult=(1, 2), groups=2, channels_last=True),
                        steps=3, batch_size=4, warmup_steps=1, precondition="edm", sigma_data=0.6)


@pytest.mark.parametrize("which", ["mlp on a data model", "preconditioned unet on points"])
def test_cache_hit_returns_identical_weights_without_training(tmp_path, deltas, monkeypatch, which):
    data, cfg = (deltas, TINY) if which.startswith("mlp") else (IMAGES, TINY_UNET)
    first = load_or_train_model(data, VPLinear(), cfg, device="cpu", cache_dir=tmp_path)
    assert not first.from_cache and {p.name for p in first.path.iterdir()} == {"weights.pt", "config.json", ".lock"}

    def no_training(*args, **kwargs):
        raise AssertionError("the cache should have been used")
    monkeypatch.setattr(training, "train", no_training)
    second = load_or_train_model(data, VPLinear(), cfg, device="cpu", cache_dir=tmp_path)
    assert second.from_cache and second.path == first.path and second.final_loss == first.final_loss
    assert same_weights(state(first.denoiser), state(second.denoiser))
    assert not second.denoiser.net.training and second.denoiser.shape == data.shape
    x = torch.randn(5, *data.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(first.denoiser(x, 0.3), second.denoiser(x, 0.3), rtol=0, atol=0)
    meta = json.loads((first.path / "config.json").read_text())
    assert meta["resolved"]["schedule"] == VPLinear().config()
    assert TrainConfig.from_dict(meta["resolved"]["train"]) == cfg


def corrupt(entry, how):
    weights, meta = entry / "weights.pt", entry / "config.json"
    if how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif how == "bad json":
        meta.write_text('{"key": ')
    elif how == "missing key":
        data = json.loads(meta.read_text())
        del data["weights_sha256"]
        meta.write_text(json.dumps(data))
    elif how == "garbage weights with matching hash":
        weights.write_bytes(b"not a torch file")
        data = json.loads(meta.read_text())
        data["weights_sha256"] = training._sha256_file(weights)
        meta.write_text(json.dumps(data))
    else:
        weights.unlink()


@pytest.mark.parametrize("how", ["truncated weights", "bad json", "missing key",
                                 "garbage weights with matching hash", "missing weights"])
def test_corrupt_cache_is_reported_and_rebuilt(tmp_path, deltas, count_training, how):
    first = load_or_train_model(deltas, VPLinear(), TINY, device="cpu", cache_dir=tmp_path)
    corrupt(first.path, how)
    with pytest.warns(RuntimeWarning, match="corrupt"):
        rebuilt = load_or_train_model(deltas, VPLinear(), TINY, device="cpu", cache_dir=tmp_path)
    assert not rebuilt.from_cache and len(count_training) == 2
    assert same_weights(state(first.denoiser), state(rebuilt.denoiser))
    assert load_or_train_model(deltas, VPLinear(), TINY, device="cpu", cache_dir=tmp_path).from_cache
    assert len(count_training) == 2


def test_retrain_ignores_the_cache(tmp_path, deltas, count_training):
    load_or_train(deltas, VPLinear(), TINY, device="cpu", cache_dir=tmp_path)
    den = load_or_train(deltas, VPLinear(), TINY, device="cpu", cache_dir=tmp_path, retrain=True)
    assert len(count_training) == 2 and den.shape == (1,)


def test_cache_key_follows_everything_that_decides_the_weights(deltas, monkeypatch, tmp_path):
    key = cache_key(resolved_config(deltas, VPLinear(), TINY))
    assert key == cache_key(resolved_config(deltas, VPLinear(), replace(TINY)))
    others = [resolved_config(deltas, VPLinear(), replace(TINY, seed=1)),
              resolved_config(deltas, VPLinear(beta_max=10.0), TINY),
              resolved_config(deltas, DiscreteDDPM(), TINY),
              resolved_config(Data("two-deltas", np.zeros((0, 1), np.float32), (1,), SymmetricDeltas(m=2.0),
                                   {"m": 1.0}), VPLinear(), TINY)]
    points = Data("pts", np.array([[0.5], [1.0]], np.float32), (1,))
    moved = Data("pts", np.array([[0.5], [1.5]], np.float32), (1,))
    others += [resolved_config(points, VPLinear(), TINY), resolved_config(moved, VPLinear(), TINY)]
    keys = {cache_key(r) for r in others} | {key}
    assert len(keys) == len(others) + 1
    monkeypatch.setenv("SYMBREAK_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env" and cache_root(tmp_path / "arg") == tmp_path / "arg"


# --- the command line ---------------------------------------------------------------------------------
def test_train_command_trains_then_reads_the_cache(tmp_path, capsys):
    text = ["train", "--data", "two-deltas", "--steps", "5", "--batch-size", "8", "--device", "cpu",
            "--cache-dir", str(tmp_path), "--no-progress"]
    argv = [*text, "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert not first["from_cache"] and second["from_cache"] and first["path"] == second["path"]
    assert (tmp_path / first["path"].split("/")[-1] / "weights.pt").is_file()
    assert second["final_loss"] == first["final_loss"] and second["train"]["steps"] == 5
    assert main(text) == 0
    assert "loaded from the cache" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [(["--steps", "0"], "--steps"), (["--device", "tpu"], "--device"),
                                            (["--schedule", "linear"], "schedule"),
                                            (["--batch-size", "-3"], "--batch-size"),
                                            (["--precondition", "karras"], "--precondition: expected one of none, edm")])
def test_train_command_rejects_bad_input(tmp_path, capsys, extra, message):
    assert main(["train", "--data", "two-deltas", "--cache-dir", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
