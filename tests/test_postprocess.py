"""The inference recipe (inside_core.postprocess): largest connected component, the card's field, TTA."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from inside_core import build_model, load_checkpoint
from inside_core.cards import card_problems
from inside_core.checkpoints import CARD_METADATA_KEY, CheckpointError
from inside_core.conditions import get_condition
from inside_core.postprocess import (
    cardiac_anatomy,
    clean,
    clean_volumes,
    inverse_symmetry,
    largest_component,
    probabilities,
    require_tta,
    symmetric_average,
    symmetries,
    symmetry,
    tta_allowed,
)


def _heart() -> np.ndarray:
    """A (4, 24, 24) stack: an LV (3) disc through every slice, an RV (1) block beside it."""
    volume = np.zeros((4, 24, 24), np.int64)
    rows, cols = np.mgrid[:24, :24]
    volume[:, (rows - 12) ** 2 + (cols - 8) ** 2 <= 16] = 3
    volume[:, 6:18, 16:21] = 1
    return volume


def test_largest_component_removes_a_stray_blob_and_keeps_the_structure():
    clean = _heart()
    noisy = clean.copy()
    noisy[2, 0:2, 0:2] = 3  # a stray LV blob in one slice's corner
    noisy[1, 22:24, 22:24] = 1  # and a stray RV blob
    out = largest_component(noisy, [3])
    assert (out[2, 0:2, 0:2] == 0).all()  # the LV blob went to background
    assert (out[1, 22:24, 22:24] == 1).all()  # RV not listed: untouched
    assert (out[clean == 3] == 3).all() and (out[clean == 1] == 1).all()  # the structures kept whole
    assert (largest_component(noisy, [3, 1]) == clean).all()
    assert (noisy[2, 0:2, 0:2] == 3).all()  # the input is not changed


def test_clean_volumes_works_on_each_stacked_volume_in_3d():
    """A piece that is the largest of its own slice but not of its (patient, phase) stack is removed; the
    other stack's structure is never compared with this one's."""
    stack = _heart()
    stack[0] = 0
    stack[0, 0:2, 0:2] = 3  # slice 0's only LV: largest in 2-D, a blob in 3-D
    other = np.zeros_like(stack)
    other[:, 20:22, 20:22] = 3  # a small LV in another volume: its own largest component
    labels = np.concatenate([stack, other])
    metas = [{"patient": "p1", "phase": "ED", "slice_index": k} for k in range(4)] + \
            [{"patient": "p1", "phase": "ES", "slice_index": k} for k in range(4)]
    order = [3, 5, 0, 7, 1, 2, 6, 4]  # slices out of order: grouped and sorted by their meta
    out = clean_volumes(labels[order], [metas[i] for i in order], {"largest_component": [3]})
    restored = np.empty_like(out)
    restored[order] = out
    assert (restored[0] == 0).all() and (restored[1:4] == stack[1:4]).all()
    assert (restored[4:] == other).all()
    # lone images (no slice_index): each in 2-D, so the slice-0 piece stays
    alone = clean_volumes(labels[:4], [{} for _ in range(4)], {"largest_component": [3]})
    assert (alone[0, 0:2, 0:2] == 3).all()
    assert clean_volumes(labels, metas, {"largest_component": [], "anatomy": None}) is labels  # nothing done


def _ring_heart() -> np.ndarray:
    """A (4, 32, 32) stack in ACDC labels: an LV cavity (3) in a myocardium ring (2), an RV (1) against its
    left wall, and in slice 0 (the base) an RV alone: the RV continues above the LV."""
    volume = np.zeros((4, 32, 32), np.int64)
    rows, cols = np.mgrid[:32, :32]
    radius = np.hypot(rows - 16, cols - 18)
    volume[1:, 9:24, 3:11] = 1
    volume[1:, radius <= 9] = 2
    volume[1:, radius <= 6] = 3
    volume[0, 9:24, 3:11] = 1
    return volume


def test_the_fast_hole_finder_agrees_with_scipys_fill_holes():
    from scipy import ndimage

    from inside_core.postprocess import _holes

    rng = np.random.default_rng(0)
    for _ in range(500):
        mask = rng.random(tuple(rng.integers(1, 16, 2))) < rng.uniform(0.2, 0.95)
        assert np.array_equal(_holes(mask), ndimage.binary_fill_holes(mask) & ~mask)


def test_cardiac_anatomy_leaves_a_correct_heart_unchanged():
    heart = _ring_heart()
    assert np.array_equal(cardiac_anatomy(heart), heart)
    assert np.array_equal(cardiac_anatomy(heart[2]), heart[2])  # one image in 2-D too
    assert np.array_equal(cardiac_anatomy(heart[0]), heart[0])  # an RV alone in its image: no heart to judge by


def test_cardiac_anatomy_turns_what_the_ring_encloses_into_lv():
    heart = _ring_heart()
    wrong = heart.copy()
    wrong[2, 14:18, 16:20] = 1  # an RV blob inside the LV cavity
    wrong[3, 16, 18] = 0  # a hole in the cavity
    wrong[1, 12:15, 20:23] = 2  # a MYO blob in the cavity, and an RV blob inside that
    wrong[1, 13, 21] = 1
    out = cardiac_anatomy(wrong)
    assert np.array_equal(out[2:], heart[2:]) and (out[1][wrong[1] != 2] == heart[1][wrong[1] != 2]).all()
    assert (out[1, 12:15, 20:23] == 2).sum() == 8 and out[1, 13, 21] == 3  # MYO is not judged; its enclosed RV is
    assert (wrong[2, 14:18, 16:20] == 1).all()  # the input is not changed


def test_cardiac_anatomy_takes_an_rv_blob_in_the_cavity_even_where_the_ring_has_a_gap():
    heart = _ring_heart()
    heart[:, 15:18, 24:28] = 3  # a gap in the ring's right wall: the cavity reaches the background
    wrong = heart.copy()
    wrong[2, 14:19, 17:22] = 1  # an RV blob in the cavity, bordered by LV only
    wrong[3, 15:18, 19:28] = 1  # one reaching out through the gap: its border is still mostly LV
    assert np.array_equal(cardiac_anatomy(wrong), heart)
    assert np.array_equal(cardiac_anatomy(heart), heart)  # the true RV borders MYO and background: kept


def test_cardiac_anatomy_removes_an_rv_piece_touching_nothing_of_the_heart():
    heart = _ring_heart()
    wrong = heart.copy()
    wrong[2, 28:31, 28:31] = 1  # an RV piece in a corner, far from MYO and LV
    wrong[0, 0:2, 28:31] = 1  # and one in the basal slice, whose neighbour has no heart there
    out = cardiac_anatomy(wrong)
    assert np.array_equal(out, heart)  # the basal RV (no heart in its slice, over an RV that has one) stays
    gap = heart.copy()
    gap[2:, :, 10] = 0  # a one-pixel gap between the RV and the ring: still the heart's RV
    assert np.array_equal(cardiac_anatomy(gap), gap)
    lone = np.zeros_like(heart)
    lone[:, 5:9, 5:9] = 1
    assert np.array_equal(cardiac_anatomy(lone), lone)  # no heart at all: nothing to judge by


def test_clean_runs_the_anatomy_before_and_after_the_largest_component():
    """An RV blob inside the cavity larger than the true RV: the anatomy first makes it LV, so the largest
    component keeps the true RV; a MYO piece removed from the cavity leaves no hole."""
    heart = _ring_heart()
    wrong = heart.copy()
    wrong[2] = np.where(wrong[2] == 3, 1, wrong[2])  # the whole cavity of slice 2 labelled RV
    wrong[3, 15:17, 17:19] = 2  # a stray MYO piece in the cavity
    recipe = {"largest_component": [1, 2, 3], "anatomy": "cardiac"}
    assert np.array_equal(clean(wrong, recipe), heart)
    plain = clean(wrong, {"largest_component": [1, 2, 3]})
    assert (plain[3, 15:17, 17:19] == 0).all()  # without the anatomy: a hole in the cavity
    metas = [{"patient": "p", "phase": "ED", "slice_index": k} for k in range(4)]
    assert np.array_equal(clean_volumes(wrong, metas, recipe), heart)


def _acdc_card(**inference) -> dict:
    return {"name": "m", "dataset": "acdc", "condition": "phase_slice", "conditioning": "inside",
            "architecture": {"name": "unet", "conditioning": "inside", "num_classes": 4, "cond_dim": 2,
                             "image_size": [32, 32], "channels": [4, 8]}, "inference": inference}


@pytest.mark.parametrize("inference, words", [
    ({"largest_component": [3, 1]}, None),
    ({"largest_component": [3], "anatomy": "cardiac"}, None),
    ({"anatomy": "lungs"}, "'inference' 'anatomy' must be one of cardiac or absent"),
    ({"anatomy": ["cardiac"]}, "'anatomy' must be one of cardiac"),
    ({"largest_component": [3, 1], "chosen_on": "val", "validation": {"LV": {"dice_with": 0.9, "hd_mm_with": None}}},
     None),
    ({"largest_component": "all"}, "'inference' 'largest_component' must be a list of distinct labels"),
    ({"largest_component": [0]}, "must be a list of distinct labels 1-255"),
    ({"largest_component": [3, 3]}, "must be a list of distinct labels"),
    ({"largest_component": [True]}, "must be a list of distinct labels"),
    ({"largest_component": [4]}, "names label(s) [4] of a 4-class network"),
    ({"keep": [1]}, "has unknown key(s) ['keep']"),
    ({"validation": {"LV": {"dice": "1e400"}}}, "'validation' must map label names"),
])
def test_the_cards_inference_field_is_checked(inference, words):
    problems = card_problems(_acdc_card(**inference))
    if words is None:
        assert problems == []
    else:
        assert len(problems) == 1 and words in problems[0], problems


def test_the_cardiac_anatomy_needs_acdc_labels():
    card = _acdc_card(anatomy="cardiac")
    card["architecture"]["num_classes"] = 3
    problems = card_problems(card)
    assert len(problems) == 1 and "'anatomy' 'cardiac' needs ACDC's 4 labels, not a 3-class network" in problems[0]


def test_a_checkpoint_with_a_bad_inference_field_is_refused_in_one_line(tmp_path):
    card = _acdc_card(largest_component=[9])
    architecture = dict(card["architecture"])
    model = build_model(architecture.pop("name"), **architecture)
    save_file(dict(model.state_dict()), str(tmp_path / "m.safetensors"),
              metadata={"format": "pt", "name": "m", CARD_METADATA_KEY: json.dumps(card)})
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path / "m.safetensors")
    message = str(error.value)
    assert "\n" not in message and "m.safetensors" in message and "names label(s) [9]" in message


def test_symmetries_invert_and_cover_the_square():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    seen = set()
    for turns, transpose in symmetries((5, 5)):
        moved = symmetry(x, turns, transpose)
        seen.add(moved.numpy().tobytes())
        assert torch.equal(inverse_symmetry(moved, turns, transpose), x)
    assert len(seen) == 8
    rect = torch.rand(1, 1, 4, 6)
    kept = symmetries((4, 6))
    assert len(kept) == 4 and all(symmetry(rect, t, tr).shape == rect.shape for t, tr in kept)


def test_tta_of_an_exactly_equivariant_function_is_the_function():
    torch.manual_seed(0)
    images = torch.rand(3, 1, 16, 16)
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])  # symmetric under all 8
    weights = torch.stack([kernel * s for s in (0.3, -0.5, 1.1, 0.7)])[:, None]  # 4 classes

    def equivariant(x):
        return {"z": F.conv2d(x, weights, padding=1) * 3.0}

    averaged = symmetric_average(equivariant, images)["z"]
    assert torch.allclose(averaged, probabilities(equivariant(images)["z"]), atol=1e-6)

    ramp = torch.linspace(-3, 3, 16)

    def biased(x):  # depends on the column: not equivariant, so the average differs from it
        return {"z": F.conv2d(x, weights, padding=1) * 3.0 + ramp * torch.arange(4.0)[:, None, None]}

    plain = probabilities(biased(images)["z"])
    tta = symmetric_average(biased, images)["z"]
    assert (tta - plain).abs().max() > 0.05
    # while the averaged prediction itself turns with the image (a quarter turn and a transpose)
    for turns, transpose in ((1, False), (0, True)):
        turned = symmetric_average(biased, symmetry(images, turns, transpose))["z"]
        assert torch.allclose(turned, symmetry(tta, turns, transpose), atol=1e-5)


def test_tta_is_refused_for_a_condition_with_spatial_meaning():
    assert get_condition("phase_slice").orientation_free and get_condition("colour").orientation_free
    assert not get_condition("quadrant").orientation_free and not get_condition("point").orientation_free
    assert tta_allowed({"condition": "phase_slice"})
    require_tta({"condition": "phase_slice"})  # no error
    for condition in ("quadrant", "point"):
        with pytest.raises(ValueError) as error:
            require_tta({"name": "clevr-seg-x", "condition": condition})
        assert "\n" not in str(error.value) and f"'{condition}'" in str(error.value) and "refused" in str(error.value)


def test_inside_evaluate_tta_refused_for_a_quadrant_model_in_one_line(capsys):
    from inside_core.evaluate import run_evaluate

    args = argparse.Namespace(checkpoint="checkpoints/clevr-seg-quadrant-inside", data="unused", split="all",
                              seed=None, tta=True, no_largest_component=False, json=None, update_card=False)
    assert run_evaluate(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: clevr-seg-quadrant-inside") and "'quadrant'" in err


def _blob_predictions(tmp_path, monkeypatch, in_cavity: bool = False):
    """A phantom patient, and `evaluate` made to 'predict' its ground truth plus one stray LV blob per volume
    (`in_cavity`: an RV blob in the middle of the LV cavity of every slice instead)."""
    import inside_core.evaluate as evaluate
    from inside_core.data import generate_acdc

    root = generate_acdc(tmp_path / "acdc", patients=1, seed=5, progress=False)
    seen: dict = {}
    real_preloaded = evaluate._preloaded

    def preloaded(*args, **kwargs):
        dataset, images, z, masks, metas = real_preloaded(*args, **kwargs)
        seen["masks"], seen["metas"] = masks, metas
        return dataset, images, z, masks, metas

    def predict_variants(model, images, variants, batch_size=32, tta=False):
        labels = seen["masks"].clone().long()
        first = {}
        for i, m in enumerate(seen["metas"]):  # a blob in the first slice of each volume, far from the LV
            first.setdefault((m["patient"], m["phase"]), i)
        if in_cavity:
            for i in range(len(labels)):
                rows, cols = np.nonzero(labels[i].numpy() == 3)
                if rows.size > 12:
                    r, c = int(rows.mean()), int(cols.mean())
                    labels[i, r - 1:r + 2, c - 1:c + 2] = 1
            return {name: labels for name in variants}
        for i in first.values():
            labels[i, 0:2, 0:2] = 3
        return {name: labels for name in variants}

    monkeypatch.setattr(evaluate, "_preloaded", preloaded)
    monkeypatch.setattr(evaluate, "predict_variants", predict_variants)
    card = _acdc_card(largest_component=[3])
    card.update(image_size=[48, 48], spacing=2.5)
    return root, card


def test_evaluate_with_the_recipe_differs_from_without_on_a_prediction_with_a_blob(tmp_path, monkeypatch):
    """With the card's recipe the blob is removed (LV Dice 1, HD 0); without it, Dice < 1 and HD > 0."""
    import inside_core.evaluate as evaluate

    root, card = _blob_predictions(tmp_path, monkeypatch)
    with_recipe = evaluate.evaluate_slices(None, card, root, "all", 0)
    without = evaluate.evaluate_slices(None, {**card, "inference": {}}, root, "all", 0)
    assert with_recipe["inference"] == {"largest_component": [3], "anatomy": None, "tta": False}
    assert without["inference"]["largest_component"] == []
    for phase in ("ED", "ES"):
        assert with_recipe["dice"]["LV"][phase] == 1.0 and with_recipe["hausdorff_mm"]["LV"][phase] == 0.0
        assert without["dice"]["LV"][phase] < 1.0 and without["hausdorff_mm"]["LV"][phase] > 10.0
        assert with_recipe["dice"]["RV"][phase] == without["dice"]["RV"][phase] == 1.0


