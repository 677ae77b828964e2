"""Power-law fits ``y = [y∞ +] C·x^(−α)`` with bootstrap intervals: ``fit_power_law`` and its ``PowerLawFit``."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np

from aejax import _validate
from aejax.scaling._solvers import _LogFit, _OffsetFit, _point_stats
from aejax.scaling._status import FitStatus, bound_status, identifiable_status

# Exponents the offset fit searches (a profile over α, refined around its minimum).
ALPHA_RANGE = (1e-2, 10.0)
_BOOTSTRAP_CHUNK = 1024  # resamples fitted at once: bounds the fitter's (resamples × grid × points) arrays


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
    """Fit ``y = C·x^(−α)`` (or, with ``offset``, ``y = y∞ + C·x^(−α)``) by weighted least squares, with
    bootstrap percentile intervals (docs/scaling.md, "How the fit works").

    The points are the values of ``x``; with ``seeds_axis`` the fit is to the seeds' mean (NaN entries,
    e.g. failed runs, left out), weighted by 1/σ² with σ the larger of the seeds' scatter (the variance
    smoothed across points as a power law in x) and the Monte Carlo part of ``se``; with one value per
    point σ is ``se``; without either the fit is unweighted. Without offset it is a line through
    (log x, log y) (``y`` positive); with offset, ``(y∞, C)`` is solved in closed form for each α and α
    (positive: the curve decays to ``y∞``) is searched in ``alpha_range``. Intervals come from refits to
    the seeds resampled with replacement (spread widened by √(k/(k−1))), or with one seed to points
    redrawn from the fitted curve with ``se`` (else the residuals' scatter).

    The result's ``status`` says when the fit failed: α at an end of ``alpha_range`` (``at_bound``, e.g.
    data that grow with x), more resamples at an end than the interval's tail (``bootstrap_at_bound``), or
    a fitted change over the data within the points' errors (``not_identifiable``); a failed fit keeps its
    least-squares numbers but its intervals are NaN. ``no_dof`` (as many points as parameters) is a caution.

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
    x, ys, ses = _shaped(x, y, se, seeds_axis)
    bootstrap, (lo, hi) = _options(level, bootstrap, alpha_range)
    x, ys, ses = _finite_sorted(x, ys, ses, offset)
    k = ys.shape[0]
    mean, sigma = _point_stats(x, ys, ses)
    weighted = sigma is not None and bool(np.all(sigma > 0))
    if not offset and np.any(mean <= 0):
        raise _validate.InputError(
            f"y must be positive for the fit without offset (log space), got mean values "
            f"{mean[mean <= 0].tolist()}; use offset=True"
        )
    sigma = sigma if weighted else None
    weights = 1 / sigma**2 if sigma is not None else np.ones_like(mean)
    # in log space a point's error is σ/y: weights (y/σ)², or none at all for the unweighted fit
    fitter = _OffsetFit(x, weights, (lo, hi)) if offset else _LogFit(x, weights * mean**2 if weighted else weights)
    alpha, c, y_inf = (float(v[0]) for v in fitter.fit(mean[None, :], polish=True))
    curve = y_inf + c * x**-alpha
    dof = x.size - (3 if offset else 2)
    draws, sampled = _bootstrap(fitter, ys, mean, curve, sigma, dof, offset, bootstrap, np.random.default_rng(seed))
    how = ("weighted least squares" if weighted else "unweighted least squares") + (
        " (offset: profile over α + linear solve)" if offset else " in log space"
    )
    estimate = (alpha, c, y_inf)
    status = _status(x, mean, curve, sigma, dof, offset, estimate, draws, (lo, hi), level)
    if k >= 2 and len(draws):
        _widen(draws, np.array(estimate), k)
    return PowerLawFit(
        alpha=alpha,
        C=c,
        offset=y_inf if offset else None,
        alpha_ci=_interval(draws, 0, status, level),
        C_ci=_interval(draws, 1, status, level),
        offset_ci=_interval(draws, 2, status, level) if offset else None,
        n=int(x.size),
        chi2_dof=_chi2_dof(mean, curve, sigma, dof, offset),
        method=how + sampled,
        level=float(level),
        draws=draws,
        status=status,
    )


