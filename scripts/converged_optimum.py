"""Converged gradient minima of the exact sign-autoencoder risk at finite d (docs/theory.md §12.1).

L-BFGS to a Riemannian gradient norm ≤ tol (``aejax.optimum.converged_optimum``), several random
restarts per (r, d); d·gap against d with the fit d·gap = C_GD + c1/d (bootstrap over restarts);
frame statistics of the minima; Paley ETF starts (exact and perturbed). Prints the tables and
writes ``PART.json`` under ``--out`` after every (r, d), so a part that is stopped keeps what it did.

Usage:
    python scripts/converged_optimum.py --part r2 --d 16,32,64,128 --restarts 4 --out /tmp/gdconv
    python scripts/converged_optimum.py --part rates --rates 1.5,3 --d 16,32,64 --out /tmp/gdconv
    python scripts/converged_optimum.py --part etf --d 15,31,115 --out /tmp/gdconv
    python scripts/converged_optimum.py --part adam --d 32,64,128 --time 1000,4000 --out /tmp/gdconv
    python scripts/converged_optimum.py --part hessian --d 8,16 --out /tmp/gdconv
    python scripts/converged_optimum.py --part fit --out /tmp/gdconv     # tables and C_GD from r2.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import t as student_t

from aejax import theory
from aejax.optimum import converged_optimum, unit_row_risk


def _record(r: float, d: int, out, seconds: float) -> dict:
    """One (r, d): every restart's d·gap, gradient norm, iterations, and the frame statistics."""
    limit = float(theory.gaussian_limit(r))
    return {
        "r": r,
        "d": d,
        "n": int(out.encoder.shape[0]),
        "d_gap": [d * (float(x) - limit) for x in out.restart_risks],
        "grad_norm": [float(x) for x in out.restart_grad_norms],
        "iterations": [int(x) for x in out.restart_iterations],
        "converged": [bool(x) for x in out.converged],
        "best_d_gap": d * (float(out.risk) - limit),
        "spread_d_gap": d * float(out.spread),
        "stats": theory.frame_statistics(out.encoder),
        "seconds": seconds,
    }


def _gram_distance(encoder: np.ndarray, etf: np.ndarray) -> float:
    """‖|G| − |G_ETF|‖_F: how far a frame's absolute correlations are from the ETF's (sign flips and
    row order kept, so 0 means the same frame up to row signs)."""
    return float(np.linalg.norm(np.abs(encoder @ encoder.T) - np.abs(etf @ etf.T)))


def _save(path: Path, rows: list | dict) -> None:
    path.write_text(json.dumps(rows, indent=1))


def run_rates(rates, ds, restarts, tol, max_iter, out_dir: Path, name: str, seed: int = 0) -> list:
    rows = []
    for r in rates:
        for d in ds:
            start = time.time()
            out = converged_optimum(
                r, d=d, restarts=restarts, tol=tol, max_iter=max_iter, key=jax.random.key(d + 1000 * seed)
            )
            rows.append(_record(r, d, out, time.time() - start))
            _print_row(rows[-1])
            _save(out_dir / f"{name}.json", rows)
    return rows


def _print_row(row: dict) -> None:
    s = row["stats"]
    print(
        f"r={row['r']:<4} d={row['d']:<4} d·gap best {row['best_d_gap']:.5f} spread {row['spread_d_gap']:.1e} "
        f"|grad| max {max(row['grad_norm']):.1e} it {row['iterations']} conv {sum(row['converged'])}/"
        f"{len(row['converged'])} | coh/welch {s['coherence'] / s['welch']:.3f} ratio4 {s['fourth_ratio']:.3f} "
        f"tight {s['tightness']:.2e} Σg²-excess {s['sum_g2_excess']:.2e} first-order {s['first_order']:.5f} "
        f"({row['seconds']:.0f} s)",
        flush=True,
    )


