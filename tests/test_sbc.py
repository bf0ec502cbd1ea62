"""Simulation-based calibration: prior draws, simulated ladders, rank statistics, a small SBC.

The small SBC runs 40 simulations per card (draws=200, tune=300, 2 chains). The seed (0) was fixed
before any result was seen and is not to be changed after a failure: a failure is a finding.
"""

import importlib.util
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayescale.core.cards import load_card
from bayescale.errors import InputError
from bayescale.workflows.sbc import (
    SBCResult,
    default_design,
    plot_ranks,
    prior_draws,
    repeat_design,
    sbc,
    simulate_runs,
)

N_DRAWS = 20_000


def _close(sample, mean, sd, *, z=4.5):
    """Sample mean within ``z`` standard errors of ``mean``."""
    return abs(np.mean(sample) - mean) < z * sd / math.sqrt(len(sample))


# ---------------------------------------------------------------------------------------------
# prior_draws


def test_prior_draws_match_priors_chinchilla():
    card = load_card("chinchilla")
    d = prior_draws(card, n=N_DRAWS, random_seed=0)
    assert len(d) == N_DRAWS
    assert {"E", "A", "B", "alpha", "beta", "log_A", "log_B", "sigma", "nu"} <= set(d.columns)
    # E ~ HalfNormal(3), alpha ~ Beta(3, 7), sigma ~ HalfNormal(0.05), nu ~ Gamma(2, rate 0.1)
    for name, dist in (
        ("E", stats.halfnorm(scale=3)),
        ("alpha", stats.beta(3, 7)),
        ("beta", stats.beta(3, 7)),
        ("sigma", stats.halfnorm(scale=0.05)),
        ("nu", stats.gamma(2, scale=10)),
    ):
        assert _close(d[name], dist.mean(), dist.std()), name
        assert stats.kstest(d[name], dist.cdf).pvalue > 1e-3, name
    # prior_scale: log(A / 1e9^alpha) ~ Normal(-0.7, 1.5), same for B at D = 2e10
    term_a = d["log_A"] - d["alpha"] * np.log(1e9)
    term_b = d["log_B"] - d["beta"] * np.log(2e10)
    for term in (term_a, term_b):
        assert _close(term, -0.7, 1.5)
        assert abs(np.std(term) - 1.5) < 0.05
        assert stats.kstest(term, stats.norm(-0.7, 1.5).cdf).pvalue > 1e-3
    np.testing.assert_allclose(np.log(d["A"]), d["log_A"], rtol=1e-12)
    # alpha and beta are independent a priori, so the terms do not depend on the exponents
    assert abs(np.corrcoef(term_a, d["alpha"])[0, 1]) < 0.05


def test_prior_draws_kaplan_critical_scale_and_seed():
    d = prior_draws("kaplan", n=N_DRAWS, random_seed=3)
    # term (N_c / 1e9)^alpha_N at the reference ~ LogNormal(0.7, 1)
    term = d["alpha_N"] * (d["log_N_c"] - np.log(1e9))
    assert _close(term, 0.7, 1.0)
    assert abs(np.std(term) - 1.0) < 0.04
    term_d = d["alpha_D"] * (d["log_D_c"] - np.log(2e10))
    assert _close(term_d, 0.7, 1.0)
    assert _close(d["alpha_N"], 2 / 12, stats.beta(2, 10).std())
    pd.testing.assert_frame_equal(d, prior_draws("kaplan", n=N_DRAWS, random_seed=3))
    assert not d.equals(prior_draws("kaplan", n=N_DRAWS, random_seed=4))


