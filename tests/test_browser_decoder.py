"""Held values decoded in the browser, on the dashboard (app/main.py) in headless Chromium (Playwright, Debian's
chromium), with ONNX Runtime Web served from app/static/ by Streamlit's static serving.

A held drag of the point on the image paints at least MIN_MASKS distinct masks decoded in the browser and sends no
value to the page while held; after the release the page's exact frame comes: where its labels are those of the
decoded mask shown (its `labels_hash`), the decoded mask stays (nothing painted again), else the page's picture
replaces it; with the ground truth outlined the page's picture always replaces it. While held, the line under the
decoded mask is its Dice line (written in the browser), the one the page's frame for the same values brings. The
decoded picture of the release's values equals the page's within JPEG's error (the page's picture is a JPEG at
quality 92).
With $INSIDE_DASHBOARD_DECODE=server nothing is decoded in the browser and the line under the picture says so.
Skipped (with the reason) only where Chromium or the exporter's packages are not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_dashboard import decoder_ready
from benchmarks.bench_live_drag import PAD, find_control, open_page
from benchmarks.browser import chromium_path, dashboard_in_browser, streamlit_server

pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install onnxscript==0.7.2)")
NO_CHROMIUM = "Chromium is not installed (apt-get install -y chromium)"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(chromium_path() is None, reason=NO_CHROMIUM)]
REPO = Path(__file__).resolve().parents[1]
MIN_MASKS = 8  # distinct masks painted while held, over 24 moves across the four quadrants' blend
MAX_MEAN_DIFFERENCE = 3.0  # mean |decoded - page's picture| per channel (0-255): JPEG q92 is ~1-2 here

# the component's shadow root (the one with the decoded canvas), and what it shows
ROOT = """() => [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')]
  .map((host) => host.shadowRoot).find((root) => root && root.querySelector('canvas#decoded'))"""
SHOWN = f"""() => {{ const root = ({ROOT})(); const canvas = root.querySelector('canvas#decoded');
  const image = root.querySelector('img[alt="predicted mask"]');
  return {{canvas: !canvas.hidden, src: image.src.slice(0, 23), path: root.querySelector('#path').textContent}}; }}"""
KEEP_CANVAS = f"""() => {{ const canvas = ({ROOT})().querySelector('canvas#decoded');
  window.__held = Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data);
  return [canvas.width, canvas.height]; }}"""
# the page's picture drawn at the canvas's size, against the decoded one kept: mean |difference| per RGB channel
COMPARE = f"""async ([width, height]) => {{ const image = ({ROOT})().querySelector('img[alt="predicted mask"]');
  await image.decode();
  const scratch = new OffscreenCanvas(width, height), context = scratch.getContext('2d');
  context.drawImage(image, 0, 0, width, height);
  const page = context.getImageData(0, 0, width, height).data, held = window.__held;
  let sum = 0, count = 0;
  for (let i = 0; i < page.length; i += 4) {{
    for (let k = 0; k < 3; k += 1) {{ sum += Math.abs(page[i + k] - held[i + k]); count += 1; }}
  }}
  return sum / count; }}"""
STATS = ("() => { const s = window.__liveControls; return {sent: s.sent, painted: s.decoder.painted, "
         "distinct: s.decoder.distinct, hashes: [...s.decoder.hashes], answered: s.answered, kept: s.decoder.kept, "
         "drawn: s.decoder.drawn, page: s.pageLabels}; }")
# the page has answered the release (its Dice line replaced the line shown while decoded)
ANSWERED = f"""(n) => window.__liveControls.answered > n
  && ({ROOT})().querySelector('#caption').textContent.includes('Dice')"""


# the line under the picture, and every text it takes from now on (window.__lines)
CAPTION = f"() => ({ROOT})().querySelector('#caption').textContent"
WATCH_LINE = f"""() => {{ const caption = ({ROOT})().querySelector('#caption'); window.__lines = [];
  if (window.__watching) window.__watching.disconnect();
  window.__watching = new MutationObserver(() => window.__lines.push(caption.textContent));
  window.__watching.observe(caption, {{childList: true, characterData: true, subtree: true}}); }}"""
DICE = "Dice against the ground truth: "
PAINTED_LINE = "() => window.__liveControls.decoder.line.split('**').join('')"  # the text shown (bold: a <strong>)


def page_answer(page, held: dict) -> dict:
    """After the release: the page's frame has come (and its picture swapped in under the canvas, or over it)."""
    page.wait_for_function(ANSWERED, arg=held["answered"], timeout=15000)
    page.wait_for_timeout(400)
    return {**page.evaluate(STATS), **page.evaluate(SHOWN)}