def run_etf(ds, noise, tol, max_iter, out_dir: Path, name: str = "etf") -> list:
    """Each Paley ETF: its own risk and statistics, then L-BFGS from it exactly and from perturbed copies."""
    rows = []
    for d in ds:
        etf = np.asarray(theory.paley_etf(d))
        limit = float(theory.gaussian_limit(2.0))
        row = {"d": d, "etf_d_gap": d * (float(unit_row_risk(etf)) - limit), "etf_stats": theory.frame_statistics(etf)}
        rng = np.random.default_rng(d)
        for eps in [0.0, *noise]:
            start = etf + eps * rng.standard_normal(etf.shape) / np.sqrt(d)
            t0 = time.time()
            out = converged_optimum(2.0, d=d, tol=tol, max_iter=max_iter, start=start)
            row[f"eps={eps}"] = {
                "start_d_gap": d * (float(unit_row_risk(start)) - limit),
                "end_d_gap": d * (float(out.risk) - limit),
                "grad_norm": float(out.grad_norm),
                "iterations": int(out.iterations),
                "converged": bool(out.converged[0]),
                "distance_to_etf_gram": _gram_distance(np.asarray(out.encoder), etf),
                "stats": theory.frame_statistics(out.encoder),
                "seconds": time.time() - t0,
            }
            e = row[f"eps={eps}"]
            print(
                f"ETF d={d} eps={eps}: d·gap {e['start_d_gap']:.5f} -> {e['end_d_gap']:.5f} "
                f"(ETF {row['etf_d_gap']:.5f}) "
                f"it {e['iterations']} |grad| {e['grad_norm']:.1e} ‖|G|−|G_ETF|‖ {e['distance_to_etf_gram']:.2e} "
                f"coh/welch {e['stats']['coherence'] / e['stats']['welch']:.3f} "
                f"ratio4 {e['stats']['fourth_ratio']:.4f}",
                flush=True,
            )
        rows.append(row)
        _save(out_dir / f"{name}.json", rows)
    return rows


def run_adam(ds, taus, seeds, lr, out_dir: Path, name: str = "adam") -> list:
    """Online Adam (the engine's defaults: batch 128, cosine, clip surrogate, lr·(128/d)) for τ at r = 2:
    d·gap of the trained model, and of its encoder with the optimal decoder (``unit_row_risk``).
    The engine trains in float32 (x64 off); the risks of the final weights are then taken in float64."""
    from aejax import TrainConfig, make_train
    from aejax.model import Architecture, Params, encoder_matrix
    from aejax.risk import exact_risk
    from aejax.sources import Gaussian

    rows, limit = [], float(theory.gaussian_limit(2.0))
    for d in ds:
        for tau in taus:
            t0 = time.time()
            config = TrainConfig(d=d, n=2 * d, time=tau, lr_power=1.0, d_ref=128, trace_points=4)
            train = jax.jit(jax.vmap(make_train(config), in_axes=(0, None)))
            params, _ = train(jax.random.split(jax.random.key(d), len(seeds)), {"lr": lr})
            jax.config.update("jax_enable_x64", True)
            trained, optimal, stats = [], [], []
            for s in range(len(seeds)):
                p = Params(jnp.asarray(params.A[s], jnp.float64), jnp.asarray(params.B[s], jnp.float64))
                B = encoder_matrix(p, row_normalize=True)
                raw = Architecture("sign", row_normalize=False)  # B is already normalised
                trained.append(d * (float(exact_risk(Params(p.A, B), Gaussian(d), arch=raw)) - limit))
                optimal.append(d * (float(unit_row_risk(B)) - limit))
                stats.append(theory.frame_statistics(B))
            rows.append(
                {
                    "d": d,
                    "tau": tau,
                    "lr": lr,
                    "d_gap_trained": trained,
                    "d_gap_optimal_decoder": optimal,
                    "stats": stats,
                    "seconds": time.time() - t0,
                }
            )
            mean = {key: np.mean([x[key] for x in stats]) for key in ("first_order", "fourth_ratio", "tightness")}
            print(
                f"Adam d={d} τ={tau}: d·gap trained {np.mean(trained):.4f} (seeds {np.round(trained, 4)}), "
                f"optimal decoder {np.mean(optimal):.4f}, first-order {mean['first_order']:.4f}, "
                f"ratio4 {mean['fourth_ratio']:.3f}, tight {mean['tightness']:.2e} ({time.time() - t0:.0f} s)",
                flush=True,
            )
            jax.config.update("jax_enable_x64", False)
            _save(out_dir / f"{name}.json", rows)
    return rows


