"""Upper-ladder members of the law ensemble (issue 19): the rule, and the runs each fit sees."""

import json

import numpy as np
import pytest
from fakes import make_fit, scattered

import bayescale as bs
from bayescale.core.cards import load_card
from bayescale.engines import ensemble as build
from bayescale.engines.upper import (
    UPPER_RUNS_PER_PARAM,
    is_upper_card,
    upper_cards,
    upper_half,
    upper_rule,
)
from bayescale.errors import InputError
from bayescale.fits.members import ensemble_info
from bayescale.scoring.reading import loo_weights

CARDS = [load_card(c) for c in build.DEFAULT_CARDS]


def _ladder(n_per_budget):
    return bs.load_runs(bs.datasets.simulate(n_per_budget=n_per_budget, random_seed=0))


def test_upper_half_is_the_runs_at_or_above_the_median_compute():
    runs = _ladder(9)
    up = upper_half(runs)
    assert len(up) == 27  # 5 budgets of 9 runs: the top 3 budgets
    assert up.C.min() >= np.median(runs.C) and np.sum(runs.C >= np.median(runs.C)) == len(up)


def test_upper_members_join_only_when_the_upper_half_can_identify_the_law():
    needed = UPPER_RUNS_PER_PARAM * max(c.n_params for c in CARDS)  # 4 x 8 = 32
    small, large = _ladder(9), _ladder(12)  # 27 and 36 runs in the upper half
    rule = upper_rule(small, CARDS)
    assert (rule["fitted"], rule["n_upper"], rule["needed"]) == (False, 27, needed)
    cards, record = upper_cards(small, CARDS, upper=None)
    assert [c.name for c in cards] == list(build.DEFAULT_CARDS) and not record["fitted"]
    cards, record = upper_cards(large, CARDS, upper=None)
    assert [c.name for c in cards] == list(build.DEFAULT_CARDS) + [
        f"{n}@upper" for n in build.DEFAULT_CARDS]
    assert record["fitted"] and record["asked"] is None and "median compute" in record["rule"]
    # the user decides when asked
    assert len(upper_cards(small, CARDS, upper=True)[0]) == 2 * len(CARDS)
    assert len(upper_cards(large, CARDS, upper=False)[0]) == len(CARDS)
    up = cards[len(CARDS)]
    assert is_upper_card(up) and not is_upper_card(cards[0])
    assert (up.law, up.priors, up.noise_priors) == (CARDS[0].law, CARDS[0].priors,
                                                    CARDS[0].noise_priors)


def test_upper_option_and_reserved_names_are_checked():
    with pytest.raises(InputError, match="upper must be True, False or None"):
        upper_cards(_ladder(9), CARDS, upper="yes")
    named = [CARDS[0], upper_cards(_ladder(9), CARDS[:1], upper=True)[0][1]]
    with pytest.raises(InputError, match="may not end in '@upper'"):
        upper_cards(_ladder(9), named, upper=None)


def _stub_fit(calls):
    """fit_card stand-in: a converged fake fit on exactly the runs it was given."""

    def fit_one(runs, *, card, random_seed, **_):
        calls.append((card.name, len(runs), float(runs.C.min()), float(runs.C.max())))
        tree = make_fit(scattered(200, seed=random_seed), runs_N=runs.N, runs_D=runs.D,
                        seed=random_seed)
        tree["observed_data"]["log_loss"] = ("run", np.log(runs.loss))
        tree.attrs.update(bayescale_card=card.to_json(),
                          bayescale_diagnostics=json.dumps({"max_rhat": 1.0, "divergences": 0}),
                          bayescale_runs=json.dumps({"n_runs": len(runs)}))
        return tree

    return fit_one


