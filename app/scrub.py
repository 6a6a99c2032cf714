"""Scrubbing: pictures of the predicted mask made ahead over the pad's two controls, so the browser can
show them while the pad (or one of its sliders) is dragged, at the display's rate, between the page's
exact answers (app/live_controls.js shows them).

    scrub = scrub_frames(explorer, controls, options, image=view.image)  # None where there is nothing to scrub
    draw_live_controls(controls, slot, image=..., frames=scrub)          # the component asks for the parts

What is made: a lattice over the pad's (x, y), finest every `LATTICE_SPACING` of a slider's range (21
values over [-1, 1]; every step of a slider with coarser steps, e.g. ACDC's phase) and every slice of a
stack, coarse points first (every 4th lattice value, then every 2nd, then the rest), cut into parts of
`PART_POINTS` pictures (fewer where each point may be another image). The component asks for one part at
a time, when idle, so no request holds the server for long (0.3-1.4 s a part here:
benchmarks/bench_dashboard.py) and scrubbing is already useful after the first. Part 0 also holds the
"strips": every step of each slider axis with the other control held where it is, drawn by the page's own
recipe at the page's size, so a slider drag that ends on a step shows its final picture before the page
answers (it answers with the same bytes). Every picture is a frame (app/frame.py, `make_frames`); the
lattice's are the same recipe at a smaller size, except where the lattice holds every value the pad can take
(ACDC: every phase step x every slice, `every_value`): there each point is the page's own frame, drawn at the
page's size (a release on it is answered with the picture already shown, so nothing is painted again), there
are no strips (the lattice's rows are), and each part is one row (every phase step of one slice, ~1.2 MB): the
row through the page's point first (in the browser soon after the sample opens), then the nearer slices' rows.
They are made while a control is held too (`Scrub.eager`) and sent with the held answers (app/ahead.py).

With INSIDE's attention drawn for a fixed set of channels (`options.channels`: the page's conditioning
panel's), each picture carries what that figure draws for its z, in pixels (the means, the 1-sigma radii, gamma,
and where z points): the browser draws them over the picture (app/live_overlay.js), so they move with the mask.

Each point's view comes from the page's `place` (app/place.py, `view_at`): where the image follows the
controls (ACDC: the cine frame for the phase, the chosen slice), each distinct image is encoded once per part
(a throw-away Explorer: the page's cache of Explorers is not disturbed). The ground truth (each point's own:
on CLEVR-Seg it follows the point) gives each picture its Dice line, and its outline where the page shows
it; the model never sees it.

Decoding in the browser (`browser_decoder`, the default where it can: $INSIDE_DASHBOARD_DECODE=server turns
it off): where the pad is a point on the image and the image does not follow the controls, the browser is
offered the decoder instead (the .onnx of the model, exported once in the background, the image's features
as float32, z for every value of the pad's step grid, and each value's ground truth by the page's own rule,
`truth_part`, so the browser writes each mask's Dice line as app/frame.dice_line does): it decodes every held
value itself, exactly, and no pictures are made ahead. Until the export is ready, for a model whose export
failed, and in a browser whose worker did not start, the pictures made ahead stay.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from app import loading, plots
from app.controls import LIVE_KEY, ControlValues
from app.frame import DICE_LEAD, DISPLAY_PIXELS, EMPTY_TRUTH, MAX_CHANNELS, NO_GROUND_TRUTH, FrameOptions, make_frames
from app.live_controls import decimals, decoder_failed, png_data_uri
from app.place import Place, view_at
from app.protocol import TRUTH_NONE, BrowserDecoder, DecoderPart, Scrub, TruthPart, ZGrid
from inside_core import palette
from inside_core.explorer import Explorer, prepare_mask

LATTICE_SPACING = 0.05  # of a slider's range: 21 values (a coarser step: every step)
PART_POINTS = 121  # pictures per part (the first part: an 11 x 11 lattice over a location pad)
PART_POINTS_NEW_IMAGES = 60  # where the image follows the pad, a point may need an encode too: smaller parts
SCRUB_PIXELS = 240  # each lattice picture's longer side (the exact answers are drawn at DISPLAY_PIXELS)
SCRUB_QUALITY = 80  # JPEG quality of the lattice pictures (the strips are the page's own pictures)


def _slider_values(control) -> list[float]:
    """A slider's lattice: every LATTICE_SPACING of its range, or every step where steps are coarser."""
    spacing = max(float(control.step), LATTICE_SPACING * (control.high - control.low))
    count = int(round((control.high - control.low) / spacing)) + 1
    return [round(float(v), 6) for v in np.linspace(control.low, control.high, count)]


