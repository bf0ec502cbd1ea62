"""Tests of extrapolation backtests: the compute split, the mixture predictive and coverage."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from bayescale.core.cards import load_card
from bayescale.core.laws import chinchilla
from bayescale.errors import InputError
from bayescale.workflows.backtest import (
    BacktestResult,
    backtest,
    calibration,
    predictive_scores,
    score_fit,
    split_by_compute,
)

# ------------------------------------------------------------------------------------------
# Split
# ------------------------------------------------------------------------------------------


def test_split_by_fraction_keeps_equal_compute_together():
    C = np.repeat([1e18, 3e18, 1e19, 3e19, 1e20], 4)  # 5 IsoFLOP budgets x 4 runs
    mask, cut = split_by_compute(C, holdout_frac=0.2)
    assert cut == 3e19 and mask.sum() == 4 and np.all(C[mask] == 1e20)
    mask, cut = split_by_compute(C, holdout_frac=0.35)  # 7 wanted: 8 is closer than 4
    assert mask.sum() == 8 and cut == 1e19


def test_split_by_cutoff_and_errors():
    C = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    mask, cut = split_by_compute(C, cutoff=4.5)
    assert mask.tolist() == [False] * 4 + [True] * 2 and cut == 4.5
    with pytest.raises(InputError, match="leaves 2 training and 4 held-out"):
        split_by_compute(C, cutoff=2.0, min_train=3)
    with pytest.raises(InputError, match="0 held-out"):
        split_by_compute(C, cutoff=10.0)
    with pytest.raises(InputError, match="holdout_frac"):
        split_by_compute(C, holdout_frac=1.0)
    with pytest.raises(InputError, match="same compute"):
        split_by_compute(np.ones(5), holdout_frac=0.2)
    with pytest.raises(InputError, match="no compute cutoff"):
        split_by_compute(C, holdout_frac=0.2, min_train=6)


def test_backtest_rejects_cutoff_leaving_too_few_training_runs(sim_runs):
    small_c = float(np.sort(sim_runs["C"].unique())[0])  # only the first budget trains: 9 runs
    with pytest.raises(InputError, match="need at least 8 training"):
        backtest(sim_runs, cutoff=small_c * 0.5, method="mle")
    with pytest.raises(InputError, match="method"):
        backtest(sim_runs, method="map")


# ------------------------------------------------------------------------------------------
# Mixture predictive
# ------------------------------------------------------------------------------------------


def test_predictive_scores_single_normal_is_exact():
    out = predictive_scores([0.3, 1.0], np.array([[0.0, 1.0]]), np.array([2.0]),
                            family="Normal", probs=(0.5, 0.9))
    np.testing.assert_allclose(out["median"], [0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(out["upper"][1], [2 * 1.644853627, 1 + 2 * 1.644853627],
                               rtol=1e-7)
    np.testing.assert_allclose(out["lpd"], stats.norm.logpdf([0.3, 1.0], [0.0, 1.0], 2.0))


def test_predictive_scores_student_mixture_matches_brute_force():
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 1, (40, 3))
    sigma = rng.uniform(0.5, 1.5, 40)
    nu = rng.uniform(1.5, 30, 40)
    y = np.array([0.1, -2.0, 3.0])
    out = predictive_scores(y, mu, sigma, family="StudentT", nu=nu, probs=(0.8, 0.95))

    def mix_cdf(x, q):
        return stats.t.cdf((x - mu[:, q]) / sigma, nu).mean()

    for q in range(3):
        assert mix_cdf(out["median"][q], q) == pytest.approx(0.5, abs=1e-9)
        assert mix_cdf(out["lower"][1, q], q) == pytest.approx(0.025, abs=1e-9)
        assert mix_cdf(out["upper"][0, q], q) == pytest.approx(0.9, abs=1e-9)
        dens = np.mean(stats.t.pdf((y[q] - mu[:, q]) / sigma, nu) / sigma)
        assert out["lpd"][q] == pytest.approx(np.log(dens), rel=1e-9)


def _fake_fit(params, sigma, *, n_draws, rng, jitter=0.0):
    """A fit-like tree with Normal noise and draws around ``params`` (no MCMC)."""
    card = load_card("chinchilla-normal")
    post = {
        k: (("chain", "draw"), (v * (1 + jitter * rng.standard_normal(n_draws)))[None, :])
        for k, v in params.items()
    }
    post["sigma"] = (("chain", "draw"), np.full((1, n_draws), sigma))
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(post)})
    tree.attrs = {"bayescale_card": card.to_json()}
    return tree


def test_coverage_is_nominal_when_the_posterior_is_the_truth():
    rng = np.random.default_rng(11)
    truth = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37}
    n = 4000
    N = 10 ** rng.uniform(8, 10, n)
    D = 10 ** rng.uniform(9, 11, n)
    sigma = 0.02
    loss = chinchilla(N, D, **truth) * np.exp(sigma * rng.standard_normal(n))
    test = pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": loss})
    table = score_fit(_fake_fit(truth, sigma, n_draws=20, rng=rng), test, probs=(0.5, 0.9))
    for p, lab in ((0.5, "50"), (0.9, "90")):
        se = np.sqrt(p * (1 - p) / n)
        assert abs(table[f"covered{lab}"].mean() - p) < 4 * se
    # a noise scale half the truth under-covers: 90% intervals hold about 59% of runs
    narrow = score_fit(_fake_fit(truth, sigma / 2, n_draws=20, rng=rng), test, probs=(0.9,))
    assert narrow["covered90"].mean() == pytest.approx(2 * stats.norm.cdf(1.645 / 2) - 1,
                                                      abs=0.03)
    assert table["lpd"].mean() > narrow["lpd"].mean()
    np.testing.assert_allclose(table["median"], chinchilla(N, D, **truth), rtol=1e-9)
    assert np.all(table["pi90_lower"] < table["pi50_lower"])


def test_pit_and_crps_score_the_whole_distribution():
    """With the truth as the posterior, PITs are uniform and CRPS is the Normal closed form."""
    rng = np.random.default_rng(12)
    truth = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37}
    n, sigma = 2000, 0.02
    N, D = 10 ** rng.uniform(8, 10, n), 10 ** rng.uniform(9, 11, n)
    loss = chinchilla(N, D, **truth) * np.exp(sigma * rng.standard_normal(n))
    test = pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": loss})
    table = score_fit(_fake_fit(truth, sigma, n_draws=20, rng=rng), test, probs=(0.5, 0.9))
    assert stats.kstest(table["pit"], "uniform").pvalue > 0.01
    # the central-interval coverage is the PIT's: |PIT - 0.5| <= p / 2
    inside = np.abs(table["pit"] - 0.5) <= 0.45 + 1e-9
    assert np.array_equal(inside.to_numpy(), table["covered90"].to_numpy())
    z = (np.log(loss) - np.log(chinchilla(N, D, **truth))) / sigma
    closed = sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z)
                      - 1 / np.sqrt(np.pi))
    np.testing.assert_allclose(table["crps"], closed, rtol=1e-4, atol=1e-9)
    # a biased centre shows in the share below the median, not only in the coverage
    shifted = test.assign(loss=test["loss"] * 0.97)
    low = score_fit(_fake_fit(truth, sigma, n_draws=20, rng=rng), shifted, probs=(0.9,))
    assert (low["pit"] < 0.5).mean() > 0.9 and low["crps"].mean() > table["crps"].mean()


# ------------------------------------------------------------------------------------------
# End to end
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backtesting_mle(sim_runs):
    return backtest(sim_runs, method="mle", n_bootstrap=10, random_seed=0)


def test_mle_backtest_end_to_end(backtesting_mle, sim_runs):
    res = backtesting_mle
    assert isinstance(res, BacktestResult) and res.method == "mle"
    assert res.n_test == 9 and res.n_train == 36  # top budget of 5 held out
    assert np.all(res.table["C"] > res.cutoff)
    assert set(res.coverage) == {0.5, 0.8, 0.9, 0.95}
    assert res.coverage[0.95] >= res.coverage[0.5]
    # simulated from the law itself with 1% noise: predictions are close
    assert res.median_abs_error < 0.05
    assert res.diagnostics["noise"]["sigma_median"] == pytest.approx(0.01, rel=0.5)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["n_test"] == 9 and len(d["table"]) == 9 and "0.9" in d["coverage"]
    assert all(0 <= r["pit"] <= 1 and r["crps"] >= 0 for r in d["table"])
    assert d["crps_mean"] == pytest.approx(res.table["crps"].mean())
    assert d["below_median"] == pytest.approx((res.table["pit"] < 0.5).mean())
    assert set(d["pit_uniformity"]) == {"statistic", "pvalue", "n"}


def test_bayes_backtest_end_to_end(sim_runs, sim_fit):
    # sim_fit compiled the chinchilla card; this refit reuses it
    res = backtest(sim_runs, card="chinchilla", method="bayes", draws=1000, tune=1000, chains=4,
                   random_seed=1)
    assert res.method == "bayes" and res.n_test == 9
    assert res.diagnostics["divergences"] == 0
    assert res.coverage[0.95] >= 0.7
    assert res.lpd_mean > 2.0  # log density of 1% noise is about 3.7 per run
    assert res.median_abs_error < 0.05


def test_calibration_table(sim_runs):
    cal = calibration(sim_runs, method="mle", holdout_fracs=(0.2, 0.4), n_bootstrap=5,
                      probs=(0.5, 0.9))
    assert cal.shape[0] == 4
    assert cal["n_test"].tolist() == [9, 9, 18, 18]
    assert set(cal.columns) >= {"holdout_frac", "cutoff", "prob", "coverage", "n_test", "method"}
