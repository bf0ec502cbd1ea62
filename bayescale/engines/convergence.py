"""Only converged fits count: the convergence rule of the ensemble's fits, and their refits.

A fit counts when R-hat <= 1.01 and it has no divergences (:data:`~bayescale.core.diagnostics.
RHAT_MAX`). One that fails is refitted from a new seed with longer tuning and longer chains
(:func:`fit_converged`); split fits' sampler problems are gathered for one report
(:func:`recording_sampler_problems`).

References
----------
Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. & Buerkner, P.-C. (2021). Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC. Bayesian
Analysis 16(2).
"""

from __future__ import annotations

import contextlib
import json
import warnings

import numpy as np

from bayescale.core.diagnostics import RHAT_MAX
from bayescale.errors import SamplerWarning

__all__ = ["REFITS", "REFIT_DRAWS_FACTOR", "REFIT_TARGET_ACCEPT", "REFIT_TUNE_FACTOR",
           "convergence_failures", "fit_converged", "outcome", "recording_sampler_problems"]

REFITS = 2
"""Refits of a fit that did not converge (R-hat above 1.01 or a divergence), each from a new seed
with :data:`REFIT_TUNE_FACTOR` times the tuning, :data:`REFIT_DRAWS_FACTOR` times the draws and
target acceptance :data:`REFIT_TARGET_ACCEPT`."""

REFIT_TUNE_FACTOR = 2
"""Tuning of a refit, as a multiple of the first attempt's (longer mass-matrix adaptation)."""

REFIT_TARGET_ACCEPT = 0.99
"""Target acceptance of a refit (the first attempt's is the engine's, 0.95): a smaller step, the
usual cure for divergences. On the Epoch runs, 4x longer ``kaplan-linf`` chains at 0.95 still
met one divergence in 16000 draws, or a chain that lost its way (384)."""

REFIT_DRAWS_FACTOR = 4
"""Draws of a refit, as a multiple of the first attempt's, thinned back to its count so the fit
keeps its shape. On the failing fits of the public tables (issue 19) longer tuning alone rarely
helped: the chains mix slowly along the ridge of the irreducible loss against the exponents
(ESS of 0.02-0.1 per draw), and four times longer chains converged where three times the
tuning did not."""


def convergence_failures(tree) -> list[str]:
    """Why a fit did not converge: R-hat above 1.01 or divergent transitions (empty if it did).

    Low ESS alone does not count as failure (it is warned about, and the draws are unbiased);
    R-hat above :data:`~bayescale.core.diagnostics.RHAT_MAX` (chains that disagree) and
    divergences (regions the sampler could not explore) do.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit with ``bayescale_diagnostics`` in its attrs.

    Returns
    -------
    list of str
        E.g. ``["R-hat 1.654", "27 divergences"]``.
    """
    diag = json.loads(tree.attrs.get("bayescale_diagnostics", "{}"))
    out = []
    rhat = diag.get("max_rhat")
    if rhat is None or not rhat <= RHAT_MAX:
        out.append(f"R-hat {rhat:.3f}" if rhat is not None else "R-hat unknown")
    if diag.get("divergences"):
        out.append(f"{int(diag['divergences'])} divergences")
    return out


def fit_converged(fit_one, runs, *, card, draws, tune, random_seed, label, refits=REFITS,
                  **kwargs):
    """Fit ``card``; refit with a new seed and longer tuning while the fit has not converged.

    Attempt ``i`` (0, 1, ...) uses seed ``random_seed + i``; refits tune
    :data:`REFIT_TUNE_FACTOR` times longer, target an acceptance of
    :data:`REFIT_TARGET_ACCEPT` and draw :data:`REFIT_DRAWS_FACTOR` times as many draws, of
    which every ``REFIT_DRAWS_FACTOR``-th is kept, so a refit has the shape of the
    first attempt's fit. A fit that converged at the first attempt is exactly the fit without
    this policy.

    Parameters
    ----------
    fit_one : callable
        ``fit_one(runs, card=, draws=, tune=, random_seed=, strict=, **kwargs)``.
    runs : Runs
        The runs to fit.
    card : Card
        The card.
    draws, tune, random_seed : int
        Settings of the first attempt.
    label : str
        What to call the fit in the record and in messages.
    refits : int, default :data:`REFITS`
        Refits after the first attempt.
    **kwargs
        Passed to ``fit_one``.

    Returns
    -------
    tuple
        ``(tree, record)``: the last attempt's fit, and ``{"label", "card", "converged",
        "attempts": [{"seed", "tune", "draws", "thin", "target_accept", "max_rhat",
        "divergences", "failures"}, ...], "problems": [sampler messages of the last attempt]}``.
    """
    attempts = []
    for i in range(int(refits) + 1):
        thin = REFIT_DRAWS_FACTOR if i >= 1 else 1
        settings = {"draws": int(draws) * thin,
                    "tune": int(tune) * (REFIT_TUNE_FACTOR if i >= 1 else 1),
                    "random_seed": int(random_seed) + i}
        if i >= 1:
            settings["target_accept"] = REFIT_TARGET_ACCEPT
        problems: list = []
        with recording_sampler_problems(problems, label):
            tree = fit_one(runs, card=card, strict=False, **settings, **kwargs)
        failures = convergence_failures(tree)
        diag = json.loads(tree.attrs.get("bayescale_diagnostics", "{}"))
        attempts.append({"seed": settings["random_seed"], "tune": settings["tune"],
                         "draws": settings["draws"], "thin": thin,
                         "target_accept": settings.get("target_accept"),
                         "max_rhat": diag.get("max_rhat"),
                         "divergences": diag.get("divergences"), "failures": failures})
        if thin > 1:
            tree = _thin(tree, thin)
        if not failures:
            break
    return tree, {"label": label, "card": card.name, "converged": not failures,
                  "attempts": attempts, "problems": problems}


def _thin(tree, k: int):
    """Every ``k``-th draw of a fit, draws renumbered from 0 (the diagnostics attr is kept)."""

    def one(ds):
        if "draw" not in ds.dims:
            return ds
        out = ds.isel(draw=slice(None, None, k))
        return out.assign_coords(draw=np.arange(out.sizes["draw"]))

    out = tree.map_over_datasets(one)
    out.attrs = dict(tree.attrs)
    return out


def outcome(record) -> str:
    """One line about a fit's attempts, for the record and the messages."""
    first = record["attempts"][0]
    label = record["label"]
    if record["card"] not in label:
        label = f"{label} {record['card']}"
    if len(record["attempts"]) == 1:
        return f"{label}: converged"
    tried = "; ".join(f"seed {a['seed']}, tune {a['tune']}, draws {a['draws']}: "
                      + (", ".join(a["failures"]) or "converged") for a in record["attempts"][1:])
    head = f"{label}: {', '.join(first['failures'])}; refitted ({tried})"
    return head if record["converged"] else head + "; still not converged"


@contextlib.contextmanager
def recording_sampler_problems(problems: list, label: str):
    """Record the :class:`SamplerWarning` s raised inside the block as ``"label: message"``.

    Rolling-split fits only serve their forecasts, so their sampler problems are gathered and
    reported once (:func:`weigh_forecasts`) instead of one warning per fit. Other warnings
    pass through unchanged.

    Parameters
    ----------
    problems : list
        Appended to in place.
    label : str
        Prefix of each recorded message (e.g. the split).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplerWarning)
        yield
    for w in caught:
        if issubclass(w.category, SamplerWarning):
            problems.append(f"{label}: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
