"""The notebooks in notebooks/ execute from top to bottom, in fast mode, in a scratch folder.

Each notebook ends with an assertion of the number it tells the reader about, so executing it
checks the story as well as the code. ``BAYESCALE_FAST=1`` uses the library's default sampler
(4 chains x 2000 draws; unset, longer chains); the kernel inherits ``BAYESCALE_DATA_DIR``
from conftest, so real datasets are read from the shared folder and nothing is downloaded; a
notebook that loads a dataset which is neither bundled nor found offline is skipped.
The kernel runs in ``tmp_path``: nothing is written into the repository.
"""

import re
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import require_dataset
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_quickstart",
    "02_chinchilla_replication",
    "03_kaplan_vs_chinchilla",
    "04_planning_a_big_run",
    "05_families",
    "06_downstream_accuracy",
]
_DATASET_LOAD = re.compile(r"datasets\.load\(\s*[\"']([a-z_]+)[\"']")
CELL_TIMEOUT = 600
"""Seconds per cell: a first nutpie compile takes 20-100 s on a loaded 2-core machine."""


def _stream_text(nb, name: str) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == name
    )


def test_notebooks_present():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    assert all(not c.outputs and c.execution_count is None for c in code), (
        f"{path.name} is committed with outputs; strip them"
    )
    assert "assert " in code[-1].source, f"{path.name} must end with an assertion"
    assert "BAYESCALE_FAST" in code[0].source, f"{path.name}'s first cell must read BAYESCALE_FAST"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESCALE_FAST", "1")
    nb = nbformat.read(path, as_version=4)
    for name in sorted(set(_DATASET_LOAD.findall("\n".join(c.source for c in nb.cells)))):
        require_dataset(name)  # e.g. Epoch's Chinchilla table: skip on a fresh offline clone
    # One extra cell reports the kernel's interpreter: it must be this venv's Python.
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint('KERNEL', sys.executable)"))
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the failing cell, on any error

    stdout = _stream_text(nb, "stdout")
    kernel_python = stdout.rsplit("KERNEL ", 1)[-1].strip()
    assert Path(kernel_python).resolve() == Path(sys.executable).resolve()
    # Fast mode must still sample cleanly: a reader should never see sampler warnings.
    assert "SamplerWarning" not in _stream_text(nb, "stderr")
    assert not any(tmp_path.iterdir()), "notebooks must not write files"
