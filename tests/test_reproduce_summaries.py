"""The reproductions' pure summaries (Dataset in → numbers, table): checked on small hand-made
Datasets against answers computed here by hand, without training anything."""

import math

import numpy as np
import pytest
import xarray as xr

from aejax.report import seed_mean_se
from aejax.reproduce import phase_transition, universality

RATES, SEEDS = [0.5, 1.0], [0, 1, 2]


def _universality_sweep(offset):
    """A stand-in for one condition's sweep: the record's three risks over (seed, rate)."""
    base = np.array([[0.60, 0.30], [0.62, 0.34], [0.64, 0.32]]) + offset  # (seed, rate)
    return xr.Dataset(
        {
            "train_risk": (("seed", "rate"), base - 0.05),
            "heldout_risk": (("seed", "rate"), base),
            "gaussian_equivalent_risk": (("seed", "rate"), base + 0.01),
            "status": (("seed", "rate"), np.full((3, 2), "ok")),
        },
        coords={"seed": SEEDS, "rate": RATES, "lr": 0.005},
    )


def test_universality_summary_by_hand():
    spectra = np.array([[1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0]])
    ds = universality.assemble([_universality_sweep(k * 0.1) for k in range(3)], spectra, data="hand-made")
    assert ds.attrs["d"] == 4 and set(ds.data_vars) >= {"train_risk", "test_risk", "gaussian_risk", "theory"}
    # R_Gauss at r ≤ 1 is 1 − 2r/π (r = round(r·d)/d = r here)
    np.testing.assert_allclose(ds["theory"], [1 - 2 * 0.5 / math.pi, 1 - 2 / math.pi], rtol=1e-6)  # float32 theory
    # PCA on the spectrum (2, 1, .5, .5): n = 2 keeps the two largest, (0.5 + 0.5)/4 is left; n = 4 leaves 0
    np.testing.assert_allclose(ds["pca_risk"].sel(condition="unwhitened"), [0.25, 0.0], atol=1e-12)
    header, rows = universality.summary_rows(ds)
    assert header[:3] == ["r", "R_Gauss", "whitened train"] and len(rows) == 2
    row = dict(zip(header, rows[1], strict=True))  # r = 1
    assert row["whitened test"] == pytest.approx((0.30 + 0.34 + 0.32) / 3)
    assert row["unwhitened train"] == pytest.approx((0.30 + 0.34 + 0.32) / 3 + 0.1 - 0.05)
    assert row["gaussian_control Gaussian-equiv."] == pytest.approx((0.30 + 0.34 + 0.32) / 3 + 0.2 + 0.01)
    assert row["PCA (unwhitened spectrum)"] == 0.0


def test_seed_standard_error_of_the_reproductions():
    """universality's figure divided std (ddof 0) by √(k − 1): the same number as std (ddof 1)/√k
    for k ≥ 2, but 0 for one seed; the shared helper gives the textbook value and NaN for one seed."""
    values = np.array([0.30, 0.34, 0.32])
    mean, se = seed_mean_se(xr.DataArray(values, dims="seed"))
    by_hand = math.sqrt(sum((v - 0.32) ** 2 for v in values) / 2 / 3)
    assert float(mean) == pytest.approx(0.32) and float(se) == pytest.approx(by_hand, rel=1e-12)
    assert np.std(values) / math.sqrt(len(values) - 1) == pytest.approx(by_hand, rel=1e-12)
    assert math.isnan(float(seed_mean_se(xr.DataArray([0.3], dims="seed"))[1]))


def _phase_sweep(likeness_by_p, ties=0.0):
    ps = [0.2, 0.3, 0.4, 0.5]
    order = np.repeat(np.asarray(likeness_by_p, float)[:, None], 2, axis=1)  # (p, seed): seeds agree
    return xr.Dataset(
        {
            "identity_likeness": (("p", "seed"), order),
            "risk": (("p", "seed"), 1 - order / 2),
            "identity_likeness_trace": (("p", "seed", "step"), np.repeat(order[..., None], 3, axis=2)),
            "exact_tie_fraction": (("p", "seed"), np.full(order.shape, ties)),
        },
        coords={"p": ps, "seed": [0, 1], "step": [10, 20, 30]},
    )


def test_phase_transition_summary_by_hand():
    crossing = _phase_sweep([0.1, 0.4, 0.8, 0.9])  # crosses 1/2 between p = 0.3 and 0.4
    never = _phase_sweep([0.1, 0.2, 0.3, 0.4])
    identity = np.array([[0.8, 0.7, 0.6, 0.5], [0.81, 0.71, 0.61, 0.51]])
    ds = phase_transition.assemble([crossing, never, crossing], identity, bootstrap=20, training="hand", d=16)
    fits = phase_transition.p_star(ds)
    # linear interpolation: 0.3 + (0.5 − 0.4)·(0.4 − 0.3)/(0.8 − 0.4) = 0.325; seeds agree, so no spread
    assert fits["tied_clip"] == pytest.approx((0.325, 0.0)) and fits["untied_ste"] == pytest.approx((0.325, 0.0))
    assert math.isnan(fits["untied_clip"][0])
    assert ds["p_star_interval"].sel(trainer="tied_clip").values.tolist() == [0.3, 0.4]
    assert ds["identity_likeness_trace"].dims == ("trainer", "p", "seed", "step")
    np.testing.assert_array_equal(ds["identity_risk"].sel(encoder="perturbed_identity"), identity[1])
    assert ds.attrs["d"] == 16 and ds.attrs["p_kurtosis"] == pytest.approx(1 / 3)
    table = phase_transition._table(ds, "tiny")
    assert "tied_clip: p* = 0.325 ± 0.000 (between p = 0.3 and 0.4)" in table


