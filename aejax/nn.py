"""Flax NNX modules: the autoencoder and the sign surrogate as layers of a user's own model.

The modules hold state only; the math is ``aejax.model``'s and ``aejax.activations``'. Weights are
``nnx.Param``; the numbers that are swept (surrogate slope, margin, hidden-unit mask) are ``Hyper``
variables: optimizers and ``nnx.grad`` (which default to ``nnx.Param``) leave them alone, and
setting a new value never retraces a jitted function.

Examples:
    >>> import jax, jax.numpy as jnp, aejax
    >>> from flax import nnx
    >>> ae = Autoencoder(16, 8, rngs=nnx.Rngs(0), decoder_scale=1.0)
    >>> x = jax.random.normal(jax.random.key(1), (4, 16))
    >>> bool(jnp.array_equal(ae(x), aejax.apply(ae.to_params(), x, **ae.model_kw())))
    True
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from aejax import _validate, model
from aejax.activations import ACTIVATIONS, ActivationFn, check_surrogate, sign

Array = jax.Array

__all__ = ["Autoencoder", "Hyper", "Sign"]


class Hyper(nnx.Variable):
    """A non-trainable number of a module (surrogate slope, margin, hidden-unit mask).

    Not an ``nnx.Param``, so ``nnx.grad`` and ``nnx.Optimizer(..., wrt=nnx.Param)`` skip it. Its
    value is a leaf of the module's state: change it with ``var[...] = value`` without retracing.

    Examples:
        >>> layer = Sign(slope=2.0)
        >>> layer.slope[...] = 4.0
        >>> float(layer.slope[...])
        4.0
    """


def _number(name: str, value: Any, *, allow_zero: bool = False) -> Hyper:
    _validate.positive_number(name, value, allow_zero=allow_zero)
    return Hyper(jnp.asarray(value, jnp.float32))


class Sign(nnx.Module):
    """``aejax.sign`` as a layer: exact ±1 forward, the chosen surrogate derivative backward.

    Args:
        surrogate: one of ``aejax.activations.SURROGATES`` (static: changing it means a new layer).
        slope: surrogate slope; scalar or broadcasting against the input (e.g. one per unit).
        margin: hysteresis window (the surrogate is centred at ``-margin``).

    Examples:
        >>> layer = Sign("tanh", slope=2.0)
        >>> layer(jnp.array([-0.5, 0.0, 3.0]))
        Array([-1.,  1.,  1.], dtype=float32)
        >>> float(jax.grad(lambda u: layer(u))(0.0))
        2.0
    """

    def __init__(self, surrogate: str = "clip", slope: Array | float = 1.0, margin: Array | float = 0.0):
        self.surrogate = check_surrogate(surrogate)
        self.slope = _number("slope", slope)
        self.margin = _number("margin", margin, allow_zero=True)

    def __call__(self, x: Array) -> Array:
        """``aejax.sign(x, slope, surrogate, margin)`` with this layer's numbers."""
        return sign(x, self.slope[...], self.surrogate, self.margin[...])


