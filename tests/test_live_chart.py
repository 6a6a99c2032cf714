"""app/live_chart.py: figures travel as plotly JSON with binary arrays; the page and plotly.js are
served from a folder in the cache, written whole or not at all."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from app import live_chart


def decode(spec: dict) -> np.ndarray:
    values = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]))
    return values.reshape([int(n) for n in spec["shape"].split(",")]) if "shape" in spec else values


def test_numeric_arrays_become_plotly_typed_arrays():
    matrix = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    figure = {"data": [{"x": np.array([1, 2, 3]), "z": matrix, "marker": {"color": np.array(["#fff", "#000"])},
                        "name": "μ", "size": np.float64(2.5)}], "layout": {"height": 300}}
    trace = json.loads(live_chart.figure_json(figure))["data"][0]
    np.testing.assert_array_equal(decode(trace["x"]), [1, 2, 3])
    assert trace["z"]["shape"] == "3, 4"
    np.testing.assert_allclose(decode(trace["z"]), matrix, rtol=1e-6)  # float32 on the wire
    assert trace["marker"]["color"] == ["#fff", "#000"]  # strings stay a list
    assert trace["name"] == "μ" and trace["size"] == 2.5


def test_nan_gaps_survive_in_arrays_but_a_bare_nan_is_refused():
    path = np.array([0.0, 1.0, np.nan, 2.0])
    trace = json.loads(live_chart.figure_json({"data": [{"x": path}], "layout": {}}))["data"][0]
    assert np.isnan(decode(trace["x"])[2])  # plotly reads NaN as a gap in a line
    with pytest.raises(ValueError):  # JSON.parse in the browser would fail on it: fail here instead
        live_chart.figure_json({"data": [{"x": [float("nan")]}], "layout": {}})


def test_asset_folder_holds_the_page_and_plotly(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path))
    folder = live_chart.asset_folder()
    assert folder.parent == tmp_path / "components"
    assert (folder / "index.html").read_bytes() == live_chart.PAGE.read_bytes()
    assert (folder / "plotly.min.js").stat().st_size == live_chart.PLOTLY_BUNDLE.stat().st_size
    assert (folder / live_chart.PROTOCOL.name).read_bytes() == live_chart.PROTOCOL.read_bytes()  # v1's messages
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "plotly.min.js", "streamlit_v1.js"]
    assert live_chart.asset_folder() == folder  # reused, not rewritten
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left behind


def test_a_failed_copy_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(live_chart, "PLOTLY_BUNDLE", tmp_path / "missing.js")
    with pytest.raises(OSError):
        live_chart.asset_folder()
    assert not any((tmp_path / "components").iterdir())


def test_an_unwritable_cache_falls_back_to_the_temporary_folder(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(cache))
    monkeypatch.setattr(live_chart.tempfile, "tempdir", str(tmp_path / "tmp"))
    write = live_chart._write_folder

    def read_only_cache(folder, page):  # what mkdir raises in a read-only home (tests run as root here)
        if cache in folder.parents:
            raise PermissionError(f"{folder}: read-only")
        return write(folder, page)

    monkeypatch.setattr(live_chart, "_write_folder", read_only_cache)
    folder = live_chart.asset_folder()
    assert folder.parent == tmp_path / "tmp" / "inside-explorer-components"
    assert (folder / "plotly.min.js").exists() and not cache.exists()
