"""Steady-state time of one training step of one run, against hand-written JAX, PyTorch and the roofline.

The training is aejax's default (``aejax.TrainConfig`` and ``aejax.default_hparams``): online Adam
(β 0.9, 0.999, ε 1e-8) at lr 0.01 × ½(1 + cos(π t/steps)), a fresh batch x ~ N(0, I_d) of 128
samples per step, row-normalised encoder B̄, s = sign(x B̄ᵀ) with the clip surrogate, x̂ = s Aᵀ,
loss = mean (x − x̂)², B ~ N(0, 1)/√d, A = 0, n = d. Measured in one process, per d:

- ``aejax``: ``jax.jit(aejax.make_train(TrainConfig(d=d, n=d, steps=S, batch=128, risk_eval="none",
  schedule="cosine")))``, compiled ahead of time, timed (best of ``--repeat`` after a warm-up call)
  at two step counts S1 < S2 (multiples of 20, so the trace keeps 20 blocks; S2 ≈ ``--flop-budget``
  FLOPs of training). Time per step = (t(S2) − t(S1))/(S2 − S1); ``fixed_cost`` = t(S1) − S1 × that
  (initialisation, dispatch, the trace's 20 loss means and identity-likeness values, copying the
  weights out); ``compile_s`` = ``lower().compile()`` at S2 (no persistent cache); ``peak_mb`` =
  argument + output + temporary bytes of the compiled S2 program (``memory_analysis()``).
- ``minimal_jax``: the same training hand-written in the fewest lines: ``jax.custom_jvp`` sign, the
  loss, ``optax.adam`` with the cosine schedule, a jitted ``lax.scan`` over steps; same differencing.
- ``torch_eager``, ``torch_compile``: ``benchmarks/_torch_baselines.py`` (eager autograd and
  ``torch.optim.Adam``; ``torch.compile``-d loss with fused Adam), ``--torch-threads`` threads
  (default ``os.cpu_count()``): after 5 warm-up steps (compilation included), S2 − S1 steps timed
  together, best of two. The random batch and the learning-rate update are part of every step.
- ``roofline``: max(FLOPs / matmul rate, bytes / memory bandwidth) per step. FLOPs = 10·b·d·n, the
  five b×d×n products (x B̄ᵀ, s Aᵀ, eᵀs, e A, g_uᵀx; the row norms, Adam and the rest are O(d·n)).
  Bytes (float32, 4 bytes an entry, P = d·n entries per matrix), counting each array pass of an
  unfused step once:

  - parameter-sized, 24·P: row norms read B and write B̄ (2P); the forward products read B̄ and A
    (2P); the backward reads A for e A (P), writes ∂A (P) and ∂B̄ (P), and maps ∂B̄ to ∂B through the
    row normalisation: read ∂B̄ and B̄, write ∂B (3P); Adam reads the parameter, gradient, m and v
    and writes the parameter, m and v, for A and for B (2 × 7P = 14P);
  - batch-sized, 9·b·d + 9·b·n: x written (by the generator) and read three times (x B̄ᵀ, the error,
    g_uᵀx): 4·b·d; x̂ written and read: 2·b·d; the error e written and read twice (eᵀs, e A): 3·b·d;
    u written and read (surrogate mask): 2·b·n; s written and read twice (s Aᵀ, eᵀs): 3·b·n; g_s = e A
    written and read, g_u written and read: 4·b·n.

  The matmul rate is ``_common.matmul_flops_per_second()`` (1024³ products: the b × d × n products
  here are skinnier and reach less), the bandwidth ``_common.memory_bandwidth()`` (streaming
  y ← a·x + y over 64–256 MB vectors); ``fraction_of_roofline`` = roofline / aejax time,
  ``fraction_of_matmul_rate`` = the step's 10·b·d·n FLOPs per aejax second over the matmul rate,
  ``bound`` which of the two terms of the roofline is larger.

PyTorch's OpenMP threads spin while they wait, so on a machine shared with other work its times
inflate by 10–100× (2 threads on 2 busy cores: 200 steps at d = 32 took 2–20 s instead of 0.25 s):
measure on an idle machine, or also with ``--torch-threads 1``.

Usage: ``python benchmarks/bench_steady.py [--quick] [--torch-threads K] [--skip torch,minimal]``
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import NamedTuple

import _torch_baselines
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import best_time, machine, matmul_flops_per_second, memory_bandwidth, write

import aejax
from aejax.config import TrainConfig

BATCH = 128
BLOCK = 20  # step counts are multiples of this: aejax's default trace then has 20 equal blocks


def step_counts(d: int, n: int, flop_budget: float) -> tuple[int, int]:
    """S1 < S2, multiples of ``BLOCK``: S2 trains about ``flop_budget`` FLOPs, S1 ≈ S2/4."""
    s2 = BLOCK * max(2, round(flop_budget / (10 * BATCH * d * n) / BLOCK))
    s1 = BLOCK * max(1, round(s2 / 4 / BLOCK))
    return s1, s2


def step_flops(d: int, n: int) -> float:
    return 10.0 * BATCH * d * n


def step_bytes(d: int, n: int) -> float:
    """The memory traffic counted in the module docstring, in bytes."""
    return 4.0 * (24 * d * n + 9 * BATCH * d + 9 * BATCH * n)


def aejax_program(d: int, steps: int):
    config = TrainConfig(d=d, n=d, steps=steps, batch=BATCH, risk_eval="none", schedule="cosine")
    hparams = {"lr": np.float32(aejax.default_hparams(config)["lr"])}
    key = jax.random.key(0)
    start = time.perf_counter()
    compiled = jax.jit(aejax.make_train(config)).lower(key, hparams).compile()
    return compiled, (key, hparams), time.perf_counter() - start


def minimal_program(d: int, steps: int, lr: float):
    """The same training in plain JAX + optax (module docstring)."""
    n = d

    @jax.custom_jvp
    def sign(u):
        return jnp.where(u >= 0, 1.0, -1.0).astype(u.dtype)

    @sign.defjvp
    def _sign_jvp(primals, tangents):
        (u,), (du,) = primals, tangents
        return sign(u), jnp.where(jnp.abs(u) <= 1, du, 0.0)

    def loss(params, x):
        A, B = params
        Bn = B * jax.lax.rsqrt(jnp.sum(B * B, axis=1, keepdims=True))
        return jnp.mean((x - sign(x @ Bn.T) @ A.T) ** 2)

    opt = optax.adam(lambda t: lr * 0.5 * (1 + jnp.cos(jnp.pi * t / steps)))

    def train(key):
        k_init, k_data = jax.random.split(key)
        params = (jnp.zeros((d, n)), jax.random.normal(k_init, (n, d)) / math.sqrt(d))

        def step(carry, t):
            params, state = carry
            x = jax.random.normal(jax.random.fold_in(k_data, t), (BATCH, d))
            value, grads = jax.value_and_grad(loss)(params, x)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), value

        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), jnp.arange(steps))
        return params, jnp.mean(losses)

    key = jax.random.key(0)
    start = time.perf_counter()
    compiled = jax.jit(train).lower(key).compile()
    return compiled, (key,), time.perf_counter() - start


def peak_bytes(compiled) -> int | None:
    try:
        mem = compiled.memory_analysis()
    except Exception:  # some backends report no memory
        return None
    if mem is None:
        return None
    return int(mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes)


class Differenced(NamedTuple):
    per_step: float  # seconds per step: (t(S2) − t(S1)) / (S2 − S1)
    fixed: float  # seconds: t(S1) − S1 · per_step
    compile_s: float  # lower + compile of the S2 program
    peak: int | None  # bytes: argument + output + temporary of the S2 program


def differenced(build, d: int, s1: int, s2: int, repeat: int) -> Differenced:
    """Time the programs ``build(d, s)`` at ``s1`` and ``s2`` steps (best of ``repeat`` after a warm-up)."""
    short, args1, _ = build(d, s1)
    t1 = best_time(short, *args1, repeat=repeat)
    del short
    long, args2, compile_s = build(d, s2)
    t2 = best_time(long, *args2, repeat=repeat)
    per_step = (t2 - t1) / (s2 - s1)
    return Differenced(per_step, t1 - s1 * per_step, compile_s, peak_bytes(long))


def torch_per_step(d: int, mode: str, steps: int) -> tuple[float | None, str | None]:
    """Seconds per step of the PyTorch baseline, or ``None`` and the reason it could not run."""
    if not _torch_baselines.available():
        return None, "torch is not installed"
    try:
        return _torch_baselines.seconds_per_step(d, d, mode, steps=steps), None
    except Exception as err:  # e.g. torch.compile without a working C++ compiler
        return None, f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d = 64, 128 and a small budget, for a smoke run")
    parser.add_argument("--flop-budget", type=float, help="training FLOPs at S2 (default 3e11; --quick 2e10)")
    parser.add_argument("--repeat", type=int, default=2, help="timed calls per measurement (best taken)")
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count(), help="PyTorch intra-op threads")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: minimal, torch")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    dims = [64, 128] if args.quick else [128, 512, 1024, 2048]
    budget = args.flop_budget or (2e10 if args.quick else 3e11)
    if _torch_baselines.available():
        import torch

        torch.set_num_threads(args.torch_threads)
    peak = matmul_flops_per_second()
    bandwidth = memory_bandwidth()
    print(f"f32 matmul rate: {peak / 1e9:.1f} GFLOP/s; memory bandwidth: {bandwidth / 1e9:.1f} GB/s", flush=True)
    lr = float(aejax.default_hparams(TrainConfig(d=8, n=8, steps=1))["lr"])
    rows = []
    for d in dims:
        s1, s2 = step_counts(d, d, budget)
        ours = differenced(aejax_program, d, s1, s2, args.repeat)
        minimal = None
        if "minimal" not in skip:
            minimal = differenced(lambda d, s: minimal_program(d, s, lr), d, s1, s2, args.repeat)
        eager = compiled = (None, "skipped")
        if "torch" not in skip:
            eager = torch_per_step(d, "eager", s2 - s1)
            compiled = torch_per_step(d, "compile", s2 - s1)
        flops, traffic = step_flops(d, d), step_bytes(d, d)
        roofline = max(flops / peak, traffic / bandwidth)
        row = {
            "d": d,
            "s1": s1,
            "s2": s2,
            "aejax_ms_per_step": 1e3 * ours.per_step,
            "minimal_jax_ms": None if minimal is None else 1e3 * minimal.per_step,
            "torch_eager_ms": None if eager[0] is None else 1e3 * eager[0],
            "torch_compile_ms": None if compiled[0] is None else 1e3 * compiled[0],
            "roofline_ms": 1e3 * roofline,
            "fraction_of_roofline": roofline / ours.per_step,
            "fraction_of_matmul_rate": flops / ours.per_step / peak,
            "bound": "flops" if flops / peak >= traffic / bandwidth else "bytes",
            "fixed_cost_ms": 1e3 * ours.fixed,
            "compile_s": ours.compile_s,
            "peak_mb": None if ours.peak is None else ours.peak / 2**20,
            "minimal_fixed_cost_ms": None if minimal is None else 1e3 * minimal.fixed,
            "minimal_compile_s": None if minimal is None else minimal.compile_s,
            "step_gflop": flops / 1e9,
            "step_mb": traffic / 2**20,
            "torch_eager_error": eager[1],
            "torch_compile_error": compiled[1],
        }
        rows.append(row)
        print(row, flush=True)
    meta = {
        "machine": machine(),
        "matmul_gflops": peak / 1e9,
        "bandwidth_gbs": bandwidth / 1e9,
        "batch": BATCH,
        "flop_budget": budget,
        "torch": _torch_version(),
        "torch_threads": args.torch_threads,
    }
    write(
        "steady_step",
        rows,
        meta,
        [
            "d",
            "aejax_ms_per_step",
            "minimal_jax_ms",
            "torch_eager_ms",
            "torch_compile_ms",
            "roofline_ms",
            "fraction_of_roofline",
            "fraction_of_matmul_rate",
            "bound",
            "fixed_cost_ms",
            "compile_s",
            "peak_mb",
        ],
    )


def _torch_version() -> str | None:
    if not _torch_baselines.available():
        return None
    import torch

    return torch.__version__


if __name__ == "__main__":
    main()
