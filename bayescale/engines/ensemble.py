"""Fit a law ensemble: every card on all runs, rolling forecasts, stacking weights, discrepancy.

References
----------
Yao, Y., Vehtari, A., Simpson, D. & Gelman, A. (2018). Using stacking to average Bayesian
predictive distributions. Bayesian Analysis 13(3).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from bayescale.core.cards import load_card
from bayescale.core.diagnostics import RHAT_MAX
from bayescale.core.progress import tracker
from bayescale.core.runs import load_runs
from bayescale.engines.convergence import (
    REFIT_DRAWS_FACTOR,
    REFIT_TARGET_ACCEPT,
    REFIT_TUNE_FACTOR,
    REFITS,
    convergence_failures,
    fit_converged,
    outcome,
    recording_sampler_problems,
)
from bayescale.engines.executor import run_tasks
from bayescale.engines.pooled import fit_families
from bayescale.engines.single import fit_card
from bayescale.engines.upper import runs_for, upper_cards
from bayescale.errors import ConvergenceError, InputError, SamplerWarning
from bayescale.fits.members import assemble
from bayescale.scoring.splits import DEFAULT_FRACS, ByCompute, ByFamily
from bayescale.scoring.stacking import DIRICHLET_A, card_log_density, fit_tau, stacking_weights

__all__ = ["DEFAULT_CARDS", "REFITS", "REFIT_DRAWS_FACTOR", "REFIT_TARGET_ACCEPT",
           "REFIT_TUNE_FACTOR", "REPEAT_CARDS",
           "assemble", "check_cards", "convergence_failures", "default_cards", "fit_converged",
           "fit_ensemble", "fit_families_ensemble", "forecast_weights",
           "recording_sampler_problems", "weigh_forecasts"]

DEFAULT_CARDS = ("chinchilla", "chinchilla-tied", "kaplan-linf", "chinchilla-interaction")
"""Cards of the default ensemble (see the README, "How far to trust the intervals"). A pooled
ensemble of families takes those with a ``[pooling]`` table. ``chinchilla-interaction`` lets the
loss depend on D/N at fixed compute, the direction along which the Chinchilla law's held-out
residuals are biased on Epoch's runs (issue 19)."""

REPEAT_CARDS = ("data-constrained",)
"""Cards that join the default ensemble when the runs repeat data (a unique-token column ``U``
with some run trained for more than one epoch): laws the plain forms cannot stand in for."""

_EPOCH_TOL = 1e-6

def repeats_data(runs) -> bool:
    """Whether some run saw its unique tokens more than once (``D > U``).

    Parameters
    ----------
    runs : Runs
        The runs (``U`` is read when the table has a unique-token column).

    Returns
    -------
    bool
        False without a ``U`` column.
    """
    frame = runs.frame
    if "U" not in frame:
        return False
    epochs = frame["D"].to_numpy(float) / frame["U"].to_numpy(float)
    return bool(np.any(epochs > 1.0 + _EPOCH_TOL))


def default_cards(runs) -> tuple[str, ...]:
    """The default ensemble's cards for ``runs``.

    :data:`DEFAULT_CARDS`, plus :data:`REPEAT_CARDS` where the data allow: when some run repeats
    its unique tokens (Muennighoff et al. 2023), the data-constrained law joins, and stacking
    decides its weight like any other member's.

    Parameters
    ----------
    runs : Runs
        The runs the ensemble is fitted to.

    Returns
    -------
    tuple of str
        Card names.

    Examples
    --------
    >>> import bayescale as bs
    >>> default_cards(bs.datasets.simulate(random_seed=0))
    ('chinchilla', 'chinchilla-tied', 'kaplan-linf', 'chinchilla-interaction')
    """
    return DEFAULT_CARDS + (REPEAT_CARDS if repeats_data(runs) else ())


