"""Issue 19, item 4 (only converged fits count): the default nested backtest on every public run
table, counting the fits that did not converge before and after the refit policy.

For each table, ``bs.backtest(runs, holdout_frac=0.2, random_seed=0)`` with library defaults (the
law ensemble, nested: weights, tau and validated distance from the training runs only; 4 chains x
1000 draws, 1000 tune). Records coverage, log score, errors, the sign of the bias, the ensemble's
weights and tau, and every sampler problem of the member and rolling-split fits.

Adapted from the "before" script (``baseline19.py``, old layout) to this layout. To see the
diagnostics of *every* fit attempt (the backtest result keeps only the lead member's), the
ensemble engine's ``fit_card`` is wrapped by a pass-through recorder that notes each attempt's
card, run count, seed, tuning and ``bayescale_diagnostics``; ``assemble`` is wrapped to keep the
ensemble record (weights and its ``convergence`` record). A fit's *first* attempt is the fit the
library made before the refit policy (same seed and settings), so "before" counts first attempts
and "after" counts the attempts whose forecasts or members count.

    PYTHONPATH=. BAYESCALE_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 \\
        nice -n 15 /work/main/.venv/bin/python scripts/converge19.py [--out DIR] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import bayescale as bs
import bayescale.engines.ensemble as _ens
from bayescale.errors import SamplerWarning

DATA = Path(os.environ.get("BAYESCALE_DATA_DIR", "/work/shared/data"))
PROBS = (0.5, 0.8, 0.9, 0.95)
OWT2 = DATA / "porian2024_owt2_untuned.csv"


# --------------------------------------------------------------------------- fit recorder
_FITS: list[dict] = []
_ENSEMBLE: list[dict] = []
_orig_fit = _ens.fit_card
_orig_assemble = _ens.assemble
_SEED = 0


def _in_split_fit() -> bool:
    f = sys._getframe(2)
    while f is not None:
        if f.f_code.co_name == "_forecast_record":
            return True
        f = f.f_back
    return False


def _recording_fit(runs, *args, **kwargs):
    role = "split" if _in_split_fit() else "member"
    t0 = time.perf_counter()
    out = _orig_fit(runs, *args, **kwargs)
    secs = time.perf_counter() - t0
    attrs = getattr(out, "attrs", {})
    card = json.loads(attrs["bayescale_card"]).get("name") if "bayescale_card" in attrs else None
    diag = json.loads(attrs.get("bayescale_diagnostics", "{}"))
    sampler = json.loads(attrs.get("bayescale_sampler", "{}"))
    _FITS.append({
        "role": role,
        "card": card,
        "n_runs": int(len(runs)),
        "attempt": int(kwargs.get("random_seed", _SEED)) - _SEED,
        "seconds": round(secs, 2),
        "draws": sampler.get("draws"), "tune": sampler.get("tune"),
        "chains": sampler.get("chains"), "seed": sampler.get("random_seed"),
        "max_rhat": diag.get("max_rhat"),
        "min_ess_bulk": diag.get("min_ess_bulk"),
        "min_ess_tail": diag.get("min_ess_tail"),
        "divergences": diag.get("divergences"),
        "treedepth_hits": diag.get("treedepth_hits"),
        "rhat": diag.get("rhat"),
        "problems": diag.get("problems", []),
    })
    return out


def _recording_assemble(member_fits, info):
    _ENSEMBLE.append(json.loads(json.dumps(info, default=str)))
    return _orig_assemble(member_fits, info)


_ens.fit_card = _recording_fit  # fit_ensemble binds it at call time
_ens.assemble = _recording_assemble


def converged(f) -> bool:
    """The issue's criterion: R-hat <= 1.01 and no divergences."""
    return f["max_rhat"] is not None and f["max_rhat"] <= 1.01 and not f["divergences"]


def _final_fits(fits):
    """The last attempt of each fit (role, card, runs): the one whose draws the ensemble keeps."""
    last = {}
    for f in fits:
        last[(f["role"], f["card"], f["n_runs"])] = f
    return list(last.values())


