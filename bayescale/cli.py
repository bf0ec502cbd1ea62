"""The ``bayescale`` command line: fit, predict, allocate, plot, report, compare and backtest.

Data and JSON go to stdout; progress, warnings and errors go to stderr. Exit codes: 0 success,
2 bad input (an unreadable runs table, a bad option, an unknown card or prior; one line
``error: <message>`` on stderr, no traceback), 5 sampler problems under ``--strict``, 1 anything
unexpected (set ``BAYESCALE_DEBUG=1`` to see its traceback).

PyMC, ArviZ and matplotlib are imported inside the commands that need them, so ``bayescale --help``
and ``bayescale cards`` start fast. BLAS and OpenMP are limited to one thread unless the
environment says otherwise: the sampler already runs one chain per core, and oversubscribing cores
made sampling several times slower.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import contextlib  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bayescale import __version__  # noqa: E402
from bayescale.errors import (  # noqa: E402
    BayescaleError,
    ConvergenceError,
    InputError,
    SamplerWarning,
)

__all__ = ["EXIT_INPUT", "EXIT_OK", "EXIT_SAMPLER", "EXIT_UNEXPECTED", "app", "main"]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INPUT = 2
EXIT_SAMPLER = 5

app = typer.Typer(
    name="bayescale",
    help=(
        "Bayesian inference of neural scaling laws (Kaplan 2020, Chinchilla 2022): posteriors, "
        "extrapolation risk and compute-optimal allocation.\n\n"
        "Data and JSON go to stdout; progress, warnings and errors to stderr. Exit codes: 0 ok, "
        "2 bad input, 5 sampler problems under --strict, 1 unexpected."
    ),
    epilog=(
        "Examples:\n\n"
        "  bayescale demo --out demo/\n\n"
        "  bayescale fit runs.csv --law chinchilla --out fit/\n\n"
        "  bayescale predict fit/ --N 7e10 --D 1.4e12 --json\n\n"
        "  bayescale optimal fit/ --budget 5.76e23\n\n"
        "  bayescale cards chinchilla"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


# --------------------------------------------------------------------------------------------
# Consoles, errors and output helpers
# --------------------------------------------------------------------------------------------


def _err() -> Console:
    """Console on stderr for progress, warnings and errors."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out() -> Console:
    """Console on stdout for tables (wide when not a terminal, so columns are not truncated)."""
    tty = sys.stdout.isatty()
    return Console(highlight=False, width=None if tty else 160)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _fail(message: str, code: int):
    _err().print(f"error: {message}", style="bold red", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _guarded(command):
    """Map bayescale errors to one stderr line and an exit code (2 input, 5 sampler, 1 other)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except ConvergenceError as err:
            _fail(_one_line(err), EXIT_SAMPLER)
        except BayescaleError as err:
            _fail(_one_line(err), EXIT_INPUT)
        except Exception as err:
            if os.environ.get("BAYESCALE_DEBUG"):
                raise
            _fail(
                f"unexpected {type(err).__name__}: {_one_line(err)} "
                "(rerun with BAYESCALE_DEBUG=1 for the traceback)",
                EXIT_UNEXPECTED,
            )

    return wrapper


def _print_json(obj) -> None:
    from bayescale.summary import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def _json_text(obj) -> str:
    from bayescale.summary import to_jsonable

    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"


def _fmt(x, digits: int = 4) -> str:
    """Compact number: 4 significant digits, scientific when large or small."""
    if x is None:
        return "-"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if x != x:
        return "nan"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}g}"
    return f"{x:.{digits - 1}e}"


@contextlib.contextmanager
def _sampler_warnings():
    """Record warnings raised inside and print each on stderr: sampler problems in red."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplerWarning)
        try:
            yield caught
        finally:
            console = _err()
            for w in caught:
                if issubclass(w.category, SamplerWarning):
                    console.print(
                        f"WARNING (sampler): {w.message}", style="bold red", markup=False
                    )
                else:
                    console.print(
                        f"warning: {w.category.__name__}: {w.message}",
                        style="yellow",
                        markup=False,
                    )


def _resolve(path) -> Path:
    return Path(path).expanduser().resolve()


def _check_out_dir(out: Path, names, inputs) -> Path:
    """Refuse an output folder that is a file or would overwrite one of the inputs."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder; give a folder for the outputs")
    ins = {_resolve(p) for p in inputs if p is not None}
    for name in names:
        target = _resolve(out / name)
        if target in ins:
            raise InputError(
                f"refusing to overwrite the input {target}: choose another --out folder"
            )
    return out


def _fit_path(path: Path) -> Path:
    """A posterior file, or ``posterior.nc`` inside a folder."""
    path = Path(path)
    return path / "posterior.nc" if path.is_dir() else path


def _load_fit(path: Path):
    from bayescale.io import load

    return load(_fit_path(path))


def _parse_priors(items) -> dict | None:
    if not items:
        return None
    from bayescale.priors import parse_override

    out = {}
    for item in items:
        name, prior = parse_override(item)
        if name in out:
            raise InputError(f"--prior sets {name!r} twice; give each parameter once")
        out[name] = prior
    return out


def _load_runs(path, *, cards, maps, filters):
    """Read the runs with the CLI's mapping and filters, checked against every card's needs."""
    from bayescale.runs import load_runs, parse_mapping

    mapping = parse_mapping(maps) if maps else None
    n_req = max(c.n_params for c in cards)
    variables = tuple(sorted({v for c in cards for v in c.law_spec.variables}, key="NDU".index))
    runs = load_runs(
        str(path), mapping=mapping, n_params_required=n_req, variables=variables, **filters
    )
    _report_sweep_drops(runs)
    return runs


def _report_sweep_drops(runs) -> None:
    """Say on stderr how many runs --drop-duplicates and --best-of-sweep dropped."""
    prov = runs.provenance
    n_in = prov.get("n_rows_in")
    for name, what in (
        ("drop_duplicates", "exact (N, D, loss) repeats"),
        ("best_of_sweep", "runs that were not the lowest loss of their (N, D)"),
    ):
        if name in prov.get("filters", {}):
            n = prov["dropped"][name]
            ids = prov.get("dropped_runs", {}).get(name, [])
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            _err().print(
                f"--{name.replace('_', '-')}: dropped {n} of {n_in} rows ({what})"
                + (f": {shown}" if shown else ""),
                markup=False, highlight=False,
            )


def _write_text(path: Path, text: str) -> Path:
    from bayescale.io import atomic_write_text

    return atomic_write_text(path, text)


def _write_csv(path: Path, frame, **kwargs) -> Path:
    from bayescale.io import atomic_write

    return atomic_write(path, lambda p: frame.to_csv(p, **kwargs))


def _as_floats(values) -> list[float]:
    return [float(v) for v in values] if values else []


# --------------------------------------------------------------------------------------------
# Shared option types
# --------------------------------------------------------------------------------------------

RunsArg = Annotated[
    Path, typer.Argument(help="Runs table: .csv, .tsv or .parquet (columns N, D or C, loss).")
]
FitArg = Annotated[
    Path, typer.Argument(help="A posterior.nc written by `bayescale fit`, or its folder.")
]
LawOpt = Annotated[
    str | None,
    typer.Option(
        "--law", "--card",
        help="One model card: built-in name (`bayescale cards`) or .toml path. Default: the law "
        "ensemble (chinchilla, chinchilla-tied, kaplan-linf weighted by stacking of rolling "
        "forecasts, with an extrapolation discrepancy).",
    ),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder (created if missing).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same answer).")]
DrawsOpt = Annotated[int, typer.Option("--draws", help="Posterior draws kept per chain.")]
TuneOpt = Annotated[int, typer.Option("--tune", help="Tuning steps per chain.")]
ChainsOpt = Annotated[int, typer.Option("--chains", help="Number of chains.")]
SamplerOpt = Annotated[str, typer.Option("--sampler", help="NUTS implementation: nutpie or pymc.")]
PriorOpt = Annotated[
    list[str] | None,
    typer.Option("--prior", help="Prior override, e.g. 'alpha=Beta(2, 5)' (repeatable)."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map", help="Column mapping CANONICAL=COLUMN, e.g. N=params_total (repeatable)."
    ),
]
GroupOpt = Annotated[str | None, typer.Option("--group", help="Keep only rows of this group.")]
GroupByOpt = Annotated[
    str | None,
    typer.Option(
        "--group-by",
        help="Column labelling families of runs (e.g. dataset_name): fit them all in one "
        "partially pooled model (without --law: the law ensemble, every card pooled); every "
        "answer is then per family (backtest: pooled against each family alone).",
    ),
]
DropOpt = Annotated[
    int, typer.Option("--drop-top-loss", help="Drop the K highest-loss runs (outliers).")
]
MaxLossOpt = Annotated[float | None, typer.Option("--max-loss", help="Keep runs with loss <= X.")]
MinLossOpt = Annotated[float | None, typer.Option("--min-loss", help="Keep runs with loss >= X.")]
MinFlopsOpt = Annotated[float | None, typer.Option("--min-flops", help="Keep runs with C >= X.")]
MaxFlopsOpt = Annotated[float | None, typer.Option("--max-flops", help="Keep runs with C <= X.")]
MinParamsOpt = Annotated[float | None, typer.Option("--min-params", help="Keep runs with N >= X.")]
MaxParamsOpt = Annotated[float | None, typer.Option("--max-params", help="Keep runs with N <= X.")]
BestOfSweepOpt = Annotated[
    bool,
    typer.Option(
        "--best-of-sweep",
        help="Keep the lowest-loss run of each (N, D) (a tuned sweep); says how many it dropped.",
    ),
]
DropDupOpt = Annotated[
    bool,
    typer.Option(
        "--drop-duplicates", help="Drop exact (N, D, loss) repeats; says how many it dropped."
    ),
]
CiProbOpt = Annotated[float, typer.Option("--ci-prob", help="Interval probability, in (0, 1).")]
CiKindOpt = Annotated[
    str,
    typer.Option("--ci-kind", help="Interval kind: eti (equal-tailed) or hdi (highest density)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]
BudgetOpt = Annotated[
    list[float] | None, typer.Option("--budget", help="Compute budget in FLOPs (repeatable).")
]
NOpt = Annotated[
    list[float] | None, typer.Option("--N", help="Model size N in parameters (repeatable).")
]
DOpt = Annotated[list[float] | None, typer.Option("--D", help="Training tokens D (repeatable).")]
COpt = Annotated[list[float] | None, typer.Option("--C", help="Compute C in FLOPs (repeatable).")]
TargetOpt = Annotated[
    float | None, typer.Option("--target-loss", help="Target loss: report P(loss < target).")
]


def _filters(
    group, drop_top_loss, max_loss, min_loss, min_flops, max_flops, min_params, max_params,
    *, best_of_sweep=False, drop_duplicates=False,
):
    return {
        "best_of_sweep": best_of_sweep,
        "drop_duplicates": drop_duplicates,
        "group": group,
        "drop_top_loss": drop_top_loss,
        "max_loss": max_loss,
        "min_loss": min_loss,
        "min_flops": min_flops,
        "max_flops": max_flops,
        "min_params": min_params,
        "max_params": max_params,
    }


def _version_callback(value: bool):
    if value:
        sys.stdout.write(f"bayescale {__version__}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
):
    """Bayesian inference of neural scaling laws."""


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def _summary_table(table, *, title: str, truth=None) -> Table:
    """Rich table of :func:`bayescale.summary.summarize` output (with true values if given)."""
    lo_col = next(c for c in table.columns if c.endswith("_lower"))
    hi_col = next(c for c in table.columns if c.endswith("_upper"))
    label = lo_col.removesuffix("_lower")
    t = Table(title=title)
    t.add_column("param")
    if truth is not None:
        t.add_column("true", justify="right")
    for name in ("median", f"{label} lower", f"{label} upper", "mean", "sd", "r_hat", "ess_bulk"):
        t.add_column(name, justify="right")
    if truth is not None:
        t.add_column(f"true in {label}", justify="center")
    for name, row in table.iterrows():
        cells = [str(name)]
        if truth is not None:
            cells.append(_fmt(truth.get(name)))
        cells += [
            _fmt(row["median"]),
            _fmt(row[lo_col]),
            _fmt(row[hi_col]),
            _fmt(row["mean"]),
            _fmt(row["sd"]),
            "-" if row["r_hat"] != row["r_hat"] else f"{row['r_hat']:.3f}",
            "-" if row["ess_bulk"] != row["ess_bulk"] else f"{row['ess_bulk']:.0f}",
        ]
        if truth is not None:
            v = truth.get(name)
            cells.append("-" if v is None else ("yes" if row[lo_col] <= v <= row[hi_col] else "NO"))
        t.add_row(*cells)
    return t


def _run_fit(runs, card, *, draws, tune, chains, seed, sampler, progress, group_by=None):
    """Fit with warnings shown on stderr and stdout protected from sampler output.

    ``card`` None fits the default law ensemble (pooled over the families with ``group_by``).
    """
    from bayescale.fitting import fit

    console = _err()
    if card is None:
        from bayescale.ensemble.build import default_cards

        pooled = "" if group_by is None else f", each pooled over the families of {group_by!r}"
        console.print(
            f"fitting the law ensemble [bold]{', '.join(default_cards(runs))}[/] to "
            f"{len(runs)} runs{pooled} "
            f"(weights and discrepancy from rolling splits): {chains} chains x {draws} draws "
            f"after {tune} tuning steps, seed {seed}"
        )
        progress = progress or None
    else:
        card = card if card is not None else _default_card()
        console.print(
            f"fitting card [bold]{card.name}[/] ({card.law}, {card.family} noise) to {len(runs)} "
            f"runs: {chains} chains x {draws} draws after {tune} tuning steps, seed {seed}"
        )
    with _sampler_warnings(), contextlib.redirect_stdout(sys.stderr):
        tree = fit(
            runs,
            card=card,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            sampler=sampler,
            strict=False,
            progress=progress,
            group_by=group_by,
        )
    sampler_info = json.loads(tree.attrs.get("bayescale_sampler", "{}"))
    console.print(
        f"done: compile {sampler_info.get('compile_seconds', '?')} s, "
        f"sampling {sampler_info.get('sample_seconds', '?')} s"
    )
    return tree


def _default_card():
    from bayescale.cards import load_card

    return load_card("chinchilla")


def _cards_for(law, priors=None) -> list:
    """The cards a command fits: ``[card]`` for ``--law``, the ensemble's cards otherwise."""
    from bayescale.cards import load_card

    if law is not None:
        return [load_card(law, priors=priors)]
    if priors:
        raise InputError("--prior needs one card: add --law NAME")
    from bayescale.ensemble.build import DEFAULT_CARDS

    return [load_card(c) for c in DEFAULT_CARDS]


def _diagnostics_ok(tree) -> tuple[bool, list[str]]:
    from bayescale.ensemble.members import is_ensemble, members

    if is_ensemble(tree):
        oks, problems = [], []
        for name, _, member in members(tree):
            ok, probs = _diagnostics_ok(member)
            oks.append(ok)
            problems += [f"{name}: {p}" for p in probs]
        return all(oks), problems
    diag = json.loads(tree.attrs.get("bayescale_diagnostics", "{}"))
    return bool(diag.get("ok", True)), list(diag.get("problems", []))


def _strict_exit(tree, where: Path) -> None:
    ok, problems = _diagnostics_ok(tree)
    if not ok:
        _fail(
            "sampler problems under --strict: " + "; ".join(problems)
            + f" (posterior written to {where} for inspection)",
            EXIT_SAMPLER,
        )


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale fit runs.csv --law chinchilla --out fit/\n\n"
        "  bayescale fit runs.csv --law kaplan --map N=params_no_embed --map loss=loss_c4_val "
        "--out fit/\n\n"
        "  bayescale fit runs.csv --prior 'alpha=Beta(2, 5)' --drop-top-loss 5 --strict "
        "--out fit/\n\n"
        "With --strict, sampler problems give exit code 5; posterior.nc and summary.csv are "
        "still written so the fit can be inspected."
    )
)
@_guarded
def fit(
    runs: RunsArg,
    out: OutOpt,
    law: LawOpt = None,
    seed: SeedOpt = 0,
    draws: DrawsOpt = 2000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    sampler: SamplerOpt = "nutpie",
    prior: PriorOpt = None,
    map: MapOpt = None,
    group: GroupOpt = None,
    group_by: GroupByOpt = None,
    drop_top_loss: DropOpt = 0,
    max_loss: MaxLossOpt = None,
    min_loss: MinLossOpt = None,
    min_flops: MinFlopsOpt = None,
    max_flops: MaxFlopsOpt = None,
    min_params: MinParamsOpt = None,
    max_params: MaxParamsOpt = None,
    best_of_sweep: BestOfSweepOpt = False,
    drop_duplicates: DropDupOpt = False,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with code 5 on sampler problems.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show the sampler's progress (stderr).")
    ] = False,
):
    """Fit a scaling law to a table of runs: writes posterior.nc and summary.csv, prints JSON."""
    from bayescale.stats import check_ci

    check_ci(ci_prob, ci_kind)
    fit_cards = _cards_for(law, _parse_priors(prior))
    card = fit_cards[0] if law is not None else None
    filters = _filters(
        group, drop_top_loss, max_loss, min_loss, min_flops, max_flops, min_params, max_params,
        best_of_sweep=best_of_sweep, drop_duplicates=drop_duplicates,
    )
    if group_by is not None:
        filters["group_by"] = group_by
    run_table = _load_runs(runs, cards=fit_cards, maps=map, filters=filters)
    out = _check_out_dir(out, ["posterior.nc", "summary.csv"], [runs])
    tree = _run_fit(
        run_table, card, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
        progress=progress, group_by=group_by,
    )
    _write_fit_outputs(tree, out, ci_prob=ci_prob, ci_kind=ci_kind)
    if group_by is not None:
        from bayescale.families.summary import fit_summary_json
    else:
        from bayescale.summary import fit_summary_json

    result = fit_summary_json(tree, ci_prob=ci_prob, ci_kind=ci_kind)
    result["files"] = {"posterior": str(out / "posterior.nc"), "summary": str(out / "summary.csv")}
    _print_json(result)
    if strict:
        _strict_exit(tree, out / "posterior.nc")


