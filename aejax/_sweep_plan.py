"""A sweep's plan: its runs grouped into shape buckets and chunks, its manifest and fingerprint.

``plan`` is pure and compiles nothing: it checks the config, the grid and the options against each
other, groups runs by shape (``aejax.grid.bucket_sizes``), and gives each bucket the block width it
asks for (``runs_per_device``, or ``aejax.programs.default_runs_per_device`` of the bucket's size,
the run's shape and the platform: on a CPU, two blocks of two runs below).
A width is lowered only if the compiled program does not fit the memory budget, which the execute
stage measures (``aejax._sweep_execute.fit_program``), so a bucket's ``chunks`` follow its width.

Examples:
    >>> from aejax.config import TrainConfig
    >>> from aejax.sweep_options import SweepOptions
    >>> grid = {"seed": [0, 1, 2, 3], "rate": [0.5, 1.0]}
    >>> p = plan(TrainConfig(d=16, n=16, steps=20), grid, SweepOptions(devices=1))
    >>> [(b.config.n, b.members, b.width) for b in p.buckets]
    [(16, (1, 3, 5, 7), 2), (8, (0, 2, 4, 6), 2)]
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from jax.sharding import Mesh

from aejax import _validate
from aejax.config import TrainConfig
from aejax.devices import block_threads, default_devices, make_mesh, memory_budget_bytes
from aejax.grid import Grid, bucket_sizes, units
from aejax.hparams import default_hparams
from aejax.identity import describe
from aejax.programs import Program, default_runs_per_device, placements
from aejax.results import fingerprint
from aejax.shards import Shard, owned_runs
from aejax.sources import Source
from aejax.sweep_options import SweepOptions

__all__ = ["Bucket", "SweepPlan", "plan"]

DEFAULT_MC_SAMPLES = 16384  # Monte Carlo samples of each run's final risk at d <= MC_REF_D
MC_REF_D = 128
MIN_MC_SAMPLES = 1024


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One shape bucket: its config (``d`` and the compiled ``n``), every run in it (``members``, by
    grid index), the runs this sweep computes (``pending``: its shard's share, less finished runs),
    the block width and the runs per chunk (``chunk``; ``None``: as many blocks as the devices run
    at once, ``threads`` blocks on each of ``devices``)."""

    config: TrainConfig
    members: tuple[int, ...]
    owned: tuple[int, ...]
    pending: tuple[int, ...]
    width: int
    chunk: int | None
    devices: int
    threads: int = 1

    @property
    def chunk_runs(self) -> int:
        """Runs per chunk: ``chunk``, or ``threads`` blocks of ``width`` runs per device."""
        return self.chunk or self.width * self.devices * self.threads

    @property
    def chunks(self) -> tuple[np.ndarray, ...]:
        """The pending runs cut into chunks of ``chunk_runs`` runs, in order."""
        size, runs = self.chunk_runs, self.pending
        return tuple(np.asarray(runs[start : start + size]) for start in range(0, len(runs), size))


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep decides before it computes: see ``plan``."""

    given: TrainConfig  # the config as given (its description is the manifest's)
    config: TrainConfig  # with the trace points every run shares
    grid: Grid
    options: SweepOptions
    shard: Shard | None
    mesh: Mesh
    budget: int
    run_dims: tuple[int, ...]
    n_units: tuple[int, ...]
    sizes: dict[int, dict[int, int]]  # d -> {n: compiled n of its bucket}
    buckets: tuple[Bucket, ...]
    manifest: dict[str, Any]
    fingerprint: str
    samples_at: dict[int, int]  # d -> Monte Carlo samples of the final risk
    hparam_names: tuple[str, ...]

    @property
    def cost_power(self) -> float:
        """How a run's cost grows with n: n² in population mode (the exact risk), else n."""
        return 2.0 if self.config.mode == "population" else 1.0

    @property
    def owned(self) -> int:
        """Runs this sweep (or shard) computes or reuses."""
        return sum(len(b.owned) for b in self.buckets)

    def without(self, finished: set[int] | dict[int, Any]) -> SweepPlan:
        """The plan with the ``finished`` runs (a store's, for a resumed sweep) taken out of every bucket."""
        buckets = []
        for bucket in self.buckets:
            pending = tuple(i for i in bucket.pending if i not in finished)
            if pending:
                buckets.append(dataclasses.replace(bucket, pending=pending))
        return dataclasses.replace(self, buckets=tuple(buckets))

    def block_threads(self, program: Program) -> int:
        """Blocks of ``program`` that each device runs at once (``aejax.devices.block_threads``)."""
        return block_threads(self.mesh, program.config, program.bytes_per_device, self.budget)

    def programs(self) -> list[Program]:
        """Each bucket's block program at its planned width (not compiled)."""
        return [Program(b.config, self.samples_at[b.config.d], self.hparam_names, b.width) for b in self.buckets]

    def placements(self) -> list[tuple[Program, Any]]:
        """``(program, device)`` to compile, in the order the sweep runs them (``compile_ahead``)."""
        return [
            job
            for program, b in zip(self.programs(), self.buckets, strict=True)
            for job in placements(program, self.mesh, len(b.pending), self.options.chunk)
        ]


