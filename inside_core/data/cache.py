"""On-disk cache of preprocessed arrays, keyed by the source files and the preprocessing settings.

The key is a SHA-256 over (kind, settings, and for every source file its path, size and mtime), so a
changed, added or removed source file, or a change of any setting, gives a new key and a rebuild.
Entries are uncompressed `.npz` files (fast to load, no pickle) written atomically: a temp file in the
same folder, then `os.replace`, so a crash never leaves a half-written entry under the final name.

Cache root: `$INSIDE_CACHE_DIR`, default `~/.cache/inside-explorer`; arrays go to `<root>/arrays/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

# bump when the preprocessing code changes in a way that changes cached arrays
CACHE_FORMAT_VERSION = 1


def cache_root() -> Path:
    """The cache folder: $INSIDE_CACHE_DIR or ~/.cache/inside-explorer."""
    return Path(os.environ.get("INSIDE_CACHE_DIR") or Path.home() / ".cache" / "inside-explorer")


def fingerprint(kind: str, settings: dict, files: Iterable[Path]) -> str:
    """SHA-256 hex key of the settings and of each file's (path, size, mtime_ns)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"kind": kind, "version": CACHE_FORMAT_VERSION, **settings}, sort_keys=True).encode())
    for path in files:
        stat = os.stat(path)
        digest.update(f"\n{os.path.abspath(path)}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_folder(out: str | Path) -> Iterator[Path]:
    """Write a whole folder atomically: yields a temp folder beside `out`, renamed to `out` on success.

    `out` must not exist or be an empty folder; on any error the temp folder is removed, so a
    half-written dataset never appears under its final name.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: already exists and is not an empty folder; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield temp
        if out.exists():
            out.rmdir()
        os.replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz.tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise


def cached_arrays(
    kind: str, settings: dict, files: Iterable[Path], build: Callable[[], dict[str, np.ndarray]], use_cache: bool = True
) -> dict[str, np.ndarray]:
    """Load the arrays for (kind, settings, files) from the cache, or `build()` them and store them.

    Values must be numpy arrays without Python objects (strings as numpy unicode arrays are fine),
    because entries are loaded with allow_pickle=False.
    """
    if not use_cache:
        return build()
    key = fingerprint(kind, settings, files)
    path = cache_root() / "arrays" / f"{kind}-{key[:32]}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as entry:
                return {name: entry[name] for name in entry.files}
        except (OSError, ValueError, EOFError):
            pass  # unreadable entry (e.g. disk full earlier): rebuild and overwrite it
    arrays = build()
    try:
        _save_atomic(path, arrays)
    except OSError:
        pass  # a read-only or full cache folder must not stop loading
    return arrays


def encode_meta(items: list[dict]) -> np.ndarray:
    """A list of JSON-able dicts as a numpy unicode array (storable without pickle)."""
    return np.array(json.dumps(items, sort_keys=True))


def decode_meta(array: np.ndarray) -> list[dict]:
    return json.loads(str(array))
