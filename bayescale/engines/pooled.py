"""Fit the pooled model of several families: sample it and assemble a DataTree with a family dim.

The tree has the groups of :func:`bayescale.fit`; the posterior's law parameters
carry a
``family`` dimension (labels as its coordinate), ``constant_data`` gains ``run_family`` (the label
of each run), and the root attrs gain ``bayescale_families`` (grouping column, labels, runs per
family, pooled parameters). It is saved and loaded by :func:`bayescale.save` /
:func:`bayescale.load` like any fit, and :func:`bayescale.families.family_view` turns it into an
ordinary single-card fit per family.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np

from bayescale.core.cards import Card, load_card
from bayescale.core.diagnostics import check, compute
from bayescale.core.likelihood import logpdf
from bayescale.core.model import posterior_var_names
from bayescale.core.pooled_model import build_pooled_model, hyper_names
from bayescale.core.runs import load_runs
from bayescale.engines.single import _compiled as compiled_for_card
from bayescale.engines.single import _versions, provenance_attrs, sample_nutpie
from bayescale.errors import InputError
from bayescale.fits.families import families_attr

MIN_RUNS_PER_FAMILY = 3
"""Fewest runs a family may have: its unpooled level parameters (E, A, B) need that many."""


def _family_runs(runs, *, card: Card, group_by: str):

    runs = load_runs(
        runs, group_by=group_by, n_params_required=card.n_params, variables=card.law_spec.variables
    )
    labels, counts = np.unique(runs.frame["family"].to_numpy(str), return_counts=True)
    if labels.size < 2:
        raise InputError(
            f"group_by={group_by!r} gives {labels.size} family ({', '.join(labels)}); a pooled "
            "fit needs at least 2 (fit one family without group_by)"
        )
    small = [f"{lab} ({n})" for lab, n in zip(labels, counts, strict=True)
             if n < MIN_RUNS_PER_FAMILY]
    if small:
        raise InputError(
            f"group_by={group_by!r}: families with fewer than {MIN_RUNS_PER_FAMILY} runs: "
            f"{', '.join(small)}; drop them or merge them with another family"
        )
    return runs, [str(x) for x in labels]


def _compiled(card: Card, model, n_families: int):
    """Compile through :func:`bayescale.engines.single._compiled`, keyed on the card and family
    count."""

    keyed = replace(card, name=f"{card.name}[pooled:{n_families}]")
    return compiled_for_card(keyed, model)


def fit_families(
    runs,
    *,
    group_by: str,
    card: str | Card = "chinchilla",
    priors=None,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    strict: bool = False,
    progress: bool = False,
    log_likelihood: bool = True,
    target_accept: float = 0.95,
    adaptation: str = "low_rank",
):
    """Sample the partially pooled posterior of one card over the families in ``group_by``.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        Runs of every family (see :func:`bayescale.load_runs`).
    group_by : str
        Column whose values label the families (e.g. ``"dataset_name"``).
    card : str, Path or Card, default "chinchilla"
        Model card; its ``[pooling]`` table says which parameters are pooled (none: every
        parameter and the noise are fitted per family: separate fits in one joint posterior).
    priors : Mapping, optional
        Prior overrides (of the card's parameters; a pooled parameter's prior is that of its
        centre ``mu_<p>``).
    draws, tune, chains, random_seed, strict, progress, log_likelihood, target_accept, adaptation
        As in :func:`bayescale.fit` (nutpie only).

    Returns
    -------
    xarray.DataTree
        As :func:`bayescale.fit`, with a ``family`` dimension on the law parameters,
        the
        hyperparameters ``mu_<p>``, ``tau_<p>`` in the posterior, ``run_family`` in
        ``constant_data`` and ``bayescale_families`` in the root attrs.

    Raises
    ------
    InputError
        For a missing grouping column (the message lists the columns), fewer than two families,
        a family with fewer than 3 runs, or bad sampler settings.

    References
    ----------
    Gelman & Hill (2007), ch. 12-13; Betancourt & Girolami (2015).

    Examples
    --------
    >>> import bayescale as bs
    >>> post = bs.fit("runs.csv", group_by="dataset_name")  # doctest: +SKIP
    >>> post.posterior["alpha"].dims  # doctest: +SKIP
    ('chain', 'draw', 'family')
    """
    import xarray as xr


    card = load_card(card, priors=priors)
    if card.law_spec.extra_variables:
        raise InputError(
            f"group_by: card {card.name!r} reads {', '.join(card.law_spec.extra_variables)}; "
            "pooled fits support laws of N and D only"
        )
    runs, labels = _family_runs(runs, card=card, group_by=group_by)
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if int(value) != value or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    fam_of_run = runs.frame["family"].to_numpy(str)
    idx = np.searchsorted(labels, fam_of_run)
    t0 = time.perf_counter()
    model = build_pooled_model(card, runs, idx, labels)
    compiled, cached = _compiled(card, model, len(labels))
    if cached:
        compiled = compiled.with_data(
            N=runs.N, D=runs.D, log_loss_obs=np.log(runs.loss), family_idx=idx
        )
    t1 = time.perf_counter()
    trace = sample_nutpie(compiled, draws=draws, tune=tune, chains=chains,
                          random_seed=random_seed, progress=progress, adaptation=adaptation,
                          target_accept=target_accept)
    t2 = time.perf_counter()
    posterior = trace["posterior"].to_dataset()
    keep = posterior_var_names(card) + hyper_names(card)
    posterior = posterior[[v for v in posterior.data_vars if v in keep]]
    posterior = posterior.assign_coords(family=labels)
    stats = trace["sample_stats"].to_dataset() if "sample_stats" in trace.children else None
    checked = list(card.free_params) + hyper_names(card) + list(card.noise_param_names)
    diag = compute(posterior, stats, var_names=checked)

    coords = {"run": np.arange(len(runs))}
    constant = xr.Dataset(
        {
            "N": ("run", runs.N),
            "D": ("run", runs.D),
            "C": ("run", runs.C),
            "run_id": ("run", runs.frame["run"].astype(str).to_numpy()),
            "run_family": ("run", fam_of_run.astype(object).astype(str)),
        },
        coords=coords,
    )
    observed = xr.Dataset({"log_loss": ("run", np.log(runs.loss))}, coords=coords)
    groups = {"posterior": posterior, "observed_data": observed, "constant_data": constant}
    if stats is not None:
        groups["sample_stats"] = stats
    if log_likelihood:
        groups["log_likelihood"] = xr.Dataset(
            {"log_loss": (("chain", "draw", "run"), pointwise_loglik(card, posterior, runs, idx))},
            coords={"chain": posterior["chain"], "draw": posterior["draw"], "run": coords["run"]},
        )
    tree = xr.DataTree.from_dict(groups)
    n_runs = {lab: int((fam_of_run == lab).sum()) for lab in labels}
    tree.attrs = {
        **provenance_attrs(card, runs),
        **families_attr(group_by=group_by, labels=labels, n_runs=n_runs, pooled=card.pooling),
        "bayescale_sampler": json.dumps(
            {
                "sampler": "nutpie",
                "draws": draws,
                "tune": tune,
                "chains": chains,
                "random_seed": random_seed,
                "compile_seconds": round(t1 - t0, 3),
                "sample_seconds": round(t2 - t1, 3),
                "compile_cached": cached,
                "target_accept": target_accept,
                "adaptation": adaptation,
            }
        ),
        "bayescale_versions": json.dumps(_versions(), sort_keys=True),
        "bayescale_diagnostics": diag.to_json(),
    }
    check(
        diag,
        strict=strict,
        label=f"pooled fit of {card.name!r} on {len(runs)} runs in {len(labels)} families",
    )
    return tree


def pointwise_loglik(card: Card, posterior, runs, family_idx) -> np.ndarray:
    """Pointwise log-likelihood ``(chain, draw, run)``, each run under its family's parameters."""

    law = card.law_spec
    idx = np.asarray(family_idx)
    params = {}
    for k in posterior.data_vars:
        v = posterior[k].to_numpy()
        params[k] = v[..., idx] if "family" in posterior[k].dims else v[..., None]
    mu = law.log_loss(runs.N, runs.D, params)
    return logpdf(np.log(runs.loss), mu, params["sigma"], family=card.family, nu=params.get("nu"))
