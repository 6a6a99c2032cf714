"""How much the label-free ACDC preprocessing costs: test Dice with the crop the loader makes now
(centre from the cine's motion, slice order from the affine) against the old crop made from the ground
truth (centre of mass of the ED labels, base = the half of the stack with more labelled area).

    python checkpoints/acdc-crop-check.py checkpoints/acdc-phantom-*.safetensors --data data/acdc-test

The old crop is recreated here only for this measurement (it is gone from inside_core.data.acdc); it
runs with a private cache folder so the two preprocessings never share cached arrays.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def label_geometry(folder: Path, info: dict, volumes: dict, zooms, affine=None) -> dict:
    """The old, ground-truth-driven geometry (what issue 14 removed); `affine` unused (the labels decide)."""
    from inside_core.data import acdc

    labels = acdc.load_labels(acdc.frame_path(folder, info["ED"], labels=True), volumes["ED"].shape)
    rows, cols, _ = np.nonzero(labels > 0)
    centre = (float(rows.mean()), float(cols.mean())) if rows.size else acdc.image_centre(labels.shape)
    area = (labels > 0).sum(axis=(0, 1)).astype(np.float64)
    n = len(area)
    reverse = bool(area[n - n // 2:].sum() > area[: n // 2].sum())
    return {"centre": centre, "reverse": reverse, "centre_from": "ED labels", "order_from": "label areas"}


def mean_dice(metrics: dict) -> float:
    return float(np.mean([v for s in metrics["dice"].values() for v in s.values()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True)
    parser.add_argument("--json", help="write the numbers here too")
    args = parser.parse_args()
    from inside_core.checkpoints import load_checkpoint
    from inside_core.data import acdc
    from inside_core.evaluate import evaluate_model

    rows = {}
    for checkpoint in args.checkpoints:
        model = load_checkpoint(checkpoint)
        new = evaluate_model(model, model.card, args.data, "all")
        original, cache = acdc.patient_geometry, os.environ.get("INSIDE_CACHE_DIR")
        with tempfile.TemporaryDirectory() as private:
            os.environ["INSIDE_CACHE_DIR"] = private
            acdc.patient_geometry = label_geometry
            try:
                old = evaluate_model(model, model.card, args.data, "all")
            finally:
                acdc.patient_geometry = original
                if cache is None:
                    os.environ.pop("INSIDE_CACHE_DIR", None)
                else:
                    os.environ["INSIDE_CACHE_DIR"] = cache
        name = model.card["name"]
        rows[name] = {"label_free": new["dice"], "label_centred": old["dice"],
                      "mean_label_free": round(mean_dice(new), 4), "mean_label_centred": round(mean_dice(old), 4)}
        free, centred = rows[name]["mean_label_free"], rows[name]["mean_label_centred"]
        print(f"{name}: mean Dice label-free {free:.3f}, label-centred (old) {centred:.3f}, "
              f"change {free - centred:+.3f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
