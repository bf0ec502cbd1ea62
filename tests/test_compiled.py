"""The disk-cached compile (bayescale.core.compiled): keys, entries, refits, reproducibility.

Tests of cache behaviour use a temporary ``BAYESCALE_CACHE_DIR``; the rest of the suite uses the
user's cache, so a second run of the suite compiles each card in about 2 s.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fakes import seeded_fit_in_child

from bayescale import datasets
from bayescale.core import compiled
from bayescale.core.cards import load_card
from bayescale.core.model import build_model

# A one-variable law compiles fastest; the machinery is the same for every card.
CARD = "kaplan-N"


def _model(card: str, runs):
    return build_model(load_card(card), runs)


def test_key_depends_on_structure_not_data():
    small = datasets.simulate(law="kaplan", random_seed=1)
    big = datasets.simulate(law="kaplan", n_per_budget=12, random_seed=2)
    assert len(small) != len(big)
    key = compiled.model_key(_model(CARD, small), key_extra="x")
    assert key == compiled.model_key(_model(CARD, big), key_extra="x")
    assert key != compiled.model_key(_model(CARD, small), key_extra="y")
    assert key != compiled.model_key(_model("kaplan-D", small), key_extra="x")
    assert key != compiled.model_key(_model("chinchilla", small), key_extra="x")


def test_key_sees_extra_data_and_parameter_shapes():
    """A data variable or a per-family parameter changes the key, even under the same card."""
    import pymc as pm

    def model(n_fam: int, extra: bool):
        with pm.Model(coords={"run": range(6), "family": range(n_fam)}) as m:
            x = pm.Data("x", np.arange(6.0), dims="run")
            idx = pm.Data("family_idx", np.arange(6) % n_fam, dims="run")
            u = pm.Data("U", np.ones(6), dims="run") if extra else 1.0
            a = pm.Normal("a", dims="family")
            pm.Normal("y", a[idx] * x * u, 1.0, observed=np.zeros(6), dims="run")
        return m

    keys = {compiled.model_key(model(n, e)) for n in (2, 3) for e in (False, True)}
    assert len(keys) == 4


def _entry(tmp_path: Path, files: dict) -> Path:
    entry = tmp_path / "e"
    entry.mkdir()
    for name, data in files.items():
        (entry / name).write_bytes(data)
    compiled._write_manifest(entry, "k")
    return entry


def test_entry_verified_against_manifest(tmp_path):
    entry = _entry(tmp_path, {"a.nbi": b"index", "a.1.nbc": b"code"})
    assert compiled._entry_ok(entry) is None
    assert compiled._entry_ok(tmp_path / "absent") is None
    (entry / "a.1.nbc").write_bytes(b"cod3")  # same size, other bytes
    assert "differ" in compiled._entry_ok(entry)
    (entry / "a.1.nbc").write_bytes(b"code")
    (entry / "b.nbi").write_bytes(b"planted")  # a file the cache did not write
    assert "differ" in compiled._entry_ok(entry)
    (entry / "b.nbi").unlink()
    (entry / compiled.MANIFEST).write_text("{not json")
    assert compiled._entry_ok(entry) == "no valid manifest"


def _fake_builds(monkeypatch, log: list):
    """Replace the numba compile by a builder that writes one cache file (no child process)."""
    import pytensor.link.numba.cache  # noqa: F401  (what _numba_cache_at patches)

    def build(model, key):
        import pytensor.link.numba.cache as pt_cache

        path = Path(pt_cache.NUMBA_CACHE_PATH)
        target = path / "f.nbc"
        if target.exists():
            log.append(("load", target.read_bytes()))
            if target.read_bytes() == b"boom":
                raise RuntimeError("bad cache file")
        else:
            target.write_bytes(b"compiled")
            log.append(("compile", path))
        return ("compiled", key)

    def cold(model, key, work):
        with compiled._numba_cache_at(work):
            build(model, key)

    monkeypatch.setitem(compiled._BUILDERS, compiled._KIND, build)
    monkeypatch.setattr(compiled, "_cold_compile", cold)


def test_cold_then_warm_then_corrupted(tmp_path, monkeypatch, caplog):
    log: list = []
    _fake_builds(monkeypatch, log)
    root = tmp_path / "cache"
    assert compiled._compile_on_disk(None, "k1", root) == ("compiled", "k1")
    entry = root / compiled.FORMAT / "k1"
    assert (entry / compiled.MANIFEST).is_file() and (entry / "f.nbc").read_bytes() == b"compiled"
    assert [e[0] for e in log] == ["compile", "load"]  # cold runs code loaded from the entry
    log.clear()
    compiled._compile_on_disk(None, "k1", root)
    assert [e[0] for e in log] == ["load"] and not caplog.records
    # corrupted file: detected by the manifest, entry rebuilt with a one-line notice
    (entry / "f.nbc").write_bytes(b"garbage")
    log.clear()
    with caplog.at_level("WARNING", logger="bayescale.core.compiled"):
        compiled._compile_on_disk(None, "k1", root)
    assert [e[0] for e in log] == ["compile", "load"]
    assert "unusable" in caplog.text and "rebuilding" in caplog.text
    assert compiled._entry_ok(entry) is None
    # an entry that verifies but fails to load (stale format): rebuilt, the fit goes on
    (entry / "f.nbc").write_bytes(b"boom")
    compiled._write_manifest(entry, "k1")
    caplog.clear()
    with caplog.at_level("WARNING", logger="bayescale.core.compiled"):
        assert compiled._compile_on_disk(None, "k1", root) == ("compiled", "k1")
    assert "failed to load" in caplog.text
    assert (entry / "f.nbc").read_bytes() == b"compiled"


_RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bayescale.core import compiled

    def build(model, key):
        import pytensor.link.numba.cache as pt_cache

        target = Path(pt_cache.NUMBA_CACHE_PATH) / "f.nbc"
        if target.exists():
            print("load", target.read_bytes().decode())
        else:
            time.sleep(1.0)  # a slow compile, so that the other process arrives meanwhile
            target.write_bytes(sys.argv[2].encode())
            print("compile")

    def cold(model, key, work):
        with compiled._numba_cache_at(work):
            build(model, key)

    compiled._BUILDERS[compiled._KIND] = build
    compiled._cold_compile = cold
    compiled._compile_on_disk(None, "k", Path(sys.argv[1]))
    """
)


