"""Condition any network: put FiLM, Guide Me or INSIDE after named submodules of a network you already have.

    from monai.networks.nets import BasicUNet
    net = BasicUNet(spatial_dims=3, in_channels=1, out_channels=2)
    model = inside_core.condition(net, at=["down_4", "upcat_1"], layer="inside", cond_dim=3)
    out = model(x, z)                  # out.logits, out.conditioning (one params object per layer, in `at` order)
    features = model.encode(x)         # once per image ...
    out = model.decode(features, z)    # ... and only the z-dependent rest per control move

The network's code is not edited: during a call, forward hooks on the named submodules (found by their name
in `named_modules()`) pass each output through its conditioning layer. The layers' sizes are found by one
run of the network on the "meta" device (shapes only, no memory, no arithmetic). 2-D features get the 2-D
layers of `inside_core.layers` (so the dashboard and figures read them as they read ours), other ranks the
N-D layers of `inside_core.layers_nd`.

The split: every submodule call that *finishes* before the first conditioned submodule's output is ready
cannot depend on z. `encode` runs the network only that far and keeps those calls' outputs (the outermost
ones); `decode` runs the network again with each of those submodules answering from the cache instead of
computing, so only the rest (and whatever the network's own `forward` does between submodules) runs per z.
Limits (docs/your-network.md): control flow must be the same on every call, the conditioned submodules must
return one tensor, and the network must not change a cached output in place (decode checks and says so).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from inside_core.layers import CONDITIONING_LAYERS
from inside_core.layers_nd import CONDITIONING_LAYERS_ND
from inside_core.networks import ModelOutput, register_model

__all__ = ["condition", "ConditionedModel", "WrappedFeatures", "build_wrapped", "make_layer"]

PROBE_SIDE = 128  # the side of the shape-only input when no input_shape is given: divisible by 2^7
# one lock for all wrappers: a call swaps hooks and forwards on modules that two wrappers may share
_LOCK = threading.RLock()


class _Split(Exception):
    """Raised by encode's hook once the first conditioned submodule has its output: the rest needs z."""


@dataclass
class WrappedFeatures:
    """What `ConditionedModel.encode` hands to `decode`: the input and the outermost z-independent submodule
    calls' outputs, in call order (`calls[i] = (module, output)`)."""

    input: Tensor
    calls: list[tuple[nn.Module, Any]] = field(default_factory=list)

    def expand(self, batch: int) -> WrappedFeatures:
        """The same features repeated `batch` times along the batch axis (views, no copies)."""
        return WrappedFeatures(_expand(self.input, batch), [(m, _expand(o, batch)) for m, o in self.calls])


def _expand(value: Any, batch: int) -> Any:
    if isinstance(value, Tensor):
        return value.expand(batch, *value.shape[1:])
    if isinstance(value, (list, tuple)):
        return type(value)(_expand(v, batch) for v in value)
    return value


