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

import base64
import html
import json
import math
from pathlib import Path

import numpy as np

from bayescale.errors import InputError
from bayescale.stats import check_ci, column_label

DEFAULT_BUDGETS = (1e21, 1e22, 5.76e23, 1e24, 1e25)
"""Budgets (FLOPs) of the allocation table; 5.76e23 is Chinchilla's (Hoffmann et al. 2022)."""

CHINCHILLA_MODEL = {"N": 7e10, "D": 1.4e12}
"""The Chinchilla model (70B parameters, 1.4T tokens): the default query on LM-like runs."""

REPORT_FILES = ("report.html", "report.md", "report.json")
FIGURE_DIR = "figures"

_CAPTIONS = {
    "frontier": (
        "Loss against compute. Dots are the fitted runs, coloured by model size; the line is the "
        "posterior median of the compute-optimal loss L*(C) and the bands its credible intervals, "
        "extended 100x beyond the largest fitted budget (the grey span is the fitted range)."
    ),
    "isoflop": (
        "IsoFLOP profiles: loss against model size at fixed compute, with credible bands. "
        "Diamonds mark the compute-optimal size N* at its posterior median, with its interval."
    ),
    "allocation": (
        "Compute-optimal parameters N*, tokens D* and tokens per parameter against compute, with "
        "credible bands, and the allocations implied by published fits of the same law."
    ),
    "pairs": (
        "Posterior pair plot of the law parameters (amplitudes as log10): marginals on the "
        "diagonal, pairwise draws below. Tight ridges are parameters the runs cannot separate."
    ),
    "residuals": (
        "Observed log loss minus the posterior-median law, against compute, with the posterior "
        "predictive band of the noise. Runs outside the widest band are circled; a trend with "
        "compute means the law bends away from the data."
    ),
    "backtest": (
        "Backtest: the law fitted on the smaller-compute runs (grey) predicts the held-out "
        "larger runs; error bars are the predictive intervals."
    ),
    "calibration": (
        "Calibration of predictive intervals on held-out runs: observed coverage against the "
        "nominal probability; well-calibrated intervals lie on the diagonal."
    ),
    "plan": (
        "What to run next: candidate runs on IsoFLOP lines up to the budget for new runs, "
        "coloured by how much each would narrow the target's interval if trained first "
        "(preposterior analysis); rings mark the chosen plan in order, crosses the naive plan of "
        "equal cost (the next budget of the current ladder on its N grid)."
    ),
}


# --------------------------------------------------------------------------------------------
# Number formatting: one formatter for Markdown and HTML
# --------------------------------------------------------------------------------------------


def format_number(x) -> str:
    """Format a number for the report tables: 4 significant digits, compact exponents.

    Parameters
    ----------
    x : float, int, bool or None
        The value (``None`` or NaN for a missing value).

    Returns
    -------
    str

    Examples
    --------
    >>> [format_number(v) for v in (3.21e10, 0.34791, 1234.5, 12, None, float("nan"), 5.76e23)]
    ['3.21e10', '0.3479', '1234', '12', '—', '—', '5.76e23']
    """
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if not math.isfinite(x):
        return "—"
    s = f"{x:.4g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{int(exp)}"
    return s


def _cell(v) -> str:
    return v if isinstance(v, str) else format_number(v)


# --------------------------------------------------------------------------------------------
# The JSON document
# --------------------------------------------------------------------------------------------


def _check_budgets(budgets) -> list[float]:
    out = np.atleast_1d(np.asarray(DEFAULT_BUDGETS if budgets is None else budgets, dtype=float))
    if out.ndim != 1 or out.size == 0 or not np.all(np.isfinite(out) & (out > 0)):
        raise InputError(f"budgets must be positive finite FLOPs, got {budgets!r}")
    return [float(b) for b in out]


def _lm_like(runs) -> bool:
    """Runs that look like language-model pretraining (loss in nats per token, N >= 1e6)."""
    loss = runs["loss"].to_numpy()
    return bool(1.0 <= np.median(loss) <= 8.0 and runs["N"].max() >= 1e6)


