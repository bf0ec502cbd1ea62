"""Datablations (Muennighoff et al. 2023): which fit of the data-constrained law gives which R_D*.

Fits variants of the ``data-constrained`` card on the 296 runs of
``datablations_muennighoff2023.csv`` and prints, per variant, R_D*, R_N*, alpha, E (median and
90% equal-tailed interval), the Student-t nu and sigma, the sampler diagnostics and the backtest
log score (the largest 20% of runs by compute held out, as ``bayescale backtest``).

Variants (``--variants``):

``free``
    The ``data-constrained`` card, every parameter free (the issue's baseline).
``tied``
    The ``data-constrained-tied`` card: alpha = beta, as in the published law.
``two-stage``
    :func:`bayescale.answers.repetition.two_stage_fit`: ``chinchilla-tied`` on the single-epoch
    runs,
    its posterior moment-matched into the priors of E, A, B, alpha of ``data-constrained-tied``,
    which is then fitted on the multi-epoch runs (the prior of R_D* and R_N* is the card's).
``two-stage-dc``
    As ``two-stage``, but stage 1 fits ``data-constrained-tied`` itself on the single-epoch runs
    (many are larger than their data's compute-optimal size, which plain Chinchilla ignores),
    and R_N* is carried over too (R_D*, unidentified there, keeps the card's prior).
``hoffmann-stage1``
    The paper's structure with data at hand: stage 1 is ``chinchilla-tied`` on Hoffmann et al.'s
    runs (``chinchilla_epoch2024.csv``, MassiveText; the authors digitised C4 IsoFLOP points,
    which are not in ``/work/shared/data``), moment-matched (:func:`stage_one_priors`) into
    ``data-constrained-tied``, then fitted on all Datablations runs. Another corpus and
    tokenizer, so the prior is informative about the wrong losses: shown to measure what the
    paper's choice does, not recommended.
``monotone``
    ``data-constrained-tied`` without the runs the law cannot describe by construction: the law's
    loss never rises with more epochs of the same data, so a run whose loss is above that of a
    shorter run with the same ``N`` and ``U`` (over-fitting) is dropped (:func:`rising_runs`).
    This study's rule, not the paper's (the authors state none); a diagnostic.
``authors-runs``
    ``data-constrained-tied`` on the 182 runs the authors' notebook fits in stage 2 (their
    hand-edited run list, ``utils/parametric_fit.ipynb``, "Custom data loading with outliers
    removed"; no rule is stated for the removals). A diagnostic of data selection, not a
    recommended analysis.
``authors-fixed``
    The authors' stage 2 as closely as a posterior allows: their 182 runs, and E, A, B, alpha = beta
    held (tight priors, 0.1% scale) at their stage-1 fit to Hoffmann et al.'s C4 IsoFLOP points.
    Checks the law and the runs table against the published 15.4, nothing more.
``authors-huber``
    No sampling: the authors' stage-2 objective itself (Huber, delta = 1e-3, on log loss; their
    182 runs; E, A, B, alpha = beta fixed at stage 1), evaluated at the published (R_D*, R_N*),
    minimised from a grid of starts, and profiled over R_D*.

Usage::

    .venv/bin/python scripts/datablations_study.py --variants tied two-stage --out study.json

References
----------
Muennighoff, N. et al. (2023). Scaling Data-Constrained Language Models. arXiv:2305.16264,
Sec. 5 and huggingface/datablations ``utils/parametric_fit.ipynb`` (commit 13701315).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data/datablations_muennighoff2023.csv")
HOFFMANN = Path("/work/shared/data/chinchilla_epoch2024.csv")
VARIANTS = ("free", "tied", "two-stage", "two-stage-dc", "hoffmann-stage1", "monotone",
            "authors-runs", "authors-fixed", "authors-huber")
PUBLISHED_STAGE1 = {"E": float(np.exp(0.6254804)), "A": float(np.exp(6.255414)),
                    "B": float(np.exp(7.3049974)), "alpha": 0.3526596}

# The 182 runs of the authors' stage-2 fit (name, final validation loss), as printed by their
# notebook; the loss picks the original run where seeds share a name.
AUTHORS_RUNS = """
2b832b4b 2.722962 2b840b4b 2.706547 2b855b4b 2.696432 2b855b9b 2.611045 2b855b11b 2.598793
2b855b14b 2.589427 2b855b18b 2.584592 2b855b28b 2.579361 2b855b55b 2.574117 4b236b12b 2.618343
4b248b12b 2.577519 4b260b12b 2.56039 4b272b12b 2.539524 4b284b12b 2.526961 4b284b17b 2.48506
4b284b21b 2.471375 4b284b28b 2.467156 4b284b42b 2.470016 4b284b84b 2.45653 8b7178b13b 2.451606
8b7178b25b 2.376484 8b7178b35b 2.360029 8b7178b44b 2.351177 8b7178b58b 2.348107
8b7178b88b 2.337275 8b7178b178b 2.336741 7m100m100m 8.102005 7m200m100m 7.36236
1b1100m100m 6.611002 14m100m100m 7.278144 20m400m400m 6.096268 25m400m400m 5.79413
25m200m100m 6.252892 25m400m100m 5.799587 25m800m100m 5.284175 14m200m100m 6.664138
14m400m100m 6.273184 14m800m100m 5.816824 14m1b5100m 5.364749 14m2b7100m 4.992776
14m3b9100m 4.741132 14m5b9100m 4.546227 14m14b100m 4.383392 14m20b100m 4.51041
14m91b100m 4.396074 14m174b100m 4.359691 14m600b100m 4.331469 14m900b100m 4.304018
44m200m100m 6.18997 44m400m100m 5.648868 44m1b5100m 4.387672 44m2b7100m 4.113597
44m3b9100m 3.988205 44m5b9100m 3.89434 44m7b5100m 3.854261 44m14b100m 3.807672
44m20b100m 3.92903 44m32b100m 3.89224 44m91b100m 3.8362 44m174b100m 3.812315 83m1b51b5 4.36208
196m1b51b5 3.929866 1b11b51b5 3.680017 1b11b5400m 3.704141 1b11b5100m 3.819042
619m2b72b7 3.415532 619m2b71b5 3.409955 619m2b7400m 3.449187 619m2b7100m 3.829336
619m1b5100m 3.784308 421m3b93b9 3.348126 421m3b91b5 3.35496 421m3b9400m 3.404755
421m3b9100m 3.89862 421m1b5100m 3.797898 421m2b7100m 3.747371 421m5b9100m 4.169935
421m7b5100m 4.376178 280m5b95b9 3.319542 280m5b91b5 3.330755 280m5b9400m 3.386692
280m5b9100m 3.882211 280m1b5100m 3.877228 280m2b7100m 3.72759 280m3b9100m 3.754965
280m7b5100m 3.99341 280m91b400m 3.312059 220m7b57b5 3.310159 220m7b51b5 3.325092
220m7b5400m 3.374362 220m7b5100m 3.848433 220m1b5100m 3.932167 220m2b7100m 3.752793
220m3b9100m 3.721901 220m5b9100m 3.78097 146m14b14b 3.319729 146m14b1b5 3.334061
146m14b400m 3.390927 146m14b100m 3.801428 146m60b400m 3.34025 146m91b400m 3.311519
146m174b400m 3.277013 146m1b5100m 4.033501 146m2b7100m 3.80764 146m3b9100m 3.732758
146m5b9100m 3.718068 146m7b5100m 3.735044 146m20b100m 3.756257 146m32b100m 3.793078
146m60b100m 3.846421 146m91b100m 3.862952 146m174b100m 3.897418 83m20b20b 3.608018
83m20b1b5 3.618937 83m20b400m 3.651057 83m20b100m 3.790125 83m400m100m 5.488318
83m1b5100m 4.20696 83m2b7100m 3.953894 83m3b9100m 3.844048 83m5b9100m 3.774708
83m7b5100m 3.747734 83m14b100m 3.725231 83m32b100m 3.747091 83m60b100m 3.747091
83m91b100m 3.743505 83m174b100m 3.734349 83m300b100m 3.868704 2b84b84b8 3.236253
2b84b81b5 3.244249 2b84b8400m 3.378791 1b58b88b8 3.022525 1b58b84b8 3.022745
1b58b81b5 3.070052 1b58b8400m 3.479142 1b112b12b 2.925644 1b112b4b8 2.927054
1b112b1b5 2.996886 1b112b400m 3.547616 619m22b22b 2.900172 619m22b4b8 2.912009
619m22b1b5 2.973545 619m22b400m 3.441785 619m60b400m 3.688865 619m91b400m 3.756154
421m32b32b 2.912103 421m32b4b8 2.926206 421m32b1b5 2.980892 421m32b400m 3.366502
421m32b100m 5.783605 421m60b400m 3.431953 421m91b400m 3.465185 421m91b1b5 2.917592
421m250b1b5 2.890927 221m60b60b 2.981407 221m60b4b8 2.993185 221m60b1b5 3.032319
221m60b400m 3.258704 221m3b9400m 3.525297 221m32b400m 3.260515 221m300b400m 3.257426
3b926b26b 2.916993 3b926b12b 2.947956 2b836b36b 2.618932 2b836b12b 2.636968 2b246b46b 2.603919
2b246b12b 2.638341 2b246b1b5 3.029574 1b566b66b 2.592968 1b566b12b 2.626113
1b191b91b 2.636805 1b191b12b 2.665932 574m174b174b 2.708514 574m174b12b 2.738098
574m174b1b5 2.895393 574m174b400m 3.752652 220m300b1b5 2.958765 220m600b1b5 2.937761
574m300b1b5 2.881076 574m600b1b5 2.863888 1b1174b1b5 2.974257 1b591b1b5 3.034805
"""


def authors_runs(frame):
    """Rows of ``frame`` (columns ``run_name``, ``val_loss``) in the authors' stage-2 list."""
    tokens = AUTHORS_RUNS.split()
    pairs = {(n, round(float(v), 6)) for n, v in zip(tokens[::2], tokens[1::2], strict=True)}
    key = zip(frame["run_name"], frame["val_loss"].round(6), strict=True)
    keep = np.array([k in pairs for k in key])
    return frame[keep], len(pairs)


