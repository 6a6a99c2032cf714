"""Table conditions: the variables a user's dataset declares in its dataset.json, as one condition.

`TableCondition(spec)` is built from a declaration (continuous, categorical, ordinal, and the built-ins
slice_position, label_centroid, label_size computed from the data), not registered by name: a model card
keeps the declaration as "condition_spec" and `inside_core.conditions.condition_of` rebuilds it.
The layout and the declarations: docs/your-data.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inside_core.conditions.base import Condition, Control, _minus, format_number
from inside_core.limits import limit, over_limit

__all__ = ["LABEL_SIZE_DEFAULT", "LABEL_SIZE_RANGE", "MISSING_POLICIES", "TABLE_BUILT_INS", "TABLE_TYPES",
           "TableCondition", "declaration_problems", "is_missing", "normalise_declaration"]


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
MAX_NAME = 64  # characters of a variable's name, unit or level: shown as labels on the page


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
    where = f"condition {str(name)[:MAX_NAME]!r}"
    if not isinstance(name, str) or not name.strip() or name == "case":
        return [f"{where}: a variable needs a name other than 'case'"]
    if len(name) > MAX_NAME or not name.isprintable():
        return [f"{where}: a variable's name must be at most {MAX_NAME} printable characters"]
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
        elif not all(abs(b) <= limit("condition_range_max") for b in bounds):  # its width stays finite too
            problems.append(f"{where}: \"range\" bounds must be within ±{limit('condition_range_max'):g} "
                            "(INSIDE_LIMIT_CONDITION_RANGE_MAX)")
        if "default" in declaration and not _is_number(declaration["default"]):
            problems.append(f"{where}: \"default\" must be a finite number")
    if not (declaration.get("unit") is None or (isinstance(declaration["unit"], str) and len(declaration["unit"])
                                                  <= MAX_NAME and declaration["unit"].isprintable())):
        problems.append(f"{where}: \"unit\" must be a text of at most {MAX_NAME} printable characters")
    if kind in ("categorical", "ordinal"):
        values = declaration.get("values")
        if not (isinstance(values, Sequence) and not isinstance(values, str) and values):
            problems.append(f"{where}: a {kind} variable needs a non-empty \"values\" list")
        elif over_limit("categorical_levels", len(values)):
            problems.append(f"{where}: {over_limit('categorical_levels', len(values))}")
        elif not all((isinstance(v, str) or _is_number(v)) and len(str(v)) <= MAX_NAME for v in values):
            problems.append(f"{where}: \"values\" must be texts or numbers of at most {MAX_NAME} characters")
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
            return f"{self.name} at ({format_number(x)}, {format_number(y)})"
        return f"{self.name} {format_number(values[self.name])}"

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
        problem = over_limit("cond_dim", self.cond_dim)
        if problem:
            raise ValueError(f"the declared variables make z {problem}")
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

    def series_label(self, key: str, value: float) -> str:
        """The words of the variable that owns the control, at `value` (e.g. "age 40")."""
        key = self.control(key).key
        for variable, part in zip(self._vars, self._split(self.encode(**{key: value})), strict=True):
            if key in variable.keys():
                return variable.words(part)
        return super().series_label(key, value)

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

    def image_point(self) -> tuple[str, str, str | None] | None:
        """The first label_centroid's (x, y) keys, and the label_size of the same label as the radius."""
        for variable in self._vars:
            if variable.kind == "label_centroid":
                size = next((w for w in self._vars if w.kind == "label_size"
                             and w.decl["label"] == variable.decl["label"]), None)
                x_key, y_key = variable.keys()
                return x_key, y_key, None if size is None else size.name
        return None
