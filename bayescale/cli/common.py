"""What every command shares: the app, consoles, error mapping, output helpers, argument types.

Only typer and rich are imported here (``bayescale --help`` imports this module); everything
heavier is imported inside the function that needs it.
"""

import contextlib
import functools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bayescale import __version__
from bayescale.errors import BayescaleError, ConvergenceError, InputError, SamplerWarning

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
# Consoles and errors
# --------------------------------------------------------------------------------------------


def err_console() -> Console:
    """Console on stderr for progress, warnings and errors."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console() -> Console:
    """Console on stdout for tables (wide when not a terminal, so columns are not truncated)."""
    tty = sys.stdout.isatty()
    return Console(highlight=False, width=None if tty else 160)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def fail(message: str, code: int):
    """Print ``error: message`` on stderr and end the command with ``code``."""
    err_console().print(f"error: {message}", style="bold red", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(command):
    """Map bayescale errors to one stderr line and an exit code (2 input, 5 sampler, 1 other)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except ConvergenceError as error:
            fail(_one_line(error), EXIT_SAMPLER)
        except BayescaleError as error:
            fail(_one_line(error), EXIT_INPUT)
        except Exception as error:
            if os.environ.get("BAYESCALE_DEBUG"):
                raise
            fail(
                f"unexpected {type(error).__name__}: {_one_line(error)} "
                "(rerun with BAYESCALE_DEBUG=1 for the traceback)",
                EXIT_UNEXPECTED,
            )

    return wrapper


@contextlib.contextmanager
def sampler_warnings():
    """Record warnings raised inside and print each on stderr: sampler problems in red."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplerWarning)
        try:
            yield caught
        finally:
            console = err_console()
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


@contextlib.contextmanager
def quiet_stdout():
    """Sampler warnings on stderr, and stdout kept for data (libraries that print go to stderr)."""
    with sampler_warnings(), contextlib.redirect_stdout(sys.stderr):
        yield


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def json_text(obj) -> str:
    """``obj`` as strict, indented JSON text (NaN and infinities become null)."""
    from bayescale.answers.summary import to_jsonable

    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"


def print_json(obj) -> None:
    """Print ``obj`` as JSON on stdout."""
    sys.stdout.write(json_text(obj))
    sys.stdout.flush()


def fmt(x, digits: int = 4) -> str:
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


def interval(v: dict, lo: str = "lo", hi: str = "hi") -> str:
    """``median [lo, hi]`` of a JSON triplet."""
    return f"{fmt(v.get('median'))} [{fmt(v.get(lo))}, {fmt(v.get(hi))}]"


def cell(value) -> str:
    """A table cell: text as is, booleans yes/no, integers plain, numbers :func:`fmt`."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    if isinstance(value, int) or type(value).__name__.startswith("int"):
        return str(int(value))
    return fmt(value)


def as_floats(values) -> list[float]:
    """A repeated numeric option as a list of floats (empty when not given)."""
    return [float(v) for v in values] if values else []


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _resolve(path) -> Path:
    return Path(path).expanduser().resolve()


def check_out_dir(folder: Path, names, inputs) -> Path:
    """Refuse an output folder that is a file or would overwrite one of the inputs."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(
            f"--out {folder} exists and is not a folder; give a folder for the outputs"
        )
    ins = {_resolve(p) for p in inputs if p is not None}
    for name in names:
        target = _resolve(folder / name)
        if target in ins:
            raise InputError(
                f"refusing to overwrite the input {target}: choose another --out folder"
            )
    return folder


def posterior_file(path: Path) -> Path:
    """A posterior file, or ``posterior.nc`` inside a folder."""
    path = Path(path)
    return path / "posterior.nc" if path.is_dir() else path


def load_fit(path: Path):
    """The fit tree saved at ``path`` (a file or its folder); warns of a lack of fit."""
    from bayescale.fits.store import load

    tree = load(posterior_file(path))
    warn_lack_of_fit(tree)
    return tree


def warn_lack_of_fit(tree) -> None:
    """On stderr, in plain words, when the fit's runs bend away from every law it holds."""
    from bayescale.fits import read
    from bayescale.scoring.reading import lack_of_fit_reading

    view = read(tree)
    words = lack_of_fit_reading(view.lack_of_fit, view.drift)
    if words:
        err_console().print(f"[bold yellow]warning[/]: lack of fit: {words}.", soft_wrap=True)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` atomically."""
    from bayescale.core.io import atomic_write_text

    return atomic_write_text(path, text)


def write_csv(path: Path, frame, **kwargs) -> Path:
    """Write a DataFrame as CSV atomically."""
    from bayescale.core.io import atomic_write

    return atomic_write(path, lambda p: frame.to_csv(p, **kwargs))


# --------------------------------------------------------------------------------------------
# Argument and option types used by several commands
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
HoldoutOpt = Annotated[
    float, typer.Option("--holdout-frac", help="Share of largest-compute runs held out.")
]
UpperOpt = Annotated[
    bool | None,
    typer.Option(
        "--upper/--no-upper",
        help="Law ensemble only: also fit each card to the upper half of the runs by compute "
        "(default: when that half holds at least 4 runs per parameter of the largest card).",
    ),
]
InferenceTokensOpt = Annotated[
    float | None,
    typer.Option(
        "--inference-tokens",
        help="Tokens the model will serve: also the inference-aware optimum, minimising "
        "training 6ND plus inference 2NT FLOPs (Sardana et al. 2024).",
    ),
]
