"""ACDC: real-style headers (non-identity affine, int16 with a scaling slope, odd sizes), areas through
resampling, base/apex detection, phantom -> loader round trip, splits, cine, cache rebuild."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from inside_core.data import AcdcDataset, DataError, generate_acdc
from inside_core.data.acdc import base_at_end, find_patient_folders, load_nifti, phase_value

ROW_MM, COL_MM, SLICE_MM = 0.9, 1.1, 8.0
SHAPE = (97, 83, 5)  # odd sizes


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))


def _affine() -> np.ndarray:
    """Oblique rotation times anisotropic voxel sizes, plus a translation (as real scanners write)."""
    angle = 0.4
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, np.cos(0.3), -np.sin(0.3)], [0, np.sin(0.3), np.cos(0.3)]])
    affine = np.eye(4)
    affine[:3, :3] = tilt @ rotation @ np.diag([ROW_MM, COL_MM, SLICE_MM])
    affine[:3, 3] = [-120.5, 33.0, 71.25]
    return affine


def _heart_labels(base_last: bool = False) -> np.ndarray:
    """Discs: LV (3) inside a MYO ring (2), an RV (1) beside it; radii shrink from base to apex."""
    rows, cols = np.meshgrid(np.arange(SHAPE[0]) * ROW_MM, np.arange(SHAPE[1]) * COL_MM, indexing="ij")
    labels = np.zeros(SHAPE, np.uint8)
    for k in range(SHAPE[2]):
        scale = 1 - 0.15 * k
        r = np.hypot(rows - 48.0, cols - 50.0)
        rv = np.hypot((rows - 40.0) / 1.0, (cols - 22.0) / 0.6) <= 14 * scale
        labels[..., k][rv] = 1
        labels[..., k][r <= 20 * scale] = 2
        labels[..., k][r <= 13 * scale] = 3
    return labels[..., ::-1].copy() if base_last else labels


def _write_patient(folder: Path, base_last: bool = False) -> dict:
    """A patient with int16 + scl_slope images, uint8 labels, a 4-frame cine; returns the float data."""
    folder.mkdir(parents=True)
    name = folder.name
    rng = np.random.default_rng(0)
    labels = {1: _heart_labels(base_last), 3: _heart_labels(base_last)}
    labels[3][labels[3] == 3] = 3  # same geometry at ES: enough for these tests
    cine = np.zeros((*SHAPE, 4), np.float32)
    for t in range(4):
        cine[..., t] = 100.0 + 900.0 * (labels[1] == 3) + 300.0 * (labels[1] == 1) + rng.normal(0, 5, SHAPE)
    (folder / "Info.cfg").write_text("ED: 1\nES: 3\nGroup: NOR\nHeight: 180.0\nNbFrame: 4\nWeight: 80.0\n")
    for frame in (1, 3):
        image = nib.Nifti1Image(cine[..., frame - 1], _affine())
        image.set_data_dtype(np.int16)  # nibabel stores int16 with a scaling slope / intercept
        nib.save(image, folder / f"{name}_frame{frame:02d}.nii.gz")
        nib.save(nib.Nifti1Image(labels[frame], _affine()), folder / f"{name}_frame{frame:02d}_gt.nii.gz")
    cine_image = nib.Nifti1Image(cine, _affine())
    cine_image.set_data_dtype(np.int16)
    nib.save(cine_image, folder / f"{name}_4d.nii.gz")
    return {"cine": cine, "labels": labels}


def test_header_scaling_and_spacing_are_read(tmp_path):
    truth = _write_patient(tmp_path / "patient001")
    path = tmp_path / "patient001" / "patient001_frame01.nii.gz"
    stored = nib.load(path)
    assert stored.get_data_dtype() == np.int16 and stored.dataobj.slope != 1.0
    data, zooms = load_nifti(path)
    assert np.allclose(zooms, (ROW_MM, COL_MM, SLICE_MM), atol=1e-5)
    assert np.abs(data - truth["cine"][..., 0]).max() <= stored.dataobj.slope  # scaled back within one step


@pytest.mark.parametrize("base_last", [False, True])
def test_label_areas_survive_resampling_and_crop_is_centred(tmp_path, base_last):
    truth = _write_patient(tmp_path / "patient001", base_last=base_last)
    dataset = AcdcDataset(tmp_path, split="all", image_size=64, spacing=1.37, use_cache=False)
    assert len(dataset) == 2 * SHAPE[2]
    totals = np.zeros((2, 4))
    for index in dataset.indices("patient001", "ED"):
        item = dataset[index]
        meta = item["meta"]
        assert item["image"].shape == (1, 64, 64) and item["mask"].shape == (64, 64)
        assert meta["spacing"] == pytest.approx([1.37, 1.37, SLICE_MM])
        source = truth["labels"][1][..., meta["slice_index"]]
        for label in (1, 2, 3):
            area_before = (source == label).sum() * ROW_MM * COL_MM
            area_after = (item["mask"].numpy() == label).sum() * 1.37 * 1.37
            totals[:, label] += area_before, area_after
            if area_before > 300:  # thin apical rings are only a few pixels wide: checked in the totals
                assert area_after == pytest.approx(area_before, rel=0.06), (label, meta["slice_index"])
    assert totals[1, 1:] == pytest.approx(totals[0, 1:], rel=0.03)  # volumes per structure
    # slice position: 0 at the base (the end with the larger heart area)
    positions = {dataset.meta[i]["slice_index"]: dataset.meta[i]["slice_position"]
                 for i in dataset.indices("patient001")}
    base, apex = (SHAPE[2] - 1, 0) if base_last else (0, SHAPE[2] - 1)
    assert positions[base] == 0.0 and positions[apex] == 1.0
    # the crop is centred on the labels' centre of mass
    heart = (dataset.masks[dataset.indices("patient001", "ED")] > 0).sum(axis=0)
    rows, cols = np.nonzero(heart)
    weights = heart[rows, cols]
    assert np.average(rows, weights=weights) == pytest.approx(31.5, abs=2.0)
    assert np.average(cols, weights=weights) == pytest.approx(31.5, abs=2.0)


def test_base_detection_from_areas():
    labels = _heart_labels()
    assert not base_at_end(labels)
    assert base_at_end(labels[..., ::-1])
    assert not base_at_end(None)


def test_phase_value_is_0_at_ed_1_at_es_and_wraps():
    assert phase_value(1, 1, 11, 30) == 0.0
    assert phase_value(11, 1, 11, 30) == 1.0
    assert phase_value(6, 1, 11, 30) == pytest.approx(0.5)
    assert phase_value(30, 1, 11, 30) == pytest.approx(1 - 19 / 20)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    return generate_acdc(tmp_path_factory.mktemp("acdc") / "phantom", patients=4, seed=1, test_patients=1,
                         progress=False)


def test_phantom_round_trip(phantom):
    subsets = find_patient_folders(phantom)
    assert [p.name for p in subsets["training"]] == ["patient001", "patient002", "patient003", "patient004"]
    dataset = AcdcDataset(phantom, split="all", image_size=96, spacing=1.5)
    assert dataset.cond_dim == 2
    item = dataset[0]
    assert item["image"].shape == (1, 96, 96) and item["mask"].dtype.is_floating_point is False
    assert set(np.unique(dataset.masks).tolist()) == {0, 1, 2, 3}
    meta = item["meta"]
    for key in ("patient", "frame", "phase", "slice_index", "num_slices", "spacing", "group"):
        assert key in meta
    assert meta["phase"] in ("ED", "ES") and len(meta["spacing"]) == 3
    for i, meta in enumerate(dataset.meta):
        assert dataset.z[i][0] == (0.0 if meta["phase"] == "ED" else 1.0)
        assert 0.0 <= dataset.z[i][1] <= 1.0
    # LV contracts from ED to ES in the phantom
    for patient in dataset.patients:
        ed = (dataset.masks[dataset.indices(patient, "ED")] == 3).sum()
        es = (dataset.masks[dataset.indices(patient, "ES")] == 3).sum()
        assert es < ed


def test_splits_are_by_patient(phantom):
    splits = {split: AcdcDataset(phantom, split=split, image_size=64, seed=0).patients for split in
              ("train", "val", "test")}
    assert splits["test"] == ["patient005"]  # the labelled testing/ folder is the test split
    assert not set(splits["train"]) & set(splits["val"])
    assert sorted(splits["train"] + splits["val"]) == ["patient001", "patient002", "patient003", "patient004"]


def test_cine_gives_every_frame_with_phase_values(phantom):
    dataset = AcdcDataset(phantom, split="all", image_size=64)
    info_text = (phantom / "training" / "patient002" / "Info.cfg").read_text()
    info = dict(line.split(": ") for line in info_text.splitlines())
    frames = dataset.cine("patient002", 1)
    assert len(frames) == int(info["NbFrame"])
    by_frame = {f["frame"]: f for f in frames}
    assert by_frame[int(info["ED"])]["phase_value"] == 0.0 and by_frame[int(info["ES"])]["phase_value"] == 1.0
    assert by_frame[int(info["ED"])]["mask"] is not None and by_frame[2]["mask"] is None
    assert frames[0]["image"].shape == (1, 64, 64)
    # the cine's ED frame matches the ED item (same crop, same normalisation)
    ed_item = [i for i in dataset.indices("patient002", "ED") if dataset.meta[i]["slice_index"] == 1][0]
    assert np.allclose(by_frame[int(info["ED"])]["image"].numpy()[0], dataset.images[ed_item], atol=0.02)


def test_phantom_is_byte_identical_for_a_seed(tmp_path):
    first = generate_acdc(tmp_path / "a", patients=1, seed=4, progress=False)
    second = generate_acdc(tmp_path / "b", patients=1, seed=4, progress=False)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def test_cache_rebuilt_after_a_label_file_changes(tmp_path):
    _write_patient(tmp_path / "data" / "patient001")
    before = AcdcDataset(tmp_path / "data", split="all", image_size=64)
    assert list((tmp_path / "cache" / "arrays").glob("acdc-patient-*.npz"))
    path = tmp_path / "data" / "patient001" / "patient001_frame01_gt.nii.gz"
    labels = np.asarray(nib.load(path).dataobj).copy()
    labels[labels == 1] = 0  # remove the RV
    nib.save(nib.Nifti1Image(labels, _affine()), path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = AcdcDataset(tmp_path / "data", split="all", image_size=64)
    ed = after.indices("patient001", "ED")
    assert (before.masks[ed] == 1).any() and not (after.masks[ed] == 1).any()


def test_missing_label_file_raises_one_line_data_error(tmp_path):
    _write_patient(tmp_path / "patient001")
    (tmp_path / "patient001" / "patient001_frame03_gt.nii.gz").unlink()
    with pytest.raises(DataError, match=r"patient001_frame03_gt\.nii\.gz: ES label file missing"):
        AcdcDataset(tmp_path, split="all", use_cache=False)
