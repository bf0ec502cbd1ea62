"""Several metrics of the same runs: read long-form, fitted pooled across metrics, backtested.

Eight validation losses of the same 104 runs (Gadre et al. 2024) are eight families of runs that
share ``N`` and ``D``. :func:`bayescale.load_runs` with ``metrics=`` reads them long-form (one row
per run and metric, the metric's name as the family), so the pooled-families machinery fits them
(``group_by="metric"``; :func:`bayescale.fit` with ``pool_metrics``: exponents partially pooled
across metrics, or each metric on its own, the default with a card) and answers per metric.
:func:`backtest_metrics` holds out each metric's largest runs and scores every metric fitted
alone, against the pooled fit with a card (or ``pool_metrics=True``), the comparison that chose
that default (see the README); without a card each metric is forecast by its own law ensemble.

References
----------
Gadre, S. Y. et al. (2024). Language models scale reliably with over-training and on downstream
tasks. arXiv:2403.08540.
"""

from __future__ import annotations

from bayescale.core.runs import METRIC, load_runs
from bayescale.workflows.backtest import backtest

__all__ = ["backtest_metrics"]


def backtest_metrics(runs, *, metric=None, metrics=None, card=None, holdout_frac: float = 0.2,
                     separate: bool = True, **kwargs):
    """Backtest one metric, or every metric pooled against each metric fitted alone.

    Parameters
    ----------
    runs : pandas.DataFrame, str or Path
        The runs table with the metric columns.
    metric, metrics : optional
        As in :func:`bayescale.load_runs`: one loss column, or several (names or glob patterns).
    card : str, Path, Card or None, default None
        Model card; None: the law ensemble, one per metric (``pool_metrics=True``: also the
        ensemble pooled across metrics).
    holdout_frac : float, default 0.2
        Share of each metric's largest-compute runs held out.
    separate : bool, default True
        With several metrics, also fit each metric alone on its training runs (``method``
        ``separate`` in the result's table and ``families``) when the metrics are pooled.
    **kwargs
        Passed to :func:`bayescale.backtest` (``draws``, ``tune``, ``chains``,
        ``random_seed``, ``priors``, ``executor``; with several metrics ``pool_metrics``
        (default: pooled with a card, each metric alone with the law ensemble,
        :func:`bayescale.workflows.backtest.pools_families`); with one metric ``cutoff``,
        ``method``, ...).

    Returns
    -------
    BacktestResult
        One metric: as :func:`bayescale.backtest`. Several: the backtest of families with
        ``group_by="metric"``; ``families`` has one row per metric and method.

    Examples
    --------
    >>> import bayescale as bs
    >>> frame = bs.datasets.read_table("overtraining_downstream")
    >>> res = backtest_metrics(frame[frame.dataset == "c4_original"], metrics="loss_*",
    ...                        card="chinchilla")  # doctest: +SKIP
    >>> res.families[["family", "method", "lpd_mean", "coverage90"]]  # doctest: +SKIP
    """
    loaded = load_runs(runs, metric=metric, metrics=metrics)
    if "metrics" not in loaded.provenance:
        return backtest(loaded, card=card, holdout_frac=holdout_frac, **kwargs)
    return backtest(loaded, card=card, holdout_frac=holdout_frac, group_by=METRIC,
                    separate=separate, **kwargs)

