"""Checkpoints: safetensors weights plus a JSON model card with the same stem.

    checkpoints/clevr-seg-quadrant-inside.safetensors   the weights (never pickled)
    checkpoints/clevr-seg-quadrant-inside.json          the card: architecture, data, seed, metrics, command

`load_checkpoint(path)` rebuilds the network from the card's "architecture" (= `model.config`, the
arguments of `build_model`) and loads the weights into it. The card records the SHA-256 of the weights
file, so a weights file that was replaced without its card (or the reverse) is caught rather than
silently loaded. Both files are written to a temporary file first and moved into place with
`os.replace`, so a crash mid-save leaves the previous checkpoint readable.

Every problem is a `CheckpointError` (a `ValueError`) whose one-line message names the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from inside_core.networks import build_model

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "list_checkpoints", "read_card",
           "write_card", "checkpoint_paths", "atomic_write_bytes", "atomic_write_text", "find_checkpoint",
           "default_checkpoints", "checkpoint_dir", "DEFAULT_CHECKPOINTS"]

CARD_REQUIRED_KEYS = ("name", "architecture")
# mkstemp creates files readable by the owner only; checkpoints are meant to be shared
_FILE_MODE = 0o644


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file and the problem."""


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, card) paths for a checkpoint given as a stem, a .safetensors or a .json path."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """Tuples become lists, paths strings, numpy/torch scalars numbers: what json.dumps accepts."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def write_card(path: str | os.PathLike, card: dict) -> None:
    """Rewrite the JSON card of an existing checkpoint (e.g. to add metrics), atomically."""
    _, card_path = checkpoint_paths(path)
    atomic_write_text(card_path, json.dumps(_jsonable(card), indent=2, sort_keys=False) + "\n")


def save_checkpoint(model: nn.Module, card: dict, path: str | os.PathLike) -> Path:
    """Write `path`.safetensors (the state dict) and `path`.json (the card) atomically.

    The card gets "architecture" from `model.config` and "weights_sha256" of the written file, unless
    given. Returns the path of the weights file.
    """
    weights_path, card_path = checkpoint_paths(path)
    if not hasattr(model, "config"):
        raise CheckpointError(f"{weights_path}: the model has no .config (build it with build_model)")
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    card = {"name": weights_path.stem, **card}
    card["architecture"] = _jsonable(card.get("architecture", model.config))
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=weights_path.parent, prefix=f".{weights_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"format": "pt", "name": str(card["name"])})
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        card["weights_sha256"] = _sha256(Path(tmp))
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, weights_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    write_card(card_path, card)
    return weights_path


