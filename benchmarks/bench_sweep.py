"""Sweep throughput (runs × steps per second) against per-run baselines, and useful FLOP/s.

Compared, in one process, on the same training (online Adam, sign with the clip surrogate,
row-normalised encoder, rate 1, batch 128, cosine schedule) and the same final Monte Carlo risk:

- ``sweep``: the block programs of ``aejax.sweep``, the way it runs them (its default mesh and
  block width; on a CPU one device whose blocks run at once on one thread per core, see
  ``aejax.devices.block_threads``);
- ``loop``: a Python loop of jitted single runs with exact shapes (asynchronous dispatch allowed);
- ``torch``: the same training in eager PyTorch (``_torch_baselines``), one run after another
  (skipped without torch);
- ``numpy``: the same training with hand-written gradients in NumPy.

Compilation is excluded from throughput and reported separately. Useful FLOP/s count only the
five ``batch × d × n`` matrix products of a training step (10·b·d·n FLOPs) and the two of each
Monte Carlo sample, padding excluded, and are given as a fraction of the float32 matmul rate
measured in the same process; ``cost_analysis()`` of a one-step program cross-checks the count.

Usage: ``python benchmarks/bench_sweep.py [--quick] [--torch-threads K]``
"""

from __future__ import annotations

import argparse
import math
import time

import _torch_baselines
import jax
import jax.numpy as jnp
import numpy as np
from _common import best_time, machine, matmul_flops_per_second, write

from aejax.config import TrainConfig
from aejax.devices import block_threads, default_devices, make_mesh, memory_budget_bytes
from aejax.model import init
from aejax.programs import Program, default_runs_per_device, make_run, run_blocks

BATCH = 128
MC_SAMPLES = 1024
LR = 0.01


def config_for(d: int, steps: int) -> TrainConfig:
    return TrainConfig(d=d, n=d, steps=steps, batch=BATCH, schedule="cosine", risk_eval="none", eval_every=steps)


def steps_for(d: int, runs: int, flop_budget: float) -> int:
    return int(np.clip(flop_budget / (10 * BATCH * d * d * runs), 5, 200))


def useful_flops(d: int, n: int, steps: int, runs: int) -> float:
    return runs * (10 * BATCH * d * n * steps + 4 * d * n * MC_SAMPLES)


def time_sweep(config: TrainConfig, runs: int) -> tuple[float, float]:
    """The sweep's way: its default mesh, block width and blocks at once per device."""
    mesh = make_mesh(default_devices())
    width = default_runs_per_device(runs, mesh.devices.flat[0].platform, config)
    program = Program(config, MC_SAMPLES, ("lr",), width)
    for device in mesh.devices.flat:
        program.measure(device)
    threads = block_threads(mesh, config, program.bytes_per_device, memory_budget_bytes(mesh))
    chunk = width * math.ceil(runs / width)
    keys = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(0), chunk)))
    hparams = {"lr": np.full((chunk,), LR, np.float32)}
    return best_time(lambda: run_blocks(program, mesh, keys, hparams, threads), repeat=2), program.compile_seconds


def time_loop(config: TrainConfig, runs: int) -> tuple[float, float]:
    single = jax.jit(make_run(config, MC_SAMPLES))
    keys = jax.random.key_data(jax.random.split(jax.random.key(0), runs))
    start = time.perf_counter()
    jax.block_until_ready(single(keys[0], {"lr": LR}))
    compile_seconds = time.perf_counter() - start
    return best_time(lambda: [single(k, {"lr": LR}) for k in keys], repeat=2), compile_seconds


def time_torch(config: TrainConfig, runs: int) -> float | None:
    """Seconds for ``runs`` eager PyTorch runs one after another (``_torch_baselines``), after a warm-up run."""
    if not _torch_baselines.available():
        return None
    return _torch_baselines.time_runs(
        config.d, config.n, config.steps, runs, mode="eager", batch=BATCH, lr=LR, mc_samples=MC_SAMPLES
    )


