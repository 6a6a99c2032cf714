"""INSIDE Explorer: move the conditioning sliders, watch the predicted mask and the attention follow.

    streamlit run app/main.py

Sidebar: dataset, data (bundled synthetic / a folder / an upload), model, sample.
Main area: the conditioning sliders, then one view: Explore, Compare or Sweep.

The page is a thin view over `inside_core.explorer.Explorer`: the sample's encoder output is kept
(per session) and a slider move runs only the model's decoder. The main area is a `st.fragment`, so
a slider move re-runs only it, not the sidebar. The state lives in the URL query string.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402

from app import loading, page_state, plots  # noqa: E402
from app.export import MIME, figure_bytes  # noqa: E402
from app.live_chart import live_chart  # noqa: E402
from app.sources import SourceError, UploadSource  # noqa: E402
from inside_core.checkpoints import CheckpointError  # noqa: E402
from inside_core.data import DataError  # noqa: E402
from inside_core.conditions import QUADRANTS, quadrant_blend  # noqa: E402
from inside_core.explorer import channel_table, condition_vector, conditioning_kind  # noqa: E402

SOURCES = {"bundled": "Bundled synthetic data", "folder": "A dataset folder", "upload": "Upload a file"}
SPLITS = ("test", "val", "train", "all")
PATH_OPTION = "(a checkpoint path…)"
VIEWS = ("Explore", "Compare", "Sweep")
DISPLAY_PIXELS = 400  # the overlay is enlarged (nearest neighbour) to at least this many pixels
STRIP_PIXELS = 240  # each image of the sweep strip
WHY_NO_ATTENTION = {
    "film": "FiLM scales and shifts whole feature maps (γ, β per channel): the same at every pixel, "
            "so it has no spatial attention to draw. It can say *what* to keep, never *where*.",
    "none": "The unconditioned baseline ignores z: the sliders cannot change its mask.",
}


# ------------------------------------------------------------------------------------------ sidebar


def choose_dataset() -> str:
    page_state.default("dataset", "clevr-seg", lambda v: v in loading.DATASETS)
    return st.selectbox("Dataset", list(loading.DATASETS), format_func=loading.DATASETS.get, key="dataset")


def choose_source_kind() -> str:
    page_state.default("source", "bundled", lambda v: v in SOURCES)
    return st.radio("Data", list(SOURCES), format_func=SOURCES.get, key="source")


def choose_model(dataset: str) -> loading.ModelEntry | None:
    entries = loading.discover_models(dataset)
    if not entries:
        entries = loading.untrained_models(dataset)
        st.warning(f"No {loading.DATASETS[dataset]} checkpoint under checkpoints/: offering untrained models "
                   "(random weights) so the page still works.")
    names = [entry.name for entry in entries] + [PATH_OPTION]
    preferred = loading.DEFAULT_MODELS[dataset]
    fallback = preferred if preferred in names else next((n for n in names if "inside" in n), names[0])
    page_state.default("model", fallback, lambda v: v in names)
    name = st.selectbox("Model", names, key="model")
    if name == PATH_OPTION:
        page_state.default("model_path", "")
        text = st.text_input("Checkpoint (.safetensors with its .json)", key="model_path")
        if not text.strip():
            st.info("Type the path of a checkpoint.")
            return None
        try:
            entry = loading.entry_from_path(text)
        except CheckpointError as error:
            st.error(str(error))
            return None
    else:
        entry = entries[names.index(name)]
    st.caption(loading.describe(entry))
    if entry.card.get("dataset", "clevr-seg") != dataset:
        st.warning(f"This model was trained on {entry.card.get('dataset')}, not {loading.DATASETS[dataset]}.")
    return entry


def load_data(dataset: str, kind: str, entry: loading.ModelEntry | None):
    """The page's source for the chosen data; on bad input, one clear line (and the validator's
    findings for a folder) instead of a traceback. None when there is nothing to show."""
    card = entry.card if entry else {}
    image_size = int((card.get("image_size") or [128])[0])
    spacing = float(card.get("spacing", 1.37))
    if kind == "upload":
        upload = st.file_uploader("Image (PNG, JPEG) or NIfTI volume (.nii, .nii.gz)", key="upload")
        if upload is None:
            st.info("Choose a file to explore it with the chosen model.")
            return None
        try:
            return UploadSource(upload.name, upload.getvalue(), dataset, image_size=(image_size, image_size),
                                spacing=spacing if dataset == "acdc" else None)
        except SourceError as error:
            st.error(str(error))
            return None
    page_state.default("split", "test", lambda v: v in SPLITS)
    if kind == "folder":
        page_state.default("data_dir", "")
        root = st.text_input("Folder", key="data_dir",
                             placeholder="clevr-seg/ or ACDC database/training/").strip()
        if not root:
            st.info("Type the folder of a download (or of `inside data ...` output).")
            return None
    else:
        try:
            with st.spinner("Preparing the bundled synthetic data (first start only)…"):
                root = str(loading.default_data_dir(dataset))
        except (OSError, DataError) as error:
            st.error(f"The bundled data is not available: {error}")
            return None
    split = st.selectbox("Split", SPLITS, key="split")
    try:
        return loading.load_source(dataset, root, split, image_size, spacing)
    except (DataError, SourceError, OSError) as error:
        st.error(str(error).splitlines()[0] if str(error) else type(error).__name__)
        findings = loading.validation_findings(root, dataset)
        if findings:
            st.markdown("**`inside data validate` says:**\n" + "\n".join(f"- `{line}`" for line in findings))
        return None


def step_sample(delta: int, count: int) -> None:
    st.session_state["sample"] = (int(st.session_state.get("sample", 0)) + delta) % count


def random_sample(count: int) -> None:
    st.session_state["sample"] = int(np.random.default_rng().integers(count))


def choose_sample(source) -> int:
    count = len(source)
    page_state.default("sample", getattr(source, "opening_index", 0), lambda v: 0 <= int(v) < count)
    if count > 1:
        st.number_input(f"Sample (0 … {count - 1})", min_value=0, max_value=count - 1, step=1, key="sample")
        previous, following = st.columns(2)
        previous.button("◀", key="sample_previous", help="previous sample", on_click=step_sample, args=(-1, count),
                        use_container_width=True)
        following.button("▶", key="sample_next", help="next sample", on_click=step_sample, args=(1, count),
                         use_container_width=True)
        st.button("Random sample", key="sample_random", on_click=random_sample, args=(count,),
                  use_container_width=True)
    index = int(st.session_state["sample"])
    st.caption(source.title(index))
    return index


# ------------------------------------------------------------------------------------------ controls


@dataclass
class Controls:
    """The conditioning sliders' values, read from the page state before the sliders are drawn (a slider
    with a key shows what the state holds), so the page can compute first and draw in one go."""

    values: dict  # slider values, by widget key
    z_values: dict  # what condition_vector takes
    caption: str  # what z is, under the sliders


def control_values(card: dict, source, index: int) -> Controls:
    condition = card.get("condition", "quadrant")
    if card.get("dataset") == "acdc" or condition == "phase_slice":
        order = source.slice_order(index)  # slice indices from base to apex
        phase = float(page_state.default("phase", 0.0, lambda v: 0.0 <= float(v) <= 1.0))
        slice_index = int(page_state.default("slice", order[len(order) // 2], lambda v: int(v) in order))
        page_state.default("follow", True)
        caption = ("z = (phase, slice position): phase 0 = ED, 1 = ES; position 0 = base, 1 = apex. Only the ED and "
                   "ES frames have ground truth; frames in between come from the 4-D cine where it exists.")
        return Controls({"phase": phase, "slice": slice_index},
                        {"phase": phase, "slice": source.position(index, slice_index)}, caption)
    if condition in ("quadrant", "point"):
        start = -0.5 if condition == "quadrant" else 0.0
        values = {key: float(page_state.default(key, start, lambda v: -1 <= float(v) <= 1))
                  for key in ("loc_x", "loc_y")}
        if condition == "point":
            values["radius"] = float(page_state.default("radius", 0.35, lambda v: 0.05 <= float(v) <= 1.0))
            return Controls(values, dict(values), "z = (x, y, r): select the objects whose centre lies within r "
                                                  "of the point.")
        weights = quadrant_blend(values["loc_x"], values["loc_y"])
        mix = " · ".join(f"{q.replace('_', '-')} {w:.2f}" for q, w in zip(QUADRANTS, weights, strict=True) if w)
        return Controls(values, dict(values), f"z = quadrant one-hot, **blended** between neighbouring quadrants "
                                              f"within ±0.5 of the centre lines (the model was trained on pure "
                                              f"one-hots): {mix}")
    from inside_core.conditions import CONDITION_VALUES

    value = page_state.default("value", CONDITION_VALUES[condition][0], lambda v: v in CONDITION_VALUES[condition])
    return Controls({"value": value}, {"value": value}, "")


def draw_controls(controls: Controls, card: dict, source, index: int, notes: list[str]) -> None:
    """The sliders for this model's condition (their values: `control_values`), then one caption: what z
    is, and the notes on the image shown."""
    condition = card.get("condition", "quadrant")
    if card.get("dataset") == "acdc" or condition == "phase_slice":
        order = source.slice_order(index)
        left, right = st.columns(2)
        left.slider("Phase (0 = ED → 1 = ES)", 0.0, 1.0, step=0.05, key="phase")
        if len(order) > 1:
            right.select_slider("Slice (base → apex)", options=order, key="slice",
                                format_func=lambda k: f"{k} · {source.position(index, k):.2f}")
        st.toggle("The image follows the sliders (cine frame for the phase, the chosen slice)", key="follow")
    elif condition in ("quadrant", "point"):
        columns = st.columns(3 if condition == "point" else 2)
        columns[0].slider("Location x (left → right)", -1.0, 1.0, step=0.05, key="loc_x")
        columns[1].slider("Location y (top → bottom)", -1.0, 1.0, step=0.05, key="loc_y")
        if condition == "point":
            columns[2].slider("Radius", 0.05, 1.0, step=0.05, key="radius")
    else:
        from inside_core.conditions import CONDITION_VALUES

        st.selectbox(condition.capitalize(), list(CONDITION_VALUES[condition]), key="value")
    text = "  \n".join(line for line in [controls.caption, *notes] if line)
    if text:
        st.caption(text)


def current_view(entry, source, index: int, values: dict):
    follow = bool(st.session_state.get("follow", True))
    if source.kind == "clevr-seg" and hasattr(source, "objects"):
        objects = loading.clevr_objects(source, source.label, index)
        return source.view(index, values, follow, entry.card, objects=objects)
    if source.kind == "acdc" and hasattr(source, "cine"):
        slice_index = int(values.get("slice", 0))
        cine = loading.acdc_cine(source, source.label, index, slice_index) \
            if follow and 0 < values.get("phase", 0) < 1 else []
        return source.view(index, values, follow, entry.card, cine=cine)
    return source.view(index, values, follow, entry.card)


# --------------------------------------------------------------------------------------------- views


def enlarged(rgb: np.ndarray, pixels: int = DISPLAY_PIXELS) -> np.ndarray:
    """Enlarged by an integer factor (nearest neighbour: masks stay crisp) to at least `pixels`."""
    factor = max(1, -(-pixels // max(rgb.shape[:2])))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1) if factor > 1 else rgb


@dataclass
class MaskPanel:
    """The input with the prediction blended in (ground truth outlined on a toggle) and its Dice line."""

    jpeg: bytes
    caption: str
    dice: str  # markdown; "" without ground truth


def mask_panel(explorer, prediction, title: str = "") -> MaskPanel:
    truth = explorer.mask if st.session_state.get("show_gt", False) else None
    picture = plots.overlay(loading.display_rgb(explorer), prediction.labels, truth)
    caption = title or "prediction" + (" · ground truth outlined" if truth is not None else "")
    dice, text = explorer.dice(prediction), ""
    if dice is not None:
        per_class = explorer.dice_per_class(prediction)
        detail = "" if len(per_class) == 1 else " (" + ", ".join(
            f"{plots.ACDC_LABELS.get(k, k)} {v:.2f}" for k, v in per_class.items()) + ")"
        text = f"Dice against the ground truth: **{dice:.3f}**{detail}"
    return MaskPanel(plots.jpeg_bytes(enlarged(picture)), caption, text)


def draw_mask_panel(panel: MaskPanel) -> None:
    st.image(panel.jpeg, caption=panel.caption)
    if panel.dice:
        st.markdown(panel.dice)
    else:
        st.caption("No ground truth for this image.")


@dataclass
class ConditioningPanel:
    """What the conditioning layer does at this z, by kind: INSIDE's Gaussians (and, in full, their
    profiles, mean map and gamma / beta), Guide Me's map and scales, FiLM's gamma / beta bars."""

    kind: str  # "inside", "guideme", "film", or "none" for an unconditioned model
    layers: list[str] = field(default_factory=list)  # each conditioning layer's kind (a picker when several)
    channels: int = 0
    figures: dict[str, dict] = field(default_factory=dict)  # chart name -> plotly figure, in drawing order


def conditioning_panel(explorer, prediction, compact: bool = False) -> ConditioningPanel:
    """The panel's figures for the chosen layer and channel (read from the page state: their pickers are
    drawn with the panel). `compact`: layer 0, all channels, no detail figures (the compare view)."""
    if not prediction.conditioning:
        return ConditioningPanel("none")
    layers = [conditioning_kind(params) for params in prediction.conditioning]
    layer = 0 if compact else int(page_state.default("layer", 0, lambda v: int(v) in range(len(layers))))
    table = channel_table(prediction.conditioning[layer])
    panel = ConditioningPanel(layers[layer], layers, len(table.get("mu_x", [])))
    if panel.kind == "inside":
        options = ["all"] + [str(c) for c in range(panel.channels)]
        choice = "all" if compact else page_state.default("channel", "all", lambda v: v in options)
        channel = None if choice == "all" else int(choice)
        panel.figures["attention"] = plots.attention_figure(loading.background(explorer), table, channel,
                                                            size=explorer.image_size)
        if not compact:  # 1-D profiles, mean attention map and gamma / beta bars: one figure, one row
            panel.figures["details"] = plots.details_figure(table, channel)
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
        st.selectbox("Conditioning layer", list(range(len(panel.layers))), key="layer",
                     format_func=lambda i: f"layer {i} ({panel.layers[i]})")
    if panel.kind == "inside":
        if not compact:
            st.selectbox("Channel", ["all"] + [str(c) for c in range(panel.channels)], key="channel",
                         help="isolate one channel's Gaussian")
        live_chart(panel.figures["attention"], key=f"{key}_attention", config=plots.PLOTLY_CONFIG)
    elif panel.kind == "guideme":
        live_chart(panel.figures["spatial"], key=f"{key}_spatial", config=plots.PLOTLY_CONFIG)
        st.caption("Guide Me adds one rank-one map α_h + β_w, the same for every channel.")
        if "bars" in panel.figures:
            live_chart(panel.figures["bars"], key=f"{key}_bars", config=plots.PLOTLY_CONFIG)
    else:
        st.info(WHY_NO_ATTENTION["film"])
        live_chart(panel.figures["bars"], key=f"{key}_bars", config=plots.PLOTLY_CONFIG)


def export_buttons(entry, index: int) -> None:
    """PNG / PDF of the current view and its settings as JSON, in the sidebar: made only when clicked,
    from what the explorer area last showed (kept by `keep_for_export`), so a slider move re-sends none."""
    current = st.session_state.setdefault("_export", {})
    stem = f"inside-explorer_{entry.name}_{index}"
    st.caption("Export the current view")

    def figure(fmt: str):
        return lambda: figure_bytes(*current["figure"], fmt, current["title"])

    def settings() -> str:
        explorer, prediction = current["figure"]
        z = [round(float(v), 4) for v in (prediction.z if prediction.z is not None else [])]
        return page_state.settings({"z": z, "dice": explorer.dice(prediction)}, current["state"])

    png, pdf, json_column = st.columns(3)
    png.download_button("PNG", data=figure("png"), file_name=f"{stem}.png", mime=MIME["png"], key="export_png",
                        on_click="ignore", help="the view as a figure, PNG at 300 dpi")
    pdf.download_button("PDF", data=figure("pdf"), file_name=f"{stem}.pdf", mime=MIME["pdf"], key="export_pdf",
                        on_click="ignore", help="the view as a figure, vector PDF")
    json_column.download_button("JSON", data=settings, file_name=f"{stem}.json", mime=MIME["json"],
                                key="export_json", on_click="ignore",
                                help="the settings and the query string that reopens them")


def keep_for_export(explorer, prediction, entry, source, index: int) -> None:
    """What the sidebar's export buttons make their files from (a few references, nothing computed)."""
    st.session_state.setdefault("_export", {}).update(
        figure=(explorer, prediction), title=f"{entry.name} · {source.title(index)}", state=page_state.current())


