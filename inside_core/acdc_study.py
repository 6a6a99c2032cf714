"""The cardiac study: does conditioning on (phase, slice position) help? Several models, several seeds.

    python -m inside_core.acdc_study --checkpoints DIR --data ROOT [--split test] [--tta] [--json OUT] [--markdown OUT]

DIR holds checkpoints named `<model>-seed<k>` (.safetensors + .json card); the runs of one model are the
files that share `<model>`. Every checkpoint is run on the same split of ROOT (its own card's image
size, spacing and split seed) with five z variants:

    true                 the slice's own (phase, slice position)
    phase_swapped        phase -> 1 - phase (ED <-> ES)
    position_reversed    s -> 1 - s (base <-> apex)
    z_shuffled           the z of another slice of the split (one fixed permutation, seed 0)
    midpoint             (0.5, 0.5): no information

Also three other in-plane symmetries of the same slices (a quarter turn, a transpose, a half turn with a
transpose: one mirror of each kind) with the true z, averaged: how much a model depends on the
orientation headers could not fix ("turned/mirrored"). With `--per-symmetry`, each of the 7 symmetries
besides the identity alone (mean Dice and LV Dice), to see which costs most.

Masks are made with each card's inference recipe (inside_core.postprocess: the largest connected
component of the labels its card lists and the cardiac anatomy if it names it, per stacked volume);
"true_raw" scores the same true-z masks without it. With `--tta` the true z and the turned/mirrored
slices are also predicted with test-time augmentation over the 8 in-plane symmetries ("true_tta",
"symmetries_tta"; only those: 8 passes each).

The unit is a volume (patient, phase); its score is the 3-D Dice averaged over LV, RV and MYO (and, for
the thirds, over the basal / mid / apical slabs by slice position). Reported per model: mean +- sd over
seeds of the mean Dice; for each variant the change against `true`, and each model against the first
(the baseline), as paired differences per volume averaged over seeds with a 95 % bootstrap confidence
interval over volumes (2000 resamples, seed 0). A conditioned model that uses z loses Dice when z is
wrong; a CI that covers 0 means no effect could be shown on this data.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from inside_core.evaluate import predict_variants
from inside_core.evaluate_acdc import STRUCTURES, THIRDS, third_of, z_variants
from inside_core.metrics import dice
from inside_core.postprocess import clean_volumes, inference_recipe, require_tta, symmetry

__all__ = ["VARIANTS", "group_runs", "volume_scores", "paired_ci", "run_study", "study_tables", "main"]

VARIANTS = ("true", "phase_swapped", "position_reversed", "z_shuffled", "midpoint")
SYMMETRIES = ((1, False), (0, True), (2, True))  # (quarter turns, transpose)
SYMMETRY_NAMES = {(1, False): "turned 90° anticlockwise", (2, False): "turned 180°", (3, False): "turned 90° clockwise",
                  (0, True): "transposed", (2, True): "anti-transposed", (1, True): "mirrored left-right",
                  (3, True): "mirrored up-down"}  # the 7 symmetries of a square besides the identity
_NAMES = {label: name for name, label in STRUCTURES.items()}  # 3 -> "LV", for the tables
SEED_SUFFIX = re.compile(r"^(?P<model>.+)-seed(?P<seed>\d+)$")


def group_runs(directory: str | Path) -> dict[str, list[Path]]:
    """{model: [weights paths, by seed]} from `<model>-seed<k>.safetensors` files."""
    runs: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    for path in sorted(Path(directory).glob("*.safetensors")):
        match = SEED_SUFFIX.match(path.stem)
        if match:
            runs[match["model"]].append((int(match["seed"]), path))
    return {model: [p for _, p in sorted(items)] for model, items in runs.items()}


def study_variants(z: torch.Tensor) -> dict[str, torch.Tensor]:
    """The five z variants of the module docstring."""
    variants = z_variants(z)
    order = torch.from_numpy(np.random.default_rng(0).permutation(z.shape[0]))
    variants["z_shuffled"] = z[order].clone()
    return {name: variants[name] for name in VARIANTS}


def volume_scores(labels: np.ndarray, masks: np.ndarray, metas: list[dict]) -> dict[str, np.ndarray]:
    """Per volume (patient, phase; sorted): mean Dice over structures, whole and per third (NaN if absent);
    "LV": the LV's Dice alone."""
    volumes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, meta in enumerate(metas):
        volumes[(str(meta["patient"]), str(meta["phase"]))].append(index)
    scores: dict[str, list[float]] = defaultdict(list)
    for key in sorted(volumes):
        indices = sorted(volumes[key], key=lambda i: int(metas[i]["slice_index"]))
        pred, target = labels[indices], masks[indices]
        scores["all"].append(np.mean([dice(pred == v, target == v) for v in STRUCTURES.values()]))
        scores["LV"].append(dice(pred == STRUCTURES["LV"], target == STRUCTURES["LV"]))
        scores[f"all_{key[1]}"].append(scores["all"][-1])
        slab = np.array([third_of(float(metas[i]["slice_position"])) for i in indices])
        for third in THIRDS:
            chosen = slab == third
            scores[third].append(np.mean([dice(pred[chosen] == v, target[chosen] == v) for v in STRUCTURES.values()])
                                 if chosen.any() else np.nan)
            if key[1] == "ES":
                scores[f"{third}_ES"].append(scores[third][-1])
    return {name: np.asarray(values, dtype=float) for name, values in scores.items()}


