"""The analysis notebooks execute on a small results set (nbclient, the venv's python3 kernel)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from cli_helpers import ROOT
from nbclient import NotebookClient

from experiments.compare import compare
from experiments.config import parse_config

NOTEBOOKS = ROOT / "notebooks"

CFG = {
    "name": "nb",
    "seeds": [1, 2],
    "duration_h": 2,
    "fleet": [{"workload": "database", "count": 2, "used_gb": 100, "name": "db-"}],
    "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nb") / "res"
    compare(parse_config(CFG), out)
    return out / "nb"


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_executes(name, results, tmp_path, monkeypatch):
    monkeypatch.setenv("PIOP_RESULTS", str(results))
    monkeypatch.setenv("PIOP_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert str(results) in text and "4 runs" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the comparison figure is shown"
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_notebook_exists():
    assert (NOTEBOOKS / "compare.ipynb").is_file() and (NOTEBOOKS / "README.md").is_file()
