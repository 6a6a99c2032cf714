"""A user's own dataset in the nnU-Net v2 raw layout, plus a table of non-imaging variables (docs/your-data.md).

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

Splits are by case: imagesTs/labelsTs is the test split where present (imagesTr then 90/10 train/val),
otherwise imagesTr is split 72/8/20 by a permutation seeded with `seed`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from inside_core.conditions import TABLE_BUILT_INS, TableCondition, declaration_problems, is_missing
from inside_core.data.cache import cached_arrays, decode_meta, encode_meta
from inside_core.data.errors import DataError
from inside_core.geometry import pixel_to_normalised

__all__ = ["FILE_ENDINGS", "SPLITS", "Layout", "read_layout", "case_ids", "channel_files", "label_file",
           "read_table", "parse_cell", "read_channels", "read_labels", "fit_slice", "split_cases",
           "table_condition", "NnUNetDataset", "card_fields"]

FILE_ENDINGS = (".png", ".nii.gz", ".nii")
SPLITS = ("train", "val", "test", "all")
TABLE_NAMES = ("conditions.csv", "conditions.tsv")


# ------------------------------------------------------------------------------------------ the layout
@dataclass
class Layout:
    """What dataset.json says, checked enough to read the folder."""

    root: Path
    file_ending: str
    channels: list[str]
    labels: dict[str, int]  # name -> value, in value order
    conditions: dict[str, dict]
    slice_axis: int = -1
    num_training: int | None = None
    table: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)

    def label_index(self, name: str) -> int:
        return self.label_names.index(name)


def read_dataset_json(root: Path) -> dict:
    path = root / "dataset.json"
    if not path.exists():
        raise DataError(path, "dataset.json missing (not an nnU-Net raw folder)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(path, f"unreadable dataset.json ({error})") from None
    if not isinstance(meta, dict):
        raise DataError(path, "dataset.json must hold a JSON object")
    return meta


def layout_problems(meta: dict) -> list[str]:
    """Every problem of a dataset.json (empty: usable), as short phrases."""
    problems = []
    for key in ("channel_names", "labels", "file_ending"):
        if key not in meta:
            problems.append(f"lacks \"{key}\"")
    ending = meta.get("file_ending")
    if "file_ending" in meta and ending not in FILE_ENDINGS:
        problems.append(f"file_ending {ending!r} is not supported; use {', '.join(FILE_ENDINGS)}")
    channels = meta.get("channel_names")
    if "channel_names" in meta and not (isinstance(channels, dict) and channels
                                        and sorted(channels) == [str(k) for k in range(len(channels))]):
        problems.append("channel_names must map \"0\", \"1\", ... to names")
    labels = meta.get("labels")
    if "labels" in meta:
        if not (isinstance(labels, dict) and labels):
            problems.append("labels must map names to integer values")
        else:
            bad = [name for name, value in labels.items() if not isinstance(value, int) or isinstance(value, bool)]
            if bad:
                problems.append(f"labels {', '.join(bad)} are not single integers (region labels are not supported)")
            elif 0 not in labels.values():
                problems.append("labels need a background with value 0")
            elif len(set(labels.values())) != len(labels):
                problems.append("two labels share a value")
    conditions = meta.get("conditions", {})
    if not isinstance(conditions, dict):
        problems.append("conditions must map variable names to declarations")
    else:
        names = list(labels) if isinstance(labels, dict) else None
        problems += [p for name, decl in conditions.items() for p in declaration_problems(name, decl, names)]
    axis = meta.get("slice_axis", -1)
    if not isinstance(axis, int) or isinstance(axis, bool) or axis not in (-3, -2, -1, 0, 1, 2):
        problems.append(f"slice_axis must be 0, 1, 2 or -1 (the last), got {axis!r}")
    return problems


def find_table(root: Path, meta: dict) -> Path | None:
    if isinstance(meta.get("conditions_file"), str):
        return root / meta["conditions_file"]
    return next((root / n for n in TABLE_NAMES if (root / n).exists()), None)


def read_layout(root: str | Path) -> Layout:
    """The folder's dataset.json as a Layout; DataError naming dataset.json and its first problem."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(root, "folder not found")
    meta = read_dataset_json(root)
    problems = layout_problems(meta)
    if problems:
        raise DataError(root / "dataset.json", "; ".join(problems))
    labels = dict(sorted(meta["labels"].items(), key=lambda item: item[1]))
    channels = [meta["channel_names"][str(k)] for k in range(len(meta["channel_names"]))]
    extra = {k: v for k, v in meta.items() if k not in ("channel_names", "labels", "file_ending", "conditions")}
    return Layout(root, meta["file_ending"], channels, labels, dict(meta.get("conditions", {})),
                  int(meta.get("slice_axis", -1)), meta.get("numTraining"), find_table(root, meta), extra)