def test_two_processes_share_one_entry(tmp_path):
    """Concurrent compiles of one model: one compiles, the other waits and loads its entry."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(tmp_path), f"p{i}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    lines = sorted(line for o in outs for line in o[0].split("\n") if line)
    # each process prints its own compile/load; exactly one compile across both
    assert sum(line == "compile" for line in lines) == 1, lines
    assert compiled._entry_ok(tmp_path / compiled.FORMAT / "k") is None


def test_cold_compile_in_process_without_helper(tmp_path, monkeypatch):
    """BAYESCALE_COMPILE_HELPER=0: the cold compile's own object is used, and published."""
    log: list = []
    monkeypatch.setitem(compiled._BUILDERS, compiled._KIND,
                        lambda model, key: log.append("build") or ("fresh", key))
    monkeypatch.setenv(compiled.HELPER_ENV, "0")
    assert compiled._compile_on_disk(None, "k", tmp_path) == ("fresh", "k")
    assert log == ["build"]  # no helper process, no second load


def test_unwritable_cache_dir_still_compiles(tmp_path, monkeypatch, caplog):
    log: list = []
    _fake_builds(monkeypatch, log)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level("WARNING", logger="bayescale.core.compiled"):
        assert compiled._compile_on_disk(None, "k", blocker / "sub") == ("compiled", "k")
    assert "cannot create" in caplog.text


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(compiled.CACHE_ENV, str(tmp_path))
    assert compiled.cache_dir() == tmp_path
    monkeypatch.delenv(compiled.CACHE_ENV)
    assert compiled.cache_dir().name == "bayescale"


def test_refit_swaps_every_data_variable():
    """A cached compile gets every pm.Data of the new model, whatever their names."""
    import pymc as pm

    def model(n: int, seed: int):
        rng = np.random.default_rng(seed)
        with pm.Model(coords={"run": range(n), "family": range(2)}) as m:
            x = pm.Data("x", rng.normal(size=n), dims="run")
            idx = pm.Data("family_idx", rng.integers(0, 2, size=n), dims="run")
            u = pm.Data("U", rng.uniform(1, 2, size=n), dims="run")
            a = pm.Normal("a", dims="family")
            pm.Normal("y", a[idx] * x * u, 1.0, observed=pm.Data("y_obs", x.get_value(),
                                                                    dims="run"), dims="run")
        return m

    first, cached = compiled.compiled_for(model(7, 0), key_extra="refit-test", disk=False)
    assert not cached
    new = model(11, 1)
    refit, cached = compiled.compiled_for(new, key_extra="refit-test", disk=False)
    assert cached
    for name in ("x", "family_idx", "U", "y_obs"):
        np.testing.assert_array_equal(refit.shared_data[name], new[name].get_value())
    assert first.shared_data["x"].shape == (7,)
    # the logp of the refit is the new model's own
    point = new.initial_point()
    x = np.concatenate([np.ravel(point[v.name]) for v in new.value_vars])
    expected = new.compile_logp()(point)
    value, _ = refit.logp_func.vm.jit_fn(
        x, *[refit.shared_data[v.name] for v in refit.logp_func.get_shared()])
    np.testing.assert_allclose(float(value), expected, rtol=1e-12)


