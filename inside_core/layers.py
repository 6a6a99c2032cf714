"""Conditioning layers: FiLM, Guide Me and INSIDE.

Each layer maps a feature map `x` (B, C, H, W) and a conditioning vector `z` (B, D) to modulated
features, through a small *hypernetwork* that turns `z` into per-channel parameters. Every layer

- returns `(y, params)` from `layer(x, z)`, so callers can look at what the hypernetwork said;
- offers `layer.modulate(x, params)`, the same modulation from parameters given by hand (a
  dataclass the caller can build or `dataclasses.replace`), so tests, notebooks and the dashboard
  can drive it without a hypernetwork.

Coordinates (INSIDE): the normalised ones of `inside_core.geometry` (pixel k of n has centre
(2k + 1)/n - 1; -1 and +1 are the image's outer edges). Means and widths live in these units, whatever
the feature map's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from inside_core.geometry import gaussian, pixel_centres

__all__ = [
    "pixel_centres",
    "gaussian_attention",
    "FiLMParams",
    "GuidingParams",
    "InsideParams",
    "Hypernetwork",
    "FiLM",
    "GuidingBlock",
    "INSIDE",
    "CONDITIONING_LAYERS",
    "outer_product",
]


def gaussian_attention(mu: Tensor, sigma: Tensor, size: int) -> Tensor:
    """Un-normalised 1-D Gaussians evaluated at pixel centres.

        g_k = exp(-1/2 * ((t_k - mu) / sigma)^2),   t_k = (2k + 1)/size - 1

    `mu`, `sigma`: (B, C) in normalised units (sigma > 0). Returns (B, C, size), peak value 1.
    """
    if mu.shape != sigma.shape:
        raise ValueError(f"mu and sigma must have the same shape, got {tuple(mu.shape)} and {tuple(sigma.shape)}")
    t = pixel_centres(size, device=mu.device, dtype=mu.dtype)
    return gaussian(t, mu.unsqueeze(-1), sigma.unsqueeze(-1))


# --------------------------------------------------------------------------------------------
# Parameter dataclasses


class _Params:
    """Shared helpers for the parameter dataclasses: moving, detaching and slicing all fields."""

    def apply(self, fn):
        return type(self)(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def detach(self):
        return self.apply(lambda t: t.detach())

    def to(self, *args, **kwargs):
        return self.apply(lambda t: t.to(*args, **kwargs))

    def __getitem__(self, index):
        """Select samples along the batch axis, e.g. `params[0:1]`."""
        return self.apply(lambda t: t[index])

    def as_dict(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class FiLMParams(_Params):
    """FiLM's parameters: gamma, beta of shape (B, C)."""

    gamma: Tensor
    beta: Tensor


@dataclass
class GuidingParams(_Params):
    """Guide Me's parameters: gamma_scale, gamma_shift (B, C); alpha (B, H); beta (B, W)."""

    gamma_scale: Tensor
    gamma_shift: Tensor
    alpha: Tensor
    beta: Tensor

    def spatial_map(self) -> Tensor:
        """The rank-one additive map alpha_h + beta_w shared by all channels, (B, H, W)."""
        return self.alpha[:, :, None] + self.beta[:, None, :]


@dataclass
class InsideParams(_Params):
    """INSIDE's parameters, each (B, C), in normalised coordinates (see module docstring)."""

    mu_x: Tensor
    mu_y: Tensor
    sigma_x: Tensor
    sigma_y: Tensor
    gamma: Tensor
    beta: Tensor

    def attention_factors(self, height: int, width: int) -> tuple[Tensor, Tensor]:
        """The two 1-D Gaussians: along rows (B, C, height) and along columns (B, C, width)."""
        return (
            gaussian_attention(self.mu_y, self.sigma_y, height),
            gaussian_attention(self.mu_x, self.sigma_x, width),
        )

    def attention(self, height: int, width: int) -> Tensor:
        """a_c(i, j) = g(y_i; mu_y, sigma_y) * g(x_j; mu_x, sigma_x), shape (B, C, height, width)."""
        along_rows, along_cols = self.attention_factors(height, width)
        return along_rows.unsqueeze(-1) * along_cols.unsqueeze(-2)


# --------------------------------------------------------------------------------------------
# Hypernetwork


