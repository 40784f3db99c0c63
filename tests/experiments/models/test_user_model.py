"""``--model`` specs (experiments.models.user): module:callable networks under each time convention and
prediction, the pixel-range check, and one clear error per bad spec."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from symbreak.experiments.models.denoisers import ExactDenoiser
from symbreak.experiments.models.user import load_model, network_denoiser, open_model, to_model_range
from symbreak.theory import VE, DiscreteDDPM, Gaussian, VPLinear

MODULE = """
import torch
from torch import nn
from symbreak.theory import DiscreteDDPM


class Eps(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))

    def forward(self, x, c):
        return self.w * x


def make(device=None, dtype=None):
    return {"net": Eps(), "schedule": DiscreteDDPM(), "shape": (4,), "prediction": "eps", "time": "step",
            "pixel_range": (0, 1)}


def not_a_model():
    return 3
"""


class Oracle(nn.Module):
    """The exact answer of a Gaussian N(0, s^2 I) in the requested parameterisation and time convention."""

    def __init__(self, schedule, prediction: str, time: str, s2: float = 0.25):
        super().__init__()
        self.schedule, self.prediction, self.time, self.s2 = schedule, prediction, time, s2
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, c):
        x = x.double()
        if self.time == "sigma":  # EDM coordinates: x~ = y + sigma~ n
            a, s = torch.ones_like(c.double()), c.double()
        else:
            t = self.schedule.t_of_step(c.numpy()) if self.time == "step" else c.double().numpy()
            a, s = (torch.as_tensor(f(t)) for f in (self.schedule.alpha, self.schedule.sigma))
        a, s = a[:, None], s[:, None]
        y = a * self.s2 / (a * a * self.s2 + s * s) * x
        eps = (x - a * y) / s
        return {"x0": y, "eps": eps, "v": a * eps - s * y, "score": -eps / s}[self.prediction]


@pytest.mark.parametrize("prediction", ["eps", "x0", "v", "score"])
@pytest.mark.parametrize("time,schedule", [("t", VPLinear()), ("step", DiscreteDDPM()), ("sigma", VPLinear()),
                                           ("sigma", VE())])
def test_every_convention_gives_the_exact_denoiser(prediction, time, schedule):
    if time == "sigma" and prediction == "v":
        pytest.skip("v is defined in VP coordinates")
    den = network_denoiser(Oracle(schedule, prediction, time).double(), schedule, (3,), prediction, time)
    exact = ExactDenoiser(Gaussian(np.zeros(3), 0.25 * np.eye(3)), schedule)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = float(schedule.t_of_step(300)) if schedule.discrete else 0.3
    torch.testing.assert_close(den(x, t), exact(x, t), rtol=1e-9, atol=1e-9)


def test_module_callable_mapping(tmp_path, monkeypatch):
    (tmp_path / "user_net.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = open_model("user_net:make", device="cpu")
    assert model.pixel_range == (0.0, 1.0) and model.config["time"] == "step"
    x = torch.ones(2, 4, dtype=torch.float64)
    alpha, sigma = DiscreteDDPM().alpha(0.5), DiscreteDDPM().sigma(0.5)
    torch.testing.assert_close(load_model("user_net:make")(x, 0.5), (x - sigma * 0.5 * x) / alpha)
    with pytest.raises(ValueError, match="--model: 'user_net:not_a_model' returned a int"):
        load_model("user_net:not_a_model")


@pytest.mark.parametrize("spec,message", [("no_such_module_xyz:make", "cannot import"), ("nonsense", "neither a folder"),
                                          ("os:getcwd_nope", "cannot import")])
def test_bad_specs_name_the_flag(spec, message):
    with pytest.raises(ValueError, match=f"--model: .*{message}"):
        load_model(spec)


def test_folder_without_a_model_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="--model: .*config.json"):
        load_model(str(tmp_path))


def test_pixel_range_mapping():
    assert to_model_range(np.array([-1.0, 0.3, 1.0]), (-1.0, 1.0))[:2] == (1.0, 0.0)
    a, b, note = to_model_range(np.array([0.0, 255.0]), (-1.0, 1.0))
    assert (a * 255 + b, b) == pytest.approx((1.0, -1.0)) and "[0, 255]" in note
    a, b, _ = to_model_range(np.array([-1.0, 1.0]), (0.0, 1.0))
    assert (a, b) == (0.5, 0.5)
    with pytest.raises(ValueError, match="--model: the data lie in"):
        to_model_range(np.array([-5.0, 300.0]), (-1.0, 1.0))
