"""Option groups declared once: the run filters and the sampler settings.

A group is a frozen dataclass and a table of typer options, one per field. Decorating a command
with the group adds the options to the command's signature where the command has a parameter
annotated with the dataclass, and calls the command with one instance built from the parsed
values::

    @app.command()
    @guarded
    @RUN_OPTIONS()
    @SAMPLER_OPTIONS(only=("draws", "tune", "chains"), draws=1000)
    def compare(runs: RunsArg, loading: RunOptions, sampling: SamplerOptions): ...

``bayescale compare --help`` then lists ``--map``, ``--group``, ..., ``--draws``, ``--tune`` and
``--chains`` with their help and defaults, in the place of ``loading`` and ``sampling``.
"""

import functools
import inspect
from dataclasses import dataclass, fields
from typing import Annotated

import typer

from bayescale.cli.common import err_console
from bayescale.engines.executor import EXECUTORS
from bayescale.errors import InputError


class OptionGroup:
    """A dataclass whose fields are command-line options, added to commands by decoration.

    Parameters
    ----------
    cls : type
        Frozen dataclass; each field listed in ``options`` becomes one option.
    **options
        ``field=Annotated[type, typer.Option(...)]``, in the order they are listed in ``--help``.
        The field's default in ``cls`` is the option's default.
    """

    def __init__(self, cls, **options):
        defaults = {f.name: f.default for f in fields(cls)}
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
        self.cls = cls
        self.options = options
        self.defaults = defaults

    def __call__(self, *, only=None, exclude=(), **defaults):
        """Decorator adding the group's options (``only`` those, none of ``exclude``), with
        ``defaults`` changed. Options left out keep the dataclass default."""
        names = [n for n in (self.options if only is None else only) if n not in exclude]
        bad = (set(names) | set(exclude)) - set(self.options) | (set(defaults) - set(names))
        if bad:
            raise TypeError(f"{self.cls.__name__} has no option(s) {sorted(bad)} to add")
        params = [
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=self.options[name],
                default=defaults.get(name, self.defaults[name]),
            )
            for name in names
        ]

        def decorate(command):
            sig = inspect.signature(command, eval_str=True)
            slots = [p for p in sig.parameters.values() if p.annotation is self.cls]
            if len(slots) != 1:
                raise TypeError(f"{command.__name__} needs one parameter of type "
                                f"{self.cls.__name__}")
            slot = slots[0].name
            new = []
            for p in sig.parameters.values():
                new += params if p.name == slot else [p.replace(kind=p.KEYWORD_ONLY)]
            clash = set(names) & (set(sig.parameters) - {slot})
            if clash:
                raise TypeError(f"{command.__name__} already has parameter(s) {sorted(clash)}")

            @functools.wraps(command)
            def wrapper(**kwargs):
                values = {name: kwargs.pop(name) for name in names}
                return command(**kwargs, **{slot: self.cls(**values)})

            wrapper.__signature__ = sig.replace(parameters=new)
            wrapper.__annotations__ = {p.name: p.annotation for p in new}
            return wrapper

        return decorate


