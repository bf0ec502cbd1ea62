"""The report's document and its rendering: one renderer that every report writer feeds.

A report is a JSON-ready document (``doc``) of every number shown; :func:`_tables` turns it into
tables, which :func:`_markdown` and :func:`_html` render with one number formatter
(:func:`format_number`), so a number reads the same in the three files. The single-fit writer
(:mod:`bayescale.workflows.report`) and the per-family writer
(:mod:`bayescale.workflows.report_families`) build their documents with the helpers here and
render them here.
"""

from __future__ import annotations

import base64
import html
import json
import math

import numpy as np

from bayescale.answers.allocation import compute_for_target, optimal
from bayescale.answers.planning.summary import report_tables
from bayescale.answers.prediction import predict, prediction_table
from bayescale.answers.summary import summarize
from bayescale.core.stats import column_label
from bayescale.errors import InputError
from bayescale.fits.layout import provenance
from bayescale.fits.view import read
from bayescale.scoring.reading import lack_of_fit_reading, loo_weights, weights_reading

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
    "reliability": (
        "Calibration at every level on the held-out runs. Left: share of runs inside the central "
        "predictive interval against its nominal probability (the diagonal is calibrated; the "
        "grey band is the spread expected of a calibrated forecast with this many runs). Right: "
        "histogram of the PIT (predictive CDF at the observed loss): flat when calibrated, "
        "U-shaped when the intervals are too narrow, piled left when the runs came out lower "
        "than forecast (a pessimistic centre)."
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

    table = summarize(fit, ci_prob=ci_prob, ci_kind=ci_kind)
    label = column_label(ci_prob, ci_kind)
    return [
        {
            "parameter": str(name),
            "median": row["median"],
            "lo": row[f"{label}_lower"],
            "hi": row[f"{label}_upper"],
            "mean": row["mean"],
            "sd": row["sd"],
            "r_hat": row["r_hat"],
            "ess_bulk": row["ess_bulk"],
            "ess_tail": row["ess_tail"],
        }
        for name, row in table.iterrows()
    ]


def _card_doc(view) -> dict:
    """The ``card`` section: the card's law, or the mixture of a law ensemble's members."""
    card = view.card
    if view.is_mixture:
        laws = [read(m.tree).card.law_spec for m in view.members]
        return {"name": "ensemble", "law": "mixture",
                "formula": "weighted mixture of: " + "; ".join(w.formula for w in laws),
                "family": card.family,
                "reference": "Yao et al. (2018), Bayesian Analysis 13(3) (stacking)"}
    law = card.law_spec
    return {"name": card.name, "law": card.law, "formula": law.formula, "family": card.family,
            "reference": law.reference}


def _ensemble_doc(fit) -> dict:
    """Weights (stacking on rolling forecasts, and PSIS-LOO for contrast) in plain words."""

    view = read(fit)
    info = view.ensemble_info
    loo = loo_weights(fit)
    return {
        "weights": info["weights"],
        "loo_weights": loo,
        "tau": info["tau"],
        "validated_decades": info["validated_decades"],
        "card_forecast_lpd": info["card_forecast_lpd"],
        "splits": info["splits"],
        "members": [m.name for m in view.members],
        "upper": info.get("upper"),
        "reading": weights_reading(info, loo),
        "lack_of_fit": view.lack_of_fit,
        "drift": {"mean": view.drift[0], "sd": view.drift[1]},
        "lack_of_fit_reading": lack_of_fit_reading(view.lack_of_fit, view.drift),
    }


def _prediction_rows(fit, queries, *, target_loss, ci_prob, ci_kind, random_seed) -> list[dict]:

    ds = predict(
        fit, **queries, target_loss=target_loss, ci_prob=ci_prob, ci_kind=ci_kind,
        random_seed=random_seed,
    )
    bounds = {f"{v}_{b}": f"{v}_{short}" for v in ("ci", "pi")
              for b, short in (("lower", "lo"), ("upper", "hi"))}
    return prediction_table(ds).rename(columns=bounds).to_dict(orient="records")


def _exponent_rows(fit, card, *, ci_prob, ci_kind) -> list[dict]:
    """Posterior exponents of ``N* ~ C^a`` and ``D* ~ C^b``, then the published ones."""

    ds = optimal(fit, budgets=[1e21], ci_prob=ci_prob, ci_kind=ci_kind)
    rows = []
    for k in ("a", "b"):
        if f"exponent_{k}" in ds:
            lo, hi = ds[f"exponent_{k}_ci"].to_numpy()
            rows.append({"source": "this fit (posterior)", "exponent": k,
                         "median": float(ds[f"exponent_{k}"]), "lo": float(lo),
                         "hi": float(hi)})
    for ref in card.references:
        for k, v in dict(ref.exponents).items():
            rows.append({"source": ref.source, "exponent": str(k), "median": float(v),
                         "lo": None, "hi": None})
    return rows


def _target_rows(fit, target_loss, *, ci_prob, ci_kind) -> list[dict]:
    """Compute needed to reach ``target_loss`` with probability 0.5 and 0.9 (or why not)."""

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
                "lo": float(ci[0]),
                "hi": float(ci[1]),
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
        "note": ens["reading"] + (f" LACK OF FIT: {ens['lack_of_fit_reading']}."
                                  if ens.get("lack_of_fit_reading") else ""),
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
                [r["parameter"], *(_cell(r[k]) for k in ("median", "lo", "hi", "r_hat")),
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
        keys = ["N", "D", "C", "median", "ci_lo", "ci_hi", "pi_lo", "pi_hi",
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
                row += [_cell(v.get("median")), _cell(v.get("lo")), _cell(v.get("hi"))]
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
                     *(_cell(r[k]) for k in ("median", "lo", "hi"))]
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
                 ["mean CRPS of the log loss (lower is better)", _cell(bt.get("crps_mean"))],
                 ["share of held-out runs below the predictive median",
                  _cell(bt.get("below_median"))],
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

        tables += report_tables(doc, cell=_cell)
    if doc.get("families"):

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


def families_tables(doc, *, cell) -> list[dict]:
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
