"""Compute-optimal allocation: closed forms vs numeric search, summaries, the inverse question."""

import copy

import numpy as np
import pytest
from fakes import make_fit

from bayescale.answers.allocation import (
    compute_for_target,
    exponents,
    numeric_optimum,
    optimal,
    optimal_draws,
)
from bayescale.answers.prediction import law_params, predict
from bayescale.core.cards import load_card
from bayescale.core.laws import get_law
from bayescale.core.stats import interval
from bayescale.errors import InputError

BUDGETS = np.array([1e18, 1e21, 5.76e23, 1e26])


def chinchilla_draws(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "E": 1.69 + 0.05 * rng.standard_normal(n),
        "A": 406.4 * np.exp(0.5 * rng.standard_normal(n)),
        "B": 410.7 * np.exp(0.5 * rng.standard_normal(n)),
        "alpha": rng.uniform(0.2, 0.6, n),
        "beta": rng.uniform(0.2, 0.6, n),
    }


def kaplan_draws(n=300, seed=0, *, l_inf=False):
    rng = np.random.default_rng(seed)
    out = {
        "N_c": 6.4e13 * np.exp(rng.standard_normal(n)),
        "D_c": 1.8e13 * np.exp(rng.standard_normal(n)),
        "alpha_N": rng.uniform(0.05, 0.4, n),
        "alpha_D": rng.uniform(0.05, 0.4, n),
    }
    if l_inf:
        out["L_inf"] = rng.uniform(0.5, 1.5, n)
    return out


@pytest.mark.parametrize(("card", "params"), [
    ("chinchilla", chinchilla_draws()),
    ("kaplan", kaplan_draws()),
    ("kaplan-linf", kaplan_draws(l_inf=True)),
])
def test_closed_form_agrees_with_numeric_minimisation_on_every_draw(card, params):
    fit = make_fit(params, card=card)
    closed = optimal_draws(fit, budgets=BUDGETS, method="closed")
    numeric = optimal_draws(fit, budgets=BUDGETS, method="numeric")
    assert closed.attrs["method"] == "closed-form" and numeric.attrs["method"] == "numeric"
    for k in ("N_opt", "D_opt", "tokens_per_param"):
        np.testing.assert_allclose(closed[k], numeric[k], rtol=2e-5)
    np.testing.assert_allclose(closed["loss_opt"], numeric["loss_opt"], rtol=1e-12)
    # ... and with the closed forms of bayescale.core.laws, and the law at the optimum.
    law = get_law(load_card(card).law)
    n, d = law.optimal(BUDGETS[None, :], {k: v[:, None] for k, v in params.items()})
    np.testing.assert_allclose(closed["N_opt"], n, rtol=1e-10)
    np.testing.assert_allclose(closed["D_opt"], d, rtol=1e-10)
    np.testing.assert_allclose(6 * closed["N_opt"] * closed["D_opt"], BUDGETS[None, :] + 0 * n,
                               rtol=1e-12)
    direct = law.loss(n, d, {k: v[:, None] for k, v in params.items()})
    np.testing.assert_allclose(closed["loss_opt"], direct, rtol=1e-10)


def test_numeric_optimum_is_a_minimum_along_the_isoflop_line():
    law = get_law("chinchilla")
    p = {k: v[:5] for k, v in chinchilla_draws().items()}
    n, d = numeric_optimum(law, p, [1e22])
    pp = {k: v[:, None] for k, v in p.items()}
    best = law.loss(n, d, pp)
    for f in (0.98, 1.02):
        assert np.all(law.loss(n * f, d / f, pp) > best)


def test_exponents_are_the_log_log_slopes():
    params = chinchilla_draws()
    fit = make_fit(params)
    dr = optimal_draws(fit, budgets=[1e20, 1e24])
    slope_n = np.log(dr["N_opt"][:, 1] / dr["N_opt"][:, 0]) / np.log(1e4)
    slope_d = np.log(dr["D_opt"][:, 1] / dr["D_opt"][:, 0]) / np.log(1e4)
    e = exponents(get_law("chinchilla"), params)
    np.testing.assert_allclose(slope_n, e["a"], rtol=1e-9)
    np.testing.assert_allclose(slope_d, e["b"], rtol=1e-9)
    ek = exponents(get_law("kaplan"), {"alpha_N": 0.076, "alpha_D": 0.103})
    assert float(ek["a"]) == pytest.approx(0.103 / 0.179)


