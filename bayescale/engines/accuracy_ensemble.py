"""The default fit of an accuracy metric: the accuracy laws stacked on rolling forecasts.

The loss ensemble's principle (:mod:`bayescale.engines.ensemble`) on the accuracy scale:

1. **Members.** Every accuracy law the table can feed: ``accuracy-direct`` (``log10 C``),
   ``accuracy-direct-nd`` (``log10 N``, ``log10 D``, when the table has them) and
   ``accuracy-two-step`` (the ``via`` loss, when one is named or the table has a ``loss`` column,
   and N and D for its first step), each fitted on all runs.
2. **Evidence.** Rolling-origin splits by compute (the top 10, 20, 30% of the runs held out):
   each law is fitted on the rest and forecasts the held-out accuracies. The two-step law
   forecasts through a loss fit of the ``via`` column on the same training runs (step 1, the
   ``chinchilla`` card), carried draw by draw (:mod:`bayescale.scoring.accuracy_latent`): the
   held-out runs' losses are not known when their accuracy is forecast.
3. **Weights and discrepancy.** Stacking weights from the forecasts' Beta-binomial log scores
   (:func:`bayescale.scoring.stacking.stacking_weights`), then the latent discrepancy ``tau``
   (logits per decade of extrapolation, :mod:`bayescale.scoring.accuracy_forecast`) that
   maximises the mixture's pooled log score (the one estimator,
   :func:`bayescale.scoring.stacking.fit_tau`).
4. **Lack of fit.** The residual-curvature test of the loss ensemble
   (:func:`bayescale.scoring.discrepancy.lack_of_fit`) on the mixture's in-sample accuracy
   residuals; when flagged, no extrapolation is validated and the record says so.
5. **Convergence.** Only converged fits count (:func:`bayescale.engines.ensemble.fit_converged`):
   a split whose fit of any law fails after refits leaves the evidence; a law whose fit on all runs
   fails leaves the mixture.

A task without signal above chance (:mod:`bayescale.scoring.chance`) is fitted with the direct
law alone and no splits: nothing of it is extrapolated.

References
----------
Yao, Y., Vehtari, A., Simpson, D. & Gelman, A. (2018). Using stacking to average Bayesian
predictive distributions. Bayesian Analysis 13(3).
Grattafiori, A. et al. (2024). The Llama 3 Herd of Models. arXiv:2407.21783, Sec. 3.2.1.
Bhagia, A. et al. (2024). arXiv:2412.04403.
Krajewski, J. et al. (2025). arXiv:2512.08894.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bayescale.core.cards import load_card
from bayescale.core.runs import load_runs
from bayescale.engines.accuracy import TASK, _frame, accuracy_data, fit_accuracy
from bayescale.engines.convergence import outcome
from bayescale.engines.ensemble import _fit_task, _keep_converged_members
from bayescale.engines.executor import run_tasks
from bayescale.engines.single import fit_card
from bayescale.errors import InputError
from bayescale.fits import read
from bayescale.fits.accuracy import assemble_accuracy
from bayescale.scoring.accuracy_forecast import (
    TAU_MAX_LATENT,
    latent_accuracy,
    piece_log_density,
)
from bayescale.scoring.accuracy_latent import member_latent
from bayescale.scoring.chance import NO_SIGNAL, chance_signal
from bayescale.scoring.discrepancy import DEFAULT_FRACS, extrapolation_decades, lack_of_fit
from bayescale.scoring.splits import rolling_splits
from bayescale.scoring.stacking import DIRICHLET_A, fit_tau, stacking_weights

__all__ = ["STEP_ONE_CARD", "accuracy_cards", "fit_accuracy_ensemble", "step_one_runs"]

STEP_ONE_CARD = "chinchilla"
"""Card of the two-step law's first step (the ``via`` loss from N and D)."""


def accuracy_cards(frame: pd.DataFrame, *, via: str | None) -> tuple[str, ...]:
    """The accuracy laws a table can feed: direct always, (N, D) and two-step when it can."""
    cards = ["accuracy-direct"]
    has_nd = "N" in frame and "D" in frame
    if has_nd:
        cards.append("accuracy-direct-nd")
    if via is not None and has_nd:
        cards.append("accuracy-two-step")
    return tuple(cards)


def default_via(frame: pd.DataFrame, via: str | None) -> str | None:
    """The two-step law's loss column: ``via``, else the table's ``loss`` column if any."""
    if via is not None:
        return via
    return "loss" if "loss" in frame else None


def step_one_runs(frame: pd.DataFrame, via: str):
    """The runs of the two-step law's first step: ``via`` as the loss, N and D."""
    mapping = {"loss": via, "N": "N", "D": "D"}
    return load_runs(frame[[c for c in frame.columns if c in {via, "N", "D"}]], mapping=mapping)


