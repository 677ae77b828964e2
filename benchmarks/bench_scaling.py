"""How the cost of a sweep grows: time per step vs d (fitted exponent), vs runs, vs devices;
memory per run vs d and the largest d that fits a memory size; compile time and count.

Memory comes from the compiled programs' ``memory_analysis()`` (nothing is allocated to find the
largest d). The device scan starts one subprocess per device count with that many fake CPU
devices: on one 2-core CPU this measures the sharding overhead, not a speed-up.

Usage: ``python benchmarks/bench_scaling.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

import jax
import numpy as np
from _common import best_time, machine, write

from aejax.config import TrainConfig
from aejax.devices import make_mesh
from aejax.programs import Program, run_blocks
from aejax.sweeping import sweep

BATCH = 128
GIB = 2**30


def config_for(d: int, rate: float = 1.0, steps: int = 20) -> TrainConfig:
    return TrainConfig(d=d, n=max(1, round(rate * d)), steps=steps, batch=BATCH, risk_eval="none", eval_every=steps)


def time_per_step(d: int, runs: int, steps: int, rate: float = 1.0) -> float:
    """Seconds per step of ``runs`` vmapped runs (the sweep's chunk program, all devices)."""
    mesh = make_mesh()
    width = math.ceil(runs / mesh.devices.size)
    runs = width * mesh.devices.size
    program = Program(config_for(d, rate, steps), 256, ("lr",), width)
    for device in mesh.devices.flat:
        program.executable(device)
    keys = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(0), runs)))
    hparams = {"lr": np.full((runs,), 0.01, np.float32)}
    return best_time(lambda: run_blocks(program, mesh, keys, hparams), repeat=2) / steps


def fit_exponent(x: list[float], y: list[float]) -> tuple[float, float]:
    """Slope of log y on log x and its standard error."""
    if len(x) < 4:
        return float(np.polyfit(np.log(x), np.log(y), 1)[0]), float("nan")
    coef, cov = np.polyfit(np.log(x), np.log(y), 1, cov=True)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


def memory_per_device(d: int, runs: int, rate: float = 2.0) -> int:
    program = Program(config_for(d, rate, steps=10), 1024, ("lr",), runs)
    return program.measure(make_mesh(1).devices.flat[0]).bytes_per_device


def largest_d(runs: int, budget: float, dims: list[int]) -> tuple[int, list[int]]:
    """Largest d whose program for ``runs`` runs fits ``budget`` bytes: fit bytes = a·d² + b·d + c."""
    used = [memory_per_device(d, runs) for d in dims]
    a, b, c = np.polyfit(dims, used, 2)
    roots = np.roots([a, b, c - budget])
    return int(max(r.real for r in roots if abs(r.imag) < 1e-9 and r.real > 0)), used


def device_scan(counts: list[int], d: int, runs: int, steps: int) -> list[dict]:
    rows = []
    for count in counts:
        code = (
            f"import jax; jax.config.update('jax_num_cpu_devices', {count}); import sys; "
            f"sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r}); "
            f"import bench_scaling as b, json; print(json.dumps(b.time_per_step({d}, {runs}, {steps})))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, check=True)
        rows.append({"devices": count, "seconds_per_step": json.loads(out.stdout.strip().splitlines()[-1])})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    quick = args.quick
    dims = [64, 128, 256] if quick else [64, 128, 256, 512, 1024]
    rows = []
    per_step = [time_per_step(d, 8, 20) for d in dims]
    exponent, err = fit_exponent(dims, per_step)
    rows += [{"scan": "d", "d": d, "runs": 8, "seconds_per_step": t} for d, t in zip(dims, per_step, strict=True)]
    run_counts = [1, 4, 16] if quick else [1, 2, 4, 8, 16, 32, 64]
    for runs in run_counts:
        t = time_per_step(128, runs, 20)
        rows.append({"scan": "runs", "d": 128, "runs": runs, "seconds_per_step": t, "per_run_step": t / runs})
    for row in device_scan([1, 2, 4], 128, 16, 20):
        rows.append({"scan": "devices", "d": 128, "runs": 16, **row})
    mem_dims = [128, 256, 512] if quick else [256, 512, 1024, 2048]
    for d in mem_dims:
        rows.append({"scan": "memory r=2", "d": d, "runs": 1, "bytes_per_run": memory_per_device(d, 1)})
    fit_largest_one, _ = largest_d(1, 24 * GIB, mem_dims)
    fit_largest_64, _ = largest_d(64, 24 * GIB, mem_dims)
    small = config_for(64, 1.0, steps=50)
    grid = {"seed": [0, 1, 2], "rate": [0.25, 0.5, 1.0, 1.5, 2.0]}
    first = sweep(small, grid, progress=False, mc_samples=1024)
    again = sweep(small, {**grid, "seed": [3, 4, 5]}, progress=False, mc_samples=1024)
    meta = {
        "machine": machine(),
        "time_vs_d_exponent": exponent,
        "time_vs_d_exponent_se": err,
        "largest_d_r2_one_run_24GiB": fit_largest_one,
        "largest_d_r2_64_runs_unchunked_24GiB": fit_largest_64,
        "sweep_compilations": first.attrs["compilations"],
        "sweep_compile_s": first.attrs["compile_seconds"],
        "sweep_padding_overhead": first.attrs["padding_overhead"],
        "resweep_new_seeds_compilations": again.attrs["compilations"],
    }
    print(json.dumps(meta, indent=1, default=str))
    write("scaling", rows, meta, ["scan", "d", "runs", "devices", "seconds_per_step", "per_run_step", "bytes_per_run"])


if __name__ == "__main__":
    main()
