"""An accuracy fit's latent values at new runs, draw by draw, with step 1 carried for two-step.

Every accuracy law is ``acc = F + (c - F) sigmoid(z)`` (:mod:`bayescale.core.accuracy_laws`).
:func:`member_latent` evaluates ``z`` for every posterior draw at planned or held-out runs; the
forecasts of :mod:`bayescale.scoring.accuracy_forecast` and the answers of
:mod:`bayescale.answers.accuracy` start from it.

Two-step pairs draws
--------------------
The first step is a loss fit of the ``via`` column; the second, the accuracy fit on the runs'
observed ``via`` losses. The second conditions on the observed losses, not on the first step's
parameters, so the joint posterior is the product of the two, and pairing draw ``s`` of step 1
with draw ``s`` of step 2 (after flattening chains) is a draw from it. Per pair, ``L_s`` is the
loss law of step 1 at the query and ``L_s exp(sigma_s e_s)`` the loss of one new run; the law's
latent value reads ``L_s``, a new run's reads the new loss. When the fits hold different numbers of
draws, the larger is subsampled without replacement (seeded) to the smaller.

References
----------
Grattafiori, A. et al. (2024). The Llama 3 Herd of Models. arXiv:2407.21783, Sec. 3.2.1.
Bhagia, A. et al. (2024). arXiv:2412.04403.
"""

from __future__ import annotations

import numpy as np

from bayescale.core.likelihood import draw_noise
from bayescale.errors import InputError
from bayescale.fits import draws, read
from bayescale.fits.members import draw_allocation
from bayescale.scoring.forecast import fit_predictive

__all__ = ["PAIRING", "member_latent", "mixture_latent", "subsample"]

PAIRING = "draw s of the loss fit with draw s of the accuracy fit"


def subsample(rng, total: int, size: int) -> np.ndarray:
    """All draws in order when ``size == total``, else ``size`` of them without replacement."""
    if size == total:
        return np.arange(total)
    return np.sort(rng.choice(total, size=size, replace=False))


def _flat(fit, name) -> np.ndarray:
    return draws(fit, var_names=[name])[name]


def member_latent(fit, *, C=None, N=None, D=None, step1=None, loss=None, rng) -> dict:
    """Latent values ``z`` of an accuracy fit at new runs, per posterior draw.

    Parameters
    ----------
    fit : xarray.DataTree
        A single accuracy fit (:func:`bayescale.engines.accuracy.fit_accuracy`).
    C : numpy.ndarray, optional
        ``(Q,)`` compute of the new runs (direct law on ``log10 C``).
    N, D : numpy.ndarray, optional
        ``(Q,)`` parameters and tokens (the (N, D) law; step 1 of the two-step law).
    step1 : xarray.DataTree, optional
        Two-step law: a single-card loss fit of the ``via`` column, carried draw by draw.
    loss : numpy.ndarray, optional
        Two-step law, instead of ``step1``: known ``via`` losses of the new runs.
    rng : numpy.random.Generator
        Seeds step 1's noise and the pairing subsample.

    Returns
    -------
    dict
        ``z_law`` and ``z_new`` (S, Q) (equal for the direct laws), ``ceiling``, ``sigma`` (S,),
        ``floor``; two-step with ``step1``: ``via_law`` (S, Q), the law loss of step 1.

    Raises
    ------
    InputError
        For inputs the law cannot read.
    """
    view = read(fit)
    info = view.accuracy_info
    law = view.card.law_spec
    ceiling, mid, sigma = (_flat(fit, v) for v in ("ceiling", law.midpoint, "sigma"))
    slopes = [_flat(fit, v) for v in law.slopes]
    out = {"floor": float(info["floor"])}
    if law.input == "via":
        if (step1 is None) == (loss is None):
            raise InputError(
                f"the two-step law reads the {info['via']!r} loss: pass a loss fit of that column "
                "(carried draw by draw) or known losses, not both"
            )
        if step1 is not None:
            law_loss, new_loss = _step_one(step1, N=N, D=D, rng=rng)
            s = min(law_loss.shape[0], sigma.size)
            i1, i2 = subsample(rng, law_loss.shape[0], s), subsample(rng, sigma.size, s)
            law_loss, new_loss = law_loss[i1], new_loss[i1]
            ceiling, mid, sigma = ceiling[i2], mid[i2], sigma[i2]
            slopes = [v[i2] for v in slopes]
            out["via_law"] = law_loss
        else:
            law_loss = new_loss = np.repeat(np.asarray(loss, dtype=float)[None, :], sigma.size, 0)
        k = slopes[0][:, None]
        out["z_law"] = k * (mid[:, None] - law_loss)
        out["z_new"] = k * (mid[:, None] - new_loss)
    elif law.input == "log10_ND":
        if N is None or D is None:
            raise InputError(f"card {view.card.name!r} reads parameters and tokens: give N and D")
        z = (slopes[0][:, None] * np.log10(np.asarray(N, float))[None, :]
             + slopes[1][:, None] * np.log10(np.asarray(D, float))[None, :] - mid[:, None])
        out["z_law"] = out["z_new"] = z
    else:
        if C is None:
            raise InputError(f"card {view.card.name!r} reads compute: give C, or N and D")
        x = np.log10(np.asarray(C, dtype=float))[None, :]
        out["z_law"] = out["z_new"] = slopes[0][:, None] * (x - mid[:, None])
    out["ceiling"], out["sigma"] = ceiling, sigma
    return out


