"""Throughput of prediction and compute-optimal allocation vs a naive xarray evaluation.

Run: ``python benchmarks/throughput.py [--draws 4000] [--queries 10000] [--fit PATH]``

Without ``--fit`` a synthetic posterior of the default card (Chinchilla law, Student-t noise) is
built around Hoffmann et al. (2022)'s values, so no MCMC is needed. Both paths compute the same
summaries (median, mean, 90% equal-tailed credible and predictive intervals; N*, D*, D*/N*, L*
medians and intervals); the baseline is the obvious xarray code: broadcast the law over
``(chain, draw, query)`` and call ``DataArray.quantile``. Timings are wall-clock, best of
``--repeat`` for bayescale, one run of the baseline; the script prints the max difference of the
credible intervals so the two are seen to agree.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from bayescale.answers.allocation import optimal  # noqa: E402
from bayescale.answers.prediction import predict  # noqa: E402
from bayescale.core.cards import load_card  # noqa: E402


def synthetic_fit(n_draws: int, *, seed: int = 0) -> xr.DataTree:
    """A fit-shaped DataTree: 4 chains of Chinchilla-law draws near Hoffmann et al. (2022)."""
    rng = np.random.default_rng(seed)
    chains = 4
    shape = (chains, n_draws // chains)
    post = {
        "E": 1.8 + 0.02 * rng.standard_normal(shape),
        "log_A": np.log(500.0) + 0.1 * rng.standard_normal(shape),
        "log_B": np.log(1500.0) + 0.1 * rng.standard_normal(shape),
        "alpha": 0.35 + 0.01 * rng.standard_normal(shape),
        "beta": 0.35 + 0.01 * rng.standard_normal(shape),
        "sigma": 0.005 * np.exp(0.1 * rng.standard_normal(shape)),
        "nu": 3.0 + rng.gamma(2.0, 1.0, shape),
    }
    post["A"], post["B"] = np.exp(post["log_A"]), np.exp(post["log_B"])
    coords = {"chain": np.arange(shape[0]), "draw": np.arange(shape[1])}
    n = np.geomspace(7e7, 1.6e10, 50)
    d = 1e21 / (6 * n)
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset({k: (("chain", "draw"), v) for k, v in post.items()},
                                coords=coords),
        "constant_data": xr.Dataset({"N": ("run", n), "D": ("run", d), "C": ("run", 6 * n * d)}),
        "observed_data": xr.Dataset({"log_loss": ("run", np.full(n.size, np.log(2.5)))}),
    })
    tree.attrs["bayescale_card"] = load_card("chinchilla").to_json()
    return tree


def naive_predict(fit, N, D, *, ci_prob=0.9, random_seed=0):
    """The obvious xarray evaluation: full (chain, draw, query) arrays and DataArray.quantile."""
    post = fit["posterior"].to_dataset()
    n, d = xr.DataArray(N, dims="query"), xr.DataArray(D, dims="query")
    loss = post["E"] + post["A"] * n ** -post["alpha"] + post["B"] * d ** -post["beta"]
    probs = [0.5, (1 - ci_prob) / 2, (1 + ci_prob) / 2]
    q = loss.quantile(probs, dim=("chain", "draw"))
    mean = loss.mean(("chain", "draw"))
    rng = np.random.default_rng(random_seed)
    eps = xr.DataArray(rng.standard_t(np.broadcast_to(post["nu"].values[..., None], loss.shape)),
                       dims=loss.dims)
    new_run = np.exp(np.log(loss) + post["sigma"] * eps)
    pi = new_run.quantile(probs[1:], dim=("chain", "draw"))
    return q, mean, pi


def naive_optimal(fit, budgets, *, ci_prob=0.9):
    """Closed-form optimum over (chain, draw, budget) with xarray, then DataArray.quantile."""
    post = fit["posterior"].to_dataset()
    c6 = xr.DataArray(budgets, dims="budget") / 6
    a, b = post["alpha"], post["beta"]
    g = (a * post["A"] / (b * post["B"])) ** (1 / (a + b))
    n_opt = g * c6 ** (b / (a + b))
    d_opt = c6 / n_opt
    out = {
        "N_opt": n_opt,
        "D_opt": d_opt,
        "tokens_per_param": d_opt / n_opt,
        "loss_opt": post["E"] + post["A"] * n_opt ** -a + post["B"] * d_opt ** -b,
    }
    probs = [0.5, (1 - ci_prob) / 2, (1 + ci_prob) / 2]
    return {k: v.quantile(probs, dim=("chain", "draw")) for k, v in out.items()}


def best_of(fn, repeat):
    """Best wall-clock time of ``repeat`` calls, with the CPU time of that call, and the result."""
    best = (np.inf, np.inf)
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    return best, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fit", help="a saved chinchilla-law fit (.nc) instead of synthetic draws")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args(argv)

    if args.fit:
        from bayescale.fits.store import load

        fit = load(args.fit)
    else:
        fit = synthetic_fit(args.draws)
    s = fit["posterior"].sizes["chain"] * fit["posterior"].sizes["draw"]
    q = args.queries
    N = np.geomspace(1e8, 1e12, q)
    D = np.geomspace(1e13, 1e9, q)
    budgets = np.geomspace(1e18, 1e27, q)
    print(f"{s} draws x {q} queries ({s * q / 1e6:.0f}M law evaluations), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    rows = []
    t_pred, ds = best_of(lambda: predict(fit, N=N, D=D), args.repeat)
    t_opt, opt = best_of(lambda: optimal(fit, budgets=budgets), args.repeat)
    t_hdi, _ = best_of(lambda: predict(fit, N=N, D=D, ci_kind="hdi"), 1)
    rows.append(("predict (eti: median, mean, ci, pi)", t_pred))
    rows.append(("predict (hdi)", t_hdi))
    rows.append(("optimal (N*, D*, D*/N*, L*, exponents)", t_opt))
    n_t = min(q, 1000)
    t_tgt, _ = best_of(lambda: predict(fit, N=N[:n_t], D=D[:n_t], target_loss=2.2), 1)
    rows.append((f"predict with target_loss, {n_t} queries (Student-t CDF)", t_tgt))
    print("  (wall-clock s, CPU s summed over threads; on a busy machine wall >> CPU)")
    for name, (wall, cpu) in rows:
        print(f"  bayescale {name:58s} {wall:8.3f} s  cpu {cpu:7.3f} s")

    if args.skip_baseline:
        return
    t_naive_pred, (q_naive, mean_naive, pi_naive) = best_of(lambda: naive_predict(fit, N, D), 1)
    t_naive_opt, opt_naive = best_of(lambda: naive_optimal(fit, budgets), 1)
    for name, naive, ours in (("predict", t_naive_pred, t_pred), ("optimal", t_naive_opt, t_opt)):
        print(f"  naive xarray {name:56s} {naive[0]:8.3f} s  cpu {naive[1]:7.3f} s   "
              f"ratio wall {naive[0] / ours[0]:5.1f}x, cpu {naive[1] / ours[1]:5.1f}x")

    ci_naive = q_naive.isel(quantile=[1, 2]).transpose("query", "quantile").to_numpy()
    rel = np.abs(ds["ci"].to_numpy() / ci_naive - 1).max()
    rel_mean = np.abs(ds["mean"].to_numpy() / mean_naive.to_numpy() - 1).max()
    rel_opt = max(
        np.abs(opt[f"{k}_ci"].to_numpy()
               / v.isel(quantile=[1, 2]).transpose("budget", "quantile").to_numpy() - 1).max()
        for k, v in opt_naive.items()
    )
    pi_naive = pi_naive.transpose("query", "quantile").to_numpy()
    rel_pi = np.abs(ds["pi"].to_numpy() / pi_naive - 1).max()
    print(f"  agreement: credible interval {rel:.1e}, mean {rel_mean:.1e}, optimal intervals "
          f"{rel_opt:.1e} (max relative difference); predictive interval {rel_pi:.1e} "
          "(different noise draws)")


if __name__ == "__main__":
    main()
