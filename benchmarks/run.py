"""Speed benchmark: bayescale's default fit against PyMC's NUTS and a point-fit bootstrap.

Run: ``python benchmarks/run.py [--sizes 50,250,1000,5000,20000] [--skip-pymc] [--quick]
[--out FILE.json]``

Every fit runs in a fresh Python process (``OPENBLAS_NUM_THREADS=1``), so compile time is
honest. Protocol: 4 chains x 1000 tuning + 1000 kept draws, default card (Chinchilla law,
Student-t noise) on runs simulated from the Chinchilla law (``datasets.simulate`` with many
budgets). For each size the script runs

* ``nutpie``: ``bayescale.fit`` with its defaults (nutpie, low-rank mass matrix), then a second
  fit in the same process on other data of the same size (the "refit" of a compiled law);
* ``nutpie-diag`` (up to 1000 runs): the same with ``adaptation="diag"`` (effect of the
  low-rank adaptation);
* ``pymc``: ``fit(..., sampler="pymc")``, PyMC's own NUTS on the same model;
* ``bootstrap``: ``bayescale.engines.pointfit.point_fit(..., n_bootstrap=100)``;
* ``nutpie-noll`` (20,000 runs): the default fit with ``log_likelihood=False`` (memory).

It reports wall time (of the ``fit()`` call, of importing pymc + nutpie + bayescale, and of the
whole process), compile vs sampling time,
bulk ESS per second of the slowest parameter, gradient evaluations and tree depth per draw,
peak resident memory of the process, then prediction / compute-optimal throughput over 4000
draws at 10,000 queries (reusing ``benchmarks/throughput.py``), and PASS/MISS per target.
Timings depend on machine load; the load average is printed with each fit.

``python benchmarks/run.py --cache-study [--out FILE.json]`` measures the disk compile cache
(issue 9) instead, on the 240 Epoch runs (``datasets.load("chinchilla", drop_top_loss=5)``,
``BAYESCALE_DATA_DIR`` must hold ``chinchilla_epoch2024.csv``), 4 chains x 2000 draws, each in
a fresh process with a temporary ``BAYESCALE_CACHE_DIR``. PyTensor's own numba cache, which
both paths and the PyMC user model share, is set per row: warmed once by an untimed fit of
each path and of the user model, or empty (a new user), so that no row gains from the rows
before it. Rows: ``bayescale fit`` with a cold cache
and the former nutpie path (``fit(..., backend="pymc-cfunc")``), each twice, alternating (the
ratio uses their means); a cold fit compiled without the helper process; a warm fit, three
times (the target uses their median); a warm fit
whose load record was removed (the former warm path: PyTensor rewrites the graphs); cold and
former path with PyTensor's cache empty; a refit in the same process; the model a PyMC user
would write (log-amplitude Chinchilla, Student-t on log loss) with ``pm.sample()`` defaults but
4 x 2000 draws; a default ``bayescale report`` and ``bayescale compare`` with three laws (on the
warm cache of the first cold fit: warm for ``chinchilla``, cold for the other cards). It prints
whole-process wall time, CPU time, wall time per 1000 effective samples (min bulk ESS) and the
ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
SIZES = (50, 250, 1000, 5000, 20_000)
QUICK_SIZES = (50, 250)
PROTOCOL = {"draws": 1000, "tune": 1000, "chains": 4}
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
PYMC_MAX_SIZE = 1000
NOLL_MIN_SIZE = 20_000
DIAG_MAX_SIZE = 1000
CHILD_TIMEOUT = 1800
TARGETS_SIZE = 250


# ------------------------------------------------------------------------------------ data
def design(size: int) -> tuple[int, int]:
    """``(n_budgets, n_per_budget)`` with product ``size``: about 2 budgets per model size."""
    n_per = max(1, int(round((size / 2) ** 0.5)))
    while size % n_per:
        n_per -= 1
    return size // n_per, n_per


def simulated_runs(size: int, *, random_seed: int):
    """Chinchilla-law IsoFLOP sweep of ``size`` runs over budgets 1e17 to 1e22 FLOPs."""
    import numpy as np

    from bayescale.core.datasets import simulate

    n_budgets, n_per = design(size)
    return simulate(budgets=np.geomspace(1e17, 1e22, n_budgets), n_per_budget=n_per,
                    sigma=0.01, random_seed=random_seed)


# ------------------------------------------------------------------------------- child side
def _peak_rss_mb() -> dict:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"rss_self_mb": round(own.ru_maxrss / 1024, 1),
            "rss_children_mb": round(kids.ru_maxrss / 1024, 1),
            "cpu_seconds": round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 1)}


def _fit_metrics(tree, seconds: float, cpu: float, caught) -> dict:
    """Timing and sampler-efficiency numbers of one ``bayescale.fit`` result."""
    import numpy as np

    sampler = json.loads(tree.attrs["bayescale_sampler"])
    diag = json.loads(tree.attrs["bayescale_diagnostics"])
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else {}
    depth_key = next((k for k in ("depth", "tree_depth") if k in stats), None)
    ess = diag["ess_bulk"]
    worst = min(ess, key=ess.get)
    sample_s = sampler["sample_seconds"]
    return {
        "fit_seconds": round(seconds, 3),
        "fit_cpu_seconds": round(cpu, 3),
        "compile_seconds": sampler["compile_seconds"],
        "sample_seconds": sample_s,
        "compile_cached": sampler["compile_cached"],
        "min_ess_bulk": round(ess[worst], 1),
        "min_ess_param": worst,
        "ess_per_s_sampling": round(ess[worst] / sample_s, 1),
        "ess_per_s_fit": round(ess[worst] / seconds, 1),
        "grad_per_draw": (round(float(np.mean(stats["n_steps"])), 2) if "n_steps" in stats
                          else None),
        "depth_per_draw": (round(float(np.mean(stats[depth_key])), 2) if depth_key else None),
        "max_rhat": round(diag["max_rhat"], 4),
        "divergences": diag["divergences"],
        "warnings": [str(w.message)[:200] for w in caught],
        "tree_mb": round(sum(v.nbytes for node in tree.subtree for v in node.dataset.variables
                             .values()) / 2**20, 1),
    }


def child(spec: dict) -> dict:
    """Run one benchmark configuration in this (fresh) process and return its numbers."""
    import warnings

    t_import = time.perf_counter()
    import nutpie  # noqa: F401  (import cost is measured apart from the fit)
    import pymc  # noqa: F401

    import bayescale.engines.single  # noqa: F401

    out = {"import_seconds": round(time.perf_counter() - t_import, 3),
           "load_average": round(os.getloadavg()[0], 2)}
    runs = simulated_runs(spec["size"], random_seed=spec["seed"])
    kind = spec["kind"]
    if kind == "bootstrap":
        try:
            from bayescale.engines.pointfit import point_fit
        except ImportError as exc:
            return {**out, "skipped": f"bayescale.engines.pointfit not importable: {exc}"}
        t0, c0 = time.perf_counter(), time.process_time()
        point_fit(runs, card="chinchilla", n_bootstrap=100, random_seed=spec["seed"])
        return {**out, "fit_seconds": round(time.perf_counter() - t0, 3),
                "fit_cpu_seconds": round(time.process_time() - c0, 3), **_peak_rss_mb()}

    from bayescale.workflows.fit import fit

    options = dict(PROTOCOL, random_seed=spec["seed"])
    if kind == "pymc":
        options["sampler"] = "pymc"
    if kind == "nutpie-diag":
        options["adaptation"] = "diag"
    if kind == "nutpie-noll":
        options["log_likelihood"] = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0, c0 = time.perf_counter(), time.process_time()
        tree = fit(runs, card="chinchilla", **options)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    out.update(_fit_metrics(tree, seconds, cpu, caught))
    del tree
    if kind == "nutpie":
        runs2 = simulated_runs(spec["size"], random_seed=spec["seed"] + 1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0, c0 = time.perf_counter(), time.process_time()
            tree = fit(runs2, card="chinchilla", **options)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        out["refit"] = _fit_metrics(tree, seconds, cpu, caught)
    out.update(_peak_rss_mb())
    return out


# ---------------------------------------------------------------------------- cache study
STUDY_DRAWS = {"draws": 2000, "tune": 1000, "chains": 4}
STUDY_LAWS = ("chinchilla", "kaplan", "chinchilla-tied")

# The model a PyMC user would write for the Chinchilla law: log amplitudes, Student-t on log loss.
USER_MODEL = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pymc as pm, arviz_stats as azs
from bayescale import datasets
runs = datasets.load("chinchilla", drop_top_loss=5)
logN, logD, y = np.log(runs.N), np.log(runs.D), np.log(runs.loss)
with pm.Model():
    log_E = pm.Normal("log_E", 0.5, 1.0)
    log_A = pm.Normal("log_A", 6.0, 3.0)
    log_B = pm.Normal("log_B", 7.0, 3.0)
    alpha = pm.HalfNormal("alpha", 0.5)
    beta = pm.HalfNormal("beta", 0.5)
    sigma = pm.HalfNormal("sigma", 0.05)
    nu = pm.Gamma("nu", alpha=2, beta=0.1)
    mu = pm.math.logsumexp(pm.math.stack([log_E + 0 * logN, log_A - alpha * logN,
                                          log_B - beta * logD]), axis=0)
    pm.StudentT("log_loss", nu=nu, mu=mu, sigma=sigma, observed=y)
    t1 = time.perf_counter()
    idata = pm.sample(draws={draws}, chains={chains}, random_seed=1, progressbar=False)
t2 = time.perf_counter()
ess = azs.ess(idata.posterior.to_dataset() if hasattr(idata.posterior, "to_dataset")
              else idata.posterior, method="bulk")
print("STUDY " + json.dumps({{"min_ess_bulk": float(min(ess[v].min() for v in ess.data_vars)),
                            "fit_seconds": t2 - t0, "sample_seconds": t2 - t1}}))
"""

