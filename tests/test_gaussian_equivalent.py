"""The one Gaussian equivalent of data (``aejax.sources.gaussian_equivalent``): the centred Gaussian
with the rows' uncentred second moments E[x xᵀ], the matrix the bias-free autoencoder's risk sees.
Checked against an independent NumPy evaluation of docs/theory.md §2 and against the risk on the
rows themselves."""

import math

import jax
import numpy as np
import pytest

from aejax.config import TrainConfig
from aejax.model import Params
from aejax.sources import Empirical, gaussian_equivalent

D, N_ROWS = 6, 400


def _rows_with_a_mean():
    rng = np.random.default_rng(3)
    return rng.normal(size=(N_ROWS, D)) @ rng.normal(size=(D, D)) + 2.0  # a clear non-zero mean


def _numpy_sign_risk(A, B, M):
    """d·R on N(0, M) for x̂ = A sign(Bx), from docs/theory.md §2, in float64 NumPy."""
    q = np.einsum("id,de,ie->i", B, M, B)
    C_xs = math.sqrt(2 / math.pi) * (M @ B.T) / np.sqrt(q)
    rho = (B @ M @ B.T) / np.sqrt(np.outer(q, q))
    C_ss = (2 / math.pi) * np.arcsin(np.clip(rho, -1, 1))
    np.fill_diagonal(C_ss, 1.0)
    return (np.trace(M) - 2 * np.trace(A @ C_xs.T) + np.trace(A @ C_ss @ A.T)) / M.shape[0]


def test_gaussian_equivalent_is_the_uncentred_second_moment():
    source = Empirical(_rows_with_a_mean(), center=False)
    rows = np.asarray(source.data, np.float64)
    cov = np.asarray(gaussian_equivalent(source).cov, np.float64)
    np.testing.assert_allclose(cov, np.einsum("ki,kj->ij", rows, rows) / len(rows), rtol=1e-6)
    assert not np.allclose(cov, np.cov(rows.T, bias=True), atol=1e-2)  # the mean counts


def test_gaussian_equivalent_risk_matches_the_theory_and_the_data_at_a_zero_decoder():
    source = Empirical(_rows_with_a_mean(), center=False)
    rows = np.asarray(source.data, np.float64)
    model = TrainConfig(d=D, n=D, steps=10, mode="dataset", source=source).bind()
    rng = np.random.default_rng(4)
    A, B = rng.normal(size=(D, D)) / D, rng.normal(size=(D, D))
    got = float(
        model.gaussian_equivalent_risk(Params(jax.numpy.asarray(A, "float32"), jax.numpy.asarray(B, "float32")))
    )
    M = rows.T @ rows / len(rows)
    assert got == pytest.approx(_numpy_sign_risk(A, B, M), rel=2e-4)
    centred = np.cov(rows.T, bias=True)
    assert abs(got - _numpy_sign_risk(A, B, centred)) > 0.1  # the centred covariance would miss the mean
    zero = Params(jax.numpy.zeros((D, D)), jax.numpy.asarray(B, "float32"))
    # with A = 0 the risk on the rows is E‖x‖²/d; only the uncentred moments give it back
    expected = float(np.mean(np.sum(rows**2, axis=1)) / D)
    assert float(model.gaussian_equivalent_risk(zero)) == pytest.approx(expected, rel=1e-5)
    assert float(model.train_risk(zero)) == pytest.approx(expected, rel=1e-5)
