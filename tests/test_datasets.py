"""Tests of bayescale.core.datasets: lookup order, hashes, downloads (mocked), loading,
simulation."""

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayescale
from bayescale.core.datasets import (
    DATASETS,
    available,
    list_datasets,
    load,
    path,
    read_table,
    simulate,
    task_info,
)
from bayescale.core.laws import chinchilla, chinchilla_optimal, kaplan
from bayescale.core.runs import load_runs
from bayescale.errors import InputError

DATA = Path(
    os.environ.get("BAYESCALE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
PACKAGE_DATA = Path(bayescale.__file__).resolve().parent / "data"
BUNDLED = ("datablations", "overtraining", "overtraining_downstream", "overtraining_eval_tasks")


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """No test downloads: urlopen fails loudly, and the cache is a fresh folder."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BAYESCALE_DATA_DIR", raising=False)


@pytest.fixture
def data_dir(monkeypatch):
    if not (DATA / "chinchilla_epoch2024.csv").is_file():
        pytest.skip(f"real datasets not found in {DATA}")
    monkeypatch.setenv("BAYESCALE_DATA_DIR", str(DATA))
    return DATA


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def serve(monkeypatch, payload, calls):
    def urlopen(url, timeout):
        calls.append((url, timeout))
        return FakeResponse(payload)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def test_registry_and_list():
    table = list_datasets()
    assert table["name"].tolist() == [
        "chinchilla", "datablations", "overtraining", "marin", "overtraining_downstream",
        "overtraining_eval_tasks",
    ]
    assert table["downloadable"].tolist() == [True, False, False, False, False, False]
    assert table["bundled"].tolist() == [False, True, True, False, True, True]
    assert table["licence"].tolist() == [
        "none stated", "Apache-2.0", "MIT", "none stated", "MIT", "MIT",
    ]
    assert set(table.columns) >= {"filename", "citation", "url", "sha256", "description", "source"}
    assert DATASETS["chinchilla"].url.endswith(
        "92258837425e1b5f2851d624287f0120583a3d0e/data/svg_extracted_data.csv"
    )
    assert all(len(info.sha256) == 64 for info in DATASETS.values())


def test_registered_hashes_match_the_shared_files(data_dir):
    for info in DATASETS.values():
        digest = hashlib.sha256((data_dir / info.filename).read_bytes()).hexdigest()
        assert digest == info.sha256, info.name


def test_unknown_name_lists_names():
    with pytest.raises(InputError, match=r"unknown dataset 'gpt'; valid: chinchilla, datablations"):
        path("gpt")
    with pytest.raises(InputError, match="unknown dataset"):
        load("gpt")


# --------------------------------------------------------------------------------------------
# Lookup order and hashes
# --------------------------------------------------------------------------------------------


def test_data_dir_first(data_dir):
    assert path("chinchilla") == data_dir / "chinchilla_epoch2024.csv"
    assert path("overtraining") == data_dir / "overtraining_gadre2024.csv"
    assert path("marin") == data_dir / "marin_comma_isoflops.csv"


# --------------------------------------------------------------------------------------------
# Bundled tables (offline, no data folder)
# --------------------------------------------------------------------------------------------


def test_bundled_tables_load_offline_with_registered_hashes():
    for name in BUNDLED:
        info = DATASETS[name]
        assert path(name) == PACKAGE_DATA / info.filename
        assert hashlib.sha256(path(name).read_bytes()).hexdigest() == info.sha256
        assert available(name)
    assert len(load("datablations")) == 296
    over = load("overtraining")
    assert len(over) == 104 and over.provenance["dataset"] == "overtraining"
    assert sorted(over.frame["group"].unique()) == ["c4_original", "rpj", "rw_original"]
    # only tables under a licence that allows it ship in the package
    shipped = sorted(p.name for p in PACKAGE_DATA.glob("*.csv"))
    assert shipped == sorted(DATASETS[n].filename for n in BUNDLED)
    assert not available("chinchilla") and not available("marin")


def test_notice_attributes_every_bundled_table():
    notice = (PACKAGE_DATA / "NOTICE").read_text(encoding="utf-8")
    for name in BUNDLED:
        info = DATASETS[name]
        assert info.filename in notice and info.sha256 in notice and info.licence in notice
        commit = info.source.split("@ ")[1].split(",")[0]
        assert len(commit) == 40 and commit in notice
    assert "Permission is hereby granted" in notice  # MIT: its notice travels with the data
    assert "Apache License" in (PACKAGE_DATA / "LICENSE-Apache-2.0").read_text(encoding="utf-8")


def test_bundled_tables_ship_in_the_wheel(tmp_path):
    """Build the wheel and load both bundled tables from it, away from the checkout."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(root)],
        check=True, capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("bayescale-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for extra in ("NOTICE", "LICENSE-Apache-2.0", *(DATASETS[n].filename for n in BUNDLED)):
        assert f"bayescale/data/{extra}" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import bayescale.core.datasets as d; print(d.path('datablations')); "
        "print(len(d.load('datablations')), len(d.load('overtraining')), "
        "len(d.read_table('overtraining_eval_tasks')))"
    )
    env = {"PYTHONPATH": str(site), "BAYESCALE_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env=env).stdout
    assert str(site / "bayescale" / "data") in out and out.strip().endswith("296 104 51")


def test_data_dir_hash_mismatch_names_both_hashes(monkeypatch, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "chinchilla_epoch2024.csv").write_text("N,D,loss\n1,2,3\n")
    monkeypatch.setenv("BAYESCALE_DATA_DIR", str(folder))
    got = hashlib.sha256(b"N,D,loss\n1,2,3\n").hexdigest()
    with pytest.raises(InputError) as e:
        path("chinchilla")
    assert DATASETS["chinchilla"].sha256 in str(e.value) and got in str(e.value)


def test_cache_used_when_data_dir_lacks_file(monkeypatch, tmp_path, data_dir):
    monkeypatch.setenv("BAYESCALE_DATA_DIR", str(tmp_path / "empty"))
    cache = tmp_path / "mycache"
    cache.mkdir()
    target = cache / "chinchilla_epoch2024.csv"
    target.write_bytes((data_dir / target.name).read_bytes())
    assert path("chinchilla", cache_dir=cache) == target
    monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(cache))
    assert path("chinchilla") == target
    assert available("chinchilla")


def test_corrupt_cache_entry_is_fetched_again(monkeypatch, tmp_path):
    good = b"Model Size,Training FLOP,loss\n1e8,1e18,3.0\n"
    small = dataclasses.replace(DATASETS["chinchilla"], sha256=hashlib.sha256(good).hexdigest())
    monkeypatch.setitem(DATASETS, "chinchilla", small)
    cache = tmp_path / "dl"
    cache.mkdir()
    stale = cache / "chinchilla_epoch2024.csv"
    stale.write_bytes(b"<html>truncated")
    bad_hash = hashlib.sha256(b"<html>truncated").hexdigest()
    with pytest.raises(InputError, match=f"has sha256 {bad_hash}.*download=False"):
        path("chinchilla", cache_dir=cache, download=False)
    assert not available("chinchilla", cache_dir=cache)
    calls = []
    serve(monkeypatch, good, calls)
    assert path("chinchilla", cache_dir=cache) == stale
    assert stale.read_bytes() == good and len(calls) == 1
    assert path("chinchilla", cache_dir=cache) == stale and len(calls) == 1


def test_derived_table_without_url_asks_for_data_dir():
    with pytest.raises(InputError) as e:
        path("marin")
    msg = str(e.value)
    assert "no download URL" in msg and "marin_comma_isoflops.csv" in msg
    assert "BAYESCALE_DATA_DIR is not set" in msg
    assert "set BAYESCALE_DATA_DIR to a folder holding" in msg
    with pytest.raises(InputError, match="no download URL"):
        load("marin")


def test_marin_from_data_dir(data_dir):
    runs = load("marin")
    raw = pd.read_csv(data_dir / "marin_comma_isoflops.csv")
    assert len(runs) == 85 == len(raw)
    np.testing.assert_array_equal(runs.N, raw["params"].to_numpy(dtype=float))
    np.testing.assert_allclose(runs.C, 6 * raw["params"] * raw["tokens"], rtol=1e-12)
    assert runs.provenance["dataset"] == "marin"


def test_download_false():
    with pytest.raises(InputError, match=r"download=False; set BAYESCALE_DATA_DIR"):
        path("chinchilla", download=False)


# --------------------------------------------------------------------------------------------
# Downloads (mocked)
# --------------------------------------------------------------------------------------------


def test_download_writes_checked_file_atomically_then_uses_cache(monkeypatch, tmp_path, data_dir):
    monkeypatch.delenv("BAYESCALE_DATA_DIR")
    calls = []
    serve(monkeypatch, (data_dir / "chinchilla_epoch2024.csv").read_bytes(), calls)
    cache = tmp_path / "dl"
    got = path("chinchilla", cache_dir=cache)
    assert got == cache / "chinchilla_epoch2024.csv"
    assert calls == [(DATASETS["chinchilla"].url, 30.0)]
    assert hashlib.sha256(got.read_bytes()).hexdigest() == DATASETS["chinchilla"].sha256
    assert sorted(p.name for p in cache.iterdir()) == ["chinchilla_epoch2024.csv"]
    assert path("chinchilla", cache_dir=cache) == got
    assert len(calls) == 1
    assert len(load("chinchilla", cache_dir=cache)) == 240


def test_download_bad_hash_writes_nothing(monkeypatch, tmp_path):
    calls = []
    serve(monkeypatch, b"<html>rate limited</html>", calls)
    cache = tmp_path / "dl"
    with pytest.raises(InputError) as e:
        path("chinchilla", cache_dir=cache)
    assert DATASETS["chinchilla"].sha256 in str(e.value)
    assert hashlib.sha256(b"<html>rate limited</html>").hexdigest() in str(e.value)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_network_failure(monkeypatch, tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(InputError) as e:
        path("chinchilla", cache_dir=tmp_path / "dl")
    msg = str(e.value)
    assert "could not download" in msg and "Name or service not known" in msg
    assert "offline" in msg and "BAYESCALE_DATA_DIR" in msg
    assert not (tmp_path / "dl" / "chinchilla_epoch2024.csv").exists()


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------


def test_load_applies_dataset_defaults(data_dir):
    runs = load("chinchilla")
    assert len(runs) == 240
    assert runs.provenance["dataset"] == "chinchilla"
    assert runs.provenance["explicit"] == ["N", "C", "loss"]
    assert len(load("chinchilla", drop_top_loss=0)) == 245
    assert len(load("datablations")) == 296
    assert len(load("overtraining")) == 104


def test_load_user_kwargs_override():
    runs = load("overtraining", group="c4_original", mapping={"loss": "loss_openlm"})
    raw = pd.read_csv(PACKAGE_DATA / "overtraining_gadre2024.csv")
    raw = raw[raw["dataset_name"] == "c4_original"]
    np.testing.assert_array_equal(runs.loss, raw["loss_openlm"].to_numpy())
    assert runs.provenance["mapping"]["group"] == "dataset_name"
    with pytest.raises(InputError, match="only 296 runs"):
        load("datablations", n_params_required=297)


# --------------------------------------------------------------------------------------------
# simulate
# --------------------------------------------------------------------------------------------


def test_simulate_design_and_attrs():
    df = simulate()
    assert df.shape == (45, 5) and list(df.columns) == ["N", "D", "C", "loss", "run"]
    np.testing.assert_allclose(6 * df["N"] * df["D"], df["C"], rtol=1e-12)
    assert df["run"].is_unique
    assert df.attrs["law"] == "chinchilla"
    assert df.attrs["true_params"] == {
        "E": 1.8,
        "A": 480.0,
        "B": 2000.0,
        "alpha": 0.35,
        "beta": 0.37,
    }
    n_opt, _ = chinchilla_optimal(1e18, A=480.0, B=2000.0, alpha=0.35, beta=0.37)
    sizes = df.loc[df["C"] == 1e18, "N"].to_numpy()
    np.testing.assert_allclose(sizes[[0, 4, 8]], [n_opt / 8, n_opt, 8 * n_opt], rtol=1e-12)
    assert len(load_runs(df, n_params_required=5)) == 45


def test_simulate_noiseless_matches_law_and_optimum_is_centred():
    df = simulate(sigma=0.0)
    truth = chinchilla(df["N"].to_numpy(), df["D"].to_numpy(), **df.attrs["true_params"])
    np.testing.assert_allclose(df["loss"], truth, rtol=1e-14)
    best = df.loc[df.groupby("C")["loss"].idxmin(), "run"]
    assert all(run.endswith("_n4") for run in best)
    dk = simulate(law="kaplan", sigma=0.0, params={"L_inf": 1.0})
    truth = kaplan(
        dk["N"].to_numpy(),
        dk["D"].to_numpy(),
        N_c=6.4e13,
        D_c=1.8e13,
        alpha_N=0.076,
        alpha_D=0.103,
        L_inf=1.0,
    )
    np.testing.assert_allclose(dk["loss"], truth, rtol=1e-14)
    assert all(r.endswith("_n4") for r in dk.loc[dk.groupby("C")["loss"].idxmin(), "run"])


def test_simulate_seeded_and_noise_scale():
    a = simulate(random_seed=3)
    pd.testing.assert_frame_equal(a, simulate(random_seed=3))
    assert not np.allclose(a["loss"], simulate(random_seed=4)["loss"])
    big = simulate(budgets=np.geomspace(1e17, 1e20, 40), n_per_budget=50, sigma=0.05, random_seed=0)
    clean = chinchilla(big["N"].to_numpy(), big["D"].to_numpy(), **big.attrs["true_params"])
    resid = np.log(big["loss"].to_numpy()) - np.log(clean)
    assert abs(resid.std() / 0.05 - 1) < 0.05 and abs(resid.mean()) < 0.005
    student = simulate(
        budgets=np.geomspace(1e17, 1e20, 40),
        n_per_budget=50,
        sigma=0.05,
        noise="student",
        random_seed=0,
    )
    resid_t = np.log(student["loss"].to_numpy()) - np.log(clean)
    # t with 5 d.o.f. has sd sqrt(5/3) and heavier tails than the normal draw
    assert abs(resid_t.std() / (0.05 * np.sqrt(5 / 3)) - 1) < 0.15
    assert np.abs(resid_t).max() > np.abs(resid).max()


def test_simulate_accepts_generator():
    a = simulate(random_seed=np.random.default_rng(7))
    pd.testing.assert_frame_equal(a, simulate(random_seed=7))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"law": "gpt"}, "unknown law 'gpt' for simulate; valid: chinchilla, kaplan"),
        ({"params": {"gamma": 1.0}}, "unknown parameter.*gamma.*valid: E, A, B, alpha, beta"),
        ({"params": {"alpha": -0.3}}, "alpha must be positive"),
        ({"budgets": (1e18, 0.0)}, "budgets must be positive"),
        ({"budgets": ()}, "budgets must be positive"),
        ({"n_per_budget": 0}, "n_per_budget must be a positive integer"),
        ({"n_per_budget": 2.5}, "n_per_budget must be a positive integer"),
        ({"sigma": -0.1}, "sigma must be a non-negative"),
        ({"noise": "cauchy"}, "unknown noise 'cauchy'; valid: normal, student"),
    ],
)
def test_simulate_bad_input(kwargs, match):
    with pytest.raises(InputError, match=match):
        simulate(**kwargs)