# --------------------------------------------------------------------------- tables
def load_owt2():
    """Porian et al. (2024) OWT2 untuned sweep: N, D = tokens, loss; C from ``flops`` if it
    agrees with 6ND, else recomputed as 6ND (mapping only N, D, loss)."""
    import pandas as pd

    raw = pd.read_csv(OWT2)
    ratio = raw["flops"] / (6 * raw["N"] * raw["tokens"])
    dev = float(np.max(np.abs(ratio - 1)))
    if dev < 1e-6:
        runs = bs.load_runs(OWT2)  # auto mapping: N, tokens -> D, flops -> C, loss
        how = (f"bs.load_runs(path) with its automatic mapping {runs.provenance['mapping']}; "
               f"flops equals 6*N*tokens to max relative deviation {dev:.1e}, so C = flops = 6ND")
    else:
        runs = bs.load_runs(OWT2, mapping={"N": "N", "D": "tokens", "loss": "loss"})
        how = (f"flops differs from 6*N*tokens (max relative deviation {dev:.3g}): mapped only "
               "N, D=tokens, loss, so C = 6ND")
    return runs, how


def tables():
    ot = lambda g: (lambda: (bs.datasets.load("overtraining", group=g),  # noqa: E731
                             f"bs.datasets.load('overtraining', group={g!r}) "
                             "(loss = loss_c4_val)"))
    return {
        "Epoch (Chinchilla)": lambda: (bs.datasets.load("chinchilla"),
                                       "bs.datasets.load('chinchilla') (drops 5 highest losses)"),
        "Datablations": lambda: (bs.datasets.load("datablations"),
                                 "bs.datasets.load('datablations')"),
        "OT c4": ot("c4_original"),
        "OT rpj": ot("rpj"),
        "OT rw": ot("rw_original"),
        "Marin comma": lambda: (bs.datasets.load("marin"), "bs.datasets.load('marin')"),
        "OWT2 untuned": load_owt2,
    }


# --------------------------------------------------------------------------- one table
def _lab(p):
    return f"{100 * p:.10g}"


