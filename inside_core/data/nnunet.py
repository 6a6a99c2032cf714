"""A user's own dataset in the nnU-Net v2 raw layout, plus a table of non-imaging variables (docs/your-data.md).

This module reads the pixels and builds the dataset; the layout (dataset.json, file names, the table, the
splits, the condition) is inside_core.data.nnunet_layout, whose names are re-exported here so that
`from inside_core.data.nnunet import read_layout` and `nnunet.read_table(...)` keep working.

    FOLDER/dataset.json              channel_names, labels, numTraining, file_ending (".png" or ".nii.gz"),
                                     and "conditions": {variable: declaration, ...}
    FOLDER/imagesTr/CASE_0000.<ext>  channel 0 of CASE (more channels: _0001, ...; an RGB PNG is 3 channels)
    FOLDER/labelsTr/CASE.<ext>       integer labels, the image's size, values from dataset.json's labels
    FOLDER/imagesTs/, labelsTs/      optional test cases (the test split when labelsTs is there)
    FOLDER/conditions.csv (or .tsv)  a `case` column, one column per declared table variable

Declarations (the types of inside_core.conditions.TableCondition): continuous {"range": [lo, hi], "unit"},
categorical / ordinal {"values": [...]}, and built-ins computed here from the data: slice_position (3-D
cases), label_centroid and label_size of a named label (from the mask, after resizing). Each may say
"missing": "drop" (default: the case, or for a built-in the slice, is left out) or "fill" with a "fill"
value (z then carries a "missing" bit).

Images: PNG (grey or RGB) or NIfTI (2-D or 3-D; 3-D cases are cut into 2-D slices along
dataset.json's "slice_axis", default the last). NIfTI intensities are normalised per case and channel
(0.5-99.5 percentiles to [0, 1]), PNG ones divided by 255. Each slice is fitted into `image_size`
keeping its physical aspect ratio (pixel spacing from the NIfTI header, 1 for PNG) and padded, not
squashed. Labels become indices 0..K-1 in the order of their values in dataset.json.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from inside_core.conditions import TABLE_BUILT_INS, TableCondition
from inside_core.data.cache import cached_arrays, decode_meta, encode_meta
from inside_core.data.errors import DataError
from inside_core.data.nnunet_layout import (
    FILE_ENDINGS,
    SPLITS,
    SPLITS_FILE,
    TABLE_NAMES,
    Layout,
    case_ids,
    channel_files,
    find_table,
    label_file,
    labelled_test_cases,
    layout_problems,
    layout_split,
    parse_cell,
    read_dataset_json,
    read_layout,
    read_splits_file,
    read_table,
    split_cases,
    splits_problems,
    table_condition,
    table_variables,
)
from inside_core.data.safe_io import check_case_pixels
from inside_core.geometry import pixel_to_normalised
from inside_core.limits import over_limit

NO_NORM = "noNorm"  # nnU-Net v2's channel name for "no normalisation"

__all__ = ["FILE_ENDINGS", "SPLITS", "TABLE_NAMES", "Layout", "read_dataset_json", "layout_problems", "find_table",
           "read_layout", "case_ids", "channel_files", "label_file", "read_table", "parse_cell", "table_variables",
           "split_cases", "labelled_test_cases", "SPLITS_FILE", "read_splits_file", "splits_problems",
           "layout_split", "table_condition", "NO_NORM", "read_channels", "read_labels",
           "label_values_problem", "label_indices", "fit_slice", "built_in_value", "NnUNetDataset", "card_fields"]


# ------------------------------------------------------------------------------------------- the files
def _read_png(path: Path, labels: bool) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] (images) or (H, W) int64 (labels: grey, palette index or 16-bit)."""
    from inside_core.data.safe_io import image_float, open_image

    with open_image(path, path) as image:
        if labels:
            if image.mode not in ("L", "P", "I", "I;16", "1"):
                raise DataError(path, f"a label PNG must have one channel (grey or palette), got mode {image.mode}")
            return np.asarray(image).astype(np.int64)
        array = image_float(image)
    return array[..., None] if array.ndim == 2 else array


def _read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    from inside_core.data.acdc import load_nifti

    data, zooms = load_nifti(path)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise DataError(path, f"expected a 2-D or 3-D NIfTI, got shape {data.shape}")
    return data, zooms


def _stack(data: np.ndarray, axis: int) -> np.ndarray:
    """A 2-D array as one slice (1, H, W), a 3-D one as slices along `axis` (S, H, W)."""
    return data[None] if data.ndim == 2 else np.moveaxis(data, axis, 0)


