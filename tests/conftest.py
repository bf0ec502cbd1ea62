"""Shared fixtures: real data from ../shared/data, a simulated sweep, and one small fit per session.

Without ../shared/data (a fresh clone), tests of datasets that are neither bundled nor found
offline skip with a one-line reason; with it, as in CI, every test runs.

Thread settings: one BLAS thread per process (two NUTS chains already use the two cores here;
oversubscription cost 7x on this machine).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Compiled models are cached in the user's cache folder (bayescale.core.compiled), so a second run
# of
# the suite loads them; a first run compiles each card in this process (no helper process: the
# bit-for-bit cold/warm equality it buys is tested in test_compiled.py alone).
os.environ.setdefault("BAYESCALE_COMPILE_HELPER", "0")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(
    os.environ.get("BAYESCALE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
HAVE_SHARED_DATA = (SHARED_DATA / "chinchilla_epoch2024.csv").is_file()
if HAVE_SHARED_DATA:
    os.environ["BAYESCALE_DATA_DIR"] = str(SHARED_DATA)


def require_dataset(name: str) -> None:
    """Skip the calling test, with a one-line reason, when a dataset cannot be read offline.

    Bundled tables (datablations, overtraining) are always there; the others need ../shared/data
    (or ``BAYESCALE_TEST_DATA``), ``BAYESCALE_DATA_DIR`` or an earlier download in the cache.
    Tests never download.
    """
    from bayescale import datasets

    if not datasets.available(name):
        info = datasets.DATASETS[name]
        pytest.skip(
            f"dataset {name!r} ({info.filename}) is not bundled and not found offline: no "
            f"{SHARED_DATA} and BAYESCALE_DATA_DIR does not hold it"
        )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real public datasets (../shared/data beside the checkout); skip without it."""
    if not HAVE_SHARED_DATA:
        pytest.skip(f"real datasets not found in {SHARED_DATA} (set BAYESCALE_TEST_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sim_runs():
    """The built-in simulated IsoFLOP sweep (Chinchilla law, seed 0)."""
    from bayescale import datasets

    return datasets.simulate(random_seed=0)


@pytest.fixture(scope="session")
def sim_fit(sim_runs):
    """One small fit of the default card on the simulated sweep, shared by plumbing tests."""
    from bayescale.workflows.fit import fit

    return fit(sim_runs, card="chinchilla", draws=1000, tune=1000, chains=4, random_seed=1)


@pytest.fixture(scope="session")
def chinchilla_runs():
    """Chinchilla runs of Besiroglu et al. (2024), the 5 highest-loss runs dropped as they did."""
    from bayescale import datasets

    require_dataset("chinchilla")
    return datasets.load("chinchilla", drop_top_loss=5)


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_runs):
    """Default fit on the real Chinchilla runs (4 chains x 1000 draws, seed 1)."""
    from bayescale.workflows.fit import fit

    return fit(chinchilla_runs, card="chinchilla", draws=1000, tune=1000, chains=4, random_seed=1)
