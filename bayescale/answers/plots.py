"""Figures of a fit: frontier, IsoFLOP curves, allocation, pair plot, residuals and backtests.

Every function takes a fit (or a backtest result) and returns a new
:class:`matplotlib.figure.Figure`, built without :mod:`matplotlib.pyplot`, so no global figure
state is touched and nothing opens a window. :func:`save_figure` writes PNG and SVG atomically.

Bands are credible intervals over posterior draws of the law (``ci_kind="eti"`` equal-tailed or
``"hdi"``), computed with :func:`bayescale.core.stats.interval`. Compute is ``C = 6 N D`` FLOPs and
loss
is in nats per token. Axes that span orders of magnitude are logarithmic.

References
----------
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models. arXiv:2203.15556
(IsoFLOP profiles, Fig. 3; compute-optimal frontier, Fig. 1).
Kaplan, J. et al. (2020). Scaling Laws for Neural Language Models. arXiv:2001.08361.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, Locator, LogLocator, NullFormatter

from bayescale.core.io import atomic_write
from bayescale.core.likelihood import draw_noise
from bayescale.core.stats import check_ci, interval
from bayescale.errors import InputError
from bayescale.fits.layout import card_of, draws, runs_of
from bayescale.fits.params import law_params
from bayescale.fits.view import per_family, read

MAX_DRAWS = 4000
"""Posterior draws used for bands (evenly thinned beyond this; deterministic)."""

BAND_ALPHAS = (0.35, 0.18, 0.1)
"""Band opacity by interval width rank (narrowest first)."""

PNG_DPI = 120
COMPUTE_LABEL = "Compute C = 6ND (FLOPs)"
LOSS_LABEL = "Final loss (nats/token)"
N_LABEL = "Parameters N"
D_LABEL = "Training tokens D"
LOGN_LABEL = r"$\log_{10}$ N (parameters)"

_PARAM_LABELS = {
    "E": "E (nats)",
    "A": "A",
    "B": "B",
    "alpha": r"$\alpha$",
    "beta": r"$\beta$",
    "N_c": r"$N_c$ (parameters)",
    "D_c": r"$D_c$ (tokens)",
    "alpha_N": r"$\alpha_N$",
    "alpha_D": r"$\alpha_D$",
    "L_inf": r"$L_\infty$ (nats)",
    "sigma": r"$\sigma$ (log loss)",
    "nu": r"$\nu$",
}

_REF_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
_REF_COLORS = ("#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _law_of(fit):
    """The fit's law: the card's, or a law ensemble's weighted mixture."""
    return read(fit).law


def _fit_label(fit) -> str:
    """How titles name the fit: ``"chinchilla card"`` or ``"law ensemble"``."""
    return read(fit).label


def _law_draws(fit, *, max_draws: int = MAX_DRAWS) -> dict[str, np.ndarray]:
    """Posterior draws of the law and noise parameters, evenly thinned to ``max_draws``.

    For a law ensemble: the mixture's draws (:func:`bayescale.answers.prediction.law_params`).
    """
    if read(fit).is_mixture:
        _, out, noise = law_params(fit)
        out = {**out, "sigma": noise["sigma"], **({"nu": noise["nu"]} if noise["nu"] is not None
                                                  else {})}
        n = len(out["sigma"])
        if n > max_draws:
            keep = np.linspace(0, n - 1, max_draws).round().astype(int)
            out = {k: v[keep] for k, v in out.items()}
        return out
    card = card_of(fit)
    post = fit["posterior"]
    names = [
        k
        for k in (*card.param_names, *card.noise_param_names)
        if k in post.data_vars
    ]
    names += [f"log_{a.name}" for a in card.law_spec.amplitudes if f"log_{a.name}" in post]
    out = draws(fit, var_names=names)
    n = len(next(iter(out.values())))
    if n > max_draws:
        keep = np.linspace(0, n - 1, max_draws).round().astype(int)
        out = {k: v[keep] for k, v in out.items()}
    return out


