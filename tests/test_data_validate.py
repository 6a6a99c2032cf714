"""`inside data validate`: each fault of the issue triggered by a crafted bad file, reported with its file."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from inside_core.cli import main
from inside_core.data import AcdcDataset, ClevrSegDataset, DataError, generate_acdc, generate_clevr_seg, validate


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def clean_acdc(tmp_path_factory) -> Path:
    return generate_acdc(tmp_path_factory.mktemp("v") / "acdc", patients=2, seed=2, progress=False)


@pytest.fixture(scope="module")
def clean_clevr(tmp_path_factory) -> Path:
    return generate_clevr_seg(tmp_path_factory.mktemp("v") / "clevr", count=3, seed=2, size=48, progress=False)


@pytest.fixture
def acdc_copy(clean_acdc, tmp_path) -> Path:
    return Path(shutil.copytree(clean_acdc, tmp_path / "acdc"))


@pytest.fixture
def clevr_copy(clean_clevr, tmp_path) -> Path:
    return Path(shutil.copytree(clean_clevr, tmp_path / "clevr"))


def _patient(root: Path) -> tuple[Path, dict]:
    folder = root / "training" / "patient001"
    info = dict(line.split(": ") for line in (folder / "Info.cfg").read_text().splitlines())
    return folder, {"ED": int(info["ED"]), "ES": int(info["ES"])}


def _run(capsys, *args) -> tuple[int, str]:
    code = main(["data", "validate", *map(str, args)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


def test_clean_datasets_pass(clean_acdc, clean_clevr, capsys):
    for root, data_format in ((clean_acdc, "acdc"), (clean_clevr, "clevr-seg")):
        report = validate(root)
        notes = [p for p in report.problems if p.severity == "note"]
        assert report.format == data_format and report.ok and len(notes) == len(report.problems), report.problems
        code, out = _run(capsys, root)
        assert code == 0 and "OK" in out and " 0 warnings" in out
        if data_format == "acdc":  # the page and validate say which rules decided, per patient
            assert notes and all("base -> apex: " in p.problem and "in-plane: " in p.problem for p in notes)
            assert "note: " in out


def _acdc_fault(name: str, folder: Path, frames: dict) -> tuple[Path, str]:
    """Apply one fault; return the file that must be named and a fragment of the message."""
    ed_image = folder / f"patient001_frame{frames['ED']:02d}.nii.gz"
    ed_labels = folder / f"patient001_frame{frames['ED']:02d}_gt.nii.gz"
    if name == "missing_info":
        (folder / "Info.cfg").unlink()
        return folder / "Info.cfg", "Info.cfg missing"
    if name == "truncated":
        data = ed_image.read_bytes()
        ed_image.write_bytes(data[: len(data) // 2])
        return ed_image, "unreadable or truncated NIfTI"
    if name == "not_nifti":
        ed_image.write_bytes(gzip.compress(b"this is not a NIfTI file" * 20))
        return ed_image, "unreadable or truncated NIfTI"
    if name == "shape":
        labels = np.asarray(nib.load(ed_labels).dataobj)[:-1]
        nib.save(nib.Nifti1Image(labels, nib.load(ed_labels).affine), ed_labels)
        return ed_labels, "differs from the image shape"
    if name == "label_values":
        image = nib.load(ed_labels)
        labels = np.asarray(image.dataobj).copy()
        labels[0, 0, 0] = 5
        nib.save(nib.Nifti1Image(labels, image.affine), ed_labels)
        return ed_labels, "label values outside {0, 1, 2, 3}: 5"
    if name == "missing_es":
        es_image = folder / f"patient001_frame{frames['ES']:02d}.nii.gz"
        es_image.unlink()
        return es_image, "ES image file missing"
    if name == "missing_ed_labels":
        ed_labels.unlink()
        return ed_labels, "ED label file missing"
    raise AssertionError(name)


ACDC_FAULTS = ["missing_info", "truncated", "not_nifti", "shape", "label_values", "missing_es", "missing_ed_labels"]


@pytest.mark.parametrize("fault", ACDC_FAULTS)
def test_acdc_faults_are_reported_with_their_file(acdc_copy, capsys, fault):
    folder, frames = _patient(acdc_copy)
    path, fragment = _acdc_fault(fault, folder, frames)
    report = validate(acdc_copy)
    assert not report.ok
    assert any(p.path == str(path) and fragment in p.problem for p in report.errors), report.problems
    code, out = _run(capsys, acdc_copy)
    assert code == 1 and str(path) in out and fragment in out
    code, out = _run(capsys, acdc_copy, "--json", "--format", "acdc")
    parsed = json.loads(out)
    assert code == 1 and parsed["ok"] is False
    assert any(p["path"] == str(path) and fragment in p["problem"] for p in parsed["problems"])
    # the loader raises the same one-line message, not an error from deep inside nibabel
    with pytest.raises(DataError) as error:
        AcdcDataset(acdc_copy, split="all", use_cache=False)
    assert "\n" not in str(error.value) and str(error.value).startswith(str(folder))


def _clevr_fault(name: str, root: Path) -> tuple[Path, str]:
    scene_name = sorted(p.stem for p in (root / "images").glob("*.png"))[0]
    segs = sorted((root / "segmentations" / scene_name).glob("*.png"))
    if name == "bad_png_value":
        array = np.asarray(Image.open(segs[0])).copy()
        array[0, 0] = 128
        Image.fromarray(array).save(segs[0])
        return segs[0], "must be 64 (background) or 255 (object), found 128"
    if name == "mask_count":
        segs[-1].unlink()
        return root / "segmentations" / scene_name, f"{len(segs) - 1} segmentation PNGs but the scene has {len(segs)}"
    if name == "no_objects":
        scene = root / "scenes" / f"{scene_name}.json"
        scene.write_text(json.dumps({"objects": []}))
        return scene, "scene has no objects"
    if name == "unreadable_image":
        image = root / "images" / f"{scene_name}.png"
        image.write_bytes(b"\x89PNG\r\n\x1a\n broken")
        return image, "unreadable image"
    if name == "bomb":  # a header claiming 9000 x 9000 pixels: refused before decoding
        image = root / "images" / f"{scene_name}.png"
        with Image.open(image) as small:
            small.resize((9000, 9000), Image.NEAREST).save(image, compress_level=1)
        return image, "image of 9000x9000 pixels: 81,000,000 pixels exceed the limit"
    raise AssertionError(name)


@pytest.mark.parametrize("fault", ["bad_png_value", "mask_count", "no_objects", "unreadable_image", "bomb"])
def test_clevr_faults_are_reported_with_their_file(clevr_copy, capsys, fault):
    path, fragment = _clevr_fault(fault, clevr_copy)
    report = validate(clevr_copy)
    assert any(p.path == str(path) and fragment in p.problem for p in report.errors), report.problems
    code, out = _run(capsys, clevr_copy, "--json")
    parsed = json.loads(out)
    assert code == 1 and parsed["format"] == "clevr-seg"
    assert any(p["path"] == str(path) and fragment in p["problem"] for p in parsed["problems"])
    with pytest.raises(DataError) as error:
        ClevrSegDataset(clevr_copy, split="all", use_cache=False)
    assert str(path) in str(error.value) and fragment in str(error.value)


def test_every_problem_is_reported_not_only_the_first(acdc_copy, capsys):
    folder, frames = _patient(acdc_copy)
    _acdc_fault("label_values", folder, frames)
    _acdc_fault("missing_es", folder, frames)
    (acdc_copy / "training" / "patient002" / "Info.cfg").unlink()
    report = validate(acdc_copy)
    assert len(report.errors) == 3


def test_an_unforeseen_failure_is_one_more_problem_not_the_end(clevr_copy, monkeypatch):
    import inside_core.data.clevr_seg as clevr_seg

    names = sorted(p.stem for p in (clevr_copy / "images").glob("*.png"))
    real = clevr_seg.read_scene

    def strange(path):
        if path.stem == names[0]:
            raise RuntimeError("something no reader foresaw")
        return real(path)

    monkeypatch.setattr(clevr_seg, "read_scene", strange)
    (clevr_copy / "scenes" / f"{names[1]}.json").write_text("{}")  # the next scene is still checked
    report = validate(clevr_copy)
    lines = [p.line() for p in report.errors]
    assert any(names[0] in line and "unexpected RuntimeError while checking it (something no reader foresaw)" in line
               for line in lines), lines
    assert any(names[1] in line and "no 'objects' list" in line for line in lines), lines


def test_unknown_folder_is_one_line_not_a_traceback(tmp_path, capsys):
    code, out = _run(capsys, tmp_path / "nothing-here")
    assert code == 1 and "folder not found" in out
    (tmp_path / "empty").mkdir()
    code, out = _run(capsys, tmp_path / "empty")
    assert code == 1 and "neither a CLEVR-Seg folder" in out


def test_cubes3d_folder_is_one_line_and_a_bad_file_one_more(tmp_path, capsys):
    """Generated volumes (inside_core.data.cubes3d) through the registry: detected by their file, the
    loader's checked reader; a bad file is one line naming it."""
    from inside_core.data.cubes3d import VOLUMES_FILE, write_cubes3d

    root = write_cubes3d(tmp_path / "cubes", 5, seed=0)
    code, out = _run(capsys, root)
    assert code == 0 and out.strip().splitlines() == [f"OK: cubes3d at {root}: 5 volumes checked, 0 errors, 0 warnings"]
    (root / VOLUMES_FILE).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    code, out = _run(capsys, root)
    lines = out.strip().splitlines()
    assert code == 1 and len(lines) == 2 and lines[1].startswith("FAILED: cubes3d"), lines
    assert lines[0].startswith(f"error: {root / VOLUMES_FILE}: ") and "safetensors" in lines[0], lines
    (root / VOLUMES_FILE).unlink()
    code, out = _run(capsys, root, "--format", "cubes3d")
    assert code == 1 and str(root / VOLUMES_FILE) in out.splitlines()[0], out