def drag_across(page) -> tuple[dict, dict]:
    """A held drag of the point across the middle (the mask changes with each move); stats before, and held."""
    _, pad = find_control(page, PAD)
    box = pad.bounding_box()
    at = lambda f, g: (box["x"] + f * box["width"], box["y"] + g * box["height"])  # noqa: E731
    before = page.evaluate(STATS)
    page.mouse.move(*at(0.25, 0.25))
    page.mouse.down()
    for k in range(24):  # across the middle, where z blends the quadrants: the mask changes with each move
        page.mouse.move(*at(0.25 + 0.02 * k, 0.25 + 0.018 * k))
        page.wait_for_timeout(50)
    page.wait_for_timeout(300)  # the last move's decode painted
    return before, page.evaluate(STATS)


@pytest.fixture(scope="module")
def chromium_and_url():
    with dashboard_in_browser("browser") as chromium_and_url:
        yield chromium_and_url


def test_a_held_drag_is_decoded_in_the_browser_and_the_release_shows_the_page_s_picture(chromium_and_url, tmp_path):
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?loc_x=-0.5&loc_y=-0.5", PAD)
    assert decoder_ready(page, 90) is not None, page.evaluate(SHOWN)
    assert "decoded in this browser" in page.evaluate(SHOWN)["path"]
    before, held = drag_across(page)
    assert page.evaluate(SHOWN)["canvas"]  # the decoded mask shows over the page's picture
    page.screenshot(path=str(tmp_path / "held.png"))
    size = page.evaluate(KEEP_CANVAS)
    painted = len(set(held["hashes"]) - set(before["hashes"]))
    assert painted >= MIN_MASKS, (before, held)
    assert held["sent"] == before["sent"]  # nothing sent to the page while held
    page.mouse.up()
    shown = page_answer(page, held)
    assert shown["src"].startswith("data:image/jpeg")  # the page's exact frame, made on the server (under the canvas)
    assert shown["sent"] >= held["sent"] + 1  # the release's value went to the page
    assert shown["page"]  # no ground truth outlined: the page's picture is its labels alone, and says which
    if shown["canvas"]:  # kept: only where the decoded labels are the page's (float16 features rarely flip one)
        assert shown["drawn"] == shown["page"] and shown["kept"] > held["kept"], shown
    else:
        assert shown["drawn"] != shown["page"], shown
    difference = page.evaluate(COMPARE, size)
    assert difference <= MAX_MEAN_DIFFERENCE, difference
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_while_held_the_line_under_the_decoded_mask_is_its_dice_line(chromium_and_url):
    """The Dice line follows the drag: each decoded mask is painted with its own line (written in the browser from
    the ground truth the part brought), which changes as the drag crosses the quadrants; the release's frame from the
    page brings the same line (it does not change), and a page opened afresh at those values writes it too."""
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?sample=4&loc_x=-0.5&loc_y=-0.5", PAD)
    assert decoder_ready(page, 90) is not None
    page.evaluate(WATCH_LINE)
    _, held = drag_across(page)
    line, lines = page.evaluate(CAPTION), page.evaluate("() => window.__lines")
    values = page.evaluate("() => Object.assign({}, window.__liveControls.values)")
    assert held["sent"] == page.evaluate(STATS)["sent"]  # held: nothing went to the page
    assert line.startswith(DICE) and line == page.evaluate(PAINTED_LINE), line
    assert len({text for text in lines if text.startswith(DICE)}) >= 2, lines  # it followed the masks
    page.evaluate(WATCH_LINE)
    page.mouse.up()
    page_answer(page, held)
    page.wait_for_function("(n) => window.__liveControls.answered >= n + 2", arg=held["answered"], timeout=15000)
    page.wait_for_timeout(300)  # the area's run too (its frame: the same line)
    assert page.evaluate(CAPTION) == line and page.evaluate("() => window.__lines") == []
    page.close()
    fresh = open_page(chromium, f"{url}/?sample=4&loc_x={values['loc_x']}&loc_y={values['loc_y']}", PAD)
    assert fresh.evaluate(CAPTION) == line, values
    fresh.close()


def test_with_the_ground_truth_outlined_the_page_s_picture_replaces_the_decoded_one(chromium_and_url):
    """The decoded mask has no ground truth outline: the page's frame (which has it) carries no labels hash, so its
    picture is painted over the decoded one after the release."""
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?sample=1&loc_x=-0.5&loc_y=-0.5&show_gt=true", PAD)
    assert decoder_ready(page, 90) is not None
    _, held = drag_across(page)
    assert page.evaluate(SHOWN)["canvas"]
    page.mouse.up()
    page.wait_for_function(f"() => !({SHOWN})().canvas", timeout=15000)
    shown = page_answer(page, held)
    assert shown["page"] is None and not shown["canvas"] and shown["kept"] == held["kept"], shown
    page.close()


