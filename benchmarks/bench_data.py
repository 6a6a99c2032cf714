"""Data speed benchmark: generators and loaders (first run builds the cache, second run reads it).

    python benchmarks/bench_data.py [--clevr-count 2000] [--acdc-patients 20] [--out /tmp/inside-bench]

Prints seconds per step. Uses a private cache folder under --out, so it measures cold and warm loads.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clevr-count", type=int, default=2000)
    parser.add_argument("--clevr-size", type=int, default=200)
    parser.add_argument("--load-size", type=int, default=96)
    parser.add_argument("--acdc-patients", type=int, default=20)
    parser.add_argument("--out", default="/tmp/inside-bench")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.environ["INSIDE_CACHE_DIR"] = str(out / "cache")
    import torch

    torch.set_num_threads(1)
    from inside_core.data import AcdcDataset, ClevrSegDataset, generate_acdc, generate_clevr_seg

    def timed(label, function):
        start = time.perf_counter()
        result = function()
        print(f"{label}: {time.perf_counter() - start:.2f} s", flush=True)
        return result

    timed(f"generate CLEVR-Seg {args.clevr_count} x {args.clevr_size}px",
          lambda: generate_clevr_seg(out / "clevr", args.clevr_count, seed=0, size=args.clevr_size, progress=False))
    for run in ("cold", "warm"):
        timed(f"load CLEVR-Seg all {args.clevr_count} at {args.load_size}px, quadrant ({run})",
              lambda: ClevrSegDataset(out / "clevr", "quadrant", "all", image_size=args.load_size))
    timed(f"generate ACDC phantom {args.acdc_patients} patients",
          lambda: generate_acdc(out / "acdc", args.acdc_patients, seed=0, progress=False))
    for run in ("cold", "warm"):
        dataset = timed(f"load ACDC all at 128px, 1.37 mm ({run})", lambda: AcdcDataset(out / "acdc", "all"))
    patient = dataset.patients[0]
    for run in ("cold", "warm"):
        timed(f"cine of one patient ({run})", lambda: dataset.cine(patient, 0))
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
