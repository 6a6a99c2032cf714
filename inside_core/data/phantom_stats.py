"""How much a cardiac dataset looks like cine SSFP, in two numbers measured where the model looks.

On the preprocessed slices (the model's input: 1.37 mm, intensities scaled 0..1 per volume), over every
slice whose LV cavity and myocardium are large enough to measure (>= 200 and >= 100 pixels):

    blood_cv         standard deviation / mean of the LV cavity label (real SSFP: about 0.25; the label
                     includes papillary muscles and trabeculations, and flow makes the pool uneven)
    myo_blood_ratio  mean of the myocardium / mean of the LV cavity (real SSFP: about 0.24)

The median over slices is reported. Real values: shared/design/calibration.md (third round).
"""

from __future__ import annotations

import numpy as np

__all__ = ["REAL_SSFP", "intensity_statistics"]

REAL_SSFP = {"blood_cv": 0.25, "myo_blood_ratio": 0.24}


def intensity_statistics(images: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """{"blood_cv", "myo_blood_ratio", "slices"} of preprocessed slices (N, H, W) and labels (N, H, W)."""
    cv, ratio = [], []
    for image, mask in zip(images, masks, strict=True):
        blood, myo = image[mask == 3], image[mask == 2]
        if blood.size >= 200 and myo.size >= 100 and blood.mean() > 0:
            cv.append(float(blood.std() / blood.mean()))
            ratio.append(float(myo.mean() / blood.mean()))
    if not cv:
        return {"blood_cv": float("nan"), "myo_blood_ratio": float("nan"), "slices": 0}
    return {"blood_cv": float(np.median(cv)), "myo_blood_ratio": float(np.median(ratio)), "slices": len(cv)}
