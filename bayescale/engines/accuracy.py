"""Fit an accuracy card to a table of runs: one metric column, its floor and its task size.

The runs table keeps every column (a DataFrame or a CSV path; :func:`bayescale.load_runs` keeps
only the loss columns, so accuracies are read here). The metric is a column of accuracies in
[0, 1] (``acc_hellaswag``); its floor and number of evaluation examples come from the task table
(:func:`bayescale.core.datasets.task_info`) or are given. The two-step law also reads a loss column
(``via``), the direct law the compute ``C``.

The model (one PyMC model for every accuracy law)::

    headroom = level + (1 - level) * room     # level: law at x_ref, the runs' mean input
    ceiling  = floor + (1 - floor) * headroom
    midpoint = x_ref + logit(level / headroom) / k    (minus for the direct law)
    p_run    = law(x_run; floor, ceiling, k, midpoint)
    correct  ~ BetaBinomial(n, p kappa, (1 - p) kappa),  kappa = 1 / (4 sigma^2)

with ``x`` the ``via`` loss (two-step), ``log10 C`` (direct) or the pair ``(log10 N, log10 D)``
(direct in N and D: slopes ``k_N, k_D`` and a threshold ``z0 = k_N x_N_ref + k_D x_D_ref -
logit(level / headroom)`` in place of the midpoint). Without a number of examples the accuracy
itself is ``Beta(p kappa, (1 - p) kappa)`` (see :mod:`bayescale.core.accuracy_noise`).

References
----------
Grattafiori, A. et al. (2024). The Llama 3 Herd of Models. arXiv:2407.21783, Sec. 3.2.1.
Gadre, S. Y. et al. (2024). arXiv:2403.08540, Sec. 5.
Bhagia, A. et al. (2024). Establishing Task Scaling Laws via Compute-Efficient Model Ladders.
arXiv:2412.04403.
Krajewski, J. et al. (2025). arXiv:2512.08894.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale import __version__
from bayescale.core import accuracy_noise as noise
from bayescale.core.accuracy_cards import AccuracyCard
from bayescale.core.cards import load_card
from bayescale.core.compiled import compiled_for
from bayescale.core.datasets import task_info
from bayescale.core.diagnostics import check
from bayescale.core.diagnostics import compute as diagnostics
from bayescale.core.runs import read_raw
from bayescale.engines.single import _versions, sample_nutpie
from bayescale.errors import InputError
from bayescale.fits.accuracy import accuracy_attr
from bayescale.scoring.chance import chance_signal

TASK = "task"
"""Default of ``floor`` and ``n_examples``: read them from the task table."""
AUTO = "auto"
"""``n_examples``: from the task table when it holds the metric's task, else unknown (None)."""
_COMPUTE_COLUMNS = ("C", "C_6ND")


@dataclass(frozen=True)
class AccuracyData:
    """One metric of a runs table, checked, with the task's floor and size.

    Attributes
    ----------
    metric : str
        The accuracy column.
    accuracy : numpy.ndarray
        Accuracies in [0, 1], one per run.
    C : numpy.ndarray
        Training compute (FLOPs) of each run.
    via : str or None
        The loss column the two-step law reads.
    via_loss : numpy.ndarray or None
        Its values.
    floor : float
        Chance accuracy.
    n_examples : int or None
        Evaluation examples (None: unknown).
    task : str or None
        Task name when floor or size came from the task table.
    run : numpy.ndarray
        Run labels (the ``model``/``run``/``name`` column, else row numbers).
    N, D : numpy.ndarray or None
        Parameters and tokens when the table has them.
    sha256 : str
        Hash of the columns used, for provenance.
    """

    metric: str
    accuracy: np.ndarray
    C: np.ndarray
    via: str | None
    via_loss: np.ndarray | None
    floor: float
    n_examples: int | None
    task: str | None
    run: np.ndarray
    N: np.ndarray | None
    D: np.ndarray | None
    sha256: str

    def __len__(self) -> int:
        return self.accuracy.size


def _frame(runs) -> pd.DataFrame:
    if isinstance(runs, (pd.DataFrame, str, Path)):
        return read_raw(runs)
    raise InputError(
        "accuracy fits need the whole runs table (a DataFrame or a .csv/.tsv/.parquet path) to "
        f"read the metric column; got {type(runs).__name__} "
        "(bayescale.core.datasets.read_table gives the bundled downstream table)"
    )


