"""Into and out of the nnU-Net v2 raw layout (inside_core.data.nnunet): `inside data import` and `inside data export`.

- `import_folder(images, masks, table, out, conditions)`: a plain folder of images, a folder of masks with
  the same file stems (or stem + _mask / _seg / _label), and a spreadsheet (CSV / TSV, its `case` column or
  else its first column naming the stems) become the layout. Variables are declared by a JSON (file or
  text) or guessed: a column of numbers is continuous over its range, anything else categorical; a column
  with empty cells gets "missing": "fill". Masks holding only 0 and 255 become 0 / 1.
- `export_dataset("clevr-seg", ...)`: CLEVR-Seg images with the target of ONE condition as the label; the
  condition value becomes a table variable (quadrant / colour / shape / size categorical, which is the
  same one-hot z; point: x, y, r continuous). The test split goes to imagesTs / labelsTs.
- `export_dataset("acdc", ...)`: each (patient, phase) as a 3-D NIfTI of the loader's resampled slices,
  ordered base to apex, with slice_position (a built-in) and phase (ordinal ED, ES): the same z as ACDC's.
  The channel is named "noNorm" (nnU-Net's "leave as stored"): the slices are already normalised, and
  normalising them again per case would change their intensities.

Both write splits_final.json (nnU-Net v2's format, one fold) holding the source loader's train / val cases,
so the exported folder trains on the same cases as the original (tests/test_nnunet_roundtrip.py).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inside_core.data.cache import atomic_folder
from inside_core.data.errors import DataError
from inside_core.data.files import parse_json, read_json, read_text

__all__ = ["import_folder", "export_dataset", "export_clevr_seg", "export_acdc", "guess_conditions"]

IMAGE_ENDINGS = (".nii.gz", ".nii", ".png")
MASK_SUFFIXES = ("", "_mask", "_seg", "_label", "_labels")


def _ending(path: Path) -> str | None:
    return next((e for e in IMAGE_ENDINGS if path.name.lower().endswith(e)), None)


def _case_id(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem)


def _write_table(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue())


def guess_conditions(header: list[str], rows: list[dict[str, str]]) -> dict[str, dict]:
    """Declarations guessed from a table: numbers -> continuous over their range, text -> categorical."""
    out = {}
    for column in header[1:]:
        cells = [r.get(column, "").strip() for r in rows]
        present = [c for c in cells if c]
        if not present:
            continue
        try:
            numbers = [float(c) for c in present]
            declaration = {"type": "continuous", "range": [min(numbers), max(numbers)]}
            if declaration["range"][0] == declaration["range"][1]:
                declaration["range"][1] += 1.0
            fill: Any = float(np.median(numbers))
        except ValueError:
            declaration = {"type": "categorical", "values": sorted(set(present))}
            fill = declaration["values"][0]
        if len(present) < len(cells):
            declaration.update(missing="fill", fill=fill)
        out[column] = declaration
    return out


def _read_json_option(text: str | None) -> Any:
    if not text:
        return None
    path = Path(text)
    if path.exists():
        return read_json(path, "JSON")  # regular file, bounded, nesting and non-finite numbers refused
    return parse_json(text, text[:60], "JSON")


def import_folder(images: str | Path, masks: str | Path, table: str | Path | None, out: str | Path,
                  conditions: str | None = None, labels: str | None = None) -> Path:
    """Build the layout from plain folders and a spreadsheet (see the module docstring)."""
    images, masks = Path(images), Path(masks)
    files = sorted(p for p in images.iterdir() if _ending(p)) if images.is_dir() else []
    if not files:
        raise DataError(images, "no .png, .nii or .nii.gz images found")
    endings = {_ending(p) for p in files}
    if len(endings) > 1:
        raise DataError(images, f"mixed file types ({', '.join(sorted(endings))}); use one")
    ending = endings.pop()
    pairs = []
    for path in files:
        stem = path.name[: -len(ending)]
        mask = next((masks / f"{stem}{s}{ending}" for s in MASK_SUFFIXES if (masks / f"{stem}{s}{ending}").exists()),
                    None)
        if mask is None:
            raise DataError(path, f"no mask {stem}{ending} (or {stem}_mask{ending}, ...) in {masks}")
        pairs.append((stem, _case_id(stem), path, mask))
    header, rows = ["case"], []
    if table:
        text = read_text(table, "table", encoding="utf-8-sig")
        delimiter = "\t" if str(table).lower().endswith(".tsv") else ","
        reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
        header = list(reader.fieldnames or [])
        rows = list(reader)
        key = "case" if "case" in header else header[0]
        header = [key] + [h for h in header if h != key]
    declared = _read_json_option(conditions) or guess_conditions(header, rows)
    label_map = _read_json_option(labels)
    values: set[int] = set()
    rgb = False
    with atomic_folder(out) as folder:
        (folder / "imagesTr").mkdir()
        (folder / "labelsTr").mkdir()
        for _, case, image, mask in pairs:
            shutil.copyfile(image, folder / "imagesTr" / f"{case}_0000{ending}")
            target = folder / "labelsTr" / f"{case}{ending}"
            if ending == ".png":
                from inside_core.data.safe_io import open_image  # sizes checked before decoding

                with open_image(image, image) as probe:
                    rgb = rgb or probe.mode in ("RGB", "RGBA")
                with open_image(mask, mask) as m:
                    array = np.asarray(m.convert("L") if m.mode in ("RGB", "RGBA") else m)
                if set(np.unique(array).tolist()) <= {0, 255}:
                    array = (array == 255).astype(np.uint8)  # a binary mask saved as black / white
                Image.fromarray(array.astype(np.uint8)).save(target)
                values |= set(np.unique(array).tolist())
            else:
                from inside_core.data.acdc import load_nifti  # sizes checked before reading

                shutil.copyfile(mask, target)
                values |= set(np.unique(np.round(load_nifti(mask)[0])).astype(int).tolist())
        stems = {stem: case for stem, case, _, _ in pairs}
        table_rows = [[stems.get(r[header[0]].strip(), _case_id(r[header[0]].strip()))] +
                      [r.get(h, "") for h in header[1:] if h in declared] for r in rows]
        if rows:
            _write_table(folder / "conditions.csv", ["case"] + [h for h in header[1:] if h in declared], table_rows)
        if label_map is None:
            label_map = {"background": 0, **{f"label_{v}": int(v) for v in sorted(values) if v != 0}}
        channels = {"0": "R", "1": "G", "2": "B"} if rgb else {"0": "image"}
        meta = {"channel_names": channels, "labels": label_map, "numTraining": len(pairs), "file_ending": ending,
                "conditions": declared}
        (folder / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n")
    return Path(out)


# ------------------------------------------------------------------------------------------------ export
def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_splits(folder: Path, split_cases: dict[str, list[str]]) -> None:
    """The source's train / val cases as fold 0 of splits_final.json (inside_core.data.nnunet_layout)."""
    from inside_core.data.nnunet_layout import SPLITS_FILE

    fold = {"train": split_cases["train"], "val": split_cases["val"]}
    (folder / SPLITS_FILE).write_text(json.dumps([fold], indent=1) + "\n")


