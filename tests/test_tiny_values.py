"""Sparsities near 0 and data near the float64 limits: a clear refusal or the right numbers, never NaN."""

import math

import numpy as np
import pytest

from aejax import data, theory
from aejax.cli import main
from aejax.sources import Empirical


@pytest.mark.parametrize(
    "call",
    [
        lambda p: theory.identity_risk("sr", p, 1.0, "tied"),
        lambda p: theory.partial_identity_risk("sr", p, 1.0, 0.5),
        lambda p: theory.best_partial_identity("bg", p),
        lambda p: theory.excess_kurtosis("bg", p),
        lambda p: theory.denoiser_risk("bg", p, 1.0),
        lambda p: theory.mmse("sr", p, 2.0),
        lambda p: theory.posterior("sr", p, 2.0, 0.5),
        lambda p: theory.posterior_mean("bg", p, 1.0, 0.5),
        lambda p: theory.state_evolution("sr", p, 1.0, 2),
        lambda p: theory.state_evolution_fixed_point("bg", p, 2.0),
        lambda p: theory.prediction_table(ps=[0.5, p], rates=[1.0]),
    ],
)
def test_sparsity_below_the_floor_is_refused_naming_p(call):
    with pytest.raises(ValueError, match=r"\bps? must be at least 1e-12 .* got 1e-300"):
        call(1e-300)


def test_cli_theory_with_tiny_p_exits_with_an_error(capsys):
    assert main(["theory", "--rates", "1", "--ps", "1e-300"]) != 0
    out = capsys.readouterr()
    assert "nan" not in out.out and "ps must be at least 1e-12" in out.err


def test_table_at_the_floor_is_finite_and_at_the_p_to_0_limits():
    """Closed-form p → 0 limits: identity 1 (tied) and 1 − rκ/2 (plus_untied), the best partial identity
    is the rotation 1 − 2r/π, and the denoised risks vanish (the non-zero entries are far above the noise)."""
    rows = theory.prediction_table(ps=[1e-12], rates=[0.5, 1.0])
    for row in rows:
        values = [v for v in row.values() if isinstance(v, float)]
        assert all(math.isfinite(v) for v in values), row
        kappa = 2 / math.pi if row["prior"] == "bg" else 1.0
        r = row["r"]
        assert row["identity_tied"] == pytest.approx(1.0, abs=1e-6)
        assert row["identity_plus_untied"] == pytest.approx(1 - r * kappa / 2, abs=1e-6)
        assert row["partial_identity"] == pytest.approx(1 - 2 * r / math.pi, abs=1e-5)
        assert 0 <= row["se_fixed_point"] <= row["denoiser"] < 1e-3


@pytest.mark.parametrize("factor", [1e-300, 1e300])
@pytest.mark.parametrize("whiten", [None, "pca", "zca"])
def test_preprocessing_is_scale_invariant_down_to_1e_minus_300(factor, whiten):
    """Standardisation and whitening remove the scale: data × 1e±300 give the output of the data itself."""
    x = np.random.default_rng(0).normal(size=(60, 4)) * [1.0, 2.0, 3.0, 4.0] + 1.0
    np.testing.assert_allclose(
        data.preprocess(x * factor, whiten=whiten), data.preprocess(x, whiten=whiten), atol=1e-12
    )
    source = Empirical(x * factor, whiten=whiten)
    assert np.all(np.isfinite(np.asarray(source.data)))
    np.testing.assert_allclose(np.asarray(source.data), np.asarray(Empirical(x, whiten=whiten).data), atol=1e-5)
