"""Candidate runs on IsoFLOP lines, the fitted ladder, and the naive plan of equal cost.

Candidates: ``n_levels`` IsoFLOP budgets ``C_k = budget_new / 10^(k * level_step_dex)``, each with
``n_sizes`` model sizes log-spaced from ``N*/8`` to ``8 N*`` around the posterior-median
compute-optimal size at ``C_k`` (the IsoFLOP design of Hoffmann et al. 2022, Sec. 3.2), and
``D = C / (6 N)``.

The ladder of the fitted runs: runs sorted by compute are split where consecutive budgets are
more than ``tol_dex`` decades apart; groups of at least 3 runs spanning at most ``2 tol_dex``
decades are the ladder's levels (IsoFLOP budgets, as in
:func:`bayescale.answers.plots.plot_isoflop`),
each at its median compute. Without any such group (runs not on IsoFLOP lines), the runs within
a quarter decade of the largest compute are the one level. The ladder ratio ``r`` is the median
ratio of consecutive levels (``10^0.5`` with one level) and its N grid is the set of sizes
trained at the top level.

The naive plan of equal cost ``c``, i.e. "one more budget of the same ladder": the next budget
``C_next = r * top level``; as many runs at ``C_next`` as ``c`` pays for, taken from the top
level's N grid nearest (in log N) to the posterior-median ``N*(C_next)``, with
``D = C_next / (6 N)``. When ``c < C_next`` not even one such run fits; the naive plan is then one
run of compute ``c`` at the grid size nearest to ``N*(c)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayescale.answers.allocation import _LOG6, _affine
from bayescale.answers.planning.view import PosteriorView
from bayescale.core.laws import FLOPS_PER_PARAM_TOKEN
from bayescale.errors import InputError


def median_nopt(view: PosteriorView, budgets) -> np.ndarray:
    """Posterior-median compute-optimal ``N*`` at each budget."""
    g, a = _affine(view.law, view.params)
    log_c6 = np.log(np.asarray(budgets, dtype=float)) - _LOG6
    return np.exp(np.median(g[None, :] + a[None, :] * log_c6[:, None], axis=1))


def candidates(
    view: PosteriorView,
    *,
    budget_new: float,
    n_levels: int = 4,
    level_step_dex: float = 0.5,
    n_sizes: int = 9,
    size_span: float = 8.0,
) -> pd.DataFrame:
    """Candidate runs ``(N, D, C)`` on IsoFLOP lines up to the budget for new runs.

    Returns
    -------
    pandas.DataFrame
        Columns ``N``, ``D``, ``C``, ``level`` (0 = the largest budget).
    """
    for name, v in (("n_levels", n_levels), ("n_sizes", n_sizes)):
        if int(v) != v or v < 1:
            raise InputError(f"{name} must be a positive integer, got {v!r}")
    if not (level_step_dex > 0 and size_span > 1):
        raise InputError("level_step_dex must be > 0 and size_span > 1")
    levels = budget_new / 10.0 ** (level_step_dex * np.arange(n_levels))
    centre = median_nopt(view, levels)
    rows = []
    for k, (c, n_opt) in enumerate(zip(levels, centre, strict=True)):
        sizes = n_opt * np.geomspace(1.0 / size_span, size_span, n_sizes)
        for n in sizes:
            rows.append({"N": n, "D": c / (FLOPS_PER_PARAM_TOKEN * n), "C": c, "level": k})
    return pd.DataFrame(rows)


def ladder(runs, *, tol_dex: float = 0.05) -> dict:
    """IsoFLOP levels of the fitted runs, their ratio and the N grid at the top level.

    Returns
    -------
    dict
        ``levels`` (budgets, ascending), ``ratio``, ``grid`` (sizes at the top level),
        ``next`` (``ratio * top level``).
    """
    c = np.asarray(runs["C"], dtype=float)
    n = np.asarray(runs["N"], dtype=float)
    order = np.argsort(c)
    lc = np.log10(c[order])
    groups = np.split(np.arange(lc.size), np.flatnonzero(np.diff(lc) > tol_dex) + 1)
    groups = [order[g] for g in groups if g.size >= 3 and lc[g[-1]] - lc[g[0]] <= 2 * tol_dex]
    if not groups:
        groups = [order[lc >= lc[-1] - 0.25]]
    levels = np.array([np.median(c[g]) for g in groups])
    ratio = float(np.median(levels[1:] / levels[:-1])) if levels.size > 1 else 10.0**0.5
    grid = np.unique(n[groups[-1]])
    return {"levels": levels, "ratio": ratio, "grid": grid, "next": float(levels[-1] * ratio)}


def naive_plan(
    view: PosteriorView, *, cost: float, tol_dex: float = 0.05
) -> tuple[pd.DataFrame, dict]:
    """The naive plan of equal cost: the next budget of the current ladder on its N grid.

    Returns
    -------
    tuple
        ``(runs, ladder)``: a DataFrame ``N, D, C`` and the :func:`ladder` description.
    """
    lad = ladder(view.runs, tol_dex=tol_dex)
    if not cost > 0:
        return pd.DataFrame({"N": [], "D": [], "C": []}, dtype=float), lad
    c_next = lad["next"]
    grid = lad["grid"]
    k = int(np.floor(cost / c_next * (1 + 1e-9)))
    if k >= 1:
        centre = median_nopt(view, [c_next])[0]
        pick = grid[np.argsort(np.abs(np.log(grid / centre)), kind="stable")[:k]]
        c = np.full(pick.size, c_next)
    else:
        centre = median_nopt(view, [cost])[0]
        pick = grid[[int(np.argmin(np.abs(np.log(grid / centre))))]]
        c = np.array([cost])
    pick = np.sort(pick)
    frame = pd.DataFrame({"N": pick, "D": c / (FLOPS_PER_PARAM_TOKEN * pick), "C": c})
    return frame, lad
