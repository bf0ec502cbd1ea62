"""Many fits at once: serial against a process pool (and Ray) on the Chinchilla runs.

Run: ``python benchmarks/parallel.py [--workers 2] [--skip-ray] [--quick] [--out FILE.json]``

On the 240 Epoch runs (``datasets.load("chinchilla", drop_top_loss=5)``; ``BAYESCALE_DATA_DIR``
must hold ``chinchilla_epoch2024.csv``), in one process and one after the other, each with
every executor in turn:

* ``fit``: the default law ensemble, ``bayescale.fit(runs, random_seed=0, executor=...)``
  (3 members on all runs, 3 cards x 3 rolling splits: 12 fits, 4 chains x 2000 draws);
* ``backtest``: the default nested backtest, ``bayescale.backtest(runs, executor=...)`` (the
  ensemble on the runs below the top 20% by compute: 12 fits, 4 chains x 1000 draws).

Executors: ``serial``; ``process`` with ``--workers`` worker processes (forced: by default
``process`` runs ``cores // chains`` workers, which is 1 on 2 cores, and then fits serially in
this process), run twice, the second time on the workers the first left warm; ``ray`` on a
local Ray instance started here (skipped with a reason when Ray is not installed). The compile
cache is warmed by an untimed serial run of each workflow first, so every row loads compiled
models from disk. It prints wall time, the load average before the row (the machine may be
shared; pool and Ray workers are not this process's finished children, so no CPU time), the
ratio to serial, and whether every posterior (fit) and score table (backtest) is bit-identical
to the serial one. ``--quick``: 4 x 500 draws, for a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np


def _members(tree) -> dict:
    return {name: {v: child["posterior"][v].to_numpy() for v in child["posterior"].data_vars}
            for name, child in tree.children.items() if name.startswith("member_")}


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    import bayescale as bs
    from bayescale.engines import executor as ex

    runs = bs.load_runs(bs.datasets.load("chinchilla", drop_top_loss=5))
    sizes = {"draws": 500, "tune": 500} if args.quick else {}
    workflows = {
        "fit": lambda executor: bs.fit(runs, random_seed=0, executor=executor, **sizes),
        "backtest": lambda executor: bs.backtest(runs, random_seed=0, executor=executor,
                                                 **sizes),
    }
    readings = {"fit": _members, "backtest": lambda res: res.table.to_dict("list")}
    executors = ["serial", "process", "process (warm workers)"]
    if not args.skip_ray:
        try:
            import ray
        except ImportError:
            print("ray: skipped (not installed; pip install 'bayescale[ray]')", file=sys.stderr)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
            executors.append("ray")
    # force the pool: by default "process" runs cores // chains workers (1 here: serial)
    ex.default_workers = lambda threads_per_task=1: args.workers
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; process: {args.workers} "
          f"workers; {len(runs)} runs", file=sys.stderr)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sampler warnings are not what is measured here
        for name, run in workflows.items():
            run("serial")  # warm the compile cache and this process's imports
            reference = None
            for executor in executors:
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                out = run(executor.split()[0])
                wall = time.perf_counter() - t0
                value = readings[name](out)
                reference = value if reference is None else reference
                rows.append({"workflow": name, "executor": executor, "wall_s": round(wall, 1),
                             "load": round(load, 2), "identical": _same(reference, value)})
                print(f"{name:9s} {executor:24s} wall {wall:6.1f} s  load {load:4.2f}  "
                      f"identical to serial: {rows[-1]['identical']}", file=sys.stderr)
    for row in rows:
        serial = next(r for r in rows if r["workflow"] == row["workflow"]
                      and r["executor"] == "serial")
        row["ratio_to_serial"] = round(row["wall_s"] / serial["wall_s"], 2)
    print(f"\n{'workflow':9s} {'executor':24s} {'wall s':>7s} {'load':>5s} {'/serial':>8s} "
          "identical")
    for r in rows:
        print(f"{r['workflow']:9s} {r['executor']:24s} {r['wall_s']:7.1f} {r['load']:5.2f} "
              f"{r['ratio_to_serial']:8.2f} {r['identical']}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"cores": os.cpu_count(), "workers": args.workers, "rows": rows}, fh,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
