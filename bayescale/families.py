"""Several families of runs at once: a partially pooled fit, per-family views and contrasts.

Labs rarely have one clean ladder: they have one per data mix, tokenizer or optimizer. A grouped
fit (``bs.fit(runs, group_by="dataset_name")``) puts every family in one hierarchical model, so a
family with few runs borrows the exponents of the others, while a family whose runs disagree
keeps its own values (:mod:`bayescale.core.pooled_model`). The answers are per family:
:func:`family_view` slices the pooled posterior to one family and returns an ordinary
single-card fit, so prediction, allocation, plots and reports work on it unchanged, and
:mod:`bayescale.answers.contrast` turns the joint posterior into differences between families.
Without a card the grouped fit is the law ensemble with every card pooled
(:mod:`bayescale.engines.ensemble`); its family views are ensembles.

This module only gathers the public names; the code sits in its layers: the pooled model in
:mod:`bayescale.core.pooled_model`, the engines in :mod:`bayescale.engines.pooled` and
:mod:`bayescale.engines.ensemble`, the views in :mod:`bayescale.fits.families`, and the
answers (``predict``, ``optimal``, ``compute_for_target`` answer per family on a pooled fit) in
:mod:`bayescale.answers`.

References
----------
Gelman, A. & Hill, J. (2007). Data Analysis Using Regression and Multilevel/Hierarchical Models,
ch. 12-13 (partial pooling). Betancourt, M. & Girolami, M. (2015). Hamiltonian Monte Carlo for
hierarchical models (the non-centred parameterisation).
"""

from bayescale.answers.allocation import compute_for_target, optimal
from bayescale.answers.family_summary import pooling_summary
from bayescale.answers.prediction import predict
from bayescale.engines.ensemble import fit_families_ensemble
from bayescale.fits.families import family_labels, family_view, is_pooled

__all__ = [
    "compute_for_target",
    "family_labels",
    "family_view",
    "fit_families_ensemble",
    "is_pooled",
    "optimal",
    "pooling_summary",
    "predict",
]
