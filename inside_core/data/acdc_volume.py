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

from inside_core.conditions import slice_position
from inside_core.data.errors import DataError


# ----------------------------------------------------------------------------------------------- files
def load_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """(data float32 with the header's scaling applied, zooms) or a one-line DataError."""
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
    return data, zooms


def load_affine(path: Path) -> np.ndarray | None:
    """The voxel-to-world affine of a NIfTI file (header only), or None if it cannot be read."""
    from inside_core.data.safe_io import check_volume_file

    try:
        check_volume_file(path)  # nibabel would block on a FIFO
        return np.asarray(nib.load(path).affine, dtype=np.float64)
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

    Returns {"images": (Z, H, W) float32 of the first frame, "slice_position": [base 0 .. apex 1 per
    stored slice], "centre": (row, column) in input pixels, "reverse", "centre_from", "order_from"}.
    For the dashboard's uploads: the crop centre from the cine's motion, or the image centre for 3-D.
    """
    if volume.ndim == 2:
        volume = volume[:, :, None]
    if volume.ndim == 4:
        centre, centre_from = motion_centre(volume, zooms), "cine temporal std"
        first = volume[..., 0]
    else:
        centre, centre_from = image_centre(volume.shape), "image centre"
        first = volume
    reverse, order_from = slice_order(affine)
    size = size_tuple(image_size)
    target = spacing_tuple(spacing, zooms)
    from inside_core.data.safe_io import check_case_pixels

    check_case_pixels(first.shape[2], size, "the volume")  # before any slice is resampled
    normalised = normalise_volume(first)
    images = np.stack([resample_slice(normalised[:, :, k], zooms[:2], target, centre, size, labels=False)
                       for k in range(first.shape[2])])
    return {"images": images, "slice_position": slice_positions(first.shape[2], reverse), "centre": centre,
            "reverse": reverse, "centre_from": centre_from, "order_from": order_from}


def slice_positions(num_slices: int, reverse: bool) -> list[float]:
    """Position of every stored slice from base 0 to apex 1."""
    return [slice_position(num_slices - 1 - k if reverse else k, num_slices) for k in range(num_slices)]