def _write_fit_outputs(tree, out: Path, *, ci_prob, ci_kind):
    from bayescale.io import save
    from bayescale.summary import summarize

    if "bayescale_families" in tree.attrs:
        from bayescale.families.summary import summary_table

        table = summary_table(tree, ci_prob=ci_prob, ci_kind=ci_kind)
    else:
        table = summarize(tree, ci_prob=ci_prob, ci_kind=ci_kind)
    out.mkdir(parents=True, exist_ok=True)
    save(tree, out / "posterior.nc")
    _write_csv(out / "summary.csv", table)
    _err().print(f"wrote {out / 'posterior.nc'} and {out / 'summary.csv'}")
    return table


# --------------------------------------------------------------------------------------------
# cards
# --------------------------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale cards\n\n"
        "  bayescale cards chinchilla\n\n"
        "  bayescale cards my_card.toml --json"
    )
)
@_guarded
def cards(
    name: Annotated[
        str | None, typer.Argument(help="Card name or .toml path to show in full.")
    ] = None,
    as_json: JsonOpt = False,
):
    """List the built-in model cards, or show one card's priors, likelihood and references."""
    from bayescale.cards import list_cards, load_card

    console = _out()
    if name is None:
        loaded = [load_card(n) for n in list_cards()]
        if as_json:
            _print_json(
                [
                    {"name": c.name, "law": c.law, "likelihood": c.family,
                     "description": c.description}
                    for c in loaded
                ]
            )
            return
        t = Table(title="Model cards")
        for col in ("name", "law", "likelihood", "description"):
            t.add_column(col)
        for c in loaded:
            t.add_row(c.name, c.law, c.family, c.description)
        console.print(t)
        return
    card = load_card(name)
    if as_json:
        _print_json(card.to_dict())
        return
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
        t.add_row(k, str(v), f"{card.family} noise on log loss")
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
            r.add_row(k, _fmt(v), "" if iv is None else f"[{_fmt(iv[0])}, {_fmt(iv[1])}]")
        for k, v in ref.exponents.items():
            r.add_row(f"exponent {k}", _fmt(v), "")
        console.print(r)
        if ref.citation:
            console.print(f"  {ref.citation}", markup=False)


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


