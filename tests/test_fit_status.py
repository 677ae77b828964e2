"""Fits that admit failure (issue 24, defects 2, 3, 6, 10): ``FitStatus`` flags on ``fit_power_law``,
``extrapolate`` and ``aejax scaling`` (exit status 3, no interval), the unweighted log-log fit, the bootstrap
count bounded by the memory budget, and a non-numeric ``--var`` refused. Synthetic numbers, no training."""

import numpy as np
import pytest
import xarray as xr

from aejax import _validate
from aejax.cli import SCALING_FIT_FAILED, main
from aejax.results import load_results, save_results
from aejax.scaling import FitStatus, bound_status, extrapolate, fit_power_law

D = np.array([64, 128, 256, 512, 1024])


def growing(seed=0, seeds=3):
    """The issue's reproduction: a risk that grows with d, y = 0.3634 + 0.002·(d/64)^0.2 + noise."""
    rng = np.random.default_rng(seed)
    return 0.3634 + 0.002 * (D / 64) ** 0.2 + 1e-4 * rng.standard_normal((seeds, D.size))


def results_file(tmp_path, y, name="results.nc"):
    y = y[:, None, :]
    ds = xr.Dataset(
        {"exact_risk": (("seed", "rate", "d"), y), "status": (("seed", "rate", "d"), np.full(y.shape, "ok"))},
        coords={"seed": np.arange(y.shape[0]), "rate": [1.0], "d": D},
    )
    return save_results(ds, tmp_path / name)


def test_growing_risk_fit_is_flagged_at_bound_without_interval():
    """Data that grow with d: the decaying law can only follow them with α at the lower end of its range
    (C < 0, y∞ above every observed mean); the fit says so and gives no interval."""
    y = growing()
    fit = fit_power_law(D, y, offset=True, seeds_axis=0, bootstrap=200)
    assert fit.alpha == pytest.approx(0.01, rel=0.01) and fit.C < 0 and fit.offset > y.mean(0).max()
    assert fit.status.failed and {"at_bound", "bootstrap_at_bound"} <= set(fit.status.flags)
    for ci in (fit.alpha_ci, fit.C_ci, fit.offset_ci):
        assert ci is not None and np.isnan(ci).all()
    text = str(fit)
    assert "no interval: the fit failed" in text and "at_bound" in text and "95% intervals" not in text
    assert np.isnan(fit.band(D)[0]).all()


def test_bootstrap_at_the_bound_is_detected_when_the_estimate_is_inside():
    """α = 0.13 lies inside [0.01, 10], but 16% of the resamples sit at 0.01: the 95% interval would be cut
    by the range. Independent evidence: refitting with a range reaching 0.001 moves the interval's lower
    end below 0.01."""
    rng = np.random.default_rng(0)
    y = 0.36 + 0.01 * D**-0.3 + 3e-4 * rng.standard_normal((4, D.size))
    fit = fit_power_law(D, y, offset=True, seeds_axis=0, bootstrap=200)
    assert 0.05 < fit.alpha < 1 and fit.status.flags == ("bootstrap_at_bound",) and fit.status.failed
    assert np.isnan(fit.alpha_ci).all()
    wider = fit_power_law(D, y, offset=True, seeds_axis=0, bootstrap=200, alpha_range=(1e-3, 10.0))
    assert np.percentile(wider.draws[:, 0], 2.5) < 0.01


def test_bound_status_counts_draws_at_either_end():
    draws = np.r_[np.full(3, 0.01), np.full(90, 1.0), np.full(7, 10.0)]  # 3% low, 7% high
    assert bound_status("α", 1.0, draws, (0.01, 10.0), level=0.95).flags == ("bootstrap_at_bound",)
    assert "7% of the 100 resamples' α sit at the upper end" in bound_status("α", 1.0, draws, (0.01, 10.0)).notes[0]
    assert bound_status("α", 1.0, draws, (0.01, 10.0), level=0.8).ok  # tails of 10%
    assert str(bound_status("α", 10.0, [], (0.01, 10.0))) == "at_bound"


def test_flat_data_are_not_identifiable():
    """Each seed is the same at every d (offsets only): the seed means are flat, C = 0, α undetermined."""
    y = 0.36 + np.array([[-1e-4], [0.0], [2e-4]]) + np.zeros(D.size)
    fit = fit_power_law(D, y + 1e-7 * np.random.default_rng(1).standard_normal(y.shape), offset=True, seeds_axis=0)
    assert "not_identifiable" in fit.status.flags and fit.offset_ci is not None and np.isnan(fit.offset_ci).all()


def test_a_good_fit_is_ok_and_three_points_are_a_caution():
    rng = np.random.default_rng(3)
    y = 0.36 + 0.03 / D + 1e-6 * rng.standard_normal((5, D.size))
    fit = fit_power_law(D, y, offset=True, seeds_axis=0, bootstrap=200)
    assert fit.status.ok and str(fit.status) == "ok" and fit.alpha_ci[0] < 1 < fit.alpha_ci[1]
    three = fit_power_law(D[:3], y[:, :3], offset=True, seeds_axis=0, bootstrap=100)
    assert three.status.flags == ("no_dof",) and not three.status.failed
    assert np.isfinite(three.alpha_ci).all() and "status: no_dof" in str(three)


