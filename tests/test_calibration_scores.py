"""PIT, CRPS and calibration summaries vs closed forms, exact sums and simulated predictives."""

import numpy as np
import pytest
from scipy import integrate, special, stats

from bayescale.core.likelihood import draw_noise
from bayescale.errors import InputError
from bayescale.scoring import calibration as cs
from bayescale.scoring.forecast import predictive_scores

Y_GRID = np.array([0.0, 0.3, -1.0, 2.0, 5.0, -20.0, 200.0])


def crps_normal_closed(y, mu, sigma):
    """Gneiting & Raftery (2007) eq. (5); Jordan, Krüger & Lerch (2019)."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * special.ndtr(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def crps_t_closed(y, mu, sigma, nu):
    """Jordan, Krüger & Lerch (2019), scoringRules ``crps_t`` (nu > 1)."""
    z = (y - mu) / sigma
    beta = special.beta
    const = 2 * np.sqrt(nu) * beta(0.5, nu - 0.5) / ((nu - 1) * beta(0.5, nu / 2) ** 2)
    return sigma * (
        z * (2 * special.stdtr(nu, z) - 1)
        + 2 * stats.t.pdf(z, nu) * (nu + z * z) / (nu - 1)
        - const
    )


def crps_normal_mixture_exact(y, mu, sigma):
    """E|X - y| - E|X - X'| / 2 over all pairs of Normal draws (S**2 terms)."""

    def mean_abs(m, var):  # E|N(m, var)|
        sd = np.sqrt(var)
        return sd * 2 * stats.norm.pdf(m / sd) + m * (2 * special.ndtr(m / sd) - 1)

    first = mean_abs(y - mu, sigma**2).mean()
    pairs = mean_abs(mu[:, None] - mu[None, :], sigma[:, None] ** 2 + sigma[None, :] ** 2)
    return first - 0.5 * pairs.mean()


def crps_by_adaptive_quadrature(y, mu, sigma, nu, a, b):
    """QUADPACK on ``[a, b]`` split at ``y``, in ``t = asinh((x - c) / w)`` (a reference)."""
    c, w = np.median(mu), np.median(sigma)

    def integrand(t, above):
        x = c + w * np.sinh(t)
        f = special.stdtr(nu, (x - mu) / sigma).mean()
        return ((1 - f) ** 2 if above else f**2) * w * np.cosh(t)

    ta, ty, tb = np.arcsinh((np.array([a, y, b]) - c) / w)
    total = 0.0
    for lo, hi, above in ((ta, ty, False), (ty, tb, True)):
        if hi > lo:
            total += integrate.quad(integrand, lo, hi, args=(above,), epsabs=1e-13, epsrel=1e-11,
                                    limit=500)[0]
    return total


def truncation_range(y, mu, sigma, nu):
    """The ``[a, b]`` of :func:`bayescale.scoring.calibration.crps` (per-draw 1e-6 quantiles)."""
    z = np.maximum(stats.t.ppf(cs.CRPS_TAIL, nu), -1e15)
    return min(y, np.min(mu + sigma * z)), max(y, np.max(mu - sigma * z))


# ---------------------------------------------------------------- CRPS: closed forms and sums


@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 1.0), (1.2, 0.03), (-0.5, 4.0)])
def test_crps_of_one_normal_component_matches_closed_form(mu, sigma):
    y = mu + sigma * Y_GRID
    S = 7  # all draws equal: the mixture is one Normal
    got = cs.crps(y, np.full((S, y.size), mu), np.full(S, sigma), family="Normal")
    np.testing.assert_allclose(got, crps_normal_closed(y, mu, sigma), rtol=1e-5)


@pytest.mark.parametrize("nu", [1.5, 2.0, 3.0, 5.0, 30.0])
def test_crps_of_one_student_t_component_matches_closed_form(nu):
    mu, sigma = 0.4, 0.05
    y = mu + sigma * Y_GRID
    S = 4
    got = cs.crps(y, np.full((S, y.size), mu), np.full(S, sigma), family="StudentT",
                  nu=np.full(S, nu))
    np.testing.assert_allclose(got, crps_t_closed(y, mu, sigma, nu), rtol=1e-5)


@pytest.mark.parametrize("spread", [0.1, 1.0, 3.0, 10.0])
def test_crps_of_normal_mixture_matches_exact_pairwise_sum(spread):
    rng = np.random.default_rng(11)
    S = 250
    mu = rng.normal(0.0, spread, S)
    mu[:5] += 30 * spread + 20  # a few outlying draws
    sigma = np.exp(rng.normal(0.0, 0.3, S))
    y = np.array([0.0, 0.5 * spread + 0.3, 2 * spread + 1, -10 * spread - 5, 30 * spread + 20])
    got = cs.crps(y, np.repeat(mu[:, None], y.size, axis=1), sigma, family="Normal")
    want = [crps_normal_mixture_exact(v, mu, sigma) for v in y]
    np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.parametrize("nu_shift", [1.0, 0.6, 3.0])
