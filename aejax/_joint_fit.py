"""The joint scaling law in d and τ: ``R(d, τ) = R∞ + A·d^(−α) + B·τ^(−β)`` (re-exported by ``aejax.scaling``).

The Chinchilla form ``L(N, D) = E + A·N^(−α) + B·D^(−β)`` for the trained risk at input dimension d and
training time τ. For fixed exponents the law is linear in ``(R∞, A, B)``, so it is solved in closed form
(weighted least squares, weights 1/se² from the seeds' scatter) on a grid of ``(α, β)``, refined around
the best cell: the exponents are searched, never started from a guess, and every bootstrap resample is
fitted the same way at once (vectorised over resamples). Intervals are percentiles of refits to seeds
resampled with replacement at every point.

A fit that cannot tell says so (``status``, the flags of ``aejax.scaling``'s fits): a term whose removal
does not worsen the fit significantly (a nested F-test) is ``not_identifiable`` and is left out (its
exponent and amplitude NaN, the rest refitted without it), an exponent at an end of the range searched is
``at_bound`` (its intervals void). An interaction ``E·d^(−α)·τ^(−β)`` is added only when the data demand it
(``interaction="auto"``: the nested F-test at ``INTERACTION_P``).

Examples:
    >>> import numpy as np
    >>> d, tau = (a.ravel() for a in np.meshgrid([64, 128, 256, 512], [125, 250, 500, 1000, 2000]))
    >>> fit = fit_joint(d, tau, 0.36 + 0.5 / d + 0.1 * tau**-0.6, bootstrap=0)
    >>> round(fit.r_inf, 6), round(fit.alpha, 3), round(fit.beta, 3), fit.status
    (0.36, 1.0, 0.6, 'ok')
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aejax import _validate

EXPONENT_RANGE = (1e-2, 10.0)  # both exponents are searched on this range (as ``aejax.scaling.ALPHA_RANGE``)
_GRID = 49  # log-spaced grid points per exponent for the estimate
_GRID_BOOTSTRAP = 25  # and for each resample (refined the same way)
_REFINE = 9  # points per exponent in each refinement around the best cell
_REFINEMENTS = 5
_BOUND_TOLERANCE = 0.01  # |log(estimate / bound)| below which an exponent sits at its bound
IDENTIFY_P = 0.01  # a term is identified when dropping it worsens the fit at this significance (F-test)
INTERACTION_P = 0.01  # the interaction is added when it improves the fit at this significance
_CHUNK = 64  # resamples fitted at once (bounds the (resamples × grid × grid × points) work arrays)
PARAMETERS = ("r_inf", "A", "alpha", "B", "beta", "E")
FLAGS = {
    "at_bound": "failure: an exponent sits at an end of the range searched, so it is not a minimum of the law",
    "bootstrap_at_bound": "failure: more resamples than the interval's tail put an exponent at an end of the range",
    "not_identifiable": "failure: a term of the law is too small for the data to determine; it was left out",
    "no_dof": "caution: no residual degrees of freedom, so the law's fit to the data cannot be checked",
    "misfit": "caution: χ² far above its degrees of freedom; the intervals (seeds only) leave out the law's error",
}
MISFIT_P = 1e-3  # χ² above its (1 − MISFIT_P) quantile raises the misfit caution


@dataclasses.dataclass(frozen=True)
class JointFit:
    """A fitted ``R(d, τ) = R∞ + A·d^(−α) + B·τ^(−β) [+ E·d^(−α)·τ^(−β)]``.

    Attributes:
        r_inf, A, alpha, B, beta, E: the estimates (a term left out has NaN amplitude and exponent;
            ``E`` is NaN without the interaction).
        ci: ``{name: (low, high)}`` percentile intervals at ``level`` (NaN when void or not estimated).
        n: points fitted (distinct (d, τ)).
        chi2_dof: weighted residual χ² per degree of freedom (NaN without freedom or weights).
        terms: the terms kept: a subset of ``("d", "time", "interaction")``.
        tests: the nested comparisons that chose them: ``{term: {"delta_chi2", "F", "p"}}``.
        status: ``"ok"`` or comma-separated flags (``FLAGS``); ``notes`` says why, one line per flag.
        method: how the fit and the intervals were made.
        level: the intervals' confidence level.
        draws: bootstrap estimates, one row per resample, columns ``PARAMETERS``.

    Examples:
        >>> d, tau = (a.ravel() for a in np.meshgrid([64, 128, 256, 512], [100, 200, 400, 800]))
        >>> fit = fit_joint(d, tau, 0.4 + 1 / d + 0.2 * tau**-0.5, bootstrap=0)
        >>> round(float(fit.predict(1e12, 1e12)), 5), fit.terms
        (0.4, ('d', 'time'))
    """

    r_inf: float
    A: float
    alpha: float
    B: float
    beta: float
    E: float
    ci: dict[str, tuple[float, float]]
    n: int
    chi2_dof: float
    terms: tuple[str, ...]
    tests: dict[str, dict[str, float]]
    status: str
    notes: tuple[str, ...]
    method: str
    level: float
    draws: np.ndarray = dataclasses.field(repr=False, compare=False)

    @property
    def failed(self) -> bool:
        """Whether a flag is a failure (``FLAGS``): the law as fitted is not an estimate of the limit."""
        return any(FLAGS.get(f, "").startswith("failure") for f in self.status.split(","))

    def predict(self, d: Any, tau: Any) -> np.ndarray:
        """The fitted surface at ``(d, τ)`` (broadcast); a term left out contributes 0."""
        d, tau = np.asarray(d, float), np.asarray(tau, float)
        return _surface(self.r_inf, self.A, self.alpha, self.B, self.beta, self.E, d, tau)

    def __str__(self) -> str:
        interaction = " + E·d^(−α)·τ^(−β)" if "interaction" in self.terms else ""
        lines = [f"R = R∞ + A·d^(−α) + B·τ^(−β){interaction}: {self.n} points, χ²/dof = {self.chi2_dof:.3g}"]
        for name in PARAMETERS:
            value = getattr(self, name)
            if np.isfinite(value):
                low, high = self.ci.get(name, (math.nan, math.nan))
                lines.append(f"  {name:5s} = {value:.6g} [{low:.6g}, {high:.6g}]")
        lines.append(f"  status: {self.status}" + "".join(f"\n    {note}" for note in self.notes))
        lines.append(f"  {self.level:.0%} intervals; {self.method}")
        return "\n".join(lines)


def _surface(*args: Any) -> np.ndarray:
    """``R∞ + A·d^(−α) + B·τ^(−β) + E·d^(−α)·τ^(−β)`` from ``(*PARAMETERS, d, tau)``; NaN amplitudes are 0."""
    r_inf, a, alpha, b, beta, e, d, tau = args

    def term(amp, x):
        return np.where(np.isfinite(amp), np.nan_to_num(amp) * x, 0.0)

    u = d ** -np.nan_to_num(alpha)
    v = tau ** -np.nan_to_num(beta)
    return r_inf + term(a, u) + term(b, v) + term(e, u * v)


# ------------------------------------------------------------------------------------- the vectorised solver

# A model is the list of its basis functions, each d^(−i·α)·τ^(−j·β) as the pair (i, j).
_MODELS = {
    (): [(0, 0)],
    ("d",): [(0, 0), (1, 0)],
    ("time",): [(0, 0), (0, 1)],
    ("d", "time"): [(0, 0), (1, 0), (0, 1)],
    ("d", "time", "interaction"): [(0, 0), (1, 0), (0, 1), (1, 1)],
}


class _Solver:
    """Weighted least squares of the law's linear part for many resamples and many (α, β) at once.

    ``ld``, ``lt``: log(d/d_min), log(τ/τ_min) of the points, so every basis function lies in (0, 1].
    """

    def __init__(self, d: np.ndarray, tau: np.ndarray, terms: tuple[str, ...], exponent_range: tuple[float, float]):
        self.d0, self.t0 = d.min(), tau.min()
        self.ld, self.lt = np.log(d / self.d0), np.log(tau / self.t0)
        self.terms = terms
        self.basis = _MODELS[terms]
        self.range = exponent_range
        self.searched = tuple(name for name, term in (("alpha", "d"), ("beta", "time")) if term in terms)

    def solve(self, ys: np.ndarray, w: np.ndarray, alphas: np.ndarray, betas: np.ndarray):
        """ys, w: (R, N); alphas: (R, A); betas: (R, B) → coefficients (R, A, B, p) and χ² (R, A, B)."""
        u = np.exp(-alphas[..., None] * self.ld)  # (R, A, N)
        v = np.exp(-betas[..., None] * self.lt)  # (R, B, N)
        shift = np.sum(w * ys, -1, keepdims=True) / np.maximum(np.sum(w, -1, keepdims=True), 1e-300)
        y = ys - shift  # centred: the constant absorbs the shift, and χ² keeps its precision

        def moment(i: int, j: int, k: int) -> np.ndarray:
            return np.einsum("rn,ran,rbn->rab", w * y**k, u**i, v**j, optimize=True)

        cache: dict[tuple[int, int, int], np.ndarray] = {}

        def m(i, j, k=0):
            if (i, j, k) not in cache:
                cache[(i, j, k)] = moment(i, j, k)
            return cache[(i, j, k)]

        p = len(self.basis)
        mat = np.stack([np.stack([m(a + c, b + e) for c, e in self.basis], -1) for a, b in self.basis], -2)
        rhs = np.stack([m(a, b, 1) for a, b in self.basis], -1)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            # a ridge of 1e-12 on the normalised matrix keeps degenerate cells (α or β → 0) solvable
            scale = np.sqrt(np.einsum("...ii->...i", mat))
            norm = mat / (scale[..., :, None] * scale[..., None, :])
            norm = norm + 1e-12 * np.eye(p)
            coef = np.linalg.solve(norm, (rhs / scale)[..., None])[..., 0] / scale
            chi2 = m(0, 0, 2) - np.sum(coef * rhs, -1)
        coef = coef.copy()
        coef[..., 0] += shift[:, :, None]  # undo the centring
        chi2 = np.where(np.isfinite(chi2), np.maximum(chi2, 0.0), np.inf)
        return coef, chi2

    def grid(self, rows: int, points: int, low=None, high=None) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.range
        low = np.full((rows, 2), lo) if low is None else low
        high = np.full((rows, 2), hi) if high is None else high
        alphas, betas = (np.geomspace(low[:, k], high[:, k], points, axis=1) for k in range(2))
        return (alphas if "alpha" in self.searched else alphas[:, :1]), (
            betas if "beta" in self.searched else betas[:, :1]
        )

    def _best(self, ys, w, alphas, betas):
        """The solve on a grid and, per row, the indices of its smallest χ²."""
        coef, chi2 = self.solve(ys, w, alphas, betas)
        ia, ib = np.unravel_index(chi2.reshape(chi2.shape[0], -1).argmin(1), chi2.shape[1:])
        return coef, chi2, ia, ib

    def fit(self, ys: np.ndarray, w: np.ndarray, points: int = _GRID) -> tuple[np.ndarray, np.ndarray]:
        """Best law for each row: returns (R, 6) estimates in ``PARAMETERS`` order and χ² (R,)."""
        rows = np.arange(ys.shape[0])
        alphas, betas = self.grid(len(rows), points)
        coef, chi2, ia, ib = self._best(ys, w, alphas, betas)
        for _ in range(_REFINEMENTS):
            low = np.stack([alphas[rows, np.maximum(ia - 1, 0)], betas[rows, np.maximum(ib - 1, 0)]], 1)
            high = np.stack(
                [
                    alphas[rows, np.minimum(ia + 1, alphas.shape[1] - 1)],
                    betas[rows, np.minimum(ib + 1, betas.shape[1] - 1)],
                ],
                1,
            )
            alphas, betas = self.grid(len(rows), _REFINE, low, high)
            coef, chi2, ia, ib = self._best(ys, w, alphas, betas)
        best_a, best_b = alphas[rows, ia], betas[rows, ib]
        c = coef[rows, ia, ib]
        out = np.full((len(rows), len(PARAMETERS)), np.nan)
        for k, (i, j) in enumerate(self.basis):
            column = {(0, 0): 0, (1, 0): 1, (0, 1): 3, (1, 1): 5}[(i, j)]
            # basis (d/d0)^(−α): A·d^(−α) = A'·d0^α·d^(−α)
            out[:, column] = c[:, k] * self.d0 ** (i * best_a) * self.t0 ** (j * best_b)
        if "d" in self.terms:
            out[:, 2] = best_a
        if "time" in self.terms:
            out[:, 4] = best_b
        best = chi2[rows, ia, ib]
        out[~np.isfinite(best)] = np.nan
        return out, best


# -------------------------------------------------------------------------------------------- the fit


def _point_stats(d, tau, ys, se):
    """Seed mean and standard error per point. The seeds' variance is smoothed across points as
    log var = c0 + c1·log d + c2·log τ (weighted by degrees of freedom, the mean bias of a log χ² removed):
    with 3 seeds the raw variances scatter by factors of several. A given ``se`` (Monte Carlo) is a floor."""
    from scipy.special import digamma

    finite = np.isfinite(ys)
    m = finite.sum(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(ys, 0)
        var = np.nanvar(ys, 0, ddof=1) if ys.shape[0] >= 2 else np.full(mean.shape, np.nan)
        mc = None if se is None else np.sqrt(np.nanmean(np.where(finite, se, np.nan) ** 2, 0) / np.maximum(m, 1))
    usable = (m >= 2) & np.isfinite(var) & (var > 0)
    if not usable.any():
        return mean, mc
    nu = m[usable] - 1.0
    log_var = np.log(var[usable]) - (digamma(nu / 2) - np.log(nu / 2))
    design = np.stack([np.ones(d.size), np.log(d), np.log(tau)], 1)
    columns = [0] + [k for k in (1, 2) if np.ptp(design[usable, k]) > 0]
    if usable.sum() > len(columns):
        sw = np.sqrt(nu)
        coef = np.linalg.lstsq(design[usable][:, columns] * sw[:, None], log_var * sw, rcond=None)[0]
        smooth = np.exp(design[:, columns] @ coef)
    else:
        smooth = np.full(d.shape, np.exp(np.average(log_var, weights=nu)))
    sigma = np.sqrt(smooth / np.maximum(m, 1))
    return mean, sigma if mc is None else np.fmax(sigma, mc)


def chi2_sf(chi2: float, dof: int) -> float:
    """P(χ²_dof > chi2)."""
    from scipy.stats import chi2 as chi2_dist

    return float(chi2_dist.sf(chi2, dof))


def _f_test(chi2_small: float, chi2_big: float, extra: int, dof_big: int, weighted: bool) -> dict[str, float]:
    """Nested comparison: does the bigger model's χ² drop beyond chance? F = (Δχ²/extra)/max(χ²/dof, 1).

    The denominator is at least 1, the χ²/dof of a model that fits to within its weights, so a misfit of
    the bigger model cannot make a small improvement look significant."""
    from scipy.stats import f as f_dist

    delta = max(chi2_small - chi2_big, 0.0)
    if dof_big <= 0 or not np.isfinite(delta):
        return {"delta_chi2": delta, "F": math.nan, "p": math.nan}
    scale = max(chi2_big / dof_big, 1.0) if weighted else chi2_big / dof_big
    F = delta / extra / scale if scale > 0 else math.inf
    return {"delta_chi2": float(delta), "F": float(F), "p": float(f_dist.sf(F, extra, dof_big))}


def fit_joint(
    d: Any,
    tau: Any,
    y: Any,
    se: Any = None,
    *,
    seeds_axis: int | None = None,
    bootstrap: int = 1000,
    level: float = 0.95,
    interaction: bool | str = "auto",
    exponent_range: tuple[float, float] = EXPONENT_RANGE,
    rng: int | np.random.Generator = 0,
) -> JointFit:
    """Fit ``R(d, τ) = R∞ + A·d^(−α) + B·τ^(−β)`` (plus ``E·d^(−α)·τ^(−β)`` if the data demand it).

    Args:
        d, tau: the points' input dimension and training time, 1-D of the same length ``N`` (a product
            grid flattened, or any scatter with at least two values of each).
        y: the risk, shape ``(N,)`` or ``(seeds, N)`` with ``seeds_axis=0`` (NaN: a run left out).
        se: optional Monte Carlo standard errors shaped like ``y`` (a floor under the seeds' scatter).
        seeds_axis: the axis of ``y`` holding seeds (``None``: ``y`` holds one value per point).
        bootstrap: resamples for the intervals (0: none). Seeds are resampled with replacement at every
            point (spread widened by √(k/(k−1))); with one seed, points are redrawn from the fit with ``se``.
        level: confidence level of the intervals.
        interaction: ``"auto"`` (added when the nested F-test gives p < ``INTERACTION_P``), ``True`` or
            ``False``.
        exponent_range: the range searched for α and β.
        rng: seed or generator of the bootstrap.

    Returns:
        A ``JointFit``; its ``status`` flags a term too small to identify, an exponent at a bound.

    Examples:
        >>> d, tau = (a.ravel() for a in np.meshgrid([64, 128, 256, 512], [125, 250, 500, 1000]))
        >>> fit_joint(d, tau, 0.3 + 0.5 / d, bootstrap=0).status   # no τ term in the data
        'not_identifiable'
    """
    d = np.asarray(d, float).ravel()
    tau = np.asarray(tau, float).ravel()
    ys = np.asarray(y, float)
    if d.shape != tau.shape:
        raise _validate.InputError(f"d and tau must have the same length, got {d.size} and {tau.size}")
    if seeds_axis is None:
        if ys.ndim != 1:
            raise _validate.InputError(f"y must be 1-D without seeds_axis, got shape {ys.shape}")
        ys = ys[None]
    else:
        if ys.ndim != 2:
            raise _validate.InputError(f"y must be 2-D (seeds, points) with seeds_axis, got shape {ys.shape}")
        ys = np.moveaxis(ys, seeds_axis, 0)
    if ys.shape[1] != d.size:
        raise _validate.InputError(f"y has {ys.shape[1]} points but d has {d.size}")
    ses = None
    if se is not None:
        ses = np.asarray(se, float)
        if ses.shape != np.shape(y):
            raise _validate.InputError(f"se must have the shape of y {np.shape(y)}, got {ses.shape}")
        ses = ses[None] if seeds_axis is None else np.moveaxis(ses, seeds_axis, 0)
    if not (np.all(np.isfinite(d)) and np.all(d > 0) and np.all(np.isfinite(tau)) and np.all(tau > 0)):
        raise _validate.InputError("d and tau must be positive and finite")
    _validate.non_negative_int("bootstrap", bootstrap)
    if not 0 < level < 1:
        raise _validate.InputError(f"level must be in (0, 1), got {level!r}")
    if interaction not in ("auto", True, False):
        raise _validate.InputError(f"interaction must be 'auto', True or False, got {interaction!r}")
    lo, hi = (float(v) for v in exponent_range)
    if not 0 < lo < hi:
        raise _validate.InputError(f"exponent_range must be (low, high) with 0 < low < high, got {exponent_range!r}")

    keep = np.isfinite(ys).any(0)
    d, tau, ys = d[keep], tau[keep], ys[:, keep]
    ses = None if ses is None else ses[:, keep]
    if np.unique(d).size < 2 or np.unique(tau).size < 2:
        raise _validate.InputError(
            f"a joint fit needs at least 2 values of d and of tau with data, got d={np.unique(d).tolist()}, "
            f"tau={np.unique(tau).tolist()}"
        )
    mean, sigma = _point_stats(d, tau, ys, ses)
    weighted = bool(sigma is not None and np.all(np.isfinite(sigma)) and np.all(sigma > 0))
    w = 1 / sigma**2 if sigma is not None and weighted else np.ones(d.size)
    n = d.size

    def fit_model(terms, ys_rows, w_rows, points=_GRID):
        return _Solver(d, tau, terms, (lo, hi)).fit(ys_rows, w_rows, points)

    def dof(terms):
        return n - len(_MODELS[terms]) - sum(t in terms for t in ("d", "time"))

    chi2 = {terms: float(fit_model(terms, mean[None], w[None])[1][0]) for terms in _MODELS}
    full, both = ("d", "time", "interaction"), ("d", "time")
    tests = {"interaction": _f_test(chi2[both], chi2[full], 1, dof(full), weighted)}
    with_interaction = interaction is True or (interaction == "auto" and tests["interaction"]["p"] < INTERACTION_P)
    base = full if with_interaction else both
    # a term is identified when dropping it (and the interaction with it) from the chosen law worsens the fit
    for term, reduced in (("d", ("time",)), ("time", ("d",))):
        extra = len(_MODELS[base]) - len(_MODELS[reduced]) + 1
        tests[term] = _f_test(chi2[reduced], chi2[base], extra, dof(base), weighted)
    identified = [t for t in ("d", "time") if tests[t]["p"] < IDENTIFY_P or not np.isfinite(tests[t]["p"])]
    notes = []
    for t in ("d", "time"):
        if t not in identified:
            law = "A·d^(−α)" if t == "d" else "B·τ^(−β)"
            notes.append(
                f"not_identifiable: dropping {law} raises χ² by {tests[t]['delta_chi2']:.3g} only "
                f"(F = {tests[t]['F']:.3g}, p = {tests[t]['p']:.2g} ≥ {IDENTIFY_P}); fitted without it"
            )
    terms = base if len(identified) == 2 else tuple(identified)
    estimate, best_chi2 = (a[0] for a in fit_model(terms, mean[None], w[None]))
    free = dof(terms)
    chi2_dof = float(best_chi2) / free if free > 0 and weighted else math.nan
    flags = ["not_identifiable"] if notes else []
    if free <= 0:
        flags.append("no_dof")
        notes.append(f"no_dof: {n} points for {n - free} parameters")
    elif weighted and chi2_sf(float(best_chi2), free) < MISFIT_P:
        flags.append("misfit")
        notes.append(
            f"misfit: χ²/dof = {chi2_dof:.3g} over {free} degrees of freedom (p < {MISFIT_P}): the law does not "
            "describe the data within the seeds' scatter, and the intervals (seeds only) leave out its error"
        )

    draws = _bootstrap(fit_model, terms, ys, ses, mean, sigma, w, weighted, estimate, d, tau, bootstrap, rng)
    tail = 50 * (1 - level)
    for name, index in (("alpha", 2), ("beta", 4)):
        value = estimate[index]
        if not np.isfinite(value):
            continue
        if min(abs(math.log(value / lo)), abs(math.log(value / hi))) < _BOUND_TOLERANCE:
            flags.append("at_bound")
            notes.append(f"at_bound: {name} = {value:.4g} at an end of the range [{lo:g}, {hi:g}]")
        elif len(draws):
            column = draws[:, index]
            at = np.mean(
                (np.abs(np.log(column / lo)) < _BOUND_TOLERANCE) | (np.abs(np.log(column / hi)) < _BOUND_TOLERANCE)
            )
            if at > tail / 100:
                flags.append("bootstrap_at_bound")
                notes.append(f"bootstrap_at_bound: {at:.0%} of resamples put {name} at an end of [{lo:g}, {hi:g}]")
    failed = any(FLAGS[f].startswith("failure") and f != "not_identifiable" for f in flags)
    ci = {}
    for k, name in enumerate(PARAMETERS):
        if len(draws) and not failed and np.isfinite(estimate[k]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanpercentile(draws[:, k], [tail, 100 - tail])
            ci[name] = (float(low), float(high))
        else:
            ci[name] = (math.nan, math.nan)
    how = (
        f"weighted least squares of (R∞, A, B{', E' if 'interaction' in terms else ''}) in closed form on a "
        f"searched grid of exponents in [{lo:g}, {hi:g}]; {bootstrap} bootstrap resamples "
        + ("of seeds at each point" if ys.shape[0] >= 2 else "from the fit and its standard errors")
    )
    return JointFit(
        *(float(v) for v in estimate),
        ci=ci,
        n=int(n),
        chi2_dof=chi2_dof,
        terms=terms,
        tests=tests,
        status=",".join(dict.fromkeys(flags)) or "ok",
        notes=tuple(notes),
        method=how,
        level=float(level),
        draws=draws,
    )


def _bootstrap(fit_model, terms, ys, ses, mean, sigma, w, weighted, estimate, d, tau, count, rng):
    if count == 0 or (ys.shape[0] < 2 and not weighted):
        return np.empty((0, len(PARAMETERS)))
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    k = ys.shape[0]
    out = []
    for start in range(0, count, _CHUNK):
        rows = min(_CHUNK, count - start)
        if k >= 2:
            pick = gen.integers(0, k, size=(rows, k, ys.shape[1]))
            sample = np.take_along_axis(np.broadcast_to(ys, (rows, *ys.shape)), pick, 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                resampled = np.nanmean(sample, 1)
            m = np.isfinite(ys).sum(0)
            widen = np.sqrt(np.where(m > 1, m / np.maximum(m - 1, 1), 1.0))
            means = mean + widen * (resampled - mean)
            means = np.where(np.isfinite(means), means, mean)
        else:
            fitted = _surface(*estimate, d, tau)
            means = fitted + sigma * gen.standard_normal((rows, d.size))
        out.append(fit_model(terms, means, np.broadcast_to(w, means.shape), _GRID_BOOTSTRAP)[0])
    return np.concatenate(out)


# ------------------------------------------------------------------------------------------ Datasets


def _activation(ds: xr.Dataset) -> str:
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except (TypeError, json.JSONDecodeError):
        return "sign"
    activation = config.get("activation", "sign") if isinstance(config, dict) else "sign"
    return activation if isinstance(activation, str) else "sign"


def extrapolate_joint(
    ds: xr.Dataset,
    var: str = "exact_risk",
    along: tuple[str, str] = ("d", "time"),
    *,
    bootstrap: int = 1000,
    level: float = 0.95,
    interaction: bool | str = "auto",
    theory: Any = None,
    rng: int = 0,
) -> xr.Dataset:
    """The joint law at each value of the other swept axes (rate, ...), with R∞ against the theory.

    Args:
        ds: results with dimensions ``along`` (e.g. from ``aejax.sweep(..., grid={"d": ..., "time": ...})``)
            and optionally ``seed``; runs whose ``status`` is not ``ok`` are left out.
        var: the risk variable (``exact_risk`` or ``risk``, weighted by ``risk_se`` as a floor).
        along: the size and time dimensions.
        bootstrap, level, interaction: as ``fit_joint``.
        theory: the limit to compare with, per combination (default ``R_Gauss`` at the nominal rate,
            ``aejax.theory.gaussian_limit`` with the results' activation; NaN without a ``rate``).
        rng: seed of the bootstrap.

    Returns:
        A Dataset over the other coordinates: ``r_inf``, ``A``, ``alpha``, ``B``, ``beta``, ``E`` with
        ``*_low``/``*_high`` intervals, ``chi2_dof``, ``n_points``, ``theory``, ``r_inf_minus_theory``,
        ``covers``, ``width``, ``terms``, ``fit_status``, ``notes``, and ``p_d``, ``p_time``,
        ``p_interaction`` (the nested F-tests).

    Examples:
        >>> d, t = np.array([64, 128, 256]), np.array([125.0, 250.0, 500.0, 1000.0])
        >>> risk = 0.3634 + 0.5 / d[:, None] + 0.2 * t[None, :] ** -0.7
        >>> ds = xr.Dataset({"exact_risk": (("d", "time"), risk)}, coords={"d": d, "time": t})
        >>> out = extrapolate_joint(ds, bootstrap=0)
        >>> round(float(out["r_inf"]), 6), str(out["fit_status"].values)
        (0.3634, 'ok')
    """
    if not isinstance(ds, xr.Dataset):
        raise _validate.InputTypeError(f"ds must be an xarray Dataset, got {type(ds).__name__}")
    if var not in ds:
        raise _validate.InputError(f"--var {var!r} is not in the results; allowed: {', '.join(map(str, ds.data_vars))}")
    if len(tuple(along)) != 2 or along[0] == along[1]:
        raise _validate.InputError(f"--along must name two dimensions (size, time), got {','.join(along)!r}")
    da = ds[var]
    for dim in along:
        if dim not in da.dims:
            raise _validate.InputError(
                f"--along {dim!r} is not a dimension of {var} (dimensions: {', '.join(map(str, da.dims))}); "
                f"a joint fit needs a sweep over both {along[0]} and {along[1]}"
            )
    traced = [dim for dim in da.dims if dim in ("tau", "step")]
    if traced:
        raise _validate.InputError(f"--var {var!r} is a trace (dimension {traced[0]}); give a final value")
    if "status" in ds:
        da = da.where(ds["status"] == "ok")
    se = ds["risk_se"] if var == "risk" and "risk_se" in ds else None
    seeded = "seed" in da.dims
    others = [dim for dim in da.dims if dim not in (*along, "seed")]
    order = [*others, *(["seed"] if seeded else []), *along]
    da = da.transpose(*order)
    if se is not None:
        se = se.transpose(*order)
    shape = tuple(da.sizes[o] for o in others)
    sizes, times = np.meshgrid(np.asarray(ds[along[0]], float), np.asarray(ds[along[1]], float), indexing="ij")
    activation = _activation(ds)
    results: dict[str, Any] = {}
    for index in np.ndindex(*shape):
        values = np.asarray(da.values[index], float)
        values = values.reshape(values.shape[0], -1) if seeded else values.reshape(-1)
        errors = None if se is None else np.asarray(se.values[index], float).reshape(values.shape)
        fit = fit_joint(
            sizes.ravel(),
            times.ravel(),
            values,
            errors,
            seeds_axis=0 if seeded else None,
            bootstrap=bootstrap,
            level=level,
            interaction=interaction,
            rng=rng,
        )
        coords = {o: ds[o].values[i] for o, i in zip(others, index, strict=True)}
        if theory is not None:
            limit = float(np.asarray(theory)[index]) if np.ndim(theory) else float(theory)
        elif "rate" in coords:
            from aejax.theory import gaussian_limit

            limit = float(gaussian_limit(float(coords["rate"]), activation))
        else:
            limit = math.nan
        row = _row(fit, limit)
        for key, value in row.items():
            results.setdefault(key, np.empty(shape, dtype=object if isinstance(value, str) else float))[index] = value
    out = xr.Dataset(
        {key: (tuple(others), value) for key, value in results.items()},
        coords={o: ds[o].values for o in others},
    )
    out.attrs.update(
        var=var,
        along=",".join(along),
        level=level,
        bootstrap=bootstrap,
        law="R = R∞ + A·d^(−α) + B·τ^(−β) [+ E·d^(−α)·τ^(−β) when the data demand it]",
        activation=activation,
    )
    return out


def _row(fit: JointFit, limit: float) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in PARAMETERS:
        row[name] = getattr(fit, name)
        row[f"{name}_low"], row[f"{name}_high"] = fit.ci[name]
    low, high = fit.ci["r_inf"]
    row.update(
        chi2_dof=fit.chi2_dof,
        n_points=float(fit.n),
        theory=limit,
        r_inf_minus_theory=fit.r_inf - limit,
        covers=float(low <= limit <= high) if np.isfinite(low) and np.isfinite(limit) else math.nan,
        width=high - low,
        p_d=fit.tests["d"]["p"],
        p_time=fit.tests["time"]["p"],
        p_interaction=fit.tests["interaction"]["p"],
        terms=",".join(fit.terms) or "none",
        fit_status=fit.status,
        notes=" | ".join(fit.notes),
    )
    return row


# ------------------------------------------------------------------------------------------ the report

JOINT_HEADER = ["R∞ [CI]", "R_Gauss", "R∞ − R_Gauss", "covers?", "α [CI]", "β [CI]", "A", "B", "E", "χ²/dof", "status"]


def _digits(low: float, high: float) -> int:
    width = abs(high - low)
    return max(4, 1 - math.floor(math.log10(width))) if np.isfinite(width) and width > 0 else 6


def joint_table(result: xr.Dataset) -> tuple[list[str], list[list[str]]]:
    """The printed table of ``extrapolate_joint``: one row per combination of the other coordinates."""
    others = list(result.dims)
    header = [*others, *JOINT_HEADER]
    rows = []
    for index in np.ndindex(*[result.sizes[o] for o in others]):
        sel = result.isel(dict(zip(others, index, strict=True)))

        def v(name, sel=sel):
            return float(sel[name])

        k = _digits(v("r_inf_low"), v("r_inf_high"))
        covers = {1.0: "yes", 0.0: "no"}.get(v("covers"), "—")

        def exponent(name, v=v):
            if not np.isfinite(v(name)):
                return "—"
            return f"{v(name):.3f} [{v(name + '_low'):.3f}, {v(name + '_high'):.3f}]"

        rows.append(
            [
                *(f"{sel[o].item():g}" for o in others),
                f"{v('r_inf'):.{k}f} [{v('r_inf_low'):.{k}f}, {v('r_inf_high'):.{k}f}]",
                f"{v('theory'):.{k}f}",
                f"{v('r_inf_minus_theory'):+.{k}f}",
                covers,
                exponent("alpha"),
                exponent("beta"),
                f"{v('A'):.3g}" if np.isfinite(v("A")) else "—",
                f"{v('B'):.3g}" if np.isfinite(v("B")) else "—",
                f"{v('E'):.3g}" if np.isfinite(v("E")) else "—",
                f"{v('chi2_dof'):.2f}",
                str(sel["fit_status"].item()),
            ]
        )
    return header, rows


def plot_joint(ds: xr.Dataset, result: xr.Dataset, var: str, along: tuple[str, str], path: str | os.PathLike) -> Path:
    """The gap ``R − R∞`` against τ, one colour per d, one panel per combination of the other coordinates,
    with the fitted surface as lines."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    size, time = along
    da = ds[var].where(ds["status"] == "ok") if "status" in ds else ds[var]
    mean = da.mean("seed") if "seed" in da.dims else da
    others = list(result.dims)
    combos = list(np.ndindex(*[result.sizes[o] for o in others])) or [()]
    fig, axes = plt.subplots(1, len(combos), figsize=(3.4 * len(combos), 3.0), squeeze=False, dpi=80)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, ds.sizes[size]))
    taus = np.asarray(ds[time], float)
    fine = np.geomspace(taus.min(), taus.max(), 50)
    for ax, index in zip(axes[0], combos, strict=True):
        where = dict(zip(others, index, strict=True))
        fit = result.isel(where)
        m = mean.isel(where) if where else mean
        r_inf = float(fit["r_inf"])
        params = [float(fit[p]) for p in PARAMETERS]
        for colour, dval in zip(colours, np.asarray(ds[size], float), strict=True):
            gap = np.asarray(m.sel({size: dval}).transpose(time).values, float) - r_inf
            ax.loglog(taus, np.where(gap > 0, gap, np.nan), "o", color=colour, ms=4, label=f"d={dval:g}")
            ax.loglog(fine, _surface(*params, dval, fine) - r_inf, "-", color=colour, lw=1)
        title = ", ".join(f"{o}={result[o].values[i]:g}" for o, i in zip(others, index, strict=True))
        ax.set_title(f"{title}\nR∞={r_inf:.5f} ({fit['fit_status'].item()})", fontsize=8)
        ax.set_xlabel("τ (samples / d)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel(f"{var} − R∞", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def report_joint(
    results: str | os.PathLike | xr.Dataset,
    *,
    var: str = "exact_risk",
    along: tuple[str, str] = ("d", "time"),
    out: str | os.PathLike | None = None,
    bootstrap: int = 1000,
    level: float = 0.95,
    interaction: bool | str = "auto",
) -> dict[str, Any]:
    """``aejax scaling RESULTS --along d,time``: fit the joint law, write ``scaling_joint.nc``,
    ``scaling_joint.md`` and ``scaling_joint.png`` into ``out`` (default: next to the results file).

    Returns:
        ``{"result": Dataset, "table": markdown, "files": {label: path}, "failed": [one line per failed fit]}``.
    """
    from aejax.results import atomic_write, load_results, save_results

    if isinstance(results, xr.Dataset):
        ds, where = results, Path(out or ".")
    else:
        path = Path(results)
        ds = load_results(path)
        where = Path(out) if out is not None else (path if path.is_dir() else path.parent)
    _validate.non_negative_int("--bootstrap", bootstrap)
    result = extrapolate_joint(ds, var, along, bootstrap=bootstrap, level=level, interaction=interaction)
    header, rows = joint_table(result)
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]
    )
    notes = [str(n) for n in np.ravel(result["notes"].values) if str(n)]
    text = (
        f"# Joint scaling law of {var} along {','.join(along)}\n\n{result.attrs['law']}, fitted per "
        f"{', '.join(map(str, result.dims)) or 'results'}; {level:.0%} bootstrap intervals over seeds "
        f"({bootstrap} resamples); "
        f"R_Gauss from aejax.theory.gaussian_limit.\n\n{table}\n"
        + ("\n" + "\n".join(f"- {n}" for n in notes) + "\n" if notes else "")
    )
    where.mkdir(parents=True, exist_ok=True)
    files = {
        "fit": save_results(result, where / "scaling_joint.nc"),
        "table": where / "scaling_joint.md",
        "figure": plot_joint(ds, result, var, along, where / "scaling_joint.png"),
    }
    atomic_write(files["table"], lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    failed = []
    for index in np.ndindex(*[result.sizes[o] for o in result.dims]):
        sel = result.isel(dict(zip(result.dims, index, strict=True)))
        status = str(sel["fit_status"].item())
        if any(FLAGS.get(f, "").startswith("failure") for f in status.split(",")):
            label = ", ".join(f"{o}={sel[o].item():g}" for o in result.dims) or "the fit"
            failed.append(f"{label}: {status}")
    return {"result": result, "table": table, "files": files, "failed": failed}
