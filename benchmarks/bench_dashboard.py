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
   Blocks of presses alternate between the two pages so both see the same machine load.
   Target: our median <= 1.5 x the bare page's.

Runs on the bundled synthetic data (generated on first use). Torch uses --threads threads (default 1, as
the dashboard does; see app/loading.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.browser import browser, chromium_path, streamlit_server, time_key_press, wait_for_page  # noqa: E402
from inside_core.checkpoints import load_checkpoint  # noqa: E402
from inside_core.encoding import acdc_condition, quadrant_blend  # noqa: E402
from inside_core.explorer import Explorer  # noqa: E402
from inside_core.networks import build_model  # noqa: E402

SLIDER = "Location x (left → right)"


def model_or_stand_in(name: str, architecture: str, **config) -> tuple[torch.nn.Module, str]:
    path = REPO / "checkpoints" / f"{name}.safetensors"
    if path.exists():
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
    shipped = REPO / "checkpoints" / "clevr-seg-quadrant-inside.safetensors"
    if shipped.exists():
        clevr = load_checkpoint(shipped)
        size = "x".join(str(s) for s in clevr.card["image_size"])
        results[f"clevr-seg shipped {size}"] = {"model": f"checkpoints/{shipped.name}", "target": None,
                                               **time_calls(Explorer(clevr, image), zs, repeats)}
    unet, source = model_or_stand_in("acdc-inside", "unet", conditioning="inside", cond_dim=2, image_size=(128, 128))
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


def bench_browser(presses: int, rounds: int, screenshot: Path | None = None) -> dict:
    if chromium_path() is None:
        return {"skipped": "Chromium is not installed (apt-get install -y chromium)"}
    index, image_file = pick_sample()
    bare_times, attention_times, all_times, mask_changed = [], [], [], 0
    keys = ["End", "Home"]
    with streamlit_server(REPO / "benchmarks" / "bare_page.py", env={"BARE_PAGE_IMAGE": str(image_file)}) as bare, \
            streamlit_server(REPO / "app" / "main.py") as app, browser() as chromium:
        bare_page = chromium.new_page(viewport={"width": 1400, "height": 1400})
        wait_for_page(bare_page, bare)
        app_page = chromium.new_page(viewport={"width": 1400, "height": 1400})
        wait_for_page(app_page, f"{app}/?sample={index}&loc_y=-0.5", plots=1)
        for page, label, what in ((bare_page, "value", "image"), (app_page, SLIDER, "attention")):
            for key in keys * 2:  # warm up: first moves load caches and fonts
                time_key_press(page, label, key, what)
                page.wait_for_timeout(400)
        for _ in range(rounds):
            for i in range(presses):
                bare_times.append(time_key_press(bare_page, "value", keys[i % 2], "image"))
                bare_page.wait_for_timeout(400)
            for i in range(presses):
                attention_times.append(time_key_press(app_page, SLIDER, keys[i % 2], "attention"))
                mask_changed += bool(app_page.evaluate("() => window.__keyClock.imageChanged"))
                app_page.wait_for_timeout(700)  # let the rest of the page (detail figures) finish
            for i in range(max(presses // 2, 2)):
                all_times.append(time_key_press(app_page, SLIDER, keys[i % 2], "all"))
                app_page.wait_for_timeout(400)
        if screenshot:
            app_page.screenshot(path=str(screenshot), full_page=True)
    bare_summary, ours = summary(bare_times), summary(attention_times)
    return {
        "sample": index,
        "bare_page": bare_summary,
        "dashboard_mask_and_attention": {**ours, "mask_changed_in": f"{mask_changed} of {len(attention_times)}"},
        "dashboard_all_views": summary(all_times),
        "ratio_median": round(ours["median_ms"] / bare_summary["median_ms"], 2),
        "target_ratio": 1.5,
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
            print(f"dashboard, key press -> new mask + attention: median {d['median_ms']:.0f} ms, "
                  f"p90 {d['p90_ms']:.0f} ms (n={d['n']}; mask changed in {d['mask_changed_in']})")
            print(f"dashboard, key press -> every figure redrawn: median {a['median_ms']:.0f} ms, "
                  f"p90 {a['p90_ms']:.0f} ms (n={a['n']})")
            ratio = browser_results["ratio_median"]
            print(f"ratio of medians: {ratio:.2f} (target <= 1.5, {'ok' if ratio <= 1.5 else 'ABOVE TARGET'})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
