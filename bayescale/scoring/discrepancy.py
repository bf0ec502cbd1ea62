"""An extrapolation-discrepancy term, calibrated on the user's own runs by rolling backtests.

A scaling law fitted to small runs is misspecified far from them, and no in-sample noise term can
tell: every training run sits at extrapolation distance 0. This module adds a discrepancy on log
loss that grows with the distance of a query beyond the fitted compute,

.. math:: \\Delta = \\max\\big(0, \\log_{10}(C / C_{\\max})\\big), \\qquad
          \\delta \\sim \\mathrm{Normal}\\big(0, (\\tau \\Delta)^2\\big),

independent of the run noise, so the predictive scale of posterior draw ``s`` at a query is
``sqrt(sigma_s**2 + (tau * Delta)**2)``. For a Student-t card the family and ``nu_s`` are kept and
only the scale is inflated this way (an approximation: the sum of a t and a Normal variable is not
a t variable). ``tau >= 0`` is the standard deviation of log loss per decade of extrapolation.

``tau`` is learned by rolling-origin backtests
(:func:`bayescale.engines.discrepancy.estimate_discrepancy`): for each held-out
fraction, the largest runs by compute are held out, the law is fitted on the rest, and ``tau``
maximises the pooled log predictive density of all held-out runs.

References
----------
Kennedy, M. C. & O'Hagan, A. (2001). Bayesian calibration of computer models. JRSS B 63(3).
Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and
estimation. JASA 102(477).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from bayescale.core.likelihood import logpdf
from bayescale.errors import InputError
from bayescale.fits.view import read

__all__ = [
    "Discrepancy",
    "LackOfFit",
    "as_tau",
    "drift_draws",
    "extrapolation_decades",
    "inflated_scale",
    "lack_of_fit",
    "paired_drift",
    "pooled_lpd",
]

LOF_P = 1e-3
"""Significance of the residual curvature along compute that flags a lack of fit (research 19:
the untuned OWT2 sweep gives p = 1e-4 at every cluster width; the other public tables p > 0.01)."""
LOF_BIN_DECADES = 0.1
"""Width of the compute clusters of the lack-of-fit test (runs within it count as one)."""

TAU_MAX = 1.0
"""Upper bound of the search for ``tau`` (sd of log loss per decade of compute)."""
DEFAULT_FRACS = (0.1, 0.2, 0.3)
"""Held-out fractions of the rolling splits: of the runs an ensemble is fitted on, or of a
single card's runs when it learns its own discrepancy."""


