"""Networks: the registry, the encode/decode split, conditioning outputs and input checks."""

import pytest
import torch

from inside_core import FiLMParams, GuidingParams, InsideParams, build_model, list_models

PARAM_TYPES = {"film": FiLMParams, "guideme": GuidingParams, "inside": InsideParams}


def test_registry_lists_and_rejects_names():
    assert {"encoder_decoder", "unet"} <= set(list_models())
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet")


@pytest.mark.parametrize("conditioning", ["none", "film", "guideme", "inside"])
def test_encoder_decoder_shapes_and_split(conditioning):
    torch.manual_seed(0)
    model = build_model("encoder_decoder", conditioning=conditioning, cond_dim=4, image_size=32).eval()
    x, z = torch.rand(2, 3, 32, 32), torch.eye(4)[:2]
    out = model(x, z)
    assert out.logits.shape == (2, 1, 32, 32)
    if conditioning == "none":
        assert out.conditioning == []
    else:
        assert len(out.conditioning) == 1 and isinstance(out.conditioning[0], PARAM_TYPES[conditioning])
    split = model.decode(model.encode(x), z)
    assert torch.equal(split.logits, out.logits)
    assert model.config == {"name": "encoder_decoder", "conditioning": conditioning, "cond_dim": 4, "image_size": 32}


def test_encoder_decoder_conditioning_changes_output_and_bottleneck_is_quarter_size():
    torch.manual_seed(0)
    model = build_model("encoder_decoder", conditioning="inside", cond_dim=4, image_size=40)
    x = torch.rand(1, 3, 40, 40)
    features = model.encode(x)
    assert features.tensor.shape == (1, 64, 10, 10)
    a = model.decode(features, torch.eye(4)[:1]).logits
    b = model.decode(features, torch.eye(4)[2:3]).logits
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("conditioning_at", [("bottleneck",), ("decoder2",), ("bottleneck", "decoder1", "decoder3")])
def test_unet_split_at_first_conditioning_layer(conditioning_at):
    torch.manual_seed(0)
    model = build_model("unet", conditioning="inside", cond_dim=2, image_size=32, channels=(8, 16, 32, 64),
                        conditioning_at=conditioning_at).eval()
    x, z = torch.rand(2, 1, 32, 32), torch.rand(2, 2)
    out = model(x, z)
    assert out.logits.shape == (2, 4, 32, 32)
    assert len(out.conditioning) == len(conditioning_at)
    assert torch.allclose(model.decode(model.encode(x), z).logits, out.logits)
    # the parameters come in network order: coarse to fine
    channels_in_order = [p.mu_x.shape[1] for p in out.conditioning]
    assert channels_in_order == sorted(channels_in_order, reverse=True)
    # the first conditioned stage is where encode stops
    expected_channels = {"bottleneck": 64, "decoder1": 32, "decoder2": 16, "decoder3": 8}[conditioning_at[0]]
    assert model.encode(x).tensor.shape[1] == expected_channels


def test_unet_guideme_and_film_and_baseline():
    for conditioning in ("none", "film", "guideme"):
        model = build_model("unet", conditioning=conditioning, image_size=(32, 48), channels=(8, 16, 32))
        out = model(torch.rand(1, 1, 32, 48), torch.rand(1, 2))
        assert out.logits.shape == (1, 4, 32, 48)
    with pytest.raises(ValueError, match="unknown conditioning position"):
        build_model("unet", conditioning="inside", conditioning_at=("middle",))
    with pytest.raises(ValueError, match="unknown conditioning 'spatial'"):
        build_model("encoder_decoder", conditioning="spatial")


def test_sigma_penalty_sums_inside_layers_only():
    model = build_model("unet", conditioning="inside", channels=(8, 16, 32), image_size=16,
                        conditioning_at=("bottleneck", "decoder1"))
    out = model(torch.rand(1, 1, 16, 16), torch.rand(1, 2))
    penalty = model.sigma_penalty(out.conditioning)
    assert penalty.item() > 0 and penalty.requires_grad
    baseline = build_model("encoder_decoder", conditioning="film", image_size=16)
    assert baseline.sigma_penalty(baseline(torch.rand(1, 3, 16, 16), torch.eye(4)[:1]).conditioning).item() == 0


def test_wrong_inputs_raise_value_errors_saying_what_was_expected():
    model = build_model("encoder_decoder", conditioning="inside", cond_dim=4, image_size=32)
    with pytest.raises(ValueError, match=r"expected an image batch of shape \(B, 3, H, W\), got \(1, 1, 32, 32\)"):
        model(torch.rand(1, 1, 32, 32), torch.eye(4)[:1])
    with pytest.raises(ValueError, match=r"expected z of shape \(1, 4\), got \(1, 3\)"):
        model(torch.rand(1, 3, 32, 32), torch.rand(1, 3))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.rand(1, 3, 30, 30), torch.eye(4)[:1])
    with pytest.raises(ValueError, match="got None"):
        model(torch.rand(1, 3, 32, 32))
    guide = build_model("encoder_decoder", conditioning="guideme", cond_dim=4, image_size=32)
    with pytest.raises(ValueError, match="built for 32x32 images"):
        guide(torch.rand(1, 3, 64, 64), torch.eye(4)[:1])
    # an unconditioned model ignores z
    baseline = build_model("encoder_decoder", conditioning="none", image_size=32)
    assert baseline(torch.rand(1, 3, 32, 32)).logits.shape == (1, 1, 32, 32)


def test_networks_train_one_step():
    torch.manual_seed(0)
    model = build_model("encoder_decoder", conditioning="inside", cond_dim=4, image_size=16)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, z, target = torch.rand(4, 3, 16, 16), torch.eye(4), (torch.rand(4, 1, 16, 16) > 0.5).float()
    losses = []
    for _ in range(5):
        optimiser.zero_grad()
        out = model(x, z)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, target)
        loss = loss + model.sigma_penalty(out.conditioning)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
