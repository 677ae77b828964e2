"""Finite-size scaling laws: power-law fits with bootstrap intervals, extrapolation d → ∞, trajectory collapse.

A sweep over the input dimension ``d`` (one ``results.nc`` with a ``d`` dimension) answers two questions:

- *where does the risk go as d → ∞, and how fast?* ``extrapolate`` fits ``R(d) = R∞ + C·d^(−α)`` to the
  seed-mean risk at each rate and compares ``R∞`` (with its bootstrap interval) with the theory
  ``R_Gauss(r)``; ``fit_power_law`` is the fit itself, for any ``x``, ``y``.
- *do the training curves collapse when time is measured per dimension?* ``collapse`` measures, for each d,
  the largest distance between its seed-mean risk trace and the largest d's, over the time axis ``tau``.

``report`` does both for a results file and writes ``scaling.nc``, ``scaling.md`` and two figures; it is
the ``aejax scaling RESULTS.nc`` command. The joint law in d and training time τ,
``R(d, τ) = R∞ + A·d^(−α) + B·τ^(−β)``, is ``fit_joint`` / ``extrapolate_joint`` / ``report_joint``
(``aejax scaling RESULTS --along d,time``); the best learning rate per d is ``lr_optimum``.

The package's modules each hold one piece (private; everything public is re-exported here):
``_status`` (``FitStatus``), ``_solvers`` and ``_fit`` (``fit_power_law``), ``_data`` (results Datasets),
``_extrapolate``, ``_collapse``, ``_figures``, ``_report``, ``_joint_solver``, ``_joint`` and
``_joint_report`` (the joint law), ``_lr_transfer``.

Examples:
    >>> import numpy as np
    >>> d = np.array([64, 128, 256, 512, 1024])
    >>> fit = fit_power_law(d, 0.36 + 0.03 / d, offset=True, bootstrap=0)
    >>> round(fit.alpha, 6), round(fit.offset, 8)
    (1.0, 0.36)
"""

from __future__ import annotations

from aejax._outer_axes import stack_times
from aejax.scaling._collapse import collapse
from aejax.scaling._data import TRACE_DIMS, check_inputs
from aejax.scaling._extrapolate import extrapolate
from aejax.scaling._figures import plot_gap, plot_trajectories
from aejax.scaling._fit import ALPHA_RANGE, PowerLawFit, fit_power_law
from aejax.scaling._joint import JointFit, fit_joint
from aejax.scaling._joint_report import extrapolate_joint, report_joint
from aejax.scaling._lr_transfer import lr_optimum, transfer_table
from aejax.scaling._report import TABLE_HEADER, report, table_rows
from aejax.scaling._status import FIT_FAILURES, FIT_FLAGS, FitStatus, bound_status, identifiable_status

__all__ = [
    "ALPHA_RANGE",
    "FIT_FAILURES",
    "FIT_FLAGS",
    "TABLE_HEADER",
    "TRACE_DIMS",
    "FitStatus",
    "JointFit",
    "PowerLawFit",
    "bound_status",
    "check_inputs",
    "collapse",
    "extrapolate",
    "extrapolate_joint",
    "fit_joint",
    "fit_power_law",
    "identifiable_status",
    "lr_optimum",
    "plot_gap",
    "plot_trajectories",
    "report",
    "report_joint",
    "stack_times",
    "table_rows",
    "transfer_table",
]
