"""Stacked accuracy laws: the latent discrepancy's density against quadrature and its estimate
on simulated forecasts, forecast scores, the point-fit baselines, the stacked fit end to end on a
simulated ladder (record, answers, the chance flag), and the accuracy backtest (API and CLI)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import special
from typer.testing import CliRunner

import bayescale as bs
from bayescale.answers.accuracy import predict_accuracy
from bayescale.cli import app
from bayescale.core import accuracy_noise as noise
from bayescale.core.accuracy_laws import accuracy_two_step
from bayescale.engines.accuracy_ensemble import accuracy_cards, fit_accuracy_ensemble
from bayescale.engines.accuracy_pointfit import direct_point, fit_sigmoid, sigmoid_at
from bayescale.fits import read
from bayescale.scoring.accuracy_forecast import (
    TAU_MAX_LATENT,
    discrepancy_sigma,
    piece_log_density,
    score_accuracy_forecast,
)
from bayescale.scoring.chance import NO_SIGNAL
from bayescale.scoring.stacking import fit_tau
from bayescale.workflows.accuracy_backtest import backtest_accuracy

FLOOR, N_EX = 0.25, 2000


def _piece(y, z, *, ceiling=0.9, sigma=1e-4, n=N_EX, delta=1.0):
    y = np.atleast_1d(np.asarray(y, dtype=float))
    z = np.asarray(z, dtype=float).reshape(-1, y.size)
    s = z.shape[0]
    return {"y": y, "z": z, "floor": FLOOR, "ceiling": np.full(s, ceiling),
            "sigma": np.full(s, sigma), "n_examples": n, "delta": np.full(y.size, delta)}


# --------------------------------------------------------------------------------------------
# the latent discrepancy: closed forms and recovery


@pytest.mark.parametrize("z, tau, delta", [(0.3, 0.0, 1.0), (0.3, 0.8, 1.0), (-1.2, 1.5, 2.0)])
def test_discrepancy_keeps_the_mean_and_adds_the_slope_variance(z, tau, delta):
    """One example (n = 1): P(correct) is the law's accuracy whatever tau; many examples: the
    Beta-binomial variance of the widened scatter (Beta part about (g tau delta)^2 larger, g the
    link's slope)."""
    p_law = FLOOR + 0.65 * special.expit(z)
    one = np.exp(piece_log_density(_piece(1.0, [z], n=1, sigma=0.05, delta=delta), tau))[0]
    assert one == pytest.approx(p_law, abs=1e-12)
    n, sigma = 400, 0.02
    counts = np.arange(n + 1)
    probs = np.exp([piece_log_density(_piece(k / n, [z], n=n, sigma=sigma, delta=delta), tau)[0]
                    for k in counts])
    assert probs.sum() == pytest.approx(1.0, abs=1e-9)
    acc = counts / n
    var = probs @ (acc - probs @ acc) ** 2
    g = 0.65 * special.expit(z) * (1 - special.expit(z))
    # sigma_eff^2 = sigma^2 + (g tau delta)^2 / (4 p q), concentration 1 / (4 sigma_eff^2)
    kappa = 0.25 / (sigma**2 + (g * tau * delta) ** 2 / (4 * p_law * (1 - p_law)))
    expect = p_law * (1 - p_law) / n * (1 + (n - 1) / (kappa + 1))
    assert var == pytest.approx(expect, rel=1e-6)


def test_discrepancy_vanishes_at_floor_and_ceiling():
    _, s = discrepancy_sigma(np.array([-40.0, 0.0, 40.0]), floor=FLOOR, ceiling=0.9, sigma=0.01,
                             tau=2.0, delta=2.0)
    assert s[0] == pytest.approx(0.01) and s[2] == pytest.approx(0.01) and s[1] > 0.1


def test_latent_density_without_distance_ignores_tau():
    p = _piece([0.5], [[0.1]], delta=0.0)
    assert piece_log_density(p, 2.0) == pytest.approx(piece_log_density(p, 0.0))


def test_tau_recovered_from_simulated_forecasts():
    """Forecasts whose truth scatters by the discrepancy of tau = 0.8: the estimator finds it
    within 0.06 (about 3 standard errors at Q = 1500 runs, exact law draws)."""
    rng = np.random.default_rng(0)
    q, tau_true = 1500, 0.8
    z0 = rng.uniform(-2, 2, q)
    delta = rng.uniform(0.5, 2.0, q)
    p, s = discrepancy_sigma(z0, floor=FLOOR, ceiling=0.9, sigma=1e-4, tau=tau_true, delta=delta)
    y = noise.draw(rng, p, s, n_examples=N_EX)
    piece = {"y": y, "z": z0[None, :], "floor": FLOOR, "ceiling": np.full(1, 0.9),
             "sigma": np.full(1, 1e-4), "n_examples": N_EX, "delta": delta}
    tau, info = fit_tau([[piece]], [1.0], density=piece_log_density, tau_max=TAU_MAX_LATENT)
    assert abs(tau - tau_true) < 0.06, tau
    assert info["lpd_with"] > info["lpd_without"]


def test_forecast_scores_are_calibrated_for_draws_from_the_truth():
    """y drawn from the predictive itself: coverage near nominal, mid-PIT mean near 1/2."""
    rng = np.random.default_rng(1)
    s, q = 800, 2000
    draws = rng.beta(20, 30, size=(s, q))
    y = rng.beta(20, 30, size=q)
    out = score_accuracy_forecast(y, draws)
    for p in (0.5, 0.8, 0.9, 0.95):
        se = np.sqrt(p * (1 - p) / q)
        assert abs(out[f"covered_{p:g}"].mean() - p) < 4 * se + 2e-3
    assert abs(out["pit"].mean() - 0.5) < 4 * np.sqrt(1 / 12 / q)


def test_sigmoid_point_fit_decreasing_in_loss():
    loss = np.linspace(2.5, 4.5, 30)
    acc = accuracy_two_step(loss, floor=FLOOR, ceiling=0.9, k=3.0, x0=3.3)
    fit = fit_sigmoid(loss, acc, floor=FLOOR, increasing=False)
    assert fit["ceiling"] == pytest.approx(0.9, abs=1e-3)
    assert fit["midpoint"] == pytest.approx(3.3, abs=1e-3)
    assert sigmoid_at(fit, [3.3])[0] == pytest.approx((FLOOR + 0.9) / 2, abs=1e-4)
    C = np.geomspace(1e17, 1e21, 20)
    y = FLOOR + 0.6 * special.expit(1.2 * (np.log10(C) - 19.6))
    assert direct_point(C[:15], y[:15], C[15:], floor=FLOOR) == pytest.approx(y[15:], abs=1e-3)


# --------------------------------------------------------------------------------------------
# the stacked fit on a simulated ladder

SMALL = dict(draws=300, tune=400, chains=2, split_draws=300, split_tune=400, random_seed=2,
             executor="serial")


def _ladder(sim_runs, seed=0):
    """The simulated IsoFLOP sweep with an accuracy that is a sigmoid of its loss."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(sim_runs)[["N", "D", "C", "loss"]].copy()
    p = accuracy_two_step(frame["loss"].to_numpy(), floor=FLOOR, ceiling=0.9, k=3.0, x0=3.3)
    frame["acc_sim"] = noise.draw(rng, p, 0.01, n_examples=N_EX)
    frame["acc_flat"] = noise.draw(rng, np.full(len(frame), FLOOR), 1e-4, n_examples=N_EX)
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def stacked(sim_runs):
    frame = _ladder(sim_runs)
    fit = fit_accuracy_ensemble(frame, metric="acc_sim", floor=FLOOR, n_examples=N_EX,
                                cards=("accuracy-direct", "accuracy-two-step"),
                                holdout_fracs=(0.2, 0.4), **SMALL)
    return frame, fit


def test_accuracy_cards_follow_the_table():
    frame = pd.DataFrame({"C": [1.0], "acc": [0.5]})
    assert accuracy_cards(frame, via=None) == ("accuracy-direct",)
    nd = pd.DataFrame({"N": [1.0], "D": [1.0], "acc": [0.5]})
    assert accuracy_cards(nd, via="loss") == ("accuracy-direct", "accuracy-direct-nd",
                                              "accuracy-two-step")


def test_stacked_fit_record(stacked):
    frame, fit = stacked
    view = read(fit)
    assert view.is_accuracy and view.is_accuracy_ensemble
    info = view.accuracy_ensemble_info
    assert info["cards"] == ["accuracy-direct", "accuracy-two-step"]
    assert sum(info["weights"].values()) == pytest.approx(1.0)
    assert 0.0 <= info["tau"] <= TAU_MAX_LATENT
    assert len(info["splits"]) == 2 and info["via"] == "loss"
    assert info["validated_decades"] == pytest.approx(max(s["max_delta_decades"]
                                                          for s in info["splits"]))
    assert view.step_one is not None  # the two-step member's loss fit, stored
    assert [m.name for m in view.accuracy_members] == info["cards"]


def test_stacked_fit_predicts_the_truth(stacked):
    """At the ladder's largest run, the 90% credible interval holds the true law accuracy and
    the predictive interval is wider; the two-step member reads the stored step 1."""
    frame, fit = stacked
    big = frame.loc[frame["C"].idxmax()]
    ds = predict_accuracy(fit, N=big["N"], D=big["D"], target=0.5)
    truth = accuracy_two_step(big["loss"], floor=FLOOR, ceiling=0.9, k=3.0, x0=3.3)
    lo, hi = ds["ci"].values[0]
    plo, phi = ds["pi"].values[0]
    assert lo <= truth <= hi or abs(ds["median"].values[0] - truth) < 0.02
    assert plo <= lo and phi >= hi and FLOOR <= plo and phi <= 1
    assert ds.attrs["card"] == "accuracy-ensemble"
    assert json.loads(ds.attrs["weights"]).keys() == {"accuracy-direct", "accuracy-two-step"}
    assert 0 <= ds["p_at_least_target"].values[0] <= 1
    far = predict_accuracy(fit, N=big["N"] * 30, D=big["D"] * 30)
    assert "beyond the validated distance" in far.attrs["warning"]


def test_no_signal_task_is_one_direct_law_and_flagged(sim_runs):
    frame = _ladder(sim_runs)
    fit = fit_accuracy_ensemble(frame, metric="acc_flat", floor=FLOOR, n_examples=N_EX, **SMALL)
    info = read(fit).accuracy_ensemble_info
    assert info["cards"] == ["accuracy-direct"] and info["splits"] == []
    assert NO_SIGNAL in info["notes"][0]
    ds = predict_accuracy(fit, C=1e22)
    assert ds.attrs["flag"] == NO_SIGNAL and np.isnan(ds["median"].values).all()


def test_bs_fit_accuracy_without_card_is_the_stacked_fit(sim_runs, monkeypatch):
    seen = {}

    def fake(runs, **kwargs):
        seen.update(kwargs)
        return "stacked"

    monkeypatch.setattr("bayescale.workflows.fit.fit_accuracy_ensemble", fake)
    out = bs.fit(_ladder(sim_runs), accuracy={"metric": "acc_sim", "floor": FLOOR}, draws=10)
    assert out == "stacked" and seen["metric"] == "acc_sim" and seen["draws"] == 10


# --------------------------------------------------------------------------------------------
# the accuracy backtest


def test_backtest_accuracy_scores_and_flags(sim_runs):
    frame = _ladder(sim_runs)
    frame["corpus"] = np.where(np.arange(len(frame)) % 2 == 0, "a", "b")
    result = backtest_accuracy(frame, metrics="acc_*", floor=FLOOR, n_examples=N_EX,
                               group_by="corpus", card="accuracy-two-step", via="loss",
                               draws=300, tune=400, chains=2, random_seed=0, executor="serial")
    f = result.forecasts.set_index(["metric", "group"])
    assert not f.loc[("acc_flat", "a"), "signal"] and f.loc[("acc_flat", "a"), "flag"] == NO_SIGNAL
    assert f.loc[("acc_sim", "a"), "signal"]
    t = result.table
    assert set(t["metric"]) == {"acc_sim"}  # no forecast of a flagged task
    assert (t["lo_0.9"] <= t["median"]).all() and (t["median"] <= t["hi_0.9"]).all()
    assert t["pit"].between(0, 1).all() and np.isfinite(t["lpd"]).all()
    assert t["plug_in"].notna().all() and t["direct_point"].notna().all()
    pooled = result.to_dict()["pooled"]
    assert pooled["n"] == len(t) and set(pooled["coverage"]) == {"0.5", "0.8", "0.9", "0.95"}
    assert result.to_dict()["flagged"] == ["acc_flat"]


def test_cli_backtest_accuracy(sim_runs, tmp_path):
    runner = CliRunner()
    path = tmp_path / "ladder.csv"
    _ladder(sim_runs).to_csv(path, index=False)
    res = runner.invoke(app, ["backtest", str(path), "--metric", "acc_*", "--floor", "0.25",
                              "--n-examples", str(N_EX), "--law", "accuracy-direct",
                              "--draws", "200", "--tune", "300", "--chains", "2",
                              "--out", str(tmp_path / "bt"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["flagged"] == ["acc_flat"] and data["pooled"]["n"] > 0
    assert {"backtest.json", "backtest.csv", "forecasts.csv"} <= {
        p.name for p in (tmp_path / "bt").iterdir()}
    bad = runner.invoke(app, ["backtest", str(path), "--metric", "acc_sim", "--floor", "0.25",
                              "--max-loss", "3", "--out", str(tmp_path / "b2")])
    assert bad.exit_code != 0 and "--max-loss" in bad.output


def test_compute_for_accuracy_is_consistent(stacked):
    """A higher required probability needs at least as much compute; the law's crossing
    interval holds its median; a target the ladder reached is said so."""
    frame, fit = stacked
    top = float(frame["acc_sim"].max())
    target = min(top + 0.02, 0.88)
    half = bs.compute_for_accuracy(fit, target=target, prob=0.5)
    sure = bs.compute_for_accuracy(fit, target=target, prob=0.9)
    assert half["C"] is not None and (sure["C"] is None or sure["C"] >= half["C"])
    law = half["law"]
    assert law["median"] is not None and law["lo"] <= law["median"]
    assert law["hi"] is None or law["median"] <= law["hi"]
    assert half["N"] * half["D"] * 6 == pytest.approx(half["C"])
    assert half["D"] / half["N"] == pytest.approx(20.0)
    assert bs.compute_for_accuracy(fit, target=0.3)["already_reached"]
    with pytest.raises(bs.errors.InputError, match="target"):
        bs.compute_for_accuracy(fit, target=1.5)


def test_backtest_accuracy_records_a_bad_metric_and_goes_on(sim_runs):
    frame = _ladder(sim_runs)
    frame["acc_bad"] = frame["acc_sim"] * 100  # percentages
    result = backtest_accuracy(frame, metrics=["acc_sim", "acc_bad"], floor=FLOOR,
                               n_examples=N_EX, card="accuracy-direct", draws=200, tune=300,
                               chains=2, executor="serial")
    assert [e["metric"] for e in result.errors] == ["acc_bad"]
    assert "divide by 100" in result.errors[0]["error"]
    assert set(result.table["metric"]) == {"acc_sim"}
    with pytest.raises(bs.errors.InputError, match="divide by 100"):
        backtest_accuracy(frame, metrics="acc_bad", floor=FLOOR, n_examples=N_EX)


def test_cli_fit_and_predict_accuracy(sim_runs, tmp_path):
    runner = CliRunner()
    path = tmp_path / "ladder.csv"
    _ladder(sim_runs).to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--metric", "acc_sim", "--floor", "0.25",
                              "--n-examples", str(N_EX), "--law", "accuracy-direct",
                              "--draws", "300", "--tune", "400", "--chains", "2",
                              "--out", str(tmp_path / "fit")])
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    assert record["cards"] == ["accuracy-direct"] and record["floor"] == 0.25
    res = runner.invoke(app, ["predict", str(tmp_path / "fit"), "--C", "1e21", "--C", "1e22",
                              "--target-accuracy", "0.6", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["predictions"]
    assert len(rows) == 2 and all(r["ci"][0] <= r["median"] <= r["ci"][1] for r in rows)
    assert rows[1]["p_at_least_target"] >= rows[0]["p_at_least_target"]
    res = runner.invoke(app, ["optimal", str(tmp_path / "fit"), "--target-accuracy", "0.6",
                              "--prob", "0.5", "--json"])
    assert res.exit_code == 0, res.output
    need = json.loads(res.stdout)
    assert need["target"] == 0.6 and need["tokens_per_param"] == 20.0
    assert need["C"] is None or need["C"] > 0
    res = runner.invoke(app, ["optimal", str(tmp_path / "fit"), "--budget", "1e22"])
    assert res.exit_code == 2 and "--target-accuracy" in res.output
    several = runner.invoke(app, ["fit", str(path), "--metric", "acc_*", "--floor", "0.25",
                                  "--out", str(tmp_path / "f2")])
    assert several.exit_code != 0 and "one accuracy metric at a time" in several.output


def test_first_hit_scans_coarse_then_fine():
    from bayescale.answers.accuracy import _first_hit

    probs = np.array([0.1, 0.2, 0.3, 0.6, 0.65, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99])
    seen = []

    def p_at(k):
        seen.append(k)
        return probs[k]

    assert _first_hit(p_at, probs.size, 0.5, step=4)[0] == 3  # the first, not the coarse hit
    assert len(seen) < probs.size
    assert _first_hit(lambda k: probs[k], probs.size, 0.995, step=4) == (None, 0.99)


def test_auto_task_size_from_the_table_when_it_knows_the_task(sim_runs):
    from bayescale.core.datasets import read_table
    from bayescale.engines.accuracy import accuracy_data

    frame = read_table("overtraining_downstream")
    data = accuracy_data(frame, metric="acc_hellaswag", floor=0.25, n_examples="auto")
    assert data.n_examples == 10042 and data.floor == 0.25
    unknown = accuracy_data(_ladder(sim_runs), metric="acc_sim", floor=0.25, n_examples="auto")
    assert unknown.n_examples is None