PY_FIT = """
import json, sys, time
from bayescale import datasets
from bayescale.workflows.fit import fit
runs = datasets.load("chinchilla", drop_top_loss=5)
t0 = time.perf_counter()
post = fit(runs, card="chinchilla", draws={draws}, tune={tune}, chains={chains}, random_seed=1,
           backend="{backend}")
t1 = time.perf_counter()
out = {{"fit_seconds": t1 - t0, "sampler": json.loads(post.attrs["bayescale_sampler"]),
       "min_ess_bulk": min(json.loads(post.attrs["bayescale_diagnostics"])["ess_bulk"].values())}}
if {refit}:
    t0 = time.perf_counter()
    again = fit(datasets.load("chinchilla", drop_top_loss=10), card="chinchilla", draws={draws},
                tune={tune},
                chains={chains}, random_seed=2, backend="{backend}")
    out["refit_seconds"] = time.perf_counter() - t0
    out["refit_cached"] = json.loads(again.attrs["bayescale_sampler"])["compile_cached"]
print("STUDY " + json.dumps(out))
"""


def _timed(cmd: list[str], env: dict) -> dict:
    """Wall and CPU seconds (user + system, all threads and helper processes) of one process.

    CPU seconds are the load-robust number on a shared machine: wall time stretches with the
    other users' load, CPU time much less.
    """
    import resource

    def cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT,
                          check=False)
    wall = time.perf_counter() - t0
    out = {"process_seconds": round(wall, 2), "cpu_seconds": round(cpu() - c0, 2),
           "load_average": round(os.getloadavg()[0], 2)}
    if proc.returncode not in (0, 5):  # 5: sampler warnings under --strict (not used here)
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**out, "error": f"exit {proc.returncode}: {tail[:300]}"}
    for line in proc.stdout.splitlines():
        if line.startswith("STUDY "):
            out.update(json.loads(line[6:]))
    return out


