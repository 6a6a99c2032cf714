"""The dataset registry (inside_core.data.registry): every kind's hooks resolve, folders are recognised by
kind, and no module of inside_core but the registry and a kind's own module compares dataset names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from inside_core.data.registry import DATASETS, _imported, dataset_kind, detect_kind

CORE = Path(__file__).resolve().parents[1] / "inside_core"
HOOKS = ("loader", "validator", "generator", "evaluator", "tables", "card_fields", "exporter", "finder")
# dict keys that spell a dataset's name but mean something else, with the reason
NOT_DATASETS = {("conditions/base.py", "acdc"): "older cards' name of the phase_slice *condition*"}


def name_comparisons(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of each place the code chooses by a dataset name: `==` / `!=` / `in` against one (or a
    literal collection holding one), a dict keyed by one, a `.get(key, name)` default, a `case name:`.
    Docstrings, comments, messages and plain arguments (`load("acdc", ...)`) are not choices."""
    def named(node: ast.AST | None) -> str | None:
        return node.value if isinstance(node, ast.Constant) and node.value in names else None

    hits: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        candidates: list[ast.AST | None] = []
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                candidates += operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
        elif isinstance(node, ast.Dict):
            candidates = list(node.keys)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            candidates = node.args[1:2]
        elif isinstance(node, ast.MatchValue):
            candidates = [node.value]
        hits += [(node.lineno, name) for name in map(named, candidates) if name]
    return hits


def test_the_check_finds_each_way_of_choosing_by_name():
    names = set(DATASETS)
    source = '''
"""Docstring naming "acdc" and "clevr-seg"."""
load("acdc", root)  # a plain argument
if kind == "acdc": pass
if "nnunet" != kind: pass
if kind in ("clevr-seg", "x"): pass
UNITS = {"cubes3d": "volumes"}
dataset = card.get("dataset", "clevr-seg")
match kind:
    case "acdc": pass
'''
    assert [line for line, _ in name_comparisons(source, names)] == [4, 5, 6, 7, 8, 10]


def test_no_module_compares_dataset_names_outside_the_registry():
    """Each kind's own module (its loader's) may name itself; every other module asks the registry."""
    names = set(DATASETS)
    own = {kind.loader.partition(":")[0]: kind.name for kind in DATASETS.values()}
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        relative = path.relative_to(CORE).as_posix()
        if relative == "data/registry.py":
            continue
        module = "inside_core." + relative.removesuffix(".py").replace("/", ".")
        for line, name in name_comparisons(path.read_text(), names):
            if name != own.get(module) and (relative, name) not in NOT_DATASETS:
                offenders.append(f"{relative}:{line} {name}")
    assert offenders == []


def test_registry_imports_only_the_standard_library():
    """Loading the registry loads no dataset code: its hooks are "module:function" strings."""
    tree = ast.parse((CORE / "data" / "registry.py").read_text())
    imported = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "importlib", "collections", "dataclasses", "pathlib", "typing"}


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_hook_of_a_kind_resolves(name):
    kind = dataset_kind(name)
    specs = {hook: getattr(kind, hook) for hook in HOOKS if getattr(kind, hook)}
    assert {"loader", "validator", "generator", "evaluator", "tables"} <= set(specs)
    assert all(callable(_imported(spec)) for spec in specs.values()), specs
    assert kind.unit and kind.condition and kind.model and kind.default_settings
    assert bool(kind.marker) != bool(kind.finder)  # each kind can be recognised, one way


def test_folders_are_recognised_by_kind(tmp_path):
    from inside_core.data.cubes3d import write_cubes3d
    from inside_core.data.generate_clevr_seg import generate_clevr_seg
    from inside_core.data.generate_lesions import generate_lesions

    folders = {"cubes3d": write_cubes3d(tmp_path / "cubes", 3, seed=0),
               "clevr-seg": generate_clevr_seg(tmp_path / "clevr", 1, seed=0, size=40, progress=False),
               "nnunet": generate_lesions(tmp_path / "lesions", 2, seed=0, size=32)}
    assert {name: detect_kind(folder).name for name, folder in folders.items()} == {n: n for n in folders}
    (tmp_path / "empty").mkdir()
    assert detect_kind(tmp_path / "empty") is None


def test_a_kind_loads_its_own_split(tmp_path):
    """kind.load is the training code's dataset (train.build_dataset asks it); a card's [H, W] is one side."""
    from inside_core.data.cubes3d import Cubes3dDataset, write_cubes3d
    from inside_core.train import build_dataset

    root = write_cubes3d(tmp_path / "cubes", 10, seed=0)
    dataset = dataset_kind("cubes3d").load(root, "val", image_size=[16, 16], condition="cube_half")
    assert isinstance(dataset, Cubes3dDataset) and len(dataset) == 1
    same = build_dataset("cubes3d", root, "val")
    assert torch.equal(same[0]["image"], dataset[0]["image"])
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        build_dataset("mnist", root, "val")
