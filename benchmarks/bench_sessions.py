"""Server memory over many sessions: the RSS of the `streamlit run app/main.py` process while --sessions
sessions are open at once, and after they are closed (issue 23: "20 concurrent sessions raise server memory
by 2.1 GB at peak and 594 MB stays after the browsers close").

    python benchmarks/bench_sessions.py                  # 20 sessions, about 2-4 minutes on 2 busy cores
    python benchmarks/bench_sessions.py --sessions 8 --settle 10

Each session is Streamlit's own websocket protocol (what the browser speaks: connect to /_stcore/stream,
send a `rerun_script` BackMsg with the page's query string, read ForwardMsgs until `script_finished`),
not a Chromium each: 20 browsers do not fit 2 cores, and the server's memory depends on the sessions'
script runs, not on who renders them. The page's own components (live controls, charts) do not talk back,
so each session is the page as first opened. Sessions differ (dataset, model, sample), as real visitors'
do, so none is served from another's per-session state.

Steps, one run:
1. start the server; one warm-up session opened and closed (models, data and imports loaded once: shared,
   not per session); RSS = `base`;
2. --sessions sessions opened together and kept open; RSS sampled every 0.2 s: `peak`;
3. all closed; after --settle seconds, RSS = `after` (retained = after - base).
Prints a JSON line with the numbers (MB).

--probe: the server also reports, at each step, where its memory is (benchmarks/memory_probe: malloc's bytes
in use and held free, Streamlit's sessions and media files, the page's Explorers, torch storages; with
PYTHONTRACEMALLOC=1 in the environment, the lines holding the most Python/numpy memory), one JSON line each
on stderr; after the last step it calls malloc_trim(0) and reports the RSS again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamlit.components.v2.bidi_component.constants import EVENT_DELIM  # noqa: E402
from streamlit.runtime.state.session_state import STREAMLIT_INTERNAL_KEY_PREFIX  # noqa: E402

from benchmarks.browser import streamlit_server  # noqa: E402

MB = 1 << 20


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def server_pid(port: int) -> int:
    """The streamlit process serving `port` (its command line names the port)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(words) and str(port).encode() in words:
            return int(entry.name)
    raise RuntimeError(f"no streamlit process on port {port}")


def queries(count: int) -> list[str]:
    """Different pages, as different visitors open them: datasets, models and samples vary."""
    pages = []
    clevr = ["clevr-seg-quadrant-inside", "clevr-seg-quadrant-film", "clevr-seg-point-inside"]
    acdc = ["acdc-phantom-inside", "acdc-phantom-film"]
    for k in range(count):
        if k % 2:
            pages.append(f"dataset=acdc&model={acdc[k % len(acdc)]}&sample={k}")
        else:
            pages.append(f"dataset=clevr-seg&model={clevr[k % len(clevr)]}&sample={k}")
    return pages


class Session:
    """One visitor over Streamlit's websocket: opened, its script run once, kept open until closed."""

    def __init__(self, url: str, query: str):
        self.url, self.query, self.connection, self.seconds, self.errors = url, query, None, None, []
        self.parts, self.frames_bytes = 0, 0  # parts of the scrubbing pictures received, and their bytes

    async def open(self, timeout: float, parts: int) -> None:
        """Connect, run the page, then ask for `parts` parts of the scrubbing pictures as the live controls
        component does when idle (app/live_controls.py `frames_wanted`), one rerun each."""
        from tornado.websocket import websocket_connect

        start = time.monotonic()
        self.connection = await websocket_connect(self.url.replace("http", "ws") + "/_stcore/stream",
                                                  subprotocols=["streamlit"])
        component = await self._run(timeout)
        self.parts = 0
        for part in range(min(parts, component[2] if component else 0)):
            widget_id, key, _ = component
            await self._run(timeout, (widget_id, {"token": f"bench:{part + 1}", "seq": part + 1, "values": {},
                                                  "final": True, "frames": f"{key}#{part}"}))
            self.parts += 1
        self.seconds = time.monotonic() - start

    async def _run(self, timeout: float, widget: tuple | None = None) -> tuple | None:
        """One script run (with the component's value `widget` = (id, value) if given); returns the live
        controls component's (widget id, frames_key, frames_parts) as drawn, or None."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        message = BackMsg()
        message.rerun_script.query_string = self.query
        message.rerun_script.page_script_hash = ""
        if widget is not None:  # the component's "value" trigger, as its setTriggerValue sends it
            state = message.rerun_script.widget_states.widgets.add()
            state.id = f"{STREAMLIT_INTERNAL_KEY_PREFIX}_{widget[0]}{EVENT_DELIM}events"
            state.json_trigger_value = json.dumps([{"event": "value", "value": widget[1]}])
        await self.connection.write_message(message.SerializeToString(), binary=True)
        component = None
        while True:
            data = await asyncio.wait_for(self.connection.read_message(), timeout)
            if data is None:
                raise RuntimeError(f"{self.query}: the server closed the connection")
            forward = ForwardMsg()
            forward.ParseFromString(data)
            kind = forward.WhichOneof("type")
            element = forward.delta.new_element if kind == "delta" else None
            if element is not None and element.WhichOneof("type") == "exception":
                self.errors.append(element.exception.message)
            if element is not None and element.WhichOneof("type") == "bidi_component" \
                    and element.bidi_component.component_name.endswith("live_controls"):  # Components v2
                args = json.loads(element.bidi_component.json or "{}")
                if args.get("frames_key"):
                    component = (element.bidi_component.id, args["frames_key"], args["frames_parts"])
                if args.get("frames"):
                    self.frames_bytes += len(element.bidi_component.json)
            if kind == "script_finished":
                return component

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Sampler:
    """The server's RSS every `every` seconds in a thread; `peak` is the largest seen."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


