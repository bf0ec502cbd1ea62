"""Accuracy laws: closed forms, noise, cards, the chance test (on the real downstream table),
model structure, recovery fits on simulated ladders, and two-step prediction with paired draws."""

import json

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from scipy import stats

import bayescale as bs
from bayescale.answers.accuracy import PAIRING, predict_accuracy
from bayescale.answers.prediction import loss_block
from bayescale.core import accuracy_noise as noise
from bayescale.core.accuracy_cards import AccuracyCard
from bayescale.core.accuracy_laws import (
    accuracy_direct,
    accuracy_direct_nd,
    accuracy_two_step,
    bounded_sigmoid,
    ceiling_from_headroom,
    get_accuracy_law,
)
from bayescale.core.cards import card_from_json, list_cards, load_card
from bayescale.core.datasets import read_table, task_info
from bayescale.engines.accuracy import accuracy_data, build_accuracy_model, fit_accuracy
from bayescale.errors import CardError, InputError
from bayescale.fits import law_params
from bayescale.scoring.chance import NO_SIGNAL, chance_signal

# --------------------------------------------------------------------------------------------
# simulated ladders

DIRECT_TRUTH = dict(ceiling=0.85, k=1.2, log10_C0=19.6, sigma=0.01)
TWO_STEP_TRUTH = dict(ceiling=0.9, k=3.0, x0=3.3, sigma=0.01)
ND_TRUTH = dict(ceiling=0.85, k_N=1.0, k_D=0.6, z0=14.0, sigma=0.01)
FLOOR, N_EX = 0.25, 2000


def simulate_direct(seed=0, n_runs=40):
    rng = np.random.default_rng(seed)
    C = np.geomspace(1e17, 1e21, n_runs)
    t = DIRECT_TRUTH
    p = accuracy_direct(C, floor=FLOOR, ceiling=t["ceiling"], k=t["k"], log10_C0=t["log10_C0"])
    acc = noise.draw(rng, p, t["sigma"], n_examples=N_EX)
    return pd.DataFrame({"C": C, "acc_sim": acc, "model": [f"r{i}" for i in range(n_runs)]})


def simulate_nd(seed=0):
    """An over-trained ladder: 6 sizes x 4 tokens-per-parameter ratios."""
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 1e9, 6), 4)
    D = N * np.tile([5.0, 20.0, 80.0, 320.0], 6)
    t = ND_TRUTH
    p = accuracy_direct_nd(N, D, floor=FLOOR, ceiling=t["ceiling"], k_N=t["k_N"], k_D=t["k_D"],
                           z0=t["z0"])
    acc = noise.draw(rng, p, t["sigma"], n_examples=N_EX)
    return pd.DataFrame({"N": N, "D": D, "acc_sim": acc})


def simulate_two_step(runs, seed=0):
    """The simulated IsoFLOP sweep (Chinchilla law), with an accuracy that is a sigmoid of its
    loss."""
    rng = np.random.default_rng(seed)
    runs = runs.copy()
    t = TWO_STEP_TRUTH
    p = accuracy_two_step(runs["loss"].to_numpy(), floor=FLOOR, ceiling=t["ceiling"], k=t["k"],
                          x0=t["x0"])
    runs["acc_sim"] = noise.draw(rng, p, t["sigma"], n_examples=N_EX)
    return runs


FIT = dict(draws=500, tune=500, chains=2, random_seed=3)


@pytest.fixture(scope="module")
def direct_fit():
    return fit_accuracy(simulate_direct(), metric="acc_sim", floor=FLOOR, n_examples=N_EX, **FIT)


@pytest.fixture(scope="module")
def two_step(sim_runs, sim_fit):
    """Step 1 is the session's loss fit (4 x 1000 draws); step 2 has as many draws."""
    runs = simulate_two_step(sim_runs)
    acc_fit = fit_accuracy(runs, metric="acc_sim", card="accuracy-two-step", via="loss",
                           floor=FLOOR, n_examples=N_EX, draws=1000, tune=500, chains=4,
                           random_seed=3)
    return runs, acc_fit, sim_fit


