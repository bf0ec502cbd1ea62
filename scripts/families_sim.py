"""Simulation study of pooled families: does a family with 6 runs borrow strength honestly?

Each seed simulates three families from the Chinchilla law with *shared* exponents
(``alpha = 0.34``, ``beta = 0.28``) and their own ``E``, ``A``, ``B`` (``E ~ U(1.5, 2.1)``,
``A, B`` = Hoffmann's values times ``exp(U(-0.5, 0.5))``): two full IsoFLOP sweeps (5 budgets from
1e17 to 1e19 FLOPs, 5 sizes each: 25 runs) and one small family with 6 runs (budgets 1e17 and
1e18, 3 sizes each), noise sd 0.01 on log loss. The small family's true ``N*`` at 100x its largest
run (1e20 FLOPs) is then compared with the 90% interval of

- the pooled fit of all three families (``group_by``, the default card's ``[pooling]``), and
- the separate fit of the small family alone (same sampler settings). The default card has 7
  parameters (E, A, B, alpha, beta, sigma, nu) and refuses 6 runs, so the separate fit uses
  ``chinchilla-normal`` (6 parameters; the simulated noise *is* Normal, so this favours it).

Reported: coverage of each interval over the seeds, how often the pooled interval is narrower,
median widths (decades), and sampler warnings.

``--different-exponents`` instead gives the third family a truly different exponent
(``alpha = 0.45`` against 0.34, a full sweep) and prints the per-family posteriors of ``alpha``,
the pooling scale, ``P(alpha_c > alpha_a)`` and the fit of that family alone: pooling must not
erase the difference (measured: the pooled ``alpha_c`` stays within 0.03 of the fit alone, whose
own interval is pulled below 0.45 by the E-A-alpha trade-off of a 1e17-1e19 sweep).

Run: ``python scripts/families_sim.py --seeds 100`` (about 30-60 s per seed on two cores after the
first compile); ``--out results.jsonl`` appends one JSON line per seed.
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
import pandas as pd  # noqa: E402

import bayescale as bs  # noqa: E402
from bayescale import datasets  # noqa: E402
from bayescale.core.laws import get_law  # noqa: E402
from bayescale.errors import SamplerWarning  # noqa: E402
from bayescale.families import family_view, pooling_summary  # noqa: E402

ALPHA, BETA = 0.34, 0.28
BIG = dict(budgets=(1e17, 3e17, 1e18, 3e18, 1e19), n_per_budget=5)
SMALL = dict(budgets=(1e17, 1e18), n_per_budget=3)
SETTINGS = dict(draws=500, tune=1000, chains=4)


def simulate_families(seed: int, *, alphas=(ALPHA, ALPHA, ALPHA), small_last: bool = True):
    """Three families ``a``, ``b``, ``c`` (``c`` the small one) and their true parameters."""
    rng = np.random.default_rng(seed)
    frames, truth = [], {}
    for k, (lab, alpha) in enumerate(zip("abc", alphas, strict=True)):
        params = {
            "E": rng.uniform(1.5, 2.1),
            "A": 406.4 * np.exp(rng.uniform(-0.5, 0.5)),
            "B": 410.7 * np.exp(rng.uniform(-0.5, 0.5)),
            "alpha": alpha,
            "beta": BETA,
        }
        sweep = SMALL if (small_last and k == 2) else BIG
        df = datasets.simulate(params=params, sigma=0.01, random_seed=rng, **sweep)
        df["family"] = lab
        df["run"] = [f"{lab}{i}" for i in range(len(df))]
        frames.append(df)
        truth[lab] = params
    return pd.concat(frames, ignore_index=True), truth


def interval_of(fit, budget):
    o = bs.optimal(fit, budgets=[budget]).sel(budget=budget)
    lo, hi = o["N_opt_ci"].to_numpy()
    return float(o["N_opt"]), float(lo), float(hi)


def one_seed(seed: int) -> dict:
    frame, truth = simulate_families(seed)
    small = frame[frame["family"] == "c"]
    budget = 100 * float(small["C"].max())
    n_true = float(get_law("chinchilla").optimal(budget, truth["c"])[0])
    out = {"seed": seed, "budget": budget, "N_true": n_true}
    for method in ("pooled", "separate"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SamplerWarning)
            if method == "pooled":
                post = bs.fit(frame, card="chinchilla", group_by="family", random_seed=seed,
                              **SETTINGS)
                view = family_view(post, "c")
            else:  # the default card has 7 parameters, more than 6 runs: Normal noise, 6
                view = bs.fit(small.drop(columns="family"), card="chinchilla-normal",
                              random_seed=seed, **SETTINGS)
        med, lo, hi = interval_of(view, budget)
        out[method] = {
            "median": med,
            "lower": lo,
            "upper": hi,
            "covered": bool(lo <= n_true <= hi),
            "width_decades": float(np.log10(hi / lo)),
            "warnings": [str(w.message)[:160] for w in caught if w.category is SamplerWarning],
        }
    return out


def coverage_study(seeds, out_path=None) -> None:
    results = []
    for seed in seeds:
        t0 = time.perf_counter()
        r = one_seed(seed)
        results.append(r)
        if out_path:
            with open(out_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(r) + "\n")
        p, s = r["pooled"], r["separate"]
        print(
            f"seed {seed:3d} ({time.perf_counter() - t0:4.0f} s): N* true {r['N_true']:.3g}; "
            f"pooled [{p['lower']:.3g}, {p['upper']:.3g}] {'ok' if p['covered'] else 'MISS'} "
            f"{p['width_decades']:.2f} dec; separate [{s['lower']:.3g}, {s['upper']:.3g}] "
            f"{'ok' if s['covered'] else 'MISS'} {s['width_decades']:.2f} dec; "
            f"warnings {len(p['warnings'])}/{len(s['warnings'])}",
            flush=True,
        )
    summarize(results)


def summarize(results) -> None:
    n = len(results)
    cov_p = sum(r["pooled"]["covered"] for r in results)
    cov_s = sum(r["separate"]["covered"] for r in results)
    narrower = sum(r["pooled"]["width_decades"] < r["separate"]["width_decades"] for r in results)
    wp = np.median([r["pooled"]["width_decades"] for r in results])
    ws = np.median([r["separate"]["width_decades"] for r in results])
    warn_p = sum(bool(r["pooled"]["warnings"]) for r in results)
    warn_s = sum(bool(r["separate"]["warnings"]) for r in results)
    print(f"\n{n} seeds: 90% interval of the 6-run family's N* at 100x its largest run")
    print(f"  pooled   covers {cov_p}/{n}; median width {wp:.2f} decades; "
          f"fits with sampler warnings {warn_p}")
    print(f"  separate covers {cov_s}/{n}; median width {ws:.2f} decades; "
          f"fits with sampler warnings {warn_s}")
    print(f"  pooled narrower in {narrower}/{n}")


def different_exponents(seeds) -> None:
    for seed in seeds:
        frame, truth = simulate_families(seed, alphas=(ALPHA, ALPHA, 0.45), small_last=False)
        post = bs.fit(frame, card="chinchilla", group_by="family", random_seed=seed, **SETTINGS)
        table = pooling_summary(post)
        print(f"\nseed {seed}: true alpha a, b, c = {ALPHA}, {ALPHA}, 0.45")
        print(table.round(3).to_string(index=False))
        a = post["posterior"]["alpha"]
        p = float((a.sel(family="c") > a.sel(family="a")).mean())
        print(f"P(alpha_c > alpha_a) = {p:.3f}")
        alone = bs.fit(frame[frame["family"] == "c"].drop(columns="family"), card="chinchilla",
                       random_seed=seed, **SETTINGS)["posterior"]["alpha"].to_numpy().ravel()
        lo, med, hi = np.quantile(alone, [0.05, 0.5, 0.95])
        print(f"family c fitted alone: alpha {med:.3f} [{lo:.3f}, {hi:.3f}] (true 0.45)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="number of seeds (0..n-1)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--out", help="append one JSON line per seed to this file")
    parser.add_argument("--different-exponents", action="store_true")
    parser.add_argument("--summarize", help="only summarise a JSON-lines file of results")
    args = parser.parse_args(argv)
    if args.summarize:
        with open(args.summarize, encoding="utf-8") as fh:
            summarize([json.loads(line) for line in fh if line.strip()])
        return
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.different_exponents:
        different_exponents(seeds)
    else:
        coverage_study(seeds, args.out)


if __name__ == "__main__":
    main()
