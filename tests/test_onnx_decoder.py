"""The decoder exported to ONNX (inside_core.onnx_decoder) answers as `Explorer.update` does, in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx==1.23.2 onnxscript==0.7.2)")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install onnxscript==0.7.2)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

from inside_core import build_model  # noqa: E402
from inside_core.checkpoints import load_checkpoint  # noqa: E402
from inside_core.data.generate_clevr_seg import render_scene  # noqa: E402
from inside_core.explorer import Explorer, _prediction_from_logits, channel_table  # noqa: E402
from inside_core.onnx_decoder import export_decoder, feature_inputs  # noqa: E402

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def _run(path: Path, explorer: Explorer, spec, z) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip(spec.outputs, session.run(None, feature_inputs(explorer, z)), strict=True))


def _check_against_torch(explorer: Explorer, path: Path, spec, zs) -> None:
    for z in zs:
        out = _run(path, explorer, spec, z)
        with torch.inference_mode():
            reference = explorer.model.decode(explorer.features, torch.tensor([z], dtype=torch.float32))
        assert np.abs(out["logits"] - reference.logits.numpy()).max() < 1e-3
        # the mask the page draws: the same labels after the card's clean-up, and the same raw arg-max
        prediction = explorer.update(z)
        from_onnx = _prediction_from_logits(torch.from_numpy(out["logits"]), [], None, recipe=explorer.recipe)
        assert np.array_equal(from_onnx.labels, prediction.labels)
        assert np.array_equal(out["logits"].argmax(1), reference.logits.numpy().argmax(1))
        for layer, params in enumerate(prediction.conditioning):  # what the overlay draws
            for name, values in channel_table(params).items():
                assert np.allclose(out[f"{name}{layer}"][0], values, atol=1e-5), name


def test_shipped_clevr_seg_decoder_matches_torch(tmp_path):
    model = load_checkpoint(CHECKPOINTS / "clevr-seg-quadrant-inside.safetensors").eval()
    image, _, _ = render_scene(np.random.default_rng(3), size=96)
    explorer = Explorer(model, image)
    spec = export_decoder(explorer, tmp_path / "clevr.onnx")
    assert spec.inputs == {"features": (1, 64, 24, 24), "z": (1, 4)}
    assert spec.outputs == ("logits", "mu_x0", "mu_y0", "sigma_x0", "sigma_y0", "gamma0", "beta0")
    zs = [[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0.25, 0.25, 0.25, 0.25]]
    assert len({explorer.update(z).labels.sum() for z in zs}) == 3  # the z values give different masks
    _check_against_torch(explorer, tmp_path / "clevr.onnx", spec, zs)


def test_shipped_acdc_unet_decoder_with_skips_matches_torch(tmp_path):
    model = load_checkpoint(CHECKPOINTS / "acdc-phantom-inside.safetensors").eval()
    image = np.random.default_rng(0).random((128, 128), dtype=np.float32)
    explorer = Explorer(model, image)
    spec = export_decoder(explorer, tmp_path / "acdc.onnx")
    assert list(spec.inputs) == ["features", "skip0", "skip1", "skip2", "skip3", "z"]
    _check_against_torch(explorer, tmp_path / "acdc.onnx", spec, [[0.0, 0.0], [1.0, 0.5], [0.3, 1.0]])


def test_several_conditioning_layers_and_film(tmp_path):
    torch.manual_seed(0)
    unet = build_model("unet", conditioning="inside", cond_dim=4, image_size=32, channels=(8, 16, 32),
                       conditioning_at=("bottleneck", "decoder1")).eval()
    explorer = Explorer(unet, np.random.default_rng(1).random((3, 32, 32), dtype=np.float32))
    spec = export_decoder(explorer, tmp_path / "two.onnx")
    assert "mu_x1" in spec.outputs and "beta1" in spec.outputs
    _check_against_torch(explorer, tmp_path / "two.onnx", spec, [[1.0, 0, 0, 0], [0, 0.5, 0.5, 0]])
    film = build_model("encoder_decoder", conditioning="film", cond_dim=4, image_size=32).eval()
    explorer = Explorer(film, np.random.default_rng(2).random((3, 32, 32), dtype=np.float32))
    spec = export_decoder(explorer, tmp_path / "film.onnx")
    assert spec.outputs == ("logits", "gamma0", "beta0")
    _check_against_torch(explorer, tmp_path / "film.onnx", spec, [[0, 1.0, 0, 0]])


def test_an_export_is_kept_between_servers_and_not_reused_for_other_weights(tmp_path, monkeypatch):
    """The first server exports (a child process) and stores the .onnx in the cache; a later server's first page
    reads it without exporting; a checkpoint with other weights gets its own file."""
    import shutil
    import subprocess

    from inside_core.onnx_decoder import BackgroundExports, stored_export_path

    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))
    for suffix in (".safetensors", ".json"):
        shutil.copy(CHECKPOINTS / f"clevr-seg-quadrant-inside{suffix}", tmp_path / f"model{suffix}")
    checkpoint = tmp_path / "model.safetensors"
    first = BackgroundExports()
    assert first.get(checkpoint) is None, "the first ask starts the export"
    made = first.wait(checkpoint, timeout=300)
    assert made and first.failed(checkpoint) is None
    stored = stored_export_path(checkpoint)
    assert stored.read_bytes() == made

    def no_export(*args, **kwargs):
        raise AssertionError("a stored export must not be made again")

    monkeypatch.setattr(subprocess, "run", no_export)
    second = BackgroundExports()
    second.get(checkpoint)
    assert second.wait(checkpoint, timeout=30) == made

    other = tmp_path / "other.safetensors"
    shutil.copy(CHECKPOINTS / "clevr-seg-quadrant-film.safetensors", other)
    assert stored_export_path(other) != stored
