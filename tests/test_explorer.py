"""The Explorer: decode-only updates match full forward passes, for every network and conditioning."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from inside_core import InsideParams, build_model
from inside_core.conditions import acdc_condition, one_hot, point_condition, quadrant_blend
from inside_core.explorer import (
    Explorer,
    channel_table,
    condition_vector,
    prepare_image,
    prepare_mask,
)

SIZE = 32


def clevr_model(conditioning: str, cond_dim: int = 4):
    torch.manual_seed(0)
    return build_model("encoder_decoder", conditioning=conditioning, cond_dim=cond_dim, image_size=SIZE).eval()


def unet_model(conditioning: str = "inside"):
    torch.manual_seed(0)
    return build_model("unet", conditioning=conditioning, image_size=SIZE, channels=(8, 16, 32),
                       conditioning_at=("bottleneck", "decoder1")).eval()


def rgb_image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((3, SIZE, SIZE), dtype=np.float32)


@pytest.mark.parametrize("conditioning", ["none", "film", "guideme", "inside"])
def test_update_matches_full_forward_encoder_decoder(conditioning):
    explorer = Explorer(clevr_model(conditioning), rgb_image())
    for z in (quadrant_blend(-0.7, -0.7), quadrant_blend(0.2, 0.9)):
        fast, full = explorer.update(z), explorer.full_forward(z)
        np.testing.assert_allclose(fast.probabilities, full.probabilities, atol=1e-5)
        assert fast.probabilities.shape == (1, SIZE, SIZE)
        assert fast.labels.shape == (SIZE, SIZE) and fast.labels.dtype == np.int64
        assert set(np.unique(fast.labels)) <= {0, 1}
        assert len(fast.conditioning) == (0 if conditioning == "none" else 1)


def test_update_matches_full_forward_unet_multiclass():
    explorer = Explorer(unet_model(), rgb_image()[:1])
    z = acdc_condition(0.5, 0.25)
    fast, full = explorer.update(z), explorer.full_forward(z)
    np.testing.assert_allclose(fast.probabilities, full.probabilities, atol=1e-5)
    assert fast.probabilities.shape == (4, SIZE, SIZE)
    np.testing.assert_allclose(fast.probabilities.sum(0), 1.0, atol=1e-5)
    assert np.array_equal(fast.labels, fast.probabilities.argmax(0))
    assert len(fast.conditioning) == 2 and all(isinstance(p, InsideParams) for p in fast.conditioning)


def test_update_runs_decode_only():
    model = clevr_model("inside")
    explorer = Explorer(model, rgb_image())

    def no_encode(*args, **kwargs):
        raise AssertionError("update must not re-encode the image")

    model.encode = no_encode
    explorer.update(quadrant_blend(0.5, 0.5))


def test_parameters_follow_z_and_attention_is_in_image_coordinates():
    explorer = Explorer(clevr_model("inside"), rgb_image())
    a, b = explorer.update(quadrant_blend(-1, -1)), explorer.update(quadrant_blend(1, 1))
    pa, pb = a.conditioning[0], b.conditioning[0]
    assert pa.mu_x.shape == (1, 64)  # batch item 0, batch axis kept
    assert not torch.allclose(pa.mu_x, pb.mu_x)
    attention = a.attention(size=(50, 60))
    assert attention.shape == (64, 50, 60) and attention.max() <= 1.0 + 1e-6
    assert a.spatial_map() is None
    table = channel_table(pa)
    assert set(table) == {"mu_x", "mu_y", "sigma_x", "sigma_y", "gamma", "beta"}
    assert table["mu_x"].shape == (64,) and np.all(np.abs(table["mu_x"]) < 1) and np.all(table["sigma_x"] > 0)


def test_guideme_spatial_map_and_film_table():
    guideme = Explorer(clevr_model("guideme"), rgb_image()).update(quadrant_blend(0, 0))
    assert guideme.spatial_map().shape == (SIZE // 4, SIZE // 4) and guideme.attention() is None
    film = Explorer(clevr_model("film"), rgb_image()).update(quadrant_blend(0, 0))
    assert set(channel_table(film.conditioning[0])) == {"gamma", "beta"}


def test_sweep_matches_single_updates():
    explorer = Explorer(unet_model(), rgb_image()[:1])
    zs = [acdc_condition(phase, 0.5) for phase in (0.0, 0.5, 1.0)]
    swept = explorer.sweep(zs)
    for z, prediction in zip(zs, swept, strict=True):
        np.testing.assert_allclose(prediction.probabilities, explorer.update(z).probabilities, atol=1e-5)
        np.testing.assert_allclose(prediction.z, z)


def test_dice_against_mask():
    model = clevr_model("inside")
    explorer = Explorer(model, rgb_image())
    prediction = explorer.update(quadrant_blend(0, 0))
    perfect = Explorer(model, rgb_image(), mask=prediction.labels[None].astype(np.float32))
    assert perfect.dice(perfect.update(quadrant_blend(0, 0))) == pytest.approx(1.0)
    assert explorer.dice(prediction) is None  # no ground truth
    # a mask given per call, without changing the explorer
    assert explorer.dice(prediction, prediction.labels) == pytest.approx(1.0)
    assert explorer.dice(prediction, np.zeros_like(prediction.labels)) == (1.0 if not prediction.labels.any() else 0.0)
    assert explorer.mask is None


def test_multiclass_dice_per_class():
    explorer = Explorer(unet_model(), rgb_image()[:1], mask=np.zeros((SIZE, SIZE), np.int64))
    prediction = explorer.update(acdc_condition(0, 0))
    per_class = explorer.dice_per_class(prediction)
    assert set(per_class) == {1, 2, 3}
    assert explorer.dice(prediction) == pytest.approx(np.mean(list(per_class.values())))


def test_inputs_are_converted_and_resized():
    model = clevr_model("inside")
    rgba = np.random.default_rng(1).integers(0, 256, (48, 48, 4), dtype=np.uint8)
    explorer = Explorer(model, rgba, mask=np.ones((48, 48), np.uint8))
    assert explorer.image.shape == (3, SIZE, SIZE) and 0 <= explorer.image.min() and explorer.image.max() <= 1
    assert explorer.mask.shape == (SIZE, SIZE)
    grey = prepare_image(np.zeros((10, 12), np.float32), channels=3)
    assert grey.shape == (3, 10, 12)
    assert prepare_image(np.zeros((3, 8, 8)), channels=1).shape == (1, 8, 8)
    assert prepare_mask(torch.ones(1, 8, 8), size=(4, 4)).shape == (4, 4)
    with pytest.raises(ValueError, match="expected an image"):
        prepare_image(np.zeros((2, 5, 6, 7)))


def test_bad_z_is_a_clear_error():
    explorer = Explorer(clevr_model("inside"), rgb_image())
    with pytest.raises(ValueError, match="expects z of 4 numbers"):
        explorer.update(np.zeros(3))


def test_condition_vector_uses_the_shared_encodings():
    np.testing.assert_allclose(condition_vector({"condition": "quadrant"}, loc_x=0.2, loc_y=-0.6),
                               quadrant_blend(0.2, -0.6))
    np.testing.assert_allclose(condition_vector({"condition": "point"}, loc_x=0.1, loc_y=0.2, radius=0.3),
                               point_condition(0.1, 0.2, 0.3))
    np.testing.assert_allclose(condition_vector({"condition": "phase_slice"}, phase=1.0, slice=0.5),
                               acdc_condition(1.0, 0.5))
    np.testing.assert_allclose(condition_vector({"condition": "colour"}, value="orange"), one_hot("colour", "orange"))
    with pytest.raises(ValueError, match="unknown condition"):
        condition_vector({"condition": "mood"})


def test_explorers_sharing_a_model_across_threads():
    model = unet_model()
    images = [rgb_image(seed)[:1] for seed in range(4)]
    zs = [acdc_condition(phase, 0.3) for phase in (0.0, 0.3, 0.6, 1.0)]
    expected = [Explorer(model, image).update(z).probabilities for image, z in zip(images, zs, strict=True)]

    def run(i):
        explorer = Explorer(model, images[i])
        for _ in range(3):
            result = explorer.update(zs[i]).probabilities
        return result

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(4)))
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_an_image_of_another_aspect_ratio_is_padded_not_squashed():
    from inside_core.explorer import prepare_image, prepare_mask

    wide = torch.zeros(3, 40, 80)
    wide[:, 10:30, 30:50] = 1.0  # a square
    x = prepare_image(wide, (64, 64))
    assert x.shape == (3, 64, 64)
    rows, columns = np.nonzero(x[0].numpy() > 0.5)
    assert abs((rows.max() - rows.min()) - (columns.max() - columns.min())) <= 1  # still a square
    assert x[0, :10].max() == 0 and x[0, -10:].max() == 0  # the padding, with the border's value
    mask = np.zeros((40, 80), np.int64)
    mask[10:30, 30:50] = 1
    m = prepare_mask(mask, (64, 64))
    np.testing.assert_array_equal(m > 0, x[0].numpy() > 0.5)
