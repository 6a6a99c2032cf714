"""One way to open an untrusted file: a regular file only, inside its folder, read no further than its kind's limit.

Every reader of the package opens files through here, so the same three promises hold everywhere:

- a FIFO, a device (`/dev/zero`), a socket or a folder is refused at once (opened non-blocking, so a FIFO
  with no writer cannot hang the reader; `fstat` tells its kind before a byte is read);
- a path named inside a file (`dataset.json`'s conditions table, splits, scene lists), or a symlink, that
  resolves outside its dataset folder is refused (`confined`), and the message never quotes the file;
- a file inside a dataset folder (registered by the loaders with `dataset_folder`, the first thing each
  kind does with a folder) that is, or sits under, a symlink resolving outside that folder is refused
  ('... links outside the dataset folder'), wherever it is opened from: loading, `inside data validate`,
  the page, a lazy read long after loading. `INSIDE_DATA_ROOTS` (inside_core.data_roots), when set, lists
  the folders such links may lead to as well (nnU-Net layouts often link their images from shared storage);
- at most the limit of the file's kind is read (`KINDS` -> `inside_core.limits`), counted while reading:
  a size of 0 from `fstat` (procfs, a growing file) is not trusted.

JSON is parsed with `parse_json`: nesting deeper than `MAX_JSON_DEPTH` (Python's RecursionError included)
and, where asked, non-finite numbers (`NaN`, `Infinity`, `1e400`) are one-line errors.

Every problem is a `DataError`: '<file>: <problem>'.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from inside_core.data.errors import DataError
from inside_core.data_roots import ENVIRONMENT_VARIABLE, data_roots
from inside_core.limits import limit, over_limit

__all__ = ["KINDS", "MAX_JSON_DEPTH", "confined", "dataset_folder", "open_regular", "read_bytes", "read_text",
           "parse_json", "read_json", "finite_number"]

# the limit (inside_core.limits) that bounds each kind of file
KINDS = {
    "text": "text_bytes",  # Info.cfg, small configuration files
    "json": "json_bytes",  # dataset.json, splits_final.json, scene files
    "table": "table_bytes",  # a conditions CSV / TSV
    "image": "image_file_bytes",  # PNG / JPEG (its pixels are checked from the header, safe_io.open_image)
    "volume": "volume_bytes",  # a NIfTI file (stored bytes; its voxels are checked from the header)
    "checkpoint": "checkpoint_bytes",
    "card": "card_bytes",
}
MAX_JSON_DEPTH = 64  # real dataset.json / scene / card files nest 4-6 levels


def _kind_name(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def confined(path: str | os.PathLike, root: str | os.PathLike, what: str = "the dataset folder") -> Path:
    """`path` if it resolves inside `root`, symlinks followed; otherwise a DataError naming the path as
    written, never what it points at. A name read from a file is joined first: `confined(root / name, root)`
    (an absolute name then stays absolute, and is refused unless it lies inside `root`)."""
    root_real = Path(os.path.realpath(root))
    full = Path(path)
    real = Path(os.path.realpath(full))
    if real != root_real and root_real not in real.parents:
        raise DataError(full, f"leads outside {what} {root} (absolute paths, '..' and symlinks out are refused)")
    return full


# dataset folders seen by a loader: the folder as written (absolute) -> its real path. Only ever grows, by
# one entry per folder opened: a file under a registered folder is checked wherever it is opened, later too
_DATASET_FOLDERS: dict[str, str] = {}


def _inside(real: str, folder_real: str) -> bool:
    return real == folder_real or real.startswith(folder_real.rstrip(os.sep) + os.sep)


def dataset_folder(root: str | os.PathLike) -> Path:
    """`root` (user-expanded), registered as a dataset folder: from now on every file opened under it must
    resolve inside it (or inside a folder of INSIDE_DATA_ROOTS), or `open_regular` refuses it."""
    root = Path(root).expanduser()
    _DATASET_FOLDERS.setdefault(os.path.abspath(root), os.path.realpath(root))
    return root


def _link_problem(path: str | os.PathLike) -> str | None:
    """The problem if `path` lies under a registered dataset folder as written but resolves outside it."""
    written = os.path.abspath(path)
    folders = [(folder, real) for folder, real in _DATASET_FOLDERS.items() if _inside(written, folder)]
    if not folders:
        return None
    real = os.path.realpath(path)
    if any(_inside(real, folder_real) for _, folder_real in folders):
        return None
    if any(_inside(real, str(allowed)) for allowed in data_roots()):
        return None
    folder = max((folder for folder, _ in folders), key=len)
    return (f"links outside the dataset folder {folder} (symlinks out of a dataset folder are refused; "
                    f"{ENVIRONMENT_VARIABLE} lists further folders they may lead to)")


def open_regular(path: str | os.PathLike, kind: str, root: str | os.PathLike | None = None) -> BinaryIO:
    """The file opened for binary reading: a regular file, within `root` if given and within its registered
    dataset folder (`dataset_folder`) if it lies under one, its size within the
    kind's limit; else a one-line DataError. The caller reads at most `limit(KINDS[kind])` (+1 to notice
    a file that grew): `read_bytes` does."""
    if root is not None:
        confined(path, root)
    link = _link_problem(path)
    if link:
        raise DataError(path, link)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise DataError(path, "file missing") from None
    except IsADirectoryError:
        raise DataError(path, "a folder, not a file") from None
    except OSError as error:
        raise DataError(path, f"cannot open ({error.strerror or error})") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise DataError(path, f"{_kind_name(info.st_mode)}, not a regular file: refused")
        problem = over_limit(KINDS[kind], info.st_size)
        if problem:
            raise DataError(path, f"file too large: {problem}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_bytes(path: str | os.PathLike, kind: str, root: str | os.PathLike | None = None) -> bytes:
    """The whole file (see `open_regular`), refused if more than its kind's limit comes out."""
    bound = int(limit(KINDS[kind]))
    with open_regular(path, kind, root) as handle:
        try:
            data = handle.read(bound + 1)
        except OSError as error:
            raise DataError(path, f"cannot read ({error.strerror or error})") from None
    if len(data) > bound:
        raise DataError(path, f"file too large: more than {over_limit(KINDS[kind], len(data))}")
    return data


