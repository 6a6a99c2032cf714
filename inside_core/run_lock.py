"""One run per output folder: a lock file in `--out` naming the PID and host of the run that holds it.

    with RunLock(out_dir):     # RunLockError (one line) if another live run holds out_dir
        ...train...

The lock is `<out>/.inside-run.lock`, JSON {"pid", "host", "started", "start_ticks"}, created with its
content in one step (a hard link of a finished temporary file), so no reader sees an empty lock. A
lock whose process is gone (a run killed with `kill -9`, a crash) is stale: the next run says so on
stderr and takes it over. A lock from another host cannot be checked from here and is never taken
over; delete the file by hand if that run is known to be dead. PIDs are reused: the lock also keeps
the process's start time (Linux /proc), so a new process that got the same PID is not mistaken for
the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from inside_core.atomic import pid_alive, write_error
from inside_core.data.errors import DataError, printable
from inside_core.data.files import read_bytes

__all__ = ["RunLock", "RunLockError", "LOCK_NAME"]

LOCK_NAME = ".inside-run.lock"


class RunLockError(ValueError):
    """Another run holds the output folder; the message is one line naming the lock file and its holder."""


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: split after its last ')'
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def _holder_alive(holder: dict) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    recorded, now = holder.get("start_ticks"), _start_ticks(pid)
    return recorded is None or now is None or recorded == now  # same PID, other process: not the run


class RunLock:
    """Hold `<out_dir>/.inside-run.lock` while a run writes into `out_dir` (a context manager)."""

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_NAME
        self.held = False

    def _content(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "start_ticks": _start_ticks(os.getpid())}).encode()

    def _create(self) -> bool:
        """Create the lock with its content in one step; False if a lock file exists."""
        temp = self.out_dir / f".inside-run.lock.{os.getpid()}.tmp"
        try:
            temp.write_bytes(self._content())
            try:
                os.link(temp, self.path)  # atomic, fails if the lock exists
            except FileExistsError:
                return False
            except OSError:  # file systems without hard links: exclusive create, then write
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "wb") as handle:
                    handle.write(self._content())
            return True
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()

    def _holder(self) -> dict | None:
        try:
            holder = json.loads(read_bytes(self.path, "text"))  # a regular file, bounded
        except FileNotFoundError:
            return None
        except DataError as error:
            return None if error.problem == "file missing" else {}
        except (OSError, ValueError, RecursionError):
            return {}  # unreadable: treated as stale if old enough, below
        return holder if isinstance(holder, dict) else {}

    def acquire(self) -> RunLock:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for _ in range(3):
                if self._create():
                    self.held = True
                    return self
                holder = self._holder()
                if holder is None:
                    continue  # released meanwhile: try again
                here = socket.gethostname()
                host = holder.get("host", here)
                if host != here:
                    raise RunLockError(
                        f"{printable(self.path)}: output folder in use by PID {holder.get('pid')} on host {host} "
                        f"(started {holder.get('started', '?')}); use another --out, or delete the lock if that run "
                        "is dead")
                if _holder_alive(holder):
                    raise RunLockError(
                        f"{printable(self.path)}: output folder in use by a running training (PID {holder['pid']}, "
                        f"started {holder.get('started', '?')}); use another --out or wait for it to finish")
                if not holder:  # unreadable content: a writer may be mid-way on a link-less file system
                    with contextlib.suppress(OSError):
                        if time.time() - self.path.stat().st_mtime < 10:
                            time.sleep(1)
                            continue
                print(f"{printable(self.path)}: stale lock of PID {holder.get('pid', '?')} (no such process), "
                      "taking it over", file=sys.stderr)
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        except OSError as error:
            raise write_error(error, self.path) from None
        raise RunLockError(f"{printable(self.path)}: could not take the lock (another run keeps taking it)")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        holder = self._holder()
        if holder and holder.get("pid") == os.getpid():  # only our own lock
            with contextlib.suppress(OSError):
                self.path.unlink()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
