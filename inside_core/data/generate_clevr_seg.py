"""Synthetic CLEVR-Seg generator: scenes written in exactly the CLEVR-Seg layout (SYNTHETIC data).

Layout written under `out`:

    images/<NAME>.png             RGB, size x size
    scenes/<NAME>.json            {"objects": [{"pixel_coords": [column, row, depth], "color", "shape", "size"}]}
    segmentations/<NAME>/<k>.png  one RGB PNG per object, 64 on background and 255 on the object,
                                  files sorted by name follow the order of "objects"

Each scene has 3-7 non-overlapping objects: colour in {alizarin, nephritis, orange}, shape in
{cube (a square face), sphere (a shaded disc), triangle (a two-faced pyramid)}, size in {small, medium,
large}, the half-extent being 5 %, 7 % or 9.5 % of the image side. A neutral floor with a gentle
gradient, soft shadows cast to the lower right and slight Gaussian noise make them look rendered.

Determinism: image i draws everything from `numpy.random.default_rng([seed, i])`, PNGs carry no
timestamps and JSON is written with sorted keys, so the same (count, seed, size) gives byte-identical files.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from inside_core.conditions.base import COLOURS, SHAPES, SIZES  # the package __init__ imports torch
from inside_core.data.cache import atomic_folder

# sRGB of the three CLEVR-Seg colours (flat UI palette names used by the dataset)
COLOUR_RGB = {
    "alizarin": (0xE7, 0x4C, 0x3C),
    "nephritis": (0x27, 0xAE, 0x60),
    "orange": (0xF3, 0x9C, 0x12),
}
# half-extent of an object as a fraction of the image side
SIZE_FRACTION = {"small": 0.05, "medium": 0.07, "large": 0.095}
# direction the light comes from (top-left, above): unit vector (x = column, y = row, z = towards viewer)
LIGHT = np.array([-0.45, -0.6, 0.66]) / np.linalg.norm([-0.45, -0.6, 0.66])
MASK_BACKGROUND, MASK_OBJECT = 64, 255


def scene_name(index: int) -> str:
    """File stem of image `index`, CLEVR style."""
    return f"CLEVR_seg_{index:06d}"


def _place_objects(rng: np.random.Generator, size: int, count: int) -> list[dict]:
    """Random attributes and non-overlapping centres (bounding circles apart), biggest first."""
    attributes = [
        {"color": COLOURS[rng.integers(3)], "shape": SHAPES[rng.integers(3)], "size": SIZES[rng.integers(3)]}
        for _ in range(count)
    ]
    placed: list[dict] = []
    for obj in sorted(attributes, key=lambda o: -SIZE_FRACTION[o["size"]]):
        half = SIZE_FRACTION[obj["size"]] * size
        radius = half * (1.42 if obj["shape"] == "cube" else 1.05)  # bounding circle
        margin = radius + 0.02 * size
        for _ in range(200):
            column, row = rng.uniform(margin, size - 1 - margin, size=2)
            if all(np.hypot(column - p["_c"], row - p["_r"]) > radius + p["_radius"] + 0.02 * size for p in placed):
                placed.append({**obj, "_c": float(column), "_r": float(row), "_half": half, "_radius": radius})
                break
    # scene order: random, not biggest-first
    order = rng.permutation(len(placed))
    return [placed[i] for i in order]


def _coverage(shape: str, u: np.ndarray, v: np.ndarray, half: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] from a signed distance in pixels (positive inside).

    u, v are offsets from the object's centre divided by its half-extent.
    """
    if shape == "sphere":
        inside = 1.0 - np.hypot(u, v)
    elif shape == "cube":
        inside = 1.0 - np.maximum(np.abs(u), np.abs(v))
    else:  # triangle, apex up: base at v = 1, apex at v = -1, |u| <= (v + 1) / 2
        slant = ((v + 1.0) / 2.0 - np.abs(u)) * (2.0 / np.sqrt(5.0))
        inside = np.minimum(np.minimum(1.0 - v, v + 1.0), slant)
    return np.clip(inside * half + 0.5, 0.0, 1.0)


