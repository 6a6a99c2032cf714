"""Every teaching notebook runs top to bottom on the bundled defaults (outputs are not kept)."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in cells if c["cell_type"] == "code")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    # run in the notebook's own folder, as `jupyter lab notebooks/` would; any error fails the test
    client = NotebookClient(notebook, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    outputs = [o for c in notebook.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]

    # the notebooks teach by pictures: the executed notebook holds figures (PNGs or interactive widget views).
    # (Whether a top-level plt.show() leaves a PNG depends on the kernel's matplotlib backend, so only the
    # presence of pictures is asserted.)
    pictures = [o for o in outputs if "image/png" in o.get("data", {})
                or "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert pictures, f"{path.name}: the executed notebook shows no figure"
