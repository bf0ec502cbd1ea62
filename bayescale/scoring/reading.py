"""The ensemble's weights next to PSIS-LOO weights, with a plain-words reading.

LOO stacking weights say which card *interpolates* the runs best; the ensemble's weights say
which card *forecast* the larger runs best from the smaller ones. When they disagree, the
extrapolation weights are the ones an extrapolation should use, and the disagreement itself is
a warning that the laws differ beyond the data.

References
----------
Vehtari, A., Gelman, A. & Gabry, J. (2017). Practical Bayesian model evaluation using
leave-one-out cross-validation and WAIC. Statistics and Computing 27.
Yao, Y. et al. (2018). Using stacking to average Bayesian predictive distributions. Bayesian
Analysis 13(3).
"""

from __future__ import annotations

import warnings

from bayescale.fits.members import members

__all__ = ["loo_weights", "weights_reading"]


def loo_weights(fit) -> dict | None:
    """PSIS-LOO stacking weights of the members fitted to all runs (None when one of them has
    no log-likelihood).

    Upper-ladder members (:mod:`bayescale.engines.upper`) were fitted to half the runs, so
    their leave-one-out scores are over other runs and not comparable: they get no LOO weight.
    """
    import arviz_stats as azs

    loos = {}
    n_runs = fit["observed_data"].sizes.get("run")
    for name, _, member in members(fit):
        if member["observed_data"].sizes.get("run") != n_runs:
            continue
        if "log_likelihood" not in member.children:
            return None
        with warnings.catch_warnings():
            # Pareto-k warnings concern LOO's own reliability; the weights are for contrast
            warnings.simplefilter("ignore")
            loos[name] = azs.loo(member, pointwise=True)
    if len(loos) <= 1:
        return {name: 1.0 for name in loos} or None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = azs.compare(loos, method="stacking", round_to="none")
    return {str(k): float(table.loc[k, "weight"]) for k in loos}


def weights_reading(info: dict, loo: dict | None) -> str:
    """One paragraph: which laws carry the extrapolation, how sure, and what LOO says.

    Examples
    --------
    >>> info = {"weights": {"a": 0.8, "b": 0.2}, "tau": 0.0, "validated_decades": 0.4,
    ...         "splits": [{}, {}, {}]}
    >>> weights_reading(info, {"a": 0.1, "b": 0.9}).split(".")[0]
    'The rolling forecasts favour a (weight 0'
    """
    w = info["weights"]
    ranked = sorted(w.items(), key=lambda kv: -kv[1])
    top, wt = ranked[0]
    n = len(w)
    if wt < 1.5 / n:
        head = (f"The rolling forecasts barely separate the {n} laws (weights "
                + ", ".join(f"{k} {v:.2f}" for k, v in ranked)
                + "): the answers average over them, and their spread is part of every interval.")
    else:
        head = (f"The rolling forecasts favour {top} (weight {wt:.2f}; "
                + ", ".join(f"{k} {v:.2f}" for k, v in ranked[1:])
                + "), but the weights stay away from 0 and 1 as far as "
                f"{len(info['splits'])} rolling splits cannot rule a law out.")
    parts = [head]
    upper = info.get("upper") or {}
    if upper.get("fitted"):
        parts.append(f"Members named @upper are the same laws fitted to the {upper['n_upper']} "
                     "runs at or above the median compute, which gives the larger runs more say; "
                     "PSIS-LOO leaves them out, since they saw other runs.")
    if loo:
        loo_top = max(loo, key=loo.get)
        if loo_top != top and wt >= 1.5 / n:
            parts.append(f"PSIS-LOO prefers {loo_top} (LOO weight {loo[loo_top]:.2f}) for "
                         "interpolating the runs; for extrapolation the forecasts disagree, so "
                         "trust the stacking weights and expect the laws to part ways beyond "
                         "the data.")
        else:
            parts.append(f"PSIS-LOO also puts most weight on {loo_top} "
                         f"({loo[loo_top]:.2f}).")
    tau = info["tau"]
    if tau > 0:
        parts.append(f"The forecasts missed by more than the mixture expected, so every "
                     f"predictive interval is widened by a discrepancy of {tau:.3g} sd of log "
                     "loss per decade of compute beyond the runs.")
    else:
        parts.append("The mixture's forecasts were as accurate as it claimed: no discrepancy "
                     "was added.")
    parts.append(f"The splits validated extrapolation up to {info['validated_decades']:.2g} "
                 "decades of compute beyond their training runs; answers further out are "
                 "marked UNVALIDATED.")
    return " ".join(parts)


def lack_of_fit_reading(lack_of_fit, drift) -> str | None:
    """Plain words on a flagged lack of fit (None when the laws describe the runs).

    Parameters
    ----------
    lack_of_fit : dict or None
        The ensemble's test (:func:`bayescale.scoring.discrepancy.lack_of_fit`, as recorded).
    drift : tuple of float
        ``(mean, sd)`` of the forecasts' drift per decade.

    Examples
    --------
    >>> lack_of_fit_reading({"flag": False}, (0.0, 0.0)) is None
    True
    >>> lack_of_fit_reading({"flag": True, "t": 10.2, "p": 5e-5, "n_clusters": 9,
    ...                      "slope_top": 0.075}, (0.075, 0.075))[:38]
    'the runs bend away from every law: th'
    """
    if not lack_of_fit or not lack_of_fit.get("flag"):
        return None
    mean, sd = drift
    return (
        "the runs bend away from every law: their residuals curve along compute "
        f"(t = {lack_of_fit['t']:.1f}, p = {lack_of_fit['p']:.1g} over "
        f"{lack_of_fit['n_clusters']} compute clusters), so forecasts beyond the largest run "
        f"drift by {mean:+.3f} ± {sd:.3f} nats of log loss per decade of extrapolation and no "
        "extrapolation of this fit is validated"
    )
