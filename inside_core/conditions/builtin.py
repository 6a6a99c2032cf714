"""The registered conditions: quadrant, colour, shape, size and point (CLEVR-Seg), phase_slice (ACDC) and
cube_half (the generated 3-D volumes of inside_core.data.cubes3d).

Adding one is a class here with `@register_condition` (see inside_core/conditions/__init__.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from inside_core.conditions.base import (
    COLOURS,
    POINT_RADIUS_RANGE,
    QUADRANT_BLEND,
    QUADRANTS,
    SHAPES,
    SIZES,
    Condition,
    Control,
    OneHotCondition,
    acdc_condition,
    blend_weight,
    format_number,
    one_hot,
    point_condition,
    quadrant_blend,
    quadrant_mass,
    quadrant_of,
    register_condition,
)
from inside_core.geometry import pixel_to_normalised
from inside_core.palette import PHASE_COLOURS


@register_condition
class Quadrant(OneHotCondition):
    """The reference's experiment: z is the one-hot quadrant holding the objects to segment. The page
    drives it with a location, blended between neighbouring quadrants (`quadrant_blend`)."""

    name = "quadrant"
    title = "quadrant"
    values = QUADRANTS
    cond_dim = len(QUADRANTS)
    controls = (
        Control("loc_x", "Location x (left → right)", -1.0, 1.0, default=-0.5, aliases=("x",),
                blend=(-QUADRANT_BLEND, QUADRANT_BLEND), dead=((-1.0, -QUADRANT_BLEND), (QUADRANT_BLEND, 1.0))),
        Control("loc_y", "Location y (top → bottom)", -1.0, 1.0, default=-0.5, aliases=("y",),
                blend=(-QUADRANT_BLEND, QUADRANT_BLEND), dead=((-1.0, -QUADRANT_BLEND), (QUADRANT_BLEND, 1.0))),
    )
    sweep = {"loc_x": (-0.75, 0.75), "loc_y": (-0.75, 0.75)}
    range_words = {**Condition.range_words, "blend": "z blends neighbouring quadrants"}
    z_encoding = ("one-hot over (top_left, top_right, bottom_right, bottom_left) of the target quadrant; "
                  "inside_core.conditions.one_hot('quadrant', name) or quadrant_blend(x, y) for a location")

    def encode(self, **values: Any) -> np.ndarray:
        if "value" in values:
            return one_hot(self.name, values["value"])
        v = self.with_defaults(values)
        return quadrant_blend(float(v["loc_x"]), float(v["loc_y"]))

    def values_from_z(self, z: Any) -> dict[str, Any]:
        """The centre of the dominant quadrant (the blend's inverse is not unique)."""
        quadrant = QUADRANTS[int(np.asarray(z).argmax())]
        return {"loc_x": 0.5 if "right" in quadrant else -0.5, "loc_y": 0.5 if "bottom" in quadrant else -0.5}

    def caption_for(self, values: Mapping[str, Any]) -> str:
        weights = self.encode(**values)
        mix = " · ".join(f"{q.replace('_', '-')} {w:.2f}" for q, w in zip(QUADRANTS, weights, strict=True) if w)
        return (f"z = quadrant one-hot, blended between neighbouring quadrants within ±{QUADRANT_BLEND:g} of the "
                f"centre lines (the model was trained on pure one-hots; beyond ±{QUADRANT_BLEND:g} z does not "
                f"change): {mix}")

    def parse(self, text: str) -> np.ndarray:
        if text.strip() in QUADRANTS:
            return one_hot(self.name, text.strip())
        try:
            return Condition.parse(self, text)
        except ValueError:
            raise ValueError(f"cannot read condition {text!r} for quadrant: expected one of "
                             f"{', '.join(QUADRANTS)} or a location x,y") from None

    def marker(self, values: Mapping[str, Any]):
        v = self.with_defaults(values)
        return (float(v["loc_x"]), float(v["loc_y"])), None

    def image_point(self) -> tuple[str, str, None]:
        return "loc_x", "loc_y", None

    def object_value(self, obj: dict, width: int, height: int) -> str:
        column, row = obj["pixel_coords"][:2]
        return quadrant_of(column, row, width, height)

    def ground_truth_value(self, values: Mapping[str, Any]) -> Any:
        """The dominant quadrant of the blend (ties: the first in QUADRANTS)."""
        return QUADRANTS[int(np.argmax(self.encode(**values)))]

    def ground_truth_note(self, value: Any) -> str:
        return f"ground truth: the objects in the {value.replace('_', '-')} quadrant (the dominant one)"

    def value_label(self, value: Any, short: bool = False) -> str:
        """Words for a quadrant ("top left"), or for tick labels its initials ("TL")."""
        if not short:
            return super().value_label(value)
        vertical, horizontal = str(value).split("_")
        return vertical[0].upper() + horizontal[0].upper()

    def region_mass(self, attention: np.ndarray) -> np.ndarray:
        """The values are the image's quadrants: the map's mass in each (`quadrant_mass`)."""
        return quadrant_mass(attention)


@register_condition
class Colour(OneHotCondition):
    name, title, values, scene_key = "colour", "colour", COLOURS, "color"
    cond_dim = len(COLOURS)
    controls = (Control("value", "Colour", kind="select", options=COLOURS, default=COLOURS[0]),)
    orientation_free = True  # a colour, shape or size is the same however the image is turned
    z_encoding = "one-hot over (alizarin, nephritis, orange); inside_core.conditions.one_hot('colour', name)"


@register_condition
class Shape(OneHotCondition):
    name, title, values, scene_key = "shape", "shape", SHAPES, "shape"
    cond_dim = len(SHAPES)
    controls = (Control("value", "Shape", kind="select", options=SHAPES, default=SHAPES[0]),)
    orientation_free = True  # a colour, shape or size is the same however the image is turned
    z_encoding = "one-hot over (cube, sphere, triangle); inside_core.conditions.one_hot('shape', name)"


@register_condition
class Size(OneHotCondition):
    name, title, values, scene_key = "size", "size", SIZES, "size"
    cond_dim = len(SIZES)
    controls = (Control("value", "Size", kind="select", options=SIZES, default=SIZES[0]),)
    orientation_free = True  # a colour, shape or size is the same however the image is turned
    z_encoding = "one-hot over (small, medium, large); inside_core.conditions.one_hot('size', name)"


@register_condition
class Point(Condition):
    """Our extension: z = (x, y, r), the target is every object whose centre lies within r of (x, y)."""

    name, title, dataset, cond_dim = "point", "point", "clevr-seg", 3
    controls = (
        Control("loc_x", "Location x (left → right)", -1.0, 1.0, default=0.0, aliases=("x",)),
        Control("loc_y", "Location y (top → bottom)", -1.0, 1.0, default=0.0, aliases=("y",)),
        Control("radius", "Radius", 0.05, 1.0, default=0.35, aliases=("r",),
                help=f"trained on radii {POINT_RADIUS_RANGE[0]:g}–{POINT_RADIUS_RANGE[1]:g}"),
    )
    sweep = {"loc_x": (-0.75, 0.75), "loc_y": (-0.75, 0.75), "radius": POINT_RADIUS_RANGE}
    z_encoding = ("(x, y, r): a centre in normalised coordinates (x column, y row, -1..1 edge to edge) and a radius "
                  "in the same units; target = objects whose centre lies within r; "
                  "inside_core.conditions.point_condition")
    caption = "z = (x, y, r): select the objects whose centre lies within r of the point."

    def encode(self, **values: Any) -> np.ndarray:
        v = self.with_defaults(values)
        return point_condition(float(v["loc_x"]), float(v["loc_y"]), float(v["radius"]))

    def values_from_z(self, z: Any) -> dict[str, Any]:
        x, y, r = (float(v) for v in np.asarray(z, dtype=np.float64).ravel()[:3])
        return {"loc_x": x, "loc_y": y, "radius": r}

    def describe(self, z: Any) -> str:
        z = np.asarray(z, dtype=np.float64).ravel()
        return f"({format_number(z[0])}, {format_number(z[1])}), r {format_number(z[2])}"

    def marker(self, values: Mapping[str, Any]):
        v = self.with_defaults(values)
        return (float(v["loc_x"]), float(v["loc_y"])), float(v["radius"])

    def image_point(self) -> tuple[str, str, str]:
        return "loc_x", "loc_y", "radius"

    def ground_truth_value(self, values: Mapping[str, Any]) -> Any:
        v = self.with_defaults(values)
        return (float(v["loc_x"]), float(v["loc_y"]), float(v["radius"]))

    def ground_truth_note(self, value: Any) -> str:
        return "ground truth: the objects whose centre lies within the radius of the point"

    def table_declaration(self) -> dict[str, dict]:
        return {"x": {"type": "continuous", "range": [-1, 1]}, "y": {"type": "continuous", "range": [-1, 1]},
                "r": {"type": "continuous", "range": list(POINT_RADIUS_RANGE)}}

    @staticmethod
    def centres(objects: list[dict], width: int, height: int) -> np.ndarray:
        """Objects' centres (x, y) in normalised coordinates, shape (K, 2)."""
        return np.array([[pixel_to_normalised(o["pixel_coords"][0], width),
                          pixel_to_normalised(o["pixel_coords"][1], height)] for o in objects],
                        dtype=np.float64).reshape(-1, 2)

    def selects(self, objects: list[dict], value: Any, width: int, height: int) -> list[int]:
        x, y, r = (float(v) for v in value)
        distances = np.hypot(*(self.centres(objects, width, height) - np.array([x, y])).T)
        return [int(k) for k in np.flatnonzero(distances <= r)]

    def draw(self, rng: np.random.Generator, objects: list[dict], width: int, height: int):
        """A point uniform over the image and a radius uniform in POINT_RADIUS_RANGE, redrawn until it
        selects an object."""
        for _ in range(1000):
            x, y = rng.uniform(-1.0, 1.0, size=2)
            r = rng.uniform(*POINT_RADIUS_RANGE)
            chosen = self.selects(objects, (x, y, r), width, height)
            if chosen:
                break
        else:  # practically unreachable; fall back to a point near a random object
            cx, cy = self.centres(objects, width, height)[rng.integers(len(objects))]
            r = rng.uniform(*POINT_RADIUS_RANGE)
            x, y = cx + 0.5 * r, cy
            chosen = self.selects(objects, (x, y, r), width, height)
        value = [round(float(x), 6), round(float(y), 6), round(float(r), 6)]
        return point_condition(*value), value, chosen


@register_condition
class PhaseSlice(Condition):
    """ACDC: z = (phase, slice position). Phase 0 = ED, 1 = ES (frames between come from the cine and
    have no ground truth); slice position 0 = base, 1 = apex."""

    name, title, dataset, cond_dim = "phase_slice", "phase and slice", "acdc", 2
    orientation_free = True  # the phase and the slice's position in the stack are not places in the slice
    controls = (
        Control("phase", "Phase (0 = ED → 1 = ES)", 0.0, 1.0, default=0.0),
        Control("slice", "Slice (base → apex)", 0.0, 1.0, kind="stack", default=None,
                help="the slice's position in the stack: 0 = base, 1 = apex"),
    )
    sweep = {"phase": (0.0, 1.0), "slice": (0.0, 1.0)}
    z_encoding = ("(phase, slice_position): phase 0 = ED, 1 = ES; slice position k/(n-1), 0 = base, 1 = apex; "
                  "inside_core.conditions.acdc_condition")
    caption = ("z = (phase, slice position): phase 0 = ED, 1 = ES; position 0 = base, 1 = apex. Only the ED and "
               "ES frames have ground truth; frames in between come from the 4-D cine where it exists.")

    def defaults(self) -> dict[str, Any]:
        return {"phase": 0.0, "slice": 0.5}  # for z: the middle of the stack

    def encode(self, **values: Any) -> np.ndarray:
        v = self.with_defaults(values)
        return acdc_condition(float(v["phase"]), float(v["slice"]))

    def values_from_z(self, z: Any) -> dict[str, Any]:
        phase, position = (float(v) for v in np.asarray(z, dtype=np.float64).ravel()[:2])
        return {"phase": phase, "slice": position}

    @staticmethod
    def phase_words(phase: float) -> str:
        """ED at 0, ES at 1 (the annotated frames), else "phase 0.40"."""
        return {0.0: "ED", 1.0: "ES"}.get(round(float(phase), 6), f"phase {phase:.2f}")

    def describe(self, z: Any) -> str:
        z = np.asarray(z, dtype=np.float64).ravel()
        return f"{self.phase_words(z[0])}, slice {z[1]:.2f}"

    def series_label(self, key: str, value: float) -> str:
        """A curve held at one phase is named by it (ED, ES); the slice as the base class says."""
        if self.control(key).key == "phase":
            return self.phase_words(value)
        return super().series_label(key, value)

    def series_colour(self, key: str, value: float) -> str | None:
        """ED and ES have the page's phase colours (palette.PHASE_COLOURS); frames between have none."""
        return PHASE_COLOURS.get(self.series_label(key, value)) if self.control(key).key == "phase" else None

    def axis_label(self, key: str) -> str:
        if self.control(key).key == "slice":
            return "slice position (0 base, 1 apex)"
        return super().axis_label(key)

    def parse(self, text: str) -> np.ndarray:
        parts = [p.strip() for p in text.split(",")]
        try:
            if len(parts) == 2:
                phase = {"ED": 0.0, "ES": 1.0}.get(parts[0].upper())
                return acdc_condition(float(parts[0]) if phase is None else phase, float(parts[1]))
        except ValueError:
            pass
        raise ValueError(f"cannot read condition {text!r} for phase_slice: expected phase,slice (e.g. ES,0.5)")


@register_condition
class CubeHalf(Condition):
    """The generated volumes (inside_core.data.cubes3d): z is the one-hot of the half along W (the volume's
    last axis) whose cube is the target. The page drives it with a location along W, blended between the
    halves as the quadrant's location is (`blend_weight`), so the Gaussians can be watched moving."""

    name, title, dataset, cond_dim, spatial_dims = "cube_half", "cube", "cubes3d", 2, 3
    values = ("first_half", "second_half")
    controls = (Control("loc_w", "Target along W (first half → second half)", -1.0, 1.0, default=-0.5,
                        aliases=("w",), blend=(-QUADRANT_BLEND, QUADRANT_BLEND),
                        dead=((-1.0, -QUADRANT_BLEND), (QUADRANT_BLEND, 1.0))),)
    sweep = {"loc_w": (-0.75, 0.75)}
    range_words = {**Condition.range_words, "blend": "z blends the two halves along W"}
    z_encoding = ("one-hot over (first half, second half) of the volume along W: the half whose cube is the target "
                  "(inside_core.data.cubes3d)")

    @property
    def categories(self) -> tuple[str, ...]:
        return self.values

    def encode(self, **values: Any) -> np.ndarray:
        if "value" in values:
            return np.eye(2, dtype=np.float32)[self.values.index(values["value"])]
        second = blend_weight(float(self.with_defaults(values)["loc_w"]))
        return np.array([1.0 - second, second], dtype=np.float32)

    def values_from_z(self, z: Any) -> dict[str, Any]:
        return {"loc_w": 0.5 if int(np.asarray(z).argmax()) == 1 else -0.5}

    def describe(self, z: Any) -> str:
        first, second = (float(v) for v in np.asarray(z, dtype=np.float64).ravel()[:2])
        return f"first half {first:.2f} · second half {second:.2f}"

    def caption_for(self, values: Mapping[str, Any]) -> str:
        return (f"z = which half along W holds the target cube, blended within ±{QUADRANT_BLEND:g} of the middle "
                f"(trained on pure one-hots): {self.describe(self.encode(**values))}")

    def ground_truth_value(self, values: Mapping[str, Any]) -> Any:
        """The index of the dominant half (ties: the first)."""
        return int(np.argmax(self.encode(**values)))

    def ground_truth_note(self, value: Any) -> str:
        return f"ground truth: the cube in the {('first', 'second')[int(value)]} half along W (the dominant one)"