def _check_queries(queries, *, law, runs) -> dict[str, np.ndarray]:
    """Queries as ``{"N": array, "D": array}`` (any two of N, D, C; or the one variable).

    Accepts a list of dicts with the same keys, a dict of sequences or a DataFrame; default: the
    Chinchilla model on LM-like runs, else 10x the largest fitted compute at the largest run's
    shape.
    """
    if queries is None:
        if _lm_like(runs):
            q = dict(CHINCHILLA_MODEL)
        else:
            i = int(np.argmax(runs["C"].to_numpy()))
            scale = np.sqrt(10.0)
            q = {"N": float(runs["N"].iloc[i] * scale), "D": float(runs["D"].iloc[i] * scale)}
        q = {k: v for k, v in q.items() if k in law.variables}
        return {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in q.items()}
    if hasattr(queries, "to_dict") and hasattr(queries, "columns"):
        queries = {c: queries[c].to_numpy() for c in queries.columns}
    if isinstance(queries, dict):
        rows = None
        cols = dict(queries)
    else:
        rows = list(queries)
        if not rows or not all(isinstance(r, dict) for r in rows):
            raise InputError(
                "queries must be a list of dicts such as {'N': 7e10, 'D': 1.4e12}, a dict of "
                f"sequences or a DataFrame; got {queries!r}"
            )
        keys = {tuple(sorted(r)) for r in rows}
        if len(keys) != 1:
            raise InputError(
                f"every query must give the same quantities; got key sets {sorted(keys)}"
            )
        cols = {k: [r[k] for r in rows] for k in rows[0]}
    bad = sorted(set(cols) - {"N", "D", "C"})
    if bad:
        raise InputError(f"queries may only give N, D and C; unknown keys {bad}")
    try:
        return {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in cols.items()}
    except (TypeError, ValueError):
        raise InputError(f"query values must be numbers; got {cols!r}") from None


def _param_rows(fit, *, ci_prob, ci_kind) -> list[dict]:
    from bayescale.summary import summarize

    table = summarize(fit, ci_prob=ci_prob, ci_kind=ci_kind)
    label = column_label(ci_prob, ci_kind)
    return [
        {
            "parameter": str(name),
            "median": row["median"],
            "lower": row[f"{label}_lower"],
            "upper": row[f"{label}_upper"],
            "mean": row["mean"],
            "sd": row["sd"],
            "r_hat": row["r_hat"],
            "ess_bulk": row["ess_bulk"],
            "ess_tail": row["ess_tail"],
        }
        for name, row in table.iterrows()
    ]


def _ensemble_doc(fit) -> dict:
    """Weights (stacking on rolling forecasts, and PSIS-LOO for contrast) in plain words."""
    from bayescale.ensemble.members import ensemble_info, members
    from bayescale.ensemble.reading import loo_weights, weights_reading

    info = ensemble_info(fit)
    loo = loo_weights(fit)
    return {
        "weights": info["weights"],
        "loo_weights": loo,
        "tau": info["tau"],
        "validated_decades": info["validated_decades"],
        "card_forecast_lpd": info["card_forecast_lpd"],
        "splits": info["splits"],
        "members": [name for name, _, _ in members(fit)],
        "reading": weights_reading(info, loo),
    }


def _prediction_rows(fit, queries, *, target_loss, ci_prob, ci_kind, random_seed) -> list[dict]:
    from bayescale.prediction import predict, prediction_table

    ds = predict(
        fit, **queries, target_loss=target_loss, ci_prob=ci_prob, ci_kind=ci_kind,
        random_seed=random_seed,
    )
    return prediction_table(ds).to_dict(orient="records")


def _exponent_rows(fit, card, *, ci_prob, ci_kind) -> list[dict]:
    """Posterior exponents of ``N* ~ C^a`` and ``D* ~ C^b``, then the published ones."""
    from bayescale.allocation import optimal

    ds = optimal(fit, budgets=[1e21], ci_prob=ci_prob, ci_kind=ci_kind)
    rows = []
    for k in ("a", "b"):
        if f"exponent_{k}" in ds:
            lo, hi = ds[f"exponent_{k}_ci"].to_numpy()
            rows.append({"source": "this fit (posterior)", "exponent": k,
                         "median": float(ds[f"exponent_{k}"]), "lower": float(lo),
                         "upper": float(hi)})
    for ref in card.references:
        for k, v in dict(ref.exponents).items():
            rows.append({"source": ref.source, "exponent": str(k), "median": float(v),
                         "lower": None, "upper": None})
    return rows


