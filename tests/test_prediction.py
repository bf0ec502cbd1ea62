"""Predictions on synthetic posteriors (no MCMC): point masses, nesting, exact P(target)."""

import copy

import numpy as np
import pytest
import xarray as xr
from fakes import make_fit, scattered
from scipy import stats

from bayescale.answers.prediction import loss_draws, predict, prediction_table, query_points
from bayescale.core.laws import chinchilla, get_law
from bayescale.errors import BayescaleError, InputError

HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def test_point_mass_posterior_gives_the_law():
    fit = make_fit(HOFFMANN, sigma=1e-9)
    N, D = np.array([1e9, 7e10, 1e12]), np.array([2e10, 1.4e12, 3e13])
    ds = predict(fit, N=N, D=D)
    want = chinchilla(N, D, **HOFFMANN)
    np.testing.assert_allclose(ds["median"], want, rtol=1e-12)
    np.testing.assert_allclose(ds["mean"], want, rtol=1e-12)
    np.testing.assert_allclose(ds["ci"], np.stack([want, want], -1), rtol=1e-12)
    np.testing.assert_allclose(ds["pi"], np.stack([want, want], -1), rtol=1e-6)
    assert ds.attrs["ci_prob"] == 0.9 and ds.attrs["ci_kind"] == "eti"
    assert ds.attrs["card"] == "chinchilla"
    np.testing.assert_allclose(ds["C"], 6 * N * D)


@pytest.mark.parametrize("ci_kind", ["eti", "hdi"])
def test_credible_interval_nested_in_predictive(ci_kind):
    # Noise comparable to the law's spread: the predictive interval is clearly wider (with a
    # tiny noise both intervals agree up to Monte Carlo error and nesting is not guaranteed).
    fit = make_fit(scattered(2000), sigma=0.05, n_draws=2000)
    ds = predict(fit, N=np.geomspace(1e8, 1e11, 25), C=1e21, ci_kind=ci_kind)
    ci, pi = ds["ci"].to_numpy(), ds["pi"].to_numpy()
    assert np.all(pi[:, 0] < ci[:, 0]) and np.all(ci[:, 1] < pi[:, 1])
    assert np.all(ci[:, 0] <= ds["median"]) and np.all(ds["median"] <= ci[:, 1])
    assert ds.attrs["ci_kind"] == ci_kind


