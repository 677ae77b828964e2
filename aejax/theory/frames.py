"""The leading finite-d excess of a sign autoencoder's frame over R_Gauss(r) at r > 1 (docs/theory.md §12).

With unit rows b̄_i, Gram matrix G = B̄B̄ᵀ (g_ij = b̄_i·b̄_j) and the optimal linear decoder, the exact
risk is ``1 − (2/(πd)) tr(K⁻¹G)`` with ``K = (2/π) arcsin(G)``. Write ``c = π/2 − 1``. Expanding
arcsin around the incoherent limit (g_ij = O(d^(−1/2)) off the diagonal) and the frame operator
B̄ᵀB̄ around ``r·I`` gives, to first order, two positive terms of order 1/d::

    excess ≈ (1/d) [ Σ_{i≠j} (arcsin g_ij − g_ij) g_ij / (r + c)²  +  c ‖B̄ᵀB̄ − r I‖²_F / (r + c)³ ]

(``frame_excess``). The first is the arcsin nonlinearity acting on the off-diagonal correlations
(≈ Σ g_ij⁴/6); the second, Jensen's inequality on the eigenvalues of a frame that is not tight.
For a family of frames each sum is O(1), so the excess is C(r)/d (``finite_d_coefficient``):

- ``"etf"``: an equiangular tight frame, |g_ij|² = (r − 1)/(n − 1). Since Σ_{i≠j} g_ij⁴ ≥
  (Σ_{i≠j} g_ij²)²/(n(n − 1)) and Σ_{i≠j} g_ij² ≥ n(r − 1), this is the smallest first-order
  excess of any unit-norm frame: C = (r − 1)² / (6 (r + c)²) (0.0252 at r = 2).
- ``"random"``: a random unit-norm tight frame, g_ij ≈ N(0, (r − 1)/(rd)): C = (r − 1)² / (2 (r + c)²).
- ``"haar"``: a Haar frame (orthonormal columns) with its rows normalised, as
  ``aejax.model.haar_frame`` with ``row_normalize=True``: the squared row norms before normalising
  have variance 2(r − 1)/(rd), which adds the Jensen term: C = (r − 1)²/(2 (r + c)²) + 2c(r − 1)/(r + c)³.

For r ≤ 1 orthonormal rows reach R_Gauss(r) at every d: C = 0.

Examples:
    >>> round(float(finite_d_coefficient(2.0, "etf")), 3), round(float(finite_d_coefficient(2.0, "haar")), 3)
    (0.025, 0.143)
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax import _validate
from aejax.theory._quad import as_float

FRAMES = ("etf", "random", "haar")
_C = math.pi / 2 - 1  # the sign autoencoder's (π/2 − 1): R_Gauss(r) = c/(r + c) for r > 1


def finite_d_coefficient(r: Any, frame: str = "etf") -> jax.Array:
    """C(r) in risk − R_Gauss(r) ≈ C(r)/d for a family of frames with the optimal linear decoder.

    Args:
        r: rate n/d > 0 (array-like); C = 0 for r ≤ 1.
        frame: ``"etf"`` (equiangular tight frame: the smallest first-order excess of any unit-norm
            frame), ``"random"`` (random unit-norm tight frame) or ``"haar"`` (Haar frame, rows
            normalised).

    Returns:
        C(r), shaped like ``r``.

    Examples:
        >>> round(float(finite_d_coefficient(2.0, "random")), 4)
        0.0757
    """
    _validate.positive_number("r", r)
    _validate.choice("frame", frame, FRAMES)
    r = as_float(r)
    excess = jnp.maximum(r - 1, 0.0)
    arcsin_term = excess**2 / (r + _C) ** 2
    if frame == "etf":
        return arcsin_term / 6
    if frame == "random":
        return arcsin_term / 2
    return arcsin_term / 2 + 2 * _C * excess / (r + _C) ** 3


def frame_excess(B: Any) -> jax.Array:
    """First-order excess over R_Gauss(n/d) of the encoder ``B`` (n × d, rows normalised here) with
    the optimal linear decoder: the two terms in the module docstring, divided by d.

    Accurate to O(d⁻²) for incoherent frames (max |g_ij| → 0); not meant for r ≤ 1, where
    orthonormal rows have no excess.

    Examples:
        >>> import numpy as np
        >>> two_bases = np.vstack([np.eye(4), np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]])
        >>> float(frame_excess(two_bases)) > 0
        True
    """
    B = jnp.asarray(B, jnp.result_type(float))
    if B.ndim != 2:
        raise _validate.InputError(f"B must be an n × d matrix, got shape {B.shape}")
    n, d = B.shape
    r = n / d
    unit = B / jnp.linalg.norm(B, axis=1, keepdims=True)
    off = unit @ unit.T * (1 - jnp.eye(n))
    arcsin_term = jnp.sum((jnp.arcsin(jnp.clip(off, -1, 1)) - off) * off) / (r + _C) ** 2
    frame_operator = unit.T @ unit
    jensen_term = _C * jnp.sum((frame_operator - r * jnp.eye(d)) ** 2) / (r + _C) ** 3
    return (arcsin_term + jensen_term) / d


def paley_etf(d: int) -> jax.Array:
    """The Paley equiangular tight frame of n = 2d unit vectors in R^d (r = 2), for q = 2d − 1 a prime ≡ 1 (mod 4).

    The Paley conference matrix C (order n = q + 1: zero diagonal, C[0, j] = C[j, 0] = 1, and
    C[i, j] = χ(i − j) on F_q with χ the quadratic character) is symmetric with C² = q·I, so
    G = I + C/√q is a Gram matrix of rank d with |g_ij| = 1/√q, the Welch bound: its top-d
    eigenvectors times √2 are the frame (d = 15, 31, 115, 255: q = 29, 61, 229, 509). Built on the
    host in NumPy; ``d`` fixes the shape, so it is not traced.

    Args:
        d: dimension; 2d − 1 must be a prime ≡ 1 (mod 4).

    Returns:
        B (2d × d), unit rows, BᵀB = 2·I, |b_i·b_j| = 1/√(2d − 1) for i ≠ j.

    Examples:
        >>> import numpy as np
        >>> B = np.asarray(paley_etf(15))
        >>> g = B @ B.T
        >>> bool(np.allclose(np.abs(g[~np.eye(30, dtype=bool)]), 1 / np.sqrt(29)))
        True
    """
    d = _validate.positive_int("d", d)
    q = 2 * d - 1
    if q < 5 or q % 4 != 1 or any(q % k == 0 for k in range(2, math.isqrt(q) + 1)):
        raise _validate.InputError(f"d must make 2d − 1 a prime ≡ 1 (mod 4) (d = 3, 7, 15, 31, …), got {d!r}")
    squares = np.zeros(q, bool)
    squares[(np.arange(1, q) ** 2) % q] = True
    chi = np.where(squares, 1.0, -1.0)
    chi[0] = 0.0
    conference = np.ones((q + 1, q + 1))
    conference[0, 0] = 0.0
    conference[1:, 1:] = chi[(np.arange(q)[:, None] - np.arange(q)[None, :]) % q]
    values, vectors = np.linalg.eigh(np.eye(q + 1) + conference / math.sqrt(q))
    frame = vectors[:, np.argsort(values)[-d:]] * math.sqrt(2)
    return jnp.asarray(frame / np.linalg.norm(frame, axis=1, keepdims=True), jnp.result_type(float))


def frame_statistics(B: Any) -> dict[str, float]:
    """How far the unit rows of ``B`` (n × d, n > d) are from an equiangular tight frame.

    A host-side summary in float64 NumPy (Python floats out, so not for use under ``jit``).

    Returns a dict of floats:

    - ``coherence``: max_{i≠j} |g_ij|, and ``welch``: its lower bound √((n − d)/(d(n − 1))), reached
      exactly by equiangular tight frames;
    - ``fourth_ratio``: Σ g⁴ · n(n − 1) / (Σ g²)² over i ≠ j: 1 when all |g_ij| are equal (the
      equality case of the bound that makes the ETF optimal, docs/theory.md §12), 3 for Gaussian g;
    - ``tightness``: ‖B̄ᵀB̄ − rI‖_F (0 for a tight frame) and ``sum_g2_excess``: Σ g²/(n(r − 1)) − 1
      (≥ 0, 0 exactly for tight frames);
    - ``first_order``: d · ``frame_excess(B)``, the first-order prediction of d·(risk − R_Gauss).

    Examples:
        >>> s = frame_statistics(paley_etf(7))
        >>> round(s["fourth_ratio"], 6), round(s["coherence"] - s["welch"], 6), round(s["tightness"], 6)
        (1.0, 0.0, 0.0)
    """
    B = np.asarray(B, np.float64)
    if B.ndim != 2 or B.shape[0] <= B.shape[1]:
        raise _validate.InputError(f"B must be an n × d matrix with n > d, got shape {B.shape}")
    n, d = B.shape
    unit = B / np.linalg.norm(B, axis=1, keepdims=True)
    off = (unit @ unit.T)[~np.eye(n, dtype=bool)]
    sum_g2 = float(np.sum(off**2))
    return {
        "coherence": float(np.max(np.abs(off))),
        "welch": math.sqrt((n - d) / (d * (n - 1))),
        "fourth_ratio": float(np.sum(off**4)) * n * (n - 1) / sum_g2**2,
        "tightness": float(np.linalg.norm(unit.T @ unit - n / d * np.eye(d))),
        "sum_g2_excess": sum_g2 / (n * (n / d - 1)) - 1,
        "first_order": d * float(frame_excess(unit)),
    }