def _shade(shape: str, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse factor and specular highlight of a surface point (simple Lambert + Blinn-Phong)."""
    if shape == "sphere":
        w = np.sqrt(np.clip(1.0 - u**2 - v**2, 0.0, 1.0))
        normal = np.stack([u, v, w])
    elif shape == "cube":
        # front face tilted a little towards the viewer; the top band is the lit top face
        top = v < -0.55
        normal = np.where(top, np.array([0.0, -0.8, 0.6])[:, None, None], np.array([0.0, 0.0, 1.0])[:, None, None])
        normal = normal + 0.08 * np.stack([u, v, np.zeros_like(u)])
    else:
        # pyramid: a left and a right face
        left = u < 0
        left_face, right_face = np.array([-0.55, -0.3, 0.78]), np.array([0.55, -0.3, 0.78])
        normal = np.where(left, left_face[:, None, None], right_face[:, None, None])
    normal = normal / np.linalg.norm(normal, axis=0, keepdims=True)
    diffuse = np.clip(np.tensordot(LIGHT, normal, axes=1), 0.0, 1.0)
    halfway = LIGHT + np.array([0.0, 0.0, 1.0])
    halfway = halfway / np.linalg.norm(halfway)
    specular = np.clip(np.tensordot(halfway, normal, axes=1), 0.0, 1.0) ** 40
    return diffuse, specular


def _footprints(objects: list[dict], rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The union (max) of the objects' shadow footprints, each shifted down-right: computed only within
    2 half-extents + 2 px of the shifted centre, beyond which every shape's coverage is exactly 0 (its
    signed distance is below -half - 0.5 px), so the values equal the whole-image formula's bit for bit."""
    shadow = np.zeros(rows.shape)
    for obj in objects:
        half = obj["_half"]
        reach = 2 * half + 2
        centre_r, centre_c = obj["_r"] + 0.30 * half, obj["_c"] + 0.35 * half
        box = (slice(max(0, int(centre_r - reach)), min(rows.shape[0], int(centre_r + reach) + 2)),
               slice(max(0, int(centre_c - reach)), min(rows.shape[1], int(centre_c + reach) + 2)))
        u = (columns[box] - obj["_c"] - 0.35 * half) / half
        v = (rows[box] - obj["_r"] - 0.30 * half) / half
        shadow[box] = np.maximum(shadow[box], _coverage(obj["shape"], u, v, half))
    return shadow


def render_scene(rng: np.random.Generator, size: int = 200) -> tuple[np.ndarray, list[dict], list[np.ndarray]]:
    """One scene: image uint8 (size, size, 3), scene objects (CLEVR JSON dicts), one bool mask per object."""
    count = int(rng.integers(3, 8))
    objects = _place_objects(rng, size, count)
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float64)

    # neutral floor: grey with a gentle gradient (brighter towards the viewer) and a faint vignette
    base = rng.uniform(0.50, 0.60)
    tilt = rng.uniform(-0.03, 0.03)
    floor = base + 0.10 * (rows / size - 0.5) + tilt * (columns / size - 0.5)
    floor -= 0.06 * ((columns / size - 0.5) ** 2 + (rows / size - 0.5) ** 2)
    image = np.repeat(floor[..., None], 3, axis=2)

    # soft shadows: each footprint shifted down-right, blurred, darkening the floor
    shadow = gaussian_filter(_footprints(objects, rows, columns), sigma=max(1.0, 0.015 * size))
    image *= (1.0 - 0.45 * shadow)[..., None]

    masks = []
    for obj in objects:
        half = obj["_half"]
        lo_r, hi_r = int(max(0, obj["_r"] - 1.6 * half)), int(min(size, obj["_r"] + 1.6 * half + 2))
        lo_c, hi_c = int(max(0, obj["_c"] - 1.6 * half)), int(min(size, obj["_c"] + 1.6 * half + 2))
        u = (columns[lo_r:hi_r, lo_c:hi_c] - obj["_c"]) / half
        v = (rows[lo_r:hi_r, lo_c:hi_c] - obj["_r"]) / half
        cover = _coverage(obj["shape"], u, v, half)
        diffuse, specular = _shade(obj["shape"], u, v)
        colour = np.array(COLOUR_RGB[obj["color"]]) / 255.0
        shininess = rng.uniform(0.2, 0.6)  # rubber to metal-ish
        shaded = colour * (0.35 + 0.75 * diffuse)[..., None] + shininess * specular[..., None]
        patch = image[lo_r:hi_r, lo_c:hi_c]
        image[lo_r:hi_r, lo_c:hi_c] = patch * (1.0 - cover[..., None]) + shaded * cover[..., None]
        mask = np.zeros((size, size), dtype=bool)
        mask[lo_r:hi_r, lo_c:hi_c] = cover >= 0.5
        masks.append(mask)

    image += rng.normal(0.0, 0.012, size=image.shape)
    image_uint8 = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)

    scene_objects = []
    for obj in objects:
        # depth: distance from the camera, larger towards the top of the image (farther away)
        depth = 8.0 + 6.0 * (1.0 - obj["_r"] / size) + rng.uniform(-0.2, 0.2)
        scene_objects.append(
            {
                "pixel_coords": [int(round(obj["_c"])), int(round(obj["_r"])), round(float(depth), 4)],
                "color": obj["color"],
                "shape": obj["shape"],
                "size": obj["size"],
            }
        )
    return image_uint8, scene_objects, masks


