"""Export of the current view: a publication-style figure (inside_core.figures) as PNG or PDF bytes."""

from __future__ import annotations

import io

import matplotlib

from inside_core.explorer import Explorer, Prediction

MIME = {"png": "image/png", "pdf": "application/pdf", "json": "application/json"}


def figure_bytes(explorer: Explorer, prediction: Prediction, fmt: str, title: str | None = None) -> bytes:
    """The view as a figure file: input, predicted mask (ground truth dashed) and the conditioning.

    Drawn by `inside_core.figures.explorer_figure` and written by its `save_figure` (PNG at 300 dpi,
    PDF vector), so the dashboard's export matches the paper figures.
    """
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        matplotlib.use("Agg")  # the server has no display; figures are only ever written to bytes here
    import matplotlib.pyplot as plt

    from inside_core.figures import explorer_figure, save_figure

    figure = explorer_figure(explorer, prediction, title=title)
    try:
        buffer = io.BytesIO()
        save_figure(figure, buffer, format=fmt)
        return buffer.getvalue()
    finally:
        plt.close(figure)
