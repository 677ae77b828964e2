"""The sparse and phase-transition reproductions at tiny size: outputs written, numbers sane."""

import numpy as np
import pytest

from aejax.reproduce import phase_transition, sparse
from aejax.results import load_results


@pytest.mark.integration
def test_sparse_tiny(tmp_path):
    result = sparse.run("tiny", tmp_path, progress=False)
    ds = load_results(result["nc"])
    assert result["png"].stat().st_size > 0 and "| decoder |" in result["md"].read_text()
    assert np.all(np.isfinite(ds["risk"].values))
    assert np.all((ds["shallow_ipr"] >= 1 / 32 - 1e-6) & (ds["shallow_ipr"] <= 1))  # d = 32
    # at p = 1 (Gaussian) there is no finite-d kurtosis correction
    np.testing.assert_allclose(ds["shallow_finite_d"].sel(p=1.0), ds["theory"].sel(decoder="shallow", p=1.0), atol=1e-6)
    # untrained posterior mean and layer 1 of the multilayer decoder are the same estimator
    np.testing.assert_allclose(
        ds["risk"].sel(decoder="posterior_mean"), ds["risk"].sel(decoder="multilayer_1"), atol=1e-4
    )


@pytest.mark.integration
def test_phase_transition_tiny(tmp_path):
    result = phase_transition.run("tiny", tmp_path, progress=False)
    ds = load_results(result["nc"])
    assert set(result["p_star"]) == {"tied_clip", "untied_clip", "untied_ste"} and "p*" in result["md"].read_text()
    order = ds["identity_likeness"].values
    assert np.all((order > 0) & (order <= 1))
    ties = ds["exact_tie_fraction"].values
    assert np.all((ties >= 0) & (ties <= 1)) and ds["identity_likeness_trace"].sizes["step"] == 20
    # at p = 1 the identity encoder is lossless, with or without perturbation
    assert float(ds["identity_risk"].sel(p=1.0).max()) < 1e-3


def test_crossing_of_the_order_parameter():
    ps = np.array([0.1, 0.2, 0.3, 0.4])
    assert phase_transition._crossing(ps, np.array([0.1, 0.4, 0.8, 0.9])) == pytest.approx(0.225)
    assert phase_transition._crossing_interval(ps, np.array([0.1, 0.4, 0.8, 0.9])) == (0.2, 0.3)
    for never in (np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.6, 0.7, 0.8, 0.9])):  # never below, or never above
        assert np.isnan(phase_transition._crossing(ps, never))
        assert np.isnan(phase_transition._crossing_interval(ps, never)).all()
    # the bootstrap over identical seeds has no spread
    order = np.repeat(np.array([[0.1], [0.4], [0.8], [0.9]]), 3, axis=1)
    assert phase_transition._bootstrap_crossing(ps, order, 50) == pytest.approx((0.225, 0.0))
