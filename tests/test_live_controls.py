"""app/live_controls.py, the Python side (AppTest cannot run the component's JavaScript): values cleaned
onto each control's grid, defaults, the component's messages written into the page's keys, the URL round
trip through app/page_state.py, and the arguments the browser receives."""

from __future__ import annotations

import json
import math
import re

import pytest
from streamlit.testing.v1 import AppTest

from app import live_controls
from app.live_controls import STATE_PREFIX, apply_message, clean, decimals, default_value
from app.protocol import parse_decoder_request
from inside_core.conditions import get_condition

QUADRANT = get_condition("quadrant").controls
POINT = get_condition("point").controls
ACDC = get_condition("phase_slice").controls
STACK = [(3, 0.0), (1, 0.25), (4, 0.5), (0, 0.75), (2, 1.0)]  # slice indices base -> apex, not in index order


def control(controls, key):
    return next(c for c in controls if c.key == key)


# ------------------------------------------------------------------------------------------ values
def test_decimals_follow_the_step():
    assert [decimals(s) for s in (1.0, 0.5, 0.05, 0.025, 0.1)] == [0, 1, 2, 3, 1]


def test_a_slider_value_is_snapped_to_its_grid_and_range():
    x = control(POINT, "loc_x")
    assert clean(x, 0.35000000000000003) == 0.35
    assert clean(x, "0.123") == 0.1  # text from a link, off the grid
    assert clean(x, -1.0) == -1.0 and clean(x, 1) == 1.0
    radius = control(POINT, "radius")
    assert clean(radius, 0.05) == 0.05 and clean(radius, 0.36) == 0.35
    for bad in (1.5, -1.01, float("nan"), float("inf"), "left", None, True, [0.1]):
        assert clean(x, bad) is None, bad


def test_a_stack_value_is_one_of_its_slices():
    position = control(ACDC, "slice")
    assert clean(position, 4, STACK) == 4 and clean(position, 4.0, STACK) == 4
    assert clean(position, 5, STACK) is None and clean(position, 2.5, STACK) is None
    assert clean(position, 4, None) is None


def test_defaults_are_the_conditions_and_the_middle_slice():
    assert [default_value(c) for c in QUADRANT] == [-0.5, -0.5]
    assert [default_value(c) for c in POINT] == [0.0, 0.0, 0.35]
    assert default_value(control(ACDC, "phase")) == 0.0
    assert default_value(control(ACDC, "slice"), STACK) == 4  # STACK[5 // 2]
    with pytest.raises(ValueError, match="stacks"):
        default_value(control(ACDC, "slice"))


def test_a_message_writes_each_controls_key_and_the_answer_token():
    state = {"loc_x": 0.0, "loc_y": 0.0, "radius": 0.35}
    message = {"token": "abc:7", "seq": 7, "final": False,
               "values": {"loc_x": 0.45000000000000007, "loc_y": 2.0, "radius": "0.6", "other": 1}}
    assert apply_message(state, "conditioning", message, POINT) == ["loc_x", "radius"]
    assert state["loc_x"] == 0.45 and state["radius"] == 0.6
    assert state["loc_y"] == 0.0  # out of range: left as it was
    assert "other" not in state
    assert state[STATE_PREFIX + "conditioning"] == {"ack": "abc:7", "seq": 7, "final": False, "frames": None,
                                                    "decoder": None, "decoder_off": False, "area": False,
                                                    "exact": False}
    apply_message(state, "conditioning", {"token": "abc:8", "seq": 8, "final": True, "values": {"loc_y": -0.2}}, POINT)
    assert state["loc_y"] == -0.2 and state[STATE_PREFIX + "conditioning"]["final"] is True


