"""The server's time for one `live_controls()` call (a point pad on a 400 px JPEG), for the checkout on
PYTHONPATH: Streamlit's AppTest, 40 runs, the first 5 left out.

    PYTHONPATH=$PWD python benchmarks/component_server_cost.py this
    PYTHONPATH=/tmp/old python benchmarks/component_server_cost.py other   # another checkout (compare_checkouts.py)
"""

import statistics
import sys

from streamlit.testing.v1 import AppTest


def script() -> None:
    import base64
    import io
    import time

    import numpy as np
    import streamlit as st
    from PIL import Image

    from app.live_controls import live_controls
    from inside_core.conditions import get_condition
    if "uri" not in st.session_state:
        rng = np.random.default_rng(0)
        picture = Image.fromarray(rng.integers(0, 255, (400, 400, 3), dtype=np.uint8)).resize((400, 400))
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=85)
        st.session_state["uri"] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
        st.session_state["times"] = []
    condition = get_condition("point")
    x, y, r = condition.image_point()
    start = time.perf_counter()
    live_controls(condition.controls, key="c", image=st.session_state["uri"], pad=(x, y), radius=r,
                  image_caption="Dice against the ground truth: **0.9**", image_title="prediction")
    st.session_state["times"].append(time.perf_counter() - start)

if __name__ == "__main__":
    at = AppTest.from_function(script, default_timeout=60)
    for k in range(40):
        at.session_state["loc_x"] = round(-1 + 0.05 * k, 2)  # each run a new value, as a drag sends
        at.run()
    times = at.session_state["times"][5:]
    print(sys.argv[1] if len(sys.argv) > 1 else "", "picture", len(at.session_state["uri"]) // 1000,
          "kB; live_controls() median", round(statistics.median(times) * 1000, 2), "ms, p90",
          round(sorted(times)[int(0.9 * len(times))] * 1000, 2))
