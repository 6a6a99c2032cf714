"""The dashboard's export: one explorer view (`explorer_figure`) or both sides of the Compare view
(`compare_figure`) as a figure, carrying the view as shown.

Panels: the input, the prediction over it (ground truth dashed, if shown) and the conditioning (INSIDE's
attention with the strongest channels' Gaussians, or one channel; Guide Me's α + β; FiLM's γ, β), with
labelled colour bars. A caption gives z, the control values and the Dice; a long title is wrapped to
the figure's width. The ground truth is given per call (`mask=`): the Explorer holds none for the page.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure, SubFigure

from inside_core.attention import DEFAULT_CHANNELS, describe, strongest_channels
from inside_core.conditions import Condition, condition_of, get_condition
from inside_core.layers import GuidingParams, InsideParams

from .conditioning import CONDITIONING_TITLES, draw_attention, draw_conditioning
from .primitives import (
    corner_text,
    draw_condition_marker,
    label_legend,
    number,
    outline_mask,
    overlay_mask,
    show_image,
    to_numpy,
    to_numpy_image,
)
from .style import FONT_SIZE, SMALL_FONT_SIZE, figure_size, paper_style

__all__ = ["explorer_figure", "compare_figure", "view_caption", "wrap_title"]

_FROM_EXPLORER = object()  # mask default: the explorer's own sample mask (the old behaviour)
_CHARACTER_WIDTH = 0.62  # a DejaVu Sans character is about this many em wide (a margin included)


def wrap_title(text: str, width_inches: float, font_size: float = FONT_SIZE) -> str:
    """`text` broken into lines that fit `width_inches` at `font_size` points (titles were cut off)."""
    per_line = max(int(width_inches * 72 / (font_size * _CHARACTER_WIDTH)), 12)
    return "\n".join(textwrap.wrap(text, per_line)) if len(text) > per_line else text


def _condition(explorer: Any, condition: str | Condition | None) -> Condition | None:
    if isinstance(condition, Condition):
        return condition
    if condition is not None:
        return get_condition(condition)
    card = getattr(getattr(explorer, "model", None), "card", None)
    return condition_of(card) if card and getattr(explorer, "conditioned", True) else None


def _format(value: Any, condition: Condition) -> str:
    """A control's value: a number with a true minus sign, or a select's value in the condition's words."""
    if isinstance(value, (int, float, np.floating)):
        return number(float(value))
    return condition.value_label(value)


def view_caption(prediction: Any, condition: Condition | None = None, values: Mapping[str, Any] | None = None,
                 dice: float | None = None) -> str:
    """One line: what z is in words, z itself, the control values and the Dice, e.g.
    "point (0.30, −0.20), r 0.40 · z = [0.30, −0.20, 0.40] · x 0.30, y −0.20, r 0.40 · Dice 0.91"."""
    parts = []
    z = getattr(prediction, "z", None)
    if z is not None:
        z = to_numpy(z).astype(np.float64).ravel()
        if condition is not None:
            parts.append(f"{condition.title}: {condition.describe(z)}")
        parts.append("z = [" + ", ".join(number(float(v)) for v in z) + "]")
    if values and condition is not None:
        shown = condition.with_defaults(values)
        parts.append(", ".join(f"{condition.control(key).short} {_format(v, condition)}"
                               for key, v in shown.items() if v is not None))
    if dice is not None:
        parts.append(f"Dice {dice:.2f}")
    return " · ".join(parts)