def fit_ensemble(
    runs,
    *,
    cards=None,
    holdout_fracs=DEFAULT_FRACS,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    split_draws: int = 1000,
    split_tune: int = 1000,
    random_seed: int = 0,
    dirichlet_a: float = DIRICHLET_A,
    discrepancy: bool = True,
    upper: bool | None = None,
    sampler: str = "nutpie",
    strict: bool = False,
    log_likelihood: bool = True,
    progress=None,
    executor: str = "process",
    max_workers: int | None = None,
    **load_kwargs,
):
    """Fit an ensemble of cards, weighted by stacking of rolling-origin forecasts.

    Each card is fitted to all runs (the members), and to the upper half of the runs by compute
    (``<card>@upper``, :mod:`bayescale.engines.upper`) when they allow. For each rolling split
    (:func:`bayescale.scoring.splits.rolling_splits`) each card is refitted below the split's
    compute cutoff and its posterior predictive scored on the runs above it. The weights are
    the posterior mean of Bayesian stacking of those forecast densities
    (:func:`bayescale.scoring.stacking.stacking_weights`), and the extrapolation discrepancy
    ``tau`` maximises the pooled forecast log score of the weighted mixture
    (:func:`~bayescale.scoring.stacking.fit_tau`). The largest distance (decades of compute
    beyond a split's training runs) that the splits forecast is recorded as
    ``validated_decades``: answers further out are flagged as unvalidated.

    Only converged fits count (R-hat <= 1.01, no divergences). A fit that has not converged is
    refitted (:func:`fit_converged`: new seed, longer tuning, longer chains). A split fit that
    still fails leaves its split out of the stacking evidence, so the weights come from the
    splits where every fit converged; a member whose fit on all runs still fails leaves the
    ensemble. The record's ``convergence`` says which fits were refitted, left out or dropped,
    and why.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        The runs.
    cards : sequence of str, Path or Card, optional
        Candidate cards (at least one; names must be distinct). Default:
        :func:`default_cards` of the runs (:data:`DEFAULT_CARDS`, plus the data-constrained law
        when some run repeats data).
    holdout_fracs : sequence of float, default (0.1, 0.2, 0.3)
        Held-out fractions of the rolling splits.
    draws, tune, chains : int
        Sampler settings of the members' fits on all runs.
    split_draws, split_tune : int
        Sampler settings of the rolling-split fits (only their forecasts are kept). At 500,
        ``kaplan-linf`` fits of the Chinchilla splits had R-hat up to 1.03.
    random_seed : int, default 0
        Seed of every fit and of the stacking sampler.
    dirichlet_a : float, default 2
        Dirichlet prior concentration of the weights.
    discrepancy : bool, default True
        Learn ``tau`` (False: ``tau = 0``).
    upper : bool or None, default None
        Upper-ladder members, in the members and every split: None when the runs allow them
        (:func:`~bayescale.engines.upper.upper_rule`), True always, False never.
    sampler : {"nutpie", "pymc"}
        NUTS implementation.
    strict : bool, default False
        Raise :class:`~bayescale.errors.ConvergenceError` when a member's fit has not converged
        after its refits (instead of dropping its card).
    log_likelihood : bool, default True
        Store each member's pointwise log-likelihood (for PSIS-LOO).
    progress : bool or callable, optional
        One progress bar over all fits (see :func:`bayescale.core.progress.tracker`).
    executor : {"process", "serial", "ray"}, default "process"
        Where the members' and the splits' fits run, all of them independent given the seed
        (:func:`bayescale.engines.executor.run_tasks`): the same posteriors, bit for bit, from
        every executor. ``"process"`` runs ``cores // chains`` worker processes, and the fits
        in this process when that is 1 (two cores and four chains: nutpie already keeps the
        cores busy); ``"ray"`` runs Ray tasks (``pip install bayescale[ray]``), on the
        cluster at ``RAY_ADDRESS`` when set.
    max_workers : int, optional
        Worker processes of ``executor="process"`` (default ``cores // chains``).
    **load_kwargs
        Passed to :func:`bayescale.load_runs` when ``runs`` is a path or frame.

    Returns
    -------
    xarray.DataTree
        Root: ``constant_data``, ``observed_data`` and attrs ``bayescale_ensemble`` (JSON:
        ``cards``, ``weights``, ``tau``, ``validated_decades``, ``splits``, ``stacking``,
        ``card_forecast_lpd``, ``notes``, ``convergence``, ``upper``) and the provenance
        attributes of the member with the largest weight (``bayescale_card``, ...; the runs
        are all the runs). Children ``member_<k>``: the members' fits (of the cards kept).

    Raises
    ------
    InputError
        For no cards, duplicate card names, or runs too few for any rolling split.

    References
    ----------
    Yao et al. (2018), Bayesian Analysis 13(3); Kennedy & O'Hagan (2001), JRSS B 63(3).

    Examples
    --------
    >>> import bayescale as bs
    >>> ens = fit_ensemble(bs.datasets.simulate(random_seed=0), draws=500)  # doctest: +SKIP
    >>> bs.ensemble.ensemble_info(ens)["weights"]  # doctest: +SKIP
    {'chinchilla': 0.41, 'chinchilla-tied': 0.37, 'kaplan-linf': 0.22}
    """


    if cards is not None:
        card_objs = [load_card(c) for c in cards]
        check_cards(card_objs)
        variables = tuple(dict.fromkeys(v for c in card_objs for v in c.law_spec.variables))
    else:
        variables = ("N", "D")
    runs = load_runs(runs, variables=variables, **load_kwargs) if load_kwargs or not hasattr(
        runs, "subset") else runs
    if cards is None:
        card_objs = [load_card(c) for c in default_cards(runs)]
    card_objs, upper_record = upper_cards(runs, card_objs, upper=upper)
    fit_one = functools.partial(fit_card, chains=chains, sampler=sampler,
                                random_seed=random_seed)
    return _fit_members_and_weights(
        runs, card_objs, splitter=ByCompute(), fit_one=fit_one, holdout_fracs=holdout_fracs,
        draws=draws, tune=tune, split_draws=split_draws, split_tune=split_tune, chains=chains,
        random_seed=random_seed, dirichlet_a=dirichlet_a, discrepancy=discrepancy,
        strict=strict, log_likelihood=log_likelihood, progress=progress, executor=executor,
        max_workers=max_workers, extra={"upper": upper_record},
    )


