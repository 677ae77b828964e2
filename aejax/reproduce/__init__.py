"""Reproductions of the papers' experiments, one module each; ``run(name)`` writes a PNG, a netCDF
file and a markdown table and returns their paths with the key numbers.

Targets: ``gaussian-limit``, ``finite-size``, ``features``, ``surrogates``, ``universality``, ``sparse``,
``phase-transition``, ``real-sparse``.
Sizes: ``tiny`` (seconds, for tests), ``small`` (default: minutes on a 2-core CPU), ``large`` (accelerators).

Examples:
    >>> sorted(TARGETS)  # doctest: +NORMALIZE_WHITESPACE
    ['features', 'finite-size', 'gaussian-limit', 'phase-transition', 'real-sparse', 'sparse', 'surrogates',
     'universality']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aejax import _validate
from aejax.reproduce import (
    features,
    finite_size,
    gaussian_limit,
    phase_transition,
    real_sparse,
    sparse,
    surrogates,
    universality,
)
from aejax.reproduce._common import SIZES

TARGETS: dict[str, Callable[..., dict[str, Any]]] = {
    "gaussian-limit": gaussian_limit.run,
    "finite-size": finite_size.run,
    "features": features.run,
    "surrogates": surrogates.run,
    "universality": universality.run,
    "sparse": sparse.run,
    "phase-transition": phase_transition.run,
    "real-sparse": real_sparse.run,
}
DATA_TARGETS = ("universality", "real-sparse")  # the targets that take a user's data file


def run(
    name: str,
    size: str = "small",
    out: str | os.PathLike = "runs/reproduce",
    progress: bool = True,
    data: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run the reproduction ``name`` and write ``<out>/<name>.png``, ``.nc`` and ``.md``.

    Args:
        name: one of ``TARGETS``.
        size: one of ``SIZES`` (``tiny``, ``small``, ``large``).
        out: output directory.
        progress: show progress bars.
        data: a data file for the targets in ``DATA_TARGETS`` (``universality``: samples instead of
            the bundled digits; ``real-sparse``: images instead of the bundled photographs).

    Returns:
        ``{"png": Path, "nc": Path, "md": Path, ...}`` plus the target's key numbers.

    Examples:
        >>> run("no-such-target")  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        aejax.InputError: unknown name 'no-such-target'; allowed: features, finite-size, gaussian-limit,
        phase-transition, real-sparse, sparse, surrogates, universality
    """
    _validate.choice("name", name, TARGETS)
    _validate.choice("size", size, SIZES)
    if data is None:
        return TARGETS[name](size=size, out=out, progress=progress)
    if name not in DATA_TARGETS:
        raise _validate.InputError(f"data applies to the targets {', '.join(DATA_TARGETS)}, got name={name!r}")
    return TARGETS[name](size=size, out=out, progress=progress, data=data)


def main(name: str, argv: list[str] | None = None) -> None:
    """Command-line entry of the ``scripts/<name>.py`` files: parse ``--size`` and ``--out``, run
    ``name`` and print its table and the files it wrote."""
    import argparse

    parser = argparse.ArgumentParser(
        description=f"Reproduce {name!r}: writes <out>/{name}.png, .nc and .md (see docs/gallery.md)."
    )
    parser.add_argument("--size", choices=SIZES, default="small", help="problem size (default small: CPU minutes)")
    parser.add_argument("--out", default="runs/reproduce", help="output directory (default runs/reproduce)")
    args = parser.parse_args(argv)
    result = run(name, size=args.size, out=args.out)
    print(result["md"].read_text())
    print("wrote", result["png"], result["nc"], result["md"])


__all__ = ["DATA_TARGETS", "SIZES", "TARGETS", "main", "run"]
