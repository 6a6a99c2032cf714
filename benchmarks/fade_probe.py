"""What fades while nobody touches the page: after a sample opens, sampled every 50 ms in headless Chromium.

    python benchmarks/fade_probe.py                     # CLEVR-Seg (server pictures), ACDC; both ways
    python benchmarks/fade_probe.py --seconds 10 --repeats 2

For each page (opened fresh; the pointer never moves) and for 10 s from when its picture is on screen, every
50 ms: how many of Streamlit's element containers are stale (`data-stale="true"`: a script run has started and
not sent them yet), how many of those are visibly faded (computed opacity below 0.9: Streamlit fades a stale
element from 0.5 s into a run, over 1 s), and whether the status widget shows "Running...". Pages: the
CLEVR-Seg point on the image decoded on the server ($INSIDE_DASHBOARD_DECODE=server: its pictures to scrub are
made) and in the browser (the default: no pictures made, the decoder's part asked for once), and ACDC's phase x
slice pad (always made); each with the parts made by the session's thread
(app/ahead.py, the default) and, for comparison, made in the run that asks for them ($INSIDE_DASHBOARD_AHEAD=0).
Printed per page and way: samples with anything faded / stale / "Running...", the longest faded stretch (ms),
and how many parts of the pictures made ahead the component had at the end. With --drag-after S, instead: a
3-s drag (benchmarks/bench_live_drag.measure_drag) started S s after the page's picture is on screen, and the
distinct masks it painted per second while held (issue 21: >= 20 /s for a drag started 1 s after a sample opens).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_dashboard import PAINTED_MASK  # noqa: E402
from benchmarks.bench_live_drag import measure_drag, open_page  # noqa: E402
from benchmarks.browser import browser, streamlit_server  # noqa: E402

SAMPLE = """() => {
  const boxes = [...document.querySelectorAll('[data-testid="stElementContainer"]')];
  const stale = boxes.filter((b) => b.getAttribute('data-stale') === 'true');
  const faded = stale.filter((b) => parseFloat(getComputedStyle(b).opacity) < 0.9);
  return [performance.now(), stale.length, faded.length,
          Boolean(document.querySelector('[data-testid="stStatusWidgetRunningIcon"], '
                                         + '[data-testid="stStatusWidgetRunningManIcon"]'))];
}"""
PAGES = {"CLEVR-Seg, point on the image (server pictures)": ("?sample=4&loc_x=-0.5&loc_y=-0.5", "Point on the image",
                                                              {"INSIDE_DASHBOARD_DECODE": "server"}),
         # the default: decoded in the browser, which asks for the decoder's part (a run of 0.15-0.3 s), no lattice
         "CLEVR-Seg, point on the image (decoded in the browser)": ("?sample=4&loc_x=-0.5&loc_y=-0.5",
                                                                    "Point on the image", {}),
         "ACDC, phase x slice pad": ("?dataset=acdc&phase=0", "Phase and slice", {})}


def probe(chromium, url: str, control: str, seconds: float) -> dict:
    page = open_page(chromium, url, control)  # until the control and the picture are on the page
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(page.evaluate(SAMPLE))
        page.wait_for_timeout(50)
    parts = page.evaluate("() => window.__liveControls ? [window.__liveControls.parts, "
                          "window.__liveControls.partsWanted] : null")
    page.close()
    longest = run = 0.0
    for (t0, _, faded, _), (t1, *_rest) in zip(samples, samples[1:], strict=False):
        run = run + (t1 - t0) if faded else 0.0
        longest = max(longest, run)
    return {"samples": len(samples), "faded": sum(1 for s in samples if s[2]),
            "stale": sum(1 for s in samples if s[1]), "running": sum(1 for s in samples if s[3]),
            "longest_faded_ms": round(longest), "most_faded": max((s[2] for s in samples), default=0),
            "parts": parts}


def drag_after(chromium, url: str, control: str, seconds: float) -> dict:
    page = open_page(chromium, url, control, read_image=PAINTED_MASK, settle_ms=0)
    page.wait_for_timeout(seconds * 1000)
    counts = "() => window.__liveControls ? [window.__liveControls.parts || 0, window.__liveControls.scrubbed] : [0, 0]"
    parts, scrubbed = page.evaluate(counts)
    found = measure_drag(page, control, PAINTED_MASK, seconds=3.0)
    scrubbed = page.evaluate(counts)[1] - scrubbed
    page.close()
    # parts: of the pictures made ahead in the browser when the drag began; scrubbed: pictures shown from them
    return {"masks_per_s": found["updates_per_s"], "final_lag_ms": found["final_lag_ms"], "parts_at_start": parts,
            "scrubbed": scrubbed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to watch each page (default 10)")
    parser.add_argument("--repeats", type=int, default=1, help="pages opened per page and way (default 1)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--drag-after", type=float, metavar="S", help="drag S s after the page opens instead")
    parser.add_argument("--only", help="only the pages whose name holds this text (e.g. ACDC)")
    parser.add_argument("--thread-only", action="store_true", help="only the parts made by the session's thread")
    args = parser.parse_args(argv)
    results: dict = {}
    with browser() as chromium:
        for way, ahead in (("thread", "1"), ("in the run", "0"))[:1 if args.thread_only else 2]:
            for name, (query, control, env) in PAGES.items():
                if args.only and args.only not in name:
                    continue
                with streamlit_server(REPO / "app" / "main.py", env={**env, "INSIDE_DASHBOARD_AHEAD": ahead}) as url:
                    open_page(chromium, url + query, control).close()  # the server's first page: caches warm
                    for k in range(args.repeats):
                        where = url + query.replace("sample=4", f"sample={5 + k}")
                        found = probe(chromium, where, control, args.seconds) if args.drag_after is None else \
                            drag_after(chromium, where, control, args.drag_after)
                        results.setdefault(f"{name}; parts made {way}", []).append(found)
                        print(f"{name}; parts made {way}: {json.dumps(found)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