def _fit_dir_ess(folder: Path) -> float | None:
    import xarray as xr

    path = folder / "posterior.nc"
    if not path.is_file():
        return None
    tree = xr.open_datatree(path, engine="h5netcdf")
    return float(min(json.loads(tree.attrs["bayescale_diagnostics"])["ess_bulk"].values()))


def _drop_load_records(root: Path) -> None:
    """Remove the load record of every entry under ``root`` (the fit rebuilds and republishes it).

    The next fit then loads as the former warm path did: PyTensor rewrites and compiles the
    model's graphs, with their numba code loaded from the entry.
    """
    from bayescale.core import compiled

    for entry in (root / compiled.FORMAT).iterdir():
        if entry.is_dir() and (entry / compiled.META).is_file():
            (entry / compiled.META).unlink()
            compiled._write_manifest(entry, entry.name)


def cache_study(*, out_json: Path | None = None) -> dict:
    """Issue 9's measurements, each in a fresh process; prints a table and the ratios."""
    import statistics

    data_dir = Path(os.environ.get("BAYESCALE_DATA_DIR", HERE.parent.parent / "shared" / "data"))
    csv = data_dir / "chinchilla_epoch2024.csv"
    if not csv.is_file():
        raise SystemExit(f"cache study needs {csv} (set BAYESCALE_DATA_DIR)")
    exe = Path(sys.executable).with_name("bayescale")
    draws = ["--draws", str(STUDY_DRAWS["draws"]), "--tune", str(STUDY_DRAWS["tune"]),
             "--chains", str(STUDY_DRAWS["chains"]), "--seed", "1"]
    fit_cmd = [str(exe), "fit", str(csv), "--law", "chinchilla", "--drop-top-loss", "5", *draws]
    tmp = Path(tempfile.mkdtemp(prefix="bayescale-cache-study-"))
    # PyTensor's own numba cache is shared by both paths and by every model: each row names its
    # state (warmed once below, untimed, or empty) so that no row gains from the rows before it
    pt_warm = f"base_compiledir={tmp / 'pytensor-warm'}"
    env = {**os.environ, **CHILD_ENV, "BAYESCALE_DATA_DIR": str(data_dir),
           "BAYESCALE_CACHE_DIR": str(tmp / "cache"), "PYTENSOR_FLAGS": pt_warm}
    py = [sys.executable, "-c"]
    fmt = dict(STUDY_DRAWS, refit=False, backend="cached")
    former = [*py, PY_FIT.format(**{**fmt, "backend": "pymc-cfunc"})]
    rows = {}
    print(f"cache study: 240 Epoch runs, {STUDY_DRAWS['chains']} chains x {STUDY_DRAWS['tune']} "
          f"tune + {STUDY_DRAWS['draws']} draws; {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    user_cmd = [*py, USER_MODEL.format(**STUDY_DRAWS)]
    for cmd in (former, [*fit_cmd, "--out", str(tmp / "warmup")], user_cmd):  # untimed warm-up
        r = _timed(cmd, {**env, "BAYESCALE_CACHE_DIR": str(tmp / "cache-warmup")})
        if "error" in r:
            raise SystemExit(f"warm-up fit failed: {r['error']}")
    print("  (PyTensor's cache warmed by one untimed fit of each path and of the PyMC user "
          "model)", flush=True)

    def cold_row(k):  # a new bayescale cache of its own, PyTensor's cache warm
        return (f"fit, cold cache #{k}", [*fit_cmd, "--out", str(tmp / f"cold{k}")],
                {"BAYESCALE_CACHE_DIR": str(tmp / f"cache-cold{k}")}, tmp / f"cold{k}")

    def warm_row(k):  # the cache the first cold fit filled
        return (f"fit, warm cache #{k}", [*fit_cmd, "--out", str(tmp / f"warm{k}")],
                {"BAYESCALE_CACHE_DIR": str(tmp / "cache-cold1")}, tmp / f"warm{k}")

    steps = [
        ("import bayescale", [*py, "import bayescale"], {}, None),
        ("bayescale --help", [str(exe), "--help"], {}, None),
        cold_row(1),
        ("former path (pymc-cfunc) #1", former, {}, None),
        cold_row(2),
        ("former path (pymc-cfunc) #2", former, {}, None),
        ("fit, cold, no helper process", [*fit_cmd, "--out", str(tmp / "nohelper")],
         {"BAYESCALE_COMPILE_HELPER": "0", "BAYESCALE_CACHE_DIR": str(tmp / "cache-nohelper")},
         tmp / "nohelper"),
        *(warm_row(k) for k in (1, 2, 3)),
        ("fit, warm, PyTensor load", [*fit_cmd, "--out", str(tmp / "warm-pt")],
         {"BAYESCALE_CACHE_DIR": str(tmp / "cache-cold2")}, "pytensor-load"),
        ("fit, cold, no PyTensor cache", [*fit_cmd, "--out", str(tmp / "cold-fresh")],
         {"BAYESCALE_CACHE_DIR": str(tmp / "cache-fresh"),
          "PYTENSOR_FLAGS": f"base_compiledir={tmp / 'pytensor-cold'}"}, tmp / "cold-fresh"),
        ("former path, no PyTensor cache", former,
         {"PYTENSOR_FLAGS": f"base_compiledir={tmp / 'pytensor-former'}"}, None),
        ("fit + refit (python, warm)", [*py, PY_FIT.format(**{**fmt, "refit": True})],
         {"BAYESCALE_CACHE_DIR": str(tmp / "cache-cold1")}, None),
        ("PyMC user model, pm.sample", user_cmd, {}, None),
        ("report (default)", [str(exe), "report", str(csv), "--drop-top-loss", "5",
                                    "--out", str(tmp / "report")],
         {"BAYESCALE_CACHE_DIR": str(tmp / "cache-cold1")}, None),
        ("compare, 3 laws", [str(exe), "compare", str(csv), "--drop-top-loss", "5",
                                    *[a for law in STUDY_LAWS for a in ("--law", law)],
                                    "--out", str(tmp / "compare")],
         {"BAYESCALE_CACHE_DIR": str(tmp / "cache-cold1")}, None),
    ]
    for label, cmd, extra_env, folder in steps:
        if folder == "pytensor-load":  # warm entry without its load record: PyTensor build
            _drop_load_records(tmp / "cache-cold2")
            folder = tmp / "warm-pt"
        r = _timed(cmd, {**env, **extra_env})
        if folder is not None and "error" not in r:
            r["min_ess_bulk"] = _fit_dir_ess(folder)
        rows[label] = r
        ess = r.get("min_ess_bulk")
        per = (f"{r['process_seconds'] / ess * 1000:7.2f} s/1000 ESS (min bulk ESS {ess:6.0f})"
               if ess else "")
        extra = "" if "refit_seconds" not in r else (
            f"  refit {r['refit_seconds']:.2f} s (cached: {r['refit_cached']})")
        print(f"  {label:<30} {r.get('error') or f'{r['process_seconds']:7.2f} s'}"
              f" (cpu {r['cpu_seconds']:6.1f} s)  {per}"
              f"{extra}  load {r['load_average']:.1f}", flush=True)
    for label, reps in (("fit, cold cache", 2), ("former path (pymc-cfunc)", 2),
                        ("fit, warm cache", 3)):  # the median of the repeats (2: their mean)
        runs_ = [rows[f"{label} #{k}"] for k in range(1, reps + 1)]
        bad = [r["error"] for r in runs_ if "error" in r]
        rows[label] = {"error": bad[0]} if bad else {
            k: round(statistics.median(r[k] for r in runs_), 2)
            for k in ("process_seconds", "cpu_seconds", "load_average")}
        if not bad and all(r.get("min_ess_bulk") for r in runs_):
            rows[label]["min_ess_bulk"] = min(r["min_ess_bulk"] for r in runs_)
        if not bad:
            print(f"  {label:<30} {rows[label]['process_seconds']:7.2f} s median of {reps} "
                  f"(range {min(r['process_seconds'] for r in runs_):.2f}-"
                  f"{max(r['process_seconds'] for r in runs_):.2f} s)", flush=True)
    cold, warm = rows["fit, cold cache"], rows["fit, warm cache"]
    old, user = rows["former path (pymc-cfunc)"], rows["PyMC user model, pm.sample"]

    def per_ess(r):
        return r["process_seconds"] / r["min_ess_bulk"] * 1000 if r.get("min_ess_bulk") else None

    ratios = {}
    if "error" not in warm and "error" not in user:
        ratios["user_pm_sample_over_warm_process"] = user["process_seconds"] / warm[
            "process_seconds"]
        if per_ess(user) and per_ess(warm):
            ratios["user_pm_sample_over_warm_per_1000_ess"] = per_ess(user) / per_ess(warm)
    if "error" not in warm and "error" not in user:
        ratios["user_pm_sample_over_warm_cpu"] = user["cpu_seconds"] / warm["cpu_seconds"]
    if "error" not in cold and "error" not in old:
        ratios["cold_over_former_process"] = cold["process_seconds"] / old["process_seconds"]
        ratios["cold_over_former_cpu"] = cold["cpu_seconds"] / old["cpu_seconds"]
        ratios["former_over_warm_process"] = old["process_seconds"] / warm["process_seconds"]
        ratios["former_over_warm_cpu"] = old["cpu_seconds"] / warm["cpu_seconds"]
    nohelp = rows["fit, cold, no helper process"]
    if "error" not in nohelp and "error" not in old:
        ratios["cold_no_helper_over_former_cpu"] = nohelp["cpu_seconds"] / old["cpu_seconds"]
    fresh = rows["former path, no PyTensor cache"]
    cold_fresh = rows["fit, cold, no PyTensor cache"]
    if "error" not in cold_fresh and "error" not in fresh:
        ratios["cold_over_former_both_without_pytensor_cache_process"] = (
            cold_fresh["process_seconds"] / fresh["process_seconds"])
        ratios["cold_over_former_both_without_pytensor_cache_cpu"] = (
            cold_fresh["cpu_seconds"] / fresh["cpu_seconds"])
    print("--- ratios")
    for name, value in ratios.items():
        print(f"  {name:<45} {value:6.2f}x")
    refit = rows["fit + refit (python, warm)"].get("refit_seconds")
    checks = [
        ("warm-cache bayescale fit <= 6 s (whole process)", warm.get("process_seconds", 1e9) <= 6),
        (">= 3.5x faster than pm.sample (whole process)",
         ratios.get("user_pm_sample_over_warm_process", 0) >= 3.5),
        (">= 20x faster per 1000 ESS", ratios.get("user_pm_sample_over_warm_per_1000_ess", 0)
         >= 20),
        ("cold cache no slower than the former path", ratios.get("cold_over_former_process", 9)
         <= 1.0),
        ("refit < 3 s", refit is not None and refit < 3),
    ]
    print("--- targets (machine load skews every number; see load averages)")
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {name}")
    shutil.rmtree(tmp, ignore_errors=True)
    result = {"protocol": STUDY_DRAWS, "rows": rows, "ratios": ratios,
              "targets": {n: ok for n, ok in checks}}
    if out_json:
        write_json(out_json, result)
    return result


# ------------------------------------------------------------------------------ parent side
def run_child(kind: str, size: int, *, seed: int = 1) -> dict:
    """Run :func:`child` in a fresh interpreter; add the process wall time."""
    spec = {"kind": kind, "size": size, "seed": seed}
    env = {**os.environ, **CHILD_ENV}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                               json.dumps(spec)], capture_output=True, text=True, env=env,
                              timeout=CHILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {CHILD_TIMEOUT} s"}
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**spec, "error": f"exit {proc.returncode}: {tail[:300]}"}
    return {**spec, "process_seconds": round(wall, 3), **json.loads(lines[-1][13:])}


