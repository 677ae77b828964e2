"""Where a sweep's time goes besides training steps: compilation, initialisation, the trace, the
final evaluation and the host's work, measured in one process for the default configuration.

For each d (rate 1, ``runs`` runs, ``steps`` steps, the defaults of ``aejax sweep``: online Adam,
batch 128, the default trace of ``TrainConfig.trace_count`` points and the default Monte Carlo
samples ``default_mc_samples(d)`` of the final risk), with the runs in one block as the sweep runs
them:

- ``compile_s``: tracing, lowering and compiling the block program (no persistent cache), as
  ``aejax.sweep`` reports it (``compile_seconds``);
- ``init_s``: the runs' initial weights and optimizer states (``Trainer.start``);
- ``train_s``: the training steps alone (``risk_eval="none"``, the time of the whole program minus
  its initialisation and final evaluation);
- ``trace_s``: the trace's risk evaluations: the time of one exact risk of every run, times the
  trace points but the last (which is the final weights' exact risk, reused by the record);
  ``program_s``, the default program as the sweep ran it (its runs' ``wall_time``), is printed for
  comparison with ``train_s + init_s + final_s + trace_s``;
- ``final_s``: the final record (Monte Carlo risk, exact risk, observables) of every run;
- ``host_s``: what ``aejax.sweep`` adds around the compiled program (planning, the chunk files,
  results.nc): its wall time minus compilation and the program;
- ``import_s``: ``import aejax.cli`` in a fresh interpreter (what every command pays first).

``fixed_fraction`` = (compile + init + trace + final + host + import) over their sum with
``train_s``: the share of a cold end-to-end run that is not training steps. ``trace_fraction`` =
trace over training (the budget is 5%).

Usage: ``python benchmarks/bench_fixed_costs.py [--quick]``
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
from _common import best_time, machine, write

from aejax import sweep
from aejax.config import TrainConfig
from aejax.devices import batch_runs, default_devices, make_mesh, use_all_cpu_cores
from aejax.programs import Program, run_blocks
from aejax.sweeping import default_mc_samples
from aejax.train import make_trainer

LR = 0.01


def block_inputs(runs: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    keys = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(0), runs)))
    return keys, {"lr": np.full((runs,), LR, np.float32)}


def program_seconds(config: TrainConfig, runs: int, mc_samples: int) -> float:
    """Wall time of one call of the (compiled) block program of ``runs`` runs on one device."""
    mesh = make_mesh(1)
    program = Program(config, mc_samples, ("lr",), runs)
    program.executable(mesh.devices.flat[0])
    keys, hparams = block_inputs(runs)
    start = time.perf_counter()
    run_blocks(program, mesh, keys, hparams)
    return time.perf_counter() - start


def start_eval_finish_seconds(config: TrainConfig, runs: int, mc_samples: int) -> tuple[float, float, float]:
    """Best wall times of the runs' initialisation, of one trace point's risk of every run, and of
    their final records."""
    trainer = make_trainer(config)
    keys, hparams = block_inputs(runs)

    def start(k, h):
        return trainer.start(jax.random.wrap_key_data(k), h)

    def point(state, h):
        return config.bind(h).exact_risk(state.params)

    def finish(state, k, h):
        return config.bind(h).record(state.params, state.trace, jax.random.wrap_key_data(k), mc_samples)

    start_fn = jax.jit(batch_runs(start, config, "cpu"))
    point_fn = jax.jit(batch_runs(point, config, "cpu"))
    finish_fn = jax.jit(batch_runs(finish, config, "cpu"))
    state = jax.block_until_ready(start_fn(keys, hparams))
    return (
        best_time(start_fn, keys, hparams),
        best_time(point_fn, state, hparams),
        best_time(finish_fn, state, keys, hparams),
    )


def sweep_seconds(config: TrainConfig, runs: int) -> tuple[float, float, float]:
    """``aejax.sweep`` writing its results, cold: (compile seconds, seconds in the compiled program
    (the runs' ``wall_time``), the rest of its wall time)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        ds = sweep(config, {"seed": list(range(runs))}, out=out, progress=False, devices=1)
        wall = time.perf_counter() - start
    compile_s, program_s = float(ds.attrs["compile_seconds"]), float(ds["wall_time"].sum())
    return compile_s, program_s, wall - compile_s - program_s


def import_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import aejax.cli"], check=True)
    return time.perf_counter() - start


def main() -> None:
    use_all_cpu_cores()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d = 64 and 128, 100 steps")
    args = parser.parse_args()
    cases = [(64, 4, 100), (128, 4, 100)] if args.quick else [(128, 16, 1000), (512, 4, 1000), (2048, 2, 1000)]
    imported = import_seconds()
    rows = []
    for d, runs, steps in cases:
        config = TrainConfig(d=d, n=d, steps=steps)
        assert default_devices() in (None, 1)
        mc = default_mc_samples(d)
        compile_s, full_s, host_s = sweep_seconds(config, runs)
        bare_s = program_seconds(dataclasses.replace(config, risk_eval="none"), runs, mc)
        init_s, point_s, final_s = start_eval_finish_seconds(config, runs, mc)
        train_s = bare_s - init_s - final_s
        trace_s = (config.trace_count - 1) * point_s  # the last point is the final exact risk
        fixed = compile_s + init_s + trace_s + final_s + host_s + imported
        row = {
            "d": d,
            "runs": runs,
            "steps": steps,
            "trace_points": config.trace_count,
            "mc_samples": mc,
            "compile_s": compile_s,
            "init_s": init_s,
            "train_s": train_s,
            "program_s": full_s,
            "trace_s": trace_s,
            "final_s": final_s,
            "host_s": host_s,
            "import_s": imported,
            "trace_fraction": trace_s / train_s,
            "fixed_fraction": fixed / (fixed + train_s),
        }
        rows.append(row)
        print(row, flush=True)
    write("fixed_costs", rows, {"machine": machine(), "lr": LR}, list(rows[0]))


if __name__ == "__main__":
    main()
