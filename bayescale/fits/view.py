"""One reader for every kind of fit: what it is, what it holds, and per-family answers.

Four kinds of fit exist, all ``xarray.DataTree`` s with the same attributes on disk as ever:

- ``single``: one card on one table (:func:`bayescale.engines.single.fit_card`);
- ``ensemble``: a law ensemble, one child ``member_<k>`` per card and the record in
  ``bayescale_ensemble`` (:mod:`bayescale.engines.ensemble`);
- ``families``: one card pooled over families of runs, law parameters with a ``family``
  dimension and ``bayescale_families`` (:mod:`bayescale.engines.pooled`);
- ``families-ensemble``: a law ensemble whose members are pooled fits.

An accuracy fit (:func:`bayescale.engines.accuracy.fit_accuracy`) is a ``single`` fit of an
accuracy card; :attr:`Fit.is_accuracy` tells it apart and :attr:`Fit.accuracy_info` reads its
record.

:class:`Fit` is the adapter every answer reads a fit through, and :func:`per_family` the one
wrapper that turns an answer about one family into an answer per family of a pooled fit. Only
this package tests which kind a tree is.
"""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass
from typing import NamedTuple

from bayescale.core.cards import Card
from bayescale.core.runs import METRIC
from bayescale.errors import InputError
from bayescale.fits import accuracy as _accuracy
from bayescale.fits import families as _families
from bayescale.fits import members as _members
from bayescale.fits.families import family_view
from bayescale.fits.layout import card_of, provenance, runs_of
from bayescale.fits.params import law_params

__all__ = ["Fit", "Kind", "Member", "per_family", "read", "stack_families"]


class Kind(enum.StrEnum):
    """The four kinds of fit."""

    SINGLE = "single"
    ENSEMBLE = "ensemble"
    FAMILIES = "families"
    FAMILIES_ENSEMBLE = "families-ensemble"


class Member(NamedTuple):
    """One law of a fit: its card name, its weight and its fit tree (a whole single fit: 1.0)."""

    name: str
    weight: float
    tree: object


