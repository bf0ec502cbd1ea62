"""Prior specifications: a small, safe grammar and the :class:`Prior` value object.

A prior is written the way it reads in a paper or a model card, e.g. ``Beta(2, 5)``,
``LogNormal(-0.7, 1.5)``, ``HalfNormal(sigma=0.05)`` or
``TruncatedNormal(mu=0.3, sigma=0.1, lower=0, upper=1)``. The text is read by a hand-written
tokenizer and recursive-descent parser; nothing is ever evaluated. The grammar is::

    spec     := NAME "(" [args] ")"
    args     := arg ("," arg)*            (positional arguments before keyword arguments)
    arg      := number | NAME "=" number
    override := NAME "=" spec
    number   := [+-] (digits ["." [digits]] | "." digits) [("e" | "E") [+-] digits] | [+-] "inf"

Only the distributions in :data:`DISTRIBUTIONS` are allowed, with PyMC's parametrisation
(``Gamma(alpha, beta)`` has rate ``beta``; ``Exponential(lam)`` has rate ``lam``). Every parameter
is required except the bounds of ``TruncatedNormal``, which default to ``-inf``/``inf`` and are
left out of the canonical form when infinite, so :meth:`Prior.to_dict` is always valid JSON.
"""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real

import numpy as np

from bayescale.errors import CardError


def _st():
    """``scipy.stats``, imported on first use (it takes seconds to import)."""
    from scipy import stats

    return stats

__all__ = [
    "DISTRIBUTIONS",
    "MAX_TEXT_LENGTH",
    "DistSpec",
    "Prior",
    "as_prior",
    "parse_override",
    "parse_prior",
]

MAX_TEXT_LENGTH = 1000
"""Longest prior or override text accepted (characters)."""


class _HalfStudentT:
    """Frozen half Student-t (|T| with T ~ StudentT(nu, 0, sigma)), scipy-like interface."""

    def __init__(self, nu: float, sigma: float) -> None:
        self._t = _st().t(df=nu, loc=0.0, scale=sigma)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        inside = x >= 0
        dens = np.log(2.0) + self._t.logpdf(np.where(inside, x, 0.0))
        return np.where(inside, dens, -np.inf)

    def rvs(self, size=None, random_state=None):
        return np.abs(self._t.rvs(size=size, random_state=random_state))


@dataclass(frozen=True)
class DistSpec:
    """One allowed distribution: its parameters, defaults, constraints and scipy equivalent.

    Parameters
    ----------
    name : str
        Canonical name, identical to the PyMC class name.
    params : tuple of str
        Parameter names in positional (and canonical) order.
    support : callable
        ``support(params) -> (low, high)`` given the full parameter mapping.
    scipy : callable
        ``scipy(params)`` returns a frozen scipy distribution (``logpdf``, ``rvs``) with the same
        density as PyMC's.
    positive : tuple of str
        Parameters that must be strictly positive.
    defaults : tuple of (str, float)
        Optional parameters and their defaults; all other parameters are required.
    ordered : tuple of (str, str) or None
        A pair ``(lower, upper)`` that must satisfy ``lower < upper``.
    infinite_ok : tuple of str
        Parameters allowed to be ``-inf``/``inf``; every other parameter must be finite.
    """

    name: str
    params: tuple[str, ...]
    support: Callable[[Mapping[str, float]], tuple[float, float]]
    scipy: Callable[[Mapping[str, float]], object]
    positive: tuple[str, ...] = ()
    defaults: tuple[tuple[str, float], ...] = ()
    ordered: tuple[str, str] | None = None
    infinite_ok: tuple[str, ...] = ()

    @property
    def required(self) -> tuple[str, ...]:
        """Parameters without a default."""
        optional = dict(self.defaults)
        return tuple(p for p in self.params if p not in optional)


def _real_line(p: Mapping[str, float]) -> tuple[float, float]:
    return (-math.inf, math.inf)


def _positive_line(p: Mapping[str, float]) -> tuple[float, float]:
    return (0.0, math.inf)


def _unit_interval(p: Mapping[str, float]) -> tuple[float, float]:
    return (0.0, 1.0)


def _bounds(p: Mapping[str, float]) -> tuple[float, float]:
    return (p["lower"], p["upper"])


def _truncnorm(p: Mapping[str, float]):
    mu, sigma = p["mu"], p["sigma"]
    a, b = (p["lower"] - mu) / sigma, (p["upper"] - mu) / sigma
    return _st().truncnorm(a=a, b=b, loc=mu, scale=sigma)


