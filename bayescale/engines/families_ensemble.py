"""The law ensemble of pooled fits: every card pooled over the families, weighted by forecasts.

The data flow is that of :mod:`bayescale.ensemble`, with one pooled model per card
(:func:`bayescale.engines.pooled.fit_families`) in place of one fit per card:

1. each card is fitted to all families at once (the members);
2. for each held-out fraction, every family holds out its own largest runs by compute
   (:func:`bayescale.workflows.backtest_families.split_families`; a family too small to split keeps all
   its runs for training), each card's pooled model is refitted on the rest, and each family's
   view forecasts that family's held-out runs;
3. one set of stacking weights and one discrepancy ``tau`` maximise the forecast score pooled over
   families (each held-out run counted once), since the question "which law extrapolates" is
   asked of the same kind of runs in every family.

The result is an ensemble tree (:func:`bayescale.ensemble.assemble`) whose members are pooled fits;
:func:`bayescale.families.family_view` turns it into one ensemble per family, so per-family
predictions, optima and contrasts are mixtures too.

References
----------
Yao, Y., Vehtari, A., Simpson, D. & Gelman, A. (2018). Using stacking to average Bayesian
predictive distributions. Bayesian Analysis 13(3).
Gelman, A. & Hill, J. (2007). Data Analysis Using Regression and Multilevel/Hierarchical
Models. Cambridge University Press (partial pooling).
"""

from __future__ import annotations

import numpy as np

from bayescale.core.cards import load_card
from bayescale.core.progress import tracker
from bayescale.core.runs import load_runs
from bayescale.engines.ensemble import (
    check_cards,
    default_cards,
    recording_sampler_problems,
    weigh_forecasts,
)
from bayescale.engines.pooled import fit_families
from bayescale.errors import InputError
from bayescale.fits.families import family_view
from bayescale.fits.members import assemble
from bayescale.scoring.splits import DEFAULT_FRACS, family_splits, forecast_piece
from bayescale.scoring.stacking import DIRICHLET_A

__all__ = ["fit_families_ensemble"]


def fit_families_ensemble(
    runs,
    *,
    group_by: str,
    cards=None,
    holdout_fracs=None,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    split_draws: int = 1000,
    split_tune: int = 1000,
    random_seed: int = 0,
    dirichlet_a: float | None = None,
    discrepancy: bool = True,
    strict: bool = False,
    log_likelihood: bool = True,
    progress=None,
):
    """Fit the law ensemble with every card pooled over the families of ``group_by``.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        Runs of every family.
    group_by : str
        Column that labels the families.
    cards : sequence of str, Path or Card, optional
        Candidate cards, each with a ``[pooling]`` table. Default: the default ensemble's cards
        (:func:`bayescale.ensemble.default_cards` of the runs).
    holdout_fracs : sequence of float, optional
        Held-out fractions of the rolling splits (default those of :mod:`bayescale.ensemble`).
    draws, tune, chains, split_draws, split_tune, random_seed, strict, log_likelihood
        As in :func:`bayescale.ensemble.fit_ensemble`.
    dirichlet_a : float, optional
        Dirichlet concentration of the weights (default that of :mod:`bayescale.ensemble`).
    discrepancy : bool, default True
        Learn ``tau`` (False: ``tau = 0``).
    progress : bool or callable, optional
        One progress bar over all fits.

    Returns
    -------
    xarray.DataTree
        An ensemble tree (see :func:`bayescale.ensemble.fit_ensemble`) whose members are pooled
        fits; its root attrs carry ``bayescale_families`` too, so every per-family answer works
        on it (:func:`bayescale.families.family_view` gives one ensemble per family).

    Raises
    ------
    InputError
        For cards that pool nothing, or runs too few for any rolling split.

    References
    ----------
    Yao et al. (2018), Bayesian Analysis 13(3).
    """

    fracs = DEFAULT_FRACS if holdout_fracs is None else tuple(holdout_fracs)
    a = DIRICHLET_A if dirichlet_a is None else float(dirichlet_a)
    runs = load_runs(runs, group_by=group_by)
    card_objs = [load_card(c) for c in (default_cards(runs) if cards is None else cards)]
    names = check_cards(card_objs)
    unpooled = [c.name for c in card_objs if not c.pooling]
    if unpooled:
        raise InputError(f"cards {', '.join(unpooled)} have no [pooling] table; a pooled "
                         "ensemble needs every card to say what it pools")
    splits, notes = family_splits(runs, fracs=fracs)
    if not splits:
        raise InputError(
            f"{len(runs)} runs are too few for a rolling split of every family: "
            + "; ".join(notes) + ". Fit one card with --law NAME instead."
        )
    fam = runs.frame["family"].to_numpy(str)
    opts = dict(group_by=group_by, chains=chains, random_seed=random_seed)
    member_fits, pieces, row_masks, problems, split_docs = [], [], [], [], []
    with tracker(progress, total=len(card_objs) * (1 + len(splits)),
                 description="pooled ensemble fits") as advance:
        for card in card_objs:
            member_fits.append(fit_families(runs, card=card, draws=draws, tune=tune,
                                            strict=strict, log_likelihood=log_likelihood,
                                            **opts))
            advance()
        for frac, mask in splits:
            train = runs.subset(~mask)
            fam_train = fam[~mask]
            posts = []
            for card in card_objs:
                with recording_sampler_problems(problems, f"split {frac:g} {card.name}"):
                    posts.append(fit_families(train, card=card, draws=split_draws,
                                              tune=split_tune, log_likelihood=False, **opts))
                advance()
            deltas = []
            for lab in np.unique(fam[mask]):
                held = mask & (fam == lab)
                cmax = float(np.max(train.C[fam_train == lab]))
                test = runs.subset(held)
                row = [forecast_piece(family_view(p, lab), test, train_cmax=cmax) for p in posts]
                pieces.append(row)
                row_masks.append(held)
                deltas.append(float(np.max(row[0]["delta"])))
            split_docs.append({"holdout_frac": frac, "n_train": int((~mask).sum()),
                               "n_test": int(mask.sum()),
                               "max_delta_decades": max(0.0, max(deltas))})
    info = weigh_forecasts(
        pieces, row_masks, [m for _, m in splits], names=names, split_docs=split_docs,
        dirichlet_a=a, discrepancy=discrepancy, random_seed=random_seed,
        method="bayesian stacking of rolling-origin forecasts, pooled over families",
        notes=notes, problems=problems,
        split_settings={"draws": split_draws, "tune": split_tune, "chains": chains},
        stacklevel=3,
    )
    return assemble(member_fits, {**info, "pooled": True})
