"""``bayescale cards``: list the model cards, or show one."""

from typing import Annotated

import typer
from rich.table import Table

from bayescale.cli.common import JsonOpt, app, fmt, guarded, out_console, print_json


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale cards\n\n"
        "  bayescale cards chinchilla\n\n"
        "  bayescale cards my_card.toml --json"
    )
)
@guarded
def cards(
    name: Annotated[
        str | None, typer.Argument(help="Card name or .toml path to show in full.")
    ] = None,
    as_json: JsonOpt = False,
):
    """List the built-in model cards, or show one card's priors, likelihood and references."""
    from bayescale.core.cards import list_cards, load_card

    if name is None:
        loaded = [load_card(n) for n in list_cards()]
        if as_json:
            print_json([{"name": c.name, "law": c.law, "likelihood": c.family,
                         "description": c.description} for c in loaded])
            return
        t = Table(title="Model cards")
        for col in ("name", "law", "likelihood", "description"):
            t.add_column(col)
        for c in loaded:
            t.add_row(c.name, c.law, c.family, c.description)
        out_console().print(t)
        return
    card = load_card(name)
    if as_json:
        print_json(card.to_dict())
        return
    _show_card(card)


def _show_card(card) -> None:
    console = out_console()
    law = card.law_spec
    console.print(f"[bold]{card.name}[/]: {card.description}", markup=True)
    console.print(f"law {card.law}: {law.formula}  ({law.reference})", markup=False)
    t = Table(title="Priors")
    t.add_column("param")
    t.add_column("prior")
    t.add_column("stated at")
    for p in card.param_names:
        if p in card.tie:
            t.add_row(p, f"= {card.tie[p]} (tied)", "")
            continue
        scale = card.prior_scale.get(p)
        where = ""
        if scale is not None:
            amp = next((a for a in law.amplitudes if a.name == p), None)
            var = getattr(amp, "variable", None) or "input"
            where = f"term at {var} = {scale:g}"
        t.add_row(p, str(card.priors[p]), where)
    for k, v in card.noise_priors.items():
        on = "accuracy" if getattr(card, "kind", "loss") == "accuracy" else "log loss"
        t.add_row(k, str(v), f"{card.family} noise on {on}")
    console.print(t)
    for ref in card.references:
        console.print(f"\nReference: {ref.source}", markup=False, style="bold")
        r = Table()
        r.add_column("param")
        r.add_column("value", justify="right")
        prob = f" ({ref.interval_prob:g})" if ref.interval_prob else ""
        r.add_column(f"interval{prob}", justify="right")
        for k, v in ref.params.items():
            iv = ref.intervals.get(k)
            r.add_row(k, fmt(v), "" if iv is None else f"[{fmt(iv[0])}, {fmt(iv[1])}]")
        for k, v in ref.exponents.items():
            r.add_row(f"exponent {k}", fmt(v), "")
        console.print(r)
        if ref.citation:
            console.print(f"  {ref.citation}", markup=False)
