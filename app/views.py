"""The page's views of one prediction: the mask panel, the conditioning panel, Explore, Compare and Sweep.

Each panel is computed first (a small dataclass of images and figures) and drawn after, so a control
move reaches the browser as one batch of elements. Everything shown is what the Explorer answered for
this z; the ground truth is given per call (it follows the controls on CLEVR-Seg). The mask's picture and
its Dice line are a frame (app/frame.py), the recipe the pictures made ahead for scrubbing use too.
Nothing here draws the controls or asks them anything: what they hold comes in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st

from app import loading, page_state, plots
from app.charts import chart, graph
from app.frame import DISPLAY_PIXELS, MAX_CHANNELS, NO_GROUND_TRUTH, Frame, FrameOptions, make_frame
from inside_core import attention, palette
from inside_core.conditions import condition_of
from inside_core.data.registry import card_dataset, dataset_kind
from inside_core.explorer import channel_table, condition_vector, conditioning_kind
from inside_core.geometry import normalised_to_pixel

VIEWS = ("Explore", "Compare", "Sweep")
STRIP_PIXELS = 240  # each image of the sweep strip
SWEEP_FRAME, SWEEP_COLOUR = 6, palette.rgb(palette.OKABE_ITO["orange"])  # the step nearest the slider: framed
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
    """The mask's frame (the input with the prediction blended in, the ground truth outlined on the toggle,
    the Dice line) and the colour key under it."""

    frame: Frame
    legend: str
    title: str = ""

    @property
    def jpeg(self) -> bytes:
        return self.frame.jpeg

    @property
    def caption(self) -> str:
        return self.title or self.frame.caption

    @property
    def dice(self) -> str:
        return self.frame.dice

    @property
    def data_uri(self) -> str:
        """The picture as a data URI: the image the point is dragged on (app/controls.py)."""
        return self.frame.data_uri


def mask_panel(explorer, prediction, condition, z_values: dict, truth, show_truth: bool, title: str = "",
               image=None, options: FrameOptions | None = None) -> MaskPanel:
    """The frame of this prediction (app/frame.py) over the view's image at the display size: the recipe
    every picture made ahead for scrubbing uses. `options`: how it is drawn (default: the ground truth
    outlined when `show_truth` and there is one)."""
    options = options or FrameOptions(outline_truth=show_truth)
    base = loading.display_base(explorer, image, DISPLAY_PIXELS)
    frame = make_frame(explorer, prediction, condition, z_values, truth, base, options)
    outlined = options.outline_truth and truth is not None
    return MaskPanel(frame, legend_html(prediction.num_classes, outlined), title)


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
    figures: dict[str, Any] = field(default_factory=dict)  # chart name -> its maker, in drawing order
    note: str = ""  # which channels are drawn, and why
    layer: int = 0  # the layer drawn
    channels_drawn: Any = None  # INSIDE: the channels the attention draws (None: all)
    scrubbable: bool = False  # the drawn channels stay while z moves (app/scrub.py may draw them ahead)

    def figure(self, name: str):
        """Chart `name`, made now (when drawn: after the mask and the controls are on their way), validated."""
        return graph(self.figures[name]())

    @property
    def frame_channels(self) -> tuple[int, ...] | None:
        """The channels whose Gaussians a frame carries (app/frame.py), or None: a fixed few INSIDE channels."""
        if self.kind != "inside" or not self.scrubbable or self.channels_drawn is None:
            return None
        return tuple(int(c) for c in np.atleast_1d(self.channels_drawn))

    @property
    def export_channels(self) -> tuple[list[int] | None, int | None]:
        """(channels, one channel) the export draws: exactly the ones on screen."""
        if self.kind != "inside":
            return None, None
        if self.channels_drawn is None:
            return list(range(self.channels)), None
        if np.ndim(self.channels_drawn) == 0:
            return None, int(self.channels_drawn)
        return [int(c) for c in self.channels_drawn], None


# the channel picker: a rule (inside_core.attention) or one channel's number
CHANNEL_RULES = ("responsive", "strongest", "all")


def channel_options(count: int) -> list[str]:
    return [*CHANNEL_RULES, *(str(c) for c in range(count))]


def channel_label(option: str, count: int) -> str:
    k = min(attention.DEFAULT_CHANNELS, count)
    return {"responsive": f"the {k} that respond most to z", "strongest": f"the {k} strongest at this z",
            "all": f"all {count}"}.get(option, f"channel {option}")


def drawn_channels(explorer, prediction, condition, layer: int, choice: str, dragging: bool = False):
    """The channels to draw for a picker choice, and a line saying which they are."""
    params = prediction.conditioning[layer]
    total = int(params.mu_x.shape[-1])
    if choice == "all":
        return None, attention.describe("chosen", range(total), total)
    if choice == "strongest":
        chosen = attention.strongest_channels(params)
        return chosen, attention.describe("strongest", chosen, total)
    if choice == "responsive":
        chosen = loading.responsive_channels(explorer, condition, layer, keep=dragging)
        variables = [c.label.split(" (")[0].lower() for c in condition.controls]
        return chosen, attention.describe("responsive", chosen, total, variables)
    return int(choice), f"channel {choice} of {total}"


def secondary_figure(name: str, make, dragging: bool):
    """A figure that may wait for the release: while a control is dragged the last one is sent again
    (the same graph object, so no validation, and the same JSON: the browser does not redraw it), and on
    the release, or any other change, a new one is made."""
    kept = page_state.session().secondary
    if dragging and name in kept:
        return kept[name]
    kept[name] = graph(make())
    return kept[name]


def conditioning_panel(explorer, prediction, condition, marker=None, compact: bool = False,
                       dragging: bool = False, overlaid: bool = False) -> ConditioningPanel:
    """The panel's figures for the chosen layer and channel (their pickers are drawn with the panel; their
    values come from the page state). `compact`: layer 0, the default channels, no detail figures
    (Compare). `dragging`: a control is held (the channels drawn and the detail figures wait for release).
    `overlaid`: the streaming controls draw the frame's Gaussians over their picture (app/live_overlay.js),
    so while a control is held the attention chart waits for the release too, where the frame carries them."""
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
        chosen, panel.note = drawn_channels(explorer, prediction, condition, layer, choice, dragging)
        # "strongest" re-ranks the channels at every z: pictures made ahead would draw others than the page
        panel.layer, panel.channels_drawn, panel.scrubbable = layer, chosen, choice != "strongest"
        picture, picture_size = loading.background(explorer)
        frame_channels = panel.frame_channels
        held = dragging and overlaid and frame_channels is not None and len(frame_channels) <= MAX_CHANNELS
        panel.figures["attention"] = lambda: secondary_figure("attention", lambda: plots.attention_figure(
            picture, table, chosen, size=explorer.image_size, marker=marker, background_size=picture_size),
            held)
        if not compact:  # 1-D profiles, mean attention map and gamma / beta bars: one figure, one row
            panel.figures["details"] = lambda: secondary_figure(
                "details", lambda: plots.details_figure(table, chosen if isinstance(chosen, int) else None),
                dragging)
    elif panel.kind == "guideme":
        panel.figures["spatial"] = lambda: plots.spatial_map_figure(prediction.spatial_map(layer))
        if not compact:
            panel.figures["bars"] = lambda: plots.bars_figure({"γˢ (scale)": table["gamma_scale"],
                                                               "γᵇ (shift)": table["gamma_shift"]})
    else:
        panel.figures["bars"] = lambda: plots.bars_figure({"γ": table["gamma"], "β": table["beta"]})
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
        chart(panel.figure("attention"), f"{key}_attention")
        st.caption(panel.note)
    elif panel.kind == "guideme":
        chart(panel.figure("spatial"), f"{key}_spatial")
        st.caption("Guide Me adds one rank-one map α_h + β_w, the same for every channel.")
        if "bars" in panel.figures:
            chart(panel.figure("bars"), f"{key}_bars")
    else:
        st.info(WHY_NO_ATTENTION["film"])
        chart(panel.figure("bars"), f"{key}_bars")


# --------------------------------------------------------------------------------------------- views


def explore_columns(mask: MaskPanel, on_image: bool):
    """The Explore view's left column (the ground-truth toggle, a slot for the controls, the mask panel)
    and its right column, empty: the page draws the controls into the slot, then the conditioning into
    the right column (`explore_rest`).

    Drawing order: the mask, then the controls into their slot above it, then the attention. The controls'
    answer lets the next value leave, so the browser's plotly redraw of the attention (~25 ms here) overlaps
    the server's next decode instead of delaying it; everything was computed before this, so the attention
    is sent within a millisecond of the answer, long before a new value can interrupt the run."""
    left, right = st.columns([1, 1.25])
    with left:
        st.toggle("Show the ground truth", key="show_gt", persist_state="session")
        slot = st.container()
        draw_mask_panel(mask, on_image=on_image)
    return slot, right


def explore_rest(panel: ConditioningPanel, right) -> None:
    """The conditioning (right column), then the detail figures below, full width."""
    with right:
        draw_conditioning_panel(panel)
    if "details" in panel.figures:
        chart(panel.figure("details"), "main_details")  # last: the mask and the attention come first


def reads_z_alike(card: dict, other: dict) -> bool:
    """Whether two models read z the same way (the same condition, and for a user's variables the same
    ones), so the same control values mean the same to both."""
    def meaning(c: dict) -> tuple:
        return (condition_of(c).name, c.get("condition_spec"), (c.get("data") or {}).get("variables"))
    return meaning(card) == meaning(other)


def compare_partner(entry) -> list:
    """The models to compare with, the default partner first: only others that read z the same way (a
    point model's radius means nothing to a quadrant model), FiLM or Guide Me beside INSIDE and INSIDE
    beside the others first. [] when there is none (e.g. the only model trained on a user's folder)."""
    dataset = card_dataset(entry.card)
    entries = loading.discover_models(dataset) or loading.untrained_models(dataset)
    wanted = ("film", "guideme") if entry.card.get("conditioning") == "inside" else ("inside",)
    same = [e for e in entries if e.name != entry.name and reads_z_alike(e.card, entry.card)]
    return sorted(same, key=lambda e: wanted.index(e.card.get("conditioning"))
                  if e.card.get("conditioning") in wanted else len(wanted))


@dataclass
class Compared:
    """The other side of the Compare view, as drawn (the export draws it too)."""

    name: str
    explorer: Any
    prediction: Any
    panel: ConditioningPanel


def compare_view(explorer, prediction, entry, controls, view, show_truth: bool, marker=None,
                 first_panel: ConditioningPanel | None = None) -> Compared | None:
    """Two models side by side on the same view and control values; returns the other side (None: no
    model to compare with, said on the page)."""
    from inside_core.checkpoints import CheckpointError

    entries = compare_partner(entry)
    if not entries:
        st.info(f"No other model reads z as {loading.plain(entry.name)} does (the same condition"
                f"{' and variables' if dataset_kind(card_dataset(entry.card)).variables else ''}): "
                "there is nothing to compare it with. Train another one (`inside train`), then choose Compare.")
        return None
    names = [e.name for e in entries]
    page_state.default("compare_model", names[0], lambda v: v in names)
    second = entries[names.index(st.selectbox("Compare with", names, key="compare_model", persist_state="session"))]
    try:
        model = loading.load_model(second)
    except CheckpointError as error:
        st.error(loading.plain(error))
        return None
    other_explorer = loading.explorer_for(second, model, view.key, view.image)
    other_prediction = other_explorer.update(condition_vector(second.card, **controls.z_values))
    page_state.session().shown[second.name] = other_prediction
    panels = [first_panel or conditioning_panel(explorer, prediction, controls.condition, marker=marker,
                                                compact=True),
              conditioning_panel(other_explorer, other_prediction, condition_of(second.card), marker=marker,
                                 compact=True)]
    pairs = ((entry, explorer, prediction), (second, other_explorer, other_prediction))
    for side, (column, (e, ex, pr)) in enumerate(zip(st.columns(2), pairs, strict=True)):
        with column:
            st.subheader(loading.plain(e.name))
            draw_mask_panel(mask_panel(ex, pr, controls.condition, controls.z_values, view.ground_truth, show_truth,
                                       title=loading.describe(e), image=view.image),
                            alt="predicted mask" if side == 0 else f"predicted mask, {e.name}")
            draw_conditioning_panel(panels[side], key=f"compare{side}", compact=True)
    return Compared(second.name, other_explorer, other_prediction, panels[1])


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
    rgb_base = plots.to_rgb_uint8(explorer.image)
    # the swept control's own value picks a step (the strip spans its range, so it changes no mask): framed, so
    # that dragging that control walks the strip instead of doing nothing
    nearest = int(np.argmin(np.abs(grid - float(controls.z_values[variable]))))
    frames, captions, means = [], [], []
    for step, (value, prediction) in enumerate(zip(grid, predictions, strict=True)):
        frame = enlarged(plots.overlay(rgb_base, prediction.labels), pixels=STRIP_PIXELS)
        params = prediction.conditioning[0] if prediction.conditioning else None
        caption = f"{variable} = {value:+.2f}" + (" · nearest the slider" if step == nearest else "")
        if step == nearest:
            edge, w = np.ones(frame.shape[:2], dtype=bool), SWEEP_FRAME
            edge[w:-w, w:-w] = False
            frame = np.where(edge[..., None], np.asarray(SWEEP_COLOUR, dtype=np.uint8), frame)
        if params is not None and conditioning_kind(params) == "inside":
            table = channel_table(params)
            h, w = frame.shape[:2]
            points = np.stack([normalised_to_pixel(table["mu_x"], w), normalised_to_pixel(table["mu_y"], h)], -1)
            frame = plots.draw_points(frame, points, radius=1)
            means.append((table["mu_x"].mean(), table["mu_y"].mean()))
        if "scene" in source.offers:
            truth, _ = source.ground_truth(index, condition, {**controls.z_values, variable: float(value)},
                                           loading.clevr_objects(source, source.label, index))
            if truth is not None:
                caption += f" · Dice {explorer.dice(prediction, truth):.2f}"
        frames.append(frame)
        captions.append(caption)
    dots = ("Yellow dots: each channel's Gaussian mean (INSIDE)." if means else
            "This model has no Gaussians: only its masks change.")
    st.caption(f"The image stays fixed; only z changes. {dots} Framed: the step nearest the slider.")
    st.image(frames, caption=captions, width=170)
    if means:
        chart(plots.means_figure(grid, np.array(means), variable), "sweep_means")