def _numeric(frame, column, what) -> np.ndarray:
    if column not in frame:
        cols = [c for c in frame.columns if str(c).startswith(("acc_", "loss_"))][:8]
        hint = f"; e.g. {', '.join(map(str, cols))}" if cols else ""
        raise InputError(f"{what} column {column!r} is not in the runs table{hint}")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(
            f"{what} column {column!r} has missing or non-numeric values at rows "
            f"{bad[:5].tolist()}{' ...' if bad.size > 5 else ''}"
        )
    return values


def accuracy_data(
    runs,
    *,
    metric: str,
    via: str | None = None,
    floor=TASK,
    n_examples=TASK,
    compute: str | None = None,
    tasks: pd.DataFrame | None = None,
) -> AccuracyData:
    """Read and check one accuracy metric of a runs table.

    Parameters
    ----------
    runs : pandas.DataFrame, str or Path
        The runs table with every column (e.g. ``datasets.read_table("overtraining_downstream")``).
    metric : str
        Accuracy column (values in [0, 1]).
    via : str, optional
        Loss column the two-step law reads (values > 0).
    floor : float or "task", default "task"
        Chance accuracy in [0, 1); ``"task"``: the task's random baseline from the task table.
    n_examples : int, None, "task" or "auto", default "task"
        Evaluation examples; None: unknown (Beta noise); ``"task"``: from the task table;
        ``"auto"``: from the task table when it holds the task, else None.
    compute : str, optional
        Compute column; default ``C`` or ``C_6ND``, else ``6 N D`` from ``N`` and ``D``.
    tasks : pandas.DataFrame, optional
        Task table for :func:`bayescale.core.datasets.task_info` (default the bundled one).

    Returns
    -------
    AccuracyData

    Raises
    ------
    InputError
        For a missing column, values out of range (rows named), a task not in the task table
        while ``floor`` or ``n_examples`` is ``"task"``, or accuracies of exactly 0 or 1 with
        ``n_examples=None``.
    """
    frame = _frame(runs)
    acc = _numeric(frame, metric, "metric")
    bad = np.flatnonzero((acc < 0) | (acc > 1))
    if bad.size:
        raise InputError(
            f"metric {metric!r} must be an accuracy in [0, 1]; rows {bad[:5].tolist()} are not "
            "(percentages? divide by 100)"
        )
    if compute is not None:
        C = _numeric(frame, compute, "compute")
    else:
        col = next((c for c in _COMPUTE_COLUMNS if c in frame), None)
        if col is not None:
            C = _numeric(frame, col, "compute")
        elif "N" in frame and "D" in frame:
            C = 6.0 * _numeric(frame, "N", "N") * _numeric(frame, "D", "D")
        else:
            raise InputError(
                "no compute column: name one with compute=COLUMN, or give columns N and D "
                f"(C = 6ND); looked for {', '.join(_COMPUTE_COLUMNS)}"
            )
    if np.any(C <= 0):
        raise InputError(f"compute must be > 0; rows {np.flatnonzero(C <= 0)[:5].tolist()}")
    via_loss = None
    if via is not None:
        via_loss = _numeric(frame, via, "via loss")
        if np.any(via_loss <= 0):
            raise InputError(f"via loss {via!r} must be > 0 (nats per token)")
    task = None
    if isinstance(n_examples, str) and n_examples == AUTO:  # the task table's size, if it knows
        try:
            n_examples = task_info(metric, tasks=tasks).n_examples
        except InputError:
            n_examples = None
    if (isinstance(floor, str) and floor == TASK) or (
        isinstance(n_examples, str) and n_examples == TASK
    ):
        info = task_info(metric, tasks=tasks)
        task = info.name
        floor = info.random_baseline if isinstance(floor, str) else floor
        n_examples = info.n_examples if isinstance(n_examples, str) else n_examples
    try:
        floor = float(floor)
    except (TypeError, ValueError):
        raise InputError(f"floor must be a number in [0, 1) or 'task'; got {floor!r}") from None
    if not (0 <= floor < 1):
        raise InputError(f"floor must be in [0, 1); got {floor!r} (a percentage? divide by 100)")
    if n_examples is not None:
        if isinstance(n_examples, bool) or int(n_examples) != n_examples or n_examples < 1:
            raise InputError(f"n_examples must be a positive integer or None; got {n_examples!r}")
        n_examples = int(n_examples)
    elif np.any((acc <= 0) | (acc >= 1)):
        raise InputError(
            "accuracies of exactly 0 or 1 need the number of evaluation examples "
            "(n_examples=...): without it the noise is a Beta density on (0, 1)"
        )
    run_col = next((c for c in ("run", "model", "name") if c in frame), None)
    run = (frame[run_col].astype(str).to_numpy() if run_col else
           np.arange(len(frame)).astype(str))
    N = _numeric(frame, "N", "N") if "N" in frame else None
    D = _numeric(frame, "D", "D") if "D" in frame else None
    digest = hashlib.sha256()
    for arr in (acc, C, via_loss):
        if arr is not None:
            digest.update(np.ascontiguousarray(arr).tobytes())
    return AccuracyData(
        metric=metric, accuracy=acc, C=C, via=via, via_loss=via_loss, floor=floor,
        n_examples=n_examples, task=task, run=run, N=N, D=D, sha256=digest.hexdigest(),
    )


