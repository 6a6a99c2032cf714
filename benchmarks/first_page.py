"""Where the seconds of the first page on a clean cache go: a timeline of one clean start per dataset.

    python benchmarks/first_page.py                       # CLEVR-Seg and ACDC, one clean start each
    python benchmarks/first_page.py --dataset acdc --runs 3 --profile /tmp/acdc.prof
    git archive main | tar -x -C /tmp/old && python benchmarks/first_page.py --other /tmp/old --runs 3 --quiet

Measured as benchmarks/bench_dashboard.py's clean-start part does: a new $INSIDE_CACHE_DIR (the bundled data
not generated yet), `streamlit run app/main.py`, and the clock starts when the healthy server's page is
opened in headless Chromium and stops when the controls and the predicted mask are on it. The server runs
through this file (`python -m benchmarks.first_page serve ...`), which notes, on the same epoch clock as
the browser, when the first script run starts and ends, when the heavy libraries are first imported
(torch, plotly, scipy, monai, nibabel, matplotlib...), and when the page's big steps (bundled data, source,
model, first decode) start and end, and when the bundled data's folder was renamed into place (by the
page's process or the one app/bundled_data.py starts). The browser side notes the first paint of the title,
of the sidebar's "Dataset" box, of the control and of the mask. --profile writes the first script run's cProfile stats
(read with `python -m pstats FILE`). The tracing wraps functions and watches imports; it changes nothing
the page does. --other CHECKOUT: clean starts alternate between this checkout's page and that one's (same load).
--overlap: no page; `import torch` alone and beside inside_core/data/background.py (this checkout's, and
--other's), the two halves the page's first start runs at once (app/bundled_data.py).
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TRACE_ENV = "INSIDE_FIRST_PAGE_TRACE"  # file the server appends its events to (JSON lines)
PROFILE_ENV = "INSIDE_FIRST_PAGE_PROFILE"  # file for the first script run's cProfile stats
LIBRARIES = ("torch", "plotly", "scipy", "monai", "nibabel", "matplotlib", "PIL", "pandas", "safetensors")
# (module, function): the page's big steps, timed when their module is first imported
STEPS = (("app.loading", "default_data_dir"), ("app.bundled_data", "wait"), ("app.loading", "load_source"),
         ("app.loading", "load_model"), ("app.live_area", "decoded"), ("app.views", "conditioning_panel"),
         ("app.views", "mask_panel"), ("app.live_area", "live_slot"), ("app.controls", "draw_live_controls"),
         ("app.views", "explore_rest"), ("app.volume_view", "volume_area"))
CONTROLS = {"clevr-seg": ("", "Location x (left → right)"), "acdc": ("?dataset=acdc", "Phase and slice")}


# ------------------------------------------------------------------------------------------ server side


def _note(event: str, **extra) -> None:
    with open(os.environ[TRACE_ENV], "a") as trace:
        trace.write(json.dumps({"t": time.time(), "event": event, **extra}) + "\n")


class _ImportWatch(importlib.abc.MetaPathFinder):
    """Notes the first import of each library in LIBRARIES (start and end) and wraps STEPS' functions."""

    def find_spec(self, name, path=None, target=None):
        watched = name in LIBRARIES or any(name == module for module, _ in STEPS)
        if not watched:
            return None
        sys.meta_path.remove(self)  # find the real spec, then watch its loading
        try:
            import importlib.util
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader, exec_module = spec.loader, spec.loader.exec_module

        def timed_exec(module):
            _note(f"import {name}", phase="start")
            exec_module(module)
            _note(f"import {name}", phase="end")
            for owner, function in STEPS:
                if owner == name and hasattr(module, function):
                    setattr(module, function, _timed(f"{owner}.{function}", getattr(module, function)))

        loader.exec_module = timed_exec
        return spec


def _timed(label: str, function):
    def wrapper(*args, **kwargs):
        _note(label, phase="start")
        try:
            return function(*args, **kwargs)
        finally:
            _note(label, phase="end")

    wrapper.__wrapped__ = function
    for attribute in ("clear", "__name__", "__qualname__", "__doc__"):
        if hasattr(function, attribute):
            setattr(wrapper, attribute, getattr(function, attribute))
    return wrapper


