"""Several metrics of the same runs: ``metric=`` / ``metrics=`` (long form), their fits, answers
per metric in the CLI (JSON key ``metrics``), backtest and report plumbing.

Fast: the loading tests read small frames and the bundled over-training tables; the CLI tests
answer a synthetic pooled posterior (no MCMC) or replace the fit and backtest with stand-ins that
record what they were asked to do; one backtest of two metrics fits a card for real (2 x 200 draws).
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from fakes import scattered
from test_families import make_pooled_fit
from typer.testing import CliRunner

import bayescale as bs
from bayescale.cli import app
from bayescale.core.io import save
from bayescale.core.runs import METRIC, match_metrics
from bayescale.errors import InputError, SamplerWarning

runner = CliRunner()


def three_metrics(n=6, seed=0):
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e8, 1e10, n)
    D = 20 * N * rng.uniform(0.5, 2, n)
    base = 1.8 + 400 / N**0.34 + 400 / D**0.28
    return pd.DataFrame({
        "run": [f"m{i}" for i in range(n)], "N": N, "D": D,
        "loss_a": base, "loss_b": base + 0.3, "val_c": base * 1.1, "acc_x": rng.uniform(size=n),
    })


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def test_one_metric_is_the_loss_column_as_with_map():
    df = three_metrics()
    one = bs.load_runs(df, metric="loss_b")
    mapped = bs.load_runs(df, mapping={"loss": "loss_b"})
    pd.testing.assert_frame_equal(one.frame, mapped.frame)
    assert one.provenance == mapped.provenance
    assert "family" not in one.frame and "metrics" not in one.provenance
    # a pattern or a list that matches one column is the same as metric=
    glob_one = bs.load_runs(df, metrics="val_*")
    pd.testing.assert_frame_equal(glob_one.frame, bs.load_runs(df, metric="val_c").frame)


def test_several_metrics_give_a_long_table_with_the_metric_as_family():
    df = three_metrics()
    runs = bs.load_runs(df, metrics=["loss_*", "val_c"])
    prov = runs.provenance
    assert prov["metrics"] == ["loss_a", "loss_b", "val_c"] and prov["group_by"] == METRIC
    assert prov["mapping"]["loss"] == ["loss_a", "loss_b", "val_c"]
    assert len(runs) == 3 * len(df) and prov["n_rows_in"] == 3 * len(df)
    assert runs.frame["family"].tolist() == sum(([m] * len(df) for m in prov["metrics"]), [])
    assert runs.frame["run"].iloc[0] == "m0/loss_a" and runs.frame["run"].is_unique
    b = runs.frame[runs.frame["family"] == "loss_b"]
    np.testing.assert_allclose(b["loss"], df["loss_b"])
    np.testing.assert_allclose(b["N"], df["N"])
    # the long table pools as families without another read
    again = bs.load_runs(runs.subset(np.arange(len(runs)) % 2 == 0), group_by=METRIC)
    assert set(again.frame["family"]) == set(prov["metrics"])


def test_filters_apply_to_each_metric_on_its_own():
    df = three_metrics()
    runs = bs.load_runs(df, metrics="loss_*", drop_top_loss=1)
    assert runs.frame.groupby("family").size().to_dict() == {"loss_a": 5, "loss_b": 5}
    assert runs.provenance["dropped"] == {"drop_top_loss": 2}
    assert runs.provenance["metric_rows"] == {"loss_a": 5, "loss_b": 5}


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"metrics": "bleu_*"}, "metric 'bleu_*' matches no column of the runs table; columns: "
                                "run, N, D, loss_a, loss_b, val_c, acc_x"),
        ({"metrics": []}, "metrics must be column names or glob patterns"),
        ({"metric": "loss_a", "metrics": "loss_*"}, "not both"),
        ({"metrics": "loss_*", "mapping": {"loss": "loss_a"}}, "give one of them"),
        ({"metrics": "loss_*", "group_by": "run"}, "group_by='metric'"),
    ],
)
def test_metric_errors_are_clear(kwargs, fragment):
    with pytest.raises(InputError, match=None) as err:
        bs.load_runs(three_metrics(), **kwargs)
    assert fragment in str(err.value)


def test_metrics_need_the_source_table_not_a_runs():
    runs = bs.load_runs(three_metrics(), metric="loss_a")
    with pytest.raises(InputError, match="a Runs table has only its loss"):
        bs.load_runs(runs, metrics="loss_*")


def test_match_metrics_keeps_table_order_and_each_column_once():
    cols = ["N", "loss_b", "loss_a", "acc"]
    assert match_metrics(cols, ["loss_a", "loss_*"]) == ["loss_b", "loss_a"]


def test_bundled_tables_read_every_validation_loss():
    runs = bs.datasets.load("overtraining_downstream", metrics="loss_*", group="c4_original")
    assert len(runs.provenance["metrics"]) == 8 and len(runs) == 8 * 34
    full = bs.datasets.load("overtraining", metrics="loss_*")
    assert len(full.provenance["metrics"]) == 8 and len(full) == 8 * 104
    one = bs.datasets.load("overtraining", metric="loss_paloma_ptb")
    assert one.provenance["mapping"]["loss"] == "loss_paloma_ptb"


# --------------------------------------------------------------------------------------------
# Fit, backtest and report plumbing (stand-ins for the samplers)
# --------------------------------------------------------------------------------------------


def test_fit_with_metrics_fits_each_alone_or_pools_across_metrics(monkeypatch):
    from bayescale.workflows import fit as fitting

    calls = []

    def record(name):
        return lambda runs, **kw: calls.append((runs, kw)) or name

    monkeypatch.setattr(fitting, "fit_families", record("families"))
    monkeypatch.setattr(fitting, "fit_families_ensemble", record("ensemble"))
    monkeypatch.setattr(fitting, "fit_card", record("one"))
    df = three_metrics()
    # default with a card: each metric on its own (the card without its [pooling] table)
    assert bs.fit(df, metrics="loss_*", card="chinchilla") == "families"
    runs, kw = calls[-1]
    assert kw["group_by"] == METRIC and len(runs) == 12
    assert kw["card"].name == "chinchilla" and dict(kw["card"].pooling) == {}
    assert bs.fit(df, metrics="loss_*", card="chinchilla", pool_metrics=True) == "families"
    assert calls[-1][1]["card"] == "chinchilla"
    # a long-form Runs with group_by="metric" is the same fit
    bs.fit(runs, card="chinchilla", group_by=METRIC, priors={"alpha": "Beta(2, 5)"})
    assert dict(calls[-1][1]["card"].pooling) == {} and calls[-1][1]["priors"] is None
    assert "Beta" in str(calls[-1][1]["card"].priors["alpha"])
    # the law ensemble pools across metrics
    assert bs.fit(df, metrics="loss_*") == "ensemble" and calls[-1][1]["group_by"] == METRIC
    assert bs.fit(df, metric="val_c", card="chinchilla") == "one"
    assert calls[-1][0].provenance["mapping"]["loss"] == "val_c"
    with pytest.raises(InputError, match="needs one card"):
        bs.fit(df, metrics="loss_*", pool_metrics=False)


def test_backtest_metrics_is_the_backtest_of_families(monkeypatch):
    from bayescale.workflows import metrics

    calls = []
    monkeypatch.setattr(metrics, "backtest", lambda runs, **kw: calls.append((runs, kw)) or kw)
    df = three_metrics()
    kw = bs.backtest_metrics(df, metrics="loss_*", card="chinchilla", draws=10)
    assert kw["group_by"] == METRIC and kw["separate"] is True and kw["draws"] == 10
    kw = bs.backtest_metrics(df, metric="loss_a", card="chinchilla")
    assert "group_by" not in kw and calls[-1][0].provenance["mapping"]["loss"] == "loss_a"


def test_backtest_of_metrics_each_alone_with_a_card():
    """A real backtest of two metrics, each fitted alone (no pooled fit), scored as usual."""
    df = three_metrics(n=12, seed=2)
    noise = np.random.default_rng(3).normal(0, 0.01, size=(2, len(df)))
    df["loss_a"] *= np.exp(noise[0])
    df["loss_b"] *= np.exp(noise[1])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", SamplerWarning)
        res = bs.backtest_metrics(df, metrics="loss_*", card="chinchilla", pool_metrics=False,
                                  draws=200, tune=300, chains=2, random_seed=0)
    assert res.group_by == METRIC and res.card == "chinchilla" and res.weights is None
    assert set(res.families["method"]) == {"separate"}
    assert set(res.families["family"]) == {"loss_a", "loss_b"}
    assert res.n_test == len(res.table) == res.families["n_test"].sum()
    assert res.lpd_mean == pytest.approx(res.table["lpd"].mean())
    assert res.coverage[0.5] == pytest.approx(res.table["covered50"].mean())
    row = res.families.iloc[0]
    assert row["coverage95"] >= row["coverage90"] >= row["coverage50"]
    assert np.isfinite(res.to_dict()["crps_mean"])


@pytest.fixture(scope="module")
def metrics_fit_dir(tmp_path_factory):
    """posterior.nc of a synthetic fit pooled over two metrics (no MCMC)."""
    a, b = scattered(seed=1), scattered(seed=1)
    b["E"] = b["E"] + 0.3
    tree, _ = make_pooled_fit({"loss_a": a, "loss_b": b})
    info = json.loads(tree.attrs["bayescale_families"])
    tree.attrs["bayescale_families"] = json.dumps({**info, "group_by": METRIC})
    folder = tmp_path_factory.mktemp("metricsfit")
    save(tree, folder / "posterior.nc")
    return folder


def test_predict_and_optimal_answer_per_metric(metrics_fit_dir):
    res = runner.invoke(app, ["predict", str(metrics_fit_dir), "--N", "7e10", "--D", "1.4e12",
                              "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["group_by"] == METRIC and "families" not in doc
    assert set(doc["metrics"]) == {"loss_a", "loss_b"}
    a, b = (doc["metrics"][m]["queries"][0]["median"] for m in ("loss_a", "loss_b"))
    assert b == pytest.approx(a + 0.3, abs=0.02)
    res = runner.invoke(app, ["optimal", str(metrics_fit_dir), "--budget", "1e22", "--json"])
    assert res.exit_code == 0, res.stderr
    assert set(json.loads(res.stdout)["metrics"]) == {"loss_a", "loss_b"}
    res = runner.invoke(app, ["optimal", str(metrics_fit_dir), "--budget", "1e22"])
    assert res.exit_code == 0 and "metric loss_a" in res.stdout and "metric loss_b" in res.stdout


def test_cli_metric_options_reach_fit_and_backtest(monkeypatch, tmp_path, metrics_fit_dir):
    from bayescale.fits.store import load
    from bayescale.workflows import backtest as backtesting
    from bayescale.workflows import fit as fitting

    csv = tmp_path / "runs.csv"
    three_metrics(n=8).to_csv(csv, index=False)
    seen = {}

    def fake_fit(runs, **kw):
        seen["fit"] = (runs, kw)
        return load(metrics_fit_dir / "posterior.nc")

    monkeypatch.setattr(fitting, "fit", fake_fit)
    res = runner.invoke(app, ["fit", str(csv), "--metric", "loss_*", "--law", "chinchilla",
                              "--out", str(tmp_path / "fit")])
    assert res.exit_code == 0, res.stderr
    runs, kw = seen["fit"]
    assert kw["group_by"] == METRIC and runs.provenance["metrics"] == ["loss_a", "loss_b"]
    assert set(json.loads(res.stdout)["metrics"]) == {"loss_a", "loss_b"}
    res = runner.invoke(app, ["fit", str(csv), "--metric", "val_c", "--law", "chinchilla",
                              "--out", str(tmp_path / "fit1")])
    runs, kw = seen["fit"]
    assert kw["group_by"] is None and runs.provenance["mapping"]["loss"] == "val_c"
    res = runner.invoke(app, ["fit", str(csv), "--metric", "nope*", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "matches no column" in res.stderr

    def fake_backtest(runs, **kw):
        seen["backtest"] = (runs, kw)
        raise InputError("stop here")

    monkeypatch.setattr(backtesting, "backtest", fake_backtest)
    res = runner.invoke(app, ["backtest", str(csv), "--metric", "loss_a", "--metric", "loss_b",
                              "--law", "chinchilla", "--out", str(tmp_path / "bt")])
    assert res.exit_code == 2 and "stop here" in res.stderr
    runs, kw = seen["backtest"]
    assert kw["group_by"] == METRIC and kw["separate"] is True and len(runs) == 16
    assert kw["pool_metrics"] is None and kw["executor"] == "process"
    res = runner.invoke(app, ["backtest", str(csv), "--metric", "loss_*", "--pool-metrics",
                              "--executor", "serial", "--out", str(tmp_path / "bt")])
    assert res.exit_code == 2 and "pooled over metric and per metric alone" in res.stderr
    assert seen["backtest"][1]["pool_metrics"] is True
    assert seen["backtest"][1]["executor"] == "serial"
    res = runner.invoke(app, ["backtest", str(csv), "--metric", "loss_*",
                              "--out", str(tmp_path / "bt")])
    assert "the law ensemble per metric alone" in res.stderr


# --------------------------------------------------------------------------------------------
# Backtest of several metrics: each alone by default with the law ensemble, pooled on request
# --------------------------------------------------------------------------------------------


def test_pools_families_chooses_by_card_and_pool_metrics():
    from bayescale.workflows.backtest import pools_families

    assert pools_families(METRIC) is False  # the law ensemble: an ensemble per metric
    assert pools_families(METRIC, card="chinchilla") is True  # a card: pooled fit scored too
    assert pools_families(METRIC, pool_metrics=True) is True
    assert pools_families(METRIC, card="chinchilla", pool_metrics=False) is False
    assert pools_families("dataset", pool_metrics=False) is True  # other families always pool
    with pytest.raises(InputError, match="pool_metrics must be True, False or None"):
        pools_families(METRIC, pool_metrics="yes")


@pytest.fixture
def stand_in_backtest(monkeypatch):
    """The backtest of families with every fit and score replaced by a recording stand-in."""
    from bayescale.workflows import backtest as backtesting

    calls = []

    def scores(fit, held, *, probs):
        n = len(held)
        lpd = {"pooled": 1.0, "separate": 2.0}[fit["method"]]
        out = {"loss": held.frame["loss"].to_numpy(), "lpd": np.full(n, lpd),
               "abs_error": np.full(n, 0.01)}
        for p in probs:
            out[f"covered{100 * p:.10g}"] = np.arange(n) < (n if fit["method"] == "separate"
                                                            else 0)
        return pd.DataFrame(out)

    def separate(runs, **kw):
        calls.append(("separate", kw))
        return {"method": "separate"}

    def pooled(name):
        return lambda runs, **kw: calls.append((name, kw)) or {"method": "pooled"}

    monkeypatch.setattr(backtesting, "fit", separate)
    monkeypatch.setattr(backtesting, "fit_families_ensemble", pooled("ensemble"))
    monkeypatch.setattr(backtesting, "fit_families", pooled("families"))
    monkeypatch.setattr(backtesting, "family_view", lambda tree, lab: tree)
    monkeypatch.setattr(backtesting, "score_fit", scores)
    monkeypatch.setattr(backtesting, "_pooled_record", lambda tree: {
        "card": "ensemble", "diagnostics": None, "weights": {"chinchilla": 1.0}, "tau": 0.1,
        "validated_decades": 1.0, "convergence": None})
    return calls


def test_law_ensemble_backtests_each_metric_alone_by_default(stand_in_backtest):
    calls = stand_in_backtest
    runs = bs.load_runs(three_metrics(n=10), metrics="loss_*")
    res = bs.backtest(runs, group_by=METRIC, executor="serial", draws=10)
    assert [name for name, _ in calls] == ["separate", "separate"]  # no pooled ensemble
    assert all(kw["card"] is None and kw["executor"] == "serial" and kw["draws"] == 10
               and kw["log_likelihood"] is False for _, kw in calls)
    assert set(res.families["method"]) == {"separate"} and res.weights is None
    assert res.card == "ensemble" and res.lpd_mean == 2.0 and res.coverage[0.9] == 1.0
    assert list(res.families.columns) == [
        "family", "method", "n_train", "n_test", "lpd_mean", "coverage50", "coverage80",
        "coverage90", "coverage95", "mean_abs_error"]
    doc = res.to_dict()
    assert "weights" not in doc and doc["lpd_mean"] == 2.0 and len(doc["families"]) == 2
    # --pool-metrics: the ensemble pooled across metrics, scored next to each metric alone
    calls.clear()
    res = bs.backtest(runs, group_by=METRIC, separate=True, pool_metrics=True)
    assert [name for name, _ in calls] == ["ensemble", "separate", "separate"]
    assert set(res.families["method"]) == {"pooled", "separate"}
    assert res.lpd_mean == 1.0 and res.coverage[0.9] == 0.0 and res.weights == {"chinchilla": 1.0}
    # a card: pooled and alone, as before; pool_metrics=False: alone only
    calls.clear()
    bs.backtest(runs, group_by=METRIC, card="chinchilla", separate=True)
    assert [name for name, _ in calls] == ["families", "separate", "separate"]
    calls.clear()
    res = bs.backtest(runs, group_by=METRIC, card="chinchilla", pool_metrics=False)
    assert [name for name, _ in calls] == ["separate", "separate"] and res.card == "chinchilla"


def test_report_of_several_metrics_fits_once_and_backtests_per_metric(
    monkeypatch, tmp_path, metrics_fit_dir
):
    from bayescale.fits.store import load
    from bayescale.workflows import report as reporting
    from bayescale.workflows.backtest import BacktestResult

    seen = {}

    def fake_fit(runs, **kw):
        seen["fit"] = (runs, kw)
        return load(metrics_fit_dir / "posterior.nc")

    summary = pd.DataFrame({"family": ["loss_a", "loss_a", "loss_b", "loss_b"],
                            "method": ["pooled", "separate"] * 2, "n_train": [6] * 4,
                            "n_test": [2] * 4, "lpd_mean": [2.1, 1.9, 2.0, 2.2],
                            "coverage90": [1.0, 0.5, 1.0, 1.0],
                            "mean_abs_error": [0.01, 0.02, 0.01, 0.01]})

    def fake_backtest(runs, **kw):
        seen["backtest"] = (runs, kw)
        return BacktestResult(card="chinchilla", method="bayes", cutoff=None, n_train=12,
                              n_test=4, table=pd.DataFrame(), coverage={}, lpd_mean=2.0,
                              median_abs_error=0.01, diagnostics=None, group_by=METRIC,
                              families=summary)

    monkeypatch.setattr(reporting, "run_fit", fake_fit)
    monkeypatch.setattr(reporting, "run_backtest", fake_backtest)
    doc = bs.report(three_metrics(n=8), metrics="loss_*", card="chinchilla", out_dir=tmp_path,
                    budgets=[1e22], holdout_frac=0.25)
    assert seen["fit"][1]["group_by"] == METRIC
    runs, kw = seen["backtest"]
    assert kw["group_by"] == METRIC and kw["separate"] and kw["holdout_frac"] == 0.25
    assert kw["pool_metrics"] is True  # the report's backtest scores its fit pooled and alone
    assert runs.provenance["metrics"] == ["loss_a", "loss_b"]
    assert [r["family"] for r in doc["families_backtest"]] == ["loss_a"] * 2 + ["loss_b"] * 2
    md = (tmp_path / "report.md").read_text()
    assert "Backtest per metric: pooled fit against each metric fitted alone" in md
    assert "figures/frontier-loss_b.png" in md
    assert "Backtest per metric" in (tmp_path / "report.html").read_text()
