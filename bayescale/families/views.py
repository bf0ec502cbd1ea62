"""Per-family views of a pooled fit, and per-family answers with a ``family`` dimension.

:func:`family_view` slices the joint posterior to one family and returns an ordinary single-card
fit tree, so every single-family function (prediction, allocation, plots, summaries, backtest
scoring) works on it unchanged. The draws stay aligned across views: draw ``s`` of every family's
view comes from the same joint posterior draw, which is what makes differences between families
(:mod:`bayescale.families.contrast`) exact.
"""

from __future__ import annotations

import json

import numpy as np

from bayescale.errors import InputError


def is_pooled(fit) -> bool:
    """Whether ``fit`` is a pooled fit of several families (has ``bayescale_families``)."""
    return "bayescale_families" in fit.attrs


def families_info(fit) -> dict:
    """``{"group_by", "labels", "n_runs", "pooled"}`` of a pooled fit."""
    if not is_pooled(fit):
        raise InputError("this fit has no families; fit with group_by=COLUMN (--group-by COLUMN)")
    return json.loads(fit.attrs["bayescale_families"])


def family_labels(fit) -> list[str]:
    """The family labels of a pooled fit, in the order of its ``family`` coordinate."""
    return [str(x) for x in families_info(fit)["labels"]]


def family_view(fit, name: str):
    """One family of a pooled fit, as an ordinary single-card fit.

    Parameters
    ----------
    fit : xarray.DataTree
        A pooled fit (:func:`bayescale.families.fitting.fit_families`).
    name : str
        A family label.

    Returns
    -------
    xarray.DataTree
        For a pooled law ensemble (:mod:`bayescale.families.ensemble`), the ensemble of its
        members' views (same weights, discrepancy and validated distance). Otherwise
        a new tree: posterior law parameters and noise without the ``family`` dim (the
        hyperparameters dropped); ``constant_data``, ``observed_data`` and ``log_likelihood``
        restricted to the family's runs (``run`` renumbered ``0..k-1``); ``sample_stats`` of the
        joint fit; the root attrs of the pooled fit with ``bayescale_family``
        (``{"group_by", "label"}``) instead of ``bayescale_families``.

    Raises
    ------
    InputError
        For a fit without families or an unknown label (the message lists the labels).
    """
    import xarray as xr

    from bayescale.ensemble.members import is_ensemble
    from bayescale.model import posterior_var_names
    from bayescale.posterior import card_of

    if is_ensemble(fit):  # a pooled law ensemble: the family's view of every member
        from bayescale.ensemble import assemble, ensemble_info, members

        return assemble([family_view(tree, name) for _, _, tree in members(fit)],
                        ensemble_info(fit))
    info = families_info(fit)
    labels = [str(x) for x in info["labels"]]
    if str(name) not in labels:
        raise InputError(f"unknown family {name!r}; families of this fit: {', '.join(labels)}")
    name = str(name)
    keep = posterior_var_names(card_of(fit))
    post = fit["posterior"].to_dataset()
    post = post[[v for v in keep if v in post]].sel(family=name, drop=True)
    const = fit["constant_data"].to_dataset()
    pos = np.flatnonzero(const["run_family"].to_numpy().astype(str) == name)
    run = np.arange(pos.size)

    def rows(ds):
        return ds.isel(run=pos).assign_coords(run=run)

    groups = {
        "posterior": post,
        "constant_data": rows(const.drop_vars("run_family")),
        "observed_data": rows(fit["observed_data"].to_dataset()),
    }
    if "log_likelihood" in fit.children:
        groups["log_likelihood"] = rows(fit["log_likelihood"].to_dataset())
    if "sample_stats" in fit.children:
        groups["sample_stats"] = fit["sample_stats"].to_dataset()
    tree = xr.DataTree.from_dict(groups)
    attrs = {k: v for k, v in fit.attrs.items() if k != "bayescale_families"}
    attrs["bayescale_family"] = json.dumps({"group_by": info["group_by"], "label": name})
    tree.attrs = attrs
    return tree


