"""Public scaling-run datasets, bundled or fetched and checked on demand, and a simulator.

Datasets are looked up, in order, in the folder named by the environment variable
``BAYESCALE_DATA_DIR``, then inside the package (``bayescale/data``: the tables whose licence
allows it, Datablations under Apache-2.0 and the over-training runs under MIT, with their
attribution in ``bayescale/data/NOTICE``), then in the cache folder (``cache_dir`` argument, else
``BAYESCALE_CACHE_DIR``, else ``~/.cache/bayescale``), and are otherwise downloaded from their
pinned URL into the cache. Every file is checked against its SHA-256 before use; a cached file
whose hash differs is fetched again, never trusted. Tables without a stated licence are not
bundled: Epoch's Chinchilla table is downloaded, and derived tables without a raw file of their
own (the Marin isoFLOP sweep) must be placed in ``BAYESCALE_DATA_DIR`` by hand.

References
----------
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models. arXiv:2203.15556.
Besiroglu, T. et al. (2024). Chinchilla Scaling: A replication attempt. arXiv:2404.10102.
Muennighoff, N. et al. (2023). Scaling Data-Constrained Language Models. arXiv:2305.16264.
Gadre, S. Y. et al. (2024). Language models scale reliably with over-training and on downstream
tasks. arXiv:2403.08540.
Kaplan, J. et al. (2020). Scaling Laws for Neural Language Models. arXiv:2001.08361.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.core.laws import chinchilla, chinchilla_optimal, kaplan, kaplan_optimal
from bayescale.core.runs import Runs, load_runs
from bayescale.errors import InputError

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "TaskInfo",
    "available",
    "list_datasets",
    "load",
    "path",
    "read_table",
    "simulate",
    "task_info",
]

DATA_DIR_ENV = "BAYESCALE_DATA_DIR"
CACHE_DIR_ENV = "BAYESCALE_CACHE_DIR"
DOWNLOAD_TIMEOUT = 30.0
"""Seconds before a download gives up."""


@dataclass(frozen=True)
class DatasetInfo:
    """A public dataset of training runs.

    Attributes
    ----------
    name : str
        Registry name.
    filename : str
        File name in the data or cache folder.
    url : str or None
        Pinned raw URL, or None for derived tables that have no raw file of their own.
    sha256 : str
        Expected SHA-256 of the file's bytes.
    citation : str
        The papers the data come from.
    description : str
        What the runs are and how they are used.
    mapping : dict
        Column mapping passed to :func:`bayescale.core.runs.load_runs`.
    default_filters : dict
        Filters applied by :func:`load` unless overridden.
    licence : str
        The licence of the data ("none stated" when there is none).
    source : str
        Repository, pinned commit and path the file comes from.
    bundled : bool
        Whether the file ships inside the package (only under a licence that allows it).
    runs : bool
        Whether the file is a runs table (:func:`load` reads it as :class:`Runs`); other tables
        (the evaluation tasks' metadata) are read with :func:`read_table`.
    """

    name: str
    filename: str
    url: str | None
    sha256: str
    citation: str
    description: str
    mapping: dict = field(default_factory=dict)
    default_filters: dict = field(default_factory=dict)
    licence: str = "none stated"
    source: str = ""
    bundled: bool = False
    runs: bool = True


DATASETS: dict[str, DatasetInfo] = {
    "chinchilla": DatasetInfo(
        name="chinchilla",
        filename="chinchilla_epoch2024.csv",
        url=(
            "https://raw.githubusercontent.com/epoch-research/analyzing-chinchilla/"
            "92258837425e1b5f2851d624287f0120583a3d0e/data/svg_extracted_data.csv"
        ),
        sha256="193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30",
        citation=(
            "Hoffmann et al. (2022), arXiv:2203.15556, Fig. 4; extracted by Besiroglu et al. "
            "(2024), arXiv:2404.10102"
        ),
        description=(
            "245 Chinchilla runs read off the paper's Fig. 4 SVG; N = total parameters, "
            "C = training FLOP, D = C/(6N). The 5 highest-loss points are dropped by default, "
            "as in Besiroglu et al. (240 runs)."
        ),
        mapping={"N": "Model Size", "C": "Training FLOP", "loss": "loss"},
        default_filters={"drop_top_loss": 5},
        source=(
            "epoch-research/analyzing-chinchilla @ 92258837425e1b5f2851d624287f0120583a3d0e, "
            "data/svg_extracted_data.csv"
        ),
    ),
    "datablations": DatasetInfo(
        name="datablations",
        filename="datablations_muennighoff2023.csv",
        url=None,
        sha256="e4a695e616a5b4ec39fd4796de27a7799737b7544ba46ccd2d116beec85fd682",
        citation=(
            "Muennighoff et al. (2023), arXiv:2305.16264; runs table of "
            "huggingface/datablations utils/parametric_fit.ipynb @ 1370131"
        ),
        description=(
            "296 data-constrained runs (repeated seeds share N and D); tokens_D counts tokens "
            "seen including repeated epochs over unique_tokens_U, so most runs repeat data and a "
            "plain Chinchilla law does not describe them."
        ),
        mapping={"N": "params_N", "D": "tokens_D", "loss": "val_loss", "run": "run_name"},
        licence="Apache-2.0",
        source=(
            "huggingface/datablations @ 13701315b163f1c54642b94ad237b2699187c3ee, decoded from "
            "the printed runs table of utils/parametric_fit.ipynb"
        ),
        bundled=True,
    ),
    "overtraining": DatasetInfo(
        name="overtraining",
        filename="overtraining_gadre2024.csv",
        url=None,
        sha256="23ee901ea0e449e05489b806d8a566d9b7553a46f74aa46d259afe19d0beced3",
        citation=(
            "Gadre et al. (2024), arXiv:2403.08540; flattened from mlfoundations/scaling "
            "exp_data/models/*.json @ a003c49"
        ),
        description=(
            "104 over-trained runs on three corpora (group = dataset_name: c4_original, rpj, "
            "rw_original); N = total parameters, D = tokens, loss = C4 validation loss."
        ),
        mapping={
            "N": "params",
            "D": "tokens",
            "loss": "loss_c4_val",
            "run": "name",
            "group": "dataset_name",
        },
        licence="MIT",
        source=(
            "mlfoundations/scaling @ a003c4913793ac2ae7ef87b28ecb562955d026d5, flattened from "
            "exp_data/models/*.json"
        ),
        bundled=True,
    ),
    "marin": DatasetInfo(
        name="marin",
        filename="marin_comma_isoflops.csv",
        url=None,
        sha256="8e31f29362dc19fc2b1c4dbf53c2da748735de9ae4b0b52b0ed10127e39bc962",
        citation=(
            "Marin project (2026), isoFLOP sweep on the Comma corpus, as collected in "
            "Open-Athena/scaling-law-analysis @ 3e0656ee3dce (rows marin_202603 / comma)"
        ),
        description=(
            "85 runs of an isoFLOP sweep (7 budgets, 3e18-3e20 FLOPs; Llama-2-style models); "
            "N = params, D = tokens, C = 6ND (the nominal budget_flops is kept in the file); "
            "outlier/reason mark the 5 runs the table's authors excluded. No licence is stated, "
            "so the table is not bundled: place it in BAYESCALE_DATA_DIR."
        ),
        mapping={"N": "params", "D": "tokens", "loss": "loss"},
        source=(
            "Open-Athena/scaling-law-analysis @ 3e0656ee3dce (abbreviated commit), isoFLOP "
            "experiments table, rows marin_202603 / comma"
        ),
    ),
    "overtraining_downstream": DatasetInfo(
        name="overtraining_downstream",
        filename="overtraining_gadre2024_downstream.csv",
        url=None,
        sha256="3698adc0b519f90dba5f10165e56b2b4d89ad988503ee4f1bed48e07b66cdb0b",
        citation=(
            "Gadre et al. (2024), arXiv:2403.08540; mlfoundations/scaling exp_data/models/*.json "
            "joined with exp_data/evals/evaluation_*_heavy.json @ a003c49"
        ),
        description=(
            "The 104 over-trained runs with several metrics per run: 8 validation losses "
            "(loss_*, nats/token) and 46 downstream accuracies (acc_*, 0-1, LLM-foundry "
            "in-context evaluation); group = dataset (c4_original, rpj, rw_original). Read the "
            "whole table with read_table() to fit an accuracy (bayescale.fit_accuracy); each "
            "task's random baseline and size come from task_info()."
        ),
        mapping={"N": "N", "D": "D", "loss": "loss_c4_val", "run": "model", "group": "dataset"},
        licence="MIT",
        source=(
            "mlfoundations/scaling @ a003c4913793ac2ae7ef87b28ecb562955d026d5, "
            "exp_data/models/*.json joined with exp_data/evals/evaluation_*_heavy.json"
        ),
        bundled=True,
    ),
    "overtraining_eval_tasks": DatasetInfo(
        name="overtraining_eval_tasks",
        filename="overtraining_gadre2024_eval_tasks.csv",
        url=None,
        sha256="ddfe2b3e2559a9f9c4938a3805abbcd12372ee13b0e5563b5e63530db266ceb1",
        citation=(
            "Gadre et al. (2024), arXiv:2403.08540; mlfoundations/scaling "
            "exp_data/eval_metadata.csv @ a003c49"
        ),
        description=(
            "Metadata of the 51 LLM-foundry evaluation tasks: category, type, shots, number of "
            "datapoints and random baseline (percent). Not a runs table: read it with "
            "read_table(), or one task with task_info()."
        ),
        licence="MIT",
        source=(
            "mlfoundations/scaling @ a003c4913793ac2ae7ef87b28ecb562955d026d5, "
            "exp_data/eval_metadata.csv (descriptions dropped)"
        ),
        bundled=True,
        runs=False,
    ),
}
"""The registered datasets, by name."""


def list_datasets() -> pd.DataFrame:
    """Return the registered datasets as a table.

    Returns
    -------
    pandas.DataFrame
        One row per dataset with columns ``name``, ``filename``, ``bundled``, ``downloadable``,
        ``licence``, ``citation``, ``description``, ``source``, ``url`` and ``sha256``.

    Examples
    --------
    >>> list_datasets()["name"].tolist()[:4]
    ['chinchilla', 'datablations', 'overtraining', 'marin']
    """
    return pd.DataFrame(
        [
            {
                "name": info.name,
                "filename": info.filename,
                "bundled": info.bundled,
                "downloadable": info.url is not None,
                "licence": info.licence,
                "source": info.source,
                "citation": info.citation,
                "description": info.description,
                "url": info.url,
                "sha256": info.sha256,
            }
            for info in DATASETS.values()
        ]
    )


def path(name: str, *, cache_dir=None, download=True) -> Path:
    """Return the local path of a dataset's file, downloading it into the cache if needed.

    Parameters
    ----------
    name : str
        A registered dataset name (see :func:`list_datasets`).
    cache_dir : str or pathlib.Path, optional
        Cache folder; default ``$BAYESCALE_CACHE_DIR``, else ``~/.cache/bayescale``.
    download : bool, default True
        Whether to download a file that is not found locally.

    Returns
    -------
    pathlib.Path
        A file whose SHA-256 matches the registry: in ``BAYESCALE_DATA_DIR``, in the package
        (bundled tables), in the cache, or freshly downloaded into the cache.

    Raises
    ------
    InputError
        For an unknown name, a file in ``BAYESCALE_DATA_DIR`` or the package whose hash differs
        (both hashes named), a dataset without a URL that is not found locally, ``download=False``
        with no good local file, or a failed download. A cached file whose hash differs is
        downloaded again (and replaced) rather than trusted.

    Examples
    --------
    >>> path("chinchilla").name  # doctest: +SKIP
    'chinchilla_epoch2024.csv'
    """
    info = _info(name)
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        candidate = Path(data_dir).expanduser() / info.filename
        if candidate.is_file():
            _check_hash(candidate.read_bytes(), info, str(candidate))
            return candidate
    if info.bundled:
        packaged = _bundled_path(info)
        if packaged.is_file():
            _check_hash(packaged.read_bytes(), info, str(packaged))
            return packaged
    cache = _cache_dir(cache_dir)
    cached = cache / info.filename
    corrupt = ""
    if cached.is_file():
        got = _sha256(cached.read_bytes())
        if got == info.sha256:
            return cached
        corrupt = f"; the cached {cached} has sha256 {got}, not {info.sha256}"
    where = f"{DATA_DIR_ENV}={data_dir!r}" if data_dir else f"{DATA_DIR_ENV} is not set"
    if info.url is None:
        raise InputError(
            f"dataset {name!r} has no download URL and {info.filename} was not found locally "
            f"({where}; cache {str(cache)!r}{corrupt}); set {DATA_DIR_ENV} to a folder holding "
            f"{info.filename}"
        )
    if not download:
        raise InputError(
            f"{info.filename} for dataset {name!r} was not found locally ({where}; cache "
            f"{str(cache)!r}{corrupt}) and download=False; set {DATA_DIR_ENV} to a folder "
            "holding it"
        )
    return _download(info, cache)


def available(name: str, *, cache_dir=None) -> bool:
    """Whether a dataset can be read without the network (bundled, in the data folder or cache).

    Parameters
    ----------
    name : str
        A registered dataset name.
    cache_dir : str or pathlib.Path, optional
        Cache folder, as in :func:`path`.

    Returns
    -------
    bool
        True when :func:`path` with ``download=False`` finds a file with the registered hash.

    Examples
    --------
    >>> available("datablations")
    True
    """
    _info(name)
    try:
        path(name, cache_dir=cache_dir, download=False)
    except InputError:
        return False
    return True


def load(name: str, *, cache_dir=None, **load_runs_kwargs) -> Runs:
    """Load a registered dataset as :class:`~bayescale.core.runs.Runs`.

    Parameters
    ----------
    name : str
        A registered dataset name.
    cache_dir : str or pathlib.Path, optional
        Cache folder, as in :func:`path`.
    **load_runs_kwargs
        Options of :func:`bayescale.core.runs.load_runs`. ``mapping`` entries override the dataset's
        per column; filters override its default filters (``drop_top_loss=0`` keeps all
        Chinchilla runs); ``metric=`` / ``metrics=`` replace its loss column (``metrics="loss_*"``
        reads every validation loss of the over-training tables).

    Returns
    -------
    Runs
        The runs, with ``provenance["dataset"]`` set to ``name``.

    Raises
    ------
    InputError
        As :func:`path` and :func:`bayescale.core.runs.load_runs`.

    Examples
    --------
    >>> runs = load("chinchilla")  # doctest: +SKIP
    >>> len(runs)  # doctest: +SKIP
    240
    """
    info = _info(name)
    if not info.runs:
        raise InputError(
            f"dataset {name!r} is not a table of training runs; read it with "
            f"bayescale.datasets.read_table({name!r})"
        )
    file = path(name, cache_dir=cache_dir)
    user_mapping = load_runs_kwargs.pop("mapping", None) or {}
    base = dict(info.mapping)
    if load_runs_kwargs.get("metric") is not None or load_runs_kwargs.get("metrics") is not None:
        base.pop("loss", None)  # metric= / metrics= choose the loss column(s)
    mapping = {**base, **user_mapping}
    kwargs = {**info.default_filters, **load_runs_kwargs}
    runs = load_runs(file, mapping=mapping, **kwargs)
    return Runs(frame=runs.frame, provenance={**runs.provenance, "dataset": name})


# --------------------------------------------------------------------------------------------
# Whole tables and evaluation tasks
# --------------------------------------------------------------------------------------------


def read_table(name: str, *, cache_dir=None) -> pd.DataFrame:
    """Read a registered dataset's file as it is, every column kept.

    :func:`load` keeps only the columns a loss law reads; the downstream table's accuracies
    (``acc_*``) and other losses, and the evaluation tasks' metadata, are read with this.

    Parameters
    ----------
    name : str
        A registered dataset name (see :func:`list_datasets`).
    cache_dir : str or pathlib.Path, optional
        Cache folder, as in :func:`path`.

    Returns
    -------
    pandas.DataFrame
        The file's rows and columns; ``attrs["dataset"]`` holds ``name``.

    Raises
    ------
    InputError
        As :func:`path`.

    Examples
    --------
    >>> frame = read_table("overtraining_downstream")
    >>> frame.shape, "acc_hellaswag" in frame
    ((104, 63), True)
    """
    frame = pd.read_csv(path(name, cache_dir=cache_dir))
    frame.attrs["dataset"] = name
    return frame


@dataclass(frozen=True)
class TaskInfo:
    """An evaluation task's metadata (Gadre et al. 2024, ``exp_data/eval_metadata.csv``).

    Attributes
    ----------
    name : str
        Task name as in the metadata (``"hellaswag"``).
    random_baseline : float
        Accuracy of random guessing, as a fraction (the table gives percent).
    n_examples : int
        Number of evaluation datapoints.
    category, task_type : str
        Task category (``"language understanding"``) and type (``"multiple choice"``).
    shots : int
        In-context examples.
    """

    name: str
    random_baseline: float
    n_examples: int
    category: str
    task_type: str
    shots: int


def task_info(task: str, *, tasks: pd.DataFrame | None = None) -> TaskInfo:
    """Random baseline (fraction) and size of an evaluation task, by task or column name.

    Parameters
    ----------
    task : str
        The task (``"hellaswag"``) or its accuracy column in the downstream table
        (``"acc_hellaswag"``: the ``acc_`` prefix is dropped). Case and surrounding space are
        ignored.
    tasks : pandas.DataFrame, optional
        A task table with the columns of ``overtraining_eval_tasks`` (``Eval Task``,
        ``Random baseline`` in percent, ``#datapoints``, ...); default the bundled one.

    Returns
    -------
    TaskInfo

    Raises
    ------
    InputError
        For a task the table does not hold (the message names the closest task names), a
        table without the needed columns, or a baseline outside [0, 100] or a size below 1.

    References
    ----------
    Gadre et al. (2024), arXiv:2403.08540, Appendix (evaluation tasks and their baselines).

    Examples
    --------
    >>> info = task_info("acc_hellaswag")
    >>> info.random_baseline, info.n_examples
    (0.25, 10042)
    """
    import difflib

    table = read_table("overtraining_eval_tasks") if tasks is None else tasks
    need = ("Eval Task", "Random baseline", "#datapoints")
    missing = [c for c in need if c not in table]
    if missing:
        raise InputError(f"task table lacks column(s) {', '.join(missing)}; needs {need}")
    key = str(task).strip().lower()
    names = table["Eval Task"].astype(str).str.strip().str.lower()
    rows = table[names == key]
    if rows.empty and key.startswith("acc_"):
        key = key.removeprefix("acc_")
        rows = table[names == key]
    if rows.empty:
        close = difflib.get_close_matches(key, names.tolist(), n=3, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise InputError(
            f"no evaluation task {task!r} in the task table ({len(table)} tasks){hint}; pass "
            "the floor and the number of examples yourself if the task is not listed"
        )
    row = rows.iloc[0]
    baseline = float(row["Random baseline"])
    n = row["#datapoints"]
    if not (0 <= baseline <= 100):
        raise InputError(f"task {key!r}: random baseline {baseline!r} is not a percent in [0, 100]")
    if pd.isna(n) or int(n) != n or int(n) < 1:
        raise InputError(f"task {key!r}: #datapoints {n!r} is not a positive integer")
    return TaskInfo(
        name=key,
        random_baseline=baseline / 100.0,
        n_examples=int(n),
        category=str(row.get("Task Category", "")),
        task_type=str(row.get("Task Type", "")),
        shots=int(row["#shots"]) if "#shots" in row and not pd.isna(row["#shots"]) else 0,
    )


# --------------------------------------------------------------------------------------------
# Simulator
# --------------------------------------------------------------------------------------------

DEFAULT_PARAMS = {
    "chinchilla": {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37},
    "kaplan": {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103, "L_inf": 0.0},
}
"""True parameters of :func:`simulate`: near Besiroglu et al. (2024) for ``chinchilla`` and
Kaplan et al. (2020)'s joint fit for ``kaplan``."""

_NOISE_NU = 5.0


def simulate(
    *,
    law="chinchilla",
    params=None,
    budgets=(1e17, 3e17, 1e18, 3e18, 1e19),
    n_per_budget=9,
    sigma=0.01,
    noise="normal",
    random_seed=0,
) -> pd.DataFrame:
    r"""Simulate an IsoFLOP sweep of training runs from a known law.

    For each budget ``C``, ``n_per_budget`` model sizes are log-spaced from ``N*/8`` to ``8 N*``
    around the law's compute-optimal size ``N*(C)``, with ``D = C / (6 N)``. Losses carry
    multiplicative noise: :math:`\log L = \log L_{law}(N, D) + \sigma \varepsilon`, with
    :math:`\varepsilon` standard normal or Student-t with 5 degrees of freedom.

    Parameters
    ----------
    law : {"chinchilla", "kaplan"}, default "chinchilla"
        The law to simulate from.
    params : dict, optional
        True parameters overriding :data:`DEFAULT_PARAMS` per key.
    budgets : sequence of float
        Compute budgets in FLOPs.
    n_per_budget : int, default 9
        Model sizes per budget.
    sigma : float, default 0.01
        Noise scale on log loss (0 for exact losses).
    noise : {"normal", "student"}, default "normal"
        Noise distribution.
    random_seed : int or numpy.random.Generator, default 0
        Seed of the only random draw.

    Returns
    -------
    pandas.DataFrame
        Columns ``N``, ``D``, ``C``, ``loss``, ``run``; ``attrs`` hold ``law``, ``true_params``,
        ``sigma``, ``noise`` and ``budgets``.

    Raises
    ------
    InputError
        For an unknown law, noise or parameter name, or a non-positive budget, size count or
        negative sigma.

    References
    ----------
    Hoffmann et al. (2022), Sec. 3.2 (IsoFLOP profiles); Kaplan et al. (2020), Eq. (1.5).

    Examples
    --------
    >>> df = simulate(budgets=(1e18, 1e19), n_per_budget=5, random_seed=1)
    >>> df.shape, df.attrs["law"]
    ((10, 5), 'chinchilla')
    >>> bool(np.allclose(df["C"], 6 * df["N"] * df["D"]))
    True
    """
    if law not in DEFAULT_PARAMS:
        raise InputError(f"unknown law {law!r} for simulate; valid: {', '.join(DEFAULT_PARAMS)}")
    defaults = DEFAULT_PARAMS[law]
    params = {} if params is None else dict(params)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise InputError(
            f"unknown parameter(s) {', '.join(unknown)} for law {law!r}; "
            f"valid: {', '.join(defaults)}"
        )
    true = {k: float(params.get(k, v)) for k, v in defaults.items()}
    bad = [k for k, v in true.items() if not math.isfinite(v) or v < 0 or (v == 0 and k != "L_inf")]
    if bad:
        raise InputError(
            f"parameter(s) {', '.join(bad)} must be positive finite numbers; got "
            + ", ".join(f"{k}={true[k]!r}" for k in bad)
        )
    budgets_arr = np.asarray(budgets, dtype=np.float64).ravel()
    if budgets_arr.size == 0 or not np.all(np.isfinite(budgets_arr)) or np.any(budgets_arr <= 0):
        raise InputError(f"budgets must be positive finite FLOP counts; got {list(budgets)!r}")
    if (
        isinstance(n_per_budget, bool)
        or not isinstance(n_per_budget, (int, np.integer))
        or n_per_budget < 1
    ):
        raise InputError(f"n_per_budget must be a positive integer; got {n_per_budget!r}")
    if not math.isfinite(sigma) or sigma < 0:
        raise InputError(f"sigma must be a non-negative finite number; got {sigma!r}")
    if noise not in ("normal", "student"):
        raise InputError(f"unknown noise {noise!r}; valid: normal, student")

    if law == "chinchilla":
        n_opt, _ = chinchilla_optimal(
            budgets_arr, A=true["A"], B=true["B"], alpha=true["alpha"], beta=true["beta"]
        )
    else:
        n_opt, _ = kaplan_optimal(
            budgets_arr,
            N_c=true["N_c"],
            D_c=true["D_c"],
            alpha_N=true["alpha_N"],
            alpha_D=true["alpha_D"],
        )
    factors = np.geomspace(1 / 8, 8, n_per_budget) if n_per_budget > 1 else np.ones(1)
    N = (np.asarray(n_opt)[:, None] * factors[None, :]).ravel()
    C = np.repeat(budgets_arr, n_per_budget)
    D = C / (6.0 * N)
    clean = chinchilla(N, D, **true) if law == "chinchilla" else kaplan(N, D, **true)

    rng = np.random.default_rng(random_seed)
    eps = rng.standard_normal(N.size) if noise == "normal" else rng.standard_t(_NOISE_NU, N.size)
    loss = np.exp(np.log(clean) + sigma * eps)
    run = [f"b{i}_n{j}" for i in range(budgets_arr.size) for j in range(n_per_budget)]
    df = pd.DataFrame({"N": N, "D": D, "C": C, "loss": loss, "run": pd.Series(run, dtype="str")})
    df.attrs["law"] = law
    df.attrs["true_params"] = true
    df.attrs["sigma"] = float(sigma)
    df.attrs["noise"] = noise
    df.attrs["budgets"] = budgets_arr.tolist()
    return df


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _info(name) -> DatasetInfo:
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    return DATASETS[name]


def _bundled_path(info: DatasetInfo) -> Path:
    return Path(__file__).resolve().parents[1] / "data" / info.filename


def _cache_dir(cache_dir) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "bayescale"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_hash(data: bytes, info: DatasetInfo, where: str) -> None:
    got = _sha256(data)
    if got != info.sha256:
        raise InputError(
            f"sha256 mismatch for {where}: expected {info.sha256}, got {got}; the file is not "
            f"the registered {info.name!r} data (delete or replace it)"
        )


def _download(info: DatasetInfo, cache: Path) -> Path:
    """Fetch ``info.url``, check its hash, and move it atomically into ``cache``."""
    try:
        with urllib.request.urlopen(info.url, timeout=DOWNLOAD_TIMEOUT) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(
            f"could not download dataset {info.name!r} from {info.url} ({reason}); if offline, "
            f"set {DATA_DIR_ENV} to a folder holding {info.filename}"
        ) from None
    _check_hash(data, info, info.url)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / info.filename
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{info.filename}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
