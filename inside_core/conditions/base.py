"""The base of every condition: the z encodings, `Control`, `Condition`, `OneHotCondition`, the registry.

See the package docstring (inside_core/conditions/__init__.py) for what a condition holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Control", "Condition", "register_condition", "get_condition", "condition_of", "list_conditions",
    "condition_for_dim", "QUADRANTS", "COLOURS", "SHAPES", "SIZES", "CONDITION_VALUES", "one_hot",
    "quadrant_of", "quadrant_mass", "quadrant_blend", "blend_weight", "point_condition", "acdc_condition",
    "slice_position",
    "POINT_RADIUS_RANGE", "format_number",
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


def quadrant_mass(attention: np.ndarray) -> np.ndarray:
    """Fraction of a map's mass (H, W) in each quadrant, in the order of QUADRANTS, (4,).

    The rule of `quadrant_of`, for every pixel at once: a pixel is in the top half if row < H/2, in the
    left half if column < W/2, so the mass is counted in the quadrants that CLEVR-Seg objects belong to.
    """
    height, width = attention.shape
    top, left = np.arange(height) < height / 2, np.arange(width) < width / 2
    total = float(attention.sum()) or 1.0
    regions = {"top_left": (top, left), "top_right": (top, ~left), "bottom_right": (~top, ~left),
               "bottom_left": (~top, left)}
    return np.array([attention[np.ix_(*regions[q])].sum() / total for q in QUADRANTS])


def blend_weight(v: float) -> float:
    """A location slider's weight of the second of two halves: 0 up to -QUADRANT_BLEND, 1 from +QUADRANT_BLEND,
    linear between (the rule of `quadrant_blend` along one axis; the cube_half condition uses it alone)."""
    return float(np.clip(v / (2 * QUADRANT_BLEND) + 0.5, 0.0, 1.0))


def quadrant_blend(x: float, y: float) -> np.ndarray:
    """z for a location slider: the quadrant one-hot, blended bilinearly between quadrants.

    Pure one-hot while |x| >= 0.5 and |y| >= 0.5 (the quadrants' centres and beyond: the slider's dead
    zones, where z does not change); within ±0.5 of the centre lines neighbouring quadrants are mixed
    linearly, so a slider moving across the middle changes z continuously. The weights sum to 1.
    """
    right, bottom = blend_weight(x), blend_weight(y)
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


def format_number(value: float, digits: int = 2) -> str:
    """A number for a label or a caption, with a true minus sign (the one formatting of figures and words)."""
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

    @property
    def short(self) -> str:
        """The control's shortest name (loc_x -> x, radius -> r), for captions and panel titles."""
        return min((self.key, *self.aliases), key=len)

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
    spatial_dims: ClassVar[int] = 2  # of the images its dataset holds (3: volumes)
    # True: z says nothing about places in the image, so a turned or mirrored image keeps its z and
    # predictions may be averaged over the in-plane symmetries (inside_core.postprocess, --tta). False by
    # default: a quadrant, a point, a user's table (it may say "left") would have to turn with the image.
    orientation_free: ClassVar[bool] = False
    range_words: ClassVar[dict[str, str]] = {"dead": "z does not change here"}  # the page's key to marked ranges

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
        return ", ".join(format_number(v) for v in np.asarray(z, dtype=np.float64).ravel())

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

    # -- sweeps: which controls a sweep may run over, their range and the default one
    def sweep_controls(self) -> tuple[Control, ...]:
        """The controls a sweep may run over: those with a `sweep` range, and selects (over their options)."""
        return tuple(c for c in self.controls if c.key in self.sweep or c.kind == "select")

    def sweep_key(self, variable: str) -> str:
        """The control key of a sweep variable (a key or an alias: x, y, r work); ValueError naming the
        choices if it is not one this condition sweeps (its `sweep` keys, or a select's options)."""
        try:
            key = self.control(variable).key
        except ValueError:
            key = None
        if key is None or self.control(key) not in self.sweep_controls():
            choices = list(self.sweep) or [c.key for c in self.controls if c.kind == "select"]
            raise ValueError(f"cannot sweep {variable!r} for condition {self.name}; choose one of "
                             f"{', '.join(choices)}")
        return key

    def sweep_range(self, variable: str) -> tuple[float, float]:
        """(low, high) a sweep of this control runs over: its `sweep` entry, else the control's range."""
        control = self.control(variable)
        return self.sweep.get(control.key, (control.low, control.high))

    def sweep_values(self, variable: str, count: int = 6) -> list:
        """Evenly spaced values over the variable's sweep range (a select's options)."""
        control = self.control(variable)
        if control.kind == "select":
            return list(control.options)
        low, high = self.sweep_range(control.key)
        return [float(v) for v in np.linspace(low, high, count)]

    def sweep_z(self, base_z: Any, variable: str, values: Sequence) -> list[np.ndarray]:
        """z for each swept value, the other controls held at the values that encode `base_z`."""
        key = self.sweep_key(variable)
        base = self.values_from_z(base_z)
        return [self.encode(**{**base, key: value}) for value in values]

    def default_sweep_variable(self) -> str:
        """The control a default sweep runs over: a stack's slice (a stack has ground truth at a few
        frames only, along its whole length: ACDC's ED and ES), else the first sweep variable, else the
        first select (one-hot values)."""
        stacks = [c.key for c in self.controls if c.kind == "stack" and c.key in self.sweep]
        sweepable = stacks or list(self.sweep)
        if sweepable:
            return sweepable[0]
        return next(c.key for c in self.controls if c.kind == "select")

    # -- words for figures: values, curves, axes
    @property
    def categories(self) -> tuple[str, ...]:
        """The values of a one-hot condition (quadrants, colours, ...), () for a continuous one."""
        return ()

    def value_label(self, value: Any, short: bool = False) -> str:
        """Words for a select's value ("top_left" -> "top left"); `short`: an abbreviation for tick labels."""
        return str(value).replace("_", " ")

    def series_label(self, key: str, value: float) -> str:
        """Words for one control held at `value`, naming a curve in a legend (e.g. "x 0.50")."""
        return f"{self.control(key).short} {format_number(float(value))}"

    def series_colour(self, key: str, value: float) -> str | None:
        """The palette's colour for a curve held at `value`, where the value has one (ACDC's phases);
        None: the figure picks the next of its category colours."""
        return None

    def axis_label(self, key: str) -> str:
        """A plot axis along one control: its label, in lower case."""
        return self.control(key).label.lower()

    # -- regions of the image that z names
    def region_lines(self) -> tuple[list[float], list[float]]:
        """Normalised (x positions, y positions) where z switches between one-hots (quadrant: the image's
        centre lines): the middle of each control's blend band, on the axis that control moves the marker."""
        xs: list[float] = []
        ys: list[float] = []
        defaults = self.defaults()
        base = self.marker(defaults)
        for control in self.controls:
            if control.blend is None or base is None:
                continue
            centre = (control.blend[0] + control.blend[1]) / 2
            moved = self.marker({**defaults, control.key: centre})
            if moved[0][0] != base[0][0]:
                xs.append(float(moved[0][0]))
            elif moved[0][1] != base[0][1]:
                ys.append(float(moved[0][1]))
        return xs, ys

    def region_mass(self, attention: np.ndarray) -> np.ndarray | None:
        """Where the values are regions of the image: the fraction of a map's mass (H, W) in each, in the
        order of `categories`; None for a condition whose values are not places."""
        return None

    def marker(self, values: Mapping[str, Any]) -> tuple[tuple[float, float], float | None] | None:
        """Where z points on the image: ((x, y), radius or None) in normalised coordinates, or None."""
        return None

    def image_point(self) -> tuple[str, str, str | None] | None:
        """The control keys of the point `marker` draws, (x, y, radius or None), so the page can let it be
        dragged on the image (x column, y row, normalised -1..1; the radius in units of half the side).
        None: nothing of this condition is a point on the image."""
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

    @property
    def categories(self) -> tuple[str, ...]:
        return self.values

    def encode(self, **values: Any) -> np.ndarray:
        return one_hot(self.name, self.with_defaults(values)["value"])

    def values_from_z(self, z: Any) -> dict[str, Any]:
        return {"value": self.values[int(np.asarray(z).argmax())]}

    def describe(self, z: Any) -> str:
        z = np.asarray(z, dtype=np.float64).ravel()
        if np.isclose(z.max(), 1.0) and np.isclose(z.sum(), 1.0):
            return self.value_label(self.values[int(z.argmax())])
        top = np.argsort(-z, kind="stable")[:2]
        return " / ".join(f"{self.value_label(self.values[k])} {z[k]:.2f}" for k in top if z[k] > 0)

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
        from inside_core.conditions.table import TableCondition  # builds on this module

        return TableCondition(card["condition_spec"])
    return get_condition(card.get("condition") or "quadrant")


def list_conditions() -> list[str]:
    return list(_CONDITIONS)


def condition_for_dim(cond_dim: int, spatial_dims: int = 2) -> Condition:
    """The condition of a model without a card, from its z size (and whether it reads images or volumes),
    where that says it unambiguously."""
    matches = [c for c in _CONDITIONS.values() if c.cond_dim == cond_dim and c.spatial_dims == spatial_dims]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(c.name for c in matches) or "none"
    raise ValueError(f"a z of {cond_dim} numbers fits {names}: say which condition (the model has no card)")
