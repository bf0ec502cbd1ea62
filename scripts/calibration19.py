"""The default nested backtest on every public run table, scored at every level.

For each table (Epoch's Chinchilla runs with the 5 highest losses dropped, Datablations, each
over-training corpus, Marin comma and the untuned OWT2 sweep): ``bs.backtest(runs,
holdout_frac=0.2, random_seed=0)`` with library defaults (law ensemble, nested), recording
coverage at 50/80/90/95%, log score, CRPS, the share below the predictive median, the weights,
``tau``, the lack-of-fit test and every SamplerWarning. These are the README's numbers under
"Calibration at every level, and the untuned sweep".

    BAYESCALE_DATA_DIR=../shared/data python scripts/calibration19.py out.json [TABLE ...]
"""
import json
import os
import sys
import time
import warnings

import bayescale as bs
from bayescale.errors import SamplerWarning

DATA = os.environ.get("BAYESCALE_DATA_DIR", "../shared/data")

def tables():
    yield "Epoch (Chinchilla)", lambda: bs.datasets.load("chinchilla")
    yield "Datablations", lambda: bs.datasets.load("datablations")
    for g, name in (("c4_original", "OT c4"), ("rpj", "OT rpj"), ("rw_original", "OT rw")):
        yield name, (lambda g=g: bs.datasets.load("overtraining", group=g))
    yield "Marin comma", lambda: bs.datasets.load("marin")
    yield "OWT2 untuned", lambda: bs.load_runs(f"{DATA}/porian2024_owt2_untuned.csv")

only = sys.argv[2:] if len(sys.argv) > 2 else None
out = {}
for name, load in tables():
    if only and name not in only:
        continue
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplerWarning)
        res = bs.backtest(load(), holdout_frac=0.2, random_seed=0)
    d = res.to_dict()
    out[name] = {
        "n_test": res.n_test, "coverage": {f"{p:g}": c for p, c in res.coverage.items()},
        "lpd": res.lpd_mean, "crps": res.crps_mean, "below_median": res.below_median,
        "median_abs_error": res.median_abs_error, "weights": res.weights, "tau": res.tau,
        "lack_of_fit": d.get("lack_of_fit"), "evidence": d.get("lack_of_fit_evidence"),
        "warnings": [str(w.message)[:300] for w in caught
                     if issubclass(w.category, SamplerWarning)],
        "seconds": round(time.time() - t0, 1),
    }
    print(name, json.dumps(out[name])[:400], flush=True)
    json.dump(out, open(sys.argv[1], "w"), indent=1)
