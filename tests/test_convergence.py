"""Only converged fits count (issue 19): refits of unconverged fits, and what is left out.

No MCMC: the single-card engine is replaced by a fake whose fits carry chosen diagnostics.
"""

import json
import warnings

import numpy as np
import pytest
from fakes import make_fit, scattered

import bayescale as bs
from bayescale.core.cards import load_card
from bayescale.engines import ensemble as build
from bayescale.ensemble import ensemble_info
from bayescale.errors import ConvergenceError, SamplerWarning

CARDS = ("chinchilla", "chinchilla-tied")


def _tree(card, *, draws=100, rhat=1.001, divergences=0, seed=0):
    tree = make_fit(scattered(draws, seed=seed), card=card, n_draws=draws)
    tree.attrs["bayescale_diagnostics"] = json.dumps(
        {"max_rhat": rhat, "divergences": divergences, "min_ess_bulk": 500.0,
         "min_ess_tail": 500.0})
    return tree


class FakeEngine:
    """``fit_card`` stand-in: ``bad(card, n_runs, attempt)`` says whether a fit fails.

    The attempt is read off the seed (the policy's attempt ``i`` uses ``random_seed + i``).
    """

    def __init__(self, bad, base_seed=0):
        self.bad, self.base_seed, self.calls = bad, base_seed, []

    def __call__(self, runs, *, card, draws, tune, random_seed, strict=False, **kw):
        name = card.name if hasattr(card, "name") else card
        attempt = random_seed - self.base_seed
        self.calls.append((name, len(runs), attempt, draws, tune, kw.get("target_accept")))
        failing = self.bad(name, len(runs), attempt)
        if failing:
            warnings.warn(f"fit of {name!r} on {len(runs)} runs: sampler problems: R-hat",
                          SamplerWarning, stacklevel=2)
        return _tree(name, draws=draws, rhat=1.2 if failing else 1.002,
                     divergences=3 if failing else 0, seed=attempt)


def _ensemble(monkeypatch, bad, **kw):
    engine = FakeEngine(bad)
    monkeypatch.setattr(build, "fit_card", engine)
    runs = bs.load_runs(bs.datasets.simulate(random_seed=0))  # 45 runs: splits of 36 and 27
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ens = build.fit_ensemble(runs, cards=CARDS, draws=100, tune=50, split_draws=100,
                                 split_tune=50, chains=1, **kw)
    msgs = [str(w.message) for w in caught if issubclass(w.category, SamplerWarning)]
    return ens, ensemble_info(ens), engine, msgs


def test_convergence_failures_reads_rhat_and_divergences():
    assert build.convergence_failures(_tree("chinchilla")) == []
    assert build.convergence_failures(_tree("chinchilla", rhat=1.011)) == ["R-hat 1.011"]
    assert build.convergence_failures(_tree("chinchilla", divergences=2)) == ["2 divergences"]


def test_fit_converged_refits_with_a_new_seed_and_longer_tuning():
    engine = FakeEngine(lambda name, n, attempt: attempt == 0)
    card = load_card("chinchilla")
    tree, rec = build.fit_converged(engine, list(range(10)), card=card, draws=100, tune=50,
                                    random_seed=0, label="split 0.1, chinchilla")
    assert rec["converged"] and len(rec["attempts"]) == 2
    assert [(a["seed"], a["tune"], a["draws"]) for a in rec["attempts"]] == [
        (0, 50, 100), (1, 50 * build.REFIT_TUNE_FACTOR, 100 * build.REFIT_DRAWS_FACTOR)]
    assert rec["attempts"][0]["failures"] == ["R-hat 1.200", "3 divergences"]
    assert rec["attempts"][0]["target_accept"] is None  # the engine's own on the first attempt
    assert rec["attempts"][1]["target_accept"] == build.REFIT_TARGET_ACCEPT
    assert rec["problems"] == []  # the warnings of the failed attempt are not repeated
    assert build.convergence_failures(tree) == []


def test_a_converged_first_fit_is_the_fit_without_the_policy():
    engine = FakeEngine(lambda *a: False)
    _, rec = build.fit_converged(engine, list(range(10)), card=load_card("chinchilla"),
                                 draws=100, tune=50, random_seed=7, label="x")
    assert len(engine.calls) == 1 and rec["attempts"][0]["seed"] == 7


def test_refits_run_longer_chains_and_thin_them_back():
    engine = FakeEngine(lambda name, n, attempt: True)
    tree, rec = build.fit_converged(engine, list(range(10)), card=load_card("chinchilla"),
                                    draws=100, tune=50, random_seed=0, label="x")
    assert not rec["converged"] and len(rec["attempts"]) == build.REFITS + 1
    last = rec["attempts"][-1]
    assert last["draws"] == 100 * build.REFIT_DRAWS_FACTOR
    assert last["thin"] == build.REFIT_DRAWS_FACTOR
    assert tree["posterior"].sizes["draw"] == 100
    assert list(tree["posterior"]["draw"].values) == list(range(100))
    assert rec["problems"] and "R-hat" in rec["problems"][0]