@dataclass(frozen=True, eq=False)
class Fit:
    """Read-only view of a fit tree. ``Fit(tree)`` only stores the tree.

    Examples
    --------
    >>> import xarray as xr
    >>> Fit(xr.DataTree()).kind
    <Kind.SINGLE: 'single'>
    """

    tree: object

    # ---- kind ----------------------------------------------------------------------------
    @property
    def kind(self) -> Kind:
        """Which of the four kinds this fit is."""
        mix = _members.is_ensemble(self.tree)
        pooled = _families.is_pooled(self.tree)
        if mix:
            return Kind.FAMILIES_ENSEMBLE if pooled else Kind.ENSEMBLE
        return Kind.FAMILIES if pooled else Kind.SINGLE

    @property
    def is_mixture(self) -> bool:
        """Whether answers come from a weighted mixture of laws (a law ensemble)."""
        return _members.is_ensemble(self.tree)

    @property
    def is_pooled(self) -> bool:
        """Whether the fit holds several families (a ``family`` dimension)."""
        return _families.is_pooled(self.tree)

    @property
    def is_accuracy(self) -> bool:
        """Whether the fit is of an accuracy card (:mod:`bayescale.engines.accuracy`)."""
        return _accuracy.is_accuracy(self.tree)

    @property
    def accuracy_info(self) -> dict:
        """An accuracy fit's record: metric, via, floor, n_examples, task, chance test."""
        return _accuracy.accuracy_info(self.tree)

    @property
    def is_accuracy_ensemble(self) -> bool:
        """Whether the fit stacks accuracy laws (:mod:`bayescale.engines.accuracy_ensemble`)."""
        return _accuracy.is_accuracy_ensemble(self.tree)

    @property
    def accuracy_members(self) -> list[Member]:
        """The accuracy laws of the fit with their weights (a single accuracy fit: itself)."""
        return [Member(n, w, t) for n, w, t in _accuracy.accuracy_members(self.tree)]

    @property
    def accuracy_ensemble_info(self) -> dict | None:
        """A stacked accuracy fit's record (weights, tau, splits), else None."""
        if not self.is_accuracy_ensemble:
            return None
        return _accuracy.accuracy_ensemble_info(self.tree)

    @property
    def step_one(self):
        """The loss fit of a stacked accuracy fit's two-step member (``via`` column), or None."""
        return _accuracy.step_one(self.tree)

    # ---- what it was fitted with ---------------------------------------------------------
    @property
    def card(self) -> Card:
        """The card of a single fit; of an ensemble, the card of its largest-weight member."""
        return card_of(self.tree)

    @property
    def name(self) -> str:
        """``"ensemble"`` for a law ensemble, else the card's name (the JSON ``card`` field)."""
        return "ensemble" if self.is_mixture else self.card.name

    @property
    def label(self) -> str:
        """Plain-words name for titles: ``"law ensemble"`` or ``"<card> card"``."""
        return "law ensemble" if self.is_mixture else f"{self.card.name} card"

    @property
    def members(self) -> list[Member]:
        """The laws of the fit: each member of an ensemble, or the fit itself (weight 1)."""
        if self.is_mixture:
            return [Member(n, w, t) for n, w, t in _members.members(self.tree)]
        return [Member(self.card.name, 1.0, self.tree)]

    @property
    def law(self):
        """The fit's law: the card's, or a law ensemble's weighted mixture of its members'."""
        return law_params(self.tree)[0] if self.is_mixture else self.card.law_spec

    @property
    def lead(self) -> Fit:
        """The member with the largest weight (the fit itself for a single card)."""
        return Fit(max(self.members, key=lambda m: m.weight).tree)

    @property
    def ensemble_info(self) -> dict | None:
        """An ensemble's record (weights, tau, splits, ...), None for a single card."""
        return _members.ensemble_info(self.tree) if self.is_mixture else None

    @property
    def tau(self) -> float:
        """The extrapolation discrepancy an ensemble learned (0 for a single card)."""
        info = self.ensemble_info
        return float(info["tau"]) if info else 0.0

    @property
    def validated_decades(self) -> float:
        """How far beyond the fitted runs the rolling backtests forecast (0: not validated).

        0 also when the runs bend away from the laws (:attr:`lack_of_fit`): no extrapolation of
        such a fit is validated, however far its rolling splits reached.
        """
        return _members.validated_decades(self.tree)

    @property
    def lack_of_fit(self) -> dict | None:
        """An ensemble's lack-of-fit test (``flag``, ``t``, ``p``, ``n_clusters``,
        ``slope_top``; :func:`bayescale.scoring.discrepancy.lack_of_fit`), None if untested."""
        info = self.ensemble_info
        return None if info is None else info.get("lack_of_fit")

    @property
    def drift(self) -> tuple[float, float]:
        """``(mean, sd)`` of the forecasts' drift per decade beyond the fitted runs (log loss).

        Non-zero only for an ensemble whose runs bend away from its laws (:attr:`lack_of_fit`);
        fits made before the test existed have none.
        """
        info = self.ensemble_info or {}
        drift = info.get("drift") or {}
        return float(drift.get("mean", 0.0)), float(drift.get("sd", 0.0))

    # ---- data ----------------------------------------------------------------------------
    @property
    def runs(self):
        """The fitted runs as a DataFrame (:func:`bayescale.fits.layout.runs_of`)."""
        return runs_of(self.tree)

    def law_params(self):
        """``(law, params, noise)`` draws (:func:`bayescale.fits.params.law_params`)."""
        return law_params(self.tree)

    @property
    def provenance(self) -> dict:
        """Root provenance attributes, JSON decoded."""
        return provenance(self.tree)

    @property
    def diagnostics(self) -> dict:
        """The sampler diagnostics recorded at fit time (of the lead member for an ensemble)."""
        raw = self.tree.attrs.get("bayescale_diagnostics")
        return json.loads(raw) if raw else {}

    # ---- families ------------------------------------------------------------------------
    @property
    def families_info(self) -> dict:
        """``{"group_by", "labels", "n_runs", "pooled"}`` of a pooled fit (else an InputError)."""
        return _families.families_info(self.tree)

    @property
    def families_key(self) -> str:
        """What the families of a pooled fit are, as a JSON key: ``"metrics"`` when they are
        several metrics of the same runs (``group_by="metric"``, :func:`bayescale.load_runs`
        with ``metrics=``), else ``"families"``."""
        return "metrics" if self.families_info["group_by"] == METRIC else "families"

    @property
    def family_labels(self) -> list[str]:
        """Family labels of a pooled fit, in the order of its ``family`` coordinate."""
        return _families.family_labels(self.tree)

    def family(self, name: str) -> Fit:
        """One family of a pooled fit as an ordinary fit (:func:`family_view`)."""
        return Fit(family_view(self.tree, name))

    def family_trees(self) -> dict:
        """``{label: tree}`` of every family of a pooled fit."""
        return {lab: family_view(self.tree, lab) for lab in self.family_labels}


def read(fit) -> Fit:
    """The :class:`Fit` view of a fit tree (a :class:`Fit` is returned as it is)."""
    return fit if isinstance(fit, Fit) else Fit(fit)


def stack_families(results, labels):
    """Per-family ``xarray.Dataset`` answers stacked on a leading ``family`` dimension."""
    import xarray as xr

    return xr.concat(list(results), dim="family", join="outer").assign_coords(family=labels)


def per_family(combine: str = "stack"):
    """Decorate an answer about one fit so that a pooled fit gets it per family.

    Parameters
    ----------
    combine : {"stack", "dict"}
        ``"stack"``: the per-family ``xarray.Dataset`` s on a ``family`` dimension
        (:func:`stack_families`); ``"dict"``: ``{label: answer}``.

    Returns
    -------
    callable
        The decorator. The wrapped answer takes the fit first; on a pooled fit it is called
        once per family view with the same arguments. A keyword ``family=LABEL`` asks for one
        family's answer alone (not combined); on a fit without families it is ignored.
    """
    if combine not in ("stack", "dict"):
        raise InputError(f"combine must be 'stack' or 'dict', got {combine!r}")

    def decorate(answer):
        @functools.wraps(answer)
        def wrapper(fit, *args, family=None, **kwargs):
            if not _families.is_pooled(fit):
                return answer(fit, *args, **kwargs)
            if family is not None:
                return answer(family_view(fit, family), *args, **kwargs)
            labels = _families.family_labels(fit)
            out = {lab: answer(family_view(fit, lab), *args, **kwargs) for lab in labels}
            return stack_families(out.values(), labels) if combine == "stack" else out

        wrapper.per_family = True
        return wrapper

    return decorate
