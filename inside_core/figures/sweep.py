"""The sweep figure: one sample, one control of its condition swept over N values (columns): the mask,
and INSIDE's attention or Guide Me's map, as z moves. Sweep values and z come from the registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from inside_core.palette import ATTENTION_CMAP

from .conditioning import draw_attention_ellipses, draw_guideme_map, guideme_map, mean_attention
from .primitives import (
    bottom_colourbar,
    condition_marker,
    draw_condition_marker,
    draw_region_lines,
    image_grid,
    label_legend,
    number,
    overlay_mask,
    show_image,
    to_numpy,
)
from .samples import Row, condition_object, model_conditioning, model_name
from .style import paper_style

__all__ = ["sweep_values", "sweep_conditions", "default_sweep_values", "sweep_figure"]


def sweep_values(condition: Any, base_z: Any, variable: str, values: Sequence) -> list[dict]:
    """The control values of each swept value: the sample's (`values_from_z(base_z)`) with `variable`
    replaced. z = `condition.encode(**v)` and the marker `condition.marker(v)` follow from them."""
    condition = condition_object(condition)
    key = condition.sweep_key(variable)
    base = condition.values_from_z(to_numpy(base_z).astype(np.float64).ravel())
    return [{**base, key: value} for value in values]


def sweep_conditions(condition: Any, base_z: Any, variable: str, values: Sequence) -> tuple[list[np.ndarray], list]:
    """(zs, locations): z for each swept value (the registry's `sweep_z`), the other controls held at
    the sample's; locations (x, y) where a slider's position is not in z (the quadrant blend), else None."""
    condition = condition_object(condition)
    controls = sweep_values(condition, base_z, variable, values)
    zs = [condition.encode(**v) for v in controls]
    locations = []
    for v in controls:
        marker = condition.marker(v)
        locations.append(tuple(marker[0]) if marker is not None and marker[1] is None else None)
    return zs, locations


def default_sweep_values(condition: Any, variable: str, count: int = 6) -> list:
    """Evenly spaced values over the variable's sweep range (`Condition.sweep_values`; options of a select)."""
    condition = condition_object(condition)
    return condition.sweep_values(condition.sweep_key(variable), count)


def _value_title(condition, variable: str, value: Any) -> str:
    if isinstance(value, str):
        return condition.value_label(value)
    return f"{condition.control(variable).short} = {number(float(value))}"


def sweep_figure(model: Any, row: Row, variable: str, values: Sequence | None = None, width: str | float = "double",
                 condition: Any = None) -> Figure:
    """One sample, one control swept over N values (columns); `variable` is a control key or alias.

    Row 1: the predicted mask over the input (with the requested point and radius, or the slider's
    location, marked). Row 2 (INSIDE, Guide Me): INSIDE's mean attention on one colour scale with the
    strongest channels' centres and 1-σ ellipses, or Guide Me's α + β map.
    """
    from inside_core.explorer import Explorer, require_images

    require_images(model, "the sweep figure")
    condition = condition_object(condition, model)
    values = list(values) if values is not None else default_sweep_values(condition, variable)
    if not values:
        raise ValueError("a sweep needs at least one value")
    controls = sweep_values(condition, row.z, variable, values)
    explorer = Explorer(model, row.image, row.mask)
    predictions = explorer.sweep([condition.encode(**v) for v in controls])
    h, w = explorer.image_size
    kind = model_conditioning(model)
    show_conditioning = kind in ("inside", "guideme")
    num_classes = predictions[0].num_classes
    if kind == "inside":
        maps = [mean_attention(p.conditioning[0], h, w) for p in predictions]
        vmax = max(float(m.max()) for m in maps) or 1.0
    elif kind == "guideme":  # one symmetric scale for the whole row
        limit = max(float(np.abs(guideme_map(p.conditioning[0])).max()) for p in predictions) or 1.0
    n_rows = 2 if show_conditioning else 1
    bottom = 0.22 if show_conditioning or num_classes > 1 else 0.03
    with paper_style():
        fig, axes = image_grid(n_rows, len(values), width, left=0.2, bottom=bottom)
        artist = None
        for c, (value, shown, prediction) in enumerate(zip(values, controls, predictions, strict=True)):
            ax = axes[0, c]
            show_image(ax, explorer.image)
            overlay_mask(ax, prediction.labels, num_classes)
            marker = condition_marker(condition, values=shown)
            if marker is not None:
                draw_condition_marker(ax, condition, None, h, w, values=shown)
            ax.set_title(_value_title(condition, variable, value))
            if kind == "inside":
                ax = axes[1, c]
                show_image(ax, explorer.image)
                artist = ax.imshow(maps[c], cmap=ATTENTION_CMAP, vmin=0.0, vmax=vmax, alpha=0.75,
                                   interpolation="none")
                draw_attention_ellipses(ax, prediction.conditioning[0], h, w)
                draw_region_lines(ax, condition, h, w)
            elif kind == "guideme":
                artist = draw_guideme_map(axes[1, c], prediction.conditioning[0], h, w, limit=limit)
        axes[0, 0].set_ylabel(f"{model_name(model)} mask")
        if show_conditioning:
            axes[1, 0].set_ylabel("attention" if kind == "inside" else r"$\alpha + \beta$")
            bottom_colourbar(fig, axes[-1, -1], artist, "mean attention" if kind == "inside" else r"$\alpha+\beta$")
        if num_classes > 1:
            label_legend(fig, num_classes, loc="lower left", bbox_to_anchor=(axes[-1, 0].get_position().x0, 0.0))
    return fig
