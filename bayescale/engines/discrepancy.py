"""Calibrate the extrapolation discrepancy of one card by rolling-origin backtests.

The discrepancy's maths (:class:`~bayescale.scoring.discrepancy.Discrepancy`, the inflated scale,
the pooled score) live in :mod:`bayescale.scoring.discrepancy`; this engine fits the card on each
split and chooses ``tau`` (a law ensemble learns its own in :mod:`bayescale.engines.ensemble`).

References
----------
Kennedy, M. C. & O'Hagan, A. (2001). Bayesian calibration of computer models. JRSS B 63(3).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayescale.core.cards import load_card
from bayescale.core.runs import load_runs
from bayescale.engines.single import fit_card
from bayescale.errors import InputError
from bayescale.scoring.discrepancy import (
    DEFAULT_FRACS,
    Discrepancy,
    _best_tau,
    extrapolation_decades,
    pooled_lpd,
)
from bayescale.scoring.forecast import fit_predictive as _fit_predictive
from bayescale.scoring.forecast import predictive_scores, split_by_compute

__all__ = ["estimate_discrepancy"]


def _split_piece(train, test, card, frac, *, draws, tune, chains, random_seed):
    """Fit ``train`` and collect the predictive pieces of ``test`` (see :func:`pooled_lpd`)."""

    post = fit_card(train, card=card, draws=draws, tune=tune, chains=chains,
               random_seed=random_seed, log_likelihood=False)
    frame = test.frame
    N, D = frame["N"].to_numpy(float), frame["D"].to_numpy(float)
    C, loss = frame["C"].to_numpy(float), frame["loss"].to_numpy(float)
    extra = {k: frame[k].to_numpy(float) for k in ("U",) if k in frame}
    mu, sigma, nu, family = _fit_predictive(post, N, D, **extra)
    y = np.log(loss)
    delta = extrapolation_decades(C, float(np.max(train.C)))
    median = predictive_scores(y, mu, sigma, family=family, nu=nu, probs=(0.5,))["median"]
    table = pd.DataFrame({
        "holdout_frac": float(frac),
        "N": N,
        "D": D,
        "C": C,
        "loss": loss,
        "delta_decades": delta,
        "resid": y - median,
        "sigma_median": float(np.median(sigma)),
    })
    piece = {"y": y, "mu": np.asarray(mu, float), "sigma": np.asarray(sigma, float),
             "nu": None if nu is None else np.asarray(nu, float), "family": family,
             "delta": delta}
    return piece, table


def estimate_discrepancy(
    runs,
    *,
    card="chinchilla",
    holdout_fracs=DEFAULT_FRACS,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    priors=None,
) -> Discrepancy:
    """Calibrate the extrapolation discrepancy ``tau`` by rolling-origin backtests.

    For each fraction, the top ``holdout_frac`` of runs by compute are held out
    (:func:`bayescale.workflows.backtest.split_by_compute`), the card is fitted on the rest, and
    each
    held-out run contributes its per-draw law log loss ``mu_s``, noise ``sigma_s`` (``nu_s``) and
    distance ``Delta`` beyond that split's largest training compute. ``tau`` maximises the pooled
    log predictive density of all held-out runs over ``[0, 1]``; with a Student-t card the t family
    is kept and only its scale is inflated.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        The user's runs (only these are used; nothing else is held out).
    card : str, Path or Card, default "chinchilla"
        Model card.
    holdout_fracs : sequence of float, default (0.1, 0.2, 0.3)
        Held-out fractions, one split each. Splits that leave fewer training runs than the card's
        parameters plus one are skipped (recorded in ``notes``).
    draws, tune, chains : int
        Sampler settings of each fit.
    random_seed : int, default 0
        Seed of every fit.
    priors : Mapping, optional
        Prior overrides.

    Returns
    -------
    Discrepancy

    Raises
    ------
    InputError
        When no split is usable.

    References
    ----------
    Kennedy & O'Hagan (2001), JRSS B 63(3) (model discrepancy); Gneiting & Raftery (2007).

    Examples
    --------
    >>> import bayescale as bs
    >>> d = estimate_discrepancy(bs.datasets.simulate(), draws=300, tune=300)  # doctest: +SKIP
    >>> d.tau < 0.01  # doctest: +SKIP
    True
    """
    card_obj = load_card(card, priors=priors)
    runs = load_runs(runs)
    fracs = tuple(float(f) for f in holdout_fracs)
    if not fracs:
        raise InputError("holdout_fracs must hold at least one fraction in (0, 1)")
    pieces, tables, used, notes = [], [], [], []
    for frac in fracs:
        try:
            mask, _ = split_by_compute(runs.C, holdout_frac=frac,
                                       min_train=card_obj.n_params + 1)
        except InputError as err:
            notes.append(f"holdout_frac {frac:g} skipped: {err}")
            continue
        piece, table = _split_piece(
            runs.subset(~mask), runs.subset(mask), card_obj, frac,
            draws=draws, tune=tune, chains=chains, random_seed=random_seed,
        )
        pieces.append(piece)
        tables.append(table)
        used.append(frac)
    if not pieces:
        raise InputError(
            f"no usable split among holdout_fracs {list(fracs)} for {len(runs)} runs: "
            + "; ".join(notes)
        )
    tau = _best_tau(pieces)
    table = pd.concat(tables, ignore_index=True)
    return Discrepancy(
        tau=float(tau),
        n_heldout=len(table),
        holdout_fracs=tuple(used),
        table=table,
        lpd_without=pooled_lpd(0.0, pieces),
        lpd_with=pooled_lpd(tau, pieces),
        notes=tuple(notes),
    )
