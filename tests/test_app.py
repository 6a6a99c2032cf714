"""The dashboard through Streamlit's AppTest: default page, datasets, sliders, views, uploads, bad input,
URL state, export and several sessions at once.

Most tests point the page at a temporary folder of small random-weight checkpoints (one per kind of
model, through $INSIDE_CHECKPOINT_DIR) so every control is exercised whatever is shipped; the
default-page test uses the shipped checkpoints/ as a user would. Data: the bundled synthetic default.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import threading
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from inside_core.checkpoints import list_checkpoints, save_checkpoint
from inside_core.conditions import quadrant_blend
from inside_core.networks import build_model

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app" / "main.py")
TIMEOUT = 300  # the first run may generate the bundled data and import torch; later runs take < 1 s
CLEVR = {"dataset": "clevr-seg", "architecture": "encoder_decoder", "image_size": [200, 200]}


# ------------------------------------------------------------------------------------------ fixtures


def _save(directory: Path, name: str, model_name: str, card: dict, seed: int, **config) -> None:
    torch.manual_seed(seed)
    model = build_model(model_name, **config)
    save_checkpoint(model, {"dataset": card["dataset"], "condition": card["condition"],
                            "conditioning": config.get("conditioning", "none"),
                            "image_size": list(config["image_size"]), **card}, directory / name)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """Random-weight checkpoints of every kind the page handles."""
    directory = tmp_path_factory.mktemp("checkpoints")
    for seed, conditioning in enumerate(("inside", "film", "guideme", "none")):
        _save(directory, f"clevr-seg-quadrant-{conditioning}", "encoder_decoder",
              {"dataset": "clevr-seg", "condition": "quadrant"}, seed,
              conditioning=conditioning, cond_dim=4, image_size=(200, 200))
    _save(directory, "clevr-seg-point-inside", "encoder_decoder", {"dataset": "clevr-seg", "condition": "point"},
          7, conditioning="inside", cond_dim=3, image_size=(200, 200))
    for seed, conditioning in enumerate(("inside", "film")):
        _save(directory, f"acdc-{conditioning}", "unet",
              {"dataset": "acdc", "condition": "phase_slice", "spacing": 1.37}, 10 + seed,
              conditioning=conditioning, cond_dim=2, image_size=(128, 128), channels=(8, 16, 32, 64),
              conditioning_at=("bottleneck", "decoder1") if conditioning == "inside" else ("bottleneck",))
    own = {"slice": {"type": "slice_position"}, "age": {"type": "continuous", "range": [20, 90], "unit": "years"},
           "sex": {"type": "categorical", "values": ["F", "M"]},
           "grade": {"type": "ordinal", "values": ["low", "high"]},
           "lesion": {"type": "label_centroid", "label": "lesion"},
           "lesion_size": {"type": "label_size", "label": "lesion"}}
    from inside_core.conditions import TableCondition

    _save(directory, "own-3d-inside", "encoder_decoder",
          {"dataset": "nnunet", "condition": "table", "condition_spec": {"variables": own},
           "labels": ["background", "lesion"], "data": {"variables": list(own)}}, 20, conditioning="inside",
          cond_dim=TableCondition({"variables": own}).cond_dim, image_size=(48, 48), in_channels=1, num_classes=2)
    return directory


def own_3d_folder(root: Path, cases: int = 4) -> Path:
    """A user's folder never seen before: 3-D NIfTI cases (5 slices, 2 x 2 x 4 mm) and a conditions table."""
    import nibabel as nib

    rng = np.random.default_rng(4)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for k in range(cases):
        image = rng.normal(60, 10, (40, 36, 5)).astype(np.float32)
        label = np.zeros((40, 36, 5), np.int16)
        label[8 + 3 * k:16 + 3 * k, 10:18, 1:] = 1
        image[label == 1] += 120
        affine = np.diag([2.0, 2.0, 4.0, 1.0])
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / f"case{k}_0000.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), root / "labelsTr" / f"case{k}.nii.gz")
    conditions = {"slice": {"type": "slice_position"}, "age": {"type": "continuous", "range": [20, 90]},
                  "sex": {"type": "categorical", "values": ["F", "M"]},
                  "grade": {"type": "ordinal", "values": ["low", "high"]},
                  "lesion": {"type": "label_centroid", "label": "lesion"},
                  "lesion_size": {"type": "label_size", "label": "lesion"}}
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "MRI"}, "labels": {"background": 0, "lesion": 1}, "numTraining": cases,
        "file_ending": ".nii.gz", "conditions": conditions}))
    (root / "conditions.csv").write_text("case,age,sex,grade\n" + "".join(
        f"case{k},{30 + 10 * k},{'FM'[k % 2]},{('low', 'high')[k % 2]}\n" for k in range(cases)))
    return root


