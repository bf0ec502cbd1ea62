"""Several families of runs at once: a partially pooled fit, per-family views and contrasts.

Labs rarely have one clean ladder: they have one per data mix, tokenizer or optimizer. A grouped
fit (``bs.fit(runs, group_by="dataset_name")``) puts every family in one hierarchical model, so a
family with few runs borrows the exponents of the others, while a family whose runs disagree
keeps its own values (:mod:`bayescale.families.model`). The answers are per family:
:func:`family_view` slices the pooled posterior to one family and returns an ordinary
single-card fit, so prediction, allocation, plots and reports work on it unchanged, and
:mod:`bayescale.families.contrast` turns the joint posterior into differences between families.
Without a card the grouped fit is the law ensemble with every card pooled
(:mod:`bayescale.families.ensemble`); its family views are ensembles.

Why a subpackage: the model, the views and the contrasts form one data flow (pooled model ->
pooled posterior -> per-family view -> contrast) that the single-family modules never need; they
only dispatch here when a fit carries a ``family`` dimension.

References
----------
Gelman, A. & Hill, J. (2007). Data Analysis Using Regression and Multilevel/Hierarchical Models,
ch. 12-13 (partial pooling). Betancourt, M. & Girolami, M. (2015). Hamiltonian Monte Carlo for
hierarchical models (the non-centred parameterisation).
"""

from bayescale.families.ensemble import fit_families_ensemble
from bayescale.families.views import (
    family_labels,
    family_view,
    is_pooled,
    optimal,
    pooling_summary,
    predict,
)

__all__ = [
    "family_labels",
    "family_view",
    "fit_families_ensemble",
    "is_pooled",
    "optimal",
    "pooling_summary",
    "predict",
]
