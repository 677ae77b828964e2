"""State evolution of the multi-layer VAMP decoder of the 1-bit code (see ``decoder``).

The decoder alternates an entrywise sign-channel denoiser on z = B̄x, a linear (LMMSE) step with B̄,
and the entrywise prior denoiser on x. In the Bayes-matched setting each step is summarised by one
precision, and for B̄ with orthonormal rows (r ≤ 1) or a unit-norm tight frame B̄ᵀB̄ = r I (r > 1) the
linear step has closed forms, because B̄ᵀB̄ has eigenvalue λ = max(r, 1) on a fraction f = min(r, 1)
of the d directions and 0 elsewhere. One layer t, starting from γ1z = γ2x = 1 (no information):

    E1z = sign_channel_mmse(γ1z),           γ2z = 1/E1z − γ1z        (re-read s)
    E2x = f/(λγ2z + γ2x) + (1 − f)/γ2x,     γ1x = 1/E2x − γ2x        (linear step → x)
    R_t = mmse_prior(γ1x),                  γ2x = 1/R_t − γ1x        (prior denoiser: layer output)
    γ1z = (λ − 1) γ2z + γ2x                                          (linear step → z)

R_t is the risk of the estimate after layer t. Precisions are clipped to [1e-10, 1/sqrt(eps)] so that exact
recovery (R_t → 0, reached e.g. by "sr" at small p) stays finite. Layer 1 is exactly the shallow decoder followed by
the posterior-mean denoiser: γ2z = 2/(π − 2) and E2x = R_Gauss(r), so γ1x is the effective SNR γ(r)
and R_1 = ``denoiser_risk``. For Gaussian data (bg, p = 1) at r ≤ 1 nothing improves on R_Gauss
(γ2x stays 1); at r > 1 the extra rows make the decoder beat the linear one.

Examples:
    >>> risks = state_evolution("sr", 0.1, 1.0, 3)
    >>> bool(risks[0] > risks[1] > risks[2])
    True
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from aejax import _validate
from aejax.theory._quad import as_float, check_sparsity
from aejax.theory.priors import Prior, mmse, resolve_prior
from aejax.theory.sign_channel import sign_channel_mmse


def _layer(state: tuple[jax.Array, jax.Array], prior: Prior, p: jax.Array, r: jax.Array):
    g1z, g2x = state
    low, high = precision_bounds(g1z.dtype)
    lam, frac = jnp.maximum(r, 1.0), jnp.minimum(r, 1.0)
    g2z = jnp.clip(1 / sign_channel_mmse(g1z) - g1z, low, high)
    g1x = jnp.clip(1 / (frac / (lam * g2z + g2x) + (1 - frac) / g2x) - g2x, low, high)
    risk = mmse(prior, p, g1x)
    g2x = jnp.clip(1 / risk - g1x, low, high)
    g1z = jnp.clip((lam - 1) * g2z + g2x, 1.0, high)  # ≥ 1: z has unit variance
    return (g1z, g2x), risk


def precision_bounds(dtype: Any) -> tuple[float, float]:
    """Clip range for message precisions: (1e-10, 1/sqrt(eps)).

    The cap keeps exact recovery (risk → 0) finite and bounds the cancellation in the extrinsic
    updates ``(η x̂ − γ r)/(η − γ)`` to about sqrt(eps) (3e-4 in float32, 1.5e-8 in float64).
    """
    return 1e-10, float(jnp.finfo(dtype).eps) ** -0.5


def _check(prior: str | Prior, p: Any, r: Any) -> tuple[Prior, jax.Array, jax.Array]:
    prior = resolve_prior(prior)
    check_sparsity("p", p)
    _validate.positive_number("r", r)
    p, r = jnp.broadcast_arrays(as_float(p), as_float(r))
    return prior, p, r


@functools.partial(jax.jit, static_argnames=("prior", "layers"))
def _run(prior: Prior, p: jax.Array, r: jax.Array, layers: int) -> jax.Array:
    start = (jnp.ones_like(p), jnp.ones_like(p))
    _, risks = jax.lax.scan(lambda s, _: _layer(s, prior, p, r), start, None, length=layers)
    return jnp.moveaxis(risks, 0, -1)


def state_evolution(prior: str | Prior, p: Any, r: Any, layers: int) -> jax.Array:
    """Predicted risk of the multi-layer decoder after each of layers 1..``layers``.

    Args:
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        p: sparsity in (0, 1].
        r: rate > 0 (orthonormal rows for r ≤ 1, unit-norm tight frame for r > 1).
        layers: number of layers ≥ 1.

    Returns:
        Array of shape ``broadcast(p, r).shape + (layers,)``; entry t − 1 is the risk after layer t.

    Examples:
        >>> r1 = state_evolution("bg", 0.3, 0.5, 1)[0]
        >>> from aejax.theory.denoiser import denoiser_risk
        >>> bool(abs(r1 - denoiser_risk("bg", 0.3, 0.5)) < 1e-5)
        True
    """
    prior, p, r = _check(prior, p, r)
    return _run(prior, p, r, _validate.positive_int("layers", layers))


@functools.partial(jax.jit, static_argnames=("prior", "max_layers"))
def _fixed_point(prior: Prior, p: jax.Array, r: jax.Array, tol: jax.Array, max_layers: int):
    def not_done(carry):
        _, risk, change, t = carry
        return (t < max_layers) & jnp.any(change > tol * risk)

    def body(carry):
        state, risk, _, t = carry
        state, new = _layer(state, prior, p, r)
        return state, new, jnp.abs(new - risk), t + 1

    ones = jnp.ones_like(p)
    _, risk, _, t = jax.lax.while_loop(not_done, body, ((ones, ones), ones, ones, jnp.asarray(0)))
    return risk, t


def state_evolution_fixed_point(
    prior: str | Prior, p: Any, r: Any, *, tol: float = 1e-7, max_layers: int = 2000
) -> jax.Array:
    """Risk at the fixed point of ``state_evolution``, iterated from the uninformative start.

    Stops when no entry's risk changes by more than ``tol`` (relative) in one layer, or after
    ``max_layers`` layers. A ``tol`` below 8 ulp of the working dtype (8·eps: about 1e-6 in float32)
    is raised to it: there the iteration ends in a rounding-level cycle and would never stop. This is the
    decoder's limit; it is the Bayes-optimal risk of the 1-bit code
    when the SE has a unique fixed point (no first-order transition).

    Args:
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        p: sparsity in (0, 1].
        r: rate > 0.
        tol: relative change per layer at which to stop.
        max_layers: cap on the number of layers.

    Returns:
        The fixed-point risk, broadcast shape of ``p`` and ``r``.

    Examples:
        >>> bool(state_evolution_fixed_point("bg", 1.0, 2.0) < 0.2220)  # beats R_Gauss(2) = 0.2220
        True
    """
    prior, p, r = _check(prior, p, r)
    _validate.positive_number("tol", tol)
    tol_floored = jnp.maximum(as_float(tol), 8 * float(jnp.finfo(p.dtype).eps))
    return _fixed_point(prior, p, r, tol_floored, _validate.positive_int("max_layers", max_layers))[0]


@functools.partial(jax.jit, static_argnames=("prior", "layers", "max_layers"))
def _layers_and_fixed_point(
    prior: Prior, p: jax.Array, r: jax.Array, tol: jax.Array, layers: int, max_layers: int
) -> tuple[jax.Array, jax.Array]:
    """``state_evolution``'s first ``layers`` risks and the fixed point reached by continuing, in one
    compiled function (``prediction_table`` compiles one instead of two)."""
    start = (jnp.ones_like(p), jnp.ones_like(p))
    state, risks = jax.lax.scan(lambda s, _: _layer(s, prior, p, r), start, None, length=layers)

    def not_done(carry):
        _, risk, change, t = carry
        return (t < max_layers) & jnp.any(change > tol * risk)

    def body(carry):
        state, risk, _, t = carry
        state, new = _layer(state, prior, p, r)
        return state, new, jnp.abs(new - risk), t + 1

    change = jnp.abs(risks[-1] - risks[-2]) if layers > 1 else jnp.ones_like(p)
    _, risk, _, _ = jax.lax.while_loop(not_done, body, (state, risks[-1], change, jnp.asarray(layers)))
    return jnp.moveaxis(risks, 0, -1), risk
