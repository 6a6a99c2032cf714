"""What the figure kinds share: `Row` (one sample to draw), a model's name, conditioning and condition,
z in words and from the command line (through the conditions registry), the dataset of a checkpoint and
the samples a default figure shows.

Every condition-specific rule is the registry's (`inside_core.conditions`): its values (`categories`), its
default sweep variable, its words for values, curves and axes, its regions of the image. The few figure
choices that depend on a condition's *shape* (an object rule, continuous controls) are asked of the
condition here, never of its name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inside_core.checkpoints import DEFAULT_CHECKPOINTS, default_checkpoints, find_checkpoint
from inside_core.conditions import Condition, condition_for_dim, condition_of, get_condition

from .primitives import to_numpy

__all__ = ["Row", "MODEL_NAMES", "model_conditioning", "model_name", "model_condition", "condition_object",
           "categories", "describe_condition", "parse_condition", "sample_label", "row_from_item", "explore",
           "load_dataset", "default_sample_indices", "default_sweep_index", "default_sweep_variable",
           "resolve_checkpoint", "default_checkpoints", "DEFAULT_CHECKPOINTS"]

MODEL_NAMES = {"none": "Baseline", "film": "FiLM", "guideme": "Guide Me", "inside": "INSIDE"}


@dataclass
class Row:
    """One sample to draw: image (C, H, W), conditioning z (D,), ground truth (or None), a short label."""

    image: Any
    z: np.ndarray
    mask: Any = None
    label: str = ""


def model_conditioning(model: Any) -> str:
    """"none", "film", "guideme" or "inside": the model's conditioning (from its card or config)."""
    card = getattr(model, "card", None) or {}
    config = getattr(model, "config", None) or {}
    return str(card.get("conditioning") or config.get("conditioning") or "none")


def model_name(model: Any) -> str:
    """The name a paper uses for a model: Baseline, FiLM, Guide Me, INSIDE."""
    return MODEL_NAMES.get(model_conditioning(model), model_conditioning(model))


def model_condition(model: Any) -> str:
    """The registered name of the model's condition: its card's, else the one its z size names
    unambiguously (`condition_for_dim`, which refuses sizes several conditions share)."""
    card = getattr(model, "card", None) or {}
    if card.get("condition"):
        return condition_of(card).name
    cond_dim = int(getattr(model, "cond_dim", 0) or (getattr(model, "config", None) or {}).get("cond_dim", 4))
    return condition_for_dim(cond_dim).name


def condition_object(condition: str | Condition | None, model: Any = None) -> Condition:
    """A Condition from a name, a Condition, or (None) the model's."""
    if isinstance(condition, Condition):
        return condition
    if condition is not None:
        return get_condition(condition)
    card = getattr(model, "card", None) or {}
    if card.get("condition"):  # the registry's reading of a card: a user's table condition too
        return condition_of(card)
    return get_condition(model_condition(model))


def categories(condition: str | Condition) -> tuple[str, ...]:
    """The values of a one-hot condition, () for a continuous one: `Condition.categories`."""
    return tuple(condition_object(condition).categories)


def describe_condition(condition: str | Condition, z: Any) -> str:
    """A short label of z for a figure, e.g. "top left", "(0.31, −0.20), r 0.40", "ES, slice 0.50"."""
    return condition_object(condition).describe(to_numpy(z).astype(np.float64).ravel())


def parse_condition(condition: str | Condition, text: str) -> np.ndarray:
    """z from a command-line value (the condition's `parse`): a value name (top_left, orange, ...), "x,y,r"
    for point, "phase,slice" for ACDC (phase may be ED or ES), "x,y" (a location) for quadrant."""
    return condition_object(condition).parse(text)


def sample_label(condition: str | Condition, item: dict) -> str:
    """A row label for a dataset item: its condition value (ACDC: its phase and slice position)."""
    return describe_condition(condition, item["z"])


def row_from_item(condition: str | Condition, item: dict) -> Row:
    return Row(image=item["image"], z=to_numpy(item["z"]).astype(np.float32), mask=item.get("mask"),
               label=sample_label(condition, item))


def explore(model: Any, row: Row):
    """(explorer, prediction) for one row: the Explorer is the one inference path."""
    from inside_core.explorer import Explorer

    explorer = Explorer(model, row.image, row.mask)
    return explorer, explorer.update(row.z if getattr(model, "conditioned", True) else None)


# ------------------------------------------------------------------------------- checkpoints and data
def resolve_checkpoint(name: str | os.PathLike, directory: str | os.PathLike | None = None) -> Path:
    """A checkpoint by path or name: `inside_core.checkpoints.find_checkpoint` (kept under its old name)."""
    return find_checkpoint(name, directory)


def _default_data(card: dict) -> Path:
    """The bundled data of the card's dataset kind (inside_core.data.registry), generated on first use."""
    from inside_core.data.registry import card_dataset, dataset_kind

    return dataset_kind(card_dataset(card)).default_data()