def _within(post, name, truth, k=4.0):
    draws = post[name].to_numpy().ravel()
    assert abs(draws.mean() - truth) < k * draws.std() + 1e-12, (name, draws.mean(), truth)


# --------------------------------------------------------------------------------------------
# closed forms


def test_bounded_sigmoid_midpoint_limits_and_monotone():
    F, c = 0.25, 0.9
    assert bounded_sigmoid(3.0, floor=F, ceiling=c, k=2.0, x0=3.0) == pytest.approx((F + c) / 2)
    assert bounded_sigmoid(1e3, floor=F, ceiling=c, k=2.0, x0=3.0) == pytest.approx(F)
    assert bounded_sigmoid(-1e3, floor=F, ceiling=c, k=2.0, x0=3.0) == pytest.approx(c)
    x = np.linspace(1.0, 6.0, 50)
    y = accuracy_two_step(x, floor=F, ceiling=c, k=2.0, x0=3.0)
    assert np.all(np.diff(y) < 0) and np.all((y > F) & (y < c))
    # sigma(k (x0 - x)) in closed form
    want = F + (c - F) / (1 + np.exp(-2.0 * (3.0 - x)))
    np.testing.assert_allclose(y, want, rtol=1e-13)


def test_direct_law_is_the_link_on_log10_compute():
    C = np.geomspace(1e15, 1e25, 30)
    y = accuracy_direct(C, floor=0.0, ceiling=0.8, k=1.5, log10_C0=20.0)
    np.testing.assert_allclose(y, 0.8 / (1 + np.exp(-1.5 * (np.log10(C) - 20.0))), rtol=1e-12)
    assert np.all(np.diff(y) > 0)
    law = get_accuracy_law("accuracy_direct")
    np.testing.assert_allclose(
        law.accuracy(np.log10(C), floor=0.0, ceiling=0.8, k=1.5, midpoint=20.0), y, rtol=1e-13
    )
    assert ceiling_from_headroom(0.25, 1.0) == 1.0 and ceiling_from_headroom(0.25, 0.0) == 0.25
    with pytest.raises(KeyError, match="valid accuracy laws: accuracy_two_step, accuracy_direct"):
        get_accuracy_law("sigmoid")


def test_nd_law_with_equal_slopes_is_the_compute_law():
    N, D = np.geomspace(1e7, 1e10, 7), np.geomspace(1e9, 1e13, 7)[::-1]
    nd = accuracy_direct_nd(N, D, floor=0.25, ceiling=0.9, k_N=0.8, k_D=0.8, z0=16.0)
    c = accuracy_direct(6 * N * D, floor=0.25, ceiling=0.9, k=0.8, log10_C0=16.0 / 0.8
                        + np.log10(6))
    np.testing.assert_allclose(nd, c, rtol=1e-12)
    law = get_accuracy_law("accuracy_direct_nd")
    assert law.slopes == ("k_N", "k_D") and law.input_names == ("x_N", "x_D")
    # the pivot: at the reference inputs the law is `level` of the way above chance
    h, ceiling, z0 = law.from_pivot(level=0.3, room=0.6, k=(1.0, 0.5), x_ref=(8.0, 10.0),
                                    floor=0.25)
    at_ref = law.accuracy((8.0, 10.0), floor=0.25, ceiling=ceiling, k=(1.0, 0.5), midpoint=z0)
    assert at_ref == pytest.approx(0.25 + 0.75 * 0.3, rel=1e-12)
    assert ceiling == pytest.approx(0.25 + 0.75 * (0.3 + 0.7 * 0.6))


