"""notebooks/quickstart.ipynb runs top to bottom (it is part of the documentation)."""

import nbformat
import pytest
from nbclient import NotebookClient

from tests.test_cli import ROOT


@pytest.mark.slow
def test_quickstart_notebook_executes(optimised_subprocesses):
    notebook = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    texts = " ".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "return over 200 steps" in texts
    # The plot (PNG) and the rendered rollout (HTML) reached the notebook.
    data = [
        o.get("data", {}) for o in outputs if o.output_type in ("display_data", "execute_result")
    ]
    assert any("image/png" in d for d in data)
    assert any("text/html" in d and "<html" in d["text/html"] for d in data)
