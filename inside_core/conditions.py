"""Conditions: how a piece of non-imaging information becomes z, one class each, registered by name.

A condition is everything the package knows about one kind of z, in one place:

- `controls`: the dashboard's widgets (key, label, range, step, default, and where the range blends or
  is dead), which are also the URL's keys and the figures' sweep variables;
- `encode(**values) -> z` and `values_from_z(z)`, its inverse where one exists;
- `describe(z)`: words for captions, figure labels and exports; `parse(text)`: z from the command line;
- `sweep`: which controls a sweep runs over, and their default range;
- for CLEVR-Seg, the target rule: which objects a value selects (`selects`) and the seeded draw of a
  training value (`draw`).

    condition = get_condition(card["condition"])       # "quadrant", "point", "phase_slice", "colour", ...
    z = condition.encode(**condition.defaults())

Adding a condition (say, lesion size) is one class here with `@register_condition`. Coordinates are the
normalised ones of `inside_core.geometry`: x is the column, y the row, both in [-1, 1], (-1, -1) the
top-left corner of the image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from inside_core.geometry import pixel_to_normalised

__all__ = [
    "Control", "Condition", "register_condition", "get_condition", "condition_of", "list_conditions",
    "condition_for_dim", "QUADRANTS", "COLOURS", "SHAPES", "SIZES", "CONDITION_VALUES", "one_hot",
    "quadrant_of", "quadrant_blend", "point_condition", "acdc_condition", "slice_position",
    "POINT_RADIUS_RANGE",
]

# One-hot orders of CLEVR-Seg (method.md / datasets.md).
QUADRANTS = ("top_left", "top_right", "bottom_right", "bottom_left")
COLOURS = ("alizarin", "nephritis", "orange")
SHAPES = ("cube", "sphere", "triangle")
SIZES = ("small", "medium", "large")
CONDITION_VALUES: dict[str, tuple[str, ...]] = {"quadrant": QUADRANTS, "colour": COLOURS, "shape": SHAPES,
                                                "size": SIZES}
# point conditioning: training radii are drawn from this range (normalised units, 1 = half the image side)
POINT_RADIUS_RANGE = (0.2, 0.6)
# a location slider blends neighbouring quadrants within this distance of the centre lines
QUADRANT_BLEND = 0.5


# ------------------------------------------------------------------------------------------ encodings
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

    Pure one-hot while |x| >= 0.5 and |y| >= 0.5 (the quadrants' centres and beyond: the slider's dead
    zones, where z does not change); within ±0.5 of the centre lines neighbouring quadrants are mixed
    linearly, so a slider moving across the middle changes z continuously. The weights sum to 1.
    """
    right = float(np.clip(x / (2 * QUADRANT_BLEND) + 0.5, 0.0, 1.0))
    bottom = float(np.clip(y / (2 * QUADRANT_BLEND) + 0.5, 0.0, 1.0))
    weights = {"top_left": (1 - right) * (1 - bottom), "top_right": right * (1 - bottom),
               "bottom_right": right * bottom, "bottom_left": (1 - right) * bottom}
    return np.array([weights[q] for q in QUADRANTS], dtype=np.float32)


def point_condition(x: float, y: float, radius: float) -> np.ndarray:
    """z = (x, y, r) for point conditioning: a centre in normalised coordinates and a radius (> 0)."""
    if radius <= 0:
        raise ValueError(f"the radius must be positive, got {radius}")
    return np.array([x, y, radius], dtype=np.float32)


def acdc_condition(phase: float, slice_position: float) -> np.ndarray:
    """z = (phase, slice position), both in [0, 1]: phase 0 = ED, 1 = ES; slice 0 = base, 1 = apex."""
    for name, value in (("phase", phase), ("slice position", slice_position)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"the {name} must lie in [0, 1], got {value}")
    return np.array([phase, slice_position], dtype=np.float32)


