"""Evaluation metrics against hand-computed values on crafted masks, and the comparison table."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
import torch

from inside_core.evaluate import comparison_table, comparison_tables
from inside_core.evaluate_acdc import evaluate_acdc, structure_metrics, z_variants
from inside_core.metrics import dice as dice_score
from inside_core.metrics import hausdorff_mm


def test_dice_hand_computed():
    pred = np.zeros((6, 6), bool)
    target = np.zeros((6, 6), bool)
    pred[0, 0:4] = True  # 4 pixels
    target[0, 1:4] = True
    target[1, 0:3] = True  # 6 pixels, 3 shared with pred
    assert dice_score(pred, target) == pytest.approx(2 * 3 / (4 + 6))
    assert dice_score(target, target) == pytest.approx(1.0)


def test_dice_empty_conventions():
    empty = np.zeros((5, 5), bool)
    some = empty.copy()
    some[2, 2] = True
    assert dice_score(empty, empty) == 1.0  # absent from both: 1
    assert dice_score(some, empty) == 0.0  # absent from one: 0
    assert dice_score(empty, some) == 0.0


def test_hausdorff_hand_computed_with_spacing():
    pred = np.zeros((2, 8, 8), bool)
    target = np.zeros((2, 8, 8), bool)
    pred[0, 0, 0] = True
    target[0, 3, 4] = True
    assert hausdorff_mm(pred, target, (1.0, 1.0, 1.0)) == pytest.approx(5.0)
    # rows twice as far apart: sqrt((3 * 2)^2 + 4^2)
    assert hausdorff_mm(pred, target, (1.0, 2.0, 1.0)) == pytest.approx(math.sqrt(52.0))
    # across slices: 10 mm apart
    target[:] = False
    target[1, 0, 0] = True
    assert hausdorff_mm(pred, target, (10.0, 1.5, 1.5)) == pytest.approx(10.0)


def test_hausdorff_is_symmetric_maximum():
    pred = np.zeros((1, 10, 10), bool)
    target = np.zeros((1, 10, 10), bool)
    pred[0, 2, 2] = True
    target[0, 2, 2] = True
    target[0, 2, 8] = True  # a target point 6 px from any prediction
    assert hausdorff_mm(pred, target, (1.0, 1.0, 1.0)) == pytest.approx(6.0)
    assert hausdorff_mm(target, pred, (1.0, 1.0, 1.0)) == pytest.approx(6.0)


def test_hausdorff_empty_conventions():
    empty = np.zeros((1, 4, 4), bool)
    some = empty.copy()
    some[0, 1, 1] = True
    assert hausdorff_mm(empty, empty, (1, 1, 1)) == 0.0
    assert math.isnan(hausdorff_mm(some, empty, (1, 1, 1)))
    assert math.isnan(hausdorff_mm(empty, some, (1, 1, 1)))


def test_structure_metrics_volumes():
    target = np.zeros((2, 6, 6), np.int64)
    target[:, 1:3, 1:3] = 3  # LV: 8 voxels
    target[0, 4, 4] = 2  # MYO: 1 voxel
    pred = target.copy()
    pred[1, 1:3, 1:3] = 0  # predicted LV: 4 voxels
    metrics = structure_metrics(pred, target, (10.0, 1.5, 2.0))  # 30 mm^3 per voxel
    assert metrics["LV"]["volume_reference_ml"] == pytest.approx(8 * 30 / 1000)
    assert metrics["LV"]["volume_predicted_ml"] == pytest.approx(4 * 30 / 1000)
    assert metrics["LV"]["dice"] == pytest.approx(2 * 4 / 12)
    assert metrics["LV"]["hausdorff_mm"] == pytest.approx(10.0)  # the missing slice is 10 mm away
    assert metrics["MYO"]["dice"] == 1.0 and metrics["MYO"]["hausdorff_mm"] == 0.0
    assert metrics["RV"]["dice"] == 1.0 and metrics["RV"]["hausdorff_mm"] == 0.0  # absent from both


def test_acdc_volumes_are_stacked_by_slice_index_and_averaged():
    spacing = (1.5, 1.5, 10.0)  # (row, column, slice) as the dataset's meta gives it
    slices, labels, masks = [], [], []
    for phase in ("ED", "ES"):
        for k in (2, 0, 1):  # out of order on purpose
            gt = np.zeros((8, 8), np.int64)
            gt[2:6, 2:6] = 3
            gt[0, 0] = 1 if phase == "ES" else 0  # RV only in ES's ground truth
            pred = gt.copy()
            pred[0, 0] = 0  # RV never predicted
            if phase == "ES" and k == 2:
                pred[2:6, 2:6] = 0  # LV missed on the slice 20 mm from the others
            slices.append({"patient": "p1", "phase": phase, "slice_index": k, "num_slices": 3, "spacing": spacing,
                           "slice_position": k / 2})
            labels.append(pred)
            masks.append(gt)
    result = evaluate_acdc({"true": np.stack(labels)}, np.stack(masks), slices, "test")
    assert result["dice"]["LV"]["ED"] == 1.0
    assert result["dice"]["LV"]["ES"] == pytest.approx(2 * 32 / (32 + 48), abs=1e-4)
    assert result["hausdorff_mm"]["LV"]["ES"] == pytest.approx(10.0)  # slice 2 to slice 1
    assert result["dice"]["RV"]["ED"] == 1.0 and result["hausdorff_mm"]["RV"]["ED"] == 0.0  # empty in both
    assert result["dice"]["RV"]["ES"] == 0.0  # present only in the ground truth
    assert math.isnan(result["hausdorff_mm"]["RV"]["ES"]) and result["hausdorff_undefined"] == 1
    voxel_ml = 1.5 * 1.5 * 10.0 / 1000
    assert result["volume_ml"]["LV"]["ED"]["reference"] == pytest.approx(48 * voxel_ml, abs=0.01)
    assert result["volume_ml"]["LV"]["ES"]["abs_error"] == pytest.approx(16 * voxel_ml, abs=0.01)
    assert result["n_volumes"] == {"ED": 1, "ES": 1}
    # thirds: slice 0 (s = 0) basal, 1 (s = 0.5) mid, 2 (s = 1) apical; the LV is missed at the ES apex only
    thirds = result["dice_by_third"]
    assert thirds["basal"]["LV"] == 1.0 and thirds["mid"]["LV"] == 1.0
    assert thirds["apical"]["LV"] == pytest.approx(0.5)  # ED 1, ES 0
    assert result["z_sensitivity"]["true"]["LV"] == pytest.approx((1.0 + 2 * 32 / 80) / 2, abs=1e-4)


def test_z_variants_swap_reverse_and_blank():
    z = torch.tensor([[0.0, 0.0], [1.0, 0.25]])
    variants = z_variants(z)
    assert torch.equal(variants["true"], z)
    assert variants["phase_swapped"].tolist() == [[1.0, 0.0], [0.0, 0.25]]
    assert variants["position_reversed"].tolist() == [[0.0, 1.0], [1.0, 0.75]]
    assert variants["midpoint"].tolist() == [[0.5, 0.5], [0.5, 0.5]]


def test_z_sensitivity_shows_a_drop_only_where_z_is_used():
    """Predictions that go wrong when the phase is swapped (not when s is reversed) show it in the table."""
    gt = np.zeros((4, 8, 8), np.int64)
    gt[:, 2:6, 2:6] = 3
    metas = [{"patient": "p", "phase": ph, "slice_index": k, "slice_position": k, "spacing": (1.0, 1.0, 5.0)}
             for ph in ("ED", "ES") for k in (0, 1)]
    wrong = gt.copy()
    wrong[:] = 0
    predictions = {"true": gt, "phase_swapped": wrong, "position_reversed": gt, "midpoint": gt}
    result = evaluate_acdc(predictions, gt, metas, "test")
    z = result["z_sensitivity"]
    assert z["true"]["LV"] == 1.0 and z["phase_swapped"]["LV"] == 0.0 and z["position_reversed"]["LV"] == 1.0
    tables = comparison_tables([({"name": "m", "dataset": "acdc", "conditioning": "inside"}, result)])
    assert len(tables) == 3
    assert "Dice phase swapped (Δ)" in tables[2] and "(-0.333)" in tables[2]  # mean over LV, RV, MYO
    assert "basal LV" in tables[1]


CLEVR_RESULTS = [
    ({"name": "clevr-seg-quadrant-film", "conditioning": "film", "condition": "quadrant", "image_size": [96, 96]},
     {"dice": 0.5, "dice_std": 0.2, "n": 400}),
    ({"name": "clevr-seg-quadrant-inside", "conditioning": "inside", "condition": "quadrant",
      "image_size": [96, 96]}, {"dice": 0.94, "dice_std": 0.05, "n": 400}),
]


def test_comparison_table_formats():
    markdown = comparison_table(CLEVR_RESULTS, "markdown").splitlines()
    assert markdown[0].startswith("| Model |") and markdown[1].startswith("|---")
    assert "| clevr-seg-quadrant-inside | inside | quadrant | 96×96 | 0.940 ± 0.050 | 400 |" in markdown
    rows = list(csv.reader(io.StringIO(comparison_table(CLEVR_RESULTS, "csv"))))
    assert rows[0][0] == "Model" and rows[2][4] == "0.940 ± 0.050"
    latex = comparison_table(CLEVR_RESULTS, "latex")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in latex
    assert r"0.940 $\pm$ 0.050" in latex and r"clevr-seg-quadrant-film" in latex


def test_comparison_table_acdc_and_mixed():
    metrics = {"dice": {s: {"ED": 0.9, "ES": 0.8} for s in ("LV", "RV", "MYO")},
               "hausdorff_mm": {s: {"ED": 3.0, "ES": 4.0} for s in ("LV", "RV", "MYO")}}
    table = comparison_table([({"name": "acdc-phantom-inside", "dataset": "acdc", "conditioning": "inside"},
                               metrics)])
    assert "Dice LV ED" in table and "0.900" in table and "4.0" in table
    with pytest.raises(ValueError, match="different datasets"):
        comparison_table([({"name": "a", "dataset": "acdc"}, metrics), CLEVR_RESULTS[0]])


def test_undefined_hausdorff_is_null_in_json_and_na_in_tables():
    from inside_core.evaluate import json_safe

    assert json_safe({"a": {"b": math.nan, "c": 1.0}, "d": [math.nan]}) == {"a": {"b": None, "c": 1.0}, "d": [None]}
    metrics = {"dice": {s: {"ED": 0.9, "ES": 0.0} for s in ("LV", "RV", "MYO")},
               "hausdorff_mm": {s: {"ED": 3.0, "ES": None} for s in ("LV", "RV", "MYO")}}
    table = comparison_table([({"name": "m", "dataset": "acdc", "conditioning": "none"}, metrics)])
    assert "n/a" in table
