"""Model: init, apply against a NumPy forward pass, tied decoder, masks, row normalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import aejax
from aejax.model import Params, apply, decoder_matrix, encode, init, normalize_rows, rate_mask

NP_ACT = {
    "sign": lambda u: np.where(u >= 0, 1.0, -1.0),
    "relu": lambda u: np.maximum(u, 0.0),
    "tanh": np.tanh,
    "linear": lambda u: u,
}


def _random_params(d=12, n=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(d, n)), rng.normal(size=(n, d))


def test_public_names():
    """Params, init, apply are exported at the top level."""
    assert aejax.Params is Params and aejax.init is init and aejax.apply is apply


@pytest.mark.parametrize("kind", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("d,n", [(16, 8), (16, 16), (8, 20)])
def test_init_shapes(kind, d, n):
    """A is (d, n) (zeros by default), B is (n, d)."""
    p = init(jax.random.key(0), d, n, kind=kind)
    assert p.A.shape == (d, n) and p.B.shape == (n, d)
    assert float(jnp.abs(p.A).max()) == 0.0
    q = init(jax.random.key(0), d, n, kind=kind, decoder_scale=1.0)
    assert float(jnp.abs(q.A).max()) > 0


def test_gaussian_init_entries_have_variance_one_over_d():
    """Gaussian init: i.i.d. N(0, 1/d) entries, so rows have norm about 1."""
    d, n = 64, 256
    B = np.asarray(init(jax.random.key(1), d, n).B, np.float64)
    assert abs(np.mean(B**2) * d - 1) < 5 * np.sqrt(2 / B.size)
    assert abs(np.mean(B)) < 5 / np.sqrt(d * B.size)


def test_orthogonal_init_has_orthonormal_rows_when_n_le_d():
    """Orthogonal init with n ≤ d: B Bᵀ = I."""
    B = np.asarray(init(jax.random.key(2), 32, 20, kind="orthogonal").B, np.float64)
    np.testing.assert_allclose(B @ B.T, np.eye(20), atol=1e-5)


def test_orthogonal_init_is_tight_frame_when_n_gt_d():
    """Orthogonal init with n > d: Bᵀ B = (n/d) I, rows of mean squared norm 1."""
    d, n = 16, 40
    B = np.asarray(init(jax.random.key(3), d, n, kind="orthogonal").B, np.float64)
    np.testing.assert_allclose(B.T @ B, n / d * np.eye(d), atol=1e-5)
    assert np.mean(np.sum(B**2, axis=1)) == pytest.approx(1.0, rel=1e-5)


def test_orthogonal_init_is_haar_unbiased():
    """Haar rotations have entries symmetric about 0 with B_ij² ~ Beta(1/2, (d-1)/2); a plain QR has
    a biased diagonal. Checked over 4000 draws at d = 4 (5 standard errors)."""
    d, draws = 4, 4000
    keys = jax.random.split(jax.random.key(4), draws)
    B = np.asarray(jax.vmap(lambda k: init(k, d, d, kind="orthogonal").B)(keys), np.float64)
    assert np.all(np.abs(B.mean(axis=0)) < 5 * np.sqrt(1 / d / draws))
    var_sq = 2 * (d - 1) / (d**2 * (d + 2))  # variance of a Beta(1/2, (d-1)/2) variable
    assert np.all(np.abs((B**2).mean(axis=0) - 1 / d) < 5 * np.sqrt(var_sq / draws))


@pytest.mark.parametrize("activation", sorted(NP_ACT))
def test_apply_matches_numpy(activation):
    """apply(params, x) = A σ(B x) computed in NumPy float64, for a batch."""
    A, B = _random_params()
    x = np.random.default_rng(1).normal(size=(5, 12))
    out = apply(
        Params(jnp.asarray(A, jnp.float32), jnp.asarray(B, jnp.float32)),
        jnp.asarray(x, jnp.float32),
        activation,
        row_normalize=False,
    )
    want = NP_ACT[activation](x @ B.T) @ A.T
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_row_normalize_uses_unit_rows():
    """row_normalize=True applies B̄ = B / ||rows||: identical to applying the normalised B directly."""
    A, B = _random_params()
    x = np.random.default_rng(2).normal(size=(5, 12))
    Bbar = B / np.linalg.norm(B, axis=1, keepdims=True)
    out = apply(
        Params(jnp.asarray(A, jnp.float32), jnp.asarray(B, jnp.float32)),
        jnp.asarray(x, jnp.float32),
        "relu",
        row_normalize=True,
    )
    np.testing.assert_allclose(out, np.maximum(x @ Bbar.T, 0) @ A.T, rtol=1e-4, atol=1e-4)


def test_normalize_rows_zero_row_is_finite_with_finite_gradient():
    """A zero row stays zero under normalisation, and the gradient through it has no NaN or inf."""
    B = jnp.asarray([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalize_rows(B), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    g = jax.jit(jax.grad(lambda b: jnp.sum(normalize_rows(b) * jnp.asarray([[1.0, 2.0], [3.0, 4.0]]))))(B)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("row_normalize", [False, True])
def test_tied_decoder(row_normalize):
    """Weight-tied: A = α Bᵀ (α B̄ᵀ when row-normalised); init(tied=True) gives α = sqrt(2/π)."""
    _, B = _random_params()
    x = np.random.default_rng(3).normal(size=(5, 12))
    alpha = 0.7
    out = apply(
        Params(jnp.asarray(alpha), jnp.asarray(B, jnp.float32)),
        jnp.asarray(x, jnp.float32),
        row_normalize=row_normalize,
    )
    W = B / np.linalg.norm(B, axis=1, keepdims=True) if row_normalize else B
    np.testing.assert_allclose(out, alpha * NP_ACT["sign"](x @ W.T) @ W, rtol=1e-4, atol=1e-4)
    p = init(jax.random.key(5), 12, 7, tied=True)
    assert jnp.ndim(p.A) == 0 and float(p.A) == pytest.approx(np.sqrt(2 / np.pi))


def test_mask_zeroes_units():
    """Masked units give code 0 and do not contribute: output equals the model without those units."""
    A, B = _random_params()
    mask = np.array([1, 0, 1, 1, 0, 0, 1], np.float32)
    x = np.random.default_rng(4).normal(size=(5, 12))
    params = Params(jnp.asarray(A, jnp.float32), jnp.asarray(B, jnp.float32))
    s = encode(params, jnp.asarray(x, jnp.float32), "sign", mask=jnp.asarray(mask))
    assert np.all(np.asarray(s)[:, mask == 0] == 0)
    keep = mask == 1
    want = NP_ACT["sign"](x @ B[keep].T) @ A[:, keep].T
    out = apply(params, jnp.asarray(x, jnp.float32), "sign", mask=jnp.asarray(mask), row_normalize=False)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(decoder_matrix(params, mask=jnp.asarray(mask)))[:, ~keep], 0)


@pytest.mark.parametrize(
    "rate,d,n,units", [(0.5, 4, 4, 2), (0.25, 64, 64, 16), (1.5, 10, 20, 15), (0.33, 10, 8, 3), (2.0, 8, 16, 16)]
)
def test_rate_mask_keeps_round_rate_times_d_first_units(rate, d, n, units):
    """rate_mask keeps the first round(rate·d) of n units."""
    np.testing.assert_array_equal(rate_mask(rate, d, n), (np.arange(n) < units).astype(np.float32))


def test_rate_mask_is_traceable():
    """rate_mask under jit(vmap) over rates gives the same masks as concrete calls' unit counts."""
    masks = jax.jit(jax.vmap(lambda r: rate_mask(r, 8, 16)))(jnp.asarray([0.25, 1.0, 2.0]))
    np.testing.assert_array_equal(np.asarray(masks).sum(axis=1), [2, 8, 16])


