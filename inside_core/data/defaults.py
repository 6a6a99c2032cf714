"""The offline default datasets: small SYNTHETIC sets generated on first use into the cache folder.

- "clevr-seg": 300 synthetic CLEVR-Seg scenes, 200 x 200, seed 0 (`inside data clevr-seg --count 300 --seed 0`).
- "acdc": 12 synthetic cardiac phantom patients, seed 0, in the ACDC layout under training/
  (`inside data acdc --patients 12 --seed 0`).

They live in `<cache>/datasets/<kind>-<settings>-v<version>` (cache = $INSIDE_CACHE_DIR or
~/.cache/inside-explorer). Generation writes a temporary folder and renames it, so a folder under the
final name is always complete; two processes racing both generate and the second rename loses harmlessly.
"""

from __future__ import annotations

from pathlib import Path

from inside_core.data.cache import cache_root

# bump when a generator's output changes, so old cached defaults are not reused
GENERATOR_VERSION = 2  # 2: the short-axis cine SSFP phantom (issue 14)
DEFAULTS = {
    "clevr-seg": {"count": 300, "seed": 0, "size": 200},
    "acdc": {"patients": 12, "seed": 0},
}


def _folder(kind: str) -> Path:
    settings = DEFAULTS[kind]
    tag = "-".join(f"{key}{value}" for key, value in settings.items())
    return cache_root() / "datasets" / f"{kind}-{tag}-v{GENERATOR_VERSION}"


def default_data_dir(kind: str, progress: bool = False) -> Path:
    """Path of the default synthetic dataset of `kind` ("clevr-seg" or "acdc"), generated on first use."""
    if kind not in DEFAULTS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {', '.join(DEFAULTS)}")
    folder = _folder(kind)
    if folder.is_dir():
        return folder
    try:
        if kind == "clevr-seg":
            from inside_core.data.generate_clevr_seg import generate_clevr_seg

            generate_clevr_seg(folder, progress=progress, **DEFAULTS[kind])
        else:
            from inside_core.data.generate_acdc import generate_acdc

            generate_acdc(folder, progress=progress, **DEFAULTS[kind])
    except (OSError, FileExistsError):
        if not folder.is_dir():  # not a lost race: a real failure
            raise
    return folder


def prepare_default_data(progress: bool = True) -> dict[str, Path]:
    """Generate (if needed) every default dataset; for CI and first-time setup."""
    return {kind: default_data_dir(kind, progress=progress) for kind in DEFAULTS}
