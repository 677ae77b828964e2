"""The output side of the 1-bit code: a Gaussian pre-activation observed through its sign.

Model: ``z = w + sqrt(τ) ε`` with ε ~ N(0, 1) independent of the message w, and ``s = sign(z)``.
Given (w, s), z is a normal N(w, τ) truncated to the half-line of sign s; with ``a = s w / sqrt(τ)``
and the inverse Mills ratio ``λ(a) = φ(a)/Φ(a)``:

    E[z | w, s]   = w + s sqrt(τ) λ(a)
    Var(z | w, s) = τ (1 − a λ(a) − λ(a)²)

When ``Var z = 1`` and w ~ N(0, 1 − τ) (the Bayes-consistent message of precision 1/τ), averaging the
variance over s gives the closed form used by the state evolution:
``E Var(z | w, s) = τ (1 − E[φ(a)² / (Φ(a) Φ(−a))])`` with a = w/sqrt(τ) ~ N(0, (1 − τ)/τ).

Examples:
    >>> round(float(sign_channel_mmse(1.0)), 4)  # no message: 1 − 2/π
    0.3634
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr

from aejax import _validate
from aejax.theory._quad import NORMAL_NODES, as_float

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _inverse_mills(a: jax.Array) -> jax.Array:
    return jnp.exp(-0.5 * a**2 - _LOG_SQRT_2PI - log_ndtr(a))


def sign_posterior(s: Any, mean: Any, precision: Any) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and variance of z ~ N(mean, 1/precision) given ``s = sign(z)``. Jittable.

    Args:
        s: observed signs (±1).
        mean: message mean w (broadcasts).
        precision: message precision 1/τ > 0 (broadcasts).

    Returns:
        ``(E[z | w, s], Var(z | w, s))``, broadcast shape.

    Examples:
        >>> m, v = sign_posterior(1.0, 0.0, 1.0)  # half-normal: sqrt(2/π), 1 − 2/π
        >>> round(float(m), 4), round(float(v), 4)
        (0.7979, 0.3634)
    """
    s, mean, tau = as_float(s), as_float(mean), 1 / as_float(precision)
    a = s * mean / jnp.sqrt(tau)
    lam = _inverse_mills(a)
    var = tau * jnp.clip(1 - a * lam - lam**2, jnp.finfo(lam.dtype).eps, 1.0)
    return mean + s * jnp.sqrt(tau) * lam, var


def sign_channel_mmse(precision: Any) -> jax.Array:
    """``E Var(z | w, s)`` for unit-variance z, a Bayes-consistent message of the given precision.

    Args:
        precision: message precision γ = 1/τ ≥ 1 (γ = 1: no message; validated when concrete).

    Returns:
        The mmse, in (0, 1 − 2/π], shaped like ``precision``.

    Examples:
        >>> round(float(sign_channel_mmse(100.0)), 5)  # ≈ τ for a sharp message
        0.00928
    """
    if _validate.is_concrete(precision) and not (np.asarray(precision, dtype=np.float64) >= 1).all():
        raise _validate.InputError(f"precision must be >= 1 (z has unit variance), got {precision!r}")
    tau = 1 / as_float(precision)
    spread = jnp.sqrt((1 - tau) / tau)  # standard deviation of a = w / sqrt(τ)
    # integrate on a = scale·t: scale = spread when a is narrow, 1 when the integrand (width ~3) is
    scale = jnp.minimum(spread, 1.0)[..., None]
    ratio = jnp.minimum(1.0, 1 / spread)[..., None]  # scale / spread, finite at spread = 0
    t = as_float(NORMAL_NODES)
    a = scale * t
    weights = ratio * jnp.exp(-0.5 * (ratio * t) ** 2 - _LOG_SQRT_2PI) * (t[1] - t[0])
    dip = jnp.exp(-(a**2) - 2 * _LOG_SQRT_2PI - log_ndtr(a) - log_ndtr(-a))
    return tau * (1 - jnp.sum(weights * dip, axis=-1))
