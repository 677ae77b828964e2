"""JAX's persistent compilation cache, turned on from Python with one call.

A sweep of a few small programs is compile-bound: compiling each shape bucket's program takes
seconds, running it milliseconds. With the cache on, a second process (a rerun, the next cell of a
notebook after a restart, the next job of an array) loads the compiled programs from disk instead.

It is off by default for library users: it is JAX's process-wide setting, so turning it on at
``import aejax`` would also cache (and write to disk) the user's own programs, in a directory they
did not choose. The ``aejax`` command turns it on for its own process (``aejax.cli``).

Examples:
    >>> import tempfile
    >>> path = enable_compilation_cache(tempfile.mkdtemp(), max_size=2**28)
    >>> path.endswith("tmp") or len(path) > 0
    True
    >>> disable_compilation_cache()
"""

from __future__ import annotations

import contextlib
import os

import jax

from aejax import _validate

__all__ = [
    "DEFAULT_MAX_SIZE",
    "default_cache_dir",
    "disable_compilation_cache",
    "enable_compilation_cache",
    "prune_cache",
]

DEFAULT_MAX_SIZE = 2 * 2**30  # bytes; the oldest entries beyond it are removed when the cache is enabled
MIN_COMPILE_SECONDS = 0.0  # every program: a warm process then compiles nothing, small helpers included


def default_cache_dir() -> str:
    """``$AEJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/aejax/jax``, else ``~/.cache/aejax/jax``.

    Examples:
        >>> default_cache_dir().endswith("jax")  # unless $AEJAX_CACHE_DIR says otherwise
        True
    """
    if os.environ.get("AEJAX_CACHE_DIR"):
        return os.environ["AEJAX_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "aejax", "jax")


def enable_compilation_cache(
    path: str | os.PathLike | None = None,
    max_size: int | None = DEFAULT_MAX_SIZE,
    min_compile_seconds: float = MIN_COMPILE_SECONDS,
) -> str:
    """Keep compiled programs on disk, so a new process compiles nothing it compiled before.

    Call it once, before the first sweep or jit, e.g. at the top of a script or notebook. It sets
    JAX's process-wide persistent cache (``jax_compilation_cache_dir``), which also caches your
    own jitted programs.

    Args:
        path: cache directory (default: ``default_cache_dir()``). Created if missing.
        max_size: bytes the directory may hold (default 2 GiB; ``None``: unbounded). When it holds
            more, the least recently written entries are removed now, before this process adds any.
            (JAX's own eviction is not used: it needs the ``filelock`` package, and it fails on
            entries written without its access-time files, e.g. by another version or process.)
        min_compile_seconds: programs that compile faster than this are not written (default 0:
            every program, so a warm process also skips the sweep's small helper programs; JAX's own
            default is 1 s).

    Returns:
        The cache directory in use.

    Examples:
        >>> import tempfile
        >>> enable_compilation_cache(tempfile.mkdtemp()) != ""
        True
        >>> disable_compilation_cache()
    """
    directory = os.fspath(_validate.path("path", path)) if path is not None else default_cache_dir()
    if max_size is not None:
        _validate.positive_int("max_size", max_size)
    _validate.positive_number("min_compile_seconds", min_compile_seconds, allow_zero=True, scalar=True)
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", directory)
    if max_size is not None:
        prune_cache(directory, int(max_size))
    jax.config.update("jax_compilation_cache_max_size", -1)  # bounded by prune_cache, see max_size
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    _reset_jax_cache()
    return directory


def prune_cache(directory: str | os.PathLike, max_size: int) -> int:
    """Remove the least recently written files of ``directory`` until it holds at most ``max_size``
    bytes; returns how many bytes it holds then. Files that vanish meanwhile (another process pruning
    or writing) are skipped.

    Examples:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for i in range(3):
        ...     _ = (d / f"entry{i}").write_bytes(bytes(100))
        >>> prune_cache(d, 250), len(list(d.iterdir()))
        (200, 2)
    """
    entries = []
    for entry in os.scandir(directory):
        try:
            if entry.is_file() and not entry.name.startswith("."):
                info = entry.stat()
                entries.append((info.st_mtime_ns, info.st_size, entry.path))
        except FileNotFoundError:
            continue
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_size:
            break
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        total -= size
    return total


def disable_compilation_cache() -> None:
    """Stop reading and writing the persistent compilation cache in this process.

    Examples:
        >>> disable_compilation_cache()
    """
    jax.config.update("jax_compilation_cache_dir", None)
    _reset_jax_cache()


def _reset_jax_cache() -> None:
    """JAX opens its cache at the first compilation; make it reopen with the new settings."""
    from jax._src import compilation_cache  # JAX's own reset hook: no public one exists

    compilation_cache.reset_cache()
