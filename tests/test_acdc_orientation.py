"""ACDC volumes in any voxel order: the canonical in-plane frame from the header, a volume whose header
carries no orientation, the label-free base/apex rule, and the augmentation that covers what headers
cannot fix."""

from __future__ import annotations

import importlib

import nibabel as nib
import numpy as np
import pytest
import torch

from inside_core.data import AcdcDataset
from inside_core.data.acdc_volume import (
    APEX_DIRECTION,
    decide_slice_order,
    image_slice_order,
    motion_centre,
    normalise_volume,
)
from inside_core.data.augment import Augment
from inside_core.data.orientation import FROM_AFFINE, NO_ORIENTATION, canonical_axes, inplane_ornt, reorient

SHAPE = (60, 52, 6)
ZOOMS = (1.3, 1.3, 8.0)
ORDERS = [np.array([[first, f0], [1 - first, f1], [2, 1]], float)
          for first in (0, 1) for f0 in (-1, 1) for f1 in (-1, 1)]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))


def _canonical_affine() -> np.ndarray:
    normal = APEX_DIRECTION + np.array([0.1, -0.05, 0.08])
    normal /= np.linalg.norm(normal)
    down, right = canonical_axes(normal)
    affine = np.eye(4)
    affine[:3, :3] = np.stack([down * ZOOMS[0], right * ZOOMS[1], normal * ZOOMS[2]], axis=1)
    affine[:3, 3] = [10.0, -20.0, 30.0]
    return affine


def _heart(contraction: float) -> np.ndarray:
    """An asymmetric heart in the canonical frame: LV ring right of centre, RV crescent left, shrinking to
    the apex (the last slice)."""
    rows, cols = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    labels = np.zeros(SHAPE, np.uint8)
    for k in range(SHAPE[2]):
        scale = 1 - 0.13 * k
        r = np.hypot(rows - 30, cols - 30)
        labels[..., k][np.hypot(rows - 24, (cols - 15) / 0.7) <= 11 * scale * (1 - 0.2 * contraction)] = 1
        labels[..., k][r <= 12 * scale] = 2
        labels[..., k][r <= 8 * scale * (1 - 0.3 * contraction)] = 3
    return labels


def _write(folder, labels_by_frame, ornt, affine):
    """A patient stored in the voxel order `ornt` with the affine that says so (None: no orientation)."""
    folder.mkdir(parents=True)
    (folder / "Info.cfg").write_text("ED: 1\nES: 2\nGroup: NOR\nNbFrame: 2\n")
    stored_affine = None if affine is None else affine @ nib.orientations.inv_ornt_aff(ornt, SHAPE)
    rng = np.random.default_rng(1)
    for frame, labels in labels_by_frame.items():
        image = 50.0 + 800.0 * (labels == 3) + 500.0 * (labels == 1) + 150.0 * (labels == 2) + rng.normal(0, 5, SHAPE)
        for data, suffix in ((image.astype(np.float32), ""), (labels, "_gt")):
            stored = np.ascontiguousarray(nib.orientations.apply_orientation(data, ornt))
            nifti = nib.Nifti1Image(stored, stored_affine)
            nifti.header.set_zooms(tuple(ZOOMS[int(a)] for a in ornt[:, 0]))
            nib.save(nifti, folder / f"{folder.name}_frame{frame:02d}{suffix}.nii.gz")


def test_eight_voxel_orders_with_consistent_affines_give_identical_model_inputs(tmp_path):
    frames = {1: _heart(0.0), 2: _heart(1.0)}
    datasets = []
    for number, ornt in enumerate(ORDERS):
        _write(tmp_path / f"set{number}" / f"patient{number:03d}", frames, ornt, _canonical_affine())
        datasets.append(AcdcDataset(tmp_path / f"set{number}", split="all", image_size=48, use_cache=False))
    reference = datasets[0]
    assert reference.meta[0]["orientation"] == FROM_AFFINE
    # the canonical frame is the drawn one: RV (label 1) left of the LV (label 3)
    ed = reference.masks[reference.indices("patient000", "ED")[0]]
    assert np.nonzero(ed == 1)[1].mean() < np.nonzero(ed == 3)[1].mean()
    for dataset in datasets[1:]:
        assert np.array_equal(dataset.images, reference.images)
        assert np.array_equal(dataset.masks, reference.masks)
        assert np.array_equal(dataset.z, reference.z)


