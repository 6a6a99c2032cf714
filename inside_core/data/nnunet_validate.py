"""Check a folder in the nnU-Net v2 raw layout with its conditions table (`inside data validate FOLDER`).

Every problem is listed, each with its file (and for the table, `conditions.csv:LINE`), not only the first:
dataset.json (keys, file_ending, labels, each condition's declaration, numTraining), file names, channel
files missing or extra, images without labels and labels without images, unreadable files, label shapes
and values not in dataset.json's labels, the table's header, unknown / duplicate / missing case ids, and
each cell's type and range, and splits_final.json (its format, cases that are not in imagesTr, a case in
both train and val). Warnings (no failure): cases or slices the missing-value policy will leave
out, undeclared table columns, a test folder without labels.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from inside_core.conditions import declaration_problems
from inside_core.data import nnunet
from inside_core.data.errors import DataError
from inside_core.data.validate import Problem, Report

__all__ = ["validate_nnunet"]


def _name_pattern(ending: str) -> re.Pattern:
    return re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})" + re.escape(ending) + "$")


def _check_names(root: Path, folder: str, ending: str, channels: int) -> list[Problem]:
    """Files in imagesTr / imagesTs that are not CASE_XXXX<ending>, or a channel beyond the declared ones."""
    problems = []
    pattern = _name_pattern(ending)
    directory = root / folder
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if path.name.startswith("."):
            continue
        found = pattern.match(path.name)
        if not found:
            problems.append(Problem(str(path), f"not named CASE_0000{ending} (file_ending in dataset.json is "
                                    f"{ending!r}); the file is ignored"))
        elif int(found["channel"]) >= channels:
            problems.append(Problem(str(path), f"channel {int(found['channel'])} but dataset.json's channel_names "
                                    f"declare {channels}"))
    return problems


def _check_case(layout: nnunet.Layout, folder: str, case: str, needs_label: bool) -> tuple[list[Problem], object]:
    """Problems of one case's images and label; also its label indices (S, H, W) or None, for the built-ins."""
    root, ending, count = layout.root, layout.file_ending, len(layout.channels)
    problems: list[Problem] = []
    files = [root / folder / f"{case}_{k:04d}{ending}" for k in range(count)]
    present = [f for f in files if f.exists()]
    shape = None
    try:
        stack, _ = (nnunet.read_channels(present, ending, layout.slice_axis, layout.channels) if present
                    else (None, None))
    except DataError as error:
        problems.append(Problem(error.path, error.problem))
        stack = None
    if stack is not None:
        shape = stack.shape[:1] + stack.shape[2:]
        if stack.shape[1] < count:  # an RGB PNG holds three channels: only then may files be fewer
            for k, path in enumerate(files):
                if not path.exists():
                    problems.append(Problem(str(path), f"channel {k} ({layout.channels[k]}) of case {case} missing"))
        elif stack.shape[1] > count:
            problems.append(Problem(str(present[0]), f"{stack.shape[1]} channels but dataset.json's channel_names "
                                    f"declare {count}"))
    label_path = nnunet.label_file(root, folder, case, ending)
    if not label_path.exists():
        if needs_label:
            problems.append(Problem(str(files[0]), f"image without a label: {label_path.parent.name}/"
                                    f"{label_path.name} missing"))
        return problems, None
    try:
        labels = nnunet.read_labels(label_path, ending, layout.slice_axis)
    except DataError as error:
        return problems + [Problem(error.path, error.problem)], None
    if shape is not None and labels.shape != shape:
        problems.append(Problem(str(label_path), f"label shape {_shape(labels.shape)} differs from the image's "
                                f"{_shape(shape)}"))
    problem = nnunet.label_values_problem(labels, layout)
    if problem:
        return problems + [Problem(str(label_path), problem)], None
    lookup = np.zeros(max(layout.labels.values()) + 1, np.int64)
    lookup[list(layout.labels.values())] = np.arange(len(layout.labels))
    return problems, lookup[labels]


def _shape(shape: tuple) -> str:
    return "x".join(str(s) for s in (shape[1:] if shape[0] == 1 else shape))


def _check_built_ins(layout: nnunet.Layout, folder: str, case: str, indices: np.ndarray) -> list[Problem]:
    """Warnings for built-in variables the data cannot give: a label absent from a whole case, or a
    slice position for a 2-D case."""
    problems = []
    path = str(nnunet.label_file(layout.root, folder, case, layout.file_ending))
    for name, decl in layout.conditions.items():
        if decl["type"] == "slice_position" and indices.shape[0] == 1:
            problems.append(Problem(path, f"{name}: a 2-D case has slice position 0", "warning"))
        if decl["type"] in ("label_centroid", "label_size"):
            present = (indices == layout.label_index(decl["label"])).any(axis=(1, 2))
            policy = decl.get("missing", "drop")
            if not present.any():
                what = "left out" if policy == "drop" else "given the fill value and the missing bit"
                problems.append(Problem(path, f"{name}: label {decl['label']!r} is absent from this case, which "
                                        f"is {what} (missing: {policy})", "warning"))
    return problems


