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
from bayescale.scoring.discrepancy import DEFAULT_FRACS, Discrepancy, pooled_lpd
from bayescale.scoring.forecast import predictive_scores, split_by_compute
from bayescale.scoring.splits import forecast_piece
from bayescale.scoring.stacking import fit_tau

__all__ = ["estimate_discrepancy"]


def _split_table(piece, frac) -> pd.DataFrame:
    """One split's held-out runs: distance, residual from the predictive median, noise."""
    median = predictive_scores(piece["y"], piece["mu"], piece["sigma"], family=piece["family"],
                               nu=piece["nu"], probs=(0.5,))["median"]
    return pd.DataFrame({
        "holdout_frac": float(frac),
        "N": piece["N"],
        "D": piece["D"],
        "C": piece["C"],
        "loss": np.exp(piece["y"]),
        "delta_decades": piece["delta"],
        "resid": piece["y"] - median,
        "sigma_median": float(np.median(piece["sigma"])),
    })


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

    For each fraction the top ``holdout_frac`` of runs by compute are held out
    (:func:`bayescale.scoring.forecast.split_by_compute`; unlike the ensemble's rolling splits, a
    fraction that repeats a cutoff is kept, as before), the card is fitted on each split's
    training runs, and ``tau`` comes from the ensemble's estimator
    (:func:`bayescale.scoring.stacking.fit_tau`, for a mixture of this one card): each held-out
    run contributes its per-draw law log loss ``mu_s``, noise ``sigma_s`` (``nu_s``) and distance
    ``Delta`` beyond that split's largest training compute, and ``tau`` maximises the pooled log
    predictive density of all held-out runs over ``[0, 1]``; with a Student-t card the t family
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
    for frac in fracs:  # every fraction its own split, as asked (a repeated cutoff counts twice)
        try:
            mask, _ = split_by_compute(runs.C, holdout_frac=frac,
                                       min_train=card_obj.n_params + 1)
        except InputError as err:
            notes.append(f"holdout_frac {frac:g} skipped: {err}")
            continue
        train, test = runs.subset(~mask), runs.subset(mask)
        post = fit_card(train, card=card_obj, draws=draws, tune=tune, chains=chains,
                        random_seed=random_seed, log_likelihood=False)
        piece = forecast_piece(post, test, train_cmax=float(np.max(train.C)))
        piece.update(N=test.N, D=test.D)
        pieces.append(piece)
        tables.append(_split_table(piece, frac))
        used.append(frac)
    if not pieces:
        raise InputError(
            f"no usable split among holdout_fracs {list(fracs)} for {len(runs)} runs: "
            + "; ".join(notes)
        )
    # the ensemble's estimator, for a mixture of one card
    tau, _ = fit_tau([[p] for p in pieces], [1.0])
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
