"""Commands that run whole workflows on a runs table: report, compare, backtest."""

from typing import Annotated

import typer

from bayescale.cli import accuracy, docs, render
from bayescale.cli.accuracy import FloorOpt, NExamplesOpt, TasksOpt, ViaOpt
from bayescale.cli.common import (
    BudgetOpt,
    CiKindOpt,
    CiProbOpt,
    COpt,
    DOpt,
    HoldoutOpt,
    InferenceTokensOpt,
    JsonOpt,
    LawOpt,
    NOpt,
    OutOpt,
    RunsArg,
    SeedOpt,
    TargetOpt,
    UpperOpt,
    app,
    as_floats,
    check_out_dir,
    err_console,
    guarded,
    json_text,
    out_console,
    print_json,
    quiet_stdout,
    write_csv,
    write_text,
)
from bayescale.cli.options import (
    RUN_OPTIONS,
    SAMPLER_OPTIONS,
    RunOptions,
    SamplerOptions,
    check_upper,
    choose_card,
    require_one_card,
)
from bayescale.errors import InputError

REPORT_FILES = ("report.html", "report.md", "report.json", "posterior.nc", "summary.csv")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale report runs.csv --law chinchilla --out report/\n\n"
        "  bayescale report runs.csv --law chinchilla --out report/ --compare kaplan "
        "--compare chinchilla-tied\n\n"
        "  bayescale report runs.csv --out report/ --budget 1e23 --N 7e10 --D 1.4e12 "
        "--target-loss 2.0"
    )
)
@guarded
@SAMPLER_OPTIONS(only=("draws", "tune", "chains", "prior", "executor"))
@RUN_OPTIONS()
def report(
    runs: RunsArg,
    out: OutOpt,
    law: LawOpt = None,
    compare: Annotated[
        list[str] | None,
        typer.Option("--compare", help="Another card to compare against (repeatable)."),
    ] = None,
    holdout_frac: HoldoutOpt = 0.2,
    budget: BudgetOpt = None,
    N: NOpt = None,
    D: DOpt = None,
    C: COpt = None,
    target_loss: TargetOpt = None,
    seed: SeedOpt = 0,
    sampling: SamplerOptions = None,
    loading: RunOptions = None,
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
    from bayescale.core.cards import load_card
    from bayescale.core.stats import check_ci

    check_ci(ci_prob, ci_kind)
    choice = choose_card(law, sampling.priors)
    require_one_card(choice)
    others = [load_card(c) for c in (compare or [])]
    run_table = loading.load(runs, cards=[*choice.checks, *others])
    queries = docs.query_list(N, D, C)
    folder = check_out_dir(out, REPORT_FILES, [runs])
    from bayescale.workflows.report import report as _report

    what = f"card {choice.card.name}" if choice.card is not None else "the law ensemble"
    err_console().print(f"building the report of {what} on {len(run_table)} runs in {folder}")
    with quiet_stdout():
        result = _report(
            run_table,
            card=choice.card,
            out_dir=folder,
            priors=choice.priors,
            compare_cards=[c.name for c in others] or None,
            holdout_frac=holdout_frac,
            budgets=as_floats(budget) or None,
            queries=queries,
            target_loss=target_loss,
            **sampling.fit_kwargs(seed),
            ci_prob=ci_prob,
            ci_kind=ci_kind,
            plan_budget=plan_budget,
            inference_tokens=inference_tokens,
            group_by=loading.families(run_table),
            pool_metrics=loading.pool_metrics,
            executor=sampling.executor,
        )
    files = {
        "html": folder / "report.html",
        "markdown": folder / "report.md",
        "json": folder / "report.json",
        "posterior": folder / "posterior.nc",
        "summary": folder / "summary.csv",
    }
    err_console().print(f"wrote {files['html']}")
    print_json({"files": files, **result})


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale compare runs.csv --law kaplan --law chinchilla --out cmp/\n\n"
        "  bayescale compare runs.csv --law chinchilla --law chinchilla-tied --no-backtest "
        "--out cmp/ --json"
    )
)
@guarded
@SAMPLER_OPTIONS(only=("draws", "tune", "chains"), draws=1000)
@RUN_OPTIONS(exclude=("group_by", "metric", "pool_metrics"))
def compare(
    runs: RunsArg,
    out: OutOpt,
    law: Annotated[
        list[str] | None,
        typer.Option("--law", "--card", help="A card to compare (repeatable; at least two)."),
    ] = None,
    holdout_frac: HoldoutOpt = 0.2,
    backtest: Annotated[
        bool, typer.Option("--backtest/--no-backtest", help="Also backtest each card.")
    ] = True,
    seed: SeedOpt = 0,
    sampling: SamplerOptions = None,
    loading: RunOptions = None,
    as_json: JsonOpt = False,
):
    """Compare laws on the same runs: PSIS-LOO, extrapolation backtest and a verdict."""
    from bayescale.core.cards import load_card
    from bayescale.workflows.compare import DEFAULT_CARDS

    names = list(law or DEFAULT_CARDS)
    if len(names) < 2:
        raise InputError("give at least two cards to compare, e.g. --law kaplan --law chinchilla")
    if len(set(names)) != len(names):
        raise InputError(f"--law names a card twice: {', '.join(names)}")
    card_objs = [load_card(n) for n in names]
    run_table = loading.load(runs, cards=card_objs)
    folder = check_out_dir(out, ["loo.csv", "backtests.csv", "comparison.json"], [runs])
    from bayescale.core.progress import fit_progress
    from bayescale.workflows.compare import compare as _compare

    err_console().print(f"comparing {', '.join(names)} on {len(run_table)} runs")
    n_fits = len(card_objs) * (2 if backtest else 1)
    with quiet_stdout(), fit_progress(n_fits, description="compare") as bar:
        result = _compare(
            run_table, cards=tuple(card_objs), holdout_frac=holdout_frac, backtest=backtest,
            **sampling.fit_kwargs(seed), progress=bar,
        )
    data = result.to_dict()
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "loo.csv", result.loo)
    has_backtests = result.backtests is not None and len(result.backtests)
    if has_backtests:
        write_csv(folder / "backtests.csv", result.backtests)
    write_text(folder / "comparison.json", json_text(data))
    if as_json:
        print_json(data)
        return
    console = out_console()
    console.print(
        render.frame_table(result.loo, title="PSIS-LOO (higher elpd is better)", index_name="card")
    )
    if has_backtests:
        console.print(render.frame_table(
            result.backtests, title=f"Backtest: top {holdout_frac:.0%} of runs by compute held out",
            index_name="card",
        ))
    if result.weights is not None:
        console.print(render.frame_table(
            result.weights, title="Stacking weights: rolling forecasts vs PSIS-LOO",
            index_name="card",
        ))
        console.print(result.reading, markup=False, soft_wrap=True)
    console.print(f"verdict: {result.verdict}", markup=False, soft_wrap=True)


