"""Normalised image coordinates, written once: pixel centres, normalised <-> pixel, Gaussians, mean attention.

Along an axis of n pixels, pixel k has centre t_k = (2k + 1)/n - 1, the convention of
`torch.nn.functional.grid_sample(align_corners=False)`: -1 and +1 are the image's outer edges, 0 its
centre, and a width σ = 1 is half the image's extent. INSIDE's μ and σ live in these units, so they mean
the same thing at every resolution: the layers, the dashboard's plots and the exported figures all ask
this module to place them on a grid of pixels.

Every function takes numbers, numpy arrays or torch tensors and answers in kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["pixel_to_normalised", "normalised_to_pixel", "sigma_to_pixels", "pixel_centres", "pixel_centres_np",
           "gaussian", "mean_attention"]


def pixel_to_normalised(position: Any, size: int) -> Any:
    """A pixel coordinate (0 = the first pixel's centre … size - 1) in normalised units: (2p + 1)/n - 1."""
    return (2 * position + 1) / size - 1


def normalised_to_pixel(t: Any, size: int) -> Any:
    """The inverse: normalised t -> pixel coordinate (t + 1) n / 2 - 0.5."""
    return (t + 1) * size / 2 - 0.5


def sigma_to_pixels(sigma: Any, size: int) -> Any:
    """A width in normalised units as pixels: σ n / 2."""
    return sigma * size / 2


def pixel_centres(size: int, device=None, dtype=None) -> Tensor:
    """Centres t_k of `size` pixels in normalised coordinates, a tensor of shape (size,)."""
    return pixel_to_normalised(torch.arange(size, device=device, dtype=dtype or torch.get_default_dtype()), size)


def pixel_centres_np(size: int) -> np.ndarray:
    """The same centres as a float64 numpy array."""
    return pixel_to_normalised(np.arange(size, dtype=np.float64), size)


def gaussian(t: Any, mu: Any, sigma: Any) -> Any:
    """g(t; μ, σ) = exp(-½ ((t - μ) / σ)²): un-normalised, peak 1 (method.md)."""
    exp = torch.exp if isinstance(t, Tensor) else np.exp
    return exp(-0.5 * ((t - mu) / sigma) ** 2)


def mean_attention(mu_x: Any, mu_y: Any, sigma_x: Any, sigma_y: Any, height: int, width: int) -> np.ndarray:
    """Mean over channels of a_c(i, j) = g(y_i; μʸ_c, σʸ_c) g(x_j; μˣ_c, σˣ_c), float64 (height, width).

    Arguments are per-channel arrays (C,). Computed as one matrix product of the 1-D factors:
    (1/C) Σ_c gʸ[c, i] gˣ[c, j] = (Gʸᵀ Gˣ)_ij / C, never as C full maps.
    """
    mu_x, mu_y, sigma_x, sigma_y = (_float64(a).reshape(-1, 1) for a in (mu_x, mu_y, sigma_x, sigma_y))
    rows = gaussian(pixel_centres_np(height)[None], mu_y, sigma_y)
    columns = gaussian(pixel_centres_np(width)[None], mu_x, sigma_x)
    return rows.T @ columns / max(len(mu_x), 1)


def _float64(array: Any) -> np.ndarray:
    if isinstance(array, Tensor):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float64)
