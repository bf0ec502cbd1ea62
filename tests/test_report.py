"""Reports: the three files agree, the HTML is self-contained, and only report files are written."""

import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bayescale.errors import InputError
from bayescale.workflows.render import DEFAULT_BUDGETS, format_number
from bayescale.workflows.report import report, write_report


@pytest.fixture(scope="module")
def report_backtest(sim_runs):
    """A quick point-fit backtest of the simulated sweep (the 9 largest-compute runs held out)."""
    from bayescale.workflows.backtest import backtest

    return backtest(sim_runs, method="mle", n_bootstrap=20, random_seed=0)


@pytest.fixture(scope="module")
def report_comparison():
    """A comparison-like result whose card names carry markup, to check escaping."""
    loo = pd.DataFrame(
        {"elpd_loo": [120.5, 101.25], "se": [6.0, 7.5], "weight": [0.9, 0.1]},
        index=pd.Index(["chinchilla", "<b>my|card</b>"], name="card"),
    )
    backtests = pd.DataFrame(
        {"card": ["chinchilla", "<b>my|card</b>"], "coverage90": [0.89, 0.5]}
    )
    return SimpleNamespace(
        loo=loo, backtests=backtests, winner="chinchilla",
        verdict="chinchilla wins <script>alert(1)</script>",
    )


@pytest.fixture(scope="module")
def written(sim_fit, report_backtest, report_comparison, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    (out / "notes.txt").write_text("mine")
    (out / "figures").mkdir()
    (out / "figures" / "mine.png").write_bytes(b"not a figure")
    doc = write_report(
        sim_fit, out, target_loss=3.0, backtest=report_backtest,
        comparison=report_comparison, random_seed=2,
    )
    return out, doc


def test_files_and_nothing_else(written):
    out, doc = written
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    figs = ["allocation", "backtest", "frontier", "isoflop", "pairs", "reliability", "residuals"]
    expected = sorted(
        ["figures", "figures/mine.png", "notes.txt", "report.html", "report.json", "report.md"]
        + [f"figures/{f}.{ext}" for f in figs for ext in ("png", "svg")]
    )
    assert names == expected  # no temporary files left behind either
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "figures" / "mine.png").read_bytes() == b"not a figure"
    assert sorted(doc["figures"]) == figs


def test_json_is_strict_and_matches_return(written):
    out, doc = written

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    on_disk = json.loads((out / "report.json").read_text(), parse_constant=no_constants)
    assert on_disk == doc
    assert [r["budget"] for r in doc["optimal"]] == list(DEFAULT_BUDGETS)
    for r in doc["optimal"]:
        for var in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
            v = r[var]
            assert v["lo"] <= v["median"] <= v["hi"]
    assert {p["parameter"] for p in doc["params"]} == {"E", "A", "B", "alpha", "beta", "sigma",
                                                       "nu"}
    # Default query on LM-like runs: the Chinchilla model.
    (q,) = doc["predictions"]
    assert (q["N"], q["D"]) == (7e10, 1.4e12)
    assert q["pi_lo"] <= q["ci_lo"] <= q["median"] <= q["ci_hi"] <= q["pi_hi"]
    assert doc["backtest"]["n_test"] == 9 and doc["comparison"]["winner"] == "chinchilla"
    assert [r["prob"] for r in doc["target"]] == [0.5, 0.9]


def test_numbers_read_the_same_everywhere(written):
    out, doc = written
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    (row,) = [r for r in doc["optimal"] if r["budget"] == 1e22]
    shown = [
        format_number(row["N_opt"]["median"]),
        format_number(row["D_opt"]["hi"]),
        format_number(doc["predictions"][0]["median"]),
        format_number([p for p in doc["params"] if p["parameter"] == "alpha"][0]["median"]),
        format_number(doc["backtest"]["lpd_mean"]),
    ]
    for s in shown:
        assert re.search(rf"\| {re.escape(s)} \|", md), s
        assert f"<td>{s}</td>" in page, s


def test_html_is_self_contained_and_escaped(written):
    out, doc = written
    page = (out / "report.html").read_text()
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == len(doc["figures"])
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<td>&lt;b&gt;my|card&lt;/b&gt;</td>" in page
    md = (out / "report.md").read_text()
    assert r"<b>my\|card</b>" in md
    assert "![frontier](figures/frontier.png)" in md


def test_queries_and_errors(sim_fit, tmp_path):
    from bayescale.core.laws import get_law
    from bayescale.fits.layout import runs_of
    from bayescale.workflows.render import _check_queries

    law, runs = get_law("chinchilla"), runs_of(sim_fit)
    q = _check_queries([{"N": 1e9, "C": 1e20}, {"N": 2e9, "C": 1e21}], law=law, runs=runs)
    np.testing.assert_array_equal(q["C"], [1e20, 1e21])
    q = _check_queries(pd.DataFrame({"N": [1e9], "D": [2e10]}), law=law, runs=runs)
    assert set(q) == {"N", "D"}
    with pytest.raises(InputError, match="same quantities"):
        _check_queries([{"N": 1e9, "D": 1e10}, {"N": 1e9, "C": 1e20}], law=law, runs=runs)
    with pytest.raises(InputError, match="unknown keys"):
        _check_queries({"N": [1e9], "tokens": [1e10]}, law=law, runs=runs)
    # Not LM-like: 10x the largest fitted compute.
    odd = runs.assign(loss=runs["loss"] * 10)
    q = _check_queries(None, law=law, runs=odd)
    assert 6 * q["N"][0] * q["D"][0] == pytest.approx(10 * runs["C"].max())
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        write_report(sim_fit, tmp_path / "file")
    with pytest.raises(InputError, match="budgets"):
        write_report(sim_fit, tmp_path / "r", budgets=[1e21, 0.0])


def test_format_number():
    assert format_number(9.135e9) == "9.135e9"
    assert format_number(1.2e-5) == "1.2e-5"
    assert format_number(np.int64(812)) == "812"
    assert format_number(True) == "yes"


def test_report_end_to_end(sim_runs, tmp_path):
    doc = report(
        sim_runs, card="chinchilla", out_dir=tmp_path, budgets=[1e20],
        queries=[{"N": 1e9, "D": 2e10}], draws=1000, tune=1000, chains=4, random_seed=1,
    )
    assert {p.name for p in tmp_path.iterdir()} >= {
        "report.html", "report.md", "report.json", "posterior.nc", "summary.csv", "figures"
    }
    assert doc["backtest"]["method"] == "bayes" and doc["backtest"]["n_test"] == 9
    assert [r["budget"] for r in doc["optimal"]] == [1e20]
    summary = pd.read_csv(tmp_path / "summary.csv", index_col=0)
    assert summary.loc["alpha", "median"] == pytest.approx(
        [p for p in doc["params"] if p["parameter"] == "alpha"][0]["median"]
    )
