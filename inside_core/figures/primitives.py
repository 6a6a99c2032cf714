"""Drawing primitives for images and masks: input images, label overlays, ground-truth outlines, legends,
where z points (marker, region lines), panel grids, corner text and colour bars.

Colours come from `inside_core.palette` (a label has one colour on the page and in every figure);
positions from `inside_core.geometry` (normalised coordinates, method.md). The conditioning layers'
drawings (attention, Guide Me, FiLM) are in `inside_core.figures.conditioning`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse, Patch

from inside_core.conditions import format_number
from inside_core.geometry import normalised_to_pixel, sigma_to_pixels
from inside_core.palette import GROUND_TRUTH_COLOUR, LABEL_COLOURS, MARKER_COLOUR, label_names

from .style import SMALL_FONT_SIZE, figure_size

__all__ = ["to_numpy", "to_numpy_image", "clean_axes", "show_image", "overlay_mask", "outline_mask",
           "label_legend", "draw_condition_marker", "condition_marker", "region_lines", "draw_region_lines",
           "image_grid", "corner_text", "bottom_colourbar", "number"]

OUTLINE_EFFECT = [patheffects.withStroke(linewidth=1.4, foreground="black")]  # white dashes readable anywhere


number = format_number  # a number for a label, with a true minus sign: the conditions' words use it too


def to_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def to_numpy_image(image: Any) -> np.ndarray:
    """An image tensor/array (C, H, W), (H, W, C) or (H, W) as (H, W) grey or (H, W, 3) RGB floats."""
    image = to_numpy(image).astype(np.float32)
    if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[-1] not in (1, 3, 4):
        image = np.moveaxis(image, 0, -1)
    elif image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[0] < image.shape[-1]:
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an image of shape (C, H, W), (H, W, C) or (H, W), got {image.shape}")
    return image


def clean_axes(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def show_image(ax: Axes, image: Any, grey_window: tuple[float, float] | None = None) -> None:
    """Draw an image: RGB as is (clipped to [0, 1]); grey with a fixed window (default: its 1st-99th percentile)."""
    image = to_numpy_image(image)
    if image.ndim == 3:
        ax.imshow(np.clip(image, 0.0, 1.0), interpolation="none")
    else:
        low, high = grey_window if grey_window is not None else np.percentile(image, (1, 99))
        ax.imshow(image, cmap="gray", vmin=float(low), vmax=float(max(high, low + 1e-6)), interpolation="none")
    clean_axes(ax)


def _labels(labels: Any) -> np.ndarray:
    labels = to_numpy(labels)
    if labels.ndim == 3:  # (1, H, W) mask
        labels = labels[0]
    return np.rint(labels).astype(np.int64)


def _label_colour(value: int, colours: Sequence[str] | None) -> str:
    if colours is not None:
        return colours[(value - 1) % len(colours)]
    return LABEL_COLOURS.get(value, LABEL_COLOURS[1 + (value - 1) % len(LABEL_COLOURS)])


def overlay_mask(ax: Axes, labels: Any, num_classes: int = 1, alpha: float = 0.45, contour: bool = True,
                 colours: Sequence[str] | None = None) -> None:
    """Overlay a label map (H, W) on the current image: translucent fill plus an outline per label.

    `num_classes` is the model's K: 1 means a binary mask (label 1); otherwise labels 1..K-1. Colours are
    the palette's label colours (the page's) unless `colours` are given; 0 is never drawn.
    """
    labels = _labels(labels)
    values = range(1, max(num_classes, 2))
    rgba = np.zeros(labels.shape + (4,), dtype=np.float32)
    for value in values:
        rgba[labels == value] = (*to_rgba(_label_colour(value, colours))[:3], alpha)
    ax.imshow(rgba, interpolation="none")
    if contour:
        for value in values:
            region = (labels == value).astype(np.float32)
            if region.any() and not region.all():
                ax.contour(region, levels=[0.5], colors=[_label_colour(value, colours)], linewidths=0.6)
    ax.set_xlim(-0.5, labels.shape[1] - 0.5)
    ax.set_ylim(labels.shape[0] - 0.5, -0.5)
    clean_axes(ax)


def outline_mask(ax: Axes, labels: Any, num_classes: int) -> None:
    """Ground truth as dashed outlines (so it reads over a filled prediction)."""
    labels = _labels(labels)
    for value in range(1, max(num_classes, 2)):
        region = (labels == value).astype(np.float32)
        if region.any() and not region.all():
            contours = ax.contour(region, levels=[0.5], colors=[GROUND_TRUTH_COLOUR], linewidths=0.7,
                                  linestyles="dashed")
            contours.set_path_effects(OUTLINE_EFFECT)


def label_legend(ax_or_fig: Any, num_classes: int, loc: str = "lower center", ground_truth: bool = False,
                 **kwargs: Any) -> None:
    """A legend of the labels (RV, MYO, LV) for multi-class masks (for binary masks: the prediction's
    colour, only when `ground_truth` adds the dashed ground-truth outline to explain)."""
    if num_classes <= 1:
        handles = [Patch(facecolor=_label_colour(1, None), edgecolor="none", alpha=0.6, label="prediction")]
    else:
        names = label_names(num_classes)
        handles = [Patch(facecolor=_label_colour(k, None), edgecolor="none", label=names.get(k, f"label {k}"))
                   for k in range(1, num_classes)]
    if ground_truth:
        handles.append(Line2D([], [], color=GROUND_TRUTH_COLOUR, linestyle="--", linewidth=0.8,
                              path_effects=OUTLINE_EFFECT, label="ground truth"))
    elif num_classes <= 1:
        return
    ax_or_fig.legend(handles=handles, loc=loc, ncol=len(handles), **{"handlelength": 2.0, **kwargs})


# ------------------------------------------------------------------------------------ where z points
def condition_marker(condition: Any, z: Any = None, values: Mapping[str, Any] | None = None):
    """((x, y), radius | None) where z points, normalised, or None; from the controls' `values` if given.

    From z alone only a marker that carries a radius is drawn (point conditioning: z *is* the point);
    a location without a radius belongs to a slider (the quadrant blend), whose position a one-hot z
    does not record, so it is drawn only from the control values that were shown.
    """
    if values is not None:
        return condition.marker(condition.with_defaults(values))
    if z is None:
        return None
    marker = condition.marker(condition.values_from_z(to_numpy(z).astype(np.float64).ravel()))
    return marker if marker is not None and marker[1] is not None else None


def draw_condition_marker(ax: Axes, condition: Any, z: Any, height: int, width: int,
                          location: tuple[float, float] | None = None,
                          values: Mapping[str, Any] | None = None) -> None:
    """Mark where z points: a centre (+) and, for point conditioning, the radius (dashed circle).

    `condition`: a registered Condition or its name. `location` (normalised x, y) marks a slider's
    position directly; `values` (control values) asks the condition's `marker`.
    """
    from inside_core.conditions import get_condition

    condition = get_condition(condition) if isinstance(condition, str) else condition
    marker = ((location, None) if location is not None else condition_marker(condition, z, values))
    if marker is None:
        return
    (x, y), radius = marker
    column, row = normalised_to_pixel(float(x), width), normalised_to_pixel(float(y), height)
    outline = [patheffects.withStroke(linewidth=1.8, foreground="black")]  # readable on any background
    ax.plot([column], [row], marker="+", markersize=6, markeredgewidth=1.0, color=MARKER_COLOUR,
            path_effects=outline)
    if radius is not None:
        ax.add_patch(Ellipse((column, row), 2 * sigma_to_pixels(radius, width), 2 * sigma_to_pixels(radius, height),
                             fill=False, edgecolor=MARKER_COLOUR, linestyle=(0, (3, 2)), linewidth=0.8,
                             path_effects=outline))


def region_lines(condition: Any) -> tuple[list[float], list[float]]:
    """Normalised (x positions, y positions) of the condition's region boundaries: `Condition.region_lines`."""
    return condition.region_lines()