def fit_families_ensemble(
    runs,
    *,
    group_by: str,
    cards=None,
    holdout_fracs=DEFAULT_FRACS,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    split_draws: int = 1000,
    split_tune: int = 1000,
    random_seed: int = 0,
    dirichlet_a: float = DIRICHLET_A,
    discrepancy: bool = True,
    strict: bool = False,
    log_likelihood: bool = True,
    progress=None,
    executor: str = "process",
    max_workers: int | None = None,
):
    """Fit the law ensemble with every card pooled over the families of ``group_by``.

    The loop of :func:`fit_ensemble` with one pooled model per card
    (:func:`bayescale.engines.pooled.fit_families`) in place of one fit per card, and the
    splits of :class:`~bayescale.scoring.splits.ByFamily`: every family holds out its own
    largest runs by compute (a family too small to split keeps all its runs for training), each
    card's pooled model is refitted on the rest, and each family's view forecasts that family's
    held-out runs. One set of weights and one ``tau`` maximise the forecast score pooled over
    families (each held-out run counted once), since the question "which law extrapolates" is
    asked of the same kind of runs in every family.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        Runs of every family.
    group_by : str
        Column that labels the families.
    cards : sequence of str, Path or Card, optional
        Candidate cards, each with a ``[pooling]`` table. Default: :func:`default_cards`,
        less the :data:`DEFAULT_CARDS` without one (``chinchilla-interaction``).
    holdout_fracs, draws, tune, chains, split_draws, split_tune, random_seed, dirichlet_a,
    discrepancy, strict, log_likelihood, progress, executor, max_workers
        As in :func:`fit_ensemble`.

    Returns
    -------
    xarray.DataTree
        An ensemble tree whose members are pooled fits (record with ``"pooled": True``); its
        root attrs carry the families too, so every per-family answer works on it
        (:func:`bayescale.fits.family_view` gives one ensemble per family).

    Raises
    ------
    InputError
        For cards that pool nothing, or runs too few for any rolling split.

    References
    ----------
    Yao et al. (2018), Bayesian Analysis 13(3); Gelman & Hill (2007), ch. 12-13.
    """
    runs = load_runs(runs, group_by=group_by)
    if cards is None:  # the default cards that pool; a repeat-data card is checked below
        cards = [n for n in default_cards(runs)
                 if n not in DEFAULT_CARDS or load_card(n).pooling]
    card_objs = [load_card(c) for c in cards]
    check_cards(card_objs)
    unpooled = [c.name for c in card_objs if not c.pooling]
    if unpooled:
        raise InputError(f"cards {', '.join(unpooled)} have no [pooling] table; a pooled "
                         "ensemble needs every card to say what it pools")
    fit_one = functools.partial(fit_families, group_by=group_by, chains=chains,
                                random_seed=random_seed)
    tree = _fit_members_and_weights(
        runs, card_objs, splitter=ByFamily(), fit_one=fit_one, holdout_fracs=holdout_fracs,
        draws=draws, tune=tune, split_draws=split_draws, split_tune=split_tune, chains=chains,
        random_seed=random_seed, dirichlet_a=float(dirichlet_a), discrepancy=discrepancy,
        strict=strict, log_likelihood=log_likelihood, progress=progress, executor=executor,
        max_workers=max_workers, extra={"pooled": True},
    )
    return tree