class Autoencoder(nnx.Module):
    """The autoencoder ``x̂ = A σ(B x)`` with the options of ``aejax.apply``.

    Built either from ``rngs`` (weights from ``aejax.init``) or from given ``params``
    (``Autoencoder.from_params``). ``A`` and ``B`` are ``nnx.Param``; ``slope``, ``margin`` and
    ``mask`` are ``Hyper``. A tied decoder is a scalar ``A`` (``A = α Bᵀ``, or ``α B̄ᵀ``).

    Args:
        d: input dimension.
        n: hidden units.
        rngs: random streams; the weights come from ``aejax.init(rngs.params(), d, n, ...)``.
        params: initial ``aejax.Params`` instead of ``rngs`` (shapes must match ``d`` and ``n``).
        init: ``"gaussian"`` or ``"orthogonal"`` encoder (with ``rngs`` only).
        tied: weight-tied decoder (with ``rngs`` only; given ``params`` are tied if ``A`` is scalar).
        decoder_scale: scale of the random untied decoder (with ``rngs`` only; 0 gives zeros).
        activation: ``sign``, ``helu``, ``relu``, ``tanh``, ``linear`` or a callable ``f(u)``.
        surrogate: surrogate derivative of ``sign``.
        slope: surrogate slope (scalar or ``(n,)``).
        margin: HeLU margin / sign hysteresis window.
        row_normalize: apply ``B̄`` (unit-norm rows) instead of ``B`` (default ``True``, as in
            ``aejax.TrainConfig`` and ``aejax.Architecture``).
        mask: ``(n,)`` 0/1 hidden-unit mask (default: all ones).

    Examples:
        >>> class Denoiser(nnx.Module):
        ...     def __init__(self, rngs):
        ...         self.ae = Autoencoder(8, 4, rngs=rngs, surrogate="tanh")
        ...     def __call__(self, x, noise):
        ...         return self.ae(x + noise)
        >>> Denoiser(nnx.Rngs(0))(jnp.ones((3, 8)), 0.1).shape
        (3, 8)
    """

    def __init__(
        self,
        d: int,
        n: int,
        *,
        rngs: nnx.Rngs | None = None,
        params: model.Params | None = None,
        init: str = "gaussian",
        tied: bool = False,
        decoder_scale: float = 0.0,
        activation: str | ActivationFn = "sign",
        surrogate: str = "clip",
        slope: Array | float = 1.0,
        margin: Array | float = 0.0,
        row_normalize: bool = True,
        mask: Array | None = None,
    ):
        d = _validate.positive_int("d", d)
        n = _validate.positive_int("n", n)
        if (rngs is None) == (params is None):
            raise _validate.InputTypeError(
                "Autoencoder needs exactly one of rngs= (random weights) or params= (given weights)"
            )
        if params is None:
            assert rngs is not None  # exactly one of rngs= and params= was given (checked above)
            params = model.init(rngs.params(), d, n, kind=init, tied=tied, decoder_scale=decoder_scale)
        _check_params(params, d, n)
        if not callable(activation):
            _validate.choice("activation", activation, ACTIVATIONS)
        mask = jnp.ones(n, jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
        if mask.shape != (n,):
            raise _validate.InputError(f"mask must have shape ({n},) (one entry per hidden unit), got {mask.shape}")
        self.A = nnx.Param(jnp.asarray(params.A))
        self.B = nnx.Param(jnp.asarray(params.B))
        self.activation = activation
        self.surrogate = check_surrogate(surrogate)
        self.row_normalize = bool(row_normalize)
        self.slope = _number("slope", slope)
        self.margin = _number("margin", margin, allow_zero=True)
        self.mask = Hyper(mask)

    @classmethod
    def from_params(cls, params: model.Params, **options: Any) -> Autoencoder:
        """A module holding ``params`` (d and n are read from ``params.B``).

        Args:
            params: ``aejax.Params``; a scalar ``A`` gives a tied decoder.
            **options: activation, surrogate, slope, margin, row_normalize, mask.

        Returns:
            The ``Autoencoder``.

        Examples:
            >>> import aejax
            >>> p = aejax.init(jax.random.key(0), 8, 4, tied=True)
            >>> Autoencoder.from_params(p, row_normalize=True).to_params().A.shape
            ()
        """
        n, d = jnp.shape(params.B)
        return cls(d, n, params=params, **options)

    def to_params(self) -> model.Params:
        """The current weights as ``aejax.Params(A, B)`` (usable with every functional API).

        Examples:
            >>> ae = Autoencoder(8, 4, rngs=nnx.Rngs(0))
            >>> ae.to_params().B.shape
            (4, 8)
        """
        return model.Params(self.A[...], self.B[...])

    def model_kw(self) -> dict[str, Any]:
        """This module's ``aejax.Architecture`` fields as keywords of ``aejax.apply`` / ``encode`` / ``mc_risk``.

        Examples:
            >>> sorted(Autoencoder(8, 4, rngs=nnx.Rngs(0)).model_kw())
            ['activation', 'margin', 'mask', 'row_normalize', 'slope', 'surrogate']
        """
        return dict(
            activation=self.activation,
            surrogate=self.surrogate,
            slope=self.slope[...],
            margin=self.margin[...],
            mask=self.mask[...],
            row_normalize=self.row_normalize,
        )

    def arch(self) -> model.Architecture:
        """This module's ``aejax.Architecture`` (pass it as ``arch=`` to ``exact_risk`` and
        ``optimal_decoder``; ``mc_risk`` also takes the module itself as the map ``x ↦ x̂``).

        Examples:
            >>> Autoencoder(8, 4, rngs=nnx.Rngs(0)).arch().activation
            'sign'
        """
        return model.Architecture(**self.model_kw())

    def encode(self, x: Array) -> Array:
        """Hidden code ``σ(B x)`` of inputs ``(..., d)``: ``aejax.encode`` with this module's options."""
        return self.arch().encode(self.to_params(), x)

    def decode(self, s: Array) -> Array:
        """Reconstruction ``A s`` of codes ``(..., n)``: ``aejax.decode`` with this module's options."""
        return self.arch().decode(self.to_params(), s)

    def __call__(self, x: Array) -> Array:
        """Reconstruction ``x̂ = A σ(B x)`` of inputs ``(..., d)``: ``aejax.apply``."""
        return self.arch().apply(self.to_params(), x)


def _check_params(params: model.Params, d: int, n: int) -> None:
    if jnp.shape(params.B) != (n, d):
        raise _validate.InputError(f"params.B must have shape ({n}, {d}) for d={d}, n={n}, got {jnp.shape(params.B)}")
    if jnp.shape(params.A) not in ((), (d, n)):
        raise _validate.InputError(
            f"params.A must have shape ({d}, {n}) or be a scalar (tied decoder), got {jnp.shape(params.A)}"
        )
