"""Family contrasts: the posterior of differences between families of a pooled fit.

Every draw of a pooled fit is one joint draw of all families, so the difference of a quantity
between two families is computed draw by draw, and its interval and probabilities are exact under
the model (no independence assumption between the families' uncertainties, which share the
pooled exponents and the noise).

Quantities:

- law parameters other than amplitudes (``E``, ``alpha``, ``beta``; ``alpha_N``, ``alpha_D``,
  ``L_inf`` for Kaplan): difference ``X - Y``;
- ``loss_opt``: the compute-optimal loss ``L(N*(C), D*(C))`` at each budget, difference
  ``X - Y``; ``p_x_below_y`` is then the probability that family X reaches a lower loss than
  family Y at budget ``C`` (each trained compute-optimally);
- ``N_opt`` and ``D_opt`` at each budget: ratio ``X / Y``.

References
----------
Hoffmann et al. (2022), Approach 3 (compute-optimal allocation of the Chinchilla law).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from bayescale.answers.allocation import optimal_draws
from bayescale.core.stats import check_ci, interval
from bayescale.errors import InputError
from bayescale.fits.families import family_labels, family_view
from bayescale.fits.layout import draws
from bayescale.fits.view import read

QUANTITIES_AT_BUDGET = {"loss_opt": "difference", "N_opt": "ratio", "D_opt": "ratio"}
"""Per-budget quantities and how two families are compared."""


def _pairs(labels, pairs):
    if pairs is None:
        return list(combinations(labels, 2))
    out = []
    for pair in pairs:
        if len(pair) != 2 or any(str(p) not in labels for p in pair) or pair[0] == pair[1]:
            raise InputError(
                f"contrast pair {pair!r} must name two different families of: {', '.join(labels)}"
            )
        out.append((str(pair[0]), str(pair[1])))
    return out


def contrast_draws(fit, *, budgets) -> dict:
    """Draws of every compared quantity per family, aligned by joint posterior draw.

    Parameters
    ----------
    fit : xarray.DataTree
        A pooled fit.
    budgets : array_like
        Compute budgets in FLOPs.

    Returns
    -------
    dict
        ``{"params": {label: {name: (S,)}}, "budget": {label: {quantity: (S, B)}}, "budgets":
        (B,), "labels": [...]}``. For a pooled law ensemble ``params`` are empty: its members'
        laws have different parameters, so only the answers at budgets are compared.
    """

    fitv = read(fit)
    card = fitv.card
    mixture = fitv.is_mixture  # members' laws differ: only answers at budgets compare
    law = card.law_spec
    amps = {a.name for a in law.amplitudes}
    names = [p for p in card.param_names if p not in amps and p not in card.tie]
    labels = family_labels(fit)
    out = {"params": {}, "budget": {}, "labels": labels}
    for lab in labels:
        view = family_view(fit, lab)
        out["params"][lab] = {} if mixture else draws(view, var_names=names)
        ds = optimal_draws(view, budgets=budgets)
        out["budget"][lab] = {q: ds[q].to_numpy() for q in QUANTITIES_AT_BUDGET}
        out["budgets"] = ds["budget"].to_numpy()
    return out


def contrast(fit, *, budgets, pairs=None, ci_prob: float = 0.9, ci_kind: str = "eti"):
    """Posterior of the differences between families, with the probability of each ordering.

    Parameters
    ----------
    fit : xarray.DataTree
        A pooled fit (``bs.fit(runs, group_by=...)``).
    budgets : array_like
        Compute budgets ``C`` in FLOPs for the per-budget quantities.
    pairs : sequence of (str, str), optional
        Pairs ``(X, Y)`` to compare; default every pair in label order.
    ci_prob : float, default 0.9
        Interval probability.
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density interval.

    Returns
    -------
    pandas.DataFrame
        One row per pair, quantity and budget (``NaN`` budget for law parameters): ``pair``
        (``"X - Y"`` or ``"X / Y"``), ``family_x``, ``family_y``, ``quantity``, ``budget``,
        ``kind`` (``"difference"`` or ``"ratio"``), ``median``, ``lower``, ``upper`` and
        ``p_x_below_y`` (posterior probability that X's value is below Y's; for ``loss_opt``,
        that X reaches the lower loss at that budget).

    Examples
    --------
    >>> table = contrast(post, budgets=[1e22])  # doctest: +SKIP
    >>> table.query("quantity == 'loss_opt'")[["pair", "median", "p_x_below_y"]]  # doctest: +SKIP
    """
    import pandas as pd


    check_ci(ci_prob, ci_kind)
    d = contrast_draws(fit, budgets=budgets)
    rows = []

    def add(x, y, quantity, budget, kind, a, b):
        delta = a - b if kind == "difference" else a / b
        lo, hi = interval(delta, ci_prob=ci_prob, ci_kind=ci_kind)
        sign = "-" if kind == "difference" else "/"
        rows.append({
            "pair": f"{x} {sign} {y}",
            "family_x": x,
            "family_y": y,
            "quantity": quantity,
            "budget": budget,
            "kind": kind,
            "median": float(np.median(delta)),
            "lower": float(lo),
            "upper": float(hi),
            "p_x_below_y": float(np.mean(a < b)),
        })

    for x, y in _pairs(d["labels"], pairs):
        for name in d["params"][x]:
            add(x, y, name, float("nan"), "difference", d["params"][x][name], d["params"][y][name])
        for j, c in enumerate(d["budgets"]):
            for q, kind in QUANTITIES_AT_BUDGET.items():
                add(x, y, q, float(c), kind, d["budget"][x][q][:, j], d["budget"][y][q][:, j])
    return pd.DataFrame(rows)
