"""The two-layer autoencoder x̂ = A σ(Bx) as a plain pytree and pure functions.

``Params(A, B)``: ``B`` is the ``(n, d)`` encoder. ``A`` is the ``(d, n)`` decoder, or a scalar α
for a weight-tied decoder ``A = α Bᵀ`` (``α B̄ᵀ`` when the encoder is row-normalised). A hidden-unit
``mask`` of shape ``(n,)`` switches units off, which is how one compiled program serves every
rate up to ``n``.

Examples:
    >>> import jax
    >>> params = init(jax.random.key(0), d=16, n=8, kind="orthogonal")
    >>> apply(params, jax.random.normal(jax.random.key(1), (4, 16))).shape
    (4, 16)
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from aejax import _validate
from aejax.activations import ActivationFn, get_activation

Array = jax.Array


class Params(NamedTuple):
    """Architecture weights: decoder ``A`` ((d, n), or scalar α when weight-tied) and encoder ``B`` (n, d).

    ``head`` holds the parameters of a non-linear decoder (``aejax.decoders``); ``None`` for the
    linear decoder ``A s``.

    Examples:
        >>> Params(A=jnp.zeros((4, 2)), B=jnp.ones((2, 4))).B.shape
        (2, 4)
    """

    A: Array
    B: Array
    head: Any = None


INIT_KINDS = ("gaussian", "orthogonal")


def init(
    key: Array, d: int, n: int, *, kind: str = "gaussian", tied: bool = False, decoder_scale: float = 0.0
) -> Params:
    """Random initial parameters.

    Args:
        key: PRNG key.
        d: input dimension.
        n: number of hidden units (rate r = n / d).
        kind: ``"gaussian"`` (i.i.d. N(0, 1/d) entries, rows of norm ≈ 1) or ``"orthogonal"``
            (Haar: orthonormal rows for n ≤ d; for n > d a random tight frame with BᵀB = (n/d) I).
        tied: return a weight-tied decoder (``A`` is the scalar ``sqrt(2/π)``).
        decoder_scale: standard deviation times sqrt(n) of the initial untied decoder (0: zeros).

    Returns:
        ``Params(A, B)``.

    Examples:
        >>> p = init(jax.random.key(0), 8, 4, kind="orthogonal")
        >>> bool(jnp.allclose(p.B @ p.B.T, jnp.eye(4), atol=1e-5))
        True
    """
    d = _validate.positive_int("d", d)
    n = _validate.positive_int("n", n)
    _validate.choice("kind", kind, INIT_KINDS)
    _validate.prng_key("key", key)
    _validate.boolean("tied", tied)
    _validate.positive_number("decoder_scale", decoder_scale, allow_zero=True, scalar=True)
    largest = float(jnp.finfo(jnp.result_type(float)).max) / 10  # entries are about scale·N(0, 1/n)
    if _validate.is_concrete(decoder_scale) and float(decoder_scale) > largest:
        raise _validate.InputError(
            f"decoder_scale must be below {largest:.3g} so the initial decoder fits "
            f"{jnp.result_type(float)}, got {decoder_scale!r}"
        )
    k_enc, k_dec = jax.random.split(key)
    B = gaussian_rows(k_enc, n, d) / jnp.sqrt(d) if kind == "gaussian" else haar_frame(k_enc, n, d)
    if tied:
        return Params(jnp.sqrt(2 / jnp.pi), B)
    # no draw to scale by zero (a concrete 0 only): XLA keeps it (0·x is NaN for x = inf), at ~1/3 of init's compile
    if _validate.is_concrete(decoder_scale) and float(decoder_scale) == 0:
        return Params(jnp.zeros((d, n), B.dtype), B)
    A = decoder_scale * gaussian_rows(k_dec, n, d).T / jnp.sqrt(n)
    return Params(A, B)


def gaussian_rows(key: Array, n: int, d: int) -> Array:
    """``(n, d)`` standard normal matrix whose row ``i`` depends only on ``(key, i)``.

    So the first ``k`` rows are the same whatever ``n`` is: a run whose rate masks a larger
    compiled ``n`` starts from the same weights as a run compiled with exactly its own ``n``.

    Examples:
        >>> k = jax.random.key(0)
        >>> bool(jnp.array_equal(gaussian_rows(k, 3, 4), gaussian_rows(k, 5, 4)[:3]))
        True
    """
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (d,)))(jnp.arange(n))


def haar_frame(key: Array, n: int, d: int) -> Array:
    """Haar-random ``(n, d)`` matrix: orthonormal rows if n ≤ d, else a tight frame with BᵀB = (n/d) I.

    For n ≤ d the rows are Gram–Schmidt orthonormalised ``gaussian_rows``, so the first ``k`` rows
    do not depend on ``n`` either.

    Examples:
        >>> B = haar_frame(jax.random.key(0), 8, 4)
        >>> bool(jnp.allclose(B.T @ B, 2 * jnp.eye(4), atol=1e-5))
        True
    """
    if n <= d:
        q, r = jnp.linalg.qr(gaussian_rows(key, n, d).T)
        return (q * jnp.sign(jnp.diag(r))).T  # sign fix: Haar measure, not the QR convention's bias
    q, r = jnp.linalg.qr(gaussian_rows(key, n, n))
    return (q * jnp.sign(jnp.diag(r)))[:, :d] * jnp.sqrt(n / d)


def normalize_rows(B: Array) -> Array:
    """Rows scaled to unit norm (zero rows stay finite). Example: ``normalize_rows(jnp.ones((2, 4)))``."""
    sq_norm = jnp.sum(B**2, axis=-1, keepdims=True)
    live = sq_norm > 0  # double `where`: zero rows stay zero with a finite (zero) gradient
    return B * jnp.where(live, jax.lax.rsqrt(jnp.where(live, sq_norm, 1.0)), 0.0)


def encoder_matrix(params: Params, row_normalize: bool = False) -> Array:
    """The encoder actually applied: ``B``, or ``B̄`` with unit rows."""
    return normalize_rows(params.B) if row_normalize else params.B


def decoder_matrix(params: Params, row_normalize: bool = False, mask: Array | None = None) -> Array:
    """The ``(d, n)`` decoder: ``A``, or ``α Bᵀ`` (``α B̄ᵀ``) for a tied decoder; masked columns zeroed.

    Examples:
        >>> p = Params(jnp.asarray(0.5), jnp.eye(2))
        >>> decoder_matrix(p)
        Array([[0.5, 0. ],
               [0. , 0.5]], dtype=float32)
    """
    A = params.A
    if jnp.ndim(A) == 0:
        A = A * encoder_matrix(params, row_normalize).T
    return A if mask is None else A * mask


@dataclasses.dataclass(frozen=True, eq=False)
class Architecture:
    """How an autoencoder maps ``x`` to ``x̂`` given its ``Params``: everything but the weights.

    A pytree: ``activation``, ``surrogate`` and ``row_normalize`` are static structure; ``slope``,
    ``margin``, ``mask`` and the non-linear ``decoder``'s numbers are leaves, so an ``Architecture``
    can be built inside ``jit`` and ``vmap``-ed over them. ``aejax.mc_risk``, ``aejax.exact_risk``
    and ``aejax.optimal_decoder`` require it as ``arch=`` (or the ``Model``, whose ``arch`` is the
    one a run trains): the risk of the same weights depends on it.

    ``row_normalize`` defaults to ``True``, as in ``TrainConfig`` and ``aejax.nn.Autoencoder``: one
    default everywhere, the one the theory (docs/theory.md §3) and every run use.

    Args:
        activation: name (``sign``, ``helu``, ``relu``, ``tanh``, ``linear``) or a callable.
        surrogate: surrogate derivative used when differentiating through ``sign``.
        row_normalize: apply ``B̄`` (unit-norm rows) instead of ``B`` (default ``True``).
        slope: surrogate slope (array, broadcasts per hidden unit).
        margin: HeLU margin / sign hysteresis window.
        mask: optional ``(n,)`` 0/1 hidden-unit mask.
        decoder: an ``aejax.decoders.NonlinearDecoder`` (``params.head`` holds its parameters), or
            ``None`` for the linear decoder ``A s``.

    Examples:
        >>> model = Architecture("sign", row_normalize=True)
        >>> model.apply(Params(jnp.eye(2) * 2.0, jnp.eye(2) * 3.0), jnp.array([0.5, -0.1]))
        Array([ 2., -2.], dtype=float32)
    """

    activation: str | ActivationFn = dataclasses.field(default="sign", metadata={"static": True})
    surrogate: str = dataclasses.field(default="clip", metadata={"static": True})
    row_normalize: bool = dataclasses.field(default=True, metadata={"static": True})
    slope: Any = 1.0
    margin: Any = 0.0
    mask: Array | None = None
    decoder: Any = None

    def encode(self, params: Params, x: Array) -> Array:
        """Hidden code ``σ(B x)`` for a batch ``x`` of shape ``(..., d)``; masked units are 0."""
        act = get_activation(self.activation, self.surrogate)
        _validate.params_shape(params)
        n, d = params.B.shape
        _validate.trailing_size("x", x, d, f"the input dimension of params.B, shape {(n, d)}")
        if self.mask is not None:
            _validate.trailing_size("mask", self.mask, n, "one entry per hidden unit")
        s = act(x @ encoder_matrix(params, self.row_normalize).T, slope=self.slope, margin=self.margin)
        return s if self.mask is None else s * self.mask

    def decode(self, params: Params, s: Array) -> Array:
        """Reconstruction ``A s`` for codes of shape ``(..., n)``, or the non-linear decoder's."""
        if self.decoder is not None:
            return self.decoder.decode(params, s, row_normalize=self.row_normalize)
        _validate.params_shape(params)
        _validate.trailing_size("s", s, params.B.shape[0], "one entry per hidden unit")
        return s @ decoder_matrix(params, self.row_normalize).T

    def apply(self, params: Params, x: Array) -> Array:
        """Reconstruction ``x̂`` of ``x`` (shape ``(..., d)``)."""
        return self.decode(params, self.encode(params, x))

    def loss(self, params: Params, x: Array) -> Array:
        """Mean over the batch ``x`` of ``||x − x̂||² / d``."""
        return jnp.mean((x - self.apply(params, x)) ** 2)


