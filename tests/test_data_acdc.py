"""ACDC: real-style headers (non-identity affine, int16 with a scaling slope, odd sizes), areas through
resampling, label-free crop centre and slice order, phantom -> loader round trip, splits, cine, cache."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from inside_core.data import AcdcDataset, DataError, generate_acdc
from inside_core.data.acdc import (
    APEX_DIRECTION,
    find_patient_folders,
    load_affine,
    load_nifti,
    motion_centre,
    phase_value,
    preprocess_volume,
    slice_order,
)

ROW_MM, COL_MM, SLICE_MM = 0.9, 1.1, 8.0
SHAPE = (97, 83, 5)  # odd sizes


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))


def _affine(base_last: bool = False) -> np.ndarray:
    """Double-oblique short-axis geometry (as real scanners write): the slice axis along the heart's
    long axis, base -> apex (or apex -> base when the stack is stored base last), anisotropic voxels."""
    normal = -APEX_DIRECTION if base_last else APEX_DIRECTION
    first = np.cross(normal, [0.3, -0.2, 0.9])
    first /= np.linalg.norm(first)
    second = np.cross(normal, first)
    affine = np.eye(4)
    affine[:3, :3] = np.stack([first * ROW_MM, second * COL_MM, normal * SLICE_MM], axis=1)
    affine[:3, 3] = [-120.5, 33.0, 71.25]
    return affine


def _heart_labels(base_last: bool = False, contraction: float = 0.0) -> np.ndarray:
    """Discs: LV (3) inside a MYO ring (2), an RV (1) beside it; radii shrink from base to apex and
    with the contraction (0 = ED)."""
    rows, cols = np.meshgrid(np.arange(SHAPE[0]) * ROW_MM, np.arange(SHAPE[1]) * COL_MM, indexing="ij")
    labels = np.zeros(SHAPE, np.uint8)
    for k in range(SHAPE[2]):
        scale = 1 - 0.15 * k
        r = np.hypot(rows - 48.0, cols - 50.0)
        rv = np.hypot((rows - 40.0) / 1.0, (cols - 22.0) / 0.6) <= 14 * scale * (1 - 0.2 * contraction)
        labels[..., k][rv] = 1
        labels[..., k][r <= 20 * scale] = 2
        labels[..., k][r <= 13 * scale * (1 - 0.3 * contraction)] = 3
    return labels[..., ::-1].copy() if base_last else labels


def _write_patient(folder: Path, base_last: bool = False) -> dict:
    """A patient with int16 + scl_slope images, uint8 labels, a 4-frame cine that contracts (ED 1,
    ES 3); returns the float data."""
    folder.mkdir(parents=True)
    name = folder.name
    rng = np.random.default_rng(0)
    contraction = (0.0, 0.5, 1.0, 0.5)
    frames = [_heart_labels(base_last, c) for c in contraction]
    labels = {1: frames[0], 3: frames[2]}
    cine = np.zeros((*SHAPE, 4), np.float32)
    for t in range(4):
        cine[..., t] = 100.0 + 900.0 * (frames[t] == 3) + 300.0 * (frames[t] == 1) + rng.normal(0, 5, SHAPE)
    (folder / "Info.cfg").write_text("ED: 1\nES: 3\nGroup: NOR\nHeight: 180.0\nNbFrame: 4\nWeight: 80.0\n")
    affine = _affine(base_last)
    for frame in (1, 3):
        image = nib.Nifti1Image(cine[..., frame - 1], affine)
        image.set_data_dtype(np.int16)  # nibabel stores int16 with a scaling slope / intercept
        nib.save(image, folder / f"{name}_frame{frame:02d}.nii.gz")
        nib.save(nib.Nifti1Image(labels[frame], affine), folder / f"{name}_frame{frame:02d}_gt.nii.gz")
    cine_image = nib.Nifti1Image(cine, affine)
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
    # slice position: 0 at the base, decided by the affine's slice axis (labels play no part)
    positions = {dataset.meta[i]["slice_index"]: dataset.meta[i]["slice_position"]
                 for i in dataset.indices("patient001")}
    base, apex = (SHAPE[2] - 1, 0) if base_last else (0, SHAPE[2] - 1)
    assert positions[base] == 0.0 and positions[apex] == 1.0
    # the crop is centred on what moves (the LV and RV contract), i.e. near the heart
    heart = (dataset.masks[dataset.indices("patient001", "ED")] > 0).sum(axis=0)
    rows, cols = np.nonzero(heart)
    weights = heart[rows, cols]
    assert np.average(rows, weights=weights) == pytest.approx(31.5, abs=4.0)
    assert np.average(cols, weights=weights) == pytest.approx(31.5, abs=6.0)


def test_slice_order_from_the_affine_only():
    assert slice_order(_affine()) == (False, "affine")
    assert slice_order(_affine(base_last=True)) == (True, "affine")
    # axis-aligned (no short-axis orientation) or missing: the stored order, slice 0 = base
    assert slice_order(np.diag([1.5, 1.5, 8.0, 1.0]))[0] is False
    assert slice_order(np.diag([-1.5, 1.5, -8.0, 1.0]))[0] is False
    assert slice_order(None)[0] is False


def test_motion_centre_finds_what_moves_not_the_brightest():
    rows, cols = np.meshgrid(np.arange(120), np.arange(160), indexing="ij")
    cine = np.zeros((120, 160, 3, 8), np.float32)
    cine[(rows - 60) ** 2 + (cols - 130) ** 2 <= 100] = 2000.0  # a bright static blob (fat, say)
    for t in range(8):
        radius = 12 - 5 * np.sin(np.pi * t / 7)
        disc = (rows - 40) ** 2 + (cols - 55) ** 2 <= radius**2  # a contracting "ventricle"
        cine[disc, :, t] = 800.0
    centre = motion_centre(cine, (1.4, 1.4, 8.0))
    assert centre == pytest.approx((40, 55), abs=2.0)
    assert motion_centre(cine[..., :1], (1.4, 1.4, 8.0)) == pytest.approx((59.5, 79.5))  # one frame: image centre


def test_shifting_the_label_files_leaves_the_images_unchanged(tmp_path):
    source = generate_acdc(tmp_path / "phantom", patients=1, seed=7, progress=False)
    before = AcdcDataset(source, split="all", image_size=96, spacing=1.37, use_cache=False)
    for path in (source / "training" / "patient001").glob("*_gt.nii.gz"):
        stored = nib.load(path)
        shifted = np.roll(np.asarray(stored.dataobj), (25, 25), axis=(0, 1))
        nib.save(nib.Nifti1Image(shifted, None, stored.header), path)  # the header's own orientation
    after = AcdcDataset(source, split="all", image_size=96, spacing=1.37, use_cache=False)
    assert np.array_equal(before.images, after.images)
    assert np.array_equal(before.z, after.z)
    assert not np.array_equal(before.masks, after.masks)  # the labels did move


@pytest.mark.parametrize(("shape", "zooms", "dtype"), [
    ((430, 400, 21, 3), (0.7, 0.7, 5.0), np.int16), ((150, 160, 6), (1.9, 1.9, 10.0), np.uint8),
    ((208, 256, 9, 2), (1.4, 1.4, 10.0), np.float64),
])
def test_preprocess_volume_handles_the_spread_of_real_acquisitions(shape, zooms, dtype):
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 200, size=shape).astype(dtype)
    out = preprocess_volume(volume, zooms, affine=np.diag([*zooms, 1.0]), spacing=1.37, image_size=128)
    assert out["images"].shape == (shape[2], 128, 128) and out["images"].dtype == np.float32
    assert 0.0 <= out["images"].min() and out["images"].max() <= 1.0
    assert out["slice_position"][0] == 0.0 and out["slice_position"][-1] == 1.0
    assert out["centre_from"] == ("cine temporal std" if len(shape) == 4 else "image centre")


def test_upload_path_matches_the_dataset(tmp_path):
    """A user's cine through preprocess_volume gives the dataset's ED images (same crop, same order)."""
    source = generate_acdc(tmp_path / "phantom", patients=1, seed=3, progress=False)
    folder = source / "training" / "patient001"
    dataset = AcdcDataset(source, split="all", image_size=96, spacing=1.37, use_cache=False)
    cine, zooms = load_nifti(folder / "patient001_4d.nii.gz")
    out = preprocess_volume(cine, zooms, load_affine(folder / "patient001_4d.nii.gz"), 1.37, 96)
    ed = dataset.indices("patient001", "ED")
    assert out["centre"] == pytest.approx(dataset.meta[ed[0]]["centre"])
    assert [dataset.meta[i]["slice_position"] for i in ed] == pytest.approx(out["slice_position"])
    assert np.allclose(out["images"], dataset.images[ed], atol=0.02)


def test_uploaded_cine_is_seen_as_the_dataset_sees_the_patient(tmp_path, monkeypatch):
    """The dashboard's upload path (app.sources) on a phantom patient's NIfTI bytes gives the loader's
    tensors: the cine's first frame (ED, frame 1) = the loader's cine frames and, up to the storage type of
    the ED file, its ED items; same crop centre (the cine's motion), same base -> apex order (the affine)."""
    from app.sources import UploadSource, read_volume_bytes, read_volume_upload

    source = generate_acdc(tmp_path / "phantom", patients=1, seed=3, progress=False)
    folder = source / "training" / "patient001"
    dataset = AcdcDataset(source, split="all", image_size=96, spacing=1.37, use_cache=False)
    ed = dataset.indices("patient001", "ED")
    cine_bytes = (folder / "patient001_4d.nii.gz").read_bytes()
    slices = read_volume_bytes("patient001_4d.nii.gz", cine_bytes, 1.37, (96, 96))
    assert len(slices) == len(ed) and all(s.shape == (1, 96, 96) and s.dtype == torch.float32 for s in slices)
    for k, upload in enumerate(slices):
        loader = dataset.cine("patient001", k)[0]
        assert loader["frame"] == 1 and loader["phase_value"] == 0.0
        assert torch.allclose(upload, loader["image"], atol=1e-6)
        assert torch.allclose(upload, dataset[ed[k]]["image"], atol=0.02)  # the ED file's own rounding
    volume = read_volume_upload("patient001_4d.nii.gz", cine_bytes, 1.37, (96, 96))
    assert volume["centre_from"] == "cine temporal std"
    assert volume["centre"] == pytest.approx(dataset.meta[ed[0]]["centre"])
    uploaded = UploadSource("patient001_4d.nii.gz", cine_bytes, "acdc", image_size=(96, 96), spacing=1.37)
    assert [uploaded.position(0, k) for k in range(len(ed))] == pytest.approx(
        [dataset.meta[i]["slice_position"] for i in ed])
    assert uploaded.slice_order(0) == sorted(range(len(ed)), key=lambda k: dataset.meta[ed[k]]["slice_position"])
    # a cine over the upload limit is not inflated whole: its first frame, cropped at the image centre
    monkeypatch.setenv("INSIDE_LIMIT_UPLOAD_VOXELS", str(int(np.prod(_cine_shape(folder)[:3])) + 1))
    fallback = read_volume_upload("patient001_4d.nii.gz", cine_bytes, 1.37, (96, 96))
    assert fallback["centre_from"] == "image centre"
    assert np.hypot(*np.subtract(fallback["centre"], volume["centre"])) > 3  # the heart is off-centre here
    assert fallback["slice_position"] == pytest.approx(volume["slice_position"])
    # one 3-D frame: no motion to find, so the image centre; the slice order still from its affine
    frame_bytes = (folder / "patient001_frame01.nii.gz").read_bytes()
    frame = read_volume_upload("patient001_frame01.nii.gz", frame_bytes, 1.37, (96, 96))
    assert frame["centre_from"] == "image centre" and frame["slice_position"] == pytest.approx(volume["slice_position"])
    assert np.allclose(frame["images"], fallback["images"], atol=0.02)


def _cine_shape(folder: Path) -> tuple[int, ...]:
    return tuple(nib.load(folder / f"{folder.name}_4d.nii.gz").shape)


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


def test_patients_preprocessed_in_threads_give_the_same_arrays(phantom):
    """The page's first ACDC sample waits for its split's patients, preprocessed in threads: the arrays and
    their order must be those of one thread."""
    one = AcdcDataset(phantom, split="all", image_size=48, use_cache=False, threads=1)
    three = AcdcDataset(phantom, split="all", image_size=48, use_cache=False, threads=3)
    assert len(one.patients) == 5 and three.patients == one.patients and three.meta == one.meta
    for name in ("images", "masks", "z"):
        assert np.array_equal(getattr(one, name), getattr(three, name))


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
    # each frame holds its own pixels, not a view that keeps the whole cine (every slice) alive (issue 23)
    assert all(f["image"].untyped_storage().nbytes() == 64 * 64 * 4 for f in frames)
    # the cine's ED frame matches the ED item (same crop, same normalisation)
    ed_item = [i for i in dataset.indices("patient002", "ED") if dataset.meta[i]["slice_index"] == 1][0]
    assert np.allclose(by_frame[int(info["ED"])]["image"].numpy()[0], dataset.images[ed_item], atol=0.02)


def _phantom_whole_volume(generator, rng: np.random.Generator, group: str) -> np.ndarray:
    """The phantom's cine as `make_patient` computed it before issue 11: gamma, blur and bias over the whole
    volume in every frame (the same draws in the same order). The reference for the windowed version."""
    g = generator
    heart, scan = g.draw_heart(rng, group), g.draw_scan(rng)
    body = g.draw_body(rng, heart)
    px = scan.spacing
    rows_mm = (np.arange(scan.rows) - (scan.rows - 1) / 2) * px - scan.offset[0]
    cols_mm = (np.arange(scan.columns) - (scan.columns - 1) / 2) * px - scan.offset[1]
    r_mm, c_mm = np.meshgrid(rows_mm, cols_mm, indexing="ij")
    cos, sin = np.cos(scan.rotation), np.sin(scan.rotation)
    x, y = cos * c_mm + sin * r_mm, -sin * c_mm + cos * r_mm
    n, frames = len(scan.levels), scan.num_frames
    backgrounds = []
    for level in scan.levels:
        vessels = g._smooth_field(rng, x.shape, 1.5 / px)
        texture = 1 + 0.06 * g._smooth_field(rng, x.shape, 3.0 / px)
        backgrounds.append(g.render_body(body, level, x, y, px, scan.tone, vessels) * texture)
    reach = max(heart.r_epi + heart.rv_width, 1.9 * heart.r_epi) + 14
    inside = np.nonzero((np.abs(x) < reach) & (np.abs(y) < reach))
    window = (slice(inside[0].min(), inside[0].max() + 1), slice(inside[1].min(), inside[1].max() + 1))
    grid = g.heart_grid(heart, x[window], y[window])
    heart_texture = [1 + 0.05 * g._smooth_field(rng, grid["x"].shape, 2.0 / px) for _ in range(n)]
    tones = [{**scan.tone, "blood": scan.tone["blood"] * np.clip(
        1 + scan.flow * g._smooth_field(rng, grid["x"].shape, 4.0 / px), 0.35, 1.6)} for _ in range(n)]
    bias = np.exp(scan.bias * g._smooth_field(rng, x.shape, 60.0 / px)).astype(np.float32)
    bands = g.banding(rng, x.shape, px, scan.banding)
    sub = np.array([-1, 0, 1]) * scan.slice_mm / 3 / scan.long_axis_mm
    cine = np.zeros((scan.rows, scan.columns, n, frames), np.float32)
    for frame in range(1, frames + 1):
        c = g.contraction(frame, scan.es_frame, frames)
        volume = np.stack(backgrounds, axis=2)
        for k, level in enumerate(scan.levels):
            parts = []
            for d in (sub if level < 0.2 or level > 0.65 else sub[1:2]):
                part = backgrounds[k][window].copy()
                g.render_heart(heart, level + d, c, grid, px, tones[k], part, labels=False)
                parts.append(part)
            volume[window + (k,)] = np.mean(parts, axis=0) * heart_texture[k]
        volume = gaussian_filter(np.clip(volume, 0, None) ** scan.gamma, (*scan.blur, 0)) * bias[..., None]
        volume = g.scanner_effects(volume, bands, scan.ghost)
        noise = rng.standard_normal((2, *volume.shape), dtype=np.float32) * scan.noise
        cine[..., frame - 1] = np.hypot(volume + noise[0], noise[1])
    return cine * scan.scale


@pytest.mark.parametrize(("seed", "number"), [(46, 2), (58, 1)])
def test_windowed_cine_is_bit_identical_to_the_whole_volume_formula(seed, number):
    """make_patient recomputes only the heart's window (and the blur's reach) per frame; the cine must be
    exactly what blurring the whole volume every frame gives, so `inside data acdc` still writes the data
    the shipped models were trained and evaluated on."""
    import sys

    generator = sys.modules["inside_core.data.generate_acdc"]
    group = generator.GROUPS[(number - 1) % len(generator.GROUPS)]
    _, _, cine, _ = generator.make_patient(np.random.default_rng([seed, number]), group)
    reference = _phantom_whole_volume(generator, np.random.default_rng([seed, number]), group)
    assert cine.dtype == reference.dtype and np.array_equal(cine, reference)


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
