"""Answers only a data-constrained law can give: the cost of repeating data, and the best epochs.

With the data-constrained law of Muennighoff et al. (2023) (card ``data-constrained``), a run
that repeats ``U`` unique tokens for ``k`` epochs sees ``D = k U`` tokens whose value decays with
``R_D*``. Two questions follow, each answered per posterior draw and summarised with intervals:

- :func:`repeat_loss`: the loss of a run that repeats its unique data ``k`` times, at a given
  model size or compute budget, and its excess over a run that saw ``k U`` fresh tokens;
- :func:`best_epochs`: with ``U`` unique tokens and ``C`` FLOPs, the split of ``C = 6 N D`` that
  minimises the loss, i.e. the best number of epochs ``D* / U`` and the model size ``N*``.

And the Bayesian counterpart of the authors' two-stage fit (Chinchilla part first, decay
constants second): :func:`two_stage_fit`, with :func:`stage_one_priors` for its hand-over.

References
----------
Muennighoff, N. et al. (2023). Scaling Data-Constrained Language Models. arXiv:2305.16264,
Sec. 5 (Eq. 5) and Sec. 6 (allocation under a unique-data budget).
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models. arXiv:2203.15556.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import xarray as xr

from bayescale.answers.prediction import CI_BOUNDS, loss_block, predict
from bayescale.core.cards import load_card
from bayescale.core.laws import FLOPS_PER_PARAM_TOKEN
from bayescale.core.runs import load_runs
from bayescale.core.stats import check_ci, median_interval
from bayescale.engines.single import fit_card
from bayescale.errors import InputError, SamplerWarning
from bayescale.fits import assemble, card_of, read
from bayescale.fits.layout import draws, runs_of
from bayescale.fits.params import law_params

__all__ = ["best_epochs", "repeat_loss", "repetition_fit", "stage_one_priors", "two_stage_fit"]

_GRID = 256
"""Grid points in log D per draw before the golden-section refinement."""
_GOLDEN_STEPS = 40
"""Golden-section steps: shrink the bracket by 0.618^40, about 4e-9 of its width."""


def repetition_fit(fit):
    """The part of ``fit`` that models repeated data: what answers questions about epochs.

    A single fit is returned as is. Of a law ensemble (:mod:`bayescale.ensemble`) only the
    members whose law reads unique tokens ``U`` can say what repeating data costs: the others
    treat a repeated token as a new one, so mixing them in would make repetition look free. The
    result is the ensemble of those members, their weights renormalised, with the ensemble's
    discrepancy and validated distance.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit or a law ensemble.

    Returns
    -------
    xarray.DataTree
        ``fit``, or the sub-ensemble of its repetition-aware members (attr
        ``bayescale_repetition_weight``: their total weight in the full ensemble).

    Raises
    ------
    InputError
        For an ensemble with no member that reads ``U``.
    """
    import json

    view = read(fit)
    if not view.is_mixture:
        return fit
    keep = [(name, w, tree) for name, w, tree in view.members
            if "U" in card_of(tree).law_spec.extra_variables]
    if not keep:
        raise InputError(
            "no member of the law ensemble models repeated data; the default ensemble adds the "
            "'data-constrained' card when the runs have a unique-token column U and some run "
            "repeats data"
        )
    total = float(sum(w for _, w, _ in keep))
    info = view.ensemble_info
    names = [n for n, _, _ in keep]
    weights = {n: (w / total if total > 0 else 1.0 / len(keep)) for n, w, _ in keep}
    sub = assemble([t for _, _, t in keep], {**info, "cards": names, "weights": weights})
    sub.attrs["bayescale_repetition_weight"] = json.dumps(total)
    return sub


def _require_u_law(fit):
    law, params, noise = law_params(fit)
    if "U" not in law.extra_variables:
        raise InputError(
            f"the fit's law {law.name!r} does not model repeated data; fit the "
            "'data-constrained' card on runs with a unique-token column U"
        )
    return law, params, noise


def _positive(name, value) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric, got {value!r}") from None
    if a.size == 0 or not np.all(np.isfinite(a) & (a > 0)):
        raise InputError(f"{name} must be finite and > 0, got {value!r}")
    return a


def repeat_loss(
    fit,
    *,
    U,
    epochs,
    N=None,
    C=None,
    target_loss=None,
    ci_prob: float = 0.9,
    ci_kind: str = "eti",
    random_seed=0,
) -> xr.Dataset:
    """Loss of runs that repeat ``U`` unique tokens for ``epochs`` epochs (``D = epochs * U``).

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a law that reads unique tokens (card ``data-constrained``).
    U : array_like
        Unique tokens.
    epochs : array_like
        Epochs over the unique tokens (``>= 1``; ``1`` is one pass of fresh data).
    N, C : array_like, optional
        Exactly one: the model size, or the compute budget (then ``N = C / (6 epochs U)``).
        ``U``, ``epochs`` and ``N``/``C`` broadcast together.
    target_loss : float, optional
        Adds ``p_below_target`` (one new run below it) as in :func:`bayescale.predict`.
    ci_prob, ci_kind
        Interval probability and kind (``"eti"`` or ``"hdi"``).
    random_seed : int, default 0
        Seed of the noise draws of the predictive interval.

    Returns
    -------
    xarray.Dataset
        :func:`bayescale.predict`'s variables (``N, D, C, U, median, mean, ci, pi``, ...) plus
        ``epochs``, ``excess`` (median of the law's loss minus the loss of the same run on
        ``epochs * U`` fresh tokens, per draw: what repeating costs) and ``excess_ci``.

    Raises
    ------
    InputError
        For a fit whose law ignores ``U``, epochs below 1, or a bad query.

    References
    ----------
    Muennighoff et al. (2023), Eq. (5) and Fig. 3 (loss against epochs at fixed compute).

    Examples
    --------
    >>> ds = repeat_loss(fit, N=1e9, U=1e10, epochs=[1, 4, 16])  # doctest: +SKIP
    >>> ds["excess"].values.round(3)  # doctest: +SKIP
    array([0.   , 0.004, 0.05 ])
    """
    check_ci(ci_prob, ci_kind)
    fit = repetition_fit(fit)
    law, params, _ = _require_u_law(fit)
    if (N is None) == (C is None):
        raise InputError("give exactly one of N (model size) and C (compute budget)")
    u = _positive("U", U)
    k = _positive("epochs", epochs)
    if np.any(k < 1):
        raise InputError(f"epochs must be >= 1 (1 = one pass over the unique data), got {epochs!r}")
    size = _positive("N" if N is not None else "C", N if N is not None else C)
    try:
        u, k, size = np.broadcast_arrays(u, k, size)
    except ValueError:
        raise InputError("U, epochs and N/C do not broadcast together") from None
    u, k, size = (np.array(a, dtype=float).reshape(-1) for a in (u, k, size))
    d = k * u
    n = size if N is not None else size / (FLOPS_PER_PARAM_TOKEN * d)
    ds = predict(
        fit, N=n, D=d, U=u, target_loss=target_loss, ci_prob=ci_prob, ci_kind=ci_kind,
        random_seed=random_seed,
    )

    repeated = loss_block(law, params, n, d, U=u)
    fresh = loss_block(law, params, n, d, U=d)
    repeated -= fresh
    med, ci = median_interval(repeated, ci_prob=ci_prob, ci_kind=ci_kind, axis=-1)
    ds["epochs"] = ("query", k)
    ds["excess"] = ("query", med)
    ds["excess_ci"] = (("query", "ci_bound"), ci)
    return ds


def _loss_at(law, params, log_d, *, log_c6, log_u):
    """Law loss at ``D = exp(log_d)``, ``N = (C/6)/D``, ``U = min(U, D)``; shapes broadcast."""
    log_n = log_c6 - log_d
    return law.log_loss(np.exp(log_n), np.exp(log_d), params, U=np.exp(np.minimum(log_u, log_d)))


def _argmin_draws(law, params, *, log_c6, log_u, log_d_lo, log_d_hi):
    """Per-draw minimiser of the law's log loss over ``log D`` in ``[lo, hi]``: grid + golden."""
    p = {k: v[:, None] for k, v in params.items()}
    grid = np.linspace(log_d_lo, log_d_hi, _GRID)
    f = _loss_at(law, p, grid[None, :], log_c6=log_c6, log_u=log_u)
    i = np.argmin(f, axis=1)
    step = grid[1] - grid[0]
    a = np.maximum(grid[i] - step, log_d_lo)
    b = np.minimum(grid[i] + step, log_d_hi)
    at_edge = (i == 0) | (i == _GRID - 1)
    p1 = {k: v[:, 0] for k, v in p.items()}
    g = (np.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = b - g * (b - a), a + g * (b - a)
    f1 = _loss_at(law, p1, x1, log_c6=log_c6, log_u=log_u)
    f2 = _loss_at(law, p1, x2, log_c6=log_c6, log_u=log_u)
    for _ in range(_GOLDEN_STEPS):
        left = f1 < f2  # the minimum lies in [a, x2]
        a, b = np.where(left, a, x1), np.where(left, x2, b)
        x_new = np.where(left, b - g * (b - a), a + g * (b - a))
        f_new = _loss_at(law, p1, x_new, log_c6=log_c6, log_u=log_u)
        x1, x2 = np.where(left, x_new, x2), np.where(left, x1, x_new)
        f1, f2 = np.where(left, f_new, f2), np.where(left, f1, f_new)
    x = 0.5 * (a + b)
    return x, _loss_at(law, p1, x, log_c6=log_c6, log_u=log_u), at_edge


def best_epochs(
    fit,
    *,
    U,
    C,
    max_epochs: float = 1e4,
    ci_prob: float = 0.9,
    ci_kind: str = "eti",
) -> xr.Dataset:
    """Best number of epochs, model size and tokens for ``U`` unique tokens and ``C`` FLOPs.

    For each posterior draw, the loss of the data-constrained law along ``C = 6 N D`` with
    ``U_D = min(U, D)`` is minimised numerically over ``log D`` (a 256-point grid from ``D =
    1e-3 min(U, D_chinchilla*)`` to ``max_epochs * U``, then golden-section refinement to 1e-8 in
    ``log D``). ``epochs* = D* / U``; below 1 means the unique data are not the constraint (the
    optimum then is the unlimited-data Chinchilla one).

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a law that reads unique tokens (card ``data-constrained``).
    U : array_like
        Unique-token budgets.
    C : array_like
        Compute budgets in FLOPs; broadcast with ``U``.
    max_epochs : float, default 1e4
        Upper end of the search in epochs; draws whose optimum lies on it are counted in
        ``share_at_edge`` and warned about.
    ci_prob, ci_kind
        Interval probability and kind.

    Returns
    -------
    xarray.Dataset
        Dims ``query`` and ``ci_bound``. Per query: ``U``, ``C``; medians ``epochs_opt``,
        ``N_opt``, ``D_opt``, ``loss_opt`` (law loss at each draw's own optimum) with ``_ci``
        intervals; ``loss_one_epoch`` and its ``_ci`` (the best run that sees each unique token
        at most once, ``D <= U``: the best you can do without repeating); ``p_repeat``
        (posterior probability that repeating, ``epochs* > 1``, is best) and ``share_at_edge``.

    Raises
    ------
    InputError
        For a fit whose law ignores ``U``, or non-positive budgets.

    Warns
    -----
    SamplerWarning
        When more than 1% of draws put the optimum at the edge of the search.

    References
    ----------
    Muennighoff et al. (2023), Sec. 6 and Fig. 1 (right): allocation under a unique-data budget.

    Examples
    --------
    >>> ds = best_epochs(fit, U=1e11, C=1e23)  # doctest: +SKIP
    >>> float(ds["epochs_opt"][0])  # doctest: +SKIP
    7.9
    """
    check_ci(ci_prob, ci_kind)
    fit = repetition_fit(fit)
    law, params, _ = _require_u_law(fit)
    max_epochs = float(_positive("max_epochs", max_epochs))
    if max_epochs <= 1:
        raise InputError(f"max_epochs must be > 1, got {max_epochs!r}")
    u, c = np.broadcast_arrays(_positive("U", U), _positive("C", C))
    u, c = (np.array(a, dtype=float).reshape(-1) for a in (u, c))
    q = u.size
    out = {k: np.empty(q) for k in ("epochs_opt", "N_opt", "D_opt", "loss_opt",
                                     "loss_one_epoch", "p_repeat", "share_at_edge")}
    cis = {k: np.empty((q, 2)) for k in ("epochs_opt", "N_opt", "D_opt", "loss_opt",
                                          "loss_one_epoch")}
    med = {k: float(np.median(v)) for k, v in params.items()}
    for j in range(q):
        log_c6 = np.log(c[j] / FLOPS_PER_PARAM_TOKEN)
        log_u = np.log(u[j])
        _, d_chin = law.optimal(c[j], med)
        lo = np.log(1e-3 * min(u[j], float(d_chin)))
        hi = log_u + np.log(max_epochs)
        x, f, edge = _argmin_draws(law, params, log_c6=log_c6, log_u=log_u,
                                   log_d_lo=lo, log_d_hi=hi)
        x1, f1, _ = _argmin_draws(law, params, log_c6=log_c6, log_u=log_u,
                                  log_d_lo=min(lo, log_u - 1.0), log_d_hi=log_u)
        epochs = np.exp(x - log_u)
        out["share_at_edge"][j] = float(np.mean(edge & (x > hi - 1e-6)))
        out["p_repeat"][j] = float(np.mean(epochs > 1.0))
        for key, values in (("epochs_opt", epochs), ("D_opt", np.exp(x)),
                           ("N_opt", np.exp(log_c6 - x)), ("loss_opt", np.exp(f)),
                           ("loss_one_epoch", np.exp(f1))):
            m, ci = median_interval(values, ci_prob=ci_prob, ci_kind=ci_kind)
            out[key][j], cis[key][j] = m, ci
    bad = out["share_at_edge"] > 0.01
    if bad.any():
        shown = ", ".join(f"U={u[j]:g}, C={c[j]:g}" for j in np.flatnonzero(bad)[:3])
        warnings.warn(
            f"best_epochs: the optimum of more than 1% of draws is at max_epochs={max_epochs:g} "
            f"({shown}); raise max_epochs",
            SamplerWarning,
            stacklevel=2,
        )
    data = {"U": ("query", u), "C": ("query", c)}
    for k in ("epochs_opt", "N_opt", "D_opt", "loss_opt", "loss_one_epoch"):
        data[k] = ("query", out[k])
        data[f"{k}_ci"] = (("query", "ci_bound"), cis[k])
    data["p_repeat"] = ("query", out["p_repeat"])
    data["share_at_edge"] = ("query", out["share_at_edge"])

    attrs = {"ci_prob": float(ci_prob), "ci_kind": ci_kind, "card": card_of(fit).name,
             "law": law.name, "max_epochs": max_epochs, "n_draws": int(next(iter(
                 params.values())).size)}
    return xr.Dataset(data, coords={"query": np.arange(q), "ci_bound": list(CI_BOUNDS)},
                      attrs=attrs)


# --------------------------------------------------------------------------------------------
# Two-stage fit: the Chinchilla part from single-epoch runs, then the decay constants
# --------------------------------------------------------------------------------------------

_BASE = ("E", "A", "B", "alpha", "beta")


def _beta_prior(name, x) -> str:
    """Beta distribution with the mean and variance of the draws ``x`` (all in (0, 1))."""
    m, v = float(np.mean(x)), float(np.var(x))
    if not (0 < m < 1 and 0 < v < m * (1 - m)):
        raise InputError(f"cannot moment-match a Beta prior for {name!r} (mean {m:g}, var {v:g})")
    k = m * (1 - m) / v - 1
    return f"Beta(alpha={m * k:.6g}, beta={(1 - m) * k:.6g})"


def _lognormal_prior(log_x) -> str:
    return f"LogNormal(mu={float(np.mean(log_x)):.6g}, sigma={float(np.std(log_x)):.6g})"


def stage_one_priors(stage1, *, card="data-constrained-tied", ref=None, carry=_BASE):
    """Priors of ``E, A, B`` and the exponents of ``card`` from a Chinchilla-type posterior.

    Each carried parameter's prior is moment-matched to its stage-1 posterior: the exponents
    ``alpha``, ``beta`` Beta (mean and variance), each amplitude LogNormal on its term at the
    reference size (``log A - alpha log N_ref``, the form of a card's amplitude priors,
    ``[prior_scale]``), any other (positive) parameter LogNormal (mean and sd of its log). The
    references default to the geometric means of the stage-1 runs' ``N`` and ``D``, where the
    term is least correlated with the exponent. The other priors of ``card`` (by default
    ``R_D*``, ``R_N*`` and the noise) are kept.

    Moment matching keeps each marginal but drops the posterior correlations (chiefly ``E``
    with the exponent); the returned priors are therefore somewhat less informative jointly than
    the stage-1 posterior.

    Parameters
    ----------
    stage1 : xarray.DataTree
        A fit with parameters ``E, A, B, alpha, beta`` (e.g. ``chinchilla`` or
        ``chinchilla-tied`` on single-epoch runs).
    card : str, Path or Card, default "data-constrained-tied"
        The card to give the priors to. A tied exponent (``[tie] beta = "alpha"``) takes the
        prior of ``alpha`` alone.
    ref : Mapping, optional
        ``{"A": N_ref, "B": D_ref}`` reference sizes of the amplitude priors.
    carry : sequence of str, default ("E", "A", "B", "alpha", "beta")
        Parameters whose priors come from stage 1 (a tied one is skipped). Add ``"R_N_star"``
        when stage 1 is itself a data-constrained fit whose single-epoch runs include models
        larger than their data's compute-optimal size.

    Returns
    -------
    Card
        ``card`` with the new priors and ``prior_scale``; its ``source`` says where they came
        from.

    Raises
    ------
    InputError
        If the stage-1 fit lacks a parameter, or a prior cannot be matched.

    References
    ----------
    Muennighoff et al. (2023), Sec. 5: E, A, B, alpha = beta fitted first (to Hoffmann et al.'s
    C4 IsoFLOP points) and held fixed while R_D*, R_N* are fitted; here they are carried over
    as priors with their uncertainty instead.

    Examples
    --------
    >>> card = stage_one_priors(stage1)  # doctest: +SKIP
    >>> str(card.priors["alpha"])  # doctest: +SKIP
    'Beta(alpha=1512.3, beta=2776.1)'
    """

    target = load_card(card)
    post = draws(stage1)
    carry = [k for k in carry if k in target.free_params]
    missing = [k for k in (*_BASE, *carry) if k not in post]
    if missing:
        raise InputError(f"the stage-1 fit has no {', '.join(dict.fromkeys(missing))}; fit a "
                         "Chinchilla or data-constrained card")
    if ref is None:
        r = runs_of(stage1)
        ref = {"A": float(np.exp(np.log(r["N"]).mean())), "B": float(np.exp(np.log(r["D"]).mean()))}
    ref = {k: float(_positive(f"ref[{k!r}]", ref[k])) for k in ("A", "B")}
    terms = {"A": np.log(post["A"]) - post["alpha"] * np.log(ref["A"]),
             "B": np.log(post["B"]) - post["beta"] * np.log(ref["B"])}
    priors = {}
    for k in carry:
        if k in terms:
            priors[k] = _lognormal_prior(terms[k])
        elif k in ("alpha", "beta"):
            priors[k] = _beta_prior(k, post[k])
        else:
            priors[k] = _lognormal_prior(np.log(_positive(f"stage-1 draws of {k}", post[k])))

    out = target.with_priors(priors)
    note = (f"two-stage: {', '.join(priors)} moment-matched to a {card_of(stage1).name} fit "
            f"of {len(runs_of(stage1))} runs")
    return replace(out, prior_scale=ref, source=f"{target.source} ({note})".strip())


def two_stage_fit(
    runs,
    *,
    card="data-constrained-tied",
    stage1_card="chinchilla-tied",
    ref=None,
    carry=_BASE,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
):
    """Fit the data-constrained law in two stages: single-epoch runs, then repeated ones.

    Stage 1 fits ``stage1_card`` (a Chinchilla card) on the runs that see each token once
    (``U >= D``). Stage 2 fits ``card`` on the runs that repeat data (``U < D``), with the
    priors of ``E, A, B`` and the exponents moment-matched to the stage-1 posterior
    (:func:`stage_one_priors`). Each run is used once, so this is sequential Bayesian updating
    (up to the moment matching), and the decay constants keep the card's priors.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        Runs with a unique-token column ``U``.
    card : str, Path or Card, default "data-constrained-tied"
        Stage-2 card (a law that reads ``U``).
    stage1_card : str, Path or Card, default "chinchilla-tied"
        Stage-1 card, with parameters ``E, A, B, alpha, beta``.
    ref, carry
        Reference sizes of the amplitude priors and parameters carried over (see
        :func:`stage_one_priors`).
    draws, tune, chains, random_seed
        Sampler settings of both fits (:func:`bayescale.fit`).

    Returns
    -------
    tuple of xarray.DataTree
        ``(stage1, stage2)``; ``stage2`` is the data-constrained fit, its card (with the
        stage-1 priors) stored as for any fit.

    Raises
    ------
    InputError
        For runs without ``U``, or a stage with fewer runs than its card has parameters + 1.

    References
    ----------
    Muennighoff et al. (2023), Sec. 5 and huggingface/datablations ``utils/parametric_fit.ipynb``
    (their stage 1 used Hoffmann et al.'s C4 IsoFLOP points, which are not repeated-data runs).

    Examples
    --------
    >>> stage1, fit = two_stage_fit("datablations.csv")  # doctest: +SKIP
    >>> float(fit.posterior["R_D_star"].median())  # doctest: +SKIP
    """

    target = load_card(card)
    first = load_card(stage1_card)
    if "U" not in target.law_spec.extra_variables:
        raise InputError(f"the stage-2 card {target.name!r} does not read unique tokens U")
    runs = load_runs(runs, variables=("N", "D", "U"))
    single = np.asarray(runs.U, float) >= np.asarray(runs.D, float)
    for label, mask, c in (("single-epoch (U >= D)", single, first),
                           ("repeated-data (U < D)", ~single, target)):
        if mask.sum() < c.n_params + 1:
            raise InputError(f"{int(mask.sum())} {label} runs; card {c.name!r} needs at least "
                             f"{c.n_params + 1}")
    opts = dict(draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    stage1 = fit_card(runs.subset(single), card=first, **opts)
    prior_card = stage_one_priors(stage1, card=target, ref=ref, carry=carry)
    return stage1, fit_card(runs.subset(~single), card=prior_card, **opts)