jax.tree_util.register_dataclass(
    Architecture,
    data_fields=["slope", "margin", "mask", "decoder"],
    meta_fields=["activation", "surrogate", "row_normalize"],
)

MODEL_FIELDS = ("activation", "surrogate", "row_normalize", "slope", "margin", "mask", "decoder")


def as_architecture(arch: Architecture | None, fields: dict[str, Any]) -> Architecture:
    """``arch``, or an ``Architecture`` built from keyword ``fields`` (never both).

    The one place that turns the keyword form (``activation=..., mask=...``) of ``apply``,
    ``encode`` and ``decode`` into the model object (the risk functions take ``arch=`` only:
    ``resolve_arch``).

    Examples:
        >>> as_architecture(None, {"activation": "relu"}).activation
        'relu'
    """
    unknown = sorted(set(fields) - set(MODEL_FIELDS))
    if unknown:
        raise _validate.InputTypeError(f"unknown model keyword(s) {unknown}; allowed: {', '.join(MODEL_FIELDS)}")
    if arch is None:
        return Architecture(**fields)
    if not isinstance(arch, Architecture):
        raise _validate.InputTypeError(f"arch must be an aejax.model.Architecture, got {type(arch).__name__}")
    if fields:
        raise _validate.InputTypeError(f"pass either arch= or the architecture keywords {sorted(fields)}, not both")
    return arch


