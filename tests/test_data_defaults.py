"""Default synthetic data (generated atomically on first use), generator CLI, ACDC folder layouts."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from inside_core.cli import main
from inside_core.data import AcdcDataset, ClevrSegDataset, DataError, default_data_dir, generate_acdc
from inside_core.data.acdc import find_patient_folders

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "inside_core" / "data" / "background.py"
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


# ------------------------------------------------------- the bundled data, generated beside the page (issue 21)


def _background(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUNNER), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "INSIDE_CACHE_DIR": str(cache)})


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_background_generation_imports_no_torch(tmp_path):
    """What the page's first start overlaps: a generator of a kind the page opens on, imported as
    inside_core/data/background.py does, loads no torch (the check itself can say yes: cubes3d's does)."""
    said = {kind: _background("--imports-torch", kind, cache=tmp_path).stdout.strip()
            for kind in ("clevr-seg", "acdc", "nnunet", "cubes3d")}
    assert said == {"clevr-seg": "False", "acdc": "False", "nnunet": "False", "cubes3d": "True"}


def test_background_generation_writes_the_bytes_the_page_would(tmp_path, monkeypatch):
    """The shipped settings of the example kind (small enough for a test); the process exits 0 again
    without writing when the folder is there, 2 for no kind, 1 when it cannot write."""
    done = _background("nnunet", cache=tmp_path / "child")
    assert done.returncode == 0, done.stderr
    (child,) = (tmp_path / "child" / "datasets").iterdir()
    monkeypatch.setitem(defaults_module.DEFAULTS, "nnunet", SHIPPED["nnunet"])
    here = default_data_dir("nnunet")
    assert child.name == here.name and _digest(child) == _digest(here)
    stamp = (child / "dataset.json").stat().st_mtime_ns
    assert _background("nnunet", cache=tmp_path / "child").returncode == 0
    assert (child / "dataset.json").stat().st_mtime_ns == stamp
    assert _background("mnist", cache=tmp_path / "child").returncode == 2
    (tmp_path / "a-file").write_text("")
    failed = _background("nnunet", cache=tmp_path / "a-file")
    assert failed.returncode == 1 and "the page generates it itself" in failed.stderr


def test_the_page_waits_for_the_process_it_started(tmp_path):
    """app/bundled_data.py in a fresh process (torch not imported, as on the server's first page): one
    process per kind, waited for (and `meanwhile` run while it works); a kind it did not start, or the
    page's first kind when it started one for a named kind, is not waited for."""
    script = (
        "import sys, app.bundled_data as b\n"
        "assert 'torch' not in sys.modules and not b._STARTED  # imported outside a script run: nothing started\n"
        "p = b.start('nnunet'); assert b.start('nnunet') is p\n"
        "called = []\n"
        "print(b.wait('nnunet', 'clevr-seg', meanwhile=lambda: called.append(p.poll())), p.returncode, called,"
        " b.wait('acdc', 'clevr-seg'), b.wait('clevr-seg', 'clevr-seg'), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO,
                         env={**os.environ, "INSIDE_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(REPO)})
    assert out.stdout.split() == ["True", "0", "[None]", "False", "False", "False"], out.stderr
    assert [p.name.split("-")[0] for p in (tmp_path / "datasets").iterdir()] == ["nnunet"]


def test_no_process_is_started_once_torch_is_imported():
    """In a test or a notebook torch is already there: nothing to overlap, the page generates in-process."""
    from app import bundled_data

    assert "torch" in sys.modules and bundled_data.start_for_first_page() is None and not bundled_data._STARTED


def test_the_package_gives_the_names_it_always_gave():
    """inside_core.data imports its modules when a name is asked (so a generator imports no loader); the
    names are the same objects, and a submodule that shares its function's name leaves the function."""
    import inside_core.data as data
    import inside_core.data.generate_acdc
    import inside_core.data.validate  # noqa: F401
    from inside_core.data import generate_acdc as gen
    from inside_core.data import validate

    assert isinstance(validate, types.FunctionType) and validate.__module__ == "inside_core.data.validate"
    assert data.validate is validate and gen is inside_core.data.generate_acdc  # the function, not the module
    assert isinstance(gen, types.FunctionType)
    for name in data.__all__:
        assert not isinstance(getattr(data, name), types.ModuleType), name
    assert set(data.__all__) <= set(dir(data))
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018
    from inside_core.data import acdc  # a submodule still imports as one

    assert isinstance(acdc, types.ModuleType)