def tangent_hessian(B: np.ndarray) -> np.ndarray:
    """Eigenvalues of the Riemannian Hessian of ``unit_row_risk`` at the unit rows B (a critical point:
    the Euclidean Hessian restricted to the tangent spaces; the gradient term vanishes because the
    risk is scale invariant per row). d(d − 1)/2 of them are 0: the rotations of R^d."""
    n, d = B.shape
    hessian = np.asarray(jax.hessian(unit_row_risk)(B)).reshape(n * d, n * d)
    basis = np.zeros((n * d, n * (d - 1)))
    for i, b in enumerate(B):
        basis[i * d : (i + 1) * d, i * (d - 1) : (i + 1) * (d - 1)] = np.linalg.svd(np.eye(d) - np.outer(b, b))[0][
            :, : d - 1
        ]
    return np.linalg.eigvalsh(basis.T @ hessian @ basis)


def run_hessian(ds, out_dir: Path, name: str = "hessian") -> list:
    """Second-order check at small d: the converged minimum (best of 2) and the Paley ETF (d − 1 if d + 1
    is not admissible for Paley) are local minima; their smallest non-zero curvatures (times d²)."""
    rows, limit = [], float(theory.gaussian_limit(2.0))
    for d in ds:
        encoders = {
            "L-BFGS": np.asarray(converged_optimum(2.0, d=d, restarts=2, tol=1e-10, key=jax.random.key(d)).encoder)
        }
        encoders["Paley ETF"] = np.asarray(theory.paley_etf(d - 1))
        for kind, B in encoders.items():
            dd = B.shape[1]
            eigenvalues = tangent_hessian(B)
            flat = dd * (dd - 1) // 2
            row = {
                "d": dd,
                "kind": kind,
                "d_gap": dd * (float(unit_row_risk(B)) - limit),
                "min": float(eigenvalues[0]),
                "zeros": int(np.sum(np.abs(eigenvalues) < 1e-9)),
                "rotations": flat,
                "smallest_nonzero_times_d2": float(eigenvalues[flat] * dd**2),
            }
            rows.append(row)
            print(
                f"Hessian {kind} d={dd}: d·gap {row['d_gap']:.5f}, min eigenvalue {row['min']:.1e}, "
                f"{row['zeros']} zero (rotations: {flat}), "
                f"smallest non-zero ×d² {row['smallest_nonzero_times_d2']:.4f}",
                flush=True,
            )
            _save(out_dir / f"{name}.json", rows)
    return rows


def fit_limit(rows: list, boot: int = 2000, seed: int = 0) -> dict:
    """d·gap = C + c1/d by least squares on the best restart per d; bootstrap over restarts (resample
    each d's restarts, take the best, refit) for a 95% interval of C; the fit's own 95% interval uses
    Student's t with the residual degrees of freedom."""
    ds = np.array([row["d"] for row in rows], float)
    gaps = [np.array(row["d_gap"]) for row in rows]
    design = np.stack([np.ones_like(ds), 1 / ds], axis=1)

    def fit(best):
        return np.linalg.lstsq(design, best, rcond=None)[0]

    best = np.array([g.min() for g in gaps])
    coef = fit(best)
    residual = best - design @ coef
    dof = max(len(ds) - 2, 1)
    cov = np.linalg.inv(design.T @ design) * float(residual @ residual) / dof
    rng = np.random.default_rng(seed)
    half = float(student_t.ppf(0.975, dof)) * float(np.sqrt(cov[0, 0]))  # Student t: few d, few dof
    draws = np.array([fit(np.array([rng.choice(g, g.size).min() for g in gaps]))[0] for _ in range(boot)])
    return {
        "C_GD": float(coef[0]),
        "c1": float(coef[1]),
        "stderr_C": float(np.sqrt(cov[0, 0])),
        "interval_fit_95": [float(coef[0] - half), float(coef[0] + half)],
        "dof": dof,
        "interval_boot_95": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))],
        "ds": ds.tolist(),
    }


