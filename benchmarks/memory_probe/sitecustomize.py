"""Where a server's memory is: loaded into `streamlit run` by benchmarks/bench_sessions.py --probe (this folder
goes first on the server's PYTHONPATH, so Python imports it at start-up); nothing of the page imports it.

It writes one JSON line to $INSIDE_MEMORY_PROBE each time the file $INSIDE_MEMORY_PROBE.ask appears (the
benchmark writes a label into it): the process's RSS, glibc's malloc statistics (bytes in use by the program
vs bytes malloc holds free: RSS kept by the allocator, not by live objects), threads, Streamlit's sessions
(connected, kept for a reconnect), its media files, the page's Explorers and session objects, live torch
storages, and with PYTHONTRACEMALLOC set the lines that allocated the most live Python/numpy memory.
Asked with a label ending in "+trim", it also calls malloc_trim(0) and reports the RSS after. Between reports
it samples every 50 ms: the largest bytes in use (peak_in_use_mb) and RSS (peak_rss_mb) since the last.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import threading
import time
from pathlib import Path

MB = 1 << 20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        return libc
    except (OSError, AttributeError):
        return None


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _streamlit() -> dict:
    try:
        from streamlit import runtime

        if not runtime.exists():
            return {}
        instance = runtime.get_instance()
        manager = instance._session_mgr
        stored = manager._session_storage.list() if hasattr(manager, "_session_storage") else []
        media = instance.media_file_mgr
        storage = getattr(media, "_storage", None)
        files = getattr(storage, "_files_by_id", {}) or {}
        return {"sessions_active": len(manager.list_active_sessions()), "sessions_stored": len(stored),
                "media_files": len(files),
                "media_mb": round(sum(len(getattr(f, "content", b"")) for f in files.values()) / MB, 1),
                "media_sessions": len(getattr(media, "_files_by_session_and_coord", {}))}
    except Exception as error:  # a probe never breaks the server
        return {"streamlit_error": repr(error)}


def _objects() -> dict:
    """Live objects the page keeps, found by a walk over the collector's objects."""
    counts: dict[str, int] = {}
    explorer_bytes, storages = 0, {}
    try:
        import torch
    except ImportError:
        torch = None
    for obj in gc.get_objects():
        kind = type(obj).__name__
        if kind in ("Explorer", "Session", "AppSession", "ScriptRunner", "SessionState"):
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "Explorer":
                explorer_bytes += getattr(obj, "nbytes", 0)
        elif torch is not None and isinstance(obj, torch.Tensor):
            try:
                storage = obj.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
            except Exception:
                pass
    return {"objects": counts, "explorer_mb": round(explorer_bytes / MB, 1),
            "tensor_mb": round(sum(storages.values()) / MB, 1), "tensor_storages": len(storages)}


def _tracemalloc_top(count: int = 12) -> list:
    import tracemalloc

    if not tracemalloc.is_tracing():
        return []
    snapshot = tracemalloc.take_snapshot()
    stats = snapshot.statistics("lineno")
    total = sum(stat.size for stat in stats)
    top = [[f"{stat.traceback[0].filename.split('site-packages/')[-1]}:{stat.traceback[0].lineno}",
            round(stat.size / MB, 1), stat.count] for stat in stats[:count]]
    return [["total", round(total / MB, 1)], *top]


def report(label: str) -> dict:
    libc = _libc()
    line: dict = {"label": label, "time": round(time.time(), 1), "rss_mb": round(_status("VmRSS") / 1024),
                  "threads": _status("Threads")}
    if libc is not None:
        info = libc.mallinfo2()
        line.update(malloc_in_use_mb=round(info.uordblks / MB), malloc_free_mb=round(info.fordblks / MB),
                    malloc_mmap_mb=round(info.hblkhd / MB), malloc_arena_mb=round(info.arena / MB))
    line.update(_streamlit())
    line.update(_objects())
    line["tracemalloc"] = _tracemalloc_top()
    if label.endswith("+trim") and libc is not None:
        start = time.perf_counter()
        libc.malloc_trim(0)
        line["trim_ms"] = round(1000 * (time.perf_counter() - start), 1)
        line["rss_after_trim_mb"] = round(_status("VmRSS") / 1024)
    return line


_PEAK = {"in_use": 0, "rss": 0}  # the largest bytes in use by the program (malloc's, mmapped included) and RSS


def _watch(path: Path) -> None:
    ask = path.with_name(path.name + ".ask")
    libc = _libc()
    while True:
        time.sleep(0.05)
        if libc is not None:
            info = libc.mallinfo2()
            _PEAK["in_use"] = max(_PEAK["in_use"], info.uordblks + info.hblkhd)
            _PEAK["rss"] = max(_PEAK["rss"], _status("VmRSS") * 1024)
        if not ask.exists():
            continue
        label = ask.read_text().strip() or "?"
        try:
            line = report(label)
            line.update(peak_in_use_mb=round(_PEAK["in_use"] / MB), peak_rss_mb=round(_PEAK["rss"] / MB))
            _PEAK.update(in_use=0, rss=0)
        except Exception as error:
            line = {"label": label, "error": repr(error)}
        with path.open("a") as out:
            out.write(json.dumps(line) + "\n")
        ask.unlink()


if os.environ.get("INSIDE_MEMORY_PROBE"):
    threading.Thread(target=_watch, args=(Path(os.environ["INSIDE_MEMORY_PROBE"]),), daemon=True,
                     name="memory-probe").start()
