"""The conditions registry: one home for each condition's controls, encoding, words and target rule."""

import numpy as np
import pytest

from inside_core.conditions import (
    QUADRANTS,
    condition_for_dim,
    condition_of,
    get_condition,
    list_conditions,
    quadrant_blend,
)


def test_every_condition_has_controls_whose_defaults_encode_to_its_z_size():
    for name in list_conditions():
        condition = get_condition(name)
        z = condition.encode(**condition.defaults())
        assert z.shape == (condition.cond_dim,), name
        assert all(control.valid(control.default) or control.kind == "stack" for control in condition.controls)
        assert condition.describe(z)  # words for captions and exports


@pytest.mark.parametrize("name", ["quadrant", "point", "phase_slice", "colour", "shape", "size"])
def test_values_from_z_encode_back_to_the_same_z(name):
    condition = get_condition(name)
    rng = np.random.default_rng(0)
    for _ in range(5):
        values = {}
        for control in condition.controls:
            if control.kind == "select":
                values[control.key] = control.options[rng.integers(len(control.options))]
            else:
                values[control.key] = float(rng.uniform(max(control.low, 0.05), control.high))
        z = condition.encode(**values)
        if name == "quadrant":  # the blend's inverse is the dominant quadrant's centre
            z = condition.encode(**condition.values_from_z(z))
            assert np.isclose(z.max(), 1.0)
        np.testing.assert_allclose(condition.encode(**condition.values_from_z(z)), z, atol=1e-6)


def test_quadrant_control_blends_inside_its_band_and_is_dead_beyond():
    quadrant = get_condition("quadrant")
    control = quadrant.control("loc_x")
    assert control.blend == (-0.5, 0.5) and control.dead == ((-1.0, -0.5), (0.5, 1.0))
    np.testing.assert_allclose(quadrant.encode(loc_x=0.6, loc_y=-0.7), quadrant.encode(loc_x=1.0, loc_y=-1.0))
    mixed = quadrant.encode(loc_x=0.0, loc_y=-0.5)
    assert mixed[QUADRANTS.index("top_left")] == pytest.approx(0.5) == mixed[QUADRANTS.index("top_right")]
    assert "beyond ±0.5" in quadrant.caption_for({"loc_x": 0.0, "loc_y": -0.5})
    assert quadrant.ground_truth_value({"loc_x": 0.2, "loc_y": 0.9}) == "bottom_right"


def test_parse_and_aliases():
    np.testing.assert_allclose(get_condition("point").parse("0.1,-0.2,0.3"), [0.1, -0.2, 0.3])
    np.testing.assert_allclose(get_condition("phase_slice").parse("ES,0.5"), [1.0, 0.5])
    np.testing.assert_allclose(get_condition("quadrant").parse("0.5,0.5"), quadrant_blend(0.5, 0.5))
    assert get_condition("colour").parse("orange").argmax() == 2
    assert get_condition("point").control("r").key == "radius"
    with pytest.raises(ValueError, match="expected"):
        get_condition("point").parse("1,2")
    assert get_condition("acdc") is get_condition("phase_slice")  # older cards' names
    assert condition_of({}).name == "quadrant"
    with pytest.raises(ValueError, match="unknown condition"):
        get_condition("lesion_size")


def test_a_z_size_names_a_condition_only_when_it_is_unambiguous():
    assert condition_for_dim(4).name == "quadrant"
    assert condition_for_dim(2).name == "phase_slice"
    with pytest.raises(ValueError, match="point"):  # colour, shape, size and point all have 3 numbers
        condition_for_dim(3)


def test_sweeps_hold_the_other_controls_at_the_sample_values():
    point = get_condition("point")
    zs = point.sweep_z([0.2, -0.4, 0.3], "x", [-0.5, 0.5])
    np.testing.assert_allclose(zs, [[-0.5, -0.4, 0.3], [0.5, -0.4, 0.3]])
    assert point.sweep_values("radius", 3) == pytest.approx([0.2, 0.4, 0.6])
    assert get_condition("shape").sweep_values("value") == ["cube", "sphere", "triangle"]


def test_point_rule_selects_objects_within_the_radius():
    point = get_condition("point")
    objects = [{"pixel_coords": [10, 10, 0]}, {"pixel_coords": [90, 90, 0]}]
    assert point.selects(objects, (-0.8, -0.8, 0.2), 100, 100) == [0]
    z, value, chosen = point.draw(np.random.default_rng(1), objects, 100, 100)
    assert chosen and np.allclose(z, value)
