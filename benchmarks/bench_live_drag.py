"""Does the picture follow a real mouse drag? Updates painted while the button is held, and the final lag.

    python benchmarks/bench_live_drag.py              # demo page (app/live_controls.py) vs the bare stock-slider page
    python benchmarks/bench_live_drag.py --app        # also the dashboard (app/main.py), by its control names

Headless Chromium (Playwright) presses the mouse on a control, moves it for --seconds (a move every
16 ms, back and forth across the control, or around the pad), and releases it. A recorder in the page
notes every new picture painted (a new `src` of the image named "predicted mask", loaded, at an
animation frame) and every pointer event, on one clock. Reported per drag:

- updates_per_s: distinct pictures painted while the button was held, per second held;
- final_lag_ms: from the last move to the last new picture painted after release (0 if the picture for
  the last move was already there);
- final: the control's value text after release, and the URL.

Pages: benchmarks/live_controls_page.py (a fake 10 ms decode; the picture drawn as the pad, or by
st.image under the sliders) and benchmarks/bare_page.py (Streamlit's own st.slider: expect no update
while held). Targets (issue #11): >= 10 updates/s while dragging (goal >= 30), final lag <= 250 ms.

`measure_drag(page, control, ...)` is the measurement, for any page: `control` is the accessible name
(aria-label) of a slider or pad (searched in the page, its components' shadow roots and iframes); `read_image` is a
JavaScript function returning what identifies the painted picture (default: the src of the loaded
`img[alt="predicted mask"]`, in the page, a component's shadow root or a same-origin iframe).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.browser import browser, chromium_path, streamlit_server  # noqa: E402
from benchmarks.hand import PipelinedMouse, devtools_port  # noqa: E402

MOVE_EVERY_S = 0.016  # a 60 Hz mouse
X = "Location x (left → right)"
PAD = "Point on the image"


def image_reader(selector: str = 'img[alt="predicted mask"]') -> str:
    """JavaScript: the src of the first loaded image matching `selector`, in the page, a component's shadow
    root (Custom Components v2) or a same-origin iframe (v1)."""
    return """() => {
  const docs = [document];
  for (const host of document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')) {
    if (host.shadowRoot) docs.push(host.shadowRoot);
  }
  for (const frame of document.querySelectorAll('iframe')) {
    try { if (frame.contentDocument) docs.push(frame.contentDocument); } catch (error) { /* another origin */ }
  }
  for (const doc of docs) {
    for (const image of doc.querySelectorAll(__SELECTOR__)) {
      if (!image.hidden && image.complete && image.naturalWidth > 0) return image.currentSrc || image.src;
    }
  }
  return null;
}""".replace("__SELECTOR__", json.dumps(selector))


PREDICTED_MASK = image_reader()
STOCK_IMAGE = image_reader('[data-testid="stImage"] img')  # the bare page's picture has no alt text

# In the top page: note each new picture (reader's value) at every animation frame (and every 16 ms where
# frames are throttled), on the epoch clock (performance.timeOrigin + now), which every frame shares.
INSTALL_RECORDER = """(reader) => {
  const read = eval(reader);
  const clock = () => performance.timeOrigin + performance.now();
  if (window.__paints) { window.__paints.stop(); }
  const paints = { log: [], last: read(), running: true };
  paints.stop = () => { paints.running = false; };
  const look = () => {
    const now = read();
    if (now === null || now === paints.last) return;
    paints.last = now;
    paints.log.push([clock(), now.length > 80 ? now.slice(-80) : now]);
  };
  const frame = () => { if (paints.running) { look(); requestAnimationFrame(frame); } };
  requestAnimationFrame(frame);
  const timer = setInterval(() => { if (paints.running) look(); else clearInterval(timer); }, 16);
  window.__paints = paints;
}"""

# In the top page: the times (epoch ms) the chart under `.st-key-<key>` was drawn again, looked at every
# animation frame (and every 16 ms): st.plotly_chart's div gets a new _fullData on every plotly redraw and is
# a new div when mounted again; an old checkout's v1 chart (an iframe) a new window.__liveChart per figure.
INSTALL_CHART_RECORDER = """(key) => {
  if (window.__chartDraws) window.__chartDraws.stop();
  const clock = () => performance.timeOrigin + performance.now();
  const stamp = () => {
    const box = document.querySelector('.st-key-' + key);
    const plot = box && box.querySelector('.js-plotly-plot');
    if (plot) return plot._fullData || null;
    const frame = box && box.querySelector('iframe');
    try { const chart = frame && frame.contentWindow.__liveChart; return chart && chart.count ? chart : null; }
    catch (error) { return null; }
  };
  const log = { times: [], last: stamp(), running: true };
  log.stop = () => { log.running = false; };
  const look = () => {
    const now = stamp();
    if (now !== null && now !== log.last) { log.last = now; log.times.push(clock()); }
  };
  const frame = () => { if (log.running) { look(); requestAnimationFrame(frame); } };
  requestAnimationFrame(frame);
  const timer = setInterval(() => { if (log.running) look(); else clearInterval(timer); }, 16);
  window.__chartDraws = log;
}"""

# Milliseconds since the last new picture or `since` (epoch ms), whichever is later.
QUIET_MS = """(since) => { const logs = [window.__paints.log, ...(window.__lines ? [window.__lines.log] : [])];
  const last = Math.max(since, ...logs.map((log) => log.length ? log[log.length - 1][0] : 0));
  return performance.timeOrigin + performance.now() - last; }"""
# The same recorder for the line under the picture (the Dice line), as window.__lines (measure_drag's `line`)
INSTALL_LINE_RECORDER = INSTALL_RECORDER.replace("window.__paints", "window.__lines")

# In every frame (the page and any component iframe): the pointer's down / last move / up times.
INSTALL_POINTER_CLOCK = """() => {
  const clock = () => performance.timeOrigin + performance.now();
  window.__pointer = { down: null, move: null, up: null, moves: 0 };
  if (window.__pointerInstalled) return;
  window.__pointerInstalled = true;
  window.addEventListener('pointerdown', () => { window.__pointer.down = clock(); }, true);
  window.addEventListener('pointermove', () => { window.__pointer.move = clock(); window.__pointer.moves += 1; }, true);
  window.addEventListener('pointerup', () => { window.__pointer.up = clock(); }, true);
}"""


# The streaming component's counters (app/live_controls.js), or null on a page without it: values answered, round
# trips, and what it painted: a new picture shown (`swaps`), a mask decoded in the browser painted (`painted`), and
# of those the paints whose mask differed from the one before (`changes`; a picture shown counts as one)
COMPONENT_COUNTS = """() => { const s = window.__liveControls; if (!s) return null;
  const d = s.decoder || {};
  return {answered: s.answered, trips: s.trips.slice(), painted: (d.painted || 0) + (s.swaps || 0),
          changes: (d.changes || 0) + (s.swaps || 0), passed: d.passed === undefined ? null : d.passed}; }"""


def find_control(page, name: str):
    """(frame, element) of the control whose aria-label is `name`, in the page or an iframe: a range input
    (also a visually hidden one, as Streamlit's own slider has) before anything else so named."""
    for selector in (f'input[type="range"][aria-label="{name}"]', f'[aria-label="{name}"]'):
        for frame in page.frames:
            locator = frame.locator(selector)
            if locator.count() and (locator.first.is_visible() or selector.startswith("input")):
                return frame, locator.first
    raise LookupError(f"no control named {name!r} on {page.url}")


# The box the pointer drags a range input along: the input itself, or where it is visually hidden (1 px,
# Streamlit's react-aria slider) its track, the nearest positioned ancestor with touch-action: none.
RANGE_TRACK = """(input) => {
  const own = input.getBoundingClientRect();
  if (own.width > 4) return {x: own.left, y: own.top, width: own.width, height: own.height, thumb: 16};
  let node = input.parentElement;
  while (node && !(node.style.position === 'relative' && node.style.touchAction === 'none')) node = node.parentElement;
  const box = (node || input).getBoundingClientRect();
  return {x: box.left, y: box.top, width: box.width, height: box.height, thumb: 0};
}"""


def _frame_offset(frame) -> tuple[float, float]:
    """Where the frame's viewport sits in the page's (0, 0 for the page itself)."""
    if frame.parent_frame is None:
        return 0.0, 0.0
    box = frame.frame_element().bounding_box()
    return box["x"], box["y"]


def _triangle(t: float, period: float, low: float, high: float, start: float) -> float:
    """A back-and-forth sweep between low and high, starting at `start`, one period per round trip."""
    span = high - low
    phase = ((start - low) / span + 2 * t / period) % 2.0
    return low + span * (phase if phase <= 1 else 2 - phase)


def measure_drag(page, control: str, read_image: str = PREDICTED_MASK, seconds: float = 3.0,
                 settle_ms: float = 1000, timeout_ms: float = 8000,
                 steps: Sequence[tuple[float, float]] | None = None, pause_ms: float = 150,
                 chart: str | None = None, line: str | None = None, pipelined: bool = True) -> dict:
    """Press the mouse on `control` (a range input: at its thumb; a pad: at its point), move it back and
    forth for `seconds` (or, with `steps`, to each (x, y) fraction of the control's box in turn, pausing
    `pause_ms` at each), release; return updates painted while held, per second, and the final lag. With
    `chart` (a chart's key): also its redraws while held and the ms from the release to its last redraw. With
    `line` (a reader of the line under the picture, e.g. the Dice line): also the ms from the last move to its last
    change (`final_line_lag_ms`; 0 if it did not change after the button went down) and `final_state_lag_ms`, the
    later of the two: when the picture and its line were both final. `pipelined` (where the browser has a DevTools
    port, benchmarks/browser.py): the moves keep their 16 ms pace whatever the page does (benchmarks/hand.py), as a
    real mouse's; else each waits for the browser (Playwright's `page.mouse`), which a busy machine slows."""
    frame, element = find_control(page, control)
    is_range = element.evaluate("e => e.tagName === 'INPUT' && e.type === 'range'")
    if is_range:  # start at the thumb; the thumb's centre travels between half a thumb from each end
        value, low, high = (float(element.evaluate(f"e => e.{name}")) for name in ("value", "min", "max"))
        fx, fy = (value - low) / ((high - low) or 1.0), 0.5
        box = element.evaluate(RANGE_TRACK)
        offset = _frame_offset(frame)
        box["x"] += offset[0]
        box["y"] += offset[1]
        to_page = lambda f, g: (box["x"] + box["thumb"] / 2 + f * (box["width"] - box["thumb"]),  # noqa: E731
                                box["y"] + g * box["height"])
    else:  # a pad: its data-fx / data-fy say where the point is
        box = element.bounding_box()
        fx = float(element.get_attribute("data-fx") or 0.5)
        fy = float(element.get_attribute("data-fy") or 0.5)
        to_page = lambda f, g: (box["x"] + f * box["width"], box["y"] + g * box["height"])  # noqa: E731
    page.evaluate(INSTALL_RECORDER, read_image)
    if line:
        page.evaluate(INSTALL_LINE_RECORDER, line)
    if chart:
        page.evaluate(INSTALL_CHART_RECORDER, chart)
    for each in {page.main_frame, frame}:
        each.evaluate(INSTALL_POINTER_CLOCK)
    before = frame.evaluate(COMPONENT_COUNTS)
    port = devtools_port(page) if pipelined else None
    mouse = PipelinedMouse(page, port) if port else page.mouse
    mouse.move(*to_page(fx, fy))
    mouse.down()
    start = time.monotonic()
    moves = 0
    for f, g in steps or ():
        mouse.move(*to_page(f, fy if is_range else g))
        moves += 1
        page.wait_for_timeout(pause_ms)
    while not steps and (elapsed := time.monotonic() - start) < seconds:
        f = _triangle(elapsed, 1.2, 0.05, 0.95, fx)
        g = fy if is_range else _triangle(elapsed, 1.9, 0.15, 0.85, fy)
        mouse.move(*to_page(f, g))
        moves += 1
        time.sleep(max(0.0, start + moves * MOVE_EVERY_S - time.monotonic()))
    mouse.up()
    if port:
        mouse.wait()
        mouse.close()
    released = page.evaluate("() => performance.timeOrigin + performance.now()")
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline and page.evaluate(QUIET_MS, released) < settle_ms:
        page.wait_for_timeout(100)  # until the picture has stayed the same for settle_ms after the release
    paints = page.evaluate("() => { window.__paints.stop(); return window.__paints.log; }")
    lines = page.evaluate("() => { window.__lines.stop(); const log = window.__lines.log; delete window.__lines; "
                          "return log; }") if line else []
    pointer = frame.evaluate("() => window.__pointer")
    down, last_move, up = pointer["down"], pointer["move"], pointer["up"]
    held_s = (up - down) / 1000
    during = [t for t, _ in paints if down < t <= up]
    after = [t for t, _ in paints if t > up]
    last = paints[-1][0] if paints else None
    lag = None if last is None or last <= down else max(0.0, last - last_move)
    value_text = element.get_attribute("aria-valuetext")
    stats = frame.evaluate("() => window.__liveControls ? {sent: window.__liveControls.sent, "
                           "answered: window.__liveControls.answered, values: window.__liveControls.values} : null")
    answers = trips = None
    after_counts = frame.evaluate(COMPONENT_COUNTS)
    painted = changes = passed = None
    if before and after_counts:  # values the page answered during this drag (the last one: the release's)
        answers = round(max(after_counts["answered"] - before["answered"] - 1, 0) / held_s, 1)
        painted = round((after_counts["painted"] - before["painted"]) / held_s, 1)
        changes = round((after_counts["changes"] - before["changes"]) / held_s, 1)
        if after_counts.get("passed") is not None and after_counts["passed"] > before["passed"]:
            passed = round((after_counts["passed"] - before["passed"]) / held_s, 1)
        new_trips = after_counts["trips"][len(before["trips"]):] if len(after_counts["trips"]) < 200 else []
        trips = round(statistics.median(new_trips), 0) if new_trips else None
    drawn = page.evaluate("() => { window.__chartDraws.stop(); return window.__chartDraws.times; }") if chart else []
    chart_after = [t - up for t in drawn if t > up]
    charts = {"chart_redraws_while_held": len([t for t in drawn if down < t <= up]) if chart else None,
              "chart_after_release_ms": round(max(chart_after), 0) if chart_after else None}
    if line:  # the line's last change after the button went down (none: it was already right)
        changed = [t for t, _ in lines if t > down]
        line_lag = max(0.0, changed[-1] - last_move) if changed else 0.0
        charts.update(final_line_lag_ms=round(line_lag, 0),
                      final_state_lag_ms=None if lag is None else round(max(lag, line_lag), 0))
    return {**charts, "control": control, "held_s": round(held_s, 2), "moves": moves,
            "pointer_moves_seen": pointer["moves"], "pointer_events_per_s": round(pointer["moves"] / held_s, 1),
            "values_painted_per_s": painted, "mask_changes_painted_per_s": changes, "mask_changes_passed_per_s": passed,
            "updates_while_held": len(during), "updates_per_s": round(len(during) / held_s, 1),
            "updates_after_release": len(after), "final_lag_ms": None if lag is None else round(lag, 0),
            "answers_per_s": answers, "round_trip_ms_median": trips,
            "final": value_text, "url": page.url, "component": stats}


def time_key(page, control: str, key: str, read_image: str = PREDICTED_MASK, timeout_ms: float = 10000) -> float:
    """Milliseconds from pressing `key` on `control` (found as `find_control` does, also inside a
    component's iframe) until a new picture is painted (as `measure_drag` sees it)."""
    frame, element = find_control(page, control)
    page.evaluate(INSTALL_RECORDER, read_image)
    element.focus()
    pressed = page.evaluate("() => performance.timeOrigin + performance.now()")
    element.press(key)
    page.wait_for_function("(since) => window.__paints.log.some(([t]) => t > since)", arg=pressed, polling=5,
                           timeout=timeout_ms)
    painted = page.evaluate("(since) => { window.__paints.stop(); "
                            "return window.__paints.log.find(([t]) => t > since)[0]; }", pressed)
    return painted - pressed


def open_page(chromium, url: str, control: str, read_image: str = PREDICTED_MASK, timeout_s: float = 240,
              settle_ms: float = 700, init_script: str | None = None):
    """A new page at `url`, once `control` and a loaded picture are on it (then `settle_ms` to settle);
    `init_script` runs in it before the page's own scripts."""
    page = chromium.new_page(viewport={"width": 1200, "height": 1000})
    if init_script:
        page.add_init_script(init_script)
    page.goto(url, wait_until="domcontentloaded")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            find_control(page, control)
            if page.evaluate(f"() => ({read_image})() !== null"):
                break
        except LookupError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}: no control {control!r} and picture within {timeout_s:.0f} s")
        page.wait_for_timeout(100)
    if settle_ms:
        page.wait_for_timeout(settle_ms)  # let the first render settle
    return page


