"""Which folders a visitor of the dashboard may open: the operator's `INSIDE_DATA_ROOTS` (docs/dashboard.md).

The page has a folder field, a checkpoint path field, and both can come from a shared link
(`?source=folder&data_dir=/any/path`). On a laptop that is the user's own disk; on a lab server it would
let any visitor read whatever the server process can. So:

- `INSIDE_DATA_ROOTS` (folders separated by `os.pathsep`, ':' on Linux) confines every folder and
  checkpoint path a visitor types or links to those folders (symlinks resolved before comparing);
- without it, paths are open only while the server listens on the loopback address alone (the repo's
  `.streamlit/config.toml` sets `server.address = "localhost"`); listening beyond it (`0.0.0.0`, a LAN
  address, or Streamlit's default of every interface when no address is set) turns folder and path access
  off, and the page says in one line how to turn it on.

Pure functions of (path, roots, address): the page calls `path_problem` where it opens a typed path.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

__all__ = ["ENVIRONMENT_VARIABLE", "data_roots", "is_loopback", "access_problem", "path_problem"]

ENVIRONMENT_VARIABLE = "INSIDE_DATA_ROOTS"


def data_roots(value: str | None = None) -> list[Path]:
    """The operator's roots (resolved), from `value` or the environment variable; [] when unset."""
    text = os.environ.get(ENVIRONMENT_VARIABLE, "") if value is None else value
    return [Path(os.path.realpath(os.path.expanduser(part.strip())))
            for part in text.split(os.pathsep) if part.strip()]


def is_loopback(address: str | None) -> bool:
    """Whether a server bound to `address` is reachable from this machine only. None or "" is Streamlit's
    default, every interface: not loopback."""
    if not address or not address.strip():
        return False
    address = address.strip().strip("[]")
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve to any interface
        return False


def access_problem(address: str | None, roots: list[Path] | None = None) -> str | None:
    """None if visitors may open folders and paths (confined to the roots when there are any); otherwise
    the one line the page shows."""
    roots = data_roots() if roots is None else roots
    if roots or is_loopback(address):
        return None
    return (f"Opening folders and checkpoint paths is off: this server listens beyond this machine "
            f"(server.address {address or 'unset: every interface'}) and {ENVIRONMENT_VARIABLE} is not set. "
            f"Start it with {ENVIRONMENT_VARIABLE}=/data/one{os.pathsep}/data/two to allow those folders, "
            "or with --server.address localhost.")


def path_problem(path: str | os.PathLike, address: str | None, roots: list[Path] | None = None) -> str | None:
    """None if a visitor may open `path`; otherwise the one line the page shows (it never says whether the
    path exists)."""
    roots = data_roots() if roots is None else roots
    problem = access_problem(address, roots)
    if problem or not roots:
        return problem
    real = Path(os.path.realpath(os.path.expanduser(os.fspath(path))))
    if any(real == root or root in real.parents for root in roots):
        return None
    return (f"{os.fspath(path)}: outside the folders this server allows ({ENVIRONMENT_VARIABLE}: "
            f"{os.pathsep.join(str(root) for root in roots)})")
