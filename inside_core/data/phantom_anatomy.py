"""Anatomy of the SYNTHETIC short-axis cine phantom: the heart over one cardiac cycle and its surroundings.

Everything is drawn in millimetres in the plane of one short-axis slice. Shapes are signed-distance
functions (negative inside) turned into soft masks one pixel wide, so edges carry in-plane partial
volume without supersampling; `inside_core.data.generate_acdc` averages a few sub-slices across the
slice thickness for the through-plane partial volume and adds contrast, bias, blur and noise.

Heart frame: origin at the LV centre, x to the image's right, y down (image rows), angles
atan2(y, x). The RV lies towards `rv_angle` (up-left, as in a short-axis view: RV on the left, LV on
the right, anterior up). Anatomical level s: 0 at the base (mitral valve plane), 1 at the apex;
s < 0 is above the base (atria, aortic root, pulmonary trunk: no labels), s > apex is below the heart.

ACDC label conventions: LV = the LV cavity INCLUDING papillary muscles and trabeculations, MYO = the
LV myocardium only, RV = the RV cavity (its thin free wall is background). At the base the ring opens
into the LV outflow tract, and the MYO label ends with the wall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# intensity classes; the generator draws one mean intensity per class and patient
CLASSES = ("air", "fat", "muscle", "soft", "lung", "vessel", "liver", "bone", "stomach", "blood", "myo", "wall")


def soft(sd: np.ndarray, px: float) -> np.ndarray:
    """Soft mask from a signed distance in mm: 1 inside, 0 outside, a linear edge one pixel wide."""
    mask = np.divide(sd, px)  # np.clip(0.5 - sd / px, 0, 1) in place (sd is never NaN)
    np.subtract(0.5, mask, out=mask)
    np.maximum(mask, 0.0, out=mask)
    return np.minimum(mask, 1.0, out=mask)


def wrap(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle difference in (-pi, pi]."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def ellipse_sd(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float,
               angle: float = 0.0) -> np.ndarray:
    """Approximate signed distance (mm) to an ellipse with semi-axes ax, ay rotated by `angle`."""
    u, v = x - cx, y - cy
    if angle != 0.0:  # unrotated, u and v would only gain signed zeros (irrelevant: squared)
        ca, sa = np.cos(angle), np.sin(angle)
        rotated = u * ca
        rotated += np.multiply(v, sa)
        v *= ca  # -u * sa + v * ca, exactly
        v -= np.multiply(u, sa, out=u)
        u = rotated
    q = np.divide(u, ax)  # sqrt((u / ax) ** 2 + (v / ay) ** 2) + 1e-9, fewer temporaries
    np.square(q, out=q)
    t = np.divide(v, ay)
    q += np.square(t, out=t)
    np.sqrt(q, out=q)
    q += 1e-9
    sd = np.hypot(u, v)  # (q - 1) * hypot(u, v) / q
    sd *= np.subtract(q, 1, out=t)
    return np.divide(sd, q, out=sd)


@dataclass
class Heart:
    """One patient's heart (mm, radians); drawn by `draw_heart`."""

    r_epi: float  # ED epicardial radius at the base
    wall: float  # ED wall thickness at the base
    ratio: float  # ES / ED cavity radius
    shortening: float  # long-axis shortening at ES (fraction of the length; the apex stays put)
    apex: float  # the profile reaches 0 at s = apex
    harmonics: list  # [(k, amplitude, phase)] shape of the contours
    rv_angle: float
    rv_width: float  # RV cavity thickness along its axis at the base, ED
    rv_span: float  # RV across semi-axis / LV epicardial radius
    rv_ratio: float  # ES / ED RV width
    rv_end: float  # level where the RV ends
    lvot_half: float  # half-angle of the outflow gap at s = 0
    open_until: float  # the ring is open for 0 <= s < open_until
    papillary: list  # [(angle, radial fraction, radius mm)]
    trabeculae: list  # [(k, amplitude, phase)] of the trabecular fringe
    trab_depth: float
    rv_spots: list  # [(along fraction, across fraction, radius)] RV trabeculations / moderator band
    fat: list  # [(k, amplitude, phase)] epicardial fat thickness over angle
    fat_mean: float
    infarct: tuple | None = None  # (angle, half-width) of a thinned segment (MINF)
    atria: dict = field(default_factory=dict)