def rising_runs(frame) -> np.ndarray:
    """Mask of runs whose loss exceeds that of a shorter run with the same ``N`` and ``U``.

    The data-constrained law is non-increasing in ``D`` at fixed ``N`` and ``U`` (repeated tokens
    are worth less, never negative), so these over-fitting runs lie outside what it can fit.
    Replicates (same ``N, D, U``) are compared with shorter runs only, never with each other.
    """
    rising = np.zeros(len(frame), dtype=bool)
    n, d, u = (frame[c].to_numpy(float) for c in ("params_N", "tokens_D", "unique_tokens_U"))
    loss = frame["val_loss"].to_numpy(float)
    for i in range(len(frame)):
        shorter = (n == n[i]) & (u == u[i]) & (d < d[i])
        rising[i] = bool(shorter.any() and loss[i] > loss[shorter].min())
    return rising


def summarise(post) -> dict:
    """Median and 90% interval of the parameters of interest, and the sampler diagnostics."""
    from bayescale.fits.layout import provenance

    out = {}
    for name in ("R_D_star", "R_N_star", "alpha", "beta", "E", "A", "B", "nu", "sigma"):
        if name in post.posterior:
            x = post.posterior[name].to_numpy().ravel()
            lo, med, hi = np.quantile(x, [0.05, 0.5, 0.95])
            out[name] = [round(float(med), 4), round(float(lo), 4), round(float(hi), 4)]
    diag = provenance(post).get("diagnostics") or {}
    out["diagnostics"] = {k: diag.get(k) for k in ("max_rhat", "min_ess_bulk", "min_ess_tail",
                                                   "divergences", "treedepth_hits", "n_draws")}
    if "R_D_star" in out:
        out["contains_15.4"] = bool(out["R_D_star"][1] <= 15.388 <= out["R_D_star"][2])
    return out


