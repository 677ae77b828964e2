"""Shared numerics: the default float dtype and a fixed trapezoid rule for Gaussian expectations.

The rule integrates against the standard normal density on [−12, 12] with 2001 equispaced nodes.
Trapezoid sums converge exponentially fast for smooth, rapidly decaying integrands, and the fine
spacing (0.012) also resolves the narrow posterior transitions of sparse priors at high SNR, where
Gauss–Hermite nodes would be too sparse.

Examples:
    >>> round(float(np.sum(NORMAL_WEIGHTS * NORMAL_NODES**2)), 9)
    1.0
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax import _validate

_T = np.linspace(-12.0, 12.0, 2001)
NORMAL_NODES = _T
"""Nodes t of the rule (numpy, float64; cast at use)."""
NORMAL_WEIGHTS = np.exp(-(_T**2) / 2) / np.sqrt(2 * np.pi) * (_T[1] - _T[0])
"""Weights φ(t)·Δt, so that sum(w f(t)) ≈ E f(g), g ~ N(0, 1)."""


P_MIN = 1e-12
"""Smallest sparsity the theory accepts. The sparse-prior formulas divide by p (a non-zero
coordinate is ξ/√p), so p = 1e-300 underflows (to 0 in float32) and gives NaN; every prediction has
reached its p → 0 limit to far better than 4 decimals long before 1e-12 (the risk terms are O(p))."""


def check_sparsity(name: str, p: Any) -> Any:
    """``_validate.probability`` plus the floor ``P_MIN`` (concrete values only), as a ValueError naming ``name``."""
    _validate.probability(name, p)
    if _validate.is_concrete(p):
        arr = np.asarray(p, dtype=np.float64)
        if (arr < P_MIN).any():
            raise _validate.InputError(
                f"{name} must be at least {P_MIN:g} (and at most 1): the sparse-prior formulas divide "
                f"by p and every prediction has reached its p -> 0 limit there; got "
                f"{float(arr[arr < P_MIN].ravel()[0]):.6g}"
            )
    return p


def as_float(x: Any) -> jax.Array:
    """``x`` as a jnp array of the default float dtype (float64 when jax_enable_x64 is on)."""
    return jnp.asarray(x, dtype=jax.dtypes.canonicalize_dtype(jnp.float64))
