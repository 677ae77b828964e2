"""aejax._threefry draws JAX's own Threefry bits (checked against jax.random's threefry2x32, an
independent implementation), under jit and vmap, and lowers without XLA while loops on CPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax import _threefry

SEEDS = [0, 1, 7, 2**31 - 1]
SHAPES = [(), (3,), (2, 3, 4)]  # a scalar, an odd count, several axes
DRAWS = {
    "normal": jax.random.normal,
    "uniform": jax.random.uniform,
    "bits32": lambda k, s: jax.random.bits(k, s),
    "bits8": lambda k, s: jax.random.bits(k, s, jnp.uint8),
    "bits16": lambda k, s: jax.random.bits(k, s, jnp.uint16),
    "randint": lambda k, s: jax.random.randint(k, s, 0, 100),
    "bernoulli": lambda k, s: jax.random.bernoulli(k, 0.3, s),
    "split": lambda k, s: jax.random.key_data(jax.random.split(k, s or 2)),
}


def _pair(seed):
    data = jax.random.key_data(jax.random.key(seed))
    return _threefry.wrap_key_data(data), jax.random.wrap_key_data(data)


def _every_draw(wrap):
    """Every draw of DRAWS at every shape, and fold-ins, for every seed: one program."""

    def one(data):
        key = wrap(data)
        out = {f"{name} {shape}": draw(key, shape) for name, draw in DRAWS.items() for shape in SHAPES}
        for value in (0, 1, 5, 123456, 2**32 - 1):
            out[f"fold_in {value}"] = jax.random.key_data(jax.random.fold_in(key, np.uint32(value)))
        return out

    datas = jnp.stack([jax.random.key_data(jax.random.key(seed)) for seed in SEEDS])
    return jax.jit(jax.vmap(one))(datas)


def test_draws_equal_jax_threefry():
    fast, stock = _every_draw(_threefry.wrap_key_data), _every_draw(jax.random.wrap_key_data)
    for name in stock:
        np.testing.assert_array_equal(fast[name], stock[name], err_msg=name)


def test_eager_draws_equal_jax_threefry():
    fast, stock = _pair(7)
    np.testing.assert_array_equal(jax.random.normal(fast, (3, 5)), jax.random.normal(stock, (3, 5)))
    np.testing.assert_array_equal(
        jax.random.key_data(jax.random.fold_in(fast, 9)), jax.random.key_data(jax.random.fold_in(stock, 9))
    )


def test_seed_gives_jax_key_data():
    for seed in SEEDS:
        np.testing.assert_array_equal(
            jax.random.key_data(_threefry.key(seed)), jax.random.key_data(jax.random.key(seed))
        )


def test_jit_vmap_and_compound_draws():
    datas = jax.random.key_data(jax.random.split(jax.random.key(3), 4))

    def draws(wrap):
        def one(data, i):
            key = jax.random.fold_in(wrap(data), i)
            a, b = jax.random.split(key)
            return jax.random.normal(a, (6, 3)), jax.random.permutation(b, 20), jax.random.gamma(b, 2.0, (4,))

        return jax.jit(jax.vmap(one))(datas, jnp.arange(4))

    for fast, stock in zip(draws(_threefry.wrap_key_data), draws(jax.random.wrap_key_data), strict=True):
        np.testing.assert_array_equal(fast, stock)


def test_handed_to_jax_when_not_partitionable():
    fast, stock = _pair(11)
    with jax.threefry_partitionable(False):
        np.testing.assert_array_equal(jax.random.normal(fast, (5, 3)), jax.random.normal(stock, (5, 3)))
        np.testing.assert_array_equal(
            jax.random.key_data(jax.random.split(fast, 3)), jax.random.key_data(jax.random.split(stock, 3))
        )


def test_lowers_without_loops_on_cpu():
    """The point of the module: JAX's CPU rule lowers each hash to an XLA while loop; ours unrolls."""

    def draw(wrap):
        return jax.jit(lambda d: jax.random.normal(jax.random.fold_in(wrap(d), 1), (8,))).lower(
            jax.random.key_data(jax.random.key(0))
        )

    assert "while" not in draw(_threefry.wrap_key_data).as_text()
    assert "while" in draw(jax.random.wrap_key_data).as_text()  # the stock rule this module replaces


def test_numpy_fold_in_and_run_keys_equal_jax():
    from aejax.train import run_key, run_key_data

    data = [0, 1, 2, 1000, 2**31 - 1, 2**32 - 1]
    for seed in SEEDS:
        key = jax.random.key(seed)
        expected = np.stack([jax.random.key_data(jax.random.fold_in(key, np.uint32(i))) for i in data])
        np.testing.assert_array_equal(_threefry.fold_in_data(jax.random.key_data(key), data), expected)
    expected = np.stack([jax.random.key_data(run_key(5, s)) for s in (0, 3, 7)])
    np.testing.assert_array_equal(run_key_data(5, [0, 3, 7]), expected)


@pytest.mark.parametrize("data", [[-1], [2**32], [0.5], [[1, 2]]])
def test_numpy_fold_in_refuses(data):
    with pytest.raises(ValueError, match="data must be a list of integers in"):
        _threefry.fold_in_data(np.zeros(2, np.uint32), data)


@pytest.mark.slow  # a whole run on both generators, 3 s; the draws themselves are compared by default: the slow tier
def test_a_runs_record_has_the_bits_of_jax_threefry_keys(monkeypatch):
    """The engine's run program (training, trace, final record) draws through IMPL: the same bits as
    the same program drawing with JAX's own keys."""
    import aejax
    from aejax import programs, record

    config = aejax.TrainConfig(d=8, n=4, steps=20, batch=16)
    data = jax.random.key_data(jax.random.key(4))

    def outputs():
        return jax.tree_util.tree_leaves(jax.jit(programs.make_run(config, 64))(data, {"lr": 0.05}))

    fast = outputs()
    monkeypatch.setattr(programs, "wrap_key_data", jax.random.wrap_key_data)
    monkeypatch.setattr(record, "threefry_key", jax.random.key)
    stock = outputs()
    assert len(fast) == len(stock) > 10
    for a, b in zip(fast, stock, strict=True):
        np.testing.assert_array_equal(a, b)
