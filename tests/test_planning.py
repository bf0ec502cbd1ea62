"""Planning (bayescale.answers.planning): targets, importance updates, design, plans, CLI and
report.

Most tests run on fake posteriors (tests/fakes.py, no MCMC); one test refits (the fallback where
importance weights degenerate) on the shared small fit of the simulated sweep.
"""

import json

import numpy as np
import pandas as pd
import pytest
from fakes import make_fit, scattered
from typer.testing import CliRunner

from bayescale import datasets
from bayescale.answers.allocation import optimal_draws
from bayescale.answers.planning import plan
from bayescale.answers.planning.design import ladder, naive_plan
from bayescale.answers.planning.preposterior import update
from bayescale.answers.planning.targets import make_target, target_values, weighted_interval
from bayescale.answers.planning.view import posterior_view
from bayescale.cli import app
from bayescale.core.io import save
from bayescale.errors import InputError

LADDER_N = np.repeat([1e8, 2e8, 4e8], 3)
LADDER_D = np.tile([1e9, 2e9, 4e9], 3)


@pytest.fixture(scope="module")
def fake():
    return make_fit(scattered(2000, seed=3), runs_N=LADDER_N, runs_D=LADDER_D)


def test_weighted_interval_matches_quantiles_and_weights():
    v = np.random.default_rng(0).normal(size=4001)
    iv = weighted_interval(v, np.zeros(v.size), ci_prob=0.9)[0]
    srt = np.sort(v)
    assert iv[0] == srt[200] and iv[1] == srt[3800]  # smallest value with CDF >= 0.05, 0.95
    # Weight on the positive half only: the interval is that of the positive values.
    lw = np.where(v > 0, 0.0, -np.inf)
    iv2 = weighted_interval(v, lw, ci_prob=0.9)[0]
    pos = np.sort(v[v > 0])
    k = pos.size
    assert iv2[0] == pos[int(np.ceil(0.05 * k)) - 1] and iv2[1] == pos[int(np.ceil(0.95 * k)) - 1]


def test_importance_update_matches_quadrature():
    """Posterior mean of E after one run, by reweighting, equals the exact (quadrature) one."""
    rng = np.random.default_rng(1)
    s = 20000
    e = 1.8 + 0.05 * rng.standard_normal(s)
    fit = make_fit({"E": e, "A": 400.0, "B": 400.0, "alpha": 0.34, "beta": 0.28},
                   card="chinchilla-normal", sigma=0.01)
    view = posterior_view(fit)
    n0, d0 = 1e9, 2e10
    c = 400.0 / n0**0.34 + 400.0 / d0**0.28
    y = np.log(1.85 + c)
    mu = view.log_loss_grid([n0], [d0])[0]
    lw = update(view, np.zeros((1, s)), np.array([y]), mu)[0]
    w = np.exp(lw - lw.max())
    w /= w.sum()
    mean_is = float(np.sum(w * e))
    sd_is = float(np.sqrt(np.sum(w * (e - mean_is) ** 2)))
    ess = 1.0 / np.sum(w**2)
    grid = np.linspace(1.5, 2.1, 200001)
    logp = -0.5 * ((grid - 1.8) / 0.05) ** 2 - 0.5 * ((y - np.log(grid + c)) / 0.01) ** 2
    p = np.exp(logp - logp.max())
    mean_exact = float(np.sum(p * grid) / p.sum())
    assert abs(mean_is - mean_exact) < 5 * sd_is / np.sqrt(ess)


def test_targets_per_draw(fake):
    view = posterior_view(fake)
    nopt = target_values(view, make_target("nopt", budget=5.76e23))
    ref = optimal_draws(fake, budgets=[5.76e23])["N_opt"].to_numpy()[:, 0]
    np.testing.assert_allclose(10**nopt, ref, rtol=1e-9)
    # compute: the optimal loss at the per-draw compute equals the target.
    comp = target_values(view, make_target("compute", target_loss=2.0))
    assert np.isfinite(comp).all()
    p = view.params
    alpha, beta = p["alpha"], p["beta"]
    g = (np.log(alpha) + p["log_A"] - np.log(beta) - p["log_B"]) / (alpha + beta)
    log_n = g + beta / (alpha + beta) * (comp * np.log(10) - np.log(6))
    loss = view.log_loss(np.exp(log_n), 10**comp / (6 * np.exp(log_n)))
    np.testing.assert_allclose(np.exp(loss), 2.0, rtol=1e-9)
    with pytest.raises(InputError, match="needs the planned run"):
        make_target("loss", N=7e10)
    with pytest.raises(InputError, match="one of loss, nopt, compute"):
        make_target("flops")


def test_ladder_of_a_simulated_sweep():
    runs = datasets.simulate(budgets=(1e17, 1e18, 1e19), n_per_budget=5, random_seed=0)
    lad = ladder(runs)
    np.testing.assert_allclose(lad["levels"], [1e17, 1e18, 1e19], rtol=1e-9)
    assert lad["ratio"] == pytest.approx(10.0)
    top = runs[np.isclose(runs["C"], 1e19)]
    np.testing.assert_allclose(lad["grid"], np.sort(top["N"].to_numpy()))
    assert lad["next"] == pytest.approx(1e20)


