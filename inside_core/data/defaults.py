"""The offline default datasets: small SYNTHETIC sets generated on first use into the cache folder.

- "clevr-seg": 100 synthetic CLEVR-Seg scenes, 200 x 200, seed 0 (`inside data clevr-seg --count 100 --seed 0`):
  72 train / 8 val / 20 test.
- "acdc": 4 synthetic cardiac phantom patients in the ACDC layout, 2 under training/ (1 train, 1 val) and
  2 under testing/ (the test split), seed 46 (`inside data acdc --patients 2 --test-patients 2 --seed 46`).
- "nnunet": the example of a user's own dataset, 60 generated lesion slices in the nnU-Net layout, seed 2
  (`inside data lesions --cases 60 --seed 2`): cases the shipped lesions-inside model never saw (seed 1).
- "cubes3d": 40 generated 16^3 volumes with two cubes, seed 2 (`inside data cubes3d --count 40 --seed 2`):
  volumes the shipped cubes3d-unet-inside model never saw (trained on seed 1, tested on seed 1000).

They are what the dashboard shows before a user points it at real data, and they are generated while a
first-time user waits for the page (issue 11): small enough to be written in a few seconds on two cores.
Seed 46 is one whose four patients are of typical size (165-220 px, 8-16 slices, 12-18 frames; the
generator also draws 430 x 430 px stacks, which take ten times longer to write). The shipped models were
trained and evaluated on their own, larger generated sets (their cards' `data.generate`), not on these.

They live in `<cache>/datasets/<kind>-<settings>-v<version>` (cache = $INSIDE_CACHE_DIR or
~/.cache/inside-explorer). Generation writes a temporary folder and renames it, so a folder under the
final name is always complete; two processes racing both generate and the second rename loses harmlessly.
"""

from __future__ import annotations

from pathlib import Path

from inside_core.data.cache import cache_root
from inside_core.data.registry import DATASETS, dataset_kind

# bump when a generator's output changes, so old cached defaults are not reused
GENERATOR_VERSION = 4  # 2: the short-axis cine SSFP phantom (issue 14); 3: the smaller defaults (issue 11);
# 4: the phantom closer to cine SSFP, stored in any voxel order (issue 20)
# each kind's generator settings, from the registry (inside_core.data.registry); tests shrink them here
DEFAULTS = {name: dict(kind.default_settings) for name, kind in DATASETS.items()}


def _folder(kind: str) -> Path:
    settings = DEFAULTS[kind]
    tag = "-".join(f"{key}{value}" for key, value in settings.items())
    return cache_root() / "datasets" / f"{kind}-{tag}-v{GENERATOR_VERSION}"


def default_data_dir(kind: str, progress: bool = False) -> Path:
    """Path of the default synthetic dataset of `kind` (a registry name: "clevr-seg", "acdc", ...),
    generated on first use."""
    if kind not in DEFAULTS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {', '.join(DEFAULTS)}")
    folder = _folder(kind)
    if folder.is_dir():
        return folder
    try:
        dataset_kind(kind).generate(folder, progress=progress, **DEFAULTS[kind])
    except (OSError, FileExistsError):
        if not folder.is_dir():  # not a lost race: a real failure
            raise
    return folder


def prepare_default_data(progress: bool = True) -> dict[str, Path]:
    """Generate (if needed) every default dataset; for CI and first-time setup."""
    return {kind: default_data_dir(kind, progress=progress) for kind in DEFAULTS}
