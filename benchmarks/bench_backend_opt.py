"""XLA's LLVM backend optimization level: compile time of a sweep's block program against its run time.

Most of a block program's XLA compile is LLVM generating code for its kernels (the threefry kernels
that draw each step's batch take most of it at small d). ``--xla_backend_optimization_level`` (XLA's
default is 2) trades that compile time for slower code. For each level and d, a fresh process (the
level is read from ``XLA_FLAGS`` once per process, with no persistent cache) compiles the block
program of ``bench_compile.bucket_programs`` (3 runs, ``time = 200``, the sweep's default trace
and Monte Carlo samples) and runs it: compile CPU seconds, the best of 3 runs' wall time, and the
final risks' largest relative difference from level 2's (the level changes float32 rounding, not
the random streams).

The test suite compiles at level 1 (tests/conftest.py); aejax itself uses XLA's default.

Usage: ``python benchmarks/bench_backend_opt.py [--dims 8,128] [--levels 2,1,0]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import jax, numpy as np
jax.config.update("jax_enable_compilation_cache", False)
import bench_compile
from aejax._sweep_plan import _shared_trace_points, default_mc_samples
from aejax.config import TrainConfig
d = int(sys.argv[2])
config = _shared_trace_points(TrainConfig(d=d, n=d, time=200.0))
fn, *shapes = bench_compile.bucket_programs(config, 3, default_mc_samples(d))["block"]
lowered = jax.jit(fn).trace(*shapes).lower()
cpu = time.process_time()
compiled = lowered.compile()
compile_cpu = time.process_time() - cpu
keys = jax.vmap(lambda s: jax.random.key_data(jax.random.key(s)))(np.arange(3))
hparams = {name: np.full(3, 1.0, np.float32) for name in shapes[1]}
runs = []
for _ in range(3):
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(keys, hparams))
    runs.append(time.perf_counter() - start)
risk = np.asarray(out["risk"], np.float64).ravel().tolist()
print(json.dumps({"compile_cpu_s": compile_cpu, "run_s": min(runs), "risk": risk}))
"""


def measure(level: str, d: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["XLA_FLAGS"] = f"--xla_backend_optimization_level={level}"
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, here, str(d)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dims", default="8,128", help="comma-separated d values")
    parser.add_argument("--levels", default="2,1,0", help="comma-separated levels; the first is the reference")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine, write

    levels = args.levels.split(",")
    rows = []
    for d in (int(v) for v in args.dims.split(",")):
        reference = None
        for level in levels:
            result = measure(level, d)
            risk = result.pop("risk")
            reference = reference or risk
            change = max(abs(a - b) / abs(b) for a, b in zip(risk, reference, strict=True))
            rows.append({"d": d, "level": level, **result, "risk_rel_change": change})
            print(rows[-1], flush=True)
    meta = {"machine": machine(), "program": "block, 3 runs, time=200, default trace and Monte Carlo samples"}
    write("backend_opt", rows, meta, ["d", "level", "compile_cpu_s", "run_s", "risk_rel_change"])


if __name__ == "__main__":
    main()
