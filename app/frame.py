"""A frame: what the explorer shows for one set of control values, made by one recipe.

    frame = make_frame(explorer, prediction, condition, z_values, truth, base, FrameOptions(...))
    frame.jpeg, frame.caption, frame.dice, frame.gaussians

The page's answer to a control move and every picture made ahead for scrubbing (app/scrub.py) come from
`make_frame` (or `make_frames`, the same in batches): the same values, options and picture underneath give
the same bytes. A frame holds the picture (the prediction blended over `base`, the display picture of the
view's image, with the ground truth outlined when asked), the line under it (Dice against the ground
truth, or why there is none), the drawn INSIDE channels' Gaussians in the picture's pixels, and its caption.

Nothing here imports Streamlit or the page: the caller gives everything, so the recipe can be tested alone.
The ground truth only ever decides the outline and the Dice line; the model never sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app import plots
from inside_core import palette
from inside_core.explorer import Explorer, Prediction, channel_table, prepare_mask

DISPLAY_PIXELS = 400  # the page's picture: its longer side, in pixels
NO_GROUND_TRUTH = "No ground truth for this image."
# the Dice line's words (`dice_line`; the browser writes the same line from them: app/scrub.truth_part)
DICE_LEAD = "Dice against the ground truth: "
EMPTY_TRUTH = (" — the ground truth is empty here, so Dice is 1 only if nothing is predicted "
               "(the usual convention) and 0 otherwise")
MAX_CHANNELS = 16  # Gaussians travel with a frame only for a few drawn channels (not "all" of 64)
OVERLAY_KEY = ("yellow rings: the drawn channels' Gaussians (1σ) · dots: their means, "
               "red where γ > 0, blue where γ < 0")


@dataclass(frozen=True)
class FrameOptions:
    """How a frame is drawn: the ground truth outlined or not, the INSIDE channels whose Gaussians it
    carries (None: none) and their layer, and the JPEG's quality and chroma subsampling (0: none, 2: 4:2:0)."""

    outline_truth: bool = False
    channels: tuple[int, ...] | None = None
    layer: int = 0
    quality: int = 92
    subsampling: int = 0


@dataclass(frozen=True)
class Frame:
    """One frame, as the page and the browser show it."""

    jpeg: bytes
    caption: str  # above the line: "prediction", and whether the ground truth is outlined
    dice: str  # the Dice line (Markdown: bold only); "" without ground truth
    gaussians: list | None  # [cx, cy, rx, ry, gamma, marker] in the picture's pixels, or None
    prediction: Prediction
    # `labels_hash` of the picture's labels where they alone make it over its base (no ground truth outlined): the
    # browser keeps a mask it decoded with the same hash instead of repainting it (app/live_decoder.js)
    labels: str | None = None

    @property
    def data_uri(self) -> str:
        return plots.jpeg_uri(self.jpeg)

    @property
    def line(self) -> str:
        """The line under the picture: the Dice line, or that there is no ground truth."""
        return self.dice or NO_GROUND_TRUTH


def dice_line(explorer: Explorer, prediction: Prediction, truth: Any) -> str:
    """The Dice line under the mask (Markdown, our own text; "" without ground truth), with the score per
    structure where there are several and a word on an empty ground truth."""
    if truth is None:
        return ""
    truth = prepare_mask(truth, explorer.image_size)
    per_class = explorer.dice_per_class(prediction, truth)
    names = palette.label_names(prediction.num_classes)
    detail = "" if len(per_class) == 1 else " (" + ", ".join(
        f"{names.get(k, k)} {v:.2f}" for k, v in per_class.items()) + ")"
    text = f"{DICE_LEAD}**{np.mean(list(per_class.values())):.3f}**{detail}"
    return text + EMPTY_TRUTH if not np.asarray(truth).any() else text


def labels_hash(labels: np.ndarray) -> str:
    """Two 32-bit position-weighted sums of a picture's labels (h x w, 0..255) and its size, as text: what
    app/decode_core.js `labelsHash` gives for the same labels (a label changed anywhere changes both sums; two
    different label maps agree by chance with a probability of about 2^-64). Vectorised: ~2 ms at 400 x 400."""
    flat = np.ascontiguousarray(labels).reshape(-1).astype(np.uint64)
    index = np.arange(flat.size, dtype=np.uint64)
    mask = np.uint64(0xFFFFFFFF)
    first = (index * np.uint64(0x9E3779B1) + np.uint64(1)) & mask
    second = ((index + np.uint64(0x165667B1)) * np.uint64(0x85EBCA6B)) & mask
    a, b = int((flat * first).sum() & mask), int((flat * second).sum() & mask)
    return f"{a:08x}{b:08x}:{labels.shape[0]}x{labels.shape[1]}"