def export_clevr_seg(data: str | Path, folder: Path, *, condition: str, seed: int, limit: int | None,
                     image_size: int | None, **_: Any) -> None:
    """The registry's CLEVR-Seg exporter (inside_core.data.registry): see the module docstring."""
    from inside_core.conditions import get_condition
    from inside_core.data.clevr_seg import ClevrSegDataset

    try:
        declared = get_condition(condition).table_declaration()
    except ValueError:
        raise ValueError(f"cannot export CLEVR-Seg condition {condition!r}") from None
    rows, count, splits = [], 0, {}
    for split, images, labels in (("train", "imagesTr", "labelsTr"), ("val", "imagesTr", "labelsTr"),
                                  ("test", "imagesTs", "labelsTs")):
        dataset = ClevrSegDataset(data, condition=condition, split=split, seed=seed, image_size=image_size)
        splits[split] = []
        (folder / images).mkdir(exist_ok=True)
        (folder / labels).mkdir(exist_ok=True)
        for index in range(len(dataset) if limit is None else min(len(dataset), limit)):
            meta = dataset.meta[index]
            case = _case_id(meta["name"])
            splits[split].append(case)
            (folder / images / f"{case}_0000.png").write_bytes(_png(dataset.images[index]))
            (folder / labels / f"{case}.png").write_bytes(_png(dataset.masks[index].astype(np.uint8)))
            value = meta["value"]
            numbers = isinstance(value, (list, tuple))  # point: (x, y, r); a one-hot: its value's name
            rows.append([case, *(f"{v:.6g}" for v in value)] if numbers else [case, value])
            count += images == "imagesTr"
    _write_table(folder / "conditions.csv", ["case", *declared], rows)
    _write_splits(folder, splits)
    meta = {"name": f"CLEVR-Seg ({condition})", "channel_names": {"0": "R", "1": "G", "2": "B"},
            "labels": {"background": 0, "object": 1}, "numTraining": count, "file_ending": ".png",
            "conditions": declared}
    (folder / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n")


def export_acdc(data: str | Path, folder: Path, *, seed: int, limit: int | None, image_size: int | None,
                spacing: float | None, **_: Any) -> None:
    """The registry's ACDC exporter (inside_core.data.registry): see the module docstring."""
    import nibabel as nib

    from inside_core.data.acdc import AcdcDataset
    from inside_core.data.nnunet import NO_NORM

    options = {k: v for k, v in (("image_size", image_size), ("spacing", spacing)) if v is not None}
    rows, count, splits = [], 0, {}
    for split, images, labels in (("train", "imagesTr", "labelsTr"), ("val", "imagesTr", "labelsTr"),
                                  ("test", "imagesTs", "labelsTs")):
        dataset = AcdcDataset(data, split=split, seed=seed, **options)
        splits[split] = []
        (folder / images).mkdir(exist_ok=True)
        (folder / labels).mkdir(exist_ok=True)
        groups: dict[tuple[str, str], list[int]] = {}
        for index, meta in enumerate(dataset.meta):
            groups.setdefault((meta["patient"], meta["phase"]), []).append(index)
        for number, ((patient, phase), indices) in enumerate(sorted(groups.items())):
            if limit is not None and number >= 2 * limit:
                break
            indices.sort(key=lambda i: float(dataset.meta[i]["slice_position"]))  # base to apex
            row_mm, col_mm, slice_mm = (float(s) for s in dataset.meta[indices[0]]["spacing"])
            affine = np.diag([row_mm, col_mm, slice_mm, 1.0])
            case = f"{patient}_{phase}"
            splits[split].append(case)
            volume = np.stack([dataset.images[i] for i in indices], axis=-1).astype(np.float32)
            mask = np.stack([dataset.masks[i] for i in indices], axis=-1).astype(np.uint8)
            nib.save(nib.Nifti1Image(volume, affine), folder / images / f"{case}_0000.nii.gz")
            nib.save(nib.Nifti1Image(mask, affine), folder / labels / f"{case}.nii.gz")
            rows.append([case, phase])
            count += images == "imagesTr"
    _write_table(folder / "conditions.csv", ["case", "phase"], rows)
    _write_splits(folder, splits)
    meta = {"name": "ACDC (exported slices, cine MRI)", "channel_names": {"0": NO_NORM},
            "labels": {"background": 0, "RV": 1, "MYO": 2, "LV": 3}, "numTraining": count, "file_ending": ".nii.gz",
            "conditions": {"phase": {"type": "ordinal", "values": ["ED", "ES"]},
                           "slice": {"type": "slice_position"}}}
    (folder / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n")


def export_dataset(kind: str, data: str | Path, out: str | Path, condition: str = "point", seed: int = 0,
                   limit: int | None = None, image_size: int | None = None, spacing: float | None = None) -> Path:
    """Write the CLEVR-Seg (one condition) or ACDC data in the layout (see the module docstring).

    `seed`, `image_size` (and for ACDC `spacing`, mm) are the source loader's (None: its defaults; CLEVR-Seg:
    the native size, ACDC: 128 px at 1.37 mm): train the export at that image size to get the same pixels.
    """
    if limit is not None and (limit < 1 or not math.isfinite(limit)):
        raise ValueError(f"--limit must be positive, got {limit}")
    from inside_core.data.registry import dataset_kind, exportable

    if kind not in exportable():  # before making the output folder
        raise ValueError(f"cannot export {kind!r}; choose {' or '.join(exportable())}")
    with atomic_folder(out) as folder:
        dataset_kind(kind).export(Path(data), folder, condition=condition, seed=seed, limit=limit,
                                  image_size=image_size, spacing=spacing)
    return Path(out)