def test_params_is_a_pytree():
    """Params flattens to its two arrays, so optax and vmap see A and B."""
    p = Params(jnp.ones((3, 2)), jnp.zeros((2, 3)))
    assert len(jax.tree_util.tree_leaves(p)) == 2
    doubled = jax.tree_util.tree_map(lambda a: 2 * a, p)
    assert isinstance(doubled, Params) and float(doubled.A.sum()) == 12.0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: init(jax.random.key(0), 8, 4, kind="xavier"), "unknown kind 'xavier'; allowed: gaussian, orthogonal"),
        (lambda: init(jax.random.key(0), 8, 0), "n must be a positive integer"),
        (lambda: apply(Params(jnp.zeros((2, 2)), jnp.eye(2)), jnp.ones(2), "swish"), "unknown activation 'swish'"),
    ],
)
def test_bad_arguments_raise(call, match):
    """Bad structural arguments are refused with the argument named."""
    with pytest.raises(ValueError, match=match):
        call()


def test_coherence_is_the_largest_overlap_of_live_rows():
    """Against NumPy: max over pairs i ≠ j of |cos(b_i, b_j)|, masked rows excluded; recorded by sweeps."""
    B = np.random.default_rng(0).normal(size=(6, 4))
    Bn = B / np.linalg.norm(B, axis=1, keepdims=True)
    overlap = np.abs(Bn @ Bn.T) - np.eye(6)
    assert float(aejax.model.coherence(jnp.asarray(B))) == pytest.approx(overlap.max(), rel=1e-5)
    mask = np.array([1, 1, 1, 0, 0, 0], np.float32)
    assert float(aejax.model.coherence(jnp.asarray(B), jnp.asarray(mask))) == pytest.approx(
        overlap[:3, :3].max(), rel=1e-5
    )
    ds = aejax.sweep(aejax.TrainConfig(d=8, n=8, steps=4), {"seed": [0]}, mc_samples=64, progress=False)
    assert "coherence" in ds and 0.0 < float(ds["coherence"].item()) <= 1.0
