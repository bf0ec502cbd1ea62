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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

FLOPS_PER_PARAM_TOKEN = 6.0
"""The ``C = 6 N D`` convention (forward + backward pass, Kaplan et al. 2020)."""


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
# Law specs: parameter names, how amplitudes relate to the pivot, and the closed-form optimum
# --------------------------------------------------------------------------------------------


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
        Inputs the law depends on (``("N", "D")``, ``("N",)`` or ``("D",)``).
    amplitudes : tuple of Amplitude
        Amplitude parameters, sampled through their log term at the runs' geometric mean (pivot).
    optional : tuple of str
        Parameters that may be absent (``L_inf`` of the Kaplan forms).
    formula : str
        The law in words, for reports.
    reference : str
        The paper it follows.
    """

    name: str
    params: tuple[str, ...]
    variables: tuple[str, ...]
    amplitudes: tuple[Amplitude, ...]
    formula: str
    reference: str
    optional: tuple[str, ...] = field(default=())

    def param_names(self, *, with_optional=False) -> tuple[str, ...]:
        """Parameter names, with or without the optional ones."""
        return self.params + (self.optional if with_optional else ())

    @property
    def has_optimum(self) -> bool:
        """Whether the law has a compute-optimal allocation (it depends on both N and D)."""
        return self.variables == ("N", "D")

    def log_loss(self, N, D, params: Mapping):
        """Log loss at ``(N, D)`` for a mapping of parameters (natural or ``log_`` amplitudes).

        Amplitudes are read from ``log_<name>`` when present, else from ``<name>``.

        Parameters
        ----------
        N, D : array_like
            Inputs (``D`` is ignored by ``kaplan_n``, ``N`` by ``kaplan_d``).
        params : Mapping
            Parameter values; arrays broadcast against ``N`` and ``D``.

        Returns
        -------
        array_like
            ``log L``.
        """
        xp = _xp(N, D, *params.values())
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
        return _LOG_FUNCS[self.name](N, D, **p)

    def loss(self, N, D, params: Mapping):
        """Loss at ``(N, D)``; see :meth:`log_loss`."""
        xp = _xp(N, D, *params.values())
        return xp.exp(self.log_loss(N, D, params))

    def optimal(self, C, params: Mapping):
        """Closed-form compute-optimal ``(N*, D*)`` at budgets ``C`` (numpy).

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
        if self.name == "chinchilla":
            return chinchilla_optimal_log(
                log_c, log_A=p["log_A"], log_B=p["log_B"], alpha=params["alpha"],
                beta=params["beta"],
            )
        return kaplan_optimal_log(
            log_c, log_N_c=p["log_N_c"], log_D_c=p["log_D_c"], alpha_N=params["alpha_N"],
            alpha_D=params["alpha_D"],
        )


def _kaplan_n(N, D, **p):
    return kaplan_n_log(N, **p)


def _kaplan_d(N, D, **p):
    return kaplan_d_log(D, **p)


_LOG_FUNCS = {
    "chinchilla": chinchilla_log,
    "kaplan": kaplan_log,
    "kaplan_n": _kaplan_n,
    "kaplan_d": _kaplan_d,
}

LAWS: dict[str, Law] = {
    "chinchilla": Law(
        name="chinchilla",
        params=("E", "A", "B", "alpha", "beta"),
        variables=("N", "D"),
        amplitudes=(Amplitude("A", "alpha", "N", "power"), Amplitude("B", "beta", "D", "power")),
        formula="L = E + A/N^alpha + B/D^beta",
        reference="Hoffmann et al. (2022), arXiv:2203.15556, Eq. (2)",
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
}


def get_law(name: str) -> Law:
    """Return the :class:`Law` registered under ``name``.

    Parameters
    ----------
    name : str
        One of ``chinchilla``, ``kaplan``, ``kaplan_n``, ``kaplan_d``.

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
