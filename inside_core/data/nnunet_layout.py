"""The nnU-Net v2 raw layout itself (docs/your-data.md): dataset.json, file naming, the conditions table, the
splits and the TableCondition a folder declares. Reading pixels and building the dataset is inside_core.data.nnunet,
which re-exports every name here.

    FOLDER/dataset.json              channel_names, labels, numTraining, file_ending (".png" or ".nii.gz"),
                                     and "conditions": {variable: declaration, ...}
    FOLDER/imagesTr/CASE_0000.<ext>  channel 0 of CASE (more channels: _0001, ...)
    FOLDER/labelsTr/CASE.<ext>       integer labels
    FOLDER/imagesTs/, labelsTs/      optional test cases
    FOLDER/conditions.csv (or .tsv)  a `case` column, one column per declared table variable

Splits are by case: imagesTs/labelsTs is the test split where present (imagesTr then 90/10 train/val),
otherwise imagesTr is split 72/8/20 by a permutation seeded with `seed`. An optional FOLDER/splits_final.json
in nnU-Net v2's format (a list of folds {"train": [...], "val": [...]}) fixes the split instead: fold 0's
lists are the train and val cases, and the imagesTr cases in neither are the test split when there is no
labelled imagesTs. `inside data export` writes one, so an exported dataset keeps its source's split.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inside_core.conditions import TABLE_BUILT_INS, TableCondition, declaration_problems, is_missing
from inside_core.data.errors import DataError
from inside_core.data.files import confined, dataset_folder, read_json, read_text
from inside_core.limits import limit, over_limit

__all__ = ["FILE_ENDINGS", "SPLITS", "TABLE_NAMES", "Layout", "read_dataset_json", "layout_problems", "find_table",
           "read_layout", "case_ids", "channel_files", "label_file", "read_table", "parse_cell", "table_variables",
           "split_cases", "labelled_test_cases", "SPLITS_FILE", "read_splits_file", "splits_problems",
           "layout_split", "table_condition"]

FILE_ENDINGS = (".png", ".nii.gz", ".nii")
SPLITS = ("train", "val", "test", "all")
TABLE_NAMES = ("conditions.csv", "conditions.tsv")
SPLITS_FILE = "splits_final.json"  # nnU-Net v2's name (it keeps it in nnUNet_preprocessed/DatasetXXX/)


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
    root = dataset_folder(root)  # its files may not link outside it (every reader of the layout starts here)
    path = root / "dataset.json"
    if not path.exists():
        raise DataError(path, "dataset.json missing (not an nnU-Net raw folder)")
    meta = read_json(path, "dataset.json", root=root)
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
            elif not all(0 <= value <= limit("label_value_max") for value in labels.values()):
                problems.append(f"label values must be 0-{int(limit('label_value_max')):,} "
                                "(INSIDE_LIMIT_LABEL_VALUE_MAX)")
            elif over_limit("num_classes", len(labels)):
                problems.append(f"labels: {over_limit('num_classes', len(labels))}")
            elif 0 not in labels.values():
                problems.append("labels need a background with value 0")
            elif len(set(labels.values())) != len(labels):
                problems.append("two labels share a value")
    conditions = meta.get("conditions", {})
    if not isinstance(conditions, dict):
        problems.append("conditions must map variable names to declarations")
    else:
        names = list(labels) if isinstance(labels, dict) else None
        found = [p for name, decl in conditions.items() for p in declaration_problems(name, decl, names)]
        if not found and conditions:
            try:  # all together: z's width within the limit, control keys distinct
                TableCondition({"variables": conditions})
            except ValueError as error:
                found.append(str(error))
        problems += found
    axis = meta.get("slice_axis", -1)
    if not isinstance(axis, int) or isinstance(axis, bool) or axis not in (-3, -2, -1, 0, 1, 2):
        problems.append(f"slice_axis must be 0, 1, 2 or -1 (the last), got {axis!r}")
    return problems


def find_table(root: Path, meta: dict) -> Path | None:
    """The conditions table: dataset.json's "conditions_file" (a path inside the folder, else refused in one
    line naming dataset.json and never what is there), or conditions.csv / .tsv."""
    named = meta.get("conditions_file")
    if named is not None:
        if not isinstance(named, str) or not named.strip():
            raise DataError(root / "dataset.json", "\"conditions_file\" must be a file name inside the folder")
        try:
            return confined(root / named, root)
        except DataError as error:
            raise DataError(root / "dataset.json", f"\"conditions_file\" {error.problem}") from None
    found = next((root / n for n in TABLE_NAMES if (root / n).exists()), None)
    return None if found is None else confined(found, root)  # a symlink out of the folder is refused


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
    if not path.exists():
        raise DataError(path, "conditions table missing")
    text = read_text(path, "table", encoding="utf-8-sig")
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

# ---------------------------------------------------------------------------------------------- splits
def split_cases(train_cases: list[str], test_cases: list[str], split: str, seed: int,
                fixed: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """(folder, case) pairs of a split; see the module docstring. `fixed`: fold 0 of splits_final.json."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    tr = [("imagesTr", c) for c in sorted(train_cases)]
    ts = [("imagesTs", c) for c in sorted(test_cases)]
    if split == "all":
        return tr + ts
    if fixed is not None:
        if split in ("train", "val"):
            return sorted(("imagesTr", c) for c in fixed[split])
        if ts:
            return ts
        listed = set(fixed["train"]) | set(fixed["val"])
        return [pair for pair in tr if pair[1] not in listed]
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