def read_card(path: str | os.PathLike) -> dict:
    """The JSON card of a checkpoint, checked for the keys needed to rebuild the model."""
    weights_path, card_path = checkpoint_paths(path)
    if not card_path.exists():
        raise CheckpointError(f"{card_path}: model card missing (every .safetensors needs a .json beside it)")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{card_path}: not a valid JSON model card ({error})") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"{card_path}: the model card must be a JSON object")
    missing = [key for key in CARD_REQUIRED_KEYS if key not in card]
    if missing:
        raise CheckpointError(f"{card_path}: model card lacks {', '.join(missing)}")
    if not isinstance(card["architecture"], dict) or "name" not in card["architecture"]:
        raise CheckpointError(f"{card_path}: 'architecture' must be an object with the network's 'name'")
    return card


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model described by the card and load its weights; returns it in eval mode.

    The card is attached as `model.card`. Raises CheckpointError for a missing or truncated file,
    a card that does not describe the weights, or weights that do not fit the architecture.
    """
    weights_path, card_path = checkpoint_paths(path)
    if not weights_path.exists():
        raise CheckpointError(f"{weights_path}: checkpoint weights not found")
    card = read_card(weights_path)
    expected_sha = card.get("weights_sha256")
    if expected_sha and _sha256(weights_path) != expected_sha:
        raise CheckpointError(
            f"{weights_path}: weights do not match the SHA-256 in {card_path.name} "
            "(file truncated, corrupted or replaced without its card)"
        )
    try:
        state = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({message})") from None
    architecture = dict(card["architecture"])
    try:
        model = build_model(architecture.pop("name"), **architecture)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{card_path}: cannot build the architecture in the card ({error})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{weights_path}: weights do not fit the architecture in the card ({detail})")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{weights_path}: weights do not fit the architecture in the card ({key} has shape "
                f"{tuple(tensor.shape)}, the card's network needs {tuple(expected[key].shape)})"
            )
    model.load_state_dict(state)
    model.card = card
    return model.to(device).eval()


def list_checkpoints(directory: str | os.PathLike = "checkpoints") -> list[Path]:
    """The .safetensors files in `directory`, sorted by name (empty if the folder does not exist)."""
    directory = Path(directory)
    return sorted(directory.glob("*.safetensors")) if directory.is_dir() else []


# ------------------------------------------------------------------------------------- finding by name
# Which shipped checkpoints each use opens when none is named: groups of alternatives, the first group of
# which any checkpoint exists wins (its members that exist). The dashboard, the figures and the CLI ask this.
DEFAULT_CHECKPOINTS: dict[str, list[list[str]]] = {
    "clevr-seg": [["clevr-seg-quadrant-inside"]],  # the dashboard's first model per dataset
    "acdc": [["acdc-phantom-inside"]],
    "qualitative": [["clevr-seg-quadrant-baseline", "clevr-seg-quadrant-film", "clevr-seg-quadrant-guideme",
                     "clevr-seg-quadrant-inside"]],
    "table": [["clevr-seg-quadrant-baseline", "clevr-seg-quadrant-film", "clevr-seg-quadrant-guideme",
               "clevr-seg-quadrant-inside"]],
    "sweep": [["clevr-seg-point-inside"], ["clevr-seg-quadrant-inside"], ["acdc-phantom-inside"]],
    "attention": [["acdc-phantom-inside"], ["clevr-seg-point-inside"], ["clevr-seg-quadrant-inside"]],
}
CHECKPOINT_DIR_VARIABLE = "INSIDE_CHECKPOINT_DIR"  # another folder of checkpoints (tests, private models)


def checkpoint_dir() -> Path:
    """Where named checkpoints live: $INSIDE_CHECKPOINT_DIR, else the repository's checkpoints/."""
    return Path(os.environ.get(CHECKPOINT_DIR_VARIABLE) or Path(__file__).resolve().parents[1] / "checkpoints")


def find_checkpoint(name: str | os.PathLike, directory: str | os.PathLike | None = None) -> Path:
    """The weights file of a checkpoint given as a path (stem, .safetensors or .json) or as a name in
    `directory` (default `checkpoint_dir()`). The one lookup by name; CheckpointError if there is none."""
    directory = Path(directory) if directory is not None else checkpoint_dir()
    path = Path(name).expanduser()
    for candidate in (path, directory / path):
        weights, _ = checkpoint_paths(candidate)
        if weights.is_file():
            return weights
    raise CheckpointError(f"{path}: no such checkpoint (looked for {checkpoint_paths(path)[0]} and in {directory}/)")


def default_checkpoints(use: str, directory: str | os.PathLike | None = None) -> list[Path]:
    """The checkpoints `use` ("clevr-seg", "acdc", or a figure kind) opens when none is named."""
    if use not in DEFAULT_CHECKPOINTS:
        raise ValueError(f"no default checkpoints for {use!r}; known: {', '.join(DEFAULT_CHECKPOINTS)}")
    for group in DEFAULT_CHECKPOINTS[use]:
        found = []
        for name in group:
            try:
                found.append(find_checkpoint(name, directory))
            except CheckpointError:
                continue
        if found:
            return found
    wanted = ", ".join(sum(DEFAULT_CHECKPOINTS[use], []))
    raise CheckpointError(f"{directory or checkpoint_dir()}: none of the default checkpoints ({wanted}) is there; "
                          "name one")
