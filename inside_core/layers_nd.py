"""Conditioning layers for features with any number of spatial axes: (B, C, S_1, ..., S_N), e.g. volumes.

The 2-D layers of `inside_core.layers` stay as they are (the shipped checkpoints depend on their exact
parameter layout); these are their generalisation, with the same formulas, the same `(y, params) =
layer(x, z)` and the same `layer.modulate(x, params)`. The spatial axes are numbered in tensor order: for
(B, C, D, H, W), axis 0 is depth (D), axis 1 rows (H), axis 2 columns (W). Coordinates are the normalised
ones of `inside_core.geometry` along every axis (pixel k of n has centre (2k + 1)/n - 1).

    FiLMND            y_c = (1 + gamma_c) x_c + beta_c
    GuidingBlockND    y_{c,s} = (1 + sum_k alpha^k_{s_k} + gamma^s_c) x_{c,s} + gamma^b_c
    InsideND          a_c(s) = prod_k g(t_{s_k}; mu^k_c, sigma^k_c),   y_c = (1 + gamma_c)(a_c x_c) + beta_c

INSIDE's attention is kept as its N one-dimensional factors, and Guide Me's scale as its spatial map:
the full-size maps exist one block at a time inside `layer_kernels._SeparableModulation` and
`layer_kernels._GuidingModulation`, the same functions the 2-D layers use (nothing full-size kept for backward
besides x).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from inside_core.geometry import gaussian, pixel_centres
from inside_core.layer_kernels import _broadcast, _GuidingModulation, _SeparableModulation, on_one_thread, outer_product
from inside_core.layers import FiLMParams, Hypernetwork, _Params

__all__ = ["GuidingParamsND", "InsideParamsND", "FiLMND", "GuidingBlockND", "InsideND", "CONDITIONING_LAYERS_ND",
           "outer_product"]


def _check(layer: nn.Module, x: Tensor, z: Tensor | None = None) -> None:
    name = type(layer).__name__
    if x.dim() != 2 + layer.spatial_dims or x.shape[1] != layer.channels:
        axes = ", ".join(f"S{k + 1}" for k in range(layer.spatial_dims))
        raise ValueError(f"{name} expects features of shape (B, {layer.channels}, {axes}), got {tuple(x.shape)}")
    if z is not None and (z.dim() != 2 or z.shape[1] != layer.cond_dim or z.shape[0] != x.shape[0]):
        raise ValueError(f"{name} expects z of shape ({x.shape[0]}, {layer.cond_dim}), got {tuple(z.shape)}")


class _TupleParams(_Params):
    """`_Params` whose fields may be tuples of tensors (one per spatial axis)."""

    def apply(self, fn):
        return type(self)(**{name: tuple(fn(t) for t in value) if isinstance(value, tuple) else fn(value)
                             for name, value in self.__dict__.items()})

    def as_dict(self) -> dict[str, Tensor]:
        out = {}
        for name, value in self.__dict__.items():
            if isinstance(value, tuple):
                out.update({f"{name}_{k}": t for k, t in enumerate(value)})
            else:
                out[name] = value
        return out


@dataclass
class GuidingParamsND(_TupleParams):
    """Guide Me's parameters: gamma_scale, gamma_shift (B, C); `along`, one (B, S_k) vector per spatial axis."""

    gamma_scale: Tensor
    gamma_shift: Tensor
    along: tuple[Tensor, ...]

    def spatial_map(self) -> Tensor:
        """sum_k alpha^k_{s_k}, shared by all channels, (B, S_1, ..., S_N)."""
        n = len(self.along)
        total = self.along[0].reshape(self.along[0].shape[0], -1, *([1] * (n - 1)))
        for k, vector in enumerate(self.along[1:], start=1):
            shape = [vector.shape[0]] + [1] * n
            shape[1 + k] = vector.shape[-1]
            total = total + vector.reshape(shape)
        return total


