"""Multi-layer VAMP decoder of the 1-bit code s = sign(Bx), whose risk ``state_evolution`` predicts.

This is vector approximate message passing for the generalised linear model (EP on the graph
prior(x) — x — [z = B̄x] — z — sign channel), with Bayes-optimal entrywise denoisers and a serial
schedule. B̄ is B with unit rows (the code only sees row directions). Messages are Gaussian with a
scalar precision each; starting from r2x = 0, γ2x = 1 and r1z = 0, γ1z = 1 (the unit-variance prior
alone), one layer is

1. z-denoiser: (ẑ, v) = E/Var[z | s, z ~ N(r1z, 1/γ1z)] (truncated normal, ``sign_posterior``);
   η = 1/mean(v), γ2z = η − γ1z, r2z = (η ẑ − γ1z r1z)/γ2z.
2. linear step → x: x̂ = C(γ2z B̄ᵀ r2z + γ2x r2x), C = (γ2z B̄ᵀB̄ + γ2x I)⁻¹, E = tr C / d;
   γ1x = 1/E − γ2x, r1x = (x̂/E − γ2x r2x)/γ1x.
3. x-denoiser: (x̂, v) = posterior of x given r1x = x + N(0, 1/γ1x) (``priors.posterior``): the
   layer's estimate; η = 1/mean(v), γ2x = η − γ1x, r2x = (η x̂ − γ1x r1x)/γ2x.
4. linear step → z with the new r2x: ẑ = B̄ x̂, E = tr(B̄ C B̄ᵀ)/n; γ1z = 1/E − γ2z,
   r1z = (ẑ/E − γ2z r2z)/γ1z.

The linear steps use the structure the state evolution assumes: B̄ᵀB̄ = λ P with λ = max(n/d, 1) and
P the projection on the row space (orthonormal rows, n ≤ d) or P = I (unit-norm tight frame, n > d).
Then C = P/(λγ2z + γ2x) + (I − P)/γ2x costs two products with B̄ per step and no factorisation.
``multilayer_decode`` checks this structure on a random probe when B is concrete.

Denoiser precisions are the empirical divergences (means of posterior variances; no use of the SE).
Messages are stored in natural form (γ r, γ) and precisions clipped as in
``state_evolution.precision_bounds``. Once the x-posterior variance falls below the cap's inverse
(exact recovery to working precision) the state is frozen and later layers repeat the estimate: past
that point the divergences, averages over n coordinates, no longer see the few pre-activations near
the sign boundary, and the extrinsic z-precision would collapse to 0.

Layer 1 reproduces the shallow decoder A sign(Bx) (A = sqrt(2/π) B̄ᵀ, or sqrt(π/2)/(r + π/2 − 1) B̄ᵀ
for a tight frame) followed by ``posterior_mean``.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> from aejax.sources import BernoulliGaussian
    >>> B = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (64, 64)))[0][:32]
    >>> x = BernoulliGaussian(64, 0.2).sample(jax.random.key(1), 4)
    >>> xs = multilayer_decode("bg", 0.2, B, jnp.where(x @ B.T >= 0, 1.0, -1.0), 3)
    >>> xs.shape
    (4, 3, 64)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax import _validate
from aejax.theory._quad import as_float, check_sparsity
from aejax.theory.priors import Prior, posterior, resolve_prior
from aejax.theory.sign_channel import sign_posterior
from aejax.theory.state_evolution import precision_bounds


def _extrinsic(estimate, variance, h_in, g_in, low, high):
    """Divide a Gaussian belief (mean ``estimate``, mean variance) by the incoming message.

    Messages are kept in natural form (h = γ r, γ), so an uninformative extrinsic (γ → 0) never
    divides by a vanishing precision.
    """
    eta = 1 / jnp.maximum(jnp.mean(variance), 0.5 / high)
    return eta * estimate - h_in, jnp.clip(eta - g_in, low, high)


def decode_one(prior: Prior, p: Any, Bn: jax.Array, s: jax.Array, tweaks: jax.Array) -> jax.Array:
    """VAMP on one code ``s`` (n,) with unit-row ``Bn``; one layer per row of ``tweaks``.

    ``tweaks`` is ``(layers, 3)``: per layer, log-factors on the x-denoiser's SNR and sparsity and on
    the precision of the z-message it sends back. Zeros give the Bayes-optimal decoder of the module
    docstring; ``aejax.decoders`` trains them. Returns the ``(layers, d)`` estimates.

    Examples:
        >>> decode_one(resolve_prior("bg"), 1.0, jnp.eye(2), jnp.array([1.0, -1.0]), jnp.zeros((2, 3))).shape
        (2, 2)
    """
    n, d = Bn.shape
    low, high = precision_bounds(Bn.dtype)
    lam, frac = max(n / d, 1.0), min(n / d, 1.0)

    def linear(h2x, g2x, h2z, g2z):
        # C = (γ2z B̄ᵀB̄ + γ2x I)⁻¹ with B̄ᵀB̄ = λ P, P the projection on the row space (I if n > d)
        rhs = Bn.T @ h2z + h2x
        a, b = 1 / g2x, 1 / (g2z * lam + g2x)
        x_hat = b * rhs if n > d else a * rhs + (b - a) * (Bn.T @ (Bn @ rhs))
        return x_hat, frac * b + (1 - frac) * a, b

    def layer(carry, tweak):
        log_snr, log_p, log_precision = tweak[0], tweak[1], tweak[2]
        h2x, g2x, h1z, g1z, _x_old, done = carry
        z_hat, z_var = sign_posterior(s, h1z / g1z, g1z)
        h2z, g2z = _extrinsic(z_hat, z_var, h1z, g1z, low, high)
        x_lin, var_x, _ = linear(h2x, g2x, h2z, g2z)
        h1x, g1x = _extrinsic(x_lin, var_x, h2x, g2x, low, high)
        x_hat, x_var = posterior(prior, jnp.minimum(p * jnp.exp(log_p), 1.0), g1x * jnp.exp(log_snr), h1x / g1x)
        h2x_new, g2x_new = _extrinsic(x_hat, x_var, h1x, g1x, low, high)
        x_lin, _, var_z = linear(h2x_new, g2x_new, h2z, g2z)
        h1z_new, g1z_new = _extrinsic(Bn @ x_lin, var_z, h2z, g2z, low, high)
        scale = jnp.exp(log_precision)
        new = (h2x_new, g2x_new, h1z_new * scale, g1z_new * scale, x_hat, done | (jnp.mean(x_var) * high < 1))
        carry = jax.tree.map(lambda old, upd: jnp.where(done, old, upd), carry, new)
        return carry, carry[4]

    one = jnp.ones((), Bn.dtype)
    zeros = jnp.zeros(d, Bn.dtype)
    start = (zeros, one, jnp.zeros(n, Bn.dtype), one, zeros, jnp.asarray(False))
    return jax.lax.scan(layer, start, jnp.asarray(tweaks, Bn.dtype))[1]


@functools.partial(jax.jit, static_argnames=("prior", "layers"))
def _decode(prior, p, B, s, layers):
    Bn = B / jnp.linalg.norm(B, axis=1, keepdims=True)
    flat = s.reshape(-1, s.shape[-1])
    tweaks = jnp.zeros((layers, 3), Bn.dtype)
    out = jax.vmap(lambda si: decode_one(prior, p, Bn, si, tweaks))(flat)
    return out.reshape(*s.shape[:-1], layers, B.shape[1])


def multilayer_decode(prior: str | Prior, p: Any, B: Any, s: Any, layers: int) -> jax.Array:
    """Decode 1-bit codes ``s = sign(Bx)`` with ``layers`` layers of VAMP (module docstring).

    Pure and jitted (``prior`` and ``layers`` are static; ``p`` may be traced).

    Args:
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        p: sparsity in (0, 1], scalar.
        B: ``(n, d)`` encoder (rows need not be normalised; only their directions are used; the rate
            is its n/d).
        s: ``(..., n)`` codes in {−1, +1}; leading axes are independent samples.
        layers: number of layers ≥ 1.

    Returns:
        ``(..., layers, d)``: the posterior-mean estimate of x after each layer.

    Examples:
        See the module docstring.
    """
    prior = resolve_prior(prior)
    check_sparsity("p", p)
    layers = _validate.positive_int("layers", layers)
    B, s = as_float(B), as_float(s)
    if B.ndim != 2 or s.shape[-1:] != B.shape[:1]:
        raise _validate.InputError(f"B must be (n, d) and s (..., n); got B {B.shape} and s {s.shape}")
    if _validate.is_concrete(B):
        _check_structure(np.asarray(B, dtype=np.float64))
    return _decode(prior, as_float(p), B, s, layers)


def _check_structure(B: np.ndarray, tol: float = 0.25) -> None:
    """Raise unless B̄ has orthonormal rows (n ≤ d) or is close to a tight frame (n > d)."""
    n, d = B.shape
    Bn = B / np.linalg.norm(B, axis=1, keepdims=True)
    probe = np.random.default_rng(0).standard_normal(n if n <= d else d)
    image = Bn @ (Bn.T @ probe) if n <= d else Bn.T @ (Bn @ probe) * d / n
    error = np.linalg.norm(image - probe) / np.linalg.norm(probe)
    if not error <= tol:
        kind = "orthonormal rows (n <= d)" if n <= d else "a unit-norm tight frame, B̄ᵀB̄ = (n/d) I (n > d)"
        raise _validate.InputError(
            f"B must have {kind} after row normalisation; a random probe is off by "
            f"{error:.3g} (relative), allowed {tol}"
        )
