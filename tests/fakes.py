"""Test helpers: fit-shaped DataTrees with chosen draws (no MCMC), and a seeded fit in a child
process (for the compile cache's cold/warm tests)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import xarray as xr

from bayescale.core.cards import load_card


def make_fit(params, *, card="chinchilla", sigma=0.01, nu=5.0, n_draws=None, seed=0,
             runs_N=(1e8, 1e9, 1e10), runs_D=(1e9, 1e10, 1e11)):
    """A fit-shaped DataTree with given posterior draws (scalars become point masses).

    ``n_draws`` defaults to the length of the array-valued parameters (400 if all are scalars).
    """
    if n_draws is None:
        n_draws = max([np.size(v) for v in params.values() if np.ndim(v)] or [400])
    c = load_card(card)
    law = c.law_spec
    shape = (1, n_draws)
    post = {k: np.broadcast_to(np.asarray(v, float), shape).copy() for k, v in params.items()}
    for amp in law.amplitudes:
        if amp.name in post:
            post[f"log_{amp.name}"] = np.log(post[amp.name])
    post["sigma"] = np.broadcast_to(np.asarray(sigma, float), shape).copy()
    if c.family == "StudentT":
        post["nu"] = np.broadcast_to(np.asarray(nu, float), shape).copy()
    coords = {"chain": [0], "draw": np.arange(n_draws)}
    posterior = xr.Dataset({k: (("chain", "draw"), v) for k, v in post.items()}, coords=coords)
    n, d = np.asarray(runs_N, float), np.asarray(runs_D, float)
    rng = np.random.default_rng(seed)
    const = xr.Dataset({"N": ("run", n), "D": ("run", d), "C": ("run", 6 * n * d)})
    obs = xr.Dataset({"log_loss": ("run", np.log(2.0 + rng.uniform(size=n.size)))})
    tree = xr.DataTree.from_dict(
        {"posterior": posterior, "constant_data": const, "observed_data": obs}
    )
    tree.attrs["bayescale_card"] = c.to_json()
    return tree


def scattered(n_draws=400, seed=0):
    """Posterior draws scattered around Hoffmann et al. (2022)'s fit."""
    rng = np.random.default_rng(seed)
    return {
        "E": 1.69 + 0.02 * rng.standard_normal(n_draws),
        "A": 406.4 * np.exp(0.1 * rng.standard_normal(n_draws)),
        "B": 410.7 * np.exp(0.1 * rng.standard_normal(n_draws)),
        "alpha": 0.34 + 0.01 * rng.standard_normal(n_draws),
        "beta": 0.28 + 0.01 * rng.standard_normal(n_draws),
    }


_SEEDED_FIT = textwrap.dedent(
    """
    import hashlib, json
    import numpy as np
    from bayescale import datasets
    from bayescale.workflows.fit import fit
    runs = datasets.simulate(law="kaplan", random_seed=3)
    post = fit(runs, card="{card}", draws=300, tune=300, chains=2, random_seed=7,
               log_likelihood=False)
    p = post["posterior"]
    blob = b"".join(np.ascontiguousarray(p[v].values).tobytes() for v in sorted(p.data_vars))
    print(json.dumps({{"sha": hashlib.sha256(blob).hexdigest(),
                      "sampler": json.loads(post.attrs["bayescale_sampler"])}}))
    """
)


def seeded_fit_in_child(card, env) -> dict:
    """Fit simulated Kaplan runs with a fixed seed in a fresh process.

    Returns ``{"sha": sha256 of the posterior draws, "sampler": the fit's sampler record}``, and
    fails the test when the child fails or prints a compile-cache notice (nothing should have been
    corrupted).
    """
    proc = subprocess.run([sys.executable, "-c", _SEEDED_FIT.format(card=card)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "compile cache" not in proc.stderr, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
