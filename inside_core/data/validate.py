"""Check a dataset folder and report every problem with its file (`inside data validate`): the CLEVR-Seg
and ACDC checks live here, each other kind's beside its loader (the registry names them).

The checks reuse the loaders' readers, so `validate` reports exactly the one-line messages the loaders
would raise, but all of them at once instead of stopping at the first.

CLEVR-Seg: each image readable, its width x height within the pixel limit (inside_core.limits, checked
before decoding); its scene JSON present, readable, with a non-empty `objects` list of valid objects; its
segmentation folder present, one PNG per object, each readable and within the limit, of the image's size,
holding only 64 and 255; scenes without an image.
ACDC: at least one patient; per patient Info.cfg present with ED and ES; the ED and ES image and label
files present, their header's shape x dtype within the voxel limit and pixel size plausible (both before
reading), readable to the last byte; label shapes equal to image shapes; label values in {0, 1, 2, 3}; ES
volume shaped like ED. Warnings (no failure): 4-D cine missing, unreadable or not matching the frames'
shape or NbFrame.
A check that fails in a way no reader foresaw is reported as one more problem of that file: the report
always lists everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import inside_core.data.acdc as acdc
import inside_core.data.clevr_seg as clevr_seg
from inside_core.data.errors import DataError, printable
from inside_core.data.registry import DATASETS, dataset_kind, detect_kind

FORMATS = tuple(DATASETS)  # every registered kind has a validator (inside_core.data.registry)


@dataclass
class Problem:
    path: str
    problem: str
    severity: str = "error"  # "error", "warning" or "note" (what the loader decided, e.g. the slice order)

    def __post_init__(self) -> None:
        # a file name that is not UTF-8 must not make printing the report fail
        self.path, self.problem = printable(self.path), " ".join(printable(self.problem).split())

    def line(self) -> str:
        return f"{self.severity}: {self.path}: {self.problem}"

    def __str__(self) -> str:
        return self.line()


@dataclass
class Report:
    format: str
    root: str
    checked: int  # items checked: images or patients
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"format": self.format, "root": self.root, "ok": self.ok, "checked": self.checked,
                "errors": len(self.errors), "warnings": len(self.warnings),
                "problems": [asdict(p) for p in self.problems]}


def _problem(error: DataError, severity: str = "error") -> Problem:
    return Problem(error.path, error.problem, severity)


def _guarded(path: Path, check: Callable[[], list[Problem]]) -> list[Problem]:
    """The problems `check` finds; an error no reader turned into a DataError is one more problem, so
    one strange file never stops the report."""
    try:
        return check()
    except DataError as error:
        return [_problem(error)]
    except Exception as error:  # the safety net of "list every problem": never a traceback
        message = str(error).splitlines()[0] if str(error) else ""
        return [Problem(str(path), f"unexpected {type(error).__name__} while checking it ({message})")]


def detect_format(path: str | Path) -> str:
    """The registered kind a folder is (inside_core.data.registry.detect_kind); DataError otherwise."""
    path = Path(path)
    kind = detect_kind(path)
    if kind is not None:
        return kind.name
    if not path.exists():
        raise DataError(path, "folder not found")
    markers = " or ".join(k.marker for k in DATASETS.values() if k.marker)
    raise DataError(path, "neither a CLEVR-Seg folder (images/, scenes/, segmentations/) nor an ACDC folder "
                    f"(patientNNN/ folders), and no {markers} in it; pass --format")


def _check_scene(root: Path, name: str) -> list[Problem]:
    """Every problem of one CLEVR-Seg scene: its image, scene JSON and segmentation PNGs."""
    problems: list[Problem] = []
    try:
        image = clevr_seg.read_rgb(root / "images" / f"{name}.png")
    except DataError as error:
        problems.append(_problem(error))
        image = None
    try:
        objects = clevr_seg.read_scene(root / "scenes" / f"{name}.json")
    except DataError as error:
        problems.append(_problem(error))
        objects = None
    try:
        files = clevr_seg.segmentation_files(root, name)
    except DataError as error:
        problems.append(_problem(error))
        return problems
    if objects is not None and len(files) != len(objects):
        problems.append(Problem(str(root / "segmentations" / name),
                                f"{len(files)} segmentation PNGs but the scene has {len(objects)} objects"))
    for file in files:
        try:
            mask = clevr_seg.read_segmentation(file)
        except DataError as error:
            problems.append(_problem(error))
            continue
        if image is not None and mask.shape != image.shape[:2]:
            problems.append(Problem(str(file), f"segmentation is {mask.shape[1]}x{mask.shape[0]} but the image "
                                    f"is {image.shape[1]}x{image.shape[0]}"))
    return problems


def validate_clevr_seg(path: str | Path) -> Report:
    try:
        root = clevr_seg.resolve_root(path)
        names = clevr_seg.list_names(root)
    except DataError as error:
        return Report("clevr-seg", str(path), 0, [_problem(error)])
    problems: list[Problem] = []
    for name in names:
        problems += _guarded(root / "images" / f"{name}.png", lambda name=name: _check_scene(root, name))
    known = set(names)
    for scene in sorted((root / "scenes").glob("*.json")) if (root / "scenes").is_dir() else []:
        if scene.stem not in known:
            problems.append(Problem(str(scene), "scene without an image in images/"))
    if not (root / "scenes").is_dir():
        problems.append(Problem(str(root / "scenes"), "scenes/ folder missing"))
    return Report("clevr-seg", str(root), len(names), problems)


def _check_patient(folder: Path) -> list[Problem]:
    problems: list[Problem] = []
    try:
        info = acdc.read_info(folder)
    except DataError as error:
        return [_problem(error)]
    shapes: dict[str, tuple] = {}
    for phase in acdc.PHASES:
        image_file = acdc.frame_path(folder, info[phase])
        label_file = acdc.frame_path(folder, info[phase], labels=True)
        for file, kind in ((image_file, "image"), (label_file, "label")):
            if not file.exists():
                said = f"Info.cfg says {phase}: {info[phase]}"
                problems.append(Problem(str(file), f"{phase} {kind} file missing ({said})"))
        try:
            volume, _ = acdc.load_nifti(image_file) if image_file.exists() else (None, None)
        except DataError as error:
            problems.append(_problem(error))
            volume = None
        if volume is not None:
            shapes[phase] = volume.shape
            if volume.ndim != 3:
                problems.append(Problem(str(image_file), f"expected a 3-D volume, got shape {volume.shape}"))
        if label_file.exists():
            try:
                labels, _ = acdc.load_nifti(label_file)
            except DataError as error:
                problems.append(_problem(error))
                continue
            if volume is not None and labels.shape != volume.shape:
                problems.append(Problem(str(label_file), f"label shape {labels.shape} differs from the image shape "
                                        f"{volume.shape}"))
            try:
                acdc.check_label_values(labels, label_file)
            except DataError as error:
                problems.append(_problem(error))
    if len(shapes) == 2 and shapes["ED"] != shapes["ES"]:
        problems.append(Problem(str(acdc.frame_path(folder, info["ES"])),
                                f"shape {shapes['ES']} differs from ED's {shapes['ED']}"))
    elif len(shapes) == 2 and not any(p.severity == "error" for p in problems):
        problems += _guarded(folder, lambda: [_geometry_note(folder, info)])
    cine = acdc.cine_path(folder)
    if not cine.exists():
        problems.append(Problem(str(cine), "4-D cine missing (only the dashboard's phase slider needs it)", "warning"))
    else:
        try:
            data, _ = acdc.load_nifti(cine)
            frames_shape = shapes.get("ED")
            if data.ndim != 4:
                problems.append(Problem(str(cine), f"expected a 4-D cine, got shape {data.shape}", "warning"))
            elif frames_shape is not None and data.shape[:3] != frames_shape:
                problems.append(Problem(str(cine), f"cine shape {data.shape[:3]} differs from the frames' "
                                        f"{frames_shape}", "warning"))
            elif "NbFrame" in info and data.shape[3] != info["NbFrame"]:
                problems.append(Problem(str(cine), f"{data.shape[3]} frames but Info.cfg says NbFrame: "
                                        f"{info['NbFrame']}", "warning"))
        except DataError as error:
            problems.append(_problem(error, "warning"))
    return problems


def _geometry_note(folder: Path, info: dict) -> Problem:
    """What the loader decides for this patient without labels: orientation, base/apex rule, crop centre."""
    volumes, zooms, affine, orientation = {}, (), None, ""
    for phase in acdc.PHASES:
        volumes[phase], zooms, affine, orientation = acdc.load_canonical(acdc.frame_path(folder, info[phase]))
    geometry = acdc.patient_geometry(folder, info, volumes, zooms, affine)
    return Problem(str(folder), f"in-plane: {orientation}; base -> apex: {geometry['order_from']}; "
                   f"crop centre: {geometry['centre_from']}", "note")


def validate_acdc(path: str | Path) -> Report:
    try:
        subsets = acdc.find_patient_folders(path)
    except DataError as error:
        return Report("acdc", str(path), 0, [_problem(error)])
    folders = sorted(sum(subsets.values(), []))
    problems: list[Problem] = []
    for folder in folders:
        problems += _guarded(folder, lambda folder=folder: _check_patient(folder))
    return Report("acdc", str(path), len(folders), problems)


def validate(path: str | Path, data_format: str | None = None) -> Report:
    """Check a dataset folder; `data_format` None detects it."""
    if data_format is None:
        try:
            data_format = detect_format(path)
        except DataError as error:
            return Report("unknown", str(path), 0, [_problem(error)])
    if data_format not in FORMATS:
        raise ValueError(f"unknown format {data_format!r}; expected one of {', '.join(FORMATS)}")
    return dataset_kind(data_format).validate(path)
