"""`inside data export` round-trips (issue #15): the bundled CLEVR-Seg and ACDC data written in the nnU-Net v2
raw layout and read back by the nnU-Net loader give the same samples as the original loaders, and a seeded
training run on either gives the same numbers (docs/your-data.md, "Round trip").

What "the same" means, measured here:
- CLEVR-Seg (quadrant): per split the same cases in the same order, z (the quadrant one-hot = the table's
  categorical one-hot), masks and float32 pixels bit for bit (PNG holds the uint8 pixels; both loaders divide
  by 255 in float32). Training: the same weights and the same log, so the same test Dice.
- ACDC: the same slices with the same z, masks and pixels, matched by (patient, phase, slice position). The
  order differs within a (patient, phase) stored apex first: the export writes base to apex, the ACDC loader
  keeps the file's order. When no training patient is stored apex first (the data below), training gives
  the same weights; otherwise the seeded shuffle sees other batches and the numbers differ (docs).
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inside_core.config import load_config
from inside_core.data.errors import DataError
from inside_core.data.nnunet import SPLITS_FILE, NnUNetDataset
from inside_core.data.nnunet_convert import export_dataset
from inside_core.data.validate import validate

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")
SIZE = 32


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """CLEVR-Seg (100 scenes, 32 px) and the ACDC phantom (3 + 1 patients) with their exports, built once."""
    from inside_core.data import generate_clevr_seg
    from inside_core.data.generate_acdc import generate_acdc

    root = tmp_path_factory.mktemp("roundtrip")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSIDE_CACHE_DIR", str(root / "cache"))
        clevr = generate_clevr_seg(root / "clevr", 100, seed=2, size=SIZE, progress=False)
        acdc = generate_acdc(root / "acdc", 3, seed=8, test_patients=1, progress=False)  # all stored base first
        paths = {"root": root, "clevr": clevr, "acdc": acdc,
                 "clevr_nnunet": export_dataset("clevr-seg", clevr, root / "clevr-nnunet", condition="quadrant"),
                 "acdc_nnunet": export_dataset("acdc", acdc, root / "acdc-nnunet", image_size=SIZE)}
        yield paths


@pytest.fixture(autouse=True)
def _cache(folders, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(folders["root"] / "cache"))


# ------------------------------------------------------------------------------------------------ data
@pytest.mark.parametrize("split", SPLITS)
def test_clevr_export_reads_back_the_same_samples(folders, split):
    from inside_core.data import ClevrSegDataset

    native = ClevrSegDataset(folders["clevr"], "quadrant", split)
    exported = NnUNetDataset(folders["clevr_nnunet"], split, image_size=SIZE)
    assert [m["case"] for m in exported.meta] == [m["name"] for m in native.meta]  # same cases, same order
    np.testing.assert_array_equal(exported.z, native.z)
    np.testing.assert_array_equal(exported.masks, native.masks)
    for index in range(len(native)):  # the items training stacks: float32 pixels bit for bit
        a, b = native[index], exported[index]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["z"], b["z"])
        assert torch.equal(a["mask"][0].long(), b["mask"])  # CLEVR-Seg: float (1, H, W); nnU-Net: labels (H, W)


def test_clevr_export_keeps_the_split(folders):
    from inside_core.data.clevr_seg import list_names, split_names

    names = list_names(folders["clevr"])
    fold = json.loads((folders["clevr_nnunet"] / SPLITS_FILE).read_text())[0]
    assert fold == {"train": split_names(names, "train"), "val": split_names(names, "val")}
    assert sorted(p.name[:-9] for p in (folders["clevr_nnunet"] / "imagesTs").iterdir()) == split_names(names, "test")


def test_without_the_splits_file_the_split_is_drawn(folders, tmp_path):
    """Why the export writes splits_final.json: the loader's own 90/10 draw picks other validation cases."""
    import shutil

    copy = Path(shutil.copytree(folders["clevr_nnunet"], tmp_path / "copy"))
    (copy / SPLITS_FILE).unlink()
    drawn = {m["case"] for m in NnUNetDataset(copy, "val", image_size=SIZE).meta}
    kept = {m["case"] for m in NnUNetDataset(folders["clevr_nnunet"], "val", image_size=SIZE).meta}
    assert len(drawn) == len(kept) == 8 and drawn != kept


def test_a_splits_file_naming_unknown_cases_is_an_error(folders, tmp_path):
    import shutil

    copy = Path(shutil.copytree(folders["clevr_nnunet"], tmp_path / "copy"))
    (copy / SPLITS_FILE).write_text(json.dumps([{"train": ["CLEVR_seg_000000", "nope"], "val": ["CLEVR_seg_000000"]}]))
    with pytest.raises(DataError) as error:
        NnUNetDataset(copy, "train", image_size=SIZE)
    assert SPLITS_FILE in str(error.value) and "'nope'" in str(error.value) and "both train and val" in str(error.value)
    lines = [p.line() for p in validate(copy).errors]
    assert any(SPLITS_FILE in line and "'nope' not among the imagesTr cases" in line for line in lines), lines
    (copy / SPLITS_FILE).write_text('{"train": []}')  # not nnU-Net's list of folds
    assert any(SPLITS_FILE in line and "list of folds" in line for line in (p.line() for p in validate(copy).errors))