def resolve_arch(arch: Any, caller: str) -> Architecture:
    """The ``Architecture`` given to ``caller`` as ``arch=``: an ``Architecture``, or a ``Model``
    (anything whose ``arch`` attribute is one). ``None`` is refused: the risk of given weights
    depends on the activation, the hidden-unit mask and whether rows are normalised, so a function
    that evaluates parameters never guesses them.

    Examples:
        >>> resolve_arch(Architecture("relu"), "exact_risk").activation
        'relu'
        >>> resolve_arch(None, "exact_risk")
        Traceback (most recent call last):
        ...
        aejax.InputTypeError: exact_risk needs arch=: the aejax.Architecture (or aejax.Model) ...
    """
    if isinstance(arch, Architecture):
        return arch
    inner = getattr(arch, "arch", None)
    if isinstance(inner, Architecture):
        return inner
    if arch is None:
        raise _validate.InputTypeError(
            f"{caller} needs arch=: the aejax.Architecture (or aejax.Model) that maps x to x̂ for these "
            'params, e.g. model.arch or aejax.Architecture("tanh", row_normalize=True, mask=...); the risk '
            "of the same weights differs between architectures"
        )
    raise _validate.InputTypeError(
        f"arch must be an aejax.Architecture or an aejax.Model, got {_validate._brief(arch)}"
    )