def law_input(card: AccuracyCard, data: AccuracyData) -> list[np.ndarray]:
    """The law's inputs per run on their natural scale, one array per name of
    :attr:`~bayescale.core.accuracy_laws.AccuracyLaw.input_names`: ``[via loss]``, ``[log10 C]`` or
    ``[log10 N, log10 D]``."""
    law = card.law_spec
    if law.input == "via":
        if data.via_loss is None:
            raise InputError(
                f"card {card.name!r} links accuracy to a loss: pass via=LOSS_COLUMN "
                "(e.g. via='loss_c4_val')"
            )
        return [data.via_loss]
    if data.via is not None:
        raise InputError(
            f"card {card.name!r} reads compute, not a loss; drop via={data.via!r} or use "
            "card='accuracy-two-step'"
        )
    if law.input == "log10_ND":
        if data.N is None or data.D is None:
            raise InputError(f"card {card.name!r} reads parameters and tokens: columns N and D")
        return [np.log10(data.N), np.log10(data.D)]
    return [np.log10(data.C)]


def _pack(values):
    """One value for a one-input law, the pair for the (N, D) law."""
    values = list(values)
    return values[0] if len(values) == 1 else tuple(values)


def build_accuracy_model(card: AccuracyCard, data: AccuracyData):
    """Return the ``pm.Model`` of an accuracy card on one metric.

    Parameters
    ----------
    card : AccuracyCard
        Law, priors and noise.
    data : AccuracyData
        The metric, its floor and task size, and the law's input.

    Returns
    -------
    pymc.Model
        Free variables ``level``, the slope(s) (``k``, or ``k_N`` and ``k_D``), ``room``,
        ``sigma``; deterministics ``headroom``, ``ceiling`` and the midpoint (``x0``,
        ``log10_C0`` or the threshold ``z0``; see
        :meth:`~bayescale.core.accuracy_laws.AccuracyLaw.from_pivot`); observed ``correct`` (counts,
        Beta-binomial) or ``accuracy`` (Beta, when ``n_examples`` is None), over ``run``. Data:
        the inputs (``x``, or ``x_N`` and ``x_D``), their means (``x_ref``...), ``floor`` and
        ``n_examples``.

    References
    ----------
    Grattafiori et al. (2024), Sec. 3.2.1; Bhagia et al. (2024).
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = card.law_spec
    xs = law_input(card, data)
    with pm.Model(coords={"run": np.arange(len(data))}) as model:
        x_data = [pm.Data(name, x, dims="run") for name, x in zip(law.input_names, xs, strict=True)]
        x_ref = [pm.Data(f"{name}_ref", np.float64(x.mean()))
                 for name, x in zip(law.input_names, xs, strict=True)]
        floor = pm.Data("floor", np.float64(data.floor))
        values = {p: card.priors[p].to_pymc(p) for p in card.free_params}
        sigma = card.noise_priors["sigma"].to_pymc("sigma")
        k = _pack(values[name] for name in law.slopes)
        headroom, ceiling, midpoint = law.from_pivot(
            level=values["level"], room=values["room"], k=k, x_ref=_pack(x_ref), floor=floor
        )
        pm.Deterministic("headroom", headroom)
        ceiling = pm.Deterministic("ceiling", ceiling)
        midpoint = pm.Deterministic(law.midpoint, midpoint)
        p = law.accuracy(_pack(x_data), floor=floor, ceiling=ceiling, k=k, midpoint=midpoint)
        a, b = noise.shapes(p, sigma, xp=pt)
        if data.n_examples is None:
            y = pm.Data("accuracy_obs", data.accuracy, dims="run")
            pm.Beta("accuracy", alpha=a, beta=b, observed=y, dims="run")
        else:
            n = pm.Data("n_examples", np.int64(data.n_examples))
            y = pm.Data("correct_obs", noise.counts(data.accuracy, data.n_examples), dims="run")
            pm.BetaBinomial("correct", alpha=a, beta=b, n=n, observed=y, dims="run")
    return model


def fit_accuracy(
    runs,
    *,
    metric: str,
    card: str | AccuracyCard = "accuracy-direct",
    via: str | None = None,
    floor=TASK,
    n_examples=TASK,
    compute: str | None = None,
    tasks: pd.DataFrame | None = None,
    priors=None,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    strict: bool = False,
    progress: bool = False,
    log_likelihood: bool = True,
    target_accept: float = 0.95,
    adaptation: str = "low_rank",
):
    """Sample the posterior of an accuracy law on one metric of a runs table.

    Parameters
    ----------
    runs : pandas.DataFrame, str or Path
        The whole runs table (see :func:`accuracy_data`).
    metric : str
        Accuracy column, e.g. ``"acc_hellaswag"``.
    card : str or AccuracyCard, default "accuracy-direct"
        ``"accuracy-direct"`` (accuracy against ``log10 C``), ``"accuracy-direct-nd"``
        (against ``log10 N`` and ``log10 D``), ``"accuracy-two-step"`` (against the ``via``
        loss) or a path to an accuracy card.
    via : str, optional
        Loss column of the two-step law (e.g. ``"loss_c4_val"``); the first step is a loss fit
        of the same column (``bs.fit(bs.load_runs(frame, mapping={"loss": via}), card=...)``).
    floor, n_examples, compute, tasks
        As in :func:`accuracy_data`.
    priors : Mapping, optional
        Prior overrides, e.g. ``{"room": "Beta(2, 2)"}``.
    draws, tune, chains, random_seed, strict, progress, log_likelihood, target_accept
        As in :func:`bayescale.fit`.
    adaptation : {"low_rank", "diag"}, default "low_rank"
        nutpie's mass-matrix adaptation (low-rank learns what correlation is left between the
        slope and the level).

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (``level``, ``k``, ``room``, ``sigma``, ``headroom``, ``ceiling``
        and the midpoint), ``sample_stats``, ``observed_data`` (``accuracy``), ``constant_data``
        (``x``, ``C``, ``via_loss``, ``N``, ``D``, ``run_id``) and ``log_likelihood``
        (``accuracy``); provenance in the root attrs, with ``bayescale_accuracy`` (metric,
        via, floor, n_examples, task, x_ref and the chance test of
        :func:`bayescale.scoring.chance.chance_signal`).

    Raises
    ------
    InputError
        As :func:`accuracy_data`; a loss card; ``via`` missing for the two-step card or given
        to the direct one; bad sampler options.

    References
    ----------
    Grattafiori et al. (2024), Sec. 3.2.1; Gadre et al. (2024), Sec. 5; Bhagia et al. (2024);
    Krajewski et al. (2025).

    Examples
    --------
    >>> from bayescale.core.datasets import read_table
    >>> fit = fit_accuracy(read_table("overtraining_downstream"), metric="acc_hellaswag",
    ...                    draws=200, tune=300, chains=2)  # doctest: +SKIP
    """
    import xarray as xr

    card = load_card(card, priors=priors)
    if not isinstance(card, AccuracyCard):
        raise InputError(
            f"card {card.name!r} is a loss card; accuracy fits take accuracy-direct, "
            "accuracy-two-step or another card with kind = \"accuracy\""
        )
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    data = accuracy_data(
        runs, metric=metric, via=via, floor=floor, n_examples=n_examples, compute=compute,
        tasks=tasks,
    )
    xs = law_input(card, data)
    if len(data) < card.n_params:
        raise InputError(f"{len(data)} runs cannot pin {card.n_params} parameters")
    chance = chance_signal(data.accuracy, data.C, floor=data.floor, n_examples=data.n_examples)

    t0 = time.perf_counter()
    model = build_accuracy_model(card, data)
    variant = "betabinomial" if data.n_examples is not None else "beta"
    compiled, cached = compiled_for(model, key_extra=card.to_json() + variant)
    t1 = time.perf_counter()
    trace = sample_nutpie(compiled, draws=draws, tune=tune, chains=chains,
                          random_seed=random_seed, progress=progress, adaptation=adaptation,
                          target_accept=target_accept)
    t2 = time.perf_counter()
    law = card.law_spec
    keep = [*card.free_params, "sigma", "headroom", "ceiling", law.midpoint]
    posterior = trace["posterior"].to_dataset()[keep]
    stats = trace["sample_stats"].to_dataset() if "sample_stats" in trace.children else None
    diag = diagnostics(posterior, stats, var_names=list(card.free_params) + ["sigma"])

    coords = {"run": np.arange(len(data))}
    constant = {name: ("run", x) for name, x in zip(law.input_names, xs, strict=True)}
    constant.update({"C": ("run", data.C), "run_id": ("run", data.run)})
    if data.via_loss is not None:
        constant["via_loss"] = ("run", data.via_loss)
    for name in ("N", "D"):
        if getattr(data, name) is not None:
            constant[name] = ("run", getattr(data, name))
    groups = {
        "posterior": posterior,
        "observed_data": xr.Dataset({"accuracy": ("run", data.accuracy)}, coords=coords),
        "constant_data": xr.Dataset(constant, coords=coords),
    }
    if stats is not None:
        groups["sample_stats"] = stats
    if log_likelihood:
        p = _law_accuracy(posterior, law, [x[None, None, :] for x in xs], data.floor)
        sigma = posterior["sigma"].to_numpy()[..., None]
        ll = noise.logpdf(data.accuracy, p, sigma, n_examples=data.n_examples)
        groups["log_likelihood"] = xr.Dataset(
            {"accuracy": (("chain", "draw", "run"), ll)},
            coords={"chain": posterior["chain"], "draw": posterior["draw"], "run": coords["run"]},
        )
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(),
        "creation_library": "bayescale",
        "creation_library_version": __version__,
        "bayescale_card": card.to_json(),
        "bayescale_runs": json.dumps(
            {"source": "DataFrame" if isinstance(runs, pd.DataFrame) else str(runs),
             "n_rows": len(data), "sha256": data.sha256,
             "dataset": getattr(runs, "attrs", {}).get("dataset")},
            sort_keys=True,
        ),
        **accuracy_attr(
            metric=data.metric, via=data.via, floor=data.floor, n_examples=data.n_examples,
            task=data.task, input=law.input, x_ref=[float(x.mean()) for x in xs],
            noise=variant, chance=chance.to_dict(),
        ),
        "bayescale_sampler": json.dumps(
            {"sampler": "nutpie", "draws": draws, "tune": tune, "chains": chains,
             "random_seed": random_seed, "compile_seconds": round(t1 - t0, 3),
             "sample_seconds": round(t2 - t1, 3), "compile_cached": cached,
             "target_accept": target_accept, "adaptation": adaptation}
        ),
        "bayescale_versions": json.dumps(_versions(), sort_keys=True),
        "bayescale_diagnostics": diag.to_json(),
    }
    check(diag, strict=strict, label=f"accuracy fit of {card.name!r} on {data.metric!r}")
    return tree


def _law_accuracy(posterior, law, xs, floor) -> np.ndarray:
    """Law accuracy for posterior draws (``(chain, draw)`` arrays) at inputs broadcast with them."""
    get = {k: posterior[k].to_numpy()[..., None]
           for k in ("ceiling", law.midpoint, *law.slopes)}
    return law.accuracy(_pack(xs), floor=floor, ceiling=get["ceiling"],
                        k=_pack(get[s] for s in law.slopes), midpoint=get[law.midpoint])
