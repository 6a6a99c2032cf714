"""Drawing helpers for the dashboard: numpy overlays (fast, shown with st.image) and plotly figures.

Coordinates: INSIDE's means and widths are in the normalised units of `inside_core.geometry`, which
places them on pixels (plotly's image trace puts pixel k's centre at k). Colours: `inside_core.palette`,
the same as the exported figures'.

Nothing here imports streamlit: the page decides where each drawing goes.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from inside_core import palette
from inside_core.geometry import gaussian, mean_attention, normalised_to_pixel, pixel_centres_np, sigma_to_pixels

# one colour per label (binary target; ACDC RV, MYO, LV), as float RGB for blending
LABEL_COLOURS = {label: np.array(palette.rgb(colour), np.float32) for label, colour in palette.LABEL_COLOURS.items()}
ELLIPSE_COLOUR = palette.rgba(palette.ELLIPSE_COLOUR, 0.85)
MEAN_COLOURSCALE = palette.ATTENTION_COLOURSCALE
PLOT_MARGIN = dict(l=8, r=8, t=32, b=8)
# plotly modebar: keep it small; the PNG button exports at twice the shown size
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"scale": 2}}


# ------------------------------------------------------------------------------------ images


def to_rgb_uint8(image) -> np.ndarray:
    """An image (C, H, W) or (H, W) tensor/array in [0, 1] as uint8 RGB (H, W, 3).

    Single-channel (MRI) images are stretched to their 1st-99th percentile range for display.
    """
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[-1] == 3:
        return array  # already for display
    array = array.astype(np.float32)
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[-1] == 1:
        low, high = np.percentile(array, (1, 99))
        array = np.clip((array - low) / max(high - low, 1e-6), 0, 1)
        array = np.repeat(array, 3, axis=-1)
    return (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)


def outline(region: np.ndarray) -> np.ndarray:
    """The boundary pixels of a boolean region: the region minus its erosion by a cross (4 neighbours;
    outside the image counts as outside the region). Array slices: a few times faster than
    scipy.ndimage.binary_erosion at display size, on every control move."""
    region = np.asarray(region, dtype=bool)
    padded = np.pad(region, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return region & ~inner


def overlay(image, labels: np.ndarray, ground_truth: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """The input with the predicted labels blended in and outlined in their colour (a tint alone vanishes
    on an object of a similar colour), and the ground truth as white outlines.

    Returns uint8 RGB (H, W, 3). `labels`, `ground_truth`: int (H, W), 0 = background. Only the labelled
    pixels are blended (the rest are copied): the page redraws this on every control move.
    """
    rgb = to_rgb_uint8(image).copy()
    labels = np.asarray(labels)
    coloured = np.isin(labels, list(LABEL_COLOURS))
    if coloured.any():
        colours = np.zeros((max(LABEL_COLOURS) + 1, 3), np.float32)
        for label, colour in LABEL_COLOURS.items():
            colours[label] = colour
        blended = (1 - alpha) * rgb[coloured].astype(np.float32) + alpha * colours[labels[coloured]]
        rgb[coloured] = (blended + 0.5).astype(np.uint8)
        for label in np.unique(labels[coloured]):
            rgb[outline(labels == label)] = LABEL_COLOURS[int(label)]
    if ground_truth is not None:
        for label in np.unique(ground_truth):
            if label == 0:
                continue
            rgb[outline(ground_truth == label)] = 255
    return rgb


def display_size(height: int, width: int, pixels: int) -> tuple[int, int]:
    """(h, w) of an image scaled so that its longer side is `pixels`, aspect ratio kept."""
    scale = pixels / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def upscaled_rgb(image, size: tuple[int, int]) -> np.ndarray:
    """An image as uint8 RGB at `size` (h, w), resampled smoothly (bicubic), not by repeating pixels."""
    rgb = to_rgb_uint8(image)
    if rgb.shape[:2] == tuple(size):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.Resampling.BICUBIC))


def smooth_labels(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Labels (h, w) at a display size from (K, H, W) probabilities upsampled bilinearly (the grid of
    `inside_core.geometry`, align_corners=False), then thresholded (K = 1) or arg-maxed: smooth outlines."""
    import torch
    import torch.nn.functional as F

    p = torch.from_numpy(np.ascontiguousarray(probabilities, dtype=np.float32))[None]
    p = F.interpolate(p, size=tuple(size), mode="bilinear", align_corners=False)[0].numpy()
    # numpy's arg-max over the class axis: ~3 ms at 4 x 400 x 400, torch's (one thread) ~24 ms
    return (p[0] > 0.5).astype(np.int64) if p.shape[0] == 1 else p.argmax(axis=0)