def _rank(index: int) -> int:
    """How coarse a lattice index is: 0 for every 4th, 1 for every 2nd, 2 for the rest."""
    return 0 if index % 4 == 0 else 1 if index % 2 == 0 else 2


def every_value(controls: ControlValues) -> bool:
    """Whether the lattice holds every value the pad can take (ACDC: every phase step x every slice): then its
    pictures are the page's own frames (same recipe, same size), so the release's answer is a picture already
    shown (the same bytes) and needs no repaint."""
    for key in controls.pad_keys[:2]:
        control = controls.condition.control(key)
        if control.kind != "stack" and \
                len(_slider_values(control)) != int(round((control.high - control.low) / control.step)) + 1:
            return False
    return True


def _positions(controls: ControlValues, key: str) -> dict:
    """A pad axis's values -> their rank along it (a stack's slices base to apex; a slider's values in order)."""
    control = controls.condition.control(key)
    values = [index for index, _ in controls.stacks[key]] if control.kind == "stack" else _slider_values(control)
    return {value: rank for rank, value in enumerate(values)}


def part_bounds(count: int, size: int) -> list[tuple[int, int]]:
    """[start, end) of each part of `count` points, `size` each (the last may be shorter)."""
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def lattice(controls: ControlValues) -> list[dict]:
    """The pad's points, coarse ones first: [{x key: value, y key: value}, ...] (a stack's value: a slice)."""
    axes = []
    for key in controls.pad_keys[:2]:
        control = controls.condition.control(key)
        if control.kind == "stack":  # every slice, in every part: the image changes with each
            axes.append((key, [index for index, _ in controls.stacks[key]], lambda _i: 0))
        else:
            axes.append((key, _slider_values(control), _rank))
    (x_key, xs, x_rank), (y_key, ys, y_rank) = axes
    points = [(max(x_rank(i), y_rank(j)), j, i) for j in range(len(ys)) for i in range(len(xs))]
    return [{x_key: xs[i], y_key: ys[j]} for _, j, i in sorted(points)]


