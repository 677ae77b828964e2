"""Population risk R(A, B) = E ||x − x̂||² / d: streamed Monte Carlo, and exact for Gaussian data.

The exact risk uses docs/theory.md §2: with ``u_i = b_iᵀx`` and ``s = σ(u)``,
``d·R = tr Σ − 2 tr(A C_xs) + tr(A C_ss Aᵀ)``. sign, relu (and helu, whose forward is relu) and
linear are in closed form; any other activation uses Gauss–Hermite quadrature for the diagonal
and a normalised Hermite (Mehler) series for the off-diagonal correlations. Correlations are
clipped just inside ±1 so gradients stay finite even for parallel rows. A dead row (q_i = b_iᵀΣb_i = 0:
a zero row, or a row in the null space of a low-rank Σ) is the constant unit σ(0), so several dead
units are perfectly correlated with each other (for sign, all output +1).

Examples:
    >>> import jax
    >>> from aejax.model import init
    >>> from aejax.sources import Gaussian
    >>> p = init(jax.random.key(0), 32, 16, kind="orthogonal")
    >>> A = optimal_decoder(p.B, Gaussian(32))
    >>> round(float(exact_risk(p._replace(A=A), Gaussian(32))), 4)  # 1 - 2r/π at r = 1/2
    0.6817
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from aejax import _validate
from aejax.activations import ActivationFn, get_activation
from aejax.model import Architecture, Params, as_architecture, decoder_matrix, encoder_matrix
from aejax.sources import Source

Array = jax.Array

_RHO_MAX = 1 - 1e-6
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(96)
_GH_WEIGHTS = _GH_WEIGHTS / np.sqrt(2 * np.pi)  # expectation over g ~ N(0, 1)
_SERIES_TERMS = 40


def gaussian_moments(W: Array, source: Source, activation: str | ActivationFn = "sign") -> tuple[Array, Array]:
    """``C_xs = E[x sᵀ]`` (d, n) and ``C_ss = E[s sᵀ]`` (n, n) for ``s = σ(W x)``, ``x ~ N(0, Σ)``.

    Args:
        W: ``(n, d)`` encoder as applied (already row-normalised if the model does so).
        source: a Gaussian source.
        activation: ``sign``, ``relu``, ``helu``, ``linear`` (closed form) or another name/callable.

    Returns:
        ``(C_xs, C_ss)``.

    Examples:
        >>> from aejax.sources import Gaussian
        >>> c_xs, c_ss = gaussian_moments(jnp.eye(2), Gaussian(2))
        >>> c_ss
        Array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    _require_gaussian(source)
    sigma_wt = source.cov_apply(W.T)  # (d, n): column i is Σ b_i
    gram = W @ sigma_wt
    q = jnp.diag(gram)
    # Zero rows (dead units) get sq = 1/sq = 0 through a double `where`, so that neither the
    # forward value nor the gradient ever divides by zero.
    live = q > 0
    q_safe = jnp.where(live, q, 1.0)
    sq = jnp.where(live, jnp.sqrt(q_safe), 0.0)
    inv_sq = jnp.where(live, jax.lax.rsqrt(q_safe), 0.0)
    eye = jnp.eye(W.shape[0], dtype=bool)
    rho = jnp.where(eye, 0.0, jnp.clip(gram * inv_sq[:, None] * inv_sq[None, :], -_RHO_MAX, _RHO_MAX))
    name = activation if isinstance(activation, str) else None
    # A dead unit (q_i = 0) outputs the constant σ(0): below, ``at_zero`` is σ(0) and ``mean`` is
    # E σ(u_j) of each live unit, so that C_ss = σ(0)² between dead units and σ(0) E σ(u_j) between a
    # dead and a live one (not the independent-unit formulas), and the dead unit's C_xs column is 0.
    if name == "sign":
        c_xs = jnp.sqrt(2 / jnp.pi) * sigma_wt * inv_sq
        c_ss = jnp.where(eye, 1.0, (2 / jnp.pi) * jnp.arcsin(rho))
        at_zero, mean = 1.0, jnp.zeros_like(q)  # sign(0) = +1; E sign(u_j) = 0
    elif name in ("relu", "helu"):
        c_xs = sigma_wt / 2
        off = sq[:, None] * sq[None, :] / (2 * jnp.pi) * (jnp.sqrt(1 - rho**2) + rho * (jnp.pi - jnp.arccos(rho)))
        c_ss = jnp.where(eye, q[:, None] / 2, off)
        at_zero, mean = 0.0, sq / jnp.sqrt(2 * jnp.pi)
    elif name == "linear":
        c_xs, c_ss = sigma_wt, gram
        at_zero, mean = 0.0, jnp.zeros_like(q)
    else:
        sigma = get_activation(activation)
        c_xs, c_ss, mean = _quadrature_moments(sigma, sigma_wt, sq, inv_sq, rho, eye)
        at_zero = sigma(jnp.zeros((), q.dtype))
    dead = ~live
    c_ss = jnp.where(
        dead[:, None] & dead[None, :],
        at_zero * at_zero,
        jnp.where(dead[:, None], at_zero * mean[None, :], jnp.where(dead[None, :], at_zero * mean[:, None], c_ss)),
    )
    c_xs = jnp.where(dead[None, :], 0.0, c_xs)
    return c_xs, c_ss


