"""Questions about the big run, as one number per posterior draw, and weighted intervals of them.

Three targets:

- ``loss``: the law's loss at a planned ``(N, D)`` (nats per token; the credible, not the
  predictive, quantity: run noise does not shrink with more small runs);
- ``nopt``: ``log10 N*`` at a compute budget (Hoffmann et al. 2022, Appendix D.2);
- ``compute``: ``log10 C`` of the smallest budget whose compute-optimal loss ``L*(C)`` reaches a
  target loss, per draw (``+inf`` for a draw whose floor ``E`` lies above the target).

Interval widths are in the target's own unit: nats for ``loss``, decades for the other two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayescale.answers.allocation import _LOG6, _affine, _loss_at_optimum, _require_optimum
from bayescale.answers.planning.view import PosteriorView
from bayescale.errors import InputError

KINDS = ("loss", "nopt", "compute")
UNITS = {"loss": "nats", "nopt": "decades of N", "compute": "decades of C"}
_LOG_C_RANGE = (np.log(1e12), np.log(1e40))


@dataclass(frozen=True)
class Target:
    """A question about the big run: ``kind`` and its arguments (see the module docstring)."""

    kind: str
    N: float | None = None
    D: float | None = None
    budget: float | None = None
    target_loss: float | None = None

    def describe(self) -> str:
        if self.kind == "loss":
            return f"law loss at N={self.N:.3g}, D={self.D:.3g}"
        if self.kind == "nopt":
            return f"log10 N* at C={self.budget:.3g} FLOPs"
        return f"log10 compute to reach loss {self.target_loss:g}"

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "unit": UNITS[self.kind], "description": self.describe()}
        for k in ("N", "D", "budget", "target_loss"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out


def _positive(name, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise InputError(f"{name} must be finite and > 0, got {value!r}")
    return v


def make_target(target, *, N=None, D=None, budget=None, target_loss=None) -> Target:
    """Validate a target question.

    Parameters
    ----------
    target : {"loss", "nopt", "compute"} or Target
        The question.
    N, D : float, optional
        Planned run, for ``loss``.
    budget : float, optional
        Compute budget in FLOPs, for ``nopt``.
    target_loss : float, optional
        Loss to reach, for ``compute``.

    Returns
    -------
    Target

    Raises
    ------
    InputError
        For an unknown kind or a missing or non-positive argument.
    """
    if isinstance(target, Target):
        return target
    if target not in KINDS:
        raise InputError(f"target must be one of {', '.join(KINDS)}, got {target!r}")
    if target == "loss":
        if N is None or D is None:
            raise InputError("target 'loss' needs the planned run's N and D (--N, --D)")
        return Target("loss", N=_positive("N", N), D=_positive("D", D))
    if target == "nopt":
        if budget is None:
            raise InputError("target 'nopt' needs a compute budget in FLOPs (--budget)")
        return Target("nopt", budget=_positive("budget", budget))
    if target_loss is None:
        raise InputError("target 'compute' needs a target loss (--target-loss)")
    return Target("compute", target_loss=_positive("target_loss", target_loss))


def target_values(view: PosteriorView, target: Target) -> np.ndarray:
    """The target per posterior draw, shape ``(S,)`` (``+inf`` where a loss is unreachable)."""
    if target.kind == "loss":
        return np.exp(view.log_loss_grid([target.N], [target.D])[0])
    _require_optimum(view.law)
    g, a = _affine(view.law, view.params)
    if target.kind == "nopt":
        return (g + a * (np.log(target.budget) - _LOG6)) / np.log(10.0)
    # compute: L*(C) decreases in C; bisect log C per draw.
    log_t = np.log(target.target_loss)

    def log_loss_opt(log_c):
        log_c6 = log_c - _LOG6
        log_n = g + a * log_c6
        return np.log(_loss_at_optimum(view.law, view.params, log_n, log_c6 - log_n))

    lo = np.full(view.n_draws, _LOG_C_RANGE[0])
    hi = np.full(view.n_draws, _LOG_C_RANGE[1])
    reachable = log_loss_opt(hi) <= log_t
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = log_loss_opt(mid) <= log_t
        hi = np.where(below, mid, hi)
        lo = np.where(below, lo, mid)
    return np.where(reachable, hi / np.log(10.0), np.inf)


def weighted_interval(values, log_w, *, ci_prob: float = 0.9) -> np.ndarray:
    """Equal-tailed weighted interval of ``values`` under each row of log weights.

    Parameters
    ----------
    values : numpy.ndarray
        Shape ``(S,)``.
    log_w : numpy.ndarray
        Unnormalised log weights, shape ``(M, S)`` (or ``(S,)``).
    ci_prob : float
        Interval probability.

    Returns
    -------
    numpy.ndarray
        ``(M, 2)`` lower and upper bounds (the smallest value whose weighted CDF reaches each
        tail probability).

    Examples
    --------
    >>> v = np.arange(1000.0)
    >>> weighted_interval(v, np.zeros(1000), ci_prob=0.9).tolist()
    [[49.0, 949.0]]
    """
    lw = np.atleast_2d(log_w)
    order = np.argsort(values, kind="stable")
    sv = np.asarray(values, dtype=float)[order]
    w = np.exp(lw[:, order] - lw.max(axis=1, keepdims=True))
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    tails = ((1.0 - ci_prob) / 2.0, (1.0 + ci_prob) / 2.0)
    idx = [np.minimum((cdf < q - 1e-12).sum(axis=1), sv.size - 1) for q in tails]
    return np.stack([sv[idx[0]], sv[idx[1]]], axis=1)


def ess(log_w) -> np.ndarray:
    """Kish effective sample size ``1 / sum(w^2)`` of each row of log weights."""
    lw = np.atleast_2d(log_w)
    w = np.exp(lw - lw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return 1.0 / (w * w).sum(axis=1)
