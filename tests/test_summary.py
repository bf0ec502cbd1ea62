"""Parameter summaries: table layout, interval labels, diagnostics and the strict-JSON summary.

Most tests use a synthetic fit (independent draws around known values, no MCMC), so the expected
numbers follow from NumPy directly.
"""

import json

import numpy as np
import pytest
import xarray as xr

from bayescale.answers.summary import fit_summary_json, summarize, to_jsonable
from bayescale.core.cards import load_card
from bayescale.errors import InputError

TRUTH = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37, "sigma": 0.01, "nu": 20.0}


def make_fake_fit(*, card="chinchilla", chains=4, draws=250, spread=0.02, seed=0, truth=None):
    """A fit-like DataTree with independent draws around known parameters (no sampling).

    Draws are ``value * exp(spread * z)`` with ``z`` standard normal; runs are the simulated
    IsoFLOP sweep with losses from the true law.
    """
    from bayescale import datasets

    card = load_card(card)
    truth = dict(TRUTH if truth is None else truth)
    rng = np.random.default_rng(seed)
    post = {}
    for name in (*card.free_params, *card.noise_param_names):
        post[name] = truth[name] * np.exp(spread * rng.standard_normal((chains, draws)))
    for tied, source in card.tie.items():
        post[tied] = post[source]
    for amp in card.law_spec.amplitudes:
        post[f"log_{amp.name}"] = np.log(post[amp.name])
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = xr.Dataset({k: (("chain", "draw"), v) for k, v in post.items()}, coords=coords)
    frame = datasets.simulate(random_seed=seed, sigma=0.0)
    run = {"run": np.arange(len(frame))}
    constant = xr.Dataset(
        {k: ("run", frame[k].to_numpy(dtype=float)) for k in ("N", "D", "C")}, coords=run
    )
    observed = xr.Dataset({"log_loss": ("run", np.log(frame["loss"].to_numpy()))}, coords=run)
    tree = xr.DataTree.from_dict(
        {"posterior": posterior, "constant_data": constant, "observed_data": observed}
    )
    tree.attrs = {
        "bayescale_card": card.to_json(),
        "bayescale_runs": json.dumps({"n_rows": len(frame), "source": "simulate"}),
        "bayescale_sampler": json.dumps({"sampler": "fake", "chains": chains, "draws": draws}),
        "bayescale_diagnostics": json.dumps({"ok": True, "problems": []}),
    }
    return tree


@pytest.fixture(scope="module")
def fake_fit():
    return make_fake_fit()


def test_summary_layout_and_values(fake_fit):
    table = summarize(fake_fit, ci_prob=0.9, ci_kind="eti")
    assert table.index.name == "parameter"
    assert table.index.tolist() == ["E", "A", "B", "alpha", "beta", "sigma", "nu"]
    assert table.columns.tolist() == [
        "mean", "sd", "median", "eti90_lower", "eti90_upper", "r_hat", "ess_bulk", "ess_tail",
    ]
    assert table.attrs == {"ci_prob": 0.9, "ci_kind": "eti", "card": "chinchilla"}
    x = fake_fit["posterior"]["alpha"].to_numpy().reshape(-1)
    row = table.loc["alpha"]
    np.testing.assert_allclose(row["median"], np.median(x), rtol=1e-12)
    np.testing.assert_allclose(row["mean"], x.mean(), rtol=1e-12)
    np.testing.assert_allclose(row["sd"], x.std(ddof=1), rtol=1e-12)
    np.testing.assert_allclose(
        [row["eti90_lower"], row["eti90_upper"]], np.quantile(x, [0.05, 0.95]), rtol=1e-12
    )
    # independent draws: R-hat near 1 and ESS near the number of draws (1000)
    assert (table["r_hat"] - 1).abs().max() < 0.02
    assert table["ess_bulk"].between(600, 1600).all()
    assert (table["eti90_lower"] < table["median"]).all()
    assert (table["median"] < table["eti90_upper"]).all()


