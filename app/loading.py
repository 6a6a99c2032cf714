"""Loading, cached: checkpoints, data sources and per-session Explorers.

- Models: `st.cache_resource`, one read-only object per checkpoint file shared by all sessions (eval
  mode, no gradients; the Explorer runs it under `torch.inference_mode`, which changes no state).
- Data sources: `st.cache_resource` too (read-only after construction).
- Per-sample arrays (a scene's masks, a slice's cine frames): shared, bounded by count and bytes
  (`inside_core.cache.BoundedCache`, `shared_cache_bytes`).
- Explorers (the current image's encoder output): in the session's `Session` (app/page_state.py), a few kept
  so moving back to a recent image, frame or slice costs a decode only; bounded by `session_bytes` with
  the pictures made from them, and let go when the browser disconnects.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from app import bundled_data
from app.page_state import session
from app.text import plain
from inside_core.cache import BoundedCache, nbytes, watch_freed_memory
from inside_core.checkpoints import (
    CheckpointError,
    checkpoint_dir,
    default_checkpoints,
    list_checkpoints,
    load_checkpoint,
    read_card,
)
from inside_core.data.registry import DATASETS, card_dataset, dataset_kind
from inside_core.explorer import Explorer
from inside_core.limits import limit
from inside_core.networks import build_model

__all__ = ["DATASETS", "ModelEntry", "plain"]  # DATASETS: the registry's kinds (inside_core.data.registry), by name
UNTRAINED_PREFIX = "untrained-"


@dataclass(frozen=True)
class ModelEntry:
    """A model the page can offer: its name, where it comes from, and its card."""

    name: str
    path: str  # a .safetensors path, or "" for an untrained demo model
    card: dict

    @property
    def trained(self) -> bool:
        return bool(self.path)


# --------------------------------------------------------------------------------------------- models


@st.cache_data(show_spinner=False)
def _cards(directory: str, stamp: tuple) -> list[tuple[str, str, dict]]:
    entries = []
    for path in list_checkpoints(directory):
        try:
            card = read_card(path)
        except CheckpointError:
            continue  # listed as unusable by `model_problems`
        entries.append((card.get("name", path.stem), str(path), card))
    return entries


def _stamp(directory: Path) -> tuple:
    """Changes whenever a checkpoint is added, removed or rewritten (so the list refreshes)."""
    if not directory.is_dir():
        return ()
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in directory.glob("*.*")))


def default_model(dataset: str, names: list[str]) -> str:
    """The model the page opens on: the shipped default for the dataset (inside_core.checkpoints'
    table), else the first INSIDE model offered, else the first."""
    try:
        wanted = [path.stem for path in default_checkpoints(dataset, checkpoint_dir())]
    except CheckpointError:
        wanted = []
    return next((n for n in wanted if n in names), None) or next((n for n in names if "inside" in n), names[0])


def discover_models(dataset: str, directory: Path | None = None) -> list[ModelEntry]:
    """Checkpoints under `directory` (default `checkpoint_dir()`) whose card says they were trained on `dataset`."""
    directory = checkpoint_dir() if directory is None else directory
    return [ModelEntry(name, path, card) for name, path, card in _cards(str(directory), _stamp(directory))
            if card_dataset(card) == dataset]


def untrained_models(dataset: str) -> list[ModelEntry]:
    """Demo models with random weights, offered only when no checkpoint exists for a dataset (none for a
    kind whose z only a model defines: a user's own variables)."""
    demo = dataset_kind(dataset).untrained
    if demo is None:
        return []
    entries = []
    for conditioning in ("inside", "film"):
        name = f"{UNTRAINED_PREFIX}{dataset}-{conditioning}"
        architecture = {**demo["architecture"], "conditioning": conditioning}
        entries.append(ModelEntry(name, "", {"name": name, "architecture": architecture, "conditioning": conditioning,
                                             "dataset": dataset, **demo["card"]}))
    return entries


def inference_threads() -> int:
    """Torch threads for the dashboard's inference: 1 unless $INSIDE_DASHBOARD_THREADS says otherwise.

    One slider move runs one small decode; several sessions may run at once, and other programs may
    share the cores. Measured on 2 busy cores, one thread decoded the CLEVR-Seg network at 200x200 in a
    median 35-88 ms against 195-480 ms with two (threads spinning against each other and the load).
    """
    return max(int(os.environ.get("INSIDE_DASHBOARD_THREADS", "1")), 1)


@st.cache_resource(show_spinner=False)
def freeze_startup_objects() -> int:
    """`gc.freeze()`, once per server process; returns how many objects it froze.

    Streamlit runs a full `gc.collect()` after every script run (runner.postScriptGC), holding the GIL, so
    no delta reaches the browser meanwhile. With torch and plotly imported that scan cost ~150 ms of every
    slider move (benchmarks/bench_dashboard.py). Called at the end of the first page run, so the frozen
    objects are the imported modules and the first model and data; later collections skip them, and
    what the page creates afterwards is still collected.
    """
    gc.freeze()
    return gc.get_freeze_count()


@st.cache_resource(show_spinner=False)
def configure_torch() -> int:
    """The process's setup, once: torch's threads, and a thread that hands freed memory back to the system
    (inside_core.cache.watch_freed_memory: with many sessions at once, malloc otherwise keeps their peak)."""
    threads = inference_threads()
    torch.set_num_threads(threads)
    watch_freed_memory()
    return threads


@st.cache_resource(show_spinner="Loading the model…", max_entries=16)
def _load_checkpoint(path: str, stamp: int) -> torch.nn.Module:
    model = load_checkpoint(path)
    model.requires_grad_(False)
    return model.eval()


@st.cache_resource(show_spinner=False, max_entries=8)
def _build_untrained(name: str, architecture_items: tuple) -> torch.nn.Module:
    architecture = dict(architecture_items)
    architecture["image_size"] = tuple(architecture["image_size"])
    torch.manual_seed(0)
    model = build_model(architecture.pop("name"), **architecture)
    model.requires_grad_(False)
    return model.eval()


def load_model(entry: ModelEntry) -> torch.nn.Module:
    """The (shared, read-only) model of an entry; raises CheckpointError with one line."""
    configure_torch()
    if not entry.trained:
        return _build_untrained(entry.name, tuple(sorted(entry.card["architecture"].items())))
    path = Path(entry.path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint weights not found")
    return _load_checkpoint(str(path), path.stat().st_mtime_ns)


def entry_from_path(text: str) -> ModelEntry:
    """A model given as a path (stem, .safetensors or .json); raises CheckpointError with one line."""
    path = Path(text.strip()).expanduser()
    weights = path if path.suffix == ".safetensors" else path.with_suffix(".safetensors") \
        if path.suffix == ".json" else path.with_name(path.name + ".safetensors")
    if not weights.exists():
        raise CheckpointError(f"{weights}: checkpoint weights not found")
    card = read_card(weights)
    return ModelEntry(card.get("name", weights.stem), str(weights), card)


def describe(entry: ModelEntry) -> str:
    """One line about a model, from its card, as PLAIN text: show it with st.text, or through `plain()`
    in an element that renders Markdown (st.caption, st.error ...)."""
    card = entry.card
    bits = [str(card.get("conditioning") or "?"), str(card.get("condition") or "?")]
    size = card.get("image_size")
    if isinstance(size, (list, tuple)):
        bits.append("×".join(str(s) for s in size))
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    dice = metrics.get("test_dice", metrics.get("dice"))
    if isinstance(dice, (int, float)) and not isinstance(dice, bool):
        bits.append(f"test Dice {dice:.3f}")
    return ", ".join(bits)


# ----------------------------------------------------------------------------------------------- data


def default_data_dir(kind: str) -> Path:
    """The bundled synthetic dataset of a kind (generated, seeded, on first use by inside_core.data): on the
    server's first page, the process app/bundled_data.py started for it is waited for first."""
    bundled_data.wait(kind, next(iter(DATASETS)), meanwhile=_imports_for_first_component)
    return dataset_kind(kind).default_data()


def _imports_for_first_component() -> None:
    """Streamlit's first custom component (the streaming controls) checks its data with
    `dataframe_util`, which imports pandas: 0.36-0.42 s of the first page (benchmarks/first_page.py), done
    here while the page would only wait for the bundled data."""
    import pandas  # noqa: F401


@st.cache_resource(show_spinner="Loading the data…", max_entries=8)
def load_source(kind: str, root: str, split: str, image_size: int = 128, spacing: float = 1.37,
                variables: tuple[str, ...] | None = None):
    """A dataset folder as a page source (the kind's `page_source`: app/sources.py, app/table_source.py);
    DataError / SourceError on bad input. `variables`: for a user's folder, the model's subset of them."""
    return dataset_kind(kind).source_class().from_folder(root, split=split, image_size=image_size, spacing=spacing,
                                                         variables=variables)


def validation_findings(root: str, kind: str, limit: int = 20) -> list[str]:
    """`inside data validate`'s findings for a folder, one line each (at most `limit`, then a count)."""
    try:
        report = dataset_kind(kind).validate(root)
    except Exception as error:  # the validator failing is one more finding, never a traceback
        return [f"{root}: validation failed ({type(error).__name__}: {error})"]
    lines = [problem.line() for problem in report.problems]
    if len(lines) > limit:
        lines = lines[:limit] + [f"… and {len(lines) - limit} more (run `inside data validate {root}`)"]
    return lines


# shared between sessions and only ever read (no copy per call, which matters on every slider move); bounded
# by bytes as well as by count: every visitor's samples and slices land here (issue 23)
_SCENES = BoundedCache("shared_cache_bytes", max_entries=64)
_CINES = BoundedCache("shared_cache_bytes", max_entries=64)


def clevr_objects(_source, source_id: str, index: int) -> tuple[list[dict], np.ndarray]:
    """The scene's objects and masks of one CLEVR-Seg sample (read-only, shared between sessions)."""

    def make() -> tuple[list[dict], np.ndarray]:
        objects, masks = _source.objects(index)
        masks.setflags(write=False)
        return objects, masks

    return _SCENES.get((source_id, index), make)


def acdc_cine(_source, source_id: str, index: int, slice_index: int) -> list[dict]:
    """Every cine frame of one slice (read-only, shared between sessions)."""
    return _CINES.get((source_id, index, slice_index), lambda: _source.cine(index, slice_index))


# ------------------------------------------------------------------------------------------ heavy work
_TURNS: list[threading.BoundedSemaphore] = []  # made on first use: the limit as the process found it
_TURNS_LOCK = threading.Lock()


def taking_turns(make: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`make`, run by at most `scrub_parts_at_once` sessions at a time (server-wide); the others wait.

    Why: a part of the pictures to scrub holds ~80-120 MB while it is made, and every visitor's page asks
    for its parts as soon as it is idle: 20 sessions opened together held ~2 GB at once (issue 23). The
    cores bound how fast parts come anyway, so waiting costs no throughput; a slider move is not heavy
    work and never waits here."""
    with _TURNS_LOCK:
        if not _TURNS:
            _TURNS.append(threading.BoundedSemaphore(max(1, int(limit("scrub_parts_at_once")))))

    def run(*args: Any) -> Any:
        with _TURNS[0]:
            return make(*args)

    return run


# ------------------------------------------------------------------------------------------ explorers


def explorer_for(entry: ModelEntry, model: torch.nn.Module, view_key: tuple, image: torch.Tensor) -> Explorer:
    """This session's Explorer for (model, image): encodes on first use, then reused (it holds no mask:
    the page gives the ground truth per call, since on CLEVR-Seg it follows the controls)."""
    state = session()
    # issue 23: bounded by count and by the bytes they hold with what the page made from them (pictures:
    # `made_from`, let go with their Explorer), INSIDE_LIMIT_SESSION_BYTES; the newest stays
    return state.remember("explorers", (entry.name, entry.path, view_key), lambda: Explorer(model, image),
                          size=lambda explorer: explorer.nbytes + nbytes(state.derived.get(explorer)),
                          max_bytes=limit("session_bytes"))


def responsive_channels(explorer: Explorer, condition, layer: int = 0, keep: bool = False) -> list[int]:
    """The INSIDE channels of `layer` that respond most to z (inside_core.attention), ranked once per
    Explorer (one batch of decodes over each control's range) and kept with it. `keep`: the channels
    last ranked for this model (while a control is dragged: the channels drawn do not change under the
    pointer, and a new cine frame or slice costs no ranking; on release they are ranked for the image)."""
    from inside_core.attention import responsive_channels as rank

    last = session().caches.setdefault("responsive_last", OrderedDict())
    if keep and (id(explorer.model), layer) in last:
        return last[(id(explorer.model), layer)]
    ranked = session().made_from(explorer).setdefault("responsive", {})
    if layer not in ranked:
        ranked[layer] = rank(explorer, condition, layer=layer)
    last[(id(explorer.model), layer)] = ranked[layer]
    return ranked[layer]


def display_base(explorer: Explorer, image: Any = None, pixels: int = 400) -> np.ndarray:
    """The picture a mask is drawn over: `image` (the view's, at its own resolution) or else the model's
    input, resampled smoothly so that its longer side is `pixels`; made once per Explorer (kept with it).
    The model's input is used when `image` has another aspect ratio (it was padded to reach the model).
    Asked without `image` (the attention's background), the picture already made is given; one made from
    the model's input is made again once the view's image is given."""
    made = session().made_from(explorer)
    found = made.get("display_base")
    if found is None or (image is not None and not found[1]):
        found = made["display_base"] = (display_picture(explorer, image, pixels), image is not None)
    return found[0]


def display_picture(explorer: Explorer, image: Any = None, pixels: int = 400) -> np.ndarray:
    """`display_base` without the cache (app/scrub.py makes one per image of its lattice)."""
    from app.plots import display_size, upscaled_rgb

    source = explorer.image
    if image is not None:
        h, w = image.shape[-2:] if getattr(image, "ndim", 0) == 3 and image.shape[0] in (1, 3, 4) else \
            image.shape[:2]
        if abs(h / w - explorer.image_size[0] / explorer.image_size[1]) < 1e-3:
            source = image
    return upscaled_rgb(source, display_size(*explorer.image_size, pixels))


def background(explorer: Explorer, pixels: int = 256) -> tuple[str, tuple[int, int]]:
    """The attention figure's background: the display picture (`display_base`) at `pixels` as a JPEG data
    URI (small: it travels with every figure update) and its (h, w); encoded once per display picture."""
    from app.plots import display_size, jpeg_data_uri, upscaled_rgb

    base = display_base(explorer)
    made = session().made_from(explorer)
    found = made.get("background")
    if found is None or found[2] is not base:
        rgb = upscaled_rgb(base, display_size(*explorer.image_size, pixels))
        found = made["background"] = (jpeg_data_uri(rgb), rgb.shape[:2], base)
    return found[0], found[1]
