"""Extrapolation backtests: fit on the smaller runs, score the predictions for the largest ones.

The runs are split by compute: everything above a cutoff (or the top fraction by compute) is held
out, the law is fitted on the rest (Bayesian posterior, or the Huber point fit with bootstrap as a
baseline) and each held-out run is scored under the fit's predictive distribution of log loss,
the mixture over draws ``s`` of the card's noise model around the law,

.. math:: p(y) = \\frac{1}{S} \\sum_s f\\big(y; \\mu_s(N, D), \\sigma_s, \\nu_s\\big),

by its log predictive density, whether it falls inside the central predictive intervals, and the
error of the predictive median. Intervals are exact quantiles of the mixture (bisection on the
mixture CDF), so they carry no Monte Carlo noise. Repeating the backtest at several cutoffs
gives a calibration curve: nominal against observed coverage.

References
----------
Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and
estimation. JASA 102(477).
Besiroglu, T. et al. (2024). Chinchilla Scaling: A replication attempt. arXiv:2404.10102.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayescale.core.cards import load_card
from bayescale.core.progress import tracker
from bayescale.core.runs import METRIC, load_runs
from bayescale.engines.discrepancy import estimate_discrepancy
from bayescale.engines.ensemble import default_cards, fit_families_ensemble
from bayescale.engines.pointfit import point_fit
from bayescale.engines.pooled import fit_families
from bayescale.errors import InputError
from bayescale.fits.families import family_view
from bayescale.fits.layout import draws as draws_of
from bayescale.fits.layout import provenance, runs_of
from bayescale.fits.members import ensemble_info
from bayescale.fits.params import law_params
from bayescale.fits.view import read
from bayescale.scoring.calibration import (
    bias_fraction_below,
    crps,
    pit,
    pit_uniformity,
)
from bayescale.scoring.discrepancy import (
    as_tau,
    extrapolation_decades,
    inflated_scale,
    paired_drift,
)
from bayescale.scoring.forecast import DEFAULT_PROBS, predictive_scores, split_by_compute
from bayescale.scoring.forecast import fit_predictive as _fit_predictive
from bayescale.scoring.splits import split_families
from bayescale.workflows.fit import fit

__all__ = [
    "BacktestResult",
    "backtest",
    "calibration",
    "pools_families",
    "predictive_scores",
    "score_fit",
    "split_by_compute",
]

METHODS = ("bayes", "mle")


def _label(p: float) -> str:
    """Column label of an interval probability: 0.9 -> "90", 0.975 -> "97.5"."""
    return f"{100 * p:.10g}"


@dataclass(frozen=True)
class BacktestResult:
    """Scores of a fit's predictions for held-out runs.

    Attributes
    ----------
    card : str
        Card name.
    method : str
        ``"bayes"`` (posterior) or ``"mle"`` (Huber point fit with bootstrap).
    cutoff : float
        Compute threshold in FLOPs: runs with ``C > cutoff`` were held out.
    n_train, n_test : int
        Runs fitted and runs held out.
    table : pandas.DataFrame
        One row per held-out run: ``N, D, C, loss, median`` (predictive median of the loss),
        ``lpd`` (log predictive density of the observed log loss), ``abs_error``
        (``|loss - median|``), ``pit`` (the predictive CDF at the observed loss: uniform on
        [0, 1] when calibrated), ``crps`` (continuous ranked probability score of the log loss,
        nats; lower is better), ``pi{p}_lower``/``pi{p}_upper`` (central predictive interval of
        the loss) and ``covered{p}`` for each probability, ``p`` in percent (``pi90_lower``).
    coverage : dict of float to float
        Fraction of held-out runs inside each central interval.
    lpd_mean : float
        Mean log predictive density per held-out run (log-loss scale; higher is better).
    median_abs_error : float
        Median over held-out runs of ``|loss - predictive median|`` (nats).
    crps_mean : float
        Mean CRPS of the held-out log losses (nats; lower is better): the whole predictive
        distribution scored, as the log score, but robust to a single far miss.
    below_median : float
        Share of held-out runs below the predictive median (PIT < 0.5): 0.5 when the centre is
        unbiased, above when the forecasts were pessimistic.
    diagnostics : dict or None
        The fit's sampler diagnostics (Bayesian) or optimiser record (point fit), plus
        ``noise``: posterior (or bootstrap) medians of ``sigma`` (and ``nu``).
    probs : tuple of float
        Interval probabilities scored.
    coverage_calibrated, lpd_mean_calibrated : dict, float or None
        With ``discrepancy=True``: coverage and mean log predictive density of the same held-out
        runs with the noise scale inflated by the discrepancy ``tau`` (None otherwise).
    tau : float or None
        The discrepancy estimated on the training runs only (None without ``discrepancy``).
    discrepancy : dict or None
        :meth:`bayescale.scoring.discrepancy.Discrepancy.to_dict` of that estimate, without its
        table.
    weights : dict or None
        The law ensemble's stacking weights (card -> weight), fitted on the training runs only
        (None for one card). ``tau`` is then the ensemble's discrepancy, already applied in
        the scores.
    validated_decades : float or None
        The largest extrapolation distance (decades of compute) the ensemble's nested rolling
        splits validated (None for one card).
    convergence : dict or None
        For the ensemble: which of its fits on the training runs were refitted to converge,
        which split fits were left out of the weights and which cards dropped, and why (the
        ensemble record's ``convergence``; None for one card).
    group_by : str or None
        For a backtest of families (``group_by=``): the column that labels them. Each family
        then holds out its own largest runs; ``table`` has ``family`` and ``method``
        (``pooled``, or ``separate`` for a family fitted alone) columns, and the scores above
        are those of the pooled fit, or of the families fitted alone when no pooled fit was
        made (several metrics with the law ensemble, see :func:`pools_families`).
    families : pandas.DataFrame or None
        For a backtest of families: one row per family and method, ``n_train``, ``n_test``,
        ``lpd_mean``, ``coverage{p}`` for each interval probability ``p`` (in percent:
        ``coverage90``), ``mean_abs_error``.
    lack_of_fit, drift : dict or None
        The law ensemble's lack-of-fit test on the training runs
        (:func:`bayescale.scoring.discrepancy.lack_of_fit`) and the drift it gave the
        forecasts (``mean``, ``sd`` per decade; 0 unless flagged). None for one card.
    """

    card: str
    method: str
    cutoff: float
    n_train: int
    n_test: int
    table: pd.DataFrame
    coverage: dict
    lpd_mean: float
    median_abs_error: float
    diagnostics: dict | None
    probs: tuple = field(default=DEFAULT_PROBS)
    coverage_calibrated: dict | None = None
    lpd_mean_calibrated: float | None = None
    tau: float | None = None
    discrepancy: dict | None = None
    weights: dict | None = None
    validated_decades: float | None = None
    convergence: dict | None = None
    group_by: str | None = None
    families: pd.DataFrame | None = None
    lack_of_fit: dict | None = None
    drift: dict | None = None

    @property
    def crps_mean(self) -> float:
        """Mean CRPS of the held-out runs (of the headline fit in a backtest of families)."""
        return float(self._scored()["crps"].mean())

    @property
    def below_median(self) -> float:
        """Share of held-out runs below the predictive median (PIT < 0.5)."""
        return bias_fraction_below(self._scored()["pit"].to_numpy())

    def _scored(self) -> pd.DataFrame:
        if self.families is not None:
            return self.table[self.table["method"] == headline_method(self.table)]
        return self.table

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the table as a list of records, coverage keyed by probability).

        Returns
        -------
        dict
        """
        out = {
            "card": self.card,
            "method": self.method,
            "cutoff": None if self.cutoff is None else float(self.cutoff),
            "n_train": int(self.n_train),
            "n_test": int(self.n_test),
            "probs": [float(p) for p in self.probs],
            "coverage": {f"{p:g}": float(c) for p, c in self.coverage.items()},
            "lpd_mean": float(self.lpd_mean),
            "median_abs_error": float(self.median_abs_error),
            "diagnostics": self.diagnostics,
            "table": json.loads(self.table.to_json(orient="records")),
        }
        if {"pit", "crps"} <= set(self.table.columns):  # scored by this version
            out["crps_mean"] = self.crps_mean
            out["below_median"] = self.below_median
            out["pit_uniformity"] = pit_uniformity(self._scored()["pit"].to_numpy())
        if self.tau is not None and self.weights is None:
            out["tau"] = float(self.tau)
            out["coverage_calibrated"] = {
                f"{p:g}": float(c) for p, c in (self.coverage_calibrated or {}).items()
            }
            out["lpd_mean_calibrated"] = float(self.lpd_mean_calibrated)
            out["discrepancy"] = self.discrepancy
        if self.weights is not None:
            out["weights"] = {k: float(v) for k, v in self.weights.items()}
            out["validated_decades"] = float(self.validated_decades)
            out["tau"] = float(self.tau)
            out["lack_of_fit"] = None if self.lack_of_fit is None else bool(
                self.lack_of_fit["flag"])
            out["lack_of_fit_evidence"] = (None if self.lack_of_fit is None
                                           else {**self.lack_of_fit, "drift": self.drift})
            if self.convergence is not None:
                out["convergence"] = self.convergence
        if self.families is not None:
            out["group_by"] = self.group_by
            out["families"] = json.loads(self.families.to_json(orient="records"))
        return out


def score_fit(fit, test, *, probs=DEFAULT_PROBS, discrepancy="auto") -> pd.DataFrame:
    """Score held-out runs under a fit's predictive distribution.

    Parameters
    ----------
    fit : xarray.DataTree
        A Bayesian fit (:func:`bayescale.fit`) or point fit (:func:`bayescale.point_fit`).
    test : Runs or pandas.DataFrame
        Held-out runs with ``N``, ``D``, ``C`` and ``loss`` (and ``U`` when the law reads it).
    probs : sequence of float
        Central interval probabilities.
    discrepancy : "auto", float, Discrepancy or None, default "auto"
        ``"auto"`` also applies a law ensemble's drift when its runs bend away from its laws
        (:attr:`bayescale.fits.Fit.drift`: log loss shifted by ``m_s * Delta``).
        Inflate each draw's noise scale to ``sqrt(sigma**2 + (tau * Delta)**2)``, ``Delta`` the
        compute decades beyond the fit's largest run (:mod:`bayescale.scoring.discrepancy`).
        ``"auto"``:
        the fit's own calibrated ``tau`` (a law ensemble's), none for a single card.

    Returns
    -------
    pandas.DataFrame
        The per-run table of :class:`BacktestResult`.
    """
    frame = test.frame if hasattr(test, "frame") else test
    N, D = frame["N"].to_numpy(float), frame["D"].to_numpy(float)
    loss = frame["loss"].to_numpy(float)
    extra = {k: frame[k].to_numpy(float) for k in ("U",) if k in frame}
    mu, sigma, nu, family = _fit_predictive(fit, N, D, **extra)
    tau = as_tau(discrepancy, fit)
    drift = paired_drift(*read(fit).drift, mu.shape[0]) if discrepancy == "auto" else None
    if tau > 0 or drift is not None:
        delta = extrapolation_decades(frame["C"].to_numpy(float), runs_of(fit)["C"].max())
        sigma = inflated_scale(np.asarray(sigma, float)[:, None], tau, delta[None, :])
        if drift is not None:  # the runs bend away from the laws: forecasts drift beyond them
            mu = mu + drift[:, None] * delta[None, :]
    y = np.log(loss)
    sc = predictive_scores(y, mu, sigma, family=family, nu=nu, probs=probs)
    median = np.exp(sc["median"])
    out = {
        "N": N,
        "D": D,
        "C": frame["C"].to_numpy(float),
        "loss": loss,
        "median": median,
        "lpd": sc["lpd"],
        "abs_error": np.abs(loss - median),
        "pit": pit(y, mu, sigma, family=family, nu=nu),
        "crps": crps(y, mu, sigma, family=family, nu=nu),
    }
    for i, p in enumerate(probs):
        lab = _label(p)
        out[f"pi{lab}_lower"] = np.exp(sc["lower"][i])
        out[f"pi{lab}_upper"] = np.exp(sc["upper"][i])
        out[f"covered{lab}"] = (y >= sc["lower"][i]) & (y <= sc["upper"][i])
    table = pd.DataFrame(out)
    if "run" in frame:
        table.insert(0, "run", frame["run"].astype(str).to_numpy())
    return table


def backtest(
    runs,
    *,
    card=None,
    holdout_frac: float = 0.2,
    cutoff: float | None = None,
    method: str = "bayes",
    probs=DEFAULT_PROBS,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    n_bootstrap: int = 100,
    priors=None,
    discrepancy: bool = False,
    discrepancy_fracs=(0.1, 0.2, 0.3),
    group_by: str | None = None,
    separate: bool = False,
    pool_metrics: bool | None = None,
    executor: str = "process",
    upper: bool | None = None,
) -> BacktestResult:
    """Hold out the largest runs by compute, fit the rest and score the predictions.

    One entry for every kind of fit: one card, the law ensemble, and (with ``group_by``) one
    card or the ensemble pooled over families, each family holding out its own largest runs.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        All runs.
    card : str, Path, Card or None, default None
        Model card. None: the default law ensemble (``method="bayes"``), fitted on the training
        runs alone with :func:`bayescale.ensemble.fit_ensemble`, so its weights, discrepancy and
        validated distance come from nested rolling splits of the training runs only (the
        held-out runs never inform them); ``method="mle"`` then uses the chinchilla card.
    holdout_frac : float, default 0.2
        Share of runs to hold out (the largest by compute); see :func:`split_by_compute`.
    cutoff : float, optional
        Hold out the runs with ``C > cutoff`` FLOPs instead.
    method : {"bayes", "mle"}, default "bayes"
        ``"bayes"``: posterior predictive of :func:`bayescale.fit`. ``"mle"``: the Huber point fit
        of :func:`bayescale.point_fit` with ``n_bootstrap`` refits, each a Normal predictive with
        its robust residual scale (the Hoffmann/Epoch method).
    probs : sequence of float, default (0.5, 0.8, 0.9, 0.95)
        Central predictive interval probabilities to score.
    draws, tune, chains : int
        Sampler settings of the Bayesian fit.
    random_seed : int, default 0
        Seed of the fit (sampler or bootstrap).
    n_bootstrap : int, default 100
        Bootstrap refits of the point fit (``method="mle"``).
    priors : Mapping, optional
        Prior overrides of the Bayesian fit.
    discrepancy : bool, default False
        Also score with an extrapolation discrepancy (``method="bayes"`` only), estimated by
        :func:`bayescale.engines.discrepancy.estimate_discrepancy` on the *training* runs alone
        (nested
        rolling backtests at ``discrepancy_fracs``), so the held-out runs never inform ``tau``.
        Adds ``coverage_calibrated``, ``lpd_mean_calibrated``, ``tau`` and table columns
        ``lpd_calibrated``, ``pi{p}_lower_calibrated``, ``pi{p}_upper_calibrated``,
        ``covered{p}_calibrated``; the uncalibrated fields are unchanged.
    discrepancy_fracs : sequence of float, default (0.1, 0.2, 0.3)
        Held-out fractions of the nested backtests (of the training runs).
    group_by : str, optional
        A column labelling families of runs: the top ``holdout_frac`` of each family by compute
        is held out, the pooled fit (:func:`bayescale.fit` with ``group_by``; the pooled law
        ensemble without a card, its weights and discrepancy learned on the training runs) is
        scored on each family's held-out runs through that family's view. ``method="bayes"``
        and ``holdout_frac`` only. Several metrics (``group_by="metric"``) without a card
        are not pooled unless ``pool_metrics`` says so: each metric is forecast by its own
        law ensemble (:func:`pools_families`).
    separate : bool, default False
        With ``group_by``: also fit each family alone on its training runs and score it the
        same way (``method`` column ``separate``), the comparison that says whether pooling
        helps. Always done when no pooled fit is made.
    pool_metrics : bool or None, default None
        With ``group_by="metric"``: True fits the metrics pooled (and scores that fit), False
        only each metric alone, None pooled with a card and each metric alone with the law
        ensemble (:func:`pools_families`). Ignored for other families, which are always
        pooled.
    executor : {"process", "serial", "ray"}, default "process"
        Where the nested law ensemble's independent fits run (:func:`bayescale.fit`); the
        scores are the same, bit for bit.
    upper : bool or None, default None
        The nested law ensemble's upper-ladder members (:func:`bayescale.fit`), decided on the
        training runs. Only for the law ensemble of one table.

    Returns
    -------
    BacktestResult

    Raises
    ------
    InputError
        For an unknown method, bad probabilities, or a split that leaves too few runs to fit
        (fewer than the card's parameters plus one) or none to score.

    References
    ----------
    Gneiting & Raftery (2007), JASA 102(477) (log score, interval coverage).

    Examples
    --------
    >>> import bayescale as bs
    >>> res = backtest(bs.datasets.simulate(random_seed=0), method="mle", n_bootstrap=20)
    >>> res.n_test, sorted(res.coverage)
    (9, [0.5, 0.8, 0.9, 0.95])
    """

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    if upper is not None and (card is not None or method != "bayes" or group_by is not None):
        raise InputError("upper= applies to the law ensemble of one table (method 'bayes', "
                         "no card, no group_by)")
    if group_by is not None:
        if method != "bayes" or cutoff is not None or discrepancy:
            raise InputError("a backtest of families (group_by) takes method 'bayes' and "
                             "holdout_frac only (no cutoff or discrepancy)")
        return _backtest_families(
            runs, group_by=group_by, card=card, holdout_frac=holdout_frac,
            pooled=pools_families(group_by, card=card, pool_metrics=pool_metrics),
            separate=separate, probs=probs, draws=draws, tune=tune, chains=chains,
            random_seed=random_seed, priors=priors, executor=executor,
        )
    if discrepancy and method != "bayes":
        raise InputError(f"discrepancy needs method 'bayes', got method {method!r}")
    probs = tuple(float(p) for p in probs)
    if not probs or not all(0 < p < 1 for p in probs):
        raise InputError(f"probs must be probabilities strictly between 0 and 1, got {probs!r}")
    ensemble = card is None and method == "bayes"
    if ensemble:

        if priors:
            raise InputError("prior overrides need one card: pass card=NAME with priors")
        if discrepancy:
            raise InputError("the ensemble always learns its discrepancy; discrepancy=True "
                             "applies to one card")
    else:
        card_obj = load_card("chinchilla" if card is None else card, priors=priors)
    runs = load_runs(runs)
    if ensemble:
        members = [load_card(c) for c in default_cards(runs)]
        card_obj = max(members, key=lambda c: c.n_params)
    mask, cut = split_by_compute(
        runs.C, holdout_frac=holdout_frac, cutoff=cutoff, min_train=card_obj.n_params + 1
    )
    train, test = runs.subset(~mask), runs.subset(mask)
    if method == "bayes":

        post = fit(train, card=None if ensemble else card_obj, draws=draws, tune=tune,
                   chains=chains, random_seed=random_seed, log_likelihood=False,
                   executor=executor, upper=upper)
        diagnostics = provenance(post).get("diagnostics")
    else:

        post = point_fit(train, card=card_obj, n_bootstrap=n_bootstrap, random_seed=random_seed)
        prov = provenance(post)
        diagnostics = {"point_estimate": prov["point_estimate"], "optimizer": prov["sampler"]}
    if ensemble:

        _, _, mix_noise = law_params(post)
        noise = {f"{k}_median": float(np.median(mix_noise[k])) for k in ("sigma", "nu")
                 if mix_noise.get(k) is not None}
    else:
        noise = {
            f"{k}_median": float(np.median(v))
            for k, v in draws_of(
                post, var_names=[k for k in ("sigma", "nu") if k in post.posterior]
            ).items()
        }
    diagnostics = {**(diagnostics or {}), "noise": noise}
    table = score_fit(post, test, probs=probs)
    extra = {}
    if ensemble:
        info = ensemble_info(post)
        extra = {"weights": info["weights"], "validated_decades": info["validated_decades"],
                 "tau": info["tau"], "lack_of_fit": info.get("lack_of_fit"),
                 "drift": info.get("drift"), "convergence": info.get("convergence")}
    if discrepancy:

        disc = estimate_discrepancy(train, card=card_obj, holdout_fracs=discrepancy_fracs,
                                    draws=draws, tune=tune, chains=chains,
                                    random_seed=random_seed)
        cal = score_fit(post, test, probs=probs, discrepancy=disc)
        cols = ["lpd"] + [
            f"{k}{_label(p)}{b}" for p in probs
            for k, b in (("pi", "_lower"), ("pi", "_upper"), ("covered", ""))
        ]
        table = table.assign(**{f"{c}_calibrated": cal[c].to_numpy() for c in cols})
        summary = disc.to_dict()
        summary.pop("table")
        extra = {
            "coverage_calibrated": {p: float(cal[f"covered{_label(p)}"].mean()) for p in probs},
            "lpd_mean_calibrated": float(cal["lpd"].mean()),
            "tau": float(disc.tau),
            "discrepancy": summary,
        }
    return BacktestResult(
        card="ensemble" if ensemble else card_obj.name,
        method=method,
        cutoff=cut,
        n_train=len(train),
        n_test=len(test),
        table=table,
        coverage={p: float(table[f"covered{_label(p)}"].mean()) for p in probs},
        lpd_mean=float(table["lpd"].mean()),
        median_abs_error=float(table["abs_error"].median()),
        diagnostics=diagnostics,
        probs=probs,
        **extra,
    )


def pools_families(group_by, *, card=None, pool_metrics=None) -> bool:
    """Whether a backtest of families makes (and scores) a fit pooled over the families.

    Families other than metrics are always pooled (that fit is the question). Several metrics
    (``group_by="metric"``): ``pool_metrics`` when given; by default pooled with a card (one
    cheap joint fit, scored next to each metric alone) and not with the law ensemble, whose
    per-metric ensembles forecast the 8 over-training losses better than the ensemble pooled
    across metrics (mean held-out log score 1.74 against 1.40, 90% coverage 0.91 against
    0.79; README "Several metrics of the same runs") at less cost.

    Parameters
    ----------
    group_by : str
        The column labelling the families.
    card : str, Path, Card or None, default None
        The backtest's card; None for the law ensemble.
    pool_metrics : bool or None, default None
        As in :func:`backtest`.

    Returns
    -------
    bool

    Examples
    --------
    >>> pools_families("metric"), pools_families("metric", card="chinchilla")
    (False, True)
    >>> pools_families("metric", pool_metrics=True), pools_families("dataset")
    (True, True)
    """
    if pool_metrics is not None and not isinstance(pool_metrics, bool):
        raise InputError(f"pool_metrics must be True, False or None; got {pool_metrics!r}")
    if group_by != METRIC:
        return True
    return card is not None if pool_metrics is None else pool_metrics


def headline_method(table) -> str:
    """The method whose scores head a backtest of families: ``pooled`` when it was fitted."""
    return "pooled" if (table["method"] == "pooled").any() else "separate"


def _backtest_families(runs, *, group_by, card, holdout_frac, pooled, separate, probs, draws,
                       tune, chains, random_seed, priors, executor) -> BacktestResult:
    """Per-family backtest of the pooled fit and/or each family fitted alone.

    Each family is split by compute on its own
    (:func:`bayescale.scoring.splits.split_families`), so every family is extrapolated whatever
    its compute range. The pooled fit (``pooled``) is made on all training runs at once and
    scored on each family's held-out runs through its family view; each family fitted alone
    (``separate``, or when nothing is pooled) on its own training runs.
    """
    if card is None and priors:
        raise InputError("prior overrides need one card: pass card=NAME with priors")
    card = None if card is None else load_card(card, priors=priors)
    runs = load_runs(runs, group_by=group_by)
    test = split_families(runs, holdout_frac=holdout_frac)
    train_runs, test_runs = runs.subset(~test), runs.subset(test)
    probs = tuple(float(p) for p in probs)
    settings = dict(draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    pooled_fit = None
    if pooled and card is None:

        pooled_fit = fit_families_ensemble(train_runs, group_by=group_by, split_draws=draws,
                                           split_tune=tune, log_likelihood=False,
                                           executor=executor, **settings)
    elif pooled:
        pooled_fit = fit_families(train_runs, group_by=group_by, card=card, **settings)
    tables = []
    fam_test = test_runs.frame["family"].to_numpy(str)
    fam_train = train_runs.frame["family"].to_numpy(str)
    for lab in np.unique(fam_test):
        held = test_runs.subset(fam_test == lab)
        fits = {} if pooled_fit is None else {"pooled": family_view(pooled_fit, lab)}
        if separate or pooled_fit is None:
            fits["separate"] = fit(train_runs.subset(fam_train == lab), card=card,
                                   log_likelihood=False, executor=executor, **settings)
        for method, f in fits.items():
            t = score_fit(f, held, probs=probs)
            t.insert(0, "method", method)
            t.insert(0, "family", lab)
            t["n_train"] = int((fam_train == lab).sum())
            tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    head = table[table["method"] == headline_method(table)]
    extra = {} if pooled_fit is None else _pooled_record(pooled_fit)
    return BacktestResult(
        card=extra.pop("card", "ensemble" if card is None else card.name),
        method="bayes",
        cutoff=None,
        n_train=len(train_runs),
        n_test=len(test_runs),
        table=table,
        coverage={p: float(head[f"covered{_label(p)}"].mean()) for p in probs},
        lpd_mean=float(head["lpd"].mean()),
        median_abs_error=float(head["abs_error"].median()),
        diagnostics=extra.pop("diagnostics", None),
        probs=probs,
        group_by=str(group_by),
        families=family_scores(table, probs=probs),
        **extra,
    )


def family_scores(table, *, probs=DEFAULT_PROBS) -> pd.DataFrame:
    """One row per family and method of a backtest of families' table: ``n_train``,
    ``n_test``, ``lpd_mean``, ``coverage{p}`` per probability (percent), ``mean_abs_error``."""
    scores = dict(n_train=("n_train", "first"), n_test=("loss", "size"), lpd_mean=("lpd", "mean"))
    for p in probs:
        if f"covered{_label(p)}" in table:
            scores[f"coverage{_label(p)}"] = (f"covered{_label(p)}", "mean")
    scores["mean_abs_error"] = ("abs_error", "mean")
    return table.groupby(["family", "method"], sort=True).agg(**scores).reset_index()


def _pooled_record(pooled) -> dict:
    """Card name, diagnostics and (for the pooled law ensemble) what it learned on the
    training runs: the fields of :class:`BacktestResult` taken from the pooled fit."""
    view = read(pooled)
    out = {"card": view.name, "diagnostics": view.diagnostics}
    if view.is_mixture:
        info = view.ensemble_info
        out.update(weights=info["weights"], tau=info["tau"],
                   validated_decades=info["validated_decades"],
                   convergence=info.get("convergence"))
    return out


def calibration(
    runs,
    *,
    card="chinchilla",
    holdout_fracs=(0.1, 0.2, 0.3, 0.4),
    method: str = "bayes",
    probs=DEFAULT_PROBS,
    progress=None,
    **fit_kwargs,
) -> pd.DataFrame:
    """Calibration curve from rolling compute cutoffs: one backtest per held-out fraction.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        All runs.
    card : str, Path or Card, default "chinchilla"
        Model card.
    holdout_fracs : sequence of float, default (0.1, 0.2, 0.3, 0.4)
        Held-out fractions (each sets a compute cutoff).
    method : {"bayes", "mle"}
        As :func:`backtest`.
    probs : sequence of float
        Nominal central interval probabilities.
    progress : bool or callable, optional
        ``True`` draws one progress bar over the backtests on a terminal's stderr; a callable is
        called as ``progress(done, total)`` after each (see :mod:`bayescale.core.progress`).
    **fit_kwargs
        Passed to :func:`backtest` (``draws``, ``tune``, ``chains``, ``random_seed``,
        ``n_bootstrap``, ``priors``).

    Returns
    -------
    pandas.DataFrame
        Long table with columns ``holdout_frac, cutoff, prob`` (nominal), ``coverage``
        (observed), ``n_test``, ``n_train``, ``lpd_mean``, ``method``.

    Examples
    --------
    >>> import bayescale as bs
    >>> cal = calibration(bs.datasets.simulate(random_seed=0), method="mle",
    ...                   holdout_fracs=(0.2, 0.4), n_bootstrap=10)
    >>> cal.shape
    (8, 8)
    """

    holdout_fracs = tuple(holdout_fracs)
    rows = []
    with tracker(progress, total=len(holdout_fracs), description="calibration") as advance:
        results = []
        for frac in holdout_fracs:
            results.append(backtest(runs, card=card, holdout_frac=frac, method=method,
                                    probs=probs, **fit_kwargs))
            advance()
    for frac, res in zip(holdout_fracs, results, strict=True):
        for p in res.probs:
            rows.append(
                {
                    "holdout_frac": float(frac),
                    "cutoff": res.cutoff,
                    "prob": p,
                    "coverage": res.coverage[p],
                    "n_test": res.n_test,
                    "n_train": res.n_train,
                    "lpd_mean": res.lpd_mean,
                    "method": method,
                }
            )
    return pd.DataFrame(rows)
