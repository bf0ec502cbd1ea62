"""Posterior predictions of a fitted scaling law at new ``(N, D)`` or ``(N, C)`` points.

Two intervals answer two questions. The *credible* interval (``ci``) is the uncertainty about the
law itself: the spread over posterior draws of the law's mean loss ``L(N, D)``. The *predictive*
interval (``pi``) is what one new training run will show: each draw's law plus one draw of the
card's noise on log loss (Normal or Student-t with the draw's ``sigma`` and ``nu``), so it is always
wider. ``P(loss < target)`` is computed exactly per draw from the noise CDF and averaged over draws.

Every query is also labelled by how far it lies outside the fitted runs, in decades of ``N``, ``D``
and ``C``: ``log10(x / max fitted)`` above the range, ``-log10(min fitted / x)`` below, 0 inside.

Work is done on ``(query, draw)`` blocks that fit in cache (on several threads for large
queries), and the order statistics a summary needs are selected rather than sorted
(:func:`bayescale.core.stats.median_interval`): 4000 draws x 10,000 queries cost about 2 CPU-seconds
instead of about 15 for the obvious xarray code (``benchmarks/throughput.py``).

References
----------
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models. arXiv:2203.15556.
Besiroglu, T. et al. (2024). Chinchilla Scaling: A replication attempt. arXiv:2404.10102.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr
from scipy import special

from bayescale.core.laws import FLOPS_PER_PARAM_TOKEN, Law
from bayescale.core.likelihood import draw_noise
from bayescale.core.stats import check_ci, median_interval
from bayescale.errors import InputError
from bayescale.fits.params import law_params
from bayescale.fits.view import per_family, read
from bayescale.scoring.discrepancy import as_tau, inflated_scale, paired_drift

CI_BOUNDS = ("lower", "upper")
_BLOCK_ELEMS = 1 << 18
"""Elements per ``(query, draw)`` work block (2 MB of float64: stays in cache)."""
_THREAD_ELEMS = 1 << 22
"""Work (queries x draws) above which blocks run on several threads."""


# --------------------------------------------------------------------------------------------
# Posterior parameters and queries
# --------------------------------------------------------------------------------------------


def _as_positive(name, value):
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric, got {value!r}") from None
    return a


def _check_positive(name, a):
    bad = ~(np.isfinite(a) & (a > 0))
    if bad.any():
        idx = np.flatnonzero(bad)
        shown = ", ".join(f"{i} ({a[i]:g})" for i in idx[:5])
        more = f" and {idx.size - 5} more" if idx.size > 5 else ""
        raise InputError(f"{name} must be finite and > 0; bad at query {shown}{more}")


def query_points(law: Law, *, N=None, D=None, C=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast a query to flat ``(N, D, C)`` arrays, completing the third from ``C = 6 N D``.

    See :func:`query_points_extra` for laws with extra inputs (``U``).

    Two-variable laws need exactly two of ``N``, ``D``, ``C``. Single-variable laws need their
    variable (``N`` for ``kaplan_n``, ``D`` for ``kaplan_d``); the others are NaN unless given.

    Parameters
    ----------
    law : Law
        The fitted law.
    N, D, C : array_like, optional
        Parameters, tokens and FLOPs; scalars or arrays that broadcast together.

    Returns
    -------
    tuple of numpy.ndarray
        Flat ``(N, D, C)`` of equal length.

    Raises
    ------
    InputError
        For a missing or surplus variable, shapes that do not broadcast, or values that are not
        finite and positive.

    Examples
    --------
    >>> from bayescale.core.laws import get_law
    >>> n, d, c = query_points(get_law("chinchilla"), N=[1e9, 2e9], C=6e19)
    >>> d.tolist()
    [10000000000.0, 5000000000.0]
    """
    n, d, c, _ = query_points_extra(law, N=N, D=D, C=C)
    return n, d, c


