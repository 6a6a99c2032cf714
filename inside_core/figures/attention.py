"""The attention figure: INSIDE's Gaussians over a dataset as the conditioning varies: did the network
learn where z points? One form per shape of condition, chosen from the registry's description of it:

- one-hot (quadrant, colour, ...): the mean attention per value (shared scale) and, where the values are
  regions of the image (quadrant), the attention mass per region, else the channels' σ per value;
- a condition whose z marks a point (point): μ against the requested centre, σ against the radius;
- otherwise (ACDC's phase and slice): μ and σ along the default sweep variable (slice position), one
  curve per end of the other control (ED, ES), the channels that respond most to z drawn thin
  (`inside_core.attention.responsive_channels`), the ground truth's centroid and spread as dots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from inside_core.attention import DEFAULT_CHANNELS, describe, response_scores, strength_scores
from inside_core.conditions import quadrant_mass  # re-exported (__all__): figures.quadrant_mass
from inside_core.geometry import pixel_centres_np
from inside_core.layers import InsideParams
from inside_core.palette import ATTENTION_CMAP, CATEGORY_COLOURS, OKABE_ITO

from .conditioning import draw_attention_ellipses, mean_attention
from .primitives import clean_axes, draw_region_lines, to_numpy
from .samples import Row, condition_object, model_conditioning, model_name
from .style import SMALL_FONT_SIZE, figure_size, paper_style

__all__ = ["attention_figure", "mask_statistics", "quadrant_mass", "STRONGEST_CHANNELS"]

STRONGEST_CHANNELS = 6  # thin curves / dots per panel: more would hide the mean


def _layer_params(predictions, layer: int) -> dict[str, np.ndarray]:
    """Stack one INSIDE layer's parameters over predictions: each key (N, C)."""
    params = [p.conditioning[layer] for p in predictions]
    if not params or not isinstance(params[0], InsideParams):
        raise ValueError(f"conditioning layer {layer} is not an INSIDE layer: the attention figure needs INSIDE")
    names = ("mu_x", "mu_y", "sigma_x", "sigma_y", "gamma")
    return {n: np.concatenate([to_numpy(getattr(p, n)).reshape(1, -1) for p in params]).astype(np.float64)
            for n in names}


def mask_statistics(mask: Any) -> tuple[float, float, float, float] | None:
    """Centroid (x, y) and standard deviations (sx, sy) of a mask's foreground (labels > 0), in
    normalised coordinates; None for an empty mask. A Gaussian fitted to the mask has these μ, σ."""
    labels = to_numpy(mask)
    if labels.ndim == 3:
        labels = labels[0]
    rows, cols = np.nonzero(labels > 0.5)
    if rows.size == 0:
        return None
    height, width = labels.shape
    x, y = pixel_centres_np(width)[cols], pixel_centres_np(height)[rows]
    return float(x.mean()), float(y.mean()), float(x.std()), float(y.std())


def _band(ax: Axes, positions, values: np.ndarray, colour: str, label: str,
          channels: Sequence[int] = (), channel_label: str | None = None) -> None:
    """Channel mean (thick line), the channels' interquartile range (band) and, thin, the curves of
    the given `channels`; values (N, C)."""
    low, high = np.percentile(values, (25, 75), axis=1)
    ax.fill_between(positions, low, high, color=colour, alpha=0.15, linewidth=0)
    for i, c in enumerate(channels):
        ax.plot(positions, values[:, c], color=colour, linewidth=0.4, alpha=0.7,
                label=channel_label if i == 0 else None)
    ax.plot(positions, values.mean(axis=1), color=colour, linewidth=1.4, label=label)


def _fit_limits(ax: Axes, minimum_span: float, bounds: tuple[float, float]) -> None:
    """Y limits around the data with some margin, at least `minimum_span` wide, within `bounds`."""
    low, high = ax.dataLim.y0, ax.dataLim.y1
    centre, span = (low + high) / 2, max(high - low, 0) * 1.15
    span = max(span, minimum_span)
    ax.set_ylim(max(centre - span / 2, bounds[0]), min(centre + span / 2, bounds[1]))


def _plot_axes_style(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, linewidth=0.3, alpha=0.5)


