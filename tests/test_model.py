"""The pivot parameterisation is the same model: its joint density equals the direct one."""

import numpy as np
import pytest
from scipy import stats

from bayescale.core.cards import load_card
from bayescale.core.likelihood import logpdf
from bayescale.core.model import build_model


@pytest.fixture(scope="module")
def runs():
    from bayescale import datasets

    return datasets.simulate(random_seed=3)


def _direct_logp(card, runs, nat, *, log_x0):
    """Joint log density written out by hand on the natural parameters (amplitudes in log)."""
    law = card.law_spec
    total = 0.0
    amps = {a.name: a for a in law.amplitudes}
    for name in card.free_params:
        if name in amps:
            continue
        total += card.priors[name].logpdf(nat[name])
    for name, amp in amps.items():
        mu, s = card.priors[name].lognormal_params
        e = nat[amp.exponent]
        lx_ref = np.log(card.prior_scale[name])
        # log term at the reference ~ Normal(mu, s); the pivot term is a unit-Jacobian shift of it
        log_term_ref = amp.log_term(nat["log_" + name], e, lx_ref)
        total += stats.norm.logpdf(log_term_ref, mu, s)
    total += card.noise_priors["sigma"].logpdf(nat["sigma"])
    if card.family == "StudentT":
        total += card.noise_priors["nu"].logpdf(nat["nu"])
    mu = law.log_loss(runs["N"].to_numpy(), runs["D"].to_numpy(), nat)
    total += logpdf(np.log(runs["loss"].to_numpy()), mu, nat["sigma"], family=card.family,
                    nu=nat.get("nu")).sum()
    return float(total)


@pytest.mark.parametrize(
    "card_name, nat",
    [
        ("chinchilla", dict(E=1.8, log_A=np.log(480.0), log_B=np.log(2000.0), alpha=0.35,
                            beta=0.37, sigma=0.02, nu=7.0)),
        ("chinchilla-normal", dict(E=1.7, log_A=np.log(300.0), log_B=np.log(900.0), alpha=0.3,
                                   beta=0.32, sigma=0.03)),
        ("kaplan", dict(log_N_c=np.log(6.4e13), log_D_c=np.log(1.8e13), alpha_N=0.076,
                        alpha_D=0.103, sigma=0.05, nu=4.0)),
        ("kaplan-linf", dict(log_N_c=np.log(6.4e13), log_D_c=np.log(1.8e13), alpha_N=0.2,
                             alpha_D=0.25, L_inf=1.2, sigma=0.05, nu=4.0)),
    ],
)
def test_pivot_model_density_equals_direct_model(runs, card_name, nat):
    card = load_card(card_name)
    model = build_model(card, runs)
    law = card.law_spec
    log_x0 = {"N": np.mean(np.log(runs["N"])), "D": np.mean(np.log(runs["D"]))}
    point = {}
    for rv in model.free_RVs:
        name = rv.name
        value_var = model.rvs_to_values[rv]
        if name.endswith("_pivot"):
            amp = next(a for a in law.amplitudes if name == f"log_{a.name}_pivot")
            val = amp.log_term(nat["log_" + amp.name], nat[amp.exponent], log_x0[amp.variable])
        else:
            val = nat[name]
        point[value_var.name] = np.asarray(val)
        # transform to the value variable's space
        tr = model.rvs_to_transforms.get(rv)
        if tr is not None:
            point[value_var.name] = tr.forward(np.asarray(val, dtype=float)).eval()
    logp = model.compile_logp(jacobian=False)(point)
    # rel 1e-9: float summation of ~50 terms
    assert logp == pytest.approx(_direct_logp(card, runs, nat, log_x0=log_x0), rel=1e-9)


def test_tied_card_has_one_exponent(runs):
    card = load_card("chinchilla-tied")
    model = build_model(card, runs)
    free = {rv.name for rv in model.free_RVs}
    assert "beta" not in free and "alpha" in free
    assert "beta" in model.named_vars  # deterministic copy of alpha


def test_non_lognormal_amplitude_prior_samples_reference_term(runs):
    card = load_card("chinchilla", priors={"A": "Gamma(2, 4)"})
    model = build_model(card, runs)
    free = {rv.name for rv in model.free_RVs}
    assert "A_at_ref" in free and "log_A_pivot" not in free and "log_B_pivot" in free
