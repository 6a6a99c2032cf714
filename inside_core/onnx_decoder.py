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

The dashboard decodes in the browser while a control is held (docs/dashboard.md): `EXPORTS.get(checkpoint)`
exports each model once, in a child process waited for by a thread (5-18 s here with the imports: the first page
does not wait; meanwhile the page keeps its pictures made ahead), and keeps the bytes in memory;
`half_features(explorer)` are the image's kept features as float16, what the browser is sent once per image.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from inside_core.atomic import atomic_write_bytes
from inside_core.explorer import Explorer
from inside_core.layers import FiLMParams, GuidingParams, InsideParams
from inside_core.networks import Features

__all__ = ["DecoderSpec", "DecoderGraph", "export_decoder", "feature_inputs", "require_onnx", "decoder_bytes",
           "half_features", "BackgroundExports", "EXPORTS"]

# the parameter fields each conditioning kind hands out, in output order (Explorer.channel_table's names)
_FIELDS = {InsideParams: ("mu_x", "mu_y", "sigma_x", "sigma_y", "gamma", "beta"), FiLMParams: ("gamma", "beta"),
           GuidingParams: ("gamma_scale", "gamma_shift")}


def require_onnx() -> None:
    """ImportError in one line unless the exporter's packages are installed. Looked up, not imported: importing
    them takes ~0.6 s, which the page's first run would wait for (the export itself runs in a child process)."""
    import importlib.util

    for module in ("onnx", "onnxscript"):
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"exporting the decoder needs {module}: pip install onnx==1.23.2 onnxscript==0.7.2")


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
    bytes of float32, and the same masks (docs/dashboard.md; tests/test_decode_recipe_js.py)."""
    return {name: (tuple(array.shape), array.astype("<f2").tobytes())
            for name, array in feature_inputs(explorer, np.zeros(explorer.cond_dim, np.float32)).items()
            if name != "z"}


def stored_export_path(checkpoint: str | Path) -> Path | None:
    """Where an export of `checkpoint` is kept between servers: `<cache>/onnx/<digest>.onnx`, the digest over the
    weights file, this package's Python source (the graph is traced from it) and the torch and onnx versions, so a
    changed model or code never meets an old export. None where the weights cannot be read."""
    from inside_core.checkpoints import checkpoint_paths
    from inside_core.data.cache import cache_root

    digest = hashlib.sha256()
    try:
        digest.update(checkpoint_paths(checkpoint)[0].read_bytes())
        for source in sorted(Path(__file__).resolve().parent.rglob("*.py")):
            digest.update(source.read_bytes())
    except OSError:
        return None
    versions = [torch.__version__]
    for package in ("onnx", "onnxscript"):  # read from the installed metadata: nothing imported here
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    digest.update(" ".join(versions).encode())
    return cache_root() / "onnx" / f"{digest.hexdigest()[:32]}.onnx"


class BackgroundExports:
    """Each model's exported decoder, made once per checkpoint file and kept in memory. `get(checkpoint)`: the .onnx
    bytes once made; None while it is being made (the first call starts it) or if it failed (`failed(checkpoint)`
    says why, in one line).

    Made in a child process (`python -m inside_core.onnx_decoder CHECKPOINT OUT`, waited for by a thread), not in
    a thread of the server: the exporter parses Python source (`ast`), and CPython 3.11's parser is not safe against
    a parse in another thread at the same moment (SystemError "AST constructor recursion depth mismatch", met when
    Streamlit or a test parsed a script meanwhile); a process also keeps the export's CPU and memory off the page's."""

    def __init__(self, timeout_s: float = 300.0) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._made: dict[str, bytes] = {}
        self._failed: dict[str, str] = {}
        self._running: dict[str, threading.Thread] = {}

    def get(self, checkpoint: str | Path) -> bytes | None:
        key = str(checkpoint)
        with self._lock:
            if key in self._made or key in self._failed:
                return self._made.get(key)
            if key not in self._running:
                thread = threading.Thread(target=self._export, args=(key,), daemon=True, name=f"onnx-export {key}")
                self._running[key] = thread
                thread.start()
        return None

    def failed(self, checkpoint: str | Path) -> str | None:
        return self._failed.get(str(checkpoint))

    def wait(self, checkpoint: str | Path, timeout: float | None = None) -> bytes | None:
        """Wait for a running export (tests, benchmarks); the made one, or None."""
        thread = self._running.get(str(checkpoint))
        if thread is not None:
            thread.join(timeout)
        return self._made.get(str(checkpoint))

    def _export(self, key: str) -> None:
        stored = stored_export_path(key)
        if stored is not None and stored.is_file() and stored.stat().st_size > 0:
            made = stored.read_bytes()  # made by an earlier server: the page's decoder is ready in a second
            with self._lock:
                self._made[key] = made
                self._running.pop(key, None)
            return
        made, why = None, None
        root = str(Path(__file__).resolve().parents[1])  # the child imports this package from the same checkout
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        with tempfile.TemporaryDirectory(prefix="inside-onnx-") as folder:
            out = Path(folder) / "decoder.onnx"
            try:
                result = subprocess.run([sys.executable, "-m", "inside_core.onnx_decoder", key, str(out)], env=env,
                                        capture_output=True, text=True, timeout=self.timeout_s)
                if result.returncode == 0 and out.exists():
                    made = out.read_bytes()
                else:
                    lines = [line for line in result.stderr.splitlines() if line.strip()]
                    why = (lines[-1] if lines else f"exit status {result.returncode}")[:300]
            except (OSError, subprocess.SubprocessError) as error:
                why = (str(error).splitlines() or [type(error).__name__])[0][:300]
        if made is not None and stored is not None:
            try:
                atomic_write_bytes(stored, made)
            except OSError:
                pass  # a read-only cache only costs the next server the export again
        with self._lock:
            if made is not None:
                self._made[key] = made
            else:
                self._failed[key] = why or "no output"
            self._running.pop(key, None)


EXPORTS = BackgroundExports()  # one per process: a model is exported once for every session


def main(argv: list[str] | None = None) -> int:
    """`python -m inside_core.onnx_decoder CHECKPOINT OUT`: export CHECKPOINT's decode at its image size to OUT
    (what `BackgroundExports` runs)."""
    from inside_core.checkpoints import load_checkpoint

    checkpoint, out = argv if argv is not None else sys.argv[1:]
    model = load_checkpoint(checkpoint).eval()
    height, width = (int(v) for v in model.image_size[-2:])
    with contextlib.redirect_stderr(io.StringIO()):  # the exporter's warnings: the caller reads the last line only
        export_decoder(Explorer(model, np.zeros((height, width), np.float32)), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