def read_channels(files: Sequence[Path], ending: str, axis: int = -1,
                  channel_names: Sequence[str] | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """A case's channel files as float32 (S, C, H, W) in [0, 1] and the in-plane spacing (row, column).

    `channel_names` (dataset.json's, in channel order): a NIfTI channel named "noNorm" (nnU-Net v2's name
    for "no normalisation") is taken as stored, e.g. the already normalised slices `inside data export acdc`
    writes; every other NIfTI channel is normalised per case (0.5-99.5 percentiles to [0, 1]).
    """
    from inside_core.data.acdc import normalise_volume

    stacks, spacing = [], (1.0, 1.0)
    for channel, path in enumerate(files):
        if ending == ".png":
            stacks.append(np.moveaxis(_read_png(path, labels=False), -1, 0)[None])  # (1, C, H, W)
            continue
        data, zooms = _read_nifti(path)
        in_plane = [z for k, z in enumerate(zooms[:data.ndim]) if data.ndim == 2 or k != axis % 3]
        spacing = (float(in_plane[0]), float(in_plane[1]))
        as_stored = channel_names is not None and channel < len(channel_names) and channel_names[channel] == NO_NORM
        stacks.append(_stack(data.astype(np.float32) if as_stored else normalise_volume(data), axis)[:, None])
    shapes = {s.shape[:1] + s.shape[2:] for s in stacks}
    if len(shapes) > 1:
        raise DataError(files[0], f"the channel files differ in size: {sorted(shapes)}")
    return np.concatenate(stacks, axis=1).astype(np.float32), spacing


def read_labels(path: Path, ending: str, axis: int = -1) -> np.ndarray:
    """A label file as int64 (S, H, W); DataError for non-integer values."""
    if ending == ".png":
        return _read_png(path, labels=True)[None]
    data, _ = _read_nifti(path)
    if not np.allclose(data, np.round(data)):
        raise DataError(path, "label values must be integers")
    return _stack(np.round(data).astype(np.int64), axis)


def label_values_problem(labels: np.ndarray, layout: Layout) -> str | None:
    bad = sorted(set(np.unique(labels).tolist()) - set(layout.labels.values()))
    if not bad:
        return None
    allowed = ", ".join(f"{v} ({n})" for n, v in layout.labels.items())
    return f"label values {', '.join(str(v) for v in bad[:5])} are not in dataset.json's labels: {allowed}"


def label_indices(labels: np.ndarray, layout: Layout) -> np.ndarray:
    """Label values as class indices 0..K-1 in dataset.json's order; a value it does not declare becomes 0
    (background). No lookup table as large as the largest value in the file is built."""
    values = np.array(list(layout.labels.values()), np.int64)
    order = np.argsort(values)
    position = np.clip(np.searchsorted(values[order], labels), 0, len(values) - 1)
    found = values[order][position] == labels
    return np.where(found, order[position], 0).astype(np.int64)


# ---------------------------------------------------------------------------------------- the geometry
def fit_slice(image: np.ndarray, mask: np.ndarray | None, spacing: tuple[float, float],
              size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Fit (C, H, W) and (H, W) into `size` keeping the physical aspect ratio, centred, zero-padded.

    Returns (image, mask, placement) with placement = dict(top, left, height, width, pixel_mm).
    """
    channels, height, width = image.shape
    pixel = max(height * spacing[0] / size[0], width * spacing[1] / size[1])  # mm per output pixel
    new_h = int(np.clip(round(height * spacing[0] / pixel), 1, size[0]))
    new_w = int(np.clip(round(width * spacing[1] / pixel), 1, size[1]))
    top, left = (size[0] - new_h) // 2, (size[1] - new_w) // 2
    out = np.zeros((channels, *size), np.float32)
    for c in range(channels):
        plane = Image.fromarray(image[c].astype(np.float32), mode="F").resize((new_w, new_h), Image.BILINEAR)
        out[c, top:top + new_h, left:left + new_w] = np.asarray(plane)
    fitted = None
    if mask is not None:
        fitted = np.zeros(size, np.uint8)
        plane = Image.fromarray(mask.astype(np.uint8), mode="L").resize((new_w, new_h), Image.NEAREST)
        fitted[top:top + new_h, left:left + new_w] = np.asarray(plane)
    placement = {"top": top, "left": left, "height": new_h, "width": new_w, "pixel_mm": round(pixel, 6)}
    return out, fitted, placement


def built_in_value(declaration: dict, mask: np.ndarray, layout: Layout, position: float) -> Any:
    """A built-in variable's value on one fitted slice: slice position, (x, y) centroid, or size; None if
    the label is absent from the slice."""
    if declaration["type"] == "slice_position":
        return position
    rows, columns = np.nonzero(mask == layout.label_index(declaration["label"]))
    if rows.size == 0:
        return None
    height, width = mask.shape
    if declaration["type"] == "label_centroid":
        return (round(float(pixel_to_normalised(columns.mean(), width)), 6),
                round(float(pixel_to_normalised(rows.mean(), height)), 6))
    return round(float(math.sqrt(rows.size / math.pi) / (min(height, width) / 2)), 6)


# --------------------------------------------------------------------------------------------- dataset
class NnUNetDataset(torch.utils.data.Dataset):
    """2-D slices of the cases of one split, with z from the declared variables, held in memory.

    Item: dict(image float (C, H, W) in [0, 1], z float (D,), mask long (H, W) in 0..K-1 (label indices),
    meta dict(case, folder, slice_index, num_slices, values, spacing (mm per pixel, row and column),
    native_size, placement, index)). Whole-split arrays: `.images` (N, C, H, W), `.masks` (N, H, W),
    `.z` (N, D). `condition` (a TableCondition) may be given, e.g. a model card's, to encode z with it.
    """

    def __init__(self, root: str | Path, split: str = "train", image_size: int | Sequence[int] = 128,
                 variables: Sequence[str] | None = None, seed: int = 0, condition: TableCondition | None = None,
                 use_cache: bool = True):
        self.layout = read_layout(root)
        self.root, self.split, self.seed = self.layout.root, split, int(seed)
        self.image_size = (int(image_size), int(image_size)) if isinstance(image_size, int) else \
            tuple(int(s) for s in image_size)
        self.condition = condition or table_condition(self.layout, variables)
        self.cond_dim = self.condition.cond_dim
        self.label_names = self.layout.label_names
        self.num_classes = len(self.label_names)
        self.in_channels = len(self.layout.channels)
        ending = self.layout.file_ending
        self.cases = layout_split(self.layout, split, self.seed)
        if not self.cases:
            raise DataError(self.root, f"the {split} split has no cases")
        files = [self.root / "dataset.json", self.root / SPLITS_FILE]  # the missing ones are left out below
        files += [self.layout.table] if self.layout.table else []
        for folder, case in self.cases:
            files += channel_files(self.root, folder, case, ending, self.in_channels)
            files.append(label_file(self.root, folder, case, ending))
        settings = {"root": str(self.root.resolve()), "split": split, "image_size": self.image_size,
                    "seed": self.seed, "spec": self.condition.spec(), "cases": len(self.cases)}
        arrays = cached_arrays("nnunet", settings, [f for f in files if f.exists()], self._build, use_cache)
        self.images, self.masks, self.z = arrays["images"], arrays["masks"], arrays["z"]
        self.meta = decode_meta(arrays["meta"])
        if not self.meta:
            raise DataError(self.root, f"the {split} split has no slices left after the missing-value policy")

    def _rows(self) -> dict[str, tuple[int, dict[str, str]]]:
        if not table_variables(self.condition.variables):
            return {}
        if self.layout.table is None:
            raise DataError(self.root / "conditions.csv", "conditions table missing (the declared variables "
                            f"{', '.join(table_variables(self.condition.variables))} come from it)")
        return read_table(self.layout.table)[1]

    def case_values(self, case: str, rows: dict) -> dict[str, Any]:
        """The table variables of one case (None: missing); DataError with the file and line if bad."""
        line, row = rows.get(case, (None, {}))
        values = {}
        for name in table_variables(self.condition.variables):
            try:
                values[name] = parse_cell(self.condition.variables[name], row.get(name, ""))
            except ValueError as error:
                raise DataError(f"{self.layout.table}:{line}", f"{name}: {error}") from None
        return values

    def _build(self) -> dict[str, np.ndarray]:
        layout, spec = self.layout, self.condition.variables
        rows = self._rows()
        images, masks, zs, metas = [], [], [], []
        kept = 0  # bytes of the resized images and masks so far
        for folder, case in self.cases:
            values = self.case_values(case, rows)
            if any(v is None and spec[n]["missing"] == "drop" for n, v in values.items()):
                continue  # the declared policy: a case missing a "drop" variable is left out
            files = channel_files(self.root, folder, case, layout.file_ending, self.in_channels)
            stack, spacing = read_channels(files, layout.file_ending, layout.slice_axis, layout.channels)
            if stack.shape[1] != self.in_channels:
                raise DataError(files[0], f"{stack.shape[1]} channels but dataset.json names {self.in_channels}")
            path = label_file(self.root, folder, case, layout.file_ending)
            if not path.exists():  # said as validation says it, not as a generic "file missing"
                raise DataError(files[0], f"image without a label: {path.parent.name}/{path.name} missing")
            labels = read_labels(path, layout.file_ending, layout.slice_axis)
            if labels.shape != stack.shape[:1] + stack.shape[2:]:
                shape = stack.shape[:1] + stack.shape[2:]
                raise DataError(path, f"label shape {labels.shape} differs from the image's {shape}")
            problem = label_values_problem(labels, layout)
            if problem:
                raise DataError(path, problem)
            indices = label_indices(labels, layout)
            count = stack.shape[0]
            check_case_pixels(count, self.image_size, files[0])
            kept += count * (stack.shape[1] * 4 + 1) * self.image_size[0] * self.image_size[1]
            problem = over_limit("split_bytes", kept)
            if problem:
                raise DataError(self.root, f"the {self.split} split held in memory once resized: {problem}")
            for k in range(count):
                image, mask, placement = fit_slice(stack[k], indices[k], spacing, self.image_size)
                slice_values = dict(values)
                position = 0.0 if count <= 1 else k / (count - 1)
                for name, decl in spec.items():
                    if decl["type"] in TABLE_BUILT_INS:
                        slice_values[name] = built_in_value(decl, mask, layout, position)
                if any(slice_values[n] is None and spec[n]["missing"] == "drop" for n in spec):
                    continue
                controls = {}
                for name, value in slice_values.items():
                    if spec[name]["type"] == "label_centroid":
                        controls[f"{name}_x"], controls[f"{name}_y"] = value if value is not None else (None, None)
                    else:
                        controls[name] = value
                zs.append(self.condition.encode(**controls))
                images.append(image)
                masks.append(mask)
                metas.append({"case": case, "folder": folder, "slice_index": k, "num_slices": count,
                              "values": controls, "spacing": [placement["pixel_mm"]] * 2,
                              "native_size": list(stack.shape[2:]), "placement": placement, "index": len(metas)})
        size = self.image_size
        return {"images": np.stack(images) if images else np.zeros((0, self.in_channels, *size), np.float32),
                "masks": np.stack(masks) if masks else np.zeros((0, *size), np.uint8),
                "z": np.stack(zs).astype(np.float32) if zs else np.zeros((0, self.cond_dim), np.float32),
                "meta": encode_meta(metas)}

    def __len__(self) -> int:
        return len(self.meta)

    def __getitem__(self, index: int) -> dict:
        return {"image": torch.from_numpy(self.images[index]), "z": torch.from_numpy(self.z[index]),
                "mask": torch.from_numpy(self.masks[index]).long(), "meta": dict(self.meta[index])}

    def model_defaults(self) -> dict[str, int]:
        """Network arguments the data decide: input channels and classes (background included)."""
        return {"in_channels": self.in_channels, "num_classes": self.num_classes}


def card_fields(root: str | Path, variables: Sequence[str] | None = None) -> dict[str, Any]:
    """What a model card records about a folder: the condition and its full declaration, the labels."""
    layout = read_layout(root)
    condition = table_condition(layout, variables)
    return {"condition": "table", "condition_spec": condition.spec(), "z_encoding": condition.z_encoding,
            "labels": layout.label_names, "channel_names": layout.channels, "slice_axis": layout.slice_axis}


def load_split(root: str | Path, split: str, *, image_size: int | None = None,
               variables: Sequence[str] | None = None, seed: int = 0, **_: Any) -> NnUNetDataset:
    """The registry's loader (inside_core.data.registry): `variables` of the declared ones (None: all)."""
    return NnUNetDataset(root, split=split, image_size=image_size or 128, variables=variables, seed=seed)


def card_extras(data_config: dict) -> dict[str, Any]:
    """The registry's card hook: `card_fields` of the config's folder, and the variables the model uses,
    so condition_of(card) rebuilds the condition."""
    fields = card_fields(data_config["root"], data_config.get("variables"))
    return {**fields, "data": {"variables": list(fields["condition_spec"]["variables"])}}
