"""Preposterior analysis: simulated outcomes of candidate runs and the updated target interval.

A *world* is one posterior draw taken as the truth (drawn with the posterior's weights). In each
world the outcome of a candidate run is simulated from that draw's law and noise, ``y = log
L_s(N, D) + sigma_s eps`` (posterior predictive), and the posterior is updated by importance
reweighting of all draws with the likelihood of ``y`` under each draw's noise model (Student-t or
Normal on log loss, with the draw's ``sigma`` and ``nu``): ``log w += log p(y | draw)``. Runs
chosen earlier stay in the world's weights, so later candidates are valued given them. The
expected interval width after a run is the average over worlds of the weighted interval width.

Reweighting is exact in the limit of many draws but degenerates when one new run moves the
posterior far (a run far outside the fitted range, few runs): the Kish effective sample size
``1/sum w^2`` says when. Below a threshold the width is instead computed by refitting the model
with the simulated runs appended (:func:`refit_width`), in a few worlds.

References
----------
Raiffa, H. & Schlaifer, R. (1961). Applied Statistical Decision Theory, Ch. 4.
Kong, A. (1992). A note on importance sampling using standardized weights (effective sample
size). Technical Report 348, University of Chicago.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayescale.answers.planning.targets import Target, ess, target_values, weighted_interval
from bayescale.answers.planning.view import PosteriorView, posterior_view
from bayescale.core.likelihood import draw_noise
from bayescale.engines.single import fit_card as _fit
from bayescale.fits.layout import card_of, runs_of


def simulate_outcomes(view: PosteriorView, truth, mu, rng) -> np.ndarray:
    """Simulated log losses of query runs in each world, shape ``(M, Q)``.

    Parameters
    ----------
    view : PosteriorView
        The posterior.
    truth : numpy.ndarray
        Draw index taken as the truth in each world, shape ``(M,)``.
    mu : numpy.ndarray
        Law log loss of the queries per draw, shape ``(Q, S)``.
    rng : numpy.random.Generator
        Source of the noise.
    """
    m, q = truth.size, mu.shape[0]
    nu = None if view.nu is None else view.nu[truth][:, None]

    eps = draw_noise(rng, (m, q), family=view.family, nu=nu)
    return mu[:, truth].T + view.sigma[truth][:, None] * eps


def update(view: PosteriorView, log_w, y, mu_q) -> np.ndarray:
    """Log weights after observing ``y`` (shape ``(M,)``) at a run with law log loss ``mu_q``."""
    return log_w + view.loglik(y[:, None], mu_q[None, :])


def evaluate(values, log_w, *, ci_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-world interval width and effective sample size, each of shape ``(M,)``."""
    iv = weighted_interval(values, log_w, ci_prob=ci_prob)
    return iv[:, 1] - iv[:, 0], ess(log_w)


def refit_width(
    fit,
    added: pd.DataFrame,
    target: Target,
    *,
    ci_prob: float,
    random_seed: int,
    draws: int,
    tune: int,
    chains: int,
) -> tuple[float, np.ndarray]:
    """Target interval width after refitting the fit's card with runs appended.

    Parameters
    ----------
    fit : xarray.DataTree
        The current fit (its card and runs are reused).
    added : pandas.DataFrame
        Runs to append, columns ``N``, ``D``, ``loss``.
    target : Target
        The question.

    Returns
    -------
    tuple
        ``(width, values)``: the width of the ``ci_prob`` equal-tailed interval and the target's
        per-draw values under the refit.
    """

    runs = pd.concat(
        [runs_of(fit)[["N", "D", "loss"]], added[["N", "D", "loss"]]], ignore_index=True
    )
    new = _fit(
        runs, card=card_of(fit), draws=draws, tune=tune, chains=chains,
        random_seed=random_seed, log_likelihood=False,
    )
    vals = target_values(posterior_view(new), target)
    iv = weighted_interval(vals, np.zeros(vals.size), ci_prob=ci_prob)[0]
    return float(iv[1] - iv[0]), vals
