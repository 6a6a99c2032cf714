"""The pictures to scrub made outside the script run: a per-session thread makes a sample's parts in order.

Why: made inside the run that answers the component's request (0.3-1.9 s a part here), the controls' element
was marked stale for that long (Streamlit fades an element still stale 0.5 s into a run, and shows
"Running..."), on every page and sample opened, while nobody touched it. Here the parts are made by a thread
as soon as the page names them (`Ahead.follow`, from the controls' run); the component asks only for parts
already made (`RenderArgs.frames_ready`), so the run that answers it ships bytes and is short. It asks for
the first part not made yet now and then, to learn what is ready; that run does not wait for it either.

The thread is handed the run's ScriptRunContext (the parts ask the session's caches of display pictures,
app/loading.py); it draws no element. It waits while a control is held (`hold`; not for `Scrub.eager` parts, the
page's own frames), is told to stop when the
page names other pictures or the session is released, and takes its turn with other sessions' parts
(`loading.taking_turns`). $INSIDE_DASHBOARD_AHEAD=0 makes each part in the run that asks for it, as before.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from app.protocol import FramesPart, Scrub

PUSH_BYTES = 1_500_000  # the most of a part sent with a held value's answer (ACDC's first part: 1.2 MB)


def _size(part: FramesPart) -> int:
    """About the bytes of a part as sent: its pictures' data URIs."""
    return sum(len(point[2]) for point in part.get("points", ())) + sum(
        len(src) for strip in part.get("strips", {}).values() for src in strip["images"])


def enabled() -> bool:
    """Whether parts are made by the session's thread ($INSIDE_DASHBOARD_AHEAD, default on)."""
    return os.environ.get("INSIDE_DASHBOARD_AHEAD", "1") != "0"


class Ahead:
    """One Scrub's parts, made in order by a thread of their own."""

    def __init__(self, scrub: Scrub, context: Any = None) -> None:
        self.key, self.parts, self.eager = scrub.key, scrub.parts, scrub.eager
        self.made: dict[int, FramesPart] = {}
        self.sent: set[int] = set()  # parts shipped to the browser (asked for, or sent with a held answer)
        self.failed: str | None = None  # why a part could not be made (the rest are not tried)
        self.stopped = threading.Event()
        self.free = threading.Event()  # set while no control is held
        self.free.set()
        # not a daemon: one stopped by the interpreter's exit in the middle of torch's work aborted the process
        # ("terminate called without an active exception"); this one ends after its part once the main thread has
        # (said explicitly: a thread inherits its maker's, and Streamlit's script runs are daemon threads)
        self.thread = threading.Thread(target=self._run, args=(scrub.make,), name=f"ahead-{self.key}", daemon=False)
        if context is not None:
            from streamlit.runtime.scriptrunner import add_script_run_ctx

            add_script_run_ctx(self.thread, context)
        self.thread.start()

    def _done(self) -> bool:
        return self.stopped.is_set() or not threading.main_thread().is_alive()  # stopped, or the process ends

    def _run(self, make) -> None:
        for part in range(self.parts):
            # a control is held: its answers first, unless each part is what they would be (a row of ACDC's pad:
            # 21 of them, sent with the next held answer, against one answer each)
            while not self.eager and not self.free.wait(0.5):
                if self._done():
                    return
            if self._done():
                return
            try:
                self.made[part] = make(part)
            except (RuntimeError, MemoryError, OSError, ValueError) as error:  # DataError, SourceError: ValueErrors
                self.failed = str(error).splitlines()[0] if str(error) else type(error).__name__
                return

    def ready(self) -> int:
        """How many parts are made (parts 0 .. ready - 1)."""
        return len(self.made)

    def take(self, part: int) -> FramesPart | None:
        """Part `part` if it is made, else None (the run does not wait for it)."""
        if part in self.made:
            self.sent.add(part)
        return self.made.get(part)

    def news(self) -> FramesPart | None:
        """The first made part not shipped yet if it is small (`PUSH_BYTES`), or None: sent with a held value's
        answer, since the component asks for parts only when idle (a drag begun before the first part was in the
        browser would get none). A bigger one (3 MB: ACDC's later parts) held that answer up, so it waits."""
        fresh = next((part for part in sorted(self.made) if part not in self.sent), None)
        return None if fresh is None or _size(self.made[fresh]) > PUSH_BYTES else self.take(fresh)

    def hold(self, held: bool) -> None:
        """A control is held (the thread waits after its current part) or not."""
        (self.free.clear if held else self.free.set)()

    def stop(self) -> None:
        self.stopped.set()
        self.free.set()


def follow(session: Any, scrub: Scrub | None, held: bool) -> Ahead | None:
    """The session's maker for `scrub` (started when the page names new pictures; the old one stopped), told
    whether a control is held; None where parts are made in the run ($INSIDE_DASHBOARD_AHEAD=0) or nothing
    is to be scrubbed."""
    current = getattr(session, "ahead", None)
    if scrub is None or not enabled():
        if current is not None:  # nothing (more) to scrub here: its work would be lost
            current.stop()
            session.ahead = None
        return None
    if current is None or current.key != scrub.key or current.stopped.is_set():
        if current is not None:
            current.stop()
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        current = session.ahead = Ahead(scrub, get_script_run_ctx())
    current.hold(held)
    return current
