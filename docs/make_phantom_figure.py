"""docs/images/phantom-ssfp.png and the phantom's numbers in docs/datasets.md: a generated patient's ED
slices (base, mid, apex) as the model sees them, and the intensity statistics of a phantom folder.

    python docs/make_phantom_figure.py [ACDC_FOLDER]     (default data/acdc-eval; SYNTHETIC phantom only)
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from inside_core.data.acdc import AcdcDataset  # noqa: E402
from inside_core.data.phantom_stats import REAL_SSFP, intensity_statistics  # noqa: E402


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "data/acdc-eval")
    dataset = AcdcDataset(root, split="all")
    stats = intensity_statistics(dataset.images, dataset.masks)
    print(f"{root} ({len(dataset.patients)} patients, {stats['slices']} slices measured): blood CV "
          f"{stats['blood_cv']:.3f} (real SSFP ~{REAL_SSFP['blood_cv']}), myocardium / blood "
          f"{stats['myo_blood_ratio']:.3f} (real ~{REAL_SSFP['myo_blood_ratio']})")
    patients = dataset.patients[:3]
    figure, axes = plt.subplots(len(patients), 3, figsize=(7.5, 2.6 * len(patients)), squeeze=False)
    for row, patient in enumerate(patients):
        indices = dataset.indices(patient, "ED")
        by_position = sorted(indices, key=lambda i: dataset.meta[i]["slice_position"])
        picks = [by_position[len(by_position) // 8], by_position[len(by_position) // 2], by_position[-2]]
        for col, (index, where) in enumerate(zip(picks, ("base", "mid", "apex"), strict=True)):
            axes[row, col].imshow(dataset.images[index], cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_title(f"{patient} {where} (s = {dataset.meta[index]['slice_position']:.2f})", fontsize=8)
            axes[row, col].axis("off")
    figure.suptitle("SYNTHETIC phantom (not patient data), ED, model input: 128 px at 1.37 mm", fontsize=9)
    figure.tight_layout()
    out = Path("docs/images/phantom-ssfp.png")
    figure.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