def _stack(parts, labels):
    import xarray as xr

    return xr.concat(parts, dim="family", join="outer").assign_coords(family=labels)


def predict(fit, **kwargs):
    """:func:`bayescale.prediction.predict` per family of a pooled fit, stacked on ``family``.

    Parameters
    ----------
    fit : xarray.DataTree
        A pooled fit.
    **kwargs
        Passed to :func:`bayescale.prediction.predict` for every family (the same query points).

    Returns
    -------
    xarray.Dataset
        The single-family result with a leading ``family`` dimension.
    """
    from bayescale.prediction import predict as predict_one

    labels = family_labels(fit)
    return _stack([predict_one(family_view(fit, lab), **kwargs) for lab in labels], labels)


def optimal(fit, **kwargs):
    """:func:`bayescale.allocation.optimal` per family of a pooled fit, stacked on ``family``."""
    from bayescale.allocation import optimal as optimal_one

    labels = family_labels(fit)
    return _stack([optimal_one(family_view(fit, lab), **kwargs) for lab in labels], labels)


def compute_for_target(fit, **kwargs) -> dict:
    """:func:`bayescale.allocation.compute_for_target` per family: ``{label: result}``."""
    from bayescale.allocation import compute_for_target as one

    return {lab: one(family_view(fit, lab), **kwargs) for lab in family_labels(fit)}


def pooling_summary(fit, *, ci_prob: float = 0.9):
    """How much each pooled parameter is shared, and which families keep their own value.

    Parameters
    ----------
    fit : xarray.DataTree
        A pooled fit.
    ci_prob : float, default 0.9
        Probability of the equal-tailed intervals.

    Returns
    -------
    pandas.DataFrame
        One row per pooled parameter and family: ``param``, ``family``, ``median``, ``lower``,
        ``upper`` (the family's value); ``mu`` (median of the shared centre); ``tau``,
        ``tau_lower``, ``tau_upper`` (pooling scale: the relative spread across families);
        ``log_ratio`` with ``log_ratio_lower``/``log_ratio_upper`` (``log(value / mu)``) and
        ``own_value`` (True when that interval excludes 0: the family's runs pull it away from
        the others, and the posterior says so).
    """
    import pandas as pd

    from bayescale.ensemble.members import is_ensemble
    from bayescale.posterior import card_of
    from bayescale.stats import check_ci

    check_ci(ci_prob, "eti")
    if is_ensemble(fit):  # a pooled law ensemble: each member's pooling, labelled by card
        from bayescale.ensemble import members

        parts = []
        for name, _, tree in members(fit):
            part = pooling_summary(tree, ci_prob=ci_prob)
            part.insert(0, "card", name)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)
    card = card_of(fit)
    post = fit["posterior"]
    q = [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2]
    amps = {a.name for a in card.law_spec.amplitudes}
    rows = []
    for p in card.pooling:
        tau = post[f"tau_{p}"].to_numpy().reshape(-1)
        t_lo, t_med, t_hi = np.quantile(tau, q)
        # centre on the parameter's own scale (a pooled amplitude is pooled via its log term)
        log_mu = None if p in amps else np.log(post[f"mu_{p}"].to_numpy().reshape(-1))
        for lab in family_labels(fit):
            v = post[p].sel(family=lab).to_numpy().reshape(-1)
            lo, med, hi = np.quantile(v, q)
            row = {"param": p, "family": lab, "median": med, "lower": lo, "upper": hi,
                   "tau": t_med, "tau_lower": t_lo, "tau_upper": t_hi}
            if log_mu is not None:
                r = np.log(v) - log_mu
                r_lo, r_med, r_hi = np.quantile(r, q)
                row.update(mu=float(np.exp(np.median(log_mu))), log_ratio=r_med,
                           log_ratio_lower=r_lo, log_ratio_upper=r_hi,
                           own_value=bool(r_lo > 0 or r_hi < 0))
            rows.append(row)
    return pd.DataFrame(rows)
