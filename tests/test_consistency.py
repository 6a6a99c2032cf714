"""Where two parts of the package compute the same thing, they must agree."""

import numpy as np
import pytest

from inside_core.evaluate import dice_score as evaluation_dice
from inside_core.explorer import dice_score as dashboard_dice


@pytest.mark.parametrize("seed", range(5))
def test_dashboard_dice_equals_monai_dice_of_evaluation(seed):
    # the dashboard writes Dice out (importing monai.metrics costs seconds at start-up); evaluation uses MONAI
    rng = np.random.default_rng(seed)
    prediction, target = rng.integers(0, 4, (2, 40, 40))
    for label in (1, 2, 3):
        assert dashboard_dice(prediction, target, label) == pytest.approx(
            evaluation_dice(prediction == label, target == label), abs=1e-6)


def test_both_dice_follow_the_empty_structure_conventions():
    empty, full = np.zeros((8, 8), int), np.ones((8, 8), int)
    assert dashboard_dice(empty, empty) == evaluation_dice(empty, empty) == 1.0
    assert dashboard_dice(full, empty) == evaluation_dice(full, empty) == 0.0
