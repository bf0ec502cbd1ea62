"""Read an ensemble fit: its members, weights, discrepancy and the draws of its mixture.

An ensemble fit is an ``xarray.DataTree`` whose root holds the shared runs (``constant_data``,
``observed_data``) and, in the attribute ``bayescale_ensemble``, the weights, the discrepancy
``tau``, the validated extrapolation distance and the rolling splits; each member is a child
``member_<k>``: an ordinary fit of one card on all the runs, with its own provenance.

The mixture is represented by draws: member ``k`` contributes ``round(w_k S)`` of ``S`` draws
(largest remainder), taken evenly spaced through its chains, so every answer that summarises draws
(``predict``, ``optimal``, backtest scores) summarises the weighted mixture without random
resampling.
"""

from __future__ import annotations

import json

import numpy as np

from bayescale.errors import InputError

__all__ = [
    "ENSEMBLE_ATTR",
    "assemble",
    "draw_allocation",
    "ensemble_info",
    "is_ensemble",
    "lead_member",
    "member_draw_indices",
    "members",
    "validated_decades",
]

ENSEMBLE_ATTR = "bayescale_ensemble"


def is_ensemble(fit) -> bool:
    """Whether ``fit`` is a law ensemble (:func:`bayescale.engines.ensemble.fit_ensemble`)."""
    return ENSEMBLE_ATTR in getattr(fit, "attrs", {})


def ensemble_info(fit) -> dict:
    """The ensemble's record: ``cards``, ``weights``, ``tau``, ``validated_decades``, ..."""
    if not is_ensemble(fit):
        raise InputError("not an ensemble fit (fit without --law, or bayescale.fit_ensemble)")
    return json.loads(fit.attrs[ENSEMBLE_ATTR])


def members(fit) -> list[tuple[str, float, object]]:
    """``[(card name, weight, member fit), ...]`` in the order of the ensemble's cards."""
    info = ensemble_info(fit)
    out = []
    for k, name in enumerate(info["cards"]):
        out.append((name, float(info["weights"][name]), fit[f"member_{k}"]))
    return out


def validated_decades(fit) -> float:
    """Largest extrapolation distance (decades of compute) the fit's rolling backtests validated.

    A law ensemble records it (:func:`bayescale.ensemble.fit_ensemble`); a single-card fit has
    validated none, so 0, and neither has an ensemble whose runs bend away from its laws (its
    recorded ``lack_of_fit`` flagged): no extrapolation of such a fit is validated, however far
    its rolling splits reached.
    """
    if not is_ensemble(fit):
        return 0.0
    info = ensemble_info(fit)
    if (info.get("lack_of_fit") or {}).get("flag"):
        return 0.0
    return float(info["validated_decades"])


def lead_member(fit):
    """The member with the largest weight (its card labels plots of parameters)."""
    return max(members(fit), key=lambda m: m[1])[2]


def draw_allocation(weights, n_total: int) -> np.ndarray:
    """Integer draw counts proportional to ``weights`` summing to ``n_total`` (largest remainder).

    Examples
    --------
    >>> draw_allocation([0.5, 0.3, 0.2], 10).tolist()
    [5, 3, 2]
    >>> draw_allocation([2 / 3, 1 / 3], 4).tolist()
    [3, 1]
    """
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    raw = w * n_total
    counts = np.floor(raw).astype(int)
    rest = n_total - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def member_draw_indices(fit) -> list[tuple[object, np.ndarray]]:
    """``[(member fit, flat draw indices), ...]`` whose draws together form the mixture.

    ``S`` is the largest member's number of draws; members with zero draws are left out.
    """
    mem = members(fit)
    sizes = [m[2]["posterior"].sizes["chain"] * m[2]["posterior"].sizes["draw"] for m in mem]
    counts = draw_allocation([m[1] for m in mem], max(sizes))
    out = []
    for (_, _, tree), size, n in zip(mem, sizes, counts, strict=True):
        if n > 0:
            idx = np.unique(np.round(np.linspace(0, size - 1, n)).astype(int))
            if idx.size < n:  # a member with fewer draws than its share: cycle through them
                idx = np.resize(np.arange(size), n)
            out.append((tree, idx))
    return out


def assemble(member_fits, info: dict):
    """The ensemble fit tree of member fits (one card each) and their record.

    Parameters
    ----------
    member_fits : sequence of xarray.DataTree
        Fits in the order of ``info["cards"]``.
    info : dict
        At least ``cards``, ``weights`` (card -> weight), ``tau`` and ``validated_decades``.

    Returns
    -------
    xarray.DataTree
        See :func:`bayescale.engines.ensemble.fit_ensemble`.
    """
    import xarray as xr

    names = list(info["cards"])
    if len(names) != len(member_fits):
        raise InputError(f"{len(member_fits)} member fits for {len(names)} cards {names}")
    weights = np.array([float(info["weights"][n]) for n in names])
    if not (np.all(np.isfinite(weights)) and np.all(weights >= 0) and weights.sum() > 0):
        raise InputError(f"ensemble weights must be >= 0 and not all 0, got {info['weights']}")
    lead = int(np.argmax(weights))
    groups = {
        "constant_data": member_fits[0]["constant_data"].to_dataset(),
        "observed_data": member_fits[0]["observed_data"].to_dataset(),
    }
    tree = xr.DataTree.from_dict(groups)
    for k, member in enumerate(member_fits):
        tree[f"member_{k}"] = member
    tree.attrs = {
        **member_fits[lead].attrs,
        ENSEMBLE_ATTR: json.dumps(info, sort_keys=True),
    }
    if "bayescale_runs" in member_fits[0].attrs:  # the root's runs: all of them (member 0's),
        tree.attrs["bayescale_runs"] = member_fits[0].attrs["bayescale_runs"]  # not an upper half
    return tree
