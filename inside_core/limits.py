"""Limits on untrusted input, all in one place (what they guard: docs/untrusted-input.md).

Every file the package reads may be hostile or broken: a NIfTI header may claim 100000 x 100000
voxels, a 100 KB PNG may decode to 30000 x 30000 pixels, a model card may ask for a network of
billions of weights. Readers compare the size a header announces with these limits *before*
allocating anything, and refuse with one line naming the file and the limit.

Each limit has a default here and can be raised (or lowered) without a code change through the
environment variable `INSIDE_LIMIT_<NAME>` (upper case), read at each use:

    INSIDE_LIMIT_VOLUME_VOXELS=200000000 inside data validate data/my-acdc
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["Limit", "LIMITS", "limit", "over_limit", "environment_variable"]


@dataclass(frozen=True)
class Limit:
    default: float
    unit: str
    what: str


MiB = 2**20

LIMITS: dict[str, Limit] = {
    # datasets: a real ACDC cine is at most ~512 x 512 x 21 x 35 (~190 M voxels would be absurd);
    # 64 Mi voxels as float32 is 256 MiB
    "volume_voxels": Limit(64 * MiB, "voxels", "voxels in one NIfTI volume of a dataset (a 4-D cine included)"),
    # reading a volume holds its stored bytes and a float32 copy: 64 Mi int16 voxels need 384 MiB; this
    # stops a header that claims float64 (or 128-bit) data from doubling that
    "volume_bytes": Limit(384 * MiB, "bytes", "memory to read one NIfTI volume: its stored bytes plus a float32 copy"),
    # uploads run inside the shared dashboard process: a quarter of the dataset limit
    "upload_voxels": Limit(16 * MiB, "voxels", "voxels in one uploaded NIfTI volume"),
    "upload_inflated_bytes": Limit(256 * MiB, "bytes", "bytes a .nii.gz upload may inflate to"),
    "image_pixels": Limit(32 * MiB, "pixels", "pixels (width x height) of one dataset image or segmentation PNG"),
    "upload_pixels": Limit(4096 * 4096, "pixels", "pixels (width x height) of one uploaded PNG or JPEG"),
    # in-plane pixel size; resampling time grows with (source size / target spacing)^2
    # what is computed, not only read: a case's slices once resized, the arrays a split keeps in memory,
    # the object masks of one scene
    "case_pixels": Limit(64 * MiB, "pixels", "slices x height x width of one case once resized"),
    "split_bytes": Limit(1024 * MiB, "bytes", "memory of the arrays one dataset split keeps (images, masks)"),
    "scene_objects": Limit(64, "objects", "objects (and segmentation PNGs) of one CLEVR-Seg scene"),
    # the dashboard serves every visitor from one process: what each session keeps, and what sessions share
    "session_bytes": Limit(256 * MiB, "bytes",
                           "image features and pictures one dashboard session keeps (its Explorers and what the page "
                           "drew from them)"),
    "shared_cache_bytes": Limit(256 * MiB, "bytes",
                                "per-sample arrays the dashboard keeps for all sessions (scene masks, cine frames), "
                                "each cache"),
    # one part of the pictures to scrub holds ~80-120 MB while it is made (decodes in batches, a throw-away
    # Explorer per image where the image follows the pad); sessions past this wait for a turn
    "scrub_parts_at_once": Limit(2, "parts", "parts of the pictures to scrub the dashboard makes at once, all "
                                 "sessions together"),
    # glibc keeps freed memory in its arenas; past this the dashboard hands it back (inside_core.cache)
    "freed_memory_bytes": Limit(64 * MiB, "bytes", "memory malloc may hold freed in the dashboard's process"),
    "spacing_min_mm": Limit(0.1, "mm", "smallest in-plane pixel size accepted from a NIfTI header"),
    "spacing_max_mm": Limit(20.0, "mm", "largest in-plane pixel size accepted from a NIfTI header"),
    # files read whole, by kind (inside_core.data.files): far above any real file of the kind
    "text_bytes": Limit(1 * MiB, "bytes", "size of one small text file (Info.cfg)"),
    "json_bytes": Limit(16 * MiB, "bytes", "size of one JSON file of a dataset (dataset.json, splits, a scene)"),
    "table_bytes": Limit(64 * MiB, "bytes", "size of one conditions table (CSV / TSV)"),
    "image_file_bytes": Limit(256 * MiB, "bytes", "size of one PNG / JPEG file"),
    "checkpoint_bytes": Limit(256 * MiB, "bytes", "size of one .safetensors checkpoint (weights and header)"),
    "card_bytes": Limit(1 * MiB, "bytes", "size of one JSON model card"),
    "model_parameters": Limit(50_000_000, "parameters", "parameters of a network built from a model card"),
    # the outputs of every layer for one image at the card's image size (the shipped networks: ~12 MiB)
    "model_activation_bytes": Limit(512 * MiB, "bytes", "activation memory of a card's network for one image"),
    # conditions declared by a dataset (dataset.json) or a card's condition_spec: z feeds a Linear of cond_dim
    "cond_dim": Limit(256, "numbers", "length of the condition vector z (a card's cond_dim, a dataset's variables)"),
    "num_classes": Limit(256, "labels", "labels of a dataset (dataset.json) or classes of a card's network"),
    "label_value_max": Limit(65535, "", "largest label value in dataset.json (a lookup table of that size is built)"),
    "categorical_levels": Limit(256, "levels", "levels of one categorical or ordinal variable"),
    "condition_range_max": Limit(1e9, "", "largest magnitude of a continuous variable's range bound"),
    "model_image_side": Limit(1024, "pixels", "image height or width in a model card"),
    "model_channels": Limit(1024, "channels", "one layer's channel count in a model card"),
}


def environment_variable(name: str) -> str:
    """The variable that overrides limit `name`, e.g. INSIDE_LIMIT_VOLUME_VOXELS."""
    return f"INSIDE_LIMIT_{name.upper()}"


def limit(name: str) -> float:
    """The current value of a limit: its environment variable if set (and a positive number), else the default."""
    default = LIMITS[name].default
    text = os.environ.get(environment_variable(name), "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{environment_variable(name)}={text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{environment_variable(name)}={text!r} must be a positive number")
    return int(value) if float(default).is_integer() and value.is_integer() else value


def _format(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def over_limit(name: str, value: float) -> str | None:
    """None if `value` is within limit `name`; otherwise the end of a one-line message saying so,
    e.g. "1,073,676,289 voxels exceed the limit of 67,108,864 (INSIDE_LIMIT_VOLUME_VOXELS)"."""
    bound = limit(name)
    if value <= bound:
        return None
    unit = LIMITS[name].unit
    return f"{_format(value)} {unit} exceed the limit of {_format(bound)} ({environment_variable(name)})"
