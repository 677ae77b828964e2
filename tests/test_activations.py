"""Activations: exact sign forward, surrogate derivatives (docs/theory.md §5), HeLU, registry.

References are the docs/theory.md §5 formulas written out in NumPy below and scipy quadrature, never
values produced by aejax itself.
"""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import aejax
from aejax.activations import ACTIVATIONS, SURROGATES, get_activation, helu, sign

# docs/theory.md §5, written independently of aejax.activations.SURROGATES.
FORMULAS = {
    "ste": lambda u, k: np.ones_like(u * k),
    "clip": lambda u, k: k * (np.abs(k * u) <= 1),
    "tanh": lambda u, k: 4 * k * np.exp(-2 * np.abs(k * u)) / (1 + np.exp(-2 * np.abs(k * u))) ** 2,  # k sech²
    "fast_sigmoid": lambda u, k: k / (1 + k * np.abs(u)) ** 2,
    "atan": lambda u, k: k / (1 + (np.pi * k * u / 2) ** 2),
    "gauss": lambda u, k: 2 * k / np.sqrt(np.pi) * np.exp(-((k * u) ** 2)),
    "approx_sign": lambda u, k: 2 * k * np.maximum(0, 1 - k * np.abs(u)),
}
AREA_TWO = sorted(set(SURROGATES) - {"ste"})


def surrogate_grad(x, slope=1.0, surrogate="clip", margin=0.0):
    """Elementwise derivative of ``sign`` obtained by reverse-mode autodiff."""
    return jax.grad(lambda u: jnp.sum(sign(u, slope, surrogate, margin)))(x)


def test_registry_matches_theory_names():
    """Every surrogate of docs/theory.md §5 is registered, and nothing else."""
    assert set(SURROGATES) == set(FORMULAS)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_forward_is_exactly_plus_minus_one(surrogate, dtype):
    """sign(0) = sign(-0.0) = +1; tiny, huge and infinite inputs map to exactly ±1 in the input dtype."""
    x = jnp.asarray([0.0, -0.0, 1e-30, -1e-30, 0.3, -0.3, 1e4, -1e4, np.inf, -np.inf], dtype=dtype)
    expected = np.array([1, 1, 1, -1, 1, -1, 1, -1, 1, -1], dtype=np.float32)
    for slope in (0.5, 10.0):
        out = sign(x, slope=slope, surrogate=surrogate)
        assert out.dtype == dtype
        np.testing.assert_array_equal(np.asarray(out, dtype=np.float32), expected)


# the slope is traced: one compiled program per surrogate, shared by the slopes
_sign_derivative = jax.jit(jax.grad(lambda u, slope, surrogate: sign(u, slope, surrogate)), static_argnums=2)


@pytest.mark.parametrize("slope", [0.3, 1.0, 4.0, 25.0])
@pytest.mark.parametrize("surrogate", AREA_TWO)
def test_surrogate_area_is_two(surrogate, slope):
    """scipy.integrate.quad of the autodiff derivative over the real line equals 2, the jump of sign."""
    f = lambda u: float(_sign_derivative(jnp.float32(u), slope, surrogate))  # noqa: E731
    edges = [-np.inf, -1 / slope, 0.0, 1 / slope, np.inf]  # splits at the kinks of clip / approx_sign
    area = sum(integrate.quad(f, a, b, limit=200)[0] for a, b in itertools.pairwise(edges))
    assert area == pytest.approx(2.0, abs=2e-4)


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_surrogate_gradient_equals_theory_formula(surrogate):
    """jax.grad of sign at random points and slopes equals g(u; k) of docs/theory.md §5."""
    rng = np.random.default_rng(0)
    u = rng.normal(scale=2.0, size=500).astype(np.float32)
    k = rng.uniform(0.2, 5.0, size=500).astype(np.float32)
    keep = np.abs(np.abs(k * u) - 1) > 1e-3  # clip's derivative jumps at |k u| = 1
    got = np.asarray(surrogate_grad(jnp.asarray(u), jnp.asarray(k), surrogate))
    want = FORMULAS[surrogate](u.astype(np.float64), k.astype(np.float64))
    np.testing.assert_allclose(got[keep], want[keep], rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("slope", [1.0, 100.0])
@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_bfloat16_gradient_is_finite_at_large_inputs(surrogate, slope):
    """At |x| = 1e4 in bfloat16 the gradient is finite, bfloat16, and the formula's value."""
    x = jnp.asarray([1e4, -1e4, 0.0], dtype=jnp.bfloat16)
    g = surrogate_grad(x, slope, surrogate)
    assert g.dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(g, np.float32)))
    want = FORMULAS[surrogate](np.asarray(x, np.float64), slope)
    np.testing.assert_allclose(np.asarray(g, np.float32), want, rtol=1e-2, atol=1e-30)


