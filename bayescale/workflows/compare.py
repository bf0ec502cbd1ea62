"""Compare scaling-law hypotheses on the same runs: PSIS-LOO side by side with a backtest.

Each card is fitted to all runs and scored by PSIS-LOO (how well it predicts a run like those it
saw), and, optionally, by an extrapolation backtest (how well it predicts the largest runs from
the smaller ones). The verdict says which law wins, by how many standard errors, and whether the
two scores agree.

References
----------
Vehtari, A., Gelman, A. & Gabry, J. (2017). Practical Bayesian model evaluation using
leave-one-out cross-validation and WAIC. Statistics and Computing 27.
Yao, Y., Vehtari, A., Simpson, D. & Gelman, A. (2018). Using stacking to average Bayesian
predictive distributions. Bayesian Analysis 13(3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayescale.core.cards import load_card
from bayescale.core.progress import tracker
from bayescale.core.runs import load_runs
from bayescale.engines.ensemble import forecast_weights
from bayescale.errors import InputError
from bayescale.scoring.reading import weights_reading
from bayescale.scoring.splits import DEFAULT_FRACS, rolling_splits
from bayescale.workflows.backtest import backtest as run_backtest
from bayescale.workflows.fit import fit

__all__ = ["ComparisonResult", "compare", "verdict"]

DEFAULT_CARDS = ("kaplan", "kaplan-linf", "chinchilla", "chinchilla-tied")
PARETO_K_BAD = 0.7
"""Pareto-k above which a run's PSIS-LOO estimate is unreliable (Vehtari et al. 2024)."""
DECISIVE_SE = 4.0
CLEAR_SE = 2.0


