"""Evaluation of checkpoints, and the paper-style comparison table.

    inside evaluate --checkpoint checkpoints/clevr-seg-quadrant-inside --data DIR [--split test] [--tta] [--json OUT]
    inside compare checkpoints/clevr-seg-quadrant-*.safetensors --data DIR [--format markdown|csv|latex|all]

The image size, the condition and (ACDC) the spacing come from the checkpoint's card, so a checkpoint
is always evaluated on the inputs it was trained for. The masks follow the card's inference recipe
(inside_core.postprocess: the largest connected component of the labels it lists; `--no-largest-component`
skips it) and, with `--tta`, average the probabilities over the 8 in-plane symmetries where the condition
allows it; each result's "inference" says which.

Generated volumes (cubes3d): Dice per volume with the true z and with z swapped ("dice_z_swapped").

CLEVR-Seg (the reference's metric): Dice per image, 2|P ∩ G| / (|P| + |G|), averaged over images;
an image whose target and prediction are both empty scores 1. Result: {"dice": mean, "dice_std", "n"}.

ACDC (inside_core.evaluate_acdc): slices stacked back into one volume per (patient, phase); per structure
(LV, RV, MYO) and phase (ED, ES) Dice, Hausdorff distance in mm and volumes in mL (inside_core.metrics,
ACDC conventions for empty structures); Dice by slice-position third (basal, mid, apical); and
z-sensitivity: the Dice again with the phase swapped, the slice position reversed and z at the midpoint
(0.5, 0.5), so a table shows which part of z a conditioned model actually uses. The image is encoded
once and decoded per z. Result keys: "dice", "hausdorff_mm", "volume_ml", "hausdorff_undefined",
"dice_by_third", "z_sensitivity", "n_volumes", "n_slices", "split".
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from inside_core.checkpoints import atomic_write_text, load_checkpoint, read_card, write_card
from inside_core.data.registry import card_dataset, dataset_kind
from inside_core.evaluate_acdc import PHASES, STRUCTURES, acdc_tables, evaluate_acdc, z_variants
from inside_core.metrics import dice
from inside_core.postprocess import (
    clean,
    clean_volumes,
    inference_recipe,
    labels_from_probabilities,
    require_tta,
    symmetric_average,
)

__all__ = ["STRUCTURES", "PHASES", "json_safe", "evaluate_model", "evaluate_checkpoint", "comparison_table",
           "comparison_tables", "register"]


# ---------------------------------------------------------------------------------------------- predict

@torch.inference_mode()
def predict(model: torch.nn.Module, images: Tensor, z: Tensor, batch_size: int = 32, tta: bool = False) -> Tensor:
    """Label maps (N, H, W): logit > 0 for 1-class models, argmax for multi-class ones; `tta`: from the
    probabilities averaged over the in-plane symmetries (inside_core.postprocess)."""
    return predict_variants(model, images, {"z": z}, batch_size, tta)["z"]


@torch.inference_mode()
def predict_variants(model: torch.nn.Module, images: Tensor, variants: dict[str, Tensor],
                     batch_size: int = 32, tta: bool = False) -> dict[str, Tensor]:
    """Label maps for each z of `variants`, encoding each image once and decoding per z (with `tta`: once
    per symmetry, the probabilities averaged)."""
    from inside_core.train import predict_labels

    labels: dict[str, list[Tensor]] = {name: [] for name in variants}
    for start in range(0, images.shape[0], batch_size):
        zs = {name: None if z is None else z[start:start + batch_size] for name, z in variants.items()}

        def run(batch: Tensor, zs: dict = zs) -> dict[str, Tensor]:
            features = model.encode(batch)
            return {name: model.decode(features, z).logits for name, z in zs.items()}

        if tta:
            for name, probs in symmetric_average(run, images[start:start + batch_size]).items():
                labels[name].append(labels_from_probabilities(probs))
        else:
            for name, logits in run(images[start:start + batch_size]).items():
                labels[name].append(predict_labels(logits))
    return {name: torch.cat(parts) for name, parts in labels.items()}


def _recipe(card: dict, tta: bool) -> dict:
    """What made the masks: the card's clean-up (labels, anatomy) and whether TTA was on (refused where not
    allowed)."""
    if tta:
        require_tta(card)
    return {**inference_recipe(card), "tta": bool(tta)}


def evaluate_model(model: torch.nn.Module, card: dict, data: str | Path, split: str = "test",
                   seed: int | None = None, tta: bool = False) -> dict:
    """Evaluate a loaded model on a dataset folder, with the image size/condition/spacing of its card and
    its inference recipe (card["inference"]; inside_core.postprocess), with `tta` over the in-plane
    symmetries where the condition allows it; the card's dataset kind says how (inside_core.data.registry:
    one of the `evaluate_*` below). The result's "inference" says which recipe made the masks."""
    return dataset_kind(card_dataset(card)).evaluate(model, card, data, split, seed, tta=tta)


