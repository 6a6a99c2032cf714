"""Conditioning controls that send their values while they are dragged: sliders and a 2-D pad on the image.

Why not `st.slider`: since streamlit PR #11879 it sends its value only on release, so nothing follows the
pointer while a slider is dragged. This is a Streamlit Custom Components v2 component
(`st.components.v2.component`: app/live_controls.html, .css and .js, mounted in the page, no iframe,
nothing fetched from the network) that streams: while the pointer is down it sends the newest value
through the library's `setTriggerValue`, one at a time (the next leaves when the script has answered the
last: newest wins, stale values are dropped, nothing queues); on release it sends the exact final one.
The messages are app/protocol.py's.

    from app.live_controls import live_controls, live_values, png_data_uri

    values = live_values(condition.controls, stacks=stacks)  # optional: the values before anything is drawn
    ...compute and draw the mask...
    with slot:  # a container placed above the mask: draw the controls AFTER what they drive (see below)
        x, y, radius = condition.image_point()  # the point on the image: "loc_x", "loc_y", "radius"
        live_controls(condition.controls, key="conditioning", stacks=stacks, pad=(x, y), radius=radius,
                      image=png_data_uri(overlay), image_label="predicted mask")  # the point pad on the image

- `controls`: `inside_core.conditions.Control`s: kind "slider" -> a slider over [low, high] by step;
  kind "stack" -> a slider over a sample's slices, `stacks[key]` = [(slice index, position), ...] from
  base to apex (the value is the slice index, the pad places it at its position). Kind "select" is not
  drawn here (the page keeps `st.selectbox`); it is ignored.
- Each control's value lives in `st.session_state[control.key]` (the page's widget and URL keys): a
  move's callback writes it before the script runs, so a page that reads the state first sees it. A
  missing or invalid value is set to the control's default (a stack: its middle slice). A value changed
  elsewhere (URL, reset) is shown by the component the next time it is drawn and not held.
- `pad=(x key, y key)`: a 2-D pad whose point is dragged with the pointer (and with the arrow keys when
  focused; Down goes down the picture). With `image` (a data URI) the pad is that picture, the point in
  the condition's normalised coordinates (x column, y row, -1..1, (-1, -1) top-left); `radius` names the
  control drawn as a ring around it (normalised units, 1 = half the side) whose edge drags the radius.
  Without an image (or with `image_on_pad=False`: the image is then drawn under the pad) the pad is a
  plain grid over the two controls' ranges (ACDC: phase x slice position, slice lines at the stack's
  positions). Which controls are a point on the image is the condition's to say
  (`Condition.image_point()`); without `pad` no pad is drawn and `image` is not shown.
- `image_label`: the image's alt text ("predicted mask" when it shows the mask, as the page's tests
  expect). Controls' accessible names are their labels (aria-label on each `<input type="range">`);
  the pad's is `pad_label`.
- Controls with `dead` / `blend` ranges (the quadrant's location sliders) draw them on the track, with a
  legend line in the condition's own words (`legend=condition.range_words`).
- `attention`: INSIDE's Gaussians of the picture (app/frame.gaussians), drawn over it (app/live_overlay.js)
  on the grid and in the colours of `overlay` (app/frame.overlay_spec); every picture made ahead brings its
  own, so while a control is dragged this component alone paints the mask and the Gaussians.

Order: the component's answer (the new `ack` in its arguments) reaches the browser with its own element,
and the next value leaves then. Drawing the component after the elements its value drives (the mask),
e.g. into an `st.container()` created above them, makes sure they have arrived before a new value can
interrupt the run (on the demo page the order made no measurable difference); with the pad, the image
travels with the answer anyway.
`dragging(key)` says whether the last value was sent while the pointer was held (secondary figures may
wait for release); `live_state(key)` gives its sequence number too. Scrubbing (`frames_key`, `frames`,
`frames_wanted`; made by app/scrub.py): pictures the browser shows while the pad or a slider is dragged,
at the display's rate, between the page's exact answers; meanwhile the page's exact answers (and what
else they redraw) are asked for at most every 200 ms, so the browser's main thread is free to scrub.
Decoding in the browser (`decoder`, `decoder_part`; offered by app/scrub.browser_decoder, app/live_decoder.js
decodes): a held value the browser can decode is not sent at all; `decoder_wanted(key, offer key)` says whether
this run must send the part (once), `decoder_failed(key)` whether the browser said it cannot decode.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, MutableMapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from app.page_state import use
from app.protocol import DecoderOffer, DecoderPart, RenderArgs, parse_decoder_request, parse_frames_request

HERE = Path(__file__)
CORE = HERE.with_name("live_controls_core.js")  # the pure functions (`LiveCore`), tested with node --test
# one ES module, in this order: the pure functions, the overlay, the decoder in the browser, the component
SCRIPTS = (CORE, HERE.with_name("decode_core.js"), HERE.with_name("live_overlay.js"), HERE.with_name("live_decoder.js"),
           HERE.with_suffix(".js"))
STATE_PREFIX = "_live_controls."  # st.session_state[STATE_PREFIX + key]: {"ack", "seq", "final"} of the last value
PAD_HINT = "Drag the point {on}{ring}; focused, the arrow keys move it{keys}."

Stacks = Mapping[str, Sequence[tuple[int, float]]]

# registered once per process; the module is the core, the overlay, then the component's own code
_component = st.components.v2.component(
    "inside_live_controls", html=HERE.with_suffix(".html").read_text(), css=HERE.with_suffix(".css").read_text(),
    js="\n".join(path.read_text() for path in SCRIPTS))


def png_data_uri(picture: Any) -> str:
    """An image (H x W [x 3|4] uint8 array, or a PIL image) as a PNG data URI for `image`."""
    from PIL import Image

    if not isinstance(picture, Image.Image):
        picture = Image.fromarray(np.asarray(picture, dtype=np.uint8))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ------------------------------------------------------------------------------------------ values
def decimals(step: float) -> int:
    """Digits after the point that the step needs (0.05 -> 2, 0.025 -> 3, 1 -> 0)."""
    for digits in range(10):
        if abs(round(step, digits) - step) < 1e-12:
            return digits
    return 10


def clean(control: Any, value: Any, stack: Sequence[tuple[int, float]] | None = None) -> float | int | None:
    """`value` as the control holds it (a slider: a float in [low, high] on the step grid; a stack: a slice
    index of `stack`), or None if it is not one (not a number, not finite, out of range, not a slice)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    if control.kind == "stack":
        indices = [int(index) for index, _ in stack or ()]
        return int(number) if number.is_integer() and int(number) in indices else None
    low, high, step = float(control.low), float(control.high), float(control.step)
    tolerance = 1e-9 * max(1.0, abs(high - low))
    if not low - tolerance <= number <= high + tolerance:
        return None
    snapped = low + round((number - low) / step) * step if step > 0 else number
    return round(min(high, max(low, snapped)), decimals(step) if step > 0 else 10)


