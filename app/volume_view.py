"""The page for a 3-D model: its volume slice by slice, with INSIDE's Gaussians cut at that slice.

    volume_area(entry, source, index)     # instead of the 2-D explorer area, for a source offering "volume"

A depth slider picks the slice; the model's conditioning controls are the page's streaming controls
(app/controls.py), so moving one decodes the volume again (`inside_core.volume.VolumeExplorer`: encoded
once per volume, kept per session) and redraws three pictures of the slice: the image with the predicted
mask and the ground truth for this z; one channel's attention on the slice (3-D INSIDE's attention is a
product of 1-D Gaussians, so on slice d it is the in-plane Gaussian scaled by the depth factor at d:
`InsideParamsND.cross_section`); and every channel of the layer on the slice, on the same 0-1 scale.
What the pictures are made from lives in inside_core; this module only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from app import loading, page_state, plots
from app.controls import draw_live_controls, read_controls
from inside_core import palette
from inside_core.checkpoints import CheckpointError
from inside_core.conditions import Condition, condition_of, format_number
from inside_core.geometry import normalised_to_pixel
from inside_core.limits import limit
from inside_core.volume import VolumeExplorer, VolumePrediction, responsive_channel

PIXELS = 288  # CSS pixels of each slice picture
TILE = 4  # upscaling of each channel's tile in the all-channels grid


class VolumeSource:
    """A folder of generated volumes (`inside_core.data.Cubes3dDataset`), as a page source."""

    offers = frozenset({"volume"})

    def __init__(self, root: str | Path, split: str = "test"):
        from inside_core.data import Cubes3dDataset

        self.dataset = Cubes3dDataset(root, split=split)
        if len(self.dataset) == 0:
            from app.sources import SourceError

            raise SourceError(f"{root}: the {split} split holds no volumes")
        self.root, self.split = Path(root), split
        self.label = f"{self.root} ({split} split)"

    @classmethod
    def from_folder(cls, root: str | Path, split: str = "test", **_: Any) -> VolumeSource:
        """The registry's constructor (inside_core.data.registry): volumes at their own size."""
        return cls(root, split=split)

    def __len__(self) -> int:
        return len(self.dataset)

    def title(self, index: int) -> str:
        depth = self.dataset.images.shape[2]
        return f"volume {self.dataset.indices[index]} ({self.split} split, {index + 1} of {len(self)}; {depth} slices)"

    def volume(self, index: int) -> torch.Tensor:
        """(C, D, H, W) float."""
        return self.dataset[index]["image"]

    def truth(self, index: int, condition: Condition, z_values: dict) -> np.ndarray | None:
        """The ground truth (D, H, W) for these control values: the cube of the half z names most."""
        half = condition.ground_truth_value(z_values)
        return None if half is None else self.dataset.cubes(index)[int(half)].numpy()


@dataclass
class VolumePictures:
    """What the area drew last (tests read it): the three pictures (uint8 RGB) and what they show."""

    depth: int
    layer: int | None
    channel: int | None
    slice_rgb: np.ndarray
    section_rgb: np.ndarray | None
    grid_rgb: np.ndarray | None
    prediction: VolumePrediction


# -------------------------------------------------------------------------------------------- pictures


def _enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    """Each voxel as a factor x factor block: a 16-voxel slice shows its voxels, not a blur."""
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


def slice_picture(volume: torch.Tensor, prediction: VolumePrediction, truth: np.ndarray | None, depth: int,
                  factor: int) -> np.ndarray:
    """Slice `depth` with the predicted labels blended in and the ground truth outlined (app/plots.overlay)."""
    grey = volume[0, depth].numpy()
    labels = _enlarge(prediction.labels[depth], factor)
    gt = None if truth is None else _enlarge(np.asarray(truth[depth], dtype=np.int64), factor)
    return plots.overlay(_enlarge(grey, factor), labels, gt)


