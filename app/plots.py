"""Drawing helpers for the dashboard: numpy overlays (fast, shown with st.image) and plotly figures.

Coordinates: INSIDE's means and widths are in normalised units (method.md): along an axis of n
pixels, t = -1 and t = +1 are the outer edges and pixel k has centre (2k + 1)/n - 1. Plotly's
image trace puts pixel k's centre at k, so a mean mu is drawn at (mu + 1) n / 2 - 0.5 and a width
sigma spans sigma n / 2 pixels.

Nothing here imports streamlit: the page decides where each drawing goes.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots
from scipy.ndimage import binary_erosion

# one colour per label: binary target; ACDC RV, MYO, LV
LABEL_COLOURS = {
    1: np.array([0, 190, 255], np.float32),
    2: np.array([255, 200, 0], np.float32),
    3: np.array([255, 60, 90], np.float32),
}
ACDC_LABELS = {1: "RV", 2: "MYO", 3: "LV"}
ELLIPSE_COLOUR = "rgba(255, 230, 0, 0.85)"
MEAN_COLOURSCALE = "Viridis"
PLOT_MARGIN = dict(l=8, r=8, t=32, b=8)
# plotly modebar: keep it small; the PNG button exports at twice the shown size
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"scale": 2}}


# ------------------------------------------------------------------------------------ images


def to_rgb_uint8(image) -> np.ndarray:
    """An image (C, H, W) or (H, W) tensor/array in [0, 1] as uint8 RGB (H, W, 3).

    Single-channel (MRI) images are stretched to their 1st-99th percentile range for display.
    """
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
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
    """The boundary pixels of a boolean region (the region minus its erosion)."""
    region = region.astype(bool)
    return region & ~binary_erosion(region, iterations=1, border_value=0)


def overlay(image, labels: np.ndarray, ground_truth: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """The input with the predicted labels blended in, and the ground truth as white outlines.

    Returns uint8 RGB (H, W, 3). `labels`, `ground_truth`: int (H, W), 0 = background.
    """
    rgb = to_rgb_uint8(image).astype(np.float32)
    for label, colour in LABEL_COLOURS.items():
        region = labels == label
        if region.any():
            rgb[region] = (1 - alpha) * rgb[region] + alpha * colour
    if ground_truth is not None:
        for label in np.unique(ground_truth):
            if label == 0:
                continue
            rgb[outline(ground_truth == label)] = 255.0
    return (rgb + 0.5).astype(np.uint8)


def draw_points(rgb: np.ndarray, points_xy: np.ndarray, colour=(255, 230, 0), radius: int = 1) -> np.ndarray:
    """Small squares at pixel positions (x = column, y = row), for strips of many small images."""
    out = rgb.copy()
    height, width = out.shape[:2]
    for x, y in np.rint(points_xy).astype(int):
        out[max(y - radius, 0) : min(y + radius + 1, height), max(x - radius, 0) : min(x + radius + 1, width)] = colour
    return out


def png_data_uri(rgb: np.ndarray) -> str:
    """A uint8 image as a PNG data URI (what plotly's image trace and layout images accept)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ------------------------------------------------------------------------------------ geometry


def to_pixels(mu: np.ndarray, size: int) -> np.ndarray:
    """Normalised coordinate -> pixel coordinate (pixel k's centre at k): (mu + 1) n / 2 - 0.5."""
    return (np.asarray(mu) + 1.0) * size / 2.0 - 0.5


def ellipse_path(centres_x: np.ndarray, centres_y: np.ndarray, radii_x: np.ndarray, radii_y: np.ndarray,
                 points: int = 25) -> tuple[list, list]:
    """Axis-aligned ellipses as one polyline, separated by None (one plotly trace for all channels)."""
    angle = np.linspace(0, 2 * np.pi, points)
    xs: list = []
    ys: list = []
    for cx, cy, rx, ry in zip(centres_x, centres_y, radii_x, radii_y, strict=True):
        xs += list(cx + rx * np.cos(angle)) + [None]
        ys += list(cy + ry * np.sin(angle)) + [None]
    return xs, ys


def gaussian_profile(mu: np.ndarray, sigma: np.ndarray, size: int) -> np.ndarray:
    """g(t_k; mu, sigma) = exp(-1/2 ((t_k - mu)/sigma)^2) at pixel centres t_k, shape (C, size)."""
    t = (2 * np.arange(size) + 1) / size - 1
    return np.exp(-0.5 * ((t[None, :] - np.asarray(mu)[:, None]) / np.asarray(sigma)[:, None]) ** 2)


def channel_indices(count: int, channel: int | None) -> np.ndarray:
    return np.arange(count) if channel is None else np.array([channel])


# ------------------------------------------------------------------------------------ plotly figures


def _image_axes(fig: go.Figure, height: int, width: int, row: int | None = None, col: int | None = None) -> None:
    where = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(range=[-0.5, width - 0.5], showticklabels=False, showgrid=False, zeroline=False,
                     constrain="domain", **where)
    fig.update_yaxes(range=[height - 0.5, -0.5], showticklabels=False, showgrid=False, zeroline=False,
                     scaleanchor="x" if row is None else None, constrain="domain", **where)


def attention_figure(rgb: np.ndarray, table: dict[str, np.ndarray], channel: int | None = None,
                     title: str = "INSIDE attention") -> go.Figure:
    """Each channel's Gaussian over the input: mean (mu_x, mu_y) as a point, 1-sigma ellipse.

    `rgb`: uint8 (H, W, 3) shown underneath; `table`: per-channel arrays mu_x, mu_y, sigma_x,
    sigma_y, gamma, beta (normalised units). Hover: channel, mu, sigma, gamma, beta.
    `channel` isolates one channel.
    """
    height, width = rgb.shape[:2]
    chosen = channel_indices(len(table["mu_x"]), channel)
    cx, cy = to_pixels(table["mu_x"][chosen], width), to_pixels(table["mu_y"][chosen], height)
    rx, ry = table["sigma_x"][chosen] * width / 2, table["sigma_y"][chosen] * height / 2
    fig = go.Figure(go.Image(source=png_data_uri(rgb), hoverinfo="skip"))
    ex, ey = ellipse_path(cx, cy, rx, ry)
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=ELLIPSE_COLOUR, width=1),
                             hoverinfo="skip", name="1σ"))
    custom = np.stack([chosen, table["mu_x"][chosen], table["mu_y"][chosen], table["sigma_x"][chosen],
                       table["sigma_y"][chosen], table["gamma"][chosen], table["beta"][chosen]], axis=-1)
    fig.add_trace(go.Scatter(
        x=cx, y=cy, mode="markers", customdata=custom, name="μ",
        marker=dict(size=8 if channel is None else 12, color=table["gamma"][chosen], colorscale="RdBu",
                    cmid=0, line=dict(color="black", width=1),
                    colorbar=dict(title="γ", thickness=10, len=0.6)),
        hovertemplate=("channel %{customdata[0]:.0f}<br>μ = (%{customdata[1]:.3f}, %{customdata[2]:.3f})"
                       "<br>σ = (%{customdata[3]:.3f}, %{customdata[4]:.3f})<br>γ = %{customdata[5]:.3f}"
                       "<br>β = %{customdata[6]:.3f}<extra></extra>"),
    ))
    _image_axes(fig, height, width)
    fig.update_layout(title=title, margin=PLOT_MARGIN, showlegend=False, height=420)
    return fig


