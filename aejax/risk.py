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
    >>> from aejax.model import Architecture, init
    >>> from aejax.sources import Gaussian
    >>> p, arch = init(jax.random.key(0), 32, 16, kind="orthogonal"), Architecture("sign")
    >>> A = optimal_decoder(p.B, Gaussian(32), arch=arch)
    >>> round(float(exact_risk(p._replace(A=A), Gaussian(32), arch=arch)), 4)  # 1 - 2r/π at r = 1/2
    0.6817

Every function that evaluates weights (``exact_risk``, ``mc_risk``, ``dataset_risk``,
``optimal_decoder``) takes the architecture that trained them as ``arch=`` (an ``Architecture`` or
the run's ``aejax.Model``), with no default; ``mc_risk`` and ``dataset_risk`` also take any
callable ``x ↦ x̂`` in place of ``Params``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from aejax import _validate
from aejax.activations import ActivationFn, get_activation
from aejax.model import Architecture, Params, decoder_matrix, encoder_matrix, resolve_arch
from aejax.sources import Source

Array = jax.Array

_RHO_MAX = 1 - 1e-6
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(96)
_GH_WEIGHTS = _GH_WEIGHTS / np.sqrt(2 * np.pi)  # expectation over g ~ N(0, 1)
_SERIES_TERMS = 40
MAX_SAMPLES = 2**31 - 1  # sample indices are int32 inside the compiled loops


def gaussian_moments(W: Array, source: Source, activation: str | ActivationFn) -> tuple[Array, Array]:
    """``C_xs = E[x sᵀ]`` (d, n) and ``C_ss = E[s sᵀ]`` (n, n) for ``s = σ(W x)``, ``x ~ N(0, Σ)``.

    Args:
        W: ``(n, d)`` encoder as applied (already row-normalised if the model does so).
        source: a Gaussian source.
        activation: ``sign``, ``relu``, ``helu``, ``linear`` (closed form) or another name/callable.

    Returns:
        ``(C_xs, C_ss)``.

    Examples:
        >>> from aejax.sources import Gaussian
        >>> c_xs, c_ss = gaussian_moments(jnp.eye(2), Gaussian(2), "sign")
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


def exact_risk(params: Params, source: Source, *, arch: Architecture | Any = None) -> Array:
    """Exact population risk ``E||x − x̂||² / d`` for a Gaussian source.

    Differentiable in ``params`` without NaN, including at orthogonal or repeated rows. Only the
    linear decoder has a closed form: with a non-linear decoder (``params.head`` or
    ``arch.decoder`` set) it returns NaN. Only the forward map matters, so ``slope`` and
    ``surrogate`` have no effect.

    Args:
        params: ``Params(A, B)``.
        source: ``Gaussian`` source (isotropic, spectrum or covariance).
        arch: required: the ``aejax.Architecture`` that trained ``params`` (its ``activation``,
            ``mask`` and ``row_normalize`` matter), or the run's ``aejax.Model``. There is no
            default: the same weights have another risk under another architecture.

    Returns:
        Scalar risk.

    Examples:
        >>> from aejax.model import Architecture
        >>> from aejax.sources import Gaussian
        >>> float(exact_risk(Params(jnp.zeros((4, 2)), jnp.ones((2, 4))), Gaussian(4), arch=Architecture("sign")))
        1.0
    """
    arch = resolve_arch(arch, "exact_risk")
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
    arch: Architecture | Any = None,
    ridge: float = 1e-6,
    key: Array | None = None,
    n_samples: int = 100_000,
) -> Array:
    """Best linear decoder for a fixed encoder: ``A* = C_xs C_ss⁻¹`` (docs/theory.md §2).

    Moments are exact for Gaussian sources; for other sources pass ``key`` to estimate them from
    ``n_samples`` samples. A relative ``ridge`` keeps the solve stable when ``C_ss`` is singular;
    masked units get zero columns.

    Args:
        B: ``(n, d)`` encoder.
        source: the data source.
        arch: required: the ``aejax.Architecture`` (its ``activation``, ``mask`` and
            ``row_normalize`` matter) or the run's ``aejax.Model``, as for ``exact_risk``.
        ridge: Tikhonov term relative to the mean diagonal of ``C_ss``.
        key: PRNG key, required for non-Gaussian sources.
        n_samples: number of samples for the estimated moments.

    Returns:
        The ``(d, n)`` decoder.

    Examples:
        >>> from aejax.model import Architecture
        >>> from aejax.sources import Gaussian
        >>> A = optimal_decoder(jnp.eye(3), Gaussian(3), arch=Architecture("sign"))
        >>> bool(jnp.allclose(A, jnp.sqrt(2 / jnp.pi) * jnp.eye(3), atol=1e-5))
        True
    """
    arch = resolve_arch(arch, "optimal_decoder")
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
    W: Array, source: Source, key: Array, n_samples: int, activation: str | ActivationFn, chunk: int = 8192
) -> tuple[Array, Array]:
    """Monte Carlo estimates of ``C_xs`` and ``C_ss``, accumulated in chunks of ``chunk`` samples
    (``n_samples`` at most ``2**31 - 1``: sample indices are int32 in the compiled loop)."""
    n_samples = _validate.positive_int("n_samples", n_samples, maximum=MAX_SAMPLES)
    act = get_activation(activation)
    n_chunks = -(-n_samples // chunk)

    def body(acc, i):
        x = source.sample(jax.random.fold_in(key, i), chunk)
        keep = _kept(i, chunk, n_samples).astype(x.dtype)[:, None]
        s = act(x @ W.T) * keep
        return (acc[0] + x.T @ s, acc[1] + s.T @ s), None

    zeros = (jnp.zeros((W.shape[1], W.shape[0])), jnp.zeros((W.shape[0], W.shape[0])))
    (xs, ss), _ = jax.lax.scan(body, zeros, jnp.arange(n_chunks))
    return xs / n_samples, ss / n_samples


def mc_risk(
    params: Params | Callable[[Array], Array],
    source: Source,
    key: Array,
    n_samples: int = 100_000,
    *,
    chunk: int = 4096,
    arch: Architecture | Any = None,
) -> tuple[Array, Array]:
    """Monte Carlo risk: mean of ``||x − x̂||² / d`` over fresh samples, and its standard error.

    Samples are drawn and reduced ``chunk`` at a time inside a ``lax.scan`` (Chan's pairwise
    update of mean and variance), so memory does not grow with ``n_samples``. The map ``x ↦ x̂``
    is the autoencoder ``arch.apply(params, ·)``, or any callable: an NNX module (a preprocessing
    layer in front of ``aejax.nn.Autoencoder``, say), a function, a closure over weights being
    differentiated.

    Args:
        params: ``Params(A, B)`` together with ``arch``; or any callable taking a ``(chunk, d)``
            batch to its ``(chunk, d)`` reconstruction (then no ``arch``).
        source: any source.
        key: PRNG key.
        n_samples: number of samples, from 2 (for a standard error) to ``2**31 - 1``.
        chunk: samples per chunk.
        arch: with ``Params``, required: the ``aejax.Architecture`` that trained them, or the
            run's ``aejax.Model`` (as for ``exact_risk``).

    Returns:
        ``(mean, standard_error)``.

    Examples:
        >>> import jax
        >>> from aejax.model import Architecture
        >>> from aejax.sources import Gaussian
        >>> p = Params(jnp.zeros((4, 2)), jnp.ones((2, 4)))
        >>> mean, se = mc_risk(p, Gaussian(4), jax.random.key(0), 1000, arch=Architecture("sign"))
        >>> bool(abs(mean - 1.0) < 5 * se)
        True
        >>> mean, se = mc_risk(lambda x: 0.5 * x, Gaussian(4), jax.random.key(0), 1000)  # any map: R = 1/4
        >>> bool(abs(mean - 0.25) < 5 * se)
        True
    """
    _check_source(source)
    reconstruct = _reconstruction(params, arch, source.d, "mc_risk")
    _validate.prng_key("key", key)
    n_samples = _validate.positive_int("n_samples", n_samples, minimum=2, maximum=MAX_SAMPLES)
    chunk = min(_validate.positive_int("chunk", chunk), n_samples)
    n_chunks = -(-n_samples // chunk)

    def body(acc, i):
        x = source.sample(jax.random.fold_in(key, i), chunk)
        loss = jnp.mean((x - reconstruct(x)) ** 2, axis=-1)
        keep = _kept(i, chunk, n_samples)
        count = jnp.sum(keep).astype(loss.dtype)
        mean = jnp.sum(jnp.where(keep, loss, 0)) / count
        m2 = jnp.sum(jnp.where(keep, (loss - mean) ** 2, 0))
        return _merge(acc, (count, mean, m2)), None

    (count, mean, m2), _ = jax.lax.scan(body, (jnp.zeros(()),) * 3, jnp.arange(n_chunks))
    return mean, jnp.sqrt(m2 / (count - 1) / count)


def dataset_risk(
    params: Params | Callable[[Array], Array],
    data: Array,
    *,
    block: int = 4096,
    arch: Architecture | Any = None,
) -> Array:
    """Risk on a fixed set of rows: the mean of ``||x − x̂||² / d`` over every row of ``data`` (no resampling).

    Rows are reconstructed ``block`` at a time (``lax.map``), so memory does not grow with the
    number of rows. This is the held-out and training risk of real data (``Model.heldout_risk``).

    Args:
        params: ``Params(A, B)`` together with ``arch``; or any callable ``x ↦ x̂`` on
            ``(block, d)`` batches (then no ``arch``), as for ``mc_risk``.
        data: ``(rows, d)`` array (e.g. an ``Empirical`` source's ``data``).
        block: rows per block.
        arch: with ``Params``, required: the ``aejax.Architecture`` or the run's ``aejax.Model``.

    Returns:
        Scalar risk.

    Examples:
        >>> from aejax.model import Architecture
        >>> x = jnp.asarray(np.random.default_rng(0).normal(size=(10, 4)), jnp.float32)
        >>> risk = dataset_risk(Params(jnp.zeros((4, 2)), jnp.ones((2, 4))), x, block=3, arch=Architecture("sign"))
        >>> bool(jnp.allclose(risk, jnp.mean(x**2)))
        True
        >>> bool(jnp.allclose(dataset_risk(lambda x: -x, x), 4 * jnp.mean(x**2)))
        True
    """
    data = jnp.asarray(data)
    if data.ndim != 2 or data.shape[0] < 1:
        raise _validate.InputError(f"data must be a (rows, d) array with at least one row, got shape {data.shape}")
    reconstruct = _reconstruction(params, arch, data.shape[1], "dataset_risk")
    rows = data.shape[0]
    block = min(_validate.positive_int("block", block), rows)
    n_blocks = -(-rows // block)
    padded = jnp.pad(data, ((0, n_blocks * block - rows), (0, 0))).reshape(n_blocks, block, data.shape[1])

    def one(args):
        x, i = args
        loss = jnp.mean((x - reconstruct(x)) ** 2, axis=-1)
        return jnp.sum(jnp.where(_kept(i, block, rows), loss, 0.0))

    return jnp.sum(jax.lax.map(one, (padded, jnp.arange(n_blocks)))) / rows


def _reconstruction(params: Any, arch: Any, d: int, caller: str) -> Callable[[Array], Array]:
    """The map ``x ↦ x̂`` that ``caller`` evaluates: ``arch.apply(params, ·)`` for ``Params`` (whose
    shapes are checked against ``d``), or ``params`` itself when it is a callable."""
    if callable(params):
        if arch is not None:
            raise _validate.InputTypeError(
                f"{caller}: arch= goes with Params(A, B); the callable {_validate._brief(params)} is "
                "evaluated as it is, so pass no arch"
            )
        return _same_shape(cast(Callable[[Array], Array], params))
    model = resolve_arch(arch, caller)
    _validate.params_shape(params, d)
    _check_mask(model.mask, params.B.shape[0])
    return functools.partial(model.apply, params)


def _same_shape(f: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """``f``, refusing (at trace time) an output whose shape is not its input's."""

    def apply(x: Array) -> Array:
        x_hat = f(x)
        if jnp.shape(x_hat) != jnp.shape(x):
            raise _validate.InputError(
                f"the map x ↦ x̂ must return an array of its input's shape {jnp.shape(x)} (a batch of "
                f"reconstructions), got shape {jnp.shape(x_hat)}"
            )
        return x_hat

    return apply


def _kept(i: Array, size: int, total: int) -> Array:
    """Which of block ``i``'s ``size`` entries are among the first ``total``; ``i·size < total``, so
    no int32 index overflows even for ``total`` up to ``2**31 - 1``."""
    return jnp.arange(size) < total - i * size


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
