"""The inference recipe: what turns a model's logits into the masks we report and show.

Three steps, the first two as in nnU-Net:

- **Largest connected component per label** (`largest_component`): for each listed foreground label, keep
  only its largest connected piece (face connectivity, `scipy.ndimage.label`); the rest becomes background.
  A per-slice 2-D model applied to a stack is cleaned on the stacked volume of each (patient, phase), a
  single image in 2-D. Which labels get it is chosen on the validation split (`choose_largest_component`,
  `inside postprocess`) and stored in the model card: `"inference": {"largest_component": [3, 1, 2], ...}`.
  Absent: nothing is removed.
- **Cardiac anatomy, label-free** (`cardiac_anatomy`, `"inference": {"anatomy": "cardiac"}`): the RV never
  lies inside the LV. Per slice, whatever the myocardium ring and the LV cavity enclose (an RV blob, a
  background hole, in-plane holes of MYO + LV) becomes LV, and so does an RV piece whose border is mostly
  LV (a blob in the cavity where the predicted ring has a gap); then an RV piece that touches nothing of the heart
  (MYO or LV within ~2 pixels in its slice, or in the slice next to it) becomes background, when the stack has
  a heart at all. Run before and after the largest component (`clean`): before, so an RV blob in the cavity
  cannot be the RV's largest piece; after, so a piece removed from the cavity does not leave a hole. Labels
  are ACDC's (inside_core.evaluate_acdc.STRUCTURES). Kept unless it lowers the validation Dice.
- **Test-time augmentation over the in-plane symmetries** (`symmetric_average`): the image turned by
  0-3 quarter turns, each with and without a transpose (the 8 symmetries of a square; 4 for a non-square
  image), each prediction mapped back, softmax (sigmoid) probabilities averaged. Only where z says nothing
  about places in the image (`Condition.orientation_free`): a quadrant or a point would be turned with the
  image, so `require_tta` refuses those in one line. 8 encodes and decodes per image: for evaluation, not
  for the page's live drag.

    labels = clean(labels, inference_recipe(card))                        # one image or one volume
    labels = clean_volumes(labels, metas, inference_recipe(card))          # slices stacked per volume
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

__all__ = ["largest_component", "cardiac_anatomy", "clean", "clean_volumes", "inference_labels", "inference_recipe",
           "ANATOMIES", "symmetries", "symmetry", "inverse_symmetry",
           "probabilities", "labels_from_probabilities", "symmetric_average", "tta_allowed", "require_tta",
           "choose_largest_component", "register"]


# ------------------------------------------------------------------------------- largest component

def largest_component(labels: np.ndarray, keep: Iterable[int]) -> np.ndarray:
    """`labels` (an image (H, W) or a volume (Z, H, W)) with only the largest face-connected component of
    each label in `keep`; removed voxels become 0. A copy; other labels untouched."""
    out = np.array(labels, copy=True)
    for label in keep:
        pieces, count = ndimage.label(out == label)
        if count > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0  # the background of the piece map
            out[(pieces > 0) & (pieces != int(sizes.argmax()))] = 0
    return out


def cardiac_anatomy(labels: np.ndarray) -> np.ndarray:
    """`labels` (an image (H, W) or a stack (Z, H, W), ACDC labels) with the anatomy enforced (module
    docstring): in each slice, what MYO + LV enclose becomes LV, and so does an RV piece whose border is
    mostly LV (a blob in the cavity where the predicted ring has a gap: the true RV borders MYO and
    background, never the cavity); RV pieces touching no MYO/LV become 0 (only when the image or stack
    holds MYO or LV). A copy."""
    out = np.array(labels, copy=True)
    planes = out if out.ndim == 3 else out[None]  # a view: the slices are changed in place
    occupied = (planes > 0).any(axis=0)
    rows, cols = np.flatnonzero(occupied.any(axis=1)), np.flatnonzero(occupied.any(axis=0))
    if rows.size:  # only the box around the labels, with a background margin: the same answer, faster
        margin = _NEAR_HEART + 1
        _enforce_cardiac(planes[:, max(rows.min() - margin, 0):rows.max() + margin + 1,
                                max(cols.min() - margin, 0):cols.max() + margin + 1])
    return out


_NEAR_HEART = 2  # pixels: an RV piece this close to MYO/LV in its slice (a thin gap in a prediction) touches it
_CROSS = ndimage.generate_binary_structure(2, 1)
_CROSS_3D = ndimage.generate_binary_structure(3, 1)


def _adjacent(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a pixel of `a` has a 4-neighbour in `b` within its slice (last two axes)."""
    return bool((a[..., 1:, :] & b[..., :-1, :]).any() or (a[..., :-1, :] & b[..., 1:, :]).any()
                or (a[..., :, 1:] & b[..., :, :-1]).any() or (a[..., :, :-1] & b[..., :, 1:]).any())