def summary(rows: list[dict], keys: list[float]) -> dict:
    rates = [r["updates_per_s"] for r in rows]
    lags = [r["final_lag_ms"] for r in rows if r["final_lag_ms"] is not None]
    answers = [r["answers_per_s"] for r in rows if r.get("answers_per_s") is not None]
    trips = [r["round_trip_ms_median"] for r in rows if r.get("round_trip_ms_median") is not None]
    charts = [r["chart_after_release_ms"] for r in rows if r.get("chart_after_release_ms") is not None]
    states = [r["final_state_lag_ms"] for r in rows if r.get("final_state_lag_ms") is not None]
    def medians(key: str) -> float | None:
        found = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.median(found), 1) if found else None

    return {"updates_per_s_median": round(statistics.median(rates), 1), "updates_per_s": rates,
            **{key + "_median": medians(key) for key in ("pointer_events_per_s", "values_painted_per_s",
                                                         "mask_changes_painted_per_s", "mask_changes_passed_per_s")},
            "chart_after_release_ms_median": round(statistics.median(charts), 0) if charts else None,
            "chart_after_release_ms": charts, "chart_redraws_while_held": [r.get("chart_redraws_while_held")
                                                                          for r in rows],
            "answers_per_s_median": round(statistics.median(answers), 1) if answers else None,
            "round_trip_ms_median": round(statistics.median(trips), 0) if trips else None,
            "final_lag_ms_median": round(statistics.median(lags), 0) if lags else None, "final_lag_ms": lags,
            "final_state_lag_ms_median": round(statistics.median(states), 0) if states else None,
            "final_state_lag_ms": states, "final_line_lag_ms": [r.get("final_line_lag_ms") for r in rows],
            "key_press_ms_median": round(statistics.median(keys), 0) if keys else None, "key_presses": len(keys),
            "final": rows[-1]["final"], "url": rows[-1]["url"], "component": rows[-1]["component"]}


