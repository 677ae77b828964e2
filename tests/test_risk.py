"""Risk: exact Gaussian risk (docs/theory.md §2) against Monte Carlo and quadrature, its gradients against
finite differences, the streamed Monte Carlo estimator against NumPy, the optimal decoder against
least squares."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import COMPUTE_BOUND
from scipy import integrate

import aejax
from aejax._threefry import key as threefry_key  # JAX's Threefry bits, cheaper programs
from aejax.model import Architecture, Params, init, rate_mask
from aejax.risk import gaussian_moments
from aejax.sources import BernoulliGaussian, Gaussian

D = 64
ACTIVATIONS = ["sign", "relu", "linear", "tanh"]
NP_ACT = {
    "sign": lambda u: np.where(u >= 0, 1.0, -1.0),
    "relu": lambda u: np.maximum(u, 0.0),
    "tanh": np.tanh,
    "linear": lambda u: u,
}


def _arch(activation="sign", *, row_normalize=False, **kw):
    """The architecture these tests evaluate: raw rows unless ``row_normalize`` is asked for."""
    return Architecture(activation, row_normalize=row_normalize, **kw)


def _covariance(d, seed=0):
    m = np.random.default_rng(seed).normal(size=(d, d))
    return m @ m.T / d + 0.1 * np.eye(d)


def _source(kind, d=D):
    if kind == "isotropic":
        return Gaussian(d)
    if kind == "spectrum":
        spectrum = np.exp(-np.linspace(0, 3, d))
        return Gaussian(d, spectrum=spectrum * d / spectrum.sum())
    return Gaussian(d, covariance=_covariance(d))


def _test_params(source, activation, n=80, seed=0, row_normalize=False):
    """Random Gaussian B and a decoder near the optimum (so every term of the risk matters)."""
    B = init(threefry_key(seed), source.d, n).B
    A = aejax.optimal_decoder(B, source, arch=_arch(activation, row_normalize=row_normalize))
    noise = jax.random.normal(threefry_key(seed + 1), A.shape) * 0.3 / np.sqrt(n)
    return Params(A + noise, B)


MC_CASES = [(a, kind, "none") for kind in ("isotropic", "spectrum", "covariance") for a in ACTIVATIONS]
# the options' cases compile as many programs again (4 s of the default tier's 3 min): the slow tier
MC_OPTION_CASES = [(a, "spectrum", option) for option in ("mask", "tied", "row_normalize") for a in ACTIVATIONS]


def _mc_case(activation, source, option, seed):
    """(exact, mc mean, mc standard error) for one case; ``seed`` is traced so nothing constant-folds."""
    params = _test_params(source, activation, seed=seed, row_normalize=option == "row_normalize")
    kw = {}
    if option == "mask":
        kw["mask"] = rate_mask(0.6, D, params.B.shape[0])
    elif option == "tied":
        params = params._replace(A=jnp.asarray(0.4))
        kw["row_normalize"] = True
    elif option == "row_normalize":
        kw["row_normalize"] = True
        params = params._replace(B=params.B * jnp.linspace(0.2, 3.0, params.B.shape[0])[:, None])
    exact = aejax.exact_risk(params, source, arch=_arch(activation, **kw))
    mean, se = aejax.mc_risk(params, source, threefry_key(123 + seed), 100_000, arch=_arch(activation, **kw))
    return exact, mean, se


def _mc_results(cases):
    """(exact, mc mean, mc standard error) of every case, computed in one compiled program."""
    sources = {kind: _source(kind) for kind in ("isotropic", "spectrum", "covariance")}

    @functools.partial(jax.jit, compiler_options=COMPUTE_BOUND)
    def run(sources, seed):
        return [_mc_case(a, sources[kind], option, seed) for a, kind, option in cases]

    return dict(zip(cases, jax.device_get(run(sources, 0)), strict=True))


@pytest.fixture(scope="module")
def mc_results():
    return _mc_results(MC_CASES)


@pytest.fixture(scope="module")
def mc_option_results():
    return _mc_results(MC_OPTION_CASES)


def _assert_exact_matches_mc(result):
    exact, mean, se = (float(v) for v in result)
    assert abs(exact - mean) < 4 * se, (exact, mean, se)


@pytest.mark.parametrize("source_kind", ["isotropic", "spectrum", "covariance"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_exact_risk_agrees_with_monte_carlo(mc_results, activation, source_kind):
    """exact_risk within 4 standard errors of mc_risk (100k samples), d = 64, n = 80, random B."""
    _assert_exact_matches_mc(mc_results[activation, source_kind, "none"])


@pytest.mark.slow
@pytest.mark.parametrize("option", ["mask", "tied", "row_normalize"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_exact_risk_agrees_with_monte_carlo_with_options(mc_option_results, activation, option):
    """Same agreement with a hidden-unit mask, a tied decoder or row-normalised encoder (spectrum source)."""
    _assert_exact_matches_mc(mc_option_results[activation, "spectrum", option])


def _pair(q1, q2, rho, cov):
    """Two encoder rows with b_iᵀΣb_i = q_i and correlation rho under Σ = cov (2-D)."""
    L = np.linalg.cholesky(cov)
    Z = np.array([[np.sqrt(q1), 0.0], [np.sqrt(q2) * rho, np.sqrt(q2 * (1 - rho**2))]])
    return Z @ np.linalg.inv(L)  # rows w with w Σ wᵀ = Z Zᵀ


PAIRS = [(1.0, 1.0, 0.5), (0.3, 2.5, -0.9), (4.0, 1.5, 0.97)]
_moments = jax.jit(gaussian_moments, static_argnums=2)  # one compiled program per activation, shared by the pairs
COV2 = np.array([[1.5, 0.4], [0.4, 0.6]])


@pytest.mark.parametrize("q1,q2,rho", PAIRS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_gaussian_moments_match_2d_quadrature(activation, q1, q2, rho):
    """C_ss and C_xs equal scipy 2-D quadrature of E[σ(u_i)σ(u_j)] and E[x σ(u_i)] for x ~ N(0, Σ)."""
    W = _pair(q1, q2, rho, COV2)
    c_xs, c_ss = _moments(jnp.asarray(W, jnp.float32), Gaussian(2, covariance=COV2), activation)
    L = np.linalg.cholesky(COV2)
    sig = NP_ACT[activation]

    def expect(f):
        density = lambda y, x: f(L @ [x, y]) * np.exp(-(x * x + y * y) / 2) / (2 * np.pi)  # noqa: E731
        return integrate.dblquad(density, -10, 10, -10, 10, epsabs=1e-7)[0]  # 1e-7 well below atol 2e-5

    ref_ss = [[expect(lambda x, i=i, j=j: sig(W[i] @ x) * sig(W[j] @ x)) for j in range(i + 1)] for i in range(2)]
    ref_ss[0].append(ref_ss[1][0])  # E[σ(u_0)σ(u_1)]: the integrand is symmetric in i, j
    np.testing.assert_allclose(c_ss, ref_ss, atol=2e-5)
    ref_xs = [[expect(lambda x, k=k, i=i: x[k] * sig(W[i] @ x)) for i in range(2)] for k in range(2)]
    np.testing.assert_allclose(c_xs, ref_xs, atol=2e-5)


@pytest.mark.parametrize("q1,q2,rho", PAIRS)
def test_sign_moments_match_numpy_monte_carlo(q1, q2, rho):
    """sign: C_ss, C_xs against 500k NumPy samples (5 standard errors)."""
    W = _pair(q1, q2, rho, COV2)
    c_xs, c_ss = _moments(jnp.asarray(W, jnp.float32), Gaussian(2, covariance=COV2), "sign")
    x = np.random.default_rng(0).normal(size=(500_000, 2)) @ np.linalg.cholesky(COV2).T
    s = NP_ACT["sign"](x @ W.T)
    n = len(x)
    assert np.all(np.abs(np.asarray(c_ss) - s.T @ s / n) < 5 / np.sqrt(n))
    xs = x[:, :, None] * s[:, None, :]
    assert np.all(np.abs(np.asarray(c_xs) - xs.mean(axis=0)) < 5 * xs.std(axis=0) / np.sqrt(n))


def _special_encoders(d=16, n=8):
    B = init(jax.random.key(7), d, n, kind="orthogonal").B
    return {
        "orthogonal": (B, None),
        "duplicated_rows": (B.at[1].set(B[0]), None),
        "antipodal_rows": (B.at[1].set(-B[0]), None),
        "zero_row_masked": (B.at[2].set(0.0), jnp.ones(n).at[2].set(0.0)),
        "zero_row": (B.at[2].set(0.0), None),
    }


DEGENERATE_CASES = ["antipodal_rows", "duplicated_rows", "orthogonal", "zero_row", "zero_row_masked"]


@pytest.fixture(scope="module")
def degenerate_grads():
    """jax.grad of exact_risk for every (activation, encoder, row_normalize) case, in one compiled program:
    the unmasked encoders share one vmapped gradient per (activation, row_normalize)."""
    encoders = _special_encoders()
    unmasked = [c for c in DEGENERATE_CASES if encoders[c][1] is None]
    A = jax.random.normal(jax.random.key(8), encoders["orthogonal"][0].shape[::-1]) * 0.3

    def grad(B, arch):
        return jax.grad(lambda p: aejax.exact_risk(p, Gaussian(16), arch=arch))(Params(A, B))

    @jax.jit
    def run(encoders):
        grads = {}
        stacked = jnp.stack([encoders[c][0] for c in unmasked])
        for activation in ACTIVATIONS:
            for row_normalize in (False, True):
                arch = _arch(activation, row_normalize=row_normalize)
                batch = jax.vmap(lambda B, arch=arch: grad(B, arch))(stacked)
                for i, case in enumerate(unmasked):
                    grads[activation, case, row_normalize] = jax.tree_util.tree_map(lambda g, i=i: g[i], batch)
                for case in DEGENERATE_CASES:
                    B, mask = encoders[case]
                    if mask is not None:
                        arch = _arch(activation, mask=mask, row_normalize=row_normalize)
                        grads[activation, case, row_normalize] = grad(B, arch)
        return grads

    return jax.device_get(run(encoders))


@pytest.mark.parametrize("row_normalize", [False, True])
@pytest.mark.parametrize("case", DEGENERATE_CASES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_exact_risk_gradient_is_finite_at_degenerate_encoders(degenerate_grads, activation, case, row_normalize):
    """jax.grad of exact_risk (compiled) has no NaN/inf at orthogonal, duplicated, antipodal and zero rows."""
    grads = degenerate_grads[activation, case, row_normalize]
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_zero_row_is_a_dead_unit():
    """A zero encoder row gives the risk of the model without that unit (sign(0) = +1 is a constant)."""
    source = _source("covariance", 16)

    @jax.jit  # one compiled program for the four risks
    def risks(source, key_data):
        B = init(jax.random.wrap_key_data(key_data[0]), 16, 8).B
        A = jax.random.normal(jax.random.wrap_key_data(key_data[1]), (16, 8)) * 0.2
        full = aejax.exact_risk(Params(A.at[:, 2].set(0.0), B.at[2].set(0.0)), source, arch=_arch("relu"))
        pruned = aejax.exact_risk(
            Params(jnp.delete(A, 2, axis=1), jnp.delete(B, 2, axis=0)), source, arch=_arch("relu")
        )
        dead = Params(A, B.at[2].set(0.0))
        mean, se = aejax.mc_risk(dead, source, jax.random.wrap_key_data(key_data[2]), 100_000, arch=_arch("tanh"))
        return full, pruned, mean, se, aejax.exact_risk(dead, source, arch=_arch("tanh"))

    keys = jnp.stack([jax.random.key_data(jax.random.key(k)) for k in (9, 10, 11)])
    full, pruned, mean, se, exact = (float(v) for v in risks(source, keys))
    assert full == pytest.approx(pruned, rel=1e-6)
    assert abs(exact - mean) < 4 * se


FD_OPTIONS = ["plain", "mask", "tied", "row_normalize"]
FD_D, FD_N, FD_H = 12, 9, 1e-5


def _fd_case(option):
    """The case's float64 parameters, hidden-unit mask (or None) and 4 random directions (the same draws per case)."""
    d, n = FD_D, FD_N
    rng = np.random.default_rng(0)
    A = jnp.asarray(0.4 if option == "tied" else rng.normal(size=(d, n)) / np.sqrt(n))
    params = Params(A, jnp.asarray(rng.normal(size=(n, d)) / np.sqrt(d)))
    mask = jnp.asarray(rng.integers(0, 2, n), jnp.float64) if option == "mask" else None
    dirs = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=(4, *np.shape(a)))), params)
    return params, mask, dirs