def test_prior_draws_without_prior_scale_tie_and_pivot():
    card = load_card("chinchilla")
    direct = replace(card, prior_scale={})
    d = prior_draws(direct, n=N_DRAWS, random_seed=1)
    # without a reference the LogNormal is on the amplitude itself
    assert _close(d["log_A"], -0.7, 1.5)
    assert abs(np.corrcoef(d["log_A"], d["alpha"])[0, 1]) < 0.05

    tied = prior_draws("chinchilla-tied", n=100, random_seed=1)
    np.testing.assert_array_equal(tied["alpha"], tied["beta"])

    design = default_design()
    p = prior_draws("chinchilla", n=50, random_seed=2, design=design)
    lx0 = np.mean(np.log(design["N"]))
    np.testing.assert_allclose(p["log_A_pivot"], p["log_A"] - p["alpha"] * lx0)
    assert "log_A_pivot" not in prior_draws("chinchilla", n=5)


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_prior_draws_rejects_bad_n(n):
    with pytest.raises(InputError, match="n must be a positive integer"):
        prior_draws("chinchilla", n=n)


# ---------------------------------------------------------------------------------------------
# simulate_runs


def _big_design(repeats=100):
    d = default_design()
    return pd.concat([d] * repeats, ignore_index=True)


@pytest.mark.parametrize(
    ("card", "nu", "factor"),
    [("chinchilla-normal", None, 1.0), ("chinchilla", 5.0, math.sqrt(5 / 3))],
)
def test_simulate_runs_noise_sd_matches_sigma(card, nu, factor):
    design = _big_design()
    params = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37, "sigma": 0.02}
    if nu is not None:
        params["nu"] = nu
    runs = simulate_runs(card, params, design, random_seed=0)
    assert list(runs.columns) == ["N", "D", "loss"]
    mu = load_card(card).law_spec.log_loss(design["N"].to_numpy(), design["D"].to_numpy(), params)
    resid = np.log(runs["loss"].to_numpy()) - mu
    n = resid.size
    assert abs(resid.mean()) < 4.5 * 0.02 * factor / math.sqrt(n)
    # sd of the sample sd: about sd / sqrt(2n) (Normal); looser for Student-t's heavy tails
    tol = 0.02 * factor * (4.5 / math.sqrt(2 * n) if nu is None else 0.12)
    assert abs(resid.std() - 0.02 * factor) < tol
    if nu is not None:  # heavy tails: kurtosis well above Normal's
        assert stats.kurtosis(resid) > 1.0
    pd.testing.assert_frame_equal(runs, simulate_runs(card, params, design, random_seed=0))


def test_simulate_runs_kaplan_matches_law_and_needs_noise_params():
    design = default_design()
    params = {
        "N_c": 6.4e13,
        "D_c": 1.8e13,
        "alpha_N": 0.076,
        "alpha_D": 0.103,
        "sigma": 1e-9,
        "nu": 30.0,
    }
    runs = simulate_runs("kaplan", params, design, random_seed=0)
    from bayescale.core.laws import kaplan

    np.testing.assert_allclose(
        runs["loss"],
        kaplan(design["N"], design["D"], N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103),
        rtol=1e-6,
    )
    with pytest.raises(InputError, match="nu"):
        simulate_runs("kaplan", {k: v for k, v in params.items() if k != "nu"}, design)
    with pytest.raises(InputError, match="column"):
        simulate_runs("kaplan", params, design.rename(columns={"D": "tokens"}))


# ---------------------------------------------------------------------------------------------
# designs with unique tokens U (data-constrained law)

DC_PARAMS = {
    "E": 1.87,
    "A": 520.0,
    "B": 1490.0,
    "alpha": 0.35,
    "beta": 0.36,
    "R_D_star": 15.4,
    "R_N_star": 5.3,
    "sigma": 0.02,
    "nu": 30.0,
}


def test_repeat_design_is_a_datablations_grid():
    d = repeat_design()
    assert list(d.columns) == ["N", "D", "U"] and len(d) == 54
    epochs = d["D"] / d["U"]
    np.testing.assert_allclose(sorted(set(epochs)), [1, 2, 4, 8, 16, 40])
    assert sorted(set(d["N"])) == [5e7, 5e8, 5e9] and sorted(set(d["U"])) == [5e8, 5e9, 5e10]
    assert not d.duplicated().any()
    pd.testing.assert_frame_equal(default_design("data-constrained"), d)
    # laws of N and D keep the IsoFLOP ladder
    pd.testing.assert_frame_equal(default_design("chinchilla"), default_design())
    small = repeat_design(sizes=[1e8], unique_tokens=[1e9, 2e9], epochs=[1, 3])
    assert small["D"].tolist() == [1e9, 3e9, 2e9, 6e9]
    with pytest.raises(InputError, match="epochs must be >= 1"):
        repeat_design(epochs=[0.5, 2])
    with pytest.raises(InputError, match="sizes must be a non-empty sequence of positive"):
        repeat_design(sizes=[])


