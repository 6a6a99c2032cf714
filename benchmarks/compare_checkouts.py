"""The streaming controls of this checkout against another's, on the demo page, in one run (same load).

    git archive ea6da8b | tar -x -C /tmp/old      # e.g. the last commit with the v1 (iframe) component
    python benchmarks/compare_checkouts.py /tmp/old --rounds 3
    python benchmarks/compare_checkouts.py /tmp/old --app      # the dashboard, once its pictures to scrub came

Each checkout serves benchmarks/live_controls_page.py (a fake 10 ms decode, no pictures made ahead: every
picture is a round trip through the component's transport); the drags alternate between the two pages.
With --app, each serves the dashboard (app/main.py) instead, and the drags start once every part of the
pictures made ahead has arrived. Prints, per drag, the masks painted per second while held, the final lag and
the values' round trip; with --app also the attention chart's redraws while held and its last redraw after
the release.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_live_drag import PAD, PREDICTED_MASK, X, find_control, measure_drag, open_page  # noqa: E402
from benchmarks.browser import browser, streamlit_server  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (its benchmarks/live_controls_page.py)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--app", action="store_true", help="the dashboard instead of the demo page")
    args = parser.parse_args(argv)
    checkouts = {"this": REPO, "other": args.other.resolve()}
    controls = {"slider": X, "pad": PAD}
    rows: dict[tuple[str, str], list[dict]] = {(c, k): [] for c in checkouts for k in controls}
    page_script = Path("app") / "main.py" if args.app else Path("benchmarks") / "live_controls_page.py"
    query = "/?loc_x=-0.5&loc_y=-0.5" if args.app else "/?mode=point"
    serve = {c: streamlit_server(path / page_script, env={"PYTHONPATH": str(path)}, cwd=path)
             for c, path in checkouts.items()}  # each imports its own app/
    with serve["this"] as this_url, serve["other"] as other_url, \
            browser() as chromium:
        urls = {"this": this_url, "other": other_url}
        pages = {(c, k): open_page(chromium, urls[c] + query, control)
                 for c in checkouts for k, control in controls.items()}
        for (_, k), page in pages.items():  # the pictures to scrub (the dashboard's), all of them
            frame = find_control(page, controls[k])[0]
            frame.wait_for_function("() => window.__liveControls && window.__liveControls.parts === "
                                    "window.__liveControls.partsWanted", timeout=120000)
        for (_, k), page in pages.items():  # warm up
            page.bring_to_front()
            measure_drag(page, controls[k], PREDICTED_MASK, seconds=0.5, settle_ms=500)
        for _ in range(args.rounds):
            for key, page in pages.items():
                page.bring_to_front()
                rows[key].append(measure_drag(page, controls[key[1]], PREDICTED_MASK, seconds=args.seconds,
                                              chart="main_attention" if args.app else None))
    for (c, k), found in rows.items():
        rates = [r["updates_per_s"] for r in found]
        lags = [r["final_lag_ms"] for r in found if r["final_lag_ms"] is not None]
        trips = [r["round_trip_ms_median"] for r in found if r["round_trip_ms_median"] is not None]
        print(f"{c:5} {k:6}: {statistics.median(rates):5.1f} masks/s while held {rates}; final lag median "
              f"{statistics.median(lags) if lags else None} ms {lags}; round trip median "
              f"{statistics.median(trips) if trips else None} ms {trips}")
        if args.app:  # the attention chart (the dashboard's): redraws while held, last one after the release
            print(f"      attention chart: redrawn {[r['chart_redraws_while_held'] for r in found]} times while "
                  f"held, last {[r['chart_after_release_ms'] for r in found]} ms after the release")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
