"""What the canonical frame and the image rule for base/apex cost: preprocessing one ACDC patient (both
phases, the cine's motion for the crop) with them, against the same code with both switched off (stored
voxel order, the affine's slice order), interleaved in one run. Target (issue 20): ratio <= 1.2.

    python benchmarks/bench_acdc_preprocess.py [--patients 4] [--repeats 3]      (SYNTHETIC phantom patients)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from inside_core.data import acdc, acdc_volume, generate_acdc

    def stored_order(data, zooms, affine):
        return data, zooms, affine, "stored"

    def affine_only(affine, frames, zooms, centre):
        return acdc_volume.slice_order(affine)

    with tempfile.TemporaryDirectory() as temp:
        root = generate_acdc(Path(temp) / "phantom", patients=args.patients, seed=5, progress=False)
        folders = sorted((root / "training").iterdir())
        times: dict[str, list[float]] = {"new": [], "old": []}
        for _ in range(args.repeats):
            for folder in folders:
                for kind in ("new", "old"):
                    patches = [] if kind == "new" else [
                        mock.patch.object(acdc_volume, "reorient", stored_order),
                        mock.patch.object(acdc, "decide_slice_order", affine_only)]
                    for patch in patches:
                        patch.start()
                    start = time.perf_counter()
                    acdc.preprocess_patient(folder, 128, 1.37)
                    times[kind].append(time.perf_counter() - start)
                    for patch in patches:
                        patch.stop()
    new, old = np.array(times["new"]), np.array(times["old"])
    ratios = new / old
    print(f"preprocess one patient (ED + ES + cine motion), {len(folders)} phantom patients x {args.repeats}:")
    print(f"  with canonical frame + image rule: median {np.median(new):.3f} s")
    print(f"  stored order + affine rule:        median {np.median(old):.3f} s")
    print(f"  ratio new / old: median {np.median(ratios):.3f} (quartiles {np.percentile(ratios, 25):.3f}"
          f"-{np.percentile(ratios, 75):.3f}); target <= 1.2")


if __name__ == "__main__":
    main()
