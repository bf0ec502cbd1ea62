"""The lack-of-fit test (residual curvature along compute) and its drift draws."""

import numpy as np

from bayescale.scoring.discrepancy import drift_draws, lack_of_fit


def _ladder(seed=0):
    rng = np.random.default_rng(seed)
    C = np.repeat(10.0 ** np.arange(17, 22, 0.5), 8)
    return C, rng


def test_curvature_flags_and_gives_the_slope_at_the_top():
    C, rng = _ladder()
    x = np.log10(C) - np.log10(C).mean()
    resid = 0.03 * x**2 + rng.normal(0, 0.005, C.size)
    lof = lack_of_fit(C, resid)
    assert lof.flag and lof.t > 0
    # slope of 0.03 x^2 at the top (x = 2.25): 0.135 per decade
    assert abs(lof.slope_top - 0.135) < 0.02
    assert lof.drift == (lof.slope_top, abs(lof.slope_top))


def test_no_curvature_no_flag_and_no_drift():
    C, rng = _ladder(1)
    resid = rng.normal(0, 0.01, C.size)
    lof = lack_of_fit(C, resid)
    assert not lof.flag
    assert lof.drift == (0.0, 0.0)


def test_runs_of_one_budget_count_as_one_cluster():
    C, rng = _ladder(2)
    # a shared misfit per budget with no trend: clustering keeps it from looking significant
    per_budget = rng.normal(0, 0.02, 10)
    resid = np.repeat(per_budget, 8) + rng.normal(0, 0.001, C.size)
    assert lack_of_fit(C, resid).n_clusters == 10


def test_drift_draws_are_normal_quantiles():
    d = drift_draws(0.05, 0.05, 4000)
    assert abs(d.mean() - 0.05) < 1e-6 and abs(d.std() - 0.05) < 1e-3
    assert np.all(drift_draws(0.02, 0.0, 5) == 0.02)


# --------------------------------------------------------------------------------------------
# Wired into the ensemble's answers: the drift beyond the fitted runs, the flags, the words
# --------------------------------------------------------------------------------------------


def _ensemble(lack_of_fit, drift):
    from fakes import make_fit, scattered

    from bayescale.fits import assemble

    base = scattered(400, seed=1)
    fits = [make_fit(base, card="chinchilla"), make_fit(base, card="chinchilla-tied")]
    info = {"cards": ["chinchilla", "chinchilla-tied"],
            "weights": {"chinchilla": 0.5, "chinchilla-tied": 0.5}, "tau": 0.0,
            "validated_decades": 0.8, "splits": [], "card_forecast_lpd": {},
            "lack_of_fit": lack_of_fit, "drift": drift}
    return assemble(fits, info)


FLAGGED = {"flag": True, "t": 10.2, "p": 5e-5, "n_clusters": 9, "slope_top": 0.075}
CLEAN = {"flag": False, "t": 0.2, "p": 0.85, "n_clusters": 26, "slope_top": -0.001}


def test_flagged_ensemble_drifts_beyond_the_runs_and_validates_nothing():
    import bayescale as bs
    from bayescale.fits import read

    flagged = _ensemble(FLAGGED, {"mean": 0.075, "sd": 0.075})
    clean = _ensemble(CLEAN, {"mean": 0.0, "sd": 0.0})
    c_max = float(read(clean).runs["C"].max())
    inside, far = dict(N=1e9, C=c_max / 10), dict(N=7e10, C=c_max * 100)
    for q in (inside, far):
        a, b = bs.predict(flagged, **q), bs.predict(clean, **q)
        np.testing.assert_allclose(a["ci"], b["ci"])  # the law itself does not move
    a, b = bs.predict(flagged, **inside), bs.predict(clean, **inside)
    np.testing.assert_allclose(a["pi"], b["pi"])  # no drift inside the fitted runs
    a, b = bs.predict(flagged, **far), bs.predict(clean, **far)
    # two decades out: the predictive interval moves up by about 0.15 nats of log loss and widens
    shift = np.log(a["pi"].values / b["pi"].values).ravel()
    assert 0.05 < shift[1] < 0.5 and shift[1] > shift[0]
    assert a.attrs["lack_of_fit"] is True and b.attrs["lack_of_fit"] is False
    near = dict(N=7e10, C=c_max * 10**0.5)  # within the 0.8 decades the splits validated
    assert not bool(bs.predict(flagged, **near)["validated"][0])
    assert bool(bs.predict(clean, **near)["validated"][0])
    assert read(flagged).validated_decades == 0.0 and read(clean).validated_decades == 0.8


def test_flagged_ensemble_is_said_in_plain_words_and_json():
    from bayescale.answers.summary import fit_summary_json
    from bayescale.scoring.reading import lack_of_fit_reading

    flagged = _ensemble(FLAGGED, {"mean": 0.075, "sd": 0.075})
    doc = fit_summary_json(flagged)
    assert doc["lack_of_fit"] is True and doc["lack_of_fit_evidence"]["t"] == 10.2
    words = lack_of_fit_reading(FLAGGED, (0.075, 0.075))
    assert words.startswith("the runs bend away from every law") and "+0.075" in words
    assert fit_summary_json(_ensemble(CLEAN, {"mean": 0.0, "sd": 0.0}))["lack_of_fit"] is False
    assert lack_of_fit_reading(CLEAN, (0.0, 0.0)) is None


def test_ensembles_saved_before_the_test_have_no_drift():
    from bayescale.fits import read

    old = _ensemble(None, None)
    assert read(old).drift == (0.0, 0.0) and read(old).lack_of_fit is None
    assert read(old).validated_decades == 0.8


def test_the_test_reads_a_bending_ladder_from_the_ensemble_members():
    """ByCompute.lack_of_fit: residuals of the weighted members' posterior-mean law."""
    import pandas as pd
    from fakes import make_fit, scattered

    from bayescale.core.runs import load_runs
    from bayescale.scoring.forecast import fit_predictive
    from bayescale.scoring.splits import ByCompute

    C = np.repeat(10.0 ** np.arange(17, 21.5, 0.5), 6)  # 9 budgets, 6 sizes each
    N = np.tile(10.0 ** np.linspace(7, 9, 6), 9) * np.sqrt(C / 1e17) / 10
    D = C / (6 * N)
    params = scattered(400, seed=1)
    members = [make_fit(params, card=c, runs_N=N, runs_D=D)
               for c in ("chinchilla", "chinchilla-tied")]
    # the members' posterior-mean law at the runs (what the test's residuals are taken from)
    law = np.exp(fit_predictive(members[0], N, D)[0].mean(axis=0))
    x = np.log10(C)
    wiggle = np.tile([-0.004, 0.002, 0.0, 0.003, -0.002, 0.001], 9)
    bent = law * np.exp(0.02 * (x - x.mean()) ** 2 + wiggle)
    for loss, expect in ((law * np.exp(wiggle), False), (bent, True)):
        table = load_runs(pd.DataFrame({"N": N, "D": D, "loss": loss}))
        rec = ByCompute().lack_of_fit(table, members, [0.5, 0.5])
        assert rec["lack_of_fit"]["flag"] is expect, rec
        assert (rec["drift"]["mean"] != 0) is expect
