"""Compute-optimal allocation under ``C = 6 N D``, per posterior draw, and its inverse question.

For every posterior draw and budget ``C`` the loss-minimising split ``(N*, D*)`` is found in closed
form (both two-variable laws have one) or, for any other law, by a vectorised golden-section search
on ``log N`` along the iso-FLOP line. Summaries over draws give ``N*``, ``D*``, ``D*/N*`` and the
loss ``L*(C)`` with intervals, and the exponents ``a``, ``b`` of ``N* ~ C^a`` and ``D* ~ C^b``.

The inverse question, :func:`compute_for_target`, asks for the smallest budget at which a run
trained at one concrete plan (the posterior-median optimal split) reaches a target loss with a
given probability.

In closed form ``log N*`` is affine in ``log C`` per draw, so quantiles of ``N*``, ``D*`` and
``D*/N*`` all come from one selection of order statistics of ``log N*``.

References
----------
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models. arXiv:2203.15556,
Appendix D.2 and Table 3.
Kaplan, J. et al. (2020). Scaling Laws for Neural Language Models. arXiv:2001.08361, Sec. 6.
Besiroglu, T. et al. (2024). Chinchilla Scaling: A replication attempt. arXiv:2404.10102.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from bayescale.errors import InputError
from bayescale.laws import FLOPS_PER_PARAM_TOKEN, Law
from bayescale.posterior import card_of
from bayescale.prediction import CI_BOUNDS, _noise_cdf, law_params, loss_block, run_blocks
from bayescale.stats import (
    _hdi_sorted,
    _quantiles_monotone,
    check_ci,
    interval_summary,
    median_interval,
)

METHODS = ("auto", "closed", "numeric")
_LOG6 = float(np.log(FLOPS_PER_PARAM_TOKEN))
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


# --------------------------------------------------------------------------------------------
# Per-draw optimum
# --------------------------------------------------------------------------------------------


def _log_params(law: Law, params: Mapping) -> dict:
    """Parameters with amplitudes as ``log_<name>`` float arrays (natural names converted)."""
    out = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    for amp in law.amplitudes:
        if f"log_{amp.name}" not in out and amp.name in out:
            out[f"log_{amp.name}"] = np.log(out.pop(amp.name))
        else:
            out.pop(amp.name, None)
    return out


def _require_optimum(law: Law) -> None:
    if not law.has_optimum:
        raise InputError(
            f"law {law.name!r} depends on {law.variables[0]} only: it has no compute-optimal "
            "allocation (use a card whose law depends on both N and D)"
        )


def _affine(law: Law, params: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Intercept ``g`` and slope ``a`` of the closed form ``log N* = g + a log(C / 6)``."""
    p = _log_params(law, params)
    if law.name == "chinchilla":
        alpha, beta = p["alpha"], p["beta"]
        s = alpha + beta
        return (np.log(alpha) + p["log_A"] - np.log(beta) - p["log_B"]) / s, beta / s
    if law.name == "kaplan":
        r = p["alpha_N"] / p["alpha_D"]
        return (np.log(r) + r * p["log_N_c"] - p["log_D_c"]) / (1.0 + r), 1.0 / (1.0 + r)
    raise InputError(f"law {law.name!r} has no closed-form optimum; use method='numeric'")


def _loss_at_optimum(law: Law, p: Mapping, log_n, log_d):
    """Law loss at the closed-form optimum, using its first-order condition (one exp)."""
    if law.name == "chinchilla":
        # At the optimum alpha A N^-alpha = beta B D^-beta, so L* = E + A N^-alpha (1 + alpha/beta).
        out = np.exp(p["log_A"] + np.log1p(p["alpha"] / p["beta"]) - p["alpha"] * log_n)
        out += p["E"]
        return out
    if law.name == "kaplan":
        # At the optimum D_c/D = r (N_c/N)^r, so L* = [(1 + r)(N_c/N)^r]^alpha_D (+ L_inf).
        r = p["alpha_N"] / p["alpha_D"]
        out = np.exp(p["alpha_D"] * (np.log1p(r) + r * p["log_N_c"]) - p["alpha_D"] * r * log_n)
        if "L_inf" in p:
            out += p["L_inf"]
        return out
    return law.loss(np.exp(log_n), np.exp(log_d), p)


