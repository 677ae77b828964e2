"""Sparse sources (THEORY §4): shape constant κ, rotation and identity encoders, critical sparsity.

Conventions for the tie at u = 0 (a sparse coordinate is exactly 0 with probability 1 − p):

- ``"tied"``: weight-tied decoder A = c Bᵀ, or a symmetric random tie-break with any optimal
  linear decoder: ``R_id = 1 − r p κ``.
- ``"plus_untied"``: sign(0) = +1 with an untied optimal linear decoder, which learns to subtract
  the bits' mean 1 − p: ``R_id = 1 − r κ / (2 − p)``.

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
    abs_mean = 0.0
    for m, s, w in zip(means, stds, weights):
        if s == 0:
            abs_mean += w * abs(m)
        else:
            abs_mean += w * (s * math.sqrt(2 / math.pi) * math.exp(-m * m / (2 * s * s)) + m * math.erf(m / (s * math.sqrt(2))))
    return abs_mean**2  # E ξ² = 1 by construction


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
        raise ValueError(f"r must be <= 1 for the identity encoder (n <= d rows of I), got {r!r}")
    k = kappa(prior)
    p, r = as_float(p), as_float(r)
    gain = p * k if convention == "tied" else k / (2 - p)
    return jnp.where(r <= 1, 1 - r * gain, jnp.nan)


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
