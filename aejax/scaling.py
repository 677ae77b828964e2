"""Finite-size scaling laws: power-law fits with bootstrap intervals, extrapolation d → ∞, trajectory collapse.

A sweep over the input dimension ``d`` (one ``results.nc`` with a ``d`` dimension) answers two questions:

- *where does the risk go as d → ∞, and how fast?* ``extrapolate`` fits ``R(d) = R∞ + C·d^(−α)`` to the
  seed-mean risk at each rate and compares ``R∞`` (with its bootstrap interval) with the theory
  ``R_Gauss(r)``; ``fit_power_law`` is the fit itself, for any ``x``, ``y``.
- *do the training curves collapse when time is measured per dimension?* ``collapse`` measures, for each d,
  the largest distance between its seed-mean risk trace and the largest d's, over the time axis ``tau``.

``report`` does both for a results file and writes ``scaling.nc``, ``scaling.md`` and two figures; it is
the ``aejax scaling RESULTS.nc`` command.

Examples:
    >>> import numpy as np
    >>> d = np.array([64, 128, 256, 512, 1024])
    >>> fit = fit_power_law(d, 0.36 + 0.03 / d, offset=True, bootstrap=0)
    >>> round(fit.alpha, 6), round(fit.offset, 8)
    (1.0, 0.36)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, cast

import numpy as np
import xarray as xr

from aejax import _validate
from aejax.results import atomic_write, load_results, save_results

# Exponents the offset fit searches (a profile over α, refined around its minimum).
ALPHA_RANGE = (1e-2, 10.0)
_GRID_POINTS = 121
_REFINE_POINTS = 17
_REFINEMENTS = 4
TRACE_DIMS = ("step", "tau")


# What a fit can admit about itself (``FitStatus.flags``); the failures void its intervals.
FIT_FLAGS = {
    "at_bound": "failure: an estimate sits at an end of the range searched, so it is not a minimum of the model",
    "bootstrap_at_bound": "failure: more resamples than the interval's tail sit at an end of the range, so the "
    "interval is cut by the range, not by the data",
    "not_identifiable": "failure: the data do not determine the parameters (no finite estimate, or the fitted "
    "change over the data is within the points' errors)",
    "no_dof": "caution: no residual degrees of freedom, so the model's fit to the data cannot be checked",
}
FIT_FAILURES = frozenset(flag for flag, text in FIT_FLAGS.items() if text.startswith("failure"))
_BOUND_TOLERANCE = 0.01  # |log(estimate / bound)| below which an estimate sits at the bound (1%)
_BOOTSTRAP_CHUNK = 1024  # resamples fitted at once: bounds the fitter's (resamples × grid × points) arrays
_BYTES_PER_DRAW = 4 * 3 * 8  # a fit's (α, C, y∞) per resample, held about four times (fit, Dataset, file, sort)


@dataclasses.dataclass(frozen=True)
class FitStatus:
    """What a fit admits about itself: no flags (``ok``), or some of ``FIT_FLAGS`` with one note each.

    A fit with a failure flag (``at_bound``, ``bootstrap_at_bound``, ``not_identifiable``) reports its
    least-squares numbers but no interval (NaN), and ``aejax scaling`` exits with status 3; ``no_dof`` is a
    caution shown next to the fit. Any fit (this module's, or a joint fit) builds one with
    ``FitStatus.of`` and the checks ``bound_status`` and ``identifiable_status``, and combines them with ``|``.

    Attributes:
        flags: the flags raised, in the order found (empty: ok).
        notes: one sentence per flag, with the numbers that raised it.

    Examples:
        >>> status = bound_status("alpha", 0.01, np.full(100, 0.01), (0.01, 10.0), level=0.95)
        >>> str(status), status.failed
        ('at_bound,bootstrap_at_bound', True)
        >>> str(FitStatus()), FitStatus.of(no_dof="3 points, 3 parameters").failed
        ('ok', False)
    """

    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, **checks: str | None) -> FitStatus:
        """The status with a flag for each check whose note is not ``None`` (flags from ``FIT_FLAGS``)."""
        unknown = sorted(set(checks) - set(FIT_FLAGS))
        if unknown:
            raise _validate.InputError(f"unknown fit flags {unknown}; allowed: {', '.join(FIT_FLAGS)}")
        raised = [(flag, note) for flag, note in checks.items() if note is not None]
        return cls(tuple(f for f, _ in raised), tuple(n for _, n in raised))

    def __or__(self, other: FitStatus) -> FitStatus:
        new = [(f, n) for f, n in zip(other.flags, other.notes, strict=True) if f not in self.flags]
        return FitStatus(self.flags + tuple(f for f, _ in new), self.notes + tuple(n for _, n in new))

    @property
    def ok(self) -> bool:
        """No flag raised."""
        return not self.flags

    @property
    def failed(self) -> bool:
        """A failure flag raised: the estimates are not trustworthy and have no interval."""
        return any(flag in FIT_FAILURES for flag in self.flags)

    def describe(self) -> str:
        """``ok``, or each flag with its note."""
        return "; ".join(f"{f}: {n}" for f, n in zip(self.flags, self.notes, strict=True)) or "ok"

    def __str__(self) -> str:
        return ",".join(self.flags) or "ok"


def _failed(sel: xr.Dataset) -> bool:
    """Whether the ``fit_status`` of one ``extrapolate`` combination holds a failure flag."""
    return "fit_status" in sel and bool(FIT_FAILURES & set(str(sel["fit_status"].item()).split(",")))


def _at_bound(values: np.ndarray, bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.abs(np.log(values / bounds[0])) <= _BOUND_TOLERANCE
        high = np.abs(np.log(values / bounds[1])) <= _BOUND_TOLERANCE
    return low, high


def bound_status(
    name: str, estimate: float, draws: Any, bounds: tuple[float, float], *, level: float = 0.95
) -> FitStatus:
    """``at_bound`` when a positive parameter's ``estimate`` sits (within 1%) at an end of the ``bounds``
    searched; ``bootstrap_at_bound`` when a larger share of its bootstrap ``draws`` does than the
    interval's tail ``(1 − level)/2``, so that the interval's end would be the bound itself.

    Args:
        name: the parameter's name (for the notes).
        estimate: its estimate.
        draws: its bootstrap estimates (may be empty).
        bounds: ``(low, high)``, both positive.
        level: the intervals' confidence level.

    Returns:
        A ``FitStatus``.

    Examples:
        >>> str(bound_status("alpha", 1.0, np.array([0.01, 1.0, 1.1]), (0.01, 10.0), level=0.5))
        'bootstrap_at_bound'
    """
    low, high = _at_bound(np.array([estimate]), bounds)
    at = None
    if low[0] or high[0]:
        end = "lower" if low[0] else "upper"
        at = f"{name} = {estimate:.4g} sits at the {end} end of its range [{bounds[0]:g}, {bounds[1]:g}]"
    draws = np.asarray(draws, float)
    draws = draws[np.isfinite(draws)]
    share = None
    if draws.size:
        d_low, d_high = _at_bound(draws, bounds)
        tail = (1 - level) / 2
        parts = [(f, e) for f, e in ((d_low.mean(), "lower"), (d_high.mean(), "upper")) if f > tail]
        if parts:
            share = ", ".join(f"{f:.0%} of the {draws.size} resamples' {name} sit at the {e} end" for f, e in parts)
            share += f" (more than the interval's tail of {tail:.1%})"
    return FitStatus.of(at_bound=at, bootstrap_at_bound=share)


def identifiable_status(estimates: Any, change: float, noise: float | None) -> FitStatus:
    """``not_identifiable`` when an estimate is not finite, or when the change the fitted model makes over
    the data (``change``, e.g. ``|C·(x_min^(−α) − x_max^(−α))|``) is not larger than ``noise``, the points'
    typical standard error (``None``: unknown, not checked).

    Examples:
        >>> str(identifiable_status([0.5, 1e-9, 0.3], change=1e-9, noise=1e-4))
        'not_identifiable'
    """
    values = np.asarray(estimates, float)
    if not np.all(np.isfinite(values)):
        return FitStatus.of(not_identifiable="the fit has no finite estimate")
    if not np.isfinite(change) or (noise is not None and np.isfinite(noise) and change <= noise):
        return FitStatus.of(
            not_identifiable=f"the fitted change over the data, {change:.3g}, is within the points' standard "
            f"error {noise:.3g}: the limit and the exponent are not determined"
        )
    return FitStatus()


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
    """A fitted power law ``y = offset + C·x^(−alpha)`` (``offset`` is ``None`` for the fit without one).

    Attributes:
        alpha: the exponent α (the fit decays for α > 0).
        C: the amplitude.
        offset: the limit ``y∞`` as x → ∞, or ``None`` when no offset was fitted.
        alpha_ci: ``(low, high)`` percentile interval of α at ``level`` (NaN when it cannot be estimated).
        C_ci: interval of C.
        offset_ci: interval of the offset, or ``None``.
        n: number of points (values of x) fitted.
        chi2_dof: weighted residual χ² per degree of freedom (NaN for an unweighted fit or no freedom).
        method: how the fit and the intervals were made.
        level: the intervals' confidence level.
        draws: the bootstrap estimates, one row ``(alpha, C, offset)`` per resample (offset 0 without one).
        status: what the fit admits about itself (``FitStatus``): ``at_bound``, ``bootstrap_at_bound`` or
            ``not_identifiable`` mean the fit failed, and its intervals are NaN (the draws are kept).

    Examples:
        >>> fit = fit_power_law([10, 100, 1000], [2.0, 0.2, 0.02], bootstrap=0)
        >>> round(fit.alpha, 12), round(fit.C, 12), fit.offset
        (1.0, 20.0, None)
        >>> round(float(fit.predict(10_000)), 12)
        0.002
    """

    alpha: float
    C: float
    offset: float | None
    alpha_ci: tuple[float, float]
    C_ci: tuple[float, float]
    offset_ci: tuple[float, float] | None
    n: int
    chi2_dof: float
    method: str
    level: float
    draws: np.ndarray = dataclasses.field(repr=False, compare=False)
    status: FitStatus = dataclasses.field(default_factory=FitStatus)

    def predict(self, x: Any) -> np.ndarray:
        """The fitted curve at ``x``."""
        return (self.offset or 0.0) + self.C * np.asarray(x, float) ** -self.alpha

    def band(self, x: Any, *, offset: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``level`` band of the fitted curve at ``x`` from the bootstrap draws (``offset=False``:
        of ``C·x^(−α)`` alone). NaN without draws or when the fit failed (``status``)."""
        x = np.asarray(x, float)
        if not len(self.draws) or self.status.failed:
            nan = np.full(x.shape, np.nan)
            return nan, nan.copy()
        alpha, c, y_inf = (self.draws[:, i].reshape(-1, *([1] * x.ndim)) for i in range(3))
        curves = c * x**-alpha + (y_inf if offset else 0.0)
        tail = 50 * (1 - self.level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanpercentile(curves, [tail, 100 - tail], axis=0)
        return low, high

    def __str__(self) -> str:
        def show(value: float, ci: tuple[float, float]) -> str:
            if self.status.failed:
                return f"{value:.4g} (no interval: the fit failed)"
            # two significant digits of the interval's width (4 significant digits without an interval)
            width = abs(ci[1] - ci[0])
            scale = width if np.isfinite(width) and width > 0 else abs(value) * 1e-3
            decimals = max(0, 1 - math.floor(math.log10(scale))) if np.isfinite(scale) and scale > 0 else 4
            return f"{value:.{decimals}f} [{ci[0]:.{decimals}f}, {ci[1]:.{decimals}f}]"

        form = "y = y∞ + C·x^(−α)" if self.offset is not None else "y = C·x^(−α)"
        lines = [
            f"{form}: {self.n} points, χ²/dof = {self.chi2_dof:.3g}",
            f"  α  = {show(self.alpha, self.alpha_ci)}",
            f"  C  = {show(self.C, self.C_ci)}",
        ]
        if self.offset is not None and self.offset_ci is not None:
            lines.append(f"  y∞ = {show(self.offset, self.offset_ci)}")
        intervals = "no intervals (the fit failed)" if self.status.failed else f"{self.level:.0%} intervals"
        lines.append(f"  {intervals}; {self.method}")
        if not self.status.ok:
            lines.append(f"  status: {self.status.describe()}")
        return "\n".join(lines)


def fit_power_law(
    x: Any,
    y: Any,
    se: Any = None,
    *,
    offset: bool = False,
    seeds_axis: int | None = None,
    bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    alpha_range: tuple[float, float] = ALPHA_RANGE,
) -> PowerLawFit:
    """Fit ``y = C·x^(−α)`` (or, with ``offset``, ``y = y∞ + C·x^(−α)``) by weighted least squares.

    The points are the values of ``x``; with ``seeds_axis``, ``y`` holds several seeds per point and the
    fit is to their mean (NaN entries, e.g. failed runs, are left out). Each point's weight is 1/σ², σ
    its standard error: with seeds, the larger of the seeds' scatter (std/√k, the variance smoothed across
    points as a power law in x, since a few seeds' raw variances are too noisy to weight by) and the Monte
    Carlo part of ``se`` (√mean(se²)/√k); with one value per point, ``se``. Without any error the fit is
    unweighted.

    - no offset: a linear fit of ``log y`` on ``log x``, weights ``(y/σ)²`` (σ propagated to log y);
      ``y`` must be positive.
    - offset: non-linear least squares; for each α, ``(y∞, C)`` is a closed-form weighted linear solve, and
      the residual sum is minimised over α in ``alpha_range`` (a log grid, refined around its minimum,
      then polished by Brent's method). α is positive: the curve decays to ``y∞``.

    Intervals are percentile intervals of ``bootstrap`` refits (weights kept fixed): resampling the seeds
    with replacement when there are several, else a parametric bootstrap that redraws each point from the
    fitted curve with its ``se`` (or, without ``se``, with the residuals' scatter). The seed bootstrap's
    spread is widened by √(k/(k−1)) (a resampled mean of k seeds varies that much less than the mean);
    with few seeds percentile intervals still undercover somewhat: on ``0.36 + 0.03·d^(−1)`` with
    Gaussian noise at d = 64…2048, 95% intervals of α covered the truth in 88% of datasets with 5 seeds,
    92% with 20, and 93% with one seed and its ``se`` (parametric).

    The result's ``status`` says when the fit failed: α at an end of ``alpha_range`` (``at_bound``; e.g.
    data that grow with x, which the decaying law can only follow with α → 0), more bootstrap resamples at
    an end than the interval's tail (``bootstrap_at_bound``), or a fitted change over the data within the
    points' errors (``not_identifiable``). A failed fit keeps its least-squares numbers but its intervals
    are NaN. ``no_dof`` (as many points as parameters) is a caution only.

    Args:
        x: positive, distinct abscissae (e.g. dimensions d), at least 2 (3 with ``offset``).
        y: values, shape ``(len(x),)``, or with ``seeds_axis`` a 2-D array with the seeds along that axis.
        se: standard errors, broadcastable to ``y`` (non-negative), or ``None``.
        offset: fit ``y∞`` as well.
        seeds_axis: the axis of ``y`` that holds seeds, or ``None`` (one value per point).
        bootstrap: number of resamples (0: no intervals, NaN); at most what the memory budget (half the
            available host memory) holds at 72 bytes per resample.
        level: confidence level of the intervals, in (0, 1).
        seed: random seed of the bootstrap.
        alpha_range: ``(low, high)`` exponents searched by the offset fit.

    Returns:
        A ``PowerLawFit``.

    Raises:
        ValueError: for non-positive or repeated ``x``, too few points, mismatched shapes, negative ``se``,
            non-positive ``y`` without ``offset``, or a bad ``level``/``bootstrap`` (or one over the memory
            budget).

    Examples:
        >>> import numpy as np
        >>> d = np.array([64, 128, 256, 512, 1024, 2048])
        >>> rng = np.random.default_rng(2)
        >>> y = 0.36 + 0.03 * d ** -1.0 + 1e-6 * rng.standard_normal((5, d.size))  # 5 seeds
        >>> fit = fit_power_law(d, y, offset=True, seeds_axis=0, bootstrap=200)
        >>> fit.alpha_ci[0] < 1 < fit.alpha_ci[1] and fit.offset_ci[0] < 0.36 < fit.offset_ci[1]
        True
        >>> print(fit)
        y = y∞ + C·x^(−α): 6 points, χ²/dof = 2.01
          α  = 0.998 [0.987, 1.007]
          C  = 0.0298 [0.0285, 0.0309]
          y∞ = 0.3599997 [0.3599979, 0.3600011]
          95% intervals; weighted least squares (offset: ...); bootstrap over 5 seeds (200 resamples)
    """
    x = np.asarray(_validate.positive_number("x", x), float)
    if x.ndim != 1:
        raise _validate.InputError(f"x must be one-dimensional, got shape {x.shape}")
    if len(np.unique(x)) != x.size:
        raise _validate.InputError(f"x must have distinct values, got {x.tolist()}")
    y = np.asarray(y, float)
    if seeds_axis is None:
        if y.shape != x.shape:
            raise _validate.InputError(f"y must have the shape of x {x.shape} (or pass seeds_axis), got {y.shape}")
        ys = y[None, :]
    else:
        if y.ndim != 2 or not -2 <= seeds_axis < 2:
            raise _validate.InputError(
                f"with seeds_axis, y must be 2-D (seeds × points) and seeds_axis 0 or 1, got shape "
                f"{y.shape} and seeds_axis={seeds_axis}"
            )
        ys = np.moveaxis(y, seeds_axis, 0)
        if ys.shape[1] != x.size:
            raise _validate.InputError(f"y has {ys.shape[1]} points along its non-seed axis, x has {x.size}")
    ses = None
    if se is not None:
        try:
            se_b = np.broadcast_to(np.asarray(se, float), y.shape)
        except ValueError:
            raise _validate.InputError(f"se must broadcast to the shape of y {y.shape}, got {np.shape(se)}") from None
        ses = se_b[None, :] if seeds_axis is None else np.moveaxis(se_b, seeds_axis, 0)
        if np.any(ses[np.isfinite(ses)] < 0):
            raise _validate.InputError("se must be non-negative")
    if not 0 < level < 1:
        raise _validate.InputError(f"level must lie in (0, 1), got {level!r}")
    bootstrap = _validate.within_memory(
        "bootstrap", _validate.non_negative_int("bootstrap", bootstrap), 3 * 3 * 8, "resample"
    )
    lo, hi = (float(a) for a in alpha_range)
    if not 0 < lo < hi:
        raise _validate.InputError(f"alpha_range must be (low, high) with 0 < low < high, got {alpha_range!r}")

    ys = np.where(np.isfinite(ys), ys, np.nan)
    keep = np.isfinite(ys).any(axis=0)
    x, ys = x[keep], ys[:, keep]
    ses = None if ses is None else ses[:, keep]
    minimum = 3 if offset else 2
    if x.size < minimum:
        raise _validate.InputError(
            f"fit_power_law{' with offset' if offset else ''} needs at least {minimum} points with "
            f"finite y, got {x.size}"
        )
    order = np.argsort(x)
    x, ys = x[order], ys[:, order]
    ses = None if ses is None else ses[:, order]

    k = ys.shape[0]
    mean, sigma = _point_stats(x, ys, ses)
    weighted = sigma is not None and bool(np.all(sigma > 0))
    if not offset and np.any(mean <= 0):
        raise _validate.InputError(
            f"y must be positive for the fit without offset (log space), got mean values "
            f"{mean[mean <= 0].tolist()}; use offset=True"
        )
    weights = 1 / sigma**2 if weighted and sigma is not None else np.ones_like(mean)
    # in log space a point's error is σ/y: weights (y/σ)², or none at all for the unweighted fit
    fitter = _OffsetFit(x, weights, (lo, hi)) if offset else _LogFit(x, weights * mean**2 if weighted else weights)
    est = fitter.fit(mean[None, :], polish=True)
    alpha, c, y_inf = (float(v[0]) for v in est)
    curve = y_inf + c * x**-alpha
    dof = x.size - (3 if offset else 2)
    if weighted and dof > 0:
        resid = (np.log(mean) - np.log(curve)) * mean / sigma if not offset else (mean - curve) / sigma
        chi2_dof = float(np.sum(resid**2) / dof)
    else:
        chi2_dof = float("nan")

    how = ("weighted least squares" if weighted else "unweighted least squares") + (
        " (offset: profile over α + linear solve)" if offset else " in log space"
    )
    rng = np.random.default_rng(seed)
    draws = np.empty((0, 3))
    if bootstrap == 0:
        how += "; no bootstrap"
    elif k >= 2:

        def resampled(rows: int) -> np.ndarray:
            idx = rng.integers(0, k, size=(rows, k))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(ys[idx], axis=1)  # (rows, points)

        draws = _bootstrap_fits(fitter, resampled, bootstrap)
        how += f"; bootstrap over {k} seeds ({bootstrap} resamples)"
    else:
        if weighted:
            scale, source = sigma, "se"
        elif dof > 0:
            rel = np.log(mean / curve) if not offset else mean - curve
            scale, source = np.full(x.size, np.sqrt(np.sum(rel**2) / dof)), "the residual scatter"
            if not offset:
                scale = scale * curve  # a relative scatter, as an absolute one
        else:
            scale, source = None, None
        if scale is None:
            how += "; no interval (one seed, no se and no residual degrees of freedom)"
        else:

            def redrawn(rows: int, scale: np.ndarray = scale) -> np.ndarray:
                z = rng.standard_normal((rows, x.size))
                return curve * np.exp(scale / curve * z) if not offset else curve + scale * z

            draws = _bootstrap_fits(fitter, redrawn, bootstrap)
            how += f"; parametric bootstrap from {source} ({bootstrap} resamples)"

    status = FitStatus.of(no_dof=f"{x.size} points for {x.size - dof} parameters" if dof <= 0 else None)
    if offset:
        status = bound_status("α", alpha, draws[:, 0], (lo, hi), level=level) | status
        noise = float(np.median(sigma)) if weighted and sigma is not None else None
        if noise is None and dof > 0:
            noise = float(np.sqrt(np.sum((mean - curve) ** 2) / dof))
        change = abs(c * (x[0] ** -alpha - x[-1] ** -alpha))
        status = identifiable_status([alpha, c, y_inf], change, noise) | status
    if k >= 2 and len(draws):
        # a resampled mean of k seeds varies (k−1)/k times as much as the mean itself: widen to match
        est = np.array([alpha, c, y_inf])
        draws -= est  # in place: no temporaries of the draws' size
        draws *= np.sqrt(k / (k - 1))
        draws += est

    def ci(column: int) -> tuple[float, float]:
        values = draws[:, column][np.isfinite(draws[:, column])] if len(draws) else np.empty(0)
        if not values.size or status.failed:
            return (float("nan"), float("nan"))
        tail = 50 * (1 - level)
        low, high = np.percentile(values, [tail, 100 - tail])
        return (float(low), float(high))

    return PowerLawFit(
        alpha=alpha,
        C=c,
        offset=y_inf if offset else None,
        alpha_ci=ci(0),
        C_ci=ci(1),
        offset_ci=ci(2) if offset else None,
        n=int(x.size),
        chi2_dof=chi2_dof,
        method=how,
        level=float(level),
        draws=draws,
        status=status,
    )


def _bootstrap_fits(fitter: Any, samples: Any, count: int) -> np.ndarray:
    """``count`` refits ``(alpha, C, offset)`` of the rows ``samples(rows)`` draws, in chunks (the same numbers
    as one call: rows are fitted independently and the generator's stream is sequential)."""
    chunks = [
        np.stack(fitter.fit(samples(min(_BOOTSTRAP_CHUNK, count - start))), axis=1)
        for start in range(0, count, _BOOTSTRAP_CHUNK)
    ]
    return np.concatenate(chunks) if chunks else np.empty((0, 3))


def _point_stats(x: np.ndarray, ys: np.ndarray, ses: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Seed mean of each point and its standard error (see ``fit_power_law``); ``None`` if unknown.

    The seeds' variance at each point is smoothed across points by a power law in ``x`` (a least-squares
    fit of log variance on log x, weighted by the degrees of freedom, with the mean bias of a log χ²
    variable removed): with a handful of seeds the raw variances scatter by factors of several, and
    weights 1/σ² taken from them would make the fit and its intervals overconfident.
    """
    from scipy.special import digamma

    k = ys.shape[0]
    finite = np.isfinite(ys)
    m = finite.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(ys, axis=0)
        mc = None if ses is None else np.sqrt(np.nanmean(np.where(finite, ses, np.nan) ** 2, axis=0) / m)
        var = np.nanvar(ys, axis=0, ddof=1) if k >= 2 else np.full(mean.shape, np.nan)
    usable = (m >= 2) & np.isfinite(var) & (var > 0)
    if k < 2 or not usable.any():
        if k >= 2 and np.all(var[m >= 2] == 0) and mc is None:
            return mean, None  # no scatter at all: an unweighted fit
        return mean, mc
    nu = m[usable] - 1.0
    log_var = np.log(var[usable]) - (digamma(nu / 2) - np.log(nu / 2))  # E[log(χ²_ν/ν)] = ψ(ν/2) − log(ν/2)
    lx = np.log(x[usable])
    if usable.sum() >= 3 and np.ptp(lx) > 0:
        slope, intercept = np.polyfit(lx, log_var, 1, w=np.sqrt(nu))
        smooth = np.exp(intercept + slope * np.log(x))
    else:
        smooth = np.full(x.shape, np.exp(np.average(log_var, weights=nu)))
    sigma = np.sqrt(smooth / np.maximum(m, 1))
    return mean, sigma if mc is None else np.fmax(sigma, mc)


class _LogFit:
    """``log y = log C − α log x`` by weighted least squares, for many ``y`` rows at once."""

    def __init__(self, x: np.ndarray, weights: np.ndarray):
        self.lx = np.log(x) - np.log(x).mean()
        self.shift = np.log(x).mean()
        self.w = weights  # 1/σ_log² (σ_log = σ/y), or ones

    def fit(self, ys: np.ndarray, polish: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            ly = np.log(ys)
        w = np.where(np.isfinite(ly), self.w, 0.0)
        ly = np.where(np.isfinite(ly), ly, 0.0)
        s0, s1, s2 = (np.sum(w * self.lx**p, axis=1) for p in (0, 1, 2))
        t0, t1 = np.sum(w * ly, axis=1), np.sum(w * self.lx * ly, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            det = s0 * s2 - s1**2
            slope = (s0 * t1 - s1 * t0) / det
            intercept = (t0 - slope * s1) / s0
        alpha = -slope
        return alpha, np.exp(intercept - slope * self.shift), np.zeros_like(alpha)


class _OffsetFit:
    """``y = y∞ + C·x^(−α)``: for each α a weighted linear solve for ``(y∞, C)``, minimised over α."""

    def __init__(self, x: np.ndarray, weights: np.ndarray, alpha_range: tuple[float, float]):
        self.x0 = x.min()
        self.lr = np.log(x / self.x0)  # u = (x/x0)^(−α) = exp(−α·lr) lies in (0, 1]
        self.w = weights
        self.range = alpha_range

    def _solve(self, ys: np.ndarray, w: np.ndarray, alphas: np.ndarray):
        """ys, w: (rows, points); alphas: (rows, grid) → y_inf, c (scaled), rss, each (rows, grid)."""
        u = np.exp(-alphas[..., None] * self.lr)
        wb, yb = w[:, None, :], ys[:, None, :]
        s0, s1, s2 = np.sum(wb, -1), np.sum(wb * u, -1), np.sum(wb * u * u, -1)
        t0, t1 = np.sum(wb * yb, -1), np.sum(wb * u * yb, -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = (s0 * t1 - s1 * t0) / (s0 * s2 - s1**2)
            y_inf = (t0 - c * s1) / s0
            rss = np.sum(wb * (yb - y_inf[..., None] - c[..., None] * u) ** 2, -1)
        return y_inf, c, np.where(np.isfinite(rss), rss, np.inf)

    def fit(self, ys: np.ndarray, polish: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = np.where(np.isfinite(ys), self.w, 0.0)
        ys = np.where(np.isfinite(ys), ys, 0.0)
        rows = np.arange(ys.shape[0])
        alphas = np.broadcast_to(np.geomspace(*self.range, _GRID_POINTS), (ys.shape[0], _GRID_POINTS))
        for _ in range(_REFINEMENTS):
            rss = self._solve(ys, w, alphas)[2]
            best = np.argmin(rss, axis=1)
            left = alphas[rows, np.maximum(best - 1, 0)]
            right = alphas[rows, np.minimum(best + 1, alphas.shape[1] - 1)]
            alphas = np.geomspace(left, right, _REFINE_POINTS, axis=1)
        y_inf, c, rss = self._solve(ys, w, alphas)
        best = np.argmin(rss, axis=1)
        alpha, y_inf, c = alphas[rows, best], y_inf[rows, best], c[rows, best]
        if polish:
            from scipy.optimize import minimize_scalar

            for i in rows:
                lo, hi = alphas[i, 0], alphas[i, -1]
                if hi <= lo:
                    continue

                def profile(log_a, i=i):
                    return float(self._solve(ys[i : i + 1], w[i : i + 1], np.exp(np.array([[log_a]])))[2][0, 0])

                res = minimize_scalar(
                    profile, bounds=(np.log(lo), np.log(hi)), method="bounded", options={"xatol": 1e-12}
                )
                if res.fun <= rss[i, best[i]]:
                    a = np.exp(np.array([[res.x]]))
                    alpha[i] = a[0, 0]
                    y_inf[i], c[i] = (v[0, 0] for v in self._solve(ys[i : i + 1], w[i : i + 1], a)[:2])
        bad = ~np.isfinite(rss[rows, best])
        alpha, c, y_inf = (np.where(bad, np.nan, v) for v in (alpha, c, y_inf))
        return alpha, c * self.x0**alpha, y_inf


# ----------------------------------------------------------------------------------------------- Datasets


def _config_activation(ds: xr.Dataset) -> str:
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except (TypeError, json.JSONDecodeError):
        return "sign"
    activation = config.get("activation", "sign") if isinstance(config, dict) else "sign"
    return activation if isinstance(activation, str) else "sign"


def _unstack_runs(ds: xr.Dataset, along: str) -> xr.Dataset:
    """Results of an irregular grid (one ``run`` dimension, axes as coordinates) as one dimension per axis."""
    if "run" in ds.dims and along not in ds.dims and along in ds.coords and ds[along].dims == ("run",):
        axes = [name for name, coord in ds.coords.items() if coord.dims == ("run",) and name != "run"]
        ds = ds.drop_vars("run", errors="ignore").set_index(run=axes).unstack("run")
    return ds


def _ok(ds: xr.Dataset, da: xr.DataArray) -> xr.DataArray:
    """``da`` with the runs whose ``status`` is not ``ok`` set to NaN."""
    if "status" in ds:
        da = da.where(ds["status"] == "ok")
    return da


def check_inputs(
    ds: xr.Dataset, var: str, along: str, *, names: dict[str, str] | None = None, minimum: int = 3
) -> None:
    """Raise a ``ValueError`` naming the argument when ``var`` is not a numeric variable of ``ds``, ``along`` is
    not one of its dimensions or coordinates, or ``along`` has fewer than ``minimum`` positive values.

    Args:
        ds: results.
        var: variable name.
        along: scaling axis.
        names: how the errors call the arguments (e.g. ``{"var": "--var", "along": "--along"}``).
        minimum: points needed along the axis.

    Examples:
        >>> import xarray as xr
        >>> check_inputs(xr.Dataset({"risk": ("d", [1.0, 0.5])}, coords={"d": [8, 16]}), "risk", "d")
        Traceback (most recent call last):
        ...
        aejax.InputError: along 'd' has 2 values (8, 16); a scaling fit needs at least 3
    """
    names = {"var": "var", "along": "along", **(names or {})}
    if var not in ds.data_vars:
        raise _validate.InputError(
            f"{names['var']} {var!r} is not a variable of the results; available: "
            f"{', '.join(sorted(map(str, ds.data_vars)))}"
        )
    if ds[var].dtype.kind not in "biuf":
        numeric = sorted(str(name) for name, v in ds.data_vars.items() if v.dtype.kind in "biuf" and along in v.dims)
        raise _validate.InputError(
            f"{names['var']} {var!r} is not numeric (dtype {ds[var].dtype}); a scaling fit needs a numeric "
            f"variable over {along!r}: {', '.join(numeric) or 'the results have none'}"
        )
    if along not in ds[var].dims:
        raise _validate.InputError(
            f"{names['along']} {along!r} is not a dimension of {var!r}; its dimensions: "
            f"{', '.join(map(str, ds[var].dims))}"
        )
    values = np.asarray(ds[along].values)
    if values.dtype.kind not in "iuf" or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise _validate.InputError(
            f"{names['along']} {along!r} must have positive numeric values, got {values.tolist()}"
        )
    if values.size < minimum:
        raise _validate.InputError(
            f"{names['along']} {along!r} has {values.size} values "
            f"({', '.join(f'{v:g}' for v in values)}); a scaling fit needs at least {minimum}"
        )


def _se_of(ds: xr.Dataset, var: str) -> xr.DataArray | None:
    """The Monte Carlo standard error of ``var`` (``risk_se`` for ``risk``, ``<var>_se`` in general)."""
    name = "risk_se" if var == "risk" else f"{var}_se"
    return ds[name] if name in ds.data_vars else None


def extrapolate(
    ds: xr.Dataset,
    var: str = "exact_risk",
    along: str = "d",
    *,
    seeds: str = "seed",
    theory: Any = None,
    activation: str | None = None,
    bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    bootstrap_name: str = "bootstrap",
) -> xr.Dataset:
    """Extrapolate ``var`` to ``along`` → ∞ at every other coordinate (e.g. per rate) and compare with theory.

    At each combination of the remaining coordinates, fits ``var = R∞ + C·along^(−α)`` to the seed mean
    (``fit_power_law`` with ``offset=True``; runs whose ``status`` is not ``ok`` left out; the Monte Carlo
    error ``risk_se`` used for ``risk``, seed scatter otherwise) and compares ``R∞`` with the theory:
    ``theory`` when given, else ``aejax.theory.gaussian_limit(rate, activation)`` at the nominal ``rate``
    coordinate (activation from the results' config unless given), else ``ds["theory"]`` at the largest
    ``along``. A combination that cannot be fitted (e.g. every run failed) gets NaN and is listed in
    the ``skipped`` attribute.

    Args:
        ds: results (``aejax.load_results``) with a dimension ``along``.
        var: the quantity to extrapolate (one value per run).
        along: the size axis.
        seeds: the seed dimension (absent: one run per point, parametric bootstrap).
        theory: the d → ∞ prediction (a number or a DataArray over the remaining coordinates), or ``None``.
        activation: the activation of the Gaussian-limit theory (default: the results' config, else sign).
        bootstrap: bootstrap resamples per fit (see ``fit_power_law``); the draws of every fit are kept, so
            at most what the memory budget (half the available host memory) holds at 96 bytes per resample
            and fit.
        level: confidence level of the intervals.
        seed: random seed of the bootstrap.
        bootstrap_name: how errors call ``bootstrap`` (``--bootstrap`` for the command).

    Returns:
        A Dataset over the remaining coordinates with ``fit_status`` (``"ok"``, the ``FitStatus`` flags, or
        ``"not_fitted"``) and ``fit_note`` (what raised them; a failed fit's intervals are NaN), ``r_inf``,
        ``r_inf_low``, ``r_inf_high``, ``alpha`` (+ ``_low``, ``_high``), ``C`` (+ ``_low``, ``_high``),
        ``chi2_dof``, ``n_points``, ``theory``, ``r_inf_minus_theory``, ``covers`` (whether the interval of
        R∞ contains the theory); the fitted data ``mean`` and ``mean_se`` over ``along``; and the bootstrap
        draws ``draw_alpha``, ``draw_C``, ``draw_r_inf`` over ``draw`` (for bands, ``plot_gap``).

    Examples:
        >>> import numpy as np, xarray as xr
        >>> d, rate, seed = np.array([64, 128, 256, 512]), np.array([0.5, 2.0]), np.arange(4)
        >>> r_gauss = np.array([1 - 1 / np.pi, (np.pi / 2 - 1) / (1 + np.pi / 2)])
        >>> noise = 1e-5 * np.random.default_rng(1).standard_normal((4, 2, 4))
        >>> risk = r_gauss[None, :, None] + 0.05 / d + noise
        >>> ds = xr.Dataset({"exact_risk": (("seed", "rate", "d"), risk)}, coords={"seed": seed, "rate": rate, "d": d})
        >>> out = extrapolate(ds, bootstrap=200)
        >>> out["covers"].values.tolist(), np.round(out["alpha"].values, 1).tolist()
        ([True, True], [1.0, 1.0])
    """
    ds = _unstack_runs(ds, along)
    check_inputs(ds, var, along)
    if not 0 < level < 1:
        raise _validate.InputError(f"level must lie in (0, 1), got {level!r}")
    bootstrap = _validate.non_negative_int("bootstrap", bootstrap)
    da = _ok(ds, ds[var])
    fits = math.prod(size for dim, size in da.sizes.items() if dim not in (along, seeds))
    _validate.within_memory(bootstrap_name, bootstrap, _BYTES_PER_DRAW * fits, "resample")
    traced = [dim for dim in da.dims if dim in TRACE_DIMS]
    if traced:
        raise _validate.InputError(
            f"var {var!r} has a trace dimension {traced[0]!r}; extrapolate a final quantity "
            "(e.g. exact_risk or risk), or use collapse for traces"
        )
    se = _se_of(ds, var)
    has_seeds = seeds in da.dims
    others = [str(dim) for dim in da.dims if dim not in (along, seeds)]
    order = [*others, *([seeds] if has_seeds else []), along]
    da = da.transpose(*order)
    se = None if se is None else se.broadcast_like(da).transpose(*order)
    x = np.asarray(ds[along].values, float)
    shape = tuple(da.sizes[dim] for dim in others)
    coords = {dim: ds[dim].values for dim in others}

    names = [
        "r_inf",
        "r_inf_low",
        "r_inf_high",
        "alpha",
        "alpha_low",
        "alpha_high",
        "C",
        "C_low",
        "C_high",
        "chi2_dof",
        "n_points",
    ]
    out = {name: np.full(shape, np.nan) for name in names}
    mean = np.full((*shape, x.size), np.nan)
    mean_se = np.full((*shape, x.size), np.nan)
    draws = np.full((*shape, bootstrap, 3), np.nan)
    status = np.full(shape, "not_fitted", dtype=object)
    notes = np.full(shape, "", dtype=object)
    skipped, methods = [], set()
    values = da.values
    se_values = None if se is None else se.values
    for index in np.ndindex(*shape):
        y = values[index] if has_seeds else values[index][None, :]
        s = None if se_values is None else (se_values[index] if has_seeds else se_values[index][None, :])
        m, sigma = _point_stats(x, np.where(np.isfinite(y), y, np.nan), s)
        mean[index] = m
        if sigma is not None:
            mean_se[index] = sigma
        try:
            fit = (
                fit_power_law(x, y, s, offset=True, seeds_axis=0, bootstrap=bootstrap, level=level, seed=seed)
                if has_seeds and y.shape[0] > 1
                else fit_power_law(
                    x, y[0], None if s is None else s[0], offset=True, bootstrap=bootstrap, level=level, seed=seed
                )
            )
        except ValueError as err:
            skipped.append(f"{_label(others, coords, index) or 'all'}: {err}")
            continue
        methods.add(fit.method)
        status[index], notes[index] = str(fit.status), "" if fit.status.ok else fit.status.describe()
        row = [
            fit.offset,
            *cast(tuple[float, float], fit.offset_ci),
            fit.alpha,
            *fit.alpha_ci,
            fit.C,
            *fit.C_ci,
            fit.chi2_dof,
            fit.n,
        ]
        for name, value in zip(names, row, strict=True):
            out[name][index] = value
        if len(fit.draws):
            draws[index][: len(fit.draws)] = fit.draws

    theory_values, source = _theory_values(ds, others, coords, shape, along, seeds, theory, activation)
    dims = tuple(others)
    result = xr.Dataset({name: (dims, value) for name, value in out.items()}, coords=coords)
    result["fit_status"] = (dims, status.astype(str))
    result["fit_note"] = (dims, notes.astype(str))
    result["theory"] = (dims, theory_values)
    result["r_inf_minus_theory"] = result["r_inf"] - result["theory"]
    result["covers"] = (result["r_inf_low"] <= result["theory"]) & (result["theory"] <= result["r_inf_high"])
    result["mean"] = ((*dims, along), mean)
    result["mean_se"] = ((*dims, along), mean_se)
    result = result.assign_coords({along: x})
    for i, name in enumerate(("draw_alpha", "draw_C", "draw_r_inf")):
        result[name] = ((*dims, "draw"), draws[..., i])
    described = {
        "r_inf": f"fitted limit of {var} as {along} → ∞",
        "r_inf_low": f"lower end of the {level:.0%} interval of r_inf",
        "r_inf_high": f"upper end of the {level:.0%} interval of r_inf",
        "alpha": f"exponent α of {var} − r_inf ∝ {along}^(−α)",
        "alpha_low": f"lower end of the {level:.0%} interval of alpha",
        "alpha_high": f"upper end of the {level:.0%} interval of alpha",
        "C": f"amplitude C of {var} − r_inf = C·{along}^(−α)",
        "C_low": f"lower end of the {level:.0%} interval of C",
        "C_high": f"upper end of the {level:.0%} interval of C",
        "chi2_dof": "weighted χ² per degree of freedom of the fit",
        "fit_status": "ok, or the flags the fit raised (aejax.scaling.FIT_FLAGS; failures have no interval)",
        "fit_note": "what raised the fit's flags",
        "n_points": f"values of {along} fitted",
        "theory": source,
        "r_inf_minus_theory": "r_inf − theory",
        "covers": "whether [r_inf_low, r_inf_high] contains theory",
        "mean": f"seed mean of {var} (runs with status ok)",
        "mean_se": "standard error of mean (the fit's weights are 1/mean_se²)",
        "draw_alpha": "bootstrap estimates of alpha",
        "draw_C": "bootstrap estimates of C",
        "draw_r_inf": "bootstrap estimates of r_inf",
    }
    for name, text in described.items():
        result[name].attrs["long_name"] = text
    result.attrs.update(
        var=var,
        along=along,
        level=level,
        bootstrap=bootstrap,
        seed=seed,
        method="; ".join(sorted(methods)),
        theory_source=source,
        skipped=json.dumps(skipped),
        seeds=int(da.sizes.get(seeds, 1)),
    )
    return result


def _label(others: list[str], coords: dict[str, np.ndarray], index: tuple[int, ...]) -> str:
    return ", ".join(f"{dim}={_fmt(coords[dim][i])}" for dim, i in zip(others, index, strict=True))


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float, np.integer, np.floating)) else str(value)


def _theory_values(ds, others, coords, shape, along, seeds, theory, activation) -> tuple[np.ndarray, str]:
    if theory is not None:
        if isinstance(theory, xr.DataArray):
            return np.broadcast_to(
                theory.broadcast_like(xr.DataArray(np.zeros(shape), coords=coords, dims=others))
                .transpose(*others)
                .values,
                shape,
            ).astype(float), "theory given by the caller"
        return np.broadcast_to(np.asarray(theory, float), shape).copy(), "theory given by the caller"
    if "rate" in others:
        from aejax.theory import gaussian_limit

        act = activation or _config_activation(ds)
        try:
            limit = np.asarray(gaussian_limit(np.asarray(coords["rate"], float), act), float)
        except (ValueError, TypeError):
            limit = None
        if limit is not None:
            axis = others.index("rate")
            values = np.broadcast_to(np.expand_dims(limit, [i for i in range(len(others)) if i != axis]), shape)
            return values.copy(), f"R_Gauss: aejax.theory.gaussian_limit(rate, {act!r}) at the nominal rate"
    if "theory" in ds.data_vars:
        th = ds["theory"].sel({along: ds[along].max()})
        if seeds in th.dims:
            th = th.median(seeds)
        th = th.broadcast_like(xr.DataArray(np.zeros(shape), coords=coords, dims=others)).transpose(*others)
        return np.asarray(th.values, float), f"the results' theory variable at the largest {along}"
    return np.full(shape, np.nan), "no theory available"


def collapse(
    ds: xr.Dataset, var: str = "risk_trace", along: str = "d", time: str = "tau", *, seeds: str = "seed"
) -> xr.DataArray:
    """Trajectory collapse: how far each size's training curve lies from the largest size's.

    For each value of ``along`` (and each other coordinate), the seed mean of ``var`` (runs with status
    ``ok``) is compared with that of the largest ``along`` over the time axis ``time``: the result is the
    largest absolute difference on the shared time grid (both curves linearly interpolated onto the union
    of their time points inside the range both cover; with a common grid, simply their common points).
    Small values mean the curves collapse when time is measured in ``time``. ``time`` may be a dimension
    of ``var`` or a coordinate that varies with ``along`` (e.g. ``tau(d, step)``); when it is absent,
    ``step`` is used and the ``time`` attribute says so.

    Args:
        ds: results with a trace variable over ``along`` and a time axis.
        var: the traced quantity.
        along: the size axis.
        time: the time axis (``tau``: training time per dimension).
        seeds: the seed dimension, averaged over if present.

    Returns:
        A DataArray ``<var>_collapse`` over ``along`` and the other coordinates (0 at the largest size).

    Examples:
        >>> import numpy as np, xarray as xr
        >>> tau = np.linspace(0, 5, 11)
        >>> curves = np.stack([np.exp(-tau) + 0.1 * np.exp(-tau) * (d == 64) for d in (64, 128, 256)])
        >>> ds = xr.Dataset({"risk_trace": (("d", "tau"), curves)}, coords={"d": [64, 128, 256], "tau": tau})
        >>> collapse(ds).values.round(6).tolist()
        [0.1, 0.0, 0.0]
    """
    ds = _unstack_runs(ds, along)
    check_inputs(ds, var, along, minimum=1)
    da = _ok(ds, ds[var])
    note = ""
    time_coord = (
        time in ds.coords and set(ds[time].dims) <= set(da.dims) and any(dim in TRACE_DIMS for dim in ds[time].dims)
    )
    if time in da.dims or time_coord:
        t = ds[time]
    elif "step" in da.dims:
        note = f"{time!r} is not in the results: compared at equal optimizer step instead"
        time, t = "step", ds["step"]
    else:
        raise _validate.InputError(
            f"time {time!r} is not a dimension or coordinate of {var!r} (dimensions: "
            f"{', '.join(map(str, da.dims))}) and there is no 'step' dimension"
        )
    time_dim = time if time in da.dims else next(dim for dim in t.dims if dim in da.dims and dim in TRACE_DIMS)
    mean = da.mean(seeds) if seeds in da.dims else da
    others = [dim for dim in mean.dims if dim not in (along, time_dim)]
    mean = mean.transpose(*others, along, time_dim)
    tt = t.broadcast_like(mean).transpose(*others, along, time_dim)
    mv, tv = np.asarray(mean.values, float), np.asarray(tt.values, float)
    ref = int(np.argmax(ds[along].values))
    out = np.full(mv.shape[:-1], np.nan)
    for index in np.ndindex(*mv.shape[:-2]):
        for j in range(mv.shape[-2]):
            out[(*index, j)] = _max_abs_difference(tv[index][j], mv[index][j], tv[index][ref], mv[index][ref])
    result = xr.DataArray(
        out, dims=(*others, along), coords={dim: mean[dim].values for dim in (*others, along)}, name=f"{var}_collapse"
    )
    result.attrs.update(
        long_name=f"max over the shared {time} grid of |seed-mean {var}({along}) − seed-mean {var}({along}_max)|",
        description=(
            f"For each {along}, the largest absolute difference between its seed-mean {var} curve and "
            f"that of the largest {along} ({_fmt(ds[along].values[ref])}), over the time points of "
            f"either curve inside the range both cover (linear interpolation between points); runs "
            "whose status is not ok are left out. 0 means a perfect collapse; NaN, no shared time range."
        ),
        reference=float(ds[along].values[ref]),
        time=time,
        var=var,
        along=along,
    )
    if note:
        result.attrs["note"] = note
    return result


def _max_abs_difference(t: np.ndarray, y: np.ndarray, t_ref: np.ndarray, y_ref: np.ndarray) -> float:
    ok, ok_ref = np.isfinite(t) & np.isfinite(y), np.isfinite(t_ref) & np.isfinite(y_ref)
    t, y, t_ref, y_ref = t[ok], y[ok], t_ref[ok_ref], y_ref[ok_ref]
    if not t.size or not t_ref.size:
        return float("nan")
    order, order_ref = np.argsort(t), np.argsort(t_ref)
    t, y, t_ref, y_ref = t[order], y[order], t_ref[order_ref], y_ref[order_ref]
    lo, hi = max(t[0], t_ref[0]), min(t[-1], t_ref[-1])
    if lo > hi:
        return float("nan")
    knots = np.unique(np.concatenate([t, t_ref]))
    knots = knots[(knots >= lo) & (knots <= hi)]
    return float(np.max(np.abs(np.interp(knots, t, y) - np.interp(knots, t_ref, y_ref))))


# ------------------------------------------------------------------------------------------------ figures


def _save_figure(fig: Any, path: str | os.PathLike) -> Path:
    from aejax.plot import pyplot

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png"))
    pyplot().close(fig)
    return path


def _points(result: xr.Dataset, dims: list[str]) -> list[dict[str, Any]]:
    if not dims:
        return [{}]
    stacked = result[dims[0]].values if len(dims) == 1 else None
    if stacked is not None:
        return [{dims[0]: v} for v in stacked]
    grids = np.meshgrid(*[result[dim].values for dim in dims], indexing="ij")
    return [dict(zip(dims, values, strict=True)) for values in zip(*(g.ravel() for g in grids), strict=True)]


def plot_gap(result: xr.Dataset, path: str | os.PathLike) -> Path:
    """Log–log figure of the gap ``var − R∞`` against ``along``, one colour per remaining coordinate (rate):
    the data (seed mean ± standard error; hollow markers: negative gaps, drawn as |gap|), the fitted line
    ``C·along^(−α)`` and its bootstrap band.

    Args:
        result: the Dataset of ``extrapolate``.
        path: image path (written atomically).

    Returns:
        The path written.

    Examples:
        >>> import numpy as np, pathlib, tempfile, xarray as xr
        >>> d = np.array([64, 128, 256, 512])
        >>> y = 0.36 + 0.03 / d + 1e-6 * np.random.default_rng(0).standard_normal((3, 4))
        >>> ds = xr.Dataset({"exact_risk": (("seed", "d"), y)}, coords={"seed": [0, 1, 2], "d": d})
        >>> plot_gap(extrapolate(ds, bootstrap=50), pathlib.Path(tempfile.mkdtemp()) / "gap.png").exists()
        True
    """
    from aejax.plot import pyplot

    plt = pyplot()
    along, var = result.attrs.get("along", "d"), result.attrs.get("var", "risk")
    dims = [str(dim) for dim in result["r_inf"].dims]
    x = result[along].values.astype(float)
    fine = np.geomspace(x.min(), x.max(), 100)
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=110)
    for i, point in enumerate(_points(result, dims)):
        color = f"C{i % 10}"
        sel = result.sel(point) if point else result
        r_inf = float(sel["r_inf"])
        if not np.isfinite(r_inf):
            continue
        gap = sel["mean"].values - r_inf
        se = sel["mean_se"].values
        label = ", ".join(f"{k}={_fmt(v)}" for k, v in point.items()) or var
        failed = _failed(sel)
        label += (
            f": α={float(sel['alpha']):.2f} (fit failed: {sel['fit_status'].item()})"
            if failed
            else f": α={float(sel['alpha']):.2f} [{float(sel['alpha_low']):.2f}, {float(sel['alpha_high']):.2f}]"
        )
        pos = gap > 0
        ax.errorbar(
            x[pos],
            gap[pos],
            yerr=np.where(np.isfinite(se), se, 0)[pos],
            fmt="o",
            color=color,
            ms=4,
            capsize=2,
            label=label,
        )
        if (~pos).any():
            ax.plot(x[~pos], np.abs(gap[~pos]), "o", mfc="none", color=color, ms=4)
        ax.plot(fine, float(sel["C"]) * fine ** -float(sel["alpha"]), "-", color=color, lw=1.2)
        draws = np.stack([sel["draw_alpha"].values, sel["draw_C"].values], axis=1)
        draws = draws[np.isfinite(draws).all(axis=1)]
        if len(draws) and not failed:
            curves = draws[:, 1:2] * fine[None, :] ** -draws[:, 0:1]
            tail = 50 * (1 - float(result.attrs.get("level", 0.95)))
            low, high = np.percentile(curves, [tail, 100 - tail], axis=0)
            ax.fill_between(fine, low, high, color=color, alpha=0.2, lw=0)
    ax.set(xscale="log", yscale="log", xlabel=along, ylabel=f"{var} − R∞ (fitted)")
    ax.set_title(
        f"{var} → R∞ + C·{along}^(−α); bands: {float(result.attrs.get('level', 0.95)):.0%} bootstrap", fontsize=9
    )
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_trajectories(
    ds: xr.Dataset,
    path: str | os.PathLike,
    var: str = "risk_trace",
    along: str = "d",
    time: str = "tau",
    *,
    seeds: str = "seed",
    panels: str = "rate",
) -> Path:
    """Seed-mean ``var`` against ``time`` for every value of ``along``, one panel per value of ``panels``
    (other coordinates: their first value), with the theory (``ds["theory"]``) as a dashed line. Without
    ``time`` in the results, ``step`` is the time axis.

    Args:
        ds: results with a trace variable.
        path: image path (written atomically).
        var: the traced quantity.
        along: one line per value of this axis.
        time: the time axis (``tau``, else ``step``).
        seeds: averaged over.
        panels: one panel per value of this axis (if present).

    Returns:
        The path written.

    Examples:
        >>> import numpy as np, pathlib, tempfile, xarray as xr
        >>> step = np.arange(1, 6)
        >>> ds = xr.Dataset({"risk_trace": (("d", "step"), [np.exp(-step), np.exp(-step / 2)])},
        ...                 coords={"d": [64, 128], "step": step})
        >>> plot_trajectories(ds, pathlib.Path(tempfile.mkdtemp()) / "t.png").exists()
        True
    """
    from aejax.plot import pyplot

    ds = _unstack_runs(ds, along)
    check_inputs(ds, var, along, minimum=1)
    da = _ok(ds, ds[var])
    if time not in da.dims and not (time in ds.coords and set(ds[time].dims) <= set(da.dims)):
        time = "step"
    if time not in da.dims and time not in ds.coords:
        raise _validate.InputError(f"time {time!r} is not a dimension or coordinate of {var!r}")
    mean = da.mean(seeds) if seeds in da.dims else da
    t = ds[time].broadcast_like(mean)
    rest = [dim for dim in mean.dims if dim not in (along, panels) and dim not in TRACE_DIMS]
    first = {dim: 0 for dim in rest}
    mean, t = mean.isel(first), t.isel(first)
    values = ds[panels].values if panels in mean.dims else [None]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(values), figsize=(3.6 * len(values) + 0.6, 3.4), dpi=100, squeeze=False)
    for ax, value in zip(axes[0], values, strict=True):
        m = mean.sel({panels: value}) if value is not None else mean
        tv = t.sel({panels: value}) if value is not None else t
        for k, size in enumerate(ds[along].values):
            ax.plot(
                tv.sel({along: size}).values,
                m.sel({along: size}).values,
                "-",
                lw=1.2,
                color=plt.cm.viridis(k / max(1, ds.sizes[along] - 1)),
                label=f"{along}={_fmt(size)}",
            )
        if "theory" in ds.data_vars:
            th = ds["theory"].isel({d: 0 for d in ds["theory"].dims if d in rest or d == seeds})
            th = th.sel({along: ds[along].max()})
            if value is not None and panels in th.dims:
                th = th.sel({panels: value})
            if th.size == 1:
                ax.axhline(float(th), color="k", ls="--", lw=1, label="theory")
        ax.set(xlabel=time, title=f"{panels}={_fmt(value)}" if value is not None else var)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"seed-mean {var}")
    axes[0][0].legend(fontsize=7)
    note = "" if time != "step" else " (no tau in the results: against step)"
    fig.suptitle(f"{var} against {time} for every {along}{note}", fontsize=9)
    fig.tight_layout()
    return _save_figure(fig, path)


# ------------------------------------------------------------------------------------------------- report

TABLE_HEADER = ["α [CI]", "C", "R∞ [CI]", "R_Gauss", "R∞ − R_Gauss", "covers?", "χ²/dof", "fit"]


def table_rows(result: xr.Dataset) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the scaling table of an ``extrapolate`` result (one row per remaining coordinate).

    The last column is the fit's status (``ok`` or its flags); a failed fit's α and R∞ are printed with
    "(fit failed)" in place of an interval.

    Examples:
        >>> import numpy as np, xarray as xr
        >>> d = np.array([64, 128, 256, 512])
        >>> ds = xr.Dataset({"exact_risk": ("d", 0.36 + 0.03 / d)}, coords={"d": d})
        >>> header, rows = table_rows(extrapolate(ds, theory=0.36, bootstrap=0))
        >>> header[:3], rows[0][2], rows[0][-1]
        (['α [CI]', 'C', 'R∞ [CI]'], '0.36000 [nan, nan]', 'ok')
    """
    dims = [str(dim) for dim in result["r_inf"].dims]
    rows = []
    for point in _points(result, dims):
        sel = result.sel(point) if point else result
        f = {
            name: float(sel[name])
            for name in (
                "alpha",
                "alpha_low",
                "alpha_high",
                "C",
                "r_inf",
                "r_inf_low",
                "r_inf_high",
                "theory",
                "r_inf_minus_theory",
                "chi2_dof",
            )
        }
        covers = (
            "—"
            if not (np.isfinite(f["theory"]) and np.isfinite(f["r_inf_low"]))
            else ("yes" if bool(sel["covers"]) else "no")
        )
        # R∞ to two significant digits of its interval's width (at least 4 decimals)
        width = f["r_inf_high"] - f["r_inf_low"]
        n = max(4, 1 - math.floor(math.log10(width))) if np.isfinite(width) and width > 0 else 5
        failed = _failed(sel)
        rows.append(
            [
                *(_fmt(v) for v in point.values()),
                f"{f['alpha']:.3f} (fit failed)"
                if failed
                else f"{f['alpha']:.3f} [{f['alpha_low']:.3f}, {f['alpha_high']:.3f}]",
                f"{f['C']:.3g}",
                f"{f['r_inf']:.{n}f} (fit failed)"
                if failed
                else f"{f['r_inf']:.{n}f} [{f['r_inf_low']:.{n}f}, {f['r_inf_high']:.{n}f}]",
                f"{f['theory']:.{n}f}",
                f"{f['r_inf_minus_theory']:+.{n}f}",
                covers,
                f"{f['chi2_dof']:.2f}",
                str(sel["fit_status"].item()) if "fit_status" in sel else "—",
            ]
        )
    return [*dims, *TABLE_HEADER], rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table.

    Examples:
        >>> print(markdown(["rate", "α"], [["0.5", "1.0"]]))
        | rate | α |
        |---|---|
        | 0.5 | 1.0 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(
    results: str | os.PathLike,
    var: str = "exact_risk",
    along: str = "d",
    out: str | os.PathLike | None = None,
    *,
    bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the scaling law of a results file and write ``scaling.nc``, ``scaling.md``, ``scaling_gap.png``
    and (with a ``risk_trace``) ``scaling_trajectories.png`` into ``out``: the ``aejax scaling`` command.

    ``scaling.nc`` holds the ``extrapolate`` Dataset plus, when the results have ``risk_trace``, its
    ``collapse`` as ``risk_trace_collapse``. Errors name the command's arguments (``RESULTS``, ``--var``,
    ``--along``).

    Args:
        results: a results file (or a sweep's output directory).
        var: the quantity to extrapolate.
        along: the size axis.
        out: output directory (default: the results file's directory).
        bootstrap: bootstrap resamples per fit (see ``fit_power_law``).
        level: confidence level of the intervals.
        seed: random seed of the bootstrap.

    Returns:
        ``{"header", "rows", "table" (markdown), "result" (Dataset), "files" ({label: path}), "failed"}``:
        ``failed`` lists ``"<combination>: <flags and notes>"`` for every fit that failed (``FitStatus``); the
        command then exits with status 3 after writing the files.

    Examples:
        >>> import numpy as np, pathlib, tempfile, xarray as xr
        >>> from aejax.results import save_results
        >>> d = np.array([64, 128, 256, 512])
        >>> y = 0.36 + 0.03 / d + 1e-6 * np.random.default_rng(0).standard_normal((3, 4))
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> path = save_results(xr.Dataset({"exact_risk": (("seed", "d"), y)}, coords={"seed": [0, 1, 2], "d": d}),
        ...                     folder / "results.nc")
        >>> sorted(report(path, bootstrap=50)["files"])
        ['figure', 'markdown', 'netcdf']
    """
    names = {"var": "--var", "along": "--along"}
    if not 0 < level < 1:
        raise _validate.InputError(f"--level must lie in (0, 1), got {level!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise _validate.InputError(f"--bootstrap must be a non-negative integer, got {bootstrap!r}")
    _validate.within_memory("--bootstrap", bootstrap, _BYTES_PER_DRAW, "resample")  # before reading the file
    results = Path(results)
    try:
        ds = load_results(results)
    except ValueError as err:
        raise _validate.InputError(f"RESULTS: {err}") from None
    ds = _unstack_runs(ds, along)
    check_inputs(ds, var, along, names=names)
    result = extrapolate(ds, var, along, bootstrap=bootstrap, level=level, seed=seed, bootstrap_name="--bootstrap")
    if not np.isfinite(result["r_inf"].values).any():
        reasons = "; ".join(json.loads(result.attrs["skipped"]))
        raise _validate.InputError(f"--var {var!r}: no combination could be fitted: {reasons}")
    out = Path(out) if out is not None else (results if results.is_dir() else results.parent)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    collapsed = None
    trace_var = "risk_trace"
    if trace_var in ds.data_vars and along in ds[trace_var].dims:
        collapsed = collapse(ds, trace_var, along)
        result[collapsed.name] = collapsed
    header, rows = table_rows(result)
    table = markdown(header, rows)
    files["figure"] = plot_gap(result, out / "scaling_gap.png")
    if collapsed is not None:
        files["trajectories"] = plot_trajectories(ds, out / "scaling_trajectories.png", trace_var, along)
    xs = ", ".join(_fmt(v) for v in ds[along].values)
    skipped = json.loads(result.attrs["skipped"])
    text = [
        f"# Scaling of {var} with {along}",
        "",
        f"Results: `{results}`; {along} = {xs}; {result.attrs['seeds']} seed(s).",
        "",
        (
            f"Fit: {var} = R∞ + C·{along}^(−α) at each {', '.join(map(str, result['r_inf'].dims)) or 'point'}; "
            f"{result.attrs['method']}; {level:.0%} percentile intervals. Theory: {result.attrs['theory_source']}."
        ),
        "",
        table,
        "",
    ]
    if skipped:
        text += ["Not fitted: " + "; ".join(skipped), ""]
    dims = [str(dim) for dim in result["r_inf"].dims]
    failed, flagged = [], []
    for point in _points(result, dims):
        sel = result.sel(point) if point else result
        if str(sel["fit_status"].item()) in ("ok", "not_fitted"):
            continue
        line = f"{', '.join(f'{k}={_fmt(v)}' for k, v in point.items()) or 'all'}: {sel['fit_note'].item()}"
        (failed if _failed(sel) else flagged).append(line)
    if failed:
        text += [
            "**The fit failed** (no interval; its R∞ and α are not estimates of the limit): " + "; ".join(failed),
            "",
        ]
    if flagged:
        text += ["Caution: " + "; ".join(flagged), ""]
    if collapsed is not None:
        c_dims = [str(dim) for dim in collapsed.dims]
        c_rows = [
            [*(_fmt(v) for v in point.values()), f"{float(collapsed.sel(point)):.2e}"]
            for point in _points(collapsed.to_dataset(), c_dims)
        ]
        text += [
            f"## Trajectory collapse ({trace_var} against {collapsed.attrs['time']})",
            "",
            collapsed.attrs["description"]
            + (f" Note: {collapsed.attrs['note']}." if "note" in collapsed.attrs else ""),
            "",
            markdown([*c_dims, "max |Δ|"], c_rows),
            "",
        ]
    text += ["Figures: " + ", ".join(f"`{p.name}`" for p in files.values()), ""]
    files["netcdf"] = save_results(result, out / "scaling.nc")
    files["markdown"] = out / "scaling.md"
    atomic_write(files["markdown"], lambda tmp: Path(tmp).write_text("\n".join(text), encoding="utf-8"))
    return {"header": header, "rows": rows, "table": table, "result": result, "files": files, "failed": failed}


# The joint law R(d, τ) = R∞ + A·d^(−α) + B·τ^(−β) lives in its own module, re-exported here.
from aejax._joint_fit import JointFit as JointFit  # noqa: E402
from aejax._joint_fit import extrapolate_joint as extrapolate_joint  # noqa: E402
from aejax._joint_fit import fit_joint as fit_joint  # noqa: E402
from aejax._joint_fit import report_joint as report_joint  # noqa: E402
from aejax._lr_transfer import lr_optimum as lr_optimum  # noqa: E402
from aejax._lr_transfer import transfer_table as transfer_table  # noqa: E402
from aejax._outer_axes import stack_times as stack_times  # noqa: E402