def _preloaded(card: dict, data: str | Path, split: str, seed: int | None):
    """(dataset, images, z, masks, metas) of the split the card's model reads."""
    from inside_core.train import preload

    data_seed = seed if seed is not None else int(card.get("data", {}).get("seed", 0))
    dataset = dataset_kind(card_dataset(card)).load(data, split, condition=card.get("condition") or "quadrant",
                                                    image_size=card.get("image_size") or None,
                                                    spacing=card.get("spacing"), seed=data_seed)
    return (dataset, *preload(dataset))


def evaluate_images(model: torch.nn.Module, card: dict, data: str | Path, split: str, seed: int | None,
                    tta: bool = False) -> dict:
    """CLEVR-Seg: Dice per image, averaged."""
    recipe = _recipe(card, tta)
    _, images, z, masks, metas = _preloaded(card, data, split, seed)
    labels, masks = predict(model, images, z, tta=tta).numpy(), masks.numpy()
    labels = clean_volumes(labels, metas, recipe)
    scores = [dice(labels[i], masks[i, 0] > 0.5) for i in range(len(labels))]
    return {"dice": round(float(np.mean(scores)), 4), "dice_std": round(float(np.std(scores)), 4),
            "n": len(scores), "split": split, "inference": recipe}


def evaluate_slices(model: torch.nn.Module, card: dict, data: str | Path, split: str, seed: int | None,
                    tta: bool = False) -> dict:
    """ACDC: the slices stacked into volumes (cleaned per volume by the card's recipe), per structure and
    phase, with the z variants (inside_core.evaluate_acdc)."""
    recipe = _recipe(card, tta)
    _, images, z, masks, metas = _preloaded(card, data, split, seed)
    if card.get("conditioning", "none") == "none":  # z cannot matter: one prediction serves every variant
        labels = clean_volumes(predict(model, images, z, tta=tta).numpy(), metas, recipe)
        predictions = {name: labels for name in z_variants(z)}
    else:
        predictions = {name: clean_volumes(p.numpy(), metas, recipe)
                       for name, p in predict_variants(model, images, z_variants(z), tta=tta).items()}
    return {**evaluate_acdc(predictions, masks.numpy().astype(np.int64), metas, split), "inference": recipe}