class Hypernetwork(nn.Module):
    """z -> per-channel parameters: Dense(hidden) - tanh - Dense(hidden) - tanh - Linear(out).

    As in the reference, hidden = C/2 (at least 8 here, so tiny layers still have some capacity).
    """

    def __init__(self, cond_dim: int, out_features: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(cond_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
        )
        self.head = nn.Linear(hidden, out_features)

    def forward(self, z: Tensor) -> Tensor:
        return self.head(self.body(z))


def _check_inputs(layer: nn.Module, x: Tensor, z: Tensor | None = None) -> None:
    name = type(layer).__name__
    if x.dim() != 4 or x.shape[1] != layer.channels:
        raise ValueError(f"{name} expects features of shape (B, {layer.channels}, H, W), got {tuple(x.shape)}")
    if z is not None and (z.dim() != 2 or z.shape[1] != layer.cond_dim or z.shape[0] != x.shape[0]):
        raise ValueError(
            f"{name} expects z of shape ({x.shape[0]}, {layer.cond_dim}), got {tuple(z.shape)}"
        )


def _per_channel(t: Tensor) -> Tensor:
    return t[:, :, None, None]


# --------------------------------------------------------------------------------------------
# The spatially varying modulations, computed block by block (shared with inside_core.layers_nd)

BLOCK_ELEMENTS = 1 << 19  # elements per block and thread (2 MiB of float32): measured best, README "Speed"


def _broadcast(t: Tensor, spatial_dims: int) -> Tensor:
    """(B, C) -> (B, C, 1, ..., 1) with `spatial_dims` trailing ones."""
    return t.reshape(*t.shape, *([1] * spatial_dims))


def outer_product(factors: list[Tensor] | tuple[Tensor, ...], out: Tensor | None = None) -> Tensor:
    """prod_k f_k[..., s_k] over factors (B, C, S_k): the (B, C, S_1, ..., S_N) tensor they describe
    (written into `out` when given; with one factor, that factor)."""
    result = factors[0]
    for k, factor in enumerate(factors[1:], start=2):
        factor = factor.reshape(*factor.shape[:2], *([1] * (result.dim() - 2)), factor.shape[-1])
        result = torch.mul(result.unsqueeze(-1), factor, **({"out": out} if k == len(factors) and out is not None
                                                             else {}))
    return result


def _blocks(shape: torch.Size, device: torch.device | None = None) -> tuple[list[tuple[slice, slice]], int]:
    """(batch, channel) slices cutting a contiguous (B, C, *S) tensor into contiguous blocks of about
    BLOCK_ELEMENTS per thread (whole samples while they are smaller, else channel ranges of one sample),
    and the largest block's size.

    Why blocks: a spatially varying layer's full-size temporaries (the attention or scale map, g * x) then
    exist one block at a time, in cache, and the only full-size tensors made are y and the input gradient.
    Each full-size pass saved is one pass over memory and, for a fresh tensor, its page faults (on the
    project's VM a new 20 MB tensor cost ~14 ms in page faults, more than the arithmetic). Blocks much
    smaller than this lose to the per-op overhead (each op wakes torch's threads). On a GPU (`device` not
    the CPU) one block: there each block would be a kernel launch more, and nothing was measured."""
    b, c = shape[0], shape[1]
    plane = math.prod(shape[2:])
    cpu = device is None or device.type == "cpu"
    limit = BLOCK_ELEMENTS * torch.get_num_threads() if cpu else b * c * plane
    if c * plane <= limit:
        k = max(1, limit // (c * plane))
        return [(slice(i, i + k), slice(None)) for i in range(0, b, k)], min(k, b) * c * plane
    k = max(1, limit // plane)
    return [(slice(i, i + 1), slice(j, j + k)) for i in range(b) for j in range(0, c, k)], min(k, c) * plane


def _in(scratch: Tensor, like: Tensor) -> Tensor:
    """The first elements of the scratch buffer, viewed with `like`'s shape."""
    return scratch[: like.numel()].view(like.shape)


def _axis_sums(g: Tensor, factors: list[Tensor]) -> list[Tensor]:
    """For g (M, S_1, ..., S_N) and factors f_k (M, S_k): sums[k][m, i] = sum over all axes but k of
    g[m, ...] * prod_{j != k} f_j. Two batched products whatever N: one contracts the last axis (the rest
    recurses on that smaller tensor), one contracts all axes but the last against their outer product.
    Both are (1, n) @ (n, m) products, the first against g's transposed view: BLAS's vector-times-matrix
    was ~4x faster here than the matrix-times-vector (M, P, S_N) @ (M, S_N, 1)."""
    if len(factors) == 1:
        return [g]
    m, last = g.shape[0], g.shape[-1]
    flat = g.reshape(m, -1, last)
    reduced = torch.bmm(factors[-1].reshape(m, 1, last), flat.transpose(1, 2)).view(g.shape[:-1])
    others = outer_product([f.unsqueeze(0) for f in factors[:-1]])[0].reshape(m, 1, -1)
    return [*_axis_sums(reduced, factors[:-1]), torch.bmm(others, flat).view(m, last)]


class _SeparableModulation(torch.autograd.Function):
    """y = scale * (prod_k f_k) * x + shift per channel; x (B, C, S_1, ..., S_N) contiguous, factors
    f_k (B, C, S_k), scale and shift (B, C). INSIDE's modulation in any number of spatial axes.

    Only x and the small factors are kept for backward (no full-size tensor besides x). Forward and
    backward run block by block (`_blocks`): the weight scale * prod_k f_k is rebuilt per block, and the
    backward reads g and x once and writes the input gradient once, reducing g * x against the factors
    with two batched products per block. The weight and y are computed in the order of the plain
    formula, so outputs are bit-identical to it.
    """

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor, shift: Tensor, *factors: Tensor):
        blocks, largest = _blocks(x.shape, x.device)
        scratch, y = x.new_empty(largest), torch.empty_like(x)
        first, shift = factors[0] * scale.unsqueeze(-1), _broadcast(shift, len(factors))
        for bs, cs in blocks:
            xb = x[bs, cs]
            weight = outer_product([first[bs, cs], *(f[bs, cs] for f in factors[1:])], out=_in(scratch, xb))
            torch.addcmul(shift[bs, cs], xb, weight, out=y[bs, cs])
        ctx.save_for_backward(x, scale, *factors)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor):
        x, scale, *factors = ctx.saved_tensors
        need_x, need_shift = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        need_factors = ctx.needs_input_grad[1] or any(ctx.needs_input_grad[3:])
        grad_y = grad_y.contiguous()  # the gradient may arrive channels_last
        blocks, largest = _blocks(x.shape, x.device)
        scratch, first = x.new_empty(largest), factors[0] * scale.unsqueeze(-1)
        grad_x = torch.empty_like(x) if need_x else None
        grad_shift = x.new_empty(x.shape[:2]) if need_shift else None
        sums = [x.new_empty(*x.shape[:2], n) for n in x.shape[2:]]
        for bs, cs in blocks:
            gb = grad_y[bs, cs]
            if need_x:
                weight = outer_product([first[bs, cs], *(f[bs, cs] for f in factors[1:])], out=_in(scratch, gb))
                torch.mul(gb, weight, out=grad_x[bs, cs])
            if need_shift:
                grad_shift[bs, cs] = gb.flatten(2).sum(-1)
            if need_factors:
                gx = torch.mul(gb, x[bs, cs], out=_in(scratch, gb))
                m = gx.shape[0] * gx.shape[1]
                block_sums = _axis_sums(gx.view(m, *gx.shape[2:]), [f[bs, cs].reshape(m, -1) for f in factors])
                for total, part in zip(sums, block_sums, strict=True):
                    total[bs, cs] = part.view(*gx.shape[:2], -1)
        grad_scale, grad_factors = None, [None] * len(factors)
        if need_factors:
            grad_factors = [s * scale.unsqueeze(-1) for s in sums]
            grad_scale = (sums[0] * factors[0]).sum(-1)
        return grad_x, grad_scale, grad_shift, *grad_factors


class _GuidingModulation(torch.autograd.Function):
    """y = (spatial_s + gamma^s_c) * x + gamma^b_c; x (B, C, S_1, ..., S_N) contiguous, spatial
    (B, S_1, ..., S_N) shared by the channels (Guide Me's 1 + sum_k alpha^k), gamma^* (B, C).

    Like `_SeparableModulation`: only x and the small tensors kept for backward, the full-size scale
    rebuilt per block, one read of g and x and one write of the input gradient in the backward; g * x is
    reduced per block over the pixels (gamma^s) and over the channels (a batched product with ones: ~1.8x
    faster than .sum(1) here) for the spatial map. Outputs bit-identical to the plain formula.
    """

    @staticmethod
    def forward(ctx, x: Tensor, spatial: Tensor, gamma_scale: Tensor, gamma_shift: Tensor):
        n = x.dim() - 2
        blocks, largest = _blocks(x.shape, x.device)
        scratch, y = x.new_empty(largest), torch.empty_like(x)
        spatial_, gamma_scale_, shift = spatial.unsqueeze(1), _broadcast(gamma_scale, n), _broadcast(gamma_shift, n)
        for bs, cs in blocks:
            xb = x[bs, cs]
            scale = torch.add(spatial_[bs], gamma_scale_[bs, cs], out=_in(scratch, xb))
            torch.addcmul(shift[bs, cs], xb, scale, out=y[bs, cs])
        ctx.save_for_backward(x, spatial, gamma_scale)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor):
        x, spatial, gamma_scale = ctx.saved_tensors
        need_x, need_spatial, need_gamma, need_shift = ctx.needs_input_grad
        grad_y = grad_y.contiguous()  # the gradient may arrive channels_last
        blocks, largest = _blocks(x.shape, x.device)
        scratch = x.new_empty(largest)
        spatial_, gamma_scale_ = spatial.unsqueeze(1), _broadcast(gamma_scale, x.dim() - 2)
        grad_x = torch.empty_like(x) if need_x else None
        grad_shift = x.new_empty(x.shape[:2]) if need_shift else None
        grad_gamma = x.new_empty(x.shape[:2]) if need_gamma else None
        grad_spatial = torch.zeros_like(spatial) if need_spatial else None
        for bs, cs in blocks:
            gb = grad_y[bs, cs]
            if need_x:
                scale = torch.add(spatial_[bs], gamma_scale_[bs, cs], out=_in(scratch, gb))
                torch.mul(gb, scale, out=grad_x[bs, cs])
            if need_shift:
                grad_shift[bs, cs] = gb.flatten(2).sum(-1)
            if need_gamma or need_spatial:
                gx = torch.mul(gb, x[bs, cs], out=_in(scratch, gb)).flatten(2)
                if need_gamma:
                    grad_gamma[bs, cs] = gx.sum(-1)
                if need_spatial:
                    ones = gx.new_ones(gx.shape[0], 1, gx.shape[1])
                    grad_spatial[bs] += torch.bmm(ones, gx).view(grad_spatial[bs].shape)
        return grad_x, grad_spatial, grad_gamma, grad_shift


