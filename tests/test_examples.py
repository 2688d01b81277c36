"""examples/width_study.ipynb runs top to bottom in a real Jupyter kernel.

The kernel is this interpreter (``sys.executable``, through a kernel spec written for the
test), so it imports the tuner under test; the notebook runs in a temporary folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from tests.helpers import tuner_environment
from tuner.data import DEBIAN_FASHION_MNIST

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "width_study.ipynb"


def test_notebook_is_saved_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def kernel_for_this_interpreter(folder: Path) -> KernelManager:
    spec = folder / "tuner-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "tuner test", "language": "python"})
    )
    return KernelManager(
        kernel_name="tuner-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder)])
    )


def outputs(cell: nbformat.NotebookNode, kind: str) -> list[str]:
    return [o["data"][kind] for o in cell.outputs if kind in o.get("data", {})]


@pytest.mark.slow
@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason="needs Debian's dataset-fashion-mnist (installed by .ci/run)",
)
def test_width_study_notebook_runs_and_shows_the_comparison(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        km=kernel_for_this_interpreter(tmp_path / "kernels"),
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    # Errors raise CellExecutionError, naming the cell.
    client.execute(env=tuner_environment())

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(o.output_type != "error" for cell in code for o in cell.outputs)
    comparison = [
        html
        for cell in code
        if cell.source.strip() == "report"
        for html in outputs(cell, "text/html")
    ]
    assert len(comparison) == 1
    assert "<th>verdict</th>" in comparison[0] and "<th>test accuracy</th>" in comparison[0]
    for variant in ("small-bn-dropout", "small-dropout"):
        assert f"<td>{variant}</td>" in comparison[0]
    # A variant with grid axes, defined in code: its size counts every axis.
    (axes,) = [cell for cell in code if "ablation.grid_size" in cell.source]
    assert outputs(axes, "text/plain") == [
        "(8, {'batch_norm': (True, False), 'dropout': (0.0, 0.2)})"
    ]
    # Figures come back as pictures, not as "<Figure size ...>" text.
    assert len([png for cell in code for png in outputs(cell, "image/png")]) == 5
    # Progress is one live widget per study, not a line per trial.
    (launch,) = [cell for cell in code if "tuner.launch(" in cell.source]
    assert len(outputs(launch, "application/vnd.jupyter.widget-view+json")) == 2
    assert not any("trial 0 [" in text for text in outputs(launch, "text/plain"))
