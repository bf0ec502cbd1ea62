"""The law of a fit, its parameter draws and its noise model, as flat arrays.

For a law ensemble the law is the weighted mixture of the members' laws over the mixture's
draws (:mod:`bayescale.fits.mixture`), so every answer written for one law answers for the
mixture unchanged.
"""

from __future__ import annotations

import numpy as np

from bayescale.core.laws import Law
from bayescale.errors import InputError
from bayescale.fits.layout import card_of, draws
from bayescale.fits.members import is_ensemble, member_draw_indices, members
from bayescale.fits.mixture import mixture_law_params

__all__ = ["law_params"]


def law_params(fit) -> tuple[Law, dict[str, np.ndarray], dict]:
    """The law of a fit, its parameter draws and its noise model, as flat arrays.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit from :func:`bayescale.engines.single.fit`.

    Returns
    -------
    tuple
        ``(law, params, noise)``: the :class:`~bayescale.core.laws.Law`; a dict of 1-D draw arrays
        keyed
        as :meth:`Law.log_loss` reads them (``log_A`` rather than ``A`` for amplitudes, ``L_inf``
        when the card has one); and ``{"family", "sigma", "nu"}`` (``nu`` is None for Normal).
        For a law ensemble (:mod:`bayescale.ensemble`) the law is the members' weighted mixture
        (:class:`~bayescale.fits.mixture.MixtureLaw`) over the mixture's draws.
    """
    if is_ensemble(fit):
        return _mixture_law_params(fit)
    card = card_of(fit)
    law = card.law_spec
    post = fit["posterior"]
    names = []
    for k in law.params + law.optional:
        amp = next((a for a in law.amplitudes if a.name == k), None)
        if amp is not None and f"log_{k}" in post:
            names.append(f"log_{k}")
        elif k in post:
            names.append(k)
        elif k not in law.optional:
            raise InputError(f"fit posterior has no draws of {k!r} needed by law {law.name!r}")
    params = draws(fit, var_names=names)
    for amp in law.amplitudes:
        if amp.name in params:
            params[f"log_{amp.name}"] = np.log(params.pop(amp.name))
    noise_names = ["sigma"] + (["nu"] if card.family == "StudentT" else [])
    nd = draws(fit, var_names=noise_names)
    noise = {"family": card.family, "sigma": nd["sigma"], "nu": nd.get("nu")}
    return law, params, noise


def _mixture_law_params(fit):
    """``law_params`` of an ensemble: each member's draws thinned to its weight, combined."""
    # a member with weight 0 has no draws, but its inputs (U) stay valid queries of the ensemble
    variables = tuple(dict.fromkeys(
        v for _, _, tree in members(fit) for v in card_of(tree).law_spec.variables))
    parts = []
    for tree, idx in member_draw_indices(fit):
        law, params, noise = law_params(tree)
        params = {k: np.asarray(v)[idx] for k, v in params.items()}
        noise = {**noise, "sigma": noise["sigma"][idx],
                 "nu": None if noise["nu"] is None else noise["nu"][idx]}
        parts.append((law, params, noise))
    return mixture_law_params(parts, variables=variables)
