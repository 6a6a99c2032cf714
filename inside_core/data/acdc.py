"""ACDC loader (Bernard et al., IEEE TMI 2018): real downloads and our synthetic phantom, same code.

Layout: `database/training/patientNNN/`, `training/patientNNN/`, or a folder of `patientNNN/` folders:

    Info.cfg                        "Key: value" lines: ED, ES (1-based frame numbers), Group, NbFrame, ...
    patientNNN_4d.nii.gz            cine (X, Y, Z, T)
    patientNNN_frameFF.nii.gz       ED and ES volumes
    patientNNN_frameFF_gt.nii.gz    labels 0 background, 1 RV, 2 MYO, 3 LV

Preprocessing uses only what a user has (images and header), never the labels; one code path,
`patient_geometry` (a dataset's patient) or `preprocess_volume` (an upload), serves training, evaluation,
the dashboard and uploads:

1. intensities with the header's scaling (scl_slope / scl_inter) applied by nibabel;
2. normalised per volume: v = clip((x - p0.5) / (p99.5 - p0.5), 0, 1), percentiles of that 3-D volume;
3. 2-D slices along the third NIfTI axis: array axis 0 = image rows, axis 1 = image columns;
4. resampled in-plane from the header's spacing (get_zooms) to `spacing` mm (bilinear for images,
   after a Gaussian anti-aliasing blur when shrinking; nearest neighbour for labels, so areas in mm^2 are
   kept up to boundary pixels), and cropped or zero-padded to `image_size` around ONE in-plane centre
   per patient (all slices and frames share it, so slices stack back into volumes):
   - the heart is what moves: the temporal standard deviation of the 4-D cine (`motion_centre`),
     averaged over slices and smoothed (10 mm), times a weak prior for the image centre (ACDC
     acquisitions are centred roughly on the heart); its peak, refined by the weighted centroid of the
     moving region within 40 mm. Without a cine the ED and ES frames give the motion; with a single
     3-D volume (an upload) the image centre is used.

Conditioning z = (phase, slice position) (inside_core.conditions.acdc_condition): phase 0 = ED, 1 = ES;
slice position = k / (n - 1) counted from the base (0) to the apex (1). Which end is the base comes
from the header's geometry (`slice_order`): the slice axis of the affine (its third column, in RAS mm)
is compared with the heart's long axis, which points from base to apex to the patient's left,
anterior and inferior (APEX_DIRECTION); if the axis points the other way the stack is stored apex
first. Short-axis stacks are double-oblique, so an axis-aligned affine (or one nearly perpendicular to
the long axis) carries no usable orientation; then the stored order is used, slice 0 = base (the order
of the ACDC files). The labels never decide it.

Splits are by patient, never by slice. If a labelled `testing/` folder exists, it is the test split and
`training/` is shuffled (numpy default_rng(seed)) into 90 % train / 10 % val; otherwise all patients are
shuffled and split 72 / 8 / 20 (train / val / test), as for CLEVR-Seg.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inside_core.conditions import acdc_condition, get_condition
from inside_core.data.acdc_volume import (  # re-exported: the public names of inside_core.data.acdc
    APEX_DIRECTION,
    decide_slice_order,
    image_centre,
    image_slice_order,
    load_affine,
    load_canonical,
    load_nifti,
    motion_centre,
    normalise_volume,
    preprocess_volume,
    resample_slice,
    size_tuple,
    slice_order,
    slice_positions,
    spacing_tuple,
)
from inside_core.data.cache import cached_arrays, decode_meta, encode_meta
from inside_core.data.errors import DataError
from inside_core.data.files import dataset_folder
from inside_core.data.safe_io import check_case_pixels

__all__ = [
    "APEX_DIRECTION", "LABELS", "decide_slice_order", "image_slice_order", "load_canonical", "PATIENT_PATTERN",
    "PHASES", "SPLITS", "AcdcDataset", "check_label_values",
    "cine_path", "find_patient_folders", "frame_path", "image_centre", "load_affine", "load_labels", "load_nifti",
    "motion_centre", "normalise_volume", "patient_files", "patient_geometry", "phase_value", "preprocess_patient",
    "preprocess_volume", "read_info", "resample_slice", "slice_order", "slice_positions", "split_patients",
]

SPLITS = ("train", "val", "test", "all")
PATIENT_PATTERN = re.compile(r"^patient\d+$")
LABELS = {0: "background", 1: "RV", 2: "MYO", 3: "LV"}
PHASES = ("ED", "ES")


# ----------------------------------------------------------------------------------------------- files
def find_patient_folders(root: str | Path) -> dict[str, list[Path]]:
    """Patient folders by subset: {"training": [...], "testing": [...]} or {"all": [...]} for a flat folder."""
    root = dataset_folder(root)  # its files may not link outside it
    if not root.exists():
        raise DataError(root, "folder not found")
    for base in (root, root / "database", root / "ACDC" / "database"):
        subsets = {name: _patients_in(base / name) for name in ("training", "testing") if (base / name).is_dir()}
        subsets = {name: folders for name, folders in subsets.items() if folders}
        if subsets:
            return subsets
    flat = _patients_in(root)
    if flat:
        return {"all": flat}
    if PATIENT_PATTERN.match(root.name) and (root / "Info.cfg").exists():
        return {"all": [root]}
    raise DataError(root, "no ACDC patient folders (patientNNN/) found, nor training/ or testing/ holding them")


def _patients_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and PATIENT_PATTERN.match(p.name))


def read_info(folder: Path) -> dict:
    """Info.cfg as a dict; ED, ES (and NbFrame when present) as int, Height/Weight as float."""
    from inside_core.data.files import finite_number, read_text

    path = folder / "Info.cfg"
    if not path.exists():
        raise DataError(path, "Info.cfg missing")
    text = read_text(path, "text", root=folder)  # a regular file in the folder, bounded (issue 23)
    info: dict = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    for key in ("ED", "ES"):
        if key not in info:
            raise DataError(path, f"Info.cfg has no {key} line")
    for key in ("ED", "ES", "NbFrame"):
        if key in info:
            try:
                number = finite_number(info[key])
            except ValueError:
                raise DataError(path, f"Info.cfg {key} is not a number: {info[key][:40]!r}") from None
            if not (number.is_integer() and 0 <= number <= 9999):
                raise DataError(path, f"Info.cfg {key} must be a frame number 0-9999, got {number:g}")
            info[key] = int(number)
    for key in ("Height", "Weight"):
        try:
            info[key] = finite_number(info[key])
        except (KeyError, ValueError):
            pass  # optional: an unreadable or infinite one stays text
    return info


def frame_path(folder: Path, frame: int, labels: bool = False) -> Path:
    return folder / f"{folder.name}_frame{frame:02d}{'_gt' if labels else ''}.nii.gz"


def cine_path(folder: Path) -> Path:
    return folder / f"{folder.name}_4d.nii.gz"


def load_labels(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Labels uint8 in the canonical in-plane frame (as their image), checked: same shape as the image,
    values in {0, 1, 2, 3}."""
    data, _, _, _ = load_canonical(path)
    if data.shape != shape:
        raise DataError(path, f"label shape {data.shape} differs from the image shape {shape}")
    check_label_values(data, path)
    return data.astype(np.uint8)