def test_laws_agree_in_numpy_and_pytensor():
    x = np.array([2.0, 3.0, 4.5])
    xt = pt.as_tensor_variable(x)
    want = accuracy_two_step(x, floor=0.25, ceiling=0.95, k=3.0, x0=3.2)
    got = accuracy_two_step(xt, floor=0.25, ceiling=0.95, k=3.0, x0=3.2).eval()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    C = np.array([1e18, 1e21])
    got = accuracy_direct(pt.as_tensor_variable(C), floor=0.5, ceiling=0.9, k=1.0,
                          log10_C0=19.0).eval()
    np.testing.assert_allclose(got, accuracy_direct(C, floor=0.5, ceiling=0.9, k=1.0,
                                                    log10_C0=19.0), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# noise


def test_beta_binomial_tends_to_binomial_and_normalises():
    n, p = 50, 0.3
    y = np.arange(n + 1) / n
    tight = noise.logpdf(y, p, 1e-5, n_examples=n)
    np.testing.assert_allclose(tight, stats.binom.logpmf(np.arange(n + 1), n, p), atol=1e-3)
    loose = noise.logpdf(y, p, 0.1, n_examples=n)
    assert np.exp(loose).sum() == pytest.approx(1.0, abs=1e-10)


def test_variance_is_binomial_inflated_by_run_scatter():
    rng = np.random.default_rng(0)
    n, p, sigma = 400, 0.6, 0.05
    kappa = noise.concentration(sigma)
    y = noise.draw(rng, np.full(200_000, p), sigma, n_examples=n)
    want = p * (1 - p) / n * (n + kappa) / (1 + kappa)
    assert y.var() == pytest.approx(want, rel=0.02)
    assert want > noise.binomial_sd(p, n) ** 2
    assert y.mean() == pytest.approx(p, abs=1e-3)
    # the Beta limit without a number of examples
    z = noise.draw(rng, np.full(200_000, p), sigma)
    assert z.var() == pytest.approx(p * (1 - p) / (1 + kappa), rel=0.02)


def test_prob_at_least_is_exact_over_counts():
    n, p, sigma = 100, 0.55, 0.03
    got = noise.prob_at_least(0.6, p, sigma, n_examples=n)
    a, b = noise.shapes(p, sigma)
    assert got == pytest.approx(stats.betabinom.pmf(np.arange(60, 101), n, a, b).sum(), rel=1e-10)
    y = noise.draw(np.random.default_rng(1), np.full(100_000, p), sigma, n_examples=n)
    assert got == pytest.approx((y >= 0.6).mean(), abs=0.005)
    assert noise.prob_at_least(0.6, p, sigma) == pytest.approx(stats.beta.sf(0.6, a, b))


# --------------------------------------------------------------------------------------------
# cards


def test_accuracy_cards_load_roundtrip_and_override():
    assert {"accuracy-direct", "accuracy-direct-nd", "accuracy-two-step"} <= set(list_cards())
    for name, law in (("accuracy-direct", "accuracy_direct"),
                      ("accuracy-two-step", "accuracy_two_step"),
                      ("accuracy-direct-nd", "accuracy_direct_nd")):
        card = load_card(name)
        assert isinstance(card, AccuracyCard) and card.law == law and card.name == name
        slopes = ("k_N", "k_D") if law.endswith("nd") else ("k",)
        assert card.free_params == ("level", *slopes, "room")
        assert card.n_params == 3 + len(slopes)
        assert card.family == "BetaBinomial" and card_from_json(card.to_json()) == card
    card = load_card("accuracy-direct", priors={"room": "Beta(2, 2)"})
    assert str(card.priors["room"]) == "Beta(alpha=2, beta=2)"
    with pytest.raises(CardError, match="valid parameters: level, k, room, sigma"):
        load_card("accuracy-direct", priors={"E": "HalfNormal(1)"})
    with pytest.raises(CardError, match="room .* needs \\[0, 1\\]"):
        load_card("accuracy-direct", priors={"room": "Normal(0.5, 1)"})


@pytest.mark.parametrize(
    "text, match",
    [
        ('kind = "accuracy"\nlaw = "logistic"\n', "unknown accuracy law 'logistic'"),
        ('kind = "accuracy"\nlaw = "accuracy_direct"\n', "missing \\[priors\\]"),
        ('kind = "accuracy"\nlaw = "accuracy_direct"\n[priors]\nk = "LogNormal(0, 1)"\n',
         "lacks level, room"),
        ('kind = "accuracy"\nlaw = "accuracy_direct"\n[tie]\nk = "room"\n',
         "\\[tie\\] is not supported"),
        ('kind = "accuracy"\nlaw = "accuracy_direct"\n[priors]\nlevel = "Beta(1, 1)"\n'
         'k = "Normal(0, 1)"\nroom = "Beta(2, 1)"\n[likelihood]\nsigma = "HalfNormal(1)"\n',
         "prior of k .* needs \\[0, inf\\]"),
        ('kind = "accuracy"\nlaw = "accuracy_direct"\n[priors]\nlevel = "Beta(1, 1)"\n'
         'k = "LogNormal(0, 1)"\nroom = "Beta(2, 1)"\n[likelihood]\nfamily = "Normal"\n',
         "family 'Normal'"),
    ],
)
def test_bad_accuracy_cards_fail_clearly(tmp_path, text, match):
    path = tmp_path / "card.toml"
    path.write_text(text)
    with pytest.raises(CardError, match=match):
        load_card(path)


# --------------------------------------------------------------------------------------------
# the chance test


def test_chance_rule_in_closed_form():
    C = np.geomspace(1e17, 1e21, 20)
    # floor 1/2, where the binomial variance peaks: the sd is the floor's, sqrt(1/4 / n)
    sd = np.sqrt(0.25 / 1000)
    acc = np.full(20, 0.5)
    acc[-3:] = 0.5 + 3.0 * sd + 1e-3  # just past 3 binomial sd
    r = chance_signal(acc, C, floor=0.5, n_examples=1000)
    assert r.signal and r.n_top == 3 and r.noise_sd == pytest.approx(sd)
    assert r.z == pytest.approx(3.0 + 1e-3 / sd)
    acc[-3:] -= 2e-3  # just short of it
    r = chance_signal(acc, C, floor=0.5, n_examples=1000)
    assert not r.signal and r.message.startswith(NO_SIGNAL)
    # floor 0: the binomial sd at the observed accuracy, so one right answer of 32 is no signal
    r = chance_signal(np.r_[np.zeros(17), np.full(3, 1 / 32)], C, floor=0.0, n_examples=32)
    assert not r.signal and r.noise_sd == pytest.approx(np.sqrt((1 / 32) * (31 / 32) / 32))
    # without n: an absolute margin
    assert chance_signal(np.linspace(0.3, 0.5, 20), C, floor=0.25, n_examples=None).signal
    assert not chance_signal(np.full(20, 0.28), C, floor=0.25, n_examples=None).signal
    # the largest runs by compute, whatever the row order
    order = np.random.default_rng(0).permutation(20)
    acc = np.linspace(0.25, 0.6, 20)
    assert chance_signal(acc[order], C[order], floor=0.25, n_examples=500).top_accuracy == (
        pytest.approx(np.median(acc[-3:]))
    )
    with pytest.raises(InputError, match="in \\[0, 1\\]"):
        chance_signal([1.5], [1e18], floor=0.25, n_examples=10)
    with pytest.raises(InputError, match="one compute per accuracy"):
        chance_signal([0.5, 0.5], [1e18], floor=0.25, n_examples=10)


@pytest.mark.parametrize(
    "task, signal",
    [("hellaswag", True), ("arc_easy", True), ("piqa", True), ("lambada_openai", True),
     ("bigbench_logical_deduction", False), ("bigbench_language_identification", False),
     ("mmlu", False), ("math_qa", False), ("simple_arithmetic_nospaces", False)],
)
def test_chance_test_on_the_real_ladder(task, signal):
    frame = read_table("overtraining_downstream")
    info = task_info(task)
    r = chance_signal(frame[f"acc_{task}"], frame["C_6ND"], floor=info.random_baseline,
                      n_examples=info.n_examples)
    assert r.signal is signal, r.message
    assert r.n_top == 11  # 10% of 104 runs


# --------------------------------------------------------------------------------------------
# data and model structure


def test_accuracy_data_reads_task_floor_and_size():
    frame = read_table("overtraining_downstream")
    data = accuracy_data(frame, metric="acc_hellaswag", via="loss_c4_val")
    assert (data.floor, data.n_examples, data.task) == (0.25, 10042, "hellaswag")
    np.testing.assert_allclose(data.C, frame["C_6ND"])
    assert data.run[0] == frame["model"].iloc[0]
    own = accuracy_data(frame, metric="acc_hellaswag", floor=0.2, n_examples=None)
    assert own.floor == 0.2 and own.n_examples is None and own.task is None
    no_c = frame.drop(columns=["C_6ND"])
    np.testing.assert_allclose(accuracy_data(no_c, metric="acc_piqa").C,
                               6.0 * frame["N"] * frame["D"].astype(float))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(metric="acc_nope"), "metric column 'acc_nope' is not in the runs table"),
        (dict(metric="acc_jeopardy", n_examples=None), "exactly 0 or 1 need the number"),
        (dict(metric="acc_hellaswag", floor=25), "floor must be in \\[0, 1\\)"),
        (dict(metric="acc_hellaswag", via="loss_nope"), "via loss column 'loss_nope'"),
        (dict(metric="acc_hellaswag", n_examples=0), "positive integer"),
    ],
)
def test_accuracy_data_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        accuracy_data(read_table("overtraining_downstream"), **kwargs)


