"""Point-fit baseline: Huber loss on log loss, L-BFGS-B from a grid of starts, optional bootstrap.

This is the method of Hoffmann et al. (2022, Appendix D.2) and Besiroglu et al. (2024): minimise

.. math:: \\sum_i \\mathrm{Huber}_\\delta\\big(\\log L_i - \\log \\hat L(N_i, D_i; \\theta)\\big)

over the law's parameters, with the Chinchilla law in its log-sum-exp form (Hoffmann Eq. 7),
:math:`\\log \\hat L = \\mathrm{LSE}(e, a - \\alpha \\log N, b - \\beta \\log D)` with
:math:`e = \\log E`, :math:`a = \\log A`, :math:`b = \\log B`. The objective and its analytic
gradient are vectorised over a whole grid of starting points, so the grid is scored in one pass;
L-BFGS-B then runs from the best few starts and the best optimum is kept. Bootstrap refits
(runs resampled with replacement) give a sampling distribution of the estimates.

The result is a fit-like :class:`xarray.DataTree` (``posterior`` over ``chain=1, draw=B``), so
the prediction and allocation code works on it unchanged; its card is the requested card with a
Normal likelihood whose ``sigma`` is the robust residual scale of each refit.

References
----------
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models. arXiv:2203.15556.
Besiroglu, T. et al. (2024). Chinchilla Scaling: A replication attempt. arXiv:2404.10102.
Kaplan, J. et al. (2020). Scaling Laws for Neural Language Models. arXiv:2001.08361.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
from dataclasses import dataclass, replace

import numpy as np

from bayescale import __version__
from bayescale.core.cards import Card, load_card
from bayescale.core.runs import load_runs
from bayescale.errors import CardError, InputError

__all__ = ["point_fit", "huber", "objective"]

MAD_SCALE = 1.4826
"""Factor that makes the median absolute deviation a consistent estimate of a Normal sd."""

DEFAULT_N_STARTS = 8
"""L-BFGS-B runs from this many of the best-scoring grid points by default."""

_BOOT_GRID_STARTS = 2


# --------------------------------------------------------------------------------------------
# Parameterisations: vectorised log-law with analytic gradient
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Param:
    """An optimisation parameterisation of a card's law.

    ``names`` are the optimiser's coordinates (``log_E``, ``log_A``, ...); ``grid`` the starts;
    ``bounds`` the L-BFGS-B box; ``kind`` selects the log-law and gradient.
    """

    kind: str
    names: tuple[str, ...]
    grid: tuple[tuple[float, ...], ...]
    bounds: tuple[tuple[float | None, float | None], ...]

    def starts(self) -> np.ndarray:
        """All grid points, shape ``(G, P)``, clipped into the bounds."""
        pts = np.array(list(itertools.product(*self.grid)), dtype=float)
        lo = np.array([-np.inf if b[0] is None else b[0] for b in self.bounds])
        hi = np.array([np.inf if b[1] is None else b[1] for b in self.bounds])
        return np.clip(pts, lo, hi)


_EXP_BOUND = (1e-4, 10.0)
# Hoffmann et al. (2022), App. D.2: alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1},
# a, b in {0, 5, ..., 25}.
_HOFFMANN_EXP = (0.0, 0.5, 1.0, 1.5, 2.0)
_HOFFMANN_E = (-1.0, -0.5, 0.0, 0.5, 1.0)
_HOFFMANN_AMP = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
# Kaplan grid: exponents as published fits range (0.05-0.5), critical scales on a log grid around
# Kaplan's N_c = 6.4e13 (log 31.8) and D_c = 1.8e13 (log 30.5), L_inf as E.
_KAPLAN_EXP = (0.05, 0.1, 0.2, 0.35, 0.5)
_KAPLAN_LOGC = (15.0, 20.0, 25.0, 30.0, 35.0, 40.0)


def _parameterisation(card: Card) -> _Param:
    if card.law == "chinchilla":
        if card.tie and dict(card.tie) != {"beta": "alpha"}:
            raise CardError(
                f"point_fit supports the tie beta = alpha only; card {card.name!r} ties "
                f"{dict(card.tie)}"
            )
        if card.tie:
            return _Param(
                "chinchilla_tied",
                ("log_E", "log_A", "log_B", "alpha"),
                (_HOFFMANN_E, _HOFFMANN_AMP, _HOFFMANN_AMP, _HOFFMANN_EXP),
                ((None, None), (None, None), (None, None), _EXP_BOUND),
            )
        return _Param(
            "chinchilla",
            ("log_E", "log_A", "log_B", "alpha", "beta"),
            (_HOFFMANN_E, _HOFFMANN_AMP, _HOFFMANN_AMP, _HOFFMANN_EXP, _HOFFMANN_EXP),
            ((None, None), (None, None), (None, None), _EXP_BOUND, _EXP_BOUND),
        )
    if card.law == "kaplan" and not card.tie:
        names = ("log_N_c", "log_D_c", "alpha_N", "alpha_D")
        grid = (_KAPLAN_LOGC, _KAPLAN_LOGC, _KAPLAN_EXP, _KAPLAN_EXP)
        bounds = ((None, None), (None, None), _EXP_BOUND, (1e-3, 10.0))
        if "L_inf" in card.priors:
            return _Param(
                "kaplan_linf", names + ("log_L_inf",), grid + (_HOFFMANN_E,),
                bounds + ((None, None),),
            )
        return _Param("kaplan", names, grid, bounds)
    raise CardError(
        f"point_fit supports chinchilla-law cards (untied or beta = alpha) and kaplan-law cards; "
        f"card {card.name!r} uses law {card.law!r}"
    )


def _law_and_grad(kind: str, theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, *,
                  grad: bool = True):
    """Log-law ``mu`` ``(G, n)`` and its gradient ``(P, G, n)`` (None unless ``grad``)."""
    t = [theta[:, j : j + 1] for j in range(theta.shape[1])]
    if kind in ("chinchilla", "chinchilla_tied"):
        e, a, b, alpha = t[:4]
        beta = t[4] if kind == "chinchilla" else alpha
        z0 = np.broadcast_to(e, (theta.shape[0], log_n.size))
        z1 = a - alpha * log_n
        z2 = b - beta * log_d
        m = np.maximum(np.maximum(z0, z1), z2)
        w0, w1, w2 = np.exp(z0 - m), np.exp(z1 - m), np.exp(z2 - m)
        tot = w0 + w1 + w2
        mu = m + np.log(tot)
        if not grad:
            return mu, None
        w0, w1, w2 = w0 / tot, w1 / tot, w2 / tot
        if kind == "chinchilla":
            grad = np.stack([w0, w1, w2, -w1 * log_n, -w2 * log_d])
        else:
            grad = np.stack([w0, w1, w2, -w1 * log_n - w2 * log_d])
        return mu, grad
    lnc, ldc, a_n, a_d = t[:4]
    p = a_n / a_d
    u = p * (lnc - log_n)
    v = np.broadcast_to(ldc - log_d, u.shape)
    s = np.logaddexp(u, v)
    wu = np.exp(u - s)
    wv = 1.0 - wu
    red = a_d * s
    if not grad:
        return (red if kind == "kaplan" else np.logaddexp(red, t[4])), None
    g_red = [a_n * wu, a_d * wv, wu * (lnc - log_n), s - wu * u]
    if kind == "kaplan":
        return red, np.stack(g_red)
    l_inf = t[4]
    mu = np.logaddexp(red, l_inf)
    w_red = np.exp(red - mu)
    return mu, np.stack([w_red * g for g in g_red] + [1.0 - w_red])


def huber(r, *, delta: float):
    """Huber loss of residuals ``r``: quadratic within ``delta``, linear beyond.

    Parameters
    ----------
    r : array_like
        Residuals.
    delta : float
        Threshold between the quadratic and linear parts.

    Returns
    -------
    numpy.ndarray
        ``r**2 / 2`` where ``|r| <= delta``, else ``delta * (|r| - delta / 2)``.

    Examples
    --------
    >>> np.round(huber(np.array([0.0, 1e-3, 1.0]), delta=1e-3), 10).tolist()
    [0.0, 5e-07, 0.0009995]
    """
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta))


def objective(theta, *, kind: str, log_n, log_d, log_loss, delta: float):
    """Huber objective (sum over runs) and its gradient, vectorised over parameter vectors.

    Parameters
    ----------
    theta : array_like
        Parameter vectors, shape ``(G, P)`` (or ``(P,)`` for one).
    kind : {"chinchilla", "chinchilla_tied", "kaplan", "kaplan_linf"}
        Parameterisation: ``(log_E, log_A, log_B, alpha[, beta])`` for Chinchilla,
        ``(log_N_c, log_D_c, alpha_N, alpha_D[, log_L_inf])`` for Kaplan.
    log_n, log_d, log_loss : array_like
        Logs of the runs' parameters, tokens and losses.
    delta : float
        Huber threshold on log-loss residuals.

    Returns
    -------
    tuple of numpy.ndarray
        Objective ``(G,)`` and gradient ``(G, P)`` (without the leading axis for 1-D ``theta``).

    References
    ----------
    Hoffmann et al. (2022), Appendix D.2, Eq. (7).

    Examples
    --------
    >>> f, g = objective([0.5, 6.0, 7.6, 0.35, 0.37], kind="chinchilla", log_n=np.log([1e9]),
    ...                  log_d=np.log([2e10]), log_loss=np.log([2.5]), delta=1e-3)
    >>> f.shape, g.shape
    ((), (5,))
    """
    th = np.asarray(theta, dtype=float)
    one = th.ndim == 1
    th = np.atleast_2d(th)
    mu, dmu = _law_and_grad(kind, th, np.asarray(log_n), np.asarray(log_d))
    r = np.asarray(log_loss) - mu
    f = huber(r, delta=delta).sum(axis=-1)
    psi = np.clip(r, -delta, delta)
    g = -(dmu * psi).sum(axis=-1).T
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(f)
    f = np.where(bad, np.inf, f)
    return (f[0], g[0]) if one else (f, g)


def _minimise(start, *, param: _Param, log_n, log_d, log_loss, delta):
    from scipy.optimize import minimize

    def fun(x):
        f, g = objective(x, kind=param.kind, log_n=log_n, log_d=log_d, log_loss=log_loss,
                         delta=delta)
        if not np.isfinite(f):
            return 1e300, np.zeros_like(x)
        return float(f), g

    res = minimize(
        fun, start, jac=True, method="L-BFGS-B", bounds=param.bounds,
        options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20},
    )
    return res.x, float(res.fun), bool(res.success)


def _score(starts, *, param, log_n, log_d, log_loss, delta) -> np.ndarray:
    """Huber objective of every start (no gradient), in blocks to cap memory."""
    out = np.empty(len(starts))
    step = max(1, 2_000_000 // max(1, len(log_n)))
    for lo in range(0, len(starts), step):
        mu, _ = _law_and_grad(param.kind, starts[lo : lo + step], log_n, log_d, grad=False)
        out[lo : lo + step] = huber(log_loss - mu, delta=delta).sum(axis=-1)
    return np.where(np.isfinite(out), out, np.inf)


def _fit_once(starts, *, param, log_n, log_d, log_loss, delta, n_starts):
    """Run L-BFGS-B from each of the ``n_starts`` first ``starts``; keep the best optimum."""
    best = None
    for i in range(min(n_starts, len(starts))):
        x, f, ok = _minimise(starts[i], param=param, log_n=log_n, log_d=log_d,
                             log_loss=log_loss, delta=delta)
        if best is None or f < best[1]:
            best = (x, f, ok)
    return best


def _natural(kind: str, x: np.ndarray) -> dict[str, float]:
    """Natural law parameters and log amplitudes from an optimiser vector."""
    if kind.startswith("chinchilla"):
        beta = x[4] if kind == "chinchilla" else x[3]
        return {
            "E": float(np.exp(x[0])), "log_A": float(x[1]), "A": float(np.exp(x[1])),
            "log_B": float(x[2]), "B": float(np.exp(x[2])), "alpha": float(x[3]),
            "beta": float(beta),
        }
    out = {
        "log_N_c": float(x[0]), "N_c": float(np.exp(x[0])), "log_D_c": float(x[1]),
        "D_c": float(np.exp(x[1])), "alpha_N": float(x[2]), "alpha_D": float(x[3]),
    }
    if kind == "kaplan_linf":
        out["L_inf"] = float(np.exp(x[4]))
    return out


def _robust_sigma(kind, x, log_n, log_d, log_loss) -> float:
    mu, _ = _law_and_grad(kind, x[None, :], log_n, log_d)
    r = log_loss - mu[0]
    return float(MAD_SCALE * np.median(np.abs(r - np.median(r))))


def _normal_card(card: Card) -> Card:
    """The card with a Normal likelihood (sigma prior kept, nu dropped)."""
    return replace(card, family="Normal", noise_priors={"sigma": card.noise_priors["sigma"]})


def point_fit(
    runs,
    *,
    card="chinchilla",
    delta: float = 1e-3,
    n_starts: int | None = None,
    n_bootstrap: int = 0,
    random_seed: int = 0,
):
    """Fit a law by minimising a Huber loss on log loss (the Hoffmann/Epoch point estimate).

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        The runs (see :func:`bayescale.load_runs`).
    card : str, Path or Card, default "chinchilla"
        A Chinchilla-law card (``chinchilla``, ``chinchilla-normal``, ``chinchilla-tied``) or a
        Kaplan joint-law card (``kaplan``, ``kaplan-linf``). Only its law (and tie) is used.
    delta : float, default 1e-3
        Huber threshold on log-loss residuals (Hoffmann et al. use 1e-3).
    n_starts : int, optional
        Number of best-scoring grid points L-BFGS-B starts from (default 8; the grid has 4500
        points for Chinchilla). Pass the grid size to start from every point, as Hoffmann et al.
    n_bootstrap : int, default 0
        Bootstrap refits (runs resampled with replacement), each started from the full-data
        optimum and the 2 grid points that score best on the full data.
    random_seed : int, default 0
        Seed of the bootstrap resampling.

    Returns
    -------
    xarray.DataTree
        ``posterior`` with dims ``(chain=1, draw=B)``, ``B = n_bootstrap`` (or 1: the point
        estimate), holding the law parameters (natural names and ``log_`` amplitudes) and
        ``sigma`` (1.4826 x MAD of each refit's residuals); ``observed_data`` and
        ``constant_data`` as :func:`bayescale.fit`. Root attrs: ``bayescale_card`` (the card
        with a Normal likelihood), ``bayescale_runs``, ``bayescale_method = "mle"``,
        ``bayescale_point_estimate`` (JSON of the full-data estimate, its sigma and objective),
        ``bayescale_sampler`` (the optimiser settings).

    Raises
    ------
    InputError
        For a non-positive ``delta``, negative ``n_bootstrap`` or ``n_starts`` below 1.
    CardError
        For a card whose law has no point-fit parameterisation.

    References
    ----------
    Hoffmann et al. (2022), Appendix D.2; Besiroglu et al. (2024), Sec. 3 (arXiv:2404.10102).

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = point_fit(bs.datasets.simulate(sigma=0.001, random_seed=0))
    >>> round(float(fit.posterior["alpha"].item()), 2), round(float(fit.posterior["E"].item()), 2)
    (0.35, 1.8)
    """
    import xarray as xr
    from threadpoolctl import threadpool_limits


    card = load_card(card)
    param = _parameterisation(card)
    if not (np.isfinite(delta) and delta > 0):
        raise InputError(f"delta must be a positive number, got {delta!r}")
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 0:
        raise InputError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    starts = param.starts()
    n_starts = DEFAULT_N_STARTS if n_starts is None else n_starts
    if int(n_starts) != n_starts or n_starts < 1:
        raise InputError(f"n_starts must be a positive integer, got {n_starts!r}")
    n_starts = min(int(n_starts), len(starts))
    runs = load_runs(runs, n_params_required=len(param.names))
    log_n, log_d, y = np.log(runs.N), np.log(runs.D), np.log(runs.loss)
    rng = np.random.default_rng(random_seed)

    with threadpool_limits(limits=1):
        f0 = _score(starts, param=param, log_n=log_n, log_d=log_d, log_loss=y, delta=delta)
        starts = starts[np.argsort(f0, kind="stable")]
        x_hat, f_hat, ok_hat = _fit_once(
            starts, param=param, log_n=log_n, log_d=log_d, log_loss=y, delta=delta,
            n_starts=n_starts,
        )
        sigma_hat = _robust_sigma(param.kind, x_hat, log_n, log_d, y)
        boot_starts = np.vstack([x_hat[None, :], starts[:_BOOT_GRID_STARTS]])
        rows, sigmas, n_failed = [], [], 0
        for _ in range(int(n_bootstrap)):
            idx = rng.integers(0, len(y), size=len(y))
            sl = (log_n[idx], log_d[idx], y[idx])
            x_b, _, ok_b = _fit_once(
                boot_starts, param=param, log_n=sl[0], log_d=sl[1], log_loss=sl[2],
                delta=delta, n_starts=len(boot_starts),
            )
            n_failed += not ok_b
            rows.append(x_b)
            sigmas.append(_robust_sigma(param.kind, x_b, *sl))
    if not rows:
        rows, sigmas = [x_hat], [sigma_hat]

    nat = [_natural(param.kind, x) for x in rows]
    coords = {"chain": [0], "draw": np.arange(len(nat))}
    post = xr.Dataset(
        {
            **{k: (("chain", "draw"), np.array([[d[k] for d in nat]])) for k in nat[0]},
            "sigma": (("chain", "draw"), np.array([sigmas])),
        },
        coords=coords,
    )
    const_coords = {"run": np.arange(len(runs))}
    constant = xr.Dataset(
        {"N": ("run", runs.N), "D": ("run", runs.D), "C": ("run", runs.C)}, coords=const_coords
    )
    if "run" in runs.frame:
        constant["run_id"] = ("run", runs.frame["run"].astype(str).to_numpy())
    observed = xr.Dataset({"log_loss": ("run", y)}, coords=const_coords)
    tree = xr.DataTree.from_dict(
        {"posterior": post, "observed_data": observed, "constant_data": constant}
    )
    estimate = {
        **_natural(param.kind, x_hat),
        "sigma": sigma_hat,
        "objective": f_hat,
        "converged": ok_hat,
    }
    tree.attrs = {
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(),
        "creation_library": "bayescale",
        "creation_library_version": __version__,
        "bayescale_card": _normal_card(card).to_json(),
        "bayescale_runs": json.dumps(runs.provenance, sort_keys=True, default=str),
        "bayescale_method": "mle",
        "bayescale_point_estimate": json.dumps(estimate, sort_keys=True),
        "bayescale_sampler": json.dumps(
            {
                "sampler": "huber-lbfgsb",
                "delta": delta,
                "n_starts": n_starts,
                "grid_size": len(starts),
                "n_bootstrap": int(n_bootstrap),
                "n_bootstrap_not_converged": n_failed,
                "random_seed": random_seed,
            }
        ),
    }
    return tree
