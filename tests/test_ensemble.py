"""Law ensembles: stacking weights, discrepancy, the mixture's draws, answers and the fit tree."""

import json
import warnings

import numpy as np
import pytest
from fakes import make_fit, scattered

import bayescale as bs
from bayescale.ensemble import assemble, ensemble_info, members, validated_decades
from bayescale.errors import InputError, SamplerWarning
from bayescale.fits.members import draw_allocation, member_draw_indices
from bayescale.scoring.stacking import (
    card_log_density,
    fit_tau,
    mixture_log_density,
    stacking_weights,
)

# ---------------------------------------------------------------------------------------------
# stacking weights and discrepancy (closed forms)
# ---------------------------------------------------------------------------------------------


def test_identical_cards_get_equal_weights():
    ld = np.log(np.full((3, 40), 0.7))
    w, info = stacking_weights(ld, random_seed=1)
    # the posterior is the symmetric Dirichlet prior: its mean is 1/3 up to importance-sampling
    # error, sd of a Dirichlet(2,2,2) weight / sqrt(ESS)
    assert info["ess"] > 19_000
    sd = np.sqrt((2 * 4) / (6**2 * 7)) / np.sqrt(info["ess"])
    np.testing.assert_allclose(w, 1 / 3, atol=5 * sd)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_clearly_better_card_dominates_but_never_takes_all():
    rng = np.random.default_rng(0)
    good = np.log(np.full(60, 2.0))
    bad = np.log(np.full(60, 0.2)) + 0.01 * rng.standard_normal(60)
    w, info = stacking_weights(np.stack([bad, good]))
    assert w[1] > 0.9 and w[1] < 1.0
    # the plain maximiser (Yao et al.'s weights) puts everything on the better card
    assert info["map_weights"][1] > 0.999


def test_multiplicity_counts_each_run_once():
    rng = np.random.default_rng(3)
    ld = np.log(rng.uniform(0.2, 2.0, size=(3, 25)))
    once, _ = stacking_weights(ld, random_seed=5)
    twice, _ = stacking_weights(np.concatenate([ld, ld], axis=1),
                                multiplicity=np.full(50, 2.0), random_seed=5)
    np.testing.assert_allclose(once, twice, rtol=1e-10)


def test_stacking_rejects_bad_input():
    with pytest.raises(InputError, match="at least one card"):
        stacking_weights(np.zeros((2, 0)))
    with pytest.raises(InputError, match="Dirichlet"):
        stacking_weights(np.zeros((2, 3)), a=0.0)


def _normal_piece(y, delta, sigma=1e-4):
    y = np.asarray(y, float)
    return {"y": y, "mu": np.zeros((1, y.size)), "sigma": np.array([sigma]), "nu": None,
            "family": "Normal", "delta": np.asarray(delta, float)}


def test_tau_matches_the_normal_closed_form():
    # held-out errors e_i at distances d_i, Normal predictive sd tau*d_i: the MLE is
    # tau^2 = mean(e_i^2 / d_i^2)
    rng = np.random.default_rng(2)
    d = rng.uniform(0.2, 1.5, 80)
    e = 0.03 * d * rng.standard_normal(80)
    tau, info = fit_tau([[_normal_piece(e, d)]], [1.0])
    assert tau == pytest.approx(np.sqrt(np.mean(e**2 / d**2)), rel=1e-3)
    assert info["lpd_with"] > info["lpd_without"]


def test_tau_is_zero_when_forecasts_are_as_good_as_claimed():
    rng = np.random.default_rng(4)
    piece = _normal_piece(0.01 * rng.standard_normal(50), np.ones(50), sigma=0.01)
    assert fit_tau([[piece]], [1.0])[0] < 0.003


def test_mixture_density_is_the_weighted_sum():
    p1, p2 = _normal_piece([0.0, 0.1], [0, 0], sigma=0.1), _normal_piece([0.0, 0.1], [0, 0])
    p2["mu"] = np.full((1, 2), 0.05)
    p2["sigma"] = np.array([0.2])
    dens = np.stack([card_log_density(p1), card_log_density(p2)])
    out = np.exp(mixture_log_density(dens, [0.3, 0.7]))
    np.testing.assert_allclose(out, 0.3 * np.exp(dens[0]) + 0.7 * np.exp(dens[1]))


# ---------------------------------------------------------------------------------------------
# the mixture's draws and answers (fake members, no MCMC)
# ---------------------------------------------------------------------------------------------


