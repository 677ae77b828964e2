"""Eager argument checks for the public boundary.

Every check raises ``ValueError`` or ``TypeError`` whose message names the argument, the bad value
and what is allowed. Checks only look at concrete values: a traced value (inside jit/vmap) is let
through, so the same functions stay usable inside compiled code.

Example:
    >>> positive_int("d", 64)
    64
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np


def is_concrete(value: Any) -> bool:
    """True when ``value`` holds no tracer, so it can be inspected eagerly."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


def positive_int(name: str, value: Any) -> int:
    """Check that ``value`` is an integer >= 1 and return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer, got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}")
    return int(value)


def positive_number(name: str, value: Any, *, allow_zero: bool = False) -> Any:
    """Check that every entry of ``value`` is finite and > 0 (or >= 0 with ``allow_zero``)."""
    if not is_concrete(value):
        return value
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    bound = "non-negative" if allow_zero else "positive"
    bad = ~np.isfinite(arr) | ((arr < 0) if allow_zero else (arr <= 0))
    if bad.any():
        raise ValueError(f"{name} must be finite and {bound}, got {_show(arr[bad])}")
    return value


def probability(name: str, value: Any) -> Any:
    """Check that every entry of ``value`` lies in (0, 1]."""
    if not is_concrete(value):
        return value
    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr) | (arr <= 0) | (arr > 1)
    if bad.any():
        raise ValueError(f"{name} must lie in (0, 1], got {_show(arr[bad])}")
    return value


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Check that ``value`` is one of the names in ``allowed``."""
    allowed = sorted(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    return value


def finite_array(name: str, value: Any) -> Any:
    """Check that a concrete array has only finite entries."""
    if is_concrete(value) and not np.all(np.isfinite(np.asarray(value))):
        raise ValueError(f"{name} must contain only finite values; it has NaN or inf entries")
    return value


def _show(bad: np.ndarray) -> str:
    values = [v if math.isnan(v) or math.isinf(v) else float(f"{v:.6g}") for v in bad.ravel()[:3].tolist()]
    return ", ".join(map(str, values)) + (" ..." if bad.size > 3 else "")
