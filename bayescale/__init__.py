"""bayescale: Bayesian inference of neural scaling laws.

Fit Kaplan (2020) and Chinchilla (Hoffmann 2022) laws to a table of training runs with PyMC, and
carry the posterior into every answer: extrapolated loss with credible and predictive intervals,
compute-optimal allocation, model comparison and extrapolation backtests.

The public API is imported lazily: ``import bayescale`` loads no PyMC.

Examples
--------
>>> import bayescale as bs
>>> [name for name in ("fit", "predict", "best_epochs") if name in bs.__all__]
['fit', 'predict', 'best_epochs']
"""

from importlib import import_module

__version__ = "0.1.0"

_API = {
    "fit": "bayescale.workflows.fit",
    "fit_ensemble": "bayescale.ensemble",
    "save": "bayescale.core.io",
    "load": "bayescale.fits.store",
    "predict": "bayescale.answers.prediction",
    "optimal": "bayescale.answers.allocation",
    "compute_for_target": "bayescale.answers.allocation",
    "backtest": "bayescale.workflows.backtest",
    "calibration": "bayescale.workflows.backtest",
    "backtest_metrics": "bayescale.workflows.metrics",
    "compare": "bayescale.workflows.compare",
    "point_fit": "bayescale.engines.pointfit",
    "estimate_discrepancy": "bayescale.engines.discrepancy",
    "repeat_loss": "bayescale.answers.repetition",
    "best_epochs": "bayescale.answers.repetition",
    "load_runs": "bayescale.core.runs",
    "Runs": "bayescale.core.runs",
    "load_card": "bayescale.core.cards",
    "list_cards": "bayescale.core.cards",
    "Card": "bayescale.core.cards",
    "summarize": "bayescale.answers.summary",
    "report": "bayescale.workflows.report",
    "plan": "bayescale.answers.planning",
    "family_view": "bayescale.families",
    "contrast": "bayescale.answers.contrast",
    "fit_accuracy": "bayescale.engines.accuracy",
    "fit_accuracy_ensemble": "bayescale.engines.accuracy_ensemble",
    "predict_accuracy": "bayescale.answers.accuracy",
    "compute_for_accuracy": "bayescale.answers.accuracy",
    "backtest_accuracy": "bayescale.workflows.accuracy_backtest",
    "chance_signal": "bayescale.scoring.chance",
}
_MODULES = {
    "datasets": "bayescale.core.datasets",
    "plots": "bayescale.plots",
    "laws": "bayescale.core.laws",
    "sbc": "bayescale.workflows.sbc",
    "priors": "bayescale.core.priors",
    "errors": "bayescale.errors",
    "progress": "bayescale.core.progress",
    "ensemble": "bayescale.ensemble",
    "families": "bayescale.families",
    "repetition": "bayescale.answers.repetition",
}

__all__ = sorted([*_API, *_MODULES, "__version__"])


def __getattr__(name):
    if name in _API:
        value = getattr(import_module(_API[name]), name)
    elif name in _MODULES:
        value = import_module(_MODULES[name])
    else:
        raise AttributeError(f"module 'bayescale' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