def test_a_request_for_the_decoder_is_kept_and_off_stays_off():
    """The component's `decoder` field (app/protocol.py): the request is kept for the run that answers it; "off"
    (its worker did not start) stays for the session, whatever comes after."""
    state = {"loc_x": 0.0, "loc_y": 0.0, "radius": 0.35}
    apply_message(state, "c", {"token": "t:1", "seq": 1, "final": True, "values": {}, "decoder": "K#1"}, POINT)
    assert state[STATE_PREFIX + "c"]["decoder"] == "K#1" and not state[STATE_PREFIX + "c"]["decoder_off"]
    assert parse_decoder_request("K#1") == ("K", True) and parse_decoder_request("K#0") == ("K", False)
    assert parse_decoder_request("K#2") is None and parse_decoder_request(None) is None
    apply_message(state, "c", {"token": "t:2", "seq": 2, "final": True, "values": {}, "decoder": "off"}, POINT)
    apply_message(state, "c", {"token": "t:3", "seq": 3, "final": True, "values": {"loc_x": 0.5}}, POINT)
    assert state[STATE_PREFIX + "c"]["decoder_off"] is True and state[STATE_PREFIX + "c"]["decoder"] is None


def test_a_malformed_message_changes_nothing():
    state = {"phase": 0.5, "slice": 4}
    assert apply_message(state, "c", None, ACDC, {"slice": STACK}) == []
    assert apply_message(state, "c", "text", ACDC, {"slice": STACK}) == []
    assert apply_message(state, "c", {"values": [1, 2]}, ACDC, {"slice": STACK}) == []
    assert state == {"phase": 0.5, "slice": 4, STATE_PREFIX + "c": {"ack": "None", "seq": None, "final": True,
                                                         "frames": None, "decoder": None, "decoder_off": False,
                                                         "area": False, "exact": True}}


def test_select_controls_are_not_drawn_here():
    colour = get_condition("colour").controls
    assert live_controls._live(colour) == []


# ------------------------------------------------------------------------------------------ in a page
def _page_script():
    """A page: URL -> state, the live controls of ?demo= (point, quadrant or acdc), state -> URL."""
    import streamlit as st

    from app import page_state
    from app.live_controls import live_controls, png_data_uri
    from inside_core.conditions import get_condition

    page_state.restore_from_url()
    kind = st.session_state.setdefault("demo", st.query_params.get("demo", "point"))
    if kind == "acdc":
        values = live_controls(get_condition("phase_slice").controls, key="conditioning", pad=("phase", "slice"),
                               stacks={"slice": [(3, 0.0), (1, 0.25), (4, 0.5), (0, 0.75), (2, 1.0)]})
    else:
        image = png_data_uri([[[0, 0, 0]] * 4] * 4)
        x, y, radius = get_condition(kind).image_point()
        values = live_controls(get_condition(kind).controls, key="conditioning", image=image, pad=(x, y),
                               radius=radius, legend=get_condition(kind).range_words)
    st.write(f"values {values}")
    if st.button("Reset"):
        st.session_state["loc_x"] = 0.3
        st.rerun()
    page_state.sync_url()