def test_simulate_does_not_mutate_params():
    params = {"E": 1.5}
    df = simulate(params=params, n_per_budget=3)
    assert params == {"E": 1.5}
    assert df.attrs["true_params"]["E"] == 1.5 and df.attrs["true_params"]["A"] == 480.0


# --------------------------------------------------------------------------------------------
# Downstream accuracies and evaluation tasks
# --------------------------------------------------------------------------------------------


def test_downstream_table_loads_with_any_metric_column():
    frame = read_table("overtraining_downstream")
    assert frame.shape == (104, 63) and frame.attrs["dataset"] == "overtraining_downstream"
    assert sum(c.startswith("acc_") for c in frame) == 46
    assert sum(c.startswith("loss_") for c in frame) == 8
    runs = load("overtraining_downstream")
    assert len(runs) == 104
    np.testing.assert_allclose(runs.loss, frame["loss_c4_val"])
    # another validation loss as the fitted quantity: load_runs' mapping does it
    other = load("overtraining_downstream", mapping={"loss": "loss_paloma_c4_en"})
    np.testing.assert_allclose(other.loss, frame["loss_paloma_c4_en"])
    np.testing.assert_allclose(other.C, frame["C_6ND"], rtol=1e-12)


def test_task_table_is_not_a_runs_table():
    with pytest.raises(InputError, match="read_table\\('overtraining_eval_tasks'\\)"):
        load("overtraining_eval_tasks")
    tasks = read_table("overtraining_eval_tasks")
    assert len(tasks) == 51 and {"Eval Task", "Random baseline", "#datapoints"} <= set(tasks)


