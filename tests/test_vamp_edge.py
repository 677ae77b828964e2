"""The multi-layer (VAMP) decoder at the p → 1 edge (issue 24, item 5): the zero atom's weight 1 − p
is 0 at p = 1, and log 0 in the posterior's softmax made every gradient NaN on the first update that
reached p_eff = min(p·e^{log_p}, 1) = 1. Its gradients are now finite, agree with finite differences,
and training at p ≥ 0.99 is finite; a NaN that shows no growth of the loss is called ``nonfinite``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import aejax
from aejax.decoders import NonlinearDecoder, UnrolledHead, init_params
from aejax.model import init
from aejax.sources import BernoulliGaussian
from aejax.theory.priors import posterior


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("prior", ["bg", "sr"])
def test_posterior_gradient_in_p_is_finite_at_one_and_matches_differences_below(prior):
    y = jnp.linspace(-1.0, 3.0, 9)
    # Compiled once each: p is traced, so every p below runs the same two programs.
    mean_sum = jax.jit(lambda p, snr=4.0: jnp.sum(posterior(prior, p, snr, y)[0]))
    grad = jax.jit(jax.grad(mean_sum))

    assert np.isfinite(grad(1.0))
    for p in (0.5, 0.99):
        h = 1e-6
        difference = (mean_sum(p + h) - mean_sum(p - h)) / (2 * h)
        np.testing.assert_allclose(grad(p), difference, rtol=1e-5)


@pytest.mark.usefixtures("x64")
def test_posterior_at_p_one_is_the_gaussian_posterior_with_its_gradients():
    """bg at p = 1: x ~ N(0, 1), so E[x | y] = y·snr/(1 + snr), independently of the mixture code."""
    y, snr = jnp.linspace(-3.0, 3.0, 7), 2.5

    @jax.jit  # one compiled program instead of op-by-op dispatch
    def posterior_and_gradient(y):
        return posterior("bg", 1.0, snr, y), jax.grad(lambda v: jnp.sum(posterior("bg", 1.0, snr, v)[0]))(y)

    (mean, var), grad_y = posterior_and_gradient(y)
    np.testing.assert_allclose(mean, y * snr / (1 + snr), rtol=1e-12)
    np.testing.assert_allclose(var, 1 / (1 + snr), rtol=1e-12)
    np.testing.assert_allclose(grad_y, snr / (1 + snr), rtol=1e-12)


def _loss(head, dec, params, x):
    s = jnp.where(x @ params.B.T >= 0, 1.0, -1.0)
    return jnp.mean((x - dec.decode(params._replace(head=head), s)) ** 2)


_loss_and_grad = jax.jit(jax.value_and_grad(_loss))  # one program gives both (the multilayer decoder compiles long)


def decoder_loss(p, prior="bg"):
    """The decoder's loss and its gradient in the head, compiled once per dtype (p is a leaf of the decoder)."""
    d, n = 16, 8
    dec = NonlinearDecoder("multilayer", prior=prior, layers=2, p=p, rate=n / d)
    params = init_params(dec, init(jax.random.key(1), d, n, kind="orthogonal"))
    x = BernoulliGaussian(d, p).sample(jax.random.key(2), 32)
    return (
        (lambda head: _loss_and_grad(head, dec, params, x)[0]),
        (lambda head: _loss_and_grad(head, dec, params, x)[1]),
        params.head,
    )


@pytest.mark.parametrize("p", [0.995, 1.0])
def test_head_gradient_is_finite_where_p_is_clipped_at_one(p):
    """log_p = 0.02 puts p·e^{log_p} above 1: the clipped sparsity has gradient 0, the others are finite."""
    _, grad, head = decoder_loss(p)
    grads = grad(head._replace(log_p=jnp.full(2, 0.02)))
    assert all(np.isfinite(g).all() for g in grads)
    np.testing.assert_array_equal(grads.log_p, 0.0)


@pytest.mark.usefixtures("x64")
def test_head_gradient_matches_finite_differences_near_the_edge():
    loss, grad, _ = decoder_loss(0.99)
    head = UnrolledHead(jnp.asarray([0.1, -0.1]), jnp.asarray([0.005, -0.02]), jnp.asarray([0.05, 0.0]))
    grads = grad(head)
    h = 1e-6
    for name in ("log_snr", "log_p", "log_precision"):
        for k in range(2):
            bump = jnp.zeros(2).at[k].set(h)
            up = loss(head._replace(**{name: getattr(head, name) + bump}))
            down = loss(head._replace(**{name: getattr(head, name) - bump}))
            np.testing.assert_allclose(getattr(grads, name)[k], (up - down) / (2 * h), rtol=1e-4, atol=1e-9)


@pytest.mark.slow  # a multilayer decoder compiles for long (the gradient checks at p → 1 stay fast)
@pytest.mark.parametrize("source, trainable", [("bg", "head"), ("sr", "all")])
def test_training_at_p_near_one_is_finite(source, trainable):
    config = aejax.TrainConfig(
        d=16, n=8, steps=24, batch=16, source=source, decoder="multilayer", layers=2, trainable=trainable,
        risk_eval="mc", trace_samples=64, init="orthogonal",
    )  # fmt: skip
    ds = aejax.sweep(config, {"seed": [0], "p": [0.99, 0.995, 1.0]}, mc_samples=512, progress=False, devices=1)
    assert set(ds["status"].values.ravel()) == {"ok"}, ds["status"].values
    assert np.isfinite(ds["loss_trace"].values).all() and np.isfinite(ds["risk"].values).all()
