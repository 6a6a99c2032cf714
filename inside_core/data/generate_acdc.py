"""SYNTHETIC short-axis cine SSFP phantom written in exactly the ACDC layout (not patient data).

Layout written under `out` (the same as an unpacked ACDC download):

    SYNTHETIC.txt                                      says what this is
    training/patientNNN/Info.cfg                       ED, ES, Group, Height, NbFrame, Weight, Synthetic
    training/patientNNN/patientNNN_4d.nii.gz           cine (X, Y, Z, T)
    training/patientNNN/patientNNN_frameFF.nii.gz      ED and ES volumes (FF 1-based, two digits)
    training/patientNNN/patientNNN_frameFF_gt.nii.gz   labels: 0 background, 1 RV, 2 MYO, 3 LV
    testing/...                                        the same for the --test-patients patients

The anatomy (heart over the cycle, atria and outflow tract at the base, thorax, lungs, liver, stomach,
spine, aorta) is drawn by `inside_core.data.phantom_anatomy`. This module places it in a field of view,
stacks the slices from base to apex and randomises everything a scanner and a patient change, in the
manner of SynthSeg's domain randomisation (Billot et al. 2023) but keeping SSFP's order of brightness
(blood and fat bright, myocardium and muscle dark, lungs black), so a model has to learn shape:

- geometry: ACDC group (NOR, MINF, DCM, HCM, RV), heart size, wall, contraction, RV, orientation
  (+-40 deg about the usual RV-left view), heart position in the field of view (+-25 mm);
- sampling: in-plane spacing 0.7-1.9 mm, 150-430 px, 5-10 mm slices, 6-21 slices, 12-25 frames;
  the stack covers from above the base (sometimes an atrial slice) to at or beyond the apex;
- contrast: one mean intensity per tissue class and patient (myocardium about a quarter of blood, as
  in real SSFP), a gamma, textures, an inhomogeneous blood pool (flow, trabeculation, papillary muscles);
- scanner: smooth multiplicative bias field (coil shading), SSFP off-resonance dark bands (35 %),
  motion ghosting along the phase-encode columns (50 %), anisotropic blur (resolution), Rician noise,
  intensity scale and storage type (int16 with or without scl_slope, float32);
- header and voxel order: the image is drawn in the canonical frame of inside_core.data.orientation,
  then stored in one of the 8 in-plane voxel orders (transpose, flips) with the affine that says so;
  the slice axis points from base to apex along the heart's long axis (left, anterior, inferior in
  RAS), or from apex to base when the stack is stored apex first (35 %). 15 % of patients carry no
  orientation at all (qform and sform codes 0): only the images can tell their voxel order and base.

Through-plane partial volume: basal and apical slices average three sub-slices across their thickness; in-plane
edges are one-pixel soft masks. Cardiac cycle: contraction c(t) = 0 at ED (frame 1), 1 at ES,
raised-cosine in between and back; the cavity shrinks with the myocardial area conserved (the wall
thickens) and the base descends towards the apex, so a basal plane shows the atria at ES.

Everything is drawn from numpy.random.default_rng([seed, n]) and every gzip header carries mtime 0:
the same arguments give byte-identical files. Patient n depends only on (seed, n), not on how many
are written. Speed (issue 11: the bundled default is written while a first-time user waits): per frame
only the heart's window is re-rendered and re-blurred (bit-identical to processing the whole volume,
tests/test_data_acdc.py), and images are gzipped with Huffman coding only (noise leaves deflate's string
matching nothing to find).
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter, zoom
from tqdm import tqdm

from inside_core.data.acdc_volume import APEX_DIRECTION
from inside_core.data.cache import atomic_folder
from inside_core.data.orientation import canonical_axes
from inside_core.data.phantom_anatomy import CLASSES, draw_body, draw_heart, heart_grid, render_body, render_heart

GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")
DESCRIPTION = b"SYNTHETIC cardiac phantom (inside_core)"
# SSFP order of brightness: each class's mean intensity is drawn from its range per patient
TONE_RANGES = {
    "air": (0.0, 0.02), "fat": (0.55, 1.0), "muscle": (0.15, 0.35), "soft": (0.25, 0.45), "lung": (0.02, 0.1),
    "vessel": (0.35, 0.7), "liver": (0.22, 0.5), "bone": (0.3, 0.6), "stomach": (0.1, 0.9), "blood": (0.75, 1.0),
    "myo": (0.0, 0.09), "wall": (0.03, 0.16),
}
assert set(TONE_RANGES) == set(CLASSES)


@dataclass
class Scan:
    """How one patient was scanned: sampling, placement, contrast and scanner imperfections."""

    rows: int
    columns: int
    spacing: float  # in-plane mm
    slice_mm: float
    levels: np.ndarray  # anatomical level of each slice (base -> apex order)
    long_axis_mm: float
    num_frames: int
    es_frame: int  # 1-based
    offset: tuple[float, float]  # LV centre relative to the image centre, mm (row, column)
    rotation: float  # in-plane rotation of the anatomy, radians
    tone: dict
    gamma: float
    bias: float
    blur: tuple[float, float]  # Gaussian sigma in pixels (rows, columns)
    noise: float
    scale: float
    apex_first: bool
    oblique: bool
    flow: float  # sd of the blood pool's flow / in-flow inhomogeneity (multiplicative)
    ghost: tuple[float, float]  # (amplitude, shift as a fraction of the columns): motion ghosting
    banding: float  # depth of SSFP off-resonance dark bands (0: none)


def draw_scan(rng: np.random.Generator) -> Scan:
    """Random sampling and scanner settings within the ranges of the module docstring."""
    spacing = float(rng.uniform(1.2, 1.8) if rng.random() < 0.7 else rng.uniform(0.7, 1.9))
    fov = rng.uniform(280, 400)
    rows = int(np.clip(round(fov * rng.uniform(0.8, 1.0) / spacing), 150, 430))
    columns = int(np.clip(round(fov / spacing), 150, 430))
    slice_mm = float(rng.choice([5.0, 6.0, 7.0, 8.0, 10.0]))
    long_axis = rng.uniform(75, 100)
    top, bottom = rng.uniform(-0.14, 0.03), rng.uniform(0.85, 1.08)
    n = int(np.clip(round((bottom - top) * long_axis / slice_mm) + 1, 6, 21))
    num_frames = int(rng.integers(12, 26))
    oblique = bool(rng.random() < 0.85)
    tone = {name: float(rng.uniform(*r)) for name, r in TONE_RANGES.items()}
    return Scan(
        rows=rows, columns=columns, spacing=spacing, slice_mm=slice_mm, levels=np.linspace(top, bottom, n),
        long_axis_mm=long_axis, num_frames=num_frames,
        es_frame=int(np.clip(round(num_frames * rng.uniform(0.3, 0.45)), 3, num_frames - 2)),
        offset=(float(rng.uniform(-25, 25)), float(rng.uniform(-25, 25))),
        rotation=float(np.deg2rad(rng.uniform(-40, 40))), tone=tone, gamma=float(np.exp(rng.uniform(-0.35, 0.35))),
        bias=float(rng.uniform(0.1, 0.8)), blur=(float(rng.uniform(0.2, 0.9)), float(rng.uniform(0.2, 0.7))),
        noise=float(rng.uniform(0.01, 0.06)), scale=float(rng.uniform(300, 1500)),
        apex_first=bool(rng.random() < 0.35), oblique=oblique, flow=float(rng.uniform(0.04, 0.16)),
        ghost=(float(rng.uniform(0.03, 0.12)) if rng.random() < 0.5 else 0.0, float(rng.uniform(0.2, 0.5))),
        banding=float(rng.uniform(0.3, 0.8)) if rng.random() < 0.35 else 0.0,
    )


def contraction(frame: int, es_frame: int, num_frames: int) -> float:
    """c(frame) in [0, 1]: 0 at ED (frame 1), 1 at ES, raised cosine up to ES and back down after."""
    if frame <= es_frame:
        return 0.5 * (1 - np.cos(np.pi * (frame - 1) / (es_frame - 1)))
    return 0.5 * (1 + np.cos(np.pi * (frame - es_frame) / (num_frames + 1 - es_frame)))


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std smooth random field (drawn coarse and zoomed up: fast for large sigma)."""
    step = max(1, int(sigma / 2))
    coarse = rng.standard_normal(tuple(max(2, -(-s // step)) for s in shape))
    field = zoom(gaussian_filter(coarse, sigma / step), [s / c for s, c in zip(shape, coarse.shape, strict=True)],
                 order=1)[tuple(slice(0, s) for s in shape)]
    return (field - field.mean()) / (field.std() + 1e-8)


def banding(rng: np.random.Generator, shape: tuple[int, int], px: float, depth: float) -> np.ndarray | None:
    """Multiplicative dark bands of balanced SSFP: where a smooth off-resonance field crosses the band
    frequency the signal drops; None when the patient has none."""
    if depth <= 0:
        return None
    field = _smooth_field(rng, shape, 40.0 / px) * 1.5 + rng.uniform(0, 1)
    distance = np.abs(field - np.round(field))  # 0 on a band
    return (1 - depth * np.exp(-0.5 * (distance / 0.06) ** 2)).astype(np.float32)[..., None]


def scanner_effects(volume: np.ndarray, bands: np.ndarray | None, ghost: tuple[float, float]) -> np.ndarray:
    """SSFP banding and motion ghosting (a faint copy of the frame shifted along the phase-encode columns)."""
    if bands is not None:
        volume = volume * bands
    if ghost[0] > 0:
        volume = volume + ghost[0] * np.roll(volume, int(round(ghost[1] * volume.shape[1])), axis=1)
    return volume


def make_patient(rng: np.random.Generator, group: str):
    """(heart, scan, cine float32 (X, Y, Z, T), {frame: labels (X, Y, Z)}) of one phantom, base first."""
    heart, scan = draw_heart(rng, group), draw_scan(rng)
    body = draw_body(rng, heart)
    px = scan.spacing
    rows_mm = (np.arange(scan.rows) - (scan.rows - 1) / 2) * px - scan.offset[0]
    cols_mm = (np.arange(scan.columns) - (scan.columns - 1) / 2) * px - scan.offset[1]
    r_mm, c_mm = np.meshgrid(rows_mm, cols_mm, indexing="ij")
    cos, sin = np.cos(scan.rotation), np.sin(scan.rotation)
    x, y = cos * c_mm + sin * r_mm, -sin * c_mm + cos * r_mm  # heart frame, rotated with the anatomy
    n, frames = len(scan.levels), scan.num_frames
    backgrounds = []
    for level in scan.levels:
        vessels = _smooth_field(rng, x.shape, 1.5 / px)
        texture = 1 + 0.06 * _smooth_field(rng, x.shape, 3.0 / px)
        backgrounds.append(render_body(body, level, x, y, px, scan.tone, vessels) * texture)
    # the heart changes only inside a window around it: render there, paste into the static slice
    reach = max(heart.r_epi + heart.rv_width, 1.9 * heart.r_epi) + 14  # RV, atria, fat
    inside = np.nonzero((np.abs(x) < reach) & (np.abs(y) < reach))
    window = (slice(inside[0].min(), inside[0].max() + 1), slice(inside[1].min(), inside[1].max() + 1))
    grid = heart_grid(heart, x[window], y[window])
    heart_texture = [1 + 0.05 * _smooth_field(rng, grid['x'].shape, 2.0 / px) for _ in range(n)]
    # blood is not flat in cine SSFP: in-flow, turbulence and slow flow near the apex vary it
    tones = [{**scan.tone, "blood": scan.tone["blood"] * np.clip(
        1 + scan.flow * _smooth_field(rng, grid["x"].shape, 4.0 / px), 0.35, 1.6)} for _ in range(n)]
    bias = np.exp(scan.bias * _smooth_field(rng, x.shape, 60.0 / px)).astype(np.float32)
    bands = banding(rng, x.shape, px, scan.banding)
    sub = np.array([-1, 0, 1]) * scan.slice_mm / 3 / scan.long_axis_mm  # sub-slices across the thickness
    labels = {frame: np.zeros((scan.rows, scan.columns, n), np.uint8) for frame in (1, scan.es_frame)}
    cine = np.zeros((scan.rows, scan.columns, n, frames), np.float32)
    static = np.stack(backgrounds, axis=2)
    # Only the heart's window changes between frames. Gamma, blur and bias of everything else are computed
    # once; per frame, the window widened by the blur's reach (`changed`) is recomputed from a block widened
    # by twice that reach (`block`), so every recomputed pixel sees the same inputs as a whole-slice blur:
    # the output is bit-identical to blurring the whole volume each frame, in a fraction of the time.
    blur_reach = [int(4.0 * sigma + 0.5) for sigma in scan.blur]  # gaussian_filter's radius (truncate 4.0)
    block = tuple(slice(max(w.start - 2 * r, 0), min(w.stop + 2 * r, size))
                  for w, r, size in zip(window, blur_reach, (scan.rows, scan.columns), strict=True))
    changed = tuple(slice(max(w.start - r, 0), min(w.stop + r, size))
                    for w, r, size in zip(window, blur_reach, (scan.rows, scan.columns), strict=True))
    in_block = tuple(slice(c.start - b.start, c.stop - b.start) for c, b in zip(changed, block, strict=True))
    heart_in_block = tuple(slice(w.start - b.start, w.stop - b.start) for w, b in zip(window, block, strict=True))
    finished = gaussian_filter(np.clip(static, 0, None) ** scan.gamma, (*scan.blur, 0)) * bias[..., None]
    for frame in range(1, frames + 1):
        c = contraction(frame, scan.es_frame, frames)
        region = static[block].copy()
        for k, level in enumerate(scan.levels):
            parts = []
            # the heart changes fast along its axis only near the base and the apex: sub-slices there
            for d in (sub if level < 0.2 or level > 0.65 else sub[1:2]):
                part = backgrounds[k][window].copy()
                label = render_heart(heart, level + d, c, grid, px, tones[k], part, labels=d == 0 and
                                     frame in labels)
                parts.append(part)
                if label is not None:
                    labels[frame][window + (k,)] = label
            region[heart_in_block + (k,)] = np.mean(parts, axis=0) * heart_texture[k]
        region = gaussian_filter(np.clip(region, 0, None) ** scan.gamma, (*scan.blur, 0)) * bias[block][..., None]
        volume = finished.copy()
        volume[changed] = region[in_block]
        volume = scanner_effects(volume, bands, scan.ghost)
        noise = rng.standard_normal((2, *volume.shape), dtype=np.float32)
        noise *= scan.noise
        volume += noise[0]
        cine[..., frame - 1] = np.hypot(volume, noise[1], out=volume)  # Rician magnitude
    cine *= scan.scale
    return heart, scan, cine, labels


def _affine(rng: np.random.Generator, scan: Scan) -> np.ndarray:
    """Voxel -> RAS mm of the image as drawn: rows towards DOWN and columns towards RIGHT (the canonical
    frame of inside_core.data.orientation: the anatomy is drawn RV-left, anterior up), the slice axis along
    the heart's long axis (reversed if stored apex first), tilted as a planned short-axis stack is."""
    affine = np.eye(4)
    affine[:3, 3] = rng.uniform(-150, 150, size=3)
    normal = APEX_DIRECTION + rng.normal(0, 0.2, 3)
    normal /= np.linalg.norm(normal)
    down, right = canonical_axes(normal)
    step = -normal if scan.apex_first else normal
    affine[:3, :3] = np.stack([down * scan.spacing, right * scan.spacing, step * scan.slice_mm], axis=1)
    return affine


def _store(rng: np.random.Generator, affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A random in-plane voxel order (one of 8: transpose, flips), as converters write, and the affine that
    describes the stored array: (nibabel orientation to apply, stored affine)."""
    first = int(rng.integers(2))
    ornt = np.array([[first, rng.choice([-1, 1])], [1 - first, rng.choice([-1, 1])], [2, 1]], dtype=float)
    return ornt, affine @ nib.orientations.inv_ornt_aff(ornt, shape[:3])


def _save(volume: np.ndarray, affine: np.ndarray | None, path: Path, storage: str, zooms: tuple[float, ...],
          frame_ms: float | None = None) -> None:
    """Write one NIfTI; `affine` None writes a header without orientation (qform and sform codes 0)."""
    if storage == "label":
        image = nib.Nifti1Image(volume.astype(np.uint8), affine)
    elif storage == "float32":
        image = nib.Nifti1Image(volume.astype(np.float32), affine)
    elif storage == "int16":
        image = nib.Nifti1Image(np.round(volume).clip(-32768, 32767).astype(np.int16), affine)
    else:  # int16_scaled: nibabel stores float data as int16 with scl_slope / scl_inter
        image = nib.Nifti1Image(volume.astype(np.float32), affine)
        image.set_data_dtype(np.int16)
    image.header["descrip"] = DESCRIPTION
    if affine is None:
        image.header.set_zooms(zooms[:3] + image.header.get_zooms()[3:])
    if frame_ms is not None:
        image.header.set_zooms(image.header.get_zooms()[:3] + (frame_ms,))
        image.header.set_xyzt_units("mm", "msec")
    else:
        image.header.set_xyzt_units("mm")
    if storage == "label":
        nib.save(image, path)  # long runs of equal values: nibabel's gzip (deflate level 1) packs them tightly
        return
    # Images carry noise in every voxel, so string matching finds almost nothing to pack: Huffman coding
    # alone gives the same size (within 1 %) two to three times faster than deflate level 1. Still a plain
    # gzip file (header mtime 0: the same bytes every run), read by nibabel and every other NIfTI reader.
    packer = zlib.compressobj(1, zlib.DEFLATED, 31, 9, zlib.Z_HUFFMAN_ONLY)  # wbits 31: a gzip header
    path.write_bytes(packer.compress(image.to_bytes()) + packer.flush())


def write_patient(folder: Path, patient_id: str, rng: np.random.Generator, group: str) -> None:
    """Draw one phantom patient and write it in the ACDC layout into folder/patient_id."""
    _, scan, cine, labels = make_patient(rng, group)
    if scan.apex_first:
        cine = cine[:, :, ::-1]
        labels = {frame: volume[:, :, ::-1] for frame, volume in labels.items()}
    # storage varies as in real data; the (large) cine is always int16, the ED/ES volumes sometimes float32
    storage = str(rng.choice(["int16_scaled", "int16"], p=[0.6, 0.4]))
    frame_storage = "float32" if rng.random() < 0.2 else storage
    affine = _affine(rng, scan)
    ornt, affine = _store(rng, affine, cine.shape)  # one of the 8 in-plane voxel orders
    cine = np.ascontiguousarray(nib.orientations.apply_orientation(cine, ornt))
    labels = {f: np.ascontiguousarray(nib.orientations.apply_orientation(v, ornt)) for f, v in labels.items()}
    zooms = (scan.spacing, scan.spacing, scan.slice_mm)
    if not scan.oblique:  # the header carries no orientation (codes 0), as some converters write
        affine = None
    height = round(float(rng.uniform(150, 195)), 1)
    weight = round(float(rng.uniform(50, 110)), 1)
    patient = folder / patient_id
    patient.mkdir(parents=True)
    (patient / "Info.cfg").write_text(
        f"ED: 1\nES: {scan.es_frame}\nGroup: {group}\nHeight: {height}\nNbFrame: {scan.num_frames}\n"
        f"Weight: {weight}\nSynthetic: phantom written by inside_core, not patient data\n"
    )
    _save(cine, affine, patient / f"{patient_id}_4d.nii.gz", storage, zooms,
          frame_ms=round(900.0 / scan.num_frames, 2))
    for frame, volume in labels.items():
        _save(cine[..., frame - 1], affine, patient / f"{patient_id}_frame{frame:02d}.nii.gz", frame_storage, zooms)
        _save(volume, affine, patient / f"{patient_id}_frame{frame:02d}_gt.nii.gz", "label", zooms)


def _write_numbered(job: tuple[Path, int, int, int]) -> None:
    temp, seed, number, patients = job
    folder = temp / ("training" if number <= patients else "testing")
    rng = np.random.default_rng([seed, number])
    write_patient(folder, f"patient{number:03d}", rng, GROUPS[(number - 1) % len(GROUPS)])


def generate_acdc(
    out: str | Path, patients: int, seed: int = 0, test_patients: int = 0, progress: bool = True, workers: int = 1,
    threads: int = 2,
) -> Path:
    """Write `patients` phantom patients to out/training (and `test_patients` to out/testing), atomically.

    Groups cycle NOR, MINF, DCM, HCM, RV as in ACDC's balanced design. `out` must not exist or be empty.
    `workers` > 1 writes patients in that many processes (each imports the package: worth it for many
    patients); otherwise `threads` write them in one process (numpy, scipy and zlib release the GIL for
    most of the work: about 1.4x on two cores, which is what the page's first ACDC sample waits for).
    """
    out = Path(out)
    if patients < 1:
        raise ValueError(f"--patients must be at least 1, got {patients}")
    if test_patients < 0:
        raise ValueError(f"--test-patients must not be negative, got {test_patients}")
    with atomic_folder(out) as temp:
        (temp / "SYNTHETIC.txt").write_text(
            "SYNTHETIC cardiac phantom written by inside_core.data.generate_acdc "
            f"(patients={patients}, test_patients={test_patients}, seed={seed}) in the ACDC layout; "
            "not the ACDC dataset and not patient data.\n"
        )
        total = patients + test_patients
        for name in ("training", "testing"):
            (temp / name).mkdir(exist_ok=True)
        jobs = [(temp, seed, number, patients) for number in range(1, total + 1)]
        bar = tqdm(total=total, desc="acdc phantom", unit="patient", disable=not progress)
        if workers > 1:  # patient n depends on (seed, n) only: the same files, in any order
            from multiprocessing import get_context

            with get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(_write_numbered, jobs):
                    bar.update()
        else:
            with ThreadPoolExecutor(max(1, threads)) as pool:
                for _ in pool.map(_write_numbered, jobs):
                    bar.update()
        bar.close()
        if not test_patients:
            (temp / "testing").rmdir()
    return out
