"""Sparse source priors and the posterior of one coordinate seen through Gaussian noise.

A coordinate of a sparse source is ``x = β ξ / sqrt(p)`` with ``β ~ Bernoulli(p)`` and ``ξ`` the
*non-zero law*: a symmetric Gaussian mixture ``Σ_k w_k N(m_k, s_k²)`` with ``E ξ² = 1``, so that
``E x² = 1``. Mixtures cover the two built-in priors exactly — ``"bg"`` (Bernoulli–Gaussian,
ξ ~ N(0, 1)) and ``"sr"`` (sparse Rademacher, ξ = ±1) — and any symmetric discrete law (s_k = 0), and
they keep the posterior mean in closed form. Symmetry is required because the identity-encoder
formulas (docs/theory.md §4) assume E[sign(x) | x ≠ 0] = 0.

Examples:
    >>> laplace_like = Prior.mixture(means=(-1.0, 1.0), stds=(0.5, 0.5), weights=(0.5, 0.5))
    >>> round(sum(w * (m * m + s * s) for m, s, w in zip(*laplace_like.components())), 12)
    1.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from aejax import _validate
from aejax.theory._quad import NORMAL_NODES, NORMAL_WEIGHTS, as_float, check_sparsity

_TOL = 1e-9


@dataclasses.dataclass(frozen=True)
class Prior:
    """Non-zero law of a sparse source: a symmetric Gaussian mixture with unit second moment.

    Hashable, so it can be a static argument of ``jax.jit``. Build custom laws with
    ``Prior.mixture`` or ``Prior.discrete`` (which normalise); the constructor checks.

    Attributes:
        name: label used in tables.
        means, stds, weights: the mixture components ``Σ_k w_k N(m_k, s_k²)``.

    Examples:
        >>> Prior("sr", means=(-1.0, 1.0), stds=(0.0, 0.0), weights=(0.5, 0.5)).name
        'sr'
    """

    name: str
    means: tuple[float, ...]
    stds: tuple[float, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        for field in ("means", "stds", "weights"):
            object.__setattr__(self, field, tuple(float(v) for v in getattr(self, field)))
        k = len(self.weights)
        if k == 0 or len(self.means) != k or len(self.stds) != k:
            raise _validate.InputError(
                f"means, stds and weights must have the same non-zero length, got "
                f"{len(self.means)}, {len(self.stds)}, {k}"
            )
        if not all(math.isfinite(v) for v in self.means + self.stds + self.weights):
            raise _validate.InputError(f"prior {self.name!r}: means, stds and weights must be finite")
        if min(self.weights) <= 0 or abs(sum(self.weights) - 1) > _TOL:
            raise _validate.InputError(
                f"prior {self.name!r}: weights must be positive and sum to 1, got {self.weights}"
            )
        if min(self.stds) < 0:
            raise _validate.InputError(f"prior {self.name!r}: stds must be >= 0, got {self.stds}")
        second = sum(w * (m * m + s * s) for m, s, w in zip(*self.components(), strict=True))
        if abs(second - 1) > _TOL:
            raise _validate.InputError(
                f"prior {self.name!r}: the non-zero law must have E ξ² = 1, got {second:.6g}; "
                "use Prior.mixture(...) to normalise"
            )
        own = sorted(zip(self.means, self.stds, self.weights, strict=True))
        mirrored = sorted(zip((-m for m in self.means), self.stds, self.weights, strict=True))
        if any(max(abs(a - b) for a, b in zip(u, v, strict=True)) > _TOL for u, v in zip(own, mirrored, strict=True)):
            raise _validate.InputError(f"prior {self.name!r}: the non-zero law must be symmetric about 0")

    def components(self) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """``(means, stds, weights)`` of the non-zero law ξ."""
        return self.means, self.stds, self.weights

    @classmethod
    def mixture(
        cls, means: Sequence[float], stds: Sequence[float], weights: Sequence[float], name: str = "custom"
    ) -> Prior:
        """Symmetric Gaussian mixture, with weights normalised to 1 and rescaled to E ξ² = 1.

        Examples:
            >>> Prior.mixture((0.0,), (3.0,), (2.0,)) == Prior("custom", (0.0,), (1.0,), (1.0,))
            True
        """
        total = float(sum(weights))
        w = [float(v) / total for v in weights]
        # unequal lengths are refused below by __post_init__ with an InputError naming them
        scale = math.sqrt(sum(wk * (m * m + s * s) for m, s, wk in zip(means, stds, w, strict=False)))
        if not scale > 0:
            raise _validate.InputError(f"prior {name!r}: the non-zero law is identically 0")
        return cls(name, tuple(m / scale for m in means), tuple(s / scale for s in stds), tuple(w))

    @classmethod
    def discrete(cls, values: Sequence[float], probs: Sequence[float], name: str = "custom") -> Prior:
        """Symmetric discrete non-zero law (normalised like ``mixture``).

        Examples:
            >>> Prior.discrete((-2.0, 2.0), (1.0, 1.0)).means
            (-1.0, 1.0)
        """
        return cls.mixture(values, [0.0] * len(values), probs, name)


BG = Prior("bg", means=(0.0,), stds=(1.0,), weights=(1.0,))
"""Bernoulli–Gaussian: ξ ~ N(0, 1)."""
SR = Prior("sr", means=(-1.0, 1.0), stds=(0.0, 0.0), weights=(0.5, 0.5))
"""Sparse Rademacher: ξ = ±1."""
PRIORS = {"bg": BG, "sr": SR}


def resolve_prior(prior: str | Prior) -> Prior:
    """Return the ``Prior`` for a name (``"bg"``, ``"sr"``) or the prior itself.

    Examples:
        >>> resolve_prior("bg").stds
        (1.0,)
    """
    if isinstance(prior, Prior):
        return prior
    if isinstance(prior, str) and prior in PRIORS:
        return PRIORS[prior]
    if not isinstance(prior, str):
        raise _validate.InputTypeError(
            f"prior must be 'bg', 'sr' or an aejax.theory.Prior, got {_validate._brief(prior)}; "
            "aejax.theory functions take (prior, p, r, ...) with the prior first"
        )
    raise _validate.InputError(f"unknown prior {prior!r}; allowed: 'bg', 'sr' or an aejax.theory.Prior")


def _scalar_mixture(prior: Prior, p: jax.Array) -> tuple[list, list, list]:
    """Components of the law of x (zero atom first): weights, means, variances."""
    means, stds, weights = prior.components()
    w = [1 - p] + [p * wk for wk in weights]
    m = [jnp.zeros_like(p)] + [mk / jnp.sqrt(p) for mk in means]
    v = [jnp.zeros_like(p)] + [sk * sk / p for sk in stds]
    return w, m, v


def _log_weight(w: jax.Array) -> jax.Array:
    """log w, with log 0 = −inf and a zero gradient there (not 0·∞ = NaN): at p = 1 the zero atom has
    no weight and must not turn the gradients of the posterior NaN (the multilayer decoder trains a
    factor on p, clipped at 1)."""
    positive = w > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, w, 1.0)), -jnp.inf)


def posterior(prior: str | Prior, p: Any, snr: Any, y: Any) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and variance of x given ``y = x + N(0, 1/snr)``, x from the sparse prior.

    Jittable and broadcasting over ``y``, ``p`` and ``snr``. Each mixture component is conjugate, so
    both moments are exact: a softmax over components of their Gaussian evidences.

    Args:
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        p: sparsity P(x ≠ 0), in (0, 1].
        snr: precision of the observation noise, > 0 (the channel's parameter, in the place of r).
        y: observations.

    Returns:
        ``(mean, variance)``, broadcast shape of the inputs.

    Examples:
        >>> mean, var = posterior("sr", 0.5, 10.0, 0.0)
        >>> float(mean)
        0.0
    """
    prior = resolve_prior(prior)
    check_sparsity("p", p)
    y, p, snr = (as_float(a) for a in (y, p, snr))
    noise = 1 / snr
    w, m, v = _scalar_mixture(prior, p)
    logits, cond_mean, cond_var = [], [], []
    for wk, mk, vk in zip(w, m, v, strict=True):
        total = vk + noise
        logits.append(_log_weight(wk) - 0.5 * jnp.log(total) - 0.5 * (y - mk) ** 2 / total)
        cond_mean.append(mk + vk / total * (y - mk))
        cond_var.append(vk * noise / total)
    shape = jnp.broadcast_shapes(y.shape, p.shape, snr.shape)
    resp, cond_mean, cond_var = (
        jnp.stack([jnp.broadcast_to(a, shape) for a in arrays]) for arrays in (logits, cond_mean, cond_var)
    )
    resp = jax.nn.softmax(resp, axis=0)
    mean = jnp.sum(resp * cond_mean, axis=0)
    var = jnp.sum(resp * (cond_var + (cond_mean - mean) ** 2), axis=0)
    return mean, var


