"""Stable identities of users' own objects, for sweep fingerprints that survive a new process.

A sweep's fingerprint (``aejax.sweeping.config_description``) must come out the same when the same
sweep is started again in another process, or ``out=`` refuses the directory as a different sweep.
A built-in name is stable; a user's object is described by, in order:

1. a name the user gave it: ``aejax.named(obj, "my-adam-b1=0.8")`` (an optax transformation, a
   callable activation or surrogate, any object);
2. a ``Source``: its type (module and qualified name), its static fields and a SHA-1 of its arrays;
3. a plain function defined at the top level of a module (``jax.nn.gelu``, ``mypkg.acts.swish``):
   ``"module:qualname"``;
4. a dataclass of such values (``aejax.theory.Prior``): its type and fields, described in turn.

Anything else (a lambda, a closure, an optax transformation, whose functions are closures) has no
stable identity, and ``describe`` raises an ``InputError`` that says to wrap it with ``named``.

Examples:
    >>> import jax, optax
    >>> describe("optimizer", named(optax.adam(1.0), "adam"))
    {'name': 'adam'}
    >>> describe("activation", jax.nn.gelu)
    {'function': 'jax._src.nn.functions:gelu'}
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
from typing import Any

import numpy as np

from aejax import _validate

__all__ = ["Named", "describe", "named", "unwrap"]


@dataclasses.dataclass(frozen=True)
class Named:
    """An object with a user-given name that identifies it across processes (see ``named``).

    Calling it calls the wrapped object, so a named activation or surrogate is used as is.
    Equality and hashing compare the wrapped object *and* the name, so two different objects given
    the same name never share a compiled program within a process; across processes the name alone
    identifies it (the promise the user makes by naming it).

    Examples:
        >>> import jax.numpy as jnp
        >>> act = named(jnp.tanh, "tanh")
        >>> float(act(0.0)), act.name
        (0.0, 'tanh')
    """

    value: Any
    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.value(*args, **kwargs)


def named(obj: Any, name: str) -> Named:
    """Give ``obj`` a stable name for sweep fingerprints (and for your logs).

    Use it for an optax transformation (``TrainConfig(optimizer=named(tx, "adam-b1=0.8"))``) or a
    callable activation or surrogate that is a lambda or closure. The name must change whenever the
    object's behaviour does: a sweep rerun with the same name reuses the finished runs in ``out``.

    Args:
        obj: the object (already ``Named`` objects are renamed).
        name: a non-empty string.

    Returns:
        A ``Named`` wrapper; aejax unwraps it where the object is used.

    Examples:
        >>> import optax
        >>> named(optax.sgd(1.0), "sgd").name
        'sgd'
    """
    if not isinstance(name, str) or not name.strip():
        raise _validate.InputTypeError(f"name must be a non-empty string, got {name!r}")
    return Named(unwrap(obj), name)


def unwrap(obj: Any) -> Any:
    """The object inside a ``Named`` (or ``obj`` itself).

    Examples:
        >>> unwrap(named(len, "len")) is len
        True
    """
    return obj.value if isinstance(obj, Named) else obj


def describe(field: str, obj: Any, strict: bool = True) -> Any:
    """A JSON-able description of ``obj`` that is the same in every process (see the module docstring).

    Args:
        field: the config field it belongs to (named in the error).
        obj: a built-in value, a ``Named`` object, a ``Source``, or a top-level function.
        strict: refuse objects without a stable identity; ``False`` describes them by their
            ``repr`` instead (for a description that never leaves the process).

    Returns:
        The value itself for ``str``, ``int``, ``float``, ``bool`` and ``None``, else a dict.

    Raises:
        InputError: ``obj`` has no stable identity; the message says to pass ``aejax.named(obj, ...)``.

    Examples:
        >>> describe("surrogate", "clip")
        'clip'
    """
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Named):
        return {"name": obj.name}
    if isinstance(obj, (tuple, list)):
        return [describe(field, v, strict) for v in obj]
    content = getattr(obj, "content_description", None)
    if callable(content):  # Source objects (aejax.sources.Source.content_description)
        return content()
    function = _importable_name(obj)
    if function is not None:
        return {"function": function}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        cls = type(obj)
        fields = {f.name: describe(f"{field}.{f.name}", getattr(obj, f.name), strict) for f in dataclasses.fields(obj)}
        return {"type": f"{cls.__module__}:{cls.__qualname__}", **fields}
    if not strict:
        return {"repr": repr(obj)}
    raise _validate.InputError(
        f"{field}={_short_repr(obj)} has no identity that is stable across processes, so a sweep with "
        f"it could never be resumed; give it a name: {field}=aejax.named(obj, 'a-name-that-changes-"
        "when-it-does') (or use a function defined at the top level of a module)"
    )


def _importable_name(obj: Any) -> str | None:
    """``module:qualname`` of a function that importing that name gives back (no lambda or closure)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    if getattr(obj, "__closure__", None):
        return None
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qualname}" if found is obj else None


def _short_repr(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def array_digest(arrays: list[Any]) -> str:
    """First 16 hex digits of the SHA-1 over arrays' dtypes, shapes and bytes.

    Examples:
        >>> array_digest([np.zeros(2)]) == array_digest([np.zeros(2)]) != array_digest([np.zeros(3)])
        True
    """
    digest = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]
