"""Finite-d optimum of the sign autoencoder on Gaussian data: GD on the exact risk, best of restarts.

For r ≤ 1 the optimum is 1 − 2r/π at every d; for r > 1, ``gaussian_limit(r)`` is only the d → ∞
value, approached from above, and this function is the finite-d reference (docs/theory.md §10). It
runs the engine (exact risk, optimal decoder), so it lives beside them rather than in the pure
``aejax.theory``.

Examples:
    >>> import jax
    >>> out = finite_d_optimum(0.5, d=8, restarts=2, steps=300, key=jax.random.key(0))
    >>> bool(abs(out.risk - (1 - 1 / 3.141592653589793)) < 5e-3)
    True
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from aejax import _validate
from aejax.model import Architecture, Params, init
from aejax.risk import exact_risk, optimal_decoder
from aejax.sources import Gaussian


class FiniteDOptimum(NamedTuple):
    """Result of ``finite_d_optimum``: best risk, its encoder, and every restart's final risk."""

    risk: jax.Array
    encoder: jax.Array
    restart_risks: jax.Array


def finite_d_optimum(
    r: Any, *, d: int, restarts: int = 4, steps: int = 2000, lr: float = 0.01, key: jax.Array | None = None
) -> FiniteDOptimum:
    """Minimise the exact N(0, I) risk of the sign autoencoder over B, with A = A*(B) optimal.

    Each restart starts from an i.i.d. Gaussian B (``aejax.model.init``) and runs Adam on
    ``exact_risk(Params(optimal_decoder(B), B))`` (docs/theory.md §2), all restarts vmapped.

    Not jittable: the number of rows n = round(r d) fixes array shapes, so ``r`` must be concrete
    (the optimisation itself is compiled inside). ``d`` is keyword-only so that the two numbers
    cannot be swapped.

    Args:
        r: rate; n = round(r d) hidden units (≥ 1).
        d: input dimension (keyword-only).
        restarts: number of random initialisations.
        steps: Adam steps per restart.
        lr: Adam learning rate.
        key: PRNG key (default ``jax.random.key(0)``).

    Returns:
        ``FiniteDOptimum(risk, encoder, restart_risks)``; ``risk`` is the smallest final risk.

    Examples:
        See the module docstring.
    """
    d = _validate.positive_int("d", d)
    _validate.positive_number("r", r)
    restarts = _validate.positive_int("restarts", restarts)
    steps = _validate.positive_int("steps", steps)
    _validate.positive_number("lr", lr)
    n = max(1, round(float(r) * d))
    source = Gaussian(d)
    key = jax.random.key(0) if key is None else key

    def risk(B):
        arch = Architecture("sign", row_normalize=False)
        return exact_risk(Params(optimal_decoder(B, source, arch=arch), B), source, arch=arch)

    optimizer = optax.adam(lr)

    def run(k):
        B = init(k, d, n, kind="gaussian").B

        def step(carry, _):
            B, state = carry
            grad = jax.grad(risk)(B)
            updates, state = optimizer.update(grad, state, B)
            return (optax.apply_updates(B, updates), state), None

        B, _ = jax.lax.scan(step, (B, optimizer.init(B)), None, length=steps)[0]
        return risk(B), B

    risks, encoders = jax.jit(jax.vmap(run))(jax.random.split(key, restarts))
    best = jnp.argmin(risks)
    return FiniteDOptimum(risks[best], encoders[best], risks)
