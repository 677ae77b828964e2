"""The leading finite-d excess over R_Gauss at r > 1 (aejax.theory.frames) against the engine's exact
finite-d risk (aejax.risk.exact_risk with the optimal decoder: a closed form that expands nothing)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax import theory
from aejax.model import Architecture, Params, haar_frame
from aejax.risk import exact_risk, optimal_decoder
from aejax.sources import Gaussian

pytestmark = pytest.mark.usefixtures("x64")


@jax.jit  # one compiled program per frame shape, instead of op-by-op dispatch
def _exact_excess(B: jax.Array) -> jax.Array:
    n, d = B.shape
    source = Gaussian(d)
    arch = Architecture("sign", row_normalize=True)
    A = optimal_decoder(B, source, arch=arch)
    return exact_risk(Params(A, B), source, arch=arch) - theory.gaussian_limit(n / d)


def exact_excess(B: np.ndarray) -> float:
    """Exact risk of encoder B (rows normalised) with its optimal decoder, minus R_Gauss(n/d)."""
    return float(_exact_excess(jnp.asarray(B)))


_haar_frame = jax.jit(haar_frame, static_argnums=(1, 2))
_frame_excess = jax.jit(theory.frame_excess)


def two_bases(d: int, seed: int) -> np.ndarray:
    """The identity stacked on a random orthogonal matrix: a unit-norm tight frame at r = 2."""
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))[0]
    return np.vstack([np.eye(d), q])


@pytest.mark.parametrize("d", [64, pytest.param(256, marks=pytest.mark.slow)])  # accuracy at size: slow tier
def test_first_order_excess_matches_the_exact_risk_of_a_haar_frame(d):
    """O(1/d²) error: within 4% (d = 64) and 1.5% (d = 256) of the exact excess."""
    B = np.asarray(_haar_frame(jax.random.key(3), 2 * d, d))
    exact, first_order = exact_excess(B), float(_frame_excess(B))
    assert first_order == pytest.approx(exact, rel=0.04 if d == 64 else 0.015)


def test_first_order_excess_matches_the_exact_risk_of_two_orthonormal_bases():
    """A tight frame (no Jensen term) with overlaps on d of its 2d − 1 partners: 0.151/d, not 0.076/d."""
    B = two_bases(256, 0)
    exact = exact_excess(B)
    assert float(_frame_excess(B)) == pytest.approx(exact, rel=0.01)
    assert exact * 256 == pytest.approx(1 / (2 + np.pi / 2 - 1) ** 2, rel=0.02)  # Σ g⁴/6 = 1 here


@pytest.mark.parametrize("r", [1.5, *(pytest.param(r, marks=pytest.mark.slow) for r in (2.0, 3.0))])  # 1.5 stays fast
def test_haar_coefficient_matches_the_average_exact_excess(r):
    """d·(exact excess) averaged over 4 Haar frames at d = 256 is finite_d_coefficient(r, 'haar') to 6%."""
    d = 256
    scaled = [d * exact_excess(np.asarray(_haar_frame(jax.random.key(s), round(r * d), d))) for s in range(4)]
    assert np.mean(scaled) == pytest.approx(float(theory.finite_d_coefficient(r, "haar")), rel=0.06)


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
def test_etf_coefficient_is_below_every_measured_frame_and_zero_for_r_at_most_1():
    etf = float(theory.finite_d_coefficient(2.0, "etf"))
    assert etf == pytest.approx(1 / (6 * (1 + np.pi / 2) ** 2))
    assert etf < float(theory.finite_d_coefficient(2.0, "random")) < float(theory.finite_d_coefficient(2.0, "haar"))
    for B in (two_bases(128, 1), np.asarray(_haar_frame(jax.random.key(0), 256, 128))):
        assert 128 * exact_excess(B) > etf
    assert float(theory.finite_d_coefficient(0.5, "haar")) == 0.0 == float(theory.finite_d_coefficient(1.0))


def test_bad_frame_name_and_rate_are_refused_by_name():
    with pytest.raises(ValueError, match="frame"):
        theory.finite_d_coefficient(2.0, "tight")
    with pytest.raises(ValueError, match="r"):
        theory.finite_d_coefficient(-1.0)
    with pytest.raises(ValueError, match="B must be an n × d matrix"):
        theory.frame_excess(np.ones(4))
