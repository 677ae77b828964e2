"""Property-based tests: random bad and edge-case inputs to the public API give a clear exception
(ValueError or TypeError naming the argument) or a finite result — never a hang, a crash or a
silent NaN. Shapes are fixed and tiny so that the compiled functions are traced once."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import aejax
from aejax.config import TrainConfig
from aejax.grid import AXES, Grid
from aejax.hparams import HPARAMS, full_hparams
from aejax.model import Params, init
from aejax.sources import BernoulliGaussian, Empirical, Gaussian

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
D, N = 8, 6

# Anything a user might pass where a number is expected.
ANY_NUMBER = st.one_of(
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.just([1.0, -1.0]),
    st.just([]),
)
# Finite weights, including exact zeros (dead units) and repeated values (parallel rows).
WEIGHT = st.one_of(st.just(0.0), st.floats(-100.0, 100.0, width=32))


def expect_clear_error(call, names):
    """Run ``call``; a raised error must be ValueError/TypeError naming one of ``names``."""
    try:
        return call()
    except (ValueError, TypeError) as err:
        assert any(name in str(err) for name in names), f"{type(err).__name__}: {err} (expected one of {names})"
        return None


def refusal_of(field, value):
    """What TrainConfig's error for a bad ``field=value`` must say: ``steps=None`` (with no ``time``)
    gives no duration at all, which is refused as "give exactly one of steps ... and time"."""
    return "exactly one of steps" if (field, value) == ("steps", None) else f"{field} must"


@SETTINGS
@given(st.fixed_dictionaries({}, optional={name: ANY_NUMBER for name in ("d", "n", "steps", "batch", "warmup")}))
@example(fields={"steps": None})  # a user's random run drew it and failed (issue 23)
def test_train_config_accepts_or_names_the_bad_field(fields):
    fields = {"d": 8, "n": 4, "steps": 10, **fields}
    bad = [
        k for k, v in fields.items() if not (isinstance(v, int) and not isinstance(v, bool) and v >= (k != "warmup"))
    ]
    config = expect_clear_error(lambda: TrainConfig(**fields), [refusal_of(k, fields[k]) for k in bad])
    assert (config is None) == bool(bad)


@SETTINGS
@given(st.dictionaries(st.sampled_from([*HPARAMS, "learning_rate"]), ANY_NUMBER, max_size=3))
def test_hparams_are_finite_or_refused_by_name(hparams):
    out = expect_clear_error(lambda: full_hparams(TrainConfig(d=8, n=8, steps=10), hparams), [*HPARAMS, "hparams"])
    if out is not None:
        assert all(bool(jnp.all(jnp.isfinite(v))) for v in out.values()), out


@SETTINGS
@given(
    st.one_of(
        st.dictionaries(
            st.sampled_from([*AXES, "sed"]), st.lists(st.floats(-2, 3) | st.integers(-2, 3), max_size=3), max_size=3
        ),
        st.lists(
            st.dictionaries(st.sampled_from(AXES), st.floats(-1, 2) | st.integers(-1, 3), min_size=1, max_size=2),
            max_size=3,
        ),
    )
)
def test_grid_expands_or_names_the_bad_axis(spec):
    grid = expect_clear_error(lambda: Grid.from_spec(spec, 8), ["grid", "rate"])
    if grid is not None:
        keys = [tuple(sorted(run.items())) for run in grid.runs]
        assert len(keys) == len(set(keys)) > 0, "a grid must not hold duplicate runs"


@SETTINGS
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=4, max_size=4),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_sources_are_built_or_refused_by_name(spectrum, p):
    source = expect_clear_error(lambda: Gaussian(4, spectrum=spectrum), ["spectrum"])
    if source is not None:
        assert math.isfinite(float(source.cov_trace())) and float(source.cov_trace()) >= 0
    source = expect_clear_error(lambda: BernoulliGaussian(4, p), ["p must"])
    if source is not None:
        assert bool(jnp.all(jnp.isfinite(source.sample(jax.random.key(0), 16))))


@SETTINGS
@given(
    st.lists(
        st.lists(st.sampled_from([0.0, 1.0, -2.5, 1e-3, 1e6, np.nan]), min_size=3, max_size=3), min_size=1, max_size=5
    ),
    st.sampled_from([None, "pca", "zca"]),
)
def test_empirical_data_is_preprocessed_or_refused(rows, whiten):
    source = expect_clear_error(lambda: Empirical(np.asarray(rows), whiten=whiten), ["data", "whiten"])
    if source is not None:
        assert bool(jnp.all(jnp.isfinite(source.data)))


@SETTINGS
@given(ANY_NUMBER, st.sampled_from(["gaussian", "orthogonal"]))
def test_init_is_finite_or_refuses_decoder_scale(scale, kind):
    params = expect_clear_error(
        lambda: init(jax.random.key(0), D, N, kind=kind, decoder_scale=scale), ["decoder_scale"]
    )
    if params is not None:
        assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(params))


@pytest.fixture(scope="module")
def risks():
    """Jitted exact and Monte Carlo risks at fixed shapes: compiled once per activation."""
    exact = jax.jit(
        lambda p, act, row_normalize: aejax.exact_risk(
            p, Gaussian(D), arch=aejax.Architecture(act, row_normalize=row_normalize)
        ),
        static_argnums=(1, 2),
    )
    mc = jax.jit(
        lambda p, act: aejax.mc_risk(
            p, Gaussian(D), jax.random.key(1), 256, arch=aejax.Architecture(act, row_normalize=False)
        ),
        static_argnums=1,
    )
    return exact, mc


@SETTINGS
@given(
    st.lists(WEIGHT, min_size=D * N, max_size=D * N),
    st.lists(WEIGHT, min_size=N * D, max_size=N * D),
    st.sampled_from(["sign", "relu", "linear", "tanh"]),
    st.booleans(),
)
def test_risks_of_finite_weights_are_finite(risks, a, b, activation, row_normalize):
    """Any finite weights — zero rows, repeated rows, large entries — give finite, non-negative risks."""
    exact, mc = risks
    params = Params(jnp.asarray(a, jnp.float32).reshape(D, N), jnp.asarray(b, jnp.float32).reshape(N, D))
    value = float(exact(params, activation, row_normalize))
    scale = 1 + float(jnp.sum(params.A**2)) * (1 + float(jnp.sum(params.B**2)))
    assert math.isfinite(value) and value >= -1e-5 * scale, value
    mean, se = mc(params, activation)
    assert math.isfinite(float(mean)) and math.isfinite(float(se)) and float(se) >= 0


@SETTINGS
@given(st.floats(1e15, 1e37), st.sampled_from(["sign", "relu", "linear", "tanh"]))
def test_exact_risk_overflow_is_inf_not_nan(risks, scale, activation):
    """A decoder so large that the float32 quadratic term overflows gives +inf (reported as overflow by
    the sweep), never the NaN of inf − inf."""
    exact, _ = risks
    params = init(jax.random.key(2), D, N, decoder_scale=1.0)
    value = float(exact(params._replace(A=params.A * scale), activation, True))
    assert not math.isnan(value) and value > 0


@SETTINGS
@given(st.integers(1, 12), st.integers(0, 3))
def test_apply_with_a_mismatched_input_names_x(d_x, batch_dims):
    params = init(jax.random.key(0), D, N)
    x = jnp.ones((2,) * batch_dims + (d_x,))
    out = expect_clear_error(lambda: aejax.apply(params, x), ["x must have a last axis of size 8"])
    assert (out is None) == (d_x != D)
    if out is not None:
        assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["sign", "relu", "tanh", "linear", "helu"]))
def test_theory_is_finite_or_refuses_r(r, activation):
    value = expect_clear_error(lambda: aejax.theory.gaussian_limit(r, activation), ["r must"])
    if value is not None:
        assert 0 <= float(value) <= 1


@SETTINGS
@given(
    st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=6),
    st.floats(0.01, 100.0),
    st.sampled_from(sorted(aejax.activations.SURROGATES)),
)
def test_sign_and_its_surrogate_gradient_are_finite(x, slope, surrogate):
    x = jnp.asarray(np.resize(np.asarray(x, np.float32), 6))  # the same values, one shape: one program per surrogate
    signs, (value, grad) = _sign_value_and_grad(x, slope, surrogate)
    assert set(np.unique(np.asarray(signs)).tolist()) <= {-1.0, 1.0}
    assert math.isfinite(float(value)) and bool(jnp.all(jnp.isfinite(grad)))


@functools.partial(jax.jit, static_argnums=2)
def _sign_value_and_grad(x, slope, surrogate):
    return aejax.sign(x, slope, surrogate), jax.value_and_grad(lambda u: jnp.sum(aejax.sign(u, slope, surrogate)))(x)