def test_crps_of_student_t_mixture_matches_adaptive_quadrature(nu_shift):
    rng = np.random.default_rng(5)
    S = 30
    mu = rng.normal(0.0, 1.0, S)
    sigma = np.exp(rng.normal(0.0, 0.3, S))
    nu = rng.gamma(3.0, 1.0, S) + nu_shift
    y = np.array([0.0, 1.5, -5.0, 30.0])
    got = cs.crps(y, np.repeat(mu[:, None], y.size, axis=1), sigma, family="StudentT", nu=nu)
    want = [crps_by_adaptive_quadrature(v, mu, sigma, nu, *truncation_range(v, mu, sigma, nu))
            for v in y]
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_crps_of_cauchy_is_the_untruncated_integral():
    # nu = 1: E|X - y| is infinite but the CRPS integral is finite; truncation drops ~3e-7 scales
    y = np.array([0.0, 2.0, -7.0])
    got = cs.crps(y, np.zeros((1, 3)), 1.0, family="StudentT", nu=1.0)

    def full(v):
        left = integrate.quad(lambda x: special.stdtr(1.0, x) ** 2, -np.inf, v, epsabs=1e-12)[0]
        right = integrate.quad(lambda x: special.stdtr(1.0, -x) ** 2, v, np.inf, epsabs=1e-12)[0]
        return left + right

    np.testing.assert_allclose(got, [full(v) for v in y], rtol=1e-5)


def test_crps_with_very_heavy_tails_is_finite_and_large():
    # nu <= 1/2: the untruncated CRPS is infinite; the truncated one is finite, large, and grows
    # as the tails get heavier
    out = cs.crps([0.0], np.zeros((3, 1)), 1.0, family="StudentT", nu=np.array([0.3, 0.05, 5.0]))
    assert np.isfinite(out).all() and out[0] > 1e3
    nus = np.array([2.0, 1.0, 0.75, 0.5, 0.3])
    one = [cs.crps([0.0], np.zeros((1, 1)), 1.0, family="StudentT", nu=v)[0] for v in nus]
    assert np.all(np.diff(one) > 0) and np.isfinite(one).all()


def test_crps_is_translation_and_scale_equivariant_and_deterministic():
    rng = np.random.default_rng(2)
    S, Q = 400, 6
    mu = rng.normal(0.0, 0.02, (S, 1)) + rng.normal(0.0, 0.01, (S, Q))
    sigma = np.abs(rng.normal(0.02, 0.003, (S, Q)))  # inflated scale, per draw and observation
    nu = rng.gamma(5.0, 1.0, S) + 1.0
    y = rng.normal(0.0, 0.03, Q)
    base = cs.crps(y, mu, sigma, family="StudentT", nu=nu)
    np.testing.assert_array_equal(base, cs.crps(y, mu, sigma, family="StudentT", nu=nu))
    moved = cs.crps(2.5 + 3 * y, 2.5 + 3 * mu, 3 * sigma, family="StudentT", nu=nu)
    np.testing.assert_allclose(moved, 3 * base, rtol=1e-9)
    order = rng.permutation(S)
    shuffled = cs.crps(y, mu[order], sigma[order], family="StudentT", nu=nu[order])
    np.testing.assert_allclose(shuffled, base, rtol=1e-12)
    assert (base > 0).all()


def test_crps_of_a_sharp_forecast_is_the_absolute_log_error():
    # units: nats of log loss, ~ relative error of the loss for a sharp predictive
    got = cs.crps([np.log(2.2)], np.full((1, 1), np.log(2.0)), 1e-6, family="Normal")
    np.testing.assert_allclose(got, np.log(1.1), atol=1e-6)


# ---------------------------------------------------------------- PIT and its summaries


def test_pit_of_one_normal_is_phi_of_z():
    y = np.array([-1.0, 0.0, 0.25, 3.0])
    got = cs.pit(y, np.full((5, 4), 0.5), np.full(5, 2.0), family="Normal")
    np.testing.assert_allclose(got, special.ndtr((y - 0.5) / 2.0), rtol=1e-14)
    got_t = cs.pit(y, np.full((5, 4), 0.5), 2.0, family="StudentT", nu=4.0)
    np.testing.assert_allclose(got_t, stats.t.cdf((y - 0.5) / 2.0, 4.0), rtol=1e-12)


def simulated_predictive(rng, family, S=300, Q=400, shift=0.0):
    """A posterior-like mixture per observation and y drawn from it (plus ``shift``)."""
    mu = rng.normal(0.0, 0.02, (S, 1)) + rng.normal(0.0, 0.01, (S, Q)) + np.linspace(1, 2, Q)
    sigma = np.abs(rng.normal(0.02, 0.004, S))
    nu = rng.gamma(4.0, 1.0, S) + 2.0 if family == "StudentT" else None
    pick = rng.integers(0, S, Q)  # one draw per observation, then its noise
    noise = draw_noise(rng, Q, family=family, nu=None if nu is None else nu[pick])
    y = mu[pick, np.arange(Q)] + sigma[pick] * noise + shift
    return y, mu, sigma, nu


