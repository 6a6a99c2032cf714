"""checkpoints/choose-by-validation.py: which ACDC checkpoint is shipped, decided on validation only."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from test_checkpoints import card, small_model

from inside_core import save_checkpoint
from inside_core.checkpoints import load_checkpoint, read_card

SCRIPT = Path(__file__).resolve().parent.parent / "checkpoints" / "choose-by-validation.py"


def script():
    spec = importlib.util.spec_from_file_location("choose_by_validation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_one_stays_unless_a_run_beats_it_by_the_margin():
    choose = script().choose
    shipped = {"checkpoint": "shipped", "val8_loss": 0.30}
    close = {"checkpoint": "close", "val8_loss": 0.299}
    better = {"checkpoint": "better", "val8_loss": 0.28}
    best = {"checkpoint": "best", "val8_loss": 0.27}
    assert choose([shipped, close], margin=0.002) is shipped
    assert choose([shipped, better, best, close], margin=0.002) is best
    assert choose([shipped], margin=0.002) is shipped


def test_install_replaces_the_pair_and_names_the_card_as_its_file(tmp_path, monkeypatch):
    module = script()
    monkeypatch.setattr(module, "ROOT", tmp_path)
    (tmp_path / "checkpoints").mkdir()
    save_checkpoint(small_model("film"), card(conditioning="film"), tmp_path / "checkpoints" / "acdc-x")
    run = small_model("inside")
    save_checkpoint(run, {**card(conditioning="inside"), "name": "acdc-x-seed1"}, tmp_path / "runs" / "acdc-x-seed1")
    module.install(tmp_path / "runs" / "acdc-x-seed1.safetensors", "acdc-x")
    installed = read_card(tmp_path / "checkpoints" / "acdc-x")
    assert installed["name"] == "acdc-x" and installed["run_name"] == "acdc-x-seed1"
    assert installed["architecture"]["conditioning"] == "inside"
    assert load_checkpoint(tmp_path / "checkpoints" / "acdc-x").card["name"] == "acdc-x"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["acdc-x.json", "acdc-x.safetensors"]


def test_a_folder_that_is_not_there_is_one_line(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "missing")], capture_output=True, text=True,
                          cwd=SCRIPT.parent.parent, env={"PYTHONPATH": str(SCRIPT.parent.parent), "PATH": ""})
    assert done.returncode == 1 and done.stderr.strip() == f"error: {tmp_path / 'missing'}: not a folder of runs"