def _holes(mask: np.ndarray) -> np.ndarray:
    """The pixels of a 2-D `mask`'s holes: background not 4-connected to the image border (as
    `ndimage.binary_fill_holes`, by one labelling instead of repeated dilations)."""
    outside, count = ndimage.label(~mask, _CROSS)
    if count <= 1:
        return np.zeros_like(mask) if count == 0 or _touches_border(outside) else outside > 0
    reaches = np.zeros(count + 1, bool)
    reaches[np.concatenate([outside[0], outside[-1], outside[:, 0], outside[:, -1]])] = True
    reaches[0] = True  # the mask itself
    return ~reaches[outside]


def _touches_border(pieces: np.ndarray) -> bool:
    return bool(pieces[0].any() or pieces[-1].any() or pieces[:, 0].any() or pieces[:, -1].any())


def _enforce_cardiac(planes: np.ndarray) -> None:
    """`cardiac_anatomy` in place on a (Z, H, W) view. The checks that need labelling or dilation are skipped
    where a cheap test shows they cannot change anything (the page runs this on every drag step)."""
    from inside_core.evaluate_acdc import STRUCTURES

    rv, myo, lv = STRUCTURES["RV"], STRUCTURES["MYO"], STRUCTURES["LV"]
    for plane in planes:
        heart = (plane == myo) | (plane == lv)
        if not heart.any():
            continue
        plane[_holes(heart)] = lv
        rv_mask = plane == rv
        if _adjacent(rv_mask, plane == lv):  # only an RV piece next to the LV can be bordered mostly by it
            pieces, count = ndimage.label(rv_mask, _CROSS)
            # each piece's outer border: the non-RV pixels next to it (tagged with the piece's number)
            grown = ndimage.grey_dilation(pieces, footprint=_CROSS)
            border = (grown > 0) & (pieces == 0)
            total = np.bincount(grown[border], minlength=count + 1)
            on_lv = np.bincount(grown[border & (plane == lv)], minlength=count + 1)
            mostly_lv = on_lv > 0.5 * total
            mostly_lv[0] = False
            plane[mostly_lv[pieces]] = lv
    heart = (planes == myo) | (planes == lv)
    rv_mask = planes == rv
    if not (heart.any() and rv_mask.any()):
        return
    pieces, count = ndimage.label(rv_mask, _CROSS_3D)
    if count == 1 and _adjacent(rv_mask, heart):  # one RV piece, next to the heart: nothing to remove
        return
    # near the heart: within _NEAR_HEART pixels (city block) in its own slice, or the same pixel next slice
    reach = np.zeros((3, 2 * _NEAR_HEART + 1, 2 * _NEAR_HEART + 1), bool)
    offsets = np.abs(np.arange(-_NEAR_HEART, _NEAR_HEART + 1))
    reach[1] = offsets[:, None] + offsets[None, :] <= _NEAR_HEART
    reach[:, _NEAR_HEART, _NEAR_HEART] = True
    near = ndimage.binary_dilation(heart, reach)
    touching = np.zeros(count + 1, bool)
    touching[np.unique(pieces[near & (pieces > 0)])] = True
    touching[0] = True  # the background of the piece map stays as it is
    planes[~touching[pieces]] = 0


