"""The layout of a pooled fit: its families, and one family's view as an ordinary fit.

:func:`family_view` slices the joint posterior to one family and returns an ordinary single-card
fit tree, so every single-family function (prediction, allocation, plots, summaries, backtest
scoring) works on it unchanged. The draws stay aligned across views: draw ``s`` of every family's
view comes from the same joint posterior draw, which is what makes differences between families
(:mod:`bayescale.answers.contrast`) exact.
"""

from __future__ import annotations

import json

import numpy as np

from bayescale.core.model import posterior_var_names
from bayescale.errors import InputError
from bayescale.fits.layout import card_of
from bayescale.fits.members import assemble, ensemble_info, is_ensemble, members

FAMILIES_ATTR = "bayescale_families"
"""Root attribute of a pooled fit: ``{"group_by", "labels", "n_runs", "pooled"}`` (JSON)."""
FAMILY_ATTR = "bayescale_family"
"""Root attribute of one family's view: ``{"group_by", "label"}`` (JSON)."""


def is_pooled(fit) -> bool:
    """Whether ``fit`` is a pooled fit of several families (has ``bayescale_families``)."""
    return FAMILIES_ATTR in getattr(fit, "attrs", {})


def families_attr(*, group_by, labels, n_runs, pooled) -> dict:
    """The root attribute a pooled fit is recognised by (written by the pooled engine)."""
    return {FAMILIES_ATTR: json.dumps({"group_by": str(group_by), "labels": list(labels),
                                       "n_runs": dict(n_runs), "pooled": list(pooled)})}


def families_info(fit) -> dict:
    """``{"group_by", "labels", "n_runs", "pooled"}`` of a pooled fit."""
    if not is_pooled(fit):
        raise InputError("this fit has no families; fit with group_by=COLUMN (--group-by COLUMN)")
    return json.loads(fit.attrs[FAMILIES_ATTR])


def family_labels(fit) -> list[str]:
    """The family labels of a pooled fit, in the order of its ``family`` coordinate."""
    return [str(x) for x in families_info(fit)["labels"]]


def family_view(fit, name: str):
    """One family of a pooled fit, as an ordinary single-card fit.

    Parameters
    ----------
    fit : xarray.DataTree
        A pooled fit (:func:`bayescale.engines.pooled.fit_families`).
    name : str
        A family label.

    Returns
    -------
    xarray.DataTree
        For a pooled law ensemble (:mod:`bayescale.engines.ensemble`), the ensemble of its
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

    if is_ensemble(fit):  # a pooled law ensemble: the family's view of every member
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
    attrs = {k: v for k, v in fit.attrs.items() if k != FAMILIES_ATTR}
    attrs[FAMILY_ATTR] = json.dumps({"group_by": info["group_by"], "label": name})
    tree.attrs = attrs
    return tree