def plan(config: TrainConfig, grid: Any, options: SweepOptions, shard: Shard | None = None) -> SweepPlan:
    """Plan the sweep of ``config`` over ``grid`` (``aejax.sweep``'s arguments) without compiling.

    Args:
        config: the static structure of each run.
        grid: ``{axis: values}`` or a list of runs (``aejax.grid.Grid.from_spec``).
        options: the sweep's options (devices, chunk, widths, seed, Monte Carlo samples, ...).
        shard: only this shard's share of each bucket (``aejax.shards``), or ``None``.

    Returns:
        ``SweepPlan``: buckets (largest d, then largest n first), each with its pending runs,
        width and chunks; the manifest and fingerprint of the sweep; the mesh and memory budget.

    Examples:
        >>> p = plan(TrainConfig(d=8, n=8, steps=10), {"seed": [0, 1, 2]}, SweepOptions(devices=1, chunk=2))
        >>> [ids.tolist() for ids in p.buckets[0].chunks], len(p.fingerprint)
        ([[0, 1], [2]], 16)
    """
    spec = Grid.from_spec(grid, config.d)
    if "d" in spec.runs[0] and isinstance(config.source, Source):
        raise _validate.InputError(
            f"a 'd' grid axis needs a named source (the config's source object has d={config.source.d}); "
            "sweep d with source='gaussian', 'bg' or 'sr'"
        )
    _check_axes_have_effect(config, spec)
    mesh = make_mesh(default_devices() if options.devices is None else options.devices)
    budget = memory_budget_bytes(mesh) if options.memory_budget is None else int(options.memory_budget)
    run_dims = tuple(cast(int, run.get("d", config.d)) for run in spec.runs)  # Grid makes every d an int
    check_time_at_every_d(config.time, config.batch, config.mode, run_dims)
    n_units = tuple(_units_of(run, d, config) for run, d in zip(spec.runs, run_dims, strict=True))
    power = 2.0 if config.mode == "population" else 1.0
    sizes = {
        d: bucket_sizes([n for n, dd in zip(n_units, run_dims, strict=True) if dd == d], options.max_padding, power)
        for d in sorted(set(run_dims), reverse=True)
    }
    manifest = _manifest(config, spec, options)
    given, config = config, _shared_trace_points(config)
    _check_trace_at_every_d(given, config, sorted(set(run_dims)))
    samples_at = {d: default_mc_samples(d) if options.mc_samples is None else options.mc_samples for d in sizes}
    hparam_names = tuple(k for k in spec.runs[0] if k not in ("seed", "d"))
    buckets = _buckets(config, sizes, run_dims, n_units, options, shard, mesh, budget)
    return SweepPlan(
        given, config, spec, options, shard, mesh, budget, run_dims, n_units, sizes,
        buckets, manifest, fingerprint(manifest), samples_at, hparam_names,
    )  # fmt: skip


