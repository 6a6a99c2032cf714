"""The decoder in the browser (issue 21, item 2): ONNX Runtime Web (WebAssembly) in headless Chromium, per move.

    python benchmarks/browser_decoder.py                  # both shipped models, 1 and 2 threads, quiet and busy
    python benchmarks/browser_decoder.py --moves 120 --threads 1 --no-busy

For `clevr-seg-quadrant-inside` and `acdc-phantom-inside` on the first test sample of the bundled data:
1. exports the per-move decode (inside_core.onnx_decoder) and writes the kept encoder features (float32) and
   the torch reference for a few z values to a temporary folder, with onnxruntime-web's wasm build;
2. serves it with a local http.server sending the cross-origin isolation headers (COOP/COEP: without them
   there is no SharedArrayBuffer and ONNX Runtime Web runs on one thread whatever it is asked);
3. per (model, threads, load), a fresh browser context: times loading ONNX Runtime and the model (import,
   wasm fetch + compile, session creation), checks the browser's logits against torch's (max abs diff, arg-max
   labels identical), then decodes a drag's sequence of z values one after the other (as a drag would: the next
   move waits for the last mask) and reports ms per decode (median, p90): `session.run` alone, and with the
   labels (arg-max / threshold) painted into a canvas at the model's size; and how long the page's own thread
   is blocked meanwhile (gaps between 4-ms timer ticks: what a key press would wait). Each thread count runs on
   the page's thread, and one thread runs in a web worker (`ort.env.wasm.proxy`: the page stays free);
4. "busy": the same with two `python -c "while 1: pass"` processes at nice 0 (both of 2 cores taken).
Also prints the bytes to ship: the .wasm + .mjs (raw and gzip -9), each .onnx, each image's features as float32
and float16, and whether float16 features (sent as half, run as float32) give the same mask (Python, ORT).

onnxruntime-web's three files are the dashboard's committed copy (app/static/ort/), or else come from npm into
$INSIDE_NODE_TOOLS/ort-web (default ~/.cache/inside-explorer-node-tools), installed on first use. Needs onnx,
onnxscript and onnxruntime (pip), Playwright and Debian's Chromium.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import http.server
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

ORT_VERSION = "1.31.1"
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
MODELS = {"clevr-seg-quadrant-inside": "clevr-seg", "acdc-phantom-inside": "acdc"}

PAGE = """<!doctype html><meta charset="utf-8"><canvas id="mask"></canvas>
<script type="module">
window.bench = async (name, threads, zs, checks, proxy) => {
  const t0 = performance.now();
  const ort = await import('./ort.wasm.min.mjs');
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = './';
  ort.env.wasm.proxy = proxy;  // in a web worker: the page's thread stays free
  const manifest = await (await fetch(`${name}.json`)).json();
  const blob = await (await fetch(`${name}.features.bin`)).arrayBuffer();
  const session = await ort.InferenceSession.create(`${name}.onnx`, {executionProviders: ['wasm']});
  const loadMs = performance.now() - t0;
  const feeds = {};
  const setFeatures = () => {  // the worker (proxy) takes the buffers it is sent: a fresh copy per decode there
    for (const [key, [offset, shape]] of Object.entries(manifest.inputs)) {
      const view = new Float32Array(blob, offset, shape.reduce((a, b) => a * b, 1));
      feeds[key] = new ort.Tensor('float32', proxy ? view.slice() : view, shape);
    }
  };
  setFeatures();
  const [, k, h, w] = manifest.logits;
  const canvas = document.getElementById('mask'); canvas.width = w; canvas.height = h;
  const context = canvas.getContext('2d'); const image = context.createImageData(w, h);
  const labels = new Uint8Array(h * w);
  const decode = async (z) => {
    if (proxy) setFeatures();
    feeds.z = new ort.Tensor('float32', Float32Array.from(z), [1, z.length]);
    const out = await session.run(feeds);
    const ran = performance.now();
    const logits = out.logits.data, n = h * w;
    for (let i = 0; i < n; i++) {  // the mask: logit > 0 (sigmoid > 0.5) for one class, else the arg-max
      let best = 0;
      if (k === 1) best = logits[i] > 0 ? 1 : 0;
      else for (let c = 1; c < k; c++) if (logits[c * n + i] > logits[best * n + i]) best = c;
      labels[i] = best;
      const p = 4 * i; image.data[p] = best ? 230 : 0; image.data[p + 1] = best * 60; image.data[p + 2] = 0;
      image.data[p + 3] = best ? 140 : 0;
    }
    context.putImageData(image, 0, 0);
    return {out, ran, painted: performance.now()};
  };
  const check = [];
  for (const [z, reference] of checks) {
    const ref = new Float32Array(await (await fetch(reference)).arrayBuffer());
    const {out} = await decode(z);
    let diff = 0, same = true;
    for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(ref[i] - out.logits.data[i]));
    const n = h * w;
    for (let i = 0; i < n; i++) {
      let best = 0;
      if (k === 1) best = ref[i] > 0 ? 1 : 0;
      else for (let c = 1; c < k; c++) if (ref[c * n + i] > ref[best * n + i]) best = c;
      if (best !== labels[i]) { same = false; break; }
    }
    check.push({diff, same});
  }
  const run = [], work = [], total = [], gaps = [];
  let tick = performance.now();  // how long the page's own thread is blocked: the gaps between 4-ms timer ticks
  const timer = setInterval(() => { const now = performance.now(); gaps.push(now - tick); tick = now; }, 4);
  for (const z of zs) {
    const start = performance.now();
    const {ran, painted} = await decode(z);
    await new Promise(requestAnimationFrame);  // the mask on screen (next frame, 60 Hz) before the next move
    run.push(ran - start); work.push(painted - start); total.push(performance.now() - start);
  }
  clearInterval(timer);
  return {loadMs, check, run, work, total, gaps, isolated: self.crossOriginIsolated};
};
window.ready = true;
</script>"""


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the cross-origin isolation headers (SharedArrayBuffer, hence wasm threads)."""

    isolated = True  # False: as Streamlit's server sends pages (no SharedArrayBuffer: one wasm thread only)

    def end_headers(self) -> None:
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