def test_task_not_in_table_needs_floor_and_size():
    frame = simulate_direct()
    with pytest.raises(InputError, match="no evaluation task 'acc_sim'.*pass the floor"):
        accuracy_data(frame, metric="acc_sim")
    with pytest.raises(InputError, match="percentages"):
        accuracy_data(frame.assign(acc_sim=frame["acc_sim"] * 100), metric="acc_sim", floor=0.25,
                      n_examples=N_EX)
    with pytest.raises(InputError, match="whole runs table"):
        accuracy_data(bs.load_runs(bs.datasets.simulate()), metric="loss", floor=0.0,
                      n_examples=None)


def test_model_likelihood_matches_numpy_noise():
    frame = simulate_direct()
    data = accuracy_data(frame, metric="acc_sim", floor=FLOOR, n_examples=N_EX)
    card = load_card("accuracy-direct")
    model = build_accuracy_model(card, data)
    assert {v.name for v in model.free_RVs} == {"level", "k", "room", "sigma"}
    assert {"headroom", "ceiling", "log10_C0"} <= {v.name for v in model.deterministics}
    point = {"level_logodds__": -0.5, "k_log__": 0.2, "room_logodds__": 1.0,
             "sigma_log__": np.log(0.02)}
    logp = model.compile_logp(vars=[model["correct"]], sum=False)(point)[0]
    level, room, k = 1 / (1 + np.exp(0.5)), 1 / (1 + np.exp(-1.0)), np.exp(0.2)
    head = level + (1 - level) * room
    ref = np.log10(frame["C"]).mean()
    c0 = ref - np.log(level / (head - level)) / k
    p = accuracy_direct(frame["C"].to_numpy(), floor=FLOOR, ceiling=FLOOR + (1 - FLOOR) * head,
                        k=k, log10_C0=c0)
    # the pivot: at the runs' mean log10 C the law is `level` of the way above chance
    at_ref = accuracy_direct(10**ref, floor=FLOOR, ceiling=FLOOR + (1 - FLOOR) * head, k=k,
                             log10_C0=c0)
    assert at_ref == pytest.approx(FLOOR + (1 - FLOOR) * level, rel=1e-12)
    np.testing.assert_allclose(logp, noise.logpdf(frame["acc_sim"], p, 0.02, n_examples=N_EX),
                               rtol=1e-8)
    # without a number of examples: the Beta density of the accuracy itself
    data = accuracy_data(frame, metric="acc_sim", floor=FLOOR, n_examples=None)
    model = build_accuracy_model(card, data)
    logp = model.compile_logp(vars=[model["accuracy"]], sum=False)(point)[0]
    np.testing.assert_allclose(logp, noise.logpdf(frame["acc_sim"], p, 0.02), rtol=1e-8)


