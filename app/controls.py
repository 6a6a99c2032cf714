"""The conditioning controls of the page, drawn from the model's condition (`inside_core.conditions`).

    controls = read_controls(condition, source, index)   # select boxes drawn; every value read
    ...compute and draw what the values drive (the mask)...
    draw_live_controls(controls, slot, image=mask_uri)   # the streaming sliders (and the point on the image)

Each `Control` of the condition is keyed by the control's key (also its URL key). A "select" is a
`st.selectbox`, drawn at once. The continuous ones ("slider", and "stack": a slider over the sample's
slices whose value in z is the slice's position from base to apex, as the data decided it) are one
streaming component (app/live_controls.py): `st.slider` sends its value only on release, so nothing
would follow the pointer. Their values are read from the session state before anything is drawn
(`live_values`: a move's callback has written them), and the component is drawn into a slot *above*
what it drives but *after* it in the script, so the mask reaches the browser before the next value
leaves. For a condition with a point on the image (a location, a label's centre) the component is
also that image: the point, and a radius ring, are dragged on the predicted mask itself.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import streamlit as st

from app import ahead as made_ahead
from app import page_state
from app.live_controls import decoder_wanted, dragging, frames_wanted, live_controls, live_values
from app.protocol import BrowserDecoder, Scrub
from app.text import plain
from inside_core.conditions import Condition

LIVE_KEY = "conditioning"  # the streaming component's own key (not a control's)
PAD_WIDTH = 420  # CSS pixels of the point pad on the image (at most the column's width)


@dataclass
class ControlValues:
    """What the controls hold: by widget key (`values`, e.g. a slice index) and as the condition's
    `encode` takes them (`z_values`, e.g. the slice's position), the caption saying what z is, and what
    the streaming component needs to be drawn (`draw_live_controls`)."""

    values: dict[str, Any]
    z_values: dict[str, Any]
    caption: str
    condition: Condition | None = None
    stacks: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    point: tuple[str, str, str | None] | None = None  # (x key, y key, radius key) of a point on the image
    dragging: bool = False  # the values came while the pointer was held (more are coming; the final follows)

    @property
    def live(self) -> bool:
        """Whether any control streams (is drawn by `draw_live_controls`)."""
        return bool(self.condition and any(c.continuous for c in self.condition.controls))

    @property
    def pad_keys(self) -> tuple[str, str, str | None, bool] | None:
        """The pad the controls are drawn with: (x key, y key, radius key, on the image): the point on the
        image, or a plain pad over a stack and the one other continuous control (ACDC: phase x slice
        position, slice lines at the stack's own positions); None without a pad."""
        if self.point is not None:
            return (*self.point, True)
        continuous = [c.key for c in self.condition.controls if c.continuous] if self.condition else []
        if len(self.stacks) == 1 and len(continuous) == 2:
            stack = next(iter(self.stacks))
            return next(k for k in continuous if k != stack), stack, None, False
        return None


def slice_stacks(condition: Condition, source, index: int) -> dict[str, list[tuple[int, float]]]:
    """Each stack control's slices of this sample, base to apex: [(slice index, position), ...]."""
    stacks = {}
    for control in condition.controls:
        if control.kind == "stack":
            stacks[control.key] = [(int(k), float(source.position(index, k))) for k in source.slice_order(index)]
    return stacks


def _draw_select(control, container) -> Any:
    page_state.default(control.key, control.default, control.valid)
    # labels and help render Markdown (images included): a card's variable names go in as plain text (issue 23)
    return container.selectbox(plain(control.label), list(control.options), key=control.key, persist_state="session",
                               help=plain(control.help) if control.help else None)


def _parser(control):
    return str if control.kind == "select" else int if control.kind == "stack" else page_state.number


def use_own_values(condition: Condition, source, index: int) -> None:
    """Set the controls to the case's own values (a user's table and what its label says; missing ones kept)."""
    stacks = slice_stacks(condition, source, index)
    stack_key = next(iter(stacks), None)
    own = source.own_values(index, int(st.session_state.get(stack_key, 0)) if stack_key else 0)
    for control in condition.controls:
        value = own.get(control.key)
        if value is not None and control.kind != "stack" and control.valid(value):
            st.session_state[control.key] = value


def read_controls(condition: Condition, source, index: int) -> ControlValues:
    """Draw the condition's select boxes (in one row) and read every control's value; the streaming
    ones are drawn later by `draw_live_controls`. A user's dataset (a source that offers "table") starts
    from the case's own values and has a button to go back to them."""
    page_state.url_controls({c.key: _parser(c) for c in condition.controls})
    stacks = slice_stacks(condition, source, index)
    if "table" in source.offers:
        if not any(c.key in st.session_state for c in condition.controls):
            use_own_values(condition, source, index)
        st.button("This case's own values", key="own_values", on_click=use_own_values,
                  args=(condition, source, index), help="the values in the table and what the label says "
                  "(where the lesion is, how big): the conditions this image was annotated with")
    selects = [c for c in condition.controls if c.kind == "select"]
    columns = st.columns(len(selects)) if len(selects) > 1 else [st] * len(selects)
    values = {control.key: _draw_select(control, columns[selects.index(control)]) for control in selects}
    return reread(ControlValues(values, dict(values), "", condition, stacks, condition.image_point()))


def reread(controls: ControlValues) -> ControlValues:
    """`controls` with the streaming controls' values as the state holds them now (missing or invalid ones
    set to their defaults) and whether they came held; the select boxes' values are kept (a held value reruns
    the streaming controls alone, app/live_area.py: the select boxes are not drawn again)."""
    live = live_values(controls.condition.controls, controls.stacks)
    values, z_values = dict(controls.values), dict(controls.z_values)
    for key, value in live.items():
        if key in controls.stacks:  # a slice index; z holds its position
            values[key], z_values[key] = int(value), dict(controls.stacks[key])[int(value)]
        else:
            values[key] = z_values[key] = float(value)
    return replace(controls, values=values, z_values=z_values, caption=controls.condition.caption_for(z_values),
                   dragging=dragging(LIVE_KEY))


def draw_live_controls(controls: ControlValues, slot, image: str | None = None, frames: Scrub | None = None,
                       image_caption: str | None = None, image_title: str | None = None,
                       attention: list | None = None, overlay: dict | None = None, release: str | None = None,
                       decoder: BrowserDecoder | None = None, labels_hash: str | None = None) -> None:
    """The streaming sliders into `slot` (a container above what they drive; None: here), and their pad: with `image`
    (a data URI of the predicted mask) the point and its ring are dragged on that image, or the image is
    drawn under a plain pad (ACDC). `frames`: the pictures the browser scrubs while the pad or a slider is
    dragged (app/scrub.py); a part is made only in the run the component asked for it. `image_caption`:
    the line under the image (the Dice line: Markdown bold only), drawn by the component so that it follows
    the pointer with the pictures made ahead; `image_title`: the image's own caption, above that line.
    `attention`, `overlay`: the image's Gaussians (app/frame.gaussians), drawn over it as `overlay` says
    (app/frame.overlay_spec). `release`: the fragment a final value reruns (app/live_area.py; None: the
    one the controls are drawn in). `decoder`: the offer to decode in the browser while the pad is held
    (app/scrub.browser_decoder); its part is made only in the run the component asked for it. The legend of
    the sliders' marked ranges is the condition's own words. `labels_hash`: the hash of the labels `image` is
    drawn from (app/frame.Frame.labels), so the browser keeps a decoded mask that is the same."""
    if not controls.live:
        return
    pad_keys = controls.pad_keys
    if pad_keys is not None and pad_keys[3] and image is None:  # a point on the image, without the image
        pad_keys = None
    pad, radius, label, on_image = None, None, None, False
    if pad_keys is not None:
        pad, radius, on_image = pad_keys[:2], pad_keys[2], pad_keys[3]
        names = [controls.condition.control(k).label.split(" (")[0] for k in pad]
        label = "Point on the image" if on_image else f"{names[0]} and {names[1].lower()}"  # "Phase and slice"
    down = tuple(key for key in (controls.point or ())[:2] if key.endswith("_y"))
    scrub = frames if frames is not None and pad is not None else None
    # the parts made by the session's thread (app/ahead.py): this run ships one made, never makes it
    ahead = made_ahead.follow(page_state.session(), scrub, controls.dragging) if pad is not None else None
    grid, reason = None, ahead.failed if ahead is not None else None
    part = frames_wanted(LIVE_KEY, scrub.key) if scrub else None
    if part is not None and part < scrub.parts and ahead is not None:
        grid = ahead.take(part)
    elif ahead is not None and controls.dragging:  # held: a part made since, which the component does not ask for
        grid = ahead.news()
    elif part is not None and part < scrub.parts:
        try:
            grid = scrub.make(part)
        except (RuntimeError, MemoryError, OSError, ValueError) as error:  # (DataError, SourceError: ValueErrors)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    if reason is not None:  # no (more) pictures made ahead: the drag streams the exact answers, the page goes on
        st.caption(f"Scrubbing is off for this view (the pictures to scrub could not be made: "
                   f"{plain(reason)}); the controls still stream.")
    parts = 0 if scrub is None else ahead.ready() if ahead is not None and ahead.failed else scrub.parts
    offer = decoder.offer if decoder is not None and pad is not None else None
    wanted = decoder_wanted(LIVE_KEY, offer["key"]) if offer else None
    decoder_part = None
    if wanted is not None and offer["ready"]:
        try:
            decoder_part = decoder.make(wanted)
        except (RuntimeError, MemoryError, OSError, ValueError):  # the drag streams the page's answers instead
            decoder_part = None
    with slot if slot is not None else nullcontext():
        live_controls(controls.condition.controls, key=LIVE_KEY, image=image if pad else None, image_on_pad=on_image,
                      image_caption=image_caption if pad else None, image_title=image_title if pad else None,
                      image_label="predicted mask", pad=pad, radius=radius, stacks=controls.stacks, pad_label=label,
                      pad_width=PAD_WIDTH if on_image else 300, down_increases=down or ("loc_y",),
                      frames_key=scrub.key if scrub else None, frames_parts=parts, frames=grid,
                      frames_ready=parts if ahead is None else ahead.ready(),
                      legend=controls.condition.range_words, attention=attention if pad else None,
                      overlay=overlay if pad else None, release=release, decoder=offer, decoder_part=decoder_part,
                      labels_hash=labels_hash if pad else None)
