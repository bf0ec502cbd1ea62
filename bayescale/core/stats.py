"""Posterior summaries over draws: equal-tailed and highest-density intervals, fast.

ArviZ's vocabulary is kept: ``ci_prob`` is the interval probability and ``ci_kind`` is ``"eti"``
(equal-tailed) or ``"hdi"`` (highest density). Always pass both explicitly.
"""

from __future__ import annotations

import numpy as np

from bayescale.errors import InputError

CI_KINDS = ("eti", "hdi")


def check_ci(ci_prob: float, ci_kind: str) -> None:
    """Raise ``ValueError`` unless ``0 < ci_prob < 1`` and ``ci_kind`` is ``eti`` or ``hdi``."""

    if not 0 < ci_prob < 1:
        raise InputError(f"ci_prob must be strictly between 0 and 1, got {ci_prob!r}")
    if ci_kind not in CI_KINDS:
        raise InputError(f"ci_kind must be one of {', '.join(CI_KINDS)}, got {ci_kind!r}")


def _lerp(a, b, t):
    """Linear interpolation as :func:`numpy.quantile` does it (exact at both ends)."""
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _select(x, ks, overwrite=False):
    """Copy of ``x`` with its order statistics at positions ``ks`` (sorted) of the last axis.

    Divide and conquer with single-``kth`` in-place partitions (each one takes NumPy's SIMD
    selection path, which a multi-``kth`` :func:`numpy.partition` does not), so selecting ``m``
    order statistics costs about ``log2(m) + 1`` passes over the draws.
    """
    contiguous = isinstance(x, np.ndarray) and x.dtype == float and x.flags.c_contiguous
    y = x if overwrite and contiguous else np.array(x, dtype=float, order="C")

    def split(lo, hi, ks):
        if not ks:
            return
        m = len(ks) // 2
        y[..., lo:hi].partition(ks[m] - lo, axis=-1)
        split(lo, ks[m], ks[:m])
        split(ks[m] + 1, hi, ks[m + 1 :])

    split(0, y.shape[-1], ks)
    return y


def _order_stats(x, positions, overwrite=False):
    """Order statistics of ``x`` (last axis) at ``positions``, as ``{position: array}``.

    Positions right after another wanted position are read as the minimum of the unordered
    stretch that follows it after selection, so a quantile's interpolation neighbour costs a
    ``min`` instead of another partition.
    """
    n = x.shape[-1]
    wanted = sorted({int(k) for k in positions})
    base = sorted(_bases(wanted))
    y = _select(x, base, overwrite)
    out = {k: y[..., k] for k in base}
    for i, k in enumerate(base):
        if k + 1 in wanted and k + 1 not in out:
            stop = base[i + 1] + 1 if i + 1 < len(base) else n
            out[k + 1] = y[..., k + 1 : stop].min(axis=-1)
    return out


def _bases(wanted):
    """Positions selected by partition: every other one along a run of consecutive positions."""
    bases, prev_base = set(), None
    for k in wanted:
        if prev_base is not None and k == prev_base + 1:
            prev_base = None  # read as a neighbour of its predecessor
            continue
        bases.add(k)
        prev_base = k
    return bases


def _quantiles_last(x, probs, transform=None, overwrite=False):
    """Quantiles (NumPy's default ``linear`` method) along the last axis, by partial selection.

    Only the order statistics the quantiles need are selected (see :func:`_select`): the same
    values as :func:`numpy.quantile`, several times faster on large arrays. ``transform``
    (monotone increasing, e.g. ``np.exp``) is applied to the selected order statistics before
    interpolating, so the result equals the quantiles of ``transform(x)`` without transforming
    every draw. Returns shape ``x.shape[:-1] + (len(probs),)``.
    """
    return _quantiles_monotone(x, probs, [(transform or (lambda v: v), True)], overwrite)[0]