def _tensors(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _guess_input_shape(network: nn.Module) -> tuple[int, ...]:
    """(channels, side, ...) from the network's first convolution: its input channels and rank."""
    for module in network.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return (module.in_channels, *[PROBE_SIDE] * len(module.kernel_size))
    raise ValueError("cannot tell the network's input shape (it has no convolution); pass input_shape=(C, ...)")


@contextmanager
def _on_meta(network: nn.Module) -> Iterator[None]:
    """Every parameter and buffer swapped for a storage-less "meta" twin (a shared one stays shared), then back."""
    twins: dict[int, Tensor] = {}
    saved = []
    for module in network.modules():
        for store in (module._parameters, module._buffers):
            for key, value in store.items():
                if value is not None:
                    saved.append((store, key, value))
                    twin = twins.get(id(value))
                    if twin is None:
                        twin = torch.empty_like(value, device="meta")
                        twin = nn.Parameter(twin, value.requires_grad) if isinstance(value, nn.Parameter) else twin
                        twins[id(value)] = twin
                    store[key] = twin
    try:
        yield
    finally:
        for store, key, value in saved:
            store[key] = value


def _output_shapes(network: nn.Module, names: Sequence[str], input_shape: Sequence[int]) -> dict[str, tuple]:
    """The shape (C, *spatial) of each named submodule's output for one input of `input_shape`, found on the
    meta device: the network's own weights are neither copied nor used."""
    modules = dict(network.named_modules())
    shapes: dict[str, tuple] = {}

    def record(name):
        def hook(module, inputs, output):
            if not isinstance(output, Tensor):
                raise ValueError(f"submodule {name!r} returns {type(output).__name__}, not one tensor; "
                                 "condition a submodule that returns the feature map")
            shapes[name] = tuple(output.shape[1:])
        return hook

    handles = [modules[name].register_forward_hook(record(name)) for name in names]
    training = network.training
    network.eval()
    try:
        with torch.no_grad(), _on_meta(network):
            network(torch.empty(1, *input_shape, device="meta"))
    except ValueError:
        raise
    except Exception as error:  # whatever the user's network raises for this shape
        raise ValueError(f"cannot run the network on an input of shape {(1, *input_shape)} to size the "
                         f"conditioning layers ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
                         "pass input_shape=(C, ...)") from None
    finally:
        for handle in handles:
            handle.remove()
        network.train(training)
    missing = [name for name in names if name not in shapes]
    if missing:
        raise ValueError(f"the network never calls submodule(s) {missing} in its forward")
    return shapes


def make_layer(kind: str, shape: tuple, cond_dim: int, **options: Any) -> nn.Module:
    """The conditioning layer `kind` for features of shape (C, *spatial): the 2-D layer for (C, H, W), the
    N-D layer otherwise. An option the layer does not take is an error."""
    channels, spatial = shape[0], shape[1:]
    if kind not in CONDITIONING_LAYERS:
        raise ValueError(f"unknown layer {kind!r}; choose one of {', '.join(CONDITIONING_LAYERS)}")
    if len(spatial) == 2:
        layer_class = CONDITIONING_LAYERS[kind]
        extra = {"height": spatial[0], "width": spatial[1]} if kind == "guideme" else {}
    else:
        layer_class = CONDITIONING_LAYERS_ND[kind]
        extra = {"size": tuple(spatial)} if kind == "guideme" else {"spatial_dims": len(spatial)}
    try:
        return layer_class(channels, cond_dim, **extra, **options)
    except TypeError as error:
        raise ValueError(f"{kind} layer does not take these options: {', '.join(options)} ({error})") from None


class ConditionedModel(nn.Module):
    """A network with conditioning layers after named submodules; see the module docstring.

    Attributes as on our own networks: `cond_dim`, `in_channels`, `image_size` (the spatial size of
    `input_shape` when it was given, else None), `fixed_size` (Guide Me: tied to `image_size`),
    `conditioning_layers()` and `sigma_penalty(conditioning)`. The state dict holds `network.*` (the
    wrapped network's own keys) and `conditionings.<i>.*` (layer i of `at`).
    """

    def __init__(self, network: nn.Module, at: Sequence[str], layer: str = "inside", cond_dim: int = 3,
                 input_shape: Sequence[int] | None = None, **layer_args: Any):
        super().__init__()
        if isinstance(at, str):
            at = [at]
        at = list(at)
        modules = dict(network.named_modules())
        unknown = [name for name in at if name not in modules or name == ""]
        if unknown or not at or len(set(at)) != len(at):
            children = ", ".join(name for name, _ in network.named_children())
            problem = f"no submodule named {unknown}" if unknown else "names must be given once each"
            raise ValueError(f"condition(at=...): {problem}; the network's top-level submodules are: {children} "
                             "(any name in network.named_modules() works)")
        if layer == "guideme" and input_shape is None:
            raise ValueError("Guide Me is tied to one feature-map size: pass input_shape=(C, *spatial)")
        self.network, self.at, self.kind, self.cond_dim = network, at, layer, int(cond_dim)
        self.input_shape = tuple(int(s) for s in (input_shape or _guess_input_shape(network)))
        shapes = _output_shapes(network, at, self.input_shape)
        self.conditionings = nn.ModuleList([make_layer(layer, shapes[name], cond_dim, **layer_args) for name in at])
        self.in_channels = self.input_shape[0]
        self.spatial_dims = len(self.input_shape) - 1
        self.image_size = tuple(self.input_shape[1:]) if input_shape is not None else None
        self.fixed_size = layer == "guideme"
        self.conditioned = True
        self._targets = [modules[name] for name in at]
        base_config = getattr(network, "base_config", None)  # built by base_networks: a card can rebuild it
        if base_config is not None:
            self.config = {"name": "wrapped", **base_config, "conditioning": {"at": at, "layer": layer, **layer_args},
                           "cond_dim": self.cond_dim, "image_size": None if self.image_size is None
                           else list(self.image_size)}

    # ---------------------------------------------------------------------------------------- checks
    def check_image(self, x: Tensor) -> None:
        if x.dim() != 2 + self.spatial_dims or x.shape[1] != self.in_channels:
            axes = ", ".join(["S"] * self.spatial_dims)
            raise ValueError(f"expected an input batch of shape (B, {self.in_channels}, {axes}), got {tuple(x.shape)}")
        if self.fixed_size and tuple(x.shape[2:]) != self.image_size:
            raise ValueError(f"this model was built for inputs of size {self.image_size} (Guide Me's head is tied "
                             f"to the feature-map size), got {tuple(x.shape[2:])}")

    def check_z(self, z: Tensor | None, batch: int) -> None:
        if z is None or z.dim() != 2 or z.shape != (batch, self.cond_dim):
            got = None if z is None else tuple(z.shape)
            raise ValueError(f"expected z of shape ({batch}, {self.cond_dim}), got {got}")

    def conditioning_layers(self) -> Iterator[nn.Module]:
        return iter(self.conditionings)

    def sigma_penalty(self, conditioning: list) -> Tensor:
        """Sum of the INSIDE layers' sigma penalties for one forward pass's parameters."""
        terms = [layer.sigma_penalty(p) for layer, p in zip(self.conditionings, conditioning, strict=True)
                 if hasattr(layer, "sigma_penalty")]
        return torch.stack(terms).sum() if terms else torch.zeros(())

    # ---------------------------------------------------------------------------------------- running
    @contextmanager
    def _conditioned(self, z: Tensor, params: list) -> Iterator[None]:
        """Hooks that pass each named submodule's output through its layer, recording the parameters."""
        def hook_for(index: int):
            def hook(module, inputs, output):
                if params[index] is not None:
                    raise RuntimeError(f"submodule {self.at[index]!r} ran twice in one forward; a conditioned "
                                       "submodule must run once")
                if not isinstance(output, Tensor):
                    raise RuntimeError(f"submodule {self.at[index]!r} returned {type(output).__name__}, not a tensor")
                y, params[index] = self.conditionings[index](output, z)
                return y
            return hook

        handles = [module.register_forward_hook(hook_for(i)) for i, module in enumerate(self._targets)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _output(self, result: Any, params: list) -> ModelOutput:
        missing = [name for name, p in zip(self.at, params, strict=True) if p is None]
        if missing:
            raise RuntimeError(f"the network did not run submodule(s) {missing} in this call")
        # a network returning several outputs (deep supervision): the first is the prediction, as in MONAI
        logits = result if isinstance(result, Tensor) else result[0]
        return ModelOutput(logits, params)

    def forward(self, x: Tensor, z: Tensor | None = None) -> ModelOutput:
        self.check_image(x)
        self.check_z(z, x.shape[0])
        params: list = [None] * len(self.at)
        with _LOCK, self._conditioned(z, params):
            result = self.network(x)
        return self._output(result, params)

    def encode(self, x: Tensor) -> WrappedFeatures:
        """Run the network until the first conditioned submodule's output exists; keep the outermost
        finished submodule calls' outputs (they do not depend on z)."""
        self.check_image(x)
        calls: list[tuple[nn.Module, Any]] = []
        starts: list[int] = []
        targets = {id(m) for m in self._targets}

        def before(module, inputs):
            starts.append(len(calls))

        def after(module, inputs, output):
            del calls[starts.pop():]  # calls inside this one are covered by it
            calls.append((module, output))
            if id(module) in targets:
                raise _Split

        handles = []
        with _LOCK:
            try:
                for module in self.network.modules():
                    if module is not self.network:
                        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
                self.network(x)
            except _Split:
                pass
            finally:
                for handle in handles:
                    handle.remove()
        if not calls or id(calls[-1][0]) not in targets:
            raise RuntimeError(f"the network never ran a conditioned submodule ({', '.join(self.at)})")
        return WrappedFeatures(x, calls)

    def decode(self, features: WrappedFeatures, z: Tensor | None = None) -> ModelOutput:
        """The network's output for these features and z: the cached submodules answer from `features`."""
        self.check_z(z, features.input.shape[0])
        queues: dict[int, deque] = {}
        modules: dict[int, nn.Module] = {}
        for module, output in features.calls:
            queues.setdefault(id(module), deque()).append(output)
            modules[id(module)] = module
        # inference-mode tensors (the explorer's) keep no version counter: those go unchecked
        versions = [(t, t._version) for _, output in features.calls for t in _tensors(output) if not t.is_inference()]
        params: list = [None] * len(self.at)
        with _LOCK, self._conditioned(z, params), _replaying(modules, queues):
            result = self.network(features.input)
        if any(t._version != v for t, v in versions):
            raise RuntimeError("the network changed a cached submodule output in place during decode; "
                               "this network cannot be split (use model(x, z))")
        return self._output(result, params)


@contextmanager
def _replaying(modules: dict[int, nn.Module], queues: dict[int, deque]) -> Iterator[None]:
    """Each module answers its next calls from its queue of cached outputs, then computes again."""
    saved = {}
    for key, module in modules.items():
        saved[key] = module.__dict__.get("forward")
        original, queue = module.forward, queues[key]

        def replay(*args, _queue=queue, _original=original, **kwargs):
            return _queue.popleft() if _queue else _original(*args, **kwargs)

        module.forward = replay  # an instance attribute: nn.Module.__call__ runs it, hooks included
    try:
        yield
    finally:
        for key, module in modules.items():
            if saved[key] is None:
                del module.forward
            else:
                module.forward = saved[key]


def condition(model: nn.Module, at: Sequence[str], layer: str = "inside", cond_dim: int = 3,
              input_shape: Sequence[int] | None = None, **layer_args: Any) -> ConditionedModel:
    """`model` with a `layer` ("inside", "film" or "guideme") after each submodule named in `at`, conditioned
    on z of `cond_dim` numbers: call it as `wrapped(x, z)`. `input_shape` = (C, *spatial) of one input (needed
    for Guide Me, which is tied to one size; otherwise read from the first convolution). `layer_args` go to
    every layer (e.g. sigma_max=0.3)."""
    return ConditionedModel(model, at, layer=layer, cond_dim=cond_dim, input_shape=input_shape, **layer_args)


@register_model("wrapped")
def build_wrapped(network: str, args: dict, conditioning: dict, cond_dim: int = 3,
                  image_size: Sequence[int] | None = None) -> ConditionedModel:
    """A network of `base_networks.BASE_NETWORKS` built from `args` and conditioned as `conditioning` says
    ({"at": [...], "layer": ..., layer options}): what a config's `model:` section and a card describe.
    `image_size` (the spatial size of the inputs) fixes the input shape with `args["in_channels"]`."""
    from inside_core.base_networks import build_base_network

    options = dict(conditioning)
    at, layer = options.pop("at", None), options.pop("layer", "inside")
    if not at:
        raise ValueError("conditioning needs 'at': the names of the submodules to condition")
    base = build_base_network(network, args)
    input_shape = None
    if image_size is not None:
        size = [image_size] * int(args.get("spatial_dims", 2)) if isinstance(image_size, int) else list(image_size)
        input_shape = (int(args.get("in_channels", 1)), *size)
    return ConditionedModel(base, at, layer=layer, cond_dim=cond_dim, input_shape=input_shape, **options)
