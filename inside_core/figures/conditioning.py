"""Drawing a conditioning layer's parameters: INSIDE's attention (mean map, one channel's map, the
Gaussians' centres and 1-σ ellipses), Guide Me's α + β map and FiLM's γ, β bars.

Positions come from `inside_core.geometry`, which channels to draw from `inside_core.attention`
(by default the 8 of largest |1 + γ|·mass: 64 overlapping ellipses merge into a blob), colours from
`inside_core.palette`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Ellipse

from inside_core import geometry
from inside_core.attention import DEFAULT_CHANNELS, channel_arrays, strongest_channels
from inside_core.layers import FiLMParams, GuidingParams, InsideParams
from inside_core.palette import ATTENTION_CMAP, ELLIPSE_COLOUR, OKABE_ITO, gamma_colours

from .primitives import clean_axes, show_image, to_numpy

__all__ = ["mean_attention", "channel_attention", "attention_geometry", "draw_mean_attention",
           "draw_attention_ellipses", "draw_attention", "guideme_map", "draw_guideme_map", "draw_film_bars",
           "draw_conditioning", "CONDITIONING_TITLES", "GUIDEME_CMAP"]

GUIDEME_CMAP = "cividis"  # a diverging-safe sequential map for a signed field, distinct from attention's viridis
CONDITIONING_TITLES = {InsideParams: "INSIDE attention", GuidingParams: r"Guide Me $\alpha+\beta$",
                       FiLMParams: r"FiLM $\gamma$, $\beta$"}


def mean_attention(params: InsideParams, height: int, width: int) -> np.ndarray:
    """Mean over channels of INSIDE's attention, (1/C) Σ_c a_c(i, j), at (height, width) pixels."""
    p = channel_arrays(params)
    return geometry.mean_attention(p["mu_x"], p["mu_y"], p["sigma_x"], p["sigma_y"], height, width)


def channel_attention(params: InsideParams, channel: int, height: int, width: int) -> np.ndarray:
    """One channel's attention map a_c(i, j) at (height, width) pixels."""
    p = channel_arrays(params)
    c = int(channel)
    if not 0 <= c < len(p["mu_x"]):
        raise ValueError(f"channel {channel} is out of range: the layer has {len(p['mu_x'])} channels")
    return geometry.mean_attention(p["mu_x"][c:c + 1], p["mu_y"][c:c + 1], p["sigma_x"][c:c + 1],
                                   p["sigma_y"][c:c + 1], height, width)


def attention_geometry(params: InsideParams, height: int, width: int) -> dict[str, np.ndarray]:
    """Centres and 1-σ half-widths of every channel's Gaussian, in pixels: keys x, y, sx, sy, gain, gamma.

    Positions by `inside_core.geometry` (normalised_to_pixel, sigma_to_pixels); gain = |1 + γ|, the
    channel's scale; gamma = γ itself.
    """
    p = channel_arrays(params)
    return {
        "x": geometry.normalised_to_pixel(p["mu_x"], width),
        "y": geometry.normalised_to_pixel(p["mu_y"], height),
        "sx": geometry.sigma_to_pixels(p["sigma_x"], width),
        "sy": geometry.sigma_to_pixels(p["sigma_y"], height),
        "gain": np.abs(1 + p["gamma"]),
        "gamma": p["gamma"],
    }


def draw_mean_attention(ax: Axes, params: InsideParams, height: int, width: int, vmax: float | None = None,
                        cmap: str = ATTENTION_CMAP, alpha: float = 1.0, channel: int | None = None):
    """The mean attention map (or one `channel`'s map) as a heatmap over (height, width) pixels; returns
    the image artist. The colour scale runs from 0 to `vmax` (default: the map's maximum; pass a shared
    value to compare panels)."""
    attention = (mean_attention(params, height, width) if channel is None
                 else channel_attention(params, channel, height, width))
    vmax = (float(attention.max()) or 1.0) if vmax is None else vmax
    artist = ax.imshow(attention, cmap=cmap, vmin=0.0, vmax=vmax, alpha=alpha, interpolation="none")
    clean_axes(ax)
    return artist


