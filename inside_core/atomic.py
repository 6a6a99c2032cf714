"""Atomic file writes, cleanup of the temporary files a killed writer leaves, and one-line write errors.

A file is written to a temporary file beside it, flushed to disk and renamed over the final name
(`os.replace` is atomic), so a reader sees the old file or the new one, never half of one.
Temporary names carry the writer's PID, `.<name>.<pid>.<random>.tmp`: the next write of the same file
removes those whose writer is gone (a `kill -9` mid-write), or that are older than a day.

A failed write (disk full, no permission, read-only folder) raises `WriteError`, an OSError whose
message is one line naming the file: "runs/x/x.safetensors: cannot write (No space left on device)".
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = ["WriteError", "write_error", "atomic_write", "atomic_write_bytes", "atomic_write_text",
           "clean_stale_temps", "pid_alive"]

# mkstemp creates files readable by the owner only; outputs are meant to be shared
FILE_MODE = 0o644
# a temporary file younger than this is never removed (its writer may be on another host of a shared disk)
_GRACE_S = 60.0
_MAX_AGE_S = 24 * 3600.0


class WriteError(OSError):
    """A file that could not be written; str() is one line: '<path>: cannot write (<reason>)'."""

    def __str__(self) -> str:
        from inside_core.data.errors import printable  # here: inside_core.data imports this module

        return f"{printable(self.filename)}: cannot write ({self.strerror or 'error'})"


def write_error(error: OSError, path: str | os.PathLike) -> WriteError:
    """`error` as a WriteError naming `path` (the final file, not the temporary one)."""
    if isinstance(error, WriteError):
        return error
    return WriteError(error.errno, error.strerror or str(error), os.fspath(path))


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def clean_stale_temps(path: Path, patterns: Iterable[str] = ()) -> list[Path]:
    """Remove the temporary files of earlier writes of `path` whose writer is gone; returns them.

    Matches `.<name>.<pid>.*.tmp` (removed once that PID is gone) and the extra glob `patterns` (older
    names without a PID: removed once a minute old). Files younger than a minute are always kept.
    """
    removed = []
    now = time.time()
    folder = path.parent
    candidates = set(folder.glob(f".{glob_escape(path.name)}.*.tmp"))
    for pattern in patterns:
        candidates |= set(folder.glob(pattern))
    for candidate in sorted(candidates):
        try:
            age = now - candidate.lstat().st_mtime
        except OSError:
            continue
        middle = candidate.name[len(path.name) + 2:].split(".")[0] if candidate.name.startswith(
            f".{path.name}.") else ""
        owner = int(middle) if middle.isdigit() else None
        if owner == os.getpid() or age < _GRACE_S:
            continue
        if age > _MAX_AGE_S or owner is None or not pid_alive(owner):
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def glob_escape(name: str) -> str:
    """`name` with glob's special characters taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], mode: int = FILE_MODE,
                 stale_patterns: Iterable[str] = ()) -> None:
    """Call `write(handle)` on a temporary file beside `path`, fsync it, rename it over `path`.

    Leftover temporary files of earlier, killed writes of `path` are removed first. Any OSError
    becomes a WriteError naming `path`; the temporary file never stays behind.
    """
    path = Path(path)
    try:
        for folder in (path.parent, *path.parent.parents):  # the first existing ancestor must be a folder
            if folder.exists():
                if not folder.is_dir():
                    raise NotADirectoryError(errno.ENOTDIR, f"{os.fsdecode(folder)!r} is a file, not a folder")
                break
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(path, stale_patterns)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    except OSError as error:
        raise write_error(error, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise write_error(error, path) from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_write`)."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
