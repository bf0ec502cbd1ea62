"""The candidate law forms of the ensemble: interaction (power sum) and shifted (Zhai 2022).

Formula checks against direct evaluation, limits that reduce them to Chinchilla or Kaplan,
NumPy == PyTensor, the compute optimum against brute-force minimisation, the cards, and one small
simulated recovery fit per card.
"""

import numpy as np
import pytest
from fakes import make_fit

from bayescale.answers.allocation import exponents, numeric_optimum, optimal, optimal_draws
from bayescale.answers.prediction import loss_block
from bayescale.core.cards import list_cards, load_card
from bayescale.core.laws import (
    chinchilla_log,
    get_law,
    interaction_log,
    kaplan_log,
    shifted_log,
)
from bayescale.workflows.sbc import prior_draws

NEW_CARDS = {
    "chinchilla-interaction": "interaction",
    "chinchilla-shifted": "shifted",
}
HOFF = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
EXTRA = {"interaction": dict(gamma=0.6), "shifted": dict(N_0=3e7, D_0=5e8)}
GRID_N = np.geomspace(1e7, 1e12, 7)
GRID_D = np.geomspace(1e8, 1e13, 7)


def _log_params(params):
    out = dict(params)
    out["log_A"], out["log_B"] = np.log(out.pop("A")), np.log(out.pop("B"))
    return out


def _direct(law, N, D, p):
    """Each law written out in linear space, as in its paper."""
    E, A, B, a, b = p["E"], p["A"], p["B"], p["alpha"], p["beta"]
    if law == "interaction":
        g = p["gamma"]
        return E + ((A * N**-a) ** (1 / g) + (B * D**-b) ** (1 / g)) ** g
    return E + A * (N + p["N_0"]) ** -a + B * (D + p["D_0"]) ** -b


@pytest.mark.parametrize("law", list(EXTRA))
def test_law_matches_direct_formula(law):
    p = {**HOFF, **EXTRA[law]}
    N, D = np.meshgrid(GRID_N, GRID_D)
    got = get_law(law).loss(N, D, p)
    np.testing.assert_allclose(got, _direct(law, N, D, p), rtol=1e-12)
    # log-space function directly, and Law.loss reads log amplitudes too
    lp = _log_params(p)
    np.testing.assert_allclose(get_law(law).log_loss(N, D, lp), np.log(got), rtol=1e-12)


def test_interaction_limits_are_chinchilla_and_kaplan():
    N, D = np.meshgrid(GRID_N, GRID_D)
    lp = _log_params(HOFF)
    # gamma = 1: Chinchilla
    np.testing.assert_allclose(
        interaction_log(N, D, gamma=1.0, **lp), chinchilla_log(N, D, **lp), rtol=1e-13
    )
    # gamma = beta: Kaplan's joint form with L_inf = E, N_c = A^(1/alpha), D_c = B^(1/beta)
    a, b = HOFF["alpha"], HOFF["beta"]
    kap = kaplan_log(
        N, D, log_N_c=lp["log_A"] / a, log_D_c=lp["log_B"] / b, alpha_N=a, alpha_D=b,
        L_inf=HOFF["E"],
    )
    np.testing.assert_allclose(interaction_log(N, D, gamma=b, **lp), kap, rtol=1e-12)
    # one resource unlimited: the other's Chinchilla term alone, whatever gamma
    for g in (0.2, 1.0, 2.5):
        big = interaction_log(N, 1e300, gamma=g, **lp)
        np.testing.assert_allclose(np.exp(big), HOFF["E"] + HOFF["A"] * N**-a, rtol=1e-9)
    # gamma < 1 combines below the plain sum, gamma > 1 above it
    lo, hi = interaction_log(N, D, gamma=0.5, **lp), interaction_log(N, D, gamma=2.0, **lp)
    mid = chinchilla_log(N, D, **lp)
    assert np.all(lo < mid) and np.all(hi > mid)


def test_shifted_limits():
    N, D = np.meshgrid(GRID_N, GRID_D)
    lp = _log_params(HOFF)
    # vanishing shifts: Chinchilla
    np.testing.assert_allclose(
        shifted_log(N, D, N_0=1e-6, D_0=1e-6, **lp), chinchilla_log(N, D, **lp), rtol=1e-12
    )
    # far below the shift the parameter term saturates at A N_0^-alpha
    small = np.exp(shifted_log(1e-3, 1e70, N_0=1e8, D_0=1.0, **lp))
    assert small == pytest.approx(HOFF["E"] + HOFF["A"] * 1e8 ** -HOFF["alpha"], rel=1e-9)
    # a shift only lowers the loss, and more at small N than at large N
    gap = chinchilla_log(N, D, **lp) - shifted_log(N, D, N_0=1e8, D_0=1e-6, **lp)
    assert np.all(gap > 0) and np.all(np.diff(gap, axis=1) < 0)