def _target_rows(fit, target_loss, *, ci_prob, ci_kind) -> list[dict]:
    """Compute needed to reach ``target_loss`` with probability 0.5 and 0.9 (or why not)."""
    from bayescale.allocation import compute_for_target

    rows = []
    for prob in (0.5, 0.9):
        try:
            r = compute_for_target(fit, target_loss=target_loss, prob=prob, ci_prob=ci_prob,
                                   ci_kind=ci_kind)
        except InputError as err:
            rows.append({"prob": prob, "C": None, "N": None, "D": None, "note": str(err)})
            continue
        rows.append({"prob": prob, "C": r["C"], "N": r["N"], "D": r["D"],
                     "p_at_C": r["p_at_C"], "already_reached": r.get("already_reached", False),
                     "beyond_search": r.get("beyond_search", False),
                     "reached_by": r.get("reached_by"), "note": r.get("statement") or ""})
    return rows


def _optimal_rows(fit, budgets, *, ci_prob, ci_kind) -> list[dict]:
    from bayescale.allocation import optimal

    ds = optimal(fit, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind)
    rows = []
    for i, b in enumerate(ds["budget"].to_numpy()):
        row = {"budget": float(b)}
        for var in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
            if var not in ds:
                continue
            ci = ds[f"{var}_ci"].isel(budget=i).to_numpy()
            row[var] = {
                "median": float(ds[var].isel(budget=i)),
                "lower": float(ci[0]),
                "upper": float(ci[1]),
            }
        rows.append(row)
    return rows


def _reference_rows(card, budgets) -> list[dict]:
    """Each published fit's compute-optimal allocation at the report's budgets."""
    law = card.law_spec
    out = []
    for ref in card.optimum_references():
        n, d = law.optimal(np.asarray(budgets), dict(ref.params))
        for b, ni, di in zip(budgets, np.atleast_1d(n), np.atleast_1d(d), strict=True):
            out.append(
                {
                    "source": ref.source,
                    "budget": float(b),
                    "N_opt": float(ni),
                    "D_opt": float(di),
                    "tokens_per_param": float(di / ni),
                }
            )
    return out


def _frame_records(frame) -> list[dict]:
    """A DataFrame as records, its index kept as the first column."""
    if frame is None:
        return []
    flat = frame.reset_index() if frame.index.name is not None else frame
    return flat.to_dict(orient="records")


def _comparison_doc(comparison) -> dict | None:
    if comparison is None:
        return None
    return {
        "winner": getattr(comparison, "winner", None),
        "verdict": getattr(comparison, "verdict", None),
        "loo": _frame_records(getattr(comparison, "loo", None)),
        "backtests": _frame_records(getattr(comparison, "backtests", None)),
        "weights": _frame_records(getattr(comparison, "weights", None)),
        "reading": getattr(comparison, "reading", ""),
    }


def _backtest_doc(result) -> dict | None:
    if result is None:
        return None
    doc = result.to_dict()
    doc.pop("table", None)
    return doc


def _runs_doc(runs, fit) -> dict:
    from bayescale.posterior import provenance

    prov = provenance(fit).get("runs", {})
    return {
        "n_runs": len(runs),
        "N": [float(runs["N"].min()), float(runs["N"].max())],
        "D": [float(runs["D"].min()), float(runs["D"].max())],
        "C": [float(runs["C"].min()), float(runs["C"].max())],
        "loss": [float(runs["loss"].min()), float(runs["loss"].max())],
        "provenance": prov,
    }


# --------------------------------------------------------------------------------------------
# Tables, rendered from the JSON document
# --------------------------------------------------------------------------------------------


def _interval_head(doc) -> str:
    return f"{round(doc['ci_prob'] * 100, 6):g}% {doc['ci_kind'].upper()}"


