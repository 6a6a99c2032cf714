"""A 3-D model and one volume: its answer to a new z, seen slice by slice with INSIDE's Gaussians.

The Explorer (inside_core/explorer.py) for volumes: the model's image-only part runs once (`model.encode`),
every new z costs `model.decode` alone. What the page draws for one depth slice comes from here:

    explorer = VolumeExplorer(model, volume)              # volume (C, D, H, W); encodes once
    prediction = explorer.update(z)                        # decode only
    prediction.labels[d]                                   # the predicted labels on slice d, (H, W)
    sections = prediction.cross_section(layer, d)          # each channel's attention on slice d, (C, H, W)

3-D INSIDE's attention is a product of 1-D Gaussians, one per axis (inside_core.layers_nd), so on slice d
it is the in-plane Gaussian scaled by the depth factor at d: `InsideParamsND.cross_section` owns that
formula; it is evaluated at the volume's own grid (normalised coordinates), so it lies on the picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from inside_core.cache import nbytes
from inside_core.layers_nd import InsideParamsND
from inside_core.metrics import dice

__all__ = ["VolumeExplorer", "VolumePrediction", "responsive_channel"]


@dataclass
class VolumePrediction:
    """One decode: z, foreground probability and labels (D, H, W), and each conditioning layer's parameters
    for batch item 0 (batch axis kept, length 1)."""

    z: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray
    conditioning: list[Any]

    @property
    def size(self) -> tuple[int, int, int]:
        return tuple(self.labels.shape)  # type: ignore[return-value]

    def inside_layers(self) -> list[int]:
        """Indices of the layers whose attention has a cross-section (3-D INSIDE)."""
        return [k for k, params in enumerate(self.conditioning) if isinstance(params, InsideParamsND)]

    def cross_section(self, layer: int, depth: int) -> np.ndarray:
        """(C, H, W): layer `layer`'s attention of every channel on depth slice `depth`."""
        params = self.conditioning[layer]
        if not isinstance(params, InsideParamsND):
            raise ValueError(f"layer {layer} is not a 3-D INSIDE layer: it has no Gaussians")
        return params.cross_section(self.size, depth, axis=0)[0].numpy()

    def depth_factor(self, layer: int, channel: int, depth: int) -> float:
        """The depth Gaussian of one channel at slice `depth`: what its in-plane Gaussian is scaled by there."""
        return float(self.conditioning[layer].attention_factors(self.size)[0][0, channel, depth])

    def gaussian(self, layer: int, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) of one channel, each (3,): depth, row, column, in normalised coordinates."""
        params = self.conditioning[layer]
        return params.mu[0, channel].numpy(), params.sigma[0, channel].numpy()


class VolumeExplorer:
    """A 3-D model and one volume (C, D, H, W); `update(z)` decodes the cached features only."""

    def __init__(self, model: nn.Module, volume: Tensor | np.ndarray):
        x = torch.as_tensor(np.asarray(volume) if not isinstance(volume, Tensor) else volume).float()
        if x.dim() != 4:
            raise ValueError(f"expected a volume (C, D, H, W), got shape {tuple(x.shape)}")
        self.model, self.volume = model, x
        with torch.inference_mode():
            self.features = model.encode(x[None])

    @property
    def nbytes(self) -> int:
        """Memory held (the volume and the cached features), as a page session's cache counts it."""
        return nbytes((self.volume, self.features))

    def update(self, z: Any) -> VolumePrediction:
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(1, -1)
        with torch.inference_mode():
            out = self.model.decode(self.features, zt)
        logits = out.logits[0]
        if logits.shape[0] == 1:
            probabilities = torch.sigmoid(logits[0])
            labels = (logits[0] > 0).long()
        else:
            probabilities = 1 - torch.softmax(logits, dim=0)[0]  # any foreground
            labels = logits.argmax(dim=0)
        params = [p.apply(lambda t: t.detach().cpu()) if hasattr(p, "apply") else p for p in out.conditioning]
        return VolumePrediction(np.asarray(z, dtype=np.float32), probabilities.numpy(), labels.numpy(), params)

    @staticmethod
    def dice(prediction: VolumePrediction, truth: np.ndarray | None) -> float | None:
        """Dice of the whole volume's foreground against `truth` (D, H, W); None without one."""
        return None if truth is None else float(dice(prediction.labels > 0, np.asarray(truth) > 0))


def responsive_channel(first: VolumePrediction, second: VolumePrediction, layer: int) -> int:
    """The channel of `layer` whose Gaussian moves most between two predictions (e.g. the two one-hots):
    the largest distance between its means; the page opens on it."""
    mu_a, mu_b = first.conditioning[layer].mu[0], second.conditioning[layer].mu[0]
    return int((mu_a - mu_b).norm(dim=-1).argmax())
