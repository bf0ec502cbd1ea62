"""The report of a pooled fit: per-family parameters, the families section and its one figure.

The document has the layout of :func:`bayescale.report.write_report` (so the same Markdown and
HTML renderers draw it), with the per-family parameters in ``params`` (``"alpha [rpj]"``) and a
``families`` section: each family's compute-optimal allocation at the budgets, the pairwise
contrasts with their probabilities, and the pooling scales; the figure shows the per-family
frontiers with bands on one axis and the contrast intervals.
"""

from __future__ import annotations

import json
from pathlib import Path

from bayescale.families.views import families_info, family_labels, family_view

CAPTION = (
    "Left: each family's runs and its compute-optimal frontier L*(C) (posterior median and "
    "band), the fitted compute range shaded and the contrast budget dotted. Right: the posterior "
    "of the difference of compute-optimal losses between each pair of families at that budget "
    "(median and interval), with the probability that the first family reaches the lower loss."
)


def families_doc(fit, *, budgets, ci_prob: float, ci_kind: str) -> dict:
    """The ``families`` section of the report document."""
    from bayescale.families.summary import contrast_json

    doc = contrast_json(fit, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind)
    doc["n_runs"] = families_info(fit)["n_runs"]
    doc["pooled"] = families_info(fit)["pooled"]
    return doc


def report_tables(doc, *, cell) -> list[dict]:
    """Tables of the ``families`` section, in the report's table format."""
    fam = doc["families"]
    iv = f"{round(fam['ci_prob'] * 100, 6):g}% {fam['ci_kind'].upper()}"
    names = {"N_opt": "N*", "D_opt": "D*", "tokens_per_param": "D*/N*", "loss_opt": "L*"}
    opt = [
        [r["family"], cell(r["budget"]), names[r["quantity"]], cell(r["median"]),
         cell(r["lower"]), cell(r["upper"])]
        for r in fam["optimal"]
    ]
    con = [
        [r["pair"], r["quantity"], cell(r["budget"]), cell(r["median"]), cell(r["lower"]),
         cell(r["upper"]), cell(r["p_x_below_y"])]
        for r in fam["contrasts"]
    ]
    pool = [
        [r["param"], r["family"], cell(r["median"]), cell(r["tau"]), cell(r.get("log_ratio")),
         cell(r.get("log_ratio_lower")), cell(r.get("log_ratio_upper")),
         "yes" if r.get("own_value") else "no"]
        for r in fam["pooling"]
    ]
    return [
        {
            "id": "families_optimal",
            "title": "Families: compute-optimal allocation per family",
            "columns": ["family", "budget C (FLOPs)", "quantity", "median", f"{iv} lower",
                        f"{iv} upper"],
            "rows": opt,
            "note": f"Runs per family: {fam['n_runs']}. Every answer is per family.",
        },
        {
            "id": "families_contrasts",
            "title": "Families: contrasts (X - Y; X / Y for N* and D*)",
            "columns": ["pair", "quantity", "budget C (FLOPs)", "median", f"{iv} lower",
                        f"{iv} upper", "P(X below Y)"],
            "rows": con,
            "note": (
                "Computed draw by draw on the joint posterior. For loss_opt, P(X below Y) is the "
                "probability that family X reaches the lower loss at that budget, each trained "
                "compute-optimally."
            ),
        },
        {
            "id": "families_pooling",
            "title": f"Families: pooled parameters ({', '.join(fam['pooled']) or 'none'})",
            "columns": ["parameter", "family", "median", "pooling scale tau", "log(value/mu)",
                        "lower", "upper", "keeps its own value"],
            "rows": pool,
            "note": (
                "tau is the spread of log(value) across families (median); mu the families' "
                "geometric mean. A family whose log(value/mu) interval excludes 0 keeps its "
                "own value: its runs disagree with the others."
            ),
        },
    ]


def write_families_report(fit, out_dir, *, budgets=None, ci_prob: float = 0.9,
                          ci_kind: str = "eti", random_seed=0) -> dict:
    """Write ``report.html``, ``report.md``, ``report.json`` and the figure of a pooled fit.

    Called by :func:`bayescale.report.write_report` for a fit with families; same files and
    layout, per-family content (see the module docstring).
    """
    from bayescale import report as rep
    from bayescale.ensemble.members import is_ensemble, validated_decades
    from bayescale.families.plots import plot_families
    from bayescale.io import atomic_write_text
    from bayescale.plots import save_figure
    from bayescale.posterior import card_of, provenance, runs_of
    from bayescale.summary import to_jsonable

    out_dir = Path(out_dir)
    card = card_of(fit)
    law = card.law_spec
    runs = runs_of(fit)
    budgets = rep._check_budgets(budgets)
    prov = provenance(fit)
    params = []
    for lab in family_labels(fit):
        for row in rep._param_rows(family_view(fit, lab), ci_prob=ci_prob, ci_kind=ci_kind):
            params.append({**row, "parameter": f"{row['parameter']} [{lab}]"})
    info = families_info(fit)
    ensemble = is_ensemble(fit)
    what = "law ensemble" if ensemble else f"{card.name} card"
    if ensemble:  # every card pooled over the families (bayescale.families.ensemble)
        from bayescale.ensemble import members

        laws = [card_of(tree).law_spec for _, _, tree in members(fit)]
        card_doc = {"name": "ensemble", "law": "mixture",
                    "formula": "weighted mixture of: " + "; ".join(w.formula for w in laws),
                    "family": card.family,
                    "reference": "Yao et al. (2018), Bayesian Analysis 13(3) (stacking)"}
    else:
        card_doc = {"name": card.name, "law": card.law, "formula": law.formula,
                    "family": card.family, "reference": law.reference}
    doc = {
        "title": (f"bayescale report: {what} on {len(runs)} runs in "
                  f"{len(info['labels'])} families ({info['group_by']})"),
        "card": card_doc,
        "ensemble": rep._ensemble_doc(fit) if ensemble else None,
        "validated_decades": validated_decades(fit),
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
    doc = to_jsonable(doc)
    fig = plot_families(fit, budget=max(budgets), ci_prob=ci_prob, ci_kind=ci_kind)
    png, svg = save_figure(fig, out_dir / rep.FIGURE_DIR, "families")
    doc["figures"]["families"] = {"png": f"{rep.FIGURE_DIR}/{png.name}",
                                  "svg": f"{rep.FIGURE_DIR}/{svg.name}", "caption": CAPTION}
    tables = rep._tables(doc)
    atomic_write_text(out_dir / "report.json",
                      json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n")
    atomic_write_text(out_dir / "report.md", rep._markdown(doc, tables))
    atomic_write_text(out_dir / "report.html", rep._html(doc, tables, {"families":
                                                                         png.read_bytes()}))
    return doc