def _column(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each draw array as a column ``(S, 1)`` so it broadcasts against a query axis."""
    return {k: v[:, None] for k, v in params.items()}


def _require_optimum(fit, what: str):
    card = card_of(fit)
    if not card.law_spec.has_optimum:
        raise InputError(
            f"{what} needs a law of both N and D; card {card.name!r} uses law "
            f"{card.law!r}, which depends on {card.law_spec.variables[0]} only"
        )
    return card


def _check_probs(ci_probs, ci_kind: str) -> tuple[float, ...]:
    probs = tuple(sorted(float(p) for p in np.atleast_1d(ci_probs)))
    if not probs:
        raise InputError("ci_probs must hold at least one probability, got none")
    if len(probs) > len(BAND_ALPHAS):
        raise InputError(f"at most {len(BAND_ALPHAS)} bands can be drawn, got ci_probs={probs}")
    for p in probs:
        check_ci(p, ci_kind)
    return probs


def _check_budgets(budgets, *, default) -> np.ndarray:
    if budgets is None:
        return np.asarray(default, dtype=float)
    out = np.atleast_1d(np.asarray(budgets, dtype=float))
    if out.ndim != 1 or out.size == 0:
        raise InputError(f"budgets must be a non-empty 1-D sequence of FLOPs, got {budgets!r}")
    bad = ~(np.isfinite(out) & (out > 0))
    if bad.any():
        raise InputError(
            f"budgets must be positive finite FLOPs; bad values at positions "
            f"{np.flatnonzero(bad).tolist()}: {out[bad].tolist()}"
        )
    return np.sort(out)


def _sci(x: float) -> str:
    """Compact scientific notation: ``1e17``, ``5.76e23``."""
    mant, exp = f"{x:.3g}".split("e") if "e" in f"{x:.3g}" else (f"{x:.3g}", "0")
    return f"{mant}e{int(exp)}"


def _pct(p: float) -> str:
    return f"{round(p * 100, 6):g}%"


def _bands(ax, x, samples, *, probs, ci_kind, color, label_prefix="", median_label=None, **kw):
    """Median line and nested interval bands of ``samples`` (S, Q) over ``x``; returns median."""
    for rank, p in enumerate(sorted(probs, reverse=True)):
        lo, hi = np.moveaxis(interval(samples, ci_prob=p, ci_kind=ci_kind), -1, 0)
        alpha = BAND_ALPHAS[len(probs) - 1 - rank]
        ax.fill_between(
            x, lo, hi, color=color, alpha=alpha, linewidth=0,
            label=f"{label_prefix}{_pct(p)} {ci_kind.upper()} band", **kw,
        )
    med = np.median(samples, axis=0)
    ax.plot(x, med, color=color, lw=2, label=median_label or f"{label_prefix}posterior median")
    return med


class _NiceLogLocator(Locator):
    """Log-axis ticks at round mantissas, dense enough for at least 4 labels in view."""

    _MANTISSAS = (
        (1.0,),
        (1.0, 2.0, 5.0),
        (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
        (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0),
        tuple(np.round(np.arange(1.0, 10.0, 0.2), 1)),
    )

    def __call__(self):
        vmin, vmax = sorted(self.axis.get_view_interval())
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin, vmax):
        vmin = max(vmin, 1e-300)
        decades = np.arange(np.floor(np.log10(vmin)), np.ceil(np.log10(vmax)) + 1)
        for mant in self._MANTISSAS:
            ticks = np.array([m * 10.0**e for e in decades for m in mant])
            inside = ticks[(ticks >= vmin) & (ticks <= vmax)]
            if len(inside) >= 4:
                return inside
        return inside


def _plain_log_axis(axis) -> None:
    """A log axis labelled with plain numbers at round values (``2.5``, not ``2.5e0``)."""
    axis.set_major_locator(_NiceLogLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(LogLocator(base=10, subs="all"))
    axis.set_minor_formatter(NullFormatter())


def _log_n_colors(N):
    norm = Normalize(vmin=float(np.log10(N).min()), vmax=float(np.log10(N).max()) + 1e-9)
    return norm, colormaps["viridis"]


def _fitted_span(ax, lo, hi) -> None:
    ax.axvspan(lo, hi, color="0.5", alpha=0.08, lw=0, label="fitted range", zorder=0)


def _extent(values, pad: float) -> tuple[float, float]:
    lv = np.log10(np.asarray(values, dtype=float))
    return 10 ** (lv.min() - pad), 10 ** (lv.max() + pad)


def _short_source(source: str, width: int = 48) -> str:
    return source if len(source) <= width else source[: width - 1].rstrip() + "…"


def _isoflop_budgets(C, *, tol_dex: float = 0.05, max_budgets: int = 6) -> tuple[np.ndarray, bool]:
    """IsoFLOP budgets of the runs if they cluster, else 4 log-spaced budgets over their range.

    Sorting ``log10 C`` and splitting at gaps above ``tol_dex`` gives groups; a group is a budget
    when it holds three or more runs within ``2 tol_dex`` of each other. The runs cluster when
    there are at least two budgets and they hold 60% of the runs; at most ``max_budgets`` evenly
    spaced budgets are kept so the profiles stay readable.

    Returns
    -------
    (numpy.ndarray, bool)
        Budgets in FLOPs (ascending) and whether they came from clusters.
    """
    lc = np.sort(np.log10(np.asarray(C, dtype=float)))
    groups = np.split(lc, np.flatnonzero(np.diff(lc) > tol_dex) + 1)
    big = [g for g in groups if len(g) >= 3 and g[-1] - g[0] <= 2 * tol_dex]
    if len(big) >= 2 and sum(len(g) for g in big) >= 0.6 * len(lc):
        if len(big) > max_budgets:
            pick = np.linspace(0, len(big) - 1, max_budgets).round().astype(int)
            big = [big[i] for i in pick]
        return np.array([float(f"{10 ** float(np.median(g)):.3g}") for g in big]), True
    grid = 10 ** np.linspace(lc.min(), lc.max(), 4)
    return np.array([float(f"{b:.2g}") for b in grid]), False


# --------------------------------------------------------------------------------------------
# Figures of a fit
# --------------------------------------------------------------------------------------------


@per_family("dict")
def plot_frontier(fit, *, budgets=None, ci_probs=(0.5, 0.9), ci_kind: str = "eti") -> Figure:
    """Loss against compute: the runs and the compute-optimal frontier ``L*(C)`` with bands.

    The runs are coloured by ``log10 N``. The frontier is the loss at the compute-optimal
    allocation ``(N*(C), D*(C))`` of each posterior draw; its median and credible bands are drawn
    from a third of a decade below the smallest fitted budget to 100x beyond the largest, and the
    fitted compute range is shaded.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a law of both ``N`` and ``D`` (see :func:`bayescale.fit`).
    budgets : array_like, optional
        Compute budgets (FLOPs) at which to evaluate the frontier (default: 200 log-spaced).
    ci_probs : sequence of float, default (0.5, 0.9)
        Probabilities of the nested bands.
    ci_kind : {"eti", "hdi"}, default "eti"
        Interval kind.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    InputError
        If the law depends on one variable only, or the options are invalid.

    References
    ----------
    Hoffmann et al. (2022), Fig. 1 and Appendix D.2.

    Examples
    --------
    >>> fig = plot_frontier(post)  # doctest: +SKIP
    """
    _require_optimum(fit, "the compute-optimal frontier")
    probs = _check_probs(ci_probs, ci_kind)
    runs = runs_of(fit)
    c_lo, c_hi = float(runs["C"].min()), float(runs["C"].max())
    grid = _check_budgets(
        budgets, default=np.logspace(np.log10(c_lo) - 1 / 3, np.log10(c_hi) + 2, 200)
    )
    law = _law_of(fit)
    p = _column(_law_draws(fit))
    n_opt, d_opt = law.optimal(grid[None, :], p)
    loss_opt = law.loss(n_opt, d_opt, p)

    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    _fitted_span(ax, c_lo, c_hi)
    _bands(ax, grid, loss_opt, probs=probs, ci_kind=ci_kind, color="C3",
           median_label="frontier L*(C), posterior median")
    norm, cmap = _log_n_colors(runs["N"])
    sc = ax.scatter(
        runs["C"], runs["loss"], c=np.log10(runs["N"]), cmap=cmap, norm=norm, s=18,
        edgecolors="k", linewidths=0.3, label=f"runs ({len(runs)})", zorder=3,
    )
    fig.colorbar(sc, ax=ax, label=LOGN_LABEL)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis)
    ax.set_xlabel(COMPUTE_LABEL)
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title(f"Compute-optimal frontier ({_fit_label(fit)})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return fig


@per_family("dict")
def plot_isoflop(fit, *, budgets=None, ci_prob: float = 0.9, ci_kind: str = "eti") -> Figure:
    """IsoFLOP profiles: loss against model size at fixed compute, with N* and its interval.

    For each budget ``C`` the law's loss at ``D = C / (6 N)`` is drawn as a posterior median with
    a credible band, the runs within 12% of that budget are overlaid, and the compute-optimal size
    ``N*`` is marked at its median with its credible interval as a horizontal error bar.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a law of both ``N`` and ``D``.
    budgets : array_like, optional
        Budgets in FLOPs. Default: the IsoFLOP budgets of the runs when their compute values
        cluster, else 4 log-spaced budgets over the fitted range.
    ci_prob : float, default 0.9
        Probability of the bands and of the N* interval.
    ci_kind : {"eti", "hdi"}, default "eti"
        Interval kind.

    Returns
    -------
    matplotlib.figure.Figure

    References
    ----------
    Hoffmann et al. (2022), Approach 2 and Fig. 3.

    Examples
    --------
    >>> fig = plot_isoflop(post, budgets=[1e18, 1e19])  # doctest: +SKIP
    """
    _require_optimum(fit, "IsoFLOP profiles")
    check_ci(ci_prob, ci_kind)
    runs = runs_of(fit)
    default, _ = _isoflop_budgets(runs["C"])
    budgets = _check_budgets(budgets, default=default)
    law = _law_of(fit)
    p = _column(_law_draws(fit))
    n_opt, d_opt = law.optimal(budgets[None, :], p)
    l_opt = law.loss(n_opt, d_opt, p)
    n_ci = interval(n_opt, ci_prob=ci_prob, ci_kind=ci_kind)
    n_med = np.median(n_opt, axis=0)
    l_med = np.median(l_opt, axis=0)
    log_c = np.log10(runs["C"].to_numpy())

    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    colors = colormaps["plasma"](np.linspace(0.05, 0.8, len(budgets)))
    for j, (c, color) in enumerate(zip(budgets, colors, strict=True)):
        near = np.abs(log_c - np.log10(c)) <= 0.05
        span = [n_med[j] / 5.0, n_med[j] * 5.0, n_ci[j, 0], n_ci[j, 1], *runs["N"][near]]
        lo, hi = _extent(span, pad=0.2)
        n_grid = np.logspace(np.log10(lo), np.log10(hi), 120)
        curves = law.loss(n_grid[None, :], c / (6.0 * n_grid[None, :]), p)
        band = interval(curves, ci_prob=ci_prob, ci_kind=ci_kind)
        ax.fill_between(n_grid, band[:, 0], band[:, 1], color=color, alpha=0.2, lw=0)
        ax.plot(n_grid, np.median(curves, axis=0), color=color, lw=1.8,
                label=f"C = {_sci(c)} FLOPs")
        if near.any():
            ax.scatter(runs["N"][near], runs["loss"][near], color=color, s=20, edgecolors="k",
                       linewidths=0.4, zorder=3)
        ax.errorbar(
            n_med[j], l_med[j],
            xerr=[[n_med[j] - n_ci[j, 0]], [n_ci[j, 1] - n_med[j]]],
            fmt="D", color=color, mec="k", mew=0.6, ms=6, capsize=3, elinewidth=1.4, zorder=4,
        )
    # Legend proxies explaining the marks once, not once per budget.
    ax.fill_between([], [], color="0.6", alpha=0.4, label=f"{_pct(ci_prob)} {ci_kind.upper()} band")
    ax.scatter([], [], color="0.6", s=20, edgecolors="k", linewidths=0.4,
               label="runs within 12% of C")
    ax.errorbar([], [], xerr=[], fmt="D", color="0.6", mec="k", capsize=3,
                label=f"N* median and {_pct(ci_prob)} interval")
    ax.set_xscale("log")
    ax.set_xlabel(N_LABEL)
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title(f"IsoFLOP profiles ({_fit_label(fit)})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


@per_family("dict")
def plot_allocation(
    fit, *, budgets=None, ci_probs=(0.5, 0.9), ci_kind: str = "eti", tokens_per_param=True
) -> Figure:
    """Compute-optimal ``N*(C)``, ``D*(C)`` (and ``D*/N*``) with bands and published references.

    Reference lines apply the law's closed-form optimum to every reference of the model card that
    gives all the parameters it needs (e.g. Hoffmann et al. 2022 rounded and unrounded, and the
    Epoch replication, for the Chinchilla law).

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a law of both ``N`` and ``D``.
    budgets : array_like, optional
        Budgets in FLOPs (default: 200 log-spaced from the smallest fitted budget to 1e26 or 100x
        beyond the largest, whichever is larger).
    ci_probs : sequence of float, default (0.5, 0.9)
        Probabilities of the nested bands.
    ci_kind : {"eti", "hdi"}, default "eti"
        Interval kind.
    tokens_per_param : bool, default True
        Add a third panel with the tokens-per-parameter ratio ``D*/N*``.

    Returns
    -------
    matplotlib.figure.Figure

    References
    ----------
    Hoffmann et al. (2022), Table 3 and Appendix D.2; Besiroglu et al. (2024), arXiv:2404.10102.

    Examples
    --------
    >>> fig = plot_allocation(post)  # doctest: +SKIP
    """
    card = _require_optimum(fit, "compute-optimal allocation")
    probs = _check_probs(ci_probs, ci_kind)
    runs = runs_of(fit)
    c_lo, c_hi = float(runs["C"].min()), float(runs["C"].max())
    top = max(np.log10(c_hi) + 2, 26.0)
    grid = _check_budgets(budgets, default=np.logspace(np.log10(c_lo), top, 200))
    law = _law_of(fit)
    p = _column(_law_draws(fit))
    n_opt, d_opt = law.optimal(grid[None, :], p)
    panels = [("N*", N_LABEL, n_opt), ("D*", D_LABEL, d_opt)]
    if tokens_per_param:
        panels.append(("D*/N*", "Tokens per parameter D*/N*", d_opt / n_opt))
    refs = card.optimum_references()

    fig = Figure(figsize=(4.2 * len(panels), 4.6), layout="constrained")
    axes = fig.subplots(1, len(panels), sharex=True)
    for ax, (sym, ylabel, samples) in zip(axes, panels, strict=True):
        _fitted_span(ax, c_lo, c_hi)
        _bands(ax, grid, samples, probs=probs, ci_kind=ci_kind, color="C0")
        for k, ref in enumerate(refs):
            rn, rd = card.law_spec.optimal(grid, dict(ref.params))  # the card's law
            ref_y = {"N*": rn, "D*": rd, "D*/N*": rd / rn}[sym]
            ax.plot(grid, ref_y, color=_REF_COLORS[k % 5], ls=_REF_STYLES[k % 5], lw=1.5,
                    label=_short_source(ref.source, 60))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(COMPUTE_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{sym}(C)")
        ax.grid(True, which="major", alpha=0.3)
        if sym == "D*/N*":
            _plain_log_axis(ax.yaxis)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)),
               fontsize="small")
    fig.suptitle(f"Compute-optimal allocation ({_fit_label(fit)})")
    return fig


@per_family("dict")
def plot_pairs(fit, *, var_names=None) -> Figure:
    """Pair plot of the posterior: marginal histograms and pairwise scatter, lower triangle.

    Amplitudes (``A``, ``B``, ``N_c``, ``D_c``) are shown as ``log10`` (their posteriors span
    orders of magnitude and are near log-normal). Divergent draws, if any, are marked in red.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit.
    var_names : list of str, optional
        Parameters to show (default: the card's sampled law parameters).

    Returns
    -------
    matplotlib.figure.Figure
        ``k (k + 1) / 2`` axes for ``k`` parameters.

    Examples
    --------
    >>> fig = plot_pairs(post, var_names=["E", "alpha", "beta"])  # doctest: +SKIP
    """
    fit = read(fit).lead.tree  # an ensemble's laws differ in parameters: the lead member's
    card = card_of(fit)
    names = list(card.free_params) if var_names is None else list(var_names)
    post = fit["posterior"]
    missing = [v for v in names if v not in post.data_vars]
    if missing or not names:
        raise InputError(
            f"var_names {missing or names} not in the posterior; available: "
            f"{', '.join(v for v in post.data_vars if 'pivot' not in v)}"
        )
    raw = draws(fit, var_names=names)
    amps = {a.name for a in card.law_spec.amplitudes}
    values = {k: np.log10(v) if k in amps else v for k, v in raw.items()}
    labels = {
        k: rf"$\log_{{10}}$ {k}" if k in amps else _PARAM_LABELS.get(k, k) for k in names
    }
    diverging = None
    if "sample_stats" in fit.children and "diverging" in fit["sample_stats"]:
        diverging = fit["sample_stats"]["diverging"].to_numpy().reshape(-1).astype(bool)
        if not diverging.any():
            diverging = None
    n = len(next(iter(values.values())))
    keep = np.arange(n) if n <= MAX_DRAWS else np.linspace(0, n - 1, MAX_DRAWS).round().astype(int)
    k = len(names)

    size = max(1.9 * k, 4.0)
    fig = Figure(figsize=(size, size), layout="constrained")
    axes = fig.subplots(k, k, squeeze=False, sharex="col")
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                fig.delaxes(ax)
                continue
            x = values[xj]
            if i == j:
                ax.hist(x, bins=30, color="C0", alpha=0.7)
                ax.set_yticks([])
            else:
                ax.scatter(x[keep], values[yi][keep], s=3, alpha=0.25, color="C0", lw=0,
                           rasterized=True)
                if diverging is not None:
                    ax.scatter(x[diverging], values[yi][diverging], s=6, color="C3", lw=0,
                               rasterized=True)
                if j > 0:
                    ax.sharey(axes[i, 0])
            ax.tick_params(labelsize="x-small")
            ax.xaxis.get_major_locator().set_params(nbins=4)
            if i == k - 1:
                ax.set_xlabel(labels[xj])
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(labels[yi])
                ax.yaxis.get_major_locator().set_params(nbins=4)
            elif j > 0:
                ax.tick_params(labelleft=False)
    title = f"Posterior of the {card.name} card ({n} draws)"
    if diverging is not None:
        title += f"; {int(diverging.sum())} divergent in red"
    fig.suptitle(title)
    return fig


@per_family("dict")
def plot_residuals(fit, *, random_seed=0, ci_probs=(0.5, 0.9)) -> Figure:
    """Residuals of log loss against compute, with the posterior-predictive noise band.

    A residual is the observed log loss minus the posterior median of the law's log loss at that
    run (about the relative error of the law: 0.01 is 1%). The bands are intervals of the noise
    term alone, ``sigma * eps`` with ``eps`` drawn from the card's noise family over the
    posterior of ``sigma`` (and ``nu``); runs outside the widest band are circled.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit.
    random_seed : int, default 0
        Seed of the noise draws.
    ci_probs : sequence of float, default (0.5, 0.9)
        Probabilities of the predictive bands (equal-tailed).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_residuals(post, random_seed=1)  # doctest: +SKIP
    """

    card = card_of(fit)
    probs = _check_probs(ci_probs, "eti")
    runs = runs_of(fit)
    law = _law_of(fit)
    prm = _law_draws(fit)
    extra = {v: runs[v].to_numpy()[None, :] for v in law.extra_variables if v in runs}
    mu = law.log_loss(runs["N"].to_numpy()[None, :], runs["D"].to_numpy()[None, :], _column(prm),
                      **extra)
    resid = np.log(runs["loss"].to_numpy()) - np.median(mu, axis=0)
    rng = np.random.default_rng(random_seed)
    noise = prm["sigma"] * draw_noise(rng, prm["sigma"].shape, family=card.family,
                                      nu=prm.get("nu"))
    C = runs["C"].to_numpy()
    x = np.array(_extent(C, pad=0.1))

    fig = Figure(figsize=(7.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    for rank, prob in enumerate(sorted(probs, reverse=True)):
        lo, hi = interval(noise, ci_prob=prob, ci_kind="eti")
        ax.fill_between(x, lo, hi, color="C1", alpha=BAND_ALPHAS[len(probs) - 1 - rank], lw=0,
                        label=f"{_pct(prob)} predictive noise band ({card.family})")
    ax.axhline(0.0, color="k", lw=1)
    lo, hi = interval(noise, ci_prob=max(probs), ci_kind="eti")
    out = (resid < lo) | (resid > hi)
    norm, cmap = _log_n_colors(runs["N"])
    sc = ax.scatter(C, resid, c=np.log10(runs["N"]), cmap=cmap, norm=norm, s=18,
                    edgecolors="k", linewidths=0.3, zorder=3, label=f"runs ({len(runs)})")
    if out.any():
        ax.scatter(C[out], resid[out], s=70, facecolors="none", edgecolors="C3", lw=1.2,
                   zorder=4, label=f"outside {_pct(max(probs))} band ({int(out.sum())})")
    fig.colorbar(sc, ax=ax, label=LOGN_LABEL)
    ax.set_xscale("log")
    ax.set_xlim(*x)
    ax.set_xlabel(COMPUTE_LABEL)
    ax.set_ylabel("Residual log loss (observed − law median)\n0.01 ≈ 1% of the loss")
    ax.set_title(f"Residuals ({_fit_label(fit)})")
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")
    return fig


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


FIGURES = ("frontier", "isoflop", "allocation", "pairs", "residuals")
"""The figures of a fit, in the order ``bayescale plot`` and the report draw them."""
_NEED_OPTIMUM = ("frontier", "isoflop", "allocation")


def _safe(label) -> str:
    """A family label as a file-name part (anything but letters, digits, ``.``, ``_`` -> ``_``)."""
    return re.sub(r"[^\w.]+", "_", str(label))


def figure_makers(fit, *, budgets=None, ci_prob: float = 0.9, ci_kind: str = "eti",
                  random_seed: int = 0) -> dict:
    """Every figure of a fit, as ``{name: callable returning a Figure}`` (drawn on demand).

    Figures of the compute-optimal frontier need a law with an optimum (not ``kaplan-N`` or
    ``kaplan-D``) and are left out otherwise. A pooled fit gets each figure per family, named
    ``<figure>-<family>`` (each family's runs and posterior, not one line through all of them).

    Parameters
    ----------
    fit : xarray.DataTree
        Any fit.
    budgets : sequence of float, optional
        Budgets of the allocation figure.
    ci_prob : float, default 0.9
        Interval of the IsoFLOP figure.
    ci_kind : {"eti", "hdi"}
        Interval kind.
    random_seed : int, default 0
        Seed of the residual figure's predictive draws.

    Returns
    -------
    dict of str to callable
    """
    view = read(fit)
    if view.is_pooled:
        out = {}
        for lab, tree in view.family_trees().items():
            for name, make in figure_makers(tree, budgets=budgets, ci_prob=ci_prob,
                                            ci_kind=ci_kind, random_seed=random_seed).items():
                out[f"{name}-{_safe(lab)}"] = make
        return out
    makers = {
        "frontier": lambda: plot_frontier(fit, ci_kind=ci_kind),
        "isoflop": lambda: plot_isoflop(fit, ci_prob=ci_prob, ci_kind=ci_kind),
        "allocation": lambda: plot_allocation(fit, budgets=budgets, ci_kind=ci_kind),
        "pairs": lambda: plot_pairs(fit),
        "residuals": lambda: plot_residuals(fit, random_seed=random_seed),
    }
    if not view.law.has_optimum:
        makers = {k: v for k, v in makers.items() if k not in _NEED_OPTIMUM}
    return makers


def save_figure(fig: Figure, out_dir, name: str) -> list[Path]:
    """Write ``name.png`` (120 dpi) and ``name.svg`` into ``out_dir``, atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; it is cleared afterwards to free its memory.
    out_dir : str or Path
        Destination folder (created if missing).
    name : str
        File stem: letters, digits, ``-``, ``_`` and ``.`` only.

    Returns
    -------
    list of Path
        The PNG and SVG paths.

    Examples
    --------
    >>> import tempfile
    >>> fig = Figure()
    >>> _ = fig.add_subplot().plot([1, 2], [3, 4])
    >>> [p.suffix for p in save_figure(fig, tempfile.mkdtemp(), "demo")]
    ['.png', '.svg']
    """
    import re


    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name[0] == ".":
        raise InputError(
            f"figure name must use letters, digits, '-', '_' or '.' and not start with '.', "
            f"got {name!r}"
        )
    out_dir = Path(out_dir)
    paths = []
    for fmt in ("png", "svg"):
        paths.append(
            atomic_write(
                out_dir / f"{name}.{fmt}",
                lambda tmp, fmt=fmt: fig.savefig(
                    tmp, format=fmt, dpi=PNG_DPI, metadata=_metadata(fmt)
                ),
            )
        )
    fig.clear()
    return paths


def _metadata(fmt: str) -> dict:
    """Reproducible files: no creation date in PNG or SVG."""
    if fmt == "svg":
        return {"Date": None}
    return {"Software": "bayescale"}
