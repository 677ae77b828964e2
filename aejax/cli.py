"""The ``aejax`` command: ``train``, ``sweep``, ``theory``, ``reproduce`` and ``bench``.

Bad input prints one line ``aejax: error: ...`` naming the argument and exits with status 2.

Example:
    $ aejax sweep --d 256 --rates 0.25,0.5,1,1.5,2 --seeds 0,1,2 --out runs/sweep
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from aejax import _validate

BENCHMARKS = ("sweep", "risk", "scaling")
SWEEP_DEFAULTS = {"d": 256, "rates": "0.25,0.5,1,1.5,2", "seeds": "0,1,2", "steps": 1000, "batch": 128,
                  "lr": 0.01, "out": "runs/sweep"}


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--d", type=int, help="input dimension")
    p.add_argument("--steps", type=int, help="optimizer steps")
    p.add_argument("--batch", type=int, help="samples per step")
    p.add_argument("--mode", choices=["online", "dataset", "population"], help="training mode")
    p.add_argument("--activation", help="sign, helu, relu, tanh or linear")
    p.add_argument("--surrogate", help="surrogate derivative of sign (clip, ste, tanh, ...)")
    p.add_argument("--optimizer", help="optimizer name (adam, sgd, ...)")
    p.add_argument("--schedule", help="constant, cosine or linear")
    p.add_argument("--source", help="gaussian, bernoulli_gaussian (bg) or sparse_rademacher (sr)")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line ``aejax: error: ...`` (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"aejax: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aejax`` command."""
    parser = _Parser(prog="aejax", description="Simulate two-layer autoencoders x̂ = A σ(Bx) "
                     "and compare them with theory.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one autoencoder and print its risk next to theory")
    _add_model_flags(train)
    train.add_argument("--rate", type=float, default=1.0, help="rate r = n/d (default 1)")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--slope", type=float, help="surrogate slope")
    train.add_argument("--p", type=float, help="sparsity of a sparse source")
    train.add_argument("--seed", type=int, default=0, help="random seed")

    sweep = sub.add_parser("sweep", help="train a grid of runs, write netCDF results and a figure")
    _add_model_flags(sweep)
    sweep.add_argument("--config", type=Path, help="TOML file with [train], [grid] and [sweep] tables")
    sweep.add_argument("--rates", type=_floats, help=f"comma-separated rates (default {SWEEP_DEFAULTS['rates']})")
    sweep.add_argument("--seeds", type=_ints, help=f"comma-separated seeds (default {SWEEP_DEFAULTS['seeds']})")
    sweep.add_argument("--lr", type=_floats, help="comma-separated learning rates")
    sweep.add_argument("--slope", type=_floats, help="comma-separated surrogate slopes")
    sweep.add_argument("--p", type=_floats, help="comma-separated sparsities")
    sweep.add_argument("--out", type=Path, help=f"output directory (default {SWEEP_DEFAULTS['out']})")
    sweep.add_argument("--resume", action="store_true", help="continue the sweep already in --out")
    sweep.add_argument("--devices", type=int, help="number of devices to shard runs over (default all)")
    sweep.add_argument("--chunk", type=int, help="runs per compiled chunk (default from the memory budget)")
    sweep.add_argument("--mc-samples", type=int, help="Monte Carlo samples for each final risk")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.add_argument("--coordinator", help="multi-host: coordinator address host:port")
    sweep.add_argument("--num-processes", type=int, help="multi-host: number of processes")
    sweep.add_argument("--process-id", type=int, help="multi-host: this process's index")

    rep = sub.add_parser("reproduce", help="reproduce a paper experiment: figure, netCDF and markdown table")
    rep.add_argument("name", help="experiment name (see aejax.reproduce.TARGETS)")
    rep.add_argument("--size", choices=["tiny", "small", "large"], default="small",
                     help="tiny (seconds), small (minutes on a CPU) or large (accelerator)")
    rep.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="output directory")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")

    bench = sub.add_parser("bench", help="run the benchmark suite (from a source checkout)")
    bench.add_argument("parts", nargs="*", help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}")
    bench.add_argument("--quick", action="store_true", help="small sizes")

    th = sub.add_parser("theory", help="table of theory predictions")
    th.add_argument("--rates", type=_floats, default=[0.5, 1.0, 2.0], help="comma-separated rates")
    th.add_argument("--ps", type=_floats, default=[0.1, 0.3, 0.5, 1.0], help="comma-separated sparsities")
    th.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _train_fields(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    fields = dict(base)
    for name in ("d", "steps", "batch", "mode", "activation", "surrogate", "optimizer", "schedule", "source"):
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    return fields


def cmd_train(args: argparse.Namespace) -> None:
    import jax

    from aejax import theory
    from aejax.sweep import run_key
    from aejax.risk import mc_risk
    from aejax.train import TrainConfig, full_hparams, make_train

    fields = _train_fields(args, {"d": 128, "steps": 2000, "batch": 256, "schedule": "cosine"})
    d = _validate.positive_int("--d", fields["d"])
    _validate.positive_number("--rate", args.rate)
    n = max(1, round(args.rate * d))
    config = TrainConfig(n=n, **fields)
    hparams = {k: getattr(args, k) for k in ("lr", "slope", "p") if getattr(args, k) is not None}
    hparams["rate"] = args.rate
    key = run_key(0, args.seed)
    params, trace = jax.jit(make_train(config))(key, hparams)
    hp = full_hparams(config, hparams)
    risk, se = mc_risk(params, config.make_source(hp), jax.random.fold_in(key, 1), 100_000, **config.model_kw(hp))
    limit = float(theory.gaussian_limit(args.rate, config.activation))
    rows = [("rate", f"{args.rate:g}"), ("activation", config.activation), ("mode", config.mode),
            ("steps", str(config.steps)), ("risk (Monte Carlo)", f"{float(risk):.4f} ± {float(se):.4f}"),
            ("theory (Gaussian limit)", f"{limit:.4f}"), ("Shannon bound", f"{float(theory.shannon_limit(args.rate)):.4f}"),
            ("PCA", f"{float(theory.pca_risk(args.rate)):.4f}")]
    _print_table(["quantity", "value"], rows)


def _load_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise ValueError(f"--config {str(path)!r} cannot be read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"--config {str(path)!r} is not valid TOML: {err}") from None
    unknown = sorted(set(data) - {"train", "grid", "sweep"})
    if unknown:
        raise ValueError(f"--config {str(path)!r} has unknown tables {unknown}; allowed: train, grid, sweep")
    return data


def use_all_cpu_cores() -> None:
    """One JAX CPU device per core (before JAX starts), so small CPU runs can be spread over them
    (see ``aejax.sweep.default_devices``). A device count already chosen — ``jax_num_cpu_devices``
    or XLA_FLAGS — is left alone."""
    import os

    import jax

    chosen = jax.config.jax_num_cpu_devices != -1
    if not chosen and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)


def cmd_sweep(args: argparse.Namespace) -> None:
    import jax

    use_all_cpu_cores()
    if args.coordinator or args.num_processes or args.process_id is not None:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    from aejax.grid import Grid
    from aejax.plot import plot_risk_vs_rate
    from aejax.sweep import sweep
    from aejax.train import TrainConfig

    file = _load_toml(args.config)
    fields = _train_fields(args, {"d": SWEEP_DEFAULTS["d"], "steps": SWEEP_DEFAULTS["steps"],
                                  "batch": SWEEP_DEFAULTS["batch"], "schedule": "cosine", **file.get("train", {})})
    grid = dict(file.get("grid", {}))
    grid.setdefault("seed", _ints(SWEEP_DEFAULTS["seeds"]))
    grid.setdefault("rate", _floats(SWEEP_DEFAULTS["rates"]))
    grid.setdefault("lr", [SWEEP_DEFAULTS["lr"]])
    for flag, axis in (("seeds", "seed"), ("rates", "rate"), ("lr", "lr"), ("slope", "slope"), ("p", "p")):
        if getattr(args, flag) is not None:
            grid[axis] = getattr(args, flag)
    options = dict(file.get("sweep", {}))
    out = Path(args.out or options.pop("out", SWEEP_DEFAULTS["out"]))
    for flag, name in (("devices", "devices"), ("chunk", "chunk"), ("mc_samples", "mc_samples")):
        if getattr(args, flag) is not None:
            options[name] = getattr(args, flag)
    d = _validate.positive_int("d", fields["d"])
    rates = [run["rate"] for run in Grid.from_spec(grid, d).runs]
    fields.setdefault("n", max(1, round(max(rates) * d)))
    config = TrainConfig(**fields)
    resume = args.resume or options.pop("resume", False)
    progress = not args.quiet and options.pop("progress", True)
    ds = sweep(config, grid, out=out, resume=resume, progress=progress, **options)

    if jax.process_index() != 0:
        return
    figure = plot_risk_vs_rate(ds, out / "risk_vs_rate.png", config.activation,
                               title=f"{config.activation}, {config.mode}, d={config.d}, {config.steps} steps")
    _print_sweep_table(ds)
    print(f"results: {out / 'results.nc'}\nfigure:  {figure}")


def _print_sweep_table(ds) -> None:
    risk = ds["risk"]
    others = [dim for dim in risk.dims if dim != "seed"]
    mean = risk.mean("seed") if "seed" in risk.dims else risk
    if risk.sizes.get("seed", 1) > 1:
        se = risk.std("seed", ddof=1) / risk.sizes["seed"] ** 0.5
    else:  # one seed: the Monte Carlo standard error
        se = ds["risk_se"].isel(seed=0) if "seed" in risk.dims else ds["risk_se"]
    theory = ds["theory"].isel(seed=0) if "seed" in ds["theory"].dims else ds["theory"]
    ok = (ds["status"] == "ok").sum("seed") if "seed" in ds["status"].dims else (ds["status"] == "ok")
    rows = []
    for index in mean.stack(point=others)["point"].values if others else [()]:
        sel = dict(zip(others, index if isinstance(index, tuple) else (index,)))
        m, s, t = (float(x.sel(sel)) for x in (mean, se, theory))
        rows.append([*(f"{v:g}" for v in sel.values()), f"{m:.4f}", f"{s:.4f}", f"{t:.4f}", f"{m - t:+.4f}",
                     str(int(ok.sel(sel)))])
    _print_table([*others, "risk", "± se", "theory", "gap", "ok runs"], rows)


def cmd_reproduce(args: argparse.Namespace) -> None:
    from aejax.reproduce import TARGETS, run

    if args.name not in TARGETS:
        raise ValueError(f"unknown experiment {args.name!r}; allowed: {', '.join(sorted(TARGETS))}")
    written = run(args.name, size=args.size, out=args.out, progress=not args.quiet)
    for label, value in written.items():
        print(f"{label}: {value}")


def cmd_bench(args: argparse.Namespace) -> None:
    import runpy

    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    if not folder.is_dir():
        raise ValueError(f"benchmarks/ not found next to the package ({folder}); run from a source checkout")
    unknown = sorted(set(args.parts) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; allowed: {', '.join(BENCHMARKS)}")
    sys.path.insert(0, str(folder))
    for part in args.parts or BENCHMARKS:
        print(f"== {part}", flush=True)
        sys.argv = [f"bench_{part}.py", *(["--quick"] if args.quick else [])]
        runpy.run_path(str(folder / f"bench_{part}.py"), run_name="__main__")


def cmd_theory(args: argparse.Namespace) -> None:
    from aejax.theory import format_table, prediction_table

    _validate.positive_number("--rates", args.rates)
    _validate.probability("--ps", args.ps)
    rows = prediction_table(ps=args.ps, rates=args.rates)
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header)
    for row in rows:
        table.add_row(*[str(v) for v in row])
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aejax`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"train": cmd_train, "sweep": cmd_sweep, "theory": cmd_theory, "reproduce": cmd_reproduce,
                "bench": cmd_bench}
    try:
        handlers[args.command](args)
    except (ValueError, TypeError, OSError) as err:  # bad input, or an unusable file or directory
        print(f"aejax: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