DISTRIBUTIONS: dict[str, DistSpec] = {
    spec.name: spec
    for spec in (
        DistSpec(
            "Normal",
            ("mu", "sigma"),
            support=_real_line,
            scipy=lambda p: _st().norm(loc=p["mu"], scale=p["sigma"]),
            positive=("sigma",),
        ),
        DistSpec(
            "HalfNormal",
            ("sigma",),
            support=_positive_line,
            scipy=lambda p: _st().halfnorm(scale=p["sigma"]),
            positive=("sigma",),
        ),
        DistSpec(
            "LogNormal",
            ("mu", "sigma"),
            support=_positive_line,
            scipy=lambda p: _st().lognorm(s=p["sigma"], scale=math.exp(p["mu"])),
            positive=("sigma",),
        ),
        DistSpec(
            "StudentT",
            ("nu", "mu", "sigma"),
            support=_real_line,
            scipy=lambda p: _st().t(df=p["nu"], loc=p["mu"], scale=p["sigma"]),
            positive=("nu", "sigma"),
        ),
        DistSpec(
            "HalfStudentT",
            ("nu", "sigma"),
            support=_positive_line,
            scipy=lambda p: _HalfStudentT(p["nu"], p["sigma"]),
            positive=("nu", "sigma"),
        ),
        DistSpec(
            "Beta",
            ("alpha", "beta"),
            support=_unit_interval,
            scipy=lambda p: _st().beta(a=p["alpha"], b=p["beta"]),
            positive=("alpha", "beta"),
        ),
        DistSpec(
            "Gamma",
            ("alpha", "beta"),
            support=_positive_line,
            scipy=lambda p: _st().gamma(a=p["alpha"], scale=1.0 / p["beta"]),
            positive=("alpha", "beta"),
        ),
        DistSpec(
            "Exponential",
            ("lam",),
            support=_positive_line,
            scipy=lambda p: _st().expon(scale=1.0 / p["lam"]),
            positive=("lam",),
        ),
        DistSpec(
            "Uniform",
            ("lower", "upper"),
            support=_bounds,
            scipy=lambda p: _st().uniform(loc=p["lower"], scale=p["upper"] - p["lower"]),
            ordered=("lower", "upper"),
        ),
        DistSpec(
            "TruncatedNormal",
            ("mu", "sigma", "lower", "upper"),
            support=_bounds,
            scipy=_truncnorm,
            positive=("sigma",),
            defaults=(("lower", -math.inf), ("upper", math.inf)),
            ordered=("lower", "upper"),
            infinite_ok=("lower", "upper"),
        ),
        DistSpec(
            "HalfCauchy",
            ("beta",),
            support=_positive_line,
            scipy=lambda p: _st().halfcauchy(scale=p["beta"]),
            positive=("beta",),
        ),
        DistSpec(
            "Cauchy",
            ("alpha", "beta"),
            support=_real_line,
            scipy=lambda p: _st().cauchy(loc=p["alpha"], scale=p["beta"]),
            positive=("beta",),
        ),
    )
}
"""The allowed distributions by canonical name, parameters in positional order (PyMC's names)."""

_BY_LOWER = {name.lower(): name for name in DISTRIBUTIONS}


