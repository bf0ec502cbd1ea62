"""Extrapolation discrepancy: closed forms on synthetic posteriors, then small real fits."""

import json

import numpy as np
import pandas as pd
import pytest
from fakes import make_fit, scattered
from scipy import special, stats
from typer.testing import CliRunner

from bayescale import datasets
from bayescale.answers.prediction import predict
from bayescale.cli import app
from bayescale.core.io import save
from bayescale.core.laws import chinchilla
from bayescale.engines.discrepancy import estimate_discrepancy
from bayescale.errors import InputError
from bayescale.scoring.discrepancy import (
    Discrepancy,
    as_tau,
    extrapolation_decades,
    inflated_scale,
    pooled_lpd,
)
from bayescale.scoring.stacking import fit_tau
from bayescale.workflows.backtest import backtest, predictive_scores, score_fit

HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
C_MAX = 6e21  # largest fitted run of fakes.make_fit (N 1e10, D 1e11)
BUDGETS = (1e17, 1e18, 1e19, 1e20, 1e21)
# The Student-t card: chinchilla-normal fits of the Kaplan-law runs have a few divergences.
SMALL = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 1}


def compute_grid():
    """Queries at N/D = 1/20 from inside the fitted compute to 3 decades beyond it."""
    C = np.array([1e19, 1e21, C_MAX, 6e22, 6e23, 6e24])
    N = np.sqrt(C / (6 * 20))
    return N, C


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def test_helpers_closed_forms():
    assert as_tau(None) == 0.0 and as_tau(0.03) == 0.03
    disc = Discrepancy(tau=0.02, n_heldout=0, holdout_fracs=(), table=pd.DataFrame(),
                       lpd_without=0.0, lpd_with=0.0)
    assert as_tau(disc) == 0.02
    for bad in (-0.1, np.inf, "x"):
        with pytest.raises(InputError, match="discrepancy"):
            as_tau(bad)
    np.testing.assert_allclose(extrapolation_decades([1e20, 1e21, 1e23], 1e21), [0, 0, 2])
    np.testing.assert_allclose(inflated_scale(np.array([0.03, 0.0]), 0.04, 1.0), [0.05, 0.04])


def test_pooled_lpd_matches_scipy_and_best_tau_recovers_truth():
    rng = np.random.default_rng(3)
    n_runs, n_draws, tau_true, sigma = 400, 50, 0.05, 0.01
    delta = rng.uniform(0, 2, n_runs)
    mu = 0.001 * rng.standard_normal((n_draws, n_runs))
    y = rng.normal(0, np.hypot(sigma, tau_true * delta))
    piece = {"y": y, "mu": mu, "sigma": np.full(n_draws, sigma), "nu": None,
             "family": "Normal", "delta": delta}
    scale = np.hypot(sigma, 0.03 * delta)
    want = special.logsumexp(stats.norm.logpdf(y, mu, scale), axis=0) - np.log(n_draws)
    assert pooled_lpd(0.03, [piece]) == pytest.approx(want.sum(), rel=1e-12)
    # 400 runs: the sd of the estimate is about tau / sqrt(2 * 400) = 0.0018
    # the one tau estimator (the ensemble's), for a mixture of this one card
    tau, info = fit_tau([[piece]], [1.0])
    assert tau == pytest.approx(tau_true, abs=0.01)
    assert info["lpd_with"] == pytest.approx(pooled_lpd(tau, [piece]), rel=1e-12)
    well = dict(piece, y=rng.normal(0, sigma, n_runs))
    assert fit_tau([[well]], [1.0])[0] < 0.01


