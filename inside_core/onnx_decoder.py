"""The part of a model that runs per control move, as ONNX: `Explorer.update`'s decode (kept encoder
features + z -> logits) and the conditioning parameters the overlay draws (INSIDE: mu, sigma, gamma, beta).

    from inside_core.onnx_decoder import export_decoder, feature_inputs
    spec = export_decoder(explorer, "decoder.onnx")     # traces model.decode at this image's feature shapes
    feeds = feature_inputs(explorer, z)                 # {input name: float32 array}, what a runtime is fed

Evaluated for issue 21 (docs/dashboard.md, "Evaluated and left": where the decode runs) with ONNX Runtime
in Python and in the browser (benchmarks/browser_decoder.py). The graph is traced by `torch.onnx.export`
(torch.export, then onnxscript) from `model.decode` itself, so there is no second copy of the decoder to keep in
step; the shapes are fixed (batch 1, this image size). `onnx` and `onnxscript` are imported lazily (a missing one
raises one line saying what to install; requirements.txt pins them).

The dashboard decodes in the browser while a control is held (docs/dashboard.md): `EXPORTS.get(key, explorer)`
exports each model once, in a background thread (~2-3 s: the first page does not wait; meanwhile the page keeps
its pictures made ahead), and keeps the bytes in memory; `half_features(explorer)` are the image's kept features
as float16, what the browser is sent once per image.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from inside_core.explorer import Explorer
from inside_core.layers import FiLMParams, GuidingParams, InsideParams
from inside_core.networks import Features

__all__ = ["DecoderSpec", "DecoderGraph", "export_decoder", "feature_inputs", "require_onnx", "decoder_bytes",
           "half_features", "BackgroundExports", "EXPORTS"]

# the parameter fields each conditioning kind hands out, in output order (Explorer.channel_table's names)
_FIELDS = {InsideParams: ("mu_x", "mu_y", "sigma_x", "sigma_y", "gamma", "beta"), FiLMParams: ("gamma", "beta"),
           GuidingParams: ("gamma_scale", "gamma_shift")}


def require_onnx() -> None:
    """ImportError in one line unless the exporter's packages are installed."""
    for module in ("onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError as error:
            raise ImportError(f"exporting the decoder needs {module}: pip install onnx==1.23.2 onnxscript==0.7.2"
                              ) from error


@dataclass(frozen=True)
class DecoderSpec:
    """What an exported decoder reads and writes: input names ("features", "skip0".., "z") with their shapes,
    and output names ("logits", then "<field><layer>", e.g. "mu_x0")."""

    inputs: dict[str, tuple[int, ...]]
    outputs: tuple[str, ...]


class DecoderGraph(nn.Module):
    """`model.decode` as a module of plain tensors: (features, *skips, z) -> (logits, *parameters)."""

    def __init__(self, model: nn.Module, skips: int, conditioned: bool):
        super().__init__()
        self.model, self.skips, self.conditioned = model, skips, conditioned

    def forward(self, features: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        skips = list(rest[:self.skips])
        z = rest[self.skips] if self.conditioned else None
        out = self.model.decode(Features(features, skips), z)
        return (out.logits, *(getattr(p, name) for p in out.conditioning for name in _FIELDS[type(p)]))


def _spec(explorer: Explorer) -> DecoderSpec:
    features = explorer.features
    inputs = {"features": tuple(features.tensor.shape)}
    inputs.update({f"skip{i}": tuple(s.shape) for i, s in enumerate(features.skips)})
    if explorer.conditioned:
        inputs["z"] = (1, explorer.cond_dim)
    probe = explorer.update(np.zeros(explorer.cond_dim, np.float32)) if explorer.conditioned else explorer.update()
    outputs = ["logits"] + [f"{name}{i}" for i, p in enumerate(probe.conditioning) for name in _FIELDS[type(p)]]
    return DecoderSpec(inputs, tuple(outputs))


def feature_inputs(explorer: Explorer, z: Any = None) -> dict[str, np.ndarray]:
    """The exported decoder's inputs for this explorer's image and `z` (D,), as float32 arrays."""
    features = explorer.features
    feeds = {"features": features.tensor.float().numpy()}
    feeds.update({f"skip{i}": s.float().numpy() for i, s in enumerate(features.skips)})
    if explorer.conditioned:
        feeds["z"] = np.asarray(z, dtype=np.float32).reshape(1, explorer.cond_dim)
    return feeds


def export_decoder(explorer: Explorer, path: str | Path, opset: int = 18) -> DecoderSpec:
    """Write `explorer.model`'s decode at this image's feature shapes to `path` (ONNX, weights inside)."""
    require_onnx()
    spec = _spec(explorer)
    model = explorer.model.eval()
    graph = DecoderGraph(model, len(explorer.features.skips), explorer.conditioned).eval()
    # inference-mode tensors (the Explorer's cache) cannot enter torch.export's trace: plain copies
    example = tuple(torch.from_numpy(a.copy()) for a in feature_inputs(
        explorer, np.zeros(explorer.cond_dim, np.float32)).values())
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
        torch.onnx.export(graph, example, str(path), dynamo=True, opset_version=opset, external_data=False,
                          input_names=list(spec.inputs), output_names=list(spec.outputs))
    return spec


def decoder_bytes(explorer: Explorer) -> tuple[bytes, DecoderSpec]:
    """The exported decoder as bytes (`export_decoder` into a temporary file), and its spec."""
    with tempfile.TemporaryDirectory(prefix="inside-onnx-") as folder:
        path = Path(folder) / "decoder.onnx"
        spec = export_decoder(explorer, path)
        return path.read_bytes(), spec


def half_features(explorer: Explorer) -> dict[str, tuple[tuple[int, ...], bytes]]:
    """The decoder's inputs but z for this image, as float16 bytes (little-endian) with their shapes: half the
    bytes of float32, and the same masks (docs/dashboard.md; tests/test_browser_decode.py)."""
    return {name: (tuple(array.shape), array.astype("<f2").tobytes())
            for name, array in feature_inputs(explorer, np.zeros(explorer.cond_dim, np.float32)).items()
            if name != "z"}


class BackgroundExports:
    """Each model's exported decoder, made once in a background thread and kept in memory, by a key naming the
    model (its checkpoint path). `get(key, explorer)`: (bytes, spec) once made; None while it is being made
    (the first call starts it) or if it failed (`failed(key)` says why, in one line)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[str, tuple[bytes, DecoderSpec]] = {}
        self._failed: dict[str, str] = {}
        self._running: dict[str, threading.Thread] = {}

    def get(self, key: str, explorer: Explorer) -> tuple[bytes, DecoderSpec] | None:
        with self._lock:
            if key in self._made or key in self._failed:
                return self._made.get(key)
            if key not in self._running:
                thread = threading.Thread(target=self._export, args=(key, explorer), daemon=True,
                                          name=f"onnx-export {key}")
                self._running[key] = thread
                thread.start()
        return None

    def failed(self, key: str) -> str | None:
        return self._failed.get(key)

    def wait(self, key: str, timeout: float | None = None) -> tuple[bytes, DecoderSpec] | None:
        """Wait for a running export (tests, benchmarks); the made one, or None."""
        thread = self._running.get(key)
        if thread is not None:
            thread.join(timeout)
        return self._made.get(key)

    def _export(self, key: str, explorer: Explorer) -> None:
        try:
            # a copy of the model: the page's threads decode with the original meanwhile (tracing only reads it,
            # but nothing of the exporter's may touch what other sessions use)
            mine = copy.copy(explorer)
            mine.model = copy.deepcopy(explorer.model)
            made = decoder_bytes(mine)
        except Exception as error:  # noqa: BLE001 - any failure means: this model stays on the server's path
            with self._lock:
                self._failed[key] = (str(error).splitlines() or [type(error).__name__])[0][:300]
                self._running.pop(key, None)
            return
        with self._lock:
            self._made[key] = made
            self._running.pop(key, None)


EXPORTS = BackgroundExports()  # one per process: a model is exported once for every session
