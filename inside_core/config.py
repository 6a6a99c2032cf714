"""Training configs: YAML files holding only what an experiment changes from its `base:` (nanoGPT's
config/*.py), resolved into the full config that training runs and model cards record.

    config = load_config("configs/clevr-seg-quadrant-inside-cpu.yaml")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from inside_core.conditions import get_condition
from inside_core.data.errors import DataError
from inside_core.data.registry import DATASETS, dataset_kind

__all__ = ["DEFAULT_TRAIN", "load_config", "merge"]

# The reference's training settings (method.md); a config's `train` section overrides them.
DEFAULT_TRAIN: dict[str, Any] = {
    "epochs": 100,
    "batch_size": 32,
    "lr": 1e-3,  # Adam's default, as in the reference
    "loss": "focal",
    "focal_gamma": 2.0,
    "patience": 25,
    "min_delta": 1e-4,
    "seed": 42,
    "max_minutes": None,  # wall-clock budget for the training loop (None: no limit)
    "num_threads": None,  # torch threads for CPU runs (None: $OMP_NUM_THREADS or torch's default; threads.py)
    "compile": False,  # torch.compile the training passes (off: its compile time outweighed the gain here)
    "train_split": "train",
    "val_split": "val",
    # validate on every in-plane symmetry of the validation images too (ACDC: files arrive in any orientation,
    # so the kept epoch must be good in all of them, not only in the canonical frame); only for conditions that
    # do not depend on where things are in the image (a quadrant or point condition would be wrong turned)
    "val_symmetries": False,
}


def merge(base: dict, override: dict) -> dict:
    """`override` over `base`, section by section (nested mappings merged, everything else replaced)."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key),
                                                                                          dict) else value
    return merged


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A config mapping with its `base:` chain resolved (paths relative to the file that names them)."""
    from inside_core.data.files import read_text

    try:  # a regular file of at most text_bytes (issue 23), then YAML without Python objects
        config = yaml.safe_load(read_text(path, "text"))
    except DataError as error:
        raise ValueError(f"{path}: cannot read the config ({error.problem})") from None
    except (OSError, yaml.YAMLError, RecursionError) as error:
        raise ValueError(f"{path}: cannot read the config ({str(error).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a config must be a YAML mapping")
    base = config.pop("base", None)
    if base is None:
        return config
    base_path = (path.parent / str(base)).resolve()
    if base_path in seen:
        raise ValueError(f"{path}: 'base: {base}' makes a loop")
    return merge(_read_yaml(base_path, (*seen, base_path)), config)


def load_config(path: str | os.PathLike) -> dict:
    """Read a YAML config: its `base:` file (if any) with this file's values over it, as nanoGPT's
    config files hold only what they change; then `train` filled from DEFAULT_TRAIN and the model's
    `cond_dim` from the condition (inside_core.conditions). Returns the full resolved config."""
    path = Path(path)
    config = _read_yaml(path, (path.resolve(),))
    for section in ("name", "dataset", "data", "model"):
        if section not in config:
            raise ValueError(f"{path}: the config lacks '{section}'")
    try:
        kind = dataset_kind(config["dataset"])  # the registry's (inside_core.data.registry)
    except (ValueError, TypeError):
        raise ValueError(f"{path}: unknown dataset {config['dataset']!r}; expected one of "
                         f"{', '.join(DATASETS)}") from None
    if kind.variables:  # a user's folder: z, channels and classes come from its dataset.json
        config["train"] = {**DEFAULT_TRAIN, **(config.get("train") or {})}
        config["condition"] = kind.condition
        return config
    config["train"] = {**DEFAULT_TRAIN, **(config.get("train") or {})}
    if isinstance(config["model"], dict) and "network" in config["model"]:  # a MONAI network, wrapped (wrap.py):
        config["model"]["name"] = "wrapped"  # over the name a base config gives its own network
    config.setdefault("condition", kind.condition)
    config["model"].setdefault("cond_dim", get_condition(config["condition"]).cond_dim)
    return config
