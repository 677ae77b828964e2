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

Examples:
    >>> import jax
    >>> cfg = TrainConfig(d=32, n=16, steps=200, batch=64)
    >>> params, trace = jax.jit(make_train(cfg))(jax.random.key(0), {"lr": 0.01})
    >>> trace["risk"].shape
    (20,)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aejax import _validate, record
from aejax._threefry import fold_in_data
from aejax.config import TrainConfig
from aejax.model import Params
from aejax.optim import get_optimizer, schedule_factor, with_state_dtype
from aejax.sources import Empirical, Source

if TYPE_CHECKING:
    from aejax.bound import Model

Array = jax.Array

__all__ = ["TrainState", "Trainer", "make_train", "make_trainer", "run_key", "run_key_data"]


def run_key(base_seed: int, seed: int) -> jax.Array:
    """Training key of the run with grid coordinate ``seed`` in a sweep with base ``seed``.

    Reproduce one run of a sweep with ``make_train(replace(config, n=...))(run_key(s0, s), hparams)``;
    its final Monte Carlo risk uses ``fold_in(run_key(s0, s), aejax.record.EVAL_FOLD)``.

    Examples:
        >>> run_key(0, 3).shape
        ()
    """
    return jax.random.fold_in(jax.random.key(base_seed), seed)


def run_key_data(base_seed: int, seeds: Sequence[int]) -> np.ndarray:
    """``key_data(run_key(base_seed, s))`` for each ``s`` in ``seeds``, as ``uint32[len(seeds), 2]``,
    without compiling a program per call (how a sweep makes its runs' keys).

    Examples:
        >>> import numpy as np
        >>> bool(np.array_equal(run_key_data(0, [3])[0], jax.random.key_data(run_key(0, 3))))
        True
    """
    return fold_in_data(jax.random.key_data(jax.random.key(base_seed)), np.asarray(seeds, np.int64))


class TrainState(NamedTuple):
    """A run between two segments of training: weights, optimizer state and the trace so far
    (``trace`` holds every trace point; those not reached yet are 0)."""

    params: Params
    opt_state: Any
    trace: dict[str, Array]


class Trainer(NamedTuple):
    """Training in segments of trace blocks, so a long run can be checkpointed between them.

    ``start(key, hparams, data=None) -> state``; ``advance(state, key, hparams, first, count,
    data=None) -> state`` trains the ``count`` (static) trace blocks from block ``first`` (may be
    traced); ``data`` is as in ``make_train``; ``blocks`` is the number
    of trace blocks (``len(config.trace_steps)``). Every function is pure, jittable and vmappable, and
    ``advance`` over all blocks at once is exactly ``make_train``'s ``train``: splitting a run into
    segments does not change a bit of it.
    """

    start: Callable[..., TrainState]
    advance: Callable[..., TrainState]
    blocks: int


