"""Commands that answer questions of a saved fit: predict, optimal, contrast, plan, epochs, plot."""

from typing import Annotated

import typer

from bayescale.cli import docs, render
from bayescale.cli.common import (
    BudgetOpt,
    CiKindOpt,
    CiProbOpt,
    COpt,
    DOpt,
    FitArg,
    InferenceTokensOpt,
    JsonOpt,
    NOpt,
    OutOpt,
    SeedOpt,
    TargetOpt,
    app,
    as_floats,
    check_out_dir,
    guarded,
    load_fit,
    out_console,
    posterior_file,
    print_json,
    sampler_warnings,
)
from bayescale.errors import InputError


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale predict fit/ --N 7e10 --D 1.4e12\n\n"
        "  bayescale predict fit/posterior.nc --N 1e9 --N 1e10 --C 1e21 --C 1e22 --json\n\n"
        "  bayescale predict fit/ --N 7e10 --D 1.4e12 --target-loss 2.0 --ci-prob 0.95\n\n"
        "--N/--D/--C pair up point by point; give two of them (C = 6ND gives the third)."
    )
)
@guarded
def predict(
    fit_path: FitArg,
    N: NOpt = None,
    D: DOpt = None,
    C: COpt = None,
    target_loss: TargetOpt = None,
    target_accuracy: Annotated[
        float | None,
        typer.Option("--target-accuracy", help="Accuracy fits: P(one new run reaches this "
                     "accuracy) and P(the law does)."),
    ] = None,
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
    from bayescale.core.stats import check_ci

    check_ci(ci_prob, ci_kind)
    tree = load_fit(fit_path)
    from bayescale.fits import read

    if read(tree).is_accuracy:  # an accuracy metric: accuracy at the planned runs
        from bayescale.cli.accuracy import predict_accuracy_command

        predict_accuracy_command(tree, N=N, D=D, C=C, target=target_accuracy, ci_prob=ci_prob,
                                 ci_kind=ci_kind, seed=seed, as_json=as_json)
        return
    if target_accuracy is not None:
        raise InputError("--target-accuracy is for accuracy fits (fit --metric acc_...)")
    q = docs.queries(N, D, C)
    from bayescale.answers.prediction import predict as _predict

    tau = {} if discrepancy is None else {"discrepancy": discrepancy}  # else the library's

    def answer(t):
        return docs.predict_json(_predict(
            t, **q, target_loss=target_loss, ci_prob=ci_prob, ci_kind=ci_kind, random_seed=seed,
            **tau,
        ))

    docs.show(tree, answer, lambda result: [render.predict_table(result)], as_json)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale optimal fit/ --budget 5.76e23\n\n"
        "  bayescale optimal fit/ --budget 1e22 --budget 1e24 --json\n\n"
        "  bayescale optimal fit/ --budget 1e23 --target-loss 2.0 --prob 0.9"
    )
)
@guarded
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
    target_accuracy: Annotated[
        float | None,
        typer.Option("--target-accuracy", help="Accuracy fits: the compute at which one run "
                     "reaches this accuracy with probability --prob."),
    ] = None,
    tokens_per_param: Annotated[
        float, typer.Option("--tokens-per-param", help="Accuracy fits: the plan's D/N.")
    ] = 20.0,
):
    """Compute-optimal N*, D*, D*/N* and loss per budget, with the exponents a and b.

    On an accuracy fit: the compute for --target-accuracy at --tokens-per-param.
    """
    from bayescale.core.stats import check_ci

    check_ci(ci_prob, ci_kind)
    if not 0 < prob < 1:
        raise InputError(f"--prob must be strictly between 0 and 1, got {prob!r}")
    tree = load_fit(fit_path)
    from bayescale.fits import read

    if read(tree).is_accuracy:
        if target_accuracy is None:
            raise InputError("an accuracy fit: give --target-accuracy (and --prob, "
                             "--tokens-per-param)")
        from bayescale.answers.accuracy import compute_for_accuracy

        result = compute_for_accuracy(tree, target=target_accuracy, prob=prob,
                                      tokens_per_param=tokens_per_param, ci_prob=ci_prob,
                                      ci_kind=ci_kind, random_seed=seed)
        if as_json:
            print_json(result)
        else:
            out_console().print(result["statement"], soft_wrap=True)
        return
    if target_accuracy is not None:
        raise InputError("--target-accuracy is for accuracy fits (fit --metric acc_...)")
    if not budget:
        raise InputError("give at least one --budget in FLOPs, e.g. --budget 5.76e23")
    budgets = as_floats(budget)

    def answer(t):
        result = docs.optimal_json(t, budgets, ci_prob=ci_prob, ci_kind=ci_kind,
                                   target_loss=target_loss, prob=prob, seed=seed)
        if inference_tokens:
            from bayescale.answers.planning.summary import inference_side_by_side

            result["inference"] = inference_side_by_side(
                t, budgets=budgets, inference_tokens=inference_tokens, target_loss=target_loss,
                ci_prob=ci_prob, ci_kind=ci_kind,
            )
        return result

    def tables(result):
        inference = [render.inference_table(result["inference"])] if "inference" in result else []
        return render.optimal_tables(result) + inference

    docs.show(tree, answer, tables, as_json)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale fit runs.csv --group-by dataset_name --out fit/\n\n"
        "  bayescale contrast fit/ --budget 1e22\n\n"
        "  bayescale contrast fit/ --budget 1e22 --budget 1e24 --json"
    )
)
@guarded
def contrast(
    fit_path: FitArg,
    budget: BudgetOpt = None,
    ci_prob: CiProbOpt = 0.9,
    ci_kind: CiKindOpt = "eti",
    as_json: JsonOpt = False,
):
    """Compare the families of a pooled fit (--group-by): differences and their probabilities."""
    from bayescale.core.stats import check_ci

    check_ci(ci_prob, ci_kind)
    if not budget:
        raise InputError("give at least one --budget in FLOPs, e.g. --budget 1e22")
    tree = load_fit(fit_path)
    from bayescale.answers.family_summary import contrast_json
    from bayescale.fits import read

    if not read(tree).is_pooled:
        raise InputError(
            f"{posterior_file(fit_path)} is a fit of one family; contrast needs a pooled fit "
            "(bayescale fit RUNS --group-by COLUMN)"
        )
    doc = contrast_json(tree, budgets=as_floats(budget), ci_prob=ci_prob, ci_kind=ci_kind)
    if as_json:
        print_json(doc)
        return
    console = out_console()
    for t in render.contrast_tables(doc):
        console.print(t)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale plan fit/ --target loss --N 7e10 --D 1.4e12 --budget-new 1e21\n\n"
        "  bayescale plan fit/ --target nopt --budget 5.76e23 --budget-new 1e21 --json\n\n"
        "  bayescale plan fit/ --target compute --target-loss 2.0 --budget-new 1e21"
    )
)
@guarded
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
    tree = load_fit(fit_path)
    from bayescale.answers.planning import plan as _plan
    from bayescale.fits import read

    view = read(tree)
    if family is not None and view.is_pooled:
        view = view.family(family)  # one family's view: an ordinary fit, one plan
    with sampler_warnings():
        result = _plan(
            view.tree, target=target, N=N, D=D, budget=budget, target_loss=target_loss,
            budget_new=budget_new, max_runs=max_runs, n_worlds=worlds, min_ess=min_ess,
            refit=refit, ci_prob=ci_prob, random_seed=seed,
        )
    docs_by = ({lab: p.to_dict() for lab, p in result.items()} if view.is_pooled
               else {None: result.to_dict()})  # a pooled fit is planned per family
    if as_json:
        print_json(docs_by[None] if None in docs_by else {"families": docs_by})
        return
    console = out_console()
    for name, doc in docs_by.items():
        if name is not None:
            console.print(f"family {name}")
        for t in render.plan_tables(doc):
            console.print(t)


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
@guarded
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
    from bayescale.core.stats import check_ci

    check_ci(ci_prob, ci_kind)
    if not unique_tokens:
        raise InputError("give at least one --unique-tokens, e.g. --unique-tokens 1e11")
    if not budget:
        raise InputError("give at least one --budget in FLOPs, e.g. --budget 1e23")
    tree = load_fit(fit_path)
    result = docs.epochs_json(
        tree, as_floats(unique_tokens), as_floats(budget), as_floats(epochs_k),
        max_epochs=max_epochs, ci_prob=ci_prob, ci_kind=ci_kind, seed=seed,
    )
    if as_json:
        print_json(result)
        return
    console = out_console()
    for t in render.epochs_tables(result):
        console.print(t)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  bayescale plot fit/ --out figures/\n\n"
        "  bayescale plot fit/posterior.nc --out figures/ --ci-kind hdi\n\n"
        "A pooled fit (fit --group-by) gets every figure per family: frontier-<family>.png, ..."
    )
)
@guarded
def plot(
    fit_path: FitArg,
    out: OutOpt,
    budget: BudgetOpt = None,
    ci_kind: CiKindOpt = "eti",
    seed: SeedOpt = 0,
):
    """Draw every figure of a fit (PNG and SVG): frontier, IsoFLOP, allocation, pairs, residuals."""
    from bayescale.core.stats import CI_KINDS

    if ci_kind not in CI_KINDS:
        raise InputError(f"ci_kind must be one of {', '.join(CI_KINDS)}, got {ci_kind!r}")
    tree = load_fit(fit_path)
    from bayescale.answers.plots import figure_makers, save_figure

    makers = figure_makers(tree, budgets=as_floats(budget) or None, ci_kind=ci_kind,
                           random_seed=seed)
    names = [f"{name}.{ext}" for name in makers for ext in ("png", "svg")]
    folder = check_out_dir(out, names, [posterior_file(fit_path)])
    written = []
    for name, make in makers.items():
        with sampler_warnings():
            written += save_figure(make(), folder, name)
    print_json({"figures": [str(p) for p in written]})