def test_an_unconverged_split_fit_leaves_its_split_out_of_the_weights(monkeypatch):
    # the tied card fails on the 36-run split at every attempt; the 27-run split is clean
    ens, info, engine, msgs = _ensemble(
        monkeypatch, lambda name, n, attempt: name == "chinchilla-tied" and n == 36)
    conv = info["convergence"]
    assert info["cards"] == list(CARDS)  # the card stays: its weight comes from the other split
    assert [s["n_train"] for s in info["splits"]] == [27]
    assert conv["excluded_splits"] == [0]
    assert len(conv["excluded_split_fits"]) == 1
    assert "chinchilla-tied" in conv["excluded_split_fits"][0]
    assert "still not converged" in conv["excluded_split_fits"][0]
    assert conv["n_refitted"] == 1 and conv["dropped_cards"] == {}
    assert any("left out of the stacking evidence" in m for m in msgs)
    assert info["split_sampler_problems"] == []  # the excluded fit's problems do not count
    assert sum(info["weights"].values()) == pytest.approx(1.0)


def test_a_split_fit_that_converges_on_refit_counts(monkeypatch):
    ens, info, engine, msgs = _ensemble(
        monkeypatch, lambda name, n, attempt: name == "chinchilla" and n == 27 and attempt == 0)
    conv = info["convergence"]
    assert [s["n_train"] for s in info["splits"]] == [36, 27]
    assert conv["excluded_splits"] == [] and conv["excluded_split_fits"] == []
    assert len(conv["refitted"]) == 1 and "refitted (seed 1" in conv["refitted"][0]
    assert not any("left out" in m for m in msgs)


def test_a_card_unconverged_on_every_split_is_dropped(monkeypatch):
    ens, info, engine, msgs = _ensemble(
        monkeypatch, lambda name, n, attempt: name == "chinchilla-tied" and n < 45)
    assert info["cards"] == ["chinchilla"] and info["weights"] == {"chinchilla": 1.0}
    assert "chinchilla-tied" in info["convergence"]["dropped_cards"]
    assert len(info["splits"]) == 2  # chinchilla's forecasts on both splits count
    assert len([k for k in ens.children if k.startswith("member_")]) == 1


def test_a_card_whose_member_fit_fails_leaves_the_ensemble(monkeypatch):
    ens, info, engine, msgs = _ensemble(
        monkeypatch, lambda name, n, attempt: name == "chinchilla-tied" and n == 45)
    assert info["cards"] == ["chinchilla"]
    assert "member 'chinchilla-tied'" in info["convergence"]["dropped_cards"]["chinchilla-tied"]
    assert info["convergence"]["unconverged_kept"] == []
    # its split fits are not made
    assert not any(c[0] == "chinchilla-tied" and c[1] < 45 for c in engine.calls)
    assert any("dropped from the ensemble" in m for m in msgs)


def test_when_no_member_converges_all_are_kept_and_said_so(monkeypatch):
    ens, info, engine, msgs = _ensemble(monkeypatch, lambda name, n, attempt: n == 45)
    assert info["cards"] == list(CARDS) and info["convergence"]["dropped_cards"] == {}
    assert len(info["convergence"]["unconverged_kept"]) == 2
    assert any("no member fit converged" in m for m in msgs)


def test_strict_raises_when_a_member_does_not_converge(monkeypatch):
    with pytest.raises(ConvergenceError, match="still not converged"):
        _ensemble(monkeypatch, lambda name, n, attempt: name == "chinchilla" and n == 45,
                  strict=True)


def test_record_lists_refits_and_is_json(monkeypatch):
    ens, info, engine, msgs = _ensemble(
        monkeypatch, lambda name, n, attempt: n == 27 and attempt < 2)
    conv = info["convergence"]
    assert conv["n_fits"] == 6 and conv["n_refitted"] == 2
    assert all(len(a) == 3 for a in conv["attempts"].values())
    json.dumps(conv)
    assert np.isclose(sum(info["weights"].values()), 1.0)


def test_backtest_output_says_which_fits_were_left_out():
    import pandas as pd

    from bayescale.cli.render import backtest_table, convergence_rows
    from bayescale.workflows.backtest import BacktestResult

    conv = {"n_fits": 12, "n_refitted": 3, "refitted": [],
            "excluded_split_fits": ["split 0.1 kaplan-linf: R-hat 1.654; refitted (...); still "
                                    "not converged"],
            "dropped_cards": {"data-constrained": "member 'data-constrained': 27 divergences"},
            "unconverged_kept": []}
    rows = dict(convergence_rows(conv))
    assert rows["fits refitted to converge (R-hat <= 1.01, no divergences)"] == "3 of 12"
    assert "kaplan-linf" in rows["split fit left out of the weights (did not converge)"]
    assert "27 divergences" in rows["card data-constrained dropped from the ensemble"]
    assert convergence_rows(None) == []
    result = BacktestResult(card="ensemble", method="bayes", cutoff=1.0, n_train=10, n_test=2,
                            table=pd.DataFrame({"loss": [1.0]}), coverage={0.9: 1.0},
                            lpd_mean=1.0, median_abs_error=0.1, diagnostics=None,
                            weights={"chinchilla": 1.0}, validated_decades=0.5, tau=0.0,
                            convergence=conv)
    assert result.to_dict()["convergence"]["n_refitted"] == 3
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(backtest_table(result))
    assert "left out of the weights" in console.export_text()
