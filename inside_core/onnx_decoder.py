"""The part of a model that runs per control move, as ONNX: `Explorer.update`'s decode (kept encoder
features + z -> logits) and the conditioning parameters the overlay draws (INSIDE: mu, sigma, gamma, beta).

    from inside_core.onnx_decoder import export_decoder, feature_inputs
    spec = export_decoder(explorer, "decoder.onnx")     # traces model.decode at this image's feature shapes
    feeds = feature_inputs(explorer, z)                 # {input name: float32 array}, what a runtime is fed

Evaluated for issue 21 (docs/dashboard.md, "Evaluated and left": where the decode runs) with ONNX Runtime
in Python and in the browser (benchmarks/browser_decoder.py). The graph is traced by `torch.onnx.export`
(torch.export, then onnxscript) from `model.decode` itself, so there is no second copy of the decoder to keep in
step; the shapes are fixed (batch 1, this image size). `onnx` and `onnxscript` are imported lazily: they are
not in requirements.txt (a missing one raises one line saying what to install).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from inside_core.explorer import Explorer
from inside_core.layers import FiLMParams, GuidingParams, InsideParams
from inside_core.networks import Features

__all__ = ["DecoderSpec", "DecoderGraph", "export_decoder", "feature_inputs", "require_onnx"]

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
