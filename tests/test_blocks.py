"""Decoder blocks: `upsample_conv2d` / `UpsampleConv` and the U-Net's `DecoderBlock` equal the plain
upsample-then-convolve formula, in values and gradients, and the shipped checkpoints give the same masks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from inside_core import build_model, load_checkpoint
from inside_core.checkpoints import CheckpointError, list_checkpoints, read_card
from inside_core.data import AcdcDataset, ClevrSegDataset, generate_acdc
from inside_core.data.generate_clevr_seg import generate_clevr_seg
from inside_core.networks import DecoderBlock, UpsampleConv, upsample_conv2d

# the 2-D ones: our UpsampleConv blocks are 2-D (a volume model, cubes3d-unet-inside, is a wrapped MONAI network)
SHIPPED = [p for p in list_checkpoints(Path(__file__).resolve().parents[1] / "checkpoints")
           if len(read_card(p).get("image_size", [])) == 2]


def plain_upsample_conv(x, weight, bias=None):
    return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)


def plain_decoder_block(block: DecoderBlock, x, skip):
    return block.convs(torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip], dim=1))


def grads(fn, *tensors):
    """fn(*tensors) and the gradients of a fixed random projection of it for every tensor given."""
    out = fn(*tensors)
    projection = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    return out, torch.autograd.grad((out * projection).sum(), tensors)


@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (3, 4, 6, 4), (2, 5, 1, 4), (4, 8, 9, 9)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_upsample_conv2d_equals_upsample_then_conv_with_gradients(shape, with_bias):
    torch.manual_seed(0)
    b, c, h, w = shape
    x = torch.randn(b, c, h, w, requires_grad=True)
    weight = torch.randn(6, c, 3, 3, requires_grad=True)
    bias = torch.randn(6, requires_grad=True)
    inputs = (x, weight, bias) if with_bias else (x, weight)
    ours, our_grads = grads(upsample_conv2d, *inputs)
    ref, ref_grads = grads(plain_upsample_conv, *inputs)
    assert ours.shape == (b, 6, 2 * h, 2 * w)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    for got, expected in zip(our_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-5)
    assert our_grads[0].is_contiguous(), "the gradient for an NCHW input comes back NCHW"


def test_upsample_conv2d_exact_in_float64_and_any_input_layout():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 10, dtype=torch.float64)
    weight, bias = torch.randn(3, 5, 3, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    ref = plain_upsample_conv(x, weight, bias)
    torch.testing.assert_close(upsample_conv2d(x, weight, bias), ref, atol=1e-12, rtol=1e-12)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(upsample_conv2d(channels_last, weight, bias), ref, atol=1e-12, rtol=1e-12)
    strided = torch.randn(2, 10, 6, 10, dtype=torch.float64)[:, ::2]  # neither layout
    torch.testing.assert_close(upsample_conv2d(strided, weight, bias), plain_upsample_conv(strided, weight, bias),
                               atol=1e-12, rtol=1e-12)
    with pytest.raises(ValueError, match=r"expected a 3x3 conv weight \(O, I, 3, 3\), got \(3, 5, 5, 5\)"):
        upsample_conv2d(x, torch.randn(3, 5, 5, 5, dtype=torch.float64))


@pytest.mark.parametrize("bias", [True, False])
def test_upsample_conv_module_is_upsample_then_its_conv(bias):
    torch.manual_seed(0)
    block = UpsampleConv(4, 3, bias=bias)
    assert sorted(block.state_dict()) == (["conv.bias", "conv.weight"] if bias else ["conv.weight"])
    x = torch.randn(2, 4, 7, 5)
    reference = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), block.conv)
    torch.testing.assert_close(block(x), reference(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("convs", [1, 2])
def test_decoder_block_equals_upsample_concatenate_convolve(convs):
    torch.manual_seed(0)
    block = DecoderBlock(8, 4, 4, convs)
    # the parameters (and checkpoint keys) of the plain formula: no module for the parameter-free upsampling
    assert all(key.startswith("convs.") for key in block.state_dict())
    x, skip = torch.randn(3, 8, 5, 6, requires_grad=True), torch.randn(3, 4, 10, 12, requires_grad=True)
    params = [p for p in block.parameters()]
    for mode in ("train", "eval"):
        getattr(block, mode)()
        ours, our_grads = grads(lambda a, s, *_: block(a, s), x, skip, *params)
        ref, ref_grads = grads(lambda a, s, *_: plain_decoder_block(block, a, s), x, skip, *params)
        assert ours.is_contiguous()
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
        for got, expected in zip(our_grads, ref_grads, strict=True):
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_unet_with_conditioning_before_and_after_decoder_blocks_trains():
    torch.manual_seed(0)
    model = build_model("unet", conditioning="inside", channels=(4, 8, 16), image_size=16,
                        conditioning_at=("bottleneck", "decoder1", "decoder2"))
    out = model(torch.rand(2, 1, 16, 16), torch.rand(2, 2))
    assert out.logits.is_contiguous()
    (out.logits.square().mean() + model.sigma_penalty(out.conditioning)).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_encoder_decoder_logits_are_nchw_for_several_classes():
    model = build_model("encoder_decoder", conditioning="film", num_classes=3, image_size=16)
    logits = model(torch.rand(2, 3, 16, 16), torch.eye(4)[:2]).logits
    assert logits.shape == (2, 3, 16, 16) and logits.is_contiguous()


# ----------------------------------------------------------------------------- shipped checkpoints


def plain_forward(model, x, z, monkeypatch):
    """model(x, z) with every upsample-and-convolve done the plain way (nearest x2, then the 3x3 conv)."""
    with monkeypatch.context() as patch:
        patch.setattr(UpsampleConv, "forward", lambda self, t: plain_upsample_conv(t, self.conv.weight, self.conv.bias))
        patch.setattr(DecoderBlock, "forward", plain_decoder_block)
        return model(x, z).logits


def masks(logits):
    return logits > 0 if logits.shape[1] == 1 else logits.argmax(1)


@pytest.fixture(scope="module")
def test_images(tmp_path_factory):
    """A few images of each kind from the generators of the shipped test data (seed 1000), at the shipped
    models' sizes: CLEVR-Seg 96 x 96, ACDC 128 x 128."""
    root = tmp_path_factory.mktemp("images")
    clevr = ClevrSegDataset(generate_clevr_seg(root / "clevr", count=4, seed=1000, size=96, progress=False),
                            split="all")
    acdc = AcdcDataset(generate_acdc(root / "acdc", patients=1, seed=1000, progress=False), split="all",
                       image_size=128)
    return {"clevr-seg": torch.stack([clevr[i]["image"] for i in range(4)]),
            "acdc": torch.stack([acdc[i]["image"] for i in range(0, len(acdc), max(1, len(acdc) // 4))][:4])}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_checkpoints_give_the_masks_of_the_plain_formula(path, test_images, monkeypatch):
    model = load_checkpoint(path)
    # images of the model's kind (colour scenes or grey MRI), at the size it was trained for
    x = test_images["clevr-seg" if model.in_channels == 3 else "acdc"]
    x = torch.nn.functional.interpolate(x, size=tuple(model.card["image_size"]), mode="bilinear",
                                        align_corners=False)
    assert x.shape[1:] == (model.in_channels, *model.card["image_size"])
    z = torch.rand(len(x), model.cond_dim, generator=torch.Generator().manual_seed(0))
    if model.cond_dim == 4:  # quadrant one-hot
        z = torch.eye(4)[torch.arange(len(x)) % 4]
    with torch.no_grad():
        ours = model(x, z).logits
        ref = plain_forward(model, x, z, monkeypatch)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-5)
    assert torch.equal(masks(ours), masks(ref))


def test_checkpoint_with_the_old_decoder_keys_is_refused_clearly(tmp_path):
    """Encoder-decoder weights saved before UpsampleConv (decoder.2.0 / decoder.4.0) fail with a CheckpointError
    naming the file and the keys the network needs."""
    source = next(p for p in SHIPPED if p.stem == "clevr-seg-quadrant-inside")
    renames = {"decoder.1.conv.": "decoder.2.0.", "decoder.3.conv.": "decoder.4.0."}
    state = {}
    for key, tensor in load_file(str(source)).items():
        for new, old in renames.items():
            key = key.replace(new, old)
        state[key] = tensor
    weights = tmp_path / "old-layout.safetensors"
    save_file(state, str(weights))
    card = json.loads(source.with_suffix(".json").read_text())
    card["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    weights.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match=r"old-layout\.safetensors: weights do not fit the architecture in "
                                              r"the card \(missing \['decoder\.1\.conv\.bias'"):
        load_checkpoint(weights)