def test_design_checks_name_the_unique_token_column():
    d = repeat_design()
    with pytest.raises(InputError, match="lacks column U, which the card's law reads"):
        simulate_runs("data-constrained", DC_PARAMS, d.drop(columns="U"))
    with pytest.raises(InputError, match="lacks column U"):  # before any fit
        sbc("data-constrained", n_sims=1, design=default_design())
    above = d.assign(U=d["D"] * 1.01)
    with pytest.raises(InputError, match=r"rows \[0, 1, 2.*U above tokens D; expected U <= D"):
        simulate_runs("data-constrained", DC_PARAMS, above)
    for bad in (0.0, -1e9, np.nan, np.inf):
        u = d["U"].to_numpy().copy()
        u[3] = bad
        with pytest.raises(InputError, match=r"rows \[3\] .*non-finite N, D or U; expected"):
            simulate_runs("data-constrained", DC_PARAMS, d.assign(U=u))
    with pytest.raises(InputError, match="columns N, D and U"):
        simulate_runs("data-constrained", DC_PARAMS, d.to_numpy())
    # laws without U ignore the column: same ladder as without it
    params = {k: v for k, v in DC_PARAMS.items() if not k.startswith("R_")}
    with_u = simulate_runs("chinchilla", params, d, random_seed=4)
    pd.testing.assert_frame_equal(
        with_u, simulate_runs("chinchilla", params, d[["N", "D"]], random_seed=4)
    )
    assert list(with_u.columns) == ["N", "D", "loss"]


def test_simulate_runs_with_unique_tokens_matches_closed_form():
    from bayescale.core.laws import data_constrained_log

    design = pd.concat([repeat_design()] * 100, ignore_index=True)
    runs = simulate_runs("data-constrained", DC_PARAMS, design, random_seed=0)
    assert list(runs.columns) == ["N", "D", "U", "loss"]
    np.testing.assert_array_equal(runs["U"], design["U"])
    p = DC_PARAMS
    mu = data_constrained_log(
        design["N"].to_numpy(),
        design["D"].to_numpy(),
        U=design["U"].to_numpy(),
        E=p["E"],
        log_A=np.log(p["A"]),
        log_B=np.log(p["B"]),
        alpha=p["alpha"],
        beta=p["beta"],
        R_D_star=p["R_D_star"],
        R_N_star=p["R_N_star"],
    )
    resid = np.log(runs["loss"].to_numpy()) - mu
    sd = p["sigma"] * math.sqrt(p["nu"] / (p["nu"] - 2))  # Student-t noise on log loss
    assert abs(resid.mean()) < 4.5 * sd / math.sqrt(resid.size)
    assert abs(resid.std() - sd) < 0.12 * sd
    # repetition costs loss: at 40 epochs the mean is above fresh data's (U = D)
    fresh = load_card("data-constrained").law_spec.log_loss(
        design["N"].to_numpy(), design["D"].to_numpy(), p
    )
    many = (design["D"] / design["U"]).to_numpy() == 40
    assert (mu[many] > fresh[many]).all()
    one = (design["D"] == design["U"]).to_numpy()  # one epoch: the law reduces to U = D
    np.testing.assert_allclose(mu[one], fresh[one], rtol=1e-12)
    pd.testing.assert_frame_equal(
        runs, simulate_runs("data-constrained", DC_PARAMS, design, random_seed=0)
    )