def picture_labels(prediction: Prediction, base: np.ndarray, truth: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The prediction over `base` (uint8 RGB at the display size), drawn from its probabilities upsampled
    (smooth outlines, not the model grid's stair steps), the ground truth outlined if given; and the labels
    (at the display size) it was drawn from."""
    size = base.shape[:2]
    labels = plots.smooth_labels(prediction.probabilities, size)
    shown = None if truth is None else plots.nearest_labels(np.asarray(truth), size)
    return plots.overlay(base, labels, shown), labels


def picture(prediction: Prediction, base: np.ndarray, truth: Any = None) -> np.ndarray:
    """The picture of `picture_labels`."""
    return picture_labels(prediction, base, truth)[0]


def _rounded(values: Any) -> list[float]:
    return [round(float(v), 2) for v in np.atleast_1d(values)]


def gaussians(prediction: Prediction, condition: Any, z_values: Mapping[str, Any], channels: Sequence[int] | None,
              layer: int, size: tuple[int, int]) -> list | None:
    """What the attention figure draws for this prediction: [cx, cy, rx, ry, gamma, marker] in pixels of an
    image of `size` (`plots.attention_points`; marker: [column, row, ring rx, ring ry] or None), or None
    (no INSIDE layer, or no fixed few channels)."""
    if channels is None or not prediction.conditioning or len(channels) > MAX_CHANNELS:
        return None
    params = prediction.conditioning[layer]
    if not hasattr(params, "mu_x"):
        return None
    points = plots.attention_points(channel_table(params), np.asarray(channels, dtype=int), size)
    marker = condition.marker(z_values)
    where = None if marker is None else [None if v is None else round(v, 2) for v in plots.marker_point(marker, *size)]
    return [*(_rounded(points[k]) for k in ("cx", "cy", "rx", "ry", "gamma")), where]


def overlay_spec(size: tuple[int, int]) -> dict:
    """How the browser draws a frame's Gaussians over its picture (app/live_overlay.js, protocol.OverlaySpec):
    the model's grid (h, w) they are in, and the palette's colours (those of the attention figure)."""
    return {"grid": [int(size[0]), int(size[1])], "ring": plots.ELLIPSE_COLOUR,
            "positive": palette.GAMMA_POSITIVE, "negative": palette.GAMMA_NEGATIVE,
            "marker": palette.MARKER_COLOUR, "key": OVERLAY_KEY}


def make_frame(explorer: Explorer, prediction: Prediction, condition: Any, z_values: Mapping[str, Any], truth: Any,
               base: np.ndarray, options: FrameOptions = FrameOptions()) -> Frame:
    """The frame of `prediction` (the explorer's answer for `z_values`): see the module's docstring."""
    outlined = options.outline_truth and truth is not None
    drawn, labels = picture_labels(prediction, base, truth if outlined else None)
    return Frame(plots.jpeg_bytes(drawn, quality=options.quality, subsampling=options.subsampling),
                 "prediction" + (" · ground truth outlined" if outlined else ""),
                 dice_line(explorer, prediction, truth),
                 gaussians(prediction, condition, z_values, options.channels, options.layer, explorer.image_size),
                 prediction, None if outlined else labels_hash(labels))


def make_frames(explorer: Explorer, condition: Any, z_values: Sequence[Mapping[str, Any]], truths: Sequence[Any],
                base: np.ndarray, options: FrameOptions = FrameOptions(), batch: int = 11) -> list[Frame]:
    """`make_frame` for many control values of one image: decoded `batch` at a time (bounded memory)."""
    frames: list[Frame] = []
    for start in range(0, len(z_values), batch):
        chunk = list(z_values[start:start + batch])
        predictions = explorer.sweep([condition.encode(**values) for values in chunk])
        frames += [make_frame(explorer, prediction, condition, values, truth, base, options)
                   for values, truth, prediction in zip(chunk, truths[start:start + batch], predictions, strict=True)]
    return frames
