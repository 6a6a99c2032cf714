"""How fast the dashboard answers a control move, measured in one run.

    python benchmarks/bench_dashboard.py                 # all parts, about 4-6 minutes
    python benchmarks/bench_dashboard.py --skip-browser  # the model part only

1. Cached update vs full forward pass: `Explorer.update(z)` (decode only, on the kept encoder output)
   against `Explorer.full_forward(z)` (encode + decode), interleaved, medians over --repeats calls,
   for the CLEVR-Seg encoder-decoder at 200x200 and the ACDC U-Net at 128x128 (the shipped checkpoints
   when present, else the same architectures with random weights; the time does not depend on the weights).
   Targets: update / full <= 0.7 (CLEVR-Seg) and <= 0.6 (U-Net).
2. First page on a clean cache: `streamlit run app/main.py` with a new $INSIDE_CACHE_DIR (the bundled
   data not generated yet), seconds until the controls and the predicted mask are on the page, for
   CLEVR-Seg and for ACDC.
3. Real mouse drags in headless Chromium (Playwright; benchmarks/bench_live_drag.py's `measure_drag`):
   mouse down on a control, moves every 16 ms for --seconds whatever the page does (benchmarks/hand.py: the
   moves do not wait for the browser's acknowledgement, as a real mouse's do not), mouse up. Per drag: distinct
   masks painted while the button is held, per second, and the lag from the last move to the last new mask
   painted (the "final lag"); on the dashboard also the lag to when the mask and the Dice line under it were
   both final, and the pointer events the page got, the masks it painted and, where the browser decodes, the
   mask changes among the values the pointer passed through (the most the drag could show). Dragged:
   the dashboard's "Location x" slider, the point on the image, the ACDC phase x slice pad, and, as the
   reference in the same run, the bare Streamlit page with a stock st.slider (benchmarks/bare_page.py:
   it paints nothing while held). Then End / Home key presses on both sliders: key press -> new mask.
   Targets (issue #21): >= 30 masks/s while held on every drag, final lag <= 150 ms; key press ratio
   dashboard / bare page <= 1.2; first page on a clean cache <= 5 s (CLEVR-Seg), <= 8 s (ACDC, issue #20).
   Drags alternate between the pages so all see the same load. With --busy the server is kept busy as a
   shared server would be: a second browser (another process) drags the point on another sample's image
   back and forth on the same dashboard for the whole browser part.
4. Scrubbing's cost: every part of the pictures made ahead for the default page of each dataset, asked for
   as the component asks (Streamlit's AppTest): seconds per part and megabytes sent.

Runs on the bundled synthetic data (generated on first use). Torch uses --threads threads (default 1, as
the dashboard does; see app/loading.py).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_live_drag import (  # noqa: E402
    PAD,
    PREDICTED_MASK,
    STOCK_IMAGE,
    X,
    measure_drag,
    open_page,
    press_keys,
)
from benchmarks.bench_live_drag import summary as drag_summary  # noqa: E402
from benchmarks.browser import browser, chromium_path, streamlit_server  # noqa: E402
from inside_core.checkpoints import list_checkpoints, load_checkpoint, read_card  # noqa: E402
from inside_core.conditions import acdc_condition, quadrant_blend  # noqa: E402
from inside_core.explorer import Explorer  # noqa: E402
from inside_core.networks import build_model  # noqa: E402

# What identifies the painted mask on the dashboard: the mask decoded in the browser while a control is held (the
# canvas over the picture, app/live_decoder.js: its labels' hash) while it shows, else the picture's src. On a
# checkout without the canvas it is PREDICTED_MASK.
PAINTED_MASK = PREDICTED_MASK.replace("  for (const doc of docs) {", """  for (const doc of docs) {
    const decoded = doc.querySelector && doc.querySelector('canvas#decoded');
    if (decoded && !decoded.hidden && decoded.dataset.mask) return 'decoded:' + decoded.dataset.mask;
  }
  for (const doc of docs) {""", 1)
# After a drag (measure_drag's recorders): ms from the last move to the last mask decoded in the browser (0: the
# mask painted for an earlier move already was the last one), or null where none was decoded
DECODED_LAG = """() => { const decoded = window.__paints.log.filter(([, what]) => what.startsWith('decoded:'));
  if (!decoded.length) return null;
  return Math.round(Math.max(0, decoded[decoded.length - 1][0] - window.__pointer.move)); }"""
# The line under the dashboard's picture (the Dice line, drawn by the streaming component): with the mask, what a
# drag's final state is (measure_drag's `line`: final_state_lag_ms, the later of the two)
DICE_LINE = """() => { for (const host of document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')) {
    const caption = host.shadowRoot && host.shadowRoot.querySelector('#caption');
    const picture = host.shadowRoot && host.shadowRoot.querySelector('img[alt="predicted mask"]');
    if (caption && picture) return caption.hidden ? '' : caption.textContent;
  }
  return null; }"""
DECODER_READY_S = 30  # a page whose component is offered the decoder waits this long for it to be ready


def decoder_ready(page, timeout_s: float = DECODER_READY_S) -> float | None:
    """Seconds until the component says held values are decoded in this browser (its line under the picture), or
    None if it does not within `timeout_s` (no decoder offered there: the pictures made ahead stay)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if page.evaluate("() => { const stats = window.__liveControls; const d = stats && stats.decoder; "
                         "return Boolean(d && d.state() === 'ready' && [...document.querySelectorAll("
                         "'[data-testid=\"stBidiComponentIsolated\"]')].some((h) => h.shadowRoot && "
                         "(h.shadowRoot.querySelector('#path') || {}).textContent.includes("
                         "'decoded in this browser'))); }"):
            return round(time.monotonic() - start, 1)
        page.wait_for_timeout(200)
    return None


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


@contextmanager
def decode_mode(mode: str) -> Iterator[None]:
    """$INSIDE_DASHBOARD_DECODE set to `mode` for the block (the pages of the browser part are started after it)."""
    before = os.environ.get("INSIDE_DASHBOARD_DECODE")
    os.environ["INSIDE_DASHBOARD_DECODE"] = mode
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("INSIDE_DASHBOARD_DECODE")
        else:
            os.environ["INSIDE_DASHBOARD_DECODE"] = before


def bench_scrub() -> dict:
    """What scrubbing costs (app/scrub.py): for the default page of each dataset, every part of the pictures
    made ahead, asked for as the component does (Streamlit's AppTest): seconds per part, megabytes sent. Each
    part is made in the run that asks for it ($INSIDE_DASHBOARD_AHEAD=0), so the seconds are the work of making
    it, which the page's thread does outside the script runs (app/ahead.py)."""
    from streamlit.testing.v1 import AppTest

    before, os.environ["INSIDE_DASHBOARD_AHEAD"] = os.environ.get("INSIDE_DASHBOARD_AHEAD"), "0"
    try:
        return _bench_scrub(AppTest)
    finally:
        if before is None:
            os.environ.pop("INSIDE_DASHBOARD_AHEAD")
        else:
            os.environ["INSIDE_DASHBOARD_AHEAD"] = before


def _bench_scrub(AppTest) -> dict:  # noqa: N803 (the class)
    def component(at) -> dict:
        return next(json.loads(e.proto.json) for e in at.get("bidi_component")
                    if e.proto.component_name.endswith("live_controls"))

    results = {}
    for name, query in (("clevr-seg", {}), ("clevr-seg point model", {"model": "clevr-seg-point-inside"}),
                        ("acdc", {"dataset": "acdc"})):
        at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=300)
        for key, value in query.items():
            at.query_params[key] = value
        args = component(at.run())
        key, seconds, megabytes = args["frames_key"], [], []
        for part in range(args["frames_parts"] if key else 0):
            at.session_state["_live_controls.conditioning"] = {"ack": f"bench:{part}", "seq": part, "final": True,
                                                              "frames": f"{key}#{part}"}
            start = time.perf_counter()
            at.run()
            seconds.append(round(time.perf_counter() - start, 2))
            megabytes.append(round(len(json.dumps(component(at)["frames"])) / 1e6, 2))
        results[name] = {"parts": len(seconds), "seconds": seconds, "megabytes": megabytes,
                         "total_mb": round(sum(megabytes), 1)}
    return results


