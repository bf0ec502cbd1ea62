"""The command line: exit codes, one-line errors, stdout/stderr split, JSON contracts, outputs.

Commands that only read a posterior (predict, optimal, plot) run on a synthetic fit saved to disk
(no sampling); `fit` and `demo` share one compiled model per process and sample briefly.
"""

import json

import numpy as np
import pandas as pd
import pytest
from test_summary import make_fake_fit
from typer.testing import CliRunner

from bayescale import __version__
from bayescale.cli import app
from bayescale.core.io import save
from bayescale.engines.ensemble import DEFAULT_CARDS

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code, *fragments, progress=False):
    """Exit ``code``, nothing on stdout, the error as the one (last, with progress) stderr line."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 or (progress and len(lines) > 1), result.stderr
    assert lines[-1].startswith("error: ")
    assert sum(line.startswith("error") for line in lines) == 1
    assert "Traceback" not in result.stderr
    for frag in fragments:
        assert frag in lines[-1], lines[-1]
    assert result.stdout == ""


@pytest.fixture(scope="module")
def sim_csv(tmp_path_factory):
    from bayescale import datasets

    path = tmp_path_factory.mktemp("runs") / "sim.csv"
    datasets.simulate(random_seed=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fake_fit_dir(tmp_path_factory):
    """A folder holding posterior.nc of a synthetic chinchilla fit."""
    folder = tmp_path_factory.mktemp("fakefit")
    save(make_fake_fit(), folder / "posterior.nc")
    return folder


@pytest.fixture(scope="module")
def cli_fit(sim_csv, tmp_path_factory):
    """One small real fit through the CLI: (result, out folder)."""
    out = tmp_path_factory.mktemp("clifit") / "fit"
    result = invoke(
        "fit", sim_csv, "--out", out, "--draws", 300, "--tune", 300, "--chains", 2, "--seed", 1,
        "--ci-prob", 0.8, "--law", "chinchilla",
    )
    return result, out


# ------------------------------------------------------------------------------------------
# version, help, cards
# ------------------------------------------------------------------------------------------


def test_console_script_freezes_the_collector_when_done(monkeypatch):
    """The console script skips the interpreter's last walk over every model graph; a call from
    Python with arguments (the process goes on) leaves the collector alone."""
    import gc
    import sys

    from bayescale.cli import main

    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as exc:
            main(["--version"])
        assert exc.value.code == 0
        assert gc.get_freeze_count() == 0
        monkeypatch.setattr(sys, "argv", ["bayescale", "--version"])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bayescale {__version__}"


@pytest.mark.parametrize(
    "command",
    [(), ("fit",), ("cards",), ("predict",), ("optimal",), ("plot",), ("report",), ("compare",),
     ("backtest",), ("demo",)],
)
def test_help_has_examples(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.stdout
    assert "bayescale " in result.stdout


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_texts_survive_rich_markup():
    """Brackets in help texts are escaped: rich would read ``[ray]`` as a style and drop it."""
    import typer
    from rich.text import Text

    for path, command in _commands(typer.main.get_command(app)):
        texts = [command.help, command.epilog] + [getattr(p, "help", None)
                                                   for p in command.params]
        for text in filter(None, texts):
            assert Text.from_markup(text).plain == text.replace("\\[", "["), (path, text)
    result = invoke("backtest", "--help")
    assert "bayescale[ray]" in " ".join(result.stdout.replace("│", " ").split())


def test_cards_lists_builtin_cards():
    from bayescale.core.cards import list_cards

    result = invoke("cards")
    assert result.exit_code == 0
    for name in list_cards():
        assert name in result.stdout
    assert "StudentT" in result.stdout and "Normal" in result.stdout
    data = json.loads(invoke("cards", "--json").stdout)
    assert {d["name"] for d in data} == set(list_cards())
    assert {"name", "law", "likelihood", "description"} == set(data[0])


def test_cards_shows_one_card():
    result = invoke("cards", "chinchilla")
    assert result.exit_code == 0
    assert "Beta(alpha=3, beta=7)" in result.stdout
    assert "Besiroglu" in result.stdout and "1.817" in result.stdout
    tied = invoke("cards", "chinchilla-tied")
    assert "tied" in tied.stdout
    data = json.loads(invoke("cards", "kaplan", "--json").stdout)
    assert data["law"] == "kaplan" and "alpha_N" in data["priors"]


def test_cards_unknown_name():
    assert_one_line_error(invoke("cards", "chinchila"), 2, "unknown model card", "chinchilla")


# ------------------------------------------------------------------------------------------
# fit: bad input -> exit 2, one line, nothing written
# ------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_csv(tmp_path):
    def write(text, name="runs.csv"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


GOOD = "N,D,loss\n1e8,2e9,3.1\n4e8,2e9,2.9\n1e9,1e10,2.6\n4e9,4e10,2.4\n1e10,1e11,2.2\n"


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--map", "N:params"], ["bad mapping item", "CANONICAL=COLUMN"]),
        (["--law", "chinchila"], ["unknown model card"]),
        (["--law", "missing.toml"], ["model card file not found"]),
        (["--prior", "gamma=Normal(0, 1)"], ["no parameter 'gamma'", "alpha"]),
        (["--prior", "alpha=Beta(2,"], ["alpha"]),
        (["--prior", "alpha=Beta(2, 5)", "--prior", "alpha=Beta(3, 5)"], ["twice"]),
        (["--ci-prob", "1.5"], ["ci_prob"]),
        (["--ci-kind", "central"], ["ci_kind"]),
        (["--drop-top-loss", "4"], ["runs"]),
        (["--map", "loss=val"], ["val"]),
    ],
)
def test_fit_bad_input(tiny_csv, tmp_path, extra, fragments):
    runs = tiny_csv(GOOD)
    out = tmp_path / "out"
    result = invoke("fit", runs, "--out", out, "--law", "kaplan-N", *extra)
    assert_one_line_error(result, 2, *fragments)
    assert not out.exists()


def test_fit_missing_file(tmp_path):
    out = tmp_path / "out"
    result = invoke("fit", tmp_path / "nope.csv", "--out", out)
    assert_one_line_error(result, 2, "not found", "nope.csv")
    assert not out.exists()


def test_fit_non_numeric_column(tiny_csv, tmp_path):
    runs = tiny_csv(GOOD.replace("2.6", "abc"))
    out = tmp_path / "out"
    result = invoke("fit", runs, "--out", out)
    assert_one_line_error(result, 2, "loss", "row 3")
    assert not out.exists()


def test_fit_refuses_to_overwrite_its_input(tiny_csv, tmp_path):
    runs = tiny_csv(GOOD, name="summary.csv")
    before = runs.read_text()
    result = invoke("fit", runs, "--out", tmp_path, "--law", "kaplan-N")
    assert_one_line_error(result, 2, "refusing to overwrite the input")
    assert runs.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]


def test_fit_out_is_a_file(tiny_csv, tmp_path):
    runs = tiny_csv(GOOD)
    result = invoke("fit", runs, "--out", runs, "--law", "kaplan-N")
    assert_one_line_error(result, 2, "not a folder")


def test_unexpected_error_exit_code(tiny_csv, tmp_path, monkeypatch):
    import bayescale.workflows.fit

    def boom(*args, **kwargs):
        raise RuntimeError("sampler exploded\nsecond line")

    monkeypatch.setattr(bayescale.workflows.fit, "fit", boom)
    monkeypatch.delenv("BAYESCALE_DEBUG", raising=False)
    result = invoke("fit", tiny_csv(GOOD), "--out", tmp_path / "o", "--law", "kaplan-N")
    assert_one_line_error(
        result, 1, "unexpected RuntimeError", "sampler exploded second line", progress=True
    )
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------
# fit: a real (small) fit
# ------------------------------------------------------------------------------------------


def test_fit_writes_posterior_summary_and_json(cli_fit):
    result, out = cli_fit
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"card", "law", "n_runs", "params", "ci_prob", "ci_kind", "diagnostics", "sampler",
            "runs"} <= set(data)
    assert data["card"] == "chinchilla" and data["n_runs"] == 45 and data["ci_prob"] == 0.8
    assert set(data["params"]) == {"E", "A", "B", "alpha", "beta", "sigma", "nu"}
    alpha = data["params"]["alpha"]
    assert alpha["lo"] < 0.35 < alpha["hi"]
    assert data["sampler"]["draws"] == 300 and data["sampler"]["random_seed"] == 1
    table = pd.read_csv(out / "summary.csv", index_col=0)
    assert {"eti80_lower", "eti80_upper", "r_hat", "ess_bulk"} <= set(table.columns)
    np.testing.assert_allclose(table.loc["alpha", "median"], alpha["median"], rtol=1e-12)
    assert "fitting card chinchilla" in result.stderr
    assert (out / "posterior.nc").is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_fit_output_predicts(cli_fit):
    result, out = cli_fit
    assert result.exit_code == 0
    pred = invoke("predict", out, "--N", 1e9, "--D", 2e10, "--json")
    assert pred.exit_code == 0, pred.stderr
    q = json.loads(pred.stdout)["queries"][0]
    truth = 1.8 + 480 / 1e9**0.35 + 2000 / 2e10**0.37
    assert q["ci"][0] < truth < q["ci"][1]


def test_fit_strict_exits_5_but_keeps_the_posterior(sim_csv, tmp_path, cli_fit):
    out = tmp_path / "strict"
    args = ["fit", sim_csv, "--out", out, "--draws", 20, "--tune", 20, "--chains", 2,
            "--law", "chinchilla"]
    loose = invoke(*args)
    assert loose.exit_code == 0
    assert "WARNING (sampler)" in loose.stderr and "ESS" in loose.stderr
    assert json.loads(loose.stdout)["diagnostics"]["ok"] is False
    (out / "posterior.nc").unlink()
    strict = invoke(*args, "--strict")
    assert strict.exit_code == 5
    assert "error: sampler problems under --strict" in strict.stderr
    assert (out / "posterior.nc").is_file() and (out / "summary.csv").is_file()
    assert json.loads(strict.stdout)["diagnostics"]["ok"] is False


# ------------------------------------------------------------------------------------------
# predict
# ------------------------------------------------------------------------------------------


def test_predict_json_contract(fake_fit_dir):
    result = invoke(
        "predict", fake_fit_dir / "posterior.nc", "--N", 7e10, "--D", 1.4e12, "--N", 1e9,
        "--D", 2e10, "--target-loss", 2.0, "--json", "--ci-prob", 0.8,
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ci_prob"] == 0.8 and data["ci_kind"] == "eti" and data["card"] == "chinchilla"
    assert len(data["queries"]) == 2
    for q in data["queries"]:
        assert {"N", "D", "C", "median", "ci", "pi", "p_below_target", "extrapolation"} <= set(q)
        assert q["pi"][0] <= q["ci"][0] <= q["median"] <= q["ci"][1] <= q["pi"][1]
        assert 0 <= q["p_below_target"] <= 1
        assert set(q["extrapolation"]) == {"N", "D", "C"}
        assert q["C"] == pytest.approx(6 * q["N"] * q["D"])
    far, near = data["queries"]
    assert far["extrapolation"]["C"] > 1 and near["extrapolation"]["C"] < far["extrapolation"]["C"]


def test_predict_with_c_and_table(fake_fit_dir):
    with_c = json.loads(invoke("predict", fake_fit_dir, "--N", 1e9, "--C", 1.2e20, "--json").stdout)
    with_d = json.loads(invoke("predict", fake_fit_dir, "--N", 1e9, "--D", 2e10, "--json").stdout)
    assert with_c["queries"][0]["median"] == pytest.approx(with_d["queries"][0]["median"])
    table = invoke("predict", fake_fit_dir, "--N", 1e9, "--D", 2e10, "--target-loss", 2.5)
    assert table.exit_code == 0
    assert "credible 90%" in table.stdout and "predictive 90%" in table.stdout
    assert "P(loss < 2.5)" in table.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["two of --N, --D, --C"]),
        (["--N", 1e9, "--N", 2e9, "--D", 1e10, "--D", 2e10, "--D", 3e10], ["equal counts"]),
        (["--N", -1e9, "--D", 1e10], ["N"]),
        (["--N", 1e9, "--D", 1e10, "--ci-prob", 0], ["ci_prob"]),
    ],
)
def test_predict_bad_input(fake_fit_dir, args, fragments):
    assert_one_line_error(invoke("predict", fake_fit_dir, *args), 2, *fragments)


def test_predict_missing_or_foreign_fit(tmp_path):
    assert_one_line_error(
        invoke("predict", tmp_path / "nope.nc", "--N", 1e9, "--D", 1e10), 2, "not found"
    )
    assert_one_line_error(invoke("predict", tmp_path, "--N", 1e9, "--D", 1e10), 2, "not found")
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    assert_one_line_error(invoke("predict", junk, "--N", 1e9, "--D", 1e10), 2, "junk.nc")


# ------------------------------------------------------------------------------------------
# optimal
# ------------------------------------------------------------------------------------------


def test_optimal_json_contract(fake_fit_dir):
    result = invoke(
        "optimal", fake_fit_dir, "--budget", 1e22, "--budget", 5.76e23, "--target-loss", 2.1,
        "--prob", 0.8, "--ci-prob", 0.95, "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ci_prob"] == 0.95 and data["ci_kind"] == "eti" and data["card"] == "chinchilla"
    assert [row["budget"] for row in data["budgets"]] == [1e22, 5.76e23]
    for row in data["budgets"]:
        for key in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
            v = row[key]
            assert set(v) == {"median", "lo", "hi"} and v["lo"] <= v["median"] <= v["hi"]
        n, d = row["N_opt"]["median"], row["D_opt"]["median"]
        assert 6 * n * d == pytest.approx(row["budget"], rel=0.05)
    small, big = data["budgets"]
    assert big["N_opt"]["median"] > small["N_opt"]["median"]
    a, b = data["exponents"]["a"], data["exponents"]["b"]
    # Chinchilla closed form: a = beta / (alpha + beta), a + b = 1
    assert a["median"] == pytest.approx(0.37 / 0.72, abs=0.02)
    assert a["median"] + b["median"] == pytest.approx(1.0)
    cft = data["compute_for_target"]
    assert cft["target_loss"] == 2.1 and cft["prob"] == 0.8
    assert cft["p_at_C"] == pytest.approx(0.8, abs=0.01) and cft["C"] > 0


def test_optimal_table_and_errors(fake_fit_dir):
    table = invoke("optimal", fake_fit_dir, "--budget", 1e22)
    assert table.exit_code == 0
    assert "D*/N*" in table.stdout and "90% eti" in table.stdout
    assert_one_line_error(invoke("optimal", fake_fit_dir), 2, "--budget")
    assert_one_line_error(invoke("optimal", fake_fit_dir, "--budget", -1e22), 2, "budget")
    assert_one_line_error(
        invoke("optimal", fake_fit_dir, "--budget", 1e22, "--target-loss", 2, "--prob", 1), 2,
        "--prob",
    )


def test_optimal_single_variable_law(tmp_path):
    truth = {"N_c": 8.8e13, "alpha_N": 0.076, "sigma": 0.01, "nu": 20.0}
    save(make_fake_fit(card="kaplan-N", truth=truth), tmp_path / "posterior.nc")
    assert_one_line_error(invoke("optimal", tmp_path, "--budget", 1e22), 2, "kaplan")
    pred = invoke("predict", tmp_path, "--N", 1e9, "--json")
    assert pred.exit_code == 0, pred.stderr
    assert json.loads(pred.stdout)["queries"][0]["median"] > 0


# ------------------------------------------------------------------------------------------
# plot, demo
# ------------------------------------------------------------------------------------------


def test_plot_writes_every_figure(fake_fit_dir, tmp_path):
    out = tmp_path / "figs"
    result = invoke("plot", fake_fit_dir, "--out", out)
    assert result.exit_code == 0, result.stderr
    written = json.loads(result.stdout)["figures"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{n}.{e}" for n in
                           ("frontier", "isoflop", "allocation", "pairs", "residuals")
                           for e in ("png", "svg"))
    assert len(written) == 10
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_a_pooled_fit_draws_every_figure_per_family(tmp_path):
    from fakes import scattered
    from test_families import make_pooled_fit

    b = scattered(seed=1)
    b["E"] = b["E"] + 0.1
    pooled, _ = make_pooled_fit({"a": scattered(seed=1), "b": b})
    save(pooled, tmp_path / "posterior.nc")
    out = tmp_path / "figs"
    result = invoke("plot", tmp_path, "--out", out)
    assert result.exit_code == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert names == {f"{n}-{fam}.{e}" for n in ("frontier", "isoflop", "allocation", "pairs",
                                                "residuals")
                     for fam in ("a", "b") for e in ("png", "svg")}
    assert (out / "frontier-b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(json.loads(result.stdout)["figures"]) == len(names)


def test_plot_refuses_to_overwrite_the_fit(tmp_path):
    fit_file = tmp_path / "frontier.png"
    save(make_fake_fit(), fit_file)
    before = fit_file.read_bytes()
    assert_one_line_error(invoke("plot", fit_file, "--out", tmp_path), 2, "refusing")
    assert fit_file.read_bytes() == before


def test_demo(tmp_path, cli_fit):
    """The demo without its report (the report is tested through `bayescale report`)."""
    out = tmp_path / "demo"
    result = invoke(
        "demo", "--out", out, "--draws", 300, "--tune", 300, "--chains", 2, "--no-report"
    )
    assert result.exit_code == 0, result.stderr
    for name in ("posterior.nc", "summary.csv", "runs.csv", "demo.json"):
        assert (out / name).is_file(), name
    assert not (out / "report.html").exists()
    assert "Posterior vs the true parameters" in result.stdout
    assert "true D*/N*" in result.stdout and "credible 90%" in result.stdout
    data = json.loads((out / "demo.json").read_text())
    assert data["truth"]["alpha"] == 0.35
    summary = {row["parameter"]: row for row in data["summary"]}
    for name in ("E", "alpha", "beta"):
        lo, hi = summary[name]["eti90_lower"], summary[name]["eti90_upper"]
        assert lo < data["truth"][name] < hi
    q = data["prediction"]["queries"][0]
    assert q["extrapolation"]["C"] == pytest.approx(2.0)
    assert q["pi"][0] <= data["prediction"]["true_loss"] <= q["pi"][1]
    assert len(data["optimal"]["budgets"]) == 5
    row = data["optimal"]["budgets"][2]
    assert row["N_opt"]["lo"] < row["true"]["N_opt"] < row["N_opt"]["hi"]


# ------------------------------------------------------------------------------------------
# backtest, compare, report
# ------------------------------------------------------------------------------------------


def test_backtest_mle_with_calibration(sim_csv, tmp_path):
    out = tmp_path / "bt"
    result = invoke(
        "backtest", sim_csv, "--method", "mle", "--bootstrap", 3, "--calibration", "--out", out,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["method"] == "mle" and data["n_test"] == 9 and data["n_train"] == 36
    assert set(data["coverage"]) == {"0.5", "0.8", "0.9", "0.95"}
    assert {r["holdout_frac"] for r in data["calibration"]} == {0.1, 0.2, 0.3, 0.4}
    for name in ("backtest.csv", "backtest.json", "backtest.png", "calibration.csv",
                 "calibration.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "backtest.json").read_text()) == data
    table = pd.read_csv(out / "backtest.csv")
    assert len(table) == 9 and {"pi90_lower", "pi90_upper", "covered90"} <= set(table.columns)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--method", "map"], ["--method"]),
        (["--cutoff", 1e30], ["cutoff"]),
        (["--holdout-frac", 1.5], ["holdout"]),
    ],
)
def test_backtest_bad_input(sim_csv, tmp_path, args, fragments):
    out = tmp_path / "bt"
    assert_one_line_error(
        invoke("backtest", sim_csv, "--out", out, "--method", "mle", *args), 2, *fragments,
        progress=True,
    )
    assert not out.exists()


def test_compare_needs_two_distinct_cards(sim_csv, tmp_path):
    out = tmp_path / "cmp"
    assert_one_line_error(
        invoke("compare", sim_csv, "--out", out, "--law", "chinchilla"), 2, "at least two"
    )
    assert_one_line_error(
        invoke("compare", sim_csv, "--out", out, "--law", "kaplan", "--law", "kaplan"), 2, "twice"
    )
    assert_one_line_error(
        invoke("compare", sim_csv, "--out", out, "--law", "kaplan", "--law", "nope"), 2,
        "unknown model card",
    )
    assert not out.exists()


def test_report_bad_input(sim_csv, tmp_path):
    out = tmp_path / "rep"
    assert_one_line_error(
        invoke("report", sim_csv, "--out", out, "--compare", "nope"), 2, "unknown model card"
    )
    assert_one_line_error(
        invoke("report", sim_csv, "--out", out, "--N", 1e9, "--N", 2e9, "--D", 1e10, "--D", 1e10,
               "--D", 3e10), 2, "equal counts",
    )
    assert not out.exists()


def test_without_law_the_library_decides(sim_csv, tmp_path):
    """No chinchilla swapped in by the CLI: without --law, `report --compare` and `backtest
    --discrepancy` are refused by the library, as `bs.report`/`bs.backtest` refuse them."""
    out = tmp_path / "rep"
    rep = invoke("report", sim_csv, "--out", out, "--compare", "kaplan")
    assert_one_line_error(rep, 2, "single cards", progress=True)
    bt = invoke("backtest", sim_csv, "--out", out, "--discrepancy")
    assert_one_line_error(bt, 2, "discrepancy", progress=True)
    assert not out.exists()


def test_report_end_to_end(sim_csv, tmp_path, cli_fit):
    out = tmp_path / "rep"
    result = invoke(
        "report", sim_csv, "--out", out, "--draws", 300, "--tune", 300, "--chains", 2,
        "--budget", 1e21, "--N", 1e9, "--D", 2e10, "--target-loss", 2.5, "--law", "chinchilla",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("html", "markdown", "json", "posterior", "summary"):
        assert (out / data["files"][key].rsplit("/", 1)[-1]).is_file()
    doc = json.loads((out / "report.json").read_text())
    assert data["params"] == doc["params"] and data["predictions"] == doc["predictions"]
    assert len(doc["optimal"]) == 1 and doc["target_loss"] == 2.5
    assert "<img" in (out / "report.html").read_text()


def test_compare_plumbing(sim_csv, tmp_path, monkeypatch):
    """Tables, files and JSON of `compare`, around a stand-in for the (tested) comparison."""
    import bayescale.workflows.compare
    from bayescale.workflows.compare import ComparisonResult

    seen = {}

    def fake_compare(runs, *, cards, **kwargs):
        seen.update(kwargs, cards=[c.name for c in cards], n_runs=len(runs))
        names = seen["cards"]
        loo = pd.DataFrame(
            {"rank": [0, 1], "elpd": [150.0, 120.5], "se": [6.0, 7.0], "elpd_diff": [0.0, 29.5],
             "dse": [0.0, 5.0], "weight": [0.97, 0.03], "p_loo": [6.1, 5.2], "n_bad_k": [0, 2],
             "warning": [False, True]},
            index=pd.Index(names[::-1], name="card"),
        )
        return ComparisonResult(
            loo=loo, backtests=pd.DataFrame(), verdict="chinchilla is preferred (5.9 se)",
            winner=names[1],
        )

    monkeypatch.setattr(bayescale.workflows.compare, "compare", fake_compare)
    out = tmp_path / "cmp"
    result = invoke(
        "compare", sim_csv, "--out", out, "--law", "kaplan", "--law", "chinchilla",
        "--no-backtest", "--draws", 300, "--holdout-frac", 0.3,
    )
    assert result.exit_code == 0, result.stderr
    assert seen["cards"] == ["kaplan", "chinchilla"] and seen["n_runs"] == 45
    assert seen["backtest"] is False and seen["draws"] == 300 and seen["holdout_frac"] == 0.3
    assert "verdict: chinchilla is preferred" in result.stdout and "PSIS-LOO" in result.stdout
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["winner"] == "chinchilla"
    assert pd.read_csv(out / "loo.csv", index_col=0).loc["kaplan", "n_bad_k"] == 2
    again = invoke("compare", sim_csv, "--out", out, "--law", "kaplan", "--law", "chinchilla",
                   "--json")
    assert json.loads(again.stdout) == saved


# ------------------------------------------------------------------------------------------
# the default law ensemble
# ------------------------------------------------------------------------------------------


def test_fit_defaults_to_the_ensemble_and_flags_unvalidated_queries(sim_csv, tmp_path):
    out = tmp_path / "ens"
    result = invoke("fit", sim_csv, "--out", out, "--draws", 500, "--tune", 500, "--chains", 2,
                    "--seed", 2)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["card"] == "ensemble" and "fitting the law ensemble" in result.stderr
    assert set(data["weights"]) == set(DEFAULT_CARDS)
    assert data["validated_decades"] == pytest.approx(1.0)  # the top budget is 1 decade up
    table = pd.read_csv(out / "summary.csv", index_col=0)
    assert "kaplan-linf.alpha_N" in table.index and "weight" in table.columns
    pred = invoke("predict", out, "--N", 1e9, "--D", 5e9, "--N", 7e10, "--D", 1.4e12, "--json")
    assert pred.exit_code == 0, pred.stderr
    q = json.loads(pred.stdout)
    assert [x["validated"] for x in q["queries"]] == [True, False]
    assert "UNVALIDATED" in pred.stderr and "validated only 1 decades" in pred.stderr
    opt = invoke("optimal", out, "--budget", 1e19, "--budget", 1e23, "--json")
    assert opt.exit_code == 0, opt.stderr
    assert [b["validated"] for b in json.loads(opt.stdout)["budgets"]] == [True, False]
