"""The model card's schema: types, ranges and allowed names, checked before any network is built.

A card comes from a file anyone may have written, and it drives allocation: `"channels": [16, 32,
100000]` would build a network of billions of weights. `card_problems(card)` lists every problem of a
card (empty: the card is usable) and `parameter_count(architecture)` counts a network's parameters
without allocating them (built on PyTorch's "meta" device), so `inside_core.checkpoints` can refuse a
card with one line naming its file before building anything. Limits: `inside_core.limits`.

Checked: "name" (a name: letters, digits, space and . , + ( ) - _, so no Markdown link or image can hide in
it), "architecture" (an object: a registered network name, a known conditioning, and
for each argument the network or its conditioning layer takes, its type and range; nothing else), and
where present "dataset" (a plain name), "condition", "conditioning" (known names), "image_size" and "spacing" (ranges),
"data", "metrics", "train" (objects), "inference" (the recipe of inside_core.postprocess: its keys, labels
within the network's classes), "seed", "epochs", "best_epoch" (integers), text fields (strings of
bounded length) and "weights_sha256" (64 hex digits). Other keys are free (cards are extensible).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import Any

from inside_core.limits import limit

__all__ = ["card_problems", "architecture_problems", "parameter_count", "activation_bytes", "MAX_TEXT"]

MAX_TEXT = 10_000  # characters of one text field
_STAGE = re.compile(r"^(bottleneck|decoder[1-9])$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# a model's name is shown as a heading: no characters that could make Markdown a link or an image
_DISPLAY_NAME = re.compile(r"^\w[\w .,+()-]{0,127}$")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _integer(low: int, high: Callable[[], float] | int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        top = high() if callable(high) else high
        if not _is_int(value):
            return f"must be an integer, got {_show(value)}"
        if not low <= value <= top:
            return f"must be between {low} and {top:g}, got {value}"
        return None
    return check


def _number(low: float, high: float, low_open: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not _is_number(value):
            return f"must be a finite number, got {_show(value)}"
        if value > high or value < low or (low_open and value == low):
            return f"must be {'above' if low_open else 'at least'} {low:g} and at most {high:g}, got {value:g}"
        return None
    return check


def _image_size(value: Any, volumes: bool = False) -> str | None:
    """[height, width] (or one int); with `volumes`, also [depth, height, width] (a card of a 3-D model)."""
    side = int(limit("model_image_side"))
    sizes = [value, value] if _is_int(value) else value
    counts = (2, 3) if volumes else (2,)
    if not (isinstance(sizes, list) and len(sizes) in counts and all(_is_int(s) for s in sizes)):
        wanted = "[height, width] or [depth, height, width] (integers)" if volumes else \
            "[height, width] (two integers)"
        return f"must be {wanted}, got {_show(value)}"
    if not all(8 <= s <= side for s in sizes):
        return f"each side must be between 8 and {side} pixels (INSIDE_LIMIT_MODEL_IMAGE_SIDE), got {sizes}"
    return None


def _widths(count_low: int, count_high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        top = int(limit("model_channels"))
        if not (isinstance(value, list) and count_low <= len(value) <= count_high and all(_is_int(v) for v in value)):
            wanted = f"{count_low}" if count_low == count_high else f"{count_low} to {count_high}"
            return f"must be a list of {wanted} integers, got {_show(value)}"
        if not all(1 <= v <= top for v in value):
            return f"each must be between 1 and {top} channels (INSIDE_LIMIT_MODEL_CHANNELS), got {_show(value)}"
        return None
    return check


def _stages(value: Any) -> str | None:
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return f"must be a list of names, got {_show(value)}"
    bad = [v for v in value if not _STAGE.match(v)]
    return f"unknown position(s) {_show(bad)}; use bottleneck or decoder1 ... decoder9" if bad else None


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be text, got {_show(value)}"
    return f"is {len(value)} characters, at most {MAX_TEXT}" if len(value) > MAX_TEXT else None


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else f"must be an object, got {_show(value)}"


def _one_of(names: Callable[[], list[str]] | tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        allowed = names() if callable(names) else names
        if not isinstance(value, str) or value not in allowed:
            return f"must be one of {', '.join(allowed)}, got {_show(value)}"
        return None
    return check


def _models() -> list[str]:
    from inside_core.networks import list_models

    return list_models()


def _conditionings() -> tuple[str, ...]:
    from inside_core.networks import CONDITIONING_CHOICES

    return CONDITIONING_CHOICES


def _conditions() -> list[str]:
    try:
        from inside_core.conditions import list_conditions
    except ImportError:  # an older tree without the conditions registry
        return ["quadrant", "colour", "shape", "size", "point", "phase_slice", "table"]
    return [*list_conditions(), "table"]  # "table": a user's declared variables, in "condition_spec"


def _plain_name(value: Any) -> str | None:
    if isinstance(value, str) and _PLAIN_NAME.match(value):
        return None
    return f"must be a plain name (letters, digits, '.', '_', '-'; at most 64), got {_show(value)}"


def _display_name(value: Any) -> str | None:
    if isinstance(value, str) and _DISPLAY_NAME.match(value):
        return None
    return f"must be a name of letters, digits, space and . , + ( ) - _ (at most 128), got {_show(value)}"


_INFERENCE_KEYS = ("largest_component", "anatomy", "chosen_on", "validation")


def _inference(value: Any) -> str | None:
    """The inference recipe (inside_core.postprocess): {"largest_component": [labels], "anatomy": a name of
    postprocess.ANATOMIES, "chosen_on": text, "validation": {label name: {measure: number or null}}}; nothing else."""
    from inside_core.postprocess import ANATOMIES

    if not isinstance(value, dict):
        return f"must be an object, got {_show(value)}"
    unknown = [k for k in value if k not in _INFERENCE_KEYS]
    if unknown:
        return f"has unknown key(s) {_show(unknown)}; allowed: {', '.join(_INFERENCE_KEYS)}"
    labels = value.get("largest_component", [])
    top = int(limit("num_classes")) - 1
    if not (isinstance(labels, list) and all(_is_int(v) and 1 <= v <= top for v in labels)
            and len(set(labels)) == len(labels)):
        return f"'largest_component' must be a list of distinct labels 1-{top}, got {_show(labels)}"
    anatomy = value.get("anatomy")
    if anatomy is not None and not (isinstance(anatomy, str) and anatomy in ANATOMIES):
        return f"'anatomy' must be one of {', '.join(ANATOMIES)} or absent, got {_show(anatomy)}"
    if "chosen_on" in value and _text(value["chosen_on"]):
        return f"'chosen_on' {_text(value['chosen_on'])}"
    table = value.get("validation", {})
    if not (isinstance(table, dict) and len(table) <= top and all(
            isinstance(k, str) and len(k) <= 64 and isinstance(row, dict) and len(row) <= 16
            and all(isinstance(m, str) and len(m) <= 64 and (v is None or _is_number(v)) for m, v in row.items())
            for k, row in table.items())):
        return "'validation' must map label names to {measure: number or null}"
    return None


def _sha(value: Any) -> str | None:
    return None if isinstance(value, str) and _SHA256.match(value) else "must be 64 lower-case hex digits"


# the type and range of each argument a network or conditioning layer may get from a card
ARCHITECTURE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "conditioning": _one_of(_conditionings),
    "cond_dim": _integer(1, lambda: limit("cond_dim")),
    "in_channels": _integer(1, 16),
    "num_classes": _integer(1, lambda: limit("num_classes")),
    "image_size": _image_size,
    "widths": _widths(3, 3),
    "channels": _widths(2, 8),
    "conditioning_at": _stages,
    "decoder_convs": _integer(1, 8),
    "sigma_max": _number(0.0, 10.0, low_open=True),
    "sigma_min": _number(0.0, 10.0, low_open=True),
    "sigma_penalty_weight": _number(0.0, 1e6),
    "hidden": _integer(1, lambda: 4 * limit("model_channels")),
}

CARD_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "name": _display_name,
    "dataset": _plain_name,  # clevr-seg, acdc, or a user's dataset
    "condition": _one_of(_conditions),
    "conditioning": _one_of(_conditionings),
    "image_size": lambda v: _image_size(v, volumes=True),  # the wrapped 3-D models' cards
    "spacing": lambda v: _number(limit("spacing_min_mm"), limit("spacing_max_mm"))(v),
    "data": _object, "metrics": _object, "train": _object, "condition_spec": _object,
    "seed": _integer(-(2**63), 2**64), "epochs": _integer(0, 10**7), "best_epoch": _integer(0, 10**7),
    "training_time_s": _number(0.0, 1e9),
    "command": _text, "z_encoding": _text, "stopped": _text,
    "weights_sha256": _sha,
    "inference": _inference,
}


def _accepted_arguments(model: str, conditioning: str) -> set[str]:
    """The keyword arguments `build_model(model, ...)` accepts with this conditioning (from the signatures)."""
    from inside_core import layers
    from inside_core.networks import _REGISTRY

    def named(function) -> set[str]:
        return {p.name for p in inspect.signature(function).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}

    accepted = named(_REGISTRY[model].__init__)
    layer = {"film": layers.FiLM, "guideme": layers.GuidingBlock, "inside": layers.INSIDE}.get(conditioning)
    if layer is not None:  # options passed through to the conditioning layer
        accepted |= named(layer.__init__) - {"channels", "cond_dim", "height", "width"}
    return accepted


def architecture_problems(architecture: Any) -> list[str]:
    """Every problem of a card's "architecture" object, each as '<key> <problem>' (empty: buildable)."""
    if not isinstance(architecture, dict):
        return [f"'architecture' must be an object, got {_show(architecture)}"]
    problems = []
    model = architecture.get("name")
    if model == "wrapped":  # a network from base_networks' allow-list with conditioning layers put in
        from inside_core.base_networks import wrapped_architecture_problems

        return wrapped_architecture_problems(architecture)
    bad_model = _one_of(_models)(model)
    if bad_model:
        return [f"architecture 'name' {bad_model}"]
    conditioning = architecture.get("conditioning", "none")
    accepted = _accepted_arguments(model, conditioning if isinstance(conditioning, str) else "none")
    for key, value in architecture.items():
        if key == "name":
            continue
        if key not in accepted:
            problems.append(f"architecture '{key}' is not an argument of {model} with conditioning "
                            f"{_show(conditioning)}")
            continue
        check = ARCHITECTURE_CHECKS.get(key)
        problem = check(value) if check else (None if value is None or isinstance(value, (str, bool)) or
                                              _is_number(value) else "must be a number, text or true/false")
        if problem:
            problems.append(f"architecture '{key}' {problem}")
    sigma_min, sigma_max = architecture.get("sigma_min", 1e-3), architecture.get("sigma_max", 0.3)
    if _is_number(sigma_min) and _is_number(sigma_max) and not sigma_min < sigma_max:
        problems.append(f"architecture needs sigma_min < sigma_max, got {sigma_min:g} and {sigma_max:g}")
    return problems


