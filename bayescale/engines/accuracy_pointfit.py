"""Point fits of accuracy laws: the baselines the field uses, for backtests to compare against.

- **Direct** (Krajewski et al. 2025; Gadre et al. 2024 fit an exponential of loss): least squares of
  ``acc = F + (c - F) sigmoid(k (log10 C - m))`` on the training runs.
- **Two-step, plug-in** (Grattafiori et al. 2024, Sec. 3.2.1; Bhagia et al. 2024): step 1 a point
  fit of the ``via`` loss from N and D (the Huber fit of
  :func:`bayescale.engines.pointfit.point_fit`, Hoffmann et al. 2022), step 2 least squares of
  ``acc = F + (c - F) sigmoid(k (m - loss))`` on the runs' observed losses; a planned run's
  accuracy is step 2 at step 1's predicted loss. No uncertainty is carried from step to step,
  which is what these baselines are for.

The least squares start from a small grid (midpoint at the input's quantiles, three slopes, three
ceilings) and keep the best of the local optima; ``c`` lies in ``(F, 1]`` and ``k > 0`` through
their transforms.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from bayescale.engines.pointfit import point_fit
from bayescale.errors import InputError
from bayescale.scoring.forecast import fit_predictive

__all__ = ["fit_sigmoid", "plug_in_two_step", "direct_point"]


def fit_sigmoid(x, acc, *, floor: float, increasing: bool) -> dict:
    """Least-squares bounded sigmoid ``F + (c - F) sigmoid(s k (x - m))``, ``s = +1`` or ``-1``.

    Parameters
    ----------
    x, acc : array_like
        Inputs and accuracies of the training runs.
    floor : float
        Chance accuracy ``F``.
    increasing : bool
        Accuracy rises with ``x`` (``log10 C``) or falls (a loss).

    Returns
    -------
    dict
        ``ceiling``, ``k``, ``midpoint``, ``sign``, ``floor``, ``rss``.

    Examples
    --------
    >>> x = np.linspace(-3, 3, 25)
    >>> y = 0.25 + 0.6 / (1 + np.exp(-1.5 * x))
    >>> fit = fit_sigmoid(x, y, floor=0.25, increasing=True)
    >>> round(fit["ceiling"], 3), round(fit["k"], 3), abs(round(fit["midpoint"], 3))
    (0.85, 1.5, 0.0)
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(acc, dtype=float)
    if x.size < 3:
        raise InputError(f"a sigmoid point fit needs at least 3 runs, got {x.size}")
    sign = 1.0 if increasing else -1.0
    room = 1.0 - floor

    def model(theta, xs):
        c = floor + room * special.expit(theta[0])
        return floor + (c - floor) * special.expit(sign * np.exp(theta[1]) * (xs - theta[2]))

    def resid(theta):
        return model(theta, x) - y

    spread = max(float(np.ptp(x)), 1e-6)
    best = None
    for m in np.quantile(x, [0.1, 0.5, 0.9, 1.0]) + sign * np.array([0, 0, 0, 0.5 * spread]):
        for k in (0.5, 2.0, 8.0):
            for c in (-1.0, 1.0, 3.0):
                start = np.array([c, np.log(k / spread), m])
                res = optimize.least_squares(resid, start, method="trf")
                if best is None or res.cost < best.cost:
                    best = res
    theta = best.x
    return {"ceiling": float(floor + room * special.expit(theta[0])),
            "k": float(np.exp(theta[1])), "midpoint": float(theta[2]), "sign": sign,
            "floor": float(floor), "rss": float(2 * best.cost)}


def sigmoid_at(fit: dict, x) -> np.ndarray:
    """The fitted sigmoid at inputs ``x``."""
    x = np.asarray(x, dtype=float)
    z = fit["sign"] * fit["k"] * (x - fit["midpoint"])
    return fit["floor"] + (fit["ceiling"] - fit["floor"]) * special.expit(z)


def direct_point(train_C, train_acc, test_C, *, floor: float) -> np.ndarray:
    """Accuracy at ``test_C`` from the least-squares sigmoid of accuracy on ``log10 C``."""
    fit = fit_sigmoid(np.log10(train_C), train_acc, floor=floor, increasing=True)
    return sigmoid_at(fit, np.log10(test_C))


def plug_in_two_step(train_runs, train_loss, train_acc, test_N, test_D, *, floor: float,
                     card: str = "chinchilla") -> tuple[np.ndarray, np.ndarray]:
    """The Llama 3 two-step point forecast: ``(accuracy, predicted loss)`` at ``(N, D)``.

    Parameters
    ----------
    train_runs : Runs
        The training runs with the ``via`` loss as their loss (step 1).
    train_loss, train_acc : array_like
        Observed ``via`` losses and accuracies of the training runs (step 2).
    test_N, test_D : array_like
        The planned runs.
    floor : float
        Chance accuracy.
    card : str, default "chinchilla"
        Loss law of step 1.
    """
    step1 = point_fit(train_runs, card=card)
    mu, *_ = fit_predictive(step1, np.asarray(test_N, float), np.asarray(test_D, float))
    loss = np.exp(np.asarray(mu)[0])
    link = fit_sigmoid(train_loss, train_acc, floor=floor, increasing=False)
    return sigmoid_at(link, loss), loss
