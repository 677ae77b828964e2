"""aejax.scaling: power-law fits with bootstrap intervals, extrapolation d → ∞, trajectory collapse and the
``aejax scaling`` command, on synthetic numbers (numpy only, no training)."""

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import curve_fit

from aejax.cli import main
from aejax.results import load_results, save_results
from aejax.scaling import collapse, extrapolate, fit_power_law

D = np.array([64, 128, 256, 512, 1024, 2048])


def r_gauss(rate):
    """R_Gauss(r) of sign, written out independently of aejax.theory."""
    rate = np.asarray(rate, float)
    return np.where(rate <= 1, 1 - 2 * rate / np.pi, (np.pi / 2 - 1) / (rate + np.pi / 2 - 1))


def noisy_law(rng, seeds=5, noise=1e-5, y_inf=0.36, c=0.03, alpha=1.0):
    return y_inf + c * D.astype(float) ** -alpha + noise * rng.standard_normal((seeds, D.size))


def test_offset_fit_recovers_exponent_and_offset_with_noise():
    """y = 0.36 + 0.03·d^(−1) + noise over 5 seeds (and MC se): the true α, C and y∞ lie inside the
    bootstrap intervals, which are narrow, and the χ²/dof is of order one."""
    rng = np.random.default_rng(7)
    y = noisy_law(rng)
    fit = fit_power_law(D, y, np.full(y.shape, 1e-5), offset=True, seeds_axis=0, bootstrap=400, seed=1)
    assert fit.alpha_ci[0] < 1.0 < fit.alpha_ci[1]
    assert fit.C_ci[0] < 0.03 < fit.C_ci[1]
    assert fit.offset_ci[0] < 0.36 < fit.offset_ci[1]
    assert fit.alpha_ci[1] - fit.alpha_ci[0] < 0.3 and fit.offset_ci[1] - fit.offset_ci[0] < 2e-5
    assert fit.n == D.size and 0.05 < fit.chi2_dof < 5
    assert "bootstrap over 5 seeds (400 resamples)" in fit.method
    text = str(fit)
    assert "α" in text and "y∞" in text and "95% intervals" in text


def test_offset_fit_equals_scipy_curve_fit():
    """The profile fit reaches the same weighted least-squares optimum as scipy's curve_fit (one seed, se)."""
    rng = np.random.default_rng(3)
    se = 2e-5 * np.sqrt(256 / D)
    y = 0.36 + 0.05 * D**-0.8 + se * rng.standard_normal(D.size)
    fit = fit_power_law(D, y, se, offset=True, bootstrap=0)
    (y_inf, c, alpha), _ = curve_fit(
        lambda x, a, b, k: a + b * x**-k,
        D.astype(float),
        y,
        p0=[0.36, 0.05, 0.8],
        sigma=se,
        absolute_sigma=True,
        xtol=1e-14,
        ftol=1e-14,
        maxfev=20000,
    )
    assert fit.alpha == pytest.approx(alpha, rel=1e-5)
    assert fit.C == pytest.approx(c, rel=1e-4)  # noqa: SIM300 -- fit.C is a fitted attribute, not a constant
    assert fit.offset == pytest.approx(y_inf, abs=1e-10)
    chi2 = np.sum(((y - fit.predict(D)) / se) ** 2) / (D.size - 3)
    assert fit.chi2_dof == pytest.approx(chi2)


def test_bootstrap_intervals_cover_the_true_exponent():
    """Over 50 synthetic datasets, the 95% seed-bootstrap interval of α covers the truth in ≥ 80% of them
    (percentile intervals over 5 seeds undercover a little; measured ~88%), and the one-seed parametric
    bootstrap from se likewise."""
    covered_seeds = covered_param = 0
    for i in range(50):
        rng = np.random.default_rng(100 + i)
        fit = fit_power_law(D, noisy_law(rng), offset=True, seeds_axis=0, bootstrap=100, seed=i)
        covered_seeds += fit.alpha_ci[0] <= 1.0 <= fit.alpha_ci[1]
        se = np.full(D.size, 1e-5)
        one = fit_power_law(D, noisy_law(rng, seeds=1)[0], se, offset=True, bootstrap=100, seed=i)
        covered_param += one.alpha_ci[0] <= 1.0 <= one.alpha_ci[1]
    assert covered_seeds >= 40, covered_seeds
    assert covered_param >= 40, covered_param


