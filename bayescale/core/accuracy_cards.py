"""Accuracy model cards: an accuracy law, its priors and its Beta-binomial noise, as data.

An accuracy card is a TOML file like a loss card (:mod:`bayescale.core.cards`), marked by
``kind = "accuracy"``::

    name = "accuracy-direct"
    kind = "accuracy"
    law = "accuracy_direct"
    [priors]
    level = "Beta(alpha=1, beta=1)"       # law at the runs' mean input, share of room above chance
    k = "LogNormal(mu=0, sigma=1)"        # slope of the link
    room = "Beta(alpha=2, beta=1)"        # ceiling's share of the room left above that level
    [likelihood]
    family = "BetaBinomial"
    sigma = "HalfNormal(sigma=0.05)"      # run-to-run scatter of accuracy (see noise)

:func:`bayescale.core.cards.load_card` reads both kinds; this module builds and checks the accuracy
ones. The floor (chance accuracy) and the number of evaluation examples are data of the task,
never parameters, so no card states them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bayescale.core.accuracy_laws import ACCURACY_LAWS, AccuracyLaw, get_accuracy_law
from bayescale.core.priors import Prior, as_prior
from bayescale.errors import CardError

KIND = "accuracy"
FAMILIES = ("BetaBinomial",)
NOISE_PARAMS = ("sigma",)


@dataclass(frozen=True)
class AccuracyCard:
    """An accuracy model: law, priors and Beta-binomial noise.

    Attributes
    ----------
    name : str
        Card name (``"accuracy-direct"``).
    law : str
        Accuracy law registry name (see :data:`bayescale.core.accuracy_laws.ACCURACY_LAWS`).
    priors : Mapping[str, Prior]
        Priors of ``level``, ``k`` and ``room`` (see
        :meth:`~bayescale.core.accuracy_laws.AccuracyLaw.from_pivot`).
    family : str
        ``"BetaBinomial"`` (see :mod:`bayescale.core.accuracy_noise`).
    noise_priors : Mapping[str, Prior]
        Prior of ``sigma``, the run-to-run scatter of accuracy.
    description, source : str
        Free text and where the card came from.
    references, prior_scale, tie, pooling
        Always empty (no published references, no amplitude pivots, no tied or pooled
        parameters); present so that code showing any card (``bayescale cards``) reads them.
    kind : str
        ``"accuracy"`` (loss cards have none).
    """

    name: str
    law: str
    priors: Mapping[str, Prior]
    family: str
    noise_priors: Mapping[str, Prior]
    description: str = ""
    source: str = ""
    references: tuple = ()
    prior_scale: Mapping[str, float] = field(default_factory=dict)
    tie: Mapping[str, str] = field(default_factory=dict)
    pooling: Mapping[str, Prior] = field(default_factory=dict)
    kind: str = KIND

    @property
    def law_spec(self) -> AccuracyLaw:
        """The :class:`~bayescale.core.accuracy_laws.AccuracyLaw` this card uses."""
        return get_accuracy_law(self.law)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Sampled law parameters, in law order."""
        return self.law_spec.params

    @property
    def free_params(self) -> tuple[str, ...]:
        """Sampled law parameters (nothing is tied)."""
        return self.param_names

    @property
    def noise_param_names(self) -> tuple[str, ...]:
        """``("sigma",)``."""
        return NOISE_PARAMS

    @property
    def n_params(self) -> int:
        """Number of sampled parameters, noise included."""
        return len(self.free_params) + len(NOISE_PARAMS)

    def optimum_references(self) -> list:
        """No compute optimum for an accuracy law: always empty."""
        return []

    def all_priors(self) -> dict[str, Prior]:
        """Priors of every sampled parameter, law then noise."""
        return {**{p: self.priors[p] for p in self.free_params}, **dict(self.noise_priors)}

    def with_priors(self, overrides: Mapping | None) -> AccuracyCard:
        """Return a new card with some priors replaced (checked as in the TOML).

        Raises
        ------
        CardError
            For a parameter the card does not sample (the message lists the valid ones), or a
            prior outside the parameter's range.

        Examples
        --------
        >>> from bayescale.core.cards import load_card
        >>> str(load_card("accuracy-direct").with_priors({"k": "LogNormal(0, 0.5)"}).priors["k"])
        'LogNormal(mu=0, sigma=0.5)'
        """
        if not overrides:
            return self
        priors, noise = dict(self.priors), dict(self.noise_priors)
        valid = self.free_params + NOISE_PARAMS
        for key, value in overrides.items():
            if key not in valid:
                raise CardError(
                    f"card {self.name!r} has no parameter {key!r} to set a prior on; "
                    f"valid parameters: {', '.join(valid)}"
                )
            prior = as_prior(value)
            _check_support(key, prior, self.name)
            (noise if key in NOISE_PARAMS else priors)[key] = prior
        return replace(self, priors=priors, noise_priors=noise)

    def to_dict(self) -> dict:
        """JSON-ready dictionary; :func:`accuracy_card_from_dict` inverts it."""
        return {
            "name": self.name,
            "kind": KIND,
            "law": self.law,
            "description": self.description,
            "source": self.source,
            "priors": {k: str(v) for k, v in self.priors.items()},
            "likelihood": {
                "family": self.family,
                **{k: str(v) for k, v in self.noise_priors.items()},
            },
        }

    def to_json(self) -> str:
        """The card as a JSON string (stored in a fit's provenance)."""
        return json.dumps(self.to_dict(), sort_keys=True)


