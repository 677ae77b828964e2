"""The ``aejax`` command: ``train``, ``sweep``, ``theory``, ``reproduce`` and ``bench``.

Bad input prints one line ``aejax: error: ...`` naming the argument and exits with status 2. ``aejax
scaling`` exits with status 3 when a fit failed (``aejax.scaling.FitStatus``: an exponent at the end of its
range, resamples cut by it, or a law the data do not determine); its table and files are still written.

Examples:
    $ aejax sweep --d 256 --rates 0.25,0.5,1,1.5,2 --seeds 0,1,2 --out runs/sweep
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tomllib
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from aejax import _validate

if TYPE_CHECKING:
    import xarray as xr

    from aejax.config import TrainConfig
    from aejax.sources import Empirical

BENCHMARKS = ("steady", "end_to_end", "fixed_costs", "sweep", "risk", "scaling")
# What the commands choose beyond TrainConfig's own defaults (batch, schedule, lr, ... come from
# TrainConfig and aejax.default_hparams, so `aejax train`, `aejax sweep` and Python agree).
CLI_DEFAULTS = {"d": 256, "steps": 1000, "rates": "0.25,0.5,1,1.5,2", "seeds": "0,1,2", "out": "runs/sweep"}


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return values


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def _directory(text: str) -> Path:
    """An output directory: any non-empty path (``--out ""`` would silently mean the current directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a directory path, got {text!r}")
    return Path(text)


def _add_model_flags(p: argparse.ArgumentParser, several_d: bool = False) -> None:
    if several_d:
        p.add_argument(
            "--d",
            type=_ints,
            help=f"input dimension, or comma-separated dimensions for a d axis (default {CLI_DEFAULTS['d']})",
        )
    else:
        p.add_argument("--d", type=int, help=f"input dimension (default {CLI_DEFAULTS['d']})")
    # sweep: every static flag takes a comma-separated list, an axis of one sweep per value (aejax/_outer_axes.py)
    axis = "; comma-separated values for an axis (one sweep per value)" if several_d else ""
    ints, floats = (_ints, _floats) if several_d else (int, float)

    def names() -> Any:
        return _names() if several_d else str

    def choices(values: Sequence[str]) -> dict[str, Any]:
        if several_d:
            return {"type": _names(values), "metavar": "{" + ",".join(values) + "}"}
        return {"choices": list(values)}

    p.add_argument("--steps", type=ints, help=f"optimizer steps (default {CLI_DEFAULTS['steps']}, unless --time){axis}")
    p.add_argument(
        "--time",
        type=floats,
        help="training time per input dimension τ = steps·batch/d, instead of --steps (every d trains for the same τ)"
        + axis,
    )
    p.add_argument("--trace-points", type=ints, help=f"trace points on the τ grid (with --time or log spacing){axis}")
    p.add_argument("--trace-spacing", **choices(["linear", "log"]), help=f"spacing of the trace's τ grid{axis}")
    p.add_argument(
        "--lr-power", type=floats, help=f"learning rate applied = lr·(d_ref/d)^lr_power (docs/theory.md §11){axis}"
    )
    p.add_argument("--batch", type=ints, help=f"samples per step{axis}")
    p.add_argument("--mode", **choices(["online", "dataset", "population"]), help=f"training mode{axis}")
    p.add_argument("--activation", type=names(), help=f"sign, helu, relu, tanh or linear{axis}")
    p.add_argument("--surrogate", type=names(), help=f"surrogate derivative of sign (clip, ste, tanh, ...){axis}")
    p.add_argument("--optimizer", type=names(), help=f"optimizer name (adam, sgd, ...){axis}")
    p.add_argument("--schedule", type=names(), help=f"constant, cosine or linear{axis}")
    p.add_argument("--source", type=names(), help=f"gaussian, bernoulli_gaussian (bg) or sparse_rademacher (sr){axis}")
    p.add_argument(
        "--matmul-precision",
        **choices(["highest", "tensorfloat32", "bfloat16"]),
        help=f"precision of the matrix products (default highest; CPUs compute float32 whatever it says){axis}",
    )
    p.add_argument(
        "--opt-state-dtype",
        **choices(["float32", "bfloat16"]),
        help=f"dtype of the stored optimizer state (default float32){axis}",
    )


def _names(choices: Sequence[str] | None = None) -> Any:
    """An argparse type: comma-separated names (each one of ``choices`` when given)."""

    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
        bad = [v for v in values if choices is not None and v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"invalid choice {bad[0]!r} (choose from {', '.join(choices or ())})")
        return values

    return parse


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line ``aejax: error: ...`` (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"aejax: error: {message} (see {self.prog} --help)\n")


if TYPE_CHECKING:
    _Subparsers = argparse._SubParsersAction[_Parser]  # the subcommands' parsers are _Parser too


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aejax`` command."""
    parser = _Parser(
        prog="aejax", description="Simulate two-layer autoencoders x̂ = A σ(Bx) and compare them with theory."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(sub)
    _add_sweep_parser(sub)
    _add_reproduce_parser(sub)
    _add_bench_parser(sub)
    _add_theory_parser(sub)
    _add_scaling_parser(sub)
    return parser


def _add_train_parser(sub: _Subparsers) -> None:
    """``aejax train``: one autoencoder, its risk next to theory."""
    train = sub.add_parser("train", help="train one autoencoder and print its risk next to theory")
    _add_model_flags(train)
    train.add_argument("--rate", type=float, default=1.0, help="rate r = n/d (default 1)")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--slope", type=float, help="surrogate slope")
    train.add_argument("--p", type=float, help="sparsity of a sparse source")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--mc-samples", type=int, help="Monte Carlo samples for the final risk (default as sweep)")


def _add_sweep_parser(sub: _Subparsers) -> None:
    """``aejax sweep``: the model flags (each a comma list), the grid, how it runs, multi-host and data."""
    sweep = sub.add_parser("sweep", help="train a grid of runs, write netCDF results and a figure")
    _add_model_flags(sweep, several_d=True)
    sweep.add_argument("--config", type=Path, help="TOML file with [train], [grid] and [sweep] tables")
    sweep.add_argument("--rates", type=_floats, help=f"comma-separated rates (default {CLI_DEFAULTS['rates']})")
    sweep.add_argument("--seeds", type=_ints, help=f"comma-separated seeds (default {CLI_DEFAULTS['seeds']})")
    sweep.add_argument("--lr", type=_floats, help="comma-separated learning rates")
    sweep.add_argument("--slope", type=_floats, help="comma-separated surrogate slopes")
    sweep.add_argument("--p", type=_floats, help="comma-separated sparsities")
    sweep.add_argument("--out", type=_directory, help=f"output directory (default {CLI_DEFAULTS['out']})")
    sweep.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        help="continue the sweep already in --out (--no-resume overrides the TOML's resume = true)",
    )
    _add_sweep_run_flags(sweep)
    _add_multihost_flags(sweep)
    _add_data_flags(sweep)


def _add_sweep_run_flags(sweep: argparse.ArgumentParser) -> None:
    """How ``aejax sweep`` runs: devices, blocks and chunks, Monte Carlo samples, checkpoints, progress."""
    sweep.add_argument("--devices", type=int, help="number of devices to shard runs over (default all)")
    sweep.add_argument("--chunk", type=int, help="runs per chunk written to --out (default one block per device)")
    sweep.add_argument(
        "--runs-per-device",
        type=int,
        help="runs per block, the compiled program every device runs; the results' bits depend on it, "
        "not on --devices or --chunk (default from the grid, lowered to fit memory)",
    )
    sweep.add_argument(
        "--mc-samples",
        type=int,
        help="Monte Carlo samples for each final risk (default 16384 up to d = 128, then 16384·128/d, at least 1024)",
    )
    sweep.add_argument(
        "--checkpoint-every",
        type=int,
        help="save each chunk's training state every this many steps "
        "(under --out/checkpoints); a rerun continues from the last one",
    )
    sweep.add_argument("--checkpoint-seconds", type=float, help="save it when this many seconds have passed")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_multihost_flags(sweep: argparse.ArgumentParser) -> None:
    """``aejax sweep`` over several hosts: one jax.distributed job, or independent shards."""
    sweep.add_argument("--coordinator", help="multi-host: coordinator address host:port")
    sweep.add_argument("--num-processes", type=int, help="multi-host: number of processes")
    sweep.add_argument("--process-id", type=int, help="multi-host: this process's index")
    sweep.add_argument(
        "--cluster",
        choices=["auto"],
        help="multi-host: join the job's processes with jax.distributed, reading SLURM, Open MPI, Kubernetes "
        "or Cloud TPU (instead of --coordinator, --num-processes and --process-id)",
    )
    sweep.add_argument(
        "--shard",
        help="K/N: compute only shard K of N of the runs into --out, for independent tasks (a job array), "
        "without assembling; 'auto' reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT. Rerun without "
        "--shard to assemble (docs/cluster.md)",
    )


def _add_data_flags(sweep: argparse.ArgumentParser) -> None:
    """``aejax sweep --data``: a data file and its preprocessing (the TOML ``[data]`` table's keys)."""
    sweep.add_argument(
        "--data",
        type=Path,
        help="train on a data file (npz, npy, IDX, CSV; samples along the first "
        "axis) in dataset mode instead of --source; records held-out, training and "
        "Gaussian-equivalent risks",
    )
    sweep.add_argument(
        "--whiten",
        choices=["none", "pca", "zca"],
        help="with --data: whitening fitted on the training "
        "split (default none: centred, scaled to unit mean variance)",
    )
    sweep.add_argument("--components", type=int, help="with --data --whiten pca: principal components kept")
    sweep.add_argument("--test-fraction", type=float, help="with --data: fraction of samples held out (default 0.2)")
    sweep.add_argument(
        "--drop-constant",
        action="store_true",
        default=None,
        help="with --data: leave out columns constant in the training split",
    )


def _add_reproduce_parser(sub: _Subparsers) -> None:
    """``aejax reproduce NAME``: a paper experiment at a size."""
    rep = sub.add_parser("reproduce", help="reproduce a paper experiment: figure, netCDF and markdown table")
    rep.add_argument("name", help="experiment name (see aejax.reproduce.TARGETS)")
    rep.add_argument(
        "--size",
        choices=["tiny", "small", "large"],
        default="small",
        help="tiny (seconds), small (minutes on a CPU) or large (accelerator)",
    )
    rep.add_argument("--out", type=_directory, default=Path("runs/reproduce"), help="output directory")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    rep.add_argument(
        "--data",
        type=Path,
        help="universality: a data file instead of the bundled digits; real-sparse: "
        "an image file (N, H, W) instead of the bundled sample photographs",
    )


def _add_bench_parser(sub: _Subparsers) -> None:
    """``aejax bench [PARTS]``: the benchmark suite."""
    bench = sub.add_parser("bench", help="run the benchmark suite (from a source checkout)")
    bench.add_argument("parts", nargs="*", help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}")
    bench.add_argument("--quick", action="store_true", help="small sizes")


def _add_theory_parser(sub: _Subparsers) -> None:
    """``aejax theory``: a table of theory predictions."""
    th = sub.add_parser("theory", help="table of theory predictions")
    th.add_argument("--rates", type=_floats, default=[0.5, 1.0, 2.0], help="comma-separated rates")
    th.add_argument("--ps", type=_floats, default=[0.1, 0.3, 0.5, 1.0], help="comma-separated sparsities")
    th.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_scaling_parser(sub: _Subparsers) -> None:
    """``aejax scaling RESULTS``: finite-size scaling fits."""
    scaling = sub.add_parser("scaling", help="fit finite-size scaling laws R = R∞ + C·d^(−α) to a results file")
    scaling.add_argument("results", type=Path, help="results file (results.nc) or a sweep's output directory")
    scaling.add_argument("--var", default="exact_risk", help="variable to extrapolate (default exact_risk)")
    scaling.add_argument(
        "--along", default="d", help="size axis (default d), or d,time for the joint law R∞ + A·d^(−α) + B·τ^(−β)"
    )
    scaling.add_argument("--out", type=Path, help="output directory (default: next to the results file)")
    scaling.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    scaling.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")


TRAIN_FLAGS = (
    "d",
    "steps",
    "time",
    "trace_points",
    "trace_spacing",
    "lr_power",
    "batch",
    "mode",
    "activation",
    "surrogate",
    "optimizer",
    "schedule",
    "source",
    "matmul_precision",
    "opt_state_dtype",
)


def _train_fields(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig fields: CLI_DEFAULTS, then ``base`` (the TOML's [train]), then the flags."""
    fields = {"d": CLI_DEFAULTS["d"], **base}
    for name in TRAIN_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    if args.steps is not None:
        fields.pop("time", None)  # a flag wins over the file's choice of clock
    elif args.time is not None:
        fields.pop("steps", None)
    if "steps" not in fields and "time" not in fields:
        fields["steps"] = CLI_DEFAULTS["steps"]
    return fields


def cmd_train(args: argparse.Namespace) -> None:
    """One run: the sweep engine on a one-run grid, so its numbers equal ``aejax sweep``'s for that run."""
    from aejax import theory
    from aejax.config import MAX_STEPS, TrainConfig
    from aejax.sweeping import sweep

    fields = _train_fields(args, {})
    d = _validate.positive_int("--d", fields["d"], maximum=MAX_STEPS)
    _validate.positive_number("--rate", args.rate, scalar=True)
    _check_seed("--seed", args.seed)
    _check_learning_rates(fields, [(args.lr if args.lr is not None else 1.0, d)])
    config = TrainConfig(n=_hidden_units("--rate", [args.rate], d), **fields)
    grid: dict[str, list] = {"seed": [args.seed], "rate": [args.rate]}
    grid.update({k: [getattr(args, k)] for k in ("lr", "slope", "p") if getattr(args, k) is not None})
    run = sweep(config, grid, mc_samples=args.mc_samples, progress=False).squeeze()
    limit = float(theory.gaussian_limit(args.rate, config.activation))
    rows = [
        ("rate", f"{args.rate:g}"),
        ("activation", config.activation),
        ("mode", config.mode),
        ("steps", str(config.total_steps)),
        ("risk (Monte Carlo)", f"{float(run['risk']):.4f} ± {float(run['risk_se']):.4f}"),
        ("exact risk", f"{float(run['exact_risk']):.4f}"),
        ("theory (Gaussian limit)", f"{limit:.4f}"),
        ("Shannon bound", f"{float(theory.shannon_limit(args.rate)):.4f}"),
        ("PCA", f"{float(theory.pca_risk(args.rate)):.4f}"),
        ("status", str(run["status"].item())),
    ]
    _print_table(["quantity", "value"], rows)


DATA_KEYS = ("file", "whiten", "components", "test_fraction", "drop_constant", "name", "split_seed")
TOML_KEYS = {
    "train": None,
    "grid": None,  # filled in by _toml_keys (they need the package's imports)
    "sweep": None,  # aejax.SweepOptions' fields, field for field
    "data": DATA_KEYS,
}


def _toml_keys(table: str) -> tuple[str, ...]:
    """The keys allowed in a TOML table: TrainConfig's fields, the grid axes, or SweepOptions' fields."""
    import dataclasses

    from aejax.config import TrainConfig
    from aejax.sweep_options import SweepOptions

    if table == "train":
        return tuple(f.name for f in dataclasses.fields(TrainConfig))
    if table == "sweep":
        return SweepOptions.names()
    return (*_grid_axes()[0], *_grid_axes()[1]) if table == "grid" else TOML_KEYS[table]


def _grid_axes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The grid's axes: the inner ones (numbers: seed, d, the traced hyper-parameters) and TrainConfig's
    static fields (one sweep per value, ``aejax/_outer_axes.py``)."""
    from aejax._outer_axes import STATIC_AXES
    from aejax.grid import AXES

    return AXES, STATIC_AXES


def _load_toml(path: Path | None) -> dict[str, Any]:
    """The ``--config`` file's tables, each checked: known keys only; [train] and [sweep] values are
    numbers, strings or booleans; [grid] values are a number or a flat list of numbers (a static
    field's axis: of numbers, strings or booleans)."""
    if path is None:
        return {}
    where = f"--config {str(path)!r}"
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise _validate.InputError(f"{where} cannot be read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise _validate.InputError(f"{where} is not UTF-8 text: {err.reason} at byte {err.start}") from None
    except tomllib.TOMLDecodeError as err:
        raise _validate.InputError(f"{where} is not valid TOML: {err}") from None
    unknown = sorted(set(data) - set(TOML_KEYS))
    if unknown:
        raise _validate.InputError(f"{where} has unknown tables {unknown}; allowed: train, grid, sweep, data")
    for table, entries in data.items():
        if not isinstance(entries, dict):
            raise _validate.InputError(f"{where}: {table} must be a table [{table}], got {entries!r}")
        allowed = _toml_keys(table)
        unknown = sorted(set(entries) - set(allowed))
        if unknown:
            raise _validate.InputError(f"{where}: [{table}] has unknown keys {unknown}; allowed: {', '.join(allowed)}")
        for key, value in entries.items():
            scalar = isinstance(value, (str, int, float, bool))
            if table == "grid" and key in _grid_axes()[0]:
                ok = scalar or (isinstance(value, list) and all(isinstance(v, (int, float)) for v in value))
                want = "a number or a flat list of numbers"
            elif table == "grid":
                ok = scalar or (isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) for v in value))
                want = "a value or a flat list of numbers, strings or booleans"
            else:
                ok, want = scalar, "a number, a string or a boolean"
            if not ok:
                raise _validate.InputError(f"{where}: [{table}] {key} must be {want}, got {value!r}")
    out = data.get("sweep", {}).get("out", "runs/sweep")
    if not isinstance(out, str) or not out.strip():
        raise _validate.InputError(f"{where}: [sweep] out must be a non-empty directory path, got {out!r}")
    return data


def _check_seed(name: str, seed: int) -> None:
    """A run seed: an integer in [0, 2**31)."""
    _validate.non_negative_int(name, seed)
    if seed >= 2**31:
        raise _validate.InputError(f"{name} must be below 2**31, got {seed}")


def _hidden_units(name: str, rates: list[float], d: int) -> int:
    """Hidden units compiled for the largest rate, refused when they do not fit an int32 size."""
    from aejax.config import MAX_STEPS

    n = max(1, round(max(rates) * d))
    if n > MAX_STEPS:
        raise _validate.InputError(
            f"{name} {max(rates):g} at d={d} gives n={n} hidden units, more than {MAX_STEPS} (2**31 - 1)"
        )
    return n


def _check_learning_rates(fields: dict[str, Any], runs: list[tuple[Any, Any]]) -> None:
    """``--lr-power`` in its range, and the learning rate ``lr·(d_ref/d)^lr_power`` applied to each ``(lr, d)``
    run a finite, non-zero float32 (an inf would overflow the first step, a 0 never train)."""
    from aejax.config import TrainConfig
    from aejax.hparams import check_learning_rate, check_lr_power

    power = check_lr_power("--lr-power", fields.get("lr_power", 0.0))
    d_ref = _validate.positive_int("d_ref", fields.get("d_ref", TrainConfig.d_ref))
    for lr, d in sorted(set(runs)):
        _validate.positive_number("--lr", lr, scalar=True)
        check_learning_rate("--lr-power", lr, d, d_ref, power)


def _check_multihost(args: argparse.Namespace) -> bool:
    """Whether the multi-host flags ask for jax.distributed; they must come together and be consistent."""
    given = {"--coordinator": args.coordinator, "--num-processes": args.num_processes, "--process-id": args.process_id}
    if all(value is None for value in given.values()):
        return False
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise _validate.InputError(
            f"multi-host sweeps need --coordinator, --num-processes and --process-id together; "
            f"missing {', '.join(missing)}"
        )
    host, _, port = args.coordinator.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _validate.InputError(f"--coordinator must be host:port with a port in 1..65535, got {args.coordinator!r}")
    _validate.positive_int("--num-processes", args.num_processes)
    if not 0 <= args.process_id < args.num_processes:
        raise _validate.InputError(
            f"--process-id must be in [0, --num-processes={args.num_processes}), got {args.process_id}"
        )
    return True


def cmd_sweep(args: argparse.Namespace) -> None:
    import jax

    from aejax.shards import parse_shard

    file = _load_toml(args.config)
    shard = None if args.shard is None else parse_shard(args.shard)
    _start_processes(args)
    from aejax.config import MAX_STEPS, TrainConfig
    from aejax.grid import Grid
    from aejax.hparams import DEFAULT_LR
    from aejax.sweep_options import SweepOptions
    from aejax.sweeping import run_sweep

    fields = _train_fields(args, file.get("train", {}))
    grid = _sweep_grid(args, file.get("grid", {}), fields)
    options = _sweep_options(args, file.get("sweep", {}))
    data_info = _data_fields(args, file, fields, options)
    d = _validate.positive_int("d", fields["d"], maximum=MAX_STEPS)
    runs = Grid.from_spec({k: v for k, v in grid.items() if k in _grid_axes()[0]}, d).runs
    rates = [run["rate"] for run in runs]
    _check_learning_rates(fields, [(run.get("lr", DEFAULT_LR), run.get("d", d)) for run in runs])
    fields.setdefault("n", _hidden_units("--rates", rates, d))
    config = TrainConfig(**fields)
    settings = SweepOptions(**options)
    if shard is not None:
        _sweep_shard(config, grid, shard, settings)
        return
    data_attrs = None  # written with the results, once
    if data_info is not None:
        data_attrs = {"data": json.dumps(data_info, sort_keys=True), "preprocessing": data_info["summary"]}
    from aejax._sweep_execute import while_compiling

    draws = jax.process_index() == 0
    with while_compiling(_import_figure_modules) if draws else contextlib.nullcontext():
        ds = cast("xr.Dataset", run_sweep(config, grid, settings, attrs=data_attrs))
    if not draws:
        return
    _report_sweep(ds, config, Path(options["out"]), data=data_info is not None)


def _start_processes(args: argparse.Namespace) -> None:
    """Use every CPU core, and join a multi-host job: ``--coordinator``/``--num-processes``/``--process-id``
    or ``--cluster auto`` (before anything touches a JAX backend)."""
    import jax

    from aejax.devices import use_all_cpu_cores
    from aejax.shards import initialize_cluster

    use_all_cpu_cores()
    if _check_multihost(args):
        if args.cluster is not None:
            raise _validate.InputError("give either --cluster auto or --coordinator/--num-processes/--process-id")
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    elif args.cluster == "auto":
        initialize_cluster()


def _sweep_grid(args: argparse.Namespace, table: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The sweep's grid: the TOML ``[grid]`` table, the defaults and the flags (which win); ``--d`` with
    several values becomes a d axis (``fields["d"]`` the largest), static fields with several values axes."""
    from aejax.grid import Grid
    from aejax.hparams import DEFAULT_LR

    grid = dict(table)
    grid.setdefault("seed", _ints(CLI_DEFAULTS["seeds"]))
    grid.setdefault("rate", _floats(CLI_DEFAULTS["rates"]))
    grid.setdefault("lr", [DEFAULT_LR])  # TrainConfig's default, recorded as a coordinate of the results
    for flag, axis in (("seeds", "seed"), ("rates", "rate"), ("lr", "lr"), ("slope", "slope"), ("p", "p")):
        if getattr(args, flag) is not None:
            grid[axis] = getattr(args, flag)
    if isinstance(fields["d"], list):  # --d 256,512: a d axis (one value: a plain d)
        if len(fields["d"]) == 1:
            fields["d"] = fields["d"][0]
        else:
            grid["d"] = fields.pop("d")
    if "d" in grid:
        fields["d"] = max(Grid.from_spec({"d": grid["d"]}, 1).coords["d"])
    _static_axis_fields(args, fields, grid)
    if "d" in grid:
        # before the config at the largest d: one step at the smallest d is the minimum time
        from aejax._outer_axes import time_values
        from aejax.config import TrainConfig
        from aejax.sweeping import check_time_at_every_d

        dims = Grid.from_spec({"d": grid["d"]}, 1).coords["d"]
        shortest = min(time_values(grid["time"])) if "time" in grid else fields.get("time")
        check_time_at_every_d(shortest, fields.get("batch", TrainConfig.batch), fields.get("mode"), dims)
    return grid


def _import_figure_modules() -> None:
    """What ``_report_sweep`` draws with (``aejax.plot``, matplotlib: 0.3 s), imported while XLA compiles."""
    from aejax.plot import import_matplotlib

    import_matplotlib()


def _report_sweep(ds: xr.Dataset, config: TrainConfig, out: Path, data: bool) -> None:
    """Draw the risk against the rate into ``out`` and print the results table and the files' paths."""
    from aejax.plot import plot_risk_vs_rate

    dims = ",".join(str(v) for v in ds["d"].values) if "d" in ds.dims else str(config.d)
    length = f"τ = {config.time:g}" if config.time is not None else f"{config.total_steps} steps"
    if "time" in ds.dims:
        length = "τ = " + ",".join(f"{t:g}" for t in ds["time"].values)
    if "steps" in ds.dims:
        length = ",".join(str(s) for s in ds["steps"].values) + " steps"
    figure = plot_risk_vs_rate(
        ds, out / "risk_vs_rate.png", config.activation, title=f"{config.activation}, {config.mode}, d={dims}, {length}"
    )
    _print_sweep_table(ds, data=data)
    print(f"results: {out / 'results.nc'}\nfigure:  {figure}")


def _static_axis_fields(args: argparse.Namespace, fields: dict[str, Any], grid: dict[str, Any]) -> None:
    """Static fields as axes (``aejax/_outer_axes.py``: one sweep per value): a flag's comma list
    (``--surrogate clip,ste``, ``--time 125,250``) or a ``[grid]`` entry of a ``TrainConfig`` field. A flag
    wins over the file's entry (one value: a plain field); the config then holds a placeholder that each
    part replaces (the longest clock, else the first value)."""
    from aejax._outer_axes import CLOCKS, STATIC_AXES, outer_axis

    for name in TRAIN_FLAGS:
        given = getattr(args, name, None)
        if name == "d" or given is None:
            continue
        grid.pop(name, None)
        if name in CLOCKS:
            grid.pop(CLOCKS[name], None)  # --steps over [grid] time, --time over [grid] steps
        if isinstance(given, list) and len(given) > 1:
            grid[name] = given
        else:
            fields[name] = given[0] if isinstance(given, list) else given
    for name in STATIC_AXES:
        if name in grid:
            values = outer_axis(name, grid[name]).values
            if name in CLOCKS:
                fields.pop(CLOCKS[name], None)
            fields[name] = max(values) if name in CLOCKS else values[0]


CHECKPOINT_FLAGS = ("checkpoint_every", "checkpoint_seconds")


def _sweep_options(args: argparse.Namespace, table: dict[str, Any]) -> dict[str, Any]:
    """``SweepOptions``' fields from the TOML ``[sweep]`` table, each flag given winning over it; ``out``
    defaults to ``runs/sweep`` and ``--quiet`` turns the progress bar off."""
    options: dict[str, Any] = {"out": CLI_DEFAULTS["out"], **table}
    for name in ("out", "resume", "devices", "chunk", "runs_per_device", "mc_samples", *CHECKPOINT_FLAGS):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    options["out"] = Path(options["out"])
    options["progress"] = options.get("progress", True) and not args.quiet
    return options


def _sweep_shard(config, grid, shard, options: Any) -> None:
    """Compute one shard of the sweep into ``options.out`` and say what is left to do."""
    import jax

    from aejax.sweeping import run_sweep

    report = run_sweep(config, grid, options, shard)
    out = Path(options.out)
    if jax.process_index() == 0:
        print(
            f"shard {shard.index}/{shard.count}: {report.owned} runs ({report.computed} computed, {report.reused} "
            f"already in {out}); when every shard has finished, rerun the command without --shard to assemble "
            f"{out / 'results.nc'}"
        )


def _data_fields(
    args: argparse.Namespace, file: dict[str, Any], fields: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any] | None:
    """``--data`` and the TOML ``[data]`` table (flags win): load, split and preprocess the file, set the
    config's ``source``/``test_source``/``d``/``mode`` in ``fields``, and return the data's description
    (``aejax.data.dataset_sources``'s info), or ``None`` without a data file."""
    table = _data_table(args, file)
    if "file" not in table:
        if table:
            flags = ", ".join("--" + k.replace("_", "-") for k in sorted(table))
            raise _validate.InputError(
                f"{flags} apply to a data file: give --data FILE (or file = ... in the [data] table)"
            )
        return None
    from aejax.data import dataset_sources

    if "source" in fields:
        raise _validate.InputError(f"--data trains on the file's rows: drop --source (got source={fields['source']!r})")
    whiten = table.get("whiten", "none")
    _validate.choice("--whiten", whiten, ("none", "pca", "zca"))
    if table.get("components") is not None and whiten != "pca":
        raise _validate.InputError(f"--components applies to --whiten pca, got --whiten {whiten}")
    train, test, _, info = dataset_sources(
        table["file"],
        whiten=None if whiten == "none" else whiten,
        components=table.get("components"),
        test_fraction=table.get("test_fraction", 0.2),
        drop_constant=bool(table.get("drop_constant", False)),
        seed=table.get("split_seed", 0),
        name=table.get("name"),
    )
    _check_data_d(args.d if args.d is not None else file.get("train", {}).get("d"), table["file"], train.d)
    _check_data_memory(table["file"], train, test, info, options)
    fields.update(source=train, test_source=test, d=train.d)
    fields.setdefault("mode", "dataset")
    info["summary"] = _data_summary(whiten, info)
    return info


def _data_table(args: argparse.Namespace, file: dict[str, Any]) -> dict[str, Any]:
    """The TOML ``[data]`` table, checked, its ``file`` relative to the TOML file, with the flags given over it."""
    table = dict(file.get("data", {}))
    unknown = sorted(set(table) - set(DATA_KEYS))
    if unknown:
        raise _validate.InputError(f"--config [data] has unknown keys {unknown}; allowed: {', '.join(DATA_KEYS)}")
    _check_data_table(table)
    if "file" in table and args.config is not None and not Path(table["file"]).is_absolute():
        table["file"] = str(Path(args.config).parent / table["file"])  # relative to the TOML file
    for flag, key in (
        ("data", "file"),
        ("whiten", "whiten"),
        ("components", "components"),
        ("test_fraction", "test_fraction"),
        ("drop_constant", "drop_constant"),
    ):
        if getattr(args, flag, None) is not None:
            table[key] = getattr(args, flag)
    return table


def _check_data_d(given_d: Any, path: Any, data_d: int) -> None:
    """A ``--d`` (or ``[train] d``) given with ``--data`` must be one value, the preprocessed dimension."""
    if isinstance(given_d, list):  # sweep's --d takes a list; a data file fixes one d
        if len(given_d) != 1:
            raise _validate.InputError(
                f"--d {','.join(map(str, given_d))}: a d axis does not apply to --data, whose "
                f"preprocessed dimension is {data_d}"
            )
        given_d = given_d[0]
    if given_d is not None and given_d != data_d:
        raise _validate.InputError(
            f"--d {given_d} does not match --data {path}: its preprocessed dimension is {data_d}"
        )


def _check_data_memory(
    path: Any, train: Empirical, test: Empirical, info: dict[str, Any], options: dict[str, Any]
) -> None:
    """The preprocessed rows (the ``train`` and ``test`` sources) must fit the per-device memory budget."""
    from aejax.devices import make_mesh, memory_budget_bytes

    size = train.data.nbytes + test.data.nbytes
    budget = options.get("memory_budget") or memory_budget_bytes(make_mesh(options.get("devices")))
    if size > budget:
        raise _validate.InputError(
            f"--data {path}: the preprocessed rows ({info['n_train']} + {info['n_test']} × "
            f"{train.d} float32, {size / 2**20:.1f} MiB) do not fit the per-device memory budget of "
            f"{budget / 2**20:.1f} MiB; use fewer samples or --whiten pca --components K"
        )


def _data_summary(whiten: str, info: dict[str, Any]) -> str:
    """One line on the preprocessing, recorded with the results."""
    return (
        f"{whiten} whitening"
        + (f", {info['components']} components" if info["components"] else "")
        + f" of {info['input_d']} columns -> d = {info['d']}; fitted on {info['n_train']} training rows "
        f"({info['n_test']} held out, split seed {info['split_seed']}); "
        f"{info['constant_columns']} columns "
        f"constant in the training split; {info['ignored_directions']} zero- or near-zero-variance "
        f"directions left out (covariance rank {info['rank']})"
    )


def _check_data_table(table: dict[str, Any]) -> None:
    """The TOML ``[data]`` table's value types: ``file``/``name`` non-empty strings, ``whiten`` one of its
    names, ``components`` a positive integer, ``test_fraction`` a number in (0, 1), ``drop_constant`` a
    boolean, ``split_seed`` an integer in [0, 2**31)."""
    where = "--config [data]"
    for key in ("file", "name"):
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            raise _validate.InputTypeError(f"{where} {key} must be a non-empty string, got {table[key]!r}")
    if "whiten" in table:
        _validate.choice(f"{where} whiten", table["whiten"], ("none", "pca", "zca"))
    if "components" in table:
        _validate.positive_int(f"{where} components", table["components"])
    if "test_fraction" in table:
        fraction = table["test_fraction"]
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise _validate.InputError(f"{where} test_fraction must be a number in (0, 1), got {fraction!r}")
    if "drop_constant" in table:
        _validate.boolean(f"{where} drop_constant", table["drop_constant"])
    if "split_seed" in table:
        _check_seed(f"{where} split_seed", table["split_seed"])


def _print_sweep_table(ds, data: bool = False) -> None:
    risk = ds["risk"]
    others = [dim for dim in risk.dims if dim != "seed"]
    mean = risk.mean("seed") if "seed" in risk.dims else risk
    if risk.sizes.get("seed", 1) > 1:
        from aejax.report import seed_mean_se

        se = seed_mean_se(risk)[1]
    else:  # one seed: the Monte Carlo standard error
        se = ds["risk_se"].isel(seed=0) if "seed" in risk.dims else ds["risk_se"]
    theory = ds["theory"].isel(seed=0) if "seed" in ds["theory"].dims else ds["theory"]
    ok = (ds["status"] == "ok").sum("seed") if "seed" in ds["status"].dims else (ds["status"] == "ok")
    rows = []
    for index in mean.stack(point=others)["point"].values if others else [()]:
        sel = dict(zip(others, index if isinstance(index, tuple) else (index,), strict=True))
        m, s, t = (float(x.sel(sel)) for x in (mean, se, theory))
        extra = (
            [
                f"{float(ds[v].mean('seed').sel(sel) if 'seed' in ds[v].dims else ds[v].sel(sel)):.4f}"
                for v in ("heldout_risk", "train_risk", "gaussian_equivalent_risk")
            ]
            if data
            else []
        )
        rows.append(
            [
                *(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in sel.values()),
                f"{m:.4f}",
                f"{s:.4f}",
                *extra,
                f"{t:.4f}",
                f"{m - t:+.4f}",
                str(int(ok.sel(sel))),
            ]
        )
    extra = ["held-out", "train", "Gauss-equiv."] if data else []
    _print_table([*others, "risk", "± se", *extra, "theory", "gap", "ok runs"], rows)


def cmd_reproduce(args: argparse.Namespace) -> None:
    from aejax.reproduce import TARGETS, run

    if args.name not in TARGETS:
        raise _validate.InputError(f"unknown experiment {args.name!r}; allowed: {', '.join(sorted(TARGETS))}")
    written = run(args.name, size=args.size, out=args.out, progress=not args.quiet, data=args.data)
    for label, value in written.items():
        print(f"{label}: {value}")


def cmd_bench(args: argparse.Namespace) -> None:
    import runpy

    unknown = sorted(set(args.parts) - set(BENCHMARKS))
    if unknown:
        raise _validate.InputError(f"unknown benchmarks {unknown}; allowed: {', '.join(BENCHMARKS)}")
    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    if not folder.is_dir():
        raise _validate.InputError(f"benchmarks/ not found next to the package ({folder}); run from a source checkout")
    sys.path.insert(0, str(folder))
    for part in args.parts or BENCHMARKS:
        print(f"== {part}", flush=True)
        sys.argv = [f"bench_{part}.py", *(["--quick"] if args.quick else [])]
        runpy.run_path(str(folder / f"bench_{part}.py"), run_name="__main__")


SCALING_FIT_FAILED = 3  # exit status of `aejax scaling` when a fit failed (its files are still written)


def cmd_scaling(args: argparse.Namespace) -> int:
    if "," in args.along:
        return _cmd_scaling_joint(args)
    from aejax.scaling import report

    done = report(
        args.results, var=args.var, along=args.along, out=args.out, bootstrap=args.bootstrap, level=args.level
    )
    print(done["table"])
    for label, path in done["files"].items():
        print(f"{label}: {path}")
    if not done["failed"]:
        return 0
    print(
        f"aejax: fit failed (exit status {SCALING_FIT_FAILED}): {'; '.join(done['failed'])}. Its R∞ and α are not "
        "estimates of the limit and have no interval",
        file=sys.stderr,
    )
    return SCALING_FIT_FAILED


def _cmd_scaling_joint(args: argparse.Namespace) -> int:
    """``aejax scaling RESULTS --along d,time``: the joint law (``aejax.scaling.report_joint``)."""
    from aejax.scaling import report_joint

    along = tuple(a.strip() for a in args.along.split(","))
    if len(along) != 2 or not all(along):
        raise _validate.InputError(f"--along must be one axis or two (size,time), got {args.along!r}")
    done = report_joint(
        args.results, var=args.var, along=along, out=args.out, bootstrap=args.bootstrap, level=args.level
    )
    print(done["table"])
    for label, path in done["files"].items():
        print(f"{label}: {path}")
    if not done["failed"]:
        return 0
    print(f"aejax: fit failed (exit status {SCALING_FIT_FAILED}): {'; '.join(done['failed'])}", file=sys.stderr)
    return SCALING_FIT_FAILED


def cmd_theory(args: argparse.Namespace) -> None:
    from aejax.theory import format_table, prediction_table

    _validate.positive_number("--rates", args.rates)
    _validate.probability("--ps", args.ps)
    rows = prediction_table(ps=args.ps, rates=args.rates)
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))


def _print_table(header: list[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header)
    for row in rows:
        table.add_row(*[str(v) for v in row])
    Console().print(table)


def _interrupted(args: argparse.Namespace | None) -> str:
    """What an interrupted command kept, and how to continue (one line)."""
    if args is None:
        return "interrupted; nothing was kept"
    command = getattr(args, "command", None)
    if command == "sweep":
        out = Path(args.out) if args.out is not None else None
        where = f"{out / 'chunks'}" if out is not None else "<out>/chunks (the --out of the sweep)"
        return f"interrupted; finished chunks are kept in {where}: rerun the same command to resume"
    if command == "reproduce":
        return (
            f"interrupted; the finished chunks of its sweeps are kept under {args.out}: rerun the same command "
            "to resume"
        )
    return "interrupted; nothing was kept"


def use_compilation_cache() -> None:
    """Keep compiled programs on disk (JAX's persistent compilation cache), so a second identical
    command, or one that changes only swept values, compiles nothing: ``aejax.enable_compilation_cache``
    in its default directory (``$AEJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/aejax/jax`` or
    ``~/.cache/aejax/jax``), bounded to 2 GiB. A cache directory the user already gave JAX is left
    alone. Every program is kept, the small helpers too, so a second identical command compiles
    nothing (``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` sets a floor in seconds)."""
    import os

    import jax

    from aejax.cache import MIN_COMPILE_SECONDS, enable_compilation_cache

    # jax.config options are dynamic attributes, invisible to the type checker
    if jax.config.jax_compilation_cache_dir:  # pyright: ignore[reportAttributeAccessIssue]
        return
    minimum = os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
    enable_compilation_cache(min_compile_seconds=MIN_COMPILE_SECONDS if minimum is None else float(minimum))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aejax`` console script; returns the exit status.

    Errors the user caused (``aejax.InputError``/``InputTypeError`` from any check of the package,
    ``OSError`` for files and directories) print one line ``aejax: error: ...`` and give status 2;
    ``aejax scaling`` gives 3 when a fit failed (``SCALING_FIT_FAILED``);
    Ctrl-C prints what was kept and gives 130; anything else is a bug: its traceback is printed with
    a request for a bug report (status 1).
    """
    args = None
    show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        args = build_parser().parse_args(argv)
        if args.command in ("train", "sweep", "reproduce"):
            use_compilation_cache()
        handlers = {
            "train": cmd_train,
            "sweep": cmd_sweep,
            "theory": cmd_theory,
            "reproduce": cmd_reproduce,
            "bench": cmd_bench,
            "scaling": cmd_scaling,
        }
        status = handlers[args.command](args)
    except KeyboardInterrupt:
        print(f"aejax: {_interrupted(args)}", file=sys.stderr)
        return 130
    except (_validate.InputError, _validate.InputTypeError, OSError) as err:  # bad input, or an unusable file
        message = " ".join(str(err).split())  # one line, whatever the message holds
        print(f"aejax: error: {message}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print(
            "aejax: internal error: this is a bug in aejax, not in your input; please report it (the aejax "
            "issue tracker) with the command line and the traceback above",
            file=sys.stderr,
        )
        return 1
    finally:
        warnings.showwarning = show
    return status or 0


def run() -> NoReturn:
    """The ``aejax`` console script and ``python -m aejax``: ``main()``, then exit without the
    interpreter's teardown (``aejax._fast_exit``: 0.33 s of XLA freeing its programs, after every
    exit handler has run). ``main`` itself returns its status, for callers in Python."""
    from aejax._fast_exit import exit_now

    try:
        status: object = main()
    except SystemExit as stop:  # argparse: --help, a usage error
        status = stop.code
    exit_now(status)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line ``aejax: warning: ...`` (not Python's file:line and source excerpt), at most
    ``MAX_WARNING`` characters (a longer one, e.g. quoting a library's error, is cut and says so)."""
    text = " ".join(str(message).split())
    if len(text) > MAX_WARNING:
        text = f"{text[: MAX_WARNING - 40]} ... ({len(text) - MAX_WARNING + 40} more characters)"
    print(f"aejax: warning: {text}", file=sys.stderr if file is None else file)


MAX_WARNING = 400


if __name__ == "__main__":
    run()
