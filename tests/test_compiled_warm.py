"""Warm loads of the disk compile cache through an entry's load record (bayescale.core.compiled).

A warm entry is loaded without PyTensor's graph rewriting: the cfuncs come from numba's cache and
the entry's ``load.json`` (plain data, verified by the manifest) gives sizes, names and the data
layout. These tests check that such a load computes the new model's own log-density and gradient,
that a load record which does not fit the model is ignored (PyTensor path, record rewritten), and
that both paths give the same draws bit for bit.
"""

import ctypes
import hashlib
import json
import os

import numpy as np
import pytest
from fakes import seeded_fit_in_child

from bayescale import datasets
from bayescale.core import compiled
from bayescale.core.cards import load_card
from bayescale.core.model import build_model

CARD = "kaplan-N"  # one-variable law: compiles fastest, same machinery as every card
EXTRA = "warm-load-test"


def _model(n_per_budget: int = 9, seed: int = 1):
    runs = datasets.simulate(law="kaplan", n_per_budget=n_per_budget, random_seed=seed)
    return build_model(load_card(CARD), runs)


@pytest.fixture(scope="module")
def cold_entry(tmp_path_factory):
    """A cache root holding the entry of ``CARD``, compiled cold in this process."""
    root = tmp_path_factory.mktemp("cache")
    model = _model()
    key = compiled.model_key(model, key_extra=EXTRA)
    compiled._compile_on_disk(model, key, root)
    return root, key


