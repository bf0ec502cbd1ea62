"""Independent fits at once: serial, a process pool and Ray give the same posteriors, bit for bit.

The process pool is tested with two workers whatever the machine (``max_workers=2``); Ray is an
optional extra (``pip install bayescale[ray]``, not in the dev extras), so its tests are skipped
with a reason where it is not installed.
"""

import sys
import warnings

import numpy as np
import pytest

import bayescale as bs
from bayescale.engines import executor as ex
from bayescale.engines.ensemble import _fit_task
from bayescale.engines.single import fit_card
from bayescale.errors import InputError, SamplerWarning

TINY = {"draws": 100, "tune": 100, "chains": 2, "random_seed": 0}


def _fit_tasks(runs):
    """Two small fits of different cards (one would compile; both are cached after a first run)."""
    runs = bs.load_runs(runs)
    return [(f"fit {card}", {"runs": runs, "card": card, "log_likelihood": False, **TINY})
            for card in ("chinchilla", "chinchilla-tied")]


def _assert_same_posteriors(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        px, py = x["posterior"].to_dataset(), y["posterior"].to_dataset()
        assert sorted(px.data_vars) == sorted(py.data_vars)
        for name in px.data_vars:
            np.testing.assert_array_equal(px[name].to_numpy(), py[name].to_numpy(), strict=True)


def _run_recording(tasks, **kwargs):
    """Results and the messages of the warnings raised (100 draws: R-hat and ESS warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = ex.run_tasks(fit_card, tasks, **kwargs)
    return out, [(w.category, str(w.message)) for w in caught]


@pytest.fixture(scope="module")
def serial_fits(sim_runs):
    """The serial reference of the Ray test (an optional extra, run where Ray is installed)."""
    return _run_recording(_fit_tasks(sim_runs), executor="serial")


_CHILD = r"""
import json, sys, warnings
import numpy as np
import bayescale as bs
from bayescale.engines import executor as ex
from bayescale.engines.ensemble import fit_ensemble
from bayescale.engines.single import fit_card

runs = bs.load_runs(bs.datasets.simulate(random_seed=0))
tiny = {"draws": 100, "tune": 100, "chains": 2, "random_seed": 0}
tasks = [(f"fit {c}", {"runs": runs, "card": c, "log_likelihood": False, **tiny})
         for c in ("chinchilla", "chinchilla-tied")]
settings = dict(cards=("chinchilla", "chinchilla-tied"), draws=100, tune=100, chains=2,
                split_draws=100, split_tune=100, random_seed=0, log_likelihood=False)


def run(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [f"{w.category.__name__}: {w.message}" for w in caught]


def same(a, b):
    pa, pb = a["posterior"].to_dataset(), b["posterior"].to_dataset()
    return sorted(pa.data_vars) == sorted(pb.data_vars) and all(
        np.array_equal(pa[k].to_numpy(), pb[k].to_numpy()) for k in pa.data_vars)


if sys.argv[1] == "warm":  # build every compiled model this test needs, then exit
    run(fit_ensemble, runs, executor="serial", **settings)
    run(ex.run_tasks, fit_card, tasks, executor="serial")
    print("{}")
    sys.exit(0)
done = []
serial, w_serial = run(ex.run_tasks, fit_card, tasks, executor="serial")
pooled, w_pooled = run(ex.run_tasks, fit_card, tasks, executor="process", max_workers=2,
                       on_done=done.append)
ens_s, we_s = run(fit_ensemble, runs, executor="serial", **settings)
ens_p, we_p = run(fit_ensemble, runs, executor="process", max_workers=2, **settings)
info_s, info_p = bs.ensemble.ensemble_info(ens_s), bs.ensemble.ensemble_info(ens_p)
members = [c for c in ens_s.children if c.startswith("member_")]
print(json.dumps({
    "done": sorted(done),
    "names": [bs.fits.read(f).name for f in pooled],
    "fits_equal": all(same(a, b) for a, b in zip(serial, pooled, strict=True)),
    "warnings_equal": w_serial == w_pooled,
    "serial_warns": any(w.startswith("SamplerWarning") for w in w_serial),
    "members_equal": all(same(ens_s[m], ens_p[m]) for m in members),
    "record_equal": all(info_s[k] == info_p[k]
                        for k in ("weights", "tau", "split_sampler_problems")),
    "ensemble_warnings_equal": we_s == we_p and len(we_s) > 0,
}))
"""


@pytest.fixture(scope="module")
def pool_against_serial(tmp_path_factory):
    """Serial against a 2-worker pool, in a fresh process with every compiled model warm.

    A process that compiled a model cold (its first fit moments after the build) can run code
    that differs from a later load in the last bits, so both sides must load the same cache
    entries: one child builds them and exits, a second child compares.
    """
    import json
    import subprocess

    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    for mode in ("warm", "compare"):
        out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True,
                             text=True, env=env, cwd=tmp_path_factory.mktemp("pool"))
        assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_process_pool_gives_the_serial_posteriors_bit_for_bit(pool_against_serial):
    res = pool_against_serial
    assert res["done"] == [0, 1] and res["names"] == ["chinchilla", "chinchilla-tied"]
    assert res["fits_equal"]
    # the workers' sampler warnings reach this process, as the serial run's do
    assert res["warnings_equal"] and res["serial_warns"]


def _fail_on(*, x, bad):
    if x == bad:
        raise InputError(f"task input {x} is bad")
    return x * 2


def _warn(*, x):
    warnings.warn(f"sampler trouble in task {x}", SamplerWarning, stacklevel=1)
    return x


@pytest.mark.parametrize("executor", ["serial", "process"])
def test_a_task_error_propagates_with_the_task_named(executor):
    tasks = [(f"task {x}", {"x": x, "bad": 1}) for x in range(3)]
    with pytest.raises(InputError, match="task input 1 is bad") as info:
        ex.run_tasks(_fail_on, tasks, executor=executor, max_workers=2)
    assert any("'task 1'" in note for note in info.value.__notes__)


def test_warnings_raised_in_workers_reach_the_caller_in_task_order():
    tasks = [(f"task {x}", {"x": x}) for x in range(3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = ex.run_tasks(_warn, tasks, executor="process", max_workers=2)
    assert out == [0, 1, 2]
    assert [str(w.message) for w in caught] == [f"sampler trouble in task {x}" for x in range(3)]
    assert all(w.category is SamplerWarning for w in caught)


def test_split_fit_problems_are_recorded_where_the_fit_ran():
    import json

    import xarray as xr

    from bayescale.core.cards import load_card

    def fit_one(runs, *, card, **_):
        warnings.warn("R-hat 1.05 for alpha", SamplerWarning, stacklevel=1)
        tree = xr.DataTree()
        tree.attrs["bayescale_diagnostics"] = json.dumps({"max_rhat": 1.005, "divergences": 0})
        return tree

    tree, record = _fit_task(fit_one=fit_one, runs="runs", card=load_card("chinchilla"),
                             draws=10, tune=10, random_seed=0, label="split 0.1 chinchilla")
    assert record["problems"] == ["split 0.1 chinchilla: R-hat 1.05 for alpha"]
    assert record["converged"] and len(record["attempts"]) == 1


def test_bad_executor_settings_are_clear_errors():
    with pytest.raises(InputError, match="valid executors: serial, process, ray"):
        ex.run_tasks(_warn, [], executor="threads")
    with pytest.raises(InputError, match="max_workers"):
        ex.run_tasks(_warn, [], executor="process", max_workers=0)


def test_ray_without_ray_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray then raises ImportError
    with pytest.raises(InputError, match=r"pip install 'bayescale\[ray\]'"):
        ex.run_tasks(_warn, [("a", {"x": 1})], executor="ray")


def test_default_workers_fill_the_cores_one_fit_per_chains(monkeypatch):
    monkeypatch.setattr(ex, "available_cores", lambda: 16)
    assert ex.default_workers(4) == 4 and ex.default_workers(1) == 16
    monkeypatch.setattr(ex, "available_cores", lambda: 2)
    assert ex.default_workers(4) == 1  # two cores, four chains: nutpie keeps them busy


def test_one_worker_runs_the_tasks_in_this_process(monkeypatch):
    monkeypatch.setattr(ex, "available_cores", lambda: 2)
    calls = []

    def record(*, x):  # a local function: it could not be sent to a worker
        calls.append(x)
        return x

    assert ex.run_tasks(record, [("a", {"x": 1}), ("b", {"x": 2})], threads_per_task=4) == [1, 2]
    assert calls == [1, 2]


def test_ensemble_in_a_process_pool_is_the_serial_ensemble(pool_against_serial):
    res = pool_against_serial
    assert res["members_equal"] and res["record_equal"] and res["ensemble_warnings_equal"]


# --- Ray: an optional extra -------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip(
        "ray", reason="Ray is an optional extra (pip install 'bayescale[ray]'), not in .[dev]")
    # this module's task functions travel by value: Ray's workers do not import tests/
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def test_ray_gives_the_serial_posteriors_bit_for_bit(local_ray, sim_runs, serial_fits):
    fits, caught = _run_recording(_fit_tasks(sim_runs), executor="ray", threads_per_task=1)
    _assert_same_posteriors(serial_fits[0], fits)
    assert caught == serial_fits[1]


def test_ray_task_errors_and_warnings_reach_the_caller(local_ray):
    tasks = [(f"task {x}", {"x": x, "bad": 2}) for x in range(3)]
    with pytest.raises(InputError, match="task input 2 is bad") as info:
        ex.run_tasks(_fail_on, tasks, executor="ray")
    assert any("'task 2'" in note for note in info.value.__notes__)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ex.run_tasks(_warn, [(f"task {x}", {"x": x}) for x in range(2)], executor="ray")
    assert [str(w.message) for w in caught] == [f"sampler trouble in task {x}" for x in range(2)]
