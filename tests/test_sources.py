"""Sources: moments by large samples against docs/theory.md §1/§4, preprocessing against NumPy, input checks.

Statistical tolerances are 5 standard errors computed from the known fourth moments.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import aejax
from aejax.sources import BernoulliGaussian, Empirical, Gaussian, SparseRademacher, make_source

N = 100_000


def test_public_names():
    """The source classes are reachable as aejax.sources.*."""
    assert {"Gaussian", "BernoulliGaussian", "SparseRademacher", "Empirical"} <= set(dir(aejax.sources))


@pytest.mark.parametrize("p", [0.05, 0.3, 1.0])
def test_bernoulli_gaussian_moments(p):
    """BG(p): P(x≠0) = p, E x = 0, E x² = 1 per coordinate, E x⁴ = 3/p (Gaussian non-zero part of variance 1/p)."""
    d = 32
    x = np.asarray(BernoulliGaussian(d, p).sample(jax.random.key(0), N), np.float64)
    m = x.size
    assert abs(np.mean(x != 0) - p) < 5 * np.sqrt(p * (1 - p) / m) + 1e-12
    var = np.mean(x**2, axis=0)
    assert np.all(np.abs(var - 1) < 5 * np.sqrt((3 / p - 1) / N))
    assert np.all(np.abs(x.mean(axis=0)) < 5 / np.sqrt(N))
    assert abs(np.mean(x**4) - 3 / p) < 5 * np.sqrt((105 / p**3 - 9 / p**2) / m)


@pytest.mark.parametrize("p", [0.1, 0.5, 1.0])
def test_sparse_rademacher_values_and_moments(p):
    """SR(p): values in {0, ±1/sqrt(p)}, P(x≠0) = p, symmetric, unit variance per coordinate."""
    d = 32
    x = np.asarray(SparseRademacher(d, p).sample(jax.random.key(1), N), np.float64)
    levels = np.array([-1, 0, 1]) / np.sqrt(p)
    assert np.all(np.min(np.abs(x[..., None] - levels), axis=-1) < 1e-6)
    assert abs(np.mean(x != 0) - p) < 5 * np.sqrt(p * (1 - p) / x.size) + 1e-12
    assert abs(np.mean(x > 0) - p / 2) < 5 * np.sqrt(p / 2 * (1 - p / 2) / x.size)
    assert np.all(np.abs(np.mean(x**2, axis=0) - 1) < 5 * np.sqrt((1 / p - 1) / N) + 1e-6)


def _assert_covariance_matches(x, cov):
    """Sample second moments within 5 standard errors of ``cov`` (Gaussian: Var x_i x_j = Σii Σjj + Σij²)."""
    emp = x.T @ x / len(x)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / len(x))
    assert np.all(np.abs(emp - cov) < 5 * se + 1e-6)


def test_gaussian_spectrum_sampling_matches_covariance():
    """Gaussian(d, spectrum) samples have covariance diag(spectrum); covariance() and cov_trace agree."""
    d = 16
    spectrum = np.linspace(0.1, 3.0, d)
    src = Gaussian(d, spectrum=spectrum)
    x = np.asarray(src.sample(jax.random.key(2), N), np.float64)
    _assert_covariance_matches(x, np.diag(spectrum))
    np.testing.assert_allclose(src.covariance(), np.diag(spectrum), rtol=1e-6)
    assert float(src.cov_trace()) == pytest.approx(spectrum.sum(), rel=1e-6)


def test_gaussian_full_covariance_sampling_matches_covariance():
    """Gaussian(d, covariance=Σ) samples have covariance Σ, also for a singular (rank-deficient) Σ."""
    d = 12
    rng = np.random.default_rng(0)
    for rank in (d, 5):
        m = rng.normal(size=(d, rank))
        cov = m @ m.T / rank
        src = Gaussian(d, covariance=cov)
        x = np.asarray(src.sample(jax.random.key(3), N), np.float64)
        _assert_covariance_matches(x, cov)
        np.testing.assert_allclose(src.cov_apply(jnp.eye(d)), cov, rtol=1e-5, atol=1e-6)
        assert float(src.cov_trace()) == pytest.approx(np.trace(cov), rel=1e-6)


def test_isotropic_gaussian_is_standard_normal():
    """Gaussian(d) has identity covariance and tr Σ = d."""
    d = 8
    x = np.asarray(Gaussian(d).sample(jax.random.key(4), N), np.float64)
    _assert_covariance_matches(x, np.eye(d))
    assert float(Gaussian(d).cov_trace()) == d


def _correlated_data(samples=2000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(samples, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d) * 5


def test_empirical_zca_whitening():
    """ZCA: (x - mean) Σ^{-1/2} with the symmetric inverse square root, computed by NumPy eigh."""
    raw = _correlated_data()
    src = Empirical(raw, whiten="zca")
    xc = raw - raw.mean(axis=0)
    w, v = np.linalg.eigh(xc.T @ xc / len(xc))
    want = xc @ (v / np.sqrt(w)) @ v.T
    np.testing.assert_allclose(src.data, want, atol=1e-4)
    np.testing.assert_allclose(src.covariance(), np.eye(raw.shape[1]), atol=1e-4)


@pytest.mark.parametrize("components", [None, 3])
def test_empirical_pca_whitening_keeps_top_components(components):
    """PCA: identity covariance, d = components, and the kept span is the top principal subspace
    (least-squares reconstruction of the centred data leaves exactly the smallest eigenvalues)."""
    raw = _correlated_data()
    src = Empirical(raw, whiten="pca", components=components)
    k = raw.shape[1] if components is None else components
    assert src.d == k
    white = np.asarray(src.data, np.float64)
    np.testing.assert_allclose(white.T @ white / len(white), np.eye(k), atol=1e-4)
    xc = raw - raw.mean(axis=0)
    coef = np.linalg.lstsq(white, xc, rcond=None)[0]
    residual = np.sum((xc - white @ coef) ** 2) / len(xc)
    eig = np.linalg.eigvalsh(xc.T @ xc / len(xc))  # ascending
    assert residual == pytest.approx(eig[: raw.shape[1] - k].sum(), rel=1e-4, abs=1e-6)


def test_empirical_without_whitening_is_centred_with_unit_mean_variance():
    """No whitening: centred, one global scale with tr Σ / d = 1, so correlations are kept."""
    raw = _correlated_data()
    src = Empirical(raw)
    data = np.asarray(src.data, np.float64)
    np.testing.assert_allclose(data.mean(axis=0), 0, atol=1e-5)
    assert float(src.cov_trace()) / src.d == pytest.approx(1.0, rel=1e-5)
    assert np.trace(data.T @ data / len(data)) / src.d == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(np.corrcoef(data.T), np.corrcoef(raw.T), atol=1e-5)


def test_empirical_sample_draws_rows():
    """Samples are rows of the preprocessed data, drawn uniformly: every row shows up."""
    raw = _correlated_data(samples=20, d=3)
    src = Empirical(raw, whiten="zca")
    x = np.asarray(src.sample(jax.random.key(5), 2000))
    data = np.asarray(src.data)
    dist = np.abs(x[:, None, :] - data[None, :, :]).max(axis=-1)
    assert np.all(dist.min(axis=1) == 0)
    assert len(np.unique(dist.argmin(axis=1))) == 20


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: BernoulliGaussian(8, 0.0), "p must lie in"),
        (lambda: BernoulliGaussian(8, 1.5), "p must lie in"),
        (lambda: SparseRademacher(8, -0.1), "p must lie in"),
        (lambda: SparseRademacher(8, float("nan")), "p must lie in"),
        (lambda: BernoulliGaussian(0, 0.5), "d must be"),
        (lambda: Gaussian(4, spectrum=np.ones(3)), r"spectrum must have shape \(4,\)"),
        (lambda: Gaussian(4, spectrum=[1.0, -1.0, 1.0, 1.0]), "spectrum must be finite and non-negative"),
        (lambda: Gaussian(3, covariance=np.eye(4)), r"covariance must have shape \(3, 3\)"),
        (lambda: Gaussian(2, covariance=[[1.0, 0.5], [0.0, 1.0]]), "covariance must be symmetric"),
        (lambda: Gaussian(2, covariance=[[1.0, 2.0], [2.0, 1.0]]), "positive semi-definite"),
        (lambda: Gaussian(2, covariance=[[1.0, np.nan], [np.nan, 1.0]]), "covariance must contain only finite"),
        (lambda: Gaussian(2, spectrum=[1, 1], covariance=np.eye(2)), "at most one of spectrum and covariance"),
        (lambda: Empirical(np.ones(5)), "data must be a 2-D array"),
        (lambda: Empirical(np.c_[np.arange(5.0), np.ones(5)]), r"constant columns \[1\]"),
        (lambda: Empirical(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 0.0]])), r"rows \[1\] hold NaN"),
        (lambda: Empirical(np.c_[np.arange(5.0), 2 * np.arange(5.0)], whiten="zca"), "numerical rank 1"),
        (lambda: Empirical(_correlated_data(), whiten="pca", components=9), "components must be at most d=6"),
        (lambda: Empirical(_correlated_data(), whiten="cholesky"), "unknown whiten 'cholesky'; allowed: pca, zca"),
        (lambda: make_source("laplace", 4), "unknown source 'laplace'; allowed: .*gaussian"),
    ],
)
def test_bad_inputs_raise_value_error_with_message(build, match):
    """Invalid arguments are refused eagerly with a message naming the argument and the problem."""
    with pytest.raises(ValueError, match=match):
        build()


def test_rank_deficient_data_can_be_pca_whitened_to_its_rank():
    """The whitening error's advice works: pca with components = rank succeeds with identity covariance."""
    raw = _correlated_data(d=4)
    raw = np.c_[raw, raw[:, 0] + raw[:, 1]]
    src = Empirical(raw, whiten="pca", components=4)
    np.testing.assert_allclose(src.covariance(), np.eye(4), atol=1e-4)


