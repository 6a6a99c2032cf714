"""Writes docs/images/phantom-slices.png: the SYNTHETIC cardiac phantom at base, mid and apex, ED and ES,
as the models see it (label-free crop, 128 px at 1.37 mm), without and with its labels.

    python docs/images/phantom_figure.py [--out docs/images/phantom-slices.png] [--stats-seeds 0 5 --stats-patients 8]

Patients 1 and 3 of three phantom patients it generates itself (seed 0). It also prints the phantom's
intensity statistics against real SSFP (inside_core.data.phantom_stats) over those three patients, and with
--stats-seeds over --stats-patients fresh patients of each seed (the spread between patients is wide).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from inside_core.data import AcdcDataset, generate_acdc  # noqa: E402
from inside_core.data.phantom_stats import REAL_SSFP, intensity_statistics  # noqa: E402

COLOURS = {1: "#3fa7ff", 2: "#ffd23f", 3: "#ff4f4f"}  # RV, MYO, LV


def print_statistics(patients: int, seed: int, folder: Path | None = None) -> AcdcDataset:
    """Generate `patients` phantom patients of `seed` (into `folder`, else a temporary one) and print their
    intensity statistics against real SSFP; the dataset, as the models see it."""
    with tempfile.TemporaryDirectory() as temp:
        root = generate_acdc(Path(folder or temp) / "phantom", patients=patients, seed=seed, progress=False)
        data = AcdcDataset(root, split="all", image_size=128, spacing=1.37, use_cache=False)
    stats = intensity_statistics(data.images, data.masks)
    print(f"phantom ({patients} patients of seed {seed}, {stats['slices']} slices): blood CV {stats['blood_cv']:.3f} "
          f"(real SSFP ~{REAL_SSFP['blood_cv']}), myocardium / blood {stats['myo_blood_ratio']:.3f} "
          f"(real ~{REAL_SSFP['myo_blood_ratio']})")
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="docs/images/phantom-slices.png")
    parser.add_argument("--stats-seeds", type=int, nargs="*", default=[], metavar="SEED",
                        help="also print the statistics over --stats-patients patients of each of these seeds")
    parser.add_argument("--stats-patients", type=int, default=8)
    args = parser.parse_args()
    for seed in args.stats_seeds:
        print_statistics(args.stats_patients, seed)
    with tempfile.TemporaryDirectory() as temp:
        data = print_statistics(3, 0, Path(temp))
        patients = ["patient001", "patient003"]
        fig, axes = plt.subplots(4, 6, figsize=(12, 8.6), facecolor="black")
        for p, patient in enumerate(patients):
            for f, phase in enumerate(("ED", "ES")):
                items = sorted(data.indices(patient, phase), key=lambda i: data.meta[i]["slice_position"])
                labelled = [i for i in items if data.masks[i].any()]
                picks = {"base": labelled[0], "mid": items[len(items) // 2], "apex": labelled[-1]}
                for c, (where, i) in enumerate(picks.items()):
                    for overlay in (False, True):
                        ax = axes[2 * p + f, c + 3 * overlay]
                        ax.imshow(data.images[i], cmap="gray", vmin=0, vmax=1)
                        if overlay:
                            for label, colour in COLOURS.items():
                                if (data.masks[i] == label).any():
                                    ax.contour(data.masks[i] == label, levels=[0.5], colors=colour, linewidths=0.8)
                        meta = data.meta[i]
                        ax.set_title(f"{patient[-3:]} {meta['group']} {phase} {where} s={meta['slice_position']:.2f}",
                                     color="white", fontsize=7)
                        ax.axis("off")
        fig.suptitle("SYNTHETIC phantom (not patient data): base / mid / apex at ED and ES; right: labels "
                     "(RV blue, MYO yellow, LV red)", color="white", fontsize=9)
        fig.tight_layout()
        fig.savefig(args.out, dpi=80, facecolor="black")
    print(args.out, np.round(Path(args.out).stat().st_size / 1024), "KiB")


if __name__ == "__main__":
    main()