def test_naive_plan_is_next_budget_on_the_grid_trimmed(fake):
    view = posterior_view(fake)
    lad = ladder(view.runs)
    c_next = lad["next"]
    runs, _ = naive_plan(view, cost=2.5 * c_next)
    assert len(runs) == 2 and np.allclose(runs["C"], c_next)
    assert set(runs["N"]) <= set(lad["grid"])
    one, _ = naive_plan(view, cost=0.5 * c_next)  # not even one run at C_next: one run of cost
    assert len(one) == 1 and one["C"].iloc[0] == pytest.approx(0.5 * c_next)


def test_plan_contract_budget_and_seed(fake):
    kw = dict(target="loss", N=7e10, D=1.4e12, budget_new=1e20, n_worlds=24, random_seed=5,
              refit=False, min_ess=0)
    p = plan(fake, **kw)
    assert 0 < p.cost <= 1e20 * (1 + 1e-9)
    assert p.width_after < p.width_now and p.width_after_naive < p.width_now
    assert p.naive_runs["C"].sum() <= p.cost * (1 + 1e-9)
    widths = p.runs["width_after"].to_numpy()
    assert np.all(np.diff(widths) < 0) and widths[-1] == pytest.approx(p.width_after)
    assert set(p.runs["method"]) == {"importance"}
    doc = json.loads(p.to_json())
    assert {"runs", "width_now", "width_after", "width_after_naive"} <= set(doc)
    assert all({"N", "D", "C"} <= set(r) for r in doc["runs"])
    again = plan(fake, **kw)
    pd.testing.assert_frame_equal(p.runs, again.runs)
    assert again.width_after == p.width_after


def test_one_run_at_the_target_narrows_as_the_gaussian_update():
    """A candidate exactly at the target: the width follows 1/v = 1/v0 + 1/sigma^2 on log loss."""
    fit = make_fit(scattered(4000, seed=2), card="chinchilla-normal", sigma=0.01)
    view = posterior_view(fit)
    n0, d0 = 1e9, 2e10
    log_l = view.log_loss_grid([n0], [d0])[0]
    v0 = log_l.var()
    p = plan(fit, target="loss", N=n0, D=d0, budget_new=1e21, max_runs=1, n_worlds=64,
             candidates=pd.DataFrame({"N": [n0], "D": [d0]}), refit=False, min_ess=0)
    post_sd = np.sqrt(1.0 / (1.0 / v0 + 1.0 / 0.01**2))
    expected = 2 * 1.6449 * post_sd * np.exp(np.median(log_l))  # 90% width of L = exp(log L)
    # Gaussian limit up to the curvature of exp() and the ESS of ~4000/ (sd ratio) draws.
    assert p.width_after == pytest.approx(expected, rel=0.1)


def test_plan_refits_where_weights_degenerate(sim_fit):
    p = plan(sim_fit, target="nopt", budget=1e23, budget_new=3e19, max_runs=2, n_worlds=8,
             min_ess=1e9, max_refits=0, refit_worlds=2, refit_draws=1000, random_seed=0)
    assert p.runs["method"].iloc[-1] == "refit"
    assert p.settings["naive_method"] == "refit" and p.settings["refits"] == 4
    assert np.isfinite(p.width_after) and p.width_after < p.width_now


def test_plan_cli_json_and_errors(fake, tmp_path):
    path = save(fake, tmp_path / "posterior.nc")
    runner = CliRunner()
    res = runner.invoke(app, ["plan", str(path), "--target", "nopt", "--budget", "5.76e23",
                              "--budget-new", "1e20", "--worlds", "16", "--no-refit",
                              "--min-ess", "0", "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["target"]["kind"] == "nopt" and doc["runs"]
    assert doc["width_after"] < doc["width_now"]
    table = runner.invoke(app, ["plan", str(path), "--N", "7e10", "--D", "1.4e12",
                                "--budget-new", "1e20", "--worlds", "8", "--no-refit",
                                "--min-ess", "0"])
    assert table.exit_code == 0 and "naive plan" in table.stdout
    bad = runner.invoke(app, ["plan", str(path), "--target", "loss", "--budget-new", "1e20"])
    assert bad.exit_code == 2 and "--N" in bad.stderr


def test_report_what_to_run_next(tmp_path):
    from bayescale.workflows.report import write_report

    # Noise wide next to the draws' spread: one run barely moves the weights (no refits).
    fit = make_fit(scattered(1000, seed=3), sigma=0.1, runs_N=LADDER_N, runs_D=LADDER_D)
    doc = write_report(fit, tmp_path, budgets=[5.76e23], plan_budget=1e20,
                       inference_tokens=1e13)
    assert "plan" in doc["figures"] and doc["plan"]["width_after"] < doc["plan"]["width_now"]
    md = (tmp_path / "report.md").read_text()
    assert "What to run next" in md and "Inference-aware optimum" in md


def test_no_useful_run_gives_an_empty_plan_and_an_empty_naive_plan():
    """Point-mass posterior: nothing to learn, so nothing is planned and nothing is narrowed."""
    fit = make_fit({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
                   n_draws=200, runs_N=LADDER_N, runs_D=LADDER_D)
    p = plan(fit, target="loss", N=7e10, D=1.4e12, budget_new=1e20, n_worlds=8)
    assert p.runs.empty and p.naive_runs.empty and p.cost == 0
    assert p.width_now == p.width_after == p.width_after_naive == 0
    assert json.loads(p.to_json())["shrinkage"] == 0
    with pytest.raises(InputError, match="budget_new"):
        plan(fit, target="loss", N=7e10, D=1.4e12, budget_new=-1)
