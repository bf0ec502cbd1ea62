"""Upper-ladder members: each card also fitted to the upper half of the runs by compute.

A law fitted to the whole ladder is pulled by its smallest runs, where the law describes the
runs least well (learning-rate schedules and other settings are tuned for the large runs; the
irreducible loss and the exponents trade off along a ridge that small runs cannot resolve). The
forecasts of the largest runs then miss in one direction: on the public tables most held-out runs
landed *below* the ensemble's median (Epoch 73%, Marin 82%). A card fitted to the runs at or above
the median compute gives the larger runs more say; stacking of the rolling-origin forecasts
(:mod:`bayescale.scoring.stacking`) then decides, from the runs alone, how much to trust it beside
the card fitted to every run. Nothing else changes: the member is the same law with the same
priors, its answers are read like any member's, and the lack-of-fit test still uses every run.

An upper member is fitted only when the upper half holds at least :data:`UPPER_RUNS_PER_PARAM`
runs per sampled parameter of the largest card. With fewer, its posterior is mostly prior: on the
over-training tables (14 runs in the upper half, 7-8 parameters) upper members lowered the held-out
log score by up to 0.30 in the issue 19 study. Nor is one fitted when a card models repeated data
(the runs repeat their unique tokens): the upper half cannot identify the data-constrained law
(on Datablations its fit kept R-hat 1.03 after two refits), and the plain laws' upper members,
which count a repeated token as a new one, lowered the held-out log score there by 0.07. Where
they were fitted (Epoch, Marin, the untuned OWT2 sweep) the held-out log score rose by 0.12-0.44
(``scripts/calibration19.py``, the default nested backtests).

References
----------
Yao, Y., Vehtari, A., Simpson, D. & Gelman, A. (2018). Using stacking to average Bayesian
predictive distributions. Bayesian Analysis 13(3) (stacking as model selection among candidates).
Porian, T. et al. (2024). Resolving discrepancies in compute-optimal scaling of language models.
arXiv:2406.19146 (small runs trained with settings not tuned per scale bend the fitted law).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bayescale.errors import InputError

__all__ = ["UPPER_RUNS_PER_PARAM", "UPPER_SUFFIX", "is_upper_card", "runs_for", "upper_card",
           "upper_cards", "upper_half", "upper_rule"]

UPPER_SUFFIX = "@upper"
"""Suffix of an upper-ladder member's name (``chinchilla@upper``)."""

UPPER_RUNS_PER_PARAM = 4
"""Fewest runs in the upper half, per sampled parameter of the largest card, for upper members."""


def upper_half(runs):
    """The runs at or above the median compute (at least half of them).

    Parameters
    ----------
    runs : Runs
        The runs (anything with ``C`` and ``subset``).

    Returns
    -------
    Runs
        The subset.

    Examples
    --------
    >>> import bayescale as bs
    >>> runs = bs.load_runs(bs.datasets.simulate(random_seed=0))
    >>> len(runs), len(upper_half(runs))  # 5 IsoFLOP budgets of 9 runs: the top 3
    (45, 27)
    """
    return runs.subset(runs.C >= np.median(runs.C))


def upper_card(card):
    """The upper-ladder variant of ``card``: the same law and priors, named ``<name>@upper``."""
    return dataclasses.replace(
        card, name=card.name + UPPER_SUFFIX,
        description=f"{card.description} (fitted to the upper half of the runs by compute)")


def is_upper_card(card) -> bool:
    """Whether ``card`` (or a card name) is an upper-ladder variant."""
    return str(getattr(card, "name", card)).endswith(UPPER_SUFFIX)


def runs_for(card, runs):
    """The runs ``card`` is fitted to: the upper half for an upper variant, else all."""
    return upper_half(runs) if is_upper_card(card) else runs


def upper_rule(runs, card_objs) -> dict:
    """Whether the runs can identify upper members, and why.

    Parameters
    ----------
    runs : Runs
        The runs the ensemble is fitted to.
    card_objs : sequence of Card
        The ensemble's cards.

    Returns
    -------
    dict
        ``{"fitted": bool, "n_upper": runs in the upper half, "needed": runs it must hold,
        "repeated_data": whether a card models repeated data, "rule": the rule in words}``.
    """
    n_upper = len(upper_half(runs))
    needed = UPPER_RUNS_PER_PARAM * max(c.n_params for c in card_objs)
    repeats = [c.name for c in card_objs if "U" in c.law_spec.extra_variables]
    return {"fitted": bool(n_upper >= needed and not repeats), "n_upper": int(n_upper),
            "needed": int(needed), "repeated_data": bool(repeats),
            "rule": f"each card is also fitted to the runs at or above the median compute when "
                    f"they number at least {UPPER_RUNS_PER_PARAM} per sampled parameter of the "
                    "largest card and no card models repeated data"}


def upper_cards(runs, card_objs, *, upper) -> tuple[list, dict]:
    """The ensemble's candidates: ``card_objs``, plus their upper variants where chosen.

    Parameters
    ----------
    runs : Runs
        The runs the ensemble is fitted to.
    card_objs : sequence of Card
        The cards.
    upper : bool or None
        True: add the upper variants; False: never; None: when :func:`upper_rule` allows.

    Returns
    -------
    tuple
        ``(cards, record)``: the candidates, and :func:`upper_rule`'s record with ``"asked"``.

    Raises
    ------
    InputError
        When ``upper`` is not True, False or None, or a card is already an upper variant.
    """
    if upper not in (True, False, None):
        raise InputError(f"upper must be True, False or None (by the runs), got {upper!r}")
    bad = [c.name for c in card_objs if is_upper_card(c)]
    if bad:
        raise InputError(f"card names may not end in {UPPER_SUFFIX!r} (reserved for upper-ladder "
                         f"members): {', '.join(bad)}")
    record = {**upper_rule(runs, card_objs), "asked": upper}
    if upper is not None:
        record["fitted"] = bool(upper)
    cards = list(card_objs)
    if record["fitted"]:
        cards += [upper_card(c) for c in card_objs]
    return cards, record