def _fit_members_and_weights(runs, card_objs, *, splitter, fit_one, holdout_fracs, draws,
                             tune, split_draws, split_tune, chains, random_seed, dirichlet_a,
                             discrepancy, strict, log_likelihood, progress, executor,
                             max_workers, extra=None):
    """The ensemble loop: members on all runs and the split fits (one batch of independent
    fits, :func:`~bayescale.engines.executor.run_tasks`), then the forecast record, the tree."""
    check_cards(card_objs)
    folds, notes = splitter.splits(runs, fracs=holdout_fracs, card_objs=card_objs)
    if not folds:
        raise splitter.too_few(runs, card_objs, notes)
    members = [(f"member {card.name}", {"fit_one": fit_one, "runs": runs_for(card, runs),
                                        "card": card,
                                        "draws": draws, "tune": tune,
                                        "random_seed": random_seed,
                                        "label": f"member {card.name!r}",
                                        "log_likelihood": log_likelihood})
               for card in card_objs]
    splits = _split_tasks(runs, card_objs, splitter=splitter, fit_one=fit_one, folds=folds,
                          split_draws=split_draws, split_tune=split_tune,
                          random_seed=random_seed)
    with tracker(progress, total=len(members) + len(splits),
                 description=splitter.description) as advance:
        results = run_tasks(_fit_task, members + splits, executor=executor,
                            max_workers=max_workers, threads_per_task=chains,
                            on_done=lambda i: advance())
    member_fits = [tree for tree, _ in results[:len(members)]]
    member_records = [record for _, record in results[:len(members)]]
    kept, dropped = _keep_converged_members(card_objs, member_records, strict=strict)
    n_cards = len(card_objs)
    split_results = [res for i, res in enumerate(results[len(members):]) if i % n_cards in kept]
    info = _forecast_record(
        runs, [card_objs[k] for k in kept], splitter=splitter, folds=folds, notes=notes,
        results=split_results, split_draws=split_draws, split_tune=split_tune, chains=chains,
        random_seed=random_seed, dirichlet_a=dirichlet_a, discrepancy=discrepancy,
        member_records=member_records, dropped_members=dropped,
    )
    by_name = {c.name: member_fits[k] for k, c in enumerate(card_objs)}
    kept_fits = [by_name[n] for n in info["cards"]]
    weights = [info["weights"][n] for n in info["cards"]]
    info.update(splitter.lack_of_fit(runs, kept_fits, weights))
    return assemble(kept_fits, {**info, **(extra or {})})


def _keep_converged_members(card_objs, records, *, strict: bool):
    """Indices of the cards whose member fit converged, and ``{card: reason}`` of those dropped.

    A card whose fit on all runs does not converge after its refits leaves the ensemble (its
    forecasts are not fitted either). When no member converged, all are kept and warned about.
    ``strict`` raises instead of dropping.
    """
    for rec in records:
        for msg in rec["problems"]:
            warnings.warn(msg, SamplerWarning, stacklevel=4)
    bad = [k for k, rec in enumerate(records) if not rec["converged"]]
    if bad and strict:
        raise ConvergenceError("; ".join(outcome(records[k]) for k in bad))
    if not bad:
        return list(range(len(card_objs))), {}
    if len(bad) == len(card_objs):
        warnings.warn("no member fit converged, even after refits; every card is kept: "
                      + " | ".join(outcome(r) for r in records), SamplerWarning, stacklevel=4)
        return list(range(len(card_objs))), {}
    dropped = {card_objs[k].name: outcome(records[k]) for k in bad}
    warnings.warn("cards dropped from the ensemble because their fit on all runs did not "
                  "converge: " + " | ".join(dropped.values()), SamplerWarning, stacklevel=4)
    return [k for k in range(len(card_objs)) if k not in bad], dropped


