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
    live = [json.loads(e.proto.json) for e in at.get("bidi_component")  # a Custom Components v2 element
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


@pytest.mark.browser
@pytest.mark.skipif(not MODEL.with_suffix(".safetensors").exists(), reason="needs the shipped 3-D model")
def test_in_a_browser_depth_and_z_redraw_the_three_pictures(tmp_path):
    """Headless Chromium: the depth slider's key redraws all three pictures (new image sources), the streaming
    control's End key the two of the Gaussians (the slice's own picture changes only where a cube crosses
    that slice), and the link follows; screenshot in tmp_path."""
    from benchmarks.browser import browser, chromium_path, streamlit_server

    if chromium_path() is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    images = '[data-testid="stMain"] [data-testid="stImage"] img'
    with streamlit_server(REPO / "app" / "main.py") as url, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/?dataset=cubes3d&depth=8&loc_w=-0.5", wait_until="domcontentloaded")
        page.wait_for_function(f"() => document.querySelectorAll('{images}').length === 3", timeout=180000)

        def sources() -> list[str]:
            return [image.get_attribute("src") for image in page.locator(images).all()]

        def changed(before: list[str], which: list[int]) -> None:
            page.wait_for_function("([selector, before, which]) => { const now = Array.from(document.querySelectorAll("
                                   "selector)).map(i => i.getAttribute('src')); return now.length === 3 && "
                                   "which.every(k => now[k] !== before[k]); }", arg=[images, before, which],
                                   timeout=30000)

        first = sources()
        page.locator('input[type="range"][aria-label^="Depth slice"]').first.press("ArrowLeft")
        changed(first, [0, 1, 2])
        page.wait_for_function("() => new URL(location.href).searchParams.get('depth') === '7'", timeout=15000)
        second = sources()
        control = next(frame.locator('input[type="range"][aria-label^="Target along W"]') for frame in page.frames
                       if frame.locator('input[type="range"][aria-label^="Target along W"]').count())
        control.first.press("End")
        changed(second, [1, 2])
        page.wait_for_function("() => new URL(location.href).searchParams.get('loc_w') === '1'", timeout=15000)
        assert page.locator('[data-testid="stException"]').count() == 0
        page.screenshot(path=str(tmp_path / "volume-view.png"), full_page=True)
        assert (tmp_path / "volume-view.png").stat().st_size > 20_000


@pytest.mark.skipif(not (REPO / "checkpoints" / "cubes3d-unet-film.safetensors").exists(),
                    reason="needs the shipped 3-D FiLM model")
def test_a_3d_model_without_gaussians_shows_its_slices_and_says_so():
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["dataset"], at.query_params["model"] = "cubes3d", "cubes3d-unet-film"
    at = healthy(at.run())
    from app import page_state

    shown = at.session_state[page_state.SESSION_KEY].shown["cubes3d-unet-film"]
    assert shown.layer is None and shown.section_rgb is None and shown.slice_rgb.shape == (288, 288, 3)
    assert any("no 3-D INSIDE layer" in i.value for i in at.info)
    at.session_state["loc_w"] = 0.75
    at = healthy(at.run())
    np.testing.assert_allclose(at.session_state[page_state.SESSION_KEY].shown["cubes3d-unet-film"].prediction.z,
                               [0.0, 1.0])


def test_volume_explorer_decodes_what_the_full_forward_gives():
    """`VolumeExplorer`: encode once, then each z's decode is the whole network's answer; its depth factor is
    the depth Gaussian at the slice, and the cross-section its in-plane Gaussian scaled by that factor."""
    import inside_core
    from inside_core.base_networks import build_base_network
    from inside_core.volume import VolumeExplorer

    torch.manual_seed(0)
    net = build_base_network("monai.UNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 1,
                                            "channels": [4, 8, 8], "strides": [2, 2]})
    model = inside_core.condition(net, at=["model.1.submodule.1", "model.2"], layer="inside", cond_dim=2,
                                  sigma_max=0.5).eval()
    volume = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(1))
    explorer = VolumeExplorer(model, volume)
    for z in ([1.0, 0.0], [0.3, 0.7]):
        prediction = explorer.update(z)
        with torch.no_grad():
            logits = model(volume[None], torch.tensor([z])).logits
        np.testing.assert_allclose(prediction.probabilities, torch.sigmoid(logits[0, 0]).numpy(), atol=1e-5)
        assert np.array_equal(prediction.labels, (logits[0, 0] > 0).long().numpy())
        for layer, channel, depth in ((1, 0, 2), (0, 3, 9)):  # model.2 has one channel, the bottleneck eight
            factors = prediction.conditioning[layer].attention_factors((16, 16, 16))
            g = prediction.depth_factor(layer, channel, depth)
            assert g == pytest.approx(float(factors[0][0, channel, depth]))
            plane = np.outer(factors[1][0, channel].numpy(), factors[2][0, channel].numpy())
            np.testing.assert_allclose(prediction.cross_section(layer, depth)[channel], g * plane, atol=1e-6)
    truth = (prediction.labels > 0).astype(np.int64)
    assert explorer.dice(prediction, truth) == pytest.approx(1.0) and explorer.dice(prediction, None) is None
