"""Tables on stdout: every command's answer as rich tables, from the JSON it would print."""

from rich.table import Table

from bayescale.cli.common import cell, fmt, interval


def summary_table(table, *, title: str, truth=None) -> Table:
    """:func:`bayescale.answers.summary.summarize` output (with true values if given)."""
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
            cells.append(fmt(truth.get(name)))
        cells += [
            fmt(row["median"]),
            fmt(row[lo_col]),
            fmt(row[hi_col]),
            fmt(row["mean"]),
            fmt(row["sd"]),
            "-" if row["r_hat"] != row["r_hat"] else f"{row['r_hat']:.3f}",
            "-" if row["ess_bulk"] != row["ess_bulk"] else f"{row['ess_bulk']:.0f}",
        ]
        if truth is not None:
            v = truth.get(name)
            cells.append("-" if v is None else ("yes" if row[lo_col] <= v <= row[hi_col] else "NO"))
        t.add_row(*cells)
    return t


def frame_table(frame, *, title: str, index_name: str) -> Table:
    """A DataFrame with its index as the first column."""
    t = Table(title=title)
    t.add_column(index_name)
    for col in frame.columns:
        t.add_column(str(col), justify="right")
    for idx, row in frame.iterrows():
        t.add_row(str(idx), *(cell(v) for v in row.tolist()))
    return t


def predict_table(result: dict) -> Table:
    """``bayescale predict``'s JSON as a table."""
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
            fmt(q["N"]),
            fmt(q["D"]),
            fmt(q["C"]),
            fmt(q["median"]),
            f"[{fmt(q['ci'][0])}, {fmt(q['ci'][1])}]",
            f"[{fmt(q['pi'][0])}, {fmt(q['pi'][1])}]",
        ]
        if target:
            cells.append(f"{q['p_below_target']:.3f}")
        cells.append("/".join(f"{ex.get(k, 0):+.1f}" for k in ("N", "D", "C")))
        t.add_row(*cells)
    return t


def optimal_tables(result: dict) -> list[Table]:
    """``bayescale optimal``'s JSON: allocation per budget, exponents, compute for a target."""
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
        cells = [fmt(row["budget"])]
        for name in ("N_opt", "D_opt", "tokens_per_param", "loss_opt"):
            cells.append(interval(row[name]))
        if truth:
            cells += [fmt(row["true"]["N_opt"]), fmt(row["true"]["tokens_per_param"])]
        t.add_row(*cells)
    tables = [t]
    e = Table(title=f"Exponents N* ∝ C^a, D* ∝ C^b ({pct} {result['ci_kind']})")
    for col in ("exponent", "median", "lower", "upper"):
        e.add_column(col, justify="right")
    for k, v in result["exponents"].items():
        e.add_row(k, fmt(v["median"]), fmt(v["lo"]), fmt(v["hi"]))
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
                v = (f"{v['run']} (N {fmt(v['N'])}, D {fmt(v['D'])}, C {fmt(v['C'])}, "
                     f"loss {fmt(v['loss'])})")
            elif isinstance(v, dict):
                v = interval(v)
            else:
                v = fmt(v)
            c.add_row(k, v)
        tables.append(c)
    return tables


def inference_table(inf: dict) -> Table:
    """Training-only against inference-aware optimum (``optimal --inference-tokens``)."""
    pct = f"{inf['ci_prob'] * 100:g}%"
    t = Table(
        title=f"Training-only vs inference-aware optimum, T = {fmt(inf['inference_tokens'])} "
        f"tokens served (medians, {pct} {inf['ci_kind']})"
    )
    for col in ("budget C", "optimum", "N*", "D*", "D*/N*", "loss", "training share"):
        t.add_column(col, justify="right")
    for row in inf["budgets"]:
        for side in ("training_only", "inference_aware"):
            v = row[side]
            cells = [fmt(row["budget"]), side.replace("_", "-")]
            for name in ("N_opt", "D_opt", "tokens_per_param", "loss_opt", "train_fraction"):
                x = v.get(name)
                cells.append(interval(x) if x else "1")
            t.add_row(*cells)
    return t


def contrast_tables(doc: dict) -> list[Table]:
    """``bayescale contrast``'s JSON: optimum per family, contrasts, pooling scales."""
    pct = f"{doc['ci_prob'] * 100:g}%"
    o = Table(title=f"Compute-optimal per family (medians, {pct} {doc['ci_kind']} intervals)")
    for col in ("family", "budget C", "N*", "D*", "D*/N*", "loss at optimum"):
        o.add_column(col, justify="right")
    cells: dict = {}
    for r in doc["optimal"]:
        cells.setdefault((r["family"], r["budget"]), {})[r["quantity"]] = interval(
            r, "lower", "upper"
        )
    for (fam, c), v in cells.items():
        o.add_row(fam, fmt(c), v["N_opt"], v["D_opt"], v["tokens_per_param"], v["loss_opt"])
    t = Table(
        title=f"Contrasts between families ({pct} {doc['ci_kind']}); p = P(X's value < Y's); "
        "for loss_opt, P(X reaches the lower loss at C)"
    )
    for col in ("X vs Y", "quantity", "budget C", "median", "interval", "p"):
        t.add_column(col, justify="right")
    for r in doc["contrasts"]:
        t.add_row(
            r["pair"], r["quantity"], fmt(r["budget"]) if r["budget"] is not None else "-",
            fmt(r["median"]), f"[{fmt(r['lower'])}, {fmt(r['upper'])}]",
            f"{r['p_x_below_y']:.3f}",
        )
    p = Table(title="Pooling: each family's value, the spread tau across families (log scale)")
    for col in ("parameter", "family", "value", "tau", "log(value/mu)", "own value"):
        p.add_column(col, justify="right")
    for r in doc["pooling"]:
        ratio = "-"
        if r.get("log_ratio") is not None:
            ratio = (f"{fmt(r['log_ratio'])} [{fmt(r['log_ratio_lower'])}, "
                     f"{fmt(r['log_ratio_upper'])}]")
        p.add_row(
            r["param"], r["family"],
            f"{fmt(r['median'])} [{fmt(r['lower'])}, {fmt(r['upper'])}]",
            f"{fmt(r['tau'])} [{fmt(r['tau_lower'])}, {fmt(r['tau_upper'])}]",
            ratio, "yes" if r.get("own_value") else "no",
        )
    return [o, t, p]