def _fmt(x, spec=".1f", none="-"):
    return none if x is None else format(x, spec)


def print_fit_row(r: dict) -> None:
    label = f"{r['size']:>6} {r['kind']:<12}"
    if "error" in r or "skipped" in r:
        print(f"{label} {r.get('error') or r.get('skipped')}", flush=True)
        return
    rss = max(r["rss_self_mb"], r["rss_children_mb"])
    if r["kind"] == "bootstrap":
        cpu = _fmt(r.get("fit_cpu_seconds"), "6.1f")
        print(f"{label} fit {r['fit_seconds']:7.1f} s (cpu {cpu})"
              f"  process {r['process_seconds']:7.1f} s"
              f" (import {r['import_seconds']:4.1f}){'':61}rss {rss:6.0f} MB  "
              f"load {r['load_average']:.1f}", flush=True)
        return
    rows = [("", r)] + ([("  refit", r["refit"])] if "refit" in r else [])
    for i, (tag, m) in enumerate(rows):
        proc = (f"{r['process_seconds']:7.1f} s (import {r['import_seconds']:4.1f})" if i == 0
                else f"{'':24}")
        head = label if i == 0 else f"{'':6} {tag:<12}"
        print(f"{head} fit {m['fit_seconds']:7.1f} s (cpu {_fmt(m.get('fit_cpu_seconds'), '6.1f')})"
              f"  process {proc}  "
              f"compile {m['compile_seconds']:6.1f} s  sample {m['sample_seconds']:7.1f} s  "
              f"ESS/s {m['ess_per_s_sampling']:7.1f} ({m['min_ess_param']:<11} "
              f"{m['min_ess_bulk']:6.0f})  grad/draw {_fmt(m['grad_per_draw'], '5.1f')}  "
              f"depth {_fmt(m['depth_per_draw'], '4.2f')}  div {m['divergences']:3d}  "
              + (f"rss {rss:6.0f} MB  tree {m['tree_mb']:5.0f} MB  load {r['load_average']:.1f}"
                 if i == 0 else f"tree {m['tree_mb']:5.0f} MB"), flush=True)
        for w in m["warnings"]:
            print(f"{'':20}warning: {w}", flush=True)