def profiles_figure(table: dict[str, np.ndarray], channel: int | None = None, size: int = 100) -> go.Figure:
    """The 1-D Gaussians along x (columns) and y (rows): every channel faint, their mean bold,
    or one channel alone."""
    fig = make_subplots(1, 2, subplot_titles=("along x (columns)", "along y (rows)"), horizontal_spacing=0.08)
    t = (2 * np.arange(size) + 1) / size - 1
    chosen = channel_indices(len(table["mu_x"]), channel)
    for col, (mu, sigma) in enumerate((("mu_x", "sigma_x"), ("mu_y", "sigma_y")), start=1):
        curves = gaussian_profile(table[mu][chosen], table[sigma][chosen], size)
        if channel is None:
            xs = np.concatenate([np.append(t, np.nan)] * len(chosen))
            ys = np.concatenate([np.append(c, np.nan) for c in curves])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(width=0.7, color="rgba(90,90,200,0.25)"),
                                     hoverinfo="skip", connectgaps=False), 1, col)
            fig.add_trace(go.Scatter(x=t, y=curves.mean(0), mode="lines", line=dict(width=2.5, color="black"),
                                     name="mean"), 1, col)
        else:
            fig.add_trace(go.Scatter(x=t, y=curves[0], mode="lines", line=dict(width=2.5, color="black"),
                                     name=f"channel {channel}"), 1, col)
        fig.update_xaxes(range=[-1, 1], title_text="normalised position", row=1, col=col)
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(margin=PLOT_MARGIN, showlegend=False, height=230)
    return fig


