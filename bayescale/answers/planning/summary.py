"""Plain-data summaries shared by the CLI and the report: a plan, and the two optima side by side.

The inference-aware optimum itself lives with the other allocations in
:mod:`bayescale.answers.allocation` (:func:`~bayescale.answers.allocation.inference_optimum`); this
module only
lays the training-only and the inference-aware answers next to each other.
"""

from __future__ import annotations

import numpy as np

from bayescale.answers.allocation import inference_compute_for_loss, optimal
from bayescale.answers.planning.plan import plan
from bayescale.answers.prediction import query_points
from bayescale.fits.layout import card_of

QUANTITIES = ("N_opt", "D_opt", "tokens_per_param", "loss_opt")


def _triplet(ds, name, i) -> dict:
    lo, hi = (float(v) for v in np.asarray(ds[f"{name}_ci"][i]))
    return {"median": float(ds[name][i]), "lo": lo, "hi": hi}


def inference_side_by_side(
    fit, *, budgets, inference_tokens, target_loss=None, ci_prob=0.9, ci_kind="eti"
) -> dict:
    """Training-only and inference-aware optimum per budget (and for a target loss).

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of a two-variable law.
    budgets : sequence of float
        Total compute budgets in FLOPs (training only, or training plus inference).
    inference_tokens : float
        Tokens served over the model's lifetime (Sardana et al. 2024).
    target_loss : float, optional
        Also the least compute reaching this law loss, both ways.

    Returns
    -------
    dict
        ``inference_tokens``, ``budgets`` (rows with ``budget``, ``training_only`` and
        ``inference_aware``, each ``{quantity: {"median", "lo", "hi"}}``; the inference-aware
        side also has ``train_fraction``) and, with a target, ``target`` (``training_only`` and
        ``inference_aware`` answers of
        :func:`~bayescale.answers.allocation.inference_compute_for_loss`).
    """
    train = optimal(fit, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind)
    aware = optimal(
        fit, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind, inference_tokens=inference_tokens
    )
    rows = []
    for i, c in enumerate(np.asarray(train["budget"])):
        t = {k: _triplet(train, k, i) for k in QUANTITIES}
        a = {k: _triplet(aware, k, i) for k in (*QUANTITIES, "train_fraction")
             if k in aware}
        rows.append({"budget": float(c), "training_only": t, "inference_aware": a})
    out = {"inference_tokens": float(inference_tokens), "ci_prob": float(ci_prob),
           "ci_kind": ci_kind, "budgets": rows}
    if target_loss is not None:
        out["target"] = {
            "training_only": inference_compute_for_loss(
                fit, target_loss=target_loss, inference_tokens=0.0, ci_prob=ci_prob,
                ci_kind=ci_kind,
            ),
            "inference_aware": inference_compute_for_loss(
                fit, target_loss=target_loss, inference_tokens=inference_tokens,
                ci_prob=ci_prob, ci_kind=ci_kind,
            ),
        }
    return out


def report_sections(
    fit, *, queries, budgets, plan_budget, inference_tokens, ci_prob, ci_kind, random_seed
):
    """The report's "What to run next" and inference-aware answers.

    Returns
    -------
    tuple
        ``(plan, plan_doc, inference_doc)``: the :class:`~bayescale.answers.planning.Plan` (or
        None), its
        JSON summary without the candidate table (or None), and
        :func:`inference_side_by_side` (or None).
    """

    result, plan_doc, inf_doc = None, None, None
    if plan_budget is not None:
        n, d, _ = query_points(card_of(fit).law_spec, **queries)
        result = plan(fit, target="loss", N=float(n[0]), D=float(d[0]), budget_new=plan_budget,
                      ci_prob=ci_prob, random_seed=random_seed)
        plan_doc = {k: v for k, v in result.to_dict().items() if k != "candidates"}
    if inference_tokens:
        inf_doc = inference_side_by_side(
            fit, budgets=budgets, inference_tokens=inference_tokens, ci_prob=ci_prob,
            ci_kind=ci_kind,
        )
    return result, plan_doc, inf_doc


def report_tables(doc, *, cell) -> list[dict]:
    """Report tables (``{"id", "title", "columns", "rows", "note"}``) of the two sections."""
    tables = []
    p = doc.get("plan")
    if p:
        unit = p["target"]["unit"]
        naive = p["naive"]
        rows = [
            ["today", "", "", cell(p["width_now"]), ""],
            ["after the plan", cell(len(p["runs"])), cell(p["cost"]), cell(p["width_after"]),
             f"{100 * p['shrinkage']:.1f}%"],
            ["after the naive plan", cell(len(naive["runs"])),
             cell(sum(r["C"] for r in naive["runs"])), cell(p["width_after_naive"]),
             f"{100 * p['shrinkage_naive']:.1f}%"],
        ]
        tables.append({
            "id": "plan",
            "title": "What to run next: narrowing the interval of the "
                     f"{p['target']['description']}",
            "columns": ["", "runs", "compute (FLOPs)", f"expected width ({unit})", "narrowing"],
            "rows": rows,
            "note": (
                f"Budget for new runs {cell(p['budget_new'])} FLOPs. Expected widths of the "
                f"{cell(100 * p['settings']['ci_prob'])}% interval by preposterior analysis "
                f"({p['settings']['n_worlds']} simulated outcomes, importance reweighting of "
                f"{p['settings']['n_draws']} draws, {p['settings']['refits']} refits). Naive plan: "
                f"the ladder's next budget {cell(naive['next_budget'])} FLOPs on its N grid, "
                "trimmed to the plan's cost."
            ),
        })
        tables.append({
            "id": "plan_runs",
            "title": "Runs to train next, in order",
            "columns": ["N", "D", "C (FLOPs)", f"expected width after ({unit})", "ESS",
                        "valued by"],
            "rows": [[cell(r["N"]), cell(r["D"]), cell(r["C"]), cell(r["width_after"]),
                      cell(round(r["ess"])), r["method"]] for r in p["runs"]],
            "note": "ESS: median importance-sampling effective sample size over simulated "
                    "outcomes; below the threshold the width comes from refits.",
        })
    inf = doc.get("inference")
    if inf:
        rows = []
        for r in inf["budgets"]:
            for side in ("training_only", "inference_aware"):
                v = r[side]
                row = [cell(r["budget"]), side.replace("_", "-")]
                for k in (*QUANTITIES, "train_fraction"):
                    x = v.get(k)
                    row.append(f"{cell(x['median'])} [{cell(x['lo'])}, {cell(x['hi'])}]"
                               if x else "1")
                rows.append(row)
        tables.append({
            "id": "inference",
            "title": f"Inference-aware optimum, {cell(inf['inference_tokens'])} tokens served",
            "columns": ["budget C (FLOPs)", "optimum", "N*", "D*", "D*/N*", "L*",
                        "training share of C"],
            "rows": rows,
            "note": (
                "Training-only: minimise the loss on 6ND = C. Inference-aware: on 6ND + 2NT = C "
                "(Sardana et al. 2024), per posterior draw; medians and intervals."
            ),
        })
    return tables
