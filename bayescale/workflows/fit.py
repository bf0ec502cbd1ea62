"""The public ``fit``: the one place that dispatches on the kind of fit asked for.

No card: the law ensemble (:mod:`bayescale.engines.ensemble`); with ``group_by``, the ensemble
with every card pooled over the families (:mod:`bayescale.engines.ensemble`). A card:
one card (:mod:`bayescale.engines.single`), pooled over families with ``group_by``
(:mod:`bayescale.engines.pooled`). ``accuracy={...}`` with an accuracy card: a downstream
accuracy (:mod:`bayescale.engines.accuracy`).
"""

from __future__ import annotations

from dataclasses import replace

from bayescale.core.cards import Card, load_card
from bayescale.core.runs import METRIC, load_runs
from bayescale.engines.accuracy import fit_accuracy
from bayescale.engines.accuracy_ensemble import fit_accuracy_ensemble
from bayescale.engines.ensemble import fit_ensemble, fit_families_ensemble
from bayescale.engines.pooled import fit_families
from bayescale.engines.single import fit_card
from bayescale.errors import InputError

__all__ = ["fit"]


def fit(
    runs,
    *,
    card: str | Card | None = None,
    priors=None,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    sampler: str = "nutpie",
    strict: bool = False,
    progress: bool = False,
    log_likelihood: bool = True,
    target_accept: float = 0.95,
    adaptation: str = "low_rank",
    group_by: str | None = None,
    backend: str = "cached",
    accuracy=None,
    metric: str | None = None,
    metrics=None,
    pool_metrics: bool | None = None,
    executor: str = "process",
    upper: bool | None = None,
):
    """Sample the posterior of a scaling law on a table of training runs.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        The runs (see :func:`bayescale.load_runs`); a path or frame is loaded with the defaults.
    card : str, Path, Card or None, default None
        Model card: built-in name (``bayescale.list_cards()``), a TOML path, or a card. None:
        the default law ensemble (:func:`bayescale.ensemble.fit_ensemble`: the cards of
        :func:`~bayescale.engines.ensemble.default_cards` weighted by stacking of rolling
        forecasts, with an extrapolation discrepancy); with ``group_by``, the same ensemble
        with every card pooled over the families
        (:func:`bayescale.engines.ensemble.fit_families_ensemble`).
    priors : Mapping, optional
        Prior overrides, e.g. ``{"alpha": "Beta(2, 5)"}``.
    draws, tune, chains : int
        Draws kept per chain, tuning steps per chain, number of chains.
    random_seed : int, default 0
        Seed; the same seed gives the same posterior.
    sampler : {"nutpie", "pymc"}
        NUTS implementation.
    strict : bool, default False
        Raise :class:`~bayescale.errors.ConvergenceError` on sampler problems instead of warning.
    progress : bool, default False
        Show the sampler's progress bar (on stderr).
    log_likelihood : bool, default True
        Store the pointwise log-likelihood (needed by PSIS-LOO).
    target_accept : float, default 0.95
        NUTS target acceptance rate. With low-rank adaptation, 0.8 left 1-3 divergences per fit
        on the Chinchilla runs and 0.9 an occasional single one on small or misspecified tables;
        0.95 costs about 20% more gradient steps, small next to the compile time.
    adaptation : {"low_rank", "diag"}, default "low_rank"
        nutpie's mass-matrix adaptation. Low-rank adaptation learns the remaining correlations
        (E with the amplitudes); measured on the Chinchilla runs it needs 6.5 instead of 43
        gradient steps per draw and gives 4x the bulk ESS. Ignored by ``sampler="pymc"``.
    group_by : str, optional
        A column labelling families of runs (e.g. ``"dataset_name"``): fit them all in one
        partially pooled model (:func:`bayescale.engines.pooled.fit_families`; nutpie only);
        the law parameters then carry a ``family`` dimension.
    backend : {"cached", "pymc-cfunc"}, default "cached"
        How nutpie's model is compiled. ``"cached"``: PyTensor's numba code, cached on disk
        (:mod:`bayescale.core.compiled`; on 240 runs a later process loads the model in about 0.5 s,
        imports aside, instead of compiling it in 9-17 s).
        ``"pymc-cfunc"``: nutpie's ``compile_pymc_model``, the former path (compiled once per
        process). Same posterior up to Monte Carlo error. Ignored by ``sampler="pymc"``.
    accuracy : Mapping, optional
        An accuracy metric. Without a card, the accuracy laws stacked on rolling forecasts with a
        latent extrapolation discrepancy
        (:func:`bayescale.engines.accuracy_ensemble.fit_accuracy_ensemble`; ``accuracy`` may then
        also hold ``cards``, ``holdout_fracs``, ``split_draws``...); with an accuracy card
        (``card="accuracy-direct"``, ``"accuracy-direct-nd"``, ``"accuracy-two-step"``) that law
        alone. Options:
        ``metric`` (required), ``via``, ``floor``, ``n_examples``, ``compute``, ``tasks``, passed
        to :func:`bayescale.engines.accuracy.fit_accuracy` with ``runs`` (the whole table).
    metric : str, optional
        The column of ``runs`` (a path or frame) that is the loss: the same fit as with
        ``bayescale.load_runs(runs, mapping={"loss": metric})``.
    metrics : str or sequence of str, optional
        Several metrics of the same runs, column names or glob patterns (``"loss_*"``): the runs
        are read long-form (:func:`bayescale.load_runs` with ``metrics=``) and the metrics are
        the families of one fit (``group_by="metric"``, also for a long-form
        :class:`~bayescale.Runs` passed with ``group_by="metric"``), answered per metric. One
        matched column is ``metric=``.
    pool_metrics : bool or None, default None
        With several metrics: True pools the card's ``[pooling]`` parameters (the exponents)
        across metrics, ``E``, ``A``, ``B`` and the noise per metric; False fits each metric
        on its own (the card with an empty ``[pooling]`` table: separate fits in one joint
        posterior, the same layout). None: False with a card (it forecast better on the 8
        over-training losses, see the README), True for the law ensemble (its pooled fit of
        families needs cards that pool).
    executor : {"process", "serial", "ray"}, default "process"
        Where the law ensemble's independent fits (members and rolling splits) run
        (:func:`bayescale.engines.executor.run_tasks`); the posterior is the same, bit for bit.
        ``"process"``: ``cores // chains`` worker processes, or this process when that is 1;
        ``"ray"``: Ray tasks (``pip install bayescale[ray]``; the cluster at ``RAY_ADDRESS``
        when set, else a local instance). One card is one fit: ignored.
    upper : bool or None, default None
        The law ensemble's upper-ladder members (each card also fitted to the runs at or
        above the median compute; :mod:`bayescale.engines.upper`). None: when the runs are
        enough to identify them; True: always; False: never. Only for the law ensemble of one
        table (no ``card``, no ``group_by``).

    Returns
    -------
    xarray.DataTree
        Groups ``posterior``, ``sample_stats``, ``observed_data``, ``constant_data`` and
        ``log_likelihood``; provenance (card, data hash, mapping, filters, versions, seed,
        timing, diagnostics) in the root attrs.

    References
    ----------
    Hoffman, M. D. & Gelman, A. (2014). The No-U-Turn Sampler. JMLR 15.

    Examples
    --------
    >>> import bayescale as bs
    >>> runs = bs.datasets.simulate(random_seed=0)
    >>> post = bs.fit(runs, card="chinchilla", draws=500, random_seed=1)  # doctest: +SKIP
    >>> float(post.posterior["alpha"].median())  # doctest: +SKIP
    0.35...
    """
    if accuracy is not None:  # an accuracy metric: bayescale.engines.accuracy(_ensemble)
        if group_by is not None or sampler != "nutpie" or metric or metrics:
            raise InputError("accuracy= takes its metric inside (accuracy={'metric': ...}); "
                             "no group_by, metric=, metrics=; sampler='nutpie'")
        if card is None:
            if priors:
                raise InputError("prior overrides need one card: pass card=NAME with priors")
            options = {"draws": draws, "tune": tune, "chains": chains, "executor": executor,
                       "random_seed": random_seed, "strict": strict, **dict(accuracy)}
            return fit_accuracy_ensemble(runs, **options)
        return fit_accuracy(
            runs, card=card, priors=priors, draws=draws, tune=tune, chains=chains,
            random_seed=random_seed, strict=strict, progress=progress,
            log_likelihood=log_likelihood, target_accept=target_accept, adaptation=adaptation,
            **dict(accuracy),
        )
    if metric is not None or metrics is not None:  # one loss column, or several metrics
        runs, group_by = metric_runs(runs, metric=metric, metrics=metrics, group_by=group_by)
    if group_by == METRIC:  # several metrics: pooled across metrics, or each on its own
        card, priors = metric_card(card, priors, pool_metrics)
    if upper is not None and (card is not None or group_by is not None):
        raise InputError("upper= applies to the law ensemble of one table (no card, no "
                         f"group_by), got card={getattr(card, 'name', card)!r}, "
                         f"group_by={group_by!r}")
    if card is None and group_by is None:
        if priors:
            raise InputError("prior overrides need one card: pass card=NAME with priors")
        return fit_ensemble(
            runs, draws=draws, tune=tune, chains=chains, random_seed=random_seed,
            sampler=sampler, strict=strict, log_likelihood=log_likelihood,
            progress=progress or None, executor=executor, upper=upper,
        )
    if card is None:  # with group_by: the law ensemble, every card pooled over the families
        if priors:
            raise InputError("prior overrides need one card: pass card=NAME with priors")
        if sampler != "nutpie":
            raise InputError(f"group_by needs sampler='nutpie', got {sampler!r}")
        return fit_families_ensemble(
            runs, group_by=group_by, draws=draws, tune=tune, chains=chains,
            random_seed=random_seed, strict=strict, log_likelihood=log_likelihood,
            progress=progress or None, executor=executor,
        )
    if group_by is not None:
        if sampler != "nutpie":
            raise InputError(f"group_by needs sampler='nutpie', got {sampler!r}")
        return fit_families(
            runs, group_by=group_by, card=card, priors=priors, draws=draws, tune=tune,
            chains=chains, random_seed=random_seed, strict=strict, progress=progress,
            log_likelihood=log_likelihood, target_accept=target_accept, adaptation=adaptation,
        )
    return fit_card(
        runs, card=card, priors=priors, draws=draws, tune=tune, chains=chains,
        random_seed=random_seed, sampler=sampler, strict=strict, progress=progress,
        log_likelihood=log_likelihood, target_accept=target_accept, adaptation=adaptation,
        backend=backend,
    )


