"""Pooled families on the over-training runs (Gadre et al. 2024): answers, contrasts, backtest.

1. The pooled fit of the default card on all 104 runs, ``group_by="dataset_name"``,
   ``loss = loss_c4_val`` (library default sampler settings, 4 x 2000 draws): convergence,
   pooling scales, per-corpus N*, D* and L at 1e22 FLOPs, pairwise contrasts with probabilities.
2. Per-corpus backtest: hold out the top 20% by compute within each corpus, fit pooled on the rest
   and, for comparison, each corpus alone on the same training runs (4 x 1000 draws); mean
   held-out log score, 90% coverage and mean absolute error per corpus and method.

``--card ensemble`` runs both with the law ensemble (every card pooled; each corpus alone is then a
single-family ensemble).

Run: ``BAYESCALE_DATA_DIR=../shared/data python benchmarks/families.py`` (about 10 minutes on two
quiet cores). Prints plain-text tables on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

import bayescale as bs  # noqa: E402
from bayescale import datasets  # noqa: E402
from bayescale.answers.contrast import contrast  # noqa: E402
from bayescale.families import pooling_summary  # noqa: E402
from bayescale.workflows.backtest import backtest  # noqa: E402

GROUP_BY = "dataset_name"
BUDGET = 1e22


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default="chinchilla",
                        help="card name, or 'ensemble' for the law ensemble pooled over corpora")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-fit", action="store_true", help="only the backtest")
    parser.add_argument("--skip-backtest", action="store_true", help="only the pooled fit")
    args = parser.parse_args(argv)
    card = None if args.card == "ensemble" else args.card
    pd.set_option("display.width", 160)
    runs = datasets.load("overtraining", mapping={"loss": "loss_c4_val"}, group_by=GROUP_BY)
    print(f"{len(runs)} runs; families: {runs.frame['family'].value_counts().to_dict()}")

    if not args.skip_fit:
        t0 = time.perf_counter()
        post = bs.fit(runs, card=card, group_by=GROUP_BY, random_seed=args.seed)
        diag = json.loads(post.attrs["bayescale_diagnostics"])  # the lead member's, if ensemble
        print(f"\n== pooled fit ({time.perf_counter() - t0:.0f} s): max R-hat "
              f"{diag['max_rhat']:.4f}, min bulk ESS {diag['min_ess_bulk']:.0f}, "
              f"divergences {diag['divergences']}")
        print(pooling_summary(post).round(4).to_string(index=False))
        opt = bs.optimal(post, budgets=[BUDGET])
        rows = []
        for lab in opt["family"].to_numpy():
            o = opt.sel(family=lab, budget=BUDGET)
            row = {"family": lab}
            for q in ("N_opt", "D_opt", "loss_opt"):
                lo, hi = o[f"{q}_ci"].to_numpy()
                row[q] = f"{float(o[q]):.4g} [{lo:.4g}, {hi:.4g}]"
            rows.append(row)
        print(f"\n== compute-optimal at C = {BUDGET:g} FLOPs (median [90% interval])")
        print(pd.DataFrame(rows).to_string(index=False))
        table = contrast(post, budgets=[BUDGET])
        print("\n== pairwise contrasts (X - Y, or X / Y for N_opt, D_opt)")
        print(table.drop(columns=["family_x", "family_y"]).round(4).to_string(index=False))

    if args.skip_backtest:
        return
    t0 = time.perf_counter()
    result = backtest(
        runs, group_by=GROUP_BY, card=card, holdout_frac=0.2, separate=True,
        random_seed=args.seed,
    )
    summary = result.families
    print(f"\n== per-corpus backtest, top 20% by compute held out per corpus "
          f"({time.perf_counter() - t0:.0f} s)")
    print(summary.round(4).to_string(index=False))
    if result.weights is not None:
        print(f"pooled ensemble on the training runs: weights {result.weights}, tau "
              f"{result.tau}, validated {result.validated_decades} decades")
    wide = summary.pivot(index="family", columns="method", values="lpd_mean")
    wide["pooled >= separate"] = wide["pooled"] >= wide["separate"]
    print(wide.round(4).to_string())
    for method, part in summary.groupby("method"):
        mean = (part["lpd_mean"] * part["n_test"]).sum() / part["n_test"].sum()
        print(f"{method}: mean log score over all held-out runs {mean:.4f}")

if __name__ == "__main__":
    main()