def _queries(N, D, C):
    given = {k: v for k, v in (("N", N), ("D", D), ("C", C)) if v}
    if not given:
        raise InputError("give the query points: two of --N, --D, --C (e.g. --N 7e10 --D 1.4e12)")
    lengths = {len(v) for v in given.values()}
    if len(lengths - {1}) > 1:
        shown = ", ".join(f"--{k} x{len(v)}" for k, v in given.items())
        raise InputError(
            f"--N, --D and --C are paired point by point and need equal counts (or one value); "
            f"got {shown}"
        )
    return {k: _as_floats(v) for k, v in given.items()}


def _predict_json(ds) -> dict:
    import numpy as np

    queries = []
    has_target = "p_below_target" in ds
    for i in range(ds.sizes["query"]):
        q = {
            "N": float(ds["N"][i]),
            "D": float(ds["D"][i]),
            "C": float(ds["C"][i]),
            "median": float(ds["median"][i]),
            "ci": [float(v) for v in np.asarray(ds["ci"][i])],
            "pi": [float(v) for v in np.asarray(ds["pi"][i])],
        }
        if "mean" in ds:
            q["mean"] = float(ds["mean"][i])
        if has_target:
            q["p_below_target"] = float(ds["p_below_target"][i])
            if "p_law_below_target" in ds:
                q["p_law_below_target"] = float(ds["p_law_below_target"][i])
        q["extrapolation"] = {
            k: float(ds[f"extrapolation_{k}"][i]) for k in ("N", "D", "C")
            if f"extrapolation_{k}" in ds
        }
        if "validated" in ds:
            q["validated"] = bool(ds["validated"][i])
        queries.append(q)
    out = {
        "ci_prob": float(ds.attrs.get("ci_prob")),
        "ci_kind": str(ds.attrs.get("ci_kind")),
        "card": ds.attrs.get("card"),
    }
    if has_target:
        out["target_loss"] = float(ds.attrs.get("target_loss"))
    if "discrepancy_tau" in ds.attrs:
        out["discrepancy_tau"] = float(ds.attrs["discrepancy_tau"])
    if "validated_decades" in ds.attrs:
        out["validated_decades"] = float(ds.attrs["validated_decades"])
    out["queries"] = queries
    _warn_unvalidated(
        [q["extrapolation"].get("C", float("nan")) for q in queries if not q.get("validated", 1)],
        out.get("validated_decades"), what="query",
    )
    return out


def _warn_unvalidated(distances, validated, *, what: str) -> None:
    """Warn on stderr about answers further out than the rolling backtests validated."""
    if not distances or validated is None:
        return
    far = max(distances)
    if validated <= 0:
        reason = ("no rolling backtest of this fit validated any extrapolation (one card; fit "
                  "without --law for the law ensemble, whose rolling splits validate a distance)")
    else:
        reason = (f"the fit's rolling backtests validated only {validated:.2g} decades of "
                  "compute beyond their training runs")
    _err().print(
        f"[bold yellow]warning[/]: {len(distances)} {what}(s) up to {far:.3g} decades of compute "
        f"beyond the fitted runs are UNVALIDATED: {reason}. Their intervals assume the law "
        "holds that far.", soft_wrap=True,
    )


def _predict_table(result: dict) -> Table:
    pct = f"{result['ci_prob'] * 100:g}%"
    t = Table(
        title=f"Predicted loss ({result['card']}; {pct} {result['ci_kind']} intervals)",
        caption="credible: uncertainty about the law; predictive: one new run, noise included. "
        "extrap.: decades outside the fitted runs (N/D/C)",
    )
    for col in ("N", "D", "C", "median", f"credible {pct}", f"predictive {pct}"):
        t.add_column(col, justify="right")
    target = "target_loss" in result
    if target:
        t.add_column(f"P(loss < {result['target_loss']:g})", justify="right")
    t.add_column("extrap. N/D/C", justify="right")
    for q in result["queries"]:
        ex = q["extrapolation"]
        cells = [
            _fmt(q["N"]),
            _fmt(q["D"]),
            _fmt(q["C"]),
            _fmt(q["median"]),
            f"[{_fmt(q['ci'][0])}, {_fmt(q['ci'][1])}]",
            f"[{_fmt(q['pi'][0])}, {_fmt(q['pi'][1])}]",
        ]
        if target:
            cells.append(f"{q['p_below_target']:.3f}")
        cells.append("/".join(f"{ex.get(k, 0):+.1f}" for k in ("N", "D", "C")))
        t.add_row(*cells)
    return t


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale predict fit/ --N 7e10 --D 1.4e12\n\n"
        "  bayescale predict fit/posterior.nc --N 1e9 --N 1e10 --C 1e21 --C 1e22 --json\n\n"
        "  bayescale predict fit/ --N 7e10 --D 1.4e12 --target-loss 2.0 --ci-prob 0.95\n\n"
        "--N/--D/--C pair up point by point; give two of them (C = 6ND gives the third)."
    )
)
@_guarded
def predict(
    fit_path: FitArg,
    N: NOpt = None,
    D: DOpt = None,
    C: COpt = None,
    target_loss: TargetOpt = None,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    discrepancy: Annotated[
        float | None,
        typer.Option(
            "--discrepancy",
            help="Extrapolation discrepancy tau: sd of log loss per decade of compute beyond "
            "the fitted runs; widens the predictive interval. Default: the fit's own (a law "
            "ensemble learns it on rolling splits; none for one card).",
        ),
    ] = None,
):
    """Predict the loss of new runs: median, credible and predictive intervals, extrapolation."""
    from bayescale.stats import check_ci

    check_ci(ci_prob, ci_kind)
    q = _queries(N, D, C)
    tree = _load_fit(fit_path)
    from bayescale.prediction import predict as _predict

    def answer(t):
        return _predict_json(_predict(
            t, **q, target_loss=target_loss, ci_prob=ci_prob, ci_kind=ci_kind, random_seed=seed,
            discrepancy="auto" if discrepancy is None else discrepancy,
        ))

    if "bayescale_families" in tree.attrs:  # a pooled fit: one answer per family
        _per_family(tree, answer, _predict_table, as_json)
        return
    result = answer(tree)
    if as_json:
        _print_json(result)
    else:
        _out().print(_predict_table(result))


def _per_family(tree, answer, tables, as_json) -> None:
    """Print ``answer(family_view)`` of every family of a pooled fit: JSON keyed by family."""
    from bayescale.families.views import families_info, family_labels, family_view

    result = {lab: answer(family_view(tree, lab)) for lab in family_labels(tree)}
    if as_json:
        _print_json({"group_by": families_info(tree)["group_by"], "families": result})
        return
    console = _out()
    for lab, res in result.items():
        console.print(f"[bold]family {lab}[/]")
        made = tables(res)
        for t in made if isinstance(made, list) else [made]:
            console.print(t)


