"""Planning: which runs to train next, by preposterior analysis of a fit.

One subpackage because its parts are one data flow: a fit is viewed as per-draw losses and
noise (:mod:`~bayescale.answers.planning.view`); a question about the big run becomes one number per
posterior draw (:mod:`~bayescale.answers.planning.targets`); candidate runs on IsoFLOP lines and
the naive
"next budget of the ladder" plan are designed from the fitted runs
(:mod:`~bayescale.answers.planning.design`); each candidate's outcome is simulated from the
posterior
predictive and the posterior updated by importance reweighting, or by refits where the weights
degenerate (:mod:`~bayescale.answers.planning.preposterior`); and a plan is chosen greedily under
the
compute budget, conditioning on the simulated outcomes of the runs already chosen
(:mod:`~bayescale.answers.planning.plan`). Splitting these across the package would pass the same
``(world, draw)`` weight arrays back and forth between modules that have no other use for them.

References
----------
Raiffa, H. & Schlaifer, R. (1961). Applied Statistical Decision Theory (preposterior analysis).
Chaloner, K. & Verdinelli, I. (1995). Bayesian Experimental Design: A Review. Statistical
Science 10(3).
"""

from bayescale.answers.planning.plan import Plan, plan

__all__ = ["Plan", "plan"]
