"""The networks a model card may name for a wrapped model, and the checks of their arguments.

A wrapped model's card records how to rebuild it, never pickled code:

    "architecture": {"name": "wrapped", "network": "monai.BasicUNet",
                     "args": {"spatial_dims": 2, "in_channels": 3, "out_channels": 1, "features": [...]},
                     "conditioning": {"at": ["down_4", "upcat_1"], "layer": "inside", "sigma_max": 0.3},
                     "cond_dim": 4, "image_size": [64, 64]}

Only networks in `BASE_NETWORKS` can be built from a card, and each argument is checked (type, range,
allowed names) before anything is built: a card is a file anyone may have written (docs/untrusted-input.md).
Strings such as an activation's name are looked up by MONAI in its own tables; (name, {options}) tuples,
which would pass arbitrary keyword arguments, are not accepted. Your own network: `register_base_network`
in your code (trusted), then cards may name it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from inside_core.cards import ARCHITECTURE_CHECKS, _integer, _is_int, _is_number, _number, _one_of, _show, _widths
from inside_core.limits import limit

__all__ = ["BaseNetwork", "BASE_NETWORKS", "register_base_network", "build_base_network",
           "wrapped_architecture_problems"]

Check = Callable[[Any], str | None]
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}(\.[A-Za-z0-9_]{1,64}){0,15}$")  # only looked up in named_modules()
LAYER_OPTIONS = ("sigma_max", "sigma_min", "sigma_penalty_weight", "hidden")  # options of the layers a card may set


@dataclass(frozen=True)
class BaseNetwork:
    """A network class cards may name: where it lives ("package.module:Class"), its required arguments,
    and a check for each argument it may get."""

    target: str
    required: tuple[str, ...]
    checks: dict[str, Check]

    def constructor(self) -> Callable[..., nn.Module]:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {_show(value)}"


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _ints(count_low: int, count_high: int, low: int, high: int, nested: bool = False) -> Check:
    """A list of count_low..count_high integers in [low, high]; with `nested`, items may be such lists of 1-3."""
    def item(value: Any) -> bool:
        if _is_int(value):
            return low <= value <= high
        return nested and isinstance(value, list) and 1 <= len(value) <= 3 and all(
            _is_int(v) and low <= v <= high for v in value)

    def check(value: Any) -> str | None:
        if isinstance(value, list) and count_low <= len(value) <= count_high and all(item(v) for v in value):
            return None
        return f"must be a list of {count_low} to {count_high} integers between {low} and {high}, got {_show(value)}"
    return check


_ACTS = ("relu", "leakyrelu", "prelu", "relu6", "selu", "celu", "gelu", "sigmoid", "tanh", "elu", "swish", "mish")
_NORMS = ("instance", "batch", "group", "layer", "localresponse", "syncbatch", "instance_nvfuser")


def _name_in(names: tuple[str, ...]) -> Check:
    return lambda value: None if isinstance(value, str) and value.lower() in names else (
        f"must be one of {', '.join(names)}, got {_show(value)}")


_COMMON: dict[str, Check] = {
    "spatial_dims": _integer(2, 3),
    "in_channels": ARCHITECTURE_CHECKS["in_channels"],
    "out_channels": ARCHITECTURE_CHECKS["num_classes"],
}

BASE_NETWORKS: dict[str, BaseNetwork] = {
    "monai.BasicUNet": BaseNetwork("monai.networks.nets:BasicUNet", ("spatial_dims", "in_channels", "out_channels"), {
        **_COMMON, "features": _widths(6, 6), "act": _name_in(_ACTS), "norm": _name_in(_NORMS), "bias": _boolean,
        "dropout": _number(0.0, 1.0), "upsample": _one_of(("deconv", "nontrainable", "pixelshuffle")),
    }),
    "monai.UNet": BaseNetwork("monai.networks.nets:UNet",
                              ("spatial_dims", "in_channels", "out_channels", "channels", "strides"), {
        **_COMMON, "channels": _widths(2, 8), "strides": _ints(1, 7, 1, 4), "kernel_size": _integer(1, 7),
        "up_kernel_size": _integer(1, 7), "num_res_units": _integer(0, 4), "act": _name_in(_ACTS),
        "norm": _name_in(_NORMS), "dropout": _number(0.0, 1.0), "bias": _boolean,
        "adn_ordering": _one_of(("NDA", "NAD", "DNA", "DAN", "AND", "ADN", "NA", "AN", "N", "A", "")),
    }),
    "monai.DynUNet": BaseNetwork("monai.networks.nets:DynUNet", (
        "spatial_dims", "in_channels", "out_channels", "kernel_size", "strides", "upsample_kernel_size"), {
        **_COMMON, "kernel_size": _ints(2, 9, 1, 7, nested=True), "strides": _ints(2, 9, 1, 4, nested=True),
        "upsample_kernel_size": _ints(1, 8, 1, 4, nested=True), "filters": _optional(_widths(2, 9)),
        "dropout": _optional(_number(0.0, 1.0)), "norm_name": _name_in(_NORMS), "act_name": _name_in(_ACTS),
        "deep_supervision": _boolean, "deep_supr_num": _integer(1, 4), "res_block": _boolean,
        "trans_bias": _boolean,
    }),
}


def register_base_network(name: str, target: str, required: tuple[str, ...], checks: dict[str, Check]) -> None:
    """Let cards name your own network class `target` ("package.module:Class") as `name`, with these checks."""
    BASE_NETWORKS[name] = BaseNetwork(target, tuple(required), dict(checks))


def base_network_problems(name: Any, args: Any) -> list[str]:
    if not isinstance(name, str) or name not in BASE_NETWORKS:
        return [f"architecture 'network' must be one of {', '.join(BASE_NETWORKS)}, got {_show(name)}"]
    if not isinstance(args, dict):
        return [f"architecture 'args' must be an object, got {_show(args)}"]
    spec = BASE_NETWORKS[name]
    problems = [f"architecture 'args' lacks {key!r} ({name} needs it)" for key in spec.required if key not in args]
    for key, value in args.items():
        check = spec.checks.get(key)
        if check is None:
            problems.append(f"architecture 'args' {key!r} is not an argument cards may give {name}")
        elif problem := check(value):
            problems.append(f"architecture 'args' {key!r} {problem}")
    return problems


def _image_size(value: Any) -> str | None:
    side = int(limit("model_image_side"))
    if isinstance(value, list) and 1 <= len(value) <= 3 and all(_is_int(s) and 4 <= s <= side for s in value):
        return None
    return f"must be a list of 1 to 3 sizes between 4 and {side} (INSIDE_LIMIT_MODEL_IMAGE_SIDE), got {_show(value)}"


def _conditioning_problems(conditioning: Any) -> list[str]:
    if not isinstance(conditioning, dict):
        return [f"architecture 'conditioning' must be an object with 'at' and 'layer', got {_show(conditioning)}"]
    problems = []
    at = conditioning.get("at")
    if not (isinstance(at, list) and 1 <= len(at) <= 32 and all(isinstance(n, str) and _MODULE_NAME.match(n)
                                                                  for n in at)):
        problems.append(f"architecture conditioning 'at' must be a list of 1 to 32 submodule names, got {_show(at)}")
    if problem := _one_of(("inside", "film", "guideme"))(conditioning.get("layer")):
        problems.append(f"architecture conditioning 'layer' {problem}")
    for key, value in conditioning.items():
        if key in ("at", "layer"):
            continue
        if key not in LAYER_OPTIONS:
            problems.append(f"architecture conditioning {key!r} is not a layer option ({', '.join(LAYER_OPTIONS)})")
        elif problem := ARCHITECTURE_CHECKS[key](value):
            problems.append(f"architecture conditioning {key!r} {problem}")
    low, high = conditioning.get("sigma_min", 1e-3), conditioning.get("sigma_max", 0.3)
    if _is_number(low) and _is_number(high) and not low < high:
        problems.append(f"architecture needs sigma_min < sigma_max, got {low:g} and {high:g}")
    return problems


def wrapped_architecture_problems(architecture: dict) -> list[str]:
    """Every problem of a "wrapped" architecture (empty: buildable): the network on the allow-list with
    checked arguments, the conditioning, cond_dim and image_size; no other key."""
    allowed = {"name", "network", "args", "conditioning", "cond_dim", "image_size"}
    problems = [f"architecture {key!r} is not a key of a wrapped network ({', '.join(sorted(allowed))})"
                for key in architecture if key not in allowed]
    problems += base_network_problems(architecture.get("network"), architecture.get("args"))
    problems += _conditioning_problems(architecture.get("conditioning"))
    if problem := ARCHITECTURE_CHECKS["cond_dim"](architecture.get("cond_dim")):
        problems.append(f"architecture 'cond_dim' {problem}")
    if architecture.get("image_size") is not None and (problem := _image_size(architecture["image_size"])):
        problems.append(f"architecture 'image_size' {problem}")
    return problems


def build_base_network(name: str, args: dict) -> nn.Module:
    """The network `name` of BASE_NETWORKS built with `args` (checked first: ValueError listing the problems).
    A model `condition()` makes of it can be saved with `save_checkpoint`: its card says how to rebuild it."""
    problems = base_network_problems(name, args)
    if problems:
        raise ValueError("; ".join(problems[:4]))
    try:  # arguments that pass their checks may still not fit together (e.g. strides for fewer levels)
        network = BASE_NETWORKS[name].constructor()(**{k: tuple(v) if isinstance(v, list) else v
                                                        for k, v in args.items()})
    except Exception as error:  # whatever the network's constructor raises
        raise ValueError(f"{name} refuses these arguments ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200] if str(error) else ''})") from None
    network.base_config = {"network": name, "args": dict(args)}  # lets `condition()` give the wrapper a .config
    return network
