"""JSON-ready and tabular summaries of a pooled fit: per family, pooling scales and contrasts.

Used by the command line (``fit --group-by``, ``predict``/``optimal`` on a pooled fit,
``contrast``) and the report; every answer is keyed by family.
"""

from __future__ import annotations

import json
import math

from bayescale.families.views import families_info, family_labels, family_view, pooling_summary


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
    """:func:`bayescale.summary.summarize` of every family, stacked with a ``family`` column."""
    import pandas as pd

    from bayescale.summary import summarize

    parts = []
    for lab in family_labels(fit):
        t = summarize(family_view(fit, lab), ci_prob=ci_prob, ci_kind=ci_kind).reset_index()
        t.insert(0, "family", lab)
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def fit_summary_json(fit, *, ci_prob: float = 0.9, ci_kind: str = "eti") -> dict:
    """``{"group_by", "families": {label: single-family summary}, "pooling", "diagnostics"}``.

    The single-family summaries are :func:`bayescale.summary.fit_summary_json` of each
    :func:`family_view`; ``diagnostics`` are those of the joint fit (hyperparameters included).
    """
    from bayescale.summary import fit_summary_json as one

    info = families_info(fit)
    return {
        "group_by": info["group_by"],
        "n_runs": info["n_runs"],
        "pooled": info["pooled"],
        "families": {
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

    from bayescale.allocation import optimal

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
    from bayescale.families.contrast import contrast

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
