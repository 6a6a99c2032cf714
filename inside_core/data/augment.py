"""Training-time augmentation of image batches for ACDC-style segmentation (config `train.augment`).

Applied per batch on the training split only, drawn from torch's global RNG (seeded by the trainer and
saved in its resume state, so a resumed run draws the same augmentations). Chosen for models that must
carry over from a synthetic phantom to real short-axis cine MRI in whatever orientation the files
arrive: headers fix what they can (inside_core.data.orientation), the rest is learnt. As nnU-Net does on
ACDC, every in-plane symmetry is seen in training, so RV and LV are told apart by shape (crescent vs ring),
not by where they lie.

    dihedral   with probability `dihedral`, one of the 8 in-plane symmetries (4 rotations by 90 degrees,
               each with or without a transpose), uniformly
    geometry   rotation +-`rotate` degrees, isotropic scale within `scale`, shift +-`shift` (fraction
               of the side); image bilinear, labels nearest, outside = 0 (as the loader's zero padding)
    resolution with probability `lowres_p`, the batch is sampled down by up to `lowres` and back up
               (thick slices and coarse matrices blur real cine)
    histogram  with probability `histogram_p`, MONAI's RandHistogramShift (a random monotone intensity curve)
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
    "brightness": 0.08, "blur": 1.0, "blur_p": 0.3, "noise": 0.04, "dihedral": 0.0, "lowres": 1.0,
    "lowres_p": 0.0, "histogram_p": 0.0,
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
        chosen = [torch.rand(batch) < o["p"] for _ in range(4)]  # random numbers on the CPU, work on images' device
        images, masks = self.dihedral(images, masks, torch.rand(batch) < o["dihedral"])
        images, masks = self.geometry(images, masks, chosen[0])
        images = self.resolution(images)
        images = self.bias_field(images, chosen[1])
        images = self.histogram(images)
        images = self.intensity(images, chosen[2])
        images = self.scanner(images, chosen[3])
        return images.clamp(0.0, 1.0), masks

    @staticmethod
    def dihedral(images: Tensor, masks: Tensor, chosen: Tensor) -> tuple[Tensor, Tensor]:
        """One of the 8 in-plane symmetries per chosen sample: k quarter turns, then a transpose if t."""
        turns = torch.randint(0, 4, chosen.shape) * chosen
        transpose = (torch.rand(chosen.shape) < 0.5) & chosen
        if images.shape[-1] != images.shape[-2]:
            transpose[:] = False  # a transpose changes a non-square shape; quarter turns too: both off
            turns[:] = 0
        images, masks = images.clone(), masks.clone()
        for i in torch.nonzero(chosen).flatten().tolist():
            image, mask = images[i].rot90(int(turns[i]), (-2, -1)), masks[i].rot90(int(turns[i]), (-2, -1))
            if transpose[i]:
                image, mask = image.transpose(-2, -1), mask.transpose(-2, -1)
            images[i], masks[i] = image, mask
        return images, masks

    def resolution(self, images: Tensor) -> Tensor:
        o = self.options
        if o["lowres"] <= 1.0 or float(torch.rand(())) >= o["lowres_p"]:
            return images
        factor = 1.0 + float(torch.rand(())) * (o["lowres"] - 1.0)  # one factor per batch: one resize
        size = [max(4, round(s / factor)) for s in images.shape[-2:]]
        small = F.interpolate(images, size=size, mode="area")
        return F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)

    def histogram(self, images: Tensor) -> Tensor:
        """MONAI's RandHistogramShift per chosen sample, its random state drawn from torch's generator."""
        if self.options["histogram_p"] <= 0:
            return images
        from monai.transforms import RandHistogramShift

        shift = RandHistogramShift(num_control_points=(5, 10), prob=1.0)
        chosen = torch.rand(images.shape[0]) < self.options["histogram_p"]
        out = images.clone()
        for i in torch.nonzero(chosen).flatten().tolist():
            shift.set_random_state(seed=int(torch.randint(0, 2**31 - 1, ())))
            out[i] = torch.as_tensor(shift(images[i].clamp(0, 1).cpu()), dtype=images.dtype).to(images.device)
        return out

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
        coarse = torch.randn(batch, 1, 4, 4).to(images)
        field = F.interpolate(coarse, size=images.shape[2:], mode="bicubic", align_corners=False)
        strength = (torch.rand(batch, 1, 1, 1) * self.options["bias"] * chosen[:, None, None, None]).to(images)
        return images * torch.exp(strength * field.clamp(-2.5, 2.5))

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
            images = torch.where(blurred.view(batch, 1, 1, 1).to(images.device), smooth, images)
        sd = torch.rand(batch, 1, 1, 1) * o["noise"] * chosen.view(batch, 1, 1, 1)
        # drawn on the CPU generator whatever the device: the trainer's resume state holds that one
        return images + torch.randn(images.shape).to(images) * sd.to(images)


def make_augment(options: dict[str, Any] | bool | None) -> Augment | None:
    """The augmenter a config's `train.augment` asks for: None/false = none, true = defaults, a dict = options."""
    if not options:
        return None
    return Augment() if options is True else Augment(**options)