def draw_attention_ellipses(ax: Axes, params: InsideParams, height: int, width: int,
                            channels: Sequence[int] | None = None, max_channels: int | None = DEFAULT_CHANNELS,
                            colour: str = ELLIPSE_COLOUR, centre_colour: str | None = None,
                            n_sigma: float = 1.0, linewidth: float = 0.5) -> list[int]:
    """Each channel's Gaussian as its centre (dot) and its n-σ ellipse, in pixel coordinates.

    With `channels=None`, draws the `max_channels` strongest channels (`inside_core.attention.
    strongest_channels`: largest |1 + γ|·mass; all of them if None). The centres are coloured by the sign of
    γ as on the page (`palette.gamma_colours`) unless `centre_colour` is given. Returns the channels drawn.
    """
    g = attention_geometry(params, height, width)
    if channels is None:
        channels = sorted(strongest_channels(params, max_channels))
    channels = [int(c) for c in channels]
    for c in channels:
        ax.add_patch(Ellipse((g["x"][c], g["y"][c]), 2 * n_sigma * g["sx"][c], 2 * n_sigma * g["sy"][c],
                             fill=False, edgecolor=colour, linewidth=linewidth, alpha=0.8))
    centres = [centre_colour] * len(channels) if centre_colour else gamma_colours(g["gamma"][channels])
    ax.scatter(g["x"][channels], g["y"][channels], s=5, c=centres, edgecolors=colour, linewidths=0.3,
               zorder=3)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    return channels


def draw_attention(ax: Axes, params: InsideParams, height: int, width: int, image: Any = None,
                   max_channels: int | None = DEFAULT_CHANNELS, vmax: float | None = None,
                   channel: int | None = None, channels: Sequence[int] | None = None):
    """INSIDE's attention panel: the mean map (or one `channel`'s) over a faint copy of `image` if given,
    with the centres and ellipses of the strongest channels (or of `channel` alone, or of `channels`)."""
    if image is not None:
        show_image(ax, image)
    artist = draw_mean_attention(ax, params, height, width, vmax=vmax, alpha=0.75 if image is not None else 1.0,
                                 channel=channel)
    draw_attention_ellipses(ax, params, height, width, channels=[channel] if channel is not None else channels,
                            max_channels=max_channels)
    return artist


def guideme_map(params: GuidingParams) -> np.ndarray:
    """Guide Me's additive map α_h + β_w of one sample, (h, w) at the feature grid's size."""
    if params.alpha.dim() == 2:
        return to_numpy(params.spatial_map()[0])
    return to_numpy(params.alpha[:, None] + params.beta[None, :])


def draw_guideme_map(ax: Axes, params: GuidingParams, height: int, width: int, cmap: str = GUIDEME_CMAP,
                     limit: float | None = None):
    """Guide Me's additive spatial map α_h + β_w, stretched from the feature grid to the image, on a
    symmetric colour scale [-limit, limit] (default: the map's largest magnitude)."""
    spatial = guideme_map(params)
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    limit = (float(np.abs(spatial).max()) or 1.0) if limit is None else limit
    artist = ax.imshow(spatial, cmap=cmap, vmin=-limit, vmax=limit, extent=extent, interpolation="nearest")
    clean_axes(ax)
    return artist


def draw_film_bars(ax: Axes, params: FiLMParams, max_channels: int = 64) -> None:
    """FiLM's per-channel scale γ and shift β as bars (channels along x)."""
    one = params[0] if params.gamma.dim() == 2 else params
    gamma, beta = to_numpy(one.gamma)[:max_channels], to_numpy(one.beta)[:max_channels]
    channels = np.arange(len(gamma))
    ax.bar(channels - 0.2, gamma, width=0.4, color=OKABE_ITO["blue"], label=r"$\gamma$")
    ax.bar(channels + 0.2, beta, width=0.4, color=OKABE_ITO["orange"], label=r"$\beta$")
    ax.axhline(0.0, color="black", linewidth=0.4)
    ax.set_xlabel("channel")
    ax.set_xlim(-1, len(gamma))
    low, high = min(gamma.min(), beta.min(), 0.0), max(gamma.max(), beta.max(), 0.0)
    ax.set_ylim(low - 0.05 * (high - low), high + 0.4 * (high - low))  # headroom for the legend
    ax.legend(loc="upper right", ncol=2, handlelength=0.8, columnspacing=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def draw_conditioning(ax: Axes, params: Any, height: int, width: int, image: Any = None,
                      channel: int | None = None):
    """Draw whatever one conditioning layer's parameters show; returns a colour-mappable artist or None."""
    if isinstance(params, InsideParams):
        return draw_attention(ax, params, height, width, image=image, channel=channel)
    if isinstance(params, GuidingParams):
        return draw_guideme_map(ax, params, height, width)
    if isinstance(params, FiLMParams):
        draw_film_bars(ax, params)
        return None
    raise TypeError(f"cannot draw conditioning parameters of type {type(params).__name__}")
