"""The thread policy (inside_core/threads.py): OpenMP threads sleep instead of spinning, set before torch
loads, and the user's environment wins. libgomp itself reports what it read (OMP_DISPLAY_ENV=VERBOSE)."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from inside_core import threads

REPO = Path(__file__).resolve().parents[1]


def _libgomp_spin_count(code: str, **env: str) -> str:
    """GOMP_SPINCOUNT as libgomp read it when `code` (run in a fresh interpreter) loaded torch."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**clean, "PYTHONPATH": str(REPO), "OMP_DISPLAY_ENV": "VERBOSE", **env})
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "GOMP_SPINCOUNT" in line]
    if not lines:
        pytest.skip("this torch build's OpenMP runtime does not report its settings")
    return lines[0].split("=")[1].strip(" '")


def test_importing_inside_core_makes_openmp_threads_sleep_at_once():
    assert _libgomp_spin_count("import torch") != "0"  # the default spins: what the policy is for
    assert _libgomp_spin_count("import inside_core") == "0"
    assert _libgomp_spin_count("from inside_core.cli import main") == "0"  # the `inside` command


def test_the_users_wait_policy_wins():
    assert _libgomp_spin_count("import inside_core", OMP_WAIT_POLICY="ACTIVE") not in ("0", "300000")


def test_set_threads_applies_a_request_and_rejects_nonsense():
    before = torch.get_num_threads()
    try:
        assert threads.set_threads(1) == 1 == torch.get_num_threads()
        assert threads.set_threads(None) == 1  # nothing asked: left as it is
        with pytest.raises(ValueError, match="at least 1"):
            threads.set_threads(0)
        assert "torch thread" in threads.describe()
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_one_thread_runs_torch_on_one_thread_and_restores_the_count(two_threads):
    with threads.one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(KeyError), threads.one_thread():
        raise KeyError("inside")
    assert torch.get_num_threads() == 2


def test_spread_gives_every_item_once_to_threads_working_at_once(two_threads):
    seen, lock = [], threading.Lock()
    # items 0 and 1 each wait for the other: one thread taking both in turn would break the barrier
    together = threading.Barrier(2, timeout=60)

    def make_work():
        def work(item):
            if item < 2:
                together.wait()
            with lock:
                seen.append((item, threading.get_ident(), torch.get_num_threads(), torch.is_grad_enabled()))
        return work

    with torch.no_grad():
        threads.spread(make_work, list(range(10)))
    assert sorted(item for item, *_ in seen) == list(range(10))
    assert len({ident for _, ident, *_ in seen}) == 2
    assert all(count == 1 for *_, count, _ in seen)  # each thread runs its ops on one torch thread
    assert not any(grad for *_, grad in seen)  # the caller's grad mode
    assert torch.get_num_threads() == 2


def test_spread_raises_a_helpers_error_and_runs_alone_with_one_thread(two_threads):
    def make_work():
        def work(item):
            if item == 3:
                raise ValueError("item 3")
        return work

    with pytest.raises(ValueError, match="item 3"):
        threads.spread(make_work, list(range(8)))
    torch.set_num_threads(1)
    idents = set()
    threads.spread(lambda: lambda item: idents.add(threading.get_ident()), list(range(8)))
    assert idents == {threading.get_ident()}
