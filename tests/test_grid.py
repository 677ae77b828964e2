"""Sweep grids: expansion, validation, shape buckets and padding overhead (hand-computed references)."""

import numpy as np
import pytest

from aejax.grid import Grid, bucket_sizes, padding_overhead, units


def test_product_grid_lists_every_combination_in_axis_order():
    """The runs of a dict grid are the Cartesian product, last axis fastest (written out by hand)."""
    grid = Grid.from_spec({"seed": [0, 1], "rate": [0.5, 1.0], "lr": np.array([0.1])}, d=16)
    assert grid.dims == ("seed", "rate", "lr")
    assert grid.shape == (2, 2, 1)
    assert grid.coords == {"seed": (0, 1), "rate": (0.5, 1.0), "lr": (0.1,)}
    assert grid.runs == (
        {"seed": 0, "rate": 0.5, "lr": 0.1},
        {"seed": 0, "rate": 1.0, "lr": 0.1},
        {"seed": 1, "rate": 0.5, "lr": 0.1},
        {"seed": 1, "rate": 1.0, "lr": 0.1},
    )


def test_list_grid_keeps_runs_in_order_along_a_run_dimension():
    """A list grid is taken run by run, indexed 0..len-1; integral float seeds become ints."""
    grid = Grid.from_spec([{"seed": 3.0, "rate": 0.25}, {"seed": 1, "rate": 2}], d=8)
    assert grid.dims == ("run",)
    assert grid.shape == (2,)
    assert grid.coords == {"run": (0, 1)}
    assert grid.runs == ({"seed": 3, "rate": 0.25}, {"seed": 1, "rate": 2.0})
    assert isinstance(grid.runs[0]["seed"], int)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({}, "at least one axis"),
        ([], "non-empty list"),
        ({"seed": []}, "'seed' has no values"),
        ({"lr": [0.1, 0.1]}, "duplicate values"),
        ([{"seed": 0, "lr": 0.1}, {"seed": 0, "lr": 0.1}], "duplicates"),
        ([{"seed": 0}, {"seed": 1, "lr": 0.1}], "same axes"),
        ({"seed": [0.5]}, "integers in \\[0, 2\\*\\*31\\)"),
        ({"seed": [-1]}, "integers"),
        ({"lr": [0.0]}, "'lr' must be finite and positive"),
        ({"slope": [float("nan")]}, "'slope' must be finite"),
        ({"p": [1.5]}, "'p' must lie in \\(0, 1\\]"),
        ({"margin": [-0.1]}, "'margin' must be finite and non-negative"),
        ({"rate": [0.01]}, "no hidden unit at d=16"),
    ],
)
def test_bad_grid_is_refused_with_a_message_naming_the_problem(spec, message):
    """Each malformed grid raises ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        Grid.from_spec(spec, d=16)


def test_unknown_axis_is_refused_with_the_allowed_axes():
    """An unknown axis name lists every allowed axis."""
    with pytest.raises(
        ValueError, match="unknown grid axis 'learning_rate'; allowed: d, lr, margin, p, rate, seed, slope"
    ):
        Grid.from_spec({"learning_rate": [0.1]}, d=16)


def test_grid_of_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="grid must be a dict"):
        Grid.from_spec("seed=0", d=16)


def test_units_rounds_rate_times_d():
    assert [units(r, 10) for r in (0.26, 0.3, 0.34, 2.0)] == [3, 3, 3, 20]


def test_bucket_sizes_match_hand_grouping():
    """Greedy from the largest n; a unit count joins the bucket while (N/n)^power <= 1 + max_padding.

    power 1: 64/60, 64/52 <= 1.25 but 64/50 = 1.28; 32/28 <= 1.25; 10 alone.
    power 2: (64/60)^2 = 1.14 joins, (64/52)^2 = 1.51 does not; (52/50)^2 = 1.08 joins; (32/28)^2 = 1.31 does not.
    """
    ns = [64, 60, 52, 50, 32, 28, 10, 60]
    assert bucket_sizes(ns, 0.25) == {64: 64, 60: 64, 52: 64, 50: 50, 32: 32, 28: 32, 10: 10}
    assert bucket_sizes(ns, 0.25, cost_power=2.0) == {64: 64, 60: 64, 52: 52, 50: 52, 32: 32, 28: 28, 10: 10}
    assert bucket_sizes(ns, 0.0) == {n: n for n in ns}


@pytest.mark.parametrize("max_padding", [-0.1, float("inf"), float("nan")])
def test_bucket_sizes_refuse_bad_max_padding(max_padding):
    with pytest.raises(ValueError, match="max_padding must be finite and non-negative"):
        bucket_sizes([4, 8], max_padding)


def test_padding_overhead_matches_hand_computation():
    """Padded over useful work: power 1: (64+64+64+50)/(64+60+52+50) - 1; power 2: squares."""
    ns = [64, 60, 52, 50]
    assert padding_overhead(ns, bucket_sizes(ns, 0.25)) == pytest.approx(242 / 226 - 1, rel=1e-12)
    squares = (64**2 + 64**2 + 52**2 + 52**2) / (64**2 + 60**2 + 52**2 + 50**2) - 1
    assert padding_overhead(ns, bucket_sizes(ns, 0.25, 2.0), 2.0) == pytest.approx(squares, rel=1e-12)
    assert padding_overhead(ns, {n: n for n in ns}) == 0.0


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"lr": [True]}, r"grid axis 'lr' must hold numbers \(int or float\), got True \(bool\)"),
        ({"rate": ["0.5"]}, r"grid axis 'rate' must hold numbers \(int or float\), got '0.5' \(str\)"),
        ({"slope": [None]}, r"grid axis 'slope' must hold numbers \(int or float\), got None"),
        ({"lr": [1e-50]}, r"grid axis 'lr' value 1e-50 becomes 0 in float32"),
        ({"lr": [1e40]}, r"grid axis 'lr' value 1e\+40 overflows float32"),
        ({"margin": [1e-46]}, r"grid axis 'margin' value 1e-46 becomes 0 in float32"),
        ([{"lr": 1e40}], r"grid axis 'lr' value 1e\+40 overflows float32"),
        ({"seed": [True]}, r"grid axis 'seed' must hold integers in \[0, 2\*\*31\), got True"),
        ({"seed": [np.bool_(False)]}, r"grid axis 'seed' must hold integers in \[0, 2\*\*31\), got (np\.)?False"),
        ({"seed": ["3"]}, r"grid axis 'seed' must hold integers in \[0, 2\*\*31\), got '3'"),
        ({"seed": [2**31]}, r"grid axis 'seed' must hold integers in \[0, 2\*\*31\), got 2147483648"),
        ({"seed": [float("inf")]}, r"grid axis 'seed' must hold integers"),
        ({"rate": [1e7]}, r"grid axis 'rate' must be at most 1e\+06"),
        ({"rate": [1e300]}, r"grid axis 'rate' value 1e\+300 overflows float32"),
    ],
)
def test_grid_refuses_non_numbers_and_values_lost_in_float32(spec, message):
    """Booleans, strings, values that float32 turns into 0 or inf, and absurd rates are refused by name."""
    with pytest.raises(ValueError, match=message):
        Grid.from_spec(spec, d=16)


def test_grid_keeps_small_but_representable_float32_values():
    grid = Grid.from_spec({"lr": [1e-30, 1e30], "margin": [0.0], "rate": [1e6]}, d=1)
    assert [run["lr"] for run in grid.runs] == [1e-30, 1e30]
