"""app/live_controls.py in a real browser, on benchmarks/live_controls_page.py: a held mouse streams.

Headless Chromium (Playwright, Debian's chromium) holds the mouse on a control and moves it in steps:
the picture named "predicted mask" must change at least 3 times before the button is released, and
after release the page state (the URL, the caption the script writes) holds the final value. Also the
keyboard (arrows follow the picture, Home / End) and the pad's radius ring. Skipped (with the reason)
only where Chromium is not installed.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from benchmarks.bench_live_drag import PAD, PREDICTED_MASK, X, find_control, measure_drag, open_page
from benchmarks.browser import browser, chromium_path, streamlit_server

NO_CHROMIUM = "Chromium is not installed (apt-get install -y chromium)"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(chromium_path() is None, reason=NO_CHROMIUM)]
REPO = Path(__file__).resolve().parents[1]
STEPS = [(0.2 + 0.06 * k, 0.5) for k in range(10)]  # ten steps to the right along a slider


@pytest.fixture(scope="module")
def chromium_and_url():
    with streamlit_server(REPO / "benchmarks" / "live_controls_page.py") as url, browser() as chromium:
        yield chromium, url


def query(page) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(page.url).query).items()}


def settled(page, key: str, value, timeout_ms: float = 10000) -> dict[str, str]:
    """The URL once it holds key=value (the script has run with the value and written the link)."""
    page.wait_for_function("([key, text]) => new URL(location.href).searchParams.get(key) === text",
                           arg=[key, f"{value:.4g}" if isinstance(value, float) else str(value)], timeout=timeout_ms)
    return query(page)


def caption(page) -> str:
    return page.locator('[data-testid="stCaptionContainer"]').last.inner_text()


def component(page):
    return find_control(page, X)[0]


def test_holding_the_mouse_on_x_streams_pictures_and_lands_on_the_final_value(chromium_and_url, tmp_path):
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?mode=point&loc_x=-0.5&loc_y=0&radius=0.35", X)
    result = measure_drag(page, X, steps=STEPS)
    assert result["updates_while_held"] >= 3, result
    final = result["component"]["values"]["loc_x"]
    assert final > 0  # moved right, from -0.5
    assert float(settled(page, "loc_x", final)["loc_x"]) == final
    page.wait_for_function(f"() => document.body.innerText.includes('loc_x {final}')")
    assert f"loc_x {final}," in caption(page)  # what the script computed with: the exact final value
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(tmp_path / "slider.png"))
    page.close()


def test_dragging_the_point_on_the_picture_moves_x_and_y(chromium_and_url):
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?mode=point&loc_x=-0.5&loc_y=-0.5&radius=0.3", PAD)
    frame, pad = find_control(page, PAD)
    assert pad.locator('img[alt="predicted mask"]').count() == 1  # the pad is the picture
    steps = [(0.25 + 0.05 * k, 0.25 + 0.04 * k) for k in range(10)]  # down and to the right
    result = measure_drag(page, PAD, steps=steps)
    assert result["updates_while_held"] >= 3, result
    values = result["component"]["values"]
    assert values["loc_x"] > -0.5 and values["loc_y"] > -0.5 and values["radius"] == 0.3
    link = settled(page, "loc_x", values["loc_x"])
    settled(page, "loc_y", values["loc_y"])
    assert float(link["radius"]) == 0.3
    assert frame.locator('input[aria-label="Location x (left → right)"]').input_value() == str(values["loc_x"])
    page.close()


def test_the_rings_edge_drags_the_radius(chromium_and_url):
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?mode=point&loc_x=0&loc_y=0&radius=0.3", PAD)
    _, pad = find_control(page, PAD)
    box = pad.bounding_box()
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    edge = centre_x + 0.3 * box["width"] / 2  # r is in half-sides
    page.mouse.move(edge, centre_y)
    page.mouse.down()
    for k in range(1, 6):
        page.mouse.move(edge + k * 0.02 * box["width"], centre_y)
        page.wait_for_timeout(60)
    page.mouse.up()
    link = settled(page, "radius", 0.5)
    assert float(link["loc_x"]) == 0 and float(link["loc_y"]) == 0  # the point stayed
    page.close()


def test_keyboard_arrows_follow_the_picture_and_home_end_reach_the_ends(chromium_and_url):
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?mode=point&loc_x=0&loc_y=0&radius=0.35", X)
    frame = component(page)
    y = frame.locator('input[aria-label="Location y (top → bottom)"]')
    y.focus()
    y.press("ArrowDown")  # down the picture: y grows
    assert float(settled(page, "loc_y", 0.05)["loc_y"]) == 0.05
    y.press("ArrowUp")
    y.press("ArrowUp")
    settled(page, "loc_y", -0.05)
    x = frame.locator(f'input[aria-label="{X}"]')
    x.focus()
    x.press("ArrowRight")
    settled(page, "loc_x", 0.05)
    x.press("End")
    settled(page, "loc_x", 1.0)
    assert x.get_attribute("aria-valuetext") == "1.00"
    x.press("Home")
    settled(page, "loc_x", -1.0)
    pad = frame.locator(f'[aria-label="{PAD}"]')
    pad.focus()
    pad.press("ArrowDown")
    pad.press("=")  # + and = both grow the radius
    link = settled(page, "radius", 0.4)
    assert link["loc_y"] == "0"  # -0.05 + 0.05
    assert re.search(r"Radius 0\.40", pad.get_attribute("aria-valuetext"))
    page.close()


def test_holding_the_mouse_on_acdc_phase_streams_and_the_pad_moves_the_slice(chromium_and_url, tmp_path):
    chromium, url = chromium_and_url
    page = open_page(chromium, f"{url}/?mode=acdc&phase=0&slice=5", "Phase (0 = ED → 1 = ES)")
    result = measure_drag(page, "Phase (0 = ED → 1 = ES)", PREDICTED_MASK, steps=STEPS)
    assert result["updates_while_held"] >= 3, result
    phase = result["component"]["values"]["phase"]
    settled(page, "phase", phase)
    result = measure_drag(page, "Phase and slice", steps=[(0.5, 0.6 - 0.06 * k) for k in range(8)])
    assert result["updates_while_held"] >= 3, result
    values = result["component"]["values"]
    assert values["slice"] < 5  # up the pad: towards the base
    assert settled(page, "slice", values["slice"])["slice"] == str(values["slice"])
    page.screenshot(path=str(tmp_path / "acdc.png"))
    page.close()