def draw_heart(rng: np.random.Generator, group: str) -> Heart:
    """A random heart of an ACDC group (NOR, MINF, DCM, HCM, RV)."""
    # group: (ED cavity radius mm, wall mm, ES/ED radius ratio, RV width mm, RV ES/ED ratio)
    r_endo, wall, ratio, rv_width, rv_ratio = (rng.uniform(*r) for r in {
        "NOR": ((20, 26), (7, 10), (0.55, 0.68), (22, 32), (0.55, 0.72)),
        "MINF": ((25, 32), (5.5, 8), (0.80, 0.90), (22, 32), (0.62, 0.80)),
        "DCM": ((29, 36), (4.5, 6.5), (0.86, 0.94), (24, 34), (0.70, 0.85)),
        "HCM": ((15, 21), (12, 17), (0.40, 0.56), (18, 28), (0.55, 0.72)),
        "RV": ((18, 24), (6, 9), (0.58, 0.70), (34, 48), (0.78, 0.92)),
    }[group])
    rv_angle = np.deg2rad(-150 + rng.uniform(-20, 20))
    papillary = [(np.deg2rad(a) + rv_angle + np.pi, rng.uniform(0.45, 0.7), rng.uniform(2.5, 5.0))
                 for a in (rng.uniform(35, 65), -rng.uniform(35, 65))]
    return Heart(
        r_epi=r_endo + wall, wall=wall, ratio=ratio, shortening=rng.uniform(0.08, 0.16),
        apex=rng.uniform(1.0, 1.08),
        harmonics=[(k, rng.uniform(0, a), rng.uniform(0, 2 * np.pi)) for k, a in ((2, 0.07), (3, 0.03), (4, 0.02))],
        rv_angle=rv_angle, rv_width=rv_width, rv_span=rng.uniform(1.05, 1.3), rv_ratio=rv_ratio,
        rv_end=rng.uniform(0.75, 0.95), lvot_half=np.deg2rad(rng.uniform(30, 55)), open_until=rng.uniform(0.08, 0.16),
        papillary=papillary,
        trabeculae=[(int(k), rng.uniform(0.5, 1), rng.uniform(0, 2 * np.pi)) for k in rng.integers(7, 31, size=6)],
        trab_depth=rng.uniform(0.8, 2.5),
        rv_spots=[(rng.uniform(0.55, 0.9), rng.uniform(-0.5, 0.5), rng.uniform(1.5, 3.0)) for _ in range(3)],
        fat=[(int(k), rng.uniform(0, 1), rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3, 5)],
        fat_mean=rng.uniform(1.0, 5.0),
        infarct=(rv_angle + np.pi + rng.uniform(-1.2, 1.2), np.deg2rad(rng.uniform(25, 50))) if group == "MINF"
        else None,
        atria={"la": (rng.uniform(-0.2, 0.3), rng.uniform(0.4, 0.8), rng.uniform(0.8, 1.1), rng.uniform(0.6, 0.85)),
               "aorta": rng.uniform(11, 15), "ra": rng.uniform(0.6, 0.9), "pa": rng.uniform(10, 14)},
    )


def _angular(series: list, angle: np.ndarray) -> np.ndarray:
    """Sum of a * cos(k angle + phase) over a list of (k, a, phase)."""
    return sum(a * np.cos(k * angle + p) for k, a, p in series)


