"""Laws vs direct formulas, limits, PyTensor = NumPy, closed-form optima vs minimisation."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from bayescale import laws

CHIN = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
KAP = dict(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
N = np.geomspace(1e6, 1e13, 7)
D = np.geomspace(1e8, 1e15, 7)


def test_chinchilla_matches_direct_formula():
    direct = CHIN["E"] + CHIN["A"] / N ** CHIN["alpha"] + CHIN["B"] / D ** CHIN["beta"]
    np.testing.assert_allclose(laws.chinchilla(N, D, **CHIN), direct, rtol=1e-13)


def test_kaplan_matches_direct_formula_and_linf_adds():
    p = KAP
    direct = ((p["N_c"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / D) ** p["alpha_D"]
    np.testing.assert_allclose(laws.kaplan(N, D, **KAP), direct, rtol=1e-12)
    np.testing.assert_allclose(laws.kaplan(N, D, **KAP, L_inf=0.7), direct + 0.7, rtol=1e-12)


def test_single_variable_kaplan_laws():
    got = np.exp(laws.kaplan_n_log(N, log_N_c=np.log(8.8e13), alpha_N=0.076))
    np.testing.assert_allclose(got, (8.8e13 / N) ** 0.076, rtol=1e-12)
    got = np.exp(laws.kaplan_d_log(D, log_D_c=np.log(5.4e13), alpha_D=0.095, L_inf=1.0))
    np.testing.assert_allclose(got, (5.4e13 / D) ** 0.095 + 1.0, rtol=1e-12)


def test_limits():
    # Chinchilla tends to E; Kaplan joint tends to the single-variable laws.
    assert laws.chinchilla(1e30, 1e40, **CHIN) == pytest.approx(CHIN["E"], rel=1e-6)
    big_d = laws.kaplan(N, 1e60, **KAP)
    np.testing.assert_allclose(big_d, (KAP["N_c"] / N) ** KAP["alpha_N"], rtol=1e-9)
    big_n = laws.kaplan(1e80, D, **KAP)
    np.testing.assert_allclose(big_n, (KAP["D_c"] / D) ** KAP["alpha_D"], rtol=1e-9)


def test_log_space_is_stable_where_naive_overflows():
    # N_c = exp(800) overflows float64; the log form does not.
    v = laws.kaplan_log(1e9, 1e11, log_N_c=800.0, log_D_c=np.log(1.8e13), alpha_N=0.01, alpha_D=0.1)
    assert np.isfinite(v)
    expected = 0.1 * np.logaddexp(0.1 * (800 - np.log(1e9)), np.log(1.8e13 / 1e11))
    assert v == pytest.approx(expected, rel=1e-12)


def test_pytensor_equals_numpy():
    import pytensor.tensor as pt

    n, d = pt.dvector("n"), pt.dvector("d")
    expr = laws.chinchilla_log(n, d, E=1.69, log_A=np.log(406.4), log_B=np.log(410.7),
                               alpha=0.34, beta=0.28)
    np.testing.assert_allclose(expr.eval({n: N, d: D}), np.log(laws.chinchilla(N, D, **CHIN)),
                               rtol=1e-12)
    # np.float64 constants: pytensor would store Python floats such as 0.5 as float32.
    f = np.float64
    expr = laws.kaplan_log(n, d, log_N_c=np.log(6.4e13), log_D_c=np.log(1.8e13),
                           alpha_N=f(0.076), alpha_D=f(0.103), L_inf=f(0.5))
    np.testing.assert_allclose(expr.eval({n: N, d: D}),
                               np.log(laws.kaplan(N, D, **KAP, L_inf=0.5)), rtol=1e-12)


def _numeric_opt(loss, c):
    res = minimize_scalar(lambda ln: loss(np.exp(ln), c / (6 * np.exp(ln))),
                          bounds=(np.log(1e3), np.log(c / 6 / 1e3)), method="bounded",
                          options={"xatol": 1e-10})
    return np.exp(res.x)


@pytest.mark.parametrize("c", [1e18, 5.76e23, 1e27])
def test_chinchilla_optimum_matches_minimisation(c):
    n_opt, d_opt = laws.chinchilla_optimal(c, A=CHIN["A"], B=CHIN["B"], alpha=CHIN["alpha"],
                                           beta=CHIN["beta"])
    assert 6 * n_opt * d_opt == pytest.approx(c, rel=1e-12)
    n_num = _numeric_opt(lambda n, d: laws.chinchilla(n, d, **CHIN), c)
    assert n_opt == pytest.approx(n_num, rel=1e-5)


@pytest.mark.parametrize("c", [1e18, 1e21, 1e25])
def test_kaplan_optimum_matches_minimisation(c):
    n_opt, d_opt = laws.kaplan_optimal(c, **KAP)
    assert 6 * n_opt * d_opt == pytest.approx(c, rel=1e-12)
    n_num = _numeric_opt(lambda n, d: laws.kaplan(n, d, **KAP, L_inf=1.0), c)
    assert n_opt == pytest.approx(n_num, rel=1e-5)


def test_chinchilla_exponents_follow_paper():
    # N* ∝ C^(beta/(alpha+beta)) (Hoffmann et al. 2022, Eq. 4): a = 0.28/0.62 = 0.4516
    n1, _ = laws.chinchilla_optimal(1e20, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    n2, _ = laws.chinchilla_optimal(1e22, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    assert np.log10(n2 / n1) / 2 == pytest.approx(0.28 / 0.62, rel=1e-12)


def test_law_registry_and_amplitude_roundtrip():
    law = laws.get_law("chinchilla")
    params = {**CHIN}
    np.testing.assert_allclose(law.loss(N, D, params), laws.chinchilla(N, D, **CHIN), rtol=1e-13)
    for amp in law.amplitudes + laws.get_law("kaplan").amplitudes:
        t = amp.log_term(np.log(123.0), 0.3, np.log(1e9))
        assert amp.log_amplitude(t, 0.3, np.log(1e9)) == pytest.approx(np.log(123.0))
    with pytest.raises(KeyError, match="valid laws: chinchilla, kaplan"):
        laws.get_law("chinchila")
    with pytest.raises(ValueError, match="no compute optimum"):
        laws.get_law("kaplan_n").optimal(1e20, {"N_c": 1e13, "alpha_N": 0.07})


def test_law_object_broadcasts_over_draws():
    law = laws.get_law("kaplan")
    draws = {k: np.full((5, 1), v) for k, v in KAP.items()}
    out = law.loss(N, D, draws)
    assert out.shape == (5, len(N))
    np.testing.assert_allclose(out[3], laws.kaplan(N, D, **KAP), rtol=1e-12)
