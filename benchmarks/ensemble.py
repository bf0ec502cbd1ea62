"""Extrapolation backtests of the default law ensemble against the single chinchilla card.

For every public table (the over-training table per corpus), hold out the top 20% of runs by
compute, fit on the rest and score the held-out runs: 50% and 90% predictive coverage, mean log
predictive density and median absolute error. The ensemble is nested: its weights and
discrepancy come from rolling splits of the training runs only. Prints a markdown table and the
pooled 90% coverage.

    BAYESCALE_DATA_DIR=../shared/data .venv/bin/python benchmarks/ensemble.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import bayescale as bs
from bayescale.errors import SamplerWarning

OT = {"mapping": {"loss": "loss_c4_val", "group": "dataset_name"}}


def tables():
    """``{name: loader}`` of the public tables (skipping those not available here)."""
    out = {
        "chinchilla": lambda: bs.datasets.load("chinchilla", drop_top_loss=5),
        "datablations": lambda: bs.datasets.load("datablations"),
        "overtraining c4": lambda: bs.datasets.load("overtraining", group="c4_original", **OT),
        "overtraining rpj": lambda: bs.datasets.load("overtraining", group="rpj", **OT),
        "overtraining rw": lambda: bs.datasets.load("overtraining", group="rw_original", **OT),
        "marin": lambda: bs.datasets.load("marin"),
    }
    return {k: v for k, v in out.items()
            if bs.datasets.available(k.split()[0])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2 chains x 500 draws")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    opts = {"draws": 500, "tune": 500, "chains": 2} if args.quick else {}
    rows, pooled = [], {"before": [0, 0], "after": [0, 0]}
    for name, load in tables().items():
        runs = load()
        res = {}
        for label, card in (("before", "chinchilla"), ("after", None)):
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SamplerWarning)
                r = bs.backtest(runs, card=card, random_seed=args.seed, **opts)
            res[label] = (r, time.perf_counter() - t0, len(caught))
            pooled[label][0] += r.coverage[0.9] * r.n_test
            pooled[label][1] += r.n_test
        b, a = res["before"][0], res["after"][0]
        rows.append(
            f"| {name} | {a.n_test} | {b.coverage[0.5]:.2f} → {a.coverage[0.5]:.2f} "
            f"| {b.coverage[0.9]:.2f} → {a.coverage[0.9]:.2f} "
            f"| {b.lpd_mean:.2f} → {a.lpd_mean:.2f} "
            f"| {b.median_abs_error:.3f} → {a.median_abs_error:.3f} "
            f"| {', '.join(f'{k} {v:.2f}' for k, v in a.weights.items())} | {a.tau:.3f} "
            f"| {a.validated_decades:.2f} | {res['after'][1]:.0f} s ({res['after'][2]} warnings) |"
        )
        print(rows[-1], flush=True)
    print()
    print("| table | held out | 50% coverage | 90% coverage | mean lpd | median abs error "
          "| weights | tau | validated decades | ensemble backtest time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    for label, (hit, n) in pooled.items():
        print(f"pooled 90% coverage {label}: {hit / n:.3f} over {n} held-out runs")


if __name__ == "__main__":
    main()