@pytest.mark.parametrize("surrogate", ["clip", "tanh", "atan"])
def test_works_under_jit_vmap_jacfwd_scan(surrogate):
    """jit, vmap over x and slope, jacfwd and lax.scan all give the docs/theory.md §5 derivative."""
    u = jnp.linspace(-2.0, 2.0, 17) + 0.01  # avoid clip's kink at |u| = 1 for slope 1
    k = jnp.linspace(0.5, 3.0, 17)
    want = FORMULAS[surrogate](np.asarray(u, np.float64), np.asarray(k, np.float64))

    scalar_grad = jax.grad(lambda x, s: sign(x, s, surrogate))
    np.testing.assert_allclose(jax.jit(jax.vmap(scalar_grad))(u, k), want, rtol=1e-5, atol=1e-7)

    jac = jax.jacfwd(lambda x: sign(x, k, surrogate))(u)
    np.testing.assert_allclose(jac, np.diag(want), rtol=1e-5, atol=1e-7)

    def body(total, xs):
        return total + scalar_grad(*xs), scalar_grad(*xs)

    total, per_step = jax.lax.scan(body, 0.0, (u, k))
    np.testing.assert_allclose(per_step, want, rtol=1e-5, atol=1e-7)
    assert float(total) == pytest.approx(want.sum(), rel=1e-5)