def _validation_note(validated) -> str:
    """Plain words on the extrapolation distance the rolling backtests validated."""
    if validated is None or validated <= 0:
        return ("UNVALIDATED marks a query beyond the fitted runs: no rolling backtest of this "
                "fit checked any extrapolation (a single card; fit without --law for the "
                "validated law ensemble).")
    return (f"UNVALIDATED marks a query more than {validated:.2g} decades of compute beyond the "
            "fitted runs, further than the rolling backtests of these runs reached: its "
            "interval assumes the laws and the discrepancy hold that far.")


def _ensemble_table(doc) -> dict | None:
    ens = doc.get("ensemble")
    if not ens:
        return None
    loo = ens.get("loo_weights") or {}
    rows = [[name, _cell(w), _cell(loo.get(name)), _cell(ens["card_forecast_lpd"].get(name))]
            for name, w in ens["weights"].items()]
    return {
        "id": "ensemble",
        "title": "Law ensemble: stacking weights",
        "columns": ["card", "stacking weight (rolling forecasts)", "PSIS-LOO stacking weight",
                    "mean forecast log score"],
        "rows": rows,
        "note": ens["reading"],
    }


def _tables(doc) -> list[dict]:
    """``[{"id", "title", "columns", "rows", "note"}]`` with cells as display strings."""
    iv = _interval_head(doc)
    tables = []
    ens_table = _ensemble_table(doc)
    if ens_table is not None:
        tables.append(ens_table)
    tables.append(
        {
            "id": "params",
            "title": "Posterior of the parameters",
            "columns": ["parameter", "median", f"{iv} lower", f"{iv} upper", "R-hat",
                        "ESS bulk", "ESS tail"],
            "rows": [
                [r["parameter"], *(_cell(r[k]) for k in ("median", "lower", "upper", "r_hat")),
                 _cell(_round(r["ess_bulk"])), _cell(_round(r["ess_tail"]))]
                for r in doc["params"]
            ],
            "note": "Amplitudes at their natural scale; sigma is the noise scale on log loss.",
        }
    )
    if doc["predictions"]:
        has_t = any("p_below_target" in r for r in doc["predictions"])
        cols = ["N", "D", "C", "median loss", f"{iv} lower", f"{iv} upper",
                "predictive lower", "predictive upper", "decades beyond fitted C"]
        keys = ["N", "D", "C", "median", "ci_lower", "ci_upper", "pi_lower", "pi_upper",
                "extrapolation_C"]
        if has_t:
            cols.append(f"P(loss < {format_number(doc['target_loss'])})")
            keys.append("p_below_target")
        validated = doc.get("validated_decades")
        tables.append(
            {
                "id": "predictions",
                "title": "Predicted loss",
                "columns": cols + ["validated"],
                "rows": [[_cell(r.get(k)) for k in keys]
                         + ["yes" if r.get("validated", True) else "UNVALIDATED"]
                         for r in doc["predictions"]],
                "note": (
                    "Credible interval: uncertainty of the law's loss; predictive interval: "
                    "what one new training run will show (law plus run-to-run noise). "
                    + _validation_note(validated)
                ),
            }
        )
    if doc["optimal"]:
        cols = ["budget C (FLOPs)"]
        for sym in ("N*", "D*", "D*/N*", "L*"):
            cols += [f"{sym} median", f"{sym} lower", f"{sym} upper"]
        rows = []
        for r in doc["optimal"]:
            row = [_cell(r["budget"])]
            for var in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
                v = r.get(var) or {}
                row += [_cell(v.get("median")), _cell(v.get("lower")), _cell(v.get("upper"))]
            rows.append(row)
        tables.append(
            {
                "id": "optimal",
                "title": "Compute-optimal allocation",
                "columns": cols,
                "rows": rows,
                "note": f"Posterior medians and {iv} intervals under C = 6ND.",
            }
        )
    if doc["references"]:
        tables.append(
            {
                "id": "references",
                "title": "Published fits of the same law at the same budgets",
                "columns": ["source", "budget C (FLOPs)", "N*", "D*", "D*/N*"],
                "rows": [
                    [r["source"], *(_cell(r[k]) for k in ("budget", "N_opt", "D_opt",
                                                          "tokens_per_param"))]
                    for r in doc["references"]
                ],
                "note": "Closed-form optimum of the law at each source's published parameters.",
            }
        )
    if doc["exponents"]:
        tables.append(
            {
                "id": "exponents",
                "title": "Scaling exponents of the allocation, N* ~ C^a and D* ~ C^b",
                "columns": ["source", "exponent", "value", f"{iv} lower", f"{iv} upper"],
                "rows": [
                    [r["source"], r["exponent"],
                     *(_cell(r[k]) for k in ("median", "lower", "upper"))]
                    for r in doc["exponents"]
                ],
                "note": "Published exponents as printed (intervals not given there).",
            }
        )
    if doc["target"]:
        tables.append(
            {
                "id": "target",
                "title": f"Compute to reach loss {format_number(doc['target_loss'])}",
                "columns": ["probability", "compute C (FLOPs)", "N", "D", "note"],
                "rows": [
                    [_cell(r["prob"]), _cell(r["C"]), _cell(r["N"]), _cell(r["D"]), r["note"]]
                    for r in doc["target"]
                ],
                "note": (
                    "Smallest budget at which one run trained at the posterior-median optimal "
                    "split reaches the target with that probability (law and run noise)."
                ),
            }
        )
    cmp = doc.get("comparison")
    if cmp:
        for key, title in (("loo", "Model comparison: PSIS-LOO"),
                           ("backtests", "Model comparison: extrapolation backtests"),
                           ("weights", "Model comparison: stacking weights, forecasts vs LOO")):
            recs = cmp.get(key) or []
            if recs:
                cols = list(recs[0])
                tables.append(
                    {
                        "id": f"comparison_{key}",
                        "title": title,
                        "columns": cols,
                        "rows": [[_cell(r.get(c)) for c in cols] for r in recs],
                        "note": cmp.get("reading", "") if key == "weights" else "",
                    }
                )
    bt = doc.get("backtest")
    if bt:
        rows = [["card", bt["card"]], ["method", str(bt["method"])],
                ["cutoff C (FLOPs)", _cell(bt["cutoff"])],
                ["training runs", _cell(bt["n_train"])],
                ["held-out runs", _cell(bt["n_test"])]]
        rows += [[f"coverage of the {_pct_text(k)} predictive interval", _cell(v)]
                 for k, v in bt["coverage"].items()]
        rows += [["mean log predictive density", _cell(bt["lpd_mean"])],
                 ["median absolute error of the loss", _cell(bt["median_abs_error"])]]
        tables.append(
            {
                "id": "backtest",
                "title": "Backtest on the largest-compute runs",
                "columns": ["quantity", "value"],
                "rows": rows,
                "note": "",
            }
        )
    if doc.get("plan") or doc.get("inference"):
        from bayescale.planning.summary import report_tables

        tables += report_tables(doc, cell=_cell)
    if doc.get("families"):
        from bayescale.families.report import report_tables as families_tables

        tables += families_tables(doc, cell=_cell)
    return tables


