"""Training-time augmentation of image batches for ACDC-style segmentation (config `train.augment`).

Applied per batch on the training split only, drawn from torch's global RNG (seeded by the trainer and
saved in its resume state, so a resumed run draws the same augmentations). Chosen for models that must
carry over from a synthetic phantom to real short-axis cine MRI without breaking the view's convention
(RV on the left, anterior up): no flips, no large rotations.

    geometry   rotation +-`rotate` degrees, isotropic scale within `scale`, shift +-`shift` (fraction
               of the side); image bilinear, labels nearest, outside = 0 (as the loader's zero padding)
    intensity  multiplicative bias field (smooth, exp(b * field), b up to `bias`), gamma exp(U(+-`gamma`)),
               contrast a in [1 - `contrast`, 1 + `contrast`] about the image mean, brightness +-`brightness`
    scanner    Gaussian blur (sigma up to `blur` px, with probability `blur_p`), Gaussian noise (sd up to
               `noise`); the result is clipped to [0, 1] like the loader's normalisation

Each step applies to a sample with probability `p` (default 0.8), independently.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULTS: dict[str, float] = {
    "p": 0.8, "rotate": 15.0, "scale": 0.15, "shift": 0.06, "bias": 0.35, "gamma": 0.4, "contrast": 0.25,
    "brightness": 0.08, "blur": 1.0, "blur_p": 0.3, "noise": 0.04,
}


class Augment:
    """Callable (images (B, 1, H, W) in [0, 1], masks (B, H, W) or (B, 1, H, W)) -> augmented copies."""

    def __init__(self, **options: float):
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown augmentation option(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(DEFAULTS)}")
        self.options = {**DEFAULTS, **{k: float(v) for k, v in options.items()}}

    def __call__(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        o = self.options
        batch = images.shape[0]
        chosen = [torch.rand(batch) < o["p"] for _ in range(4)]
        images, masks = self.geometry(images, masks, chosen[0])
        images = self.bias_field(images, chosen[1])
        images = self.intensity(images, chosen[2])
        images = self.scanner(images, chosen[3])
        return images.clamp(0.0, 1.0), masks

    def geometry(self, images: Tensor, masks: Tensor, chosen: Tensor) -> tuple[Tensor, Tensor]:
        o, batch = self.options, images.shape[0]
        angle = (torch.rand(batch) * 2 - 1) * math.radians(o["rotate"]) * chosen
        scale = 1 + (torch.rand(batch) * 2 - 1) * o["scale"] * chosen
        shift = (torch.rand(batch, 2) * 2 - 1) * 2 * o["shift"] * chosen[:, None]  # normalised units: side = 2
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        squeeze = masks.dim() == 3
        labels = (masks[:, None] if squeeze else masks).to(images.dtype)
        labels = F.grid_sample(labels, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        labels = labels.round().to(masks.dtype)
        return images, labels[:, 0] if squeeze else labels

    def bias_field(self, images: Tensor, chosen: Tensor) -> Tensor:
        batch = images.shape[0]
        coarse = torch.randn(batch, 1, 4, 4)
        field = F.interpolate(coarse, size=images.shape[2:], mode="bicubic", align_corners=False)
        strength = torch.rand(batch, 1, 1, 1) * self.options["bias"] * chosen[:, None, None, None]
        return images * torch.exp(strength * field.clamp(-2.5, 2.5)).to(images)

    def intensity(self, images: Tensor, chosen: Tensor) -> Tensor:
        o, batch = self.options, images.shape[0]
        view = (batch, 1, 1, 1)
        gamma = torch.exp((torch.rand(view) * 2 - 1) * o["gamma"] * chosen.view(view))
        images = images.clamp(0.0, 1.0) ** gamma.to(images)
        contrast = 1 + (torch.rand(view) * 2 - 1) * o["contrast"] * chosen.view(view)
        brightness = (torch.rand(view) * 2 - 1) * o["brightness"] * chosen.view(view)
        mean = images.mean(dim=(2, 3), keepdim=True)
        return (images - mean) * contrast.to(images) + mean + brightness.to(images)

    def scanner(self, images: Tensor, chosen: Tensor) -> Tensor:
        o, batch = self.options, images.shape[0]
        blurred = (torch.rand(batch) < o["blur_p"]) & chosen
        if blurred.any():
            sigma = float(torch.rand(()) * o["blur"]) + 0.3  # one sigma per batch: one kernel, fast
            radius = max(1, math.ceil(2.5 * sigma))
            t = torch.arange(-radius, radius + 1, dtype=images.dtype)
            kernel = torch.exp(-0.5 * (t / sigma) ** 2)
            kernel = (kernel / kernel.sum()).to(images)
            smooth = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
            smooth = F.conv2d(F.pad(smooth, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
            images = torch.where(blurred.view(batch, 1, 1, 1), smooth, images)
        sd = torch.rand(batch, 1, 1, 1) * o["noise"] * chosen.view(batch, 1, 1, 1)
        return images + torch.randn_like(images) * sd.to(images)


def make_augment(options: dict[str, Any] | bool | None) -> Augment | None:
    """The augmenter a config's `train.augment` asks for: None/false = none, true = defaults, a dict = options."""
    if not options:
        return None
    return Augment() if options is True else Augment(**options)
