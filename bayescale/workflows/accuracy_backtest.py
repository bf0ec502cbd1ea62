"""Backtest accuracy forecasts: hold out the largest runs, fit the rest, score the accuracies.

For each accuracy metric (and each group of runs, e.g. each training corpus, with ``group_by``):

1. the runs above a compute cutoff (the top 20% by default) are held out;
2. the chance test (:mod:`bayescale.scoring.chance`) runs on the *training* runs: a task without
   signal above chance there gets the flag and no forecast (nothing is scored);
3. the default fit (:func:`bayescale.engines.accuracy_ensemble.fit_accuracy_ensemble`, or one
   card) is fitted on the training runs, nested: its weights and discrepancy come from rolling
   splits of those runs alone;
4. each held-out accuracy is scored: coverage of the central predictive intervals at every level,
   mid-PIT, the Beta-binomial log score, and the absolute error of the predictive median in
   accuracy points, beside two point-fit baselines
   (:mod:`bayescale.engines.accuracy_pointfit`): the plug-in two-step forecast of Llama 3 and
   a direct least-squares sigmoid on ``log10 C``.

References
----------
Grattafiori, A. et al. (2024). The Llama 3 Herd of Models. arXiv:2407.21783, Sec. 3.2.1.
Bhagia, A. et al. (2024). arXiv:2412.04403.
Krajewski, J. et al. (2025). arXiv:2512.08894.
Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and
estimation. JASA 102(477).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayescale.engines.accuracy import TASK, _frame, accuracy_data
from bayescale.engines.accuracy_ensemble import (
    default_via,
    fit_accuracy_ensemble,
    step_one_runs,
)
from bayescale.engines.accuracy_pointfit import direct_point, plug_in_two_step
from bayescale.errors import InputError
from bayescale.fits import read
from bayescale.scoring.accuracy_forecast import (
    piece_log_density,
    predictive_accuracy_draws,
    score_accuracy_forecast,
)
from bayescale.scoring.accuracy_latent import mixture_latent
from bayescale.scoring.chance import NO_SIGNAL, chance_signal
from bayescale.scoring.discrepancy import DEFAULT_FRACS, extrapolation_decades
from bayescale.scoring.forecast import DEFAULT_PROBS, split_by_compute

__all__ = ["AccuracyBacktest", "accuracy_metrics", "backtest_accuracy"]


@dataclass(frozen=True)
class AccuracyBacktest:
    """Scores of accuracy forecasts for held-out runs, per metric and group, and pooled.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per held-out run of every metric (and group) with signal: ``metric``, ``group``,
        ``run``, ``N``, ``D``, ``C``, ``accuracy``, ``median`` (predictive median),
        ``abs_error``, ``pit``, ``lpd``, ``lo_<p>``/``hi_<p>``/``covered_<p>`` per level,
        ``plug_in`` and ``direct_point`` (the baselines' forecasts, NaN when not available).
    forecasts : pandas.DataFrame
        One row per metric and group: ``metric``, ``group``, ``signal``, ``flag``, ``cutoff``,
        ``n_train``, ``n_test``, ``coverage_<p>``, ``lpd_mean``, ``median_abs_error_points``,
        ``plug_in_mae_points``, ``direct_point_mae_points``, ``weights``, ``tau``,
        ``chance`` (the test's message), ``notes``; ``error`` for a metric or group that could
        not be read (a missing floor, a bad value), which is then not forecast (several metrics
        or groups: the others go on; one: the error is raised).
    probs : tuple of float
        Levels scored.
    """

    table: pd.DataFrame
    forecasts: pd.DataFrame
    probs: tuple = field(default=DEFAULT_PROBS)

    @property
    def pooled(self) -> dict:
        """Pooled over every held-out run with signal: ``n``, ``coverage`` by level,
        ``lpd_mean``, median absolute errors in accuracy points (ours and the baselines')."""
        t = self.table
        if t.empty:
            return {"n": 0, "coverage": {}, "lpd_mean": None, "median_abs_error_points": None,
                    "plug_in_mae_points": None, "direct_point_mae_points": None}
        return {
            "n": int(len(t)),
            "n_metrics": int(t["metric"].nunique()),
            "coverage": {f"{p:g}": float(t[f"covered_{p:g}"].mean()) for p in self.probs},
            "lpd_mean": float(t["lpd"].mean()),
            "below_median": float((t["pit"] < 0.5).mean()),
            "median_abs_error_points": float(100 * np.median(t["abs_error"])),
            "plug_in_mae_points": _mae(t, "plug_in"),
            "direct_point_mae_points": _mae(t, "direct_point"),
        }

    @property
    def errors(self) -> list[dict]:
        """``[{"metric", "group", "error"}]`` of the metrics and groups that could not be read."""
        if "error" not in self.forecasts:
            return []
        bad = self.forecasts[self.forecasts["error"].notna()]
        return [{"metric": r["metric"], "group": r["group"], "error": r["error"]}
                for r in bad.to_dict(orient="records")]

    def to_dict(self) -> dict:
        """JSON-ready: ``pooled``, ``forecasts`` (per metric and group), ``runs``, ``flagged``
        (metrics without signal above chance in some group) and ``errors``."""
        return {
            "pooled": self.pooled,
            "forecasts": _records(self.forecasts),
            "runs": _records(self.table),
            "probs": list(self.probs),
            "flagged": sorted(set(self.forecasts.loc[self.forecasts["flag"].notna(), "metric"])),
            "errors": self.errors,
        }


def _mae(t, column) -> float | None:
    err = (t[column] - t["accuracy"]).abs().dropna()
    return float(100 * np.median(err)) if len(err) else None


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
             for k, v in row.items()} for row in frame.to_dict(orient="records")]


def accuracy_metrics(frame: pd.DataFrame, patterns) -> list[str]:
    """Accuracy columns named or matched by glob ``patterns`` (``"acc_*"``), in table order.

    Raises
    ------
    InputError
        For a pattern that matches no column.
    """
    out = []
    for pat in [patterns] if isinstance(patterns, str) else list(patterns):
        hits = [c for c in frame.columns if fnmatch.fnmatchcase(str(c), pat)]
        if not hits:
            raise InputError(f"--metric {pat!r} matches no column of the runs table")
        out += [h for h in hits if h not in out]
    return out


def backtest_accuracy(
    runs,
    *,
    metrics,
    via: str | None = None,
    floor=TASK,
    n_examples=TASK,
    compute: str | None = None,
    tasks: pd.DataFrame | None = None,
    group_by: str | None = None,
    holdout_frac: float = 0.2,
    cutoff: float | None = None,
    card: str | None = None,
    probs=DEFAULT_PROBS,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    executor: str = "process",
    on_metric=None,
) -> AccuracyBacktest:
    """Backtest accuracy forecasts of one or several metrics, per group and pooled.

    Parameters
    ----------
    runs : pandas.DataFrame, str or Path
        The whole runs table.
    metrics : str or sequence of str
        Accuracy columns or glob patterns (``"acc_*"``).
    via : str, optional
        Loss column of the two-step law (default the table's ``loss`` column, if any).
    floor, n_examples, compute, tasks
        As in :func:`bayescale.engines.accuracy.accuracy_data` (``"task"``: from the task table,
        per metric).
    group_by : str, optional
        Column whose values are backtested separately (e.g. the training corpus) and pooled.
    holdout_frac, cutoff
        The held-out runs of each group: the top ``holdout_frac`` by compute, or ``C > cutoff``.
    card : str, optional
        One accuracy card instead of the stacked default.
    probs : sequence of float
        Central interval levels scored.
    draws, tune, chains, random_seed, executor
        Sampler settings and where the fits run.
    on_metric : callable, optional
        Called with ``(metric, group)`` before each forecast (progress).

    Returns
    -------
    AccuracyBacktest

    Raises
    ------
    InputError
        For a missing column, a bad split, or bad accuracy input (see
        :func:`bayescale.engines.accuracy.accuracy_data`).
    """
    frame = _frame(runs).reset_index(drop=True)
    names = accuracy_metrics(frame, metrics)
    via = default_via(frame, via)
    if group_by is not None and group_by not in frame:
        raise InputError(f"--group-by column {group_by!r} is not in the runs table; columns: "
                         f"{', '.join(map(str, frame.columns[:12]))}")
    groups = ([(None, frame)] if group_by is None else
              [(str(g), sub.reset_index(drop=True)) for g, sub in frame.groupby(group_by,
                                                                                 sort=True)])
    rows, summaries = [], []
    for metric in names:
        for label, sub in groups:
            if on_metric is not None:
                on_metric(metric, label)
            try:
                summary, table = _one(sub, metric=metric, group=label, via=via, floor=floor,
                                      n_examples=n_examples, compute=compute, tasks=tasks,
                                      holdout_frac=holdout_frac, cutoff=cutoff, card=card,
                                      probs=probs, draws=draws, tune=tune, chains=chains,
                                      random_seed=random_seed, executor=executor)
            except InputError as exc:  # one bad metric or group does not lose the others
                if len(names) * len(groups) == 1:
                    raise
                summary, table = {"metric": metric, "group": label, "signal": False,
                                  "flag": None, "error": str(exc)}, None
            summaries.append(summary)
            if table is not None:
                rows.append(table)
    if summaries and all(sm.get("error") for sm in summaries):
        raise InputError(f"no metric could be backtested; first error: {summaries[0]['error']}")
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["metric", "group", "accuracy", "abs_error", "pit", "lpd", "plug_in",
                 "direct_point", *[f"covered_{p:g}" for p in probs]])
    return AccuracyBacktest(table=table, forecasts=pd.DataFrame(summaries), probs=tuple(probs))


