"""The joint scaling law in d and τ: ``R(d, τ) = R∞ + A·d^(−α) + B·τ^(−β)``.

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
import math
import warnings
from typing import Any

import numpy as np

from aejax import _validate
from aejax.scaling._joint_solver import _GRID, _GRID_BOOTSTRAP, _MODELS, PARAMETERS, _Solver, _surface

EXPONENT_RANGE = (1e-2, 10.0)  # both exponents are searched on this range (as ``aejax.scaling.ALPHA_RANGE``)
_BOUND_TOLERANCE = 0.01  # |log(estimate / bound)| below which an exponent sits at its bound
IDENTIFY_P = 0.01  # a term is identified when dropping it worsens the fit at this significance (F-test)
INTERACTION_P = 0.01  # the interaction is added when it improves the fit at this significance
_CHUNK = 64  # resamples fitted at once (bounds the (resamples × grid × grid × points) work arrays)
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
        d: the points' input dimension, 1-D of length ``N`` (a product grid flattened, or any scatter
            with at least two values of d and of tau).
        tau: the points' training time, 1-D of length ``N``.
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
    d, tau, ys, ses = _shaped(d, tau, y, se, seeds_axis)
    lo, hi = _options(bootstrap, level, interaction, exponent_range)
    d, tau, ys, ses = _with_data(d, tau, ys, ses)
    mean, sigma = _point_stats(d, tau, ys, ses)
    weighted = bool(sigma is not None and np.all(np.isfinite(sigma)) and np.all(sigma > 0))
    w = 1 / sigma**2 if sigma is not None and weighted else np.ones(d.size)
    law = _Law(d, tau, (lo, hi))
    terms, tests, notes = _choose_terms(law, mean, w, weighted, interaction)
    estimate, best_chi2 = (a[0] for a in law.fit(terms, mean[None], w[None]))
    free = law.dof(terms)
    chi2_dof = float(best_chi2) / free if free > 0 and weighted else math.nan
    draws = _bootstrap(law, terms, ys, mean, sigma, w, weighted, estimate, bootstrap, rng)
    raised = _freedom_flags(d.size, free, float(best_chi2), chi2_dof, weighted)
    raised += _bound_flags(estimate, draws, (lo, hi), level)
    flags = (["not_identifiable"] if notes else []) + [flag for flag, _ in raised]
    notes += [note for _, note in raised]
    failed = any(FLAGS[f].startswith("failure") and f != "not_identifiable" for f in flags)
    how = (
        f"weighted least squares of (R∞, A, B{', E' if 'interaction' in terms else ''}) in closed form on a "
        f"searched grid of exponents in [{lo:g}, {hi:g}]; {bootstrap} bootstrap resamples "
        + ("of seeds at each point" if ys.shape[0] >= 2 else "from the fit and its standard errors")
    )
    return JointFit(
        *(float(v) for v in estimate),
        ci=_intervals(draws, estimate, failed, level),
        n=int(d.size),
        chi2_dof=chi2_dof,
        terms=terms,
        tests=tests,
        status=",".join(dict.fromkeys(flags)) or "ok",
        notes=tuple(notes),
        method=how,
        level=float(level),
        draws=draws,
    )


def _shaped(
    d: Any, tau: Any, y: Any, se: Any, seeds_axis: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``d``, ``tau`` flattened; ``y`` and ``se`` as (seeds, points); each checked."""
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
    return d, tau, ys, ses


def _options(
    bootstrap: int, level: float, interaction: bool | str, exponent_range: tuple[float, float]
) -> tuple[float, float]:
    """The options checked; the exponents' range searched as ``(low, high)``."""
    _validate.non_negative_int("bootstrap", bootstrap)
    if not 0 < level < 1:
        raise _validate.InputError(f"level must be in (0, 1), got {level!r}")
    if interaction not in ("auto", True, False):
        raise _validate.InputError(f"interaction must be 'auto', True or False, got {interaction!r}")
    lo, hi = (float(v) for v in exponent_range)
    if not 0 < lo < hi:
        raise _validate.InputError(f"exponent_range must be (low, high) with 0 < low < high, got {exponent_range!r}")
    return lo, hi


