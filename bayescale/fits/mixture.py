"""The weighted mixture of an ensemble's laws as one law over the mixture's draws.

Each draw of the mixture belongs to one member (``__member__``, an index per draw) and carries
that member's parameters (``m<k>|<name>``; other members' slots hold a harmless filler). The
mixture's log loss, closed-form optimum and exponents evaluate every member's law and keep, per
draw, the one its member defines, so every function written for a single law (``predict``,
``optimal``, ``compute_for_target``, the numeric optimum, backtest scores) answers for the
mixture unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bayescale.core.laws import Law
from bayescale.errors import InputError

__all__ = ["MixtureLaw", "mixture_law_params"]

MEMBER_KEY = "__member__"


def _key(k: int, name: str) -> str:
    return f"m{k}|{name}"


@dataclass(frozen=True)
class MixtureLaw(Law):
    """The laws of an ensemble's members, selected per draw by ``params["__member__"]``."""

    laws: tuple[Law, ...] = field(default=())

    def _split(self, params):
        member = params[MEMBER_KEY]
        parts = []
        for k, law in enumerate(self.laws):
            prefix = f"m{k}|"
            sub = {n[len(prefix):]: v for n, v in params.items() if n.startswith(prefix)}
            parts.append((law, sub))
        return member, parts

    def _select(self, member, values):
        out = values[-1]
        for k in range(len(values) - 2, -1, -1):
            out = np.where(member == k, values[k], out)
        return out

    def log_loss(self, N, D, params, **data):  # noqa: D102 (see Law.log_loss)
        member, parts = self._split(params)
        vals = [law.log_loss(N, D, sub, **data) for law, sub in parts]
        return self._select(member, vals)


def _mixed(laws, attr):
    if any(getattr(law, attr) is None for law in laws):
        return None

    def fn(params):
        member = params[MEMBER_KEY]
        outs = []
        for k, law in enumerate(laws):
            prefix = f"m{k}|"
            sub = {n[len(prefix):]: v for n, v in params.items() if n.startswith(prefix)}
            outs.append(getattr(law, attr)(sub))
        if isinstance(outs[0], tuple):
            return tuple(_select_arrays(member, [o[i] for o in outs]) for i in range(len(outs[0])))
        return _select_arrays(member, outs)

    return fn


def _select_arrays(member, values):
    out = np.asarray(values[-1], dtype=float)
    for k in range(len(values) - 2, -1, -1):
        out = np.where(member == k, values[k], out)
    return out


def mixture_law_params(parts, *, variables=None) -> tuple[MixtureLaw, dict, dict]:
    """Combine members' ``(law, params, noise)`` draws (already thinned) into the mixture's.

    Parameters
    ----------
    parts : list of tuple
        ``(law, params, noise)`` per member with draws, as
        :func:`bayescale.answers.prediction.law_params`
        returns them, each thinned to the member's share of the mixture's draws.
    variables : tuple of str, optional
        Inputs the mixture reads (all members', including those without draws). Default: the
        longest of the parts' laws' variables.

    Returns
    -------
    tuple
        ``(MixtureLaw, params, noise)`` over the concatenated draws.
    """

    laws = tuple(p[0] for p in parts)
    families = {p[2]["family"] for p in parts}
    if len(families) > 1:
        raise InputError(
            f"an ensemble's members must share one noise family, got {sorted(families)}"
        )
    sizes = [p[2]["sigma"].size for p in parts]
    member = np.repeat(np.arange(len(parts)), sizes).astype(float)
    params = {MEMBER_KEY: member}
    total = int(sum(sizes))
    start = 0
    for k, ((_, p, _), n) in enumerate(zip(parts, sizes, strict=True)):
        for name, v in p.items():
            v = np.asarray(v, dtype=float)
            full = np.full(total, float(np.median(v)))
            full[start:start + n] = v
            params[_key(k, name)] = full
        start += n
    nus = [p[2]["nu"] for p in parts]
    noise = {
        "family": families.pop(),
        "sigma": np.concatenate([p[2]["sigma"] for p in parts]),
        "nu": None if nus[0] is None else np.concatenate(nus),
    }
    if variables is None:
        variables = max((law.variables for law in laws), key=len)
    law = MixtureLaw(
        name="mixture",
        params=(),
        variables=variables,
        amplitudes=(),
        formula="weighted mixture of: " + "; ".join(law.formula for law in laws),
        reference="Yao et al. (2018), Bayesian Analysis 13(3) (stacking)",
        affine=_mixed(laws, "affine") if all(law.has_optimum for law in laws) else None,
        exponent_a=_mixed(laws, "exponent_a") if all(law.has_optimum for law in laws) else None,
        laws=laws,
    )
    return law, params, noise
