"""TableCondition: a user's declared variables (inside_core.conditions) as controls and z, and back."""

import numpy as np
import pytest

from inside_core.conditions import TableCondition, condition_of, declaration_problems

SPEC = {
    "age": {"type": "continuous", "range": [20, 90], "unit": "years", "missing": "fill", "fill": 50},
    "sex": {"type": "categorical", "values": ["F", "M"]},
    "grade": {"type": "ordinal", "values": ["low", "mid", "high"]},
    "slice": {"type": "slice_position"},
    "lesion": {"type": "label_centroid", "label": "lesion"},
    "lesion_size": {"type": "label_size", "label": "lesion"},
}


@pytest.fixture()
def table() -> TableCondition:
    return TableCondition({"variables": SPEC})


def test_controls_keyed_by_variable(table):
    kinds = {c.key: c.kind for c in table.controls}
    assert kinds == {"age": "slider", "sex": "select", "grade": "slider", "slice": "stack", "lesion_x": "slider",
                     "lesion_y": "slider", "lesion_size": "slider"}
    age = table.control("age")
    assert (age.low, age.high, age.default) == (20.0, 90.0, 50.0) and "years" in age.label
    assert table.control("sex").options == ("F", "M")
    assert table.control("lesion_x").low == -1.0 and table.control("lesion_y").high == 1.0
    # age 1 + missing bit 1, sex 2, grade 1, slice 1, centroid 2, size 1
    assert table.cond_dim == 9


def test_each_type_encodes(table):
    z = table.encode(age=55, sex="M", grade="high", slice=0.25, lesion_x=0.2, lesion_y=-0.3, lesion_size=0.1)
    np.testing.assert_allclose(z, [0.5, 0, 0, 1, 1.0, 0.25, 0.2, -0.3, 0.1], atol=1e-6)
    assert table.encode(grade="mid")[4] == pytest.approx(0.5)  # ordinal: index / (n - 1)
    assert table.encode(grade=1.0)[4] == pytest.approx(0.5)  # the slider gives the index


def test_missing_bit_and_fill(table):
    z = table.encode(age=None)
    assert z[0] == pytest.approx((50 - 20) / 70) and z[1] == 1.0
    assert table.encode(age=float("nan"))[1] == 1.0
    with pytest.raises(ValueError, match="missing"):
        table.encode(sex=None)  # sex is "drop": a missing value cannot be encoded


def test_round_trip_and_words(table):
    values = {"age": 61.0, "sex": "F", "grade": 2.0, "slice": 0.5, "lesion_x": -0.4, "lesion_y": 0.3,
              "lesion_size": 0.2}
    z = table.encode(**values)
    back = table.values_from_z(z)
    assert back["sex"] == "F" and back["age"] == pytest.approx(61.0) and back["lesion_x"] == pytest.approx(-0.4)
    np.testing.assert_allclose(table.encode(**back), z, atol=1e-6)
    words = table.describe(z)
    assert "age 61 years" in words and "sex F" in words and "grade high" in words and "lesion at (" in words
    assert table.describe(table.encode(age=None)).startswith("age missing")


def test_parse_sweep_marker(table):
    np.testing.assert_allclose(table.parse("age=90, sex=M"), table.encode(age=90, sex="M"))
    assert table.parse("age=NA")[1] == 1.0
    with pytest.raises(ValueError):
        table.parse("nonsense")
    zs = table.sweep_z(table.encode(), "age", table.sweep_values("age", 3))
    assert [float(z[0]) for z in zs] == pytest.approx([0.0, 0.5, 1.0])
    assert table.sweep_values("sex") == ["F", "M"]
    assert table.marker({"lesion_x": 0.5, "lesion_y": -0.5, "lesion_size": 0.2}) == ((0.5, -0.5), 0.2)


def test_card_round_trip(table):
    card = {"condition": "table", "condition_spec": table.spec()}
    again = condition_of(card)
    assert again.cond_dim == table.cond_dim and [c.key for c in again.controls] == [c.key for c in table.controls]
    assert again.spec()["variables"]["sex"]["missing"] == "drop"  # defaults written out


@pytest.mark.parametrize("declaration, phrase", [
    ({"type": "continuous"}, "range"),
    ({"type": "continuous", "range": [5, 1]}, "low < high"),
    ({"type": "categorical", "values": []}, "non-empty"),
    ({"type": "ordinal", "values": ["a", "a"]}, "duplicates"),
    ({"type": "label_size"}, "label"),
    ({"type": "weird"}, "unknown type"),
    ({"type": "continuous", "range": [0, 1], "missing": "fill"}, "fill"),
    ({"type": "categorical", "values": ["a"], "missing": "fill", "fill": "b"}, "fill"),
    ({"type": "continuous", "range": [0, 1], "missing": "sometimes"}, "drop"),
])
def test_bad_declarations(declaration, phrase):
    problems = declaration_problems("v", declaration, ["background", "lesion"])
    assert problems and phrase in problems[0]
    with pytest.raises(ValueError):
        TableCondition({"v": declaration})


def test_unknown_label_named():
    problems = declaration_problems("where", {"type": "label_centroid", "label": "tumour"}, ["background", "lesion"])
    assert "tumour" in problems[0]
