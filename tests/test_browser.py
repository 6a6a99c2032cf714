"""The dashboard in a real browser, used as a person uses it: `streamlit run app/main.py`, Debian's Chromium
driven headless by Playwright, the mouse held on a control and moved (down, moves, up).

While the button is held the picture named "predicted mask" must change several times (Streamlit's own
slider paints nothing until release), and INSIDE's Gaussians drawn over it by the same component move with
it; after release the URL holds the final value and the attention chart has followed. Then the point
dragged on the image moves both location controls, the keyboard still works, and on ACDC the phase x slice
pad streams too. Screenshots are saved and checked to be real pictures. Skipped (with the reason) only
where Chromium is not installed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from benchmarks.bench_live_drag import (
    PAD,
    RANGE_TRACK,
    X,
    find_control,
    measure_drag,
    open_page,
    time_key,
)
from benchmarks.browser import chromium_path, dashboard_in_browser

NO_CHROMIUM = "Chromium is not installed (apt-get install -y chromium)"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(chromium_path() is None, reason=NO_CHROMIUM)]
REPO = Path(__file__).resolve().parents[1]
STEPS = [(0.2 + 0.06 * k, 0.5) for k in range(10)]  # ten steps to the right, across the blend band

# the attention chart is Streamlit's plotly element (st.plotly_chart, key "main_attention"): its means as
# plotly drew them (decoded from the float32 typed arrays), and how many mean markers it drew; null until drawn
ATTENTION_MEANS = """() => {
  const plot = document.querySelector('.st-key-main_attention [data-testid="stPlotlyChart"] .js-plotly-plot');
  const trace = plot && (plot._fullData || []).find(t => t.name === 'μ');
  if (!trace) return null;
  const drawn = plot.querySelectorAll('.scatterlayer .trace')[trace.index].querySelectorAll('path.point').length;
  return JSON.stringify([Array.from(trace.x), Array.from(trace.y), drawn]);
}"""


# the Gaussians' means the streaming controls draw over their picture (app/live_overlay.js), grid pixels
OVERLAY_MEANS = "() => JSON.stringify(window.__liveControls.means())"


def query(page) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(page.url).query).items()}


def settled_url(page, key: str, changed_from: str | None, timeout_ms: float = 15000) -> dict[str, str]:
    """The query string once `key` holds a value other than `changed_from` (the script has run with it)."""
    page.wait_for_function("([key, old]) => { const v = new URL(location.href).searchParams.get(key); "
                           "return v !== null && v !== old; }", arg=[key, changed_from], timeout=timeout_ms)
    page.wait_for_timeout(500)
    return query(page)


def no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()[:2000]


@pytest.fixture(scope="module")
def chromium_and_url():
    # the server's path (pictures made ahead, exact answers while held): decoding in the browser, the default where
    # the page can, is tests/test_browser_decoder.py's
    with dashboard_in_browser("server") as chromium_and_url:
        yield chromium_and_url


def test_dragging_location_x_streams_masks_and_attention(chromium_and_url, tmp_path):
    from benchmarks.bench_dashboard import pick_sample

    chromium, url = chromium_and_url
    index, _ = pick_sample()  # objects in both top quadrants: moving x across changes the target
    page = open_page(chromium, f"{url}/?sample={index}&loc_x=-0.5&loc_y=-0.5", X)
    no_exception(page)
    assert "INSIDE Explorer" in page.locator("h1").first.inner_text()
    page.wait_for_function(f"() => ({ATTENTION_MEANS})() !== null", timeout=30000)
    means_before = page.evaluate(ATTENTION_MEANS)
    xs, ys, drawn = json.loads(means_before)
    assert len(xs) == len(ys) == drawn == 8 and all(math.isfinite(v) for v in xs + ys)  # 8 means, drawn
    frame, _ = find_control(page, X)
    frame.wait_for_function("() => window.__liveControls.means().length > 0", timeout=30000)
    overlay_before = frame.evaluate(OVERLAY_MEANS)

    drag = measure_drag(page, X, steps=STEPS, pause_ms=180, chart="main_attention")
    assert drag["updates_while_held"] >= 3, drag  # the mask followed the pointer, not only the release
    assert drag["chart_redraws_while_held"] == 0, drag  # the attention chart waits for the release...
    assert drag["chart_after_release_ms"] is not None, drag  # ...and is drawn again after it
    assert frame.evaluate(OVERLAY_MEANS) != overlay_before  # the Gaussians over it too
    final = float(drag["final"])
    assert final > 0  # the thumb went right
    state = settled_url(page, "loc_x", "-0.5")
    assert float(state["loc_x"]) == pytest.approx(final, abs=1e-6)  # the exact final value was applied
    page.wait_for_timeout(500)
    means_after = page.evaluate(ATTENTION_MEANS)
    assert means_after != means_before and json.loads(means_after)[2] == 8  # the chart followed, on release
    no_exception(page)
    screenshot = tmp_path / "dashboard-drag.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 20_000
    print(f"drag: {drag['updates_while_held']} masks painted while held, final lag {drag['final_lag_ms']} ms; "
          f"screenshot {screenshot}")

    # the keyboard still works: Home sends the bottom of the range (the top-left quadrant), a new mask follows
    ms = time_key(page, X, "Home")
    assert settled_url(page, "loc_x", state["loc_x"])["loc_x"] == "-1"
    print(f"Home key -> new mask: {ms:.0f} ms")
    page.close()


# every WebSocket message the page receives, counted (installed before Streamlit's own scripts open the socket)
COUNT_MESSAGES = """(() => {
  const Native = window.WebSocket;
  window.__received = 0;
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    socket.addEventListener('message', () => { window.__received += 1; });
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();"""


def test_a_held_value_is_answered_by_the_controls_alone(chromium_and_url):
    """While a control is held, each value reruns the streaming controls' own fragment (app/live_area.py): the
    answer is their element and the run's bookkeeping, not the explorer area's every element again (captions,
    pickers, charts: 18-19 messages an answer, each a React update, before); the release redraws the area."""
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?loc_x=-0.5&loc_y=-0.5", X, init_script=COUNT_MESSAGES)
    frame, element = find_control(page, X)
    frame.wait_for_function("() => window.__liveControls.parts > 0 && "
                            "window.__liveControls.parts === window.__liveControls.partsWanted", timeout=60000)
    page.wait_for_timeout(1000)  # nothing else in flight
    box = element.evaluate(RANGE_TRACK)
    at = lambda f: (box["x"] + box["thumb"] / 2 + f * (box["width"] - box["thumb"]),  # noqa: E731
                    box["y"] + box["height"] / 2)
    counts = "() => [window.__received, window.__liveControls.answered]"
    page.mouse.move(*at(0.25))  # -0.5 on [-1, 1]: the thumb
    page.mouse.down()
    received, answered = frame.evaluate(counts)
    for k in range(6):  # one value at a time: each is answered before the next leaves
        page.mouse.move(*at(0.35 + 0.08 * k))
        page.wait_for_timeout(500)
    held = [now - before for now, before in zip(frame.evaluate(counts), (received, answered), strict=True)]
    page.mouse.up()
    settled_url(page, "loc_x", "-0.5")
    released = page.evaluate("() => window.__received") - received - held[0]
    assert held[1] >= 4, held  # the held values were answered
    assert held[0] <= 8 * held[1], held  # a handful of messages an answer: the controls' element alone
    assert released > 8, released  # the release's run sends the area again (the charts follow)
    no_exception(page)
    page.close()


def test_dragging_the_point_on_the_image_moves_both_controls(chromium_and_url):
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?loc_x=-0.5&loc_y=-0.5", PAD)
    frame, pad = find_control(page, PAD)
    assert pad.get_attribute("aria-label") == PAD
    frame.wait_for_function("() => window.__liveControls.frames !== null", timeout=20000)  # the grid arrived
    steps = [(0.25 + 0.05 * k, 0.25 + 0.05 * k) for k in range(10)]  # down and to the right
    drag = measure_drag(page, PAD, steps=steps, pause_ms=180)
    assert drag["updates_while_held"] >= 3, drag
    assert frame.evaluate("() => window.__liveControls.scrubbed") > 0  # pictures from the grid, not only answers
    # the Gaussians were moved with the pictures made ahead, between the page's answers, by the same component
    assert frame.evaluate("() => window.__liveControls.overlaid") > 0
    assert frame.evaluate("() => window.__liveControls.captions") > 0  # and the Dice line under the picture
    line = frame.locator(".live #caption").text_content()  # in the component's shadow root
    assert line.startswith("Dice against the ground truth: ") and float(line.split(": ")[1][:5]) >= 0
    state = settled_url(page, "loc_y", "-0.5")
    assert float(state["loc_x"]) > -0.5 and float(state["loc_y"]) > -0.5
    said = [float(word) for word in drag["final"].replace(",", " ").split() if word.lstrip("+-")[:1].isdigit()]
    assert said == pytest.approx([float(state["loc_x"]), float(state["loc_y"])], abs=0.01)  # what the pad says
    no_exception(page)
    page.close()


def test_acdc_phase_and_slice_pad_streams(chromium_and_url, tmp_path):
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?dataset=acdc&phase=0", "Phase and slice")
    frame, _ = find_control(page, "Phase and slice")
    frame.wait_for_function("() => window.__liveControls.parts > 0", timeout=30000)  # pictures to scrub came
    steps = [(0.1 + 0.08 * k, 0.5) for k in range(10)]  # along the phase, ED towards ES
    drag = measure_drag(page, "Phase and slice", steps=steps, pause_ms=200)
    assert drag["updates_while_held"] >= 3, drag
    assert frame.evaluate("() => window.__liveControls.scrubbed") > 0  # shown from the pictures made ahead
    # every part comes in the end, also one whose run the drag cut short (asked for again), each kept once
    frame.wait_for_function("() => window.__liveControls.parts === window.__liveControls.partsWanted", timeout=30000)
    state = settled_url(page, "phase", "0")
    assert float(state["phase"]) > 0.5
    # every pad value is a lattice point drawn as the page draws it: with every part in, a drag released on one
    # already shows the final picture, and the page's answer (the same bytes) paints nothing after the release
    back = [(0.9 - 0.08 * k, 0.5) for k in range(6)]
    drag = measure_drag(page, "Phase and slice", steps=back, pause_ms=200)
    assert drag["updates_while_held"] >= 3 and drag["updates_after_release"] == 0, drag
    settled_url(page, "phase", state["phase"])
    assert frame.evaluate("() => window.__liveControls.parts === window.__liveControls.partsWanted")
    no_exception(page)
    screenshot = tmp_path / "dashboard-acdc.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 20_000
    page.close()


# every picture of the Sweep view's strip, joined (null until all are loaded): a change of any one counts
SWEEP_STRIP = """() => { const images = Array.from(document.querySelectorAll('[data-testid="stImage"] img'));
  if (!images.length || images.some(i => !i.complete || i.naturalWidth === 0)) return null;
  return images.map(i => i.src.slice(-40)).join('|'); }"""


def test_a_drag_of_the_swept_control_walks_the_sweep_strip(chromium_and_url):
    """The Sweep view over x: dragging "Location x" painted nothing (the strip spans x's range, issue 21); the
    step nearest the slider is framed, so the drag moves the frame along the strip while held."""
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?view=Sweep&sweep_var=loc_x&loc_x=-0.5&loc_y=-0.5", X, read_image=SWEEP_STRIP)
    drag = measure_drag(page, X, read_image=SWEEP_STRIP, steps=[(0.2 + 0.06 * k, 0.5) for k in range(10)],
                        pause_ms=250)
    assert drag["updates_while_held"] >= 2, drag
    assert "nearest the slider" in page.locator('[data-testid="stImage"]').last.inner_text()
    no_exception(page)
    page.close()
