"""Publication figures: one style, one set of drawing primitives, deterministic files.

Everything that draws a mask, an INSIDE attention map or its Gaussians lives here, once; the
dashboard's export (`explorer_figure`), the notebooks and the `inside figures` command call it.

Style: `paper_style()` (8 pt text, 7 pt ticks, DejaVu Sans, TrueType fonts in PDF); widths
`WIDTHS` in inches (single = 3.5 in ~ 89 mm, double = 7.16 in ~ 182 mm, lncs = 4.8 in = 122 mm,
the MICCAI/LNCS text width). Colours are colour-blind safe: viridis for maps, Okabe-Ito for
categories (ACDC labels RV, MYO, LV; binary masks).

Coordinates (method.md): along an axis of n pixels, normalised t in [-1, 1] maps to the pixel
position p = (t + 1) n / 2 - 0.5 (0 = first pixel's centre) and a width s to s n / 2 pixels.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Ellipse, Patch  # noqa: E402

from inside_core.layers import FiLMParams, GuidingParams, InsideParams  # noqa: E402

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
    with plt.rc_context(PAPER_RC):
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
                dpi: int = MIN_DPI) -> None:
    """Write `fig` as PDF, SVG or PNG, the format taken from the file's suffix unless given.

    PDF: vector, TrueType (Type 42) fonts embedded, text selectable. SVG: vector, text kept as
    <text> elements in DejaVu Sans. PNG: raster at `dpi` >= 300, with the dpi recorded in the file.
    No dates or software versions are written, so equal figures give byte-identical files.
    Files are written atomically (temporary file, then rename).
    """
    is_path = isinstance(path_or_buffer, (str, os.PathLike))
    if format is None:
        if not is_path:
            raise ValueError("give format= when saving to a buffer")
        format = Path(path_or_buffer).suffix.lstrip(".")
    format = format.lower()
    if format not in FORMATS:
        raise ValueError(f"unsupported figure format {format!r}; use one of .pdf, .svg, .png")
    if dpi < MIN_DPI:
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


def label_legend(ax_or_fig, num_classes: int, loc: str = "lower center", **kwargs) -> None:
    """A legend of the ACDC labels (RV, MYO, LV) for multi-class masks; nothing for binary ones."""
    if num_classes <= 1:
        return
    handles = [Patch(facecolor=ACDC_COLOURS[i % len(ACDC_COLOURS)], edgecolor="none",
                     label=ACDC_LABELS[i] if i < len(ACDC_LABELS) else f"label {i + 1}")
               for i in range(num_classes - 1)]
    ax_or_fig.legend(handles=handles, loc=loc, ncol=len(handles), **kwargs)


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


def draw_guideme_map(ax: Axes, params: GuidingParams, height: int, width: int, cmap: str = "cividis"):
    """Guide Me's additive spatial map alpha_h + beta_w, stretched from the feature grid to the image."""
    spatial = _numpy(params.spatial_map()[0] if params.alpha.dim() == 2 else
                     params.alpha[:, None] + params.beta[None, :])
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    limit = float(np.abs(spatial).max()) or 1.0
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
    ax.legend(loc="upper right", ncol=2)
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
        fig = plt.figure(figsize=(fig_width, fig_width / panels * 1.18 + 0.12), layout="constrained")
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
        label_legend(fig, num_classes, loc="outside lower center")
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
            ax.contour(region, levels=[0.5], colors=["white"], linewidths=0.6, linestyles="dashed")



# --------------------------------------------------------------------------------------------
# Command line

FIGURE_KINDS = ("qualitative", "sweep", "attention", "table")


def register(subparsers) -> None:
    """Add `inside figures KIND --out FILE [...]`."""
    parser = subparsers.add_parser("figures", help="publication figures (qualitative, sweep, attention, table)",
                                   description="Make publication figures from checkpoints and data.")
    parser.add_argument("kind", choices=FIGURE_KINDS)
    parser.add_argument("--out", required=True, help="output file; its suffix (.pdf, .svg, .png) sets the format")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    raise SystemExit(f"inside figures {args.kind}: not implemented yet")
