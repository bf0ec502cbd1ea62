"""Commands that fit: ``fit`` (a card, the law ensemble, pooled families) and ``demo``."""

from pathlib import Path
from typing import Annotated

import typer

from bayescale.cli import accuracy, docs, render
from bayescale.cli.accuracy import FloorOpt, NExamplesOpt, TasksOpt, ViaOpt
from bayescale.cli.common import (
    EXIT_SAMPLER,
    CiKindOpt,
    CiProbOpt,
    LawOpt,
    OutOpt,
    RunsArg,
    SeedOpt,
    UpperOpt,
    app,
    check_out_dir,
    err_console,
    fail,
    fmt,
    guarded,
    json_text,
    out_console,
    print_json,
    quiet_stdout,
    sampler_warnings,
    warn_lack_of_fit,
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


def run_fit(runs, card, *, sampling: SamplerOptions, seed, progress, priors=None, group_by=None,
            pool_metrics=None, upper=None):
    """:func:`bayescale.workflows.fit.fit` with a line on stderr before and after.

    ``card`` None fits the library's default, the law ensemble (pooled with ``group_by``).
    Sampler warnings go to stderr; nothing the sampler prints reaches stdout.
    """
    from bayescale.workflows.fit import fit

    console = err_console()
    settings = (f"{sampling.chains} chains x {sampling.draws} draws after {sampling.tune} tuning "
                f"steps, seed {seed}")
    if card is None:
        from bayescale.core.cards import load_card
        from bayescale.engines.ensemble import default_cards
        from bayescale.engines.upper import upper_cards

        pooled = "" if group_by is None else f", each pooled over the families of {group_by!r}"
        names = default_cards(runs)
        if group_by is None:
            names = [c.name for c in upper_cards(runs, [load_card(n) for n in names],
                                                 upper=upper)[0]]
        console.print(
            f"fitting the law ensemble [bold]{', '.join(names)}[/] to "
            f"{len(runs)} runs{pooled} (weights and discrepancy from rolling splits): {settings}"
        )
        progress = progress or None
    else:
        console.print(
            f"fitting card [bold]{card.name}[/] ({card.law}, {card.family} noise) to {len(runs)} "
            f"runs: {settings}"
        )
    with quiet_stdout():
        tree = fit(
            runs, card=card, priors=priors, **sampling.fit_kwargs(seed), sampler=sampling.sampler,
            strict=False, progress=progress, group_by=group_by, pool_metrics=pool_metrics,
            executor=sampling.executor, upper=upper,
        )
    from bayescale.fits import read

    sampler_info = read(tree).provenance.get("sampler", {})
    console.print(
        f"done: compile {sampler_info.get('compile_seconds', '?')} s, "
        f"sampling {sampler_info.get('sample_seconds', '?')} s"
    )
    return tree


def summary_table(tree, *, ci_prob, ci_kind):
    """The parameter table of any fit (per family for a pooled one)."""
    from bayescale.fits import read

    if read(tree).is_pooled:
        from bayescale.answers.family_summary import summary_table

        return summary_table(tree, ci_prob=ci_prob, ci_kind=ci_kind)
    from bayescale.answers.summary import summarize

    return summarize(tree, ci_prob=ci_prob, ci_kind=ci_kind)


def summary_json(tree, *, ci_prob, ci_kind) -> dict:
    """The summary ``fit`` prints, of any fit (per family for a pooled one)."""
    from bayescale.fits import read

    if read(tree).is_pooled:
        from bayescale.answers.family_summary import fit_summary_json
    else:
        from bayescale.answers.summary import fit_summary_json
    return fit_summary_json(tree, ci_prob=ci_prob, ci_kind=ci_kind)


def write_fit_outputs(tree, folder: Path, *, ci_prob, ci_kind):
    """Save ``posterior.nc`` and ``summary.csv`` in ``folder``; return the summary table."""
    from bayescale.core.io import save

    table = summary_table(tree, ci_prob=ci_prob, ci_kind=ci_kind)
    folder.mkdir(parents=True, exist_ok=True)
    save(tree, folder / "posterior.nc")
    write_csv(folder / "summary.csv", table)
    err_console().print(f"wrote {folder / 'posterior.nc'} and {folder / 'summary.csv'}")
    warn_lack_of_fit(tree)
    return table


def sampler_problems(tree) -> list[str] | None:
    """Sampler problems recorded at fit time, over every member of a law ensemble.

    None when the fit is clean; each problem of an ensemble member is prefixed by its card.
    """
    from bayescale.fits import read

    view = read(tree)
    ok, problems = True, []
    for member in view.members:
        diag = read(member.tree).diagnostics
        ok = ok and bool(diag.get("ok", True))
        prefix = f"{member.name}: " if view.is_mixture else ""
        problems += [prefix + p for p in diag.get("problems", [])]
    return None if ok else problems


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale fit runs.csv --law chinchilla --out fit/\n\n"
        "  bayescale fit runs.csv --law kaplan --map N=params_no_embed --map loss=loss_c4_val "
        "--out fit/\n\n"
        "  bayescale fit runs.csv --prior 'alpha=Beta(2, 5)' --drop-top-loss 5 --strict "
        "--out fit/\n\n"
        "  bayescale fit downstream.csv --metric acc_hellaswag --floor task --via loss_c4_val "
        "--out fit/\n\n"
        "With --strict, sampler problems give exit code 5; posterior.nc and summary.csv are "
        "still written so the fit can be inspected."
    )
)
@guarded
@RUN_OPTIONS()
@SAMPLER_OPTIONS()
def fit(
    runs: RunsArg,
    out: OutOpt,
    law: LawOpt = None,
    seed: SeedOpt = 0,
    sampling: SamplerOptions = None,
    loading: RunOptions = None,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with code 5 on sampler problems.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show the sampler's progress (stderr).")
    ] = False,
    floor: FloorOpt = None,
    via: ViaOpt = None,
    n_examples: NExamplesOpt = None,
    tasks: TasksOpt = None,
    upper: UpperOpt = None,
):
    """Fit a scaling law to a table of runs: writes posterior.nc and summary.csv, prints JSON.

    With an accuracy --metric (acc_*, or --floor), the accuracy laws are fitted instead: stacked
    by their rolling forecasts (or one --law accuracy-*), written to posterior.nc.
    """
    from bayescale.core.stats import check_ci

    check_ci(ci_prob, ci_kind)
    if accuracy.asks_for_accuracy(loading, floor, via, n_examples, tasks):
        accuracy.fit_accuracy_command(runs, out, law=law, seed=seed, sampling=sampling,
                                      loading=loading, floor=floor, via=via,
                                      n_examples=n_examples, tasks=tasks)
        return
    if via is not None:
        raise InputError("--via is for accuracy metrics (--metric acc_..., --floor F)")
    choice = choose_card(law, sampling.priors)
    require_one_card(choice)
    run_table = loading.load(runs, cards=choice.checks)
    group_by = loading.families(run_table)
    check_upper(upper, law=law, group_by=group_by)
    folder = check_out_dir(out, ["posterior.nc", "summary.csv"], [runs])
    tree = run_fit(run_table, choice.card, sampling=sampling, seed=seed, progress=progress,
                   priors=choice.priors, group_by=group_by,
                   pool_metrics=loading.pool_metrics, upper=upper)
    write_fit_outputs(tree, folder, ci_prob=ci_prob, ci_kind=ci_kind)
    result = summary_json(tree, ci_prob=ci_prob, ci_kind=ci_kind)
    result["files"] = {"posterior": str(folder / "posterior.nc"),
                       "summary": str(folder / "summary.csv")}
    print_json(result)
    problems = sampler_problems(tree) if strict else None
    if problems is not None:
        fail(
            "sampler problems under --strict: " + "; ".join(problems)
            + f" (posterior written to {folder / 'posterior.nc'} for inspection)",
            EXIT_SAMPLER,
        )


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale demo --out demo/\n\n"
        "  bayescale demo --out demo/ --seed 3 --draws 500\n\n"
        "Simulates a Chinchilla-like IsoFLOP sweep from known parameters, fits it, and shows "
        "whether the posterior recovers the truth and how wide a 100x-compute extrapolation is."
    )
)
@guarded
@SAMPLER_OPTIONS(only=("draws", "tune", "chains"), draws=1000)
def demo(
    out: OutOpt,
    seed: SeedOpt = 0,
    sampling: SamplerOptions = None,
    with_report: Annotated[
        bool,
        typer.Option("--report/--no-report", help="Write report.html/.md/.json and the figures."),
    ] = True,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
):
    """The whole workflow on simulated runs: fit, recover the truth, extrapolate, allocate."""
    import numpy as np

    from bayescale.answers.prediction import predict
    from bayescale.core import datasets
    from bayescale.core.cards import load_card
    from bayescale.core.laws import get_law
    from bayescale.core.runs import load_runs
    from bayescale.core.stats import check_ci

    check_ci(ci_prob, ci_kind)
    folder = check_out_dir(out, ["posterior.nc", "summary.csv", "runs.csv", "demo.json"], [])
    card = load_card("chinchilla")
    frame = datasets.simulate(law="chinchilla", random_seed=seed)
    truth = dict(frame.attrs["true_params"])
    runs = load_runs(frame, n_params_required=card.n_params)
    err_console().print(
        f"simulated {len(runs)} runs: IsoFLOP sweep at C = "
        + ", ".join(fmt(c) for c in frame.attrs["budgets"])
        + f" FLOPs, noise sigma = {frame.attrs.get('sigma')} on log loss, seed {seed}"
    )
    tree = run_fit(runs, card, sampling=sampling, seed=seed, progress=False)
    table = write_fit_outputs(tree, folder, ci_prob=ci_prob, ci_kind=ci_kind)
    write_csv(folder / "runs.csv", frame, index=False)
    console = out_console()
    truth_cells = {**truth, "sigma": frame.attrs.get("sigma")}
    console.print(
        render.summary_table(table, title="Posterior vs the true parameters", truth=truth_cells)
    )

    law = get_law("chinchilla")
    c_max = float(runs.C.max())
    c_far = 100 * c_max
    n_true, d_true = (float(np.asarray(v).reshape(-1)[0]) for v in law.optimal(c_far, truth))
    true_loss = float(law.loss(n_true, d_true, truth))
    results = {"truth": truth, "summary": table.reset_index().to_dict(orient="records")}
    ds = predict(tree, N=[n_true], D=[d_true], ci_prob=ci_prob, ci_kind=ci_kind, random_seed=seed)
    pred = docs.predict_json(ds)
    results["prediction"] = {**pred, "true_loss": true_loss}
    console.print(render.predict_table(pred))
    q = pred["queries"][0]
    inside = q["ci"][0] <= true_loss <= q["ci"][1]
    console.print(
        f"100x-compute run (C = {fmt(c_far)}, at the true optimal N): true law loss "
        f"{true_loss:.4f}, {'inside' if inside else 'OUTSIDE'} the credible interval",
        markup=False,
    )
    budgets = [c_max, 10 * c_max, c_far, 1e22, 5.76e23]
    alloc = docs.optimal_json(tree, budgets, ci_prob=ci_prob, ci_kind=ci_kind)
    n_opt, d_opt = law.optimal(np.asarray(budgets), truth)
    for row, n_t, d_t in zip(alloc["budgets"], n_opt, d_opt, strict=True):
        row["true"] = {
            "N_opt": float(n_t), "D_opt": float(d_t), "tokens_per_param": float(d_t / n_t)
        }
    results["optimal"] = alloc
    for t in render.optimal_tables(alloc):
        console.print(t)
    if with_report:
        from bayescale.workflows.report import write_report

        with sampler_warnings():
            write_report(
                tree, folder, budgets=budgets, queries=[{"N": n_true, "D": d_true}],
                ci_prob=ci_prob, ci_kind=ci_kind, random_seed=seed,
            )
        err_console().print(f"wrote {folder / 'report.html'} and the figures in "
                            f"{folder / 'figures'}")
    write_text(folder / "demo.json", json_text(results))
    err_console().print(f"demo outputs in {folder}")
