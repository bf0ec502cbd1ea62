"""What planning needs from a fit: per-draw law loss anywhere, per-draw noise, and the runs.

Everything else in :mod:`bayescale.answers.planning` reads a fit only through
:func:`posterior_view`, so
a new kind of fit (the law ensemble, pooled families) needs changes here only:

- an **ensemble** of member fits with stacking weights becomes one view whose draws are the
  members' draws stacked, with ``weights`` proportional to the stacking weight / member draws and
  ``loss`` dispatching each draw to its member's law; :func:`law_separation` is the hook where
  the plan should also value runs that separate the candidate laws (zero for one card);
- a **pooled-family** fit is planned per family: ``posterior_view(family_view(fit, name))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayescale.core.laws import Law
from bayescale.core.likelihood import logpdf
from bayescale.fits.layout import card_of, runs_of
from bayescale.fits.params import law_params


@dataclass(frozen=True)
class PosteriorView:
    """Per-draw loss and noise of a fit (``S`` draws), and the runs it was fitted to.

    Attributes
    ----------
    law : Law
        The law (of a one-card fit).
    params : dict of numpy.ndarray
        1-D parameter draws of length ``S`` keyed as :meth:`Law.log_loss` reads them.
    family : {"Normal", "StudentT"}
        Noise family on log loss.
    sigma, nu : numpy.ndarray
        Per-draw noise scale and degrees of freedom (``nu`` None for Normal).
    weights : numpy.ndarray
        Prior weight of each draw (sums to 1; uniform for one card).
    runs : pandas.DataFrame
        The fitted runs (``N, D, C, loss``).
    card : str
        Card name, for provenance.
    """

    law: Law
    params: dict
    family: str
    sigma: np.ndarray
    nu: np.ndarray | None
    weights: np.ndarray
    runs: object
    card: str

    @property
    def n_draws(self) -> int:
        return int(self.sigma.size)

    def log_loss(self, N, D) -> np.ndarray:
        """Per-draw law log loss; ``N`` and ``D`` broadcast against draws on the last axis."""
        n = np.asarray(N, dtype=float)
        d = np.asarray(D, dtype=float)
        return self.law.log_loss(n, d, self.params)

    def log_loss_grid(self, N, D) -> np.ndarray:
        """Law log loss at query points ``(N[q], D[q])`` for every draw, shape ``(Q, S)``."""
        n = np.asarray(N, dtype=float).reshape(-1)[:, None]
        d = np.asarray(D, dtype=float).reshape(-1)[:, None]
        p = {k: v[None, :] for k, v in self.params.items()}
        return np.broadcast_to(self.law.log_loss(n, d, p), (n.shape[0], self.n_draws))

    def loglik(self, y, mu) -> np.ndarray:
        """Log density of observed log loss ``y`` given law log loss ``mu`` (draws last axis)."""
        return logpdf(y, mu, self.sigma, family=self.family, nu=self.nu)


def posterior_view(fit) -> PosteriorView:
    """The planning view of a fit: the one place that knows how a fit is laid out.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit from :func:`bayescale.fit`. (Ensemble and pooled-family fits: see the
        module
        docstring for how this function extends to them.)

    Returns
    -------
    PosteriorView
    """
    law, params, noise = law_params(fit)
    s = noise["sigma"].size
    return PosteriorView(
        law=law,
        params=params,
        family=noise["family"],
        sigma=noise["sigma"],
        nu=noise["nu"],
        weights=np.full(s, 1.0 / s),
        runs=runs_of(fit),
        card=card_of(fit).name,
    )


def law_separation(view: PosteriorView, N, D) -> np.ndarray:
    """Hook: value of runs at ``(N, D)`` for telling the candidate laws of an ensemble apart.

    Zero for a one-card fit (one law: nothing to separate). With an ensemble this should return,
    per query, the expected information about the member index (e.g. the expected reduction of
    the entropy of the stacking weights), which :func:`bayescale.answers.planning.plan` adds to the
    ranking score with weight ``separation_weight``.
    """
    return np.zeros(np.size(N))
