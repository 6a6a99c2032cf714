"""A small generated "lesions" dataset in the nnU-Net v2 raw layout (inside_core.data.nnunet), the shipped
example of a user's own conditioned data. Synthetic: no patient data.

Each case is one 2-D brain-like grey slice (a bright skull ring, grey tissue with smooth texture, two dark
ventricles) holding 3 to 5 bright round or elliptic lesions. The label map holds ONE of them (label 1,
"lesion"), drawn at random: the image alone does not say which lesion is the target; the non-imaging
information does, as in CLEVR-Seg. dataset.json declares:

- lesion: label_centroid of "lesion" and lesion_size: label_size of "lesion" (built-ins, computed from the
  mask for training; the user gives them at inference: "the lesion near here, about this big");
- age (continuous, 20-90 years; about 5 % missing, filled with 55 plus a "missing" bit): widens the
  ventricles, a distractor the model should learn to ignore for the target;
- scanner (categorical "A" / "B"): B images have lower contrast and more noise.

    inside data lesions --out data/lesions --cases 800 --seed 1
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from inside_core.data.cache import atomic_folder

__all__ = ["generate_lesions", "lesion_dataset_json"]

AGE_RANGE = (20.0, 90.0)
SCANNERS = ("A", "B")


def lesion_dataset_json(cases: int) -> dict:
    return {
        "name": "lesions (synthetic)",
        "description": "Generated brain-like slices with several lesions each; the label is the ONE lesion the "
                       "conditions (location and size) point at. Synthetic: no patient data.",
        "channel_names": {"0": "T2-like"},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": cases,
        "file_ending": ".png",
        "conditions": {
            "lesion": {"type": "label_centroid", "label": "lesion"},
            "lesion_size": {"type": "label_size", "label": "lesion"},
            "age": {"type": "continuous", "range": list(AGE_RANGE), "unit": "years", "missing": "fill", "fill": 55},
            "scanner": {"type": "categorical", "values": list(SCANNERS)},
        },
    }


def _smooth_noise(rng: np.random.Generator, size: int, scale: int = 8) -> np.ndarray:
    """Smooth texture in about [-1, 1]: coarse noise upsampled bicubically."""
    coarse = rng.normal(size=(scale, scale)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((size, size), Image.BICUBIC)
    return np.asarray(image) / 1.5


def _ellipse(rows: np.ndarray, columns: np.ndarray, centre, radii, angle: float = 0.0) -> np.ndarray:
    dy, dx = rows - centre[0], columns - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    return (u / radii[1]) ** 2 + (v / radii[0]) ** 2 <= 1.0


def draw_case(rng: np.random.Generator, size: int, age: float, scanner: str) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 (size, size), label uint8 (size, size) with the target lesion = 1)."""
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = (size / 2 + rng.normal(0, size * 0.01), size / 2 + rng.normal(0, size * 0.01))
    head = (size * rng.uniform(0.42, 0.46), size * rng.uniform(0.36, 0.40))
    brain = (head[0] - size * 0.04, head[1] - size * 0.04)
    image = np.zeros((size, size), np.float32)
    image[_ellipse(rows, columns, centre, head)] = 0.85  # skull
    inside = _ellipse(rows, columns, centre, brain)
    image[inside] = 0.45 + 0.06 * _smooth_noise(rng, size)[inside]
    widen = 1.0 + 1.2 * (age - AGE_RANGE[0]) / (AGE_RANGE[1] - AGE_RANGE[0])  # older: wider ventricles
    for side in (-1, 1):
        ventricle = (size * 0.11, size * 0.025 * widen)
        spot = (centre[0] - size * 0.02, centre[1] + side * size * (0.035 + 0.012 * widen))
        image[_ellipse(rows, columns, spot, ventricle, side * 0.25)] = 0.15
    label = np.zeros((size, size), np.uint8)
    lesions: list[tuple[float, float, float]] = []
    count = int(rng.integers(3, 6))
    target = int(rng.integers(count))
    for _ in range(200 * count):
        if len(lesions) == count:
            break
        radius = size * rng.uniform(0.03, 0.09)
        r, c = (centre[0] + rng.uniform(-0.75, 0.75) * (brain[0] - radius),
                centre[1] + rng.uniform(-0.75, 0.75) * (brain[1] - radius))
        if any(np.hypot(r - r2, c - c2) < radius + q + size * 0.03 for r2, c2, q in lesions):
            continue  # keep lesions apart, so each is one connected blob
        radii = (radius * rng.uniform(0.75, 1.0), radius * rng.uniform(0.75, 1.0))
        blob = _ellipse(rows, columns, (r, c), radii, rng.uniform(0, np.pi)) & inside
        image[blob] = rng.uniform(0.75, 0.95)
        if len(lesions) == target:
            label[blob] = 1
        lesions.append((r, c, radius))
    if not label.any():  # fewer lesions fitted than drawn: the last one is the target
        label[(image >= 0.75) & inside & _ellipse(rows, columns, lesions[-1][:2], (lesions[-1][2],) * 2)] = 1
    contrast, noise = (1.0, 0.02) if scanner == "A" else (0.75, 0.05)
    image = 0.5 + (image - 0.5) * contrast + rng.normal(0, noise, image.shape)
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), label


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def generate_lesions(out: str | Path, cases: int, seed: int = 0, size: int = 96, missing_age: float = 0.05,
                     progress: bool = False) -> Path:
    """Write `cases` generated cases to `out` (must not exist or be empty); same seed: same files."""
    if cases < 1:
        raise ValueError(f"need at least one case, got {cases}")
    if not 32 <= size <= 512:
        raise ValueError(f"the image side must be 32-512 pixels, got {size}")
    rng = np.random.default_rng(seed)
    with atomic_folder(out) as folder:
        (folder / "imagesTr").mkdir()
        (folder / "labelsTr").mkdir()
        rows = []
        for k in range(cases):
            case = f"lesion_{k:04d}"
            age = float(np.round(rng.uniform(*AGE_RANGE), 1))
            scanner = SCANNERS[int(rng.integers(len(SCANNERS)))]
            image, label = draw_case(rng, size, age, scanner)
            (folder / "imagesTr" / f"{case}_0000.png").write_bytes(_png(image))
            (folder / "labelsTr" / f"{case}.png").write_bytes(_png(label))
            rows.append([case, "" if rng.random() < missing_age else f"{age:g}", scanner])
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["case", "age", "scanner"])
        writer.writerows(rows)
        (folder / "conditions.csv").write_text(buffer.getvalue())
        (folder / "dataset.json").write_text(json.dumps(lesion_dataset_json(cases), indent=1) + "\n")
    return Path(out)
