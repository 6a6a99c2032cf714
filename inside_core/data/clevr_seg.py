"""CLEVR-Seg loader: the real layout (Jacenkow et al. 2020) and our synthetic one, through the same code.

Layout (see docs/datasets.md):

    images/<NAME>.png              RGB or RGBA (alpha dropped)
    scenes/<NAME>.json             {"objects": [{"pixel_coords": [column, row, depth], "color", "shape", "size"}]}
    segmentations/<NAME>/<k>.png   first channel 64 = background, 255 = object; files in natural name
                                   order follow the order of "objects"

A sample is (image, z, mask): z encodes one condition value, the mask is the union of the objects
having that value. Conditions, their z and their rules live in inside_core.conditions:

- quadrant / colour / shape / size: one-hot in the order of QUADRANTS / COLOURS / SHAPES / SIZES.
  An object's quadrant comes from its centre: top if row < H/2, left if column < W/2. The value is
  drawn uniformly among the values present in the scene (the same distribution as the reference's
  "draw any value, retry until the target is non-empty").
- point: z = (x, y, r), x = column and y = row in normalised coordinates [-1, 1] (pixel p of n has
  centre (2p + 1)/n - 1), r uniform in POINT_RADIUS_RANGE; (x, y) uniform over the image,
  redrawn until at least one object's centre lies within distance r. Target: those objects.

Every draw is seeded by SHA-256 of f"{name}:{seed}:{condition}", so it depends only on the image's
name, the seed and the condition: not on the split, the order or the image size.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from inside_core.conditions import CONDITION_VALUES, get_condition, list_conditions
from inside_core.data.cache import cached_arrays, decode_meta, encode_meta
from inside_core.data.errors import DataError
from inside_core.data.files import dataset_folder, read_json
from inside_core.data.safe_io import check_case_pixels
from inside_core.limits import over_limit

# the registered conditions whose samples are CLEVR-Seg scenes
CONDITIONS = tuple(name for name in list_conditions() if get_condition(name).dataset == "clevr-seg")
SPLITS = ("train", "val", "test", "all")
MASK_BACKGROUND, MASK_OBJECT = 64, 255


# ----------------------------------------------------------------------------------------------- files
def resolve_root(root: str | Path) -> Path:
    """The folder holding images/, scenes/ and segmentations/ (root itself or root/clevr-seg)."""
    root = dataset_folder(root)  # its files may not link outside it
    for candidate in (root, root / "clevr-seg", root / "CLEVR-Seg"):
        if (candidate / "images").is_dir():
            return candidate
    if not root.exists():
        raise DataError(root, "folder not found")
    raise DataError(root, "not a CLEVR-Seg folder: expected images/, scenes/ and segmentations/ inside")


def list_names(root: Path) -> list[str]:
    """Sorted stems of images/*.png."""
    names = sorted(path.stem for path in (root / "images").glob("*.png"))
    if not names:
        raise DataError(root / "images", "no .png images found")
    return names


def _natural_key(path: Path) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem))


def segmentation_files(root: Path, name: str) -> list[Path]:
    """The object PNGs of one scene, in natural name order (= the order of the scene's objects)."""
    folder = root / "segmentations" / name
    if not folder.is_dir():
        raise DataError(folder, "segmentation folder missing")
    return sorted(folder.glob("*.png"), key=_natural_key)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3); RGBA loses its alpha, grey and palette images become RGB, 16-bit
    grey is scaled by its own range. Width x height is checked (inside_core.limits) before decoding."""
    from inside_core.data.safe_io import image_rgb_uint8, open_image

    with open_image(path, path) as image:
        return image_rgb_uint8(image)


def read_segmentation(path: Path) -> np.ndarray:
    """A segmentation PNG as a bool mask: first channel 255 -> True, 64 -> False, anything else is an error."""
    from inside_core.data.safe_io import open_image

    if not path.exists():
        raise DataError(path, "segmentation file missing")
    with open_image(path, path) as image:
        array = np.asarray(image)
    first = array[..., 0] if array.ndim == 3 else array
    values = np.unique(first)
    bad = [int(v) for v in values if v not in (MASK_BACKGROUND, MASK_OBJECT)]
    if bad:
        shown = ", ".join(str(v) for v in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise DataError(path, f"segmentation values must be 64 (background) or 255 (object), found {shown}")
    return first == MASK_OBJECT


def read_scene(path: Path) -> list[dict]:
    """The scene's objects, each checked for pixel_coords, color, shape and size."""
    if not path.exists():
        raise DataError(path, "scene JSON missing")
    scene = read_json(path, "scene JSON")  # regular file, size and nesting bounded, NaN / Infinity refused
    objects = scene.get("objects") if isinstance(scene, dict) else None
    if not isinstance(objects, list):
        raise DataError(path, "scene JSON has no 'objects' list")
    if not objects:
        raise DataError(path, "scene has no objects")
    for k, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise DataError(path, f"object {k} is not a JSON object")
        missing = [key for key in ("pixel_coords", "color", "shape", "size") if key not in obj]
        if missing:
            raise DataError(path, f"object {k} lacks {', '.join(missing)}")
        coords = obj["pixel_coords"]
        if not (isinstance(coords, list) and len(coords) >= 2
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                        for c in coords[:2])):
            raise DataError(path, f"object {k} has malformed pixel_coords {str(coords)[:80]}")
        for attribute in ("colour", "shape", "size"):
            key = get_condition(attribute).scene_key
            if obj[key] not in CONDITION_VALUES[attribute]:
                allowed = ", ".join(CONDITION_VALUES[attribute])
                raise DataError(path, f"object {k} has unknown {key} {repr(obj[key])[:80]} (expected {allowed})")
    return objects


def read_record(root: Path, name: str) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """image uint8 (H, W, 3), objects, object masks bool (K, H, W) of one scene, cross-checked."""
    image = read_rgb(root / "images" / f"{name}.png")
    scene_path = root / "scenes" / f"{name}.json"
    objects = read_scene(scene_path)
    files = segmentation_files(root, name)
    if len(files) != len(objects):
        raise DataError(
            root / "segmentations" / name, f"{len(files)} segmentation PNGs but the scene has {len(objects)} objects"
        )
    problem = over_limit("scene_objects", len(files))
    if problem:
        raise DataError(root / "segmentations" / name, problem)
    check_case_pixels(len(files), image.shape[:2], root / "segmentations" / name)  # the masks held at once
    masks = []
    for path in files:
        mask = read_segmentation(path)
        if mask.shape != image.shape[:2]:
            raise DataError(path, f"segmentation is {mask.shape[1]}x{mask.shape[0]} but the image is "
                            f"{image.shape[1]}x{image.shape[0]}")
        masks.append(mask)
    return image, objects, np.stack(masks)


def split_names(names: list[str], split: str) -> list[str]:
    """The reference's 72/8/20 split over sorted names: the first 72 % train, the next 8 % val, the rest test."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    names = sorted(names)
    n_train = len(names) * 72 // 100  # integer arithmetic: 0.72 + 0.08 is not 0.8 in floating point
    n_val = len(names) * 80 // 100 - n_train
    return {
        "train": names[:n_train],
        "val": names[n_train : n_train + n_val],
        "test": names[n_train + n_val :],
        "all": names,
    }[split]


# ----------------------------------------------------------------------------------------- conditions
def condition_rng(name: str, seed: int, condition: str) -> np.random.Generator:
    """A generator seeded by SHA-256 of f"{name}:{seed}:{condition}" (stable across runs and machines)."""
    # surrogateescape: a name that is not valid UTF-8 hashes its own bytes (valid names: unchanged)
    digest = hashlib.sha256(f"{name}:{seed}:{condition}".encode("utf-8", "surrogateescape")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def selected_objects(objects: list[dict], condition: str, value, width: int, height: int) -> list[int]:
    """Indices of the objects a condition value selects (the condition's rule, inside_core.conditions)."""
    return get_condition(condition).selects(objects, value, width, height)


def draw_condition(name: str, seed: int, condition: str, objects: list[dict], width: int, height: int):
    """(z, value, selected object indices) for one image, reproducible from (name, seed, condition)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}")
    return get_condition(condition).draw(condition_rng(name, seed, condition), objects, width, height)


def _size_tuple(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, int):
        return (image_size, image_size)
    height, width = (int(s) for s in image_size)
    return (height, width)


def resize_image(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """uint8 (H, W, C) resized bilinearly (PIL antialiases when shrinking) to size = (H, W)."""
    if size is None or image.shape[:2] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_mask(mask: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """{0, 1} uint8 (H, W) resized by nearest neighbour, so it stays exactly {0, 1}."""
    if size is None or mask.shape[:2] == size:
        return mask
    return np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))


# -------------------------------------------------------------------------------------------- dataset
class ClevrSegDataset(torch.utils.data.Dataset):
    """CLEVR-Seg samples (image, z, mask) for one condition and split, held in memory.

    Item: dict(image float (3, H, W) in [0, 1], z float (D,), mask float (1, H, W) in {0, 1},
    meta dict(name, condition, value, objects = indices of the target's objects, index)).
    Whole-split arrays for fast training: `.images` uint8 (N, H, W, 3), `.masks` uint8 (N, H, W),
    `.z` float32 (N, D). Preprocessed arrays are cached on disk (inside_core.data.cache).
    """

    def __init__(
        self,
        root: str | Path,
        condition: str = "quadrant",
        split: str = "train",
        image_size: int | tuple[int, int] | None = None,
        seed: int = 0,
        use_cache: bool = True,
        progress: bool = False,
    ):
        if condition not in CONDITIONS:
            raise ValueError(f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}")
        self.root = resolve_root(root)
        self.condition = condition
        self.split = split
        self.image_size = _size_tuple(image_size)
        self.seed = int(seed)
        self.cond_dim = get_condition(condition).cond_dim
        all_names = list_names(self.root)
        self.names = split_names(all_names, split)
        if not self.names:  # say so, rather than fail later stacking no arrays
            raise DataError(self.root / "images", f"too few images for the splits: {len(all_names)} images leave "
                            f"the {split} split empty (the splits take 72/8/20 % of the sorted names)")
        settings = {
            "root": str(self.root.resolve()), "condition": condition, "split": split,
            "image_size": self.image_size, "seed": self.seed, "names": len(self.names),
        }
        arrays = cached_arrays("clevr-seg", settings, self._source_files(), lambda: self._build(progress), use_cache)
        self.images = arrays["images"]
        self.masks = arrays["masks"]
        self.z = arrays["z"]
        self.meta = decode_meta(arrays["meta"])

    def _source_files(self) -> list[Path]:
        files = []
        for name in self.names:
            files += [self.root / "images" / f"{name}.png", self.root / "scenes" / f"{name}.json"]
            files += segmentation_files(self.root, name)
        return files

    def _build(self, progress: bool) -> dict[str, np.ndarray]:
        from tqdm import tqdm

        images, masks, zs, metas = [], [], [], []
        kept = 0  # bytes of the (resized) images and masks kept so far
        for index, name in enumerate(tqdm(self.names, desc=f"CLEVR-Seg {self.split}", disable=not progress)):
            image, objects, object_masks = read_record(self.root, name)
            height, width = image.shape[:2]
            z, value, chosen = draw_condition(name, self.seed, self.condition, objects, width, height)
            target = object_masks[chosen].any(axis=0).astype(np.uint8)
            del object_masks
            images.append(resize_image(image, self.image_size))
            masks.append(resize_mask(target, self.image_size))
            kept += images[-1].nbytes + masks[-1].nbytes
            problem = over_limit("split_bytes", kept)
            if problem:
                raise DataError(self.root / "images", f"the {self.split} split held in memory: {problem} "
                                f"(at {images[-1].shape[1]}x{images[-1].shape[0]} pixels; pass a smaller image_size)")
            zs.append(z)
            metas.append({"name": name, "condition": self.condition, "value": value, "objects": chosen,
                          "index": index, "native_size": [height, width]})
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            raise DataError(self.root / "images", f"images differ in size ({sorted(shapes)}); pass image_size")
        return {
            "images": np.stack(images), "masks": np.stack(masks),
            "z": np.stack(zs).astype(np.float32), "meta": encode_meta(metas),
        }

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict:
        return {
            "image": torch.from_numpy(self.images[index]).permute(2, 0, 1).float().div(255.0),
            "z": torch.from_numpy(self.z[index]),
            "mask": torch.from_numpy(self.masks[index]).float().unsqueeze(0),
            "meta": dict(self.meta[index]),
        }

    # -- for the dashboard: the scene behind a sample, to build targets for any other condition value
    def scene(self, index: int) -> list[dict]:
        """The scene's objects (CLEVR JSON dicts) of item `index`."""
        return read_scene(self.root / "scenes" / f"{self.names[index]}.json")

    def object_masks(self, index: int) -> np.ndarray:
        """Per-object masks bool (K, H, W) of item `index`, resized like the images."""
        _, _, masks = read_record(self.root, self.names[index])
        return np.stack([resize_mask(m.astype(np.uint8), self.image_size) for m in masks]).astype(bool)

    def target(self, index: int, condition: str, value) -> np.ndarray:
        """The target mask float (H, W) of item `index` for any condition value (string, or (x, y, r))."""
        height, width = self.meta[index]["native_size"]
        chosen = selected_objects(self.scene(index), condition, value, width, height)
        masks = self.object_masks(index)
        return masks[chosen].any(axis=0).astype(np.float32) if chosen else np.zeros(masks.shape[1:], np.float32)


def load_split(root: str | Path, split: str, *, condition: str = "quadrant", image_size: int | None = None,
               seed: int = 0, **_: Any) -> ClevrSegDataset:
    """The registry's loader (inside_core.data.registry): one condition's split at `image_size` (None: native)."""
    return ClevrSegDataset(root, condition=condition, split=split, image_size=image_size, seed=seed)