def test_wrong_input_for_the_law(sim_runs):
    frame = simulate_two_step(sim_runs)
    with pytest.raises(InputError, match="pass via=LOSS_COLUMN"):
        fit_accuracy(frame, metric="acc_sim", card="accuracy-two-step", floor=FLOOR,
                     n_examples=N_EX)
    with pytest.raises(InputError, match="reads compute, not a loss"):
        fit_accuracy(frame, metric="acc_sim", via="loss", floor=FLOOR, n_examples=N_EX)
    with pytest.raises(InputError, match="is a loss card"):
        fit_accuracy(frame, metric="acc_sim", card="chinchilla", floor=FLOOR, n_examples=N_EX)
    with pytest.raises(InputError, match="accuracy=\\{'metric': COLUMN\\}"):
        bs.fit(frame, card="accuracy-direct")
    with pytest.raises(InputError, match="accuracy= takes its metric inside"):
        bs.fit(frame, accuracy={"metric": "acc_sim"}, metric="acc_sim")


# --------------------------------------------------------------------------------------------
# fits: recovery and prediction


def test_direct_fit_recovers_the_law(direct_fit):
    post = direct_fit["posterior"]
    for name, truth in DIRECT_TRUTH.items():
        _within(post, name, truth)
    info = json.loads(direct_fit.attrs["bayescale_accuracy"])
    assert info["floor"] == FLOOR and info["n_examples"] == N_EX and info["chance"]["signal"]
    assert direct_fit["log_likelihood"]["accuracy"].shape == (2, 500, 40)
    assert json.loads(direct_fit.attrs["bayescale_diagnostics"])["ok"]


