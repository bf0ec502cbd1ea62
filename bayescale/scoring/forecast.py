"""Forecasts of held-out runs: compute splits and the exact predictive scores of a fit.

The shared ground of :mod:`bayescale.workflows.backtest` (one split, scored),
:mod:`bayescale.scoring.discrepancy`
(rolling splits that calibrate ``tau``) and :mod:`bayescale.ensemble` (rolling splits that weight
the laws): how runs are split by compute, a fit's predictive pieces at new inputs, and the log
predictive density and exact central intervals of a mixture predictive.

References
----------
Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and
estimation. JASA 102(477).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayescale.errors import InputError
from bayescale.fits.params import law_params

__all__ = ["DEFAULT_PROBS", "fit_predictive", "predictive_scores", "split_by_compute"]

DEFAULT_PROBS = (0.5, 0.8, 0.9, 0.95)
_MAX_ITERS = 100
_CDF_TOL = 1e-10


def split_by_compute(C, *, holdout_frac: float = 0.2, cutoff: float | None = None,
                     min_train: int = 1, min_test: int = 1):
    """Split runs by compute: hold out ``C > cutoff``, or the top ``holdout_frac`` by compute.

    With ``holdout_frac``, the cutoff is placed between distinct compute values so that the
    held-out share is as close as possible to ``holdout_frac`` (runs with equal compute, as in an
    IsoFLOP sweep, stay together on one side).

    Parameters
    ----------
    C : array_like
        Compute of each run (FLOPs).
    holdout_frac : float, default 0.2
        Target share of runs to hold out, in (0, 1); ignored when ``cutoff`` is given.
    cutoff : float, optional
        Hold out exactly the runs with ``C > cutoff``.
    min_train, min_test : int
        Smallest acceptable training and test sets.

    Returns
    -------
    tuple
        ``(test_mask, cutoff)``: a boolean mask of held-out runs and the threshold used.

    Raises
    ------
    InputError
        For a fraction outside (0, 1), or a split that leaves fewer than ``min_train`` training or
        ``min_test`` held-out runs (the message gives the counts).

    Examples
    --------
    >>> mask, cut = split_by_compute([1, 1, 2, 2, 3, 4, 5, 6, 7, 8], holdout_frac=0.2)
    >>> mask.sum(), cut
    (np.int64(2), 6.0)
    >>> split_by_compute([1, 1, 2, 2, 3], cutoff=2.5)[0].tolist()
    [False, False, False, False, True]
    """
    C = np.asarray(C, dtype=float)
    n = C.size
    if cutoff is None:
        if not 0 < holdout_frac < 1:
            raise InputError(f"holdout_frac must be strictly between 0 and 1, got {holdout_frac!r}")
        levels = np.unique(C)[:-1]  # thresholds that hold out at least the largest run
        if levels.size == 0:
            raise InputError(
                f"all {n} runs have the same compute {C[0]:.3g}; no run can be held out by compute"
            )
        n_test = (C[None, :] > levels[:, None]).sum(axis=1)
        ok = (n_test >= min_test) & (n - n_test >= min_train)
        if not ok.any():
            raise InputError(
                f"no compute cutoff leaves at least {min_train} training and {min_test} held-out "
                f"runs among {n} runs with {levels.size + 1} distinct compute values"
            )
        gap = np.abs(n_test - holdout_frac * n).astype(float)
        gap[~ok] = np.inf
        cut = float(levels[np.argmin(gap)])  # ties: the smaller threshold, more held out
    else:
        cut = float(cutoff)
        if not np.isfinite(cut):
            raise InputError(f"cutoff must be a finite number of FLOPs, got {cutoff!r}")
    mask = C > cut
    n_test, n_train = int(mask.sum()), int(n - mask.sum())
    if n_test < min_test or n_train < min_train:
        raise InputError(
            f"compute cutoff {cut:.4g} FLOPs leaves {n_train} training and {n_test} held-out runs; "
            f"need at least {min_train} training and {min_test} held-out runs"
        )
    return mask, cut


def _noise(family: str, nu):
    """Standardised ``(logpdf, cdf, ppf)`` functions of the noise family."""
    from scipy import stats

    if family == "Normal":
        return (lambda z: -0.5 * z * z - 0.5 * np.log(2 * np.pi)), special.ndtr, stats.norm.ppf
    if family == "StudentT":
        const = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
        return (
            lambda z: const - (nu + 1) / 2 * np.log1p(z * z / nu),
            lambda z: special.stdtr(nu, z),
            lambda q: stats.t.ppf(q, nu),
        )
    raise InputError(f"unknown likelihood family {family!r}; expected Normal or StudentT")


def predictive_scores(y, mu, sigma, *, family: str, nu=None, probs=DEFAULT_PROBS) -> dict:
    """Log predictive density and exact central intervals of a mixture predictive.

    The predictive of each observation is the equal-weight mixture over draws ``s`` of
    ``family(mu[s, q], sigma[s], nu[s])``. Its quantiles are solved on the mixture CDF by Newton
    steps safeguarded by bisection, inside the bracket of the smallest and largest per-draw
    quantile (which always holds the mixture quantile), to a CDF error below 1e-10.

    Parameters
    ----------
    y : array_like
        Observed values, shape ``(Q,)`` (log loss).
    mu : array_like
        Location per draw and observation, shape ``(S, Q)``.
    sigma : array_like
        Scale per draw, shape ``(S,)``, or per draw and observation, shape ``(S, Q)`` (an
        inflated scale, see :mod:`bayescale.scoring.discrepancy`).
    family : {"Normal", "StudentT"}
        Noise family.
    nu : array_like, optional
        Degrees of freedom per draw (Student-t).
    probs : sequence of float
        Central interval probabilities.

    Returns
    -------
    dict
        ``lpd`` ``(Q,)``, ``median`` ``(Q,)``, ``lower`` and ``upper`` ``(len(probs), Q)``.

    Examples
    --------
    >>> out = predictive_scores([0.0], np.zeros((1, 1)), np.ones(1), family="Normal",
    ...                         probs=(0.95,))
    >>> round(float(out["upper"][0, 0]), 3), round(float(out["lpd"][0]), 4)
    (1.96, -0.9189)
    """
    y = np.asarray(y, dtype=float)
    mu = np.atleast_2d(np.asarray(mu, dtype=float))
    sig = np.asarray(sigma, dtype=float)
    sig = sig if sig.ndim == 2 else sig.reshape(-1, 1)
    nu_arr = None if nu is None else np.asarray(nu, dtype=float).reshape(-1, 1)
    logpdf, cdf, ppf = _noise(family, nu_arr)
    s = mu.shape[0]
    lpd = special.logsumexp(logpdf((y[None, :] - mu) / sig) - np.log(sig), axis=0) - np.log(s)

    probs = tuple(float(p) for p in probs)
    qs = np.array([0.5] + [(1 - p) / 2 for p in probs] + [(1 + p) / 2 for p in probs])
    q3 = qs[:, None]
    # per-draw quantiles bracket the mixture quantile: (K, S, Q) -> (K, Q)
    per_draw = mu[None] + sig[None] * ppf(qs[:, None, None])
    lo, hi = per_draw.min(axis=1), per_draw.max(axis=1)
    x = np.median(per_draw, axis=1)
    for _ in range(_MAX_ITERS):
        z = (x[:, None, :] - mu[None]) / sig[None]
        err = cdf(z).mean(axis=1) - q3
        done = np.abs(err) < _CDF_TOL
        if done.all():
            break
        dens = (np.exp(logpdf(z)) / sig[None]).mean(axis=1)
        lo = np.where(err < 0, x, lo)
        hi = np.where(err < 0, hi, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x - err / dens
        inside = (step >= lo) & (step <= hi)
        x = np.where(done, x, np.where(inside, step, 0.5 * (lo + hi)))
    k = len(probs)
    return {"lpd": lpd, "median": x[0], "lower": x[1 : 1 + k], "upper": x[1 + k :]}


def fit_predictive(fit, N, D, **extra):
    """``(mu (S, Q), sigma (S,), nu (S,) or None, family)`` of a fit at new inputs.

    ``extra`` holds the law's extra inputs (``U=``), 1-D like ``N``; others are ignored.
    """

    law, params, noise = law_params(fit)
    params = {k: np.asarray(v)[:, None] for k, v in params.items()}
    x = {k: np.asarray(extra[k], float) for k in law.extra_variables if extra.get(k) is not None}
    mu = np.asarray(law.log_loss(np.asarray(N, float), np.asarray(D, float), params, **x))
    mu = np.broadcast_to(mu, (noise["sigma"].size, len(N)))
    return mu, noise["sigma"], noise["nu"], noise["family"]
