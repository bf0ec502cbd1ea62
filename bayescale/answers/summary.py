"""Parameter summaries of a fit: a table with intervals and convergence diagnostics, and its JSON.

The interval probability is part of every column name and of the JSON (``eti90_lower``,
``"ci_prob": 0.9``), so a number is never shown without the probability it was computed at.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bayescale.core.stats import check_ci, column_label, interval
from bayescale.errors import InputError
from bayescale.fits.layout import card_of, provenance
from bayescale.fits.view import read

__all__ = ["fit_summary_json", "summarize", "to_jsonable"]

_MIN_DIAG_CHAINS = 2
_MIN_DIAG_DRAWS = 4


def _param_order(fit, card) -> list[str]:
    """Law parameters in card order, then noise parameters, keeping those the posterior holds."""
    post = fit["posterior"]
    names = [*card.param_names, *card.noise_param_names]
    return [n for n in names if n in post.data_vars]


def _diagnostics(post, names) -> dict[str, dict[str, float]]:
    """R-hat, bulk and tail ESS per parameter; NaN when there are too few chains or draws."""
    nan = {n: float("nan") for n in names}
    if (
        not names
        or post.sizes.get("chain", 1) < _MIN_DIAG_CHAINS
        or post.sizes.get("draw", 1) < _MIN_DIAG_DRAWS
    ):
        return {"r_hat": nan, "ess_bulk": dict(nan), "ess_tail": dict(nan)}
    import arviz_stats as azs

    sub = post[names]
    rhat = azs.rhat(sub)
    ess_b = azs.ess(sub, method="bulk")
    ess_t = azs.ess(sub, method="tail")
    return {
        "r_hat": {n: float(rhat[n]) for n in names},
        "ess_bulk": {n: float(ess_b[n]) for n in names},
        "ess_tail": {n: float(ess_t[n]) for n in names},
    }


def summarize(fit, *, ci_prob: float = 0.9, ci_kind: str = "eti", var_names=None):
    """Posterior summary table of a fit's parameters.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit from :func:`bayescale.fit` (or a fit-like tree such as :func:`bayescale.point_fit`'s).
    ci_prob : float, default 0.9
        Probability of the credible interval.
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density interval.
    var_names : list of str, optional
        Parameters to summarise (default: the card's law parameters in card order, then ``sigma``
        and ``nu``). Any posterior variable may be named, e.g. ``"log_A"``.

    Returns
    -------
    pandas.DataFrame
        Index ``parameter``; columns ``mean``, ``sd``, ``median``, ``{label}_lower``,
        ``{label}_upper`` (label from :func:`bayescale.core.stats.column_label`, e.g. ``eti90``),
        ``r_hat``, ``ess_bulk``, ``ess_tail``. ``attrs`` hold ``ci_prob``, ``ci_kind`` and
        ``card``. R-hat and ESS are NaN for a single chain (e.g. a bootstrap point fit).

    Raises
    ------
    InputError
        For a bad interval specification or a variable the posterior does not hold.

    References
    ----------
    Vehtari, A. et al. (2021). Rank-normalization, folding, and localization: An improved R-hat
    for assessing convergence of MCMC. Bayesian Analysis 16(2).

    Examples
    --------
    >>> import bayescale as bs
    >>> post = bs.fit(bs.datasets.simulate(random_seed=0), draws=500)  # doctest: +SKIP
    >>> bs.summarize(post, ci_prob=0.9, ci_kind="eti").columns.tolist()  # doctest: +SKIP
    ['mean', 'sd', 'median', 'eti90_lower', 'eti90_upper', 'r_hat', 'ess_bulk', 'ess_tail']
    """
    import pandas as pd


    check_ci(ci_prob, ci_kind)
    view = read(fit)
    if view.is_mixture:  # one block of rows per member, labelled "card.parameter"
        frames = []
        for name, weight, member in view.members:
            f = summarize(member, var_names=var_names, ci_prob=ci_prob, ci_kind=ci_kind)
            f = f.assign(card=name, weight=weight)
            f.index = pd.Index([f"{name}.{p}" for p in f.index], name="parameter")
            frames.append(f)
        frame = pd.concat(frames)
        frame.attrs = {"ci_prob": ci_prob, "ci_kind": ci_kind, "card": "ensemble"}
        return frame
    card = card_of(fit)
    post = fit["posterior"].to_dataset()
    if var_names is None:
        names = _param_order(fit, card)
    else:
        names = [var_names] if isinstance(var_names, str) else list(var_names)
        missing = [n for n in names if n not in post.data_vars]
        if missing:
            raise InputError(
                f"the posterior has no variable(s) {', '.join(map(repr, missing))}; "
                f"available: {', '.join(map(str, post.data_vars))}"
            )
    label = column_label(ci_prob, ci_kind)
    diag = _diagnostics(post, names)
    rows = []
    for name in names:
        x = np.asarray(post[name].to_numpy(), dtype=float).reshape(-1)
        lo, hi = interval(x, ci_prob=ci_prob, ci_kind=ci_kind)
        rows.append(
            {
                "mean": float(np.mean(x)),
                "sd": float(np.std(x, ddof=1)) if x.size > 1 else float("nan"),
                "median": float(np.median(x)),
                f"{label}_lower": float(lo),
                f"{label}_upper": float(hi),
                "r_hat": diag["r_hat"][name],
                "ess_bulk": diag["ess_bulk"][name],
                "ess_tail": diag["ess_tail"][name],
            }
        )
    frame = pd.DataFrame(rows, index=pd.Index(names, name="parameter"))
    frame.attrs = {"ci_prob": ci_prob, "ci_kind": ci_kind, "card": card.name}
    return frame


def to_jsonable(value):
    """A strict-JSON copy of ``value``: NaN and infinities become ``None``, numpy values plain.

    Parameters
    ----------
    value : object
        Nested dicts, lists, tuples, numbers, numpy scalars or arrays, strings.

    Returns
    -------
    object
        The same structure with plain Python values; the input is not modified.

    Examples
    --------
    >>> to_jsonable({"a": np.float64("nan"), "b": (1, np.int64(2)), "c": np.array([0.5])})
    {'a': None, 'b': [1, 2], 'c': [0.5]}
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def fit_summary_json(fit, *, ci_prob: float = 0.9, ci_kind: str = "eti") -> dict:
    """The JSON-ready summary of a fit that ``bayescale fit`` prints.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit.
    ci_prob : float, default 0.9
        Probability of the credible intervals.
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density interval.

    Returns
    -------
    dict
        ``{"card", "law", "n_runs", "ci_prob", "ci_kind", "params": {name: {"median", "lo",
        "hi", "mean", "sd", "r_hat", "ess_bulk"}}, "diagnostics": {..., "ok", "problems"},
        "sampler": {...}, "runs": {...}}``; non-finite numbers are ``None`` so the result is
        strict JSON.

    Examples
    --------
    >>> import json, bayescale as bs
    >>> post = bs.fit(bs.datasets.simulate(random_seed=0), draws=500)  # doctest: +SKIP
    >>> out = fit_summary_json(post, ci_prob=0.9, ci_kind="eti")  # doctest: +SKIP
    >>> sorted(out["params"]["alpha"])  # doctest: +SKIP
    ['ess_bulk', 'hi', 'lo', 'mean', 'median', 'r_hat', 'sd']
    """
    view = read(fit)
    if view.is_mixture:
        info = view.ensemble_info
        out = {
            "card": "ensemble",
            "n_runs": int(fit["observed_data"].sizes["run"]),
            "ci_prob": ci_prob,
            "ci_kind": ci_kind,
            "weights": info["weights"],
            "tau": info["tau"],
            "validated_decades": info["validated_decades"],
            "lack_of_fit": None if view.lack_of_fit is None else bool(view.lack_of_fit["flag"]),
            "lack_of_fit_evidence": (None if view.lack_of_fit is None
                                     else {**view.lack_of_fit, "drift": info.get("drift")}),
            "ensemble": {k: v for k, v in info.items() if k not in ("weights", "tau")},
            "members": {
                name: {"weight": w, **fit_summary_json(m, ci_prob=ci_prob, ci_kind=ci_kind)}
                for name, w, m in view.members
            },
            "runs": provenance(fit).get("runs", {}),
        }
        out["diagnostics"] = {
            "ok": all(m["diagnostics"].get("ok", True) for m in out["members"].values()),
            "problems": [f"{n}: {p}" for n, m in out["members"].items()
                         for p in m["diagnostics"].get("problems", [])],
        }
        return to_jsonable(out)
    table = summarize(fit, ci_prob=ci_prob, ci_kind=ci_kind)
    label = column_label(ci_prob, ci_kind)
    card = card_of(fit)
    prov = provenance(fit)
    params = {
        name: {
            "median": row["median"],
            "lo": row[f"{label}_lower"],
            "hi": row[f"{label}_upper"],
            "mean": row["mean"],
            "sd": row["sd"],
            "r_hat": row["r_hat"],
            "ess_bulk": row["ess_bulk"],
        }
        for name, row in table.iterrows()
    }
    out = {
        "card": card.name,
        "law": card.law,
        "family": card.family,
        "n_runs": int(fit["observed_data"].sizes["run"]),
        "ci_prob": ci_prob,
        "ci_kind": ci_kind,
        "params": params,
        "diagnostics": prov.get("diagnostics", {}),
        "sampler": prov.get("sampler", {}),
        "runs": prov.get("runs", {}),
    }
    if "method" in prov:
        out["method"] = prov["method"]
    out = to_jsonable(out)
    return out
