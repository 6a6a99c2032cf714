"""Networks, assembled from small blocks and found by name (`build_model("unet", ...)`).

Every network here is conditioned on `z` by zero or more conditioning layers and splits at the
first one: `encode(x)` is the image-only part, `decode(features, z)` the rest, and
`model(x, z) == model.decode(model.encode(x), z)`. The dashboard keeps `encode(x)` for the current
image and answers each slider move with `decode` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inside_core.layers import CONDITIONING_LAYERS, INSIDE, GuidingBlock

__all__ = ["ModelOutput", "EncoderDecoder", "UNet", "UpsampleConv", "build_model", "register_model", "list_models",
           "upsample_conv2d"]

CONDITIONING_CHOICES = ("none", *CONDITIONING_LAYERS)

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: make a network constructor available to `build_model(name, **config)`."""

    def decorator(constructor):
        _REGISTRY[name] = constructor
        return constructor

    return decorator


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def build_model(name: str, **config: Any) -> nn.Module:
    """Build a registered network; `model.config` keeps the name and config to rebuild it."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    model = _REGISTRY[name](**config)
    model.config = {"name": name, **config}
    return model


@dataclass
class ModelOutput:
    """`logits` (B, K, H, W) and the parameters of each conditioning layer, in order."""

    logits: Tensor
    conditioning: list = field(default_factory=list)


@dataclass
class Features:
    """What `encode` hands to `decode`: the tensor at the split point, and any skip tensors."""

    tensor: Tensor
    skips: list[Tensor] = field(default_factory=list)

    def expand(self, batch: int) -> Features:
        """The same features repeated `batch` times along the batch axis (views: decode many z at once)."""
        return Features(self.tensor.expand(batch, *self.tensor.shape[1:]), [s.expand(batch, *s.shape[1:])
                                                                           for s in self.skips])


def make_conditioning(kind: str, channels: int, cond_dim: int, height: int, width: int,
                      **options: Any) -> nn.Module | None:
    """The conditioning layer `kind` (layers.CONDITIONING_LAYERS) for features of (channels, height, width),
    or None for "none". Options go to the layer; one it does not take is an error, not silently dropped."""
    if kind == "none":
        return None
    if kind not in CONDITIONING_LAYERS:
        raise ValueError(f"unknown conditioning {kind!r}; choose one of {', '.join(CONDITIONING_CHOICES)}")
    if kind == "guideme":  # its head size depends on the feature map's size
        options = {"height": height, "width": width, **options}
    try:
        return CONDITIONING_LAYERS[kind](channels, cond_dim, **options)
    except TypeError as error:
        raise ValueError(f"{kind} conditioning does not take these options: {', '.join(options)} ({error})") from None


class ConditionedNetwork(nn.Module):
    """Input checks shared by the networks below."""

    in_channels: int
    cond_dim: int
    image_size: tuple[int, int]
    divisor: int

    def check_image(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected an image batch of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[2:]
        if h % self.divisor or w % self.divisor:
            raise ValueError(f"image height and width must be multiples of {self.divisor}, got {h}x{w}")
        if self.fixed_size and (h, w) != tuple(self.image_size):
            raise ValueError(
                f"this model was built for {self.image_size[0]}x{self.image_size[1]} images "
                f"(Guide Me's head is tied to the feature-map size), got {h}x{w}"
            )

    def check_z(self, z: Tensor | None, batch: int) -> None:
        if not self.conditioned:
            return
        if z is None or z.dim() != 2 or z.shape != (batch, self.cond_dim):
            got = None if z is None else tuple(z.shape)
            raise ValueError(f"expected z of shape ({batch}, {self.cond_dim}), got {got}")

    @property
    def conditioned(self) -> bool:
        return any(True for _ in self.conditioning_layers())

    @property
    def fixed_size(self) -> bool:
        return any(isinstance(layer, GuidingBlock) for layer in self.conditioning_layers())

    def conditioning_layers(self):
        return (m for m in self.modules() if isinstance(m, tuple(CONDITIONING_LAYERS.values())))

    def sigma_penalty(self, conditioning: list) -> Tensor:
        """Sum of the INSIDE layers' sigma penalties for one forward pass's parameters."""
        terms = [layer.sigma_penalty(params)
                 for layer, params in zip(self.conditioning_layers(), conditioning, strict=True)
                 if isinstance(layer, INSIDE)]
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def forward(self, x: Tensor, z: Tensor | None = None) -> ModelOutput:
        return self.decode(self.encode(x), z)


def conv_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                         nn.ReLU(inplace=True))


# M (4 x 3): row k of the 4x4 transposed-convolution kernel in terms of the 3x3 kernel's rows (w0, w1, w2),
# i.e. (w2, w1 + w2, w0 + w1, w0); see `upsample_conv2d`
_UPSAMPLE_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


class _ChannelsLast(torch.autograd.Function):
    """A copy of x in channels_last memory format whose gradient comes back contiguous (NCHW), as x was."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.contiguous()