def _draw_view(fig: Figure | SubFigure, explorer: Any, prediction: Any, mask: Any, condition: Condition | None,
               values: Mapping[str, Any] | None, channel: int | None, show_dice: bool, name: str | None,
               caption: bool, channels: Sequence[int] | None = None, channels_note: str | None = None,
               layer: int = 0) -> tuple[int, bool, str]:
    """Input | prediction | conditioning panels on `fig`; returns (number of classes, ground truth drawn,
    the caption's text: z, control values, Dice and which channels the ellipses are). `channels` (with
    `channels_note`, the line saying which they are): the INSIDE channels to draw instead of the strongest;
    `layer`: the conditioning layer drawn."""
    image = to_numpy(explorer.image)
    height, width_px = to_numpy_image(image).shape[:2]
    num_classes = int(to_numpy(prediction.probabilities).shape[0])
    conditioning = list(prediction.conditioning or [])
    axes = fig.subplots(1, 2 + (1 if conditioning else 0))
    show_image(axes[0], image)
    axes[0].set_title("Input")
    show_image(axes[1], image)
    overlay_mask(axes[1], prediction.labels, num_classes)
    if mask is not None:
        outline_mask(axes[1], mask, num_classes)
    if condition is not None and values is not None:
        draw_condition_marker(axes[0], condition, prediction.z, height, width_px, values=values)
    dice = explorer.dice(prediction, mask) if show_dice and mask is not None else None
    if dice is not None and not caption:
        corner_text(axes[1], f"Dice {dice:.2f}")
    axes[1].set_title("Prediction" if name is None else f"{name}: prediction")
    if conditioning:
        chosen = conditioning[min(max(int(layer), 0), len(conditioning) - 1)]
        params = chosen.detach() if hasattr(chosen, "detach") else chosen
        if isinstance(params, InsideParams):
            count = int(to_numpy(params.mu_x).reshape(-1).size)
            artist = draw_attention(axes[2], params, height, width_px, image=image, channel=channel,
                                    channels=None if channels is None else [int(c) for c in channels],
                                    max_channels=DEFAULT_CHANNELS if channels is None else None)
            title = "INSIDE attention" if channel is None else f"INSIDE channel {channel}"
            label = ("mean attention" if channel is None else f"attention $a_{{{channel}}}$")
            drawn_channels = (f"channel {channel} of {count}" if channel is not None else
                              channels_note or describe("chosen", channels, count) if channels is not None else
                              describe("strongest", strongest_channels(params, DEFAULT_CHANNELS), count))
        else:
            drawn_channels = None
            artist = draw_conditioning(axes[2], params, height, width_px, image=image)
            title = CONDITIONING_TITLES.get(type(params), "Conditioning")
            label = r"$\alpha_h + \beta_w$" if isinstance(params, GuidingParams) else None
        axes[2].set_title(title)
        if artist is not None:
            bar = fig.colorbar(artist, ax=axes[2], location="right", shrink=0.8, aspect=15, pad=0.02)
            bar.set_label(label, fontsize=SMALL_FONT_SIZE - 1)
            bar.ax.tick_params(labelsize=SMALL_FONT_SIZE - 1, length=1.5, pad=1)
            bar.outline.set_linewidth(0.4)
    text = view_caption(prediction, condition, values, dice) if caption else ""
    if caption and conditioning and drawn_channels:
        drawn = f"ellipses: {drawn_channels} (centre red: γ > 0, blue: γ < 0)"
        text = f"{text} · {drawn}" if text else drawn
    return num_classes, mask is not None, text


def _caption_and_legend(fig: Figure, text: str, num_classes: int, ground_truth: bool, width: float) -> str:
    """The label legend under the panels, the caption as its title (one block: constrained layout
    stacks a legend and a separate bottom label on top of each other); the caption alone if no legend.
    Returns the caption as wrapped."""
    text = wrap_title(text, width, SMALL_FONT_SIZE) if text else None
    if num_classes > 1 or ground_truth:
        label_legend(fig, num_classes, loc="outside lower center", ground_truth=ground_truth, title=text,
                     title_fontsize=SMALL_FONT_SIZE)
    elif text:
        fig.supxlabel(text, fontsize=SMALL_FONT_SIZE)
    return text or ""


