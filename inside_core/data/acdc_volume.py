"""ACDC volumes: reading a NIfTI, and the label-free preprocessing of a volume into model-ready slices.

One code path for a dataset's patient (`inside_core.data.acdc.preprocess_patient`) and a user's upload
(`preprocess_volume`); the steps are listed in `inside_core.data.acdc`'s docstring:

- `load_nifti`, `load_affine`: data (header scaling applied, sizes checked before reading) and geometry;
- `normalise_volume`: percentiles 0.5 / 99.5 of the whole volume to [0, 1];
- `motion_centre` / `image_centre`: the one in-plane crop centre per patient, from what moves;
- `slice_order`, `slice_positions`: base -> apex from the affine's slice axis (APEX_DIRECTION);
- `resample_slice`: to `spacing` mm on an `image_size` grid around the centre.

Nothing here reads labels: the crop and the slice order come from the images and headers only.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

from inside_core.conditions.base import slice_position  # the package __init__ imports torch
from inside_core.data.errors import DataError
from inside_core.data.orientation import header_affine, reorient


# ----------------------------------------------------------------------------------------------- files
def load_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """(data float32 with the header's scaling applied, zooms) or a one-line DataError; stored voxel order."""
    _, data, zooms = _read_nifti(path)
    return data, zooms


def load_canonical(path: Path) -> tuple[np.ndarray, tuple[float, ...], np.ndarray | None, str]:
    """(data, zooms, affine or None, how) turned into the canonical in-plane frame (data.orientation).

    Every ACDC image, label and cine goes through this, so a patient's files share one voxel order.
    """
    image, data, zooms = _read_nifti(path)
    return reorient(data, zooms, header_affine(image.header))


def _read_nifti(path: Path) -> tuple[nib.Nifti1Image, np.ndarray, tuple[float, ...]]:
    from inside_core.data.safe_io import check_nifti_header, check_spacing, check_volume_file

    if not path.exists():
        raise DataError(path, "NIfTI file missing")
    check_volume_file(path)  # a regular file, its size, its stored pixel size (issue 23)
    try:
        image = nib.load(path)  # the header only: the data is read below, once its size is known
    except Exception as error:  # nibabel, gzip and zlib raise many types for damaged files
        raise DataError(path, f"unreadable or truncated NIfTI header ({type(error).__name__}: {error})") from None
    check_nifti_header(image.header, path)  # shape x dtype within inside_core.limits, before reading
    zooms = tuple(float(z) for z in image.header.get_zooms())
    check_spacing(zooms, path)
    try:
        data = image.get_fdata(dtype=np.float32)
    except Exception as error:
        raise DataError(path, f"unreadable or truncated NIfTI ({type(error).__name__}: {error})") from None
    if not np.all(np.isfinite(data)):
        raise DataError(path, "NIfTI holds NaN or infinite values")
    return image, data, zooms


def load_affine(path: Path) -> np.ndarray | None:
    """The voxel-to-world affine a NIfTI header sets (header only), or None if it sets none or is unreadable."""
    from inside_core.data.safe_io import check_volume_file

    try:
        check_volume_file(path)  # nibabel would block on a FIFO
        return header_affine(nib.load(path).header)
    except Exception:  # the data itself is read (and its errors reported) by load_nifti
        return None


# ------------------------------------------------------------------------------------------ geometry
# the heart's long axis from base to apex in RAS world coordinates (nibabel's affine): left, anterior,
# inferior; roughly, and it only has to tell the two ends of a stack apart
APEX_DIRECTION = np.array([-0.6, 0.55, -0.58]) / np.linalg.norm([-0.6, 0.55, -0.58])


def slice_order(affine: np.ndarray | None) -> tuple[bool, str]:
    """(reverse, how): reverse is True when the LAST stored slice is the base.

    From the affine's slice axis against APEX_DIRECTION when the affine is oblique (a real short-axis
    orientation); otherwise ("stack order") the stored order, slice 0 = base.
    """
    if affine is None or not np.all(np.isfinite(affine)):
        return False, "stack order (no affine)"
    axes = np.asarray(affine, dtype=np.float64)[:3, :3]
    norms = np.linalg.norm(axes, axis=0)
    if np.any(norms <= 0):
        return False, "stack order (degenerate affine)"
    step = axes[:, 2] / norms[2]
    if np.max(np.abs(axes / norms)) > 0.995:  # every axis along a world axis: no short-axis orientation
        return False, "stack order (axis-aligned affine)"
    alignment = float(step @ APEX_DIRECTION)
    if abs(alignment) < 0.3:
        return False, "stack order (slice axis across the long axis)"
    return alignment < 0, "affine"


def image_slice_order(frames: np.ndarray, zooms: tuple[float, ...], centre: tuple[float, float],
                      ) -> tuple[bool | None, float]:
    """(reverse or None when unsure, confidence in [0, 1]) from the images alone, no header, no labels.

    Around the heart (a disc of 50 mm about the crop centre), per slice: the area of bright blood (above
    the Otsu threshold of the disc over the whole stack) plus the motion between frames (temporal
    standard deviation). The base holds both ventricles' pools, the outflow tract and the atria and moves
    most (the valve plane descends in systole); towards the apex the cavity closes and hardly moves. The
    half of the stack that scores higher holds the base; the confidence is the relative difference of the
    two halves' mean scores (under 0.08: unsure, None).
    `frames` is (X, Y, Z, T) with T >= 1, in any intensity scale (the threshold and the normalised motion
    do not depend on it).
    """
    if frames.ndim == 3:
        frames = frames[..., None]
    num_slices = frames.shape[2]
    if num_slices < 3:
        return None, 0.0
    rows = (np.arange(frames.shape[0]) - centre[0]) * float(zooms[0])
    cols = (np.arange(frames.shape[1]) - centre[1]) * float(zooms[1])
    disc = np.hypot(*np.meshgrid(rows, cols, indexing="ij")) <= 50.0
    if disc.sum() < 16:
        return None, 0.0
    inside = frames[disc]  # (pixels, Z, T)
    threshold = _otsu(inside.ravel())
    blood = (inside > threshold).mean(axis=(0, 2))
    motion = inside.std(axis=2).mean(axis=0) if frames.shape[3] > 1 else np.zeros(num_slices)
    score = blood / max(blood.max(), 1e-6) + motion / max(motion.max(), 1e-6)
    # halves, not a trend: a stack that starts above the base (atria) rises before it falls
    half = num_slices // 2
    difference = (score[:half].mean() - score[num_slices - half:].mean()) / max(float(score.max()), 1e-6)
    if abs(difference) < 0.08:
        return None, float(abs(difference))
    return bool(difference < 0), float(abs(difference))  # the second half scores higher: the base is at the end


def _otsu(values: np.ndarray, bins: int = 64) -> float:
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * centres)
    total, total_mean = weight[-1], mean[-1]
    between = (total_mean * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1e-12)
    return float(centres[int(np.argmax(between[:-1]))])