# --------------------------------------------------------------------------------------------
# optimal
# --------------------------------------------------------------------------------------------


def _ci_triplet(ds, name: str, index=None) -> dict:
    import numpy as np

    med = ds[name] if index is None else ds[name][index]
    ci = ds[f"{name}_ci"] if index is None else ds[f"{name}_ci"][index]
    lo, hi = (float(v) for v in np.asarray(ci))
    return {"median": float(med), "lo": lo, "hi": hi}


def _optimal_json(tree, budgets, *, ci_prob, ci_kind, target_loss=None, prob=0.9, seed=0):
    from bayescale.allocation import compute_for_target, optimal
    from bayescale.posterior import card_of

    ds = optimal(tree, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind)
    rows = []
    for i in range(ds.sizes["budget"]):
        row = {"budget": float(ds["budget"][i]) if "budget" in ds.coords else float(budgets[i])}
        for name in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
            row[name] = _ci_triplet(ds, name, i)
        rows.append(row)
    for i, row in enumerate(rows):
        if "validated" in ds:
            row["extrapolation_C"] = float(ds["extrapolation_C"][i])
            row["validated"] = bool(ds["validated"][i])
    out = {
        "card": ds.attrs.get("card", card_of(tree).name),
        "ci_prob": ci_prob,
        "ci_kind": ci_kind,
        "method": ds.attrs.get("method"),
        "validated_decades": ds.attrs.get("validated_decades"),
        "budgets": rows,
        "exponents": {"a": _ci_triplet(ds, "exponent_a"), "b": _ci_triplet(ds, "exponent_b")},
    }
    _warn_unvalidated([r["extrapolation_C"] for r in rows if not r.get("validated", True)],
                      ds.attrs.get("validated_decades"), what="budget")
    if target_loss is not None:
        out["compute_for_target"] = compute_for_target(
            tree, target_loss=target_loss, prob=prob, ci_prob=ci_prob, ci_kind=ci_kind,
            random_seed=seed,
        )
    return out


def _optimal_tables(result: dict) -> list[Table]:
    pct = f"{result['ci_prob'] * 100:g}%"
    t = Table(
        title=f"Compute-optimal allocation ({result['card']}; medians, {pct} "
        f"{result['ci_kind']} intervals)"
    )
    t.add_column("budget C", justify="right")
    truth = all("true" in row for row in result["budgets"])
    for col in ("N*", "D*", "D*/N*", "loss at optimum"):
        t.add_column(col, justify="right")
    if truth:
        for col in ("true N*", "true D*/N*"):
            t.add_column(col, justify="right")
    for row in result["budgets"]:
        cells = [_fmt(row["budget"])]
        for name in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
            v = row[name]
            cells.append(f"{_fmt(v['median'])} [{_fmt(v['lo'])}, {_fmt(v['hi'])}]")
        if truth:
            cells += [_fmt(row["true"]["N_opt"]), _fmt(row["true"]["tokens_per_param"])]
        t.add_row(*cells)
    tables = [t]
    e = Table(title=f"Exponents N* ∝ C^a, D* ∝ C^b ({pct} {result['ci_kind']})")
    for col in ("exponent", "median", "lower", "upper"):
        e.add_column(col, justify="right")
    for k, v in result["exponents"].items():
        e.add_row(k, _fmt(v["median"]), _fmt(v["lo"]), _fmt(v["hi"]))
    tables.append(e)
    cft = result.get("compute_for_target")
    if cft:
        c = Table(
            title=f"Smallest compute with P(loss < {cft.get('target_loss')}) >= {cft.get('prob')}"
        )
        c.add_column("quantity")
        c.add_column("value", justify="right")
        if cft.get("statement"):
            c.add_row("answer", cft["statement"])
        for k, v in cft.items():
            if k == "statement" or v is None:
                continue  # the edge answers have no budget: never show the search floor
            if k == "reached_by":
                v = (f"{v['run']} (N {_fmt(v['N'])}, D {_fmt(v['D'])}, C {_fmt(v['C'])}, "
                     f"loss {_fmt(v['loss'])})")
            elif isinstance(v, dict):
                v = f"{_fmt(v.get('median'))} [{_fmt(v.get('lo'))}, {_fmt(v.get('hi'))}]"
            else:
                v = _fmt(v)
            c.add_row(k, v)
        tables.append(c)
    return tables


InferenceTokensOpt = Annotated[
    float | None,
    typer.Option(
        "--inference-tokens",
        help="Tokens the model will serve: also the inference-aware optimum, minimising "
        "training 6ND plus inference 2NT FLOPs (Sardana et al. 2024).",
    ),
]


def _inference_table(inf: dict) -> Table:
    pct = f"{inf['ci_prob'] * 100:g}%"
    t = Table(
        title=f"Training-only vs inference-aware optimum, T = {_fmt(inf['inference_tokens'])} "
        f"tokens served (medians, {pct} {inf['ci_kind']})"
    )
    for col in ("budget C", "optimum", "N*", "D*", "D*/N*", "loss", "training share"):
        t.add_column(col, justify="right")
    for row in inf["budgets"]:
        for side in ("training_only", "inference_aware"):
            v = row[side]
            cells = [_fmt(row["budget"]), side.replace("_", "-")]
            for name in ("N_opt", "D_opt", "tokens_per_param", "loss_opt", "train_fraction"):
                x = v.get(name)
                cells.append(
                    f"{_fmt(x['median'])} [{_fmt(x['lo'])}, {_fmt(x['hi'])}]" if x else "1"
                )
            t.add_row(*cells)
    return t


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale optimal fit/ --budget 5.76e23\n\n"
        "  bayescale optimal fit/ --budget 1e22 --budget 1e24 --json\n\n"
        "  bayescale optimal fit/ --budget 1e23 --target-loss 2.0 --prob 0.9"
    )
)
@_guarded
def optimal(
    fit_path: FitArg,
    budget: BudgetOpt = None,
    target_loss: Annotated[
        float | None,
        typer.Option("--target-loss", help="Also find the smallest compute reaching this loss."),
    ] = None,
    prob: Annotated[
        float, typer.Option("--prob", help="Required P(loss < target) for --target-loss.")
    ] = 0.9,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    inference_tokens: InferenceTokensOpt = None,
):
    """Compute-optimal N*, D*, D*/N* and loss per budget, with the exponents a and b."""
    from bayescale.stats import check_ci

    check_ci(ci_prob, ci_kind)
    if not budget:
        raise InputError("give at least one --budget in FLOPs, e.g. --budget 5.76e23")
    if not 0 < prob < 1:
        raise InputError(f"--prob must be strictly between 0 and 1, got {prob!r}")
    tree = _load_fit(fit_path)
    if "bayescale_families" in tree.attrs:  # a pooled fit: one answer per family
        if inference_tokens:
            raise InputError("--inference-tokens is not available for a pooled fit yet")
        _per_family(tree, lambda t: _optimal_json(
            t, _as_floats(budget), ci_prob=ci_prob, ci_kind=ci_kind, target_loss=target_loss,
            prob=prob, seed=seed,
        ), _optimal_tables, as_json)
        return
    result = _optimal_json(
        tree, _as_floats(budget), ci_prob=ci_prob, ci_kind=ci_kind, target_loss=target_loss,
        prob=prob, seed=seed,
    )
    if inference_tokens:
        from bayescale.planning.summary import inference_side_by_side

        result["inference"] = inference_side_by_side(
            tree, budgets=_as_floats(budget), inference_tokens=inference_tokens,
            target_loss=target_loss, ci_prob=ci_prob, ci_kind=ci_kind,
        )
    if as_json:
        _print_json(result)
    else:
        console = _out()
        for t in _optimal_tables(result):
            console.print(t)
        if inference_tokens:
            console.print(_inference_table(result["inference"]))


# --------------------------------------------------------------------------------------------
# contrast
# --------------------------------------------------------------------------------------------


