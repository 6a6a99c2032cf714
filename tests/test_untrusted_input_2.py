"""Hostile and broken input, second round (issue 23): every read bounded, every path confined, no run lost.

Most faults here need no memory figure (they are refused before anything large exists); those that
do run in a subprocess that measures peak memory growth, as tests/test_untrusted_input.py does.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inside_core.data.errors import DataError

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------ gzip members at chunk edges
def _stored_member(size: int, rng: random.Random) -> bytes:
    """A gzip member (stored blocks, so its length is exact) of `size` bytes in all."""
    payload = rng.randbytes(size)
    for length in range(size - 18, size - 64, -1):  # less the header, trailer and block headers
        member = gzip.compress(payload[:length], compresslevel=0, mtime=0)
        if len(member) == size:
            return member
    raise AssertionError(f"no stored member of {size} bytes")


@pytest.mark.parametrize("offset", [-9, -8, -1, 0, 1, 8, 9])
@pytest.mark.parametrize("padding", [0, 3])
def test_multi_member_gzip_reads_bit_identically_at_every_chunk_boundary(offset, padding):
    from inside_core.data.safe_io import _INFLATE_CHUNK, inflate_gzip

    rng = random.Random(offset * 7 + padding)
    # the first member ends `offset` bytes from the first chunk's end (its trailer or the next member's
    # header split across it), the second ends at the second chunk's end; zero padding between members
    first = _stored_member(_INFLATE_CHUNK + offset, rng)
    second = _stored_member(_INFLATE_CHUNK - offset - padding, rng)
    third = gzip.compress(b"the last member" * 50, mtime=0)
    data = first + b"\0" * padding + second + third + b"\0" * padding
    expected = gzip.decompress(data)
    assert inflate_gzip(data, "multi.nii.gz", len(expected) + 100) == expected
    assert inflate_gzip(data, "multi.nii.gz", 1000) == expected[:1000]  # still stops at the limit


def test_gzip_garbage_after_a_member_is_one_line():
    from inside_core.data.safe_io import inflate_gzip

    data = gzip.compress(b"x" * 100) + b"not gzip"
    with pytest.raises(DataError, match=r"^bad\.gz: not a readable gzip file"):
        inflate_gzip(data, "bad.gz", 10**6)


# ------------------------------------------------------------------- the probes, in one subprocess
REFUSAL_MB = 64


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("untrusted2")
    results = work / "results.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "untrusted_worker_2.py"), str(work / "files"),
                           str(results)], env=env, capture_output=True, text=True, timeout=300, cwd=work)
    assert results.exists(), done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(results.read_text())


def refused(result: dict, *fragments: str, budget_mb: float = REFUSAL_MB, absent: str | None = None) -> str:
    """One error line holding every fragment, quick and within the memory budget (a forked child's result
    is its own dict)."""
    value = result.get("value")
    error = result["error"] or (value.get("error") if isinstance(value, dict) else None)
    assert error and "Traceback" not in error.split("\n")[0], result
    line = error.split(": ", 1)[1].split("\n")[0]
    assert "\n" not in error.split("', 'traceback'")[0]
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    if absent:
        assert absent not in line
    assert result["seconds"] < 10, result["seconds"]
    if result["measured"]:
        assert result["growth_mb"] < budget_mb, result["growth_mb"]
    return line


def test_devices_and_fifos_are_refused_at_once(probes):
    refused(probes["read_dev_zero"], "/dev/zero: a character device, not a regular file")
    refused(probes["info_dev_zero"], "patient001/Info.cfg: leads outside the dataset folder")
    refused(probes["info_fifo"], "Info.cfg: a FIFO (named pipe), not a regular file")
    refused(probes["checkpoint_dev_zero"], "m.safetensors: checkpoint file refused: a character device")
    refused(probes["checkpoint_fifo"], "f.safetensors: checkpoint file refused: a FIFO")
    refused(probes["table_fifo"], "zero.csv: a FIFO (named pipe)")


def test_paths_from_files_stay_in_their_folder_and_are_never_quoted(probes):
    for name in ("table_escape", "table_absolute"):
        refused(probes[name], "dataset.json: \"conditions_file\" leads outside the dataset folder", absent="hunter2")
    refused(probes["table_symlink"], "conditions.csv: leads outside the dataset folder", absent="hunter2")


def test_parsers_give_one_line(probes):
    refused(probes["dataset_json_deep"], "dataset.json: unreadable dataset.json (nested deeper than 64 levels)")
    refused(probes["splits_deep"], "splits_final.json: unreadable splits_final.json (nested deeper")
    refused(probes["scene_deep"], "scene-deep.json: unreadable scene JSON (nested deeper")
    refused(probes["scene_nan"], "scene-nan.json: unreadable scene JSON (NaN is not a finite number)")
    refused(probes["scene_1e400"], "scene-1e400.json:", "'1e400' is not a finite number")
    refused(probes["info_1e400"], "Info.cfg: Info.cfg ED is not a number: '1e400'")


def test_wrong_values_are_refused_not_mended(probes):
    refused(probes["labels_negative"], "nn-neg/dataset.json: label values must be 0-65,535")
    refused(probes["labels_huge"], "nn-big/dataset.json: label values must be 0-65,535")
    refused(probes["categorical_10000"], "condition 'kind': 10,000 levels exceed the limit of 256")
    refused(probes["range_overflow"], "condition 'age': \"range\" bounds must be within")
    refused(probes["spacing_zero"], "v.nii: pixel size 0 mm outside the plausible range")  # nibabel says 1 mm
    refused(probes["spacing_negative"], "n.nii: pixel size -1.5 mm")
    refused(probes["upload_spacing_zero"], "zero.nii: pixel size 0 mm")


def test_what_is_computed_is_bounded(probes):
    for name in ("strip_image", "strip_mask"):  # resized before padding: kilobytes, not 1.7 GB
        assert probes[name]["error"] is None and probes[name]["growth_mb"] < REFUSAL_MB, probes[name]
    refused(probes["many_slices"], "300,000 slices of 128x128 pixels once resized", "INSIDE_LIMIT_CASE_PIXELS")
    # the first forward pass on the meta device loads PyTorch's meta kernels: tens of MB, once
    refused(probes["card_activations"], "big.safetensors (its embedded card): the card's network needs too much "
            "memory per image", "INSIDE_LIMIT_MODEL_ACTIVATION_BYTES", budget_mb=200)


def test_a_finished_run_is_never_replaced(probes):
    result = probes["train_into_finished"]
    assert result["error"] is None and result["value"]["code"] == 2, result
    lines = result["value"]["stderr"].strip().splitlines()
    assert len(lines) == 1 and "finished: holds a previous run of 'tiny' (tiny.safetensors)" in lines[0], lines
    assert probes["finished_kept"] is True


# ------------------------------------------------------------------------------------ resume states
def _state_file(path, edit=None, drop=(), metadata_text=None):
    import torch
    from safetensors.torch import load_file, save_file

    from inside_core.networks import build_model
    from inside_core.train import save_state

    torch.manual_seed(0)
    model = build_model("encoder_decoder", cond_dim=4, image_size=[16, 16], widths=[4, 4, 8])
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 3, 16, 16), torch.rand(2, 4)).logits.sum().backward()
    optimizer.step()
    state = {"epoch": 1, "best_val_loss": 0.5, "best_epoch": 1, "epochs_without_improvement": 0,
             "elapsed_s": 1.0, "history": [{"epoch": 1}], "stopped": ""}
    save_state(path, model, optimizer, state)
    if edit or drop or metadata_text:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()["state"])
        meta.update(edit or {})
        tensors = {k: v for k, v in load_file(str(path)).items() if k not in drop}
        save_file(tensors, str(path), metadata={"state": metadata_text or json.dumps(meta)})
    return model, optimizer


@pytest.mark.parametrize("fault, fragment", [
    ({"edit": {"epoch": "three"}}, "missing or invalid epoch"),
    ({"edit": {"history": "x", "elapsed_s": -1}}, "missing or invalid elapsed_s, history"),
    ({"edit": {"param_groups": [{"params": ["a"]}]}}, "missing or invalid param_groups"),
    ({"drop": ("rng.torch",)}, "no valid random generator state"),
    ({"drop": ("optim.0.exp_avg",), "edit": {}}, None),  # a moment missing: Adam rebuilds it, no error
    ({"metadata_text": "[" * 10000 + "]" * 10000}, "nested deeper than 64 levels"),
    ({"metadata_text": "{"}, "unreadable resume state"),
])
def test_hostile_resume_states_are_one_line(tmp_path, fault, fragment):
    from inside_core.checkpoints import CheckpointError
    from inside_core.train import load_state

    path = tmp_path / "state.safetensors"
    model, optimizer = _state_file(path, **fault)
    if fragment is None:
        load_state(path, model, optimizer)
        return
    with pytest.raises(CheckpointError) as caught:
        load_state(path, model, optimizer)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path)) and fragment in str(caught.value)


def test_resume_state_whose_optimizer_does_not_fit_the_model(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from inside_core.checkpoints import CheckpointError
    from inside_core.train import load_state

    path = tmp_path / "state.safetensors"
    model, optimizer = _state_file(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    tensors["optim.0.exp_avg"] = torch.zeros(7, 7)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="optimizer state does not fit this config's model"):
        load_state(path, model, optimizer)
    load_state_ok = tmp_path / "ok.safetensors"
    model, optimizer = _state_file(load_state_ok)
    assert load_state(load_state_ok, model, optimizer)["epoch"] == 1


# ------------------------------------------------------------------------------- the page's folders
def test_data_roots_confine_paths_and_access_is_off_beyond_loopback(tmp_path):
    from inside_core.data_roots import access_problem, data_roots, is_loopback, path_problem

    inside, outside = tmp_path / "allowed", tmp_path / "private"
    (inside / "data").mkdir(parents=True)
    outside.mkdir()
    (inside / "escape").symlink_to(outside)
    roots = data_roots(f"{inside}{os.pathsep}{tmp_path / 'other'}")
    assert path_problem(inside / "data", "0.0.0.0", roots) is None
    assert path_problem(inside, None, roots) is None
    for refused_path in (outside, inside / "escape", inside / ".." / "private", "/etc"):
        line = path_problem(refused_path, "0.0.0.0", roots)
        assert line and "outside the folders this server allows (INSIDE_DATA_ROOTS" in line and "\n" not in line
    assert all(is_loopback(a) for a in ("localhost", "127.0.0.1", "127.0.1.1", "::1", "[::1]"))
    assert not any(is_loopback(a) for a in (None, "", "0.0.0.0", "::", "192.168.1.4", "example.org"))
    assert access_problem("localhost", []) is None and path_problem("/anything", "127.0.0.1", []) is None
    for address in (None, "0.0.0.0", "10.0.0.2"):
        line = path_problem("/etc", address, [])
        assert line.startswith("Opening folders and checkpoint paths is off") and "INSIDE_DATA_ROOTS=" in line
    assert (REPO / ".streamlit" / "config.toml").read_text().count('address = "localhost"') == 1


def test_card_variable_names_reach_select_labels_as_plain_text():
    from streamlit.testing.v1 import AppTest

    def page():
        import streamlit as st

        from app.controls import _draw_select
        from inside_core.conditions import TableCondition

        name = "![x](https://example.org/track.png)"
        condition = TableCondition({"variables": {name: {"type": "categorical", "values": ["a", "b"]}}})
        _draw_select(condition.controls[0], st)

    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception, at.exception
    label = at.selectbox[0].label
    assert "track" in label and "![x](" not in label and label.startswith("\\!\\[x\\]")
    mistune = pytest.importorskip("mistune")
    assert "<img" not in mistune.html(label)


def test_hostile_card_condition_spec_is_refused():
    from inside_core.cards import card_problems

    card = {"name": "m", "architecture": {"name": "encoder_decoder", "cond_dim": 4, "image_size": [16, 16],
                                          "widths": [4, 4, 8]}, "condition": "table"}
    spec = {"variables": {"x" * 500: {"type": "continuous", "range": [0, 1]}}}
    assert any("at most 64 printable characters" in p for p in card_problems({**card, "condition_spec": spec}))
    spec = {"variables": {"age": {"type": "continuous", "range": [0, 1e300]}}}
    assert any("INSIDE_LIMIT_CONDITION_RANGE_MAX" in p for p in card_problems({**card, "condition_spec": spec}))
    spec = {"variables": {"age": {"type": "continuous", "range": [0, 100], "unit": "<img src=x>" * 20}}}
    assert any('"unit"' in p for p in card_problems({**card, "condition_spec": spec}))


# ------------------------------------------------------------------ limits by kind, split and scene
def test_each_kind_of_file_is_read_no_further_than_its_limit(tmp_path, monkeypatch):
    from inside_core.data.files import read_bytes, read_json
    from inside_core.data.nnunet import read_table
    from inside_core.data.safe_io import open_image

    table = tmp_path / "conditions.csv"
    table.write_text("case,age\n" + "c,1\n" * 100)
    monkeypatch.setenv("INSIDE_LIMIT_TABLE_BYTES", "100")
    with pytest.raises(DataError, match=r"conditions\.csv: file too large: 409 bytes exceed the limit of 100 "
                                        r"\(INSIDE_LIMIT_TABLE_BYTES\)"):
        read_table(table)
    with pytest.raises(DataError, match="a folder"):
        read_bytes(tmp_path, "text")
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(DataError, match=r"pipe\.png: a FIFO \(named pipe\), not a regular file"):
        open_image(tmp_path / "pipe.png", tmp_path / "pipe.png")
    (tmp_path / "ok.json").write_text('{"a": [1, 2.5, {"b": null}]}')
    assert read_json(tmp_path / "ok.json") == {"a": [1, 2.5, {"b": None}]}


def test_split_memory_and_scene_objects_are_bounded(tmp_path, monkeypatch):
    from inside_core.data.clevr_seg import ClevrSegDataset
    from inside_core.data.generate_clevr_seg import generate_clevr_seg

    root = generate_clevr_seg(tmp_path / "clevr", 5, seed=3, size=32, progress=False) or tmp_path / "clevr"
    monkeypatch.setenv("INSIDE_LIMIT_SPLIT_BYTES", "5000")
    with pytest.raises(DataError, match=r"images: the all split held in memory: .* exceed the limit of 5,000 "
                                        r"\(INSIDE_LIMIT_SPLIT_BYTES\)"):
        ClevrSegDataset(root, split="all", use_cache=False)
    monkeypatch.delenv("INSIDE_LIMIT_SPLIT_BYTES")
    monkeypatch.setenv("INSIDE_LIMIT_SCENE_OBJECTS", "1")
    with pytest.raises(DataError, match=r"segmentations/.*objects exceed the limit of 1 "
                                        r"\(INSIDE_LIMIT_SCENE_OBJECTS\)"):
        ClevrSegDataset(root, split="all", use_cache=False)


def test_label_values_map_to_classes_without_a_huge_lookup():
    import numpy as np

    from inside_core.data.nnunet import label_indices

    class Layout:
        labels = {"background": 0, "b": 2, "a": 5}  # classes in this order: 0, 1, 2

    raw = np.array([[0, 5, 2, 7], [-3, 2_000_000_000, 2, 0]])
    assert label_indices(raw, Layout).tolist() == [[0, 2, 1, 0], [0, 0, 1, 0]]


def test_confinement_holds_for_relative_paths(tmp_path, monkeypatch):
    """`inside data validate nn` from the folder above: the same refusals as with absolute paths."""
    from untrusted_worker import acdc_patient
    from untrusted_worker_2 import dataset_json

    from inside_core.data import validate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.csv").write_text("case,password\nc1,hunter2\n")
    dataset_json(tmp_path / "link")
    (tmp_path / "link" / "conditions.csv").symlink_to(tmp_path / "secret.csv")
    dataset_json(tmp_path / "escape", conditions_file="../secret.csv")
    patient = acdc_patient(tmp_path / "acdc")
    (patient / "Info.cfg").unlink()
    (patient / "Info.cfg").symlink_to("/dev/zero")
    for folder, named in (("link", "link/conditions.csv"), ("escape", "escape/dataset.json"),
                          ("acdc", "acdc/training/patient001/Info.cfg")):
        report = validate(folder)
        lines = [p.line() for p in report.errors]
        assert len(lines) == 1 and named in lines[0] and "leads outside the dataset folder" in lines[0], lines
        assert "hunter2" not in lines[0]


def test_a_session_keeps_explorers_within_its_byte_limit(monkeypatch):
    from streamlit.testing.v1 import AppTest

    from inside_core.explorer import Explorer
    from inside_core.networks import build_model

    model = build_model("encoder_decoder", cond_dim=4, image_size=[32, 32], widths=[4, 4, 8]).eval()
    one = Explorer(model, np.zeros((32, 32, 3), np.float32)).nbytes
    assert one > 32 * 32 * 3 * 4  # the image and the features
    monkeypatch.setenv("INSIDE_LIMIT_SESSION_BYTES", str(int(2.5 * one)))

    def page():
        import numpy as np
        import streamlit as st

        from app.loading import ModelEntry, explorer_for
        from inside_core.networks import build_model

        model = build_model("encoder_decoder", cond_dim=4, image_size=[32, 32], widths=[4, 4, 8]).eval()
        entry = ModelEntry("m", "", {})
        for k in range(6):
            explorer_for(entry, model, ("image", k), np.full((32, 32, 3), k / 6, np.float32))
        from app.page_state import session

        st.text(str(len(session().caches["explorers"])))

    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception, at.exception
    assert at.text[0].value == "2"  # the newest two fit, the older four were let go


def test_a_session_lets_its_explorers_go_when_it_disconnects():
    """Streamlit keeps a disconnected session (for a reconnect) and clears its session-scoped caches then:
    the page's Session is released there, so its explorers are freed, not kept with it (issue 23)."""
    import gc
    import weakref

    from streamlit.runtime import caching
    from streamlit.testing.v1 import AppTest

    from app import page_state

    def page():
        import numpy as np
        import streamlit as st

        from app.loading import ModelEntry, explorer_for
        from inside_core.networks import build_model

        model = build_model("encoder_decoder", cond_dim=4, image_size=[32, 32], widths=[4, 4, 8]).eval()
        for k in range(3):
            explorer_for(ModelEntry("m", "", {}), model, ("image", k), np.full((32, 32, 3), k / 3, np.float32))
        st.text("drawn")

    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception, at.exception
    state = at.session_state[page_state.SESSION_KEY]
    explorers = [weakref.ref(explorer) for explorer in state.caches["explorers"].values()]
    assert len(explorers) == 3 and all(ref() is not None for ref in explorers)
    caching.clear_session_resource_cache("test session id")  # what Streamlit does when the browser goes
    gc.collect()
    assert state.caches == {} and state.shown == {} and state.export is None
    assert all(ref() is None for ref in explorers)  # freed, while the session itself is still kept
    assert at.run(timeout=60).session_state[page_state.SESSION_KEY].caches["explorers"]  # a reconnect: made again
    assert len(state.caches["explorers"]) == 3