def card_problems(card: Any) -> list[str]:
    """Every problem of a model card (empty list: usable), each a short phrase without the file name."""
    if not isinstance(card, dict):
        return [f"the model card must be a JSON object, got {type(card).__name__}"]
    problems = [f"model card lacks '{key}'" for key in ("name", "architecture") if key not in card]
    if "architecture" in card:
        problems += architecture_problems(card["architecture"])
    if card.get("condition") == "table" and not isinstance(card.get("condition_spec"), dict):
        problems.append("'condition' table needs a 'condition_spec' object")
    elif card.get("condition") == "table":  # its names and levels become labels on the page: checked here
        from inside_core.conditions import TableCondition

        try:
            TableCondition(card["condition_spec"])
        except (ValueError, TypeError) as error:
            problems.append(f"'condition_spec' {str(error)[:300]}")
    for key, check in CARD_CHECKS.items():
        if card.get(key) is not None or (key == "name" and key in card):  # null: the same as absent
            problem = check(card[key])
            if problem:
                problems.append(f"'{key}' {problem}")
    classes = (card.get("architecture") or {}).get("num_classes") if isinstance(card.get("architecture"), dict) \
        else None
    recipe = card.get("inference")
    if _is_int(classes) and isinstance(recipe, dict) and not _inference(recipe):
        beyond = [v for v in recipe.get("largest_component", []) if v >= classes]
        if beyond:
            problems.append(f"'inference' 'largest_component' names label(s) {beyond} of a {classes}-class network")
        if recipe.get("anatomy") == "cardiac" and classes != 4:
            problems.append(f"'inference' 'anatomy' 'cardiac' needs ACDC's 4 labels, not a {classes}-class network")
    return problems