def nearest_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Integer labels (H, W) at a display size by nearest neighbour (pixel centres as in geometry)."""
    rows = np.minimum((np.arange(size[0]) + 0.5) * labels.shape[0] / size[0], labels.shape[0] - 1).astype(int)
    columns = np.minimum((np.arange(size[1]) + 0.5) * labels.shape[1] / size[1], labels.shape[1] - 1).astype(int)
    return np.asarray(labels)[rows[:, None], columns[None, :]]


def draw_points(rgb: np.ndarray, points_xy: np.ndarray, colour=(255, 230, 0), radius: int = 1) -> np.ndarray:
    """Small squares at pixel positions (x = column, y = row), for strips of many small images."""
    out = rgb.copy()
    height, width = out.shape[:2]
    for x, y in np.rint(points_xy).astype(int):
        out[max(y - radius, 0) : min(y + radius + 1, height), max(x - radius, 0) : min(x + radius + 1, width)] = colour
    return out


def jpeg_bytes(rgb: np.ndarray, quality: int = 92, subsampling: int = 0) -> bytes:
    """A uint8 image as JPEG bytes, by default without chroma subsampling (coloured mask edges stay sharp):
    several times faster to encode, send and decode than a PNG of the same image, once per slider move."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    return buffer.getvalue()


def jpeg_uri(jpeg: bytes) -> str:  # what an <img> in a component shows
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def jpeg_data_uri(rgb: np.ndarray, quality: int = 88) -> str:
    """A uint8 image as a JPEG data URI: the attention figure's background, a few kB instead of the
    ~100 kB of a PNG, and it is re-sent with every figure update."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ------------------------------------------------------------------------------------ geometry


def ellipse_path(centres_x: np.ndarray, centres_y: np.ndarray, radii_x: np.ndarray, radii_y: np.ndarray,
                 points: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned ellipses as one polyline with NaN gaps (one plotly trace for all channels; float
    arrays travel to the browser as compact binary)."""
    angle = np.append(np.linspace(0, 2 * np.pi, points), np.nan)
    xs = np.asarray(centres_x)[:, None] + np.asarray(radii_x)[:, None] * np.cos(angle)[None]
    ys = np.asarray(centres_y)[:, None] + np.asarray(radii_y)[:, None] * np.sin(angle)[None]
    return xs.ravel(), ys.ravel()


def gaussian_profile(mu: np.ndarray, sigma: np.ndarray, size: int) -> np.ndarray:
    """Per-channel 1-D Gaussians at the pixel centres of `size` pixels, shape (C, size)."""
    return gaussian(pixel_centres_np(size)[None, :], np.asarray(mu)[:, None], np.asarray(sigma)[:, None])


def channel_indices(count: int, channel) -> np.ndarray:
    """The channels to draw: all (None), one (an int) or a chosen few (a sequence)."""
    if channel is None:
        return np.arange(count)
    return np.array([channel]) if np.isscalar(channel) else np.asarray(list(channel), dtype=int)


def table_mean_attention(table: dict[str, np.ndarray], height: int, width: int,
                         channel: int | None = None) -> np.ndarray:
    """Mean attention over a channel table's channels (or one channel), (height, width)."""
    chosen = channel_indices(len(table["mu_x"]), channel)
    return mean_attention(*(table[k][chosen] for k in ("mu_x", "mu_y", "sigma_x", "sigma_y")), height, width)


# ------------------------------------------------------------------------------------ plotly figures
#
# Figures are plain dicts (plotly's JSON schema): Streamlit validates a figure once on its way to the
# browser, and building graph objects first would validate it twice. They are rebuilt on every
# slider move, so they stay small: numpy arrays (sent as binary), few traces, no default template.


def _image_axes(height: int, width: int, anchor: str = "x", **extra) -> tuple[dict, dict]:
    x = dict(range=[-0.5, width - 0.5], showticklabels=False, showgrid=False, zeroline=False, constrain="domain",
             ticks="", showline=False, **extra)
    y = dict(range=[height - 0.5, -0.5], showticklabels=False, showgrid=False, zeroline=False,
             scaleanchor=anchor, constrain="domain", ticks="", showline=False)
    return x, y


def _layout(**items) -> dict:
    return {"template": "none", "margin": PLOT_MARGIN, "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)", **items}


def with_room_for_ticks(figure: dict) -> dict:
    """Every axis with tick labels grows the margin to fit them (`automargin`): "−1" lost its minus sign."""
    for name, axis in figure["layout"].items():
        if name.startswith(("xaxis", "yaxis")) and isinstance(axis, dict) and axis.get("showticklabels", True):
            axis.setdefault("automargin", True)
    return figure


