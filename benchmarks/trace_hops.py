"""Where one control value's round trip goes, hop by hop, on the dashboard (app/main.py), with numbers.

    python benchmarks/trace_hops.py                   # this checkout, 12 key presses and 12 held steps
    python benchmarks/trace_hops.py --checkout /tmp/old --presses 8

The server runs with benchmarks/hop_probe/ on PYTHONPATH (its sitecustomize.py logs Streamlit's hops and the
page's decode and frame, epoch ms); the browser wraps its WebSocket (every frame sent and received, bytes
and time) and notes the pointer / key event, the component's answer (its `trips`) and the painted mask
(benchmarks/bench_live_drag.py's recorder), all on the epoch clock of this one machine. Each value is sent
alone (a key press, or a held step then a pause), so no hop waits for another value. Printed per hop: the
median ms from the previous hop, and the bytes the browser received per answer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_live_drag import (  # noqa: E402
    INSTALL_RECORDER,
    PREDICTED_MASK,
    RANGE_TRACK,
    X,
    _frame_offset,
    find_control,
)
from benchmarks.browser import browser, streamlit_server  # noqa: E402

# Every WebSocket frame, sent and received, with its size, on the epoch clock; and the input events.
WS_PROBE = """(() => {
  const clock = () => performance.timeOrigin + performance.now();
  window.__ws = { sent: [], received: [], input: [] };
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    socket.addEventListener('message', (event) => {
      const size = event.data.byteLength ?? event.data.size ?? event.data.length;
      window.__ws.received.push([clock(), size]);
    });
    const send = socket.send.bind(socket);
    socket.send = (data) => { window.__ws.sent.push([clock(), data.byteLength ?? data.length]); send(data); };
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.__ws.frames = [];  // long animation frames (> 50 ms) and the scripts in them, for the breakdown
  try {
    new PerformanceObserver((list) => {
      for (const f of list.getEntries()) {
        const layout = f.styleAndLayoutStart ? f.duration - (f.styleAndLayoutStart - f.startTime) : null;
        const scripts = f.scripts.map((s) => [s.invoker, Math.round(s.duration),
                                              (s.sourceURL || '').split('/').pop().slice(0, 30)]);
        window.__ws.frames.push({ start: performance.timeOrigin + f.startTime, duration: f.duration,
                                  style: layout, scripts: scripts });
      }
    }).observe({ type: 'long-animation-frame', buffered: true });
  } catch (error) { /* no LoAF in this browser */ }
  for (const type of ['keydown', 'pointermove']) {
    window.addEventListener(type, () => window.__ws.input.push([clock(), type]), true);
  }
})();"""


def drive(page, presses: int, steps: int) -> None:
    """`presses` End / Home key presses, then `steps` held moves of "Location x", one value at a time."""
    frame, element = find_control(page, X)
    for _ in range(presses):
        key = "Home" if float(element.input_value()) >= float(element.get_attribute("max")) else "End"
        element.focus()
        element.press(key)
        page.wait_for_timeout(900)
    box = element.evaluate(RANGE_TRACK)
    box["x"], box["y"] = box["x"] + _frame_offset(frame)[0], box["y"] + _frame_offset(frame)[1]  # a v1 iframe's
    at = lambda f: (box["x"] + box["thumb"] / 2 + f * (box["width"] - box["thumb"]), box["y"] + box["height"] / 2)  # noqa: E731
    value, low, high = (float(element.evaluate(f"e => e.{name}")) for name in ("value", "min", "max"))
    f = (value - low) / (high - low)
    page.mouse.move(*at(f))
    page.mouse.down()
    for k in range(steps):
        f = 0.2 + 0.6 * ((k * 0.37) % 1.0)
        page.mouse.move(*at(f))
        page.wait_for_timeout(700)
    page.mouse.up()
    page.wait_for_timeout(1200)


def hops(server: list[dict], browser_log: dict, trips: list[float], paints: list) -> list[dict]:
    """One row per value the browser sent: each hop's epoch ms."""
    sends = [t for t, size in browser_log["sent"] if size > 0]
    backs = [e for e in server if e["ev"] == "backmsg" and e["type"] == "rerun_script"]
    rows = []
    for k, sent in enumerate(sends):
        nxt = sends[k + 1] if k + 1 < len(sends) else float("inf")
        inputs = [t for t, _ in browser_log["input"] if t <= sent]
        back = next((e for e in backs if sent - 5 <= e["t"] < nxt), None)
        if back is None:
            continue
        window = [e for e in server if back["t"] <= e["t"] < nxt]

        def first(ev: str, window: list = window) -> float | None:
            return next((e["t"] for e in window if e["ev"] == ev), None)

        enq = [e for e in window if e["ev"] == "enqueue"]
        writes = [e["t"] for e in window if e["ev"] == "ws_write"]
        received = [(t, size) for t, size in browser_log["received"] if sent < t < nxt]
        painted = next((t for t, _ in paints if sent < t < nxt), None)
        bidi = next((e for e in enq if e["element"] in ("bidi_component", "component_instance")
                     and e["bytes"] > 2000), None)
        produced = [e["t"] for e in window if e["ev"] == "produce"]
        rows.append({"input": inputs[-1] if inputs else None, "sent": sent, "server": back["t"],
                     "run_start": first("run_start"), "decode_start": first("decode_start"),
                     "decode_end": first("decode_end"), "frame_start": first("frame_start"),
                     "frame_end": first("frame_end"), "bidi_enqueued": bidi["t"] if bidi else None,
                     "run_end": first("run_end"), "last_produced": produced[-1] if produced else None,
                     "last_write": writes[-1] if writes else None,
                     "first_received": received[0][0] if received else None,
                     "last_received": received[-1][0] if received else None, "painted": painted,
                     "bytes_received": sum(size for _, size in received), "messages": len(received),
                     "bidi_bytes": bidi["bytes"] if bidi else None,
                     "elements": [f"{e['element'] or e['type']}:{e['bytes']}" for e in enq]})
    for row, trip in zip(rows, trips[-len(rows):] if trips else [], strict=False):
        row["answered"] = row["sent"] + trip
        row["blocking"] = [script for f in browser_log.get("frames", [])
                           if row["sent"] <= f["start"] < row["answered"] for script in f["scripts"]]
    return rows