@pytest.mark.parametrize("ci_kind", ["eti", "hdi"])
def test_summaries_match_the_draws(ci_kind):
    fit = make_fit(chinchilla_draws(301), n_draws=301)
    ds = optimal(fit, budgets=BUDGETS, ci_prob=0.8, ci_kind=ci_kind)
    dr = optimal_draws(fit, budgets=BUDGETS)
    for k in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
        x = dr[k].to_numpy()
        np.testing.assert_allclose(ds[k], np.median(x, axis=0), rtol=1e-12)
        np.testing.assert_allclose(ds[f"{k}_ci"], interval(x, ci_prob=0.8, ci_kind=ci_kind),
                                   rtol=1e-12)
    a = exponents(get_law("chinchilla"), law_params(fit)[1])["a"]
    assert float(ds["exponent_a"]) == pytest.approx(np.median(a))
    assert float(ds["exponent_a"] + ds["exponent_b"]) == pytest.approx(1.0)
    assert ds["exponent_a_ci"].dims == ("ci_bound",)
    assert ds.attrs["ci_prob"] == 0.8 and ds.attrs["method"] == "closed-form"
    np.testing.assert_array_equal(ds["budget"], BUDGETS)


def test_point_mass_reproduces_hoffmann_closed_form():
    fit = make_fit({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28})
    ds = optimal(fit, budgets=[5.76e23])
    assert float(ds["N_opt"][0]) == pytest.approx(32.2e9, rel=2e-3)
    assert float(ds["D_opt"][0]) == pytest.approx(2.98e12, rel=2e-3)
    np.testing.assert_allclose(ds["N_opt_ci"][0], [ds["N_opt"][0]] * 2, rtol=1e-12)


def test_bad_inputs():
    fit = make_fit(chinchilla_draws())
    with pytest.raises(InputError, match="budgets must be finite and > 0 FLOPs; bad at index 1"):
        optimal(fit, budgets=[1e20, -1.0])
    with pytest.raises(InputError, match="budgets is empty"):
        optimal_draws(fit, budgets=[])
    with pytest.raises(InputError, match="method must be one of"):
        optimal_draws(fit, budgets=[1e20], method="newton")
    single = make_fit({"N_c": 8.8e13, "alpha_N": 0.076}, card="kaplan-N")
    for call in (lambda: optimal(single, budgets=[1e20]),
                 lambda: optimal_draws(single, budgets=[1e20]),
                 lambda: compute_for_target(single, target_loss=2.0)):
        with pytest.raises(InputError, match="no compute-optimal allocation"):
            call()
    with pytest.raises(InputError, match="prob must be strictly between"):
        compute_for_target(fit, target_loss=2.0, prob=1.0)
    with pytest.raises(InputError, match="c_range"):
        compute_for_target(fit, target_loss=2.0, c_range=(1e25, 1e20))


def test_nothing_is_mutated():
    fit = make_fit(chinchilla_draws())
    before = copy.deepcopy(fit)
    budgets = BUDGETS.copy()
    optimal(fit, budgets=budgets)
    optimal_draws(fit, budgets=budgets)
    compute_for_target(fit, target_loss=2.2)
    assert fit.identical(before)
    np.testing.assert_array_equal(budgets, BUDGETS)


def narrow_fit(family_card="chinchilla"):
    rng = np.random.default_rng(2)
    n = 400
    params = {
        "E": 1.69 + 0.01 * rng.standard_normal(n),
        "A": 406.4 * np.exp(0.05 * rng.standard_normal(n)),
        "B": 410.7 * np.exp(0.05 * rng.standard_normal(n)),
        "alpha": 0.34 + 0.005 * rng.standard_normal(n),
        "beta": 0.28 + 0.005 * rng.standard_normal(n),
    }
    return make_fit(params, card=family_card, sigma=rng.uniform(0.005, 0.02, n),
                    nu=rng.uniform(3, 8, n), n_draws=n)