def heart_grid(h: Heart, x: np.ndarray, y: np.ndarray) -> dict:
    """What does not change over slices and frames: polar coordinates, the angular patterns, the atria
    that do not move and the grid's index map (drawing a small shape touches only its box)."""
    angle = np.arctan2(y, x)
    lvot = h.rv_angle + np.deg2rad(70)  # direction of the outflow tract and aorta
    r = h.r_epi
    ra, pa_angle = h.atria["ra"] * r, h.rv_angle + np.deg2rad(35)
    fixed = [(0.35 * r * np.cos(lvot), 0.35 * r * np.sin(lvot), h.atria["aorta"], h.atria["aorta"]),
             (1.0 * r * np.cos(h.rv_angle) - 0.1 * r, 1.0 * r * np.sin(h.rv_angle) + 0.6 * r, ra, ra * 0.8),
             (1.1 * r * np.cos(pa_angle), 1.1 * r * np.sin(pa_angle), h.atria["pa"], h.atria["pa"])]
    grid = {"x": x, "y": y, "angle": angle, "rho": (np.hypot(x, y) + 1e-6) / (1 + _angular(h.harmonics, angle)),
            "fringe": np.clip(_angular(h.trabeculae, angle) / 2.5 - 0.1, 0, 1),
            "fat": np.clip(h.fat_mean * (1 + 0.6 * _angular(h.fat, angle)), 0.3, None),
            "lvot": np.abs(wrap(angle - lvot)), "index": _index_map(x, y),
            "atria": [ellipse_sd(x, y, *shape) for shape in fixed if min(shape[2:]) >= 2]}  # aorta, RA, PA
    if h.infarct is not None:  # thinning profile of the infarct (times the wall thickness)
        grid["infarct"] = np.clip(1 - np.abs(wrap(angle - h.infarct[0])) / h.infarct[1], 0, 1) * 0.45
    return grid


def _index_map(x: np.ndarray, y: np.ndarray) -> tuple | None:
    """(x0, y0, inverse step matrix, step mm) when x, y form a regular square grid (rotated or not), else None."""
    if min(x.shape) < 2:
        return None
    steps = np.array([[x[1, 0] - x[0, 0], x[0, 1] - x[0, 0]], [y[1, 0] - y[0, 0], y[0, 1] - y[0, 0]]])
    step = float(np.hypot(*steps[:, 0]))
    i, j = np.indices(x.shape)
    error = max(np.abs(x[0, 0] + i * steps[0, 0] + j * steps[0, 1] - x).max(),
                np.abs(y[0, 0] + i * steps[1, 0] + j * steps[1, 1] - y).max())
    if step <= 0 or error > 1e-6 * step or abs(np.hypot(*steps[:, 1]) - step) > 1e-6 * step or \
            abs(steps[:, 0] @ steps[:, 1]) > 1e-6 * step**2:
        return None
    return float(x[0, 0]), float(y[0, 0]), np.linalg.inv(steps), step


def _box(grid: dict, cx: float, cy: float, reach: float) -> tuple[slice, slice]:
    """Rows and columns of the grid holding every pixel within `reach` mm of (cx, cy), 2 pixels to spare."""
    if grid["index"] is None:
        return slice(None), slice(None)
    x0, y0, inverse, step = grid["index"]
    i, j = inverse @ (cx - x0, cy - y0)
    k = reach / step + 2
    return (slice(max(int(np.floor(i - k)), 0), max(int(np.ceil(i + k)) + 1, 0)),
            slice(max(int(np.floor(j - k)), 0), max(int(np.ceil(j + k)) + 1, 0)))


def _disc(image: np.ndarray, grid: dict, cx: float, cy: float, r: float, px: float, within: np.ndarray,
          value: float) -> None:
    """Composite `value` over a soft disc where `within` < 0. Beyond r + px its mask is exactly 0, and
    compositing 0 leaves a pixel as it is: only the disc's box is computed (the same bytes, less work)."""
    box = _box(grid, cx, cy, r + px)
    x, y = grid["x"][box], grid["y"][box]
    _over(image[box], soft(np.hypot(x - cx, y - cy) - r, px) * (within[box] < 0), value)


