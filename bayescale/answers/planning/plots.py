"""The "What to run next" figure: candidates on the (N, D) plane, coloured by expected shrinkage."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from bayescale.core.laws import FLOPS_PER_PARAM_TOKEN


def plot_plan(result, *, runs=None) -> Figure:
    """Candidates on the ``(N, D)`` plane coloured by expected shrinkage; the plan marked.

    Parameters
    ----------
    result : Plan
        From :func:`bayescale.answers.planning.plan`.
    runs : pandas.DataFrame, optional
        The fitted runs (``N``, ``D``), drawn in grey for context.

    Returns
    -------
    matplotlib.figure.Figure
        One axis: candidates (circles, colour = expected relative narrowing of the target's
        interval when trained first), the chosen runs (black rings, numbered in plan order), the
        naive plan (crosses) and IsoFLOP lines of the candidate budgets.

    Examples
    --------
    >>> fig = plot_plan(plan(fit, target="nopt", budget=1e23, budget_new=1e20))  # doctest: +SKIP
    """
    cand = result.candidates
    fig = Figure(figsize=(7.0, 5.2), layout="constrained")
    ax = fig.add_subplot()
    if runs is not None and len(runs):
        ax.scatter(runs["N"], runs["D"], s=10, color="0.75", label="fitted runs", zorder=1)
    n_all = np.concatenate([cand["N"].to_numpy(), result.naive_runs["N"].to_numpy()])
    n_line = np.geomspace(n_all.min() / 1.5, n_all.max() * 1.5, 50)
    for c in np.unique(cand["C"]):
        ax.plot(n_line, c / (FLOPS_PER_PARAM_TOKEN * n_line), color="0.85", lw=0.8, zorder=0)
    shrink = 100.0 * cand["shrinkage"].to_numpy(dtype=float)
    finite = np.isfinite(shrink)
    norm = Normalize(vmin=0.0, vmax=max(float(np.nanmax(shrink)) if finite.any() else 1.0, 1e-9))
    cmap = colormaps["viridis"]
    sc = ax.scatter(cand["N"][finite], cand["D"][finite], c=shrink[finite], cmap=cmap, norm=norm,
                    s=45, edgecolor="none", zorder=2, label="candidates")
    fig.colorbar(sc, ax=ax, label="expected narrowing of the interval as the first run (%)")
    plan_runs = result.runs
    ax.scatter(plan_runs["N"], plan_runs["D"], s=160, facecolor="none", edgecolor="black",
               linewidth=1.5, zorder=3, label=f"plan ({len(plan_runs)} runs)")
    for i, (n, d) in enumerate(zip(plan_runs["N"], plan_runs["D"], strict=True), start=1):
        ax.annotate(str(i), (n, d), xytext=(6, 6), textcoords="offset points", fontsize=8)
    nv = result.naive_runs
    ax.scatter(nv["N"], nv["D"], marker="x", s=60, color="tab:red", zorder=3,
               label=f"naive plan ({len(nv)} runs)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("training tokens D")
    t = result.target
    ax.set_title(
        f"What to run next: {t['description']}\n"
        f"width {result.width_now:.3g} -> {result.width_after:.3g} (plan), "
        f"{result.width_after_naive:.3g} (naive), {t['unit']}",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="best")
    return fig
