"""Eager argument checks for the public boundary.

Every check raises ``InputError`` (a ``ValueError``) or ``InputTypeError`` (a ``TypeError``) whose
message names the argument, the bad value and what is allowed. These two classes mark an error the
caller caused: the ``aejax`` command prints them as one line ``aejax: error: ...`` (exit status 2),
while any other exception is a bug and keeps its traceback. Every check of user input in the
package raises one of them. Checks only look at concrete values: a traced value (inside jit/vmap) is let
through, so the same functions stay usable inside compiled code.

Examples:
    >>> positive_int("d", 64)
    64
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

MAX_STEPS = 2**31 - 1  # step indices, sizes and sample counts are int32 inside the compiled program


class InputError(ValueError):
    """A bad value given by the user (argument, flag, config entry or file content).

    Example:
        >>> isinstance(InputError("d must be positive"), ValueError)
        True
    """


class InputTypeError(TypeError):
    """An argument of the wrong type given by the user.

    Example:
        >>> isinstance(InputTypeError("d must be an integer"), TypeError)
        True
    """


InputError.__module__ = InputTypeError.__module__ = "aejax"  # shown as aejax.InputError (re-exported there)


def is_concrete(value: Any) -> bool:
    """True when ``value`` holds no tracer, so it can be inspected eagerly."""
    return not any(isinstance(leaf, Tracer) for leaf in jax.tree_util.tree_leaves(value))


def positive_int(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Check that ``value`` is an integer >= ``minimum`` (default 1), and <= ``maximum`` when given,
    and return it as ``int``.

    Example:
        >>> positive_int("steps", 2**40, maximum=2**31 - 1)
        Traceback (most recent call last):
        ...
        aejax.InputError: steps must be at most 2147483647 (2**31 - 1), got 1099511627776
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(f"{name} must be a positive integer, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        allowed = "a positive integer (>= 1)" if minimum == 1 else f"an integer, at least {minimum}"
        raise InputError(f"{name} must be {allowed}, got {value!r}")
    if maximum is not None and value > maximum:
        shown = " (2**31 - 1)" if maximum == 2**31 - 1 else ""
        raise InputError(f"{name} must be at most {maximum}{shown}, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    """Check that ``value`` is an integer >= 0 and return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(f"{name} must be a non-negative integer, got {value!r} of type {type(value).__name__}")
    if value < 0:
        raise InputError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def boolean(name: str, value: Any) -> bool:
    """Check that ``value`` is ``True`` or ``False`` (a truthy string like ``"no"`` is refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"{name} must be True or False, got {value!r} of type {type(value).__name__}")
    return bool(value)


def path(name: str, value: Any) -> Any:
    """Check that ``value`` is a file-system path (``str`` or ``os.PathLike``)."""
    if not isinstance(value, (str, os.PathLike)):
        raise InputTypeError(
            f"{name} must be a path (str or os.PathLike), got {value!r} of type {type(value).__name__}"
        )
    return value


def prng_key(name: str, value: Any) -> Any:
    """Check that ``value`` is a JAX PRNG key: typed (``jax.random.key``) or raw ``uint32`` (``PRNGKey``)."""
    dtype = getattr(value, "dtype", None)
    typed = dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)
    raw = dtype == np.uint32 and np.ndim(value) >= 1 and np.shape(value)[-1] == 2
    if not (typed or raw):
        raise InputTypeError(f"{name} must be a JAX PRNG key (jax.random.key(seed)), got {_brief(value)}")
    return value


def trailing_size(name: str, value: Any, size: int, meaning: str) -> Any:
    """Check that array ``value`` has at least one axis and its last one has ``size`` entries."""
    shape = np.shape(value)
    if not shape or shape[-1] != size:
        raise InputError(f"{name} must have a last axis of size {size} ({meaning}), got shape {shape}")
    return value


def encoder_shape(name: str, B: Any, d: int | None = None, *, owner: str = "the source") -> None:
    """Check that ``B`` is an ``(n, d)`` matrix (``d`` that of ``owner`` when given)."""
    if np.ndim(B) != 2 or (d is not None and np.shape(B)[1] != d):
        want = f"(n, d) with d={d} ({owner}'s d)" if d is not None else "(n, d)"
        raise InputError(f"{name} must have shape {want}, got {np.shape(B)}")


def params_shape(params: Any, d: int | None = None, *, owner: str = "the source") -> None:
    """Check ``Params(A, B)``: ``B`` is ``(n, d)`` (``d`` that of ``owner`` when given) and ``A`` is
    ``(d, n)`` or a scalar (tied decoder)."""
    B = getattr(params, "B", None)
    if B is None or not hasattr(params, "A"):
        raise InputTypeError(f"params must be aejax.Params(A, B), got {_brief(params)}")
    encoder_shape("params.B", B, d, owner=owner)
    a_shape = np.shape(params.A)
    if a_shape not in ((), np.shape(B)[::-1]):
        raise InputError(
            f"params.A must have shape {np.shape(B)[::-1]} (or be a scalar for a tied decoder), got {a_shape}"
        )


def positive_number(name: str, value: Any, *, allow_zero: bool = False, scalar: bool = False) -> Any:
    """Check that every entry of ``value`` is finite and > 0 (or >= 0 with ``allow_zero``); with
    ``scalar``, that ``value`` is a single number."""
    if not is_concrete(value):
        return value
    arr = _numbers(name, value)
    if scalar and arr.ndim:
        raise InputTypeError(f"{name} must be a single number, got {value!r}")
    bound = "non-negative" if allow_zero else "positive"
    bad = ~np.isfinite(arr) | ((arr < 0) if allow_zero else (arr <= 0))
    if bad.any():
        raise InputError(f"{name} must be finite and {bound}, got {_show(arr[bad])}")
    return value


def probability(name: str, value: Any) -> Any:
    """Check that every entry of ``value`` lies in (0, 1]."""
    if not is_concrete(value):
        return value
    arr = _numbers(name, value)
    bad = ~np.isfinite(arr) | (arr <= 0) | (arr > 1)
    if bad.any():
        raise InputError(f"{name} must lie in (0, 1], got {_show(arr[bad])}")
    return value


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Check that ``value`` is one of the names in ``allowed``."""
    allowed = sorted(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    return value


def finite_array(name: str, value: Any) -> Any:
    """Check that a concrete array has only finite entries."""
    if is_concrete(value) and not np.all(np.isfinite(np.asarray(value))):
        raise InputError(f"{name} must contain only finite values; it has NaN or inf entries")
    return value


def _numbers(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array; ``None``, strings and non-numeric objects are a ``TypeError``."""
    try:
        if value is None or isinstance(value, (str, bytes)):
            raise TypeError
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name} must be a number or an array of numbers, got {value!r}") from None


def summary(value: Any, width: int = 200) -> str:
    """A one-line description of ``value`` that never prints a whole array: arrays as
    ``dtype[shape]``, dataclasses (sources, priors) field by field, anything else by its ``repr``
    cut at ``width`` characters.

    Examples:
        >>> summary(np.zeros((64, 8), np.float32))
        'float32[64, 8]'
        >>> from aejax.sources import Empirical
        >>> summary(Empirical(np.random.default_rng(0).normal(size=(5, 3))))
        'Empirical(data=float32[5, 3], d=3)'
    """
    text = _summary(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _summary(value: Any) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype") and np.ndim(value) > 0:
        return f"{np.dtype(value.dtype).name}[{', '.join(map(str, np.shape(value)))}]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = [f"{f.name}={_summary(getattr(value, f.name, None))}" for f in dataclasses.fields(value) if f.repr]
        return f"{type(value).__name__}({', '.join(parts)})"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"{type(value).__name__} of {len(value)} items"
    return repr(value)


def _brief(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}{'...' if len(text) > 60 else ''} of type {type(value).__name__}"


def _show(bad: np.ndarray) -> str:
    values = [v if math.isnan(v) or math.isinf(v) else float(f"{v:.6g}") for v in bad.ravel()[:3].tolist()]
    return ", ".join(map(str, values)) + (" ..." if bad.size > 3 else "")


def available_host_bytes() -> int:
    """Host memory available to new allocations (``MemAvailable`` of ``/proc/meminfo``, else all RAM)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def host_memory_budget() -> int:
    """The memory budget of host-side (NumPy) work: half the available host memory, as ``aejax sweep``
    gives a CPU device."""
    return available_host_bytes() // 2


def within_memory(name: str, value: int, bytes_each: int, what: str, budget: int | None = None) -> int:
    """Check that ``value`` items of ``bytes_each`` bytes each fit the memory budget (default
    ``host_memory_budget()``), and return ``value``.

    Example:
        >>> within_memory("--bootstrap", 10**12, 24, "resample", budget=2**30)
        Traceback (most recent call last):
        ...
        aejax.InputError: --bootstrap must be at most 44739242 (24 bytes per resample within the memory budget of
        1.00 GiB), got 1000000000000 (22352 GiB)
    """
    own = budget is None
    budget = host_memory_budget() if budget is None else int(budget)
    maximum = budget // max(1, int(bytes_each))
    if value > maximum:
        where = ", half the available host memory" if own else ""
        raise InputError(
            f"{name} must be at most {maximum} ({bytes_each} bytes per {what} within the memory budget of "
            f"{format_bytes(budget)}{where}), got {value} ({format_bytes(value * bytes_each)})"
        )
    return value


def format_bytes(size: float) -> str:
    """A byte count in the largest binary unit that keeps it at least 1 (``format_bytes(1) == '1 B'``).

    Example:
        >>> format_bytes(3 * 2**20), format_bytes(2**40 * 1.5)
        ('3.00 MiB', '1536 GiB')
    """
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value >= 1000 else f"{value:.2f} {unit}"
    return f"{int(size)} B"