def slice_position(slice_index: int, num_slices: int) -> float:
    """Slice k of n (counted from the base) as a number in [0, 1]: k / (n - 1), 0 for a single slice."""
    return 0.0 if num_slices <= 1 else slice_index / (num_slices - 1)


def _minus(text: str) -> str:
    return text.replace("-", "\N{MINUS SIGN}")


def _number(value: float, digits: int = 2) -> str:
    return _minus(f"{value:.{digits}f}")


# ------------------------------------------------------------------------------------------- controls
@dataclass(frozen=True)
class Control:
    """One conditioning control, as the dashboard draws it and the URL and the figures name it.

    kind: "slider" (a number in [low, high] by `step`), "select" (one of `options`) or "stack" (a slice of
    the sample's stack, chosen by its index; the data turn it into a position in [low, high]).
    `blend`: the part of the range where neighbouring one-hots are mixed; `dead`: parts where z does not
    change. `aliases`: other names the command line accepts (e.g. "x" for "loc_x").
    """

    key: str
    label: str
    low: float = 0.0
    high: float = 1.0
    step: float = 0.05
    default: Any = 0.0
    kind: str = "slider"
    options: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    blend: tuple[float, float] | None = None
    dead: tuple[tuple[float, float], ...] = ()
    help: str = ""

    @property
    def continuous(self) -> bool:
        return self.kind in ("slider", "stack")

    def valid(self, value: Any) -> bool:
        """Whether a value (e.g. from a shared link) is one this control can show."""
        if self.kind == "select":
            return value in self.options
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False
        return bool(np.isfinite(number)) and (self.kind == "stack" or self.low <= number <= self.high)