def read_splits_file(root: Path) -> dict[str, list[str]] | None:
    """Fold 0 of root/splits_final.json as {"train": [...], "val": [...]}, or None when there is none;
    DataError (naming the file) when it is not nnU-Net's list of {"train": [...], "val": [...]}."""
    path = Path(root) / SPLITS_FILE
    if not path.exists():
        return None
    folds = read_json(path, SPLITS_FILE, root=root)
    fold = folds[0] if isinstance(folds, list) and folds else None
    if not (isinstance(fold, dict) and all(isinstance(fold.get(k), list) and all(isinstance(c, str) for c in fold[k])
                                           for k in ("train", "val"))):
        raise DataError(path, 'expected nnU-Net\'s list of folds [{"train": [case, ...], "val": [case, ...]}, ...]')
    return {"train": list(fold["train"]), "val": list(fold["val"])}


def splits_problems(fixed: dict[str, list[str]], train_cases: Sequence[str]) -> list[str]:
    """What is wrong with fold 0 of splits_final.json against the imagesTr cases (empty: usable)."""
    known, problems = set(train_cases), []
    for key in ("train", "val"):
        unknown = [c for c in fixed[key] if c not in known]
        if unknown:
            problems.append(f"fold 0 {key}: {', '.join(map(repr, unknown[:5]))}"
                            f"{' ...' if len(unknown) > 5 else ''} not among the imagesTr cases")
    both = sorted(set(fixed["train"]) & set(fixed["val"]))
    if both:
        problems.append(f"fold 0: {', '.join(map(repr, both[:5]))} in both train and val")
    if not fixed["train"]:
        problems.append("fold 0: no train cases")
    return problems


def layout_split(layout: Layout, split: str, seed: int) -> list[tuple[str, str]]:
    """(folder, case) pairs of a split of the folder: splits_final.json's fold 0 if there is one, otherwise
    the seeded draw (module docstring). DataError naming splits_final.json if it does not fit the folder."""
    train_cases = case_ids(layout.root, "imagesTr", layout.file_ending)
    fixed = read_splits_file(layout.root)
    if fixed is not None:
        problems = splits_problems(fixed, train_cases)
        if problems:
            raise DataError(layout.root / SPLITS_FILE, "; ".join(problems))
    return split_cases(train_cases, labelled_test_cases(layout), split, seed, fixed)


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