def case_ids(root: Path, folder: str, ending: str) -> list[str]:
    """Sorted case ids of `folder` (imagesTr / imagesTs): the stems of its CASE_0000<ending> files."""
    directory = root / folder
    if not directory.is_dir():
        return []
    suffix = "_0000" + ending
    return sorted(p.name[: -len(suffix)] for p in directory.iterdir() if p.name.endswith(suffix))


def channel_files(root: Path, folder: str, case: str, ending: str, count: int) -> list[Path]:
    """CASE_0000 ... CASE_{count-1} of `folder` that exist, stopping at the first gap."""
    files = []
    for k in range(count):
        path = root / folder / f"{case}_{k:04d}{ending}"
        if not path.exists():
            break
        files.append(path)
    return files


def label_file(root: Path, folder: str, case: str, ending: str) -> Path:
    """labelsTr/CASE<ending> for imagesTr (labelsTs for imagesTs)."""
    return root / folder.replace("images", "labels") / f"{case}{ending}"


# ------------------------------------------------------------------------------------------- the table
def read_table(path: Path) -> tuple[list[str], dict[str, tuple[int, dict[str, str]]], list[tuple[int, str]]]:
    """(header, case -> (line number, {column: text}), problems as (line, text)) of a CSV or TSV.

    Line numbers are the file's, the header being line 1. A duplicate case keeps its first row.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(path, "conditions table missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"unreadable conditions table ({error})") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    if "case" not in header:
        raise DataError(path, f"line 1: no 'case' column (columns: {', '.join(header) or 'none'})")
    rows: dict[str, tuple[int, dict[str, str]]] = {}
    problems: list[tuple[int, str]] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            problems.append((line, f"{len(cells)} cells but the header has {len(header)} columns"))
        row = {h: (cells[k].strip() if k < len(cells) else "") for k, h in enumerate(header)}
        case = row["case"]
        if not case:
            problems.append((line, "empty case id"))
        elif case in rows:
            problems.append((line, f"case {case!r} again (first on line {rows[case][0]})"))
        else:
            rows[case] = (line, row)
    return header, rows, problems


def parse_cell(declaration: dict, text: str) -> Any:
    """A table cell as its variable's value: a float (continuous), the text (categorical, ordinal), or None
    when missing. ValueError (a short phrase) for a wrong type or a value out of range."""
    if is_missing(text):
        return None
    kind = declaration["type"]
    if kind == "continuous":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        low, high = declaration["range"]
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{text} is outside the declared range [{low:g}, {high:g}]")
        return value
    values = [str(v) for v in declaration["values"]]
    if text not in values:
        raise ValueError(f"{text!r} is not one of {', '.join(values)}")
    return text


def table_variables(conditions: dict[str, dict]) -> list[str]:
    return [name for name, decl in conditions.items() if decl["type"] not in TABLE_BUILT_INS]


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


def read_channels(files: Sequence[Path], ending: str, axis: int = -1) -> tuple[np.ndarray, tuple[float, float]]:
    """A case's channel files as float32 (S, C, H, W) in [0, 1] and the in-plane spacing (row, column)."""
    from inside_core.data.acdc import normalise_volume

    stacks, spacing = [], (1.0, 1.0)
    for path in files:
        if ending == ".png":
            stacks.append(np.moveaxis(_read_png(path, labels=False), -1, 0)[None])  # (1, C, H, W)
            continue
        data, zooms = _read_nifti(path)
        in_plane = [z for k, z in enumerate(zooms[:data.ndim]) if data.ndim == 2 or k != axis % 3]
        spacing = (float(in_plane[0]), float(in_plane[1]))
        stacks.append(_stack(normalise_volume(data), axis)[:, None])
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