def scrub_frames(explorer: Explorer, controls: ControlValues, options: FrameOptions, image=None,
                 place: Place | None = None) -> Scrub | None:
    """The pictures to scrub for the page's current state, or None (no pad; $INSIDE_DASHBOARD_SCRUB=0, e.g.
    for a remote deployment: ~4-8 MB of pictures per sample; the controls then stream the exact answers only).

    `options`: how the page draws its frame (the ground truth outlined, the channels whose Gaussians it
    carries): the pictures made ahead are drawn the same way. `image`: the view's image (drawn under the
    mask). `place`: where the page's views come from (app/place.py): each point's view gives its picture's
    Dice line, and its image where the image follows the controls (ACDC); its `identity` then names what the
    points' views depend on besides the pad (model, sample, the follow toggle), since the explorer changes
    with the pad. Without a place: no Dice lines, no ground truth outlined."""
    if controls.pad_keys is None or os.environ.get("INSIDE_DASHBOARD_SCRUB", "1") == "0":
        return None
    options = options if place is not None else FrameOptions(False, options.channels, options.layer)
    identity = place.identity if place is not None else None
    condition = controls.condition
    x_key, y_key = controls.pad_keys[:2]
    base = {k: v for k, v in controls.values.items() if k not in (x_key, y_key)}
    seed = json.dumps([identity or f"{id(explorer):x}", base, options.channels, options.layer, options.outline_truth],
                      sort_keys=True, default=str)
    key = hashlib.sha1(seed.encode()).hexdigest()[:16]
    points = lattice(controls)
    size = PART_POINTS if identity is None else PART_POINTS_NEW_IMAGES  # the image follows: ~0.5-1.2 s a part
    # every pad value a lattice point (ACDC): the page's own pictures, no strips (they are the lattice's rows); the
    # first part small, the row through the page's point (what the strip was), so it is in the browser soon
    exact = place is not None and every_value(controls)
    if exact:  # a part per row (every x of one y: ~1.2 MB, sent with a held answer), the page's row, then the nearer
        position = _positions(controls, y_key)
        here_at = position[controls.values[y_key]]
        rows = sorted(position, key=lambda y: (abs(position[y] - here_at), position[y]))
        points = [p for y in rows for p in sorted((p for p in points if p[y_key] == y), key=lambda p: p[x_key])]
        size = len(points) // len(rows)
    bounds = part_bounds(len(points), size)
    parts = len(bounds)
    explorers: dict = {}  # view key -> (explorer, image): per part, then dropped
    here: list = []  # the page's own view key, once asked
    # the lattice's frames: smaller, 4:2:0 (shown for a moment while the pointer moves on)
    small = FrameOptions(options.outline_truth, options.channels, options.layer, SCRUB_QUALITY, subsampling=2)

    def source_of(view):
        view_key = None if view is None else view.key
        if view_key not in explorers:
            if view is not None and not here:
                here.append(view_at(place, controls.values).key)
            explorers[view_key] = (explorer, image) if view is None or view_key == here[0] else \
                (Explorer(explorer.model, view.image), view.image)
        return explorers[view_key]

    def z_values_of(values: dict) -> dict:
        z_values = dict(controls.z_values)
        for k, v in values.items():
            z_values[k] = dict(controls.stacks[k])[v] if k in controls.stacks else v
        return z_values

    def pictures(batch: list[dict], exact: bool = False) -> list[tuple[str, list | None, str | None]]:
        """(picture, Gaussians, Dice line) for each of `batch` (point values): frames at the scrubbing size
        for the lattice; for `exact` ones (the strips) at the page's (the same bytes the page answers with)."""
        views = [view_at(place, {**controls.values, **values}) if place else None for values in batch]
        groups: dict = {}
        for n, view in enumerate(views):  # one decode batch per image
            groups.setdefault(id(source_of(view)), []).append(n)
        made: list = [None] * len(batch)
        for members in groups.values():
            found, shown = source_of(views[members[0]])
            picture = loading.display_picture(found, shown, DISPLAY_PIXELS if exact else SCRUB_PIXELS)
            truths = [None if views[n] is None else views[n].ground_truth for n in members]
            frames = make_frames(found, condition, [z_values_of(batch[n]) for n in members], truths, picture,
                                 options if exact else small)
            for n, frame in zip(members, frames, strict=True):
                made[n] = (frame.data_uri, frame.gaussians, None if views[n] is None else frame.line)
        return made

    def make(part: int) -> dict:
        chunk = points[slice(*bounds[part])]
        frames = {"key": key, "part": part, "parts": parts, "x": x_key, "y": y_key, "base": base, "exact": exact,
                  "points": [[p[x_key], p[y_key], *made] for p, made in zip(chunk, pictures(chunk, exact),
                                                                             strict=True)]}
        if part == 0 and not exact:  # every slider step of x (y held), and of y (x held): what one slider's drag passes
            frames["strips"] = {}
            for moved, held in ((x_key, y_key), (y_key, x_key)):
                control = condition.control(moved)
                if control.kind == "stack":
                    continue
                values = [round(float(v), 6) for v in np.arange(control.low, control.high + control.step / 2,
                                                                 control.step)]
                made = pictures([{moved: v, held: controls.values[held]} for v in values], exact=True)
                frames["strips"][moved] = {"at": {held: controls.values[held]}, "values": values,
                                           "images": [m[0] for m in made], "attention": [m[1] for m in made],
                                           "captions": [m[2] for m in made]}
        explorers.clear()
        return frames

    return Scrub(key, parts, loading.taking_turns(make), eager=exact)  # bounded memory: a few sessions' parts at once


# ------------------------------------------------------------------------------------------ in the browser
def decode_mode() -> str:
    """Where held values are decoded: "browser" (default, where the page can) or "server" (the pictures made
    ahead and the page's exact answers only): $INSIDE_DASHBOARD_DECODE."""
    return "server" if os.environ.get("INSIDE_DASHBOARD_DECODE", "browser").strip().lower() == "server" else "browser"


def _grid(control) -> list[float]:
    """[low, step, count, decimals]: every value a slider can hold (app/live_controls.clean's grid)."""
    step = float(control.step)
    return [float(control.low), step, int(round((control.high - control.low) / step)) + 1, decimals(step)]