def _pct_text(p) -> str:
    return f"{round(float(p) * 100, 6):g}%"


def _round(x):
    return None if x is None or not math.isfinite(x) else int(round(x))


# --------------------------------------------------------------------------------------------
# Markdown and HTML
# --------------------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(t: dict) -> str:
    lines = [f"### {_md_escape(t['title'])}", ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in t["columns"]) + " |")
    lines.append("|" + "|".join("---" for _ in t["columns"]) + "|")
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in t["rows"]]
    if t["note"]:
        lines += ["", _md_escape(t["note"])]
    return "\n".join(lines) + "\n"


def _header_lines(doc) -> list[tuple[str, str]]:
    r = doc["runs"]
    return [
        ("Card", f"{doc['card']['name']} (law {doc['card']['law']}: {doc['card']['formula']}; "
                 f"{doc['card']['family']} noise on log loss)"),
        ("Runs", f"{r['n_runs']} runs; N {format_number(r['N'][0])} to "
                 f"{format_number(r['N'][1])}, D {format_number(r['D'][0])} to "
                 f"{format_number(r['D'][1])}, C {format_number(r['C'][0])} to "
                 f"{format_number(r['C'][1])} FLOPs, loss {format_number(r['loss'][0])} to "
                 f"{format_number(r['loss'][1])} nats"),
        ("Sampler", ", ".join(f"{k} {v}" for k, v in doc["sampler"].items()
                              if k in ("sampler", "chains", "draws", "tune", "random_seed"))),
        ("Intervals", f"{_interval_head(doc)} (probability {format_number(doc['ci_prob'])})"),
    ]