def _contrast_tables(doc: dict) -> list[Table]:
    pct = f"{doc['ci_prob'] * 100:g}%"
    o = Table(title=f"Compute-optimal per family (medians, {pct} {doc['ci_kind']} intervals)")
    for col in ("family", "budget C", "N*", "D*", "D*/N*", "loss at optimum"):
        o.add_column(col, justify="right")
    cells: dict = {}
    for r in doc["optimal"]:
        text = f"{_fmt(r['median'])} [{_fmt(r['lower'])}, {_fmt(r['upper'])}]"
        cells.setdefault((r["family"], r["budget"]), {})[r["quantity"]] = text
    for (fam, c), v in cells.items():
        o.add_row(fam, _fmt(c), v["N_opt"], v["D_opt"], v["tokens_per_param"], v["loss_opt"])
    t = Table(
        title=f"Contrasts between families ({pct} {doc['ci_kind']}); p = P(X's value < Y's); "
        "for loss_opt, P(X reaches the lower loss at C)"
    )
    for col in ("X vs Y", "quantity", "budget C", "median", "interval", "p"):
        t.add_column(col, justify="right")
    for r in doc["contrasts"]:
        t.add_row(
            r["pair"], r["quantity"], _fmt(r["budget"]) if r["budget"] is not None else "-",
            _fmt(r["median"]), f"[{_fmt(r['lower'])}, {_fmt(r['upper'])}]",
            f"{r['p_x_below_y']:.3f}",
        )
    p = Table(title="Pooling: each family's value, the spread tau across families (log scale)")
    for col in ("parameter", "family", "value", "tau", "log(value/mu)", "own value"):
        p.add_column(col, justify="right")
    for r in doc["pooling"]:
        ratio = "-"
        if r.get("log_ratio") is not None:
            ratio = (f"{_fmt(r['log_ratio'])} [{_fmt(r['log_ratio_lower'])}, "
                     f"{_fmt(r['log_ratio_upper'])}]")
        p.add_row(
            r["param"], r["family"],
            f"{_fmt(r['median'])} [{_fmt(r['lower'])}, {_fmt(r['upper'])}]",
            f"{_fmt(r['tau'])} [{_fmt(r['tau_lower'])}, {_fmt(r['tau_upper'])}]",
            ratio, "yes" if r.get("own_value") else "no",
        )
    return [o, t, p]


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale fit runs.csv --group-by dataset_name --out fit/\n\n"
        "  bayescale contrast fit/ --budget 1e22\n\n"
        "  bayescale contrast fit/ --budget 1e22 --budget 1e24 --json"
    )
)
@_guarded
def contrast(
    fit_path: FitArg,
    budget: BudgetOpt = None,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
    as_json: JsonOpt = False,
):
    """Compare the families of a pooled fit (--group-by): differences and their probabilities."""
    from bayescale.stats import check_ci

    check_ci(ci_prob, ci_kind)
    if not budget:
        raise InputError("give at least one --budget in FLOPs, e.g. --budget 1e22")
    tree = _load_fit(fit_path)
    if "bayescale_families" not in tree.attrs:
        raise InputError(
            f"{_fit_path(fit_path)} is a fit of one family; contrast needs a pooled fit "
            "(bayescale fit RUNS --group-by COLUMN)"
        )
    from bayescale.families.summary import contrast_json

    doc = contrast_json(tree, budgets=_as_floats(budget), ci_prob=ci_prob, ci_kind=ci_kind)
    if as_json:
        _print_json(doc)
    else:
        console = _out()
        for t in _contrast_tables(doc):
            console.print(t)


# --------------------------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------------------------


def _plan_tables(doc: dict) -> list[Table]:
    tgt = doc["target"]
    pct = f"{doc['settings']['ci_prob'] * 100:g}%"
    head = Table(title=f"Plan for the {tgt['description']} ({pct} interval width, {tgt['unit']})")
    for col in ("", "runs", "compute", "width", "shrinkage"):
        head.add_column(col, justify="right")
    head.add_row("today", "", "", _fmt(doc["width_now"]), "")
    head.add_row("after the plan", str(len(doc["runs"])), _fmt(doc["cost"]),
                 _fmt(doc["width_after"]), f"{doc['shrinkage']:.1%}")
    naive = doc["naive"]
    head.add_row("after the naive plan", str(len(naive["runs"])),
                 _fmt(sum(r["C"] for r in naive["runs"])), _fmt(doc["width_after_naive"]),
                 f"{doc['shrinkage_naive']:.1%}")
    runs = Table(title="Runs to train next (in order; width expected once each is in)")
    for col in ("N", "D", "C", "width after", "ESS", "valued by"):
        runs.add_column(col, justify="right")
    for r in doc["runs"]:
        runs.add_row(_fmt(r["N"]), _fmt(r["D"]), _fmt(r["C"]), _fmt(r["width_after"]),
                     f"{r['ess']:.0f}", r["method"])
    return [head, runs]


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale plan fit/ --target loss --N 7e10 --D 1.4e12 --budget-new 1e21\n\n"
        "  bayescale plan fit/ --target nopt --budget 5.76e23 --budget-new 1e21 --json\n\n"
        "  bayescale plan fit/ --target compute --target-loss 2.0 --budget-new 1e21"
    )
)
@_guarded
def plan(
    fit_path: FitArg,
    budget_new: Annotated[
        float, typer.Option("--budget-new", help="Total FLOPs for the new small runs.")
    ],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="The question: loss (law loss at --N/--D), nopt (N* at --budget) or compute "
            "(compute to reach --target-loss).",
        ),
    ] = "loss",
    N: Annotated[float | None, typer.Option("--N", help="Planned big run's N.")] = None,
    D: Annotated[float | None, typer.Option("--D", help="Planned big run's D.")] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Budget of the big run (target nopt).")
    ] = None,
    target_loss: Annotated[
        float | None, typer.Option("--target-loss", help="Loss to reach (target compute).")
    ] = None,
    max_runs: Annotated[int, typer.Option("--max-runs", help="Most runs in the plan.")] = 16,
    worlds: Annotated[
        int, typer.Option("--worlds", help="Simulated outcomes per candidate.")
    ] = 48,
    min_ess: Annotated[
        float, typer.Option("--min-ess", help="Importance ESS below which to refit.")
    ] = 100.0,
    refit: Annotated[
        bool, typer.Option("--refit/--no-refit", help="Refit where the weights degenerate.")
    ] = True,
    family: Annotated[
        str | None,
        typer.Option("--family", help="Pooled-family fit: plan for this family only."),
    ] = None,
    ci_prob: CiProbOpt = 0.9,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
):
    """Which new small runs most narrow the interval of a question about the big run."""
    tree = _load_fit(fit_path)
    from bayescale.planning import plan as _plan

    with _sampler_warnings():
        result = _plan(
            tree, target=target, N=N, D=D, budget=budget, target_loss=target_loss,
            budget_new=budget_new, max_runs=max_runs, n_worlds=worlds, min_ess=min_ess,
            refit=refit, ci_prob=ci_prob, random_seed=seed, family=family,
        )
    docs = ({k: v.to_dict() for k, v in result.items()} if isinstance(result, dict)
            else {None: result.to_dict()})
    if as_json:
        _print_json(docs[None] if None in docs else {"families": docs})
    else:
        console = _out()
        for name, doc in docs.items():
            if name is not None:
                console.print(f"family {name}")
            for t in _plan_tables(doc):
                console.print(t)


# --------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------

FIGURES = ("frontier", "isoflop", "allocation", "pairs", "residuals")


def _write_figures(tree, out: Path, *, budgets=None, ci_kind="eti", seed=0) -> list[Path]:
    """Draw every figure of a fit and save it as PNG and SVG in ``out``."""
    from bayescale import plots

    makers = {
        "frontier": lambda: plots.plot_frontier(tree, ci_kind=ci_kind),
        "isoflop": lambda: plots.plot_isoflop(tree, ci_kind=ci_kind),
        "allocation": lambda: plots.plot_allocation(tree, budgets=budgets, ci_kind=ci_kind),
        "pairs": lambda: plots.plot_pairs(tree),
        "residuals": lambda: plots.plot_residuals(tree, random_seed=seed),
    }
    card = None
    written = []
    for name, make in makers.items():
        if name in ("isoflop", "allocation"):
            from bayescale.posterior import card_of

            card = card or card_of(tree)
            if not card.law_spec.has_optimum:
                continue
        with _sampler_warnings():
            written += plots.save_figure(make(), out, name)
    return written


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale plot fit/ --out figures/\n\n"
        "  bayescale plot fit/posterior.nc --out figures/ --ci-kind hdi"
    )
)
@_guarded
def plot(
    fit_path: FitArg,
    out: OutOpt,
    budget: BudgetOpt = None,
    ci_kind: CiKindOpt = "eti",
    seed: SeedOpt = 0,
):
    """Draw every figure of a fit (PNG and SVG): frontier, IsoFLOP, allocation, pairs, residuals."""
    from bayescale.stats import check_ci

    check_ci(0.9, ci_kind)
    names = [f"{n}.{ext}" for n in FIGURES for ext in ("png", "svg")]
    out = _check_out_dir(out, names, [_fit_path(fit_path)])
    tree = _load_fit(fit_path)
    written = _write_figures(
        tree, out, budgets=_as_floats(budget) or None, ci_kind=ci_kind, seed=seed
    )
    _print_json({"figures": [str(p) for p in written]})


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def _query_list(N, D, C):
    if not (N or D or C):
        return None
    q = _queries(N, D, C)
    n = max(len(v) for v in q.values())
    return [{k: (v[i] if len(v) > 1 else v[0]) for k, v in q.items()} for i in range(n)]