def press_keys(page, control: str, read_image: str, presses: int, times: list[float]) -> None:
    """`presses` timed presses of End / Home (whichever moves) on a slider; lost ones are skipped."""
    _, element = find_control(page, control)
    for _ in range(presses):
        key = "Home" if float(element.input_value()) >= float(element.get_attribute("max")) else "End"
        try:
            times.append(time_key(page, control, key, read_image))
        except Exception:  # a lost press (timed out) is left out, not fatal
            pass
        page.wait_for_timeout(300)


def bench(seconds: float, rounds: int, app: bool = False, app_image: str = 'img[alt="predicted mask"]',
          screenshots: Path | None = None, presses: int = 6) -> dict:
    if chromium_path() is None:
        return {"skipped": "Chromium is not installed (apt-get install -y chromium)"}
    demo, bare_page = REPO / "benchmarks" / "live_controls_page.py", REPO / "benchmarks" / "bare_page.py"
    drags = [  # (name, server, query, control, image reader)
        ("live slider, picture as the pad", "demo", "?mode=point", X, PREDICTED_MASK),
        ("live pad (point on the picture)", "demo", "?mode=point", PAD, PREDICTED_MASK),
        ("live slider, picture by st.image", "demo", "?mode=point&mask=page", X, PREDICTED_MASK),
        ("live ACDC pad (phase x slice)", "demo", "?mode=acdc", "Phase and slice", PREDICTED_MASK),
        ("bare page, stock st.slider", "bare", "", "value", STOCK_IMAGE),
    ]
    if app:
        drags.append(("dashboard app/main.py, Location x", "app", "?loc_y=-0.5", X, image_reader(app_image)))
    results: dict[str, list[dict]] = {name: [] for name, *_ in drags}
    keys: dict[str, list[float]] = {name: [] for name, *_ in drags}
    dashboard = streamlit_server(REPO / "app" / "main.py") if app else contextlib.nullcontext()
    with streamlit_server(demo) as demo_url, streamlit_server(bare_page) as bare_url, dashboard as app_url, \
            browser() as chromium:
        urls = {"demo": demo_url, "bare": bare_url, "app": app_url}
        pages = {name: open_page(chromium, urls[server] + query, control, reader)
                 for name, server, query, control, reader in drags}
        for name, _, _, control, reader in drags:  # warm up
            pages[name].bring_to_front()
            measure_drag(pages[name], control, reader, seconds=0.5, settle_ms=500)
        for _ in range(rounds):  # alternate, so every page sees the same machine load
            for name, _, _, control, reader in drags:
                pages[name].bring_to_front()
                results[name].append(measure_drag(pages[name], control, reader, seconds=seconds))
                if presses and control != PAD and not control.startswith("Phase and"):  # sliders only
                    press_keys(pages[name], control, reader, presses, keys[name])
        if screenshots:
            screenshots.mkdir(parents=True, exist_ok=True)
            for k, (name, *_) in enumerate(drags):
                pages[name].screenshot(path=str(screenshots / f"drag-{k}.png"))
    return {name: summary(rows, keys[name]) for name, rows in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each drag holds the button")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of drags (default 2)")
    parser.add_argument("--app", action="store_true", help="also drag Location x on the dashboard (app/main.py)")
    parser.add_argument("--app-image", default='img[alt="predicted mask"]',
                        help="CSS selector of the dashboard's mask image (default: img[alt=\"predicted mask\"])")
    parser.add_argument("--presses", type=int, default=6, help="timed End / Home presses per slider per round")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--screenshots", type=Path, help="save each page after the run in this folder")
    args = parser.parse_args(argv)
    results = bench(args.seconds, args.rounds, args.app, args.app_image, args.screenshots, args.presses)
    if "skipped" in results:
        print(f"skipped: {results['skipped']}")
        return 0
    for name, row in results.items():
        keys = f"; key press -> picture median {row['key_press_ms_median']} ms" if row["key_presses"] else ""
        print(f"{name}: {row['updates_per_s_median']:.1f} updates/s while held {row['updates_per_s']}, "
              f"final lag median {row['final_lag_ms_median']} ms {row['final_lag_ms']}{keys}; final {row['final']!r}")
    bare = results["bare page, stock st.slider"]
    for name in results:
        if name.startswith("live"):
            row = results[name]
            lag = row["final_lag_ms_median"]
            ok = row["updates_per_s_median"] >= 10 and lag is not None and lag <= 250
            print(f"{name}: {row['updates_per_s_median']:.1f} vs {bare['updates_per_s_median']:.1f} updates/s on the "
                  f"bare page; final lag / bare page's = {lag} / {bare['final_lag_ms_median']} ms "
                  f"({'targets met' if ok else 'BELOW TARGET'}: >= 10 updates/s, lag <= 250 ms)")
            if row["key_press_ms_median"] and bare["key_press_ms_median"]:
                ratio = row["key_press_ms_median"] / bare["key_press_ms_median"]
                print(f"{name}: key press -> picture, ratio to the bare page {ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