def query_points_extra(law: Law, *, N=None, D=None, C=None, **extra):
    """:func:`query_points` plus the law's extra inputs, broadcast and flattened with them.

    Parameters
    ----------
    law : Law
        The fitted law.
    N, D, C : array_like, optional
        As in :func:`query_points`.
    **extra : array_like, optional
        The law's extra inputs (``U=`` unique tokens for the data-constrained law); a missing one
        takes the law's default (``U = D``, no repetition). Inputs the law does not use are an
        error.

    Returns
    -------
    tuple
        ``(N, D, C, extra)`` with ``extra`` a dict of flat arrays (only the inputs given).

    Raises
    ------
    InputError
        As :func:`query_points`; also for ``U > D`` or an extra input the law does not read.

    Examples
    --------
    >>> from bayescale.core.laws import get_law
    >>> n, d, c, x = query_points_extra(get_law("data_constrained"), N=1e9, D=[2e10, 4e10], U=1e10)
    >>> x["U"].tolist(), (d / x["U"]).tolist()
    ([10000000000.0, 10000000000.0], [2.0, 4.0])
    """
    extra = {k: v for k, v in extra.items() if v is not None}
    unknown = sorted(set(extra) - set(law.extra_variables))
    if unknown:
        reads = ", ".join(law.variables)
        raise InputError(f"law {law.name!r} does not use {', '.join(unknown)} (it reads {reads})")
    given = {k: v for k, v in {"N": N, "D": D, "C": C}.items() if v is not None}
    if law.has_optimum and len(given) != 2:
        raise InputError(
            f"law {law.name!r} needs exactly two of N, D, C per query; got "
            f"{', '.join(given) or 'none'}"
        )
    if not law.has_optimum:
        var = law.variables[0]
        if var not in given and not {"N", "D", "C"} - {var} <= set(given):
            raise InputError(f"law {law.name!r} needs {var} (or the other two of N, D, C)")
        if len(given) == 3:
            raise InputError("give at most two of N, D, C per query")
    arrays = {k: _as_positive(k, v) for k, v in {**given, **extra}.items()}
    try:
        shaped = np.broadcast_arrays(*arrays.values())
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in arrays.items())
        raise InputError(f"query shapes do not broadcast: {shapes}") from None
    flat = {k: np.array(v, dtype=float).reshape(-1) for k, v in zip(arrays, shaped, strict=True)}
    size = next(iter(flat.values())).size if flat else 0
    if size == 0:
        raise InputError("empty query: give at least one point")
    for k, v in flat.items():
        _check_positive(k, v)
    nan = np.full(size, np.nan)
    n, d, c = flat.get("N", nan), flat.get("D", nan), flat.get("C", nan)
    if "C" in flat and "N" in flat:
        d = c / (FLOPS_PER_PARAM_TOKEN * n)
    elif "C" in flat and "D" in flat:
        n = c / (FLOPS_PER_PARAM_TOKEN * d)
    elif "N" in flat and "D" in flat:
        c = FLOPS_PER_PARAM_TOKEN * n * d
    extras = {k: flat[k] for k in extra}
    if "U" in extras:
        bad = extras["U"] > d * (1 + 1e-9)
        if bad.any():
            idx = np.flatnonzero(bad)
            shown = ", ".join(f"{i} (U {extras['U'][i]:g} > D {d[i]:g})" for i in idx[:5])
            raise InputError(f"unique tokens U must be <= tokens D; bad at query {shown}")
    return n, d, c, extras


