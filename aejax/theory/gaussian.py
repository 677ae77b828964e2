"""Gaussian-source baselines (docs/theory.md §3): the sign autoencoder's limit, Shannon and PCA.

Examples:
    >>> round(float(gaussian_limit(1.0)), 4)
    0.3634
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax import _validate
from aejax.theory._quad import NORMAL_NODES, NORMAL_WEIGHTS, as_float

_CLOSED_FORMS = {
    "sign": (math.sqrt(2 / math.pi), 1.0),
    "relu": (0.5, 0.5 - 1 / (2 * math.pi)),
    "helu": (0.5, 0.5 - 1 / (2 * math.pi)),  # HeLU's forward pass is relu
    "linear": (1.0, 1.0),
}
_BY_QUADRATURE = {"tanh": jnp.tanh}


def activation_moments(activation: str | Callable[[jax.Array], jax.Array] = "sign") -> tuple[float, float]:
    """``(μ1, v)`` with μ1 = E[g σ(g)] and v = Var σ(g), g ~ N(0, 1).

    Closed forms for sign, relu, helu (forward = relu) and linear; for tanh and any callable ``σ(u)``
    the fine trapezoid rule of ``_quad`` (spectrally accurate for smooth σ, error about 1e-4 at a
    kink or a jump).

    Args:
        activation: a name (sign, relu, helu, linear, tanh) or an entrywise callable.

    Returns:
        ``(μ1, v)`` as Python floats (computed eagerly, so usable inside jit).

    Examples:
        >>> [round(m, 4) for m in activation_moments("relu")]
        [0.5, 0.3408]
    """
    if isinstance(activation, str):
        if activation in _CLOSED_FORMS:
            return _CLOSED_FORMS[activation]
        if activation not in _BY_QUADRATURE:
            allowed = ", ".join(sorted([*_CLOSED_FORMS, *_BY_QUADRATURE]))
            raise _validate.InputError(f"unknown activation {activation!r}; allowed: {allowed} or a callable")
        activation = _BY_QUADRATURE[activation]
    if not callable(activation):
        raise _validate.InputTypeError(f"activation must be a name or a callable, got {activation!r}")
    g, w = NORMAL_NODES, NORMAL_WEIGHTS
    with jax.ensure_compile_time_eval():  # constants of σ: computed eagerly, even while tracing
        values = np.asarray(activation(jnp.asarray(g)), dtype=np.float64)
    mu1 = float(np.sum(w * g * values))
    mean = float(np.sum(w * values))
    var = float(np.sum(w * values**2)) - mean**2
    if not var > 0:
        raise _validate.InputError(f"activation {activation!r} is constant on Gaussian input (Var σ(g) = {var:.3g})")
    return mu1, var


def gaussian_limit(r: Any, activation: str | Callable[[jax.Array], jax.Array] = "sign") -> jax.Array:
    """Risk of the rotation / tight-frame structure on N(0, I) data, d → ∞ (docs/theory.md §3).

    Orthogonal rows for r ≤ 1, an incoherent unit-norm tight frame for r > 1, optimal linear decoder:
    ``1 − r μ1²/v`` (r ≤ 1) and ``(v − μ1²)/(μ1²(r − 1) + v)`` (r > 1). For sign this is the optimum
    ``R_Gauss(r)`` (1 − 2r/π, then (π/2 − 1)/(r + π/2 − 1)). For other activations it is only the risk
    *of that structure*, not an optimum: for relu at r > 1, antipodal pairs ±b measure u exactly and
    beat it (risk 0 at r ≥ 2).

    Args:
        r: rate n/d > 0 (array-like; validated when concrete).
        activation: see ``activation_moments``.

    Returns:
        The risk, shaped like ``r``.

    Examples:
        >>> round(float(gaussian_limit(2.0)), 4)
        0.222
    """
    _validate.positive_number("r", r)
    mu1, var = activation_moments(activation)
    return _structure_risk(as_float(r), mu1**2 / var)


# The closed forms below compile as one program each (per shape of r): evaluated eagerly, each of their
# jax.numpy operations compiled a program of its own, about 20 ms each on XLA:CPU, and a sweep's theory
# column and figure compiled 20 of them (0.5 s of a cold 7.6 s command at d = 128).
@jax.jit
def _structure_risk(r: jax.Array, snr: jax.Array) -> jax.Array:
    return jnp.where(r <= 1, 1 - r * snr, (1 - snr) / (snr * (r - 1) + 1))


@jax.jit
def _shannon(r: jax.Array) -> jax.Array:
    return 2.0 ** (-2 * r)


@jax.jit
def _pca_isotropic(r: jax.Array) -> jax.Array:
    return jnp.maximum(0.0, 1 - r)


def shannon_limit(r: Any) -> jax.Array:
    """Distortion-rate bound of a unit Gaussian at r bits per coordinate: ``2^(−2r)``.

    Examples:
        >>> float(shannon_limit(1.0))
        0.25
    """
    _validate.positive_number("r", r)
    return _shannon(as_float(r))


def pca_risk(r: Any, spectrum: Any = None) -> jax.Array:
    """Risk of the best rank-n linear autoencoder (PCA, no quantisation), n = round(r d).

    Isotropic data: ``max(0, 1 − r)``. With a covariance spectrum (d eigenvalues): the sum of the
    d − n smallest eigenvalues, divided by d.

    Args:
        r: rate > 0 (array-like; validated when concrete).
        spectrum: optional ``(d,)`` eigenvalues of Σ (non-negative).

    Returns:
        The risk, shaped like ``r``.

    Examples:
        >>> float(pca_risk(0.5, spectrum=[4.0, 2.0, 1.0, 1.0]))
        0.5
    """
    _validate.positive_number("r", r)
    r = as_float(r)
    if spectrum is None:
        return _pca_isotropic(r)
    _validate.positive_number("spectrum", spectrum, allow_zero=True)
    eig = jnp.sort(as_float(spectrum).ravel())
    d = eig.shape[0]
    tail = jnp.concatenate([jnp.zeros(1, eig.dtype), jnp.cumsum(eig)])
    n = jnp.clip(jnp.round(r * d), 0, d).astype(jnp.int32)
    return tail[d - n] / d