def _quantiles_monotone(x, probs, funcs, overwrite=False):
    """Quantiles of several monotone transforms of ``x`` (last axis) from one selection.

    ``funcs`` is a sequence of ``(f, increasing)``; the quantiles of ``f(x)`` at ``probs`` follow
    from the order statistics of ``x`` (mirrored when ``f`` is decreasing), so one partial
    selection serves them all. Each result equals :func:`numpy.quantile` of ``f(x)``. Returns a
    list of arrays of shape ``x.shape[:-1] + (len(probs),)``.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    h = (n - 1) * np.asarray(probs, dtype=float)
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    pos = []
    for _, increasing in funcs:
        pos.append((lo, hi) if increasing else (n - 1 - lo, n - 1 - hi))
    wanted = [int(k) for pair in pos for arr in pair for k in arr]
    stats = _order_stats(x, wanted, overwrite)
    out = []
    for (f, _), (pa, pb) in zip(funcs, pos, strict=True):
        a = np.stack([stats[int(k)] for k in pa], axis=-1)
        b = np.stack([stats[int(k)] for k in pb], axis=-1)
        out.append(_lerp(f(a), f(b), h - lo))
    return out


def _hdi_sorted(s, ci_prob):
    """Shortest interval holding ``ci_prob`` of sorted draws ``s`` (last axis): ``(..., 2)``."""
    n = s.shape[-1]
    k = int(np.floor(ci_prob * n))
    widths = s[..., k:] - s[..., : n - k]
    i = np.argmin(widths, axis=-1)[..., None]
    lo = np.take_along_axis(s, i, axis=-1)[..., 0]
    hi = np.take_along_axis(s, i + k, axis=-1)[..., 0]
    return np.stack([lo, hi], axis=-1)


def median_interval(
    samples, *, ci_prob: float, ci_kind: str, axis: int = 0, transform=None,
    overwrite_input: bool = False,
):
    """Median and credible interval of ``samples`` along ``axis`` in one selection pass.

    Parameters
    ----------
    samples : array_like
        Draws; summarised along ``axis``.
    ci_prob : float
        Interval probability in (0, 1).
    ci_kind : {"eti", "hdi"}
        Equal-tailed or highest-density interval.
    axis : int, default 0
        Axis of the draws.
    transform : callable, optional
        Monotone increasing function (such as ``np.exp``); the summaries are those of
        ``transform(samples)``, computed by transforming only the selected order statistics (ETI)
        or the sorted draws (HDI). Lets log-space draws be summarised on the natural scale.
    overwrite_input : bool, default False
        Allow reordering ``samples`` in place (as :func:`numpy.median` does) to save a copy;
        only when ``axis`` is the last one and ``samples`` is a C-contiguous float array.

    Returns
    -------
    tuple of numpy.ndarray
        ``(median, interval)`` with shapes ``samples.shape`` without ``axis``, and the same plus a
        trailing axis of length 2 (lower, upper).

    Examples
    --------
    >>> med, ci = median_interval(np.log(np.arange(1.0, 102.0)), ci_prob=0.9, ci_kind="eti",
    ...                           transform=np.exp)
    >>> round(float(med), 6), np.round(ci, 6).tolist()
    (51.0, [6.0, 96.0])
    """
    check_ci(ci_prob, ci_kind)
    x = np.moveaxis(np.asarray(samples, dtype=float), axis, -1)
    if ci_kind == "eti":
        q = _quantiles_last(x, [0.5, (1 - ci_prob) / 2, (1 + ci_prob) / 2], transform,
                            overwrite_input)
        return q[..., 0], q[..., 1:]
    if overwrite_input and x.flags.c_contiguous and x.dtype == float:
        x.sort(axis=-1)
        s = x
    else:
        s = np.sort(x, axis=-1)
    if transform is not None:
        s = transform(s)
    return _quantiles_last(s, [0.5])[..., 0], _hdi_sorted(s, ci_prob)


def interval(samples, *, ci_prob: float, ci_kind: str, axis: int = 0) -> np.ndarray:
    """Credible interval of ``samples`` along ``axis``.

    Equal-tailed intervals use partial selection of the two order statistics they need (the same
    values as :func:`numpy.quantile`, several times faster on large arrays).

    Parameters
    ----------
    samples : array_like
        Draws; the interval is taken along ``axis``.
    ci_prob : float
        Interval probability in (0, 1).
    ci_kind : {"eti", "hdi"}
        Equal-tailed or highest-density (the shortest interval holding ``ci_prob`` of the draws).
    axis : int, default 0
        Axis of the draws.

    Returns
    -------
    numpy.ndarray
        Shape ``samples.shape`` without ``axis``, plus a trailing axis of length 2 (lower, upper).

    References
    ----------
    Hyndman, R. J. (1996). Computing and graphing highest density regions. Am. Stat. 50(2).

    Examples
    --------
    >>> x = np.arange(101.0)
    >>> np.round(interval(x, ci_prob=0.9, ci_kind="eti"), 6).tolist()
    [5.0, 95.0]
    >>> interval(x, ci_prob=0.9, ci_kind="hdi").tolist()
    [0.0, 90.0]
    """
    check_ci(ci_prob, ci_kind)
    x = np.moveaxis(np.asarray(samples, dtype=float), axis, -1)
    if ci_kind == "eti":
        return _quantiles_last(x, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
    return _hdi_sorted(np.sort(x, axis=-1), ci_prob)


def interval_summary(samples, *, ci_prob: float, ci_kind: str) -> dict:
    """``{"median", "lo", "hi"}`` of 1-D draws, as plain floats (the JSON contract of the CLI).

    Examples
    --------
    >>> s = interval_summary(np.arange(101.0), ci_prob=0.9, ci_kind="eti")
    >>> {k: round(v, 6) for k, v in s.items()}
    {'median': 50.0, 'lo': 5.0, 'hi': 95.0}
    """
    x = np.asarray(samples, dtype=float).reshape(-1)
    lo, hi = interval(x, ci_prob=ci_prob, ci_kind=ci_kind)
    return {"median": float(np.median(x)), "lo": float(lo), "hi": float(hi)}


def column_label(ci_prob: float, ci_kind: str) -> str:
    """Label carrying the interval probability, e.g. ``"eti90"`` (used in column names).

    Examples
    --------
    >>> column_label(0.9, "eti"), column_label(0.945, "hdi")
    ('eti90', 'hdi94.5')
    """
    pct = round(ci_prob * 100, 6)
    return f"{ci_kind}{int(pct) if pct == int(pct) else pct:g}"