# ----------------------------------------------------------------------------------------- conditions
class Condition:
    """The base of every condition; subclasses fill the class attributes and `encode`."""

    name: ClassVar[str]
    title: ClassVar[str]  # for page captions and figure labels
    dataset: ClassVar[str]  # the dataset kind whose samples carry this condition
    cond_dim: ClassVar[int]
    controls: ClassVar[tuple[Control, ...]]
    sweep: ClassVar[dict[str, tuple[float, float]]] = {}  # control key -> default sweep range
    z_encoding: ClassVar[str]  # one line for model cards
    caption: ClassVar[str] = ""  # what z is, under the page's controls

    def control(self, key: str) -> Control:
        """A control by its key or one of its aliases."""
        for control in self.controls:
            if key == control.key or key in control.aliases:
                return control
        raise ValueError(f"{self.name} has no control {key!r}; it has {', '.join(c.key for c in self.controls)}")

    def defaults(self) -> dict[str, Any]:
        return {c.key: c.default for c in self.controls}

    def with_defaults(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` completed by the defaults; aliases become keys."""
        out = self.defaults()
        for key, value in values.items():
            out[self.control(key).key] = value
        return out

    def encode(self, **values: Any) -> np.ndarray:
        raise NotImplementedError

    def values_from_z(self, z: Any) -> dict[str, Any]:
        """Control values that encode to z (or the nearest such), e.g. to sweep one of them."""
        raise NotImplementedError

    def describe(self, z: Any) -> str:
        return ", ".join(_number(v) for v in np.asarray(z, dtype=np.float64).ravel())

    def caption_for(self, values: Mapping[str, Any]) -> str:
        """What z is at these control values, for the line under the controls."""
        return self.caption

    def parse(self, text: str) -> np.ndarray:
        """z from a command-line value: comma-separated control values in the order of `controls`."""
        parts = [p.strip() for p in text.split(",")]
        numeric = [c for c in self.controls if c.continuous]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) != len(numeric):
            raise ValueError(f"cannot read condition {text!r} for {self.name}: expected "
                             f"{','.join(c.key for c in numeric)}")
        return self.encode(**dict(zip((c.key for c in numeric), numbers, strict=True)))

    def sweep_values(self, variable: str, count: int = 6) -> list:
        """Evenly spaced values over the variable's sweep range (a select's options)."""
        control = self.control(variable)
        if control.kind == "select":
            return list(control.options)
        low, high = self.sweep.get(control.key, (control.low, control.high))
        return [float(v) for v in np.linspace(low, high, count)]

    def sweep_z(self, base_z: Any, variable: str, values: Sequence) -> list[np.ndarray]:
        """z for each swept value, the other controls held at the values that encode `base_z`."""
        key = self.control(variable).key
        if key not in self.sweep and self.control(key).kind != "select":
            raise ValueError(f"cannot sweep {variable!r} for condition {self.name}; choose one of "
                             f"{', '.join(self.sweep) or 'value'}")
        base = self.values_from_z(base_z)
        return [self.encode(**{**base, key: value}) for value in values]

    def marker(self, values: Mapping[str, Any]) -> tuple[tuple[float, float], float | None] | None:
        """Where z points on the image: ((x, y), radius or None) in normalised coordinates, or None."""
        return None

    def ground_truth_value(self, values: Mapping[str, Any]) -> Any:
        """The value whose objects are the ground truth at these control values (CLEVR-Seg); None if none."""
        return None

    def ground_truth_note(self, value: Any) -> str:
        return ""

    def table_declaration(self) -> dict[str, dict]:
        """This condition's values as declared variables of a conditions table (docs/your-data.md)."""
        raise ValueError(f"{self.name} cannot be written as a conditions table")

    def selects(self, objects: list[dict], value: Any, width: int, height: int) -> list[int]:
        """Indices of the objects a value selects (CLEVR-Seg scenes)."""
        raise NotImplementedError(f"{self.name} has no object rule")

    def draw(self, rng: np.random.Generator, objects: list[dict], width: int, height: int):
        """(z, value, selected object indices) for one training image, drawn with `rng`."""
        raise NotImplementedError(f"{self.name} has no object rule")


class OneHotCondition(Condition):
    """A CLEVR-Seg attribute (colour, shape, size): z is the one-hot of one value; the target is every
    object having it."""

    dataset = "clevr-seg"
    values: ClassVar[tuple[str, ...]]
    scene_key: ClassVar[str]  # the attribute's key in the scene JSON

    def encode(self, **values: Any) -> np.ndarray:
        return one_hot(self.name, self.with_defaults(values)["value"])

    def values_from_z(self, z: Any) -> dict[str, Any]:
        return {"value": self.values[int(np.asarray(z).argmax())]}

    def describe(self, z: Any) -> str:
        z = np.asarray(z, dtype=np.float64).ravel()
        if np.isclose(z.max(), 1.0) and np.isclose(z.sum(), 1.0):
            return self.values[int(z.argmax())].replace("_", " ")
        top = np.argsort(-z, kind="stable")[:2]
        return " / ".join(f"{self.values[k].replace('_', ' ')} {z[k]:.2f}" for k in top if z[k] > 0)

    def parse(self, text: str) -> np.ndarray:
        text = text.strip()
        if text in self.values:
            return one_hot(self.name, text)
        raise ValueError(f"cannot read condition {text!r} for {self.name}: expected one of {', '.join(self.values)}")

    def object_value(self, obj: dict, width: int, height: int) -> str:
        return obj[self.scene_key]

    def table_declaration(self) -> dict[str, dict]:
        return {self.name: {"type": "categorical", "values": list(self.values)}}

    def ground_truth_value(self, values: Mapping[str, Any]) -> Any:
        return self.with_defaults(values)["value"]

    def ground_truth_note(self, value: Any) -> str:
        return f"ground truth: the {value} objects"

    def selects(self, objects: list[dict], value: Any, width: int, height: int) -> list[int]:
        return [k for k, obj in enumerate(objects) if self.object_value(obj, width, height) == value]

    def draw(self, rng: np.random.Generator, objects: list[dict], width: int, height: int):
        present = {self.object_value(o, width, height) for o in objects}
        choices = [v for v in self.values if v in present]
        value = choices[int(rng.integers(len(choices)))]
        return one_hot(self.name, value), value, self.selects(objects, value, width, height)


_CONDITIONS: dict[str, Condition] = {}
_ALIASES = {"phase": "phase_slice", "acdc": "phase_slice"}  # names older cards use


def register_condition(cls: type[Condition]) -> type[Condition]:
    """Class decorator: make the condition available by its name (as networks' `register_model`)."""
    _CONDITIONS[cls.name] = cls()
    return cls


def get_condition(name: str) -> Condition:
    """The registered condition called `name` (or an older alias of it)."""
    key = _ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in _CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; expected one of {', '.join(_CONDITIONS)}")
    return _CONDITIONS[key]


def condition_of(card: Mapping[str, Any]) -> Condition:
    """The condition of a model card (older cards without one: quadrant, the reference's)."""
    if card.get("condition") == "table":  # a user's dataset: the card holds the declaration
        return TableCondition(card["condition_spec"])
    return get_condition(card.get("condition") or "quadrant")


def list_conditions() -> list[str]:
    return list(_CONDITIONS)


def condition_for_dim(cond_dim: int) -> Condition:
    """The condition of a model without a card, from its z size, where that size says it unambiguously."""
    matches = [c for c in _CONDITIONS.values() if c.cond_dim == cond_dim]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(c.name for c in matches) or "none"
    raise ValueError(f"a z of {cond_dim} numbers fits {names}: say which condition (the model has no card)")


# ---------------------------------------------------------------------------------------- the registry
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

    def object_value(self, obj: dict, width: int, height: int) -> str:
        column, row = obj["pixel_coords"][:2]
        return quadrant_of(column, row, width, height)

    def ground_truth_value(self, values: Mapping[str, Any]) -> Any:
        """The dominant quadrant of the blend (ties: the first in QUADRANTS)."""
        return QUADRANTS[int(np.argmax(self.encode(**values)))]

    def ground_truth_note(self, value: Any) -> str:
        return f"ground truth: the objects in the {value.replace('_', '-')} quadrant (the dominant one)"


@register_condition
class Colour(OneHotCondition):
    name, title, values, scene_key = "colour", "colour", COLOURS, "color"
    cond_dim = len(COLOURS)
    controls = (Control("value", "Colour", kind="select", options=COLOURS, default=COLOURS[0]),)
    z_encoding = "one-hot over (alizarin, nephritis, orange); inside_core.conditions.one_hot('colour', name)"


@register_condition
class Shape(OneHotCondition):
    name, title, values, scene_key = "shape", "shape", SHAPES, "shape"
    cond_dim = len(SHAPES)
    controls = (Control("value", "Shape", kind="select", options=SHAPES, default=SHAPES[0]),)
    z_encoding = "one-hot over (cube, sphere, triangle); inside_core.conditions.one_hot('shape', name)"


@register_condition
class Size(OneHotCondition):
    name, title, values, scene_key = "size", "size", SIZES, "size"
    cond_dim = len(SIZES)
    controls = (Control("value", "Size", kind="select", options=SIZES, default=SIZES[0]),)
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
        return f"({_number(z[0])}, {_number(z[1])}), r {_number(z[2])}"

    def marker(self, values: Mapping[str, Any]):
        v = self.with_defaults(values)
        return (float(v["loc_x"]), float(v["loc_y"])), float(v["radius"])

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

    def describe(self, z: Any) -> str:
        z = np.asarray(z, dtype=np.float64).ravel()
        phase = {0.0: "ED", 1.0: "ES"}.get(round(float(z[0]), 6), f"phase {z[0]:.2f}")
        return f"{phase}, slice {z[1]:.2f}"

    def parse(self, text: str) -> np.ndarray:
        parts = [p.strip() for p in text.split(",")]
        try:
            if len(parts) == 2:
                phase = {"ED": 0.0, "ES": 1.0}.get(parts[0].upper())
                return acdc_condition(float(parts[0]) if phase is None else phase, float(parts[1]))
        except ValueError:
            pass
        raise ValueError(f"cannot read condition {text!r} for phase_slice: expected phase,slice (e.g. ES,0.5)")


# ---------------------------------------------------------------------------------- table conditions
# A user's own dataset (inside_core.data.nnunet): z is built from the variables its dataset.json declares
# under "conditions", one part per variable in declaration order. The model card keeps the declaration
# (card["condition"] = "table", card["condition_spec"] = {"variables": {...}}) so condition_of rebuilds it.
TABLE_TYPES = ("continuous", "categorical", "ordinal", "slice_position", "label_centroid", "label_size")
TABLE_BUILT_INS = ("slice_position", "label_centroid", "label_size")  # computed from the data, not the table
MISSING_POLICIES = ("drop", "fill")
# label_size: the radius of the disc with the label's area, in normalised units (1 = half the image side)
LABEL_SIZE_RANGE = (0.0, 1.0)
LABEL_SIZE_DEFAULT = 0.15
_MISSING_WORDS = ("", "na", "nan", "n/a", "none", "null")


def is_missing(value: Any) -> bool:
    """None, NaN, or an empty / NA cell: a value the table does not give."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in _MISSING_WORDS
    try:
        return bool(np.isnan(float(value)))
    except (TypeError, ValueError):
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def declaration_problems(name: str, declaration: Any, labels: Sequence[str] | None = None) -> list[str]:
    """Every problem of one variable's declaration (empty: usable), each a short phrase naming the variable.

    `labels`: the dataset's label names, to check the label a label_centroid / label_size refers to.
    """
    where = f"condition {name!r}"
    if not isinstance(name, str) or not name.strip() or name == "case":
        return [f"{where}: a variable needs a name other than 'case'"]
    if not isinstance(declaration, Mapping):
        return [f"{where}: the declaration must be an object like {{\"type\": \"continuous\", \"range\": [0, 1]}}"]
    kind = declaration.get("type")
    if kind not in TABLE_TYPES:
        return [f"{where}: unknown type {kind!r}; expected one of {', '.join(TABLE_TYPES)}"]
    problems = []
    if kind == "continuous":
        bounds = declaration.get("range")
        if not (isinstance(bounds, Sequence) and not isinstance(bounds, str) and len(bounds) == 2
                and all(_is_number(b) for b in bounds) and bounds[0] < bounds[1]):
            problems.append(f"{where}: a continuous variable needs \"range\": [low, high] with low < high")
    if kind in ("categorical", "ordinal"):
        values = declaration.get("values")
        if not (isinstance(values, Sequence) and not isinstance(values, str) and values):
            problems.append(f"{where}: a {kind} variable needs a non-empty \"values\" list")
        elif len({str(v) for v in values}) != len(values):
            problems.append(f"{where}: \"values\" holds duplicates")
    if kind in ("label_centroid", "label_size"):
        label = declaration.get("label")
        if not isinstance(label, str):
            problems.append(f"{where}: a {kind} needs \"label\": the name of a label in dataset.json")
        elif labels is not None and label not in labels:
            problems.append(f"{where}: label {label!r} is not in dataset.json's labels ({', '.join(labels)})")
    policy = declaration.get("missing", "drop")
    if policy not in MISSING_POLICIES:
        problems.append(f"{where}: \"missing\" must be \"drop\" or \"fill\", got {policy!r}")
    elif policy == "fill" and kind == "slice_position":
        problems.append(f"{where}: a slice position is never missing; remove \"missing\"")
    elif policy == "fill" and kind in ("continuous", "categorical", "ordinal") and "fill" not in declaration:
        problems.append(f"{where}: \"missing\": \"fill\" needs a \"fill\" value")
    elif policy == "fill" and not problems:
        try:
            _Variable(name, normalise_declaration(declaration)).part(declaration.get("fill", _NO_FILL))
        except (TypeError, ValueError) as error:
            problems.append(f"{where}: bad \"fill\" value ({error})")
    return problems


_NO_FILL = object()


def normalise_declaration(declaration: Mapping[str, Any]) -> dict[str, Any]:
    """A declaration with its defaults written out (what model cards record)."""
    out = dict(declaration)
    out.setdefault("missing", "drop")
    if out["type"] in ("categorical", "ordinal"):
        out["values"] = [str(v) for v in out["values"]]
    if out["type"] == "continuous":
        out["range"] = [float(b) for b in out["range"]]
    if out["missing"] == "fill" and out["type"] == "label_centroid":
        out.setdefault("fill", [0.0, 0.0])
    if out["missing"] == "fill" and out["type"] == "label_size":
        out.setdefault("fill", 0.0)
    return out


class _Variable:
    """One declared variable: its controls, its part of z and back."""

    def __init__(self, name: str, declaration: Mapping[str, Any]):
        self.name, self.decl, self.kind = name, declaration, declaration["type"]
        self.fill_bit = declaration.get("missing", "drop") == "fill"
        self.values = tuple(declaration.get("values", ()))
        self.low, self.high = declaration.get("range", (0.0, 1.0))

    # -- controls
    def controls(self) -> tuple[Control, ...]:
        name, unit = self.name, self.decl.get("unit")
        label = f"{name} ({unit})" if unit else name
        if self.kind == "continuous":
            default = self.decl.get("default", self.decl.get("fill", (self.low + self.high) / 2))
            step = float(10 ** np.floor(np.log10((self.high - self.low) / 100)))
            return (Control(name, label, self.low, self.high, step=step, default=float(default)),)
        if self.kind == "ordinal":
            help_text = ", ".join(f"{k} = {v}" for k, v in enumerate(self.values))
            return (Control(name, f"{label} ({self.values[0]} → {self.values[-1]})", 0.0,
                            float(max(len(self.values) - 1, 1)), step=1.0, default=0.0, help=help_text),)
        if self.kind == "categorical":
            return (Control(name, label, kind="select", options=self.values, default=self.values[0]),)
        if self.kind == "slice_position":
            return (Control(name, f"{label} (slice position)", 0.0, 1.0, kind="stack", default=None,
                            help="the slice's position along the stack: 0 = first, 1 = last"),)
        if self.kind == "label_centroid":
            what = f"centre of {self.decl['label']}"
            return (Control(f"{name}_x", f"{name} x ({what}, left → right)", -1.0, 1.0, default=0.0),
                    Control(f"{name}_y", f"{name} y ({what}, top → bottom)", -1.0, 1.0, default=0.0))
        return (Control(name, f"{label} (radius of {self.decl['label']}, 1 = half the image side)",
                        *LABEL_SIZE_RANGE, step=0.01, default=LABEL_SIZE_DEFAULT),)

    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.controls())

    def sweep(self) -> dict[str, tuple[float, float]]:
        if self.kind == "continuous":
            return {self.name: (self.low, self.high)}
        if self.kind == "ordinal":
            return {self.name: (0.0, float(max(len(self.values) - 1, 1)))}
        if self.kind == "slice_position":
            return {self.name: (0.0, 1.0)}
        if self.kind == "label_centroid":
            return {f"{self.name}_x": (-0.75, 0.75), f"{self.name}_y": (-0.75, 0.75)}
        if self.kind == "label_size":
            return {self.name: (0.05, 0.5)}
        return {}

    @property
    def width(self) -> int:
        core = {"categorical": len(self.values), "label_centroid": 2}.get(self.kind, 1)
        return core + int(self.fill_bit)

    # -- encoding
    def part(self, value: Any) -> list[float]:
        """This variable's numbers in z for one value (None / NaN / "": missing)."""
        missing = (all(is_missing(v) for v in value) if self.kind == "label_centroid" and isinstance(value, tuple)
                   else is_missing(value) or value is _NO_FILL)
        if missing:
            if not self.fill_bit:
                raise ValueError(f"{self.name} is missing and its declaration does not say \"missing\": \"fill\"")
            value = self.decl.get("fill", 0.0)
        core = self._core(value)
        return core + ([float(missing)] if self.fill_bit else [])

    def _core(self, value: Any) -> list[float]:
        if self.kind == "categorical":
            text = str(value).strip()
            if text not in self.values:
                raise ValueError(f"{self.name} {text!r} is not one of {', '.join(self.values)}")
            return [float(text == v) for v in self.values]
        if self.kind == "ordinal":
            text = str(value).strip()
            index = float(self.values.index(text)) if text in self.values else _float(self.name, value)
            return [index / (len(self.values) - 1) if len(self.values) > 1 else 0.0]
        if self.kind == "continuous":
            return [(_float(self.name, value) - self.low) / (self.high - self.low)]
        if self.kind == "label_centroid":
            x, y = value
            return [_float(f"{self.name}_x", x), _float(f"{self.name}_y", y)]
        return [_float(self.name, value)]

    def decode(self, part: np.ndarray) -> dict[str, Any]:
        """Control values from this variable's part of z (missing: None)."""
        keys = self.keys()
        if self.fill_bit and part[-1] > 0.5:
            return {key: None for key in keys}
        if self.kind == "categorical":
            return {self.name: self.values[int(np.argmax(part[:len(self.values)]))]}
        if self.kind == "ordinal":
            return {self.name: float(part[0]) * max(len(self.values) - 1, 0)}
        if self.kind == "continuous":
            return {self.name: self.low + float(part[0]) * (self.high - self.low)}
        if self.kind == "label_centroid":
            return {keys[0]: float(part[0]), keys[1]: float(part[1])}
        return {self.name: float(part[0])}

    def words(self, part: np.ndarray) -> str:
        values = self.decode(part)
        if all(v is None for v in values.values()):
            return f"{self.name} missing"
        if self.kind == "categorical":
            return f"{self.name} {values[self.name]}"
        if self.kind == "ordinal":
            index = values[self.name]
            near = self.values[int(np.clip(round(index), 0, len(self.values) - 1))]
            return f"{self.name} {near}" if np.isclose(index, round(index)) else f"{self.name} ~{near} ({index:.2f})"
        if self.kind == "continuous":
            unit = f" {self.decl['unit']}" if self.decl.get("unit") else ""
            return f"{self.name} {_minus(f'{values[self.name]:.3g}')}{unit}"
        if self.kind == "label_centroid":
            x, y = values.values()
            return f"{self.name} at ({_number(x)}, {_number(y)})"
        return f"{self.name} {_number(values[self.name])}"

    def encoding_line(self) -> str:
        fill = " + missing bit (1 = missing, value = fill)" if self.fill_bit else ""
        if self.kind == "continuous":
            return f"{self.name}: (x - {self.low:g}) / ({self.high:g} - {self.low:g}){fill}"
        if self.kind == "categorical":
            return f"{self.name}: one-hot over ({', '.join(self.values)}){fill}"
        if self.kind == "ordinal":
            return f"{self.name}: index / {max(len(self.values) - 1, 1)} over ({', '.join(self.values)}){fill}"
        if self.kind == "slice_position":
            return f"{self.name}: slice k of n as k / (n - 1)"
        if self.kind == "label_centroid":
            return f"{self.name}: (x, y) centre of label {self.decl['label']} in normalised coordinates{fill}"
        return f"{self.name}: radius of the disc of label {self.decl['label']}'s area, 1 = half the side{fill}"


def _float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


class TableCondition(Condition):
    """The variables a user's dataset.json declares, as one condition (an instance per declaration).

    spec: {"variables": {name: declaration, ...}} (or the mapping of variables itself), the declaration
    as in docs/your-data.md. z concatenates each variable's part in declaration order.
    """

    name = "table"
    dataset = "nnunet"

    def __init__(self, spec: Mapping[str, Any]):
        variables = spec.get("variables", spec) if isinstance(spec, Mapping) else None
        if not isinstance(variables, Mapping) or not variables:
            raise ValueError("a table condition needs at least one declared variable")
        problems = [p for name, decl in variables.items() for p in declaration_problems(name, decl)]
        if problems:
            raise ValueError("; ".join(problems))
        self.variables = {name: normalise_declaration(decl) for name, decl in variables.items()}
        self._vars = [_Variable(name, decl) for name, decl in self.variables.items()]
        self.controls = tuple(c for v in self._vars for c in v.controls())
        keys = [c.key for c in self.controls]
        if len(set(keys)) != len(keys):
            raise ValueError(f"the declared variables give clashing control keys: {', '.join(keys)}")
        self.cond_dim = sum(v.width for v in self._vars)
        self.sweep = {k: r for v in self._vars for k, r in v.sweep().items()}
        self.title = ", ".join(self.variables)
        self.z_encoding = "concatenated in this order: " + "; ".join(v.encoding_line() for v in self._vars)
        self.caption = "z = " + self.z_encoding

    def spec(self) -> dict[str, Any]:
        """The declaration, for card["condition_spec"]."""
        return {"variables": {name: dict(decl) for name, decl in self.variables.items()}}

    def defaults(self) -> dict[str, Any]:
        return {c.key: (0.5 if c.kind == "stack" else c.default) for c in self.controls}

    def encode(self, **values: Any) -> np.ndarray:
        v = self.with_defaults(values)
        parts: list[float] = []
        for variable in self._vars:
            keys = variable.keys()
            value = (v[keys[0]], v[keys[1]]) if variable.kind == "label_centroid" else v[keys[0]]
            parts += variable.part(value)
        return np.array(parts, dtype=np.float32)

    def _split(self, z: Any) -> list[np.ndarray]:
        z = np.asarray(z, dtype=np.float64).ravel()
        if z.size != self.cond_dim:
            raise ValueError(f"a z of {z.size} numbers does not fit {self.title} ({self.cond_dim} numbers)")
        edges = np.cumsum([0] + [v.width for v in self._vars])
        return [z[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def values_from_z(self, z: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for variable, part in zip(self._vars, self._split(z), strict=True):
            out.update(variable.decode(part))
        return out

    def describe(self, z: Any) -> str:
        return ", ".join(v.words(p) for v, p in zip(self._vars, self._split(z), strict=True))

    def caption_for(self, values: Mapping[str, Any]) -> str:
        return f"z: {self.describe(self.encode(**values))} ({self.cond_dim} numbers: {self.z_encoding})"

    def parse(self, text: str) -> np.ndarray:
        """z from "name=value,name=value" (keys as the controls'; unnamed ones take their defaults;
        a value "NA" or empty means missing)."""
        values: dict[str, Any] = {}
        for item in (p for p in text.split(",") if p.strip()):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"cannot read condition {text!r}: expected name=value pairs, "
                                 f"names {', '.join(c.key for c in self.controls)}")
            control = self.control(key.strip())
            value = value.strip()
            values[control.key] = None if is_missing(value) else value if control.kind == "select" else float(value)
        return self.encode(**values)

    def marker(self, values: Mapping[str, Any]):
        """The first label_centroid (with the label_size of the same label as its radius, if declared)."""
        v = self.with_defaults(values)
        for variable in self._vars:
            if variable.kind != "label_centroid":
                continue
            x, y = (v[k] for k in variable.keys())
            if is_missing(x) or is_missing(y):
                return None
            size = next((w for w in self._vars if w.kind == "label_size" and w.decl["label"] == variable.decl["label"]),
                        None)
            radius = None if size is None or is_missing(v[size.name]) else float(v[size.name])
            return (float(x), float(y)), radius
        return None