def check_label_values(data: np.ndarray, path: Path) -> None:
    """DataError unless every value is one of 0, 1, 2, 3."""
    values = np.unique(data)
    bad = [v for v in values if v not in LABELS]
    if bad:
        shown = ", ".join(f"{v:g}" for v in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise DataError(path, f"label values outside {{0, 1, 2, 3}}: {shown}")


# ------------------------------------------------------------------------------------------ geometry
def patient_geometry(folder: Path, info: dict, volumes: dict[str, np.ndarray],
                     zooms: tuple[float, ...], affine: np.ndarray | None) -> dict:
    """The label-free crop centre and slice order of one patient: {"centre", "reverse", "centre_from",
    "order_from"}, in the canonical in-plane frame. The motion comes from the 4-D cine if present, else
    from the ED and ES frames; the slice order from `decide_slice_order` (images, else affine)."""
    frames, centre_from = np.stack([volumes[p] for p in PHASES], axis=3), "ED/ES std"
    if cine_path(folder).exists():
        cine, cine_zooms, _, _ = load_canonical(cine_path(folder))
        if cine.ndim == 4 and cine.shape[:3] == volumes["ED"].shape:
            frames, centre_from = cine, "cine temporal std"
    centre = motion_centre(frames, zooms)
    reverse, order_from = decide_slice_order(affine, frames, zooms, centre)
    return {"centre": centre, "reverse": reverse, "centre_from": centre_from, "order_from": order_from}


def phase_value(frame: int, ed: int, es: int, num_frames: int) -> float:
    """Continuous phase of a cine frame: 0 at ED, 1 at ES, linear from ED to ES and back to the next ED.

    With d = (frame - ED) mod T and d_ES = (ES - ED) mod T: d / d_ES while d <= d_ES, else
    1 - (d - d_ES) / (T - d_ES). Only ED and ES have ground truth; frames between are interpolated.
    """
    d = (frame - ed) % num_frames
    d_es = (es - ed) % num_frames
    if d_es == 0:
        return 0.0
    if d <= d_es:
        return d / d_es
    return 1.0 - (d - d_es) / (num_frames - d_es)


# ------------------------------------------------------------------------------------------- patient
def preprocess_patient(folder: Path, image_size: int | tuple[int, int],
                       spacing: float | tuple[float, float] | None) -> dict[str, np.ndarray]:
    """ED and ES slices of one patient: images (2n, H, W) float32, masks uint8, z (2n, 2), meta."""
    info = read_info(folder)
    size = size_tuple(image_size)
    volumes, labels, all_zooms, affines, orientation = {}, {}, {}, {}, ""
    for phase in PHASES:
        frame = info[phase]
        volumes[phase], all_zooms[phase], affines[phase], orientation = load_canonical(frame_path(folder, frame))
        if volumes[phase].ndim != 3:
            raise DataError(frame_path(folder, frame), f"expected a 3-D volume, got shape {volumes[phase].shape}")
        labels[phase] = load_labels(frame_path(folder, frame, labels=True), volumes[phase].shape)
    if volumes["ED"].shape != volumes["ES"].shape:
        raise DataError(frame_path(folder, info["ES"]), f"shape {volumes['ES'].shape} differs from ED's "
                        f"{volumes['ED'].shape}")
    zooms = all_zooms["ED"]
    target = spacing_tuple(spacing, zooms)
    num_slices = volumes["ED"].shape[2]
    check_case_pixels(2 * num_slices, size, frame_path(folder, info["ED"]))  # ED and ES slices once resized
    geometry = patient_geometry(folder, info, volumes, zooms, affines["ED"])  # images and headers only
    reverse, centre = geometry["reverse"], geometry["centre"]
    positions = slice_positions(num_slices, reverse)
    images, masks, zs, metas = [], [], [], []
    for phase_index, phase in enumerate(PHASES):
        volume = normalise_volume(volumes[phase])
        for k in range(num_slices):
            images.append(resample_slice(volume[:, :, k], zooms[:2], target, centre, size, labels=False))
            masks.append(resample_slice(labels[phase][:, :, k], zooms[:2], target, centre, size, labels=True))
            zs.append(acdc_condition(float(phase_index), positions[k]))
            metas.append({
                "patient": folder.name, "frame": info[phase], "phase": phase, "slice_index": k,
                "num_slices": num_slices, "slice_position": positions[k],
                "spacing": [target[0], target[1], float(zooms[2])], "native_spacing": list(zooms[:3]),
                "group": str(info.get("Group", "unknown")), "base_at_end": bool(reverse), "centre": list(centre),
                "centre_from": geometry["centre_from"], "order_from": geometry["order_from"],
                "orientation": orientation,
            })
    return {
        "images": np.stack(images), "masks": np.stack(masks),
        "z": np.stack(zs).astype(np.float32), "meta": encode_meta(metas),
    }


def patient_files(folder: Path) -> list[Path]:
    """Source files of the ED/ES preprocessing, and the cine that places the crop (for the cache key)."""
    info = read_info(folder)
    files = [folder / "Info.cfg"]
    for phase in PHASES:
        files += [frame_path(folder, info[phase]), frame_path(folder, info[phase], labels=True)]
    for path in files[1:]:
        if not path.exists():
            phase = "ED" if f"_frame{info['ED']:02d}" in path.name else "ES"
            kind = "label" if path.name.endswith("_gt.nii.gz") else "image"
            raise DataError(path, f"{phase} {kind} file missing (Info.cfg says {phase}: {info[phase]})")
    if cine_path(folder).exists():  # the crop centre comes from the cine's motion
        files.append(cine_path(folder))
    return files


def split_patients(subsets: dict[str, list[Path]], split: str, seed: int) -> list[Path]:
    """Patient-level split (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    everything = sorted(sum(subsets.values(), []), key=lambda p: (p.name, str(p)))
    if split == "all":
        return everything
    rng = np.random.default_rng(seed)
    testing = subsets.get("testing", [])
    if testing and all(frame_path(p, read_info(p)["ED"], labels=True).exists() for p in testing):
        if split == "test":
            return sorted(testing)
        training = sorted(subsets.get("training", []))
        order = [training[i] for i in rng.permutation(len(training))]
        n_val = max(1, round(0.1 * len(order))) if len(order) > 1 else 0
        chosen = order[n_val:] if split == "train" else order[:n_val]
        return sorted(chosen)
    order = [everything[i] for i in rng.permutation(len(everything))]
    n = len(order)
    n_test = round(0.2 * n) if n >= 3 else 0
    n_val = max(1, round(0.08 * n)) if n >= 3 else 0
    parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    return sorted(parts[split])


# -------------------------------------------------------------------------------------------- dataset
class AcdcDataset(torch.utils.data.Dataset):
    """2-D short-axis slices of the ED and ES frames of the patients of one split, held in memory.

    Item: dict(image float (1, H, W) in [0, 1], z float (2,) = (phase, slice position), mask long (H, W)
    in {0, 1, 2, 3}, meta dict(patient, frame, phase "ED"/"ES", slice_index (NIfTI order), num_slices,
    slice_position, spacing (row_mm, col_mm, slice_mm) after resampling, group, ...)).
    Whole-split arrays: `.images` float32 (N, H, W), `.masks` uint8 (N, H, W), `.z` float32 (N, 2).
    Preprocessed patients are cached on disk (inside_core.data.cache), keyed by files and settings.
    """

    cond_dim = get_condition("phase_slice").cond_dim

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        image_size: int | tuple[int, int] = 128,
        spacing: float | tuple[float, float] | None = 1.37,
        seed: int = 0,
        use_cache: bool = True,
        progress: bool = False,
        threads: int = 2,
    ):
        self.root = Path(root)
        self.split = split
        self.image_size = size_tuple(image_size)
        self.spacing = spacing
        self.seed = int(seed)
        self.use_cache = use_cache
        self.patient_folders = split_patients(find_patient_folders(root), split, self.seed)
        if not self.patient_folders:
            raise DataError(self.root, f"the {split} split has no patients")
        # "preprocessing" names the label-free crop and slice order, so older cached arrays are not reused
        settings = {"image_size": self.image_size, "spacing": spacing,
                    "preprocessing": "canonical-frame-image-order-v3"}
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        def patient(folder: Path) -> dict:
            return cached_arrays("acdc-patient", {**settings, "folder": str(folder.resolve())}, patient_files(folder),
                                 lambda: preprocess_patient(folder, self.image_size, spacing), use_cache)

        # patients in `threads` threads (nibabel's gunzip, numpy and scipy release the GIL for much of the work:
        # the page's first ACDC sample waits for its split); the arrays come back in the folders' order
        with ThreadPoolExecutor(max(1, threads)) as pool:
            parts = list(tqdm(pool.map(patient, self.patient_folders), total=len(self.patient_folders),
                              desc=f"ACDC {split}", disable=not progress))
        self.images = np.concatenate([p["images"] for p in parts])
        self.masks = np.concatenate([p["masks"] for p in parts])
        self.z = np.concatenate([p["z"] for p in parts])
        self.meta = sum((decode_meta(p["meta"]) for p in parts), [])
        self.patients = [folder.name for folder in self.patient_folders]
        self._folders = {folder.name: folder for folder in self.patient_folders}

    def __len__(self) -> int:
        return len(self.meta)

    def keep_patients(self, count: int) -> None:
        """Keep the first `count` patients (by folder name) only: fewer labelled patients, same split."""
        if count < 1:
            raise ValueError(f"train_patients must be at least 1, got {count}")
        kept = set(self.patients[:count])
        chosen = np.array([m["patient"] in kept for m in self.meta])
        self.images, self.masks, self.z = self.images[chosen], self.masks[chosen], self.z[chosen]
        self.meta = [m for m, keep in zip(self.meta, chosen, strict=True) if keep]
        self.patient_folders = self.patient_folders[:count]
        self.patients = self.patients[:count]
        self._folders = {folder.name: folder for folder in self.patient_folders}

    def __getitem__(self, index: int) -> dict:
        return {
            "image": torch.from_numpy(self.images[index]).unsqueeze(0),
            "z": torch.from_numpy(self.z[index]),
            "mask": torch.from_numpy(self.masks[index]).long(),
            "meta": dict(self.meta[index]),
        }

    def indices(self, patient: str, phase: str | None = None) -> list[int]:
        """Item indices of one patient (and phase), in slice_index order."""
        return [
            i for i, m in enumerate(self.meta) if m["patient"] == patient and (phase is None or m["phase"] == phase)
        ]

    def cine(self, patient: str, slice_index: int) -> list[dict]:
        """Every frame of the 4-D cine at one slice, preprocessed like the ED/ES items (same crop).

        Each dict: image float (1, H, W), z = (phase_value, slice position), phase_value (0 = ED, 1 = ES,
        interpolated between: no ground truth there), frame (1-based), mask long (H, W) at ED and ES, else None.
        """
        if patient not in self._folders:
            raise KeyError(f"patient {patient!r} is not in the {self.split} split")
        folder = self._folders[patient]
        info = read_info(folder)
        items = self.indices(patient)
        first = self.meta[items[0]]
        if not 0 <= slice_index < first["num_slices"]:
            raise IndexError(f"slice_index {slice_index} out of range 0..{first['num_slices'] - 1}")
        settings = {"image_size": self.image_size, "spacing": self.spacing, "centre": first["centre"],
                    "folder": str(folder.resolve())}
        arrays = cached_arrays(
            "acdc-cine", settings, [cine_path(folder), folder / "Info.cfg"],
            lambda: self._preprocess_cine(folder, first), self.use_cache,
        )
        frames = arrays["frames"]  # (T, slices, H, W)
        position = first["slice_position"] if first["slice_index"] == slice_index else None
        if position is None:
            position = self.meta[items[slice_index]]["slice_position"]
        masks = {self.meta[i]["frame"]: self.masks[i] for i in items if self.meta[i]["slice_index"] == slice_index}
        num_frames = frames.shape[0]
        result = []
        for t in range(num_frames):
            frame = t + 1
            value = phase_value(frame, info["ED"], info["ES"], num_frames)
            mask = masks.get(frame)
            result.append({
                # a copy: a view would keep the whole cine (every slice) alive with this one slice's frames
                "image": torch.from_numpy(frames[t, slice_index].copy()).unsqueeze(0),
                "z": torch.from_numpy(acdc_condition(value, position)),
                "phase_value": value, "frame": frame,
                "mask": None if mask is None else torch.from_numpy(mask).long(),
            })
        return result

    def _preprocess_cine(self, folder: Path, first_meta: dict) -> dict[str, np.ndarray]:
        data, zooms, _, _ = load_canonical(cine_path(folder))
        if data.ndim != 4:
            raise DataError(cine_path(folder), f"expected a 4-D cine (X, Y, Z, T), got shape {data.shape}")
        target = spacing_tuple(self.spacing, zooms)
        centre = tuple(first_meta["centre"])
        frames = np.zeros((data.shape[3], data.shape[2], *self.image_size), np.float32)
        for t in range(data.shape[3]):
            volume = normalise_volume(data[..., t])
            for k in range(data.shape[2]):
                frames[t, k] = resample_slice(volume[:, :, k], zooms[:2], target, centre, self.image_size, False)
        return {"frames": frames}


def load_split(root: str | Path, split: str, *, image_size: int | None = None, spacing: float | None = None,
               seed: int = 0, **_: Any) -> AcdcDataset:
    """The registry's loader (inside_core.data.registry): slices at `image_size` px (None: 128) and
    `spacing` mm (None: the dataset's default)."""
    options = {} if spacing is None else {"spacing": spacing}
    return AcdcDataset(root, split=split, image_size=image_size or 128, seed=seed, **options)


def card_fields(data_config: dict) -> dict[str, Any]:
    """What a model card records about ACDC data: the in-plane spacing its slices were resampled to (mm)."""
    return {"spacing": data_config.get("spacing", 1.37)}