# ---------------------------------------------------------------------------------------- the geometry
def fit_slice(image: np.ndarray, mask: np.ndarray | None, spacing: tuple[float, float], size: tuple[int, int]):
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


# ---------------------------------------------------------------------------------------------- splits
def split_cases(train_cases: list[str], test_cases: list[str], split: str, seed: int) -> list[tuple[str, str]]:
    """(folder, case) pairs of a split; see the module docstring."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    tr = [("imagesTr", c) for c in sorted(train_cases)]
    ts = [("imagesTs", c) for c in sorted(test_cases)]
    if split == "all":
        return tr + ts
    order = [tr[i] for i in np.random.default_rng(seed).permutation(len(tr))]
    n = len(order)
    if ts:
        if split == "test":
            return ts
        n_val = max(1, n // 10) if n > 1 else 0
        return sorted(order[n_val:] if split == "train" else order[:n_val])
    n_train, n_val = n * 72 // 100, n * 80 // 100 - n * 72 // 100
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n - n * 80 // 100, 1)
        n_train = n - n_val - n_test
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    return sorted(parts[split])


def labelled_test_cases(layout: Layout) -> list[str]:
    """imagesTs cases that have a labelsTs file (only those can be a test split)."""
    return [c for c in case_ids(layout.root, "imagesTs", layout.file_ending)
            if label_file(layout.root, "imagesTs", c, layout.file_ending).exists()]


def table_condition(layout: Layout, variables: Sequence[str] | None = None) -> TableCondition:
    """The condition of the declared variables (all, or the named subset, in declaration order)."""
    if not layout.conditions:
        raise DataError(layout.root / "dataset.json", "declares no \"conditions\": nothing to condition on")
    chosen = list(layout.conditions) if not variables else list(variables)
    unknown = [v for v in chosen if v not in layout.conditions]
    if unknown:
        raise DataError(layout.root / "dataset.json", f"no declared condition {', '.join(map(repr, unknown))}; "
                        f"declared: {', '.join(layout.conditions)}")
    return TableCondition({"variables": {n: d for n, d in layout.conditions.items() if n in chosen}})


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
        self.cases = split_cases(case_ids(self.root, "imagesTr", ending), labelled_test_cases(self.layout),
                                 split, self.seed)
        if not self.cases:
            raise DataError(self.root, f"the {split} split has no cases")
        files = [self.root / "dataset.json"] + ([self.layout.table] if self.layout.table else [])
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
        for folder, case in self.cases:
            values = self.case_values(case, rows)
            if any(v is None and spec[n]["missing"] == "drop" for n, v in values.items()):
                continue  # the declared policy: a case missing a "drop" variable is left out
            files = channel_files(self.root, folder, case, layout.file_ending, self.in_channels)
            stack, spacing = read_channels(files, layout.file_ending, layout.slice_axis)
            if stack.shape[1] != self.in_channels:
                raise DataError(files[0], f"{stack.shape[1]} channels but dataset.json names {self.in_channels}")
            path = label_file(self.root, folder, case, layout.file_ending)
            labels = read_labels(path, layout.file_ending, layout.slice_axis)
            if labels.shape != stack.shape[:1] + stack.shape[2:]:
                shape = stack.shape[:1] + stack.shape[2:]
                raise DataError(path, f"label shape {labels.shape} differs from the image's {shape}")
            problem = label_values_problem(labels, layout)
            if problem:
                raise DataError(path, problem)
            lookup = np.zeros(max(layout.labels.values()) + 1, np.int64)
            lookup[list(layout.labels.values())] = np.arange(self.num_classes)
            indices = lookup[labels]
            count = stack.shape[0]
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
