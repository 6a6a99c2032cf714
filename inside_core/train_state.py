"""Where training stands between runs, and where it runs: the resume state and the distributed setup.

- `save_state(path, model, optimizer, state)`: everything needed to resume, in ONE safetensors file
  (atomic): the model's and Adam's tensors, torch's RNG state, and the JSON state (epoch, early stopping,
  history, Adam's param groups) as metadata;
- `load_state(path, model, optimizer)`: the same restored, every field checked first
  (`inside_core.run_files.read_resume_state`): a hostile or mismatched state is one line;
- `setup_distributed()`, `all_reduce_sum(values, device)`: rank / world / device under torchrun, and the
  sums reduced across ranks (a no-op on one process).

Used by `inside_core.train`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save
from torch import nn

from inside_core.checkpoints import CheckpointError, atomic_write_bytes

__all__ = ["setup_distributed", "all_reduce_sum", "save_state", "load_state"]


# ---------------------------------------------------------------------------------------- distributed

def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) starts gloo on CPU or NCCL on GPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return (dist.get_rank() if dist.is_initialized() else 0), world, device


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    if not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


# ----------------------------------------------------------------------------------------- resume state

def save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Everything needed to resume, in ONE safetensors file (atomic): tensors + JSON metadata."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    for index, per_param in optim["state"].items():
        for key, value in per_param.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {**state, "param_groups": optim["param_groups"]}
    atomic_write_bytes(path, save(tensors, metadata={"state": json.dumps(meta)}))


def load_state(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model, optimizer and RNG from a resume file; returns its JSON state (epoch, history...)."""
    from inside_core.run_files import read_resume_state

    path = Path(path)
    tensors, meta = read_resume_state(path)  # bounded, every field checked: one line if hostile (issue 23)
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: the resume state does not fit this config's model "
                              f"({str(error).splitlines()[0]})") from None
    optim_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    parameters = list(model.parameters())
    for index, entries in optim_state.items():  # Adam's moments have their parameter's shape
        if index >= len(parameters) or any(v.dim() and v.shape != parameters[index].shape for v in entries.values()):
            raise CheckpointError(f"{path}: the resume state's optimizer state does not fit this config's model")
    try:
        optimizer.load_state_dict({"state": optim_state, "param_groups": meta.pop("param_groups")})
        torch.set_rng_state(tensors["rng.torch"])
    except (ValueError, RuntimeError, KeyError, TypeError, IndexError) as error:
        raise CheckpointError(f"{path}: the resume state's optimizer or random state does not fit "
                              f"({str(error).splitlines()[0][:200]})") from None
    return meta
