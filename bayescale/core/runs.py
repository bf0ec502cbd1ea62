"""The runs table: one row per training run, with its size, data, compute and final loss.

:func:`load_runs` reads a CSV, TSV or Parquet file (or takes a DataFrame), recognises the columns
that hold the model size ``N``, training tokens ``D``, compute ``C`` and ``loss`` under the names
used across the literature, derives the missing one of ``D``/``C`` from ``C = 6 N D``, checks every
value and applies plain filters. The result is a :class:`Runs`: a canonical frame and a
JSON-serialisable provenance record of how it was made.

Column recognition compares names case-insensitively, ignoring spaces, underscores and dashes
(``Model Size`` = ``model_size`` = ``modelsize``). Each canonical column has aliases in priority
order (see ``ALIASES``); when two columns match, the higher-priority alias wins and the other is
recorded in ``provenance["alternatives"]``. Two columns with the same priority are an error that
asks for an explicit mapping. Notes on the choices:

- ``N`` prefers total parameters (``params``) over non-embedding parameters
  (``non_embedding_params``, Kaplan et al. 2020's convention), because Chinchilla-style fits
  (Hoffmann et al. 2022, Besiroglu et al. 2024) count all parameters. Map ``N`` explicitly to fit
  on non-embedding counts.
- ``group`` is recognised only from columns named ``group`` or ``family``. A column such as
  ``dataset_name`` may be a corpus, an evaluation set or a label, so it becomes the group only when
  mapped (``mapping={"group": "dataset_name"}``, CLI ``--map group=dataset_name``).
- ``U`` (unique tokens: ``U``, ``unique_tokens``, ``unique_tokens_U``) is optional. It is read and
  checked (positive, at most ``D``) whenever present, and required only by laws that use it (the
  data-constrained law of Muennighoff et al. 2023, through ``variables=("N", "D", "U")``).
- Columns that merely look like a canonical column (``loss_c4_val``, ``params_no_embed``) are never
  taken silently; they are suggested in error messages and listed as alternatives.

Row numbers in error messages are 1-based data rows (the header is not counted), so data row ``r``
of a CSV file is on line ``r + 1``.

References
----------
Kaplan, J. et al. (2020). Scaling Laws for Neural Language Models. arXiv:2001.08361.
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models. arXiv:2203.15556.
Besiroglu, T. et al. (2024). Chinchilla Scaling: A replication attempt. arXiv:2404.10102.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.core.laws import FLOPS_PER_PARAM_TOKEN
from bayescale.errors import InputError

__all__ = [
    "ALIASES",
    "METRIC",
    "Runs",
    "load_runs",
    "match_metrics",
    "parse_mapping",
    "sha256_frame",
    "validate",
]

METRIC = "metric"
"""Family label of a long-form table of several metrics (``metrics=``): the ``group_by`` name."""

NUMERIC = ("N", "D", "C", "loss")
"""Canonical numeric columns, in frame order."""

OPTIONAL_NUMERIC = ("U",)
"""Canonical numeric columns that are kept when present and required only by some laws."""

CANONICAL = NUMERIC + OPTIONAL_NUMERIC + ("run", "group")
"""All canonical columns, in frame order (``U`` and ``group`` only when present)."""

ALIASES: dict[str, tuple[str, ...]] = {
    "N": (
        "N",
        "params",
        "num_params",
        "n_params",
        "params_N",
        "parameters",
        "model_size",
        "nparams",
        "non_embedding_params",
    ),
    "D": (
        "D",
        "tokens",
        "tokens_D",
        "tokens_seen",
        "num_tokens",
        "n_tokens",
        "train_tokens",
        "data_size",
    ),
    "C": ("C", "flops", "FLOPs", "compute", "Training FLOP", "training_flops", "train_flops"),
    "loss": ("loss", "val_loss", "eval_loss", "validation_loss", "test_loss", "final_loss"),
    "U": ("U", "unique_tokens", "unique_tokens_U"),
    "run": ("run", "run_id", "name", "run_name", "id"),
    "group": ("group", "family"),
}
"""Recognised column names per canonical column, highest priority first."""

_LOOKS_LIKE = {
    "N": ("param", "modelsize"),
    "D": ("token",),
    "C": ("flop", "compute"),
    "loss": ("loss",),
    "U": ("unique",),
    "run": (),
    "group": ("group", "family", "dataset"),
}
_DISTINCT = {
    "N": "model sizes",
    "D": "token counts",
    "C": "compute budgets",
    "loss": "loss values",
}
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_ACCEPTED = "a path to a .csv, .tsv/.tab or .parquet/.pq file, a pandas DataFrame or a Runs"
_MAX_LISTED = 5


def _norm(name) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


_RANK = {
    canon: {_norm(a): i for i, a in reversed(list(enumerate(aliases)))}
    for canon, aliases in ALIASES.items()
}
_CANON_KEY = {_norm(c): c for c in CANONICAL}


# --------------------------------------------------------------------------------------------
# The Runs container
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Runs:
    """A validated runs table and the record of how it was made.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns ``N``, ``D``, ``C``, ``loss`` (float64), ``run`` (str, unique) and, when the source
        has one, ``group`` (str); index ``0..n-1``.
    provenance : dict
        JSON-serialisable: ``source``, ``format``, ``sha256`` (of the canonical frame, see
        :func:`sha256_frame`), ``mapping`` ``{canonical: original column}``, ``explicit`` (the
        canonical names the user mapped), ``alternatives``, ``derived`` (``{"D": "C/(6N)"}`` or
        ``{"C": "6ND"}``), ``filters`` ``{name: value}``, ``dropped`` ``{name: rows dropped}``,
        ``n_rows_in`` and ``n_rows`` (``n_rows_in - sum(dropped) == n_rows``).

    Examples
    --------
    >>> import pandas as pd
    >>> runs = load_runs(pd.DataFrame({"params": [1e8, 1e9, 1e9], "tokens": [2e9, 2e10, 4e10],
    ...                                "loss": [3.1, 2.6, 2.5]}))
    >>> len(runs), float(runs.C[0])
    (3, 1.2e+18)
    """

    frame: pd.DataFrame
    provenance: dict

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        groups = ""
        if "group" in self.frame:
            groups = f", groups={sorted(self.frame['group'].unique().tolist())}"
        if "metrics" in self.provenance:
            groups += f", metrics={self.provenance['metrics']}"
        return f"Runs(n={len(self)}, source={self.provenance.get('source')!r}{groups})"

    @property
    def N(self) -> np.ndarray:
        """Model sizes (parameters) as a new float64 array."""
        return self.frame["N"].to_numpy(dtype=np.float64, copy=True)

    @property
    def D(self) -> np.ndarray:
        """Training tokens as a new float64 array."""
        return self.frame["D"].to_numpy(dtype=np.float64, copy=True)

    @property
    def C(self) -> np.ndarray:
        """Training compute in FLOPs as a new float64 array."""
        return self.frame["C"].to_numpy(dtype=np.float64, copy=True)

    @property
    def U(self) -> np.ndarray | None:
        """Unique training tokens as a new float64 array, or None when the table has none."""
        if "U" not in self.frame:
            return None
        return self.frame["U"].to_numpy(dtype=np.float64, copy=True)

    @property
    def loss(self) -> np.ndarray:
        """Final losses as a new float64 array."""
        return self.frame["loss"].to_numpy(dtype=np.float64, copy=True)

    def subset(self, mask) -> Runs:
        """Return the runs selected by ``mask`` as a new :class:`Runs`.

        Parameters
        ----------
        mask : array_like of bool or of int
            A boolean mask of length ``len(self)``, or integer positions (each at most once).

        Returns
        -------
        Runs
            The selected rows (index reset to ``0..k-1``); provenance gains a ``subset`` filter
            (``"k of n runs"``) and its dropped count.

        Raises
        ------
        InputError
            If the mask has the wrong length or type, repeats or exceeds positions, or selects
            nothing.

        Examples
        --------
        >>> import pandas as pd
        >>> runs = load_runs(pd.DataFrame({"N": [1e8, 1e9, 1e9], "D": [2e9, 2e10, 4e10],
        ...                                "loss": [3.1, 2.6, 2.5]}))
        >>> small = runs.subset(runs.N < 5e8)
        >>> len(small), small.provenance["filters"]["subset"]
        (1, '1 of 3 runs')
        """
        n = len(self)
        arr = np.asarray(mask)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise InputError(
                    f"subset mask has shape {arr.shape}; expected a boolean mask of length {n}"
                )
            positions = np.flatnonzero(arr)
        elif arr.ndim == 1 and (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
            positions = arr.astype(np.int64)
            if positions.size and (positions.min() < -n or positions.max() >= n):
                raise InputError(f"subset positions must lie in 0..{n - 1}; got {arr.tolist()}")
            positions = np.where(positions < 0, positions + n, positions)
            if np.unique(positions).size != positions.size:
                raise InputError("subset positions repeat a run; each run may be selected once")
        else:
            raise InputError(
                f"subset expects a boolean mask of length {n} or integer positions; "
                f"got an array of dtype {arr.dtype}"
            )
        if positions.size == 0:
            raise InputError(f"subset selects none of the {n} runs")
        frame = self.frame.iloc[positions].reset_index(drop=True)
        prov = copy.deepcopy(self.provenance)
        _record(prov, "subset", f"{positions.size} of {n} runs", n - positions.size)
        prov["n_rows"] = len(frame)
        prov["sha256"] = sha256_frame(frame)
        return Runs(frame=frame, provenance=prov)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def load_runs(
    source,
    *,
    mapping=None,
    group=None,
    group_by=None,
    drop_top_loss=0,
    max_loss=None,
    min_loss=None,
    min_flops=None,
    max_flops=None,
    min_params=None,
    max_params=None,
    n_params_required=0,
    variables=("N", "D"),
    best_of_sweep=False,
    drop_duplicates=False,
    metric=None,
    metrics=None,
) -> Runs:
    """Read, recognise, check and filter a table of training runs.

    Parameters
    ----------
    source : str, pathlib.Path, pandas.DataFrame or Runs
        A CSV file, a TSV file (``.tsv``/``.tab``), a Parquet file (``.parquet``/``.pq``), a
        DataFrame, or a :class:`Runs` (then only the filters are applied).
    mapping : dict, optional
        ``{canonical: column}`` overriding recognition, canonical in ``N``, ``D``, ``C``,
        ``loss``, ``run``, ``group`` (see :func:`parse_mapping` for the CLI form).
    group : str, optional
        Keep only the rows whose ``group`` equals this value.
    group_by : str, optional
        A column of the source (any name, e.g. ``dataset_name``) whose values label the run's
        family; kept as the ``family`` column (str) for a pooled fit
        (:mod:`bayescale.families`). For a :class:`Runs` source, its ``family`` column (or, for
        ``group_by="group"``, its ``group`` column) is used.
    drop_top_loss : int, default 0
        Drop the ``K`` highest-loss rows (Besiroglu et al. 2024 drop 5 on the Chinchilla data).
        Ties are broken by row order.
    max_loss, min_loss : float, optional
        Keep rows with ``min_loss <= loss <= max_loss``.
    min_flops, max_flops : float, optional
        Keep rows with ``min_flops <= C <= max_flops``.
    min_params, max_params : float, optional
        Keep rows with ``min_params <= N <= max_params``.
    n_params_required : int, default 0
        Number of parameters of the law to be fitted; fewer runs than this (after filters) is an
        error.
    variables : tuple of str, default ("N", "D")
        Inputs the law depends on; ``N`` and ``D`` among them must take at least two distinct
        values after filters (``("N",)`` for a parameter-only law, ``()`` to skip the check).
        ``"U"`` makes the unique-token column required.
    best_of_sweep : bool, default False
        Keep only the lowest-loss run of each (``N``, ``D``) (within each ``group``, ``family``
        and ``U`` when present): the usual reading of a learning-rate or hyperparameter sweep,
        where the tuned run is the one the law describes. Ties keep the first row.
    drop_duplicates : bool, default False
        Drop exact repeats of (``N``, ``D``, ``loss``), keeping the first row.
    metric : str, optional
        The column that is the loss (the same as ``mapping={"loss": metric}``).
    metrics : str or sequence of str, optional
        Several metrics of the same runs: column names or glob patterns (``"loss_*"``) matched
        against the source's columns (:func:`match_metrics`). Several columns give a long-form
        table, one row per run and metric: each metric's rows are read as with ``metric=`` (and
        filtered on their own: ``drop_top_loss`` drops each metric's highest losses), run ids
        become ``<run>/<metric>`` and the ``family`` column holds the metric's name, so
        ``group_by="metric"`` pools the metrics (:func:`bayescale.fit`). ``provenance["metrics"]``
        lists them. One matched column is the same as ``metric=``. Not with ``group_by``.

    Returns
    -------
    Runs
        The canonical table and its provenance. The two sweep options are recorded like filters
        (``provenance["filters"]``, ``provenance["dropped"]``) and the run ids they dropped in
        ``provenance["dropped_runs"]``.

    Raises
    ------
    InputError
        For an unreadable or empty source, a missing or ambiguous column, a non-numeric,
        missing, non-finite, zero or negative value, duplicate runs (same ``N``, ``D`` and
        ``loss``, unless ``drop_duplicates`` or ``best_of_sweep``; same ``N`` and ``D`` with
        different losses are repeated seeds and allowed), bad
        filter values, no runs left, too few runs, or a law that the runs cannot identify.

    Notes
    -----
    ``drop_duplicates`` then ``best_of_sweep`` apply first, to the whole table; then the
    filters, in this order: ``group``, ``drop_top_loss``, ``min/max_params``,
    ``min/max_flops``, ``min/max_loss``. Bounds are inclusive. ``drop_top_loss`` comes before the
    range filters so that it removes the same outliers whatever range is then selected. The run
    count and identifiability are checked after the filters; every value is checked before.

    When only ``C`` is present, ``D = C / (6 N)``; when only ``D`` is present, ``C = 6 N D``
    (Kaplan et al. 2020, Sec. 2.1). When both are present both are kept as given, and the median
    of ``C / (6 N D)`` is recorded in ``provenance["c_over_6nd"]``.

    References
    ----------
    Besiroglu et al. (2024), arXiv:2404.10102, Sec. 2 (the five dropped points).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Model Size": [1e8, 4e8, 1e9, 1e9],
    ...                    "Training FLOP": [1e18, 1e18, 1e19, 3e19],
    ...                    "val_loss": [3.2, 3.0, 2.7, 2.6]})
    >>> runs = load_runs(df, drop_top_loss=1)
    >>> len(runs), runs.provenance["mapping"], runs.provenance["derived"]
    (3, {'N': 'Model Size', 'C': 'Training FLOP', 'loss': 'val_loss'}, {'D': 'C/(6N)'})
    """
    options = _check_options(
        drop_top_loss=drop_top_loss,
        max_loss=max_loss,
        min_loss=min_loss,
        min_flops=min_flops,
        max_flops=max_flops,
        min_params=min_params,
        max_params=max_params,
        n_params_required=n_params_required,
        variables=variables,
    )
    sweep = _check_sweep_options(best_of_sweep=best_of_sweep, drop_duplicates=drop_duplicates)
    if metric is not None or metrics is not None:
        return _load_metrics(
            source, metric=metric, metrics=metrics, mapping=mapping, group=group,
            group_by=group_by, n_params_required=n_params_required, variables=variables,
            **options, **sweep,
        )
    if isinstance(source, Runs):
        if mapping is not None:
            raise InputError("mapping does not apply to a Runs source; its columns are canonical")
        frame = source.frame.reset_index(drop=True)
        prov = copy.deepcopy(source.provenance)
        if group_by is not None and "family" not in frame:
            if group_by != "group" or "group" not in frame:
                raise InputError(
                    f"group_by={group_by!r}: this Runs table has no family column (columns: "
                    f"{_list(frame.columns)}); load the source file with group_by instead"
                )
            frame = frame.assign(family=frame["group"])
            prov["group_by"] = "group"
    else:
        raw, prov = _read(source)
        frame, prov = _canonical(
            raw, mapping, prov, variables=variables, check_duplicates=not any(sweep.values())
        )
        if group_by is not None:
            frame = _family_column(raw, frame, group_by)
            prov["group_by"] = str(group_by)
    frame, prov = _sweep_filters(frame, prov, **sweep)
    frame, prov = _apply_filters(frame, prov, group=group, **options)
    frame = validate(frame, n_params_required=n_params_required, variables=variables).reset_index(
        drop=True
    )
    prov["n_rows"] = len(frame)
    prov["sha256"] = sha256_frame(frame)
    return Runs(frame=frame, provenance=prov)


def match_metrics(columns, patterns) -> list[str]:
    """The columns named by ``patterns`` (names or glob patterns), in the table's order.

    Parameters
    ----------
    columns : sequence of str
        The table's column names.
    patterns : str or sequence of str
        Column names or :mod:`fnmatch` patterns (``*``, ``?``, ``[seq]``; case-sensitive).

    Returns
    -------
    list of str
        Every matched column once, in the order of ``columns``.

    Raises
    ------
    InputError
        For no pattern, or a pattern that matches no column (the message lists the columns).

    Examples
    --------
    >>> match_metrics(["N", "D", "loss_c4", "loss_ptb", "acc_arc"], ["loss_*"])
    ['loss_c4', 'loss_ptb']
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise InputError(
            f"metrics must be column names or glob patterns such as 'loss_*'; got {patterns!r}"
        )
    columns = [str(c) for c in columns]
    chosen = set()
    for pattern in patterns:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise InputError(
                f"metric {pattern!r} matches no column of the runs table; columns: "
                f"{_list(columns, limit=80)}"
            )
        chosen.update(hits)
    return [c for c in columns if c in chosen]


