"""Tests of the Huber point-fit baseline (Hoffmann et al. 2022; Besiroglu et al. 2024)."""

import json

import numpy as np
import pytest

from bayescale import datasets
from bayescale.core.cards import load_card
from bayescale.engines.pointfit import _parameterisation, huber, objective, point_fit
from bayescale.errors import CardError, InputError
from bayescale.fits.layout import card_of, draws


@pytest.fixture(scope="module")
def pointfit_quiet_runs():
    """A nearly noiseless simulated Chinchilla sweep."""
    return datasets.simulate(sigma=0.0005, random_seed=3)


def test_huber_is_quadratic_then_linear():
    r = np.array([-2e-3, -1e-3, 0.0, 5e-4, 3e-3])
    h = huber(r, delta=1e-3)
    np.testing.assert_allclose(h, [1.5e-6, 5e-7, 0.0, 1.25e-7, 2.5e-6])


@pytest.mark.parametrize("name", ["chinchilla", "chinchilla-tied", "kaplan", "kaplan-linf"])
def test_gradient_matches_finite_differences(name):
    param = _parameterisation(load_card(name))
    rng = np.random.default_rng(0)
    runs = datasets.simulate(random_seed=1)
    data = dict(log_n=np.log(runs["N"].to_numpy()), log_d=np.log(runs["D"].to_numpy()),
                log_loss=np.log(runs["loss"].to_numpy()), delta=1e-2)
    base = {
        "chinchilla": [0.6, 6.2, 7.6, 0.35, 0.37],
        "chinchilla_tied": [0.6, 6.2, 7.6, 0.36],
        "kaplan": [30.0, 29.0, 0.08, 0.1],
        "kaplan_linf": [22.0, 24.0, 0.25, 0.3, 0.4],
    }[param.kind]
    theta = np.array(base) * (1 + 0.05 * rng.standard_normal(len(base)))
    f, g = objective(theta, kind=param.kind, **data)
    eps = 1e-6
    fd = np.array([
        (objective(theta + eps * e, kind=param.kind, **data)[0]
         - objective(theta - eps * e, kind=param.kind, **data)[0]) / (2 * eps)
        for e in np.eye(len(theta))
    ])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-9)
    # vectorised over a batch gives the same rows
    fb, gb = objective(np.vstack([theta, theta]), kind=param.kind, **data)
    np.testing.assert_allclose(fb, [f, f])
    np.testing.assert_allclose(gb[1], g)


def test_recovers_known_chinchilla_params(pointfit_quiet_runs):
    truth = pointfit_quiet_runs.attrs["true_params"]
    est = json.loads(point_fit(pointfit_quiet_runs).attrs["bayescale_point_estimate"])
    for k in ("E", "alpha", "beta"):
        assert est[k] == pytest.approx(truth[k], rel=0.02), k
    for k in ("A", "B"):
        assert est[k] == pytest.approx(truth[k], rel=0.10), k
    assert est["sigma"] == pytest.approx(0.0005, rel=0.5)


def test_recovers_known_kaplan_params():
    runs = datasets.simulate(law="kaplan", sigma=0.0005, random_seed=2)
    truth = runs.attrs["true_params"]
    est = json.loads(point_fit(runs, card="kaplan").attrs["bayescale_point_estimate"])
    for k in ("alpha_N", "alpha_D"):
        assert est[k] == pytest.approx(truth[k], rel=0.05), k


def test_reproduces_epoch_estimates(chinchilla_runs):
    est = json.loads(point_fit(chinchilla_runs).attrs["bayescale_point_estimate"])
    epoch = {"E": 1.817, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}
    for k in ("E", "alpha", "beta"):
        assert est[k] == pytest.approx(epoch[k], rel=0.02), k
    for k in ("A", "B"):
        assert est[k] == pytest.approx(epoch[k], rel=0.10), k
    assert est["converged"]


def test_fit_like_tree(pointfit_quiet_runs):
    fit = point_fit(pointfit_quiet_runs, card="chinchilla")
    assert fit.attrs["bayescale_method"] == "mle"
    assert dict(fit.posterior.sizes) == {"chain": 1, "draw": 1}
    card = card_of(fit)
    assert card.family == "Normal" and card.noise_param_names == ("sigma",)
    d = draws(fit)
    assert {"E", "A", "log_A", "B", "log_B", "alpha", "beta", "sigma"} <= set(d)
    mu = card.law_spec.log_loss(pointfit_quiet_runs["N"].to_numpy(),
                                pointfit_quiet_runs["D"].to_numpy(),
                                {k: v[:, None] for k, v in d.items()})
    resid = np.log(pointfit_quiet_runs["loss"].to_numpy()) - mu[0]
    assert np.max(np.abs(resid)) < 0.005
    assert fit["observed_data"]["log_loss"].size == len(pointfit_quiet_runs)
    assert fit["constant_data"]["C"].size == len(pointfit_quiet_runs)


def test_tied_card_ties_exponents(pointfit_quiet_runs):
    d = draws(point_fit(pointfit_quiet_runs, card="chinchilla-tied"))
    assert d["alpha"][0] == d["beta"][0]


def test_bootstrap_is_seeded_and_reproducible(pointfit_quiet_runs):
    a = point_fit(pointfit_quiet_runs, n_bootstrap=5, n_starts=2, random_seed=7)
    b = point_fit(pointfit_quiet_runs, n_bootstrap=5, n_starts=2, random_seed=7)
    c = point_fit(pointfit_quiet_runs, n_bootstrap=5, n_starts=2, random_seed=8)
    assert a.posterior.sizes["draw"] == 5
    np.testing.assert_array_equal(a.posterior["alpha"].values, b.posterior["alpha"].values)
    assert not np.array_equal(a.posterior["alpha"].values, c.posterior["alpha"].values)
    assert np.all(np.abs(a.posterior["alpha"].values - 0.35) < 0.05)


def test_bad_inputs(pointfit_quiet_runs):
    with pytest.raises(InputError, match="delta"):
        point_fit(pointfit_quiet_runs, delta=0)
    with pytest.raises(InputError, match="n_bootstrap"):
        point_fit(pointfit_quiet_runs, n_bootstrap=-1)
    with pytest.raises(InputError, match="n_starts"):
        point_fit(pointfit_quiet_runs, n_starts=0)
    with pytest.raises(CardError, match="kaplan_n"):
        point_fit(pointfit_quiet_runs, card="kaplan-N")
