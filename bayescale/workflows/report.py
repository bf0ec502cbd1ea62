"""One-stop reports: fit, answers and figures as a self-contained HTML page, Markdown and JSON.

:func:`write_report` turns a fit (and optionally a comparison and a backtest) into three files in
one folder, plus the figures they show:

* ``report.json`` holds every number shown, unformatted (strict JSON: NaN is ``null``);
* ``report.md`` holds the same tables, with the figures referenced as ``figures/<name>.png``;
* ``report.html`` holds the same tables with the figures embedded as base64 PNG, so the page is a
  single file with no external resource.

The tables of the Markdown and HTML are both rendered from the JSON document, with one number
formatter (:func:`format_number`), so a number reads the same in the three files.
:func:`report` fits the runs first (and the comparison cards and a backtest), then writes it all.

References
----------
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models. arXiv:2203.15556.
Vehtari, A., Gelman, A. & Gabry, J. (2017). Practical Bayesian model evaluation using leave-one-out
cross-validation and WAIC. Statistics and Computing 27.
"""

from __future__ import annotations

import json
from pathlib import Path

from bayescale.answers import plots, score_plots
from bayescale.answers.family_summary import summary_table
from bayescale.answers.planning.plots import plot_plan
from bayescale.answers.planning.summary import report_sections
from bayescale.answers.plots import save_figure
from bayescale.answers.summary import summarize, to_jsonable
from bayescale.core.cards import load_card
from bayescale.core.io import atomic_write, atomic_write_text, save
from bayescale.core.runs import METRIC
from bayescale.core.stats import check_ci
from bayescale.errors import InputError
from bayescale.fits.layout import provenance, runs_of
from bayescale.fits.view import read
from bayescale.workflows.backtest import backtest as run_backtest
from bayescale.workflows.compare import compare
from bayescale.workflows.fit import fit as run_fit
from bayescale.workflows.fit import metric_runs
from bayescale.workflows.render import (
    _CAPTIONS,
    FIGURE_DIR,
    _backtest_doc,
    _card_doc,
    _check_budgets,
    _check_queries,
    _comparison_doc,
    _ensemble_doc,
    _exponent_rows,
    _html,
    _markdown,
    _optimal_rows,
    _param_rows,
    _prediction_rows,
    _reference_rows,
    _runs_doc,
    _tables,
    _target_rows,
)
from bayescale.workflows.report_families import write_families_report

# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _figures(fit, *, backtest, calibration_table, ci_prob, ci_kind, random_seed) -> dict:

    makers = plots.figure_makers(fit, ci_prob=ci_prob, ci_kind=ci_kind, random_seed=random_seed)
    if backtest is not None:
        makers["backtest"] = lambda: score_plots.plot_backtest(backtest, runs=runs_of(fit))
        makers["reliability"] = lambda: score_plots.plot_reliability(backtest)
    if calibration_table is not None:
        makers["calibration"] = lambda: score_plots.plot_calibration(calibration_table)
    return makers


