"""The one figure of a pooled fit: per-family frontiers with bands, and the contrast intervals."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bayescale.answers.allocation import optimal_draws
from bayescale.answers.contrast import contrast
from bayescale.core.stats import check_ci, interval
from bayescale.fits.families import family_labels, family_view
from bayescale.fits.layout import runs_of


def plot_families(fit, *, budget: float | None = None, ci_prob: float = 0.9,
                  ci_kind: str = "eti") -> Figure:
    """Per-family compute-optimal frontiers on one axis, and the pairwise loss contrasts.

    Left: each family's runs and its frontier ``L*(C)`` (posterior median and ``ci_prob`` band),
    from a third of a decade below the smallest fitted budget to 100x beyond the largest. Right:
    for each pair of families, the posterior median and ``ci_prob`` interval of the difference of
    compute-optimal losses at ``budget``, annotated with ``P(X reaches the lower loss)``.

    Parameters
    ----------
    fit : xarray.DataTree
        A pooled fit.
    budget : float, optional
        Budget (FLOPs) of the contrasts (default: 100x the largest fitted run).
    ci_prob : float, default 0.9
        Probability of the bands and intervals.
    ci_kind : {"eti", "hdi"}, default "eti"
        Interval kind.

    Returns
    -------
    matplotlib.figure.Figure
    """

    check_ci(ci_prob, ci_kind)
    runs = runs_of(fit)
    fam = fit["constant_data"]["run_family"].to_numpy().astype(str)
    c_lo, c_hi = float(runs["C"].min()), float(runs["C"].max())
    budget = 100 * c_hi if budget is None else float(budget)
    grid = np.logspace(np.log10(c_lo) - 1 / 3, np.log10(max(budget, c_hi)) + 0.3, 80)
    fig = Figure(figsize=(13, 5.0), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=(1.4, 1))
    ax.axvspan(c_lo, c_hi, color="0.93", zorder=0, label="fitted compute range")
    for i, lab in enumerate(family_labels(fit)):
        color = f"C{i}"
        loss = optimal_draws(family_view(fit, lab), budgets=grid)["loss_opt"].to_numpy()
        lo, hi = interval(loss, ci_prob=ci_prob, ci_kind=ci_kind).T
        ax.fill_between(grid, lo, hi, color=color, alpha=0.25, lw=0)
        ax.plot(grid, np.median(loss, axis=0), color=color, lw=1.8, label=f"{lab}: L*(C)")
        mine = fam == lab
        ax.scatter(runs["C"][mine], runs["loss"][mine], color=color, s=14, edgecolors="k",
                   linewidths=0.3, zorder=3)
    ax.axvline(budget, color="0.4", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C = 6ND (FLOPs)")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(f"Per-family frontiers (median, {round(ci_prob * 100, 6):g}% {ci_kind} band)")
    ax.legend(fontsize=8)

    table = contrast(fit, budgets=[budget], ci_prob=ci_prob, ci_kind=ci_kind)
    rows = table[table["quantity"] == "loss_opt"].reset_index(drop=True)
    y = np.arange(len(rows))[::-1]
    bx.axvline(0, color="0.5", lw=1)
    bx.errorbar(rows["median"], y, xerr=[rows["median"] - rows["lower"],
                                          rows["upper"] - rows["median"]],
                fmt="o", color="k", capsize=3)
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        bx.annotate(f"P({r['family_x']} lower) = {r['p_x_below_y']:.2f}", (r["upper"], yi),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    bx.set_yticks(y, rows["pair"])
    bx.set_xlabel(f"L*(X) - L*(Y) at C = {budget:.3g} FLOPs (nats)")
    bx.set_title("Contrasts (below 0: X reaches the lower loss)")
    lo, hi = float(rows["lower"].min()), float(rows["upper"].max())
    span = max(hi - lo, 1e-6)
    bx.set_xlim(min(lo, 0) - 0.1 * span, max(hi, 0) + 0.6 * span)
    return fig
