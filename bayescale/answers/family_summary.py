"""JSON-ready and tabular summaries of a pooled fit: per family, pooling scales and contrasts.

Used by the command line (``fit --group-by``, ``predict``/``optimal`` on a pooled fit,
``contrast``) and the report; every answer is keyed by family.
"""

from __future__ import annotations

import json
import math

import numpy as np

from bayescale.answers.allocation import optimal
from bayescale.answers.contrast import contrast
from bayescale.answers.summary import fit_summary_json as one
from bayescale.answers.summary import summarize
from bayescale.core.stats import check_ci
from bayescale.fits.families import families_info, family_labels, family_view
from bayescale.fits.view import read


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def records(frame) -> list[dict]:
    """A DataFrame as a list of strict-JSON records (non-finite numbers become None)."""
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def summary_table(fit, *, ci_prob: float = 0.9, ci_kind: str = "eti"):
    """:func:`bayescale.answers.summary.summarize` of every family, stacked with a ``family``
    column."""
    import pandas as pd


    parts = []
    for lab in family_labels(fit):
        t = summarize(family_view(fit, lab), ci_prob=ci_prob, ci_kind=ci_kind).reset_index()
        t.insert(0, "family", lab)
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def fit_summary_json(fit, *, ci_prob: float = 0.9, ci_kind: str = "eti") -> dict:
    """``{"group_by", "families": {label: single-family summary}, "pooling", "diagnostics"}``.

    The single-family summaries are :func:`bayescale.answers.summary.fit_summary_json` of each
    :func:`family_view`; ``diagnostics`` are those of the joint fit (hyperparameters included).
    A fit of several metrics has them under ``metrics`` instead of ``families``.
    """

    info = families_info(fit)
    return {
        "group_by": info["group_by"],
        "n_runs": info["n_runs"],
        "pooled": info["pooled"],
        read(fit).families_key: {
            lab: one(family_view(fit, lab), ci_prob=ci_prob, ci_kind=ci_kind)
            for lab in family_labels(fit)
        },
        "pooling": records(pooling_summary(fit, ci_prob=ci_prob)),
        "diagnostics": json.loads(fit.attrs.get("bayescale_diagnostics", "{}")),
    }


def optimal_table(fit, *, budgets, ci_prob: float = 0.9, ci_kind: str = "eti"):
    """Per-family compute-optimal ``N*``, ``D*``, ``D*/N*`` and loss at each budget (long form).

    Returns
    -------
    pandas.DataFrame
        Columns ``family``, ``budget``, ``quantity``, ``median``, ``lower``, ``upper``.
    """
    import pandas as pd


    rows = []
    for lab in family_labels(fit):
        ds = optimal(family_view(fit, lab), budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind)
        for i, c in enumerate(ds["budget"].to_numpy()):
            for q in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
                lo, hi = (float(v) for v in ds[f"{q}_ci"].to_numpy()[i])
                rows.append({"family": lab, "budget": float(c), "quantity": q,
                             "median": float(ds[q].to_numpy()[i]), "lower": lo, "upper": hi})
    return pd.DataFrame(rows)


def contrast_json(fit, *, budgets, ci_prob: float = 0.9, ci_kind: str = "eti") -> dict:
    """What ``bayescale contrast`` prints: per-family optimum, contrasts and pooling scales."""

    info = families_info(fit)
    return {
        "group_by": info["group_by"],
        "families": family_labels(fit),
        "budgets": [float(b) for b in budgets],
        "ci_prob": ci_prob,
        "ci_kind": ci_kind,
        "optimal": records(optimal_table(fit, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind)),
        "contrasts": records(contrast(fit, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind)),
        "pooling": records(pooling_summary(fit, ci_prob=ci_prob)),
    }


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


    check_ci(ci_prob, "eti")
    view = read(fit)
    if view.is_mixture:  # a pooled law ensemble: each member's pooling, labelled by card
        parts = []
        for name, _, tree in view.members:
            part = pooling_summary(tree, ci_prob=ci_prob)
            part.insert(0, "card", name)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)
    card = view.card
    post = fit["posterior"]
    q = [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2]
    amps = {a.name for a in card.law_spec.amplitudes}
    rows = []
    for p in card.pooling:
        tau = post[f"tau_{p}"].to_numpy().reshape(-1)
        t_lo, t_med, t_hi = np.quantile(tau, q)
        # centre on the parameter's own scale (a pooled amplitude is pooled via its log term)
        log_mu = None if p in amps else np.log(post[f"mu_{p}"].to_numpy().reshape(-1))
        for lab in view.family_labels:
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