def test_features_summary_by_hand():
    from aejax.reproduce import features

    spread = np.arange(12, dtype=float).reshape(2, 3, 2)  # (rate, encoder, seed)
    per_seed = np.array([[0.9, 1.0], [0.95, 0.97]])  # (rate, seed)
    ds = xr.Dataset(
        {
            "eig_spread": (("rate", "encoder", "seed"), spread),
            "overlap_rms": (("rate", "encoder", "seed"), spread / 100),
            "decoder_cosine": (("rate", "seed"), per_seed),
            "decoder_scale": (("rate", "seed"), per_seed / 2),
            "exact_risk": (("rate", "seed"), per_seed / 3),
        },
        coords={"rate": [0.5, 2.0], "encoder": ["trained", "haar", "init"], "seed": [0, 1]},
    )
    header, rows = features.summary_rows(ds)
    low, high = (dict(zip(header, row, strict=True)) for row in rows)
    assert (
        low["eig spread trained"] == 0.5
        and low["eig spread Haar"] == 2.5
        and high["RMS overlap init"] == pytest.approx(0.105)
    )
    assert low["cos(A, B̄ᵀ)"] == pytest.approx(0.95) and high["scale α"] == pytest.approx(0.96 / 2)
    assert high["exact risk"] == pytest.approx(0.96 / 3)
    # the optimum A = α B̄ᵀ: α = √(2/π) for r ≤ 1, √(π/2)/(r + π/2 − 1) above; R_Gauss(1/2) = 1 − 1/π
    assert low["optimal α"] == pytest.approx(math.sqrt(2 / math.pi))
    assert high["optimal α"] == pytest.approx(math.sqrt(math.pi / 2) / (1 + math.pi / 2))
    assert low["R_Gauss"] == pytest.approx(1 - 1 / math.pi, rel=1e-6)


def test_real_sparse_summary_by_hand():
    from aejax.reproduce import real_sparse

    rates, seeds = [1.0], [0, 1]
    held = {"shallow": 0.40, "learned_denoiser": 0.38, "posterior_mean": 0.45, "multilayer_untrained": 0.5}
    held["multilayer"] = 0.35

    def record(method):
        values = {
            "heldout_risk": [[held[method], held[method] + 0.02]],
            "train_risk": [[held[method] - 0.1] * 2],
            "inverse_participation_ratio": [[0.05, 0.07]],
            "gaussian_equivalent_risk": [[0.39, 0.41]],
        }
        return xr.Dataset(
            {k: (("rate", "seed"), np.asarray(v)) for k, v in values.items()}, coords={"rate": rates, "seed": seeds}
        )

    fit = {"kurtosis": 6.0, "p_moments": 0.5, "near_zero": 0.2, "p_near_zero": 0.6, "scale_factor": 0.9}
    ds = real_sparse.assemble({m: record(m) for m in real_sparse.METHODS}, fit, layers=2, d=4)
    r_gauss = 1 - 2 / math.pi  # R_Gauss(1)
    assert float(ds["theory"].sel(decoder="shallow", rate=1.0)) == pytest.approx(r_gauss, rel=1e-6)
    # the scale mixture: 1 − (E σ)²·(1 − R_Gauss) with (E σ)² = 0.9
    assert float(ds["shallow_scale_mixture"].sel(rate=1.0)) == pytest.approx(1 - 0.9 * (1 - r_gauss), rel=1e-6)
    # the finite-d line: R_Gauss + (1 − R_Gauss)·(E x⁴ − 3)·IPR/12, BG(p) has E x⁴ = 3/p = 6, mean IPR 0.06
    expected = r_gauss + (1 - r_gauss) * 3 * 0.06 / 12
    assert float(ds["shallow_finite_d"].sel(rate=1.0)) == pytest.approx(expected, rel=1e-4)
    rows, gain = real_sparse._table_rows(ds, rates)
    # gain = shallow − method, seed means (0.41 − 0.39 for the learned denoiser, 0.41 − 0.36 multilayer)
    assert gain["learned_denoiser"] == [pytest.approx(0.02)] and gain["multilayer"] == [pytest.approx(0.05)]
    first = rows[0]  # shallow at r = 1: held-out mean, its standard error over the two seeds
    assert first[:2] == ["shallow", "1"] and first[2] == pytest.approx(0.41) and first[3] == pytest.approx(0.01)