def throughput(*, n_draws: int = 4000, n_queries: int = 10_000) -> dict:
    """Prediction and compute-optimal timings via ``benchmarks/throughput.py`` (wall seconds)."""
    import numpy as np

    sys.path.insert(0, str(HERE))
    import throughput as tp

    fit = tp.synthetic_fit(n_draws)
    n = np.geomspace(1e8, 1e12, n_queries)
    d = np.geomspace(1e13, 1e9, n_queries)
    budgets = np.geomspace(1e18, 1e27, n_queries)
    (t_pred, _), _ = tp.best_of(lambda: tp.predict(fit, N=n, D=d), 3)
    (t_opt, _), _ = tp.best_of(lambda: tp.optimal(fit, budgets=budgets), 3)
    (t_npred, _), _ = tp.best_of(lambda: tp.naive_predict(fit, n, d), 1)
    (t_nopt, _), _ = tp.best_of(lambda: tp.naive_optimal(fit, budgets), 1)
    evals = n_draws * n_queries
    return {
        "draws": n_draws, "queries": n_queries,
        "predict_seconds": round(t_pred, 3), "optimal_seconds": round(t_opt, 3),
        "naive_predict_seconds": round(t_npred, 3), "naive_optimal_seconds": round(t_nopt, 3),
        "predict_M_evals_per_s": round(evals / t_pred / 1e6, 1),
        "optimal_M_evals_per_s": round(evals / t_opt / 1e6, 1),
    }