def test_decoding_on_the_server_keeps_the_pictures_made_ahead(chromium_and_url):
    chromium, _ = chromium_and_url
    with streamlit_server(REPO / "app" / "main.py", env={"INSIDE_DASHBOARD_DECODE": "server"}) as url:
        page = open_page(chromium, f"{url}/?loc_x=-0.5&loc_y=-0.5", PAD)
        page.wait_for_function(f"() => ({SHOWN})().path.includes('made ahead')", timeout=30000)
        assert page.evaluate("() => window.__liveControls.decoder.state()") == "none"
        page.close()


def test_a_browser_whose_worker_does_not_start_keeps_the_pictures_made_ahead(chromium_and_url):
    """The worker's script cannot be fetched (as where static serving is off): the component tells the page once
    ("off"), the line says so, and the page offers its pictures made ahead to this session instead."""
    chromium, url = chromium_and_url
    context = chromium.new_context(viewport={"width": 1200, "height": 1000})
    context.route("**/app/static/decoder_worker.js", lambda route: route.abort())
    page = context.new_page()
    page.goto(f"{url}/?sample=2&loc_x=-0.5&loc_y=-0.5")
    page.wait_for_function("() => window.__liveControls && window.__liveControls.decoder.state() === 'failed'",
                           timeout=60000)
    page.wait_for_function(f"() => ({SHOWN})().path.includes('failed to start')", timeout=30000)
    page.wait_for_function("() => window.__liveControls.parts > 0", timeout=60000)  # pictures made ahead came
    assert page.evaluate("() => window.__liveControls.decoder.painted") == 0
    context.close()


def test_a_key_press_paints_the_decoded_mask_then_the_page_s(chromium_and_url):
    """End on "Location x": the browser paints the new value's mask at once (decoded), and the page's exact
    picture for it replaces it when it comes, unless it is the same mask (then the decoded one stays)."""
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?sample=3&loc_x=-0.5&loc_y=0.1", PAD)
    assert decoder_ready(page, 90) is not None
    _, slider = find_control(page, "Location x (left → right)")
    before = page.evaluate(STATS)
    slider.focus()
    slider.press("End")
    page.wait_for_function("(n) => window.__liveControls.decoder.painted > n", arg=before["painted"], timeout=10000)
    line = page.evaluate(PAINTED_LINE)  # painted with the decoded mask
    shown = page_answer(page, before)  # the page's frame for it: kept where its labels are the decoded ones
    assert line.startswith(DICE) and page.evaluate(CAPTION) == line  # the page's frame: the same line
    # the final value went to the page (answered by the controls alone), then the request for the rest of the area
    assert shown["sent"] == before["sent"] + 2
    assert shown["src"].startswith("data:image/jpeg")
    assert shown["canvas"] == (shown["drawn"] == shown["page"]), shown
    page.close()


def test_the_grid_is_decoded_ahead_and_a_drag_over_it_paints_from_memory(chromium_and_url):
    """Idle, the browser decodes the pad's grid ahead (app/live_decoder.js): every distinct z of the grid (the
    quadrant model's dead zones share one) ends up in its cache; a drag over it then paints without the worker, and
    the mask it shows at the release is the page's own (the page's frame finds the same labels and keeps it)."""
    import numpy as np

    from inside_core.conditions import quadrant_blend

    steps = np.round(np.linspace(-1, 1, 41), 2)  # the location pad's grid (app/scrub.z_grid: every 0.05)
    distinct = len({tuple(quadrant_blend(x, y)) for x in steps for y in steps})
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?sample=5&loc_x=-0.5&loc_y=-0.5", PAD)
    assert decoder_ready(page, 90) is not None
    page.wait_for_function("(n) => window.__liveControls.decoder.cached() >= n", arg=distinct, timeout=60000)
    assert page.evaluate("() => window.__liveControls.decoder.cached()") == distinct
    decoded = page.evaluate("() => window.__liveControls.decoder.decoded")
    before, held = drag_across(page)
    assert page.evaluate("() => window.__liveControls.decoder.decoded") == decoded  # no decode: all from memory
    assert len(set(held["hashes"]) - set(before["hashes"])) >= MIN_MASKS and held["sent"] == before["sent"]
    page.mouse.up()
    shown = page_answer(page, held)
    assert shown["canvas"] and shown["drawn"] == shown["page"], shown  # the page's labels: the mask shown stays
    page.close()