def parameter_count(architecture: dict) -> int:
    """Parameters and buffers of the network an architecture describes, counted without allocating them."""
    import torch

    from inside_core.networks import build_model

    config = dict(architecture)
    with torch.device("meta"):  # tensors without storage: shapes only
        model = build_model(config.pop("name"), **config)
    return sum(t.numel() for t in model.parameters()) + sum(t.numel() for t in model.buffers())


def activation_bytes(architecture: dict) -> int:
    """Bytes of the outputs of every layer for ONE image at the card's image size, without allocating them.

    First a bound: every layer's output channels at the full image size (instant, and above the real
    figure since most layers work at a lower resolution). Only when that bound is over the limit
    `model_activation_bytes` is the real figure counted, by a forward pass on the `meta` device (shapes
    only; its first use costs seconds). A network within the parameter limit can still need gigabytes per
    image at a large image size: this is checked before it is built."""
    import torch

    from inside_core.networks import build_model

    config = dict(architecture)
    with torch.device("meta"):
        model = build_model(config.pop("name"), **config)
    size = config.get("image_size") or 128  # a wrapped 3-D card may give three sizes, or none
    dims = [size, size] if isinstance(size, int) else [int(s) for s in size]
    height, width = dims[-2], dims[-1]
    depth = math.prod(dims[:-2])
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    bound = sum(int(getattr(m, "out_channels", 1)) for m in leaves) * depth * height * width * 4
    if bound <= limit("model_activation_bytes"):
        return bound
    total = 0

    def count(_module, _inputs, output) -> None:
        nonlocal total
        for tensor in (output if isinstance(output, (tuple, list)) else [output]):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()

    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        image = torch.empty(1, int(getattr(model, "in_channels", 1)), *dims, device="meta")
        z = torch.empty(1, int(config.get("cond_dim", 1)), device="meta")
        with torch.no_grad():
            model(image, z)
    except (RuntimeError, NotImplementedError, TypeError, ValueError, AttributeError):
        return bound  # a network whose forward cannot run on `meta`: the bound stands
    finally:
        for hook in hooks:
            hook.remove()
    return total