def load_dataset(card: dict, data: str | os.PathLike | None = None, split: str = "test", seed: int | None = None):
    """The dataset a checkpoint was made for (its card's kind, condition, image size and spacing),
    from `data` or the kind's bundled default, through the kind's loader (inside_core.data.registry)."""
    from inside_core.data.registry import card_dataset, dataset_kind

    root = data if data is not None else _default_data(card)
    data_seed = seed if seed is not None else int((card.get("data") or {}).get("seed", 0) or 0)
    return dataset_kind(card_dataset(card)).load(root, split, condition=condition_of(card).name,
                                                 image_size=card.get("image_size") or None,
                                                 spacing=card.get("spacing"), seed=data_seed)


def _has_object_rule(condition: Condition) -> bool:
    """Whether the condition picks objects of a scene (CLEVR-Seg), so any value has a target."""
    return condition.ground_truth_value(condition.defaults()) is not None


def default_sweep_variable(condition: str | Condition) -> str:
    """The control a default sweep runs over: `Condition.default_sweep_variable` (ACDC: the slice)."""
    return condition_object(condition).default_sweep_variable()


def default_sample_indices(dataset: Any, condition: str | Condition, count: int = 4) -> list[int]:
    """Samples that show a model at work: one per value for one-hot conditions; for a condition without
    an object rule (ACDC), the samples nearest to 30 % and 70 % of each control's range (the first
    control outermost: ED and ES at a basal-mid and a mid-apical slice); otherwise `count` evenly
    spaced samples."""
    condition = condition_object(condition)
    n = len(dataset)
    if n == 0:
        raise ValueError("the dataset split is empty")
    values = categories(condition)
    if values:
        metas = [dataset[i].get("meta", {}) for i in range(n)]
        chosen = [next((i for i, m in enumerate(metas) if m.get("value") == v), None) for v in values]
        chosen = [i for i in chosen if i is not None]
        if chosen:
            return chosen[:max(count, len(chosen))]
    if not _has_object_rule(condition):
        controls = [c for c in condition.controls if c.continuous]
        zs = np.stack([to_numpy(dataset[i]["z"]).astype(np.float64).ravel() for i in range(n)])
        levels = [(c.low + 0.3 * (c.high - c.low), c.low + 0.7 * (c.high - c.low)) for c in controls]
        # z holds the controls in order; an earlier control weighs 10x, so its level is matched first
        weights = 10.0 ** np.arange(len(controls))[::-1]
        chosen = []
        for target in np.stack(np.meshgrid(*levels, indexing="ij"), -1).reshape(-1, len(controls)):
            targets = condition.encode(**dict(zip((c.key for c in controls), target, strict=True)))
            distance = (np.abs(zs[:, :len(controls)] - targets[:len(controls)]) * weights).sum(1)
            chosen.append(int(np.argmin(distance)))  # the first of the closest: deterministic
        return chosen
    return sorted({int(round(k)) for k in np.linspace(0, n - 1, min(count, n))})


def default_sweep_index(dataset: Any, condition: str | Condition, variable: str, candidates: int = 100) -> int:
    """The sample a default sweep shows: for a condition with an object rule and a continuous swept
    control (point along x, y or r), the scene with the most objects that some swept value selects, so
    the mask visibly changes; for a condition without one (ACDC), the first default sample (ED,
    mid-basal slice); otherwise the first sample."""
    condition = condition_object(condition)
    if not _has_object_rule(condition):
        return default_sample_indices(dataset, condition)[0]
    control = condition.control(variable)
    if not control.continuous or not hasattr(dataset, "scene"):
        return 0
    swept = condition.sweep_values(control.key)
    best, best_count = 0, -1
    for index in range(min(len(dataset), candidates)):
        base = condition.values_from_z(to_numpy(dataset[index]["z"]).astype(np.float64))
        height, width = dataset.meta[index]["native_size"]
        objects = dataset.scene(index)
        selected = set()
        for value in swept:
            target = condition.ground_truth_value({**base, control.key: value})
            selected.update(condition.selects(objects, target, width, height))
        if len(selected) > best_count:
            best, best_count = index, len(selected)
    return best


def condition_rows(dataset: Any, condition: Condition, indices: Sequence[int],
                   conditions: Sequence[str] | None) -> list[Row]:
    """Rows for sample `indices`, with their own z or each of the command line's `conditions` (then the
    ground truth is rebuilt for that z where the condition has an object rule)."""
    rows = []
    for index in indices:
        if not 0 <= index < len(dataset):
            raise ValueError(f"sample {index} is out of range: the split has {len(dataset)} samples")
        item = dataset[index]
        if not conditions:
            rows.append(row_from_item(condition, item))
            continue
        for text in conditions:
            z = condition.parse(text)
            value = condition.ground_truth_value(condition.values_from_z(z))
            mask = dataset.target(index, condition.name, value) \
                if value is not None and hasattr(dataset, "target") else None
            rows.append(Row(item["image"], z, mask, condition.describe(z)))
    return rows