def mmse(prior: str | Prior, p: Any, snr: Any) -> jax.Array:
    """Minimum mean squared error of x from ``y = x + N(0, 1/snr)``: ``E Var(x | y)``, by quadrature.

    The expectation is split over the mixture components of x; on each, y is Gaussian and the
    posterior variance is integrated with a fine trapezoid rule (see ``_quad``).

    Args:
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        p: sparsity in (0, 1] (validated when concrete).
        snr: observation precision, > 0 (validated when concrete).

    Returns:
        The mmse, broadcast shape of ``p`` and ``snr``; in [0, 1].

    Examples:
        >>> round(float(mmse("bg", 1.0, 3.0)), 6)  # Gaussian: 1 / (1 + snr)
        0.25
    """
    prior = resolve_prior(prior)
    check_sparsity("p", p)
    _validate.positive_number("snr", snr)
    p, snr = jnp.broadcast_arrays(as_float(p), as_float(snr))
    t = as_float(NORMAL_NODES)
    q = as_float(NORMAL_WEIGHTS)
    w, m, v = _scalar_mixture(prior, p)
    total = jnp.zeros_like(p)
    for wk, mk, vk in zip(w, m, v, strict=True):
        y = mk[..., None] + jnp.sqrt(vk + 1 / snr)[..., None] * t
        _, var = posterior(prior, p[..., None], snr[..., None], y)
        total = total + wk * jnp.sum(q * var, axis=-1)
    return total