def _one(frame, *, metric, group, via, floor, n_examples, compute, tasks, holdout_frac, cutoff,
         card, probs, draws, tune, chains, random_seed, executor):
    """Summary and per-run table of one metric on one group of runs."""
    data = accuracy_data(frame, metric=metric, via=via, floor=floor, n_examples=n_examples,
                         compute=compute, tasks=tasks)
    mask, cut = split_by_compute(data.C, holdout_frac=holdout_frac, cutoff=cutoff, min_train=6)
    train = frame[~mask].reset_index(drop=True)
    chance = chance_signal(data.accuracy[~mask], data.C[~mask], floor=data.floor,
                           n_examples=data.n_examples)
    summary = {"metric": metric, "group": group, "signal": bool(chance.signal),
               "flag": None if chance.signal else NO_SIGNAL, "cutoff": float(cut),
               "n_train": int((~mask).sum()), "n_test": int(mask.sum()),
               "chance": chance.message, "floor": data.floor}
    if not chance.signal:
        return summary, None
    fixed = {"metric": metric, "floor": data.floor, "n_examples": data.n_examples,
             "compute": compute, "tasks": tasks}
    fit = fit_accuracy_ensemble(
        train, via=via, cards=None if card is None else [card],
        holdout_fracs=() if card is not None else DEFAULT_FRACS,
        draws=draws, tune=tune, chains=chains, split_draws=draws, split_tune=tune,
        random_seed=random_seed, executor=executor, **fixed,
    )
    y = data.accuracy[mask]
    N, D = (None if data.N is None else data.N[mask]), (None if data.D is None else data.D[mask])
    draws_, lpd, delta = _forecast(fit, C=data.C[mask], N=N, D=D, y=y,
                                   n_examples=data.n_examples, rng=random_seed)
    scores = score_accuracy_forecast(y, draws_, probs=probs)
    table = pd.DataFrame({"metric": metric, "group": group, "run": data.run[mask],
                          "C": data.C[mask], "accuracy": y, "delta_decades": delta, "lpd": lpd,
                          **scores})
    if N is not None:
        table.insert(4, "N", N)
        table.insert(5, "D", D)
    table["direct_point"] = _baseline(lambda: direct_point(data.C[~mask], data.accuracy[~mask],
                                                           data.C[mask], floor=data.floor), y)
    table["plug_in"] = np.nan
    if via is not None and N is not None:
        table["plug_in"] = _baseline(lambda: plug_in_two_step(
            step_one_runs(train, via), data.via_loss[~mask], data.accuracy[~mask], N, D,
            floor=data.floor)[0], y)
    view = read(fit)
    record = view.accuracy_ensemble_info or {}
    summary.update({
        **{f"coverage_{p:g}": float(table[f"covered_{p:g}"].mean()) for p in probs},
        "lpd_mean": float(np.mean(lpd)),
        "median_abs_error_points": float(100 * np.median(table["abs_error"])),
        "plug_in_mae_points": _mae(table, "plug_in"),
        "direct_point_mae_points": _mae(table, "direct_point"),
        "weights": record.get("weights"),
        "tau": record.get("tau"),
        "validated_decades": record.get("validated_decades"),
        "lack_of_fit": (record.get("lack_of_fit") or {}).get("flag"),
        "notes": "; ".join(record.get("notes", [])),
        "excluded_splits": len(record.get("convergence", {}).get("excluded_splits", [])),
    })
    return summary, table


