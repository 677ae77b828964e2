"""Non-linear decoders of the code s = σ(Bx) (docs/theory.md §4): denoisers and the unrolled VAMP decoder.

A ``NonlinearDecoder`` is the decoder's structure (``kind``, ``prior``, ``layers``, ``width``; static) and
the numbers it needs (sparsity ``p`` and rate; may be traced). Its trainable parameters are the
``head`` of ``aejax.Params``, a pytree trained with the encoder and decoder by ``aejax.make_train``
(``TrainConfig(decoder=...)``), and ``aejax.apply(params, x, decoder=dec)`` dispatches to it.

- ``"denoiser"``: x̂ = f(A s), f a learned odd entrywise function (``DenoiserHead``: a linear term
  plus ``width`` odd pairs of tanh units, i.e. a one-hidden-layer MLP shared by all coordinates).
- ``"posterior_mean"``: x̂ = ``theory.posterior_mean``(g·A s) for the known prior, with a learnable
  input gain g (``PosteriorMeanHead``; g = 1 at init is exactly the theory's denoiser).
- ``"multilayer"``: ``layers`` layers of VAMP on s (``theory.decoder.decode_one``: linear steps
  with B̄ and B̄ᵀ, entrywise sign-channel and prior denoisers, s re-read at every layer) with per-layer
  trainable log-factors on the denoiser's SNR and sparsity and on the z-message precision
  (``UnrolledHead``; zeros at init reproduce ``theory.multilayer_decode``). It does not use ``A``
  (a scalar 0 in ``Params``) and assumes B̄ has orthonormal rows (n ≤ d) or is a unit-norm tight
  frame (n > d), as VAMP's closed-form linear step does; it decodes all n units (no rate mask).

Examples:
    >>> import jax, jax.numpy as jnp
    >>> from aejax.model import init, apply
    >>> dec = NonlinearDecoder("posterior_mean", prior="bg", p=0.2, rate=0.5)
    >>> params = init_params(dec, init(jax.random.key(1), 32, 16, kind="orthogonal"))
    >>> apply(params, jnp.ones((2, 32)), decoder=dec).shape
    (2, 32)
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from aejax import _validate
from aejax.model import Params, decoder_matrix, normalize_rows
from aejax.theory.decoder import decode_one
from aejax.theory.denoiser import effective_channel, posterior_mean
from aejax.theory.priors import Prior, resolve_prior

Array = jax.Array
DECODERS = ("linear", "denoiser", "posterior_mean", "multilayer")


class DenoiserHead(NamedTuple):
    """Learned odd denoiser f(y) = gain·y + Σ_k coef_k [tanh(slope_k (y − shift_k)) + tanh(slope_k (y + shift_k))].

    Examples:
        >>> denoise(DenoiserHead(jnp.asarray(2.0), jnp.zeros(1), jnp.ones(1), jnp.zeros(1)), jnp.asarray(0.5))
        Array(1., dtype=float32)
    """

    gain: Array
    coef: Array
    slope: Array
    shift: Array


class PosteriorMeanHead(NamedTuple):
    """Log of the gain applied to the linear output before the posterior-mean denoiser (0: theory)."""

    log_gain: Array


class UnrolledHead(NamedTuple):
    """Per-layer ``(layers,)`` log-factors of the unrolled VAMP decoder (zeros: Bayes-optimal VAMP)."""

    log_snr: Array
    log_p: Array
    log_precision: Array


def denoise(head: DenoiserHead, y: Array) -> Array:
    """Apply the learned entrywise denoiser to ``y`` (any shape).

    Examples:
        >>> head = init_denoiser(4)
        >>> bool(jnp.allclose(denoise(head, jnp.array([-1.0, 2.0])), jnp.array([-1.0, 2.0])))
        True
    """
    u = y[..., None]
    pairs = jnp.tanh(head.slope * (u - head.shift)) + jnp.tanh(head.slope * (u + head.shift))
    return head.gain * y + pairs @ head.coef


def init_denoiser(width: int) -> DenoiserHead:
    """The identity denoiser f(y) = y, with ``width`` tanh pairs of slope 2 and shifts spread over [0, 3].

    Examples:
        >>> init_denoiser(3).shift
        Array([0. , 1.5, 3. ], dtype=float32)
    """
    width = _validate.positive_int("width", width)
    return DenoiserHead(jnp.ones(()), jnp.zeros(width), jnp.full(width, 2.0), jnp.linspace(0.0, 3.0, width))


def shallow_scale(rate: Any) -> Array:
    """Scale c(r) of the optimal linear decoder ``A = c B̄ᵀ`` of a rotation (tight frame for r > 1).

    c = sqrt(2/π) for r ≤ 1 and sqrt(π/2)/(r + π/2 − 1) for r > 1, i.e. sqrt(π/2) μ(r)/r with μ the
    channel gain of ``theory.effective_channel``.

    Examples:
        >>> round(float(shallow_scale(0.5)), 4), round(float(shallow_scale(2.0)), 4)
        (0.7979, 0.4875)
    """
    return jnp.sqrt(jnp.pi / 2) * effective_channel(rate)[0] / rate


@dataclasses.dataclass(frozen=True)
class NonlinearDecoder:
    """A non-linear decoder: structure (static) and the numbers it reads (``p``, ``rate``; leaves).

    Args:
        kind: ``"denoiser"``, ``"posterior_mean"`` or ``"multilayer"``.
        prior: ``"bg"``, ``"sr"`` or an ``aejax.theory.Prior`` (posterior mean and multilayer).
        layers: number of VAMP layers (multilayer).
        width: number of tanh pairs of the learned denoiser.
        p: sparsity of the prior, in (0, 1].
        rate: rate n/d of the code (sets the posterior mean's channel and the initial ``A``).

    Examples:
        >>> NonlinearDecoder("multilayer", layers=3).init_head().log_snr.shape
        (3,)
    """

    kind: str
    prior: str | Prior = "bg"
    layers: int = 1
    width: int = 8
    p: Any = 1.0
    rate: Any = 1.0

    def __post_init__(self):
        _validate.choice("kind", self.kind, DECODERS[1:])
        resolve_prior(self.prior)
        _validate.positive_int("layers", self.layers)
        _validate.positive_int("width", self.width)
        _validate.probability("p", self.p)
        _validate.positive_number("rate", self.rate)

    def init_head(self) -> DenoiserHead | PosteriorMeanHead | UnrolledHead:
        """Initial head: the identity denoiser, gain 1, or the Bayes-optimal VAMP."""
        if self.kind == "denoiser":
            return init_denoiser(self.width)
        if self.kind == "posterior_mean":
            return PosteriorMeanHead(jnp.zeros(()))
        zeros = jnp.zeros(self.layers)
        return UnrolledHead(zeros, zeros, zeros)

    def decode(self, params: Params, s: Array, *, row_normalize: bool = False) -> Array:
        """Reconstruction from codes ``s`` of shape ``(..., n)`` (the last layer for multilayer)."""
        if self.kind == "multilayer":
            return self.decode_layers(params, s)[..., -1, :]
        y = s @ decoder_matrix(params, row_normalize).T
        head = params.head
        if self.kind == "denoiser":
            _check_head(head, DenoiserHead)
            return denoise(head, y)
        _check_head(head, PosteriorMeanHead)
        return posterior_mean(self.prior, self.p, self.rate, y * jnp.exp(head.log_gain))

    def decode_layers(self, params: Params, s: Array) -> Array:
        """Multilayer only: the estimates after every layer, shape ``(..., layers, d)``."""
        if self.kind != "multilayer":
            raise _validate.InputError(f"decode_layers needs kind 'multilayer', got {self.kind!r}")
        head = params.head
        _check_head(head, UnrolledHead)
        Bn = normalize_rows(params.B)
        tweaks = jnp.stack([head.log_snr, head.log_p, head.log_precision], axis=-1)
        prior = resolve_prior(self.prior)
        flat = s.reshape(-1, s.shape[-1])
        out = jax.vmap(lambda si: decode_one(prior, self.p, Bn, si, tweaks))(flat)
        return out.reshape(*s.shape[:-1], *out.shape[1:])


jax.tree_util.register_dataclass(
    NonlinearDecoder, data_fields=["p", "rate"], meta_fields=["kind", "prior", "layers", "width"]
)


def _check_head(head: Any, kind: type) -> None:
    if not isinstance(head, kind):
        raise _validate.InputError(
            f"params.head must be a {kind.__name__} for this decoder, got {type(head).__name__}; "
            "build it with aejax.decoders.init_params"
        )


def init_params(decoder: NonlinearDecoder, params: Params) -> Params:
    """Attach the decoder's initial head, and set ``A`` to its starting value (deterministic).

    ``A = c(rate) B̄ᵀ`` (``shallow_scale``) for the denoisers, so that their entrywise map sees the
    shallow decoder's effective channel from the first step; a scalar 0 (unused) for multilayer.

    Args:
        decoder: the ``NonlinearDecoder``.
        params: ``Params`` with the encoder ``B`` (its ``A`` is replaced; the code only sees B̄).

    Returns:
        ``Params(A, B, head)``.

    Examples:
        >>> from aejax.model import init
        >>> p = init_params(NonlinearDecoder("denoiser"), init(jax.random.key(1), 8, 8))
        >>> p.A.shape, p.head.coef.shape
        ((8, 8), (8,))
    """
    head = decoder.init_head()
    if decoder.kind == "multilayer":
        return Params(jnp.zeros(()), params.B, head)
    return Params(shallow_scale(decoder.rate) * normalize_rows(params.B).T, params.B, head)