def ort_dist() -> Path:
    """onnxruntime-web's files: the dashboard's committed copy (app/static/ort/), else the npm package installed into
    the node tools cache on first use."""
    shipped = REPO / "app" / "static" / "ort"
    if all((shipped / name).exists() for name in ORT_FILES):
        return shipped
    tools = Path(os.environ.get("INSIDE_NODE_TOOLS", Path.home() / ".cache" / "inside-explorer-node-tools"))
    prefix = tools / "ort-web"  # its own prefix: an install elsewhere would prune the type checker's packages
    dist = prefix / "node_modules" / "onnxruntime-web" / "dist"
    if not (dist / ORT_FILES[1]).exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix),
                        f"onnxruntime-web@{ORT_VERSION}"], check=True, stdout=subprocess.DEVNULL)
    return dist


def drag_zs(dataset: str, moves: int) -> list[list[float]]:
    """A drag's z values: CLEVR-Seg's location slider from left to right through the quadrants' blend, or the
    ACDC pad from (ED, base) to (ES, apex) along a diagonal."""
    from inside_core.conditions.base import quadrant_blend

    t = np.linspace(0.0, 1.0, moves)
    if dataset == "clevr-seg":
        return [[float(v) for v in quadrant_blend(-1 + 2 * s, -0.6)] for s in t]
    return [[float(s), float(s)] for s in t]


