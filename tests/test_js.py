"""The browser side's pure functions (app/live_controls_core.js) under Node's test runner, and the one
constant the protocol shares between Python and JS. Skipped (with the reason) where Node is not installed
(`.ci/run` installs Debian's nodejs)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NODE = shutil.which("node") or shutil.which("nodejs")


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed (apt-get install -y nodejs)")
def test_node_unit_tests_pass():
    result = subprocess.run([NODE, "--test", str(REPO / "tests" / "js")], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"^# pass [1-9]", result.stdout, re.M) and re.search(r"^# fail 0", result.stdout, re.M)


def test_the_protocol_constants_agree():
    from app.protocol import SCRUB_GAP_MS

    core = (REPO / "app" / "live_controls_core.js").read_text()
    assert re.search(rf"const SCRUB_GAP_MS = {SCRUB_GAP_MS};", core)


def test_no_component_reaches_into_the_page_or_another_frame():
    """Only the v1 component protocol's own message leaves a frame (`tell`); charts and controls talk over
    the session's BroadcastChannel, never through window.parent's document, globals or a trace's name."""
    for path in (REPO / "app").glob("*.*"):
        if path.suffix not in (".js", ".html"):
            continue
        text = path.read_text()
        uses = re.findall(r"window\.parent\.?(\w*)", text)
        assert set(uses) <= {"postMessage"}, (path.name, uses)
        assert text.count("window.parent") <= 1, path.name  # in `tell` only