def encode(params: Params, x: Array, activation: str | ActivationFn = "sign", **model_kw: Any) -> Array:
    """Hidden code ``σ(B x)`` for a batch ``x`` of shape ``(..., d)``; masked units are 0.

    Keywords are the fields of ``Architecture`` (``surrogate``, ``slope``, ``margin``, ``mask``,
    ``row_normalize``).

    Examples:
        >>> p = Params(jnp.zeros((2, 2)), jnp.eye(2))
        >>> encode(p, jnp.array([[0.3, -2.0]]))
        Array([[ 1., -1.]], dtype=float32)
    """
    return as_architecture(None, {"activation": activation, **model_kw}).encode(params, x)


def decode(params: Params, s: Array, **model_kw: Any) -> Array:
    """Reconstruction ``A s`` for codes of shape ``(..., n)``; keywords as for ``Architecture``.

    Examples:
        >>> decode(Params(jnp.eye(2) * 0.5, jnp.eye(2)), jnp.array([1.0, -1.0]))
        Array([ 0.5, -0.5], dtype=float32)
    """
    return as_architecture(None, model_kw).decode(params, s)


def apply(params: Params, x: Array, activation: str | ActivationFn = "sign", **model_kw: Any) -> Array:
    """Architecture output ``x̂ = A σ(B x)`` for ``x`` of shape ``(..., d)``.

    The functional form of ``Architecture(activation, **model_kw).apply(params, x)``.

    Args:
        params: ``Params(A, B)``.
        x: inputs.
        activation: name (``sign``, ``helu``, ``relu``, ``tanh``, ``linear``) or a callable.
        **model_kw: the other fields of ``Architecture`` (``surrogate``, ``slope``, ``margin``,
            ``mask``, ``row_normalize``, ``decoder``).

    Returns:
        Reconstructions with the shape of ``x``.

    Examples:
        >>> p = Params(jnp.eye(2) * 2.0, jnp.eye(2))
        >>> apply(p, jnp.array([0.5, -0.1]))
        Array([ 2., -2.], dtype=float32)
    """
    return as_architecture(None, {"activation": activation, **model_kw}).apply(params, x)


def rate_mask(rate: Any, d: int, n: int) -> Array:
    """0/1 mask keeping the first ``round(rate * d)`` of ``n`` hidden units (``rate`` may be traced).

    Examples:
        >>> rate_mask(0.5, d=4, n=4)
        Array([1., 1., 0., 0.], dtype=float32)
    """
    return (jnp.arange(n) < jnp.round(jnp.asarray(rate) * d)).astype(jnp.float32)


