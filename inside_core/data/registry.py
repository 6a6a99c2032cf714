"""The dataset kinds, registered by name beside the conditions and the networks: what each one is called on
the page, how its folders are loaded, recognised and checked, where its bundled data comes from, how a
model of it is evaluated and compared, what its card records, what the dashboard reads it with, and the
random-weight models the page offers before any checkpoint exists.

    kind = dataset_kind(card.get("dataset"))      # "clevr-seg", "acdc", "nnunet" (a user's folder), "cubes3d"
    kind.display, kind.load(root, split, ...), kind.validate(root), kind.default_data(), kind.evaluate(...)

The rest of the code asks a kind, never compares dataset names (`DATASETS` is the one list;
tests/test_data_registry.py greps for comparisons). What differs between kinds is named here as
"module:function" and imported when first called, so this module imports neither the app nor Streamlit
nor any dataset's code (only the standard library).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DATASET = "clevr-seg"  # what a card without a "dataset" field was trained on (the oldest cards)


def _imported(spec: str) -> Callable[..., Any]:
    """The object a "module:name" string names, imported now."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class DatasetKind:
    """One dataset kind: its name (the cards' "dataset" field) and what the code asks about it. The
    "module:function" fields are called through the methods below, with the signatures they document."""

    name: str
    display: str  # on the page's dataset picker
    folder_hint: str  # the folder a user types, as an example
    page_source: str  # "module:Class" of the dashboard's source for a folder of this kind
    untrained: dict[str, Any] | None  # the demo models' architecture and card (None: only a model defines z)
    loader: str  # "module:function" (root, split, *, condition, image_size, spacing, seed, variables) -> dataset
    validator: str  # "module:function" (root) -> inside_core.data.validate.Report
    generator: str  # "module:function" (folder, progress=..., **default_settings): writes the bundled data
    default_settings: dict[str, Any]  # the bundled data's generator settings (also its cache folder's name)
    evaluator: str  # "module:function" (model, card, data, split, seed, tta=) -> metrics (inside_core.evaluate)
    model: str  # the shipped checkpoint the page opens first for this kind
    unit: str  # what `inside data validate` counts: images, patients, cases, volumes
    condition: str  # a config's condition when it names none ("table": z from the folder's declaration)
    marker: str = ""  # a file whose presence in a folder names this kind (checked first when detecting)
    finder: str = ""  # else "module:function" (root) that raises DataError unless the folder is of this kind
    tables: str = "inside_core.evaluate:dice_tables"  # "module:function" (results, fmt) -> comparison tables
    card_fields: str = ""  # "module:function" (data config) -> what a trained model's card adds for this kind
    exporter: str = ""  # "module:function" (data, folder, *, condition, seed, limit, image_size, spacing): to nnU-Net
    spacing: bool = False  # images are resampled to the card's pixel spacing (mm)
    variables: bool = False  # z comes from the folder's declared variables (a card lists the model's subset)
    synthetic_note: str = ""  # said wherever a model trained on this kind's synthetic data is used
    cardiac: bool = False  # short-axis cardiac labels (RV, MYO, LV): postprocess may try the cardiac anatomy
    volumes: bool = False  # samples are 3-D volumes (the page shows them slice by slice: app/volume_view.py)

    def load(self, root: str | Path, split: str, *, image_size: int | list | None = None, **options: Any) -> Any:
        """The training / evaluation dataset of one split (`image_size`: one side, or a card's [H, W])."""
        size = image_size[0] if isinstance(image_size, (list, tuple)) else image_size
        return _imported(self.loader)(root, split, image_size=size, **options)

    def validate(self, root: str | Path) -> Any:
        """`inside data validate`'s report for a folder of this kind."""
        return _imported(self.validator)(root)

    def recognises(self, root: Path) -> bool:
        """Whether `root` is a folder of this kind (its marker file, else its finder raises no DataError)."""
        if self.marker:
            return (root / self.marker).is_file()
        if not self.finder:
            return False
        from inside_core.data.errors import DataError

        try:
            _imported(self.finder)(root)
        except DataError:
            return False
        return True

    def generate(self, folder: Path, progress: bool = False, **settings: Any) -> Any:
        """Write this kind's synthetic data to `folder` with the generator's `settings`."""
        return _imported(self.generator)(folder, progress=progress, **settings)

    def default_data(self) -> Path:
        """The bundled synthetic folder of this kind, generated (seeded) on first use."""
        from inside_core.data.defaults import default_data_dir

        return Path(default_data_dir(self.name))

    def evaluate(self, model: Any, card: dict, data: str | Path, split: str, seed: int | None,
                 tta: bool = False) -> dict:
        """The metrics of `model` (its `card`, whose inference recipe applies) on the `split` of folder `data`
        (inside_core.evaluate); `tta`: averaged over the in-plane symmetries (inside_core.postprocess)."""
        return _imported(self.evaluator)(model, card, data, split, seed, tta=tta)

    def comparison_tables(self, results: list[tuple[dict, dict]], fmt: str) -> list[str]:
        """`inside compare`'s tables for [(card, metrics), ...] of this kind."""
        return _imported(self.tables)(results, fmt)

    def card_extras(self, data_config: dict) -> dict[str, Any]:
        """What a trained model's card records about this kind's data (merged into the card, section by section)."""
        return _imported(self.card_fields)(data_config) if self.card_fields else {}

    def export(self, data: str | Path, folder: Path, **options: Any) -> None:
        """Write a folder of this kind in the nnU-Net layout (`inside data export`)."""
        if not self.exporter:
            raise ValueError(f"cannot export {self.name!r}; choose {', '.join(exportable())}")
        _imported(self.exporter)(data, folder, **options)

    def source_class(self) -> type:
        """The dashboard's source class for a folder of this kind (imported here, when first asked)."""
        return _imported(self.page_source)


