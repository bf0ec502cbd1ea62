"""Tests for bayescale.core.priors: grammar, canonical form, scipy densities against PyMC,
sampling."""

import json
import math

import numpy as np
import pymc as pm
import pytest
from scipy import special, stats

from bayescale.core.priors import (
    DISTRIBUTIONS,
    MAX_TEXT_LENGTH,
    Prior,
    as_prior,
    parse_override,
    parse_prior,
)
from bayescale.errors import BayescaleError, CardError

# One example per distribution: (text as a user writes it, canonical text).
EXAMPLES = {
    "Normal": ("Normal(0, 1e3)", "Normal(mu=0, sigma=1000)"),
    "HalfNormal": ("HalfNormal(sigma=0.05)", "HalfNormal(sigma=0.05)"),
    "LogNormal": ("LogNormal(-0.7, 1.5)", "LogNormal(mu=-0.7, sigma=1.5)"),
    "StudentT": ("StudentT(nu=3, mu=0.5, sigma=2)", "StudentT(nu=3, mu=0.5, sigma=2)"),
    "HalfStudentT": ("HalfStudentT(3, 0.5)", "HalfStudentT(nu=3, sigma=0.5)"),
    "Beta": ("Beta(2, 5)", "Beta(alpha=2, beta=5)"),
    "Gamma": ("Gamma(2, 0.1)", "Gamma(alpha=2, beta=0.1)"),
    "Exponential": ("Exponential(10)", "Exponential(lam=10)"),
    "Uniform": ("Uniform(-1, 3)", "Uniform(lower=-1, upper=3)"),
    "TruncatedNormal": (
        "TruncatedNormal(mu=0.3, sigma=0.1, lower=0, upper=1)",
        "TruncatedNormal(mu=0.3, sigma=0.1, lower=0, upper=1)",
    ),
    "HalfCauchy": ("HalfCauchy(2.5)", "HalfCauchy(beta=2.5)"),
    "Cauchy": ("Cauchy(-1, 0.5)", "Cauchy(alpha=-1, beta=0.5)"),
}

# Points inside the support of each example, plus one outside where the support is bounded.
POINTS = {
    "Normal": [-1500.0, 0.0, 0.7, 2500.0],
    "HalfNormal": [0.0, 0.01, 0.05, 0.2, -0.1],
    "LogNormal": [0.01, 0.5, 1.0, 20.0, -1.0],
    "StudentT": [-30.0, -1.0, 0.5, 4.0],
    "HalfStudentT": [0.0, 0.1, 0.5, 12.0, -0.1],
    "Beta": [0.001, 0.2, 0.5, 0.99, 1.5],
    "Gamma": [0.01, 1.0, 20.0, 150.0, -2.0],
    "Exponential": [0.0, 0.05, 0.3, 2.0, -0.1],
    "Uniform": [-0.5, 0.0, 2.9, 5.0],
    "TruncatedNormal": [0.01, 0.3, 0.55, 0.999, 1.2],
    "HalfCauchy": [0.0, 0.5, 2.5, 1e3, -1.0],
    "Cauchy": [-50.0, -1.0, 0.2, 10.0],
}


def _halfstudentt_mean(nu: float, sigma: float) -> float:
    log_ratio = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
    return 2 * sigma * math.sqrt(nu / math.pi) * math.exp(log_ratio) / (nu - 1)


def _truncnormal_mean(mu, sigma, lower, upper):
    a, b = (lower - mu) / sigma, (upper - mu) / sigma
    z = stats.norm.cdf(b) - stats.norm.cdf(a)
    return mu + sigma * (stats.norm.pdf(a) - stats.norm.pdf(b)) / z


# Closed-form means of the examples (the Cauchy family has none).
MEANS = {
    "Normal": 0.0,
    "HalfNormal": 0.05 * math.sqrt(2 / math.pi),
    "LogNormal": math.exp(-0.7 + 1.5**2 / 2),
    "StudentT": 0.5,
    "HalfStudentT": _halfstudentt_mean(3.0, 0.5),
    "Beta": 2 / 7,
    "Gamma": 2 / 0.1,
    "Exponential": 0.1,
    "Uniform": 1.0,
    "TruncatedNormal": _truncnormal_mean(0.3, 0.1, 0.0, 1.0),
}