@dataclass(frozen=True)
class Discrepancy:
    """A calibrated extrapolation discrepancy.

    Attributes
    ----------
    tau : float
        Standard deviation of log loss per decade of compute beyond the fitted runs.
    n_heldout : int
        Held-out runs pooled over splits (a run held out by several splits counts each time).
    holdout_fracs : tuple of float
        The held-out fractions whose splits were used.
    table : pandas.DataFrame
        One row per held-out run per split: ``holdout_frac, N, D, C, loss, delta_decades``
        (compute decades beyond that split's largest training run), ``resid`` (log loss minus the
        predictive median without discrepancy) and ``sigma_median`` (posterior median of sigma).
    lpd_without, lpd_with : float
        Pooled log predictive density of the held-out runs at ``tau = 0`` and at ``tau``.
    notes : tuple of str
        Splits that were skipped, and why.
    """

    tau: float
    n_heldout: int
    holdout_fracs: tuple
    table: pd.DataFrame
    lpd_without: float
    lpd_with: float
    notes: tuple = field(default=())

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the table as a list of records).

        Returns
        -------
        dict
        """
        return {
            "tau": float(self.tau),
            "n_heldout": int(self.n_heldout),
            "holdout_fracs": [float(f) for f in self.holdout_fracs],
            "lpd_without": float(self.lpd_without),
            "lpd_with": float(self.lpd_with),
            "notes": list(self.notes),
            "table": json.loads(self.table.to_json(orient="records")),
        }


def as_tau(discrepancy, fit=None) -> float:
    """The ``tau`` of a discrepancy given as None, a number, a :class:`Discrepancy` or "auto".

    Parameters
    ----------
    discrepancy : float, Discrepancy, "auto" or None
        None means no discrepancy (``tau = 0``). ``"auto"``: the calibrated ``tau`` that ``fit``
        carries (a law ensemble's, :mod:`bayescale.ensemble`), else 0.
    fit : xarray.DataTree, optional
        The fit, for ``"auto"``.

    Returns
    -------
    float
        ``tau >= 0``.

    Raises
    ------
    InputError
        For a value that is not a finite number >= 0.

    Examples
    --------
    >>> as_tau(None), as_tau(0.02)
    (0.0, 0.02)
    """
    if discrepancy is None:
        return 0.0
    if isinstance(discrepancy, str) and discrepancy == "auto":
        return read(fit).tau if fit is not None else 0.0  # a law ensemble's, else 0
    value = discrepancy.tau if isinstance(discrepancy, Discrepancy) else discrepancy
    try:
        tau = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"discrepancy must be a number (tau >= 0) or a Discrepancy, got {discrepancy!r}"
        ) from None
    if not (np.isfinite(tau) and tau >= 0):
        raise InputError(f"discrepancy tau must be finite and >= 0, got {tau!r}")
    return tau


def extrapolation_decades(C, C_max: float) -> np.ndarray:
    """Decades of compute beyond the largest fitted run, ``max(0, log10(C / C_max))``.

    Parameters
    ----------
    C : array_like
        Compute of the queries (FLOPs).
    C_max : float
        Largest compute among the fitted runs.

    Returns
    -------
    numpy.ndarray
        ``Delta`` >= 0 (NaN where ``C`` is NaN).

    Examples
    --------
    >>> extrapolation_decades([1e20, 1e22], 1e21).tolist()
    [0.0, 1.0]
    """
    c = np.asarray(C, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.maximum(np.log10(c / float(C_max)), 0.0)


def inflated_scale(sigma, tau: float, delta):
    """Predictive scale ``sqrt(sigma**2 + (tau * delta)**2)`` (broadcast together).

    Parameters
    ----------
    sigma : array_like
        Run-noise scale on log loss (per draw).
    tau : float
        Discrepancy sd per decade.
    delta : array_like
        Decades of extrapolation.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> float(inflated_scale(0.03, 0.04, 1.0))
    0.05
    """
    sigma = np.asarray(sigma, dtype=float)
    return np.sqrt(sigma * sigma + (tau * np.asarray(delta, dtype=float)) ** 2)


def pooled_lpd(tau: float, pieces) -> float:
    """Pooled log predictive density of held-out runs under discrepancy ``tau``.

    Parameters
    ----------
    tau : float
        Discrepancy sd per decade.
    pieces : sequence of dict
        Per split: ``y`` (Q,) observed log loss, ``mu`` (S, Q) law log loss per draw, ``sigma``
        (S,), ``nu`` (S,) or None, ``family``, ``delta`` (Q,).

    Returns
    -------
    float
        ``sum_i log mean_s p(y_i | mu_si, sqrt(sigma_s^2 + (tau delta_i)^2)[, nu_s])``.

    Examples
    --------
    >>> piece = {"y": np.array([0.0]), "mu": np.zeros((1, 1)), "sigma": np.ones(1),
    ...          "nu": None, "family": "Normal", "delta": np.array([0.0])}
    >>> round(pooled_lpd(0.5, [piece]), 4)
    -0.9189
    """
    total = 0.0
    for p in pieces:
        s = p["mu"].shape[0]
        scale = inflated_scale(p["sigma"][:, None], tau, p["delta"][None, :])
        nu = None if p["nu"] is None else p["nu"][:, None]
        lp = logpdf(p["y"][None, :], p["mu"], scale, family=p["family"], nu=nu)
        total += float(np.sum(special.logsumexp(lp, axis=0) - np.log(s)))
    return total


@dataclass(frozen=True)
class LackOfFit:
    """Whether the law bends away from the runs along compute (curvature of the residuals).

    Attributes
    ----------
    flag : bool
        ``p < LOF_P``.
    t, p : float
        Cluster-robust t statistic of the quadratic term and its two-sided p value
        (Student-t with ``n_clusters - 3`` degrees of freedom).
    n_clusters : int
        Compute clusters (``log10 C`` rounded to ``LOF_BIN_DECADES``).
    slope_top : float
        Slope of the residuals' quadratic trend at the largest run (nats of log loss per
        decade): the drift ``m0`` of the forecasts beyond it when ``flag``.
    """

    flag: bool
    t: float
    p: float
    n_clusters: int
    slope_top: float

    def to_dict(self) -> dict:
        """JSON-ready record: ``flag``, ``t``, ``p``, ``n_clusters``, ``slope_top``."""
        return {"flag": bool(self.flag), "t": float(self.t), "p": float(self.p),
                "n_clusters": int(self.n_clusters), "slope_top": float(self.slope_top)}

    @property
    def drift(self) -> tuple[float, float]:
        """``(mean, sd)`` of the drift per decade: ``(m0, |m0|)`` when flagged, else ``(0, 0)``."""
        return (self.slope_top, abs(self.slope_top)) if self.flag else (0.0, 0.0)


def lack_of_fit(C, resid, *, p_max: float = LOF_P, bin_decades: float = LOF_BIN_DECADES):
    """Test the in-sample residuals of a fit for curvature along compute.

    ``resid`` (observed log loss minus the weighted posterior-mean law of the ensemble, on the
    runs it was fitted to) is regressed on ``(1, x, x^2)``, ``x = log10 C`` centred; the
    quadratic term's t statistic uses a cluster-robust (CR1) variance with runs clustered by
    compute (``log10 C`` rounded to ``bin_decades``), since runs of one budget share their misfit.
    A law that fits has no curvature left along ``C``; a ladder whose larger runs fall off the
    law (untuned hyperparameters, a saturating data mix) leaves a significant one.

    Parameters
    ----------
    C, resid : array_like
        Compute and residual of each fitted run.
    p_max : float, default :data:`LOF_P`
        Flag when the two-sided p value is below it.
    bin_decades : float, default :data:`LOF_BIN_DECADES`
        Cluster width in decades of compute.

    Returns
    -------
    LackOfFit

    Examples
    --------
    >>> C = np.repeat(10.0 ** np.arange(17, 22, 0.5), 5)
    >>> x = np.log10(C) - 19.25
    >>> noise = np.tile([-0.01, 0.005, 0.0, -0.005, 0.01], 10)
    >>> lack_of_fit(C, 0.02 * x**2 - 0.02 + noise).flag
    True
    >>> lack_of_fit(C, noise).flag
    False
    """
    C = np.asarray(C, dtype=float)
    r = np.asarray(resid, dtype=float)
    lx = np.log10(C)
    x = lx - lx.mean()
    X = np.column_stack([np.ones_like(x), x, x * x])
    beta, *_ = np.linalg.lstsq(X, r, rcond=None)
    e = r - X @ beta
    groups = np.round(lx / bin_decades).astype(int)
    labels = np.unique(groups)
    g = labels.size
    bread = np.linalg.pinv(X.T @ X)
    meat = np.zeros((3, 3))
    for lab in labels:
        s = X[groups == lab].T @ e[groups == lab]
        meat += np.outer(s, s)
    n = r.size
    scale = g / max(g - 1, 1) * (n - 1) / max(n - 3, 1)
    var = scale * bread @ meat @ bread
    t = float(beta[2] / np.sqrt(var[2, 2])) if var[2, 2] > 0 else 0.0
    p = float(2 * stats.t.sf(abs(t), max(g - 3, 1)))
    slope_top = float(beta[1] + 2 * beta[2] * x.max())
    return LackOfFit(flag=bool(g >= 4 and p < p_max), t=t, p=p, n_clusters=int(g),
                     slope_top=slope_top)


def drift_draws(mean: float, sd: float, n: int) -> np.ndarray:
    """``n`` drift values per decade, the Normal(mean, sd) quantiles at ``(i + 0.5) / n``.

    Deterministic (no sampling noise); pair them with posterior draws in a fixed shuffled order
    so that the drift is independent of the law's parameters.

    Examples
    --------
    >>> drift_draws(0.0, 0.0, 3).tolist()
    [0.0, 0.0, 0.0]
    >>> bool(abs(drift_draws(0.1, 0.1, 1001).mean() - 0.1) < 1e-6)
    True
    """
    if sd <= 0:
        return np.full(n, float(mean))
    return stats.norm.ppf((np.arange(n) + 0.5) / n, loc=mean, scale=sd)


def paired_drift(mean: float, sd: float, n: int):
    """The drift per decade of each of ``n`` posterior draws, or None when there is none.

    :func:`drift_draws` in a fixed shuffled order (a permutation seeded with 0, part of the
    model, not a draw the user seeds), so that draw ``s`` of the law gets a drift independent of
    its parameters, and every answer (``predict``, backtest scores) pairs them the same way.

    Examples
    --------
    >>> paired_drift(0.0, 0.0, 4) is None
    True
    >>> bool(np.isclose(np.sort(paired_drift(0.1, 0.1, 5)), drift_draws(0.1, 0.1, 5)).all())
    True
    """
    if mean == 0.0 and sd == 0.0:
        return None
    return drift_draws(mean, sd, n)[np.random.default_rng(0).permutation(n)]
