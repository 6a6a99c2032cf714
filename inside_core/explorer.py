"""The Explorer: one image, one model, and the answer to "here is a new z: what does the model do?".

The dashboard, the notebooks and the figures share this object. It runs the model's image-only
part once (`model.encode`) and answers every new conditioning vector with `model.decode` alone:

    explorer = Explorer(model, image, mask)          # encodes once, under torch.inference_mode
    prediction = explorer.update(z)                   # decode only: mask + conditioning parameters
    explorer.dice(prediction)                         # against the sample's ground truth, if it has one
    explorer.dice(prediction, other_mask)             # or against a mask given per call

The masks follow the model card's inference recipe (inside_core.postprocess): the largest connected
component of each label its card lists and the cardiac anatomy if it names it, on the one 2-D slice
(cheap). Test-time augmentation is not applied here: 8 encodes and decodes per answer would break the
page's live drag (`inside evaluate --tta`).

A `Prediction` holds numpy arrays for drawing (probabilities, labels) and the conditioning layers'
parameter dataclasses (`InsideParams`, `FiLMParams`, `GuidingParams`) for batch item 0, still with
a batch axis of length 1 so their methods (`attention(h, w)`, `spatial_map()`) work unchanged.

`condition_vector(card, ...)` turns the dashboard's control values into z for a checkpoint's card,
through the card's condition (`inside_core.conditions`, the one place those rules live).

An Explorer is not changed by its calls: `update` returns a new Prediction and keeps nothing, and the
mask is the sample's (given once) or given per call. A model may be shared between threads (it is only
read, in eval mode, under `torch.inference_mode`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inside_core.cache import nbytes
from inside_core.conditions import condition_of
from inside_core.layers import FiLMParams, GuidingParams, InsideParams
from inside_core.metrics import dice_per_label
from inside_core.postprocess import clean, inference_recipe

__all__ = [
    "Explorer",
    "Prediction",
    "condition_vector",
    "prepare_image",
    "pad_to_aspect",
    "prepare_mask",
    "channel_table",
    "conditioning_kind",
    "require_images",
]


# --------------------------------------------------------------------------------------------
# Inputs

def require_images(model: nn.Module, what: str) -> None:
    """ValueError in one line if `model` reads volumes (a wrapped 3-D network: `spatial_dims` 3): `what`
    (the Explorer, a figure) draws 2-D images; volumes are explored slice by slice (inside_core.volume)."""
    dims = int(getattr(model, "spatial_dims", 2))
    if dims != 2:
        name = (getattr(model, "card", None) or {}).get("name") or type(model).__name__
        raise ValueError(f"{name} reads {dims}-D volumes: {what} is for 2-D models (the page shows a volume "
                         "slice by slice; in code, inside_core.volume.VolumeExplorer)")



def _as_tensor(array: Any) -> Tensor:
    if isinstance(array, Tensor):
        return array.detach().cpu()
    return torch.from_numpy(np.ascontiguousarray(array))


def _fitted(shape: tuple[int, int], size: Sequence[int]) -> tuple[int, int]:
    """(H, W) of `shape` scaled to fit inside `size` with its aspect ratio kept (at least one pixel)."""
    scale = min(int(size[0]) / shape[0], int(size[1]) / shape[1])
    return (min(int(size[0]), max(1, round(shape[0] * scale))), min(int(size[1]), max(1, round(shape[1] * scale))))


def pad_to_aspect(x: Tensor, aspect: float) -> Tensor:
    """(C, H, W) padded evenly on two sides to height / width = `aspect`, with the median of its border
    pixels (the background, for a scene or a scan), so that resizing keeps shapes round: pad, don't squash."""
    _, h, w = x.shape
    if abs(h / w - aspect) < 1e-6:
        return x
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], dim=1)
    fill = border.median(dim=1).values[:, None, None]
    new_h, new_w = (round(w * aspect), w) if h / w < aspect else (h, round(h / aspect))
    out = fill.expand(x.shape[0], new_h, new_w).clone()
    top, left = (new_h - h) // 2, (new_w - w) // 2
    out[:, top:top + h, left:left + w] = x
    return out


