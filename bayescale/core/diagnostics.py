"""Sampler diagnostics: R-hat, effective sample size, divergences, tree-depth hits.

Problems are reported loudly: :func:`check` emits a :class:`~bayescale.errors.SamplerWarning` that
names each offending parameter and number, or raises :class:`~bayescale.errors.ConvergenceError`
when ``strict=True``. Thresholds follow Vehtari et al. (2021): R-hat <= 1.01 and bulk/tail ESS of at
least 100 per chain.

References
----------
Vehtari, A. et al. (2021). Rank-normalization, folding, and localization: An improved R-hat for
assessing convergence of MCMC. Bayesian Analysis 16(2).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from bayescale.errors import ConvergenceError, SamplerWarning

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100


@dataclass(frozen=True)
class Diagnostics:
    """Convergence summary of one fit.

    Attributes
    ----------
    max_rhat : float
        Largest rank-normalised split R-hat over the parameters.
    min_ess_bulk, min_ess_tail : float
        Smallest bulk and tail effective sample sizes.
    divergences : int
        Divergent transitions after tuning.
    treedepth_hits : int
        Draws that hit the maximum tree depth.
    n_draws : int
        Total post-tuning draws (chains x draws).
    chains : int
        Number of chains.
    worst : dict
        ``{parameter: rhat}`` and ``{parameter: ess}`` of the worst parameters, for messages.
    """

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    treedepth_hits: int
    n_draws: int
    chains: int
    rhat: dict
    ess_bulk: dict
    ess_tail: dict

    @property
    def problems(self) -> list[str]:
        """Human-readable list of the problems found (empty when the fit is clean)."""
        out = []
        if not self.max_rhat <= RHAT_MAX:
            bad = {k: round(v, 4) for k, v in self.rhat.items() if not v <= RHAT_MAX}
            out.append(f"R-hat above {RHAT_MAX} for {bad}")
        ess_min = ESS_PER_CHAIN_MIN * self.chains
        low = {k: round(v) for k, v in self.ess_bulk.items() if not v >= ess_min}
        low_t = {k: round(v) for k, v in self.ess_tail.items() if not v >= ess_min}
        if low:
            out.append(f"bulk ESS below {ess_min} for {low}")
        if low_t:
            out.append(f"tail ESS below {ess_min} for {low_t}")
        if self.divergences:
            out.append(
                f"{self.divergences} divergent transitions of {self.n_draws} draws "
                "(the posterior has regions the sampler cannot explore; results may be biased)"
            )
        if self.treedepth_hits:
            out.append(f"{self.treedepth_hits} draws hit the maximum tree depth")
        return out

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_dict(self) -> dict:
        """JSON-ready dictionary, with ``ok`` and ``problems``."""
        return {**asdict(self), "ok": self.ok, "problems": self.problems}

    def to_json(self) -> str:
        """The diagnostics as JSON."""
        return json.dumps(self.to_dict(), sort_keys=True)


def compute(posterior, sample_stats, *, var_names) -> Diagnostics:
    """Compute :class:`Diagnostics` from posterior and sample-stats datasets.

    Parameters
    ----------
    posterior : xarray.Dataset
        Draws with dims ``(chain, draw)``.
    sample_stats : xarray.Dataset or None
        Needs ``diverging``; ``maxdepth_reached`` or ``reached_max_treedepth`` if present.
    var_names : list of str
        Parameters to check.

    Returns
    -------
    Diagnostics
    """
    import arviz_stats as azs

    var_names = list(var_names)
    sub = posterior[var_names]
    rhat = azs.rhat(sub)
    ess_b = azs.ess(sub, method="bulk")
    ess_t = azs.ess(sub, method="tail")
    rh = {k: float(rhat[k].max()) for k in var_names}
    eb = {k: float(ess_b[k].min()) for k in var_names}
    et = {k: float(ess_t[k].min()) for k in var_names}
    div = 0
    hits = 0
    if sample_stats is not None:
        if "diverging" in sample_stats:
            div = int(np.asarray(sample_stats["diverging"]).sum())
        for key in ("maxdepth_reached", "reached_max_treedepth"):
            if key in sample_stats:
                hits = int(np.asarray(sample_stats[key]).sum())
                break
    chains = int(posterior.sizes["chain"])
    return Diagnostics(
        max_rhat=float(np.nanmax(list(rh.values()))) if rh else float("nan"),
        min_ess_bulk=float(np.nanmin(list(eb.values()))) if eb else float("nan"),
        min_ess_tail=float(np.nanmin(list(et.values()))) if et else float("nan"),
        divergences=div,
        treedepth_hits=hits,
        n_draws=chains * int(posterior.sizes["draw"]),
        chains=chains,
        rhat=rh,
        ess_bulk=eb,
        ess_tail=et,
    )


def check(diag: Diagnostics, *, strict: bool = False, label: str = "fit") -> Diagnostics:
    """Warn (or raise, with ``strict``) when the fit has sampler problems.

    Parameters
    ----------
    diag : Diagnostics
        From :func:`compute`.
    strict : bool, default False
        Raise :class:`ConvergenceError` instead of warning.
    label : str
        What to call the fit in the message.

    Returns
    -------
    Diagnostics
        ``diag``, unchanged.
    """
    if diag.problems:
        msg = f"{label}: sampler problems: " + "; ".join(diag.problems)
        if strict:
            raise ConvergenceError(msg)
        warnings.warn(msg, SamplerWarning, stacklevel=3)
    return diag