def evaluate_volumes(model: torch.nn.Module, card: dict, data: str | Path, split: str, seed: int | None,
                     tta: bool = False) -> dict:
    """Generated volumes (inside_core.data.cubes3d): Dice per volume with the true z ("dice") and with z
    swapped ("dice_z_swapped", against the other cube, then the target): a model that ignores z cannot
    score well on both. Each volume is encoded once and decoded per z."""
    recipe = _recipe(card, tta)  # a cube's half is a place in the volume: TTA is refused here
    dataset, images, z, masks, _ = _preloaded(card, data, split, seed)
    labels = predict_variants(model, images, {"true": z, "swapped": z.flip(1)}, batch_size=16)
    labels = {name: torch.from_numpy(np.stack([clean(v, recipe) for v in p.numpy()]))
              for name, p in labels.items()}
    others = torch.stack([dataset.other(i) for i in range(len(dataset))])
    result: dict[str, Any] = {}
    for key, predicted, target in (("dice", labels["true"], masks), ("dice_z_swapped", labels["swapped"], others)):
        scores = [dice(predicted[i].numpy(), target[i, 0].numpy() > 0) for i in range(len(predicted))]
        result[key], result[f"{key}_std"] = round(float(np.mean(scores)), 4), round(float(np.std(scores)), 4)
    return {**result, "n": len(images), "split": split, "inference": recipe}


def evaluate_cases(model: torch.nn.Module, card: dict, data: str | Path, split: str, seed: int | None,
                   tta: bool = False) -> dict:
    """A user's nnU-Net-layout folder (inside_core.data.nnunet): z encoded with the card's own declaration;
    per case (its slices stacked) and per label, Dice; "dice" is the mean over labels and cases,
    "dice_std" the spread of the per-case means, "dice_per_label" the mean per label."""
    from inside_core.conditions import condition_of
    from inside_core.data.nnunet import NnUNetDataset
    from inside_core.train import preload

    data_seed = seed if seed is not None else int(card.get("data", {}).get("seed", 0))
    dataset = NnUNetDataset(data, split, image_size=card.get("image_size") or 128, seed=data_seed,
                            condition=condition_of(card))
    recipe = _recipe(card, tta)
    images, z, masks, metas = preload(dataset)
    labels, masks = predict(model, images, z, tta=tta).numpy(), masks.numpy()
    labels = clean_volumes(labels, metas, recipe)  # each case's slices as one stack
    names = list(card.get("labels") or dataset.label_names)
    cases: dict[str, list[int]] = defaultdict(list)
    for index, meta in enumerate(metas):
        cases[meta["case"]].append(index)
    scores = {name: [dice(labels[i] == k, masks[i] == k) for i in cases.values()]
              for k, name in enumerate(names) if k > 0}
    per_case = np.mean([scores[name] for name in scores], axis=0)
    return {"dice": round(float(per_case.mean()), 4), "dice_std": round(float(per_case.std()), 4), "n": len(cases),
            "dice_per_label": {name: round(float(np.mean(s)), 4) for name, s in scores.items()},
            "n_slices": len(metas), "split": split, "inference": recipe}


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
    """The paper-style table: one row per checkpoint. `results` = [(card, metrics), ...].

    ACDC: per structure and phase, Dice and HD; `comparison_tables` adds the slice-position thirds and
    the z-sensitivity tables.
    """
    return comparison_tables(results, fmt)[0]


def comparison_tables(results: list[tuple[dict, dict]], fmt: str = "markdown") -> list[str]:
    """Every table of a comparison, as the checkpoints' dataset kind makes them (`tables` in
    inside_core.data.registry): CLEVR-Seg one; ACDC three (structure x phase, thirds, z-sensitivity)."""
    kinds = {card_dataset(card) for card, _ in results}
    if len(kinds) > 1:
        raise ValueError(f"cannot compare checkpoints of different datasets ({', '.join(sorted(kinds))})")
    return dataset_kind(kinds.pop() if kinds else None).comparison_tables(results, fmt)


def acdc_comparison(results: list[tuple[dict, dict]], fmt: str) -> list[str]:
    """ACDC's three tables (inside_core.evaluate_acdc.acdc_tables)."""
    return [_format(header, rows, fmt, 2) for header, rows in acdc_tables(results, _number)]


