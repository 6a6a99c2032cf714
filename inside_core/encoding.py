"""Conditioning encodings: how a condition (a quadrant, a point, a cardiac phase and slice) becomes z.

One place for these rules, so data loaders, training, the dashboard's sliders and the figures all
build the same z. Coordinates are the normalised ones of `inside_core.layers`: x is the column,
y the row, both in [-1, 1], (-1, -1) the top-left corner of the image.
"""

from __future__ import annotations

import numpy as np

# One-hot orders of CLEVR-Seg (method.md / datasets.md).
QUADRANTS = ("top_left", "top_right", "bottom_right", "bottom_left")
COLOURS = ("alizarin", "nephritis", "orange")
SHAPES = ("cube", "sphere", "triangle")
SIZES = ("small", "medium", "large")
CONDITION_VALUES: dict[str, tuple[str, ...]] = {
    "quadrant": QUADRANTS,
    "colour": COLOURS,
    "shape": SHAPES,
    "size": SIZES,
}
# z size per CLEVR-Seg condition; "point" is (x, y, r)
COND_DIMS = {**{name: len(values) for name, values in CONDITION_VALUES.items()}, "point": 3}
# ACDC: z = (phase, slice position)
ACDC_COND_DIM = 2


def one_hot(condition: str, value: str) -> np.ndarray:
    """The one-hot z of a CLEVR-Seg attribute value, e.g. one_hot("quadrant", "top_right")."""
    values = CONDITION_VALUES[condition]
    if value not in values:
        raise ValueError(f"unknown {condition} {value!r}; expected one of {', '.join(values)}")
    z = np.zeros(len(values), dtype=np.float32)
    z[values.index(value)] = 1.0
    return z


def quadrant_of(column: float, row: float, width: int, height: int) -> str:
    """Quadrant of a pixel position: top if row < H/2, left if column < W/2 (datasets.md)."""
    vertical = "top" if row < height / 2 else "bottom"
    horizontal = "left" if column < width / 2 else "right"
    return f"{vertical}_{horizontal}"


def quadrant_blend(x: float, y: float) -> np.ndarray:
    """z for a location slider: the quadrant one-hot, blended bilinearly between quadrants.

    Pure one-hot while |x| >= 0.5 and |y| >= 0.5 (the quadrants' centres and beyond); in the band
    around the image's centre lines neighbouring quadrants are mixed linearly, so a slider moving
    across the middle changes z continuously. The weights always sum to 1.
    """
    right = float(np.clip(x + 0.5, 0.0, 1.0))
    bottom = float(np.clip(y + 0.5, 0.0, 1.0))
    weights = {
        "top_left": (1 - right) * (1 - bottom),
        "top_right": right * (1 - bottom),
        "bottom_right": right * bottom,
        "bottom_left": (1 - right) * bottom,
    }
    return np.array([weights[q] for q in QUADRANTS], dtype=np.float32)


def point_condition(x: float, y: float, radius: float) -> np.ndarray:
    """z = (x, y, r) for point conditioning: a centre in normalised coordinates and a radius (> 0)."""
    if radius <= 0:
        raise ValueError(f"the radius must be positive, got {radius}")
    return np.array([x, y, radius], dtype=np.float32)


def pixel_to_normalised(position: float, size: int) -> float:
    """A pixel coordinate (0 = first pixel's centre ... size - 1) in normalised units: (2p + 1)/n - 1."""
    return (2 * position + 1) / size - 1


def acdc_condition(phase: float, slice_position: float) -> np.ndarray:
    """z = (phase, slice position), both in [0, 1]: phase 0 = ED, 1 = ES; slice 0 = base, 1 = apex."""
    for name, value in (("phase", phase), ("slice position", slice_position)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"the {name} must lie in [0, 1], got {value}")
    return np.array([phase, slice_position], dtype=np.float32)


def slice_position(slice_index: int, num_slices: int) -> float:
    """Slice k of n as a number in [0, 1]: k / (n - 1), 0 for a single slice."""
    return 0.0 if num_slices <= 1 else slice_index / (num_slices - 1)
