"""The hierarchical PyMC model of several families of runs sharing one card.

Every law parameter has one value per family (dim ``family``). The parameters listed in the
card's ``[pooling]`` table are partially pooled, non-centred on the log scale::

    log theta_f = log mu_theta + tau_theta * z_f,    z ~ ZeroSumNormal(1) over families,

with ``mu_theta`` (``mu_<name>``) under the card's prior of ``theta`` and ``tau_theta``
(``tau_<name>``, the spread of ``log theta`` across families) under the pooling prior. The log
scale keeps exponents and ``E`` positive and makes ``tau`` a relative spread that means the same
for every parameter. The deviations ``z_f`` sum to zero, so ``mu_theta`` is the geometric mean of
the families' values: the data pin it, and the sampler does not have to trade ``mu`` against
every ``z_f`` (with a plain Normal ``z``, three families of 12 runs gave ``mu_alpha`` a bulk ESS
of 57 and R-hat 1.05 in 4 x 300 draws; with the zero-sum ``z``, R-hat 1.03 and ESS 170, all of it
in ``tau``). Non-centring is the standard remedy for the funnel between ``tau`` and the family
values when each family has few runs (Betancourt & Girolami 2015).

A pooled amplitude (LogNormal prior) is pooled through the log of its term at the
``[prior_scale]`` reference: ``t_f = m + tau z_f``, ``m`` under the card's Normal prior of that
log term. Parameters not listed get the card's prior independently per family (unpooled);
unpooled amplitudes use the single-family pivot of :mod:`bayescale.core.model` per family (the log
of
the term at the family's own geometric-mean input).

The noise (``sigma`` and ``nu``) is per family, with the card's priors: corpora and pipelines
differ in run-to-run scatter and in outliers. Measured on the over-training runs (per-corpus
backtest, ``benchmarks/families.py``), a shared noise scale lost to separate fits on C4
(held-out log score 2.20 against 2.37), because the heavy tails another corpus needed
(``nu`` about 1.6) widened C4's predictive; with per-family noise the pooled fit scores at least
as well as separate fits on all three corpora.

Data (``N``, ``D``, ``log_loss_obs``, ``family_idx``) enter as ``pm.Data`` and the pivots are
computed in the graph, so a compiled model is refitted on other runs with the same number of
families by swapping the data.

References
----------
Gelman, A. & Hill, J. (2007). Data Analysis Using Regression and Multilevel/Hierarchical Models.
Betancourt, M. & Girolami, M. (2015). Hamiltonian Monte Carlo for hierarchical models.
"""

from __future__ import annotations

import numpy as np

from bayescale.core.cards import Card
from bayescale.core.model import pivot_prior


def hyper_names(card: Card) -> list[str]:
    """Names of the hyperparameters of the pooled parameters (``mu_<p>``, ``tau_<p>``).

    A pooled amplitude's centre is ``mu_log_<A>_ref`` (its log term at the reference input), or
    ``mu_log_<A>`` without a reference.
    """
    amps = {a.name for a in card.law_spec.amplitudes}
    out = []
    for name in card.pooling:
        if name in amps:
            ref = name in card.prior_scale
            out += [f"mu_log_{name}_ref" if ref else f"mu_log_{name}", f"tau_{name}"]
        else:
            out += [f"mu_{name}", f"tau_{name}"]
    return out