def _quadrature_moments(sigma, sigma_wt, sq, inv_sq, rho, eye):
    g = jnp.asarray(_GH_NODES, sq.dtype)
    w = jnp.asarray(_GH_WEIGHTS, sq.dtype)
    values = sigma(sq[:, None] * g[None, :])  # (n, nodes)
    hermite = [jnp.ones_like(g), g]
    for k in range(1, _SERIES_TERMS):
        hermite.append((g * hermite[k] - np.sqrt(k) * hermite[k - 1]) / np.sqrt(k + 1))
    coef = values @ (jnp.stack(hermite, axis=1) * w[:, None])  # (n, K+1): E[σ(√q g) ĥ_k(g)]
    c_xs = sigma_wt * (coef[:, 1] * inv_sq)  # E[g σ(√q g)] = coefficient of ĥ_1
    powers = rho[None, :, :] ** jnp.arange(_SERIES_TERMS + 1)[:, None, None]
    off = jnp.einsum("ik,jk,kij->ij", coef, coef, powers)
    diag = values**2 @ w
    return c_xs, jnp.where(eye, diag[:, None], off), coef[:, 0]  # coef[:, 0] = E σ(√q g)


def _require_gaussian(source: Source) -> None:
    if not getattr(source, "is_gaussian", False):
        raise _validate.InputError(
            f"source must be a Gaussian source for closed-form moments, got {type(source).__name__}; "
            "use mc_risk, or optimal_decoder with key= and n_samples= for sample moments"
        )


def _risk_from_moments(A: Array, c_xs: Array, c_ss: Array, trace: Array, d: int) -> Array:
    # In units of m = max|A|, so that a decoder too large for the dtype gives +inf (an overflow the
    # sweep reports) instead of inf − inf = NaN; m is a constant for autodiff (same gradient).
    m = jax.lax.stop_gradient(jnp.max(jnp.abs(A)))
    m = jnp.where(m > 0, m, 1.0)
    a = A / m
    return (trace - 2 * m * jnp.sum(a * c_xs) + m * (m * jnp.sum((a @ c_ss) * a))) / d


def exact_risk(params: Params, source: Source, *, arch: Architecture | None = None, **model_kw: Any) -> Array:
    """Exact population risk ``E||x − x̂||² / d`` for a Gaussian source.

    Differentiable in ``params`` without NaN, including at orthogonal or repeated rows. Only the
    linear decoder has a closed form: with a non-linear decoder (``params.head`` or
    ``arch.decoder`` set) it returns NaN. Only the forward map matters, so ``slope`` and
    ``surrogate`` have no effect.

    Args:
        params: ``Params(A, B)``.
        source: ``Gaussian`` source (isotropic, spectrum or covariance).
        arch: the ``aejax.model.Architecture`` (default: sign activation, no mask, raw rows).
        **model_kw: or its fields as keywords (``activation``, ``mask``, ``row_normalize``, ...),
            exactly as ``mc_risk`` takes them.

    Returns:
        Scalar risk.

    Examples:
        >>> from aejax.sources import Gaussian
        >>> float(exact_risk(Params(jnp.zeros((4, 2)), jnp.ones((2, 4))), Gaussian(4)))
        1.0
    """
    arch = as_architecture(arch, model_kw)
    mask, row_normalize, activation = arch.mask, arch.row_normalize, arch.activation
    _check_shapes(params, source, mask)
    if params.head is not None or arch.decoder is not None:
        return jnp.full((), jnp.nan)
    c_xs, c_ss = gaussian_moments(encoder_matrix(params, row_normalize), source, activation)
    A = decoder_matrix(params, row_normalize, mask)
    return _risk_from_moments(A, c_xs, c_ss, source.cov_trace(), source.d)