def render_heart(h: Heart, level: float, c: float, grid: dict, px: float,
                 tone: dict[str, float], image: np.ndarray, labels: bool):
    """Paint the heart at plane level `level` and contraction c (0 ED, 1 ES) over `image` (in place).

    `level` is the plane's position at ED; at ES the base descends towards the fixed apex, so the same
    plane cuts the heart nearer the base. `grid` comes from `heart_grid`. Returns the ACDC label map
    when `labels` is true, else None.
    """
    s = 1 - (1 - level) / (1 - h.shortening * c)
    x, y, rho = grid["x"], grid["y"], grid["rho"]
    out = np.zeros(x.shape, np.uint8) if labels else None
    prof = np.sqrt(np.clip(1 - (max(s, 0.0) / h.apex) ** 2.4, 0, 1))
    r_epi_ed = h.r_epi * prof
    if s < 0 or r_epi_ed <= 0.5:  # above the base or below the apex
        if s < 0:
            _render_atria(h, s, grid, px, tone, image)
        return out
    wall = h.wall * (1 - 0.3 * s)
    r_endo_ed = max(r_epi_ed - wall, 0.0)
    r_endo = r_endo_ed * h.ratio ** c
    r_epi = np.sqrt(r_endo**2 + r_epi_ed**2 - r_endo_ed**2)
    if h.infarct is not None:  # a thinned, akinetic segment
        sd_epi = rho - (r_epi - grid["infarct"] * (r_epi - r_endo))
    else:
        sd_epi = rho - r_epi
    sd_endo = rho - r_endo

    # RV: an ellipse on the RV side minus the LV, wrapping the septum as a crescent
    rv_sd = rv_outer = None
    size = np.clip((h.rv_end - s) / h.rv_end, 0, 1) ** 0.55
    if size > 0.05:
        width = h.rv_width * size * h.rv_ratio ** c
        d = 0.6 * r_epi_ed + 0.1 * width
        along = r_epi + width - d
        across = max(r_epi_ed, 6.0) * h.rv_span * (0.8 + 0.2 * size) * (0.9 + 0.1 * h.rv_ratio ** c)
        cx, cy = d * np.cos(h.rv_angle), d * np.sin(h.rv_angle)
        rv_outer = ellipse_sd(x, y, cx, cy, along, across, h.rv_angle)
        rv_sd = np.maximum(rv_outer, -sd_epi)
        rv_outer -= 2.5  # free wall 2.5 mm thick
    heart_sd = sd_epi if rv_outer is None else np.minimum(sd_epi, rv_outer)
    _over(image, soft(heart_sd - grid["fat"], px), tone["fat"])

    # outflow tract: at the base the ring opens towards the aorta
    gap = grid["lvot"] < h.lvot_half * (1 - s / h.open_until) if s < h.open_until else None
    if rv_outer is not None:
        _over(image, soft(rv_outer, px), tone["wall"])
    myo = soft(sd_epi, px)
    if gap is not None:
        myo *= ~gap
    _over(image, myo, tone["myo"])
    if gap is not None and gap.any():  # blood of the outflow tract beyond the (absent) wall
        _over(image, soft(rho - r_epi - 6.0, px) * gap, tone["blood"])
    if rv_sd is not None:
        _over(image, soft(rv_sd, px), tone["blood"])
        ur, vr = np.cos(h.rv_angle), np.sin(h.rv_angle)
        for fa, fb, r in h.rv_spots:  # trabeculations near the free wall, labelled RV
            px_, py_ = (d + fa * along) * ur - fb * across * vr, (d + fa * along) * vr + fb * across * ur
            _disc(image, grid, px_, py_, r, px, rv_sd, tone["myo"])
    # the bright pool ends inside the trabecular fringe; the LV label follows the compact wall
    depth = min(h.trab_depth * (0.7 + 0.5 * s) * (1 + 0.4 * c), 0.3 * r_endo)
    _over(image, soft(rho - (r_endo - depth * grid["fringe"]), px), tone["blood"])
    if 0.12 < s < 0.8 and r_endo > 7:
        grow = np.sin(np.pi * (s - 0.12) / 0.68) ** 0.5
        for a, f, r in h.papillary:
            _disc(image, grid, f * r_endo * np.cos(a), f * r_endo * np.sin(a), r * grow * (1 + 0.35 * c), px,
                  sd_endo, tone["myo"])
    if s < 0.06:  # the left atrium appears behind the opening base, outside the ventricles
        outside = (heart_sd > 1.0).astype(float)
        _render_atria(h, s, grid, px, tone, image, only_la=True, mask=outside)
    if labels:
        out[(sd_epi < 0) & ~gap if gap is not None else sd_epi < 0] = 2
        if rv_sd is not None:
            out[rv_sd < 0] = 1
        out[sd_endo < 0] = 3
    return out