def decide_slice_order(affine: np.ndarray | None, frames: np.ndarray, zooms: tuple[float, ...],
                       centre: tuple[float, float]) -> tuple[bool, str]:
    """(reverse, which rule decided): the images when they are clear, else the affine, else the stored order.

    The images come first because a header can be wrong about the stack's direction (seen on a real
    M&Ms-2 stack) and many carry no usable orientation; a confident image rule that disagrees with the
    affine says so.
    """
    from_affine, affine_how = slice_order(affine)
    from_images, confidence = image_slice_order(frames, zooms, centre)
    if from_images is None:
        return from_affine, affine_how
    how = f"images (blood area and motion by slice, halves differ by {confidence:.2f})"
    if affine_how == "affine" and from_affine != from_images:
        how += "; the affine said the opposite"
    return from_images, how


def image_centre(shape: tuple[int, ...]) -> tuple[float, float]:
    """In-plane (row, column) centre of an image."""
    return (shape[0] - 1) / 2, (shape[1] - 1) / 2


def motion_centre(frames: np.ndarray, zooms: tuple[float, ...]) -> tuple[float, float]:
    """In-plane (row, column) centre of what moves in a cine (X, Y, Z, T), T >= 2; no labels needed.

    Temporal standard deviation per voxel (intensities normalised over the whole cine), mean over
    slices, Gaussian smoothing of 10 mm, times a broad Gaussian prior around the image centre (sd 30 %
    of the field of view); from its peak, the centroid of the map above half the peak within 40 mm.
    Falls back to the image centre when nothing moves.
    """
    if frames.ndim == 3:
        frames = frames[:, :, None]
    shape = frames.shape[:2]
    if frames.ndim != 4 or frames.shape[3] < 2:
        return image_centre(shape)
    low, high = np.percentile(frames, [0.5, 99.5])
    scale = max(float(high - low), 1e-6)
    motion = (frames.std(axis=3, dtype=np.float64) / scale).mean(axis=2)
    row_mm, col_mm = float(zooms[0]), float(zooms[1])
    motion = gaussian_filter(motion, (10.0 / row_mm, 10.0 / col_mm))
    rows = (np.arange(shape[0]) - (shape[0] - 1) / 2) * row_mm
    cols = (np.arange(shape[1]) - (shape[1] - 1) / 2) * col_mm
    r, c = np.meshgrid(rows, cols, indexing="ij")
    prior = np.exp(-0.5 * ((r / (0.3 * shape[0] * row_mm)) ** 2 + (c / (0.3 * shape[1] * col_mm)) ** 2))
    score = motion * prior
    if not np.isfinite(score).all() or score.max() <= score.min() + 1e-9:
        return image_centre(shape)
    peak = np.unravel_index(int(np.argmax(score)), shape)
    near = np.hypot(r - r[peak], c - c[peak]) <= 40.0
    weights = np.where(near, np.clip(score - 0.5 * score[peak], 0, None), 0.0)
    if weights.sum() <= 0:
        return float(peak[0]), float(peak[1])
    grid_r, grid_c = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return float((grid_r * weights).sum() / weights.sum()), float((grid_c * weights).sum() / weights.sum())


