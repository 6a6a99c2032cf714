"""Checkpoints: one safetensors file holding the weights *and* the model card, plus a readable JSON copy.

    checkpoints/clevr-seg-quadrant-inside.safetensors   the weights (never pickled); the card, as JSON, in
                                                        the header's metadata under "inside_card"
    checkpoints/clevr-seg-quadrant-inside.json          a readable copy of the card, plus "weights_sha256"
                                                        (SHA-256 of the .safetensors file it was written with)

A checkpoint is one atomic unit: weights and card live in one file, written to a temporary file and
moved into place with one `os.replace`, so a reader never sees the weights of one save with the card
of another. The JSON copy is written afterwards; a reader compares it with the embedded card and, if
they differ (a kill between the two writes), uses the embedded one and warns. Old checkpoints, whose
card is only in the JSON (with the weights' SHA-256), still load, with the SHA check; `write_card`
(e.g. `inside evaluate --update-card`) upgrades them, the tensors bit-identical.

`load_checkpoint(path)` rebuilds the network from the card's "architecture" (= `model.config`, the
arguments of `build_model`) and loads the weights into it. Files are untrusted: the file size, the
header and the tensor sizes it announces are checked before the weights are read, the card against
its schema (`inside_core.cards`), and the network's size is counted without allocating it before it is
built (limits: `inside_core.limits`).

Every problem is a `CheckpointError` (a `ValueError`) whose one-line message names the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from torch import nn

from inside_core.atomic import WriteError, atomic_write_bytes, atomic_write_text
from inside_core.cards import activation_bytes, card_problems, parameter_count
from inside_core.data.errors import DataError, printable
from inside_core.data.files import open_regular, read_bytes
from inside_core.data.registry import DATASETS
from inside_core.limits import limit, over_limit
from inside_core.networks import build_model

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "list_checkpoints", "read_card",
           "write_card", "checkpoint_paths", "atomic_write_bytes", "atomic_write_text", "WriteError",
           "CARD_METADATA_KEY", "find_checkpoint", "default_checkpoints", "checkpoint_dir", "DEFAULT_CHECKPOINTS"]

CARD_REQUIRED_KEYS = ("name", "architecture")
CARD_METADATA_KEY = "inside_card"  # the card's JSON in the safetensors header's __metadata__
_COPY_GRACE_S = 10.0  # a JSON copy this much younger than its weights may be being written right now
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file and the problem."""

    def __init__(self, message: object):
        super().__init__(" ".join(printable(message).split()))


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, card) paths for a checkpoint given as a stem, a .safetensors or a .json path."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


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


# ------------------------------------------------------------------------------------- reading, bounded
def _read_weights(weights_path: Path) -> bytes:
    """The whole weights file, read once (so its header, card and tensors are of the same version)."""
    if not weights_path.exists():
        raise CheckpointError(f"{weights_path}: checkpoint weights not found")
    try:  # a regular file, read no further than the limit (fstat's size is not trusted: /dev/zero says 0)
        return read_bytes(weights_path, "checkpoint")
    except DataError as error:
        raise CheckpointError(f"{weights_path}: checkpoint file refused: {error.problem}") from None


def _parse_header(data: bytes, weights_path: Path) -> dict:
    """The safetensors header (8-byte length, then JSON), with every tensor's size checked against the file."""
    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"{weights_path}: not a readable safetensors file ({problem})")

    if len(data) < 8:
        raise bad(f"{len(data)} bytes, shorter than the header length field")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise bad(f"the header claims {length:,} bytes, the file has {len(data) - 8:,} after the length field")
    try:
        header = json.loads(data[8:8 + length])
    except (ValueError, RecursionError) as error:
        raise bad(f"header is not JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    total = 0
    for key, entry in header.items():
        if key == "__metadata__":
            if not (isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())):
                raise bad("__metadata__ must map names to text")
            continue
        if not isinstance(entry, dict):
            raise bad(f"tensor {key!r} has no description")
        shape, offsets, dtype = entry.get("shape"), entry.get("data_offsets"), entry.get("dtype")
        if dtype not in _DTYPE_BYTES or not isinstance(shape, list) or not all(
                isinstance(s, int) and s >= 0 for s in shape):
            raise bad(f"tensor {key!r} has dtype {dtype!r} and shape {shape!r}")
        size = math.prod(shape) * _DTYPE_BYTES[dtype]
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and offsets[1] - offsets[0] == size and 0 <= offsets[0] and offsets[1] <= len(data) - 8 - length):
            raise bad(f"tensor {key!r} of {size:,} bytes does not fit the file: truncated or corrupt")
        total += size
    problem = over_limit("checkpoint_bytes", total)
    if problem:
        raise CheckpointError(f"{weights_path}: tensors too large: {problem}")
    return header