def test_direct_prediction_intervals_and_probability(direct_fit):
    C = np.array([1e19, 1e20, 1e22])
    ds = predict_accuracy(direct_fit, C=C, target=0.7, random_seed=1)
    t = DIRECT_TRUTH
    truth = accuracy_direct(C, floor=FLOOR, ceiling=t["ceiling"], k=t["k"],
                            log10_C0=t["log10_C0"])
    ci, pi = ds["ci"].to_numpy(), ds["pi"].to_numpy()
    assert np.all((ci[:, 0] <= truth) & (truth <= ci[:, 1]))
    assert np.all(pi[:, 0] <= ci[:, 0]) and np.all(pi[:, 1] >= ci[:, 1])
    assert np.all((pi >= 0) & (pi <= 1))
    np.testing.assert_allclose(ds["extrapolation_C"], [0.0, 0.0, 1.0])
    # P(acc >= x) by hand from the posterior draws
    post = direct_fit["posterior"]
    flat = {k: post[k].to_numpy().ravel() for k in ("ceiling", "k", "log10_C0", "sigma")}
    p = accuracy_direct(1e20, floor=FLOOR, ceiling=flat["ceiling"], k=flat["k"],
                        log10_C0=flat["log10_C0"])
    want = noise.prob_at_least(0.7, p, flat["sigma"], n_examples=N_EX).mean()
    assert float(ds["p_at_least_target"][1]) == pytest.approx(want, rel=1e-12)
    assert float(ds["p_law_at_least_target"][1]) == pytest.approx((p >= 0.7).mean())
    # N and D give C = 6ND
    nd = predict_accuracy(direct_fit, N=1e9, D=1e20 / 6e9, random_seed=1)
    assert float(nd["median"][0]) == pytest.approx(float(ds["median"][1]), rel=1e-12)
    # another benchmark size, or none (the Beta limit: run scatter only)
    beta = predict_accuracy(direct_fit, C=1e20, target=0.7, n_examples=None)
    want = noise.prob_at_least(0.7, p, flat["sigma"]).mean()
    assert float(beta["p_at_least_target"][0]) == pytest.approx(want, rel=1e-12)
    assert beta.attrs["n_examples"] == -1
    with pytest.raises(InputError, match="target must be an accuracy"):
        predict_accuracy(direct_fit, C=1e20, target=60)
    with pytest.raises(InputError, match="loss_fit and loss are for two-step"):
        predict_accuracy(direct_fit, C=1e20, loss=3.0)
    with pytest.raises(InputError, match="use bayescale.predict_accuracy"):
        bs.predict(direct_fit, C=1e20, N=1e9)


