"""Publication figures: one style, one set of drawing primitives, deterministic files.

Everything that draws a mask, an INSIDE attention map or its Gaussians lives here, once; the
dashboard's export (`explorer_figure`), the notebooks and the `inside figures` command call it.

Style: `paper_style()` (8 pt text, 7 pt ticks, DejaVu Sans, TrueType fonts in PDF); widths
`WIDTHS` in inches (single = 3.5 in ~ 89 mm, double = 7.16 in ~ 182 mm, lncs = 4.8 in = 122 mm,
the MICCAI/LNCS text width). Colours are colour-blind safe: viridis for maps, Okabe-Ito for
categories (ACDC labels RV, MYO, LV; binary masks).

Coordinates (method.md): along an axis of n pixels, normalised t in [-1, 1] maps to the pixel
position p = (t + 1) n / 2 - 0.5 (0 = first pixel's centre) and a width s to s n / 2 pixels.

Figure kinds (each a function taking models and `Row`s, so tests pass tiny random models):
`qualitative_figure`, `sweep_figure`, `attention_figure`, `results_table`; `register` adds
`inside figures KIND --out FILE`, whose defaults are the shipped checkpoints and the bundled data.
Every prediction comes from `inside_core.explorer.Explorer`: one inference path for all views.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Figures are built as matplotlib.figure.Figure objects, never through pyplot: no backend is chosen
# (the notebooks keep their inline backend), no global figure registry grows in the dashboard's
# long-running process, and threads do not share state.
import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse, Patch

from inside_core.encoding import (
    CONDITION_VALUES,
    QUADRANTS,
    acdc_condition,
    one_hot,
    point_condition,
    quadrant_blend,
)
from inside_core.layers import FiLMParams, GuidingParams, InsideParams

__all__ = [
    "WIDTHS",
    "OKABE_ITO",
    "ACDC_LABELS",
    "ACDC_COLOURS",
    "MASK_COLOUR",
    "ATTENTION_CMAP",
    "FORMATS",
    "paper_style",
    "figure_size",
    "save_figure",
    "to_numpy_image",
    "show_image",
    "overlay_mask",
    "mean_attention",
    "draw_mean_attention",
    "draw_attention_ellipses",
    "draw_attention",
    "draw_guideme_map",
    "draw_film_bars",
    "draw_conditioning",
    "label_legend",
    "explorer_figure",
    "guideme_map",
    "attention_geometry",
    "quadrant_mass",
    "mask_statistics",
    "Row",
    "row_from_item",
    "describe_condition",
    "parse_condition",
    "draw_condition_marker",
    "qualitative_figure",
    "sweep_conditions",
    "default_sweep_values",
    "sweep_figure",
    "attention_figure",
    "results_table",
    "load_dataset",
    "default_checkpoints",
    "resolve_checkpoint",
    "default_sample_indices",
    "default_sweep_index",
    "write_table",
    "register",
]

# --------------------------------------------------------------------------------------------
# Style

WIDTHS = {"single": 3.5, "double": 7.16, "lncs": 4.8}
"""Figure widths in inches: one column / two columns of a two-column paper; LNCS (MICCAI) text width."""

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
ACDC_LABELS = ("RV", "MYO", "LV")  # label values 1, 2, 3 (0 is background)
ACDC_COLOURS = (OKABE_ITO["sky_blue"], OKABE_ITO["yellow"], OKABE_ITO["vermillion"])
MASK_COLOUR = OKABE_ITO["blue"]  # binary masks: contrasts with CLEVR-Seg's red, green and orange objects
CENTRE_COLOUR = OKABE_ITO["vermillion"]
ELLIPSE_COLOUR = "white"
ATTENTION_CMAP = "viridis"
PHASE_COLOURS = {"ED": OKABE_ITO["blue"], "ES": OKABE_ITO["vermillion"]}
CATEGORY_COLOURS = tuple(OKABE_ITO[k] for k in ("blue", "vermillion", "bluish_green", "reddish_purple",
                                                "orange", "sky_blue", "yellow"))

FONT_SIZE = 8.0
SMALL_FONT_SIZE = 7.0

PAPER_RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib: the same glyphs on every machine
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE,
    "axes.labelsize": FONT_SIZE,
    "axes.linewidth": 0.6,
    "axes.titlepad": 3.0,
    "axes.labelpad": 2.0,
    "xtick.labelsize": SMALL_FONT_SIZE,
    "ytick.labelsize": SMALL_FONT_SIZE,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.major.pad": 1.5,
    "ytick.major.pad": 1.5,
    "legend.fontsize": SMALL_FONT_SIZE,
    "legend.frameon": False,
    "legend.handlelength": 1.2,
    "legend.borderaxespad": 0.2,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.0,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "image.cmap": ATTENTION_CMAP,
    "image.interpolation": "nearest",
    "image.origin": "upper",
    "pdf.fonttype": 42,  # TrueType (Type 42): embedded, selectable, accepted by publishers
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # text stays <text>, editable in Inkscape/Illustrator
    "svg.hashsalt": "inside-explorer",  # fixed ids: the same figure gives the same SVG
    "mathtext.default": "regular",
}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Context manager: the one rcParams scheme of every figure (see `PAPER_RC`)."""
    with matplotlib.rc_context(PAPER_RC):
        yield


def figure_size(width: str | float, aspect: float) -> tuple[float, float]:
    """(width, height) in inches for a named or numeric width and height/width ratio `aspect`."""
    if isinstance(width, str):
        if width not in WIDTHS:
            raise ValueError(f"unknown width {width!r}; choose one of {', '.join(WIDTHS)}")
        inches = WIDTHS[width]
    else:
        inches = float(width)
        if inches <= 0:
            raise ValueError(f"the width must be positive, got {width}")
    return inches, inches * aspect


# --------------------------------------------------------------------------------------------
# Saving

FORMATS = ("pdf", "svg", "png")
MIN_DPI = 300
_FILE_MODE = 0o644

# Fixed metadata: no dates, no software stamps, so the same figure gives byte-identical files.
_METADATA = {
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
    "png": {"Software": None},
}


def save_figure(fig: Figure, path_or_buffer: str | os.PathLike | io.IOBase, format: str | None = None,
                dpi: int = MIN_DPI, preview: bool = False) -> None:
    """Write `fig` as PDF, SVG or PNG, the format taken from the file's suffix unless given.

    PDF: vector, TrueType (Type 42) fonts embedded, text selectable. SVG: vector, text kept as
    <text> elements in DejaVu Sans. PNG: raster at `dpi` >= 300, with the dpi recorded in the file.
    No dates or software versions are written, so equal figures give byte-identical files.
    Files are written atomically (temporary file, then rename). `preview=True` allows a lower dpi,
    for web pages such as the README (never for print).
    """
    is_path = isinstance(path_or_buffer, (str, os.PathLike))
    if format is None:
        if not is_path:
            raise ValueError("give format= when saving to a buffer")
        format = Path(path_or_buffer).suffix.lstrip(".")
    format = format.lower()
    if format not in FORMATS:
        raise ValueError(f"unsupported figure format {format!r}; use one of .pdf, .svg, .png")
    if dpi < MIN_DPI and not preview:
        raise ValueError(f"dpi must be at least {MIN_DPI} for print, got {dpi}")
    with paper_style():
        options = dict(format=format, dpi=dpi, metadata=_METADATA[format], facecolor="white")
        if not is_path:
            fig.savefig(path_or_buffer, **options)
            return
        path = Path(path_or_buffer)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{format}", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                fig.savefig(stream, **options)
            os.chmod(temporary, _FILE_MODE)  # mkstemp makes owner-only files; figures are meant to be shared
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


# --------------------------------------------------------------------------------------------
# Drawing primitives (the one implementation: the dashboard, notebooks and CLI use these)


