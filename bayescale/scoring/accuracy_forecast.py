"""Forecasts of accuracy with an extrapolation discrepancy on the link's latent scale.

Every accuracy law (:mod:`bayescale.core.accuracy_laws`) is a bounded sigmoid,
``acc = F + (c - F) sigmoid(z)``, with ``z`` the law's latent value at a run: ``k (x0 - loss)``
(two-step), ``k (log10 C - log10 C0)`` (direct) or ``k_N log10 N + k_D log10 D - z0``. A law that
describes the ladder can still miss beyond it: the task may saturate early, emerge late, or its
loss-to-accuracy link may bend. The discrepancy is a shift of the latent value whose sd grows
with the extrapolation distance ``delta`` (decades of compute beyond the largest fitted run),
``z_new = z + tau delta e``, ``e ~ N(0, 1)``: the same principle as the loss ensemble's discrepancy
on log loss (:mod:`bayescale.scoring.discrepancy`), on the scale where the accuracy law is
linear.

It enters the noise by its first-order effect on the accuracy: the link's slope
``g = (c - F) s (1 - s)``, ``s = sigmoid(z)``, turns it into an accuracy sd ``g tau delta``, added
to the Beta-binomial run scatter of :mod:`bayescale.core.accuracy_noise` (whose Beta part has
variance about ``4 sigma^2 p (1 - p)``)::

    sigma_eff^2 = sigma^2 + (g tau delta)^2 / (4 p (1 - p))

So the forecast stays a Beta-binomial with the law's mean, widened most where the law is least
constrained (midway between floor and ceiling) and not at all at the floor or the ceiling, with a
closed-form density (no quadrature: an integral over ``e`` would need nodes finer than the
binomial noise of thousands of evaluation examples).

A piece (one card's forecast of one split's held-out runs) is a dict with ``y`` (Q,) observed
accuracies, ``z`` (S, Q) latent values per posterior draw, ``floor``, ``ceiling`` (S,),
``sigma`` (S,), ``n_examples`` (int or None) and ``delta`` (Q,).

References
----------
Kennedy, M. C. & O'Hagan, A. (2001). Bayesian calibration of computer models. JRSS B 63(3)
(a model discrepancy term beside the noise).
Grattafiori, A. et al. (2024). The Llama 3 Herd of Models. arXiv:2407.21783, Sec. 3.2.1.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayescale.core import accuracy_noise as noise
from bayescale.core.stats import interval
from bayescale.errors import InputError

__all__ = [
    "discrepancy_sigma",
    "TAU_MAX_LATENT",
    "latent_accuracy",
    "piece_log_density",
    "predictive_accuracy_draws",
    "score_accuracy_forecast",
]

TAU_MAX_LATENT = 5.0
"""Largest latent discrepancy (logits per decade) the estimator considers."""


def latent_accuracy(z, *, floor, ceiling):
    """Accuracy ``F + (c - F) sigmoid(z)`` (broadcast).

    Examples
    --------
    >>> float(latent_accuracy(0.0, floor=0.25, ceiling=0.75))
    0.5
    """
    return floor + (np.asarray(ceiling, dtype=float) - floor) * special.expit(z)


def discrepancy_sigma(z, *, floor, ceiling, sigma, tau: float, delta):
    """The Beta-binomial scatter widened by the latent discrepancy (module docstring).

    Parameters
    ----------
    z : array_like
        Latent values ``(S, Q)``.
    floor : float
        Chance accuracy.
    ceiling, sigma : array_like
        Per draw, broadcast with ``z`` (``(S, 1)``).
    tau : float
        Latent discrepancy sd per decade.
    delta : array_like
        Decades of extrapolation, broadcast with ``z`` (``(1, Q)``).

    Returns
    -------
    tuple
        ``(p, sigma_eff)``: the law's accuracy and the widened scatter.

    Examples
    --------
    >>> p, s = discrepancy_sigma(0.0, floor=0.0, ceiling=1.0, sigma=0.0, tau=0.4, delta=1.0)
    >>> float(p), float(s)  # slope 1/4 at the midpoint: accuracy sd 0.1 = sigma_eff at p = 1/2
    (0.5, 0.1)
    """
    ceiling = np.asarray(ceiling, dtype=float)
    sig = special.expit(z)
    p = floor + (ceiling - floor) * sig
    sigma = np.asarray(sigma, dtype=float)
    if tau == 0.0:
        return p, np.broadcast_to(sigma, np.shape(p))
    g = (ceiling - floor) * sig * (1.0 - sig)
    pq = np.clip(p * (1.0 - p), 1e-12, None)
    extra = (g * tau * np.asarray(delta, dtype=float)) ** 2 / (4.0 * pq)
    return p, np.sqrt(sigma * sigma + extra)


def piece_log_density(piece: dict, tau: float = 0.0) -> np.ndarray:
    """Log predictive probability of each held-out accuracy, shape ``(Q,)``.

    ``log mean_s BB(y_i | p_si, sigma_eff_si)`` with the widened scatter of
    :func:`discrepancy_sigma`.

    Parameters
    ----------
    piece : dict
        See the module docstring.
    tau : float, default 0
        Latent discrepancy sd per decade of extrapolation.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> p = {"y": np.array([0.5]), "z": np.zeros((1, 1)), "floor": 0.0,
    ...      "ceiling": np.ones(1), "sigma": np.array([1e-4]), "n_examples": 2,
    ...      "delta": np.zeros(1)}
    >>> round(float(np.exp(piece_log_density(p))[0]), 4)  # binomial: P(1 of 2) = 1/2
    0.5
    """
    z = np.asarray(piece["z"], dtype=float)
    p, sigma = discrepancy_sigma(
        z, floor=piece["floor"], ceiling=np.asarray(piece["ceiling"], dtype=float)[:, None],
        sigma=np.asarray(piece["sigma"], dtype=float)[:, None], tau=tau,
        delta=np.asarray(piece["delta"], dtype=float)[None, :])
    y = np.asarray(piece["y"], dtype=float)[None, :]
    lp = noise.logpdf(y, p, sigma, n_examples=piece["n_examples"])
    return special.logsumexp(lp, axis=0) - np.log(z.shape[0])


def predictive_accuracy_draws(rng, *, z, floor, ceiling, sigma, n_examples, delta,
                              tau: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Law and new-run accuracies per draw, each ``(S, Q)``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the discrepancy and noise draws.
    z : numpy.ndarray
        ``(S, Q)`` latent values of a new run (two-step: at its predicted loss).
    floor : float
        Chance accuracy.
    ceiling, sigma : numpy.ndarray
        ``(S,)`` per draw.
    n_examples : int or None
        Evaluation examples of the new run's benchmark.
    delta : numpy.ndarray
        ``(Q,)`` decades of extrapolation.
    tau : float
        Latent discrepancy per decade.

    Returns
    -------
    tuple
        ``(law, new)``: the law's accuracy with the discrepancy (where the average run lands: a
        Beta draw around the law with the discrepancy's variance), and one new run's accuracy
        (the widened Beta-binomial).
    """
    z = np.asarray(z, dtype=float)
    p, widened = discrepancy_sigma(z, floor=floor, ceiling=np.asarray(ceiling)[:, None],
                                   sigma=np.asarray(sigma, dtype=float)[:, None], tau=tau,
                                   delta=np.asarray(delta, dtype=float)[None, :])
    _, only = discrepancy_sigma(z, floor=floor, ceiling=np.asarray(ceiling)[:, None], sigma=0.0,
                                tau=tau, delta=np.asarray(delta, dtype=float)[None, :])
    law = p if tau == 0.0 else noise.draw(rng, p, np.maximum(only, 1e-12))
    new = noise.draw(rng, p, widened, n_examples=n_examples)
    return law, new


