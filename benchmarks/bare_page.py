"""The floor of Streamlit's round trip: one slider, one image, nothing else.

    streamlit run benchmarks/bare_page.py

The image is the same kind and size as the dashboard's mask overlay (a 200 x 200 picture enlarged to
400 x 400 PNG) with a band whose position follows the slider, so every move sends a new image.
Set BARE_PAGE_IMAGE to a PNG to use a real picture (the benchmark passes the same CLEVR-Seg sample).
With BARE_PAGE_PLOT=1 the page also holds one small plotly scatter (64 points) that moves with the
slider, drawn by st.plotly_chart: the floor of a Streamlit round trip that redraws a plotly figure.
Plot pages call gc.freeze() after their first run, as the dashboard does (app/loading.py): otherwise
Streamlit's gc.collect() after every run scans everything `import plotly` created (~100 ms here).
"""

import gc
import os

import numpy as np
import streamlit as st
from PIL import Image

value = st.slider("value", -1.0, 1.0, -0.5, step=0.05, key="value")
if os.environ.get("BARE_PAGE_IMAGE"):
    picture = np.asarray(Image.open(os.environ["BARE_PAGE_IMAGE"]).convert("RGB").resize((200, 200)))
else:
    rows, columns = np.mgrid[0:200, 0:200]
    picture = np.stack([rows, columns, (rows + columns) // 2], axis=-1).astype(np.uint8)
picture = picture.copy()
column = int(round((value + 1) / 2 * 199))
picture[:, max(column - 12, 0) : column + 12] = (0.55 * picture[:, max(column - 12, 0) : column + 12] + 115).astype(
    np.uint8
)
st.image(np.repeat(np.repeat(picture, 2, axis=0), 2, axis=1), output_format="PNG")
if os.environ.get("BARE_PAGE_PLOT"):
    points = np.random.default_rng(int(round((value + 1) * 20))).random((2, 64))
    figure = {"data": [{"type": "scatter", "x": points[0], "y": points[1], "mode": "markers", "name": "μ"}],
              "layout": {"template": "none", "height": 420}}
    st.plotly_chart(figure, key="plot", theme=None)
    if not gc.get_freeze_count():
        gc.freeze()
