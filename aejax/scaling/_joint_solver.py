"""The joint law's vectorised solver: weighted least squares of its linear part for many resamples and
many exponent pairs (α, β) at once, on a grid refined around the best cell."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

_GRID = 49  # log-spaced grid points per exponent for the estimate
_GRID_BOOTSTRAP = 25  # and for each resample (refined the same way)
_REFINE = 9  # points per exponent in each refinement around the best cell
_REFINEMENTS = 5
PARAMETERS = ("r_inf", "A", "alpha", "B", "beta", "E")


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