def serve(streamlit_args: list[str]) -> None:
    """Run `streamlit <args>` in this process with the tracing installed."""
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.web import cli

    sys.path.remove(str(REPO))  # this file's own insert: the served checkout's PYTHONPATH decides
    sys.meta_path.insert(0, _ImportWatch())
    original, runs = script_runner.ScriptRunner._run_script, []

    def run_script(self, rerun_data):
        runs.append(None)
        _note("script run", phase="start", run=len(runs))
        profile = None
        if len(runs) == 1 and os.environ.get(PROFILE_ENV):
            import cProfile
            profile = cProfile.Profile()
            profile.enable()
        try:
            return original(self, rerun_data)
        finally:
            if profile is not None:
                profile.disable()
                profile.dump_stats(os.environ[PROFILE_ENV])
            _note("script run", phase="end", run=len(runs))

    script_runner.ScriptRunner._run_script = run_script
    _note("server process")
    sys.argv = ["streamlit", *streamlit_args]
    cli.main()


# ----------------------------------------------------------------------------------------- browser side

# first time each of these is on the page (epoch ms), polled every animation frame
MILESTONES = """() => {
  const found = {
    title: () => [...document.querySelectorAll('h1')].some(h => h.textContent.includes('INSIDE Explorer')),
    sidebar: () => !!document.querySelector('[data-testid="stSidebar"] [data-testid="stSelectbox"]'),
    spinner: () => !!document.querySelector('[data-testid="stSpinner"]'),
  };
  window.__milestones = {};
  const look = () => {
    for (const [name, test] of Object.entries(found)) {
      if (!(name in window.__milestones) && test()) {
        window.__milestones[name] = performance.timeOrigin + performance.now();
      }
    }
    requestAnimationFrame(look);
  };
  document.addEventListener('DOMContentLoaded', () => {
    window.__milestones.dom = performance.timeOrigin + performance.now();
  });
  look();
}"""


def clean_start(chromium, dataset: str, profile: Path | None, checkout: Path = REPO) -> dict:
    """One clean start of `checkout`'s page: the timeline as (seconds from opening the page, event)."""
    from benchmarks.bench_live_drag import PREDICTED_MASK, find_control
    from benchmarks.browser import streamlit_server

    query, control = CONTROLS[dataset]
    with tempfile.TemporaryDirectory(prefix="inside-clean-cache-") as cache:
        trace = Path(cache).parent / f"{Path(cache).name}.trace"
        # `checkout` first on the path: its app/ and inside_core/; this file's launcher (benchmarks/ is a
        # namespace package, so benchmarks.first_page is found here when the checkout lacks it)
        path = os.pathsep.join((str(checkout), str(REPO)))
        env = {"INSIDE_CACHE_DIR": cache, TRACE_ENV: str(trace), "PYTHONPATH": path}
        if profile:
            env[PROFILE_ENV] = str(profile)
        with streamlit_server(checkout / "app" / "main.py", env=env, module="benchmarks.first_page",
                              cwd=checkout) as url:
            page = chromium.new_page(viewport={"width": 1200, "height": 1000})
            page.add_init_script(f"({MILESTONES})();")  # a script, not an expression: call it
            opened = time.time()
            page.goto(url + query, wait_until="commit")
            seen: dict[str, float] = {}
            while "mask" not in seen:
                now = time.time()
                if "control" not in seen:
                    try:
                        find_control(page, control)
                        seen["control"] = now
                    except LookupError:
                        pass
                if page.evaluate(f"() => ({PREDICTED_MASK})() !== null"):
                    seen["mask"] = now
                if now - opened > 300:
                    raise TimeoutError(f"{dataset}: no control and mask within 300 s")
                page.wait_for_timeout(20)
            marks = page.evaluate("() => window.__milestones") or {}
            page.close()
        # when each bundled dataset was renamed into place (written by this process or another one)
        datasets = Path(cache) / "datasets"
        placed = [(folder.stat().st_ctime, folder.name) for folder in datasets.iterdir()] if datasets.is_dir() else []
        events = [json.loads(line) for line in trace.read_text().splitlines()]
        trace.unlink()
    timeline = [(round(e["t"] - opened, 3), e["event"] + (f" {e['phase']}" if "phase" in e else "")
                 + (f" #{e['run']}" if "run" in e else "")) for e in events]
    timeline += [(round(t / 1000 - opened, 3), f"browser: {name}") for name, t in marks.items()]
    timeline += [(round(t - opened, 3), f"browser: {name} on the page (polled)") for name, t in seen.items()]
    timeline += [(round(t - opened, 3), f"bundled data in place: {name}") for t, name in placed]
    return {"total_s": round(seen["mask"] - opened, 2), "timeline": sorted(timeline)}


