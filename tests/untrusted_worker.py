"""Runs every hostile-input probe of tests/test_untrusted_input.py in ONE subprocess and writes the results.

    python tests/untrusted_worker.py WORKDIR RESULTS.json

Each probe builds its small hostile files on the fly under WORKDIR, calls the package as a user would
(loaders, `inside ...` command lines, the upload reader), and records: the error (type and message) or
the command's exit status and output, the warnings, the time, and the peak memory growth. Peak memory is
the process's VmHWM (= ru_maxrss) after resetting it to the current RSS before the probe
(`/proc/self/clear_refs`), minus the RSS before the probe. Probes that must die or hold a lock run in a
forked child.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import struct
import sys
import time
import traceback
import warnings
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inside_core.cli import main as inside  # noqa: E402

RESULTS: dict[str, dict] = {}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def probe(name: str):
    """Decorator: run the function as probe `name`, recording its outcome, time and peak memory growth."""
    def run(function):
        out, err = io.StringIO(), io.StringIO()
        reset = _reset_peak()
        before = _status_kb("VmRSS")
        start = time.perf_counter()
        result: dict = {"error": None, "value": None}
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result["value"] = function()
            except BaseException as error:  # noqa: BLE001 - the probe records whatever happens
                result["error"] = f"{type(error).__name__}: {error}"
                result["traceback"] = traceback.format_exc(limit=4)
        peak = _status_kb("VmHWM") if reset else max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, before)
        texts = {"stdout": out.getvalue(), "stderr": err.getvalue()}
        for key, text in texts.items():  # a real console is UTF-8: what it cannot print counts as a failure
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:
                texts[key] = text.encode("utf-8", "backslashreplace").decode()
                result["error"] = result["error"] or f"UnicodeEncodeError printing {key}: {error}"
        result.update(texts, warnings=[str(w.message) for w in caught], seconds=time.perf_counter() - start,
                      growth_mb=(peak - before) / 1024, measured=reset)
        RESULTS[name] = result
        return function
    return run


def in_child(function, timeout: float = 60.0) -> dict:
    """Run `function` in a forked child; returns what it returned (JSON) or {"died": signal}."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running any cleanup of the parent
        os.close(read)
        try:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                value = function()
            payload = {"value": value, "stdout": out.getvalue(), "stderr": err.getvalue()}
        except BaseException as error:  # noqa: BLE001
            payload = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(limit=4)}
        os.write(write, json.dumps(payload, default=str).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        chunk = os.read(read, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"died": os.WTERMSIG(status)}
    return json.loads(b"".join(chunks) or b"{}")


def cli(*argv: str) -> dict:
    """`inside ARGV` in this process: exit status and output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = inside([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code
    print(out.getvalue(), end="")
    print(err.getvalue(), end="", file=sys.stderr)
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


# ------------------------------------------------------------------------------------------ files
def nifti_header_bytes(shape, dtype=np.int16, zooms=None, version: int = 1) -> bytes:
    import nibabel as nib

    header = (nib.Nifti1Header if version == 1 else nib.Nifti2Header)()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_zooms(zooms or (1.0,) * len(shape))
    header["vox_offset"] = len(header.binaryblock) + 4
    return header.binaryblock + b"\0" * 4


def small_nifti(shape=(16, 16, 2), zooms=(1.5, 1.5, 8.0), labels=False) -> bytes:
    import nibabel as nib

    rng = np.random.default_rng(0)
    data = rng.integers(0, 4, shape).astype(np.uint8) if labels else rng.random(shape).astype(np.float32)
    image = nib.Nifti1Image(data, np.diag([*zooms, 1.0]))
    image.header.set_zooms(zooms)
    return image.to_bytes()


def gzip_bytes(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, compresslevel=1)


def gzip_then_zeros(head: bytes, zero_mib: int) -> bytes:
    """gzip of `head` followed by `zero_mib` MiB of zeros, built without ever holding the zeros: one
    full-flushed deflate segment of 1 MiB of zeros, repeated (a bomb only needs to be valid as far as the
    victim reads it; the trailer's CRC is left wrong)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(b"\0" * (1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    total = len(head) + zero_mib * (1 << 20)
    return gzip_header + start + segment * zero_mib + end + struct.pack("<II", 0, total & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height 8-bit grey pixels, with a tiny (incomplete) image stream."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def clevr_folder(root: Path, count: int = 3) -> Path:
    from inside_core.data.generate_clevr_seg import generate_clevr_seg

    generate_clevr_seg(root, count, seed=3, size=32, progress=False)
    return root


def acdc_patient(root: Path) -> Path:
    folder = root / "training" / "patient001"
    folder.mkdir(parents=True)
    (folder / "Info.cfg").write_text("ED: 1\nES: 2\nGroup: NOR\nNbFrame: 2\n")
    return folder


def tiny_config(path: Path, root: Path) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({
        "name": "tiny", "dataset": "clevr-seg", "condition": "quadrant", "data": {"root": str(root), "seed": 0},
        "model": {"name": "encoder_decoder", "conditioning": "inside", "cond_dim": 4, "image_size": [32, 32],
                  "widths": [4, 4, 8]},
        "train": {"loss": "focal+dice", "batch_size": 8, "lr": 0.003, "epochs": 1, "seed": 7, "num_threads": 1}}))
    return path


# ----------------------------------------------------------------------------------------- probes
def run_all(work: Path) -> None:
    import torch

    from inside_core.checkpoints import load_checkpoint, read_card, save_checkpoint
    from inside_core.data.acdc import load_nifti
    from inside_core.data.clevr_seg import ClevrSegDataset
    from inside_core.networks import build_model

    os.environ["INSIDE_CACHE_DIR"] = str(work / "cache")

    # -- NIfTI headers that claim huge volumes (dataset, validate, upload)
    acdc = work / "acdc"
    folder = acdc_patient(acdc)
    frame1 = folder / "patient001_frame01.nii.gz"
    frame1.write_bytes(gzip_bytes(nifti_header_bytes((32767, 32767, 1))))
    labels1 = folder / "patient001_frame01_gt.nii.gz"
    labels1.write_bytes(gzip_bytes(nifti_header_bytes((100000, 100000, 1), version=2)))
    frame2 = folder / "patient001_frame02.nii.gz"
    frame2.write_bytes(gzip_bytes(small_nifti(zooms=(1e-6, 1e-6, 8.0))))
    (folder / "patient001_frame02_gt.nii.gz").write_bytes(gzip_bytes(small_nifti(labels=True)))

    probe("nifti1_header_dataset")(lambda: load_nifti(frame1))
    probe("nifti2_header_dataset")(lambda: load_nifti(labels1))
    probe("spacing_dataset")(lambda: load_nifti(frame2))
    wide = work / "wide.nii.gz"  # 64 Mi voxels (within the voxel limit) of float64, as 64 KB of gzip
    wide.write_bytes(gzip_then_zeros(nifti_header_bytes((4096, 4096, 4), np.float64), 64))
    probe("nifti_float64_dataset")(lambda: load_nifti(wide))
    probe("validate_acdc")(lambda: cli("data", "validate", acdc, "--format", "acdc"))

    from app.sources import read_volume_bytes

    bombs = {
        "upload_nifti1_header": ("huge.nii", nifti_header_bytes((32767, 32767, 1))),
        "upload_nifti2_header": ("huge2.nii", nifti_header_bytes((100000, 100000, 1), version=2)),
        # 261 KB inflating to 256 MiB: the header honestly claims 8192 x 8192 float32
        "upload_gzip_256mib": ("zeros.nii.gz", gzip_then_zeros(nifti_header_bytes((8192, 8192, 1), np.float32), 256)),
        # a small volume followed by 2 GiB of zeros: only the volume is inflated
        "upload_gzip_2gib_tail": ("tail.nii.gz", gzip_then_zeros(small_nifti(), 2048)),
        "upload_spacing": ("tiny-pixels.nii", small_nifti(zooms=(1e-6, 1e-6, 8.0))),
    }
    for name, (file_name, data) in bombs.items():
        RESULTS.setdefault("sizes", {})[name] = len(data)
        probe(name)(lambda file_name=file_name, data=data: len(read_volume_bytes(file_name, data, 1.37, (96, 96))))

    # -- PNG bombs: 30000^2 (past PIL's own limit), 10000^2 (PIL warns), 6000^2 (ours only)
    clevr = clevr_folder(work / "clevr", 3)
    names = sorted(p.stem for p in (clevr / "images").glob("*.png"))
    (clevr / "images" / f"{names[0]}.png").write_bytes(png_claiming(30000, 30000))
    first_segmentation = sorted((clevr / "segmentations" / names[1]).glob("*.png"))[0]
    first_segmentation.write_bytes(png_claiming(10000, 10000))
    (clevr / "scenes" / f"{names[2]}.json").write_text("{broken")
    RESULTS["png"] = {"image": str(clevr / "images" / f"{names[0]}.png"), "segmentation": str(first_segmentation),
                      "scene": str(clevr / "scenes" / f"{names[2]}.json"), "size": len(png_claiming(30000, 30000))}
    probe("png_dataset")(lambda: len(ClevrSegDataset(clevr, split="all", use_cache=False)))
    probe("png_validate")(lambda: cli("data", "validate", clevr, "--format", "clevr-seg"))
    probe("png_evaluate")(lambda: cli("evaluate", "--checkpoint", REPO / "checkpoints" / "clevr-seg-quadrant-inside",
                                      "--data", clevr, "--split", "all"))
    from app.sources import read_image_bytes

    for side in (30000, 10000, 6000):
        probe(f"png_upload_{side}")(lambda side=side: tuple(read_image_bytes(f"bomb{side}.png",
                                                                              png_claiming(side, side)).shape))

    # -- hostile model cards, in the JSON of an old-format checkpoint and embedded in the weights file
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = build_model("encoder_decoder", conditioning="inside", cond_dim=4, image_size=[16, 16], widths=[4, 4, 8])
    base = {"name": "m", "architecture": model.config, "dataset": "clevr-seg", "condition": "quadrant"}
    hostile = {
        "channels": {"architecture": {"name": "unet", "channels": [16, 32, 100000]}},
        "image_size_huge": {"architecture": {**model.config, "image_size": [20000, 20000]}},
        "params": {"architecture": {"name": "unet", "channels": [1024] * 6, "image_size": [64, 64]}},
        "data": {"data": "x"}, "image_size_text": {"image_size": "abc"}, "metrics": {"metrics": "x"},
        "condition": {"condition": 5}, "deep": None, "name_link": {"name": "![x](https://example.org/t.png)"},
    }
    cards = work / "cards"
    cards.mkdir()
    for name, change in hostile.items():
        text = ("[" * 100000 + "]" * 100000) if change is None else json.dumps({**base, **change})
        old = cards / f"old-{name}"
        save_file(model.state_dict(), f"{old}.safetensors")
        Path(f"{old}.json").write_text(text)
        probe(f"card_old_{name}")(lambda old=old: load_checkpoint(old))
        probe(f"card_read_{name}")(lambda old=old: read_card(old))
        new = cards / f"new-{name}"
        save_file(model.state_dict(), f"{new}.safetensors", metadata={"format": "pt", "inside_card": text})
        probe(f"card_embedded_{name}")(lambda new=new: load_checkpoint(new))
    # safetensors headers that claim huge tensors, or a huge header
    huge = cards / "huge-tensor.safetensors"
    table = json.dumps({"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 40_000_000_000]},
                        "__metadata__": {"inside_card": json.dumps(base)}}).encode()
    huge.write_bytes(struct.pack("<Q", len(table)) + table + b"\0" * 64)
    probe("safetensors_huge_tensor")(lambda: load_checkpoint(huge))
    long_header = cards / "long-header.safetensors"
    long_header.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    probe("safetensors_long_header_read")(lambda: read_card(long_header))
    probe("safetensors_long_header_load")(lambda: load_checkpoint(long_header))

    # -- a kill between the weights and the card copy: the pair is never torn
    torn = work / "torn"

    def save_then_die():
        import inside_core.checkpoints as ckpt

        save_checkpoint(model, {**base, "seed": 1}, torn / "m")
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.fill_(2.0)

        def die(*_):
            os.kill(os.getpid(), signal.SIGKILL)

        ckpt.atomic_write_text = die  # the kill lands after the weights file, before its JSON copy
        save_checkpoint(model, {**base, "seed": 2}, torn / "m")

    RESULTS["torn_child"] = in_child(save_then_die)
    stamp = time.time() - 120  # the kill happened a while ago (not a save in progress)
    os.utime(torn / "m.safetensors", (stamp, stamp))

    def load_torn():
        loaded = load_checkpoint(torn / "m")
        return {"seed": loaded.card["seed"], "weight": float(next(loaded.parameters()).flatten()[0])}

    probe("torn_load")(load_torn)

    # -- one run per --out: a live holder refuses a second training, a killed one is taken over
    few = clevr_folder(work / "few", 3)  # 3 images: too few for a validation split
    config = tiny_config(work / "tiny.yaml", few)
    out = work / "run"
    read, write = os.pipe()
    holder = os.fork()
    if holder == 0:
        from inside_core.run_lock import RunLock

        lock = RunLock(out).acquire()
        os.write(write, b"x")
        time.sleep(60)
        lock.release()
        os._exit(0)
    os.read(read, 1)
    probe("lock_second_run")(lambda: cli("train", "--config", config, "--out", out))
    os.kill(holder, signal.SIGKILL)
    os.waitpid(holder, 0)
    probe("lock_stale_then_too_few_images")(lambda: cli("train", "--config", config, "--out", out))
    RESULTS["lock_left"] = (out / ".inside-run.lock").exists()

    # -- disk full and unwritable paths: one line naming the file
    enough = clevr_folder(work / "enough", 20)
    config20 = tiny_config(work / "tiny20.yaml", enough)

    def training_disk_full():
        import errno

        def no_space(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        os.fsync = no_space  # every atomic write reaches its fsync, as on a full disk
        return cli("train", "--config", config20, "--out", work / "full-run")

    RESULTS["train_disk_full"] = in_child(training_disk_full, timeout=120)

    def generation_file_too_large():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        return cli("data", "clevr-seg", "--out", work / "gen-full", "--count", "2", "--size", "64", "--quiet")

    RESULTS["generate_too_large"] = in_child(generation_file_too_large)
    RESULTS["generate_left"] = sorted(p.name for p in work.glob(".gen-full*"))
    blocker = work / "a-file"
    blocker.write_text("not a folder")
    probe("save_into_a_file")(lambda: save_checkpoint(model, base, blocker / "m"))

    # -- file names that are not UTF-8
    latin = clevr_folder(work / "latin", 14)
    old_name = sorted(p.stem for p in (latin / "images").glob("*.png"))[0]
    bad = os.fsdecode(b"caf\xe9-" + old_name.encode())  # Latin-1 e-acute: not valid UTF-8
    os.rename(latin / "images" / f"{old_name}.png", latin / "images" / f"{bad}.png")
    os.rename(latin / "scenes" / f"{old_name}.json", latin / "scenes" / f"{bad}.json")
    os.rename(latin / "segmentations" / old_name, latin / "segmentations" / bad)
    probe("latin_validate")(lambda: cli("data", "validate", latin))
    probe("latin_dataset")(lambda: ClevrSegDataset(latin, split="all").meta[0]["name"].encode("utf-8", "replace")
                           .decode())
    probe("latin_evaluate")(lambda: cli("evaluate", "--checkpoint", REPO / "checkpoints" / "clevr-seg-quadrant-inside",
                                        "--data", latin, "--split", "all"))
    latin_bomb = latin / "images" / f"{bad}.png"
    latin_bomb.write_bytes(png_claiming(30000, 30000))
    probe("latin_bomb_message")(lambda: ClevrSegDataset(latin, split="all", use_cache=False))

    # -- a truncated cache entry is rebuilt, with a warning naming it
    good = clevr_folder(work / "good", 14)
    first = ClevrSegDataset(good, split="all")
    entries = sorted((work / "cache" / "arrays").glob("clevr-seg-*.npz"), key=lambda p: p.stat().st_mtime)
    entry = entries[-1]
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 3])
    RESULTS["cache_entry"] = str(entry)
    probe("cache_truncated")(lambda: bool(np.array_equal(ClevrSegDataset(good, split="all").images, first.images)))


if __name__ == "__main__":
    workdir, results = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        run_all(workdir)
    finally:
        results.write_text(json.dumps(RESULTS, indent=1, default=str))
