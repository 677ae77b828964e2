"""Run one ``aejax.sweep`` described by a JSON spec; the tests launch this script as a subprocess.

Usage: ``python run_sweep.py SPEC.json [PROCESS_ID]``

Spec keys:
    config: ``TrainConfig`` fields.  grid: the sweep grid.  sweep: keyword arguments of ``aejax.sweep``.
    devices: fake CPU devices of this process.
    result: optional path with ``{process}``, where this process writes the Dataset ``sweep`` returned.
    coordinator, num_processes: optional; join ``jax.distributed`` (loopback) as process PROCESS_ID first.
    pause_after_chunk: optional seconds to sleep after each chunk file is written, so that a test can
        kill the process between chunks.
"""

import json
import sys
import time

import jax

with open(sys.argv[1]) as fh:
    spec = json.load(fh)
process_id = int(sys.argv[2]) if len(sys.argv) > 2 else 0
jax.config.update("jax_num_cpu_devices", spec["devices"])
if "coordinator" in spec:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(spec["coordinator"], spec["num_processes"], process_id)

import aejax  # noqa: E402  (after the device set-up)
from aejax.results import RunStore, save_results  # noqa: E402

if "pause_after_chunk" in spec:
    save = RunStore.save

    def save_then_pause(self, run_ids, records):
        save(self, run_ids, records)
        time.sleep(spec["pause_after_chunk"])

    RunStore.save = save_then_pause

ds = aejax.sweep(aejax.TrainConfig(**spec["config"]), spec["grid"], **spec["sweep"])
if "result" in spec:
    save_results(ds, spec["result"].format(process=process_id))
