"""The sparse and phase-transition reproductions at tiny size: outputs written, numbers sane."""

import numpy as np

from aejax.reproduce import phase_transition, sparse
from aejax.results import load_results


def test_sparse_tiny(tmp_path):
    result = sparse.run("tiny", tmp_path, progress=False)
    ds = load_results(result["nc"])
    assert result["png"].stat().st_size > 0 and "| decoder |" in result["md"].read_text()
    assert np.all(np.isfinite(ds["risk"].values))
    # untrained posterior mean and layer 1 of the multilayer decoder are the same estimator
    np.testing.assert_allclose(ds["risk"].sel(decoder="posterior_mean"), ds["risk"].sel(decoder="multilayer_1"), atol=1e-4)


def test_phase_transition_tiny(tmp_path):
    result = phase_transition.run("tiny", tmp_path, progress=False)
    ds = load_results(result["nc"])
    assert set(result["p_star"]) == {"tied_clip", "untied_clip", "untied_ste"} and "p*" in result["md"].read_text()
    order = ds["identity_likeness"].values
    assert np.all((order > 0) & (order <= 1))
    # at p = 1 the identity encoder is lossless, with or without perturbation
    assert float(ds["identity_risk"].sel(p=1.0).max()) < 1e-3
