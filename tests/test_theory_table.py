"""prediction_table: the same numbers as the theory functions it gathers, in fixed-size compiled chunks."""

import importlib

import numpy as np
import pytest

from aejax import theory

se_module = importlib.import_module("aejax.theory.state_evolution")

COLUMN_FUNCTIONS = {
    "denoiser": lambda prior, p, r: theory.denoiser_risk(prior, p, r),
    "se_3": lambda prior, p, r: theory.state_evolution(prior, p, r, 3)[-1],
    "se_fixed_point": lambda prior, p, r: theory.state_evolution_fixed_point(prior, p, r),
    "partial_identity": lambda prior, p, r: 1 - min(r, 1) * theory.best_partial_identity(prior, p)[1],
    "identity_plus_untied": lambda prior, p, r: theory.identity_risk(prior, p, min(r, 1), "plus_untied"),
}


@pytest.mark.slow  # accuracy at size: the slow tier (the module keeps fast checks in the default tier)
def test_table_matches_the_individual_functions_across_chunks():
    """20 rates × 2 ps = 40 rows per prior: three chunks, the last one padded. In float32 the
    table's denoiser column (layer 1 of the state evolution) and denoiser_risk differ by ~2e-5
    relative (1e-9 in float64, test_theory_state_evolution), far below the 4 printed decimals."""
    rates, ps = np.linspace(0.2, 3.0, 20).tolist(), [0.2, 0.6]
    rows = theory.prediction_table(ps=ps, rates=rates)
    assert len(rows) == 80
    for row in rows[::7]:
        for column, fn in COLUMN_FUNCTIONS.items():
            if row[column] is None:
                assert row["r"] > 1
                continue
            assert row[column] == pytest.approx(float(fn(row["prior"], row["p"], row["r"])), rel=1e-4, abs=1e-7), column


def test_new_values_of_any_count_reuse_the_compiled_functions():
    theory.prediction_table(ps=[0.2], rates=[0.5])
    compiled = se_module._layers_and_fixed_point._cache_size()
    theory.prediction_table(ps=[0.25, 0.45, 0.8], rates=[0.6, 1.1, 2.5, 4.0, 7.0, 9.0])  # 18 pairs: 2 chunks
    assert se_module._layers_and_fixed_point._cache_size() == compiled


def test_fixed_point_in_float32_stops_at_a_rounding_level_cycle(monkeypatch):
    """The default tol = 1e-7 is below float32's resolution: the loop must stop long before max_layers."""
    seen = []
    original = se_module._fixed_point

    def spy(*args, **kwargs):
        risk, layers = original(*args, **kwargs)
        seen.append(int(layers))
        return risk, layers

    monkeypatch.setattr(se_module, "_fixed_point", spy)
    p, r = np.array([0.1, 0.3, 0.5, 1.0], np.float32), np.full(4, 2.0, np.float32)  # cycled to 2000 before
    value = theory.state_evolution_fixed_point("bg", p, r)
    assert np.asarray(value).dtype == np.float32 and seen and seen[0] < 200, seen
    np.testing.assert_allclose(value, np.asarray(theory.state_evolution("bg", p, r, 400))[:, -1], rtol=1e-5)