def run(query: dict | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_function(_page_script, default_timeout=30)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def component_args(at: AppTest) -> dict:
    [element] = [e for e in at.main if e.type == "bidi_component"]  # a Custom Components v2 element
    return json.loads(element.proto.json)


def test_defaults_fill_the_page_keys_and_the_url():
    at = run()
    assert (at.session_state["loc_x"], at.session_state["loc_y"], at.session_state["radius"]) == (0.0, 0.0, 0.35)
    assert at.query_params["loc_x"] == "0" and at.query_params["radius"] == "0.35"
    at = run({"demo": "quadrant"})
    assert (at.session_state["loc_x"], at.session_state["loc_y"]) == (-0.5, -0.5)
    at = run({"demo": "acdc"})
    assert at.session_state["phase"] == 0.0 and at.session_state["slice"] == 4
    assert at.query_params["slice"] == "4"


def test_a_link_sets_the_values_and_a_bad_one_falls_back_to_the_default():
    at = run({"loc_x": "0.25", "loc_y": "-0.75", "radius": "0.6"})
    assert (at.session_state["loc_x"], at.session_state["loc_y"], at.session_state["radius"]) == (0.25, -0.75, 0.6)
    assert component_args(at)["values"] == {"loc_x": 0.25, "loc_y": -0.75, "radius": 0.6}
    at = run({"loc_x": "7", "radius": "0.333"})
    assert at.session_state["loc_x"] == 0.0 and at.session_state["radius"] == 0.35  # out of range; snapped
    assert at.query_params["loc_x"] == "0" and at.query_params["radius"] == "0.35"
    at = run({"demo": "acdc", "slice": "9", "phase": "0.5"})
    assert at.session_state["slice"] == 4 and at.session_state["phase"] == 0.5


def test_the_browser_gets_the_controls_the_pad_and_the_page_values():
    args = component_args(run({"loc_x": "0.5"}))
    assert [c["label"] for c in args["controls"]] == [c.label for c in POINT]
    assert [c["key"] for c in args["controls"]] == ["loc_x", "loc_y", "radius"]
    x, y, _ = args["controls"]
    assert (x["low"], x["high"], x["step"], x["decimals"]) == (-1.0, 1.0, 0.05, 2)
    assert y["down"] and not x["down"]  # ArrowDown increases y (the picture's rows grow downwards)
    assert args["pad"]["x"] == "loc_x" and args["pad"]["y"] == "loc_y" and args["pad"]["r"] == "radius"
    assert args["image"].startswith("data:image/png;base64,") and args["image_label"] == "predicted mask"
    assert args["values"]["loc_x"] == 0.5 and args["ack"] is None
    assert args["legend"] is None  # the point's sliders have no marked ranges

    quadrant = component_args(run({"demo": "quadrant"}))
    x = quadrant["controls"][0]
    assert x["dead"] == [[-1.0, -0.5], [0.5, 1.0]] and x["blend"] == [-0.5, 0.5]
    assert quadrant["legend"] == get_condition("quadrant").range_words and quadrant["pad"]["r"] is None

    acdc = component_args(run({"demo": "acdc"}))
    phase, position = acdc["controls"]
    assert position["kind"] == "stack" and position["positions"][0] == [3, 0.0] and position["down"]
    assert acdc["image"] is None and acdc["pad"]["y"] == "slice"


def _controls_page(name: str, attention: list | None) -> None:
    """The page's own drawing of a condition's controls (app/controls.py), with a picture and its Gaussians."""
    import streamlit as st

    from app.controls import ControlValues, draw_live_controls
    from app.frame import overlay_spec
    from inside_core.conditions import get_condition

    condition = get_condition(name)
    values = {c.key: c.default for c in condition.controls}
    controls = ControlValues(values, values, "", condition, {}, condition.image_point())
    draw_live_controls(controls, st.container(), image="data:image/png;base64,AA==", attention=attention,
                       overlay=overlay_spec((8, 12)))


@pytest.mark.parametrize("name", ["quadrant", "cube_half"])
def test_the_legend_of_marked_ranges_is_the_conditions_own(name):
    """One home for the words: the condition's `range_words` (the 3-D cube_half blends halves, not quadrants)."""
    condition = get_condition(name)
    attention = [[1.0, 2.0], [3.0, 4.0], [0.5, 0.5], [1.0, 1.0], [0.1, -0.2], None]
    at = AppTest.from_function(_controls_page, args=(name, attention), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    args = component_args(at)
    assert args["legend"] == condition.range_words and set(args["legend"]) == {"dead", "blend"}
    assert ("quadrant" in args["legend"]["blend"]) == (name == "quadrant")
    if name == "quadrant":  # a point on the picture: its Gaussians are drawn over it, on the model's grid
        assert args["attention"] == attention and args["overlay"]["grid"] == [8, 12]
        assert args["overlay"]["ring"] and args["overlay"]["key"]
    else:  # no picture in the component: nothing to draw them over
        assert args["attention"] is None and args["overlay"] is None


def test_a_value_changed_elsewhere_reaches_the_component():
    at = run()
    at.button[0].click().run()
    assert at.session_state["loc_x"] == 0.3 and component_args(at)["values"]["loc_x"] == 0.3
    assert at.query_params["loc_x"] == "0.3"


def test_a_value_from_the_component_reaches_the_page_keys_and_the_url():
    """What the callback does before a run (AppTest cannot send a component value): the message is
    applied to session state, the page draws and links the new values, the next answer carries its token."""
    at = run()
    apply_message(at.session_state, "conditioning", {"token": "t:3", "seq": 3, "final": True,
                                                     "values": {"loc_x": 0.65, "loc_y": -0.4}}, POINT)
    at.run()
    assert (at.session_state["loc_x"], at.session_state["loc_y"]) == (0.65, -0.4)
    assert at.query_params["loc_x"] == "0.65" and at.query_params["loc_y"] == "-0.4"
    args = component_args(at)
    assert args["ack"] == "t:3" and args["values"]["loc_x"] == 0.65
    assert math.isclose(at.session_state["radius"], 0.35)


def test_the_pad_needs_controls_that_exist():
    def script():
        from app.live_controls import live_controls
        from inside_core.conditions import get_condition

        live_controls(get_condition("quadrant").controls, key="c", pad=("loc_x", "radius"))

    at = AppTest.from_function(script, default_timeout=30).run()
    assert at.exception and "radius" in at.exception[0].message


def test_a_request_for_a_part_of_the_pictures_is_answered_once(monkeypatch):
    from types import SimpleNamespace

    from app.live_controls import frames_wanted

    state: dict = {}
    monkeypatch.setattr(live_controls, "st", SimpleNamespace(session_state=state))
    message = {"token": "t:1", "seq": 1, "final": True, "values": {}, "frames": "k1#2"}
    apply_message(state, "conditioning", message, POINT)
    assert state[STATE_PREFIX + "conditioning"]["frames"] == "k1#2"
    assert frames_wanted("conditioning", "k2") is None  # pictures for another state were asked for
    assert frames_wanted("conditioning", "k1") == 2  # that part
    assert frames_wanted("conditioning", "k1") is None  # answered: not made again
    for odd in ("k1", "k1#", "k1#-1", "k1#x"):  # no part number: nothing is made
        apply_message(state, "conditioning", {**message, "frames": odd}, POINT)
        assert frames_wanted("conditioning", "k1") is None
    apply_message(state, "conditioning", {"token": "t:2", "seq": 2, "frames": ["not", "a", "key"]}, POINT)
    assert state[STATE_PREFIX + "conditioning"]["frames"] is None


def test_the_component_is_one_v2_module_mounted_in_the_page():
    """A Custom Components v2 element (no iframe, no asset folder): its module is the pure core followed by
    the component's code, which has the default export Streamlit calls and sends only through the library's
    own `setTriggerValue`; its markup holds every element the module looks up; its styles stay in its
    shadow root."""
    at = run()
    [element] = [e for e in at.main if e.type == "bidi_component"]
    proto = element.proto
    assert [p.name for p in live_controls.SCRIPTS] == ["live_controls_core.js", "decode_core.js", "live_overlay.js",
                                                       "live_decoder.js", "live_controls.js"]
    module = live_controls.SCRIPTS[-1].read_text()
    assert proto.js_content == "\n".join(p.read_text() for p in live_controls.SCRIPTS) and proto.isolate_styles
    assert re.search(r"^export default function", module, re.M) and "window.parent" not in proto.js_content
    assert set(re.findall(r"setTriggerValue\(\"(\w+)\"", module)) == {"value"}
    looked_up = set(re.findall(r'\$\("(\w+)"\)', module))
    assert {"gaussians", "key", "below"} <= looked_up  # the overlay's svg and its line, the picture's box
    assert looked_up and looked_up <= set(re.findall(r'id="(\w+)"', proto.html_content)), looked_up
    assert ":root" not in proto.css_content and "body" not in proto.css_content  # nothing aimed at the page


def test_the_value_trigger_reaches_the_page_keys(monkeypatch):
    """The callback reads the message where Streamlit puts a trigger: the component's key holds
    {"value": message} (its presenter merges the triggers into the element's state)."""
    from types import SimpleNamespace

    message = {"token": "t:4", "seq": 4, "final": False, "values": {"loc_x": 0.45}}
    state: dict = {"conditioning": {"value": message}}
    monkeypatch.setattr(live_controls, "st", SimpleNamespace(session_state=state))
    live_controls._on_change("conditioning", tuple(POINT), {})
    assert state["loc_x"] == 0.45 and state[STATE_PREFIX + "conditioning"]["ack"] == "t:4"
    assert live_controls.dragging("conditioning")
    state["conditioning"] = {"value": None}  # no trigger (a run for another reason): nothing written
    live_controls._on_change("conditioning", tuple(POINT), {})
    assert state["loc_x"] == 0.45