async def run_sessions(url: str, pages: list[str], timeout: float, parts: int) -> list[Session]:
    sessions = [Session(url, query) for query in pages]
    await asyncio.gather(*(session.open(timeout, parts) for session in sessions))
    return sessions


async def close_all(sessions: list[Session], settle: float) -> None:
    for session in sessions:
        session.close()
    await asyncio.sleep(settle)


class Probe:
    """Asks the server's memory probe (benchmarks/memory_probe/sitecustomize.py) for a report; a no-op when off."""

    def __init__(self, path: Path | None):
        self.path, self.lines = path, []

    async def ask(self, label: str, timeout: float = 120.0) -> None:
        if self.path is None:
            return
        ask = self.path.with_name(self.path.name + ".ask")
        ask.write_text(label)
        deadline = time.monotonic() + timeout
        while ask.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        line = self.path.read_text().splitlines()[-1] if self.path.exists() else "{}"
        self.lines.append(json.loads(line))
        print(line, file=sys.stderr, flush=True)


async def _measure(url: str, pid: int, sessions: int, settle: float, timeout: float, parts: int,
                   probe: Probe) -> dict:
    started = rss_bytes(pid)
    await close_all(await run_sessions(url, queries(2), timeout, parts), settle)  # one of each dataset: shared loads
    base = rss_bytes(pid)
    await probe.ask("base")
    with Sampler(pid) as sampler:
        opened = await run_sessions(url, queries(sessions), timeout, parts)
        open_rss = rss_bytes(pid)
        await probe.ask("open")
        for session in opened:
            session.close()
    await asyncio.sleep(settle)
    after = rss_bytes(pid)
    await probe.ask("closed+trim")
    errors = [error for session in opened for error in session.errors]
    return {"sessions": sessions, "parts": parts, "settle_s": settle, "started_mb": round(started / MB),
            "base_mb": round(base / MB), "peak_mb": round(sampler.peak / MB), "open_mb": round(open_rss / MB),
            "after_mb": round(after / MB), "peak_growth_mb": round((sampler.peak - base) / MB),
            "retained_mb": round((after - base) / MB),
            "open_seconds_max": round(max(session.seconds for session in opened), 1),
            "parts_received": sum(session.parts for session in opened if session.frames_bytes),
            "frames_mb": round(sum(session.frames_bytes for session in opened) / MB, 1), "errors": errors[:3]}


def measure(sessions: int, settle: float, timeout: float, parts: int = 2, probe: bool = False) -> dict:
    env = {"INSIDE_CACHE_DIR": os.environ.get("INSIDE_CACHE_DIR") or tempfile.mkdtemp(prefix="inside-cache-")}
    report = None
    if probe:  # the probe's folder first on the server's path: Python imports its sitecustomize at start-up
        report = Path(tempfile.mkdtemp(prefix="inside-probe-")) / "probe.jsonl"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "benchmarks" / "memory_probe"), str(REPO),
                                             os.environ.get("PYTHONPATH", "")])
        env["INSIDE_MEMORY_PROBE"] = str(report)
    with streamlit_server(REPO / "app" / "main.py", env=env) as url:
        return asyncio.run(_measure(url, server_pid(int(url.rsplit(":", 1)[1])), sessions, settle, timeout,
                                    parts, Probe(report)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20, help="sessions open at once (default 20)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after closing (default 5)")
    parser.add_argument("--parts", type=int, default=2,
                        help="parts of the scrubbing pictures each session asks for, as an idle browser (default 2)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one session may take to open")
    parser.add_argument("--probe", action="store_true", help="the server reports where its memory is (stderr)")
    args = parser.parse_args()
    print(json.dumps(measure(args.sessions, args.settle, args.timeout, args.parts, args.probe)))


if __name__ == "__main__":
    main()
