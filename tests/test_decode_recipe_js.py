"""Decoding in the browser draws what the page draws: app/decode_core.js (run by Node) on the exported decoder's
outputs (ONNX Runtime, fed the float16 features the page sends) against `Explorer.update` and app/frame.py.

For fixed z values: the labels at the model's size equal `Prediction.labels` (the card's clean-up included where it
is the largest component; the cardiac anatomy step is not done in the browser: there the labels equal the largest
component's alone, and the release's picture, the server's, is the exact one); the picture at the page's size
differs from `app.frame.picture` in at most PICTURE_PIXELS of its pixels (where the upsampled probability of a
border pixel is within float16's rounding of 0.5) and nowhere else; the Gaussians equal `app.frame.gaussians` to
0.011 px (both round to 2 decimals). Also the grid of z values equals the condition's `encode`, and the page offers
nothing to decode with $INSIDE_DASHBOARD_DECODE=server.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx==1.23.2 onnxscript==0.7.2)")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install onnxscript==0.7.2)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

from app import frame as frames  # noqa: E402
from app import plots  # noqa: E402
from app.controls import ControlValues  # noqa: E402
from app.scrub import z_grid  # noqa: E402
from inside_core.checkpoints import load_checkpoint  # noqa: E402
from inside_core.conditions import get_condition  # noqa: E402
from inside_core.data.generate_clevr_seg import render_scene  # noqa: E402
from inside_core.explorer import Explorer  # noqa: E402
from inside_core.onnx_decoder import decoder_bytes, half_features  # noqa: E402
from inside_core.postprocess import largest_component  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NODE = shutil.which("node") or shutil.which("nodejs")
PICTURE_PIXELS = 0.0002  # of the picture's pixels may differ (measured 23:57 UTC: at most 2.5e-5, 81 z on 3 images)
RECIPE = r"""
const core = require(process.argv[2]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const job = JSON.parse(input), out = [];
  for (const run of job.runs) {
    const [, K, H, W] = job.shape, [h, w] = job.size, outputs = {};
    for (const [name, data] of Object.entries(run.outputs)) outputs[name] = core.floats(core.bytesOf(data));
    const { labels, probabilities } = core.labelsFromLogits(outputs.logits, K, H, W, job.keep);
    const smooth = core.smoothLabels(probabilities, K, H, W, h, w);
    const picture = core.paint(new Uint8ClampedArray(core.bytesOf(job.base)), smooth, h, w, job.colours, job.alpha);
    out.push({ labels: Buffer.from(labels).toString("base64"), picture: Buffer.from(picture).toString("base64"),
               gaussians: core.gaussians(outputs, 0, job.channels, H, W) });
  }
  process.stdout.write(JSON.stringify(out));
});
"""
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (apt-get install -y nodejs)")


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def browser_recipe(tmp_path: Path, explorer: Explorer, zs: list, base: np.ndarray, channels: list[int] | None,
                   keep: list[int]) -> tuple[list[dict], list[np.ndarray]]:
    """What the browser paints for each z: the exported decoder run on the float16 features (as sent), then
    DecodeCore in Node. Returns its results and the decoder's logits."""
    onnx, spec = decoder_bytes(explorer)
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    feeds = {name: np.frombuffer(data, "<f2").reshape(shape).astype(np.float32)
             for name, (shape, data) in half_features(explorer).items()}
    runs, logits = [], []
    for z in zs:
        out = dict(zip(spec.outputs, session.run(None, {**feeds, "z": np.asarray([z], np.float32)}), strict=True))
        logits.append(out["logits"])
        runs.append({"outputs": {name: b64(value.astype("<f4")) for name, value in out.items()}})
    rgba = np.concatenate([base, np.full(base.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    job = {"runs": runs, "shape": list(logits[0].shape), "size": list(base.shape[:2]), "keep": keep,
           "base": b64(rgba), "colours": {str(k): [float(c) for c in v] for k, v in plots.LABEL_COLOURS.items()},
           "alpha": 0.45, "channels": channels}
    script = tmp_path / "recipe.js"
    script.write_text(RECIPE)
    result = subprocess.run([NODE, str(script), str(REPO / "app" / "decode_core.js")], input=json.dumps(job),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout), logits


def decoded(result: dict, size: tuple[int, int], model_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.frombuffer(base64.b64decode(result["labels"]), np.uint8).reshape(model_size)
    picture = np.frombuffer(base64.b64decode(result["picture"]), np.uint8).reshape(*size, 4)[..., :3]
    return labels, picture


def test_clevr_seg_the_browser_paints_the_page_s_labels_picture_and_gaussians(tmp_path):
    model = load_checkpoint(REPO / "checkpoints" / "clevr-seg-quadrant-inside.safetensors").eval()
    image, _, _ = render_scene(np.random.default_rng(3), size=96)
    explorer = Explorer(model, image)
    condition = get_condition("quadrant")
    values = [(-0.5, -0.5), (0.1, -0.3), (0.5, 0.45), (-0.2, 0.2), (0.0, 0.0)]
    zs = [condition.encode(loc_x=x, loc_y=y) for x, y in values]
    base = plots.upscaled_rgb(explorer.image, plots.display_size(*explorer.image_size, frames.DISPLAY_PIXELS))
    channels = [0, 5, 9, 17, 33]
    results, _ = browser_recipe(tmp_path, explorer, zs, base, channels, [])
    labels_seen = set()
    for (x, y), z, result in zip(values, zs, results, strict=True):
        prediction = explorer.update(z)
        labels, picture = decoded(result, base.shape[:2], explorer.image_size)
        assert np.array_equal(labels, prediction.labels), (x, y)
        labels_seen.add(labels.tobytes())
        server = frames.picture(prediction, base)
        differ = np.any(picture != server, axis=-1)
        assert differ.mean() <= PICTURE_PIXELS, (x, y, differ.mean())
        assert np.all(np.abs(picture.astype(int) - server)[~differ] == 0)
        expected = frames.gaussians(prediction, condition, {"loc_x": x, "loc_y": y}, channels, 0, explorer.image_size)
        for mine, theirs in zip(result["gaussians"][:5], expected[:5], strict=True):
            assert np.allclose(mine, theirs, atol=0.011), (x, y)
    assert len(labels_seen) >= 3  # the z values give different masks: the comparison could fail


def test_acdc_the_largest_component_is_kept_as_the_card_says(tmp_path):
    """The ACDC phantom's card: the largest component of labels 1-3, then the cardiac anatomy (not in the browser):
    the browser's labels equal the arg-max with the largest component of each listed label kept."""
    model = load_checkpoint(REPO / "checkpoints" / "acdc-phantom-inside.safetensors").eval()
    image = np.random.default_rng(1).random((128, 128), dtype=np.float32)  # noise: stray pieces to remove
    explorer = Explorer(model, image)
    keep = [int(k) for k in explorer.recipe["largest_component"]]
    zs = [[0.0, 0.0], [1.0, 0.5], [0.5, 0.2]]
    base = plots.upscaled_rgb(explorer.image, plots.display_size(*explorer.image_size, frames.DISPLAY_PIXELS))
    results, logits = browser_recipe(tmp_path, explorer, zs, base, None, keep)
    removed = 0
    for result, raw in zip(results, logits, strict=True):
        labels, _ = decoded(result, base.shape[:2], explorer.image_size)
        arg_max = raw[0].argmax(0)
        assert np.array_equal(labels, largest_component(arg_max, keep))
        removed += int((labels != arg_max).sum())
        assert result["gaussians"] is None  # no channels drawn: none sent
    assert removed > 0, "the clean-up removed nothing: this test would not see it missing"


def test_the_z_grid_is_the_condition_s_encode_on_every_slider_step():
    condition = get_condition("quadrant")
    controls = ControlValues({"loc_x": 0.1, "loc_y": -0.2}, {"loc_x": 0.1, "loc_y": -0.2}, "", condition, {},
                             condition.image_point())
    grid = z_grid(controls)
    table = np.frombuffer(base64.b64decode(grid["data"]), "<f4").reshape(41, 41, 4)
    assert grid["xs"] == [-1.0, 0.05, 41, 2] and grid["base"] == {} and grid["dim"] == 4
    for i, j in [(0, 0), (22, 17), (40, 40), (27, 9)]:
        x, y = round(-1 + 0.05 * i, 2), round(-1 + 0.05 * j, 2)
        assert np.array_equal(table[j, i], condition.encode(loc_x=x, loc_y=y)), (x, y)
    point = get_condition("point")
    values = {"loc_x": 0.0, "loc_y": 0.0, "radius": 0.4}
    grid = z_grid(ControlValues(values, dict(values), "", point, {}, point.image_point()))
    table = np.frombuffer(base64.b64decode(grid["data"]), "<f4").reshape(41, 41, 3)
    assert grid["base"] == {"radius": 0.4} and np.allclose(table[:, :, 2], 0.4)  # the radius as it is
    assert np.allclose(table[3, 7], [-0.65, -0.85, 0.4])


def test_decoding_on_the_server_offers_nothing(monkeypatch):
    from app import scrub

    monkeypatch.setenv("INSIDE_DASHBOARD_DECODE", "server")
    assert scrub.decode_mode() == "server"
    assert scrub.browser_decoder(None, None, None, None, None, "m", "i") is None
    monkeypatch.setenv("INSIDE_DASHBOARD_DECODE", "browser")
    assert scrub.decode_mode() == "browser"