def attention_figure(model: Any, rows: Sequence[Row], width: str | float = "double", condition: Any = None,
                     layer: int = 0, grid_points: int = 41) -> Figure:
    """INSIDE's Gaussians over a dataset as the conditioning varies (see the module's docstring).

    The hypernetwork's μ and σ depend on z only, so each panel plots them against the conditioning
    next to what the data say (the ground-truth foreground's centroid and spread, in the same
    normalised units, for every sample in `rows`).
    """
    from inside_core.explorer import Explorer, require_images

    require_images(model, "the attention figure")
    condition = condition_object(condition, model)
    if model_conditioning(model) != "inside":
        raise ValueError(f"the attention figure needs an INSIDE model, got {model_name(model)}")
    if not rows:
        raise ValueError("the attention figure needs at least one sample")
    explorer = Explorer(model, rows[0].image)  # μ, σ depend on z only: one image serves every z
    zs = np.stack([to_numpy(r.z).astype(np.float32).ravel() for r in rows])
    stats = [mask_statistics(r.mask) if r.mask is not None else None for r in rows]
    with paper_style():
        if condition.categories:
            return _attention_categorical(explorer, width, layer, condition)
        marker = condition.marker(condition.defaults())
        if marker is not None and marker[1] is not None:
            return _attention_point(explorer, zs, width, layer, condition)
        return _attention_curves(explorer, zs, stats, width, layer, grid_points, condition)


def _series(condition, along: str) -> list[tuple[dict, str]]:
    """(held control values, label) of each curve: the other continuous control at its range's ends,
    labelled by the condition's own words for them (`series_label`: phase 0 -> "ED", 1 -> "ES")."""
    others = [c for c in condition.controls if c.continuous and c.key != along]
    if not others:
        return [({}, "")]
    other = others[0]
    return [({other.key: value}, condition.series_label(other.key, value)) for value in (other.low, other.high)]


def _attention_curves(explorer, zs, stats, width, layer, grid_points, condition) -> Figure:
    along = condition.default_sweep_variable()
    low, high = condition.sweep_range(along)
    positions = np.linspace(low, high, grid_points)
    fig = Figure(figsize=figure_size(width, 0.3), layout="constrained")
    axes = fig.subplots(1, 3)
    swept = [c.key for c in condition.controls if c.continuous]
    panels = (("mu_x", r"$\mu_x$", 0), ("mu_y", r"$\mu_y$", 1), ("sigma", r"$\sigma$ (mean of x, y)", None))
    for k, (held, name) in enumerate(_series(condition, along)):
        own = condition.series_colour(*next(iter(held.items()))) if held else None
        colour = own or CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)]
        grid = [condition.encode(**{**held, along: float(s)}) for s in positions]
        params = _layer_params(explorer.sweep(grid), layer)
        params["sigma"] = (params["sigma_x"] + params["sigma_y"]) / 2
        # thin curves: the channels whose μ, σ respond most to z (the rest barely move: the band shows them)
        responsive = np.argsort(-response_scores(explorer, condition, held, layer=layer), kind="stable")
        responsive = responsive[:STRONGEST_CHANNELS]
        held_key, held_value = next(iter(held.items()), (None, None))
        other_span = condition.control(held_key).high - condition.control(held_key).low if held_key else 1.0
        shown = [condition.values_from_z(z) for z in zs]
        in_series = [i for i, v in enumerate(shown) if stats[i] is not None and
                     (held_key is None or abs(float(v[held_key]) - held_value) < 0.5 * other_span)]
        total = params["mu_x"].shape[1]
        for ax, (key, label, stat) in zip(axes, panels, strict=True):
            _band(ax, positions, params[key], colour, f"channel mean, {name}", responsive,
                  f"{describe('responsive', responsive, total, swept)}, {name}")
            if in_series:
                truth = [stats[i][stat] if stat is not None else (stats[i][2] + stats[i][3]) / 2 for i in in_series]
                ax.scatter([float(shown[i][along]) for i in in_series], truth, s=4, color=colour, alpha=0.6,
                           linewidths=0, marker="o", label=f"ground truth, {name}")
            ax.set_ylabel(label)
    for ax in axes:
        ax.set_xlabel(condition.axis_label(along))
        ax.set_xlim(low, high)
        _plot_axes_style(ax)
    for ax in axes[:2]:
        _fit_limits(ax, minimum_span=0.5, bounds=(-1.0, 1.0))
    axes[2].set_ylim(bottom=0)
    handles, labels = axes[0].get_legend_handles_labels()
    # legend columns: mean, channels, ground truth; rows: one per series
    order = sorted(range(len(labels)), key=lambda i: ("mean" not in labels[i]) + ("ground" in labels[i]) * 2)
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside lower center", ncol=3)
    return fig


