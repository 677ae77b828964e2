"""Extension points (issue 22, items 3–5 and 7): users' own optimizers, activations, surrogates,
sources and data, their stable identities in sweep fingerprints, and the compilation cache."""

import dataclasses
import json
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import aejax
from aejax import activations
from aejax.identity import describe
from aejax.sources import Empirical, Gaussian, Source
from aejax.sweeping import config_description

ROOT = Path(__file__).resolve().parents[1]
KEY = jax.random.key(0)
SMALL = dict(d=8, n=8, steps=16, batch=16, eval_every=8)


_BUILT_IN_RUNS = {}  # config -> run: the built-in reference config of several tests is compiled once


def run(config, hparams=None, data=None):
    named = (config.optimizer, config.activation, config.surrogate, config.source)
    shared = hparams is None and data is None and all(isinstance(v, str) for v in named)
    if shared and config in _BUILT_IN_RUNS:
        return _BUILT_IN_RUNS[config]
    params, trace = jax.jit(aejax.make_train(config))(KEY, hparams or {}, data)
    if shared:
        _BUILT_IN_RUNS[config] = params, trace
    return params, trace


# ---------- 3. stable identity in fingerprints ----------


def test_fingerprint_of_a_named_optax_transformation_has_no_memory_address():
    cfg = aejax.TrainConfig(**SMALL, optimizer=aejax.named(optax.adam(1.0), "adam-lr1"))
    text = json.dumps(config_description(cfg))
    assert "0x" not in text and '"optimizer": {"name": "adam-lr1"}' in text


@pytest.mark.parametrize(
    "field, value",
    [("optimizer", optax.adam(1.0)), ("activation", lambda u: jnp.tanh(u)), ("surrogate", lambda u, k: k + 0 * u)],
)
def test_an_object_without_stable_identity_is_refused_with_what_to_pass(field, value):
    cfg = aejax.TrainConfig(**SMALL, **{field: value})
    with pytest.raises(aejax.InputError, match=rf"{field}=.*aejax\.named\(obj"):
        config_description(cfg)


def test_a_sweep_kept_in_memory_needs_no_stable_identity():
    cfg = aejax.TrainConfig(**SMALL, activation=lambda u: jnp.tanh(u), risk_eval="none")  # no trace risk: quicker
    assert aejax.sweep(cfg, {"seed": [0]}, mc_samples=64, progress=False)["status"].values.tolist() == ["ok"]
    with pytest.raises(aejax.InputError, match=r"activation=.*aejax\.named"):
        aejax.sweep(cfg, {"seed": [0]}, out=tempfile.mkdtemp(), mc_samples=64, progress=False)