def explore_view(mask: MaskPanel, panel: ConditioningPanel) -> None:
    left, right = st.columns([1, 1.25])
    with left:
        st.toggle("Show the ground truth", key="show_gt")
        draw_mask_panel(mask)
    with right:
        draw_conditioning_panel(panel)
    if "details" in panel.figures:
        # drawn after the mask and the attention have been painted: they are what a slider move is about
        live_chart(panel.figures["details"], key="main_details", config=plots.PLOTLY_CONFIG, defer=True)


def compare_view(explorer, prediction, entry, source, index: int, controls: Controls, view) -> None:
    entries = loading.discover_models(entry.card.get("dataset", "clevr-seg")) or \
        loading.untrained_models(entry.card.get("dataset", "clevr-seg"))
    names = [e.name for e in entries]
    mine = entry.card.get("conditioning")
    # default partner: another model for the same condition (so both read z the same way), FiLM beside
    # INSIDE and INSIDE beside the others where there is one
    wanted = ("film", "guideme") if mine == "inside" else ("inside",)
    same_condition = [e for e in entries if e.name != entry.name and e.card.get("condition") == entry.card.get(
        "condition")]
    ranked = sorted(same_condition, key=lambda e: wanted.index(e.card.get("conditioning"))
                    if e.card.get("conditioning") in wanted else len(wanted))
    fallback = ranked[0].name if ranked else next((n for n in names if n != entry.name), names[0])
    page_state.default("compare_model", fallback, lambda v: v in names)
    second = entries[names.index(st.selectbox("Compare with", names, key="compare_model"))]
    try:
        model = loading.load_model(second)
    except CheckpointError as error:
        st.error(str(error))
        return
    other_explorer = loading.explorer_for(second, model, view.key, view.image, view.ground_truth)
    other_prediction = other_explorer.update(condition_vector(second.card, **controls.z_values))
    pairs = ((entry, explorer, prediction), (second, other_explorer, other_prediction))
    for side, (column, (e, ex, pr)) in enumerate(zip(st.columns(2), pairs, strict=True)):
        with column:
            st.subheader(e.name)
            draw_mask_panel(mask_panel(ex, pr, title=loading.describe(e)))
            draw_conditioning_panel(conditioning_panel(ex, pr, compact=True), key=f"compare{side}", compact=True)


