"""INSIDE Explorer's model package: conditioning layers, networks, data, training and figures.

Pure PyTorch and numpy; the dashboard (`app/`) and the notebooks are views over it.
"""

# first, before anything imports torch: importing it sets the OpenMP wait policy (its docstring says why)
import inside_core.threads  # noqa: F401  # isort: skip
from inside_core.checkpoints import load_checkpoint, save_checkpoint
from inside_core.layers import (
    INSIDE,
    FiLM,
    FiLMParams,
    GuidingBlock,
    GuidingParams,
    InsideParams,
    gaussian_attention,
    pixel_centres,
)
from inside_core.networks import ModelOutput, build_model, list_models, register_model
from inside_core.wrap import condition  # also registers build_model("wrapped", ...)

__version__ = "0.1.0"

__all__ = [
    "FiLM",
    "FiLMParams",
    "GuidingBlock",
    "GuidingParams",
    "INSIDE",
    "InsideParams",
    "ModelOutput",
    "build_model",
    "condition",
    "gaussian_attention",
    "list_models",
    "load_checkpoint", "save_checkpoint",
    "pixel_centres",
    "register_model",
]
