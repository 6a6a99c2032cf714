"""ACDC evaluation: per structure and phase (Dice, Hausdorff, volumes), by slice position, and z-sensitivity.

The 2-D slices are stacked back into one volume per (patient, phase) using their meta (slice_index);
metrics come from `inside_core.metrics` (ACDC conventions: a structure absent from both ground truth
and prediction scores Dice 1 and HD 0; absent from exactly one, Dice 0 and HD undefined (NaN), left
out of the mean HD and counted as "hausdorff_undefined").

- `dice`, `hausdorff_mm`, `volume_ml`: per structure (LV, RV, MYO) and phase (ED, ES), 3-D, with the
  voxel spacing (slice, row, column) of the resampled slices; volumes in mL for reference and prediction.
- `dice_by_third`: the stack cut by slice position s (0 base ... 1 apex) into basal (s < 1/3), mid
  (1/3 <= s < 2/3) and apical (s >= 2/3) slabs; 3-D Dice of each slab per volume, per structure and
  their mean, averaged over the volumes of both phases.
- `z_sensitivity`: the same model with a different z at every slice — "true"; "phase_swapped"
  (phase -> 1 - phase, ED <-> ES); "position_reversed" (s -> 1 - s, base <-> apex); "midpoint"
  (0.5, 0.5: no information). For each, the 3-D Dice per structure, its mean, and the mean per third.
  A model that uses a part of z loses Dice when that part is wrong; no drop means it ignores it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from torch import Tensor

from inside_core.metrics import dice, hausdorff_mm, volume_ml

__all__ = ["STRUCTURES", "PHASES", "THIRDS", "Z_VARIANTS", "structure_metrics", "evaluate_acdc", "z_variants",
           "acdc_tables"]

# ACDC label values (method.md) in the order tables list them
STRUCTURES = {"LV": 3, "RV": 1, "MYO": 2}
PHASES = ("ED", "ES")
THIRDS = ("basal", "mid", "apical")
Z_VARIANTS = ("true", "phase_swapped", "position_reversed", "midpoint")


def third_of(position: float) -> str:
    """basal (s < 1/3), mid, apical (s >= 2/3) for slice position s in [0, 1]."""
    return THIRDS[min(2, int(position * 3))]


def z_variants(z: Tensor) -> dict[str, Tensor]:
    """The z of every variant from the true z = (phase, slice position) (see the module docstring)."""
    swapped, reversed_ = z.clone(), z.clone()
    swapped[:, 0] = 1 - z[:, 0]
    reversed_[:, 1] = 1 - z[:, 1]
    return {"true": z, "phase_swapped": swapped, "position_reversed": reversed_, "midpoint": torch.full_like(z, 0.5)}


def structure_metrics(pred: np.ndarray, target: np.ndarray, spacing: tuple[float, float, float]) -> dict:
    """Per structure for one labelled volume (Z, H, W): dice, hausdorff_mm, volumes in mL.

    `spacing` = (slice, row, column) in mm, matching the volume's axes.
    """
    result = {}
    for structure, label in STRUCTURES.items():
        p, g = pred == label, target == label
        result[structure] = {
            "dice": dice(p, g), "hausdorff_mm": hausdorff_mm(p, g, spacing),
            "volume_reference_ml": volume_ml(g, spacing), "volume_predicted_ml": volume_ml(p, spacing),
        }
    return result


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _volumes(metas: list[dict]) -> dict[tuple[str, str], list[int]]:
    """(patient, phase) -> item indices in slice_index order."""
    volumes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, meta in enumerate(metas):
        volumes[(str(meta["patient"]), str(meta["phase"]))].append(index)
    return {key: sorted(v, key=lambda i: int(metas[i]["slice_index"])) for key, v in sorted(volumes.items())}


def _dice_summary(labels: np.ndarray, masks: np.ndarray, metas: list[dict], volumes: dict) -> dict:
    """Mean 3-D Dice per structure (and "mean") over all volumes, and the same per third."""
    whole: dict[str, list[float]] = defaultdict(list)
    thirds: dict[str, dict[str, list[float]]] = {t: defaultdict(list) for t in THIRDS}
    for indices in volumes.values():
        pred, target = labels[indices], masks[indices]
        slab = np.array([third_of(float(metas[i]["slice_position"])) for i in indices])
        for structure, label in STRUCTURES.items():
            whole[structure].append(dice(pred == label, target == label))
            for third in THIRDS:
                if (slab == third).any():
                    thirds[third][structure].append(dice(pred[slab == third] == label, target[slab == third] == label))
    summary: dict[str, Any] = {s: round(_mean(whole[s]), 4) for s in STRUCTURES}
    summary["mean"] = round(_mean([summary[s] for s in STRUCTURES]), 4)
    summary["by_third"] = {}
    for third in THIRDS:
        row = {s: round(_mean(thirds[third][s]), 4) for s in STRUCTURES if thirds[third][s]}
        if row:
            row["mean"] = round(_mean(list(row.values())), 4)
        summary["by_third"][third] = row
    return summary


def evaluate_acdc(predictions: dict[str, np.ndarray], masks: np.ndarray, metas: list[dict], split: str) -> dict:
    """Metrics from label maps per z variant (`predictions["true"]` required; others optional)."""
    labels = predictions["true"]
    volumes = _volumes(metas)
    per_volume: dict[str, list[dict]] = {phase: [] for phase in PHASES}
    for (_, phase), indices in volumes.items():
        row_mm, col_mm, slice_mm = (float(s) for s in metas[indices[0]]["spacing"])
        per_volume[phase].append(structure_metrics(labels[indices], masks[indices], (slice_mm, row_mm, col_mm)))
    result: dict[str, Any] = {"dice": {}, "hausdorff_mm": {}, "volume_ml": {}, "hausdorff_undefined": 0}
    for structure in STRUCTURES:
        result["dice"][structure], result["hausdorff_mm"][structure], result["volume_ml"][structure] = {}, {}, {}
        for phase in PHASES:
            rows = [v[structure] for v in per_volume[phase]]
            if not rows:
                continue
            hd = [r["hausdorff_mm"] for r in rows]
            result["hausdorff_undefined"] += sum(math.isnan(h) for h in hd)
            ref = [r["volume_reference_ml"] for r in rows]
            prd = [r["volume_predicted_ml"] for r in rows]
            result["dice"][structure][phase] = round(_mean([r["dice"] for r in rows]), 4)
            result["hausdorff_mm"][structure][phase] = round(_mean(hd), 2)
            result["volume_ml"][structure][phase] = {
                "reference": round(_mean(ref), 2), "predicted": round(_mean(prd), 2),
                "abs_error": round(_mean([abs(a - b) for a, b in zip(ref, prd, strict=True)]), 2),
            }
    summaries = {name: _dice_summary(p, masks, metas, volumes) for name, p in predictions.items()}
    result["dice_by_third"] = summaries["true"]["by_third"]
    result["z_sensitivity"] = summaries
    result["n_volumes"] = {phase: len(per_volume[phase]) for phase in PHASES}
    result["n_slices"] = len(metas)
    result["split"] = split
    return result


# ------------------------------------------------------------------------------------------------ tables

def conditioning_label(card: dict) -> str:
    """The card's conditioning, with the number of layers when there is more than one, e.g. "inside ×4"."""
    kind = card.get("conditioning", "?")
    places = (card.get("architecture") or {}).get("conditioning_at") or []
    return f"{kind} ×{len(places)}" if kind != "none" and len(places) > 1 else kind