def write_report(
    fit,
    out_dir,
    *,
    budgets=None,
    queries=None,
    target_loss=None,
    comparison=None,
    backtest=None,
    calibration_table=None,
    ci_prob: float = 0.9,
    ci_kind: str = "eti",
    random_seed=0,
    plan_budget=None,
    inference_tokens=None,
) -> dict:
    """Write ``report.html``, ``report.md``, ``report.json`` and the figures of a fit.

    Only ``report.html``, ``report.md``, ``report.json`` and ``figures/<name>.png|svg`` are
    written in ``out_dir``, each atomically; other files there are left alone.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit from :func:`bayescale.fit`.
    out_dir : str or Path
        Destination folder (created if missing).
    budgets : sequence of float, optional
        Budgets (FLOPs) of the allocation table (default :data:`DEFAULT_BUDGETS`).
    queries : list of dict, dict of sequences or DataFrame, optional
        Query points, any two of ``N``, ``D``, ``C`` each (e.g. ``[{"N": 7e10, "D": 1.4e12}]``).
        Default: the Chinchilla model on LM-like runs, else 10x the largest fitted compute.
    target_loss : float, optional
        Adds ``P(loss < target)`` to the predictions.
    comparison : ComparisonResult, optional
        From :func:`bayescale.compare`; adds the LOO and backtest tables and the verdict.
    backtest : BacktestResult, optional
        From :func:`bayescale.backtest`; adds its summary and figure.
    calibration_table : pandas.DataFrame, optional
        From :func:`bayescale.calibration`; adds the calibration figure.
    ci_prob : float, default 0.9
        Probability of every interval in the report.
    ci_kind : {"eti", "hdi"}, default "eti"
        Interval kind.
    random_seed : int, default 0
        Seed of the predictive draws and of the residual plot's noise band.
    plan_budget : float, optional
        Adds "What to run next": the plan of new runs worth this many FLOPs that most narrows
        the interval of the law's loss at the first query (:func:`bayescale.answers.planning.plan`),
        with its figure.
    inference_tokens : float, optional
        Adds the inference-aware optimum (training plus serving this many tokens) next to the
        training-only one at each budget (Sardana et al. 2024).

    Returns
    -------
    dict
        The JSON document written to ``report.json``.

    Examples
    --------
    >>> doc = write_report(post, "report/")  # doctest: +SKIP
    >>> doc["optimal"][1]["N_opt"]["median"]  # doctest: +SKIP
    """

    check_ci(ci_prob, ci_kind)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"out_dir {out_dir} exists and is not a folder")
    view = read(fit)
    if view.is_pooled:  # per-family answers and contrasts
        return write_families_report(fit, out_dir, budgets=budgets, ci_prob=ci_prob,
                                     ci_kind=ci_kind, random_seed=random_seed)
    card = view.card
    law = view.law
    runs = runs_of(fit)
    budgets = _check_budgets(budgets)
    q = _check_queries(queries, law=law, runs=runs)
    prov = provenance(fit)
    doc = {
        "title": f"bayescale report: {view.label} on {len(runs)} runs",
        "card": _card_doc(view),
        "ensemble": _ensemble_doc(fit) if view.is_mixture else None,
        "validated_decades": view.validated_decades,
        "runs": _runs_doc(runs, fit),
        "ci_prob": float(ci_prob),
        "ci_kind": ci_kind,
        "random_seed": random_seed,
        "target_loss": None if target_loss is None else float(target_loss),
        "sampler": prov.get("sampler", {}),
        "diagnostics": prov.get("diagnostics", {}),
        "params": _param_rows(fit, ci_prob=ci_prob, ci_kind=ci_kind),
        "predictions": _prediction_rows(fit, q, target_loss=target_loss, ci_prob=ci_prob,
                                        ci_kind=ci_kind, random_seed=random_seed),
        "optimal": (_optimal_rows(fit, budgets, ci_prob=ci_prob, ci_kind=ci_kind)
                    if law.has_optimum else []),
        "references": _reference_rows(card, budgets) if law.has_optimum else [],
        "exponents": (_exponent_rows(fit, card, ci_prob=ci_prob, ci_kind=ci_kind)
                      if law.has_optimum else []),
        "target": (_target_rows(fit, target_loss, ci_prob=ci_prob, ci_kind=ci_kind)
                   if target_loss is not None and law.has_optimum else []),
        "comparison": _comparison_doc(comparison),
        "backtest": _backtest_doc(backtest),
        "figures": {},
        "provenance": {k: prov.get(k) for k in ("created_at", "versions", "runs", "sampler")},
    }
    planned = None
    if law.has_optimum and (plan_budget is not None or inference_tokens):

        planned, doc["plan"], doc["inference"] = report_sections(
            fit, queries=q, budgets=budgets, plan_budget=plan_budget,
            inference_tokens=inference_tokens, ci_prob=ci_prob, ci_kind=ci_kind,
            random_seed=random_seed,
        )
    doc = to_jsonable(doc)

    images = {}
    makers = _figures(fit, backtest=backtest, calibration_table=calibration_table,
                      ci_prob=ci_prob, ci_kind=ci_kind, random_seed=random_seed)
    if planned is not None:

        makers["plan"] = lambda: plot_plan(planned, runs=runs)
    for name, make in makers.items():
        png, svg = save_figure(make(), out_dir / FIGURE_DIR, name)
        images[name] = png.read_bytes()
        doc["figures"][name] = {
            "png": f"{FIGURE_DIR}/{png.name}",
            "svg": f"{FIGURE_DIR}/{svg.name}",
            "caption": _CAPTIONS[name],
        }
    tables = _tables(doc)
    atomic_write_text(out_dir / "report.json",
                      json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n")
    atomic_write_text(out_dir / "report.md", _markdown(doc, tables))
    atomic_write_text(out_dir / "report.html", _html(doc, tables, images))
    return doc


def report(
    runs,
    *,
    card=None,
    out_dir,
    priors=None,
    compare_cards=None,
    holdout_frac: float = 0.2,
    budgets=None,
    queries=None,
    target_loss=None,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    random_seed=0,
    ci_prob: float = 0.9,
    ci_kind: str = "eti",
    plan_budget=None,
    inference_tokens=None,
    group_by=None,
    metric=None,
    metrics=None,
    pool_metrics=None,
    executor: str = "process",
) -> dict:
    """Fit a card, answer, draw and write the report, in one go.

    Besides the files of :func:`write_report`, writes ``posterior.nc`` (the fit) and
    ``summary.csv`` (the parameter table) in ``out_dir``. A backtest of the card on the
    ``holdout_frac`` largest-compute runs is always run; with ``compare_cards`` the cards are also
    compared (PSIS-LOO and backtests, :func:`bayescale.compare`), the verdict added, and the
    comparison's fit of ``card`` reused as the report's fit.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        The runs (see :func:`bayescale.load_runs`).
    card : str, Path, Card or None, default None
        Model card. None: the default law ensemble (:func:`bayescale.ensemble.fit_ensemble`),
        backtested nested (its weights and discrepancy refitted on the training runs only);
        with ``group_by``, the same ensemble with every card pooled over the families.
    out_dir : str or Path
        Destination folder.
    priors : Mapping, optional
        Prior overrides of ``card``.
    compare_cards : sequence of str, optional
        Other cards to compare ``card`` with.
    holdout_frac : float, default 0.2
        Share of largest-compute runs held out in the backtests.
    budgets, queries, target_loss, plan_budget, inference_tokens
        As in :func:`write_report`.
    group_by : str, optional
        Column labelling families of runs: one pooled fit of all families
        (:mod:`bayescale.families`) and a per-family report with the families section (no
        backtest: run :func:`bayescale.backtest` with ``group_by`` for that; with
        ``group_by="metric"``, several metrics, the backtest per metric is run and shown).
    metric, metrics : optional
        As in :func:`bayescale.load_runs`: one column as the loss (the report as ever), or
        several metrics (names or glob patterns such as ``"loss_*"``): one fit of every metric
        (``group_by="metric"``, see ``pool_metrics``), its per-metric report, and a backtest per
        metric, the pooled fit against each metric fitted alone (as
        :func:`bayescale.workflows.metrics.backtest_metrics` with ``pool_metrics=True``).
    pool_metrics : bool or None, default None
        With several metrics, as in :func:`bayescale.fit` (None: each metric on its own with a
        card, pooled for the law ensemble).
    draws, tune, chains : int
        Sampler settings of every fit.
    random_seed : int, default 0
        Seed of every fit and draw.
    executor : {"process", "serial", "ray"}, default "process"
        Where the law ensembles' independent fits run (:func:`bayescale.fit`).
    ci_prob : float, default 0.9
        Interval probability.
    ci_kind : {"eti", "hdi"}, default "eti"
        Interval kind.

    Returns
    -------
    dict
        The JSON document written to ``report.json``.

    Examples
    --------
    >>> import bayescale as bs
    >>> doc = bs.report(bs.datasets.simulate(random_seed=0), out_dir="report/")  # doctest: +SKIP
    """

    check_ci(ci_prob, ci_kind)
    if card is None:  # the law ensemble (pooled over the families with group_by)
        if priors:
            raise InputError("prior overrides need one card: pass card=NAME with priors")
        if compare_cards:
            raise InputError("compare_cards compares single cards: pass card=NAME as well")
    else:
        card = load_card(card, priors=priors)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"out_dir {out_dir} exists and is not a folder")
    sampler = {"draws": draws, "tune": tune, "chains": chains, "random_seed": random_seed}
    if metric is not None or metrics is not None:
        runs, group_by = metric_runs(runs, metric=metric, metrics=metrics, group_by=group_by)
    if group_by is not None:

        post = run_fit(runs, card=card, group_by=group_by, pool_metrics=pool_metrics,
                       executor=executor, **sampler)
        save(post, out_dir / "posterior.nc")
        table = summary_table(post, ci_prob=ci_prob, ci_kind=ci_kind)
        atomic_write(out_dir / "summary.csv", lambda p: table.to_csv(p, index=False))
        if group_by != METRIC:
            return write_report(post, out_dir, budgets=budgets, ci_prob=ci_prob,
                                ci_kind=ci_kind, random_seed=random_seed)
        # the fit above pooled and alone, side by side (the law ensemble's fit always pools)
        bt = run_backtest(runs, card=card, holdout_frac=holdout_frac, group_by=group_by,
                          separate=True, pool_metrics=True, executor=executor, **sampler)
        return write_families_report(post, out_dir, budgets=budgets, ci_prob=ci_prob,
                                     ci_kind=ci_kind, random_seed=random_seed, backtest=bt,
                                     holdout_frac=holdout_frac)
    comparison = None
    post = None
    others = [c for c in (load_card(c) for c in compare_cards or ())
              if card is not None and c.name != card.name]
    if others:

        comparison = compare(runs, cards=[card, *others], holdout_frac=holdout_frac, **sampler)
        post = comparison.fits.get(card.name)
    if post is None:
        post = run_fit(runs, card=card, executor=executor, **sampler)
    save(post, out_dir / "posterior.nc")
    table = summarize(post, ci_prob=ci_prob, ci_kind=ci_kind)
    atomic_write(out_dir / "summary.csv", lambda p: table.to_csv(p))
    bt = run_backtest(runs, card=card, holdout_frac=holdout_frac, executor=executor,
                      **sampler)
    return write_report(
        post, out_dir, budgets=budgets, queries=queries, target_loss=target_loss,
        comparison=comparison, backtest=bt, ci_prob=ci_prob, ci_kind=ci_kind,
        random_seed=random_seed, plan_budget=plan_budget, inference_tokens=inference_tokens,
    )
