"""Where a cold sweep's compile time goes: per program and per stage (tracing, lowering, XLA).

For each shape bucket of the issue-25 sweep (d = 32, 64, 128 × rates 0.5 and 1 × 3 seeds,
``time = 200``, the defaults of ``aejax.sweep``: online Adam, batch 128, the default trace and Monte
Carlo samples), every program is built as the sweep builds it for one block of runs and taken
through JAX's ahead-of-time stages, timed back to back in one process (no persistent cache):
``jax.jit(f).trace(*shapes)`` (tracing the Python program to a jaxpr), ``.lower()`` (StableHLO)
and ``.compile()`` (XLA). The programs:

- ``block``: the whole block program that ``aejax.sweep`` compiles (training, trace, record);
- ``block_exported``: the same, the way the sweep compiles it (``jax.export``, then its ``call``);
- ``train``: the training scan alone (``risk_eval="none"``: steps and traced observables);
- ``exact_risk``: one exact risk of every run of the block (the trace's evaluation: arcsin, solve);
- ``mc_risk``: the final Monte Carlo risk of every run;
- ``record``: the final record (Monte Carlo risk, observables) from the weights and the trace.

The parts are compiled as separate programs, so their sum is not exactly the block's time (XLA
optimises the block as one program), but they show which part is large. Then the whole sweep runs
cold in the same process (``aejax.sweep``, every program compiled again from scratch after
``jax.clear_caches()``), and again warm, with its wall time, its programs and its compile seconds; the cold sweep runs
twice, with the bucket programs compiled one after another as they are planned (``serial``, as
before issue 25) and compiled ahead in background threads (``cold``, the default), back to back.

Usage: ``python benchmarks/bench_compile.py [--quick] [--tag before|after]``
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import numpy as np
from _common import machine, write

import aejax
from aejax import _sweep_execute, programs
from aejax._sweep_plan import _shared_trace_points, default_mc_samples
from aejax._threefry import wrap_key_data
from aejax.config import TrainConfig
from aejax.devices import batch_runs
from aejax.grid import bucket_sizes, units
from aejax.programs import block_shapes, make_run
from aejax.train import make_train

DIMS = (32, 64, 128)
RATES = (0.5, 1.0)
SEEDS = (0, 1, 2)
TIME = 200.0
COLUMNS = ("trace_s", "lower_s", "compile_s", "total_s", "trace_cpu_s", "lower_cpu_s", "compile_cpu_s", "total_cpu_s")


def buckets(dims=DIMS, rates=RATES, max_padding: float = 0.25) -> list[tuple[int, int, int]]:
    """The (d, n, rates in the bucket) shape buckets the sweep compiles, as ``aejax.sweep`` groups them."""
    out = []
    for d in dims:
        sizes = bucket_sizes([units(r, d) for r in rates], max_padding, 1.0)
        out += [(d, n, sum(1 for m in sizes.values() if m == n)) for n in sorted(set(sizes.values()), reverse=True)]
    return out


def stages(fn, *shapes) -> dict[str, float]:
    """Seconds of each AOT stage of ``jax.jit(fn)`` at ``shapes``: wall time, and the process's CPU
    time (``*_cpu_s``, every thread), which a busy machine inflates less than the wall time."""
    jitted = jax.jit(fn)
    marks = [(time.perf_counter(), time.process_time())]
    traced = jitted.trace(*shapes)
    marks.append((time.perf_counter(), time.process_time()))
    lowered = traced.lower()
    marks.append((time.perf_counter(), time.process_time()))
    lowered.compile()
    marks.append((time.perf_counter(), time.process_time()))
    out = {}
    for i, stage in enumerate(("trace", "lower", "compile")):
        out[f"{stage}_s"] = marks[i + 1][0] - marks[i][0]
        out[f"{stage}_cpu_s"] = marks[i + 1][1] - marks[i][1]
    return out


def export_stages(fn, *shapes) -> dict[str, float]:
    """``stages`` of the path the sweep compiles a block by (``Program.compile``): ``jax.export``
    (tracing and lowering, in the ``trace`` columns), lowering the export's ``call`` (``lower``),
    XLA (``compile``). A new process with the program store skips the first."""
    marks = [(time.perf_counter(), time.process_time())]
    exported = jax.export.export(jax.jit(fn))(*shapes)
    marks.append((time.perf_counter(), time.process_time()))
    lowered = jax.jit(exported.call).lower(*shapes)
    marks.append((time.perf_counter(), time.process_time()))
    lowered.compile()
    marks.append((time.perf_counter(), time.process_time()))
    out = {}
    for i, stage in enumerate(("trace", "lower", "compile")):
        out[f"{stage}_s"] = marks[i + 1][0] - marks[i][0]
        out[f"{stage}_cpu_s"] = marks[i + 1][1] - marks[i][1]
    return out


def bucket_programs(config: TrainConfig, width: int, mc_samples: int) -> dict[str, tuple]:
    """The programs of one bucket's block of ``width`` runs and their argument shapes."""
    names = ("rate",)
    keys, hparams = block_shapes(width, names)
    wrap = wrap_key_data  # the engine's keys (aejax._threefry), as in the block program
    quiet = dataclasses.replace(config, risk_eval="none")
    train = make_train(config)
    params, trace = jax.eval_shape(jax.vmap(lambda k, h: train(wrap(k), h)), keys, hparams)

    def vm(fn):
        return batch_runs(fn, config, "cpu")

    return {
        "block": (vm(make_run(config, mc_samples)), keys, hparams),
        "train": (vm(lambda k, h: make_train(quiet)(wrap(k), h)), keys, hparams),
        "exact_risk": (vm(lambda p, h: config.bind(h).exact_risk(p)), params, hparams),
        "mc_risk": (vm(lambda p, k, h: config.bind(h).mc_risk(p, wrap(k), mc_samples)), params, keys, hparams),
        "record": (
            vm(lambda p, t, k, h: config.bind(h).record(p, t, wrap(k), mc_samples)),
            params,
            trace,
            keys,
            hparams,
        ),
    }