@dataclass(frozen=True)
class ComparisonResult:
    """PSIS-LOO table, backtest table and a plain-words verdict.

    Attributes
    ----------
    loo : pandas.DataFrame
        Index card; columns ``rank, elpd, se, elpd_diff, dse, weight, p_loo, n_bad_k, warning``
        (``elpd_diff`` relative to the best card, ``weight`` from stacking, ``n_bad_k`` the runs
        with Pareto-k above 0.7, ``warning`` ArviZ's flag).
    backtests : pandas.DataFrame
        Index card; ``lpd_mean``, ``coverage{p}`` per probability, ``median_abs_error``,
        ``n_test`` (empty when the backtest was skipped).
    verdict : str
        Which hypothesis wins and how clearly.
    winner : str
        Best card by PSIS-LOO.
    fits : dict
        ``{card: DataTree}`` of the full-data fits (not part of :meth:`to_dict`).
    weights : pandas.DataFrame or None
        Index card; ``forecast_weight`` (Bayesian stacking of rolling-origin forecasts, the
        law ensemble's weights, :mod:`bayescale.ensemble`) next to ``loo_weight`` (PSIS-LOO
        stacking). None when ``forecast=False``.
    reading : str
        The weights in plain words (empty without ``forecast``).
    """

    loo: pd.DataFrame
    backtests: pd.DataFrame
    verdict: str
    winner: str
    fits: dict = field(default_factory=dict, repr=False)
    weights: pd.DataFrame | None = None
    reading: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dictionary (tables as ``{card: {column: value}}``; fits excluded)."""

        def records(frame):
            return {
                str(k): {c: _plain(v) for c, v in row.items()} for k, row in frame.iterrows()
            }

        return {
            "winner": self.winner,
            "verdict": self.verdict,
            "loo": records(self.loo),
            "backtests": records(self.backtests),
            "weights": None if self.weights is None else records(self.weights),
            "reading": self.reading,
        }


def _plain(v):
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    return v


def _strength(z: float) -> str:
    if z > DECISIVE_SE:
        return "decisive"
    if z > CLEAR_SE:
        return "clear"
    return "not distinguishable"


def verdict(loo: pd.DataFrame, backtests: pd.DataFrame | None = None) -> tuple[str, str]:
    """Plain-words verdict from a LOO table (and optionally a backtest table).

    The best card by elpd is compared with the runner-up: a difference above 4 standard errors
    is "decisive", above 2 "clear", else the two are "not distinguishable". When backtests are
    given, the verdict says whether the best held-out lpd agrees with LOO. Pareto-k warnings are
    mentioned.

    Parameters
    ----------
    loo : pandas.DataFrame
        Index card; columns ``elpd``, ``elpd_diff``, ``dse`` and ``n_bad_k`` (see
        :class:`ComparisonResult`).
    backtests : pandas.DataFrame, optional
        Index card; column ``lpd_mean``.

    Returns
    -------
    tuple of str
        ``(winner, verdict)``.

    Examples
    --------
    >>> loo = pd.DataFrame({"elpd": [500.0, 487.7], "elpd_diff": [0.0, -12.3],
    ...                     "dse": [0.0, 3.1], "n_bad_k": [0, 0]},
    ...                    index=["chinchilla", "kaplan-linf"])
    >>> verdict(loo)[1]
    'chinchilla is preferred over kaplan-linf by LOO (elpd difference 12.3 ± 3.1, 4.0 se: clear).'
    """
    ranked = loo.sort_values("elpd", ascending=False)
    winner = str(ranked.index[0])
    parts = []
    if len(ranked) == 1:
        parts.append(f"{winner} is the only card compared (elpd {ranked['elpd'].iloc[0]:.1f}).")
    else:
        second = str(ranked.index[1])
        diff = float(ranked["elpd"].iloc[0] - ranked["elpd"].iloc[1])
        dse = float(ranked["dse"].iloc[1])
        z = diff / dse if dse > 0 else np.inf
        strength = _strength(round(z, 1))
        z_txt = f"{z:.1f} se" if np.isfinite(z) else "se 0"
        if strength == "not distinguishable":
            parts.append(
                f"{winner} and {second} are not distinguishable by LOO (elpd difference "
                f"{diff:.1f} ± {dse:.1f}, {z_txt}); {winner} ranks first."
            )
        else:
            parts.append(
                f"{winner} is preferred over {second} by LOO (elpd difference {diff:.1f} ± "
                f"{dse:.1f}, {z_txt}: {strength})."
            )
    if backtests is not None and len(backtests) and "lpd_mean" in backtests:
        bt = backtests["lpd_mean"].dropna().sort_values(ascending=False)
        if len(bt):
            best_bt = str(bt.index[0])
            if best_bt == winner:
                others = bt.drop(winner)
                tail = (
                    f" vs {others.iloc[0]:.2f} for {others.index[0]}" if len(others) else ""
                )
                parts.append(
                    f"The extrapolation backtest agrees (held-out lpd {bt.iloc[0]:.2f} per run"
                    f"{tail})."
                )
            else:
                w_lpd = bt.get(winner, np.nan)
                parts.append(
                    f"The extrapolation backtest disagrees: {best_bt} predicts the held-out "
                    f"largest runs best (lpd {bt.iloc[0]:.2f} per run vs {w_lpd:.2f} for "
                    f"{winner})."
                )
    bad = loo.loc[loo["n_bad_k"] > 0, "n_bad_k"]
    if len(bad):
        listed = ", ".join(f"{k} ({int(v)} runs)" for k, v in bad.items())
        parts.append(
            f"Pareto-k above {PARETO_K_BAD} for {listed}: their LOO estimates are unreliable."
        )
    return winner, " ".join(parts)


def compare(
    runs,
    *,
    cards=DEFAULT_CARDS,
    holdout_frac: float = 0.2,
    backtest: bool = True,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int = 0,
    priors=None,
    progress=None,
    forecast: bool = True,
) -> ComparisonResult:
    """Fit several cards to the same runs and compare them by PSIS-LOO and a backtest.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame, str or Path
        The runs.
    cards : sequence of str, Path or Card
        Cards to compare (default: Kaplan, Kaplan + L_inf, Chinchilla, Chinchilla with tied
        exponents). Names must be distinct.
    holdout_frac : float, default 0.2
        Held-out share of the largest runs by compute for the backtest.
    backtest : bool, default True
        Also run :func:`bayescale.backtest` for each card.
    draws, tune, chains : int
        Sampler settings of every fit.
    random_seed : int, default 0
        Seed of every fit.
    priors : Mapping, optional
        ``{card name: {parameter: prior}}`` overrides per card.
    progress : bool or callable, optional
        ``True`` draws one progress bar over the fits on a terminal's stderr; a callable is
        called as ``progress(done, total)`` after each fit (see :mod:`bayescale.core.progress`).
    forecast : bool, default True
        Also weight the cards by stacking of rolling-origin forecasts (the law ensemble's
        weights, :func:`bayescale.engines.ensemble.forecast_weights`), shown next to the LOO
        weights with a plain-words reading: LOO scores interpolation, the forecasts
        extrapolation.

    Returns
    -------
    ComparisonResult

    Raises
    ------
    InputError
        For fewer than two cards, repeated card names, or prior overrides for a card not compared.

    References
    ----------
    Vehtari, Gelman & Gabry (2017), Statistics and Computing 27; Yao et al. (2018), Bayesian
    Analysis 13(3).

    Examples
    --------
    >>> import bayescale as bs
    >>> res = compare(bs.datasets.simulate(random_seed=0), cards=("kaplan", "chinchilla"),
    ...               draws=500, tune=500, chains=2)  # doctest: +SKIP
    >>> res.winner  # doctest: +SKIP
    'chinchilla'
    """
    import arviz_stats as azs


    priors = dict(priors or {})
    loaded = [load_card(c) for c in cards]
    names = [c.name for c in loaded]
    if len(loaded) < 2:
        raise InputError(f"compare needs at least two cards, got {names}")
    if len(set(names)) != len(names):
        raise InputError(f"card names must be distinct, got {names}")
    unknown = sorted(set(priors) - set(names))
    if unknown:
        raise InputError(
            f"prior overrides given for cards not compared: {unknown}; compared: {names}"
        )
    runs = load_runs(runs)
    fits, loos, bts = {}, {}, {}

    loaded = [card.with_priors(priors.get(card.name)) for card in loaded]
    n_splits = len(rolling_splits(runs, fracs=DEFAULT_FRACS,
                                  min_train=max(c.n_params for c in loaded) + 1)[0])
    n_fits = len(loaded) * (1 + (1 if backtest else 0) + (n_splits if forecast else 0))
    with tracker(progress, total=n_fits, description="compare") as advance:
        for card in loaded:
            fits[card.name] = fit(runs, card=card, draws=draws, tune=tune, chains=chains,
                                  random_seed=random_seed)
            advance()
            loos[card.name] = azs.loo(fits[card.name], pointwise=True)
            if backtest:
                bts[card.name] = run_backtest(
                    runs, card=card, holdout_frac=holdout_frac, method="bayes", draws=draws,
                    tune=tune, chains=chains, random_seed=random_seed,
                )
                advance()
        info = None
        if forecast and n_splits:

            info = forecast_weights(runs, loaded, chains=chains, random_seed=random_seed,
                                    advance=advance)
    table = azs.compare(loos, method="stacking", round_to="none")
    loo = pd.DataFrame(
        {
            "rank": table["rank"].astype(int),
            "elpd": table["elpd"].astype(float),
            "se": table["se"].astype(float),
            "elpd_diff": table["elpd_diff"].astype(float),
            "dse": table["dse"].astype(float),
            "weight": table["weight"].astype(float),
            "p_loo": table["p"].astype(float),
            "n_bad_k": [int((loos[k].pareto_k.values > PARETO_K_BAD).sum()) for k in table.index],
            "warning": [bool(loos[k].warning) for k in table.index],
        },
        index=pd.Index([str(k) for k in table.index], name="card"),
    )
    rows = {}
    for name, res in bts.items():
        rows[name] = {
            "lpd_mean": res.lpd_mean,
            **{f"coverage{p * 100:.10g}": c for p, c in res.coverage.items()},
            "median_abs_error": res.median_abs_error,
            "n_test": res.n_test,
        }
    backtests = pd.DataFrame.from_dict(rows, orient="index")
    backtests.index.name = "card"
    winner, text = verdict(loo, backtests if backtest else None)
    weights, reading = None, ""
    if info is not None:

        loo_w = {k: float(loo.loc[k, "weight"]) for k in names}
        weights = pd.DataFrame(
            # a card whose split fits never converged is left out of the weights (weight 0)
            {"forecast_weight": [info["weights"].get(k, 0.0) for k in names],
             "loo_weight": [loo_w[k] for k in names],
             "forecast_lpd": [info["card_forecast_lpd"].get(k, float("nan")) for k in names]},
            index=pd.Index(names, name="card"),
        )
        reading = weights_reading(info, loo_w)
    return ComparisonResult(loo=loo, backtests=backtests, verdict=text, winner=winner, fits=fits,
                            weights=weights, reading=reading)