def clean(labels: np.ndarray, recipe: Mapping[str, Any]) -> np.ndarray:
    """One image (H, W) or one stack (Z, H, W) made into masks by `recipe` (`inference_recipe`): the anatomy
    (if named), each listed label's largest component, the anatomy again. `labels` itself when nothing applies."""
    anatomy = ANATOMIES.get(recipe.get("anatomy") or "")
    keep = list(recipe.get("largest_component") or [])
    out = anatomy(labels) if anatomy else labels
    if not keep:
        return out
    cleaned = largest_component(out, keep)
    # the anatomy again only where pieces were removed (it holds already where nothing changed)
    return anatomy(cleaned) if anatomy and not np.array_equal(cleaned, out) else cleaned


def clean_volumes(labels: np.ndarray, metas: Sequence[Mapping[str, Any]], recipe: Mapping[str, Any],
                  key: Callable[[Mapping[str, Any]], Any] | None = None) -> np.ndarray:
    """Slices (N, H, W) of several stacks: `clean` on each stack in 3-D. A stack is the slices whose meta
    share `key(meta)` (default (patient, phase)), ordered by "slice_index"; without a key in the metas
    (images, not slices), each image alone in 2-D. `labels` itself when the recipe does nothing."""
    if not recipe.get("largest_component") and not recipe.get("anatomy"):
        return labels
    key = key or _stack_of
    stacks: dict[Any, list[int]] = {}
    for index, meta in enumerate(metas):
        group = key(meta)
        stacks.setdefault(("image", index) if group is None else group, []).append(index)
    out = labels.copy()
    for indices in stacks.values():
        indices = sorted(indices, key=lambda i: int(metas[i].get("slice_index", 0)))
        out[indices] = clean(labels[indices], recipe)
    return out


def _stack_of(meta: Mapping[str, Any]) -> Any:
    """The stack a slice belongs to: ACDC's (patient, phase), a user's case; None for a lone image."""
    if "slice_index" not in meta:
        return None
    return (meta.get("patient", meta.get("case")), meta.get("phase"))


def inference_labels(card: Mapping[str, Any] | None) -> list[int]:
    """The labels the card's recipe cleans (`"inference": {"largest_component": [...]}`); [] if none."""
    recipe = (card or {}).get("inference") or {}
    return [int(label) for label in recipe.get("largest_component") or []]


ANATOMIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"cardiac": cardiac_anatomy}


def inference_recipe(card: Mapping[str, Any] | None) -> dict[str, Any]:
    """What `clean` does for this card: {"largest_component": [labels], "anatomy": "cardiac" or None}."""
    anatomy = ((card or {}).get("inference") or {}).get("anatomy")
    return {"largest_component": inference_labels(card), "anatomy": anatomy if anatomy in ANATOMIES else None}


# ------------------------------------------------------------------------------------ symmetries (TTA)

def symmetries(size: Sequence[int]) -> list[tuple[int, bool]]:
    """(quarter turns, transpose) of the in-plane symmetries that keep an image of `size` = (H, W) its
    shape: all 8 for a square, the 4 that do not swap height and width otherwise."""
    every = [(turns, transpose) for transpose in (False, True) for turns in range(4)]
    if int(size[-2]) == int(size[-1]):
        return every
    return [(t, tr) for t, tr in every if (t % 2 == 1) == tr]  # an odd turn with a transpose keeps the shape


def symmetry(array: Tensor, turns: int, transpose: bool) -> Tensor:
    """k quarter turns of the last two axes, then a transpose: one of the 8 in-plane symmetries."""
    array = array.rot90(turns, (-2, -1))
    return array.transpose(-2, -1).contiguous() if transpose else array.contiguous()


def inverse_symmetry(array: Tensor, turns: int, transpose: bool) -> Tensor:
    """Undoes `symmetry(., turns, transpose)`."""
    if transpose:
        array = array.transpose(-2, -1)
    return array.rot90(-turns, (-2, -1)).contiguous()


def probabilities(logits: Tensor) -> Tensor:
    """(B, K, H, W) logits -> sigmoid (K = 1) or softmax over K."""
    logits = logits.float()
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)


