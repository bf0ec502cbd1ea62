"""Answers at the edges (issue 11): a target the fitted runs already reach, in CLI, JSON, report.

No sampling: fits are fit-shaped DataTrees with chosen draws (tests/fakes.py) whose observed
losses lie in [2, 3], so a target of 10 is above every observed loss.
"""

import json

import numpy as np
from fakes import make_fit, scattered
from typer.testing import CliRunner

from bayescale.cli import app
from bayescale.core.io import save
from bayescale.workflows.report import write_report


def test_cli_optimal_target_already_reached(tmp_path):
    fit = make_fit(scattered(200))
    save(fit, tmp_path / "posterior.nc")
    runner = CliRunner()
    args = ["optimal", str(tmp_path), "--budget", "1e22", "--target-loss", "10"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    cft = json.loads(result.stdout)["compute_for_target"]
    assert cft["already_reached"] is True and cft["beyond_search"] is False
    assert cft["C"] is None and cft["N"] is None and cft["D"] is None
    assert cft["reached_by"]["run"] == "#1" and cft["reached_by"]["C"] == 6e17
    table = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.stderr
    text = " ".join(table.stdout.split())
    assert "already reached: the fitted run #1" in text
    assert "1e+15" not in text and "1e15" not in text  # the search floor is never shown


def test_cli_optimal_target_beyond_search_and_unreachable(tmp_path):
    save(make_fit(scattered(200)), tmp_path / "posterior.nc")
    runner = CliRunner()
    # the fake fit is near Hoffmann's law (E = 1.69): loss 1.70 needs more than 1e30 FLOPs
    result = runner.invoke(app, ["optimal", str(tmp_path), "--budget", "1e22",
                                 "--target-loss", "1.70", "--prob", "0.5", "--json"])
    assert result.exit_code == 0, result.stderr
    cft = json.loads(result.stdout)["compute_for_target"]
    assert cft["beyond_search"] is True and cft["C"] is None
    assert cft["search_ceiling"] == 1e30 and "largest budget searched" in cft["statement"]
    bad = runner.invoke(app, ["optimal", str(tmp_path), "--budget", "1e22",
                              "--target-loss", "1.5"])
    assert bad.exit_code == 2 and "target unreachable" in bad.stderr


def test_report_states_target_already_reached(tmp_path):
    fit = make_fit(scattered(200))
    doc = write_report(fit, tmp_path / "r", budgets=[1e22], target_loss=10.0)
    assert [r["already_reached"] for r in doc["target"]] == [True, True]
    assert all(r["C"] is None and r["N"] is None for r in doc["target"])
    assert all(r["note"].startswith("already reached: the fitted run #1") for r in doc["target"])
    stored = json.loads((tmp_path / "r" / "report.json").read_text())
    assert stored["target"][0]["already_reached"] is True
    for name in ("report.md", "report.html"):
        text = (tmp_path / "r" / name).read_text()
        assert "already reached: the fitted run #1" in text
    losses = np.exp(fit["observed_data"]["log_loss"].to_numpy())
    assert losses.max() < 10.0
