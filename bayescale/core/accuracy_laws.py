"""Accuracy laws as pure functions: a bounded sigmoid link between a floor and a ceiling.

Every function takes NumPy arrays or PyTensor tensors (the array module is chosen from the
arguments, as in :mod:`bayescale.core.laws`), so the same code builds the PyMC model and evaluates
posterior draws.

The link is

.. math::

    \\mathrm{acc}(x) = F + (c - F)\\,\\sigma\\bigl(k (x_0 - x)\\bigr),
    \\qquad \\sigma(z) = 1 / (1 + e^{-z}),

with ``F`` the task's floor (chance accuracy, data), ``c`` the ceiling (``F < c <= 1``), ``k > 0``
the slope and ``x_0`` the midpoint, where accuracy is halfway between floor and ceiling. The
two-step law reads ``x`` as a validation loss (accuracy falls as loss rises); the direct law as
``-log10 C`` (accuracy rises with compute), i.e. ``F + (c - F) sigma(k (log10 C - log10 C_0))``.

References
----------
Grattafiori, A. et al. (2024). The Llama 3 Herd of Models. arXiv:2407.21783, Sec. 3.2.1 (loss on
the task -> accuracy through a sigmoid).
Gadre, S. Y. et al. (2024). Language models scale reliably with over-training and on downstream
tasks. arXiv:2403.08540, Sec. 5 (top-1 error as an exponential of C4 loss).
Bhagia, A. et al. (2024). Establishing Task Scaling Laws via Compute-Efficient Model Ladders.
arXiv:2412.04403 (OLMo ladder: two-step prediction, task loss -> accuracy through a sigmoid).
Krajewski, J. et al. (2025). Revisiting the Scaling Properties of Downstream Metrics in Large
Language Model Training. arXiv:2512.08894 (the direct law: accuracy from the training budget, no
intermediate loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayescale.core.laws import _xp


def bounded_sigmoid(x, *, floor, ceiling, k, x0):
    r"""Bounded decreasing link :math:`F + (c - F)\,\sigma(k (x_0 - x))`.

    Parameters
    ----------
    x : array_like or pytensor variable
        The input (a validation loss for the two-step law).
    floor : array_like
        Chance accuracy ``F`` in [0, 1) (data, not a parameter).
    ceiling : array_like
        Highest accuracy ``c`` in ``(F, 1]``.
    k : array_like
        Slope (> 0): accuracy falls as ``x`` rises.
    x0 : array_like
        Midpoint: ``acc(x0) = (F + c) / 2``.

    Returns
    -------
    array_like
        Accuracy in ``(F, c)``, broadcast over all arguments.

    References
    ----------
    Grattafiori et al. (2024), Sec. 3.2.1; Bhagia et al. (2024), Eq. (2).

    Examples
    --------
    >>> float(bounded_sigmoid(3.0, floor=0.25, ceiling=0.95, k=4.0, x0=3.0))
    0.6
    >>> round(float(bounded_sigmoid(10.0, floor=0.25, ceiling=0.95, k=4.0, x0=3.0)), 6)
    0.25
    """
    xp = _xp(x, floor, ceiling, k, x0)
    z = k * (x0 - x)
    sig = xp.sigmoid(z) if xp is not np else _np_sigmoid(z)
    return floor + (ceiling - floor) * sig


def accuracy_two_step(loss, *, floor, ceiling, k, x0):
    """Accuracy as a bounded sigmoid of a validation loss (the second step of two).

    Parameters
    ----------
    loss : array_like
        The ``via`` loss (nats per token) of the run.
    floor, ceiling, k, x0 : array_like
        As in :func:`bounded_sigmoid`; ``k`` per nat, ``x0`` in nats.

    Returns
    -------
    array_like
        Accuracy.

    References
    ----------
    Grattafiori et al. (2024), Sec. 3.2.1; Bhagia et al. (2024), Sec. 3.

    Examples
    --------
    >>> round(float(accuracy_two_step(2.5, floor=0.25, ceiling=1.0, k=2.0, x0=3.0)), 4)
    0.7983
    """
    return bounded_sigmoid(loss, floor=floor, ceiling=ceiling, k=k, x0=x0)


def accuracy_direct(C, *, floor, ceiling, k, log10_C0):
    r"""Accuracy as a bounded sigmoid of compute.

    :math:`\mathrm{acc} = F + (c - F)\,\sigma(k (\log_{10} C - \log_{10} C_0))`.

    The link of :func:`bounded_sigmoid` with ``x = -log10 C`` and ``x0 = -log10 C0``.

    Parameters
    ----------
    C : array_like
        Training compute in FLOPs (``6 N D``).
    floor, ceiling : array_like
        As in :func:`bounded_sigmoid`.
    k : array_like
        Slope per decade of compute (> 0).
    log10_C0 : array_like
        Compute (log10 FLOPs) at which accuracy is halfway between floor and ceiling.

    Returns
    -------
    array_like
        Accuracy.

    References
    ----------
    Gadre et al. (2024), Sec. 5 (accuracy against compute); Krajewski et al. (2025).

    Examples
    --------
    >>> float(accuracy_direct(1e21, floor=0.25, ceiling=0.85, k=1.0, log10_C0=21.0))
    0.55
    """
    xp = _xp(C, floor, ceiling, k, log10_C0)
    return bounded_sigmoid(
        -xp.log10(C), floor=floor, ceiling=ceiling, k=k, x0=-log10_C0
    )


def accuracy_direct_nd(N, D, *, floor, ceiling, k_N, k_D, z0):
    r"""Accuracy as a bounded sigmoid of parameters and tokens.

    :math:`\mathrm{acc} = F + (c - F)\,\sigma(k_N \log_{10} N + k_D \log_{10} D - z_0)`.

    With ``k_N = k_D = k`` it is :func:`accuracy_direct` with ``log10 C0 = z0 / k + log10 6``
    (``C = 6 N D``); unequal slopes let a ladder of over-trained runs say whether a parameter
    or a token buys more accuracy.

    Parameters
    ----------
    N, D : array_like
        Parameters and training tokens.
    floor, ceiling : array_like
        As in :func:`bounded_sigmoid`.
    k_N, k_D : array_like
        Slopes per decade of parameters and of tokens (> 0).
    z0 : array_like
        Threshold: accuracy is halfway between floor and ceiling where
        ``k_N log10 N + k_D log10 D = z0``.

    Returns
    -------
    array_like
        Accuracy.

    References
    ----------
    Krajewski et al. (2025), arXiv:2512.08894 (accuracy across token-to-parameter ratios);
    Gadre et al. (2024), Sec. 5 (over-trained runs).

    Examples
    --------
    >>> a = accuracy_direct_nd(1e9, 1e11, floor=0.25, ceiling=0.85, k_N=1.0, k_D=1.0, z0=20.0)
    >>> b = accuracy_direct(6e20, floor=0.25, ceiling=0.85, k=1.0, log10_C0=20 + np.log10(6))
    >>> bool(np.isclose(a, b))
    True
    """
    xp = _xp(N, D, floor, ceiling, k_N, k_D, z0)
    return bounded_sigmoid(
        z0 - k_N * xp.log10(N) - k_D * xp.log10(D), floor=floor, ceiling=ceiling, k=1.0, x0=0.0
    )


def _items(value) -> tuple:
    """``value`` as a tuple: pairs (the (N, D) law's slopes and inputs) stay pairs."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _np_sigmoid(z):
    """Logistic function in NumPy, without overflow for large ``|z|``."""
    z = np.asarray(z, dtype=float)
    return np.exp(-np.logaddexp(0.0, -z))


def ceiling_from_headroom(floor, headroom):
    """Ceiling ``F + (1 - F) h`` for a headroom ``h`` in (0, 1]: always in ``(F, 1]``.

    Examples
    --------
    >>> round(float(ceiling_from_headroom(0.25, 0.8)), 12)
    0.85
    """
    return floor + (1.0 - floor) * headroom


@dataclass(frozen=True)
class AccuracyLaw:
    """An accuracy law: its sampled parameters, its input and its link.

    Attributes
    ----------
    name : str
        Registry name (``"accuracy_direct"``, ``"accuracy_two_step"``).
    params : tuple of str
        Sampled parameters, in card order (see :meth:`from_pivot`): ``level`` (share of the room
        above chance reached at the runs' mean input), ``k`` (slope) and ``room`` (share of the
        room left above that level which the ceiling takes).
    input : str
        ``"via"`` (a loss column), ``"log10_C"`` or ``"log10_ND"`` (two inputs).
    midpoint : str
        Name of the deterministic midpoint (``x0`` in nats, ``log10_C0`` in log10 FLOPs) or,
        for ``log10_ND``, of the threshold ``z0``.
    formula, reference : str
        The law in words and the papers, for reports.
    amplitudes : tuple
        Always empty: no amplitude is sampled through a loss-law pivot (code that shows any
        card's law, such as ``bayescale cards NAME``, reads it).
    """

    name: str
    params: tuple[str, ...]
    input: str
    midpoint: str
    formula: str
    reference: str
    amplitudes: tuple = ()

    @property
    def slopes(self) -> tuple[str, ...]:
        """Slope parameters: ``("k",)``, or ``("k_N", "k_D")`` for the (N, D) law."""
        return tuple(p for p in self.params if p.startswith("k"))

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the inputs in a fit's data: ``("x",)`` or ``("x_N", "x_D")``."""
        return ("x_N", "x_D") if self.input == "log10_ND" else ("x",)

    def accuracy(self, x, *, floor, ceiling, k, midpoint):
        """Accuracy at inputs ``x`` on the law's natural scale (``via`` loss or ``log10 C``).

        ``midpoint`` is on the same scale (``x0`` in nats, ``log10_C0`` in log10 FLOPs). For
        the (N, D) law, ``x`` and ``k`` are pairs (``(log10 N, log10 D)``, ``(k_N, k_D)``) and
        ``midpoint`` is the threshold ``z0``.

        Examples
        --------
        >>> law = get_accuracy_law("accuracy_direct")
        >>> float(law.accuracy(21.0, floor=0.25, ceiling=0.85, k=1.0, midpoint=21.0))
        0.55
        """
        if self.input == "via":
            return bounded_sigmoid(x, floor=floor, ceiling=ceiling, k=k, x0=midpoint)
        if self.input == "log10_ND":
            z = k[0] * x[0] + k[1] * x[1]
            return bounded_sigmoid(midpoint - z, floor=floor, ceiling=ceiling, k=1.0, x0=0.0)
        return bounded_sigmoid(-x, floor=floor, ceiling=ceiling, k=k, x0=-midpoint)

    def from_pivot(self, *, level, room, k, x_ref, floor):
        r"""Headroom, ceiling and midpoint from the sampled ``(level, room, k)``.

        The sampler works at the runs' mean input ``x_ref`` ("pivot", as the loss laws do for
        their amplitudes, :mod:`bayescale.core.model`): ``level`` is the law's accuracy there as a
        share of the room above chance, ``(acc(x_ref) - F) / (1 - F)``, which the runs pin
        whatever the ceiling; ``room`` places the ceiling in the room left above it,
        ``headroom = level + (1 - level) room``, ``ceiling = F + (1 - F) headroom``. The
        midpoint follows, ``x0 = x_ref + u / k`` (``log10 C0 = x_ref - u / k`` for the direct
        law) with ``u = logit(level / headroom) = log level - log((1 - level) room)``; for the
        (N, D) law, with pairs ``k`` and ``x_ref``, the threshold ``z0 = k . x_ref - u``. A ladder
        that sees only the lower part of the sigmoid pins ``level`` and ``k`` and leaves
        ``room`` to its prior; sampling the midpoint and the ceiling instead puts them on a
        long curved ridge (one trades for the other).

        Returns
        -------
        tuple
            ``(headroom, ceiling, midpoint)``.

        Examples
        --------
        >>> law = get_accuracy_law("accuracy_two_step")
        >>> h, c, x0 = law.from_pivot(level=0.2, room=0.5, k=2.0, x_ref=4.0, floor=0.25)
        >>> round(float(law.accuracy(4.0, floor=0.25, ceiling=c, k=2.0, midpoint=x0)), 12)
        0.4
        """
        xp = _xp(level, room, floor, *_items(k), *_items(x_ref))
        headroom = level + (1.0 - level) * room
        u = xp.log(level) - xp.log((1.0 - level) * room)
        ceiling = ceiling_from_headroom(floor, headroom)
        if self.input == "log10_ND":
            return headroom, ceiling, k[0] * x_ref[0] + k[1] * x_ref[1] - u
        sign = 1.0 if self.input == "via" else -1.0
        return headroom, ceiling, x_ref + sign * u / k


ACCURACY_LAWS: dict[str, AccuracyLaw] = {
    "accuracy_two_step": AccuracyLaw(
        name="accuracy_two_step",
        params=("level", "k", "room"),
        input="via",
        midpoint="x0",
        formula="acc = F + (c - F) sigmoid(k (x0 - loss)), c = F + (1 - F) headroom",
        reference="Grattafiori et al. (2024), arXiv:2407.21783, Sec. 3.2.1; Bhagia et al. (2024)",
    ),
    "accuracy_direct": AccuracyLaw(
        name="accuracy_direct",
        params=("level", "k", "room"),
        input="log10_C",
        midpoint="log10_C0",
        formula="acc = F + (c - F) sigmoid(k (log10 C - log10 C0)), c = F + (1 - F) headroom",
        reference=(
            "Krajewski et al. (2025), arXiv:2512.08894; Gadre et al. (2024), arXiv:2403.08540"
        ),
    ),
    "accuracy_direct_nd": AccuracyLaw(
        name="accuracy_direct_nd",
        params=("level", "k_N", "k_D", "room"),
        input="log10_ND",
        midpoint="z0",
        formula=(
            "acc = F + (c - F) sigmoid(k_N log10 N + k_D log10 D - z0), c = F + (1 - F) headroom"
        ),
        reference=(
            "Krajewski et al. (2025), arXiv:2512.08894; Gadre et al. (2024), arXiv:2403.08540"
        ),
    ),
}
"""The registered accuracy laws, by name (cards name them in ``law = ...``)."""


def get_accuracy_law(name: str) -> AccuracyLaw:
    """Return the :class:`AccuracyLaw` registered under ``name``.

    Raises
    ------
    KeyError
        With the list of valid names.

    Examples
    --------
    >>> get_accuracy_law("accuracy_direct").midpoint
    'log10_C0'
    """
    try:
        return ACCURACY_LAWS[name]
    except KeyError:
        raise KeyError(
            f"unknown accuracy law {name!r}; valid accuracy laws: {', '.join(ACCURACY_LAWS)}"
        ) from None