def measure(datasets: list[str], runs: int, profile: Path | None, other: Path | None = None) -> dict:
    """{label: [clean start, ...]}, label "<dataset>" (or "<dataset> this" / "<dataset> other" with `other`)."""
    from benchmarks.browser import browser

    checkouts = {"this": REPO, "other": other.resolve()} if other else {"": REPO}
    results: dict = {f"{name} {c}".strip(): [] for name in datasets for c in checkouts}
    with browser() as chromium:
        for run in range(runs):
            for dataset in datasets:  # alternate, so all see the same load
                for c, checkout in checkouts.items():
                    label = f"{dataset} {c}".strip()
                    where = profile.with_name(f"{profile.stem}-{label.replace(' ', '-')}-{run}{profile.suffix}") \
                        if profile else None
                    results[label].append(clean_start(chromium, dataset, where, checkout))
    return results


def overlap(datasets: list[str], runs: int, other: Path | None = None) -> dict:
    """The two halves of a clean start that app/bundled_data.py runs at once, without the page: `import
    torch` (as the page does, in a fresh process) alone, and beside inside_core/data/background.py writing
    the dataset into a new cache (this checkout's, and `other`'s when given). {label: [(import s, data s)]}."""
    import subprocess

    checkouts = {"this": REPO, **({"other": other.resolve()} if other else {})}
    results: dict = {}
    for _ in range(runs):
        for dataset in datasets:
            for label, checkout in [("alone", REPO), *checkouts.items()]:
                env = {**os.environ, "PYTHONPATH": str(checkout)}
                with tempfile.TemporaryDirectory(prefix="inside-clean-cache-") as cache:
                    start = time.time()
                    child = None if label == "alone" else subprocess.Popen(
                        [sys.executable, str(checkout / "inside_core" / "data" / "background.py"), dataset],
                        env={**env, "INSIDE_CACHE_DIR": cache})
                    subprocess.run([sys.executable, "-c", "import inside_core.threads, torch"], env=env, check=True)
                    imported = time.time() - start
                    if child is not None and child.wait() != 0:
                        raise RuntimeError(f"{checkout}: background.py {dataset} failed")
                    results.setdefault(f"{dataset} {label}", []).append((round(imported, 2),
                                                                          round(time.time() - start, 2)))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the server, started by clean_start through benchmarks/browser.py
        serve(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--dataset", choices=sorted(CONTROLS), action="append",
                        help="which first page (repeat for both; default both)")
    parser.add_argument("--runs", type=int, default=1, help="clean starts per dataset, alternating (default 1)")
    parser.add_argument("--profile", type=Path, help="write each first script run's cProfile stats next to FILE")
    parser.add_argument("--other", type=Path, help="another checkout: alternate clean starts with its page")
    parser.add_argument("--json", type=Path, help="write the timelines here as JSON")
    parser.add_argument("--quiet", action="store_true", help="print only the totals")
    parser.add_argument("--overlap", action="store_true",
                        help="no page: time `import torch` alone and beside the bundled data's process")
    args = parser.parse_args(argv)
    if args.overlap:
        for label, pairs in overlap(args.dataset or ["clevr-seg", "acdc"], args.runs, args.other).items():
            print(f"{label}: import torch {[i for i, _ in pairs]} s, both done {[d for _, d in pairs]} s "
                  f"(load {os.getloadavg()[0]:.1f} at the end)")
        return 0
    results = measure(args.dataset or ["clevr-seg", "acdc"], args.runs, args.profile, args.other)
    for dataset, starts in results.items():
        for start in starts if not args.quiet else []:
            print(f"\n{dataset}: {start['total_s']:.2f} s to the controls and the mask")
            for at, event in start["timeline"]:
                print(f"  {at:7.3f}  {event}")
        totals = [start["total_s"] for start in starts]
        print(f"{dataset}: first page on a clean cache {statistics.median(totals):.2f} s (median of {totals})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