def test_the_choice_on_validation_takes_the_labels_that_help(tmp_path, monkeypatch):
    """Only the LV has a stray piece: cleaning it helps; the RV and MYO are the truth, so cleaning them can only
    cut true pieces (this phantom's at 2.5 mm has some), and they are not chosen."""
    from inside_core.postprocess import choose_largest_component

    root, card = _blob_predictions(tmp_path, monkeypatch)
    recipe = choose_largest_component(None, card, root, "all", 0)
    assert recipe["largest_component"] == [3]
    lv = recipe["validation"]["LV"]
    assert lv["dice_with"] == 1.0 > lv["dice_without"] and lv["hd_mm_with"] == 0.0 < lv["hd_mm_without"]
    for structure in ("RV", "MYO"):  # the truth itself has pieces apart here: cleaning would cut them, so no
        row = recipe["validation"][structure]
        assert row["dice_without"] == 1.0 and row["dice_with"] <= 1.0
        assert (row["dice_with"] < 1.0) == (row["hd_mm_with"] > 0.0)
    assert card_problems({**card, "inference": recipe}) == []  # what it writes, a reader accepts


def test_the_choice_on_validation_keeps_the_anatomy_where_it_helps(tmp_path, monkeypatch):
    """RV blobs inside the LV cavity: the anatomy turns them back into LV (Dice up, chosen); on the truth
    alone the anatomy's numbers decide too, and what it writes a reader accepts."""
    import inside_core.evaluate as evaluate
    from inside_core.postprocess import ANATOMY_ROW, choose_largest_component

    root, card = _blob_predictions(tmp_path, monkeypatch, in_cavity=True)
    recipe = choose_largest_component(None, card, root, "all", 0)
    row = recipe["validation"][ANATOMY_ROW]
    assert recipe["anatomy"] == "cardiac" and row["dice_with"] > row["dice_without"]
    assert card_problems({**card, "inference": recipe}) == []
    with_it = evaluate.evaluate_slices(None, {**card, "inference": recipe}, root, "all", 0)
    same_labels = {"largest_component": recipe["largest_component"]}
    without = evaluate.evaluate_slices(None, {**card, "inference": same_labels}, root, "all", 0)
    for phase in ("ED", "ES"):
        assert with_it["dice"]["LV"][phase] == 1.0 > without["dice"]["LV"][phase]
        assert with_it["dice"]["RV"][phase] == without["dice"]["RV"][phase]  # the true RV is left alone