@pytest.fixture(scope="module")
def fd_results():
    """(grad, directions, central differences) of every case, in one float64 compiled program."""
    cases = [(a, o) for a in ACTIVATIONS for o in FD_OPTIONS]
    with jax.enable_x64(True):
        source = _source("spectrum", FD_D)
        inputs = {o: _fd_case(o) for o in FD_OPTIONS}

        @jax.jit
        def run(source, inputs):
            out = []
            for activation, option in cases:
                p, mask, v = inputs[option]
                arch = _arch(activation, mask=mask, row_normalize=option in ("tied", "row_normalize"))
                risk = lambda p, arch=arch: aejax.exact_risk(p, source, arch=arch)  # noqa: E731
                shifted = jax.vmap(  # the 4 directions and their opposites in one batch
                    lambda t, p=p, risk=risk: risk(jax.tree_util.tree_map(lambda a, b: a + FD_H * b, p, t))
                )(jax.tree_util.tree_map(lambda t: jnp.concatenate([t, -t]), v))
                out.append((jax.grad(risk)(p), v, (shifted[:4] - shifted[4:]) / (2 * FD_H)))
            return out

        return dict(zip(cases, jax.device_get(run(source, inputs)), strict=True))


@pytest.mark.parametrize("option", FD_OPTIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_exact_risk_gradient_matches_finite_differences(fd_results, activation, option):
    """Float64 central differences along 4 random directions equal jax.grad of exact_risk (rel 1e-6),
    on a non-isotropic (spectrum) source."""
    grad, dirs, fd = fd_results[activation, option]
    assert grad.B.dtype == np.float64
    directional = sum(
        np.reshape(t, (len(t), -1)) @ np.ravel(g)
        for g, t in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(dirs), strict=True)
    )
    np.testing.assert_allclose(directional, fd, rtol=1e-6, atol=1e-9)