def _attention_point(explorer, zs, width, layer, condition) -> Figure:
    """z marks a point: each channel's μ against the requested centre (identity dashed), σ against the
    requested radius; the channel mean (dots, IQR bars) and the strongest channels."""
    predictions = explorer.sweep(list(zs))
    params = _layer_params(predictions, layer)
    params["sigma"] = (params["sigma_x"] + params["sigma_y"]) / 2
    strengths = np.stack([strength_scores(p.conditioning[layer]) for p in predictions])
    strongest = np.argsort(-strengths.mean(axis=0), kind="stable")[:STRONGEST_CHANNELS]
    requested = np.array([[*m[0], m[1]] for m in (condition.marker(condition.values_from_z(z)) for z in zs)])
    fig = Figure(figsize=figure_size(width, 0.3), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (("mu_x", 0, r"requested $x$", r"$\mu_x$"), ("mu_y", 1, r"requested $y$", r"$\mu_y$"),
              ("sigma", 2, r"requested radius $r$", r"$\sigma$ (mean of x, y)"))
    for ax, (key, index, xlabel, ylabel) in zip(axes, panels, strict=True):
        order = np.argsort(requested[:, index], kind="stable")
        values, asked = params[key][order], requested[order, index]
        # one dot per sample and strong channel: the samples' other coordinates differ, so no lines
        ax.scatter(np.repeat(asked, len(strongest)), values[:, strongest].ravel(), s=1.5, linewidths=0,
                   color=OKABE_ITO["orange"], alpha=0.7,
                   label=describe("strongest", strongest, values.shape[1]))
        mean = values.mean(axis=1)
        low, high = np.percentile(values, (25, 75), axis=1)
        ax.errorbar(asked, mean, yerr=[mean - low, high - mean], fmt="o", markersize=2, elinewidth=0.3,
                    color=OKABE_ITO["blue"], ecolor=to_rgba(OKABE_ITO["blue"], 0.35),
                    label="channel mean (bars: IQR)")
        if index < 2:
            ax.plot([-1, 1], [-1, 1], linestyle="--", color="black", linewidth=0.6, label="identity")
            ax.set_xlim(-1, 1)
            ax.set_ylim(-1, 1)
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        _plot_axes_style(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, markerscale=2.5)
    return fig


def _attention_categorical(explorer, width, layer, condition) -> Figure:
    """One mean-attention map per value (shared scale), and where the values are image regions
    (quadrants) the attention mass that falls in each, else the channels' σ per value."""
    values = condition.categories
    predictions = explorer.sweep([condition.parse(v) for v in values])
    params = _layer_params(predictions, layer)
    h, w = explorer.image_size
    maps = [mean_attention(p.conditioning[layer], h, w) for p in predictions]
    vmax = max(float(m.max()) for m in maps) or 1.0
    n = len(values)
    fig = Figure(figsize=figure_size(width, 0.3), layout="constrained")
    grid_spec = fig.add_gridspec(1, n + 1, width_ratios=[1] * n + [1.45])
    artist = None
    for k, value in enumerate(values):
        ax = fig.add_subplot(grid_spec[0, k])
        artist = ax.imshow(maps[k], cmap=ATTENTION_CMAP, vmin=0.0, vmax=vmax, interpolation="none")
        draw_attention_ellipses(ax, predictions[k].conditioning[layer], h, w, max_channels=DEFAULT_CHANNELS)
        draw_region_lines(ax, condition, h, w)
        clean_axes(ax)
        ax.set_title(condition.value_label(value))
    if artist is not None:
        colourbar = fig.colorbar(artist, ax=fig.axes, location="bottom", shrink=0.5, aspect=40, pad=0.02)
        colourbar.set_label("mean attention", fontsize=SMALL_FONT_SIZE)
        colourbar.outline.set_linewidth(0.4)
    ax = fig.add_subplot(grid_spec[0, n])
    masses = [condition.region_mass(m) for m in maps]
    if masses[0] is not None:  # the values are regions of the image (quadrants)
        mass = np.stack(masses)
        ax.imshow(mass, cmap="cividis", vmin=0.0, vmax=1.0)
        for (i, j), fraction in np.ndenumerate(mass):
            ax.text(j, i, f"{fraction:.2f}", ha="center", va="center", fontsize=SMALL_FONT_SIZE,
                    color="black" if fraction > 0.5 else "white")
        short = [condition.value_label(v, short=True) for v in values]
        ax.set_xticks(range(n), short)
        ax.set_yticks(range(n), short)
        ax.tick_params(length=0)
        ax.set_xlabel(f"{condition.title} of the image")
        ax.set_ylabel("conditioned on")
        ax.set_title(f"attention mass (chance {1 / n:.2f})")  # mass spread evenly over the n regions
    else:
        rng = np.random.default_rng(0)  # fixed jitter: same inputs, same file
        for k in range(n):
            colour = CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)]
            for offset, key, marker in ((-0.15, "sigma_x", "o"), (0.15, "sigma_y", "s")):
                data = params[key][k]
                ax.scatter(k + offset + rng.uniform(-0.06, 0.06, size=data.size), data, s=3, color=colour,
                           marker=marker, alpha=0.7, linewidths=0)
        ax.set_xticks(range(n), [condition.value_label(v) for v in values])
        ax.set_ylabel(r"$\sigma$ per channel (left: x, right: y)")
        ax.set_ylim(bottom=0)
        _plot_axes_style(ax)
    return fig