def test_top_level_functions_dataclasses_and_sources_have_structural_identities():
    assert describe("activation", jax.nn.softplus)["function"].endswith(":softplus")
    prior = aejax.theory.Prior("sr", means=(-1.0, 1.0), stds=(0.0, 0.0), weights=(0.5, 0.5))
    assert describe("prior", prior)["means"] == [-1.0, 1.0]
    a, b = Gaussian(3, spectrum=[1.0, 2.0, 3.0]), Gaussian(3, spectrum=np.array([1.0, 2.0, 3.0]))
    assert describe("source", a) == describe("source", b) != describe("source", Gaussian(3))


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys, json, optax, jax.numpy as jnp, aejax

    def swish(u, slope):  # a top-level function: identified by module:qualname
        return u * jnp.tanh(slope * u)

    swish.__module__ = "__main__"
    cfg = aejax.TrainConfig(d=8, n=8, steps=8, batch=8, eval_every=4,
                            optimizer=aejax.named(optax.scale_by_adam(), "adam-direction"),
                            surrogate=aejax.named(lambda u, k: k * (abs(k * u) <= 1), "clip-again"))
    ds = aejax.sweep(cfg, {"seed": [0, 1]}, out=sys.argv[1], mc_samples=64, progress=False)
    print(json.dumps({"compilations": int(ds.attrs["compilations"]), "risk": ds["risk"].values.tolist()}))
    """
)


DESCRIBE_SCRIPT = textwrap.dedent(
    """
    import json, optax, jax, aejax
    from aejax.sources import Gaussian
    from aejax.sweeping import config_description
    cfg = aejax.TrainConfig(d=4, n=4, steps=8, optimizer=aejax.named(optax.adam(1.0), "adam"),
                            activation=jax.nn.softplus, source=Gaussian(4, spectrum=[1.0, 2.0, 3.0, 4.0]))
    print(json.dumps(config_description(cfg), sort_keys=True))
    """
)


def test_config_description_is_the_same_in_a_new_process(tmp_path):
    script = tmp_path / "describe.py"
    script.write_text(DESCRIBE_SCRIPT)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"}
    runs = [subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout and "0x" not in runs[0].stdout


@pytest.mark.slow  # two processes that each compile a sweep: about 35 s on a busy 2-core machine
def test_sweep_with_user_objects_resumes_in_a_new_process(tmp_path):
    """Two processes, the same sweep into the same ``out``: the second reuses every run (no program
    compiled, the same risks). Before stable identities the fingerprint held function reprs with
    memory addresses and the second process refused the directory as a different sweep."""
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"}

    def once():
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "out")], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = once(), once()
    assert first["compilations"] == 1 and second["compilations"] == 0
    assert second["risk"] == first["risk"]


# ---------- 4. optax transformations: direction, own learning rate, own schedule ----------


def test_a_bare_direction_trains_exactly_as_the_built_in_optimizer():
    """``optax.scale_by_adam()`` is stepped against (it points along the gradient); before, aejax
    added it to the weights and the run climbed the risk."""
    _, built_in = run(aejax.TrainConfig(**SMALL, optimizer="adam"))
    _, direction = run(aejax.TrainConfig(**SMALL, optimizer=optax.scale_by_adam()))
    np.testing.assert_array_equal(direction["risk"], built_in["risk"])
    assert direction["risk"][-1] < 1.0  # below the zero decoder's risk tr Σ / d


@pytest.mark.parametrize(
    "tx, what",
    [
        (optax.adam(1e-3), "learning rate of its own"),
        (optax.sgd(0.01), "learning rate of its own"),
        (optax.adam(optax.cosine_decay_schedule(1.0, 100)), "its own schedule"),
        (optax.inject_hyperparams(optax.adam)(learning_rate=1.0), "its own schedule"),
    ],
)
def test_a_transformation_with_its_own_learning_rate_or_schedule_is_warned_about(tx, what):
    with pytest.warns(UserWarning, match=what):
        aejax.TrainConfig(**SMALL, optimizer=tx)


@pytest.mark.parametrize("tx", [optax.adam(1.0), optax.scale_by_adam(), optax.identity(), optax.rmsprop(1.0)])
def test_a_unit_transformation_is_not_warned_about(tx):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aejax.TrainConfig(**SMALL, optimizer=tx)


def test_a_transformation_without_one_sign_is_refused():
    with pytest.raises(aejax.InputError, match="one sign"):
        aejax.TrainConfig(**SMALL, optimizer=optax.scale(0.0))


# ---------- 5. activations and surrogates ----------


def test_callable_activation_in_train_config_receives_the_traced_slope():
    """``activation=f(u, slope)``: slope 1 reproduces the built-in tanh bit for bit; two slopes
    vmapped in one program give different runs, and the program is traced once."""
    traces = []

    def scaled_tanh(u, slope):
        traces.append(1)
        return jnp.tanh(slope * u)

    cfg = aejax.TrainConfig(**SMALL, activation=scaled_tanh)
    _, built_in = run(aejax.TrainConfig(**SMALL, activation="tanh"))
    train = jax.jit(jax.vmap(aejax.make_train(cfg), in_axes=(None, {"slope": 0})))
    _, both = train(KEY, {"slope": jnp.array([1.0, 3.0])})
    count = len(traces)
    train(KEY, {"slope": jnp.array([2.0, 4.0])})
    assert len(traces) == count  # the slope is data, not structure
    np.testing.assert_allclose(both["risk"][0], built_in["risk"], rtol=1e-6)
    assert not np.allclose(both["risk"][0], both["risk"][1])


def test_callable_surrogate_matches_the_built_in_it_reimplements_and_registers_nothing():
    def my_clip(u, k):  # the clip surrogate written by hand
        return jnp.where(jnp.abs(k * u) <= 1, k, 0.0)

    before = dict(activations.SURROGATES)
    _, mine = run(aejax.TrainConfig(**SMALL, surrogate=my_clip))
    _, clip = run(aejax.TrainConfig(**SMALL, surrogate="clip"))
    np.testing.assert_array_equal(mine["risk"], clip["risk"])
    assert before == activations.SURROGATES
    assert float(jax.grad(lambda u: aejax.sign(u, 2.0, my_clip))(0.4)) == 2.0


# ---------- 5. the Source protocol ----------


@dataclasses.dataclass(frozen=True)
class Spiked(Source):
    """A user's source written as the docs say: no _leaves, arrays are leaves."""

    d: int
    direction: jax.Array
    strength: float = 2.0

    def sample(self, key, batch):
        k1, k2 = jax.random.split(key)
        z = jax.random.normal(k1, (batch, self.d))
        return z + self.strength * jax.random.normal(k2, (batch, 1)) * self.direction


def test_a_source_without_leaves_declared_has_its_arrays_as_leaves():
    src = Spiked(4, jnp.ones(4) / 2)
    assert jax.tree_util.tree_leaves(src) == [src.direction]

    @jax.jit
    def mean_square(s):
        return jnp.mean(s.sample(KEY, 64) ** 2)

    # a second instance with other numbers: before, JAX failed comparing static metadata
    assert float(mean_square(src)) != float(mean_square(Spiked(4, jnp.zeros(4))))