def test_exact_risk_of_trivial_decoder_is_trace_over_d():
    """A = 0 gives R = tr Σ / d (docs/theory.md §1), for any encoder."""
    source = _source("covariance")
    params = Params(jnp.zeros((D, 10)), init(jax.random.key(0), D, 10).B)
    assert float(jax.jit(lambda p, s: aejax.exact_risk(p, s, arch=_arch()))(params, source)) == pytest.approx(
        np.trace(_covariance(D)) / D, rel=1e-5
    )


def test_exact_risk_refuses_non_gaussian_sources():
    """exact_risk needs a Gaussian source; the message points to mc_risk."""
    params = init(jax.random.key(0), 8, 4)
    with pytest.raises(ValueError, match=r"Gaussian source.*mc_risk"):
        aejax.exact_risk(params, BernoulliGaussian(8, 0.5), arch=_arch())


def _numpy_losses(params, x, activation="sign"):
    s = NP_ACT[activation](x @ np.asarray(params.B, np.float64).T)
    return np.mean((x - s @ np.asarray(params.A, np.float64).T) ** 2, axis=1)


@pytest.mark.parametrize("chunk", [5000, 1000, 333])
def test_mc_risk_equals_numpy_on_the_same_samples(chunk):
    """The streamed mean and standard error equal NumPy's on the same 5000 samples, whether one chunk
    holds them all or many do (333 leaves a partial last chunk of 5 samples)."""
    d, n_samples = 16, 5000
    params = init(jax.random.key(0), d, 12, decoder_scale=1.0)
    source = Gaussian(d)
    key = jax.random.key(1)
    n_chunks = -(-n_samples // chunk)
    x = np.concatenate(
        [np.asarray(source.sample(jax.random.fold_in(key, i), chunk), np.float64) for i in range(n_chunks)]
    )[:n_samples]
    losses = _numpy_losses(params, x)
    mean, se = aejax.mc_risk(params, source, key, n_samples, chunk=chunk, arch=_arch())
    assert float(mean) == pytest.approx(losses.mean(), rel=1e-5)
    assert float(se) == pytest.approx(losses.std(ddof=1) / np.sqrt(n_samples), rel=1e-4)


def test_mc_risk_memory_does_not_grow_with_samples():
    """Compiled temporary memory for 10⁶ samples is that for 10⁴ (the 10⁶×32 batch alone would be 128 MB)."""
    params = init(jax.random.key(0), 32, 16, decoder_scale=1.0)

    def temp_bytes(n_samples):
        fn = jax.jit(lambda p, k: aejax.mc_risk(p, Gaussian(32), k, n_samples, chunk=1000, arch=_arch()))
        return fn.lower(params, jax.random.key(1)).compile().memory_analysis().temp_size_in_bytes

    small, large = temp_bytes(10_000), temp_bytes(1_000_000)
    assert large < 1.1 * small + 65536
    assert large < 4 * 1000 * 32 * 10


def test_mc_risk_standard_error_matches_spread_of_repeated_estimates():
    """The reported standard error equals the standard deviation of 400 independent estimates (±15%)."""
    params = init(jax.random.key(0), 16, 8, decoder_scale=1.0)
    keys = jax.random.split(jax.random.key(2), 400)
    means, ses = jax.jit(jax.vmap(lambda k: aejax.mc_risk(params, Gaussian(16), k, 500, chunk=128, arch=_arch())))(keys)
    assert float(jnp.mean(ses)) == pytest.approx(float(jnp.std(means, ddof=1)), rel=0.15)


def test_mc_risk_of_sparse_source_matches_numpy_expectation():
    """mc_risk on BG data for the identity-sign encoder with a tied decoder agrees with the
    closed-form E(x - α sign(x))² = 1 - 2α E|x| + α², E|x| = sqrt(2p/π) (5 standard errors)."""
    d, p, alpha = 16, 0.3, 0.5
    mean, se = aejax.mc_risk(
        Params(jnp.asarray(alpha), jnp.eye(d)), BernoulliGaussian(d, p), jax.random.key(3), 100_000, arch=_arch()
    )
    # sign(0) = +1 on the (1 - p) zero coordinates: E(x - α s)² = 1 - 2α E|x| + α².
    want = 1 - 2 * alpha * np.sqrt(2 * p / np.pi) + alpha**2
    assert abs(float(mean) - want) < 5 * float(se)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: aejax.mc_risk(init(jax.random.key(0), 8, 4), Gaussian(8), jax.random.key(0), 1, arch=_arch()),
            "at least 2",
        ),
        (
            lambda: aejax.mc_risk(init(jax.random.key(0), 8, 4), Gaussian(6), jax.random.key(0), 10, arch=_arch()),
            r"d=6",
        ),
        (
            lambda: aejax.exact_risk(Params(jnp.zeros((8, 3)), jnp.zeros((4, 8))), Gaussian(8), arch=_arch()),
            r"params.A must have shape",
        ),
    ],
)
def test_bad_arguments_raise(call, match):
    """Shape mismatches and too few samples are refused with a message."""
    with pytest.raises(ValueError, match=match):
        call()


