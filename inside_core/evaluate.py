"""Evaluation of checkpoints, and the paper-style comparison table.

    inside evaluate --checkpoint checkpoints/clevr-seg-quadrant-inside --data DIR [--split test] [--json OUT]
    inside compare checkpoints/clevr-seg-quadrant-*.safetensors --data DIR [--format markdown|csv|latex|all]

The image size, the condition and (ACDC) the spacing come from the checkpoint's card, so a checkpoint
is always evaluated on the inputs it was trained for.

CLEVR-Seg (the reference's metric): Dice per image, 2|P ∩ G| / (|P| + |G|), averaged over images;
an image whose target and prediction are both empty scores 1. Result: {"dice": mean, "dice_std", "n"}.

ACDC: the 2-D slices are stacked back into one volume per (patient, phase) using their meta
(slice_index), then per structure (RV = 1, MYO = 2, LV = 3) and phase (ED, ES):
  - Dice (MONAI `compute_dice`) of the 3-D volumes;
  - Hausdorff distance in mm (MONAI `compute_hausdorff_distance`, symmetric, 100th percentile) with the
    voxel spacing (slice, row, column) of the resampled slices, from the dataset's meta;
  - volumes in mL: voxel count x voxel volume (mm^3) / 1000, for the reference and the prediction.
Empty structures follow the usual ACDC scripts: absent from both ground truth and prediction: Dice 1,
HD 0; absent from exactly one: Dice 0 and HD undefined, recorded as NaN (null in JSON) and left out of the mean HD
(the number of such cases is reported as "hausdorff_undefined").
Result: {"dice": {"LV": {"ED": .., "ES": ..}, "RV": .., "MYO": ..}, "hausdorff_mm": {...}, "volume_ml":
{"LV": {"ED": {"reference": .., "predicted": .., "abs_error": ..}}, ...}, "n_volumes": .., ...}.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from inside_core.checkpoints import atomic_write_text, load_checkpoint, read_card, write_card

__all__ = ["STRUCTURES", "PHASES", "json_safe", "dice_score", "hausdorff_mm", "structure_metrics", "evaluate_model",
           "evaluate_checkpoint", "comparison_table", "register"]

# ACDC label values (method.md) in the order tables list them
STRUCTURES = {"LV": 3, "RV": 1, "MYO": 2}
PHASES = ("ED", "ES")


# ---------------------------------------------------------------------------------------------- metrics

def dice_score(pred: np.ndarray | Tensor, target: np.ndarray | Tensor) -> float:
    """Dice of two binary masks (any shape) with MONAI; 1 when both are empty, 0 when only one is."""
    from monai.metrics import compute_dice

    p = torch.as_tensor(np.asarray(pred, dtype=bool) if not isinstance(pred, Tensor) else pred.bool())
    g = torch.as_tensor(np.asarray(target, dtype=bool) if not isinstance(target, Tensor) else target.bool())
    if not p.any() and not g.any():
        return 1.0
    value = compute_dice(p[None, None].float(), g[None, None].float(), include_background=True, ignore_empty=False)
    return float(value.item())


def hausdorff_mm(pred: np.ndarray | Tensor, target: np.ndarray | Tensor, spacing: tuple[float, ...]) -> float:
    """Symmetric Hausdorff distance in mm between two binary masks (MONAI), spacing per axis in mm.

    Both empty: 0. Exactly one empty: NaN (undefined; excluded from means, counted separately).
    """
    from monai.metrics import compute_hausdorff_distance

    p = torch.as_tensor(np.asarray(pred, dtype=bool) if not isinstance(pred, Tensor) else pred.bool())
    g = torch.as_tensor(np.asarray(target, dtype=bool) if not isinstance(target, Tensor) else target.bool())
    if not p.any() and not g.any():
        return 0.0
    if not p.any() or not g.any():
        return math.nan
    with warnings.catch_warnings():  # MONAI 1.6 warns about its own internal use of a deprecated argument
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_hausdorff_distance(p[None, None].float(), g[None, None].float(), include_background=True,
                                           spacing=[float(s) for s in spacing])
    return float(value.item())


def structure_metrics(pred: np.ndarray, target: np.ndarray, spacing: tuple[float, float, float]) -> dict:
    """Per structure for one labelled volume (Z, H, W): dice, hausdorff_mm, volumes in mL.

    `spacing` = (slice, row, column) in mm, matching the volume's axes.
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    result = {}
    for structure, label in STRUCTURES.items():
        p, g = pred == label, target == label
        result[structure] = {
            "dice": dice_score(p, g),
            "hausdorff_mm": hausdorff_mm(p, g, spacing),
            "volume_reference_ml": float(g.sum()) * voxel_ml,
            "volume_predicted_ml": float(p.sum()) * voxel_ml,
        }
    return result


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