def identity_likeness(B: Array, mask: Array | None = None) -> Array:
    """Order parameter of an encoder's alignment with the coordinate axes: mean over rows of max_j b̄_ij².

    1 for a signed permutation (rows of ±I), about 2 log(d)/d for a random rotation (docs/theory.md §4).

    Args:
        B: ``(n, d)`` encoder (rows need not be normalised; zero rows count as 0).
        mask: optional ``(n,)`` 0/1 hidden-unit mask; the mean is over live rows.

    Returns:
        Scalar in [1/d, 1].

    Examples:
        >>> float(identity_likeness(jnp.eye(3)[::-1] * -2.0))
        1.0
    """
    return _mean_over_rows(jnp.max(normalize_rows(B) ** 2, axis=-1), mask)


def exact_tie_fraction(B: Array, x: Array, mask: Array | None = None) -> Array:
    """Which sign(0) convention an encoder realises on samples ``x``: among the (sample, live row)
    pairs whose row's dominant input coordinate is 0, the fraction with u = b·x = 0 exactly.

    1 means sign(0) = +1 decides those bits (the "+1" convention: rows with exact zeros); 0 means
    the other coordinates always break the tie (symmetric in law). 0 when no pair qualifies.

    Args:
        B: ``(n, d)`` encoder.
        x: ``(samples, d)`` inputs.
        mask: optional ``(n,)`` 0/1 hidden-unit mask; only live rows count.

    Returns:
        Scalar in [0, 1].

    Examples:
        >>> x = jnp.array([[0.0, 1.0], [1.0, 0.0]])
        >>> float(exact_tie_fraction(jnp.eye(2), x)), float(exact_tie_fraction(jnp.array([[1.0, 0.1]]), x))
        (1.0, 0.0)
    """
    rows = normalize_rows(B)
    dominant = jnp.argmax(jnp.abs(rows), axis=1)
    live = jnp.ones(rows.shape[0], bool) if mask is None else jnp.asarray(mask) > 0
    zero_input = (x[:, dominant] == 0) & live[None, :]
    exact = (x @ rows.T == 0) & zero_input
    return jnp.sum(exact) / jnp.maximum(jnp.sum(zero_input), 1)


def inverse_participation_ratio(B: Array, mask: Array | None = None) -> Array:
    """Localisation of an encoder's rows: mean over rows of Σ_j b̄_ij⁴.

    1 for a signed permutation, 3/(d + 2) on average for Haar rows, 1/d for flat rows (|b̄_ij| = 1/√d).
    On sparse data a rotation's risk moves by about (1 − R_Gauss)·kurtosis·IPR/12
    (``aejax.theory.kurtosis_correction``).

    Args:
        B: ``(n, d)`` encoder (rows need not be normalised; zero rows count as 0).
        mask: optional ``(n,)`` 0/1 hidden-unit mask; the mean is over live rows.

    Examples:
        >>> float(inverse_participation_ratio(jnp.ones((2, 4))))
        0.25
    """
    return _mean_over_rows(jnp.sum(normalize_rows(B) ** 4, axis=-1), mask)


def coherence(B: Array, mask: Array | None = None) -> Array:
    """Largest overlap between two live encoder rows: max over i ≠ j of |b̄_i·b̄_j|.

    0 for orthogonal rows; for r > 1 an incoherent tight frame keeps it O(√(log n / d)), and the
    Gaussian-limit structure needs it → 0 (docs/theory.md §3); 1 for a repeated or antipodal row.

    Args:
        B: ``(n, d)`` encoder (rows need not be normalised; zero rows overlap nothing).
        mask: optional ``(n,)`` 0/1 hidden-unit mask; only pairs of live rows count.

    Examples:
        >>> float(coherence(jnp.eye(3)))
        0.0
        >>> float(coherence(jnp.array([[1.0, 0.0], [-2.0, 0.0], [0.0, 1.0]])))
        1.0
    """
    Bn = normalize_rows(B)
    overlap = jnp.abs(Bn @ Bn.T) * (1.0 - jnp.eye(B.shape[0], dtype=Bn.dtype))
    if mask is not None:
        overlap = overlap * mask[:, None] * mask[None, :]
    return jnp.max(overlap)


def _mean_over_rows(values: Array, mask: Array | None) -> Array:
    if mask is None:
        return jnp.mean(values)
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)
