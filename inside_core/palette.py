"""The colours of masks, labels, attention and marks: one palette for the page and the exported figures.

Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
A label has one colour everywhere (label 1 is the binary target in CLEVR-Seg and the RV in ACDC), so a
figure exported from the page reads like the page. Hex strings for matplotlib, `rgb` / `rgba` for numpy
overlays and plotly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["OKABE_ITO", "LABEL_COLOURS", "LABEL_NAMES", "label_names", "GROUND_TRUTH_COLOUR", "ELLIPSE_COLOUR",
           "CENTRE_COLOUR", "MARKER_COLOUR", "ATTENTION_CMAP", "ATTENTION_COLOURSCALE", "PHASE_COLOURS",
           "CATEGORY_COLOURS", "GAMMA_POSITIVE", "GAMMA_NEGATIVE", "GAMMA_COLOURSCALE", "gamma_colours", "rgb",
           "rgba"]

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
# label value -> colour; 0 (background) is never drawn
LABEL_COLOURS = {1: OKABE_ITO["sky_blue"], 2: OKABE_ITO["yellow"], 3: OKABE_ITO["vermillion"]}
# label value -> name, per number of classes (a model's output tells which)
LABEL_NAMES = {2: {1: "target"}, 4: {1: "RV", 2: "MYO", 3: "LV"}}
GROUND_TRUTH_COLOUR = "#FFFFFF"  # ground truth: white outlines (dashed in figures)
ELLIPSE_COLOUR = OKABE_ITO["yellow"]  # INSIDE's 1-σ ellipses
CENTRE_COLOUR = OKABE_ITO["vermillion"]  # their centres μ where nothing tells them apart
# a centre μ coloured by its channel's γ (the scale's sign: does the channel boost or damp where it looks?),
# the same on the page's chart, over the page's picture and in exported figures
GAMMA_POSITIVE = OKABE_ITO["vermillion"]
GAMMA_NEGATIVE = OKABE_ITO["blue"]
GAMMA_COLOURSCALE = [[0.0, GAMMA_NEGATIVE], [0.5, "#F2F2F2"], [1.0, GAMMA_POSITIVE]]  # plotly, symmetric about 0
MARKER_COLOUR = "#FFFFFF"  # the requested point and radius, the location slider's position
ATTENTION_CMAP = "viridis"  # matplotlib name
ATTENTION_COLOURSCALE = "Viridis"  # the same map in plotly
PHASE_COLOURS = {"ED": OKABE_ITO["blue"], "ES": OKABE_ITO["vermillion"]}
CATEGORY_COLOURS = tuple(OKABE_ITO[k] for k in ("blue", "vermillion", "bluish_green", "reddish_purple",
                                                "orange", "sky_blue", "yellow"))


def label_names(num_classes: int) -> dict[int, str]:
    """{label: name} of a model's output classes (binary: "target"; ACDC's four: RV, MYO, LV)."""
    return LABEL_NAMES.get(max(int(num_classes), 2), {k: f"label {k}" for k in range(1, int(num_classes))})


def gamma_colours(gamma: Any) -> list[str]:
    """Each channel's centre colour by the sign of its γ (0 counts as positive, as the page draws it)."""
    return [GAMMA_POSITIVE if g >= 0 else GAMMA_NEGATIVE for g in np.asarray(gamma, dtype=float).ravel()]


def rgb(colour: str) -> tuple[int, int, int]:
    """'#RRGGBB' -> (r, g, b) in 0..255."""
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def rgba(colour: str, alpha: float) -> str:
    """'#RRGGBB' -> 'rgba(r, g, b, alpha)' for plotly."""
    return "rgba({}, {}, {}, {:g})".format(*rgb(colour), alpha)