def test_no_offset_fit_is_exact_on_a_pure_power_law():
    fit = fit_power_law(D, 2.5 * D.astype(float) ** -0.7)
    assert fit.alpha == pytest.approx(0.7, abs=1e-12)
    assert fit.C == pytest.approx(2.5, rel=1e-12)  # noqa: SIM300 -- fit.C is a fitted attribute, not a constant
    assert fit.offset is None and fit.offset_ci is None
    # no noise, no se: the parametric bootstrap from the (zero) residual scatter gives a point interval
    assert fit.alpha_ci == pytest.approx((0.7, 0.7), abs=1e-12)


def test_no_offset_fit_propagates_se_to_log_space():
    """Weights (y/se)² on log y: the same line as numpy's weighted polyfit of log y with w = y/se."""
    rng = np.random.default_rng(5)
    y = 3 * D**-0.5 * np.exp(0.05 * rng.standard_normal(D.size))
    se = 0.05 * y * np.linspace(0.5, 2, D.size)
    fit = fit_power_law(D, y, se, bootstrap=0)
    slope, intercept = np.polyfit(np.log(D), np.log(y), 1, w=y / se)
    assert fit.alpha == pytest.approx(-slope, rel=1e-10)
    assert fit.C == pytest.approx(np.exp(intercept), rel=1e-10)  # noqa: SIM300 -- fit.C is a fitted attribute, not a constant


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x": [1, 2, 2], "y": [1, 2, 3]}, "x must have distinct values"),
        ({"x": [1, -2, 3], "y": [1, 2, 3]}, "x must be finite and positive"),
        ({"x": [1, 2, 3], "y": [1, 2]}, "y must have the shape of x"),
        ({"x": [1, 2], "y": [1, 2], "offset": True}, "at least 3 points"),
        ({"x": [1, 2, 3], "y": [1, -2, 3]}, "y must be positive"),
        ({"x": [1, 2, 3], "y": [1, 2, 3], "se": [1, -1, 1]}, "se must be non-negative"),
        ({"x": [1, 2, 3], "y": [1, 2, 3], "level": 1.5}, "level must lie in"),
    ],
)
def test_fit_power_law_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(**kwargs)


def trace_dataset(tau_dim=True):
    """risk_trace over (d, time): identical curves except d=64, which is larger by 0.05·exp(−τ)
    (so its maximal distance to d=256's curve is 0.05, at τ = 0)."""
    tau = np.linspace(0, 4, 21)
    base = 0.4 + 0.6 * np.exp(-tau)
    curves = np.stack([base + 0.05 * np.exp(-tau) * (d == 64) for d in (64, 128, 256)])
    curves = np.stack([curves, curves + 0.01])  # two seeds: their mean is curves + 0.005
    dims = ("seed", "d", "tau" if tau_dim else "step")
    return xr.Dataset(
        {"risk_trace": (dims, curves)},
        coords={"seed": [0, 1], "d": [64, 128, 256], dims[-1]: tau if tau_dim else np.arange(21)},
    )


def test_collapse_is_zero_for_identical_curves_and_finds_a_known_shift():
    ds = trace_dataset()
    out = collapse(ds)
    assert out.dims == ("d",) and out.name == "risk_trace_collapse"
    assert out.sel(d=128).item() == 0 and out.sel(d=256).item() == 0
    assert out.sel(d=64).item() == pytest.approx(0.05, abs=1e-12)
    assert out.attrs["time"] == "tau" and out.attrs["reference"] == 256 and "note" not in out.attrs