def upsample_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """`conv2d(upsample_nearest_x2(x), weight, bias, padding=1)` without building the upsampled tensor.

    x (B, I, H, W), weight (O, I, 3, 3), bias (O,) or None -> (B, O, 2H, 2W). Output row 2i + a sees only two
    rows of x (zero outside): for a = 0, row i - 1 with w[0] and row i with w[1] + w[2]; for a = 1, row i with
    w[0] + w[1] and row i + 1 with w[2]; the same for columns. So each output phase (a, b) is a 2x2 convolution
    of x, and a stride-2 transposed convolution with the 4x4 kernel K = M w M^T (M = `_UPSAMPLE_TAPS`) computes
    all four phases and writes them interleaved, in one call (per dimension):

        y[2i + a] = bias + sum_{p=0,1} K[3 - a - 2p] x[i - 1 + a + p],   K = (w2, w1 + w2, w0 + w1, w0)

    That is 16 instead of 36 multiply-adds per low-resolution pixel and channel pair (4/9), no 4x larger copy of
    x, and no interleaving pass (as one conv2d with 2x2 kernels and 4*O outputs would need). It runs in
    channels_last memory format, oneDNN's fast layout on CPU: the result is channels_last (same values;
    `.contiguous()` gives NCHW), the gradient for an NCHW x comes back NCHW. Exact up to float rounding.
    """
    if weight.dim() != 4 or weight.shape[2:] != (3, 3):
        raise ValueError(f"expected a 3x3 conv weight (O, I, 3, 3), got {tuple(weight.shape)}")
    out_channels, in_channels = weight.shape[:2]
    taps = torch.tensor(_UPSAMPLE_TAPS, dtype=weight.dtype, device=weight.device)
    # K[o, i] = M w[o, i] M^T as one matmul: kron(M, M)[4k + l, 3r + s] = M[k, r] M[l, s]
    kernel = weight.reshape(out_channels * in_channels, 9) @ torch.kron(taps, taps).T
    kernel = kernel.view(out_channels, in_channels, 4, 4).transpose(0, 1).contiguous()  # conv_transpose2d's layout
    if not x.is_contiguous(memory_format=torch.channels_last):
        x = _ChannelsLast.apply(x)
    return F.conv_transpose2d(x, kernel, bias, stride=2, padding=1)


class UpsampleConv(nn.Module):
    """Nearest-neighbour upsampling x2, then a 3x3 conv (padding 1): `upsample_conv2d` with `self.conv`'s weights.

    The same function and parameters as `nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(...))`, for 4/9
    of the multiply-adds and without the upsampled copy of the input. The output is channels_last.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return upsample_conv2d(x, self.conv.weight, self.conv.bias)


@register_model("encoder_decoder")
class EncoderDecoder(ConditionedNetwork):
    """The reference's shallow CLEVR-Seg network, one conditioning layer in the bottleneck.

    encoder: conv 16 - maxpool - conv 32 - maxpool - conv 64        (3x3 convs, ReLU)
    [conditioning on the H/4 x W/4 x 64 bottleneck]
    decoder: conv 64 - up x2 + conv 32 - up x2 + conv 16 - conv 1x1 -> logits

    "up x2 + conv" is nearest-neighbour upsampling and a 3x3 conv computed together (`UpsampleConv`).
    No skip connections: with them the decoder could bypass the conditioning.
    """

    def __init__(self, conditioning: str = "none", cond_dim: int = 4, in_channels: int = 3,
                 num_classes: int = 1, image_size: tuple[int, int] | int = (200, 200),
                 widths: tuple[int, int, int] = (16, 32, 64), **conditioning_options: Any):
        super().__init__()
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.in_channels, self.cond_dim, self.image_size, self.divisor = in_channels, cond_dim, tuple(image_size), 4
        w1, w2, w3 = widths
        self.encoder = nn.Sequential(
            conv_relu(in_channels, w1), nn.MaxPool2d(2), conv_relu(w1, w2), nn.MaxPool2d(2), conv_relu(w2, w3)
        )
        self.conditioning = make_conditioning(
            conditioning, w3, cond_dim, image_size[0] // 4, image_size[1] // 4, **conditioning_options
        )
        self.decoder = nn.Sequential(
            conv_relu(w3, w3), UpsampleConv(w3, w2), nn.ReLU(inplace=True), UpsampleConv(w2, w1),
            nn.ReLU(inplace=True), nn.Conv2d(w1, num_classes, 1),
        )

    def encode(self, x: Tensor) -> Features:
        self.check_image(x)
        return Features(self.encoder(x))

    def decode(self, features: Features, z: Tensor | None = None) -> ModelOutput:
        x = features.tensor
        self.check_z(z, x.shape[0])
        params = []
        if self.conditioning is not None:
            x, p = self.conditioning(x, z)
            params.append(p)
        # the decoder runs channels_last after its first UpsampleConv; logits are returned NCHW
        return ModelOutput(self.decoder(x).contiguous(), params)


def conv_norm_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class EncoderBlock(nn.Sequential):
    """Two 3x3 conv - batch norm - ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(conv_norm_relu(in_channels, out_channels), conv_norm_relu(out_channels, out_channels))