def backtest_lpd(runs, *, fitter, holdout_frac=0.2) -> dict:
    """Held-out log score of ``fitter(train)`` on the largest ``holdout_frac`` runs by compute.

    The split is :func:`bayescale.workflows.backtest.split_by_compute`'s, as ``bayescale backtest``.
    """
    from bayescale.workflows.backtest import score_fit, split_by_compute

    mask, _ = split_by_compute(runs.C, holdout_frac=holdout_frac, cutoff=None, min_train=10)
    from bayescale.fits.layout import provenance

    post = fitter(runs.subset(~mask))
    table = score_fit(post, runs.subset(mask))
    diag = provenance(post).get("diagnostics") or {}
    return {"lpd_mean": round(float(table["lpd"].mean()), 4), "n_test": int(mask.sum()),
            "coverage90": round(float(table["covered90"].mean()), 3),
            "train_max_rhat": diag.get("max_rhat"), "train_divergences": diag.get("divergences")}


def authors_huber() -> dict:
    """The authors' stage-2 objective on their runs: published point, global minimum, profile."""
    import pandas as pd
    from scipy.optimize import minimize

    from bayescale.core.laws import get_law

    law = get_law("data_constrained")
    frame, _ = authors_runs(pd.read_csv(DATA))
    n, d, u, loss = (frame[c].to_numpy(float)
                     for c in ("params_N", "tokens_D", "unique_tokens_U", "val_loss"))
    pub = PUBLISHED_STAGE1
    base = dict(E=pub["E"], log_A=np.log(pub["A"]), log_B=np.log(pub["B"]), alpha=pub["alpha"],
                beta=pub["alpha"])

    def objective(log_rd, log_rn, delta=1e-3):
        r = law.log_loss(n, d, {**base, "R_D_star": np.exp(log_rd), "R_N_star": np.exp(log_rn)},
                         U=u) - np.log(loss)
        a = np.abs(r)
        return float(np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)).sum())

    def best(starts):
        fits = [minimize(lambda x: objective(*x), x0, method="Nelder-Mead",
                         options={"xatol": 1e-8, "fatol": 1e-13, "maxiter": 4000})
                for x0 in starts]
        return min(fits, key=lambda f: f.fun)

    grid = np.log([2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0])
    glob = best([(a, b) for a in grid for b in grid])
    profile = {}
    for rd in (5.0, 10.0, 15.39, 20.0, 30.0, 47.0, 95.0, 200.0, 1000.0):
        f = min((minimize(lambda x, rd=rd: objective(np.log(rd), x[0]), [np.log(x0)],
                          method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-13})
                 for x0 in (1.2, 2.0, 3.0, 6.0, 12.0)), key=lambda f: f.fun)
        profile[rd] = [round(float(np.exp(f.x[0])), 3), round(f.fun, 8)]
    return {"variant": "authors-huber", "n_runs": len(frame),
            "objective_at_published": round(objective(np.log(15.387756), np.log(5.309743)), 9),
            "notebook_min_loss": 0.015825936570763588,
            "global_min": {"R_D_star": round(float(np.exp(glob.x[0])), 3),
                           "R_N_star": round(float(np.exp(glob.x[1])), 3),
                           "objective": round(glob.fun, 9)},
            "profile_R_D_star": profile}


