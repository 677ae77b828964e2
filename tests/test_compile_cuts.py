"""Smaller programs (issue 25): what the compiled programs no longer hold."""

from __future__ import annotations

import jax
import numpy as np

from aejax.model import init


def count(jaxpr, primitive: str) -> int:
    """Equations of ``primitive`` in ``jaxpr``, through every call site of its sub-jaxprs."""
    total = 0
    for eqn in jaxpr.eqns:
        total += eqn.primitive.name == primitive
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += count(inner, primitive)
    return total


def random_draws(fn, *args) -> int:
    """Random-bit generations in ``fn`` (each one a threefry block that XLA compiles)."""
    return count(jax.make_jaxpr(fn)(*args).jaxpr, "random_bits")


def test_zero_decoder_is_not_drawn():
    """The default decoder starts at zero without drawing (and scaling by 0) a Gaussian matrix: one
    draw (the encoder), not two, and +0 entries (0·x gave −0 for negative draws)."""
    key = jax.random.key(0)
    assert random_draws(lambda k: init(k, 8, 4), key) == 1
    assert random_draws(lambda k: init(k, 8, 4, decoder_scale=1.0), key) == 2
    A = np.asarray(init(key, 8, 4).A)
    assert A.shape == (8, 4) and not np.any(A) and not np.any(np.signbit(A))