def _pad_grid(controls: ControlValues) -> tuple[list[float], list[float], list[list[float]]]:
    """The pad's two sliders' grids ([low, step, count, decimals]) and every value of each."""
    xs, ys = (_grid(controls.condition.control(key)) for key in controls.pad_keys[:2])
    return xs, ys, [[round(low + k * step, places) for k in range(count)] for low, step, count, places in (xs, ys)]


def z_grid(controls: ControlValues) -> ZGrid:
    """z (the condition's `encode`) for every value of the pad's two sliders, the other controls as they are."""
    condition = controls.condition
    x_key, y_key = controls.pad_keys[:2]
    xs, ys, at = _pad_grid(controls)
    table = np.array([[condition.encode(**{**controls.z_values, x_key: x, y_key: y}) for x in at[0]] for y in at[1]],
                     dtype="<f4")
    base = {k: v for k, v in controls.values.items() if k not in (x_key, y_key)}
    return {"x": x_key, "y": y_key, "xs": xs, "ys": ys, "dim": int(table.shape[-1]), "base": base,
            "data": base64.b64encode(table.tobytes()).decode("ascii")}


def _truth_rule(place: Place) -> tuple[Callable[[dict], Any], Callable[[dict], str]]:
    """The page's ground truth for control values (app/place.view_at's), and a name of what it follows of them
    (values with the same name share it). A source with a rule that follows the controls (CLEVR-Seg's
    `ground_truth`, its scene's objects read once) follows them through the condition's `ground_truth_value`
    alone (the dominant quadrant; the point and radius); any other source's truth is its view's, which follows no
    slider (the image does not follow the pad where the browser decodes: `Place.identity` is None)."""
    source, index, condition = place.source, place.index, place.condition
    if "scene" in source.offers:
        objects = loading.clevr_objects(source, source.label, index)
        return (lambda values: source.ground_truth(index, condition, values, objects)[0],
                lambda values: repr(condition.ground_truth_value(values)))
    return (lambda values: view_at(place, values).ground_truth), (lambda values: "")


def truth_part(place: Place, controls: ControlValues, size: tuple[int, int], num_classes: int) -> TruthPart | None:
    """The ground truth of every value of the pad's grid (`z_grid`'s), for the browser to write each decoded
    mask's Dice line as app/frame.dice_line does: the distinct maps at the model's grid (`prepare_mask`, as
    `dice_line`), run-length coded, and each value's map (TRUTH_NONE: no ground truth, the frame's line
    NO_GROUND_TRUTH). None where the maps do not fit (labels over 254, more than 254 distinct maps)."""
    x_key, y_key = controls.pad_keys[:2]
    _, _, (xs, ys) = _pad_grid(controls)
    rule, follows = _truth_rule(place)
    found: list[np.ndarray] = []  # the distinct truths at the source's size, in the order first met
    known: dict[str, int] = {}  # what a truth follows -> its index in `found` (or TRUTH_NONE)
    index = bytearray()
    last = -1  # neighbouring values mostly share a truth: compared with the last one first
    for y in ys:
        for x in xs:
            values = {**controls.values, x_key: x, y_key: y}
            name = follows(values)
            if name not in known:
                truth = rule(values)
                if truth is None:
                    known[name] = TRUTH_NONE
                else:
                    truth = np.asarray(truth)
                    if last < 0 or not np.array_equal(found[last], truth):
                        last = next((k for k, seen in enumerate(found) if np.array_equal(seen, truth)), len(found))
                        if last == len(found):
                            found.append(truth)
                    known[name] = last
            index.append(known[name])
    maps: dict[bytes, int] = {}  # prepared maps (two truths may meet at the model's grid) -> their index
    runs, moved = [], []
    for truth in found:
        prepared = prepare_mask(truth, size)
        key = prepared.astype(np.uint8).tobytes()
        if prepared.min() < 0 or prepared.max() >= TRUTH_NONE or len(maps) >= TRUTH_NONE:
            return None
        if key not in maps:
            maps[key] = len(runs)
            runs.append(run_lengths(prepared))
        moved.append(maps[key])
    coded = bytes(TRUTH_NONE if k == TRUTH_NONE else moved[k] for k in index)
    return {"index": base64.b64encode(coded).decode("ascii"), "maps": runs, **line_words(num_classes)}


def truth_or_none(place: Place, controls: ControlValues, size: tuple[int, int], num_classes: int) -> TruthPart | None:
    """`truth_part`, or None where a value's view cannot be read (a bad case file: DataError, SourceError, OSError):
    the browser then says the line comes with the page's frame, which reports the error itself."""
    try:
        return truth_part(place, controls, size, num_classes)
    except (ValueError, OSError):
        return None