def numeric_optimum(law: Law, params: Mapping, budgets) -> tuple[np.ndarray, np.ndarray]:
    """Numeric compute-optimal ``(N*, D*)``: golden-section search on ``log N`` along ``C = 6ND``.

    The loss along an iso-FLOP line is unimodal in ``log N`` for these laws (a monotone function
    of a sum of exponentials), so the search brackets ``1 <= N <= C/6`` and shrinks it 90 times,
    to the flatness limit of the loss (about ``1e-7`` relative in ``N*``). Used as the fallback
    for laws without a closed form and as the test oracle of the closed forms.

    Parameters
    ----------
    law : Law
        A two-variable law.
    params : Mapping
        Parameter values (natural or ``log_`` amplitudes); arrays of shape ``(S,)`` or scalars.
    budgets : array_like
        Compute budgets ``C`` in FLOPs, shape ``(B,)``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(N_opt, D_opt)`` of shape ``params_shape + (B,)``.

    Examples
    --------
    >>> from bayescale.laws import get_law
    >>> p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    >>> n, d = numeric_optimum(get_law("chinchilla"), p, [5.76e23])
    >>> round(float(n[0] / 1e9), 1), round(float(d[0] / 1e12), 2)
    (32.2, 2.98)
    """
    _require_optimum(law)
    p = {k: v[..., None] for k, v in _log_params(law, params).items()}
    log_c6 = np.log(np.asarray(budgets, dtype=float).reshape(-1)) - _LOG6
    shape = np.broadcast_shapes(*(v.shape for v in p.values()), log_c6.shape)
    log_c6 = np.broadcast_to(log_c6, shape)

    def f(x):
        return law.log_loss(np.exp(x), np.exp(log_c6 - x), p)

    lo = np.zeros(shape)
    hi = np.array(log_c6)
    x1 = hi - _GOLDEN * (hi - lo)
    x2 = lo + _GOLDEN * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(90):
        left = f1 < f2  # minimum in [lo, x2]
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        x_keep = np.where(left, x1, x2)
        f_keep = np.where(left, f1, f2)
        x_new = np.where(left, hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo))
        f_new = f(x_new)
        x1, f1 = np.where(left, x_new, x_keep), np.where(left, f_new, f_keep)
        x2, f2 = np.where(left, x_keep, x_new), np.where(left, f_keep, f_new)
    log_n = 0.5 * (lo + hi)
    return np.exp(log_n), np.exp(log_c6 - log_n)


def exponents(law: Law, params: Mapping) -> dict[str, np.ndarray]:
    """Exponents ``a``, ``b`` of ``N* ~ C^a`` and ``D* ~ C^b`` per draw (``a + b = 1``).

    Chinchilla: ``a = beta / (alpha + beta)``; Kaplan: ``a = alpha_D / (alpha_N + alpha_D)``.

    Parameters
    ----------
    law : Law
        A two-variable law.
    params : Mapping
        Parameter draws (arrays or scalars).

    Returns
    -------
    dict
        ``{"a": ..., "b": ...}``.

    Raises
    ------
    InputError
        For a single-variable law.

    References
    ----------
    Hoffmann et al. (2022), Eq. (4) and Table 2.

    Examples
    --------
    >>> from bayescale.laws import get_law
    >>> e = exponents(get_law("chinchilla"), dict(alpha=0.34, beta=0.28))
    >>> round(float(e["a"]), 3), round(float(e["b"]), 3)
    (0.452, 0.548)
    """
    _require_optimum(law)
    if law.name == "chinchilla":
        alpha, beta = np.asarray(params["alpha"], float), np.asarray(params["beta"], float)
        a = beta / (alpha + beta)
    elif law.name == "kaplan":
        an, ad = np.asarray(params["alpha_N"], float), np.asarray(params["alpha_D"], float)
        a = ad / (an + ad)
    else:
        raise InputError(f"law {law.name!r} has no closed-form exponents")
    return {"a": a, "b": 1.0 - a}


def _budgets(budgets) -> np.ndarray:
    try:
        c = np.asarray(budgets, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"budgets must be numbers, got {budgets!r}") from None
    if c.size == 0:
        raise InputError("budgets is empty: give at least one compute budget C")
    bad = np.flatnonzero(~(np.isfinite(c) & (c > 0)))
    if bad.size:
        shown = ", ".join(f"{i} ({c[i]:g})" for i in bad[:5])
        raise InputError(f"budgets must be finite and > 0 FLOPs; bad at index {shown}")
    return c


