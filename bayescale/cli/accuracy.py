"""The accuracy path of ``bayescale backtest``: ``--metric acc_* --floor F [--via COLUMN]``."""

from typing import Annotated

import typer

from bayescale.cli.common import (
    check_out_dir,
    err_console,
    json_text,
    out_console,
    print_json,
    quiet_stdout,
    write_csv,
    write_text,
)
from bayescale.errors import InputError

FloorOpt = Annotated[
    str | None,
    typer.Option("--floor", help="Chance accuracy of an accuracy --metric, in [0, 1), or 'task' "
                 "(the random baseline in the task table, --tasks). Makes the backtest one of "
                 "accuracy (so does a --metric named acc_*)."),
]
ViaOpt = Annotated[
    str | None,
    typer.Option("--via", help="Loss column of the two-step accuracy law (loss -> accuracy); "
                 "default the table's 'loss' column, if any."),
]
NExamplesOpt = Annotated[
    int | None,
    typer.Option("--n-examples", help="Evaluation examples of the accuracy metric's task "
                 "(default: from the task table when it holds the task, else unknown: Beta "
                 "noise)."),
]
TasksOpt = Annotated[
    str | None,
    typer.Option("--tasks", help="Task table (CSV with 'Eval Task', 'Random baseline' in %, "
                 "'#datapoints'); default the bundled one of Gadre et al. (2024)."),
]

_LOSS_ONLY = ("group", "drop_top_loss", "max_loss", "min_loss", "min_flops", "max_flops",
              "min_params", "max_params", "best_of_sweep", "drop_duplicates", "pool_metrics")


def _loss_options(loading) -> list[str]:
    """The loss-only run options given (``--max-loss``...), as the user typed them."""
    return ["--" + k.replace("_", "-") for k in _LOSS_ONLY
            if getattr(loading, k, None) not in (None, False, 0, [])]


def asks_for_accuracy(loading, floor, via, n_examples, tasks) -> bool:
    """Whether a backtest is one of accuracy: ``--floor``/``--n-examples``/``--tasks``, or every
    ``--metric`` names accuracy columns (``acc*``)."""
    metrics = loading.metric or []
    named = bool(metrics) and all(str(m).lower().startswith("acc") for m in metrics)
    return named or any(v is not None for v in (floor, n_examples, tasks)) or (
        via is not None and bool(metrics))


def _floor(text):
    if text is None or text.strip().lower() == "task":
        return "task"
    try:
        return float(text)
    except ValueError:
        raise InputError(f"--floor must be a number in [0, 1) or 'task', got {text!r}") from None


def backtest_accuracy_command(runs, out, *, law, holdout_frac, cutoff, seed, sampling, loading,
                              floor, via, n_examples, tasks, as_json) -> None:
    """Run the accuracy backtest, write ``backtest.json``/``backtest.csv``/``forecasts.csv``."""

    from bayescale.workflows.accuracy_backtest import backtest_accuracy

    if not loading.metric:
        raise InputError("an accuracy backtest needs --metric ACCURACY_COLUMN (or a glob 'acc_*')")
    used = _loss_options(loading)
    if used:
        raise InputError(
            f"an accuracy backtest reads the table as it is: {', '.join(used)} apply to losses "
            "only (use --group-by COLUMN to backtest groups of runs separately)"
        )
    frame = _read_frame(runs, loading)
    folder = check_out_dir(out, ["backtest.json", "backtest.csv", "forecasts.csv"], [runs])
    console = err_console()
    console.print(f"backtesting accuracy of {', '.join(loading.metric)} on {runs}")
    with quiet_stdout():
        result = backtest_accuracy(
            frame, metrics=loading.metric, **_options(floor, via, n_examples, tasks),
            group_by=loading.group_by, holdout_frac=holdout_frac,
            cutoff=cutoff, card=law, draws=sampling.draws, tune=sampling.tune,
            chains=sampling.chains, random_seed=seed, executor=sampling.executor,
            on_metric=lambda m, g: console.print(f"  {m}" + (f" ({g})" if g else "")),
        )
    data = result.to_dict()
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "backtest.json", json_text(data))
    write_csv(folder / "backtest.csv", result.table, index=False)
    write_csv(folder / "forecasts.csv", result.forecasts, index=False)
    for metric in data["flagged"]:
        console.print(f"[bold yellow]{metric}[/]: no signal above chance on the training runs: "
                      "not extrapolated")
    for err in data["errors"]:
        where = f" ({err['group']})" if err["group"] else ""
        console.print(f"[bold red]error[/]: {err['metric']}{where}: {err['error']}",
                      soft_wrap=True)
    if as_json:
        print_json(data)
        return
    out_console().print(_table(result))


