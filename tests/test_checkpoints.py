"""Checkpoints: round trip, the card, atomic saves, and clear errors for broken files."""

from __future__ import annotations

import json
import os
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


def old_format(tmp_path, name="old"):
    """A checkpoint as saved before the card was embedded: plain safetensors + JSON card with its SHA-256."""
    import hashlib

    from safetensors.torch import save_file

    model = small_model()
    weights = tmp_path / f"{name}.safetensors"
    save_file(model.state_dict(), str(weights), metadata={"format": "pt"})
    data = {"name": name, "architecture": model.config, **card(),
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    (tmp_path / f"{name}.json").write_text(json.dumps(data))
    return model, weights


def test_card_is_embedded_and_the_json_is_a_copy(tmp_path):
    from safetensors import safe_open

    path = save_checkpoint(small_model(), card(), tmp_path / "m")
    with safe_open(str(path), "pt") as handle:
        embedded = json.loads(handle.metadata()[ckpt.CARD_METADATA_KEY])
    copy = json.loads((tmp_path / "m.json").read_text())
    assert {k: v for k, v in copy.items() if k != "weights_sha256"} == embedded == read_card(path)
    import hashlib

    assert copy["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # the JSON copy is not needed to load
    (tmp_path / "m.json").unlink()
    assert load_checkpoint(path).card == embedded


def test_old_checkpoints_still_load_and_write_card_upgrades_them(tmp_path):
    model, weights = old_format(tmp_path)
    loaded = load_checkpoint(weights)
    assert loaded.card["weights_sha256"]
    card_data = read_card(weights)
    card_data["metrics"] = {"dice": 0.5}
    ckpt.write_card(weights, card_data)  # e.g. inside evaluate --update-card
    upgraded = load_checkpoint(weights)
    assert upgraded.card["metrics"] == {"dice": 0.5} and "weights_sha256" not in upgraded.card
    for key, value in model.state_dict().items():
        assert torch.equal(upgraded.state_dict()[key], value)  # the tensors bit-identical


def test_old_checkpoint_missing_card(tmp_path):
    _, weights = old_format(tmp_path)
    (tmp_path / "old.json").unlink()
    with pytest.raises(CheckpointError, match=r"old\.json: model card missing"):
        load_checkpoint(weights)


def test_old_checkpoint_with_mismatched_sha_is_refused_and_not_blessed(tmp_path):
    _, weights = old_format(tmp_path)
    data = json.loads((tmp_path / "old.json").read_text())
    data["weights_sha256"] = "0" * 64
    (tmp_path / "old.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="do not match the SHA-256"):
        load_checkpoint(weights)
    with pytest.raises(CheckpointError, match="not rewriting its card"):
        ckpt.write_card(weights, data)


def test_missing_weights(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nothing.safetensors")


def test_truncated_weights(tmp_path):
    path = save_checkpoint(small_model(), card(), tmp_path / "m")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and "m.safetensors" in str(info.value)


def test_truncated_old_weights_are_caught_by_the_card_hash(tmp_path):
    _, weights = old_format(tmp_path)
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load_checkpoint(weights)
    assert "\n" not in str(info.value) and "old.safetensors" in str(info.value)


def test_truncated_weights_without_hash(tmp_path):
    path = save_checkpoint(small_model(), card(), tmp_path / "m")
    card_data = read_card(path)
    card_data.pop("weights_sha256", None)
    ckpt.write_card(path, card_data)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_not_a_safetensors_file(tmp_path):
    path = save_checkpoint(small_model(), card(), tmp_path / "m")
    card_data = read_card(path)
    card_data.pop("weights_sha256", None)
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
    _, path = old_format(tmp_path)
    (tmp_path / "old.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"old\.json: not a valid JSON model card"):
        load_checkpoint(path)
    (tmp_path / "old.json").write_text(json.dumps({"name": "m"}))
    with pytest.raises(CheckpointError, match=r"old\.json: invalid model card: model card lacks 'architecture'"):
        load_checkpoint(path)
    (tmp_path / "old.json").write_text(json.dumps({"name": "m", "architecture": {"name": "no_such_net"}}))
    with pytest.raises(CheckpointError, match=r"old\.json: invalid model card: architecture 'name' must be one of"):
        load_checkpoint(path)


def test_a_stale_json_copy_does_not_tear_the_checkpoint(tmp_path):
    """Killed between the weights file and its JSON copy: the weights and the embedded card still agree."""
    save_checkpoint(small_model(), card(seed=1), tmp_path / "m")
    old_copy = (tmp_path / "m.json").read_text()
    save_checkpoint(small_model(widths=(4, 4, 16)), card(seed=2), tmp_path / "m")
    (tmp_path / "m.json").write_text(old_copy)  # what a kill before the second write leaves
    stamp = (tmp_path / "m.safetensors").stat().st_mtime - 60  # ... a while ago (not a save in progress)
    os.utime(tmp_path / "m.safetensors", (stamp, stamp))
    with pytest.warns(UserWarning, match=r"m\.json: differs from the card inside m\.safetensors"):
        loaded = load_checkpoint(tmp_path / "m")
    assert loaded.card["seed"] == 2 and loaded.card["architecture"]["widths"] == [4, 4, 16]


def test_crash_mid_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    import inside_core.atomic

    old = small_model()
    save_checkpoint(old, card(), tmp_path / "m")

    def crash(fd):
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(inside_core.atomic.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(small_model(widths=(4, 4, 16)), card(), tmp_path / "m")
    monkeypatch.undo()
    loaded = load_checkpoint(tmp_path / "m")
    for key, value in old.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temp files left


def test_a_reader_polling_a_writer_never_sees_a_torn_pair(tmp_path):
    """Weights all equal to k always come with the card that says seed k."""
    import threading

    model = small_model()
    done = threading.Event()

    def writer():
        k = 0
        while not done.is_set():
            k += 1
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.fill_(k)
            save_checkpoint(model, card(seed=k), tmp_path / "m")

    save_checkpoint(model, card(seed=0), tmp_path / "m")
    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    try:
        import time

        end = time.perf_counter() + 1.5
        while time.perf_counter() < end:
            loaded = load_checkpoint(tmp_path / "m")
            weight = next(loaded.parameters()).flatten()[0].item()
            assert weight == loaded.card["seed"] or loaded.card["seed"] == 0
            reads += 1
    finally:
        done.set()
        thread.join()
    assert reads > 10


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
    size = tuple(card["image_size"])  # (H, W), or (D, H, W) for a volume model
    x = torch.rand(1, model.in_channels, *size)
    z = torch.zeros(1, model.cond_dim)
    assert model(x, z).logits.shape[-len(size):] == size


def test_save_and_write_card_refuse_a_card_no_reader_would_accept(tmp_path):
    with pytest.raises(CheckpointError, match=r"m\.safetensors: invalid model card: 'metrics' must be an object"):
        save_checkpoint(small_model(), card(metrics="x"), tmp_path / "m")
    assert not list(tmp_path.iterdir())
    path = save_checkpoint(small_model(), card(), tmp_path / "m")
    with pytest.raises(CheckpointError, match=r"m\.json: invalid model card: 'condition' must be one of"):
        ckpt.write_card(path, {**read_card(path), "condition": 5})
    assert read_card(path)["condition"] == "quadrant"
