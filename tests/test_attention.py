"""inside_core.attention: which INSIDE channels to draw, by strength (|1 + γ|·mass) and by response to z."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from inside_core.attention import attention_mass, describe, response_scores, responsive_channels, strongest_channels
from inside_core.conditions import get_condition
from inside_core.layers import InsideParams

C = 6


def params(mu_x=None, mu_y=None, sigma=None, gamma=None) -> InsideParams:
    def field(values, default):
        return torch.tensor([values if values is not None else [default] * C], dtype=torch.float32)

    sigma = field(sigma, 0.3)
    return InsideParams(field(mu_x, 0.0), field(mu_y, 0.0), sigma, sigma.clone(), field(gamma, 0.0),
                        field(None, 0.0))


class MovingExplorer:
    """Stands in for an Explorer: channel 4's centre follows the point's x, channel 1's width its radius,
    the others stay put (as a trained point model's responsive channels would)."""

    def sweep(self, zs):
        out = []
        for z in zs:
            x, _, r = (float(v) for v in z)
            mu_x = [0.1, 0.1, 0.1, 0.1, x, 0.1]
            sigma = [0.3, 0.2 + 0.1 * r, 0.3, 0.3, 0.3, 0.3]
            out.append(SimpleNamespace(conditioning=[params(mu_x=mu_x, sigma=sigma)]))
        return out


def test_strongest_channels_weigh_gain_by_mass():
    # channel 2 has the largest gain but a Gaussian far off the image (tiny mass); channel 5 a large gain
    # and a centred Gaussian; channel 0 a gain of zero (1 + γ = 0)
    p = params(mu_x=[0, 0, 5.0, 0, 0, 0], gamma=[-1.0, 0, 3.0, 0, 0.5, 1.0])
    assert strongest_channels(p, 2) == [5, 4]
    assert strongest_channels(p, None)[-1] in (0, 2) and len(strongest_channels(p, None)) == C
    mass = attention_mass(p)
    assert mass.shape == (C,) and mass[2] < 1e-6 < mass[5] <= 1


def test_responsive_channels_rank_the_channel_that_moves_first():
    point = get_condition("point")
    assert responsive_channels(MovingExplorer(), point, {"x": 0.0, "y": 0.0, "r": 0.3}, k=2) == [4, 1]
    scores = response_scores(MovingExplorer(), point, steps=5)
    # x sweeps -0.75..0.75: channel 4's centre moves 1.5; the still channels score 0
    assert scores[4] == pytest.approx(1.5, abs=1e-5)
    assert np.allclose(scores[[0, 2, 3, 5]], 0.0)


def test_responsive_channels_need_an_inside_layer():
    class FiLMOnly:
        def sweep(self, zs):
            return [SimpleNamespace(conditioning=[object()]) for _ in zs]

    with pytest.raises(ValueError, match="not an INSIDE layer"):
        responsive_channels(FiLMOnly(), get_condition("point"))


def test_describe_says_why():
    assert describe("strongest", [0, 1], 64) == "2 of 64 channels, largest |1+γ|·mass"
    assert (describe("responsive", [3], 64, ["phase", "slice"])
            == "1 of 64 channels whose μ, σ move most with phase, slice")
    assert describe("strongest", list(range(4)), 4).startswith("all 4 channels")
