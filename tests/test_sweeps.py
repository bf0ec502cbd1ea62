"""Sweep tables: several runs per (N, D) (a learning-rate sweep), best_of_sweep / drop_duplicates.

Python API (bayescale.core.runs.load_runs) and the CLI's --best-of-sweep / --drop-duplicates.
"""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale.cli import app
from bayescale.core.runs import load_runs
from bayescale.errors import InputError


def sweep_frame():
    """Four (N, D) cells x three learning rates; two exact repeats of one (N, D, loss)."""
    rows = []
    cells = [(1e8, 2e9), (4e8, 2e9), (1e9, 2e10), (3e9, 6e10)]
    base = [3.1, 2.9, 2.6, 2.3]
    for (n, d), b in zip(cells, base, strict=True):
        for k, lr in enumerate((1e-4, 3e-4, 1e-3)):
            rows.append({"N": n, "D": d, "lr": lr, "loss": b + 0.05 * abs(k - 1)})
    frame = pd.DataFrame(rows)
    frame["run"] = [f"r{i}" for i in range(len(frame))]
    return frame


def test_sweep_table_error_names_both_options():
    with pytest.raises(InputError) as e:
        load_runs(sweep_frame())
    msg = str(e.value)
    assert msg.startswith("duplicate runs (same N, D and loss) at rows 3 (same as row 1)")
    assert "--drop-duplicates" in msg and "--best-of-sweep" in msg
    assert "drop_duplicates=True" in msg and "best_of_sweep=True" in msg


def test_best_of_sweep_keeps_lowest_loss_per_cell():
    frame = sweep_frame()
    runs = load_runs(frame, best_of_sweep=True)
    assert len(runs) == 4
    assert runs.frame["run"].tolist() == ["r1", "r4", "r7", "r10"]  # the middle learning rate
    np.testing.assert_array_equal(runs.loss, [3.1, 2.9, 2.6, 2.3])
    prov = runs.provenance
    assert prov["filters"]["best_of_sweep"] == "per (N, D)"
    assert prov["dropped"]["best_of_sweep"] == 8
    assert prov["n_rows_in"] - sum(prov["dropped"].values()) == prov["n_rows"] == 4
    assert sorted(prov["dropped_runs"]["best_of_sweep"]) == sorted(
        set(frame["run"]) - {"r1", "r4", "r7", "r10"}
    )
    json.dumps(prov)  # provenance stays JSON-serialisable (fits store it)
    # the same from a Runs source and as input to further filters
    again = load_runs(runs, best_of_sweep=True, max_params=1e9)
    assert len(again) == 3 and again.provenance["dropped"]["best_of_sweep (2)"] == 0


def test_best_of_sweep_is_per_group_and_ties_keep_first():
    frame = sweep_frame().assign(group=["a"] * 6 + ["b"] * 6)
    frame.loc[[0, 2], "loss"] = 2.0  # tie for the lowest loss of the first cell: keep row 1
    frame.loc[6:8, ["N", "D"]] = [1e8, 2e9]  # group b has the same (N, D) as group a's first cell
    runs = load_runs(frame, best_of_sweep=True)
    assert runs.frame["run"].tolist() == ["r0", "r4", "r7", "r10"]
    assert runs.provenance["filters"]["best_of_sweep"] == "per (group, N, D)"


def test_drop_duplicates_drops_only_exact_repeats():
    frame = sweep_frame()
    runs = load_runs(frame, drop_duplicates=True)
    assert len(runs) == 8  # in each cell lr 1e-4 and 1e-3 give the same loss: one dropped
    assert runs.provenance["dropped"]["drop_duplicates"] == 4
    assert runs.provenance["dropped_runs"]["drop_duplicates"] == ["r2", "r5", "r8", "r11"]
    both = load_runs(frame, drop_duplicates=True, best_of_sweep=True)
    assert both.provenance["dropped"] == {"drop_duplicates": 4, "best_of_sweep": 4}
    assert len(both) == 4


@pytest.mark.parametrize("option", ["best_of_sweep", "drop_duplicates"])
def test_sweep_options_must_be_bool(option):
    with pytest.raises(InputError, match=f"{option} must be True or False; got 'yes'"):
        load_runs(sweep_frame(), **{option: "yes"})


def cli_sweep_frame():
    """12 (N, D) cells of a simulated sweep x 3 learning rates; lr 1e-4 and 1e-3 tie exactly."""
    from bayescale import datasets

    sim = datasets.simulate(budgets=(1e17, 1e18, 1e19), n_per_budget=4, random_seed=0)
    parts = []
    for k, lr in enumerate((1e-4, 3e-4, 1e-3)):
        part = sim[["N", "D", "loss"]].assign(lr=lr, loss=sim["loss"] * (1 + 0.02 * abs(k - 1)))
        parts.append(part.assign(run=[f"{r}_lr{k}" for r in sim["run"]]))
    return pd.concat(parts, ignore_index=True)


def test_cli_best_of_sweep_reports_on_stderr_and_in_provenance(tmp_path, monkeypatch):
    """`fit --best-of-sweep` on a sweep table: stderr and the stored provenance say what went."""
    from fakes import make_fit, scattered

    import bayescale.fits.store
    import bayescale.workflows.fit

    csv = tmp_path / "sweep.csv"
    cli_sweep_frame().to_csv(csv, index=False)
    seen = {}

    def fake_fit(runs, **kwargs):  # no sampling: the run table is what this test is about
        seen["runs"] = runs
        tree = make_fit(scattered(100), runs_N=runs.N, runs_D=runs.D)
        tree.attrs["bayescale_runs"] = json.dumps(runs.provenance)
        return tree

    monkeypatch.setattr(bayescale.workflows.fit, "fit", fake_fit)
    runner = CliRunner()
    out = tmp_path / "fit"
    bad = runner.invoke(app, ["fit", str(csv), "--out", str(out)])
    assert bad.exit_code == 2
    assert "--best-of-sweep" in bad.stderr and "--drop-duplicates" in bad.stderr
    result = runner.invoke(app, ["fit", str(csv), "--out", str(out), "--best-of-sweep"])
    assert result.exit_code == 0, result.stderr
    assert "--best-of-sweep: dropped 24 of 36 rows" in result.stderr
    assert len(seen["runs"]) == 12
    assert set(seen["runs"].frame["run"].str.slice(-4)) == {"_lr1"}
    stored = json.loads(bayescale.fits.store.load(out / "posterior.nc").attrs["bayescale_runs"])
    assert stored["dropped"] == {"best_of_sweep": 24}
    result = runner.invoke(app, ["fit", str(csv), "--out", str(out), "--drop-duplicates"])
    assert result.exit_code == 0, result.stderr
    assert "--drop-duplicates: dropped 12 of 36 rows (exact (N, D, loss) repeats)" in result.stderr


@pytest.mark.parametrize("command", ["fit", "report", "compare", "backtest"])
def test_cli_commands_accept_the_sweep_options(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--best-of-sweep" in result.stdout and "--drop-duplicates" in result.stdout