REPORT_FILES = ("report.html", "report.md", "report.json", "posterior.nc", "summary.csv")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale report runs.csv --law chinchilla --out report/\n\n"
        "  bayescale report runs.csv --out report/ --compare kaplan --compare chinchilla-tied\n\n"
        "  bayescale report runs.csv --out report/ --budget 1e23 --N 7e10 --D 1.4e12 "
        "--target-loss 2.0"
    )
)
@_guarded
def report(
    runs: RunsArg,
    out: OutOpt,
    law: LawOpt = None,
    compare: Annotated[
        list[str] | None,
        typer.Option("--compare", help="Another card to compare against (repeatable)."),
    ] = None,
    holdout_frac: Annotated[
        float, typer.Option("--holdout-frac", help="Share of largest-compute runs held out.")
    ] = 0.2,
    budget: BudgetOpt = None,
    N: NOpt = None,
    D: DOpt = None,
    C: COpt = None,
    target_loss: TargetOpt = None,
    seed: SeedOpt = 0,
    draws: DrawsOpt = 2000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    prior: PriorOpt = None,
    map: MapOpt = None,
    group: GroupOpt = None,
    group_by: GroupByOpt = None,
    drop_top_loss: DropOpt = 0,
    max_loss: MaxLossOpt = None,
    min_loss: MinLossOpt = None,
    min_flops: MinFlopsOpt = None,
    max_flops: MaxFlopsOpt = None,
    min_params: MinParamsOpt = None,
    max_params: MaxParamsOpt = None,
    best_of_sweep: BestOfSweepOpt = False,
    drop_duplicates: DropDupOpt = False,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
    plan_budget: Annotated[
        float | None,
        typer.Option(
            "--plan-budget",
            help="Add 'What to run next': the new runs worth this many FLOPs that most narrow "
            "the interval of the loss at the first query.",
        ),
    ] = None,
    inference_tokens: InferenceTokensOpt = None,
):
    """Fit, answer and draw in one go: a self-contained report.html, report.md and report.json."""
    from bayescale.cards import load_card
    from bayescale.stats import check_ci

    check_ci(ci_prob, ci_kind)
    priors = _parse_priors(prior)
    if law is None and compare:
        law = "chinchilla"  # --compare compares single cards
    card = _cards_for(law, priors)[0] if law is not None else None
    others = [load_card(c) for c in (compare or [])]
    filters = _filters(
        group, drop_top_loss, max_loss, min_loss, min_flops, max_flops, min_params, max_params,
        best_of_sweep=best_of_sweep, drop_duplicates=drop_duplicates,
    )
    if group_by is not None:
        filters["group_by"] = group_by
    run_table = _load_runs(runs, cards=[*_cards_for(law, priors), *others], maps=map,
                           filters=filters)
    queries = _query_list(N, D, C)
    out = _check_out_dir(out, REPORT_FILES, [runs])
    from bayescale.report import report as _report

    what = f"card {card.name}" if card is not None else "the law ensemble"
    _err().print(f"building the report of {what} on {len(run_table)} runs in {out}")
    with _sampler_warnings(), contextlib.redirect_stdout(sys.stderr):
        result = _report(
            run_table,
            card=card,
            out_dir=out,
            priors=None,
            compare_cards=[c.name for c in others] or None,
            holdout_frac=holdout_frac,
            budgets=_as_floats(budget) or None,
            queries=queries,
            target_loss=target_loss,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            ci_prob=ci_prob,
            ci_kind=ci_kind,
            plan_budget=plan_budget,
            inference_tokens=inference_tokens,
            group_by=group_by,
        )
    files = {
        "html": out / "report.html",
        "markdown": out / "report.md",
        "json": out / "report.json",
        "posterior": out / "posterior.nc",
        "summary": out / "summary.csv",
    }
    _err().print(f"wrote {files['html']}")
    _print_json({"files": files, **result})


# --------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------


def _frame_table(frame, *, title: str, index_name: str) -> Table:
    t = Table(title=title)
    t.add_column(index_name)
    for col in frame.columns:
        t.add_column(str(col), justify="right")
    for idx, row in frame.iterrows():
        t.add_row(str(idx), *(_cell(v) for v in row.tolist()))
    return t