def _table(result):
    from rich.table import Table

    pooled = result.pooled
    table = Table(title=f"accuracy backtest: {pooled['n']} held-out runs with signal")
    for col in ("metric", "group", "n", "cov 50/80/90/95", "log score", "|err| pts",
                "plug-in pts", "direct pts"):
        table.add_column(col)
    for row in result.forecasts.to_dict(orient="records"):
        if not row["signal"]:
            what = "error" if isinstance(row.get("error"), str) else "no signal above chance"
            table.add_row(row["metric"], str(row["group"] or ""), "0", what, "", "", "", "")
            continue
        cov = "/".join(f"{row[f'coverage_{p:g}']:.2f}" for p in result.probs)
        table.add_row(row["metric"], str(row["group"] or ""), str(row["n_test"]), cov,
                      f"{row['lpd_mean']:.2f}", _pts(row["median_abs_error_points"]),
                      _pts(row["plug_in_mae_points"]), _pts(row["direct_point_mae_points"]))
    if pooled["n"]:
        cov = "/".join(f"{v:.2f}" for v in pooled["coverage"].values())
        table.add_row("pooled", "", str(pooled["n"]), cov, f"{pooled['lpd_mean']:.2f}",
                      _pts(pooled["median_abs_error_points"]), _pts(pooled["plug_in_mae_points"]),
                      _pts(pooled["direct_point_mae_points"]))
    return table


def _pts(v) -> str:
    return "" if v is None or v != v else f"{v:.1f}"


def _read_frame(runs, loading):
    """The runs table as it is, with ``--map`` renaming columns to N, D, C, loss, run."""
    from bayescale.core.runs import parse_mapping, read_raw

    frame = read_raw(runs)
    mapping = parse_mapping(loading.map or [])
    bad = sorted(set(mapping) - {"N", "D", "C", "loss", "run"})
    if bad:
        raise InputError(f"an accuracy metric maps N, D, C, loss and run only; got {bad}")
    missing = [col for col in mapping.values() if col not in frame]
    if missing:
        raise InputError(f"--map names columns not in the table: {missing}")
    return frame.rename(columns={col: canon for canon, col in mapping.items()})


def _options(floor, via, n_examples, tasks) -> dict:
    from bayescale.core.runs import read_raw

    floor = _floor(floor)
    if n_examples is None:  # the task table's size when it knows the task, else unknown
        n_examples = "auto"
    return {"via": via, "floor": floor, "n_examples": n_examples,
            "tasks": None if tasks is None else read_raw(tasks)}


