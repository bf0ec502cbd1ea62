"""The report of a pooled fit: per-family parameters, the families section and its one figure.

The document has the layout of :func:`bayescale.workflows.report.write_report` (so the same
Markdown and
HTML renderers draw it), with the per-family parameters in ``params`` (``"alpha [rpj]"``) and a
``families`` section: each family's compute-optimal allocation at the budgets, the pairwise
contrasts with their probabilities, and the pooling scales; the figure shows the per-family
frontiers with bands on one axis and the contrast intervals.
"""

from __future__ import annotations

import json
from pathlib import Path

from bayescale.answers.family_plots import plot_families
from bayescale.answers.family_summary import contrast_json, records
from bayescale.answers.plots import figure_makers, save_figure
from bayescale.answers.summary import to_jsonable
from bayescale.core.io import atomic_write_text
from bayescale.core.runs import METRIC
from bayescale.fits.layout import provenance, runs_of
from bayescale.fits.view import read
from bayescale.workflows import render as rep

CAPTION = (
    "Left: each family's runs and its compute-optimal frontier L*(C) (posterior median and "
    "band), the fitted compute range shaded and the contrast budget dotted. Right: the posterior "
    "of the difference of compute-optimal losses between each pair of families at that budget "
    "(median and interval), with the probability that the first family reaches the lower loss."
)


def families_doc(fit, *, budgets, ci_prob: float, ci_kind: str) -> dict:
    """The ``families`` section of the report document."""
    doc = contrast_json(fit, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind)
    info = read(fit).families_info
    doc["n_runs"] = info["n_runs"]
    doc["pooled"] = info["pooled"]
    return doc


def write_families_report(fit, out_dir, *, budgets=None, ci_prob: float = 0.9,
                          ci_kind: str = "eti", random_seed=0, backtest=None,
                          holdout_frac: float = 0.2) -> dict:
    """Write ``report.html``, ``report.md``, ``report.json`` and the figure of a pooled fit.

    Called by :func:`bayescale.workflows.report.write_report` for a fit with families; same files
    and
    layout, per-family content (see the module docstring). ``backtest``, a backtest of families
    (:func:`bayescale.backtest` with ``group_by``, ``holdout_frac`` held out), adds its
    per-family table (``families_backtest`` in the JSON).
    """
    out_dir = Path(out_dir)
    view = read(fit)
    runs = runs_of(fit)
    budgets = rep._check_budgets(budgets)
    prov = provenance(fit)
    params = []
    for lab, tree in view.family_trees().items():
        for row in rep._param_rows(tree, ci_prob=ci_prob, ci_kind=ci_kind):
            params.append({**row, "parameter": f"{row['parameter']} [{lab}]"})
    info = view.families_info
    doc = {
        "title": (f"bayescale report: {view.label} on {len(runs)} runs in "
                  f"{len(info['labels'])} families ({info['group_by']})"),
        "card": rep._card_doc(view),
        "ensemble": rep._ensemble_doc(fit) if view.is_mixture else None,
        "validated_decades": view.validated_decades,
        "runs": rep._runs_doc(runs, fit),
        "ci_prob": float(ci_prob),
        "ci_kind": ci_kind,
        "random_seed": random_seed,
        "target_loss": None,
        "sampler": prov.get("sampler", {}),
        "diagnostics": prov.get("diagnostics", {}),
        "params": params,
        "predictions": [],
        "optimal": [],
        "references": [],
        "exponents": [],
        "target": [],
        "comparison": None,
        "backtest": None,
        "families": families_doc(fit, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind),
        "figures": {},
        "provenance": {k: prov.get(k) for k in ("created_at", "versions", "runs", "sampler",
                                                "families")},
    }
    if backtest is not None:
        doc["families_backtest"] = records(backtest.families)
    doc = to_jsonable(doc)
    images = {}
    fig = plot_families(fit, budget=max(budgets), ci_prob=ci_prob, ci_kind=ci_kind)
    png, svg = save_figure(fig, out_dir / rep.FIGURE_DIR, "families")
    doc["figures"]["families"] = {"png": f"{rep.FIGURE_DIR}/{png.name}",
                                  "svg": f"{rep.FIGURE_DIR}/{svg.name}", "caption": CAPTION}
    images["families"] = png.read_bytes()
    for name, make in figure_makers(fit, ci_prob=ci_prob, ci_kind=ci_kind,
                                    random_seed=random_seed).items():
        kind, lab = name.split("-", 1)
        png, svg = save_figure(make(), out_dir / rep.FIGURE_DIR, name)
        doc["figures"][name] = {"png": f"{rep.FIGURE_DIR}/{png.name}",
                                "svg": f"{rep.FIGURE_DIR}/{svg.name}",
                                "caption": f"Family {lab}. " + rep._CAPTIONS[kind]}
        images[name] = png.read_bytes()
    tables = rep._tables(doc)
    if backtest is not None:
        tables.append(backtest_table(backtest, holdout_frac=holdout_frac))
    atomic_write_text(out_dir / "report.json",
                      json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n")
    atomic_write_text(out_dir / "report.md", rep._markdown(doc, tables))
    atomic_write_text(out_dir / "report.html", rep._html(doc, tables, images))
    return doc


def backtest_table(result, *, holdout_frac: float) -> dict:
    """The per-family (per-metric) backtest as a report table ``{"id", "title", "columns",
    "rows", "note"}`` (cells as text)."""
    word = "metric" if result.group_by == METRIC else "family"
    frame = result.families
    columns = [word if c == "family" else c for c in frame.columns]
    rows = [[v if isinstance(v, str) else rep.format_number(v) for v in row]
            for row in frame.itertuples(index=False)]
    return {
        "id": "families-backtest",
        "title": f"Backtest per {word}: pooled fit against each {word} fitted alone",
        "columns": columns,
        "rows": rows,
        "note": (f"The top {holdout_frac:.0%} of each {word}'s runs by compute held out; "
                 "lpd_mean is the mean log predictive density of their log loss (higher is "
                 "better), coverage90 the share inside the 90% predictive interval (coverage50 "
                 "the 50%, ...)."),
    }