# ------------------------------------------------------------------------------------------ resampling
def normalise_volume(volume: np.ndarray) -> np.ndarray:
    """clip((x - p0.5) / (p99.5 - p0.5), 0, 1) over the whole volume."""
    low, high = np.percentile(volume, [0.5, 99.5])
    return np.clip((volume - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def resample_slice(
    plane: np.ndarray, zooms: tuple[float, float], spacing: tuple[float, float], centre: tuple[float, float],
    size: tuple[int, int], labels: bool,
) -> np.ndarray:
    """Resample a (rows, columns) slice to `spacing` mm on a `size` grid centred at input pixel `centre`.

    Output pixel i sits at input coordinate centre + (i - (size - 1) / 2) * spacing / zoom (per axis);
    outside the input: 0. Labels: nearest neighbour; images: bilinear after anti-aliasing when shrinking.
    """
    steps = [spacing[a] / zooms[a] for a in range(2)]
    grid = np.meshgrid(
        *[centre[a] + (np.arange(size[a]) - (size[a] - 1) / 2) * steps[a] for a in range(2)], indexing="ij"
    )
    if labels:
        return map_coordinates(plane, grid, order=0, mode="constant", cval=0).astype(np.uint8)
    sigma = [max(0.0, (step - 1) / 2) for step in steps]
    if max(sigma) > 0:
        plane = gaussian_filter(plane, sigma)
    return map_coordinates(plane, grid, order=1, mode="constant", cval=0.0).astype(np.float32)


def size_tuple(image_size: int | tuple[int, int] | None) -> tuple[int, int]:
    if image_size is None:
        raise ValueError("ACDC slices need an image_size (e.g. 128): volumes differ in size")
    if isinstance(image_size, int):
        return (image_size, image_size)
    return tuple(int(s) for s in image_size)  # type: ignore[return-value]


def spacing_tuple(spacing: float | tuple[float, float] | None,
                  zooms: tuple[float, ...]) -> tuple[float, float]:
    if spacing is None:
        return (float(zooms[0]), float(zooms[1]))
    if isinstance(spacing, (int, float)):
        return (float(spacing), float(spacing))
    return (float(spacing[0]), float(spacing[1]))


def preprocess_volume(volume: np.ndarray, zooms: tuple[float, ...], affine: np.ndarray | None = None,
                      spacing: float | tuple[float, float] | None = 1.37,
                      image_size: int | tuple[int, int] = 128) -> dict:
    """A user's volume (X, Y, Z) or cine (X, Y, Z, T), preprocessed exactly like the dataset's slices.

    `affine` is the header's (`orientation.header_affine`: None when the header sets none). Returns
    {"images": (Z, H, W) float32 of the first frame, "slice_position": [base 0 .. apex 1 per stored slice],
    "centre": (row, column) in canonical pixels, "reverse", "centre_from", "order_from", "orientation"}.
    For the dashboard's uploads: the canonical in-plane frame, the crop centre from the cine's motion (or
    the image centre for 3-D), the slice order from the images, else the affine.
    """
    from inside_core.data.safe_io import check_case_pixels

    if volume.ndim == 2:
        volume = volume[:, :, None]
    size = size_tuple(image_size)
    check_case_pixels(volume.shape[2], size, "the volume")  # before any copy or slice is made
    volume, zooms, affine, orientation = reorient(volume, tuple(zooms), affine)
    if volume.ndim == 4:
        centre, centre_from = motion_centre(volume, zooms), "cine temporal std"
        first = volume[..., 0]
    else:
        centre, centre_from = image_centre(volume.shape), "image centre"
        first = volume
    reverse, order_from = decide_slice_order(affine, volume, zooms, centre)
    target = spacing_tuple(spacing, zooms)
    normalised = normalise_volume(first)
    images = np.stack([resample_slice(normalised[:, :, k], zooms[:2], target, centre, size, labels=False)
                       for k in range(first.shape[2])])
    return {"images": images, "slice_position": slice_positions(first.shape[2], reverse), "centre": centre,
            "reverse": reverse, "centre_from": centre_from, "order_from": order_from, "orientation": orientation}


def slice_positions(num_slices: int, reverse: bool) -> list[float]:
    """Position of every stored slice from base 0 to apex 1."""
    return [slice_position(num_slices - 1 - k if reverse else k, num_slices) for k in range(num_slices)]