def _method(law: Law, method: str) -> str:
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "numeric" or (method == "auto" and law.name not in ("chinchilla", "kaplan")):
        return "numeric"
    return "closed-form"


def _log_optimum(law, params, log_c6, method):
    """``(log N*, L*)`` of shape ``(B, S)`` for budgets ``log(C/6)`` of shape ``(B,)``."""
    p = {k: v[None, :] for k, v in params.items()}
    if method == "closed-form":
        g, a = _affine(law, params)
        log_n = g[None, :] + a[None, :] * log_c6[:, None]
    else:
        n, _ = numeric_optimum(law, params, np.exp(log_c6 + _LOG6))
        log_n = np.log(n).T
    log_d = log_c6[:, None] - log_n
    if method == "closed-form":
        return log_n, _loss_at_optimum(law, p, log_n, log_d)
    return log_n, law.loss(np.exp(log_n), np.exp(log_d), p)


def optimal_draws(fit, *, budgets, method: str = "auto") -> xr.Dataset:
    """Compute-optimal allocation for every posterior draw and budget.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a two-variable law.
    budgets : array_like
        Compute budgets ``C`` in FLOPs.
    method : {"auto", "closed", "numeric"}, default "auto"
        Closed form (both built-in laws have one) or golden-section search; ``auto`` picks the
        closed form when it exists.

    Returns
    -------
    xarray.Dataset
        Dims ``sample`` (flattened chain x draw) and ``budget`` (coordinate: the budgets).
        Variables ``N_opt``, ``D_opt``, ``tokens_per_param`` (``D*/N*``) and ``loss_opt``
        (``L(N*, D*)``). Attrs ``method`` and ``card``.

    Raises
    ------
    InputError
        For a single-variable law, an unknown method or non-positive budgets.

    Examples
    --------
    >>> optimal_draws(fit, budgets=[1e21, 1e23])["N_opt"].shape  # doctest: +SKIP
    (2000, 2)
    """
    law, params, _ = law_params(fit)
    _require_optimum(law)
    c = _budgets(budgets)
    how = _method(law, method)
    log_c6 = np.log(c) - _LOG6
    log_n, loss = _log_optimum(law, params, log_c6, how)
    log_n, loss = log_n.T, loss.T
    dims = ("sample", "budget")
    data = {
        "N_opt": (dims, np.exp(log_n)),
        "D_opt": (dims, np.exp(log_c6[None, :] - log_n)),
        "tokens_per_param": (dims, np.exp(log_c6[None, :] - 2.0 * log_n)),
        "loss_opt": (dims, loss),
    }
    return xr.Dataset(
        data,
        coords={"sample": np.arange(log_n.shape[0]), "budget": c},
        attrs={"method": how, "card": card_of(fit).name},
    )


