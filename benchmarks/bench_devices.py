"""What device-count-independent bits cost: the sweep's per-device block programs against the
sharded program it replaced, on 1, 2 and 4 (fake CPU) devices, and whether the bits match.

For each device count (one subprocess each, since JAX fixes its devices at start-up) and each case,
it times the steady state of one chunk (compiled beforehand; best of 3) two ways:

- ``blocks``: the sweep's way (``aejax.programs``): blocks of ``default_runs_per_device(runs, platform, config)`` runs,
  one single-device program per device, block ``b`` on device ``b mod D``;
- ``sharded``: the program before issue 17, one ``jit`` over all devices with
  ``ceil(runs / D)`` runs per device (its bits change with D).

It then checks that ``blocks`` gives the same bits on every device count, and that ``sharded`` does
not (so the check can fail). On one 2-core CPU, D fake devices share 2 cores: the table shows the
cost of the change in scheduling, not a multi-device speed-up.

Usage: ``python benchmarks/bench_devices.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

CASES = {  # name: (d, rates, seeds, steps)
    "d=64, 12 runs, 300 steps (issue 17)": (64, (0.5, 1.0, 2.0), 4, 300),
    "d=32, 64 runs, 200 steps": (32, (1.0,), 64, 200),
    "d=128, 16 runs, 200 steps": (128, (1.0,), 16, 200),
}
BATCH = 128
MC_SAMPLES = 1024


def measure(devices: int, quick: bool) -> list[dict]:
    """Run inside a process with ``devices`` CPU devices: every case, both ways."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    jax.config.update("jax_num_cpu_devices", devices)  # before JAX starts its backend

    from aejax.config import TrainConfig
    from aejax.devices import make_mesh
    from aejax.programs import Program, default_runs_per_device, make_run, run_blocks
    from aejax.train import run_key

    sys.path.insert(0, str(Path(__file__).parent))
    from _common import best_time

    mesh = make_mesh(devices)
    rows = []
    for name, (d, rates, seeds, steps) in CASES.items():
        steps = max(20, steps // 5) if quick else steps
        for rate in rates:
            n = round(rate * d)
            config = TrainConfig(d=d, n=n, steps=steps, batch=BATCH, schedule="cosine")
            runs = seeds
            keys = np.stack([np.asarray(jax.random.key_data(run_key(0, s))) for s in range(runs)])
            lr = np.full(runs, 0.01, np.float32)

            width = default_runs_per_device(runs, mesh.devices.flat[0].platform, config)
            program = Program(config, MC_SAMPLES, ("lr",), width)
            padded = width * math.ceil(runs / width)
            pk, plr = np.concatenate([keys, keys[: padded - runs]]), np.concatenate([lr, lr[: padded - runs]])
            blocks = best_time(lambda pk=pk, plr=plr, program=program: run_blocks(program, mesh, pk, {"lr": plr}))
            block_risk = run_blocks(program, mesh, pk, {"lr": plr})["exact_risk"][:runs]

            per_device = math.ceil(runs / devices)
            total = per_device * devices
            sk, slr = np.concatenate([keys, keys[: total - runs]]), np.concatenate([lr, lr[: total - runs]])
            sharding = NamedSharding(mesh, PartitionSpec("runs"))
            sharded_fn = jax.jit(jax.vmap(make_run(config, MC_SAMPLES)), in_shardings=sharding, out_shardings=sharding)
            args = (jax.device_put(sk, sharding), {"lr": jax.device_put(slr, sharding)})
            sharded = best_time(sharded_fn, *args)
            sharded_risk = np.asarray(sharded_fn(*args)["exact_risk"])[:runs]
            rows.append(
                {
                    "case": name,
                    "rate": rate,
                    "devices": devices,
                    "runs_per_device": width,
                    "blocks_s": blocks,
                    "sharded_s": sharded,
                    "blocks_risk": block_risk.tolist(),
                    "sharded_risk": sharded_risk.tolist(),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(measure(args.inner, args.quick)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import machine, write

    rows = []
    for devices in (1, 2, 4):
        command = [sys.executable, __file__, "--inner", str(devices)] + (["--quick"] if args.quick else [])
        out = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=True)
        rows += json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{devices} devices done", flush=True)
    reference = {(r["case"], r["rate"]): r for r in rows if r["devices"] == 1}
    for row in rows:
        ref = reference[(row["case"], row["rate"])]
        row["blocks_equal_1_device"] = row["blocks_risk"] == ref["blocks_risk"]
        row["sharded_equal_1_device"] = row["sharded_risk"] == ref["sharded_risk"]
        row["sharded_max_rel_diff"] = float(
            np.max(np.abs(np.subtract(row["sharded_risk"], ref["sharded_risk"])) / np.abs(ref["sharded_risk"]))
        )
        row["cost"] = row["blocks_s"] / row["sharded_s"]
    summary = [{k: v for k, v in row.items() if not k.endswith("_risk")} for row in rows]
    meta = {"machine": machine(), "batch": BATCH, "mc_samples": MC_SAMPLES, "quick": args.quick}
    write(
        "devices",
        summary,
        meta,
        [
            "case",
            "rate",
            "devices",
            "runs_per_device",
            "blocks_s",
            "sharded_s",
            "cost",
            "blocks_equal_1_device",
            "sharded_equal_1_device",
            "sharded_max_rel_diff",
        ],
    )
    assert all(row["blocks_equal_1_device"] for row in summary), "block programs changed bits with the device count"


if __name__ == "__main__":
    main()