def run_variant(name, *, draws, tune, chains, seed, backtest) -> dict:
    import pandas as pd

    from bayescale.core.cards import load_card
    from bayescale.core.runs import load_runs
    from bayescale.workflows.fit import fit

    frame = pd.read_csv(DATA)
    kw = dict(draws=draws, tune=tune, chains=chains, random_seed=seed)
    info = {"variant": name}
    if name in ("authors-runs", "authors-fixed"):
        frame, n_listed = authors_runs(frame)
        info["n_listed"] = n_listed
    if name == "monotone":
        rising = rising_runs(frame)
        info["n_dropped"] = int(rising.sum())
        listed, _ = authors_runs(frame)
        kept_by_authors = frame.index.isin(listed.index)
        info["n_dropped_also_by_authors"] = int((rising & ~kept_by_authors).sum())
        frame = frame[~rising]
    runs = load_runs(frame, variables=("N", "D", "U"))
    info["n_runs"] = len(runs)
    if name == "free":
        def fitter(r):
            return fit(r, card="data-constrained", **kw)
    elif name in ("tied", "authors-runs", "monotone"):
        def fitter(r):
            return fit(r, card="data-constrained-tied", **kw)
    elif name == "authors-fixed":
        pub = PUBLISHED_STAGE1
        card = load_card("data-constrained-tied")
        ref_a, ref_b = card.prior_scale["A"], card.prior_scale["B"]
        term_a = np.log(pub["A"]) - pub["alpha"] * np.log(ref_a)
        term_b = np.log(pub["B"]) - pub["alpha"] * np.log(ref_b)
        card = card.with_priors({
            "E": f"LogNormal(mu={np.log(pub['E']):.6f}, sigma=0.001)",
            "A": f"LogNormal(mu={term_a:.6f}, sigma=0.001)",
            "B": f"LogNormal(mu={term_b:.6f}, sigma=0.001)",
            "alpha": f"TruncatedNormal(mu={pub['alpha']}, sigma=0.0003, lower=0, upper=1)",
        })

        def fitter(r):
            return fit(r, card=card, **kw)
    elif name == "hoffmann-stage1":
        from bayescale.answers.repetition import stage_one_priors

        stage1 = fit(load_runs(HOFFMANN), card="chinchilla-tied", **kw)
        info["stage1"] = summarise(stage1)
        info["stage1"].pop("contains_15.4", None)
        card = stage_one_priors(stage1, card="data-constrained-tied")
        info["stage2_priors"] = {k: str(card.priors[k]) for k in ("E", "A", "B", "alpha")}
        info["prior_scale"] = dict(card.prior_scale)

        def fitter(r):
            return fit(r, card=card, **kw)
    elif name in ("two-stage", "two-stage-dc"):
        from bayescale.answers.repetition import two_stage_fit

        if name == "two-stage-dc":
            kw.update(stage1_card="data-constrained-tied",
                      carry=("E", "A", "B", "alpha", "beta", "R_N_star"))

        def fitter(r):
            _, post = two_stage_fit(r, **kw)
            return post
    else:
        raise SystemExit(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.startswith("two-stage"):
            stage1, post = two_stage_fit(runs, **kw)
            info["stage1"] = summarise(stage1)
            info["stage1"].pop("contains_15.4", None)
            info["n_stage1"] = int(stage1["constant_data"]["N"].size)
            info["n_stage2"] = int(post["constant_data"]["N"].size)
        else:
            post = fitter(runs)
        info.update(summarise(post))
        info["seconds_fit"] = round(time.perf_counter() - t0, 1)
        if backtest:
            info["backtest"] = backtest_lpd(runs, fitter=fitter)
    info["seconds_total"] = round(time.perf_counter() - t0, 1)
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-backtest", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="Append JSON lines here.")
    args = parser.parse_args(argv)
    for name in args.variants:
        if name == "authors-huber":
            res = authors_huber()
        else:
            res = run_variant(name, draws=args.draws, tune=args.tune, chains=args.chains,
                              seed=args.seed, backtest=not args.no_backtest)
        line = json.dumps(res)
        print(line, flush=True)
        if args.out is not None:
            with open(args.out, "a") as fh:
                fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