_RANGES = {
    "level": (0.0, 1.0),
    "room": (0.0, 1.0),
    "k": (0.0, math.inf),
    "sigma": (0.0, math.inf),
}
"""Where each bounded parameter's prior must put all its mass."""


def _check_support(key: str, prior: Prior, where: str) -> None:
    if key not in _RANGES:
        return
    lo, hi = prior.spec.support(prior.params)
    want_lo, want_hi = _RANGES[key]
    if lo < want_lo or hi > want_hi:
        raise CardError(
            f"model card {where}: prior of {key} {prior} has support [{lo:g}, {hi:g}]; it needs "
            f"[{want_lo:g}, {want_hi:g}] (e.g. "
            + ("Beta" if key in ("level", "room") else "LogNormal or HalfNormal")
            + ")"
        )


def accuracy_card_from_dict(data: Mapping, *, source: str = "") -> AccuracyCard:
    """Build and validate an :class:`AccuracyCard` from a parsed TOML or JSON mapping.

    Parameters
    ----------
    data : Mapping
        Card contents with ``kind = "accuracy"`` (see the module docstring).
    source : str, optional
        Where it came from, for messages.

    Returns
    -------
    AccuracyCard

    Raises
    ------
    CardError
        With the card, the key and what was expected.
    """
    where = source or data.get("name", "<card>")

    def fail(msg):
        raise CardError(f"model card {where}: {msg}")

    if data.get("kind") != KIND:
        fail(f"kind {data.get('kind')!r} is not {KIND!r}")
    law_name = data.get("law")
    if law_name not in ACCURACY_LAWS:
        fail(f"unknown accuracy law {law_name!r}; valid accuracy laws: {', '.join(ACCURACY_LAWS)}")
    law = ACCURACY_LAWS[law_name]
    for table in ("tie", "prior_scale", "pooling"):
        if data.get(table):
            fail(f"[{table}] is not supported by accuracy cards")
    raw = data.get("priors")
    if not isinstance(raw, Mapping):
        fail("missing [priors] table")
    priors = {}
    for key, text in raw.items():
        if key not in law.params:
            valid = ", ".join(law.params)
            fail(f"[priors] has unknown parameter {key!r}; valid parameters: {valid}")
        try:
            priors[key] = as_prior(text)
        except CardError as err:
            fail(f"[priors] {key}: {err}")
        _check_support(key, priors[key], where)
    missing = [p for p in law.params if p not in priors]
    if missing:
        fail(f"[priors] lacks {', '.join(missing)}")
    like = data.get("likelihood", {})
    family = like.get("family", "BetaBinomial")
    if family not in FAMILIES:
        fail(f"[likelihood] family {family!r}; valid families: {', '.join(FAMILIES)}")
    if "sigma" not in like:
        fail("[likelihood] lacks a prior for 'sigma'")
    try:
        sigma = as_prior(like["sigma"])
    except CardError as err:
        fail(f"[likelihood] sigma: {err}")
    _check_support("sigma", sigma, where)
    name = data.get("name") or law_name
    return AccuracyCard(
        name=str(name),
        law=law_name,
        priors=priors,
        family=family,
        noise_priors={"sigma": sigma},
        description=str(data.get("description", "")),
        source=str(data.get("source", source)),
    )