@pytest.fixture
def test_models(checkpoints, monkeypatch) -> Path:
    monkeypatch.setenv("INSIDE_CHECKPOINT_DIR", str(checkpoints))
    return checkpoints


def page(query: dict | None = None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def healthy(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def charts(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures (st.plotly_chart, app/charts.py), by the key they were drawn with (the end
    of the element's id)."""
    figures = {}
    for element in at.get("plotly_chart"):
        key = re.fullmatch(r"\$\$ID-[0-9a-f]+-(.+)", element.proto.id)
        assert key, f"a chart drawn without a key: {element.proto.id}"
        figures[key.group(1)] = json.loads(element.proto.spec)
    return figures


def live_args(at: AppTest) -> dict:
    """The arguments the streaming controls (app/live_controls.py) were last drawn with: their specs,
    values, and the picture the point is dragged on."""
    found = [json.loads(e.proto.json) for e in at.get("bidi_component")  # a Custom Components v2 element
             if e.proto.component_name.endswith("live_controls")]
    assert len(found) == 1, f"{len(found)} live-controls components on the page"
    return found[0]


def value(at: AppTest, key: str):
    """A streaming control's value, as the page holds it and as the component shows it."""
    assert live_args(at)["values"][key] == at.session_state[key]
    return at.session_state[key]


def move(at: AppTest, key: str, new) -> AppTest:
    """A control moved as the component reports a move: its value written under the control's key before
    the script runs (AppTest cannot drive a custom component; the browser tests drag the real one)."""
    at.session_state[key] = new
    return at.run()


def slices(at: AppTest) -> list[int]:
    """The slice indices the slice control offers, base to apex."""
    spec = next(c for c in live_args(at)["controls"] if c["key"] == "slice")
    return [index for index, _ in spec["positions"]]


def attention_means(at: AppTest) -> np.ndarray:
    """The (mu_x, mu_y) points drawn in the attention figure, in pixels, shape (C, 2)."""
    for spec in charts(at).values():
        for trace in spec["data"]:
            if trace.get("name") == "μ":
                return np.stack([_array(trace["x"]), _array(trace["y"])], axis=-1)
    raise AssertionError("no attention figure on the page")


def _array(values) -> np.ndarray:
    if isinstance(values, dict):  # plotly's typed-array encoding: {"dtype": "f4", "bdata": base64}
        import base64

        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    return np.asarray(values, dtype=float)


def page_session(at: AppTest):
    """The session's own objects (app/page_state.Session): caches and what the page last showed."""
    from app import page_state

    return at.session_state[page_state.SESSION_KEY]


def last_prediction(at: AppTest, model: str | None = None):
    """The prediction the page drew last (for `model`, or the page's own model)."""
    shown = page_session(at).shown
    return shown[model] if model is not None else shown[at.selectbox(key="model").value]


def shown(markdown: str) -> str:
    """Text as the browser shows it: the page escapes Markdown characters in card and file text."""
    return re.sub(r"\\(.)", r"\1", str(markdown))


def texts(at: AppTest) -> str:
    """The page's words, with the line the streaming component draws under the mask (the Dice line)."""
    parts = [e.value for group in (at.caption, at.markdown, at.info, at.warning, at.error) for e in group]
    parts += [json.loads(e.proto.json).get("caption") or "" for e in at.get("bidi_component")
              if e.proto.component_name.endswith("live_controls")]
    return "\n".join(shown(p) for p in parts)


# ---------------------------------------------------------------------------------------- the page


def test_default_page_shows_a_clevr_sample_with_its_mask():
    at = healthy(page())
    assert at.selectbox(key="dataset").value == "clevr-seg"
    shipped = [p.stem for p in list_checkpoints(REPO / "checkpoints")]
    assert "clevr-seg-quadrant-inside" in shipped  # the page's default model ships with the repository
    assert at.selectbox(key="model").value == "clevr-seg-quadrant-inside"
    assert value(at, "loc_x") == -0.5 and value(at, "loc_y") == -0.5
    # it opens on a sample with objects in the top-left quadrant (the starting z), so there is a mask to see
    assert last_prediction(at) is not None and page_session(at).caches["explorers"]
    index = at.number_input(key="sample").value
    from inside_core.data import ClevrSegDataset, default_data_dir

    assert ClevrSegDataset(default_data_dir("clevr-seg"), split="test").target(index, "quadrant", "top_left").any()
    args = live_args(at)  # the input with the mask drawn is the picture the point is dragged on
    assert args["image"].startswith("data:image/jpeg;base64,") and args["image_label"] == "predicted mask"
    assert args["pad"]["x"] == "loc_x" and args["pad"]["y"] == "loc_y"
    assert {c["key"]: c["dead"] for c in args["controls"]}["loc_x"]  # the dead zones are marked
    assert attention_means(at).shape[1] == 2
    assert "blended" in texts(at)
    assert "SYNTHETIC" in texts(at)
    prediction = last_prediction(at)
    assert prediction.labels.ndim == 2 and prediction.labels.shape[0] >= 32
    assert "test Dice" in texts(at)  # the card's metric, under the model picker
    assert "prediction:" in texts(at) and "target" in texts(at)  # the colour key of the mask


@pytest.mark.skipif(not (REPO / "checkpoints" / "clevr-seg-quadrant-inside.safetensors").exists(),
                    reason="needs the shipped clevr-seg-quadrant-inside checkpoint")
def test_trained_mask_moves_to_the_chosen_quadrant():
    """With the shipped INSIDE model the mask follows the location: left half, then right half."""
    from benchmarks.bench_dashboard import pick_sample

    index, _ = pick_sample()  # objects in both top quadrants
    at = healthy(page(sample=index, loc_x=-0.5, loc_y=-0.5, show_gt=True))
    left = last_prediction(at).labels
    at = healthy(move(at, "loc_x", 0.5))
    right = last_prediction(at).labels
    width = left.shape[1]
    assert left.any() and right.any()
    assert np.nonzero(left)[1].mean() < width / 2 < np.nonzero(right)[1].mean()  # mask centroids
    dice = float(texts(at).split("Dice against the ground truth: **")[1].split("**")[0])
    assert dice > 0.6


def test_acdc_page_with_the_shipped_models():
    at = healthy(page(dataset="acdc"))
    model = at.selectbox(key="model").value
    assert "inside" in model
    assert value(at, "phase") == 0.0 and slices(at)
    assert live_args(at)["pad"]["x"] == "phase" and live_args(at)["pad"]["y"] == "slice"
    assert last_prediction(at).probabilities.shape[0] == 4
    assert "synthetic cardiac phantom only" in texts(at)  # said wherever an ACDC model is used
    args = live_args(at)  # the mask is drawn by the component, under the pad (it scrubs it while dragged)
    assert args["image"].startswith("data:image/jpeg") and args["image_label"] == "predicted mask"
    assert args["pad"]["on_image"] is False and not at.image
    assert args["title"] == "prediction" and "Dice against the ground truth" in args["caption"]
    at = healthy(move(at, "phase", 1.0))
    assert "ES frame" in texts(at)


@pytest.mark.parametrize("key", ["loc_x", "loc_y"])
def test_location_sliders_move_the_attention_and_the_mask(test_models, key):
    at = healthy(page(model="clevr-seg-quadrant-inside"))
    before_means, before = attention_means(at), last_prediction(at)
    image_before = live_args(at)["image"]
    at = healthy(move(at, key, 0.9))
    after_means, after = attention_means(at), last_prediction(at)
    assert not np.allclose(before_means, after_means)
    np.testing.assert_allclose(after.z, quadrant_blend(0.9 if key == "loc_x" else -0.5,
                                                       0.9 if key == "loc_y" else -0.5))
    assert not np.allclose(before.probabilities, after.probabilities)
    assert value(at, key) == 0.9
    # the drawn image is the mask's: it changed exactly when the labels did
    assert (live_args(at)["image"] != image_before) == (not np.array_equal(before.labels, after.labels))


def test_point_model_has_a_radius_slider(test_models):
    at = healthy(page(model="clevr-seg-point-inside"))
    assert value(at, "loc_x") == 0.0 and value(at, "radius") == pytest.approx(0.35)
    assert live_args(at)["pad"]["r"] == "radius"  # the ring around the point drags the radius
    before = attention_means(at)
    at = healthy(move(at, "radius", 0.8))
    assert not np.allclose(before, attention_means(at))
    np.testing.assert_allclose(last_prediction(at).z, [0.0, 0.0, 0.8])
    assert "radius" in texts(at)


def test_acdc_phase_and_slice_sliders(test_models):
    at = healthy(page(dataset="acdc"))
    assert at.selectbox(key="model").value == "acdc-inside"
    assert value(at, "phase") == 0.0
    first = last_prediction(at)
    assert first.probabilities.shape[0] == 4 and len(first.conditioning) == 2
    means = attention_means(at)
    at = healthy(move(at, "phase", 0.5))
    assert not np.allclose(means, attention_means(at))
    assert "only ED and ES" in texts(at) or "no 4-D cine" in texts(at)
    at = healthy(move(at, "phase", 1.0))
    assert "ES frame" in texts(at)
    at = healthy(at.toggle(key="show_gt").set_value(True).run())
    assert "Dice against the ground truth" in texts(at) and "LV" in texts(at)
    order = slices(at)
    assert len(order) > 1
    new_slice = [k for k in order if k != value(at, "slice")][0]
    at = healthy(move(at, "slice", new_slice))
    assert value(at, "slice") == new_slice
    assert last_prediction(at).z[1] != first.z[1]  # z's slice position follows the slider
    at = healthy(at.toggle(key="follow").set_value(False).run())
    assert "z only" in texts(at)


@pytest.mark.parametrize("conditioning, expected", [
    ("film", "no spatial attention"), ("guideme", "rank-one map"), ("none", "ignores z"),
])
def test_film_guideme_and_baseline_views(test_models, conditioning, expected):
    at = healthy(page(model=f"clevr-seg-quadrant-{conditioning}"))
    assert expected in texts(at)
    assert bool(charts(at)) == (conditioning != "none")
    before = last_prediction(at)
    at = healthy(move(at, "loc_x", 0.5))
    after = last_prediction(at)
    if conditioning == "guideme":  # the alpha + beta map follows the location, in the page's figure too
        assert not np.allclose(before.spatial_map(), after.spatial_map())
        heat = [t for t in charts(at)["main_spatial"]["data"] if t["type"] == "heatmap"][0]
        np.testing.assert_allclose(_array(heat["z"]).ravel(), after.spatial_map().ravel(), atol=1e-5)
    elif conditioning == "none":  # the baseline ignores z
        np.testing.assert_array_equal(before.probabilities, after.probabilities)


def test_channel_picker_isolates_one_channel(test_models):
    at = healthy(page(model="clevr-seg-quadrant-inside"))
    assert len(attention_means(at)) == 8  # a readable few by default: those that respond most to z
    assert "8 of 64 channels whose μ, σ move most with location x, location y" in texts(at)
    at = healthy(at.selectbox(key="channel").set_value("strongest").run())
    assert len(attention_means(at)) == 8 and "largest |1+γ|·mass" in texts(at)
    at = healthy(at.selectbox(key="channel").set_value("all").run())
    assert len(attention_means(at)) == 64
    at = healthy(at.selectbox(key="channel").set_value("5").run())
    assert len(attention_means(at)) == 1


def test_compare_view_shows_two_models(test_models):
    at = healthy(page(model="clevr-seg-quadrant-inside", view="Compare"))
    assert at.selectbox(key="compare_model").value == "clevr-seg-quadrant-film"
    assert [shown(h.value) for h in at.subheader] == ["clevr-seg-quadrant-inside", "clevr-seg-quadrant-film"]
    assert len(at.image) == 2
    assert [image.proto.imgs[0].caption for image in at.image][0].startswith("inside")
    assert "image" not in live_args(at) or live_args(at)["image"] is None  # sliders only, above both sides
    at = healthy(move(at, "loc_x", 0.5))
    film = last_prediction(at, "clevr-seg-quadrant-film")
    np.testing.assert_allclose(film.z, quadrant_blend(0.5, -0.5))


@pytest.mark.parametrize("dataset, variable", [("clevr-seg", "loc_x"), ("acdc", "phase")])
def test_sweep_view_draws_a_strip(test_models, dataset, variable):
    at = healthy(page(dataset=dataset, view="Sweep", sweep_steps=5))
    assert at.selectbox(key="sweep_var").value == variable
    strip = [image for image in at.image if len(image.proto.imgs) == 5]
    assert strip, "a strip of 5 masks"
    assert "sweep_means" in charts(at)
    # the swept control changes no mask of the strip (it spans its range): its value frames the nearest step,
    # so a drag on it walks the strip (it painted nothing before, issue 21)
    before = [image.proto.imgs for image in at.image if len(image.proto.imgs) == 5][0]
    marked = [k for k, img in enumerate(before) if "nearest the slider" in img.caption]
    assert marked == [0 if variable == "phase" else 1]  # phase 0 (ED); loc_x -0.5 of -0.75 ... 0.75
    high = next(c for c in live_args(at)["controls"] if c["key"] == variable)["high"]
    at = healthy(move(at, variable, high))
    after = [image.proto.imgs for image in at.image if len(image.proto.imgs) == 5][0]
    assert [k for k, img in enumerate(after) if "nearest the slider" in img.caption] == [4]
    assert after[4].url != before[4].url and after[marked[0]].url != before[marked[0]].url  # the frame moved


def test_url_query_string_round_trip(test_models):
    at = healthy(page(query={"model": "clevr-seg-quadrant-inside", "loc_x": "0.75", "loc_y": "0.25",
                             "view": "Sweep", "sweep_steps": "4", "show_gt": "1", "channel": "3"}))
    assert value(at, "loc_x") == 0.75 and at.radio(key="view").value == "Sweep"
    at = healthy(move(at, "loc_y", -0.25))
    assert at.query_params["loc_y"] == "-0.25" and at.query_params["loc_x"] == "0.75"
    assert at.query_params["view"] == "Sweep"
    bad = page(query={"loc_x": "seven", "sample": "99999"})
    assert not bad.exception and "Ignored unreadable link settings: loc_x" in texts(bad)
    assert bad.number_input(key="sample").value == page().number_input(key="sample").value  # out of range: default


def test_export_buttons_and_figure_bytes(test_models):
    at = healthy(page(model="clevr-seg-quadrant-inside"))
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels == ["PNG", "PDF", "JSON"]
    from app.export import export_bytes

    # the sidebar's buttons make their files on click from what the explorer area last showed
    current = page_session(at).export
    assert export_bytes(current, "png").startswith(b"\x89PNG")
    assert export_bytes(current, "pdf").startswith(b"%PDF")
    buttons = {button.proto.label: button for button in at.get("download_button")}
    assert all(b.proto.deferred_file_id and not b.proto.url for b in buttons.values())  # made on click only
    at = healthy(move(at, "loc_x", 0.5))
    current = page_session(at).export
    assert current.prediction is last_prediction(at) and current.state["loc_x"] == 0.5
    prediction = current.prediction
    from app import page_state

    settings = json.loads(page_state.settings({"z": prediction.z.tolist()}, current.state))
    np.testing.assert_allclose(settings["z"], quadrant_blend(0.5, -0.5), atol=1e-4)
    assert "loc_x=0.5" in settings["query_string"]


# ------------------------------------------------------------------------------- a user's own folder


def test_shipped_lesions_example_opens_with_its_own_controls():
    """The bundled example of a user's dataset (generated lesion slices, nnU-Net layout) with the shipped
    lesions-inside model: controls from its declared variables, the point dragged on the image with the
    lesion's size as the ring, started from the case's own values, so the mask is that lesion."""
    at = healthy(page(dataset="nnunet"))
    assert at.selectbox(key="model").value == "lesions-inside"
    args = live_args(at)
    assert [c["key"] for c in args["controls"]] == ["lesion_x", "lesion_y", "lesion_size", "age"]
    assert (args["pad"]["x"], args["pad"]["y"], args["pad"]["r"]) == ("lesion_x", "lesion_y", "lesion_size")
    assert at.selectbox(key="scanner").value in ("A", "B")  # a categorical variable: a select box
    assert "this case's own conditions" in texts(at)
    dice = float(texts(at).split("Dice against the ground truth: **")[1].split("**")[0])
    assert dice > 0.5  # its own lesion's values: the model segments that lesion
    at = healthy(move(at, "lesion_x", -0.9))
    at = healthy(move(at, "lesion_y", -0.9))  # a corner with no lesion: the mask of that lesion goes
    assert at.query_params["lesion_x"] == "-0.9"  # the variables go into the URL by their names
    assert float(texts(at).split("Dice against the ground truth: **")[1].split("**")[0]) < dice


def test_never_seen_3d_folder_opens_with_its_own_controls(test_models, tmp_path):
    root = own_3d_folder(tmp_path / "Dataset042_Mine")
    at = healthy(page(dataset="nnunet", source="folder", data_dir=str(root), split="all"))
    assert at.selectbox(key="model").value == "own-3d-inside"
    args = live_args(at)
    kinds = {c["key"]: c["kind"] for c in args["controls"]}
    assert kinds == {"slice": "stack", "age": "slider", "grade": "slider", "lesion_x": "slider",
                     "lesion_y": "slider", "lesion_size": "slider"}  # sex is a select box
    assert at.selectbox(key="sex").options == ["F", "M"]
    assert len(slices(at)) == 5 and args["pad"]["x"] == "lesion_x"
    first = last_prediction(at)
    at = healthy(move(at, "slice", 4))
    assert "slice 4 of 5" in texts(at) and last_prediction(at).z[0] == 1.0  # z starts with the slice position
    at = healthy(at.selectbox(key="sex").set_value("M").run())
    assert not np.array_equal(last_prediction(at).z, first.z)
    query = {"dataset": "nnunet", "source": "folder", "data_dir": str(root), "split": "all", "age": "77"}
    at = healthy(page(query=query))
    assert value(at, "age") == 77.0  # a shared link with a variable of the user's own


# --------------------------------------------------------------------------------------- bad input


def _png_bytes(size=(64, 48), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(
        mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _nifti_bytes(shape=(40, 36, 5)) -> bytes:
    import nibabel as nib

    volume = nib.Nifti1Image(np.random.default_rng(1).random(shape).astype(np.float32), np.diag([1.5, 1.5, 8, 1]))
    return gzip.compress(volume.to_bytes())


@pytest.mark.parametrize("name, content, message", [
    ("notes.txt", b"hello", "not a PNG, JPEG or NIfTI"),
    ("broken.png", b"\x89PNG\r\n\x1a\n garbage", "not a readable PNG or JPEG"),
    ("broken.nii.gz", b"not gzip at all", "not a readable NIfTI volume"),
])
def test_bad_uploads_get_one_clear_line(test_models, name, content, message):
    at = page(source="upload")
    assert not at.exception
    at = at.file_uploader(key="upload").set_value((name, content, "application/octet-stream")).run()
    assert not at.exception
    assert len(at.error) == 1 and message in shown(at.error[0].value) and "\n" not in at.error[0].value
    assert at.selectbox(key="dataset").value == "clevr-seg"  # the page keeps working


def test_uploaded_image_and_volume_are_explored(test_models):
    at = healthy(page(source="upload"))
    at = healthy(at.file_uploader(key="upload").set_value(("mine.png", _png_bytes(), "image/png")).run())
    assert last_prediction(at).labels.shape == (200, 200) and "no ground truth" in texts(at)
    assert "colour" not in texts(at)  # an RGB upload for an RGB model: nothing to warn about
    at = healthy(page(source="upload"))
    at = healthy(at.file_uploader(key="upload").set_value(("grey.png", _png_bytes(mode="L"), "image/png")).run())
    assert "copied into the three colour channels" in texts(at)
    at = healthy(page(source="upload", dataset="acdc"))
    at = healthy(at.file_uploader(key="upload").set_value(("heart.nii.gz", _nifti_bytes(), "application/gzip")).run())
    assert len(slices(at)) == 5
    assert last_prediction(at).probabilities.shape == (4, 128, 128)


def test_bad_data_folder_shows_findings_not_a_traceback(test_models, tmp_path):
    at = page(source="folder", data_dir=str(tmp_path / "missing"))
    assert not at.exception and len(at.error) >= 1 and "missing" in shown(at.error[0].value)
    malformed = tmp_path / "clevr"
    (malformed / "images").mkdir(parents=True)
    (malformed / "images" / "a.png").write_bytes(b"not a png")
    at = page(source="folder", data_dir=str(malformed))
    assert not at.exception and at.error
    at = page(source="folder", dataset="acdc", data_dir=str(malformed))
    assert not at.exception and at.error


def test_bad_model_path_is_one_line(test_models, tmp_path):
    at = page(model="(a checkpoint path…)", model_path=str(tmp_path / "nothing.safetensors"))
    assert not at.exception and "checkpoint weights not found" in shown(at.error[0].value)


# ------------------------------------------------------------------------------- several sessions


@pytest.fixture
def apptest_in_threads(monkeypatch):
    """Make AppTest usable from several threads at once.

    AppTest was written for one run at a time: each run swaps process-wide state that a real server
    sets once: the Runtime singleton (assigned at the start of a run, reset to None at its end), the
    "global.appTest" config flag (patched on and off around a run), and a fresh script cache per run
    (so every run compiles the script, and CPython 3.11 before 3.11.9 can fail concurrent compile()
    calls with "AST constructor recursion depth mismatch"). Here those stay fixed for the whole test, as
    in a server: one runtime, the flag on, compiling serialised. Each session keeps its own session
    state and script thread, which is what the test is about.
    """
    from unittest.mock import MagicMock

    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1.util import patch_config_options

    runtime = MagicMock(spec=Runtime)
    runtime.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    runtime.cache_storage_manager = MemoryCacheStorageManager()
    runtime.bidi_component_registry = BidiComponentManager()  # where a server keeps the v2 components
    monkeypatch.setattr(Runtime, "instance", classmethod(lambda cls: runtime))
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: True))
    lock = threading.Lock()
    original = ScriptCache.get_bytecode

    def get_bytecode(self, script_path):
        with lock:
            return original(self, script_path)

    monkeypatch.setattr(ScriptCache, "get_bytecode", get_bytecode)
    with patch_config_options({"global.appTest": True}):
        yield


def test_sessions_in_threads_keep_their_own_state(test_models, apptest_in_threads):
    """Several sessions at once, each moving its sliders: no errors, each sees only its own state."""
    healthy(page(model="clevr-seg-quadrant-inside"))  # warm the shared caches first
    positions = [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]
    results: dict[int, object] = {}

    def session(i: int) -> None:
        try:
            x, y = positions[i]
            at = page(model="clevr-seg-quadrant-inside", sample=i)
            for step in (0.3, 0.6, 1.0):
                at = move(at, "loc_x", round(step * x, 2))
                at = move(at, "loc_y", round(step * y, 2))
            results[i] = at
        except Exception:  # reported below, from the main thread
            results[i] = RuntimeError(traceback.format_exc())

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(positions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, (x, y) in enumerate(positions):
        at = results[i]
        if isinstance(at, Exception):
            pytest.fail(f"session {i} failed:\n{at}", pytrace=False)
        healthy(at)
        assert at.number_input(key="sample").value == i
        assert (value(at, "loc_x"), value(at, "loc_y")) == (x, y)
        np.testing.assert_allclose(last_prediction(at).z, quadrant_blend(x, y))
        assert all(key[2] == ("clevr", i) for key in page_session(at).caches["explorers"])


def test_view_state_is_kept_across_views(test_models):
    at = healthy(page(model="clevr-seg-quadrant-inside"))
    at = healthy(at.toggle(key="show_gt").set_value(True).run())
    at = healthy(at.selectbox(key="channel").set_value("5").run())
    at = healthy(at.radio(key="view").set_value("Sweep").run())
    assert at.query_params["show_gt"] == "1" and at.query_params["channel"] == "5"
    at = healthy(at.radio(key="view").set_value("Explore").run())
    assert at.toggle(key="show_gt").value is True and at.selectbox(key="channel").value == "5"
    assert len(attention_means(at)) == 1


def test_export_carries_the_view_as_shown(test_models):
    at = healthy(page(model="clevr-seg-quadrant-inside", view="Compare", show_gt=True, loc_x=0.25))
    current = page_session(at).export
    assert current.show_ground_truth is True and current.values["loc_x"] == 0.25
    name, other_explorer, other_prediction, _, _ = current.compare
    assert name == "clevr-seg-quadrant-film"
    from app.export import export_bytes

    svg = export_bytes(current, "svg").decode()
    assert "clevr-seg-quadrant-film" in svg and "clevr-seg-quadrant-inside" in svg  # both sides of Compare
    assert "0.25" in svg  # the control values as shown
