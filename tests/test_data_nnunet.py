"""A user's own dataset in the nnU-Net v2 raw layout (inside_core.data.nnunet): folders built on the fly,
PNG and NIfTI, 2-D and 3-D, each variable type, the missing-value policies, validation of damaged folders
(every problem with its file and table line), and a never-seen folder that validates, trains and evaluates."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from inside_core.data.nnunet import NnUNetDataset, fit_slice, split_cases
from inside_core.data.nnunet_validate import validate_nnunet
from inside_core.data.validate import detect_format, validate

CONDITIONS = {
    "age": {"type": "continuous", "range": [20, 90], "unit": "years", "missing": "fill", "fill": 50},
    "sex": {"type": "categorical", "values": ["F", "M"]},
    "grade": {"type": "ordinal", "values": ["low", "mid", "high"]},
    "lesion": {"type": "label_centroid", "label": "lesion"},
    "lesion_size": {"type": "label_size", "label": "lesion"},
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))


def _case_arrays(rng, shape, slices=None):
    """An image in [0, 255] and a label map with one square 'lesion' (1) and 'other' (2) per slice."""
    full = shape if slices is None else (*shape, slices)
    image = rng.integers(0, 80, full).astype(np.uint8)
    label = np.zeros(full, np.uint8)
    r, c = rng.integers(2, shape[0] - 8), rng.integers(2, shape[1] - 8)
    label[r:r + 5, c:c + 5] = 1
    label[0:2, 0:2] = 2
    image[label == 1] = 220
    if slices is not None:
        label[..., 0] = 0  # the first slice has no lesion: the "drop" policy leaves it out
    return image, label


def build_folder(root: Path, cases: int = 10, ending: str = ".png", rgb: bool = False, slices: int | None = None,
                 shape=(24, 24), conditions=None, rows=None, spacing=(1.0, 1.0, 1.0), test_cases: int = 0) -> Path:
    """A small nnU-Net v2 raw folder with a conditions table."""
    rng = np.random.default_rng(0)
    conditions = CONDITIONS if conditions is None else conditions
    channels = {"0": "R", "1": "G", "2": "B"} if rgb else {"0": "MRI"}
    for folder in ("imagesTr", "labelsTr") + (("imagesTs", "labelsTs") if test_cases else ()):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = [f"case{k:03d}" for k in range(cases + test_cases)]
    for k, name in enumerate(names):
        images, labels = ("imagesTr", "labelsTr") if k < cases else ("imagesTs", "labelsTs")
        image, label = _case_arrays(rng, shape, slices)
        if ending == ".png":
            pixels = np.stack([image, image // 2, image // 3], -1) if rgb else image
            Image.fromarray(pixels).save(root / images / f"{name}_0000.png")
            Image.fromarray(label).save(root / labels / f"{name}.png")
        else:
            affine = np.diag([*spacing[:image.ndim], 1.0] + [1.0] * (3 - image.ndim))
            nib.save(nib.Nifti1Image(image.astype(np.float32), affine), root / images / f"{name}_0000{ending}")
            nib.save(nib.Nifti1Image(label.astype(np.int16), affine), root / labels / f"{name}{ending}")
    meta = {"channel_names": channels, "labels": {"background": 0, "lesion": 1, "other": 2},
            "numTraining": cases, "file_ending": ending, "conditions": conditions}
    (root / "dataset.json").write_text(json.dumps(meta))
    if rows is None:
        rows = [[n, str(20 + 5 * k), "FM"[k % 2], ("low", "mid", "high")[k % 3]] for k, n in enumerate(names)]
    (root / "conditions.csv").write_text("case,age,sex,grade\n" + "".join(",".join(r) + "\n" for r in rows))
    return root


# ------------------------------------------------------------------------------------------- loading
def test_png_grey_2d(tmp_path):
    root = build_folder(tmp_path / "d")
    train = NnUNetDataset(root, "train", image_size=32)
    sizes = [len(NnUNetDataset(root, s, image_size=32).cases) for s in ("train", "val", "test")]
    assert sizes == [7, 1, 2]  # 72/8/20 by case
    item = train[0]
    assert item["image"].shape == (1, 32, 32) and item["mask"].shape == (32, 32)
    assert item["z"].shape == (train.cond_dim,) == (1 + 1 + 2 + 1 + 2 + 1,)
    assert set(np.unique(train.masks)) <= {0, 1, 2} and train.num_classes == 3
    meta = item["meta"]
    assert set(meta["values"]) == {"age", "sex", "grade", "lesion_x", "lesion_y", "lesion_size"}
    # the z of the meta's values: the condition's own encoding
    np.testing.assert_allclose(train.condition.encode(**meta["values"]), item["z"].numpy(), atol=1e-6)
    # the centroid is the lesion's, in normalised coordinates of the fitted image
    rows, columns = np.nonzero(train.masks[0] == 1)
    assert meta["values"]["lesion_x"] == pytest.approx((2 * columns.mean() + 1) / 32 - 1, abs=1e-5)


def test_png_rgb_and_subset(tmp_path):
    root = build_folder(tmp_path / "d", rgb=True)
    data = NnUNetDataset(root, "all", image_size=24, variables=["sex"])
    assert data.images.shape[1] == 3 and data.in_channels == 3
    assert data.cond_dim == 2 and list(data.condition.variables) == ["sex"]


def test_nifti_3d_slices_and_positions(tmp_path):
    conditions = {"slice": {"type": "slice_position"}, "lesion": {"type": "label_centroid", "label": "lesion"}}
    root = build_folder(tmp_path / "d", cases=4, ending=".nii.gz", slices=5, conditions=conditions)
    data = NnUNetDataset(root, "all", image_size=32)
    # 5 slices per case, the first without the lesion is dropped ("missing": "drop")
    assert len(data) == 4 * 4
    positions = sorted({m["values"]["slice"] for m in data.meta})
    assert positions == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert data.images.min() >= 0 and data.images.max() <= 1  # normalised per case


def test_nifti_2d_keeps_aspect_ratio(tmp_path):
    root = build_folder(tmp_path / "d", cases=3, ending=".nii.gz", shape=(24, 12), spacing=(1.0, 1.0),
                        conditions={"sex": CONDITIONS["sex"]})
    data = NnUNetDataset(root, "all", image_size=32)
    placement = data.meta[0]["placement"]
    assert (placement["height"], placement["width"]) == (32, 16)  # padded, not squashed
    assert data.images[0, 0, :, :8].max() == 0 and data.images[0, 0, :, -8:].max() == 0


def test_fit_slice_uses_spacing():
    image, mask = np.ones((1, 10, 10), np.float32), np.ones((10, 10), np.uint8)
    out, fitted, placement = fit_slice(image, mask, (2.0, 1.0), (20, 20))  # rows twice as far apart
    assert (placement["height"], placement["width"]) == (20, 10)
    assert fitted.sum() == 200 and out[0, :, :5].max() == 0


def test_missing_policies(tmp_path):
    rows = [[f"case{k:03d}", "" if k == 1 else "40", "" if k == 2 else "F", "low"] for k in range(6)]
    root = build_folder(tmp_path / "d", cases=6, rows=rows)
    data = NnUNetDataset(root, "all", image_size=24)
    cases = [m["case"] for m in data.meta]
    assert "case002" not in cases  # sex missing, policy drop: left out
    filled = next(i for i, m in enumerate(data.meta) if m["case"] == "case001")
    assert data.z[filled][1] == 1.0 and data.z[filled][0] == pytest.approx(30 / 70)  # fill 50 + missing bit


def test_each_table_type_and_built_in_has_its_part_of_z(tmp_path):
    """z = age, its missing bit, sex one-hot, grade index / (n - 1), lesion (x, y), lesion size, in that order."""
    root = build_folder(tmp_path / "d")
    data = NnUNetDataset(root, "all", image_size=32)
    k = next(i for i, m in enumerate(data.meta) if m["case"] == "case001")  # age 25, sex M, grade mid
    z, values, mask = data.z[k], data.meta[k]["values"], data.masks[k]
    np.testing.assert_allclose(z[:5], [(25 - 20) / 70, 0.0, 0.0, 1.0, 0.5], atol=1e-6)
    rows, columns = np.nonzero(mask == 1)
    np.testing.assert_allclose(z[5:7], [(2 * columns.mean() + 1) / 32 - 1, (2 * rows.mean() + 1) / 32 - 1], atol=1e-5)
    assert z[7] == pytest.approx(np.sqrt(rows.size / np.pi) / 16, abs=1e-5) == values["lesion_size"]
    last = next(i for i, m in enumerate(data.meta) if m["case"] == "case002")  # grade high: the top of the scale
    assert data.z[last][4] == 1.0 and data.z[next(i for i, m in enumerate(data.meta) if m["case"] == "case000")][4] == 0


def test_built_ins_with_the_fill_policy_keep_lesion_free_slices(tmp_path):
    conditions = {"slice": {"type": "slice_position"},
                  "lesion": {"type": "label_centroid", "label": "lesion", "missing": "fill"},
                  "lesion_size": {"type": "label_size", "label": "lesion", "missing": "fill"}}
    root = build_folder(tmp_path / "d", cases=2, ending=".nii.gz", slices=3, conditions=conditions)
    data = NnUNetDataset(root, "all", image_size=24)
    assert len(data) == 2 * 3 and data.cond_dim == 1 + 3 + 2  # nothing dropped; a missing bit per built-in
    first = [i for i, m in enumerate(data.meta) if m["slice_index"] == 0]  # the slices without the lesion
    np.testing.assert_array_equal(data.z[first], [[0, 0, 0, 1, 0, 1]] * 2)  # the defaults (0, 0), 0 + missing
    assert all(data.z[i][3] == 0 and data.z[i][5] == 0 for i in range(len(data)) if i not in first)


def test_missing_rows_follow_the_policy(tmp_path):
    """A case without a table row has every table variable missing: dropped by "drop", filled by "fill"."""
    rows = [[f"case{k:03d}", "40", "F", "low"] for k in range(10) if k != 4]
    root = build_folder(tmp_path / "d", rows=rows)
    assert "case004" not in {m["case"] for m in NnUNetDataset(root, "all", image_size=24).meta}  # sex: drop
    filled = {"age": CONDITIONS["age"], "sex": {**CONDITIONS["sex"], "missing": "fill", "fill": "M"}}
    root = build_folder(tmp_path / "f", rows=rows, conditions=filled)
    data = NnUNetDataset(root, "all", image_size=24)
    k = next(i for i, m in enumerate(data.meta) if m["case"] == "case004")
    np.testing.assert_allclose(data.z[k], [30 / 70, 1.0, 0.0, 1.0, 1.0], atol=1e-6)  # fills 50, M; both bits
    report = validate(root)
    assert report.ok and any("no row for case 'case004' (every variable filled)" in p.line()
                             for p in report.problems)


def test_loader_bad_inputs_name_the_file(tmp_path):
    """What validation reports, the loader stops at, naming the file (and the table line)."""
    from inside_core.data.errors import DataError

    root = build_folder(tmp_path / "a")
    (root / "labelsTr" / "case004.png").unlink()
    with pytest.raises(DataError, match=r"case004_0000.png: image without a label: labelsTr/case004.png missing"):
        NnUNetDataset(root, "all", image_size=24)
    root = build_folder(tmp_path / "b")
    Image.fromarray(np.full((24, 24), 9, np.uint8)).save(root / "labelsTr" / "case006.png")
    with pytest.raises(DataError, match=r"case006.png: label values 9 are not in dataset.json's labels"):
        NnUNetDataset(root, "all", image_size=24)
    rows = [[f"case{k:03d}", "200" if k == 3 else "40", "F", "low"] for k in range(10)]
    root = build_folder(tmp_path / "c", rows=rows)
    with pytest.raises(DataError, match=r"conditions.csv:5: age: 200 is outside the declared range \[20, 90\]"):
        NnUNetDataset(root, "all", image_size=24)


def test_3d_bad_inputs_listed(tmp_path):
    conditions = {"slice": {"type": "slice_position"}, "lesion": {"type": "label_centroid", "label": "lesion"}}
    root = build_folder(tmp_path / "d", cases=4, ending=".nii.gz", slices=4, conditions=conditions)
    affine = np.eye(4)
    labels = [np.asarray(nib.load(root / "labelsTr" / f"case00{k}.nii.gz").dataobj) for k in range(4)]
    image = np.asarray(nib.load(root / "imagesTr" / "case000_0000.nii.gz").dataobj)
    nib.save(nib.Nifti1Image(image[..., :3], affine), root / "imagesTr" / "case000_0000.nii.gz")  # 3 slices, label 4
    fractional = labels[1].astype(np.float32)
    fractional[0, 0, 1] = 0.5
    nib.save(nib.Nifti1Image(fractional, affine), root / "labelsTr" / "case001.nii.gz")
    unknown = labels[2].astype(np.int16)
    unknown[0, 0, 2] = 7
    nib.save(nib.Nifti1Image(unknown, affine), root / "labelsTr" / "case002.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros_like(labels[3], np.int16), affine), root / "labelsTr" / "case003.nii.gz")
    report = validate_nnunet(root)
    lines = [p.line() for p in report.problems]
    folder = root / "labelsTr"
    assert f"error: {folder / 'case000.nii.gz'}: label shape 4x24x24 differs from the image's 3x24x24" in lines
    assert f"error: {folder / 'case001.nii.gz'}: label values must be integers" in lines
    assert any(line.startswith(f"error: {folder / 'case002.nii.gz'}: label values 7 are not") for line in lines)
    assert any(line.startswith(f"warning: {folder / 'case003.nii.gz'}: lesion: label 'lesion' is absent from this "
                               "case, which is left out (missing: drop)") for line in lines), lines
    assert len(report.errors) == 3


def test_policy_warnings_name_the_line(tmp_path):
    rows = [[f"case{k:03d}", "40", "" if k == 2 else "F", "low"] for k in range(10)]
    report = validate(build_folder(tmp_path / "d", rows=rows))
    assert report.ok
    assert f"warning: {tmp_path / 'd' / 'conditions.csv'}:4: sex missing: case 'case002' is left out (missing: drop)" \
        in [p.line() for p in report.problems]


def test_images_ts_is_the_test_split(tmp_path):
    root = build_folder(tmp_path / "d", cases=10, test_cases=3)
    assert [c for _, c in NnUNetDataset(root, "test", image_size=24).cases] == ["case010", "case011", "case012"]
    assert len(split_cases([f"c{k}" for k in range(10)], ["t"], "val", 0)) == 1


# ---------------------------------------------------------------------------------------- validation
def test_good_folder_validates(tmp_path):
    root = build_folder(tmp_path / "d")
    assert detect_format(root) == "nnunet"
    report = validate(root)
    assert report.ok and report.checked == 10, [p.line() for p in report.problems]


def test_every_problem_listed_with_file_and_line(tmp_path):
    rows = [["case000", "abc", "F", "low"], ["case001", "200", "X", "mid"], ["ghost", "30", "F", "low"],
            ["case003", "30", "F", "top"], ["case003", "31", "F", "low"]]
    rows += [[f"case{k:03d}", "40", "M", "high"] for k in range(4, 10)]
    root = build_folder(tmp_path / "d", rows=rows)
    (root / "labelsTr" / "case004.png").unlink()  # image without label
    (root / "imagesTr" / "case005_0000.png").unlink()  # label without image
    Image.fromarray(np.full((24, 24), 9, np.uint8)).save(root / "labelsTr" / "case006.png")  # unknown value
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "labelsTr" / "case007.png")  # wrong size
    report = validate_nnunet(root)
    lines = [p.line() for p in report.errors]
    table = str(root / "conditions.csv")

    def has(path: str, text: str) -> bool:
        return any(f"{path}: " in line and text in line for line in lines)

    assert has(f"{table}:2", "age: 'abc' is not a number")
    assert has(f"{table}:3", "age: 200 is outside the declared range")
    assert has(f"{table}:3", "sex: 'X' is not one of F, M")
    assert has(f"{table}:4", "unknown case id 'ghost'")
    assert has(f"{table}:5", "grade: 'top' is not one of low, mid, high")
    assert has(f"{table}:6", "case 'case003' again (first on line 5)")
    assert has(table, "no row for case 'case002'")
    assert has(str(root / "imagesTr" / "case004_0000.png"), "image without a label")
    assert has(str(root / "labelsTr" / "case005.png"), "label without an image")
    assert has(str(root / "labelsTr" / "case006.png"), "label values 9 are not in dataset.json's labels")
    assert has(str(root / "labelsTr" / "case007.png"), "label shape 10x10 differs from the image's 24x24")
    assert has(str(root / "dataset.json"), "numTraining is 10 but imagesTr/ holds 9 cases")
    assert not report.ok


def test_bad_dataset_json_and_missing_channel(tmp_path):
    root = build_folder(tmp_path / "d", ending=".nii.gz", cases=3)
    meta = json.loads((root / "dataset.json").read_text())
    meta["channel_names"] = {"0": "T1", "1": "T2"}
    meta["conditions"]["size"] = {"type": "label_size", "label": "tumour"}
    (root / "dataset.json").write_text(json.dumps(meta))
    lines = [p.line() for p in validate_nnunet(root).errors]
    assert any("dataset.json: condition 'size': label 'tumour' is not in" in line for line in lines)
    assert sum("case00" in line and "_0001.nii.gz: channel 1 (T2) of case" in line for line in lines) == 3


def test_cli_validate_exit_codes(tmp_path, capsys):
    from inside_core.cli import main

    good = build_folder(tmp_path / "good")
    assert main(["data", "validate", str(good)]) == 0
    bad = build_folder(tmp_path / "bad", rows=[["case000", "abc", "F", "low"]])
    assert main(["data", "validate", str(bad)]) == 1
    assert f"{bad / 'conditions.csv'}:2: age: 'abc' is not a number" in capsys.readouterr().out


# ------------------------------------------------------------------------- a folder never seen before
def test_new_folder_validates_trains_evaluates(tmp_path):
    from inside_core.checkpoints import load_checkpoint
    from inside_core.conditions import condition_of
    from inside_core.evaluate import evaluate_checkpoint
    from inside_core.train import load_config, train

    root = build_folder(tmp_path / "never-seen", cases=12)
    assert validate(root).ok
    config = load_config(Path(__file__).parents[1] / "configs" / "your-data-inside.yaml")
    config["data"].update(root=str(root), image_size=32)
    config["model"].update(channels=[4, 8])
    config["train"].update(epochs=1, batch_size=8, num_threads=1, max_minutes=None)
    path = train(config, tmp_path / "run", quiet=True)
    model = load_checkpoint(path)
    card = model.card
    assert card["dataset"] == "nnunet" and card["condition"] == "table"
    assert list(card["condition_spec"]["variables"]) == list(CONDITIONS)
    assert condition_of(card).cond_dim == card["architecture"]["cond_dim"] == 8
    assert card["architecture"]["num_classes"] == 3 and card["labels"] == ["background", "lesion", "other"]
    metrics = evaluate_checkpoint(path, root, split="test")
    assert set(metrics["dice_per_label"]) == {"lesion", "other"} and metrics["n"] == 3
    assert 0.0 <= metrics["dice"] <= 1.0


def test_lesions_example_validates(tmp_path):
    from inside_core.data.generate_lesions import generate_lesions

    root = generate_lesions(tmp_path / "lesions", 6, seed=3, size=48)
    assert validate(root).ok
    data = NnUNetDataset(root, "all", image_size=48)
    assert len(data) == 6 and data.cond_dim == 2 + 1 + 2 + 2
    assert all(data.masks[i].any() for i in range(6))  # one target lesion per case


def test_dashboard_source(tmp_path):
    from app.table_source import TableSource, folder_condition

    conditions = {"slice": {"type": "slice_position"}, **CONDITIONS}
    root = build_folder(tmp_path / "d", cases=4, ending=".nii.gz", slices=3, conditions=conditions)
    condition = folder_condition(root)
    assert [c.key for c in condition.controls][:3] == ["slice", "age", "sex"]
    source = TableSource(root, "all", image_size=32)
    assert len(source) == 4 and source.num_slices(0) == 3 and source.position(0, 2) == 1.0
    view = source.view(0, {"slice": 0}, True, None)
    assert view.image.shape == (1, 32, 32) and view.ground_truth.shape == (32, 32)  # every slice, even lesion-free
    own = source.own_values(0, 1)
    assert own["sex"] == "F" and own["lesion_x"] is not None and own["slice"] == 0.5
    assert own_values_encode(condition, own).shape == (condition.cond_dim,)


def own_values_encode(condition, values):
    return condition.encode(**values)


# ------------------------------------------------------------------------------------- import / export
def test_import_plain_folder(tmp_path):
    from inside_core.cli import main

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(1)
    for k in range(5):
        image, label = _case_arrays(rng, (20, 20))
        Image.fromarray(image).save(images / f"scan {k}.png")
        Image.fromarray(((label == 1) * 255).astype(np.uint8)).save(masks / f"scan {k}_mask.png")  # black / white
    rows = "".join(f"scan {k},{30 + k},{'AB'[k % 2]}\n" if k != 3 else "scan 3,,B\n" for k in range(5))
    (tmp_path / "table.csv").write_text("file,age,site\n" + rows)
    out = tmp_path / "imported"
    assert main(["data", "import", "--images", str(images), "--masks", str(masks), "--table",
                 str(tmp_path / "table.csv"), "--out", str(out)]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "label_1": 1}
    age = {"type": "continuous", "range": [30.0, 34.0], "missing": "fill", "fill": 31.5}  # the median of 30, 31, 32, 34
    assert meta["conditions"]["age"] == age
    assert meta["conditions"]["site"] == {"type": "categorical", "values": ["A", "B"]}
    assert (out / "imagesTr" / "scan_0_0000.png").exists() and validate(out).ok
    assert len(NnUNetDataset(out, "all", image_size=20)) == 5


def test_export_clevr_seg_round_trip(tmp_path):
    from inside_core.data import ClevrSegDataset, generate_clevr_seg
    from inside_core.data.nnunet_convert import export_dataset

    source = generate_clevr_seg(tmp_path / "clevr", 12, seed=2, size=48)
    out = export_dataset("clevr-seg", source, tmp_path / "exported", condition="quadrant")
    assert validate(out).ok
    native = ClevrSegDataset(source, "quadrant", "all")
    exported = NnUNetDataset(out, "all", image_size=48)
    order = {m["case"]: i for i, m in enumerate(exported.meta)}
    index = [order[m["name"]] for m in native.meta]
    np.testing.assert_array_equal(exported.z[index], native.z)  # categorical one-hot = the quadrant one-hot
    np.testing.assert_array_equal(exported.masks[index], native.masks)
    np.testing.assert_allclose(exported.images[index], native.images.transpose(0, 3, 1, 2) / 255.0, atol=1e-6)
    assert len(NnUNetDataset(out, "test", image_size=48).cases) == len(ClevrSegDataset(source, "quadrant", "test"))