def _render_atria(h: Heart, s: float, grid: dict, px: float, tone: dict, image: np.ndarray,
                  only_la: bool = False, mask: np.ndarray | float = 1.0) -> None:
    """Above the base: left atrium behind, aortic root in the middle, right atrium and pulmonary trunk
    (these three do not move: their distances come from `heart_grid`)."""
    r = h.r_epi
    ox, oy, sx, sy = h.atria["la"]
    grow = np.clip(1 + s / 0.3, 0.4, 1) if not only_la else np.clip((0.06 - s) / 0.1, 0, 1)
    la = (ox * r, oy * r + 0.4 * r * (1 - grow), sx * r * grow, sy * r * grow)
    sds = [ellipse_sd(grid["x"], grid["y"], *la)] if min(la[2:]) >= 2 else []
    for sd in sds + ([] if only_la else grid["atria"]):
        _over(image, soft(sd - 2.5, px) * mask, tone["fat"])
        _over(image, soft(sd - 1.5, px) * mask, tone["wall"])
        _over(image, soft(sd, px) * mask, tone["blood"])


def _over(image: np.ndarray, alpha: np.ndarray, value) -> np.ndarray:
    """Composite `value` over `image` with opacity `alpha`, in place: image + alpha * (value - image)."""
    step = np.subtract(value, image)
    step *= alpha
    image += step
    return image


# -------------------------------------------------------------------------------------- surroundings
@dataclass
class Body:
    """The thorax around the heart, in the heart frame (mm): drawn once per patient by `draw_body`."""

    centre: tuple[float, float]  # body centre relative to the LV centre
    axes: tuple[float, float]
    fat: float
    muscle: float
    lungs: list  # [(cx, cy, ax, ay)]
    heart_reach: float
    liver: tuple  # (x offset, depth, curvature)
    stomach: tuple  # (cx, cy, ax, ay, gas)
    spine: tuple  # (cx, cy, r)
    aorta: tuple  # (cx, cy, r)


def draw_body(rng: np.random.Generator, heart: Heart) -> Body:
    """A random thorax placed around `heart` (the heart sits left-anterior of the body centre)."""
    ax, ay = rng.uniform(140, 190), rng.uniform(95, 130)
    bx, by = -rng.uniform(15, 45), rng.uniform(-5, 25)  # body centre relative to the heart
    reach = heart.r_epi + 0.5 * heart.rv_width + 8
    lungs = []
    for side in (-1, 1):
        lungs.append((side * (reach + rng.uniform(25, 45)) + 0.5 * bx, rng.uniform(-10, 20),
                      rng.uniform(45, 70), rng.uniform(75, 100)))
    spine = (bx + rng.uniform(-10, 15), by + ay - rng.uniform(45, 60), rng.uniform(16, 22))
    return Body(
        centre=(bx, by), axes=(ax, ay), fat=rng.uniform(6, 25), muscle=rng.uniform(8, 18), lungs=lungs,
        heart_reach=reach, liver=(rng.uniform(-70, -20), rng.uniform(25, 50), rng.uniform(0.002, 0.006)),
        stomach=(rng.uniform(30, 70), rng.uniform(60, 90), rng.uniform(25, 45), rng.uniform(18, 30),
                 rng.random() < 0.5),
        spine=spine, aorta=(spine[0] + rng.uniform(22, 32), spine[1] - rng.uniform(22, 32), rng.uniform(9, 13)),
    )