def _lstsq_decoder(x, B, activation):
    """Least squares through the normal equations (sᵀs is well conditioned here; equals lstsq to 1e-13, 10× faster)."""
    s = NP_ACT[activation](x @ B.T)
    return np.linalg.solve(s.T @ s, s.T @ x).T


LSTSQ_CASES = [("sign", "isotropic"), ("sign", "spectrum"), ("relu", "covariance"), ("tanh", "spectrum")]


@pytest.fixture(scope="module")
def gaussian_optimal_decoders():
    """The optimal decoder of every least-squares case (d = 16, n = 24), in one compiled program."""
    sources = {kind: _source(kind, 16) for _, kind in LSTSQ_CASES}
    B = init(jax.random.key(3), 16, 24).B

    @jax.jit
    def run(B, sources):
        return [aejax.optimal_decoder(B, sources[kind], arch=_arch(a)) for a, kind in LSTSQ_CASES]

    return np.asarray(B, np.float64), dict(zip(LSTSQ_CASES, run(B, sources), strict=True))


@pytest.mark.parametrize("activation,source_kind", LSTSQ_CASES)
def test_optimal_decoder_equals_least_squares_for_gaussian_sources(gaussian_optimal_decoders, activation, source_kind):
    """A*(B) = C_xs C_ss⁻¹ equals the least-squares decoder fitted on 200k NumPy samples (the
    statistical error of the fit is about 0.015 at this size)."""
    d = 16
    source = _source(source_kind, d)
    B, decoders = gaussian_optimal_decoders
    A = decoders[activation, source_kind]
    cov = np.asarray(source.covariance(), np.float64)
    x = np.random.default_rng(4).normal(size=(200_000, d)) @ np.linalg.cholesky(cov).T
    np.testing.assert_allclose(A, _lstsq_decoder(x, B, activation), atol=0.03)