def acdc_tables(results: list[tuple[dict, dict]], number) -> list[tuple[list[str], list[list[str]]]]:
    """(header, rows) of the three ACDC tables: per structure and phase; by third; z-sensitivity.

    `number(value, digits)` formats a value ("n/a" for a missing one).
    """
    main_header = ["Model", "Conditioning"] + [f"Dice {s} {p}" for s in STRUCTURES for p in PHASES] + \
                  [f"HD {s} {p} (mm)" for s in STRUCTURES for p in PHASES]
    main = [[card["name"], conditioning_label(card)]
            + [number(m["dice"][s][p], 3) for s in STRUCTURES for p in PHASES]
            + [number(m["hausdorff_mm"][s][p], 1) for s in STRUCTURES for p in PHASES] for card, m in results]
    tables = [(main_header, main)]
    if not all("dice_by_third" in m for _, m in results):
        return tables
    third_header = ["Model", "Conditioning"] + [f"{t} {s}" for t in THIRDS for s in (*STRUCTURES, "mean")]
    thirds = [[card["name"], conditioning_label(card)]
              + [number(m["dice_by_third"].get(t, {}).get(s), 3) for t in THIRDS for s in (*STRUCTURES, "mean")]
              for card, m in results]
    tables.append((third_header, thirds))
    z_header = ["Model", "Conditioning", "Dice true z"] + [f"Dice {v.replace('_', ' ')} (Δ)" for v in Z_VARIANTS[1:]] \
        + [f"{t} Δ reversed" for t in ("basal", "apical")]
    z_rows = []
    for card, m in results:
        z = m["z_sensitivity"]
        true = z["true"]["mean"]
        row = [card["name"], conditioning_label(card), number(true, 3)]
        for variant in Z_VARIANTS[1:]:
            value = z.get(variant, {}).get("mean")
            row.append("n/a" if value is None else f"{value:.3f} ({value - true:+.3f})")
        for third in ("basal", "apical"):
            a = z["true"]["by_third"].get(third, {}).get("mean")
            b = z.get("position_reversed", {}).get("by_third", {}).get(third, {}).get("mean")
            row.append("n/a" if a is None or b is None else f"{b - a:+.3f}")
        z_rows.append(row)
    tables.append((z_header, z_rows))
    return tables
