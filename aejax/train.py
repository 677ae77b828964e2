"""Pure, compiled training: ``make_train(config)`` returns ``train(key, hparams)``.

``TrainConfig`` (``aejax.config``) is structure (changing it recompiles); ``hparams`` is a dict of
numbers that may be traced and vmapped (changing them never recompiles): learning rate ``lr``,
surrogate ``slope``, HeLU/hysteresis ``margin``, ``rate`` (hidden units in use = round(rate·d) of
the ``n`` compiled ones) and sparsity ``p`` of a named sparse source. ``train`` binds them into the
run's ``Model`` (``config.bind(hparams)``), which supplies the loss, the data and the risks. The
whole run is one ``lax.scan``.

Modes: ``"online"`` (fresh samples every step), ``"dataset"`` (minibatches drawn uniformly with
replacement from a fixed set of ``n_train`` samples, or from an ``Empirical`` source's rows) and
``"population"`` (full-batch gradient descent on the exact Gaussian risk).

Decoders (``aejax.decoders``): ``decoder="linear"`` (default) or a non-linear one, ``denoiser``,
``posterior_mean`` or ``multilayer`` (with ``layers``, ``prior``); ``trainable`` freezes the encoder
(``"decoder"``) or the encoder and the linear decoder (``"head"``). The trace also records the
traced observables of ``aejax.record`` (the encoder's ``identity_likeness``) at every trace point.

Example:
    >>> import jax
    >>> cfg = TrainConfig(d=32, n=16, steps=200, batch=64)
    >>> params, trace = jax.jit(make_train(cfg))(jax.random.key(0), {"lr": 0.01})
    >>> trace["risk"].shape
    (20,)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from aejax import _validate, record
from aejax.config import TrainConfig
from aejax.model import Params
from aejax.optim import get_optimizer, schedule_factor
from aejax.sources import Empirical, Source

Array = jax.Array

__all__ = ["make_train", "run_key"]


def run_key(base_seed: int, seed: int) -> jax.Array:
    """Training key of the run with grid coordinate ``seed`` in a sweep with base ``seed``.

    Reproduce one run of a sweep with ``make_train(replace(config, n=...))(run_key(s0, s), hparams)``;
    its final Monte Carlo risk uses ``fold_in(run_key(s0, s), aejax.record.EVAL_FOLD)``.

    Example:
        >>> run_key(0, 3).shape
        ()
    """
    return jax.random.fold_in(jax.random.key(base_seed), seed)


def make_train(config: TrainConfig) -> Callable[[Array, dict[str, Any] | None], tuple[Params, dict[str, Array]]]:
    """Build the pure training function for ``config``.

    Args:
        config: a ``TrainConfig``.

    Returns:
        ``train(key, hparams) -> (params, trace)``: jittable and vmappable over ``key`` and every
        entry of ``hparams``. ``trace`` has ``loss`` (mean training loss over each block of
        ``config.trace_every`` steps), ``risk`` (exact or Monte Carlo risk after the block; NaN
        when ``risk_eval="none"``) and the traced observables of ``aejax.record``, one entry per
        ``config.trace_steps``.

    Example:
        >>> cfg = TrainConfig(d=16, n=8, steps=20, mode="population")
        >>> params, trace = make_train(cfg)(jax.random.key(0), {"lr": 0.05})
        >>> bool(trace["risk"][-1] < trace["risk"][0])
        True
    """
    if not isinstance(config, TrainConfig):
        raise _validate.InputTypeError(f"config must be an aejax.TrainConfig, got {type(config).__name__}")
    optimizer = get_optimizer(config.optimizer)
    trace_risk = config.trace_risk
    every = config.trace_every
    blocks = config.steps // every

    def train(key: Array, hparams: dict[str, Any] | None = None) -> tuple[Params, dict[str, Array]]:
        _validate.prng_key("key", key)
        model = config.bind(hparams)
        k_init, k_data, k_steps, k_eval = jax.random.split(key, 4)
        params = model.init(k_init)
        data = _training_set(config, model.source, k_data)

        def sample_loss(params, x):
            return model.loss(_freeze(params, config.trainable, jax.lax.stop_gradient), x)  # frozen: no backward

        def population_loss(params, _):
            return model.exact_risk(params)

        def batch_at(t):
            k = jax.random.fold_in(k_steps, t)
            if config.mode == "population":
                return None
            if data is None:
                return model.source.sample(k, config.batch)
            return data[jax.random.randint(k, (config.batch,), 0, data.shape[0])]

        loss_fn = population_loss if config.mode == "population" else sample_loss

        def step(carry, t):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, batch_at(t))
            updates, opt_state = optimizer.update(grads, opt_state, params)
            updates = _freeze(updates, config.trainable, jnp.zeros_like)  # also no weight decay
            lr = model.hparams["lr"] * schedule_factor(config.schedule, t, config.steps, config.warmup)
            params = optax.apply_updates(params, jax.tree_util.tree_map(lambda u: lr * u, updates))
            return (params, opt_state), loss

        def trace_risk_of(params, j):
            if trace_risk == "exact":
                return model.exact_risk(params)
            if trace_risk == "mc":
                return model.mc_risk(params, jax.random.fold_in(k_eval, j), config.trace_samples)[0]
            return jnp.full((), jnp.nan, jnp.float32)

        def block(carry, j):
            carry, losses = jax.lax.scan(step, carry, j * every + jnp.arange(every))
            params = carry[0]
            point = {"loss": jnp.mean(losses), "risk": trace_risk_of(params, j),
                     **record.trace_observables(model, params)}
            return carry, point

        (params, _), trace = jax.lax.scan(block, (params, optimizer.init(params)), jnp.arange(blocks))
        return params, trace

    return train


def _freeze(tree: Params, trainable: str, fn: Callable[[Array], Array]) -> Params:
    """``fn`` applied to the parts that ``trainable`` keeps fixed (B for "decoder"; A and B for "head")."""
    if trainable == "all":
        return tree
    frozen = tree._replace(B=fn(tree.B))
    return frozen._replace(A=fn(tree.A)) if trainable == "head" else frozen


def _training_set(config: TrainConfig, source: Source, key: Array) -> Array | None:
    """The fixed training set of ``dataset`` mode (``None`` otherwise)."""
    if config.mode != "dataset":
        return None
    if isinstance(source, Empirical):
        return source.data
    return source.sample(key, config.n_train)