def _logp_and_grad(fit, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Call the compiled log-density cfunc the way nutpie does."""
    dbl = ctypes.POINTER(ctypes.c_double)
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    logp = np.zeros(())
    code = fit.compiled_logp_func.ctypes(
        x.size, x.ctypes.data_as(dbl), grad.ctypes.data_as(dbl), logp.ctypes.data_as(dbl),
        ctypes.c_void_p(fit.user_data.ctypes.data))
    assert code == 0
    return float(logp), grad


def test_key_sees_the_deterministics():
    """The cached expand function computes them: same log-density, other deterministic, new key."""
    import pymc as pm

    def model(scale: float):
        with pm.Model() as m:
            a = pm.Normal("a")
            pm.Deterministic("b", scale * a)
            pm.Normal("y", a, 1.0, observed=pm.Data("y_obs", np.zeros(3)))
        return m

    assert compiled.model_key(model(2.0)) == compiled.model_key(model(2.0))
    assert compiled.model_key(model(2.0)) != compiled.model_key(model(3.0))


def test_key_sees_constant_arrays_beyond_their_printed_digits():
    """Observed arrays given as constants are compiled in: their values are part of the key."""
    import pymc as pm

    def model(obs):
        with pm.Model() as m:
            pm.Normal("y", pm.Normal("a"), 1.0, observed=obs)
        return m

    x = np.linspace(0.0, 1.0, 50)
    y = x.copy()
    y[25] += 1e-9
    assert compiled.model_key(model(x)) == compiled.model_key(model(x.copy()))
    assert compiled.model_key(model(x)) != compiled.model_key(model(y))


def test_entry_has_a_load_record(cold_entry):
    root, key = cold_entry
    entry = root / compiled.FORMAT / key
    assert compiled._entry_ok(entry) is None
    meta = json.loads((entry / compiled.META).read_text())
    assert meta["key"] == key and meta["version"] == compiled.META_VERSION
    assert meta["names"][: meta["n_free"]] == [v.name for v in _model().value_vars]


def test_warm_load_skips_pytensor_and_computes_the_new_models_logp(cold_entry):
    """Other runs (another size): the loaded cfuncs read the new data and give its logp."""
    root, key = cold_entry
    model = _model(n_per_budget=7, seed=5)
    assert compiled.model_key(model, key_extra=EXTRA) == key
    fit = compiled._compile_on_disk(model, key, root)
    assert fit.logp_func is None  # loaded through the load record, no PyTensor function
    assert fit.shared_data["N"].shape == (35,) and len(fit.coords["run"]) == 35
    point = model.initial_point()
    x = np.concatenate([np.ravel(point[v.name]) for v in model.value_vars])
    value, grad = _logp_and_grad(fit, x)
    np.testing.assert_allclose(value, model.compile_logp()(point), rtol=1e-12)
    np.testing.assert_allclose(grad, model.compile_dlogp()(point), rtol=1e-10, atol=1e-12)
    # a refit swaps the data in: the logp follows
    other = _model(n_per_budget=9, seed=9)
    refit = compiled.with_model_data(fit, other)
    point = other.initial_point()
    np.testing.assert_allclose(_logp_and_grad(refit, x)[0], other.compile_logp()(point),
                               rtol=1e-12)
    # the initial points are those of the PyTensor build, seed by seed
    built = compiled._build_cfunc(model, key)
    for seed in (0, 1, 12345):
        np.testing.assert_array_equal(fit.initial_point_func(seed),
                                      built.initial_point_func(seed))
    assert fit.shape_info[0] == built.shape_info[0]
    assert [tuple(s) for s in fit.shape_info[2]] == [tuple(s) for s in built.shape_info[2]]
    assert fit.n_dim == built.n_dim and fit.n_expanded == built.n_expanded


@pytest.mark.parametrize("change", ["version", "key", "names", "shapes", "dtype", "garbage"])
def test_load_record_that_does_not_fit_the_model_is_ignored(cold_entry, change):
    root, key = cold_entry
    meta = json.loads((root / compiled.FORMAT / key / compiled.META).read_text())
    model = _model()
    if change == "version":
        meta["version"] = compiled.META_VERSION + 1
    elif change == "key":
        meta["key"] = "0" * 64
    elif change == "names":
        meta["names"] = meta["names"][::-1]
    elif change == "shapes":
        meta["shapes"][0] = [2]
    elif change == "dtype":
        meta["data"][0][2] = "int64"
    else:
        meta = {"version": compiled.META_VERSION, "key": key, "n_dim": "x"}
    with compiled._numba_cache_at(root / compiled.FORMAT / key):
        assert compiled._load_cfunc(model, key, meta) is None


def test_cfunc_missing_from_numba_cache_is_not_compiled(cold_entry, tmp_path):
    """A load record without its numba files: None (the cfunc cannot compile without inner)."""
    root, key = cold_entry
    meta = json.loads((root / compiled.FORMAT / key / compiled.META).read_text())
    with compiled._numba_cache_at(tmp_path):
        assert compiled._load_cfunc(_model(), key, meta) is None
    assert not list(tmp_path.iterdir())


def test_stale_load_record_is_rebuilt_silently(cold_entry, caplog):
    """A verified entry whose record does not fit: PyTensor load, record rewritten, no notice."""
    root, key = cold_entry
    entry = root / compiled.FORMAT / key
    good = (entry / compiled.META).read_text()
    (entry / compiled.META).write_text(json.dumps({**json.loads(good), "version": 0}))
    compiled._write_manifest(entry, key)
    with caplog.at_level("WARNING", logger="bayescale.core.compiled"):
        fit = compiled._compile_on_disk(_model(), key, root)
    assert fit.logp_func is not None and not caplog.records
    assert compiled._entry_ok(entry) is None
    assert json.loads((entry / compiled.META).read_text()) == json.loads(good)
    assert compiled._compile_on_disk(_model(), key, root).logp_func is None


def test_load_record_and_pytensor_load_give_identical_draws(tmp_path):
    """Cold (helper), warm through the record, warm through PyTensor: one seed, one posterior."""
    env = {**os.environ, compiled.CACHE_ENV: str(tmp_path), compiled.HELPER_ENV: "1",
           "OPENBLAS_NUM_THREADS": "1"}

    def run():
        return seeded_fit_in_child(CARD, env)["sha"]

    shas = [run(), run()]  # cold, then warm through the load record
    (entry,) = [p for p in (tmp_path / compiled.FORMAT).iterdir() if p.is_dir()]
    record = (entry / compiled.META).read_bytes()
    (entry / compiled.META).unlink()  # an entry of the former format: PyTensor load
    compiled._write_manifest(entry, entry.name)
    shas.append(run())
    assert len(set(shas)) == 1, shas
    assert hashlib.sha256((entry / compiled.META).read_bytes()).digest() == hashlib.sha256(
        record).digest()  # the PyTensor load wrote the same record back


def _vector_model(n_runs: int, seed: int):
    """Vector parameters over a ``family`` dim, one of them zero-sum (its value is shorter)."""
    import pymc as pm

    rng = np.random.default_rng(seed)
    with pm.Model(coords={"family": ["a", "b", "c"]}) as m:
        m.add_coord("run", np.arange(n_runs))
        idx = pm.Data("family_idx", rng.integers(0, 3, size=n_runs), dims="run")
        x = pm.Data("x", rng.normal(size=n_runs), dims="run")
        scale = pm.HalfNormal("scale", 1.0, dims="family")
        offset = pm.ZeroSumNormal("offset", 1.0, dims="family")
        pm.Deterministic("spread", scale.sum())
        y = pm.Data("y_obs", rng.normal(size=n_runs), dims="run")
        pm.Normal("y", offset[idx] * x, scale[idx], observed=y, dims="run")
    return m


def test_warm_load_of_vector_and_zero_sum_parameters(tmp_path):
    """Dims-carried shapes (and a zero-sum value one shorter) are read without compiling."""
    model = _vector_model(20, 0)
    key = compiled.model_key(model, key_extra=EXTRA)
    built = compiled._compile_on_disk(model, key, tmp_path)
    other = _vector_model(31, 1)
    assert compiled.model_key(other, key_extra=EXTRA) == key
    fit = compiled._compile_on_disk(other, key, tmp_path)
    assert fit.logp_func is None  # through the load record
    assert [tuple(s) for s in fit.shape_info[2]] == [tuple(s) for s in built.shape_info[2]]
    assert fit.shape_info[0] == built.shape_info[0] and fit.n_expanded == built.n_expanded
    point = other.initial_point()
    x = np.concatenate([np.ravel(point[v.name]) for v in other.value_vars])
    value, grad = _logp_and_grad(fit, x)
    np.testing.assert_allclose(value, other.compile_logp()(point), rtol=1e-12)
    np.testing.assert_allclose(grad, other.compile_dlogp()(point), rtol=1e-10, atol=1e-12)
    for seed in (0, 7):
        np.testing.assert_array_equal(fit.initial_point_func(seed),
                                      compiled._build_cfunc(other, key).initial_point_func(seed))
