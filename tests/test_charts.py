"""app/charts.py: the page's figures go to st.plotly_chart as validated graph objects with float32 binary
arrays; a kept graph object is sent again as the same bytes (the same element id: not redrawn)."""

from __future__ import annotations

import base64
import json

import numpy as np
import plotly.io
import pytest
from streamlit.testing.v1 import AppTest

from app import charts


def decode(spec: dict) -> np.ndarray:
    values = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]))
    return values.reshape([int(n) for n in str(spec["shape"]).split(",")]) if "shape" in spec else values


def sent(figure) -> dict:
    return json.loads(plotly.io.to_json(charts.graph(figure), validate=False))


def test_float_arrays_travel_as_float32_typed_arrays():
    matrix = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    figure = {"data": [{"type": "heatmap", "z": matrix, "name": "μ"},
                       {"type": "scatter", "x": np.array([1, 2, 3]), "y": np.array([0.5, 1.5, 2.5]),
                        "marker": {"color": ["#fff", "#000", "#f00"]}}], "layout": {"height": 300}}
    heat, points = sent(figure)["data"]
    assert heat["z"]["dtype"] == "f4" and heat["name"] == "μ"
    np.testing.assert_allclose(decode(heat["z"]), matrix, rtol=1e-6)  # float32 on the wire
    assert points["y"]["dtype"] == "f4" and points["marker"]["color"] == ["#fff", "#000", "#f00"]
    np.testing.assert_array_equal(decode(points["x"]), [1, 2, 3])  # integers keep their type


def test_nan_gaps_survive():
    path = np.array([0.0, 1.0, np.nan, 2.0])  # plotly reads NaN as a gap in a line (the ellipses' paths)
    trace = sent({"data": [{"type": "scatter", "x": path, "y": [0.0, float("nan"), 1.0, 2.0]}], "layout": {}})
    trace = trace["data"][0]
    assert np.isnan(decode(trace["x"])[2]) and trace["y"][1] is None  # a bare NaN becomes null, not invalid JSON


def test_an_invalid_figure_fails_on_the_server():
    with pytest.raises(ValueError, match="scatter"):
        charts.graph({"data": [{"type": "scatter", "not_a_property": 1}], "layout": {}})


def test_a_kept_figure_is_sent_as_the_same_element():
    """The same graph object drawn twice: the same spec and element id (Streamlit's frontend then keeps the
    chart and does not redraw it); a new figure of the same values: validated again, same bytes too."""
    def script():
        import numpy as np
        import streamlit as st

        from app import charts
        from app.charts import chart

        figure = {"data": [{"type": "scatter", "x": np.arange(3.0), "y": np.ones(3) * st.session_state.get("y", 1)}],
                  "layout": {"height": 200}}
        if "kept" not in st.session_state:
            st.session_state.kept = charts.graph(figure)
        chart(st.session_state.kept, "kept")
        chart(figure, "fresh")

    at = AppTest.from_function(script).run()
    first = {e.proto.id: e.proto.spec for e in at.get("plotly_chart")}
    assert [i.rsplit("-", 1)[-1] for i in first] == ["kept", "fresh"]
    at.session_state["y"] = 2
    second = {e.proto.id: e.proto.spec for e in at.run().get("plotly_chart")}
    kept = [i for i in first if i.endswith("-kept")][0]
    assert second[kept] == first[kept]  # sent again byte for byte
    assert len(set(first) & set(second)) == 1  # the fresh one changed: a new element
    assert json.loads(first[kept])["layout"]["height"] == 200
