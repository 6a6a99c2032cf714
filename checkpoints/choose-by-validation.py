"""Which checkpoint to ship for each ACDC model, chosen on the VALIDATION split only (never the test set).

    python checkpoints/choose-by-validation.py RUNS_DIR [RUNS_DIR ...] [--install] [--json F] [--markdown F]

Candidates for model M: the shipped checkpoints/M.safetensors and every RUNS_DIR/**/M-seed*.safetensors (a
study's runs, e.g. `checkpoints/acdc-study.sh OUT` writes OUT/runs/main/M-seedN/). Each is scored the same way:
the loss the trainer minimises (configs/M.yaml's `train.loss` plus the sigma penalty), on the config's
validation split (data/acdc-train, 3 of its 30 synthetic phantom patients) in all 8 in-plane turns and mirrors,
z unchanged (`train.with_symmetries`), so a model that only works in one orientation scores worse. The rule,
fixed before looking: the lowest such loss wins; the shipped one keeps its place unless a run beats it by more
than `--margin` (default 0.002, the trainer's own improvement threshold order of magnitude).

`--install` copies each winner (weights and card) over checkpoints/M.*; then run
`bash checkpoints/reproduce.sh evaluate-acdc` to put test metrics in the cards and rewrite the tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from inside_core.checkpoints import checkpoint_paths, load_checkpoint, read_card, write_card
from inside_core.config import load_config
from inside_core.train import config_datasets, make_loss, preload, run_epoch, with_symmetries

MODELS = ("acdc-phantom-baseline", "acdc-phantom-film", "acdc-phantom-guideme", "acdc-phantom-inside",
          "acdc-phantom-inside-multi")
ROOT = Path(__file__).resolve().parent.parent


def validation_set(config: dict) -> TensorDataset:
    images, z, masks, _ = preload(config_datasets(config, config["train"]["val_split"]))
    return TensorDataset(*with_symmetries(images, z, masks, config["condition"]))


def score(path: Path, data: TensorDataset, config: dict) -> dict:
    """8-view validation loss and Dice of one checkpoint (eval mode, no gradients)."""
    model = load_checkpoint(path)
    loss_sum, dice_sum, count = run_epoch(model, DataLoader(data, batch_size=32), make_loss(config["train"]),
                                          torch.device("cpu"))
    return {"checkpoint": str(path), "val8_loss": round(loss_sum / count, 6), "val8_dice": round(dice_sum / count, 6)}


def choose(rows: list[dict], margin: float) -> dict:
    shipped, *runs = rows
    best = min(runs, key=lambda row: row["val8_loss"], default=None)
    return best if best is not None and best["val8_loss"] < shipped["val8_loss"] - margin else shipped


def install(source: Path, model_name: str) -> None:
    """Copy a run's checkpoint over checkpoints/<model_name>, its card named as the file (the run's name kept
    as run_name). Written beside as .partial files, then renamed: a crash leaves the old pair or the new one."""
    staged = ROOT / "checkpoints" / f"{model_name}.partial"
    for src, dst in zip(checkpoint_paths(source), checkpoint_paths(staged), strict=True):
        shutil.copyfile(src, dst)
    card = read_card(staged)
    card["run_name"], card["name"] = card["name"], model_name
    write_card(staged, card)
    for src, dst in zip(checkpoint_paths(staged), checkpoint_paths(ROOT / "checkpoints" / model_name), strict=True):
        src.replace(dst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="folders holding <model>-seed*.safetensors runs")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--margin", type=float, default=0.002)
    parser.add_argument("--install", action="store_true", help="copy each winner over checkpoints/<model>.*")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    report = {}
    missing = [root for root in args.runs if not root.is_dir()]
    if missing:
        raise ValueError(f"{missing[0]}: not a folder of runs")
    for model_name in args.models:
        config = load_config(ROOT / "configs" / f"{model_name}.yaml")
        data = validation_set(config)
        candidates = [ROOT / "checkpoints" / f"{model_name}.safetensors"]
        candidates += sorted(p for root in args.runs for p in root.rglob(f"{model_name}-seed*.safetensors")
                             if "resume" not in p.parts)
        rows = [score(path, data, config) for path in candidates]
        winner = choose(rows, args.margin)
        report[model_name] = {"candidates": rows, "chosen": winner["checkpoint"], "n_views": len(data)}
        for row in rows:
            mark = "  <- chosen" if row is winner else ""
            print(f"{model_name}: {row['checkpoint']}: 8-view val loss {row['val8_loss']:.4f} "
                  f"dice {row['val8_dice']:.4f}{mark}", flush=True)
        if args.install and winner is not rows[0]:
            install(Path(winner["checkpoint"]), model_name)
    if args.json:
        args.json.write_text(json.dumps({"rule": "lowest 8-view validation loss; shipped kept unless beaten by "
                                                 f"more than {args.margin}", "models": report}, indent=1) + "\n")
    if args.markdown:
        lines = ["| Model | Candidate | 8-view val loss | 8-view val Dice | chosen |", "|---|---|---|---|---|"]
        for model_name, entry in report.items():
            for row in entry["candidates"]:
                name = "shipped" if row is entry["candidates"][0] else Path(row["checkpoint"]).stem
                lines.append(f"| {model_name} | {name} | {row['val8_loss']:.4f} | {row['val8_dice']:.4f} | "
                             f"{'yes' if row['checkpoint'] == entry['chosen'] else ''} |")
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as error:  # a missing config or data folder, a bad checkpoint: one line
        raise SystemExit(f"error: {error}") from None