# --------------------------------------------------------------------------------------------
# Runs: reading the table and filtering it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """How to read and filter the runs table (:func:`bayescale.core.runs.load_runs`)."""

    map: list[str] | None = None
    metric: list[str] | None = None
    pool_metrics: bool | None = None
    group: str | None = None
    group_by: str | None = None
    drop_top_loss: int = 0
    max_loss: float | None = None
    min_loss: float | None = None
    min_flops: float | None = None
    max_flops: float | None = None
    min_params: float | None = None
    max_params: float | None = None
    best_of_sweep: bool = False
    drop_duplicates: bool = False

    def filters(self) -> dict:
        """Keyword arguments of :func:`~bayescale.core.runs.load_runs` (``group_by`` if given)."""
        out = {
            "best_of_sweep": self.best_of_sweep,
            "drop_duplicates": self.drop_duplicates,
            "group": self.group,
            "drop_top_loss": self.drop_top_loss,
            "max_loss": self.max_loss,
            "min_loss": self.min_loss,
            "min_flops": self.min_flops,
            "max_flops": self.max_flops,
            "min_params": self.min_params,
            "max_params": self.max_params,
        }
        if self.group_by is not None:
            out["group_by"] = self.group_by
        if self.metric:
            out["metrics"] = list(self.metric)
        return out

    def families(self, runs) -> str | None:
        """The ``group_by`` of the fits of ``runs`` (read by :meth:`load`): ``"metric"`` when
        ``--metric`` chose several columns, else ``--group-by``."""
        from bayescale.core.runs import METRIC

        return METRIC if "metrics" in runs.provenance else self.group_by

    def load(self, path, *, cards):
        """Read the runs at ``path``, filtered, checked against what every card in ``cards`` needs.

        Says on stderr how many runs ``--drop-duplicates`` and ``--best-of-sweep`` dropped.
        """
        from bayescale.core.runs import load_runs, parse_mapping

        mapping = parse_mapping(self.map) if self.map else None
        n_req = max(c.n_params for c in cards)
        variables = tuple(
            sorted({v for c in cards for v in c.law_spec.variables}, key="NDU".index)
        )
        runs = load_runs(
            str(path), mapping=mapping, n_params_required=n_req, variables=variables,
            **self.filters(),
        )
        _report_sweep_drops(runs)
        return runs


def _report_sweep_drops(runs) -> None:
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
            err_console().print(
                f"--{name.replace('_', '-')}: dropped {n} of {n_in} rows ({what})"
                + (f": {shown}" if shown else ""),
                markup=False, highlight=False,
            )


def _loss(op: str) -> str:
    return f"Keep runs with loss {op} X."


RUN_OPTIONS = OptionGroup(
    RunOptions,
    map=Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="Column mapping CANONICAL=COLUMN, e.g. N=params_total (repeatable)."
        ),
    ],
    metric=Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="The column that is the loss (as --map loss=COLUMN); repeatable, or a glob such "
            "as 'loss_*': several metrics of the same runs are fitted in one tree, one family "
            "per metric (see --pool-metrics), answered and backtested per metric.",
        ),
    ],
    pool_metrics=Annotated[
        bool | None,
        typer.Option(
            "--pool-metrics/--separate-metrics",
            help="With several --metric: pool the exponents across metrics, or fit each metric "
            "on its own. Default: each on its own (it forecast better), but the law ensemble's "
            "fit and report pool (its members must); backtest without --law: an ensemble per "
            "metric, with --law also the pooled fit.",
        ),
    ],
    group=Annotated[str | None, typer.Option("--group", help="Keep only rows of this group.")],
    group_by=Annotated[
        str | None,
        typer.Option(
            "--group-by",
            help="Column labelling families of runs (e.g. dataset_name): fit them all in one "
            "partially pooled model (without --law: the law ensemble, every card pooled); every "
            "answer is then per family (backtest: pooled against each family alone).",
        ),
    ],
    drop_top_loss=Annotated[
        int, typer.Option("--drop-top-loss", help="Drop the K highest-loss runs (outliers).")
    ],
    max_loss=Annotated[float | None, typer.Option("--max-loss", help=_loss("<="))],
    min_loss=Annotated[float | None, typer.Option("--min-loss", help=_loss(">="))],
    min_flops=Annotated[float | None, typer.Option("--min-flops", help="Keep runs with C >= X.")],
    max_flops=Annotated[float | None, typer.Option("--max-flops", help="Keep runs with C <= X.")],
    min_params=Annotated[
        float | None, typer.Option("--min-params", help="Keep runs with N >= X.")
    ],
    max_params=Annotated[
        float | None, typer.Option("--max-params", help="Keep runs with N <= X.")
    ],
    best_of_sweep=Annotated[
        bool,
        typer.Option(
            "--best-of-sweep",
            help="Keep the lowest-loss run of each (N, D) (a tuned sweep); says how many it "
            "dropped.",
        ),
    ],
    drop_duplicates=Annotated[
        bool,
        typer.Option(
            "--drop-duplicates", help="Drop exact (N, D, loss) repeats; says how many it dropped."
        ),
    ],
)
"""``--map``, ``--metric``, ``--group``, ``--group-by``, ``--drop-top-loss`` and the loss, FLOPs,
size and sweep filters; commands that cannot pool families leave ``group_by``, ``metric`` and
``pool_metrics`` out."""


