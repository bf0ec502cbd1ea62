"""Scaling laws as pure functions, and their compute-optimal solutions.

Every law is evaluated in log space (``logaddexp`` of log terms), so the same code is stable for
N of 1e6 or 1e13 and works on NumPy arrays and PyTensor tensors alike (the array module is chosen
from the arguments). Amplitudes enter as logarithms (``log_A``, ``log_N_c``), because ``N_c`` can
overflow a float64 when its exponent is small.

Conventions: ``N`` is the number of parameters, ``D`` the number of training tokens, and compute is
``C = 6 N D`` FLOPs (Kaplan et al. 2020, Sec. 2.1). Loss is in nats per token.

References
----------
Kaplan, J. et al. (2020). Scaling Laws for Neural Language Models. arXiv:2001.08361.
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models. arXiv:2203.15556.
Besiroglu, T. et al. (2024). Chinchilla Scaling: A replication attempt. arXiv:2404.10102.
Muennighoff, N. et al. (2023). Scaling Data-Constrained Language Models. arXiv:2305.16264.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

FLOPS_PER_PARAM_TOKEN = 6.0
"""The ``C = 6 N D`` convention (forward + backward pass, Kaplan et al. 2020)."""

OPTIMUM_GRID = 65
"""Grid points bracketing a numeric optimum (about 0.3 decades apart at ``C = 1e24``)."""
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def _xp(*args):
    """Return ``pytensor.tensor`` if any argument is a PyTensor variable, else ``numpy``."""
    for a in args:
        if type(a).__module__.startswith("pytensor"):
            import pytensor.tensor as pt

            return pt
    return np


def _logsumexp3(xp, a, b, c):
    return xp.logaddexp(a, xp.logaddexp(b, c))


# --------------------------------------------------------------------------------------------
# Chinchilla: L = E + A / N^alpha + B / D^beta
# --------------------------------------------------------------------------------------------


def chinchilla_log(N, D, *, E, log_A, log_B, alpha, beta):
    r"""Log of the Chinchilla loss, :math:`\log(E + A N^{-\alpha} + B D^{-\beta})`.

    Parameters
    ----------
    N, D : array_like or pytensor variable
        Parameters and training tokens.
    E : array_like
        Irreducible loss (> 0).
    log_A, log_B : array_like
        Natural logs of the amplitudes ``A`` and ``B``.
    alpha, beta : array_like
        Exponents of the parameter and data terms.

    Returns
    -------
    array_like
        ``log L``, broadcast over all arguments.

    References
    ----------
    Hoffmann et al. (2022), Eq. (2) and Approach 3.

    Examples
    --------
    >>> import numpy as np
    >>> float(np.exp(chinchilla_log(7e10, 1.4e12, E=1.69, log_A=np.log(406.4),
    ...     log_B=np.log(410.7), alpha=0.34, beta=0.28)))  # doctest: +ELLIPSIS
    1.93...
    """
    xp = _xp(N, D, E, log_A, log_B, alpha, beta)
    return _logsumexp3(
        xp, xp.log(E), log_A - alpha * xp.log(N), log_B - beta * xp.log(D)
    )


def chinchilla(N, D, *, E, A, B, alpha, beta):
    r"""Chinchilla loss :math:`L(N, D) = E + A/N^\alpha + B/D^\beta`.

    Parameters
    ----------
    N, D : array_like
        Parameters and training tokens.
    E, A, B, alpha, beta : array_like
        Law parameters (Hoffmann et al. 2022 names).

    Returns
    -------
    array_like
        The loss in nats per token.

    References
    ----------
    Hoffmann et al. (2022), Eq. (2).

    Examples
    --------
    >>> round(float(chinchilla(7e10, 1.4e12, E=1.69, A=406.4, B=410.7,
    ...                        alpha=0.34, beta=0.28)), 3)
    1.937
    """
    xp = _xp(N, D, E, A, B, alpha, beta)
    return xp.exp(
        chinchilla_log(N, D, E=E, log_A=xp.log(A), log_B=xp.log(B), alpha=alpha, beta=beta)
    )


def chinchilla_optimal(C, *, A, B, alpha, beta):
    r"""Compute-optimal ``(N*, D*)`` of the Chinchilla law under ``C = 6 N D``.

    .. math:: G = \left(\frac{\alpha A}{\beta B}\right)^{1/(\alpha+\beta)},\quad
              N^* = G\,(C/6)^{\beta/(\alpha+\beta)},\quad D^* = G^{-1}(C/6)^{\alpha/(\alpha+\beta)}

    Parameters
    ----------
    C : array_like
        Compute budgets in FLOPs.
    A, B, alpha, beta : array_like
        Law parameters; broadcast against ``C``.

    Returns
    -------
    tuple of array_like
        ``(N_opt, D_opt)``.

    References
    ----------
    Hoffmann et al. (2022), Appendix D.2, Eq. (4).

    Examples
    --------
    >>> n, d = chinchilla_optimal(5.76e23, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    >>> round(float(n / 1e9), 1), round(float(d / 1e12), 2)
    (32.2, 2.98)
    """
    return chinchilla_optimal_log(
        np.log(C), log_A=np.log(A), log_B=np.log(B), alpha=alpha, beta=beta
    )


def chinchilla_optimal_log(log_C, *, log_A, log_B, alpha, beta):
    """Log-space form of :func:`chinchilla_optimal`; returns ``(N_opt, D_opt)``.

    Parameters
    ----------
    log_C : array_like
        Natural log of the compute budgets.
    log_A, log_B, alpha, beta : array_like
        Law parameters with log amplitudes.

    Returns
    -------
    tuple of numpy.ndarray
        ``(N_opt, D_opt)``.

    Examples
    --------
    >>> n, d = chinchilla_optimal_log(np.log(5.76e23), log_A=np.log(406.4), log_B=np.log(410.7),
    ...                               alpha=0.34, beta=0.28)
    >>> round(float(6 * n * d / 5.76e23), 6)
    1.0
    """
    s = alpha + beta
    log_g = (np.log(alpha) + log_A - np.log(beta) - log_B) / s
    log_c6 = log_C - np.log(FLOPS_PER_PARAM_TOKEN)
    log_n = log_g + beta / s * log_c6
    log_d = log_c6 - log_n
    return np.exp(log_n), np.exp(log_d)


# --------------------------------------------------------------------------------------------
# Kaplan: L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (+ L_inf), and single-variable forms
# --------------------------------------------------------------------------------------------


def kaplan_log(N, D, *, log_N_c, log_D_c, alpha_N, alpha_D, L_inf=0.0):
    r"""Log of the Kaplan joint loss, optionally with an irreducible term ``L_inf``.

    :math:`L = \left[(N_c/N)^{\alpha_N/\alpha_D} + D_c/D\right]^{\alpha_D} + L_\infty`.

    Parameters
    ----------
    N, D : array_like or pytensor variable
        Parameters and training tokens.
    log_N_c, log_D_c : array_like
        Natural logs of the critical scales ``N_c`` and ``D_c``.
    alpha_N, alpha_D : array_like
        Exponents.
    L_inf : array_like, default 0.0
        Irreducible loss (0 gives Kaplan's original form).

    Returns
    -------
    array_like
        ``log L``.

    References
    ----------
    Kaplan et al. (2020), Eq. (1.5).

    Examples
    --------
    >>> import numpy as np
    >>> float(np.exp(kaplan_log(1e9, 1e11, log_N_c=np.log(6.4e13), log_D_c=np.log(1.8e13),
    ...                         alpha_N=0.076, alpha_D=0.103)))  # doctest: +ELLIPSIS
    2.33...
    """
    xp = _xp(N, D, log_N_c, log_D_c, alpha_N, alpha_D, L_inf)
    log_red = alpha_D * xp.logaddexp(
        alpha_N / alpha_D * (log_N_c - xp.log(N)), log_D_c - xp.log(D)
    )
    if isinstance(L_inf, (int, float)) and L_inf == 0:
        return log_red
    return xp.logaddexp(log_red, xp.log(L_inf))


def kaplan(N, D, *, N_c, D_c, alpha_N, alpha_D, L_inf=0.0):
    r"""Kaplan joint loss :math:`[(N_c/N)^{\alpha_N/\alpha_D} + D_c/D]^{\alpha_D} + L_\infty`.

    Parameters
    ----------
    N, D : array_like
        Parameters and training tokens.
    N_c, D_c, alpha_N, alpha_D : array_like
        Law parameters (Kaplan et al. 2020 names).
    L_inf : array_like, default 0.0
        Optional irreducible loss.

    Returns
    -------
    array_like
        The loss in nats per token.

    References
    ----------
    Kaplan et al. (2020), Eq. (1.5) and Table 2.

    Examples
    --------
    >>> round(float(kaplan(1e9, 1e11, N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)), 3)
    2.331
    """
    xp = _xp(N, D, N_c, D_c, alpha_N, alpha_D, L_inf)
    return xp.exp(
        kaplan_log(
            N, D, log_N_c=xp.log(N_c), log_D_c=xp.log(D_c), alpha_N=alpha_N, alpha_D=alpha_D,
            L_inf=L_inf,
        )
    )


def kaplan_optimal(C, *, N_c, D_c, alpha_N, alpha_D):
    r"""Compute-optimal ``(N*, D*)`` of the Kaplan joint law under ``C = 6 N D``.

    With :math:`p = \alpha_N/\alpha_D`, minimising :math:`(N_c/N)^p + 6 D_c N / C` gives

    .. math:: N^* = \left(\frac{p\,N_c^{p}\,C}{6 D_c}\right)^{1/(1+p)},\quad D^* = C / (6 N^*).

    ``L_inf`` does not move the optimum.

    Parameters
    ----------
    C : array_like
        Compute budgets in FLOPs.
    N_c, D_c, alpha_N, alpha_D : array_like
        Law parameters.

    Returns
    -------
    tuple of array_like
        ``(N_opt, D_opt)``.

    References
    ----------
    Kaplan et al. (2020), Eq. (1.5); the ``6ND`` budget of their Sec. 2.1.

    Examples
    --------
    >>> n, d = kaplan_optimal(1e21, N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    >>> round(float(6 * n * d / 1e21), 6)
    1.0
    """
    return kaplan_optimal_log(
        np.log(C), log_N_c=np.log(N_c), log_D_c=np.log(D_c), alpha_N=alpha_N, alpha_D=alpha_D
    )


def kaplan_optimal_log(log_C, *, log_N_c, log_D_c, alpha_N, alpha_D):
    """Log-space form of :func:`kaplan_optimal`; returns ``(N_opt, D_opt)``.

    Parameters
    ----------
    log_C : array_like
        Natural log of the compute budgets.
    log_N_c, log_D_c, alpha_N, alpha_D : array_like
        Law parameters with log critical scales.

    Returns
    -------
    tuple of numpy.ndarray
        ``(N_opt, D_opt)``.

    Examples
    --------
    >>> n, d = kaplan_optimal_log(np.log(1e21), log_N_c=np.log(6.4e13), log_D_c=np.log(1.8e13),
    ...                           alpha_N=0.076, alpha_D=0.103)
    >>> round(float(n / 1e9), 2)
    6.23
    """
    p = alpha_N / alpha_D
    log_c6 = log_C - np.log(FLOPS_PER_PARAM_TOKEN)
    log_n = (np.log(p) + p * log_N_c + log_c6 - log_D_c) / (1.0 + p)
    return np.exp(log_n), np.exp(log_c6 - log_n)


def kaplan_n_log(N, *, log_N_c, alpha_N, L_inf=0.0):
    r"""Log of Kaplan's parameter-limited law :math:`L(N) = (N_c/N)^{\alpha_N} (+ L_\infty)`.

    Parameters
    ----------
    N : array_like
        Parameters.
    log_N_c, alpha_N : array_like
        Log critical size and exponent.
    L_inf : array_like, default 0.0
        Optional irreducible loss.

    Returns
    -------
    array_like
        ``log L``.

    References
    ----------
    Kaplan et al. (2020), Eq. (1.1).

    Examples
    --------
    >>> round(float(np.exp(kaplan_n_log(1e9, log_N_c=np.log(8.8e13), alpha_N=0.076))), 3)
    2.376
    """
    xp = _xp(N, log_N_c, alpha_N, L_inf)
    log_red = alpha_N * (log_N_c - xp.log(N))
    if isinstance(L_inf, (int, float)) and L_inf == 0:
        return log_red
    return xp.logaddexp(log_red, xp.log(L_inf))


def kaplan_d_log(D, *, log_D_c, alpha_D, L_inf=0.0):
    r"""Log of Kaplan's data-limited law :math:`L(D) = (D_c/D)^{\alpha_D} (+ L_\infty)`.

    Parameters
    ----------
    D : array_like
        Training tokens.
    log_D_c, alpha_D : array_like
        Log critical data size and exponent.
    L_inf : array_like, default 0.0
        Optional irreducible loss.

    Returns
    -------
    array_like
        ``log L``.

    References
    ----------
    Kaplan et al. (2020), Eq. (1.2).

    Examples
    --------
    >>> round(float(np.exp(kaplan_d_log(1e10, log_D_c=np.log(5.4e13), alpha_D=0.095))), 3)
    2.262
    """
    xp = _xp(D, log_D_c, alpha_D, L_inf)
    log_red = alpha_D * (log_D_c - xp.log(D))
    if isinstance(L_inf, (int, float)) and L_inf == 0:
        return log_red
    return xp.logaddexp(log_red, xp.log(L_inf))


# --------------------------------------------------------------------------------------------
# Data-constrained Chinchilla (Muennighoff et al. 2023): repeated tokens and excess parameters
# --------------------------------------------------------------------------------------------


def data_constrained_log(N, D, *, E, log_A, log_B, alpha, beta, R_D_star, R_N_star, U=None):
    r"""Log of the data-constrained loss of Muennighoff et al. (2023).

    The Chinchilla form on effective parameters :math:`N'` and effective data :math:`D'`:

    .. math::
        L = E + \frac{A}{N'^{\alpha}} + \frac{B}{D'^{\beta}},\quad
        D' = U_D + U_D R_D^* \left(1 - e^{-R_D / R_D^*}\right),\quad
        N' = U_N + U_N R_N^* \left(1 - e^{-R_N / R_N^*}\right),

    with :math:`U_D = U` unique tokens, :math:`R_D = \max(D/U_D - 1, 0)` repeated epochs,
    :math:`U_N = \min(N, N_{opt}(U_D))` the compute-optimal size for the unique tokens under the
    law's own Chinchilla allocation, :math:`N_{opt}(U) = G (U G)^{\beta/\alpha}`,
    :math:`G = (\alpha A / (\beta B))^{1/(\alpha+\beta)}`, and
    :math:`R_N = N / U_N - 1` excess parameters in units of :math:`U_N`. A repeated token is worth
    less each epoch (decay constant :math:`R_D^*` epochs) and parameters beyond what the unique
    data can use decay with :math:`R_N^*`.

    Limits: with :math:`R_D^*, R_N^* \to \infty`, or with no repetition (:math:`U \ge D`) and
    :math:`N \le N_{opt}(U)`, the law is exactly Chinchilla's. A single-epoch run larger than
    :math:`N_{opt}(D)` is still penalised (its excess parameters decay).

    Parameters
    ----------
    N, D : array_like or pytensor variable
        Parameters and training tokens seen (repeats counted).
    E, log_A, log_B, alpha, beta : array_like
        Chinchilla parameters (log amplitudes).
    R_D_star, R_N_star : array_like
        Decay constants of repeated data and of excess parameters (> 0).
    U : array_like, optional
        Unique tokens; None means every token is unique (``U = D``).

    Returns
    -------
    array_like
        ``log L``.

    References
    ----------
    Muennighoff, N. et al. (2023). Scaling Data-Constrained Language Models. arXiv:2305.16264,
    Eq. (5) and Appendix A; ``U_N`` as in huggingface/datablations ``utils/parametric_fit.ipynb``.
    Published fit: A = 520.4, B = 1488.6, E = 1.869, alpha = beta = 0.3527, R_D* = 15.39,
    R_N* = 5.31.

    Examples
    --------
    >>> p = dict(E=1.869, log_A=np.log(520.4), log_B=np.log(1488.6), alpha=0.3527,
    ...          beta=0.3527, R_D_star=15.39, R_N_star=5.31)
    >>> one = float(np.exp(data_constrained_log(8.7e9, 1.78e11, U=1.78e11, **p)))
    >>> four = float(np.exp(data_constrained_log(8.7e9, 1.78e11, U=1.78e11 / 4, **p)))
    >>> round(one, 3), round(four - one, 3)  # 4 epochs of a quarter of the data cost little
    (2.192, 0.015)
    """
    xp = _xp(N, D, U, E, log_A, log_B, alpha, beta, R_D_star, R_N_star)
    log_n, log_d = xp.log(N), xp.log(D)
    log_u = log_d if U is None else xp.log(U)
    log_u = xp.minimum(log_u, log_d)  # U > D means no repetition: the law's U_D is D
    r_d = xp.expm1(log_d - log_u)  # >= 0
    log_dp = log_u + xp.log1p(-R_D_star * xp.expm1(-r_d / R_D_star))
    log_g = (xp.log(alpha) + log_A - xp.log(beta) - log_B) / (alpha + beta)
    log_n_opt = log_g + beta / alpha * (log_u + log_g)
    log_un = xp.minimum(log_n, log_n_opt)
    r_n = xp.expm1(log_n - log_un)  # >= 0
    log_np = log_un + xp.log1p(-R_N_star * xp.expm1(-r_n / R_N_star))
    return _logsumexp3(xp, xp.log(E), log_A - alpha * log_np, log_B - beta * log_dp)


# --------------------------------------------------------------------------------------------
# Candidate forms for the law ensemble: interaction (power sum), shifted (Zhai et al. 2022)
# --------------------------------------------------------------------------------------------


def interaction_log(N, D, *, E, log_A, log_B, alpha, beta, gamma):
    r"""Log of the Chinchilla law with an interaction exponent ``gamma``.

    .. math:: L = E + \left[(A N^{-\alpha})^{1/\gamma} + (B D^{-\beta})^{1/\gamma}\right]^{\gamma}

    The two reducible terms are combined by a power sum instead of a plain sum. The one-variable
    limits are Chinchilla's (``D -> inf`` gives ``E + A/N^alpha``, ``N -> inf`` gives
    ``E + B/D^beta``), so ``A, alpha, B, beta`` keep their meaning; ``gamma`` only changes how the
    terms add where both matter, i.e. how the loss depends on the ratio ``D/N`` at fixed compute.
    ``gamma = 1`` is Chinchilla (Hoffmann et al. 2022, Eq. 2) and ``gamma = beta`` is Kaplan's
    joint form with a floor (Kaplan et al. 2020, Eq. 1.5, plus ``L_inf = E`` as in Henighan et al.
    2020), with ``N_c = A^(1/alpha)``, ``D_c = B^(1/beta)``, ``alpha_N = alpha``,
    ``alpha_D = beta``. ``gamma < 1`` makes the combination closer to ``max`` of the terms
    (the loss is set by the scarcer resource), ``gamma > 1`` makes it super-additive.

    Parameters
    ----------
    N, D : array_like or pytensor variable
        Parameters and training tokens.
    E : array_like
        Irreducible loss (> 0).
    log_A, log_B : array_like
        Natural logs of the amplitudes.
    alpha, beta : array_like
        Exponents of the one-variable limits.
    gamma : array_like
        Interaction exponent (> 0).

    Returns
    -------
    array_like
        ``log L``.

    References
    ----------
    Hoffmann et al. (2022), Eq. (2) (``gamma = 1``); Kaplan et al. (2020), Eq. (1.5)
    (``gamma = alpha_D``); Henighan, T. et al. (2020), Scaling Laws for Autoregressive
    Generative Modeling, arXiv:2010.14701 (the floor). The power-sum interpolation between the
    two is this package's.

    Examples
    --------
    >>> p = dict(E=1.69, log_A=np.log(406.4), log_B=np.log(410.7), alpha=0.34, beta=0.28)
    >>> bool(np.isclose(interaction_log(7e10, 1.4e12, gamma=1.0, **p), chinchilla_log(7e10,
    ...      1.4e12, **p)))
    True
    """
    xp = _xp(N, D, E, log_A, log_B, alpha, beta, gamma)
    log_u = log_A - alpha * xp.log(N)
    log_v = log_B - beta * xp.log(D)
    return xp.logaddexp(xp.log(E), gamma * xp.logaddexp(log_u / gamma, log_v / gamma))


def _interaction_affine(p):
    """Closed-form optimum of :func:`interaction_log`: ``log N* = g + a log(C/6)``.

    Minimising ``L`` along ``C = 6ND`` minimises the power sum, a Chinchilla problem with
    amplitudes ``A^(1/gamma)``, ``B^(1/gamma)`` and exponents ``alpha/gamma``, ``beta/gamma``:
    ``g = (gamma log(alpha/beta) + log A - log B) / (alpha + beta)``, ``a = beta/(alpha+beta)``.
    """
    alpha, beta, gamma = p["alpha"], p["beta"], p["gamma"]
    s = alpha + beta
    return (gamma * (np.log(alpha) - np.log(beta)) + p["log_A"] - p["log_B"]) / s, beta / s


def shifted_log(N, D, *, E, log_A, log_B, alpha, beta, N_0, D_0):
    r"""Log of the shifted (saturating) power law of Zhai et al. (2022), adapted to ``(N, D)``.

    .. math:: L = E + A (N + N_0)^{-\alpha} + B (D + D_0)^{-\beta}

    Zhai et al. fit ``E = a (C + d)^{-b} + c`` to vision transformers: the shift ``d`` bends the
    curve at small scale, where a pure power law would predict a loss that keeps rising, and
    ``c`` is the floor at large scale. Here each resource gets its shift: far above ``N_0`` and
    ``D_0`` the law is Chinchilla's, below them its terms saturate at ``A N_0^-alpha`` and
    ``B D_0^-beta``. The shifts let the smallest runs sit off the power law without bending the
    exponents that govern the extrapolation.

    Parameters
    ----------
    N, D : array_like or pytensor variable
        Parameters and training tokens.
    E : array_like
        Irreducible loss (> 0).
    log_A, log_B : array_like
        Natural logs of the amplitudes.
    alpha, beta : array_like
        Exponents (large-scale slopes).
    N_0, D_0 : array_like
        Shifts (> 0), in parameters and tokens.

    Returns
    -------
    array_like
        ``log L``.

    References
    ----------
    Zhai, X., Kolesnikov, A., Houlsby, N. & Beyer, L. (2022). Scaling Vision Transformers.
    CVPR 2022, arXiv:2106.04560, Sec. 3.1 (the saturating form ``a (x + d)^-b + c``).

    Examples
    --------
    >>> p = dict(E=1.69, log_A=np.log(406.4), log_B=np.log(410.7), alpha=0.34, beta=0.28)
    >>> round(float(np.exp(shifted_log(7e10, 1.4e12, N_0=1e-9, D_0=1e-9, **p))), 3)
    1.937
    """
    xp = _xp(N, D, E, log_A, log_B, alpha, beta, N_0, D_0)
    return _logsumexp3(
        xp,
        xp.log(E),
        log_A - alpha * xp.logaddexp(xp.log(N), xp.log(N_0)),
        log_B - beta * xp.logaddexp(xp.log(D), xp.log(D_0)),
    )


def _chinchilla_affine(p):
    """Closed-form optimum of the Chinchilla law (see :func:`chinchilla_optimal_log`)."""
    alpha, beta = p["alpha"], p["beta"]
    s = alpha + beta
    return (np.log(alpha) + p["log_A"] - np.log(beta) - p["log_B"]) / s, beta / s


def _kaplan_affine(p):
    """Closed-form optimum of the Kaplan joint law (see :func:`kaplan_optimal_log`)."""
    r = p["alpha_N"] / p["alpha_D"]
    return (np.log(r) + r * p["log_N_c"] - p["log_D_c"]) / (1.0 + r), 1.0 / (1.0 + r)


def _a_beta(p):
    """``a = beta / (alpha + beta)``: slope of ``log N*`` in ``log C`` (Chinchilla-type laws)."""
    alpha, beta = np.asarray(p["alpha"], float), np.asarray(p["beta"], float)
    return beta / (alpha + beta)


def _a_kaplan(p):
    """``a = alpha_D / (alpha_N + alpha_D)`` of the Kaplan joint law."""
    an, ad = np.asarray(p["alpha_N"], float), np.asarray(p["alpha_D"], float)
    return ad / (an + ad)


# --------------------------------------------------------------------------------------------
# Law specs: parameter names, how amplitudes relate to the pivot, and the closed-form optimum
# --------------------------------------------------------------------------------------------


def grid_golden_min(f, f_grid, upper, *, grid: int = OPTIMUM_GRID, steps: int = 90):
    """Per-element minimiser of ``f`` on ``[0, upper]``: a grid bracket, then golden section.

    A function need not be unimodal on the interval (the shifted law can have two local minima
    along an iso-FLOP line), so ``grid`` evenly spaced points first bracket the global minimum to
    two grid steps, and ``steps`` golden-section steps shrink that bracket.

    Parameters
    ----------
    f : callable
        ``f(x)`` for ``x`` shaped like ``upper``.
    f_grid : callable
        ``f_grid(xs)`` for ``xs`` of shape ``upper.shape + (grid,)``.
    upper : numpy.ndarray
        Upper end of each interval (the lower end is 0).
    grid, steps : int
        Bracketing grid size and golden-section steps.

    Returns
    -------
    numpy.ndarray
        The minimiser, shaped like ``upper``.

    Examples
    --------
    >>> x = grid_golden_min(lambda x: (x - 1.3) ** 2, lambda xs: (xs - 1.3) ** 2, np.array([4.0]))
    >>> round(float(x[0]), 6)
    1.3
    """
    step = np.maximum(upper, 0.0) / (grid - 1)
    xs = step[..., None] * np.arange(grid)
    fs = f_grid(xs)
    i = np.argmin(np.broadcast_to(fs, xs.shape), axis=-1)
    lo = np.maximum(i - 1, 0) * step
    hi = np.minimum(i + 1, grid - 1) * step
    x1 = hi - _GOLDEN * (hi - lo)
    x2 = lo + _GOLDEN * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(steps):
        left = f1 < f2  # minimum in [lo, x2]
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        x_keep = np.where(left, x1, x2)
        f_keep = np.where(left, f1, f2)
        x_new = np.where(left, hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo))
        f_new = f(x_new)
        x1, f1 = np.where(left, x_new, x_keep), np.where(left, f_new, f_keep)
        x2, f2 = np.where(left, x_keep, x_new), np.where(left, f_keep, f_new)
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Amplitude:
    """How an amplitude parameter relates to its term's log value at a reference input ``x``.

    ``kind="power"`` (Chinchilla ``A``): term ``= A x^{-e}``, so ``log A = t + e log x``.
    ``kind="critical"`` (Kaplan ``N_c``): term ``= (N_c/x)^{e}``, so ``log N_c = t / e + log x``.
    Here ``t`` is the log of the term at ``x`` and ``e`` the value of ``exponent``.
    """

    name: str
    exponent: str
    variable: str  # "N" or "D"
    kind: str  # "power" or "critical"

    def log_amplitude(self, log_term, exponent, log_x):
        """Log amplitude from the log term ``log_term`` at ``log_x``."""
        if self.kind == "power":
            return log_term + exponent * log_x
        return log_term / exponent + log_x

    def log_term(self, log_amplitude, exponent, log_x):
        """Log of the term at ``log_x`` from the log amplitude (inverts :meth:`log_amplitude`)."""
        if self.kind == "power":
            return log_amplitude - exponent * log_x
        return exponent * (log_amplitude - log_x)


@dataclass(frozen=True)
class Law:
    """A scaling-law form: its parameter names, log-loss function and compute-optimal solution.

    Attributes
    ----------
    name : str
        Registry name (``"chinchilla"``, ``"kaplan"``, ``"kaplan_n"``, ``"kaplan_d"``).
    params : tuple of str
        Natural parameter names, in the papers' spelling.
    variables : tuple of str
        Inputs the law depends on (``("N", "D")``, ``("N",)`` or ``("D",)``), then any extra
        run-table columns it reads (``("N", "D", "U")`` for the data-constrained law; see
        :attr:`extra_variables`).
    amplitudes : tuple of Amplitude
        Amplitude parameters, sampled through their log term at the runs' geometric mean (pivot).
    optional : tuple of str
        Parameters that may be absent (``L_inf`` of the Kaplan forms).
    formula : str
        The law in words, for reports.
    reference : str
        The paper it follows.
    affine : callable, optional
        Closed-form optimum: maps log-amplitude parameters to ``(g, a)`` with
        ``log N* = g + a log(C/6)`` under ``C = 6 N D``. None: no closed form; the optimum is found
        numerically (:func:`bayescale.answers.allocation.numeric_optimum`).
    exponent_a : callable, optional
        Maps parameters to the exponent ``a`` of ``N* ~ C^a`` (exact for closed forms, the
        large-budget limit otherwise). None: not available.
    """

    name: str
    params: tuple[str, ...]
    variables: tuple[str, ...]
    amplitudes: tuple[Amplitude, ...]
    formula: str
    reference: str
    optional: tuple[str, ...] = field(default=())
    affine: Callable | None = field(default=None, repr=False, compare=False)
    exponent_a: Callable | None = field(default=None, repr=False, compare=False)

    def param_names(self, *, with_optional=False) -> tuple[str, ...]:
        """Parameter names, with or without the optional ones."""
        return self.params + (self.optional if with_optional else ())

    @property
    def has_optimum(self) -> bool:
        """Whether the law has a compute-optimal allocation (it depends on both N and D)."""
        return self.variables[:2] == ("N", "D")

    @property
    def extra_variables(self) -> tuple[str, ...]:
        """Run-table columns the law reads besides ``N`` and ``D`` (``("U",)`` or ``()``)."""
        return tuple(v for v in self.variables if v not in ("N", "D"))

    def log_loss(self, N, D, params: Mapping, **data):
        """Log loss at ``(N, D)`` for a mapping of parameters (natural or ``log_`` amplitudes).

        Amplitudes are read from ``log_<name>`` when present, else from ``<name>``.

        Parameters
        ----------
        N, D : array_like
            Inputs (``D`` is ignored by ``kaplan_n``, ``N`` by ``kaplan_d``).
        params : Mapping
            Parameter values; arrays broadcast against ``N`` and ``D``.
        **data : array_like
            Extra inputs named in :attr:`extra_variables` (``U=`` unique tokens); a missing or
            None one takes the law's default (``U = D``: no repeated data). Others are ignored.

        Returns
        -------
        array_like
            ``log L``.
        """
        extra = {k: data[k] for k in self.extra_variables if data.get(k) is not None}
        xp = _xp(N, D, *params.values(), *extra.values())
        p = {}
        for k in self.params + self.optional:
            if k in params:
                p[k] = params[k]
        for amp in self.amplitudes:
            key = "log_" + amp.name
            p[key] = params[key] if key in params else xp.log(params[amp.name])
            p.pop(amp.name, None)
        if self.optional:
            p.setdefault("L_inf", 0.0)
        return _LOG_FUNCS[self.name](N, D, **p, **extra)

    def loss(self, N, D, params: Mapping, **data):
        """Loss at ``(N, D)``; see :meth:`log_loss`."""
        xp = _xp(N, D, *params.values(), *(v for v in data.values() if v is not None))
        return xp.exp(self.log_loss(N, D, params, **data))

    def numeric_log_n(self, params: Mapping, log_c6, *, grid: int = OPTIMUM_GRID, steps=90):
        """``log N*`` minimising the loss along ``C = 6 N D``, numerically (numpy).

        The loss along an iso-FLOP line is unimodal in ``log N`` for the Chinchilla and Kaplan
        laws (a monotone function of a sum of exponentials) but need not be for others (the
        saturating terms of the shifted law can make two local minima), so a grid of ``grid``
        points on ``1 <= N <= C/6`` first brackets the global minimum to two grid steps, and
        ``steps`` golden-section steps shrink that bracket to the flatness limit of the loss
        (about ``1e-7`` relative in ``N*`` after 90).

        Parameters
        ----------
        params : Mapping
            Parameters with ``log_`` amplitudes, arrays broadcasting against ``log_c6``.
        log_c6 : array_like
            ``log(C / 6)`` per budget.
        grid, steps : int
            Bracketing grid size and golden-section steps.

        Returns
        -------
        numpy.ndarray
            ``log N*``, broadcast over ``params`` and ``log_c6``.
        """
        shape = np.broadcast_shapes(np.shape(log_c6), *(np.shape(v) for v in params.values()))
        log_c6 = np.broadcast_to(np.asarray(log_c6, dtype=float), shape)

        def f(x):
            return self.log_loss(np.exp(x), np.exp(log_c6 - x), params)

        def f_grid(xs):
            col = {k: np.asarray(v)[..., None] for k, v in params.items()}
            return self.log_loss(np.exp(xs), np.exp(log_c6[..., None] - xs), col)

        return grid_golden_min(f, f_grid, log_c6, grid=grid, steps=steps)

    def optimal(self, C, params: Mapping):
        """Compute-optimal ``(N*, D*)`` at budgets ``C`` (numpy): closed form when the law has
        one (:attr:`affine`), else :meth:`numeric_log_n`.

        For the data-constrained law this is the optimum with unique data to spare (every
        token seen once): its Chinchilla part's optimum, where ``N* = N_opt(D*)`` so no
        parameter is in excess (Muennighoff et al. 2023, Sec. 5). With a unique-token budget,
        see :func:`bayescale.answers.repetition.best_epochs`.

        Raises
        ------
        ValueError
            If the law has no compute-optimal allocation.
        """
        if not self.has_optimum:
            raise ValueError(f"law {self.name!r} depends on one variable: no compute optimum")
        p = {}
        for amp in self.amplitudes:
            key = "log_" + amp.name
            p[key] = np.asarray(params[key]) if key in params else np.log(params[amp.name])
        log_c = np.log(C)
        if self.name == "data_constrained":
            return chinchilla_optimal_log(
                log_c, log_A=p["log_A"], log_B=p["log_B"], alpha=params["alpha"],
                beta=params["beta"],
            )
        full = {**{k: np.asarray(v, float) for k, v in params.items()}, **p}
        for amp in self.amplitudes:
            full.pop(amp.name, None)
        log_c6 = log_c - np.log(FLOPS_PER_PARAM_TOKEN)
        if self.affine is not None:
            g, a = self.affine(full)
            log_n = g + a * log_c6
        else:
            log_n = self.numeric_log_n(full, log_c6)
        return np.exp(log_n), np.exp(log_c6 - log_n)


def _kaplan_n(N, D, **p):
    return kaplan_n_log(N, **p)


def _kaplan_d(N, D, **p):
    return kaplan_d_log(D, **p)


_LOG_FUNCS = {
    "chinchilla": chinchilla_log,
    "kaplan": kaplan_log,
    "kaplan_n": _kaplan_n,
    "kaplan_d": _kaplan_d,
    "data_constrained": data_constrained_log,
    "interaction": interaction_log,
    "shifted": shifted_log,
}

LAWS: dict[str, Law] = {
    "chinchilla": Law(
        name="chinchilla",
        params=("E", "A", "B", "alpha", "beta"),
        variables=("N", "D"),
        amplitudes=(Amplitude("A", "alpha", "N", "power"), Amplitude("B", "beta", "D", "power")),
        formula="L = E + A/N^alpha + B/D^beta",
        reference="Hoffmann et al. (2022), arXiv:2203.15556, Eq. (2)",
        affine=_chinchilla_affine,
        exponent_a=_a_beta,
    ),
    "kaplan": Law(
        name="kaplan",
        params=("N_c", "D_c", "alpha_N", "alpha_D"),
        variables=("N", "D"),
        amplitudes=(
            Amplitude("N_c", "alpha_N", "N", "critical"),
            Amplitude("D_c", "alpha_D", "D", "critical"),
        ),
        optional=("L_inf",),
        formula="L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (+ L_inf)",
        reference="Kaplan et al. (2020), arXiv:2001.08361, Eq. (1.5)",
        affine=_kaplan_affine,
        exponent_a=_a_kaplan,
    ),
    "kaplan_n": Law(
        name="kaplan_n",
        params=("N_c", "alpha_N"),
        variables=("N",),
        amplitudes=(Amplitude("N_c", "alpha_N", "N", "critical"),),
        optional=("L_inf",),
        formula="L = (N_c/N)^alpha_N (+ L_inf)",
        reference="Kaplan et al. (2020), arXiv:2001.08361, Eq. (1.1)",
    ),
    "kaplan_d": Law(
        name="kaplan_d",
        params=("D_c", "alpha_D"),
        variables=("D",),
        amplitudes=(Amplitude("D_c", "alpha_D", "D", "critical"),),
        optional=("L_inf",),
        formula="L = (D_c/D)^alpha_D (+ L_inf)",
        reference="Kaplan et al. (2020), arXiv:2001.08361, Eq. (1.2)",
    ),
    "data_constrained": Law(
        name="data_constrained",
        params=("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star"),
        variables=("N", "D", "U"),
        amplitudes=(Amplitude("A", "alpha", "N", "power"), Amplitude("B", "beta", "D", "power")),
        formula=(
            "L = E + A/N'^alpha + B/D'^beta, D' = U + U R_D*(1 - exp(-R_D/R_D*)), "
            "N' = U_N + U_N R_N*(1 - exp(-R_N/R_N*))"
        ),
        reference="Muennighoff et al. (2023), arXiv:2305.16264, Eq. (5)",
        # with unique data to spare the optimum is Chinchilla's: N* = N_opt(D*), nothing decays
        affine=_chinchilla_affine,
        exponent_a=_a_beta,
    ),
    "interaction": Law(
        name="interaction",
        params=("E", "A", "B", "alpha", "beta", "gamma"),
        variables=("N", "D"),
        amplitudes=(Amplitude("A", "alpha", "N", "power"), Amplitude("B", "beta", "D", "power")),
        formula="L = E + [(A/N^alpha)^(1/gamma) + (B/D^beta)^(1/gamma)]^gamma",
        reference=(
            "Hoffmann et al. (2022) Eq. (2) at gamma = 1, Kaplan et al. (2020) Eq. (1.5) with a "
            "floor at gamma = beta"
        ),
        affine=_interaction_affine,
        exponent_a=_a_beta,
    ),
    "shifted": Law(
        name="shifted",
        params=("E", "A", "B", "alpha", "beta", "N_0", "D_0"),
        variables=("N", "D"),
        amplitudes=(Amplitude("A", "alpha", "N", "power"), Amplitude("B", "beta", "D", "power")),
        formula="L = E + A/(N + N_0)^alpha + B/(D + D_0)^beta",
        reference="Zhai et al. (2022), arXiv:2106.04560, Sec. 3.1, adapted to (N, D)",
        exponent_a=_a_beta,
    ),
}


def get_law(name: str) -> Law:
    """Return the :class:`Law` registered under ``name``.

    Parameters
    ----------
    name : str
        One of ``chinchilla``, ``kaplan``, ``kaplan_n``, ``kaplan_d``, ``data_constrained``.

    Returns
    -------
    Law

    Raises
    ------
    KeyError
        With the list of valid names.

    Examples
    --------
    >>> get_law("chinchilla").params
    ('E', 'A', 'B', 'alpha', 'beta')
    """
    try:
        return LAWS[name]
    except KeyError:
        raise KeyError(f"unknown law {name!r}; valid laws: {', '.join(LAWS)}") from None
