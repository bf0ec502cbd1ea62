"""Choose the next runs: greedy preposterior plan under a compute budget, against the naive plan.

The plan is built greedily: at each step every affordable candidate is valued by the expected
width of the target's interval after it (given the runs already chosen, in the same simulated
worlds), and the one with the largest expected narrowing per FLOP is added, until nothing
affordable narrows the interval. The best single affordable run is also tried, and the better of
the two plans is returned (the cost-benefit greedy with the best-singleton check of Leskovec et
al. 2007, within a constant factor of the optimal budgeted plan for submodular gains).

References
----------
Leskovec, J. et al. (2007). Cost-effective outbreak detection in networks. KDD.
Raiffa, H. & Schlaifer, R. (1961). Applied Statistical Decision Theory.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayescale.answers.allocation import _require_optimum
from bayescale.answers.planning.design import candidates as _candidates
from bayescale.answers.planning.design import naive_plan
from bayescale.answers.planning.preposterior import evaluate, refit_width, simulate_outcomes, update
from bayescale.answers.planning.targets import Target, make_target, target_values, weighted_interval
from bayescale.answers.planning.view import law_separation, posterior_view
from bayescale.core.laws import FLOPS_PER_PARAM_TOKEN
from bayescale.core.stats import check_ci
from bayescale.errors import InputError
from bayescale.fits.view import per_family


class PlanningWarning(UserWarning):
    """Preposterior estimates that rest on degenerate importance weights."""


@dataclass(frozen=True)
class Plan:
    """A plan of new runs and what it is expected to do to the target's interval.

    Attributes
    ----------
    target : dict
        The question (kind, arguments, unit).
    runs : pandas.DataFrame
        The chosen runs in order: ``N``, ``D``, ``C``, ``width_after`` (expected width once this
        and the earlier runs are in), ``ess`` (median importance ESS over worlds), ``method``
        (``importance`` or ``refit``).
    naive_runs : pandas.DataFrame
        The naive plan of equal cost (see :mod:`bayescale.answers.planning.design`).
    candidates : pandas.DataFrame
        Every candidate with its expected width and shrinkage as the *first* run
        (``width_after``, ``shrinkage``, ``ess``, ``ess_min``, ``method``, ``chosen``).
    width_now, width_after, width_after_naive : float
        Width of the ``ci_prob`` interval today, expected after the plan, expected after the naive
        plan.
    """

    target: dict
    runs: pd.DataFrame
    naive_runs: pd.DataFrame
    candidates: pd.DataFrame
    width_now: float
    width_after: float
    width_after_naive: float
    budget_new: float
    ladder: dict
    settings: dict = field(default_factory=dict)

    @property
    def cost(self) -> float:
        return float(self.runs["C"].sum()) if len(self.runs) else 0.0

    @property
    def shrinkage(self) -> float:
        """Expected relative narrowing of the interval by the plan (0 when it has no width)."""
        return _shrink(self.width_after, self.width_now)

    @property
    def shrinkage_naive(self) -> float:
        return _shrink(self.width_after_naive, self.width_now)

    def to_dict(self) -> dict:
        """JSON-ready summary (``runs`` with ``N``, ``D``, ``C``; the three widths; settings)."""

        def records(frame, cols):
            return [{k: _py(r[k]) for k in cols if k in frame} for _, r in frame.iterrows()]

        return {
            "target": self.target,
            "budget_new": self.budget_new,
            "cost": self.cost,
            "runs": records(self.runs, ["N", "D", "C", "width_after", "ess", "method"]),
            "width_now": self.width_now,
            "width_after": self.width_after,
            "width_after_naive": self.width_after_naive,
            "shrinkage": self.shrinkage,
            "shrinkage_naive": self.shrinkage_naive,
            "naive": {
                "runs": records(self.naive_runs, ["N", "D", "C"]),
                "method": self.settings.get("naive_method"),
                "ladder_levels": [float(v) for v in self.ladder["levels"]],
                "ladder_ratio": self.ladder["ratio"],
                "next_budget": self.ladder["next"],
            },
            "candidates": records(
                self.candidates,
                ["N", "D", "C", "width_after", "shrinkage", "ess", "method", "chosen"],
            ),
            "settings": self.settings,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)


def _shrink(after, now):
    return 1.0 - after / now if now > 0 else 0.0


def _py(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _check_candidates(frame, budget_new) -> pd.DataFrame:
    try:
        cand = pd.DataFrame(frame)
    except (TypeError, ValueError):
        raise InputError("candidates must be a table with columns N and D") from None
    if not {"N", "D"} <= set(cand.columns):
        raise InputError(f"candidates need columns N and D, got {list(cand.columns)}")
    n = cand["N"].to_numpy(dtype=float)
    d = cand["D"].to_numpy(dtype=float)
    bad = np.flatnonzero(~(np.isfinite(n) & np.isfinite(d) & (n > 0) & (d > 0)))
    if bad.size:
        raise InputError(f"candidate rows {bad[:5].tolist()} have N or D not finite and > 0")
    out = pd.DataFrame({"N": n, "D": d, "C": FLOPS_PER_PARAM_TOKEN * n * d})
    out["level"] = cand["level"].to_numpy() if "level" in cand else -1
    return out[out["C"] <= budget_new * (1 + 1e-9)].reset_index(drop=True)


@per_family("dict")
def plan(
    fit,
    *,
    target: str | Target = "loss",
    N=None,
    D=None,
    budget=None,
    target_loss=None,
    budget_new: float,
    max_runs: int = 16,
    n_worlds: int = 48,
    ci_prob: float = 0.9,
    min_ess: float = 100.0,
    refit: bool = True,
    max_refits: int = 8,
    refit_worlds: int = 4,
    refit_draws: int = 500,
    candidates=None,
    n_levels: int = 4,
    level_step_dex: float = 0.5,
    n_sizes: int = 9,
    separation_weight: float = 0.0,
    family: str | None = None,
    random_seed: int = 0,
) -> Plan | dict:
    """Which new runs (total compute ``budget_new``) most narrow the interval of a target.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a two-variable law (one card; for pooled families pass
        ``family_view(fit, name)``).
    target : {"loss", "nopt", "compute"} or Target
        The question about the big run: the law's loss at ``(N, D)``, ``log10 N*`` at ``budget``,
        or ``log10`` of the compute at which the optimal loss reaches ``target_loss``.
    N, D, budget, target_loss : float, optional
        Arguments of the target.
    budget_new : float
        Total compute for the new runs, in FLOPs.
    max_runs : int, default 16
        Most runs in the plan.
    n_worlds : int, default 48
        Simulated outcomes per candidate (worlds).
    ci_prob : float, default 0.9
        Probability of the target's equal-tailed interval.
    min_ess : float, default 100
        Median importance-sampling ESS over worlds below which a candidate is valued by refits.
    refit : bool, default True
        Allow refits where the weights degenerate (else warn and keep the reweighted value).
        The chosen plan and the naive plan are refitted (``refit_worlds`` fits each) when
        their weights degenerate.
    max_refits : int, default 8
        Refits spent on valuing single candidates whose weights degenerate (the most promising
        first); the others keep their reweighted value (``method`` says which).
    refit_worlds, refit_draws : int
        Worlds per refitted value (default 4), draws (and tuning steps) per chain of each
        refit (default 500, 2 chains).
    candidates : pandas.DataFrame, optional
        Candidate runs (columns ``N``, ``D``); default: IsoFLOP lines, see
        :func:`bayescale.answers.planning.design.candidates` (``n_levels``, ``level_step_dex``,
        ``n_sizes``).
    separation_weight : float, default 0
        Weight of :func:`bayescale.answers.planning.view.law_separation` in the ranking (ensembles).
    family : str, optional
        For a pooled-family fit: plan for this family only. Without it a pooled fit is planned
        per family (each with the whole ``budget_new``) and a dict ``{family: Plan}`` returned.
    random_seed : int, default 0
        Seed of the worlds, the simulated outcomes and the refits.

    Returns
    -------
    Plan
        Or ``{family: Plan}`` for a pooled fit without ``family``.

    Raises
    ------
    InputError
        For a bad target, budget or option, or a law without a closed-form compute-optimal
        allocation (candidates are centred on ``N*``; the built-in Chinchilla and Kaplan laws
        have one).

    Examples
    --------
    >>> p = plan(fit, target="loss", N=7e10, D=1.4e12, budget_new=1e21)  # doctest: +SKIP
    >>> p.width_after < p.width_now  # doctest: +SKIP
    True
    """

    del family  # a pooled fit is planned per family by the per_family wrapper
    check_ci(ci_prob, "eti")
    tgt = make_target(target, N=N, D=D, budget=budget, target_loss=target_loss)
    try:
        budget_new = float(budget_new)
    except (TypeError, ValueError):
        raise InputError(f"budget_new must be a number of FLOPs, got {budget_new!r}") from None
    if not (np.isfinite(budget_new) and budget_new > 0):
        raise InputError(f"budget_new must be finite and > 0 FLOPs, got {budget_new!r}")
    for name, v in (("max_runs", max_runs), ("n_worlds", n_worlds),
                    ("refit_worlds", refit_worlds), ("refit_draws", refit_draws)):
        if int(v) != v or v < 1:
            raise InputError(f"{name} must be a positive integer, got {v!r}")
    view = posterior_view(fit)
    _require_optimum(view.law)
    values = target_values(view, tgt)
    if candidates is None:
        cand = _candidates(
            view, budget_new=budget_new, n_levels=n_levels, level_step_dex=level_step_dex,
            n_sizes=n_sizes,
        )
    else:
        cand = _check_candidates(candidates, budget_new)
    if cand.empty:
        raise InputError(f"no candidate run fits in budget_new={budget_new:g} FLOPs")

    rng = np.random.default_rng(random_seed)
    s = view.n_draws
    truth = rng.choice(s, size=n_worlds, p=view.weights)
    lw0 = np.broadcast_to(np.log(view.weights), (n_worlds, s)).copy()
    width_now = float(np.diff(weighted_interval(values, lw0[:1], ci_prob=ci_prob)[0])[0])
    if not np.isfinite(width_now):
        raise InputError(
            f"the {ci_prob:g} interval of the target ({tgt.describe()}) is unbounded today "
            "(the target loss is below the loss floor in too many draws)"
        )
    cn, cd, cc = (cand[k].to_numpy() for k in ("N", "D", "C"))
    mu = view.log_loss_grid(cn, cd)
    y = simulate_outcomes(view, truth, mu, rng)
    sep = separation_weight * law_separation(view, cn, cd)
    refit_seed = int(rng.integers(2**31))
    state = {"refits": 0}

    def refit_value(chosen, q):
        """Mean width over the first refit_worlds worlds, refitting with the runs appended."""
        widths = []
        for m in range(refit_worlds):
            idx = [*chosen, q]
            added = pd.DataFrame({"N": cn[idx], "D": cd[idx], "loss": np.exp(y[m, idx])})
            w, _ = refit_width(
                fit, added, tgt, ci_prob=ci_prob, random_seed=refit_seed + m,
                draws=refit_draws, tune=refit_draws, chains=2,
            )
            widths.append(w)
        state["refits"] += refit_worlds
        return float(np.mean(widths))

    def value(lw, q):
        lw_q = update(view, lw, y[:, q], mu[q])
        widths, e = evaluate(values, lw_q, ci_prob=ci_prob)
        return {"width": float(widths.mean()), "ess": float(np.median(e)),
                "ess_min": float(e.min()), "method": "importance", "log_w": lw_q}

    # First step: every affordable candidate alone. Where its weights degenerate, refit (the
    # most promising such candidates first, within the refit budget).
    afford = [q for q in range(len(cand)) if cc[q] <= budget_new * (1 + 1e-9)]
    first = {q: value(lw0, q) for q in afford}
    for q in sorted((q for q in first if first[q]["ess"] < min_ess),
                    key=lambda q: first[q]["width"]):
        if not refit or state["refits"] + refit_worlds > max_refits:
            break
        first[q]["width"] = refit_value([], q)
        first[q]["method"] = "refit"
    # Greedy by narrowing per FLOP, conditioning on the chosen runs' outcomes in each world.
    lw = lw0
    current = width_now
    chosen, steps = [], []
    spent = 0.0
    while len(chosen) < max_runs:
        best, best_score = None, 0.0
        for q in afford:
            if q in chosen or spent + cc[q] > budget_new * (1 + 1e-9):
                continue
            v = first[q] if not chosen else value(lw, q)
            score = (current - v["width"]) / cc[q] + sep[q] / cc[q]
            if score > best_score:
                best, best_score, best_v = q, score, v
        if best is None:
            break
        chosen.append(best)
        spent += cc[best]
        lw, current = best_v["log_w"], best_v["width"]
        steps.append(dict(best_v))
    # Best single affordable run, when it beats the greedy plan.
    if first:
        q1 = min(first, key=lambda q: first[q]["width"])
        if first[q1]["width"] < current:
            chosen, steps, current, spent = [q1], [dict(first[q1])], first[q1]["width"], cc[q1]
    # The plan's own value, by refits when its importance weights have degenerated.
    if steps and steps[-1]["ess"] < min_ess and steps[-1]["method"] == "importance":
        if refit:
            current = refit_value(chosen[:-1], chosen[-1])
            steps[-1]["width"], steps[-1]["method"] = current, "refit"
        else:
            warnings.warn(
                f"importance weights of the plan degenerate (median ESS "
                f"{steps[-1]['ess']:.0f} < {min_ess:g}) and no refit allowed "
                f"(refit={refit}, max_refits={max_refits}): width_after is the reweighted "
                "estimate",
                PlanningWarning,
                stacklevel=2,
            )
    runs = pd.DataFrame(
        {
            "N": cn[chosen], "D": cd[chosen], "C": cc[chosen],
            "width_after": [v["width"] for v in steps],
            "ess": [v["ess"] for v in steps],
            "method": [v["method"] for v in steps],
        }
    )
    table = cand.copy()
    table["width_after"] = [first[q]["width"] if q in first else np.nan for q in range(len(cand))]
    table["method"] = [first[q]["method"] if q in first else "" for q in range(len(cand))]
    table["shrinkage"] = [_shrink(w, width_now) for w in table["width_after"]]
    table["ess"] = [first[q]["ess"] if q in first else np.nan for q in range(len(cand))]
    table["ess_min"] = [first[q]["ess_min"] if q in first else np.nan for q in range(len(cand))]
    table["chosen"] = [q in chosen for q in range(len(cand))]

    # The naive plan of equal cost, valued in the same worlds.
    naive, lad = naive_plan(view, cost=spent)
    mu_n = view.log_loss_grid(naive["N"].to_numpy(), naive["D"].to_numpy())
    y_n = simulate_outcomes(view, truth, mu_n, rng)
    lw_n = lw0
    for j in range(len(naive)):
        lw_n = update(view, lw_n, y_n[:, j], mu_n[j])
    widths_n, e_n = evaluate(values, lw_n, ci_prob=ci_prob)
    width_naive, naive_method = float(widths_n.mean()), "importance"
    if np.median(e_n) < min_ess and refit:
        ws = []
        for m in range(refit_worlds):
            added = pd.DataFrame({"N": naive["N"], "D": naive["D"], "loss": np.exp(y_n[m])})
            w, _ = refit_width(
                fit, added, tgt, ci_prob=ci_prob, random_seed=refit_seed + 1000 + m,
                draws=refit_draws, tune=refit_draws, chains=2,
            )
            ws.append(w)
        state["refits"] += refit_worlds
        width_naive, naive_method = float(np.mean(ws)), "refit"
    settings = {
        "card": view.card,
        "n_draws": s,
        "n_worlds": int(n_worlds),
        "ci_prob": float(ci_prob),
        "min_ess": float(min_ess),
        "refits": state["refits"],
        "naive_method": naive_method,
        "naive_ess": float(np.median(e_n)),
        "random_seed": random_seed,
    }
    return Plan(
        target=tgt.to_dict(),
        runs=runs,
        naive_runs=naive,
        candidates=table,
        width_now=width_now,
        width_after=float(current),
        width_after_naive=width_naive,
        budget_new=budget_new,
        ladder=lad,
        settings=settings,
    )
