"""A file of a dataset folder that is a symlink leading outside the folder is refused in one line naming the
file ("... links outside the dataset folder"), through every entry point: `inside data validate`, dataset
loading, and the page's folder source. A link inside the folder, or into a folder of INSIDE_DATA_ROOTS,
still reads (issue 23)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inside_core.data.errors import DataError

REPO = Path(__file__).resolve().parents[1]
LINKS_OUT = "links outside the dataset folder"


def _link_out(file: Path, outside: Path) -> Path:
    """Move `file` to `outside` (same contents, so only the link is wrong) and leave a symlink to it."""
    outside.mkdir(parents=True, exist_ok=True)
    target = outside / file.name
    shutil.move(file, target)
    file.symlink_to(target)
    return file


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))  # no entry built before the link
    monkeypatch.delenv("INSIDE_DATA_ROOTS", raising=False)


@pytest.fixture
def clevr(tmp_path) -> Path:
    from inside_core.data.generate_clevr_seg import generate_clevr_seg

    return generate_clevr_seg(tmp_path / "clevr", count=12, size=32, progress=False)


@pytest.fixture
def acdc(tmp_path) -> Path:
    from inside_core.data.generate_acdc import generate_acdc

    return generate_acdc(tmp_path / "acdc", patients=2, progress=False)


@pytest.fixture
def nnunet(tmp_path) -> Path:
    from test_app import own_3d_folder

    return own_3d_folder(tmp_path / "Dataset042_Mine")


def validate_cli(folder: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "inside_core", "data", "validate", str(folder)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return done.returncode, done.stdout + done.stderr


def refused_line(output: str, name: str) -> str:
    lines = [line for line in output.splitlines() if LINKS_OUT in line]
    assert len(lines) == 1 and name in lines[0], output[-2000:]
    return lines[0]


def test_clevr_image_linking_out_is_refused(clevr, tmp_path):
    from inside_core.data.clevr_seg import ClevrSegDataset

    image = sorted((clevr / "images").glob("*.png"))[0]
    _link_out(image, tmp_path / "elsewhere")
    code, output = validate_cli(clevr)
    assert code == 1
    refused_line(output, f"images/{image.name}")
    with pytest.raises(DataError, match=LINKS_OUT) as raised:
        ClevrSegDataset(clevr, split="all", image_size=32)
    assert raised.value.path.endswith(image.name) and "\n" not in str(raised.value)


def test_clevr_mask_folder_linking_out_is_refused(clevr, tmp_path):
    """A linked folder inside the dataset: every file under it leads out."""
    from inside_core.data.clevr_seg import ClevrSegDataset

    masks = sorted((clevr / "segmentations").iterdir())[0]
    _link_out(masks, tmp_path / "elsewhere")
    with pytest.raises(DataError, match=LINKS_OUT) as raised:
        ClevrSegDataset(clevr, split="all", image_size=32)
    assert f"segmentations/{masks.name}/" in raised.value.path


def test_acdc_volume_linking_out_is_refused(acdc, tmp_path):
    from inside_core.data.acdc import AcdcDataset

    volume = sorted((acdc / "training").glob("patient*/*_frame01.nii.gz"))[0]
    _link_out(volume, tmp_path / "elsewhere")
    code, output = validate_cli(acdc)
    assert code == 1
    refused_line(output, volume.name)
    with pytest.raises(DataError, match=LINKS_OUT):
        AcdcDataset(acdc, split="all", image_size=32)


def test_nnunet_label_and_table_linking_out_are_refused(nnunet, tmp_path):
    from inside_core.data.nnunet import NnUNetDataset

    label = nnunet / "labelsTr" / "case1.nii.gz"
    _link_out(label, tmp_path / "elsewhere")
    code, output = validate_cli(nnunet)
    assert code == 1
    refused_line(output, "labelsTr/case1.nii.gz")
    with pytest.raises(DataError, match=LINKS_OUT):
        NnUNetDataset(nnunet, split="all", image_size=32)
    label.unlink()
    shutil.move(tmp_path / "elsewhere" / label.name, label)
    _link_out(nnunet / "conditions.csv", tmp_path / "elsewhere")
    code, output = validate_cli(nnunet)
    assert code == 1 and "conditions.csv" in output and "outside the dataset folder" in output


def test_links_inside_the_folder_or_into_the_roots_still_read(clevr, tmp_path, monkeypatch):
    from inside_core.data.clevr_seg import ClevrSegDataset

    images = sorted((clevr / "images").glob("*.png"))
    spare = clevr / "spare"
    spare.mkdir()
    shutil.move(images[0], spare / images[0].name)
    images[0].symlink_to(Path("..") / "spare" / images[0].name)  # relative, and inside the folder
    assert len(ClevrSegDataset(clevr, split="all", image_size=32)) == len(images)
    _link_out(images[1], tmp_path / "shared")
    with pytest.raises(DataError, match=LINKS_OUT):
        ClevrSegDataset(clevr, split="all", image_size=32)
    monkeypatch.setenv("INSIDE_DATA_ROOTS", f"{clevr}{os.pathsep}{tmp_path / 'shared'}")
    assert len(ClevrSegDataset(clevr, split="all", image_size=32)) == len(images)


def test_page_folder_source_refuses_a_link_out(clevr, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    from test_app import shown as unescaped

    monkeypatch.setenv("INSIDE_CHECKPOINT_DIR", str(tmp_path / "no-checkpoints"))
    image = sorted((clevr / "images").glob("*.png"))[0]
    _link_out(image, tmp_path / "elsewhere")
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=300)
    for key, value in {"source": "folder", "dataset": "clevr-seg", "data_dir": str(clevr), "split": "all"}.items():
        at.query_params[key] = value
    at = at.run()
    assert not at.exception, [e.message for e in at.exception]
    shown = " ".join(unescaped(e.value) for e in at.error)
    assert LINKS_OUT in shown and image.name in shown, shown
