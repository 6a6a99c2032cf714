"""A plotly figure that updates in place: `live_chart(figure, key="...")`, for figures that follow a slider.

Why not `st.plotly_chart`: its element id depends on the figure, so every new figure unmounts the chart and
plotly draws it again from scratch (Plotly.newPlot), after the server has validated the figure through
plotly's graph objects. On a slider move that was most of the page's redraw time. Here one plotly div
lives per key, and each new figure goes to Plotly.react, which redraws only what changed.

It is a Streamlit custom component (v1: an HTML page in an iframe, app/live_chart.html, speaking the
library's protocol through app/streamlit_v1.js) served from a folder in the cache that holds that page and
a copy of the plotly.js bundle shipped inside the plotly Python package: nothing is fetched from the
network. Why v1 (the streaming controls are v2): a v2 component takes no files, only inline text that
travels in every run's element, and the plotly bundle is 4.8 MB (docs/dashboard.md). Figures are plain
plotly dicts; numeric numpy arrays travel as plotly's base64 typed arrays (float32).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import plotly
import streamlit.components.v1 as components

PAGE = Path(__file__).with_suffix(".html")
PROTOCOL = Path(__file__).with_name("streamlit_v1.js")  # Streamlit's v1 messages, the one place they are spelled
PLOTLY_BUNDLE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def asset_folder() -> Path:
    """The component's folder (page + plotly.js) in the cache, once per page version and plotly version;
    in the system's temporary folder if the cache cannot be written.

    Written to a temporary folder and renamed, so a half-copied folder never serves the page. (The cache
    is inside_core.data.cache.cache_root(), spelled out here: importing inside_core imports torch, and the
    benchmark's floor page uses this module without it.)"""
    page = PAGE.read_bytes()
    name = "live-chart-" + hashlib.sha256(page + PROTOCOL.read_bytes() + plotly.__version__.encode()).hexdigest()[:12]
    cache = Path(os.environ.get("INSIDE_CACHE_DIR") or Path.home() / ".cache" / "inside-explorer")
    try:
        return _write_folder(cache / "components" / name, page)
    except PermissionError:
        return _write_folder(Path(tempfile.gettempdir()) / "inside-explorer-components" / name, page)


def _write_folder(folder: Path, page: bytes) -> Path:
    if (folder / "index.html").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        shutil.copyfile(PLOTLY_BUNDLE, temp / "plotly.min.js")
        shutil.copyfile(PROTOCOL, temp / PROTOCOL.name)
        (temp / "index.html").write_bytes(page)
        os.replace(temp, folder)
    except OSError:
        shutil.rmtree(temp, ignore_errors=True)
        if not (folder / "index.html").exists():  # not a lost race with another process: a real error
            raise
    return folder


_component = components.declare_component("live_chart", path=str(asset_folder()))


def typed_arrays(value: Any) -> Any:
    """The figure with numeric numpy arrays as plotly typed arrays {"dtype", "bdata", "shape"}
    (float32, little-endian), other arrays as lists; everything else unchanged."""
    if isinstance(value, dict):
        return {key: typed_arrays(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [typed_arrays(item) for item in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiub":
            return value.tolist()
        array = np.ascontiguousarray(value, dtype="<f4")
        spec = {"dtype": "f4", "bdata": base64.b64encode(array.tobytes()).decode("ascii")}
        if array.ndim > 1:
            spec["shape"] = ", ".join(str(n) for n in array.shape)
        return spec
    if isinstance(value, np.generic):
        return value.item()
    return value


def figure_json(figure: dict) -> str:
    """A plotly figure dict as the JSON text the component draws."""
    return json.dumps(typed_arrays(figure), separators=(",", ":"), allow_nan=False)


def live_chart(figure: dict, key: str, config: dict | None = None, defer: bool = False,
               channel: str | None = None) -> None:
    """Draw `figure` (a plotly dict with a layout height) and keep the chart: a new figure for the
    same `key` is drawn into it with Plotly.react (one sent again unchanged is not redrawn). `defer`: draw
    after the page's next paint and after the other charts on `channel` (the session's BroadcastChannel
    name, shared by this session's charts only) have drawn, for secondary figures that should not hold up
    the ones above them. While a control is dragged the Gaussians move over the streaming controls'
    picture (app/live_overlay.js); the page sends the attention chart its figure again on release."""
    _component(spec=figure_json(figure), config=config or {}, defer=defer, channel=channel, key=key, default=None)
