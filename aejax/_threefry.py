"""Threefry-2x32 keys that give JAX's own bits and compile faster on XLA:CPU.

On CPU, JAX lowers each Threefry hash to an XLA ``while`` loop over its five groups of rounds (its
``threefry2x32`` lowering rule for ``cpu``); every other platform gets the twenty rounds unrolled.
XLA:CPU spends about 0.15 CPU s compiling each such loop, and a sweep's block program holds a dozen
(each step's batch, each split and fold-in, the Monte Carlo draws): about a third of its compile.
``IMPL`` is the same generator written with the rounds unrolled on every platform: same key data
(``uint32[2]``), same hash, same counters (JAX's default ``jax_threefry_partitionable`` layout), so
the same bits, and simpler kernels that also run faster. The engine wraps its runs' key data with
it (``wrap_key_data``); the public functions draw with whatever key they are given. (Not every
program gains: under jaxlib 0.10's legacy fusion emitters, an unbatched training program fuses its
chains of key derivations into a few large kernels and compiled 3× slower in one case measured, so
the public functions leave the user's key alone.)

Cases JAX computes another way (``jax_threefry_partitionable`` off, 64-bit draws, arrays of 2**32
elements or more) are handed to JAX's own ``threefry2x32``, so ``IMPL`` is never wrong, only
sometimes no faster.

Examples:
    >>> import jax, numpy as np
    >>> data = jax.random.key_data(jax.random.key(7))
    >>> fast, stock = wrap_key_data(data), jax.random.wrap_key_data(data)
    >>> bool(np.array_equal(jax.random.normal(fast, (3, 5)), jax.random.normal(stock, (3, 5))))
    True
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import define_prng_impl

STOCK = "threefry2x32"
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


# (add, xor, or, shift left, logical shift right) on uint32 arrays: NumPy's operators, or lax's primitives,
# which trace to the same XLA operations as jax.numpy's operators without a jit wrapper each (the hash is
# 80 operations: traced with jax.numpy's operators, a block program's eight hashes were a quarter of its tracing)
_NUMPY_OPS = (operator.add, operator.xor, operator.or_, operator.lshift, operator.rshift)
_LAX_OPS = (lax.add, lax.bitwise_xor, lax.bitwise_or, lax.shift_left, lax.shift_right_logical)


def _hash(k1, k2, x1, x2):
    """Threefry-2x32, twenty rounds unrolled: scalar key words ``k1, k2``, counter words ``x1, x2``;
    ``uint32`` JAX or NumPy arrays (NumPy's wrap around as the hash requires)."""
    numpy = all(isinstance(v, np.ndarray | np.generic) for v in (k1, k2, x1, x2))
    add, xor, or_, shl, shr = _NUMPY_OPS if numpy else _LAX_OPS
    ks = (k1, k2, xor(xor(k1, k2), _PARITY))
    x1, x2 = add(x1, ks[0]), add(x2, ks[1])
    for group in range(5):
        for distance in _ROTATIONS[group % 2]:
            x1 = add(x1, x2)
            x2 = xor(or_(shl(x2, np.uint32(distance)), shr(x2, np.uint32(32 - distance))), x1)
        x1 = add(x1, ks[(group + 1) % 3])
        x2 = add(add(x2, ks[(group + 2) % 3]), np.uint32(group + 1))
    return x1, x2


def _counters(shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """The row-major index of every element as (high, low) ``uint32`` words; the high word is 0,
    since callers hand arrays of 2**32 elements or more to JAX's own generator."""
    if not shape:
        zero = jnp.zeros((), np.uint32)
        return zero, zero
    low = jnp.zeros(shape, np.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        low = low + lax.broadcasted_iota(np.uint32, shape, axis) * np.uint32(stride)
        stride *= shape[axis]
    return jnp.zeros(shape, np.uint32), low


def _own_layout(shape: tuple[int, ...]) -> bool:
    """Whether JAX draws ``shape`` with the partitionable counters that ``_counters`` reproduces."""
    partitionable = jax.config.jax_threefry_partitionable  # pyright: ignore[reportAttributeAccessIssue]
    return bool(partitionable) and math.prod(shape) < 2**32


def _stock(key: jax.Array) -> jax.Array:
    return jax.random.wrap_key_data(key, impl=STOCK)


def _seed(seed: jax.Array) -> jax.Array:
    return jax.random.key_data(jax.random.key(seed, impl=STOCK))


def _split(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    if not _own_layout(shape):
        return jax.random.key_data(jax.random.split(_stock(key), shape))
    bits = _hash(key[0], key[1], *_counters(shape))
    return jnp.stack(bits, axis=len(shape))


def _fold_in(key: jax.Array, data: int | jax.Array) -> jax.Array:
    high, low = _seed(jnp.asarray(data, np.uint32))  # JAX hashes the pair (0, data) as one counter
    return jnp.concatenate(_hash(key[0], key[1], high[None], low[None]))


def _random_bits(key: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    if bit_width == 64 or not _own_layout(shape):
        dtype = np.dtype(f"uint{bit_width}")
        return jax.random.bits(_stock(key), shape, dtype)
    bits1, bits2 = _hash(key[0], key[1], *_counters(shape))
    return lax.convert_element_type(bits1 ^ bits2, np.dtype(f"uint{bit_width}"))


IMPL = define_prng_impl(
    key_shape=(2,),
    seed=_seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="aejax_threefry2x32",
    tag="aefry",
)


def wrap_key_data(data: jax.Array) -> jax.Array:
    """A key of ``IMPL`` from Threefry key data (``uint32[..., 2]``): JAX's bits, faster to compile."""
    return jax.random.wrap_key_data(data, impl=IMPL)


def fold_in_data(key_data: np.ndarray | jax.Array, data: Sequence[int] | np.ndarray) -> np.ndarray:
    """``key_data(fold_in(key, i))`` for each ``i`` in ``data`` (integers in [0, 2**32)), computed in
    NumPy: no program to compile. Shape ``(len(data), 2)``.

    Examples:
        >>> import jax, numpy as np
        >>> k = jax.random.key(3)
        >>> fast = fold_in_data(jax.random.key_data(k), [5])[0]
        >>> bool(np.array_equal(fast, jax.random.key_data(jax.random.fold_in(k, 5))))
        True
    """
    words, values = np.asarray(key_data, np.uint32), np.asarray(data)
    if values.ndim != 1 or values.dtype.kind not in "iu" or np.any(values < 0) or np.any(values >= 2**32):
        raise ValueError(f"data must be a list of integers in [0, 2**32), got {data!r}")
    out = _hash(words[0], words[1], np.zeros(values.shape, np.uint32), values.astype(np.uint32))
    return np.stack(out, axis=1)


def key(seed: int | jax.Array) -> jax.Array:
    """``jax.random.key(seed)`` of ``IMPL``: the same key data, the same draws."""
    return jax.random.key(seed, impl=IMPL)
