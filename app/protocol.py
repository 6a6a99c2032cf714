"""The messages between the page (Python) and the streaming controls in the browser, written once.

The browser side's types of these shapes are app/protocol.js (JSDoc `@typedef`s, imported by the component's
JS files and checked with `tsc --checkJs`, tests/test_js.py); its pure functions are app/live_controls_core.js,
tested with `node --test` (tests/js/). Every other docstring points here.

The transport is Streamlit's Custom Components v2 (app/live_controls.py mounts the component in the page).

Browser -> page (the component's "value" trigger, `setTriggerValue("value", message)`, read by the
`on_value_change` callback before the run; one at a time: the next leaves when this one is answered):

    ValueMessage = {"token": "<session>:<seq>", "seq": int, "values": {control key: value},
                    "final": bool,              # False while the pointer is held (more are coming)
                    "frames": "KEY#PART" | None,  # a request for one part of the pictures to scrub
                    "decoder": "KEY#1" | "KEY#0" | "off" | None,  # optional: the decoder's part for the offer
                                                # KEY, with (1) or without (0) the .onnx; "off": it failed here
                    "area": True}               # optional: redraw the rest of the explorer area for these values

A final value (the release, a key press) of controls drawn in their own fragment reruns that fragment alone
first: its answer (the exact frame) carries `area: True` (`RenderArgs.area`), and the browser then sends the
same values with `area: True`, which reruns the explorer area (the charts, captions, the link): the exact
picture does not wait for the charts.

Page -> browser (the component's `data` on every run, `RenderArgs`; Streamlit calls the module with it): the
controls' specs and the page's values, `ack` (the token of the last value the script answered: it frees the next
one), the pad, the picture (with `labels_hash`, the hash of the labels it is drawn from where they alone make it: a
mask the browser decoded with the same hash is kept, not painted again), its lines and its Gaussians (`attention`,
drawn over it on the grid and in the colours of `overlay`), and the scrubbing offer: `frames_key` / `frames_parts`
name the pictures made ahead for the page's current state, and `frames` is the one part asked for, sent in that run
only (`FramesPart`). Every picture made ahead carries its own Gaussians and Dice line, so while a control is dragged
the component paints them with the picture, asking nothing of anyone.

Decoding in the browser (app/live_decoder.js, app/static/decoder_worker.js): `decoder` (`DecoderOffer`, a few
bytes, every run) names what the browser needs to decode the pad's values itself (the model, the image's
features, the grid of z values); it asks once for what it lacks (`ValueMessage.decoder`) and the answering run
alone sends it (`decoder_part`, `DecoderPart`: the .onnx once per model and page, the features as float32 once
per image, z for every value the pad's two controls can hold, and each value's ground truth, so the browser writes
the decoded mask's Dice line as the page does: `TruthPart`). While the pointer is held on values the grid
covers, nothing is sent to the page; the release's exact value is, as always.

Flow control (app/live_controls_core.js `Flow`): at most one value in flight; a move while one is in flight
replaces the pending one (the newest wins, stale ones are dropped, nothing queues); the release's exact
value leaves at once; while a picture made ahead covers the pointer, exact answers are asked for at most
every SCRUB_GAP_MS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

SCRUB_GAP_MS = 200  # while scrubbing, the page's exact answer at most this often (the JS side's constant too)


class ValueMessage(TypedDict):
    token: str
    seq: int
    values: dict[str, float | int]
    final: bool
    frames: str | None
    decoder: NotRequired[str | None]
    area: NotRequired[bool]


# a picture's drawn INSIDE channels (app/frame.gaussians), in pixels of the model's grid (pixel k's centre at
# k): [means x, means y, 1-sigma radii x, radii y, gamma, where z points: [column, row, ring rx, ring ry]
# (rings None without a radius) or None]
Gaussians = list


class OverlaySpec(TypedDict):
    """How the component draws Gaussians over its picture (app/frame.overlay_spec)."""

    grid: list[int]  # (height, width) of the model's grid the Gaussians are in
    ring: str  # colours: the 1-sigma rings, the means with gamma >= 0 and < 0, where z points
    positive: str
    negative: str
    marker: str
    key: str  # the line under the picture that says what they are


class Strip(TypedDict):
    """Every step of one slider with the pad's other control held: the page's own pictures."""

    at: dict[str, float | int]
    values: list[float]
    images: list[str]  # JPEG data URIs
    attention: list[Gaussians | None]  # each picture's Gaussians or None
    captions: list[str | None]  # each picture's Dice line


class FramesPart(TypedDict, total=False):
    """One part of the pictures made ahead over the pad's (x, y) (app/scrub.py)."""

    key: str
    part: int
    parts: int
    x: str
    y: str
    base: dict[str, Any]  # the other controls' values the pictures were made for
    points: list[list]  # [x value, y value, picture, Gaussians or None, Dice line or None]
    exact: bool  # every pad value is a point, drawn as the page draws it (its answer: the same picture)
    strips: dict[str, Strip]  # part 0 only


