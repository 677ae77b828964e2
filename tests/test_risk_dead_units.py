"""exact_risk with dead encoder rows (q_i = b_iᵀ Σ b_i = 0), against Monte Carlo.

A dead unit outputs the constant σ(0) (sign: +1, relu/tanh: 0, sigmoid: 1/2), so two dead units
are perfectly correlated, not independent. Rows are dead either because they are zero or because
they lie in the null space of a low-rank covariance.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import aejax
from aejax.model import Params
from aejax.risk import gaussian_moments
from aejax.sources import Gaussian

D = 16


def _low_rank_source(rank=10):
    """N(0, Σ) with Σ = diag(M Mᵀ, 0): a random PSD block on the first ``rank`` coordinates."""
    m = np.random.default_rng(0).normal(size=(rank, rank)) / np.sqrt(rank)
    cov = np.zeros((D, D))
    cov[:rank, :rank] = m @ m.T + 0.1 * np.eye(rank)
    return Gaussian(D, covariance=cov)


def _params(dead, kind):
    """Orthogonal encoder with ``dead`` dead rows; the dead units share one decoder column."""
    B = aejax.init(jax.random.key(0), D, D, kind="orthogonal").B
    if kind == "zero_rows":
        B = B.at[:dead].set(0.0)
    else:  # rows in the null space of the covariance (the last D - 10 coordinates)
        null = jax.random.normal(jax.random.key(1), (dead, D - 10))
        B = B.at[:dead].set(jnp.concatenate([jnp.zeros((dead, 10)), null], axis=1))
    A = jax.random.normal(jax.random.key(2), (D, D)) * 0.25
    if dead:
        A = A.at[:, :dead].set(A[:, :1])
    return Params(A, B)


DEAD = [0, 1, 2, 3]


@functools.cache
def _risks(activation, kind):
    """exact_risk and mc_risk (400k samples) of one activation and source for every number of dead rows,
    as one compiled program vmapped over the cases: the samples (one key) are drawn once for all four."""
    arch = aejax.Architecture(activation, row_normalize=False)
    source = Gaussian(D) if kind == "zero_rows" else _low_rank_source()
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *(_params(dead, kind) for dead in DEAD))

    @jax.jit
    def risks(params, source, key):
        return jax.vmap(
            lambda p: (aejax.exact_risk(p, source, arch=arch), *aejax.mc_risk(p, source, key, 400_000, arch=arch))
        )(params)

    return jax.device_get(risks(params, source, jax.random.key(3)))


@pytest.mark.parametrize("dead", DEAD)
@pytest.mark.parametrize("kind", ["zero_rows", "low_rank_null_space"])
@pytest.mark.parametrize("activation", ["sign", "relu", "tanh", jax.nn.sigmoid])
def test_exact_risk_with_dead_rows_matches_monte_carlo(activation, kind, dead):
    source = Gaussian(D) if kind == "zero_rows" else _low_rank_source()
    params = _params(dead, kind)
    if dead:  # the rows are really dead: their pre-activations are exactly 0 on samples
        x = source.sample(jax.random.key(5), 64)
        assert float(jnp.max(jnp.abs(x @ params.B[:dead].T))) == 0.0
    exact, mean, se = (float(v[DEAD.index(dead)]) for v in _risks(activation, kind))
    assert abs(exact - mean) < 4 * se + 2e-4, (exact, mean, se)


@pytest.mark.parametrize("activation, sigma0", [("sign", 1.0), ("relu", 0.0), ("tanh", 0.0), (jax.nn.sigmoid, 0.5)])
def test_dead_unit_moments_are_those_of_the_constant_sigma_of_zero(activation, sigma0):
    """C_ss between dead units is σ(0)², with a live unit σ(0)·E σ(u_j) (numerical integral), C_xs is 0."""
    B = aejax.init(jax.random.key(0), 4, 4, kind="orthogonal").B.at[:2].set(0.0)
    c_xs, c_ss = jax.jit(gaussian_moments, static_argnums=2)(B, Gaussian(4), activation)
    fn = aejax.activations.get_activation(activation) if isinstance(activation, str) else activation
    g = np.linspace(-10, 10, 20000)  # no node at the jump of sign
    weights = np.exp(-(g**2) / 2) / np.sqrt(2 * np.pi) * (g[1] - g[0])
    live_mean = float(np.sum(weights * np.asarray(fn(jnp.asarray(g, jnp.float32)), dtype=np.float64)))  # q_j = 1
    np.testing.assert_allclose(np.asarray(c_ss)[:2, :2], sigma0**2, atol=2e-4)
    np.testing.assert_allclose(np.asarray(c_ss)[:2, 2:], sigma0 * live_mean, atol=2e-4)
    np.testing.assert_allclose(np.asarray(c_ss)[2:, :2], sigma0 * live_mean, atol=2e-4)
    np.testing.assert_allclose(np.asarray(c_xs)[:, :2], 0.0, atol=1e-7)


@pytest.mark.parametrize("activation", ["sign", "relu", "tanh"])
def test_exact_risk_gradient_is_finite_with_several_dead_rows(activation):
    params = _params(3, "zero_rows")
    grads = jax.jit(  # compiled, as training uses it
        jax.grad(lambda p: aejax.exact_risk(p, Gaussian(D), arch=aejax.Architecture(activation, row_normalize=False)))
    )(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