def make_trainer(config: TrainConfig) -> Trainer:
    """Build the segment-wise training functions of ``config`` (see ``Trainer``).

    Examples:
        >>> cfg = TrainConfig(d=16, n=8, steps=20, mode="population", eval_every=5)
        >>> trainer = make_trainer(cfg)
        >>> state = trainer.start(jax.random.key(0), {"lr": 0.05})
        >>> state = trainer.advance(state, jax.random.key(0), {"lr": 0.05}, 0, 2)
        >>> state = trainer.advance(state, jax.random.key(0), {"lr": 0.05}, 2, 2)
        >>> params, trace = make_train(cfg)(jax.random.key(0), {"lr": 0.05})
        >>> bool(jnp.array_equal(state.trace["risk"], trace["risk"]))
        True
    """
    if not isinstance(config, TrainConfig):
        raise _validate.InputTypeError(f"config must be an aejax.TrainConfig, got {type(config).__name__}")
    optimizer = with_state_dtype(get_optimizer(config.optimizer), config.opt_state_dtype)
    ends = np.asarray(config.trace_steps)
    starts = np.concatenate([[0], ends[:-1]])
    traced = ("loss", "risk", *record.trace_observables_names())

    def start(key: Array, hparams: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> TrainState:
        _validate.prng_key("key", key)
        with config.precision():
            return _start(key, hparams, data)

    def _start(key: Array, hparams: dict[str, Any] | None, data: dict[str, Any] | None) -> TrainState:
        model = config.bind(hparams, data)
        params = model.init(jax.random.split(key, 4)[0])
        trace = {name: jnp.zeros(len(ends), jnp.float32) for name in traced}
        return TrainState(params, optimizer.init(params), trace)

    def advance(
        state: TrainState,
        key: Array,
        hparams: dict[str, Any] | None,
        first: Any,
        count: int,
        data: dict[str, Any] | None = None,
    ) -> TrainState:
        _validate.prng_key("key", key)
        with config.precision():
            return _advance(state, key, hparams, first, count, data)

    def _advance(
        state: TrainState, key: Array, hparams: dict[str, Any] | None, first: Any, count: int, data: Any
    ) -> TrainState:
        model = config.bind(hparams, data)
        _, k_data, k_steps, k_eval = jax.random.split(key, 4)
        rows = _training_set(config, model.source, k_data)
        run_block = _block_runner(_make_step(config, model, optimizer, rows, k_steps), starts, ends)
        trace_risk_of = _trace_risk(config, model, k_eval)

        def block(carry, j):
            carry, mean_loss = run_block(carry, j)
            params = carry[0]
            point = {"loss": mean_loss, "risk": trace_risk_of(params, j), **record.trace_observables(model, params)}
            return carry, point

        first = jnp.asarray(first, jnp.int32)
        (params, opt_state), points = jax.lax.scan(block, (state.params, state.opt_state), first + jnp.arange(count))
        trace = {
            name: jax.lax.dynamic_update_slice(state.trace[name], jnp.asarray(points[name], jnp.float32), (first,))
            for name in traced
        }
        return TrainState(params, opt_state, trace)

    return Trainer(start, advance, len(ends))


def make_train(config: TrainConfig) -> Callable[..., tuple[Params, dict[str, Array]]]:
    """Build the pure training function for ``config``.

    Args:
        config: a ``TrainConfig``.

    Returns:
        ``train(key, hparams, data=None) -> (params, trace)``: jittable and vmappable over ``key``
        and every entry of ``hparams``. ``data`` is the config's data objects (``config.data``, or
        new data of the same shapes): passed as an argument of a jitted ``train``, a source's
        arrays are inputs of the program, not constants, and new data does not recompile
        (``None``: the config's own, closed over). ``trace`` has ``loss`` (mean training loss over each trace block, the
        steps up to each of ``config.trace_steps``), ``risk`` (exact or Monte Carlo risk after the
        block; NaN when ``risk_eval="none"``) and the traced observables of ``aejax.record``.

    Examples:
        >>> cfg = TrainConfig(d=16, n=8, steps=20, mode="population")
        >>> params, trace = make_train(cfg)(jax.random.key(0), {"lr": 0.05})
        >>> bool(trace["risk"][-1] < trace["risk"][0])
        True
    """
    trainer = make_trainer(config)

    def train(
        key: Array, hparams: dict[str, Any] | None = None, data: dict[str, Any] | None = None
    ) -> tuple[Params, dict[str, Array]]:
        state = trainer.advance(trainer.start(key, hparams, data), key, hparams, 0, trainer.blocks, data)
        return state.params, state.trace

    return train


def _make_step(config: TrainConfig, model: Model, optimizer: Any, rows: Array | None, k_steps: Array) -> Callable:
    """One optimizer step ``step((params, opt_state), t) -> ((params, opt_state), loss)`` on step
    ``t``'s batch (drawn from ``fold_in(k_steps, t)``; the exact risk in population mode)."""
    total = config.total_steps

    def sample_loss(params, x):
        return model.loss(_freeze(params, config.trainable, jax.lax.stop_gradient), x)  # frozen: no backward

    def population_loss(params, _):
        return model.exact_risk(params)

    def batch_at(t):
        k = jax.random.fold_in(k_steps, t)
        if config.mode == "population":
            return None
        if rows is None:
            return model.source.sample(k, config.batch)
        return rows[jax.random.randint(k, (config.batch,), 0, rows.shape[0])]

    loss_fn = population_loss if config.mode == "population" else sample_loss

    def step(carry, t):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, batch_at(t))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        # optax's updates have the structure of the gradients, i.e. of Params
        updates = _freeze(cast(Params, updates), config.trainable, jnp.zeros_like)  # also no weight decay
        lr = config.learning_rate(model.hparams["lr"]) * schedule_factor(config.schedule, t, total, config.warmup)
        params = cast(Params, optax.apply_updates(params, jax.tree_util.tree_map(lambda u: lr * u, updates)))
        return (params, opt_state), loss

    return step


def _block_runner(step: Callable, starts: np.ndarray, ends: np.ndarray) -> Callable:
    """``run_block(carry, j) -> (carry, mean loss)``: the steps of trace block ``j``, from
    ``starts[j]`` to ``ends[j]`` (a scan of fixed length when the blocks are evenly spaced)."""
    lengths = set((ends - starts).tolist())

    def run_block(carry, j):
        if len(lengths) == 1:  # evenly spaced: a scan of fixed length
            every = next(iter(lengths))
            carry, losses = jax.lax.scan(step, carry, j * every + jnp.arange(every))
            return carry, jnp.mean(losses)
        begin, end = jnp.asarray(starts)[j], jnp.asarray(ends)[j]  # a τ grid: blocks of different lengths

        def body(t, state):
            carry, total_loss = state
            carry, loss = step(carry, t)
            return carry, total_loss + loss

        carry, total_loss = jax.lax.fori_loop(begin, end, body, (carry, jnp.zeros((), jnp.float32)))
        return carry, total_loss / (end - begin)

    return run_block


def _trace_risk(config: TrainConfig, model: Model, k_eval: Array) -> Callable:
    """``risk(params, j)`` at trace point ``j``: exact, Monte Carlo (from ``fold_in(k_eval, j)``) or NaN."""

    def risk(params, j):
        if config.trace_risk == "exact":
            return model.exact_risk(params)
        if config.trace_risk == "mc":
            return model.mc_risk(params, jax.random.fold_in(k_eval, j), config.trace_samples)[0]
        return jnp.full((), jnp.nan, jnp.float32)

    return risk


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
