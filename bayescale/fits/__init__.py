"""The fits layer: the one place that knows a fit's kind and layout.

Every answer, engine and workflow reads a fit through this package: :class:`Fit` (``read(tree)``)
for its kind, card or members, runs, law draws, discrepancy, validated distance and families;
:func:`per_family` to answer per family of a pooled fit. The trees' attributes are unchanged, so
fits saved by earlier versions load and read the same.

- :mod:`~bayescale.fits.layout`: card, runs, draws and provenance of any fit tree;
- :mod:`~bayescale.fits.members`: a law ensemble's members, weights and mixture draws, and
  :func:`~bayescale.fits.members.assemble` to build one;
- :mod:`~bayescale.fits.mixture`: the members' laws as one law over the mixture's draws;
- :mod:`~bayescale.fits.params`: :func:`law_params`, the law draws of any fit;
- :mod:`~bayescale.fits.families`: a pooled fit's families and one family's view;
- :mod:`~bayescale.fits.view`: :class:`Fit`, :func:`read`, :func:`per_family`.
"""

from bayescale.fits.families import family_view
from bayescale.fits.layout import card_of, draws, provenance, runs_of
from bayescale.fits.members import assemble
from bayescale.fits.params import law_params
from bayescale.fits.view import Fit, Kind, Member, per_family, read, stack_families

__all__ = [
    "Fit",
    "Kind",
    "Member",
    "assemble",
    "card_of",
    "draws",
    "family_view",
    "law_params",
    "per_family",
    "provenance",
    "read",
    "runs_of",
    "stack_families",
]
