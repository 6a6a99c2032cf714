"""The browser side's pure functions (app/live_controls_core.js) under Node's test runner, its type check
(`tsc --checkJs` over app/*.js with the messages' types of app/protocol.js), and the one constant the protocol
shares between Python and JS. Skipped (with the reason) where Node, or TypeScript and Streamlit's component
types, are not installed (`.ci/run` installs Debian's nodejs, and both npm packages under $INSIDE_NODE_TOOLS)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NODE = shutil.which("node") or shutil.which("nodejs")
# where .ci/run installs the type checker and the v2 component library's types (npm install --prefix TOOLS)
TOOLS = Path(os.environ.get("INSIDE_NODE_TOOLS") or Path.home() / ".cache" / "inside-explorer-node-tools")
TSC = TOOLS / "node_modules" / "typescript" / "bin" / "tsc"
COMPONENT_TYPES = TOOLS / "node_modules" / "@streamlit" / "component-v2-lib"
NO_TSC = (f"TypeScript and @streamlit/component-v2-lib are not installed under {TOOLS} (.ci/run: npm install "
          "--no-save --prefix $INSIDE_NODE_TOOLS typescript @streamlit/component-v2-lib)")


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed (apt-get install -y nodejs)")
def test_node_unit_tests_pass():
    result = subprocess.run([NODE, "--test", str(REPO / "tests" / "js")], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"^# pass [1-9]", result.stdout, re.M) and re.search(r"^# fail 0", result.stdout, re.M)


def type_check(folder: Path, extra: str | None = None) -> subprocess.CompletedProcess:
    """tsc over app/*.js and app/*.d.ts with the repository's jsconfig.json (and `extra`, a JS file's text),
    the component library's types found where npm put them."""
    files = [str(REPO / "app" / "*.js"), str(REPO / "app" / "*.d.ts")]
    if extra is not None:
        (folder / "extra.js").write_text(extra)
        files.append(str(folder / "extra.js"))
    config = {"extends": str(REPO / "jsconfig.json"), "include": files,
              "compilerOptions": {"paths": {"@streamlit/component-v2-lib": [str(COMPONENT_TYPES)]}}}
    (folder / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run([NODE, str(TSC), "-p", str(folder / "tsconfig.json")], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(NODE is None or not (TSC.exists() and COMPONENT_TYPES.exists()), reason=NO_TSC)
def test_the_browser_side_type_checks(tmp_path):
    """The JSDoc types hold (strict, except implicit any), and the check catches a message with a wrong field,
    a field the page does not send, and a trigger the component does not have."""
    result = type_check(tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    protocol = json.dumps(str(REPO / "app" / "protocol.js"))
    wrong = (f"/** @import {{ValueMessage, RenderArgs}} from {protocol} */\n"
             "/** @type {ValueMessage} */\n"
             "export const sent = { token: 's:1', seq: 1, value: { loc_x: 0 }, final: true, frames: null };\n"
             "/** @param {RenderArgs} args */\n"
             "export function render(args) { return args.frame; }\n"
             "/** @param {LiveControlsArgs} component */\n"
             "export function post(component) { component.setTriggerValue('values', sent); }\n")
    result = type_check(tmp_path, wrong)
    errors = [line for line in result.stdout.splitlines() if "extra.js" in line and "error TS" in line]
    assert result.returncode != 0 and len(errors) == 3, result.stdout[-4000:]
    for said in ("'value'", "'frame'", '"values"'):
        assert any(said in line for line in errors), (said, errors)


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
