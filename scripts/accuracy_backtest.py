"""Backtest of the accuracy laws on the Gadre et al. (2024) downstream table.

Fit on the runs below a compute cut, predict the held-out larger runs, and score: 90% predictive
coverage, median absolute error of the law's median, and mean interval width, for

- ``direct``: the ``accuracy-direct`` card on ``log10 C``;
- ``direct-nd``: the ``accuracy-direct-nd`` card on ``log10 N`` and ``log10 D``;
- ``two-step``: a ``chinchilla`` fit of ``loss_c4_val`` (step 1) carried draw by draw into the
  ``accuracy-two-step`` card (step 2);
- ``plug-in``: the same two fits, step 1's median loss plugged into step 2 (what the published
  two-step methods do), to show what dropping step 1's uncertainty costs.

Usage::

    python scripts/accuracy_backtest.py [--tasks hellaswag arc_easy piqa] [--holdout 0.2]
        [--dataset c4_original] [--draws 1000] [--chains 4] > backtest.json

References
----------
Gadre, S. Y. et al. (2024). arXiv:2403.08540. Grattafiori, A. et al. (2024), Sec. 3.2.1.
Krajewski, J. et al. (2025). arXiv:2512.08894.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import bayescale as bs
from bayescale.answers.accuracy import predict_accuracy
from bayescale.core.datasets import read_table
from bayescale.engines.accuracy import fit_accuracy


def score(name, ds, truth) -> dict:
    pi = ds["pi"].to_numpy()
    med = ds["median"].to_numpy()
    return {
        "method": name,
        "coverage90": float(np.mean((pi[:, 0] <= truth) & (truth <= pi[:, 1]))),
        "median_abs_error": float(np.median(np.abs(med - truth))),
        "mean_pi_width": float(np.mean(pi[:, 1] - pi[:, 0])),
        "mean_ci_width": float(np.mean(np.diff(ds["ci"].to_numpy(), axis=1))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["hellaswag", "arc_easy", "piqa"])
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--via", default="loss_c4_val")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default=None,
                        help="keep one training corpus (c4_original, rpj, rw_original)")
    args = parser.parse_args(argv)

    frame = read_table("overtraining_downstream")
    if args.dataset is not None:
        frame = frame[frame["dataset"] == args.dataset].reset_index(drop=True)
    order = np.argsort(frame["C_6ND"].to_numpy(), kind="stable")
    n_test = int(round(args.holdout * len(frame)))
    test = frame.iloc[order[-n_test:]].reset_index(drop=True)
    train = frame.iloc[order[:-n_test]].reset_index(drop=True)
    cut = float(train["C_6ND"].max())
    opts = dict(draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed)
    loss_fit = bs.fit(bs.load_runs(train, mapping={"loss": args.via, "N": "N", "D": "D"}),
                      card="chinchilla", **opts)
    out = {"dataset": args.dataset, "n_train": len(train), "n_test": len(test), "train_max_C": cut,
           "test_C": [float(test["C_6ND"].min()), float(test["C_6ND"].max())], "tasks": {}}
    N, D = test["N"].to_numpy(float), test["D"].to_numpy(float)
    for task in args.tasks:
        metric = f"acc_{task}"
        truth = test[metric].to_numpy()
        direct = fit_accuracy(train, metric=metric, **opts)
        nd = fit_accuracy(train, metric=metric, card="accuracy-direct-nd", **opts)
        two = fit_accuracy(train, metric=metric, card="accuracy-two-step", via=args.via, **opts)
        d = predict_accuracy(direct, N=N, D=D, random_seed=args.seed)
        dnd = predict_accuracy(nd, N=N, D=D, random_seed=args.seed)
        t = predict_accuracy(two, loss_fit=loss_fit, N=N, D=D, random_seed=args.seed)
        p = predict_accuracy(two, loss=t["via_loss"].to_numpy(), random_seed=args.seed)
        chance = json.loads(direct.attrs["bayescale_accuracy"])["chance"]
        out["tasks"][task] = {
            "signal": chance["signal"],
            "chance": chance["message"],
            "scores": [score("direct", d, truth), score("direct-nd", dnd, truth),
                       score("two-step", t, truth), score("plug-in", p, truth)],
            "diagnostics": {
                "direct": json.loads(direct.attrs["bayescale_diagnostics"])["problems"],
                "direct-nd": json.loads(nd.attrs["bayescale_diagnostics"])["problems"],
                "two-step": json.loads(two.attrs["bayescale_diagnostics"])["problems"],
            },
        }
        print(f"{task}: done", file=sys.stderr)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