def test_examples_cover_every_distribution():
    assert set(EXAMPLES) == set(DISTRIBUTIONS) == set(POINTS)
    assert set(MEANS) == set(DISTRIBUTIONS) - {"Cauchy", "HalfCauchy"}
    for name, spec in DISTRIBUTIONS.items():
        assert spec.name == name
        assert hasattr(pm, name)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_parse_format_round_trip(name):
    text, canonical = EXAMPLES[name]
    prior = parse_prior(text)
    assert prior.dist == name
    assert str(prior) == canonical
    assert parse_prior(str(prior)) == prior
    assert all(type(v) is float for _, v in prior.kwargs)
    assert [k for k, _ in prior.kwargs] == [
        p for p in DISTRIBUTIONS[name].params if p in dict(prior.kwargs)
    ]
    as_json = json.dumps(prior.to_dict(), allow_nan=False)
    assert as_prior(json.loads(as_json)) == prior
    assert as_prior(prior) is prior
    assert as_prior(text) == prior


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_positional_equals_keyword(name):
    prior = parse_prior(EXAMPLES[name][0])
    values = [v for _, v in prior.kwargs]
    positional = f"{name}({', '.join(repr(v) for v in values)})"
    keyword = f"{name}({', '.join(f'{k}={v!r}' for k, v in reversed(prior.kwargs))})"
    assert parse_prior(positional) == prior
    assert parse_prior(keyword) == prior
    if len(values) > 1:
        first, (key, value) = values[0], prior.kwargs[-1]
        mixed = f"{name}({first!r}, {key}={value!r}" + (
            f", {', '.join(f'{k}={v!r}' for k, v in prior.kwargs[1:-1])})"
            if len(values) > 2
            else ")"
        )
        assert parse_prior(mixed) == prior


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  normal ( -1.5e-3 ,\t+2E+2 )  ", Prior("Normal", (("mu", -0.0015), ("sigma", 200.0)))),
        ("LOGNORMAL(.5, 1.)", Prior("LogNormal", (("mu", 0.5), ("sigma", 1.0)))),
        (
            "TruncatedNormal(0, 1, lower=0)",
            Prior("TruncatedNormal", (("mu", 0), ("sigma", 1), ("lower", 0))),
        ),
        ("TruncatedNormal(0, 1, -inf, +Inf)", Prior("TruncatedNormal", (("mu", 0), ("sigma", 1)))),
        ("TruncatedNormal(0, 1, upper=inf)", Prior("TruncatedNormal", (("mu", 0), ("sigma", 1)))),
        ("Gamma(beta=0.1, alpha=2)", Prior("Gamma", (("alpha", 2), ("beta", 0.1)))),
    ],
)
def test_parse_variants(text, expected):
    assert parse_prior(text) == expected