def _load_metrics(source, *, metric, metrics, mapping, group_by, **kwargs) -> Runs:
    """``load_runs`` with ``metric=`` or ``metrics=``: one loss column, or a long-form table."""
    if metric is not None and metrics is not None:
        raise InputError("give metric= (one column) or metrics= (several), not both")
    if isinstance(source, Runs):
        raise InputError(
            "metric/metrics choose columns of the source table; a Runs table has only its loss "
            "(load the source file or frame with metrics= instead)"
        )
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise InputError(f"metric must be a column name; got {metric!r}")
    given = dict(mapping or {})
    loss_key = next((k for k in given if isinstance(k, str) and _norm(k) == "loss"), None)
    if loss_key is not None:
        raise InputError(
            f"mapping sets loss={given[loss_key]!r} and metric/metrics choose the loss column "
            "too; give one of them"
        )
    raw, _ = _read(source)
    columns = match_metrics(raw.columns, [metric] if metric is not None else metrics)
    if len(columns) == 1:
        return load_runs(source, mapping={**given, "loss": columns[0]}, group_by=group_by,
                         **kwargs)
    if group_by is not None:
        raise InputError(
            f"metrics= makes the metrics the families (group_by={METRIC!r}); group_by="
            f"{group_by!r} cannot be added (keep one {group_by} with group=... instead)"
        )
    parts = [load_runs(source, mapping={**given, "loss": c}, **kwargs) for c in columns]
    frames = []
    for c, part in zip(columns, parts, strict=True):
        f = part.frame.copy()
        f["run"] = f["run"].astype(str) + "/" + c
        f["family"] = c
        frames.append(f)
    frame = pd.concat(frames, ignore_index=True)
    first = parts[0].provenance
    prov = copy.deepcopy(first)
    prov["mapping"] = {**first["mapping"], "loss": list(columns)}
    prov["explicit"] = sorted(set(first["explicit"]) | {"loss"}, key=CANONICAL.index)
    prov["metrics"] = list(columns)
    prov["group_by"] = METRIC
    prov["n_rows_in"] = sum(p.provenance["n_rows_in"] for p in parts)
    prov["dropped"] = {
        k: sum(p.provenance["dropped"].get(k, 0) for p in parts) for k in first["dropped"]
    }
    prov["metric_rows"] = {c: len(p) for c, p in zip(columns, parts, strict=True)}
    for key in ("dropped_runs",):
        if key in first:
            prov[key] = {
                k: [r + "/" + c for c, p in zip(columns, parts, strict=True)
                    for r in p.provenance[key].get(k, [])]
                for k in first[key]
            }
    prov["n_rows"] = len(frame)
    prov["sha256"] = sha256_frame(frame)
    return Runs(frame=frame, provenance=prov)