def _check_table(layout: nnunet.Layout, known: set[str]) -> list[Problem]:
    variables = nnunet.table_variables(layout.conditions)
    if not variables:
        return []
    if layout.table is None or not layout.table.exists():
        where = layout.table or layout.root / "conditions.csv"
        return [Problem(str(where), f"conditions table missing (dataset.json declares {', '.join(variables)})")]
    try:
        header, rows, row_problems = nnunet.read_table(layout.table)
    except DataError as error:
        return [Problem(error.path, error.problem)]
    table = str(layout.table)
    problems = [Problem(f"{table}:{line}", text) for line, text in row_problems]
    for name in variables:
        if name not in header:
            problems.append(Problem(f"{table}:1", f"no column {name!r}, which dataset.json declares"))
    for column in header:
        if column != "case" and column not in layout.conditions:
            problems.append(Problem(f"{table}:1", f"column {column!r} is not declared in dataset.json's "
                                    "conditions; it is ignored", "warning"))
    for case, (line, row) in rows.items():
        where = f"{table}:{line}"
        if case not in known:
            problems.append(Problem(where, f"unknown case id {case!r}: no imagesTr/ or imagesTs/ image has it"))
            continue
        for name in variables:
            if name not in header:
                continue
            declaration = {**layout.conditions[name], "missing": layout.conditions[name].get("missing", "drop")}
            try:
                value = nnunet.parse_cell(declaration, row.get(name, ""))
            except ValueError as error:
                problems.append(Problem(where, f"{name}: {error}"))
                continue
            if value is None and declaration["missing"] == "drop":
                problems.append(Problem(where, f"{name} missing: case {case!r} is left out (missing: drop)",
                                        "warning"))
    problems.sort(key=lambda p: int(p.path.rsplit(":", 1)[1]))  # in the table's line order
    all_fill = all(layout.conditions[n].get("missing", "drop") == "fill" for n in variables)
    for case in sorted(known - set(rows)):
        problems.append(Problem(table, f"no row for case {case!r}" + (" (every variable filled)" if all_fill else ""),
                                "warning" if all_fill else "error"))
    return problems


def validate_nnunet(path: str | Path) -> Report:
    """Check an nnU-Net v2 raw folder with its conditions table; every problem with its file (and line)."""
    root = Path(path)
    try:
        meta = nnunet.read_dataset_json(root)
    except DataError as error:
        return Report("nnunet", str(path), 0, [Problem(error.path, error.problem)])
    json_path = str(root / "dataset.json")
    problems = [Problem(json_path, p) for p in nnunet.layout_problems(meta)]
    if nnunet.layout_problems({**meta, "conditions": {}}):  # beyond the declarations: the files cannot be read
        return Report("nnunet", str(root), 0, problems)
    if problems:  # some declarations are bad (listed): check the files with the good ones
        declared = meta.get("conditions") if isinstance(meta.get("conditions"), dict) else {}
        good = {n: d for n, d in declared.items() if not declaration_problems(n, d, list(meta["labels"]))}
        meta = {**meta, "conditions": good}
    try:
        layout = _layout(root, meta)
    except DataError as error:  # a conditions table named outside the folder (issue 23)
        return Report("nnunet", str(root), 0, [*problems, Problem(error.path, error.problem)])
    ending, channels = layout.file_ending, len(layout.channels)
    train = nnunet.case_ids(root, "imagesTr", ending)
    test = nnunet.case_ids(root, "imagesTs", ending)
    if not (root / "imagesTr").is_dir():
        problems.append(Problem(str(root / "imagesTr"), "imagesTr/ folder missing"))
    elif not train:
        problems.append(Problem(str(root / "imagesTr"), f"no CASE_0000{ending} images"))
    if layout.num_training is not None and train and layout.num_training != len(train):
        problems.append(Problem(json_path, f"numTraining is {layout.num_training} but imagesTr/ holds {len(train)} "
                                "cases"))
    for folder, cases in (("imagesTr", train), ("imagesTs", test)):
        problems += _check_names(root, folder, ending, channels)
        needs_label = folder == "imagesTr" or (root / "labelsTs").is_dir()
        for case in cases:
            case_problems, indices = _check_case(layout, folder, case, needs_label)
            problems += case_problems
            if indices is not None:
                problems += _check_built_ins(layout, folder, case, indices)
        labels_dir = root / folder.replace("images", "labels")
        for label in sorted(labels_dir.glob(f"*{ending}")) if labels_dir.is_dir() else []:
            if label.name[: -len(ending)] not in cases:
                problems.append(Problem(str(label), f"label without an image: {folder}/{label.name[:-len(ending)]}"
                                        f"_0000{ending} missing"))
    try:
        fixed = nnunet.read_splits_file(root)
    except DataError as error:
        problems.append(Problem(error.path, error.problem))
        fixed = None
    if fixed is not None:
        problems += [Problem(str(root / nnunet.SPLITS_FILE), p) for p in nnunet.splits_problems(fixed, train)]
    if test and not (root / "labelsTs").is_dir():
        problems.append(Problem(str(root / "imagesTs"), "no labelsTs/: the test split is taken from imagesTr/ "
                                "instead", "warning"))
    problems += _check_table(layout, set(train) | set(test))
    return Report("nnunet", str(root), len(train) + len(test), problems)


def _layout(root: Path, meta: dict) -> nnunet.Layout:
    """The Layout of a dataset.json already checked (bad declarations left out)."""
    labels = dict(sorted(meta["labels"].items(), key=lambda item: item[1]))
    channels = [meta["channel_names"][str(k)] for k in range(len(meta["channel_names"]))]
    return nnunet.Layout(root, meta["file_ending"], channels, labels, dict(meta.get("conditions", {})),
                         int(meta.get("slice_axis", -1)), meta.get("numTraining"), nnunet.find_table(root, meta))
