"""Issue 22 item 5 on the shipped wrapped models: `inside figures` and the notebooks' helpers take the wrapped
2-D MONAI BasicUNet (every figure kind draws it); for the 3-D model the table works and each picture kind
says in one line that it is for 2-D models (no traceback)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from inside_core.cli import main as cli_main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WRAPPED_2D = REPO / "checkpoints" / "clevr-seg-quadrant-basicunet-inside"
MODEL_3D = REPO / "checkpoints" / "cubes3d-unet-inside"
pytestmark = pytest.mark.skipif(not all(p.with_suffix(".safetensors").exists() for p in (WRAPPED_2D, MODEL_3D)),
                                reason="needs the shipped wrapped checkpoints")
PICTURES = ("qualitative", "sweep", "attention")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def clevr_root(tmp_path_factory) -> Path:
    from inside_core.data import generate_clevr_seg

    return generate_clevr_seg(tmp_path_factory.mktemp("clevr"), 10, seed=3, size=96, progress=False)


@pytest.fixture(scope="module")
def cubes_root(tmp_path_factory) -> Path:
    from inside_core.data.cubes3d import write_cubes3d

    return write_cubes3d(tmp_path_factory.mktemp("cubes") / "cubes", 10, seed=1000)


def figures(capsys, *arguments: str) -> tuple[int, str, str]:
    code = cli_main(["figures", *map(str, arguments)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


@pytest.mark.parametrize("kind, words", [
    ("qualitative", ("Ground truth", "INSIDE", "INSIDE attention")),
    ("sweep", ("INSIDE mask", "mean attention")),
    ("attention", ("top left", "mean attention", "attention mass")),
])
def test_each_figure_kind_draws_the_wrapped_2d_model(kind, words, clevr_root, tmp_path, capsys):
    out = tmp_path / f"{kind}.svg"
    code, _, err = figures(capsys, kind, "--out", out, "--checkpoints", WRAPPED_2D, "--data", clevr_root,
                           "--split", "all")
    assert code == 0, err
    text = out.read_text().replace("\N{MINUS SIGN}", "-")
    assert "<text" in text and all(word in text for word in words), [w for w in words if w not in text]


def test_the_table_takes_both_wrapped_models(clevr_root, cubes_root, tmp_path, capsys):
    code, out, err = figures(capsys, "table", "--out", tmp_path / "t2.md", "--checkpoints", WRAPPED_2D,
                             "--data", clevr_root, "--split", "all")
    assert code == 0, err
    row = next(line for line in out.splitlines() if "basicunet" in line)
    dice = float(row.split("|")[5].split("±")[0])
    assert 0.5 < dice <= 1.0  # a trained model on scenes of its own kind
    code, out, err = figures(capsys, "table", "--out", tmp_path / "t3.md", "--checkpoints", MODEL_3D,
                             "--data", cubes_root, "--split", "all")
    assert code == 0, err
    assert "Dice, z swapped" in out and "cubes3d-unet-inside" in out


@pytest.mark.parametrize("kind", PICTURES)
def test_the_picture_kinds_refuse_the_3d_model_in_one_line(kind, tmp_path, capsys):
    code, out, err = figures(capsys, kind, "--out", tmp_path / f"{kind}.png", "--checkpoints", MODEL_3D)
    assert code == 2 and not out and not (tmp_path / f"{kind}.png").exists()
    assert err.strip().splitlines() == [f"error: cubes3d-unet-inside reads 3-D volumes: the {kind} figure is for "
                                        "2-D models (the page shows a volume slice by slice; in code, "
                                        "inside_core.volume.VolumeExplorer)"]
    assert not (tmp_path / "cache").exists()  # refused before any data was generated


def test_the_notebooks_helpers_take_the_wrapped_2d_model(clevr_root):
    """What notebooks 02-04 call, on the wrapped BasicUNet: the Explorer (encode once, decode per z),
    condition_vector, the attention drawing helpers, the figures' data helpers, evaluation and the table."""
    from inside_core import load_checkpoint
    from inside_core.conditions import CONDITION_VALUES
    from inside_core.evaluate import comparison_table, evaluate_checkpoint
    from inside_core.explorer import Explorer, condition_vector
    from inside_core.figures import (
        default_sample_indices,
        draw_attention,
        draw_attention_ellipses,
        load_dataset,
        mean_attention,
        overlay_mask,
        quadrant_mass,
        qualitative_figure,
        row_from_item,
        show_image,
    )

    model = load_checkpoint(WRAPPED_2D)
    card = model.card
    dataset = load_dataset(card, clevr_root, split="all")
    indices = default_sample_indices(dataset, card["condition"])
    rows = [row_from_item(card["condition"], dataset[i]) for i in indices]
    assert qualitative_figure([model], rows[:2], width="single").axes

    item = dataset[indices[0]]
    explorer = Explorer(model, item["image"], item["mask"])
    height, width = explorer.image_size
    prediction = explorer.update(condition_vector(card, loc_x=-0.5, loc_y=-0.5))
    full = explorer.full_forward(condition_vector(card, loc_x=-0.5, loc_y=-0.5))
    assert np.abs(prediction.probabilities - full.probabilities).max() < 1e-5
    fig, axes = plt.subplots(1, 2)
    show_image(axes[0], explorer.image)
    overlay_mask(axes[0], prediction.labels)
    draw_attention(axes[1], prediction.conditioning[0], height, width, image=explorer.image)
    draw_attention_ellipses(axes[1], prediction.conditioning[0], height, width, max_channels=16)
    plt.close(fig)
    dice = explorer.dice(prediction)
    assert dice is not None and 0.0 <= dice <= 1.0

    # each sample's own quadrant (the rows hold an object there): the mask follows z; the Gaussians move with it
    for row in rows:
        row_explorer = Explorer(model, row.image, row.mask)
        assert row_explorer.dice(row_explorer.update(row.z)) > 0.5, row.label
    predictions = explorer.sweep([np.eye(4, dtype=np.float32)[i] for i in range(len(CONDITION_VALUES["quadrant"]))])
    masses = np.stack([quadrant_mass(mean_attention(p.conditioning[0], height, width)) for p in predictions])
    assert masses.shape == (4, 4) and np.allclose(masses.sum(axis=1), 1) and np.ptp(masses, axis=0).max() > 0.02

    metrics = evaluate_checkpoint(WRAPPED_2D, clevr_root, split="all")
    assert metrics["n"] == 10 and 0.5 < metrics["dice"] <= 1.0
    assert card["name"] in comparison_table([(card, metrics)], fmt="markdown")