def bench_decoder_part() -> dict:
    """What decoding in the browser sends (app/scrub.browser_decoder), asked for as the component does (AppTest):
    the component's data per answer (the offer alone), and the decoder's part with and without the .onnx (the
    model's once per page, the image's features and grid once per image), in MB, and the seconds of that run."""
    from streamlit.testing.v1 import AppTest

    from inside_core.onnx_decoder import EXPORTS

    def component(at) -> dict:
        return next(json.loads(e.proto.json) for e in at.get("bidi_component")
                    if e.proto.component_name.endswith("live_controls"))

    results = {}
    point = "clevr-seg-point-inside"
    for name, query, model in (("clevr-seg", {}, "clevr-seg-quadrant-inside"),
                               ("clevr-seg point model", {"model": point}, point)):
        at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=300)
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        for key in list(EXPORTS._running):  # the export started by the first page: wait for it
            EXPORTS.wait(key, 120)
        args = component(at.run())
        row = {"answer_mb": round(len(json.dumps(args)) / 1e6, 3), "offer_bytes": len(json.dumps(args["decoder"]))}
        for flag, label in (("1", "with_onnx"), ("0", "without_onnx")):
            asked = f"{args['decoder']['key']}#{flag}"
            at.session_state["_live_controls.conditioning"] = {"ack": f"bench:{flag}", "seq": 1, "final": True,
                                                              "frames": None, "decoder": asked}
            start = time.perf_counter()
            part = component(at.run())["decoder_part"]
            row[label] = {"seconds": round(time.perf_counter() - start, 2),
                          "mb": round(len(json.dumps(part)) / 1e6, 3),
                          "onnx_mb": round(len(part["onnx"] or "") / 1e6, 3),
                          "features_mb": round(sum(len(v[1]) for v in part["inputs"].values()) / 1e6, 3),
                          "grid_mb": round(len(part["grid"]["data"]) / 1e6, 3),
                          "base_mb": round(len(part["base"]) / 1e6, 3)}
        results[name] = {"model": model, **row}
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