def test_draw_allocation_is_proportional_and_exact():
    counts = draw_allocation([0.2, 0.5, 0.3], 1000)
    assert counts.tolist() == [200, 500, 300]
    assert draw_allocation([1 / 3] * 3, 100).sum() == 100


def _shifted(params, dE):
    return {**params, "E": params["E"] + dE}


def _fake_ensemble(weights=(0.5, 0.5), *, dE=0.2, tau=0.0, validated=0.5):
    base = scattered(400, seed=1)
    fits = [make_fit(base, card="chinchilla"), make_fit(_shifted(base, dE), card="chinchilla-tied")]
    info = {"cards": ["chinchilla", "chinchilla-tied"],
            "weights": dict(zip(["chinchilla", "chinchilla-tied"], weights, strict=True)),
            "tau": tau, "validated_decades": validated, "splits": [], "card_forecast_lpd": {}}
    return assemble(fits, info), fits


def test_mixture_with_all_weight_on_one_member_is_that_member():
    ens, fits = _fake_ensemble((1.0, 0.0))
    a = bs.predict(ens, N=7e10, D=1.4e12, discrepancy=None)
    b = bs.predict(fits[0], N=7e10, D=1.4e12)
    for k in ("median", "ci", "pi"):
        np.testing.assert_allclose(a[k].to_numpy(), b[k].to_numpy(), rtol=1e-12)
    o1 = bs.optimal(ens, budgets=[1e22, 5.76e23])
    o2 = bs.optimal(fits[0], budgets=[1e22, 5.76e23])
    np.testing.assert_allclose(o1["N_opt"].to_numpy(), o2["N_opt"].to_numpy(), rtol=1e-12)


def test_mixture_spans_its_members():
    ens, fits = _fake_ensemble((0.5, 0.5), dE=0.3)
    q = {"N": 7e10, "D": 1.4e12}
    mix = bs.predict(ens, **q)
    lo = bs.predict(fits[0], **q)
    hi = bs.predict(fits[1], **q)
    # half the draws sit 0.3 nats higher: the 90% interval covers both members' medians
    assert mix["ci"][0, 0] <= lo["median"][0] and mix["ci"][0, 1] >= hi["median"][0]
    assert mix.attrs["card"] == "ensemble" and mix.attrs["law"] == "mixture"
    idx = member_draw_indices(ens)
    assert [i.size for _, i in idx] == [200, 200]


def test_discrepancy_and_validation_flags_follow_the_ensemble():
    ens, _ = _fake_ensemble(tau=0.05, validated=0.5)
    fitted_c = float(ens["constant_data"]["C"].max())
    near, far = fitted_c * 10**0.3, fitted_c * 10**3
    ds = bs.predict(ens, N=[1e10, 1e11], C=[near, far])
    assert ds.attrs["discrepancy_tau"] == 0.05
    assert ds.attrs["validated_decades"] == 0.5
    assert ds["validated"].to_numpy().tolist() == [True, False]
    plain = bs.predict(ens, N=[1e10, 1e11], C=[near, far], discrepancy=None)
    width = (ds["pi"][:, 1] - ds["pi"][:, 0]).to_numpy()
    width0 = (plain["pi"][:, 1] - plain["pi"][:, 0]).to_numpy()
    assert width[1] > 2 * width0[1]  # 3 decades out, tau*3 = 0.15 dominates 1% noise
    # a single card validated nothing
    single = bs.predict(members(ens)[0][2], N=1e11, C=far)
    assert single.attrs["validated_decades"] == 0.0 and not bool(single["validated"][0])


def test_ensemble_round_trips_through_netcdf(tmp_path):
    ens, _ = _fake_ensemble((0.3, 0.7), tau=0.01)
    path = bs.save(ens, tmp_path / "posterior.nc")
    back = bs.load(path)
    assert ensemble_info(back)["weights"] == {"chinchilla": 0.3, "chinchilla-tied": 0.7}
    assert validated_decades(back) == 0.5
    a = bs.predict(ens, N=7e10, D=1.4e12)["pi"].to_numpy()
    b = bs.predict(back, N=7e10, D=1.4e12)["pi"].to_numpy()
    np.testing.assert_allclose(a, b)
    table = bs.summarize(back)
    assert {"chinchilla.alpha", "chinchilla-tied.alpha"} <= set(table.index)