def optimal(fit, *, budgets, ci_prob: float = 0.9, ci_kind: str = "eti") -> xr.Dataset:
    """Posterior of the compute-optimal allocation at each budget, summarised over draws.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a two-variable law.
    budgets : array_like
        Compute budgets ``C`` in FLOPs (``C = 6 N D``).
    ci_prob : float, default 0.9
        Interval probability.
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density intervals.

    Returns
    -------
    xarray.Dataset
        Dims ``budget`` (coordinate: the budgets) and ``ci_bound``. For ``X`` in ``N_opt``,
        ``D_opt``, ``tokens_per_param`` and ``loss_opt``: ``X`` (median over draws) and ``X_ci``
        (interval). Scalars ``exponent_a`` and ``exponent_b`` (medians of the exponents of
        ``N* ~ C^a`` and ``D* ~ C^b``) with ``exponent_a_ci`` and ``exponent_b_ci``. Attrs
        ``ci_prob``, ``ci_kind``, ``method``, ``card``, ``n_draws``.

    Raises
    ------
    InputError
        For a single-variable law (``kaplan-N``, ``kaplan-D``) or non-positive budgets.

    References
    ----------
    Hoffmann et al. (2022), Appendix D.2; Besiroglu et al. (2024), Table 2.

    Examples
    --------
    >>> ds = optimal(fit, budgets=[5.76e23])  # doctest: +SKIP
    >>> float(ds["tokens_per_param"][0])  # doctest: +SKIP
    20.1
    """
    check_ci(ci_prob, ci_kind)
    law, params, _ = law_params(fit)
    _require_optimum(law)
    c = _budgets(budgets)
    how = _method(law, "auto")
    log_c6 = np.log(c) - _LOG6
    s = next(iter(params.values())).size
    names = ("N_opt", "D_opt", "tokens_per_param", "loss_opt")
    med = {k: np.empty(c.size) for k in names}
    ci = {k: np.empty((c.size, 2)) for k in names}
    probs = [0.5, (1 - ci_prob) / 2, (1 + ci_prob) / 2]
    def work(blk):
        lc = log_c6[blk][:, None]
        log_n, loss = _log_optimum(law, params, log_c6[blk], how)
        if ci_kind == "eti":
            funcs = [
                (np.exp, True),
                (lambda x, lc=lc: np.exp(lc - x), False),
                (lambda x, lc=lc: np.exp(lc - 2.0 * x), False),
            ]
            summaries = _quantiles_monotone(log_n, probs, funcs, overwrite=True)
            for k, q in zip(names[:3], summaries, strict=True):
                med[k][blk], ci[k][blk] = q[:, 0], q[:, 1:]
        else:
            srt = np.sort(log_n, axis=-1)
            for k, vals in (
                ("N_opt", np.exp(srt)),
                ("D_opt", np.exp(lc - srt)[:, ::-1]),
                ("tokens_per_param", np.exp(lc - 2.0 * srt)[:, ::-1]),
            ):
                med[k][blk] = np.median(vals, axis=-1)
                ci[k][blk] = _hdi_sorted(np.ascontiguousarray(vals), ci_prob)
        med["loss_opt"][blk], ci["loss_opt"][blk] = median_interval(
            loss, ci_prob=ci_prob, ci_kind=ci_kind, axis=-1, overwrite_input=True
        )

    run_blocks(work, c.size, s)
    data = {}
    for k in names:
        data[k] = ("budget", med[k])
        data[f"{k}_ci"] = (("budget", "ci_bound"), ci[k])
    for k, v in exponents(law, params).items():
        summ = interval_summary(v, ci_prob=ci_prob, ci_kind=ci_kind)
        data[f"exponent_{k}"] = ((), summ["median"])
        data[f"exponent_{k}_ci"] = ("ci_bound", np.array([summ["lo"], summ["hi"]]))
    attrs = {
        "ci_prob": float(ci_prob),
        "ci_kind": ci_kind,
        "method": how,
        "card": card_of(fit).name,
        "n_draws": int(s),
    }
    return xr.Dataset(data, coords={"budget": c, "ci_bound": list(CI_BOUNDS)}, attrs=attrs)


# --------------------------------------------------------------------------------------------
# Inverse question: compute needed for a target loss
# --------------------------------------------------------------------------------------------


def _plan(law, params, log_c6):
    """Posterior-median optimal ``log N`` per budget and the matching ``log D`` (``6ND = C``)."""
    how = _method(law, "auto")
    log_n, _ = _log_optimum(law, params, np.atleast_1d(log_c6), how)
    log_n_med = np.log(np.median(np.exp(log_n), axis=-1))  # the N_opt median of optimal()
    return log_n_med, np.atleast_1d(log_c6) - log_n_med


def _p_below(law, params, noise, log_n, log_d, log_t):
    """Predictive ``P(new run's loss < target)`` at plans ``(N, D)``, exact over the noise."""
    loss = loss_block(law, params, np.exp(log_n), np.exp(log_d))
    z = (log_t - np.log(loss)) / noise["sigma"][None, :]
    return _noise_cdf(z, noise).mean(axis=-1), loss


