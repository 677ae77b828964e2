"""aejax.nn: NNX modules hold the functional model's state and reproduce its numbers exactly."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from aejax import model
from aejax.activations import sign
from aejax.nn import Autoencoder, Hyper, Sign

D, N = 12, 6

# Option sets of the functional model; each is checked forward, in loss and in gradients.
OPTIONS = {
    "sign-clip": dict(),
    "sign-tanh-unit-slopes-mask": dict(
        surrogate="tanh", slope=jnp.linspace(0.5, 3.0, N), margin=0.1, mask=(jnp.arange(N) < 4).astype(jnp.float32)
    ),
    "helu-rownorm": dict(activation="helu", margin=0.05, row_normalize=True),
    "tanh": dict(activation="tanh"),
}


@functools.cache
def _x():
    """The inputs, drawn on first use (not while pytest collects, in every xdist worker)."""
    return jax.random.normal(jax.random.key(1), (32, D))


def _params(tied=False, kind="gaussian"):
    return model.init(jax.random.key(0), D, N, kind=kind, tied=tied, decoder_scale=1.0)


def _functional_loss(params, x, **kw):
    return jnp.mean((x - model.apply(params, x, **kw)) ** 2)


def _module_loss(ae, x):
    return jnp.mean((x - ae(x)) ** 2)


def _assert_tree_equal(a, b, tol=0.0):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=0, atol=tol)


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("name", OPTIONS)
def test_forward_loss_and_gradients_match_functional(name, tied):
    params, kw = _params(tied), OPTIONS[name]
    ae = Autoencoder.from_params(params, **kw)
    full_kw = {"activation": "sign", **kw}
    _assert_tree_equal(ae(_x()), model.apply(params, _x(), **full_kw))
    _assert_tree_equal(ae.encode(_x()), model.encode(params, _x(), **full_kw))
    _assert_tree_equal(ae.decode(ae.encode(_x())), model.apply(params, _x(), **full_kw))
    loss, grads = nnx.value_and_grad(_module_loss)(ae, _x())
    ref_loss, ref_grads = jax.value_and_grad(_functional_loss)(params, _x(), **full_kw)
    _assert_tree_equal(loss, ref_loss, 1e-7)
    _assert_tree_equal(model.Params(grads["A"][...], grads["B"][...]), ref_grads, 1e-7)
    assert set(grads.keys()) == {"A", "B"}  # slope, margin and mask are not trained


def test_init_uses_aejax_init_and_conversions_round_trip():
    ae = Autoencoder(D, N, rngs=nnx.Rngs(3), init="orthogonal", decoder_scale=0.5)
    _assert_tree_equal(ae.to_params(), model.init(nnx.Rngs(3).params(), D, N, kind="orthogonal", decoder_scale=0.5))
    for params in (_params(), _params(tied=True)):
        back = Autoencoder.from_params(params, row_normalize=True).to_params()
        assert jnp.shape(back.A) == jnp.shape(params.A)
        _assert_tree_equal(back, params)
    assert Autoencoder(D, N, rngs=nnx.Rngs(0), tied=True).A[...].shape == ()


def test_sgd_in_an_nnx_model_equals_functional_steps():
    """A user's NNX model containing aejax modules trains with nnx.Optimizer exactly as functional SGD."""

    class Pipeline(nnx.Module):  # autoencoder + a learned, shifted sign skip connection
        def __init__(self, params):
            self.ae = Autoencoder.from_params(params, surrogate="tanh", slope=2.0)
            self.skip = Sign("atan", slope=0.5)
            self.weight = nnx.Param(jnp.asarray(0.1))
            self.shift = nnx.Param(jnp.zeros(D))

        def __call__(self, x):
            return self.ae(x) + self.weight[...] * self.skip(x + self.shift[...])

    def functional_loss(theta, x):
        params, weight, shift = theta
        out = model.apply(params, x, surrogate="tanh", slope=2.0) + weight * sign(x + shift, 0.5, "atan")
        return jnp.mean((x - out) ** 2)

    lr, steps = 0.05, 20
    net = Pipeline(_params())
    opt = nnx.Optimizer(net, optax.sgd(lr), wrt=nnx.Param)
    batches = jax.random.normal(jax.random.key(2), (steps, 64, D))

    @nnx.jit
    def nnx_step(net, opt, x):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((x - m(x)) ** 2))(net)
        opt.update(net, grads)
        return loss

    tx = optax.sgd(lr)

    @jax.jit
    def functional_step(theta, state, x):
        loss, grads = jax.value_and_grad(functional_loss)(theta, x)
        updates, state = tx.update(grads, state, theta)
        return optax.apply_updates(theta, updates), state, loss

    theta = (_params(), jnp.asarray(0.1), jnp.zeros(D))
    state = tx.init(theta)
    losses = []
    for x in batches:
        losses.append(nnx_step(net, opt, x))
        theta, state, ref = functional_step(theta, state, x)
        np.testing.assert_allclose(losses[-1], ref, rtol=0, atol=1e-6)
    _assert_tree_equal((net.ae.to_params(), net.weight[...], net.shift[...]), theta, 1e-6)
    assert float(jnp.abs(net.shift[...]).max()) > 0  # trained through the Sign layer's surrogate
    assert losses[-1] < 0.9 * losses[0]  # it trains
    assert float(net.skip.slope[...]) == 0.5 and float(net.ae.slope[...]) == 2.0  # Hyper untouched
    assert int(opt.step[...]) == steps