@pytest.mark.parametrize("family", ["Normal", "StudentT"])
def test_pit_of_draws_from_the_predictive_is_uniform(family):
    y, mu, sigma, nu = simulated_predictive(np.random.default_rng(20240), family)
    u = cs.pit(y, mu, sigma, family=family, nu=nu)
    assert cs.pit_uniformity(u)["pvalue"] > 0.05
    cov = cs.coverage_by_level(u)
    for p, c in cov.items():  # within 3 binomial standard errors of nominal
        assert abs(c - p) <= 3 * np.sqrt(p * (1 - p) / y.size), (p, c)
    assert abs(cs.bias_fraction_below(u) - 0.5) <= 3 * 0.5 / np.sqrt(y.size)
    tab = cs.reliability(u)
    assert np.all(np.abs(tab["empirical"] - tab["nominal"]) <= 3.5 * tab["se"])


@pytest.mark.parametrize("family", ["Normal", "StudentT"])
def test_coverage_by_level_equals_predictive_scores_intervals(family):
    rng = np.random.default_rng(7)
    y, mu, sigma, nu = simulated_predictive(rng, family, S=200, Q=250, shift=0.01)
    sigma = np.sqrt(sigma[:, None] ** 2 + (0.01 * rng.uniform(0, 2, y.size)) ** 2)  # (S, Q)
    probs = (0.5, 0.8, 0.9, 0.95)
    sc = predictive_scores(y, mu, sigma, family=family, nu=nu, probs=probs)
    want = {p: float(((y >= sc["lower"][i]) & (y <= sc["upper"][i])).mean())
            for i, p in enumerate(probs)}
    got = cs.coverage_by_level(cs.pit(y, mu, sigma, family=family, nu=nu), probs=probs)
    assert got == want
    assert len(set(want.values())) > 1


def test_bias_fraction_below_sees_a_shifted_predictive():
    y, mu, sigma, nu = simulated_predictive(np.random.default_rng(3), "Normal", shift=-0.02)
    u = cs.pit(y, mu, sigma, family="Normal")
    assert cs.bias_fraction_below(u) > 0.7  # observations below the median: too high a forecast
    assert cs.pit_uniformity(u)["pvalue"] < 1e-6


def test_histogram_reliability_and_summaries_on_known_values():
    u = np.array([0.0, 0.06, 0.26, 0.5, 0.74, 0.94, 1.0, 0.45])
    counts, edges = cs.pit_histogram(u, bins=4)
    assert counts.tolist() == [2, 2, 2, 2] and edges.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert cs.coverage_by_level(u, probs=(0.5, 0.9)) == {0.5: 0.5, 0.9: 0.75}
    tab = cs.reliability(u, probs=(0.25, 0.5))
    assert tab["empirical"].tolist() == [0.25, 0.625]
    np.testing.assert_allclose(tab["se"], np.sqrt([0.25 * 0.75 / 8, 0.25 / 8]))
    assert cs.bias_fraction_below(u) == 0.5
    res = cs.pit_uniformity(u)
    ks = stats.kstest(u, "uniform")
    assert res == {"statistic": ks.statistic, "pvalue": ks.pvalue, "n": 8}


# ---------------------------------------------------------------- input validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(family="Gamma"), "unknown likelihood family 'Gamma'"),
        (dict(family="StudentT"), "needs nu"),
        (dict(mu=np.zeros((4, 2))), r"mu must have shape \(S, Q\).*Q = 3.*\(4, 2\)"),
        (dict(sigma=np.ones(3)), r"sigma has shape \(3,\).*\(S,\) = \(4,\)"),
        (dict(sigma=-np.ones(4)), "sigma must be positive"),
        (dict(y=np.zeros((3, 1))), r"y must hold one value per observation"),
        (dict(y=np.array([0.0, np.nan, 1.0])), "must be finite"),
        (dict(family="StudentT", nu=np.array([2.0, 3.0, -1.0, 4.0])), "nu must be positive"),
        (dict(family="StudentT", nu=np.ones(5)), r"nu has shape \(5,\)"),
        (dict(mu=np.zeros((0, 3)), sigma=1.0), "no draws"),
    ],
)
@pytest.mark.parametrize("fn", [cs.pit, cs.crps])
def test_bad_predictive_inputs_raise_input_error(fn, kwargs, match):
    args = dict(y=np.zeros(3), mu=np.zeros((4, 3)), sigma=np.ones(4), family="Normal") | kwargs
    with pytest.raises(InputError, match=match):
        fn(args.pop("y"), args.pop("mu"), args.pop("sigma"), **args)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cs.coverage_by_level([0.2, 1.3]), r"within \[0, 1\]"),
        (lambda: cs.coverage_by_level([0.2, 0.3], probs=(0.5, 1.0)), "strictly between 0 and 1"),
        (lambda: cs.pit_histogram(np.full((2, 2), 0.5)), "must be 1-D"),
        (lambda: cs.pit_histogram([0.5], bins=0), "positive integer"),
        (lambda: cs.reliability([]), "empty"),
        (lambda: cs.pit_uniformity([np.nan]), "finite"),
        (lambda: cs.bias_fraction_below([-0.1]), r"within \[0, 1\]"),
    ],
)
def test_bad_pit_values_raise_input_error(call, match):
    with pytest.raises(InputError, match=match):
        call()
