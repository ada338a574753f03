"""notebooks/lesson.ipynb follows the lesson's sections, is stored with the outputs of one run top to bottom on the
real MNIST (so that it reads whole where it is not run: GitHub, the documentation site), and runs top to bottom
(nbclient, a real Jupyter kernel) on the synthetic MNIST, printing what the stored outputs show.

Its outputs are written again, after a change to it, with
`jupyter nbconvert --to notebook --execute --inplace notebooks/lesson.ipynb` (about a minute on 2 cores)."""

import json
import re

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO

NOTEBOOK = REPO / "notebooks" / "lesson.ipynb"
LESSON = (REPO / "docs" / "lesson_source.txt").read_text(encoding="utf-8")


def headings() -> list[str]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    lines = [line for cell in notebook.cells if cell.cell_type == "markdown" for line in cell.source.splitlines()]
    return [line for line in lines if line.startswith("#")]


def printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )


def test_the_notebook_is_stored_with_the_outputs_of_one_run_on_the_real_mnist():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "run it top to bottom once"
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"]
    shown = printed(notebook)
    assert shown.startswith("data\n(60000, 28, 28)")  # the shipped MNIST, named relative to the checkout
    check_printed(shown)


def test_the_notebooks_headings_are_in_both_languages():
    assert len(headings()) >= 9
    for heading in headings():  # Chinese, then the English after a middle dot
        chinese, _, english = heading.partition(" · ")
        assert re.search(r"[\u4e00-\u9fff]", chinese) and re.search(r"[A-Za-z]{3}", english), heading


def test_the_notebook_follows_the_lessons_sections_under_their_own_numbers_and_titles():
    """§2 to §5 and their subsections (not §2.1.1 and §2.1.2), in the lesson's order, each titled as the lesson
    titles it; then the lab, without a § of its own."""
    lesson = re.findall(r"^#{2,3} ([2-5](?:\.\d)?)\.? (.+)$", LESSON, flags=re.M)
    found = [re.match(r"#+ §([\d.]+) (.+?) · ", heading) for heading in headings()]
    assert [(match[1], match[2]) for match in found if match] == lesson
    assert len(lesson) == 20
    last_section = max(i for i, match in enumerate(found) if match)
    assert last_section < len(found) - 1 and "§" not in "".join(headings()[last_section + 1 :])  # the lab


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom_on_the_synthetic_mnist(synthetic_mnist, tmp_path, monkeypatch):
    data_dir, md5 = synthetic_mnist
    monkeypatch.setenv("MLPLAB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MLPLAB_DATA_MD5", json.dumps(md5))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    shown = printed(notebook)
    assert f"{data_dir}\n" in shown and "(1000, 28, 28)" in shown  # the synthetic data, not the real
    check_printed(shown)
    # §5: the lesson's code on 20 batches (the 16 of the synthetic data).
    assert re.search(r"Finished Training\n16 batches, mean loss [\d.]+;", shown)


def check_printed(printed: str) -> None:
    """What the notebook prints, wherever it runs."""
    assert re.search(r"model options: \[.*'cnn'.*'mlp'.*'rnn'.*\]\n", printed)  # §2.2's three kinds
    # §3.2 and §4.4: the hand-written gradients against autograd.
    assert re.search(r"784-512-256-10 network, largest difference from autograd: [\d.e-]+\n", printed)
    assert re.search(r"corrected §4\.4 gradients, largest difference from autograd: [\d.e-]+\n", printed)
    # §4.4: the printed backward products on n = 6 samples, m = 3 features, h = 4 hidden units.
    assert "∂L/∂W⁽²⁾ = ∂L/∂z⁽²⁾ · a⁽¹⁾ᵀ: (6 × 1)(4 × 6) does not multiply\n" in printed
    assert "∂L/∂a⁽¹⁾ = ∂L/∂z⁽²⁾ · W⁽²⁾: (6 × 1)(4 × 1) does not multiply\n" in printed
    assert "∂L/∂W⁽¹⁾ = ∂L/∂z⁽¹⁾ · Xᵀ: (6 × 4)(3 × 6) does not multiply\n" in printed
    assert "would broadcast to (6, 1)\n" in printed
    assert re.search(r"one step of η = 0.5: L ([\d.]+) -> ([\d.]+)\n", printed)
    # §3.3 and §3.4: each optimizer and each regularizer.
    for name in ("GradientDescent", "Momentum", "RMSProp", "Adam"):
        assert re.search(rf"{name}: training loss [\d.]+, accuracy [\d.]+%\n", printed), name
    assert re.search(r"Dropout: \d+% of the hidden units kept, each scaled by 2\.0\n", printed)
    assert re.search(r"early stopping: stopped after epoch \d+, best validation loss [\d.]+\n", printed)
    # §5: the lesson's code on a few batches; its loss line never prints, its accuracy is a whole number.
    assert re.search(r"Finished Training\n\d+ batches, mean loss [\d.]+;", printed) and "] loss: " not in printed
    accuracy = r"Accuracy of the network on the 10000 test images: \d+ %\nto two decimals: [\d.]+ % of \d+ test images"
    assert re.search(accuracy, printed)
    # The lab.
    assert re.search(r"momentum: val/acc [\d.]+%  test/acc [\d.]+%\n +adam: val/acc [\d.]+%  test/acc", printed)