def test_sparse_sources_vmap_over_p_under_jit():
    """Under jit(vmap) over p, each BG/SR sample has its own sparsity and unit variance."""
    ps = jnp.asarray([0.1, 0.4, 0.9])
    keys = jax.random.split(jax.random.key(6), 3)
    for cls in (BernoulliGaussian, SparseRademacher):
        x = np.asarray(jax.jit(jax.vmap(lambda p, k, cls=cls: cls(64, p).sample(k, 20_000)))(ps, keys), np.float64)
        for p, xp in zip(np.asarray(ps), x, strict=True):
            assert abs(np.mean(xp != 0) - p) < 5 * np.sqrt(p * (1 - p) / xp.size)
            assert abs(np.mean(xp**2) - 1) < 5 * np.sqrt(3 / p / xp.size)


def test_make_source_by_name_and_alias():
    """Sources by name and alias, with p passed through."""
    assert isinstance(make_source("gaussian", 4), Gaussian)
    bg = make_source("bg", 4, p=0.25)
    assert isinstance(bg, BernoulliGaussian) and bg.p == 0.25
    assert isinstance(make_source("sparse_rademacher", 4, p=0.5), SparseRademacher)


def test_source_is_a_pytree_usable_as_jit_argument():
    """A Gaussian with a spectrum passes through jit as an argument; d stays static."""
    src = Gaussian(5, spectrum=[1.0, 2.0, 3.0, 4.0, 5.0])
    leaves, treedef = jax.tree_util.tree_flatten(src)
    assert len(leaves) == 1
    x = jax.jit(lambda s, k: s.sample(k, 4))(src, jax.random.key(7))
    assert x.shape == (4, 5)
    np.testing.assert_allclose(x, src.sample(jax.random.key(7), 4), rtol=1e-6)
    assert jax.tree_util.tree_unflatten(treedef, leaves).d == 5
