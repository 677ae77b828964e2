"""Sparse sources (docs/theory.md §4): shape constant κ, rotation and identity encoders, critical sparsity.

Conventions for the tie at u = 0 (a sparse coordinate is exactly 0 with probability 1 − p):

- ``"tied"``: weight-tied decoder A = c Bᵀ, or a symmetric random tie-break with any optimal
  linear decoder: ``R_id = 1 − r p κ``.
- ``"plus_untied"``: sign(0) = +1 with an untied optimal linear decoder, which learns to subtract
  the bits' mean 1 − p: ``R_id = 1 − r κ / (2 − p)``.

Local stability of the rotation (docs/theory.md §6): a projection u = b·x of a
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

Arguments come in the package order (``aejax.theory``): prior, p, r, then the rest. Functions of the
prior alone (``kappa``, ``fourth_moment``, ``kurtosis_threshold``, ``critical_sparsity``) return Python
floats, constants of a static argument; the others return jax arrays and are jittable in p, r and the
rest (the prior and the convention are static).

Examples:
    >>> round(critical_sparsity("sr", "tied"), 4)
    0.6366
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax import _validate
from aejax.theory._quad import as_float, check_sparsity
from aejax.theory.gaussian import gaussian_limit
from aejax.theory.priors import Prior, resolve_prior

CONVENTIONS = ("tied", "plus_untied")


def kappa(prior: str | Prior) -> float:
    """Shape constant κ = (E|ξ|)² / E ξ² of the non-zero law (2/π for "bg", 1 for "sr").

    Uses the folded-normal mean of each mixture component. A constant of the prior (Python float).

    Examples:
        >>> round(kappa("bg"), 6), kappa("sr")
        (0.63662, 1.0)
    """
    means, stds, weights = resolve_prior(prior).components()
    abs_mean = sum(w * _folded_normal_mean_float(m, s * s) for m, s, w in zip(means, stds, weights, strict=True))
    return float(abs_mean**2)  # E ξ² = 1 by construction


def rotation_risk(r: Any) -> jax.Array:
    """Risk of a random rotation (tight frame for r > 1) with optimal linear decoder, any sparse prior.

    Its projections are asymptotically Gaussian, so this is ``gaussian_limit(r)`` for every p and
    every prior (a function of r alone, hence no prior argument). Jittable.

    Examples:
        >>> round(float(rotation_risk(0.5)), 4)
        0.6817
    """
    return gaussian_limit(r, "sign")


def identity_risk(prior: str | Prior, p: Any, r: Any, convention: str) -> jax.Array:
    """Risk of the identity encoder (n rows of I, r ≤ 1) with the optimal linear decoder, d → ∞.

    ``1 − r p κ`` for ``"tied"`` and ``1 − r κ/(2 − p)`` for ``"plus_untied"`` (module docstring).
    Jittable in p and r (prior and convention static).

    Args:
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        p: sparsity in (0, 1].
        r: rate in (0, 1] (the identity has at most d rows); traced r > 1 gives NaN.
        convention: ``"tied"`` or ``"plus_untied"``.

    Returns:
        The risk, broadcast shape of ``p`` and ``r``.

    Examples:
        >>> round(float(identity_risk("sr", 0.5, 1.0, "plus_untied")), 4)
        0.3333
    """
    k = kappa(prior)
    check_sparsity("p", p)
    _validate.positive_number("r", r)
    _validate.choice("convention", convention, CONVENTIONS)
    if _validate.is_concrete(r) and (np.asarray(r, dtype=np.float64) > 1).any():
        raise _validate.InputError(f"r must be <= 1 for the identity encoder (n <= d rows of I), got {r!r}")
    p, r = as_float(p), as_float(r)
    gain = p * k if convention == "tied" else k / (2 - p)
    return jnp.where(r <= 1, 1 - r * gain, jnp.nan)


def fourth_moment(prior: str | Prior) -> float:
    """E ξ⁴ of the non-zero law (3 for "bg", 1 for "sr"); the source's E x⁴ is ``fourth_moment / p``.

    Examples:
        >>> fourth_moment("bg"), fourth_moment("sr")
        (3.0, 1.0)
    """
    return float(
        sum(
            w * (m**4 + 6 * m * m * s * s + 3 * s**4)
            for m, s, w in zip(*resolve_prior(prior).components(), strict=True)
        )
    )


def excess_kurtosis(prior: str | Prior, p: Any) -> jax.Array:
    """Excess kurtosis ``E x⁴ − 3 = fourth_moment / p − 3`` of one coordinate of the sparse source. Jittable.

    Examples:
        >>> round(float(excess_kurtosis("sr", 0.5)), 4), round(float(excess_kurtosis("bg", 0.5)), 4)
        (-1.0, 3.0)
    """
    fourth = fourth_moment(prior)
    check_sparsity("p", p)
    return fourth / as_float(p) - 3


def kurtosis_correction(prior: str | Prior, p: Any, r: Any, ipr: Any) -> jax.Array:
    """Leading change of an orthogonal-row encoder's risk on a sparse source, against R_Gauss(r).

    Each projection u = b̄·x has excess kurtosis ``excess_kurtosis · Σ_j b̄_j⁴``, so by the
    Edgeworth expansion (E|u|)² ≈ (2/π)(1 − kurtosis · IPR / 12) and the risk rises by
    ``(1 − R_Gauss(r)) · excess_kurtosis · ipr / 12``, where ``ipr`` is the rows' mean Σ_j b̄_ij⁴
    (``aejax.model.inverse_participation_ratio``). Flatter rows pay less on leptokurtic data. Jittable.

    Examples:
        >>> round(float(kurtosis_correction("bg", 0.05, 1.0, 1 / 1024)), 4)
        0.003
    """
    kurtosis = excess_kurtosis(prior, p)
    _validate.positive_number("ipr", ipr, allow_zero=True)
    return (1 - gaussian_limit(r, "sign")) * kurtosis * as_float(ipr) / 12


def rotation_excess(prior: str | Prior, p: Any, r: Any, d: int) -> jax.Array:
    """Leading finite-d excess of a random rotation's risk on a sparse source over R_Gauss(r).

    ``kurtosis_correction`` at the Haar rows' IPR 3/d: ``(1 − R_Gauss(r)) · excess_kurtosis / (4d)``,
    about 0.009 for "bg" at p = 0.05, r = 1, d = 1024, so sparse sources need larger d to show the
    d → ∞ value. Gradient descent on leptokurtic data flattens its rows below that IPR and pays less.
    Jittable in p and r (``d`` is a Python int).

    Examples:
        >>> round(float(rotation_excess("bg", 0.05, 1.0, 1024)), 4)
        0.0089
    """
    resolve_prior(prior)
    _validate.positive_int("d", d)
    return kurtosis_correction(prior, p, r, 3 / d)


def kurtosis_threshold(prior: str | Prior) -> float:
    """Sparsity above which the source is platykurtic, so a rotation encoder is locally unstable.

    ``fourth_moment / 3`` (module docstring): 1/3 for "sr"; 1 for "bg" (Gaussian at p = 1,
    leptokurtic below: gradient descent never leaves the rotation). A constant of the prior.

    Examples:
        >>> round(kurtosis_threshold("sr"), 4), kurtosis_threshold("bg")
        (0.3333, 1.0)
    """
    return fourth_moment(prior) / 3


def partial_identity_risk(prior: str | Prior, p: Any, r: Any, a: Any) -> jax.Array:
    """Risk ``1 − r (E|u|)²`` of the orthogonal encoder with diagonal √a (module docstring), d → ∞.

    Jittable in p, r and a; traced values outside the allowed ranges give NaN.

    Args:
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        p: sparsity in (0, 1].
        r: rate in (0, 1].
        a: squared diagonal weight in [0, 1] (the identity-likeness of the encoder).

    Returns:
        Array of the broadcast shape of ``p``, ``r`` and ``a``.

    Examples:
        >>> [round(float(partial_identity_risk("sr", 0.5, 1.0, a)), 4) for a in (0.0, 0.7, 1.0)]
        [0.3634, 0.3388, 0.5]
    """
    prior = resolve_prior(prior)
    check_sparsity("p", p)
    _validate.positive_number("r", r)
    if _validate.is_concrete((a, r)):
        a_np, r_np = _validate._numbers("a", a), np.asarray(r, dtype=np.float64)
        if not np.isfinite(a_np).all() or ((a_np < 0) | (a_np > 1)).any() or (r_np > 1).any():
            raise _validate.InputError(
                f"a must lie in [0, 1] and r in (0, 1], got a={a_np.tolist()!r}, r={r_np.tolist()!r}"
            )
    p, r, a = as_float(p), as_float(r), as_float(a)
    risk = 1 - r * _gain(prior, p, a)
    return jnp.where((a >= 0) & (a <= 1) & (r <= 1), risk, jnp.nan)


def _gain(prior: Prior, p: jax.Array, a: jax.Array) -> jax.Array:
    """(E|u|)² with u = √a x_1 + √(1 − a) z: a mixture of centred-zero and shifted folded normals."""
    rest = jnp.clip(1 - a, 0.0, 1.0)  # variance of the Gaussian part
    abs_mean = (1 - p) * jnp.sqrt(2 * rest / math.pi)
    for m, s, w in zip(*prior.components(), strict=True):
        mean, var = jnp.sqrt(a / p) * m, a / p * s * s + rest
        abs_mean = abs_mean + p * w * _folded_normal_mean(mean, var)
    return abs_mean**2


_GRID = 2001
_GOLDEN_STEPS = 64  # shrinks the 2/(_GRID - 1) bracket by 0.618^64 ≈ 4e-14


def best_partial_identity(prior: str | Prior, p: Any) -> tuple[jax.Array, jax.Array]:
    """The best diagonal weight a* of ``partial_identity_risk`` at sparsity ``p``, and its gain (E|u|)².

    a* = 0 (the rotation) for p ≤ ``kurtosis_threshold``; for "sr" it grows continuously to 1 at p = 1.
    The risk at rate r ≤ 1 is ``1 − r · gain``. The maximiser is found on a grid of 2001 values of
    a, then refined by a fixed number of golden-section steps between the best point's neighbours;
    jittable in ``p``, which may be an array (each entry is solved independently).

    Returns:
        ``(a*, gain)``, each of the shape of ``p``.

    Examples:
        >>> a, gain = best_partial_identity("sr", 0.5)
        >>> round(float(a), 2), round(float(1 - gain), 4)
        (0.72, 0.3387)
    """
    prior = resolve_prior(prior)
    check_sparsity("p", p)
    p = as_float(p)
    return _best_partial_identity(prior, p)


@functools.partial(jax.jit, static_argnames=("prior",))
def _best_partial_identity(prior: Prior, p: jax.Array) -> tuple[jax.Array, jax.Array]:
    grid = jnp.linspace(0.0, 1.0, _GRID, dtype=p.dtype)
    inv_phi = (math.sqrt(5) - 1) / 2

    def one(q):
        gains = _gain(prior, q, grid)
        best = jnp.argmax(gains)
        lo, hi = grid[jnp.maximum(best - 1, 0)], grid[jnp.minimum(best + 1, _GRID - 1)]

        def step(_, bracket):  # golden-section search for the maximum of the gain on [lo, hi]
            lo, hi = bracket
            x1, x2 = hi - inv_phi * (hi - lo), lo + inv_phi * (hi - lo)
            left = _gain(prior, q, x1) >= _gain(prior, q, x2)
            return jnp.where(left, lo, x1), jnp.where(left, x2, hi)

        lo, hi = jax.lax.fori_loop(0, _GOLDEN_STEPS, step, (lo, hi))
        refined = (lo + hi) / 2
        interior = (best > 0) & (best < _GRID - 1)
        take = interior & (_gain(prior, q, refined) >= gains[best])
        a = jnp.where(take, refined, grid[best])
        return a, _gain(prior, q, a)

    a, gain = jax.vmap(one)(p.ravel())
    return a.reshape(p.shape), gain.reshape(p.shape)


def _folded_normal_mean(mean: jax.Array, var: jax.Array) -> jax.Array:
    """E|N(mean, var)|, including var = 0 (gradient-safe double where)."""
    positive = var > 0
    sd = jnp.sqrt(jnp.where(positive, var, 1.0))
    smooth = sd * math.sqrt(2 / math.pi) * jnp.exp(-(mean**2) / (2 * sd**2)) + mean * jax.scipy.special.erf(
        mean / (sd * math.sqrt(2))
    )
    return jnp.where(positive, smooth, jnp.abs(mean))


def _folded_normal_mean_float(mean: float, var: float) -> float:
    """``_folded_normal_mean`` for Python floats (constants of a prior, usable while tracing)."""
    if var <= 0:
        return abs(mean)
    sd = math.sqrt(var)
    return sd * math.sqrt(2 / math.pi) * math.exp(-mean * mean / (2 * var)) + mean * math.erf(
        mean / (sd * math.sqrt(2))
    )


def critical_sparsity(prior: str | Prior, convention: str) -> float:
    """Sparsity p_c where the identity and a rotation have equal risk (for every r ≤ 1).

    ``2/(πκ)`` (``"tied"``) or ``2 − πκ/2`` (``"plus_untied"``); the identity wins for p > p_c. A value
    ≥ 1 means there is no transition in (0, 1): the rotation wins at every p < 1 (BG: exactly 1).
    A constant of the prior (Python float).

    Examples:
        >>> round(critical_sparsity("sr", "plus_untied"), 4)
        0.4292
    """
    k = kappa(prior)
    _validate.choice("convention", convention, CONVENTIONS)
    return 2 / (math.pi * k) if convention == "tied" else 2 - math.pi * k / 2
