"""Optimizers by name and learning-rate schedule shapes.

Optimizers are built with unit learning rate; the trainer multiplies their updates by the swept
learning rate times the schedule factor, so the learning rate is data (vmappable, never a
recompile) while the optimizer family and schedule shape are structure.

Your own optax transformation (``TrainConfig(optimizer=...)``) follows the same contract: it
gives the *direction*, aejax applies ``lr`` and the schedule. Pass either a bare direction, as
``optax.scale_by_adam()``, ``optax.chain(optax.add_decayed_weights(1e-4), optax.scale_by_adam())``
or ``optax.identity()`` (plain SGD), which aejax steps against, or a full optimizer built with
learning rate 1 (``optax.adam(1.0)``), which already negates its direction. Which of the two it is
is read from the sign of its first update for a gradient of ones (``check_transformation``); an
ambiguous sign is an error. A transformation that carries its own learning rate (a first update
far from unit size, as ``optax.adam(1e-3)`` gives) or its own schedule (``optax.scale_by_schedule``,
``optax.inject_hyperparams``) is used as given, but warned about: its rate and schedule multiply
aejax's.

Examples:
    >>> opt = get_optimizer("adam")
    >>> round(float(schedule_factor("cosine", 50, steps=100, warmup=0)), 6)
    0.5
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import optax

from aejax import _validate
from aejax.identity import Named, unwrap

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


def get_optimizer(optimizer: str | optax.GradientTransformation | Named) -> optax.GradientTransformation:
    """An optax transformation with unit learning rate whose updates are added to the parameters.

    Args:
        optimizer: a name in ``OPTIMIZERS``, or an ``optax.GradientTransformation`` (possibly
            ``aejax.named``): a direction (``optax.scale_by_adam()``), stepped against, or a full
            optimizer built with learning rate 1 (``optax.adam(1.0)``), used as is
            (``check_transformation``).

    Returns:
        The transformation, scaled by the swept learning rate and schedule in training.

    Examples:
        >>> isinstance(get_optimizer("sgd"), optax.GradientTransformation)
        True
        >>> tx = get_optimizer(optax.scale_by_adam())  # a direction: aejax steps against it
        >>> round(float(tx.update({"w": jnp.ones(1)}, tx.init({"w": jnp.zeros(1)}))[0]["w"][0]), 4)
        -1.0
    """
    tx = unwrap(optimizer)
    if isinstance(tx, optax.GradientTransformation):
        if check_transformation(tx)["direction"]:
            return optax.chain(tx, optax.scale(-1.0))
        return tx
    _validate.choice("optimizer", tx, OPTIMIZERS)
    return OPTIMIZERS[tx]()


PROBE_STEPS = 3  # first updates probed: a warm-up schedule that starts at 0 shows by the third
UNIT_RANGE = (0.05, 20.0)  # first-update sizes of learning-rate-1 optimizers (rmsprop: 3.2; adagrad: 0.95)


def check_transformation(optimizer: Any) -> dict[str, Any]:
    """How aejax reads a user's optax transformation, from its first updates for gradients of ones.

    The first ``PROBE_STEPS`` updates of a 4-entry parameter vector of ones, with gradients of
    ones, are computed on the host (outside any trace). Their sign says whether the transformation
    is a direction (positive: ``optax.scale_by_adam()``) or a full optimizer that already steps
    against the gradient (negative: ``optax.adam(1.0)``); their size whether it carries a learning
    rate of its own (outside ``UNIT_RANGE``); its state whether it carries a schedule
    (``optax.scale_by_schedule``, as ``optax.adam(schedule)`` builds it, or
    ``optax.inject_hyperparams``). Both are warned about (``UserWarning``): aejax's ``lr`` and
    schedule multiply the transformation's own.

    Args:
        optimizer: an ``optax.GradientTransformation`` (or an ``aejax.named`` one).

    Returns:
        ``{"direction": bool, "scale": float, "schedule": bool}`` (``scale``: size of the first update).

    Raises:
        InputError: updates of mixed or zero sign, or not finite.

    Examples:
        >>> check_transformation(optax.sgd(1.0))
        {'direction': False, 'scale': 1.0, 'schedule': False}
        >>> check_transformation(optax.identity())["direction"]  # plain SGD's direction
        True
    """
    tx = unwrap(optimizer)
    if not isinstance(tx, optax.GradientTransformation):
        raise _validate.InputTypeError(f"optimizer must be an optax.GradientTransformation, got {type(tx).__name__}")
    return dict(_probe(tx))


@functools.lru_cache(maxsize=64)
def _probe(tx: optax.GradientTransformation) -> tuple[tuple[str, Any], ...]:
    with jax.ensure_compile_time_eval():
        params = {"w": jnp.ones(4, jnp.float32)}
        grads = {"w": jnp.ones(4, jnp.float32)}
        state = tx.init(params)
        schedule = _has_schedule(state)
        sizes = []
        for _ in range(PROBE_STEPS):
            updates, state = tx.update(grads, state, params)
            sizes.append(jnp.asarray(cast(dict, updates)["w"], jnp.float32))  # the structure of params
    values = [float(v) for size in sizes for v in size]
    signs = {v > 0 for v in values if v != 0}
    if not all(abs(v) < float("inf") for v in values) or len(signs) != 1:  # NaN fails the comparison too
        raise _validate.InputError(
            f"optimizer gives the first updates {values[::4]} for a gradient of ones: aejax needs updates of "
            "one sign along it (a direction such as optax.scale_by_adam(), or a full optimizer with learning "
            "rate 1 such as optax.adam(1.0)); see aejax.optim"
        )
    scale = max(abs(v) for v in values)
    direction = signs == {True}
    if not UNIT_RANGE[0] <= scale <= UNIT_RANGE[1]:
        warnings.warn(
            f"the optimizer's first updates have size {scale:.3g} for a gradient of ones: it seems to carry a "
            "learning rate of its own, which aejax multiplies by hparams['lr'] and the schedule; pass the "
            "bare direction (e.g. optax.scale_by_adam()) or build it with learning rate 1",
            UserWarning,
            stacklevel=4,
        )
    if schedule:
        warnings.warn(
            "the optimizer carries its own schedule (optax.scale_by_schedule or inject_hyperparams), which "
            "aejax multiplies by its own (TrainConfig.schedule); pass the bare direction (e.g. "
            "optax.scale_by_adam()) and choose TrainConfig(schedule=..., warmup=...)",
            UserWarning,
            stacklevel=4,
        )
    return (("direction", direction), ("scale", round(scale, 6)), ("schedule", schedule))


def _has_schedule(state: Any) -> bool:
    """Whether an optax state holds a schedule's step count or injected hyper-parameters."""
    found = []

    def visit(node):
        if is_schedule(node):
            found.append(node)
        return node

    def is_schedule(node):
        return isinstance(node, optax.ScaleByScheduleState) or hasattr(node, "hyperparams")

    jax.tree_util.tree_map(visit, state, is_leaf=is_schedule)
    return bool(found)


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