def test_task_info_by_task_or_column_name():
    hs = task_info("acc_hellaswag")
    assert (hs.name, hs.random_baseline, hs.n_examples) == ("hellaswag", 0.25, 10042)
    assert hs.task_type == "multiple choice" and hs.shots == 10
    assert task_info(" PIQA ").random_baseline == 0.5
    assert task_info("jeopardy").random_baseline == 0.0
    # every accuracy column of the downstream table has its task
    frame = read_table("overtraining_downstream")
    for col in (c for c in frame if c.startswith("acc_")):
        info = task_info(col)
        assert 0 <= info.random_baseline < 1 and info.n_examples >= 32


def test_task_info_unknown_or_bad_task():
    with pytest.raises(InputError, match="no evaluation task 'hellaswg'.*closest: hellaswag"):
        task_info("hellaswg")
    with pytest.raises(InputError, match="no evaluation task 'acc_gpqa'"):
        task_info("acc_gpqa")
    bad = pd.DataFrame({"Eval Task": ["x"], "Random baseline": [250], "#datapoints": [10]})
    with pytest.raises(InputError, match="not a percent"):
        task_info("x", tasks=bad)
    with pytest.raises(InputError, match="lacks column"):
        task_info("x", tasks=bad.drop(columns="#datapoints"))
    zero = bad.assign(**{"Random baseline": [25], "#datapoints": [0]})
    with pytest.raises(InputError, match="positive integer"):
        task_info("x", tasks=zero)