def test_without_orientation_the_preprocessing_turns_with_the_voxel_order(tmp_path):
    """What a header cannot fix: the same patient stored in the 8 in-plane voxel orders without orientation.
    The label-free crop centre and the resampling are equivariant, so each model input is exactly the
    stored order applied to the reference's input (no one-pixel offset from rounding the centre)."""
    frames = {1: _heart(0.0), 2: _heart(1.0)}
    datasets = []
    for number, ornt in enumerate(ORDERS):
        _write(tmp_path / f"set{number}" / f"patient{number:03d}", frames, ornt, None)
        datasets.append(AcdcDataset(tmp_path / f"set{number}", split="all", image_size=48, use_cache=False))

    def drawn(array: np.ndarray, ornt: np.ndarray) -> np.ndarray:
        """(N, [1,] H, W) model inputs of a patient stored in `ornt`, turned back into the drawn frame."""
        planes = np.moveaxis(array.reshape(-1, *array.shape[-2:]), 0, -1)  # (H, W, N): in-plane axes first
        inverse = np.zeros_like(ornt)
        for axis, (out_axis, flip) in enumerate(ornt):
            inverse[int(out_axis)] = [axis, flip]
        return np.moveaxis(nib.orientations.apply_orientation(planes, inverse), -1, 0)

    reference = datasets[0]
    expected_images, expected_masks = drawn(reference.images, ORDERS[0]), drawn(reference.masks, ORDERS[0])
    for dataset, ornt in zip(datasets, ORDERS, strict=True):
        assert dataset.meta[0]["orientation"] == NO_ORIENTATION
        assert np.abs(drawn(dataset.images, ornt) - expected_images).max() < 1e-6
        assert np.array_equal(drawn(dataset.masks, ornt), expected_masks)
        assert np.array_equal(dataset.z, reference.z)


def test_a_header_without_orientation_keeps_the_stored_order_and_says_so(tmp_path):
    _write(tmp_path / "patient001", {1: _heart(0.0), 2: _heart(1.0)}, ORDERS[5], None)
    dataset = AcdcDataset(tmp_path, split="all", image_size=48, use_cache=False)
    assert all(m["orientation"] == NO_ORIENTATION for m in dataset.meta)
    volume = np.zeros(SHAPE, np.float32)
    assert reorient(volume, ZOOMS, None)[3] == NO_ORIENTATION
    assert inplane_ornt(np.full((4, 4), np.nan)) is None


@pytest.mark.parametrize("apex_first", [False, True])
def test_base_and_apex_from_the_images_when_the_header_cannot_tell(tmp_path, apex_first):
    frames = {1: _heart(0.0), 2: _heart(1.0)}
    if apex_first:
        frames = {f: v[:, :, ::-1].copy() for f, v in frames.items()}
    _write(tmp_path / "patient001", frames, ORDERS[0], None)
    dataset = AcdcDataset(tmp_path, split="all", image_size=48, use_cache=False)
    meta = {m["slice_index"]: m for m in dataset.meta}
    base = SHAPE[2] - 1 if apex_first else 0
    assert meta[base]["slice_position"] == 0.0
    assert meta[base]["order_from"].startswith("images")
    # label-free: the rule never reads the _gt files (deleting them changes nothing it decides)
    for path in (tmp_path / "patient001").glob("*_gt.nii.gz"):
        path.unlink()
    images = [normalise_volume(nib.load(tmp_path / "patient001" / f"patient001_frame0{f}.nii.gz").get_fdata())
              for f in (1, 2)]
    reverse, how = decide_slice_order(None, np.stack(images, axis=3), ZOOMS, (30.0, 30.0))
    assert reverse is apex_first and how.startswith("images")


def test_image_rule_on_phantom_patients_stored_apex_first_without_an_affine():
    generator = importlib.import_module("inside_core.data.generate_acdc")  # the module, not the function
    for number in (1, 2, 4):
        rng = np.random.default_rng([11, number])
        _, scan, cine, _ = generator.make_patient(rng, generator.GROUPS[number % 5])
        stored = cine[:, :, ::-1]  # apex first, and no header to say so
        frames = normalise_volume(stored)
        centre = motion_centre(stored, (scan.spacing, scan.spacing, scan.slice_mm))
        reverse, _ = image_slice_order(frames, (scan.spacing, scan.spacing, scan.slice_mm), centre)
        assert reverse is True, number


def test_dihedral_augmentation_gives_every_symmetry_and_moves_labels_with_images():
    torch.manual_seed(0)
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 1, 2] = 1.0  # one marked pixel: its place tells the symmetry
    images, masks = image.repeat(400, 1, 1, 1), (image[:, 0] > 0).long().repeat(400, 1, 1)
    out_images, out_masks = Augment.dihedral(images, masks, torch.ones(400, dtype=torch.bool))
    places = {tuple(torch.nonzero(o[0]).flatten().tolist()) for o in out_images}
    assert len(places) == 8  # all 8 in-plane symmetries appear
    assert torch.equal(out_masks.bool(), out_images[:, 0] > 0)  # labels follow the image
    kept, _ = Augment.dihedral(images, masks, torch.zeros(400, dtype=torch.bool))
    assert torch.equal(kept, images)


def test_resolution_and_histogram_augmentations_stay_in_range():
    torch.manual_seed(0)
    images = torch.rand(6, 1, 32, 32)
    low = Augment(lowres=2.0, lowres_p=1.0).resolution(images)
    assert low.shape == images.shape and not torch.equal(low, images)
    assert low.std() < images.std()  # sampled down and up: smoother
    assert torch.equal(Augment(lowres=2.0, lowres_p=0.0).resolution(images), images)
    shifted = Augment(histogram_p=1.0).histogram(images)
    assert shifted.shape == images.shape and not torch.equal(shifted, images)
    assert float(shifted.min()) >= -1e-6 and float(shifted.max()) <= 1 + 1e-6
    # monotone: the intensity order of pixels is kept (a curve, not noise)
    flat_in, flat_out = images[0].flatten(), shifted[0].flatten()
    order = torch.argsort(flat_in)
    assert (flat_out[order].diff() >= -1e-5).all()