def test_assemble_rejects_bad_weights():
    base = scattered(50)
    fits = [make_fit(base)]
    with pytest.raises(InputError, match="weights"):
        assemble(fits, {"cards": ["chinchilla"], "weights": {"chinchilla": 0.0}, "tau": 0,
                        "validated_decades": 0})


# ---------------------------------------------------------------------------------------------
# end to end on a simulated sweep (small fits)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_ensemble(sim_runs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplerWarning)
        ens = bs.fit_ensemble(sim_runs, draws=600, tune=600, chains=2, split_draws=300,
                              split_tune=300, random_seed=3)
    return ens, [w for w in caught if issubclass(w.category, SamplerWarning)]


def test_fit_ensemble_end_to_end(sim_ensemble, sim_runs):
    ens, _ = sim_ensemble
    info = ensemble_info(ens)
    assert info["cards"] == list(bs.ensemble.DEFAULT_CARDS)
    w = np.array(list(info["weights"].values()))
    assert w.sum() == pytest.approx(1.0) and (w > 0).all()
    # 5 IsoFLOP budgets: the 0.1 and 0.2 fractions hold out the same top budget (one split).
    # At these short chains a split fit may not converge even after its refits: its split is
    # then left out of the weights, and the record says so
    conv = info["convergence"]
    assert len(info["splits"]) + len(conv["excluded_splits"]) == 2
    assert len(conv["excluded_split_fits"]) >= len(conv["excluded_splits"])
    assert info["validated_decades"] == pytest.approx(
        1.0 if 1 not in conv["excluded_splits"] else np.log10(1e19 / 3e18))
    assert info["tau"] >= 0
    # the simulated law is Chinchilla: the Chinchilla forms forecast at least as well
    lpd = info["card_forecast_lpd"]
    assert max(lpd["chinchilla"], lpd["chinchilla-tied"]) >= lpd["kaplan-linf"]
    from bayescale.answers.summary import fit_summary_json

    out = fit_summary_json(ens)
    assert out["card"] == "ensemble" and set(out["members"]) == set(info["cards"])
    json.dumps(out)


def test_too_few_runs_for_a_split_is_a_clear_error(sim_runs):
    with pytest.raises(InputError, match="too few for a rolling split"):
        bs.fit_ensemble(bs.load_runs(sim_runs).subset(np.arange(7)), draws=10, tune=10)


def test_report_of_an_ensemble_shows_weights_and_marks_unvalidated_rows(tmp_path):
    from bayescale.workflows.report import write_report

    ens, _ = _fake_ensemble((0.6, 0.4), tau=0.02, validated=0.5)
    c_max = float(ens["constant_data"]["C"].max())
    doc = write_report(ens, tmp_path, budgets=[1e22],
                       queries={"N": [1e9, 1e11], "C": [c_max, c_max * 1e3]})
    assert doc["card"]["name"] == "ensemble" and doc["ensemble"]["weights"]["chinchilla"] == 0.6
    assert [r["validated"] for r in doc["predictions"]] == [True, False]
    md = (tmp_path / "report.md").read_text()
    assert "Law ensemble: stacking weights" in md and "UNVALIDATED" in md
    assert "0.5 decades of compute" in md


# --- the data-constrained law joins the default ensemble where the runs repeat data -------------

_DC = {"E": 1.8691, "A": 520.82, "B": 1487.7, "alpha": 0.35266, "beta": 0.35266,
       "R_D_star": 15.388, "R_N_star": 5.3097}  # Muennighoff et al. (2023), datablations README


def _runs_with_unique_tokens(epochs):
    frame = bs.datasets.simulate(random_seed=0)
    frame["U"] = frame["D"] / np.resize(np.asarray(epochs, float), len(frame))
    return bs.load_runs(frame)


def test_default_cards_add_the_data_constrained_law_only_when_runs_repeat_data():
    from bayescale.ensemble import DEFAULT_CARDS, REPEAT_CARDS, default_cards

    assert default_cards(bs.load_runs(bs.datasets.simulate(random_seed=0))) == DEFAULT_CARDS
    assert default_cards(_runs_with_unique_tokens([1.0])) == DEFAULT_CARDS  # U = D: one epoch
    assert default_cards(_runs_with_unique_tokens([1.0, 1.0, 4.0])) == (
        DEFAULT_CARDS + REPEAT_CARDS)


