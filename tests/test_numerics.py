"""Numerical safety: the exact risk in float64 against an independent float64 reference, and float32
overflow reported per run by the sweep."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import aejax
from aejax.model import Params
from aejax.results import run_status
from aejax.sources import Gaussian


def sign_risk_reference(A, B, cov):
    """E||x − A sign(Bx)||² / d for x ~ N(0, cov), from one-dimensional quadratures (scipy, float64):
    E[g sign g] = ∫|g|φ, and E[sign u_i sign u_j] = 4 P(u_i > 0, u_j > 0) − 1 with
    P(u > 0, v > 0) = ∫₀^∞ φ(t) Φ(ρt/√(1−ρ²)) dt."""
    phi = lambda t: np.exp(-t * t / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    abs_mean = 2 * integrate.quad(lambda t: t * phi(t), 0, np.inf, epsabs=1e-14, epsrel=1e-13)[0]
    gram = B @ cov @ B.T
    sd = np.sqrt(np.diag(gram))
    c_xs = abs_mean * (cov @ B.T) / sd
    n = len(B)
    c_ss = np.eye(n)
    for i in range(n):
        for j in range(i):
            rho = gram[i, j] / (sd[i] * sd[j])
            both = integrate.quad(
                lambda t, rho=rho: phi(t) * special.ndtr(rho * t / np.sqrt(1 - rho**2)),
                0,
                np.inf,
                epsabs=1e-14,
                epsrel=1e-13,
            )[0]
            c_ss[i, j] = c_ss[j, i] = 4 * both - 1
    d = len(cov)
    return (np.trace(cov) - 2 * np.sum(A * c_xs) + np.sum((A @ c_ss) * A)) / d


@pytest.mark.parametrize("kind", ["isotropic", "covariance"])
def test_exact_risk_in_float64_matches_an_independent_float64_reference(kind):
    """d = 16, n = 8, random A and B: float64 exact_risk equals the quadrature reference to 1e-11
    relative (float32 reaches only about 1e-7), and stays float64 throughout."""
    rng = np.random.default_rng(0)
    d, n = 16, 8
    m = rng.normal(size=(d, d))
    cov = np.eye(d) if kind == "isotropic" else m @ m.T / d + 0.1 * np.eye(d)
    A, B = rng.normal(size=(d, n)) / np.sqrt(n), rng.normal(size=(n, d)) / np.sqrt(d)
    want = sign_risk_reference(A, B, cov)
    with jax.enable_x64(True):
        source = Gaussian(d) if kind == "isotropic" else Gaussian(d, covariance=cov)
        if kind == "covariance":  # Gaussian stores its matrices in float32 even under x64: use float64 ones
            treedef = jax.tree_util.tree_structure(source)
            source = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(cov), jnp.asarray(np.linalg.cholesky(cov))])
        got = aejax.exact_risk(
            Params(jnp.asarray(A), jnp.asarray(B)), source, arch=aejax.Architecture("sign", row_normalize=False)
        )
        assert got.dtype == jnp.float64
    assert float(got) == pytest.approx(want, rel=1e-11)


def test_sweep_reports_overflow_per_run_and_keeps_the_other_runs():
    """Population-mode SGD at lr = 1e5 grows the loss past 1e30 and then NaN: status "overflow"; the
    lr = 0.05 runs in the same chunk are "ok" and finite."""
    config = aejax.TrainConfig(d=16, n=16, steps=20, mode="population", optimizer="sgd")
    ds = aejax.sweep(config, {"seed": [0, 1], "lr": [0.05, 1e5]}, mc_samples=256, devices=4, progress=False)
    assert ds.attrs["chunks"] == 1
    assert set(ds["status"].sel(lr=1e5).values.ravel()) == {"overflow"}
    assert set(ds["status"].sel(lr=0.05).values.ravel()) == {"ok"}
    assert np.isfinite(ds["risk"].sel(lr=0.05).values).all()


def test_run_status_tells_overflow_from_other_nan():
    """Synthetic records: an inf anywhere or a loss past 1e30 before NaN is an overflow; a NaN from a
    moderate loss is "diverged" when the loss grew before it, "nonfinite" otherwise; NaN exact risk
    alone (non-Gaussian source) is still "ok"."""
    nan, inf = np.nan, np.inf
    records = {
        "risk": np.array([0.5, inf, nan, nan, nan, nan]),
        "exact_risk": np.array([nan, inf, nan, nan, nan, nan]),
        "loss_trace": np.array([[1.0, 0.5], [1.0, 0.5], [1.0, 2e30], [1e31, nan], [2.0, nan], [nan, nan]]),
        "risk_trace": np.full((6, 2), nan),
    }
    assert run_status(records).tolist() == ["ok", "overflow", "overflow", "overflow", "nonfinite", "nonfinite"]
    records["loss_trace"][4:] = [[2.0, 3.0], [1.0, nan]]
    records["loss_trace"] = np.concatenate([records["loss_trace"], np.full((6, 1), nan)], axis=1)
    assert run_status(records)[4:].tolist() == ["diverged", "nonfinite"]  # a NaN after the loss grew
