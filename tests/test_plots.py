"""Figures: structure (axes, scales, units, legend entries) and that drawn bands are ordered."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayescale import plots
from bayescale.answers.plots import _isoflop_budgets
from bayescale.core.cards import load_card
from bayescale.errors import InputError

SIM_BUDGETS = [1e17, 3e17, 1e18, 3e18, 1e19]


def _band_range(ax, label):
    """``{x: (min y, max y)}`` of the fill_between band labelled ``label``."""
    (coll,) = [c for c in ax.collections if c.get_label() == label]
    verts = np.concatenate([p.vertices for p in coll.get_paths()])
    out = {}
    for x, y in verts:
        lo, hi = out.get(x, (np.inf, -np.inf))
        out[x] = (min(lo, y), max(hi, y))
    return out


def _check_nested_bands(ax, median_label, labels):
    """The median lies in every band and wider bands contain narrower ones, at every x."""
    (line,) = [ln for ln in ax.lines if ln.get_label() == median_label]
    xs, med = line.get_xdata(), line.get_ydata()
    ranges = [_band_range(ax, lab) for lab in labels]  # narrowest first
    for x, m in zip(xs, med, strict=True):
        lo_prev, hi_prev = m, m
        for r in ranges:
            lo, hi = r[x]
            assert lo <= lo_prev * (1 + 1e-12) and hi >= hi_prev * (1 - 1e-12)
            lo_prev, hi_prev = lo, hi
    return xs, med


def _legend_texts(legend):
    return [t.get_text() for t in legend.get_texts()]


def _with_card(fit, name):
    """A shallow copy of ``fit`` that claims another card (for law-type checks only)."""
    fake = fit.copy()
    fake.attrs = {**fit.attrs, "bayescale_card": load_card(name).to_json()}
    return fake


def test_frontier_structure_and_bands(sim_fit, sim_runs):
    fig = plots.plot_frontier(sim_fit)
    assert isinstance(fig, Figure)
    ax, cbar = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "FLOPs" in ax.get_xlabel() and "nats" in ax.get_ylabel()
    assert "N" in cbar.get_ylabel()
    texts = _legend_texts(ax.get_legend())
    assert {"50% ETI band", "90% ETI band", "fitted range", "runs (45)"} <= set(texts)
    xs, med = _check_nested_bands(
        ax, "frontier L*(C), posterior median", ["50% ETI band", "90% ETI band"]
    )
    # Extends 100x beyond the largest fitted budget; the frontier falls with compute and lies
    # below every run (it is the lower envelope of the IsoFLOP profiles).
    assert xs.max() == pytest.approx(100 * sim_runs["C"].max())
    assert np.all(np.diff(med) < 0)
    loss_at_runs = np.interp(np.log(sim_runs["C"]), np.log(xs), med)
    assert np.mean(sim_runs["loss"] >= loss_at_runs * 0.98) > 0.9
    (scatter,) = [c for c in ax.collections if c.get_label() == "runs (45)"]
    assert len(scatter.get_offsets()) == len(sim_runs)


def test_frontier_hdi_and_custom_budgets(sim_fit):
    fig = plots.plot_frontier(sim_fit, budgets=[1e18, 1e20, 1e22], ci_probs=(0.8,), ci_kind="hdi")
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.lines if "median" in ln.get_label()]
    np.testing.assert_allclose(line.get_xdata(), [1e18, 1e20, 1e22])
    assert "80% HDI band" in _legend_texts(ax.get_legend())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ci_probs": (0.5, 1.2)}, "ci_prob"),
        ({"ci_kind": "iqr"}, "ci_kind"),
        ({"budgets": [1e20, -1.0]}, "positions \\[1\\]"),
    ],
)
def test_frontier_bad_options(sim_fit, kwargs, match):
    with pytest.raises(InputError, match=match):
        plots.plot_frontier(sim_fit, **kwargs)


def test_single_variable_law_has_no_frontier(sim_fit):
    fake = _with_card(sim_fit, "kaplan-N")
    for fn in (plots.plot_frontier, plots.plot_isoflop, plots.plot_allocation):
        with pytest.raises(InputError, match="depends on N only"):
            fn(fake)
    assert sim_fit.attrs["bayescale_card"] != fake.attrs["bayescale_card"]


def test_isoflop_default_budgets_and_optimum(sim_fit, sim_runs):
    fig = plots.plot_isoflop(sim_fit)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == plots.N_LABEL and "nats" in ax.get_ylabel()
    curves = [ln for ln in ax.lines if ln.get_label().startswith("C = ")]
    assert [ln.get_label() for ln in curves] == [
        "C = 1e17 FLOPs", "C = 3e17 FLOPs", "C = 1e18 FLOPs", "C = 3e18 FLOPs", "C = 1e19 FLOPs"
    ]
    # One N* errorbar per budget (plus the legend proxy), at the minimum of its curve, its
    # interval around its median; N* grows with compute.
    bars = [c for c in ax.containers if len(c.lines[0].get_xdata())]
    assert len(bars) == len(curves)
    n_star = []
    for curve, bar in zip(curves, bars, strict=True):
        (x,), (y,) = bar.lines[0].get_xdata(), bar.lines[0].get_ydata()
        seg = bar.lines[2][0].get_segments()[0]
        assert seg[0][0] <= x <= seg[1][0]
        n, loss = curve.get_xdata(), curve.get_ydata()
        assert n.min() < x < n.max()
        assert y == pytest.approx(loss.min(), rel=2e-3)
        n_star.append(x)
    assert np.all(np.diff(n_star) > 0)
    # Every run sits near one budget and is drawn once.
    drawn = sum(len(c.get_offsets()) for c in ax.collections if c.get_label().startswith("_"))
    assert drawn >= len(sim_runs)
    assert "runs within 12% of C" in _legend_texts(ax.get_legend())


def test_isoflop_budget_detection():
    budgets, clustered = _isoflop_budgets(np.repeat(SIM_BUDGETS, 9) * 1.01)
    assert clustered
    np.testing.assert_allclose(budgets, np.array(SIM_BUDGETS) * 1.01, rtol=1e-3)
    scattered = np.geomspace(1e18, 1e22, 60)
    budgets, clustered = _isoflop_budgets(scattered)
    assert not clustered
    np.testing.assert_allclose(budgets, [1e18, 2.2e19, 4.6e20, 1e22])


def test_allocation_panels_references_and_bands(sim_fit):
    fig = plots.plot_allocation(sim_fit)
    axes = [ax for ax in fig.axes]
    assert len(axes) == 3
    for ax in axes:
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        assert "FLOPs" in ax.get_xlabel()
        _check_nested_bands(ax, "posterior median", ["50% ETI band", "90% ETI band"])
    assert [ax.get_ylabel() for ax in axes] == [
        plots.N_LABEL, plots.D_LABEL, "Tokens per parameter D*/N*"
    ]
    sources = [r.source for r in load_card("chinchilla").references]
    (legend,) = fig.legends
    texts = _legend_texts(legend)
    assert all(s in texts for s in sources)
    # Reference lines are the closed-form optimum at the published values.
    ref = load_card("chinchilla").references[0]
    (line,) = [ln for ln in axes[0].lines if ln.get_label() == ref.source]
    c = line.get_xdata()
    n_ref, _ = load_card("chinchilla").law_spec.optimal(c, dict(ref.params))
    np.testing.assert_allclose(line.get_ydata(), n_ref)
    # N* D* = C / 6 on the median lines.
    n_med = [ln for ln in axes[0].lines if ln.get_label() == "posterior median"][0].get_ydata()
    d_med = [ln for ln in axes[1].lines if ln.get_label() == "posterior median"][0].get_ydata()
    np.testing.assert_allclose(n_med * d_med, c / 6, rtol=0.05)


def test_allocation_without_ratio_panel(sim_fit):
    fig = plots.plot_allocation(sim_fit, budgets=[1e20, 1e22], tokens_per_param=False)
    assert len(fig.axes) == 2


def test_pairs_default_and_subset(sim_fit):
    fig = plots.plot_pairs(sim_fit)
    k = len(load_card("chinchilla").free_params)
    assert len(fig.axes) == k * (k + 1) // 2
    xlabels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert xlabels == ["E (nats)", r"$\log_{10}$ A", r"$\log_{10}$ B", r"$\alpha$", r"$\beta$"]
    # log10 A on the axes: the A column's histogram spans log10 of the posterior draws.
    a = np.log10(sim_fit.posterior["A"].to_numpy().ravel())
    (hist_a,) = [ax for ax in fig.axes if ax.get_xlabel() == r"$\log_{10}$ A"]
    assert hist_a.get_xlim()[0] <= a.min() and hist_a.get_xlim()[1] >= a.max()
    fig = plots.plot_pairs(sim_fit, var_names=["alpha", "beta", "sigma"])
    assert len(fig.axes) == 6
    scatter = fig.axes[3].collections[0]  # row beta, column alpha
    n_draws = sim_fit.posterior.sizes["draw"] * sim_fit.posterior.sizes["chain"]
    assert len(scatter.get_offsets()) == n_draws


def test_pairs_unknown_variable(sim_fit):
    with pytest.raises(InputError, match="available"):
        plots.plot_pairs(sim_fit, var_names=["alpha", "gamma"])


def test_residuals(sim_fit, sim_runs):
    fig = plots.plot_residuals(sim_fit, random_seed=3)
    ax, cbar = fig.axes
    assert ax.get_xscale() == "log" and "FLOPs" in ax.get_xlabel()
    assert "Residual log loss" in ax.get_ylabel()
    (pts,) = [c for c in ax.collections if c.get_label() == "runs (45)"]
    resid = np.asarray(pts.get_offsets())[:, 1]
    assert len(resid) == len(sim_runs)
    # The simulation's noise is 1% on log loss: residuals are that small and centred.
    assert abs(np.median(resid)) < 0.005 and np.std(resid) < 0.02
    band90 = _band_range(ax, "90% predictive noise band (StudentT)")
    band50 = _band_range(ax, "50% predictive noise band (StudentT)")
    lo90, hi90 = next(iter(band90.values()))
    lo50, hi50 = next(iter(band50.values()))
    assert lo90 < lo50 < 0 < hi50 < hi90
    # Same seed, same figure.
    again = plots.plot_residuals(sim_fit, random_seed=3)
    assert _band_range(again.axes[0], "90% predictive noise band (StudentT)") == band90


def test_save_figure_atomic(tmp_path):
    fig = Figure()
    fig.add_subplot().plot([1, 2], [3, 4])
    (tmp_path / "keep.txt").write_text("mine")
    paths = plots.save_figure(fig, tmp_path / "figs", "demo")
    assert [p.name for p in paths] == ["demo.png", "demo.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths[1].read_text()
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["demo.png", "demo.svg"]
    assert (tmp_path / "keep.txt").read_text() == "mine"
    for bad in ("../evil", "a/b", ".hidden", ""):
        with pytest.raises(InputError, match="figure name"):
            plots.save_figure(Figure(), tmp_path, bad)


def _fake_backtest():
    """A backtest-like result: 6 held-out runs at two budgets, one outside its 90% interval."""
    from types import SimpleNamespace

    import pandas as pd

    C = np.array([1e20] * 3 + [1e21] * 3)
    N = np.array([1e9, 2e9, 4e9, 3e9, 6e9, 1.2e10])
    med = np.array([2.50, 2.45, 2.48, 2.30, 2.26, 2.29])
    loss = med + np.array([0.01, -0.02, 0.0, 0.02, 0.2, -0.01])
    table = pd.DataFrame({"N": N, "D": C / (6 * N), "C": C, "loss": loss, "median": med})
    for p, half in ((50, 0.01), (90, 0.04)):
        table[f"pi{p}_lower"] = med - half
        table[f"pi{p}_upper"] = med + half
    return SimpleNamespace(card="chinchilla", method="bayes", cutoff=5e19, n_train=20, n_test=6,
                           table=table, coverage={0.5: 0.5, 0.9: 5 / 6})


def test_backtest_figure():
    import pandas as pd

    res = _fake_backtest()
    train = pd.DataFrame({"C": [1e19, 3e19, 5e19], "loss": [2.9, 2.7, 2.6]})
    fig = plots.plot_backtest(res, runs=train)
    (ax,) = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "FLOPs" in ax.get_xlabel() and "nats" in ax.get_ylabel()
    texts = _legend_texts(fig.legends[0])
    assert "training runs (3)" in texts and "held out, outside 90% (1)" in texts
    assert "held out, inside 90% (5)" in texts and "cutoff C = 5e19 FLOPs" in texts
    # Runs sharing a budget are spread around it, smallest model first; intervals hold medians.
    (med,) = [c for c in ax.collections if c.get_label() == "predictive median"]
    xy = np.asarray(med.get_offsets())
    assert np.all(np.diff(xy[:3, 0]) > 0) and xy[1, 0] == pytest.approx(1e20)
    assert np.all(np.abs(np.log10(xy[:, 0] / res.table["C"])) < 0.05)
    np.testing.assert_allclose(xy[:, 1], res.table["median"])
    bad = _fake_backtest()
    bad.table = bad.table[["N", "D", "C", "loss", "median"]]
    with pytest.raises(InputError, match="interval columns"):
        plots.plot_backtest(bad)


def test_calibration_figure():
    import pandas as pd

    table = pd.DataFrame(
        {
            "holdout_frac": [0.2] * 3 + [0.4] * 3,
            "cutoff": [3e18] * 3 + [1e18] * 3,
            "prob": [0.5, 0.8, 0.9] * 2,
            "coverage": [0.44, 0.78, 0.89, 0.5, 0.83, 1.0],
            "n_test": [9] * 3 + [18] * 3,
            "method": ["bayes"] * 6,
        }
    )
    fig = plots.plot_calibration(table)
    (ax,) = fig.axes
    assert ax.get_xlim() == (0.0, 1.0)
    assert "Nominal" in ax.get_xlabel() and "Observed" in ax.get_ylabel()
    curves = [ln for ln in ax.lines if ln.get_label().startswith("bayes")]
    assert [ln.get_label() for ln in curves] == [
        "bayes, 20% held out, C > 3e18", "bayes, 40% held out, C > 1e18"
    ]
    np.testing.assert_allclose(curves[1].get_ydata(), [0.5, 0.83, 1.0])
    assert "90% range if calibrated (n = 9 runs)" in _legend_texts(ax.get_legend())
    with pytest.raises(InputError, match="coverage"):
        plots.plot_calibration(table.drop(columns="coverage"))


def test_reliability_figure_shows_coverage_at_every_level_and_the_pit():
    from types import SimpleNamespace

    import pandas as pd

    pit = np.linspace(0.02, 0.98, 25)
    res = SimpleNamespace(table=pd.DataFrame({"pit": pit}), card="chinchilla", method="bayes",
                          n_test=25)
    fig = plots.plot_reliability(res)
    left, right = fig.axes
    (line,) = [ln for ln in left.lines if ln.get_marker() == "o"]
    np.testing.assert_allclose(line.get_xdata(), np.arange(0.05, 0.951, 0.05), atol=1e-9)
    assert sum(p.get_height() for p in right.patches) == 25
    with pytest.raises(InputError, match="pit"):
        plots.plot_reliability(SimpleNamespace(table=pd.DataFrame({"x": [1.0]})))
