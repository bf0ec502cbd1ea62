"""Noise on the accuracy scale: Beta-binomial in the number of evaluation examples.

A run's accuracy on a benchmark of ``n`` examples is ``y / n`` with ``y`` the number answered
correctly. Two sources of scatter sit around the law's accuracy ``p``:

1. the run itself: another seed or data order gives a model whose true accuracy on this task
   differs a little from ``p``; we model it as ``p_run ~ Beta(p kappa, (1 - p) kappa)``, mean
   ``p``, variance ``p (1 - p) / (kappa + 1)``;
2. the evaluation: ``y ~ Binomial(n, p_run)``, finite-sample error of the benchmark.

Together ``y ~ BetaBinomial(n, p kappa, (1 - p) kappa)``, whose variance on the accuracy scale is

.. math::

    \\mathrm{Var}(y/n) = \\frac{p(1-p)}{n}\\,\\frac{n + \\kappa}{1 + \\kappa}
    \\;\\ge\\; \\frac{p(1-p)}{n},

never below the binomial variance, and equal to it only when runs do not scatter
(``kappa -> inf``). Why this and not a Normal on the logit of the rescaled accuracy: the
Beta-binomial is a proper distribution of the observed counts, bounded to ``[0, n]`` (no
predictive draw outside [0, 1]), defined at accuracies of exactly 0 or 1 (exact-match tasks of
small models score 0), with a pointwise log-likelihood for PSIS-LOO, and its binomial part is
exact for any ``n`` (a Normal approximation of it fails at 32 or 60 examples, sizes some
BIG-bench and Winogender tasks have). Its one extra parameter is stated on the accuracy scale:
``kappa = 1 / (4 sigma^2)``, so ``sigma`` is about the run-to-run standard deviation of accuracy
at ``p = 1/2`` beyond the evaluation's binomial noise (exactly ``sigma / sqrt(1 + 4 sigma^2)``).

When the number of examples is unknown, the accuracy is modelled as ``Beta(p kappa,
(1 - p) kappa)``: the ``n -> inf`` limit of ``y / n`` above (run scatter only), which then needs
accuracies strictly inside (0, 1).

References
----------
Gadre, S. Y. et al. (2024). arXiv:2403.08540, Sec. 5 and App. (task sizes and random baselines).
Grattafiori, A. et al. (2024). The Llama 3 Herd of Models. arXiv:2407.21783, Sec. 3.2.1.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

_P_EPS = 1e-9
"""Law accuracies are kept in ``[eps, 1 - eps]`` so both Beta shapes stay positive."""


def concentration(sigma):
    """Beta-binomial concentration ``kappa = 1 / (4 sigma^2)`` from the run scatter ``sigma``.

    Examples
    --------
    >>> round(float(concentration(0.05)), 9)
    100.0
    """
    return 0.25 / np.square(sigma)


def shapes(p, sigma, xp=np):
    """Beta shapes ``(p kappa, (1 - p) kappa)`` of law accuracy ``p`` (clipped) and ``sigma``."""
    p = xp.clip(p, _P_EPS, 1.0 - _P_EPS)
    kappa = 0.25 / (sigma * sigma)
    return p * kappa, (1.0 - p) * kappa


def binomial_sd(p, n):
    """Standard deviation of an accuracy measured on ``n`` examples, ``sqrt(p (1 - p) / n)``.

    Examples
    --------
    >>> float(binomial_sd(0.5, 100))
    0.05
    """
    p = np.asarray(p, dtype=float)
    return np.sqrt(p * (1.0 - p) / np.asarray(n, dtype=float))


def counts(accuracy, n_examples) -> np.ndarray:
    """Correct answers ``round(accuracy * n)``.

    Accuracies averaged over subtasks (MMLU, BBQ) are not exact fractions of ``n``; rounding moves
    them by at most ``1 / (2 n)``, far below the binomial noise ``sqrt(p (1 - p) / n)``.
    """
    return np.rint(np.asarray(accuracy, dtype=float) * n_examples).astype(np.int64)


def logpdf(accuracy, p, sigma, *, n_examples=None):
    """Pointwise log-likelihood of observed accuracies under the law accuracy ``p``.

    Parameters
    ----------
    accuracy : array_like
        Observed accuracies in [0, 1].
    p : array_like
        Law accuracy (broadcast with ``accuracy``).
    sigma : array_like
        Run scatter (see the module docstring).
    n_examples : array_like, optional
        Evaluation examples; None: the Beta limit (density of the accuracy).

    Returns
    -------
    numpy.ndarray
        Log probability of the count (Beta-binomial) or log density of the accuracy (Beta).

    Examples
    --------
    >>> round(float(logpdf(0.5, 0.5, 1e-4, n_examples=2)), 6)  # binomial: P(1 of 2) = 1/2
    -0.693147
    """
    a, b = shapes(np.asarray(p, dtype=float), np.asarray(sigma, dtype=float))
    if n_examples is None:
        return stats.beta.logpdf(accuracy, a, b)
    n = np.asarray(n_examples)
    return stats.betabinom.logpmf(counts(accuracy, n), n, a, b)


def draw(rng, p, sigma, *, n_examples=None):
    """One accuracy per element of ``p``: a new run evaluated on ``n_examples`` examples.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    p, sigma : array_like
        Law accuracy and run scatter, broadcast together.
    n_examples : int, optional
        Evaluation examples; None: the Beta limit.

    Returns
    -------
    numpy.ndarray
        Accuracies in [0, 1].

    Examples
    --------
    >>> y = draw(np.random.default_rng(0), np.full(4000, 0.6), 1e-4, n_examples=100)
    >>> bool(abs(y.std() - 0.049) < 0.003)
    True
    """
    a, b = shapes(np.asarray(p, dtype=float), np.asarray(sigma, dtype=float))
    p_run = rng.beta(a, b)
    if n_examples is None:
        return p_run
    n = int(n_examples)
    return rng.binomial(n, p_run) / n


def prob_at_least(x, p, sigma, *, n_examples=None):
    """``P(accuracy >= x)`` of one new run, exact over the noise, per element of ``p``.

    With ``n`` examples the accuracy is a count over ``n``, so ``acc >= x`` means at least
    ``ceil(x n)`` correct answers.

    Examples
    --------
    >>> round(float(prob_at_least(0.5, 0.5, 1e-4, n_examples=2)), 6)  # 1 or 2 of 2: 3/4
    0.75
    """
    a, b = shapes(np.asarray(p, dtype=float), np.asarray(sigma, dtype=float))
    if n_examples is None:
        return stats.beta.sf(x, a, b)
    n = int(n_examples)
    need = np.ceil(np.asarray(x, dtype=float) * n - 1e-9)
    return stats.betabinom.sf(need - 1, n, a, b)