@pytest.mark.parametrize("card", ["chinchilla", "chinchilla-normal"])
def test_compute_for_target_is_the_smallest_budget_reaching_prob(card):
    fit = narrow_fit(card)
    out = compute_for_target(fit, target_loss=2.0, prob=0.8)
    assert out["p_at_C"] >= 0.8
    assert out["C"] == pytest.approx(6 * out["N"] * out["D"], rel=1e-12)
    assert out["tokens_per_param"] == pytest.approx(out["D"] / out["N"])
    # the plan is the posterior-median optimal split at C
    dr = optimal_draws(fit, budgets=[out["C"]])
    assert out["N"] == pytest.approx(float(np.median(dr["N_opt"])), rel=1e-10)
    # P from predict at the plan is the same number; slightly less compute falls short
    ds = predict(fit, N=out["N"], D=out["D"], target_loss=2.0)
    assert float(ds["p_below_target"][0]) == pytest.approx(out["p_at_C"], rel=1e-10)
    c_less = out["C"] * 0.999
    dr = optimal_draws(fit, budgets=[c_less])
    n_less = float(np.median(dr["N_opt"]))
    p_less = predict(fit, N=n_less, C=c_less, target_loss=2.0)["p_below_target"][0]
    assert float(p_less) < 0.8
    assert out["loss"]["lo"] < out["loss"]["median"] < out["loss"]["hi"] < 2.0 + 0.05
    # a harder target needs more compute
    assert compute_for_target(fit, target_loss=1.95, prob=0.8)["C"] > out["C"]


def test_compute_for_target_unreachable_below_the_floor():
    fit = narrow_fit()
    with pytest.raises(InputError, match=r"target unreachable: .* loss floor E"):
        compute_for_target(fit, target_loss=1.6)
    out = compute_for_target(fit, target_loss=10.0, c_range=(1e15, 1e20))
    assert out["already_reached"] and out["C"] is None  # never the floor of the search


def test_compute_for_target_edges_are_plain_statements():
    """Issue 11: a target the runs already reach, or one past the ceiling, gets no budget."""
    fit = narrow_fit()  # fitted runs: C = 6e17, 6e19, 6e21 with losses in [2, 3]
    runs_loss = np.exp(fit["observed_data"]["log_loss"].to_numpy())
    out = compute_for_target(fit, target_loss=10.0)  # above every observed loss
    assert out["already_reached"] and not out["beyond_search"]
    assert out["C"] is None and out["N"] is None and out["D"] is None and out["loss"] is None
    assert out["reached_by"] == {"run": "#1", "N": 1e8, "D": 1e9, "C": 6e17,
                                 "loss": pytest.approx(runs_loss[0])}
    assert out["statement"].startswith("already reached: the fitted run #1")
    # the smallest run by compute that reaches it, not the first row
    target = float(np.sort(runs_loss)[0]) + 1e-9
    first = int(np.argmin(runs_loss))
    assert compute_for_target(fit, target_loss=target)["reached_by"]["C"] == pytest.approx(
        6 * fit["constant_data"]["N"].values[first] * fit["constant_data"]["D"].values[first]
    )
    # below every observed loss, but the plan at the search floor already reaches it
    low = compute_for_target(fit, target_loss=1.99, c_range=(1e24, 1e30))
    assert low["already_reached"] and low["reached_by"] is None and low["C"] is None
    assert "smallest budget searched" in low["statement"] and low["search_floor"] == 1e24
    # reachable only beyond the ceiling
    far = compute_for_target(fit, target_loss=1.9, c_range=(1e15, 1e18))
    assert far["beyond_search"] and not far["already_reached"] and far["C"] is None
    assert far["search_ceiling"] == 1e18 and "largest budget searched" in far["statement"]
    # an ordinary answer says neither
    ok = compute_for_target(fit, target_loss=1.9)
    assert not ok["already_reached"] and not ok["beyond_search"] and ok["statement"] is None
    assert 1e18 < ok["C"] < 1e30
