"""A second identical ``aejax sweep``: how much of the first's compile, trace and lowering time it spends.

The command (``aejax sweep --d 128 --rates 0.5,1 --seeds 0,...,7 --quiet``, the issue-25 figure's
d = 128 case) runs in a fresh process, then again in another fresh process with the same cache
directory (``$AEJAX_CACHE_DIR``, empty at the start). Each process sums the durations JAX reports
for its stages (``jax.monitoring``: ``/jax/core/compile/jaxpr_trace_duration`` for tracing,
``jaxpr_to_mlir_module_duration`` for lowering, ``backend_compile_duration`` for XLA, a cache
load included), and the ratio of the second's total to the first's is the figure of the target
(≤ 10%). With ``--floor S`` programs compiling faster than S seconds are left out of the cache
(``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS``), as before issue 25's default of 0.

Usage: ``python benchmarks/bench_second_invocation.py [--floor 0.5]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _common import machine, write

ARGS = ["sweep", "--d", "128", "--rates", "0.5,1", "--seeds", "0,1,2,3,4,5,6,7", "--quiet"]
STAGES = {
    "jaxpr_trace_duration": "trace_s",
    "jaxpr_to_mlir_module_duration": "lower_s",
    "backend_compile_duration": "xla_s",
}

CHILD = """
import json, sys, time
from collections import defaultdict
import jax.monitoring
seconds = defaultdict(float)


def listen(event, duration, **kw):
    seconds[event.rsplit("/", 1)[-1]] += duration


jax.monitoring.register_event_duration_secs_listener(listen)
start = time.perf_counter()
from aejax.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "wall_s": time.perf_counter() - start, **seconds}))
"""


def invocation(cache: str, out: str, floor: float | None) -> dict[str, float]:
    """One ``aejax sweep`` in a fresh interpreter; its stage seconds."""
    env = {**os.environ, "AEJAX_CACHE_DIR": cache}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if floor is not None:
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = str(floor)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *ARGS, "--out", out], env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    row = {name: float(found.get(event, 0.0)) for event, name in STAGES.items()}
    row["total_s"] = sum(row.values())
    row["wall_s"] = float(found["wall_s"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--floor", type=float, default=None, help="seconds below which programs are not cached")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        rows = [{"invocation": i, **invocation(cache, os.path.join(tmp, f"out{i}"), args.floor)} for i in (1, 2)]
    ratio = rows[1]["total_s"] / rows[0]["total_s"]
    print(f"second / first (compile + trace + lower): {ratio:.3f}", flush=True)
    meta = {"machine": machine(), "command": "aejax " + " ".join(ARGS), "floor": args.floor, "ratio": ratio}
    name = "second_invocation" + ("" if args.floor is None else f"-floor{args.floor:g}")
    write(name, rows, meta, ["invocation", "trace_s", "lower_s", "xla_s", "total_s", "wall_s"])


if __name__ == "__main__":
    main()
