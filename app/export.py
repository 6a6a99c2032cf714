"""Export of the current view: a publication-style figure (inside_core.figures) as PNG or PDF bytes, drawn
from exactly what the page shows (`ExportView`: the same prediction, ground truth toggle, control values,
conditioning layer and drawn channels, and both sides of Compare)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from inside_core.explorer import Explorer, Prediction

MIME = {"png": "image/png", "pdf": "application/pdf", "json": "application/json"}


@dataclass
class ExportView:
    """The view as the page last showed it (a few references, nothing computed until a button is clicked).

    `channels` / `channel`: the INSIDE channels whose ellipses the page draws (the picker's choice: the
    responsive few, the strongest few, all) or the one channel picked; `channels_note` the words for them;
    `compare`: the other side of Compare (name, explorer, prediction, channels, note)."""

    explorer: Explorer
    prediction: Prediction
    title: str
    name: str
    mask: Any = None
    values: dict[str, Any] = field(default_factory=dict)
    condition: str | None = None
    show_ground_truth: bool = False
    layer: int = 0
    channels: list[int] | None = None
    channel: int | None = None
    channels_note: str | None = None
    compare: tuple | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def figure_options(self) -> dict[str, Any]:
        """`inside_core.figures.explorer_figure`'s arguments for this view."""
        options = {"mask": self.mask, "values": self.values, "condition": self.condition, "channel": self.channel,
                   "show_ground_truth": self.show_ground_truth, "channels": self.channels,
                   "channels_note": self.channels_note, "layer": self.layer}
        if self.compare is not None:
            name, explorer, prediction, channels, note = self.compare
            options.update(compare=(explorer, prediction, name, (channels, note)), name=self.name)
        return options


def figure_bytes(explorer: Explorer, prediction: Prediction, fmt: str, title: str | None = None,
                 **view: Any) -> bytes:
    """The view as a figure file: input, predicted mask (ground truth dashed) and the conditioning.

    Drawn by `inside_core.figures.explorer_figure` and written by its `save_figure` (PNG at 300 dpi,
    PDF vector), so the dashboard's export matches the paper figures. (Those build Figure objects
    without pyplot, so nothing here needs a display or leaks figures between sessions.)

    `view`: `explorer_figure`'s keywords (`ExportView.figure_options`): `mask` (the ground truth, given
    per call: the Explorer holds none for the page), `values` and `condition` (z and the control values in
    the caption), `channels` / `channel` (the INSIDE channels drawn), `layer`, `show_ground_truth`, and
    `compare` (the other side) with `name` (this side's) for the Compare view.
    """
    from inside_core.figures import explorer_figure, save_figure

    buffer = io.BytesIO()
    save_figure(explorer_figure(explorer, prediction, title=title, **view), buffer, format=fmt)
    return buffer.getvalue()


def export_bytes(view: ExportView, fmt: str) -> bytes:
    """The figure file of an `ExportView`."""
    return figure_bytes(view.explorer, view.prediction, fmt, view.title, **view.figure_options())