class DecoderBlock(nn.Module):
    """Upsample x2 (nearest), concatenate the skip, then `convs` 3x3 conv - batch norm - ReLU.

    One conv by default: a light decoder keeps the part re-run on every slider move small. The first conv's
    weight W splits by input channel, so with C = x's channels it is computed without the upsampled copy or
    the concatenation (same parameters, same result):

        conv(cat(up(x), skip), W) = upsample_conv2d(x, W[:, :C]) + conv(skip, W[:, C:])
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, convs: int = 1):
        super().__init__()
        layers = [conv_norm_relu(in_channels + skip_channels, out_channels)]
        layers += [conv_norm_relu(out_channels, out_channels) for _ in range(convs - 1)]
        self.convs = nn.Sequential(*layers)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        conv, norm, relu = self.convs[0]
        c = x.shape[1]
        # added in place into the NCHW skip term, so the block's output stays NCHW
        y = F.conv2d(skip, conv.weight[:, c:], conv.bias, padding=1).add_(upsample_conv2d(x, conv.weight[:, :c]))
        return self.convs[1:](relu(norm(y)))


@register_model("unet")
class UNet(ConditionedNetwork):
    """A 2-D U-Net with conditioning layers at the bottleneck and/or decoder levels.

    `channels=(16, 32, 64, 128)` gives three poolings; the last width is the bottleneck's.
    `conditioning_at` names where conditioning layers go: "bottleneck" and/or "decoder1" ...
    "decoderN" (decoder1 is the first after the bottleneck, the coarsest), each applied to that
    stage's output. The network splits at the first conditioning layer, so everything before it
    (the whole encoder at least) runs once per image.
    """

    def __init__(self, conditioning: str = "none", cond_dim: int = 2, in_channels: int = 1,
                 num_classes: int = 4, image_size: tuple[int, int] | int = (128, 128),
                 channels: tuple[int, ...] = (16, 32, 64, 128), conditioning_at: tuple[str, ...] = ("bottleneck",),
                 decoder_convs: int = 1, **conditioning_options: Any):
        super().__init__()
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        channels = tuple(channels)
        depth = len(channels) - 1
        self.in_channels, self.cond_dim, self.image_size = in_channels, cond_dim, tuple(image_size)
        self.divisor = 2**depth
        stage_names = ["bottleneck"] + [f"decoder{i}" for i in range(1, depth + 1)]
        conditioning_at = tuple(conditioning_at) if conditioning != "none" else ()
        unknown = set(conditioning_at) - set(stage_names)
        if unknown:
            raise ValueError(f"unknown conditioning position(s) {sorted(unknown)}; choose from {stage_names}")
        encoder_inputs = (in_channels,) + channels[:-2]
        self.encoders = nn.ModuleList(
            [EncoderBlock(c_in, c_out) for c_in, c_out in zip(encoder_inputs, channels[:-1], strict=True)]
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = EncoderBlock(channels[-2], channels[-1])
        self.decoders = nn.ModuleList(
            [DecoderBlock(channels[i + 1], channels[i], channels[i], decoder_convs) for i in reversed(range(depth))]
        )
        # stage outputs: bottleneck has channels[-1] at H/2^depth, decoder k has channels[depth-k]
        stage_channels = [channels[-1]] + [channels[depth - k] for k in range(1, depth + 1)]
        stage_scale = [2**depth] + [2 ** (depth - k) for k in range(1, depth + 1)]
        self.stage_names = stage_names
        self.conditionings = nn.ModuleDict({
            name: make_conditioning(conditioning, stage_channels[i], cond_dim, image_size[0] // stage_scale[i],
                                    image_size[1] // stage_scale[i], **conditioning_options)
            for i, name in enumerate(stage_names) if name in conditioning_at
        })
        self.head = nn.Conv2d(channels[0], num_classes, 1)
        # the stage whose output is first conditioned: encode runs everything up to and including it
        self.split_stage = min((stage_names.index(n) for n in conditioning_at), default=len(stage_names) - 1)

    def conditioning_layers(self):
        # in network order, which is stage order
        return (self.conditionings[n] for n in self.stage_names if n in self.conditionings)

    def _run_stage(self, index: int, x: Tensor, skips: list[Tensor]) -> Tensor:
        if index == 0:
            return self.bottleneck(self.pool(x))
        return self.decoders[index - 1](x, skips[-index])

    def encode(self, x: Tensor) -> Features:
        self.check_image(x)
        skips = []
        for block in self.encoders:
            x = block(x if not skips else self.pool(x))
            skips.append(x)
        for index in range(self.split_stage + 1):
            x = self._run_stage(index, x, skips)
        return Features(x, skips)

    def decode(self, features: Features, z: Tensor | None = None) -> ModelOutput:
        x, skips = features.tensor, features.skips
        self.check_z(z, x.shape[0])
        params = []
        for index in range(self.split_stage, len(self.stage_names)):
            if index > self.split_stage:
                x = self._run_stage(index, x, skips)
            name = self.stage_names[index]
            if name in self.conditionings:
                layer = self.conditionings[name]
                x, p = layer(x, z)
                params.append(p)
        return ModelOutput(self.head(x), params)