def _fit_task(*, fit_one, runs, card, draws, tune, random_seed, label, **kwargs):
    """One fit of the ensemble loop, refitted until it converges (:func:`fit_converged`).

    Returns ``(tree, record)``; the fit's sampler problems are in ``record["problems"]``
    (recorded wherever the fit ran, re-emitted or summarised by the caller).
    """
    return fit_converged(fit_one, runs, card=card, draws=draws, tune=tune,
                         random_seed=random_seed, label=label, **kwargs)


def _split_tasks(runs, card_objs, *, splitter, fit_one, folds, split_draws, split_tune,
                 random_seed) -> list:
    """Tasks of :func:`_fit_task`: every card on each split's training runs, split by split."""
    tasks = []
    for fold in folds:
        train = runs.subset(~fold.mask)
        for card in card_objs:
            label = splitter.label(fold, card)
            tasks.append((label, {"fit_one": fit_one, "runs": runs_for(card, train), "card": card,
                                  "draws": split_draws, "tune": split_tune,
                                  "random_seed": random_seed, "label": label,
                                  "log_likelihood": False}))
    return tasks


def forecast_weights(runs, card_objs, *, holdout_fracs=DEFAULT_FRACS, split_draws: int = 1000,
                     split_tune: int = 1000, chains: int = 4, random_seed: int = 0,
                     sampler: str = "nutpie", dirichlet_a: float = DIRICHLET_A,
                     discrepancy: bool = True, advance=None, executor: str = "process",
                     max_workers: int | None = None) -> dict:
    """Stacking weights, discrepancy and validated distance from rolling forecasts of ``runs``.

    Parameters
    ----------
    runs : Runs
        The runs.
    card_objs : sequence of Card
        The candidate cards (distinct names).
    holdout_fracs, split_draws, split_tune, chains, random_seed, sampler, dirichlet_a,
    discrepancy
        As in :func:`fit_ensemble`.
    advance : callable, optional
        Called after each split fit (progress).
    executor, max_workers
        As in :func:`fit_ensemble`.

    Returns
    -------
    dict
        The ensemble record of :func:`weigh_forecasts`.

    Raises
    ------
    InputError
        When the runs are too few for any rolling split.
    """
    check_cards(card_objs)
    splitter = ByCompute()
    folds, notes = splitter.splits(runs, fracs=holdout_fracs, card_objs=card_objs)
    if not folds:
        raise splitter.too_few(runs, card_objs, notes)
    fit_one = functools.partial(fit_card, chains=chains, sampler=sampler,
                                random_seed=random_seed)
    tasks = _split_tasks(runs, card_objs, splitter=splitter, fit_one=fit_one, folds=folds,
                         split_draws=split_draws, split_tune=split_tune,
                         random_seed=random_seed)
    results = run_tasks(_fit_task, tasks, executor=executor, max_workers=max_workers,
                        threads_per_task=chains,
                        on_done=None if advance is None else lambda i: advance())
    return _forecast_record(
        runs, card_objs, splitter=splitter, folds=folds, notes=notes, results=results,
        split_draws=split_draws, split_tune=split_tune, chains=chains, random_seed=random_seed,
        dirichlet_a=dirichlet_a, discrepancy=discrepancy,
    )