def _read_header(weights_path: Path) -> dict:
    """The header alone (for read_card): its length is bounded before it is read; tensors are not read."""
    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"{weights_path}: not a readable safetensors file ({problem})")

    try:
        with open_regular(weights_path, "checkpoint") as handle:
            start = handle.read(8)
            if len(start) < 8:
                raise bad(f"{len(start)} bytes, shorter than the header length field")
            (length,) = struct.unpack("<Q", start)
            bound = int(limit("card_bytes")) + (1 << 20)  # the card and a tensor table
            if length > bound:
                raise CheckpointError(f"{weights_path}: safetensors header of {length:,} bytes exceeds the limit "
                                      f"of {bound:,} (INSIDE_LIMIT_CARD_BYTES + 1 MiB)")
            text = handle.read(length)
    except DataError as error:
        raise CheckpointError(f"{weights_path}: checkpoint file refused: {error.problem}") from None
    except FileNotFoundError:
        raise CheckpointError(f"{weights_path}: checkpoint weights not found") from None
    except OSError as error:
        raise CheckpointError(f"{weights_path}: cannot read the checkpoint ({error.strerror or error})") from None
    if len(text) < length:
        raise bad(f"truncated: the header claims {length:,} bytes, the file has {len(text):,}")
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise bad(f"header is not JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    return header


def _parse_card(text: str | bytes, where: str) -> dict:
    """A card's JSON text, checked against the schema; `where` names its file in every error."""
    if len(text) > limit("card_bytes"):
        raise CheckpointError(f"{where}: model card of {len(text):,} bytes exceeds the limit of "
                              f"{int(limit('card_bytes')):,} (INSIDE_LIMIT_CARD_BYTES)")
    try:
        card = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise CheckpointError(f"{where}: not a valid JSON model card ({str(error).splitlines()[0]})") from None
    problems = card_problems(card)
    if problems:
        more = f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""
        raise CheckpointError(f"{where}: invalid model card: {'; '.join(problems[:4])}{more}")
    return card


def _embedded_card(header: dict, weights_path: Path) -> dict | None:
    text = (header.get("__metadata__") or {}).get(CARD_METADATA_KEY)
    return None if text is None else _parse_card(text, f"{weights_path} (its embedded card)")


def _json_copy(card_path: Path) -> dict | None:
    """The JSON card beside the weights, or None if missing or unreadable (it is only a copy)."""
    try:
        copy = json.loads(read_bytes(card_path, "card"))
    except (OSError, ValueError, RecursionError):  # DataError is a ValueError
        return None
    return copy if isinstance(copy, dict) else None


def _check_copy(card: dict, card_path: Path, weights_path: Path) -> None:
    """Warn when the JSON copy is not the embedded card (a kill between the two writes of a save)."""
    copy = _json_copy(card_path)
    if copy is None and not card_path.exists():
        return
    if copy is None or {k: v for k, v in copy.items() if k != "weights_sha256"} != card:
        try:  # a save in progress writes the copy right after the weights: not worth a warning
            if time.time() - weights_path.stat().st_mtime < _COPY_GRACE_S:
                return
        except OSError:
            return
        warnings.warn(f"{printable(card_path)}: differs from the card inside {printable(weights_path.name)} "
                      "(a save was interrupted?); using the embedded card", stacklevel=3)


def _json_card(card_path: Path) -> dict:
    """An old-format checkpoint's card: the JSON file, size-limited and checked against the schema."""
    if not card_path.exists():
        raise CheckpointError(f"{card_path}: model card missing (every .safetensors needs a .json beside it)")
    try:
        size = card_path.stat().st_size
        if size > limit("card_bytes"):
            raise CheckpointError(f"{card_path}: model card of {size:,} bytes exceeds the limit of "
                                  f"{int(limit('card_bytes')):,} (INSIDE_LIMIT_CARD_BYTES)")
        text = read_bytes(card_path, "card")
    except DataError as error:
        raise CheckpointError(f"{card_path}: model card refused: {error.problem}") from None
    except OSError as error:
        raise CheckpointError(f"{card_path}: cannot read the model card ({error.strerror or error})") from None
    return _parse_card(text, str(card_path))


def read_card(path: str | os.PathLike) -> dict:
    """The model card of a checkpoint, checked against the schema: the one embedded in the weights file if
    it has one (the JSON copy is only compared with it), else the JSON file (old checkpoints)."""
    weights_path, card_path = checkpoint_paths(path)
    if weights_path.exists():
        card = _embedded_card(_read_header(weights_path), weights_path)
        if card is not None:
            _check_copy(card, card_path, weights_path)
            return card
    return _json_card(card_path)


# ------------------------------------------------------------------------------------------------ writing
def _serialise(state: dict[str, torch.Tensor], card: dict, extra_metadata: dict | None = None) -> bytes:
    metadata = {**(extra_metadata or {}), "format": "pt", "name": str(card["name"]),
                CARD_METADATA_KEY: json.dumps(card, sort_keys=False)}
    return save_bytes(state, metadata=metadata)


def _write_pair(weights_path: Path, card_path: Path, data: bytes, card: dict) -> None:
    """The weights file (the atomic unit, card inside) first, then its readable JSON copy."""
    atomic_write_bytes(weights_path, data)
    copy = {**card, "weights_sha256": hashlib.sha256(data).hexdigest()}
    atomic_write_text(card_path, json.dumps(copy, indent=2, sort_keys=False) + "\n")


def _clean_card(card: dict) -> dict:
    return {k: v for k, v in _jsonable(card).items() if k != "weights_sha256"}


def write_card(path: str | os.PathLike, card: dict) -> None:
    """Replace the card of an existing checkpoint (e.g. to add metrics), atomically.

    The card is embedded in the weights file (rewritten with the same tensors, bit for bit), then its JSON
    copy is written. An old checkpoint is checked against its SHA-256 first, and upgraded. Without a
    weights file only the JSON is written.
    """
    weights_path, card_path = checkpoint_paths(path)
    card = _clean_card(card)
    problems = card_problems(card)
    if problems:  # never write a card that no reader would accept
        raise CheckpointError(f"{card_path}: invalid model card: {'; '.join(problems[:4])}")
    if not weights_path.exists():
        atomic_write_text(card_path, json.dumps(card, indent=2, sort_keys=False) + "\n")
        return
    data = _read_weights(weights_path)
    header = _parse_header(data, weights_path)
    metadata = dict(header.get("__metadata__") or {})
    if CARD_METADATA_KEY not in metadata:  # old format: never bless weights that are not the card's
        expected = (_json_copy(card_path) or {}).get("weights_sha256")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise CheckpointError(f"{weights_path}: weights do not match the SHA-256 in {card_path.name}; "
                                  "not rewriting its card")
    state = _load_tensors(data, weights_path)
    card.setdefault("name", metadata.get("name", weights_path.stem))
    _write_pair(weights_path, card_path, _serialise(state, card, metadata), card)


def save_checkpoint(model: nn.Module, card: dict, path: str | os.PathLike) -> Path:
    """Write `path`.safetensors (the state dict, with the card embedded) and `path`.json (its copy).

    The card gets "architecture" from `model.config` unless given; the JSON copy gets "weights_sha256"
    of the written file. Returns the path of the weights file.
    """
    weights_path, card_path = checkpoint_paths(path)
    if not hasattr(model, "config"):
        raise CheckpointError(f"{weights_path}: the model has no .config (build it with build_model)")
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    # a module registered under two names (MONAI's DynUNet) gives tensors sharing memory, which safetensors
    # refuses: each name gets its own copy (loading sets the shared tensor from either)
    seen: set[int] = set()
    state = {k: v.clone() if v.data_ptr() in seen else seen.add(v.data_ptr()) or v for k, v in state.items()}
    card = _clean_card({"name": weights_path.stem, **card})
    card["architecture"] = _jsonable(card.get("architecture", model.config))
    problems = card_problems(card)
    if problems:  # refuse now (a training's first save) rather than write a checkpoint no reader accepts
        raise CheckpointError(f"{weights_path}: invalid model card: {'; '.join(problems[:4])}")
    _write_pair(weights_path, card_path, _serialise(state, card), card)
    return weights_path


# ------------------------------------------------------------------------------------------------ loading
def _load_tensors(data: bytes, weights_path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_bytes(data)
    except (SafetensorError, OSError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({message})") from None


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model described by the card and load its weights; returns it in eval mode.

    The card is attached as `model.card`. Raises CheckpointError for a missing, truncated or oversized
    file, a card that fails its schema or does not describe the weights, a network over the size limit,
    or weights that do not fit the architecture.
    """
    weights_path, card_path = checkpoint_paths(path)
    data = _read_weights(weights_path)
    header = _parse_header(data, weights_path)
    card = _embedded_card(header, weights_path)
    card_file = f"{weights_path} (its embedded card)"
    if card is not None:
        _check_copy(card, card_path, weights_path)
    else:  # an old checkpoint: the JSON card, which must name these very bytes
        card = _json_card(card_path)
        card_file = str(card_path)
        expected_sha = card.get("weights_sha256")
        if expected_sha and hashlib.sha256(data).hexdigest() != expected_sha:
            raise CheckpointError(
                f"{weights_path}: weights do not match the SHA-256 in {card_path.name} "
                "(file truncated, corrupted or replaced without its card)"
            )
    architecture = dict(card["architecture"])
    try:
        problem = over_limit("model_parameters", parameter_count(architecture))
        if problem:
            raise CheckpointError(f"{card_file}: the card's network is too large: {problem}")
        problem = over_limit("model_activation_bytes", activation_bytes(architecture))
        if problem:
            raise CheckpointError(f"{card_file}: the card's network needs too much memory per image at its "
                                  f"image size: {problem}")
    except (TypeError, ValueError, RuntimeError, NotImplementedError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{card_file}: cannot build the architecture in the card ({error})") from None
    state = _load_tensors(data, weights_path)
    del data
    try:
        model = build_model(architecture.pop("name"), **architecture)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{card_file}: cannot build the architecture in the card ({error})") from None
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
# A dataset kind's is the dashboard's first model for it (inside_core.data.registry: `model`).
DEFAULT_CHECKPOINTS: dict[str, list[list[str]]] = {
    **{name: [[kind.model]] for name, kind in DATASETS.items()},
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
