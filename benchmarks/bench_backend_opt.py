"""XLA:CPU compile settings: compile time of a sweep's block program against its run time, and of tiny programs.

Most of a block program's XLA compile is LLVM generating code for its kernels (the threefry kernels
that draw each step's batch take most of it at small d). ``--xla_backend_optimization_level`` (XLA's
default is 2) trades that compile time for slower code. For each level and d, a fresh process (the
level is read from ``XLA_FLAGS`` once per process, with no persistent cache) compiles the block
program of ``bench_compile.bucket_programs`` (3 runs, ``time = 200``, the sweep's default trace
and Monte Carlo samples) and runs it: compile CPU seconds, the best of 3 runs' wall time, and the
final risks' largest relative difference from level 2's (the level changes float32 rounding, not
the random streams).

A setting is a level, optionally with ``+legacy``: XLA:CPU's legacy (non-MLIR) fusion emitters
(``--xla_cpu_use_fusion_emitters=false``, known to jaxlib 0.10 only). Each process also compiles
``--tiny`` tiny element-wise programs (a new shape each, as eager ``jax.numpy`` calls in a test do)
and reports their CPU milliseconds per program (tracing, lowering and XLA): most of the test
suite's compiles are such programs. ``--sweep`` also times issue 25's sweep (d = 32, 64, 128 × rates
0.5, 1 × 3 seeds, ``time = 200``) from Python, cold, under each setting, with a hash of its results.

The test suite compiles at level 1, with the legacy emitters on jaxlib 0.10 (tests/conftest.py);
aejax itself uses XLA's defaults.

Usage: ``python benchmarks/bench_backend_opt.py [--dims 8,128] [--levels 2,1,0,1+legacy] [--tiny 200] [--sweep]``
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
tiny, compiles = int(sys.argv[3]), []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **_: compiles.append(seconds) if event.endswith("backend_compile_duration") else None
)
cpu = time.process_time()
for i in range(tiny):  # a new shape each time: 4 compiles (ones, sin, multiply, add), like eager jax.numpy calls
    jax.block_until_ready(jax.numpy.sin(jax.numpy.ones(i + 4)) * 2.0 + 1.0)
tiny_ms = 1e3 * (time.process_time() - cpu) / max(len(compiles), 1)  # tracing, lowering and compiling, per program
print(json.dumps({"compile_cpu_s": compile_cpu, "run_s": min(runs), "tiny_compile_ms": tiny_ms, "risk": risk}))
"""

SWEEP_CHILD = r"""
import hashlib, json, sys, time
import jax, numpy as np
jax.config.update("jax_enable_compilation_cache", False)
import aejax
config = aejax.TrainConfig(d=32, n=32, time=200.0)
wall, cpu = time.perf_counter(), time.process_time()
ds = aejax.sweep(config, {"d": [32, 64, 128], "rate": [0.5, 1.0], "seed": [0, 1, 2]}, progress=False)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
names = ("risk", "exact_risk", "risk_trace")
digest = hashlib.sha256(b"".join(np.ascontiguousarray(ds[v].values).tobytes() for v in names))
print(json.dumps({"sweep_s": wall, "sweep_cpu_s": cpu, "hash": digest.hexdigest()[:16]}))
"""


def xla_flags(setting: str) -> str:
    """``XLA_FLAGS`` of a setting: ``"1"`` is level 1, ``"1+legacy"`` level 1 with the legacy fusion emitters."""
    level, _, extra = setting.partition("+")
    if level not in ("0", "1", "2", "3") or extra not in ("", "legacy"):
        raise SystemExit(f"--levels: each setting must be 0-3, optionally +legacy, got {setting!r}")
    return f"--xla_backend_optimization_level={level}" + (" --xla_cpu_use_fusion_emitters=false" if extra else "")


def child(setting: str, *argv: str) -> dict:
    """Run ``argv`` in a fresh interpreter under ``setting``'s ``XLA_FLAGS``, no compilation cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["XLA_FLAGS"] = xla_flags(setting)
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(setting: str, d: int, tiny: int) -> dict:
    return child(setting, "-c", CHILD, str(Path(__file__).resolve().parent), str(d), str(tiny))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dims", default="8,128", help="comma-separated d values")
    parser.add_argument(
        "--levels",
        default="2,1,0,1+legacy",
        help="comma-separated settings (0-3, optionally +legacy); the first is the reference",
    )
    parser.add_argument("--tiny", type=int, default=200, help="tiny programs compiled per process")
    parser.add_argument("--sweep", action="store_true", help="also time issue 25's cold sweep under each setting")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine, write

    levels = args.levels.split(",")
    rows = []
    for d in (int(v) for v in args.dims.split(",")):
        reference = None
        for level in levels:
            result = measure(level, d, args.tiny)
            risk = result.pop("risk")
            reference = reference or risk
            change = max(abs(a - b) / abs(b) for a, b in zip(risk, reference, strict=True))
            rows.append({"d": d, "level": level, **result, "risk_rel_change": change})
            print(rows[-1], flush=True)
    if args.sweep:
        for level in levels:
            rows.append({"d": "sweep", "level": level, **child(level, "-c", SWEEP_CHILD)})
            print(rows[-1], flush=True)
    meta = {
        "machine": machine(),
        "program": "block, 3 runs, time=200, default trace and Monte Carlo samples",
        "sweep": "cold, no cache: d = 32, 64, 128 x rates 0.5, 1 x 3 seeds, time = 200 (issue 25's)",
    }
    columns = [
        "d",
        "level",
        "compile_cpu_s",
        "run_s",
        "tiny_compile_ms",
        "risk_rel_change",
        "sweep_s",
        "sweep_cpu_s",
        "hash",
    ]
    write("backend_opt", rows, meta, columns)


if __name__ == "__main__":
    main()