def test_an_array_outside_declared_leaves_is_an_error_naming_the_field():
    @dataclasses.dataclass(frozen=True)
    class Forgot(Source):
        _leaves = ("scale",)
        d: int
        scale: jax.Array
        shift: jax.Array

    with pytest.raises(aejax.InputTypeError, match="field 'shift' of Forgot holds an array but is not in _leaves"):
        jax.tree_util.tree_leaves(Forgot(2, jnp.ones(2), jnp.zeros(2)))


def test_sources_compare_and_hash_by_content():
    rows = np.random.default_rng(0).normal(size=(32, 4))
    a, b = Empirical(rows), Empirical(rows.copy())
    assert a == b and hash(a) == hash(b) and a != Empirical(rows[::-1])
    assert Spiked(4, jnp.ones(4)) == Spiked(4, jnp.ones(4)) != Spiked(4, jnp.ones(4), strength=3.0)
    config = dict(d=4, n=4, steps=8, mode="dataset")
    assert aejax.TrainConfig(**config, source=a) == aejax.TrainConfig(**config, source=b)


# ---------- 5. data as leaves: new data of the same shape does not recompile ----------


def test_new_data_of_the_same_shape_is_an_input_not_a_recompile():
    traces = []
    rng = np.random.default_rng(1)
    first, second = (Empirical(rng.normal(size=(64, 8))) for _ in range(2))
    cfg = aejax.TrainConfig(**SMALL, mode="dataset", source=first)
    train = aejax.make_train(cfg)

    @jax.jit
    def counted(key, data):
        traces.append(1)
        return train(key, {}, data)

    _, on_first = counted(KEY, cfg.data)
    _, on_second = counted(KEY, {"source": second, "test_source": None})
    assert len(traces) == 1
    # each equals the run of a config built on that data (its arrays closed over as constants)
    np.testing.assert_allclose(on_first["risk"], run(cfg)[1]["risk"], rtol=1e-6)
    other = dataclasses.replace(cfg, source=second)
    np.testing.assert_allclose(on_second["risk"], run(other)[1]["risk"], rtol=1e-6)


def test_a_sweep_on_new_data_of_the_same_shape_reuses_the_compiled_program():
    rng = np.random.default_rng(2)
    kw = dict(mc_samples=64, progress=False)
    data = Empirical(rng.normal(size=(40, 8)))
    config = aejax.TrainConfig(d=8, n=8, steps=8, batch=9, mode="dataset", source=data, risk_eval="none")
    first = aejax.sweep(config, {"seed": [0]}, **kw)
    second = aejax.sweep(dataclasses.replace(config, source=Empirical(rng.normal(size=(40, 8)))), {"seed": [0]}, **kw)
    assert (first.attrs["compilations"], second.attrs["compilations"]) == (1, 0)
    assert float(first["train_risk"].values[0]) != float(second["train_risk"].values[0])


def test_bind_refuses_data_of_another_shape():
    cfg = aejax.TrainConfig(**SMALL, mode="dataset", source=Empirical(np.random.default_rng(3).normal(size=(20, 8))))
    other = Empirical(np.random.default_rng(3).normal(size=(30, 8)))
    with pytest.raises(aejax.InputError, match=r"data\['source'\] must have arrays of shapes \[\(20, 8\)\]"):
        cfg.bind({}, {"source": other, "test_source": None})


# ---------- 7. the persistent compilation cache ----------


def test_enable_compilation_cache_sets_a_bounded_directory(tmp_path):
    try:
        path = aejax.enable_compilation_cache(tmp_path / "cache", max_size=2**20)
        assert path == str(tmp_path / "cache") and Path(path).is_dir()
        assert jax.config.jax_compilation_cache_dir == path  # pyright: ignore[reportAttributeAccessIssue]
        # bounded by aejax's own pruning (JAX's eviction needs `filelock` and races with other processes)
        assert jax.config.jax_compilation_cache_max_size == -1  # pyright: ignore[reportAttributeAccessIssue]
        with pytest.raises(aejax.InputError, match="max_size"):
            aejax.enable_compilation_cache(tmp_path, max_size=0)
    finally:
        aejax.cache.disable_compilation_cache()
    assert jax.config.jax_compilation_cache_dir is None  # pyright: ignore[reportAttributeAccessIssue]


def test_enabling_the_cache_prunes_it_to_max_size_oldest_first(tmp_path):
    """The size bound: entries beyond max_size are removed, least recently written first."""
    import os

    directory = tmp_path / "cache"
    directory.mkdir()
    for i in range(5):
        path = directory / f"entry{i}"
        path.write_bytes(bytes(1000))
        os.utime(path, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))  # entry0 is the oldest
    try:
        aejax.enable_compilation_cache(directory, max_size=2500)
    finally:
        aejax.cache.disable_compilation_cache()
    assert sorted(p.name for p in directory.iterdir()) == ["entry3", "entry4"]