def test_hessian_is_derivative_of_surrogate():
    """Second derivative through the tanh surrogate: d/du k sech²(k u) = -2 k² sech²(k u) tanh(k u)."""
    u = jnp.linspace(-1.5, 1.5, 7)
    k = 1.7
    hess = jax.jit(jax.hessian(lambda x: jnp.sum(sign(x, k, "tanh"))))(u)  # one program, not op by op
    un = np.asarray(u, np.float64)
    want = -2 * k**2 / np.cosh(k * un) ** 2 * np.tanh(k * un)
    np.testing.assert_allclose(hess, np.diag(want), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("surrogate", ["clip", "gauss", "approx_sign"])
def test_slope_broadcasts_per_unit(surrogate):
    """A (n,) slope applies per hidden unit of a (batch, n) pre-activation."""
    u = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    k = np.array([0.5, 1.0, 2.0, 8.0], np.float32)
    g = surrogate_grad(jnp.asarray(u), jnp.asarray(k), surrogate)
    np.testing.assert_allclose(g, FORMULAS[surrogate](u.astype(np.float64), k), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_no_gradient_flows_to_slope_or_margin(surrogate):
    """The slope and the hysteresis margin are data: their gradient is exactly zero."""
    u = jnp.linspace(-1.0, 1.0, 9)
    g_slope, g_margin = jax.jit(jax.grad(lambda k, m: jnp.sum(sign(u, k, surrogate, m) * u), argnums=(0, 1)))(2.0, 0.1)
    assert float(g_slope) == 0.0 and float(g_margin) == 0.0
    assert float(jax.grad(lambda m: jnp.sum(helu(u, m) * u))(0.1)) == 0.0


def test_changing_slope_or_margin_does_not_retrace():
    """New slope/margin values reuse the trace (chex.assert_max_traces: a retrace raises)."""

    @jax.jit
    @chex.assert_max_traces(n=1)
    def grad_sum(x, k, m):
        return jnp.sum(surrogate_grad(x, k, "tanh", m))

    x = jnp.linspace(-1.0, 1.0, 8)
    values = [float(grad_sum(x, jnp.float32(k), jnp.float32(m))) for k, m in [(1.0, 0.0), (2.0, 0.1), (7.5, 0.3)]]
    assert len(set(values)) == 3  # the new values were really used


def test_margin_shifts_the_sign_surrogate():
    """Hysteresis window: the surrogate is centred at -margin, g(u + margin; k)."""
    u = jnp.asarray([-1.2, -0.7, -0.2, 0.4])
    g = surrogate_grad(u, 1.0, "clip", 0.5)
    np.testing.assert_array_equal(g, FORMULAS["clip"](np.asarray(u, np.float64) + 0.5, 1.0))


def test_helu_forward_is_relu_and_backward_is_shifted_step():
    """HeLU: max(x, 0) forward; derivative 1{x > -margin} (0 at x = -margin exactly), margin per unit."""
    x = jnp.asarray([-1.0, -0.05, -0.03, 0.0, 0.02, 3.0])
    np.testing.assert_array_equal(helu(x, 0.05), np.maximum(np.asarray(x), 0))
    g = jax.grad(lambda v: jnp.sum(helu(v, 0.05)))(x)
    np.testing.assert_array_equal(g, [0, 0, 1, 1, 1, 1])
    margins = jnp.asarray([2.0, 0.0, 0.01, 0.0, 0.0, 0.0])
    g = jax.grad(lambda v: jnp.sum(helu(v, margins)))(x)
    np.testing.assert_array_equal(g, [1, 0, 0, 0, 1, 1])
    assert jnp.asarray(jax.grad(lambda v: helu(v))(-0.01)) == 1.0  # paper default margin 0.05


def test_sign_is_differentiable_inside_sharded_jit():
    """Surrogate gradients of an input sharded over 4 devices equal the formula."""
    mesh = jax.make_mesh((4,), ("units",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("units"))
    u = jax.device_put(jnp.linspace(-2.0, 2.0, 16) + 0.01, sharding)
    g = jax.jit(lambda x: surrogate_grad(x, 2.0, "gauss"))(u)
    np.testing.assert_allclose(g, FORMULAS["gauss"](np.asarray(u, np.float64), 2.0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "name,reference",
    [
        ("relu", lambda x: np.maximum(x, 0)),
        ("tanh", np.tanh),
        ("linear", lambda x: x),
        ("helu", lambda x: np.maximum(x, 0)),
        ("sign", lambda x: np.where(x >= 0, 1.0, -1.0)),
    ],
)
def test_registry_lookup_by_name(name, reference):
    """get_activation(name) computes the named function, with the uniform (u, slope, margin) signature."""
    assert name in ACTIVATIONS
    x = np.linspace(-2, 2, 9).astype(np.float32)
    out = get_activation(name, surrogate="tanh")(jnp.asarray(x), slope=3.0, margin=0.0)
    np.testing.assert_allclose(out, reference(x), rtol=1e-6)


def test_registry_sign_uses_the_requested_surrogate():
    """get_activation("sign", surrogate=...) differentiates with that surrogate and slope."""
    act = get_activation("sign", surrogate="fast_sigmoid")
    u = jnp.asarray([-0.4, 0.0, 1.3])
    g = jax.grad(lambda v: jnp.sum(act(v, slope=3.0)))(u)
    np.testing.assert_allclose(g, FORMULAS["fast_sigmoid"](np.asarray(u, np.float64), 3.0), rtol=1e-6)


def test_public_names():
    """aejax.sign and aejax.helu are the activations module's functions."""
    assert aejax.sign is sign and aejax.helu is helu


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda: sign(jnp.zeros(3), surrogate="sigmoid"), "surrogate"),
        (lambda: get_activation("softplus"), "activation"),
        (lambda: get_activation("sign", surrogate="bogus"), "surrogate"),
    ],
)
def test_unknown_names_raise_listing_allowed(call, argument):
    """Unknown names raise ValueError naming the argument and listing the allowed names."""
    with pytest.raises(ValueError, match=argument) as err:
        call()
    allowed = SURROGATES if argument == "surrogate" else ACTIVATIONS
    assert all(name in str(err.value) for name in allowed)