def line_words(num_classes: int) -> dict[str, Any]:
    """What app/frame.dice_line writes its line with, for a model of `num_classes` outputs: the labels Dice is
    counted for (as Explorer.dice_per_class), their names, the words."""
    labels = list(range(1, max(int(num_classes), 2)))
    names = palette.label_names(num_classes)
    return {"labels": labels, "names": [str(names.get(k, k)) for k in labels], "lead": DICE_LEAD,
            "empty": EMPTY_TRUTH, "none": NO_GROUND_TRUTH}


def run_lengths(labels: np.ndarray) -> list[int]:
    """A label map, row-major, as [label, count, label, count, ...] (its runs)."""
    flat = np.asarray(labels).reshape(-1)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1])
    counts = np.diff(np.concatenate([starts, [flat.size]]))
    return np.stack([flat[starts], counts], axis=1).reshape(-1).astype(int).tolist()


def browser_decoder(explorer: Explorer, controls: ControlValues, options: FrameOptions, image, place: Place,
                    model_key: str, image_key: str) -> BrowserDecoder | None:
    """The offer to decode the pad's held values in the browser, or None where it cannot: decoding on the
    server ($INSIDE_DASHBOARD_DECODE=server), no point on the image, an image that follows the controls
    (each value another image: app/place.py), a slice stack on the pad, no z, the exporter not installed,
    the model's export failed, or this browser said its worker did not start. `model_key` is the model's
    checkpoint file (exported once, in a child process), `image_key` the view's image; `options`: the page's
    frame options (the channels whose Gaussians are drawn)."""
    from inside_core import onnx_decoder

    if decode_mode() == "server":
        return None
    pad = controls.pad_keys
    if pad is None or not pad[3] or place.identity is not None \
            or not explorer.conditioned or decoder_failed(LIVE_KEY):
        return None
    if any(controls.condition.control(key).kind != "slider" for key in pad[:2]):
        return None
    try:
        onnx_decoder.require_onnx()
    except ImportError:
        return None
    made = onnx_decoder.EXPORTS.get(model_key)
    if made is None and onnx_decoder.EXPORTS.failed(model_key):
        return None
    base = {k: v for k, v in controls.values.items() if k not in pad[:2]}
    channels = None if options.channels is None else [int(c) for c in options.channels]
    model = hashlib.sha1(model_key.encode()).hexdigest()[:12]
    seed = json.dumps([model, image_key, base, channels, options.layer], sort_keys=True, default=str)
    key = hashlib.sha1(seed.encode()).hexdigest()[:16]

    def make(with_model: bool) -> DecoderPart:
        onnx = onnx_decoder.EXPORTS.get(model_key)
        probabilities = explorer.update(controls.condition.encode(**controls.z_values)).probabilities
        zeros = np.zeros(explorer.cond_dim, np.float32)
        recipe = explorer.recipe or {}
        picture = loading.display_base(explorer, image, DISPLAY_PIXELS)
        return {"key": key, "model": model, "onnx": base64.b64encode(onnx).decode("ascii") if with_model else None,
                # float32, not float16: with float16 features 3-33 % of the masks differed from the page's in a few
                # pixels at the page's size (4 images, 30 z each; 0 with float32), so the release's exact frame
                # would have to be painted again (the browser keeps a decoded mask only when its labels are the same)
                "dtype": "float32", "inputs": {name: [list(array.shape), base64.b64encode(array.astype("<f4").tobytes())
                                                      .decode("ascii")] for name, array in onnx_decoder.feature_inputs(
                                                          explorer, zeros).items() if name != "z"},
                "logits": [1, *probabilities.shape], "grid": z_grid(controls), "layer": int(options.layer),
                "channels": channels if channels is not None and len(channels) <= MAX_CHANNELS else None,
                "keep": [int(k) for k in recipe.get("largest_component") or ()],
                "anatomy": bool(recipe.get("anatomy")), "base": png_data_uri(picture),
                "colours": {str(k): [float(c) for c in v] for k, v in plots.LABEL_COLOURS.items()}, "alpha": 0.45,
                "truth": truth_or_none(place, controls, explorer.image_size, probabilities.shape[0])}

    return BrowserDecoder({"key": key, "model": model, "ready": made is not None}, make)