def render_body(b: Body, level: float, x: np.ndarray, y: np.ndarray, px: float, tone: dict,
                vessels: np.ndarray) -> np.ndarray:
    """The static surroundings of one slice at level `level` (the heart is painted over it later).

    `vessels` is a smooth random field: its peaks inside the lungs become bright pulmonary vessels.
    """
    image = np.full(x.shape, 0.0) + tone["air"]
    body_sd = ellipse_sd(x, y, *b.centre, *b.axes)
    image = _over(image, soft(body_sd, px), tone["fat"])
    image = _over(image, soft(body_sd + b.fat, px), tone["muscle"])
    inner = body_sd + b.fat + b.muscle
    image = _over(image, soft(inner, px), tone["soft"])
    low = max(level, 0.0)
    # liver below the diaphragm dome, rising into the plane towards the apex
    lx, depth, curv = b.liver
    edge = b.heart_reach + depth * (1.4 - low) + curv * (x - lx) ** 2
    liver = soft(np.maximum(edge - y, inner + 5), px)
    # lungs: the rest of the thoracic cavity, outside the mediastinum (heart and fat, the strip behind
    # the sternum, the spine and aorta); they shrink towards the apex as the liver rises
    heart_sd = np.hypot(x, y) - b.heart_reach * (1 - 0.25 * low) - 4
    cx, cy, r = b.spine
    mediastinum = np.minimum.reduce([
        heart_sd, ellipse_sd(x, y, cx + 12, (cy + 0.0) / 2, 30, abs(cy) / 2 + 10),
        ellipse_sd(x, y, 0.4 * b.centre[0], -b.heart_reach, 22, b.heart_reach * 0.9)])
    lung = np.zeros(x.shape)
    for lx_, ly_, ax, ay in b.lungs:
        sd = np.maximum(ellipse_sd(x, y, lx_, ly_, ax * 1.4, ay * (1.2 - 0.3 * low)), -mediastinum)
        lung = np.maximum(lung, soft(np.maximum(sd, inner + 6), px))
    lung *= 1 - liver
    image = _over(image, lung, tone["lung"])
    image = _over(image, lung * np.clip((vessels - 2.0) * 2, 0, 1), tone["vessel"])
    image = _over(image, liver, tone["liver"])
    sx, sy, sax, say, gas = b.stomach
    stomach_sd = ellipse_sd(x, y, sx, sy + 40 * (1 - low), sax, say)
    image = _over(image, soft(np.maximum(stomach_sd + 3, inner + 3), px), tone["muscle"])
    image = _over(image, soft(np.maximum(stomach_sd, inner + 6), px), tone["air"] if gas else tone["stomach"])
    image = _over(image, soft(ellipse_sd(x, y, cx, cy + 35, 2.2 * r, 1.6 * r), px), tone["muscle"])
    image = _over(image, soft(np.hypot(x - cx, y - cy) - r - 1.5, px), tone["wall"])
    image = _over(image, soft(np.hypot(x - cx, y - cy) - r, px), tone["bone"])
    ax_, ay_, ar = b.aorta
    image = _over(image, soft(np.hypot(x - ax_, y - ay_) - ar - 1.5, px), tone["wall"])
    image = _over(image, soft(np.hypot(x - ax_, y - ay_) - ar, px), tone["blood"])
    return image