def read_text(path: str | os.PathLike, kind: str = "text", root: str | os.PathLike | None = None,
              encoding: str = "utf-8") -> str:
    """The file as text (see `read_bytes`); bytes that do not decode are one line, not quoted."""
    data = read_bytes(path, kind, root)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise DataError(path, f"not {encoding} text (byte {error.start:,} cannot be decoded)") from None


def finite_number(text: str) -> float:
    """float(text) if finite; ValueError otherwise ('1e400' is infinite, 'nan' is not a number)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text.strip()[:20]!r} is not a finite number")
    return value


def _reject_constant(text: str) -> float:
    raise ValueError(f"{text} is not a finite number")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                break
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(text: str | bytes, name: object, what: str = "JSON", finite: bool = True) -> Any:
    """JSON text parsed, or a one-line DataError naming `name` ('unreadable <what> (...)'): syntax,
    nesting deeper than MAX_JSON_DEPTH, and (when `finite`) NaN, Infinity or a number too large for a float."""
    hooks = {"parse_constant": _reject_constant, "parse_float": finite_number} if finite else {}
    deep = f"unreadable {what} (nested deeper than {MAX_JSON_DEPTH} levels)"
    try:
        value = json.loads(text, **hooks)
    except RecursionError:
        raise DataError(name, deep) from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, a non-finite number
        raise DataError(name, f"unreadable {what} ({str(error).splitlines()[0][:200]})") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise DataError(name, deep)
    return value


def read_json(path: str | os.PathLike, what: str = "JSON", kind: str = "json", root: str | os.PathLike | None = None,
              finite: bool = True) -> Any:
    """A JSON file read through `read_bytes` and `parse_json`."""
    return parse_json(read_bytes(path, kind, root), path, what, finite)