def _baseline(make, y) -> np.ndarray:
    """A baseline's forecasts, NaN when its point fit cannot be made (said in the table)."""
    try:
        return np.asarray(make(), dtype=float)
    except (InputError, ValueError, np.linalg.LinAlgError):
        return np.full(np.size(y), np.nan)


def _forecast(fit, *, C, N, D, y, n_examples, rng):
    """Predictive draws ``(S, Q)`` of the held-out accuracies, their log scores and distances."""
    rng = np.random.default_rng(rng)
    latent = mixture_latent(fit, C=C, N=N, D=D, rng=rng)
    record = read(fit).accuracy_ensemble_info or {}
    tau = float(record.get("tau", 0.0))
    fitted = fit["constant_data"]["C"].to_numpy()
    delta = extrapolation_decades(C, float(fitted.max()))
    piece = {"y": y, "z": latent["z_new"], "floor": latent["floor"],
             "ceiling": latent["ceiling"], "sigma": latent["sigma"],
             "n_examples": n_examples, "delta": delta}
    lpd = piece_log_density(piece, tau)
    _, new = predictive_accuracy_draws(
        rng, z=latent["z_new"], floor=latent["floor"], ceiling=latent["ceiling"],
        sigma=latent["sigma"], n_examples=n_examples, delta=delta, tau=tau)
    return new, lpd, delta
