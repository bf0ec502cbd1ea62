"""Accuracy at a planned run: credible and predictive intervals and ``P(accuracy >= x)``.

Two intervals, as for losses (:mod:`bayescale.answers.prediction`):

- **credible** (``ci``): where the law's accuracy lies, the accuracy of the average run;
- **predictive** (``pi``): what one new run shows on the same benchmark, its law accuracy plus
  the Beta-binomial noise of :mod:`bayescale.core.accuracy_noise` (run-to-run scatter and the
  binomial error of ``n_examples`` evaluation items). ``P(accuracy >= x)`` is predictive,
  computed exactly over that noise per draw and averaged over draws.

Two-step prediction pairs draws
-------------------------------
The first step is a loss fit of the ``via`` column (any single loss card); the second
the accuracy fit on the runs' observed ``via`` losses. The second conditions on the observed
losses, not on the first step's parameters, so the joint posterior is the product of the two and
pairing posterior draw ``s`` of step 1 with draw ``s`` of step 2 (after flattening chains) is a
draw from it. Per pair:

1. ``L_s``: the loss law of step 1 at the query (its credible part), and ``L_s exp(sigma_s e_s)``
   the loss of one new run (its predictive part: step 1's noise on log loss);
2. the credible accuracy is ``link_s(L_s)``, the predictive one a Beta-binomial draw around
   ``link_s(L_s exp(sigma_s e_s))``.

So the first step's uncertainty reaches the accuracy draw by draw; plugging in its median loss
would drop it (Grattafiori et al. 2024, Sec. 3.2.1, and Bhagia et al. 2024 fit the two steps
separately and chain point estimates). When the fits hold different numbers of draws, the
larger is subsampled without replacement (seeded) to the smaller.

A task whose ladder shows no signal above chance (:mod:`bayescale.scoring.chance`) is not
extrapolated: every number is NaN and ``attrs["flag"]`` says so.

References
----------
Grattafiori, A. et al. (2024). The Llama 3 Herd of Models. arXiv:2407.21783, Sec. 3.2.1.
Bhagia, A. et al. (2024). arXiv:2412.04403.
Krajewski, J. et al. (2025). arXiv:2512.08894.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from bayescale.core import accuracy_noise as noise
from bayescale.core.laws import FLOPS_PER_PARAM_TOKEN
from bayescale.core.stats import check_ci, interval
from bayescale.errors import InputError
from bayescale.fits import read
from bayescale.scoring.accuracy_forecast import discrepancy_sigma, latent_accuracy
from bayescale.scoring.accuracy_latent import PAIRING, mixture_latent
from bayescale.scoring.chance import NO_SIGNAL

CI_BOUNDS = ("lower", "upper")


def _array(name, value) -> np.ndarray:
    try:
        a = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric, got {value!r}") from None
    if a.size == 0 or not np.all(np.isfinite(a) & (a > 0)):
        raise InputError(f"{name} must be finite and > 0")
    return a


def predict_accuracy(
    fit,
    *,
    C=None,
    N=None,
    D=None,
    loss_fit=None,
    loss=None,
    target=None,
    n_examples="fit",
    ci_prob: float = 0.9,
    ci_kind: str = "eti",
    random_seed=0,
) -> xr.Dataset:
    """Accuracy of planned runs: credible and predictive intervals and ``P(accuracy >= target)``.

    Parameters
    ----------
    fit : xarray.DataTree
        An accuracy fit (:func:`bayescale.engines.accuracy.fit_accuracy`).
    C, N, D : array_like, optional
        The query. Direct law: ``C``, or ``N`` and ``D`` (``C = 6 N D``); the (N, D) law:
        ``N`` and ``D``. Two-step law with ``loss_fit``: what that loss fit needs (two of
        ``N``, ``D``, ``C``).
    loss_fit : xarray.DataTree, optional
        Two-step law: the first step, a single-card loss fit (``bs.fit(runs, card=NAME)``) of
        the accuracy fit's ``via`` column. Its
        posterior draws of the loss at the query are carried into the link draw by draw (see the
        module docstring).
    loss : array_like, optional
        Two-step law, instead of ``loss_fit``: known ``via`` losses of the planned runs (no
        first-step uncertainty).
    target : float, optional
        Accuracy threshold in (0, 1]: adds ``p_at_least_target`` (one new run reaches it) and
        ``p_law_at_least_target`` (the law's accuracy does).
    n_examples : int, None or "fit", default "fit"
        Evaluation examples of the new run's benchmark; ``"fit"``: as in the fit.
    ci_prob : float, default 0.9
        Probability of both intervals.
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density intervals.
    random_seed : int or numpy.random.Generator, default 0
        Seed of the noise draws and of any subsampling that pairs the two fits' draws.

    Returns
    -------
    xarray.Dataset
        Dims ``query`` and ``ci_bound``. Variables ``C`` (``N``, ``D`` when known), ``median``
        and ``mean`` of the law's accuracy, ``ci``, ``pi``, ``extrapolation_C`` (decades above
        the accuracy fit's largest run, 0 inside), ``signal``; two-step: ``via_loss`` (median
        of step 1's law loss) and ``via_loss_ci``; with a target, ``p_at_least_target`` and
        ``p_law_at_least_target``. Attrs ``ci_prob``, ``ci_kind``, ``card``, ``law``,
        ``metric``, ``floor``, ``n_examples``, ``n_draws``, ``random_seed``, ``chance`` (the
        test's message), ``pairing`` (two-step), ``target`` and, for a task without signal,
        ``flag`` = ``"no signal above chance: not extrapolated"`` (every number is then NaN).

    Raises
    ------
    InputError
        For a fit that is not an accuracy fit, a query the law cannot read (two-step without
        ``loss_fit`` or ``loss``, both, or a loss fit of another column when it says so), a
        target outside (0, 1], or bad interval options.

    References
    ----------
    Grattafiori et al. (2024), Sec. 3.2.1; Bhagia et al. (2024); Krajewski et al. (2025).

    Examples
    --------
    >>> ds = predict_accuracy(fit, N=7e9, D=1.4e11, target=0.6)  # doctest: +SKIP
    >>> float(ds["p_at_least_target"][0])  # doctest: +SKIP
    0.83
    """
    check_ci(ci_prob, ci_kind)
    view = read(fit)
    info = view.accuracy_info
    ensemble = view.accuracy_ensemble_info or {}
    laws = [read(m.tree).card.law_spec for m in view.accuracy_members]
    target = _target(target)
    n_ex = info["n_examples"] if isinstance(n_examples, str) and n_examples == "fit" else n_examples
    if n_ex is not None and (isinstance(n_ex, bool) or int(n_ex) != n_ex or n_ex < 1):
        raise InputError(f"n_examples must be a positive integer, None or 'fit'; got {n_ex!r}")
    rng = np.random.default_rng(random_seed)
    two_step = any(law.input == "via" for law in laws)
    if not two_step and (loss_fit is not None or loss is not None):
        raise InputError("the direct law reads compute: loss_fit and loss are for two-step")
    if two_step and loss_fit is not None and loss is not None:
        raise InputError("pass loss_fit= or loss=, not both")
    if two_step and loss_fit is None and loss is None and view.step_one is None:
        raise InputError(
            f"the two-step law reads the {info['via']!r} loss: pass loss_fit= (a loss fit of "
            "that column, carried draw by draw) or loss= (known losses), not both"
        )
    if loss_fit is not None:
        _check_same_loss(loss_fit, info["via"])
    n, d, c = _query(N=N, D=D, C=C, loss=loss,
                     needs_nd=any(law.input == "log10_ND" for law in laws)
                     or (two_step and loss is None))
    given = None if loss is None else _array("loss", loss)
    latent = mixture_latent(fit, C=c, N=n, D=d, loss_fit=loss_fit, loss=given, rng=rng)
    data, attrs = {}, {}
    if n is not None:
        data["N"], data["D"] = ("query", n), ("query", d)
    if "via_law" in latent:
        attrs["pairing"] = PAIRING
        data["via_loss"] = ("query", np.median(latent["via_law"], axis=0))
        data["via_loss_ci"] = (("query", "ci_bound"), interval(
            latent["via_law"], ci_prob=ci_prob, ci_kind=ci_kind, axis=0))

    floor = float(info["floor"])
    fitted_c = fit["constant_data"]["C"].to_numpy()
    with np.errstate(invalid="ignore"):
        extrap = np.where(np.isnan(c), np.nan, np.maximum(np.log10(c / fitted_c.max()), 0.0))
    tau = float(ensemble.get("tau", 0.0))
    delta = np.nan_to_num(extrap)[None, :]
    ceiling, sigma = latent["ceiling"][:, None], latent["sigma"][:, None]
    acc_law = latent_accuracy(latent["z_law"], floor=floor, ceiling=ceiling)
    if tau > 0:  # the law's accuracy widened by the discrepancy (where the average run lands)
        _, only = discrepancy_sigma(latent["z_law"], floor=floor, ceiling=ceiling, sigma=0.0,
                                    tau=tau, delta=delta)
        acc_law = noise.draw(rng, acc_law, np.maximum(only, 1e-12))
    p_new, sig_new = discrepancy_sigma(latent["z_new"], floor=floor, ceiling=ceiling,
                                       sigma=sigma, tau=tau, delta=delta)
    acc_law, p_new, sig_new = acc_law.T, p_new.T, sig_new.T
    new_run = noise.draw(rng, p_new, sig_new, n_examples=n_ex)

    q = acc_law.shape[0]
    chance = info["chance"]
    signal = bool(chance["signal"])
    data.update({
        "C": ("query", np.asarray(c, dtype=float)),
        "median": ("query", np.median(acc_law, axis=1)),
        "mean": ("query", acc_law.mean(axis=1)),
        "ci": (("query", "ci_bound"), interval(acc_law, ci_prob=ci_prob, ci_kind=ci_kind,
                                               axis=1)),
        "pi": (("query", "ci_bound"), interval(new_run, ci_prob=ci_prob, ci_kind=ci_kind,
                                               axis=1)),
        "extrapolation_C": ("query", extrap),
    })
    if target is not None:
        data["p_at_least_target"] = (
            "query", noise.prob_at_least(target, p_new, sig_new, n_examples=n_ex).mean(1)
        )
        data["p_law_at_least_target"] = ("query", (acc_law >= target).mean(axis=1))
    if not signal:
        for key in ("median", "mean", "ci", "pi", "p_at_least_target", "p_law_at_least_target"):
            if key in data:
                dims, values = data[key]
                data[key] = (dims, np.full(np.shape(values), np.nan))
        attrs["flag"] = NO_SIGNAL
    data["signal"] = ("query", np.full(q, signal))
    validated = ensemble.get("validated_decades")
    beyond = (validated is not None and np.nanmax(np.append(extrap, 0.0)) > validated)
    attrs.update({
        "ci_prob": float(ci_prob),
        "ci_kind": ci_kind,
        "card": "accuracy-ensemble" if ensemble else view.card.name,
        "law": "+".join(law.name for law in laws),
        "metric": info["metric"],
        "floor": floor,
        "n_examples": -1 if n_ex is None else int(n_ex),
        "n_draws": int(latent["sigma"].size),
        "random_seed": random_seed if isinstance(random_seed, int) else str(random_seed),
        "chance": chance["message"],
    })
    if ensemble:
        attrs["weights"] = json.dumps(ensemble["weights"], sort_keys=True)
        attrs["tau"] = tau
        attrs["validated_decades"] = float(validated)
        if beyond and signal:  # a task without signal has the flag, and no forecast to warn of
            attrs["warning"] = (
                f"beyond the validated distance: the rolling forecasts of this fit reached "
                f"{validated:.2f} decades of compute past their training runs"
            )
    if info.get("via"):
        attrs["via"] = info["via"]
    if target is not None:
        attrs["target"] = target
    return xr.Dataset(data, coords={"query": np.arange(q), "ci_bound": list(CI_BOUNDS)},
                      attrs=attrs)


def _target(target):
    if target is None:
        return None
    try:
        target = float(target)
    except (TypeError, ValueError):
        raise InputError(f"target must be an accuracy in (0, 1], got {target!r}") from None
    if not (0 < target <= 1):
        raise InputError(f"target must be an accuracy in (0, 1], got {target!r}")
    return target


def _query(*, N, D, C, loss, needs_nd):
    """``(N, D, C)`` of the query, flat; N and D None when only C (or losses) are given."""
    if N is None and D is None:
        if needs_nd:
            raise InputError("this accuracy fit reads parameters and tokens: give N and D "
                             "(or two of N, D, C)")
        if C is None:
            if loss is None:
                raise InputError("give the planned runs: C, or N and D (C = 6 N D)")
            return None, None, np.full(np.size(loss), np.nan)
        return None, None, _array("C", C)
    if C is not None and N is not None and D is not None:
        raise InputError("give C, or N and D, not all three")
    if C is not None:
        c = _array("C", C)
        if N is not None:
            n, c = np.broadcast_arrays(_array("N", N), c)
            return n.astype(float), c / (FLOPS_PER_PARAM_TOKEN * n), c.astype(float)
        d, c = np.broadcast_arrays(_array("D", D), c)
        return c / (FLOPS_PER_PARAM_TOKEN * d), d.astype(float), c.astype(float)
    if N is None or D is None:
        raise InputError("give C, or N and D (C = 6 N D)")
    n, d = np.broadcast_arrays(_array("N", N), _array("D", D))
    n, d = n.astype(float), d.astype(float)
    return n, d, FLOPS_PER_PARAM_TOKEN * n * d


def _check_same_loss(loss_fit, via: str) -> None:
    """The loss fit's loss column must be the accuracy fit's ``via`` when its provenance says."""
    runs = read(loss_fit).provenance.get("runs")
    if not runs:
        return
    mapping = runs.get("mapping") or {}
    column = mapping.get("loss")
    if column is not None and column != via:
        raise InputError(
            f"the loss fit was fitted to {column!r}, but the accuracy fit links accuracy to "
            f"{via!r}: fit step 1 on the same column (load_runs(..., mapping={{'loss': {via!r}}}))"
        )


def compute_for_accuracy(
    fit,
    *,
    target: float,
    prob: float = 0.5,
    tokens_per_param: float = 20.0,
    ci_prob: float = 0.9,
    ci_kind: str = "eti",
    c_range=None,
    n_grid: int = 161,
    n_examples="fit",
    random_seed=0,
) -> dict:
    """Compute at which a planned run reaches an accuracy target, with its uncertainty.

    The run is trained at a fixed ratio of tokens to parameters, ``N = sqrt(C / (6 r))``,
    ``D = r N`` (``r = 20``: the Chinchilla rule; pass the ratio the team will train at). Two
    answers, on a log-spaced grid of budgets:

    - **one run**: the smallest budget at which a new run's accuracy (law, discrepancy and the
      Beta-binomial noise of its evaluation) is at least ``target`` with probability ``prob``;
    - **the law**: per posterior draw, the budget at which the law's accuracy first reaches the
      target, its latent discrepancy drawn once per draw along the path
      (``z + tau delta(C) e_s``); the median and ``ci_prob`` interval of those budgets, and the
      share of draws that never reach it within the grid.

    Parameters
    ----------
    fit : xarray.DataTree
        An accuracy fit, stacked or single (the two-step law needs its stored step 1, as in a
        stacked fit).
    target : float
        Accuracy to reach, in (0, 1].
    prob : float, default 0.5
        Required probability for one run.
    tokens_per_param : float, default 20
        The plan's ``D / N``.
    ci_prob, ci_kind
        The law's interval.
    c_range : tuple of float, optional
        Budgets searched; default the ladder's smallest run to ``1e4`` times its largest.
    n_grid : int, default 161
        Grid points (the answer's resolution is ``log10(range) / (n_grid - 1)`` decades).
    n_examples : int, None or "fit"
        Evaluation examples of the run's benchmark.
    random_seed : int, default 0
        Seed of step 1's noise, the pairing subsample and the discrepancy draws.

    Returns
    -------
    dict
        ``target``, ``prob``, ``tokens_per_param``, ``C``, ``N``, ``D`` (None when not reached
        in the grid), ``p_at_C``, ``law`` (``{"median", "lo", "hi", "share_unreached"}`` of the
        law's crossing budget; ``median`` is None when more than half never reach it),
        ``decades_beyond_ladder``, ``validated_decades``, ``already_reached`` (a fitted run has
        reached the target), ``statement`` (a plain sentence) and ``flag`` (no signal above
        chance: every number None).

    Raises
    ------
    InputError
        For a target outside (0, 1], bad options, or a fit that is not an accuracy fit.

    Examples
    --------
    >>> compute_for_accuracy(fit, target=0.6, prob=0.9)["C"]  # doctest: +SKIP
    3.1e+22
    """
    check_ci(ci_prob, ci_kind)
    target = _target(target)
    if target is None:
        raise InputError("target is required (an accuracy in (0, 1])")
    if not (0 < prob < 1):
        raise InputError(f"prob must be in (0, 1), got {prob!r}")
    if not (np.isfinite(tokens_per_param) and tokens_per_param > 0):
        raise InputError(f"tokens_per_param must be > 0, got {tokens_per_param!r}")
    view = read(fit)
    info = view.accuracy_info
    ensemble = view.accuracy_ensemble_info or {}
    fitted_c = fit["constant_data"]["C"].to_numpy()
    observed = fit["observed_data"]["accuracy"].to_numpy()
    lo_c, hi_c = c_range if c_range is not None else (fitted_c.min(), fitted_c.max() * 1e4)
    if not (0 < lo_c < hi_c):
        raise InputError(f"c_range must be two increasing budgets > 0, got {c_range!r}")
    out = {"target": target, "prob": float(prob), "tokens_per_param": float(tokens_per_param),
           "C": None, "N": None, "D": None, "p_at_C": None,
           "law": {"median": None, "lo": None, "hi": None, "share_unreached": None},
           "decades_beyond_ladder": None,
           "validated_decades": ensemble.get("validated_decades"),
           "already_reached": bool(np.any(observed >= target)), "flag": None, "statement": None}
    if not info["chance"]["signal"]:
        out["flag"] = NO_SIGNAL
        out["statement"] = f"{info['metric']}: {NO_SIGNAL}"
        return out
    n_ex = info["n_examples"] if isinstance(n_examples, str) and n_examples == "fit" else n_examples
    rng = np.random.default_rng(random_seed)
    C = np.geomspace(lo_c, hi_c, int(n_grid))
    N = np.sqrt(C / (FLOPS_PER_PARAM_TOKEN * tokens_per_param))
    D = tokens_per_param * N
    latent = mixture_latent(fit, C=C, N=N, D=D, rng=rng)
    floor = float(info["floor"])
    tau = float(ensemble.get("tau", 0.0))
    delta = np.maximum(np.log10(C / fitted_c.max()), 0.0)
    ceiling, sigma = latent["ceiling"][:, None], latent["sigma"][:, None]
    path = latent_accuracy(latent["z_law"] + tau * delta[None, :]
                           * rng.standard_normal((latent["sigma"].size, 1)),
                           floor=floor, ceiling=ceiling)
    reached = path >= target
    first = np.where(reached.any(axis=1), reached.argmax(axis=1), -1)
    crossing = np.where(first >= 0, C[np.maximum(first, 0)], np.inf)
    p_new, sig_new = discrepancy_sigma(latent["z_new"], floor=floor, ceiling=ceiling,
                                       sigma=sigma, tau=tau, delta=delta[None, :])

    def p_at(k):  # P(one run >= target) at grid point k, exact over the Beta-binomial
        return float(noise.prob_at_least(target, p_new[:, k], sig_new[:, k],
                                         n_examples=n_ex).mean())

    hit, best = _first_hit(p_at, C.size, prob)
    share_never = float(np.mean(~np.isfinite(crossing)))
    law = {"share_unreached": share_never, "median": None, "lo": None, "hi": None}
    if share_never < 0.5:
        law["median"] = float(np.sort(crossing)[(crossing.size - 1) // 2])
    if ci_kind == "eti":  # quantiles of the crossing budget; an unreached draw counts as inf
        ordered = np.sort(crossing)  # order statistics (no interpolation towards inf)
        last = ordered.size - 1
        q = ordered[[int(np.floor((1 - ci_prob) / 2 * last)),
                     int(np.ceil((1 + ci_prob) / 2 * last))]]
        law["lo"], law["hi"] = (float(v) if np.isfinite(v) else None for v in q)
    elif share_never == 0:  # the shortest interval of log10 C
        lo, hi = 10.0 ** interval(np.log10(crossing), ci_prob=ci_prob, ci_kind=ci_kind)
        law["lo"], law["hi"] = float(lo), float(hi)
    out["law"] = law
    name = info["metric"]
    if hit is not None:
        k = hit
        out.update({"C": float(C[k]), "N": float(N[k]), "D": float(D[k]),
                    "p_at_C": p_at(k),
                    "decades_beyond_ladder": float(delta[k])})
        out["statement"] = (
            f"{name} >= {target:g} with probability {prob:g}: C = {C[k]:.3g} FLOPs "
            f"(N = {N[k]:.3g}, D = {D[k]:.3g}), {delta[k]:.2f} decades beyond the ladder")
        validated = ensemble.get("validated_decades")
        if validated is not None and delta[k] > validated:
            out["statement"] += (f"; beyond the {validated:.2f} decades the rolling forecasts "
                                 "validated")
    else:
        out["statement"] = (
            f"{name} does not reach {target:g} with probability {prob:g} below "
            f"{C[-1]:.3g} FLOPs (best {best:.2f})")
    return out


def _first_hit(p_at, size: int, prob: float, step: int = 8):
    """First grid index with ``p_at(k) >= prob``, scanning every ``step``-th point and then the
    points before the first coarse hit (``p_at`` is costly: the exact Beta-binomial tail).
    Returns ``(index or None, best probability seen)``."""
    coarse = [*range(0, size, step)] + ([size - 1] if (size - 1) % step else [])
    best, prev = 0.0, 0
    for k in coarse:
        pk = p_at(k)
        best = max(best, pk)
        if pk >= prob:
            for j in range(prev + 1, k):
                pj = p_at(j)
                if pj >= prob:
                    return j, max(best, pj)
            return k, best
        prev = k
    return None, best