def _step_one(step1, *, N, D, rng):
    """Step 1's law loss and one new run's loss at ``(N, D)``, each ``(S1, Q)``."""
    view = read(step1)
    if view.is_mixture or view.is_pooled or view.is_accuracy:
        raise InputError(
            "step 1 of the two-step law is a single-card loss fit (bs.fit(runs, card=NAME)); law "
            "ensembles, pooled and accuracy fits are not supported"
        )
    if N is None or D is None:
        raise InputError("the two-step law's first step reads parameters and tokens: give N and D")
    N, D = np.broadcast_arrays(np.asarray(N, dtype=float), np.asarray(D, dtype=float))
    mu, sigma, nu, family = fit_predictive(step1, N.ravel(), D.ravel())
    eps = draw_noise(rng, (np.size(sigma),), family=family, nu=nu)
    law = np.exp(mu)
    # as bayescale.predict: clip at e^700 (Student-t draws with nu near 1)
    new = law * np.exp(np.minimum(np.asarray(sigma)[:, None] * eps[:, None], 700.0))
    return law, new


def mixture_latent(fit, *, C=None, N=None, D=None, loss_fit=None, loss=None, rng) -> dict:
    """:func:`member_latent` of every law of an accuracy fit, as draws of its weighted mixture.

    A single accuracy fit is its own mixture. A stacked fit
    (:mod:`bayescale.engines.accuracy_ensemble`) gives law ``k`` ``round(w_k S)`` of ``S`` draws
    (largest remainder, evenly spaced through its draws), ``S`` the fewest draws of a law; its
    two-step law reads the stored loss fit of ``via`` (``loss_fit`` or ``loss`` override it).

    Returns
    -------
    dict
        As :func:`member_latent`, concatenated over laws, plus ``law`` (S,) the index of the law
        each draw comes from.
    """
    view = read(fit)
    members = view.accuracy_members
    step1 = loss_fit if loss_fit is not None else (None if loss is not None else view.step_one)
    parts = []
    for m in members:
        two_step = read(m.tree).card.law_spec.input == "via"
        parts.append(member_latent(m.tree, C=C, N=N, D=D, rng=rng,
                                   step1=step1 if two_step else None,
                                   loss=loss if two_step else None))
    if len(parts) == 1:
        return {**parts[0], "law": np.zeros(parts[0]["sigma"].size, dtype=int)}
    via_law = next((p["via_law"] for p in parts if "via_law" in p), None)
    total = min(p["sigma"].size for p in parts)
    counts = draw_allocation([m.weight for m in members], total)
    keys = ("z_law", "z_new", "ceiling", "sigma")
    out = {k: [] for k in (*keys, "law")}
    for k, (part, n) in enumerate(zip(parts, counts, strict=True)):
        if n == 0:
            continue
        idx = np.round(np.linspace(0, part["sigma"].size - 1, n)).astype(int)
        for key in keys:
            out[key].append(part[key][idx])
        out["law"].append(np.full(n, k))
    merged = {k: np.concatenate(v) for k, v in out.items()}
    merged["floor"] = parts[0]["floor"]
    if via_law is not None:
        merged["via_law"] = via_law
    return merged