def test_truncated_normal_bounds_default_to_infinity():
    prior = parse_prior("TruncatedNormal(0.3, 0.1, lower=0)")
    assert str(prior) == "TruncatedNormal(mu=0.3, sigma=0.1, lower=0)"
    assert prior.support() == (0.0, math.inf)
    assert prior.to_dict() == {"dist": "TruncatedNormal", "mu": 0.3, "sigma": 0.1, "lower": 0.0}
    assert prior.params == {"mu": 0.3, "sigma": 0.1, "lower": 0.0, "upper": math.inf}
    x = np.array([-0.1, 0.0, 0.2, 5.0])
    expected = pm.logp(prior.dist_pymc(), x).eval()
    np.testing.assert_allclose(prior.logpdf(x), expected, rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize(
    "value",
    [1.0, 0.1, -0.7, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.123456789, 2.0**-30, -0.0],
)
def test_number_formatting_is_exact(value):
    prior = Prior("Normal", (("mu", value), ("sigma", 1.0)))
    back = parse_prior(str(prior))
    assert dict(back.kwargs)["mu"] == value
    assert math.copysign(1.0, dict(back.kwargs)["mu"]) == math.copysign(1.0, value)


BAD_PRIORS = [
    "__import__('os').system('x')",
    "Normal(0, 1); x",
    "Normal(0, 1) and __import__('os')",
    "Normal(0, sigma=)",
    "Normal(mu=0, mu=1)",
    "Normal(0, mu=1)",
    "Beta(-1, 2)",
    "Beta(2, 0)",
    "Normal(0, 1)(2)",
    "",
    "   ",
    "x" * 10_000,
    "Normal(0, " + "1" * 9990 + ")",
    "Normal(" * 2000,
    "Normal",
    "Normal()",
    "Normal(0)",
    "Normal(0, 1, 2)",
    "Normal(0, 1,)",
    "Normal(,1)",
    "Normal(0 1)",
    "Normal(mu=0, 1)",
    "Normal(0, tau=1)",
    "Normal(0, -1)",
    "Normal(0, 0)",
    "Normal(0, inf)",
    "Normal(inf, 1)",
    "Normal(0, nan)",
    "Normal(0, sigma=nan)",
    "Normal(0, 1e999)",
    "Normal(0, 1.5.3)",
    "Normal(0, 1e)",
    "Normal(0, 1_000)",
    "Normal(0, 0x10)",
    "Normal(0, --1)",
    "Normal(0, 1j)",
    "Normal(0, '1')",
    'Normal(0, "1")',
    "Normal[0, 1]",
    "Normal(0, 1",
    "Normal 0, 1",
    "Normal(0, sigma==1)",
    "Normal(0, sigma=1=2)",
    "Normal(0, sigma)",
    "Normal(0, os.system)",
    "Normal(0, 1 + 1)",
    "Normal(0, 2**3)",
    "Normal(0, (1))",
    "Normal(0, Normal(0, 1))",
    "Normal(0, 1)\nimport os",
    "Normal(0, \u0661)",
    "Norm\u0430l(0, 1)",
    "Foo(1, 2)",
    "eval(1)",
    "exec(1)",
    "Uniform(1, 0)",
    "Uniform(1, 1)",
    "Uniform(-inf, 1)",
    "TruncatedNormal(0, 1, lower=1, upper=0)",
    "TruncatedNormal(0, 1, inf)",
    "TruncatedNormal(0, 1, upper=-inf)",
    "TruncatedNormal(0, 1, 0, 1, 2)",
    "Exponential(0)",
    "Exponential(scale=1)",
    "Gamma(2, -0.1)",
    "StudentT(0, 0, 1)",
    "HalfStudentT(3, -1)",
    "HalfCauchy(0)",
    "Cauchy(0, -1)",
    "alpha=Beta(2, 5)",
    "Beta(2, 5) # comment",
    "Beta(alpha=2, beta=5, alpha=2)",
]


@pytest.mark.parametrize("text", BAD_PRIORS)
def test_bad_priors_rejected(text):
    with pytest.raises(CardError) as info:
        parse_prior(text)
    message = str(info.value)
    assert "\n" not in message
    assert len(message) < 400


@pytest.mark.parametrize("text", [None, 1.0, b"Normal(0, 1)", ["Normal(0, 1)"]])
def test_parse_prior_rejects_non_text(text):
    with pytest.raises(CardError, match="text"):
        parse_prior(text)


def test_too_long_text_is_rejected_before_parsing():
    assert len(str(parse_prior("Normal(0, 1)"))) < MAX_TEXT_LENGTH
    with pytest.raises(CardError, match="10000 characters"):
        parse_prior("Normal(0, 1)" + " " * (10_000 - 12))


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        (
            "Normal(0, sigma=)",
            ["column 17", "expected a number", "found ')'", "'Normal(0, sigma=^)'"],
        ),
        ("Normal(0, 1); x", ["column 13", "found ';'", "'Normal(0, 1)^; x'"]),
        ("Normal(0, 1)(2)", ["column 13", "expected end of text", "found '('"]),
        ("__import__('os')", ["column 12", 'found "\'"']),
        ("Normal(mu=0, 1)", ["column 14", "positional argument after a keyword"]),
        ("Normal(0, 1, 2)", ["column 14", "Normal takes 2 arguments: mu, sigma"]),
        ("Normal(0, nan)", ["column 11", "other than nan"]),
        ("Normal(0, 1.5.3)", ["column 11", "bad number"]),
        ("Normal(0, 1", ["column 12", "expected ',' or ')'", "found end of text"]),
    ],
)
def test_syntax_errors_point_at_the_problem(text, pieces):
    with pytest.raises(CardError) as info:
        parse_prior(text)
    for piece in pieces:
        assert piece in str(info.value)


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Foo(1)", ["unknown distribution 'Foo'", "Normal, HalfNormal", "TruncatedNormal"]),
        ("Normal(0)", ["'Normal(0)'", "missing required parameter 'sigma'"]),
        ("HalfNormal()", ["missing required parameter 'sigma'"]),
        ("Normal(0, tau=1)", ["no parameter 'tau'", "valid parameters: mu, sigma"]),
        ("Normal(mu=0, mu=1)", ["'mu' given more than once"]),
        ("Normal(0, mu=1)", ["'mu' given more than once"]),
        ("Beta(-1, 2)", ["'Beta(-1, 2)'", "'alpha' must be > 0, got -1"]),
        ("Normal(0, 1e999)", ["'sigma' must be finite, got inf"]),
        ("Uniform(1, 0)", ["lower < upper", "lower=1, upper=0"]),
    ],
)
def test_semantic_errors_name_the_problem(text, pieces):
    with pytest.raises(CardError) as info:
        parse_prior(text)
    for piece in pieces:
        assert piece in str(info.value)