def first_page_s(chromium, query: str, control: str, timeout_s: float = 300) -> float:
    """Seconds from opening the dashboard on a clean cache (a new $INSIDE_CACHE_DIR: the bundled data not
    yet generated) until `control` and the predicted mask are on the page."""
    with tempfile.TemporaryDirectory(prefix="inside-clean-cache-") as cache, \
            streamlit_server(REPO / "app" / "main.py", env={"INSIDE_CACHE_DIR": cache}) as url:
        start = time.monotonic()
        page = open_page(chromium, url + query, control, timeout_s=timeout_s, settle_ms=0)
        elapsed = time.monotonic() - start
        page.close()
    return round(elapsed, 1)


def drag_forever(url: str) -> None:
    """The --busy load: open `url` and drag the point on the image back and forth until terminated."""
    with browser() as chromium:
        page = open_page(chromium, url, PAD, PREDICTED_MASK)
        while True:
            measure_drag(page, PAD, PREDICTED_MASK, seconds=3.0, settle_ms=200)


@contextmanager
def busy_server(url: str, enabled: bool) -> Iterator[None]:
    """With `enabled`, a second browser in another process drags on `url` while the block runs."""
    if not enabled:
        yield
        return
    load = subprocess.Popen([sys.executable, __file__, "--drag-forever", url])
    try:
        time.sleep(8.0)  # its page open and its first drags under way
        yield
    finally:
        load.terminate()
        load.wait(timeout=30)


# the point model's mask is empty at both ends of "Location x" (no object within the radius at the image's
# edges): End / Home there would paint the same picture, so only these two sliders are keyed
FIRST_PAGE_TARGET_S = {"clevr-seg": 5.0, "acdc": 8.0}  # issue #21 (CLEVR-Seg), issue #20 (ACDC)
KEYED = ("bare page, stock st.slider", "dashboard, Location x slider")


