"""The dashboard's source for a user's own folder in the nnU-Net v2 raw layout (inside_core.data.nnunet),
with the same questions as the sources of app/sources.py:

    len(source), source.title(index), source.num_slices(index)
    source.view(index, controls, follow, condition) -> View: the slice the `slice` control (or the middle) picks,
                                                  its label map as ground truth (None without one)
    source.offers = {"stack", "table"}:
        "stack"  slice_order(index), position(index, slice_index): slices in file order, positions k / (n - 1)
        "table"  own_values(index, slice_index): the case's own condition values (the table's, and the
                 built-ins computed from its label: where the label is, how big) to start the controls from

and `folder_condition(root, variables)`: the TableCondition of a folder's dataset.json, so the page can
draw its controls (a slider per continuous / ordinal variable, a select per categorical one, x / y
sliders and a draggable point per label_centroid) before or without a model. A model's card has its own
(`inside_core.conditions.condition_of(card)`), which the page should prefer once a model is chosen.

Every slice of every case is shown, including those the training's missing-value policy leaves out, and
imagesTs cases without labels. Cases are read when first viewed (a few at a time are kept). Nothing
here imports streamlit; the object is read-only after construction apart from that cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inside_core.conditions import TABLE_BUILT_INS, TableCondition
from inside_core.data import nnunet
from inside_core.data.errors import DataError
from inside_core.data.safe_io import check_case_pixels

__all__ = ["TableSource", "folder_condition", "KIND"]

KIND = "nnunet"  # the dataset kind of cards trained on such folders


def folder_condition(root: str | Path, variables: Sequence[str] | None = None) -> TableCondition:
    """The condition a folder's dataset.json declares (all variables, or the named subset)."""
    return nnunet.table_condition(nnunet.read_layout(root), variables)


class TableSource:
    """A folder's cases of one split: images fitted into `image_size` like the loader's, labels as ground truth."""

    kind = KIND
    offers = frozenset({"stack", "table"})

    def __init__(self, root: str | Path, split: str = "test", image_size: int = 128,
                 variables: Sequence[str] | None = None, label: str = ""):
        from app.sources import SourceError

        try:
            self.layout = nnunet.read_layout(root)
            self.condition = nnunet.table_condition(self.layout, variables)
            self.cases = nnunet.layout_split(self.layout, split, seed=0)  # splits_final.json's, as training's
        except DataError as error:
            raise SourceError(str(error)) from None
        ending = self.layout.file_ending
        if split == "test" and not self.cases:  # imagesTs without labels: still worth exploring
            self.cases = [("imagesTs", c) for c in nnunet.case_ids(self.layout.root, "imagesTs", ending)]
        if not self.cases:
            raise SourceError(f"{root}: the {split} split holds no cases")
        self.root, self.split = self.layout.root, split
        self.size = (int(image_size), int(image_size))
        self.label = label or f"{self.root} ({split} split)"
        self._rows = self._table_rows()
        self._case = lru_cache(maxsize=8)(self._read_case)
        self.opening_index = 0

    @classmethod
    def from_folder(cls, root: str | Path, split: str = "test", image_size: int = 128,
                    variables: Sequence[str] | None = None, **_: Any) -> TableSource:
        """The registry's constructor (inside_core.data.registry): the card's input size and variables."""
        return cls(root, split=split, image_size=image_size, variables=variables)

    def _table_rows(self) -> dict:
        if self.layout.table is None or not nnunet.table_variables(self.layout.conditions):
            return {}
        try:
            return nnunet.read_table(self.layout.table)[1]
        except DataError:
            return {}  # the page can still show images; `inside data validate` names the problem

    def _read_case(self, index: int) -> tuple[list[torch.Tensor], list[np.ndarray | None], list[dict]]:
        """Fitted slices (C, H, W), their label indices (H, W) or None, and placements, of one case."""
        folder, case = self.cases[index]
        layout, ending = self.layout, self.layout.file_ending
        files = nnunet.channel_files(layout.root, folder, case, ending, len(layout.channels))
        stack, spacing = nnunet.read_channels(files, ending, layout.slice_axis, layout.channels)  # noNorm kept
        label_path = nnunet.label_file(layout.root, folder, case, ending)
        labels = None
        if label_path.exists():
            raw = nnunet.read_labels(label_path, ending, layout.slice_axis)
            labels = nnunet.label_indices(raw, layout)  # values not in dataset.json show as background
        check_case_pixels(stack.shape[0], self.size, files[0])  # issue 23: slices x pixels once resized
        images, masks, placements = [], [], []
        for k in range(stack.shape[0]):
            image, mask, placement = nnunet.fit_slice(stack[k], None if labels is None else labels[k], spacing,
                                                      self.size)
            images.append(torch.from_numpy(image))
            masks.append(None if mask is None else mask.astype(np.int64))
            placements.append(placement)
        return images, masks, placements

    def __len__(self) -> int:
        return len(self.cases)

    def title(self, index: int) -> str:
        folder, case = self.cases[index]
        return f"{case} ({folder}, {self.split} split, {index + 1} of {len(self)})"

    def num_slices(self, index: int) -> int:
        return len(self._case(index)[0])

    def slice_order(self, index: int) -> list[int]:
        return list(range(self.num_slices(index)))

    def position(self, index: int, slice_index: int) -> float:
        n = self.num_slices(index)
        return 0.0 if n <= 1 else slice_index / (n - 1)

    def own_values(self, index: int, slice_index: int = 0) -> dict[str, Any]:
        """The case's own control values: the table's cells, the built-ins from its label (None: missing)."""
        _, case = self.cases[index]
        line, row = self._rows.get(case, (None, {}))
        _, masks, _ = self._case(index)
        mask = masks[slice_index] if masks and masks[slice_index] is not None else None
        values: dict[str, Any] = {}
        for name, decl in self.condition.variables.items():
            if decl["type"] not in TABLE_BUILT_INS:
                try:
                    values[name] = nnunet.parse_cell(decl, row.get(name, ""))
                except ValueError:
                    values[name] = None
                continue
            value = (self.position(index, slice_index) if decl["type"] == "slice_position" else None
                     if mask is None else nnunet.built_in_value(decl, mask, self.layout, 0.0))
            if decl["type"] == "label_centroid":
                values[f"{name}_x"], values[f"{name}_y"] = value if value is not None else (None, None)
            else:
                values[name] = value
        return values

    def view(self, index: int, controls: dict[str, Any], follow: bool = True, condition: Any = None, **_: Any):
        from app.sources import View

        images, masks, _ = self._case(index)
        n = len(images)
        stack_key = next((c.key for c in self.condition.controls if c.kind == "stack"), "slice")
        chosen = controls.get(stack_key, controls.get("slice", n // 2))
        slice_index = int(np.clip(int(chosen or 0), 0, n - 1)) if n > 1 else 0
        _, case = self.cases[index]
        notes = [f"slice {slice_index} of {n}"] if n > 1 else []
        own = self.own_values(index, slice_index)
        shown = {k: v for k, v in own.items() if v is not None}
        if shown:
            words = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())
            notes.append(f"this case's own conditions: {words}")
        truth = masks[slice_index]
        notes.append("ground truth: the label file" if truth is not None else "no label file: no ground truth")
        return View((self.root.name, case, slice_index), images[slice_index], truth, notes)
