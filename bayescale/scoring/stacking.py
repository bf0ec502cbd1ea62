"""Stacking weights and the mixture's discrepancy from rolling-origin forecast densities.

Pure NumPy/SciPy on precomputed pieces, so the choices can be tested on closed forms.

**Weights.** Yao et al. (2018) choose the weights of a mixture of predictive densities that
maximise the log score of held-out points; here the held-out points are forecasts beyond a compute
cutoff instead of leave-one-out. Plain maximisation is overconfident on scaling-law runs: the
forecasts of one table share one misfit, so 50 held-out runs carry the evidence of far fewer
independent tests, and a card that loses the in-sample splits by a little gets weight 0 even when
it extrapolates best (measured in issue 10). So the weights are the posterior mean under

.. math:: p(w \\mid \\text{splits}) \\propto \\mathrm{Dir}(w; a)
          \\prod_i \\Big(\\sum_k w_k\\, p_k(y_i)\\Big)^{1/m_i},

with ``m_i`` the number of splits in which run ``i`` is held out (nested rolling splits hold the
largest runs out again and again; each run counts once), and a Dirichlet prior with ``a > 1``
towards equal weights. The posterior mean of the weights is the weight vector of the Bayesian
predictive: the average of the mixtures over the weights' posterior is the mixture with the mean
weights, so the weights' remaining uncertainty is carried, not discarded. The mean is computed by
self-normalised importance sampling from the prior, with its effective sample size recorded.

**Discrepancy.** With the weights fixed, ``tau`` (sd of log loss per decade of compute beyond the
fitted runs, :mod:`bayescale.scoring.discrepancy`) maximises the pooled log score of the same
forecasts
under the mixture.

References
----------
Yao, Y., Vehtari, A., Simpson, D. & Gelman, A. (2018). Using stacking to average Bayesian
predictive distributions. Bayesian Analysis 13(3).
Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and
estimation. JASA 102(477).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from bayescale.core.likelihood import logpdf
from bayescale.errors import InputError
from bayescale.scoring.discrepancy import TAU_MAX, inflated_scale

__all__ = ["DIRICHLET_A", "card_log_density", "mixture_log_density", "stacking_weights", "fit_tau"]

DIRICHLET_A = 2.0
"""Dirichlet concentration of the prior on the weights (1: flat on the simplex; 2: towards equal
weights). Chosen on the public tables of ``benchmarks/ensemble.py``; see the README."""
_N_PRIOR_DRAWS = 20_000


def card_log_density(piece: dict, tau: float = 0.0) -> np.ndarray:
    """Log predictive density of one card's forecast of held-out runs, shape ``(Q,)``.

    Parameters
    ----------
    piece : dict
        ``y`` (Q,) observed log loss; ``mu`` (S, Q) law log loss per draw; ``sigma`` (S,);
        ``nu`` (S,) or None; ``family``; ``delta`` (Q,) decades beyond the fitted compute.
    tau : float, default 0
        Discrepancy sd per decade.

    Returns
    -------
    numpy.ndarray
        ``log mean_s p(y_i | mu_si, sqrt(sigma_s^2 + (tau delta_i)^2), nu_s)``.

    Examples
    --------
    >>> p = {"y": np.zeros(1), "mu": np.zeros((1, 1)), "sigma": np.ones(1), "nu": None,
    ...      "family": "Normal", "delta": np.zeros(1)}
    >>> round(float(card_log_density(p)[0]), 4)
    -0.9189
    """
    s = piece["mu"].shape[0]
    scale = inflated_scale(np.asarray(piece["sigma"])[:, None], tau, piece["delta"][None, :])
    nu = None if piece["nu"] is None else np.asarray(piece["nu"])[:, None]
    lp = logpdf(piece["y"][None, :], piece["mu"], scale, family=piece["family"], nu=nu)
    return special.logsumexp(lp, axis=0) - np.log(s)


def mixture_log_density(log_dens: np.ndarray, weights) -> np.ndarray:
    """Log density of the weighted mixture from per-card log densities ``(K, Q)``.

    Examples
    --------
    >>> round(float(np.exp(mixture_log_density(np.log([[0.2], [0.4]]), [0.5, 0.5]))[0]), 6)
    0.3
    """
    w = np.asarray(weights, dtype=float)
    with np.errstate(divide="ignore"):
        return special.logsumexp(np.asarray(log_dens) + np.log(w)[:, None], axis=0)


def stacking_weights(log_dens: np.ndarray, *, multiplicity=None, a: float = DIRICHLET_A,
                     random_seed=0) -> tuple[np.ndarray, dict]:
    """Posterior-mean stacking weights from forecast log densities.

    Parameters
    ----------
    log_dens : array_like
        ``(K, Q)``: log predictive density of each of ``K`` cards for each of ``Q`` held-out
        forecasts (pooled over splits).
    multiplicity : array_like, optional
        ``(Q,)``: in how many splits each forecast's run is held out; each contributes with
        power ``1 / multiplicity`` (default 1).
    a : float, default :data:`DIRICHLET_A`
        Dirichlet prior concentration (> 0).
    random_seed : int or numpy.random.Generator, default 0
        Seed of the prior draws of the importance sampler.

    Returns
    -------
    tuple
        ``(weights (K,), info)`` with ``info`` keys ``ess`` (importance-sampling effective sample
        size), ``n_draws``, ``a``, ``map_weights`` (the plain maximiser of the tempered score,
        Yao et al.'s stacking weights with that tempering), ``n_forecasts``.

    Raises
    ------
    InputError
        For no cards, no forecasts, non-finite densities everywhere or a bad ``a``.

    Examples
    --------
    >>> ld = np.log([[0.5, 0.5, 0.5], [0.1, 0.1, 0.1]])
    >>> w, info = stacking_weights(ld)
    >>> bool(w[0] > 0.6), round(float(w.sum()), 12)
    (True, 1.0)
    """
    L = np.atleast_2d(np.asarray(log_dens, dtype=float))
    k, q = L.shape
    if k == 0 or q == 0:
        raise InputError(f"stacking needs at least one card and one forecast, got shape {L.shape}")
    if not (np.isfinite(a) and a > 0):
        raise InputError(f"Dirichlet concentration must be > 0, got {a!r}")
    L = np.where(np.isfinite(L), L, -1e300)
    m = np.ones(q) if multiplicity is None else np.asarray(multiplicity, dtype=float)
    power = 1.0 / m
    if k == 1:
        return np.ones(1), {"ess": float("nan"), "n_draws": 0, "a": a, "map_weights": [1.0],
                            "n_forecasts": int(q)}

    def score(w):  # tempered log score of weights w (..., K)
        return (special.logsumexp(L[None] + np.log(w)[..., None], axis=-2) * power).sum(-1)

    rng = np.random.default_rng(random_seed)
    prior = rng.dirichlet(np.full(k, a), size=_N_PRIOR_DRAWS)
    prior = np.maximum(prior, 1e-300)
    logw = np.concatenate([score(prior[i : i + 2000]) for i in range(0, len(prior), 2000)])
    logw -= logw.max()
    pw = np.exp(logw)
    pw /= pw.sum()
    weights = pw @ prior
    weights /= weights.sum()

    def neg(v):
        w = special.softmax(np.concatenate([[0.0], v]))
        return -score(w[None])[0]

    res = optimize.minimize(neg, np.zeros(k - 1), method="L-BFGS-B")
    w_map = special.softmax(np.concatenate([[0.0], res.x]))
    info = {
        "ess": float(1.0 / np.sum(pw**2)),
        "n_draws": _N_PRIOR_DRAWS,
        "a": float(a),
        "map_weights": [float(x) for x in w_map],
        "n_forecasts": int(q),
    }
    return weights, info


def fit_tau(pieces_by_card: list[list[dict]], weights, *, density=card_log_density,
            tau_max: float = TAU_MAX) -> tuple[float, dict]:
    """Discrepancy ``tau`` maximising the pooled log score of the weighted mixture's forecasts.

    Parameters
    ----------
    pieces_by_card : list of list of dict
        ``pieces_by_card[j][k]``: split ``j``'s piece of card ``k`` (see
        :func:`card_log_density`).
    weights : array_like
        Mixture weights ``(K,)``.
    density : callable, default :func:`card_log_density`
        ``density(piece, tau) -> (Q,)`` log predictive densities of a piece; accuracy forecasts
        pass :func:`bayescale.scoring.accuracy_forecast.piece_log_density` (``tau`` on the
        link's latent scale).
    tau_max : float, default :data:`~bayescale.scoring.discrepancy.TAU_MAX`
        Upper end of the search.

    Returns
    -------
    tuple
        ``(tau, info)`` with ``lpd_without`` and ``lpd_with`` (pooled sums).

    Examples
    --------
    >>> p = {"y": np.array([0.5]), "mu": np.zeros((1, 1)), "sigma": np.array([0.01]),
    ...      "nu": None, "family": "Normal", "delta": np.ones(1)}
    >>> tau, _ = fit_tau([[p]], [1.0])
    >>> round(tau, 3)
    0.5
    """
    w = np.asarray(weights, dtype=float)

    def pooled(t):
        total = 0.0
        for split in pieces_by_card:
            dens = np.stack([density(p, t) for p in split])
            total += float(mixture_log_density(dens, w).sum())
        return total

    res = optimize.minimize_scalar(lambda t: -pooled(t), bounds=(0.0, tau_max), method="bounded",
                                   options={"xatol": 1e-6})
    candidates = [(pooled(0.0), 0.0), (pooled(tau_max), tau_max)]
    if np.isfinite(res.fun):
        candidates.append((-float(res.fun), float(res.x)))
    best, tau = max(candidates)
    return float(tau), {"lpd_without": candidates[0][0], "lpd_with": float(best)}