def prepare_image(image: Any, size: Sequence[int] | None = None, channels: int | None = None) -> Tensor:
    """An image as a float tensor (C, H, W), optionally fitted (bilinear) into `size` = (H, W) and then padded
    to it (`pad_to_aspect`) so that nothing is squashed.

    Accepts a tensor or numpy array shaped (C, H, W), (H, W) or (H, W, C) with C in {1, 3, 4}
    (channels-last arrays are how PIL and imageio hand images over). Integer images are scaled to
    [0, 1] by their type's maximum. `channels` converts 1 <-> 3 (grey = mean of RGB; alpha dropped).
    """
    x = _as_tensor(image)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    elif x.dim() == 3 and x.shape[0] not in (1, 3, 4) and x.shape[-1] in (1, 3, 4):
        x = x.permute(2, 0, 1)
    if x.dim() != 3 or x.shape[0] not in (1, 3, 4):
        raise ValueError(f"expected an image of shape (C, H, W), (H, W) or (H, W, C), got {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        x = x.float() / (255.0 if x.dtype == torch.uint8 else float(torch.iinfo(x.dtype).max))
    x = x.float()
    if x.shape[0] == 4:  # RGBA: drop alpha
        x = x[:3]
    if channels is not None and x.shape[0] != channels:
        if channels == 1:
            x = x.mean(dim=0, keepdim=True)
        elif channels == 3 and x.shape[0] == 1:
            x = x.expand(3, -1, -1).contiguous()
        else:
            raise ValueError(f"cannot turn a {x.shape[0]}-channel image into {channels} channels")
    if size is not None and tuple(x.shape[1:]) != tuple(size):
        # resize first, then pad: padding a 1 x 100000 image to a square first would take gigabytes
        height, width = int(size[0]), int(size[1])
        fitted = _fitted(tuple(x.shape[1:]), size)
        if fitted != tuple(x.shape[1:]):
            x = F.interpolate(x[None], size=fitted, mode="bilinear", align_corners=False, antialias=True)[0]
        x = pad_to_aspect(x, height / width)
        if tuple(x.shape[1:]) != (height, width):  # rounding: at most a pixel off
            x = F.interpolate(x[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return x.contiguous()


def prepare_mask(mask: Any, size: Sequence[int] | None = None) -> np.ndarray:
    """A ground-truth mask as an int numpy array (H, W) of labels, resized by nearest neighbour.

    Accepts (H, W) labels or a (1, H, W) binary mask (CLEVR-Seg's float {0, 1} target).
    """
    m = _as_tensor(mask)
    if m.dim() == 3 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 2:
        raise ValueError(f"expected a mask of shape (H, W) or (1, H, W), got {tuple(m.shape)}")
    m = m.round().long() if torch.is_floating_point(m) else m.long()
    if size is not None and tuple(m.shape) != tuple(size):  # as prepare_image: fit first, then pad
        fitted = _fitted(tuple(m.shape), size)
        if fitted != tuple(m.shape):
            m = F.interpolate(m[None, None].float(), size=fitted, mode="nearest")[0, 0].long()
        h, w = m.shape
        aspect = size[0] / size[1]
        if abs(h / w - aspect) > 1e-6:
            new_h, new_w = (round(w * aspect), w) if h / w < aspect else (h, round(h / aspect))
            padded = torch.zeros((new_h, new_w), dtype=m.dtype)
            padded[(new_h - h) // 2:(new_h - h) // 2 + h, (new_w - w) // 2:(new_w - w) // 2 + w] = m
            m = padded
    if size is not None and tuple(m.shape) != tuple(size):
        m = F.interpolate(m[None, None].float(), size=tuple(int(s) for s in size), mode="nearest")[0, 0].long()
    return m.numpy().astype(np.int64)


# --------------------------------------------------------------------------------------------
# Conditioning vectors from slider values


def condition_vector(card: Mapping[str, Any], **controls: Any) -> np.ndarray:
    """z for a checkpoint's card and control values: `condition_of(card).encode(**controls)`.

    Missing controls take the condition's defaults (its `controls`' `default`).
    """
    return condition_of(card).encode(**controls)


# --------------------------------------------------------------------------------------------
# Results


def conditioning_kind(params: Any) -> str:
    """"inside", "film" or "guideme" for a parameter dataclass."""
    if isinstance(params, InsideParams):
        return "inside"
    if isinstance(params, GuidingParams):
        return "guideme"
    if isinstance(params, FiLMParams):
        return "film"
    raise TypeError(f"not a conditioning parameter set: {type(params).__name__}")


def channel_table(params: Any) -> dict[str, np.ndarray]:
    """A layer's per-channel parameters for batch item 0 as numpy arrays, each of shape (C,).

    INSIDE: mu_x, mu_y, sigma_x, sigma_y, gamma, beta; FiLM: gamma, beta; Guide Me: gamma_scale,
    gamma_shift (its alpha (H,) and beta (W,) are per row / column, not per channel: see
    `GuidingParams.spatial_map`).
    """
    keep = {"inside": ("mu_x", "mu_y", "sigma_x", "sigma_y", "gamma", "beta"), "film": ("gamma", "beta"),
            "guideme": ("gamma_scale", "gamma_shift")}[conditioning_kind(params)]
    return {name: getattr(params, name)[0].detach().cpu().numpy().astype(np.float64) for name in keep}


@dataclass
class Prediction:
    """The model's answer for one z.

    probabilities: (K, H, W) float numpy (sigmoid for K = 1, softmax otherwise);
    labels: (H, W) int numpy (p > 0.5 for K = 1, argmax otherwise), then the card's recipe: where its
    clean-up changed a pixel (removed: 0; the anatomy: LV), the probabilities say that label (one-hot);
    conditioning: one parameter dataclass per conditioning layer, for batch item 0 with a batch
    axis of length 1 (so `params.attention(h, w)` and `params.spatial_map()` work as is);
    z: the conditioning vector (D,) that produced it (None for an unconditioned model).
    """

    probabilities: np.ndarray
    labels: np.ndarray
    conditioning: list = field(default_factory=list)
    z: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return self.probabilities.shape[0]

    def attention(self, layer: int = 0, size: Sequence[int] | None = None) -> np.ndarray | None:
        """INSIDE attention a_c(i, j) of one layer, (C, H, W), at `size` (default: the mask's size).

        mu and sigma are in normalised image coordinates, so the map can be drawn at any
        resolution, e.g. over the input image. None if that layer is not INSIDE.
        """
        params = self.conditioning[layer] if layer < len(self.conditioning) else None
        if not isinstance(params, InsideParams):
            return None
        h, w = size if size is not None else self.labels.shape
        return params.attention(int(h), int(w))[0].cpu().numpy()

    def spatial_map(self, layer: int = 0) -> np.ndarray | None:
        """Guide Me's alpha_h + beta_w map (h, w) at its feature-map size, or None for other layers."""
        params = self.conditioning[layer] if layer < len(self.conditioning) else None
        if not isinstance(params, GuidingParams):
            return None
        return params.spatial_map()[0].cpu().numpy()


def _prediction_from_logits(logits: Tensor, conditioning: list, z: np.ndarray | None, index: int = 0,
                            recipe: dict | None = None) -> Prediction:
    logits = logits[index].float()
    probabilities = (torch.sigmoid(logits) if logits.shape[0] == 1 else torch.softmax(logits, dim=0)).cpu().numpy()
    # the labels from numpy: torch's arg-max over the leading axis is several times slower on one thread
    labels = (probabilities[0] > 0.5) if probabilities.shape[0] == 1 else probabilities.argmax(axis=0)
    labels = labels.astype(np.int64)
    cleaned = clean(labels, recipe) if recipe else labels  # the card's recipe (2-D: one slice, ~0.1 ms a label)
    if cleaned is not labels:
        changed = cleaned != labels
        if changed.any():  # what the page draws from the probabilities must agree: the new label there
            probabilities[:, changed] = 0.0
            if probabilities.shape[0] > 1:
                probabilities[cleaned[changed], changed] = 1.0
            labels = cleaned
    params = [p[index : index + 1].detach().to("cpu") for p in conditioning]
    return Prediction(probabilities, labels, params, z)


# --------------------------------------------------------------------------------------------
# The Explorer


class Explorer:
    """A model and one image; `update(z)` re-runs only the part of the model after the first
    conditioning layer's input (`model.decode`) on the image's cached features.

    `image`: tensor or array (C, H, W) / (H, W) / (H, W, C); resized to the model's `image_size`
    (bilinear) when `resize` and the sizes differ, and converted to its number of input channels.
    `mask`: optional ground truth, (H, W) labels or (1, H, W) binary, resized by nearest neighbour.
    """

    def __init__(self, model: nn.Module, image: Any, mask: Any = None, resize: bool = True):
        require_images(model, "the Explorer")
        self.model = model
        size = getattr(model, "image_size", None) if resize else None
        self.image = prepare_image(image, size, channels=getattr(model, "in_channels", None))
        self.mask = None if mask is None else prepare_mask(mask, self.image.shape[1:])
        self.device = next(model.parameters()).device
        self.cond_dim = int(getattr(model, "cond_dim", 0))
        self.conditioned = bool(getattr(model, "conditioned", True))
        self.recipe = inference_recipe(getattr(model, "card", None))  # the card's clean-up (postprocess)
        with torch.inference_mode():
            self.features = model.encode(self.image[None].to(self.device))

    @property
    def image_size(self) -> tuple[int, int]:
        return (int(self.image.shape[1]), int(self.image.shape[2]))

    @property
    def nbytes(self) -> int:
        """Memory this Explorer holds (its image and cached features): what a page session's cache counts."""
        return nbytes((self.image, self.features))

    def _z_tensor(self, z: Any, batch: int = 1) -> Tensor | None:
        if not self.conditioned:
            return None
        zt = _as_tensor(np.asarray(z, dtype=np.float32) if not isinstance(z, Tensor) else z).float()
        zt = zt.reshape(-1, self.cond_dim) if zt.numel() == batch * self.cond_dim else zt
        if zt.shape != (batch, self.cond_dim):
            raise ValueError(f"this model expects z of {self.cond_dim} numbers, got shape {tuple(zt.shape)}")
        return zt.to(self.device)

    def update(self, z: Any = None) -> Prediction:
        """Decode the cached features with a new z (D,): mask probabilities, labels, parameters."""
        zt = self._z_tensor(z)
        with torch.inference_mode():
            out = self.model.decode(self.features, zt)
        return _prediction_from_logits(out.logits, out.conditioning, None if zt is None else zt[0].cpu().numpy(),
                                       recipe=self.recipe)

    def full_forward(self, z: Any = None) -> Prediction:
        """The same answer through the whole model (encode + decode): the reference for speed tests."""
        zt = self._z_tensor(z)
        with torch.inference_mode():
            out = self.model(self.image[None].to(self.device), zt)
        return _prediction_from_logits(out.logits, out.conditioning, None if zt is None else zt[0].cpu().numpy(),
                                       recipe=self.recipe)

    def sweep(self, zs: Sequence[Any]) -> list[Prediction]:
        """Decode several z at once (one batch over the cached features): one Prediction each."""
        zs = list(zs)
        if not zs:
            return []
        batch = len(zs)
        features = self.features.expand(batch)
        zt = self._z_tensor(np.stack([np.asarray(z, dtype=np.float32) for z in zs]), batch) \
            if self.conditioned else None
        with torch.inference_mode():
            out = self.model.decode(features, zt)
        return [_prediction_from_logits(out.logits, out.conditioning, None if zt is None else zt[i].cpu().numpy(), i,
                                        recipe=self.recipe) for i in range(batch)]

    def dice(self, prediction: Prediction, mask: Any = None) -> float | None:
        """Mean Dice over the foreground labels (1 for binary models; 1..K-1 otherwise) against `mask`
        (default: the sample's); None without one."""
        per_class = self.dice_per_class(prediction, mask)
        return None if per_class is None else float(np.mean(list(per_class.values())))

    def dice_per_class(self, prediction: Prediction, mask: Any = None) -> dict[int, float] | None:
        """Dice per foreground label {label: dice} (inside_core.metrics); None without a mask."""
        truth = self.mask if mask is None else prepare_mask(mask, self.image.shape[1:])
        if truth is None:
            return None
        return dice_per_label(prediction.labels, truth, range(1, max(prediction.num_classes, 2)))
