"""Where the dashboard's images come from: a dataset folder (bundled synthetic or a real download)
or one uploaded file. Every source answers the same few questions, so the page does not care which:

    len(source), source.title(index)
    source.view(index, controls, follow, condition) -> View: the image to segment for these slider values,
                                             its ground truth (or None), a cache key, notes for the UI
    source.num_slices(index)              -> slices in the stack (ACDC), 1 otherwise
    source.offers                         -> what else it has, by name (the page asks this, never hasattr):
        "scene"  objects(index): the scene's objects and masks, the ground truth of any condition value
        "cine"   cine(index, slice_index): every frame of a slice's 4-D cine
        "stack"  slice_order(index), position(index, slice_index): slices from base to apex

CLEVR-Seg: the image does not depend on the sliders; its ground truth does (the objects the
current condition selects, from the scene: `ClevrSegDataset.target`).
ACDC: the sample is a patient; `phase` picks the cine frame (ED = 0 ... ES = 1) when the 4-D cine
exists and `follow` is on, `slice` the slice. Only ED and ES frames have ground truth.

Nothing here imports streamlit; sources are read-only after construction (one serves every session).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inside_core.conditions import Condition

UPLOAD_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
UPLOAD_VOLUME_SUFFIXES = (".nii", ".nii.gz")


class SourceError(ValueError):
    """A source that cannot be used; the message is one line for the UI."""


@dataclass
class View:
    """What the page shows and segments for one sample and one set of slider values."""

    key: tuple
    image: torch.Tensor  # (C, H, W) float
    ground_truth: np.ndarray | None = None  # (H, W) int labels, at the image's size
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------- CLEVR-Seg


class ClevrSource:
    """A CLEVR-Seg folder through `inside_core.data.ClevrSegDataset` (native image size)."""

    kind = "clevr-seg"
    offers = frozenset({"scene"})

    def __init__(self, root: str | Path, split: str = "test", label: str = ""):
        from inside_core.data import ClevrSegDataset

        # the quadrant condition only decides each item's own z / mask; the page builds the
        # ground truth for whatever the sliders say, from the scene
        self.dataset = ClevrSegDataset(root, condition="quadrant", split=split)
        if len(self.dataset) == 0:
            raise SourceError(f"{root}: the {split} split holds no images")
        self.root, self.split = Path(root), split
        self.label = label or f"{self.root} ({split} split)"
        self.opening_index = self._opening_index()  # once, here: sources are shared read-only afterwards

    @classmethod
    def from_folder(cls, root: str | Path, split: str = "test", **_: Any) -> ClevrSource:
        """The registry's constructor (inside_core.data.registry): images at their native size."""
        return cls(root, split=split)

    def __len__(self) -> int:
        return len(self.dataset)

    def title(self, index: int) -> str:
        return f"{self.dataset.names[index]} ({self.split} split, {index + 1} of {len(self)})"

    def _opening_index(self, search: int = 50) -> int:
        """The sample the page opens on: the first (of the first `search`) with objects in the top-left
        quadrant (the sliders' starting z) and elsewhere, so the first view shows a mask, and moving a
        slider changes it. 0 if none does."""
        for index in range(min(search, len(self))):
            here = self.dataset.target(index, "quadrant", "top_left").any()
            if here and any(self.dataset.target(index, "quadrant", q).any() for q in ("top_right", "bottom_left")):
                return index
        return 0

    def num_slices(self, index: int) -> int:
        return 1

    def image(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.dataset.images[index]).permute(2, 0, 1).float().div(255.0)

    def objects(self, index: int) -> tuple[list[dict], np.ndarray]:
        """The scene's objects and their masks bool (K, H, W): enough to build any condition's target."""
        return self.dataset.scene(index), self.dataset.object_masks(index)

    def view(self, index: int, controls: dict[str, Any], follow: bool = True, condition: Condition | None = None,
             objects: tuple[list[dict], np.ndarray] | None = None) -> View:
        image = self.image(index)
        notes: list[str] = []
        truth = None
        if condition is not None:
            truth, note = self.ground_truth(index, condition, controls, objects)
            if note:
                notes.append(note)
        return View(("clevr", index), image, truth, notes)

    def ground_truth(self, index: int, condition: Condition, controls: dict[str, Any],
                     objects: tuple[list[dict], np.ndarray] | None = None) -> tuple[np.ndarray | None, str]:
        """The target for the model's condition at these slider values, and a line saying which it is."""
        scene, masks = objects if objects is not None else self.objects(index)
        height, width = self.dataset.meta[index]["native_size"]
        value = condition.ground_truth_value(controls)  # None for a condition without an object rule
        if value is None:
            return None, ""
        note = condition.ground_truth_note(value)
        chosen = condition.selects(scene, value, width, height)
        if not chosen:
            note += (": none in this image, so the ground truth is empty (an empty prediction scores Dice 1 by "
                     "convention, any predicted pixel Dice 0)")
        truth = masks[chosen].any(axis=0) if chosen else np.zeros(masks.shape[1:], bool)
        return truth.astype(np.int64), note


