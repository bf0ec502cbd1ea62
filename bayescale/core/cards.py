"""Model cards: a scaling law, its priors, likelihood and published reference values, as data.

A card is a TOML file (the built-in ones live in ``models/`` and ship inside the wheel). It is
parsed with :mod:`tomllib` and its priors with the safe grammar of :mod:`bayescale.core.priors`;
nothing in it is executed. A card looks like::

    name = "chinchilla"
    law = "chinchilla"
    [priors]
    E = "HalfNormal(sigma=3)"
    A = "LogNormal(mu=-0.7, sigma=1.5)"   # stated at the reference in [prior_scale]
    ...
    [prior_scale]
    A = 1e9
    [likelihood]
    family = "StudentT"
    sigma = "HalfNormal(sigma=0.05)"
    nu = "Gamma(alpha=2, beta=0.1)"
    [[references]]
    source = "Hoffmann et al. (2022)"
    params = { E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28 }

``[prior_scale]`` states an amplitude's prior through the loss its term contributes at a reference
input (``A / N^alpha`` at ``N = 1e9``) instead of on the amplitude itself; ``[tie]`` equates a
parameter with another (``beta = "alpha"``). The optional ``[pooling]`` table names the parameters
that a fit with several families (``group_by=``, :mod:`bayescale.families`) partially pools, each
with the prior of its pooling scale (``alpha = "HalfNormal(sigma=0.2)"``: the spread of
``log alpha`` across families); parameters not listed are fitted per family with the card's prior.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from bayescale.core.accuracy_cards import AccuracyCard, accuracy_card_from_dict
from bayescale.core.laws import Law, get_law
from bayescale.core.priors import Prior, as_prior
from bayescale.errors import CardError

FAMILIES = ("Normal", "StudentT")
NOISE_PARAMS = ("sigma", "nu")
_SCALE_PRIORS = ("HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential", "Gamma", "LogNormal")


@dataclass(frozen=True)
class Reference:
    """Published parameter values for a law, with their source."""

    source: str
    params: Mapping[str, float]
    citation: str = ""
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    interval_prob: float | None = None
    exponents: Mapping[str, float] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "source": self.source,
            "citation": self.citation,
            "params": dict(self.params),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "interval_prob": self.interval_prob,
            "exponents": dict(self.exponents),
            "note": self.note,
        }


@dataclass(frozen=True)
class Card:
    """A scaling-law model: law, priors, likelihood and references.

    Build one with :func:`load_card`; derive variants with :meth:`with_priors`.

    Attributes
    ----------
    name : str
        Card name (``"chinchilla"``).
    law : str
        Law registry name (see :data:`bayescale.core.laws.LAWS`).
    priors : Mapping[str, Prior]
        Prior of each free law parameter (amplitudes at their ``prior_scale`` reference).
    family : str
        Likelihood on log loss: ``"Normal"`` or ``"StudentT"``.
    noise_priors : Mapping[str, Prior]
        Priors of ``sigma`` (and ``nu`` for Student-t).
    prior_scale : Mapping[str, float]
        Reference input for amplitude priors.
    tie : Mapping[str, str]
        Parameters equal to another (``{"beta": "alpha"}``).
    references : tuple of Reference
        Published values.
    description, source : str
        Free text and where the card came from.
    pooling : Mapping[str, Prior]
        Parameters partially pooled across families in a grouped fit, each with the prior of its
        pooling scale (see :mod:`bayescale.core.pooled_model`). Empty: nothing pooled.
    """

    name: str
    law: str
    priors: Mapping[str, Prior]
    family: str
    noise_priors: Mapping[str, Prior]
    prior_scale: Mapping[str, float] = field(default_factory=dict)
    tie: Mapping[str, str] = field(default_factory=dict)
    references: tuple[Reference, ...] = ()
    description: str = ""
    source: str = ""
    pooling: Mapping[str, Prior] = field(default_factory=dict)

    @property
    def law_spec(self) -> Law:
        """The :class:`~bayescale.core.laws.Law` this card uses."""
        return get_law(self.law)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Law parameters of this card, in law order (tied ones included, optional ones if used)."""
        law = self.law_spec
        return law.params + tuple(p for p in law.optional if p in self.priors)

    @property
    def free_params(self) -> tuple[str, ...]:
        """Law parameters that are sampled (not tied)."""
        return tuple(p for p in self.param_names if p not in self.tie)

    @property
    def noise_param_names(self) -> tuple[str, ...]:
        """``("sigma",)`` or ``("sigma", "nu")``."""
        return ("sigma", "nu") if self.family == "StudentT" else ("sigma",)

    @property
    def n_params(self) -> int:
        """Number of sampled parameters, noise included."""
        return len(self.free_params) + len(self.noise_param_names)

    def optimum_references(self) -> list[Reference]:
        """References that give every parameter the law's compute optimum needs.

        Examples
        --------
        >>> [r.source[:15] for r in load_card("chinchilla").optimum_references()][:1]
        ['Hoffmann et al.']
        """
        law = self.law_spec
        need = [a.name for a in law.amplitudes] + [a.exponent for a in law.amplitudes]
        return [r for r in self.references if all(k in r.params for k in need)]

    def all_priors(self) -> dict[str, Prior]:
        """Priors of every sampled parameter, law then noise."""
        return {**{p: self.priors[p] for p in self.free_params}, **dict(self.noise_priors)}

    def with_priors(self, overrides: Mapping[str, Prior | str | Mapping] | None) -> Card:
        """Return a new card with some priors replaced.

        Parameters
        ----------
        overrides : Mapping
            ``{parameter: prior}``, the prior as a :class:`~bayescale.core.priors.Prior`, a string
            such
            as ``"Beta(2, 5)"`` or a dict. Noise parameters (``sigma``, ``nu``) are allowed.

        Returns
        -------
        Card
            A new card; this one is unchanged.

        Raises
        ------
        CardError
            For a parameter the card does not sample (the message lists the valid ones).

        Examples
        --------
        >>> card = load_card("chinchilla").with_priors({"alpha": "Beta(2, 5)"})
        >>> str(card.priors["alpha"])
        'Beta(alpha=2, beta=5)'
        """
        if not overrides:
            return self
        priors = dict(self.priors)
        noise = dict(self.noise_priors)
        valid = self.free_params + self.noise_param_names
        for key, value in overrides.items():
            if key not in valid:
                raise CardError(
                    f"card {self.name!r} has no parameter {key!r} to set a prior on; "
                    f"valid parameters: {', '.join(valid)}"
                )
            prior = as_prior(value)
            if key in NOISE_PARAMS:
                noise[key] = prior
            else:
                priors[key] = prior
        return replace(self, priors=priors, noise_priors=noise)

    def to_dict(self) -> dict:
        """JSON-ready dictionary; :func:`card_from_dict` inverts it."""
        return {
            "name": self.name,
            "law": self.law,
            "description": self.description,
            "source": self.source,
            "priors": {k: str(v) for k, v in self.priors.items()},
            "likelihood": {
                "family": self.family,
                **{k: str(v) for k, v in self.noise_priors.items()},
            },
            "prior_scale": dict(self.prior_scale),
            "tie": dict(self.tie),
            "references": [r.to_dict() for r in self.references],
            "pooling": {k: str(v) for k, v in self.pooling.items()},
        }

    def to_json(self) -> str:
        """The card as a JSON string (stored in a fit's provenance)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def _models_dir() -> Path:
    """Folder of the built-in cards: inside the installed package, or ``models/`` in a checkout."""
    packaged = resources.files("bayescale") / "_models"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "models"


def list_cards() -> list[str]:
    """Names of the built-in model cards.

    Returns
    -------
    list of str

    Examples
    --------
    >>> "chinchilla" in list_cards() and "kaplan" in list_cards()
    True
    """
    return sorted(p.stem for p in _models_dir().glob("*.toml"))


def card_from_dict(data: Mapping, *, source: str = "") -> Card:
    """Build and validate a :class:`Card` from a parsed TOML or JSON mapping.

    Parameters
    ----------
    data : Mapping
        Card contents (see the module docstring for the layout).
    source : str, optional
        Where it came from, for messages.

    Returns
    -------
    Card or AccuracyCard
        An :class:`~bayescale.core.accuracy_cards.AccuracyCard` when ``kind = "accuracy"``.

    Raises
    ------
    CardError
        With the card, the key and what was expected.
    """
    if data.get("kind", "loss") == "accuracy":  # accuracy laws: bayescale.core.accuracy_cards
        return accuracy_card_from_dict(data, source=source)
    where = source or data.get("name", "<card>")

    def fail(msg):
        raise CardError(f"model card {where}: {msg}")

    law_name = data.get("law")
    if not isinstance(law_name, str):
        fail("missing 'law' (a string naming the law)")
    try:
        law = get_law(law_name)
    except KeyError as err:
        fail(str(err.args[0]))
    tie = dict(data.get("tie", {}))
    valid = law.params + law.optional
    for k, v in tie.items():
        if k not in law.params or v not in law.params:
            fail(
                f"[tie] {k} = {v!r}: both must be parameters of {law_name} "
                f"({', '.join(law.params)})"
            )
    raw_priors = data.get("priors")
    if not isinstance(raw_priors, Mapping):
        fail("missing [priors] table")
    priors = {}
    for key, text in raw_priors.items():
        if key not in valid:
            fail(f"[priors] has unknown parameter {key!r}; valid parameters: {', '.join(valid)}")
        if key in tie:
            fail(f"[priors] sets {key!r}, which [tie] equates with {tie[key]!r}")
        try:
            priors[key] = as_prior(text)
        except CardError as err:
            fail(f"[priors] {key}: {err}")
    missing = [p for p in law.params if p not in priors and p not in tie]
    if missing:
        fail(f"[priors] lacks {', '.join(missing)}")
    scale = dict(data.get("prior_scale", {}))
    amp_names = {a.name for a in law.amplitudes}
    for k, v in scale.items():
        if k not in amp_names:
            fail(f"[prior_scale] {k}: only amplitudes ({', '.join(sorted(amp_names))}) take one")
        if not isinstance(v, (int, float)) or not v > 0:
            fail(f"[prior_scale] {k} = {v!r}: expected a positive number")
    like = data.get("likelihood", {})
    family = like.get("family", "Normal")
    if family not in FAMILIES:
        fail(f"[likelihood] family {family!r}; valid families: {', '.join(FAMILIES)}")
    noise = {}
    for key in ("sigma", "nu") if family == "StudentT" else ("sigma",):
        if key not in like:
            fail(f"[likelihood] lacks a prior for {key!r}")
        try:
            noise[key] = as_prior(like[key])
        except CardError as err:
            fail(f"[likelihood] {key}: {err}")
    pooling = {}
    raw_pooling = data.get("pooling", {})
    if not isinstance(raw_pooling, Mapping):
        fail("[pooling] must be a table of parameter = \"prior of its pooling scale\"")
    for key, text in raw_pooling.items():
        if key not in law.params + law.optional or key in tie:
            free = [p for p in valid if p not in tie]
            fail(f"[pooling] has unknown parameter {key!r}; poolable parameters: {', '.join(free)}")
        if key not in priors:
            fail(f"[pooling] pools {key!r}, which has no prior in [priors]")
        try:
            pooling[key] = as_prior(text)
        except CardError as err:
            fail(f"[pooling] {key}: {err}")
        if pooling[key].dist not in _SCALE_PRIORS:
            fail(
                f"[pooling] {key} = {text!r}: a pooling scale needs a positive prior "
                f"({', '.join(_SCALE_PRIORS)})"
            )
        if key in amp_names and priors[key].lognormal_params is None:
            fail(f"[pooling] {key}: a pooled amplitude needs a LogNormal prior in [priors]")
    refs = []
    for i, r in enumerate(data.get("references", [])):
        unknown = set(r.get("params", {})) - set(valid)
        if unknown:
            fail(f"references[{i}] has unknown parameters {sorted(unknown)}")
        refs.append(
            Reference(
                source=str(r.get("source", "")),
                citation=str(r.get("citation", "")),
                params={k: float(v) for k, v in r.get("params", {}).items()},
                intervals={k: (float(a), float(b)) for k, (a, b) in r.get("intervals", {}).items()},
                interval_prob=r.get("interval_prob"),
                exponents={k: float(v) for k, v in r.get("exponents", {}).items()},
                note=str(r.get("note", "")),
            )
        )
    return Card(
        name=str(data.get("name", Path(source).stem if source else law_name)),
        law=law_name,
        priors=priors,
        family=family,
        noise_priors=noise,
        prior_scale=scale,
        tie=tie,
        references=tuple(refs),
        description=str(data.get("description", "")),
        source=str(data.get("source", source)),
        pooling=pooling,
    )


def load_card(card: str | Path | Card, *, priors: Mapping | None = None) -> Card:
    """Load a model card by built-in name or TOML path, optionally overriding priors.

    Parameters
    ----------
    card : str, Path or Card
        A built-in name (see :func:`list_cards`), a path to a ``.toml`` file, or a card.
    priors : Mapping, optional
        Prior overrides passed to :meth:`Card.with_priors`.

    Returns
    -------
    Card

    Raises
    ------
    CardError
        Unknown name (the message lists the built-in cards), unreadable or invalid TOML.

    Examples
    --------
    >>> load_card("chinchilla").free_params
    ('E', 'A', 'B', 'alpha', 'beta')
    >>> load_card("chinchilla-tied").tie
    {'beta': 'alpha'}
    """
    if isinstance(card, (Card, AccuracyCard)):
        return card.with_priors(priors)
    text = str(card)
    path = Path(text)
    if path.suffix != ".toml" and not path.exists():
        path = _models_dir() / f"{text}.toml"
        if not path.is_file():
            raise CardError(
                f"unknown model card {text!r}; built-in cards: {', '.join(list_cards())} "
                "(or give the path of a .toml card)"
            )
        source = f"builtin:{text}"
    else:
        source = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise CardError(f"model card file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise CardError(f"model card {path}: invalid TOML: {err}") from None
    return card_from_dict(data, source=source).with_priors(priors)


def card_from_json(text: str) -> Card:
    """Rebuild a card from :meth:`Card.to_json` (used by :func:`bayescale.load`)."""
    data = json.loads(text)
    data = dict(data)
    return card_from_dict(data, source=data.get("source", ""))
