"""Posterior summaries over draws: equal-tailed and highest-density intervals, fast.

ArviZ's vocabulary is kept: ``ci_prob`` is the interval probability and ``ci_kind`` is ``"eti"``
(equal-tailed) or ``"hdi"`` (highest density). Always pass both explicitly.
"""

from __future__ import annotations

import numpy as np

CI_KINDS = ("eti", "hdi")


def check_ci(ci_prob: float, ci_kind: str) -> None:
    """Raise ``ValueError`` unless ``0 < ci_prob < 1`` and ``ci_kind`` is ``eti`` or ``hdi``."""
    from bayescale.errors import InputError

    if not 0 < ci_prob < 1:
        raise InputError(f"ci_prob must be strictly between 0 and 1, got {ci_prob!r}")
    if ci_kind not in CI_KINDS:
        raise InputError(f"ci_kind must be one of {', '.join(CI_KINDS)}, got {ci_kind!r}")


def interval(samples, *, ci_prob: float, ci_kind: str, axis: int = 0) -> np.ndarray:
    """Credible interval of ``samples`` along ``axis``.

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
    x = np.moveaxis(np.asarray(samples, dtype=float), axis, 0)
    if ci_kind == "eti":
        q = np.quantile(x, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
        return np.moveaxis(q, 0, -1)
    n = x.shape[0]
    s = np.sort(x, axis=0)
    k = int(np.floor(ci_prob * n))
    widths = s[k:] - s[: n - k]
    i = np.argmin(widths, axis=0)
    lo = np.take_along_axis(s, i[None], axis=0)[0]
    hi = np.take_along_axis(s, (i + k)[None], axis=0)[0]
    return np.stack([lo, hi], axis=-1)


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