# --------------------------------------------------------------------------------------------
# FiLM


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al. 2018), in residual form.

        y_c = (1 + gamma_c) * x_c + beta_c,    (gamma, beta) = hypernetwork(z), each in R^C

    The same scale and shift at every pixel: FiLM can say *what* to keep, never *where*.
    """

    kind = "film"

    def __init__(self, channels: int, cond_dim: int, hidden: int | None = None):
        super().__init__()
        self.channels, self.cond_dim = channels, cond_dim
        self.hypernetwork = Hypernetwork(cond_dim, 2 * channels, hidden or max(channels // 2, 8))

    def params(self, z: Tensor) -> FiLMParams:
        gamma, beta = self.hypernetwork(z).chunk(2, dim=1)
        return FiLMParams(gamma=gamma, beta=beta)

    def modulate(self, x: Tensor, params: FiLMParams) -> Tensor:
        _check_inputs(self, x)
        # addcmul: one fused pass over x
        return torch.addcmul(_per_channel(params.beta), x, _per_channel(1 + params.gamma))

    def forward(self, x: Tensor, z: Tensor) -> tuple[Tensor, FiLMParams]:
        _check_inputs(self, x, z)
        params = self.params(z)
        return self.modulate(x, params), params


# --------------------------------------------------------------------------------------------
# Guide Me


class GuidingBlock(nn.Module):
    """Guide Me's guiding block (Rupprecht et al. 2018).

        y_{c,h,w} = (1 + alpha_h + beta_w + gamma^s_c) * x_{c,h,w} + gamma^b_c

    alpha in R^H and beta in R^W form one additive spatial map shared by every channel (rank one);
    gamma^s, gamma^b in R^C scale and shift each channel. The head has 2C + H + W outputs, so the
    layer is tied to one feature-map size.
    """

    kind = "guideme"

    def __init__(self, channels: int, cond_dim: int, height: int, width: int, hidden: int | None = None):
        super().__init__()
        self.channels, self.cond_dim, self.height, self.width = channels, cond_dim, height, width
        self.hypernetwork = Hypernetwork(
            cond_dim, 2 * channels + height + width, hidden or max(channels // 2, 8)
        )

    def params(self, z: Tensor) -> GuidingParams:
        c, h = self.channels, self.height
        out = self.hypernetwork(z)
        return GuidingParams(
            gamma_scale=out[:, :c], gamma_shift=out[:, c : 2 * c],
            alpha=out[:, 2 * c : 2 * c + h], beta=out[:, 2 * c + h :],
        )

    def modulate(self, x: Tensor, params: GuidingParams) -> Tensor:
        _check_inputs(self, x)
        if params.alpha.shape[-1] != x.shape[2] or params.beta.shape[-1] != x.shape[3]:
            raise ValueError(
                f"GuidingBlock params are for {params.alpha.shape[-1]}x{params.beta.shape[-1]} features, "
                f"got {x.shape[2]}x{x.shape[3]}"
            )
        spatial = 1 + params.spatial_map()
        return _GuidingModulation.apply(x.contiguous(), spatial, params.gamma_scale, params.gamma_shift)

    def forward(self, x: Tensor, z: Tensor) -> tuple[Tensor, GuidingParams]:
        _check_inputs(self, x, z)
        if x.shape[2:] != (self.height, self.width):
            raise ValueError(
                f"GuidingBlock was built for {self.height}x{self.width} features, got "
                f"{x.shape[2]}x{x.shape[3]} (its head size depends on the feature-map size)"
            )
        params = self.params(z)
        return self.modulate(x, params), params


# --------------------------------------------------------------------------------------------
# INSIDE


class INSIDE(nn.Module):
    """INstance modulation with SpatIal DEpendency (Jacenkow et al. 2020).

        a_c(i, j) = g(y_i; mu^y_c, sigma^y_c) * g(x_j; mu^x_c, sigma^x_c)
        y_c       = (1 + gamma_c) * (a_c * x_c) + beta_c

    with g(t; mu, sigma) = exp(-1/2 ((t - mu)/sigma)^2) at pixel centres t (module docstring).
    The hypernetwork gives 6C numbers per sample: gamma, beta (linear); mu_x, mu_y = tanh(.), in
    (-1, 1); sigma_x, sigma_y = sigma_min + (sigma_max - sigma_min) * sigmoid(.), positive and
    bounded by `sigma_max` (normalised units: 1 is half the image's extent).

    `sigma_penalty(params)` is the activity penalty the training loss adds, weight * mean(sigma /
    sigma_max)^2: the reference penalises the sigma head to keep the Gaussians narrow.
    """

    kind = "inside"

    def __init__(
        self,
        channels: int,
        cond_dim: int,
        sigma_max: float = 0.3,
        sigma_min: float = 1e-3,
        sigma_penalty_weight: float = 1e-3,
        hidden: int | None = None,
    ):
        super().__init__()
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
        self.channels, self.cond_dim = channels, cond_dim
        self.sigma_max, self.sigma_min = float(sigma_max), float(sigma_min)
        self.sigma_penalty_weight = float(sigma_penalty_weight)
        self.hypernetwork = Hypernetwork(cond_dim, 6 * channels, hidden or max(channels // 2, 8))

    def params(self, z: Tensor) -> InsideParams:
        mu_x, mu_y, sigma_x, sigma_y, gamma, beta = self.hypernetwork(z).chunk(6, dim=1)
        span = self.sigma_max - self.sigma_min
        return InsideParams(
            mu_x=torch.tanh(mu_x), mu_y=torch.tanh(mu_y),
            sigma_x=self.sigma_min + span * torch.sigmoid(sigma_x),
            sigma_y=self.sigma_min + span * torch.sigmoid(sigma_y),
            gamma=gamma, beta=beta,
        )

    def modulate(self, x: Tensor, params: InsideParams) -> Tensor:
        _check_inputs(self, x)
        along_rows, along_cols = params.attention_factors(x.shape[2], x.shape[3])
        return _SeparableModulation.apply(
            x.contiguous(), 1 + params.gamma, params.beta, along_rows.contiguous(), along_cols.contiguous()
        )

    def forward(self, x: Tensor, z: Tensor) -> tuple[Tensor, InsideParams]:
        _check_inputs(self, x, z)
        params = self.params(z)
        return self.modulate(x, params), params

    def sigma_penalty(self, params: InsideParams) -> Tensor:
        """weight * mean((sigma / sigma_max)^2) over both axes, channels and batch."""
        sigmas = torch.cat([params.sigma_x, params.sigma_y], dim=1) / self.sigma_max
        return self.sigma_penalty_weight * sigmas.pow(2).mean()


CONDITIONING_LAYERS = {"film": FiLM, "guideme": GuidingBlock, "inside": INSIDE}