def _manifest(config: TrainConfig, spec: Grid, options: SweepOptions) -> dict[str, Any]:
    """What identifies the sweep in its store: the config as given (a resume may add a d that
    changes the trace), the runs, the seed and the Monte Carlo samples."""
    return {
        "config": config_description(config, strict=options.out is not None),
        "runs": list(spec.runs),
        "dims": list(spec.dims),
        "seed": options.seed,
        "mc_samples": options.mc_samples,
    }


def _buckets(
    config: TrainConfig,
    sizes: dict[int, dict[int, int]],
    run_dims: Sequence[int],
    n_units: Sequence[int],
    options: SweepOptions,
    shard: Shard | None,
    mesh: Mesh,
    budget: int,
) -> tuple[Bucket, ...]:
    """The shape buckets, largest d then largest n first, each with its shard's runs, the width of
    its blocks on the mesh's platform, and as many blocks per chunk as the mesh runs at once."""
    devices, platform = int(mesh.devices.size), mesh.devices.flat[0].platform
    out = []
    for d, d_sizes in sizes.items():
        for bucket_n in sorted(set(d_sizes.values()), reverse=True):
            members = tuple(
                i for i, (n, dd) in enumerate(zip(n_units, run_dims, strict=True)) if dd == d and d_sizes[n] == bucket_n
            )
            share = tuple(owned_runs(list(members), shard))
            bucket_config = dataclasses.replace(config, d=d, n=bucket_n)
            width = options.runs_per_device or default_runs_per_device(len(members), platform, bucket_config)
            threads = block_threads(mesh, bucket_config, 0, budget)  # before the program's memory is known
            out.append(Bucket(bucket_config, members, share, share, width, options.chunk, devices, threads))
    return tuple(out)


