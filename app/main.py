"""INSIDE Explorer: move the conditioning sliders, watch the predicted mask and the attention follow.

    streamlit run app/main.py

Sidebar: dataset, data (bundled synthetic / a folder / an upload), model, sample.
Main area: the conditioning sliders, then one view: Explore, Compare or Sweep.

The page is a thin view over `inside_core`: the controls come from the model's condition
(`inside_core.conditions`, drawn by app/controls.py), the sample's encoder output is kept per session
(`inside_core.explorer.Explorer`) and a control move runs only the model's decoder; app/views.py draws
the result. The main area is a `st.fragment`, so a control move re-runs only it, not the sidebar. The
state lives in the URL query string (app/page_state.py). docs/ARCHITECTURE.md follows one move through.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import app.bundled_data  # noqa: E402,F401  # isort: skip  # first: the bundled data starts while torch imports
import inside_core.threads  # noqa: E402,F401  # isort: skip  # the OpenMP wait policy, before torch loads
import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402

from app import loading, page_state  # noqa: E402
from app.controls import draw_live_controls, read_controls  # noqa: E402
from app.export import MIME, ExportView, export_bytes  # noqa: E402
from app.frame import FrameOptions  # noqa: E402
from app.live_area import AREA, VIEW_ERRORS, Shown, decoded, error_line, live_slot  # noqa: E402
from app.place import place_of  # noqa: E402
from app.sources import SourceError, UploadSource  # noqa: E402
from app.views import (  # noqa: E402
    VIEWS,
    compare_view,
    conditioning_panel,
    explore_columns,
    explore_rest,
    mask_panel,
    sweep_view,
)
from app.volume_view import volume_area  # noqa: E402
from inside_core.checkpoints import CheckpointError  # noqa: E402
from inside_core.conditions import condition_of  # noqa: E402
from inside_core.data import DataError  # noqa: E402
from inside_core.data.registry import DATASETS, card_dataset, dataset_kind  # noqa: E402
from inside_core.data_roots import path_problem  # noqa: E402

SOURCES = {"bundled": "Bundled synthetic data", "folder": "A dataset folder", "upload": "Upload a file"}
SPLITS = ("test", "val", "train", "all")
PATH_OPTION = "(a checkpoint path…)"


# ------------------------------------------------------------------------------------------ sidebar


def choose_dataset() -> str:
    page_state.default("dataset", next(iter(DATASETS)), lambda v: v in DATASETS)
    return st.selectbox("Dataset", list(DATASETS), format_func=lambda name: DATASETS[name].display, key="dataset")


def choose_source_kind() -> str:
    page_state.default("source", "bundled", lambda v: v in SOURCES)
    return st.radio("Data", list(SOURCES), format_func=SOURCES.get, key="source")


def choose_model(dataset: str) -> loading.ModelEntry | None:
    kind = dataset_kind(dataset)
    entries = loading.discover_models(dataset)
    if not entries and kind.untrained is None:  # a model is what defines z for a user's variables
        st.info("No model trained on a folder of your own yet: `inside train --config "
                "configs/your-data-inside.yaml --data FOLDER`, then choose its checkpoint here.")
    elif not entries:
        entries = loading.untrained_models(dataset)
        st.warning(f"No {kind.display} checkpoint under checkpoints/: offering untrained models "
                   "(random weights) so the page still works.")
    names = [entry.name for entry in entries] + [PATH_OPTION]
    page_state.default("model", loading.default_model(dataset, names), lambda v: v in names)
    name = st.selectbox("Model", names, key="model")
    if name == PATH_OPTION:
        page_state.default("model_path", "")
        text = st.text_input("Checkpoint (.safetensors with its .json)", key="model_path")
        if not text.strip():
            st.info("Type the path of a checkpoint.")
            return None
        refused = path_problem(text.strip(), st.get_option("server.address"))  # issue 23: INSIDE_DATA_ROOTS
        if refused:
            st.error(loading.plain(refused))
            return None
        try:
            entry = loading.entry_from_path(text)
        except CheckpointError as error:
            st.error(loading.plain(error))
            return None
    else:
        entry = entries[names.index(name)]
    st.caption(loading.plain(loading.describe(entry)))
    trained_on = card_dataset(entry.card)
    if (entry.card.get("data") or {}).get("synthetic") and trained_on in DATASETS and \
            DATASETS[trained_on].synthetic_note:
        st.warning(DATASETS[trained_on].synthetic_note)
    if trained_on != dataset:
        st.warning(f"This model was trained on {loading.plain(trained_on)}, not {kind.display}.")
    return entry


def load_data(dataset: str, kind: str, entry: loading.ModelEntry | None):
    """The page's source for the chosen data; on bad input, one clear line (and the validator's
    findings for a folder) instead of a traceback. None when there is nothing to show."""
    card = entry.card if entry else {}
    about = dataset_kind(dataset)
    variables = (card.get("data") or {}).get("variables") if about.variables else None
    image_size = int((card.get("image_size") or [128])[0])
    spacing = float(card.get("spacing", 1.37))
    if kind == "upload":
        upload = st.file_uploader("Image (PNG, JPEG) or NIfTI volume (.nii, .nii.gz)", key="upload")
        if upload is None:
            st.info("Choose a file to explore it with the chosen model.")
            return None
        try:
            return UploadSource(upload.name, upload.getvalue(), dataset, image_size=(image_size, image_size),
                                spacing=spacing if about.spacing else None)
        except SourceError as error:
            st.error(loading.plain(error))
            return None
    page_state.default("split", "test", lambda v: v in SPLITS)
    if kind == "folder":
        page_state.default("data_dir", "")
        root = st.text_input("Folder", key="data_dir", placeholder=about.folder_hint).strip()
        if not root:
            st.info("Type the folder of a download (or of `inside data ...` output)." if not about.variables else
                    "Type a folder in the nnU-Net layout (dataset.json, imagesTr/, labelsTr/, conditions.csv: "
                    "docs/your-data.md); `inside data validate FOLDER` checks it.")
            return None
        refused = path_problem(root, st.get_option("server.address"))  # issue 23: INSIDE_DATA_ROOTS
        if refused:
            st.error(loading.plain(refused))
            return None
    else:
        try:
            with st.spinner("Preparing the bundled synthetic data (first start only)…"):
                root = str(loading.default_data_dir(dataset))
        except (OSError, DataError) as error:
            st.error(f"The bundled data is not available: {loading.plain(error)}")
            return None
    split = st.selectbox("Split", SPLITS, key="split")
    try:
        return loading.load_source(dataset, root, split, image_size, spacing,
                                   tuple(variables) if variables else None)
    except (DataError, SourceError, OSError) as error:
        st.error(loading.plain(str(error).splitlines()[0] if str(error) else type(error).__name__))
        findings = loading.validation_findings(root, dataset)
        if findings:
            st.caption("`inside data validate` says:")
            st.code("\n".join(findings), language=None)  # file text as text, never Markdown
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
    st.caption(loading.plain(source.title(index)))
    return index


# --------------------------------------------------------------------------------------- main area


def export_buttons(entry, index: int) -> None:
    """PNG / PDF of the current view and its settings as JSON, in the sidebar: made only when clicked, from
    what the explorer area last showed (`page_state.session().export`, read at the click), so a control
    move re-sends none."""
    stem = f"inside-explorer_{entry.name}_{index}"
    st.caption("Export the current view")

    def figure(fmt: str):
        return lambda: export_bytes(page_state.session().export, fmt)

    def settings() -> str:
        view = page_state.session().export
        z = [round(float(v), 4) for v in (view.prediction.z if view.prediction.z is not None else [])]
        return page_state.settings({"z": z, "dice": view.explorer.dice(view.prediction, view.mask)}, view.state)

    png, pdf, json_column = st.columns(3)
    png.download_button("PNG", data=figure("png"), file_name=f"{stem}.png", mime=MIME["png"], key="export_png",
                        on_click="ignore", help="the view as a figure, PNG at 300 dpi")
    pdf.download_button("PDF", data=figure("pdf"), file_name=f"{stem}.pdf", mime=MIME["pdf"], key="export_pdf",
                        on_click="ignore", help="the view as a figure, vector PDF")
    json_column.download_button("JSON", data=settings, file_name=f"{stem}.json", mime=MIME["json"],
                                key="export_json", on_click="ignore",
                                help="the settings and the query string that reopens them")


def sweep_channels(prediction) -> tuple[list[int] | None, str | None]:
    """The channels the Sweep view draws (every INSIDE channel's mean, as dots), for the export."""
    params = prediction.conditioning[0] if prediction.conditioning else None
    if params is None or not hasattr(params, "mu_x"):
        return None, None
    count = int(params.mu_x.shape[-1])
    return list(range(count)), f"all {count} channels"


def input_notes(model, image) -> list[str]:
    """What differs between this image and the model's training data that a reader should know."""
    channels, wanted = int(image.shape[0]), int(getattr(model, "in_channels", image.shape[0]))
    kinds = {1: "single-channel (grey, e.g. MRI)", 3: "colour (RGB)"}
    if channels == wanted or (channels == 4 and wanted == 3):
        return []
    change = "averaged to grey" if wanted == 1 else "copied into the three colour channels"
    return [f"this image is {kinds.get(channels, f'{channels}-channel')}, the model was trained on "
            f"{kinds.get(wanted, f'{wanted}-channel')} images: {change}; expect the masks to suffer"]


@st.fragment(key=AREA)
def explorer_area(entry, source, index: int) -> None:
    """Everything the controls drive, in page order: read the controls (select boxes drawn, the streaming
    ones' values from the state), compute the prediction for that z and its frame, draw it, then draw the
    streaming controls into their slot above it. A control's final value re-runs this fragment only; a held
    one, in the Explore view with a pad, only the controls' own (app/live_area.py). Data flows forward:
    nothing below is asked anything by what it was given (docs/ARCHITECTURE.md traces one move)."""
    page_state.begin("area", scope=(entry.path, entry.name, getattr(source, "label", "")))
    try:
        model = loading.load_model(entry)
    except CheckpointError as error:
        st.error(loading.plain(error))
        return
    condition = condition_of(entry.card)
    controls = read_controls(condition, source, index)
    session = page_state.session()
    follow = True
    if "cine" in source.offers:
        page_state.default("follow", True)
        follow = st.toggle("The image follows the controls (cine frame for the phase, the chosen slice)",
                           key="follow", persist_state="session")
    try:  # issue 23: a bad case file in the user's folder is one line, not an exception box
        place = place_of(entry, condition, source, index, follow)
        found = decoded(entry, model, place, controls)
    except VIEW_ERRORS as error:
        st.error(error_line(error))
        return
    view, explorer, prediction = found.view, found.explorer, found.prediction
    view.notes.extend(input_notes(model, view.image))
    caption = "  \n".join(loading.plain(line) for line in [controls.caption, *view.notes] if line)
    if caption:
        st.caption(caption)
    page_state.default("view", VIEWS[0], lambda v: v in VIEWS)
    mode = st.radio("View", VIEWS, key="view", horizontal=True, label_visibility="collapsed")
    show_truth = bool(page_state.default("show_gt", False)) and view.ground_truth is not None
    marker = condition.marker(controls.z_values)
    export = ExportView(explorer, prediction, f"{entry.name} · {source.title(index)}", entry.name,
                        mask=view.ground_truth, values=dict(controls.z_values), condition=entry.card.get("condition"),
                        show_ground_truth=show_truth)
    if mode == "Explore":
        on_image = controls.pad_keys is not None  # the component draws the mask: the pad, or under the pad
        panel = conditioning_panel(explorer, prediction, condition, marker=marker, dragging=controls.dragging,
                                   overlaid=on_image)
        options = FrameOptions(show_truth, panel.frame_channels, panel.layer)
        mask = mask_panel(explorer, prediction, condition, controls.z_values, view.ground_truth, show_truth,
                          image=view.image, options=options)
        slot, right = explore_columns(mask, on_image)
        if on_image and controls.live:  # held values rerun the controls and their frame alone
            with slot:
                live_slot(entry, model, place, options, Shown(controls, mask, found))
        else:
            draw_live_controls(controls, slot)
        explore_rest(panel, right)
        (export.channels, export.channel), export.channels_note = panel.export_channels, panel.note
        export.layer = panel.layer
    else:
        slot = st.container()  # the streaming controls, above the view they drive
        if mode == "Compare":
            first = conditioning_panel(explorer, prediction, condition, marker=marker, compact=True,
                                       dragging=controls.dragging)
            other = compare_view(explorer, prediction, entry, controls, view, show_truth, marker=marker,
                                 first_panel=first)
            export.channels, export.channels_note = first.export_channels[0], first.note or None
            if other is not None:
                export.compare = (other.name, other.explorer, other.prediction, other.panel.export_channels[0],
                                  other.panel.note or None)
        else:
            sweep_view(explorer, entry, source, index, controls)
            export.channels, export.channels_note = sweep_channels(prediction)
        draw_live_controls(controls, slot)
    export.state = page_state.current()
    session.export = export
    if not controls.dragging:  # held: the release's run writes the link (a link per move cost the browser a
        page_state.sync_url()  # history entry, ~5 ms a move)


# --------------------------------------------------------------------------------------------- page

st.set_page_config(page_title="INSIDE Explorer", page_icon="🔎", layout="wide")
page_state.begin("page")
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
    if model_entry is not None and data_source is not None and "volume" not in data_source.offers:
        export_buttons(model_entry, sample_index)

if model_entry is None or data_source is None:
    st.info("Choose a model and some data in the sidebar.")
    page_state.sync_url()
else:
    if not model_entry.trained:
        st.warning("Untrained model (random weights): the page works, the masks mean nothing.")
    area = volume_area if "volume" in data_source.offers else explorer_area  # a volume: app/volume_view.py
    area(model_entry, data_source, sample_index)
loading.freeze_startup_objects()  # once, after the first page: keeps Streamlit's per-run garbage collection short
