"""The bundled data, started before the page imports torch (issue 21: the first page on a clean cache).

app/main.py imports this module first of all. On the server's first page, when the link asks for the
bundled data (the default), it starts inside_core/data/background.py: a process that writes that kind's
bundled data into the cache if it is not there, without importing torch, while this process imports torch
and the page's modules (~2.4 s before the page asks for the data, on two cores). app/loading.py's
`default_data_dir` waits for it, then finds the folder; had the process failed, the page generates the data
itself and shows why. Only the standard library and Streamlit here: importing inside_core imports torch.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

RUNNER = Path(__file__).resolve().parents[1] / "inside_core" / "data" / "background.py"
_STARTED: dict[str, subprocess.Popen] = {}  # the kind asked ("": the page's first kind) -> its process
_LOCK = threading.Lock()


def start(kind: str = "") -> subprocess.Popen:
    """The process generating `kind`'s bundled data ("": the registry's first kind), started once."""
    with _LOCK:
        if kind not in _STARTED:
            # its errors go to the server's log; a kind that is not one exits at once (status 2)
            process = subprocess.Popen([sys.executable, str(RUNNER), *([kind] if kind else [])],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            # reaped when it ends, also when the page never asks for it (the user chose a folder meanwhile)
            threading.Thread(target=process.wait, name="bundled-data", daemon=True).start()
            _STARTED[kind] = process
        return _STARTED[kind]


def wait(kind: str, first_kind: str, meanwhile: Callable[[], object] | None = None,
         timeout: float = 600.0) -> bool:
    """Wait for the process started for `kind` (`first_kind`: what "" stands for), if any; `meanwhile` is
    called first when it is still running (this process would only wait). Whether there was one."""
    process = _STARTED.get(kind) or (_STARTED.get("") if kind == first_kind else None)
    if process is None:
        return False
    if meanwhile is not None and process.poll() is None:
        meanwhile()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:  # the page generates it itself (a folder is renamed into place whole)
        pass
    return True


def start_for_first_page() -> subprocess.Popen | None:
    """Start the bundled data the page's link asks for, in a script run of the page, if torch is still to be
    imported (in a test or a notebook it is already there: nothing to overlap, the page generates in-process
    as before). Reads the link once and writes nothing (app/page_state.py owns the state)."""
    if "torch" in sys.modules or get_script_run_ctx(suppress_warning=True) is None:
        return None
    try:
        query = st.query_params
        if query.get("source", "bundled") != "bundled":
            return None
        return start(query.get("dataset", ""))
    except Exception:  # outside a script run, or no process could be started: the page generates in-process
        return None


start_for_first_page()
