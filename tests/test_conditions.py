"""The conditions registry: one home for each condition's controls, encoding, words and target rule."""

import numpy as np
import pytest

from inside_core.conditions import (
    POINT_RADIUS_RANGE,
    QUADRANTS,
    TableCondition,
    condition_for_dim,
    condition_of,
    get_condition,
    list_conditions,
    quadrant_blend,
    quadrant_mass,
    quadrant_of,
)
from inside_core.palette import PHASE_COLOURS


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
    assert condition_for_dim(2).name == "phase_slice"  # cube_half has 2 numbers too, but for volumes
    assert condition_for_dim(2, spatial_dims=3).name == "cube_half"
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


def test_cube_half_blends_the_halves_like_the_quadrant_location():
    cube = get_condition("cube_half")
    np.testing.assert_allclose(cube.encode(loc_w=-0.6), [1.0, 0.0])
    np.testing.assert_allclose(cube.encode(loc_w=0.0), [0.5, 0.5])
    np.testing.assert_allclose(cube.encode(loc_w=0.25), quadrant_blend(0.25, -1.0)[:2])  # the same ramp
    np.testing.assert_allclose(cube.encode(**cube.values_from_z([0.0, 1.0])), [0.0, 1.0])
    assert cube.ground_truth_value({"loc_w": 0.3}) == 1 and cube.ground_truth_value({"loc_w": -0.3}) == 0
    assert "second half 0.50" in cube.caption_for({"loc_w": 0.0})


def test_sweep_variables_ranges_and_refusals():
    point, phase = get_condition("point"), get_condition("phase_slice")
    assert {name: get_condition(name).default_sweep_variable() for name in list_conditions()} == {
        "quadrant": "loc_x", "colour": "value", "shape": "value", "size": "value", "point": "loc_x",
        "phase_slice": "slice", "cube_half": "loc_w"}  # ACDC: the slice, along which ground truth exists at both phases
    assert point.sweep_range("x") == (-0.75, 0.75) and point.sweep_range("r") == POINT_RADIUS_RANGE
    assert phase.sweep_range("phase") == (0.0, 1.0)
    assert point.sweep_key("r") == "radius" and get_condition("colour").sweep_key("value") == "value"
    assert [c.key for c in point.sweep_controls()] == ["loc_x", "loc_y", "radius"]
    assert [c.key for c in get_condition("shape").sweep_controls()] == ["value"]
    for variable in ("slice", "nonsense"):  # not a control of point's, or no control at all: the same answer
        with pytest.raises(ValueError, match="cannot sweep .* choose one of loc_x, loc_y, radius"):
            point.sweep_key(variable)
    with pytest.raises(ValueError, match="cannot sweep"):
        point.sweep_z([0, 0, 0.3], "slice", [0.5])


def test_figure_words_come_from_the_condition():
    quadrant, point, phase = get_condition("quadrant"), get_condition("point"), get_condition("phase_slice")
    assert [point.control(k).short for k in ("loc_x", "loc_y", "radius")] == ["x", "y", "r"]
    assert phase.control("phase").short == "phase"
    assert quadrant.categories == QUADRANTS and get_condition("size").categories == ("small", "medium", "large")
    assert point.categories == () and phase.categories == ()
    assert [quadrant.value_label(q) for q in QUADRANTS] == ["top left", "top right", "bottom right", "bottom left"]
    assert [quadrant.value_label(q, short=True) for q in QUADRANTS] == ["TL", "TR", "BR", "BL"]
    assert get_condition("colour").value_label("orange", short=True) == "orange"
    # a curve held at one end of the phase is named as describe(z) names that phase
    assert [phase.series_label("phase", v) for v in (0.0, 1.0, 0.4)] == ["ED", "ES", "phase 0.40"]
    assert phase.describe(phase.encode(phase=1.0, slice=0.5)).startswith(phase.series_label("phase", 1.0))
    assert point.series_label("r", -0.25) == "r \N{MINUS SIGN}0.25"
    assert phase.series_colour("phase", 0.0) == PHASE_COLOURS["ED"] and phase.series_colour("phase", 1.0) == \
        PHASE_COLOURS["ES"]
    assert phase.series_colour("phase", 0.5) is None and point.series_colour("radius", 0.3) is None
    assert phase.axis_label("slice") == "slice position (0 base, 1 apex)"
    assert phase.axis_label("phase") == "phase (0 = ed → 1 = es)"


def test_table_condition_names_curves_and_axes_by_its_own_variables():
    table = TableCondition({"variables": {"pos": {"type": "slice_position"},
                                          "age": {"type": "continuous", "range": [20, 80]}}})
    # the held variable's words, though it is not the first in z (describe(z) starts with pos)
    assert table.series_label("age", 20.0) == "age 20"
    assert table.axis_label("pos") == "pos (slice position)"  # not ACDC's base and apex
    assert table.default_sweep_variable() == "pos"


def test_regions_of_the_image():
    assert get_condition("quadrant").region_lines() == ([0.0], [0.0])  # the centre lines, x and y
    for name in ("point", "colour", "phase_slice"):
        assert get_condition(name).region_lines() == ([], []), name
        assert get_condition(name).region_mass(np.ones((4, 4))) is None, name
    # the mass per quadrant follows quadrant_of, pixel by pixel, also for odd sizes
    attention = np.random.default_rng(0).random((7, 9))
    expected = dict.fromkeys(QUADRANTS, 0.0)
    for (row, column), value in np.ndenumerate(attention):
        expected[quadrant_of(column, row, 9, 7)] += value / attention.sum()
    np.testing.assert_allclose(get_condition("quadrant").region_mass(attention), [expected[q] for q in QUADRANTS])
    np.testing.assert_allclose(quadrant_mass(attention), [expected[q] for q in QUADRANTS])


def test_image_point_names_the_controls_the_marker_draws():
    """The page drags the point `marker` draws; `image_point` says which controls it moves."""
    from inside_core.conditions import TableCondition, get_condition

    assert get_condition("quadrant").image_point() == ("loc_x", "loc_y", None)
    assert get_condition("point").image_point() == ("loc_x", "loc_y", "radius")
    assert get_condition("phase_slice").image_point() is None and get_condition("colour").image_point() is None
    table = TableCondition({"age": {"type": "continuous", "range": [0, 1]},
                            "spot": {"type": "label_centroid", "label": "lesion"},
                            "spot_size": {"type": "label_size", "label": "lesion"}})
    assert table.image_point() == ("spot_x", "spot_y", "spot_size")
    x, y, radius = table.image_point()
    (mx, my), mr = table.marker({x: 0.25, y: -0.5, radius: 0.1})
    assert (mx, my, mr) == (0.25, -0.5, 0.1)  # the same point the marker draws
    assert TableCondition({"age": {"type": "continuous", "range": [0, 1]}}).image_point() is None
