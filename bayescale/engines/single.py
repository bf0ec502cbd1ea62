"""Fit a model card to a runs table: sample the posterior and assemble a self-describing DataTree.

The default sampler is nutpie (NUTS compiled with numba; about 5x faster than PyMC's own NUTS on
these models). A compiled model is cached per card within a process and refitted on new runs by
swapping its data, so backtests, calibration and SBC compile once.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections import OrderedDict

import numpy as np

from bayescale import __version__
from bayescale.core.cards import Card, load_card
from bayescale.core.compiled import compiled_for
from bayescale.core.diagnostics import check, compute
from bayescale.core.likelihood import logpdf
from bayescale.core.model import build_model, posterior_var_names
from bayescale.core.runs import OPTIONAL_NUMERIC, load_runs
from bayescale.errors import InputError

SAMPLERS = ("nutpie", "pymc")
BACKENDS = ("cached", "pymc-cfunc")
_COMPILED: OrderedDict = OrderedDict()
_COMPILED_MAX = 16


def _as_runs(runs, *, card: Card):

    return load_runs(runs, n_params_required=card.n_params, variables=card.law_spec.variables)


def _compiled(card: Card, model, *, backend: str = "cached"):
    """nutpie-compiled ``model`` and whether it came from this process's cache.

    ``backend="cached"``: :func:`bayescale.core.compiled.compiled_for` (PyTensor numba code cached
    on
    disk across processes; refits get every data variable of ``model`` swapped in).
    ``"pymc-cfunc"``: nutpie's ``compile_pymc_model``, compiled once per process and card (the
    former path, kept for comparison); the caller swaps the data of a cached one.
    """
    if backend == "cached":

        return compiled_for(model, key_extra=card.to_json())
    import nutpie

    key = card.to_json()
    hit = _COMPILED.get(key)
    if hit is None:
        hit = nutpie.compile_pymc_model(model)
        _COMPILED[key] = hit
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
        return hit, False
    _COMPILED.move_to_end(key)
    return hit, True


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("bayescale", "pymc", "pytensor", "nutpie", "arviz", "numpy", "xarray"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def fit_card(
    runs,
    *,
    card: str | Card,
    priors=None,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    sampler: str = "nutpie",
    strict: bool = False,
    progress: bool = False,
    log_likelihood: bool = True,
    target_accept: float = 0.95,
    adaptation: str = "low_rank",
    backend: str = "cached",
):
    """Sample the posterior of one card on a table of runs (the single-card engine).

    The public :func:`bayescale.fit` (:mod:`bayescale.workflows.fit`) documents every option;
    this engine takes the same ones except ``group_by``, and a card is required.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior``, ``sample_stats``, ``observed_data``, ``constant_data`` and
        ``log_likelihood``; provenance (card, data hash, mapping, filters, versions, seed,
        timing, diagnostics) in the root attrs.
    """
    import xarray as xr

    card = load_card(card, priors=priors)
    if getattr(card, "kind", "loss") == "accuracy":
        raise InputError(
            f"card {card.name!r} fits an accuracy: pass accuracy={{'metric': COLUMN}} (and "
            "'via' for the two-step card) with the whole runs table"
        )
    runs = _as_runs(runs, card=card)
    if sampler not in SAMPLERS:
        raise InputError(f"unknown sampler {sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if int(value) != value or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    t0 = time.perf_counter()
    model = build_model(card, runs)
    cached = False
    if sampler == "nutpie":

        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        compiled, cached = _compiled(card, model, backend=backend)
        if cached and backend == "pymc-cfunc":
            data = {"N": runs.N, "D": runs.D, "log_loss_obs": np.log(runs.loss)}
            data.update({v: getattr(runs, v) for v in card.law_spec.extra_variables})
            known = {var.name for var in compiled.shared_var_keys}  # one-variable laws drop N or D
            compiled = compiled.with_data(**{k: v for k, v in data.items() if k in known})
        t1 = time.perf_counter()
        trace = sample_nutpie(compiled, draws=draws, tune=tune, chains=chains,
                              random_seed=random_seed, progress=progress, adaptation=adaptation,
                              target_accept=target_accept)
    else:
        import pymc as pm

        t1 = time.perf_counter()
        with model:
            trace = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=min(chains, os.cpu_count() or 1),
                random_seed=random_seed,
                progressbar=progress,
                compute_convergence_checks=False,
                nuts_sampler="pymc",
                # not fork: the process already runs threads (nutpie, BLAS), and Python 3.12
                # warns that fork() may then deadlock
                mp_ctx="forkserver",
                target_accept=target_accept,
            )
    t2 = time.perf_counter()
    posterior = trace["posterior"].to_dataset()
    keep = [v for v in posterior.data_vars if v in posterior_var_names(card) or "pivot" in v]
    posterior = posterior[keep]
    stats = trace["sample_stats"].to_dataset() if "sample_stats" in trace.children else None
    diag = compute(posterior, stats, var_names=card.free_params + card.noise_param_names)

    run_ids = runs.frame["run"].astype(str).to_numpy() if "run" in runs.frame else None
    coords = {"run": np.arange(len(runs))}
    constant = xr.Dataset(
        {
            "N": ("run", runs.N),
            "D": ("run", runs.D),
            "C": ("run", runs.C),
            **{v: ("run", getattr(runs, v)) for v in _stored_extras(runs)},
            **({"run_id": ("run", run_ids)} if run_ids is not None else {}),
        },
        coords=coords,
    )
    observed = xr.Dataset({"log_loss": ("run", np.log(runs.loss))}, coords=coords)
    groups = {
        "posterior": posterior,
        "observed_data": observed,
        "constant_data": constant,
    }
    if stats is not None:
        groups["sample_stats"] = stats
    if log_likelihood:
        groups["log_likelihood"] = xr.Dataset(
            {"log_loss": (("chain", "draw", "run"), _pointwise_loglik(card, posterior, runs))},
            coords={"chain": posterior["chain"], "draw": posterior["draw"], "run": coords["run"]},
        )
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {
        **provenance_attrs(card, runs),
        "bayescale_sampler": json.dumps(
            {
                "sampler": sampler,
                "draws": draws,
                "tune": tune,
                "chains": chains,
                "random_seed": random_seed,
                "compile_seconds": round(t1 - t0, 3),
                "sample_seconds": round(t2 - t1, 3),
                "compile_cached": cached,
                "backend": backend if sampler == "nutpie" else None,
                "target_accept": target_accept,
                "adaptation": adaptation if sampler == "nutpie" else "diag",
            }
        ),
        "bayescale_versions": json.dumps(_versions(), sort_keys=True),
        "bayescale_diagnostics": diag.to_json(),
    }
    check(diag, strict=strict, label=f"fit of {card.name!r} on {len(runs)} runs")
    return tree


def _stored_extras(runs) -> list[str]:
    """Optional run columns (``U``) present in the runs, stored with the fit whatever the law."""

    return [v for v in OPTIONAL_NUMERIC if v in runs.frame]


def _pointwise_loglik(card: Card, posterior, runs, *, block: int = 2_000_000) -> np.ndarray:
    """Pointwise log-likelihood ``(chain, draw, run)``, computed in blocks of runs to cap memory."""

    law = card.law_spec
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    params = {k: posterior[k].to_numpy()[..., None] for k in posterior.data_vars}
    y = np.log(runs.loss)
    out = np.empty((n_chain, n_draw, len(y)))
    step = max(1, block // (n_chain * n_draw))
    for lo in range(0, len(y), step):
        sl = slice(lo, lo + step)
        extra = {v: getattr(runs, v)[sl] for v in law.extra_variables}
        mu = law.log_loss(runs.N[sl], runs.D[sl], params, **extra)
        out[..., sl] = logpdf(
            y[sl], mu, params["sigma"], family=card.family, nu=params.get("nu")
        )
    return out


def sample_nutpie(compiled, *, draws, tune, chains, random_seed, progress, adaptation,
                  target_accept):
    """Run nutpie's NUTS on a compiled model with the package's settings (one chain per core)."""
    import nutpie

    return nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=min(chains, os.cpu_count() or 1),
        seed=random_seed,
        progress_bar=progress,
        save_warmup=False,
        adaptation=adaptation,
        target_accept=target_accept,
    )


def provenance_attrs(card, runs) -> dict:
    """Root attributes every fit starts with: creation stamp, card and runs provenance."""
    return {
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(),
        "creation_library": "bayescale",
        "creation_library_version": __version__,
        "bayescale_card": card.to_json(),
        "bayescale_runs": json.dumps(runs.provenance, sort_keys=True, default=str),
    }
