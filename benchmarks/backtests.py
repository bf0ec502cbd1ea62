"""Extrapolation backtests and model comparison on the real datasets (numbers for the issue note).

Holds out the top 20% of runs by compute on each real dataset and scores the Bayesian fit
(``bayes``: the library default, i.e. the law ensemble, refitted with its weights and discrepancy
on the training runs only; 4 chains x 1000 draws) and the Huber point fit of the chinchilla card
with 100 bootstraps (``mle``); then compares the default cards on the Chinchilla runs. For each
backtest it prints why intervals miss: held-out residual bias and sd against the fitted noise
scale, and the residuals' correlation with log(D/N) and log C.

Run: ``BAYESCALE_DATA_DIR=../shared/data python benchmarks/backtests.py`` (about 10-20 minutes on
two cores). Prints plain-text tables on stdout.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bayescale import datasets  # noqa: E402
from bayescale.workflows.backtest import backtest  # noqa: E402
from bayescale.workflows.compare import compare  # noqa: E402

DATASETS = {
    "chinchilla": {"drop_top_loss": 5},
    "datablations": {},
    "overtraining": {"mapping": {"loss": "loss_c4_val"}},
}


def why(res) -> dict:
    """Residual summary of the held-out runs (log loss minus log predictive median)."""
    t = res.table
    r = np.log(t["loss"] / t["median"])
    sigma = res.diagnostics["noise"]["sigma_median"]
    return {
        "resid_mean": float(r.mean()),
        "resid_sd": float(r.std(ddof=1)),
        "sigma_fit": sigma,
        "sd/sigma": float(r.std(ddof=1) / sigma),
        "rms/sigma": float(np.sqrt(np.mean(r**2)) / sigma),
        "corr_logDN": float(np.corrcoef(r, np.log(t["D"] / t["N"]))[0, 1]),
        "corr_logC": float(np.corrcoef(r, np.log(t["C"]))[0, 1]),
    }


def main() -> int:
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    rows, whys = [], []
    for name, kwargs in DATASETS.items():
        runs = datasets.load(name, **kwargs)
        for method in ("bayes", "mle"):
            t0 = time.perf_counter()
            res = backtest(runs, method=method, holdout_frac=0.2, draws=1000, tune=1000,
                           chains=4, n_bootstrap=100, random_seed=0)
            secs = time.perf_counter() - t0
            rows.append(
                {
                    "dataset": name,
                    "method": method,
                    "n_train": res.n_train,
                    "n_test": res.n_test,
                    "cutoff": f"{res.cutoff:.3g}",
                    **{f"cov{p * 100:g}": round(c, 3) for p, c in res.coverage.items()},
                    "lpd_mean": round(res.lpd_mean, 3),
                    "MAE": round(res.median_abs_error, 4),
                    "seconds": round(secs, 1),
                }
            )
            whys.append({"dataset": name, "method": method,
                         **{k: round(v, 4) for k, v in why(res).items()}})
            print(f"done {name} {method} in {secs:.0f} s", file=sys.stderr, flush=True)
    print("Backtest, top 20% of runs by compute held out")
    print(pd.DataFrame(rows).to_string(index=False))
    print()
    print("Held-out residuals (log loss - log predictive median) vs fitted noise")
    print(pd.DataFrame(whys).to_string(index=False))
    print()
    t0 = time.perf_counter()
    res = compare(datasets.load("chinchilla", drop_top_loss=5), draws=1000, tune=1000, chains=4,
                  random_seed=0)
    print(f"Comparison on Chinchilla runs ({time.perf_counter() - t0:.0f} s)")
    print(res.loo.to_string())
    print(res.backtests.to_string())
    print(res.verdict)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
