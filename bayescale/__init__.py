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
    "fit": "bayescale.fitting",
    "fit_ensemble": "bayescale.ensemble",
    "save": "bayescale.io",
    "load": "bayescale.io",
    "predict": "bayescale.prediction",
    "optimal": "bayescale.allocation",
    "compute_for_target": "bayescale.allocation",
    "backtest": "bayescale.backtesting",
    "calibration": "bayescale.backtesting",
    "compare": "bayescale.comparison",
    "point_fit": "bayescale.pointfit",
    "estimate_discrepancy": "bayescale.discrepancy",
    "repeat_loss": "bayescale.repetition",
    "best_epochs": "bayescale.repetition",
    "load_runs": "bayescale.runs",
    "Runs": "bayescale.runs",
    "load_card": "bayescale.cards",
    "list_cards": "bayescale.cards",
    "Card": "bayescale.cards",
    "summarize": "bayescale.summary",
    "report": "bayescale.report",
    "plan": "bayescale.planning",
    "family_view": "bayescale.families",
    "contrast": "bayescale.families.contrast",
}
_MODULES = ("datasets", "plots", "laws", "sbc", "priors", "errors", "progress", "ensemble")

__all__ = sorted([*_API, *_MODULES, "__version__"])


def __getattr__(name):
    if name in _API:
        value = getattr(import_module(_API[name]), name)
    elif name in _MODULES:
        value = import_module(f"bayescale.{name}")
    else:
        raise AttributeError(f"module 'bayescale' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
