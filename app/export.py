"""Export of the current view: a publication-style figure (inside_core.figures) as PNG or PDF bytes."""

from __future__ import annotations

import io
from typing import Any

from inside_core.explorer import Explorer, Prediction

MIME = {"png": "image/png", "pdf": "application/pdf", "json": "application/json"}


def figure_bytes(explorer: Explorer, prediction: Prediction, fmt: str, title: str | None = None,
                 **view: Any) -> bytes:
    """The view as a figure file: input, predicted mask (ground truth dashed) and the conditioning.

    Drawn by `inside_core.figures.explorer_figure` and written by its `save_figure` (PNG at 300 dpi,
    PDF vector), so the dashboard's export matches the paper figures. (Those build Figure objects
    without pyplot, so nothing here needs a display or leaks figures between sessions.)

    `view` carries the view as shown to `explorer_figure`: `mask` (the ground truth, given per call:
    the Explorer holds none for the page), `values` and `condition` (z and the control values in the
    caption), `channel` (one INSIDE channel, or None for all), `show_ground_truth`, and `compare`
    (the other side's (explorer, prediction, name), with `name` this side's) for the Compare view.
    """
    from inside_core.figures import explorer_figure, save_figure

    buffer = io.BytesIO()
    save_figure(explorer_figure(explorer, prediction, title=title, **view), buffer, format=fmt)
    return buffer.getvalue()
