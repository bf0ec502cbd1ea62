"""Noise model on log loss, in NumPy: pointwise log density and posterior-predictive draws.

The fit's likelihood is ``log L_obs ~ Normal(log L(N, D), sigma)`` or
``StudentT(nu, log L(N, D), sigma)``. These functions evaluate the same densities over posterior
draws without PyMC, for the ``log_likelihood`` group, held-out scoring and predictive intervals.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def logpdf(y, mu, sigma, *, family, nu=None):
    """Log density of log loss ``y`` under the card's noise model.

    Parameters
    ----------
    y, mu, sigma : array_like
        Observed log loss, law prediction (log loss) and scale; broadcast together.
    family : {"Normal", "StudentT"}
        Noise family.
    nu : array_like, optional
        Degrees of freedom (Student-t only).

    Returns
    -------
    numpy.ndarray
        Log density on the log-loss scale.

    Examples
    --------
    >>> round(float(logpdf(0.0, 0.0, 1.0, family="Normal")), 6)
    -0.918939
    """
    z = (np.asarray(y) - mu) / sigma
    if family == "Normal":
        return -0.5 * z * z - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    if family == "StudentT":
        return (
            special.gammaln((nu + 1) / 2)
            - special.gammaln(nu / 2)
            - 0.5 * np.log(nu * np.pi)
            - np.log(sigma)
            - (nu + 1) / 2 * np.log1p(z * z / nu)
        )
    raise ValueError(f"unknown likelihood family {family!r}")


def draw_noise(rng, shape, *, family, nu=None):
    """Standardised noise draws (Normal or Student-t with ``nu`` broadcast to ``shape``).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    shape : tuple of int
        Output shape.
    family : {"Normal", "StudentT"}
        Noise family.
    nu : array_like, optional
        Degrees of freedom, broadcast against ``shape``.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> draw_noise(np.random.default_rng(0), (2, 3), family="Normal").shape
    (2, 3)
    """
    if family == "Normal":
        return rng.standard_normal(shape)
    if family == "StudentT":
        return rng.standard_t(np.broadcast_to(nu, shape))
    raise ValueError(f"unknown likelihood family {family!r}")


def noise_quantile(q, *, family, nu=None):
    """Quantile ``q`` of the standardised noise (vectorised over ``nu``).

    Examples
    --------
    >>> round(float(noise_quantile(0.975, family="Normal")), 3)
    1.96
    """
    from scipy import stats

    if family == "Normal":
        return stats.norm.ppf(q)
    return stats.t.ppf(q, nu)