def test_fit_status_combines_and_refuses_unknown_flags():
    both = FitStatus.of(at_bound="a") | FitStatus.of(no_dof="b", at_bound="c")
    assert both.flags == ("at_bound", "no_dof") and both.describe() == "at_bound: a; no_dof: b"
    with pytest.raises(_validate.InputError, match="unknown fit flags"):
        FitStatus.of(converged="no")


def test_extrapolate_records_the_status_and_voids_the_interval():
    y = growing()
    ds = xr.Dataset({"exact_risk": (("seed", "d"), y)}, coords={"seed": [0, 1, 2], "d": D})
    out = extrapolate(ds, theory=0.3634, bootstrap=100)
    assert "at_bound" in str(out["fit_status"].item()) and "lower end" in str(out["fit_note"].item())
    assert np.isnan(out["r_inf_low"].item()) and not bool(out["covers"])


def test_scaling_command_on_a_failed_fit_exits_3_and_says_so(tmp_path, capsys):
    path = results_file(tmp_path, growing())
    assert SCALING_FIT_FAILED == 3
    assert main(["scaling", str(path), "--bootstrap", "100"]) == 3
    captured = capsys.readouterr()
    row = next(line for line in captured.out.splitlines() if line.startswith("| 1 |"))
    assert "(fit failed)" in row and row.rstrip(" |").endswith("at_bound,bootstrap_at_bound") and "[" not in row
    assert "aejax: fit failed (exit status 3): rate=1: at_bound" in captured.err
    assert "**The fit failed**" in (tmp_path / "scaling.md").read_text()
    saved = load_results(tmp_path / "scaling.nc")
    assert saved["fit_status"].sel(rate=1.0).item() == "at_bound,bootstrap_at_bound"


def test_scaling_command_on_a_good_fit_exits_0(tmp_path, capsys):
    y = 0.36 + 0.03 / D + 1e-6 * np.random.default_rng(0).standard_normal((4, D.size))
    assert main(["scaling", str(results_file(tmp_path, y)), "--bootstrap", "100"]) == 0
    assert "| ok |" in capsys.readouterr().out


def test_unweighted_fit_without_se_is_numpy_polyfit_in_log_space():
    """The issue's gaps at d = 32, 64, 128 with no se and one value per point: the fit is the ordinary
    (unweighted) least-squares line through (log d, log gap), as numpy.polyfit computes it."""
    x, gap = np.array([32.0, 64.0, 128.0]), np.array([0.0304, 0.0099, 0.0069])
    slope, intercept = np.polyfit(np.log(x), np.log(gap), 1)
    fit = fit_power_law(x, gap, bootstrap=0)
    assert fit.alpha == pytest.approx(-slope, rel=1e-12) and np.exp(intercept) == pytest.approx(fit.C, rel=1e-12)
    assert "unweighted least squares in log space" in fit.method
    rng = np.random.default_rng(4)
    y = 2.0 * np.geomspace(8, 4096, 7) ** -0.7 * np.exp(0.3 * rng.standard_normal(7))
    slope, intercept = np.polyfit(np.log(np.geomspace(8, 4096, 7)), np.log(y), 1)
    assert fit_power_law(np.geomspace(8, 4096, 7), y, bootstrap=0).alpha == pytest.approx(-slope, rel=1e-12)


def test_bootstrap_count_is_bounded_by_the_memory_budget(tmp_path, capsys, monkeypatch):
    """A count whose draws cannot fit half the available host memory is refused before any allocation,
    with the largest allowed count (budget // bytes per resample, computed here)."""
    monkeypatch.setattr(_validate, "available_host_bytes", lambda: 2**30, raising=False)  # budget 2**29 bytes
    with pytest.raises(_validate.InputError, match=rf"bootstrap must be at most {2**29 // 72} .* got 10000000000000"):
        fit_power_law(D, 0.36 + 0.03 / D, offset=True, bootstrap=10**13)
    ds = xr.Dataset({"exact_risk": (("rate", "d"), np.tile(0.36 + 0.03 / D, (2, 1)))}, coords={"rate": [1, 2], "d": D})
    with pytest.raises(_validate.InputError, match=rf"at most {2**29 // (2 * 96)} "):
        extrapolate(ds, bootstrap=10**13)
    path = results_file(tmp_path, growing())
    assert main(["scaling", str(path), "--bootstrap", str(10**13)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"aejax: error: --bootstrap must be at most {2**29 // 96} ")
    assert "got 10000000000000" in err and "half the available host memory" in err


def test_scaling_command_refuses_a_string_variable_naming_the_numeric_ones(tmp_path, capsys):
    path = results_file(tmp_path, growing())
    assert main(["scaling", str(path), "--var", "status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--var 'status' is not numeric" in err and err.rstrip().endswith("exact_risk")