HOPS = [("input", "sent", "input event -> WebSocket send (browser)"),
        ("sent", "server", "WebSocket send -> server handles the BackMsg"),
        ("server", "run_start", "BackMsg -> fragment run starts (callbacks, queue)"),
        ("run_start", "decode_start", "run start -> decode starts (page state, controls, view)"),
        ("decode_start", "decode_end", "decode (Explorer.update)"),
        ("decode_end", "frame_start", "decode end -> frame starts (conditioning panel, figures)"),
        ("frame_start", "frame_end", "frame made (app/frame.make_frame)"),
        ("frame_end", "bidi_enqueued", "frame -> component element enqueued"),
        ("bidi_enqueued", "run_end", "component enqueued -> run ends (charts, URL, cleanup)"),
        ("run_start", "run_end", "whole fragment run"),
        ("run_end", "last_received", "run end -> last message received (browser)"),
        ("last_produced", "last_write", "last message made (script thread) -> written (event loop)"),
        ("last_write", "last_received", "last message written -> received (browser)"),
        ("bidi_enqueued", "answered", "component enqueued -> component rendered with the ack (browser)"),
        ("sent", "answered", "round trip: send -> component has the answer"),
        ("answered", "painted", "answer -> new mask painted"),
        ("input", "painted", "input event -> mask painted")]


def summarise(rows: list[dict]) -> list[str]:
    lines = []
    for a, b, words in HOPS:
        d = [r[b] - r[a] for r in rows if r.get(a) is not None and r.get(b) is not None]
        if d:
            lines.append(f"{words:62} median {statistics.median(d):7.1f} ms  (n={len(d)}, "
                         f"{min(d):.1f}-{max(d):.1f})")
    blocking: dict = {}  # scripts of long frames (> 50 ms) between a value's send and its answer, in total
    for r in rows:
        for script in r.get("blocking", []):
            name = f"{script[0]} {script[2]}".strip()
            blocking[name] = blocking.get(name, 0) + script[1]
    if blocking:
        top = sorted(blocking.items(), key=lambda item: -item[1])[:5]
        lines.append("long frames' scripts before the answer, ms per value: " +
                     "; ".join(f"{name} {ms / len(rows):.0f}" for name, ms in top))
    sizes = [r["bytes_received"] for r in rows]
    bidi = [r["bidi_bytes"] for r in rows if r["bidi_bytes"]]
    lines.append(f"bytes received per answer: median {statistics.median(sizes):.0f} in "
                 f"{statistics.median(r['messages'] for r in rows):.0f} messages; the component's element "
                 f"{statistics.median(bidi) if bidi else 0:.0f} bytes")
    lines.append("elements of one answer: " + ", ".join(rows[len(rows) // 2]["elements"]))
    return lines


def run(checkout: Path, presses: int, steps: int, keep: Path | None) -> list[str]:
    log = Path(tempfile.mkstemp(prefix="hops-", suffix=".jsonl")[1])
    env = {"PYTHONPATH": f"{checkout}{os.pathsep}{REPO / 'benchmarks' / 'hop_probe'}", "HOP_LOG": str(log)}
    with streamlit_server(checkout / "app" / "main.py", env=env, cwd=checkout) as url, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1200, "height": 1000})
        page.add_init_script(WS_PROBE)
        page.goto(url + "/?loc_x=-0.5&loc_y=-0.5", wait_until="domcontentloaded")
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                frame = find_control(page, X)[0]
                if frame.evaluate("() => window.__liveControls && window.__liveControls.parts > 0 && "
                                  "window.__liveControls.parts === window.__liveControls.partsWanted"):
                    break
            except LookupError:
                pass
            page.wait_for_timeout(250)
        page.wait_for_timeout(1500)
        page.evaluate(INSTALL_RECORDER, PREDICTED_MASK)
        page.evaluate("() => { window.__ws.sent = []; window.__ws.received = []; window.__ws.input = []; "
                      "window.__ws.frames = []; }")
        frame = find_control(page, X)[0]  # the component's frame (its iframe, for a v1 component)
        trips_before = len(frame.evaluate("() => window.__liveControls.trips"))
        start = time.time() * 1000
        drive(page, presses, steps)
        browser_log = page.evaluate("() => window.__ws")
        trips = frame.evaluate("() => window.__liveControls.trips")[trips_before:]
        paints = page.evaluate("() => window.__paints.log")
    server = [json.loads(line) for line in log.read_text().splitlines()]
    server = [e for e in server if e["t"] >= start - 10]
    rows = hops(server, browser_log, trips, paints)
    if keep:
        keep.write_text(json.dumps({"rows": rows, "server": server, "browser": browser_log}, indent=1))
    log.unlink()
    return [f"{checkout}: {len(rows)} values"] + summarise(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, action="append", help="checkouts to trace (default: this one)")
    parser.add_argument("--presses", type=int, default=12)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--keep", type=Path, help="write every event of the (last) trace to this JSON file")
    args = parser.parse_args(argv)
    for checkout in args.checkout or [REPO]:
        print("\n".join(run(checkout.resolve(), args.presses, args.steps, args.keep)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
