"""SYNTHETIC cardiac phantom written in exactly the ACDC layout (not patient data).

Layout written under `out` (the same as an unpacked ACDC download):

    training/patientNNN/Info.cfg                       ED, ES, Group, Height, NbFrame, Weight
    training/patientNNN/patientNNN_4d.nii.gz           cine (X, Y, Z, T)
    training/patientNNN/patientNNN_frameFF.nii.gz      ED and ES volumes (FF 1-based, two digits)
    training/patientNNN/patientNNN_frameFF_gt.nii.gz   labels: 0 background, 1 RV, 2 MYO, 3 LV
    testing/...                                        the same for the --test-patients patients

What a slice looks like (arrays are (row, column) = NIfTI axes (0, 1)): a bright LV blood pool with
two dark papillary muscles (labelled LV, as in ACDC), a darker myocardial ring (MYO), an RV crescent
(RV) wrapped around the septum that shrinks towards the apex and is gone before it, a thin dark RV
free wall, pericardial fat, lungs, liver, a body outline with subcutaneous fat, a smooth multiplicative
bias field and Rician noise. Slice position s (0 = base, 1 = apex): the epicardial radius follows a
half-ellipsoid R_epi(s) = R_epi0 * sqrt(1 - (s / L)^2), L in [1.0, 1.15]; the cavity is R_epi - wall.

Cardiac cycle: contraction c(t) = 0 at ED (frame 1), 1 at ES, raised-cosine in between and back.
The cavity radius shrinks to R_endo * (ratio ** c) (ratio = ES/ED radius, by group) while the myocardial
area is conserved, so the wall thickens: R_epi_t = sqrt(R_endo_t^2 + R_epi^2 - R_endo^2).
Groups change the geometry: NOR normal, MINF dilated with poor contraction and a thinned segment,
DCM large thin-walled cavity barely contracting, HCM thick wall small cavity, RV an enlarged RV.

Per patient: group, size 160-256 px, spacing 1.2-1.8 mm, 6-12 slices of 5-10 mm, 12-25 frames, heart
position and orientation, stack order (30 % apex first), storage (float32, int16 with a scaling slope,
plain int16) and a non-identity affine. Everything is drawn from numpy.random.default_rng([seed, n]),
nibabel writes gzip with mtime 0: the same arguments give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from inside_core.data.cache import atomic_folder

GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")
DESCRIPTION = b"SYNTHETIC cardiac phantom (inside_core)"


@dataclass
class PatientGeometry:
    group: str
    rows: int
    columns: int
    spacing: float  # in-plane mm
    slice_mm: float
    num_slices: int
    num_frames: int
    es_frame: int  # 1-based
    centre: tuple[float, float]  # heart centre, mm from the image centre (row, column)
    rv_angle: float  # direction from LV to RV, radians in (row, column) space
    r_endo: float  # ED cavity radius at the base, mm
    wall: float  # ED wall thickness, mm
    radius_ratio: float  # ES / ED cavity radius
    rv_scale: float
    rv_ratio: float  # ES / ED RV size
    rv_end: float  # slice position where the RV ends
    apex: float  # L of the half-ellipsoid
    ellipticity: float
    ellipse_angle: float
    apex_first: bool


def draw_geometry(rng: np.random.Generator, group: str) -> PatientGeometry:
    """Random patient geometry within the ranges of the module docstring, shaped by the group."""
    # group: (cavity radius mm, wall mm, ES/ED radius ratio, RV scale, RV ES/ED ratio)
    ranges = {
        "NOR": ((21, 26), (7, 9.5), (0.58, 0.68), (0.95, 1.1), (0.62, 0.72)),
        "MINF": ((25, 31), (5.5, 7.5), (0.80, 0.88), (0.95, 1.1), (0.68, 0.78)),
        "DCM": ((29, 35), (4.5, 6.5), (0.86, 0.93), (1.0, 1.15), (0.72, 0.82)),
        "HCM": ((16, 21), (12, 16), (0.42, 0.56), (0.85, 1.0), (0.62, 0.72)),
        "RV": ((19, 24), (6, 8), (0.60, 0.70), (1.35, 1.65), (0.80, 0.90)),
    }[group]
    r_endo, wall, ratio, rv_scale, rv_ratio = (rng.uniform(*r) for r in ranges)
    num_frames = int(rng.integers(12, 26))
    spacing = float(rng.uniform(1.2, 1.8))
    size_mm = rng.uniform(260, 360)
    rows = int(np.clip(round(size_mm / spacing * rng.uniform(0.85, 1.0)), 160, 256))
    columns = int(np.clip(round(size_mm / spacing), 160, 256))
    return PatientGeometry(
        group=group,
        rows=rows,
        columns=columns,
        spacing=spacing,
        slice_mm=float(rng.choice([5.0, 6.5, 8.0, 10.0])),
        num_slices=int(rng.integers(6, 13)),
        num_frames=num_frames,
        es_frame=int(np.clip(round(num_frames * rng.uniform(0.32, 0.45)), 3, num_frames - 2)),
        centre=(float(rng.uniform(-20, 20)), float(rng.uniform(-25, 25))),
        rv_angle=float(np.deg2rad(-120 + rng.uniform(-30, 30))),  # RV up-left of the LV
        r_endo=r_endo,
        wall=wall,
        radius_ratio=ratio,
        rv_scale=rv_scale,
        rv_ratio=rv_ratio,
        rv_end=float(rng.uniform(0.72, 0.92)),
        apex=float(rng.uniform(1.0, 1.15)),
        ellipticity=float(rng.uniform(0.0, 0.08)),
        ellipse_angle=float(rng.uniform(0, np.pi)),
        apex_first=bool(rng.random() < 0.3),
    )


def contraction(frame: int, geometry: PatientGeometry) -> float:
    """c(frame) in [0, 1]: 0 at ED (frame 1), 1 at ES, raised cosine up to ES and back down after."""
    es, n = geometry.es_frame, geometry.num_frames
    if frame <= es:
        return 0.5 * (1 - np.cos(np.pi * (frame - 1) / (es - 1)))
    return 0.5 * (1 + np.cos(np.pi * (frame - es) / (n + 1 - es)))


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std smooth random field."""
    field = gaussian_filter(rng.standard_normal(shape), sigma)
    return (field - field.mean()) / (field.std() + 1e-8)