def test_fit_ensemble_without_cards_fits_the_default_cards_of_the_runs(monkeypatch):
    from bayescale.engines import ensemble as build

    seen = []

    def stop(runs, *, card, **_):
        seen.append(card.name)
        raise RuntimeError("stop after the first member")

    monkeypatch.setattr(build, "fit_card", stop)
    with pytest.raises(RuntimeError):
        build.fit_ensemble(_runs_with_unique_tokens([1.0, 3.0]), executor="serial")
    monkeypatch.setattr(build, "default_cards", lambda runs: ("data-constrained",))
    with pytest.raises(RuntimeError):
        build.fit_ensemble(_runs_with_unique_tokens([1.0, 3.0]), executor="serial")
    assert seen == ["chinchilla", "data-constrained"]


def test_mixture_with_a_data_constrained_member_reads_unique_tokens():
    from bayescale.core.laws import data_constrained_log

    chin = {k: _DC[k] for k in ("E", "A", "B", "alpha", "beta")}
    fits = [make_fit(chin, card="chinchilla", sigma=1e-4),
            make_fit(_DC, card="data-constrained", sigma=1e-4)]
    info = {"cards": ["chinchilla", "data-constrained"], "tau": 0.0, "validated_decades": 1.0,
            "splits": [], "card_forecast_lpd": {}}
    q = {"N": 2.0e9, "D": 2.0e11}
    dc_only = assemble(fits, {**info, "weights": {"chinchilla": 0.0, "data-constrained": 1.0}})
    chin_only = assemble(fits, {**info, "weights": {"chinchilla": 1.0, "data-constrained": 0.0}})
    p = {k: v for k, v in _DC.items() if k not in ("A", "B")}
    for U in (2.0e11, 2.0e10):  # one epoch, then ten epochs of the same unique tokens
        exact = np.exp(data_constrained_log(q["N"], q["D"], U=U, log_A=np.log(_DC["A"]),
                                            log_B=np.log(_DC["B"]), **p))
        got = bs.predict(dc_only, **q, U=U, discrepancy=None)
        np.testing.assert_allclose(float(got["median"][0]), exact, rtol=1e-9)
    # ten epochs cost loss under the data-constrained law; the chinchilla member ignores U
    rep = float(bs.predict(dc_only, **q, U=2.0e10, discrepancy=None)["median"][0])
    one = float(bs.predict(dc_only, **q, discrepancy=None)["median"][0])
    assert rep > one
    a = float(bs.predict(chin_only, **q, U=2.0e10, discrepancy=None)["median"][0])
    b = float(bs.predict(chin_only, **q, discrepancy=None)["median"][0])
    assert a == b
    # the optimum of a mixture with a data-constrained member is defined (unique data to spare)
    opt = bs.optimal(dc_only, budgets=[1e22])
    assert np.isfinite(float(opt["N_opt"][0]))


def test_repetition_questions_of_an_ensemble_go_to_its_data_constrained_members():
    from bayescale.answers.repetition import best_epochs, repeat_loss, repetition_fit

    chin = {k: _DC[k] for k in ("E", "A", "B", "alpha", "beta")}
    fits = [make_fit(chin, card="chinchilla", sigma=1e-4),
            make_fit(_DC, card="data-constrained", sigma=1e-4)]
    info = {"cards": ["chinchilla", "data-constrained"], "tau": 0.0, "validated_decades": 1.0,
            "splits": [], "card_forecast_lpd": {},
            "weights": {"chinchilla": 0.6, "data-constrained": 0.4}}
    ens = assemble(fits, info)
    sub = repetition_fit(ens)
    assert ensemble_info(sub)["weights"] == {"data-constrained": 1.0}
    assert json.loads(sub.attrs["bayescale_repetition_weight"]) == pytest.approx(0.4)
    q = {"N": 1e9, "U": 1e10, "epochs": [1, 4, 16]}
    a, b = repeat_loss(ens, **q), repeat_loss(fits[1], **q)
    np.testing.assert_allclose(a["excess"].to_numpy(), b["excess"].to_numpy(), rtol=1e-12)
    assert float(a["excess"][2]) > float(a["excess"][1]) > 0  # repeating costs loss
    e1 = best_epochs(ens, U=1e10, C=1e21)
    e2 = best_epochs(fits[1], U=1e10, C=1e21)
    np.testing.assert_allclose(e1["epochs_opt"].to_numpy(), e2["epochs_opt"].to_numpy(),
                               rtol=1e-12)
    with pytest.raises(InputError, match="no member of the law ensemble models repeated data"):
        repetition_fit(_fake_ensemble()[0])
