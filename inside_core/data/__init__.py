"""Data: CLEVR-Seg and ACDC loaders over the real on-disk layouts, a user's own folder in the nnU-Net v2
raw layout with a conditions table (docs/your-data.md), generated 3-D volumes, and generators that write
them. Each kind is registered in `inside_core.data.registry`.

See docs/datasets.md for the layouts, the conditioning encodings and how to use a real download.
"""

from inside_core.data.acdc import AcdcDataset
from inside_core.data.clevr_seg import ClevrSegDataset
from inside_core.data.collate import collate
from inside_core.data.cubes3d import Cubes3dDataset
from inside_core.data.defaults import default_data_dir, prepare_default_data
from inside_core.data.errors import DataError
from inside_core.data.generate_acdc import generate_acdc
from inside_core.data.generate_clevr_seg import generate_clevr_seg
from inside_core.data.generate_lesions import generate_lesions
from inside_core.data.nnunet import NnUNetDataset
from inside_core.data.nnunet_validate import validate_nnunet
from inside_core.data.validate import Report, validate, validate_acdc, validate_clevr_seg

__all__ = [
    "AcdcDataset",
    "ClevrSegDataset",
    "Cubes3dDataset",
    "DataError",
    "NnUNetDataset",
    "Report",
    "collate",
    "default_data_dir",
    "generate_acdc",
    "generate_clevr_seg",
    "generate_lesions",
    "prepare_default_data",
    "validate",
    "validate_acdc",
    "validate_clevr_seg",
    "validate_nnunet",
]
