"""Every figure bayescale draws, gathered for users (``bs.plots``).

The code sits in the answers layer: the figures of a fit in :mod:`bayescale.answers.plots`, those
of a backtest in :mod:`bayescale.answers.score_plots`. Each function returns a new
:class:`matplotlib.figure.Figure`; :func:`save_figure` writes PNG and SVG atomically.
"""

from bayescale.answers.plots import (
    COMPUTE_LABEL,
    D_LABEL,
    FIGURES,
    LOSS_LABEL,
    N_LABEL,
    figure_makers,
    plot_allocation,
    plot_frontier,
    plot_isoflop,
    plot_pairs,
    plot_residuals,
    save_figure,
)
from bayescale.answers.score_plots import plot_backtest, plot_calibration, plot_reliability

__all__ = [
    "COMPUTE_LABEL",
    "D_LABEL",
    "FIGURES",
    "LOSS_LABEL",
    "N_LABEL",
    "figure_makers",
    "plot_allocation",
    "plot_backtest",
    "plot_calibration",
    "plot_frontier",
    "plot_isoflop",
    "plot_pairs",
    "plot_reliability",
    "plot_residuals",
    "save_figure",
]