def mean_attention_figure(mean_map: np.ndarray, title: str = "mean attention over channels") -> go.Figure:
    """A (h, w) map as a heatmap in image orientation (row 0 at the top)."""
    height, width = mean_map.shape
    fig = go.Figure(go.Heatmap(z=np.round(mean_map, 4), colorscale=MEAN_COLOURSCALE,
                               colorbar=dict(thickness=10),
                               x=np.arange(width), y=np.arange(height),
                               hovertemplate="row %{y}, column %{x}: %{z:.3f}<extra></extra>"))
    _image_axes(fig, height, width)
    fig.update_layout(title=title, margin=PLOT_MARGIN, height=330)
    return fig


def bars_figure(values: dict[str, np.ndarray], highlight: int | None = None) -> go.Figure:
    """Per-channel bar charts (e.g. gamma and beta), one row each; `highlight` marks a channel."""
    names = list(values)
    fig = make_subplots(len(names), 1, shared_xaxes=True, subplot_titles=names, vertical_spacing=0.12)
    for row, name in enumerate(names, start=1):
        v = values[name]
        colours = ["#d62728" if c == highlight else "#4c72b0" for c in range(len(v))]
        fig.add_trace(go.Bar(x=np.arange(len(v)), y=v, marker_color=colours, name=name,
                             hovertemplate=f"channel %{{x}}: {name} = %{{y:.3f}}<extra></extra>"), row, 1)
    fig.update_xaxes(title_text="channel", row=len(names), col=1)
    fig.update_layout(margin=PLOT_MARGIN, showlegend=False, height=130 + 110 * len(names))
    return fig


def spatial_map_figure(spatial_map: np.ndarray, rgb: np.ndarray | None = None,
                       title: str = "Guide Me α + β (shared by all channels)") -> go.Figure:
    """Guide Me's additive map, in image orientation, beside nothing else (its own resolution)."""
    fig = mean_attention_figure(spatial_map, title=title)
    fig.data[0].colorscale = "RdBu"
    fig.data[0].zmid = 0
    return fig


def means_figure(grid: np.ndarray, means: np.ndarray, variable: str) -> go.Figure:
    """Channel-averaged Gaussian means (mu_x, mu_y) against a swept variable."""
    fig = go.Figure()
    for column, name in enumerate(("mean μx", "mean μy")):
        fig.add_trace(go.Scatter(x=grid, y=means[:, column], mode="lines+markers", name=name))
    fig.update_layout(margin=PLOT_MARGIN, height=260, xaxis_title=variable, yaxis_title="normalised position",
                      yaxis_range=[-1, 1], title="INSIDE's attention means along the sweep")
    return fig
