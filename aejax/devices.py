"""Devices for sweeps: the ``("runs",)`` mesh, how many devices a sweep uses, how runs are batched
on them, and the per-device memory budget. Only the sweep (and the CLI, which sets up JAX's CPU
devices) use this module.

Examples:
    >>> make_mesh(1).shape["runs"]
    1
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh

from aejax import _validate
from aejax.config import TrainConfig

CPU_SHARD_MAX_FLOPS = 5e7  # per run and step: see large_cpu_runs
CPU_CONCURRENT_MAX_FLOPS = 2e9  # per run and step: see concurrent_cpu_blocks


def use_all_cpu_cores() -> None:
    """One JAX CPU device per core (before JAX starts), so that ``devices`` can name up to that many
    CPU devices (a sweep's default keeps to one, see ``default_devices``). A device count already
    chosen — ``jax_num_cpu_devices`` or XLA_FLAGS — is left alone, and so are the devices of a JAX
    that has already started."""
    # jax.config options are dynamic attributes, invisible to the type checker
    chosen = jax.config.jax_num_cpu_devices != -1  # pyright: ignore[reportAttributeAccessIssue]
    if not chosen and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        # RuntimeError: JAX already started in this process (e.g. a second command): keep its devices
        with contextlib.suppress(RuntimeError):
            jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)


def large_cpu_runs(config: TrainConfig) -> bool:
    """Whether each run has enough work per step (10·batch·d·n FLOPs >= ``CPU_SHARD_MAX_FLOPS``)
    that, on a CPU, a block runs its runs one after another rather than batched (``batch_runs``):
    XLA:CPU's batched matrix products are slower than plain ones at this size.

    Examples:
        >>> large_cpu_runs(TrainConfig(d=512, n=512, steps=10, batch=128))
        True
    """
    return 10 * config.batch * config.d * config.n >= CPU_SHARD_MAX_FLOPS


def concurrent_cpu_blocks(config: TrainConfig) -> bool:
    """Whether, on a CPU, a bucket of ``config``'s runs is cut into blocks that run at once on threads
    (``block_threads``, ``aejax.programs.default_runs_per_device``): below 10·batch·d·n =
    ``CPU_CONCURRENT_MAX_FLOPS`` per run and step. Above it, one run's products keep every core busy
    through XLA's intra-op threads, and two blocks at once contend (2 runs at d = 2048, 300 steps,
    2 cores: 20.5 s on two threads against 19.9 s one after another; at d = 1024, 4.84 against 5.02 s).

    Examples:
        >>> [concurrent_cpu_blocks(TrainConfig(d=d, n=d, steps=10)) for d in (1024, 2048)]
        [True, False]
    """
    return 10 * config.batch * config.d * config.n < CPU_CONCURRENT_MAX_FLOPS


def default_devices() -> int | None:
    """Devices a sweep uses when none are named: all of them (``None``), except that a single-process
    CPU sweep keeps to one device and runs its blocks on several threads (``block_threads``).

    A second CPU device would compile every block program again (XLA:CPU keys an executable to its
    device), while threads share one executable: on 2 cores, 16 runs at d = 128 in two blocks of 8
    trained in 3.25 s on two threads against 5.35 s as one block of 16 (``aejax.programs``).

    Examples:
        >>> default_devices() == (1 if jax.devices()[0].platform == "cpu" else None)
        True
    """
    if jax.process_count() > 1 or jax.devices()[0].platform != "cpu":
        return None
    return 1


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS reports one).

    Examples:
        >>> cpu_cores() >= 1
        True
    """
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity is not None else os.cpu_count() or 1)


def block_threads(mesh: Mesh, config: TrainConfig, bytes_per_block: int, budget: int) -> int:
    """How many blocks of ``config``'s runs each device of ``mesh`` runs at once: on a CPU, this
    process's cores per local device of the mesh, no more than the per-device memory ``budget``
    holds (``bytes_per_block`` each; 0: not measured), at least 1, and 1 for runs large enough to
    fill the cores alone (``concurrent_cpu_blocks``); on an accelerator 1, since it runs one
    program at a time.

    XLA:CPU runs programs called from different threads on one device at the same time, so threads
    give a CPU device's blocks every core with one compiled executable. The outputs do not depend on
    the thread count.

    Examples:
        >>> mesh, config = make_mesh(1), TrainConfig(d=16, n=16, steps=10)
        >>> block_threads(mesh, config, 0, 1) == (cpu_cores() if jax.devices()[0].platform == "cpu" else 1)
        True
        >>> block_threads(mesh, config, bytes_per_block=600, budget=1000)  # one block fits the budget
        1
    """
    devices = list(mesh.devices.flat)
    if devices[0].platform != "cpu" or not concurrent_cpu_blocks(config):
        return 1
    local = sum(1 for dev in devices if dev.process_index == jax.process_index())
    threads = cpu_cores() // max(1, local)
    if bytes_per_block > 0:
        threads = min(threads, budget // bytes_per_block)
    return max(1, threads)


def batch_runs(run, config: TrainConfig, platform: str):
    """Map ``run`` over a block's leading runs axis on one device of ``platform``: ``vmap``, except
    for large runs on a CPU, where ``lax.map`` runs them one after another inside the program.

    XLA's CPU backend turns vmapped matrix products into batched products that are slower than
    plain ones (8 runs at d = 512 on 2 cores: vmap 0.82 s, a Python loop of jitted runs 0.62 s,
    ``lax.map`` 0.52 s), while small runs gain from batching (16 runs at d = 128: vmap 0.27 s,
    loop 0.42 s).
    """
    if platform == "cpu" and large_cpu_runs(config):
        return lambda *args: jax.lax.map(lambda one: run(*one), args)
    return jax.vmap(run)


# jax.Device is exported as a variable alias of a compiled class, which the type checker rejects in annotations
def make_mesh(devices: int | Sequence[jax.Device] | None = None) -> Mesh:  # pyright: ignore[reportInvalidTypeForm]
    """A 1-D ``("runs",)`` mesh over ``devices`` (a count, a list, or ``None`` for all, every host).

    Examples:
        >>> make_mesh(1).shape["runs"]
        1
    """
    available = jax.devices()
    if devices is None:
        chosen = available
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise _validate.InputError(
                f"devices must be between 1 and {len(available)} (the devices JAX sees), got {devices}"
            )
        chosen = available[:devices]
    elif isinstance(devices, Sequence) and not isinstance(devices, str):
        chosen = list(devices)
        if not chosen or not all(isinstance(dev, jax.Device) for dev in chosen):
            raise _validate.InputError(f"devices as a list must be a non-empty list of jax.Device, got {devices!r}")
    else:
        raise _validate.InputTypeError(f"devices must be a device count, a list of jax.Device or None, got {devices!r}")
    return Mesh(np.asarray(chosen), ("runs",))


def memory_budget_bytes(mesh: Mesh) -> int:
    """Default per-device memory budget: 70% of an accelerator's memory, or half the free host RAM
    shared among the local CPU devices."""
    device = mesh.devices.flat[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(0.7 * stats["bytes_limit"])
    local = sum(1 for d in mesh.devices.flat if d.process_index == jax.process_index())
    return int(0.5 * _validate.available_host_bytes() / max(1, local))
