"""Figures of a backtest: held-out runs against their intervals, calibration, reliability.

Each function takes a backtest result (:func:`bayescale.backtest`) or a calibration table
(:func:`bayescale.calibration`) and returns a new :class:`matplotlib.figure.Figure`; styles and
:func:`~bayescale.answers.plots.save_figure` are those of :mod:`bayescale.answers.plots`.

References
----------
Gneiting, T., Balabdaoui, F. & Raftery, A. E. (2007). Probabilistic forecasts, calibration and
sharpness. JRSS B 69(2) (PIT histograms, reliability).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from bayescale.answers.plots import COMPUTE_LABEL, LOSS_LABEL, _pct, _plain_log_axis, _sci
from bayescale.errors import InputError
from bayescale.scoring.calibration import coverage_by_level, pit_histogram

__all__ = ["plot_backtest", "plot_calibration", "plot_reliability"]


# --------------------------------------------------------------------------------------------
# Backtests
# --------------------------------------------------------------------------------------------


def _dodge(C, N, *, step_dex: float = 0.03) -> np.ndarray:
    """Spread runs that share a budget (within 1%) along the log-compute axis, ordered by N."""
    C = np.asarray(C, dtype=float)
    lc = np.log10(C)
    out = lc.copy()
    order = np.argsort(lc, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(lc[order]) > np.log10(1.01)) + 1)
    for g in groups:
        g = g[np.argsort(np.asarray(N, dtype=float)[g], kind="stable")]
        out[g] = lc[g] + (np.arange(len(g)) - (len(g) - 1) / 2) * step_dex
    return 10**out


def _interval_columns(table) -> list[str]:
    """Interval labels of a backtest table (``"90"`` for ``pi90_lower``), widest first."""
    labels = [c[2:-6] for c in table.columns if c.startswith("pi") and c.endswith("_lower")]
    return sorted(labels, key=float, reverse=True)


def plot_backtest(result, *, runs=None) -> Figure:
    """Held-out runs against their predictive intervals, by compute; training runs in grey.

    Each held-out run shows its predictive median (open diamond) with the widest and the
    narrowest central predictive intervals of the backtest (thin and thick error bars), and its
    observed loss (dot: green inside the widest interval, red outside). Runs that share a budget
    are spread slightly along the compute axis, smallest model on the left.

    Parameters
    ----------
    result : BacktestResult
        From :func:`bayescale.backtest`.
    runs : Runs or pandas.DataFrame, optional
        All runs of the backtest; the training runs (``C <= cutoff``) are drawn in grey.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_backtest(bs.backtest(runs, method="mle"), runs=runs)  # doctest: +SKIP
    """
    table = result.table
    labels = _interval_columns(table)
    if not labels:
        raise InputError("the backtest table has no predictive interval columns (pi<p>_lower)")
    wide, narrow = labels[0], labels[-1]
    x = _dodge(table["C"], table["N"])
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    if runs is not None and result.cutoff is not None:
        frame = getattr(runs, "frame", runs)
        train = frame[frame["C"] <= result.cutoff]
        ax.scatter(train["C"], train["loss"], s=14, color="0.65", lw=0,
                   label=f"training runs ({len(train)})", zorder=2)
    if result.cutoff is not None:  # a backtest of families has one cutoff per family
        ax.axvline(result.cutoff, color="0.3", ls="--", lw=1,
                   label=f"cutoff C = {_sci(result.cutoff)} FLOPs")
    med = table["median"].to_numpy()
    for lab, lw, cap in ((wide, 1.0, 2.5), (narrow, 3.0, 0)):
        lo, hi = table[f"pi{lab}_lower"].to_numpy(), table[f"pi{lab}_upper"].to_numpy()
        ax.errorbar(x, med, yerr=[med - lo, hi - med], fmt="none", ecolor="C0", elinewidth=lw,
                    capsize=cap, alpha=0.8, label=f"{lab}% predictive interval", zorder=3)
    ax.scatter(x, med, marker="D", s=22, facecolors="white", edgecolors="C0", lw=1,
               label="predictive median", zorder=4)
    loss = table["loss"].to_numpy()
    inside = (loss >= table[f"pi{wide}_lower"]) & (loss <= table[f"pi{wide}_upper"])
    inside = np.asarray(inside, dtype=bool)
    ax.scatter(x[inside], loss[inside], s=22, color="C2", edgecolors="k", lw=0.4, zorder=5,
               label=f"held out, inside {wide}% ({int(inside.sum())})")
    if (~inside).any():
        ax.scatter(x[~inside], loss[~inside], s=22, color="C3", edgecolors="k", lw=0.4,
                   zorder=5, label=f"held out, outside {wide}% ({int((~inside).sum())})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis)
    ax.set_xlabel(COMPUTE_LABEL)
    ax.set_ylabel(LOSS_LABEL)
    cov = ", ".join(f"{_pct(float(p))}: {c:.2f}" for p, c in sorted(result.coverage.items()))
    ax.set_title(f"Backtest of {result.card} ({result.method}): {result.n_test} held-out runs\n"
                 f"coverage {cov}", fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    handles, lbls = ax.get_legend_handles_labels()
    fig.legend(handles, lbls, loc="outside lower center", ncols=3, fontsize="small")
    return fig


def plot_calibration(table) -> Figure:
    """Calibration of predictive intervals: nominal against observed coverage.

    One line per method and held-out fraction; the diagonal is perfect calibration. When the
    table has ``n_test``, the band shows where 90% of observed coverages fall for perfectly
    calibrated intervals and the smallest number of held-out runs (binomial, independent runs),
    so departures inside it are noise.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`bayescale.calibration`: columns ``prob`` and ``coverage``, optionally
        ``method``, ``holdout_frac``, ``cutoff`` and ``n_test``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"prob": [0.5, 0.9], "coverage": [0.4, 0.8], "n_test": [9, 9]})
    >>> len(plot_calibration(t).axes[0].lines)
    2
    """
    from scipy import stats as sps

    missing = [c for c in ("prob", "coverage") if c not in getattr(table, "columns", [])]
    if missing:
        raise InputError(f"calibration table lacks column(s) {missing}; expected prob, coverage")
    keys = [k for k in ("method", "holdout_frac") if k in table.columns]
    groups = list(table.groupby(keys, sort=True)) if keys else [((), table)]
    fig = Figure(figsize=(5.6, 5.6), layout="constrained")
    ax = fig.add_subplot()
    grid = np.linspace(0.0, 1.0, 101)
    if "n_test" in table.columns:
        n = int(table["n_test"].min())
        lo = sps.binom.ppf(0.05, n, grid) / n
        hi = sps.binom.ppf(0.95, n, grid) / n
        ax.fill_between(grid, lo, hi, color="0.5", alpha=0.15, lw=0, step="mid",
                        label=f"90% range if calibrated (n = {n} runs)")
    ax.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="perfect calibration")
    for i, (key, g) in enumerate(groups):
        g = g.sort_values("prob")
        key = key if isinstance(key, tuple) else (key,)
        parts = dict(zip(keys, key, strict=True))
        label = []
        if "method" in parts:
            label.append(str(parts["method"]))
        if "holdout_frac" in parts:
            label.append(f"{_pct(float(parts['holdout_frac']))} held out")
        if "cutoff" in g.columns:
            label.append(f"C > {_sci(float(g['cutoff'].iloc[0]))}")
        ax.plot(g["prob"], g["coverage"], marker="o", color=f"C{i % 10}",
                label=", ".join(label) or "backtest")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("Nominal probability of the predictive interval")
    ax.set_ylabel("Observed coverage of held-out runs")
    ax.set_title("Calibration of extrapolations")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    return fig




def plot_reliability(result, *, bins: int = 10) -> Figure:
    """Calibration at every level: central-interval coverage against nominal, and the PIT.

    Left: for central predictive intervals at levels 5%..95%, the share of held-out runs inside
    (a calibrated forecast lies on the diagonal; below it, intervals are too narrow), with the
    band where 90% of coverages of a calibrated forecast fall for this many independent runs.
    Right: the histogram of the probability integral transforms (PIT, the predictive CDF at the
    observed loss): flat when calibrated, U-shaped when too narrow, piled on one side when the
    centre is biased (left: the runs came out lower than forecast).

    Parameters
    ----------
    result : BacktestResult
        A backtest whose table has a ``pit`` column.
    bins : int, default 10
        PIT histogram bins.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> res = SimpleNamespace(table=pd.DataFrame({"pit": [0.1, 0.4, 0.6, 0.95]}), card="x",
    ...                       method="bayes", n_test=4)
    >>> len(plot_reliability(res).axes)
    2
    """
    if "pit" not in result.table:
        raise InputError("the backtest table has no 'pit' column (a backtest of this version)")
    pit = result.table["pit"].to_numpy(float)
    n = pit.size
    levels = np.round(np.arange(0.05, 0.951, 0.05), 2)
    cov = coverage_by_level(pit, probs=tuple(levels))
    fig = Figure(figsize=(9.0, 4.2), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    lo = stats.binom.ppf(0.05, n, levels) / n
    hi = stats.binom.ppf(0.95, n, levels) / n
    ax.fill_between(levels, lo, hi, color="0.85", label=f"90% band, {n} calibrated runs")
    ax.plot([0, 1], [0, 1], color="0.4", lw=1, ls="--")
    ax.plot(levels, [cov[p] for p in levels], "o-", color="C0", ms=4, label="this backtest")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal probability of the central predictive interval")
    ax.set_ylabel("share of held-out runs inside")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(True, alpha=0.3)
    counts, edges = pit_histogram(pit, bins=bins)
    bx.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0", alpha=0.7,
           edgecolor="white")
    bx.axhline(n / bins, color="0.4", ls="--", lw=1, label="calibrated (uniform)")
    below = float(np.mean(pit < 0.5)) if n else float("nan")
    bx.set_xlabel("PIT: predictive CDF at the observed loss")
    bx.set_ylabel("held-out runs")
    bx.set_title(f"{_pct(below)} of runs below the predictive median", fontsize="small")
    bx.legend(loc="upper center", fontsize="small")
    fig.suptitle(f"Calibration of {result.card} ({result.method}) on {result.n_test} "
                 "held-out runs", fontsize="medium")
    return fig
