"""Training: one readable loop, from a YAML config to a checkpoint with its model card.

    inside train --config configs/clevr-seg-quadrant-inside-cpu.yaml [--data DIR] [--out DIR]
                 [--epochs N] [--resume STATE]
    torchrun --nproc_per_node 2 -m inside_core train --config ...      (DDP: gloo on CPU, NCCL on GPUs)

What it does, in order:
  1. read the config (sections `data`, `model`, `train`; see configs/*.yaml), seed everything;
  2. if the data folder is missing and the config says how to generate it (`data.generate`), generate it;
  3. load the train and validation splits into memory once (the datasets are small);
  4. per epoch: shuffle with a generator seeded by (seed, epoch) (DistributedSampler), minimise
         loss = task loss + sigma penalty (INSIDE only; `model.sigma_penalty`)
     with Adam; then compute validation loss and mean Dice per image, reduced across ranks;
  5. keep the checkpoint with the lowest validation loss (`<out>/<name>.safetensors` + `.json`);
     stop early when the validation loss has not improved by `min_delta` for `patience` epochs,
     or when `max_minutes` of training have passed;
  6. after every epoch write the resume state `<out>/resume/<name>.safetensors` (model, Adam state,
     epoch, early-stopping state, history, RNG; inside_core/train_state.py) and the CSV log `<out>/<name>.csv`.

Task losses are MONAI's: "focal" (sigmoid focal loss, the reference's CLEVR-Seg loss), "focal+dice"
(focal plus soft Dice, used for the shipped CPU models), "dice+ce" (Dice + cross-entropy, ACDC).
Because the shuffling order is a function of (seed, epoch) and the model/optimizer/RNG state is restored,
a run that is killed and resumed follows the same trajectory as one that was never interrupted.
Only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from tqdm import tqdm

from inside_core import metrics
from inside_core.checkpoints import (
    CheckpointError,
    atomic_write_text,
    checkpoint_paths,
    load_checkpoint,
    read_card,
    save_checkpoint,
    write_card,
)
from inside_core.conditions import get_condition
from inside_core.config import DEFAULT_TRAIN, load_config, merge
from inside_core.data.registry import dataset_kind
from inside_core.losses import make_loss
from inside_core.networks import build_model
from inside_core.postprocess import symmetries, symmetry
from inside_core.threads import set_threads
from inside_core.train_state import all_reduce_sum, load_state, save_state, setup_distributed

__all__ = ["DEFAULT_TRAIN", "load_config", "build_dataset", "preload", "make_loss", "batch_dice", "train",
           "register"]

# ------------------------------------------------------------------------------------------------- data

def build_dataset(dataset: str, root: str | os.PathLike, split: str, *, condition: str = "quadrant",
                  image_size: int | list | None = None, spacing: float | None = None, seed: int = 0,
                  variables: list[str] | None = None):
    """The dataset object for one split, with the options a config or model card records
    (`variables`: the declared variables a user's nnU-Net-layout folder conditions on; None: all).
    Each kind's own loader builds it (inside_core.data.registry)."""
    return dataset_kind(dataset).load(root, split, condition=condition, image_size=image_size, spacing=spacing,
                                      seed=seed, variables=variables)


def preload(dataset) -> tuple[Tensor, Tensor, Tensor, list[dict]]:
    """All items stacked into tensors (images, z, masks) plus the list of metas."""
    items = [dataset[i] for i in range(len(dataset))]
    if not items:
        raise ValueError("the dataset split is empty")
    images = torch.stack([torch.as_tensor(item["image"], dtype=torch.float32) for item in items])
    z = torch.stack([torch.as_tensor(item["z"], dtype=torch.float32) for item in items])
    masks = torch.stack([torch.as_tensor(item["mask"]) for item in items])
    return images, z, masks, [item.get("meta", {}) for item in items]


def with_symmetries(images: Tensor, z: Tensor, masks: Tensor, condition: str) -> tuple[Tensor, Tensor, Tensor]:
    """The validation set in every in-plane symmetry that keeps its shape (postprocess.symmetries: 8 for
    square images), z unchanged: for conditions whose meaning does not move with the image."""
    if not get_condition(condition).orientation_free:
        raise ValueError(f"train.val_symmetries: the condition {condition!r} names places in the image, "
                         "so a turned image would need another z")
    views = symmetries(images.shape[-2:])
    return (torch.cat([symmetry(images, t, tr) for t, tr in views]), z.repeat(len(views), 1),
            torch.cat([symmetry(masks, t, tr) for t, tr in views]))


def config_datasets(config: dict, split: str):
    data_cfg = config["data"]
    dataset = build_dataset(config["dataset"], data_cfg["root"], split, condition=config.get("condition", "quadrant"),
                            image_size=data_cfg.get("image_size"), spacing=data_cfg.get("spacing"),
                            seed=data_cfg.get("seed", 0), variables=data_cfg.get("variables"))
    limit = data_cfg.get("train_patients")
    if limit and split == config["train"].get("train_split", "train"):  # fewer labelled patients (ACDC)
        if not hasattr(dataset, "keep_patients"):
            raise ValueError(f"data.train_patients is for ACDC data, not {config['dataset']!r}")
        dataset.keep_patients(int(limit))
    return dataset


def ensure_data(config: dict) -> None:
    """Generate the config's data with its `data.generate` command if the folder does not exist yet."""
    root = Path(config["data"]["root"])
    if root.exists():
        return
    command = config["data"].get("generate")
    if not command:
        raise ValueError(f"{root}: data folder not found and the config has no data.generate command")
    from inside_core.cli import main as cli_main

    argv = shlex.split(command)
    if argv and argv[0] in ("inside", "python"):
        argv = argv[1:] if argv[0] == "inside" else argv[3:]  # "python -m inside_core ..."
    print(f"generating data: {command}", flush=True)
    status = cli_main(argv)
    if status:
        raise RuntimeError(f"data generation failed with status {status}: {command}")


# ------------------------------------------------------------------------------------------ labels, dice

def predict_labels(logits: Tensor) -> Tensor:
    """(B, 1, H, W) logits -> binary (B, H, W) by logit > 0; (B, K, H, W) -> argmax labels (B, H, W)."""
    return (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(dim=1)


def batch_dice(logits: Tensor, target: Tensor) -> Tensor:
    """Dice per image, (B,), of the predicted labels (inside_core.metrics: the one Dice).

    Binary models: the foreground. Multi-class: the mean over the foreground classes 1..K-1.
    """
    labels = predict_labels(logits)
    target = target[:, 0].long() if target.dim() == logits.dim() else target.long()  # (B, 1, ...) masks
    return metrics.batch_dice(labels, target, range(1, max(2, logits.shape[1])))


def write_log(path: Path, history: list[dict]) -> None:
    buffer = io.StringIO()
    fields = list(history[0]) if history else ["epoch"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


# ------------------------------------------------------------------------------------------- the loop

def run_epoch(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, device: torch.device,
              optimizer: torch.optim.Optimizer | None = None, progress: str | None = None,
              augment=None) -> tuple[float, float, int]:
    """One pass; trains if an optimizer is given (batches through `augment` first, if given).
    Returns (sum of loss * n, sum of Dice, n) on this rank."""
    training = optimizer is not None
    model.train(training)
    raw_model = getattr(model, "module", model)
    loss_sum, dice_sum, count = 0.0, 0.0, 0
    batches = tqdm(loader, desc=progress, leave=False, disable=progress is None, mininterval=2.0)
    with torch.set_grad_enabled(training):
        for images, z, masks in batches:
            images, z, masks = images.to(device), z.to(device), masks.to(device)
            if training and augment is not None:  # on the model's device: a GPU's time, not the CPU's
                images, masks = augment(images, masks)
            out = model(images, z)
            loss = loss_fn(out.logits, masks) + raw_model.sigma_penalty(out.conditioning).to(device)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            n = images.shape[0]
            loss_sum += loss.item() * n
            dice_sum += batch_dice(out.logits.detach(), masks).sum().item()
            count += n
            batches.set_postfix(loss=f"{loss_sum / count:.4f}")
    return loss_sum, dice_sum, count


def train(config: dict, out_dir: str | os.PathLike | None = None, resume: str | None = None,
          command: str | None = None, quiet: bool = False) -> Path | None:
    """Train the model a config describes; returns the best checkpoint's path (rank 0) or None.

    One run per output folder: rank 0 holds `<out>/.inside-run.lock` (inside_core.run_lock) while it
    runs, so a second run into the same folder stops at once (RunLockError, one line) instead of
    silently overwriting the first one's results; the lock of a killed run is taken over.
    """
    from inside_core.run_files import refuse_previous_run
    from inside_core.run_lock import RunLock

    out = Path(out_dir or Path("runs") / config["name"])
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun rank 0 holds the lock for every rank
        return _train(config, out, resume, command, quiet)
    with RunLock(out):
        refuse_previous_run(out, config["name"], resume)  # a finished run is never replaced (issue 23)
        return _train(config, out, resume, command, quiet)


def _train(config: dict, out_dir: Path, resume: str | None, command: str | None, quiet: bool) -> Path | None:
    """The training loop of `train`, inside the run lock."""
    cfg = config["train"]
    name = config["name"]
    out_dir = Path(out_dir or Path("runs") / name)
    rank, world, device = setup_distributed()
    set_threads(cfg.get("num_threads"))  # the wait policy was set when inside_core was imported
    seed = int(cfg["seed"])
    torch.manual_seed(seed)

    if rank == 0:
        ensure_data(config)
    if dist.is_initialized():
        dist.barrier()
    train_set = config_datasets(config, cfg["train_split"])
    val_set = config_datasets(config, cfg["val_split"])
    images, z, masks, _ = preload(train_set)
    val_images, val_z, val_masks, _ = preload(val_set)
    if cfg.get("val_symmetries"):
        val_images, val_z, val_masks = with_symmetries(val_images, val_z, val_masks, config.get("condition", ""))
    model_cfg = dict(config["model"])
    model_cfg.setdefault("cond_dim", int(z.shape[1]))
    for key, value in (train_set.model_defaults() if hasattr(train_set, "model_defaults") else {}).items():
        model_cfg.setdefault(key, value)  # a user's folder decides its input channels and classes
    if "image_size" not in model_cfg:
        model_cfg["image_size"] = list(images.shape[2:])
    model = build_model(model_cfg.pop("name"), **model_cfg).to(device)
    if cfg.get("init") and resume is None:  # a warm start: the weights of a trained model of the same shape
        try:
            model.load_state_dict(load_checkpoint(cfg["init"]).state_dict())
        except RuntimeError as error:
            raise ValueError(f"{cfg['init']}: its weights do not fit this network ({error})".splitlines()[0]) from None
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    loss_fn = make_loss(cfg)
    from inside_core.data.augment import make_augment  # here: training code must not need data at import time

    augment = make_augment(cfg.get("augment"))  # train.augment: inside_core.data.augment options

    state = {"epoch": 0, "best_val_loss": math.inf, "best_epoch": 0, "epochs_without_improvement": 0,
             "elapsed_s": 0.0, "history": [], "stopped": ""}
    if resume:
        state.update(load_state(resume, model, optimizer))
        if not quiet and rank == 0:
            print(f"resumed from {resume} after epoch {state['epoch']}", flush=True)
    ddp_model = nn.parallel.DistributedDataParallel(model) if dist.is_initialized() else model
    # train.compile (off by default): torch.compile for the training passes only, so validation (eval mode,
    # no grad) adds no second compilation; benchmarks/bench_layers.py --compile measures when it pays off
    train_model = torch.compile(ddp_model) if cfg.get("compile") else ddp_model

    # The same sampler with and without DDP: the order of epoch e is a function of (seed, e) only.
    train_sampler = DistributedSampler(TensorDataset(images, z, masks), num_replicas=world, rank=rank,
                                       shuffle=True, seed=seed)
    train_loader = DataLoader(TensorDataset(images, z, masks), batch_size=int(cfg["batch_size"]),
                              sampler=train_sampler)
    val_sampler = DistributedSampler(TensorDataset(val_images, val_z, val_masks), num_replicas=world, rank=rank,
                                     shuffle=False)
    val_loader = DataLoader(TensorDataset(val_images, val_z, val_masks), batch_size=int(cfg["batch_size"]),
                            sampler=val_sampler)

    best_path = out_dir / name
    resume_path = out_dir / "resume" / f"{name}.safetensors"
    log_path = out_dir / f"{name}.csv"
    max_s = float(cfg["max_minutes"]) * 60 if cfg.get("max_minutes") else math.inf
    if rank == 0 and not quiet:
        print(f"{name}: {len(train_set)} training / {len(val_set)} validation samples, "
              f"{sum(p.numel() for p in model.parameters())} parameters, {world} process(es) on {device}", flush=True)

    for epoch in range(state["epoch"] + 1, int(cfg["epochs"]) + 1):
        # checked here too, so a resumed run obeys the (possibly new) patience and time budget
        state["stopped"] = stop_reason(state, cfg, max_s)
        if state["stopped"]:
            break
        started = time.perf_counter()
        train_sampler.set_epoch(epoch)
        progress = f"epoch {epoch}" if rank == 0 and not quiet else None
        train_sums = all_reduce_sum(list(run_epoch(train_model, train_loader, loss_fn, device, optimizer, progress,
                                                        augment)),
                                    device)
        val_sums = all_reduce_sum(list(run_epoch(ddp_model, val_loader, loss_fn, device)), device)
        elapsed = state["elapsed_s"] + time.perf_counter() - started
        row = {"epoch": epoch, "train_loss": train_sums[0] / train_sums[2], "train_dice": train_sums[1] / train_sums[2],
               "val_loss": val_sums[0] / val_sums[2], "val_dice": val_sums[1] / val_sums[2], "elapsed_s": elapsed}
        improved = row["val_loss"] < state["best_val_loss"] - float(cfg["min_delta"])
        history = state["history"] + [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}]
        state.update(epoch=epoch, elapsed_s=elapsed, history=history)
        if improved:
            state.update(best_val_loss=row["val_loss"], best_epoch=epoch, best_val_dice=row["val_dice"],
                         epochs_without_improvement=0)
        else:
            state["epochs_without_improvement"] += 1
        state["stopped"] = stop_reason(state, cfg, max_s)
        if rank == 0:
            if improved:
                save_checkpoint(model, make_card(config, model, state, command), best_path)
            save_state(resume_path, model, optimizer, state)
            write_log(log_path, state["history"])
            if not quiet:
                mark = " *" if improved else ""
                print(f"epoch {epoch:3d}  train loss {row['train_loss']:.4f} dice {row['train_dice']:.3f}  "
                      f"val loss {row['val_loss']:.4f} dice {row['val_dice']:.3f}  {elapsed:6.0f}s{mark}", flush=True)
    if rank == 0:
        if not quiet:
            print(state["stopped"] or f"finished {cfg['epochs']} epochs", flush=True)
        # the best checkpoint's card learns how the run ended
        if checkpoint_paths(best_path)[1].exists():
            card = read_card(best_path)
            card.update(epochs=state["epoch"], training_time_s=round(state["elapsed_s"], 1),
                        stopped=state["stopped"] or f"finished {cfg['epochs']} epochs")
            write_card(best_path, card)
    if dist.is_initialized():
        dist.barrier()
    return (out_dir / f"{name}.safetensors") if rank == 0 else None


def stop_reason(state: dict, cfg: dict, max_s: float) -> str:
    """Why training stops before the next epoch ("" to go on): early stopping or the time budget."""
    if state["epochs_without_improvement"] >= int(cfg["patience"]):
        return f"early stopping: no improvement for {cfg['patience']} epochs"
    if state["elapsed_s"] >= max_s:
        return f"time budget of {cfg['max_minutes']} minutes reached"
    return ""


def _layer_kind(architecture: dict) -> str:
    """The conditioning layer's name; a wrapped network's architecture holds it in its `conditioning` object."""
    conditioning = architecture.get("conditioning", "none")
    return conditioning.get("layer", "inside") if isinstance(conditioning, dict) else conditioning


def make_card(config: dict, model: nn.Module, state: dict, command: str | None) -> dict:
    """The model card (see inside_core.checkpoints) for the current best model."""
    data_cfg = config["data"]
    card = {
        "name": config["name"],
        "architecture": model.config,
        "dataset": config["dataset"],
        "condition": config.get("condition"),
        "conditioning": _layer_kind(model.config),
        "image_size": list(model.config.get("image_size", [])),
        "z_encoding": get_condition(config["condition"]).z_encoding if config.get("condition") not in (None, "table")
        else "",
        "data": {"root": str(data_cfg["root"]), "generate": data_cfg.get("generate"),
                 "train_split": config["train"]["train_split"], "val_split": config["train"]["val_split"],
                 "seed": data_cfg.get("seed", 0), "synthetic": bool(data_cfg.get("synthetic", True))},
        "seed": int(config["train"]["seed"]),
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "training_time_s": round(state["elapsed_s"], 1),
        "train": {k: v for k, v in config["train"].items()},
        "metrics": {"validation": {"loss": round(state["best_val_loss"], 6),
                                   "dice": round(state.get("best_val_dice", float("nan")), 6)}},
        "command": command or "",
    }
    return merge(card, dataset_kind(config["dataset"]).card_extras(data_cfg))  # e.g. ACDC's spacing


# -------------------------------------------------------------------------------------------- the CLI

def reproduce_command(config: dict, argv: list[str]) -> str:
    generate = config["data"].get("generate")
    train_command = "inside " + shlex.join(argv)
    return f"{generate} && {train_command}" if generate else train_command


CLI_OVERRIDES = (("data", "data", "root"), ("variables", "data", "variables"), ("epochs", "train", "epochs"),
                 ("max_minutes", "train", "max_minutes"), ("threads", "train", "num_threads"),
                 ("seed", "train", "seed"), ("init", "train", "init"), ("name", None, "name"),
                 ("train_patients", "data", "train_patients"), ("compile", "train", "compile"))


def run_train(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        if getattr(args, "variables", None):
            args.variables = [v.strip() for v in args.variables.split(",") if v.strip()]
        # each command-line value overrides one config key: (argument, section or None for the top level, key)
        for argument, section, key in CLI_OVERRIDES:
            value = getattr(args, argument, None)
            if value is not None and value is not False and value != "" and value != []:
                (config[section] if section else config)[key] = value
        if "train" in sys.argv:  # the command as typed, from the sub-command on, less --resume (same result)
            argv = sys.argv[sys.argv.index("train"):]
            argv = [a for i, a in enumerate(argv) if a != "--resume" and (i == 0 or argv[i - 1] != "--resume")]
            argv = [a for a in argv if not a.startswith("--resume=")]
        else:  # called from Python
            argv = ["train", "--config", str(args.config)] + (["--out", str(args.out)] if args.out else [])
        path = train(config, args.out, args.resume, reproduce_command(config, argv))
    except (ValueError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, no permission: one line with the path (a WriteError says it already)
        from inside_core.atomic import WriteError
        from inside_core.data.errors import printable

        plain = not isinstance(error, WriteError) and error.filename and error.strerror
        print(f"error: {printable(error.filename)}: {error.strerror}" if plain else f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if path is not None:
        print(f"best checkpoint: {path}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a model from a YAML config (configs/*.yaml)",
                                   description="Train a conditioned segmentation model; keeps the checkpoint with "
                                   "the lowest validation loss. Run under torchrun for DDP.")
    parser.add_argument("--config", required=True, help="YAML config, e.g. configs/clevr-seg-quadrant-inside-cpu.yaml")
    parser.add_argument("--data", help="data folder (overrides data.root)")
    parser.add_argument("--out", help="output folder (default runs/<name>)")
    parser.add_argument("--epochs", type=int, help="maximum number of epochs (overrides train.epochs)")
    parser.add_argument("--resume", help="resume state to continue from (<out>/resume/<name>.safetensors)")
    parser.add_argument("--max-minutes", type=float, help="training time budget (overrides train.max_minutes)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (overrides train.num_threads)")
    parser.add_argument("--seed", type=int, help="training seed: weights, shuffling, augmentation (train.seed)")
    parser.add_argument("--init", help="start from this checkpoint's weights (a warm start; overrides train.init)")
    parser.add_argument("--name", help="run name: <out>/<name>.safetensors and the card's name (overrides name)")
    parser.add_argument("--train-patients", type=int, help="ACDC: the first N train patients only")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training passes (sets train.compile; pays off only for long runs: "
                        "benchmarks/bench_layers.py --compile)")
    parser.add_argument("--variables", help="nnU-Net-layout data: the declared variables to condition on, "
                        "comma-separated (overrides data.variables; default all)")
    parser.set_defaults(func=run_train)