def validate(frame, *, n_params_required=0, variables=("N", "D")) -> pd.DataFrame:
    """Check a canonical runs frame and return a clean copy.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``N``, ``D``, ``C``, ``loss`` (numbers or numeric strings), optionally ``run``
        and ``group``. Rows are named in messages by ``index + 1`` when the index holds integers
        (so a frame read from a file with its default index names its data rows), else by
        position ``+ 1``.
    n_params_required : int, default 0
        Number of parameters of the law; fewer rows is an error.
    variables : tuple of str, default ("N", "D")
        Columns that must take at least two distinct values (``N``, ``D``); ``"U"`` requires the
        optional unique-token column ``U`` (checked positive and ``<= D`` whenever present).

    Returns
    -------
    pandas.DataFrame
        A new frame with the canonical columns present in ``frame`` (numeric ones as float64,
        ``run`` and ``group`` as str), same index.

    Raises
    ------
    InputError
        With a one-line message naming the rows, the column and what was expected.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"N": [1e8, 1e9], "D": [2e9, 2e10], "C": [1.2e18, 1.2e20],
    ...                    "loss": [3.0, -1.0]})
    >>> validate(df)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescale.errors.InputError: zero or negative value in column 'loss' at row 2 (-1); ...
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of runs; got {type(frame).__name__}")
    if len(frame) == 0:
        raise InputError("no runs: the table has no rows")
    cols = [str(c) for c in frame.columns]
    for canon in NUMERIC:
        if canon not in cols:
            raise InputError(
                f"missing column '{canon}' in the runs frame (columns found: {_list(cols)}); "
                "expected canonical columns N, D, C, loss"
            )
    rows = _row_numbers(frame)
    out = {}
    for canon in NUMERIC:
        out[canon] = _numeric(frame[canon], canon, canon, rows)
    for canon in OPTIONAL_NUMERIC:
        if canon in cols:
            out[canon] = _numeric(frame[canon], canon, canon, rows)
        elif canon in variables:
            raise InputError(
                f"missing column '{canon}' in the runs frame (columns found: {_list(cols)}); "
                f"the law needs it (aliases: {', '.join(ALIASES[canon])})"
            )
    for canon in ("run", "group", "family"):
        if canon in cols:
            out[canon] = _labels(frame[canon], canon, canon, rows, allow_missing=False)
    clean = pd.DataFrame(out, index=frame.index)
    _check_unique_tokens(clean, rows, "U")
    _check_duplicates(clean, rows)
    if "run" in clean and clean["run"].duplicated().any():
        dup = clean["run"].duplicated(keep=False).to_numpy()
        raise InputError(
            f"duplicate run ids in column 'run' at {_rows_phrase(rows[dup], clean['run'][dup])}; "
            "expected one id per run"
        )
    _check_counts(clean, n_params_required=n_params_required, variables=variables)
    return clean


def parse_mapping(items) -> dict:
    """Parse ``CANONICAL=COLUMN`` items (the CLI's ``--map``) into a mapping.

    Parameters
    ----------
    items : list of str
        Items such as ``"N=params_total"``; the canonical name is matched case-insensitively and
        the column name is kept exactly as written after the first ``=``.

    Returns
    -------
    dict
        ``{canonical: column}``.

    Raises
    ------
    InputError
        For an item without ``=``, an unknown canonical name, an empty column or a repeated
        canonical name.

    Examples
    --------
    >>> parse_mapping(["N=params_total", "loss=val loss"])
    {'N': 'params_total', 'loss': 'val loss'}
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise InputError(
            f"mapping items must be a list of 'CANONICAL=COLUMN' strings; got {items!r}"
        )
    out = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise InputError(
                f"bad mapping item {item!r}: expected CANONICAL=COLUMN, e.g. loss=val_loss"
            )
        key, column = item.split("=", 1)
        canon = _canonical_key(key.strip())
        if column == "":
            raise InputError(f"bad mapping item {item!r}: the column name after '=' is empty")
        if canon in out:
            raise InputError(
                f"mapping names '{canon}' twice ({out[canon]!r} and {column!r}); give it once"
            )
        out[canon] = column
    return out


def sha256_frame(frame) -> str:
    """SHA-256 of a frame's columns and values, independent of its index.

    Numbers are hashed as little-endian float64 (integers as int64) and text as UTF-8, each
    column prefixed by its name and kind, so equal canonical frames hash equally however they
    were read.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any frame; :class:`Runs` frames are canonical.

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"N": [1e8, 1e9]})
    >>> sha256_frame(a) == sha256_frame(a.set_index(pd.Index([5, 7])))
    True
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame; got {type(frame).__name__}")
    h = hashlib.sha256()
    h.update(f"rows={len(frame)}\0".encode())
    for name in frame.columns:
        col = frame[name]
        kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else "O"
        if kind == "f":
            data = np.ascontiguousarray(col.to_numpy(), dtype="<f8").tobytes()
        elif kind in "iub":
            data = np.ascontiguousarray(col.to_numpy(), dtype="<i8").tobytes()
        else:
            kind = "O"
            data = "\0".join("\x01" if pd.isna(v) else str(v) for v in col.tolist()).encode()
        h.update(f"{name}\0{kind}\0".encode())
        h.update(data)
        h.update(b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Reading and recognising
# --------------------------------------------------------------------------------------------


def read_raw(source) -> pd.DataFrame:
    """A runs table as it is, every column kept (CSV and TSV as text, Parquet as stored).

    Parameters
    ----------
    source : str, pathlib.Path or pandas.DataFrame
        A ``.csv``, ``.tsv``/``.tab`` or ``.parquet``/``.pq`` file, or a frame (reindexed).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        For a missing or unreadable file, an unsupported type, repeated column names or no rows.
    """
    return _read(source)[0]


def _read(source) -> tuple[pd.DataFrame, dict]:
    """Read a source into a raw frame (index 0..n-1) and start its provenance."""
    if isinstance(source, pd.DataFrame):
        raw = source.reset_index(drop=True)
        prov = {"source": "DataFrame", "format": "DataFrame"}
    elif isinstance(source, (str, Path)):
        path = Path(source)
        fmt = _SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise InputError(
                f"cannot read {str(path)!r}: unsupported file type {path.suffix!r}; "
                f"accepted: {_ACCEPTED}"
            )
        if not path.is_file():
            raise InputError(f"file not found: {str(path)!r}")
        raw = _read_file(path, fmt)
        prov = {"source": str(path.resolve()), "format": fmt}
    else:
        raise InputError(f"cannot read runs from a {type(source).__name__}; accepted: {_ACCEPTED}")
    names = [str(c) for c in raw.columns]
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"repeated column names {_list(dups)}; give each column a unique name")
    raw = raw.set_axis(names, axis=1)
    if len(raw) == 0:
        raise InputError(f"no runs: {prov['source']} has a header but no rows")
    return raw, prov


def _read_file(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        try:
            return pd.read_parquet(path)
        except (ValueError, OSError) as exc:
            raise InputError(f"cannot read {str(path)!r} as Parquet: {_one_line(exc)}") from None
    try:
        return pd.read_csv(
            path,
            sep="," if fmt == "csv" else "\t",
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise InputError(f"empty file: {str(path)!r} has no header and no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        kind = "CSV" if fmt == "csv" else "TSV"
        raise InputError(f"cannot parse {str(path)!r} as {kind}: {_one_line(exc)}") from None


def _canonical_key(key) -> str:
    canon = _CANON_KEY.get(_norm(key)) if isinstance(key, str) else None
    if canon is None:
        raise InputError(
            f"unknown canonical column {key!r} in mapping; valid: {', '.join(CANONICAL)}"
        )
    return canon


def _check_mapping(mapping, columns: list[str]) -> dict:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise InputError(
            f"mapping must be a dict {{canonical: column}}; got {type(mapping).__name__}"
        )
    out = {}
    for key, column in mapping.items():
        canon = _canonical_key(key)
        if canon in out:
            raise InputError(f"mapping names '{canon}' twice; give it once")
        if not isinstance(column, str) or column not in columns:
            raise InputError(
                f"mapped column {column!r} for '{canon}' not found; "
                f"available columns: {_list(columns)}"
            )
        out[canon] = column
    taken = {}
    for canon, column in out.items():
        if column in taken:
            raise InputError(
                f"mapping uses column {column!r} for both '{taken[column]}' and '{canon}'"
            )
        taken[column] = canon
    return out


def _recognise(columns: list[str], explicit: dict) -> tuple[dict, dict]:
    """Return ``({canonical: column}, {canonical: [alternative columns]})``."""
    chosen = dict(explicit)
    used = set(explicit.values())
    for canon in CANONICAL:
        if canon in chosen:
            continue
        ranks = _RANK[canon]
        cands = [(ranks[_norm(c)], c) for c in columns if c not in used and _norm(c) in ranks]
        if not cands:
            continue
        best = min(r for r, _ in cands)
        top = [c for r, c in cands if r == best]
        if len(top) > 1:
            raise InputError(
                f"ambiguous column for '{canon}': {_list(top)} all match; pass "
                f"mapping={{'{canon}': COLUMN}} (CLI: --map {canon}=COLUMN)"
            )
        chosen[canon] = top[0]
        used.add(top[0])
    alternatives = {}
    for canon in NUMERIC:
        if canon not in chosen:
            continue
        alts = [c for c in columns if c not in used and _looks_like(c, canon)]
        if alts:
            alternatives[canon] = alts
    if "group" not in chosen:
        alts = [c for c in columns if c not in used and _looks_like(c, "group")]
        if alts:
            alternatives["group"] = alts
    return chosen, alternatives


def _looks_like(column: str, canon: str) -> bool:
    """Whether a column name matches an alias of ``canon`` or contains one of its stems."""
    norm = _norm(column)
    return norm in _RANK[canon] or any(stem in norm for stem in _LOOKS_LIKE[canon])


def _missing(canon: str, columns: list[str], used: set) -> str:
    """One-line message for a required column that was not recognised."""
    if canon == "DC":
        expected = (
            f"expected one of {', '.join(ALIASES['D'])} for D "
            f"or one of {', '.join(ALIASES['C'])} for C"
        )
        looks = [
            c for c in columns if c not in used and (_looks_like(c, "D") or _looks_like(c, "C"))
        ]
        what, key = "'D' or 'C'", "C" if looks and _looks_like(looks[0], "C") else "D"
        generic = "pass --map D=COLUMN or --map C=COLUMN"
    else:
        expected = f"expected one of: {', '.join(ALIASES[canon])}"
        looks = [c for c in columns if c not in used and _looks_like(c, canon)]
        what, key = f"'{canon}'", canon
        generic = f"pass --map {key}=COLUMN"
    hint = generic
    if looks:
        hint = f"columns that look like it: {_list(looks)}; {generic}"
        if len(looks) > 1:
            hint = f"{hint} to choose one (e.g. --map {key}={looks[0]})"
        else:
            hint = f"{hint} (e.g. --map {key}={looks[0]})"
    return f"missing column {what} ({expected}; columns found: {_list(columns)}; {hint})"


def _canonical(
    raw: pd.DataFrame, mapping, prov: dict, *, variables=(), check_duplicates=True
) -> tuple[pd.DataFrame, dict]:
    """Recognise columns, convert and check values, derive D or C; index keeps raw positions."""
    columns = list(raw.columns)
    explicit = _check_mapping(mapping, columns)
    chosen, alternatives = _recognise(columns, explicit)
    used = set(chosen.values())
    if "N" not in chosen:
        raise InputError(_missing("N", columns, used))
    if "D" not in chosen and "C" not in chosen:
        # a unique-token column is the likeliest stand-in for D: suggest it
        raise InputError(_missing("DC", columns, used - {chosen.get("U")}))
    if "loss" not in chosen:
        raise InputError(_missing("loss", columns, used))
    for canon in OPTIONAL_NUMERIC:
        if canon in variables and canon not in chosen:
            raise InputError(_missing(canon, columns, used) + "; the law needs it")

    rows = _row_numbers(raw)
    values = {c: _numeric(raw[chosen[c]], c, chosen[c], rows) for c in NUMERIC if c in chosen}
    derived = {}
    if "D" not in values:
        values["D"] = values["C"] / (FLOPS_PER_PARAM_TOKEN * values["N"])
        derived["D"] = "C/(6N)"
    elif "C" not in values:
        values["C"] = FLOPS_PER_PARAM_TOKEN * values["N"] * values["D"]
        derived["C"] = "6ND"
    else:
        ratio = values["C"] / (FLOPS_PER_PARAM_TOKEN * values["N"] * values["D"])
        prov["c_over_6nd"] = {
            "median": float(np.median(ratio)),
            "min": float(np.min(ratio)),
            "max": float(np.max(ratio)),
        }
    frame = pd.DataFrame({c: values[c] for c in NUMERIC}, index=raw.index)
    for canon in OPTIONAL_NUMERIC:
        if canon in chosen:
            frame[canon] = _numeric(raw[chosen[canon]], canon, chosen[canon], rows)
    _check_unique_tokens(frame, rows, chosen.get("U", "U"))

    run_note = None
    if "run" in chosen:
        run = _labels(raw[chosen["run"]], "run", chosen["run"], rows, allow_missing=True)
        if run.isna().any():
            run = run.where(run.notna(), pd.Series([f"row{r}" for r in rows], index=run.index))
            run_note = "missing run ids replaced by row<k> (k = data row)"
        if run.duplicated().any():
            dup = run.duplicated(keep=False)
            count = run[dup].groupby(run[dup]).cumcount() + 1
            run = run.where(~dup, run + "#" + count.astype(str))
            note = "repeated run ids made unique by appending #k (k-th occurrence)"
            run_note = note if run_note is None else f"{run_note}; {note}"
            if run.duplicated().any():
                raise InputError(
                    f"run ids in column {chosen['run']!r} stay repeated after appending #k; "
                    "rename them or map run to another column"
                )
    else:
        run = pd.Series([f"row{r}" for r in rows], index=raw.index, dtype="str")
        run_note = "run ids are row<k> (k = data row); the source has no run column"
    frame["run"] = run.astype("str")
    if "group" in chosen:
        frame["group"] = _labels(
            raw[chosen["group"]], "group", chosen["group"], rows, allow_missing=False
        )

    if check_duplicates:
        _check_duplicates(frame, rows)
    prov.update(
        mapping={c: chosen[c] for c in CANONICAL if c in chosen},
        explicit=[c for c in CANONICAL if c in explicit],
        alternatives=alternatives,
        derived=derived,
        filters={},
        dropped={},
        n_rows_in=len(frame),
    )
    if run_note is not None:
        prov["run_ids"] = run_note
    return frame, prov


def _family_column(raw: pd.DataFrame, frame: pd.DataFrame, column) -> pd.DataFrame:
    """Add the source column ``column`` to ``frame`` as the ``family`` label (``group_by``)."""
    columns = [str(c) for c in raw.columns]
    if str(column) not in columns:
        raise InputError(
            f"group_by column {column!r} is not in the runs table; available columns: "
            f"{_list(columns, limit=40)}"
        )
    series = raw[raw.columns[columns.index(str(column))]]
    rows = _row_numbers(raw)
    labels = _labels(series, "family", str(column), rows, allow_missing=False)
    return frame.assign(family=labels.loc[frame.index])


# --------------------------------------------------------------------------------------------
# Values and checks
# --------------------------------------------------------------------------------------------


def _row_numbers(frame: pd.DataFrame) -> np.ndarray:
    index = frame.index
    if pd.api.types.is_integer_dtype(index.dtype):
        return np.asarray(index, dtype=np.int64) + 1
    return np.arange(1, len(frame) + 1)


def _col(canon: str, original: str) -> str:
    return f"'{original}'" if original == canon else f"'{original}' ({canon})"


def _show(value) -> str:
    if isinstance(value, str):
        if value.strip() == "":
            return "empty"
        return repr(value if len(value) <= 30 else value[:27] + "...")
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return str(float(value))
    if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
        return f"{float(value):g}"
    return repr(value) if value is not None else "empty"


def _rows_phrase(rows: np.ndarray, shown=None) -> str:
    """``rows 3 ('abc'), 7 ('x') and 4 more`` (at most five listed)."""
    rows = list(rows)
    shown = None if shown is None else list(shown)
    parts = []
    for i, r in enumerate(rows[:_MAX_LISTED]):
        parts.append(f"{r}" if shown is None else f"{r} ({_show(shown[i])})")
    text = ("row " if len(rows) == 1 else "rows ") + ", ".join(parts)
    if len(rows) > _MAX_LISTED:
        text += f" and {len(rows) - _MAX_LISTED} more"
    return text


def _parse_number(value) -> float | None:
    """A float, ``nan`` for a missing value, or None when the value is not a number."""
    if value is None or value is pd.NA:
        return math.nan
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return math.nan
        if "_" in text:
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _numeric(series: pd.Series, canon: str, original: str, rows: np.ndarray) -> np.ndarray:
    """Convert a column to positive finite float64 or raise a one-line InputError."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        values = series.to_numpy(dtype=np.float64)
        raw = values
    else:
        raw = series.to_numpy(dtype=object)
        parsed = [_parse_number(v) for v in raw]
        bad = np.array([p is None for p in parsed], dtype=bool)
        if bad.any():
            raise InputError(
                f"non-numeric value in column {_col(canon, original)} at "
                f"{_rows_phrase(rows[bad], raw[bad])}; expected a positive number"
            )
        values = np.array(parsed, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(
            f"missing or non-finite value in column {_col(canon, original)} at "
            f"{_rows_phrase(rows[bad], raw[bad])}; expected a finite positive number"
        )
    bad = values <= 0
    if bad.any():
        raise InputError(
            f"zero or negative value in column {_col(canon, original)} at "
            f"{_rows_phrase(rows[bad], values[bad])}; expected a positive number"
        )
    return values


def _labels(series, canon: str, original: str, rows: np.ndarray, *, allow_missing: bool):
    """Convert a label column to str; missing values stay missing if allowed, else raise."""
    missing = series.isna().to_numpy() | np.array(
        [isinstance(v, str) and v.strip() == "" for v in series.tolist()], dtype=bool
    )
    if missing.any() and not allow_missing:
        raise InputError(
            f"missing value in column {_col(canon, original)} at {_rows_phrase(rows[missing])}; "
            f"expected a {canon} label in every row"
        )
    text = pd.Series(
        [None if m else str(v) for v, m in zip(series.tolist(), missing, strict=True)],
        index=series.index,
        dtype="str",
    )
    return text


def _check_duplicates(frame: pd.DataFrame, rows: np.ndarray) -> None:
    key = frame[["N", "D", "loss"]]
    dup = key.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    first = {}
    parts = []
    for pos, tup in enumerate(key.itertuples(index=False, name=None)):
        if tup not in first:
            first[tup] = rows[pos]
        elif len(parts) < _MAX_LISTED:
            parts.append(f"{rows[pos]} (same as row {first[tup]})")
    n = int(dup.sum())
    text = ", ".join(parts) + (f" and {n - _MAX_LISTED} more" if n > _MAX_LISTED else "")
    raise InputError(
        f"duplicate runs (same N, D and loss) at {'row' if n == 1 else 'rows'} {text}; "
        "remove the repeated rows (repeated seeds must differ in loss), pass "
        "drop_duplicates=True (CLI --drop-duplicates) to drop exact repeats, or "
        "best_of_sweep=True (CLI --best-of-sweep) to keep the lowest-loss run per (N, D)"
    )


def _check_unique_tokens(frame: pd.DataFrame, rows: np.ndarray, original: str) -> None:
    """Unique tokens cannot exceed the tokens trained on (a relative 1e-9 allows rounding)."""
    if "U" not in frame:
        return
    u, d = frame["U"].to_numpy(), frame["D"].to_numpy()
    bad = u > d * (1 + 1e-9)
    if bad.any():
        idx = np.flatnonzero(bad)
        parts = [f"{rows[i]} (U {u[i]:g} > D {d[i]:g})" for i in idx[:_MAX_LISTED]]
        more = f" and {idx.size - _MAX_LISTED} more" if idx.size > _MAX_LISTED else ""
        raise InputError(
            f"unique tokens above training tokens in column {_col('U', original)} at "
            f"{'row' if idx.size == 1 else 'rows'} {', '.join(parts)}{more}; "
            "expected U <= D (D counts every epoch)"
        )


def _check_counts(frame: pd.DataFrame, *, n_params_required: int, variables) -> None:
    n = len(frame)
    if n < n_params_required:
        raise InputError(
            f"only {n} run{'s' if n != 1 else ''}, but the law has {n_params_required} "
            f"parameters; need at least {n_params_required} runs (loosen the filters or add runs)"
        )
    for var in variables:
        if var not in _DISTINCT:
            continue  # U: repeats at a single U identify the law
        values = np.unique(frame[var].to_numpy())
        if values.size < 2:
            raise InputError(
                f"the law is unidentifiable: all runs have {var}={values[0]:g}; "
                f"need at least 2 distinct {_DISTINCT[var]}"
            )


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------

_RANGES = (
    ("min_params", "N", np.greater_equal),
    ("max_params", "N", np.less_equal),
    ("min_flops", "C", np.greater_equal),
    ("max_flops", "C", np.less_equal),
    ("min_loss", "loss", np.greater_equal),
    ("max_loss", "loss", np.less_equal),
)


def _check_options(*, drop_top_loss, n_params_required, variables, **bounds) -> dict:
    for name, value in (("drop_top_loss", drop_top_loss), ("n_params_required", n_params_required)):
        if (
            isinstance(value, (bool, np.bool_))
            or not isinstance(value, (int, np.integer))
            or value < 0
        ):
            raise InputError(f"{name} must be a non-negative integer; got {value!r}")
    known = NUMERIC + OPTIONAL_NUMERIC
    if not isinstance(variables, (tuple, list)) or not all(v in known for v in variables):
        raise InputError(
            f"variables must be a tuple of column names from {', '.join(known)}; "
            f"got {variables!r}"
        )
    for name, value in bounds.items():
        if value is None:
            continue
        if (
            isinstance(value, (bool, np.bool_))
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise InputError(f"{name} must be a positive finite number; got {value!r}")
    for what in ("loss", "flops", "params"):
        lo, hi = bounds[f"min_{what}"], bounds[f"max_{what}"]
        if lo is not None and hi is not None and lo > hi:
            raise InputError(f"min_{what}={lo!r} is above max_{what}={hi!r}; nothing would remain")
    return {"drop_top_loss": int(drop_top_loss), **bounds}


def _check_sweep_options(**flags) -> dict:
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(f"{name} must be True or False; got {value!r}")
    return {name: bool(value) for name, value in flags.items()}


def _sweep_filters(frame: pd.DataFrame, prov: dict, *, best_of_sweep, drop_duplicates):
    """Drop exact (N, D, loss) repeats and/or keep the lowest-loss run per (N, D) cell."""
    steps = []
    if drop_duplicates:
        steps.append(("drop_duplicates", ["N", "D", "loss"]))
    if best_of_sweep:
        cell = [c for c in ("group", "family", "U") if c in frame] + ["N", "D"]
        steps.append(("best_of_sweep", cell))
    for name, key in steps:
        if name == "drop_duplicates":
            keep = ~frame.duplicated(subset=key, keep="first").to_numpy()
        else:
            order = np.argsort(frame["loss"].to_numpy(), kind="stable")
            best = ~frame.iloc[order].duplicated(subset=key, keep="first").to_numpy()
            keep = np.zeros(len(frame), dtype=bool)
            keep[order[best]] = True
        _record(prov, name, "per (" + ", ".join(key) + ")", int((~keep).sum()))
        prov.setdefault("dropped_runs", {})[name] = frame["run"][~keep].astype(str).tolist()
        frame = frame[keep]
    return frame, prov


def _record(prov: dict, name: str, value, dropped: int) -> None:
    """Record a filter in provenance; a repeated filter name gets a ``(2)``, ``(3)`` suffix."""
    filters = prov.setdefault("filters", {})
    counts = prov.setdefault("dropped", {})
    key, i = name, 2
    while key in filters:
        key, i = f"{name} ({i})", i + 1
    filters[key] = value
    counts[key] = int(dropped)


def _apply_filters(frame: pd.DataFrame, prov: dict, *, group, drop_top_loss, **bounds):
    if group is not None:
        if "group" not in frame:
            looks = prov.get("alternatives", {}).get("group", [])
            hint = f"columns that could hold groups: {_list(looks)}; " if looks else ""
            raise InputError(
                f"group={group!r} needs a group column, but none was found (recognised names: "
                f"{', '.join(ALIASES['group'])}); {hint}pass mapping={{'group': COLUMN}} "
                "(CLI: --map group=COLUMN)"
            )
        valid = sorted(frame["group"].unique().tolist())
        if str(group) not in valid:
            raise InputError(f"unknown group {group!r}; valid groups: {_list(valid)}")
        keep = (frame["group"] == str(group)).to_numpy()
        _record(prov, "group", str(group), int((~keep).sum()))
        frame = frame[keep]
    if drop_top_loss > 0:
        order = np.argsort(-frame["loss"].to_numpy(), kind="stable")
        keep = np.ones(len(frame), dtype=bool)
        keep[order[:drop_top_loss]] = False
        _record(prov, "drop_top_loss", drop_top_loss, int((~keep).sum()))
        frame = frame[keep]
    for name, column, op in _RANGES:
        value = bounds[name]
        if value is None:
            continue
        keep = op(frame[column].to_numpy(), value)
        _record(prov, name, float(value), int((~keep).sum()))
        frame = frame[keep]
    if len(frame) == 0:
        applied = ", ".join(f"{k}={v!r}" for k, v in prov["filters"].items())
        raise InputError(f"no runs left after the filters ({applied}); loosen them")
    return frame, prov


# --------------------------------------------------------------------------------------------
# Small text helpers
# --------------------------------------------------------------------------------------------


def _list(items, limit: int = 12) -> str:
    items = [str(i) for i in items]
    text = ", ".join(items[:limit])
    if len(items) > limit:
        text += f" and {len(items) - limit} more"
    return text or "none"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
