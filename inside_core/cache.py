"""Caches in memory with a size limit: least recently used entries are let go past a count and a byte budget.

    objects = BoundedCache("shared_cache_bytes", max_entries=64)   # the budget: a limit's name (inside_core.limits)
    value = objects.get(("scene", 3), lambda: read_scene(3))       # made on first use, then shared

`nbytes(value)` is what an entry counts: the arrays and tensors in it and its long texts (pictures as data
URIs), nested in lists, tuples, dicts and objects' attributes, the same memory counted once. A server keeps
such a cache for every visitor at once, so growth with distinct keys (samples, slices) stops at the budget;
the entry just made is always kept, even alone over the budget (whoever asked for it is using it).

Freed memory: glibc keeps what the program frees in its arenas (one per thread that allocated, up to 8 per
core), so a server's RSS stays near its peak after the work is done: 4 dashboard sessions closed left 243 MB,
18 MB of it live objects (benchmarks/bench_sessions.py --probe). `give_back_freed_memory()`
hands it back (`malloc_trim`) in a thread of its own (the dashboard: when a session ends);
`watch_freed_memory()` starts a thread that does so whenever malloc holds more than the limit
`freed_memory_bytes` free (checked every second: while many sessions work at once).

The disk cache of preprocessed arrays is another thing: `inside_core.data.cache`.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from inside_core.limits import limit

__all__ = ["BoundedCache", "nbytes", "freed_bytes", "give_back_freed_memory", "trim_freed_memory",
           "watch_freed_memory"]


def _base_memory(array: Any) -> tuple[int, int]:
    """(identity, bytes) of the memory an array or tensor views: a slice keeps its whole base alive."""
    import torch

    if isinstance(array, torch.Tensor):
        storage = array.untyped_storage()
        return storage.data_ptr(), storage.nbytes()
    base = array
    while isinstance(base.base, np.ndarray):
        base = base.base
    return id(base), base.nbytes


def nbytes(value: Any, _seen: dict | None = None, _depth: int = 0) -> int:
    """Bytes of the arrays, tensors and long strings `value` holds, each block of memory once (a view counts
    its whole base: that is what it keeps alive)."""
    import torch

    seen = {} if _seen is None else _seen
    if isinstance(value, (np.ndarray, torch.Tensor)):
        identity, size = _base_memory(value)
        seen[identity] = size
    elif isinstance(value, (str, bytes)):
        if len(value) >= 1024:  # a picture as a data URI; short texts are not worth a line
            seen[id(value)] = len(value)
    elif _depth <= 6:
        if isinstance(value, dict):
            items = value.values()
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = value
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            items = vars(value).values()
        else:
            items = ()
        for item in items:
            nbytes(item, seen, _depth + 1)
    return sum(seen.values()) if _seen is None else 0


class BoundedCache:
    """A thread-safe map from a key to a value made on first use, least recently used entries dropped while
    there are more than `max_entries` or their `size`s sum past `limit(budget)` (read at each insertion, so
    the limit's environment variable applies at once)."""

    def __init__(self, budget: str, max_entries: int = 64, size: Callable[[Any], int] = nbytes):
        self.budget, self.max_entries, self.size = budget, max_entries, size
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value for `key`, made by `make()` if it is not kept (made outside the lock: two callers may
        both make it; the first kept is the one everyone gets)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
        value = make()
        size = self.size(value)
        with self._lock:
            if key in self._entries:
                return self._entries[key][0]
            self._entries[key] = (value, size)
            bound = limit(self.budget)
            while len(self._entries) > 1 and (len(self._entries) > self.max_entries or self._total() > bound):
                self._entries.popitem(last=False)
        return value

    def _total(self) -> int:
        return sum(size for _, size in self._entries.values())

    @property
    def total_bytes(self) -> int:
        """What the kept entries hold, as counted."""
        with self._lock:
            return self._total()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# ------------------------------------------------------------------------------------------ freed memory
_TRIM_PENDING = threading.Event()  # a trim is asked for and has not started yet: another ask adds nothing
_WATCHING = threading.Lock()  # held by the watcher thread, once per process


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    """The C library if it is glibc (malloc_trim and mallinfo2, glibc 2.33+), else None (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def freed_bytes() -> int | None:
    """Bytes malloc holds free in its arenas (counted in the RSS where touched), or None without glibc."""
    libc = _libc()
    return None if libc is None else int(libc.mallinfo2().fordblks)


def trim_freed_memory() -> bool:
    """Return the memory malloc holds free to the system now (every arena; milliseconds). False without glibc."""
    _TRIM_PENDING.clear()
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def give_back_freed_memory() -> None:
    """`trim_freed_memory` in a background thread (the caller, e.g. Streamlit's event loop, does not wait);
    asks made while one is pending are folded into it."""
    if _TRIM_PENDING.is_set():
        return
    _TRIM_PENDING.set()
    threading.Thread(target=trim_freed_memory, name="inside-malloc-trim", daemon=True).start()


def _watch(every: float) -> None:
    while True:
        time.sleep(every)
        free = freed_bytes()
        if free is not None and free > limit("freed_memory_bytes"):
            trim_freed_memory()


def watch_freed_memory(every: float = 1.0) -> bool:
    """Start, once per process, a thread that hands freed memory back whenever malloc holds more than the
    limit `freed_memory_bytes` free. False if it was started already or there is no glibc."""
    if _libc() is None or not _WATCHING.acquire(blocking=False):
        return False
    threading.Thread(target=_watch, args=(every,), name="inside-freed-memory", daemon=True).start()
    return True