def test_errors_are_bayescale_value_errors():
    with pytest.raises(ValueError):
        parse_prior("Normal(0, -1)")
    with pytest.raises(BayescaleError):
        parse_prior("Normal(0, -1)")


def test_parse_override():
    name, prior = parse_override("alpha=Beta(2, 5)")
    assert name == "alpha"
    assert prior == parse_prior("Beta(alpha=2, beta=5)")
    assert parse_override("  E_0 = LogNormal(mu=0.5, sigma=0.3) ") == (
        "E_0",
        parse_prior("LogNormal(0.5, 0.3)"),
    )


@pytest.mark.parametrize(
    ("text", "piece"),
    [
        ("alpha Beta(2, 5)", "expected '=' after alpha"),
        ("=Beta(2, 5)", "expected a parameter name"),
        ("1=Beta(2, 5)", "expected a parameter name"),
        ("alpha=Beta(2, 5)x", "expected end of text"),
        ("alpha=beta=Beta(2, 5)", "expected '(' after beta"),
        ("alpha=", "expected a distribution name"),
        ("alpha=Beta(2, -5)", "'beta' must be > 0"),
        ("Beta(2, 5)", "expected '=' after Beta"),
        ("", "empty prior"),
        ("a=" + "Normal(0, 1)" * 100, "characters long"),
    ],
)
def test_bad_overrides_rejected(text, piece):
    with pytest.raises(CardError) as info:
        parse_override(text)
    assert piece in str(info.value)


def test_as_prior_from_dict():
    prior = as_prior({"dist": "beta", "alpha": 2, "beta": np.float64(5)})
    assert prior == parse_prior("Beta(2, 5)")
    assert prior.to_dict() == {"dist": "Beta", "alpha": 2.0, "beta": 5.0}
    assert as_prior({"dist": "TruncatedNormal", "mu": 0, "sigma": 1, "upper": math.inf}) == (
        parse_prior("TruncatedNormal(0, 1)")
    )


@pytest.mark.parametrize(
    ("value", "piece"),
    [
        ({"alpha": 2, "beta": 5}, "no 'dist' key"),
        ({"dist": "Beta", "alpha": 2}, "missing required parameter 'beta'"),
        ({"dist": "Beta", "alpha": 2, "beta": 5, "gamma": 1}, "no parameter 'gamma'"),
        ({"dist": "Beta", "alpha": "2", "beta": 5}, "'alpha' must be a number, got '2'"),
        ({"dist": "Beta", "alpha": True, "beta": 5}, "'alpha' must be a number"),
        ({"dist": "Beta", "alpha": math.nan, "beta": 5}, "'alpha' must be finite"),
        ({"dist": "Normal", "mu": 0, "sigma": math.inf}, "'sigma' must be finite"),
        ({"dist": "Nope", "x": 1}, "unknown distribution 'Nope'"),
        ({"dist": 3, "x": 1}, "unknown distribution 3"),
        ({"dist": "Beta", 1: 2, "beta": 5}, "non-text key 1"),
        (3.0, "cannot make a prior from float"),
        (None, "cannot make a prior from NoneType"),
        (("Beta", 2, 5), "cannot make a prior from tuple"),
    ],
)
def test_as_prior_rejects_bad_values(value, piece):
    with pytest.raises(CardError) as info:
        as_prior(value)
    assert piece in str(info.value)


def test_prior_constructor_validates_and_normalises():
    prior = Prior("halfnormal", (("sigma", 1),))
    assert prior.dist == "HalfNormal"
    assert prior.kwargs == (("sigma", 1.0),)
    assert hash(prior) == hash(parse_prior("HalfNormal(1)"))
    with pytest.raises(CardError, match="must be > 0"):
        Prior("HalfNormal", (("sigma", -1.0),))
    with pytest.raises(CardError, match="repeats parameter 'sigma'"):
        Prior("HalfNormal", (("sigma", 1.0), ("sigma", 2.0)))
    with pytest.raises(CardError, match="pairs"):
        Prior("HalfNormal", ("sigma",))
    with pytest.raises(CardError, match="pairs"):
        Prior("HalfNormal", 1.0)


