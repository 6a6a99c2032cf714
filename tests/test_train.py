"""Training: a tiny config trains in seconds, resume equals an uninterrupted run, DDP with 2 processes runs,
and every config under configs/ is valid."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import inside_core.train as train_module
from inside_core import load_checkpoint
from inside_core.networks import build_model
from inside_core.train import load_config, train

REPO = Path(__file__).resolve().parents[1]
GENERATE = "inside data clevr-seg --out {root} --count 40 --seed 3 --size 32 --quiet"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """40 generated CLEVR-Seg scenes at 32x32 (28 train / 3 val / 9 test)."""
    from inside_core.data.generate_clevr_seg import generate_clevr_seg

    root = tmp_path_factory.mktemp("data") / "clevr"
    generate_clevr_seg(root, 40, seed=3, size=32, progress=False)
    return root


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))


def tiny_config(root: Path, tmp_path: Path, epochs: int = 3, **train_options) -> Path:
    config = {
        "name": "tiny-inside", "dataset": "clevr-seg", "condition": "quadrant",
        "data": {"root": str(root), "generate": GENERATE.format(root=root), "seed": 0},
        "model": {"name": "encoder_decoder", "conditioning": "inside", "cond_dim": 4, "image_size": [32, 32],
                  "widths": [4, 4, 8]},
        "train": {"loss": "focal+dice", "batch_size": 8, "lr": 0.003, "epochs": epochs, "seed": 7,
                  "num_threads": 1, **train_options},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def read_log(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_tiny_config_trains_and_loss_falls(tiny_data, tmp_path):
    config = load_config(tiny_config(tiny_data, tmp_path, epochs=3))
    best = train(config, tmp_path / "out", command="inside train --config tiny.yaml", quiet=True)
    log = read_log(tmp_path / "out" / "tiny-inside.csv")
    assert [int(row["epoch"]) for row in log] == [1, 2, 3]
    assert float(log[-1]["train_loss"]) < float(log[0]["train_loss"])
    model = load_checkpoint(best)
    card = model.card
    assert card["name"] == "tiny-inside" and card["conditioning"] == "inside" and card["image_size"] == [32, 32]
    assert card["seed"] == 7 and card["epochs"] == 3 and card["training_time_s"] > 0
    assert card["command"] == "inside train --config tiny.yaml" and "validation" in card["metrics"]
    assert card["data"]["generate"].startswith("inside data clevr-seg")


def final_weights(out: Path) -> dict:
    return {k: v for k, v in load_file(str(out / "resume" / "tiny-inside.safetensors")).items()
            if k.startswith("model.")}


def test_resume_after_interruption_equals_uninterrupted(tiny_data, tmp_path, monkeypatch):
    config_path = tiny_config(tiny_data, tmp_path, epochs=4)
    train(load_config(config_path), tmp_path / "straight", quiet=True)

    real_run_epoch = train_module.run_epoch
    calls = {"train": 0}

    def killed_in_epoch_3(model, loader, loss_fn, device, optimizer=None, progress=None, augment=None):
        if optimizer is not None:
            calls["train"] += 1
            if calls["train"] == 3:
                raise KeyboardInterrupt("killed")
        return real_run_epoch(model, loader, loss_fn, device, optimizer, progress, augment)

    monkeypatch.setattr(train_module, "run_epoch", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(config_path), tmp_path / "resumed", quiet=True)
    monkeypatch.setattr(train_module, "run_epoch", real_run_epoch)
    assert len(read_log(tmp_path / "resumed" / "tiny-inside.csv")) == 2
    train(load_config(config_path), tmp_path / "resumed", quiet=True,
          resume=str(tmp_path / "resumed" / "resume" / "tiny-inside.safetensors"))

    straight, resumed = read_log(tmp_path / "straight" / "tiny-inside.csv"), \
        read_log(tmp_path / "resumed" / "tiny-inside.csv")
    assert len(straight) == len(resumed) == 4
    for a, b in zip(straight, resumed, strict=True):
        for key in ("train_loss", "val_loss", "val_dice"):
            assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-5)
    weights_a, weights_b = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    for key, value in weights_a.items():
        torch.testing.assert_close(weights_b[key], value, atol=1e-6, rtol=1e-5)


def test_early_stopping_and_time_budget(tiny_data, tmp_path):
    config = load_config(tiny_config(tiny_data, tmp_path, epochs=50, patience=1, min_delta=100.0))
    train(config, tmp_path / "out", quiet=True)
    log = read_log(tmp_path / "out" / "tiny-inside.csv")
    assert len(log) == 2  # epoch 1 sets the best; epoch 2 cannot improve by 100
    card = load_checkpoint(tmp_path / "out" / "tiny-inside").card
    assert card["stopped"].startswith("early stopping") and card["best_epoch"] == 1
    config = load_config(tiny_config(tiny_data, tmp_path, epochs=50, max_minutes=1e-6))
    train(config, tmp_path / "budget", quiet=True)
    assert len(read_log(tmp_path / "budget" / "tiny-inside.csv")) == 1


def test_compile_option_compiles_the_training_passes_only(tiny_data, tmp_path, monkeypatch):
    """train.compile / --compile: torch.compile wraps the training passes (here with dynamo's eager backend:
    the real tracing of the custom autograd functions, without minutes of code generation); off by default."""
    calls = []
    real_compile = torch.compile

    def recording_compile(model, **options):
        compiled = real_compile(model, backend="eager")
        calls.append(compiled)
        return compiled

    monkeypatch.setattr(torch, "compile", recording_compile)
    config = load_config(tiny_config(tiny_data, tmp_path, epochs=1))
    assert config["train"]["compile"] is False
    train(config, tmp_path / "eager", quiet=True)
    assert calls == []
    config["train"]["compile"] = True
    best = train(config, tmp_path / "compiled", quiet=True)
    assert len(calls) == 1
    eager_log, compiled_log = read_log(tmp_path / "eager" / "tiny-inside.csv"), read_log(best.with_suffix(".csv"))
    # the same training (up to float rounding of the traced graph) and a loadable checkpoint
    assert float(compiled_log[0]["train_loss"]) == pytest.approx(float(eager_log[0]["train_loss"]), rel=1e-4)
    assert load_checkpoint(best).card["train"]["compile"] is True


def test_cli_compile_flag_sets_the_config(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(train_module, "train", lambda config, *a, **k: seen.update(config["train"]))
    from inside_core.cli import main

    assert main(["train", "--config", str(REPO / "configs/clevr-seg-quadrant-inside-cpu.yaml"), "--compile"]) == 0
    assert seen["compile"] is True


def test_cli_generates_missing_data_and_reports_bad_config(tmp_path, capsys):
    from inside_core.cli import main

    root = tmp_path / "generated"
    config = tiny_config(root, tmp_path, epochs=1)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "out")]) == 0
    assert (root / "images").is_dir() and (tmp_path / "out" / "tiny-inside.safetensors").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "lacks 'dataset'" in capsys.readouterr().err


def test_ddp_two_processes(tiny_data, tmp_path):
    """torchrun with 2 CPU processes (gloo): a distributed sampler, reduced metrics, one writer."""
    config = tiny_config(tiny_data, tmp_path, epochs=2)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               "-m", "inside_core", "train", "--config", str(config), "--out", str(out)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 process(es)" in result.stdout
    assert result.stdout.count("best checkpoint:") == 1  # only rank 0 reports and writes
    assert len(read_log(out / "tiny-inside.csv")) == 2
    model = load_checkpoint(out / "tiny-inside")
    assert "torchrun" not in model.card["command"] and "--nproc_per_node" not in model.card["command"]
    assert sorted(p.name for p in out.iterdir()) == ["resume", "tiny-inside.csv", "tiny-inside.json",
                                                     "tiny-inside.safetensors"]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_configs_are_valid(path):
    config = load_config(path)
    stem = path.stem.removesuffix("-cpu")
    assert config["name"] in (stem, f"{stem}-200"), "file names say dataset, condition and model"
    model_config = dict(config["model"])
    model = build_model(model_config.pop("name"), **model_config)
    kind = stem.removesuffix("-multi").rsplit("-", 1)[-1]  # "-multi": conditioned at several levels
    expected = {"baseline": "none"}.get(kind, kind)
    conditioning = model.config["conditioning"]  # a wrapped network's: {"at": [...], "layer": ...}
    assert (conditioning["layer"] if isinstance(conditioning, dict) else conditioning) == expected
    assert config["train"]["loss"] in ("focal", "focal+dice", "dice+ce")


@pytest.mark.parametrize("name", ["focal", "focal+dice"])
def test_binary_losses_take_label_maps_as_masks(name):
    """A user's folder gives (B, H, W) integer label maps; the binary losses read them as the (B, 1, H, W)
    float masks CLEVR-Seg gives, with the same value."""
    from inside_core.losses import make_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8)
    labels = (torch.rand(2, 8, 8) > 0.5).long()
    loss = make_loss({"loss": name})
    assert torch.allclose(loss(logits, labels), loss(logits, labels[:, None].float()))
    with pytest.raises(ValueError, match="choose focal, focal\\+dice, dice\\+ce"):
        make_loss({"loss": "hinge"})


def test_validation_in_every_in_plane_symmetry():
    """train.val_symmetries: each validation image in all 8 views, its mask turned with it, z kept."""
    images = torch.randn(3, 1, 8, 8)
    masks = (images[:, 0] > 0).long()
    z = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    views, views_z, view_masks = train_module.with_symmetries(images, z, masks, "phase_slice")
    assert views.shape == (24, 1, 8, 8) and view_masks.shape == (24, 8, 8)
    assert torch.equal(view_masks, (views[:, 0] > 0).long()), "each mask moves with its image"
    assert torch.equal(views_z, z.repeat(8, 1))
    distinct = {tuple(views[i].flatten().tolist()) for i in range(0, 24, 3)}
    assert len(distinct) == 8, "eight different views of the first image"
    assert torch.equal(views[:3], images), "the first view is the image as loaded"


def test_validation_symmetries_refused_where_z_names_places(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="names places in the image"):
        train(load_config(tiny_config(tiny_data, tmp_path, epochs=1, val_symmetries=True)), tmp_path / "out",
              quiet=True)
