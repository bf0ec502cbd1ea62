"""Issue 20: the default accuracy backtest on every task of the Gadre et al. (2024) ladder.

Per training corpus (``group_by="dataset"``), the top 20% of runs by compute held out, the
stacked accuracy laws (direct, direct in N and D, two-step via ``loss_c4_val``) fitted on the
rest with nested rolling splits; tasks without signal above chance on the training runs are
flagged and not forecast. Prints the pooled coverage at 50/80/90/95%, log score, mid-PIT share
below 0.5 and the median absolute error in accuracy points beside the plug-in two-step (Llama 3)
and direct least-squares point fits, per task and pooled.

Usage: python scripts/accuracy20.py [--draws 500] [--out result.json] [--metric 'acc_*']
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from bayescale.core.datasets import read_table
from bayescale.workflows.accuracy_backtest import backtest_accuracy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--metric", default="acc_*")
    ap.add_argument("--via", default="loss_c4_val")
    ap.add_argument("--out", default="accuracy20.json")
    args = ap.parse_args()
    frame = read_table("overtraining_downstream")
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = backtest_accuracy(
            frame, metrics=args.metric, via=args.via, group_by="dataset", draws=args.draws,
            tune=args.draws, executor="serial", random_seed=0,
            on_metric=lambda m, g: print(f"[{time.time() - t0:6.0f}s] {m} {g}", flush=True),
        )
    data = result.to_dict()
    data["seconds"] = time.time() - t0
    with open(args.out, "w") as fh:
        json.dump(data, fh, indent=1, default=str)
    cols = ["metric", "group", "signal", "coverage_0.5", "coverage_0.9", "lpd_mean",
            "median_abs_error_points", "plug_in_mae_points", "direct_point_mae_points", "tau"]
    print(result.forecasts[cols].to_string(float_format=lambda v: f"{v:.3f}"))
    print(json.dumps(result.pooled, indent=1))


if __name__ == "__main__":
    main()