def labels_from_probabilities(probs: Tensor) -> Tensor:
    """(B, K, H, W) -> labels (B, H, W): p > 0.5 for one class, the arg-max otherwise (as the logits' rule)."""
    return (probs[:, 0] > 0.5).long() if probs.shape[1] == 1 else probs.argmax(dim=1)


def symmetric_average(run: Callable[[Tensor], dict[str, Tensor]], images: Tensor) -> dict[str, Tensor]:
    """Probabilities averaged over the in-plane symmetries of `images` (B, C, H, W): `run(moved images)`
    returns {name: logits (B, K, H, W)} (e.g. one entry per z); each is mapped back before averaging."""
    chosen = symmetries(images.shape[-2:])
    total: dict[str, Tensor] = {}
    for turns, transpose in chosen:
        for name, logits in run(symmetry(images, turns, transpose)).items():
            back = inverse_symmetry(probabilities(logits), turns, transpose)
            total[name] = back if name not in total else total[name] + back
    return {name: value / len(chosen) for name, value in total.items()}


def tta_allowed(card: Mapping[str, Any]) -> bool:
    """Whether the card's condition says nothing about places in the image (its registry's fact)."""
    from inside_core.conditions import condition_of

    return bool(condition_of(card).orientation_free)


def require_tta(card: Mapping[str, Any]) -> None:
    """ValueError in one line unless test-time augmentation over the in-plane symmetries is allowed."""
    if not tta_allowed(card):
        from inside_core.conditions import condition_of

        raise ValueError(f"{card.get('name', 'this model')}: --tta turns and mirrors the image, but its condition "
                         f"'{condition_of(card).name}' names places in the image (they would not turn with it): "
                         "test-time augmentation refused")


# ------------------------------------------------------------------------------ chosen on validation

def choose_largest_component(model: torch.nn.Module, card: dict, data: str, split: str = "val",
                             seed: int | None = None) -> dict:
    """nnU-Net's choice on validation: the model evaluated on `split` of `data` (its card's split seed)
    without clean-up, then with each foreground label cleaned alone; a label is kept in the recipe when
    its mean Dice does not drop and its mean Hausdorff distance does not grow, and one of them improves.
    For a 4-class ACDC model the cardiac anatomy is then tried on top of the chosen labels and kept unless
    the mean Dice over LV, RV and MYO drops (it is a constraint a real scan needs, the RV never inside the LV,
    so no change on validation keeps it; filling a hole can move a Hausdorff distance by a fraction of a mm
    either way, so that is reported, not decisive). Returns the card's `inference` object (labels, the
    anatomy, what decided, the numbers)."""
    from inside_core.evaluate import evaluate_model

    plain = evaluate_model(model, {**card, "inference": {}}, data, split, seed)
    per_label: dict[str, dict[str, float]] = {}
    chosen: list[int] = []
    names = card.get("labels") or {}
    for label in range(1, int(card["architecture"].get("num_classes", 2))):
        cleaned = evaluate_model(model, {**card, "inference": {"largest_component": [label]}}, data, split, seed)
        before, after = _label_scores(plain, label, names), _label_scores(cleaned, label, names)
        per_label[before["name"]] = {"dice_without": before["dice"], "dice_with": after["dice"],
                                     "hd_mm_without": before["hd"], "hd_mm_with": after["hd"]}
        dice_ok, hd_ok = after["dice"] >= before["dice"], _not_worse(after["hd"], before["hd"])
        if dice_ok and hd_ok and (after["dice"] > before["dice"] or after["hd"] != before["hd"]):
            chosen.append(label)
    from inside_core.data.registry import card_dataset, dataset_kind

    anatomy = None
    if dataset_kind(card_dataset(card)).cardiac and int(card["architecture"].get("num_classes", 2)) == 4:
        recipe = {"largest_component": chosen}
        without = _mean_scores(evaluate_model(model, {**card, "inference": recipe}, data, split, seed))
        with_it = _mean_scores(evaluate_model(model, {**card, "inference": {**recipe, "anatomy": "cardiac"}},
                                              data, split, seed))
        per_label[ANATOMY_ROW] = {"dice_without": without["dice"], "dice_with": with_it["dice"],
                                  "hd_mm_without": without["hd"], "hd_mm_with": with_it["hd"]}
        if with_it["dice"] >= without["dice"]:
            anatomy = "cardiac"
    data_seed = seed if seed is not None else int(card.get("data", {}).get("seed", 0))
    return {"largest_component": chosen, **({"anatomy": anatomy} if anatomy else {}),
            "chosen_on": f"{split} split of {data} (split seed {data_seed}): a label is cleaned when its mean "
                         "Dice does not drop and its mean Hausdorff distance does not grow; the cardiac anatomy "
                         "is kept unless the mean Dice over LV, RV and MYO drops",
            "validation": per_label}


