"""`inside figures KIND --out FILE [...]`: the command line of the figure kinds (qualitative, sweep,
attention, table), registered on the `inside` command by `register(subparsers)`. Every kind works with
no other option, on the shipped checkpoints (`inside_core.checkpoints.default_checkpoints`) and the
bundled synthetic data."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from inside_core.checkpoints import checkpoint_dir, default_checkpoints, find_checkpoint
from inside_core.conditions import get_condition, list_conditions

from .attention import attention_figure
from .qualitative import qualitative_figure
from .samples import (
    condition_object,
    condition_rows,
    default_sample_indices,
    default_sweep_index,
    default_sweep_variable,
    load_dataset,
)
from .style import FORMATS, MIN_DPI, PREVIEW_DPI, WIDTHS, save_figure
from .sweep import default_sweep_values, sweep_figure
from .table import results_table, write_table

__all__ = ["FIGURE_KINDS", "register", "make_figure", "run_figures"]

FIGURE_KINDS = ("qualitative", "sweep", "attention", "table")


def register(subparsers) -> None:
    """Add `inside figures KIND --out FILE [...]` to the `inside` command."""
    parser = subparsers.add_parser(
        "figures", help="publication figures: qualitative, sweep, attention, table",
        description="Publication figures from checkpoints and data. Every kind works with no other option, "
        "on the shipped checkpoints and the bundled synthetic data. The output's suffix sets the format: "
        ".pdf/.svg (vector, text as text) or .png (300 dpi); for table, .tex or .md (both are written).")
    parser.add_argument("kind", choices=FIGURE_KINDS)
    parser.add_argument("--out", required=True, help="output file (.pdf, .svg, .png; table: .tex or .md)")
    parser.add_argument("--width", default="double", choices=sorted(WIDTHS),
                        help="single (3.5 in) or double (7.16 in) column, or lncs (4.8 in, MICCAI); default double")
    parser.add_argument("--checkpoints", nargs="+", metavar="CKPT",
                        help="checkpoints (paths or names in --checkpoint-dir); sweep and attention use the first")
    parser.add_argument("--checkpoint-dir", default=checkpoint_dir(),
                        help="where named checkpoints live (default: $INSIDE_CHECKPOINT_DIR or checkpoints/)")
    parser.add_argument("--data", help="dataset folder (default: the bundled synthetic dataset of the checkpoint)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    parser.add_argument("--seed", type=int, help="seed of the per-image condition draw (default: the card's)")
    parser.add_argument("--samples", nargs="+", type=int, metavar="INDEX", help="sample indices in the split")
    parser.add_argument("--conditions", nargs="+", metavar="Z",
                        help="conditions replacing the samples' own (rows = samples x conditions): a value name "
                        "(top_left), x,y,r for point, phase,slice for ACDC (e.g. ES,0.5), x,y for a quadrant location")
    parser.add_argument("--variable", help=f"sweep: a control of the model's condition ({_sweep_variables()}); "
                        "default: the condition's default sweep variable (a stack's slice, else the first)")
    parser.add_argument("--values", nargs="+", metavar="V", help="sweep: the values (numbers or value names)")
    parser.add_argument("--steps", type=int, default=6, help="sweep: number of evenly spaced values (default 6)")
    parser.add_argument("--layer", type=int, default=0, help="attention: which INSIDE layer (0 = first)")
    parser.add_argument("--max-samples", type=int, default=400, help="attention: at most this many samples")
    parser.add_argument("--no-dice", action="store_true", help="qualitative: do not print Dice on predictions")
    parser.add_argument("--use-card-metrics", action="store_true",
                        help="table: use the metrics stored in the cards instead of evaluating")
    parser.add_argument("--preview", action="store_true",
                        help=f"PNG at {PREVIEW_DPI} dpi for web pages (the README), not for print")
    parser.set_defaults(func=run_figures)


def _sweep_variables() -> str:
    """Each registered condition's sweep variables (key|alias), from the registry, so that a new
    condition is listed without a change here: "quadrant: loc_x|x, loc_y|y; ...; colour, shape, size: value"."""
    groups: dict[str, list[str]] = {}
    for name in list_conditions():
        condition = get_condition(name)
        keys = ", ".join("|".join((c.key, *c.aliases)) for c in condition.sweep_controls())
        groups.setdefault(keys, []).append(name)
    return "; ".join(f"{', '.join(names)}: {keys}" for keys, names in groups.items() if keys)


def _load_models(args, kind: str) -> list:
    from inside_core.checkpoints import load_checkpoint

    paths = ([find_checkpoint(c, args.checkpoint_dir) for c in args.checkpoints] if args.checkpoints
             else default_checkpoints(kind, args.checkpoint_dir))
    return [load_checkpoint(p) for p in (paths if kind in ("qualitative", "table") else paths[:1])]


def _parse_values(values: Sequence[str] | None, variable: str, condition, steps: int) -> list:
    if not values:
        return default_sweep_values(condition, variable, steps)
    if condition.control(variable).kind == "select":
        return list(values)
    try:
        return [float(v) for v in values]
    except ValueError:
        raise ValueError(f"sweep values for {variable} must be numbers, got {' '.join(values)}") from None


def make_figure(args) -> Figure | dict[str, str]:
    """The figure (or, for table, the LaTeX and Markdown texts) that the parsed arguments ask for."""
    kind = args.kind
    models = _load_models(args, kind)
    if kind == "table":
        return results_table(models, args.data, args.split, args.seed, args.use_card_metrics)
    from inside_core.explorer import require_images

    for model in models:  # before any data is read: one line for a model of volumes
        require_images(model, f"the {kind} figure")
    card = models[0].card
    condition = condition_object(None, models[0])
    dataset = load_dataset(card, args.data, args.split, args.seed)
    if kind == "qualitative":
        indices = args.samples or default_sample_indices(dataset, condition)
        return qualitative_figure(models, condition_rows(dataset, condition, indices, args.conditions),
                                  width=args.width, show_dice=not args.no_dice, condition=condition)
    if kind == "sweep":
        variable = args.variable or default_sweep_variable(condition)
        values = _parse_values(args.values, variable, condition, args.steps)  # checks the variable first
        index = args.samples[0] if args.samples else default_sweep_index(dataset, condition, variable)
        row = condition_rows(dataset, condition, [index], args.conditions[:1] if args.conditions else None)[0]
        return sweep_figure(models[0], row, variable, values, width=args.width, condition=condition)
    if kind == "attention":
        indices = args.samples or list(range(min(len(dataset), args.max_samples)))
        return attention_figure(models[0], condition_rows(dataset, condition, indices, None), width=args.width,
                                condition=condition, layer=args.layer)
    raise ValueError(f"unknown figure kind {kind!r}")


def run_figures(args) -> int:
    suffix = Path(args.out).suffix.lower().lstrip(".")
    allowed = ("tex", "md") if args.kind == "table" else FORMATS
    if suffix not in allowed:
        print(f"error: --out must end in {', '.join('.' + a for a in allowed)} for {args.kind}, got {args.out}",
              file=sys.stderr)
        return 2
    try:
        result = make_figure(args)
        if args.kind == "table":
            written = write_table(result, args.out)
            print(result["markdown"])
        else:
            save_figure(result, args.out, dpi=PREVIEW_DPI if args.preview else MIN_DPI, preview=args.preview)
            written = [Path(args.out)]
    except (ValueError, OSError) as error:  # CheckpointError and DataError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0