def fit_accuracy_ensemble(
    runs,
    *,
    metric: str,
    via: str | None = None,
    floor=TASK,
    n_examples=TASK,
    compute: str | None = None,
    tasks: pd.DataFrame | None = None,
    cards=None,
    holdout_fracs=DEFAULT_FRACS,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    split_draws: int = 1000,
    split_tune: int = 1000,
    random_seed: int = 0,
    dirichlet_a: float = DIRICHLET_A,
    executor: str = "process",
    strict: bool = False,
    progress: bool = False,
):
    """Stack the accuracy laws on one metric: weights and latent discrepancy from rolling forecasts.

    Parameters
    ----------
    runs : pandas.DataFrame, str or Path
        The whole runs table (every column; see
        :func:`bayescale.engines.accuracy.accuracy_data`).
    metric : str
        Accuracy column, e.g. ``"acc_hellaswag"``.
    via : str, optional
        Loss column of the two-step law; default the table's ``loss`` column, else no two-step
        member.
    floor, n_examples, compute, tasks
        As in :func:`bayescale.engines.accuracy.accuracy_data`.
    cards : sequence of str, optional
        Accuracy cards; default :func:`accuracy_cards`.
    holdout_fracs : sequence of float
        Held-out fractions of the rolling splits.
    draws, tune, chains : int
        Sampler settings of the fits on all runs.
    split_draws, split_tune : int
        Sampler settings of the split fits.
    random_seed : int, default 0
        Seed of every fit (and of the forecasts' noise draws).
    dirichlet_a : float
        Dirichlet prior of the stacking weights.
    executor : {"process", "serial", "ray"}
        Where the independent fits run (:func:`bayescale.engines.executor.run_tasks`).
    strict : bool, default False
        Raise when a law's fit on all runs does not converge instead of dropping it.
    progress : bool, default False
        Unused (fits run quietly); kept for the common signature.

    Returns
    -------
    xarray.DataTree
        Children ``member_<k>`` (accuracy fits on all runs) and ``step1`` (the loss fit of
        ``via``, when the two-step law is a member); root attrs ``bayescale_accuracy`` (metric,
        floor, task, chance test) and ``bayescale_accuracy_ensemble`` (``cards``, ``weights``,
        ``tau``, ``splits``, ``validated_decades``, ``lack_of_fit``, ``convergence``, ``notes``).

    Raises
    ------
    InputError
        As :func:`bayescale.engines.accuracy.accuracy_data`, or for no usable card.

    References
    ----------
    Yao et al. (2018); Grattafiori et al. (2024), Sec. 3.2.1; Krajewski et al. (2025).

    Examples
    --------
    >>> from bayescale.core.datasets import read_table
    >>> frame = read_table("overtraining_downstream")
    >>> fit = fit_accuracy_ensemble(frame[frame.dataset == "c4_original"],
    ...                             metric="acc_hellaswag", via="loss_c4_val")  # doctest: +SKIP
    """
    del progress
    frame = _frame(runs).reset_index(drop=True)
    via = default_via(frame, via)
    data = accuracy_data(frame, metric=metric, via=via, floor=floor, n_examples=n_examples,
                         compute=compute, tasks=tasks)
    resolved = {"metric": metric, "floor": data.floor, "n_examples": data.n_examples,
                "compute": compute, "tasks": tasks, "chains": chains}
    chance = chance_signal(data.accuracy, data.C, floor=data.floor, n_examples=data.n_examples)
    names = list(cards) if cards is not None else list(accuracy_cards(frame, via=via))
    notes = []
    if not chance.signal:
        names, fracs = ["accuracy-direct"], ()
        notes.append(f"{NO_SIGNAL}: the direct law alone, no rolling splits")
    else:
        fracs = tuple(holdout_fracs)
        if via is None and cards is None:
            notes.append("no via loss column (via=, or a 'loss' column): no two-step member")
    card_objs = [load_card(n) for n in names]
    if not card_objs:
        raise InputError("no accuracy card to fit")
    min_train = max(c.n_params for c in card_objs) + 2
    splits, skipped = rolling_splits(data, fracs=fracs, min_train=min_train)
    notes += skipped
    two_step = any(c.law_spec.input == "via" for c in card_objs)

    tasks_ = []
    for card in card_objs:
        tasks_.append(_acc_task(frame, card, via, resolved, draws, tune, random_seed,
                                f"{card.name} on all runs"))
    if two_step:
        tasks_.append(_loss_task(frame, via, draws, tune, chains, random_seed,
                                 "step 1 on all runs"))
    for j, split in enumerate(splits):
        train = frame[~split.mask].reset_index(drop=True)
        for card in card_objs:
            tasks_.append(_acc_task(train, card, via, resolved, split_draws, split_tune,
                                    random_seed, f"split {j} ({split.frac:g}) {card.name}"))
        if two_step:
            tasks_.append(_loss_task(train, via, split_draws, split_tune, chains, random_seed,
                                     f"split {j} ({split.frac:g}) step 1"))
    results = run_tasks(_fit_task, tasks_, executor=executor, threads_per_task=chains)

    per_fit = len(card_objs) + int(two_step)
    member_results = results[:len(card_objs)]
    step1 = results[len(card_objs)][0] if two_step else None
    records = [r for _, r in member_results]
    keep, dropped = _keep_converged_members(card_objs, records, strict=strict)
    if two_step and not results[len(card_objs)][1]["converged"]:
        notes.append("step 1 on all runs: " + outcome(results[len(card_objs)][1]))
    rng = np.random.default_rng(random_seed)
    pieces, split_docs, excluded = [], [], []
    for j, split in enumerate(splits):
        mask = split.mask
        block = results[per_fit * (j + 1): per_fit * (j + 2)]
        failed = [outcome(r) for _, r in block if not r["converged"]]
        doc = {"holdout_frac": split.frac, "cutoff": float(split.cutoff),
               "n_train": int((~mask).sum()), "n_test": int(mask.sum())}
        train_cmax = float(data.C[~mask].max())
        delta = extrapolation_decades(data.C[mask], train_cmax)
        doc["max_delta_decades"] = float(delta.max())
        split_docs.append(doc)
        if failed:
            excluded.append({"split": j, "why": failed})
            continue
        s1 = block[-1][0] if two_step else None
        split_pieces = []
        for k in keep:
            latent = member_latent(block[k][0], C=data.C[mask], N=_col(data.N, mask),
                                   D=_col(data.D, mask), step1=s1, rng=rng)
            split_pieces.append({"y": data.accuracy[mask], "z": latent["z_new"],
                                 "floor": data.floor, "ceiling": latent["ceiling"],
                                 "sigma": latent["sigma"], "n_examples": data.n_examples,
                                 "delta": delta, "row": np.flatnonzero(mask)})
        pieces.append(split_pieces)

    kept = [card_objs[k].name for k in keep]
    weights, tau, evidence = _weigh(pieces, len(keep), dirichlet_a=dirichlet_a,
                                    random_seed=random_seed)
    members = {card_objs[k].name: member_results[k][0] for k in keep}
    used = [d for j, d in enumerate(split_docs) if j not in {e["split"] for e in excluded}]
    validated = max((d["max_delta_decades"] for d in used), default=0.0)
    lof = _lack_of_fit(members, weights, data, rng=rng)
    if lof is not None and lof.get("flag"):
        validated = 0.0
    record = {
        "cards": kept,
        "weights": {n: float(w) for n, w in zip(kept, weights, strict=True)},
        "tau": float(tau),
        "tau_units": "logits per decade of compute beyond the fitted runs",
        "splits": split_docs,
        "validated_decades": float(validated),
        "lack_of_fit": lof,
        "evidence": evidence,
        "convergence": {"dropped_cards": dropped, "excluded_splits": excluded,
                        "refitted": [outcome(r) for _, r in results
                                     if len(r["attempts"]) > 1]},
        "via": via,
        "notes": notes,
    }
    lead = kept[int(np.argmax(weights))]
    attrs = dict(members[lead].attrs)
    return assemble_accuracy(members, record=record, attrs=attrs,
                             step1=step1 if "accuracy-two-step" in kept else None)


