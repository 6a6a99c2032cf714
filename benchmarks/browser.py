"""Helpers to drive a Streamlit page in headless Chromium: start a server, open a browser, time a slider.

Used by benchmarks/bench_dashboard.py and tests/test_browser.py. Playwright drives Debian's Chromium
(`apt-get install chromium`) through `executable_path`, since `playwright install` cannot download
browsers on these machines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from benchmarks.hand import remember_port

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REPO = Path(__file__).resolve().parents[1]


def chromium_path() -> str | None:
    """Debian's Chromium, or None if it is not installed."""
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(script: str | Path, env: dict | None = None, timeout: float = 180.0,
                     cwd: Path = REPO, module: str = "streamlit") -> Iterator[str]:
    """Run `streamlit run script` headless on a free localhost port (in `cwd`: this checkout); yields its URL;
    stops it afterwards. `module`: what `python -m` runs (benchmarks/first_page.py's tracing launcher
    passes itself; it takes "serve" and then streamlit's arguments)."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="streamlit-", suffix=".log", delete=False)
    launcher = ["streamlit"] if module == "streamlit" else [module, "serve"]
    command = [sys.executable, "-m", *launcher, "run", str(script), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                tail = Path(log.name).read_text()[-2000:]
                raise RuntimeError(f"streamlit exited with {process.returncode}; log: {tail}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not start within {timeout:.0f} s")
            time.sleep(0.25)
        yield url
    finally:
        # the server was started in its own session: stop exactly that process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()
        os.unlink(log.name)


@contextlib.contextmanager
def browser() -> Iterator[object]:
    """A headless Chromium (Playwright Browser); RuntimeError if Chromium is missing."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("Chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        port = free_port()  # a DevTools port too, for benchmarks/hand.py's mouse that does not wait for the page
        instance = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=[*CHROMIUM_FLAGS, f"--remote-debugging-port={port}"])
        remember_port(instance, port)
        try:
            yield instance
        finally:
            instance.close()


@contextlib.contextmanager
def dashboard_in_browser(decode: str) -> Iterator[tuple[object, str]]:
    """(Chromium, the dashboard's URL): app/main.py served with $INSIDE_DASHBOARD_DECODE=`decode` ("browser" or
    "server"), for tests that open pages of it."""
    with streamlit_server(REPO / "app" / "main.py", env={"INSIDE_DASHBOARD_DECODE": decode}) as url, \
            browser() as chromium:
        yield chromium, url


# ----------------------------------------------------------------------------------- page probes

# Records the time of every key press (capture phase, before any handler) on the page's clock.
INSTALL_KEY_CLOCK = """() => {
  if (window.__keyClock) return;
  window.__keyClock = {pressed: null, done: null};
  document.addEventListener('keydown', () => { window.__keyClock.pressed = performance.now(); }, true);
}"""

# Every plotly chart on the page (st.plotly_chart's divs), as {stamp, names}: plotly gives the div a new
# _fullData on every redraw (Plotly.react / newPlot), and a chart mounted again is a new div, so identity of
# `stamp` tells an update apart.
CHARTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(p => p._fullData)
    .map(p => ({stamp: p._fullData, names: p._fullData.map(t => t.name)}))"""

# A snapshot of what a redraw changes: the first image's src and every chart's stamp.
SNAPSHOT = """() => {
  const image = document.querySelector('[data-testid="stMain"] [data-testid="stImage"] img')
      || document.querySelector('[data-testid="stImage"] img');
  const charts = (__CHARTS__)();
  window.__before = {src: image ? image.src : null, stamps: charts.map(c => c.stamp),
                     attention: charts.findIndex(c => c.names.includes('μ'))};
  window.__keyClock.done = null;
  return {src: window.__before.src, plots: charts.length, attention: window.__before.attention};
}""".replace("__CHARTS__", CHARTS)

# True (and the time noted) once the page shows the new state:
# - what="image": the first image has a new src, loaded (the bare page: every move changes it);
# - what="attention" / "all": the attention chart (or every chart) has been redrawn and the first image
#   is loaded. Streamlit applies an app's deltas in script order and the dashboard draws the mask before
#   the attention, so by then the mask image is final: new if the mask changed, else the same.
REDRAWN = """(what) => {
  const before = window.__before;
  const image = document.querySelector('[data-testid="stMain"] [data-testid="stImage"] img')
      || document.querySelector('[data-testid="stImage"] img');
  if (!image || !image.complete || image.naturalWidth === 0) return false;
  const charts = (__CHARTS__)();
  if (what === 'image' && image.src === before.src) return false;
  if (what === 'attention') {
    const chart = charts[before.attention];
    if (before.attention < 0 || !chart || chart.stamp === before.stamps[before.attention]) return false;
  }
  if (what === 'all') {
    if (charts.length < before.stamps.length) return false;
    for (let i = 0; i < before.stamps.length; i++) if (charts[i].stamp === before.stamps[i]) return false;
  }
  if (window.__keyClock.done === null) {
    window.__keyClock.done = performance.now();
    window.__keyClock.imageChanged = image.src !== before.src;
  }
  return true;
}""".replace("__CHARTS__", CHARTS)

# True once the page shows a loaded image and at least `plots` drawn charts.
READY = """(plots) => {
  const image = document.querySelector('[data-testid="stImage"] img');
  return image && image.complete && image.naturalWidth > 0 && (__CHARTS__)().length >= plots;
}""".replace("__CHARTS__", CHARTS)


def time_key_press(page, slider_label: str, key: str, what: str = "image", timeout_ms: float = 20000) -> float:
    """Milliseconds from pressing `key` on the slider labelled `slider_label` until the page shows
    the new state (see REDRAWN). `page.evaluate("window.__keyClock.imageChanged")` then says whether
    the image changed."""
    page.evaluate(INSTALL_KEY_CLOCK)
    page.evaluate(SNAPSHOT)
    slider = page.locator(f'input[type="range"][aria-label="{slider_label}"]').first
    slider.focus()
    slider.press(key)
    page.wait_for_function(REDRAWN, arg=what, polling=5, timeout=timeout_ms)
    return float(page.evaluate("() => window.__keyClock.done - window.__keyClock.pressed"))


def wait_for_page(page, url: str, timeout_ms: float = 180000, plots: int = 0) -> None:
    """Open `url` and wait until a slider, a loaded image and `plots` plotly figures are on the page."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector('input[type="range"]', timeout=timeout_ms)
    page.wait_for_function(READY, arg=plots, timeout=timeout_ms)
    page.wait_for_timeout(500)  # let the first render settle
