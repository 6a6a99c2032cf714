"""On-disk cache of preprocessed arrays, keyed by the source files and the preprocessing settings.

The key is a SHA-256 over (kind, settings, and for every source file its path, size and mtime), so a
changed, added or removed source file, or a change of any setting, gives a new key and a rebuild.
Entries are uncompressed `.npz` files (fast to load, no pickle) written atomically: a temp file in the
same folder, then `os.replace`, so a crash never leaves a half-written entry under the final name (and
the next write removes the temp files a killed writer left). An entry that cannot be read anyway (a
truncated or corrupt file) is rebuilt, with a warning naming it.

Cache root: `$INSIDE_CACHE_DIR`, default `~/.cache/inside-explorer`; arrays go to `<root>/arrays/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from inside_core.atomic import atomic_write, pid_alive, write_error
from inside_core.data.errors import printable

# bump when the preprocessing code changes in a way that changes cached arrays
CACHE_FORMAT_VERSION = 1


def cache_root() -> Path:
    """The cache folder: $INSIDE_CACHE_DIR or ~/.cache/inside-explorer."""
    return Path(os.environ.get("INSIDE_CACHE_DIR") or Path.home() / ".cache" / "inside-explorer")


def fingerprint(kind: str, settings: dict, files: Iterable[Path]) -> str:
    """SHA-256 hex key of the settings and of each file's (path, size, mtime_ns). The path is the real one
    (symlinks resolved): a file swapped for a link elsewhere gives a new key, so its entry is rebuilt and the
    link is checked by the reader (`files.open_regular`) instead of being served from the cache."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"kind": kind, "version": CACHE_FORMAT_VERSION, **settings}, sort_keys=True).encode())
    for path in files:
        stat = os.stat(path)
        # fsencode: a file name that is not valid UTF-8 keeps its bytes (the same bytes as before for valid names)
        digest.update(b"\n" + os.fsencode(os.path.realpath(path)) + f"\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_folder(out: str | Path) -> Iterator[Path]:
    """Write a whole folder atomically: yields a temp folder beside `out`, renamed to `out` on success.

    `out` must not exist or be an empty folder; on any error the temp folder is removed, so a
    half-written dataset never appears under its final name. Temp folders that killed writers left
    beside `out` are removed first. An OSError (disk full, no permission) becomes one line naming `out`.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{printable(out)}: already exists and is not an empty folder; choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale_folders(out)
        temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    except OSError as error:
        raise write_error(error, out) from None
    try:
        yield temp
        if out.exists():
            out.rmdir()
        os.replace(temp, out)
    except BaseException as error:
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(error, OSError) and not isinstance(error, FileExistsError):
            raise write_error(error, out) from None
        raise


def _clean_stale_folders(out: Path) -> None:
    """Remove `.<out>.tmp-<pid>-*` folders of writers that are gone (older than a minute, to be safe)."""
    for folder in out.parent.glob(f".{out.name}.tmp-*"):
        owner = folder.name[len(out.name) + 6:].split("-")[0]
        try:
            old = time.time() - folder.lstat().st_mtime > 60
        except OSError:
            continue
        if old and folder.is_dir() and not (owner.isdigit() and pid_alive(int(owner))):
            shutil.rmtree(folder, ignore_errors=True)


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # `.{stem}.*.npz.tmp`: the temp names of earlier versions, cleaned too
    atomic_write(path, lambda handle: np.savez(handle, **arrays), stale_patterns=[f".{path.stem}.*.npz.tmp"])


def _load_entry(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry, or None (with a warning naming it) if it is truncated or corrupt."""
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as entry:
            return {name: entry[name] for name in entry.files}
    except Exception as error:  # BadZipFile, OSError, ValueError, EOFError, zlib.error, KeyError ...
        warnings.warn(f"{printable(path)}: unreadable cache entry ({type(error).__name__}), rebuilding it",
                      stacklevel=3)
        return None


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
        arrays = _load_entry(path)
        if arrays is not None:
            return arrays
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
