"""Figure style and saving: the rc scheme, named widths, and `save_figure` (deterministic PDF/SVG/PNG).

Style: `paper_style()` (8 pt text, 7 pt ticks, DejaVu Sans, TrueType fonts in PDF); widths `WIDTHS` in
inches (single = 3.5 in ~ 89 mm, double = 7.16 in ~ 182 mm, lncs = 4.8 in = 122 mm, the MICCAI/LNCS
text width). Colours come from `inside_core.palette`, the page's palette.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from inside_core.palette import ATTENTION_CMAP

__all__ = ["WIDTHS", "FONT_SIZE", "SMALL_FONT_SIZE", "PAPER_RC", "FORMATS", "MIN_DPI", "PREVIEW_DPI",
           "paper_style", "figure_size", "save_figure"]

WIDTHS = {"single": 3.5, "double": 7.16, "lncs": 4.8}
"""Figure widths in inches: one column / two columns of a two-column paper; LNCS (MICCAI) text width."""

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


FORMATS = ("pdf", "svg", "png")
MIN_DPI = 300
PREVIEW_DPI = 120  # 7.16 in -> 859 px: the width of a README on GitHub
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
