"""aejax.scaling as a package: the public names stay where they were, and the figures of ``aejax scaling``
record the command and the aejax version that made them (issue 23, item 4)."""

import numpy as np
import xarray as xr

import aejax
from aejax import scaling
from aejax.cli import main
from aejax.plot import figure_provenance
from aejax.results import save_results

# Every public name of aejax.scaling before it became a package (the module's namespace, less imports).
BEFORE = [
    "ALPHA_RANGE", "FIT_FAILURES", "FIT_FLAGS", "FitStatus", "JointFit", "PowerLawFit", "TABLE_HEADER",
    "TRACE_DIMS", "bound_status", "check_inputs", "collapse", "extrapolate", "extrapolate_joint", "fit_joint",
    "fit_power_law", "identifiable_status", "lr_optimum", "plot_gap", "plot_trajectories", "report",
    "report_joint", "stack_times", "table_rows", "transfer_table",
]  # fmt: skip


def test_public_names_stay_reachable_and_are_exported():
    assert sorted(scaling.__all__) == sorted(BEFORE)
    for name in BEFORE:
        assert getattr(aejax.scaling, name) is getattr(scaling, name)
        module = getattr(getattr(scaling, name), "__module__", "aejax.scaling") or ""
        assert module.startswith(("aejax.scaling", "aejax._outer_axes")), (name, module)


def test_scaling_figures_record_the_command_and_version(tmp_path, capsys):
    d = np.array([64, 128, 256, 512])
    step = np.arange(1, 5)
    y = 0.36 + 0.03 / d + 1e-6 * np.random.default_rng(0).standard_normal((3, d.size))
    trace = y[..., None] + np.exp(-step[None, None, :] * 128 / d[None, :, None])
    ds = xr.Dataset(
        {"exact_risk": (("seed", "d"), y), "risk_trace": (("seed", "d", "step"), trace)},
        coords={"seed": [0, 1, 2], "d": d, "step": step, "tau": (("d", "step"), 128 * step[None, :] / d[:, None])},
    )
    path = save_results(ds, tmp_path / "results.nc")
    assert main(["scaling", str(path), "--bootstrap", "20"]) == 0
    capsys.readouterr()
    for name in ("scaling_gap.png", "scaling_trajectories.png"):
        meta = figure_provenance(tmp_path / name)
        assert meta["Software"] == f"aejax {aejax.__version__}"
        assert meta["Source"] == f"aejax scaling {path} --var exact_risk --along d --bootstrap 20 --level 0.95"
