"""Fitting: structure, provenance, determinism, recovery, save/load, strictness."""

import json
import warnings

import numpy as np
import pytest

from bayescale import datasets
from bayescale.core.io import save
from bayescale.errors import ConvergenceError, InputError, SamplerWarning
from bayescale.fits.store import load
from bayescale.workflows.fit import fit

LAW_PARAMS = ["E", "A", "B", "alpha", "beta"]


def test_fit_structure_and_provenance(sim_fit, sim_runs):
    for group in ("posterior", "sample_stats", "observed_data", "constant_data", "log_likelihood"):
        assert group in sim_fit.children
    post = sim_fit["posterior"]
    for name in LAW_PARAMS + ["log_A", "log_B", "sigma", "nu"]:
        assert post[name].dims == ("chain", "draw")
    assert sim_fit["log_likelihood"]["log_loss"].shape == (4, 1000, len(sim_runs))
    np.testing.assert_allclose(sim_fit["constant_data"]["N"], sim_runs["N"])
    card = json.loads(sim_fit.attrs["bayescale_card"])
    assert card["name"] == "chinchilla" and card["likelihood"]["family"] == "StudentT"
    runs = json.loads(sim_fit.attrs["bayescale_runs"])
    assert len(runs["sha256"]) == 64
    sampler = json.loads(sim_fit.attrs["bayescale_sampler"])
    assert sampler["random_seed"] == 1 and sampler["sampler"] == "nutpie"
    assert "pymc" in json.loads(sim_fit.attrs["bayescale_versions"])
    assert json.loads(sim_fit.attrs["bayescale_diagnostics"])["ok"]


def test_pointwise_loglik_matches_model_density(sim_fit):
    """The stored log-likelihood is PyMC's own, recomputed for one draw."""
    from bayescale.core.model import build_model
    from bayescale.fits.layout import card_of, runs_of

    card = card_of(sim_fit)
    model = build_model(card, runs_of(sim_fit))
    post = sim_fit["posterior"].isel(chain=0, draw=7)
    point = {}
    for rv in model.free_RVs:
        v = model.rvs_to_values[rv]
        val = np.asarray(post[rv.name].item())
        tr = model.rvs_to_transforms.get(rv)
        point[v.name] = tr.forward(val).eval() if tr is not None else val
    fn = model.compile_fn(model.logp(vars=[model["log_loss"]], sum=False)[0])
    expected = fn(point)
    got = sim_fit["log_likelihood"]["log_loss"].isel(chain=0, draw=7).to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_same_seed_same_posterior(sim_runs, sim_fit):
    again = fit(sim_runs, card="chinchilla", draws=1000, tune=1000, chains=4, random_seed=1)
    for name in LAW_PARAMS:
        np.testing.assert_array_equal(again["posterior"][name], sim_fit["posterior"][name])
    other = fit(sim_runs, card="chinchilla", draws=1000, tune=1000, chains=4, random_seed=2)
    assert not np.array_equal(other["posterior"]["E"], sim_fit["posterior"]["E"])


def _covered(post, truth, prob=0.94):
    out = {}
    for k, v in truth.items():
        x = post[k].to_numpy().ravel()
        lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
        out[k] = bool(lo <= v <= hi)
    return out


def test_recovers_chinchilla_parameters(sim_fit, sim_runs):
    truth = sim_runs.attrs["true_params"]
    covered = _covered(sim_fit["posterior"], {k: truth[k] for k in LAW_PARAMS})
    assert all(covered.values()), covered


@pytest.mark.parametrize("seed", [11, 12])
def test_recovers_kaplan_parameters(seed):
    runs = datasets.simulate(law="kaplan", random_seed=seed)
    post = fit(runs, card="kaplan", draws=1000, tune=1000, chains=4, random_seed=seed,
               strict=True)
    truth = runs.attrs["true_params"]
    names = ["N_c", "D_c", "alpha_N", "alpha_D"]
    covered = _covered(post["posterior"], {k: truth[k] for k in names})
    assert all(covered.values()), covered
    # the posterior is informative: exponents pinned to within 25% (94% interval half-width)
    for k in ("alpha_N", "alpha_D"):
        lo, hi = np.quantile(post["posterior"][k], [0.03, 0.97])
        assert (hi - lo) / 2 < 0.25 * truth[k]


def test_save_load_roundtrip(sim_fit, tmp_path):
    path = save(sim_fit, tmp_path / "posterior.nc")
    back = load(path)
    np.testing.assert_array_equal(back["posterior"]["alpha"], sim_fit["posterior"]["alpha"])
    assert back.attrs["bayescale_card"] == sim_fit.attrs["bayescale_card"]
    assert [p.name for p in tmp_path.iterdir()] == ["posterior.nc"]


def test_failed_save_keeps_old_file(sim_fit, tmp_path, monkeypatch):
    path = save(sim_fit, tmp_path / "posterior.nc")
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(type(sim_fit), "to_netcdf", boom)
    with pytest.raises(OSError, match="disk full"):
        save(sim_fit, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["posterior.nc"]


def test_load_rejects_non_fit(tmp_path):
    bad = tmp_path / "x.nc"
    bad.write_bytes(b"not netcdf")
    with pytest.raises(InputError, match="not a readable netCDF"):
        load(bad)
    with pytest.raises(InputError, match="not found"):
        load(tmp_path / "missing.nc")


def test_sampler_problems_are_loud(sim_runs):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit(sim_runs, card="chinchilla", draws=15, tune=15, chains=2, random_seed=0)
    msgs = [str(w.message) for w in rec if issubclass(w.category, SamplerWarning)]
    assert msgs and "ESS" in msgs[0]
    with pytest.raises(ConvergenceError, match="sampler problems"):
        fit(sim_runs, card="chinchilla", draws=15, tune=15, chains=2, random_seed=0, strict=True)


def test_bad_options(sim_runs):
    with pytest.raises(InputError, match="unknown sampler"):
        fit(sim_runs, sampler="hmc")
    with pytest.raises(InputError, match="draws must be a positive integer"):
        fit(sim_runs, draws=0)


def test_pymc_sampler_option(sim_runs):
    # A small law keeps PyMC's (slower) NUTS cheap: this checks the plumbing of the option.
    post = fit(sim_runs, card="kaplan-N", draws=500, tune=500, chains=2, random_seed=3,
               sampler="pymc")
    assert post["posterior"].sizes["draw"] == 500
    assert json.loads(post.attrs["bayescale_sampler"])["sampler"] == "pymc"
    assert json.loads(post.attrs["bayescale_diagnostics"])["ok"]


def test_cached_refit_equals_fresh_compile(sim_runs, monkeypatch):
    """A compiled model refitted on new data gives what a fresh compile on that data gives."""
    from collections import OrderedDict

    from bayescale.engines import single as fitting

    other = datasets.simulate(law="kaplan", random_seed=5)
    opts = dict(card="kaplan-N", draws=500, tune=500, chains=2, random_seed=4)
    monkeypatch.setattr(fitting, "_COMPILED", OrderedDict())
    fresh = fit(sim_runs, **opts)
    monkeypatch.setattr(fitting, "_COMPILED", OrderedDict())
    fit(other, **opts)  # compiles on other data
    refit = fit(sim_runs, **opts)
    assert json.loads(refit.attrs["bayescale_sampler"])["compile_cached"]
    for name in ("N_c", "alpha_N", "sigma"):
        np.testing.assert_array_equal(refit["posterior"][name], fresh["posterior"][name])