def plan_tables(doc: dict) -> list[Table]:
    """A plan (``Plan.to_dict()``): widths now and after, and the runs to train next."""
    tgt = doc["target"]
    pct = f"{doc['settings']['ci_prob'] * 100:g}%"
    head = Table(title=f"Plan for the {tgt['description']} ({pct} interval width, {tgt['unit']})")
    for col in ("", "runs", "compute", "width", "shrinkage"):
        head.add_column(col, justify="right")
    head.add_row("today", "", "", fmt(doc["width_now"]), "")
    head.add_row("after the plan", str(len(doc["runs"])), fmt(doc["cost"]),
                 fmt(doc["width_after"]), f"{doc['shrinkage']:.1%}")
    naive = doc["naive"]
    head.add_row("after the naive plan", str(len(naive["runs"])),
                 fmt(sum(r["C"] for r in naive["runs"])), fmt(doc["width_after_naive"]),
                 f"{doc['shrinkage_naive']:.1%}")
    runs = Table(title="Runs to train next (in order; width expected once each is in)")
    for col in ("N", "D", "C", "width after", "ESS", "valued by"):
        runs.add_column(col, justify="right")
    for r in doc["runs"]:
        runs.add_row(fmt(r["N"]), fmt(r["D"]), fmt(r["C"]), fmt(r["width_after"]),
                     f"{r['ess']:.0f}", r["method"])
    return [head, runs]


def epochs_tables(result: dict) -> list[Table]:
    """``bayescale epochs``'s JSON: best epochs per (U, C), and the loss of k repeats."""
    pct = f"{result['ci_prob'] * 100:g}%"
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
        t.add_row(fmt(row["U"]), fmt(row["C"]), interval(row["epochs_opt"]),
                  interval(row["N_opt"]), interval(row["D_opt"]), interval(row["loss_opt"]),
                  interval(row["loss_one_epoch"]), f"{row['p_repeat']:.3f}")
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
            r.add_row(fmt(q["U"]), fmt(q["C"]), fmt(q["epochs"]), fmt(q["N"]),
                      fmt(q["median"]), f"[{fmt(q['ci'][0])}, {fmt(q['ci'][1])}]",
                      f"[{fmt(q['pi'][0])}, {fmt(q['pi'][1])}]", interval(q["excess"]))
        tables.append(r)
    return tables


def backtest_table(result) -> Table:
    """A :class:`~bayescale.workflows.backtest.BacktestResult` as a table of its scores."""
    t = Table(
        title=f"Backtest of {result.card} ({result.method}): {result.n_train} runs fitted, "
        f"{result.n_test} held out above C = {fmt(result.cutoff)}"
    )
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for p, cov in sorted(result.coverage.items()):
        t.add_row(f"coverage of {float(p):.0%} predictive intervals", f"{cov:.3f}")
    t.add_row("mean log predictive density per run", fmt(result.lpd_mean))
    if result.weights is not None:
        for name, w in result.weights.items():
            t.add_row(f"stacking weight of {name} (training runs only)", f"{w:.3f}")
        t.add_row("discrepancy tau (sd of log loss per decade, included above)",
                  fmt(result.tau))
        t.add_row("extrapolation validated by the nested splits (decades of C)",
                  fmt(result.validated_decades))
        for label, value in convergence_rows(result.convergence):
            t.add_row(label, value)
    elif result.tau is not None:
        t.add_row("discrepancy tau (sd of log loss per decade)", fmt(result.tau))
        for p, cov in sorted(result.coverage_calibrated.items()):
            t.add_row(f"coverage of {float(p):.0%} intervals with discrepancy", f"{cov:.3f}")
        t.add_row("mean log predictive density with discrepancy",
                  fmt(result.lpd_mean_calibrated))
    t.add_row("median absolute error of loss", fmt(result.median_abs_error))
    return t


def convergence_rows(conv) -> list[tuple[str, str]]:
    """Rows saying which ensemble fits were refitted, left out of the weights or dropped."""
    if not conv:
        return []
    rows = [("fits refitted to converge (R-hat <= 1.01, no divergences)",
             f"{conv.get('n_refitted', 0)} of {conv.get('n_fits', 0)}")]
    for msg in conv.get("excluded_split_fits", []):
        rows.append(("split fit left out of the weights (did not converge)", msg))
    for card, why in (conv.get("dropped_cards") or {}).items():
        rows.append((f"card {card} dropped from the ensemble", why))
    for msg in conv.get("unconverged_kept", []):
        rows.append(("fit kept although it did not converge", msg))
    return rows


def calibration_table(calib) -> Table:
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
            f"{float(frac):.0%}", fmt(cut), str(int(n_test)), *(f"{v:.2f}" for v in row.tolist())
        )
    return t


def families_backtest_table(summary, *, holdout_frac: float) -> Table:
    """``backtest --group-by``'s summary: one row per family and fit."""
    t = Table(title=f"Per-family backtest: top {holdout_frac:g} by compute held out per family")
    for col in summary.columns:
        t.add_column(str(col), justify="right")
    for row in summary.itertuples(index=False):
        t.add_row(*(cell(v) for v in row))
    return t