# ---------------------------------------------------------------------------------------------- predict

@torch.inference_mode()
def predict(model: torch.nn.Module, images: Tensor, z: Tensor, batch_size: int = 32) -> Tensor:
    """Label maps (N, H, W): logit > 0 for 1-class models, argmax for multi-class ones."""
    from inside_core.train import predict_labels

    labels = []
    for start in range(0, images.shape[0], batch_size):
        out = model(images[start:start + batch_size], z[start:start + batch_size])
        labels.append(predict_labels(out.logits))
    return torch.cat(labels)


def evaluate_model(model: torch.nn.Module, card: dict, data: str | Path, split: str = "test",
                   seed: int | None = None) -> dict:
    """Evaluate a loaded model on a dataset folder, with the image size/condition/spacing of its card."""
    from inside_core.train import build_dataset, preload

    dataset_kind = card.get("dataset", "clevr-seg")
    if dataset_kind == "nnunet":  # a user's folder: its own labels and declared variables
        return _evaluate_nnunet(model, card, data, split, seed)
    data_seed = seed if seed is not None else int(card.get("data", {}).get("seed", 0))
    dataset = build_dataset(dataset_kind, data, split, condition=card.get("condition") or "quadrant",
                            image_size=card.get("image_size") or None, spacing=card.get("spacing"), seed=data_seed)
    images, z, masks, metas = preload(dataset)
    labels = predict(model, images, z).numpy()
    masks = masks.numpy()
    if dataset_kind == "clevr-seg":
        scores = [dice_score(labels[i], masks[i, 0] > 0.5) for i in range(len(labels))]
        return {"dice": round(float(np.mean(scores)), 4), "dice_std": round(float(np.std(scores)), 4),
                "n": len(scores), "split": split}
    return _evaluate_acdc(labels, masks.astype(np.int64), metas, split)


def _evaluate_nnunet(model: torch.nn.Module, card: dict, data: str | Path, split: str, seed: int | None) -> dict:
    """A user's nnU-Net-layout folder (inside_core.data.nnunet): z encoded with the card's own declaration;
    per case (its slices stacked) and per label, Dice; "dice" is the mean over labels and cases,
    "dice_std" the spread of the per-case means, "dice_per_label" the mean per label."""
    from inside_core.conditions import condition_of
    from inside_core.data.nnunet import NnUNetDataset
    from inside_core.train import preload

    data_seed = seed if seed is not None else int(card.get("data", {}).get("seed", 0))
    dataset = NnUNetDataset(data, split, image_size=card.get("image_size") or 128, seed=data_seed,
                            condition=condition_of(card))
    images, z, masks, metas = preload(dataset)
    labels, masks = predict(model, images, z).numpy(), masks.numpy()
    names = list(card.get("labels") or dataset.label_names)
    cases: dict[str, list[int]] = defaultdict(list)
    for index, meta in enumerate(metas):
        cases[meta["case"]].append(index)
    scores = {name: [dice_score(labels[i] == k, masks[i] == k) for i in cases.values()]
              for k, name in enumerate(names) if k > 0}
    per_case = np.mean([scores[name] for name in scores], axis=0)
    return {"dice": round(float(per_case.mean()), 4), "dice_std": round(float(per_case.std()), 4), "n": len(cases),
            "dice_per_label": {name: round(float(np.mean(s)), 4) for name, s in scores.items()},
            "n_slices": len(metas), "split": split}