def _cell(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    if isinstance(value, int) or type(value).__name__.startswith("int"):
        return str(int(value))
    return _fmt(value)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale compare runs.csv --law kaplan --law chinchilla --out cmp/\n\n"
        "  bayescale compare runs.csv --law chinchilla --law chinchilla-tied --no-backtest "
        "--out cmp/ --json"
    )
)
@_guarded
def compare(
    runs: RunsArg,
    out: OutOpt,
    law: Annotated[
        list[str] | None,
        typer.Option("--law", "--card", help="A card to compare (repeatable; at least two)."),
    ] = None,
    holdout_frac: Annotated[
        float, typer.Option("--holdout-frac", help="Share of largest-compute runs held out.")
    ] = 0.2,
    backtest: Annotated[
        bool, typer.Option("--backtest/--no-backtest", help="Also backtest each card.")
    ] = True,
    seed: SeedOpt = 0,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    map: MapOpt = None,
    group: GroupOpt = None,
    drop_top_loss: DropOpt = 0,
    max_loss: MaxLossOpt = None,
    min_loss: MinLossOpt = None,
    min_flops: MinFlopsOpt = None,
    max_flops: MaxFlopsOpt = None,
    min_params: MinParamsOpt = None,
    max_params: MaxParamsOpt = None,
    best_of_sweep: BestOfSweepOpt = False,
    drop_duplicates: DropDupOpt = False,
    as_json: JsonOpt = False,
):
    """Compare laws on the same runs: PSIS-LOO, extrapolation backtest and a verdict."""
    from bayescale.cards import load_card

    names = list(law or ["kaplan", "kaplan-linf", "chinchilla", "chinchilla-tied"])
    if len(names) < 2:
        raise InputError("give at least two cards to compare, e.g. --law kaplan --law chinchilla")
    if len(set(names)) != len(names):
        raise InputError(f"--law names a card twice: {', '.join(names)}")
    card_objs = [load_card(n) for n in names]
    filters = _filters(
        group, drop_top_loss, max_loss, min_loss, min_flops, max_flops, min_params, max_params,
        best_of_sweep=best_of_sweep, drop_duplicates=drop_duplicates,
    )
    run_table = _load_runs(runs, cards=card_objs, maps=map, filters=filters)
    out = _check_out_dir(out, ["loo.csv", "backtests.csv", "comparison.json"], [runs])
    from bayescale.comparison import compare as _compare
    from bayescale.progress import fit_progress

    _err().print(f"comparing {', '.join(names)} on {len(run_table)} runs")
    n_fits = len(card_objs) * (2 if backtest else 1)
    with (
        _sampler_warnings(),
        contextlib.redirect_stdout(sys.stderr),
        fit_progress(n_fits, description="compare") as bar,
    ):
        result = _compare(
            run_table,
            cards=tuple(card_objs),
            holdout_frac=holdout_frac,
            backtest=backtest,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            progress=bar,
        )
    data = result.to_dict()
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "loo.csv", result.loo)
    if result.backtests is not None and len(result.backtests):
        _write_csv(out / "backtests.csv", result.backtests)
    _write_text(out / "comparison.json", _json_text(data))
    if as_json:
        _print_json(data)
        return
    console = _out()
    console.print(
        _frame_table(result.loo, title="PSIS-LOO (higher elpd is better)", index_name="card")
    )
    if result.backtests is not None and len(result.backtests):
        console.print(
            _frame_table(
                result.backtests,
                title=f"Backtest: top {holdout_frac:.0%} of runs by compute held out",
                index_name="card",
            )
        )
    if result.weights is not None:
        console.print(
            _frame_table(result.weights, title="Stacking weights: rolling forecasts vs PSIS-LOO",
                         index_name="card")
        )
        console.print(result.reading, markup=False, soft_wrap=True)
    console.print(f"verdict: {result.verdict}", markup=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------
# backtest
# --------------------------------------------------------------------------------------------


def _backtest_families(run_table, card, out, source, *, group_by, method, holdout_frac, cutoff,
                       calibration, discrepancy, as_json, **fit_kwargs) -> None:
    """``backtest --group-by``: per-family holdout, pooled fit against separate fits."""
    if method != "bayes" or cutoff is not None or calibration or discrepancy:
        raise InputError(
            "backtest --group-by supports --holdout-frac only (no --method mle, --cutoff, "
            "--calibration or --discrepancy)"
        )
    out = _check_out_dir(out, ["backtest.csv", "backtest_summary.csv"], [source])
    from bayescale.families.backtest import backtest_families
    from bayescale.families.summary import records

    what = "the law ensemble" if card is None else f"card {card.name}"
    _err().print(f"backtesting {what} pooled over {group_by} and per family alone")
    with _sampler_warnings(), contextlib.redirect_stdout(sys.stderr):
        summary, table = backtest_families(
            run_table, group_by=group_by, card=card, holdout_frac=holdout_frac, separate=True,
            **fit_kwargs,
        )
    _write_csv(out / "backtest.csv", table, index=False)
    _write_csv(out / "backtest_summary.csv", summary, index=False)
    ensemble = summary.attrs.get("ensemble")
    if as_json:
        _print_json({"group_by": group_by, "summary": records(summary),
                     **({"ensemble": ensemble} if ensemble else {})})
        return
    if ensemble:
        weights = ", ".join(f"{k} {v:.2f}" for k, v in ensemble["weights"].items())
        _err().print(f"pooled ensemble (training runs): weights {weights}; tau "
                     f"{ensemble['tau']:.3g}; validated {ensemble['validated_decades']:.2f} "
                     "decades")
    t = Table(title=f"Per-family backtest: top {holdout_frac:g} by compute held out per family")
    for col in summary.columns:
        t.add_column(str(col), justify="right")
    for row in summary.itertuples(index=False):
        t.add_row(*(_cell(v) for v in row))
    _out().print(t)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale backtest runs.csv --law chinchilla --holdout-frac 0.2 --out bt/\n\n"
        "  bayescale backtest runs.csv --cutoff 1e21 --method mle --bootstrap 200 --out bt/\n\n"
        "  bayescale backtest runs.csv --calibration --out bt/ --json"
    )
)
@_guarded
def backtest(
    runs: RunsArg,
    out: OutOpt,
    law: LawOpt = None,
    holdout_frac: Annotated[
        float, typer.Option("--holdout-frac", help="Share of largest-compute runs held out.")
    ] = 0.2,
    cutoff: Annotated[
        float | None, typer.Option("--cutoff", help="Hold out runs with C above this (FLOPs).")
    ] = None,
    method: Annotated[
        str,
        typer.Option("--method", help="bayes (posterior) or mle (Huber point fit + bootstrap)."),
    ] = "bayes",
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap refits for --method mle.")
    ] = 100,
    calibration: Annotated[
        bool, typer.Option("--calibration", help="Also rolling cutoffs: a calibration curve.")
    ] = False,
    discrepancy: Annotated[
        bool,
        typer.Option(
            "--discrepancy",
            help="Also score with an extrapolation discrepancy estimated on the training runs "
            "only (nested rolling backtests; bayes only).",
        ),
    ] = False,
    seed: SeedOpt = 0,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    prior: PriorOpt = None,
    map: MapOpt = None,
    group: GroupOpt = None,
    group_by: GroupByOpt = None,
    drop_top_loss: DropOpt = 0,
    max_loss: MaxLossOpt = None,
    min_loss: MinLossOpt = None,
    min_flops: MinFlopsOpt = None,
    max_flops: MaxFlopsOpt = None,
    min_params: MinParamsOpt = None,
    max_params: MaxParamsOpt = None,
    best_of_sweep: BestOfSweepOpt = False,
    drop_duplicates: DropDupOpt = False,
    as_json: JsonOpt = False,
):
    """Hold out the largest runs, fit the rest, and score the predictions of the held-out runs."""

    if method not in ("bayes", "mle"):
        raise InputError(f"--method must be bayes or mle, got {method!r}")
    if discrepancy and method != "bayes":
        raise InputError(f"--discrepancy needs --method bayes, got {method!r}")
    if law is None and (method != "bayes" or discrepancy):
        law = "chinchilla"  # the ensemble is the Bayesian default; these modes take one card
    bt_cards = _cards_for(law, _parse_priors(prior))
    card = bt_cards[0] if law is not None else None
    filters = _filters(
        group, drop_top_loss, max_loss, min_loss, min_flops, max_flops, min_params, max_params,
        best_of_sweep=best_of_sweep, drop_duplicates=drop_duplicates,
    )
    if group_by is not None:
        filters["group_by"] = group_by
    run_table = _load_runs(runs, cards=bt_cards, maps=map, filters=filters)
    if group_by is not None:
        _backtest_families(run_table, card, out, runs, group_by=group_by, method=method,
                           holdout_frac=holdout_frac, cutoff=cutoff, calibration=calibration,
                           discrepancy=discrepancy, as_json=as_json, draws=draws, tune=tune,
                           chains=chains, random_seed=seed)
        return
    names = ["backtest.csv", "backtest.json", "backtest.png", "backtest.svg"]
    if calibration:
        names += ["calibration.csv", "calibration.png", "calibration.svg"]
    out = _check_out_dir(out, names, [runs])
    from bayescale import backtesting, plots

    fit_kwargs = {"draws": draws, "tune": tune, "chains": chains, "random_seed": seed}
    what = f"card {card.name}" if card is not None else "the law ensemble (nested)"
    _err().print(f"backtesting {what} ({method}) on {len(run_table)} runs")
    from bayescale.progress import fit_progress

    fracs = (0.1, 0.2, 0.3, 0.4)  # the calibration curve's rolling cutoffs
    with (
        _sampler_warnings(),
        contextlib.redirect_stdout(sys.stderr),
        fit_progress(
            1 + len(fracs), description="backtests", enabled=None if calibration else False
        ) as bar,
    ):
        result = backtesting.backtest(
            run_table,
            card=card,
            holdout_frac=holdout_frac,
            cutoff=cutoff,
            method=method,
            n_bootstrap=bootstrap,
            discrepancy=discrepancy,
            **fit_kwargs,
        )
        bar.advance()
        calib = None
        if calibration:
            calib = backtesting.calibration(
                run_table, card=card, holdout_fracs=fracs, method=method, n_bootstrap=bootstrap,
                progress=bar, **fit_kwargs,
            )
    data = result.to_dict()
    if calib is not None:
        data["calibration"] = calib.to_dict(orient="records")
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "backtest.csv", result.table, index=False)
    _write_text(out / "backtest.json", _json_text(data))
    plots.save_figure(plots.plot_backtest(result), out, "backtest")
    if calib is not None:
        _write_csv(out / "calibration.csv", calib, index=False)
        plots.save_figure(plots.plot_calibration(calib), out, "calibration")
    if as_json:
        _print_json(data)
        return
    console = _out()
    t = Table(
        title=f"Backtest of {result.card} ({result.method}): {result.n_train} runs fitted, "
        f"{result.n_test} held out above C = {_fmt(result.cutoff)}"
    )
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for p, cov in sorted(result.coverage.items()):
        t.add_row(f"coverage of {float(p):.0%} predictive intervals", f"{cov:.3f}")
    t.add_row("mean log predictive density per run", _fmt(result.lpd_mean))
    if result.weights is not None:
        for name, w in result.weights.items():
            t.add_row(f"stacking weight of {name} (training runs only)", f"{w:.3f}")
        t.add_row("discrepancy tau (sd of log loss per decade, included above)",
                  _fmt(result.tau))
        t.add_row("extrapolation validated by the nested splits (decades of C)",
                  _fmt(result.validated_decades))
    elif result.tau is not None:
        t.add_row("discrepancy tau (sd of log loss per decade)", _fmt(result.tau))
        for p, cov in sorted(result.coverage_calibrated.items()):
            t.add_row(f"coverage of {float(p):.0%} intervals with discrepancy", f"{cov:.3f}")
        t.add_row("mean log predictive density with discrepancy",
                  _fmt(result.lpd_mean_calibrated))
    t.add_row("median absolute error of loss", _fmt(result.median_abs_error))
    console.print(t)
    if calib is not None:
        console.print(_calibration_table(calib))


def _calibration_table(calib) -> Table:
    """Observed coverage per held-out fraction (rows) and nominal probability (columns)."""
    wide = calib.pivot_table(
        index=["holdout_frac", "cutoff", "n_test"], columns="prob", values="coverage"
    )
    t = Table(title="Calibration: observed coverage of central predictive intervals")
    for col in ("held out", "cutoff C", "n_test"):
        t.add_column(col, justify="right")
    for prob in wide.columns:
        t.add_column(f"nominal {float(prob):.0%}", justify="right")
    for (frac, cut, n_test), row in wide.iterrows():
        t.add_row(
            f"{float(frac):.0%}", _fmt(cut), str(int(n_test)), *(f"{v:.2f}" for v in row.tolist())
        )
    return t


# --------------------------------------------------------------------------------------------
# epochs (data-constrained law)
# --------------------------------------------------------------------------------------------


def _epochs_json(tree, us, budgets, ks, *, max_epochs, ci_prob, ci_kind, seed) -> dict:
    import numpy as np

    from bayescale.posterior import card_of
    from bayescale.repetition import best_epochs, repeat_loss

    u_grid, c_grid = (a.reshape(-1) for a in np.meshgrid(us, budgets, indexing="ij"))
    best = best_epochs(tree, U=u_grid, C=c_grid, max_epochs=max_epochs, ci_prob=ci_prob,
                       ci_kind=ci_kind)
    rows = []
    for i in range(best.sizes["query"]):
        row = {"U": float(best["U"][i]), "C": float(best["C"][i])}
        for name in ("epochs_opt", "N_opt", "D_opt", "loss_opt", "loss_one_epoch"):
            row[name] = _ci_triplet(best, name, i)
        row["p_repeat"] = float(best["p_repeat"][i])
        rows.append(row)
    out = {"card": card_of(tree).name, "ci_prob": ci_prob, "ci_kind": ci_kind, "best": rows}
    if ks:
        u3, c3, k3 = (a.reshape(-1) for a in np.meshgrid(us, budgets, ks, indexing="ij"))
        ds = repeat_loss(tree, U=u3, C=c3, epochs=k3, ci_prob=ci_prob, ci_kind=ci_kind,
                         random_seed=seed)
        out["repeat"] = [
            {
                "U": float(ds["U"][i]), "C": float(ds["C"][i]), "epochs": float(ds["epochs"][i]),
                "N": float(ds["N"][i]), "D": float(ds["D"][i]),
                "median": float(ds["median"][i]),
                "ci": [float(v) for v in np.asarray(ds["ci"][i])],
                "pi": [float(v) for v in np.asarray(ds["pi"][i])],
                "excess": {"median": float(ds["excess"][i]),
                           "lo": float(ds["excess_ci"][i, 0]), "hi": float(ds["excess_ci"][i, 1])},
            }
            for i in range(ds.sizes["query"])
        ]
    return out