class _Painter(torch.nn.Module):
    """A 'model' whose logits are fixed: label maps drawn by hand, seen through the Explorer."""

    image_size, in_channels, cond_dim = (24, 24), 1, 2

    def __init__(self, labels: np.ndarray, card: dict | None = None):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))
        self.logits = F.one_hot(torch.from_numpy(labels), 4).permute(2, 0, 1)[None].float() * 4.0
        if card is not None:
            self.card = card

    def encode(self, x):
        return x

    def decode(self, features, z):
        return argparse.Namespace(logits=self.logits.expand(features.shape[0], -1, -1, -1), conditioning=[])


def test_the_explorer_draws_the_cards_recipe():
    """The page's masks: labels cleaned as the card says, and the probabilities it draws from agree."""
    from inside_core.explorer import Explorer

    drawn = _heart()[0]
    drawn[0:2, 0:2] = 3  # a stray LV blob
    image = torch.rand(1, 24, 24)
    raw = Explorer(_Painter(drawn), image).update([0.0, 0.5])
    cleaned = Explorer(_Painter(drawn, {"inference": {"largest_component": [3]}}), image).update([0.0, 0.5])
    assert np.array_equal(raw.labels, drawn)
    assert np.array_equal(cleaned.labels, _heart()[0])
    assert np.array_equal(cleaned.probabilities.argmax(0), cleaned.labels)
    assert cleaned.probabilities[0, 0, 0] == 1.0 and cleaned.probabilities[3, 0, 0] == 0.0
    kept = cleaned.labels == raw.labels
    assert np.allclose(cleaned.probabilities[:, kept], raw.probabilities[:, kept])