def _heat(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as RGB (H, W, 3) float in [0, 255], with the page's attention colour map."""
    import matplotlib

    return matplotlib.colormaps[palette.ATTENTION_CMAP](np.clip(values, 0, 1))[..., :3] * 255


def section_picture(volume: torch.Tensor, section: np.ndarray, depth: int, factor: int,
                    mu: np.ndarray | None = None) -> np.ndarray:
    """One channel's attention on the slice (0-1, fixed scale: the depth factor dims it) over the grey slice,
    with its in-plane mean marked (a cross, in the centre colour) where it lies on the slice."""
    grey = plots.to_rgb_uint8(_enlarge(volume[0, depth].numpy(), factor)).astype(np.float32)
    rgb = (0.3 * grey + 0.7 * _heat(_enlarge(section, factor)) + 0.5).astype(np.uint8)
    if mu is not None:
        h, w = section.shape
        row, column = normalised_to_pixel(mu[1], h) * factor + factor / 2, normalised_to_pixel(mu[2], w) * factor
        column += factor / 2
        points = np.array([[column + k, row] for k in range(-4, 5)] + [[column, row + k] for k in range(-4, 5)])
        rgb = plots.draw_points(rgb, points, colour=palette.rgb(palette.CENTRE_COLOUR), radius=1)
    return rgb


def grid_picture(sections: np.ndarray) -> np.ndarray:
    """Every channel's attention on the slice (C, H, W) as tiles on one 0-1 scale, a 1-pixel gap between;
    4 tiles a row up to 16 channels, 8 beyond (a picture about as wide as it is tall)."""
    count, h, w = sections.shape
    columns = 4 if count <= 16 else 8
    rows = -(-count // columns)
    tile_h, tile_w = h * TILE, w * TILE
    out = np.full((rows * (tile_h + 1) - 1, columns * (tile_w + 1) - 1, 3), 255, np.uint8)
    for k in range(count):
        r, c = divmod(k, columns)
        out[r * (tile_h + 1):r * (tile_h + 1) + tile_h, c * (tile_w + 1):c * (tile_w + 1) + tile_w] = \
            (_heat(_enlarge(sections[k], TILE)) + 0.5).astype(np.uint8)
    return out


# ------------------------------------------------------------------------------------------------- area


def _explorer(entry, model: torch.nn.Module, source: VolumeSource, index: int) -> VolumeExplorer:
    """This session's VolumeExplorer for (model, volume): encoded once, kept within the session's bytes."""
    return page_state.session().remember(
        "volume_explorers", (entry.name, entry.path, source.label, index),
        lambda: VolumeExplorer(model, source.volume(index)), size=lambda explorer: explorer.nbytes,
        max_bytes=limit("session_bytes"))


def _opening_channel(entry, explorer: VolumeExplorer, condition: Condition, layer: int) -> int:
    """The channel the page opens on: the one whose Gaussian moves most between the condition's ends."""
    control = next(c for c in condition.controls if c.continuous)
    ends = [explorer.update(condition.encode(**{control.key: value})) for value in (control.low, control.high)]
    return responsive_channel(*ends, layer)


def _choose_layer(prediction: VolumePrediction, model: torch.nn.Module) -> int | None:
    layers = prediction.inside_layers()
    if not layers:
        return None
    names = list(getattr(model, "at", [])) or [str(k) for k in range(len(prediction.conditioning))]
    page_state.default("volume_layer", layers[0], lambda v: v in layers)
    return st.selectbox("Conditioning layer", layers, key="volume_layer",
                        format_func=lambda k: f"{k}: after {names[k]}" if k < len(names) else str(k))


def _gaussian_words(prediction: VolumePrediction, layer: int, channel: int, depth: int) -> str:
    mu, sigma = prediction.gaussian(layer, channel)
    axes = ("depth", "row", "column")
    means = ", ".join(f"{a} {format_number(float(m))}" for a, m in zip(axes, mu, strict=True))
    widths = ", ".join(f"{format_number(float(s))}" for s in sigma)
    g = prediction.depth_factor(layer, channel, depth)
    return (f"channel {channel}: μ ({means}), σ ({widths}); depth factor on slice {depth}: "
            f"**{g:.2f}** (the in-plane Gaussian is scaled by it)")


@st.fragment
def volume_area(entry, source: VolumeSource, index: int) -> None:
    """The 3-D model's area: controls, depth slider, the three pictures of the chosen slice."""
    page_state.begin("area", scope=(entry.path, entry.name, source.label))
    try:
        model = loading.load_model(entry)
    except CheckpointError as error:
        st.error(loading.plain(error))
        return
    condition = condition_of(entry.card)
    controls = read_controls(condition, source, index)
    slot = st.container()  # the streaming controls, above what they drive
    try:  # a 2-D model given by its path to a volume: one line, not a traceback
        explorer = _explorer(entry, model, source, index)
        prediction = explorer.update(condition.encode(**controls.z_values))
    except (RuntimeError, ValueError) as error:
        st.error(f"This model cannot read these volumes: {loading.plain(str(error).splitlines()[0][:200])}")
        return
    truth = source.truth(index, condition, controls.z_values)
    depth_count = prediction.size[0]
    page_state.default("depth", depth_count // 2, lambda v: 0 <= int(v) < depth_count)
    depth = int(st.slider(f"Depth slice (0 … {depth_count - 1})", 0, depth_count - 1, key="depth"))
    layer = _choose_layer(prediction, model)
    channel = None
    if layer is not None:
        count = prediction.conditioning[layer].mu.shape[1]
        opening = page_state.session().remember("volume_channel", (id(explorer), layer),
                                                lambda: _opening_channel(entry, explorer, condition, layer))
        page_state.default("volume_channel", opening, lambda v: 0 <= int(v) < count)
        channel = int(st.selectbox("Channel", list(range(count)), key="volume_channel",
                                   help="opens on the channel whose Gaussian moves most with z"))
    factor = max(1, PIXELS // max(prediction.size[1:]))
    pictures = VolumePictures(depth, layer, channel, slice_picture(explorer.volume, prediction, truth, depth, factor),
                              None, None, prediction)
    captions = [condition.caption_for(controls.z_values)]
    left, middle, right = st.columns(3)
    left.image(pictures.slice_rgb, caption=f"slice {depth}: predicted mask (blue), ground truth (white outline)")
    if layer is not None:
        sections = prediction.cross_section(layer, depth)
        mu = prediction.gaussian(layer, channel)[0]
        pictures.section_rgb = section_picture(explorer.volume, sections[channel], depth, factor, mu)
        pictures.grid_rgb = grid_picture(sections)
        middle.image(pictures.section_rgb, caption=f"channel {channel}'s attention on slice {depth} (0-1; + its mean)")
        right.image(pictures.grid_rgb, caption=f"all {len(sections)} channels of layer {layer} on slice {depth} (0-1)")
        captions.append(_gaussian_words(prediction, layer, channel, depth))
    else:
        middle.info("This model has no 3-D INSIDE layer: no Gaussians to cut.")
    score = explorer.dice(prediction, truth)
    if score is not None:
        captions.append(f"Dice of the whole volume against the ground truth for this z: **{score:.3f}**")
    st.caption("  \n".join(loading.plain(line) if "**" not in line else line for line in captions))
    session = page_state.session()
    session.shown.pop(entry.name, None)
    session.shown[entry.name] = pictures  # what the page shows, by model (tests read it)
    draw_live_controls(controls, slot)
    page_state.sync_url()
