"""Time to result of realistic sweeps through the ``aejax`` command, against what a PyTorch user would run.

Each case trains ``runs`` runs (rate 1, n = d, seeds 0..runs−1) for ``steps`` steps of aejax's
default training (online Adam at lr 0.01 with the cosine schedule, batch 128, sign with the clip
surrogate, row-normalised encoder, B ~ N(0, 1)/√d, A = 0), and every implementation records the
same things per run: the exact Gaussian risk, the mean training loss and the identity-likeness at
each trace point, and at the end the Monte Carlo risk on ``aejax.sweeping.default_mc_samples(d)``
samples and the encoder's order parameters. Every time is a subprocess's wall clock, from the
interpreter's start to its exit (imports, compilation, training, evaluation, files), measured on a
machine the benchmark has warmed (the packages were imported once before, so they are in the OS
file cache):

- ``aejax``: ``aejax sweep --d D --rates 1 --seeds 0,…,R−1 --steps S --batch 128 --quiet --out DIR``,
  run twice with the same fresh cache directory (``AEJAX_CACHE_DIR``): the first invocation
  compiles (cold cache), the second finds its programs in JAX's persistent compilation cache
  (warm: tracing and lowering only; a fresh ``--out``, so nothing is resumed). From the sweep's
  ``results.nc``: ``compile_*_s`` (attribute ``compile_seconds``: tracing, lowering and compiling
  or loading the chunk programs, with their memory analysis) and
  ``train_first_s`` (sum of the runs' ``wall_time``: the compiled chunks, training and final
  evaluation); ``overhead_first_s`` is the rest of the first wall time (interpreter and imports,
  device set-up, result files, netCDF, the figure, the printed table).
- ``torch_eager``: ``python benchmarks/_torch_baselines.py --mode eager`` (autograd and
  ``torch.optim.Adam``), the runs one after another in one process, ``torch.set_num_threads`` =
  ``--torch-threads`` (default ``os.cpu_count()``), the same number of trace points as the aejax
  sweep recorded (``TrainConfig(d=D, n=D, steps=S, batch=128).trace_steps``, checked against the
  results file) and the same Monte Carlo sample count.
- ``torch_compile``: the same with ``--mode compile``: the loss function (forward; AOTAutograd
  builds the backward) goes through ``torch.compile`` once per process and is reused by every run,
  and Adam is ``torch.optim.Adam(fused=True)``; compilation is included (end to end), with a fresh
  ``TORCHINDUCTOR_CACHE_DIR`` so that it is not read from an earlier benchmark. A failure (e.g. no C++
  compiler) is reported in ``torch_compile_error`` instead of a time.

``speedup_vs_eager`` = torch_eager_s / aejax_first_s and ``speedup_vs_compile`` = torch_compile_s /
aejax_first_s (cold aejax against cold torch.compile). ``risk_*`` are the final Monte Carlo risks
and ``exact_*`` the final exact risks, means over the runs: the implementations train the same
model from different random streams, so they agree to the spread between seeds (about 1e-3 to
1e-2), not bit for bit.

The trace has 20 points, fewer where they would cost over 4% of the training FLOPs (5 at
d = 2048, 1000 steps); aejax also records the identity-likeness at each trace point and the inverse
participation ratio and coherence at the end, so the PyTorch runs compute them too.

PyTorch's OpenMP threads spin while they wait, so on a machine shared with other work its times
inflate by 10–100× (2 threads on 2 busy cores: 200 steps at d = 32 took 2–20 s instead of 0.25 s):
measure on an idle machine, or also with ``--torch-threads 1``.

Usage: ``python benchmarks/bench_end_to_end.py [--quick] [--torch-threads K] [--skip torch,compile]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine, write

from aejax.config import TrainConfig
from aejax.results import load_results
from aejax.sweeping import default_mc_samples

HERE = Path(__file__).resolve().parent
BATCH = 128
CASES = [(128, 16, 1000), (512, 4, 1000), (2048, 2, 1000)]  # (d, runs, steps)
QUICK_CASES = [(32, 4, 200), (128, 2, 200)]


def aejax_command() -> list[str]:
    """The ``aejax`` console script next to this interpreter, else ``python -m aejax``."""
    script = Path(sys.executable).parent / "aejax"
    return [str(script)] if script.exists() else [sys.executable, "-m", "aejax"]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def failure(proc: subprocess.CompletedProcess) -> str:
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    return f"exit {proc.returncode}: {lines[-1][:300] if lines else 'no output'}"


def run_aejax(d: int, runs: int, steps: int, cache: Path, out: Path) -> dict[str, Any]:
    """One ``aejax sweep`` invocation: its wall time and what its results file says about it."""
    cmd = [*aejax_command(), "sweep", "--d", str(d), "--rates", "1", "--seeds", ",".join(map(str, range(runs)))]
    cmd += ["--steps", str(steps), "--batch", str(BATCH), "--quiet", "--out", str(out)]
    env = {**os.environ, "AEJAX_CACHE_DIR": str(cache)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # a cache the user gave JAX would take precedence
    wall, proc = timed(cmd, env)
    if proc.returncode:
        return {"error": failure(proc)}
    ds = load_results(out)
    trace_dim = "step" if "step" in ds.dims else "tau"
    return {
        "wall_s": wall,
        "compile_s": float(ds.attrs.get("compile_seconds", float("nan"))),
        "compilations": int(ds.attrs.get("compilations", -1)),
        "train_s": float(ds["wall_time"].sum()),
        "risk": float(ds["risk"].mean()),
        "exact_risk": float(ds["exact_risk"].mean()),
        "trace_points": int(ds.sizes[trace_dim]),
        "runs_per_device": ds.attrs.get("runs_per_device"),
        "cache_files": sum(1 for p in cache.rglob("*") if p.is_file()),
    }


TORCH_PYTHON = [sys.executable]  # set from --torch-python


def run_torch(
    d: int, runs: int, steps: int, mode: str, trace_points: int, threads: int | None, tmp: Path
) -> dict[str, Any]:
    """``_torch_baselines.py`` in a subprocess: its wall time and the JSON line it prints."""
    cmd = [TORCH_PYTHON[0], str(HERE / "_torch_baselines.py"), "--d", str(d), "--runs", str(runs)]
    cmd += ["--steps", str(steps), "--batch", str(BATCH), "--mode", mode, "--trace-points", str(trace_points)]
    cmd += ["--mc-samples", str(default_mc_samples(d))]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp / f"inductor-{mode}")}
    wall, proc = timed(cmd, env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": failure(proc)}
    result = json.loads(lines[-1])
    if "error" in result:
        return {"error": result["error"]}
    n = len(result["risk"])
    return {
        "wall_s": wall,
        "risk": sum(result["risk"]) / n,
        "exact_risk": sum(result["exact_risk"]) / n if None not in result["exact_risk"] else None,
        "import_s": result["import_s"],
        "first_step_s": result["first_step_s"],
        "train_s": sum(result["train_s"]),
        "in_process_s": result["in_process_s"],
        "threads": result["threads"],
    }


def import_seconds(code: str, python: str = sys.executable) -> float | None:
    """Wall time of ``python -c code``, second of two (the first fills the OS file cache)."""
    for _ in range(2):
        wall, proc = timed([python, "-c", code])
        if proc.returncode:
            return None
    return wall


def case(d: int, runs: int, steps: int, skip: set[str], threads: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {"d": d, "runs": runs, "steps": steps}
    config_points = len(TrainConfig(d=d, n=d, steps=steps, batch=BATCH).trace_steps)
    with tempfile.TemporaryDirectory(prefix="aejax-e2e-") as name:
        tmp = Path(name)
        cache = tmp / "jax-cache"
        first = run_aejax(d, runs, steps, cache, tmp / "out-first")
        second = run_aejax(d, runs, steps, cache, tmp / "out-second")
        points = first.get("trace_points", config_points)
        row["aejax_error"] = first.get("error") or second.get("error")
        row.update(
            aejax_first_s=first.get("wall_s"),
            aejax_second_s=second.get("wall_s"),
            compile_first_s=first.get("compile_s"),
            compile_second_s=second.get("compile_s"),
            train_first_s=first.get("train_s"),
            train_second_s=second.get("train_s"),
            risk_aejax=first.get("risk"),
            exact_aejax=first.get("exact_risk"),
            trace_points=points,
            trace_points_config=config_points,
            runs_per_device=first.get("runs_per_device"),
            cache_files=first.get("cache_files"),
        )
        if "wall_s" in first:
            row["overhead_first_s"] = first["wall_s"] - first["compile_s"] - first["train_s"]
        for mode in ("eager", "compile"):
            if "torch" in skip or mode in skip:
                continue
            result = run_torch(d, runs, steps, mode, points, threads, tmp)
            row[f"torch_{mode}_error"] = result.get("error")
            row[f"torch_{mode}_s"] = result.get("wall_s")
            row[f"torch_{mode}_first_step_s"] = result.get("first_step_s")
            row[f"torch_{mode}_train_s"] = result.get("train_s")
            row[f"torch_{mode}_import_s"] = result.get("import_s")
            row[f"torch_{mode}_in_process_s"] = result.get("in_process_s")
            row[f"risk_{mode}"] = result.get("risk")
            row[f"exact_{mode}"] = result.get("exact_risk")
            row["torch_threads"] = result.get("threads", row.get("torch_threads"))
    base = row.get("aejax_first_s")
    for mode, column in (("eager", "speedup_vs_eager"), ("compile", "speedup_vs_compile")):
        other = row.get(f"torch_{mode}_s")
        row[column] = other / base if other and base else None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases (d = 32 and 128, 200 steps), a smoke run")
    parser.add_argument("--torch-threads", type=int, help="PyTorch intra-op threads (default os.cpu_count())")
    parser.add_argument(
        "--torch-python",
        default=sys.executable,
        help="the interpreter that runs the PyTorch baselines (one with torch installed; default this one)",
    )
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: torch, eager, compile")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    TORCH_PYTHON[0] = args.torch_python
    # the same imports twice before any timing, so no case pays for a cold OS file cache
    aejax_imports = "import jax; jax.devices(); import aejax.cli, aejax.sweeping, matplotlib.figure"
    imports = {"aejax_import_s": import_seconds(aejax_imports)}
    if "torch" not in skip:
        imports["torch_import_s"] = import_seconds("import torch", TORCH_PYTHON[0])
    print(", ".join(f"{k}: {v:.2f}" for k, v in imports.items() if v is not None), flush=True)
    rows = []
    for d, runs, steps in QUICK_CASES if args.quick else CASES:
        row = case(d, runs, steps, skip, args.torch_threads)
        rows.append(row)
        print(row, flush=True)
    meta = {
        "machine": machine(),
        "batch": BATCH,
        "mc_samples": "aejax.sweeping.default_mc_samples(d)",
        "aejax_command": " ".join(aejax_command()),
        "torch_python": TORCH_PYTHON[0],
        **imports,
    }
    write(
        "end_to_end",
        rows,
        meta,
        [
            "d",
            "runs",
            "steps",
            "aejax_first_s",
            "aejax_second_s",
            "compile_first_s",
            "compile_second_s",
            "train_first_s",
            "overhead_first_s",
            "torch_eager_s",
            "torch_compile_s",
            "speedup_vs_eager",
            "speedup_vs_compile",
            "risk_aejax",
            "risk_eager",
            "risk_compile",
            "exact_aejax",
            "exact_eager",
            "exact_compile",
        ],
    )


if __name__ == "__main__":
    main()
