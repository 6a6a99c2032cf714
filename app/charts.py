"""The page's plotly charts: Streamlit's own `st.plotly_chart`, one config, arrays sent as float32.

A figure (a plain plotly dict from app/plots.py) becomes a plotly graph object once (`graph`): that is
where plotly validates it, ~3-9 ms for the attention and details figures. A figure kept while a control is
held (`app/views.secondary_figure`) is kept as the graph object, so sending it again costs only its JSON
(~1-3 ms), and the same JSON gives the same element id: Streamlit's frontend keeps the chart mounted and
hands react-plotly the same data, so nothing is redrawn until the figure changes (on release).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import plots


def _float32(value: Any) -> Any:
    """Float arrays as float32 (half the bytes of plotly's float64 base64); everything else unchanged."""
    if isinstance(value, dict):
        return {key: _float32(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float32(item) for item in value]
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float32)
    return value


def graph(figure: dict | go.Figure) -> go.Figure:
    """The figure as a validated plotly graph object (a graph object is returned as it is)."""
    return figure if isinstance(figure, go.Figure) else go.Figure(_float32(figure))


def chart(figure: dict | go.Figure, key: str) -> None:
    """Draw `figure` (a plotly dict with a layout height, or a `graph`) under `key` (the element's CSS
    class `st-key-<key>`, and the end of its element id)."""
    st.plotly_chart(graph(figure), key=key, config=plots.PLOTLY_CONFIG, width="stretch")