def test_collapse_falls_back_to_step_and_says_so():
    out = collapse(trace_dataset(tau_dim=False))
    assert out.sel(d=64).item() == pytest.approx(0.05, abs=1e-12)
    assert out.attrs["time"] == "step" and "'tau' is not in the results" in out.attrs["note"]


def test_collapse_interpolates_when_tau_depends_on_d():
    """tau(d, step) = 32·step/d: each d covers a different τ range on a different grid. A curve linear in τ,
    the same for every d, collapses exactly (0); adding 0.02·τ to d=64 gives 0.02·max shared τ."""
    step = np.arange(0, 65, 8)
    d = np.array([64, 128, 256])
    tau = 32 * step[None, :] / d[:, None]
    curves = 1 - 0.1 * tau
    ds = xr.Dataset({"risk_trace": (("d", "step"), curves)}, coords={"d": d, "step": step, "tau": (("d", "step"), tau)})
    assert np.allclose(collapse(ds).values, 0, atol=1e-15)
    ds["risk_trace"] = (("d", "step"), curves + 0.02 * tau * (d[:, None] == 64))
    # shared range with d=256 (τ up to 8) is [0, 8]: the difference 0.02·τ peaks at τ = 8
    assert collapse(ds).sel(d=64).item() == pytest.approx(0.16, abs=1e-12)


def results_dataset(d=D, rates=(0.5, 2.0), seeds=4, shift=(0.0, 0.0), diverged=False, seed=11):
    """A synthetic results file: dims (seed, rate, d), exact_risk = R_Gauss(r) + shift + 0.04·d^(−1) + noise,
    risk = exact_risk + MC noise with risk_se, theory at the realised rate round(r·d)/d, risk_trace over step
    with tau = 128·step/d, status ok (or one diverged run with a wild value)."""
    rng = np.random.default_rng(seed)
    d = np.asarray(d)
    rates = np.asarray(rates, float)
    limit = r_gauss(rates) + np.asarray(shift)
    exact = limit[None, :, None] + 0.04 / d[None, None, :] + 2e-5 * rng.standard_normal((seeds, rates.size, d.size))
    se = np.full(exact.shape, 1e-4)
    risk = exact + se * rng.standard_normal(exact.shape)
    realised = np.round(rates[:, None] * d[None, :]) / d[None, :]
    theory = np.broadcast_to(r_gauss(realised), exact.shape)
    step = np.arange(10, 101, 10)
    trace = exact[..., None] + (1 - exact[..., None]) * np.exp(-step * 128 / (20 * d[None, None, :, None]))
    status = np.full(exact.shape, "ok", dtype=object)
    if diverged:
        exact[0, 0, 0] = risk[0, 0, 0] = 7.0
        status[0, 0, 0] = "diverged"
    dims = ("seed", "rate", "d")
    return xr.Dataset(
        {
            "risk": (dims, risk),
            "risk_se": (dims, se),
            "exact_risk": (dims, exact),
            "theory": (dims, theory),
            "risk_trace": ((*dims, "step"), trace),
            "status": (dims, status),
        },
        coords={
            "seed": np.arange(seeds),
            "rate": rates,
            "d": d,
            "step": step,
            "tau": (("d", "step"), 128 * step[None, :] / d[:, None]),
        },
        attrs={"config": '{"activation": "sign"}'},
    )


