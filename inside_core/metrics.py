"""Segmentation metrics, written once: Dice, Hausdorff distance in mm, volumes in mL.

Training's log, `inside evaluate`, the Explorer and the dashboard all ask this module, so a Dice on the
page is the Dice in the tables. Conventions of the usual ACDC evaluation scripts (method.md):

- Dice = 2 |P ∩ G| / (|P| + |G|); a structure absent from both prediction and ground truth scores 1,
  absent from exactly one scores 0;
- Hausdorff distance (symmetric, 100th percentile, MONAI) in mm from the voxel spacing; both empty: 0;
  exactly one empty: NaN (undefined: left out of means and counted separately);
- volume = voxel count × voxel volume (mm³) / 1000.

Dice is counted with numpy / torch rather than through `monai.metrics`, because importing that costs
seconds on every dashboard and notebook start; tests/test_metrics.py checks it against MONAI.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["dice", "dice_per_label", "batch_dice", "hausdorff_mm", "volume_ml"]


def _dice_from_counts(intersection, total):
    """The one Dice formula: 2 i / t, and 1 where t = 0 (absent from both). Works on numbers and tensors."""
    if isinstance(intersection, Tensor):
        return torch.where(total > 0, 2 * intersection / total.clamp_min(1), torch.ones_like(total))
    return 1.0 if total == 0 else 2.0 * intersection / total


def _as_bool(mask: Any) -> np.ndarray:
    if isinstance(mask, Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask).astype(bool, copy=False)


def dice(prediction: Any, target: Any, label: int | None = None) -> float:
    """Dice of two masks of any (equal) shape, numpy or torch.

    With `label`, both are label maps and the structure is `== label`; without, both are binary masks.
    """
    if label is not None:
        prediction, target = np.asarray(_numpy(prediction)) == label, np.asarray(_numpy(target)) == label
    p, g = _as_bool(prediction), _as_bool(target)
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and target {g.shape} differ in shape")
    return float(_dice_from_counts(int(np.logical_and(p, g).sum()), int(p.sum()) + int(g.sum())))


def dice_per_label(prediction: Any, target: Any, labels: Sequence[int]) -> dict[int, float]:
    """{label: Dice} for label maps."""
    prediction, target = _numpy(prediction), _numpy(target)
    return {int(k): dice(prediction, target, int(k)) for k in labels}


def batch_dice(prediction: Tensor, target: Tensor, labels: Sequence[int]) -> Tensor:
    """Dice per image (B,) of label maps (B, H, W), averaged over `labels` (the training log's metric)."""
    scores = []
    for k in labels:
        p, g = prediction == k, target == k
        intersection = (p & g).flatten(1).sum(1).float()
        total = p.flatten(1).sum(1).float() + g.flatten(1).sum(1).float()
        scores.append(_dice_from_counts(intersection, total))
    return torch.stack(scores).mean(0)


def hausdorff_mm(prediction: Any, target: Any, spacing: Sequence[float]) -> float:
    """Symmetric Hausdorff distance in mm between two binary masks (MONAI), `spacing` in mm per axis.

    Both empty: 0. Exactly one empty: NaN (undefined).
    """
    p, g = _as_bool(prediction), _as_bool(target)
    if not p.any() and not g.any():
        return 0.0
    if not p.any() or not g.any():
        return math.nan
    from monai.metrics import compute_hausdorff_distance  # slow import: only where HD is asked for

    pt, gt = (torch.from_numpy(m)[None, None].float() for m in (p, g))
    with warnings.catch_warnings():  # MONAI 1.6 warns about its own internal use of a deprecated argument
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_hausdorff_distance(pt, gt, include_background=True, spacing=[float(s) for s in spacing])
    return float(value.item())


def volume_ml(mask: Any, spacing: Sequence[float]) -> float:
    """Volume of a binary mask in mL: voxel count × product of `spacing` (mm) / 1000."""
    return float(_as_bool(mask).sum()) * float(np.prod([float(s) for s in spacing])) / 1000.0


def _numpy(array: Any) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array)
