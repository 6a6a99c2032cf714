"""inside_core.metrics: the one Dice, checked against MONAI's, and the ACDC empty-structure conventions."""

import math

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice

from inside_core.metrics import batch_dice, dice, dice_per_label, hausdorff_mm, volume_ml


@pytest.mark.parametrize("seed", range(5))
def test_dice_equals_monai_dice(seed):
    rng = np.random.default_rng(seed)
    prediction, target = rng.integers(0, 4, (2, 40, 40))
    for label in (1, 2, 3):
        p, g = (torch.from_numpy(m == label)[None, None].float() for m in (prediction, target))
        expected = float(compute_dice(p, g, include_background=True, ignore_empty=False).item())
        assert dice(prediction, target, label) == pytest.approx(expected, abs=1e-6)
        assert dice(prediction == label, target == label) == pytest.approx(expected, abs=1e-6)


def test_empty_structure_conventions():
    empty, full = np.zeros((8, 8), int), np.ones((8, 8), int)
    assert dice(empty, empty) == 1.0  # absent from both
    assert dice(full, empty) == 0.0 and dice(empty, full) == 0.0  # absent from one
    assert hausdorff_mm(empty, empty, (1.0, 1.0)) == 0.0
    assert math.isnan(hausdorff_mm(full, empty, (1.0, 1.0)))
    half = np.zeros((4, 4), int)
    half[:2] = 1
    assert dice(half, np.ones((4, 4), int)) == pytest.approx(2 * 8 / 24)


def test_batch_dice_is_the_per_image_mean_of_dice():
    rng = np.random.default_rng(3)
    prediction, target = (torch.from_numpy(a) for a in rng.integers(0, 4, (2, 5, 16, 16)))
    expected = [np.mean(list(dice_per_label(prediction[i], target[i], (1, 2, 3)).values())) for i in range(5)]
    np.testing.assert_allclose(batch_dice(prediction, target, (1, 2, 3)).numpy(), expected, atol=1e-6)


def test_hausdorff_and_volume_in_millimetres():
    a, b = np.zeros((1, 10, 10), bool), np.zeros((1, 10, 10), bool)
    a[0, 2, 2], b[0, 2, 6] = True, True
    assert hausdorff_mm(a, b, (5.0, 1.5, 2.0)) == pytest.approx(8.0)  # 4 columns of 2 mm
    assert volume_ml(np.ones((2, 10, 10)), (5.0, 1.0, 1.0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((3, 3)), np.zeros((4, 4)))
