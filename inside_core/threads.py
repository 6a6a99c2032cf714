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

import os
import sys

__all__ = ["WAIT_POLICY", "set_wait_policy", "wait_policy", "set_threads", "describe"]

WAIT_POLICY = "PASSIVE"  # our default; see the module docstring

_TOO_LATE = False  # torch was imported before inside_core: the policy could not reach libgomp


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


def describe() -> str:
    """One line for logs and benchmarks: threads and wait policy."""
    import torch

    return f"{torch.get_num_threads()} torch thread(s), OpenMP wait policy {wait_policy()}"


set_wait_policy()  # on import: inside_core/__init__.py imports this module before anything else
