"""Model cards: every built-in card loads, overrides work, bad cards fail clearly, and the cards
ship inside a non-editable wheel."""

import subprocess
import sys
import zipfile

import pytest

from bayescale.core.cards import card_from_json, list_cards, load_card
from bayescale.errors import CardError

EXPECTED = {"chinchilla", "chinchilla-normal", "chinchilla-tied", "kaplan", "kaplan-linf",
            "kaplan-N", "kaplan-D"}


def test_all_builtin_cards_load_and_roundtrip():
    assert EXPECTED <= set(list_cards())
    for name in list_cards():
        card = load_card(name)
        assert card.name == name
        assert set(card.free_params) <= set(card.priors)
        back = card_from_json(card.to_json())
        assert back.to_json() == card.to_json()


def test_references_carry_published_values():
    chin = load_card("chinchilla")
    epoch = next(r for r in chin.references if "Epoch" in r.source)
    assert epoch.params["E"] == 1.817 and epoch.intervals["alpha"] == (0.317, 0.373)
    kap = load_card("kaplan")
    assert kap.references[0].params["alpha_N"] == 0.076


def test_prior_override_from_dict_and_text():
    card = load_card("chinchilla", priors={"alpha": "Beta(2, 5)", "sigma": "HalfNormal(0.1)"})
    assert str(card.priors["alpha"]) == "Beta(alpha=2, beta=5)"
    assert str(card.noise_priors["sigma"]) == "HalfNormal(sigma=0.1)"
    assert str(load_card("chinchilla").priors["alpha"]) == "Beta(alpha=3, beta=7)"  # unchanged


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(CardError, match="valid parameters: E, A, B, alpha, beta, sigma, nu"):
        load_card("chinchilla", priors={"gamma": "Beta(2, 5)"})
    with pytest.raises(CardError, match="valid parameters"):
        load_card("chinchilla-tied", priors={"beta": "Beta(2, 5)"})  # tied to alpha


def test_unknown_card_lists_builtins():
    with pytest.raises(CardError, match="built-in cards: .*chinchilla"):
        load_card("chinchila")


@pytest.mark.parametrize(
    "text, match",
    [
        ('law = "gpt"\n[priors]\n', "unknown law 'gpt'"),
        ('law = "chinchilla"\n', "missing \\[priors\\]"),
        ('law = "chinchilla"\n[priors]\nE = "HalfNormal(1)"\n', "lacks A, B, alpha, beta"),
        ('law = "chinchilla"\n[priors]\nE = "__import__(\'os\')"\n', "\\[priors\\] E"),
        ('law = "kaplan"\n[priors]\nalpha_N="Beta(2,10)"\nalpha_D="Beta(2,10)"\n'
         'N_c="LogNormal(0,1)"\nD_c="LogNormal(0,1)"\n[likelihood]\nfamily="Laplace"\n',
         "family 'Laplace'"),
        ('law = "chinchilla"\nname=', "invalid TOML"),
    ],
)
def test_bad_cards_fail_with_specific_message(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CardError, match=match):
        load_card(path)


def test_cards_ship_in_a_non_editable_wheel(tmp_path):
    """Build the wheel and load a card from it, away from the checkout's models/ folder."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(root)],
        check=True, capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("bayescale-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bayescale/_models/chinchilla.toml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import bayescale.core.cards as c; from pathlib import Path; "
            "print(c._models_dir()); print(c.load_card('kaplan').name)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(site)}).stdout
    assert str(site / "bayescale" / "_models") in out and out.strip().endswith("kaplan")
