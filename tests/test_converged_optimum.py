"""aejax.optimum.converged_optimum: a stationary point of the exact risk (gradient by finite differences
of an independent NumPy risk), its risk reproduced by that closed form and by Monte Carlo with a
least-squares decoder, and a stop on the gradient criterion; the Paley ETF of aejax.theory."""

import jax
import numpy as np
import pytest

from aejax import InputError, theory
from aejax.model import Architecture, Params
from aejax.optimum import converged_optimum, riemannian_grad_norm, unit_row_risk
from aejax.risk import exact_risk, optimal_decoder
from aejax.sources import Gaussian
from tests._theory_helpers import exact_sign_risk, haar_tight_frame, sign

pytestmark = pytest.mark.usefixtures("x64")

D, TOL = 8, 1e-8


def fd_riemannian_grad(B: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the scale-invariant NumPy risk in every coordinate at the unit rows of B:
    the Euclidean gradient there, which is the Riemannian gradient on the product of spheres."""
    unit = B / np.linalg.norm(B, axis=1, keepdims=True)
    grad = np.zeros_like(unit)
    for idx in np.ndindex(*unit.shape):
        step = np.zeros_like(unit)
        step[idx] = h
        grad[idx] = (exact_sign_risk(unit + step) - exact_sign_risk(unit - step)) / (2 * h)
    return grad - np.sum(grad * unit, axis=1, keepdims=True) * unit


@pytest.fixture(scope="module")
def optimum():
    return converged_optimum(2.0, d=D, restarts=2, tol=TOL, key=jax.random.key(0))


def test_the_optimum_is_a_stationary_point_by_finite_differences(optimum):
    encoder = np.asarray(optimum.encoder)
    assert bool(optimum.converged.all()) and float(optimum.grad_norm) <= TOL
    assert np.linalg.norm(fd_riemannian_grad(encoder)) < 3 * TOL  # FD error ~1e-10 at h = 1e-5
    start = np.random.default_rng(0).standard_normal(encoder.shape)  # the check can fail: a random frame
    assert np.linalg.norm(fd_riemannian_grad(start)) > 1e-3
    assert float(jax.jit(riemannian_grad_norm)(start)) == pytest.approx(
        np.linalg.norm(fd_riemannian_grad(start)), rel=1e-5
    )


def test_the_optimum_reproduces_its_risk(optimum):
    encoder = np.asarray(optimum.encoder)
    assert float(optimum.risk) == pytest.approx(exact_sign_risk(encoder), abs=1e-12)
    source = Gaussian(D)
    arch = Architecture("sign", row_normalize=False)  # unit rows already
    engine = jax.jit(lambda B: exact_risk(Params(optimal_decoder(B, source, arch=arch), B), source, arch=arch))(
        optimum.encoder
    )
    assert float(engine) == pytest.approx(float(optimum.risk), abs=1e-5)  # the engine's ridge of 1e-6
    # Monte Carlo: least-squares decoder fitted on one sample, risk on another
    rng = np.random.default_rng(1)
    x_fit, x_test = rng.standard_normal((2, 200_000, D))
    s_fit, s_test = sign(x_fit @ encoder.T), sign(x_test @ encoder.T)
    A = np.linalg.solve(s_fit.T @ s_fit, s_fit.T @ x_fit)  # least squares (normal equations)
    losses = np.sum((x_test - s_test @ A) ** 2, axis=1) / D
    assert abs(losses.mean() - float(optimum.risk)) < 5 * losses.std() / np.sqrt(losses.size)
    # better than tight frames, above the d → ∞ value
    haar = min(exact_sign_risk(haar_tight_frame(np.random.default_rng(s), 2 * D, D)) for s in range(3))
    assert float(theory.gaussian_limit(2.0)) < float(optimum.risk) < haar
    assert float(optimum.spread) == pytest.approx(float(optimum.restart_risks.max() - optimum.restart_risks.min()))


def test_the_minimiser_stops_on_the_gradient_criterion():
    start = np.random.default_rng(2).standard_normal((2 * D, D))
    loose = converged_optimum(2.0, d=D, tol=1e-3, start=start)
    tight = converged_optimum(2.0, d=D, tol=TOL, start=start)
    capped = converged_optimum(2.0, d=D, tol=TOL, max_iter=3, start=start)
    assert bool(loose.converged[0]) and TOL < float(loose.grad_norm) <= 1e-3
    assert bool(tight.converged[0]) and int(tight.iterations) > int(loose.iterations)
    assert not bool(capped.converged[0]) and int(capped.iterations) == 3 and float(capped.grad_norm) > 1e-3
    at_optimum = converged_optimum(2.0, d=D, tol=TOL, start=np.asarray(tight.encoder))
    assert int(at_optimum.iterations) == 0


def test_unit_row_risk_matches_the_numpy_closed_form_and_ignores_row_scale():
    B = np.random.default_rng(3).standard_normal((12, 6))
    risk = jax.jit(unit_row_risk)  # one compiled program for both calls
    assert float(risk(B)) == pytest.approx(exact_sign_risk(B), abs=1e-13)
    assert float(risk(B * np.arange(1, 13)[:, None])) == pytest.approx(exact_sign_risk(B), abs=1e-13)


@pytest.mark.parametrize("d", [7, 15])
def test_paley_etf_is_an_equiangular_tight_frame_and_stationary(d):
    B = np.asarray(theory.paley_etf(d))
    n = 2 * d
    gram = B @ B.T
    assert np.allclose(np.diag(gram), 1) and np.allclose(B.T @ B, 2 * np.eye(d))
    assert np.allclose(np.abs(gram[~np.eye(n, dtype=bool)]), 1 / np.sqrt(2 * d - 1))
    stats = theory.frame_statistics(B)
    assert stats["fourth_ratio"] == pytest.approx(1) and stats["coherence"] == pytest.approx(stats["welch"])
    assert np.linalg.norm(fd_riemannian_grad(B)) < 1e-9  # an ETF is a critical point of the risk


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match="start must have shape"):
        converged_optimum(2.0, d=4, start=np.ones((4, 4)))
    with pytest.raises(InputError, match="tol"):
        converged_optimum(2.0, d=4, tol=-1.0)
    with pytest.raises(InputError, match="prime"):
        theory.paley_etf(8)