class DecoderOffer(TypedDict):
    """What the browser may decode for the page's current state (app/scrub.browser_decoder)."""

    key: str  # names the part: model, image, the other controls' values, the channels drawn
    model: str  # the model's key: its .onnx is sent once per page
    ready: bool  # False while the model is being exported (the pictures made ahead meanwhile)


class ZGrid(TypedDict):
    """z for every value the pad's two controls can hold (their step grids), the other controls at `base`."""

    x: str
    y: str
    xs: list[float]  # [low, step, count, decimals] of x's grid
    ys: list[float]
    dim: int
    base: dict[str, float | int]
    data: str  # base64 of float32 little-endian, (len(ys), len(xs), dim)


TRUTH_NONE = 255  # a grid value's truth index where it has no ground truth (app/scrub.truth_part)


class TruthPart(TypedDict):
    """The ground truth of every value of the decoder part's grid, and the Dice line's words (app/frame.dice_line):
    the browser writes each decoded mask's line (app/decode_core.js `truthLine`)."""

    index: str  # base64 of uint8, one per grid value (row-major: y, then x): its map, or TRUTH_NONE
    maps: list[list[int]]  # the distinct maps at the model's grid (H x W), row-major runs: [label, count, ...]
    labels: list[int]  # the labels Dice is counted for (Explorer.dice_per_class)
    names: list[str]  # their names in the line (palette.label_names)
    lead: str  # frame.DICE_LEAD
    empty: str  # frame.EMPTY_TRUTH: added where the truth is empty
    none: str  # frame.NO_GROUND_TRUTH: the line without ground truth


class DecoderPart(TypedDict, total=False):
    """What the browser decodes with (sent in the run that answers its request)."""

    key: str
    model: str
    onnx: str | None  # base64 of the .onnx (None: the browser said it has this model)
    inputs: dict[str, list]  # input name -> [shape, base64 of `dtype` little-endian]
    dtype: str  # "float32" (float16 where absent: an older page)
    logits: list[int]  # (1, K, H, W)
    grid: ZGrid
    layer: int  # the conditioning layer whose Gaussians are drawn
    channels: list[int] | None  # the drawn channels (None: no Gaussians)
    keep: list[int]  # labels whose largest connected component alone is kept (the card's recipe)
    anatomy: bool  # the card's recipe also enforces the cardiac anatomy (not done in the browser)
    base: str  # the picture the mask is drawn over, at the page's size (PNG data URI)
    colours: dict[str, list[float]]  # label -> RGB
    alpha: float  # how much of a label's colour is blended in
    truth: TruthPart | None  # each grid value's ground truth, for its Dice line (None: the line waits for the page)


class RenderArgs(TypedDict, total=False):
    controls: list[dict[str, Any]]
    values: dict[str, float | int]
    ack: str | None
    pad: dict[str, Any] | None  # {"x", "y", "r", "width", "aspect", "label", "on_image"}
    image: str | None
    labels_hash: str | None  # app/frame.labels_hash of the picture's labels (None: more than its labels drawn)
    image_label: str
    caption: str | None
    title: str | None
    attention: Gaussians | None  # the picture's Gaussians, drawn over it
    overlay: OverlaySpec | None
    columns: int
    legend: dict[str, str] | None
    hint: str
    frames_key: str | None
    frames_parts: int
    frames_ready: int  # parts 0 .. frames_ready - 1 are made (app/ahead.py): asked for, they come at once
    frames: FramesPart | None
    decoder: DecoderOffer | None
    decoder_part: DecoderPart | None
    area: bool  # this run answered a final value alone (the controls' fragment): ask for the rest of the area


@dataclass(frozen=True)
class Scrub:
    """The page's offer of pictures to scrub: their `key` (the state they were made for), how many
    `parts`, and `make(part)`, the part as sent (called only in the run that answers the request). `eager`:
    every part is pictures the page would answer with (ACDC's lattice of every value), so they are made while a
    control is held too (app/ahead.py)."""

    key: str
    parts: int
    make: Callable[[int], FramesPart]
    eager: bool = False


@dataclass(frozen=True)
class BrowserDecoder:
    """The page's offer to decode in the browser (`offer`), and `make(with_model)`, the part as sent (called
    only in the run that answers the request)."""

    offer: DecoderOffer
    make: Callable[[bool], DecoderPart]


def parse_decoder_request(text: Any) -> tuple[str, bool] | None:
    """(key, with the .onnx) of a `decoder` field, ("off", False) if the browser could not decode, or None."""
    if text == "off":
        return "off", False
    name, _, flag = str(text or "").rpartition("#")
    return (name, flag == "1") if name and flag in ("0", "1") else None


def frames_request(key: str, part: int) -> str:
    """The `frames` field of a ValueMessage asking for one part."""
    return f"{key}#{part}"


def parse_frames_request(text: Any) -> tuple[str, int] | None:
    """(key, part) of a `frames` field, or None if it is not one."""
    name, _, part = str(text or "").rpartition("#")
    return (name, int(part)) if name and part.isdigit() else None