def targets(results: list[dict]) -> list[tuple[str, bool | None, str]]:
    """PASS/MISS of the issue's targets: ``(target, passed or None if not measured, detail)``."""
    def get(kind, size):
        return next((r for r in results if r["kind"] == kind and r["size"] == size
                     and "error" not in r and "skipped" not in r), None)

    out = []
    ours, pymc, boot = (get(k, TARGETS_SIZE) for k in ("nutpie", "pymc", "bootstrap"))
    if ours and pymc:
        ratio = pymc["fit_seconds"] / ours["fit_seconds"]
        ratio_p = pymc["process_seconds"] / ours["process_seconds"]
        out.append((f"{TARGETS_SIZE} runs: default fit >= 8x faster than PyMC NUTS", ratio >= 8,
                    f"{ratio:.1f}x on fit() incl. compile ({ratio_p:.1f}x whole process)"))
    else:
        out.append((f"{TARGETS_SIZE} runs: default fit >= 8x faster than PyMC NUTS", None,
                    "not measured"))
    if ours:
        out.append((f"{TARGETS_SIZE} runs: default fit < 12 s incl. compile",
                     ours["fit_seconds"] < 12,
                     f"fit() {ours['fit_seconds']:.1f} s, whole process "
                     f"{ours['process_seconds']:.1f} s"))
        out.append((f"{TARGETS_SIZE} runs: >= 150 bulk-ESS/s, slowest parameter",
                    ours["ess_per_s_sampling"] >= 150,
                    f"{ours['ess_per_s_sampling']:.0f}/s over sampling time "
                    f"({ours['min_ess_param']}), {ours['ess_per_s_fit']:.0f}/s over fit()"))
        re = ours["refit"]
        out.append((f"{TARGETS_SIZE} runs: refit of a compiled law < 3 s", re["fit_seconds"] < 3,
                    f"{re['fit_seconds']:.2f} s (compile cached: {re['compile_cached']})"))
    if ours and boot:
        r1 = boot["fit_seconds"] / ours["fit_seconds"]
        r2 = boot["fit_seconds"] / ours["refit"]["fit_seconds"]
        out.append((f"{TARGETS_SIZE} runs: full posterior >= 10x faster than 100 bootstraps",
                     r1 >= 10, f"{r1:.1f}x fresh fit incl. compile, {r2:.1f}x compiled refit"))
    big = get("nutpie", 20_000)
    if big:
        rss = max(big["rss_self_mb"], big["rss_children_mb"])
        out.append(("20,000 runs: fit < 5 min within 2 GB",
                    big["fit_seconds"] < 300 and rss < 2048,
                    f"{big['fit_seconds']:.0f} s, peak RSS {rss:.0f} MB"))
    else:
        out.append(("20,000 runs: fit < 5 min within 2 GB", None, "not measured"))
    return out


