"""A warm start in a new process: the issue-25 sweep (d = 32, 64, 128 × rates 0.5, 1 × 3 seeds,
``time = 200``) from Python, each run in a fresh interpreter with ``aejax.enable_compilation_cache``.

Modes, each in its own processes, alternated over ``--rounds`` rounds (medians reported):

- ``cold``: an empty cache directory (the first process: traces, lowers and compiles everything);
- ``cache only``: the persistent compilation cache filled, the program store not used (as before
  issue 25's warm start: every block program traced and lowered, XLA's compile found in the cache);
- ``store``: the program store too (``aejax.program_store``): no block program traced or lowered;
- ``store, helpers cached``: also the small helper programs (key folding, theory) in the cache
  (``enable_compilation_cache(min_compile_seconds=0)``, its own cache directory).

Every process reports its import and sweep time (wall and CPU seconds, all threads), how many
block programs it traced and a hash of the results, which must be the same in every mode.

Usage: ``python benchmarks/bench_warm_start.py [--rounds 2]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np
from _common import machine, write

CHILD = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import aejax
from aejax import program_store, programs
t1, c1 = time.perf_counter(), time.process_time()
cache, mode = sys.argv[1], sys.argv[2]
aejax.enable_compilation_cache(cache, min_compile_seconds=0 if "helpers" in mode else 0.5)
if mode == "cache only":
    program_store.load = lambda key, directory=None: None
    program_store.save = lambda key, exported, directory=None: False
traced = []
make_block = programs.make_block
programs.make_block = lambda *a: traced.append(a) or make_block(*a)
grid = {"d": [32, 64, 128], "rate": [0.5, 1.0], "seed": [0, 1, 2]}
ds = aejax.sweep(aejax.TrainConfig(d=32, n=32, time=200.0), grid, progress=False)
t2, c2 = time.perf_counter(), time.process_time()
import hashlib
digest = hashlib.sha256(b"".join(ds[v].values.tobytes() for v in ("risk", "exact_risk", "risk_trace"))).hexdigest()
print(json.dumps({"import_s": t1 - t0, "import_cpu_s": c1 - c0, "sweep_s": t2 - t1, "sweep_cpu_s": c2 - c1,
                  "traced": len(traced), "hash": digest[:16]}))
"""

MODES = ("cache only", "store", "store, helpers cached")


def child(cache: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, cache, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    caches = {"plain": tempfile.mkdtemp(prefix="aejax-warm-"), "helpers": tempfile.mkdtemp(prefix="aejax-warm-")}
    results = {"cold": [child(caches["plain"], "cold")]}
    child(caches["helpers"], "cold, helpers")  # fills the helpers' directory
    for _ in range(args.rounds):
        for mode in MODES:
            results.setdefault(mode, []).append(child(caches["helpers" if "helpers" in mode else "plain"], mode))
            print(mode, results[mode][-1], flush=True)
    rows = []
    for mode, runs in results.items():
        row = {"mode": mode, "runs": len(runs), "traced": runs[0]["traced"], "hash": runs[0]["hash"]}
        for k in ("import_s", "import_cpu_s", "sweep_s", "sweep_cpu_s"):
            row[k] = float(np.median([r[k] for r in runs]))
        rows.append(row)
    hashes = {r["hash"] for runs in results.values() for r in runs}
    meta = {"machine": machine(), "same_bits_in_every_mode": len(hashes) == 1}
    write(
        "warm_start",
        rows,
        meta,
        ["mode", "runs", "traced", "import_s", "import_cpu_s", "sweep_s", "sweep_cpu_s", "hash"],
    )


if __name__ == "__main__":
    main()
