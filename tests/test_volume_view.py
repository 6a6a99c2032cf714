"""The page with a 3-D model (app/volume_view.py) through Streamlit's AppTest, and the cross-section it draws.

The page is opened on the shipped cubes3d-unet-inside model and the bundled generated volumes, as a user
would; the depth slider and the streaming control are moved and the pictures must change with them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from inside_core import load_checkpoint
from inside_core.layers_nd import InsideND

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app" / "main.py")
MODEL = REPO / "checkpoints" / "cubes3d-unet-inside"


def healthy(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def pictures(at: AppTest):
    from app import page_state

    return at.session_state[page_state.SESSION_KEY].shown["cubes3d-unet-inside"]


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cross_section_is_the_full_attention_at_that_slice(axis):
    layer = InsideND(6, 2, spatial_dims=3, sigma_max=0.6)
    params = layer.params(torch.randn(2, 2, generator=torch.Generator().manual_seed(axis)))
    size = (5, 7, 6)
    full = params.attention(size)
    for index in range(size[axis]):
        torch.testing.assert_close(params.cross_section(size, index, axis=axis), full.select(2 + axis, index))
    with pytest.raises(ValueError, match="no slice 5 along axis 0"):
        params.cross_section(size, 5)


@pytest.mark.skipif(not MODEL.with_suffix(".safetensors").exists(), reason="needs the shipped 3-D model")
def test_the_page_shows_a_volume_slice_by_slice_and_follows_depth_and_z():
    at = healthy(AppTest.from_file(APP, default_timeout=300).run())
    at.selectbox(key="dataset").select("cubes3d")
    at = healthy(at.run())
    assert at.selectbox(key="model").value == "cubes3d-unet-inside"
    first = pictures(at)
    assert first.depth == 8 and first.layer == 0 and first.section_rgb is not None
    assert first.slice_rgb.shape[:2] == first.section_rgb.shape[:2] == (288, 288)
    assert "depth factor on slice 8" in " ".join(c.value for c in at.caption)
    live = [json.loads(e.proto.json_args) for e in at.get("component_instance")
            if e.proto.component_name.endswith("live_controls")]
    assert [c["key"] for c in live[0]["controls"]] == ["loc_w"]  # the page's streaming controls drive z

    # the depth slider: another slice of the image, and of the Gaussians (scaled by another depth factor)
    at.slider(key="depth").set_value(3)
    at = healthy(at.run())
    moved = pictures(at)
    assert moved.depth == 3 and moved.channel == first.channel
    assert not np.array_equal(moved.slice_rgb, first.slice_rgb)
    assert not np.array_equal(moved.section_rgb, first.section_rgb)
    prediction = moved.prediction
    model = load_checkpoint(MODEL)
    expected = prediction.conditioning[0].attention(prediction.size)[0, :, 3].numpy()
    np.testing.assert_allclose(prediction.cross_section(0, 3), expected, atol=1e-6)
    assert prediction.conditioning[0].mu.shape[1] == model.conditionings[0].channels

    # the streaming control: z names the other half, the mask and the Gaussian move there
    at.session_state["loc_w"] = 0.75
    at = healthy(at.run())
    other = pictures(at)
    np.testing.assert_allclose(other.prediction.z, [0.0, 1.0])
    assert other.depth == 3 and not np.array_equal(other.section_rgb, moved.section_rgb)
    width = other.prediction.size[2]
    for prediction, half in ((moved.prediction, 0), (other.prediction, 1)):
        columns = np.nonzero(prediction.labels.any(axis=(0, 1)))[0]
        assert columns.size and all((c >= width // 2) == bool(half) for c in columns)  # the cube z names
    mu_before, mu_after = (p.prediction.gaussian(0, moved.channel)[0] for p in (moved, other))
    assert mu_before[2] < 0 < mu_after[2]  # the chosen channel's Gaussian crosses to the named half
    assert "Dice of the whole volume" in " ".join(c.value for c in at.caption)