def test_intervals_match_quantiles_of_draws():
    fit = make_fit(scattered(), sigma=0.02)
    N, D = np.array([3e9, 2e11]), np.array([6e10, 4e12])
    ds = predict(fit, N=N, D=D, ci_prob=0.8)
    draws = loss_draws(fit, N, D)
    np.testing.assert_allclose(ds["median"], np.median(draws, axis=0), rtol=1e-12)
    np.testing.assert_allclose(ds["mean"], draws.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(ds["ci"], np.quantile(draws, [0.1, 0.9], axis=0).T, rtol=1e-12)


@pytest.mark.parametrize(("card", "cdf"), [
    ("chinchilla-normal", lambda z, nu: stats.norm.cdf(z)),
    ("chinchilla", lambda z, nu: stats.t.cdf(z, nu)),
])
def test_p_below_target_is_exact_and_matches_monte_carlo(card, cdf):
    rng = np.random.default_rng(3)
    sigma = rng.uniform(0.01, 0.03, 400)
    nu = rng.uniform(2.5, 10, 400)
    fit = make_fit(scattered(), card=card, sigma=sigma, nu=nu)
    N, D, target = np.array([1e10, 1e11]), np.array([2e11, 2e12]), 2.05
    ds = predict(fit, N=N, D=D, target_loss=target)
    law = loss_draws(fit, N, D)
    exact = cdf((np.log(target) - np.log(law)) / sigma[:, None], nu[:, None]).mean(axis=0)
    np.testing.assert_allclose(ds["p_below_target"], exact, rtol=1e-10)
    np.testing.assert_allclose(ds["p_law_below_target"], (law < target).mean(axis=0))
    # Monte Carlo: many noise draws per posterior draw.
    k = 200
    noise = (rng.standard_normal((k, *law.shape)) if card.endswith("normal")
             else rng.standard_t(nu[:, None], size=(k, *law.shape)))
    mc = (np.log(law) + sigma[:, None] * noise < np.log(target)).mean(axis=(0, 1))
    assert np.all(np.abs(mc - ds["p_below_target"].to_numpy()) < 0.01)
    assert ds.attrs["target_loss"] == target
    assert np.all((ds["p_below_target"] > 0.02) & (ds["p_below_target"] < 0.98))


def test_predictive_interval_covers_new_runs():
    """~90% of simulated new runs (law draw + noise) fall inside the 90% predictive interval."""
    rng = np.random.default_rng(5)
    post = scattered(2000, seed=1)
    fit = make_fit(post, sigma=0.02, nu=4.0, n_draws=2000)
    N, D = np.array([1e10]), np.array([2e11])
    ds = predict(fit, N=N, D=D)
    i = rng.integers(0, 2000, 20000)
    law = chinchilla(N, D, **{k: v[i] for k, v in post.items()})
    runs = law * np.exp(0.02 * rng.standard_t(4.0, size=i.size))
    lo, hi = ds["pi"].to_numpy()[0]
    assert abs(np.mean((runs > lo) & (runs < hi)) - 0.9) < 0.02


def test_extrapolation_labels():
    fit = make_fit(HOFFMANN, runs_N=(1e8, 1e10), runs_D=(1e9, 1e11))
    ds = predict(fit, N=[1e11, 1e9, 1e7], D=[1e9, 1e12, 1e8])
    np.testing.assert_allclose(ds["extrapolation_N"], [1.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(ds["extrapolation_D"], [0.0, 1.0, -1.0], atol=1e-12)
    # fitted C spans 6e17 .. 6e21; queries have C = 6e20, 6e21, 6e15
    np.testing.assert_allclose(ds["extrapolation_C"], [0.0, 0.0, -2.0], atol=1e-12)


def test_d_given_equals_c_given():
    fit = make_fit(scattered(), sigma=0.02)
    N = np.geomspace(1e8, 1e11, 7)
    D = np.geomspace(1e12, 1e9, 7)
    a = predict(fit, N=N, D=D, target_loss=2.2, random_seed=4)
    b = predict(fit, N=N, C=6 * N * D, target_loss=2.2, random_seed=4)
    c = predict(fit, D=D, C=6 * N * D, target_loss=2.2, random_seed=4)
    for other in (b, c):
        for k in ("N", "D", "C", "median", "mean", "ci", "pi", "p_below_target"):
            np.testing.assert_allclose(a[k], other[k], rtol=1e-12)


def test_broadcasting_and_seed():
    fit = make_fit(scattered(), sigma=0.02)
    ds = predict(fit, N=[[1e9], [1e10]], D=[1e10, 1e11, 1e12])
    assert ds.sizes["query"] == 6
    np.testing.assert_allclose(ds["N"], np.repeat([1e9, 1e10], 3))
    again = predict(fit, N=[[1e9], [1e10]], D=[1e10, 1e11, 1e12])
    assert ds.identical(again)
    other = predict(fit, N=[[1e9], [1e10]], D=[1e10, 1e11, 1e12], random_seed=1)
    assert not np.array_equal(ds["pi"], other["pi"])
    np.testing.assert_array_equal(ds["ci"], other["ci"])


def test_nothing_is_mutated():
    fit = make_fit(scattered(), sigma=0.02)
    before = copy.deepcopy(fit)
    N, D = np.array([1e9, 1e10]), np.array([1e10, 1e11])
    N0, D0 = N.copy(), D.copy()
    predict(fit, N=N, D=D, target_loss=2.0)
    loss_draws(fit, N, D)
    assert fit.identical(before)
    np.testing.assert_array_equal(N, N0)
    np.testing.assert_array_equal(D, D0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"N": -1.0, "D": 1e10}, "N must be finite and > 0; bad at query 0"),
    ({"N": [1e9, np.nan], "D": 1e10}, "bad at query 1"),
    ({"N": 1e9}, "exactly two of N, D, C"),
    ({"N": 1e9, "D": 1e10, "C": 6e19}, "exactly two of N, D, C"),
    ({"N": [1e9, 1e10], "D": [1e10, 1e11, 1e12]}, "do not broadcast"),
    ({"N": [], "D": []}, "empty query"),
    ({"N": "big", "D": 1e10}, "N must be numeric"),
    ({"N": 1e9, "D": 1e10, "target_loss": -1}, "target_loss must be finite"),
    ({"N": 1e9, "D": 1e10, "ci_prob": 1.5}, "ci_prob"),
    ({"N": 1e9, "D": 1e10, "ci_kind": "hpd"}, "ci_kind"),
])
def test_bad_queries_raise_input_error(kwargs, match):
    fit = make_fit(HOFFMANN)
    with pytest.raises(InputError, match=match):
        predict(fit, **kwargs)