# --------------------------------------------------------------------------------------------
# Sampler settings and the cards a command fits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplerOptions:
    """Sampler settings of the fits a command runs, and prior overrides."""

    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    sampler: str = "nutpie"
    prior: list[str] | None = None
    executor: str = "process"

    @property
    def priors(self) -> dict | None:
        """``--prior`` parsed: ``{name: prior}``, or None when not given."""
        if not self.prior:
            return None
        from bayescale.core.priors import parse_override

        out = {}
        for item in self.prior:
            name, prior = parse_override(item)
            if name in out:
                raise InputError(f"--prior sets {name!r} twice; give each parameter once")
            out[name] = prior
        return out

    def fit_kwargs(self, seed: int) -> dict:
        """``draws``, ``tune``, ``chains`` and ``random_seed`` for the library's fitting calls."""
        return {"draws": self.draws, "tune": self.tune, "chains": self.chains,
                "random_seed": seed}


def _check_executor(value: str) -> str:
    if value not in EXECUTORS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(EXECUTORS)}")
    return value


SAMPLER_OPTIONS = OptionGroup(
    SamplerOptions,
    draws=Annotated[int, typer.Option("--draws", help="Posterior draws kept per chain.")],
    tune=Annotated[int, typer.Option("--tune", help="Tuning steps per chain.")],
    chains=Annotated[int, typer.Option("--chains", help="Number of chains.")],
    sampler=Annotated[
        str, typer.Option("--sampler", help="NUTS implementation: nutpie or pymc.")
    ],
    prior=Annotated[
        list[str] | None,
        typer.Option("--prior", help="Prior override, e.g. 'alpha=Beta(2, 5)' (repeatable)."),
    ],
    executor=Annotated[
        str,
        typer.Option(
            "--executor", metavar="[" + "|".join(EXECUTORS) + "]", callback=_check_executor,
            help="Where the law ensemble's independent fits run: serial; process (a local "
            "pool of cores // chains workers, serial when that is 1); ray (pip install "
            "'bayescale\\[ray]'; the cluster at RAY_ADDRESS when set). Same results.",
        ),
    ],
)
"""``--draws``, ``--tune``, ``--chains``, ``--sampler``, ``--prior`` and ``--executor``."""


@dataclass(frozen=True)
class CardChoice:
    """What ``--law`` and ``--prior`` ask the library to fit.

    Attributes
    ----------
    card : Card or None
        The card of ``--law`` with the overrides applied; None leaves the choice to the library
        (the law ensemble, or the card the library's function picks).
    priors : dict or None
        Overrides still to hand to the library (only when ``card`` is None: the library decides
        whether they apply).
    checks : list of Card
        Cards whose needs the runs table is checked against when read: ``card``, or the
        default ensemble's cards.
    """

    card: object
    priors: dict | None
    checks: list


def choose_card(law, priors) -> CardChoice:
    """The card of ``--law`` (with ``priors``), or None for the library's default."""
    from bayescale.core.cards import load_card

    if law is not None:
        card = load_card(law, priors=priors)
        return CardChoice(card=card, priors=None, checks=[card])
    from bayescale.engines.ensemble import DEFAULT_CARDS

    return CardChoice(card=None, priors=priors, checks=[load_card(c) for c in DEFAULT_CARDS])


def check_upper(upper, *, law, group_by) -> None:
    """Refuse ``--upper/--no-upper`` where there is no law ensemble of one table to apply to."""
    if upper is not None and (law is not None or group_by is not None):
        flag = "--upper" if upper else "--no-upper"
        raise InputError(f"{flag} applies to the law ensemble of one table: drop --law and "
                         "--group-by (or the several metrics), or drop the flag")


def require_one_card(choice: CardChoice) -> None:
    """Refuse ``--prior`` without ``--law`` before any output, as the library's fit would."""
    if choice.priors:
        raise InputError("--prior needs one card: add --law NAME")