def _evaluate_acdc(labels: np.ndarray, masks: np.ndarray, metas: list[dict], split: str) -> dict:
    """Stack slices into (patient, phase) volumes, then the per-structure, per-phase means."""
    volumes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, meta in enumerate(metas):
        volumes[(str(meta["patient"]), str(meta["phase"]))].append(index)
    per_volume: dict[str, list[dict]] = {phase: [] for phase in PHASES}
    for (_, phase), indices in sorted(volumes.items()):
        indices = sorted(indices, key=lambda i: int(metas[i]["slice_index"]))
        row_mm, col_mm, slice_mm = (float(s) for s in metas[indices[0]]["spacing"])
        pred = np.stack([labels[i] for i in indices])
        target = np.stack([masks[i] for i in indices])
        per_volume[phase].append(structure_metrics(pred, target, (slice_mm, row_mm, col_mm)))
    result: dict[str, Any] = {"dice": {}, "hausdorff_mm": {}, "volume_ml": {}, "hausdorff_undefined": 0}
    for structure in STRUCTURES:
        result["dice"][structure], result["hausdorff_mm"][structure], result["volume_ml"][structure] = {}, {}, {}
        for phase in PHASES:
            rows = [v[structure] for v in per_volume[phase]]
            if not rows:
                continue
            hd = [r["hausdorff_mm"] for r in rows]
            result["hausdorff_undefined"] += sum(math.isnan(h) for h in hd)
            ref = [r["volume_reference_ml"] for r in rows]
            prd = [r["volume_predicted_ml"] for r in rows]
            result["dice"][structure][phase] = round(_mean([r["dice"] for r in rows]), 4)
            result["hausdorff_mm"][structure][phase] = round(_mean(hd), 2)
            result["volume_ml"][structure][phase] = {
                "reference": round(_mean(ref), 2), "predicted": round(_mean(prd), 2),
                "abs_error": round(_mean([abs(a - b) for a, b in zip(ref, prd, strict=True)]), 2),
            }
    result["n_volumes"] = {phase: len(per_volume[phase]) for phase in PHASES}
    result["n_slices"] = len(metas)
    result["split"] = split
    return result