def test_single_variable_law():
    fit = make_fit({"N_c": 8.8e13, "alpha_N": 0.076}, card="kaplan-N", sigma=1e-9)
    ds = predict(fit, N=[1e9, 1e12])
    np.testing.assert_allclose(ds["median"], (8.8e13 / np.array([1e9, 1e12])) ** 0.076,
                               rtol=1e-12)
    assert np.isnan(ds["D"]).all() and np.isnan(ds["C"]).all()
    assert np.isnan(ds["extrapolation_C"]).all()
    np.testing.assert_allclose(ds["extrapolation_N"], [0.0, 2.0], atol=1e-12)
    with pytest.raises(InputError, match="needs N"):
        predict(fit, D=1e10)
    assert predict(fit, N=1e9, D=1e10)["C"].item() == pytest.approx(6e19)


def test_prediction_table():
    fit = make_fit(scattered(), sigma=0.02)
    ds = predict(fit, N=[1e9, 1e10], D=[1e10, 1e11], target_loss=2.5, ci_prob=0.8)
    df = prediction_table(ds)
    assert list(df.columns) == [
        "N", "D", "C", "median", "mean", "ci_lower", "ci_upper", "pi_lower", "pi_upper",
        "p_below_target", "p_law_below_target",
        "extrapolation_N", "extrapolation_D", "extrapolation_C", "validated",
    ]
    # both queries lie within the fitted compute (nothing to validate)
    assert df["validated"].tolist() == [True, True]
    beyond = prediction_table(predict(fit, N=1e11, D=1e12))  # a single card validated nothing
    assert beyond["validated"].tolist() == [False]
    assert df.attrs["ci_prob"] == 0.8 and df.attrs["target_loss"] == 2.5
    np.testing.assert_array_equal(df["pi_upper"], ds["pi"].sel(ci_bound="upper"))
    assert "p_below_target" not in prediction_table(predict(fit, N=1e9, D=1e10)).columns


def test_query_points_and_errors_are_bayescale_errors():
    n, d, c = query_points(get_law("chinchilla"), D=1e10, C=[6e19, 6e20])
    np.testing.assert_allclose(n, [1e9, 1e10])
    with pytest.raises(BayescaleError):
        query_points(get_law("chinchilla"), N=0.0, D=1.0)


def test_loss_draws_shape_and_values():
    post = scattered(50)
    fit = make_fit(post, n_draws=50)
    out = loss_draws(fit, [1e9, 1e10, 1e11], 1e11)
    assert out.shape == (50, 3)
    want = chinchilla(np.array([1e9, 1e10, 1e11])[None, :], 1e11,
                      **{k: v[:, None] for k, v in post.items()})
    np.testing.assert_allclose(out, want, rtol=1e-12)



def test_data_limited_law_needs_only_d():
    fit = make_fit({"D_c": 5.4e13, "alpha_D": 0.095}, card="kaplan-D", sigma=1e-9)
    ds = predict(fit, D=[1e10, 1e13])
    np.testing.assert_allclose(ds["median"], (5.4e13 / np.array([1e10, 1e13])) ** 0.095,
                               rtol=1e-12)
    assert np.isnan(ds["N"]).all()
    np.testing.assert_allclose(loss_draws(fit, [1e10, 1e13])[0], ds["median"], rtol=1e-12)


def test_blocks_and_threads_do_not_change_results(monkeypatch):
    from bayescale.answers import allocation, prediction

    fit = make_fit(scattered(), sigma=0.02)
    N = np.geomspace(1e8, 1e12, 50)
    a = predict(fit, N=N, C=1e21, target_loss=2.1)
    opt_a = allocation.optimal(fit, budgets=N * 1e10)
    monkeypatch.setattr(prediction, "_BLOCK_ELEMS", 1000)  # 2 queries per block
    monkeypatch.setattr(prediction, "_THREAD_ELEMS", 0)  # always threaded
    xr.testing.assert_identical(a, predict(fit, N=N, C=1e21, target_loss=2.1))
    xr.testing.assert_identical(opt_a, allocation.optimal(fit, budgets=N * 1e10))
