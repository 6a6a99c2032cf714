"""One anatomical in-plane frame for every short-axis volume, from its header (nibabel's orientation tools).

Real files arrive in whatever voxel order their scanner and converter wrote: the same stack can be stored
transposed, mirrored or rotated by 90 degrees, with an affine that says so. Before anything is cropped,
each volume (and its labels, identically) is turned into one canonical in-plane frame:

    image rows    increase towards DOWN   (posterior-inferior, projected into the slice plane)
    image columns increase towards RIGHT  (the patient's left, projected into the slice plane)
    slices        stay in their stored order (base/apex is decided separately: inside_core.data.acdc_volume)

so a short-axis slice shows the anterior wall at the top and the RV on the left, the usual cardiac view.
Only the 8 in-plane symmetries (transpose, flips) are applied, with `io_orientation` and
`apply_orientation`: a residual rotation of up to 45 degrees remains, and the models are trained with
every rotation and flip anyway (inside_core.data.augment) for what headers cannot tell.

A header carries no usable orientation when neither its qform nor its sform is set (codes 0: nibabel then
invents an affine from the voxel sizes), or its affine is not finite or degenerate. Then the stored order
is kept and the item's meta says so.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

__all__ = ["DOWN", "RIGHT", "canonical_axes", "header_affine", "inplane_ornt", "reorient", "NO_ORIENTATION",
           "FROM_AFFINE"]

# target directions in RAS world coordinates (nibabel): +x right, +y anterior, +z superior
DOWN = np.array([0.0, -1.0, -1.0]) / np.sqrt(2.0)  # posterior-inferior
RIGHT = np.array([-1.0, 0.0, 0.0])  # the patient's left
NO_ORIENTATION = "stored voxel order (the header carries no usable orientation)"
FROM_AFFINE = "canonical frame from the header's affine"


def header_affine(header: nib.Nifti1Header) -> np.ndarray | None:
    """The voxel -> RAS affine a NIfTI-1/2 header sets (sform, else qform: its best), if it sets one
    (code > 0) and it is usable; else None."""
    codes = [int(header.get("qform_code", 0) or 0), int(header.get("sform_code", 0) or 0)]
    if max(codes) <= 0:
        return None
    try:
        affine = np.asarray(header.get_best_affine(), dtype=np.float64)
    except Exception:  # a damaged quaternion: no orientation rather than a failure
        return None
    return affine if _usable(affine) else None


def _usable(affine: np.ndarray | None) -> bool:
    if affine is None or affine.shape[0] < 3 or not np.all(np.isfinite(affine)):
        return False
    axes = affine[:3, :3]
    return bool(np.all(np.linalg.norm(axes, axis=0) > 0) and abs(np.linalg.det(axes)) > 1e-9)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def canonical_axes(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(down, right): unit world directions of the canonical rows and columns in the plane of `normal`."""
    normal = _unit(np.asarray(normal, dtype=np.float64))
    down, right = DOWN - (DOWN @ normal) * normal, RIGHT - (RIGHT @ normal) * normal
    # a plane that contains one target badly (e.g. coronal for DOWN) still gets a frame: the other, turned
    if np.linalg.norm(down) < 0.2:
        down = np.cross(normal, right)
    elif np.linalg.norm(right) < 0.2:
        right = np.cross(down, normal)
    down = _unit(down)
    return down, _unit(right - (right @ down) * down)


def inplane_ornt(affine: np.ndarray | None) -> np.ndarray | None:
    """nibabel orientation (3 x 2: output axis, flip per stored axis) taking the stored in-plane axes to the
    canonical frame, the slice axis untouched; None when the affine is unusable."""
    if not _usable(affine):
        return None
    axes = np.asarray(affine, dtype=np.float64)[:3, :3]
    normal = _unit(axes[:, 2])
    down, right = canonical_axes(normal)
    local = np.eye(4)
    local[:3, :3] = np.stack([down, right, normal]) @ axes  # stored axes in (down, right, normal) coordinates
    ornt = nib.orientations.io_orientation(local)
    if int(ornt[2, 0]) != 2:  # cannot happen for an in-plane frame; refuse rather than mix slices
        return None
    return ornt


def reorient(data: np.ndarray, zooms: tuple[float, ...], affine: np.ndarray | None,
             ) -> tuple[np.ndarray, tuple[float, ...], np.ndarray | None, str]:
    """(data, zooms, affine, how) in the canonical in-plane frame; axes beyond the third (time) follow.

    The same call on a volume and on its labels gives the same voxel order. `how` is FROM_AFFINE or
    NO_ORIENTATION (stored order kept, affine None).
    """
    ornt = inplane_ornt(affine)
    if ornt is None or data.ndim < 3:
        return data, zooms, None, NO_ORIENTATION
    moved = np.ascontiguousarray(nib.orientations.apply_orientation(data, ornt))
    new_affine = np.asarray(affine, dtype=np.float64) @ nib.orientations.inv_ornt_aff(ornt, data.shape[:3])
    new_zooms = list(zooms)
    for stored_axis, (out_axis, _) in enumerate(ornt):
        new_zooms[int(out_axis)] = zooms[stored_axis]
    return moved, tuple(new_zooms), new_affine, FROM_AFFINE
