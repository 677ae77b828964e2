"""Useful FLOP/s of risk estimation and of gradient descent on the exact risk, against the matmul rate.

- Monte Carlo risk (``aejax.mc_risk``): 4·d·n FLOPs per sample (encoder and decoder products).
- Exact Gaussian risk (``aejax.exact_risk``, sign): the products W Σ Wᵀ (2·n²·d, isotropic Σ
  skipped) and A C_ss Aᵀ (2·d·n² for A C_ss), plus the d·n elementwise terms.
- GD on the exact risk: one value-and-gradient, counted as 3× the forward products.
Each is given as a fraction of the float32 matmul rate measured in the same process.

Usage: ``python benchmarks/bench_risk.py [--quick]``
"""

from __future__ import annotations

import argparse

import jax
from _common import best_time, machine, matmul_flops_per_second, write

from aejax.model import Architecture, init
from aejax.risk import exact_risk, mc_risk
from aejax.sources import Gaussian

ARCH = Architecture("sign", row_normalize=False)  # raw Gaussian rows, as timed since the first version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d <= 256 only")
    args = parser.parse_args()
    peak = matmul_flops_per_second()
    rows = []
    for d in [64, 256] if args.quick else [64, 256, 1024, 2048]:
        n = d
        source = Gaussian(d)
        params = init(jax.random.key(0), d, n, decoder_scale=1.0)
        samples = max(4096, int(4e10 / (4 * d * n)))
        mc = jax.jit(lambda p, k, source=source, samples=samples: mc_risk(p, source, k, samples, chunk=4096, arch=ARCH))
        t_mc = best_time(mc, params, jax.random.key(1))
        exact = jax.jit(lambda p, source=source: exact_risk(p, source, arch=ARCH))
        t_exact = best_time(exact, params)
        grad = jax.jit(jax.value_and_grad(lambda p, source=source: exact_risk(p, source, arch=ARCH)))
        t_grad = best_time(grad, params)
        exact_flops = 4 * d * n * n
        rows.append(
            {
                "d": d,
                "n": n,
                "mc_samples": samples,
                "mc_gflops": 4 * d * n * samples / t_mc / 1e9,
                "mc_fraction": 4 * d * n * samples / t_mc / peak,
                "exact_ms": 1e3 * t_exact,
                "exact_fraction": exact_flops / t_exact / peak,
                "gd_step_ms": 1e3 * t_grad,
                "gd_fraction": 3 * exact_flops / t_grad / peak,
            }
        )
        print(rows[-1], flush=True)
    write(
        "risk_flops",
        rows,
        {"machine": machine(), "matmul_gflops": peak / 1e9},
        ["d", "n", "mc_samples", "mc_gflops", "mc_fraction", "exact_ms", "exact_fraction", "gd_step_ms", "gd_fraction"],
    )


if __name__ == "__main__":
    main()
