"""Run simulation-based calibration for model cards and write rank plots, ranks and a summary.

Usage::

    python scripts/sbc.py --cards chinchilla kaplan --n-sims 200 --out sbc-out
    python scripts/sbc.py --cards data-constrained --n-sims 100 --out sbc-out

Each card is checked on its default design (:func:`bayescale.workflows.sbc.default_design`): an
IsoFLOP
ladder for laws of ``N`` and ``D``, a Datablations-like grid of model sizes, unique-token budgets
and 1-40 epochs (:func:`bayescale.workflows.sbc.repeat_design`) for laws that read unique tokens
``U``.

Writes to ``--out``: ``sbc_<card>.png`` and ``.svg`` (rank histograms with the 99% band of a
uniform histogram), ``sbc_<card>_ranks.csv``, ``sbc_<card>_fits.csv`` (per-simulation sampler
diagnostics), ``sbc_<card>_truth.csv``, ``sbc_<card>_design.csv``; a JSON summary of all
cards goes to stdout, progress to stderr. Exit code 0 when every card passes the chi-square
test (Bonferroni over parameters at ``--alpha``), 3 when one fails, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cards", nargs="+", default=["chinchilla", "kaplan"], help="model cards")
    p.add_argument("--n-sims", type=int, default=200, help="accepted simulations per card")
    p.add_argument("--draws", type=int, default=400)
    p.add_argument("--tune", type=int, default=400)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--thin", type=int, default=4)
    p.add_argument("--max-loss", type=float, default=20.0, help="reject ladders above (nats)")
    p.add_argument("--bins", type=int, default=None, help="histogram bins (default n_sims // 5)")
    p.add_argument("--alpha", type=float, default=0.01, help="family-wise test level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    from bayescale.core.io import atomic_write, atomic_write_text
    from bayescale.errors import BayescaleError
    from bayescale.workflows.sbc import default_design, plot_ranks, sbc

    args.out.mkdir(parents=True, exist_ok=True)
    summary, failed = {}, False
    for card in args.cards:

        def log(i, n, seconds, card=card):
            print(f"[{card}] sim {i}/{n} fitted in {seconds:.1f} s", file=sys.stderr, flush=True)

        try:
            design = default_design(card)
            res = sbc(
                card,
                design=design,
                n_sims=args.n_sims,
                draws=args.draws,
                tune=args.tune,
                chains=args.chains,
                thin=args.thin,
                random_seed=args.seed,
                max_loss=args.max_loss,
                progress=log,
            )
        except BayescaleError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        tests = res.uniformity(bins=args.bins)
        level = args.alpha / len(tests)
        passed = bool((tests["chi2_p"] > level).all())
        failed |= not passed
        fig = plot_ranks(res, bins=args.bins)
        for ext in ("png", "svg"):
            atomic_write(
                args.out / f"sbc_{res.card}.{ext}",
                lambda p, ext=ext, fig=fig: fig.savefig(p, format=ext, dpi=120),
            )
        frames = (("ranks", res.ranks), ("fits", res.fits), ("truth", res.truth))
        for name, frame in (*frames, ("design", design)):
            atomic_write_text(args.out / f"sbc_{res.card}_{name}.csv", frame.to_csv(index=False))
        summary[res.card] = {**res.to_dict(), "bonferroni_level": level, "passed": passed}
    print(json.dumps(summary, indent=2, default=str))
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