# --------------------------------------------------------------------------------------------- ACDC


def contraction(frames: list[dict]) -> list[dict]:
    """The cine frames from ED to ES (cyclically), where the phase slider's 0 -> 1 belongs.

    The cine also holds the relaxation back to the next ED, whose frames have the same phase
    values; the slider shows the contraction. Falls back to all frames if ED or ES is not found.
    """
    ed = next((i for i, f in enumerate(frames) if f.get("mask") is not None and float(f["phase_value"]) == 0.0), None)
    es = next((i for i, f in enumerate(frames) if f.get("mask") is not None and float(f["phase_value"]) == 1.0), None)
    if ed is None or es is None:
        return frames
    length = (es - ed) % len(frames) + 1
    return [frames[(ed + k) % len(frames)] for k in range(length)]


class AcdcSource:
    """An ACDC folder through `inside_core.data.AcdcDataset`: samples are patients.

    Slices are addressed by their index in the NIfTI stack; `slice_order(index)` lists them from
    base to apex and `position(index, k)` is slice k's position in z (0 = base, 1 = apex), both as the
    loader decided them (the base end from the header's affine, never the labels).
    """

    kind = "acdc"
    offers = frozenset({"cine", "stack"})

    def __init__(self, root: str | Path, split: str = "test", image_size: int = 128, spacing: float = 1.37,
                 label: str = ""):
        from inside_core.data import AcdcDataset

        self.dataset = AcdcDataset(root, split=split, image_size=image_size, spacing=spacing)
        self.root, self.split = Path(root), split
        self.label = label or f"{self.root} ({split} split)"
        # (patient, "ED"/"ES", slice index) -> item index; slice positions per patient
        self.lookup: dict[tuple[str, str, int], int] = {}
        self.positions: dict[str, dict[int, float]] = {}
        for i, meta in enumerate(self.dataset.meta):
            self.lookup[(meta["patient"], meta["phase"], int(meta["slice_index"]))] = i
            self.positions.setdefault(meta["patient"], {})[int(meta["slice_index"])] = float(meta["slice_position"])
        self.patients = [p for p in self.dataset.patients if p in self.positions]
        if not self.patients:
            raise SourceError(f"{root}: the {split} split holds no patients")

    @classmethod
    def from_folder(cls, root: str | Path, split: str = "test", image_size: int = 128, spacing: float = 1.37,
                    **_: Any) -> AcdcSource:
        """The registry's constructor (inside_core.data.registry): the card's input size and spacing."""
        return cls(root, split=split, image_size=image_size, spacing=spacing)

    def __len__(self) -> int:
        return len(self.patients)

    def title(self, index: int) -> str:
        return f"{self.patients[index]} ({self.split} split, {index + 1} of {len(self)})"

    def num_slices(self, index: int) -> int:
        return len(self.positions[self.patients[index]])

    def slice_order(self, index: int) -> list[int]:
        """Slice indices from base to apex."""
        positions = self.positions[self.patients[index]]
        return sorted(positions, key=positions.get)

    def position(self, index: int, slice_index: int) -> float:
        return self.positions[self.patients[index]][slice_index]

    def cine(self, index: int, slice_index: int) -> list[dict]:
        """Every cine frame of a slice (image, z, phase_value, frame, mask at ED/ES), or [] without a 4-D cine."""
        try:
            return list(self.dataset.cine(self.patients[index], slice_index))
        except (OSError, KeyError, IndexError, ValueError):  # DataError is a ValueError
            return []

    def _annotated(self, patient: str, phase: str, slice_index: int, n: int, note: str = "") -> View:
        item = self.dataset[self.lookup[(patient, phase, slice_index)]]
        meta = item["meta"]  # the second note: which rules decided the frame and the base (no labels used)
        notes = [note or f"{phase} frame {meta['frame']}, slice {slice_index} of {n} (ground truth on the toggle)",
                 f"in-plane: {meta.get('orientation', 'stored voxel order')}; base -> apex: {meta['order_from']}"]
        return View((patient, phase, slice_index), item["image"], item["mask"].numpy().astype(np.int64), notes)

    def view(self, index: int, controls: dict[str, Any], follow: bool = True, condition: Condition | None = None,
             cine: list[dict] | None = None) -> View:
        """The image for (phase, slice): ED / ES items, or the nearest cine frame in between."""
        patient = self.patients[index]
        n = self.num_slices(index)
        slice_index = int(np.clip(int(controls.get("slice", n // 2)), 0, n - 1))
        phase = float(controls.get("phase", 0.0))
        nearest = "ES" if phase >= 0.5 else "ED"
        if not follow:
            return self._annotated(patient, "ED", slice_index, n,
                                   f"image fixed at ED, slice {slice_index}: the sliders change z only")
        if phase in (0.0, 1.0):
            return self._annotated(patient, nearest, slice_index, n)
        frames = cine if cine is not None else self.cine(index, slice_index)
        if not frames:
            return self._annotated(patient, nearest, slice_index, n,
                                   f"no 4-D cine here: showing the nearest annotated frame ({nearest})")
        best = min(contraction(frames), key=lambda f: abs(float(f["phase_value"]) - phase))
        if best.get("mask") is not None:
            return View((patient, f"frame{best['frame']}", slice_index), best["image"],
                        best["mask"].numpy().astype(np.int64),
                        [f"cine frame {best['frame']} (an annotated frame), slice {slice_index} of {n}"])
        return View((patient, f"frame{best['frame']}", slice_index), best["image"], None,
                    [f"cine frame {best['frame']} (phase {float(best['phase_value']):.2f}), slice {slice_index} "
                     f"of {n}: no ground truth here, only ED and ES are annotated"])


# ------------------------------------------------------------------------------------------ uploads


class UploadSource:
    """One uploaded image (PNG/JPEG) or NIfTI volume (3-D, or a 4-D cine), preprocessed like a dataset case.

    A volume goes through `inside_core.data.acdc.preprocess_volume`, the loader's own code: the crop centre
    from the cine's motion (or the image centre for one 3-D frame), the slice order from the header's
    affine, resampling to the model's spacing and image size. No labels are involved.
    """

    offers = frozenset({"stack"})

    def __init__(self, name: str, data: bytes, kind: str, image_size: tuple[int, int] | None = None,
                 spacing: float | None = None):
        self.name, self.kind = name, kind
        self.label = f"upload: {name}"
        self.notes: list[str] = []
        lower = name.lower()
        if lower.endswith(UPLOAD_IMAGE_SUFFIXES):
            self.images = [read_image_bytes(name, data)]
            self.positions = [0.0]
        elif lower.endswith(UPLOAD_VOLUME_SUFFIXES):
            volume = read_volume_upload(name, data, spacing, image_size)
            self.images = [torch.from_numpy(np.ascontiguousarray(plane))[None] for plane in volume["images"]]
            self.positions = [float(p) for p in volume["slice_position"]]
            self.notes = volume["notes"]
        else:
            raise SourceError(f"{name}: not a PNG, JPEG or NIfTI (.nii, .nii.gz) file")

    def __len__(self) -> int:
        return 1

    def title(self, index: int) -> str:
        return self.label

    def num_slices(self, index: int) -> int:
        return len(self.images)

    def slice_order(self, index: int) -> list[int]:
        """Slice indices from base to apex, as the header's affine says (else the file's order)."""
        return sorted(range(len(self.images)), key=lambda k: self.positions[k])

    def position(self, index: int, slice_index: int) -> float:
        return self.positions[slice_index]

    def view(self, index: int, controls: dict[str, Any], follow: bool = True, condition: Condition | None = None,
             **_: Any) -> View:
        n = len(self.images)
        slice_index = int(np.clip(int(controls.get("slice", n // 2)), 0, n - 1)) if n > 1 else 0
        notes = ["your upload: no ground truth"]
        if n > 1:
            notes.append(f"slice {slice_index} of {n}")
        return View(("upload", self.name, slice_index), self.images[slice_index], None, notes + self.notes)


def read_image_bytes(name: str, data: bytes) -> torch.Tensor:
    """A PNG/JPEG file's bytes as a float tensor (C, H, W) in [0, 1]; SourceError if it is not one.

    Width x height is checked before decoding (INSIDE_LIMIT_UPLOAD_PIXELS); 16-bit grey images are scaled
    by their own range."""
    from inside_core.data.errors import DataError
    from inside_core.data.safe_io import image_float, open_image

    try:
        with open_image(data, name, "upload_pixels", formats=("PNG", "JPEG"),
                        unreadable="not a readable PNG or JPEG image") as image:
            array = image_float(image)
    except DataError as error:
        raise SourceError(str(error)) from None
    if array.ndim == 2:
        array = array[None]
    else:
        array = np.moveaxis(array, -1, 0)
    return torch.from_numpy(np.ascontiguousarray(array))


def read_volume_bytes(name: str, data: bytes, spacing: float | None = None,
                      image_size: tuple[int, int] | None = None) -> list[torch.Tensor]:
    """A NIfTI file's bytes as 2-D slices (1, H, W) in stored order, preprocessed like the ACDC loader's
    (`read_volume_upload`); SourceError if it is not a usable volume."""
    volume = read_volume_upload(name, data, spacing, image_size)
    return [torch.from_numpy(np.ascontiguousarray(plane))[None] for plane in volume["images"]]


def read_volume_upload(name: str, data: bytes, spacing: float | None = None,
                       image_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """A NIfTI upload through `inside_core.data.acdc.preprocess_volume`, the dataset loader's preprocessing.

    With `spacing` (mm) and `image_size` (an ACDC model): a 4-D cine is read whole when it fits the upload
    limits, so the crop centre comes from its motion exactly as for a dataset patient, and its first frame
    is shown; a 3-D volume (or a cine over the limits: its first frame) is cropped around the image centre.
    Without them: the first frame, normalised, at its own pixel size and size. The slice order comes from
    the header's affine either way. Returns preprocess_volume's dict plus "notes" (lines for the page).
    """
    from inside_core.data.acdc import preprocess_volume
    from inside_core.data.errors import DataError
    from inside_core.data.safe_io import nifti_from_bytes

    try:  # NIfTI-1 or -2; header sizes checked before inflating (INSIDE_LIMIT_UPLOAD_*); 4-D: first frame
        array, zooms = nifti_from_bytes(data, name)
        affine, cine = _nifti_affine_and_cine(data, name, cine=bool(spacing and image_size))
    except DataError as error:
        raise SourceError(str(error)) from None
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or min(array.shape[:2]) < 8:
        raise SourceError(f"{name}: expected a 2-D, 3-D or 4-D volume, got shape {array.shape}")
    if not np.isfinite(array).all() or (cine is not None and not np.isfinite(cine).all()):
        raise SourceError(f"{name}: the volume holds NaN or infinite values")
    try:  # issue 23: a volume whose slices once resized exceed the case limit is refused in one line
        if spacing and image_size:
            volume = preprocess_volume(array if cine is None else cine, zooms, affine, spacing, tuple(image_size))
        else:  # a model of native-size images: spacing = the file's own, grid = the image's, so nothing moves
            volume = preprocess_volume(array, zooms, affine, None, tuple(array.shape[:2]))
            volume["centre_from"] = "none (native size)"
    except DataError as error:
        raise SourceError(f"{name}: {error.problem}") from None
    volume["notes"] = [f"in-plane: {volume['orientation']}; crop centre: {volume['centre_from']}; "
                       f"base -> apex: {volume['order_from']}"]
    return volume


def _nifti_affine_and_cine(data: bytes, name: str, cine: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(affine, every frame of a 4-D cine or None) of NIfTI bytes already checked by `nifti_from_bytes`.

    The whole cine only when all its voxels (frames included) fit INSIDE_LIMIT_UPLOAD_VOXELS and its bytes
    INSIDE_LIMIT_UPLOAD_INFLATED_BYTES: the motion that places the crop needs every frame, and an upload
    must not be inflated past those limits. The affine is the header's best (sform, else qform), None
    when it sets neither (`inside_core.data.orientation.header_affine`).
    """
    import io
    import math

    from nibabel.volumeutils import apply_read_scaling, array_from_file

    from inside_core.data.orientation import header_affine
    from inside_core.data.safe_io import _nifti_classes, inflate_gzip
    from inside_core.limits import over_limit

    gzipped = data[:2] == b"\x1f\x8b"
    first = inflate_gzip(data, name, 540) if gzipped else data[:540]
    _, header_class, header_size = _nifti_classes(first, name)
    try:
        header = header_class.from_fileobj(io.BytesIO(first[:header_size]))
        affine = header_affine(header)  # None when the header sets no orientation: the stored order is kept
        shape = tuple(int(s) for s in header.get_data_shape())
    except Exception:  # nifti_from_bytes read this header; an odd affine only loses the slice order
        return None, None
    if not cine or len(shape) != 4 or shape[3] < 2:
        return affine, None
    dtype = header.get_data_dtype()
    offset = max(int(header.get("vox_offset", header_size)), header_size)
    needed = offset + math.prod(shape) * dtype.itemsize
    if over_limit("upload_voxels", math.prod(shape)) or over_limit("upload_inflated_bytes", needed):
        return affine, None  # too large whole: its first frame (image-centre crop) is used
    raw = inflate_gzip(data, name, needed) if gzipped else data[:needed]
    if len(raw) < needed:
        return affine, None  # the first frame was complete (nifti_from_bytes checked it); the rest is not
    slope, inter = header.get_slope_inter()
    frames = array_from_file(shape, dtype, io.BytesIO(raw), offset)
    return affine, np.asarray(apply_read_scaling(frames, slope, inter), dtype=np.float32)
