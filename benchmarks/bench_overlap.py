"""Issue 25, "overlap compilation with execution": the cold issue-25 sweep (d = 32, 64, 128 × rates
0.5, 1 × seeds 0, 1, 2, time = 200) from Python, each in a fresh process, for two checkouts given on the
command line (e.g. the code before and after), alternated. Prints wall and CPU seconds, the compile
seconds the sweep reports (``ds.attrs["compile_seconds"]``, summed over programs compiled in parallel),
the seconds the main thread waited for programs (``waited_s``: compile time not hidden), when the
first chunk started (``first_chunk_s``), and checks that the bits are the same.

    python benchmarks/bench_overlap.py BEFORE_ROOT AFTER_ROOT [repeats] [--scaling]

``--scaling``: the issue's "6 d × 3 rate scaling sweep" instead (d = 32, 64, 128, 256, 512, 1024 ×
rates 0.5, 1, 2 × seeds 0, 1, 2, time = 50, 18 programs), whose visible compile share
(``waited_s / sweep_s``) the issue's target bounds at 25%.
"""

import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import aejax
from aejax import programs
t1 = time.perf_counter()
waits, first_run = [], []
executable = programs.Program.executable


def timed(self, device):  # the main thread's wait for a program (compiling it, or for compile_ahead)
    start = time.perf_counter()
    out = executable(self, device)
    waits.append(time.perf_counter() - start)
    caller, above = sys._getframe(1).f_code.co_name, sys._getframe(2).f_code.co_name  # or a comprehension in it
    if "run_blocks" in (caller, above) and not first_run:
        first_run.append(time.perf_counter() - t1)
    return out


programs.Program.executable = timed
spec = json.loads(sys.argv[1])
config = aejax.TrainConfig(d=max(spec["grid"]["d"]), n=max(spec["grid"]["d"]), time=spec["time"])
ds = aejax.sweep(config, spec["grid"], progress=False)
t2, c2 = time.perf_counter(), time.process_time()
import hashlib
names = ("risk", "exact_risk", "risk_trace", "loss_trace")
digest = hashlib.sha256(b"".join(ds[v].values.tobytes() for v in names)).hexdigest()
print(json.dumps({"import_s": t1 - t0, "sweep_s": t2 - t1, "cpu_s": c2 - c0, "compile_s": ds.attrs["compile_seconds"],
                  "run_s": float(ds["wall_time"].sum()), "waited_s": sum(waits), "first_chunk_s": first_run[0],
                  "compilations": int(ds.attrs["compilations"]), "bits": digest[:16], "file": aejax.__file__}))
"""


ISSUE_SWEEP = {"grid": {"d": [32, 64, 128], "rate": [0.5, 1.0], "seed": [0, 1, 2]}, "time": 200.0}
SCALING_SWEEP = {"grid": {"d": [32, 64, 128, 256, 512, 1024], "rate": [0.5, 1.0, 2.0], "seed": [0, 1, 2]}, "time": 50.0}


def run(root: str, spec: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["PYTHONPATH"] = root
    command = [sys.executable, "-c", CHILD, json.dumps(spec)]
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--scaling"]
    spec = SCALING_SWEEP if "--scaling" in sys.argv else ISSUE_SWEEP
    roots, repeats = args[:2], int(args[2]) if len(args) > 2 else 1
    rows = []
    for rep in range(repeats):
        for label, root in zip(("before", "after"), roots, strict=True):
            r = run(root, spec)
            r["not_running_s"] = r["sweep_s"] - r["run_s"]  # planning, waiting for programs, assembling
            r["visible_compile"] = r["waited_s"] / r["sweep_s"]
            rows.append({"label": label, "rep": rep, **r})
            print(json.dumps(rows[-1]), flush=True)
    bits = {r["bits"] for r in rows}
    print("bits identical across runs:", len(bits) == 1, bits)


if __name__ == "__main__":
    main()
