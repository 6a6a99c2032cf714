"""Default synthetic data (generated atomically on first use), generator CLI, ACDC folder layouts."""

from __future__ import annotations

import shutil
import sys

import pytest

from inside_core.cli import main
from inside_core.data import AcdcDataset, ClevrSegDataset, DataError, default_data_dir, generate_acdc
from inside_core.data.acdc import find_patient_folders

defaults_module = sys.modules["inside_core.data.defaults"]
SHIPPED = {kind: dict(settings) for kind, settings in defaults_module.DEFAULTS.items()}  # before the fixture


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))
    # tiny defaults: the mechanism is what is tested here, not the size
    monkeypatch.setattr(defaults_module, "DEFAULTS", {"clevr-seg": {"count": 4, "seed": 0, "size": 40},
                                                      "acdc": {"patients": 1, "seed": 0},
                                                      "nnunet": {"cases": 3, "seed": 0, "size": 48}})


def test_default_data_is_generated_once_and_atomically(tmp_path):
    clevr = default_data_dir("clevr-seg")
    acdc = default_data_dir("acdc")
    assert clevr.is_dir() and (clevr / "SYNTHETIC.txt").exists()
    assert (acdc / "training" / "patient001" / "Info.cfg").exists()
    stamp = (clevr / "images").stat().st_mtime_ns
    assert default_data_dir("clevr-seg") == clevr and (clevr / "images").stat().st_mtime_ns == stamp
    leftovers = [p for p in (tmp_path / "cache" / "datasets").iterdir() if ".tmp-" in p.name]
    assert not leftovers
    assert len(ClevrSegDataset(clevr, split="all")) == 4
    assert len(AcdcDataset(acdc, split="all", image_size=48)) > 0
    with pytest.raises(ValueError, match="unknown dataset kind"):
        default_data_dir("mnist")


def test_generator_cli_writes_and_refuses_a_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "scenes"
    assert main(["data", "clevr-seg", "--out", str(out), "--count", "2", "--seed", "1", "--size", "40", "--quiet"]) == 0
    assert len(list((out / "images").glob("*.png"))) == 2
    capsys.readouterr()
    assert main(["data", "clevr-seg", "--out", str(out), "--count", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["data", "acdc", "--out", str(tmp_path / "p"), "--patients", "0", "--quiet"]) == 2


def test_acdc_layouts_are_found(tmp_path):
    phantom = generate_acdc(tmp_path / "gen", patients=1, seed=0, progress=False)
    database = tmp_path / "ACDC" / "database"
    shutil.copytree(phantom / "training", database / "training")
    for root in (tmp_path / "ACDC", database, database / "training", database / "training" / "patient001"):
        subsets = find_patient_folders(root)
        assert [p.name for folders in subsets.values() for p in folders] == ["patient001"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no ACDC patient folders"):
        find_patient_folders(tmp_path / "empty")


def test_shipped_defaults_are_small_and_every_split_has_data(tmp_path):
    """The bundled defaults are generated while a first-time user waits (issue 11): a few test patients and
    scenes for the page's test split, and train / val not empty, so every split the page offers opens.
    Checked on the split rules alone (empty stand-in files), without generating anything."""
    from inside_core.data.acdc import split_patients
    from inside_core.data.clevr_seg import split_names
    from inside_core.data.generate_clevr_seg import scene_name

    clevr, acdc = SHIPPED["clevr-seg"], SHIPPED["acdc"]
    names = [scene_name(i) for i in range(clevr["count"])]
    assert {split: len(split_names(names, split)) for split in ("train", "val", "test")} == {
        "train": 72, "val": 8, "test": 20}
    total = acdc["patients"] + acdc.get("test_patients", 0)
    assert total <= 5  # each phantom patient takes about a second to write on two cores
    for number in range(1, total + 1):  # the layout generate_acdc writes, with empty volumes
        folder = tmp_path / ("training" if number <= acdc["patients"] else "testing") / f"patient{number:03d}"
        folder.mkdir(parents=True)
        (folder / "Info.cfg").write_text("ED: 1\nES: 5\n")
        (folder / f"{folder.name}_frame01_gt.nii.gz").touch()
    subsets = find_patient_folders(tmp_path)
    splits = {split: split_patients(subsets, split, seed=0) for split in ("train", "val", "test")}
    assert all(splits.values()) and len(splits["test"]) >= 2


def test_the_own_data_example_is_a_valid_nnunet_folder():
    from inside_core.data import validate

    folder = default_data_dir("nnunet")
    assert (folder / "dataset.json").exists() and len(list((folder / "imagesTr").glob("*.png"))) == 3
    assert validate(folder).ok
    assert default_data_dir("nnunet") == folder  # generated once
