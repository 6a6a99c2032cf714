"""Timestamps of each hop of a control value through the Streamlit server, for benchmarks/trace_hops.py.

Put this folder on PYTHONPATH with $HOP_LOG set: Python imports it at start-up, and it wraps a few of
Streamlit's server functions (and, once the page has imported them, the Explorer's decode and the
page's frame recipe) to append one JSON line per event to $HOP_LOG: {"t": epoch ms, "ev": ..., ...}.
Nothing is changed but the timing; without $HOP_LOG it does nothing.
"""

import json
import os
import sys
import threading
import time

LOG = os.environ.get("HOP_LOG")


def _install() -> None:
    lock = threading.Lock()
    out = open(LOG, "a", buffering=1)  # noqa: SIM115 - the server's lifetime

    def log(ev: str, **fields) -> None:
        fields.update(t=time.time() * 1000, ev=ev)
        with lock:
            out.write(json.dumps(fields) + "\n")

    def timed(owner, name: str, ev: str) -> None:  # log the start and the end of owner.name
        inner = getattr(owner, name)
        if getattr(inner, "_hop", False):
            return

        def wrapper(*args, **kwargs):
            log(ev + "_start")
            try:
                return inner(*args, **kwargs)
            finally:
                log(ev + "_end")

        wrapper._hop = True
        setattr(owner, name, wrapper)

    from streamlit.runtime import runtime
    from streamlit.runtime.app_session import AppSession
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.web.server.starlette import starlette_websocket

    handle = runtime.Runtime.handle_backmsg

    def handle_backmsg(self, session_id, msg, *args, **kwargs):
        log("backmsg", type=msg.WhichOneof("type"), bytes=msg.ByteSize())
        return handle(self, session_id, msg, *args, **kwargs)

    runtime.Runtime.handle_backmsg = handle_backmsg

    run = script_runner.ScriptRunner._run_script

    def run_script(self, rerun_data):
        explorer = sys.modules.get("inside_core.explorer")
        if explorer is not None:
            timed(explorer.Explorer, "update", "decode")
        views = sys.modules.get("app.views")
        if views is not None:
            timed(views, "make_frame", "frame")
        log("run_start", fragment=bool(rerun_data.fragment_id_queue))
        try:
            return run(self, rerun_data)
        finally:
            log("run_end")

    script_runner.ScriptRunner._run_script = run_script

    produce = script_runner.ScriptRunner._enqueue_forward_msg

    def produce_forward_msg(self, msg):  # on the script's thread, as the element is made
        log("produce", type=msg.WhichOneof("type"))
        return produce(self, msg)

    script_runner.ScriptRunner._enqueue_forward_msg = produce_forward_msg

    enqueue = AppSession._enqueue_forward_msg

    def enqueue_forward_msg(self, msg):
        kind = msg.WhichOneof("type")
        element = ""
        if kind == "delta":
            delta = msg.delta
            element = delta.WhichOneof("type") or ""
            if element == "new_element":
                element = delta.new_element.WhichOneof("type") or ""
        log("enqueue", type=kind, element=element, bytes=msg.ByteSize())
        return enqueue(self, msg)

    AppSession._enqueue_forward_msg = enqueue_forward_msg

    client = starlette_websocket.StarletteSessionClient if hasattr(
        starlette_websocket, "StarletteSessionClient") else None
    if client is not None:
        write = client.write_forward_msg

        def write_forward_msg(self, msg):
            log("ws_write", type=msg.WhichOneof("type"))
            return write(self, msg)

        client.write_forward_msg = write_forward_msg


if LOG:
    _install()
