"""The joint law R(d, τ) = R∞ + A·d^(−α) + B·τ^(−β): recovery of known laws from noisy synthetic surfaces
with measured interval coverage, terms too small to identify, the interaction, the Dataset fit, the report
and the command."""

import math

import numpy as np
import pytest
import xarray as xr

import aejax
from aejax.cli import main
from aejax.scaling import extrapolate_joint, fit_joint, report_joint

D = np.array([64, 128, 256, 512])
TAU = np.array([125.0, 250.0, 500.0, 1000.0, 2000.0])
DD, TT = (a.ravel() for a in np.meshgrid(D, TAU, indexing="ij"))
TRUTH = {"r_inf": 0.3634, "A": 0.5, "alpha": 1.0, "B": 0.15, "beta": 0.65}


def surface(r_inf, A, alpha, B, beta, E=0.0):
    """The law written out independently of the fitter."""
    return r_inf + A * DD**-alpha + B * TT**-beta + E * DD**-alpha * TT**-beta


def noisy(rng, y, seeds=3, scale=3e-4):
    """Seeds with a scatter that falls with d, as trained runs' does."""
    return y + scale * (DD / 64.0) ** -0.5 * rng.standard_normal((seeds, DD.size))


def test_noise_free_surface_is_recovered():
    fit = fit_joint(DD, TT, surface(**TRUTH), bootstrap=0)
    assert fit.status == "ok" and fit.terms == ("d", "time")
    for name, value in TRUTH.items():
        assert getattr(fit, name) == pytest.approx(value, rel=1e-3), name
    assert float(fit.predict(1e12, 1e12)) == pytest.approx(TRUTH["r_inf"], abs=1e-7)


def coverage(replicas, bootstrap, seed=0):
    rng = np.random.default_rng(seed)
    hits = dict.fromkeys(TRUTH, 0)
    statuses = []
    for i in range(replicas):
        fit = fit_joint(DD, TT, noisy(rng, surface(**TRUTH)), seeds_axis=0, bootstrap=bootstrap, rng=i)
        statuses.append(fit.status)
        for name, value in TRUTH.items():
            low, high = fit.ci[name]
            hits[name] += low <= value <= high
    return {name: h / replicas for name, h in hits.items()}, statuses


def test_intervals_cover_the_true_law():
    """95% intervals over 10 noisy replicas of a known surface: R∞, α and β each covered in at least 8
    (the slow test measures the coverage over 200 replicas)."""
    rates, statuses = coverage(10, 100)
    assert statuses == ["ok"] * 10
    assert rates["r_inf"] >= 0.8 and rates["alpha"] >= 0.7 and rates["beta"] >= 0.7, rates


@pytest.mark.slow
def test_interval_coverage_over_many_replicas():
    """Measured: 95% percentile intervals (3 seeds per point, 20 points) cover the truth in ≈ 0.9 of replicas
    (docs/scaling.md quotes the numbers)."""
    rates, statuses = coverage(200, 200, seed=1)
    print("coverage", rates)
    assert statuses.count("ok") >= 190
    assert rates["r_inf"] >= 0.85 and rates["alpha"] >= 0.8 and rates["beta"] >= 0.8, rates


@pytest.mark.parametrize(
    ("small", "term", "exponent"),
    [({"B": 1e-5}, "time", "beta"), ({"A": 1e-4}, "d", "alpha")],
)
def test_a_term_too_small_to_identify_is_flagged_not_invented(small, term, exponent):
    """A term far below the noise: the fit says not_identifiable, reports no exponent for it, and fits the
    rest without it, its R∞ still near the truth."""
    rng = np.random.default_rng(3)
    truth = {**TRUTH, **small}
    for i in range(5):
        fit = fit_joint(DD, TT, noisy(rng, surface(**truth)), seeds_axis=0, bootstrap=50, rng=i)
        assert fit.status == "not_identifiable" and fit.failed, fit
        assert term not in fit.terms and math.isnan(getattr(fit, exponent))
        assert fit.r_inf == pytest.approx(truth["r_inf"], abs=1e-3)
        kept = "alpha" if exponent == "beta" else "beta"
        assert getattr(fit, kept) == pytest.approx(truth[kept], rel=0.2)