def kinds_for(size: int, *, skip_pymc: bool) -> list[str]:
    kinds = ["nutpie"] + (["nutpie-diag"] if size <= DIAG_MAX_SIZE else [])
    if not skip_pymc and size <= PYMC_MAX_SIZE:
        kinds.append("pymc")
    kinds.append("bootstrap")
    if size >= NOLL_MIN_SIZE:
        kinds.append("nutpie-noll")
    return kinds


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON atomically (temp file in the same folder + os.replace)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated numbers of runs (default: %(default)s)")
    parser.add_argument("--skip-pymc", action="store_true",
                        help=f"skip PyMC's NUTS (always skipped above {PYMC_MAX_SIZE} runs)")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 50,250 only, no throughput section (smoke test)")
    parser.add_argument("--out", type=Path, help="also write all numbers to this JSON file")
    parser.add_argument("--cache-study", action="store_true",
                        help="measure the disk compile cache on the Epoch runs (issue 9) only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cache_study:
        cache_study(out_json=args.out)
        return 0

    if args.child:
        print("BENCH_RESULT " + json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    if args.quick:
        sizes = list(QUICK_SIZES)
    else:
        try:
            sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        except ValueError:
            parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
        if not sizes or min(sizes) < 10:
            parser.error(f"--sizes must be integers >= 10, got {args.sizes!r}")

    t_start = time.perf_counter()
    print(f"bayescale benchmark: {PROTOCOL['chains']} chains x {PROTOCOL['tune']} tune + "
          f"{PROTOCOL['draws']} draws, card 'chinchilla'; {os.cpu_count()} CPUs, "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    print("fit = wall s of fit() incl. model build + compile (cpu = its CPU s, all threads); "
          "process = whole fresh interpreter; ESS/s = min bulk ESS / sampling s", flush=True)
    results = []
    for size in sizes:
        nb, npb = design(size)
        print(f"--- {size} runs ({nb} budgets x {npb} sizes)", flush=True)
        for kind in kinds_for(size, skip_pymc=args.skip_pymc):
            r = run_child(kind, size)
            results.append(r)
            print_fit_row(r)
            if args.out:
                write_json(args.out, {"protocol": PROTOCOL, "sizes": sizes, "fits": results,
                                      "partial": True})
        if args.skip_pymc or size > PYMC_MAX_SIZE:
            print(f"{size:>6} pymc         skipped ({'--skip-pymc' if args.skip_pymc else
                                                     f'> {PYMC_MAX_SIZE} runs'})", flush=True)

    print("--- ratios (baseline fit() s / our fit() s; > 1 means bayescale is faster)")
    for size in sizes:
        ours = next((r for r in results if r["kind"] == "nutpie" and r["size"] == size
                     and "fit_seconds" in r), None)
        if not ours:
            continue
        parts = []
        for kind in ("pymc", "bootstrap", "nutpie-diag"):
            base = next((r for r in results if r["kind"] == kind and r["size"] == size
                         and "fit_seconds" in r), None)
            if base:
                t = base["fit_seconds"]
                parts.append(f"{kind} {t / ours['fit_seconds']:5.1f}x"
                             f" (vs refit {t / ours['refit']['fit_seconds']:5.1f}x)")
        diag = next((r for r in results if r["kind"] == "nutpie-diag" and r["size"] == size
                     and "fit_seconds" in r), None)
        if diag:
            gain = ours["ess_per_s_sampling"] / diag["ess_per_s_sampling"]
            parts.append(f"low-rank/diag ESS/s {gain:4.1f}x,"
                         f" grad/draw {ours['grad_per_draw']} vs {diag['grad_per_draw']}")
        print(f"{size:>6}  " + "; ".join(parts))

    tput = None
    if not args.quick:
        tput = throughput()
        print(f"--- throughput: {tput['draws']} draws x {tput['queries']} queries")
        print(f"  predict  {tput['predict_seconds']:6.2f} s ({tput['predict_M_evals_per_s']:.0f}M"
              f" draw-queries/s), naive xarray {tput['naive_predict_seconds']:6.2f} s, ratio "
              f"{tput['naive_predict_seconds'] / tput['predict_seconds']:.1f}x")
        print(f"  optimal  {tput['optimal_seconds']:6.2f} s ({tput['optimal_M_evals_per_s']:.0f}M"
              f" draw-budgets/s), naive xarray {tput['naive_optimal_seconds']:6.2f} s, ratio "
              f"{tput['naive_optimal_seconds'] / tput['optimal_seconds']:.1f}x")

    checks = targets(results)
    print("--- targets")
    for name, ok, detail in checks:
        status = "n/a " if ok is None else ("PASS" if ok else "MISS")
        print(f"  {status}  {name:<58} {detail}")
    print(f"total {time.perf_counter() - t_start:.0f} s; load average now "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.out:
        write_json(args.out, {"protocol": PROTOCOL, "sizes": sizes, "cpus": os.cpu_count(),
                              "fits": results, "throughput": tput,
                              "targets": [{"target": n, "pass": ok, "detail": d}
                                          for n, ok, d in checks]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
