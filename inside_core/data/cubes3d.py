"""A generated 3-D task whose target only z can name: two cubes per volume, z picks one.

Each volume (1, S, S, S) holds two bright 4-voxel cubes at random places, one in each half along the last
axis (W), plus Gaussian noise (sd 0.1). z is one-hot over (first half, second half); the target mask is the
cube in the half z names. From the image alone the two cubes are alike, so a network must use z, and *where*
(a spatial attention: INSIDE) is the information z carries. Drawn in memory from a seeded generator: the
shipped 3-D example (`checkpoints/cubes3d.py`) and the tests use it.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["two_cubes", "CUBE"]

CUBE = 4  # the cubes' side in voxels


def two_cubes(n: int, generator: torch.Generator, side: int = 16, with_other: bool = False) -> tuple[Tensor, ...]:
    """n volumes: images (n, 1, side, side, side), target masks (same shape, 0/1), z (n, 2) one-hot; with
    `with_other`, also the other cube's masks (the target for the swapped z)."""
    if side < 4 * CUBE:
        raise ValueError(f"side must be at least {4 * CUBE}, got {side}")
    x, y, z = torch.zeros(n, 1, side, side, side), torch.zeros(n, 1, side, side, side), torch.zeros(n, 2)
    other = torch.zeros_like(y)
    for i in range(n):
        pick = int(torch.randint(0, 2, (), generator=generator))
        for half in (0, 1):
            d, h = torch.randint(2, side - CUBE - 2, (2,), generator=generator).tolist()
            w = int(torch.randint(1, side // 2 - CUBE - 1, (), generator=generator)) + half * side // 2
            x[i, 0, d:d + CUBE, h:h + CUBE, w:w + CUBE] = 1
            (y if half == pick else other)[i, 0, d:d + CUBE, h:h + CUBE, w:w + CUBE] = 1
        z[i, pick] = 1
    x = x + 0.1 * torch.randn(x.shape, generator=generator)
    return (x, y, z, other) if with_other else (x, y, z)
