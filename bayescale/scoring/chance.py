"""Is there signal above chance? A test from the ladder alone, before any law is trusted.

Small models score at chance on many benchmarks (MMLU below a few billion parameters, most
BIG-bench tasks): a sigmoid fitted to such a ladder is a line through noise, and its extrapolation
says nothing. The rule here decides, from the runs alone, whether a task's accuracy has left its
floor by more than the evaluation's binomial noise would explain.

Rule
----
Take the ``k = max(min_runs, ceil(top_fraction * n_runs))`` runs with the most compute (the
largest of the ladder) and the median ``a_top`` of their accuracies. The task shows signal above
chance if and only if

.. math::

    a_{top} - F > z \\cdot \\sqrt{\\max\\{F (1 - F),\\; a_{top} (1 - a_{top})\\} / n},

with ``F`` the floor, ``n`` the evaluation examples and ``z = 3`` by default: the largest runs
clear the floor by more than three binomial standard deviations of a *single* evaluation (no
credit is taken for having several runs, whose evaluations share the same items). The variance is
the larger of the binomial variances at the floor and at ``a_top``, so a floor of 0 (exact-match
tasks) still demands several correct answers: one correct answer out of 32 is not signal. With
the number of examples unknown the test cannot separate signal from evaluation noise, and it
demands ``a_top - F > min_excess`` instead (default 0.05).

A task without signal is not extrapolated: :func:`bayescale.answers.accuracy.predict_accuracy`
returns the flag ``"no signal above chance: not extrapolated"`` and no interval.

References
----------
Gadre, S. Y. et al. (2024). arXiv:2403.08540, Sec. 5 (downstream error is averaged over a
subset of tasks on which their models score above chance).
Krajewski, J. et al. (2025). arXiv:2512.08894 (tasks near chance do not follow a scaling law).
Grattafiori, A. et al. (2024). The Llama 3 Herd of Models. arXiv:2407.21783, Sec. 3.2.1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from bayescale.errors import InputError

NO_SIGNAL = "no signal above chance: not extrapolated"
"""The flag of a task whose largest runs do not clear the floor."""


@dataclass(frozen=True)
class ChanceTest:
    """Outcome of :func:`chance_signal`.

    Attributes
    ----------
    signal : bool
        Whether the largest runs clear the floor by more than the rule's margin.
    message : str
        ``"signal above chance"`` or :data:`NO_SIGNAL` with the numbers.
    floor : float
        Chance accuracy ``F``.
    top_accuracy : float
        Median accuracy of the ``n_top`` runs with the most compute.
    excess : float
        ``top_accuracy - floor``.
    noise_sd : float or None
        Binomial standard deviation of one evaluation (None when ``n_examples`` is unknown).
    z : float or None
        ``excess / noise_sd``.
    margin : float
        The excess the rule demands (``z_crit * noise_sd``, or ``min_excess``).
    n_top : int
        Runs the test used.
    n_examples : int or None
        Evaluation examples.
    """

    signal: bool
    message: str
    floor: float
    top_accuracy: float
    excess: float
    noise_sd: float | None
    z: float | None
    margin: float
    n_top: int
    n_examples: int | None

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return asdict(self)


def chance_signal(
    accuracy,
    C,
    *,
    floor: float,
    n_examples: int | None,
    top_fraction: float = 0.1,
    min_runs: int = 3,
    z: float = 3.0,
    min_excess: float = 0.05,
) -> ChanceTest:
    """Whether a task's largest runs score above chance by more than binomial noise explains.

    See the module docstring for the rule.

    Parameters
    ----------
    accuracy : array_like
        Accuracy of each run, in [0, 1].
    C : array_like
        Compute of each run (FLOPs), which orders the ladder.
    floor : float
        Chance accuracy in [0, 1).
    n_examples : int or None
        Evaluation examples of the task; None: the ``min_excess`` rule.
    top_fraction : float, default 0.1
        Share of runs, by compute, that the test looks at.
    min_runs : int, default 3
        Fewest runs it looks at.
    z : float, default 3.0
        Binomial standard deviations the excess must exceed.
    min_excess : float, default 0.05
        Excess demanded when ``n_examples`` is None.

    Returns
    -------
    ChanceTest

    Raises
    ------
    InputError
        For accuracies outside [0, 1], mismatched or empty inputs, a floor outside [0, 1) or a
        bad option.

    References
    ----------
    Gadre et al. (2024), Sec. 5; Krajewski et al. (2025).

    Examples
    --------
    >>> C = np.geomspace(1e17, 1e21, 10)
    >>> chance_signal(np.linspace(0.25, 0.6, 10), C, floor=0.25, n_examples=1000).signal
    True
    >>> chance_signal(np.full(10, 0.26), C, floor=0.25, n_examples=1000).message[:22]
    'no signal above chance'
    """
    acc = np.asarray(accuracy, dtype=float).ravel()
    c = np.asarray(C, dtype=float).ravel()
    if acc.size == 0 or acc.size != c.size:
        raise InputError(f"need one compute per accuracy; got {acc.size} and {c.size} values")
    if not np.all(np.isfinite(acc)) or np.any((acc < 0) | (acc > 1)):
        raise InputError("accuracies must be finite numbers in [0, 1]")
    if not (0 <= floor < 1):
        raise InputError(f"floor must be in [0, 1); got {floor!r}")
    if not (0 < top_fraction <= 1) or int(min_runs) < 1 or not z > 0 or not min_excess >= 0:
        raise InputError("top_fraction in (0, 1], min_runs >= 1, z > 0 and min_excess >= 0")
    k = min(acc.size, max(int(min_runs), math.ceil(top_fraction * acc.size)))
    order = np.argsort(c, kind="stable")
    top = float(np.median(acc[order[-k:]]))
    excess = top - float(floor)
    if n_examples is None:
        sd, zval, margin = None, None, float(min_excess)
    else:
        n = int(n_examples)
        if n < 1:
            raise InputError(f"n_examples must be a positive integer; got {n_examples!r}")
        var = max(floor * (1 - floor), top * (1 - top)) / n
        sd = math.sqrt(var)
        margin = z * sd
        zval = excess / sd if sd > 0 else (math.inf if excess > 0 else 0.0)
    signal = excess > margin
    detail = (
        f"median accuracy of the {k} largest runs {top:.3f} vs floor {floor:.3f}: excess "
        f"{excess:+.3f}, needed > {margin:.3f}"
        + (f" ({z:g} binomial sd on {n_examples} examples)" if sd is not None else "")
    )
    message = ("signal above chance: " if signal else f"{NO_SIGNAL} (") + detail
    if not signal:
        message += ")"
    return ChanceTest(
        signal=bool(signal),
        message=message,
        floor=float(floor),
        top_accuracy=top,
        excess=excess,
        noise_sd=sd,
        z=zval,
        margin=margin,
        n_top=k,
        n_examples=None if n_examples is None else int(n_examples),
    )
