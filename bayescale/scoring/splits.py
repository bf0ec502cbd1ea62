"""Rolling-origin forecasts of every card on the user's runs: the evidence for the weights.

For each held-out fraction ``f``, the top ``f`` of the runs by compute are held out
(:func:`bayescale.workflows.backtest.split_by_compute`, so runs of one IsoFLOP budget stay
together), each
card is fitted on the rest and its posterior predictive is evaluated at the held-out runs. A piece
holds what :mod:`bayescale.scoring.stacking` needs: per-draw law log loss ``mu`` ``(S, Q)``, noise
``sigma`` (``nu``), the observed log loss and the distance ``delta`` (decades of compute beyond
the split's largest training run).

References
----------
Tashman, L. J. (2000). Out-of-sample tests of forecasting accuracy: an analysis and review.
International Journal of Forecasting 16(4) (rolling-origin evaluation).
"""

from __future__ import annotations

import numpy as np

from bayescale.errors import InputError
from bayescale.fits.families import family_view
from bayescale.scoring.discrepancy import DEFAULT_FRACS, extrapolation_decades, lack_of_fit
from bayescale.scoring.forecast import fit_predictive as _fit_predictive
from bayescale.scoring.forecast import split_by_compute

__all__ = ["DEFAULT_FRACS", "Split", "family_splits", "forecast_piece", "rolling_splits",
           "split_families"]



class Split:
    """One rolling split: a boolean mask of held-out runs and its compute cutoff.

    ``__init__`` only stores its arguments.
    """

    def __init__(self, frac: float, mask: np.ndarray, cutoff: float):
        self.frac = frac
        self.mask = mask
        self.cutoff = cutoff

    def to_dict(self, runs) -> dict:
        """Summary: fraction, cutoff, run counts and the largest distance it forecasts."""
        train_cmax = float(np.max(runs.C[~self.mask]))
        delta = np.log10(runs.C[self.mask] / train_cmax)
        return {
            "holdout_frac": float(self.frac),
            "cutoff": float(self.cutoff),
            "n_train": int((~self.mask).sum()),
            "n_test": int(self.mask.sum()),
            "max_delta_decades": float(np.max(np.maximum(delta, 0.0))),
        }


def rolling_splits(runs, *, fracs=DEFAULT_FRACS, min_train: int) -> tuple[list[Split], list[str]]:
    """Distinct rolling-origin splits of ``runs`` by compute.

    Parameters
    ----------
    runs : Runs
        The runs (anything with a compute array ``C``, such as an accuracy metric's
        :class:`~bayescale.engines.accuracy.AccuracyData`).
    fracs : sequence of float
        Held-out fractions; each sets a compute cutoff. Fractions that give the same cutoff as an
        earlier one, or leave fewer than ``min_train`` training runs, are skipped (with a note).
    min_train : int
        Fewest training runs a split may leave (the largest card's parameter count plus one).

    Returns
    -------
    tuple
        ``(splits, notes)``.

    Examples
    --------
    >>> import bayescale as bs
    >>> runs = bs.datasets.simulate(random_seed=0)
    >>> splits, notes = rolling_splits(runs, fracs=(0.2, 0.4), min_train=8)
    >>> [int(s.mask.sum()) for s in splits]  # 5 IsoFLOP budgets of 9 runs: top 1 and top 2
    [9, 18]
    """
    splits, notes, seen = [], [], set()
    for frac in fracs:
        try:
            mask, cut = split_by_compute(runs.C, holdout_frac=float(frac), min_train=min_train)
        except InputError as err:
            notes.append(f"holdout_frac {frac:g} skipped: {err}")
            continue
        if cut in seen:
            notes.append(f"holdout_frac {frac:g} skipped: same cutoff as an earlier split")
            continue
        seen.add(cut)
        splits.append(Split(float(frac), mask, cut))
    return splits, notes


