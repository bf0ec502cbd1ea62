"""Build the PyMC model of a card on a runs table.

Parameterisation ("pivot"): each amplitude (``A``, ``B``, ``N_c``, ``D_c``) is sampled through the
log of its term at the runs' geometric-mean input, ``t = log(A / N0^alpha)`` with
``log N0 = mean(log N)``. At that point the data pin the term's value whatever the exponent, so
``t`` and ``alpha`` are nearly uncorrelated in the posterior, where ``log A`` and ``alpha`` lie on a
long ridge. When the amplitude's prior is LogNormal (on the amplitude, or on its term at a
``prior_scale`` reference), the prior of ``t`` given the exponent is again Normal, so the pivot is
an exact change of variables: the same model, easier geometry. Other prior families sample the
amplitude's reference term directly (no pivot).

The pivot is computed inside the graph from the data, so a compiled model can be refitted on other
runs by swapping the data (``N``, ``D``, ``log_loss_obs``).

The likelihood is on log loss, Normal or Student-t, a proper distribution with pointwise
log-likelihood for PSIS-LOO.
"""

from __future__ import annotations

import numpy as np

from bayescale.core.cards import Card
from bayescale.errors import InputError


def build_model(card: Card, runs, *, coords_run=None):
    """Return the ``pm.Model`` of ``card`` on ``runs``.

    Parameters
    ----------
    card : Card
        Law, priors and likelihood.
    runs : Runs or Mapping
        Anything with ``N``, ``D`` and ``loss`` arrays, and the law's extra variables
        (``U`` for the data-constrained law), each a ``pm.Data`` of the same name.
    coords_run : array_like, optional
        Labels of the ``run`` dimension (defaults to ``0..n-1``).

    Returns
    -------
    pymc.Model
        Free variables: non-amplitude law parameters by name, ``log_<amp>_pivot`` for pivoted
        amplitudes, ``sigma`` (and ``nu``); deterministics: every law parameter by name and
        ``log_<amp>``; observed: ``log_loss`` over ``run``.

    References
    ----------
    Hoffmann et al. (2022) and Besiroglu et al. (2024) fit the same law on log loss with a Huber
    loss; the Student-t likelihood is its probabilistic counterpart.
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = card.law_spec
    N = np.asarray(runs.N if hasattr(runs, "N") else runs["N"], dtype=float)
    D = np.asarray(runs.D if hasattr(runs, "D") else runs["D"], dtype=float)
    loss = np.asarray(runs.loss if hasattr(runs, "loss") else runs["loss"], dtype=float)
    coords = {"run": np.arange(len(N)) if coords_run is None else np.asarray(coords_run)}
    with pm.Model(coords=coords) as model:
        n_data = pm.Data("N", N, dims="run")
        d_data = pm.Data("D", D, dims="run")
        y = pm.Data("log_loss_obs", np.log(loss), dims="run")
        extra = {
            v: pm.Data(v, _column(runs, v), dims="run") for v in law.extra_variables
        }
        log_x0 = {"N": pt.mean(pt.log(n_data)), "D": pt.mean(pt.log(d_data))}
        values = {}
        amp_names = {a.name for a in law.amplitudes}
        for name in card.free_params:
            if name not in amp_names:
                values[name] = card.priors[name].to_pymc(name)
        for name, other in card.tie.items():
            values[name] = pm.Deterministic(name, values[other])
        for amp in law.amplitudes:
            e = values[amp.exponent]
            prior = card.priors[amp.name]
            ref = card.prior_scale.get(amp.name)
            lx0 = log_x0[amp.variable]
            ln = prior.lognormal_params
            if ln is not None:
                mu, s = ln
                loc, scale = pivot_prior(amp, e, mu, s, ref=ref, log_x0=lx0)
                # A data-independent start: nutpie evaluates initial points on the data the
                # model was compiled with, so a start that moved with the pivot would make a
                # cached refit differ from a fresh fit with the same seed.
                start = float(mu) if ref is not None else 0.0
                t = pm.Normal(f"log_{amp.name}_pivot", loc, scale, initval=start)
                log_amp = amp.log_amplitude(t, e, lx0)
            else:
                if ref is not None:
                    term = prior.to_pymc(f"{amp.name}_at_ref")
                    log_amp = amp.log_amplitude(pt.log(term), e, np.log(ref))
                else:
                    log_amp = pt.log(prior.to_pymc(f"{amp.name}_direct"))
            values["log_" + amp.name] = pm.Deterministic("log_" + amp.name, log_amp)
            values[amp.name] = pm.Deterministic(amp.name, pt.exp(log_amp))
        mu = law.log_loss(n_data, d_data, values, **extra)
        sigma = card.noise_priors["sigma"].to_pymc("sigma")
        if card.family == "StudentT":
            nu = card.noise_priors["nu"].to_pymc("nu")
            pm.StudentT("log_loss", nu=nu, mu=mu, sigma=sigma, observed=y, dims="run")
        else:
            pm.Normal("log_loss", mu=mu, sigma=sigma, observed=y, dims="run")
    return model


def _column(runs, name) -> np.ndarray:

    value = getattr(runs, name, None) if hasattr(runs, "frame") else runs.get(name)
    if value is None:
        raise InputError(f"the law needs column {name!r}, which the runs do not have")
    return np.asarray(value, dtype=float)


def posterior_var_names(card: Card) -> list[str]:
    """Names of the variables a fit's posterior holds: law parameters, log amplitudes, noise."""
    law = card.law_spec
    return (
        list(card.param_names)
        + [f"log_{a.name}" for a in law.amplitudes]
        + list(card.noise_param_names)
    )


def pivot_prior(amp, exponent, mu, s, *, ref, log_x0):
    """Normal ``(loc, scale)`` of an amplitude's log term at ``log_x0`` given its exponent.

    The card's LogNormal(``mu``, ``s``) prior is on the term at the reference ``ref`` (its
    ``[prior_scale]``), or on the amplitude itself when ``ref`` is None; either way the log term
    at the pivot is again Normal (an exact change of variables).
    """
    if ref is not None:
        # log term at the reference ~ N(mu, s); at x0 it shifts by e*(lx_ref - lx0)
        return mu + exponent * (np.log(ref) - log_x0), s
    if amp.kind == "power":
        return mu - exponent * log_x0, s
    return exponent * (mu - log_x0), exponent * s