ANATOMY_ROW = "cardiac anatomy (mean of LV, RV, MYO)"


def _mean_scores(metrics: dict) -> dict[str, float | None]:
    """Mean Dice and HD over ACDC's structures and phases of `evaluate_model`'s result."""
    dice = [v for per_phase in metrics["dice"].values() for v in per_phase.values()]
    hd = [h for per_phase in metrics["hausdorff_mm"].values() for h in per_phase.values()
          if h is not None and np.isfinite(h)]
    return {"dice": round(float(np.mean(dice)), 4), "hd": round(float(np.mean(hd)), 2) if hd else None}


def _not_worse(after: float | None, before: float | None) -> bool:
    if before is None:  # undefined before (a structure missing): no claim either way
        return True
    return after is not None and after <= before


def _label_scores(metrics: dict, label: int, names: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    """Mean Dice and HD of one label from `evaluate_model`'s result (ACDC: over phases; others: Dice)."""
    from inside_core.evaluate_acdc import STRUCTURES

    structure = next((s for s, v in STRUCTURES.items() if v == label), None)
    if structure is not None and structure in metrics.get("dice", {}):
        dice = float(np.mean(list(metrics["dice"][structure].values())))
        hd_values = [h for h in metrics["hausdorff_mm"][structure].values() if h is not None and np.isfinite(h)]
        return {"name": structure, "dice": round(dice, 4),
                "hd": round(float(np.mean(hd_values)), 2) if hd_values else None}
    per_label = metrics.get("dice_per_label") or {}
    if isinstance(names, Mapping):
        name = str(names.get(str(label), label))
    else:  # a user's card lists its label names in order (background first)
        name = str(names[label]) if isinstance(names, Sequence) and label < len(names) else str(label)
    value = per_label.get(name, metrics.get("dice"))
    return {"name": name, "dice": round(float(value), 4), "hd": None}


def run_postprocess(args: argparse.Namespace) -> int:
    from inside_core.checkpoints import load_checkpoint, read_card, write_card

    try:
        model = load_checkpoint(args.checkpoint)
        card = model.card
        data = args.data or (card.get("data") or {}).get("root")
        split = args.split or (card.get("data") or {}).get("val_split") or "val"
        if not data:
            raise ValueError(f"{args.checkpoint}: its card names no training data; pass --data")
        recipe = choose_largest_component(model, card, data, split, args.seed)
        print(json.dumps(recipe, indent=2))
        if not args.dry_run:
            card = read_card(args.checkpoint)
            card["inference"] = recipe
            write_card(args.checkpoint, card)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "postprocess", help="choose the largest-component clean-up per label (and, for ACDC, the cardiac anatomy) "
                            "on validation; store it in the card",
        description="Evaluate a checkpoint on its validation split with and without keeping each label's largest "
                    "connected component, and record the labels it helps in the card's 'inference' object; for a "
                    "4-class ACDC model also try the cardiac anatomy (what MYO and LV enclose is LV; an RV piece "
                    "touching no heart is removed) and keep it where validation does not get worse.")
    parser.add_argument("--checkpoint", required=True, help="checkpoint (.safetensors, .json or stem)")
    parser.add_argument("--data", help="dataset folder (default: the card's training data root)")
    parser.add_argument("--split", help="split to choose on (default: the card's val_split, else val)")
    parser.add_argument("--seed", type=int, help="split seed (default: the card's)")
    parser.add_argument("--dry-run", action="store_true", help="print the choice, do not write the card")
    parser.set_defaults(func=run_postprocess)
