"""CLEVR-Seg: generator determinism, generator -> loader round trip, condition rules on hand-built scenes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inside_core.conditions import COLOURS, POINT_RADIUS_RANGE, QUADRANTS, SHAPES, SIZES
from inside_core.data import ClevrSegDataset, DataError, collate, generate_clevr_seg
from inside_core.data.clevr_seg import split_names


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate_clevr_seg(tmp_path_factory.mktemp("clevr") / "set", count=12, seed=3, size=64, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generator_is_byte_identical_for_a_seed(tmp_path):
    first = generate_clevr_seg(tmp_path / "a", count=3, seed=7, size=48, progress=False)
    second = generate_clevr_seg(tmp_path / "b", count=3, seed=7, size=48, progress=False)
    other = generate_clevr_seg(tmp_path / "c", count=3, seed=8, size=48, progress=False)
    assert _files(first) == _files(second)
    assert _files(first) != _files(other)


def test_generator_threads_write_the_same_files(tmp_path):
    """Scenes are written by several threads at once (the first page on a clean cache waits for them): the
    files must not depend on the thread count or the order the threads finish in."""
    one = generate_clevr_seg(tmp_path / "one", count=7, seed=5, size=48, progress=False, threads=1)
    three = generate_clevr_seg(tmp_path / "three", count=7, seed=5, size=48, progress=False, threads=3)
    assert len(_files(one)) > 7 * 3 and _files(one) == _files(three)


@pytest.mark.parametrize("size", [32, 48, 200])
def test_shadow_footprints_equal_the_whole_image_formula(size):
    """The generator computes each shadow footprint near the object only (the page's first start waits for
    it): bit for bit what the coverage over the whole image gives, for every shape and size."""
    from inside_core.data.generate_clevr_seg import _coverage, _footprints, _place_objects

    rows, columns = np.mgrid[0:size, 0:size].astype(np.float64)
    for seed in range(12):
        objects = _place_objects(np.random.default_rng([seed, size]), size, 7)
        whole = np.zeros((size, size))
        for obj in objects:
            half = obj["_half"]
            u = (columns - obj["_c"] - 0.35 * half) / half
            v = (rows - obj["_r"] - 0.30 * half) / half
            whole = np.maximum(whole, _coverage(obj["shape"], u, v, half))
        assert whole.any() and np.array_equal(_footprints(objects, rows, columns), whole)


def test_generator_writes_the_clevr_seg_layout(generated):
    names = sorted(p.stem for p in (generated / "images").glob("*.png"))
    assert len(names) == 12
    for name in names:
        scene = json.loads((generated / "scenes" / f"{name}.json").read_text())
        objects = scene["objects"]
        assert 3 <= len(objects) <= 7
        segs = sorted((generated / "segmentations" / name).glob("*.png"))
        assert len(segs) == len(objects)
        masks = [np.asarray(Image.open(p))[..., 0] for p in segs]
        union = np.zeros_like(masks[0], dtype=int)
        for obj, mask in zip(objects, masks, strict=True):
            assert set(np.unique(mask)) <= {64, 255}
            assert obj["color"] in COLOURS and obj["shape"] in SHAPES and obj["size"] in SIZES
            column, row = obj["pixel_coords"][:2]
            assert mask[row, column] == 255  # the centre lies on the object
            union += mask == 255
        assert union.max() == 1  # objects do not overlap


@pytest.mark.parametrize("condition", ["quadrant", "colour", "shape", "size", "point"])
def test_round_trip_items(generated, condition):
    dataset = ClevrSegDataset(generated, condition=condition, split="all", seed=0)
    assert len(dataset) == 12
    item = dataset[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype.is_floating_point
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["z"].shape == (dataset.cond_dim,)
    assert item["mask"].shape == (1, 64, 64)
    for index in range(len(dataset)):
        mask = dataset[index]["mask"]
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert mask.sum() > 0  # the target is never empty
    if condition != "point":
        assert np.all(dataset.z.sum(axis=1) == 1)


def test_data_loader_batches_with_collate(generated):
    dataset = ClevrSegDataset(generated, condition="point", split="all", image_size=32)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=5, collate_fn=collate)))
    assert batch["image"].shape == (5, 3, 32, 32) and batch["z"].shape == (5, 3)
    assert batch["mask"].shape == (5, 1, 32, 32) and len(batch["meta"]) == 5


def test_image_size_resizes_and_masks_stay_binary(generated):
    dataset = ClevrSegDataset(generated, condition="quadrant", split="all", image_size=(40, 30))
    item = dataset[1]
    assert item["image"].shape == (3, 40, 30) and item["mask"].shape == (1, 40, 30)
    assert set(np.unique(dataset.masks).tolist()) <= {0, 1}


def test_split_is_72_8_20_over_sorted_names():
    names = [f"n{i:04d}" for i in range(4000)][::-1]
    sizes = [len(split_names(names, split)) for split in ("train", "val", "test")]
    assert sizes == [2880, 320, 800]
    assert split_names(names, "train")[0] == "n0000"


def test_condition_value_depends_only_on_name_and_seed(generated):
    everything = ClevrSegDataset(generated, condition="point", split="all", seed=5)
    test = ClevrSegDataset(generated, condition="point", split="test", seed=5, image_size=32)
    by_name = {m["name"]: m["value"] for m in everything.meta}
    for meta in test.meta:
        assert meta["value"] == by_name[meta["name"]]
    other_seed = ClevrSegDataset(generated, condition="point", split="all", seed=6)
    assert [m["value"] for m in other_seed.meta] != [m["value"] for m in everything.meta]


# ------------------------------------------------------------------------------- hand-built scenes
SIZE = 100
# (column, row), colour, shape, size: one object per quadrant; the last sits on the H/2 line (-> bottom)
HAND_OBJECTS = [
    ((20, 20), "alizarin", "cube", "small"),
    ((80, 20), "nephritis", "sphere", "medium"),
    ((80, 80), "alizarin", "triangle", "large"),
    ((22, 50), "orange", "sphere", "medium"),
]


def _write_hand_scene(root: Path, name: str, objects=HAND_OBJECTS, rgba: bool = False) -> list[np.ndarray]:
    for sub in ("images", "scenes", f"segmentations/{name}"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    image = np.full((SIZE, SIZE, 4 if rgba else 3), 120, np.uint8)
    masks = []
    scene = {"objects": []}
    for k, ((column, row), colour, shape, size) in enumerate(objects):
        mask = np.zeros((SIZE, SIZE), bool)
        mask[row - 4 : row + 5, column - 4 : column + 5] = True
        masks.append(mask)
        image[mask, 0] = 200 + k
        scene["objects"].append({"pixel_coords": [column, row, 10.0], "color": colour, "shape": shape, "size": size})
        png = np.repeat(np.where(mask, 255, 64).astype(np.uint8)[..., None], 3, axis=2)
        Image.fromarray(png).save(root / "segmentations" / name / f"{k}.png")
    Image.fromarray(image).save(root / "images" / f"{name}.png")
    (root / "scenes" / f"{name}.json").write_text(json.dumps(scene))
    return masks


def _expected_objects(condition: str, value) -> list[int]:
    chosen = []
    for k, ((column, row), colour, shape, size) in enumerate(HAND_OBJECTS):
        if condition == "point":
            x, y = (2 * column + 1) / SIZE - 1, (2 * row + 1) / SIZE - 1
            hit = np.hypot(x - value[0], y - value[1]) <= value[2]
        else:
            quadrant = ("top" if row < SIZE / 2 else "bottom") + "_" + ("left" if column < SIZE / 2 else "right")
            hit = value == {"quadrant": quadrant, "colour": colour, "shape": shape, "size": size}[condition]
        if hit:
            chosen.append(k)
    return chosen


@pytest.mark.parametrize("condition", ["quadrant", "colour", "shape", "size", "point"])
def test_targets_follow_the_rule_of_each_condition(tmp_path, condition):
    masks = _write_hand_scene(tmp_path, "hand")
    seen = set()
    for seed in range(12):
        dataset = ClevrSegDataset(tmp_path, condition=condition, split="all", seed=seed, use_cache=False)
        item = dataset[0]
        value = item["meta"]["value"]
        chosen = _expected_objects(condition, value)
        assert chosen, "the drawn value must select at least one object"
        assert item["meta"]["objects"] == chosen
        expected = np.any([masks[k] for k in chosen], axis=0)
        assert np.array_equal(item["mask"][0].numpy().astype(bool), expected)
        if condition == "point":
            assert POINT_RADIUS_RANGE[0] <= value[2] <= POINT_RADIUS_RANGE[1]
            assert np.allclose(item["z"].numpy(), value)
        else:
            seen.add(value)
    if condition == "quadrant":
        assert seen == set(QUADRANTS)  # the object on the H/2 line counts as bottom_left


def test_rgba_image_loads_without_alpha(tmp_path):
    _write_hand_scene(tmp_path, "rgba", rgba=True)
    item = ClevrSegDataset(tmp_path, split="all", use_cache=False)[0]
    assert item["image"].shape == (3, SIZE, SIZE)


def test_bad_segmentation_value_raises_one_line_data_error(tmp_path):
    _write_hand_scene(tmp_path, "bad")
    path = tmp_path / "segmentations" / "bad" / "1.png"
    array = np.asarray(Image.open(path)).copy()
    array[0, 0] = 128
    Image.fromarray(array).save(path)
    with pytest.raises(DataError) as error:
        ClevrSegDataset(tmp_path, split="all", use_cache=False)
    assert str(path) in str(error.value) and "64" in str(error.value) and "\n" not in str(error.value)


def test_cache_is_used_and_rebuilt_after_a_source_change(tmp_path):
    root = tmp_path / "data"
    _write_hand_scene(root, "scene")
    first = ClevrSegDataset(root, condition="colour", split="all", seed=0)
    entries = list((tmp_path / "cache" / "arrays").glob("clevr-seg-*.npz"))
    assert len(entries) == 1
    again = ClevrSegDataset(root, condition="colour", split="all", seed=0)
    assert np.array_equal(first.images, again.images)
    # change the image: the cached arrays must not be reused
    image_path = root / "images" / "scene.png"
    image = np.asarray(Image.open(image_path)).copy()
    image[:10] = 0
    Image.fromarray(image).save(image_path)
    stat = image_path.stat()
    os.utime(image_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = ClevrSegDataset(root, condition="colour", split="all", seed=0)
    assert not np.array_equal(first.images, changed.images)
    assert np.all(changed.images[0, :10] == 0)