def default_value(control: Any, stack: Sequence[tuple[int, float]] | None = None) -> float | int:
    """The control's default: its `default` (a stack: the middle slice; a bad default: the low end)."""
    if control.kind == "stack":
        if not stack:
            raise ValueError(f"the stack control {control.key!r} needs its slices: stacks[{control.key!r}]")
        return int(stack[len(stack) // 2][0])
    value = clean(control, control.default)
    return float(control.low) if value is None else value


def _live(controls: Sequence[Any]) -> list[Any]:
    return [control for control in controls if control.kind in ("slider", "stack")]


def live_values(controls: Sequence[Any], stacks: Stacks | None = None) -> dict[str, float | int]:
    """The continuous controls' values from st.session_state (missing or invalid ones set to their
    default first), by key. Safe to call before `live_controls` in the same run."""
    stacks = stacks or {}
    values = {}
    for control in _live(controls):
        stack = stacks.get(control.key)
        current = clean(control, st.session_state.get(control.key), stack)
        if current is None or current != st.session_state.get(control.key):
            current = default_value(control, stack) if current is None else current
            st.session_state[control.key] = current
        values[control.key] = current
    use(*values)  # they are the page's: its link holds them (app/page_state.py)
    return values


def live_state(key: str) -> dict[str, Any]:
    """{"ack": token, "seq": number, "final": bool} of the last value the component `key` sent ({} if none)."""
    return dict(st.session_state.get(STATE_PREFIX + key) or {})


def frames_wanted(key: str, frames_key: str | None) -> int | None:
    """The part of the pictures named `frames_key` the component `key` asked for (the `frames` field of its
    message: app/protocol.py), or None (once: asking again needs a new message). The page then passes
    that part as `frames` to `live_controls` in this run."""
    state = st.session_state.get(STATE_PREFIX + key) or {}
    asked = parse_frames_request(state.get("frames"))
    if frames_key is None or asked is None or asked[0] != frames_key:
        return None
    state["frames"] = None  # answered: a later run for another reason does not compute it again
    return asked[1]


def decoder_wanted(key: str, offer_key: str | None) -> bool | None:
    """Whether the component `key` asked for the decoder's part of the offer `offer_key` (its `decoder` field,
    app/protocol.py): True with the .onnx, False without, None if not (once: asking again needs a new message)."""
    state = st.session_state.get(STATE_PREFIX + key) or {}
    asked = parse_decoder_request(state.get("decoder"))
    if offer_key is None or asked is None or asked[0] != offer_key:
        return None
    state["decoder"] = None
    return asked[1]


def decoder_failed(key: str) -> bool:
    """Whether the component `key` said it cannot decode in this browser (its worker did not start): the page
    then keeps its pictures made ahead for this session."""
    return bool((st.session_state.get(STATE_PREFIX + key) or {}).get("decoder_off"))


def dragging(key: str) -> bool:
    """Whether the last value came while the pointer was held (more are coming; the final one follows)."""
    return live_state(key).get("final") is False


def apply_message(state: MutableMapping[str, Any], key: str, message: Any, controls: Sequence[Any],
                  stacks: Stacks | None = None) -> list[str]:
    """Write a value the component `key` sent ({"token", "seq", "values": {key: value}, "final"}) into
    `state` (st.session_state): each control's cleaned value under its own key (invalid ones are left
    as they were), and the token / seq / final under STATE_PREFIX + key. Returns the keys written."""
    if not isinstance(message, Mapping):
        return []
    stacks = stacks or {}
    written = []
    values = message.get("values")
    if isinstance(values, Mapping):
        for control in _live(controls):
            if control.key in values:
                value = clean(control, values[control.key], stacks.get(control.key))
                if value is not None:
                    state[control.key] = value
                    written.append(control.key)
    seq = message.get("seq")
    frames, decoder, area = message.get("frames"), message.get("decoder"), message.get("area") is True
    final = message.get("final") is not False
    off = bool((state.get(STATE_PREFIX + key) or {}).get("decoder_off")) or decoder == "off"
    state[STATE_PREFIX + key] = {"ack": str(message.get("token")),
                                 "seq": seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
                                 "final": final,
                                 "frames": frames if isinstance(frames, str) else None,
                                 "decoder": decoder if isinstance(decoder, str) else None, "decoder_off": off,
                                 # a value whose answer is its exact frame (not a request, nor for the area)
                                 "area": area, "exact": final and not area and not isinstance(frames, str)
                                 and not isinstance(decoder, str)}
    return written


def _on_change(key: str, controls: Sequence[Any], stacks: Stacks, release: str | None = None) -> None:
    """The component sent a value (its "value" trigger; called before the script runs): the controls' keys
    take it. The fragment the component is drawn in reruns (a final value too: its exact frame first), except
    for the browser's request for the rest of the area (`area`), which reruns the fragment keyed `release`."""
    apply_message(st.session_state, key, (st.session_state.get(key) or {}).get("value"), controls, stacks)
    if release is not None and live_state(key).get("area"):
        st.rerun(release)


def answers_alone(key: str, release: str | None) -> bool:
    """Whether this run answers a final value of the component `key` with its own fragment alone (drawn with a
    `release`; not a request for pictures or the decoder's part, nor the area's own run): the browser is then
    told to ask for the rest of the area (`RenderArgs.area`), after the exact frame is on screen."""
    state = live_state(key)
    return bool(release is not None and state.get("ack") and state.get("exact"))


# ------------------------------------------------------------------------------------------ the component
def _spec(control: Any, stack: Sequence[tuple[int, float]] | None, down: bool) -> dict[str, Any]:
    spec = {"key": control.key, "label": control.label, "kind": control.kind, "help": control.help,
            "low": float(control.low), "high": float(control.high), "step": float(control.step),
            "decimals": decimals(float(control.step)), "down": down,
            "dead": [[float(a), float(b)] for a, b in control.dead],
            "blend": [float(v) for v in control.blend] if control.blend else None}
    if control.kind == "stack":  # a slider over the slices' ranks; the pad places each at its position
        positions = [float(position) for _, position in stack]
        spec.update(positions=[[int(index), float(position)] for index, position in stack], step=1.0, decimals=0,
                    low=min(0.0, *positions), high=max(1.0, *positions))
    return spec


def live_controls(controls: Sequence[Any], key: str, *, image: str | None = None,
                  image_label: str = "predicted mask", pad: tuple[str, str] | None = None, radius: str | None = None,
                  stacks: Stacks | None = None, pad_label: str | None = None, pad_width: int = 360,
                  pad_aspect: float = 0.6, columns: int | None = None, down_increases: Sequence[str] = ("loc_y",),
                  legend: Mapping[str, str] | None = None, frames_key: str | None = None, frames_parts: int = 1,
                  frames: Mapping[str, Any] | None = None, frames_ready: int | None = None, image_on_pad: bool = True,
                  image_caption: str | None = None, image_title: str | None = None, attention: list | None = None,
                  overlay: Mapping[str, Any] | None = None, release: str | None = None,
                  decoder: DecoderOffer | None = None, decoder_part: DecoderPart | None = None,
                  labels_hash: str | None = None) -> dict[str, float | int]:
    """Draw `controls` (their "slider" and "stack" kinds) as sliders that stream while dragged, and a pad
    (see the module's docstring); return their values, by key, as `live_values`.

    `key`: the component's own key (not a control's). `image`: a data URI (`png_data_uri`) drawn as the
    pad, named `image_label` (`image_on_pad=False`: drawn under a plain pad instead), with its caption
    `image_title` (small, grey) and the line `image_caption` under it (text; `**bold**` only: the page's own
    words, never a user's Markdown; a picture made ahead brings its own). `pad`: the (x, y)
    control keys the pad drives. `radius`: the control drawn as a ring. `stacks[key]`: a stack
    control's [(slice index, position), ...]. `pad_width`: the pad's width in CSS pixels (at most the
    column's); `pad_aspect`: height / width of a pad without an image.
    `columns`: sliders per row (default: all in one row, at most 3). `down_increases`: controls whose
    ArrowDown increases the value (the picture's y grows downwards; the pad's y control too).
    `legend`: words for the marked ranges {"dead": ..., "blend": ...}: the condition's `range_words`.
    `attention` / `overlay`: the picture's Gaussians and how to draw them (see the module's docstring).
    `labels_hash`: app/frame.labels_hash of the labels `image` is drawn from, where they alone make it (the
    browser then keeps a mask it decoded with the same labels instead of painting this one).
    `release`: the key of a fragment (`@st.fragment(key=...)`) that a final value reruns instead of the one
    the component is in (held values rerun that one alone: app/live_area.py).
    `frames_key`: names the pictures over the pad's (x, y) for the page's current state (None: no
    scrubbing), in `frames_parts` parts; the component asks for one part at a time when idle
    (`frames_wanted`), and `frames` is that part, sent once (app/scrub.py): {"key", "part", "parts", "x",
    "y", "base": {other control: value}, "points": [[x, y, data URI], ...], "strips" (part 0): {control:
    {"at": {other: value}, "values": [...], "images": [...]}}}. `frames_ready`: how many parts are made (the
    component asks only for those; default: all, each made in the run that answers its request)."""
    stacks = dict(stacks or {})
    live = _live(controls)
    keys = [control.key for control in live]
    for name in (*(pad or ()), *([radius] if radius else [])):
        if name not in keys:
            raise ValueError(f"the pad's control {name!r} is not one of the controls ({', '.join(keys)})")
    values = live_values(live, stacks)
    down = set(down_increases) | ({pad[1]} if pad else set())
    specs = [_spec(control, stacks.get(control.key), control.key in down) for control in live]
    marked = {kind for control in live for kind in ("dead", "blend") if getattr(control, kind)}
    words = {kind: text for kind, text in (legend or {}).items() if kind in marked}
    pad_args, hint = None, ""
    if pad:
        on_image = bool(image) and image_on_pad
        pad_args = {"x": pad[0], "y": pad[1], "r": radius, "width": int(pad_width), "aspect": float(pad_aspect),
                    "label": pad_label or ("Point on the image" if on_image else "Pad"), "on_image": on_image}
        hint = PAD_HINT.format(on="on the image" if on_image else "on the pad",
                               ring=", its ring's edge for the radius" if radius else "",
                               keys="; + and − the radius" if radius else "")
    data: RenderArgs = {"controls": specs, "values": values, "ack": live_state(key).get("ack"), "pad": pad_args,
            "image": image if pad else None, "labels_hash": labels_hash if pad and image else None,
            "image_label": image_label, "caption": image_caption if pad else None,
            "title": image_title if pad else None, "columns": columns or min(len(specs), 3) or 1,
            "attention": attention if pad and image else None, "overlay": dict(overlay) if overlay and pad else None,
            "legend": words or None, "hint": hint,
            "frames_key": frames_key if pad else None, "frames_parts": int(frames_parts) if pad else 0,
            "frames_ready": (int(frames_parts) if frames_ready is None else int(frames_ready)) if pad else 0,
            "frames": dict(frames) if frames and pad else None,
            "decoder": decoder if pad else None, "decoder_part": decoder_part if pad and decoder else None,
            "area": answers_alone(key, release)}
    _component(key=key, data=data, on_value_change=partial(_on_change, key, tuple(live), stacks, release))
    return values
