"""Backtest a pooled fit family by family: hold out each family's largest runs, fit the rest.

Each family is split by compute on its own (:func:`bayescale.workflows.backtest.split_by_compute`), so
every family is extrapolated, whatever its compute range. The pooled fit is made on all training
runs at once and scored on each family's held-out runs through :func:`family_view`; with
``separate=True`` each family is also fitted alone on the same training runs, which is the
comparison that says whether pooling helps.
"""

from __future__ import annotations

import numpy as np

from bayescale.core.cards import load_card
from bayescale.core.runs import load_runs
from bayescale.engines.families_ensemble import fit_families_ensemble
from bayescale.engines.pooled import fit_families
from bayescale.fits.members import ensemble_info
from bayescale.errors import InputError
from bayescale.fits.families import family_view
from bayescale.scoring.splits import split_families
from bayescale.workflows.backtest import score_fit
from bayescale.workflows.fit import fit


def backtest_families(
    runs,
    *,
    group_by: str,
    card="chinchilla",
    holdout_frac: float = 0.2,
    separate: bool = False,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    priors=None,
):
    """Per-family backtest of the pooled fit (and optionally of separate per-family fits).

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        Runs of every family.
    group_by : str
        Column that labels the families.
    card : str, Path, Card or None, default "chinchilla"
        Model card. None: the law ensemble
        (:func:`bayescale.engines.families_ensemble.fit_families_ensemble`; each
        separate fit is then a single-family ensemble), with its weights and discrepancy
        learned on the training runs only.
    holdout_frac : float, default 0.2
        Share of each family's runs held out (its largest by compute).
    separate : bool, default False
        Also fit each family alone on its training runs and score it the same way.
    draws, tune, chains, random_seed, priors
        Sampler settings and prior overrides of every fit.

    Returns
    -------
    tuple
        ``(summary, table)``: a DataFrame with one row per family and method (``pooled``,
        ``separate``): ``n_train``, ``n_test``, ``lpd_mean`` (mean held-out log predictive
        density of log loss), ``coverage90``, ``mean_abs_error``; and the per-run table of
        :func:`bayescale.workflows.backtest.score_fit` with ``family`` and ``method`` columns. For the
        ensemble, ``summary.attrs["ensemble"]`` holds the pooled ensemble's ``weights``, ``tau``
        and ``validated_decades`` (learned on the training runs).
    """
    import pandas as pd


    if card is None and priors:
        raise InputError("prior overrides need one card: pass card=NAME with priors")
    card = None if card is None else load_card(card, priors=priors)
    runs = load_runs(runs, group_by=group_by)
    test = split_families(runs, holdout_frac=holdout_frac)
    train_runs, test_runs = runs.subset(~test), runs.subset(test)
    settings = dict(draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    if card is None:

        pooled = fit_families_ensemble(train_runs, group_by=group_by, split_draws=draws,
                                       split_tune=tune, log_likelihood=False, **settings)
    else:
        pooled = fit_families(train_runs, group_by=group_by, card=card, **settings)
    tables = []
    fam_test = test_runs.frame["family"].to_numpy(str)
    fam_train = train_runs.frame["family"].to_numpy(str)
    for lab in np.unique(fam_test):
        held = test_runs.subset(fam_test == lab)
        fits = {"pooled": family_view(pooled, lab)}
        if separate:
            fits["separate"] = fit(train_runs.subset(fam_train == lab), card=card, **settings)
        for method, f in fits.items():
            t = score_fit(f, held)
            t.insert(0, "method", method)
            t.insert(0, "family", lab)
            t["n_train"] = int((fam_train == lab).sum())
            tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    summary = (
        table.groupby(["family", "method"], sort=True)
        .agg(
            n_train=("n_train", "first"),
            n_test=("loss", "size"),
            lpd_mean=("lpd", "mean"),
            coverage90=("covered90", "mean"),
            mean_abs_error=("abs_error", "mean"),
        )
        .reset_index()
    )
    if card is None:  # what the pooled ensemble learned on the training runs

        info = ensemble_info(pooled)
        summary.attrs["ensemble"] = {k: info[k] for k in ("weights", "tau", "validated_decades")}
    return summary, table
