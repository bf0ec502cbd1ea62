"""Several metrics in one command: wall time of the 8-loss backtest, serial against parallel.

Run: ``python benchmarks/metrics_wall.py [--out FILE.json] [--workers 2] [--skip-ray] [--quick]``

The command measured (issue 20, "several metrics") is the one a user types to fit and backtest
all 8 validation losses of the 34 C4-trained over-training runs (Gadre et al. 2024) with the
default law ensemble and default draws (4 chains x 1000 draws, 1000 tuning steps)::

    bayescale backtest bayescale/data/overtraining_gadre2024_downstream.csv --metric 'loss_*' \\
        --map group=dataset --group c4_original -o OUT --json --executor EXECUTOR

Each metric holds out its top 20% of runs by compute and is forecast by its own nested law
ensemble (the default for several metrics without ``--law``): 8 ensembles of 3 cards, each with
its rolling splits. Every row runs in a fresh interpreter (imports, Ray start-up and the pool's
workers all counted), importing ``bayescale`` from this checkout (``PYTHONPATH``):

* ``serial``: ``--executor serial``;
* ``process``: ``--executor process``, the default, which starts ``cores // chains`` workers:
  1 on 2 cores with 4 chains, so it fits serially in the command's process;
* ``ray``: ``--executor ray``, a local Ray instance started by the command (skipped with a
  reason when Ray does not import);
* ``process (N workers)``: the pool forced to ``--workers`` workers (``default_workers``
  replaced in the child before the command runs), to show what a pool does on these cores.

An untimed run of one metric with 50 draws first loads (or compiles) every model into the
compile cache.
Printed per row: wall seconds, the ratio to serial, the CPU seconds of the command's process
and its reaped children (pool and Ray workers outlive the command and are not counted), the
1-minute load average before and after (the machine may be shared), and whether the JSON
summary (per metric: lpd, coverage, error) is identical to the serial one (else the largest
difference). Then the serial run's per-metric scores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "bayescale" / "data" / "overtraining_gadre2024_downstream.csv"
COMMAND = ["backtest", str(TABLE), "--metric", "loss_*", "--map", "group=dataset",
           "--group", "c4_original", "--json"]
CHILD = ("import sys\n"
         "workers = int(sys.argv[1])\n"
         "if workers:\n"
         "    from bayescale.engines import executor\n"
         "    executor.default_workers = lambda threads_per_task=1: workers\n"
         "sys.argv = ['bayescale', *sys.argv[2:]]\n"
         "from bayescale.cli import main\n"
         "main()\n")


def run_command(args, *, workers=0) -> dict:
    """Run the CLI with ``args`` in a fresh interpreter; wall, CPU, loads and its JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(workers), *args], env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "load_before": [round(v, 2) for v in load0],
            "load_after": [round(v, 2) for v in load1],
            "doc": json.loads(proc.stdout)}


def largest_difference(a: list, b: list) -> float:
    """Largest absolute difference between two summaries' numbers (inf if shapes differ)."""
    if len(a) != len(b):
        return float("inf")
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        if ra.keys() != rb.keys():
            return float("inf")
        for k, v in ra.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                worst = max(worst, abs(float(v) - float(rb[k])))
            elif v != rb[k]:
                return float("inf")
    return worst


def executors(*, workers: int, skip_ray: bool) -> list[tuple[str, str, int]]:
    """``(row name, --executor, forced workers)`` of the rows to run."""
    rows = [("serial", "serial", 0), ("process", "process", 0)]
    if not skip_ray:
        check = subprocess.run([sys.executable, "-c", "import ray"], capture_output=True,
                               check=False)
        if check.returncode == 0:
            rows.append(("ray", "ray", 0))
        else:
            print("ray: skipped (does not import; pip install 'bayescale[ray]')",
                  file=sys.stderr)
    if workers > 1:
        rows.append((f"process ({workers} workers)", "process", workers))
    return rows


def print_scores(doc: dict) -> None:
    """The per-metric held-out scores of one run's JSON summary."""
    covs = [k for k in doc["summary"][0] if k.startswith("coverage")]
    print(f"\n{'metric':32s} {'method':9s} {'n':>3s} {'lpd':>6s} "
          + " ".join(f"{c.removeprefix('coverage'):>5s}" for c in covs) + "   (coverage)")
    for r in doc["summary"]:
        print(f"{r['family']:32s} {r['method']:9s} {r['n_test']:3d} {r['lpd_mean']:6.2f} "
              + " ".join(f"{r[c]:5.2f}" for c in covs))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2,
                        help="Workers of the forced-pool row (0 or 1: no such row).")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--quick", action="store_true", help="4 x 200 draws (smoke test).")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    sizes = ["--draws", "200", "--tune", "200"] if args.quick else []
    print(f"{os.cpu_count()} cores; bayescale from {ROOT}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = run_command([*COMMAND[:2], "--metric", "loss_c4_val", *COMMAND[4:], "-o",
                            f"{tmp}/warm", "--draws", "50", "--tune", "50"])
        print(f"warm-up (one metric, 50 draws): {warm['wall_s']} s", file=sys.stderr)
        for name, executor, workers in executors(workers=args.workers, skip_ray=args.skip_ray):
            out = f"{tmp}/{executor}{workers}"
            res = run_command([*COMMAND, "-o", out, "--executor", executor, *sizes],
                              workers=workers)
            rows.append({"executor": name, **res})
            same = res["doc"]["summary"] == rows[0]["doc"]["summary"]
            print(f"{name:22s} wall {res['wall_s']:7.1f} s  cpu {res['cpu_s']:7.1f} s  load "
                  f"{res['load_before'][0]:.2f} -> {res['load_after'][0]:.2f}  same JSON as "
                  f"serial: {same}", file=sys.stderr, flush=True)
    serial = rows[0]
    print(f"\n{'executor':22s} {'wall s':>7s} {'/serial':>7s} {'cpu s':>7s} "
          f"{'load before':>12s} {'load after':>11s}  JSON vs serial")
    for r in rows:
        r["ratio_to_serial"] = round(r["wall_s"] / serial["wall_s"], 2)
        diff = largest_difference(serial["doc"]["summary"], r["doc"]["summary"])
        r["identical"] = r["doc"]["summary"] == serial["doc"]["summary"]
        r["max_abs_diff"] = diff
        same = "identical" if r["identical"] else f"differs (max |diff| {diff:.3g})"
        print(f"{r['executor']:22s} {r['wall_s']:7.1f} {r['ratio_to_serial']:7.2f} "
              f"{r['cpu_s']:7.1f} {r['load_before'][0]:12.2f} {r['load_after'][0]:11.2f}  "
              f"{same}")
    print_scores(serial["doc"])
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"cores": os.cpu_count(), "command": COMMAND, "rows": rows}, fh,
                      indent=2)
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
