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

from bayescale.answers.prediction import CI_BOUNDS, _noise_cdf, loss_block, run_blocks
from bayescale.core.laws import FLOPS_PER_PARAM_TOKEN, Law, grid_golden_min
from bayescale.core.stats import (
    _hdi_sorted,
    _quantiles_monotone,
    check_ci,
    interval_summary,
    median_interval,
)
from bayescale.errors import InputError
from bayescale.fits.layout import card_of, runs_of
from bayescale.fits.params import law_params
from bayescale.fits.view import per_family, read

METHODS = ("auto", "closed", "numeric")
_LOG6 = float(np.log(FLOPS_PER_PARAM_TOKEN))
_GRID = 65  # grid points bracketing the numeric optimum (about 0.3 decades apart at C = 1e24)


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
    if law.affine is not None:
        return law.affine(_log_params(law, params))
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

    See :meth:`bayescale.core.laws.Law.numeric_log_n`: a grid brackets the global minimum (a law
    need
    not be unimodal along the iso-FLOP line), then golden-section steps refine it. Used as the
    fallback for laws without a closed form and as the test oracle of the closed forms.

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
    >>> from bayescale.core.laws import get_law
    >>> p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    >>> n, d = numeric_optimum(get_law("chinchilla"), p, [5.76e23])
    >>> round(float(n[0] / 1e9), 1), round(float(d[0] / 1e12), 2)
    (32.2, 2.98)
    """
    _require_optimum(law)
    p = {k: v[..., None] for k, v in _log_params(law, params).items()}
    log_c6 = np.log(np.asarray(budgets, dtype=float).reshape(-1)) - _LOG6
    log_n = law.numeric_log_n(p, log_c6, grid=_GRID, steps=90)
    return np.exp(log_n), np.exp(log_c6 - log_n)


def exponents(law: Law, params: Mapping) -> dict[str, np.ndarray]:
    """Exponents ``a``, ``b`` of ``N* ~ C^a`` and ``D* ~ C^b`` per draw (``a + b = 1``).

    Chinchilla: ``a = beta / (alpha + beta)``; Kaplan: ``a = alpha_D / (alpha_N + alpha_D)``.
    Laws without a closed-form optimum give the large-budget limit (``Law.exponent_a``).

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
    >>> from bayescale.core.laws import get_law
    >>> e = exponents(get_law("chinchilla"), dict(alpha=0.34, beta=0.28))
    >>> round(float(e["a"]), 3), round(float(e["b"]), 3)
    (0.452, 0.548)
    """
    _require_optimum(law)
    if law.exponent_a is None:
        raise InputError(f"law {law.name!r} has no closed-form exponents")
    a = np.asarray(law.exponent_a(params), dtype=float)
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
    if method == "numeric" or (method == "auto" and law.affine is None):
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


@per_family("stack")
def optimal(
    fit, *, budgets, ci_prob: float = 0.9, ci_kind: str = "eti", inference_tokens=None
) -> xr.Dataset:
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
    inference_tokens : float, optional
        Tokens ``T`` the model will serve: the budget then pays for training and inference,
        ``6ND + 2NT = C`` (Sardana et al. 2024), solved per draw by
        :func:`inference_optimum`; adds ``train_fraction`` (share of ``C`` spent on training)
        and attr ``inference_tokens``. None or 0: the training-only optimum.

    Returns
    -------
    xarray.Dataset
        Dims ``budget`` (coordinate: the budgets) and ``ci_bound``. For ``X`` in ``N_opt``,
        ``D_opt``, ``tokens_per_param`` and ``loss_opt``: ``X`` (median over draws) and ``X_ci``
        (interval). Scalars ``exponent_a`` and ``exponent_b`` (medians of the exponents of
        ``N* ~ C^a`` and ``D* ~ C^b``) with ``exponent_a_ci`` and ``exponent_b_ci``. Per
        budget ``extrapolation_C`` (decades of compute beyond the fitted runs) and
        ``validated`` (within the distance the fit's rolling backtests validated). Attrs
        ``ci_prob``, ``ci_kind``, ``method``, ``card``, ``n_draws``, ``validated_decades``.

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
    if inference_tokens is not None and _tokens(inference_tokens) > 0:
        return _inference_optimal(
            fit, budgets, _tokens(inference_tokens), ci_prob=ci_prob, ci_kind=ci_kind
        )
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
    data.update(_honesty(fit, c, attrs))
    return xr.Dataset(data, coords={"budget": c, "ci_bound": list(CI_BOUNDS)}, attrs=attrs)


def _honesty(fit, budgets, attrs) -> dict:
    """``extrapolation_C`` and ``validated`` per budget; ``validated_decades`` into ``attrs``.

    The distance is ``max(0, log10(C / largest fitted C))``; a budget is validated when the
    fit's rolling backtests forecast that far (:func:`bayescale.ensemble.validated_decades`;
    0 for a single card).
    """
    view = read(fit)
    c_max = float(np.max(fit["constant_data"]["C"].to_numpy()))
    dist = np.maximum(np.log10(budgets / c_max), 0.0)
    valid = view.validated_decades
    attrs["validated_decades"] = valid
    if view.is_mixture:
        attrs["card"] = view.name
    return {"extrapolation_C": ("budget", dist), "validated": ("budget", dist <= valid + 1e-9)}


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


@per_family("dict")
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

    Two answers are plain statements rather than budgets. When the fitted runs already reach the
    target (an observed run has ``loss <= target_loss``, or the plan at the smallest budget
    searched already reaches ``prob``), the result has ``already_reached=True``, names the
    smallest fitted run by compute that reaches the target (``reached_by``) and has
    ``C = N = D = None``: the floor of the search is not a budget. When the target is reached
    only beyond ``c_range`` (the probability reaches ``prob`` at some larger budget), the result
    has ``beyond_search=True``, the ceiling in ``search_ceiling`` and no budget either.

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
        the plan), ``ci_prob``, ``ci_kind``, ``already_reached``, ``beyond_search`` (bools),
        ``reached_by`` (``{"run", "N", "D", "C", "loss"}`` of the smallest fitted run reaching
        the target, or None), ``search_floor``, ``search_ceiling`` and ``statement`` (one plain
        sentence for the two edge answers, else None). For the edge answers ``C``, ``N``, ``D``,
        ``tokens_per_param``, ``p_at_C`` and ``loss`` are None.

    Raises
    ------
    InputError
        For bad options, a single-variable law, or a target that is not reached with ``prob``
        at any budget, however large (below the loss floor: the message gives the best
        probability and the floor).

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
    edge = {
        "target_loss": target_loss,
        "prob": prob,
        "C": None,
        "N": None,
        "D": None,
        "tokens_per_param": None,
        "p_at_C": None,
        "loss": None,
        "ci_prob": float(ci_prob),
        "ci_kind": ci_kind,
        "already_reached": False,
        "beyond_search": False,
        "reached_by": _smallest_run_reaching(fit, target_loss),
        "search_floor": c_lo,
        "search_ceiling": c_hi,
        "statement": None,
    }
    if edge["reached_by"] is not None or (hit.size and hit[0] == 0):
        run = edge["reached_by"]
        if run is not None:
            text = (
                f"already reached: the fitted run {run['run']} (N = {run['N']:.3g}, "
                f"D = {run['D']:.3g}, C = {run['C']:.3g} FLOPs) has loss {run['loss']:.4g} "
                f"<= {target_loss:g}; no extra compute is needed"
            )
        else:
            text = (
                f"already reached: P(loss < {target_loss:g}) = {p_grid[0]:.3g} >= {prob:g} "
                f"already at {c_lo:.3g} FLOPs, the smallest budget searched; no budget is implied"
            )
        return {**edge, "already_reached": True, "statement": text}
    if hit.size == 0:
        far = np.log(np.array([c_hi * 1e10, c_hi * 1e30])) - _LOG6
        p_far, _ = _p_below(law, params, noise, *_plan(law, params, far), log_t)
        if np.max(p_far) >= prob:
            text = (
                f"beyond the search: P(loss < {target_loss:g}) is at most {p_grid.max():.3g} "
                f"< {prob:g} up to {c_hi:.3g} FLOPs, the largest budget searched; the target "
                "needs more compute than that"
            )
            return {**edge, "beyond_search": True, "statement": text}
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
        **edge,
        "C": float(np.exp(x + _LOG6)),
        "N": n,
        "D": d,
        "tokens_per_param": d / n,
        "p_at_C": float(p_at[0]),
        "loss": interval_summary(loss[0], ci_prob=ci_prob, ci_kind=ci_kind),
    }


def _smallest_run_reaching(fit, target_loss: float) -> dict | None:
    """The fitted run of least compute whose observed loss is at most ``target_loss``."""

    try:
        runs = runs_of(fit)
    except KeyError:
        return None
    reached = runs[runs["loss"] <= target_loss]
    if reached.empty:
        return None
    row = reached.sort_values("C", kind="stable").iloc[0]
    name = str(row["run"]) if "run" in reached else f"#{int(reached['C'].idxmin()) + 1}"
    return {
        "run": name,
        "N": float(row["N"]),
        "D": float(row["D"]),
        "C": float(row["C"]),
        "loss": float(row["loss"]),
    }


# --------------------------------------------------------------------------------------------
# Inference-aware optimum (Sardana et al. 2024)
# --------------------------------------------------------------------------------------------


def _inference_log_n(law: Law, p: Mapping, log_c, tokens: float, *, grid: int, steps: int):
    """Per-element ``log N`` minimising ``L(N, D)`` on ``6ND + 2NT = C`` (arrays broadcast).

    ``D = C / (6N) - T / 3``; the search spans ``1 <= N <= C / (6 + 2T)`` (at least one token),
    first on a grid of ``grid`` points (global bracket), then ``steps`` golden-section steps.
    """
    shape = np.broadcast_shapes(np.shape(log_c), *(np.shape(v) for v in p.values()))
    log_c = np.broadcast_to(log_c, shape)
    t3 = tokens / 3.0

    def f(x, q=p, lc=log_c):
        d = np.exp(lc - _LOG6 - x) - t3
        return law.log_loss(np.exp(x), np.maximum(d, 1e-300), q)

    hi_all = log_c - np.log(FLOPS_PER_PARAM_TOKEN + 2.0 * tokens)
    return grid_golden_min(
        f, lambda xs: f(xs, {k: np.asarray(v)[..., None] for k, v in p.items()},
                        log_c[..., None]),
        hi_all, grid=grid, steps=steps,
    )


def _tokens(inference_tokens) -> float:
    try:
        t = float(inference_tokens)
    except (TypeError, ValueError):
        raise InputError(f"inference_tokens must be a number, got {inference_tokens!r}") from None
    if not (np.isfinite(t) and t >= 0):
        raise InputError(f"inference_tokens must be finite and >= 0, got {inference_tokens!r}")
    return t


def inference_optimum(law: Law, params: Mapping, budgets, *, inference_tokens) -> tuple:
    """Loss-minimising ``(N*, D*)`` under training plus inference compute ``6ND + 2NT = C``.

    Training costs ``6ND`` FLOPs and serving ``T`` tokens ``2NT`` (a forward pass per token), so
    for a total budget ``C`` the tokens are ``D = C / (6N) - T / 3``. The loss along that line is
    minimised per draw in ``log N`` (grid bracket, then golden section as in
    :func:`numeric_optimum`). ``T = 0`` is the training-only optimum.

    Parameters
    ----------
    law : Law
        A two-variable law.
    params : Mapping
        Parameter draws (natural or ``log_`` amplitudes), arrays of shape ``(S,)`` or scalars.
    budgets : array_like
        Total compute budgets ``C`` in FLOPs, shape ``(B,)``.
    inference_tokens : float
        Tokens ``T`` the model will serve over its lifetime.

    Returns
    -------
    tuple of numpy.ndarray
        ``(N_opt, D_opt)`` of shape ``params_shape + (B,)``.

    References
    ----------
    Sardana, N., Portes, J., Doubov, S. & Frankle, J. (2024). Beyond Chinchilla-Optimal:
    Accounting for Inference in Language Model Scaling Laws. arXiv:2401.00448, Sec. 2.

    Examples
    --------
    >>> from bayescale.core.laws import get_law
    >>> p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    >>> n0, _ = inference_optimum(get_law("chinchilla"), p, [5.76e23], inference_tokens=0)
    >>> n1, d1 = inference_optimum(get_law("chinchilla"), p, [5.76e23], inference_tokens=1e13)
    >>> bool(n1[0] < n0[0]), round(float(6 * n1[0] * d1[0] + 2 * n1[0] * 1e13) / 5.76e23, 6)
    (True, 1.0)
    """
    _require_optimum(law)
    t = _tokens(inference_tokens)
    p = {k: np.asarray(v)[..., None] for k, v in _log_params(law, params).items()}
    log_c = np.log(_budgets(budgets))
    log_n = _inference_log_n(law, p, log_c, t, grid=_GRID, steps=90)
    n = np.exp(log_n)
    return n, np.exp(log_c - _LOG6 - log_n) - t / 3.0


def _inference_optimal(fit, budgets, tokens, *, ci_prob, ci_kind) -> xr.Dataset:
    """:func:`optimal` with inference compute: numeric per draw, same variables and layout."""
    law, params, _ = law_params(fit)
    _require_optimum(law)
    c = _budgets(budgets)
    n, d = inference_optimum(law, params, c, inference_tokens=tokens)
    loss = law.loss(n, d, {k: v[:, None] for k, v in _log_params(law, params).items()})
    values = {
        "N_opt": n,
        "D_opt": d,
        "tokens_per_param": d / n,
        "loss_opt": loss,
        "train_fraction": 6.0 * d / (6.0 * d + 2.0 * tokens),
    }
    data = {}
    for k, v in values.items():
        med, ci = median_interval(v.T, ci_prob=ci_prob, ci_kind=ci_kind, axis=-1)
        data[k] = ("budget", np.asarray(med))
        data[f"{k}_ci"] = (("budget", "ci_bound"), np.asarray(ci))
    for k, v in exponents(law, params).items():
        summ = interval_summary(v, ci_prob=ci_prob, ci_kind=ci_kind)
        data[f"exponent_{k}"] = ((), summ["median"])
        data[f"exponent_{k}_ci"] = ("ci_bound", np.array([summ["lo"], summ["hi"]]))
    attrs = {
        "ci_prob": float(ci_prob),
        "ci_kind": ci_kind,
        "method": "numeric (inference-aware)",
        "card": card_of(fit).name,
        "n_draws": int(n.shape[0]),
        "inference_tokens": tokens,
    }
    return xr.Dataset(data, coords={"budget": c, "ci_bound": list(CI_BOUNDS)}, attrs=attrs)


def inference_compute_for_loss(
    fit,
    *,
    target_loss: float,
    inference_tokens: float,
    ci_prob: float = 0.9,
    ci_kind: str = "eti",
) -> dict:
    """Least training plus inference compute ``6ND + 2NT`` whose law loss reaches a target.

    Per draw: the smallest total budget ``C`` whose inference-aware optimum (see
    :func:`inference_optimum`) has ``L(N*, D*) = target_loss`` (bisection on ``log C``; the
    minimal loss is decreasing in ``C``), and its ``N*``, ``D*``. Draws whose loss floor lies at
    or above the target cannot reach it at any budget; intervals are over the draws that can,
    and ``p_reachable`` is their share.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a two-variable law.
    target_loss : float
        Law loss to reach (nats per token).
    inference_tokens : float
        Tokens served over the model's lifetime (0: training compute only).
    ci_prob, ci_kind
        Interval options.

    Returns
    -------
    dict
        ``target_loss``, ``inference_tokens``, ``p_reachable`` and, as ``{"median", "lo", "hi"}``
        over reachable draws: ``C`` (total), ``C_train``, ``C_inference``, ``N``, ``D`` and
        ``tokens_per_param``; ``ci_prob``, ``ci_kind``.

    Raises
    ------
    InputError
        For bad options or when no draw reaches the target.

    References
    ----------
    Sardana et al. (2024), arXiv:2401.00448, Sec. 2 (Eq. 2).

    Examples
    --------
    >>> out = inference_compute_for_loss(fit, target_loss=2, inference_tokens=1e13)  # doctest:+SKIP
    >>> out["N"]["median"] < out["C"]["median"]  # doctest: +SKIP
    True
    """
    check_ci(ci_prob, ci_kind)
    tokens = _tokens(inference_tokens)
    try:
        target_loss = float(target_loss)
    except (TypeError, ValueError):
        raise InputError(f"target_loss must be a number, got {target_loss!r}") from None
    if not (np.isfinite(target_loss) and target_loss > 0):
        raise InputError(f"target_loss must be finite and > 0, got {target_loss!r}")
    law, params, _ = law_params(fit)
    _require_optimum(law)
    p = _log_params(law, params)
    log_t = np.log(target_loss)
    s = next(iter(p.values())).size

    def log_loss_at(log_c):
        log_n = _inference_log_n(law, p, log_c, tokens, grid=33, steps=60)
        log_d = np.log(np.maximum(np.exp(log_c - _LOG6 - log_n) - tokens / 3.0, 1e-300))
        return law.log_loss(np.exp(log_n), np.exp(log_d), p), log_n

    lo = np.full(s, np.log(1e10))
    hi = np.full(s, np.log(1e40))
    reach = log_loss_at(hi)[0] <= log_t
    if not reach.any():
        raise InputError(
            f"target loss {target_loss:g} is not reached at any budget up to 1e40 FLOPs in any "
            "posterior draw (it lies below the law's loss floor)"
        )
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        ok = log_loss_at(mid)[0] <= log_t
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    log_n = log_loss_at(hi)[1]
    c = np.exp(hi)[reach]
    n = np.exp(log_n)[reach]
    d = c / (FLOPS_PER_PARAM_TOKEN * n) - tokens / 3.0
    out = {"target_loss": target_loss, "inference_tokens": tokens,
           "p_reachable": float(reach.mean())}
    for k, v in (("C", c), ("C_train", FLOPS_PER_PARAM_TOKEN * n * d),
                 ("C_inference", 2.0 * n * tokens), ("N", n), ("D", d),
                 ("tokens_per_param", d / n)):
        out[k] = interval_summary(v, ci_prob=ci_prob, ci_kind=ci_kind)
    out["ci_prob"] = float(ci_prob)
    out["ci_kind"] = ci_kind
    return out
