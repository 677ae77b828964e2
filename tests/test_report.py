"""The one table writer, the one seed mean ± se and the figure saver's provenance (aejax/report.py, plot.py)."""

import numpy as np
import pytest
import xarray as xr
from PIL import Image

import aejax
from aejax.plot import figure_provenance, pyplot, save_figure
from aejax.report import markdown_table, seed_mean_se


def test_seed_mean_se_matches_numpy_and_leaves_out_failed_runs():
    values = np.array([[0.31, 0.35, np.nan, 0.29], [0.5, np.nan, np.nan, np.nan]])
    mean, se = seed_mean_se(xr.DataArray(values, dims=("rate", "seed")))
    first = values[0, :][np.isfinite(values[0, :])]
    assert mean.values[0] == pytest.approx(first.mean(), rel=1e-12)
    assert se.values[0] == pytest.approx(np.std(first, ddof=1) / np.sqrt(first.size), rel=1e-12)
    assert mean.values[1] == 0.5 and np.isnan(se.values[1])  # one seed: no spread, never a 0 error


def test_seed_mean_se_names_a_missing_dimension():
    with pytest.raises(aejax.InputError, match="dim must be a dimension of values"):
        seed_mean_se(xr.DataArray([1.0, 2.0], dims="rate"))


def test_markdown_table_refuses_a_ragged_row():
    with pytest.raises(aejax.InputError, match=r"rows\[1\] has 1 cells, but the header has 2 columns"):
        markdown_table(["a", "b"], [["x", "y"], ["z"]])


def test_saved_png_records_version_and_command_readable_by_pillow(tmp_path):
    fig = pyplot().figure()
    path = save_figure(fig, tmp_path / "f.png", command="aejax reproduce finite-size --size tiny")
    pyplot().close(fig)
    with Image.open(path) as image:
        text = dict(image.text)  # pyright: ignore[reportAttributeAccessIssue]
    assert text["Software"] == f"aejax {aejax.__version__}"
    assert text["Source"] == "aejax reproduce finite-size --size tiny"
    assert figure_provenance(path) == text


def test_figure_provenance_refuses_a_file_that_is_not_png(tmp_path):
    path = tmp_path / "f.svg"
    save_figure(pyplot().figure(), path)
    with pytest.raises(aejax.InputError, match="must be a PNG file"):
        figure_provenance(path)
