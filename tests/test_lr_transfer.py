"""The best learning rate at each d with its interval, and the exponent that holds it still."""

import numpy as np
import pytest
import xarray as xr

import aejax
from aejax.scaling import lr_optimum, transfer_table

LR = np.array([0.00125, 0.0025, 0.005, 0.01, 0.02])
D = np.array([64, 128, 256])


def results(slope, rng, noise=2e-5, curvature=0.01):
    """Risk = 0.4 + c·log(lr/lr*)² with lr*(d) = 0.005·(d/128)^slope: a parabola in log lr, so the
    three-point vertex is exact and only the seeds' noise moves it."""
    best = 0.005 * (D / 128.0) ** slope
    clean = 0.4 + curvature * np.log(LR[None, :] / best[:, None]) ** 2  # (d, lr)
    risk = clean[None] + noise * rng.standard_normal((4, D.size, LR.size))
    return xr.Dataset({"exact_risk": (("seed", "d", "lr"), risk)}, coords={"seed": range(4), "d": D, "lr": LR}), best


def test_best_lr_and_its_drift_are_recovered():
    rng = np.random.default_rng(0)
    ds, best = results(-0.3, rng)
    out = lr_optimum(ds, bootstrap=400)
    np.testing.assert_allclose(out["lr_best"].values, best, rtol=0.05)
    assert np.all(out["lr_low"].values <= out["lr_best"].values)
    assert np.all(out["lr_best"].values <= out["lr_high"].values)
    assert float(out["slope"]) == pytest.approx(-0.3, abs=0.05)
    assert float(out["slope_low"]) < -0.3 < float(out["slope_high"])
    assert "0.0050" in transfer_table(out.expand_dims(rate=[1.0]))


def test_minimum_at_the_end_of_the_grid_is_flagged():
    rng = np.random.default_rng(1)
    ds, _ = results(2.0, rng)  # lr*(256) = 0.02, lr*(64) = 0.00125: both ends
    out = lr_optimum(ds, bootstrap=50)
    edge = out["at_edge"].values
    assert edge[0] == 1 and edge[-1] == 1 and np.isnan(out["lr_low"].values[0])
    assert "grid's end" in transfer_table(out.expand_dims(rate=[1.0]))


def test_bad_input_is_refused():
    ds, _ = results(0.0, np.random.default_rng(2))
    with pytest.raises(aejax.InputError, match="at least 3 values"):
        lr_optimum(ds.isel(lr=[0, 1]))
    with pytest.raises(aejax.InputError, match="var 'nope'"):
        lr_optimum(ds, "nope")