def paired_ci(differences: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean paired difference and its 95 % bootstrap interval (NaNs left out)."""
    values = differences[np.isfinite(differences)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate_run(weights: Path, data: str | Path, split: str, cache: dict, tta: bool = False,
                 per_symmetry: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """{variant: volume_scores} of one checkpoint; the preloaded split is shared through `cache`."""
    from inside_core.checkpoints import load_checkpoint, read_card
    from inside_core.train import build_dataset, preload

    card = read_card(weights)
    key = (str(card.get("image_size")), str(card.get("spacing")), int(card.get("data", {}).get("seed", 0)))
    if key not in cache:
        dataset = build_dataset("acdc", data, split, condition=card.get("condition") or "phase_slice",
                                image_size=card.get("image_size"), spacing=card.get("spacing"), seed=key[2])
        images, z, masks, metas = preload(dataset)
        cache[key] = (images, z, masks.numpy().astype(np.int64), metas)
    images, z, masks, metas = cache[key]
    if tta:
        require_tta(card)
    keep = inference_recipe(card)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_checkpoint(weights).eval().to(device)
    variants = {name: v.to(device) for name, v in study_variants(z).items()}
    labels = {name: p.cpu().numpy() for name, p in predict_variants(model, images.to(device), variants).items()}
    scores = {name: volume_scores(clean_volumes(p, metas, keep), masks, metas) for name, p in labels.items()}
    scores["true_raw"] = volume_scores(labels["true"], masks, metas)
    true_z = {"true": variants["true"]}
    if tta:
        predicted = predict_variants(model, images.to(device), true_z, tta=True)["true"].cpu().numpy()
        scores["true_tta"] = volume_scores(clean_volumes(predicted, metas, keep), masks, metas)
    # the same slices turned and mirrored, true z: what headers cannot fix
    turned = {}
    for turns, transpose in (SYMMETRY_NAMES if per_symmetry else SYMMETRIES):
        moved = symmetry(images, turns, transpose).to(device)
        predicted = predict_variants(model, moved, true_z)["true"].cpu().numpy()
        moved_masks = symmetry(torch.from_numpy(masks), turns, transpose).numpy()
        turned[(turns, transpose)] = volume_scores(clean_volumes(predicted, metas, keep), moved_masks, metas)
    scores["symmetries"] = {"all": np.nanmean(np.stack([turned[s]["all"] for s in SYMMETRIES]), axis=0)}
    if per_symmetry:
        scores["per_symmetry"] = {SYMMETRY_NAMES[s]: {part: turned[s][part] for part in ("all", "LV")} for s in turned}
    if tta:
        with_tta = []
        for turns, transpose in SYMMETRIES:
            moved = symmetry(images, turns, transpose).to(device)
            predicted = predict_variants(model, moved, true_z, tta=True)["true"].cpu().numpy()
            moved_masks = symmetry(torch.from_numpy(masks), turns, transpose).numpy()
            with_tta.append(volume_scores(clean_volumes(predicted, metas, keep), moved_masks, metas)["all"])
        scores["symmetries_tta"] = {"all": np.nanmean(np.stack(with_tta), axis=0)}
    scores["recipe"] = keep
    return scores


def run_study(directory: str | Path, data: str | Path, split: str = "test", progress: bool = True,
              tta: bool = False, per_symmetry: bool = False) -> dict:
    """Scores of every run (see the module docstring) and the summary the tables show."""
    from tqdm import tqdm

    runs = group_runs(directory)
    if not runs:
        raise SystemExit(f"{directory}: no <model>-seed<k>.safetensors checkpoints found")
    cache: dict = {}
    scores = {model: [evaluate_run(p, data, split, cache, tta, per_symmetry)
                      for p in tqdm(paths, desc=model, disable=not progress)] for model, paths in runs.items()}
    recipes = {m: [s.pop("recipe") for s in per_seed] for m, per_seed in scores.items()}
    return {"split": split, "data": str(data), "runs": {m: [p.name for p in ps] for m, ps in runs.items()},
            "tta": tta, "largest_component": {m: [r["largest_component"] for r in rs] for m, rs in recipes.items()},
            "anatomy": {m: [r["anatomy"] for r in rs] for m, rs in recipes.items()}, "summary": summarise(scores)}


def _seed_mean(per_seed: list[dict], variant: str, part: str) -> np.ndarray:
    """Per volume, the score averaged over seeds."""
    return np.nanmean(np.stack([s[variant][part] for s in per_seed]), axis=0)


def summarise(scores: dict[str, list[dict]]) -> dict:
    models = list(scores)
    baseline = models[0]
    summary: dict = {}
    for model, per_seed in scores.items():
        seed_means = [float(np.nanmean(s["true"]["all"])) for s in per_seed]
        row: dict = {"seeds": len(per_seed), "dice_mean": float(np.mean(seed_means)),
                     "dice_sd": float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else 0.0}
        for part in ("all", *THIRDS, "all_ES", *(f"{t}_ES" for t in THIRDS)):
            row[f"dice_{part}"] = float(np.nanmean(_seed_mean(per_seed, "true", part)))
        row["delta_symmetries"] = paired_ci(_seed_mean(per_seed, "symmetries", "all")
                                            - _seed_mean(per_seed, "true", "all"))
        row["dice_raw"] = float(np.nanmean(_seed_mean(per_seed, "true_raw", "all")))
        row["delta_largest_component"] = paired_ci(_seed_mean(per_seed, "true", "all")
                                                   - _seed_mean(per_seed, "true_raw", "all"))
        if "true_tta" in per_seed[0]:
            row["dice_tta"] = float(np.nanmean(_seed_mean(per_seed, "true_tta", "all")))
            row["delta_tta"] = paired_ci(_seed_mean(per_seed, "true_tta", "all") - _seed_mean(per_seed, "true", "all"))
            row["delta_symmetries_tta"] = paired_ci(_seed_mean(per_seed, "symmetries_tta", "all")
                                                    - _seed_mean(per_seed, "true_tta", "all"))
        if "per_symmetry" in per_seed[0]:
            row["delta_per_symmetry"] = {
                name: {part: paired_ci(np.nanmean(np.stack([s["per_symmetry"][name][part] for s in per_seed]), axis=0)
                                       - _seed_mean(per_seed, "true", part)) for part in ("all", "LV")}
                for name in per_seed[0]["per_symmetry"]}
        for variant in VARIANTS[1:]:
            row[f"delta_{variant}"] = paired_ci(_seed_mean(per_seed, variant, "all")
                                                - _seed_mean(per_seed, "true", "all"))
        if model != baseline:
            for part in ("all", *THIRDS, "basal_ES"):
                row[f"vs_baseline_{part}"] = paired_ci(
                    _seed_mean(per_seed, "true", part) - _seed_mean(scores[baseline], "true", part))
        summary[model] = row
    return summary


def _ci(value: tuple[float, float, float]) -> str:
    mean, low, high = value
    return f"{mean:+.4f} ({low:+.4f}…{high:+.4f})"


def study_tables(result: dict) -> str:
    """Markdown: accuracy (mean ± sd over seeds, thirds), z-sensitivity and model-vs-baseline with CIs."""
    summary = result["summary"]
    models = list(summary)
    lines = ["| Model | seeds | Dice (mean ± sd over seeds) | basal | mid | apical | ES basal | turned/mirrored Δ |",
             "|---|---|---|---|---|---|---|---|"]
    for m in models:
        r = summary[m]
        lines.append(f"| {m} | {r['seeds']} | {r['dice_mean']:.4f} ± {r['dice_sd']:.4f} | {r['dice_basal']:.4f} | "
                     f"{r['dice_mid']:.4f} | {r['dice_apical']:.4f} | {r['dice_basal_ES']:.4f} | "
                     f"{_ci(r['delta_symmetries'])} |")
    lines += ["", "| Model | largest component (labels, per seed; anatomy) | Dice without it | its Δ (95 % CI) | "
              "with TTA | TTA Δ | turned/mirrored Δ with TTA |", "|---|---|---|---|---|---|---|"]
    for m in models:
        r, keep = summary[m], result.get("largest_component", {}).get(m, [])
        anatomy = result.get("anatomy", {}).get(m) or [None] * len(keep)
        tta = [f"{r['dice_tta']:.4f}", _ci(r["delta_tta"]), _ci(r["delta_symmetries_tta"])] if "dice_tta" in r \
            else ["not run"] * 3
        cleaned = " / ".join(("+".join(_NAMES.get(label, str(label)) for label in k) or "–")
                             + (f", {a}" if a else "") for k, a in zip(keep, anatomy, strict=True))
        lines.append(f"| {m} | {cleaned} | {r['dice_raw']:.4f} | "
                     f"{_ci(r['delta_largest_component'])} | " + " | ".join(tta) + " |")
    lines += ["", "| Model | phase swapped Δ (95 % CI) | position reversed Δ | z shuffled Δ | midpoint Δ |",
              "|---|---|---|---|---|"]
    for m in models:
        r = summary[m]
        lines.append(f"| {m} | " + " | ".join(_ci(r[f"delta_{v}"]) for v in VARIANTS[1:]) + " |")
    if all("delta_per_symmetry" in summary[m] for m in models):
        names = list(summary[models[0]]["delta_per_symmetry"])
        lines += ["", "| Model (Δ Dice; LV Δ) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for m in models:
            cells = summary[m]["delta_per_symmetry"]
            lines.append(f"| {m} | " + " | ".join(f"{_ci(cells[n]['all'])}; LV {cells[n]['LV'][0]:+.4f}"
                                                  for n in names) + " |")
    lines += ["", f"| Model − {models[0]} | all slices Δ (95 % CI) | basal | mid | apical | ES basal |",
              "|---|---|---|---|---|---|"]
    for m in models[1:]:
        r = summary[m]
        lines.append(f"| {m} | " + " | ".join(_ci(r[f"vs_baseline_{p}"])
                                             for p in ("all", *THIRDS, "basal_ES")) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inside_core.acdc_study", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", required=True, help="folder of <model>-seed<k> checkpoints")
    parser.add_argument("--data", required=True, help="ACDC-layout folder (real download or phantom)")
    parser.add_argument("--split", default="test", help="split to evaluate on (default: test)")
    parser.add_argument("--tta", action="store_true", help="also the true z and the turned/mirrored slices with "
                        "test-time augmentation over the 8 in-plane symmetries")
    parser.add_argument("--per-symmetry", action="store_true", help="also each of the 7 in-plane symmetries besides "
                        "the identity alone (turned/mirrored Δ per symmetry)")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--markdown", help="write the tables here")
    args = parser.parse_args(argv)
    result = run_study(args.checkpoints, args.data, args.split, tta=args.tta, per_symmetry=args.per_symmetry)
    text = study_tables(result)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