def optimal_decoder(
    B: Array,
    source: Source,
    *,
    arch: Architecture | None = None,
    ridge: float = 1e-6,
    key: Array | None = None,
    n_samples: int = 100_000,
    **model_kw: Any,
) -> Array:
    """Best linear decoder for a fixed encoder: ``A* = C_xs C_ss⁻¹`` (docs/theory.md §2).

    Moments are exact for Gaussian sources; for other sources pass ``key`` to estimate them from
    ``n_samples`` samples. A relative ``ridge`` keeps the solve stable when ``C_ss`` is singular;
    masked units get zero columns.

    Args:
        B: ``(n, d)`` encoder.
        source: the data source.
        arch: the ``aejax.model.Architecture`` (its ``activation``, ``mask`` and ``row_normalize``
            matter), or its fields as keywords, as for ``exact_risk``.
        ridge: Tikhonov term relative to the mean diagonal of ``C_ss``.
        key: PRNG key, required for non-Gaussian sources.
        n_samples: number of samples for the estimated moments.

    Returns:
        The ``(d, n)`` decoder.

    Examples:
        >>> from aejax.sources import Gaussian
        >>> A = optimal_decoder(jnp.eye(3), Gaussian(3))
        >>> bool(jnp.allclose(A, jnp.sqrt(2 / jnp.pi) * jnp.eye(3), atol=1e-5))
        True
    """
    arch = as_architecture(arch, model_kw)
    activation, mask = arch.activation, arch.mask
    _check_source(source)
    _validate.encoder_shape("B", B, source.d)
    _check_mask(mask, B.shape[0])
    _validate.positive_number("ridge", ridge, allow_zero=True, scalar=True)
    W = encoder_matrix(Params(jnp.zeros(()), B), arch.row_normalize)
    if getattr(source, "is_gaussian", False):
        c_xs, c_ss = gaussian_moments(W, source, activation)
    else:
        if key is None:
            _require_gaussian(source)
        _validate.prng_key("key", key)
        key = cast(jax.Array, key)  # not None: _require_gaussian raised for a non-Gaussian source without a key
        c_xs, c_ss = sample_moments(W, source, key, n_samples, activation)
    n = B.shape[0]
    m = jnp.ones(n, W.dtype) if mask is None else jnp.asarray(mask, W.dtype)
    c_ss = c_ss * m[:, None] * m[None, :] + jnp.diag(1 - m)
    c_ss = c_ss + ridge * jnp.mean(jnp.diag(c_ss)) * jnp.eye(n, dtype=W.dtype)
    return jnp.linalg.solve(c_ss, (c_xs * m).T).T