def _fmt(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` (``1.0`` -> ``1``)."""
    text = repr(float(value))
    return text.removesuffix(".0")


def _allowed() -> str:
    return ", ".join(DISTRIBUTIONS)


def _spec_for(dist: object, where: str) -> DistSpec:
    if not isinstance(dist, str) or dist.lower() not in _BY_LOWER:
        raise CardError(
            f"{where}unknown distribution {dist!r}; allowed distributions: {_allowed()}"
        )
    return DISTRIBUTIONS[_BY_LOWER[dist.lower()]]


def _canonical(
    dist: object, named: Mapping[str, object], where: str
) -> tuple[str, tuple[tuple[str, float], ...]]:
    """Check parameter names, values and constraints; return the canonical (dist, kwargs)."""
    spec = _spec_for(dist, where)
    unknown = [k for k in named if k not in spec.params]
    if unknown:
        raise CardError(
            f"{where}{spec.name} has no parameter {unknown[0]!r}; "
            f"valid parameters: {', '.join(spec.params)}"
        )
    missing = [p for p in spec.required if p not in named]
    if missing:
        raise CardError(
            f"{where}{spec.name} is missing required parameter {missing[0]!r} "
            f"(parameters: {', '.join(spec.params)})"
        )
    full: dict[str, float] = dict(spec.defaults)
    for key, value in named.items():
        if isinstance(value, bool) or not isinstance(value, Real):
            raise CardError(f"{where}{spec.name} parameter {key!r} must be a number, got {value!r}")
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and key not in spec.infinite_ok):
            raise CardError(
                f"{where}{spec.name} parameter {key!r} must be finite, got {_fmt(value)}"
            )
        full[key] = value
    for key in spec.positive:
        if not full[key] > 0:
            raise CardError(
                f"{where}{spec.name} parameter {key!r} must be > 0, got {_fmt(full[key])}"
            )
    if spec.ordered is not None:
        lo, hi = spec.ordered
        if not full[lo] < full[hi]:
            raise CardError(
                f"{where}{spec.name} needs {lo} < {hi}, "
                f"got {lo}={_fmt(full[lo])}, {hi}={_fmt(full[hi])}"
            )
    defaults = dict(spec.defaults)
    kwargs = tuple(
        (p, full[p]) for p in spec.params if not (p in defaults and full[p] == defaults[p])
    )
    return spec.name, kwargs


@dataclass(frozen=True)
class Prior:
    """A validated prior distribution in canonical form.

    Construct it with :func:`parse_prior` or :func:`as_prior`; direct construction is validated
    and normalised too (distribution name case, parameter order, ``int`` to ``float``, bounds at
    their infinite defaults dropped).

    Parameters
    ----------
    dist : str
        Distribution name, one of :data:`DISTRIBUTIONS` (case-insensitive on input).
    kwargs : tuple of (str, float)
        Parameter values by name.

    Examples
    --------
    >>> p = Prior("lognormal", (("sigma", 1.5), ("mu", -0.7)))
    >>> p
    Prior(dist='LogNormal', kwargs=(('mu', -0.7), ('sigma', 1.5)))
    >>> str(p)
    'LogNormal(mu=-0.7, sigma=1.5)'
    """

    dist: str
    kwargs: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        if not isinstance(self.kwargs, tuple | list):
            raise CardError(
                f"prior kwargs must be a tuple of (name, value) pairs, got {self.kwargs!r}"
            )
        named: dict[str, object] = {}
        for pair in self.kwargs:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
                raise CardError(f"prior kwargs must be (name, value) pairs, got {pair!r}")
            if pair[0] in named:
                raise CardError(f"prior {self.dist!r} repeats parameter {pair[0]!r}")
            named[pair[0]] = pair[1]
        dist, kwargs = _canonical(self.dist, named, "")
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "kwargs", kwargs)

    def __str__(self) -> str:
        """Canonical text; ``parse_prior(str(p)) == p``."""
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.kwargs)
        return f"{self.dist}({args})"

    @property
    def spec(self) -> DistSpec:
        """The :class:`DistSpec` of this prior's distribution."""
        return DISTRIBUTIONS[self.dist]

    @property
    def params(self) -> dict[str, float]:
        """All parameters, defaults included (e.g. ``lower=-inf`` of a TruncatedNormal)."""
        return dict(self.spec.defaults) | dict(self.kwargs)

    @property
    def lognormal_params(self) -> tuple[float, float] | None:
        """``(mu, sigma)`` of a LogNormal prior, else None."""
        if self.dist != "LogNormal":
            return None
        params = dict(self.kwargs)
        return (params["mu"], params["sigma"])

    def to_dict(self) -> dict:
        """JSON-ready mapping ``{"dist": name, **kwargs}``; :func:`as_prior` reads it back.

        Examples
        --------
        >>> parse_prior("Beta(2, 5)").to_dict()
        {'dist': 'Beta', 'alpha': 2.0, 'beta': 5.0}
        """
        return {"dist": self.dist, **dict(self.kwargs)}

    def _pymc_kwargs(self) -> dict[str, np.float64]:
        # np.float64, not float: pytensor turns Python floats that fit in float32 into float32.
        return {k: np.float64(v) for k, v in self.kwargs}

    def to_pymc(self, name: str, **kw):
        """Create the named random variable in the current ``pm.Model`` context.

        Parameters
        ----------
        name : str
            Variable name in the model.
        **kw
            Passed on to the PyMC distribution (e.g. ``dims``, ``initval``).

        Returns
        -------
        pytensor.tensor.TensorVariable
            ``getattr(pm, dist)(name, **kwargs, **kw)``.

        Examples
        --------
        >>> import pymc as pm
        >>> with pm.Model() as model:
        ...     alpha = parse_prior("Beta(2, 5)").to_pymc("alpha")
        >>> model.named_vars["alpha"] is alpha
        True
        """
        import pymc as pm

        return getattr(pm, self.dist)(name, **self._pymc_kwargs(), **kw)

    def dist_pymc(self):
        """Unnamed PyMC distribution ``getattr(pm, dist).dist(**kwargs)``, e.g. for ``pm.logp``.

        Returns
        -------
        pytensor.tensor.TensorVariable

        Examples
        --------
        >>> import pymc as pm
        >>> prior = parse_prior("Normal(0, 2)")
        >>> bool(abs(pm.logp(prior.dist_pymc(), 1.0).eval() - prior.logpdf(1.0)) < 1e-12)
        True
        """
        import pymc as pm

        return getattr(pm, self.dist).dist(**self._pymc_kwargs())

    def sample(self, rng, size=None) -> np.ndarray:
        """Draws from the prior with numpy/scipy (no PyMC graph).

        Parameters
        ----------
        rng : numpy.random.Generator or int
            Random generator, or a seed for ``np.random.default_rng``.
        size : int or tuple of int, optional
            Output shape; None gives a 0-d array.

        Returns
        -------
        numpy.ndarray

        Examples
        --------
        >>> x = parse_prior("Uniform(0, 1)").sample(0, size=3)
        >>> x.shape, bool(((x > 0) & (x < 1)).all())
        ((3,), True)
        """
        gen = np.random.default_rng(rng)
        return np.asarray(self.spec.scipy(self.params).rvs(size=size, random_state=gen), float)

    def logpdf(self, x) -> np.ndarray:
        """Log density at ``x`` (``-inf`` outside the support), equal to PyMC's ``logp``.

        Parameters
        ----------
        x : array_like

        Returns
        -------
        numpy.ndarray

        Examples
        --------
        >>> float(parse_prior("Exponential(2)").logpdf(0.5))  # log(2) - 2 * 0.5
        -0.3068528194400547
        """
        x = np.asarray(x, dtype=float)
        return np.asarray(self.spec.scipy(self.params).logpdf(x), dtype=float)

    def support(self) -> tuple[float, float]:
        """Lower and upper bound of the support (the closure; ends may be infinite).

        Examples
        --------
        >>> parse_prior("TruncatedNormal(0, 1, lower=0)").support()
        (0.0, inf)
        """
        low, high = self.spec.support(self.params)
        return (float(low), float(high))


# --------------------------------------------------------------------------------------------
# Tokenizer and recursive-descent parser

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<number>[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF])
        (?![A-Za-z0-9_.]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),=])
    """,
    re.VERBOSE | re.ASCII,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "(", ")", ",", "=", "end"
    text: str
    pos: int


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "end of text"
    return repr(token.text)


def _syntax_error(text: str, pos: int, expected: str, found: str) -> CardError:
    """One-line error: what was expected, what was found, and the text with ``^`` at ``pos``."""
    lo, hi = max(0, pos - 40), min(len(text), pos + 40)
    marked = text[lo:pos] + "^" + text[pos:hi]
    marked = ("..." if lo > 0 else "") + marked + ("..." if hi < len(text) else "")
    return CardError(
        f"cannot parse prior at column {pos + 1}: expected {expected}, found {found}; "
        f"text (^ marks the spot): {marked!r}"
    )


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] in "+-.0123456789":
                raise _syntax_error(text, pos, "a number like 2, -0.7, 1e3 or inf", "a bad number")
            raise _syntax_error(
                text, pos, "a name, a number, '(', ')', ',' or '='", repr(text[pos])
            )
        kind = match.lastgroup
        if kind == "punct":
            kind = match.group()
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive-descent parser over the token list; one instance per text."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise CardError(f"a prior must be given as text, got {type(text).__name__}")
        if len(text) > MAX_TEXT_LENGTH:
            raise CardError(
                f"prior text is {len(text)} characters long; at most {MAX_TEXT_LENGTH} allowed"
            )
        if not text.strip():
            raise CardError("empty prior; expected e.g. 'Normal(0, 1)' or 'Beta(2, 5)'")
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def expect(self, kind: str, expected: str) -> _Token:
        token = self.peek()
        if token.kind != kind:
            raise _syntax_error(self.text, token.pos, expected, _describe(token))
        self.i += 1
        return token

    def end(self) -> None:
        self.expect("end", "end of text")

    def spec(self) -> Prior:
        name = self.expect("name", "a distribution name such as Normal or Beta")
        where = f"prior {self.text.strip()!r}: "
        spec = _spec_for(name.text, where)
        self.expect("(", f"'(' after {name.text}")
        named: dict[str, float] = {}
        n_positional = 0
        if self.peek().kind != ")":
            while True:
                token = self.peek()
                if token.kind == "number":
                    if len(named) > n_positional:
                        raise _syntax_error(
                            self.text,
                            token.pos,
                            "a keyword argument (name=value)",
                            "a positional argument after a keyword argument",
                        )
                    if n_positional >= len(spec.params):
                        raise _syntax_error(
                            self.text,
                            token.pos,
                            f"')' ({spec.name} takes {len(spec.params)} arguments: "
                            f"{', '.join(spec.params)})",
                            f"argument {n_positional + 1}",
                        )
                    named[spec.params[n_positional]] = float(self.number().text)
                    n_positional += 1
                else:
                    self.reject_nan()
                    key = self.expect("name", "a number or a parameter name")
                    self.expect("=", f"'=' after {key.text}")
                    value = float(self.number().text)
                    if key.text in named:
                        raise CardError(f"{where}parameter {key.text!r} given more than once")
                    named[key.text] = value
                if self.peek().kind == ")":
                    break
                self.expect(",", "',' or ')'")
        self.expect(")", "')'")
        dist, kwargs = _canonical(spec.name, named, where)
        return Prior(dist, kwargs)

    def number(self) -> _Token:
        self.reject_nan()
        return self.expect("number", "a number like 2, -0.7, 1e3 or inf")

    def reject_nan(self) -> None:
        token = self.peek()
        if token.kind == "name" and token.text.lower() == "nan":
            raise _syntax_error(self.text, token.pos, "a number other than nan", "'nan'")


def parse_prior(text: str) -> Prior:
    """Parse a prior specification such as ``"LogNormal(-0.7, 1.5)"``.

    Positional arguments fill the parameters in the order of :data:`DISTRIBUTIONS`; keyword
    arguments may follow them. Nothing is evaluated.

    Parameters
    ----------
    text : str
        The specification, at most :data:`MAX_TEXT_LENGTH` characters.

    Returns
    -------
    Prior

    Raises
    ------
    CardError
        Bad syntax (with the column and a ``^`` marker), an unknown distribution or parameter,
        a missing or repeated parameter, or a value violating a constraint.

    Examples
    --------
    >>> parse_prior("LogNormal(-0.7, 1.5)")
    Prior(dist='LogNormal', kwargs=(('mu', -0.7), ('sigma', 1.5)))
    >>> parse_prior("Normal(0, sigma=1e3)") == parse_prior("Normal(mu=0, sigma=1000)")
    True
    """
    parser = _Parser(text)
    prior = parser.spec()
    parser.end()
    return prior


def parse_override(text: str) -> tuple[str, Prior]:
    """Parse a prior override ``"name=Spec(...)"`` as given on the command line.

    Parameters
    ----------
    text : str
        E.g. ``"alpha=Beta(2, 5)"``.

    Returns
    -------
    tuple of (str, Prior)

    Examples
    --------
    >>> name, prior = parse_override("alpha=Beta(2, 5)")
    >>> name, str(prior)
    ('alpha', 'Beta(alpha=2, beta=5)')
    """
    parser = _Parser(text)
    name = parser.expect("name", "a parameter name")
    parser.expect("=", f"'=' after {name.text}")
    prior = parser.spec()
    parser.end()
    return name.text, prior


def as_prior(value) -> Prior:
    """Coerce a :class:`Prior`, a specification string or a mapping to a :class:`Prior`.

    Parameters
    ----------
    value : Prior, str or mapping
        A mapping has a ``"dist"`` key and one key per parameter, as :meth:`Prior.to_dict`
        writes it, e.g. ``{"dist": "Beta", "alpha": 2, "beta": 5}``.

    Returns
    -------
    Prior

    Examples
    --------
    >>> as_prior({"dist": "Beta", "alpha": 2, "beta": 5}) == as_prior("Beta(2, 5)")
    True
    """
    if isinstance(value, Prior):
        return value
    if isinstance(value, str):
        return parse_prior(value)
    if isinstance(value, Mapping):
        if "dist" not in value:
            raise CardError(
                f"prior mapping {dict(value)!r} has no 'dist' key; "
                f"expected e.g. {{'dist': 'Beta', 'alpha': 2, 'beta': 5}}"
            )
        named = {k: v for k, v in value.items() if k != "dist"}
        bad = [k for k in named if not isinstance(k, str)]
        if bad:
            raise CardError(f"prior mapping has a non-text key {bad[0]!r}")
        dist, kwargs = _canonical(value["dist"], named, f"prior {dict(value)!r}: ")
        return Prior(dist, kwargs)
    raise CardError(
        f"cannot make a prior from {type(value).__name__}; "
        "expected a Prior, a string like 'Beta(2, 5)' or a dict like {'dist': 'Beta', ...}"
    )
