"""The dashboard in a real browser: `streamlit run app/main.py`, Debian's Chromium driven headless by
Playwright, load the page, move a slider with the keyboard, see the mask and the attention change,
save a screenshot. Skipped (with the reason) only where Chromium is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.browser import browser, chromium_path, streamlit_server, time_key_press, wait_for_page

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[1]
TRAINED = REPO / "checkpoints" / "clevr-seg-quadrant-inside.safetensors"
SLIDER = "Location x (left → right)"

MASK_SRC = "() => document.querySelector('[data-testid=\"stImage\"] img').src"
# the attention chart is an app/live_chart.py iframe holding one plotly div
ATTENTION_MEANS = """() => {
  const plots = Array.from(document.querySelectorAll('iframe'))
      .map(f => f.contentWindow.document.querySelector('.js-plotly-plot')).filter(Boolean);
  const plot = plots.find(p => (p.data || []).some(t => t.name === 'μ'));
  const trace = plot.data.find(t => t.name === 'μ');
  return JSON.stringify([trace.x, trace.y]);  // plotly's {dtype, bdata} binary form
}"""


@pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed (apt-get install -y chromium)")
def test_page_in_chromium_follows_a_slider(tmp_path):
    from benchmarks.bench_dashboard import pick_sample

    index, _ = pick_sample()  # objects in both top quadrants: moving x across changes the target
    with streamlit_server(REPO / "app" / "main.py") as url, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1400, "height": 1300})
        wait_for_page(page, f"{url}/?sample={index}&loc_x=-0.5&loc_y=-0.5", plots=1)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert "INSIDE Explorer" in page.locator("h1").first.inner_text()
        mask_before, means_before = page.evaluate(MASK_SRC), page.evaluate(ATTENTION_MEANS)

        elapsed_ms = time_key_press(page, SLIDER, "End", "attention")  # loc_x -> +1: the top-right quadrant
        slider = page.locator(f'input[type="range"][aria-label="{SLIDER}"]').first
        assert slider.get_attribute("aria-valuetext") == "1.00"
        assert page.evaluate(ATTENTION_MEANS) != means_before
        if TRAINED.exists():  # a trained INSIDE model segments the other quadrant's objects
            assert page.evaluate(MASK_SRC) != mask_before
        assert page.locator('[data-testid="stException"]').count() == 0
        assert "loc_x=1" in page.url  # the state went into the query string

        screenshot = tmp_path / "dashboard.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
        print(f"key press -> new mask and attention: {elapsed_ms:.0f} ms; screenshot {screenshot}")