def _diag_text(doc) -> str:
    d = doc["diagnostics"]
    if not d:
        return "no sampler diagnostics recorded"
    if d.get("ok", False):
        return (f"no sampler problems (max R-hat {format_number(d.get('max_rhat'))}, "
                f"min bulk ESS {format_number(_round(d.get('min_ess_bulk')))}, "
                f"{format_number(d.get('divergences'))} divergences)")
    return "sampler problems: " + "; ".join(d.get("problems", []))


def _markdown(doc, tables) -> str:
    out = [f"# {_md_escape(doc['title'])}", ""]
    out += [f"- **{k}**: {_md_escape(v)}" for k, v in _header_lines(doc)]
    out += [f"- **Diagnostics**: {_md_escape(_diag_text(doc))}", ""]
    if doc.get("comparison") and doc["comparison"].get("verdict"):
        out += [f"**Verdict**: {_md_escape(doc['comparison']['verdict'])}", ""]
    out += ["## Answers", ""]
    for t in tables:
        out += [_md_table(t)]
    if doc["figures"]:
        out += ["## Figures", ""]
        for name, f in doc["figures"].items():
            out += [f"### {name}", "", f"![{name}]({f['png']})", "", _md_escape(f["caption"]), ""]
    out += ["## Provenance", "", "```json", json.dumps(doc["provenance"], indent=2,
                                                      sort_keys=True), "```", ""]
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.9em}.ok{color:#17612d}.bad{color:#a31515;font-weight:bold}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:.9em;max-width:60em}pre{background:#f7f7f7;padding:.8em;
overflow-x:auto;font-size:.8em}.verdict{background:#eef5ff;border-left:4px solid #3b7dd8;
padding:.6em 1em}
""".strip()


def _html_table(t: dict) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in t["columns"])
    body = "\n".join(
        "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t["rows"]
    )
    note = f'<p class="note">{e(t["note"])}</p>' if t["note"] else ""
    return (f'<h3 id="{e(t["id"])}">{e(t["title"])}</h3>\n<table>\n<thead><tr>{head}</tr>'
            f"</thead>\n<tbody>\n{body}\n</tbody>\n</table>\n{note}")


def _html(doc, tables, images: dict[str, bytes]) -> str:
    e = html.escape
    ok = doc["diagnostics"].get("ok", False)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(doc['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(doc['title'])}</h1>",
        "<ul>",
        *(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in _header_lines(doc)),
        f'<li><b>Diagnostics</b>: <span class="{"ok" if ok else "bad"}">'
        f"{e(_diag_text(doc))}</span></li>",
        "</ul>",
    ]
    if doc.get("comparison") and doc["comparison"].get("verdict"):
        parts.append(f'<p class="verdict"><b>Verdict</b>: {e(doc["comparison"]["verdict"])}</p>')
    parts.append("<h2>Answers</h2>")
    parts += [_html_table(t) for t in tables]
    if doc["figures"]:
        parts.append("<h2>Figures</h2>")
        for name, f in doc["figures"].items():
            data = base64.b64encode(images[name]).decode("ascii")
            parts.append(
                f'<figure id="fig-{e(name)}"><img alt="{e(name)} figure" '
                f'src="data:image/png;base64,{data}"><figcaption><b>{e(name)}</b>. '
                f"{e(f['caption'])}</figcaption></figure>"
            )
    parts += [
        "<h2>Provenance</h2>",
        f"<pre>{e(json.dumps(doc['provenance'], indent=2, sort_keys=True))}</pre>",
        "</body></html>",
        "",
    ]
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _figures(fit, *, backtest, calibration_table, ci_prob, ci_kind, random_seed) -> dict:
    from bayescale import plots
    from bayescale.posterior import card_of, runs_of

    makers = {}
    if card_of(fit).law_spec.has_optimum:
        makers["frontier"] = lambda: plots.plot_frontier(fit, ci_kind=ci_kind)
        makers["isoflop"] = lambda: plots.plot_isoflop(fit, ci_prob=ci_prob, ci_kind=ci_kind)
        makers["allocation"] = lambda: plots.plot_allocation(fit, ci_kind=ci_kind)
    makers["pairs"] = lambda: plots.plot_pairs(fit)
    makers["residuals"] = lambda: plots.plot_residuals(fit, random_seed=random_seed)
    if backtest is not None:
        makers["backtest"] = lambda: plots.plot_backtest(backtest, runs=runs_of(fit))
    if calibration_table is not None:
        makers["calibration"] = lambda: plots.plot_calibration(calibration_table)
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
        the interval of the law's loss at the first query (:func:`bayescale.planning.plan`),
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
    from bayescale.io import atomic_write_text
    from bayescale.plots import save_figure
    from bayescale.posterior import card_of, provenance, runs_of
    from bayescale.summary import to_jsonable

    check_ci(ci_prob, ci_kind)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"out_dir {out_dir} exists and is not a folder")
    if "bayescale_families" in fit.attrs:  # a pooled fit: per-family answers and contrasts
        from bayescale.families.report import write_families_report

        return write_families_report(fit, out_dir, budgets=budgets, ci_prob=ci_prob,
                                     ci_kind=ci_kind, random_seed=random_seed)
    from bayescale.ensemble.members import is_ensemble, validated_decades
    from bayescale.prediction import law_params

    card = card_of(fit)
    law = law_params(fit)[0] if is_ensemble(fit) else card.law_spec
    runs = runs_of(fit)
    budgets = _check_budgets(budgets)
    q = _check_queries(queries, law=law, runs=runs)
    prov = provenance(fit)
    doc = {
        "title": (f"bayescale report: law ensemble on {len(runs)} runs" if is_ensemble(fit)
                  else f"bayescale report: {card.name} card on {len(runs)} runs"),
        "card": ({"name": "ensemble", "law": "mixture", "formula": law.formula,
                  "family": card.family, "reference": law.reference} if is_ensemble(fit) else
                 {"name": card.name, "law": card.law, "formula": law.formula,
                  "family": card.family, "reference": law.reference}),
        "ensemble": _ensemble_doc(fit) if is_ensemble(fit) else None,
        "validated_decades": validated_decades(fit),
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
        from bayescale.planning.summary import report_sections

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
        from bayescale.planning.plots import plot_plan

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
        backtest: run :func:`bayescale.families.backtest.backtest_families` for that).
    draws, tune, chains : int
        Sampler settings of every fit.
    random_seed : int, default 0
        Seed of every fit and draw.
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
    from bayescale.backtesting import backtest as run_backtest
    from bayescale.cards import load_card
    from bayescale.fitting import fit as run_fit
    from bayescale.io import atomic_write, save
    from bayescale.summary import summarize

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
    if group_by is not None:
        from bayescale.families.summary import summary_table

        post = run_fit(runs, card=card, group_by=group_by, **sampler)
        save(post, out_dir / "posterior.nc")
        table = summary_table(post, ci_prob=ci_prob, ci_kind=ci_kind)
        atomic_write(out_dir / "summary.csv", lambda p: table.to_csv(p, index=False))
        return write_report(post, out_dir, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind,
                            random_seed=random_seed)
    comparison = None
    post = None
    others = [c for c in (load_card(c) for c in compare_cards or ())
              if card is not None and c.name != card.name]
    if others:
        from bayescale.comparison import compare

        comparison = compare(runs, cards=[card, *others], holdout_frac=holdout_frac, **sampler)
        post = comparison.fits.get(card.name)
    if post is None:
        post = run_fit(runs, card=card, **sampler)
    save(post, out_dir / "posterior.nc")
    table = summarize(post, ci_prob=ci_prob, ci_kind=ci_kind)
    atomic_write(out_dir / "summary.csv", lambda p: table.to_csv(p))
    bt = run_backtest(runs, card=card, holdout_frac=holdout_frac, **sampler)
    return write_report(
        post, out_dir, budgets=budgets, queries=queries, target_loss=target_loss,
        comparison=comparison, backtest=bt, ci_prob=ci_prob, ci_kind=ci_kind,
        random_seed=random_seed, plan_budget=plan_budget, inference_tokens=inference_tokens,
    )
