"""Export of the current view: a publication-style figure (inside_core.figures) as PNG or PDF bytes."""

from __future__ import annotations

import io

from inside_core.explorer import Explorer, Prediction

MIME = {"png": "image/png", "pdf": "application/pdf", "json": "application/json"}


def figure_bytes(explorer: Explorer, prediction: Prediction, fmt: str, title: str | None = None) -> bytes:
    """The view as a figure file: input, predicted mask (ground truth dashed) and the conditioning.

    Drawn by `inside_core.figures.explorer_figure` and written by its `save_figure` (PNG at 300 dpi,
    PDF vector), so the dashboard's export matches the paper figures. (Those build Figure objects
    without pyplot, so nothing here needs a display or leaks figures between sessions.)
    """
    from inside_core.figures import explorer_figure, save_figure

    buffer = io.BytesIO()
    save_figure(explorer_figure(explorer, prediction, title=title), buffer, format=fmt)
    return buffer.getvalue()
