"""The record of an accuracy fit: which metric, floor and task size, and the chance test.

An accuracy fit (:func:`bayescale.engines.accuracy.fit_accuracy`) is a single fit of an accuracy
card; its root attribute ``bayescale_accuracy`` holds the metric, the ``via`` loss column, the
floor, the number of evaluation examples, the task, the law's input and reference point, the
noise variant and the chance test (:func:`bayescale.scoring.chance.chance_signal`). This module
writes and reads that record, so no other layer touches the attribute.
"""

from __future__ import annotations

import json

from bayescale.errors import InputError

__all__ = [
    "ACCURACY_ATTR",
    "ACCURACY_ENSEMBLE_ATTR",
    "accuracy_attr",
    "accuracy_ensemble_info",
    "accuracy_info",
    "accuracy_members",
    "assemble_accuracy",
    "is_accuracy",
    "is_accuracy_ensemble",
    "step_one",
]

ACCURACY_ATTR = "bayescale_accuracy"
"""Root attribute of an accuracy fit (JSON)."""
ACCURACY_ENSEMBLE_ATTR = "bayescale_accuracy_ensemble"
"""Root attribute of a stacked accuracy fit (JSON): members, weights, tau, splits, evidence."""
STEP_ONE = "step1"
"""Child of a stacked accuracy fit holding the loss fit of its two-step member's ``via`` column."""


def is_accuracy(fit) -> bool:
    """Whether ``fit`` is an accuracy fit (has ``bayescale_accuracy``)."""
    return ACCURACY_ATTR in getattr(fit, "attrs", {})


def accuracy_attr(**record) -> dict:
    """The root attribute an accuracy fit is recognised by (written by the accuracy engine)."""
    return {ACCURACY_ATTR: json.dumps(record, sort_keys=True)}


def accuracy_info(fit) -> dict:
    """The accuracy provenance of a fit (metric, via, floor, n_examples, task, chance test).

    Raises
    ------
    InputError
        For a fit that is not an accuracy fit.
    """
    raw = getattr(fit, "attrs", {}).get(ACCURACY_ATTR)
    if raw is None:
        raise InputError("not an accuracy fit (from bayescale.engines.accuracy.fit_accuracy)")
    return json.loads(raw)


def is_accuracy_ensemble(fit) -> bool:
    """Whether ``fit`` is a stacked accuracy fit (:mod:`bayescale.engines.accuracy_ensemble`)."""
    return ACCURACY_ENSEMBLE_ATTR in getattr(fit, "attrs", {})


def accuracy_ensemble_info(fit) -> dict:
    """A stacked accuracy fit's record: ``cards``, ``weights``, ``tau``, ``splits``, ...

    Raises
    ------
    InputError
        For a fit that is not a stacked accuracy fit.
    """
    raw = getattr(fit, "attrs", {}).get(ACCURACY_ENSEMBLE_ATTR)
    if raw is None:
        raise InputError("not a stacked accuracy fit (bayescale.fit with an accuracy metric)")
    return json.loads(raw)


def accuracy_members(fit) -> list[tuple[str, float, object]]:
    """``[(card, weight, member fit), ...]``; a single accuracy fit is its own member."""
    if not is_accuracy_ensemble(fit):
        return [(json.loads(fit.attrs["bayescale_card"])["name"], 1.0, fit)]
    info = accuracy_ensemble_info(fit)
    return [(name, float(info["weights"][name]), fit[f"member_{k}"])
            for k, name in enumerate(info["cards"])]


def step_one(fit):
    """The loss fit of the two-step member's ``via`` column, or None."""
    return fit[STEP_ONE] if STEP_ONE in fit.children else None


def assemble_accuracy(members: dict, *, record: dict, attrs: dict, step1=None):
    """A stacked accuracy fit: a root with the record and one child per member.

    Parameters
    ----------
    members : dict
        ``{card name: accuracy fit on all runs}``, in card order.
    record : dict
        ``cards``, ``weights`` (by card), ``tau`` and the evidence (JSON-serialisable).
    attrs : dict
        Root attributes besides the record (the lead member's provenance and
        ``bayescale_accuracy``).
    step1 : xarray.DataTree, optional
        The two-step member's loss fit.

    Returns
    -------
    xarray.DataTree
    """
    import xarray as xr

    trees = list(members.values())
    root = xr.DataTree.from_dict({
        "constant_data": trees[0]["constant_data"].to_dataset(),
        "observed_data": trees[0]["observed_data"].to_dataset(),
    })
    for k, tree in enumerate(trees):
        root[f"member_{k}"] = tree
    if step1 is not None:
        root[STEP_ONE] = step1
    root.attrs = {**attrs, ACCURACY_ENSEMBLE_ATTR: json.dumps(record, sort_keys=True)}
    return root