def _forecast_record(runs, card_objs, *, splitter, folds, notes, results, split_draws,
                     split_tune, chains, random_seed, dirichlet_a, discrepancy,
                     member_records=(), dropped_members=None) -> dict:
    """Score each split's fits (``results``: ``(tree, record)`` of :func:`fit_converged`, split
    by split, card by card) on its held-out runs, then weigh.

    A split fit that did not converge even after its refits leaves its split out of the
    stacking evidence (:func:`_evidence`).
    """
    fold_blocks, docs, records = [], [], []
    n_cards = len(card_objs)
    for j, fold in enumerate(folds):
        chunk = results[j * n_cards:(j + 1) * n_cards]
        posts = [tree for tree, _ in chunk]
        recs = [record for _, record in chunk]
        blocks = splitter.blocks(runs, fold, posts)
        fold_blocks.append(blocks)
        docs.append(splitter.doc(runs, fold, blocks))
        records.append(recs)
    keep_folds, keep_cards, convergence = _evidence(
        records, [c.name for c in card_objs], list(member_records), dropped_members or {})
    problems = [msg for fi in keep_folds for k in keep_cards for msg in records[fi][k]["problems"]]
    pieces, row_masks = [], []
    for fi in keep_folds:
        for row, mask in fold_blocks[fi]:
            pieces.append([row[k] for k in keep_cards])
            row_masks.append(mask)
    return weigh_forecasts(
        pieces, row_masks, [folds[fi].mask for fi in keep_folds],
        names=[card_objs[k].name for k in keep_cards],
        split_docs=[docs[fi] for fi in keep_folds], dirichlet_a=dirichlet_a,
        discrepancy=discrepancy, random_seed=random_seed, method=splitter.method, notes=notes,
        problems=problems,
        split_settings={"draws": split_draws, "tune": split_tune, "chains": chains},
        stacklevel=5, convergence=convergence,
    )


def _evidence(records, names, member_records, dropped_members):
    """Which splits and cards the stacking evidence keeps, and the record of why.

    ``records[i][k]``: :func:`fit_converged` record of card ``k`` on split ``i``. A split with a
    fit that did not converge even after its refits is left out (for every card, since stacking
    compares the cards on the same held-out runs), so each card's weight is learned from the
    splits where all fits converged. If that leaves no split, the card with the most failed
    splits is dropped from the ensemble, and so on until a split is clean; if a single card is
    left with no clean split, every split is kept and the record says so.

    Returns
    -------
    tuple
        ``(kept split indices, kept card indices, convergence record)``.
    """
    n_folds = len(records)
    cards = list(range(len(names)))
    failed = {(i, k) for i in range(n_folds) for k in cards if not records[i][k]["converged"]}

    def clean(kept):
        return [i for i in range(n_folds) if not any((i, k) in failed for k in kept)]

    dropped = dict(dropped_members)
    while not clean(cards) and len(cards) > 1:
        worst = max(cards, key=lambda k: (sum((i, k) in failed for i in range(n_folds)), -k))
        cards.remove(worst)
        n_bad = sum((i, worst) in failed for i in range(n_folds))
        dropped[names[worst]] = (f"its fits did not converge on {n_bad} of {n_folds} rolling "
                                 "splits, leaving no split to weigh it on")
    folds = clean(cards)
    fallback = not folds
    if fallback:
        folds = list(range(n_folds))
    every = [rec for rec in member_records] + [r for row in records for r in row]
    refitted = [outcome(r) for r in every if len(r["attempts"]) > 1 and r["converged"]]
    excluded = [outcome(records[i][k]) for i in range(n_folds) for k in range(len(names))
                if (i, k) in failed and (i not in folds or k not in cards or fallback)]
    record = {
        "rule": f"a fit counts when R-hat <= {RHAT_MAX} and it has no divergences; else it is "
                f"refitted up to {REFITS} times (new seed, {REFIT_TUNE_FACTOR}x tuning, "
                f"{REFIT_DRAWS_FACTOR}x draws thinned back, target acceptance "
                f"{REFIT_TARGET_ACCEPT}), and a split fit that still fails "
                "leaves its split out of the stacking evidence",
        "n_fits": len(every),
        "n_refitted": sum(len(r["attempts"]) > 1 for r in every),
        "refitted": refitted,
        "excluded_split_fits": [] if fallback else excluded,
        "excluded_splits": [i for i in range(n_folds) if i not in folds],
        "dropped_cards": dropped,
        "unconverged_kept": excluded if fallback else [
            outcome(r) for r in member_records
            if not r["converged"] and r["card"] not in dropped],
        "attempts": {r["label"]: r["attempts"] for r in every if len(r["attempts"]) > 1},
    }
    return folds, cards, record


