"""Trace one slider move through the dashboard's code: which functions the explorer area calls, in order
(the hops docs/ARCHITECTURE.md draws), and how many files and cross-file call pairs take part.

    python benchmarks/trace_move.py            # the default page, "Location x" moved from -0.5 to 0.3

The page runs in Streamlit's AppTest (no browser); the move is written as the component writes it (the
control's key, before the run). Only calls into app/ and inside_core/ are recorded.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OURS = (str(REPO / "app"), str(REPO / "inside_core"))


def short(filename: str) -> str:
    return str(Path(filename).relative_to(REPO))


def trace_move(key: str = "loc_x", value: float = 0.3) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=300)
    at.run()
    hops: list[str] = []  # what explorer_area calls directly, in order
    pairs: Counter = Counter()
    files: set[str] = set()

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = frame.f_code.co_filename
        caller = frame.f_back.f_code.co_filename if frame.f_back else ""
        if not callee.startswith(OURS):
            return
        files.add(short(callee))
        if caller.startswith(OURS) and caller != callee:
            pairs[(short(caller), short(callee))] += 1
        if frame.f_back and frame.f_back.f_code.co_name == "explorer_area" and caller.endswith("main.py"):
            hops.append(f"{short(callee)}:{frame.f_code.co_name}")

    at.session_state[key] = value
    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        at.run()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    assert not at.exception, at.exception
    return {"hops": hops, "files": sorted(files), "pairs": pairs}


if __name__ == "__main__":
    found = trace_move()
    print("explorer_area calls, in order:")
    for n, hop in enumerate(found["hops"], 1):
        print(f"  {n:2d}. {hop}")
    print(f"{len(found['files'])} files of ours run; {len(found['pairs'])} cross-file pairs, "
          f"{sum(found['pairs'].values())} cross-file calls")
    backwards = [(a, b) for a, b in found["pairs"] if (b, a) in found["pairs"]]
    print("pairs calling each other both ways:", sorted(backwards) or "none")
    print("files:", ", ".join(found["files"]))
    app_pairs = {pair: n for pair, n in found["pairs"].items()
                 if pair[0].startswith("app/") and pair[1].startswith("app/")}
    print(f"app/ only: {len(app_pairs)} pairs, {sum(app_pairs.values())} calls")
