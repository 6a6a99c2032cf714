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


def test_no_code_touches_window_parent_but_the_librarys_protocol():
    """Only Streamlit's own v1 protocol (app/streamlit_v1.js, the chart's) posts to window.parent; the
    streaming controls are a v2 module in the page and send through the library's setTriggerValue; charts
    and controls talk over the session's BroadcastChannel, never through window.parent's document,
    globals or a trace's name."""
    touching = {}
    for path in (REPO / "app").glob("*.*"):
        if path.suffix in (".js", ".html", ".py"):
            uses = re.findall(r"window\.parent\.?(\w*)", path.read_text())
            if uses:
                touching[path.name] = uses
    assert touching == {"streamlit_v1.js": ["postMessage"]}, touching
    chart = (REPO / "app" / "live_chart.html").read_text()
    assert '<script src="streamlit_v1.js"></script>' in chart and "postMessage(Object" not in chart


def test_the_controls_talk_to_no_other_component():
    """The streaming controls paint a drag alone (the picture, its Gaussians, its Dice line): no channel or
    message to another component (the attention chart is redrawn on release by the page)."""
    for name in ("live_controls.js", "live_controls_core.js", "live_overlay.js"):
        text = (REPO / "app" / name).read_text()
        assert "BroadcastChannel" not in text and "postMessage" not in text, name
    assert "live_controls_core.js" not in (REPO / "app" / "live_chart.html").read_text()