def score_accuracy_forecast(y, draws, *, probs=(0.5, 0.8, 0.9, 0.95), ci_kind: str = "eti"):
    """Per-run scores of accuracy forecasts from predictive draws.

    Parameters
    ----------
    y : array_like
        ``(Q,)`` observed accuracies.
    draws : numpy.ndarray
        ``(S, Q)`` predictive draws of a new run's accuracy.
    probs : sequence of float
        Central interval levels.
    ci_kind : {"eti", "hdi"}
        Interval kind.

    Returns
    -------
    dict
        ``median``, ``abs_error`` (|median - y|), ``pit`` (mid-PIT of the discrete predictive:
        ``P(Y < y) + P(Y = y) / 2``), and for each level ``p`` the bounds ``lo_<p>``, ``hi_<p>``
        and ``covered_<p>`` (``lo <= y <= hi``), each ``(Q,)``.

    Examples
    --------
    >>> d = np.linspace(0, 1, 101)[:, None]
    >>> out = score_accuracy_forecast([0.5], d)
    >>> float(out["pit"][0]), bool(out["covered_0.5"][0])
    (0.5, True)
    """
    y = np.asarray(y, dtype=float)
    d = np.asarray(draws, dtype=float)
    if d.ndim != 2 or d.shape[1] != y.size:
        raise InputError(f"draws must be (S, {y.size}), got {d.shape}")
    median = np.median(d, axis=0)
    out = {
        "median": median,
        "abs_error": np.abs(median - y),
        "pit": (d < y[None, :]).mean(0) + 0.5 * (d == y[None, :]).mean(0),
    }
    for p in probs:
        lohi = interval(d.T, ci_prob=p, ci_kind=ci_kind, axis=1)
        key = f"{p:g}"
        out[f"lo_{key}"], out[f"hi_{key}"] = lohi[:, 0], lohi[:, 1]
        out[f"covered_{key}"] = (lohi[:, 0] <= y) & (y <= lohi[:, 1])
    return out