def test_prior_draws_data_constrained_decay_constants():
    d = prior_draws("data-constrained", n=N_DRAWS, random_seed=5, design=repeat_design())
    for name in ("R_D_star", "R_N_star"):  # LogNormal(2.3, 1): median 10 epochs
        assert _close(np.log(d[name]), 2.3, 1.0), name
        assert stats.kstest(np.log(d[name]), stats.norm(2.3, 1.0).cdf).pvalue > 1e-3, name
    lx0 = np.mean(np.log(repeat_design()["D"]))
    np.testing.assert_allclose(d["log_B_pivot"], d["log_B"] - d["beta"] * lx0)


# ---------------------------------------------------------------------------------------------
# rank statistics on synthetic ranks (no MCMC)


def _result(ranks_by_param, n_ranks):
    n = len(next(iter(ranks_by_param.values())))
    ranks = pd.DataFrame(
        {
            "sim": np.tile(np.arange(n), len(ranks_by_param)),
            "param": np.repeat(list(ranks_by_param), n),
            "rank": np.concatenate(list(ranks_by_param.values())),
            "n_ranks": n_ranks,
        }
    )
    return SBCResult(card="demo", ranks=ranks, n_sims=n, n_rejected=0, n_problem_fits=0)


def test_uniformity_detects_bias_and_overdispersion():
    rng = np.random.default_rng(0)
    n, L = 400, 101  # 101 rank values: bins of unequal size
    uniform = rng.integers(0, L, n)
    biased = np.minimum(L - 1, (rng.beta(2, 1, n) * L).astype(int))  # truth above posterior
    u_shaped = np.where(rng.random(n) < 0.5, rng.integers(0, 10, n), rng.integers(91, L, n))
    res = _result({"ok": uniform, "biased": biased, "narrow": u_shaped}, L)
    tab = res.uniformity(bins=10).set_index("param")
    assert list(tab.columns) == ["chi2", "chi2_p", "ks", "ks_p", "mean_rank", "n"]
    assert tab.loc["ok", "chi2_p"] > 0.01 and tab.loc["ok", "ks_p"] > 0.01
    assert tab.loc["biased", "chi2_p"] < 1e-6 and tab.loc["biased", "mean_rank"] > 0.6
    assert tab.loc["narrow", "chi2_p"] < 1e-6
    assert res.params == ["ok", "biased", "narrow"]


def test_uniformity_chi2_is_calibrated_with_uneven_bins():
    # under uniform ranks, chi2 p-values are uniform: about 1% below 0.01
    rng = np.random.default_rng(1)
    ps = []
    for _ in range(200):
        res = _result({"x": rng.integers(0, 37, 60)}, 37)
        ps.append(res.uniformity(bins=7)["chi2_p"].iloc[0])
    ps = np.asarray(ps)
    assert 0.3 < np.mean(ps) < 0.7
    assert np.mean(ps < 0.05) < 0.1


def test_plot_ranks_structure():
    rng = np.random.default_rng(2)
    res = _result({p: rng.integers(0, 51, 40) for p in ("E", "A", "B", "alpha", "beta")}, 51)
    fig = plot_ranks(res)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5
    assert visible[0].get_title().startswith("E")
    assert sum(len(ax.patches) for ax in visible) >= 5 * 8  # bars (+ band) per panel


def test_sbc_rejects_bad_options():
    with pytest.raises(InputError, match="n_sims"):
        sbc("chinchilla", n_sims=0)
    with pytest.raises(InputError, match="max_loss"):
        sbc("chinchilla", n_sims=1, max_loss=-1.0)
    with pytest.raises(InputError, match="design"):
        sbc("chinchilla", n_sims=1, design=pd.DataFrame({"N": [1e8, -1.0], "D": [1e9, 1e9]}))


# ---------------------------------------------------------------------------------------------
# the small SBC itself (MCMC): 40 simulations per card

SBC_SIMS = 40


@pytest.fixture(scope="module")
def sbc_results():
    return {}


