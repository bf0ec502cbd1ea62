"""Inference-aware optimum (Sardana et al. 2024): T = 0 limit, scipy per draw, Epoch's runs."""

import json

import numpy as np
import pytest
from conftest import SHARED_DATA
from fakes import make_fit, scattered
from scipy import optimize
from typer.testing import CliRunner

from bayescale.answers.allocation import inference_compute_for_loss, inference_optimum, optimal
from bayescale.cli import app
from bayescale.core.io import save
from bayescale.core.laws import get_law
from bayescale.errors import InputError

LAW = get_law("chinchilla")
BUDGET = 5.76e23
T = 1e13


def _loss(params, n, d):
    return params["E"] + params["A"] / n ** params["alpha"] + params["B"] / d ** params["beta"]


def test_zero_inference_is_the_training_only_optimum():
    fit = make_fit(scattered(300, seed=1))
    a = optimal(fit, budgets=[1e21, BUDGET])
    for t in (None, 0, 0.0):
        b = optimal(fit, budgets=[1e21, BUDGET], inference_tokens=t)
        for k in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
            np.testing.assert_array_equal(a[k].to_numpy(), b[k].to_numpy())
    # The numeric solver itself at T = 0 recovers the closed form per draw.
    p = scattered(300, seed=1)
    n, d = inference_optimum(LAW, p, [BUDGET], inference_tokens=0.0)
    n_closed, _ = LAW.optimal(np.array([BUDGET]), {k: v[:, None] for k, v in p.items()})
    np.testing.assert_allclose(n, n_closed, rtol=1e-6)


def test_budget_form_matches_scipy_on_every_draw():
    p = scattered(40, seed=4)
    n, d = inference_optimum(LAW, p, [BUDGET], inference_tokens=T)
    np.testing.assert_allclose(6 * n * d + 2 * n * T, BUDGET, rtol=1e-12)
    for s in range(40):
        ps = {k: v[s] for k, v in p.items()}

        def f(x, ps=ps):
            nn = np.exp(x)
            return _loss(ps, nn, BUDGET / (6 * nn) - T / 3)

        res = optimize.minimize_scalar(
            f, bounds=(np.log(1e6), np.log(BUDGET / (6 + 2 * T))), method="bounded",
            options={"xatol": 1e-10},
        )
        assert n[s, 0] == pytest.approx(np.exp(res.x), rel=1e-4)
        assert f(np.log(n[s, 0])) <= res.fun + 1e-12


def test_target_form_matches_scipy():
    ps = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    fit = make_fit(ps, n_draws=8)
    target = 2.0
    out = inference_compute_for_loss(fit, target_loss=target, inference_tokens=T)

    def total(x):  # min over N of 6ND + 2NT with D solving L(N, D) = target
        nn = np.exp(x)
        rest = target - ps["E"] - ps["A"] / nn ** ps["alpha"]
        if rest <= 0:
            return np.inf
        dd = (ps["B"] / rest) ** (1 / ps["beta"])
        return np.log(6 * nn * dd + 2 * nn * T)

    res = optimize.minimize_scalar(total, bounds=(np.log(1e8), np.log(1e13)), method="bounded",
                                   options={"xatol": 1e-10})
    assert out["p_reachable"] == 1.0
    assert out["C"]["median"] == pytest.approx(np.exp(res.fun), rel=1e-5)
    assert out["N"]["median"] == pytest.approx(np.exp(res.x), rel=1e-3)  # flat optimum in N
    c0 = inference_compute_for_loss(fit, target_loss=target, inference_tokens=0.0)
    assert c0["C_inference"]["median"] == 0.0 and c0["N"]["median"] > out["N"]["median"]
    with pytest.raises(InputError, match="loss floor"):
        inference_compute_for_loss(fit, target_loss=1.5, inference_tokens=T)
    with pytest.raises(InputError, match="inference_tokens"):
        optimal(fit, budgets=[BUDGET], inference_tokens=-1)


def test_cli_optimal_inference_tokens(tmp_path):
    path = save(make_fit(scattered(200, seed=5)), tmp_path / "posterior.nc")
    res = CliRunner().invoke(app, ["optimal", str(path), "--budget", "5.76e23",
                                   "--inference-tokens", "1e13", "--json"])
    assert res.exit_code == 0, res.stderr
    row = json.loads(res.stdout)["inference"]["budgets"][0]
    assert row["inference_aware"]["N_opt"]["median"] < row["training_only"]["N_opt"]["median"]


@pytest.mark.skipif(not (SHARED_DATA / "chinchilla_epoch2024.csv").is_file(),
                    reason="Epoch's Chinchilla runs not available (set BAYESCALE_TEST_DATA)")
def test_epoch_inference_moves_to_smaller_models_trained_longer(chinchilla_fit):
    a = optimal(chinchilla_fit, budgets=[BUDGET])
    b = optimal(chinchilla_fit, budgets=[BUDGET], inference_tokens=T)
    assert float(b["N_opt"][0]) < float(a["N_opt"][0])
    assert float(b["tokens_per_param"][0]) > float(a["tokens_per_param"][0])
    # Not only the medians: the intervals separate.
    assert b["N_opt_ci"][0, 1] < a["N_opt_ci"][0, 0]
