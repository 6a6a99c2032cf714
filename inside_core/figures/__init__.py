"""Publication figures: one style, one set of drawing primitives, deterministic files.

Everything that draws a mask, an INSIDE attention map or its Gaussians for a file lives in this package,
once; the dashboard's export (`explorer_figure`, `compare_figure`), the notebooks and the `inside figures`
command call it. Modules:

- `style`: rc scheme, named widths, `save_figure` (PDF/SVG/PNG, byte-identical for equal figures);
- `primitives`: images, label overlays, ground-truth outlines, legends, where z points, grids, colour bars;
- `conditioning`: INSIDE's attention and Gaussians, Guide Me's α + β, FiLM's γ, β;
- `samples`: `Row`, model names and conditions, datasets and default samples;
- one module per figure kind: `explorer_view`, `qualitative`, `sweep`, `attention`, `table`;
- `cli`: `inside figures KIND --out FILE` (`register(subparsers)`).

Conditions are the registry's (`inside_core.conditions`), coordinates `inside_core.geometry`'s, colours
`inside_core.palette`'s, Dice `inside_core.metrics`'s (through the Explorer), checkpoints are found by
`inside_core.checkpoints.find_checkpoint`, and the channels worth drawing are chosen by
`inside_core.attention`. Figures are matplotlib `Figure` objects built without pyplot: no backend is
chosen, no global figure registry grows in the dashboard's long-running process.
"""

from __future__ import annotations

from inside_core.palette import ATTENTION_CMAP, LABEL_COLOURS, LABEL_NAMES, OKABE_ITO

from .attention import attention_figure, mask_statistics, quadrant_mass
from .cli import FIGURE_KINDS, make_figure, register, run_figures
from .conditioning import (
                           attention_geometry,
                           channel_attention,
                           draw_attention,
                           draw_attention_ellipses,
                           draw_conditioning,
                           draw_film_bars,
                           draw_guideme_map,
                           draw_mean_attention,
                           guideme_map,
                           mean_attention,
)
from .explorer_view import compare_figure, explorer_figure, view_caption, wrap_title
from .primitives import (
                           draw_condition_marker,
                           draw_region_lines,
                           label_legend,
                           outline_mask,
                           overlay_mask,
                           show_image,
                           to_numpy_image,
)
from .qualitative import qualitative_figure
from .samples import (
                           DEFAULT_CHECKPOINTS,
                           MODEL_NAMES,
                           Row,
                           default_checkpoints,
                           default_sample_indices,
                           default_sweep_index,
                           default_sweep_variable,
                           describe_condition,
                           load_dataset,
                           model_condition,
                           model_conditioning,
                           model_name,
                           parse_condition,
                           resolve_checkpoint,
                           row_from_item,
)
from .style import FORMATS, MIN_DPI, PREVIEW_DPI, WIDTHS, figure_size, paper_style, save_figure
from .sweep import default_sweep_values, sweep_conditions, sweep_figure
from .table import results_table, write_table

# older names of the palette's colours (a label has one colour on the page and in every figure)
ACDC_LABELS = tuple(LABEL_NAMES[4].values())  # label values 1, 2, 3 (0 is background)
ACDC_COLOURS = tuple(LABEL_COLOURS[k] for k in sorted(LABEL_COLOURS))
MASK_COLOUR = LABEL_COLOURS[1]  # a binary mask is label 1

__all__ = [
    "WIDTHS", "OKABE_ITO", "ACDC_LABELS", "ACDC_COLOURS", "MASK_COLOUR", "ATTENTION_CMAP", "FORMATS", "MIN_DPI",
    "PREVIEW_DPI", "paper_style", "figure_size", "save_figure", "to_numpy_image", "show_image", "overlay_mask",
    "outline_mask", "mean_attention", "channel_attention", "draw_mean_attention", "draw_attention_ellipses",
    "draw_attention", "draw_guideme_map", "draw_film_bars", "draw_conditioning", "label_legend",
    "explorer_figure", "compare_figure", "view_caption", "wrap_title", "guideme_map", "attention_geometry",
    "quadrant_mass", "mask_statistics", "Row", "row_from_item", "describe_condition", "parse_condition",
    "draw_condition_marker", "draw_region_lines", "qualitative_figure", "sweep_conditions",
    "default_sweep_values", "sweep_figure", "attention_figure", "results_table", "load_dataset",
    "default_checkpoints", "resolve_checkpoint", "DEFAULT_CHECKPOINTS", "default_sample_indices",
    "default_sweep_index", "default_sweep_variable", "write_table", "register", "make_figure", "run_figures",
    "FIGURE_KINDS", "MODEL_NAMES", "model_name", "model_condition", "model_conditioning",
]