def test_each_fit_sees_its_runs_and_the_record_says_why(monkeypatch):
    calls = []
    monkeypatch.setattr(build, "fit_card", _stub_fit(calls))
    runs = _ladder(12)  # 60 runs; 36 at or above the median compute
    ens = build.fit_ensemble(runs, cards=["chinchilla"], executor="serial", random_seed=0)
    info = ensemble_info(ens)
    assert info["cards"] == ["chinchilla", "chinchilla@upper"]
    assert info["upper"]["fitted"] and info["upper"]["n_upper"] == 36
    assert set(info["weights"]) == {"chinchilla", "chinchilla@upper"}
    members = {name: n for name, n, *_ in calls[:2]}
    assert members == {"chinchilla": 60, "chinchilla@upper": 36}
    # every rolling split fits the upper variant to the upper half of *its* training runs
    splits = calls[2:]
    assert len(splits) == 2 * len(info["splits"]) + 2 * len(info["convergence"]["excluded_splits"])
    pairs = zip(splits[::2], splits[1::2], strict=True)
    for (full, n_full, cmin, cmax), (up, n_up, umin, umax) in pairs:
        assert (full, up) == ("chinchilla", "chinchilla@upper")
        assert umax == cmax and umin > cmin and n_full / 2 <= n_up < n_full
    # the root keeps every run, whichever member leads
    assert ens["constant_data"].sizes["run"] == 60
    assert json.loads(ens.attrs["bayescale_runs"])["n_runs"] == 60
    # LOO compares the members fitted to the same runs only
    assert loo_weights(ens) is None or set(loo_weights(ens)) <= {"chinchilla"}


def test_no_upper_members_on_a_small_ladder_by_default(monkeypatch):
    calls = []
    monkeypatch.setattr(build, "fit_card", _stub_fit(calls))
    ens = build.fit_ensemble(_ladder(9), cards=["chinchilla"], executor="serial")
    info = ensemble_info(ens)
    assert info["cards"] == ["chinchilla"] and not info["upper"]["fitted"]
    assert {n for _, n, *_ in calls[:1]} == {45}


def test_upper_option_is_for_the_law_ensemble_only(tmp_path):
    from typer.testing import CliRunner

    from bayescale.cli import app

    with pytest.raises(InputError, match="upper= applies to the law ensemble"):
        bs.fit(_ladder(9), card="chinchilla", upper=True)
    with pytest.raises(InputError, match="upper= applies to the law ensemble"):
        bs.backtest(_ladder(9), method="mle", upper=False)
    path = tmp_path / "runs.csv"
    bs.datasets.simulate(random_seed=0).to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "--law", "chinchilla", "--upper",
                                   "--out", str(tmp_path / "fit")])
    assert res.exit_code != 0 and "--upper applies to the law ensemble" in res.output
    assert not (tmp_path / "fit").exists()


def test_no_upper_members_when_a_card_models_repeated_data():
    frame = bs.datasets.simulate(n_per_budget=12, random_seed=0)
    frame["U"] = frame["D"] / np.resize([1.0, 4.0], len(frame))
    runs = bs.load_runs(frame)
    cards = [load_card(c) for c in build.default_cards(runs)]
    assert "data-constrained" in [c.name for c in cards]
    rule = upper_rule(runs, cards)
    assert rule["n_upper"] >= rule["needed"] and rule["repeated_data"] and not rule["fitted"]
    assert [c.name for c in upper_cards(runs, cards, upper=None)[0]] == [c.name for c in cards]


def test_the_weights_reading_says_what_an_upper_member_is():
    from bayescale.scoring.reading import weights_reading

    info = {"weights": {"chinchilla": 0.3, "chinchilla@upper": 0.7}, "tau": 0.0,
            "validated_decades": 0.5, "splits": [{}, {}],
            "upper": {"fitted": True, "n_upper": 36}}
    text = weights_reading(info, {"chinchilla": 1.0})
    assert "@upper are the same laws fitted to the 36 runs at or above the median" in text
    assert "same laws fitted" not in weights_reading({**info, "upper": {"fitted": False}}, None)