def bench_browser(seconds: float, rounds: int, presses: int, screenshot: Path | None = None,
                  clean_start: bool = True, busy: bool = False) -> dict:
    """Real mouse drags and key presses on the dashboard and on the bare stock-slider page, alternating."""
    if chromium_path() is None:
        return {"skipped": "Chromium is not installed (apt-get install -y chromium)"}
    index, image_file = pick_sample()
    drags = {  # name -> (server, query, control, image reader)
        "bare page, stock st.slider": ("bare", "", "value", STOCK_IMAGE),
        "dashboard, Location x slider": ("app", f"?sample={index}&loc_x=-0.5&loc_y=-0.5", X, PAINTED_MASK),
        "dashboard, point on the image": ("app", f"?sample={index}&loc_x=-0.5&loc_y=-0.5", PAD, PAINTED_MASK),
        # the point model's mask changes with every move (the quadrant's does not in its dead zones)
        "dashboard point model, Location x slider": ("app", f"?sample={index}&model=clevr-seg-point-inside&loc_x=0"
                                                            "&loc_y=-0.4", X, PAINTED_MASK),
        "dashboard ACDC, phase x slice pad": ("app", "?dataset=acdc&phase=0", "Phase and slice", PAINTED_MASK),
    }
    rows: dict[str, list[dict]] = {name: [] for name in drags}
    keys: dict[str, list[float]] = {name: [] for name in drags}
    results: dict = {"sample": index}
    with streamlit_server(REPO / "benchmarks" / "bare_page.py", env={"BARE_PAGE_IMAGE": str(image_file)}) as bare, \
            streamlit_server(REPO / "app" / "main.py") as app, browser() as chromium:
        if clean_start:  # before the drags: the bundled data generated while nothing else runs
            results["first_page_clean_cache_s"] = {
                "clevr-seg": first_page_s(chromium, f"?sample={index}", X),
                "acdc": first_page_s(chromium, "?dataset=acdc", "Phase and slice")}
        urls = {"bare": bare, "app": app}
        pages = {name: open_page(chromium, urls[server] + query, control, reader)
                 for name, (server, query, control, reader) in drags.items()}
        # where the decoder is offered (a point on the image), seconds from the page's picture until it is ready
        # (ACDC's pad: each point is another image, never offered)
        results["decoder_ready_s"] = {name: decoder_ready(page, 2 if "ACDC" in name else DECODER_READY_S)
                                      for name, page in pages.items() if drags[name][0] == "app"}
        with busy_server(f"{app}?sample={(index + 1) % 10}&loc_x=0.3&loc_y=0.3", busy):
            for name, (_, _, control, reader) in drags.items():  # warm up: the first moves fill caches
                pages[name].bring_to_front()
                measure_drag(pages[name], control, reader, seconds=0.5, settle_ms=500)
            for _ in range(rounds):  # alternate, so every page sees the same machine load
                for name, (server, _, control, reader) in drags.items():
                    pages[name].bring_to_front()
                    chart = "main_attention" if server == "app" else None  # its redraws: on release only
                    line = DICE_LINE if server == "app" else None
                    rows[name].append(measure_drag(pages[name], control, reader, seconds=seconds, chart=chart,
                                                   line=line))
                    rows[name][-1]["decoded_lag_ms"] = pages[name].evaluate(DECODED_LAG)
                    if presses and name in KEYED:  # End / Home on the two sliders the key press ratio compares
                        press_keys(pages[name], control, reader, presses, keys[name])
        if screenshot:
            pages["dashboard, Location x slider"].screenshot(path=str(screenshot), full_page=True)
    results["drags"] = {name: drag_summary(rows[name], keys[name]) for name in drags}
    results["decoded_lag_ms"] = {name: [row.get("decoded_lag_ms") for row in rows[name]] for name in drags}
    bare_keys = results["drags"]["bare page, stock st.slider"]["key_press_ms_median"]
    ours_keys = results["drags"]["dashboard, Location x slider"]["key_press_ms_median"]
    results["key_press_ratio"] = round(ours_keys / bare_keys, 2) if bare_keys and ours_keys else None
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60, help="calls per model timing (default 60)")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each drag holds the button (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of drags (default 2)")
    parser.add_argument("--presses", type=int, default=6, help="End / Home presses per slider per round (default 6)")
    parser.add_argument("--skip-clean-start", action="store_true",
                        help="do not time the first page on a clean cache (it generates the bundled data)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the dashboard)")
    parser.add_argument("--skip-browser", action="store_true", help="time the models only")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--screenshot", type=Path, help="save the dashboard page after the run here (PNG)")
    parser.add_argument("--busy", action="store_true",
                        help="a second browser drags on another sample of the same server during the drags")
    parser.add_argument("--drag-forever", metavar="URL", help=argparse.SUPPRESS)  # --busy's load process
    args = parser.parse_args(argv)
    if args.drag_forever:
        drag_forever(args.drag_forever)
        return 0
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
    with decode_mode("browser"):
        results["decoder_part"] = bench_decoder_part()
    for name, row in results["decoder_part"].items():
        with_model, without = row["with_onnx"], row["without_onnx"]
        print(f"decoding in the browser, {name}: an answer's component data {row['answer_mb']} MB (the offer "
              f"{row['offer_bytes']} bytes); the decoder's part {with_model['mb']} MB with the .onnx "
              f"({with_model['onnx_mb']} MB base64; features {with_model['features_mb']}, grid "
              f"{with_model['grid_mb']}, base picture {with_model['base_mb']}), {without['mb']} MB without; "
              f"{with_model['seconds']} / {without['seconds']} s a run")
    with decode_mode("server"):  # the pictures made ahead: where the browser does not decode
        results["scrub"] = bench_scrub()
    for name, row in results["scrub"].items():
        print(f"scrubbing, {name}: {row['parts']} parts of pictures made ahead, {min(row['seconds'])}-"
              f"{max(row['seconds'])} s each (a run of the page), {row['total_mb']} MB in all "
              f"(part 0, with the exact slider steps: {row['megabytes'][0]} MB)")
    if not args.skip_browser:
        results["browser"] = found = bench_browser(args.seconds, args.rounds, args.presses, args.screenshot,
                                                   not args.skip_clean_start, args.busy)
        if "skipped" in found:
            print(f"browser: skipped, {found['skipped']}")
        else:
            for dataset, elapsed in found.get("first_page_clean_cache_s", {}).items():
                target = FIRST_PAGE_TARGET_S[dataset]
                print(f"first page on a clean cache ({dataset}): {elapsed:.1f} s to the controls and the mask "
                      f"(target <= {target:.0f} s, {'ok' if elapsed <= target else 'ABOVE TARGET'})")
            print("decoding in the browser ready, s after the page's picture (None: not offered): "
                  + ", ".join(f"{name} {ready}" for name, ready in found["decoder_ready_s"].items()))
            for name, row in found["drags"].items():
                keys = f"; key press -> new mask median {row['key_press_ms_median']} ms" if row["key_presses"] else ""
                answered = "" if row["answers_per_s_median"] is None else (
                    f" ({row['answers_per_s_median']:.1f} values/s answered, round trip median "
                    f"{row['round_trip_ms_median']} ms)")
                print(f"{name}: {row['updates_per_s_median']:.1f} distinct masks/s painted while the button is held "
                      f"{row['updates_per_s']}{answered}, final lag median {row['final_lag_ms_median']} ms "
                      f"{row['final_lag_ms']}{keys}")
                if row.get("values_painted_per_s_median") is not None:
                    print(f"  the page got {row['pointer_events_per_s_median']} pointer events/s and painted "
                          f"{row['values_painted_per_s_median']} masks/s, each a new value's; "
                          f"{row['mask_changes_painted_per_s_median']}/s of them a mask unlike the one before"
                          + ("" if row.get("mask_changes_passed_per_s_median") is None else
                             f" (the values the pointer passed through held {row['mask_changes_passed_per_s_median']}"
                             " mask changes/s: the most the drag could paint)"))
                if row["final_state_lag_ms_median"] is not None:
                    print(f"  the mask and its Dice line both final: median {row['final_state_lag_ms_median']} ms "
                          f"after the last move {row['final_state_lag_ms']} (the line: {row['final_line_lag_ms']})")
                if row["chart_after_release_ms_median"] is not None:
                    print(f"  attention chart: redrawn {row['chart_redraws_while_held']} times while held, last "
                          f"{row['chart_after_release_ms_median']} ms after the release "
                          f"{row['chart_after_release_ms']}")
            for name, rows_of in found["decoded_lag_ms"].items():
                if any(lag is not None for lag in rows_of):
                    print(f"{name}: the last move's mask decoded in the browser {rows_of} ms after it (the lag above "
                          f"runs to the last new mask: the page's exact frame where its labels differ from the "
                          f"decoded ones, else the decoded mask stays)")
            for name, row in found["drags"].items():
                if name.startswith("dashboard"):
                    lag = row["final_lag_ms_median"]
                    ok = row["updates_per_s_median"] >= 30 and lag is not None and lag <= 150
                    print(f"{name}: {'targets met' if ok else 'BELOW TARGET'} (>= 30 masks/s while held, "
                          f"final lag <= 150 ms)")
            ratio = found["key_press_ratio"]
            if ratio is not None:
                print(f"key press -> new mask, dashboard / bare page: {ratio:.2f} "
                      f"(target <= 1.2, {'ok' if ratio <= 1.2 else 'ABOVE TARGET'})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