def default_mc_samples(d: int) -> int:
    """Monte Carlo samples of a run's final risk by default: 16384 up to d = 128, then 16384·128/d,
    at least 1024. A sample's error ||x − x̂||²/d has a variance that falls as 1/d, so the standard
    error stays about the same at every d while the cost per run grows as n, not n·d.

    Examples:
        >>> default_mc_samples(64), default_mc_samples(512), default_mc_samples(8192)
        (16384, 4096, 1024)
    """
    return max(MIN_MC_SAMPLES, min(DEFAULT_MC_SAMPLES, DEFAULT_MC_SAMPLES * MC_REF_D // d))


def config_description(config: TrainConfig, strict: bool = True) -> dict[str, Any]:
    """JSON-able description of a config that is the same in every process: users' objects by
    their stable identity (``aejax.identity.describe``: a source by type, static fields and content
    hash; an ``aejax.named`` object by its name; a top-level function by ``module:qualname``),
    ``eval_every`` as resolved (``config.trace_every``).

    Raises:
        InputError: with ``strict``, a field holds an object without a stable identity (the message
            says to pass ``aejax.named(obj, "name")``); without, such objects are described by
            their ``repr`` (a sweep kept in memory, whose fingerprint never leaves the process).

    Examples:
        >>> import optax, aejax
        >>> config = TrainConfig(d=8, n=8, steps=10, optimizer=aejax.named(optax.adam(1.0), "adam"))
        >>> config_description(config)["optimizer"]
        {'name': 'adam'}
    """
    out = {f.name: describe(f.name, getattr(config, f.name), strict) for f in dataclasses.fields(config)}
    out["eval_every"] = config.trace_every
    return out


def check_time_at_every_d(time: Any, batch: Any, mode: Any, dims: Sequence[int]) -> None:
    """Refuse a ``time`` shorter than one optimizer step at the smallest of ``dims`` (one line naming
    the value and the minimum, batch/d there): such a run would train a whole step, more than the τ
    its results would carry. Values of the wrong type are left to ``TrainConfig``'s checks."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (time, batch))
    if not numbers or mode == "population" or not dims or batch <= 0:
        return
    d = min(int(v) for v in dims)
    minimum = batch / d
    if 0 < time < minimum * (1 - 1e-12):
        raise _validate.InputError(
            f"time={time:g} is shorter than one optimizer step at d={d}, the sweep's smallest d "
            f"(one step trains τ = batch/d = {batch}/{d} = {minimum:g}); the minimum is time={minimum:g}"
        )


def _check_trace_at_every_d(given: TrainConfig, config: TrainConfig, dims: list[int]) -> None:
    """Every d of the sweep must have distinct trace steps. When the trace points were not given (the
    default resolved at the config's d), say so and name the most that every d allows."""
    for d in dims:
        try:
            dataclasses.replace(config, d=d)
        except _validate.InputError:
            if given.trace_points is not None or config.trace_points is None:
                raise
            fits = [
                k for k in range(config.trace_points - 1, 0, -1) if _trace_fits(config, k, dims)
            ]  # the largest first
            hint = f"set trace_points to at most {fits[0]}" if fits else "set trace_points lower"
            at_d = dataclasses.replace(config, d=d, trace_points=1)
            raise _validate.InputError(
                f"the default trace of {config.trace_points} points (resolved at d={config.d}) needs distinct "
                f"trace steps at every d, but d={d} trains only {at_d.total_steps} steps (batch={config.batch}"
                + (f", time={config.time:g}" if config.time is not None else "")
                + f"); {hint}, or train longer"
            ) from None


def _trace_fits(config: TrainConfig, points: int, dims: list[int]) -> bool:
    try:
        for d in dims:
            dataclasses.replace(config, d=d, trace_points=points)
    except _validate.InputError:
        return False
    return True


def _shared_trace_points(config: TrainConfig) -> TrainConfig:
    """``config`` with its default trace resolved at the config as given (``TrainConfig.trace_count``
    and ``trace_every`` at its ``d`` and ``n``), so that every run of the sweep is traced at the same
    points whatever else the grid holds."""
    if config.trace_points is None:
        config = dataclasses.replace(config, trace_points=config.trace_count)
    if config.eval_every is None and not config.traced_by_time:
        config = dataclasses.replace(config, eval_every=config.trace_every)
    return config


def _units_of(run: dict[str, Any], d: int, config: TrainConfig) -> int:
    """Hidden units of a run at dimension ``d``: ``round(rate·d)``, or the config's rate n/d."""
    return units(run["rate"] if "rate" in run else config.n / config.d, d)


def _ineffective_axes(config: TrainConfig) -> dict[str, str]:
    """Swept axes that change nothing for ``config``, with the reason."""
    sign_surrogate = config.activation == "sign" and config.surrogate != "ste"
    out = {}
    if not sign_surrogate:
        out["slope"] = (
            f"the surrogate slope only acts on activation 'sign' with a surrogate other than 'ste' "
            f"(here activation={config.activation!r}, surrogate={config.surrogate!r})"
        )
    if not (sign_surrogate or config.activation == "helu"):
        out["margin"] = (
            f"the margin only acts on activation 'helu', or 'sign' with a surrogate other than 'ste' "
            f"(here activation={config.activation!r}, surrogate={config.surrogate!r})"
        )
    if not (isinstance(config.source, str) and not config.is_gaussian) and config.decoder == "linear":
        source = config.source if isinstance(config.source, str) else type(config.source).__name__
        out["p"] = (
            f"the sparsity p only acts on a named sparse source ('bg', 'sr') or a non-linear decoder "
            f"(here source={source!r}, decoder={config.decoder!r})"
        )
    return out


def _check_axes_have_effect(config: TrainConfig, grid: Grid) -> None:
    """Refuse a swept axis that changes nothing (several values would give identical copies); warn about a
    single such value unless it is the default (it is ignored)."""
    defaults = default_hparams(config)
    for axis, reason in _ineffective_axes(config).items():
        values = sorted({run[axis] for run in grid.runs if axis in run})
        if len(values) > 1:
            raise _validate.InputError(
                f"grid axis {axis!r} has no effect: {reason}; its values {values} would give identical runs"
            )
        if values and values[0] != defaults[axis]:
            warnings.warn(f"grid axis {axis!r} = {values[0]} is ignored: {reason}", UserWarning, stacklevel=3)
