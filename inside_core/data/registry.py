"""The dataset kinds, registered by name beside the conditions and the networks: what each one is called on
the page, how its folders are loaded and checked, where its bundled data comes from, what the dashboard
reads it with, and the random-weight models the page offers before any checkpoint exists.

    kind = dataset_kind(card.get("dataset"))      # "clevr-seg", "acdc", "nnunet" (a user's folder)
    kind.display, kind.load(root, split, ...), kind.validate(root), kind.default_data()

The rest of the code asks a kind, never compares dataset names (`DATASETS` is the one list). The page's
source is named as "module:Class" and imported when used, so this module imports neither the app nor
Streamlit, and loading the registry loads no dataset code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DATASET = "clevr-seg"  # what a card without a "dataset" field was trained on (the oldest cards)


@dataclass(frozen=True)
class DatasetKind:
    """One dataset kind: its name (the cards' "dataset" field) and what the code asks about it."""

    name: str
    display: str  # on the page's dataset picker
    folder_hint: str  # the folder a user types, as an example
    page_source: str  # "module:Class" of the dashboard's source for a folder of this kind
    untrained: dict[str, Any] | None  # the demo models' architecture and card (None: only a model defines z)
    spacing: bool = False  # images are resampled to the card's pixel spacing (mm)
    variables: bool = False  # z comes from the folder's declared variables (a card lists the model's subset)
    synthetic_note: str = ""  # said wherever a model trained on this kind's synthetic data is used
    volumes: bool = False  # samples are 3-D volumes (the page shows them slice by slice: app/volume_view.py)

    def load(self, root: str | Path, split: str, **options: Any) -> Any:
        """The training / evaluation dataset of one split (`inside_core.train.build_dataset` builds it)."""
        from inside_core.train import build_dataset

        return build_dataset(self.name, root, split, **options)

    def validate(self, root: str | Path) -> Any:
        """`inside data validate`'s report for a folder of this kind."""
        from inside_core.data.validate import validate

        return validate(root, self.name)

    def default_data(self) -> Path:
        """The bundled synthetic folder of this kind, generated (seeded) on first use."""
        from inside_core.data.defaults import default_data_dir

        return Path(default_data_dir(self.name))

    def source_class(self) -> type:
        """The dashboard's source class for a folder of this kind (imported here, when first asked)."""
        module, _, name = self.page_source.partition(":")
        return getattr(importlib.import_module(module), name)


PHANTOM_ONLY = ("Trained on a synthetic cardiac phantom only, never on real MRI: on a real scan its masks show what "
                "the conditioning does, not a measurement.")

DATASETS: dict[str, DatasetKind] = {kind.name: kind for kind in (
    DatasetKind("clevr-seg", "CLEVR-Seg", "clevr-seg/", "app.sources:ClevrSource",
                {"architecture": {"name": "encoder_decoder", "cond_dim": 4, "image_size": [200, 200]},
                 "card": {"condition": "quadrant", "image_size": [200, 200]}}),
    DatasetKind("acdc", "ACDC", "ACDC database/training/", "app.sources:AcdcSource",
                {"architecture": {"name": "unet", "cond_dim": 2, "image_size": [128, 128]},
                 "card": {"condition": "phase_slice", "image_size": [128, 128], "spacing": 1.37}},
                spacing=True, synthetic_note=PHANTOM_ONLY),
    DatasetKind("nnunet", "Your own (nnU-Net layout)", "Dataset001_Lesions/", "app.table_source:TableSource",
                None, variables=True),
    DatasetKind("cubes3d", "Generated 3-D volumes (two cubes)", "cubes3d/", "app.volume_view:VolumeSource",
                None, volumes=True),
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