def _numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def to_numpy_image(image) -> np.ndarray:
    """An image tensor/array (C, H, W), (H, W, C) or (H, W) as (H, W) grey or (H, W, 3) RGB floats."""
    image = _numpy(image).astype(np.float32)
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


def _clean_axes(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def show_image(ax: Axes, image, grey_window: tuple[float, float] | None = None) -> None:
    """Draw an image: RGB as is (clipped to [0, 1]); grey with a fixed window (default: its 1st-99th percentile)."""
    image = to_numpy_image(image)
    if image.ndim == 3:
        ax.imshow(np.clip(image, 0.0, 1.0), interpolation="none")
    else:
        low, high = grey_window if grey_window is not None else np.percentile(image, (1, 99))
        ax.imshow(image, cmap="gray", vmin=float(low), vmax=float(max(high, low + 1e-6)), interpolation="none")
    _clean_axes(ax)


def overlay_mask(ax: Axes, labels, num_classes: int = 1, alpha: float = 0.45, contour: bool = True,
                 colours: Sequence[str] | None = None) -> None:
    """Overlay a label map (H, W) on the current image: translucent fill plus an outline per label.

    `num_classes` is the model's K: 1 means a binary mask (drawn in `MASK_COLOUR`); otherwise labels
    1..K-1 take `colours` (default ACDC's RV, MYO, LV in Okabe-Ito colours); 0 is never drawn.
    """
    labels = _numpy(labels)
    if labels.ndim == 3:  # (1, H, W) mask
        labels = labels[0]
    labels = np.rint(labels).astype(np.int64)
    if colours is None:
        colours = (MASK_COLOUR,) if num_classes <= 1 else ACDC_COLOURS
    values = range(1, max(num_classes, 2))
    rgba = np.zeros(labels.shape + (4,), dtype=np.float32)
    for value in values:
        colour = to_rgba(colours[(value - 1) % len(colours)])
        rgba[labels == value] = (*colour[:3], alpha)
    ax.imshow(rgba, interpolation="none")
    if contour:
        for value in values:
            region = (labels == value).astype(np.float32)
            if region.any() and not region.all():
                ax.contour(region, levels=[0.5], colors=[colours[(value - 1) % len(colours)]], linewidths=0.6)
    ax.set_xlim(-0.5, labels.shape[1] - 0.5)
    ax.set_ylim(labels.shape[0] - 0.5, -0.5)
    _clean_axes(ax)


_OUTLINE_EFFECT = [patheffects.withStroke(linewidth=1.4, foreground="black")]  # white dashes readable anywhere


def label_legend(ax_or_fig, num_classes: int, loc: str = "lower center", ground_truth: bool = False,
                 **kwargs) -> None:
    """A legend of the ACDC labels (RV, MYO, LV) for multi-class masks (for binary masks: the
    prediction's colour, only when `ground_truth` adds the dashed ground-truth outline to explain)."""
    if num_classes <= 1:
        handles = [Patch(facecolor=MASK_COLOUR, edgecolor="none", alpha=0.6, label="prediction")]
    else:
        handles = [Patch(facecolor=ACDC_COLOURS[i % len(ACDC_COLOURS)], edgecolor="none",
                         label=ACDC_LABELS[i] if i < len(ACDC_LABELS) else f"label {i + 1}")
                   for i in range(num_classes - 1)]
    if ground_truth:
        handles.append(Line2D([], [], color="white", linestyle="--", linewidth=0.8, path_effects=_OUTLINE_EFFECT,
                              label="ground truth"))
    elif num_classes <= 1:
        return
    ax_or_fig.legend(handles=handles, loc=loc, ncol=len(handles), **{"handlelength": 2.0, **kwargs})


def _inside(params: InsideParams, index: int = 0) -> InsideParams:
    """Parameters of one sample as numpy-able (C,) tensors, from (B, C) or (C,) fields."""
    return params[index] if params.mu_x.dim() == 2 else params


def mean_attention(params: InsideParams, height: int, width: int) -> np.ndarray:
    """Mean over channels of INSIDE's attention, (1/C) sum_c a_c(i, j), at (height, width) pixels."""
    one = _inside(params)
    along_rows, along_cols = InsideParams(*(t.unsqueeze(0) for t in (
        one.mu_x, one.mu_y, one.sigma_x, one.sigma_y, one.gamma, one.beta))).attention_factors(height, width)
    # mean_c u_c v_c^T as one matrix product, (H, C) @ (C, W)
    rows, cols = along_rows[0].detach().cpu().double(), along_cols[0].detach().cpu().double()
    return (rows.T @ cols).numpy() / rows.shape[0]


def draw_mean_attention(ax: Axes, params: InsideParams, height: int, width: int, vmax: float | None = None,
                        cmap: str = ATTENTION_CMAP, alpha: float = 1.0):
    """The mean attention map as a heatmap over (height, width) pixels; returns the image artist.

    The colour scale runs from 0 to `vmax` (default: the map's maximum; pass a shared value to
    compare panels).
    """
    attention = mean_attention(params, height, width)
    vmax = (float(attention.max()) or 1.0) if vmax is None else vmax
    artist = ax.imshow(attention, cmap=cmap, vmin=0.0, vmax=vmax,
                       alpha=alpha, interpolation="none")
    _clean_axes(ax)
    return artist


def attention_geometry(params: InsideParams, height: int, width: int) -> dict[str, np.ndarray]:
    """Centres and 1-sigma half-widths of every channel's Gaussian, in pixels: keys x, y, sx, sy, gain.

    x = (mu_x + 1) W / 2 - 0.5, y = (mu_y + 1) H / 2 - 0.5, sx = sigma_x W / 2, sy = sigma_y H / 2;
    gain = |1 + gamma|, the channel's scale (a hint of how much the channel matters).
    """
    one = _inside(params)
    mu_x, mu_y, sigma_x, sigma_y, gamma = (_numpy(t).astype(np.float64) for t in (
        one.mu_x, one.mu_y, one.sigma_x, one.sigma_y, one.gamma))
    return {
        "x": (mu_x + 1) * width / 2 - 0.5,
        "y": (mu_y + 1) * height / 2 - 0.5,
        "sx": sigma_x * width / 2,
        "sy": sigma_y * height / 2,
        "gain": np.abs(1 + gamma),
    }


def draw_attention_ellipses(ax: Axes, params: InsideParams, height: int, width: int,
                            channels: Sequence[int] | None = None, max_channels: int | None = 16,
                            colour: str = ELLIPSE_COLOUR, centre_colour: str = CENTRE_COLOUR,
                            n_sigma: float = 1.0, linewidth: float = 0.5) -> list[int]:
    """Each channel's Gaussian as its centre (dot) and its n-sigma ellipse, in pixel coordinates.

    With `channels=None`, draws the `max_channels` channels of largest gain |1 + gamma| (all of them
    if None), so a 64-channel layer stays readable. Returns the channels drawn.
    """
    geometry = attention_geometry(params, height, width)
    if channels is None:
        order = np.argsort(-geometry["gain"], kind="stable")
        channels = sorted(order[: max_channels].tolist() if max_channels else order.tolist())
    for c in channels:
        ax.add_patch(Ellipse((geometry["x"][c], geometry["y"][c]), 2 * n_sigma * geometry["sx"][c],
                             2 * n_sigma * geometry["sy"][c], fill=False, edgecolor=colour,
                             linewidth=linewidth, alpha=0.8))
    ax.scatter(geometry["x"][channels], geometry["y"][channels], s=5, c=centre_colour, edgecolors=colour,
               linewidths=0.3, zorder=3)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    return list(channels)


def draw_attention(ax: Axes, params: InsideParams, height: int, width: int, image=None,
                   max_channels: int | None = 16, vmax: float | None = None):
    """INSIDE's attention panel: the mean map (over a faint copy of `image` if given) with centres and ellipses."""
    if image is not None:
        show_image(ax, image)
        artist = draw_mean_attention(ax, params, height, width, vmax=vmax, alpha=0.75)
    else:
        artist = draw_mean_attention(ax, params, height, width, vmax=vmax)
    draw_attention_ellipses(ax, params, height, width, max_channels=max_channels)
    return artist


def guideme_map(params: GuidingParams) -> np.ndarray:
    """Guide Me's additive map alpha_h + beta_w of one sample, (h, w) at the feature grid's size."""
    return _numpy(params.spatial_map()[0] if params.alpha.dim() == 2 else params.alpha[:, None] + params.beta[None, :])


def draw_guideme_map(ax: Axes, params: GuidingParams, height: int, width: int, cmap: str = "cividis",
                     limit: float | None = None):
    """Guide Me's additive spatial map alpha_h + beta_w, stretched from the feature grid to the image,
    on a symmetric colour scale [-limit, limit] (default: the map's largest magnitude)."""
    spatial = guideme_map(params)
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    limit = (float(np.abs(spatial).max()) or 1.0) if limit is None else limit
    artist = ax.imshow(spatial, cmap=cmap, vmin=-limit, vmax=limit, extent=extent, interpolation="nearest")
    _clean_axes(ax)
    return artist


def draw_film_bars(ax: Axes, params: FiLMParams, max_channels: int = 64) -> None:
    """FiLM's per-channel scale gamma and shift beta as bars (channels along x)."""
    one = params[0] if params.gamma.dim() == 2 else params
    gamma, beta = _numpy(one.gamma)[:max_channels], _numpy(one.beta)[:max_channels]
    channels = np.arange(len(gamma))
    ax.bar(channels - 0.2, gamma, width=0.4, color=OKABE_ITO["blue"], label=r"$\gamma$")
    ax.bar(channels + 0.2, beta, width=0.4, color=OKABE_ITO["orange"], label=r"$\beta$")
    ax.axhline(0.0, color="black", linewidth=0.4)
    ax.set_xlabel("channel")
    ax.set_xlim(-1, len(gamma))
    low, high = min(gamma.min(), beta.min(), 0.0), max(gamma.max(), beta.max(), 0.0)
    ax.set_ylim(low - 0.05 * (high - low), high + 0.4 * (high - low))  # headroom for the legend
    ax.legend(loc="upper right", ncol=2, handlelength=0.8, columnspacing=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def draw_conditioning(ax: Axes, params, height: int, width: int, image=None):
    """Draw whatever one conditioning layer's parameters show; returns a colour-mappable artist or None."""
    if isinstance(params, InsideParams):
        return draw_attention(ax, params, height, width, image=image)
    if isinstance(params, GuidingParams):
        return draw_guideme_map(ax, params, height, width)
    if isinstance(params, FiLMParams):
        draw_film_bars(ax, params)
        return None
    raise TypeError(f"cannot draw conditioning parameters of type {type(params).__name__}")


_CONDITIONING_TITLES = {InsideParams: "INSIDE attention", GuidingParams: r"Guide Me $\alpha+\beta$",
                        FiLMParams: r"FiLM $\gamma$, $\beta$"}


# --------------------------------------------------------------------------------------------
# One explorer view (the dashboard's export)


def _explorer_image(explorer) -> np.ndarray:
    for name in ("image", "input", "x"):
        if getattr(explorer, name, None) is not None:
            image = _numpy(getattr(explorer, name))
            return image[0] if image.ndim == 4 else image
    raise AttributeError("the explorer has no image attribute")


def _num_classes(prediction) -> int:
    return int(_numpy(prediction.probabilities).shape[0])


def explorer_figure(explorer, prediction, title: str | None = None, width: str | float = "single") -> Figure:
    """One explorer view as a figure: input, predicted mask over the input, and the conditioning.

    The third panel shows INSIDE's mean attention with each Gaussian's centre and 1-sigma ellipse,
    Guide Me's additive map alpha + beta, or FiLM's gamma and beta bars (no panel for the baseline).
    If the explorer has a ground-truth mask, its outline is drawn dashed over the prediction.
    """
    image = _explorer_image(explorer)
    shown = to_numpy_image(image)
    height, width_px = shown.shape[:2]
    num_classes = _num_classes(prediction)
    conditioning = list(prediction.conditioning or [])
    panels = 2 + (1 if conditioning else 0)
    with paper_style():
        fig_width, _ = figure_size(width, 1.0)
        fig = Figure(figsize=(fig_width, fig_width / panels * 1.18 + 0.12), layout="constrained")
        axes = fig.subplots(1, panels)
        show_image(axes[0], image)
        axes[0].set_title("Input")
        show_image(axes[1], image)
        overlay_mask(axes[1], prediction.labels, num_classes)
        mask = getattr(explorer, "mask", None)
        if mask is not None:
            _outline(axes[1], mask, num_classes)
        axes[1].set_title("Prediction")
        if conditioning:
            params = conditioning[0]
            if hasattr(params, "detach"):
                params = params.detach()
            draw_conditioning(axes[2], params, height, width_px, image=image)
            axes[2].set_title(_CONDITIONING_TITLES.get(type(params), "Conditioning"))
        label_legend(fig, num_classes, loc="outside lower center", ground_truth=mask is not None)
        if title:
            fig.suptitle(title)
    return fig


def _outline(ax: Axes, labels, num_classes: int) -> None:
    """Ground truth as dashed outlines (so it reads over a filled prediction)."""
    labels = _numpy(labels)
    if labels.ndim == 3:
        labels = labels[0]
    labels = np.rint(labels).astype(np.int64)
    for value in range(1, max(num_classes, 2)):
        region = (labels == value).astype(np.float32)
        if region.any() and not region.all():
            contours = ax.contour(region, levels=[0.5], colors=["white"], linewidths=0.7, linestyles="dashed")
            contours.set_path_effects(_OUTLINE_EFFECT)



# --------------------------------------------------------------------------------------------
# Rows, conditions and names shared by the figure kinds

MODEL_NAMES = {"none": "Baseline", "film": "FiLM", "guideme": "Guide Me", "inside": "INSIDE"}
COND_DIM_CONDITIONS = {4: "quadrant", 3: "point", 2: "phase_slice"}
SWEEP_VARIABLES = {
    "quadrant": ("x", "y"), "point": ("x", "y", "r"), "phase_slice": ("phase", "slice"),
    "colour": ("value",), "shape": ("value",), "size": ("value",),
}


@dataclass
class Row:
    """One sample to draw: image (C, H, W), conditioning z (D,), ground truth (or None), a short label."""

    image: Any
    z: np.ndarray
    mask: Any = None
    label: str = ""


def model_conditioning(model) -> str:
    """"none", "film", "guideme" or "inside": the model's conditioning (from its card or config)."""
    card = getattr(model, "card", None) or {}
    config = getattr(model, "config", None) or {}
    return str(card.get("conditioning") or config.get("conditioning") or "none")


def model_name(model) -> str:
    """The name a paper uses for a model: Baseline, FiLM, Guide Me, INSIDE."""
    return MODEL_NAMES.get(model_conditioning(model), model_conditioning(model))


def model_condition(model) -> str:
    """The model's condition ("quadrant", "point", "phase_slice", ...): its card's, else from its z size."""
    card = getattr(model, "card", None) or {}
    if card.get("condition"):
        return str(card["condition"])
    cond_dim = int(getattr(model, "cond_dim", 0) or (getattr(model, "config", None) or {}).get("cond_dim", 4))
    return COND_DIM_CONDITIONS.get(cond_dim, "quadrant")


def _minus(text: str) -> str:
    return text.replace("-", "\N{MINUS SIGN}")


def _number(value: float, digits: int = 2) -> str:
    return _minus(f"{value:.{digits}f}")


def describe_condition(condition: str, z) -> str:
    """A short label of z for a figure, e.g. "top left", "(0.31, −0.20), r 0.40", "ES, slice 0.50"."""
    z = _numpy(z).astype(np.float64).ravel()
    if condition in CONDITION_VALUES:
        values = CONDITION_VALUES[condition]
        if np.isclose(z.max(), 1.0) and np.isclose(z.sum(), 1.0):
            return values[int(z.argmax())].replace("_", " ")
        top = np.argsort(-z, kind="stable")[:2]
        return " / ".join(f"{values[k].replace('_', ' ')} {z[k]:.2f}" for k in top if z[k] > 0)
    if condition == "point":
        return f"({_number(z[0])}, {_number(z[1])}), r {_number(z[2])}"
    if condition == "phase_slice":
        phase = {0.0: "ED", 1.0: "ES"}.get(round(float(z[0]), 6), f"phase {z[0]:.2f}")
        return f"{phase}, slice {z[1]:.2f}"
    return ", ".join(_number(v) for v in z)


def parse_condition(condition: str, text: str) -> np.ndarray:
    """z from a command-line value: a value name (top_left, orange, ...) for one-hot conditions;
    "x,y,r" for point; "phase,slice" for ACDC (phase may be ED or ES); "x,y" (a location) for quadrant."""
    text = text.strip()
    if condition in CONDITION_VALUES and text in CONDITION_VALUES[condition]:
        return one_hot(condition, text)
    parts = [p.strip() for p in text.split(",")]
    try:
        if condition == "phase_slice" and len(parts) == 2:
            phase = {"ED": 0.0, "ES": 1.0}.get(parts[0].upper())
            return acdc_condition(float(parts[0]) if phase is None else phase, float(parts[1]))
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if condition == "point" and len(numbers) == 3:
        return point_condition(*numbers)
    if condition == "quadrant" and len(numbers) == 2:
        return quadrant_blend(*numbers)
    expected = {"point": "x,y,r", "phase_slice": "phase,slice (e.g. ES,0.5)",
                "quadrant": f"one of {', '.join(QUADRANTS)} or a location x,y"}.get(
        condition, "one of " + ", ".join(CONDITION_VALUES.get(condition, ())))
    raise ValueError(f"cannot read condition {text!r} for {condition}: expected {expected}")


def sample_label(condition: str, item: dict) -> str:
    """A row label for a dataset item: its condition value (ACDC: its phase and slice position)."""
    return describe_condition(condition, item["z"])


def row_from_item(condition: str, item: dict) -> Row:
    return Row(image=item["image"], z=_numpy(item["z"]).astype(np.float32), mask=item.get("mask"),
               label=sample_label(condition, item))


def _explore(model, row: Row):
    """(explorer, prediction) for one row: the Explorer is the one inference path."""
    from inside_core.explorer import Explorer

    explorer = Explorer(model, row.image, row.mask)
    return explorer, explorer.update(row.z if getattr(model, "conditioned", True) else None)


def _image_grid(n_rows: int, n_cols: int, width: str | float, left: float = 0.18, right: float = 0.02,
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
        _clean_axes(ax)
    return fig, axes


def _corner_text(ax: Axes, text: str) -> None:
    ax.text(0.97, 0.04, text, transform=ax.transAxes, ha="right", va="bottom", color="white",
            fontsize=SMALL_FONT_SIZE, bbox=dict(boxstyle="square,pad=0.15", facecolor="black", alpha=0.55,
                                                edgecolor="none"))


def _quadrant_lines(ax: Axes, height: int, width: int) -> None:
    """The image's centre lines (dotted), which separate the quadrants."""
    ax.axhline(height / 2 - 0.5, color="white", linewidth=0.5, linestyle=":")
    ax.axvline(width / 2 - 0.5, color="white", linewidth=0.5, linestyle=":")


def draw_condition_marker(ax: Axes, condition: str, z, height: int, width: int,
                          location: tuple[float, float] | None = None) -> None:
    """Mark where z points: for point conditioning its centre (+) and radius (dashed circle); for a
    location slider (quadrant blend) the slider's position. Coordinates are normalised (method.md)."""
    z = _numpy(z).astype(np.float64).ravel()
    if condition == "point":
        location, radius = (z[0], z[1]), z[2]
    else:
        radius = None
    if location is None:
        return
    column = (location[0] + 1) * width / 2 - 0.5
    row = (location[1] + 1) * height / 2 - 0.5
    outline = [patheffects.withStroke(linewidth=1.8, foreground="black")]  # readable on any background
    ax.plot([column], [row], marker="+", markersize=6, markeredgewidth=1.0, color="white", path_effects=outline)
    if radius is not None:
        ax.add_patch(Ellipse((column, row), radius * width, radius * height, fill=False, edgecolor="white",
                             linestyle=(0, (3, 2)), linewidth=0.8, path_effects=outline))


# --------------------------------------------------------------------------------------------
# Kind: qualitative


def qualitative_figure(models: Sequence, rows: Sequence[Row], width: str | float = "double",
                       names: Sequence[str] | None = None, show_dice: bool = True,
                       condition: str | None = None) -> Figure:
    """Rows of samples; columns: input, ground truth, each model's prediction, INSIDE's attention.

    Every prediction comes from `Explorer(model, image, mask).update(z)`. The attention column (one
    per INSIDE model) shows the mean map (1/C) sum_c a_c over the input, on one colour scale for the
    whole column, with the centres and 1-sigma ellipses of the channels of largest gain |1 + gamma|.
    With `show_dice`, each prediction's Dice against the ground truth is printed in its corner.
    """
    models = list(models)
    if not models or not rows:
        raise ValueError("a qualitative figure needs at least one model and one sample")
    names = list(names) if names is not None else [model_name(m) for m in models]
    condition = condition or model_condition(models[0])
    inside_models = [k for k, m in enumerate(models) if model_conditioning(m) == "inside"]
    results = [[_explore(model, row) for model in models] for row in rows]
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
        fig, axes = _image_grid(len(rows), len(titles), width, left=0.2, bottom=legend_space)
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
                    _corner_text(ax, f"{dice:.2f}")
            artist = None
            for j, k in enumerate(inside_models):
                ax = axes[r, 2 + len(models) + j]
                model_explorer, prediction = line[k]
                show_image(ax, model_explorer.image)
                artist = ax.imshow(attention_maps[r, k], cmap=ATTENTION_CMAP, vmin=0.0, vmax=vmax, alpha=0.75,
                                   interpolation="none")
                draw_attention_ellipses(ax, prediction.conditioning[0], h, w)
                if condition == "quadrant":
                    _quadrant_lines(ax, h, w)
        for c, title in enumerate(titles):
            axes[0, c].set_title(title)
        if inside_models and artist is not None:
            _bottom_colourbar(fig, axes[-1, -1], artist, "mean attention")
        if num_classes > 1:
            label_legend(fig, num_classes, loc="lower left", bbox_to_anchor=(axes[-1, 0].get_position().x0, 0.0))
    return fig


def _bottom_colourbar(fig: Figure, ax: Axes, artist, label: str) -> None:
    """A thin horizontal colour bar under `ax` (in the figure's bottom margin)."""
    box = ax.get_position()
    fig_height = fig.get_size_inches()[1]
    bar = fig.add_axes((box.x0 + 0.1 * box.width, box.y0 - 0.1 / fig_height, 0.8 * box.width, 0.045 / fig_height))
    colourbar = fig.colorbar(artist, cax=bar, orientation="horizontal")
    colourbar.outline.set_linewidth(0.4)
    low, high = artist.norm.vmin, artist.norm.vmax
    ticks = [low, 0.0, high] if low < 0 else [0.0, high]
    colourbar.set_ticks(ticks)
    colourbar.set_ticklabels([_number(t) if t else "0" for t in ticks])
    colourbar.ax.tick_params(labelsize=SMALL_FONT_SIZE - 1, length=1.5, pad=1)
    bar.text(-0.04, 0.5, label, transform=bar.transAxes, ha="right", va="center", fontsize=SMALL_FONT_SIZE - 1)


# --------------------------------------------------------------------------------------------
# Kind: sweep


def sweep_conditions(condition: str, base_z, variable: str, values: Sequence) -> tuple[list[np.ndarray], list]:
    """z for each swept value, the other conditioning variables held at the sample's.

    quadrant: a location slider (x or y in [-1, 1]) blended between quadrants (quadrant_blend), the
    other coordinate at the centre of the sample's quadrant; point: x, y or r replaced; ACDC: phase
    or slice replaced; one-hot conditions: variable "value" runs over the value names.
    Returns (zs, locations) with locations (x, y) for a location slider, else None per z.
    """
    base = _numpy(base_z).astype(np.float64).ravel()
    allowed = SWEEP_VARIABLES.get(condition, ())
    if variable not in allowed:
        raise ValueError(f"cannot sweep {variable!r} for condition {condition}; choose one of {', '.join(allowed)}")
    zs, locations = [], []
    if condition == "quadrant":
        quadrant = QUADRANTS[int(base.argmax())]
        centre = [0.5 if "right" in quadrant else -0.5, 0.5 if "bottom" in quadrant else -0.5]
        for value in values:
            location = list(centre)
            location["xy".index(variable)] = float(value)
            zs.append(quadrant_blend(*location))
            locations.append(tuple(location))
        return zs, locations
    if condition in CONDITION_VALUES:
        return [one_hot(condition, str(v)) for v in values], [None] * len(values)
    index = {"point": {"x": 0, "y": 1, "r": 2}, "phase_slice": {"phase": 0, "slice": 1}}[condition][variable]
    for value in values:
        z = base.copy()
        z[index] = float(value)
        zs.append(z.astype(np.float32))
        locations.append(None)
    return zs, locations


def default_sweep_values(condition: str, variable: str, count: int = 6) -> list:
    """Evenly spaced values over the variable's range (its value names for one-hot conditions)."""
    if variable == "value":
        return list(CONDITION_VALUES[condition])
    low, high = {"x": (-0.75, 0.75), "y": (-0.75, 0.75), "r": (0.2, 0.6), "phase": (0.0, 1.0),
                 "slice": (0.0, 1.0)}[variable]
    return [float(v) for v in np.linspace(low, high, count)]


def _value_title(variable: str, value) -> str:
    if isinstance(value, str):
        return value.replace("_", " ")
    symbol = {"x": "x", "y": "y", "r": "r", "phase": "phase", "slice": "slice"}[variable]
    return f"{symbol} = {_number(float(value))}"


def sweep_figure(model, row: Row, variable: str, values: Sequence | None = None, width: str | float = "double",
                 condition: str | None = None) -> Figure:
    """One sample, one conditioning variable swept over N values (columns).

    Row 1: the predicted mask over the input (with the requested point and radius, or the slider's
    location, marked in orange). Row 2 (conditioned models): INSIDE's mean attention on one colour
    scale with centres and 1-sigma ellipses, or Guide Me's alpha + beta map.
    """
    condition = condition or model_condition(model)
    values = list(values) if values is not None else default_sweep_values(condition, variable)
    if not values:
        raise ValueError("a sweep needs at least one value")
    zs, locations = sweep_conditions(condition, row.z, variable, values)
    from inside_core.explorer import Explorer

    explorer = Explorer(model, row.image, row.mask)
    predictions = explorer.sweep(zs)
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
        fig, axes = _image_grid(n_rows, len(values), width, left=0.2, bottom=bottom)
        artist = None
        for c, (value, z, location, prediction) in enumerate(zip(values, zs, locations, predictions, strict=True)):
            ax = axes[0, c]
            show_image(ax, explorer.image)
            overlay_mask(ax, prediction.labels, num_classes)
            draw_condition_marker(ax, condition, z, h, w, location=location)
            ax.set_title(_value_title(variable, value))
            if kind == "inside":
                ax = axes[1, c]
                show_image(ax, explorer.image)
                artist = ax.imshow(maps[c], cmap=ATTENTION_CMAP, vmin=0.0, vmax=vmax, alpha=0.75,
                                   interpolation="none")
                draw_attention_ellipses(ax, prediction.conditioning[0], h, w)
                if condition == "quadrant":
                    _quadrant_lines(ax, h, w)
            elif kind == "guideme":
                artist = draw_guideme_map(axes[1, c], prediction.conditioning[0], h, w, limit=limit)
        axes[0, 0].set_ylabel(f"{model_name(model)} mask")
        if show_conditioning:
            axes[1, 0].set_ylabel("attention" if kind == "inside" else r"$\alpha + \beta$")
            _bottom_colourbar(fig, axes[-1, -1], artist, "mean attention" if kind == "inside" else r"$\alpha+\beta$")
        if num_classes > 1:
            label_legend(fig, num_classes, loc="lower left", bbox_to_anchor=(axes[-1, 0].get_position().x0, 0.0))
    return fig


# --------------------------------------------------------------------------------------------
# Kind: attention (the Gaussians over a dataset as the conditioning varies)


def _inside_layer_params(predictions, layer: int) -> dict[str, np.ndarray]:
    """Stack one INSIDE layer's parameters over predictions: each key (N, C)."""
    params = [p.conditioning[layer] for p in predictions]
    if not params or not isinstance(params[0], InsideParams):
        raise ValueError(f"conditioning layer {layer} is not an INSIDE layer: the attention figure needs INSIDE")
    names = ("mu_x", "mu_y", "sigma_x", "sigma_y", "gamma")
    return {n: np.concatenate([_numpy(getattr(p, n)).reshape(1, -1) for p in params]).astype(np.float64)
            for n in names}


def mask_statistics(mask) -> tuple[float, float, float, float] | None:
    """Centroid (x, y) and standard deviations (sx, sy) of a mask's foreground (labels > 0), in
    normalised coordinates; None for an empty mask. A Gaussian fitted to the mask has these mu, sigma."""
    labels = _numpy(mask)
    if labels.ndim == 3:
        labels = labels[0]
    rows, cols = np.nonzero(labels > 0.5)
    if rows.size == 0:
        return None
    height, width = labels.shape
    x = (2 * cols + 1) / width - 1
    y = (2 * rows + 1) / height - 1
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
    low, high = max(centre - span / 2, bounds[0]), min(centre + span / 2, bounds[1])
    ax.set_ylim(low, high)


def _plot_axes_style(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, linewidth=0.3, alpha=0.5)


def attention_figure(model, rows: Sequence[Row], width: str | float = "double", condition: str | None = None,
                     layer: int = 0, grid_points: int = 41) -> Figure:
    """INSIDE's Gaussians over a dataset as the conditioning varies: did the network learn where z points?

    The hypernetwork's mu and sigma depend on z only, so each panel plots them against the
    conditioning variable (lines: mean over channels; bands: the channels' interquartile range) next
    to what the data say (dots: the ground-truth foreground's centroid and spread, in the same
    normalised units, for every sample in `rows`).

    - ACDC (phase_slice): mu_x, mu_y and sigma against slice position, ED and ES;
    - point: mu_x against the requested x, mu_y against y, sigma against r (identity dashed);
    - one-hot conditions (quadrant ...): every channel's centre in the image frame per value, and
      the channels' sigma per value.
    """
    condition = condition or model_condition(model)
    if model_conditioning(model) != "inside":
        raise ValueError(f"the attention figure needs an INSIDE model, got {model_name(model)}")
    if not rows:
        raise ValueError("the attention figure needs at least one sample")
    from inside_core.explorer import Explorer

    explorer = Explorer(model, rows[0].image)  # mu, sigma depend on z only: one image serves every z
    zs = np.stack([_numpy(r.z).astype(np.float32).ravel() for r in rows])
    stats = [mask_statistics(r.mask) if r.mask is not None else None for r in rows]
    with paper_style():
        if condition == "phase_slice":
            fig = _attention_acdc(explorer, zs, stats, width, layer, grid_points)
        elif condition == "point":
            fig = _attention_point(explorer, zs, stats, width, layer)
        elif condition in CONDITION_VALUES:
            fig = _attention_categorical(explorer, zs, stats, width, layer, condition)
        else:
            raise ValueError(f"no attention figure for condition {condition!r}")
    return fig


STRONGEST_CHANNELS = 6


def _attention_acdc(explorer, zs, stats, width, layer, grid_points) -> Figure:
    positions = np.linspace(0.0, 1.0, grid_points)
    fig = Figure(figsize=figure_size(width, 0.3), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (("mu_x", r"$\mu_x$", 0), ("mu_y", r"$\mu_y$", 1), ("sigma", r"$\sigma$ (mean of x, y)", None))
    for phase_value, phase in ((0.0, "ED"), (1.0, "ES")):
        grid = [acdc_condition(phase_value, float(s)) for s in positions]
        params = _inside_layer_params(explorer.sweep(grid), layer)
        params["sigma"] = (params["sigma_x"] + params["sigma_y"]) / 2
        # the channels that matter most to the decoder's input: largest gain |1 + gamma| (mean over the grid)
        strongest = np.argsort(-np.abs(1 + params["gamma"]).mean(axis=0), kind="stable")[:STRONGEST_CHANNELS]
        in_phase = [k for k, z in enumerate(zs) if abs(z[0] - phase_value) < 0.5 and stats[k] is not None]
        for ax, (key, label, stat) in zip(axes, panels, strict=True):
            _band(ax, positions, params[key], PHASE_COLOURS[phase], f"channel mean, {phase}", strongest,
                  f"{STRONGEST_CHANNELS} channels of largest gain, {phase}")
            if in_phase:
                truth = [stats[k][stat] if stat is not None else (stats[k][2] + stats[k][3]) / 2 for k in in_phase]
                ax.scatter(zs[in_phase, 1], truth, s=4, color=PHASE_COLOURS[phase], alpha=0.6, linewidths=0,
                           marker="o", label=f"ground-truth heart, {phase}")
            ax.set_ylabel(label)
    for ax in axes:
        ax.set_xlabel("slice position (0 base, 1 apex)")
        ax.set_xlim(0, 1)
        _plot_axes_style(ax)
    for ax in axes[:2]:
        _fit_limits(ax, minimum_span=0.5, bounds=(-1.0, 1.0))
    axes[2].set_ylim(bottom=0)
    handles, labels = axes[0].get_legend_handles_labels()
    # legend columns: mean, channels, ground truth; rows: ED, ES
    order = sorted(range(len(labels)), key=lambda i: (("mean" not in labels[i]) + ("ground" in labels[i]) * 2,
                                                       labels[i].endswith("ES")))
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside lower center", ncol=3)
    return fig


def _attention_point(explorer, zs, stats, width, layer) -> Figure:
    """Point conditioning: each channel's mu against the requested point (identity dashed), sigma
    against the requested radius; the channel mean (dots, IQR bars) and the strongest channels."""
    del stats  # the requested point is the ground truth here
    params = _inside_layer_params(explorer.sweep(list(zs)), layer)
    params["sigma"] = (params["sigma_x"] + params["sigma_y"]) / 2
    strongest = np.argsort(-np.abs(1 + params["gamma"]).mean(axis=0), kind="stable")[:STRONGEST_CHANNELS]
    fig = Figure(figsize=figure_size(width, 0.3), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (("mu_x", 0, r"requested $x$", r"$\mu_x$"), ("mu_y", 1, r"requested $y$", r"$\mu_y$"),
              ("sigma", 2, r"requested radius $r$", r"$\sigma$ (mean of x, y)"))
    for ax, (key, index, xlabel, ylabel) in zip(axes, panels, strict=True):
        order = np.argsort(zs[:, index], kind="stable")
        values = params[key][order]
        requested = zs[order, index]
        # one dot per sample and strong channel: the samples' other coordinates differ, so no lines
        ax.scatter(np.repeat(requested, len(strongest)), values[:, strongest].ravel(), s=1.5, linewidths=0,
                   color=OKABE_ITO["orange"], alpha=0.7, label=f"{STRONGEST_CHANNELS} channels of largest gain")
        mean = values.mean(axis=1)
        low, high = np.percentile(values, (25, 75), axis=1)
        ax.errorbar(requested, mean, yerr=[mean - low, high - mean], fmt="o", markersize=2, elinewidth=0.3,
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


def quadrant_mass(attention: np.ndarray) -> np.ndarray:
    """Fraction of an attention map's mass in each quadrant, in the order of QUADRANTS, (4,).

    A pixel is in the top half if its centre lies above the image's centre line (row < H/2), in the
    left half if column < W/2: the rule that assigns CLEVR-Seg objects to quadrants.
    """
    height, width = attention.shape
    top, left = np.arange(height) < height / 2, np.arange(width) < width / 2
    total = float(attention.sum()) or 1.0
    regions = {"top_left": (top, left), "top_right": (top, ~left), "bottom_right": (~top, ~left),
               "bottom_left": (~top, left)}
    return np.array([attention[np.ix_(*regions[q])].sum() / total for q in QUADRANTS])


def _attention_categorical(explorer, zs, stats, width, layer, condition) -> Figure:
    """One mean-attention map per value (shared scale), and for quadrants the attention mass that
    falls in each quadrant (rows: the conditioned quadrant), else the channels' sigma per value.
    (Ground-truth statistics are not drawn: for a one-hot condition the value itself says where.)"""
    del zs, stats
    values = CONDITION_VALUES[condition]
    grid = [one_hot(condition, v) for v in values]
    predictions = explorer.sweep(grid)
    params = _inside_layer_params(predictions, layer)
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
        draw_attention_ellipses(ax, predictions[k].conditioning[layer], h, w)
        if condition == "quadrant":
            _quadrant_lines(ax, h, w)
        _clean_axes(ax)
        ax.set_title(value.replace("_", " "))
    if artist is not None:
        colourbar = fig.colorbar(artist, ax=fig.axes, location="bottom", shrink=0.5, aspect=40, pad=0.02)
        colourbar.set_label("mean attention", fontsize=SMALL_FONT_SIZE)
        colourbar.outline.set_linewidth(0.4)
    ax = fig.add_subplot(grid_spec[0, n])
    if condition == "quadrant":
        mass = np.stack([quadrant_mass(m) for m in maps])
        ax.imshow(mass, cmap="cividis", vmin=0.0, vmax=1.0)
        for (i, j), fraction in np.ndenumerate(mass):
            ax.text(j, i, f"{fraction:.2f}", ha="center", va="center", fontsize=SMALL_FONT_SIZE,
                    color="black" if fraction > 0.5 else "white")
        short = [q.replace("top_", "T").replace("bottom_", "B").replace("left", "L").replace("right", "R")
                 for q in QUADRANTS]
        ax.set_xticks(range(4), short)
        ax.set_yticks(range(4), short)
        ax.tick_params(length=0)
        ax.set_xlabel("quadrant of the image")
        ax.set_ylabel("conditioned on")
        ax.set_title("attention mass (chance 0.25)")
    else:
        rng = np.random.default_rng(0)  # fixed jitter: same inputs, same file
        for k in range(n):
            colour = CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)]
            for offset, key, marker in ((-0.15, "sigma_x", "o"), (0.15, "sigma_y", "s")):
                data = params[key][k]
                ax.scatter(k + offset + rng.uniform(-0.06, 0.06, size=data.size), data, s=3, color=colour,
                           marker=marker, alpha=0.7, linewidths=0)
        ax.set_xticks(range(n), [v.replace("_", " ") for v in values])
        ax.set_ylabel(r"$\sigma$ per channel (left: x, right: y)")
        ax.set_ylim(bottom=0)
        _plot_axes_style(ax)
    return fig


# --------------------------------------------------------------------------------------------
# Kind: table (`inside compare`'s table, as LaTeX booktabs and Markdown)


def _display_card(card: dict) -> dict:
    """A copy of a model card whose conditioning reads as in a paper (INSIDE, Guide Me, ...)."""
    conditioning = card.get("conditioning", "none")
    return {**card, "conditioning": MODEL_NAMES.get(conditioning, conditioning)}


def results_table(models: Sequence, data: str | os.PathLike | None = None, split: str = "test",
                  seed: int | None = None, use_card_metrics: bool = False) -> dict[str, str]:
    """{"latex": ..., "markdown": ...}: the comparison table of `inside compare` for loaded models.

    Each model is evaluated by `inside_core.evaluate.evaluate_model` on `data` (default: the bundled
    dataset of its card), or, with `use_card_metrics`, the metrics stored in its card are used as is.
    The table itself is `inside_core.evaluate.comparison_table`: one implementation for both commands.
    """
    from inside_core.evaluate import comparison_table, evaluate_model

    results = []
    for model in models:
        card = dict(getattr(model, "card", None) or {})
        if not card.get("name"):
            raise ValueError("every model in a table needs a card with a name (load it with load_checkpoint)")
        if use_card_metrics:
            metrics = card.get("metrics") or {}
            if "dice" not in metrics:
                raise ValueError(f"the card of {card['name']} holds no test metrics; drop --use-card-metrics")
        else:
            root = data if data is not None else _default_data(card)
            metrics = evaluate_model(model, card, root, split, seed)
        results.append((_display_card(card), metrics))
    latex = comparison_table(results, "latex")
    latex = "% INSIDE Explorer comparison table; needs \\usepackage{booktabs}\n" + latex
    return {"latex": latex, "markdown": comparison_table(results, "markdown")}


# --------------------------------------------------------------------------------------------
# Bundled defaults: shipped checkpoints and the synthetic default data

DEFAULT_CHECKPOINT_DIR = "checkpoints"
DEFAULT_CHECKPOINTS = {
    "qualitative": ["clevr-seg-quadrant-baseline", "clevr-seg-quadrant-film", "clevr-seg-quadrant-guideme",
                    "clevr-seg-quadrant-inside"],
    "table": ["clevr-seg-quadrant-baseline", "clevr-seg-quadrant-film", "clevr-seg-quadrant-guideme",
              "clevr-seg-quadrant-inside"],
    "sweep": ["clevr-seg-point-inside"],
    "attention": ["acdc-phantom-inside"],
}
# if a kind's first choice is not shipped, the first of these that is
FALLBACK_CHECKPOINTS = {"sweep": ["clevr-seg-quadrant-inside", "acdc-phantom-inside"],
                        "attention": ["clevr-seg-point-inside", "clevr-seg-quadrant-inside"]}


def normalise_condition(condition: str) -> str:
    return "phase_slice" if condition in ("phase", "acdc", "phase_slice") else condition


def resolve_checkpoint(name: str | os.PathLike, directory: str | os.PathLike = DEFAULT_CHECKPOINT_DIR) -> Path:
    """A checkpoint given as a path (with or without suffix) or as a name in `directory`."""
    path = Path(name)
    for candidate in (path, Path(directory) / path):
        stem = candidate.with_suffix("") if candidate.suffix in (".safetensors", ".json") else candidate
        if stem.with_name(stem.name + ".safetensors").exists():
            return stem.with_name(stem.name + ".safetensors")
    raise FileNotFoundError(f"no checkpoint {name} (looked for {path}.safetensors and in {directory}/)")


def default_checkpoints(kind: str, directory: str | os.PathLike = DEFAULT_CHECKPOINT_DIR) -> list[Path]:
    """The shipped checkpoints a figure kind uses when none is named."""
    found = []
    for name in DEFAULT_CHECKPOINTS[kind]:
        try:
            found.append(resolve_checkpoint(name, directory))
        except FileNotFoundError:
            continue
    if not found:
        for name in FALLBACK_CHECKPOINTS.get(kind, []):
            try:
                return [resolve_checkpoint(name, directory)]
            except FileNotFoundError:
                continue
        wanted = ", ".join(DEFAULT_CHECKPOINTS[kind])
        raise FileNotFoundError(f"none of the default checkpoints ({wanted}) is in {directory}/; "
                                "pass --checkpoints")
    return found


def _default_data(card: dict) -> Path:
    from inside_core.data import default_data_dir

    return Path(default_data_dir(card.get("dataset", "clevr-seg")))


def load_dataset(card: dict, data: str | os.PathLike | None = None, split: str = "test", seed: int | None = None):
    """The dataset a checkpoint was made for (its card's kind, condition, image size and spacing),
    from `data` or the bundled default, through the training code's `build_dataset`."""
    from inside_core.train import build_dataset

    root = data if data is not None else _default_data(card)
    data_seed = seed if seed is not None else int((card.get("data") or {}).get("seed", 0) or 0)
    return build_dataset(card.get("dataset", "clevr-seg"), root, split, condition=card.get("condition") or "quadrant",
                         image_size=card.get("image_size") or None, spacing=card.get("spacing"), seed=data_seed)


def default_sweep_index(dataset, condition: str, variable: str, candidates: int = 100) -> int:
    """The sample a default sweep shows: for a point sweep along x (or y), the scene with the most
    objects near the swept line (|y_object - y| < r), so the mask visibly changes as the point moves;
    for ACDC an ED mid-basal slice; otherwise the first sample."""
    if condition == "phase_slice":
        return default_sample_indices(dataset, condition)[0]
    if condition != "point" or variable not in ("x", "y") or not hasattr(dataset, "scene"):
        return 0
    from inside_core.data.clevr_seg import object_centres

    best, best_count = 0, -1
    for index in range(min(len(dataset), candidates)):
        z = _numpy(dataset[index]["z"]).astype(np.float64)
        height, width = dataset.meta[index]["native_size"]
        centres = object_centres(dataset.scene(index), width, height)
        across = 1 if variable == "x" else 0  # the coordinate held fixed
        count = int((np.abs(centres[:, across] - z[across]) < z[2]).sum())
        if count > best_count:
            best, best_count = index, count
    return best


def default_sample_indices(dataset, condition: str, count: int = 4) -> list[int]:
    """Samples that show a model at work: one per value for one-hot conditions; for ACDC, ED and ES
    at a basal-mid and a mid-apical slice; otherwise `count` evenly spaced samples."""
    n = len(dataset)
    if n == 0:
        raise ValueError("the dataset split is empty")
    metas = [dataset[i].get("meta", {}) for i in range(n)] if condition in CONDITION_VALUES else []
    if condition in CONDITION_VALUES:
        chosen = []
        for value in CONDITION_VALUES[condition]:
            match = next((i for i, m in enumerate(metas) if m.get("value") == value), None)
            if match is not None:
                chosen.append(match)
        if chosen:
            return chosen[:max(count, len(chosen))]
    if condition == "phase_slice":
        zs = np.stack([_numpy(dataset[i]["z"]).astype(np.float64) for i in range(n)])
        chosen = []
        for phase, target in ((0.0, 0.3), (0.0, 0.7), (1.0, 0.3), (1.0, 0.7)):
            distance = np.abs(zs[:, 1] - target) + 10 * np.abs(zs[:, 0] - phase)
            chosen.append(int(np.argmin(distance)))  # the first of the closest: deterministic
        return chosen
    return sorted({int(round(k)) for k in np.linspace(0, n - 1, min(count, n))})


# --------------------------------------------------------------------------------------------
# Command line: inside figures KIND --out FILE [...]

FIGURE_KINDS = ("qualitative", "sweep", "attention", "table")
PREVIEW_DPI = 120  # 7.16 in -> 859 px: the width of a README on GitHub


def register(subparsers) -> None:
    """Add `inside figures KIND --out FILE [...]` to the `inside` command."""
    parser = subparsers.add_parser(
        "figures", help="publication figures: qualitative, sweep, attention, table",
        description="Publication figures from checkpoints and data. Every kind works with no other option, "
        "on the shipped checkpoints and the bundled synthetic data. The output's suffix sets the format: "
        ".pdf/.svg (vector, text as text) or .png (300 dpi); for table, .tex or .md (both are written).")
    parser.add_argument("kind", choices=FIGURE_KINDS)
    parser.add_argument("--out", required=True, help="output file (.pdf, .svg, .png; table: .tex or .md)")
    parser.add_argument("--width", default="double", choices=sorted(WIDTHS),
                        help="single (3.5 in) or double (7.16 in) column, or lncs (4.8 in, MICCAI); default double")
    parser.add_argument("--checkpoints", nargs="+", metavar="CKPT",
                        help="checkpoints (paths or names in --checkpoint-dir); sweep and attention use the first")
    parser.add_argument("--checkpoint-dir", default=DEFAULT_CHECKPOINT_DIR, help="where named checkpoints live")
    parser.add_argument("--data", help="dataset folder (default: the bundled synthetic dataset of the checkpoint)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    parser.add_argument("--seed", type=int, help="seed of the per-image condition draw (default: the card's)")
    parser.add_argument("--samples", nargs="+", type=int, metavar="INDEX", help="sample indices in the split")
    parser.add_argument("--conditions", nargs="+", metavar="Z",
                        help="conditions replacing the samples' own (rows = samples x conditions): a value name "
                        "(top_left), x,y,r for point, phase,slice for ACDC (e.g. ES,0.5), x,y for a quadrant location")
    parser.add_argument("--variable", help="sweep: the variable (x, y, r, phase, slice, value); default x or slice")
    parser.add_argument("--values", nargs="+", metavar="V", help="sweep: the values (numbers or value names)")
    parser.add_argument("--steps", type=int, default=6, help="sweep: number of evenly spaced values (default 6)")
    parser.add_argument("--layer", type=int, default=0, help="attention: which INSIDE layer (0 = first)")
    parser.add_argument("--max-samples", type=int, default=400, help="attention: at most this many samples")
    parser.add_argument("--no-dice", action="store_true", help="qualitative: do not print Dice on predictions")
    parser.add_argument("--use-card-metrics", action="store_true",
                        help="table: use the metrics stored in the cards instead of evaluating")
    parser.add_argument("--preview", action="store_true",
                        help=f"PNG at {PREVIEW_DPI} dpi for web pages (the README), not for print")
    parser.set_defaults(func=run_figures)


def _load_models(args, kind: str) -> list:
    from inside_core.checkpoints import load_checkpoint

    paths = ([resolve_checkpoint(c, args.checkpoint_dir) for c in args.checkpoints] if args.checkpoints
             else default_checkpoints(kind, args.checkpoint_dir))
    return [load_checkpoint(p) for p in (paths if kind in ("qualitative", "table") else paths[:1])]


def _rows(dataset, condition: str, indices: Sequence[int], conditions: Sequence[str] | None) -> list[Row]:
    rows = []
    for index in indices:
        if not 0 <= index < len(dataset):
            raise ValueError(f"sample {index} is out of range: the split has {len(dataset)} samples")
        item = dataset[index]
        if not conditions:
            rows.append(row_from_item(condition, item))
            continue
        for text in conditions:
            z = parse_condition(condition, text)
            mask = None
            if hasattr(dataset, "target") and condition in ("quadrant", "colour", "shape", "size", "point"):
                value = text if condition != "point" else tuple(float(v) for v in z)
                if condition != "quadrant" or text in QUADRANTS:
                    mask = dataset.target(index, condition, value)
            rows.append(Row(item["image"], z, mask, describe_condition(condition, z)))
    return rows


def _parse_values(values: Sequence[str] | None, variable: str, condition: str, steps: int) -> list:
    if not values:
        return default_sweep_values(condition, variable, steps)
    if variable == "value":
        return list(values)
    try:
        return [float(v) for v in values]
    except ValueError:
        raise ValueError(f"sweep values for {variable} must be numbers, got {' '.join(values)}") from None


def make_figure(args) -> Figure | dict[str, str]:
    """The figure (or, for table, the LaTeX and Markdown texts) that the parsed arguments ask for."""
    kind = args.kind
    models = _load_models(args, kind)
    if kind == "table":
        return results_table(models, args.data, args.split, args.seed, args.use_card_metrics)
    card = models[0].card
    condition = normalise_condition(model_condition(models[0]))
    dataset = load_dataset(card, args.data, args.split, args.seed)
    if kind == "qualitative":
        indices = args.samples or default_sample_indices(dataset, condition)
        return qualitative_figure(models, _rows(dataset, condition, indices, args.conditions), width=args.width,
                                  show_dice=not args.no_dice, condition=condition)
    if kind == "sweep":
        variable = args.variable or {"phase_slice": "slice", "colour": "value", "shape": "value",
                                     "size": "value"}.get(condition, "x")
        index = args.samples[0] if args.samples else default_sweep_index(dataset, condition, variable)
        row = _rows(dataset, condition, [index], args.conditions[:1] if args.conditions else None)[0]
        values = _parse_values(args.values, variable, condition, args.steps)
        return sweep_figure(models[0], row, variable, values, width=args.width, condition=condition)
    if kind == "attention":
        indices = args.samples or list(range(min(len(dataset), args.max_samples)))
        return attention_figure(models[0], _rows(dataset, condition, indices, None), width=args.width,
                                condition=condition, layer=args.layer)
    raise ValueError(f"unknown figure kind {kind!r}")


def write_table(tables: dict[str, str], out: str | os.PathLike) -> list[Path]:
    """Write the LaTeX table to FILE.tex and the Markdown one to FILE.md (FILE = `out` without suffix)."""
    out = Path(out)
    if out.suffix not in (".tex", ".md"):
        raise ValueError(f"a table is written as .tex or .md, got {out.name}")
    from inside_core.checkpoints import atomic_write_text

    paths = [out.with_suffix(".tex"), out.with_suffix(".md")]
    atomic_write_text(paths[0], tables["latex"] + "\n")
    atomic_write_text(paths[1], tables["markdown"] + "\n")
    return paths


def run_figures(args) -> int:
    import sys

    suffix = Path(args.out).suffix.lower().lstrip(".")
    allowed = ("tex", "md") if args.kind == "table" else FORMATS
    if suffix not in allowed:
        print(f"error: --out must end in {', '.join('.' + a for a in allowed)} for {args.kind}, got {args.out}",
              file=sys.stderr)
        return 2
    try:
        result = make_figure(args)
        if args.kind == "table":
            written = write_table(result, args.out)
            print(result["markdown"])
        else:
            save_figure(result, args.out, dpi=PREVIEW_DPI if args.preview else MIN_DPI, preview=args.preview)
            written = [Path(args.out)]
    except (ValueError, OSError) as error:  # CheckpointError and DataError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0