def _corr(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def run_table(name, loader):
    _FITS.clear()
    _ENSEMBLE.clear()
    runs, how = loader()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bs.backtest(runs, holdout_frac=0.2, random_seed=0)
    wall = time.perf_counter() - t0
    tab = res.table.copy()
    y, med = np.log(tab["loss"].to_numpy()), np.log(tab["median"].to_numpy())
    resid = y - med  # observed minus predictive median, log loss
    train_cmax = float(np.max(runs.C[runs.C <= res.cutoff]))
    delta = np.log10(tab["C"].to_numpy() / train_cmax)
    ens = _ENSEMBLE[-1] if _ENSEMBLE else {}
    width = {f"{p:g}": float(np.mean(np.log(tab[f"pi{_lab(p)}_upper"])
                                     - np.log(tab[f"pi{_lab(p)}_lower"]))) for p in PROBS}
    # which side of the interval the misses fall on
    misses = {}
    for p in PROBS:
        lo, hi = tab[f"pi{_lab(p)}_lower"].to_numpy(), tab[f"pi{_lab(p)}_upper"].to_numpy()
        loss = tab["loss"].to_numpy()
        misses[f"{p:g}"] = {"below": int(np.sum(loss < lo)), "above": int(np.sum(loss > hi))}
    sampler_warn = [str(w.message) for w in caught if issubclass(w.category, SamplerWarning)]
    other_warn = sorted({f"{w.category.__name__}: {w.message}" for w in caught
                         if not issubclass(w.category, SamplerWarning)})
    first = [f for f in _FITS if f["attempt"] == 0]
    final = _final_fits(_FITS)
    bad_fits = [f for f in final if f["problems"]]
    rh = [f["max_rhat"] for f in final if f["max_rhat"] is not None]
    from bayescale.scoring.splits import rolling_splits

    train = runs.subset(runs.C <= res.cutoff)
    folds, _ = rolling_splits(train, min_train=1)
    splits = {int((~fo.mask).sum()): fo.frac for fo in folds}
    for f in _FITS:
        if f["role"] == "split":
            f["split_frac"] = splits.get(f["n_runs"])
    per_run = tab.assign(log_resid=resid, delta_decades=delta,
                         below_median=tab["loss"] < tab["median"])
    out = {
        "table": name,
        "loaded_with": how,
        "n_runs": int(len(runs)),
        "n_train": int(res.n_train),
        "n_test": int(res.n_test),
        "cutoff": float(res.cutoff),
        "train_cmax": train_cmax,
        "coverage": {f"{p:g}": float(res.coverage[p]) for p in PROBS},
        "n_covered": {f"{p:g}": int(tab[f"covered{_lab(p)}"].sum()) for p in PROBS},
        "misses_side": misses,
        "lpd_mean": float(res.lpd_mean),
        "lpd_sum": float(tab["lpd"].sum()),
        "lpd_min": float(tab["lpd"].min()),
        "median_abs_error": float(res.median_abs_error),
        "mean_abs_error": float(tab["abs_error"].mean()),
        "max_abs_error": float(tab["abs_error"].max()),
        "frac_below_median": float(np.mean(tab["loss"] < tab["median"])),
        "mean_log_resid": float(np.mean(resid)),
        "median_log_resid": float(np.median(resid)),
        "mean_interval_width_log": width,
        "corr_resid_logDN": _corr(resid, np.log(tab["D"] / tab["N"])),
        "corr_resid_delta": _corr(resid, delta),
        "max_delta_decades_heldout": float(np.max(delta)),
        "weights": res.weights,
        "tau": res.tau,
        "validated_decades": res.validated_decades,
        "heldout_beyond_validated": int(np.sum(delta > (res.validated_decades or 0) + 1e-12)),
        "noise": (res.diagnostics or {}).get("noise"),
        "card_forecast_lpd_train_splits": ens.get("card_forecast_lpd"),
        "stacking": ens.get("stacking"),
        "discrepancy_fit": ens.get("discrepancy"),
        "rolling_splits": ens.get("splits"),
        "split_notes": ens.get("notes"),
        "split_sampler_problems": ens.get("split_sampler_problems"),
        "lead_member_diagnostics": {k: v for k, v in (res.diagnostics or {}).items()
                                    if k != "noise"},
        "fits": list(_FITS),
        "n_fits": len(first),
        "n_attempts": len(_FITS),
        "n_unconverged_first": sum(not converged(f) for f in first),
        "n_unconverged_final": sum(not converged(f) for f in final),
        "unconverged_first": [_label_fit(f) for f in first if not converged(f)],
        "unconverged_final": [_label_fit(f) for f in final if not converged(f)],
        "fit_seconds": round(sum(f["seconds"] for f in _FITS), 1),
        "refit_seconds": round(sum(f["seconds"] for f in _FITS if f["attempt"] > 0), 1),
        "convergence": ens.get("convergence"),
        "n_fits_with_problems": len(bad_fits),
        "max_rhat_all_fits": max(rh) if rh else None,
        "max_rhat_first_attempts": max(f["max_rhat"] for f in first),
        "divergences_all_fits": int(sum(f["divergences"] or 0 for f in final)),
        "sampler_warnings": sampler_warn,
        "other_warnings": other_warn,
        "wall_seconds": round(wall, 1),
        "per_run": json.loads(per_run.to_json(orient="records")),
    }
    return out


# --------------------------------------------------------------------------- pooled + md
def pooled(results, label, keep=None):
    rs = [r for r in results if "error" not in r and (keep is None or keep(r))]
    if not rs:
        return None
    n = sum(r["n_test"] for r in rs)
    lpds = np.concatenate([[x["lpd"] for x in r["per_run"]] for r in rs])
    below = np.concatenate([[x["below_median"] for x in r["per_run"]] for r in rs])
    abserr = np.concatenate([[x["abs_error"] for x in r["per_run"]] for r in rs])
    return {
        "label": label,
        "tables": [r["table"] for r in rs],
        "n_test": int(n),
        "coverage": {f"{p:g}": sum(r["n_covered"][f"{p:g}"] for r in rs) / n for p in PROBS},
        "n_covered": {f"{p:g}": sum(r["n_covered"][f"{p:g}"] for r in rs) for p in PROBS},
        "lpd_mean_over_tables": float(np.mean([r["lpd_mean"] for r in rs])),
        "lpd_mean_over_runs": float(np.mean(lpds)),
        "median_abs_error_over_runs": float(np.median(abserr)),
        "frac_below_median_over_runs": float(np.mean(below)),
        "n_fits": sum(r["n_fits"] for r in rs),
        "n_unconverged_first": sum(r["n_unconverged_first"] for r in rs),
        "n_unconverged_final": sum(r["n_unconverged_final"] for r in rs),
        "fit_seconds": round(sum(r["fit_seconds"] for r in rs), 1),
        "refit_seconds": round(sum(r["refit_seconds"] for r in rs), 1),
        "n_fits_with_problems": sum(r["n_fits_with_problems"] for r in rs),
        "max_rhat_all_fits": max(r["max_rhat_all_fits"] or 0 for r in rs),
        "wall_seconds": round(sum(r["wall_seconds"] for r in rs), 1),
    }


SHORT = {"chinchilla": "chin", "chinchilla-tied": "tied", "kaplan-linf": "kap",
         "data-constrained": "dc"}


def _kinds(f):
    kinds = []
    if f["max_rhat"] is not None and not f["max_rhat"] <= 1.01:
        kinds.append(f"R-hat {f['max_rhat']:.3f}")
    if f["divergences"]:
        kinds.append(f"{f['divergences']} div")
    if f["treedepth_hits"]:
        kinds.append(f"{f['treedepth_hits']} treedepth")
    if any("ESS" in p for p in f["problems"]):
        kinds.append(f"min ESS {min(f['min_ess_bulk'], f['min_ess_tail']):.0f}")
    return kinds


def _where(f):
    return "member" if f["role"] == "member" else f"split {f.get('split_frac')}"


def _label_fit(f):
    return f"{SHORT.get(f['card'], f['card'])} {_where(f)} ({f['n_runs']} runs)"


def _problems_cell(r):
    conv = r.get("convergence") or {}
    excl = len(conv.get("excluded_split_fits", []))
    drop = len(conv.get("dropped_cards", {}))
    return (f"{r['n_unconverged_first']} -> {r['n_unconverged_final']} of {r['n_fits']} "
            f"(refitted {conv.get('n_refitted', 0)}, split fits left out {excl}, cards dropped "
            f"{drop}); max R-hat {r['max_rhat_first_attempts']:.3f} -> "
            f"{r['max_rhat_all_fits']:.3f}")


def markdown(results, pools, total_wall):
    lines = [
        "# Issue 19, item 4: only converged fits count (after)",
        "",
        "`bs.backtest(runs, holdout_frac=0.2, random_seed=0)`, library defaults (law ensemble, "
        "nested; 4 chains x 1000 draws, 1000 tune; unconverged fits refitted), branch "
        f"`converge19` at `{_git_head()}`. Written by `scripts/converge19.py`. Unconverged: "
        "R-hat > 1.01 or a divergence; 'a -> b': first attempts (the fits made before the "
        "refit policy) -> the fits that count.",
        "",
        "| table | held out (train) | cov50 | cov80 | cov90 | cov95 | lpd | median abs err "
        "| frac below median | weights | tau | validated dec. (max held-out dec.) "
        "| unconverged fits (before -> after) | time (refits) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['table']} | ERROR: {r['error']} |" + " |" * 12)
            continue
        c = r["coverage"]
        w = ", ".join(f"{SHORT.get(k, k)} {v:.2f}" for k, v in (r["weights"] or {}).items())
        lines.append(
            f"| {r['table']} | {r['n_test']} ({r['n_train']}) | {c['0.5']:.2f} | {c['0.8']:.2f} "
            f"| {c['0.9']:.2f} | {c['0.95']:.2f} | {r['lpd_mean']:.2f} "
            f"| {r['median_abs_error']:.3f} | {r['frac_below_median']:.2f} | {w} "
            f"| {r['tau']:.3f} | {r['validated_decades']:.2f} "
            f"({r['max_delta_decades_heldout']:.2f}) "
            f"| {_problems_cell(r)} | {r['wall_seconds']:.0f} s ({r['refit_seconds']:.0f} s) |"
        )
    for p in pools:
        if p is None:
            continue
        c = p["coverage"]
        lines.append(
            f"| **{p['label']}** | {p['n_test']} | {c['0.5']:.2f} | {c['0.8']:.2f} "
            f"| {c['0.9']:.2f} ({p['n_covered']['0.9']}/{p['n_test']}) | {c['0.95']:.2f} "
            f"| {p['lpd_mean_over_tables']:.2f} (tables) / {p['lpd_mean_over_runs']:.2f} (runs) "
            f"| {p['median_abs_error_over_runs']:.3f} | {p['frac_below_median_over_runs']:.2f} "
            f"| | | | {p['n_unconverged_first']} -> {p['n_unconverged_final']} of {p['n_fits']} "
            f"fits; max R-hat {p['max_rhat_all_fits']:.3f} | {p['wall_seconds']:.0f} s "
            f"({p['refit_seconds']:.0f} s) |"
        )
    lines += [
        "",
        "lpd: mean held-out log predictive density of log loss (higher is better). Median abs "
        "err: |loss - predictive median| in nats. Frac below median: share of held-out runs "
        "whose observed loss is below the predictive median (0.5 = unbiased; > 0.5: the "
        "forecast is pessimistic, < 0.5: optimistic). Weights: chin = chinchilla, tied = "
        "chinchilla-tied, kap = kaplan-linf, dc = data-constrained. Pooled coverage over runs; "
        "pooled lpd as the mean of the tables' means and as the mean over runs.",
        "",
        "## Extra per-table numbers",
        "",
        "| table | mean log resid (obs - median) | misses below/above at 90% "
        "| mean 90% width (log) | corr(resid, log D/N) | corr(resid, decades) | lpd min "
        "| max abs err | sigma median |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            continue
        m = r["misses_side"]["0.9"]
        cd = r["corr_resid_logDN"]
        cx = r["corr_resid_delta"]
        sig = (r["noise"] or {}).get("sigma_median")
        lines.append(
            f"| {r['table']} | {r['mean_log_resid']:+.4f} | {m['below']}/{m['above']} "
            f"| {r['mean_interval_width_log']['0.9']:.4f} "
            f"| {'n/a' if cd is None else f'{cd:+.2f}'} | {'n/a' if cx is None else f'{cx:+.2f}'} "
            f"| {r['lpd_min']:.2f} | {r['max_abs_error']:.3f} "
            f"| {'n/a' if sig is None else f'{sig:.4f}'} |"
        )
    lines += ["", "## Every fit's diagnostics (members on the training runs; rolling splits of "
              "the training runs)", "",
              "| table | fit | card | runs | attempt (seed, tune, draws) | max R-hat "
              "| min ESS bulk / tail | divergences | problems |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            continue
        for f in r["fits"]:
            lines.append(
                f"| {r['table']} | {_where(f)} | {f['card']} | {f['n_runs']} "
                f"| {f['attempt']} ({f['seed']}, {f['tune']}, {f['draws']}) "
                f"| {f['max_rhat']:.3f} | {f['min_ess_bulk']:.0f} / {f['min_ess_tail']:.0f} "
                f"| {f['divergences']} | {', '.join(_kinds(f)) or 'ok'} |")
    lines += ["", "## Convergence records (ensemble of the training runs)", ""]
    for r in results:
        if "error" in r:
            continue
        conv = r.get("convergence") or {}
        lines.append(f"- **{r['table']}**: {conv.get('n_refitted', 0)} of {conv.get('n_fits')} "
                     "fits refitted")
        for key in ("refitted", "excluded_split_fits", "unconverged_kept"):
            for msg in conv.get(key, []):
                lines.append(f"  - {key}: {msg}")
        for card, why in (conv.get("dropped_cards") or {}).items():
            lines.append(f"  - dropped {card}: {why}")
    lines += ["", "## Sampler warnings (as raised)", ""]
    for r in results:
        if "error" in r:
            continue
        lines.append(f"- **{r['table']}** ({len(r['sampler_warnings'])} SamplerWarning):")
        for msg in r["sampler_warnings"]:
            lines.append(f"  - {msg}")
        if not r["sampler_warnings"]:
            lines.append("  - none")
    lines += ["", "## Loading", ""]
    for r in results:
        lines.append(f"- **{r['table']}**: {r.get('loaded_with', '')}; {r.get('n_runs', '?')} runs")
    lines += ["", f"Total wall time: {total_wall / 60:.1f} min ({total_wall:.0f} s)."]
    return "\n".join(lines) + "\n"


def _git_head():
    try:
        return subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]),
                               "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return "unknown"


def _jsonable(o):
    if isinstance(o, (np.floating,)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="converge19_out")
    ap.add_argument("--only", action="append", help="table name(s) to run (default all)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    results = []
    meta = {
        "call": "bs.backtest(runs, holdout_frac=0.2, random_seed=0)",
        "git_head": _git_head(),
        "python": sys.version,
        "platform": platform.platform(),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "BAYESCALE_DATA_DIR",
                                               "PYTHONPATH", "BAYESCALE_CACHE_DIR")},
        "versions": {m: __import__(m).__version__ for m in ("bayescale", "numpy", "pymc",
                                                             "nutpie", "pytensor")},
        "refit_policy": {"refits": _ens.REFITS, "tune_factor": _ens.REFIT_TUNE_FACTOR,
                         "draws_factor": _ens.REFIT_DRAWS_FACTOR},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name, loader in tables().items():
        if args.only and name not in args.only:
            continue
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
        try:
            r = run_table(name, loader)
        except Exception as err:  # noqa: BLE001
            import traceback

            r = {"table": name, "error": f"{type(err).__name__}: {err}",
                 "traceback": traceback.format_exc()}
        results.append(r)
        if "error" in r:
            print(f"  ERROR {r['error']}", flush=True)
        else:
            print(f"  n_test {r['n_test']} cov {r['coverage']} lpd {r['lpd_mean']:.3f} "
                  f"mae {r['median_abs_error']:.4f} below {r['frac_below_median']:.2f} "
                  f"w {r['weights']} tau {r['tau']:.4f} unconverged "
                  f"{r['n_unconverged_first']}->{r['n_unconverged_final']}/{r['n_fits']} max R-hat "
                  f"{r['max_rhat_all_fits']:.4f} [{r['wall_seconds']:.0f} s]", flush=True)
        total = time.perf_counter() - t_all
        pools = [pooled(results, "pooled, all tables"),
                 pooled(results, "pooled, without OWT2",
                        keep=lambda r: r["table"] != "OWT2 untuned")]
        doc = {"meta": {**meta, "total_wall_seconds": round(total, 1)}, "tables": results,
               "pooled": [p for p in pools if p is not None]}
        (out / "issue19_after.json").write_text(json.dumps(doc, indent=1, default=_jsonable))
        (out / "issue19_after.md").write_text(markdown(results, pools, total))
    print(f"done in {(time.perf_counter() - t_all) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
