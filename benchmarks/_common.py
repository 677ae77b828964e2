"""Shared helpers of the benchmark scripts: timing, the matmul and memory rooflines, machine facts, output files."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

RESULTS = Path(os.environ.get("AEJAX_BENCH_RESULTS", Path(__file__).resolve().parent / "results"))


def best_time(fn, *args, repeat: int = 3) -> float:
    """Smallest wall time of ``repeat`` calls (after one warm-up call), blocking on the outputs."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_flops_per_second(size: int | None = None, chain: int = 8, repeat: int = 3) -> float:
    """Measured float32 matmul rate (FLOP/s) of the default device, at jax's default precision.

    Times ``chain`` dependent ``size``³ products in one compiled loop (1024 on CPU, 8192 on
    accelerators), so dispatch latency does not count.
    """
    size = size or (1024 if jax.devices()[0].platform == "cpu" else 8192)
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32) / np.sqrt(size)
    products = jax.jit(lambda m: jax.lax.fori_loop(0, chain, lambda _, x: x @ m, m))
    return chain * 2 * size**3 / best_time(products, a, repeat=repeat)


def memory_bandwidth(megabytes: tuple[int, ...] | None = None, passes: int = 8, repeat: int = 3) -> float:
    """Measured streaming memory bandwidth (bytes/s) of the default device.

    Runs ``passes`` dependent passes of ``y ← a·x + y`` over float32 vectors of each size in
    ``megabytes`` (64, 128 and 256 MB each on CPU, 1 and 2 GB on accelerators) in one compiled
    loop, counts 3 × size bytes per pass (read x, read y, write y) and returns the best rate over
    sizes and ``repeat`` timings.
    """
    cpu = jax.devices()[0].platform == "cpu"
    megabytes = megabytes or ((64, 128, 256) if cpu else (1024, 2048))
    stream = jax.jit(lambda x, y: jax.lax.fori_loop(0, passes, lambda _, acc: 1.000001 * x + acc, y))
    best = 0.0
    for mb in megabytes:
        size = mb * 2**20 // 4
        x = jnp.ones((size,), jnp.float32)
        y = jnp.zeros((size,), jnp.float32)
        best = max(best, passes * 3 * 4 * size / best_time(stream, x, y, repeat=repeat))
        del x, y
    return best


def machine() -> dict[str, Any]:
    """Device and host description stored with every result."""
    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device_kind": device.device_kind,
        "devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "host": platform.node(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "processor": platform.processor() or platform.machine(),
    }


def write(name: str, rows: list[dict[str, Any]], meta: dict[str, Any], columns: list[str]) -> Path:
    """Save ``rows`` as JSON and a markdown table under benchmarks/results/, print the table."""
    RESULTS.mkdir(exist_ok=True)
    tag = f"{name}-{meta['machine']['platform']}"
    (RESULTS / f"{tag}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    table = "\n".join(lines)
    (RESULTS / f"{tag}.md").write_text(f"# {name}\n\n{_describe(meta)}\n\n{table}\n")
    print(table, flush=True)
    return RESULTS / f"{tag}.json"


def _describe(meta: dict[str, Any]) -> str:
    m = meta["machine"]
    extra = {k: v for k, v in meta.items() if k != "machine"}
    return (
        f"{m['device_kind']} ({m['platform']}, {m['devices']} device(s), {m['cpu_count']} CPUs), "
        f"jax {m['jax']}, Python {m['python']}. " + "; ".join(f"{k}: {_fmt(v)}" for k, v in extra.items())
    )


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}"
    return "" if value is None else str(value)