def test_interaction_is_added_only_when_the_data_demand_it():
    rng = np.random.default_rng(4)
    with_e = fit_joint(DD, TT, noisy(rng, surface(**TRUTH, E=40.0)), seeds_axis=0, bootstrap=0)
    assert with_e.terms == ("d", "time", "interaction") and with_e.tests["interaction"]["p"] < 1e-6
    assert pytest.approx(40.0, rel=0.3) == with_e.E
    without = [fit_joint(DD, TT, noisy(rng, surface(**TRUTH)), seeds_axis=0, bootstrap=0) for _ in range(5)]
    assert sum("interaction" in f.terms for f in without) <= 1
    assert all(math.isnan(f.E) for f in without if "interaction" not in f.terms)


def test_exponent_at_the_end_of_its_range_voids_the_intervals():
    rng = np.random.default_rng(5)
    fit = fit_joint(DD, TT, noisy(rng, surface(**TRUTH)), seeds_axis=0, bootstrap=50, exponent_range=(0.01, 0.5))
    assert "at_bound" in fit.status.split(",") and fit.failed
    assert fit.alpha == pytest.approx(0.5, rel=0.02)
    assert all(math.isnan(v) for v in fit.ci["r_inf"])


def r_gauss(r):
    """R_Gauss for sign, written out (docs/theory.md §3)."""
    return 1 - 2 * r / math.pi if r <= 1 else (math.pi / 2 - 1) / (r + math.pi / 2 - 1)


def results(rates=(0.5, 2.0), small_tau_term=False, seed=6):
    rng = np.random.default_rng(seed)
    risk = np.empty((3, len(rates), D.size, TAU.size))
    for j, r in enumerate(rates):
        truth = {**TRUTH, "r_inf": r_gauss(r), **({"B": 1e-6} if small_tau_term else {})}
        risk[:, j] = noisy(rng, surface(**truth)).reshape(3, D.size, TAU.size)
    return xr.Dataset(
        {"exact_risk": (("seed", "rate", "d", "time"), risk)},
        coords={"seed": [0, 1, 2], "rate": list(rates), "d": D, "time": TAU},
        attrs={"config": '{"activation": "sign"}'},
    )


def test_dataset_fit_compares_r_inf_with_the_theory_per_rate():
    out = extrapolate_joint(results(), bootstrap=100)
    assert out["r_inf"].dims == ("rate",)
    for r in (0.5, 2.0):
        row = out.sel(rate=r)
        assert float(row["theory"]) == pytest.approx(r_gauss(r), abs=1e-6)  # gaussian_limit is float32
        assert str(row["fit_status"].values) == "ok"
        assert abs(float(row["r_inf_minus_theory"])) < 1e-3
        assert float(row["r_inf_low"]) < float(row["r_inf"]) < float(row["r_inf_high"])


def test_command_along_d_and_time_prints_saves_and_exits_3_on_a_flag(tmp_path, capsys):
    path = tmp_path / "ok" / "results.nc"
    aejax.results.save_results(results(), path)
    assert main(["scaling", str(path), "--along", "d,time", "--bootstrap", "50"]) == 0
    text = capsys.readouterr().out
    for column in ("R∞ [CI]", "R_Gauss", "α [CI]", "β [CI]", "χ²/dof"):
        assert column in text
    for name in ("scaling_joint.nc", "scaling_joint.md", "scaling_joint.png"):
        assert (path.parent / name).exists()
    assert (path.parent / "scaling_joint.png").read_bytes()[:4] == b"\x89PNG"
    flagged = tmp_path / "flagged" / "results.nc"
    aejax.results.save_results(results(rates=(1.0,), small_tau_term=True), flagged)
    assert main(["scaling", str(flagged), "--along", "d,time", "--bootstrap", "20"]) == 3
    assert "not_identifiable" in capsys.readouterr().err
    done = report_joint(flagged, bootstrap=0, out=tmp_path / "report")
    assert done["failed"] and "not_identifiable" in done["table"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"along": ("d", "steps")}, "--along 'steps'"),
        ({"var": "nope"}, "--var 'nope'"),
        ({"along": ("d", "d")}, "two dimensions"),
    ],
)
def test_bad_dataset_input_is_refused(kwargs, message):
    with pytest.raises(aejax.InputError, match=message):
        extrapolate_joint(results(rates=(1.0,)), bootstrap=0, **kwargs)


def test_bad_arrays_are_refused():
    with pytest.raises(aejax.InputError, match="same length"):
        fit_joint([64, 128], [1.0], [0.1, 0.2])
    with pytest.raises(aejax.InputError, match="at least 2 values of d and of tau"):
        fit_joint([64, 128, 256], [10.0, 10.0, 10.0], [0.1, 0.2, 0.3])
    with pytest.raises(aejax.InputError, match="interaction"):
        fit_joint(DD, TT, surface(**TRUTH), interaction="yes")
