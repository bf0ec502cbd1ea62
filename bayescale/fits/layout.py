"""Read what a fit holds: its card, its runs and its posterior draws as flat arrays."""

from __future__ import annotations

import json

import numpy as np

from bayescale.core.cards import Card, card_from_json


def card_of(fit) -> Card:
    """The model card a fit was made with (from its provenance)."""
    return card_from_json(fit.attrs["bayescale_card"])


def runs_of(fit):
    """The fitted runs as a DataFrame with columns ``N, D, C, loss`` (``U``, ``run`` if known)."""
    import pandas as pd

    const = fit["constant_data"]
    frame = pd.DataFrame(
        {
            "N": const["N"].to_numpy(),
            "D": const["D"].to_numpy(),
            "C": const["C"].to_numpy(),
            "loss": np.exp(fit["observed_data"]["log_loss"].to_numpy()),
        }
    )
    if "U" in const:
        frame["U"] = const["U"].to_numpy()
    if "run_id" in const:
        frame["run"] = const["run_id"].to_numpy().astype(str)
    return frame


def draws(fit, *, var_names=None) -> dict[str, np.ndarray]:
    """Posterior draws flattened over ``(chain, draw)`` into 1-D arrays of length ``S``.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit.
    var_names : list of str, optional
        Variables to return (default: all in the posterior).

    Returns
    -------
    dict of str to numpy.ndarray
    """
    post = fit["posterior"]
    names = list(post.data_vars) if var_names is None else list(var_names)
    return {k: np.asarray(post[k].to_numpy(), dtype=float).reshape(-1) for k in names}


def provenance(fit) -> dict:
    """All provenance attributes of a fit, JSON fields decoded."""
    out = {}
    for k, v in fit.attrs.items():
        if isinstance(v, str) and k.startswith("bayescale_"):
            try:
                out[k.removeprefix("bayescale_")] = json.loads(v)
            except json.JSONDecodeError:
                out[k.removeprefix("bayescale_")] = v
        else:
            out[k] = v
    return out
