"""Simulation study of `bayescale.plan`: does the planned ladder extension beat the naive one?

Each trial simulates a small IsoFLOP ladder from a known Chinchilla law (budgets 1e17, 3e17, 1e18
FLOPs, 5 sizes each, Normal noise sigma = 0.01 on log loss, seed = trial), fits the default card
(2 chains x 1000 draws), and plans new runs worth ``--budget-new`` FLOPs for the law's loss at a
run 100x beyond the ladder (N = 2e9, D = 4e10). Then the truth is revealed: the planned runs and
the naive plan's runs (next ladder budget on the same N grid, equal cost) are simulated from the
true law with fresh noise, and each extended table is refitted. Reported per trial: the width of
the 90% interval today, predicted after the plan and after the naive plan (preposterior), and
realised after each refit; whether the truth lies in the interval before and after.

Run (each about 5-10 minutes on two cores; prints a table and the summary checks on stdout,
``--out FILE.csv`` keeps the per-trial table)::

    python benchmarks/planning.py --trials 20                                # on the frontier
    python benchmarks/planning.py --trials 20 --target-N 5e8 --target-D 2e11 # over-trained
    python benchmarks/planning.py --trials 20 --nopt-budget 1e21             # log10 N* at 1e21

Measured (20 trials each, load 8-13 on 2 cores): plan narrower than naive after the refit in
70% / 95% / 95% of trials (predicted: 100% in all three); mean shrinkage predicted / realised
0.380 / 0.366, 0.393 / 0.396, 0.346 / 0.340; truth inside the 90% interval after the plan in
100% / 95% / 100%.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bayescale import datasets  # noqa: E402
from bayescale.answers.planning import plan  # noqa: E402
from bayescale.answers.planning.targets import make_target, target_values, weighted_interval  # noqa: E402
from bayescale.answers.planning.view import posterior_view  # noqa: E402
from bayescale.core.laws import get_law  # noqa: E402
from bayescale.errors import SamplerWarning  # noqa: E402
from bayescale.workflows.fit import fit  # noqa: E402

TRUTH = datasets.DEFAULT_PARAMS["chinchilla"]
SIGMA = 0.01
BUDGETS = (1e17, 3e17, 1e18)
TARGET = {"N": 2e9, "D": 4e10}
FIT = {"card": "chinchilla", "draws": 1000, "tune": 1000, "chains": 2}


def true_loss(N, D):
    return get_law("chinchilla").loss(np.asarray(N, float), np.asarray(D, float), TRUTH)


def interval(tree, target, ci_prob=0.9):
    vals = target_values(posterior_view(tree), target)
    return weighted_interval(vals, np.zeros(vals.size), ci_prob=ci_prob)[0]


def extended(runs, new, rng):
    y = np.log(true_loss(new["N"], new["D"])) + SIGMA * rng.standard_normal(len(new))
    add = pd.DataFrame({"N": new["N"].to_numpy(), "D": new["D"].to_numpy(), "loss": np.exp(y)})
    return pd.concat([runs[["N", "D", "loss"]], add], ignore_index=True)


def trial(seed: int, budget_new: float, nopt_budget=None) -> dict:
    runs = datasets.simulate(budgets=BUDGETS, n_per_budget=5, sigma=SIGMA, random_seed=seed)
    if nopt_budget is None:
        kw = {"target": "loss", **TARGET}
        truth = float(true_loss(TARGET["N"], TARGET["D"]))
    else:
        kw = {"target": "nopt", "budget": nopt_budget}
        n_opt, _ = get_law("chinchilla").optimal(np.array([nopt_budget]), TRUTH)
        truth = float(np.log10(np.atleast_1d(n_opt)[0]))
    target = make_target(**kw)
    t0 = time.perf_counter()
    base = fit(runs, random_seed=seed, **FIT)
    t1 = time.perf_counter()
    p = plan(base, budget_new=budget_new, random_seed=seed, **kw)
    t2 = time.perf_counter()
    rng = np.random.default_rng(10_000 + seed)
    lo0, hi0 = interval(base, target)
    lo1, hi1 = interval(fit(extended(runs, p.runs, rng), random_seed=seed, **FIT), target)
    lo2, hi2 = interval(fit(extended(runs, p.naive_runs, rng), random_seed=seed, **FIT), target)
    return {
        "seed": seed,
        "n_plan": len(p.runs),
        "n_naive": len(p.naive_runs),
        "cost": p.cost,
        "naive_cost": float(p.naive_runs["C"].sum()),
        "method": ",".join(sorted(set(p.runs["method"]))) + "/" + p.settings["naive_method"],
        "width_now": p.width_now,
        "pred_after": p.width_after,
        "pred_naive": p.width_after_naive,
        "real_now": hi0 - lo0,
        "real_after": hi1 - lo1,
        "real_naive": hi2 - lo2,
        "cover_now": lo0 <= truth <= hi0,
        "cover_after": lo1 <= truth <= hi1,
        "cover_naive": lo2 <= truth <= hi2,
        "fit_s": t1 - t0,
        "plan_s": t2 - t1,
        "refits": p.settings["refits"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--budget-new", type=float, default=1e19)
    ap.add_argument("--target-N", type=float, default=TARGET["N"])
    ap.add_argument("--target-D", type=float, default=TARGET["D"])
    ap.add_argument("--nopt-budget", type=float, default=None,
                    help="Target log10 N* at this budget instead of the loss at (N, D).")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    TARGET.update(N=args.target_N, D=args.target_D)
    what = (f"law loss at N={TARGET['N']:.3g}, D={TARGET['D']:.3g}" if args.nopt_budget is None
            else f"log10 N* at C={args.nopt_budget:.3g}")
    print(f"target: {what}; budget for new runs "
          f"{args.budget_new:.3g} FLOPs; {args.trials} trials", flush=True)
    rows = []
    n_warn = 0
    for seed in range(args.trials):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SamplerWarning)
            rows.append(trial(seed, args.budget_new, args.nopt_budget))
        n_warn += sum(issubclass(w.category, SamplerWarning) for w in caught)
        r = rows[-1]
        print(
            f"trial {seed:2d}: now {r['width_now']:.4f}  pred {r['pred_after']:.4f} "
            f"(naive {r['pred_naive']:.4f})  real {r['real_after']:.4f} "
            f"(naive {r['real_naive']:.4f})  {r['method']}  plan {r['plan_s']:.1f}s  "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    t = pd.DataFrame(rows)
    if args.out:
        t.to_csv(args.out, index=False)
    pd.set_option("display.width", 200)
    print(t.drop(columns=["method"]).round(4).to_string(index=False))
    pred = 1 - t["pred_after"] / t["width_now"]
    real = 1 - t["real_after"] / t["real_now"]
    pred_naive = 1 - t["pred_naive"] / t["width_now"]
    real_naive = 1 - t["real_naive"] / t["real_now"]
    print(f"\nsampler warnings in {args.trials} trials: {n_warn}")
    print(f"plan beats naive (realised width): {(t['real_after'] < t['real_naive']).mean():.0%}")
    print(f"plan beats naive (predicted width): {(t['pred_after'] < t['pred_naive']).mean():.0%}")
    print(f"mean shrinkage plan: predicted {pred.mean():.3f}, realised {real.mean():.3f} "
          f"(ratio {real.mean() / pred.mean():.2f})")
    print(f"mean shrinkage naive: predicted {pred_naive.mean():.3f}, "
          f"realised {real_naive.mean():.3f}")
    print(f"90% interval covers the truth: before {t['cover_now'].mean():.0%}, after plan "
          f"{t['cover_after'].mean():.0%}, after naive {t['cover_naive'].mean():.0%}")
    print(f"median plan time {t['plan_s'].median():.1f}s, fit {t['fit_s'].median():.1f}s")


if __name__ == "__main__":
    main()
