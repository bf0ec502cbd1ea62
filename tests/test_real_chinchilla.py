"""Real data: the default card on the Chinchilla runs (Besiroglu et al. 2024, 5 highest-loss runs
dropped) against published numbers. Uses the session fit ``chinchilla_fit`` (4 x 1000 draws)."""

import numpy as np

from bayescale.answers.allocation import numeric_optimum, optimal, optimal_draws
from bayescale.answers.prediction import law_params, predict

C_CHINCHILLA = 5.76e23  # Chinchilla's training budget (Hoffmann et al. 2022)


def test_tokens_per_parameter_at_chinchilla_budget(chinchilla_fit):
    """Besiroglu et al. (2024) find D*/N* ~ 20 with a wide interval at 5.76e23 FLOPs."""
    ds = optimal(chinchilla_fit, budgets=[C_CHINCHILLA], ci_prob=0.95)
    median = float(ds["tokens_per_param"][0])
    lo, hi = ds["tokens_per_param_ci"].to_numpy()[0]
    assert 12 <= median <= 25
    assert lo < 35 and hi > 7  # overlaps [7, 35]
    assert ds.attrs["ci_prob"] == 0.95


def test_predicted_loss_of_chinchilla_model(chinchilla_fit):
    """Chinchilla (70B params, 1.4T tokens): Besiroglu et al. (2024) predict 1.974."""
    ds = predict(chinchilla_fit, N=7e10, D=1.4e12, target_loss=2.0)
    assert abs(float(ds["median"][0]) - 1.974) < 0.05
    lo, hi = ds["ci"].to_numpy()[0]
    plo, phi = ds["pi"].to_numpy()[0]
    assert plo < lo < float(ds["median"][0]) < hi < phi
    assert float(ds["extrapolation_C"][0]) > 1.0  # far beyond the fitted compute


def test_predict_within_fitted_range_is_tight(chinchilla_fit):
    ds = predict(chinchilla_fit, N=[4e8, 4e9], D=[8e9, 8e10], target_loss=3.0)
    width = ds["ci"].sel(ci_bound="upper") - ds["ci"].sel(ci_bound="lower")
    assert np.all(width < 0.05)
    np.testing.assert_allclose(ds["extrapolation_N"], 0.0)
    assert np.all(ds["p_below_target"] > 0.99)


def test_closed_form_equals_numeric_on_every_posterior_draw(chinchilla_fit):
    law, params, _ = law_params(chinchilla_fit)
    budgets = np.array([1e19, C_CHINCHILLA, 1e26])
    dr = optimal_draws(chinchilla_fit, budgets=budgets)
    n, d = numeric_optimum(law, params, budgets)
    np.testing.assert_allclose(dr["N_opt"], n, rtol=2e-5)
    np.testing.assert_allclose(dr["D_opt"], d, rtol=2e-5)
    assert dr.sizes["sample"] == 4000
