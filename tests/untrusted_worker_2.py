"""The probes of tests/test_untrusted_input_2.py (issue 23), in ONE subprocess, memory measured per probe.

    python tests/untrusted_worker_2.py WORKDIR RESULTS.json

The same recording as tests/untrusted_worker.py (whose helpers it imports): each probe's error line or
value, its time and its peak memory growth (VmHWM reset before it).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from untrusted_worker import RESULTS, acdc_patient, cli, in_child, probe, small_nifti, tiny_config  # noqa: E402


def dataset_json(root: Path, **extra) -> Path:
    """A minimal nnU-Net folder: dataset.json (with `extra`), one PNG case and its label."""
    from PIL import Image

    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "imagesTr" / "c1_0000.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "labelsTr" / "c1.png")
    meta = {"channel_names": {"0": "grey"}, "labels": {"background": 0, "thing": 1}, "numTraining": 1,
            "file_ending": ".png", **extra}
    (root / "dataset.json").write_text(json.dumps(meta) if isinstance(meta, dict) else meta)
    return root


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def run_all(work: Path) -> None:
    from inside_core.checkpoints import load_checkpoint, save_checkpoint
    from inside_core.data.acdc import preprocess_volume, read_info
    from inside_core.data.clevr_seg import read_scene
    from inside_core.data.files import read_bytes
    from inside_core.data.nnunet import read_layout, read_splits_file
    from inside_core.explorer import prepare_image, prepare_mask
    from inside_core.networks import build_model

    os.environ["INSIDE_CACHE_DIR"] = str(work / "cache")

    # -- non-regular files: a device, a FIFO; a symlink out of the folder
    patient = acdc_patient(work / "acdc-zero")
    (patient / "Info.cfg").unlink()
    (patient / "Info.cfg").symlink_to("/dev/zero")
    probe("info_dev_zero")(lambda: read_info(patient))
    probe("read_dev_zero")(lambda: read_bytes("/dev/zero", "text"))
    fifo_patient = acdc_patient(work / "acdc-fifo")
    (fifo_patient / "Info.cfg").unlink()
    os.mkfifo(fifo_patient / "Info.cfg")  # no writer: a blocking open would hang forever
    probe("info_fifo")(lambda: in_child(lambda: read_info(fifo_patient), timeout=20))
    zero_ckpt = work / "zero"
    zero_ckpt.mkdir()
    (zero_ckpt / "m.safetensors").symlink_to("/dev/zero")
    probe("checkpoint_dev_zero")(lambda: load_checkpoint(zero_ckpt / "m"))
    os.mkfifo(zero_ckpt / "f.safetensors")
    probe("checkpoint_fifo")(lambda: in_child(lambda: load_checkpoint(zero_ckpt / "f"), timeout=20))
    secret = work / "secret.csv"
    secret.write_text("case,password\nc1,hunter2\n")
    escape = dataset_json(work / "nn-escape", conditions_file="../secret.csv")
    probe("table_escape")(lambda: read_layout(escape))
    absolute = dataset_json(work / "nn-absolute", conditions_file=str(secret))
    probe("table_absolute")(lambda: read_layout(absolute))
    linked = dataset_json(work / "nn-link")
    (linked / "conditions.csv").symlink_to(secret)
    probe("table_symlink")(lambda: read_layout(linked))
    table_zero = dataset_json(work / "nn-zero", conditions_file="zero.csv")
    os.mkfifo(table_zero / "zero.csv")
    probe("table_fifo")(lambda: in_child(lambda: __import__("inside_core.data.nnunet", fromlist=["x"]).read_table(
        read_layout(table_zero).table), timeout=20))

    # -- parsers
    deep_folder = dataset_json(work / "nn-deep")
    _write(deep_folder / "dataset.json", deep(100_000))
    probe("dataset_json_deep")(lambda: read_layout(deep_folder))
    splits = dataset_json(work / "nn-splits")
    _write(splits / "splits_final.json", deep(50_000))
    probe("splits_deep")(lambda: read_splits_file(splits))
    scene = work / "scene-deep.json"
    _write(scene, '{"objects": ' + deep(200_000) + "}")
    probe("scene_deep")(lambda: read_scene(scene))
    nan_scene = work / "scene-nan.json"
    _write(nan_scene, '{"objects": [{"pixel_coords": [NaN, 3, 1], "color": "red", "shape": "cube", "size": "large"}]}')
    probe("scene_nan")(lambda: read_scene(nan_scene))
    huge_scene = work / "scene-1e400.json"
    _write(huge_scene, '{"objects": [{"pixel_coords": [1e400, 3, 1], "color": "red", "shape": "cube", '
                       '"size": "large"}]}')
    probe("scene_1e400")(lambda: read_scene(huge_scene))
    overflow = acdc_patient(work / "acdc-overflow")
    _write(overflow / "Info.cfg", "ED: 1e400\nES: 2\n")
    probe("info_1e400")(lambda: read_info(overflow))

    # -- wrong values refused, not mended
    probe("labels_negative")(lambda: read_layout(dataset_json(work / "nn-neg", labels={"background": 0, "x": -1})))
    probe("labels_huge")(lambda: read_layout(dataset_json(work / "nn-big", labels={"background": 0, "x": 2_000_000})))
    levels = {"kind": {"type": "categorical", "values": [f"v{k}" for k in range(10_000)]}}
    probe("categorical_10000")(lambda: read_layout(dataset_json(work / "nn-levels", conditions=levels)))
    wide = {"age": {"type": "continuous", "range": [-1e308, 1e308]}}
    probe("range_overflow")(lambda: read_layout(dataset_json(work / "nn-range", conditions=wide)))
    zero = work / "zero-spacing"
    zero.mkdir()
    (zero / "v.nii").write_bytes(_with_pixdim(small_nifti(), 0.0))
    probe("spacing_zero")(lambda: __import__("inside_core.data.acdc", fromlist=["x"]).load_nifti(zero / "v.nii"))
    (zero / "n.nii").write_bytes(_with_pixdim(small_nifti(), -1.5))
    probe("spacing_negative")(lambda: __import__("inside_core.data.acdc", fromlist=["x"]).load_nifti(zero / "n.nii"))
    probe("upload_spacing_zero")(lambda: __import__("inside_core.data.safe_io", fromlist=["x"]).nifti_from_bytes(
        _with_pixdim(small_nifti(), 0.0), "zero.nii"))

    # -- what is computed: resize before pad, slices x pixels, a card's activations
    strip = np.zeros((1, 100_000, 3), np.uint8)
    probe("strip_image")(lambda: list(prepare_image(strip, (128, 128)).shape))
    strip_mask = np.zeros((2, 12_000), np.int64)
    probe("strip_mask")(lambda: list(prepare_mask(strip_mask, (128, 128)).shape))
    slices = np.zeros((8, 8, 300_000), np.float32)
    probe("many_slices")(lambda: preprocess_volume(slices, (1.5, 1.5, 1.0), None, 1.5, 128))
    model = build_model("encoder_decoder", cond_dim=4, image_size=[16, 16], widths=[4, 4, 8])
    path = save_checkpoint(model, {"name": "m", "dataset": "clevr-seg", "condition": "quadrant"}, work / "m")
    big = work / "big"
    _card_swap(path, big, {"image_size": [1024, 1024], "widths": [256, 256, 256]})
    probe("card_activations")(lambda: load_checkpoint(big))

    # -- no run lost
    out = work / "finished"
    out.mkdir()
    (out / "tiny.safetensors").write_bytes(b"the finished run's weights")
    config = tiny_config(work / "tiny.yaml", work / "no-data-needed")
    probe("train_into_finished")(lambda: cli("train", "--config", config, "--out", out))
    RESULTS["finished_kept"] = (out / "tiny.safetensors").read_bytes() == b"the finished run's weights"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _with_pixdim(data: bytes, size: float) -> bytes:
    """NIfTI-1 bytes with pixdim[1] (the first in-plane pixel size) set to `size` in the raw header."""
    import struct

    return data[:80] + struct.pack("<f", size) + data[84:]


def _card_swap(path: Path, out: Path, architecture: dict) -> None:
    """A copy of a checkpoint whose embedded card asks for another architecture (the weights unchanged)."""
    from safetensors.torch import load_file, save_file

    from inside_core.checkpoints import read_card

    card = read_card(path)
    card["architecture"] = {**card["architecture"], **architecture}
    save_file(load_file(str(path)), str(out) + ".safetensors",
              metadata={"format": "pt", "name": "m", "inside_card": json.dumps(card)})


if __name__ == "__main__":
    workdir, results = Path(sys.argv[1]), Path(sys.argv[2])
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        run_all(workdir)
    finally:
        results.write_text(json.dumps(RESULTS, indent=1, default=str))
