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


class _GuidingModulation(torch.autograd.Function):
    """y = (1 + alpha_h + beta_w + gamma^s_c) * x + gamma^b_c, with alpha (B,H), beta (B,W), gamma^* (B,C).

    Autograd of the broadcast formula keeps the full-size scale and differentiates `addcmul` through
    several (B, C, H, W) temporaries; here, as in INSIDE's `_SeparableModulation`, the forward keeps one
    extra full-size tensor (the scale) and the backward forms g * x once and reduces it twice: over the
    pixels for gamma^s and over the channels (a batched product with ones) for the spatial map.
    The forward is computed in the same order as the plain formula, so outputs are bit-identical.
    """

    @staticmethod
    def forward(ctx, x: Tensor, gamma_scale: Tensor, gamma_shift: Tensor, alpha: Tensor, beta: Tensor):
        spatial = 1 + (alpha[:, :, None] + beta[:, None, :])  # (B, H, W), shared by the channels
        scale = spatial.unsqueeze(1) + gamma_scale[:, :, None, None]
        ctx.save_for_backward(x, scale)
        return torch.addcmul(gamma_shift[:, :, None, None], x, scale)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor):
        x, scale = ctx.saved_tensors
        grad_x = grad_y * scale if ctx.needs_input_grad[0] else None
        grad_shift = grad_y.sum(dim=(2, 3)) if ctx.needs_input_grad[2] else None
        grad_gamma = grad_alpha = grad_beta = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[3] or ctx.needs_input_grad[4]:
            b, c, h, w = x.shape
            gx = (grad_y * x).reshape(b, c, h * w)  # reshape: the gradient may arrive channels_last
            grad_gamma = gx.sum(-1)
            # the sum over channels as (1, C) @ (C, HW): ~1.8x faster than gx.sum(1) here (one thread)
            ones = torch.ones(b, 1, c, dtype=gx.dtype, device=gx.device)
            grad_spatial = torch.bmm(ones, gx).view(b, h, w)
            grad_alpha, grad_beta = grad_spatial.sum(2), grad_spatial.sum(1)
        return grad_x, grad_gamma, grad_shift, grad_alpha, grad_beta


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
        return _GuidingModulation.apply(x, params.gamma_scale, params.gamma_shift, params.alpha, params.beta)

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


class _SeparableModulation(torch.autograd.Function):
    """y = scale * (u_i * v_j) * x + shift, per channel, with u (B,C,H), v (B,C,W).

    Autograd of the plain broadcast would keep several (B, C, H, W) temporaries; here the forward
    keeps exactly one, the attention-times-scale map, and the backward reduces the gradient
    against the two 1-D factors with batched matrix products.
    """

    @staticmethod
    def forward(ctx, x: Tensor, along_rows: Tensor, along_cols: Tensor, scale: Tensor, shift: Tensor):
        # weight = (1 + gamma) * a, built as one outer product: the single extra (B, C, H, W) tensor
        weight = (along_rows * scale.unsqueeze(-1)).unsqueeze(-1) * along_cols.unsqueeze(-2)
        ctx.save_for_backward(x, along_rows, along_cols, scale, weight)
        return torch.addcmul(shift[:, :, None, None], x, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor):
        x, along_rows, along_cols, scale, weight = ctx.saved_tensors
        grad_x = grad_y * weight if ctx.needs_input_grad[0] else None
        grad_shift = grad_y.sum(dim=(2, 3)) if ctx.needs_input_grad[4] else None
        grad_rows = grad_cols = grad_scale = None
        if any(ctx.needs_input_grad[1:4]):
            b, c, h, w = x.shape
            gx = (grad_y * x).reshape(b * c, h, w)  # reshape: the gradient may arrive channels_last
            # sum_j gx_ij v_j  and  sum_i gx_ij u_i, each one pass over gx
            # both as (1, n) @ (n, m) products, the row sums against gx's transposed view: BLAS's
            # vector-times-matrix is ~4x faster here than the matrix-times-vector (b*c, h, w) @ (b*c, w, 1)
            row_sums = torch.bmm(along_cols.reshape(b * c, 1, w), gx.transpose(1, 2)).view(b, c, h)
            col_sums = torch.bmm(along_rows.reshape(b * c, 1, h), gx).view(b, c, w)
            grad_rows = row_sums * scale.unsqueeze(-1)
            grad_cols = col_sums * scale.unsqueeze(-1)
            grad_scale = (row_sums * along_rows).sum(-1)
        return grad_x, grad_rows, grad_cols, grad_scale, grad_shift


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
            x.contiguous(), along_rows.contiguous(), along_cols.contiguous(), 1 + params.gamma, params.beta
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
