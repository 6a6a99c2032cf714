"""What a training run leaves in its `--out` folder, guarded: no finished run replaced, no resume state trusted.

- `refuse_previous_run(out, name, resume)`: a new run (no `--resume`) into a folder that already holds a
  run of the same name (its checkpoint, log or resume state) stops in one line instead of replacing it;
- `read_resume_state(path)`: a resume state (`<out>/resume/<name>.safetensors`) read like any untrusted
  file (a regular file within the checkpoint limit, every tensor's size checked against the file) with its
  JSON state checked field by field, so a hostile or damaged one is one line, never a traceback.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from torch import Tensor

from inside_core.checkpoints import CheckpointError, _parse_header
from inside_core.data.errors import DataError, printable
from inside_core.data.files import parse_json, read_bytes

__all__ = ["RunExistsError", "refuse_previous_run", "read_resume_state", "RESUME_FIELDS"]


class RunExistsError(ValueError):
    """`--out` already holds a run of this name; the message is one line saying how to go on."""


def refuse_previous_run(out: Path, name: str, resume: str | os.PathLike | None) -> None:
    """RunExistsError if `out` holds a run named `name` and this is not a `--resume` of it."""
    if resume:
        return
    found = [out / f"{name}.safetensors", out / "resume" / f"{name}.safetensors", out / f"{name}.csv"]
    found = [path for path in found if path.exists()]
    if not found:
        return
    state = out / "resume" / f"{name}.safetensors"
    go_on = f"continue it with --resume {printable(state)}, " if state.exists() else ""
    raise RunExistsError(f"{printable(out)}: holds a previous run of {name!r} ({printable(found[0].name)}); "
                         f"nothing was replaced: {go_on}choose another --out, or move it away")


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9


def _number(value: Any, infinite: bool = False) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
            and (infinite or math.isfinite(value)))


# every field a run saves in its resume state, and the test its value must pass
RESUME_FIELDS = {
    "epoch": _non_negative_int,
    "best_epoch": _non_negative_int,
    "epochs_without_improvement": _non_negative_int,
    "best_val_loss": lambda v: _number(v, infinite=True),  # +inf before the first epoch
    "elapsed_s": lambda v: _number(v) and v >= 0,
    "history": lambda v: isinstance(v, list) and all(isinstance(row, dict) for row in v),
    "stopped": lambda v: isinstance(v, str),
    "param_groups": lambda v: isinstance(v, list) and all(
        isinstance(g, dict) and isinstance(g.get("params"), list) and all(_non_negative_int(p) for p in g["params"])
        for g in v),
}
OPTIONAL_FIELDS = {"best_val_dice": _number}


def read_resume_state(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict]:
    """(tensors, state) of a resume file, every field checked; CheckpointError with one line otherwise."""
    from safetensors.torch import load as load_bytes

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: resume state not found")
    try:
        data = read_bytes(path, "checkpoint")
    except DataError as error:
        raise CheckpointError(f"{path}: resume state refused: {error.problem}") from None
    header = _parse_header(data, path)  # sizes against the file, before any tensor is made
    text = (header.get("__metadata__") or {}).get("state")
    if text is None:
        raise CheckpointError(f"{path}: not a resume state (no 'state' in its metadata)")
    try:
        state = parse_json(text, path, "resume state", finite=False)
    except DataError as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the resume state must be a JSON object")
    bad = [key for key, check in RESUME_FIELDS.items() if key not in state or not check(state[key])]
    bad += [key for key, check in OPTIONAL_FIELDS.items() if key in state and not check(state[key])]
    if bad:
        raise CheckpointError(f"{path}: the resume state has a missing or invalid {', '.join(bad)}")
    try:
        tensors = load_bytes(data)
    except Exception as error:  # safetensors raises its own types for a damaged file
        raise CheckpointError(f"{path}: not a readable resume state ({str(error).splitlines()[0]})") from None
    rng = tensors.get("rng.torch")
    if rng is None or rng.dtype.itemsize != 1 or rng.dim() != 1:
        raise CheckpointError(f"{path}: the resume state has no valid random generator state")
    for key in tensors:
        parts = key.split(".", 2)
        if key.startswith("optim.") and (len(parts) != 3 or not parts[1].isdigit()):
            raise CheckpointError(f"{path}: the resume state has a malformed optimizer entry {key[:60]!r}")
    return tensors, state
