"""The JSON the answer commands print, built from the library's datasets (field names are the
CLI's contract: intervals are ``{"median", "lo", "hi"}``), and how a pooled fit is shown."""

from bayescale.cli.common import as_floats, err_console, out_console, print_json
from bayescale.errors import InputError


def show(tree, answer, tables, as_json: bool) -> None:
    """Print ``answer(tree)`` as JSON or ``tables(result)``; per family on a pooled fit.

    A pooled fit prints ``{"group_by", "families": {label: answer}}`` (tables under a header per
    family), each family answered on its own view (:meth:`bayescale.fits.Fit.family_trees`);
    a fit of several metrics (``--metric``) prints ``{"group_by": "metric", "metrics": {name:
    answer}}``.
    """
    from bayescale.fits import read

    view = read(tree)
    if view.is_pooled:
        results = {lab: answer(t) for lab, t in view.family_trees().items()}
        key = view.families_key
        if as_json:
            print_json({"group_by": view.families_info["group_by"], key: results})
            return
    else:
        results, key = {None: answer(tree)}, None
        if as_json:
            print_json(results[None])
            return
    console = out_console()
    word = "metric" if key == "metrics" else "family"
    for lab, result in results.items():
        if lab is not None:
            console.print(f"[bold]{word} {lab}[/]")
        for t in tables(result):
            console.print(t)


def queries(N, D, C) -> dict:
    """``--N``/``--D``/``--C`` as paired lists (one value stands for every point)."""
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
    return {k: as_floats(v) for k, v in given.items()}


def query_list(N, D, C) -> list[dict] | None:
    """The query points as ``[{"N": .., "D": ..}, ...]`` (None when none are given)."""
    if not (N or D or C):
        return None
    q = queries(N, D, C)
    n = max(len(v) for v in q.values())
    return [{k: (v[i] if len(v) > 1 else v[0]) for k, v in q.items()} for i in range(n)]


def warn_unvalidated(distances, validated, *, what: str) -> None:
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
    err_console().print(
        f"[bold yellow]warning[/]: {len(distances)} {what}(s) up to {far:.3g} decades of compute "
        f"beyond the fitted runs are UNVALIDATED: {reason}. Their intervals assume the law "
        "holds that far.", soft_wrap=True,
    )


def predict_json(ds) -> dict:
    """:func:`bayescale.answers.prediction.predict`'s dataset as the JSON of ``predict``."""
    import numpy as np

    rows = []
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
        rows.append(q)
    doc = {
        "ci_prob": float(ds.attrs.get("ci_prob")),
        "ci_kind": str(ds.attrs.get("ci_kind")),
        "card": ds.attrs.get("card"),
    }
    if has_target:
        doc["target_loss"] = float(ds.attrs.get("target_loss"))
    if "discrepancy_tau" in ds.attrs:
        doc["discrepancy_tau"] = float(ds.attrs["discrepancy_tau"])
    if "validated_decades" in ds.attrs:
        doc["validated_decades"] = float(ds.attrs["validated_decades"])
    doc["queries"] = rows
    warn_unvalidated(
        [q["extrapolation"].get("C", float("nan")) for q in rows if not q.get("validated", 1)],
        doc.get("validated_decades"), what="query",
    )
    return doc


def ci_triplet(ds, name: str, index=None) -> dict:
    """``{"median", "lo", "hi"}`` of ``ds[name]`` and ``ds[name + "_ci"]``."""
    import numpy as np

    med = ds[name] if index is None else ds[name][index]
    ci = ds[f"{name}_ci"] if index is None else ds[f"{name}_ci"][index]
    lo, hi = (float(v) for v in np.asarray(ci))
    return {"median": float(med), "lo": lo, "hi": hi}


def optimal_json(tree, budgets, *, ci_prob, ci_kind, target_loss=None, prob=0.9, seed=0):
    """The JSON of ``optimal``: allocation per budget, exponents, compute for a target."""
    from bayescale.answers.allocation import compute_for_target, optimal
    from bayescale.fits import read

    ds = optimal(tree, budgets=budgets, ci_prob=ci_prob, ci_kind=ci_kind)
    rows = []
    for i in range(ds.sizes["budget"]):
        row = {"budget": float(ds["budget"][i]) if "budget" in ds.coords else float(budgets[i])}
        for name in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
            row[name] = ci_triplet(ds, name, i)
        if "validated" in ds:
            row["extrapolation_C"] = float(ds["extrapolation_C"][i])
            row["validated"] = bool(ds["validated"][i])
        rows.append(row)
    doc = {
        "card": ds.attrs.get("card", read(tree).name),
        "ci_prob": ci_prob,
        "ci_kind": ci_kind,
        "method": ds.attrs.get("method"),
        "validated_decades": ds.attrs.get("validated_decades"),
        "budgets": rows,
        "exponents": {"a": ci_triplet(ds, "exponent_a"), "b": ci_triplet(ds, "exponent_b")},
    }
    warn_unvalidated([r["extrapolation_C"] for r in rows if not r.get("validated", True)],
                     ds.attrs.get("validated_decades"), what="budget")
    if target_loss is not None:
        doc["compute_for_target"] = compute_for_target(
            tree, target_loss=target_loss, prob=prob, ci_prob=ci_prob, ci_kind=ci_kind,
            random_seed=seed,
        )
    return doc


def epochs_json(tree, us, budgets, ks, *, max_epochs, ci_prob, ci_kind, seed) -> dict:
    """The JSON of ``epochs``: best epochs on the grid ``us x budgets``; loss of ``ks`` repeats."""
    import numpy as np

    from bayescale.answers.repetition import best_epochs, repeat_loss
    from bayescale.fits import read

    u_grid, c_grid = (a.reshape(-1) for a in np.meshgrid(us, budgets, indexing="ij"))
    best = best_epochs(tree, U=u_grid, C=c_grid, max_epochs=max_epochs, ci_prob=ci_prob,
                       ci_kind=ci_kind)
    rows = []
    for i in range(best.sizes["query"]):
        row = {"U": float(best["U"][i]), "C": float(best["C"][i])}
        for name in ("epochs_opt", "N_opt", "D_opt", "loss_opt", "loss_one_epoch"):
            row[name] = ci_triplet(best, name, i)
        row["p_repeat"] = float(best["p_repeat"][i])
        rows.append(row)
    doc = {"card": read(tree).card.name, "ci_prob": ci_prob, "ci_kind": ci_kind, "best": rows}
    if ks:
        u3, c3, k3 = (a.reshape(-1) for a in np.meshgrid(us, budgets, ks, indexing="ij"))
        ds = repeat_loss(tree, U=u3, C=c3, epochs=k3, ci_prob=ci_prob, ci_kind=ci_kind,
                         random_seed=seed)
        doc["repeat"] = [
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
    return doc
