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

import nibabel as nib
import numpy as np
import torch
from scipy.ndimage import gaussian_filter, map_coordinates

from inside_core.conditions import acdc_condition, get_condition, slice_position
from inside_core.data.cache import cached_arrays, decode_meta, encode_meta
from inside_core.data.errors import DataError

SPLITS = ("train", "val", "test", "all")
PATIENT_PATTERN = re.compile(r"^patient\d+$")
LABELS = {0: "background", 1: "RV", 2: "MYO", 3: "LV"}
PHASES = ("ED", "ES")


# ----------------------------------------------------------------------------------------------- files
def find_patient_folders(root: str | Path) -> dict[str, list[Path]]:
    """Patient folders by subset: {"training": [...], "testing": [...]} or {"all": [...]} for a flat folder."""
    root = Path(root).expanduser()
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
    path = folder / "Info.cfg"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataError(path, "Info.cfg missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"unreadable Info.cfg ({error})") from None
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
                info[key] = int(float(info[key]))
            except ValueError:
                raise DataError(path, f"Info.cfg {key} is not a number: {info[key]!r}") from None
    for key in ("Height", "Weight"):
        try:
            info[key] = float(info[key])
        except (KeyError, ValueError):
            pass
    return info


def frame_path(folder: Path, frame: int, labels: bool = False) -> Path:
    return folder / f"{folder.name}_frame{frame:02d}{'_gt' if labels else ''}.nii.gz"


def cine_path(folder: Path) -> Path:
    return folder / f"{folder.name}_4d.nii.gz"


def load_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """(data float32 with the header's scaling applied, zooms) or a one-line DataError."""
    from inside_core.data.safe_io import check_nifti_header, check_spacing

    if not path.exists():
        raise DataError(path, "NIfTI file missing")
    try:
        image = nib.load(path)  # the header only: the data is read below, once its size is known
    except Exception as error:  # nibabel, gzip and zlib raise many types for damaged files
        raise DataError(path, f"unreadable or truncated NIfTI header ({type(error).__name__}: {error})") from None
    check_nifti_header(image.header, path)  # shape x dtype within inside_core.limits, before reading
    zooms = tuple(float(z) for z in image.header.get_zooms())
    check_spacing(zooms, path)
    try:
        data = image.get_fdata(dtype=np.float32)
    except Exception as error:
        raise DataError(path, f"unreadable or truncated NIfTI ({type(error).__name__}: {error})") from None
    if not np.all(np.isfinite(data)):
        raise DataError(path, "NIfTI holds NaN or infinite values")
    return data, zooms


def load_labels(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Labels uint8, checked: same shape as the image, values in {0, 1, 2, 3}."""
    data, _ = load_nifti(path)
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
# the heart's long axis from base to apex in RAS world coordinates (nibabel's affine): left, anterior,
# inferior; roughly, and it only has to tell the two ends of a stack apart
APEX_DIRECTION = np.array([-0.6, 0.55, -0.58]) / np.linalg.norm([-0.6, 0.55, -0.58])


def slice_order(affine: np.ndarray | None) -> tuple[bool, str]:
    """(reverse, how): reverse is True when the LAST stored slice is the base.

    From the affine's slice axis against APEX_DIRECTION when the affine is oblique (a real short-axis
    orientation); otherwise ("stack order") the stored order, slice 0 = base.
    """
    if affine is None or not np.all(np.isfinite(affine)):
        return False, "stack order (no affine)"
    axes = np.asarray(affine, dtype=np.float64)[:3, :3]
    norms = np.linalg.norm(axes, axis=0)
    if np.any(norms <= 0):
        return False, "stack order (degenerate affine)"
    step = axes[:, 2] / norms[2]
    if np.max(np.abs(axes / norms)) > 0.995:  # every axis along a world axis: no short-axis orientation
        return False, "stack order (axis-aligned affine)"
    alignment = float(step @ APEX_DIRECTION)
    if abs(alignment) < 0.3:
        return False, "stack order (slice axis across the long axis)"
    return alignment < 0, "affine"


def image_centre(shape: tuple[int, ...]) -> tuple[float, float]:
    """In-plane (row, column) centre of an image."""
    return (shape[0] - 1) / 2, (shape[1] - 1) / 2


def motion_centre(frames: np.ndarray, zooms: tuple[float, ...]) -> tuple[float, float]:
    """In-plane (row, column) centre of what moves in a cine (X, Y, Z, T), T >= 2; no labels needed.

    Temporal standard deviation per voxel (intensities normalised over the whole cine), mean over
    slices, Gaussian smoothing of 10 mm, times a broad Gaussian prior around the image centre (sd 30 %
    of the field of view); from its peak, the centroid of the map above half the peak within 40 mm.
    Falls back to the image centre when nothing moves.
    """
    if frames.ndim == 3:
        frames = frames[:, :, None]
    shape = frames.shape[:2]
    if frames.ndim != 4 or frames.shape[3] < 2:
        return image_centre(shape)
    low, high = np.percentile(frames, [0.5, 99.5])
    scale = max(float(high - low), 1e-6)
    motion = (frames.std(axis=3, dtype=np.float64) / scale).mean(axis=2)
    row_mm, col_mm = float(zooms[0]), float(zooms[1])
    motion = gaussian_filter(motion, (10.0 / row_mm, 10.0 / col_mm))
    rows = (np.arange(shape[0]) - (shape[0] - 1) / 2) * row_mm
    cols = (np.arange(shape[1]) - (shape[1] - 1) / 2) * col_mm
    r, c = np.meshgrid(rows, cols, indexing="ij")
    prior = np.exp(-0.5 * ((r / (0.3 * shape[0] * row_mm)) ** 2 + (c / (0.3 * shape[1] * col_mm)) ** 2))
    score = motion * prior
    if not np.isfinite(score).all() or score.max() <= score.min() + 1e-9:
        return image_centre(shape)
    peak = np.unravel_index(int(np.argmax(score)), shape)
    near = np.hypot(r - r[peak], c - c[peak]) <= 40.0
    weights = np.where(near, np.clip(score - 0.5 * score[peak], 0, None), 0.0)
    if weights.sum() <= 0:
        return float(peak[0]), float(peak[1])
    grid_r, grid_c = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return float((grid_r * weights).sum() / weights.sum()), float((grid_c * weights).sum() / weights.sum())


def load_affine(path: Path) -> np.ndarray | None:
    """The voxel-to-world affine of a NIfTI file (header only), or None if it cannot be read."""
    try:
        return np.asarray(nib.load(path).affine, dtype=np.float64)
    except Exception:  # the data itself is read (and its errors reported) by load_nifti
        return None


def patient_geometry(folder: Path, info: dict, volumes: dict[str, np.ndarray],
                     zooms: tuple[float, ...]) -> dict:
    """The label-free crop centre and slice order of one patient: {"centre", "reverse", "centre_from",
    "order_from"}. Centre from the 4-D cine if present, else from the ED and ES frames."""
    if cine_path(folder).exists():
        cine, cine_zooms = load_nifti(cine_path(folder))
        if cine.ndim == 4 and cine.shape[:3] == volumes["ED"].shape:
            centre, centre_from = motion_centre(cine, cine_zooms), "cine temporal std"
        else:
            centre, centre_from = motion_centre(np.stack([volumes[p] for p in PHASES], axis=3), zooms), "ED/ES std"
    else:
        centre, centre_from = motion_centre(np.stack([volumes[p] for p in PHASES], axis=3), zooms), "ED/ES std"
    reverse, order_from = slice_order(load_affine(frame_path(folder, info["ED"])))
    return {"centre": centre, "reverse": reverse, "centre_from": centre_from, "order_from": order_from}


def preprocess_volume(volume: np.ndarray, zooms: tuple[float, ...], affine: np.ndarray | None = None,
                      spacing: float | tuple[float, float] | None = 1.37, image_size=128) -> dict:
    """A user's volume (X, Y, Z) or cine (X, Y, Z, T), preprocessed exactly like the dataset's slices.

    Returns {"images": (Z, H, W) float32 of the first frame, "slice_position": [base 0 .. apex 1 per
    stored slice], "centre": (row, column) in input pixels, "reverse", "centre_from", "order_from"}.
    For the dashboard's uploads: the crop centre from the cine's motion, or the image centre for 3-D.
    """
    if volume.ndim == 2:
        volume = volume[:, :, None]
    if volume.ndim == 4:
        centre, centre_from = motion_centre(volume, zooms), "cine temporal std"
        first = volume[..., 0]
    else:
        centre, centre_from = image_centre(volume.shape), "image centre"
        first = volume
    reverse, order_from = slice_order(affine)
    size = _size_tuple(image_size)
    target = _spacing_tuple(spacing, zooms)
    normalised = normalise_volume(first)
    images = np.stack([resample_slice(normalised[:, :, k], zooms[:2], target, centre, size, labels=False)
                       for k in range(first.shape[2])])
    return {"images": images, "slice_position": slice_positions(first.shape[2], reverse), "centre": centre,
            "reverse": reverse, "centre_from": centre_from, "order_from": order_from}


def slice_positions(num_slices: int, reverse: bool) -> list[float]:
    """Position of every stored slice from base 0 to apex 1."""
    return [slice_position(num_slices - 1 - k if reverse else k, num_slices) for k in range(num_slices)]


def normalise_volume(volume: np.ndarray) -> np.ndarray:
    """clip((x - p0.5) / (p99.5 - p0.5), 0, 1) over the whole volume."""
    low, high = np.percentile(volume, [0.5, 99.5])
    return np.clip((volume - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def resample_slice(
    plane: np.ndarray, zooms: tuple[float, float], spacing: tuple[float, float], centre: tuple[float, float],
    size: tuple[int, int], labels: bool,
) -> np.ndarray:
    """Resample a (rows, columns) slice to `spacing` mm on a `size` grid centred at input pixel `centre`.

    Output pixel i sits at input coordinate centre + (i - (size - 1) / 2) * spacing / zoom (per axis);
    outside the input: 0. Labels: nearest neighbour; images: bilinear after anti-aliasing when shrinking.
    """
    steps = [spacing[a] / zooms[a] for a in range(2)]
    grid = np.meshgrid(
        *[centre[a] + (np.arange(size[a]) - (size[a] - 1) / 2) * steps[a] for a in range(2)], indexing="ij"
    )
    if labels:
        return map_coordinates(plane, grid, order=0, mode="constant", cval=0).astype(np.uint8)
    sigma = [max(0.0, (step - 1) / 2) for step in steps]
    if max(sigma) > 0:
        plane = gaussian_filter(plane, sigma)
    return map_coordinates(plane, grid, order=1, mode="constant", cval=0.0).astype(np.float32)


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
def _size_tuple(image_size) -> tuple[int, int]:
    if image_size is None:
        raise ValueError("ACDC slices need an image_size (e.g. 128): volumes differ in size")
    if isinstance(image_size, int):
        return (image_size, image_size)
    return tuple(int(s) for s in image_size)  # type: ignore[return-value]


def _spacing_tuple(spacing, zooms) -> tuple[float, float]:
    if spacing is None:
        return (float(zooms[0]), float(zooms[1]))
    if isinstance(spacing, (int, float)):
        return (float(spacing), float(spacing))
    return (float(spacing[0]), float(spacing[1]))


def preprocess_patient(folder: Path, image_size, spacing) -> dict[str, np.ndarray]:
    """ED and ES slices of one patient: images (2n, H, W) float32, masks uint8, z (2n, 2), meta."""
    info = read_info(folder)
    size = _size_tuple(image_size)
    volumes, labels, all_zooms = {}, {}, {}
    for phase in PHASES:
        frame = info[phase]
        volumes[phase], all_zooms[phase] = load_nifti(frame_path(folder, frame))
        if volumes[phase].ndim != 3:
            raise DataError(frame_path(folder, frame), f"expected a 3-D volume, got shape {volumes[phase].shape}")
        labels[phase] = load_labels(frame_path(folder, frame, labels=True), volumes[phase].shape)
    if volumes["ED"].shape != volumes["ES"].shape:
        raise DataError(frame_path(folder, info["ES"]), f"shape {volumes['ES'].shape} differs from ED's "
                        f"{volumes['ED'].shape}")
    zooms = all_zooms["ED"]
    target = _spacing_tuple(spacing, zooms)
    num_slices = volumes["ED"].shape[2]
    geometry = patient_geometry(folder, info, volumes, zooms)  # from the images and headers only
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
    ):
        self.root = Path(root)
        self.split = split
        self.image_size = _size_tuple(image_size)
        self.spacing = spacing
        self.seed = int(seed)
        self.use_cache = use_cache
        self.patient_folders = split_patients(find_patient_folders(root), split, self.seed)
        if not self.patient_folders:
            raise DataError(self.root, f"the {split} split has no patients")
        # "preprocessing" names the label-free crop and slice order, so older cached arrays are not reused
        settings = {"image_size": self.image_size, "spacing": spacing, "preprocessing": "motion-centre-affine-v2"}
        parts = []
        from tqdm import tqdm

        for folder in tqdm(self.patient_folders, desc=f"ACDC {split}", disable=not progress):
            parts.append(cached_arrays(
                "acdc-patient", {**settings, "folder": str(folder.resolve())}, patient_files(folder),
                lambda folder=folder: preprocess_patient(folder, self.image_size, spacing), use_cache,
            ))
        self.images = np.concatenate([p["images"] for p in parts])
        self.masks = np.concatenate([p["masks"] for p in parts])
        self.z = np.concatenate([p["z"] for p in parts])
        self.meta = sum((decode_meta(p["meta"]) for p in parts), [])
        self.patients = [folder.name for folder in self.patient_folders]
        self._folders = {folder.name: folder for folder in self.patient_folders}

    def __len__(self) -> int:
        return len(self.meta)

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
                "image": torch.from_numpy(frames[t, slice_index]).unsqueeze(0),
                "z": torch.from_numpy(acdc_condition(value, position)),
                "phase_value": value, "frame": frame,
                "mask": None if mask is None else torch.from_numpy(mask).long(),
            })
        return result

    def _preprocess_cine(self, folder: Path, first_meta: dict) -> dict[str, np.ndarray]:
        data, zooms = load_nifti(cine_path(folder))
        if data.ndim != 4:
            raise DataError(cine_path(folder), f"expected a 4-D cine (X, Y, Z, T), got shape {data.shape}")
        target = _spacing_tuple(self.spacing, zooms)
        centre = tuple(first_meta["centre"])
        frames = np.zeros((data.shape[3], data.shape[2], *self.image_size), np.float32)
        for t in range(data.shape[3]):
            volume = normalise_volume(data[..., t])
            for k in range(data.shape[2]):
                frames[t, k] = resample_slice(volume[:, :, k], zooms[:2], target, centre, self.image_size, False)
        return {"frames": frames}
