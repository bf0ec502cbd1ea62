"""Simulation-based calibration (SBC) of a model card: does the fit recover what the prior made?

For each simulation, parameters are drawn from the card's prior, a ladder of training runs is
simulated from the law and the card's noise model, the card is fitted to it, and the rank of each
true value among the (thinned) posterior draws is recorded. When the model, the sampler and the
code are right, every rank is uniform on ``0..L`` (Talts et al. 2018); a histogram with a slope, a
hump or a U shape points at a biased, over- or under-dispersed posterior.

Ladders with absurd losses (any loss above ``max_loss`` nats, non-finite or zero) are rejected and
redrawn, as is standard practice. The rejection looks at the simulated data only, so each accepted
dataset keeps its exact posterior under the card's (untruncated) prior: ranks stay uniform, but the
parameters checked are those of realistic ladders (the prior restricted to them), and the result
records how many ladders were rejected.

References
----------
Talts, S., Betancourt, M., Simpson, D., Vehtari, A. & Gelman, A. (2018). Validating Bayesian
inference algorithms with simulation-based calibration. arXiv:1804.06788.
Modrák, M. et al. (2023). Simulation-based calibration checking for Bayesian computation: the
choice of test quantities shapes sensitivity. Bayesian Analysis.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayescale.core.cards import Card, load_card
from bayescale.core.datasets import simulate
from bayescale.core.likelihood import draw_noise
from bayescale.core.progress import fit_progress
from bayescale.errors import InputError, SamplerWarning
from bayescale.workflows.fit import fit

MAX_REJECT_FACTOR = 50
"""Give up when more than this many ladders per requested simulation are rejected."""


def default_design(card=None) -> pd.DataFrame:
    """The default runs design of an SBC: an IsoFLOP ladder, or a repeated-data grid.

    For laws of ``N`` and ``D`` only (and without ``card``): a realistic IsoFLOP ladder, 5
    budgets (1e17 to 1e19 FLOPs) x 9 model sizes, the design of
    :func:`bayescale.core.datasets.simulate`: sizes log-spaced from ``N*/8`` to ``8 N*`` around the
    compute-optimal size of the default Chinchilla parameters, ``D = C / (6 N)``. For a card
    whose law also reads unique tokens ``U`` (``data-constrained``): :func:`repeat_design`.

    Parameters
    ----------
    card : str, Path or Card, optional
        Model card whose law decides the design; None gives the IsoFLOP ladder.

    Returns
    -------
    pandas.DataFrame
        Columns ``N`` and ``D`` (45 rows), plus ``U`` from :func:`repeat_design` for a law that
        reads it.

    Raises
    ------
    InputError
        For a card whose law reads an input other than ``N``, ``D`` and ``U``.

    References
    ----------
    Hoffmann et al. (2022), Sec. 3.2 (IsoFLOP profiles).

    Examples
    --------
    >>> d = default_design()
    >>> d.shape, list(d.columns)
    ((45, 2), ['N', 'D'])
    >>> list(default_design("data-constrained").columns)
    ['N', 'D', 'U']
    """
    if card is not None:
        extra = load_card(card).law_spec.extra_variables
        if extra == ("U",):
            return repeat_design()
        if extra:
            raise InputError(
                f"no default SBC design for a law that reads {', '.join(extra)}; pass design="
            )

    sim = simulate(sigma=0.0, random_seed=0)
    return pd.DataFrame({"N": sim["N"].to_numpy(), "D": sim["D"].to_numpy()})


REPEAT_SIZES = (5e7, 5e8, 5e9)
"""Model sizes of :func:`repeat_design` (parameters)."""
REPEAT_UNIQUE = (5e8, 5e9, 5e10)
"""Unique-token budgets of :func:`repeat_design`."""
REPEAT_EPOCHS = (1.0, 2.0, 4.0, 8.0, 16.0, 40.0)
"""Epochs over the unique tokens in :func:`repeat_design` (``D = epochs * U``)."""


def repeat_design(
    *, sizes=REPEAT_SIZES, unique_tokens=REPEAT_UNIQUE, epochs=REPEAT_EPOCHS
) -> pd.DataFrame:
    """A Datablations-like design: every model size on every unique-token budget and epoch count.

    Each run trains a model of ``N`` parameters on ``U`` unique tokens repeated ``epochs`` times,
    ``D = epochs * U``. Epochs from 1 (fresh data) to 40 span the decay of repeated tokens
    (``R_D*`` is order 10 epochs). Sizes and budgets each span two decades, so runs fall below
    and above the compute-optimal size of their unique tokens (about ``U / 20`` under
    Chinchilla's allocation), where excess parameters decay with ``R_N*``: both decay constants
    are identifiable. The default grid has 3 x 3 x 6 = 54 runs.

    Parameters
    ----------
    sizes : sequence of float, default ``REPEAT_SIZES``
        Model sizes ``N``.
    unique_tokens : sequence of float, default ``REPEAT_UNIQUE``
        Unique-token budgets ``U``.
    epochs : sequence of float, default ``REPEAT_EPOCHS``
        Epochs (``>= 1``).

    Returns
    -------
    pandas.DataFrame
        Columns ``N``, ``D``, ``U``; ordered by ``U``, then ``N``, then epochs.

    Raises
    ------
    InputError
        For an empty, non-positive or non-finite grid, or epochs below 1.

    References
    ----------
    Muennighoff, N. et al. (2023). Scaling Data-Constrained Language Models. arXiv:2305.16264
    (runs over unique-data budgets, model sizes and epochs).

    Examples
    --------
    >>> d = repeat_design()
    >>> d.shape, list(d.columns), float((d["D"] / d["U"]).max())
    ((54, 3), ['N', 'D', 'U'], 40.0)
    """
    grid = {}
    for name, values in (("sizes", sizes), ("unique_tokens", unique_tokens), ("epochs", epochs)):
        x = np.atleast_1d(np.asarray(values, dtype=float))
        if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x) & (x > 0)):
            raise InputError(f"{name} must be a non-empty sequence of positive finite numbers")
        grid[name] = x
    if np.any(grid["epochs"] < 1):
        raise InputError(f"epochs must be >= 1, got {grid['epochs'].tolist()}")
    u, n, k = np.meshgrid(grid["unique_tokens"], grid["sizes"], grid["epochs"], indexing="ij")
    return pd.DataFrame({"N": n.ravel(), "D": (k * u).ravel(), "U": u.ravel()})


_EXTRA_WORDS = {"U": "unique tokens, D / U epochs; see repeat_design()"}
"""How an error names each extra input of a law."""


def _check_design(design, extra=()) -> pd.DataFrame:
    """Design columns ``N``, ``D`` and the law's ``extra`` inputs (``U``) as float, checked."""
    want = ("N", "D", *extra)
    names = " and ".join([", ".join(want[:-1]), want[-1]])
    either = " or ".join([", ".join(want[:-1]), want[-1]])
    if not isinstance(design, pd.DataFrame):
        raise InputError(f"design must be a DataFrame with columns {names}, got {type(design)}")
    missing = [c for c in ("N", "D") if c not in design.columns]
    if missing:
        raise InputError(f"design lacks column(s) {', '.join(missing)}; expected columns {names}")
    for c in extra:
        if c not in design.columns:
            what = _EXTRA_WORDS.get(c, "an input of the law")
            raise InputError(
                f"design lacks column {c}, which the card's law reads ({what}); "
                f"expected columns {names}"
            )
    out = pd.DataFrame({c: design[c].to_numpy(dtype=float) for c in want})
    bad = np.flatnonzero(~(np.isfinite(out.to_numpy()) & (out.to_numpy() > 0)).all(axis=1))
    if bad.size:
        raise InputError(
            f"design rows {bad[:10].tolist()} have non-positive or non-finite "
            f"{either}; expected positive finite numbers"
        )
    if "U" in out:
        # the rounding allowance of bayescale.core.runs: U may exceed D by a relative 1e-9
        above = np.flatnonzero(out["U"].to_numpy() > out["D"].to_numpy() * (1 + 1e-9))
        if above.size:
            raise InputError(
                f"design rows {above[:10].tolist()} have unique tokens U above tokens D; "
                "expected U <= D (D counts every epoch)"
            )
    return out


def _draw_params(card: Card, rng: np.random.Generator, n: int, design=None) -> pd.DataFrame:
    """Prior draws with an explicit generator (see :func:`prior_draws`)."""
    law = card.law_spec
    amp_names = {a.name for a in law.amplitudes}
    out: dict[str, np.ndarray] = {}
    for name in card.free_params:
        if name not in amp_names:
            out[name] = card.priors[name].sample(rng, size=n)
    for name, other in card.tie.items():
        out[name] = out[other].copy()
    for amp in law.amplitudes:
        x = card.priors[amp.name].sample(rng, size=n)
        ref = card.prior_scale.get(amp.name)
        e = out[amp.exponent]
        if ref is not None:
            # the prior is on the amplitude's term at the reference input
            log_amp = amp.log_amplitude(np.log(x), e, np.log(ref))
        else:
            log_amp = np.log(x)
        out["log_" + amp.name] = log_amp
        with np.errstate(over="ignore"):
            out[amp.name] = np.exp(log_amp)
        if design is not None:
            lx0 = np.mean(np.log(design[amp.variable].to_numpy()))
            out[f"log_{amp.name}_pivot"] = amp.log_term(log_amp, e, lx0)
    for name in card.noise_param_names:
        out[name] = card.noise_priors[name].sample(rng, size=n)
    order = list(card.param_names) + [f"log_{a.name}" for a in law.amplitudes]
    order += [k for k in out if k.endswith("_pivot")] + list(card.noise_param_names)
    return pd.DataFrame({k: np.asarray(out[k], dtype=float).reshape(n) for k in order})


def prior_draws(card="chinchilla", *, n: int, random_seed=0, design=None) -> pd.DataFrame:
    """Draw law and noise parameters from a card's prior, in NumPy.

    Amplitudes with a ``prior_scale`` reference are drawn as their term at that reference and
    converted, ``log amp = amp.log_amplitude(log term, exponent, log x_ref)``, exactly as the
    model does; tied parameters copy their partner.

    Parameters
    ----------
    card : str, Path or Card, default "chinchilla"
        Model card.
    n : int
        Number of draws.
    random_seed : int or numpy.random.Generator, default 0
        Seed of all draws.
    design : pandas.DataFrame, optional
        Runs design (columns ``N``, ``D``; others, such as ``U``, are ignored); when given, the
        log term of each amplitude at the design's geometric-mean input (the model's pivot,
        ``log_<amp>_pivot``) is added.

    Returns
    -------
    pandas.DataFrame
        One row per draw; columns: every law parameter by natural name (tied ones included),
        ``log_<amp>`` for each amplitude, pivots if ``design`` was given, and ``sigma`` (and
        ``nu``).

    Raises
    ------
    InputError
        For a non-positive ``n`` or a bad design.

    Examples
    --------
    >>> d = prior_draws("chinchilla-tied", n=3, random_seed=1)
    >>> bool((d["alpha"] == d["beta"]).all()), list(d.columns)[:3]
    (True, ['E', 'A', 'B'])
    """
    card = load_card(card)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    if design is not None:
        design = _check_design(design)
    return _draw_params(card, np.random.default_rng(random_seed), int(n), design)


def simulate_runs(card, params: Mapping, design: pd.DataFrame, *, random_seed=0) -> pd.DataFrame:
    """Simulate one ladder of runs: the law at the design plus the card's noise on log loss.

    ``log loss = law.log_loss(N, D, params, U=U) + sigma * eps`` with ``eps`` standard Normal or
    Student-t with ``nu`` degrees of freedom, as in the card's likelihood. ``U`` (unique tokens)
    is read only by laws that take it (``data-constrained``).

    Parameters
    ----------
    card : str, Path or Card
        Model card (law and noise family).
    params : Mapping
        Law parameters (natural names or ``log_`` amplitudes) and ``sigma`` (and ``nu``), scalars;
        e.g. a row of :func:`prior_draws`.
    design : pandas.DataFrame
        Columns ``N`` and ``D``, and every extra input the card's law reads (``U``, with
        ``U <= D``; e.g. :func:`repeat_design`); other columns are ignored.
    random_seed : int or numpy.random.Generator, default 0
        Seed of the noise.

    Returns
    -------
    pandas.DataFrame
        Columns ``N``, ``D``, the law's extra inputs (``U``), ``loss`` (the loss may be
        non-finite for absurd parameters).

    Raises
    ------
    InputError
        For a bad design (a column the law reads missing, values not positive and finite,
        ``U > D``) or missing noise parameters.

    Examples
    --------
    >>> p = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37,
    ...      "sigma": 0.01, "nu": 30.0}
    >>> runs = simulate_runs("chinchilla", p, default_design(), random_seed=0)
    >>> runs.shape, bool(runs["loss"].between(2, 5).all())
    ((45, 3), True)
    """
    card = load_card(card)
    extra = card.law_spec.extra_variables
    design = _check_design(design, extra)
    missing = [k for k in card.noise_param_names if k not in params]
    if missing:
        raise InputError(
            f"params lack noise parameter(s) {', '.join(missing)} of card {card.name!r}"
        )
    rng = np.random.default_rng(random_seed)
    N, D = design["N"].to_numpy(), design["D"].to_numpy()
    inputs = {k: design[k].to_numpy() for k in extra}
    law_params = {k: float(v) for k, v in params.items() if k not in ("sigma", "nu")}
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        mu = card.law_spec.log_loss(N, D, law_params, **inputs)
        eps = draw_noise(rng, N.shape, family=card.family, nu=params.get("nu"))
        loss = np.exp(mu + float(params["sigma"]) * eps)
    return pd.DataFrame({"N": N, "D": D, **inputs, "loss": loss})


def _absurd(loss: np.ndarray, max_loss: float) -> bool:
    return bool(not np.all(np.isfinite(loss)) or np.any(loss > max_loss) or np.any(loss <= 0))


@dataclass(frozen=True)
class SBCResult:
    """Ranks of the true parameters among posterior draws over many simulated ladders.

    Attributes
    ----------
    card : str
        Card name.
    ranks : pandas.DataFrame
        Columns ``sim``, ``param``, ``rank`` (0..``n_ranks - 1``), ``n_ranks``.
    n_sims : int
        Accepted simulations (fitted and ranked).
    n_rejected : int
        Simulated ladders rejected as absurd (a loss above ``max_loss``, non-finite or zero).
    n_problem_fits : int
        Fits with sampler problems (R-hat, ESS, divergences or tree depth; see
        :mod:`bayescale.core.diagnostics`); they are kept, their warnings recorded in ``fits``.
    truth : pandas.DataFrame
        The true parameters of each accepted simulation (columns of :func:`prior_draws`).
    fits : pandas.DataFrame
        Per simulation: ``sim``, ``seed``, ``divergences``, ``max_rhat``, ``min_ess_bulk``,
        ``n_warnings``, ``warnings`` and ``seconds``.
    settings : dict
        Options of the run (draws, tune, chains, thin, max_loss, random_seed, design size).
    """

    card: str
    ranks: pd.DataFrame
    n_sims: int
    n_rejected: int
    n_problem_fits: int
    truth: pd.DataFrame = field(default_factory=pd.DataFrame)
    fits: pd.DataFrame = field(default_factory=pd.DataFrame)
    settings: dict = field(default_factory=dict)

    @property
    def params(self) -> list[str]:
        """Parameters ranked, in order."""
        return list(dict.fromkeys(self.ranks["param"]))

    def uniformity(self, *, bins: int | None = None) -> pd.DataFrame:
        """Test each parameter's ranks for uniformity: chi-square on binned ranks and KS.

        Parameters
        ----------
        bins : int, optional
            Histogram bins; the default gives at least about 5 expected counts per bin
            (``n_sims // 5``, between 2 and 20). Bins may hold unequal numbers of rank values;
            their expected counts account for it.

        Returns
        -------
        pandas.DataFrame
            Columns ``param``, ``chi2``, ``chi2_p``, ``ks``, ``ks_p``, ``mean_rank`` (normalised to
            [0, 1]; 0.5 when unbiased), ``n``. The KS test uses mid-ranks
            ``(rank + 0.5) / n_ranks``, slightly conservative for discrete ranks.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> r = pd.DataFrame({"sim": range(200), "param": "x",
        ...                   "rank": rng.integers(0, 100, 200), "n_ranks": 100})
        >>> res = SBCResult(card="demo", ranks=r, n_sims=200, n_rejected=0, n_problem_fits=0)
        >>> bool(res.uniformity(bins=10)["chi2_p"].iloc[0] > 0.01)
        True
        """
        from scipy import stats

        rows = []
        for param in self.params:
            sub = self.ranks[self.ranks["param"] == param]
            n = len(sub)
            k = bins if bins is not None else int(min(20, max(2, n // 5)))
            u = (sub["rank"].to_numpy() + 0.5) / sub["n_ranks"].to_numpy()
            observed = np.zeros(k)
            expected = np.zeros(k)
            rank, n_ranks = sub["rank"].to_numpy(), sub["n_ranks"].to_numpy()
            for L in np.unique(n_ranks):
                sel = n_ranks == L
                edges = np.floor(np.arange(k + 1) * L / k).astype(int)  # rank-value bin edges
                idx = np.searchsorted(edges, rank[sel], side="right") - 1
                observed += np.bincount(np.clip(idx, 0, k - 1), minlength=k)
                expected += sel.sum() * np.diff(edges) / L
            chi2 = float(np.sum((observed - expected) ** 2 / expected))
            ks = stats.kstest(u, "uniform")
            rows.append(
                {
                    "param": param,
                    "chi2": chi2,
                    "chi2_p": float(stats.chi2.sf(chi2, k - 1)),
                    "ks": float(ks.statistic),
                    "ks_p": float(ks.pvalue),
                    "mean_rank": float(np.mean(u)),
                    "n": n,
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        """JSON-ready summary: counts, settings, per-parameter uniformity tests and fit stats."""
        fits = self.fits
        return {
            "card": self.card,
            "n_sims": self.n_sims,
            "n_rejected": self.n_rejected,
            "n_problem_fits": self.n_problem_fits,
            "total_divergences": int(fits["divergences"].sum()) if len(fits) else 0,
            "n_warnings": int(fits["n_warnings"].sum()) if len(fits) else 0,
            "settings": dict(self.settings),
            "uniformity": self.uniformity().to_dict(orient="records"),
        }


def sbc(
    card="chinchilla",
    *,
    n_sims: int = 100,
    design: pd.DataFrame | None = None,
    draws: int = 400,
    tune: int = 400,
    chains: int = 2,
    thin: int = 4,
    random_seed: int = 0,
    max_loss: float = 20.0,
    progress=None,
) -> SBCResult:
    """Simulation-based calibration of a model card.

    For each simulation: draw parameters from the prior (:func:`prior_draws`), simulate a ladder
    (:func:`simulate_runs`), reject it and redraw if any loss is above ``max_loss`` nats,
    non-finite or zero, fit it with :func:`bayescale.fit` (compiled once, refitted by swapping
    data), and rank each true free law parameter, ``sigma`` (and ``nu``) among the thinned
    posterior draws. Amplitudes are ranked through their logs (the same rank).

    The rejection depends on the simulated losses only, so each accepted ladder's posterior is
    still the exact posterior under the card's prior and ranks remain uniform; what is checked is
    the prior restricted to realistic ladders (``n_rejected`` says how much was cut).
    Sampler warnings are recorded per simulation (they are data in SBC), not raised.

    Parameters
    ----------
    card : str, Path or Card, default "chinchilla"
        Model card.
    n_sims : int, default 100
        Accepted simulations.
    design : pandas.DataFrame, optional
        Columns ``N``, ``D`` and the law's extra inputs (``U`` for ``data-constrained``);
        default :func:`default_design` of the card (:func:`repeat_design` for a law that reads
        ``U``).
    draws, tune, chains : int
        Sampler settings of each fit.
    thin : int, default 4
        Keep every ``thin``-th draw of each chain for ranking (NUTS draws are autocorrelated,
        which would bend the rank histogram); ``n_ranks = chains * ceil(draws / thin) + 1``.
    random_seed : int, default 0
        Seed of all prior draws, noise and fits.
    max_loss : float, default 20.0
        Largest plausible loss in nats.
    progress : bool or callable, optional
        ``True`` draws one progress bar over the fits on a terminal's stderr
        (:func:`bayescale.core.progress.fit_progress`); a callable is called as
        ``progress(i, n_sims, seconds)`` after each fit (e.g. to log to stderr; a
        :class:`bayescale.core.progress.FitProgress` bar accepts this call too).

    Returns
    -------
    SBCResult

    Raises
    ------
    InputError
        For bad options, or when more than ``MAX_REJECT_FACTOR * n_sims`` ladders are rejected.

    References
    ----------
    Talts et al. (2018), arXiv:1804.06788.

    Examples
    --------
    >>> res = sbc("chinchilla", n_sims=2, draws=100, tune=100)  # doctest: +SKIP
    >>> res.uniformity()  # doctest: +SKIP
    """

    if isinstance(progress, bool):

        with fit_progress(
            n_sims if isinstance(n_sims, int) and n_sims >= 0 else 0,
            description="SBC fits", enabled=None if progress else False,
        ) as bar:
            return sbc(card, n_sims=n_sims, design=design, draws=draws, tune=tune, chains=chains,
                       thin=thin, random_seed=random_seed, max_loss=max_loss, progress=bar)
    card = load_card(card)
    for name, value in (
        ("n_sims", n_sims),
        ("draws", draws),
        ("tune", tune),
        ("chains", chains),
        ("thin", thin),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(max_loss, (int, float)) and math.isfinite(max_loss) and max_loss > 0):
        raise InputError(f"max_loss must be a positive finite number of nats, got {max_loss!r}")
    design = _check_design(
        default_design(card) if design is None else design, card.law_spec.extra_variables
    )
    law = card.law_spec
    amp_names = {a.name for a in law.amplitudes}
    ranked = list(card.free_params) + list(card.noise_param_names)
    post_name = {p: (f"log_{p}" if p in amp_names else p) for p in ranked}

    rng = np.random.default_rng(random_seed)
    rank_rows, truths, fit_rows = [], [], []
    n_rejected = n_problem = 0
    while len(truths) < n_sims:
        truth = _draw_params(card, rng, 1, design).iloc[0].to_dict()
        runs = simulate_runs(card, truth, design, random_seed=rng)
        if _absurd(runs["loss"].to_numpy(), max_loss):
            n_rejected += 1
            if n_rejected > MAX_REJECT_FACTOR * n_sims:
                raise InputError(
                    f"SBC of card {card.name!r}: {n_rejected} simulated ladders rejected for "
                    f"{len(truths)} accepted (losses above {max_loss} nats or non-finite); the "
                    "prior is too vague for this design"
                )
            continue
        sim = len(truths)
        seed = int(rng.integers(2**31 - 1))
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SamplerWarning)
            post = fit(
                runs,
                card=card,
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=seed,
                log_likelihood=False,
            )
        seconds = time.perf_counter() - t0
        sampler_msgs = []
        for w in caught:
            if issubclass(w.category, SamplerWarning):
                sampler_msgs.append(str(w.message))
            else:  # not ours to swallow
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        diag = json.loads(post.attrs["bayescale_diagnostics"])
        n_problem += int(not diag["ok"])
        posterior = post["posterior"]
        for p in ranked:
            x = posterior[post_name[p]].to_numpy()[:, ::thin].reshape(-1)
            rank_rows.append(
                {
                    "sim": sim,
                    "param": p,
                    "rank": int(np.sum(x < truth[post_name[p]])),
                    "n_ranks": x.size + 1,
                }
            )
        truths.append(truth)
        fit_rows.append(
            {
                "sim": sim,
                "seed": seed,
                "divergences": int(diag["divergences"]),
                "max_rhat": float(diag["max_rhat"]),
                "min_ess_bulk": float(diag["min_ess_bulk"]),
                "n_warnings": len(sampler_msgs),
                "warnings": " | ".join(sampler_msgs),
                "seconds": round(seconds, 3),
            }
        )
        if progress is not None:
            progress(sim + 1, n_sims, seconds)
    return SBCResult(
        card=card.name,
        ranks=pd.DataFrame(rank_rows, columns=["sim", "param", "rank", "n_ranks"]),
        n_sims=len(truths),
        n_rejected=n_rejected,
        n_problem_fits=n_problem,
        truth=pd.DataFrame(truths),
        fits=pd.DataFrame(fit_rows),
        settings={
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "thin": thin,
            "max_loss": max_loss,
            "random_seed": random_seed,
            "n_runs": len(design),
            "rejection": (
                f"ladders with any loss > {max_loss} nats, non-finite or zero were redrawn; "
                "the rule depends on the data only, so each posterior is exact and ranks stay "
                "uniform, but the parameters checked are the prior restricted to such ladders"
            ),
        },
    )


def plot_ranks(result: SBCResult, *, bins: int | None = None, prob: float = 0.99):
    """Rank histogram per parameter with the ``prob`` band of a uniform histogram.

    Parameters
    ----------
    result : SBCResult
        From :func:`sbc`.
    bins : int, optional
        Bins (default as in :meth:`SBCResult.uniformity`).
    prob : float, default 0.99
        Probability of the grey band: the central binomial interval of each bin's count under
        uniform ranks (pointwise, not simultaneous).

    Returns
    -------
    matplotlib.figure.Figure

    References
    ----------
    Talts et al. (2018), arXiv:1804.06788, Fig. 1.
    """
    from matplotlib.figure import Figure
    from scipy import stats

    params = result.params
    ncol = min(4, len(params))
    nrow = math.ceil(len(params) / ncol)
    fig = Figure(figsize=(3.2 * ncol, 2.6 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    tests = result.uniformity(bins=bins).set_index("param")
    for ax, param in zip(axes.ravel(), params, strict=False):
        sub = result.ranks[result.ranks["param"] == param]
        n = len(sub)
        k = bins if bins is not None else int(min(20, max(2, n // 5)))
        u = (sub["rank"].to_numpy() + 0.5) / sub["n_ranks"].to_numpy()
        lo, hi = stats.binom.interval(prob, n, 1.0 / k)
        ax.axhspan(lo, hi, color="0.85", zorder=0, label=f"{prob:.0%} band (uniform)")
        ax.axhline(n / k, color="0.5", lw=0.8, zorder=1)
        ax.hist(u, bins=np.linspace(0, 1, k + 1), color="C0", edgecolor="white", zorder=2)
        ax.set_title(f"{param}  (chi2 p={tests.loc[param, 'chi2_p']:.2g})", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_xlabel("normalised rank")
    for ax in axes.ravel()[len(params) :]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("simulations")
    fig.suptitle(
        f"SBC of card {result.card!r}: {result.n_sims} sims, {result.n_rejected} ladders rejected, "
        f"{result.n_problem_fits} fits with sampler problems",
        fontsize=10,
    )
    return fig
