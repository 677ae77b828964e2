"""Activations: sign with surrogate gradients, HeLU, relu, tanh, linear, and a registry by name.

``sign`` is exactly +-1 forward (``sign(0) = +1``, also for ``-0.0``) and differentiates through a
surrogate derivative ``g(u; k)`` chosen by name (docs/theory.md §5). Every surrogate except the identity
STE has area 2, the size of the jump of sign. The slope ``k`` and the hysteresis margin are array
arguments: they may be traced, vmapped or broadcast per hidden unit, never cause a retrace, and
receive zero gradient.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> sign(jnp.array([-0.5, 0.0, 2.0]))
    Array([-1.,  1.,  1.], dtype=float32)
    >>> float(jax.grad(lambda u: sign(u, slope=2.0, surrogate="tanh"))(0.0))
    2.0
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from aejax import _validate
from aejax.identity import unwrap

Array = jax.Array

# Surrogate derivatives g(u; k) of sign, each integrating to 2 over the real line (except "ste").
SURROGATES: dict[str, Callable[[Array, Array], Array]] = {
    "ste": lambda u, k: jnp.ones_like(u),
    "clip": lambda u, k: jnp.where(jnp.abs(k * u) <= 1, k, jnp.zeros_like(u)),
    "tanh": lambda u, k: k / jnp.cosh(jnp.clip(k * u, -40, 40)) ** 2,
    "fast_sigmoid": lambda u, k: k / (1 + k * jnp.abs(u)) ** 2,
    "atan": lambda u, k: k / (1 + (jnp.pi / 2 * k * u) ** 2),
    "gauss": lambda u, k: 2 * k / jnp.sqrt(jnp.pi) * jnp.exp(-((k * u) ** 2)),
    "approx_sign": lambda u, k: 2 * k * jnp.maximum(0, 1 - k * jnp.abs(u)),
}


Surrogate = Callable[[Array, Array], Array]
"""A surrogate derivative ``g(u, k)`` of sign: pre-activations ``u``, slope ``k`` (an array, traced)."""


def check_surrogate(surrogate: Any) -> Any:
    """Check that ``surrogate`` names a built-in (``SURROGATES``) or is a callable ``g(u, k)``.

    Your own surrogate is passed as the callable itself, wherever a name is accepted
    (``sign``, ``get_activation``, ``Architecture``, ``TrainConfig``); nothing is registered in
    module state. For a sweep that must resume in a new process, give a lambda a name:
    ``aejax.named(lambda u, k: ..., "my-surrogate")``.

    Examples:
        >>> check_surrogate("tanh")
        'tanh'
    """
    if callable(surrogate):
        return surrogate
    return _validate.choice("surrogate", surrogate, SURROGATES)


@functools.cache
def _sign_with(surrogate: str | Surrogate) -> Callable[[Array, Array, Array], Array]:
    derivative = surrogate if callable(surrogate) else SURROGATES[surrogate]

    @jax.custom_jvp
    def sign_fn(x, slope, margin):
        return jnp.where(x >= 0, 1, -1).astype(x.dtype)

    @sign_fn.defjvp
    def sign_jvp(primals, tangents):
        x, slope, margin = primals
        x_dot = tangents[0]
        g = derivative(x + margin, slope).astype(x.dtype)
        return sign_fn(x, slope, margin), g * x_dot

    return sign_fn


def sign(
    x: Array, slope: Array | float = 1.0, surrogate: str | Surrogate = "clip", margin: Array | float = 0.0
) -> Array:
    """Exact sign forward (+1 at 0), surrogate derivative backward.

    Args:
        x: pre-activations, any shape and float dtype.
        slope: surrogate slope k; broadcasts against ``x`` (e.g. one per hidden unit). Traced.
        surrogate: one of ``SURROGATES`` (ste, clip, tanh, fast_sigmoid, atan, gauss, approx_sign),
            or your own derivative as a callable ``g(u, k)`` (``check_surrogate``).
        margin: hysteresis window: the surrogate is centred at ``-margin`` instead of 0, as HeLU
            moves the backward threshold of relu (0 gives the plain surrogate). Traced.

    Returns:
        ``+1`` where ``x >= 0`` and ``-1`` elsewhere, in the dtype of ``x``.

    Examples:
        >>> float(jax.grad(lambda u: sign(u, surrogate="clip", margin=0.5))(-1.2))
        1.0
        >>> triangle = lambda u, k: k * jnp.maximum(0.0, 2.0 - k * jnp.abs(u)) / 2.0  # area 2
        >>> float(jax.grad(lambda u: sign(u, slope=1.0, surrogate=triangle))(0.5))
        0.75
    """
    surrogate = check_surrogate(surrogate)
    x = jnp.asarray(x)
    slope = jnp.asarray(slope, dtype=x.dtype)
    margin = jnp.asarray(margin, dtype=x.dtype)
    return _sign_with(surrogate)(x, slope, margin)


@jax.custom_jvp
def _helu(x, margin):
    return jnp.maximum(x, jnp.zeros_like(x))


@_helu.defjvp
def _helu_jvp(primals, tangents):
    x, margin = primals
    return _helu(x, margin), jnp.where(x > -margin, tangents[0], jnp.zeros_like(x))


def helu(x: Array, margin: Array | float = 0.05) -> Array:
    """Hysteresis ReLU: relu forward, derivative ``1{x > -margin}`` backward.

    Args:
        x: pre-activations.
        margin: the backward threshold sits at ``-margin`` (HeLU paper: 0.001 images, 0.05 text).

    Returns:
        ``max(x, 0)``.

    Examples:
        >>> float(jax.grad(helu)(-0.01))
        1.0
    """
    x = jnp.asarray(x)
    return _helu(x, jnp.asarray(margin, dtype=x.dtype))


def relu(x: Array) -> Array:
    """``max(x, 0)``. Example: ``relu(jnp.array([-1., 2.]))`` -> ``[0., 2.]``."""
    return jax.nn.relu(x)


def tanh(x: Array) -> Array:
    """Hyperbolic tangent. Example: ``tanh(jnp.array(0.))`` -> ``0.``."""
    return jnp.tanh(x)


def linear(x: Array) -> Array:
    """Identity. Example: ``linear(jnp.array(3.))`` -> ``3.``."""
    return x


ActivationFn = Callable[..., Array]
"""Uniform signature used by the model: ``act(u, slope=..., margin=...)``."""

ACTIVATIONS = ("sign", "helu", "relu", "tanh", "linear")


def get_activation(name: str | ActivationFn, surrogate: str | Surrogate = "clip") -> ActivationFn:
    """Look up an activation by name and return it with the uniform signature ``act(u, slope, margin)``.

    Args:
        name: one of ``ACTIVATIONS`` or a callable: ``f(u)``, or ``f(u, slope=..., margin=...)`` if
            it takes keyword arguments ``slope`` and/or ``margin`` (then it receives the run's traced
            swept values, as ``sign`` does).
        surrogate: surrogate derivative for ``"sign"``: a name or a callable ``g(u, k)``.

    Returns:
        A function ``act(u, slope=1.0, margin=0.0)``.

    Examples:
        >>> act = get_activation("sign", surrogate="tanh")
        >>> act(jnp.array([-2.0, 3.0]), slope=4.0)
        Array([-1.,  1.], dtype=float32)
        >>> soft = get_activation(lambda u, slope: jnp.tanh(slope * u))
        >>> soft(jnp.array([0.5]), slope=2.0)
        Array([0.7615942], dtype=float32)
    """
    if callable(name):
        return _uniform(name)
    _validate.choice("activation", name, ACTIVATIONS)
    surrogate = check_surrogate(surrogate)
    if name == "sign":
        return lambda u, slope=1.0, margin=0.0: sign(u, slope, surrogate, margin)
    if name == "helu":
        return lambda u, slope=1.0, margin=0.05: helu(u, margin)
    plain = {"relu": relu, "tanh": tanh, "linear": linear}[name]
    return lambda u, slope=1.0, margin=0.0: plain(u)


def check_activation(activation: Any) -> Any:
    """Check that ``activation`` names a built-in (``ACTIVATIONS``) or is a callable.

    Examples:
        >>> check_activation("relu")
        'relu'
    """
    if callable(activation):
        return activation
    return _validate.choice("activation", activation, ACTIVATIONS)


def _uniform(fn: Callable[..., Array]) -> ActivationFn:
    """``fn`` with the signature ``act(u, slope, margin)``, passing on the keywords it accepts."""
    wanted = _keywords(unwrap(fn))  # a Named activation: the signature of the function it names

    def act(u, slope=1.0, margin=0.0):
        given = {"slope": slope, "margin": margin}
        return fn(u, **{k: v for k, v in given.items() if k in wanted})

    return act


def _keywords(fn: Callable[..., Array]) -> frozenset[str]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins and ufuncs without a signature
        return frozenset()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return frozenset(("slope", "margin"))
    return frozenset(p.name for p in parameters if p.name in ("slope", "margin"))