def time_numpy(config: TrainConfig, runs: int) -> float:
    rng = np.random.default_rng(0)
    d, n = config.d, config.n

    def one_run():
        B = rng.standard_normal((n, d), dtype=np.float32) / np.sqrt(d)
        A = np.zeros((d, n), np.float32)
        state = [np.zeros_like(A), np.zeros_like(A), np.zeros_like(B), np.zeros_like(B)]
        for t in range(config.steps):
            x = rng.standard_normal((BATCH, d), dtype=np.float32)
            norms = np.linalg.norm(B, axis=1, keepdims=True)
            Bn = B / norms
            u = x @ Bn.T
            s = np.where(u >= 0, 1.0, -1.0).astype(np.float32)
            err = s @ A.T - x
            scale = 2 / (BATCH * d)
            gA = scale * err.T @ s
            gu = scale * (err @ A) * (np.abs(u) <= 1)
            gBn = gu.T @ x
            gB = (gBn - Bn * np.sum(gBn * Bn, axis=1, keepdims=True)) / norms
            lr = LR * 0.5 * (1 + np.cos(np.pi * t / config.steps))
            for i, (p, g) in enumerate(((A, gA), (B, gB))):
                m, v = state[2 * i], state[2 * i + 1]
                m[:] = 0.9 * m + 0.1 * g
                v[:] = 0.999 * v + 0.001 * g * g
                p -= lr * (m / (1 - 0.9 ** (t + 1))) / (np.sqrt(v / (1 - 0.999 ** (t + 1))) + 1e-8)
        x = rng.standard_normal((MC_SAMPLES, d), dtype=np.float32)
        return float(np.mean((x - np.sign(x @ B.T) @ A.T) ** 2))

    start = time.perf_counter()
    for _ in range(runs):
        one_run()
    return time.perf_counter() - start


def analytic_vs_cost_analysis(d: int) -> float:
    """Ratio of XLA's FLOP count for one training step (loss and gradient) to the analytic 10·b·d·n."""
    config = config_for(d, 1)
    model = config.bind({"lr": LR})
    params = init(jax.random.key(0), d, d)
    x = jnp.zeros((BATCH, d))
    analysis = jax.jit(jax.value_and_grad(model.loss)).lower(params, x).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis.get("flops", float("nan"))) / (10 * BATCH * d * d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grid (d <= 128) for a smoke run")
    parser.add_argument("--flop-budget", type=float, default=4e10, help="FLOPs per measurement (sets steps)")
    parser.add_argument("--skip", default="", help="comma-separated baselines to skip: torch, numpy")
    parser.add_argument("--torch-threads", type=int, help="PyTorch intra-op threads (default: PyTorch's)")
    args = parser.parse_args()
    if args.torch_threads:
        _torch_baselines.use_threads(args.torch_threads)
    dims = [32, 128] if args.quick else [32, 128, 512, 2048]
    run_counts = [1, 8] if args.quick else [1, 8, 64]
    peak = matmul_flops_per_second()
    print(f"f32 matmul rate: {peak / 1e9:.1f} GFLOP/s", flush=True)
    rows = []
    for d in dims:
        ratio = analytic_vs_cost_analysis(d)
        for runs in run_counts:
            steps = steps_for(d, runs, args.flop_budget)
            config = config_for(d, steps)
            t_sweep, c_sweep = time_sweep(config, runs)
            t_loop, c_loop = time_loop(config, runs)
            skip = set(args.skip.split(","))
            t_torch = None if "torch" in skip else time_torch(config, runs)
            t_numpy = time_numpy(config, runs) if d <= 512 and "numpy" not in skip else None
            work = runs * steps
            row = {
                "d": d,
                "runs": runs,
                "steps": steps,
                "sweep_runsteps_per_s": work / t_sweep,
                "loop_runsteps_per_s": work / t_loop,
                "speedup_vs_loop": t_loop / t_sweep,
                "speedup_vs_torch": None if t_torch is None else t_torch / t_sweep,
                "speedup_vs_numpy": None if t_numpy is None else t_numpy / t_sweep,
                "useful_gflops": useful_flops(d, d, steps, runs) / t_sweep / 1e9,
                "fraction_of_matmul": useful_flops(d, d, steps, runs) / t_sweep / peak,
                "compile_s_sweep": c_sweep,
                "compile_s_loop": c_loop,
                "xla_vs_analytic_flops": ratio,
            }
            rows.append(row)
            print(row, flush=True)
    meta = {"machine": machine(), "matmul_gflops": peak / 1e9, "batch": BATCH, "mc_samples": MC_SAMPLES}
    write(
        "sweep_throughput",
        rows,
        meta,
        [
            "d",
            "runs",
            "steps",
            "sweep_runsteps_per_s",
            "speedup_vs_loop",
            "speedup_vs_torch",
            "speedup_vs_numpy",
            "useful_gflops",
            "fraction_of_matmul",
            "compile_s_sweep",
            "xla_vs_analytic_flops",
        ],
    )


if __name__ == "__main__":
    main()