def attention_figure(background: str | np.ndarray, table: dict[str, np.ndarray], channel: int | None = None,
                     title: str = "INSIDE attention", size: tuple[int, int] | None = None,
                     marker: tuple[tuple[float, float], float | None] | None = None,
                     background_size: tuple[int, int] | None = None) -> dict:
    """Each channel's Gaussian over the input: mean (mu_x, mu_y) as a point, 1-sigma ellipse.

    `background`: a uint8 (H, W, 3) image or an image data URI (then give `size` = (H, W), the model
    input's size, and `background_size` if the picture has another resolution: it is scaled onto it);
    `table`: per-channel arrays mu_x, mu_y, sigma_x, sigma_y, gamma, beta (normalised units).
    Hover: channel, mu, sigma, gamma, beta. `channel`: None (all), one channel, or a few (a sequence).
    `marker` = ((x, y), r or None), normalised: where z points (the requested location, and the point
    model's radius), drawn as a white cross and dashed ring (`Condition.marker`). The points are coloured
    by gamma (red > 0, blue < 0), said in the subtitle rather than by a colour bar, which would cost
    plotly more time to draw on every move than the rest of the figure.
    """
    if isinstance(background, np.ndarray):
        size = size or background.shape[:2]
        background = jpeg_data_uri(background)
    height, width = size
    chosen = channel_indices(len(table["mu_x"]), channel)
    points = attention_points(table, chosen, size)
    cx, cy = points["cx"], points["cy"]
    ex, ey = ellipse_path(cx, cy, points["rx"], points["ry"])
    custom = np.stack([chosen, table["mu_x"][chosen], table["mu_y"][chosen], table["sigma_x"][chosen],
                       table["sigma_y"][chosen], table["gamma"][chosen], table["beta"][chosen]], axis=-1)
    gamma = table["gamma"][chosen]
    limit = float(max(np.abs(table["gamma"]).max(), 1e-6))
    # the picture spread over the model grid (pixel k's centre at k, as for the Gaussians), as a layout
    # image: an unchanged layout image is not decoded again when a control move redraws the traces
    picture = {"source": background, "xref": "x", "yref": "y", "x": -0.5, "y": -0.5, "sizex": width,
               "sizey": height, "sizing": "stretch", "xanchor": "left", "yanchor": "top", "layer": "below"}
    data = [
        {"type": "scatter", "x": ex, "y": ey, "mode": "lines", "name": "1σ", "hoverinfo": "skip",
         "line": {"color": ELLIPSE_COLOUR, "width": 1}},
        {"type": "scatter", "x": cx, "y": cy, "mode": "markers", "name": "μ", "customdata": custom,
         "marker": {"size": 8 if len(chosen) > 1 else 12, "color": gamma, "colorscale": palette.GAMMA_COLOURSCALE,
                    "cmin": -limit, "cmax": limit, "line": {"color": "black", "width": 1}},
         "hovertemplate": ("channel %{customdata[0]:.0f}<br>μ = (%{customdata[1]:.3f}, %{customdata[2]:.3f})"
                           "<br>σ = (%{customdata[3]:.3f}, %{customdata[4]:.3f})<br>γ = %{customdata[5]:.3f}"
                           "<br>β = %{customdata[6]:.3f}<extra></extra>")},
    ]
    subtitle = "dot: mean μ, coloured by γ (red > 0, blue < 0) · ring: 1σ · hover for numbers"
    if marker is not None:
        data += marker_traces(marker, height, width)
        subtitle += "<br>white cross" + (" and dashed ring: the requested point and radius" if marker[1] else
                                         ": the requested location")
    xaxis, yaxis = _image_axes(height, width)
    subtitle = {"text": subtitle}
    return {"data": data, "layout": _layout(title={"text": title, "subtitle": subtitle}, showlegend=False,
                                            height=440, xaxis=xaxis, yaxis=yaxis, images=[picture],
                                            margin=dict(PLOT_MARGIN, t=84))}


