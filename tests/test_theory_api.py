"""aejax.theory's calling convention: (prior, p, r, ...) everywhere, jittable functions, swapped calls refused.

Jitted results are compared with the same function called eagerly (the numbers themselves are
checked against independent computations in the other test_theory_* files).
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax import theory
from aejax.optimum import finite_d_optimum

pytestmark = pytest.mark.usefixtures("x64")

_B = np.linalg.qr(np.random.default_rng(0).standard_normal((8, 8)))[0][:4]
_S = np.sign(np.random.default_rng(1).standard_normal((3, 4)))

# name -> (function of the traced numeric arguments, those arguments)
JITTABLE = {
    "rotation_risk": (theory.rotation_risk, (0.7,)),
    "identity_risk": (lambda p, r: theory.identity_risk("sr", p, r, "tied"), (0.4, 0.7)),
    "excess_kurtosis": (lambda p: theory.excess_kurtosis("bg", p), (0.3,)),
    "kurtosis_correction": (lambda p, r, ipr: theory.kurtosis_correction("bg", p, r, ipr), (0.1, 1.5, 0.01)),
    "rotation_excess": (lambda p, r: theory.rotation_excess("sr", p, r, 64), (0.2, 0.5)),
    "partial_identity_risk": (lambda p, r, a: theory.partial_identity_risk("sr", p, r, a), (0.5, 0.8, 0.7)),
    "best_partial_identity": (lambda p: theory.best_partial_identity("sr", p), (jnp.array([0.3, 0.5, 0.9]),)),
    "effective_channel": (theory.effective_channel, (1.3,)),
    "posterior_mean": (lambda p, r, y: theory.posterior_mean("bg", p, r, y), (0.3, 0.5, jnp.linspace(-2, 2, 5))),
    "denoiser_risk": (lambda p, r: theory.denoiser_risk("sr", p, r), (0.3, 2.0)),
    "mmse": (lambda p, snr: theory.mmse("bg", p, snr), (0.3, 4.0)),
    "posterior": (lambda p, snr, y: theory.posterior("sr", p, snr, y), (0.3, 4.0, jnp.linspace(-2, 2, 5))),
    "state_evolution": (lambda p, r: theory.state_evolution("sr", p, r, 3), (0.2, 0.8)),
    "state_evolution_fixed_point": (lambda p, r: theory.state_evolution_fixed_point("bg", p, r), (0.2, 1.5)),
    "multilayer_decode": (lambda p, B, s: theory.multilayer_decode("sr", p, B, s, 2), (0.3, _B, _S)),
    "sign_posterior": (theory.sign_posterior, (jnp.array([1.0, -1.0]), 0.3, 2.0)),
    "sign_channel_mmse": (theory.sign_channel_mmse, (3.0,)),
    "gaussian_limit": (lambda r: theory.gaussian_limit(r, "tanh"), (1.7,)),
    "shannon_limit": (theory.shannon_limit, (0.6,)),
    "finite_d_coefficient": (lambda r: theory.finite_d_coefficient(r, "haar"), (2.0,)),
    "frame_excess": (theory.frame_excess, (np.vstack([np.eye(4), _B[:, :4]]),)),
    "pca_risk": (lambda r, spectrum: theory.pca_risk(r, spectrum), (0.5, jnp.array([4.0, 2.0, 1.0, 1.0]))),
}
# functions of the prior (or activation) alone: Python floats, callable while tracing
CONSTANTS = {
    "kappa": lambda: theory.kappa("bg"),
    "fourth_moment": lambda: theory.fourth_moment("sr"),
    "kurtosis_threshold": lambda: theory.kurtosis_threshold("sr"),
    "critical_sparsity": lambda: theory.critical_sparsity("sr", "tied"),
    "activation_moments": lambda: theory.activation_moments("tanh")[1],
}
NOT_JITTABLE = {"prediction_table", "format_table", "resolve_prior", "paley_etf", "frame_statistics"}
CLASSES = {"BG", "SR", "Prior", "CONVENTIONS"}


def test_every_public_function_is_classified():
    assert set(theory.__all__) == set(JITTABLE) | set(CONSTANTS) | NOT_JITTABLE | CLASSES


@pytest.mark.parametrize("name", sorted(JITTABLE))
def test_jittable_function_gives_the_eager_value_under_jit(name):
    fn, args = JITTABLE[name]
    eager = jax.tree.leaves(fn(*args))
    jitted = jax.tree.leaves(jax.jit(fn)(*args))
    assert all(isinstance(v, jax.Array) for v in eager), [type(v) for v in eager]
    for e, j in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(np.asarray(j), np.asarray(e), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_constants_of_the_prior_are_floats_usable_while_tracing(name):
    value = CONSTANTS[name]()
    assert isinstance(value, float)
    assert float(jax.jit(lambda x: x * CONSTANTS[name]())(2.0)) == pytest.approx(2 * value)


def test_best_partial_identity_under_jit_matches_a_brute_force_maximum():
    """The jitted search agrees with a dense float64 grid over a (independent of the golden section)."""
    a_star, gain = jax.jit(lambda p: theory.best_partial_identity("sr", p))(jnp.array([0.5, 0.7]))
    for p, a, g in zip((0.5, 0.7), np.asarray(a_star), np.asarray(gain), strict=True):
        grid = np.linspace(0, 1, 200_001)
        risks = np.asarray(theory.partial_identity_risk("sr", p, 1.0, grid))
        assert abs(a - grid[np.argmin(risks)]) < 2e-4
        assert 1 - g <= risks.min() + 1e-12


@pytest.mark.parametrize(
    "name, params",
    [
        ("identity_risk", ["prior", "p", "r", "convention"]),
        ("excess_kurtosis", ["prior", "p"]),
        ("kurtosis_correction", ["prior", "p", "r", "ipr"]),
        ("rotation_excess", ["prior", "p", "r", "d"]),
        ("partial_identity_risk", ["prior", "p", "r", "a"]),
        ("best_partial_identity", ["prior", "p"]),
        ("posterior_mean", ["prior", "p", "r", "y"]),
        ("denoiser_risk", ["prior", "p", "r"]),
        ("mmse", ["prior", "p", "snr"]),
        ("posterior", ["prior", "p", "snr", "y"]),
        ("state_evolution", ["prior", "p", "r", "layers"]),
        ("state_evolution_fixed_point", ["prior", "p", "r", "tol", "max_layers"]),
        ("multilayer_decode", ["prior", "p", "B", "s", "layers"]),
        ("prediction_table", ["ps", "rates"]),
    ],
)
def test_argument_order_is_prior_p_r_then_the_rest(name, params):
    assert list(inspect.signature(finite_d_optimum).parameters) == ["r", "d", "restarts", "steps", "lr", "key"]
    assert list(inspect.signature(getattr(theory, name)).parameters) == params


@pytest.mark.parametrize(
    "call",
    [  # the old orders, with a number where the prior goes
        lambda: theory.identity_risk(0.5, 1.0, "sr", "tied"),
        lambda: theory.partial_identity_risk(0.5, 0.7, 1.0, "sr"),
        lambda: theory.kurtosis_correction(0.05, 1.0, "bg", 1 / 1024),
        lambda: theory.rotation_excess(0.05, 1.0, 1024, "bg"),
        lambda: theory.excess_kurtosis(0.5, "sr"),
        lambda: theory.best_partial_identity(0.5, "sr"),
        lambda: theory.posterior_mean(0.5, "bg", 0.3, 1.0),
        lambda: theory.posterior(0.5, "bg", 0.3, 1.0),
        lambda: theory.multilayer_decode(_B, _S, "bg", 0.3, 2),
        lambda: theory.denoiser_risk(0.3, "bg", 1.0),
        lambda: theory.state_evolution(0.3, 1.0, "bg", 2),
    ],
)
def test_call_in_the_old_order_is_refused_naming_prior(call):
    with pytest.raises(TypeError, match=r"prior must be 'bg', 'sr' or an aejax.theory.Prior, got .*\(prior, p, r"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: theory.denoiser_risk("bg", 2.0, 0.5),  # p and r exchanged
        lambda: theory.state_evolution("sr", 1.5, 0.3, 2),
        lambda: theory.partial_identity_risk("sr", 0.5, 0.7, 2.0),  # a out of [0, 1]
        lambda: theory.kurtosis_correction("bg", 4.0, 0.1, 0.01),
    ],
)
def test_swapped_p_and_r_is_refused_when_r_is_not_a_probability(call):
    with pytest.raises(ValueError, match=r"\bp must lie in \(0, 1\]|a must lie in \[0, 1\]"):
        call()


def test_swapped_keyword_only_arguments_cannot_be_passed_positionally():
    with pytest.raises(TypeError):
        finite_d_optimum(8, 0.5)  # the old (d, r) order
    with pytest.raises(TypeError):
        theory.prediction_table([0.5], [0.3])
