"""A generated 3-D task whose target only z can name: two cubes per volume, z picks one.

Each volume (1, S, S, S) holds two bright 4-voxel cubes at random places, one in each half along the last
axis (W), plus Gaussian noise (sd 0.1). z is one-hot over (first half, second half) (the `cube_half`
condition); the target mask is the cube in the half z names. From the image alone the two cubes are
alike, so a network must use z, and *where* (a spatial attention: INSIDE) is the information z carries.

    inside data cubes3d --out data/cubes3d-train --count 1000 --seed 1      # one file: volumes.safetensors
    Cubes3dDataset("data/cubes3d-train", split="train")                     # what `inside train` reads

A folder holds `volumes.safetensors`: "image" float32 (N, 1, S, S, S), "cubes" uint8 (N, 2, S, S, S) (each
half's cube, so the ground truth of any z is known) and "pick" int64 (N,) (the half each item's z names).
Splits by index: train the first 80 %, val the next 10 %, test the last 10 %, all. The shipped 3-D example
(`configs/cubes3d-unet-inside.yaml`) trains on seed 1 and is tested on a folder of seed 1000.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["two_cubes", "draw_cubes", "write_cubes3d", "generate_cubes3d", "validate_cubes3d", "Cubes3dDataset", "CUBE",
           "VOLUMES_FILE", "SPLITS"]

CUBE = 4  # the cubes' side in voxels
VOLUMES_FILE = "volumes.safetensors"
SPLITS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0), "all": (0.0, 1.0)}


def draw_cubes(n: int, generator: torch.Generator, side: int = 16) -> tuple[Tensor, Tensor, Tensor]:
    """n volumes: images (n, 1, side, side, side), each half's cube mask (n, 2, side, side, side) 0/1, and
    the half z names (n,) (drawn first per item, so the draws are those of `two_cubes`)."""
    if side < 4 * CUBE:
        raise ValueError(f"side must be at least {4 * CUBE}, got {side}")
    x, cubes = torch.zeros(n, 1, side, side, side), torch.zeros(n, 2, side, side, side)
    pick = torch.zeros(n, dtype=torch.int64)
    for i in range(n):
        pick[i] = int(torch.randint(0, 2, (), generator=generator))
        for half in (0, 1):
            d, h = torch.randint(2, side - CUBE - 2, (2,), generator=generator).tolist()
            w = int(torch.randint(1, side // 2 - CUBE - 1, (), generator=generator)) + half * side // 2
            x[i, 0, d:d + CUBE, h:h + CUBE, w:w + CUBE] = 1
            cubes[i, half, d:d + CUBE, h:h + CUBE, w:w + CUBE] = 1
    x = x + 0.1 * torch.randn(x.shape, generator=generator)
    return x, cubes, pick


def two_cubes(n: int, generator: torch.Generator, side: int = 16, with_other: bool = False) -> tuple[Tensor, ...]:
    """n volumes: images (n, 1, side, side, side), target masks (same shape, 0/1), z (n, 2) one-hot; with
    `with_other`, also the other cube's masks (the target for the swapped z)."""
    x, cubes, pick = draw_cubes(n, generator, side)
    rows = torch.arange(n)
    y, other = cubes[rows, pick].unsqueeze(1), cubes[rows, 1 - pick].unsqueeze(1)
    z = torch.nn.functional.one_hot(pick, 2).float()
    return (x, y, z, other) if with_other else (x, y, z)


def write_cubes3d(out: str | Path, count: int, seed: int = 0, side: int = 16) -> Path:
    """Write `count` generated volumes to `out` (must not exist or be empty); same seed: same file."""
    from safetensors.torch import save

    from inside_core.data.cache import atomic_folder

    if not 1 <= count <= 100_000:
        raise ValueError(f"the count must be 1-100000 volumes, got {count}")
    if not 4 * CUBE <= side <= 64:
        raise ValueError(f"the side must be {4 * CUBE}-64 voxels, got {side}")
    x, cubes, pick = draw_cubes(count, torch.Generator().manual_seed(seed), side)
    # one metadata key: safetensors writes several in no fixed order, and a seed must give the same bytes
    meta = {"inside-cubes3d": json.dumps({"count": count, "seed": seed, "side": side}, sort_keys=True)}
    with atomic_folder(out) as folder:
        (folder / VOLUMES_FILE).write_bytes(save({"image": x.contiguous(), "cubes": cubes.to(torch.uint8),
                                                   "pick": pick}, metadata=meta))
    return Path(out)


