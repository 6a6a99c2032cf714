"""Checkpoints: round trip, the card, atomic saves, and clear errors for broken files."""

from __future__ import annotations

import json
import stat

import pytest
import torch

import inside_core
from inside_core import build_model, load_checkpoint, save_checkpoint
from inside_core import checkpoints as ckpt
from inside_core.checkpoints import CheckpointError, list_checkpoints, read_card


def small_model(conditioning: str = "inside", widths=(4, 4, 8)):
    torch.manual_seed(0)
    return build_model("encoder_decoder", conditioning=conditioning, cond_dim=4, image_size=[16, 16], widths=widths)


def card(**extra):
    return {"dataset": "clevr-seg", "condition": "quadrant", "conditioning": "inside", "image_size": [16, 16],
            "seed": 42, "metrics": {}, "command": "inside train --config x.yaml", **extra}


def test_exported_from_package():
    assert inside_core.save_checkpoint is save_checkpoint and inside_core.load_checkpoint is load_checkpoint


@pytest.mark.parametrize("conditioning", ["none", "film", "guideme", "inside"])
def test_round_trip_rebuilds_model_from_card(tmp_path, conditioning):
    model = small_model(conditioning).eval()
    path = save_checkpoint(model, card(conditioning=conditioning), tmp_path / "m")
    assert path == tmp_path / "m.safetensors" and (tmp_path / "m.json").exists()
    loaded = load_checkpoint(path)
    assert not loaded.training
    assert loaded.card["name"] == "m" and loaded.card["architecture"]["conditioning"] == conditioning
    x, z = torch.rand(2, 3, 16, 16), torch.eye(4)[:2]
    torch.testing.assert_close(loaded(x, z).logits, model(x, z).logits)
    # the stem and the .json path name the same checkpoint
    assert load_checkpoint(tmp_path / "m").card == load_checkpoint(tmp_path / "m.json").card


def test_files_are_readable_by_others(tmp_path):
    save_checkpoint(small_model(), card(), tmp_path / "m")
    for suffix in (".safetensors", ".json"):
        assert (tmp_path / f"m{suffix}").stat().st_mode & stat.S_IROTH


def test_unet_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("unet", conditioning="inside", cond_dim=2, num_classes=4, image_size=32,
                        channels=(4, 8, 16), conditioning_at=("bottleneck", "decoder1")).eval()
    loaded = load_checkpoint(save_checkpoint(model, {"dataset": "acdc", "spacing": 1.37}, tmp_path / "u"))
    x, z = torch.rand(1, 1, 32, 32), torch.tensor([[0.0, 0.5]])
    torch.testing.assert_close(loaded(x, z).logits, model(x, z).logits)


def test_missing_card(tmp_path):
    save_checkpoint(small_model(), card(), tmp_path / "m")
    (tmp_path / "m.json").unlink()
    with pytest.raises(CheckpointError, match=r"m\.json: model card missing"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_missing_weights(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nothing.safetensors")


def test_truncated_weights_are_caught_by_the_card_hash(tmp_path):
    path = save_checkpoint(small_model(), card(), tmp_path / "m")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and "m.safetensors" in str(info.value)


def test_truncated_weights_without_hash(tmp_path):
    path = save_checkpoint(small_model(), card(), tmp_path / "m")
    card_data = read_card(path)
    del card_data["weights_sha256"]
    ckpt.write_card(path, card_data)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_not_a_safetensors_file(tmp_path):
    path = save_checkpoint(small_model(), card(), tmp_path / "m")
    card_data = read_card(path)
    del card_data["weights_sha256"]
    ckpt.write_card(path, card_data)
    path.write_bytes(b"\x80\x04this is a pickle, and is never unpickled")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_card(tmp_path):
    path = save_checkpoint(small_model(widths=(4, 4, 8)), card(), tmp_path / "m")
    card_data = read_card(path)
    card_data["architecture"]["widths"] = [4, 4, 16]
    ckpt.write_card(path, card_data)
    with pytest.raises(CheckpointError, match="do not fit the architecture") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_card_with_other_conditioning(tmp_path):
    path = save_checkpoint(small_model("film"), card(), tmp_path / "m")
    card_data = read_card(path)
    card_data["architecture"]["conditioning"] = "inside"
    ckpt.write_card(path, card_data)
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        load_checkpoint(path)


def test_corrupt_or_incomplete_card(tmp_path):
    path = save_checkpoint(small_model(), card(), tmp_path / "m")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid JSON model card"):
        load_checkpoint(path)
    (tmp_path / "m.json").write_text(json.dumps({"name": "m"}))
    with pytest.raises(CheckpointError, match="lacks architecture"):
        load_checkpoint(path)
    (tmp_path / "m.json").write_text(json.dumps({"name": "m", "architecture": {"name": "no_such_net"}}))
    with pytest.raises(CheckpointError, match="cannot build the architecture"):
        load_checkpoint(path)


def test_crash_mid_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    old = small_model()
    save_checkpoint(old, card(), tmp_path / "m")

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(ckpt, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(small_model(widths=(4, 4, 16)), card(), tmp_path / "m")
    loaded = load_checkpoint(tmp_path / "m")
    for key, value in old.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temp files left


def test_list_checkpoints(tmp_path):
    assert list_checkpoints(tmp_path / "absent") == []
    for name in ("b", "a"):
        save_checkpoint(small_model(), card(), tmp_path / name)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["a.safetensors", "b.safetensors"]


SHIPPED = list_checkpoints(__import__("pathlib").Path(__file__).resolve().parents[1] / "checkpoints")
CARD_KEYS = ("name", "architecture", "dataset", "condition", "conditioning", "image_size", "z_encoding", "data",
             "seed", "epochs", "training_time_s", "metrics", "command")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_checkpoints_load_with_complete_cards(path):
    assert path.stat().st_size < 5 * 2**20, "shipped checkpoints stay a few MB at most"
    model = load_checkpoint(path)
    card = model.card
    assert card["name"] == path.stem
    assert all(key in card for key in CARD_KEYS), [key for key in CARD_KEYS if key not in card]
    assert card["command"].startswith("inside data ") and " && inside train --config configs/" in card["command"]
    assert "dice" in card["metrics"] and card["metrics"]["command"].startswith("inside evaluate")
    h, w = card["image_size"]
    x = torch.rand(1, model.in_channels, h, w)
    z = torch.zeros(1, model.cond_dim)
    assert model(x, z).logits.shape[-2:] == (h, w)
