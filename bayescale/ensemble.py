"""Law ensembles: several cards, weighted by how well each extrapolated on the user's own runs.

The form of the law is the largest uncertainty in an extrapolation, and one card with i.i.d. noise
cannot express it. An ensemble fits several cards, scores each on rolling-origin forecasts of the
user's runs (fit below a compute cutoff, score the runs above it), weights the cards by Bayesian
stacking of those forecast densities, learns an extrapolation discrepancy for the weighted mixture
on the same splits, and answers every question with the mixture of the cards' posterior
predictives.

The modules form one data flow, which is why they sit together:

- :mod:`~bayescale.scoring.splits`: the rolling-origin splits and each card's forecast pieces;
- :mod:`~bayescale.scoring.stacking`: weights and discrepancy from those pieces (pure NumPy);
- :mod:`~bayescale.engines.upper`: the upper-ladder members (each card also fitted to the upper
  half of the runs by compute) and :func:`upper_rule`, which says when the runs allow them;
- :mod:`~bayescale.engines.ensemble`: :func:`fit_ensemble`, which runs the two and assembles the
  fit tree (every member's posterior, the weights, ``tau`` and the validated distance);
- :mod:`~bayescale.fits.members`: how answers read an ensemble fit back (members, weights,
  the draws of the mixture).

References
----------
Yao, Y., Vehtari, A., Simpson, D. & Gelman, A. (2018). Using stacking to average Bayesian
predictive distributions. Bayesian Analysis 13(3).
Kennedy, M. C. & O'Hagan, A. (2001). Bayesian calibration of computer models. JRSS B 63(3).
"""

from bayescale.engines.ensemble import (
    DEFAULT_CARDS,
    REPEAT_CARDS,
    assemble,
    default_cards,
    fit_ensemble,
    forecast_weights,
)
from bayescale.engines.upper import UPPER_RUNS_PER_PARAM, upper_half, upper_rule
from bayescale.fits.members import (
    ensemble_info,
    is_ensemble,
    members,
    validated_decades,
)

__all__ = [
    "DEFAULT_CARDS",
    "REPEAT_CARDS",
    "UPPER_RUNS_PER_PARAM",
    "assemble",
    "default_cards",
    "ensemble_info",
    "fit_ensemble",
    "forecast_weights",
    "is_ensemble",
    "members",
    "upper_half",
    "upper_rule",
    "validated_decades",
]
