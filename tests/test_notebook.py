"""notebooks/lesson.ipynb runs top to bottom (nbclient, a real Jupyter kernel) on the synthetic MNIST."""

import json
import re

import nbformat
from nbclient import NotebookClient

from conftest import REPO

NOTEBOOK = REPO / "notebooks" / "lesson.ipynb"


def test_the_notebook_is_stored_without_outputs_and_its_headings_are_in_both_languages():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    headings = [line for cell in notebook.cells if cell.cell_type == "markdown" for line in cell.source.splitlines()]
    headings = [line for line in headings if line.startswith("#")]
    assert len(headings) >= 9
    for heading in headings:  # Chinese, then the English after a middle dot
        chinese, _, english = heading.partition(" · ")
        assert re.search(r"[\u4e00-\u9fff]", chinese) and re.search(r"[A-Za-z]{3}", english), heading


def test_the_notebook_runs_top_to_bottom_on_the_synthetic_mnist(synthetic_mnist, tmp_path, monkeypatch):
    data_dir, md5 = synthetic_mnist
    monkeypatch.setenv("MLPLAB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MLPLAB_DATA_MD5", json.dumps(md5))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    printed = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert f"{data_dir}\n" in printed and "(1000, 28, 28)" in printed  # the synthetic data, not the real
    assert re.search(r"largest difference from autograd: [\d.e-]+\n", printed)
    assert re.search(r"epoch 2: training loss [\d.]+, accuracy [\d.]+%", printed)
    assert re.search(r"momentum: val/acc [\d.]+%  test/acc [\d.]+%\n +adam: val/acc [\d.]+%  test/acc", printed)