def draw_region_lines(ax: Axes, condition: Any, height: int, width: int) -> None:
    """The condition's region boundaries (dotted), e.g. the lines that separate the quadrants."""
    xs, ys = condition.region_lines()
    for y in ys:
        ax.axhline(normalised_to_pixel(y, height), color="white", linewidth=0.5, linestyle=":")
    for x in xs:
        ax.axvline(normalised_to_pixel(x, width), color="white", linewidth=0.5, linestyle=":")


# ------------------------------------------------------------------------------------- layout helpers
def image_grid(n_rows: int, n_cols: int, width: str | float, left: float = 0.18, right: float = 0.02,
               top: float = 0.17, bottom: float = 0.03, gap: float = 0.03, cell_aspect: float = 1.0):
    """A figure with an n_rows x n_cols grid of image panels filling the width; margins in inches."""
    fig_width, _ = figure_size(width, 1.0)
    cell = (fig_width - left - right - gap * (n_cols - 1)) / n_cols
    fig_height = top + bottom + n_rows * cell * cell_aspect + gap * (n_rows - 1)
    fig = Figure(figsize=(fig_width, fig_height))
    axes = fig.subplots(n_rows, n_cols, squeeze=False, gridspec_kw=dict(
        left=left / fig_width, right=1 - right / fig_width, bottom=bottom / fig_height, top=1 - top / fig_height,
        wspace=gap / cell, hspace=gap / (cell * cell_aspect)))
    for ax in axes.ravel():
        clean_axes(ax)
    return fig, axes


def corner_text(ax: Axes, text: str) -> None:
    ax.text(0.97, 0.04, text, transform=ax.transAxes, ha="right", va="bottom", color="white",
            fontsize=SMALL_FONT_SIZE, bbox=dict(boxstyle="square,pad=0.15", facecolor="black", alpha=0.55,
                                                edgecolor="none"))


def bottom_colourbar(fig: Figure, ax: Axes, artist: Any, label: str) -> None:
    """A thin horizontal colour bar under `ax` (in the figure's bottom margin)."""
    box = ax.get_position()
    fig_height = fig.get_size_inches()[1]
    bar = fig.add_axes((box.x0 + 0.1 * box.width, box.y0 - 0.1 / fig_height, 0.8 * box.width, 0.045 / fig_height))
    colourbar = fig.colorbar(artist, cax=bar, orientation="horizontal")
    colourbar.outline.set_linewidth(0.4)
    low, high = artist.norm.vmin, artist.norm.vmax
    ticks = [low, 0.0, high] if low < 0 else [0.0, high]
    colourbar.set_ticks(ticks)
    colourbar.set_ticklabels([number(t) if t else "0" for t in ticks])
    colourbar.ax.tick_params(labelsize=SMALL_FONT_SIZE - 1, length=1.5, pad=1)
    bar.text(-0.04, 0.5, label, transform=bar.transAxes, ha="right", va="center", fontsize=SMALL_FONT_SIZE - 1)
