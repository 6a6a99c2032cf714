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


def test_no_code_under_app_touches_window_parent():
    """No file under app/ (Python, JS, HTML, CSS) mentions window.parent: the streaming controls are a v2
    module in the page and send through the library's setTriggerValue; the charts are Streamlit's own
    st.plotly_chart; nothing finds another component through the parent window's document, globals or a
    trace's name."""
    checked = [path for path in (REPO / "app").rglob("*") if path.suffix in (".js", ".html", ".py", ".css")]
    assert len(checked) > 10
    touching = [path.name for path in checked if re.search(r"window\s*\.\s*parent|parent\.document", path.read_text())]
    assert touching == [], touching
    v1 = r"<iframe|components\.v1|declare_component"
    iframes = [path.name for path in checked if re.search(v1, path.read_text())]
    assert iframes == [], iframes  # no v1 component (an iframe) is left


def test_the_controls_talk_to_no_other_component():
    """The streaming controls paint a drag alone (the picture, its Gaussians, its Dice line): no channel or
    message to another component (the attention chart, st.plotly_chart, is redrawn on release by the page)."""
    for name in ("live_controls.js", "live_controls_core.js", "live_overlay.js"):
        text = (REPO / "app" / name).read_text()
        assert "BroadcastChannel" not in text and "postMessage" not in text, name