def test_cold_and_warm_cache_give_identical_draws(tmp_path):
    """Same seed, same posterior, bit for bit, whether the process compiled or loaded."""
    env = {**os.environ, compiled.CACHE_ENV: str(tmp_path), compiled.HELPER_ENV: "1",
           "OPENBLAS_NUM_THREADS": "1"}
    out = []
    for _ in range(2):
        out.append(seeded_fit_in_child(CARD, env))
    entries = [p for p in (tmp_path / compiled.FORMAT).iterdir() if p.is_dir()]
    assert len(entries) == 1 and compiled._entry_ok(entries[0]) is None
    assert out[0]["sha"] == out[1]["sha"]
    # the warm process spent far less on the compile than the cold one
    assert out[1]["sampler"]["compile_seconds"] < out[0]["sampler"]["compile_seconds"]


def _mcse_median(draws: np.ndarray) -> float:
    import arviz_stats as azs

    return float(azs.mcse(draws, method="median"))


def test_same_posterior_as_nutpie_compile_pymc_model():
    """The cached path and nutpie's compile_pymc_model agree within Monte Carlo error."""
    from bayescale.workflows.fit import fit

    runs = datasets.simulate(law="kaplan", random_seed=4)
    opts = dict(card=CARD, draws=1000, tune=500, chains=4, random_seed=11,
                log_likelihood=False)
    new = fit(runs, **opts)
    old = fit(runs, backend="pymc-cfunc", **opts)
    assert json.loads(old.attrs["bayescale_sampler"])["backend"] == "pymc-cfunc"
    for name in ("N_c", "alpha_N", "sigma", "nu"):
        a, b = new["posterior"][name].values, old["posterior"][name].values
        tol = 4 * np.hypot(_mcse_median(a), _mcse_median(b))
        assert abs(np.median(a) - np.median(b)) < tol, (name, np.median(a), np.median(b), tol)


def test_unknown_backend_is_an_input_error(sim_runs):
    from bayescale.errors import InputError
    from bayescale.workflows.fit import fit

    with pytest.raises(InputError, match="backend"):
        fit(sim_runs, card=CARD, backend="jax", draws=10, tune=10, chains=1)


def test_work_dirs_of_ended_processes_are_swept(tmp_path, monkeypatch):
    """A fit killed mid-compile leaves its work folder; the next process removes it."""
    monkeypatch.setattr(compiled.tempfile, "tempdir", str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(proc.stdout)  # ended; its pid is not reused this soon in practice
    stale = tmp_path / f"{compiled._WORK_PREFIX}{dead}-abc-x1"
    live = tmp_path / f"{compiled._WORK_PREFIX}{os.getppid()}-abc-x2"  # another live process
    other = tmp_path / "bayescale-cache-study-x3"  # not a work folder
    for path in (stale, live, other):
        path.mkdir()
        (path / "f.nbi").write_text("x")
    own = compiled._work_dir("0123456789abcdef")
    assert own.parent == tmp_path and own.name.startswith(
        f"{compiled._WORK_PREFIX}{os.getpid()}-0123456789ab-")
    assert not stale.exists()
    assert live.exists() and other.exists()
    compiled._work_dir("0123456789abcdef")  # a second model of this process keeps the first
    assert own.exists()


def test_old_staging_folders_are_swept(tmp_path):
    """Staging folders of a publish killed halfway are removed once older than an hour."""
    import time

    old, fresh = tmp_path / ".abc-old", tmp_path / ".abc-new"
    entry = tmp_path / "0123abcd"
    for path in (old, fresh, entry):
        path.mkdir()
    now = time.time()
    os.utime(old, (now - 2 * compiled._STAGING_MAX_AGE,) * 2)
    compiled._sweep_staging(tmp_path, now=now)
    assert not old.exists()
    assert fresh.exists() and entry.exists()