@dataclass
class InsideParamsND(_Params):
    """INSIDE's parameters: mu, sigma (B, C, N), one mean and width per channel and spatial axis (tensor
    order: for a volume, [..., 0] is depth, [..., 1] rows, [..., 2] columns); gamma, beta (B, C)."""

    mu: Tensor
    sigma: Tensor
    gamma: Tensor
    beta: Tensor

    def attention_factors(self, size: tuple[int, ...] | torch.Size) -> list[Tensor]:
        """The N one-dimensional Gaussians, factor k of shape (B, C, size[k])."""
        if len(size) != self.mu.shape[-1]:
            raise ValueError(f"these parameters are for {self.mu.shape[-1]} spatial axes, got size {tuple(size)}")
        return [gaussian(pixel_centres(n, device=self.mu.device, dtype=self.mu.dtype),
                         self.mu[..., k, None], self.sigma[..., k, None]) for k, n in enumerate(size)]

    def attention(self, size: tuple[int, ...] | torch.Size) -> Tensor:
        """a_c(s) = prod_k g(t_{s_k}; mu^k_c, sigma^k_c), shape (B, C, *size); for display and tests."""
        return outer_product(self.attention_factors(size))

    def cross_section(self, size: tuple[int, ...] | torch.Size, index: int, axis: int = 0) -> Tensor:
        """The attention on the slice `index` along `axis` (a volume's depth: axis 0), shape (B, C, size
        without that axis): the Gaussian of the other axes scaled by this axis's factor at `index`, since
        a_c is a product of 1-D factors. Equal to `attention(size)` indexed there, without making it."""
        if not 0 <= axis < len(size) or not 0 <= index < size[axis]:
            raise ValueError(f"no slice {index} along axis {axis} of size {tuple(size)}")
        factors = self.attention_factors(size)
        others = [f for k, f in enumerate(factors) if k != axis]
        scale = factors[axis][..., index]
        plane = outer_product(others) if others else torch.ones_like(scale)
        return plane * scale.reshape(*scale.shape, *([1] * (plane.dim() - 2)))


