"""Rolling-origin forecasts of every card on the user's runs: the evidence for the weights.

For each held-out fraction ``f``, the top ``f`` of the runs by compute are held out
(:func:`bayescale.workflows.backtest.split_by_compute`, so runs of one IsoFLOP budget stay together), each
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
from bayescale.scoring.discrepancy import extrapolation_decades
from bayescale.scoring.forecast import fit_predictive as _fit_predictive
from bayescale.scoring.forecast import split_by_compute

__all__ = ["DEFAULT_FRACS", "Split", "family_splits", "forecast_piece", "rolling_splits",
           "split_families"]

DEFAULT_FRACS = (0.1, 0.2, 0.3)
"""Held-out fractions of the rolling splits (of the runs the ensemble is fitted on)."""


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
        The runs.
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
