"""A mouse that keeps its own pace: pointer events sent to Chromium without waiting for the page.

Playwright's `page.mouse.move` waits until the browser has dispatched the event to the page before it returns, so a
drag loop that moves every 16 ms gets one move per acknowledgement instead: on a busy machine (2 cores shared with a
second browser and the server) that was ~35 moves a second, and the benchmark measured its own hand. A real mouse
does not wait for the page: it reports where it is every 16 ms, and Chromium queues and coalesces what the page has
not handled yet. `PipelinedMouse` does the same over the DevTools protocol (`Input.dispatchMouseEvent`, the
command Playwright itself sends) on a WebSocket of its own: each event is written at once, and a thread reads the
replies. The browser must listen on a DevTools port (benchmarks/browser.py's `browser()` opens one; `devtools_port`).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request

from websockets.sync.client import connect  # Streamlit's own dependency

_PORTS: dict[int, int] = {}  # id(Playwright Browser) -> its DevTools port (benchmarks/browser.py)


def remember_port(browser, port: int) -> None:
    _PORTS[id(browser)] = port


def devtools_port(page) -> int | None:
    """The DevTools port of the browser this Playwright page lives in, or None (not opened by `browser()`)."""
    return _PORTS.get(id(page.context.browser)) if page.context.browser is not None else None


class PipelinedMouse:
    """The page's mouse, over a DevTools WebSocket of its own: `move`, `down` and `up` return at once (the
    browser receives them in order); `wait()` blocks until every event sent has been answered."""

    def __init__(self, page, port: int, timeout_s: float = 30.0) -> None:
        session = page.context.new_cdp_session(page)
        target = session.send("Target.getTargetInfo")["targetInfo"]["targetId"]
        session.detach()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout_s) as answer:
            targets = json.load(answer)
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["id"] == target)
        self._socket = connect(url, max_size=None, open_timeout=timeout_s)
        self._ids = itertools.count(1)
        self._sent = 0
        self._answered = 0
        self._errors: list[str] = []
        self._done = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.x = self.y = 0.0
        self.pressed = False

    def _read(self) -> None:
        try:
            for message in self._socket:
                reply = json.loads(message)
                if "id" not in reply:
                    continue
                with self._done:
                    self._answered += 1
                    if "error" in reply:
                        self._errors.append(str(reply["error"]))
                    self._done.notify_all()
        except Exception:  # noqa: BLE001 (the socket closed: nothing more will come)
            with self._done:
                self._done.notify_all()

    def _send(self, kind: str, **extra) -> None:
        params = {"type": kind, "x": self.x, "y": self.y, "button": "left" if self.pressed or kind != "mouseMoved"
                  else "none", "buttons": 1 if self.pressed else 0, "clickCount": 1 if kind != "mouseMoved" else 0}
        params.update(extra)
        self._socket.send(json.dumps({"id": next(self._ids), "method": "Input.dispatchMouseEvent", "params": params}))
        self._sent += 1

    def move(self, x: float, y: float) -> None:
        self.x, self.y = float(x), float(y)
        self._send("mouseMoved")

    def down(self) -> None:
        self.pressed = True
        self._send("mousePressed", buttons=1)

    def up(self) -> None:
        self.pressed = False
        self._send("mouseReleased", buttons=0, button="left")

    def wait(self, timeout_s: float = 30.0) -> None:
        """Until the browser has answered every event sent (RuntimeError if one failed)."""
        deadline = time.monotonic() + timeout_s
        with self._done:
            while self._answered < self._sent and time.monotonic() < deadline:
                self._done.wait(timeout=0.1)
        if self._errors:
            raise RuntimeError(f"the browser refused a mouse event: {self._errors[0]}")

    def close(self) -> None:
        self._socket.close()
        self._reader.join(timeout=5)