def _shaped(x: Any, y: Any, se: Any, seeds_axis: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``x`` checked (1-D, positive, distinct); ``y`` and ``se`` checked and shaped (seeds, points)."""
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
    if se is None:
        return x, ys, None
    try:
        se_b = np.broadcast_to(np.asarray(se, float), y.shape)
    except ValueError:
        raise _validate.InputError(f"se must broadcast to the shape of y {y.shape}, got {np.shape(se)}") from None
    ses = se_b[None, :] if seeds_axis is None else np.moveaxis(se_b, seeds_axis, 0)
    if np.any(ses[np.isfinite(ses)] < 0):
        raise _validate.InputError("se must be non-negative")
    return x, ys, ses


def _options(level: float, bootstrap: int, alpha_range: tuple[float, float]) -> tuple[int, tuple[float, float]]:
    """The checked ``level``; the bootstrap count (within the memory budget) and the α range searched."""
    if not 0 < level < 1:
        raise _validate.InputError(f"level must lie in (0, 1), got {level!r}")
    bootstrap = _validate.within_memory(
        "bootstrap", _validate.non_negative_int("bootstrap", bootstrap), 3 * 3 * 8, "resample"
    )
    lo, hi = (float(a) for a in alpha_range)
    if not 0 < lo < hi:
        raise _validate.InputError(f"alpha_range must be (low, high) with 0 < low < high, got {alpha_range!r}")
    return bootstrap, (lo, hi)


def _widen(draws: np.ndarray, estimate: np.ndarray, k: int) -> None:
    """A resampled mean of k seeds varies (k−1)/k times as much as the mean itself: the draws' spread
    about the estimate widened to match, in place (no temporaries of the draws' size)."""
    draws -= estimate
    draws *= np.sqrt(k / (k - 1))
    draws += estimate


def _finite_sorted(
    x: np.ndarray, ys: np.ndarray, ses: np.ndarray | None, offset: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The points with a finite ``y`` (at least 2, 3 with ``offset``), in increasing ``x``."""
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
    return x[order], ys[:, order], None if ses is None else ses[:, order]


def _chi2_dof(mean: np.ndarray, curve: np.ndarray, sigma: np.ndarray | None, dof: int, offset: bool) -> float:
    """Weighted residual χ² per degree of freedom (in log space without offset); NaN unweighted or without dof."""
    if sigma is None or dof <= 0:
        return float("nan")
    resid = (np.log(mean) - np.log(curve)) * mean / sigma if not offset else (mean - curve) / sigma
    return float(np.sum(resid**2) / dof)


def _bootstrap(
    fitter: Any,
    ys: np.ndarray,
    mean: np.ndarray,
    curve: np.ndarray,
    sigma: np.ndarray | None,
    dof: int,
    offset: bool,
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, str]:
    """``count`` refits ``(alpha, C, offset)``: of the seeds resampled with replacement when there are
    several, else of points redrawn from the fitted ``curve`` (with ``sigma``, or the residuals' scatter);
    and how they were made, for the fit's ``method``."""
    k = ys.shape[0]
    if count == 0:
        return np.empty((0, 3)), "; no bootstrap"
    if k >= 2:

        def resampled(rows: int) -> np.ndarray:
            idx = rng.integers(0, k, size=(rows, k))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(ys[idx], axis=1)  # (rows, points)

        return _bootstrap_fits(fitter, resampled, count), f"; bootstrap over {k} seeds ({count} resamples)"
    if sigma is not None:
        scale, source = sigma, "se"
    elif dof > 0:
        rel = np.log(mean / curve) if not offset else mean - curve
        scale, source = np.full(mean.size, np.sqrt(np.sum(rel**2) / dof)), "the residual scatter"
        if not offset:
            scale = scale * curve  # a relative scatter, as an absolute one
    else:
        return np.empty((0, 3)), "; no interval (one seed, no se and no residual degrees of freedom)"

    def redrawn(rows: int) -> np.ndarray:
        z = rng.standard_normal((rows, mean.size))
        return curve * np.exp(scale / curve * z) if not offset else curve + scale * z

    return _bootstrap_fits(fitter, redrawn, count), f"; parametric bootstrap from {source} ({count} resamples)"


def _status(
    x: np.ndarray,
    mean: np.ndarray,
    curve: np.ndarray,
    sigma: np.ndarray | None,
    dof: int,
    offset: bool,
    estimate: tuple[float, float, float],
    draws: np.ndarray,
    bounds: tuple[float, float],
    level: float,
) -> FitStatus:
    """What the fit admits (``fit_power_law``): no freedom; with offset, α or its draws at a bound, or a
    fitted change over the data within the points' errors."""
    status = FitStatus.of(no_dof=f"{x.size} points for {x.size - dof} parameters" if dof <= 0 else None)
    if not offset:
        return status
    alpha, c, y_inf = estimate
    status = bound_status("α", alpha, draws[:, 0], bounds, level=level) | status
    noise = float(np.median(sigma)) if sigma is not None else None
    if noise is None and dof > 0:
        noise = float(np.sqrt(np.sum((mean - curve) ** 2) / dof))
    change = abs(c * (x[0] ** -alpha - x[-1] ** -alpha))
    return identifiable_status([alpha, c, y_inf], change, noise) | status


def _interval(draws: np.ndarray, column: int, status: FitStatus, level: float) -> tuple[float, float]:
    """The percentile interval of one column of the draws; NaN without draws or when the fit failed."""
    values = draws[:, column][np.isfinite(draws[:, column])] if len(draws) else np.empty(0)
    if not values.size or status.failed:
        return (float("nan"), float("nan"))
    tail = 50 * (1 - level)
    low, high = np.percentile(values, [tail, 100 - tail])
    return (float(low), float(high))


def _bootstrap_fits(fitter: Any, samples: Any, count: int) -> np.ndarray:
    """``count`` refits ``(alpha, C, offset)`` of the rows ``samples(rows)`` draws, in chunks (the same numbers
    as one call: rows are fitted independently and the generator's stream is sequential)."""
    chunks = [
        np.stack(fitter.fit(samples(min(_BOOTSTRAP_CHUNK, count - start))), axis=1)
        for start in range(0, count, _BOOTSTRAP_CHUNK)
    ]
    return np.concatenate(chunks) if chunks else np.empty((0, 3))