def forecast_piece(fit, test, *, train_cmax: float) -> dict:
    """A card's forecast of held-out runs (:func:`~bayescale.scoring.stacking.card_log_density`).

    Parameters
    ----------
    fit : xarray.DataTree
        The card's fit on the split's training runs.
    test : Runs
        The held-out runs.
    train_cmax : float
        Largest compute among the training runs.

    Returns
    -------
    dict
        ``y``, ``mu``, ``sigma``, ``nu``, ``family``, ``delta``, ``C``.
    """

    frame = test.frame
    N, D = frame["N"].to_numpy(float), frame["D"].to_numpy(float)
    extra = {k: frame[k].to_numpy(float) for k in ("U",) if k in frame}
    mu, sigma, nu, family = _fit_predictive(fit, N, D, **extra)
    C = frame["C"].to_numpy(float)
    return {
        "y": np.log(frame["loss"].to_numpy(float)),
        "mu": np.asarray(mu, dtype=float),
        "sigma": np.asarray(sigma, dtype=float),
        "nu": None if nu is None else np.asarray(nu, dtype=float),
        "family": family,
        "delta": extrapolation_decades(C, train_cmax),
        "C": C,
    }


def split_families(runs, *, holdout_frac: float = 0.2):
    """Training and held-out masks, holding out the top ``holdout_frac`` by compute per family.

    Parameters
    ----------
    runs : Runs
        Runs with a ``family`` column.
    holdout_frac : float, default 0.2
        Share of each family's runs to hold out.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` for held-out runs.
    """
    if "family" not in runs.frame:
        raise InputError("split_families needs runs with a family column (load with group_by)")
    fam = runs.frame["family"].to_numpy(str)
    test = np.zeros(len(runs), dtype=bool)
    for lab in np.unique(fam):
        pos = np.flatnonzero(fam == lab)
        mask, _ = split_by_compute(runs.C[pos], holdout_frac=holdout_frac, min_train=3)
        test[pos[mask]] = True
    return test


def family_splits(runs, *, fracs) -> tuple[list[tuple[float, np.ndarray]], list[str]]:
    """Distinct rolling splits of runs with families: each family holds out its top by compute.

    Parameters
    ----------
    runs : Runs
        Runs with a ``family`` column.
    fracs : sequence of float
        Held-out fractions.

    Returns
    -------
    tuple
        ``([(frac, held_out_mask), ...], notes)``; fractions that hold out nothing new are
        skipped with a note.
    """
    out, notes, seen = [], [], set()
    for frac in fracs:
        try:
            mask = split_families(runs, holdout_frac=float(frac))
        except InputError as err:
            notes.append(f"holdout_frac {frac:g} skipped: {err}")
            continue
        key = mask.tobytes()
        if not mask.any() or key in seen:
            notes.append(f"holdout_frac {frac:g} skipped: no new held-out runs")
            continue
        seen.add(key)
        out.append((float(frac), mask))
    return out, notes


