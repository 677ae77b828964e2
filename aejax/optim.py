"""Optimizers by name and learning-rate schedule shapes.

Optimizers are built with unit learning rate; the trainer multiplies their updates by the swept
learning rate times the schedule factor, so the learning rate is data (vmappable, never a
recompile) while the optimizer family and schedule shape are structure.

Examples:
    >>> opt = get_optimizer("adam")
    >>> round(float(schedule_factor("cosine", 50, steps=100, warmup=0)), 6)
    0.5
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from aejax import _validate

OPTIMIZERS: dict[str, Callable[[], optax.GradientTransformation]] = {
    "sgd": lambda: optax.sgd(1.0),
    "momentum": lambda: optax.sgd(1.0, momentum=0.9),
    "nesterov": lambda: optax.sgd(1.0, momentum=0.9, nesterov=True),
    "adam": lambda: optax.adam(1.0),
    "adamw": lambda: optax.adamw(1.0, weight_decay=1e-4),
    "rmsprop": lambda: optax.rmsprop(1.0),
    "adagrad": lambda: optax.adagrad(1.0),
    "lion": lambda: optax.lion(1.0),
}

SCHEDULES = ("constant", "cosine", "linear")


def get_optimizer(optimizer: str | optax.GradientTransformation) -> optax.GradientTransformation:
    """An optax transformation with unit learning rate, by name or passed through.

    Args:
        optimizer: a name in ``OPTIMIZERS`` or an ``optax.GradientTransformation`` built with
            learning rate 1 (its updates are scaled by the swept learning rate).

    Returns:
        The transformation.

    Examples:
        >>> isinstance(get_optimizer("sgd"), optax.GradientTransformation)
        True
    """
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    _validate.choice("optimizer", optimizer, OPTIMIZERS)
    return OPTIMIZERS[optimizer]()


def schedule_factor(schedule: str, step, steps: int, warmup: int):
    """Multiplier of the learning rate at ``step`` (0-based) of ``steps``, after a linear warm-up.

    Examples:
        >>> float(schedule_factor("linear", 0, steps=10, warmup=0))
        1.0
    """
    frac = jnp.asarray(step, jnp.float32) / steps
    decay = {"constant": jnp.ones_like(frac), "cosine": 0.5 * (1 + jnp.cos(jnp.pi * frac)), "linear": 1 - frac}[
        schedule
    ]
    if warmup:
        decay = decay * jnp.minimum(1.0, (jnp.asarray(step, jnp.float32) + 1) / warmup)
    return decay


def with_state_dtype(optimizer: optax.GradientTransformation, dtype: str) -> optax.GradientTransformation:
    """``optimizer`` with its floating-point state stored in ``dtype`` between steps; every update
    is computed in float32 from the upcast state, then the new state is rounded to ``dtype``.

    Rounding to nearest loses small increments: with bfloat16 (8 significant bits) Adam's second
    moment, decaying by 0.999 a step, changes by less than half an ulp and stalls. The measured
    effect on the risk is in docs/performance.md.

    Examples:
        >>> opt = with_state_dtype(optax.adam(1.0), "bfloat16")
        >>> state = opt.init({"w": jnp.zeros(3)})
        >>> state[0].mu["w"].dtype
        dtype(bfloat16)
    """
    target = jnp.dtype(dtype)
    if target == jnp.float32:
        return optimizer

    def cast(tree, to):
        return jax.tree_util.tree_map(
            lambda a: a.astype(to) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, tree
        )

    def init(params):
        return cast(optimizer.init(params), target)

    def update(updates, state, params=None):
        updates, state = optimizer.update(updates, cast(state, jnp.float32), params)
        return updates, cast(state, target)

    return optax.GradientTransformation(init, update)