def test_lognormal_params():
    assert parse_prior("LogNormal(-0.7, 1.5)").lognormal_params == (-0.7, 1.5)
    assert parse_prior("Normal(-0.7, 1.5)").lognormal_params is None


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_logpdf_matches_pymc(name):
    prior = parse_prior(EXAMPLES[name][0])
    x = np.array(POINTS[name])
    expected = pm.logp(prior.dist_pymc(), x).eval()
    got = prior.logpdf(x)
    assert got.shape == x.shape
    assert expected.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-8)
    low, high = prior.support()
    inside = (x >= low) & (x <= high)
    assert np.isfinite(got[inside]).all()
    assert np.isneginf(got[~inside]).all()
    assert prior.logpdf(x[1]).shape == ()


@pytest.mark.parametrize("name", sorted(MEANS))
def test_sample_mean_matches_closed_form(name):
    prior = parse_prior(EXAMPLES[name][0])
    draws = prior.sample(np.random.default_rng(20240), size=20_000)
    assert draws.shape == (20_000,)
    low, high = prior.support()
    assert ((draws >= low) & (draws <= high)).all()
    standard_error = draws.std(ddof=1) / math.sqrt(draws.size)
    assert abs(draws.mean() - MEANS[name]) < 5 * standard_error


@pytest.mark.parametrize("name", ["Cauchy", "HalfCauchy"])
def test_sample_median_of_cauchy_family(name):
    prior = parse_prior(EXAMPLES[name][0])
    draws = prior.sample(np.random.default_rng(7), size=20_000)
    alpha = dict(prior.kwargs).get("alpha", 0.0)
    beta = dict(prior.kwargs)["beta"]
    expected = alpha if name == "Cauchy" else beta  # HalfCauchy median is beta
    # The sample median has standard error 1 / (2 f(m) sqrt(n)); f(m) = 1 / (pi beta) for both.
    density = 1 / (math.pi * beta)
    standard_error = 1 / (2 * density * math.sqrt(draws.size))
    assert abs(np.median(draws) - expected) < 5 * standard_error


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_sample_matches_pymc_draws(name):
    prior = parse_prior(EXAMPLES[name][0])
    ours = prior.sample(np.random.default_rng(11), size=2000)
    # FAST_COMPILE: the default numba backend warns that TruncatedNormal runs in object mode.
    theirs = pm.draw(prior.dist_pymc(), draws=2000, random_seed=12, mode="FAST_COMPILE")
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3


def test_sample_is_reproducible_and_pure():
    prior = parse_prior("Gamma(2, 0.1)")
    before = prior.to_dict()
    a = prior.sample(np.random.default_rng(3), size=(2, 3))
    b = prior.sample(3, size=(2, 3))
    assert a.shape == (2, 3)
    np.testing.assert_array_equal(a, b)
    assert prior.sample(3).shape == ()
    assert prior.to_dict() == before


def test_support():
    assert parse_prior("Normal(0, 1)").support() == (-math.inf, math.inf)
    assert parse_prior("HalfNormal(1)").support() == (0.0, math.inf)
    assert parse_prior("Beta(2, 5)").support() == (0.0, 1.0)
    assert parse_prior("Uniform(-1, 3)").support() == (-1.0, 3.0)
    assert parse_prior("TruncatedNormal(0, 1, 0, 1)").support() == (0.0, 1.0)
    assert parse_prior("TruncatedNormal(0, 1)").support() == (-math.inf, math.inf)


def test_to_pymc_creates_named_variable():
    prior = parse_prior("LogNormal(-0.7, 1.5)")
    with pm.Model(coords={"law": ["a", "b"]}) as model:
        rv = prior.to_pymc("alpha")
        vec = parse_prior("Beta(2, 5)").to_pymc("beta", dims="law")
    assert model.named_vars["alpha"] is rv
    assert rv.name == "alpha"
    assert model.named_vars_to_dims["beta"] == ("law",)
    assert pm.draw(vec, random_seed=1).shape == (2,)
    point = {"alpha_log__": np.log(0.4), "beta_logodds__": np.zeros(2)}
    logp = model.compile_logp(vars=[rv], jacobian=False)(point)
    np.testing.assert_allclose(logp, prior.logpdf(0.4), rtol=1e-10)


def test_to_pymc_outside_model_context_fails():
    with pytest.raises(TypeError):
        parse_prior("Normal(0, 1)").to_pymc("x")
