"""aejax.reproduce: every target runs at the tiny size, writes its three files, and gives sane numbers."""

import math

import numpy as np
import pytest
import xarray as xr

from aejax import reproduce, theory
from aejax.plot import figure_provenance
from aejax.report import markdown_table
from aejax.reproduce import finite_size
from aejax.reproduce.surrogates import steps_to_reach


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("reproduce")


def _check_files(result, name):
    for kind in ("png", "nc", "md"):
        path = result[kind]
        assert path.name == f"{name}.{kind}" and path.stat().st_size > 0
    assert result["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["md"].read_text().startswith(f"# {name} (tiny)")
    made_by = f"aejax reproduce {name} --size tiny"  # the PNG, the table and the Dataset say what made them
    assert figure_provenance(result["png"])["Source"] == made_by and f"Made by `{made_by}`" in result["md"].read_text()
    return xr.load_dataset(result["nc"])


@pytest.mark.integration
def test_gaussian_limit(out):
    result = reproduce.run("gaussian-limit", "tiny", out, progress=False)
    ds = _check_files(result, "gaussian-limit")
    gd = ds["gap"].sel(trainer="gd_exact")
    assert float(abs(gd.where(ds["rate"] <= 1)).max()) < 1e-3  # R_Gauss is exact at r ≤ 1 and GD reaches it
    assert 0 <= float(gd.sel(rate=2.0).mean()) < 0.01  # approached from above at r > 1
    np.testing.assert_allclose(
        ds["theory"].isel(trainer=0, seed=0), theory.gaussian_limit(ds["rate"].values), atol=1e-6
    )
    assert result["max_gap"]["gd_exact"]["r<=1"] < 1e-3


@pytest.mark.integration
def test_finite_size(out):
    result = reproduce.run("finite-size", "tiny", out, progress=False)
    ds = _check_files(result, "finite-size")
    frame = ds["gap"].sel(trainer="tight_frame", rate=2.0).mean("seed")
    assert np.all(frame.values > 0) and frame.values[1] < frame.values[0]  # excess shrinks with d
    assert np.isnan(ds["gap"].sel(trainer="tight_frame", rate=0.5)).all()
    assert ds["online_risk_trace"].dims == ("d", "rate", "seed", "tau")  # every d on the same τ grid
    np.testing.assert_allclose(ds["tau"], [4.0, 8.0, 12.0, 16.0])


def test_finite_size_fit_recovers_a_planted_exponent(tmp_path):
    dims = [64, 128, 256, 512]
    risk = np.full((3, 4, 3, 2), np.nan)
    theory_values = np.asarray(theory.gaussian_limit(np.asarray(finite_size.RATES)))
    risk[2, :, 2, :] = theory_values[2] + 0.2 * np.asarray(dims, float)[:, None] ** -1.5
    ds = xr.Dataset(
        {"exact_risk": (("trainer", "d", "rate", "seed"), risk), "theory": ("rate", theory_values)},
        coords={"trainer": list(finite_size.TRAINERS), "d": dims, "rate": list(finite_size.RATES), "seed": [0, 1]},
        attrs={"size": "tiny", "online_adam": "-", "gd_exact": "-", "tight_frame": "-"},
    )
    result = finite_size.summarize(ds, tmp_path)
    fit = result["exponents"]["tight_frame"][2.0]
    assert abs(fit.alpha - 1.5) < 1e-3 and fit.alpha_ci[1] - fit.alpha_ci[0] < 1e-3
    assert "1.50 [1.50, 1.50]" in result["md"].read_text()


@pytest.mark.integration
def test_features(out):
    result = reproduce.run("features", "tiny", out, progress=False)
    ds = _check_files(result, "features")
    assert float(ds["overlap_rms"].sel(encoder="haar", rate=0.5).max()) < 1e-5  # a rotation has orthogonal rows
    assert float(ds["decoder_cosine"].min()) > 0.9  # the decoder learns to align with B̄ᵀ
    assert float(abs(ds["eigenvalue"].sum("k") - ds["rate"] * ds.sizes["k"]).max()) < 1e-3  # tr B̄ᵀB̄ = n


@pytest.mark.integration
def test_surrogates(out):
    result = reproduce.run("surrogates", "tiny", out, progress=False)
    ds = _check_files(result, "surrogates")
    assert "ste" in ds["variant"].values and "helu margin=0.05" in ds["variant"].values
    assert np.all((ds["exact_risk"] > 0.3) & (ds["exact_risk"] < 1.0))
    assert np.all(ds["steps_to_reach"] <= ds.attrs["steps"])


@pytest.mark.integration
def test_universality(out):
    result = reproduce.run("universality", "tiny", out, progress=False)
    ds = _check_files(result, "universality")
    r = ds["rate"].values
    np.testing.assert_allclose(ds["theory"], 1 - 2 * np.round(r * ds.attrs["d"]) / ds.attrs["d"] / math.pi, atol=1e-6)
    assert np.all(np.isfinite(ds["test_risk"])) and np.all(ds["test_risk"] < 1.0)
    unwhitened = ds["test_risk"].sel(condition="unwhitened")  # a decaying spectrum is cheaper to code
    assert np.all(unwhitened < ds["test_risk"].sel(condition="whitened"))


def test_bad_name_and_size():
    with pytest.raises(ValueError, match="unknown name 'nope'"):
        reproduce.run("nope")
    with pytest.raises(ValueError, match="unknown size 'huge'; allowed: large, small, tiny"):
        reproduce.run("features", "huge")


def test_helpers():
    # the one power-law fit is aejax.scaling's (gap ≈ C·d^-α: the slope -1 is α = 1)
    from aejax.scaling import fit_power_law

    fit = fit_power_law([10, 100, 1000], [1.0, 0.1, 0.01])
    assert abs(fit.alpha - 1) < 1e-12 and fit.alpha_ci[1] - fit.alpha_ci[0] < 1e-12
    with pytest.raises(ValueError, match="at least 2 points"):
        fit_power_law([10], [1.0])
    assert steps_to_reach([1.0, 0.5, 0.305, 0.3], [1, 2, 3, 4]) == 3
    assert "| +0.0010 |" in markdown_table(["gap"], [[0.001]])
