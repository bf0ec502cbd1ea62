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

__all__ = ["ACCURACY_ATTR", "accuracy_attr", "accuracy_info", "is_accuracy"]

ACCURACY_ATTR = "bayescale_accuracy"
"""Root attribute of an accuracy fit (JSON)."""


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
