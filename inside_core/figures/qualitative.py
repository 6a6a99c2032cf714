"""The qualitative figure: rows of samples; columns input, ground truth, each model's prediction (with its
Dice) and each INSIDE model's attention."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from inside_core.palette import ATTENTION_CMAP

from .conditioning import draw_attention_ellipses, mean_attention
from .primitives import (
    bottom_colourbar,
    corner_text,
    draw_condition_marker,
    draw_region_lines,
    image_grid,
    label_legend,
    overlay_mask,
    show_image,
)
from .samples import Row, condition_object, explore, model_conditioning, model_name
from .style import SMALL_FONT_SIZE, paper_style

__all__ = ["qualitative_figure"]


def qualitative_figure(models: Sequence, rows: Sequence[Row], width: str | float = "double",
                       names: Sequence[str] | None = None, show_dice: bool = True,
                       condition: Any = None) -> Figure:
    """Rows of samples; columns: input, ground truth, each model's prediction, INSIDE's attention.

    Every prediction comes from `Explorer(model, image, mask).update(z)`. The attention column (one
    per INSIDE model) shows the mean map (1/C) Σ_c a_c over the input, on one colour scale for the
    whole column, with the centres and 1-σ ellipses of the strongest channels (largest |1 + γ|·mass,
    `inside_core.attention`). With `show_dice`, each prediction's Dice (`inside_core.metrics`, through
    `Explorer.dice`) against the ground truth is printed in its corner.
    """
    models = list(models)
    if not models or not rows:
        raise ValueError("a qualitative figure needs at least one model and one sample")
    from inside_core.explorer import require_images

    for model in models:
        require_images(model, "the qualitative figure")
    names = list(names) if names is not None else [model_name(m) for m in models]
    condition = condition_object(condition, models[0])
    inside_models = [k for k, m in enumerate(models) if model_conditioning(m) == "inside"]
    results = [[explore(model, row) for model in models] for row in rows]
    num_classes = max(p.num_classes for line in results for _, p in line)
    attention_maps = {}
    for r, line in enumerate(results):
        for k in inside_models:
            explorer, prediction = line[k]
            h, w = explorer.image_size
            attention_maps[r, k] = mean_attention(prediction.conditioning[0], h, w)
    vmax = max((float(a.max()) for a in attention_maps.values()), default=1.0) or 1.0
    titles = ["Input", "Ground truth", *names]
    titles += [f"{names[k]} attention" if len(inside_models) > 1 else "INSIDE attention" for k in inside_models]
    legend_space = 0.22 if num_classes > 1 or inside_models else 0.03
    with paper_style():
        fig, axes = image_grid(len(rows), len(titles), width, left=0.2, bottom=legend_space)
        artist = None
        for r, (row, line) in enumerate(zip(rows, results, strict=True)):
            explorer = line[0][0]
            image = explorer.image
            h, w = explorer.image_size
            show_image(axes[r, 0], image)
            axes[r, 0].set_ylabel(row.label, fontsize=SMALL_FONT_SIZE)
            show_image(axes[r, 1], image)
            if explorer.mask is not None:
                overlay_mask(axes[r, 1], explorer.mask, num_classes)
            else:
                axes[r, 1].text(0.5, 0.5, "n/a", transform=axes[r, 1].transAxes, ha="center", va="center",
                                color="white")
            draw_condition_marker(axes[r, 1], condition, row.z, h, w)
            for k, (model_explorer, prediction) in enumerate(line):
                ax = axes[r, 2 + k]
                show_image(ax, model_explorer.image)
                overlay_mask(ax, prediction.labels, num_classes)
                dice = model_explorer.dice(prediction) if show_dice else None
                if dice is not None:
                    corner_text(ax, f"{dice:.2f}")
            for j, k in enumerate(inside_models):
                ax = axes[r, 2 + len(models) + j]
                model_explorer, prediction = line[k]
                show_image(ax, model_explorer.image)
                artist = ax.imshow(attention_maps[r, k], cmap=ATTENTION_CMAP, vmin=0.0, vmax=vmax, alpha=0.75,
                                   interpolation="none")
                draw_attention_ellipses(ax, prediction.conditioning[0], h, w)
                draw_region_lines(ax, condition, h, w)
        for c, title in enumerate(titles):
            axes[0, c].set_title(title)
        if inside_models and artist is not None:
            bottom_colourbar(fig, axes[-1, -1], artist, "mean attention")
        if num_classes > 1:
            label_legend(fig, num_classes, loc="lower left", bbox_to_anchor=(axes[-1, 0].get_position().x0, 0.0))
    return fig