def fit_accuracy_command(runs, out, *, law, seed, sampling, loading, floor, via, n_examples,
                         tasks) -> None:
    """``bayescale fit --metric acc_X``: the stacked accuracy fit (or ``--law``), saved."""
    from bayescale.core.io import save
    from bayescale.fits import read
    from bayescale.workflows.fit import fit

    metrics = loading.metric or []
    if len(metrics) != 1 or any(ch in metrics[0] for ch in "*?["):
        raise InputError("fit one accuracy metric at a time (--metric acc_TASK); "
                         "`bayescale backtest` takes several")
    used = _loss_options(loading)
    if used or loading.group_by:
        raise InputError("an accuracy fit reads the table as it is: no "
                         + ", ".join([*used, "--group-by"]))
    frame = _read_frame(runs, loading)
    folder = check_out_dir(out, ["posterior.nc"], [runs])
    accuracy = {"metric": metrics[0], **_options(floor, via, n_examples, tasks)}
    err_console().print(f"fitting the accuracy of {metrics[0]} on {runs}")
    with quiet_stdout():
        tree = fit(frame, card=law, accuracy=accuracy, **sampling.fit_kwargs(seed),
                   executor=sampling.executor)
    folder.mkdir(parents=True, exist_ok=True)
    save(tree, folder / "posterior.nc")
    view = read(tree)
    info = view.accuracy_info
    record = view.accuracy_ensemble_info or {"cards": [view.card.name],
                                             "weights": {view.card.name: 1.0}, "tau": 0.0}
    if not info["chance"]["signal"]:
        err_console().print(f"[bold yellow]{metrics[0]}[/]: {info['chance']['message']}")
    print_json({
        "metric": info["metric"], "floor": info["floor"], "n_examples": info["n_examples"],
        "via": info.get("via") or record.get("via"), "chance": info["chance"],
        "cards": record["cards"], "weights": record["weights"], "tau": record["tau"],
        "validated_decades": record.get("validated_decades"),
        "lack_of_fit": record.get("lack_of_fit"), "convergence": record.get("convergence"),
        "notes": record.get("notes", []), "files": {"posterior": str(folder / "posterior.nc")},
    })


def predict_accuracy_json(ds) -> dict:
    """:func:`bayescale.answers.accuracy.predict_accuracy`'s dataset as JSON."""
    import numpy as np

    def num(v):
        v = float(v)
        return v if np.isfinite(v) else None

    rows = []
    for i in range(ds.sizes["query"]):
        row = {k: num(ds[k][i]) for k in ("N", "D", "C", "median", "mean", "extrapolation_C",
                                          "via_loss", "p_at_least_target",
                                          "p_law_at_least_target") if k in ds}
        for k in ("ci", "pi", "via_loss_ci"):
            if k in ds:
                row[k] = [num(v) for v in np.asarray(ds[k][i])]
        rows.append(row)
    attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in ds.attrs.items()}
    return {"predictions": rows, **attrs}


def predict_accuracy_command(tree, *, N, D, C, target, ci_prob, ci_kind, seed, as_json) -> None:
    """``bayescale predict`` on an accuracy fit: median, intervals and ``P(acc >= target)``."""
    from rich.table import Table

    from bayescale.answers.accuracy import predict_accuracy

    def one(values):
        return None if not values else (values if len(values) > 1 else values[0])

    ds = predict_accuracy(tree, N=one(N), D=one(D), C=one(C), target=target, ci_prob=ci_prob,
                          ci_kind=ci_kind, random_seed=seed)
    data = predict_accuracy_json(ds)
    if ds.attrs.get("flag"):
        err_console().print(f"[bold yellow]{data['metric']}[/]: {ds.attrs['flag']}")
    if ds.attrs.get("warning"):
        err_console().print(f"[bold yellow]warning[/]: {ds.attrs['warning']}")
    if as_json:
        print_json(data)
        return
    table = Table(title=f"{data['metric']}: accuracy of planned runs ({ci_prob:g} intervals)")
    cols = ["C", "median", "credible", "predictive", "decades out"]
    if target is not None:
        cols.append(f"P(run >= {target:g})")
    for col in cols:
        table.add_column(col)
    for row in data["predictions"]:
        cells = [f"{row['C']:.3g}", _acc(row["median"]), _band(row["ci"]), _band(row["pi"]),
                 f"{row['extrapolation_C']:.2f}"]
        if target is not None:
            cells.append(_acc(row["p_at_least_target"]))
        table.add_row(*cells)
    out_console().print(table)


def _acc(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _band(v) -> str:
    return "n/a" if v[0] is None else f"{v[0]:.3f} - {v[1]:.3f}"
