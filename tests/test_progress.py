"""Tests of bayescale.core.progress: one bar over many fits, quiet off a terminal, library
keywords."""

import pytest

from bayescale import datasets
from bayescale.core.progress import FitProgress, fit_progress, tracker
from bayescale.errors import InputError
from bayescale.workflows.backtest import calibration


def test_quiet_when_stderr_is_not_a_terminal(capsys):
    with fit_progress(3, description="compare") as bar:
        for _ in range(3):
            bar.advance()
    assert bar.done == 3 and not bar.enabled
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_forced_bar_draws_on_stderr_only(capsys):
    with fit_progress(2, description="compare", enabled=True) as bar:
        bar.advance()
        bar.describe("compare kaplan")
        bar.advance()
    assert bar.enabled and bar.done == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "compare kaplan" in captured.err and "2/2" in captured.err


def test_tracker_forms():
    seen = []
    with tracker(lambda done, total: seen.append((done, total)), total=3, description="x") as adv:
        adv()
        adv()
    assert seen == [(1, 3), (2, 3)]
    for off in (None, False):
        with tracker(off, total=3, description="x") as adv:
            assert adv() is None
    with tracker(True, total=1, description="x") as adv:  # not a terminal here: silent
        adv()
    with pytest.raises(InputError, match="progress must be True, False, None or a callable"):
        with tracker("yes", total=1, description="x"):
            pass


def test_fit_progress_bad_total():
    with pytest.raises(InputError, match="total must be a non-negative integer"):
        with fit_progress(2.5):
            pass


def test_bar_object_accepts_callback_calls():
    bar = FitProgress(5, description="sbc")
    bar(1, 5, 0.3)  # the SBC callback form: (done, total, seconds)
    bar(3, 5)
    bar()
    assert bar.done == 4


def test_calibration_reports_each_backtest():
    seen = []
    runs = datasets.simulate(random_seed=0)
    cal = calibration(runs, method="mle", holdout_fracs=(0.2, 0.4), n_bootstrap=5,
                      progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    assert sorted(cal["holdout_frac"].unique()) == [0.2, 0.4]


def test_sbc_accepts_bool_progress():
    from bayescale.workflows.sbc import sbc

    for flag in (True, False):  # routed through fit_progress, then the usual option checks
        with pytest.raises(InputError, match="n_sims"):
            sbc("chinchilla", n_sims=0, progress=flag)