def attention_points(table: dict[str, np.ndarray], chosen, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The drawn channels' means and 1-sigma radii in pixels of an image of `size` (h, w), and their
    gamma: what the attention figure draws (and what app/scrub.py sends for the browser to draw)."""
    height, width = size
    return {"cx": normalised_to_pixel(table["mu_x"][chosen], width),
            "cy": normalised_to_pixel(table["mu_y"][chosen], height),
            "rx": sigma_to_pixels(table["sigma_x"][chosen], width),
            "ry": sigma_to_pixels(table["sigma_y"][chosen], height), "gamma": table["gamma"][chosen]}


def marker_point(marker: tuple[tuple[float, float], float | None], height: int,
                 width: int) -> tuple[float, float, float | None, float | None]:
    """(column, row, ring radius x, ring radius y) in pixels of where z points (radii None without one)."""
    (x, y), radius = marker
    column, row = float(normalised_to_pixel(x, width)), float(normalised_to_pixel(y, height))
    if not radius:
        return column, row, None, None
    return column, row, float(sigma_to_pixels(radius, width)), float(sigma_to_pixels(radius, height))


def marker_traces(marker: tuple[tuple[float, float], float | None], height: int, width: int) -> list[dict]:
    """Where z points, on an image of (height, width) pixels: a cross, and a dashed ring for a radius."""
    column, row, ring_x, ring_y = marker_point(marker, height, width)
    colour = palette.MARKER_COLOUR
    traces = [{"type": "scatter", "x": [column], "y": [row], "mode": "markers", "name": "query", "hoverinfo": "skip",
               "marker": {"symbol": "cross-thin", "size": 16, "line": {"color": colour, "width": 3}}}]
    if ring_x is not None:
        ex, ey = ellipse_path(np.array([column]), np.array([row]), np.array([ring_x]), np.array([ring_y]),
                              points=64)
        traces.append({"type": "scatter", "x": ex, "y": ey, "mode": "lines", "name": "radius", "hoverinfo": "skip",
                       "line": {"color": colour, "width": 2, "dash": "dash"}})
    return traces


def details_figure(table: dict[str, np.ndarray], channel: int | None = None, points: int = 48,
                   heat_size: int = 48) -> dict:
    """One figure, four panels: the 1-D Gaussians along x and along y (every channel faint, their mean
    bold; or one channel), the mean attention map, and gamma / beta per channel as bars."""
    t = pixel_centres_np(points)
    chosen = channel_indices(len(table["mu_x"]), channel)
    data = []
    for axis, (mu, sigma) in enumerate((("mu_x", "sigma_x"), ("mu_y", "sigma_y")), start=1):
        curves = gaussian_profile(table[mu][chosen], table[sigma][chosen], points)
        suffix = "" if axis == 1 else "2"
        if channel is None:
            gapped = np.concatenate([curves, np.full((len(chosen), 1), np.nan)], axis=1)
            xs = np.tile(np.append(t, np.nan), len(chosen))
            data.append({"type": "scatter", "x": xs, "y": gapped.ravel(), "mode": "lines", "hoverinfo": "skip",
                         "line": {"width": 0.7, "color": "rgba(90,90,200,0.25)"}, "xaxis": f"x{suffix}",
                         "yaxis": f"y{suffix}"})
        data.append({"type": "scatter", "x": t, "y": curves.mean(0), "mode": "lines", "name": "mean",
                     "line": {"width": 2.5, "color": "black"}, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"})
    heat = table_mean_attention(table, heat_size, heat_size, channel)
    data.append({"type": "heatmap", "z": heat, "colorscale": MEAN_COLOURSCALE, "xaxis": "x3", "yaxis": "y3",
                 "showscale": False, "hovertemplate": "%{z:.3f}<extra>mean attention</extra>"})
    colours = np.where(np.arange(len(table["gamma"])) == (-1 if channel is None else channel), "#d62728", "#4c72b0")
    for axis, name in ((4, "gamma"), (5, "beta")):
        data.append({"type": "bar", "x": np.arange(len(table[name])), "y": table[name], "xaxis": f"x{axis}",
                     "yaxis": f"y{axis}", "marker": {"color": colours},
                     "hovertemplate": f"channel %{{x}}: {'γ' if name == 'gamma' else 'β'} = %{{y:.3f}}<extra></extra>"})
    profile_axis = dict(range=[-1, 1], title={"text": "normalised position"}, zeroline=False)
    heat_x, heat_y = _image_axes(heat_size, heat_size, anchor="x3", domain=[0.52, 0.72])
    heat_y["domain"] = [0, 1]
    titles = [("along x (columns)", 0.11), ("along y (rows)", 0.36), ("mean attention" if channel is None else
                                                                        f"attention, channel {channel}", 0.62),
              ("γ per channel", 0.89)]
    annotations = [{"text": text, "x": x, "y": 1.08, "xref": "paper", "yref": "paper", "showarrow": False,
                    "font": {"size": 13}} for text, x in titles]
    annotations.append({"text": "β per channel", "x": 0.89, "y": 0.44, "xref": "paper", "yref": "paper",
                        "showarrow": False, "font": {"size": 13}})
    layout = _layout(
        height=300, showlegend=False, annotations=annotations, bargap=0.1,
        xaxis={**profile_axis, "domain": [0, 0.22]}, yaxis={"range": [0, 1.05], "anchor": "x"},
        xaxis2={**profile_axis, "domain": [0.25, 0.47], "anchor": "y2"},
        yaxis2={"range": [0, 1.05], "anchor": "x2", "showticklabels": False},
        xaxis3={**heat_x, "anchor": "y3"}, yaxis3=heat_y,
        xaxis4={"domain": [0.78, 1], "anchor": "y4", "showticklabels": False},
        yaxis4={"domain": [0.55, 1], "anchor": "x4"},
        xaxis5={"domain": [0.78, 1], "anchor": "y5", "title": {"text": "channel"}, "matches": "x4"},
        yaxis5={"domain": [0, 0.4], "anchor": "x5"},
    )
    layout["margin"] = dict(PLOT_MARGIN, l=36, t=40, b=40)
    return with_room_for_ticks({"data": data, "layout": layout})


def heatmap_figure(values: np.ndarray, title: str, colourscale: str = MEAN_COLOURSCALE, centre: bool = False) -> dict:
    """A (h, w) map as a heatmap in image orientation (row 0 at the top)."""
    height, width = values.shape
    trace = {"type": "heatmap", "z": values, "colorscale": colourscale, "colorbar": {"thickness": 10},
             "hovertemplate": "row %{y}, column %{x}: %{z:.3f}<extra></extra>"}
    if centre:
        trace["zmid"] = 0
    xaxis, yaxis = _image_axes(height, width)
    return {"data": [trace], "layout": _layout(title={"text": title}, height=380, xaxis=xaxis, yaxis=yaxis)}


def spatial_map_figure(spatial_map: np.ndarray, title: str = "Guide Me α + β (shared by all channels)") -> dict:
    """Guide Me's additive map alpha_h + beta_w at its feature-map resolution, diverging colours at 0."""
    return heatmap_figure(spatial_map, title, colourscale="RdBu", centre=True)


def bars_figure(values: dict[str, np.ndarray], highlight: int | None = None) -> dict:
    """Per-channel bar charts (e.g. FiLM's gamma and beta), one row each; `highlight` marks a channel."""
    names = list(values)
    rows = len(names)
    data, layout = [], _layout(height=130 + 110 * rows, showlegend=False, bargap=0.1)
    gap = 0.12
    span = (1 - gap * (rows - 1)) / rows
    annotations = []
    for row, name in enumerate(names):
        v = values[name]
        top = 1 - row * (span + gap)
        suffix = "" if row == 0 else str(row + 1)
        colours = np.where(np.arange(len(v)) == (-1 if highlight is None else highlight), "#d62728", "#4c72b0")
        data.append({"type": "bar", "x": np.arange(len(v)), "y": v, "marker": {"color": colours},
                     "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
                     "hovertemplate": f"channel %{{x}}: {name} = %{{y:.3f}}<extra></extra>"})
        layout[f"xaxis{suffix}"] = {"anchor": f"y{suffix}", "showticklabels": row == rows - 1,
                                    **({"matches": "x"} if row else {}),
                                    **({"title": {"text": "channel"}} if row == rows - 1 else {})}
        layout[f"yaxis{suffix}"] = {"domain": [max(round(top - span, 6), 0.0), min(round(top, 6), 1.0)],
                                    "anchor": f"x{suffix}"}
        annotations.append({"text": name, "x": 0.5, "y": top + 0.02, "xref": "paper", "yref": "paper",
                            "showarrow": False, "yanchor": "bottom"})
    layout["annotations"] = annotations
    layout["margin"] = dict(PLOT_MARGIN, l=40, t=36)
    return with_room_for_ticks({"data": data, "layout": layout})


def means_figure(grid: np.ndarray, means: np.ndarray, variable: str) -> dict:
    """Channel-averaged Gaussian means (mu_x, mu_y) against a swept variable."""
    data = [{"type": "scatter", "x": grid, "y": means[:, column], "mode": "lines+markers", "name": name}
            for column, name in enumerate(("mean μx", "mean μy"))]
    return with_room_for_ticks({"data": data, "layout": _layout(
        height=260, xaxis={"title": {"text": variable}}, yaxis={"title": {"text": "normalised position"},
                                                                "range": [-1.05, 1.05]},
        title={"text": "INSIDE's attention means along the sweep"})})
