"""What a fit admits about itself: ``FitStatus``, its flags, and the checks that raise them."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from aejax import _validate

# What a fit can admit about itself (``FitStatus.flags``); the failures void its intervals.
FIT_FLAGS = {
    "at_bound": "failure: an estimate sits at an end of the range searched, so it is not a minimum of the model",
    "bootstrap_at_bound": "failure: more resamples than the interval's tail sit at an end of the range, so the "
    "interval is cut by the range, not by the data",
    "not_identifiable": "failure: the data do not determine the parameters (no finite estimate, or the fitted "
    "change over the data is within the points' errors)",
    "no_dof": "caution: no residual degrees of freedom, so the model's fit to the data cannot be checked",
}
FIT_FAILURES = frozenset(flag for flag, text in FIT_FLAGS.items() if text.startswith("failure"))
_BOUND_TOLERANCE = 0.01  # |log(estimate / bound)| below which an estimate sits at the bound (1%)


@dataclasses.dataclass(frozen=True)
class FitStatus:
    """What a fit admits about itself: no flags (``ok``), or some of ``FIT_FLAGS`` with one note each.

    A fit with a failure flag (``at_bound``, ``bootstrap_at_bound``, ``not_identifiable``) reports its
    least-squares numbers but no interval (NaN), and ``aejax scaling`` exits with status 3; ``no_dof`` is a
    caution shown next to the fit. Any fit (this module's, or a joint fit) builds one with
    ``FitStatus.of`` and the checks ``bound_status`` and ``identifiable_status``, and combines them with ``|``.

    Attributes:
        flags: the flags raised, in the order found (empty: ok).
        notes: one sentence per flag, with the numbers that raised it.

    Examples:
        >>> status = bound_status("alpha", 0.01, np.full(100, 0.01), (0.01, 10.0), level=0.95)
        >>> str(status), status.failed
        ('at_bound,bootstrap_at_bound', True)
        >>> str(FitStatus()), FitStatus.of(no_dof="3 points, 3 parameters").failed
        ('ok', False)
    """

    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, **checks: str | None) -> FitStatus:
        """The status with a flag for each check whose note is not ``None`` (flags from ``FIT_FLAGS``)."""
        unknown = sorted(set(checks) - set(FIT_FLAGS))
        if unknown:
            raise _validate.InputError(f"unknown fit flags {unknown}; allowed: {', '.join(FIT_FLAGS)}")
        raised = [(flag, note) for flag, note in checks.items() if note is not None]
        return cls(tuple(f for f, _ in raised), tuple(n for _, n in raised))

    def __or__(self, other: FitStatus) -> FitStatus:
        new = [(f, n) for f, n in zip(other.flags, other.notes, strict=True) if f not in self.flags]
        return FitStatus(self.flags + tuple(f for f, _ in new), self.notes + tuple(n for _, n in new))

    @property
    def ok(self) -> bool:
        """No flag raised."""
        return not self.flags

    @property
    def failed(self) -> bool:
        """A failure flag raised: the estimates are not trustworthy and have no interval."""
        return any(flag in FIT_FAILURES for flag in self.flags)

    def describe(self) -> str:
        """``ok``, or each flag with its note."""
        return "; ".join(f"{f}: {n}" for f, n in zip(self.flags, self.notes, strict=True)) or "ok"

    def __str__(self) -> str:
        return ",".join(self.flags) or "ok"


def _at_bound(values: np.ndarray, bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.abs(np.log(values / bounds[0])) <= _BOUND_TOLERANCE
        high = np.abs(np.log(values / bounds[1])) <= _BOUND_TOLERANCE
    return low, high


def bound_status(
    name: str, estimate: float, draws: Any, bounds: tuple[float, float], *, level: float = 0.95
) -> FitStatus:
    """``at_bound`` when a positive parameter's ``estimate`` sits (within 1%) at an end of the ``bounds``
    searched; ``bootstrap_at_bound`` when a larger share of its bootstrap ``draws`` does than the
    interval's tail ``(1 − level)/2``, so that the interval's end would be the bound itself.

    Args:
        name: the parameter's name (for the notes).
        estimate: its estimate.
        draws: its bootstrap estimates (may be empty).
        bounds: ``(low, high)``, both positive.
        level: the intervals' confidence level.

    Returns:
        A ``FitStatus``.

    Examples:
        >>> str(bound_status("alpha", 1.0, np.array([0.01, 1.0, 1.1]), (0.01, 10.0), level=0.5))
        'bootstrap_at_bound'
    """
    low, high = _at_bound(np.array([estimate]), bounds)
    at = None
    if low[0] or high[0]:
        end = "lower" if low[0] else "upper"
        at = f"{name} = {estimate:.4g} sits at the {end} end of its range [{bounds[0]:g}, {bounds[1]:g}]"
    draws = np.asarray(draws, float)
    draws = draws[np.isfinite(draws)]
    share = None
    if draws.size:
        d_low, d_high = _at_bound(draws, bounds)
        tail = (1 - level) / 2
        parts = [(f, e) for f, e in ((d_low.mean(), "lower"), (d_high.mean(), "upper")) if f > tail]
        if parts:
            share = ", ".join(f"{f:.0%} of the {draws.size} resamples' {name} sit at the {e} end" for f, e in parts)
            share += f" (more than the interval's tail of {tail:.1%})"
    return FitStatus.of(at_bound=at, bootstrap_at_bound=share)


def identifiable_status(estimates: Any, change: float, noise: float | None) -> FitStatus:
    """``not_identifiable`` when an estimate is not finite, or when the change the fitted model makes over
    the data (``change``, e.g. ``|C·(x_min^(−α) − x_max^(−α))|``) is not larger than ``noise``, the points'
    typical standard error (``None``: unknown, not checked).

    Examples:
        >>> str(identifiable_status([0.5, 1e-9, 0.3], change=1e-9, noise=1e-4))
        'not_identifiable'
    """
    values = np.asarray(estimates, float)
    if not np.all(np.isfinite(values)):
        return FitStatus.of(not_identifiable="the fit has no finite estimate")
    if not np.isfinite(change) or (noise is not None and np.isfinite(noise) and change <= noise):
        return FitStatus.of(
            not_identifiable=f"the fitted change over the data, {change:.3g}, is within the points' standard "
            f"error {noise:.3g}: the limit and the exponent are not determined"
        )
    return FitStatus()