def test_summary_interval_label_follows_probability_and_kind(fake_fit):
    table = summarize(fake_fit, ci_prob=0.5, ci_kind="hdi")
    assert {"hdi50_lower", "hdi50_upper"} <= set(table.columns)
    x = fake_fit["posterior"]["E"].to_numpy().reshape(-1)
    lo, hi = table.loc["E", ["hdi50_lower", "hdi50_upper"]]
    # an HDI holds the requested mass and is no wider than the equal-tailed interval
    assert np.mean((x >= lo) & (x <= hi)) == pytest.approx(0.5, abs=0.01)
    q = np.quantile(x, [0.25, 0.75])
    assert hi - lo <= q[1] - q[0] + 1e-12
    assert "eti94.5_lower" in summarize(fake_fit, ci_prob=0.945, ci_kind="eti").columns


def test_summary_var_names_and_errors(fake_fit):
    table = summarize(fake_fit, ci_prob=0.9, ci_kind="eti", var_names=["log_A", "sigma"])
    assert table.index.tolist() == ["log_A", "sigma"]
    np.testing.assert_allclose(
        table.loc["log_A", "median"], np.log(summarize(fake_fit).loc["A", "median"]), rtol=1e-9
    )
    with pytest.raises(InputError, match="no variable.*'gamma'"):
        summarize(fake_fit, var_names=["gamma"])
    with pytest.raises(InputError, match="ci_prob"):
        summarize(fake_fit, ci_prob=1.5)
    with pytest.raises(InputError, match="ci_kind"):
        summarize(fake_fit, ci_kind="central")


def test_summary_does_not_mutate_the_fit():
    tree = make_fake_fit(seed=3)
    before = tree.copy(deep=True)
    attrs = dict(tree.attrs)
    summarize(tree)
    fit_summary_json(tree, ci_prob=0.8, ci_kind="hdi")
    assert tree.identical(before)
    assert tree.attrs == attrs


def test_summary_tied_card_lists_both_exponents():
    tree = make_fake_fit(card="chinchilla-tied")
    table = summarize(tree)
    assert table.index.tolist() == ["E", "A", "B", "alpha", "beta", "sigma", "nu"]
    assert table.loc["alpha", "median"] == table.loc["beta", "median"]


def test_summary_single_chain_has_no_convergence_numbers():
    """A one-chain tree (e.g. a bootstrap point fit) gets NaN R-hat/ESS, not a warning."""
    tree = make_fake_fit(chains=1, draws=50, card="chinchilla-normal")
    table = summarize(tree)
    assert table.index.tolist() == ["E", "A", "B", "alpha", "beta", "sigma"]
    assert table["r_hat"].isna().all() and table["ess_bulk"].isna().all()
    assert table["median"].notna().all()


def test_fit_summary_json_contract(fake_fit):
    out = fit_summary_json(fake_fit, ci_prob=0.8, ci_kind="eti")
    assert {"card", "law", "n_runs", "params", "ci_prob", "ci_kind", "diagnostics", "sampler",
            "runs"} <= set(out)
    assert out["card"] == "chinchilla" and out["law"] == "chinchilla"
    assert out["n_runs"] == 45 and out["ci_prob"] == 0.8 and out["ci_kind"] == "eti"
    assert list(out["params"]) == ["E", "A", "B", "alpha", "beta", "sigma", "nu"]
    table = summarize(fake_fit, ci_prob=0.8, ci_kind="eti")
    for name, p in out["params"].items():
        assert set(p) == {"median", "lo", "hi", "mean", "sd", "r_hat", "ess_bulk"}
        assert p["lo"] == table.loc[name, "eti80_lower"]
        assert p["hi"] == table.loc[name, "eti80_upper"]
    assert out["diagnostics"]["ok"] is True
    json.dumps(out, allow_nan=False)


def test_fit_summary_json_is_strict_json_without_diagnostics():
    out = fit_summary_json(make_fake_fit(chains=1, draws=20), ci_prob=0.9, ci_kind="eti")
    assert out["params"]["E"]["r_hat"] is None
    text = json.dumps(out, allow_nan=False)
    assert "NaN" not in text


def test_to_jsonable():
    value = {"a": np.float64("nan"), "b": (1, np.int64(2)), "c": np.array([0.5, np.inf])}
    assert to_jsonable(value) == {"a": None, "b": [1, 2], "c": [0.5, None]}
    assert isinstance(value["b"], tuple)