def _blocks(n_query: int, n_draws: int) -> list[slice]:
    step = max(1, _BLOCK_ELEMS // max(n_draws, 1))
    return [slice(a, min(a + step, n_query)) for a in range(0, n_query, step)]


def run_blocks(work, n_query: int, n_draws: int) -> None:
    """Call ``work(block)`` for cache-sized slices of the queries, on up to 4 threads when large.

    NumPy releases the GIL in the ufuncs and partitions that dominate ``work``, and each call
    writes only its own slice of preallocated outputs, so results do not depend on threading.
    """
    blocks = _blocks(n_query, n_draws)
    workers = min(os.cpu_count() or 1, 4, len(blocks))
    if workers < 2 or n_query * n_draws < _THREAD_ELEMS:
        for blk in blocks:
            work(blk)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(work, blocks):
            pass


def loss_block(law: Law, params: dict, N, D, **extra) -> np.ndarray:
    """Law loss per query and draw, shape ``(len(N), S)`` (queries on rows, draws contiguous).

    Parameters
    ----------
    law : Law
        The law.
    params : dict of numpy.ndarray
        1-D draws of length ``S`` (see :func:`law_params`).
    N, D : numpy.ndarray
        1-D query inputs (NaN where the law ignores the variable).
    **extra : numpy.ndarray
        1-D extra inputs of the law (``U``), same length as ``N``.

    Returns
    -------
    numpy.ndarray
        Loss of shape ``(Q, S)``, a new array.

    Examples
    --------
    >>> from bayescale.core.laws import get_law
    >>> p = {"E": np.array([1.69]), "log_A": np.log([406.4]), "log_B": np.log([410.7]),
    ...      "alpha": np.array([0.34]), "beta": np.array([0.28])}
    >>> np.round(loss_block(get_law("chinchilla"), p, np.array([7e10]), np.array([1.4e12])), 3)
    array([[1.937]])
    """
    p = {k: v[None, :] for k, v in params.items()}
    n = np.asarray(N, dtype=float)[:, None]
    d = np.asarray(D, dtype=float)[:, None]
    if law.name == "chinchilla":
        # Sum the three terms in linear space: two exps per element instead of two logaddexps
        # and an exp (terms are exp of moderate log values, so nothing overflows).
        out = np.exp(p["log_A"] - p["alpha"] * np.log(n))
        out += np.exp(p["log_B"] - p["beta"] * np.log(d))
        out += p["E"]
        return out
    if law.name == "kaplan_n":
        d = np.ones_like(n)
    elif law.name == "kaplan_d":
        n = np.ones_like(d)
    shape = (n.shape[0], next(iter(params.values())).size)
    x = {k: np.asarray(v, dtype=float)[:, None] for k, v in extra.items() if v is not None}
    return np.exp(np.broadcast_to(law.log_loss(n, d, p, **x), shape))


def loss_draws(fit, N, D=None) -> np.ndarray:
    """Law loss at query points for every posterior draw, shape ``(S, Q)``.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit.
    N, D : array_like
        Query inputs, broadcast together (``D`` may be omitted for ``kaplan_n``, ``N`` is
        ignored by ``kaplan_d``).

    Returns
    -------
    numpy.ndarray
        Loss (nats per token), draws on rows.

    Examples
    --------
    >>> loss_draws(fit, [1e9, 1e10], [2e10, 2e11]).shape  # doctest: +SKIP
    (2000, 2)
    """
    law, params, _ = law_params(fit)
    if law.variables == ("D",):
        n, d, _ = query_points(law, D=N if D is None else D)
    else:
        n, d, _ = query_points(law, N=N, D=D)
    return loss_block(law, params, n, d).T


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------


def _noise_cdf(z, noise):
    if noise["family"] == "Normal":
        return special.ndtr(z)
    return special.stdtr(noise["nu"][None, :], z)


def _extrapolation(x, fitted) -> np.ndarray:
    """Decades beyond the fitted range of ``fitted`` (0 inside, NaN where unknown)."""
    f = np.asarray(fitted, dtype=float)
    f = f[np.isfinite(f) & (f > 0)]
    out = np.full(x.shape, np.nan)
    if f.size == 0:
        return out
    lo, hi = f.min(), f.max()
    ok = np.isfinite(x)
    xv = x[ok]
    out[ok] = np.where(xv > hi, np.log10(xv / hi), 0.0) - np.where(xv < lo, np.log10(lo / xv), 0.0)
    return out


@per_family("stack")
def predict(
    fit,
    *,
    N=None,
    D=None,
    C=None,
    U=None,
    target_loss=None,
    ci_prob: float = 0.9,
    ci_kind: str = "eti",
    random_seed=0,
    discrepancy="auto",
) -> xr.Dataset:
    """Posterior of the law's loss and the posterior predictive of a new run at query points.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit from :func:`bayescale.fit`.
    N, D, C : array_like, optional
        Any two of parameters, tokens and FLOPs (broadcast together); the third follows from
        ``C = 6 N D``. Single-variable laws need only their variable.
    U : array_like, optional
        Unique tokens, for laws that read them (the data-constrained law): the run repeats its
        ``U`` unique tokens for ``D / U`` epochs. Default: every token unique (``U = D``).
    target_loss : float, optional
        Adds ``p_below_target`` (probability that a new run's loss is below it, exact over the
        noise) and ``p_law_below_target`` (probability that the law's loss is below it).
    ci_prob : float, default 0.9
        Probability of the credible and predictive intervals.
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density intervals.
    random_seed : int or numpy.random.Generator, default 0
        Seed of the noise draws of the predictive interval: one draw per posterior draw, shared
        by all queries, so each query's predictive draws are exact and the interval is smooth
        along a query grid.
    discrepancy : float or Discrepancy, optional
        Extrapolation discrepancy ``tau`` (sd of log loss per decade of compute beyond the fitted
        runs; see :mod:`bayescale.scoring.discrepancy`). Each draw's noise scale becomes
        ``sqrt(sigma**2 + (tau * Delta)**2)`` with ``Delta = max(0, extrapolation_C)``, in ``pi``
        and ``p_below_target`` (a Student-t card keeps its family and ``nu``; only the scale
        grows). ``ci`` is unchanged: it is the law's uncertainty under the law. None or 0: no
        discrepancy. ``"auto"`` (default): the fit's own calibrated ``tau`` (a law ensemble
        learns one on rolling splits of its runs), none for a single card.

    Returns
    -------
    xarray.Dataset
        Dims ``query`` and ``ci_bound`` (``lower``, ``upper``). Variables ``N``, ``D``, ``C``,
        ``median`` and ``mean`` (of the law's loss over draws), ``ci`` (credible interval of the
        law's loss), ``pi`` (predictive interval of one new run), ``extrapolation_N``,
        ``extrapolation_D``, ``extrapolation_C`` (decades outside the fitted runs) and, with a
        target, ``p_below_target`` and ``p_law_below_target``; ``validated`` (whether
        ``extrapolation_C`` is within the distance the fit's rolling backtests validated). Attrs
        ``ci_prob``, ``ci_kind``, ``card`` (``"ensemble"`` for a law ensemble), ``law``,
        ``n_draws``, ``random_seed``, ``validated_decades`` (0 for a single card: no rolling
        backtest validated any extrapolation), ``target_loss`` (when given) and
        ``discrepancy_tau`` (when a discrepancy is used).

    Raises
    ------
    InputError
        For a bad query (see :func:`query_points`), target or interval option, or a positive
        discrepancy with queries of unknown compute.

    References
    ----------
    Hoffmann et al. (2022), Eq. (2); Besiroglu et al. (2024), Sec. 3.

    Examples
    --------
    >>> ds = predict(fit, N=7e10, D=1.4e12, target_loss=2.0)  # doctest: +SKIP
    >>> float(ds["median"][0]), ds["ci"].sel(ci_bound="upper").item()  # doctest: +SKIP
    (1.97, 1.99)
    """
    if read(fit).is_accuracy:  # an accuracy fit: bayescale.answers.accuracy
        raise InputError("an accuracy fit: use bayescale.predict_accuracy")
    check_ci(ci_prob, ci_kind)
    if target_loss is not None:
        try:
            target_loss = float(target_loss)
        except (TypeError, ValueError):
            raise InputError(f"target_loss must be a number, got {target_loss!r}") from None
        if not (np.isfinite(target_loss) and target_loss > 0):
            raise InputError(f"target_loss must be finite and > 0, got {target_loss!r}")
    view = read(fit)
    tau = as_tau(discrepancy, fit)
    law, params, noise = law_params(fit)
    n, d, c, extra = query_points_extra(law, N=N, D=D, C=C, U=U)
    q = n.size
    s = noise["sigma"].size
    runs = fit["constant_data"]
    extrapolation = {
        var: _extrapolation(x, runs[var].to_numpy() if var in runs else np.array([]))
        for var, x in (("N", n), ("D", d), ("C", c))
    }
    # a law ensemble whose runs bend away from its laws drifts beyond them (lack of fit)
    drift = paired_drift(*view.drift, s) if discrepancy == "auto" else None
    delta = None
    if tau > 0 or drift is not None:
        delta = np.maximum(extrapolation["C"], 0.0)
        if np.isnan(delta).any():
            bad = np.flatnonzero(np.isnan(delta))[:5].tolist()
            raise InputError(
                f"discrepancy needs the compute C of every query and of the fitted runs; "
                f"unknown at query {bad}"
            )
    # One noise draw per posterior draw, shared by all queries (common random numbers): each
    # query's predictive draws are exact draws of its posterior predictive, intervals vary
    # smoothly along a query grid, and no (query x draw) random numbers are needed.
    rng = np.random.default_rng(random_seed)
    eps = draw_noise(rng, (s,), family=noise["family"], nu=noise["nu"])
    # Student-t draws with nu near or below 1 (fits of heavy-tailed runs) can exceed the float
    # range once exponentiated: clip at e^700, far outside any interval reported.
    noise_factor = np.exp(np.minimum(noise["sigma"] * eps, 700.0))[None, :]
    sigma = noise["sigma"][None, :]

    median = np.empty(q)
    mean = np.empty(q)
    ci = np.empty((q, 2))
    pi = np.empty((q, 2))
    p_run = np.empty(q) if target_loss is not None else None
    p_law = np.empty(q) if target_loss is not None else None
    def work(blk):
        loss = loss_block(law, params, n[blk], d[blk], **{k: v[blk] for k, v in extra.items()})
        mean[blk] = loss.mean(axis=1)
        scale = sigma if delta is None else inflated_scale(sigma, tau, delta[blk, None])
        shift = 0.0 if drift is None else drift[None, :] * delta[blk, None]
        if target_loss is not None:
            p_law[blk] = (loss < target_loss).mean(axis=1)
            z = (np.log(target_loss) - np.log(loss) - shift) / scale
            p_run[blk] = _noise_cdf(z, noise).mean(axis=1)
        new_run = loss * (
            noise_factor if delta is None
            else np.exp(np.minimum(shift + scale * eps[None, :], 700.0))
        )
        # Both arrays are block temporaries: select their order statistics in place.
        pi[blk] = median_interval(
            new_run, ci_prob=ci_prob, ci_kind=ci_kind, axis=-1, overwrite_input=True
        )[1]
        median[blk], ci[blk] = median_interval(
            loss, ci_prob=ci_prob, ci_kind=ci_kind, axis=-1, overwrite_input=True
        )

    run_blocks(work, q, s)

    data = {
        "N": ("query", n),
        "D": ("query", d),
        "C": ("query", c),
        **{k: ("query", v) for k, v in extra.items()},
        "median": ("query", median),
        "mean": ("query", mean),
        "ci": (("query", "ci_bound"), ci),
        "pi": (("query", "ci_bound"), pi),
    }
    if target_loss is not None:
        data["p_below_target"] = ("query", p_run)
        data["p_law_below_target"] = ("query", p_law)
    for var in ("N", "D", "C"):
        data[f"extrapolation_{var}"] = ("query", extrapolation[var])
    validated = view.validated_decades
    with np.errstate(invalid="ignore"):
        data["validated"] = ("query", np.nan_to_num(extrapolation["C"], nan=np.inf)
                             <= validated + 1e-9)
    attrs = {
        "ci_prob": float(ci_prob),
        "ci_kind": ci_kind,
        "validated_decades": float(validated),
        "card": view.name,
        "law": law.name,
        "n_draws": int(s),
        "random_seed": random_seed if isinstance(random_seed, int) else str(random_seed),
    }
    if target_loss is not None:
        attrs["target_loss"] = target_loss
    if tau > 0 or (discrepancy is not None and not isinstance(discrepancy, str)):
        attrs["discrepancy_tau"] = tau
    if view.lack_of_fit is not None:
        attrs["lack_of_fit"] = bool(view.lack_of_fit["flag"])
    if drift is not None:
        attrs["drift_mean"], attrs["drift_sd"] = view.drift
    return xr.Dataset(
        data, coords={"query": np.arange(q), "ci_bound": list(CI_BOUNDS)}, attrs=attrs
    )


def prediction_table(ds: xr.Dataset):
    """One row per query of a :func:`predict` result, as a DataFrame.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`predict`.

    Returns
    -------
    pandas.DataFrame
        Columns ``N, D, C, median, mean, ci_lower, ci_upper, pi_lower, pi_upper``, then
        ``p_below_target`` and ``p_law_below_target`` when a target was given, then
        ``extrapolation_N, extrapolation_D, extrapolation_C`` and ``validated`` (within the
        extrapolation distance the fit's rolling backtests validated). ``df.attrs`` carries the
        Dataset's attrs (``ci_prob``, ``ci_kind``, ``card``, ...).

    Examples
    --------
    >>> prediction_table(predict(fit, N=7e10, D=1.4e12)).columns[:4].tolist()  # doctest: +SKIP
    ['N', 'D', 'C', 'median']
    """
    import pandas as pd

    cols = {k: ds[k].to_numpy() for k in ("N", "D", "C", "median", "mean")}
    for var in ("ci", "pi"):
        for bound in CI_BOUNDS:
            cols[f"{var}_{bound}"] = ds[var].sel(ci_bound=bound).to_numpy()
    for k in ("p_below_target", "p_law_below_target"):
        if k in ds:
            cols[k] = ds[k].to_numpy()
    for var in ("N", "D", "C"):
        cols[f"extrapolation_{var}"] = ds[f"extrapolation_{var}"].to_numpy()
    if "validated" in ds:
        cols["validated"] = ds["validated"].to_numpy()
    frame = pd.DataFrame(cols, index=pd.RangeIndex(ds.sizes["query"], name="query"))
    frame.attrs = dict(ds.attrs)
    return frame