def test_predictive_scores_accept_a_scale_per_observation():
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 0.01, (30, 3))
    sig = np.array([0.01, 0.02, 0.05])
    y = np.array([0.0, 0.02, -0.03])
    two_d = predictive_scores(y, mu, np.tile(sig, (30, 1)), family="Normal", probs=(0.9,))
    for j in range(3):
        one = predictive_scores(y[j : j + 1], mu[:, j : j + 1], np.full(30, sig[j]),
                                family="Normal", probs=(0.9,))
        for k in ("lpd", "median", "lower", "upper"):
            np.testing.assert_allclose(two_d[k][..., j], one[k][..., 0], rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------
# predict with a discrepancy (synthetic posteriors, no MCMC)
# ------------------------------------------------------------------------------------------


def test_tau_zero_reproduces_predict_exactly():
    fit = make_fit(scattered(), sigma=0.02)
    N, C = compute_grid()
    base = predict(fit, N=N, C=C, target_loss=2.1)
    zero = predict(fit, N=N, C=C, target_loss=2.1, discrepancy=0.0)
    for name in base.data_vars:
        np.testing.assert_array_equal(zero[name], base[name])
    assert zero.attrs["discrepancy_tau"] == 0.0 and "discrepancy_tau" not in base.attrs


def test_pi_widens_with_extrapolation_and_not_inside():
    fit = make_fit(scattered(), sigma=0.02)
    N, C = compute_grid()
    base = predict(fit, N=N, C=C)
    ds = predict(fit, N=N, C=C, discrepancy=0.03)
    delta = np.maximum(ds["extrapolation_C"].to_numpy(), 0)
    inside = delta == 0
    assert inside.sum() == 3 and (delta[~inside] > 0).all()
    np.testing.assert_allclose(ds["pi"][inside], base["pi"][inside], rtol=1e-14)
    np.testing.assert_array_equal(ds["ci"], base["ci"])
    np.testing.assert_array_equal(ds["median"], base["median"])
    log_width = np.log(ds["pi"].sel(ci_bound="upper") / ds["pi"].sel(ci_bound="lower"))
    extra = log_width - np.log(base["pi"].sel(ci_bound="upper") / base["pi"].sel(ci_bound="lower"))
    assert (np.diff(extra.to_numpy()[2:]) > 0).all()
    assert (extra.to_numpy()[3:] > 0).all()


@pytest.mark.parametrize(("card", "cdf"), [
    ("chinchilla-normal", stats.norm.cdf),
    ("chinchilla", lambda z: stats.t.cdf(z, 4.0)),
])
def test_p_below_target_uses_the_inflated_scale(card, cdf):
    sigma, tau, target = 0.01, 0.02, 2.0
    fit = make_fit(HOFFMANN, card=card, sigma=sigma, nu=4.0, n_draws=50)
    N, C = compute_grid()
    ds = predict(fit, N=N, C=C, target_loss=target, discrepancy=tau)
    delta = np.maximum(ds["extrapolation_C"].to_numpy(), 0)
    law = chinchilla(ds["N"].to_numpy(), ds["D"].to_numpy(), **HOFFMANN)
    z = (np.log(target) - np.log(law)) / np.sqrt(sigma**2 + (tau * delta) ** 2)
    np.testing.assert_allclose(ds["p_below_target"], cdf(z), rtol=1e-10, atol=1e-14)
    # point-mass law: the predictive interval is the law times exp(scale * noise quantiles)
    scale = np.sqrt(sigma**2 + (tau * delta) ** 2)
    upper = np.log(ds["pi"].sel(ci_bound="upper").to_numpy() / law) / scale
    np.testing.assert_allclose(upper, upper[0], rtol=1e-2)


def test_predict_discrepancy_bad_input():
    fit = make_fit(HOFFMANN)
    with pytest.raises(InputError, match="tau must be finite and >= 0"):
        predict(fit, N=1e9, D=2e10, discrepancy=-1.0)


def test_score_fit_inflates_only_beyond_the_fitted_compute():
    fit = make_fit(scattered(), card="chinchilla-normal", sigma=0.02)
    N, C = compute_grid()
    test = pd.DataFrame({"N": N, "D": C / (6 * N), "C": C, "loss": np.full(N.size, 2.2)})
    base = score_fit(fit, test, probs=(0.9,))
    same = score_fit(fit, test, probs=(0.9,), discrepancy=0.0)
    pd.testing.assert_frame_equal(base, same)
    wide = score_fit(fit, test, probs=(0.9,), discrepancy=0.05)
    width = wide["pi90_upper"] - wide["pi90_lower"]
    width0 = base["pi90_upper"] - base["pi90_lower"]
    np.testing.assert_allclose(width[:3], width0[:3], rtol=1e-9)
    ratio = (width / width0).to_numpy()
    assert (ratio[3:] > 1).all() and (np.diff(ratio[3:]) > 0).all()


# ------------------------------------------------------------------------------------------
# estimate_discrepancy and the nested backtest (small real fits)
# ------------------------------------------------------------------------------------------


def test_estimate_discrepancy_is_small_when_the_law_is_right():
    runs = datasets.simulate(law="chinchilla", budgets=BUDGETS, sigma=0.01, random_seed=0)
    d = estimate_discrepancy(runs, card="chinchilla", **SMALL)
    assert d.holdout_fracs == (0.1, 0.2, 0.3) and d.notes == ()
    assert d.n_heldout == len(d.table) and d.table["delta_decades"].max() >= 1
    # the discrepancy at the furthest held-out run stays below the fitted run noise
    assert d.tau * d.table["delta_decades"].max() < d.table["sigma_median"].max()
    assert d.lpd_with - d.lpd_without < 2.0
    out = json.loads(json.dumps(d.to_dict()))
    assert out["tau"] == d.tau and len(out["table"]) == d.n_heldout


def test_estimate_discrepancy_is_positive_when_the_law_is_wrong():
    runs = datasets.simulate(law="kaplan", budgets=BUDGETS, sigma=0.01, random_seed=0)
    d = estimate_discrepancy(runs, card="chinchilla", **SMALL)
    # at the furthest held-out run, the discrepancy clearly exceeds the fitted run noise
    assert d.tau * d.table["delta_decades"].max() > 2 * d.table["sigma_median"].median()
    assert d.lpd_with > d.lpd_without


def test_estimate_discrepancy_needs_a_usable_split():
    runs = datasets.simulate(budgets=(1e17, 1e18), n_per_budget=4, random_seed=0)
    with pytest.raises(InputError, match="no usable split"):
        estimate_discrepancy(runs, card="chinchilla-normal", **SMALL)


def test_nested_backtest_never_shows_held_out_runs_to_tau(monkeypatch):
    from bayescale.engines import discrepancy as engine
    from bayescale.workflows import fit as public

    seen = []
    real_fit = public.fit_card

    def recording_fit(runs, **kwargs):
        seen.append(np.asarray(runs.C, float).copy())
        return real_fit(runs, **kwargs)

    monkeypatch.setattr(public, "fit_card", recording_fit)  # the outer fit
    monkeypatch.setattr(engine, "fit_card", recording_fit)  # the nested fits
    runs = datasets.simulate(law="kaplan", budgets=BUDGETS, sigma=0.01, random_seed=0)
    res = backtest(runs, card="chinchilla", discrepancy=True, probs=(0.5, 0.9), **SMALL)
    assert len(seen) == 4  # the outer fit, then one per nested fraction
    outer_train_max = seen[0].max()
    assert all(c.max() <= outer_train_max for c in seen[1:])
    assert all(len(c) < len(seen[0]) for c in seen[1:])
    held_out = res.table["C"].to_numpy()
    assert (held_out > outer_train_max).all()
    assert res.tau is not None and res.tau >= 0
    assert set(res.coverage_calibrated) == {0.5, 0.9}
    assert res.coverage_calibrated[0.9] >= res.coverage[0.9]
    assert {"lpd_calibrated", "pi90_lower_calibrated", "covered90_calibrated"} <= set(res.table)
    out = res.to_dict()
    assert out["tau"] == res.tau and "table" not in out["discrepancy"]


def test_backtest_discrepancy_needs_bayes():
    with pytest.raises(InputError, match="discrepancy needs method 'bayes'"):
        backtest(datasets.simulate(random_seed=0), method="mle", discrepancy=True)


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------


def test_cli_predict_discrepancy(tmp_path):
    save(make_fit(HOFFMANN, sigma=0.01), tmp_path / "posterior.nc")
    runner = CliRunner()
    args = ["predict", str(tmp_path), "--N", "1e11", "--D", "2e12", "--json"]
    base = json.loads(runner.invoke(app, args).stdout)
    res = runner.invoke(app, [*args, "--discrepancy", "0.05"])
    assert res.exit_code == 0, res.stderr
    wide = json.loads(res.stdout)
    assert wide["discrepancy_tau"] == 0.05 and "discrepancy_tau" not in base
    (qb,), (qw,) = base["queries"], wide["queries"]
    assert qw["ci"] == qb["ci"]
    assert qw["pi"][0] < qb["pi"][0] and qw["pi"][1] > qb["pi"][1]


def test_cli_backtest_discrepancy(tmp_path):
    csv = tmp_path / "runs.csv"
    datasets.simulate(law="kaplan", budgets=BUDGETS, sigma=0.01, random_seed=0).to_csv(
        csv, index=False
    )
    runner = CliRunner()
    args = ["backtest", str(csv), "--law", "chinchilla", "--discrepancy",
            "--draws", "1000", "--tune", "1000", "--chains", "4", "--seed", "1",
            "--out", str(tmp_path / "bt")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    assert "with discrepancy" in res.stdout and "discrepancy tau" in res.stdout
    data = json.loads((tmp_path / "bt" / "backtest.json").read_text())
    assert set(data["coverage_calibrated"]) == {"0.5", "0.8", "0.9", "0.95"}
    assert data["tau"] >= 0
    bad = runner.invoke(app, [*args[:-2], "--method", "mle", "--out", str(tmp_path / "b2")])
    assert bad.exit_code != 0 and "--discrepancy needs --method bayes" in bad.stderr
