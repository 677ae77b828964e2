"""Sparse sources (THEORY §4): shape constant κ, rotation and identity encoders, critical sparsity.

Conventions for the tie at u = 0 (a sparse coordinate is exactly 0 with probability 1 − p):

- ``"tied"``: weight-tied decoder A = c Bᵀ, or a symmetric random tie-break with any optimal
  linear decoder: ``R_id = 1 − r p κ``.
- ``"plus_untied"``: sign(0) = +1 with an untied optimal linear decoder, which learns to subtract
  the bits' mean 1 − p: ``R_id = 1 − r κ / (2 − p)``.

Local stability of the rotation (not in THEORY §4; derived here): a projection u = b·x of a
sparse source with unit-norm b has excess kurtosis ``k4 Σ_j b_j⁴`` with ``k4 = E ξ⁴ / p − 3``, and by
the Edgeworth expansion ``E|u| ≈ sqrt(2/π) (1 − k4 Σ_j b_j⁴ / 24)``. Concentrating a row (raising
``Σ_j b_j⁴``) therefore raises E|u| (and lowers the risk) exactly when the source is platykurtic,
``p > kurtosis_threshold = E ξ⁴ / 3`` (1/3 for "sr"; ≥ 1 for "bg": never). Below it, a rotation is
locally stable whatever the global comparison with the identity says.

Between the two pure encoders (derived here too): an orthogonal B̄ = √a I + √(1 − a) M with M an
antisymmetric orthogonal matrix with delocalised entries (M = Q J Qᵀ, Q Haar, J = blocks
[[0, 1], [−1, 0]]) keeps the rows orthonormal, so with the tied decoder c B̄ᵀ the risk is exactly
1 − r (E|u|)² with u = √a x_1 + √(1 − a) z, z ~ N(0, 1) as d → ∞ (central limit theorem)
(``partial_identity_risk``; a = 0 is the rotation, a = 1 the identity with symmetric ties). For "sr"
and 1/3 < p < 1 the best a is strictly inside (0, 1) and beats both (``best_partial_identity``).

Example:
    >>> round(critical_sparsity("sr", "tied"), 4)
    0.6366
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize, special

from aejax import _validate
from aejax.theory._quad import as_float
from aejax.theory.gaussian import gaussian_limit
from aejax.theory.priors import Prior, resolve_prior

CONVENTIONS = ("tied", "plus_untied")


def kappa(prior: str | Prior) -> float:
    """Shape constant κ = (E|ξ|)² / E ξ² of the non-zero law (2/π for "bg", 1 for "sr").

    Uses the folded-normal mean of each mixture component.

    Example:
        >>> round(kappa("bg"), 6), kappa("sr")
        (0.63662, 1.0)
    """
    means, stds, weights = resolve_prior(prior).components()
    abs_mean = sum(w * _folded_normal_mean(np.asarray(m), np.asarray(s * s)) for m, s, w in zip(means, stds, weights))
    return float(abs_mean**2)  # E ξ² = 1 by construction


def rotation_risk(r: Any) -> jax.Array:
    """Risk of a random rotation (tight frame for r > 1) with optimal linear decoder, any sparse prior.

    Its projections are asymptotically Gaussian, so this is ``gaussian_limit(r)`` for every p.

    Example:
        >>> round(float(rotation_risk(0.5)), 4)
        0.6817
    """
    return gaussian_limit(r, "sign")


def identity_risk(p: Any, r: Any, prior: str | Prior, convention: str) -> jax.Array:
    """Risk of the identity encoder (n rows of I, r ≤ 1) with the optimal linear decoder, d → ∞.

    ``1 − r p κ`` for ``"tied"`` and ``1 − r κ/(2 − p)`` for ``"plus_untied"`` (module docstring).

    Args:
        p: sparsity in (0, 1].
        r: rate in (0, 1] (the identity has at most d rows); traced r > 1 gives NaN.
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        convention: ``"tied"`` or ``"plus_untied"``.

    Returns:
        The risk, broadcast shape of ``p`` and ``r``.

    Example:
        >>> round(float(identity_risk(0.5, 1.0, "sr", "plus_untied")), 4)
        0.3333
    """
    _validate.probability("p", p)
    _validate.positive_number("r", r)
    _validate.choice("convention", convention, CONVENTIONS)
    if _validate.is_concrete(r) and (np.asarray(r, dtype=np.float64) > 1).any():
        raise _validate.InputError(f"r must be <= 1 for the identity encoder (n <= d rows of I), got {r!r}")
    k = kappa(prior)
    p, r = as_float(p), as_float(r)
    gain = p * k if convention == "tied" else k / (2 - p)
    return jnp.where(r <= 1, 1 - r * gain, jnp.nan)


def fourth_moment(prior: str | Prior) -> float:
    """E ξ⁴ of the non-zero law (3 for "bg", 1 for "sr"); the source's E x⁴ is ``fourth_moment / p``.

    Example:
        >>> fourth_moment("bg"), fourth_moment("sr")
        (3.0, 1.0)
    """
    return float(sum(w * (m**4 + 6 * m * m * s * s + 3 * s**4) for m, s, w in zip(*resolve_prior(prior).components())))


def excess_kurtosis(p: Any, prior: str | Prior) -> jax.Array:
    """Excess kurtosis ``E x⁴ − 3 = fourth_moment / p − 3`` of one coordinate of the sparse source.

    Example:
        >>> round(float(excess_kurtosis(0.5, "sr")), 4), round(float(excess_kurtosis(0.5, "bg")), 4)
        (-1.0, 3.0)
    """
    _validate.probability("p", p)
    return fourth_moment(prior) / as_float(p) - 3


def kurtosis_correction(p: Any, r: Any, prior: str | Prior, ipr: Any) -> jax.Array:
    """Leading change of an orthogonal-row encoder's risk on a sparse source, against R_Gauss(r).

    Each projection u = b̄·x has excess kurtosis ``excess_kurtosis · Σ_j b̄_j⁴``, so by the
    Edgeworth expansion (E|u|)² ≈ (2/π)(1 − kurtosis · IPR / 12) and the risk rises by
    ``(1 − R_Gauss(r)) · excess_kurtosis · ipr / 12``, where ``ipr`` is the rows' mean Σ_j b̄_ij⁴
    (``aejax.model.inverse_participation_ratio``). Flatter rows pay less on leptokurtic data.

    Example:
        >>> round(float(kurtosis_correction(0.05, 1.0, "bg", 1 / 1024)), 4)
        0.003
    """
    return (1 - gaussian_limit(r, "sign")) * excess_kurtosis(p, prior) * as_float(ipr) / 12


def rotation_excess(p: Any, r: Any, d: int, prior: str | Prior) -> jax.Array:
    """Leading finite-d excess of a random rotation's risk on a sparse source over R_Gauss(r).

    ``kurtosis_correction`` at the Haar rows' IPR 3/d: ``(1 − R_Gauss(r)) · excess_kurtosis / (4d)``,
    about 0.009 for "bg" at p = 0.05, r = 1, d = 1024, so sparse sources need larger d to show the
    d → ∞ value. Gradient descent on leptokurtic data flattens its rows below that IPR and pays less.

    Example:
        >>> round(float(rotation_excess(0.05, 1.0, 1024, "bg")), 4)
        0.0089
    """
    _validate.positive_int("d", d)
    return kurtosis_correction(p, r, prior, 3 / d)


def kurtosis_threshold(prior: str | Prior) -> float:
    """Sparsity above which the source is platykurtic, so a rotation encoder is locally unstable.

    ``fourth_moment / 3`` (module docstring): 1/3 for "sr"; 1 for "bg" (Gaussian at p = 1,
    leptokurtic below: gradient descent never leaves the rotation).

    Example:
        >>> round(kurtosis_threshold("sr"), 4), kurtosis_threshold("bg")
        (0.3333, 1.0)
    """
    return fourth_moment(prior) / 3


def partial_identity_risk(p: Any, a: Any, r: Any, prior: str | Prior) -> np.ndarray:
    """Risk ``1 − r (E|u|)²`` of the orthogonal encoder with diagonal √a (module docstring), d → ∞.

    Args:
        p: sparsity in (0, 1].
        a: squared diagonal weight in [0, 1] (the identity-likeness of the encoder).
        r: rate in (0, 1].
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.

    Returns:
        Array of the broadcast shape of ``p``, ``a`` and ``r``.

    Example:
        >>> [round(float(partial_identity_risk(0.5, a, 1.0, "sr")), 4) for a in (0.0, 0.7, 1.0)]
        [0.3634, 0.3388, 0.5]
    """
    _validate.probability("p", p)
    _validate.positive_number("r", r)
    p, a, r = (np.asarray(v, dtype=np.float64) for v in (p, a, r))
    if ((a < 0) | (a > 1)).any() or (r > 1).any():
        raise _validate.InputError(f"a must lie in [0, 1] and r in (0, 1], got a={a.tolist()!r}, r={r.tolist()!r}")
    rest = 1 - a  # variance of the Gaussian part
    abs_mean = (1 - p) * np.sqrt(2 * rest / math.pi)
    for m, s, w in zip(*resolve_prior(prior).components()):
        mean, var = np.sqrt(a / p) * m, a / p * s * s + rest
        abs_mean = abs_mean + p * w * _folded_normal_mean(mean, var)
    return 1 - r * abs_mean**2


def best_partial_identity(p: float, prior: str | Prior) -> tuple[float, float]:
    """The best diagonal weight a* of ``partial_identity_risk`` at sparsity ``p``, and its gain (E|u|)².

    a* = 0 (the rotation) for p ≤ ``kurtosis_threshold``; for "sr" it grows continuously to 1 at p = 1.
    The risk at rate r ≤ 1 is ``1 − r · gain``.

    Example:
        >>> a, gain = best_partial_identity(0.5, "sr")
        >>> round(a, 2), round(1 - gain, 4)
        (0.72, 0.3387)
    """
    _validate.probability("p", p)
    grid = np.linspace(0.0, 1.0, 2001)
    risks = partial_identity_risk(p, grid, 1.0, prior)
    best = int(np.argmin(risks))
    a = float(grid[best])
    if 0 < best < grid.size - 1:  # interior: refine between the grid neighbours
        result = optimize.minimize_scalar(lambda v: float(partial_identity_risk(p, v, 1.0, prior)),
                                          bounds=(grid[best - 1], grid[best + 1]), method="bounded",
                                          options={"xatol": 1e-10})
        a = float(result.x) if result.fun <= risks[best] else a
    return a, float(1 - partial_identity_risk(p, a, 1.0, prior))


def _folded_normal_mean(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """E|N(mean, var)|, including var = 0."""
    sd = np.sqrt(var)
    safe = np.where(sd > 0, sd, 1.0)
    smooth = sd * np.sqrt(2 / math.pi) * np.exp(-mean**2 / (2 * safe**2)) + mean * special.erf(mean / (safe * math.sqrt(2)))
    return np.where(sd > 0, smooth, np.abs(mean))


def critical_sparsity(prior: str | Prior, convention: str) -> float:
    """Sparsity p_c where the identity and a rotation have equal risk (for every r ≤ 1).

    ``2/(πκ)`` (``"tied"``) or ``2 − πκ/2`` (``"plus_untied"``); the identity wins for p > p_c. A value
    ≥ 1 means there is no transition in (0, 1): the rotation wins at every p < 1 (BG: exactly 1).

    Example:
        >>> round(critical_sparsity("sr", "plus_untied"), 4)
        0.4292
    """
    _validate.choice("convention", convention, CONVENTIONS)
    k = kappa(prior)
    return 2 / (math.pi * k) if convention == "tied" else 2 - math.pi * k / 2