@pytest.mark.parametrize("card", ["chinchilla", "kaplan"])
def test_small_sbc_ranks_are_uniform(card, sbc_results):
    res = sbc(card, n_sims=SBC_SIMS, draws=200, tune=300, chains=2, thin=4, random_seed=0)
    sbc_results[card] = res
    params = list(load_card(card).free_params) + list(load_card(card).noise_param_names)
    assert res.n_sims == SBC_SIMS and res.params == params
    assert len(res.ranks) == SBC_SIMS * len(params)
    assert (res.ranks["n_ranks"] == 2 * 50 + 1).all()
    assert res.ranks["rank"].between(0, 100).all()
    assert len(res.truth) == SBC_SIMS and len(res.fits) == SBC_SIMS
    assert res.n_problem_fits == int((res.fits["n_warnings"] > 0).sum())
    tests = res.uniformity()
    level = 0.01 / len(params)  # Bonferroni over parameters
    bad = tests[tests["chi2_p"] <= level]
    assert bad.empty, f"SBC of {card} not uniform:\n{tests.to_string()}"
    summary = res.to_dict()
    json.dumps(summary)
    assert summary["n_sims"] == SBC_SIMS


@pytest.mark.slow
def test_small_sbc_data_constrained_on_repeat_design(request):
    # 40 simulations on the 54-run repeat design; seed 0 fixed before any result was seen
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow (about a minute): run with -m slow; the full run is "
                    "`python scripts/sbc.py --cards data-constrained`")
    card = load_card("data-constrained")
    res = sbc(card, n_sims=SBC_SIMS, draws=200, tune=300, chains=2, thin=4, random_seed=0)
    params = list(card.free_params) + list(card.noise_param_names)
    assert "R_D_star" in params and "R_N_star" in params
    assert res.n_sims == SBC_SIMS and res.params == params
    assert res.settings["n_runs"] == len(repeat_design())
    assert (res.ranks["n_ranks"] == 2 * 50 + 1).all()
    tests = res.uniformity()
    level = 0.01 / len(params)  # Bonferroni over parameters
    bad = tests[tests["chi2_p"] <= level]
    assert bad.empty, f"SBC of data-constrained not uniform:\n{tests.to_string()}"


def test_script_writes_outputs(tmp_path, capsys):
    path = Path(__file__).resolve().parents[1] / "scripts" / "sbc.py"
    spec = importlib.util.spec_from_file_location("sbc_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rc = module.main(
        [
            "--cards",
            "chinchilla",
            "--n-sims",
            "3",
            "--draws",
            "100",
            "--tune",
            "100",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc in (0, 3)
    summary = json.loads(capsys.readouterr().out)
    assert summary["chinchilla"]["n_sims"] == 3
    for name in (
        "sbc_chinchilla.png",
        "sbc_chinchilla.svg",
        "sbc_chinchilla_ranks.csv",
        "sbc_chinchilla_fits.csv",
        "sbc_chinchilla_truth.csv",
    ):
        assert (tmp_path / name).stat().st_size > 0
    ranks = pd.read_csv(tmp_path / "sbc_chinchilla_ranks.csv")
    assert len(ranks) == 3 * 7


def test_script_uses_the_repeat_design_for_unique_tokens(tmp_path, capsys):
    path = Path(__file__).resolve().parents[1] / "scripts" / "sbc.py"
    spec = importlib.util.spec_from_file_location("sbc_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--cards", "data-constrained", "--n-sims", "2", "--draws", "100", "--tune", "100"]
    rc = module.main([*argv, "--out", str(tmp_path)])
    assert rc in (0, 3)
    summary = json.loads(capsys.readouterr().out)["data-constrained"]
    assert summary["n_sims"] == 2 and summary["settings"]["n_runs"] == 54
    design = pd.read_csv(tmp_path / "sbc_data-constrained_design.csv")
    pd.testing.assert_frame_equal(design, repeat_design())
    ranks = pd.read_csv(tmp_path / "sbc_data-constrained_ranks.csv")
    assert set(ranks["param"]) >= {"R_D_star", "R_N_star"} and len(ranks) == 2 * 9
