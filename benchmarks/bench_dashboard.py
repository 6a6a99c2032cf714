"""How fast the dashboard answers a slider move, measured in one run.

    python benchmarks/bench_dashboard.py                 # both parts, about 2-3 minutes
    python benchmarks/bench_dashboard.py --skip-browser  # the model part only

1. Cached update vs full forward pass: `Explorer.update(z)` (decode only, on the kept encoder output)
   against `Explorer.full_forward(z)` (encode + decode), interleaved, medians over --repeats calls,
   for the CLEVR-Seg encoder-decoder at 200x200 and the ACDC U-Net at 128x128 (the shipped checkpoints
   when present, else the same architectures with random weights; the time does not depend on the weights).
   Targets: update / full <= 0.7 (CLEVR-Seg) and <= 0.6 (U-Net).
2. Browser round trip: headless Chromium (Playwright) presses End / Home on the "Location x" slider of
   `streamlit run app/main.py` and times key press -> the new mask and attention drawn; the same on a bare
   page with one slider and one image (benchmarks/bare_page.py), the floor of Streamlit's own round trip.
   A third page adds one small plotly scatter to the bare page: the floor of a round trip that redraws a
   plotly figure. Blocks of presses alternate between the pages so all see the same machine load.
   Target: our median <= 1.5 x the bare page's.

Runs on the bundled synthetic data (generated on first use). Torch uses --threads threads (default 1, as
the dashboard does; see app/loading.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.browser import browser, chromium_path, streamlit_server, time_key_press, wait_for_page  # noqa: E402
from inside_core.checkpoints import list_checkpoints, load_checkpoint, read_card  # noqa: E402
from inside_core.conditions import acdc_condition, quadrant_blend  # noqa: E402
from inside_core.explorer import Explorer  # noqa: E402
from inside_core.networks import build_model  # noqa: E402

SLIDER = "Location x (left → right)"


def shipped(dataset: str, conditioning: str) -> Path | None:
    """The first shipped checkpoint trained on `dataset` with `conditioning` (quadrant z for CLEVR-Seg)."""
    for path in list_checkpoints(REPO / "checkpoints"):
        card = read_card(path)
        if card.get("dataset") == dataset and card.get("conditioning") == conditioning \
                and card.get("condition") in ("quadrant", "phase_slice"):
            return path
    return None


def model_or_stand_in(dataset: str, architecture: str, **config) -> tuple[torch.nn.Module, str]:
    path = shipped(dataset, config.get("conditioning", "inside"))
    if path is not None:
        return load_checkpoint(path), f"checkpoints/{path.name}"
    torch.manual_seed(0)
    return build_model(architecture, **config).eval(), f"{architecture} {config} (random weights: no checkpoint)"


def time_calls(explorer: Explorer, zs: list, repeats: int) -> dict:
    """Median milliseconds of update (decode only) and full_forward, interleaved call by call."""
    for z in zs[:3]:  # warm up both paths
        explorer.update(z)
        explorer.full_forward(z)
    update, full = [], []
    for i in range(repeats):
        z = zs[i % len(zs)]
        start = time.perf_counter()
        explorer.update(z)
        update.append(time.perf_counter() - start)
        start = time.perf_counter()
        explorer.full_forward(z)
        full.append(time.perf_counter() - start)
    update_ms, full_ms = 1000 * statistics.median(update), 1000 * statistics.median(full)
    return {"update_ms": round(update_ms, 2), "full_ms": round(full_ms, 2), "ratio": round(update_ms / full_ms, 3)}


def bench_models(repeats: int) -> dict:
    from inside_core.data import AcdcDataset, ClevrSegDataset, default_data_dir

    results = {}
    image = ClevrSegDataset(default_data_dir("clevr-seg"), split="test")[0]["image"]
    zs = [quadrant_blend(x, y) for x, y in ((-0.5, -0.5), (0.2, -0.4), (0.5, 0.5), (-0.1, 0.3))]
    # the reference size; timing does not depend on the weights
    torch.manual_seed(0)
    reference = build_model("encoder_decoder", conditioning="inside", cond_dim=4, image_size=(200, 200)).eval()
    results["clevr-seg encoder-decoder 200x200"] = {"model": "encoder_decoder inside 200x200 (random weights)",
                                                    "target": 0.7,
                                                    **time_calls(Explorer(reference, image), zs, repeats)}
    path = shipped("clevr-seg", "inside")
    if path is not None:
        clevr = load_checkpoint(path)
        size = "x".join(str(s) for s in clevr.card["image_size"])
        results[f"clevr-seg shipped {size}"] = {"model": f"checkpoints/{path.name}", "target": None,
                                               **time_calls(Explorer(clevr, image), zs, repeats)}
    unet, source = model_or_stand_in("acdc", "unet", conditioning="inside", cond_dim=2, image_size=(128, 128))
    size = int(getattr(unet, "card", {}).get("image_size", [128])[0])
    dataset = AcdcDataset(default_data_dir("acdc"), split="test", image_size=size,
                          spacing=float(getattr(unet, "card", {}).get("spacing", 1.37)))
    zs = [acdc_condition(phase, position) for phase, position in ((0, 0.2), (0.5, 0.5), (1, 0.8), (0.3, 0.6))]
    results[f"acdc u-net {size}x{size}"] = {"model": source, "target": 0.6,
                                            **time_calls(Explorer(unet, dataset[0]["image"]), zs, repeats)}
    return results


def pick_sample() -> tuple[int, Path]:
    """A test-split CLEVR-Seg sample with objects in both top quadrants (so End / Home on location x
    changes the mask of a working model); returns its index and image file."""
    from inside_core.data import ClevrSegDataset, default_data_dir

    dataset = ClevrSegDataset(default_data_dir("clevr-seg"), split="test")
    for index in range(len(dataset)):
        if dataset.target(index, "quadrant", "top_left").any() and dataset.target(index, "quadrant", "top_right").any():
            return index, dataset.root / "images" / f"{dataset.names[index]}.png"
    return 0, dataset.root / "images" / f"{dataset.names[0]}.png"


def summary(times: list[float]) -> dict:
    return {"median_ms": round(statistics.median(times), 1), "p90_ms": round(float(np.percentile(times, 90)), 1),
            "n": len(times)}


def press(page, label: str, what: str, times: list[float], failures: list[str]) -> bool:
    """One timed move to the far end of the slider (End, or Home when already there)."""
    slider = page.locator(f'input[type="range"][aria-label="{label}"]').first
    key = "Home" if float(slider.input_value()) >= float(slider.get_attribute("max")) else "End"
    try:
        times.append(time_key_press(page, label, key, what))
        return True
    except Exception as error:  # a lost press is reported, not fatal
        failures.append(f"{label} {key}: {type(error).__name__}")
        return False


def bench_browser(presses: int, rounds: int, screenshot: Path | None = None) -> dict:
    if chromium_path() is None:
        return {"skipped": "Chromium is not installed (apt-get install -y chromium)"}
    index, image_file = pick_sample()
    times = {"bare": [], "bare_plot": [], "bare_live": [], "attention": [], "all": []}
    failures: list[str] = []
    mask_changed = 0
    bare_env = {"BARE_PAGE_IMAGE": str(image_file)}
    bare_page = REPO / "benchmarks" / "bare_page.py"
    with streamlit_server(bare_page, env=bare_env) as bare, \
            streamlit_server(bare_page, env={**bare_env, "BARE_PAGE_PLOT": "1"}) as plot, \
            streamlit_server(bare_page, env={**bare_env, "BARE_PAGE_PLOT": "live"}) as live, \
            streamlit_server(REPO / "app" / "main.py") as app, browser() as chromium:
        pages = {}
        for name, url, plots in (("bare", bare, 0), ("bare_plot", plot, 1), ("bare_live", live, 1),
                                 ("app", f"{app}/?sample={index}&loc_y=-0.5", 2)):
            pages[name] = chromium.new_page(viewport={"width": 1400, "height": 1400})
            wait_for_page(pages[name], url, plots=plots)
        runs = (("bare", "value", "image"), ("bare_plot", "value", "attention"), ("bare_live", "value", "attention"),
                ("app", SLIDER, "attention"))
        for name, label, what in runs:  # warm up: the first moves fill caches
            for _ in range(4):
                press(pages[name], label, what, [], [])
                pages[name].wait_for_timeout(400)
        for _ in range(rounds):  # alternate blocks, so every page sees the same machine load
            for name, label, what in runs:
                for _ in range(presses):
                    if press(pages[name], label, what, times["attention" if name == "app" else name], failures) \
                            and name == "app":
                        mask_changed += bool(pages[name].evaluate("() => window.__keyClock.imageChanged"))
                    pages[name].wait_for_timeout(700 if name == "app" else 400)  # let the rest finish
            for _ in range(max(presses // 2, 2)):
                press(pages["app"], SLIDER, "all", times["all"], failures)
                pages["app"].wait_for_timeout(400)
        if screenshot:
            pages["app"].screenshot(path=str(screenshot), full_page=True)
    bare_summary, ours = summary(times["bare"]), summary(times["attention"])
    return {
        "sample": index,
        "bare_page": bare_summary,
        "bare_page_with_one_plotly_figure": summary(times["bare_plot"]),
        "bare_page_with_one_live_chart": summary(times["bare_live"]),
        "dashboard_mask_and_attention": {**ours, "mask_changed_in": f"{mask_changed} of {len(times['attention'])}"},
        "dashboard_all_views": summary(times["all"]),
        "ratio_median": round(ours["median_ms"] / bare_summary["median_ms"], 2),
        "ratio_median_to_plotly_floor": round(ours["median_ms"] / statistics.median(times["bare_plot"]), 2),
        "target_ratio": 1.5,
        "lost_presses": failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60, help="calls per model timing (default 60)")
    parser.add_argument("--presses", type=int, default=10, help="key presses per page per round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of presses (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the dashboard)")
    parser.add_argument("--skip-browser", action="store_true", help="time the models only")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--screenshot", type=Path, help="save the dashboard page after the run here (PNG)")
    args = parser.parse_args(argv)
    # a SIGTERM (e.g. from `timeout`) unwinds normally, so the Streamlit servers are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    torch.set_num_threads(args.threads)
    results = {"torch_threads": args.threads, "models": bench_models(args.repeats)}
    for name, row in results["models"].items():
        if row["target"] is None:
            verdict = "no target"
        else:
            verdict = f"target <= {row['target']}, {'ok' if row['ratio'] <= row['target'] else 'ABOVE TARGET'}"
        print(f"{name}: update {row['update_ms']:.1f} ms, full forward {row['full_ms']:.1f} ms, "
              f"ratio {row['ratio']:.2f} ({verdict})  [{row['model']}]")
    if not args.skip_browser:
        results["browser"] = browser_results = bench_browser(args.presses, args.rounds, args.screenshot)
        if "skipped" in browser_results:
            print(f"browser: skipped, {browser_results['skipped']}")
        else:
            b, d = browser_results["bare_page"], browser_results["dashboard_mask_and_attention"]
            a = browser_results["dashboard_all_views"]
            print(f"bare page (1 slider, 1 image): median {b['median_ms']:.0f} ms, p90 {b['p90_ms']:.0f} ms "
                  f"(n={b['n']})")
            f = browser_results["bare_page_with_one_plotly_figure"]
            print(f"bare page + one plotly scatter (st.plotly_chart): median {f['median_ms']:.0f} ms, "
                  f"p90 {f['p90_ms']:.0f} ms (n={f['n']})")
            f = browser_results["bare_page_with_one_live_chart"]
            print(f"bare page + one plotly scatter (app/live_chart.py): median {f['median_ms']:.0f} ms, "
                  f"p90 {f['p90_ms']:.0f} ms (n={f['n']})")
            print(f"dashboard, key press -> new mask + attention: median {d['median_ms']:.0f} ms, "
                  f"p90 {d['p90_ms']:.0f} ms (n={d['n']}; mask changed in {d['mask_changed_in']})")
            print(f"dashboard, key press -> every figure redrawn: median {a['median_ms']:.0f} ms, "
                  f"p90 {a['p90_ms']:.0f} ms (n={a['n']})")
            ratio = browser_results["ratio_median"]
            print(f"ratio of medians, dashboard / bare page: {ratio:.2f} "
                  f"(target <= 1.5, {'ok' if ratio <= 1.5 else 'ABOVE TARGET'}); dashboard / bare page with one "
                  f"plotly figure: {browser_results['ratio_median_to_plotly_floor']:.2f}")
            if browser_results["lost_presses"]:
                print(f"lost presses (timed out): {len(browser_results['lost_presses'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