def sweep_variables(card: dict) -> dict[str, tuple[float, float]]:
    condition = card.get("condition", "quadrant")
    if card.get("dataset") == "acdc" or condition == "phase_slice":
        return {"phase": (0.0, 1.0), "slice": (0.0, 1.0)}
    if condition == "point":
        return {"loc_x": (-1.0, 1.0), "loc_y": (-1.0, 1.0), "radius": (0.05, 1.0)}
    if condition == "quadrant":
        return {"loc_x": (-1.0, 1.0), "loc_y": (-1.0, 1.0)}
    return {}


def sweep_view(explorer, entry, source, index: int, controls: Controls) -> None:
    variables = sweep_variables(entry.card)
    if not variables:
        st.info("This model's condition is categorical: pick its values above instead.")
        return
    page_state.default("sweep_var", next(iter(variables)), lambda v: v in variables)
    page_state.default("sweep_steps", 7, lambda v: 3 <= int(v) <= 11)
    left, right = st.columns(2)
    variable = left.selectbox("Sweep", list(variables), key="sweep_var")
    steps = right.slider("Steps", 3, 11, key="sweep_steps")
    low, high = variables[variable]
    grid = np.linspace(low, high, steps)
    z_values = controls.z_values
    zs = [condition_vector(entry.card, **{**z_values, variable: float(v)}) for v in grid]
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
            frame = plots.draw_points(frame, np.stack([plots.to_pixels(table["mu_x"], w),
                                                       plots.to_pixels(table["mu_y"], h)], axis=-1), radius=1)
            means.append((table["mu_x"].mean(), table["mu_y"].mean()))
        if source.kind == "clevr-seg" and hasattr(source, "ground_truth"):
            truth, _ = source.ground_truth(index, entry.card, {**z_values, variable: float(value)},
                                           loading.clevr_objects(source, source.label, index))
            if truth is not None:
                from inside_core.explorer import dice_score, prepare_mask

                caption += f" · Dice {dice_score(prediction.labels, prepare_mask(truth, explorer.image_size)):.2f}"
        frames.append(frame)
        captions.append(caption)
    st.caption("The image stays fixed; only z changes. Yellow dots: INSIDE's Gaussian means (all channels).")
    st.image(frames, caption=captions, width=170)
    if means:
        live_chart(plots.means_figure(grid, np.array(means), variable), key="sweep_means", config=plots.PLOTLY_CONFIG)