def explorer_figure(explorer: Any, prediction: Any, title: str | None = None, width: str | float = "single", *,
                    mask: Any = _FROM_EXPLORER, values: Mapping[str, Any] | None = None,
                    condition: str | Condition | None = None, channel: int | None = None,
                    show_ground_truth: bool = True, show_dice: bool = True, caption: bool | None = None,
                    name: str | None = None,
                    compare: Sequence | None = None, channels: Sequence[int] | None = None,
                    channels_note: str | None = None, layer: int = 0) -> Figure:
    """One explorer view as a figure: input, predicted mask over the input, and the conditioning.

    mask: the ground truth for this call (default: the explorer's sample mask, if any; None: none);
    `show_ground_truth=False` hides it. values: the controls' values as shown (marked on the input and
    written in the caption, with z); condition: a name or Condition (default: the model card's).
    channel: one INSIDE channel (its map and ellipse) instead of the mean and the strongest channels.
    caption: the z / values / Dice line (default: on when `values` or `condition` is given, so an old
    call draws what it drew). compare: another (explorer, prediction, name) triple: then both views
    are drawn side by side (`compare_figure`), this one named `name`. channels (and channels_note, the
    words for them): the INSIDE channels whose ellipses are drawn, e.g. the ones a page shows, instead of
    the strongest; layer: which conditioning layer is drawn (a multi-layer U-Net's).
    """
    if compare is not None:
        return compare_figure([(explorer, prediction, name or "A"), tuple(compare)], title=title,
                              width="double" if width == "single" else width, mask=mask, values=values,
                              condition=condition, show_ground_truth=show_ground_truth, show_dice=show_dice,
                              channels=channels, channels_note=channels_note)
    truth = getattr(explorer, "mask", None) if mask is _FROM_EXPLORER else mask
    truth = truth if show_ground_truth else None
    cond = _condition(explorer, condition)
    caption = (values is not None or condition is not None) if caption is None else caption
    panels = 2 + (1 if prediction.conditioning else 0)
    with paper_style():
        fig_width, _ = figure_size(width, 1.0)
        base_height = fig_width / panels * 1.18 + 0.12
        fig = Figure(figsize=(fig_width, base_height), layout="constrained")
        num_classes, drawn, text = _draw_view(fig, explorer, prediction, truth, cond, values, channel, show_dice,
                                              name, caption, channels, channels_note, layer)
        text = _caption_and_legend(fig, text, num_classes, drawn, fig_width)
        title = wrap_title(title, fig_width) if title else ""
        if title:
            fig.suptitle(title)
        # room for every line of the title and the caption, so the panels keep their size
        extra = 0.16 * max(title.count("\n"), 0) + (0.13 * (text.count("\n") + 1) + 0.04 if text else 0.0)
        fig.set_size_inches(fig_width, base_height + extra)
    return fig


def compare_figure(sides: Sequence, title: str | None = None, width: str | float = "double", *,
                   mask: Any = _FROM_EXPLORER, values: Mapping[str, Any] | None = None,
                   condition: str | Condition | None = None, show_ground_truth: bool = True,
                   show_dice: bool = True, channels: Sequence[int] | None = None,
                   channels_note: str | None = None) -> Figure:
    """Both sides of the Compare view side by side: `sides` = [(explorer, prediction, name), ...] (two).

    Each side shows its input, prediction (Dice against the ground truth) and conditioning; one caption
    under each gives z and the control values; `mask` (default: each explorer's) is drawn dashed. A side
    may carry a fourth element, its own (channels, note) to draw; `channels` / `channels_note`: the
    first side's, when it carries none.
    """
    sides = [tuple(side) for side in sides]
    if len(sides) < 2 or any(len(side) not in (3, 4) for side in sides):
        raise ValueError("a comparison needs two (explorer, prediction, name) triples")
    drawn_channels = [side[3] if len(side) == 4 else (channels, channels_note) if k == 0 else (None, None)
                      for k, side in enumerate(sides)]
    sides = [side[:3] for side in sides]
    with paper_style():
        fig_width, _ = figure_size(width, 1.0)
        panels = max(2 + (1 if p.conditioning else 0) for _, p, _ in sides)
        height = fig_width / len(sides) / panels * 1.25 + 0.55
        fig = Figure(figsize=(fig_width, height), layout="constrained")
        classes, any_truth = 1, False
        for sub, (explorer, prediction, name), (shown, note) in zip(fig.subfigures(1, len(sides)), sides,
                                                                     drawn_channels, strict=True):
            truth = getattr(explorer, "mask", None) if mask is _FROM_EXPLORER else mask
            truth = truth if show_ground_truth else None
            k, drawn, text = _draw_view(sub, explorer, prediction, truth, _condition(explorer, condition), values,
                                        None, show_dice, None, True, shown, note)
            if text:
                sub.supxlabel(wrap_title(text, fig_width / len(sides), SMALL_FONT_SIZE), fontsize=SMALL_FONT_SIZE)
            sub.suptitle(wrap_title(str(name), fig_width / len(sides)), fontweight="bold")
            classes, any_truth = max(classes, k), any_truth or drawn
        label_legend(fig, classes, loc="outside lower center", ground_truth=any_truth)
        if title:
            fig.suptitle(wrap_title(title, fig_width))
    return fig
