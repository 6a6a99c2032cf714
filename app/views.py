"""The page's views of one prediction: the mask panel, the conditioning panel, Explore, Compare and Sweep.

Each panel is computed first (a small dataclass of images and figures) and drawn after, so a control
move reaches the browser as one batch of elements. Everything shown is what the Explorer answered for
this z; the ground truth is given per call (it follows the controls on CLEVR-Seg).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st

from app import loading, page_state, plots
from app.controls import ControlValues, draw_live_controls, streaming
from app.live_chart import live_chart
from inside_core import attention, palette
from inside_core.conditions import condition_of
from inside_core.explorer import channel_table, condition_vector, conditioning_kind, prepare_mask
from inside_core.geometry import normalised_to_pixel

VIEWS = ("Explore", "Compare", "Sweep")
DISPLAY_PIXELS = 400  # the overlay is enlarged (nearest neighbour) to at least this many pixels
STRIP_PIXELS = 240  # each image of the sweep strip
WHY_NO_ATTENTION = {
    "film": "FiLM scales and shifts whole feature maps (γ, β per channel): the same at every pixel, "
            "so it has no spatial attention to draw. It can say *what* to keep, never *where*.",
    "none": "The unconditioned baseline ignores z: the controls cannot change its mask.",
}


def enlarged(rgb: np.ndarray, pixels: int = DISPLAY_PIXELS) -> np.ndarray:
    """Enlarged by an integer factor (nearest neighbour: masks stay crisp) to at least `pixels`."""
    factor = max(1, -(-pixels // max(rgb.shape[:2])))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1) if factor > 1 else rgb


def legend_html(num_classes: int, ground_truth: bool) -> str:
    """A colour key of the mask labels (our own fixed text: no user input reaches it)."""
    items = [(palette.LABEL_COLOURS[k], name) for k, name in palette.label_names(num_classes).items()]
    if ground_truth:
        items.append((palette.GROUND_TRUTH_COLOUR, "ground truth (outline)"))
    spans = [f'<span style="display:inline-block;width:0.8em;height:0.8em;background:{colour};'
             f'border:1px solid #888;margin:0 0.3em 0 0.8em"></span>{name}' for colour, name in items]
    return '<div style="font-size:0.85em">prediction: ' + "".join(spans) + "</div>"


# ------------------------------------------------------------------------------------------ the mask


@dataclass
class MaskPanel:
    """The input with the prediction blended in (ground truth outlined on a toggle) and its Dice line."""

    jpeg: bytes
    caption: str
    dice: str  # markdown; "" without ground truth
    legend: str

    @property
    def data_uri(self) -> str:
        """The picture as a data URI: the image the point is dragged on (app/controls.py)."""
        return jpeg_uri(self.jpeg)


def mask_panel(explorer, prediction, truth, name: str, title: str = "", image=None) -> MaskPanel:
    """The view's image at its own resolution, resampled smoothly to the display size, with the prediction
    drawn from its probabilities upsampled (smooth outlines, not the model grid's stair steps)."""
    show = st.session_state.get("show_gt", False) and truth is not None
    picture, shown = mask_picture(explorer, prediction, image, truth if show else None)
    caption = title or "prediction" + (" · ground truth outlined" if shown is not None else "")
    text = dice_line(explorer, prediction, truth)
    shown_now = st.session_state.setdefault("_shown", {})  # what the page shows, by model (tests read it)
    shown_now.pop(name, None)
    shown_now[name] = prediction
    return MaskPanel(plots.jpeg_bytes(picture), caption, text,
                     legend_html(prediction.num_classes, shown is not None))


def dice_line(explorer, prediction, truth) -> str:
    """The Dice line under the mask (Markdown, our own text; "" without ground truth), with the score per
    structure where there are several and a word on an empty ground truth."""
    if truth is None:
        return ""
    truth = prepare_mask(truth, explorer.image_size)
    per_class = explorer.dice_per_class(prediction, truth)
    names = palette.label_names(prediction.num_classes)
    detail = "" if len(per_class) == 1 else " (" + ", ".join(
        f"{names.get(k, k)} {v:.2f}" for k, v in per_class.items()) + ")"
    text = f"Dice against the ground truth: **{np.mean(list(per_class.values())):.3f}**{detail}"
    if not np.asarray(truth).any():
        text += (" — the ground truth is empty here, so Dice is 1 only if nothing is predicted "
                 "(the usual convention) and 0 otherwise")
    return text


def mask_picture(explorer, prediction, image=None, truth=None, base=None) -> tuple[np.ndarray, np.ndarray | None]:
    """The mask panel's picture (uint8 RGB at the display size) and the ground truth drawn on it (None):
    the one recipe, so a scrubbing frame for a slider step is the very picture the page answers with.
    `base`: the picture under the mask, if already made (`loading.display_picture`)."""
    base = loading.display_base(explorer, image, DISPLAY_PIXELS) if base is None else base
    size = base.shape[:2]
    labels = plots.smooth_labels(prediction.probabilities, size)
    shown = None if truth is None else plots.nearest_labels(np.asarray(truth), size)
    return plots.overlay(base, labels, shown), shown


def jpeg_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


NO_GROUND_TRUTH = "No ground truth for this image."


def draw_mask_panel(panel: MaskPanel, on_image: bool = False, alt: str = "predicted mask") -> None:
    """The mask, its legend and Dice line; `on_image`: the picture, its caption and its Dice line are drawn
    by the streaming controls (they follow the pointer there), so only the legend is drawn here."""
    if not on_image:
        st.image(panel.jpeg, caption=panel.caption, alt=alt)
    st.markdown(panel.legend, unsafe_allow_html=True)
    if on_image:
        return
    if panel.dice:
        st.markdown(panel.dice)
    else:
        st.caption(NO_GROUND_TRUTH)


# -------------------------------------------------------------------------------- the conditioning


@dataclass
class ConditioningPanel:
    """What the conditioning layer does at this z, by kind: INSIDE's Gaussians (and, in full, their
    profiles, mean map and gamma / beta), Guide Me's map and scales, FiLM's gamma / beta bars."""

    kind: str  # "inside", "guideme", "film", or "none" for an unconditioned model
    layers: list[str] = field(default_factory=list)  # each conditioning layer's kind (a picker when several)
    channels: int = 0
    figures: dict[str, dict] = field(default_factory=dict)  # chart name -> plotly figure, in drawing order
    note: str = ""  # which channels are drawn, and why
    layer: int = 0  # the layer drawn
    channels_drawn: Any = None  # INSIDE: the channels the attention draws (None: all)
    scrubbable: bool = False  # the drawn channels stay while z moves (app/scrub.py may draw them ahead)


# the channel picker: a rule (inside_core.attention) or one channel's number
CHANNEL_RULES = ("responsive", "strongest", "all")


def channel_options(count: int) -> list[str]:
    return [*CHANNEL_RULES, *(str(c) for c in range(count))]


def channel_label(option: str, count: int) -> str:
    k = min(attention.DEFAULT_CHANNELS, count)
    return {"responsive": f"the {k} that respond most to z", "strongest": f"the {k} strongest at this z",
            "all": f"all {count}"}.get(option, f"channel {option}")


def drawn_channels(explorer, prediction, condition, layer: int, choice: str):
    """The channels to draw for a picker choice, and a line saying which they are."""
    params = prediction.conditioning[layer]
    total = int(params.mu_x.shape[-1])
    if choice == "all":
        return None, attention.describe("chosen", range(total), total)
    if choice == "strongest":
        chosen = attention.strongest_channels(params)
        return chosen, attention.describe("strongest", chosen, total)
    if choice == "responsive":
        chosen = loading.responsive_channels(explorer, condition, layer, keep=streaming())
        variables = [c.label.split(" (")[0].lower() for c in condition.controls]
        return chosen, attention.describe("responsive", chosen, total, variables)
    return int(choice), f"channel {choice} of {total}"


def secondary_figure(name: str, make):
    """A figure that may wait for the release: while a control is dragged the last one is drawn again
    (unchanged, so the browser does not redraw it; the mask and the attention take the time), and on the
    release, or any other change, a new one is made."""
    kept = st.session_state.setdefault("_secondary", {})
    if streaming() and name in kept:
        return kept[name]
    kept[name] = make()
    return kept[name]


def conditioning_panel(explorer, prediction, condition, marker=None, compact: bool = False) -> ConditioningPanel:
    """The panel's figures for the chosen layer and channel (their pickers are drawn with the panel; their
    values come from the page state). `compact`: layer 0, all channels, no detail figures (Compare)."""
    if not prediction.conditioning:
        return ConditioningPanel("none")
    layers = [conditioning_kind(params) for params in prediction.conditioning]
    layer = 0 if compact else int(page_state.default("layer", 0, lambda v: int(v) in range(len(layers))))
    table = channel_table(prediction.conditioning[layer])
    panel = ConditioningPanel(layers[layer], layers, len(table.get("mu_x", [])))
    if panel.kind == "inside":
        options = channel_options(panel.channels)
        choice = CHANNEL_RULES[0] if compact else page_state.default("channel", CHANNEL_RULES[0],
                                                                     lambda v: v in options)
        chosen, panel.note = drawn_channels(explorer, prediction, condition, layer, choice)
        # "strongest" re-ranks the channels at every z: pictures made ahead would draw others than the page
        panel.layer, panel.channels_drawn, panel.scrubbable = layer, chosen, choice != "strongest"
        picture, picture_size = loading.background(explorer)
        panel.figures["attention"] = plots.attention_figure(picture, table, chosen, size=explorer.image_size,
                                                            marker=marker, background_size=picture_size)
        if not compact:  # 1-D profiles, mean attention map and gamma / beta bars: one figure, one row
            panel.figures["details"] = secondary_figure(
                "details", lambda: plots.details_figure(table, chosen if isinstance(chosen, int) else None))
    elif panel.kind == "guideme":
        panel.figures["spatial"] = plots.spatial_map_figure(prediction.spatial_map(layer))
        if not compact:
            panel.figures["bars"] = plots.bars_figure({"γˢ (scale)": table["gamma_scale"],
                                                       "γᵇ (shift)": table["gamma_shift"]})
    else:
        panel.figures["bars"] = plots.bars_figure({"γ": table["gamma"], "β": table["beta"]})
    return panel


def draw_conditioning_panel(panel: ConditioningPanel, key: str = "main", compact: bool = False) -> None:
    """The panel, without its "details" figure (drawn full width below, by the explore view)."""
    if panel.kind == "none":
        st.info(WHY_NO_ATTENTION["none"])
        return
    if not compact and len(panel.layers) > 1:
        st.selectbox("Conditioning layer", list(range(len(panel.layers))), key="layer", persist_state="session",
                     format_func=lambda i: f"layer {i} ({panel.layers[i]})")
    if panel.kind == "inside":
        if not compact:
            st.selectbox("Channels", channel_options(panel.channels), key="channel", persist_state="session",
                         format_func=lambda option: channel_label(option, panel.channels),
                         help="64 or 128 ellipses at once merge into a blob: by default the few whose Gaussians "
                              "move most as the controls sweep their ranges; or the strongest at this z "
                              "(|1+γ| × attention mass), all, or one channel")
        live_chart(panel.figures["attention"], key=f"{key}_attention", config=plots.PLOTLY_CONFIG)
        st.caption(panel.note)
    elif panel.kind == "guideme":
        live_chart(panel.figures["spatial"], key=f"{key}_spatial", config=plots.PLOTLY_CONFIG)
        st.caption("Guide Me adds one rank-one map α_h + β_w, the same for every channel.")
        if "bars" in panel.figures:
            live_chart(panel.figures["bars"], key=f"{key}_bars", config=plots.PLOTLY_CONFIG)
    else:
        st.info(WHY_NO_ATTENTION["film"])
        live_chart(panel.figures["bars"], key=f"{key}_bars", config=plots.PLOTLY_CONFIG)


# --------------------------------------------------------------------------------------------- views


def explore_view(mask: MaskPanel, panel: ConditioningPanel, controls: ControlValues, frames=None) -> None:
    """The controls and the mask (left; the point dragged on the mask where the condition has one), the
    conditioning (right), the detail figures below.

    Drawing order: the mask, then the controls into their slot above it, then the attention. The controls'
    answer lets the next value leave, so the browser's plotly redraw of the attention (~25 ms here) overlaps
    the server's next decode instead of delaying it; everything was computed before this, so the attention
    is sent within a millisecond of the answer, long before a new value can interrupt the run."""
    left, right = st.columns([1, 1.25])
    on_image = controls.pad_keys is not None  # the component draws the mask: the pad, or under the pad
    with left:
        st.toggle("Show the ground truth", key="show_gt", persist_state="session")
        slot = st.container()
        draw_mask_panel(mask, on_image=on_image)
    draw_live_controls(controls, slot, image=mask.data_uri if on_image else None, frames=frames,
                       image_caption=(mask.dice or NO_GROUND_TRUTH) if on_image else None,
                       image_title=mask.caption if on_image else None)
    with right:
        draw_conditioning_panel(panel)
    if "details" in panel.figures:
        # drawn after the mask and the attention have been painted: they are what a control move is about
        live_chart(panel.figures["details"], key="main_details", config=plots.PLOTLY_CONFIG, defer=True)


def compare_partner(entry) -> list:
    """The models to compare with, the default partner first: one for the same condition (so both read z
    the same way), FiLM or Guide Me beside INSIDE and INSIDE beside the others where there is one."""
    dataset = entry.card.get("dataset", "clevr-seg")
    entries = loading.discover_models(dataset) or loading.untrained_models(dataset)
    wanted = ("film", "guideme") if entry.card.get("conditioning") == "inside" else ("inside",)
    same = [e for e in entries if e.name != entry.name and e.card.get("condition") == entry.card.get("condition")]
    ranked = sorted(same, key=lambda e: wanted.index(e.card.get("conditioning"))
                    if e.card.get("conditioning") in wanted else len(wanted))
    return ranked + [e for e in entries if e not in ranked]


def compare_view(explorer, prediction, entry, controls, view, marker=None) -> None:
    from inside_core.checkpoints import CheckpointError

    entries = compare_partner(entry)
    names = [e.name for e in entries]
    fallback = next((n for n in names if n != entry.name), names[0])
    page_state.default("compare_model", fallback, lambda v: v in names)
    second = entries[names.index(st.selectbox("Compare with", names, key="compare_model", persist_state="session"))]
    try:
        model = loading.load_model(second)
    except CheckpointError as error:
        st.error(loading.plain(error))
        return
    other_explorer = loading.explorer_for(second, model, view.key, view.image)
    other_prediction = other_explorer.update(condition_vector(second.card, **controls.z_values))
    st.session_state.setdefault("_export", {})["compare"] = (second.name, other_explorer, other_prediction)
    pairs = ((entry, explorer, prediction), (second, other_explorer, other_prediction))
    for side, (column, (e, ex, pr)) in enumerate(zip(st.columns(2), pairs, strict=True)):
        with column:
            st.subheader(loading.plain(e.name))
            draw_mask_panel(mask_panel(ex, pr, view.ground_truth, e.name, title=loading.describe(e), image=view.image),
                            alt="predicted mask" if side == 0 else f"predicted mask, {e.name}")
            draw_conditioning_panel(conditioning_panel(ex, pr, condition_of(e.card), marker=marker, compact=True),
                                    key=f"compare{side}",
                                    compact=True)


def sweep_view(explorer, entry, source, index: int, controls) -> None:
    condition = condition_of(entry.card)
    variables = condition.sweep
    if not variables:
        st.info("This model's condition is categorical: pick its values above instead.")
        return
    page_state.default("sweep_var", next(iter(variables)), lambda v: v in variables)
    page_state.default("sweep_steps", 7, lambda v: 3 <= int(v) <= 11)
    left, right = st.columns(2)
    variable = left.selectbox("Sweep", list(variables), key="sweep_var", persist_state="session",
                              format_func=lambda k: condition.control(k).label)
    steps = right.slider("Steps", 3, 11, key="sweep_steps", persist_state="session")
    grid = np.asarray(condition.sweep_values(variable, steps))  # the registry's sweep range
    zs = [condition.encode(**{**controls.z_values, variable: float(v)}) for v in grid]
    predictions = explorer.sweep(zs)
    rgb_base = loading.display_rgb(explorer)
    frames, captions, means = [], [], []
    for value, prediction in zip(grid, predictions, strict=True):
        frame = enlarged(plots.overlay(rgb_base, prediction.labels), pixels=STRIP_PIXELS)
        params = prediction.conditioning[0] if prediction.conditioning else None
        caption = f"{variable} = {value:+.2f}"
        if params is not None and conditioning_kind(params) == "inside":
            table = channel_table(params)
            h, w = frame.shape[:2]
            points = np.stack([normalised_to_pixel(table["mu_x"], w), normalised_to_pixel(table["mu_y"], h)], -1)
            frame = plots.draw_points(frame, points, radius=1)
            means.append((table["mu_x"].mean(), table["mu_y"].mean()))
        if "scene" in source.offers:
            truth, _ = source.ground_truth(index, entry.card, {**controls.z_values, variable: float(value)},
                                           loading.clevr_objects(source, source.label, index))
            if truth is not None:
                caption += f" · Dice {explorer.dice(prediction, truth):.2f}"
        frames.append(frame)
        captions.append(caption)
    dots = ("Yellow dots: each channel's Gaussian mean (INSIDE)." if means else
            "This model has no Gaussians: only its masks change.")
    st.caption(f"The image stays fixed; only z changes. {dots}")
    st.image(frames, caption=captions, width=170)
    if means:
        live_chart(plots.means_figure(grid, np.array(means), variable), key="sweep_means", config=plots.PLOTLY_CONFIG)