def dice_tables(results: list[tuple[dict, dict]], fmt: str) -> list[str]:
    """One row per checkpoint: its Dice (volumes: with the true z and with z swapped)."""
    header = ["Model", "Conditioning", "Condition", "Image size", "Dice (mean ± sd)", "Images"]
    rows = [[card["name"], card.get("conditioning", "?"), card.get("condition", "?"),
             "×".join(str(s) for s in card.get("image_size", [])), f"{m['dice']:.3f} ± {m['dice_std']:.3f}",
             str(m["n"])] for card, m in results]
    if all("dice_z_swapped" in m for _, m in results):  # volumes: z swapped, the other cube the target
        header[4:] = ["Dice, true z", "Dice, z swapped", "Volumes"]
        for row, (_, m) in zip(rows, results, strict=True):
            row[5:] = [f"{m['dice_z_swapped']:.3f} ± {m['dice_z_swapped_std']:.3f}", row[5]]
    return [_format(header, rows, fmt, 4)]


def _format(header: list[str], rows: list[list[str]], fmt: str, text_columns: int) -> str:
    """A table as Markdown, CSV or LaTeX; the first `text_columns` columns are left-aligned in LaTeX."""
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


def _card_as_asked(card: dict, args: argparse.Namespace) -> dict:
    """The card, without its clean-up step when --no-largest-component asks for the raw masks."""
    return {**card, "inference": {}} if getattr(args, "no_largest_component", False) else card


def run_evaluate(args: argparse.Namespace) -> int:
    try:
        model = load_checkpoint(args.checkpoint)
        metrics = json_safe(evaluate_model(model, _card_as_asked(model.card, args), args.data, args.split, args.seed,
                                           tta=args.tta))
    except (ValueError, OSError) as error:  # CheckpointError and DataError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = json.dumps(metrics, indent=2)
    print(text)
    try:  # a card that fails its schema, a full disk: one line, as above
        _write_results(args, metrics, text)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _write_results(args: argparse.Namespace, metrics: dict, text: str) -> None:
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


def run_compare(args: argparse.Namespace) -> int:
    results = []
    try:
        for checkpoint in args.checkpoints:
            model = load_checkpoint(checkpoint)
            metrics = json_safe(evaluate_model(model, _card_as_asked(model.card, args), args.data, args.split,
                                               args.seed, tta=args.tta))
            results.append((model.card, metrics))
        formats = ["markdown", "csv", "latex"] if args.format == "all" else [args.format]
        tables = ["\n\n".join(comparison_tables(results, fmt)) for fmt in formats]
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = "\n\n".join(tables)
    print(text)
    try:
        if args.out:
            atomic_write_text(Path(args.out), text + "\n")
        if args.json:
            atomic_write_text(Path(args.json), json.dumps({card["name"]: m for card, m in results}, indent=2) + "\n")
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _recipe_options(parser: argparse.ArgumentParser) -> None:
    """--tta and --no-largest-component: how the masks are made (inside_core.postprocess)."""
    parser.add_argument("--tta", action="store_true",
                        help="average the probabilities over the 8 in-plane turns and mirrors (refused for a "
                             "condition that names places in the image, e.g. quadrant or point)")
    parser.add_argument("--no-largest-component", action="store_true",
                        help="skip the card's largest-connected-component clean-up (card 'inference')")


def register(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on a dataset (Dice; ACDC: also Hausdorff, volumes, z-sensitivity)",
        description="Evaluate a checkpoint; the image size, condition and spacing come from its model card.")
    evaluate.add_argument("--checkpoint", required=True, help="checkpoint (.safetensors, .json or stem)")
    evaluate.add_argument("--data", required=True, help="dataset folder (CLEVR-Seg or ACDC layout)")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    evaluate.add_argument("--seed", type=int, help="seed of the per-image condition draw (default: the card's)")
    _recipe_options(evaluate)
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
    _recipe_options(compare)
    compare.add_argument("--format", default="markdown", choices=["markdown", "csv", "latex", "all"])
    compare.add_argument("--out", help="also write the table(s) to this file")
    compare.add_argument("--json", help="also write all metrics to this JSON file")
    compare.set_defaults(func=run_compare)