def generate_cubes3d(out: str | Path, count: int, seed: int = 0, size: int = 16, progress: bool = False) -> Path:
    """The registry's generator (inside_core.data.registry): `write_cubes3d` with the defaults' names (one
    file, written in well under a second: no progress bar)."""
    return write_cubes3d(out, count, seed=seed, side=size)


def validate_cubes3d(root: str | Path) -> Any:
    """`inside data validate`'s report (inside_core.data.validate.Report) for a cubes3d folder: the one
    file read and checked as the loader reads it; a bad file is one problem line naming it."""
    from inside_core.data.errors import DataError
    from inside_core.data.validate import Problem, Report

    try:
        count = int(_read(Path(root))["image"].shape[0])
    except DataError as error:
        return Report("cubes3d", str(root), 0, [Problem(error.path, error.problem)])
    return Report("cubes3d", str(root), count, [])


def _read(root: Path) -> dict[str, Tensor]:
    """The folder's tensors, checked: one DataError line naming the file if anything is off."""
    from safetensors.torch import load

    from inside_core.data.errors import DataError
    from inside_core.data.files import read_bytes

    path = root / VOLUMES_FILE
    data = read_bytes(path, "volume", root)  # a regular file inside the folder, of bounded size
    try:
        tensors = load(data)
    except Exception as error:  # safetensors raises its own types: any failure is a bad file
        raise DataError(path, f"not a safetensors file ({str(error).splitlines()[0][:120]})") from None
    image, cubes, pick = (tensors.get(k) for k in ("image", "cubes", "pick"))
    if image is None or cubes is None or pick is None:
        raise DataError(path, f"needs tensors image, cubes and pick; has {', '.join(sorted(tensors)) or 'none'}")
    n = image.shape[0] if image.dim() == 5 else -1
    if (image.dim() != 5 or image.shape[1] != 1 or image.dtype != torch.float32 or cubes.dtype != torch.uint8
            or tuple(cubes.shape) != (n, 2, *image.shape[2:]) or tuple(pick.shape) != (n,) or n < 1):
        raise DataError(path, f"expected image float32 (N, 1, D, H, W), cubes uint8 (N, 2, D, H, W), pick (N,); got "
                        f"{tuple(image.shape)}, {tuple(cubes.shape)}, {tuple(pick.shape)}")
    if not bool(((pick == 0) | (pick == 1)).all()) or not bool(torch.isfinite(image).all()):
        raise DataError(path, "pick must be 0 or 1 and the images finite")
    return tensors


class Cubes3dDataset:
    """One split of a cubes3d folder; items {"image" (1, D, H, W), "z" (2,), "mask" (1, D, H, W) uint8,
    "meta"}. `cubes(i)` gives both halves' cubes (the ground truth of any z); `other(i)` the cube z does
    not name (the target when z is swapped)."""

    def __init__(self, root: str | Path, split: str = "train", **_: object):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        self.root, self.split = Path(root), split
        tensors = _read(self.root)
        n = tensors["image"].shape[0]
        low, high = SPLITS[split]
        self.indices = list(range(round(low * n), round(high * n)))
        self.images, self._cubes, self.pick = tensors["image"], tensors["cubes"], tensors["pick"]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        k = self.indices[i]
        pick = int(self.pick[k])
        return {"image": self.images[k], "z": torch.nn.functional.one_hot(self.pick[k], 2).float(),
                "mask": self._cubes[k, pick].unsqueeze(0), "meta": {"index": k, "pick": pick}}

    def cubes(self, i: int) -> Tensor:
        """(2, D, H, W) uint8: the cube in the first half along W, the one in the second."""
        return self._cubes[self.indices[i]]

    def other(self, i: int) -> Tensor:
        """(1, D, H, W): the cube z does not name."""
        k = self.indices[i]
        return self._cubes[k, 1 - int(self.pick[k])].unsqueeze(0)
