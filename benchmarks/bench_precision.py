"""Accuracy and speed of each precision option: ``matmul_precision`` and ``opt_state_dtype``.

Trains online Adam at rate 1 for τ = 250 (steps = τ·d/128) at d = 1024 (``--quick``: d = 128,
τ = 50) with lr 0.005·(128/d), the clip surrogate and the cosine schedule (the finite-size
preset's training), ``--seeds`` seeds, once per option, through ``aejax.sweep`` in one process. For
each: the exact risk's mean over seeds and its gap to R_Gauss(1) = 1 − 2/π, the difference from
the default (``highest``, ``float32``), and the training time per run-step (the runs' ``wall_time``
over the steps; compilation excluded).

XLA:CPU computes float32 products in float32 whatever the precision says, so on a CPU only the
optimizer-state dtype can change a result; on a GPU the same script measures all of them.

Usage: ``python benchmarks/bench_precision.py [--quick] [--seeds 0,1]``
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from _common import machine, write

from aejax import sweep, theory
from aejax.config import TrainConfig
from aejax.devices import use_all_cpu_cores

OPTIONS = [
    {"matmul_precision": "highest", "opt_state_dtype": "float32"},
    {"matmul_precision": "tensorfloat32", "opt_state_dtype": "float32"},
    {"matmul_precision": "bfloat16", "opt_state_dtype": "float32"},
    {"matmul_precision": "highest", "opt_state_dtype": "bfloat16"},
]


def main() -> None:
    use_all_cpu_cores()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d = 128, τ = 50")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    args = parser.parse_args()
    d, tau = (128, 50.0) if args.quick else (1024, 250.0)
    seeds = [int(s) for s in args.seeds.split(",")]
    base = TrainConfig(d=d, n=d, time=tau, lr_power=1.0, trace_points=4)
    limit = float(theory.gaussian_limit(1.0, "sign"))
    rows, reference = [], None
    for option in OPTIONS:
        config = dataclasses.replace(base, **option)
        ds = sweep(config, {"seed": seeds, "lr": [0.005]}, progress=False)
        risk = ds["exact_risk"].values.ravel()
        per_step = float(ds["wall_time"].mean()) / config.total_steps
        reference = risk if reference is None else reference
        row = {
            **option,
            "d": d,
            "steps": config.total_steps,
            "exact_risk": float(risk.mean()),
            "gap_to_gaussian_limit": float(risk.mean()) - limit,
            "change_from_default": float(np.max(np.abs(risk - reference))),
            "ms_per_run_step": 1e3 * per_step,
            "compile_s": float(ds.attrs["compile_seconds"]),
        }
        rows.append(row)
        print(row, flush=True)
    write("precision", rows, {"machine": machine(), "seeds": seeds, "tau": tau}, list(rows[0]))


if __name__ == "__main__":
    main()