def test_the_explorer_draws_the_cardiac_anatomy():
    """An RV blob inside the LV ring becomes LV on the page, labels and probabilities alike."""
    from inside_core.explorer import Explorer

    drawn = _ring_heart()[2]
    drawn[14:18, 16:20] = 1
    card = {"inference": {"largest_component": [], "anatomy": "cardiac"}}
    cleaned = Explorer(_Painter(drawn, card), torch.rand(1, 24, 24)).update([0.0, 0.5])
    assert np.array_equal(cleaned.labels, _ring_heart()[2])
    assert np.array_equal(cleaned.probabilities.argmax(0), cleaned.labels)
    assert (cleaned.probabilities[3, 14:18, 16:20] == 1.0).all()


def test_the_cardiac_study_reports_the_recipe_and_tta(tmp_path):
    """The study on one phantom patient with the shipped baseline: the card's recipe is applied (and scored
    without it too), and TTA makes the prediction of a turned or mirrored slice the turned prediction, so
    its turned/mirrored change is ~0 (only float summation order differs)."""
    import shutil

    from inside_core.acdc_study import SYMMETRIES, SYMMETRY_NAMES, run_study, study_tables
    from inside_core.data import generate_acdc

    root = generate_acdc(tmp_path / "acdc", patients=1, seed=1000, progress=False)
    runs = tmp_path / "runs"
    runs.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(f"checkpoints/acdc-phantom-baseline{suffix}", runs / f"acdc-phantom-baseline-seed0{suffix}")
    result = run_study(runs, root, "all", progress=False, tta=True)
    row = result["summary"]["acdc-phantom-baseline"]
    assert result["largest_component"] == {"acdc-phantom-baseline": [[1]]}  # the shipped card's choice
    assert 0.5 < row["dice_tta"] <= 1 and 0.5 < row["dice_raw"] <= 1
    assert abs(row["delta_symmetries_tta"][0]) < 2e-3
    table = study_tables(result)
    assert result["anatomy"] == {"acdc-phantom-baseline": ["cardiac"]}
    assert "turned/mirrored Δ with TTA" in table and "| acdc-phantom-baseline | RV, cardiac |" in table
    plain = run_study(runs, root, "all", progress=False, per_symmetry=True)
    assert "dice_tta" not in plain["summary"]["acdc-phantom-baseline"] and "not run" in study_tables(plain)
    # each of the 7 views alone; the study's 3-view change is the mean of its 3 views' (same volumes, same z)
    per_view = plain["summary"]["acdc-phantom-baseline"]["delta_per_symmetry"]
    assert sorted(per_view) == sorted(SYMMETRY_NAMES.values())
    three = np.mean([per_view[SYMMETRY_NAMES[v]]["all"][0] for v in SYMMETRIES])
    assert three == pytest.approx(plain["summary"]["acdc-phantom-baseline"]["delta_symmetries"][0], abs=1e-9)
    assert "| Model (Δ Dice; LV Δ) | turned 90° anticlockwise |" in study_tables(plain)