def _save_png(array: np.ndarray, path: Path) -> None:
    # fast zlib level: the bundled default is generated while a first-time user waits for the page
    Image.fromarray(array).save(path, format="PNG", optimize=False, compress_level=1)


def write_scene(
    out: Path, name: str, image: np.ndarray, objects: list[dict], masks: list[np.ndarray], index: int
) -> None:
    """Write one scene's image, JSON and segmentation PNGs in the CLEVR-Seg layout."""
    _save_png(image, out / "images" / f"{name}.png")
    scene = {
        "image_filename": f"{name}.png",
        "image_index": index,
        "split": "synthetic",
        "synthetic": True,
        "objects": objects,
    }
    (out / "scenes" / f"{name}.json").write_text(json.dumps(scene, sort_keys=True, indent=1) + "\n")
    seg_dir = out / "segmentations" / name
    seg_dir.mkdir(parents=True, exist_ok=True)
    width = len(str(max(len(masks) - 1, 0)))
    for k, mask in enumerate(masks):
        value = np.where(mask, MASK_OBJECT, MASK_BACKGROUND).astype(np.uint8)
        _save_png(np.repeat(value[..., None], 3, axis=2), seg_dir / f"{k:0{width}d}.png")


def _write_indexed(job: tuple[Path, int, int, int]) -> None:
    temp, seed, index, size = job
    image, objects, masks = render_scene(np.random.default_rng([seed, index]), size)
    write_scene(temp, scene_name(index), image, objects, masks, index)


def generate_clevr_seg(out: str | Path, count: int, seed: int = 0, size: int = 200, progress: bool = True,
                       threads: int = 2) -> Path:
    """Write `count` synthetic CLEVR-Seg scenes into `out` (created atomically: temp dir, then rename).

    `out` must not exist or be an empty folder. Returns the folder. Scene i depends on (seed, i) only, so
    `threads` write them at once and the files are the same in any order (numpy, scipy and zlib release the
    GIL for much of the work: the page's first start on a clean cache waits for this).
    """
    out = Path(out)
    if count < 1:
        raise ValueError(f"--count must be at least 1, got {count}")
    if size < 32:
        raise ValueError(f"--size must be at least 32 pixels, got {size}")
    with atomic_folder(out) as temp:
        for sub in ("images", "scenes", "segmentations"):
            (temp / sub).mkdir()
        (temp / "SYNTHETIC.txt").write_text(
            "SYNTHETIC data written by inside_core.data.generate_clevr_seg "
            f"(count={count}, seed={seed}, size={size}); not the CLEVR-Seg dataset.\n"
        )
        jobs = [(temp, seed, index, size) for index in range(count)]
        with ThreadPoolExecutor(max(1, threads)) as pool:
            for _ in tqdm(pool.map(_write_indexed, jobs), total=count, desc="clevr-seg", unit="img",
                          disable=not progress):
                pass
    return out