def _backtest_families(run_table, card, folder, source, *, group_by, holdout_frac, as_json,
                       pool_metrics, **fit_kwargs) -> None:
    """``backtest --group-by`` or several ``--metric``: per-family holdout, each family fitted
    alone, and the pooled fit when it is made
    (:func:`bayescale.workflows.backtest.pools_families`)."""
    folder = check_out_dir(folder, ["backtest.csv", "backtest_summary.csv"], [source])
    from bayescale.answers.family_summary import records
    from bayescale.workflows.backtest import backtest, pools_families

    what = "the law ensemble" if card is None else f"card {card.name}"
    word = "metric" if group_by == "metric" else "family"
    pooled = pools_families(group_by, card=card, pool_metrics=pool_metrics)
    how = f"pooled over {group_by} and per {word} alone" if pooled else f"per {word} alone"
    err_console().print(f"backtesting {what} {how}")
    with quiet_stdout():
        result = backtest(
            run_table, group_by=group_by, card=card, holdout_frac=holdout_frac, separate=True,
            pool_metrics=pool_metrics, **fit_kwargs,
        )
    summary, table = result.families, result.table
    write_csv(folder / "backtest.csv", table, index=False)
    write_csv(folder / "backtest_summary.csv", summary, index=False)
    ensemble = None if result.weights is None else {
        "weights": result.weights, "tau": result.tau, "validated_decades": result.validated_decades,
        "convergence": result.convergence}
    if as_json:
        print_json({"group_by": group_by, "summary": records(summary),
                    **({"ensemble": ensemble} if ensemble else {})})
        return
    if ensemble:
        weights = ", ".join(f"{k} {v:.2f}" for k, v in ensemble["weights"].items())
        err_console().print(f"pooled ensemble (training runs): weights {weights}; tau "
                            f"{ensemble['tau']:.3g}; validated "
                            f"{ensemble['validated_decades']:.2f} decades")
        for label, value in render.convergence_rows(ensemble["convergence"]):
            err_console().print(f"{label}: {value}")
    out_console().print(render.families_backtest_table(summary, holdout_frac=holdout_frac))


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale backtest runs.csv --law chinchilla --holdout-frac 0.2 --out bt/\n\n"
        "  bayescale backtest runs.csv --cutoff 1e21 --method mle --bootstrap 200 --out bt/\n\n"
        "  bayescale backtest runs.csv --calibration --out bt/ --json\n\n"
        "  bayescale backtest downstream.csv --metric acc_hellaswag --floor 0.25 "
        "--via loss_c4_val --group-by dataset --out bt/ --json\n\n"
        "Without --law: the law ensemble (nested) for --method bayes, the chinchilla card for "
        "--method mle; --discrepancy needs --law."
    )
)
@guarded
@SAMPLER_OPTIONS(only=("draws", "tune", "chains", "prior", "executor"), draws=1000)
@RUN_OPTIONS()
def backtest(
    runs: RunsArg,
    out: OutOpt,
    law: LawOpt = None,
    holdout_frac: HoldoutOpt = 0.2,
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
    floor: FloorOpt = None,
    via: ViaOpt = None,
    n_examples: NExamplesOpt = None,
    tasks: TasksOpt = None,
    sampling: SamplerOptions = None,
    loading: RunOptions = None,
    as_json: JsonOpt = False,
    upper: UpperOpt = None,
):
    """Hold out the largest runs, fit the rest, and score the predictions of the held-out runs.

    With an accuracy --metric (acc_*, or --floor), the accuracy laws are backtested instead.
    """
    from bayescale.workflows.backtest import METHODS

    if accuracy.asks_for_accuracy(loading, floor, via, n_examples, tasks):
        if method != "bayes" or calibration or discrepancy:
            raise InputError("an accuracy backtest takes no --method mle, --calibration or "
                             "--discrepancy (its discrepancy is always estimated)")
        accuracy.backtest_accuracy_command(
            runs, out, law=law, holdout_frac=holdout_frac, cutoff=cutoff, seed=seed,
            sampling=sampling, loading=loading, floor=floor, via=via, n_examples=n_examples,
            tasks=tasks, as_json=as_json)
        return
    if via is not None:
        raise InputError("--via is for accuracy metrics (--metric acc_..., --floor F)")
    if method not in METHODS:
        raise InputError(f"--method must be {' or '.join(METHODS)}, got {method!r}")
    if discrepancy and method != "bayes":
        raise InputError(f"--discrepancy needs --method bayes, got {method!r}")
    choice = choose_card(law, sampling.priors)
    run_table = loading.load(runs, cards=choice.checks)
    fit_kwargs = {**sampling.fit_kwargs(seed), "executor": sampling.executor}
    group_by = loading.families(run_table)
    check_upper(upper, law=law, group_by=group_by)
    if upper is not None and method != "bayes":
        raise InputError("--upper/--no-upper apply to the law ensemble (--method bayes)")
    if group_by is not None:
        if method != "bayes" or cutoff is not None or calibration or discrepancy:
            raise InputError(
                "backtest --group-by supports --holdout-frac only (no --method mle, --cutoff, "
                "--calibration or --discrepancy)"
            )
        _backtest_families(run_table, choice.card, out, runs, group_by=group_by,
                           holdout_frac=holdout_frac, as_json=as_json, priors=choice.priors,
                           pool_metrics=loading.pool_metrics, **fit_kwargs)
        return
    names = ["backtest.csv", "backtest.json", "backtest.png", "backtest.svg", "reliability.png",
             "reliability.svg"]
    if calibration:
        names += ["calibration.csv", "calibration.png", "calibration.svg"]
    folder = check_out_dir(out, names, [runs])
    from bayescale.answers import plots, score_plots
    from bayescale.core.progress import fit_progress
    from bayescale.scoring.reading import lack_of_fit_reading
    from bayescale.workflows import backtest as backtesting

    what = f"card {choice.card.name}" if choice.card is not None else "the default model"
    err_console().print(f"backtesting {what} ({method}) on {len(run_table)} runs")
    fracs = (0.1, 0.2, 0.3, 0.4)  # the calibration curve's rolling cutoffs
    progress = fit_progress(1 + len(fracs), description="backtests",
                            enabled=None if calibration else False)
    with quiet_stdout(), progress as bar:
        result = backtesting.backtest(
            run_table, card=choice.card, priors=choice.priors, holdout_frac=holdout_frac,
            cutoff=cutoff, method=method, n_bootstrap=bootstrap, discrepancy=discrepancy,
            upper=upper, **fit_kwargs,
        )
        bar.advance()
        calib = None
        if calibration:
            calib = backtesting.calibration(
                run_table, card=choice.card, priors=choice.priors, holdout_fracs=fracs,
                method=method, n_bootstrap=bootstrap, progress=bar, upper=upper, **fit_kwargs,
            )
    words = lack_of_fit_reading(result.lack_of_fit, tuple((result.drift or {}).get(k, 0.0)
                                                          for k in ("mean", "sd")))
    if words:
        err_console().print(f"[bold yellow]warning[/]: lack of fit on the training runs: {words}.",
                            soft_wrap=True)
    data = result.to_dict()
    if calib is not None:
        data["calibration"] = calib.to_dict(orient="records")
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "backtest.csv", result.table, index=False)
    write_text(folder / "backtest.json", json_text(data))
    plots.save_figure(score_plots.plot_backtest(result), folder, "backtest")
    plots.save_figure(score_plots.plot_reliability(result), folder, "reliability")
    if calib is not None:
        write_csv(folder / "calibration.csv", calib, index=False)
        plots.save_figure(score_plots.plot_calibration(calib), folder, "calibration")
    if as_json:
        print_json(data)
        return
    console = out_console()
    console.print(render.backtest_table(result))
    if calib is not None:
        console.print(render.calibration_table(calib))