def test_optimal_decoder_for_sparse_source_uses_sample_moments():
    """BG source with key=: equals least squares on independent NumPy BG samples (statistical
    tolerance); without key it is refused."""
    d, n, p = 16, 12, 0.2
    source = BernoulliGaussian(d, p)
    B = np.asarray(init(jax.random.key(5), d, n).B, np.float64)
    A = aejax.optimal_decoder(
        jnp.asarray(B, jnp.float32), source, arch=_arch("sign"), key=jax.random.key(6), n_samples=200_000
    )
    rng = np.random.default_rng(7)
    x = (rng.uniform(size=(200_000, d)) < p) * rng.normal(size=(200_000, d)) / np.sqrt(p)
    np.testing.assert_allclose(A, _lstsq_decoder(x, B, "sign"), atol=0.03)
    with pytest.raises(ValueError, match="key="):
        aejax.optimal_decoder(jnp.asarray(B, jnp.float32), source, arch=_arch())


def test_optimal_decoder_with_mask_fits_only_the_kept_units():
    """Masked units get zero columns; the kept ones equal least squares on the kept units alone."""
    d, n = 16, 12
    source = _source("spectrum", d)
    B = np.asarray(init(jax.random.key(8), d, n).B, np.float64)
    mask = (np.arange(n) % 3 != 0).astype(np.float32)
    A = np.asarray(
        aejax.optimal_decoder(jnp.asarray(B, jnp.float32), source, arch=_arch("sign", mask=jnp.asarray(mask)))
    )
    np.testing.assert_array_equal(A[:, mask == 0], 0)
    x = np.random.default_rng(9).normal(size=(200_000, d)) * np.sqrt(np.asarray(source.spectrum, np.float64))
    np.testing.assert_allclose(A[:, mask == 1], _lstsq_decoder(x, B[mask == 1], "sign"), atol=0.02)