def sweep_seconds(config: TrainConfig, dims, rates, seeds) -> dict[str, float]:
    """Wall and CPU time, programs compiled and compile seconds (the sum over programs) of the
    sweep cold with every program compiled in turn when planned (``serial``), cold again with the
    programs compiled ahead in background threads (``cold``, the default), then warm."""
    grid = {"d": list(dims), "rate": list(rates), "seed": list(seeds)}
    out = {}
    for label in ("serial", "cold", "warm"):
        if label != "warm":
            jax.clear_caches()
            programs._EXECUTABLES.clear()
        ahead = _sweep_execute.compile_ahead
        if label == "serial":
            _sweep_execute.compile_ahead = lambda jobs: 0  # type: ignore[assignment]
        start, cpu = time.perf_counter(), time.process_time()
        try:
            ds = aejax.sweep(config, grid, progress=False)
        finally:
            _sweep_execute.compile_ahead = ahead
        out[f"{label}_wall_s"] = time.perf_counter() - start
        out[f"{label}_cpu_s"] = time.process_time() - cpu
        out[f"{label}_compilations"] = int(ds.attrs["compilations"])
        out[f"{label}_compile_s"] = float(ds.attrs["compile_seconds"])
    return out


def _total(times: dict[str, float]) -> dict[str, float]:
    return {
        "total_s": sum(v for k, v in times.items() if not k.endswith("cpu_s")),
        "total_cpu_s": sum(v for k, v in times.items() if k.endswith("cpu_s")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d = 32 only, one seed")
    parser.add_argument("--tag", default="", help="suffix of the result files (e.g. before, after)")
    args = parser.parse_args()
    dims, seeds = ((32,), (0,)) if args.quick else (DIMS, SEEDS)
    base = _shared_trace_points(TrainConfig(d=dims[0], n=dims[0], time=TIME))
    rows = []
    for d, n, rates in buckets(dims):
        config = dataclasses.replace(base, d=d, n=n)
        width = programs.default_runs_per_device(len(seeds) * rates, jax.devices()[0].platform, config)
        for name, (fn, *shapes) in bucket_programs(config, width, default_mc_samples(d)).items():
            times = stages(fn, *shapes)
            rows.append({"d": d, "n": n, "runs": width, "program": name, **times, **_total(times)})
            print(rows[-1], flush=True)
            if name == "block":  # and again the way the sweep compiles it (jax.clear_caches: traced anew)
                jax.clear_caches()
                exported = export_stages(fn, *shapes)
                row = {"d": d, "n": n, "runs": width, "program": "block_exported"}
                rows.append({**row, **exported, **_total(exported)})
                print(rows[-1], flush=True)
    for name in ("block", "block_exported", "train", "exact_risk", "mc_risk", "record"):
        part = [r for r in rows if r["program"] == name]
        rows.append(
            {
                "d": "all",
                "n": "",
                "runs": "",
                "program": name,
                **{k: float(np.sum([r[k] for r in part])) for k in COLUMNS},
            }
        )
    sweep = sweep_seconds(base, dims, RATES, seeds)
    print(sweep, flush=True)
    meta = {
        "machine": machine(),
        "sweep": f"d={list(dims)} rates={list(RATES)} seeds={list(seeds)} time={TIME}",
        **sweep,
    }
    name = "compile" + (f"-{args.tag}" if args.tag else "")
    write(name, rows, meta, ["d", "n", "runs", "program", *COLUMNS])


if __name__ == "__main__":
    main()