@st.fragment
def explorer_area(entry, source, index: int) -> None:
    """Everything the sliders drive: a slider move re-runs this fragment only.

    It computes first and draws after: a slider move then reaches the browser as one batch of elements,
    and the frontend re-renders the page once (10-25 ms a batch here) instead of once per group of
    elements that the computation would space out.
    """
    try:
        model = loading.load_model(entry)
    except CheckpointError as error:
        st.error(str(error))
        return
    controls = control_values(entry.card, source, index)
    view = current_view(entry, source, index, controls.values)
    explorer = loading.explorer_for(entry, model, view.key, view.image, view.ground_truth)
    prediction = explorer.update(condition_vector(entry.card, **controls.z_values))
    keep_for_export(explorer, prediction, entry, source, index)
    mode = page_state.default("view", VIEWS[0], lambda v: v in VIEWS)
    if mode == "Explore":
        page_state.default("show_gt", False)
        content = mask_panel(explorer, prediction), conditioning_panel(explorer, prediction)
    draw_controls(controls, entry.card, source, index, view.notes)
    st.radio("View", VIEWS, key="view", horizontal=True, label_visibility="collapsed")
    if mode == "Explore":
        explore_view(*content)
    elif mode == "Compare":
        compare_view(explorer, prediction, entry, source, index, controls, view)
    else:
        sweep_view(explorer, entry, source, index, controls)
    page_state.sync_url()


