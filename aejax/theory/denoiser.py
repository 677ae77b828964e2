"""Shallow decoder + entrywise posterior-mean denoiser (docs/theory.md §4).

On a rotation encoder (tight frame for r > 1) with its optimal linear decoder, each output
coordinate behaves as the scalar channel ``y = μ x + sqrt(μ(1 − μ)) z``, z ~ N(0, 1), with
``μ = 1 − R_Gauss(r)`` and SNR ``γ = μ/(1 − μ)``. Equivalently ``y/μ = x + N(0, 1/γ)``, so the best
entrywise map is the posterior mean of that channel and its risk is ``mmse(γ)``.

Examples:
    >>> mu, snr = effective_channel(1.0)
    >>> round(float(mu), 4), round(float(snr), 4)
    (0.6366, 1.7519)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from aejax.theory._quad import check_sparsity
from aejax.theory.gaussian import gaussian_limit
from aejax.theory.priors import Prior, mmse, posterior, resolve_prior


def effective_channel(r: Any) -> tuple[jax.Array, jax.Array]:
    """Gain μ and SNR γ of the shallow decoder's output channel, for r ≤ 1 and r > 1.

    Args:
        r: rate > 0 (array-like; validated when concrete).

    Returns:
        ``(μ, γ)`` with μ = 1 − R_Gauss(r) and γ = μ/(1 − μ), shaped like ``r``.

    Examples:
        >>> mu, snr = effective_channel(0.5)
        >>> round(float(mu), 4)
        0.3183
    """
    mu = 1 - gaussian_limit(r, "sign")
    return mu, mu / (1 - mu)


def posterior_mean(prior: str | Prior, p: Any, r: Any, y: Any) -> jax.Array:
    """The denoiser f(y) = E[x | μ x + sqrt(μ(1 − μ)) z = y] for the channel of rate r. Jittable.

    Apply it entrywise to the shallow decoder's output ``A sign(Bx)``.

    Args:
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        p: sparsity in (0, 1] (broadcasts with ``y``).
        r: rate > 0 (broadcasts with ``y``).
        y: shallow-decoder outputs (any shape).

    Returns:
        The denoised values, broadcast shape.

    Examples:
        >>> round(float(posterior_mean("bg", 1.0, 1.0, 0.5)), 4)  # Gaussian prior: f(y) = y
        0.5
    """
    prior = resolve_prior(prior)
    check_sparsity("p", p)
    mu, snr = effective_channel(r)
    return posterior(prior, p, snr, jnp.asarray(y) / mu)[0]


def denoiser_risk(prior: str | Prior, p: Any, r: Any) -> jax.Array:
    """Risk of the shallow decoder followed by ``posterior_mean``: ``mmse(γ(r))``, by quadrature.

    Below ``rotation_risk(r)`` for every p < 1; equal to it at p = 1 for "bg" (Gaussian data).

    Args:
        prior: ``"bg"``, ``"sr"`` or a ``Prior``.
        p: sparsity in (0, 1].
        r: rate > 0.

    Returns:
        The risk, broadcast shape of ``p`` and ``r``.

    Examples:
        >>> round(float(denoiser_risk("bg", 1.0, 0.5)), 4)
        0.6817
    """
    prior = resolve_prior(prior)
    check_sparsity("p", p)
    return mmse(prior, p, effective_channel(r)[1])
