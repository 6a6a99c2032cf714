"""CPU threads: how many torch uses and how its OpenMP threads wait, decided in one place.

Importing this module runs `set_wait_policy()`; `inside_core/__init__.py` imports it first, so any use of
the package (the `inside` command, the trainer, the page, a notebook) sets the policy before torch loads,
unless torch was imported earlier. This module must stay free of torch at import time.

Why: torch's CPU build runs its parallel ops on OpenMP (libgomp) threads, which by default *spin* for a
while at the end of every parallel region before sleeping. On a quiet machine that saves a wake-up; on
busy cores (a lab server, a laptop running a browser, the CI box) the spinning thread takes the core
from the one still working: 2 threads measured 2.3-3.9x slower than 1 per layer. With
OMP_WAIT_POLICY=PASSIVE the threads sleep at once and 2 threads were mostly faster than 1
(`OMP_WAIT_POLICY=ACTIVE python benchmarks/bench_layers.py` against the plain command; README, Speed).
libgomp reads the variable once, when torch loads it, hence "before torch is imported".

The user's environment wins: an OMP_WAIT_POLICY already set is left alone, and so is OMP_NUM_THREADS
(torch reads it itself) unless a thread count is asked for explicitly (`inside train --threads N`,
`train.num_threads` in a config).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

__all__ = ["WAIT_POLICY", "set_wait_policy", "wait_policy", "set_threads", "one_thread", "spread", "describe"]

WAIT_POLICY = "PASSIVE"  # our default; see the module docstring

_TOO_LATE = False  # torch was imported before inside_core: the policy could not reach libgomp
_HELPERS: tuple[int, int, ThreadPoolExecutor] | None = None  # (process id, count, `spread`'s helper threads)
_HELPERS_LOCK = threading.Lock()


def set_wait_policy() -> str:
    """OMP_WAIT_POLICY=PASSIVE unless the environment already sets it; returns the policy in force."""
    global _TOO_LATE
    if "OMP_WAIT_POLICY" not in os.environ:
        if "torch" in sys.modules:  # libgomp has read its environment already
            _TOO_LATE = True
            return "default (torch was imported before inside_core)"
        os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    return os.environ["OMP_WAIT_POLICY"]


def wait_policy() -> str:
    """The wait policy torch's OpenMP threads run under, in words."""
    if _TOO_LATE:
        return "libgomp default (active spinning): torch was imported before inside_core"
    return os.environ.get("OMP_WAIT_POLICY", "libgomp default (active spinning)").upper()


def set_threads(requested: int | None = None) -> int:
    """Torch's intra-op threads: `requested` if given (> 0), else $OMP_NUM_THREADS or torch's default
    (its physical cores), which torch has already applied. Returns the number in force."""
    import torch  # here, not at module level: this module is imported before torch on purpose

    if requested is not None:
        if int(requested) < 1:
            raise ValueError(f"the number of threads must be at least 1, got {requested}")
        torch.set_num_threads(int(requested))
    return torch.get_num_threads()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch ops inside the block run on the calling thread alone (torch's count restored after).

    For small tensors between large parallel ops (a hypernetwork, INSIDE's 1-D Gaussians): each op above
    torch's grain size (32768 elements) opens an OpenMP parallel region, and every region ends in a barrier
    that waits for the slowest thread. On busy cores that thread may be waiting for a core, so the barrier
    costs a scheduler wake-up, far more than the arithmetic of a few hundred thousand elements. The switch
    itself costs well under a microsecond (measured 0.3 us). OpenMP's and MKL's counts are per thread, so
    threads already running torch keep theirs; a thread whose first torch op falls inside the block starts
    with one (torch copies the last count set), a cost in speed only."""
    import torch

    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def spread(make_work: Callable[[], Callable[[Any], None]], items: Sequence[Any]) -> None:
    """`work(item)` for every item, spread over torch's thread count: this thread and helper threads each
    take the next item when free and run their torch ops on one thread (`one_thread`); `make_work()` is
    called once per thread (its scratch memory, say). The items must write to disjoint memory (or lock).

    Why not torch's own threads: each op of each item would be an OpenMP parallel region, split evenly
    between the threads and ended by a barrier, so on busy cores every op waits for the thread that has no
    core at the moment. Here the threads meet once per call, and a thread that gets less of the CPU simply
    takes fewer items. One item, or one torch thread: everything runs here, torch's ops parallel as usual.
    The helpers see the caller's grad and inference modes (both are per thread in torch)."""
    import torch

    threads = min(torch.get_num_threads(), len(items))
    if threads <= 1:
        work = make_work()
        for item in items:
            work(item)
        return
    pending, lock, done, failed = iter(items), threading.Lock(), object(), threading.Event()
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def drain() -> None:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad), one_thread():
            work = make_work()
            while not failed.is_set():
                with lock:
                    item = next(pending, done)
                if item is done:
                    return
                try:
                    work(item)
                except BaseException:
                    failed.set()  # the other threads stop taking items
                    raise

    helpers = [_helper_threads(threads - 1).submit(drain) for _ in range(threads - 1)]
    try:
        drain()
    finally:
        wait(helpers)  # no helper may still write when the caller goes on (or unwinds)
    for helper in helpers:
        helper.result()  # a helper's error, raised here


def _helper_threads(count: int) -> ThreadPoolExecutor:
    """`count` or more idle threads for `spread`, made once per process (a forked child makes its own)."""
    global _HELPERS
    with _HELPERS_LOCK:
        if _HELPERS is None or _HELPERS[0] != os.getpid() or _HELPERS[1] < count:
            if _HELPERS is not None and _HELPERS[0] == os.getpid():
                _HELPERS[2].shutdown(wait=False)  # its threads end once idle
            _HELPERS = (os.getpid(), count, ThreadPoolExecutor(max_workers=count, thread_name_prefix="inside-core"))
        return _HELPERS[2]


def describe() -> str:
    """One line for logs and benchmarks: threads and wait policy."""
    import torch

    return f"{torch.get_num_threads()} torch thread(s), OpenMP wait policy {wait_policy()}"


set_wait_policy()  # on import: inside_core/__init__.py imports this module before anything else