def json_safe(value: Any) -> Any:
    """NaN (an undefined Hausdorff distance) becomes None, i.e. JSON null; JSON has no NaN."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, split: str = "test", seed: int | None = None) -> dict:
    model = load_checkpoint(checkpoint)
    return json_safe(evaluate_model(model, model.card, data, split, seed))


# ---------------------------------------------------------------------------------------------- compare

def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def comparison_table(results: list[tuple[dict, dict]], fmt: str = "markdown") -> str:
    """The paper-style table: one row per checkpoint. `results` = [(card, metrics), ...]."""
    kinds = {card.get("dataset", "clevr-seg") for card, _ in results}
    if len(kinds) > 1:
        raise ValueError(f"cannot compare checkpoints of different datasets ({', '.join(sorted(kinds))})")
    if kinds == {"acdc"}:
        header = ["Model", "Conditioning"] + [f"Dice {s} {p}" for s in STRUCTURES for p in PHASES] + \
                 [f"HD {s} {p} (mm)" for s in STRUCTURES for p in PHASES]
        rows = [[card["name"], card.get("conditioning", "?")]
                + [f"{m['dice'][s][p]:.3f}" for s in STRUCTURES for p in PHASES]
                + [_number(m["hausdorff_mm"][s][p], 1) for s in STRUCTURES for p in PHASES] for card, m in results]
    else:
        header = ["Model", "Conditioning", "Condition", "Image size", "Dice (mean ± sd)", "Images"]
        rows = [[card["name"], card.get("conditioning", "?"), card.get("condition", "?"),
                 "×".join(str(s) for s in card.get("image_size", [])), f"{m['dice']:.3f} ± {m['dice_std']:.3f}",
                 str(m["n"])] for card, m in results]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    if fmt == "latex":
        def tex(text: str) -> str:
            return text.replace("±", r"$\pm$").replace("×", r"$\times$").replace("_", r"\_")

        text_columns = 2 if kinds == {"acdc"} else 4  # name, conditioning (CLEVR-Seg: condition, size)
        lines = [r"\begin{tabular}{" + "l" * text_columns + "r" * (len(header) - text_columns) + "}", r"\toprule",
                 " & ".join(tex(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(tex(c) for c in row) + r" \\" for row in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)
    raise ValueError(f"unknown table format {fmt!r}; choose markdown, csv or latex")


# ---------------------------------------------------------------------------------------------- the CLI

def _command_line(default: list[str]) -> str:
    for name in ("evaluate", "compare"):
        if name in sys.argv:
            return "inside " + shlex.join(sys.argv[sys.argv.index(name):])
    return "inside " + shlex.join(default)


def run_evaluate(args: argparse.Namespace) -> int:
    try:
        model = load_checkpoint(args.checkpoint)
        metrics = json_safe(evaluate_model(model, model.card, args.data, args.split, args.seed))
    except (ValueError, OSError) as error:  # CheckpointError and DataError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.json:
        atomic_write_text(Path(args.json), text + "\n")
    if args.update_card:
        card = read_card(args.checkpoint)
        validation = card.get("metrics", {}).get("validation")
        card["metrics"] = {**metrics, "data": str(args.data), "data_generate": args.data_command or None,
                           "command": _command_line(["evaluate", "--checkpoint", str(args.checkpoint),
                                                     "--data", str(args.data)])}
        if validation is not None:
            card["metrics"]["validation"] = validation
        write_card(args.checkpoint, card)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    results = []
    try:
        for checkpoint in args.checkpoints:
            model = load_checkpoint(checkpoint)
            metrics = json_safe(evaluate_model(model, model.card, args.data, args.split, args.seed))
            results.append((model.card, metrics))
        formats = ["markdown", "csv", "latex"] if args.format == "all" else [args.format]
        tables = [comparison_table(results, fmt) for fmt in formats]
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = "\n\n".join(tables)
    print(text)
    if args.out:
        atomic_write_text(Path(args.out), text + "\n")
    if args.json:
        atomic_write_text(Path(args.json), json.dumps({card["name"]: m for card, m in results}, indent=2) + "\n")
    return 0


def register(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on a dataset (Dice; ACDC: Dice, Hausdorff, volumes)",
        description="Evaluate a checkpoint; the image size, condition and spacing come from its model card.")
    evaluate.add_argument("--checkpoint", required=True, help="checkpoint (.safetensors, .json or stem)")
    evaluate.add_argument("--data", required=True, help="dataset folder (CLEVR-Seg or ACDC layout)")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    evaluate.add_argument("--seed", type=int, help="seed of the per-image condition draw (default: the card's)")
    evaluate.add_argument("--json", help="also write the metrics to this JSON file")
    evaluate.add_argument("--update-card", action="store_true", help="store the metrics in the checkpoint's card")
    evaluate.add_argument("--data-command", help="with --update-card: the command that generated --data")
    evaluate.set_defaults(func=run_evaluate)

    compare = subparsers.add_parser(
        "compare", help="the paper-style comparison table of several checkpoints on the same data",
        description="Evaluate several checkpoints on the same data and print a Markdown, CSV or LaTeX table.")
    compare.add_argument("checkpoints", nargs="+", help="checkpoints to compare (same dataset)")
    compare.add_argument("--data", required=True, help="dataset folder")
    compare.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    compare.add_argument("--seed", type=int, help="seed of the per-image condition draw (default: each card's)")
    compare.add_argument("--format", default="markdown", choices=["markdown", "csv", "latex", "all"])
    compare.add_argument("--out", help="also write the table(s) to this file")
    compare.add_argument("--json", help="also write all metrics to this JSON file")
    compare.set_defaults(func=run_compare)