def test_extrapolate_finds_the_limit_per_rate_and_compares_with_theory():
    """R∞ per rate within its interval of R_Gauss(r) where the data tend to it; a rate shifted by 0.003 is not
    covered; a diverged run (status) is left out."""
    ds = results_dataset(shift=(0.0, 0.003), diverged=True)
    out = extrapolate(ds, bootstrap=300)
    assert out["r_inf"].dims == ("rate",)
    assert np.allclose(out["theory"], r_gauss([0.5, 2.0]), atol=1e-6)  # at the nominal rate
    assert out["covers"].values.tolist() == [True, False]
    assert out["r_inf"].values == pytest.approx(r_gauss([0.5, 2.0]) + np.array([0, 0.003]), abs=1e-4)
    assert np.allclose(out["r_inf_minus_theory"], out["r_inf"] - out["theory"])
    assert np.all(out["alpha_low"] < 1) and np.all(out["alpha_high"] > 1)
    assert out["mean"].sel(rate=0.5, d=64).item() < 1  # the diverged run's 7.0 is not in the mean
    assert out["draw_alpha"].sizes["draw"] == 300 and out.attrs["var"] == "exact_risk"


def write_results(tmp_path, **kwargs):
    return save_results(results_dataset(**kwargs), tmp_path / "sweep" / "results.nc")


def test_scaling_command_prints_the_table_and_writes_files(tmp_path, capsys):
    path = write_results(tmp_path)
    assert main(["scaling", str(path), "--bootstrap", "200"]) == 0
    text = capsys.readouterr().out
    for column in ("rate", "α [CI]", "C", "R∞ [CI]", "R_Gauss", "R∞ − R_Gauss", "covers?"):
        assert column in text
    folder = path.parent
    saved = load_results(folder / "scaling.nc")
    for rate in (0.5, 2.0):
        row = saved.sel(rate=rate)
        assert f"| {rate:g} | {float(row['alpha']):.3f} [" in text
        r_inf, low, high, theory = (float(row[name]) for name in ("r_inf", "r_inf_low", "r_inf_high", "theory"))
        assert theory == pytest.approx(r_gauss(rate), abs=1e-6)
        n = max(4, 1 - int(np.floor(np.log10(high - low))))  # two significant digits of the interval's width
        covers = "yes" if low <= theory <= high else "no"
        cells = f"{r_inf:.{n}f} [{low:.{n}f}, {high:.{n}f}] | {theory:.{n}f} | {r_inf - theory:+.{n}f} | {covers}"
        assert cells in text
    assert "risk_trace_collapse" in saved and saved["risk_trace_collapse"].sel(d=2048).values.tolist() == [0, 0]
    markdown = (folder / "scaling.md").read_text()
    assert "| rate | α [CI]" in markdown and "Trajectory collapse (risk_trace against tau)" in markdown
    for name in ("scaling_gap.png", "scaling_trajectories.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"{name}" in text
    assert not list(folder.glob(".*.tmp"))


def test_scaling_command_on_risk_with_out_dir(tmp_path, capsys):
    path = write_results(tmp_path)
    out = tmp_path / "elsewhere"
    assert main(["scaling", str(path.parent), "--var", "risk", "--out", str(out), "--bootstrap", "50"]) == 0
    assert "R∞ [CI]" in capsys.readouterr().out
    saved = load_results(out / "scaling.nc")
    assert saved.attrs["var"] == "risk" and "parametric" not in saved.attrs["method"]
    assert (out / "scaling.md").exists() and not (path.parent / "scaling.md").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.nc"], "RESULTS: cannot read results file"),
        (["{path}", "--var", "nope"], "--var 'nope' is not a variable"),
        (["{path}", "--along", "lr"], "--along 'lr' is not a dimension of 'exact_risk'"),
        (["{path}", "--var", "risk_trace"], "has a trace dimension 'step'"),
        (["{short}"], "--along 'd' has 2 values (64, 128); a scaling fit needs at least 3"),
        (["{path}", "--level", "2"], "--level must lie in (0, 1)"),
    ],
)
def test_scaling_command_bad_input_exits_2_naming_the_argument(tmp_path, capsys, args, message):
    path = write_results(tmp_path)
    short = save_results(results_dataset(d=[64, 128]), tmp_path / "short.nc")
    argv = [a.format(path=path, short=short) for a in args]
    if argv[0] == "missing.nc":
        argv[0] = str(tmp_path / "missing.nc")
    assert main(["scaling", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aejax: error: ") and message in err, err