def metric_runs(runs, *, metric, metrics, group_by):
    """``(runs, group_by)`` of a fit of ``metric=`` or ``metrics=``.

    One metric: the runs read with that column as the loss, ``group_by`` as given. Several: the
    long-form runs and ``group_by="metric"``.
    """
    several = metrics is not None and group_by in (None, METRIC)
    loaded = load_runs(runs, metric=metric, metrics=metrics,
                       group_by=None if several else group_by)
    if "metrics" in loaded.provenance:
        return loaded, METRIC
    return loaded, None if several else group_by


def metric_card(card, priors, pool):
    """``(card, priors)`` of a fit of several metrics (``group_by="metric"``).

    ``pool`` None: each metric on its own with a card (the card with an empty ``[pooling]``
    table), pooled across metrics for the law ensemble (whose members must pool); True: the
    card's ``[pooling]`` parameters pooled across metrics; False: each metric on its own.
    """
    if pool is not None and not isinstance(pool, bool):
        raise InputError(f"pool_metrics must be True, False or None; got {pool!r}")
    if pool or (pool is None and card is None):
        return card, priors
    if card is None:
        raise InputError(
            "pool_metrics=False needs one card (card=NAME, CLI --law): the law ensemble of "
            "several metrics is pooled; bayescale.backtest(runs, group_by='metric', "
            "separate=True) fits an ensemble per metric alone"
        )
    return replace(load_card(card, priors=priors), pooling={}), None