@pytest.mark.parametrize("law", list(EXTRA))
def test_numpy_equals_pytensor(law):
    import pytensor
    import pytensor.tensor as pt

    spec = get_law(law)
    lp = _log_params({**HOFF, **EXTRA[law]})
    n, d = pt.dvector("N"), pt.dvector("D")
    sym = {k: pt.dscalar(k) for k in lp}
    fn = pytensor.function([n, d, *sym.values()], spec.log_loss(n, d, sym))
    N, D = np.meshgrid(GRID_N, GRID_D)
    got = fn(N.ravel(), D.ravel(), *lp.values())
    np.testing.assert_allclose(got, spec.log_loss(N.ravel(), D.ravel(), lp), rtol=1e-12)


def _brute_optimum(spec, p, c):
    """Global minimiser of the loss on a fine grid of log N along C = 6ND, then a local polish."""
    from scipy.optimize import minimize_scalar

    lc6 = np.log(c / 6)
    x = np.linspace(0.0, lc6, 20_001)
    f = spec.log_loss(np.exp(x), np.exp(lc6 - x), p)
    i = int(np.argmin(f))
    lo, hi = x[max(i - 1, 0)], x[min(i + 1, x.size - 1)]
    res = minimize_scalar(
        lambda t: float(spec.log_loss(np.exp(t), np.exp(lc6 - t), p)), bounds=(lo, hi),
        method="bounded", options={"xatol": 1e-10},
    )
    return res.x


@pytest.mark.parametrize("card", list(NEW_CARDS))
def test_optimum_matches_brute_force_on_prior_draws(card):
    """Closed form (interaction) and golden-section search (all) against a dense grid search."""
    spec = load_card(card).law_spec
    draws = prior_draws(card, n=12, random_seed=0)
    names = [k for k in draws.columns if k in spec.params and k not in ("A", "B")]
    budgets = np.array([1e18, 1e21, 1e24])
    params = {k: draws[k].to_numpy() for k in [*names, "log_A", "log_B"]}
    n_num, d_num = numeric_optimum(spec, params, budgets)
    np.testing.assert_allclose(6 * n_num * d_num, np.broadcast_to(budgets, n_num.shape), rtol=1e-9)
    for s in range(12):
        p = {k: v[s] for k, v in params.items()}
        for j, c in enumerate(budgets):
            x = _brute_optimum(spec, p, c)
            # the loss is flat at the optimum: compare losses tightly, arguments loosely
            l_num = spec.log_loss(n_num[s, j], d_num[s, j], p)
            l_brute = spec.log_loss(np.exp(x), c / 6 / np.exp(x), p)
            assert l_num <= l_brute + 1e-12
            assert np.log(n_num[s, j]) == pytest.approx(x, abs=2e-3 * max(1.0, abs(x)))
            if spec.affine is not None:
                n_c, d_c = spec.optimal(c, p)
                assert np.log(n_c) == pytest.approx(np.log(n_num[s, j]), abs=1e-5)
                assert 6 * n_c * d_c == pytest.approx(c, rel=1e-12)


def test_interaction_closed_form_at_gamma_one_is_chinchillas():
    n, d = get_law("interaction").optimal(5.76e23, {**HOFF, "gamma": 1.0})
    n0, d0 = get_law("chinchilla").optimal(5.76e23, HOFF)
    assert n == pytest.approx(n0, rel=1e-12) and d == pytest.approx(d0, rel=1e-12)


def test_allocation_on_fake_fits_closed_and_numeric():
    """optimal()/optimal_draws() take the closed form when a law has one, else the numeric one;
    the exponents are exact (interaction) or the large-budget limit (shifted)."""
    rng = np.random.default_rng(0)
    base = {k: v * np.exp(0.02 * rng.standard_normal(50)) for k, v in HOFF.items()}
    budgets = [1e20, 1e24]
    fit_i = make_fit({**base, "gamma": 0.5}, card="chinchilla-interaction")
    ds = optimal_draws(fit_i, budgets=budgets)
    num = optimal_draws(fit_i, budgets=budgets, method="numeric")
    assert ds.attrs["method"] == "closed-form" and num.attrs["method"] == "numeric"
    np.testing.assert_allclose(ds["N_opt"], num["N_opt"], rtol=1e-4)
    np.testing.assert_allclose(ds["loss_opt"], num["loss_opt"], rtol=1e-10)
    fit = make_fit({**base, "N_0": 1e7, "D_0": 1e8}, card="chinchilla-shifted")
    out = optimal(fit, budgets=[1e30])
    assert out.attrs["method"] == "numeric"
    a = exponents(get_law("shifted"), base)["a"]
    assert float(out["exponent_a"]) == pytest.approx(float(np.median(a)), rel=1e-12)
    # shifted with tiny shifts: Chinchilla's closed form
    fit_s = make_fit({**base, "N_0": 1e-3, "D_0": 1e-3}, card="chinchilla-shifted")
    fit_c = make_fit(base, card="chinchilla")
    np.testing.assert_allclose(
        optimal_draws(fit_s, budgets=budgets)["N_opt"],
        optimal_draws(fit_c, budgets=budgets)["N_opt"], rtol=1e-5,
    )