# --------------------------------------------------------------------------------------------- page

st.set_page_config(page_title="INSIDE Explorer", page_icon="🔎", layout="wide")
unreadable = page_state.restore_from_url()
st.title("INSIDE Explorer")
st.caption("Conditioning layers turn z into per-channel Gaussian attention and FiLM scale/shift "
           "(INSIDE, Jacenków et al., MICCAI 2020). Move the sliders: the mask and the attention follow.")
if unreadable:
    st.warning(f"Ignored unreadable link settings: {', '.join(unreadable)}")

with st.sidebar:
    dataset = choose_dataset()
    source_kind = choose_source_kind()
    source_slot = st.container()
    model_entry = choose_model(dataset)
    with source_slot:
        data_source = load_data(dataset, source_kind, model_entry)
    sample_index = choose_sample(data_source) if data_source is not None else None
    if data_source is not None and source_kind == "bundled":
        st.caption("Bundled data is SYNTHETIC (generated by `inside data`), not the real dataset.")
    if model_entry is not None and data_source is not None:
        export_buttons(model_entry, sample_index)

if model_entry is None or data_source is None:
    st.info("Choose a model and some data in the sidebar.")
    page_state.sync_url()
else:
    if not model_entry.trained:
        st.warning("Untrained model (random weights): the page works, the masks mean nothing.")
    explorer_area(model_entry, data_source, sample_index)
loading.freeze_startup_objects()  # once, after the first page: keeps Streamlit's per-run garbage collection short
