"""Independent numpy references shared by the theory tests (no aejax code)."""

from __future__ import annotations

import numpy as np


def sample_sparse(rng: np.random.Generator, prior: str, p: float, shape) -> np.ndarray:
    """x = β ξ / sqrt(p): Bernoulli–Gaussian ("bg") or sparse Rademacher ("sr")."""
    beta = rng.random(shape) < p
    xi = rng.standard_normal(shape) if prior == "bg" else rng.choice([-1.0, 1.0], shape)
    return beta * xi / np.sqrt(p)


def haar_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """(n, d) with Haar-distributed orthonormal rows (n <= d)."""
    q, r = np.linalg.qr(rng.standard_normal((d, n)))
    return (q * np.sign(np.diag(r))).T


def haar_tight_frame(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """(n, d) Haar frame sqrt(n/d)·Q (orthonormal columns), then rows normalised (n > d)."""
    q, r = np.linalg.qr(rng.standard_normal((n, d)))
    q = q * np.sign(np.diag(r))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def harmonic_frame(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Exact unit-norm tight frame (BᵀB = n/d I): real harmonic frame, columns randomly signed/permuted."""
    freqs = rng.choice(np.arange(1, n // 2), d // 2, replace=False)
    angles = 2 * np.pi * np.outer(np.arange(n), freqs) / n
    frame = np.sqrt(2 / d) * np.concatenate([np.cos(angles), np.sin(angles)], axis=1)
    return frame[:, rng.permutation(d)] * rng.choice([-1.0, 1.0], d)


def sign(u: np.ndarray) -> np.ndarray:
    return np.where(u >= 0, 1.0, -1.0)


def shallow_gain(r: float) -> float:
    """docs/theory.md §3: A = c B̄ᵀ with c = sqrt(2/π) (r <= 1) or sqrt(π/2)/(r + π/2 − 1) (r > 1)."""
    return np.sqrt(2 / np.pi) if r <= 1 else np.sqrt(np.pi / 2) / (r + np.pi / 2 - 1)


def exact_sign_risk(B: np.ndarray) -> float:
    """docs/theory.md §2 for sign, Σ = I, optimal decoder: 1 − (2/π) tr(B̄ C_ss⁻¹ B̄ᵀ)/d, C_ss = (2/π) arcsin ρ."""
    Bn = B / np.linalg.norm(B, axis=1, keepdims=True)
    rho = np.clip(Bn @ Bn.T, -1.0, 1.0)
    c_ss = 2 / np.pi * np.arcsin(rho)
    np.fill_diagonal(c_ss, 1.0)
    c_xs = np.sqrt(2 / np.pi) * Bn.T
    return 1 - np.trace(c_xs @ np.linalg.solve(c_ss, c_xs.T)) / B.shape[1]