def _background(rng: np.random.Generator, g: PatientGeometry, row_mm: np.ndarray, col_mm: np.ndarray) -> np.ndarray:
    """Static surroundings of one slice: body, subcutaneous fat, lungs, liver, textured tissue."""
    shape = row_mm.shape
    px = g.spacing
    body_rows = rng.uniform(0.36, 0.44) * g.rows * px
    body_cols = rng.uniform(0.44, 0.49) * g.columns * px
    body = (row_mm / body_rows) ** 2 + (col_mm / body_cols) ** 2
    texture = _smooth_field(rng, shape, 2.0 / px * 1.5)
    image = np.full(shape, 0.02)
    inside = body <= 1
    image[inside] = 0.38 + 0.06 * texture[inside]
    fat_rim = inside & (body > (1 - rng.uniform(10, 18) / min(body_rows, body_cols)) ** 2)
    image[fat_rim] = 0.72 + 0.05 * texture[fat_rim]
    # lungs: two dark lobes left and right of the heart, with a few bright vessels
    heart_r, heart_c = g.centre
    lungs = np.zeros(shape, dtype=bool)
    for side in (-1, 1):
        lung_c = heart_c + side * rng.uniform(55, 75)
        lung_r = heart_r + rng.uniform(-20, 5)
        lung = ((row_mm - lung_r) / rng.uniform(55, 75)) ** 2 + ((col_mm - lung_c) / rng.uniform(30, 42)) ** 2
        lung_mask = (lung + 0.25 * _smooth_field(rng, shape, 8.0) <= 1) & (body < 0.75)
        image[lung_mask] = 0.06 + 0.03 * texture[lung_mask]
        lungs |= lung_mask
    vessels = lungs & (_smooth_field(rng, shape, 1.2) > 2.2)
    image[vessels] = 0.35
    # liver: lower part of the body, mid grey
    edge = heart_r + rng.uniform(45, 70) + 0.15 * (col_mm - heart_c) + 6 * _smooth_field(rng, shape, 10.0)
    liver = inside & (row_mm > edge) & (body < 0.85) & ~lungs
    image[liver] = 0.48 + 0.04 * texture[liver]
    return image