def test_sign_layer_matches_sign_and_slope_changes_without_retrace():
    u = jnp.linspace(-1.0, 1.0, 9)
    layer = Sign("atan", slope=2.0, margin=0.1)
    traces = []

    @nnx.jit
    def grad_of(layer, u):
        traces.append(1)
        return jax.grad(lambda v: jnp.sum(layer(v)))(u)

    for slope in (2.0, 5.0):
        layer.slope[...] = slope
        ref = jax.grad(lambda v, slope=slope: jnp.sum(sign(v, slope, "atan", 0.1)))(u)
        _assert_tree_equal(grad_of(layer, u), ref, 1e-6)
        _assert_tree_equal(layer(u), sign(u))
    assert len(traces) == 1
    assert not nnx.state(layer, nnx.Param)  # nothing trainable
    assert isinstance(layer.slope, Hyper)


def test_jit_after_split_and_merge():
    ae = Autoencoder.from_params(_params(), surrogate="gauss", row_normalize=True)
    graphdef, state = nnx.split(ae)
    out = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))(state, _x())
    _assert_tree_equal(out, ae(_x()), 1e-6)
    _assert_tree_equal(nnx.jit(lambda m, x: m(x))(ae, _x()), ae(_x()), 1e-6)
    # The mask is state, not structure: a new rate under the same compiled function.
    state["mask"][...] = (jnp.arange(N) < 2).astype(jnp.float32)
    masked = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))(state, _x())
    ref = model.apply(_params(), _x(), surrogate="gauss", row_normalize=True, mask=state["mask"][...])
    _assert_tree_equal(masked, ref, 1e-6)


def test_vmap_ensemble_of_autoencoders():
    keys = jax.random.split(jax.random.key(5), 3)
    ensemble = nnx.vmap(lambda k: Autoencoder(D, N, rngs=nnx.Rngs(params=k), decoder_scale=1.0))(keys)
    assert ensemble.B[...].shape == (3, N, D)
    out = nnx.vmap(lambda m, x: m(x), in_axes=(0, None))(ensemble, _x())
    for i in range(3):
        params_i = jax.tree.map(lambda a, i=i: a[i], ensemble.to_params())
        _assert_tree_equal(out[i], model.apply(params_i, _x()), 1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(), "exactly one of rngs"),
        (dict(rngs=nnx.Rngs(0), params=model.init(jax.random.key(0), D, N)), "exactly one of rngs"),
        (dict(params=model.init(jax.random.key(0), D + 1, N)), r"params.B must have shape \(6, 12\)"),
        (dict(rngs=nnx.Rngs(0), activation="softplus"), "unknown activation 'softplus'"),
        (dict(rngs=nnx.Rngs(0), surrogate="erf"), "unknown surrogate 'erf'"),
        (dict(rngs=nnx.Rngs(0), slope=-1.0), "slope must be finite and positive"),
        (dict(rngs=nnx.Rngs(0), mask=jnp.ones(N + 1)), r"mask must have shape \(6,\)"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Autoencoder(D, N, **kwargs)