class ByCompute:
    """Rolling splits of one table: the top ``frac`` of all runs by compute held out.

    A splitter tells the ensemble loop (:func:`bayescale.engines.ensemble.fit_ensemble`) which
    runs each split holds out and how the cards' fits on the rest forecast them. ``__init__``
    stores nothing: the splitter is the rule, the runs come with each call.
    """

    method = "bayesian stacking of rolling-origin forecasts"
    description = "ensemble fits"

    def splits(self, runs, *, fracs, card_objs) -> tuple[list[Split], list[str]]:
        """Distinct splits, each leaving more training runs than the largest card's params."""
        return rolling_splits(runs, fracs=fracs, min_train=_min_train(card_objs))

    def label(self, split: Split, card) -> str:
        """How a split fit's sampler problems are labelled."""
        return f"split {split.frac:g}"

    def blocks(self, runs, split: Split, posts) -> list[tuple[list[dict], np.ndarray]]:
        """One block: every card's forecast piece of all held-out runs."""
        train, test = runs.subset(~split.mask), runs.subset(split.mask)
        cmax = float(np.max(train.C))
        return [([forecast_piece(post, test, train_cmax=cmax) for post in posts], split.mask)]

    def doc(self, runs, split: Split, blocks) -> dict:
        """The split's record (fraction, cutoff, run counts, distance forecast)."""
        return split.to_dict(runs)

    def lack_of_fit(self, runs, member_fits, weights) -> dict:
        """The lack-of-fit test of the members fitted on all runs, as the ensemble records it.

        The in-sample residuals (observed log loss minus the weighted posterior-mean law of the
        members) are tested for curvature along compute
        (:func:`bayescale.scoring.discrepancy.lack_of_fit`); when it is significant, forecasts
        beyond the largest run drift by the residual trend's slope there, with an sd as large
        as the slope (``drift``).
        """
        frame = runs.frame
        extra = {k: frame[k].to_numpy(float) for k in ("U",) if k in frame}
        N, D = frame["N"].to_numpy(float), frame["D"].to_numpy(float)
        mu = sum(float(w) * np.asarray(_fit_predictive(post, N, D, **extra)[0]).mean(axis=0)
                 for post, w in zip(member_fits, weights, strict=True))
        resid = np.log(frame["loss"].to_numpy(float)) - mu
        lof = lack_of_fit(frame["C"].to_numpy(float), resid)
        mean, sd = lof.drift
        return {"lack_of_fit": lof.to_dict(), "drift": {"mean": float(mean), "sd": float(sd)}}

    def too_few(self, runs, card_objs, notes) -> InputError:
        """The error when no split is usable."""
        names = [c.name for c in card_objs]
        return InputError(
            f"{len(runs)} runs are too few for a rolling split with at least "
            f"{_min_train(card_objs)} training runs (cards {', '.join(names)}): "
            + "; ".join(notes) + ". Fit one card with --law NAME instead."
        )


class ByFamily:
    """Rolling splits of runs in families: each family holds out its own top by compute.

    Each family's view of a pooled split fit forecasts that family's held-out runs, one block
    per family, so the weights and ``tau`` are learned from every family's forecasts together.
    """

    method = "bayesian stacking of rolling-origin forecasts, pooled over families"
    description = "pooled ensemble fits"

    def splits(self, runs, *, fracs, card_objs) -> tuple[list[Split], list[str]]:
        """Distinct family splits (:func:`family_splits`)."""
        folds, notes = family_splits(runs, fracs=fracs)
        return [Split(frac, mask, None) for frac, mask in folds], notes

    def label(self, split: Split, card) -> str:
        """How a split fit's sampler problems are labelled."""
        return f"split {split.frac:g} {card.name}"

    def blocks(self, runs, split: Split, posts) -> list[tuple[list[dict], np.ndarray]]:
        """One block per family with held-out runs: each card's family view forecasts them."""
        fam = runs.frame["family"].to_numpy(str)
        train = runs.subset(~split.mask)
        fam_train = fam[~split.mask]
        out = []
        for lab in np.unique(fam[split.mask]):
            held = split.mask & (fam == lab)
            cmax = float(np.max(train.C[fam_train == lab]))
            test = runs.subset(held)
            out.append(([forecast_piece(family_view(p, lab), test, train_cmax=cmax)
                         for p in posts], held))
        return out

    def doc(self, runs, split: Split, blocks) -> dict:
        """The split's record (fraction, run counts, largest distance any family forecast)."""
        deltas = [float(np.max(row[0]["delta"])) for row, _ in blocks]
        return {"holdout_frac": split.frac, "n_train": int((~split.mask).sum()),
                "n_test": int(split.mask.sum()), "max_delta_decades": max(0.0, max(deltas))}

    def lack_of_fit(self, runs, member_fits, weights) -> dict:
        """Not tested for pooled families yet (it would need one test per family)."""
        return {"lack_of_fit": None, "drift": {"mean": 0.0, "sd": 0.0}}

    def too_few(self, runs, card_objs, notes) -> InputError:
        """The error when no split is usable."""
        return InputError(
            f"{len(runs)} runs are too few for a rolling split of every family: "
            + "; ".join(notes) + ". Fit one card with --law NAME instead."
        )


def _min_train(card_objs) -> int:
    """Fewest training runs a split may leave: the largest card's parameter count plus one."""
    return max(c.n_params for c in card_objs) + 1