def render_slice(
    g: PatientGeometry, position: float, c: float, row_mm: np.ndarray, col_mm: np.ndarray,
    background: np.ndarray, papillary: list[tuple[float, float, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Intensity (noise-free, before bias) and labels of one slice at slice position s and contraction c."""
    dr, dc = row_mm - g.centre[0], col_mm - g.centre[1]
    radius = np.hypot(dr, dc)
    angle = np.arctan2(dr, dc)
    # mild ellipticity: radius scaled by direction
    shape = 1 + g.ellipticity * np.cos(2 * (angle - g.ellipse_angle))
    rho = radius / shape

    profile = np.sqrt(max(0.0, 1 - (position / g.apex) ** 2))
    r_epi_ed = (g.r_endo + g.wall) * profile
    r_endo_ed = max(0.0, r_epi_ed - g.wall)
    r_endo = r_endo_ed * g.radius_ratio**c
    r_epi = np.sqrt(r_endo**2 + r_epi_ed**2 - r_endo_ed**2)
    if g.group == "MINF":  # infarcted segment: thinner wall over ~70 degrees opposite the RV
        thin = np.cos(angle - g.rv_angle - np.pi) > np.cos(np.deg2rad(35))
        r_epi = np.where(thin, r_endo + 0.55 * (r_epi - r_endo), r_epi)

    labels = np.zeros(row_mm.shape, dtype=np.uint8)
    image = background.copy()
    heart = rho <= r_epi + 4.0
    # pericardial fat / epicardial tissue around the heart
    image[heart] = 0.62
    myo = rho <= r_epi
    lv = rho <= r_endo
    labels[myo] = 2
    labels[lv] = 3

    # RV: an ellipse on the septal side, minus the LV; shrinks to nothing at rv_end; contracts at ES
    rv_size = np.clip(1 - position / g.rv_end, 0, 1) ** 0.6 * g.rv_scale * (g.rv_ratio**c)
    rv_mask = np.zeros_like(lv)
    if rv_size > 0.05:
        base_epi = g.r_endo + g.wall
        along = base_epi * 0.62 * rv_size
        across = base_epi * 1.25 * min(1.0, rv_size**0.5 * 1.05)
        offset = r_epi_ed * 0.55 + along * 0.55
        ur, uc = np.sin(g.rv_angle), np.cos(g.rv_angle)
        cr, cc = g.centre[0] + ur * offset, g.centre[1] + uc * offset
        a = (row_mm - cr) * ur + (col_mm - cc) * uc  # along the LV->RV axis
        b = -(row_mm - cr) * uc + (col_mm - cc) * ur  # across
        ellipse = (a / along) ** 2 + (b / across) ** 2
        rv_wall = (ellipse <= (1 + 3.0 / along) ** 2) & ~myo
        rv_mask = (ellipse <= 1) & ~myo & (rho > r_epi + 0.5)
        image[rv_wall] = 0.30
        labels[rv_mask] = 1

    image[myo] = 0.27
    image[lv] = 0.90
    image[rv_mask] = 0.84
    # papillary muscles: dark dots inside the cavity, labelled LV as in ACDC
    if 0.25 < position < 0.85 and r_endo > 8:
        for p_angle, p_radius, p_size in papillary:
            pr = g.centre[0] + np.sin(p_angle) * p_radius * r_endo
            pc = g.centre[1] + np.cos(p_angle) * p_radius * r_endo
            image[(np.hypot(row_mm - pr, col_mm - pc) <= p_size * (1 + 0.4 * c)) & lv] = 0.32
    return image, labels


def make_patient(rng: np.random.Generator, group: str):
    """(geometry, cine float32 (X, Y, Z, T) in arbitrary units, ED labels, ES labels) of one phantom."""
    g = draw_geometry(rng, group)
    rows_mm = (np.arange(g.rows) - (g.rows - 1) / 2) * g.spacing
    cols_mm = (np.arange(g.columns) - (g.columns - 1) / 2) * g.spacing
    row_mm, col_mm = np.meshgrid(rows_mm, cols_mm, indexing="ij")
    # slice positions from base (0) to apex (~1): a little margin at both ends
    positions = np.linspace(rng.uniform(-0.05, 0.05), rng.uniform(0.85, 0.97), g.num_slices)
    # one anatomy for the stack, each slice with its own texture variation
    anatomy = _background(rng, g, row_mm, col_mm)
    backgrounds = [
        np.clip(anatomy + 0.03 * _smooth_field(rng, row_mm.shape, 3.0), 0, 1).astype(np.float32) for _ in positions
    ]
    papillary = [
        (g.rv_angle + np.pi + rng.uniform(0.5, 0.9), rng.uniform(0.55, 0.7), rng.uniform(2.0, 3.5)),
        (g.rv_angle + np.pi - rng.uniform(0.5, 0.9), rng.uniform(0.55, 0.7), rng.uniform(2.0, 3.5)),
    ]
    # smooth multiplicative bias (coil sensitivity): brighter on one side
    bias_dir = rng.uniform(0, 2 * np.pi)
    bias = 1 + rng.uniform(0.15, 0.35) * (np.cos(bias_dir) * row_mm + np.sin(bias_dir) * col_mm) / (
        0.5 * max(g.rows, g.columns) * g.spacing
    )
    bias = (bias * (1 + 0.08 * _smooth_field(rng, row_mm.shape, 25.0))).astype(np.float32)
    noise_sigma = rng.uniform(0.025, 0.05)
    contrast = rng.uniform(0.85, 1.15)  # blood-to-myocardium contrast varies by scanner

    # the heart changes only inside a window around it: render there, paste into the static slice
    reach = (g.r_endo + g.wall) * (0.6 + g.rv_scale) + 12.0  # LV radius plus the RV's extent, plus fat
    window = (
        slice(max(0, int((g.centre[0] - reach) / g.spacing + (g.rows - 1) / 2)),
              min(g.rows, int((g.centre[0] + reach) / g.spacing + (g.rows - 1) / 2) + 2)),
        slice(max(0, int((g.centre[1] - reach) / g.spacing + (g.columns - 1) / 2)),
              min(g.columns, int((g.centre[1] + reach) / g.spacing + (g.columns - 1) / 2) + 2)),
    )
    cine = np.zeros((g.rows, g.columns, g.num_slices, g.num_frames), dtype=np.float32)
    labels = {frame: np.zeros((g.rows, g.columns, g.num_slices), np.uint8) for frame in (1, g.es_frame)}
    stack = np.stack(backgrounds, axis=2)  # (rows, columns, slices)
    for frame in range(1, g.num_frames + 1):
        c = contraction(frame, g)
        volume = stack.copy()
        for k, position in enumerate(positions):
            volume[window + (k,)], label = render_slice(
                g, position, c, row_mm[window], col_mm[window], backgrounds[k][window], papillary
            )
            if frame in labels:
                labels[frame][window + (k,)] = label
        volume = 0.5 + (volume - 0.5) * contrast
        volume = gaussian_filter(volume, (0.6, 0.6, 0)) * bias[..., None]  # partial volume, then bias
        noise = rng.standard_normal((2, *volume.shape), dtype=np.float32) * noise_sigma
        cine[..., frame - 1] = np.hypot(volume + noise[0], noise[1])  # Rician magnitude
    if g.apex_first:
        cine = cine[:, :, ::-1]
        labels = {frame: volume[:, :, ::-1] for frame, volume in labels.items()}
    scale = rng.uniform(300, 1500)
    return g, np.ascontiguousarray(cine * scale), labels[1].copy(), labels[g.es_frame].copy()


def _affine(rng: np.random.Generator, g: PatientGeometry) -> np.ndarray:
    """A non-identity affine: random oblique rotation times the voxel sizes, plus a translation."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    theta = rng.uniform(0.2, 1.2)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * k @ k
    zooms = np.array([g.spacing, g.spacing, g.slice_mm * (-1 if g.apex_first else 1)])
    affine = np.eye(4)
    affine[:3, :3] = rotation * zooms
    affine[:3, 3] = rng.uniform(-150, 150, size=3)
    return affine


def _save(volume: np.ndarray, affine: np.ndarray, path: Path, storage: str, frame_ms: float | None = None) -> None:
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
    if frame_ms is not None:
        image.header.set_zooms(image.header.get_zooms()[:3] + (frame_ms,))
        image.header.set_xyzt_units("mm", "msec")
    else:
        image.header.set_xyzt_units("mm")
    nib.save(image, path)


def write_patient(folder: Path, patient_id: str, rng: np.random.Generator, group: str) -> None:
    """Draw one phantom patient and write it in the ACDC layout into folder/patient_id."""
    g, cine, ed_labels, es_labels = make_patient(rng, group)
    # storage varies as in real data; the (large) cine is always int16, the ED/ES volumes sometimes float32
    storage = str(rng.choice(["int16_scaled", "int16"], p=[0.6, 0.4]))
    frame_storage = "float32" if rng.random() < 0.2 else storage
    affine = _affine(rng, g)
    height = round(float(rng.uniform(150, 195)), 1)
    weight = round(float(rng.uniform(50, 110)), 1)
    patient = folder / patient_id
    patient.mkdir(parents=True)
    (patient / "Info.cfg").write_text(
        f"ED: 1\nES: {g.es_frame}\nGroup: {g.group}\nHeight: {height}\nNbFrame: {g.num_frames}\nWeight: {weight}\n"
    )
    _save(cine, affine, patient / f"{patient_id}_4d.nii.gz", storage, frame_ms=round(900.0 / g.num_frames, 2))
    for frame, labels in ((1, ed_labels), (g.es_frame, es_labels)):
        _save(cine[..., frame - 1], affine, patient / f"{patient_id}_frame{frame:02d}.nii.gz", frame_storage)
        _save(labels, affine, patient / f"{patient_id}_frame{frame:02d}_gt.nii.gz", "label")


def generate_acdc(
    out: str | Path, patients: int, seed: int = 0, test_patients: int = 0, progress: bool = True
) -> Path:
    """Write `patients` phantom patients to out/training (and `test_patients` to out/testing), atomically.

    Groups cycle NOR, MINF, DCM, HCM, RV as in ACDC's balanced design. `out` must not exist or be empty.
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
        for number in tqdm(range(1, total + 1), desc="acdc phantom", unit="patient", disable=not progress):
            folder = temp / ("training" if number <= patients else "testing")
            rng = np.random.default_rng([seed, number])
            write_patient(folder, f"patient{number:03d}", rng, GROUPS[(number - 1) % len(GROUPS)])
    return out