def _col(values, mask):
    return None if values is None else values[mask]


def _acc_task(frame, card, via, resolved, draws, tune, seed, label):
    return (label, {"fit_one": fit_accuracy, "runs": frame, "card": card, "draws": draws,
                    "tune": tune, "random_seed": seed, "label": label,
                    "via": via if card.law_spec.input == "via" else None, **resolved})


def _loss_task(frame, via, draws, tune, chains, seed, label):
    return (label, {"fit_one": fit_card, "runs": step_one_runs(frame, via),
                    "card": load_card(STEP_ONE_CARD), "draws": draws, "tune": tune,
                    "chains": chains, "random_seed": seed, "label": label})


def _weigh(pieces, k: int, *, dirichlet_a, random_seed):
    """Stacking weights at ``tau = 0``, then ``tau``, from the splits' pieces."""
    if not pieces:
        return np.full(k, 1.0 / k), 0.0, {"n_forecasts": 0, "note": "no split forecasts"}
    dens = np.concatenate([np.stack([piece_log_density(p) for p in split]) for split in pieces],
                          axis=1)
    rows = np.concatenate([split[0]["row"] for split in pieces])
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    weights, info = stacking_weights(dens, multiplicity=counts[inverse], a=dirichlet_a,
                                     random_seed=random_seed)
    tau, tau_info = fit_tau(pieces, weights, density=piece_log_density, tau_max=TAU_MAX_LATENT)
    lpd = dens.mean(axis=1)
    evidence = {**info, **tau_info, "mean_lpd_by_card": [float(x) for x in lpd]}
    return weights, tau, json.loads(json.dumps(evidence, default=float))


def _lack_of_fit(members, weights, data, *, rng) -> dict | None:
    """The curvature test on the mixture's in-sample accuracy residuals along compute."""
    if len(data) < 8:
        return None
    mean = np.zeros(len(data))
    for w, tree in zip(weights, members.values(), strict=True):
        loss = data.via_loss if read(tree).card.law_spec.input == "via" else None
        latent = member_latent(tree, C=data.C, N=data.N, D=data.D, loss=loss, rng=rng)
        p = latent_accuracy(latent["z_law"], floor=data.floor,
                            ceiling=latent["ceiling"][:, None])
        mean += w * p.mean(axis=0)
    try:
        test = lack_of_fit(data.C, data.accuracy - mean)
    except InputError:
        return None
    return test.to_dict()
