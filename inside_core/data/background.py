"""One dataset kind's bundled data, generated in a process of its own that never imports torch (issue 21).

    python inside_core/data/background.py [KIND]    # a registry name; none: the page's first kind

Run by path, not as `-m`: the page's first start on a clean cache waits for torch to import (~1.7 s on
two cores) and for the bundled data to be written (CLEVR-Seg ~1.4 s, ACDC ~5 s); app/bundled_data.py starts
this process before the page's script imports torch, so the two run at once. The generators need numpy,
PIL, scipy and nibabel only, but the packages `inside_core` and `inside_core.conditions` import torch in
their `__init__` (their public names, through inside_core.geometry). Here those `__init__` files run only
when one of their names is asked (`defer_package_init`), so a generator's own imports load no torch
(`imports_torch` checks it; tests/test_data_defaults.py). Same code, same settings, same seed: the files are
the bytes an in-process generation writes (tests/test_data_defaults.py compares them).

It runs at a lower priority (`NICE`) than the page's process: the page's own imports are what it overlaps,
so on a busy machine (the server's share of the cores already taken) they must not wait for it: at the same
priority, `import torch` beside it took 2-5x as long under load, the data coming no sooner
(`python benchmarks/first_page.py --overlap`; docs/dashboard.md).

Exit status: 0 when the folder is there (written now or before), 1 when generation failed (the page then
generates in its own process and shows that error), 2 for a name that is no dataset kind.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFERRED = ("inside_core", "inside_core.conditions")  # packages whose __init__ imports torch
NICE = 5  # added to this process's niceness (module docstring)


def defer_package_init(name: str) -> types.ModuleType:
    """Register package `name` without running its `__init__.py`; it runs on the first name asked of the
    package (`from inside_core.conditions import X`), so code that needs the package's own names still
    gets them, and code that imports only its submodules never runs it."""
    folder = ROOT.joinpath(*name.split("."))
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)

    def run_init(attribute: str):
        if attribute.startswith("__"):  # the import system's own probes (__path__, __spec__ ...)
            raise AttributeError(attribute)
        del package.__getattr__  # once: from here on the package is the ordinary one
        spec.loader.exec_module(package)
        return getattr(package, attribute)

    package.__getattr__ = run_init  # type: ignore[method-assign]
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)
    return package


def generate(kind: str | None) -> int:
    """Generate `kind`'s bundled data if its folder is missing; the exit status (module docstring)."""
    from inside_core.data.defaults import default_data_dir
    from inside_core.data.registry import DATASETS

    kind = kind or next(iter(DATASETS))  # the page's first kind, as its dataset picker
    if kind not in DATASETS:
        return 2
    try:
        default_data_dir(kind)
    except Exception as error:  # any failure: the page generates in its own process and says why
        print(f"bundled {kind} data not generated in the background ({type(error).__name__}: {error}); "
              "the page generates it itself", file=sys.stderr)
        return 1
    return 0


def imports_torch(kind: str) -> bool:
    """Whether importing `kind`'s generator (as `generate` does) imports torch; run in a fresh process."""
    from inside_core.data.registry import dataset_kind

    importlib.import_module("inside_core.data.defaults")
    importlib.import_module(dataset_kind(kind).generator.partition(":")[0])
    return "torch" in sys.modules


def main(argv: list[str]) -> int:
    sys.path[0] = str(ROOT)  # run by path: the repository, not this folder, is where imports start
    os.nice(NICE)
    for name in DEFERRED:
        defer_package_init(name)
    if argv[:1] == ["--imports-torch"]:
        print(imports_torch(argv[1]))
        return 0
    return generate(argv[0] if argv else None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
