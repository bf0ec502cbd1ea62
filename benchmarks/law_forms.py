"""Extrapolation backtests of the candidate law forms next to chinchilla and kaplan-linf.

Holds out the top 20% of runs by compute on each public table in ``BAYESCALE_DATA_DIR`` (the
over-training table per corpus) and prints, per card and table, the mean held-out log predictive
density, 50% and 90% coverage, the median absolute error, the held-out residuals' correlation with
log(D/N), and the fit's sampler diagnostics. Sequential, one process.

Run: ``BAYESCALE_DATA_DIR=../shared/data python benchmarks/law_forms.py [--draws 500]
[--cards chinchilla-interaction chinchilla-shifted chinchilla kaplan-linf]`` (about 10 minutes on
two quiet cores at 500 draws). Prints one JSON line per backtest on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import bayescale as bs  # noqa: E402

CARDS = ("chinchilla-interaction", "chinchilla-shifted", "chinchilla", "kaplan-linf")
CORPORA = ("c4_original", "rpj", "rw_original")


def tables(data_dir: str) -> dict:
    """Loaders of the public tables, the over-training one split by corpus."""
    out = {
        "chinchilla": lambda: bs.datasets.load("chinchilla", drop_top_loss=5),
        "datablations": lambda: bs.load_runs(f"{data_dir}/datablations_muennighoff2023.csv"),
        "marin": lambda: bs.load_runs(f"{data_dir}/marin_comma_isoflops.csv"),
    }
    for g in CORPORA:
        out[f"overtraining/{g}"] = lambda g=g: bs.load_runs(
            f"{data_dir}/overtraining_gadre2024.csv",
            mapping={"loss": "loss_c4_val", "group": "dataset_name"},
            group=g,
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cards", nargs="+", default=list(CARDS))
    p.add_argument("--tables", nargs="+", default=None)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    data_dir = os.environ.get("BAYESCALE_DATA_DIR", "../shared/data")
    loaders = tables(data_dir)
    for card in args.cards:
        for name in args.tables or list(loaders):
            runs = loaders[name]()
            t0 = time.time()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                r = bs.backtest(
                    runs, card=card, holdout_frac=0.2, draws=args.draws, tune=args.draws,
                    chains=4, random_seed=args.seed,
                )
            t = r.table
            resid = np.log(t["loss"] / t["median"])
            r_ratio = float(np.corrcoef(resid, np.log(t["D"] / t["N"]))[0, 1])
            diag = r.diagnostics or {}
            rec = {
                "card": card,
                "table": name,
                "n_train": r.n_train,
                "n_test": r.n_test,
                "lpd_mean": round(r.lpd_mean, 3),
                "coverage_50": round(r.coverage[0.5], 3),
                "coverage_90": round(r.coverage[0.9], 3),
                "median_abs_error": round(r.median_abs_error, 4),
                "r_resid_log_D_over_N": round(r_ratio, 2),
                "divergences": diag.get("divergences"),
                "max_rhat": diag.get("max_rhat"),
                "sampler_warnings": sum("Sampler" in type(w.message).__name__ for w in caught),
                "seconds": round(time.time() - t0, 1),
            }
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