class FiLMND(nn.Module):
    """FiLM (Perez et al. 2018) for any number of spatial axes, in residual form:

        y_c = (1 + gamma_c) * x_c + beta_c,    (gamma, beta) = hypernetwork(z), each in R^C
    """

    kind = "film"

    def __init__(self, channels: int, cond_dim: int, spatial_dims: int = 3, hidden: int | None = None):
        super().__init__()
        self.channels, self.cond_dim, self.spatial_dims = channels, cond_dim, spatial_dims
        self.hypernetwork = Hypernetwork(cond_dim, 2 * channels, hidden or max(channels // 2, 8))

    def params(self, z: Tensor) -> FiLMParams:
        gamma, beta = self.hypernetwork(z).chunk(2, dim=1)
        return FiLMParams(gamma=gamma, beta=beta)

    def modulate(self, x: Tensor, params: FiLMParams) -> Tensor:
        _check(self, x)
        n = self.spatial_dims
        return torch.addcmul(_broadcast(params.beta, n), x, _broadcast(1 + params.gamma, n))

    def forward(self, x: Tensor, z: Tensor) -> tuple[Tensor, FiLMParams]:
        _check(self, x, z)
        params = self.params(z)
        return self.modulate(x, params), params


class GuidingBlockND(nn.Module):
    """Guide Me's guiding block (Rupprecht et al. 2018) with one additive vector per spatial axis:

        y_{c,s} = (1 + sum_k alpha^k_{s_k} + gamma^s_c) * x_{c,s} + gamma^b_c

    The head has 2C + S_1 + ... + S_N outputs, so the layer is tied to one feature-map size (`size`).
    """

    kind = "guideme"

    def __init__(self, channels: int, cond_dim: int, size: tuple[int, ...] | list[int], hidden: int | None = None):
        super().__init__()
        self.channels, self.cond_dim, self.size = channels, cond_dim, tuple(int(s) for s in size)
        self.spatial_dims = len(self.size)
        self.hypernetwork = Hypernetwork(cond_dim, 2 * channels + sum(self.size), hidden or max(channels // 2, 8))

    def params(self, z: Tensor) -> GuidingParamsND:
        c = self.channels
        out = self.hypernetwork(z)
        return GuidingParamsND(gamma_scale=out[:, :c], gamma_shift=out[:, c:2 * c],
                               along=tuple(out[:, 2 * c:].split(list(self.size), dim=1)))

    def modulate(self, x: Tensor, params: GuidingParamsND) -> Tensor:
        _check(self, x)
        if tuple(v.shape[-1] for v in params.along) != tuple(x.shape[2:]):
            raise ValueError(f"GuidingBlockND params are for size {tuple(v.shape[-1] for v in params.along)}, "
                             f"got features of size {tuple(x.shape[2:])}")
        spatial = on_one_thread(lambda *along: (1 + GuidingParamsND(None, None, along).spatial_map(),), *params.along)
        return _GuidingModulation.apply(x.contiguous(), spatial[0], params.gamma_scale, params.gamma_shift)

    def forward(self, x: Tensor, z: Tensor) -> tuple[Tensor, GuidingParamsND]:
        _check(self, x, z)
        if tuple(x.shape[2:]) != self.size:
            raise ValueError(f"GuidingBlockND was built for size {self.size}, got {tuple(x.shape[2:])} "
                             "(its head size depends on the feature-map size)")
        params = self.params(z)
        return self.modulate(x, params), params


class InsideND(nn.Module):
    """INSIDE (Jacenkow et al. 2020) for any number of spatial axes: one Gaussian per channel and axis.

        a_c(s) = prod_k g(t_{s_k}; mu^k_c, sigma^k_c)
        y_c    = (1 + gamma_c) * (a_c * x_c) + beta_c

    with g(t; mu, sigma) = exp(-1/2 ((t - mu)/sigma)^2) at pixel centres t. The hypernetwork gives
    (2N + 2)C numbers per sample: mu^k = tanh(.) in (-1, 1); sigma^k = sigma_min + (sigma_max - sigma_min)
    * sigmoid(.); gamma, beta linear. `sigma_penalty(params)` = weight * mean((sigma / sigma_max)^2), as
    the 2-D layer's.
    """

    kind = "inside"

    def __init__(self, channels: int, cond_dim: int, spatial_dims: int = 3, sigma_max: float = 0.3,
                 sigma_min: float = 1e-3, sigma_penalty_weight: float = 1e-3, hidden: int | None = None):
        super().__init__()
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
        self.channels, self.cond_dim, self.spatial_dims = channels, cond_dim, spatial_dims
        self.sigma_max, self.sigma_min = float(sigma_max), float(sigma_min)
        self.sigma_penalty_weight = float(sigma_penalty_weight)
        self.hypernetwork = Hypernetwork(cond_dim, (2 * spatial_dims + 2) * channels, hidden or max(channels // 2, 8))

    def params(self, z: Tensor) -> InsideParamsND:
        b, c, n = z.shape[0], self.channels, self.spatial_dims
        out = self.hypernetwork(z)
        mu, sigma = out[:, :2 * n * c].view(b, 2, c, n).unbind(1)
        gamma, beta = out[:, 2 * n * c:].chunk(2, dim=1)
        span = self.sigma_max - self.sigma_min
        return InsideParamsND(mu=torch.tanh(mu), sigma=self.sigma_min + span * torch.sigmoid(sigma),
                              gamma=gamma, beta=beta)

    def modulate(self, x: Tensor, params: InsideParamsND) -> Tensor:
        _check(self, x)
        factors = on_one_thread(lambda mu, sigma: tuple(f.contiguous() for f in InsideParamsND(
            mu, sigma, None, None).attention_factors(x.shape[2:])), params.mu, params.sigma)
        return _SeparableModulation.apply(x.contiguous(), 1 + params.gamma, params.beta, *factors)

    def forward(self, x: Tensor, z: Tensor) -> tuple[Tensor, InsideParamsND]:
        _check(self, x, z)
        params = self.params(z)
        return self.modulate(x, params), params

    def sigma_penalty(self, params: InsideParamsND) -> Tensor:
        """weight * mean((sigma / sigma_max)^2) over axes, channels and batch."""
        return self.sigma_penalty_weight * (params.sigma / self.sigma_max).pow(2).mean()


CONDITIONING_LAYERS_ND = {"film": FiLMND, "guideme": GuidingBlockND, "inside": InsideND}

