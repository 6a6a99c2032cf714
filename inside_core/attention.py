"""Which INSIDE channels to draw: the rule shared by the exported figures and the dashboard.

A layer has 64 or 128 channels; their 1-σ ellipses drawn together merge into one blob. Two rankings
pick the few worth drawing (the rest stay available on demand):

- `strongest_channels(params, k)`: what the decoder receives most of, for one z. A channel's output is
  (1 + γ_c) (a_c ⊙ x_c) + β_c, so its weight is |1 + γ_c| times its attention mass (the mean of a_c
  over the image: a narrow Gaussian passes little of the feature map);
- `responsive_channels(explorer, condition, base_values, k)`: what responds to z. Each control of the
  condition sweeps its range (one batch through `explorer.sweep`) and a channel scores by how far its
  centre μ moves, plus how much its width σ changes.

`describe(rule, channels, total, variables)` says in words why these channels are shown. Pure numpy
and torch: no drawing here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inside_core.geometry import gaussian, pixel_centres_np
from inside_core.layers import InsideParams

__all__ = ["DEFAULT_CHANNELS", "channel_arrays", "attention_mass", "strength_scores", "strongest_channels",
           "response_scores", "responsive_channels", "describe"]

DEFAULT_CHANNELS = 8  # channels drawn by default; a reader can follow about this many ellipses
MASS_GRID = 64  # pixels per axis for the attention mass: the mean of a_c barely changes beyond this


def channel_arrays(params: InsideParams, index: int = 0) -> dict[str, np.ndarray]:
    """One sample's parameters as float64 arrays (C,): mu_x, mu_y, sigma_x, sigma_y, gamma, beta."""
    out = {}
    for name in ("mu_x", "mu_y", "sigma_x", "sigma_y", "gamma", "beta"):
        value = getattr(params, name)
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        out[name] = (value[index] if value.ndim == 2 else value).astype(np.float64)
    return out


def attention_mass(params: InsideParams, height: int = MASS_GRID, width: int = MASS_GRID) -> np.ndarray:
    """Mean of each channel's attention map a_c over the image, (C,) in (0, 1].

    a_c is the outer product of two 1-D Gaussians, so its mean is the product of their means.
    """
    p = channel_arrays(params)
    rows = gaussian(pixel_centres_np(height)[None], p["mu_y"][:, None], p["sigma_y"][:, None]).mean(1)
    columns = gaussian(pixel_centres_np(width)[None], p["mu_x"][:, None], p["sigma_x"][:, None]).mean(1)
    return rows * columns


def strength_scores(params: InsideParams) -> np.ndarray:
    """|1 + γ_c| · mass_c per channel, (C,): how much of channel c the decoder receives."""
    return np.abs(1 + channel_arrays(params)["gamma"]) * attention_mass(params)


def _top(scores: np.ndarray, k: int | None) -> list[int]:
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")  # ties: the lower index first
    return [int(c) for c in (order if k is None else order[:k])]


def strongest_channels(params: InsideParams, k: int | None = DEFAULT_CHANNELS) -> list[int]:
    """The k channels of largest |1 + γ|·mass, strongest first (all channels, ranked, for k=None)."""
    return _top(strength_scores(params), k)


def _stack(predictions: Sequence[Any], layer: int) -> dict[str, np.ndarray]:
    params = [p.conditioning[layer] for p in predictions]
    if not params or not isinstance(params[0], InsideParams):
        raise ValueError(f"conditioning layer {layer} is not an INSIDE layer")
    arrays = [channel_arrays(p) for p in params]
    return {name: np.stack([a[name] for a in arrays]) for name in arrays[0]}  # each (N, C)


def _sweeps(condition, base_values: Mapping[str, Any] | None, steps: int) -> dict[str, list[np.ndarray]]:
    """control key -> the z of that control swept over its range, the others held at `base_values`."""
    base = condition.with_defaults(dict(base_values or {}))
    sweeps = {}
    for control in condition.controls:
        values = condition.sweep_values(control.key, steps)  # a select's options, else its sweep range
        if len(values) > 1:
            sweeps[control.key] = [condition.encode(**{**base, control.key: v}) for v in values]
    return sweeps


def response_scores(explorer, condition, base_values: Mapping[str, Any] | None = None, steps: int = 9,
                    layer: int = 0) -> np.ndarray:
    """How much each channel responds to z, (C,): summed over the condition's controls, the largest
    distance its centre μ moves from where it starts, plus the range its width σ (mean of x, y) spans.

    All the swept z of all controls are decoded in one batch (`explorer.sweep`). Units are normalised
    image coordinates, so a score of 1 is half the image's extent.
    """
    sweeps = _sweeps(condition, base_values, steps)
    if not sweeps:
        raise ValueError(f"{condition.name} has no control to sweep")
    zs = [z for values in sweeps.values() for z in values]
    stacked = _stack(explorer.sweep(zs), layer)
    scores, start = 0.0, 0
    for values in sweeps.values():
        part = {name: array[start:start + len(values)] for name, array in stacked.items()}
        start += len(values)
        moved = np.hypot(part["mu_x"] - part["mu_x"][:1], part["mu_y"] - part["mu_y"][:1]).max(axis=0)
        sigma = (part["sigma_x"] + part["sigma_y"]) / 2
        scores = scores + moved + (sigma.max(axis=0) - sigma.min(axis=0))
    return np.asarray(scores, dtype=np.float64)


def responsive_channels(explorer, condition, base_values: Mapping[str, Any] | None = None,
                        k: int | None = DEFAULT_CHANNELS, steps: int = 9, layer: int = 0) -> list[int]:
    """The k channels whose μ and σ move most as each control sweeps its range, most responsive first.

    `condition`: a registered Condition (`inside_core.conditions.get_condition`); `base_values`: the
    controls' values the sweeps start from (default: the condition's defaults).
    """
    return _top(response_scores(explorer, condition, base_values, steps, layer), k)


def describe(rule: str, channels: Sequence[int], total: int, variables: Sequence[str] = ()) -> str:
    """Why these channels: e.g. "8 of 64 channels, largest |1+γ|·mass" for a caption or a legend.

    rule: "strongest" or "responsive" (then `variables` names what was swept), or "chosen".
    """
    count = f"{len(channels)} of {total} channels" if len(channels) < total else f"all {total} channels"
    if rule == "strongest":
        return f"{count}, largest |1+γ|·mass"
    if rule == "responsive":
        swept = ", ".join(variables) if variables else "z"
        return f"{count} whose μ, σ move most with {swept}"
    return f"{count}: " + ", ".join(str(c) for c in channels)