def _epochs_tables(result: dict) -> list[Table]:
    pct = f"{result['ci_prob'] * 100:g}%"

    def cell(v):
        return f"{_fmt(v['median'])} [{_fmt(v['lo'])}, {_fmt(v['hi'])}]"

    t = Table(
        title=f"Best epochs for a unique-token budget ({result['card']}; medians, {pct} "
        f"{result['ci_kind']} intervals)",
        caption="epochs* = D*/U (below 1: unique data are not the constraint); "
        "best without repeating: the best run with D <= U",
    )
    for col in ("unique U", "budget C", "epochs*", "N*", "D*", "loss at optimum",
                "best without repeating", "P(repeat)"):
        t.add_column(col, justify="right")
    for row in result["best"]:
        t.add_row(_fmt(row["U"]), _fmt(row["C"]), cell(row["epochs_opt"]), cell(row["N_opt"]),
                  cell(row["D_opt"]), cell(row["loss_opt"]), cell(row["loss_one_epoch"]),
                  f"{row['p_repeat']:.3f}")
    tables = [t]
    if result.get("repeat"):
        r = Table(
            title=f"Loss when repeating the unique data k times at the budget ({pct})",
            caption="N = C / (6 k U); excess: loss above the same run on k U fresh tokens",
        )
        for col in ("unique U", "budget C", "epochs k", "N", "median", f"credible {pct}",
                    f"predictive {pct}", "excess"):
            r.add_column(col, justify="right")
        for q in result["repeat"]:
            r.add_row(_fmt(q["U"]), _fmt(q["C"]), _fmt(q["epochs"]), _fmt(q["N"]),
                      _fmt(q["median"]), f"[{_fmt(q['ci'][0])}, {_fmt(q['ci'][1])}]",
                      f"[{_fmt(q['pi'][0])}, {_fmt(q['pi'][1])}]", cell(q["excess"]))
        tables.append(r)
    return tables


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale epochs fit/ --unique-tokens 1e11 --budget 1e23\n\n"
        "  bayescale epochs fit/ --unique-tokens 1e11 --budget 1e23 --epochs 1 --epochs 4 "
        "--epochs 16 --json\n\n"
        "Needs a fit of the data-constrained card (bayescale fit runs.csv --law data-constrained)."
        " Every --unique-tokens is combined with every --budget (and every --epochs)."
    )
)
@_guarded
def epochs(
    fit_path: FitArg,
    unique_tokens: Annotated[
        list[float] | None,
        typer.Option("--unique-tokens", "--U", help="Unique tokens available (repeatable)."),
    ] = None,
    budget: BudgetOpt = None,
    epochs_k: Annotated[
        list[float] | None,
        typer.Option("--epochs", help="Also the loss of repeating the data k times (repeatable)."),
    ] = None,
    max_epochs: Annotated[
        float, typer.Option("--max-epochs", help="Upper end of the search for the best epochs.")
    ] = 1e4,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
):
    """Best number of epochs over a unique-token budget at a compute budget; loss of k repeats."""
    from bayescale.stats import check_ci

    check_ci(ci_prob, ci_kind)
    if not unique_tokens:
        raise InputError("give at least one --unique-tokens, e.g. --unique-tokens 1e11")
    if not budget:
        raise InputError("give at least one --budget in FLOPs, e.g. --budget 1e23")
    tree = _load_fit(fit_path)
    result = _epochs_json(
        tree, _as_floats(unique_tokens), _as_floats(budget), _as_floats(epochs_k),
        max_epochs=max_epochs, ci_prob=ci_prob, ci_kind=ci_kind, seed=seed,
    )
    if as_json:
        _print_json(result)
    else:
        console = _out()
        for t in _epochs_tables(result):
            console.print(t)


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale demo --out demo/\n\n"
        "  bayescale demo --out demo/ --seed 3 --draws 500\n\n"
        "Simulates a Chinchilla-like IsoFLOP sweep from known parameters, fits it, and shows "
        "whether the posterior recovers the truth and how wide a 100x-compute extrapolation is."
    )
)
@_guarded
def demo(
    out: OutOpt,
    seed: SeedOpt = 0,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    with_report: Annotated[
        bool,
        typer.Option("--report/--no-report", help="Write report.html/.md/.json and the figures."),
    ] = True,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
):
    """The whole workflow on simulated runs: fit, recover the truth, extrapolate, allocate."""
    import numpy as np

    from bayescale import datasets
    from bayescale.cards import load_card
    from bayescale.laws import get_law
    from bayescale.runs import load_runs
    from bayescale.stats import check_ci

    check_ci(ci_prob, ci_kind)
    out = _check_out_dir(out, ["posterior.nc", "summary.csv", "runs.csv", "demo.json"], [])
    card = load_card("chinchilla")
    frame = datasets.simulate(law="chinchilla", random_seed=seed)
    truth = dict(frame.attrs["true_params"])
    runs = load_runs(frame, n_params_required=card.n_params)
    _err().print(
        f"simulated {len(runs)} runs: IsoFLOP sweep at C = "
        + ", ".join(_fmt(c) for c in frame.attrs["budgets"])
        + f" FLOPs, noise sigma = {frame.attrs.get('sigma')} on log loss, seed {seed}"
    )
    tree = _run_fit(
        runs, card, draws=draws, tune=tune, chains=chains, seed=seed, sampler="nutpie",
        progress=False,
    )
    table = _write_fit_outputs(tree, out, ci_prob=ci_prob, ci_kind=ci_kind)
    _write_csv(out / "runs.csv", frame, index=False)
    console = _out()
    truth_cells = {**truth, "sigma": frame.attrs.get("sigma")}
    console.print(
        _summary_table(table, title="Posterior vs the true parameters", truth=truth_cells)
    )

    law = get_law("chinchilla")
    c_max = float(runs.C.max())
    c_far = 100 * c_max
    n_true, d_true = (float(np.asarray(v).reshape(-1)[0]) for v in law.optimal(c_far, truth))
    true_loss = float(law.loss(n_true, d_true, truth))
    results = {"truth": truth, "summary": table.reset_index().to_dict(orient="records")}
    from bayescale.prediction import predict as _predict

    ds = _predict(tree, N=[n_true], D=[d_true], ci_prob=ci_prob, ci_kind=ci_kind, random_seed=seed)
    pred = _predict_json(ds)
    results["prediction"] = {**pred, "true_loss": true_loss}
    console.print(_predict_table(pred))
    q = pred["queries"][0]
    inside = q["ci"][0] <= true_loss <= q["ci"][1]
    console.print(
        f"100x-compute run (C = {_fmt(c_far)}, at the true optimal N): true law loss "
        f"{true_loss:.4f}, {'inside' if inside else 'OUTSIDE'} the credible interval",
        markup=False,
    )
    budgets = [c_max, 10 * c_max, c_far, 1e22, 5.76e23]
    alloc = _optimal_json(tree, budgets, ci_prob=ci_prob, ci_kind=ci_kind)
    n_opt, d_opt = law.optimal(np.asarray(budgets), truth)
    for row, n_t, d_t in zip(alloc["budgets"], n_opt, d_opt, strict=True):
        row["true"] = {
            "N_opt": float(n_t), "D_opt": float(d_t), "tokens_per_param": float(d_t / n_t)
        }
    results["optimal"] = alloc
    for t in _optimal_tables(alloc):
        console.print(t)
    if with_report:
        from bayescale.report import write_report

        with _sampler_warnings():
            write_report(
                tree, out, budgets=budgets, queries=[{"N": n_true, "D": d_true}],
                ci_prob=ci_prob, ci_kind=ci_kind, random_seed=seed,
            )
        _err().print(f"wrote {out / 'report.html'} and the figures in {out / 'figures'}")
    _write_text(out / "demo.json", _json_text(results))
    _err().print(f"demo outputs in {out}")


def main(argv=None) -> None:
    """Entry point of the ``bayescale`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    bayescale 0.1.0

    Notes
    -----
    Run as the console script (``argv`` None), the process ends with the command, so when the
    command is done (outputs written and closed, success or not) the garbage collector is
    frozen: the interpreter's last collection would otherwise walk every PyMC and PyTensor graph
    the command built, about 0.7 s of a 6 s warm ``bayescale fit``, to free memory the operating
    system takes back anyway. Exit handlers and module teardown still run. Called with ``argv``
    (from Python, where the process goes on), nothing is frozen.
    """
    import gc

    try:
        app(args=argv, prog_name="bayescale")
    finally:
        if argv is None:
            gc.freeze()


if __name__ == "__main__":
    main()
