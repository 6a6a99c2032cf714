"""A small page for app/live_controls.py: the real conditions' controls, a fake ~10 ms "decode", one image.

    streamlit run benchmarks/live_controls_page.py               # point model: x, y, r and the pad
    streamlit run benchmarks/live_controls_page.py -- --mode quadrant
    open  http://localhost:8501/?mode=acdc&mask=page             # or choose by the query string

Modes (`?mode=` or `--mode`): "point" (x, y, radius; the pad on the image), "quadrant" (x, y with the
dead zones and the blend band marked; the pad on the image) and "acdc" (phase x slice of a 10-slice
stack on a plain pad). `?mask=page` draws the picture with st.image under the controls instead of as the
pad (the way the dashboard draws its mask today); the ACDC pad has no image, so there it always is.
The picture is named "predicted mask" (alt text) wherever it is drawn, and every value changes it.
The page state goes through app/page_state.py as on the dashboard (URL keys loc_x, loc_y, radius,
phase, slice). Like the dashboard (app/loading.py), it freezes the garbage collector's view of the
startup objects after its first run (torch's, imported by inside_core).
Used by benchmarks/bench_live_drag.py and tests/test_browser_live_controls.py.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np
import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import page_state  # noqa: E402
from app.live_controls import live_controls, live_values, png_data_uri  # noqa: E402
from inside_core.conditions import get_condition, quadrant_blend  # noqa: E402

MODES = {"point": "point", "quadrant": "quadrant", "acdc": "phase_slice"}
DECODE_MS = 10.0
SIZE = 200
STACK = [(k, k / 9) for k in range(10)]  # ten slices, base to apex


def background() -> np.ndarray:
    rows, columns = np.mgrid[0:SIZE, 0:SIZE]
    return np.stack([rows // 2 + 40, columns // 2 + 40, (rows + columns) // 4 + 60], axis=-1).astype(np.float32)


def fake_decode(mode: str, values: dict) -> np.ndarray:
    """A picture that depends on every value, after about DECODE_MS of work (the model's decode: 6-14 ms)."""
    start = time.perf_counter()
    rows, columns = (np.mgrid[0:SIZE, 0:SIZE] + 0.5) / SIZE * 2 - 1  # normalised coordinates
    if mode == "point":
        mask = np.hypot(columns - values["loc_x"], rows - values["loc_y"]) <= values["radius"]
    elif mode == "quadrant":
        weights = quadrant_blend(values["loc_x"], values["loc_y"])  # top_left, top_right, bottom_right, bottom_left
        right, bottom = columns > 0, rows > 0
        strength = np.choose(right + 2 * bottom, [weights[0], weights[1], weights[3], weights[2]])
        mask = strength > 0.5
        mask |= np.hypot(columns - values["loc_x"], rows - values["loc_y"]) <= 0.06  # the point, so every move shows
    else:  # acdc: a ring whose size follows the phase and the slice
        slice_position = dict(STACK)[int(values["slice"])]
        radius = 0.55 - 0.25 * values["phase"] - 0.25 * slice_position
        distance = np.hypot(columns, rows)
        mask = (distance <= radius) & (distance >= radius - 0.12)
    picture = background()
    picture[mask] = 0.45 * picture[mask] + 0.55 * np.array([255, 200, 0], dtype=np.float32)
    while (time.perf_counter() - start) * 1000 < DECODE_MS:  # the rest of the decode's time, on the CPU
        np.sqrt(np.arange(2000.0))
    return picture.astype(np.uint8)


def choice(name: str, options, default: str) -> str:
    """A page setting from the query string (first run) or the command line, kept for the session."""
    if name not in st.session_state:
        parser = argparse.ArgumentParser()
        parser.add_argument(f"--{name}", default=default)
        value = st.query_params.get(name) or parser.parse_known_args(sys.argv[1:])[0].__dict__[name]
        st.session_state[name] = value if value in options else default
    return st.session_state[name]


@st.fragment
def area(mode: str, mask_on_page: bool) -> None:
    condition = get_condition(MODES[mode])
    stacks = {"slice": STACK} if mode == "acdc" else None
    values = live_values(condition.controls, stacks)
    slot = st.container()  # the controls go here, drawn after the picture they drive
    start = time.perf_counter()
    picture = fake_decode(mode, values)
    decode_ms = (time.perf_counter() - start) * 1000
    on_pad = not mask_on_page and mode != "acdc"
    if not on_pad:
        st.image(picture, alt="predicted mask", width=SIZE * 2)
    with slot:
        if mode == "acdc":
            live_controls(condition.controls, key="conditioning", stacks=stacks, pad=("phase", "slice"),
                          pad_label="Phase and slice", pad_width=320, legend=condition.range_words)
        else:
            x, y, radius = condition.image_point()
            live_controls(condition.controls, key="conditioning", image=png_data_uri(picture) if on_pad else None,
                          image_label="predicted mask", pad=(x, y) if on_pad else None, radius=radius,
                          pad_width=SIZE * 2, legend=condition.range_words)
    shown = ", ".join(f"{key} {value}" for key, value in values.items())
    st.caption(f"{condition.title}: {shown} · decode {decode_ms:.0f} ms")
    page_state.sync_url()


st.set_page_config(page_title="Live controls", layout="wide")
page_state.restore_from_url()
st.subheader("Live controls: drag a slider or the point")
area(choice("mode", MODES, "point"), choice("mask", ("pad", "page"), "pad") == "page")
if not gc.get_freeze_count():  # as the dashboard: Streamlit's gc.collect() after each run skips the imports' objects
    gc.freeze()
