"""The power-law solvers behind ``fit_power_law``: per-point seed statistics, the log-log line and the
offset law's profile over α, each vectorised over many rows (the estimate and every bootstrap resample)."""

from __future__ import annotations

import warnings

import numpy as np

_GRID_POINTS = 121
_REFINE_POINTS = 17
_REFINEMENTS = 4


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