def _fake_scores(dice: float, hd: float) -> dict:
    structures = ("LV", "RV", "MYO")
    return {"dice": {s: {"ED": dice, "ES": dice} for s in structures},
            "hausdorff_mm": {s: {"ED": hd, "ES": hd} for s in structures}}


@pytest.mark.parametrize("dice_with, hd_with, kept", [(0.90, 10.2, True), (0.9001, 9.0, True), (0.899, 9.0, False)])
def test_the_anatomy_is_kept_unless_it_lowers_the_validation_dice(monkeypatch, dice_with, hd_with, kept):
    """A constraint (the RV never inside the LV): a Hausdorff distance that grows a little does not drop it,
    a lower Dice does."""
    import inside_core.evaluate as evaluate
    from inside_core.postprocess import choose_largest_component

    def fake(model, card, data, split, seed):
        anatomy = (card.get("inference") or {}).get("anatomy")
        return _fake_scores(dice_with, hd_with) if anatomy else _fake_scores(0.90, 10.0)

    monkeypatch.setattr(evaluate, "evaluate_model", fake)
    card = {"dataset": "acdc", "architecture": {"num_classes": 4}, "data": {"seed": 0}}
    recipe = choose_largest_component(None, card, "data", "val", 0)
    assert ("anatomy" in recipe) is kept