def build_pooled_model(card: Card, runs, family_idx, labels):
    """Return the hierarchical ``pm.Model`` of ``card`` on runs from several families.

    Parameters
    ----------
    card : Card
        Law, priors, likelihood and ``[pooling]`` table.
    runs : Runs or Mapping
        Anything with ``N``, ``D`` and ``loss`` arrays.
    family_idx : array_like of int
        Family of each run, in ``0..len(labels)-1``.
    labels : sequence of str
        Family labels (the ``family`` coordinate).

    Returns
    -------
    pymc.Model
        Deterministics per family (dim ``family``): every law parameter and ``log_<amp>``;
        scalars ``mu_<p>``, ``tau_<p>`` for pooled parameters; ``sigma`` (and ``nu``) per
        family; observed ``log_loss`` over ``run``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = card.law_spec
    N = np.asarray(runs.N if hasattr(runs, "N") else runs["N"], dtype=float)
    D = np.asarray(runs.D if hasattr(runs, "D") else runs["D"], dtype=float)
    loss = np.asarray(runs.loss if hasattr(runs, "loss") else runs["loss"], dtype=float)
    idx = np.asarray(family_idx, dtype=np.int64)
    n_fam = len(labels)
    coords = {"run": np.arange(len(N)), "family": [str(x) for x in labels]}
    with pm.Model(coords=coords) as model:
        n_data = pm.Data("N", N, dims="run")
        d_data = pm.Data("D", D, dims="run")
        y = pm.Data("log_loss_obs", np.log(loss), dims="run")
        fam = pm.Data("family_idx", idx, dims="run")
        onehot = pt.eq(fam[:, None], pt.arange(n_fam)[None, :]).astype("float64")
        counts = pt.maximum(onehot.sum(axis=0), 1.0)
        log_x0 = {
            "N": pt.dot(pt.log(n_data), onehot) / counts,
            "D": pt.dot(pt.log(d_data), onehot) / counts,
        }
        values = {}
        amp_names = {a.name for a in law.amplitudes}
        for name in card.free_params:
            if name in amp_names:
                continue
            if name in card.pooling:
                mu = card.priors[name].to_pymc(f"mu_{name}")
                tau = card.pooling[name].to_pymc(f"tau_{name}")
                z = pm.ZeroSumNormal(f"z_{name}", sigma=1.0, dims="family")
                values[name] = pm.Deterministic(name, mu * pt.exp(tau * z), dims="family")
            else:
                values[name] = card.priors[name].to_pymc(name, dims="family")
        for name, other in card.tie.items():
            values[name] = pm.Deterministic(name, values[other], dims="family")
        for amp in law.amplitudes:
            e = values[amp.exponent]
            prior = card.priors[amp.name]
            ref = card.prior_scale.get(amp.name)
            lx0 = log_x0[amp.variable]
            ln = prior.lognormal_params
            if amp.name in card.pooling:
                m_loc, s = ln
                suffix = "_ref" if ref is not None else ""  # without one: pool the log amplitude
                m = pm.Normal(f"mu_log_{amp.name}{suffix}", m_loc, s)
                tau = card.pooling[amp.name].to_pymc(f"tau_{amp.name}")
                z = pm.ZeroSumNormal(f"z_{amp.name}", sigma=1.0, dims="family")
                t = m + tau * z
                if ref is not None:
                    log_amp = amp.log_amplitude(t, e, np.log(ref))
                else:
                    log_amp = t
            elif ln is not None:
                mu, s = ln
                loc, scale = pivot_prior(amp, e, mu, s, ref=ref, log_x0=lx0)
                start = np.full(n_fam, float(mu) if ref is not None else 0.0)
                t = pm.Normal(f"log_{amp.name}_pivot", loc, scale, dims="family", initval=start)
                log_amp = amp.log_amplitude(t, e, lx0)
            else:
                if ref is not None:
                    term = prior.to_pymc(f"{amp.name}_at_ref", dims="family")
                    log_amp = amp.log_amplitude(pt.log(term), e, np.log(ref))
                else:
                    log_amp = pt.log(prior.to_pymc(f"{amp.name}_direct", dims="family"))
            values["log_" + amp.name] = pm.Deterministic("log_" + amp.name, log_amp, dims="family")
            values[amp.name] = pm.Deterministic(amp.name, pt.exp(log_amp), dims="family")
        per_run = {k: v[fam] for k, v in values.items()}
        mu = law.log_loss(n_data, d_data, per_run)
        sigma = card.noise_priors["sigma"].to_pymc("sigma", dims="family")[fam]
        if card.family == "StudentT":
            nu = card.noise_priors["nu"].to_pymc("nu", dims="family")[fam]
            pm.StudentT("log_loss", nu=nu, mu=mu, sigma=sigma, observed=y, dims="run")
        else:
            pm.Normal("log_loss", mu=mu, sigma=sigma, observed=y, dims="run")
    return model