def test_no_signal_is_flagged_not_extrapolated(direct_fit):
    tree = direct_fit.copy()
    info = json.loads(tree.attrs["bayescale_accuracy"])
    info["chance"]["signal"] = False
    tree.attrs = {**tree.attrs, "bayescale_accuracy": json.dumps(info)}
    ds = predict_accuracy(tree, C=[1e20, 1e22], target=0.5)
    assert ds.attrs["flag"] == NO_SIGNAL == "no signal above chance: not extrapolated"
    for var in ("median", "mean", "ci", "pi", "p_at_least_target"):
        assert np.isnan(ds[var].to_numpy()).all()
    assert not ds["signal"].to_numpy().any()


def test_fit_path_through_bs_fit_matches(direct_fit):
    frame = simulate_direct()
    tree = bs.fit(frame, card="accuracy-direct",
                  accuracy={"metric": "acc_sim", "floor": FLOOR, "n_examples": N_EX}, **FIT)
    for v in ("level", "k", "room", "sigma"):
        np.testing.assert_array_equal(tree["posterior"][v], direct_fit["posterior"][v])


def test_nd_fit_recovers_slopes_and_predicts(tmp_path):
    fit = fit_accuracy(simulate_nd(), metric="acc_sim", card="accuracy-direct-nd", floor=FLOOR,
                       n_examples=N_EX, draws=1000, tune=1000, chains=2, random_seed=3)
    post = fit["posterior"]
    for name, truth in ND_TRUTH.items():
        _within(post, name, truth)
    assert {"x_N", "x_D"} <= set(fit["constant_data"].data_vars)
    N, D = np.array([3e9, 3e9]), np.array([6e10, 6e11])
    ds = predict_accuracy(fit, N=N, D=D, target=0.8)
    t = ND_TRUTH
    truth = accuracy_direct_nd(N, D, floor=FLOOR, ceiling=t["ceiling"], k_N=t["k_N"],
                               k_D=t["k_D"], z0=t["z0"])
    ci = ds["ci"].to_numpy()
    assert np.all((ci[:, 0] <= truth) & (truth <= ci[:, 1]))
    assert float(ds["median"][1]) > float(ds["median"][0])  # more tokens, same size
    flat = {k: post[k].to_numpy().ravel() for k in ("ceiling", "k_N", "k_D", "z0")}
    acc = accuracy_direct_nd(N[:, None], D[:, None], floor=FLOOR, ceiling=flat["ceiling"],
                             k_N=flat["k_N"], k_D=flat["k_D"], z0=flat["z0"])
    np.testing.assert_allclose(ds["median"], np.median(acc, axis=1), rtol=1e-12)
    with pytest.raises(InputError, match="give N and D"):
        predict_accuracy(fit, C=1e21)
    with pytest.raises(InputError, match="columns N and D"):
        fit_accuracy(simulate_direct(), metric="acc_sim", card="accuracy-direct-nd",
                     floor=FLOOR, n_examples=N_EX)


def test_two_step_recovers_the_link(two_step):
    _, acc_fit, _ = two_step
    for name, truth in TWO_STEP_TRUTH.items():
        _within(acc_fit["posterior"], name, truth)


