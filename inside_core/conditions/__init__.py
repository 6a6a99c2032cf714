"""Conditions: how a piece of non-imaging information becomes z, one class each, registered by name.

A condition is everything the package knows about one kind of z, in one place:

- `controls`: the dashboard's widgets (key, label, range, step, default, and where the range blends or
  is dead), which are also the URL's keys and the figures' sweep variables;
- `encode(**values) -> z` and `values_from_z(z)`, its inverse where one exists;
- `describe(z)`: words for captions, figure labels and exports; `parse(text)`: z from the command line;
- `sweep`: which controls a sweep runs over, and their default range (`sweep_key`, `sweep_range`,
  `sweep_values`, `default_sweep_variable`);
- for figures: `categories` (a one-hot's values), `value_label`, `series_label`, `axis_label`, and
  where z names regions of the image, their boundaries (`region_lines`) and a map's mass in each
  (`region_mass`);
- for CLEVR-Seg, the target rule: which objects a value selects (`selects`) and the seeded draw of a
  training value (`draw`).

    condition = get_condition(card["condition"])       # "quadrant", "point", "phase_slice", "colour", ...
    z = condition.encode(**condition.defaults())

Adding a condition (say, lesion size) is one class in `builtin.py` with `@register_condition`; `base.py`
holds the encodings, `Control`, `Condition` and the registry, `table.py` the variables a dataset declares.
Coordinates are the normalised ones of `inside_core.geometry`: x is the column, y the row, both in
[-1, 1], (-1, -1) the top-left corner of the image.
"""

from inside_core.conditions import builtin as _builtin  # noqa: F401  (registers the built-in conditions)
from inside_core.conditions.base import (
    COLOURS,
    CONDITION_VALUES,
    POINT_RADIUS_RANGE,
    QUADRANT_BLEND,
    QUADRANTS,
    SHAPES,
    SIZES,
    Condition,
    Control,
    OneHotCondition,
    acdc_condition,
    condition_for_dim,
    condition_of,
    format_number,
    get_condition,
    list_conditions,
    one_hot,
    point_condition,
    quadrant_blend,
    quadrant_mass,
    quadrant_of,
    register_condition,
    slice_position,
)
from inside_core.conditions.table import (
    LABEL_SIZE_DEFAULT,
    LABEL_SIZE_RANGE,
    MISSING_POLICIES,
    TABLE_BUILT_INS,
    TABLE_TYPES,
    TableCondition,
    declaration_problems,
    is_missing,
    normalise_declaration,
)

__all__ = [
    "Control", "Condition", "OneHotCondition", "register_condition", "get_condition", "condition_of",
    "list_conditions", "condition_for_dim", "QUADRANTS", "COLOURS", "SHAPES", "SIZES", "CONDITION_VALUES",
    "one_hot", "quadrant_of", "quadrant_mass", "quadrant_blend", "point_condition", "acdc_condition", "slice_position",
    "POINT_RADIUS_RANGE", "QUADRANT_BLEND", "TableCondition", "TABLE_TYPES", "TABLE_BUILT_INS",
    "MISSING_POLICIES", "LABEL_SIZE_RANGE", "LABEL_SIZE_DEFAULT", "declaration_problems", "is_missing",
    "normalise_declaration", "format_number",
]