def sample_moments(
    W: Array, source: Source, key: Array, n_samples: int, activation: str | ActivationFn = "sign", chunk: int = 8192
) -> tuple[Array, Array]:
    """Monte Carlo estimates of ``C_xs`` and ``C_ss``, accumulated in chunks of ``chunk`` samples."""
    n_samples = _validate.positive_int("n_samples", n_samples)
    act = get_activation(activation)
    n_chunks = -(-n_samples // chunk)

    def body(acc, i):
        x = source.sample(jax.random.fold_in(key, i), chunk)
        keep = (i * chunk + jnp.arange(chunk) < n_samples).astype(x.dtype)[:, None]
        s = act(x @ W.T) * keep
        return (acc[0] + x.T @ s, acc[1] + s.T @ s), None

    zeros = (jnp.zeros((W.shape[1], W.shape[0])), jnp.zeros((W.shape[0], W.shape[0])))
    (xs, ss), _ = jax.lax.scan(body, zeros, jnp.arange(n_chunks))
    return xs / n_samples, ss / n_samples


def mc_risk(
    params: Params,
    source: Source,
    key: Array,
    n_samples: int = 100_000,
    *,
    chunk: int = 4096,
    arch: Architecture | None = None,
    **model_kw: Any,
) -> tuple[Array, Array]:
    """Monte Carlo risk: mean of ``||x − x̂||² / d`` over fresh samples, and its standard error.

    Samples are drawn and reduced ``chunk`` at a time inside a ``lax.scan`` (Chan's pairwise
    update of mean and variance), so memory does not grow with ``n_samples``.

    Args:
        params: ``Params(A, B)``.
        source: any source.
        key: PRNG key.
        n_samples: number of samples (>= 2).
        chunk: samples per chunk.
        arch: the ``aejax.model.Architecture`` (default: sign activation, no mask, raw rows).
        **model_kw: or its fields as keywords (``activation``, ``surrogate``, ``slope``,
            ``margin``, ``mask``, ``row_normalize``, ``decoder``), exactly as ``exact_risk``.

    Returns:
        ``(mean, standard_error)``.

    Examples:
        >>> from aejax.sources import Gaussian
        >>> import jax
        >>> mean, se = mc_risk(Params(jnp.zeros((4, 2)), jnp.ones((2, 4))), Gaussian(4), jax.random.key(0), 1000)
        >>> bool(abs(mean - 1.0) < 5 * se)
        True
    """
    arch = as_architecture(arch, model_kw)
    _check_shapes(params, source, arch.mask)
    _validate.prng_key("key", key)
    n_samples = _validate.positive_int("n_samples", n_samples, minimum=2)  # 2 for a standard error
    chunk = min(_validate.positive_int("chunk", chunk), n_samples)
    n_chunks = -(-n_samples // chunk)

    def body(acc, i):
        x = source.sample(jax.random.fold_in(key, i), chunk)
        loss = jnp.mean((x - arch.apply(params, x)) ** 2, axis=-1)
        keep = i * chunk + jnp.arange(chunk) < n_samples
        count = jnp.sum(keep).astype(loss.dtype)
        mean = jnp.sum(jnp.where(keep, loss, 0)) / count
        m2 = jnp.sum(jnp.where(keep, (loss - mean) ** 2, 0))
        return _merge(acc, (count, mean, m2)), None

    (count, mean, m2), _ = jax.lax.scan(body, (jnp.zeros(()),) * 3, jnp.arange(n_chunks))
    return mean, jnp.sqrt(m2 / (count - 1) / count)


def dataset_risk(
    params: Params, data: Array, *, block: int = 4096, arch: Architecture | None = None, **model_kw: Any
) -> Array:
    """Risk on a fixed set of rows: the mean of ``||x − x̂||² / d`` over every row of ``data`` (no resampling).

    Rows are reconstructed ``block`` at a time (``lax.map``), so memory does not grow with the
    number of rows. This is the held-out and training risk of real data (``Model.heldout_risk``).

    Args:
        params: ``Params(A, B)``.
        data: ``(rows, d)`` array (e.g. an ``Empirical`` source's ``data``).
        block: rows per block.
        arch: the ``aejax.model.Architecture``, or its fields as keywords, as for ``mc_risk``.

    Returns:
        Scalar risk.

    Examples:
        >>> x = jnp.asarray(np.random.default_rng(0).normal(size=(10, 4)), jnp.float32)
        >>> risk = dataset_risk(Params(jnp.zeros((4, 2)), jnp.ones((2, 4))), x, block=3)
        >>> bool(jnp.allclose(risk, jnp.mean(x**2)))
        True
    """
    arch = as_architecture(arch, model_kw)
    data = jnp.asarray(data)
    if data.ndim != 2 or data.shape[0] < 1:
        raise _validate.InputError(f"data must be a (rows, d) array with at least one row, got shape {data.shape}")
    _validate.params_shape(params, data.shape[1])
    rows = data.shape[0]
    block = min(_validate.positive_int("block", block), rows)
    n_blocks = -(-rows // block)
    padded = jnp.pad(data, ((0, n_blocks * block - rows), (0, 0))).reshape(n_blocks, block, data.shape[1])

    def one(args):
        x, i = args
        loss = jnp.mean((x - arch.apply(params, x)) ** 2, axis=-1)
        return jnp.sum(jnp.where(i * block + jnp.arange(block) < rows, loss, 0.0))

    return jnp.sum(jax.lax.map(one, (padded, jnp.arange(n_blocks)))) / rows


def _merge(a, b):
    """Chan et al.'s pairwise merge of (count, mean, sum of squared deviations)."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * n_b / n, m2_a + m2_b + delta**2 * n_a * n_b / n


def _check_shapes(params: Params, source: Source, mask: Array | None) -> None:
    _check_source(source)
    _validate.params_shape(params, source.d)
    _check_mask(mask, params.B.shape[0])


def _check_source(source: Source) -> None:
    if not isinstance(source, Source):
        raise _validate.InputTypeError(
            f"source must be an aejax.sources.Source (e.g. Gaussian(d)), got {type(source).__name__}"
        )


def _check_mask(mask: Array | None, n: int) -> None:
    if mask is not None:
        _validate.trailing_size("mask", mask, n, "one entry per hidden unit")