def prepare(folder: Path, name: str, dataset: str, moves: int) -> tuple[dict, list, list]:
    """Export, features and torch references for `name` into `folder`: (sizes, drag zs, checks)."""
    import onnxruntime as ort

    from inside_core.checkpoints import load_checkpoint
    from inside_core.data.defaults import default_data_dir
    from inside_core.data.registry import dataset_kind
    from inside_core.explorer import Explorer
    from inside_core.onnx_decoder import export_decoder, feature_inputs

    model = load_checkpoint(REPO / "checkpoints" / f"{name}.safetensors").eval()
    sample = dataset_kind(dataset).load(default_data_dir(dataset), "test", image_size=model.image_size[0])[0]
    explorer = Explorer(model, sample["image"], sample["mask"])
    spec = export_decoder(explorer, folder / f"{name}.onnx")
    zs = drag_zs(dataset, moves)
    feeds = feature_inputs(explorer, zs[0])
    offsets, blob = {}, b""
    for key, array in feeds.items():
        if key != "z":
            offsets[key] = [len(blob), list(array.shape)]
            blob += array.astype(np.float32).tobytes()
    (folder / f"{name}.features.bin").write_bytes(blob)
    checks, half_same = [], True
    session = ort.InferenceSession(str(folder / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    for i, z in enumerate(zs[:: max(1, len(zs) // 4)]):
        with torch.inference_mode():
            logits = model.decode(explorer.features, torch.tensor([z])).logits.numpy()
        (folder / f"{name}.ref{i}.bin").write_bytes(logits.astype(np.float32).tobytes())
        checks.append([z, f"{name}.ref{i}.bin"])
        half = {k: (v if k == "z" else v.astype(np.float16).astype(np.float32))
                for k, v in feature_inputs(explorer, z).items()}
        labels = session.run(["logits"], half)[0].argmax(1) if logits.shape[1] > 1 else \
            session.run(["logits"], half)[0] > 0
        half_same &= bool(np.array_equal(labels, logits.argmax(1) if logits.shape[1] > 1 else logits > 0))
    (folder / f"{name}.json").write_text(json.dumps({"inputs": offsets, "logits": list(logits.shape)}))
    sizes = {"onnx": (folder / f"{name}.onnx").stat().st_size, "float32": len(blob), "float16": len(blob) // 2,
             "float16_same_masks": half_same, "inputs": spec.inputs}
    return sizes, zs, checks


@contextlib.contextmanager
def busy_cores(count: int):
    """`count` spinning Python processes at nice 0 (stopped by their own ids afterwards)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for process in spinners:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(r: dict) -> str:
    """One run's line: load time, ms per decode (run; run + mask painted; until the next frame), masks/s, check."""
    def ms(key: str) -> str:
        return f"{statistics.median(r[key]):.1f} / {percentile(r[key], 0.9):.1f}"

    rate = len(r["total"]) / (sum(r["total"]) / 1000)
    return (f"load {r['loadMs']:.0f} ms; ms median / p90: decode {ms('run')}, decode + mask {ms('work')}, "
            f"to the next frame {ms('total')} ({rate:.0f} masks/s); page thread blocked p90 / max "
            f"{percentile(r['gaps'], 0.9):.0f} / {max(r['gaps']):.0f} ms; max |logits - torch| "
            f"{max(c['diff'] for c in r['check']):.1e}, masks identical {all(c['same'] for c in r['check'])}, "
            f"cross-origin isolated {r['isolated']}")


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def ship_line(dist: Path) -> str:
    sizes = [f"{f} {(dist / f).stat().st_size / 1e6:.2f} MB (gzip "
             f"{len(gzip.compress((dist / f).read_bytes(), 9)) / 1e6:.2f})" for f in ORT_FILES]
    return f"to ship, onnxruntime-web {ORT_VERSION}: " + ", ".join(sizes)


def configurations(thread_counts: list[int], worker: bool) -> list[tuple[str, int, bool]]:
    """(label, wasm threads, in a worker): each thread count on the page's thread, and one thread in a worker."""
    runs = [(f"{t} thread(s)", t, False) for t in thread_counts]
    return runs + ([("worker, 1 thread", 1, True)] if worker else [])


def measure(url: str, loads: list[str], runs: list, prepared: dict) -> dict:
    """{(load, model, label): the page's result}, each in a fresh browser context (nothing cached)."""
    from browser import browser

    results = {}
    with browser() as chromium:
        for load in loads:
            with busy_cores(2) if load == "busy" else contextlib.nullcontext():
                for name, (zs, checks) in prepared.items():
                    for label, threads, proxy in runs:
                        context = chromium.new_context()
                        page = context.new_page()
                        page.goto(url)
                        page.wait_for_function("window.ready === true")
                        r = page.evaluate("([n, t, zs, c, p]) => window.bench(n, t, zs, c, p)",
                                          [name, threads, zs, checks, proxy])
                        context.close()
                        results[(load, name, label)] = r
                        print(f"{load:5s} {name} {label}: {summary(r)}; load average {load_average()}")
    return results


def print_ratios(results: dict, loads: list[str], runs: list, names: list[str]) -> None:
    def work(key: tuple) -> float:
        return statistics.median(results[key]["work"])

    labels = [label for label, _, _ in runs]
    for name in names:
        for load in loads:
            for label in labels[1:]:
                ratio = work((load, name, label)) / work((load, name, labels[0]))
                print(f"ratio of decode + mask medians, {name} {load}: {label} / {labels[0]} = {ratio:.2f}")
        if "busy" in loads:
            for label in labels:
                ratio = work(("busy", name, label)) / work(("quiet", name, label))
                print(f"ratio of decode + mask medians, {name} {label}: busy / quiet = {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--moves", type=int, default=90, help="decodes per drag (default 90: 3 s at 30/s)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="wasm threads (default 1 2)")
    parser.add_argument("--no-busy", action="store_true", help="skip the runs with both cores busy")
    parser.add_argument("--no-isolation", action="store_true",
                        help="serve without the cross-origin isolation headers, as Streamlit does")
    parser.add_argument("--no-worker", action="store_true",
                        help="skip the run with ONNX Runtime in a web worker (ort.env.wasm.proxy, 1 thread)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    dist = ort_dist()
    print(f"load average at the start {load_average()}")
    with tempfile.TemporaryDirectory(prefix="browser-decoder-") as tmp:
        folder = Path(tmp)
        for file in ORT_FILES:
            shutil.copy(dist / file, folder / file)
        (folder / "index.html").write_text(PAGE)
        print(ship_line(dist))
        prepared = {}
        for name in args.models:
            sizes, zs, checks = prepare(folder, name, MODELS[name], args.moves)
            prepared[name] = (zs, checks)
            print(f"{name}: .onnx {sizes['onnx'] / 1e3:.0f} kB; features per image {sizes['float32'] / 1e6:.3f} MB "
                  f"float32, {sizes['float16'] / 1e6:.3f} MB float16 (same masks with float16 features: "
                  f"{sizes['float16_same_masks']}); inputs {sizes['inputs']}")
        IsolatedHandler.isolated = not args.no_isolation
        handler = functools.partial(IsolatedHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        loads = ["quiet"] + ([] if args.no_busy else ["busy"])
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
            runs = configurations(args.threads, not args.no_worker)
            results = measure(url, loads, runs, prepared)
        finally:
            server.shutdown()
        print_ratios(results, loads, runs, args.models)


if __name__ == "__main__":
    main()