def _with_data(
    d: np.ndarray, tau: np.ndarray, ys: np.ndarray, ses: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The points with data, at least two values of ``d`` and of ``tau`` among them."""
    keep = np.isfinite(ys).any(0)
    d, tau, ys = d[keep], tau[keep], ys[:, keep]
    ses = None if ses is None else ses[:, keep]
    if np.unique(d).size < 2 or np.unique(tau).size < 2:
        raise _validate.InputError(
            f"a joint fit needs at least 2 values of d and of tau with data, got d={np.unique(d).tolist()}, "
            f"tau={np.unique(tau).tolist()}"
        )
    return d, tau, ys, ses


class _Law:
    """The law's models (``_MODELS``) on the points ``(d, τ)``: each one's best fit and degrees of freedom."""

    def __init__(self, d: np.ndarray, tau: np.ndarray, bounds: tuple[float, float]):
        self.d, self.tau, self.bounds = d, tau, bounds

    def fit(self, terms: tuple[str, ...], ys: np.ndarray, w: np.ndarray, points: int = _GRID):
        """(R, 6) estimates in ``PARAMETERS`` order and χ² (R,), for each row of ``ys``."""
        return _Solver(self.d, self.tau, terms, self.bounds).fit(ys, w, points)

    def dof(self, terms: tuple[str, ...]) -> int:
        return self.d.size - len(_MODELS[terms]) - sum(t in terms for t in ("d", "time"))


def _choose_terms(
    law: _Law, mean: np.ndarray, w: np.ndarray, weighted: bool, interaction: bool | str
) -> tuple[tuple[str, ...], dict[str, dict[str, float]], list[str]]:
    """The terms the data demand (nested F-tests), the tests, and a note for each term left out."""
    chi2 = {terms: float(law.fit(terms, mean[None], w[None])[1][0]) for terms in _MODELS}
    full, both = ("d", "time", "interaction"), ("d", "time")
    tests = {"interaction": _f_test(chi2[both], chi2[full], 1, law.dof(full), weighted)}
    with_interaction = interaction is True or (interaction == "auto" and tests["interaction"]["p"] < INTERACTION_P)
    base = full if with_interaction else both
    # a term is identified when dropping it (and the interaction with it) from the chosen law worsens the fit
    for term, reduced in (("d", ("time",)), ("time", ("d",))):
        extra = len(_MODELS[base]) - len(_MODELS[reduced]) + 1
        tests[term] = _f_test(chi2[reduced], chi2[base], extra, law.dof(base), weighted)
    identified = [t for t in ("d", "time") if tests[t]["p"] < IDENTIFY_P or not np.isfinite(tests[t]["p"])]
    notes = []
    for t in ("d", "time"):
        if t not in identified:
            law_term = "A·d^(−α)" if t == "d" else "B·τ^(−β)"
            notes.append(
                f"not_identifiable: dropping {law_term} raises χ² by {tests[t]['delta_chi2']:.3g} only "
                f"(F = {tests[t]['F']:.3g}, p = {tests[t]['p']:.2g} ≥ {IDENTIFY_P}); fitted without it"
            )
    return (base if len(identified) == 2 else tuple(identified)), tests, notes


def _freedom_flags(n: int, free: int, chi2: float, chi2_dof: float, weighted: bool) -> list[tuple[str, str]]:
    """``no_dof`` without residual freedom; ``misfit`` when χ² is far above its degrees of freedom."""
    if free <= 0:
        return [("no_dof", f"no_dof: {n} points for {n - free} parameters")]
    if weighted and chi2_sf(chi2, free) < MISFIT_P:
        return [
            (
                "misfit",
                f"misfit: χ²/dof = {chi2_dof:.3g} over {free} degrees of freedom (p < {MISFIT_P}): the law does not "
                "describe the data within the seeds' scatter, and the intervals (seeds only) leave out its error",
            )
        ]
    return []


def _bound_flags(
    estimate: np.ndarray, draws: np.ndarray, bounds: tuple[float, float], level: float
) -> list[tuple[str, str]]:
    """``at_bound`` for an exponent at an end of its range; else ``bootstrap_at_bound`` when more of its
    draws sit there than the interval's tail."""
    lo, hi = bounds
    tail = 50 * (1 - level)
    found = []
    for name, index in (("alpha", 2), ("beta", 4)):
        value = estimate[index]
        if not np.isfinite(value):
            continue
        if min(abs(math.log(value / lo)), abs(math.log(value / hi))) < _BOUND_TOLERANCE:
            found.append(("at_bound", f"at_bound: {name} = {value:.4g} at an end of the range [{lo:g}, {hi:g}]"))
        elif len(draws):
            column = draws[:, index]
            at = np.mean(
                (np.abs(np.log(column / lo)) < _BOUND_TOLERANCE) | (np.abs(np.log(column / hi)) < _BOUND_TOLERANCE)
            )
            if at > tail / 100:
                note = f"bootstrap_at_bound: {at:.0%} of resamples put {name} at an end of [{lo:g}, {hi:g}]"
                found.append(("bootstrap_at_bound", note))
    return found


def _intervals(draws: np.ndarray, estimate: np.ndarray, failed: bool, level: float) -> dict[str, tuple[float, float]]:
    """Percentile intervals of each parameter; NaN without draws, for a term left out, or when the fit failed."""
    tail = 50 * (1 - level)
    ci = {}
    for k, name in enumerate(PARAMETERS):
        if len(draws) and not failed and np.isfinite(estimate[k]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanpercentile(draws[:, k], [tail, 100 - tail])
            ci[name] = (float(low), float(high))
        else:
            ci[name] = (math.nan, math.nan)
    return ci


def _bootstrap(law, terms, ys, mean, sigma, w, weighted, estimate, count, rng):
    """``count`` refits of the law: to seeds resampled at every point (spread widened by √(k/(k−1))), or
    with one seed, to points redrawn from the fit with ``sigma``; none without either."""
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
            fitted = _surface(*estimate, law.d, law.tau)
            means = fitted + sigma * gen.standard_normal((rows, law.d.size))
        out.append(law.fit(terms, means, np.broadcast_to(w, means.shape), _GRID_BOOTSTRAP)[0])
    return np.concatenate(out)