def _merge_restarts(rows: list) -> list:
    """One row per d from runs split over files (``--name``/``--seed``): restarts pooled, the frame
    statistics of the best one kept."""
    merged = {}
    for row in sorted(rows, key=lambda row: row["best_d_gap"]):
        if row["d"] not in merged:
            merged[row["d"]] = {
                **row,
                **{key: list(row[key]) for key in ("d_gap", "grad_norm", "iterations", "converged")},
            }
        else:
            for key in ("d_gap", "grad_norm", "iterations", "converged"):
                merged[row["d"]][key] += row[key]
    for row in merged.values():
        row["spread_d_gap"] = max(row["d_gap"]) - min(row["d_gap"])
    return sorted(merged.values(), key=lambda row: row["d"])


def print_fit(out_dir: Path) -> None:
    rows = _merge_restarts([row for path in sorted(out_dir.glob("r2*.json")) for row in json.loads(path.read_text())])
    print(
        "| d | n | best d·gap | restarts: spread | max ‖grad‖ | iterations | coherence/Welch | Σg⁴ ratio "
        "| tightness | d·first-order |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        s = row["stats"]
        print(
            f"| {row['d']} | {row['n']} | {row['best_d_gap']:.5f} | {len(row['d_gap'])}: {row['spread_d_gap']:.1e} | "
            f"{max(row['grad_norm']):.1e} | {min(row['iterations'])}–{max(row['iterations'])} | "
            f"{s['coherence'] / s['welch']:.3f} | {s['fourth_ratio']:.3f} | {s['tightness']:.2e} | "
            f"{s['first_order']:.5f} |"
        )
    fits = {"all": fit_limit(rows)}
    if len(rows) > 3:
        fits["d>=32"] = fit_limit([row for row in rows if row["d"] >= 32])
    reference = {f: float(theory.finite_d_coefficient(2.0, f)) for f in ("etf", "random", "haar")}
    for name, f in fits.items():
        print(
            f"C_GD ({name}: d = {f['ds']}) = {f['C_GD']:.5f} ± {f['stderr_C']:.5f} "
            f"(fit 95% {f['interval_fit_95'][0]:.5f}"
            f"–{f['interval_fit_95'][1]:.5f}; bootstrap over restarts {f['interval_boot_95'][0]:.5f}–"
            f"{f['interval_boot_95'][1]:.5f}), c1 = {f['c1']:.4f}"
        )
    print(f"C_ETF = {reference['etf']:.5f}, C_random = {reference['random']:.5f}, C_haar = {reference['haar']:.5f}")
    _save(out_dir / "fit.json", {"fits": fits, "reference": reference})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["r2", "rates", "etf", "adam", "hessian", "fit"], required=True)
    parser.add_argument("--d", default="16,32,64,128")
    parser.add_argument("--rates", default="1.5,3")
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--max-iter", type=int, default=60000)
    parser.add_argument("--noise", default="0.01,0.1", help="perturbations of the ETF start (part etf)")
    parser.add_argument("--time", default="1000,4000", help="τ values (part adam)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds (part adam)")
    parser.add_argument("--lr", type=float, default=0.005, help="Adam lr at d = 128 (part adam)")
    parser.add_argument("--seed", type=int, default=0, help="random starts use key d + 1000·seed (parts r2, rates)")
    parser.add_argument("--name", default=None, help="JSON file stem (default: the part)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_enable_x64", args.part != "adam")  # the engine's training runs in float32
    ds = [int(x) for x in args.d.split(",")]
    name = args.name or args.part
    if args.part == "r2":
        run_rates([2.0], ds, args.restarts, args.tol, args.max_iter, args.out, name, args.seed)
        if name == "r2":
            print_fit(args.out)
    elif args.part == "rates":
        rates = [float(x) for x in args.rates.split(",")]
        run_rates(rates, ds, args.restarts, args.tol, args.max_iter, args.out, name, args.seed)
    elif args.part == "etf":
        run_etf(ds, [float(x) for x in args.noise.split(",")], args.tol, args.max_iter, args.out, name)
    elif args.part == "adam":
        run_adam(ds, [float(x) for x in args.time.split(",")], range(args.seeds), args.lr, args.out, name)
    elif args.part == "hessian":
        run_hessian(ds, args.out, name)
    else:
        print_fit(args.out)


if __name__ == "__main__":
    main()