def weigh_forecasts(pieces, row_masks, split_masks, *, names, split_docs,
                    dirichlet_a: float = DIRICHLET_A, discrepancy: bool = True,
                    random_seed: int = 0, method: str, notes=(), problems=(),
                    split_settings=None, stacklevel: int = 2, convergence=None) -> dict:
    """The ensemble record from rolling forecasts: stacking weights, ``tau``, validated distance.

    Parameters
    ----------
    pieces : list of list of dict
        ``pieces[j][k]``: the forecast piece
        (:func:`bayescale.scoring.splits.forecast_piece`) of card ``k`` on held-out block
        ``j`` (a split, or one family of a split).
    row_masks : sequence of numpy.ndarray of bool
        The runs of each block, over all runs, in the order of ``pieces``.
    split_masks : sequence of numpy.ndarray of bool
        The held-out runs of each split: a run held out by ``m`` splits weighs ``1/m`` in the
        stacking evidence, so that every held-out run counts once.
    names : sequence of str
        Card names, in the order of ``pieces[j]``.
    split_docs : list of dict
        One per split, each with ``max_delta_decades``.
    dirichlet_a, discrepancy, random_seed
        As in :func:`fit_ensemble`.
    method : str
        How the forecasts were made (recorded).
    notes, problems : sequence of str
        Skipped splits and sampler problems of the split fits (warned about once here).
    split_settings : dict, optional
        Sampler settings of the split fits (recorded).
    stacklevel : int, default 2
        Of the sampler-problem warning.
    convergence : dict, optional
        Which fits were refitted, which split fits and splits were left out of the evidence and
        which cards dropped, and why (recorded as ``convergence``; warned about when anything
        was left out).

    Returns
    -------
    dict
        ``cards``, ``weights``, ``tau``, ``validated_decades``, ``splits``, ``stacking``,
        ``discrepancy``, ``card_forecast_lpd``, ``split_settings``, ``notes``,
        ``split_sampler_problems`` (of the fits whose forecasts count), ``convergence``.

    References
    ----------
    Yao et al. (2018), Bayesian Analysis 13(3).
    """
    problems = list(problems)
    convergence = dict(convergence or {})
    if problems:
        n_fits = len(split_docs) * len(names)
        warnings.warn(
            f"{len(problems)} of {n_fits} counted rolling-split fits converged (R-hat, no "
            "divergences) but had other sampler problems: " + " | ".join(problems[:3])
            + (" | ..." if len(problems) > 3 else ""),
            SamplerWarning,
            stacklevel=stacklevel,
        )
    left_out = convergence.get("excluded_split_fits", []) + convergence.get("unconverged_kept",
                                                                            [])
    if left_out:
        what = ("left out of the stacking evidence" if convergence.get("excluded_split_fits")
                else "kept: nothing converged to replace them")
        warnings.warn(f"{len(left_out)} fits did not converge even after refits ({what}): "
                      + " | ".join(left_out), SamplerWarning, stacklevel=stacklevel)
    count = np.stack(list(split_masks)).sum(axis=0)
    multiplicity = np.concatenate([count[m] for m in row_masks])
    log_dens = np.concatenate(
        [np.stack([card_log_density(p) for p in row]) for row in pieces], axis=1
    )
    weights, stack_info = stacking_weights(log_dens, multiplicity=multiplicity, a=dirichlet_a,
                                           random_seed=random_seed)
    tau, tau_info = fit_tau(pieces, weights) if discrepancy else (0.0, {})
    return {
        "cards": list(names),
        "weights": {n: float(w) for n, w in zip(names, weights, strict=True)},
        "tau": float(tau),
        "validated_decades": float(max(d["max_delta_decades"] for d in split_docs)),
        "splits": split_docs,
        "stacking": {**stack_info, "method": method,
                     "multiplicity": "each held-out run counts once"},
        "discrepancy": tau_info,
        "card_forecast_lpd": {n: float(np.mean(log_dens[k])) for k, n in enumerate(names)},
        "split_settings": split_settings or {},
        "notes": list(notes),
        "split_sampler_problems": problems,
        "convergence": convergence,
    }


def check_cards(card_objs) -> list[str]:
    """Names of an ensemble's cards; raise unless there is at least one and all are distinct.

    Parameters
    ----------
    card_objs : sequence of Card
        The loaded cards.

    Returns
    -------
    list of str
        Their names.

    Raises
    ------
    InputError
        For no cards or a repeated name.
    """
    names = [c.name for c in card_objs]
    if not names:
        raise InputError("an ensemble needs at least one card")
    if len(set(names)) != len(names):
        raise InputError(f"ensemble cards must be distinct, got {names}")
    return names