@pytest.mark.parametrize("name", ["clevr_nnunet", "acdc_nnunet"])
def test_the_exports_validate(folders, name):
    report = validate(folders[name])
    assert report.ok and not report.problems, [p.line() for p in report.problems]


def _acdc_key(meta: dict) -> tuple[str, str, float]:
    return meta["patient"], meta["phase"], round(meta["slice_position"], 6)


def _export_key(meta: dict) -> tuple[str, str, float]:
    patient, phase = meta["case"].rsplit("_", 1)
    return patient, phase, round(meta["values"]["slice"], 6)


@pytest.mark.parametrize("split", SPLITS)
def test_acdc_export_reads_back_the_same_slices(folders, split):
    from inside_core.data import AcdcDataset

    native = AcdcDataset(folders["acdc"], split, image_size=SIZE)
    exported = NnUNetDataset(folders["acdc_nnunet"], split, image_size=SIZE)
    keys, exported_keys = [_acdc_key(m) for m in native.meta], [_export_key(m) for m in exported.meta]
    assert sorted(keys) == sorted(exported_keys) and len(set(keys)) == len(keys)
    where = {key: i for i, key in enumerate(exported_keys)}
    order = [where[key] for key in keys]
    np.testing.assert_array_equal(exported.z[order], native.z)  # (phase, slice position): ordinal + built-in
    np.testing.assert_array_equal(exported.masks[order], native.masks)
    np.testing.assert_array_equal(exported.images[order][:, 0], native.images)  # "noNorm": not normalised again
    # the order is the loader's except within a stack stored apex first (the export writes base to apex)
    reversed_stacks = {(m["patient"], m["phase"]) for m in native.meta if m["base_at_end"]}
    for i, meta in enumerate(native.meta):
        assert (order[i] == i) or (meta["patient"], meta["phase"]) in reversed_stacks


def test_acdc_export_marks_its_channel_as_already_normalised(folders):
    meta = json.loads((folders["acdc_nnunet"] / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "noNorm"}
    assert meta["conditions"] == {"phase": {"type": "ordinal", "values": ["ED", "ES"]},
                                  "slice": {"type": "slice_position"}}


# -------------------------------------------------------------------------------------------- training
def _train(config_name: str, root: Path, out: Path, epochs: int, size: int | None = None) -> Path:
    from inside_core.train import train

    config = load_config(REPO / "configs" / f"{config_name}.yaml")
    config["data"]["root"] = str(root)
    config["train"]["epochs"] = epochs
    if size is not None:
        config["data"]["image_size"], config["model"]["image_size"] = size, [size, size]
    return train(config, out, quiet=True)


def _log(path: Path) -> list[dict]:
    with open(path.with_suffix(".csv")) as handle:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(handle)]


def _same_weights(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    first, second = load_file(str(a)), load_file(str(b))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_clevr_training_on_the_export_gives_the_same_numbers(folders, tmp_path):
    from inside_core.evaluate import evaluate_checkpoint

    original = _train("your-data-roundtrip-clevr-inside", folders["clevr"], tmp_path / "a", epochs=8)
    exported = _train("your-data-roundtrip-clevr-export-inside", folders["clevr_nnunet"], tmp_path / "b", epochs=8)
    log = _log(original)
    assert log == _log(exported) and len(log) == 8
    assert float(log[-1]["val_dice"]) > 0.3, "the run learns something, so equal numbers mean something"
    assert _same_weights(original, exported)
    a = evaluate_checkpoint(original, folders["clevr"], "test")
    b = evaluate_checkpoint(exported, folders["clevr_nnunet"], "test")
    assert (a["dice"], a["dice_std"], a["n"]) == (b["dice"], b["dice_std"], b["n"]) and a["n"] == 20


def test_acdc_training_on_the_export_gives_the_same_numbers(folders, tmp_path):
    from inside_core.data import AcdcDataset

    assert not any(m["base_at_end"] for m in AcdcDataset(folders["acdc"], "train", image_size=SIZE).meta), \
        "a training stack stored apex first would reorder the batches (see the module docstring)"
    original = _train("your-data-roundtrip-acdc-inside", folders["acdc"], tmp_path / "a", epochs=2, size=SIZE)
    exported = _train("your-data-roundtrip-acdc-export-inside", folders["acdc_nnunet"], tmp_path / "b", epochs=2,
                      size=SIZE)
    assert _log(original) == _log(exported) and len(_log(original)) == 2
    assert _same_weights(original, exported)