@pytest.mark.parametrize("card", list(NEW_CARDS))
def test_loss_block_matches_law(card):
    spec = load_card(card).law_spec
    draws = prior_draws(card, n=5, random_seed=2)
    params = {k: draws[k].to_numpy() for k in [*spec.params, "log_A", "log_B"]
              if k not in ("A", "B")}
    N, D = np.array([1e8, 1e10]), np.array([1e9, 1e12])
    got = loss_block(spec, params, N, D)
    want = spec.loss(N[:, None], D[:, None], {k: v[None, :] for k, v in params.items()})
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_cards_load_and_list():
    names = list_cards()
    for card, law in NEW_CARDS.items():
        assert card in names
        c = load_card(card)
        assert c.law == law and c.family == "StudentT"
        assert set(c.free_params) == set(get_law(law).params)
        assert c.prior_scale == {"A": 1e9, "B": 2e10}
        assert c.n_params == len(get_law(law).params) + 2


# ---------------------------------------------------------------------------------------------
# one small simulated recovery fit per card

TRUTH = {
    "chinchilla-interaction": dict(gamma=0.45),
    "chinchilla-shifted": dict(N_0=3e7, D_0=3e8),
}


@pytest.mark.parametrize("card", list(NEW_CARDS))
def test_recovery_on_simulated_ladder(card):
    """Fit runs simulated from known parameters; the truth lies inside the 99% intervals and
    the law's loss at a 10x extrapolation is recovered within its own posterior spread."""
    import pandas as pd

    from bayescale.answers.prediction import loss_draws
    from bayescale.workflows.fit import fit

    spec = load_card(card).law_spec
    truth = {**dict(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37), **TRUTH[card]}
    rng = np.random.default_rng(11)
    # an isoFLOP design: 6 budgets x 9 sizes, N from 2e7 to 1e10
    rows = []
    for c in np.geomspace(1e17, 3e20, 6):
        for n in np.geomspace(2e7, 1e10, 9):
            d = c / (6 * n)
            if 1e8 <= d <= 1e12:
                rows.append((n, d))
    n, d = np.array(rows).T
    sigma = 0.004
    loss = spec.loss(n, d, truth) * np.exp(sigma * rng.standard_normal(n.size))
    runs = pd.DataFrame({"N": n, "D": d, "loss": loss})
    f = fit(runs, card=card, draws=1000, tune=1000, chains=4, random_seed=3)
    post = f["posterior"]
    # parameters the ladder identifies
    for k in ("E", "alpha", "beta"):
        lo, hi = np.quantile(post[k].values, [0.005, 0.995])
        assert lo <= truth[k] <= hi, (k, lo, hi)
    q = np.quantile(post["sigma"].values, [0.005, 0.995])
    assert q[0] <= sigma <= q[1] * 1.5
    # extrapolation 10x in compute beyond the ladder, at the true optimum's split
    x_n, x_d = 2e10, 1.5e11
    pred = loss_draws(f, np.array([x_n]), np.array([x_d]))[:, 0]
    true_loss = float(spec.loss(x_n, x_d, truth))
    lo, hi = np.quantile(pred, [0.005, 0.995])
    assert lo <= true_loss <= hi, (lo, true_loss, hi)


# ---------------------------------------------------------------------------------------------
# small SBC per card (MCMC, about a minute per card on 2 cores: slow suite; the full run is
# `python scripts/sbc.py --cards chinchilla-interaction chinchilla-shifted`)


@pytest.mark.slow
@pytest.mark.parametrize("card", list(NEW_CARDS))
def test_small_sbc_ranks_are_uniform(card, request):
    from bayescale.workflows.sbc import sbc

    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow (about a minute per card): run with -m slow")

    n_sims = 40
    res = sbc(card, n_sims=n_sims, draws=200, tune=300, chains=2, thin=4, random_seed=0)
    c = load_card(card)
    params = list(c.free_params) + list(c.noise_param_names)
    assert res.n_sims == n_sims and res.params == params
    tests = res.uniformity()
    bad = tests[tests["chi2_p"] <= 0.01 / len(params)]  # Bonferroni over parameters
    assert bad.empty, f"SBC of {card} not uniform:\n{tests.to_string()}"