def test_two_step_pairs_draws_and_carries_step_one(two_step):
    runs, acc_fit, loss_fit = two_step
    N, D = np.array([3e9, 1e10]), np.array([6e10, 2e11])  # beyond the sweep's largest budget
    ds = predict_accuracy(acc_fit, loss_fit=loss_fit, N=N, D=D, target=0.8, random_seed=2)
    assert ds.attrs["pairing"] == PAIRING and ds.attrs["n_draws"] == 4000
    # the credible accuracy is the link of draw s at step 1's law loss of draw s
    law, params, _ = law_params(loss_fit)
    L = loss_block(law, params, N, D)
    post = acc_fit["posterior"]
    flat = {k: post[k].to_numpy().ravel() for k in ("ceiling", "k", "x0")}
    acc = accuracy_two_step(L, floor=FLOOR, ceiling=flat["ceiling"], k=flat["k"], x0=flat["x0"])
    np.testing.assert_allclose(ds["median"], np.median(acc, axis=1), rtol=1e-12)
    np.testing.assert_allclose(ds["via_loss"], np.median(L, axis=1), rtol=1e-12)
    # truth inside the credible interval
    t = TWO_STEP_TRUTH
    true_loss = bs.laws.chinchilla(N, D, **bs.datasets.DEFAULT_PARAMS["chinchilla"])
    truth = accuracy_two_step(true_loss, floor=FLOOR, ceiling=t["ceiling"], k=t["k"], x0=t["x0"])
    ci = ds["ci"].to_numpy()
    assert np.all((ci[:, 0] <= truth) & (truth <= ci[:, 1]))
    # with step 2 held at one point, the accuracy interval is the link of step 1's loss interval
    # (decreasing link: the upper loss gives the lower accuracy); plugging in the median loss
    # instead gives a zero-width interval: step 1's uncertainty would be dropped
    fixed = acc_fit.copy()
    post = fixed["posterior"].to_dataset()
    fixed["posterior"] = post.map(lambda v: v * 0 + float(v.median()))
    one = predict_accuracy(fixed, loss_fit=loss_fit, N=N, D=D, random_seed=2)
    mid = {k: float(post[k].median()) for k in ("ceiling", "k", "x0")}
    lo_hi = accuracy_two_step(one["via_loss_ci"].to_numpy()[:, ::-1], floor=FLOOR,
                              ceiling=mid["ceiling"], k=mid["k"], x0=mid["x0"])
    np.testing.assert_allclose(one["ci"], lo_hi, rtol=1e-4)
    assert np.all(np.diff(one["ci"].to_numpy(), axis=1) > 1e-3)
    plug = predict_accuracy(fixed, loss=one["via_loss"].to_numpy(), random_seed=2)
    np.testing.assert_allclose(np.diff(plug["ci"].to_numpy(), axis=1), 0.0, atol=1e-12)
    assert "pairing" not in plug.attrs


def test_two_step_subsamples_to_the_smaller_fit(two_step):
    runs, acc_fit, loss_fit = two_step
    small = loss_fit.copy()
    small["posterior"] = small["posterior"].to_dataset().isel(draw=slice(0, 200))
    ds = predict_accuracy(acc_fit, loss_fit=small, N=1e9, D=2e10, random_seed=0)
    assert ds.attrs["n_draws"] == 800
    with pytest.raises(InputError, match="loss_fit= .* or loss="):
        predict_accuracy(acc_fit, N=1e9, D=2e10)
    with pytest.raises(InputError, match="not both"):
        predict_accuracy(acc_fit, loss_fit=loss_fit, loss=3.0, N=1e9, D=2e10)
    other = loss_fit.copy()
    prov = json.loads(other.attrs["bayescale_runs"])
    prov["mapping"] = {**(prov.get("mapping") or {}), "loss": "loss_other"}
    other.attrs = {**other.attrs, "bayescale_runs": json.dumps(prov)}
    with pytest.raises(InputError, match="fitted to 'loss_other'.*links accuracy to 'loss'"):
        predict_accuracy(acc_fit, loss_fit=other, N=1e9, D=2e10)


def test_accuracy_fit_saves_and_loads(direct_fit, tmp_path):
    path = bs.save(direct_fit, tmp_path / "posterior.nc")
    back = bs.load(path)
    a = predict_accuracy(direct_fit, C=[1e20, 1e21], target=0.7)
    b = predict_accuracy(back, C=[1e20, 1e21], target=0.7)
    for var in ("median", "ci", "pi", "p_at_least_target"):
        np.testing.assert_array_equal(a[var], b[var])
    assert back["constant_data"]["run_id"].to_numpy()[0] == "r0"