def compute_for_target(
    fit,
    *,
    target_loss: float,
    prob: float = 0.9,
    ci_prob: float = 0.9,
    ci_kind: str = "eti",
    c_range=(1e15, 1e30),
    random_seed=0,
) -> dict:
    """Smallest compute at which one planned run reaches a target loss with probability ``prob``.

    The run is trained at one plan a team would actually train: the posterior-median
    compute-optimal split ``N(C) = median N*(C)``, ``D(C) = C / (6 N(C))``. Its probability of
    landing below the target is the posterior predictive one (law uncertainty and run noise),
    computed exactly per draw from the noise CDF. (Letting each draw sit at its own optimum would
    assume the optimum is known and overstate the probability.) A log-spaced scan of ``c_range``
    finds the first budget that reaches ``prob`` (so a non-monotone probability is handled) and
    bisection on ``log C`` refines it.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a two-variable law.
    target_loss : float
        Loss to reach (nats per token).
    prob : float, default 0.9
        Required probability that the run's loss is below the target.
    ci_prob : float, default 0.9
        Probability of the reported interval of the law's loss at the answer.
    ci_kind : {"eti", "hdi"}, default "eti"
        Interval kind.
    c_range : tuple of float, default (1e15, 1e30)
        Budgets searched, in FLOPs.
    random_seed : int, default 0
        Kept for a uniform API; the computation is exact and uses no random numbers.

    Returns
    -------
    dict
        ``target_loss``, ``prob``, ``C``, ``N``, ``D``, ``tokens_per_param``, ``p_at_C`` (the
        probability reached at ``C``), ``loss`` (``{"median", "lo", "hi"}`` of the law's loss at
        the plan), ``ci_prob``, ``ci_kind``.

    Raises
    ------
    InputError
        For bad options, a single-variable law, or a target that is not reached with ``prob``
        anywhere in ``c_range`` (the message gives the best probability and the loss floor).

    Examples
    --------
    >>> compute_for_target(fit, target_loss=2.0, prob=0.9)["C"]  # doctest: +SKIP
    3.1e+23
    """
    del random_seed  # exact computation: nothing is drawn
    check_ci(ci_prob, ci_kind)
    try:
        target_loss = float(target_loss)
        prob = float(prob)
        c_lo, c_hi = (float(v) for v in c_range)
    except (TypeError, ValueError):
        raise InputError(
            "target_loss and prob must be numbers and c_range a pair of numbers"
        ) from None
    if not (np.isfinite(target_loss) and target_loss > 0):
        raise InputError(f"target_loss must be finite and > 0, got {target_loss!r}")
    if not 0 < prob < 1:
        raise InputError(f"prob must be strictly between 0 and 1, got {prob!r}")
    if not (np.isfinite(c_hi) and 0 < c_lo < c_hi):
        raise InputError(f"c_range must be two increasing positive budgets, got {c_range!r}")
    law, params, noise = law_params(fit)
    _require_optimum(law)
    log_t = np.log(target_loss)

    grid = np.linspace(np.log(c_lo), np.log(c_hi), 121) - _LOG6
    log_n, log_d = _plan(law, params, grid)
    p_grid, _ = _p_below(law, params, noise, log_n, log_d, log_t)
    hit = np.flatnonzero(p_grid >= prob)
    if hit.size == 0:
        floor = ""
        for name in ("E", "L_inf"):
            if name in params:
                f = interval_summary(params[name], ci_prob=ci_prob, ci_kind=ci_kind)
                floor = (
                    f"; the loss floor {name} has posterior median {f['median']:.4g} "
                    f"({ci_kind}{ci_prob:g} {f['lo']:.4g}..{f['hi']:.4g})"
                )
        raise InputError(
            f"target unreachable: P(loss < {target_loss:g}) is at most {p_grid.max():.3g} "
            f"< {prob:g} for C in [{c_lo:.3g}, {c_hi:.3g}] FLOPs{floor}"
        )
    i = int(hit[0])
    if i == 0:
        x = grid[0]
    else:
        a, b = grid[i - 1], grid[i]  # P(a) < prob <= P(b)
        for _ in range(60):
            m = 0.5 * (a + b)
            ln, ld = _plan(law, params, m)
            if _p_below(law, params, noise, ln, ld, log_t)[0][0] >= prob:
                b = m
            else:
                a = m
        x = b
    ln, ld = _plan(law, params, x)
    p_at, loss = _p_below(law, params, noise, ln, ld, log_t)
    n, d = float(np.exp(ln[0])), float(np.exp(ld[0]))
    return {
        "target_loss": target_loss,
        "prob": prob,
        "C": float(np.exp(x + _LOG6)),
        "N": n,
        "D": d,
        "tokens_per_param": d / n,
        "p_at_C": float(p_at[0]),
        "loss": interval_summary(loss[0], ci_prob=ci_prob, ci_kind=ci_kind),
        "ci_prob": float(ci_prob),
        "ci_kind": ci_kind,
    }
