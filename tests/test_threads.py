"""The thread policy (inside_core/threads.py): OpenMP threads sleep instead of spinning, set before torch
loads, and the user's environment wins. libgomp itself reports what it read (OMP_DISPLAY_ENV=VERBOSE)."""

import os
import subprocess
import sys
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
