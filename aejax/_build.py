"""What built a sweep's programs: package versions, XLA's code-generation flags and the device kind.

A run's bits hold only under the same build (docs/reproducibility.md): another jax, jaxlib, optax,
NumPy or aejax, other ``XLA_FLAGS`` (an optimization level, jaxlib 0.10's legacy fusion emitters) or
another kind of device may round differently. A sweep writes its build into every chunk file, and a
resumed or assembled sweep names the runs it reused from another build (``reused_builds``) instead
of labelling them with its own.

Examples:
    >>> xla_flags({"XLA_FLAGS": "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=1"})
    '--xla_backend_optimization_level=1'
    >>> differences(describe("cpu", "cpu"), describe("cpu", "cpu"))
    []
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
from collections.abc import Mapping

__all__ = ["BUILD_PACKAGES", "describe", "differences", "package_versions", "versions", "xla_flags"]

BUILD_PACKAGES = ("aejax", "jax", "jaxlib", "optax", "numpy")  # the packages whose code goes into a run's bits
RECORDED_PACKAGES = (*BUILD_PACKAGES, "flax", "xarray")  # also named in a results file's ``versions``
UNRECORDED = "unrecorded"  # the build of a chunk file written before builds were recorded
_DEVICE_COUNT = re.compile(r"--xla_force_host_platform_device_count=\S*")


def xla_flags(environ: Mapping[str, str] | None = None) -> str:
    """``XLA_FLAGS`` without the host device count, which never changes a run's bits (``aejax.programs``)."""
    flags = (os.environ if environ is None else environ).get("XLA_FLAGS", "")
    return " ".join(_DEVICE_COUNT.sub("", flags).split())


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each package in ``names`` (``"missing"`` for one not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def versions() -> dict[str, str]:
    """Python, the recorded packages' versions and ``XLA_FLAGS``: a results file's ``versions`` attribute."""
    packages = package_versions(RECORDED_PACKAGES)
    return {"python": platform.python_version(), **packages, "XLA_FLAGS": xla_flags()}


def describe(platform_name: str, device_kind: str) -> str:
    """This process's build on a device of ``platform_name`` and ``device_kind``, as canonical JSON:
    the packages that go into a run's bits, ``XLA_FLAGS`` and the device."""
    build = package_versions(BUILD_PACKAGES)
    build.update(XLA_FLAGS=xla_flags(), device=f"{platform_name}: {device_kind}")
    return json.dumps(build, sort_keys=True)


def differences(build: str, reference: str) -> list[str]:
    """What differs between two builds (``describe``'s JSON, or ``UNRECORDED``), as ``name: a -> b``."""
    if build == reference:
        return []
    if UNRECORDED in (build, reference):
        return [f"build: {UNRECORDED} (a chunk file written before aejax recorded builds)"]
    a, b = json.loads(build), json.loads(reference)
    changed = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
    return [f"{k}: {a.get(k, 'missing')} -> {b.get(k, 'missing')}" for k in changed]