PHANTOM_ONLY = ("Trained on a synthetic cardiac phantom only, never on real MRI: on a real scan its masks show what "
                "the conditioning does, not a measurement.")

_EVALUATE = "inside_core.evaluate:evaluate_"  # the evaluators' common prefix

DATASETS: dict[str, DatasetKind] = {kind.name: kind for kind in (
    DatasetKind("clevr-seg", "CLEVR-Seg", "clevr-seg/", "app.sources:ClevrSource",
                {"architecture": {"name": "encoder_decoder", "cond_dim": 4, "image_size": [200, 200]},
                 "card": {"condition": "quadrant", "image_size": [200, 200]}},
                loader="inside_core.data.clevr_seg:load_split",
                validator="inside_core.data.validate:validate_clevr_seg",
                generator="inside_core.data.generate_clevr_seg:generate_clevr_seg",
                default_settings={"count": 100, "seed": 0, "size": 200}, evaluator=_EVALUATE + "images",
                model="clevr-seg-quadrant-inside", unit="images", condition="quadrant",
                finder="inside_core.data.clevr_seg:resolve_root",
                exporter="inside_core.data.nnunet_convert:export_clevr_seg"),
    DatasetKind("acdc", "ACDC", "ACDC database/training/", "app.sources:AcdcSource",
                {"architecture": {"name": "unet", "cond_dim": 2, "image_size": [128, 128]},
                 "card": {"condition": "phase_slice", "image_size": [128, 128], "spacing": 1.37}},
                loader="inside_core.data.acdc:load_split", validator="inside_core.data.validate:validate_acdc",
                generator="inside_core.data.generate_acdc:generate_acdc",
                default_settings={"patients": 2, "test_patients": 2, "seed": 46}, evaluator=_EVALUATE + "slices",
                model="acdc-phantom-inside", unit="patients", condition="phase_slice",
                finder="inside_core.data.acdc:find_patient_folders", tables="inside_core.evaluate:acdc_comparison",
                card_fields="inside_core.data.acdc:card_fields", exporter="inside_core.data.nnunet_convert:export_acdc",
                spacing=True, synthetic_note=PHANTOM_ONLY, cardiac=True),
    DatasetKind("nnunet", "Your own (nnU-Net layout)", "Dataset001_Lesions/", "app.table_source:TableSource",
                None, loader="inside_core.data.nnunet:load_split",
                validator="inside_core.data.nnunet_validate:validate_nnunet",
                generator="inside_core.data.generate_lesions:generate_lesions",
                default_settings={"cases": 60, "seed": 2, "size": 96}, evaluator=_EVALUATE + "cases",
                model="lesions-inside", unit="cases", condition="table", marker="dataset.json",
                card_fields="inside_core.data.nnunet:card_extras", variables=True),
    DatasetKind("cubes3d", "Generated 3-D volumes (two cubes)", "cubes3d/", "app.volume_view:VolumeSource",
                None, loader="inside_core.data.cubes3d:Cubes3dDataset",
                validator="inside_core.data.cubes3d:validate_cubes3d",
                generator="inside_core.data.cubes3d:generate_cubes3d",
                default_settings={"count": 40, "seed": 2, "size": 16}, evaluator=_EVALUATE + "volumes",
                model="cubes3d-unet-inside", unit="volumes", condition="cube_half", marker="volumes.safetensors",
                volumes=True),
)}


def dataset_kind(name: Any) -> DatasetKind:
    """The kind named `name` (None: the oldest cards' CLEVR-Seg); ValueError naming the known ones."""
    name = DEFAULT_DATASET if name is None else name
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def card_dataset(card: dict) -> str:
    """The dataset a model card says its model was trained on."""
    return str(card.get("dataset") or DEFAULT_DATASET)


def exportable() -> list[str]:
    """The kinds `inside data export` writes in the nnU-Net layout."""
    return [kind.name for kind in DATASETS.values() if kind.exporter]


def detect_kind(root: str | Path) -> DatasetKind | None:
    """The kind of a folder: a kind's marker file first (unambiguous), then each kind's finder, in the
    registry's order; None if no kind recognises it."""
    root = Path(root)
    for kind in sorted(DATASETS.values(), key=lambda k: not k.marker):  # stable: the registry's order otherwise
        if kind.recognises(root):
            return kind
    return None
