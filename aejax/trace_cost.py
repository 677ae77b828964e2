"""The trace's cost model: what a trace point costs next to a training step, and how many fit the budget.

A run records its risk at a few trace points. By default the trace may cost at most
``TRACE_BUDGET`` (4%) of the training's FLOPs; ``TrainConfig.trace_count`` and
``TrainConfig.trace_every`` choose the points with the functions here (docs/performance.md).
The functions read a run's structure through ``Run`` (a ``TrainConfig`` is one).

Examples:
    >>> from aejax import TrainConfig
    >>> config = TrainConfig(d=2048, n=2048, steps=1000)
    >>> trace_point_cost(config), affordable_trace_points(config)  # an exact risk costs 6.4 steps
    (6.4, 7)
"""

from __future__ import annotations

import math
from typing import Protocol

from aejax._validate import MAX_STEPS

DEFAULT_TRACE_POINTS = 20
MIN_TRACE_POINTS = 4  # the default trace keeps at least this many points, whatever they cost
TRACE_BUDGET = 0.04  # default traces cost at most this fraction of the training's FLOPs (time: <= 5%)


class Run(Protocol):
    """What the cost model reads of a run's structure (``aejax.TrainConfig`` provides it)."""

    @property
    def d(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def batch(self) -> int: ...
    @property
    def mode(self) -> str: ...
    @property
    def trace_samples(self) -> int: ...
    @property
    def trace_risk(self) -> str: ...
    @property
    def total_steps(self) -> int: ...


def default_trace_every(steps: int, points: int = DEFAULT_TRACE_POINTS, at_least: bool = False) -> int:
    """The largest divisor of ``steps`` that is at most ``steps // points`` (at least 1): about
    ``points`` trace points, or more where ``steps`` has few divisors; with ``at_least``, the smallest
    divisor that is at least ``steps / points``: at most ``points`` trace points.

    Divisors are found by trial division up to √steps, so even ``steps = 2**31 - 1`` is instant.

    Examples:
        >>> default_trace_every(1000), default_trace_every(97), default_trace_every(97, 8, at_least=True)
        (50, 1, 97)
    """
    divisors = set()
    for k in range(1, math.isqrt(steps) + 1):
        if steps % k == 0:
            divisors.update((k, steps // k))
    if at_least:
        return min(k for k in divisors if k * points >= steps)
    return max(k for k in divisors if k <= max(1, steps // points))


def trace_point_cost(config: Run) -> float:
    """FLOPs of one trace point over those of one training step (the cost model behind
    ``TrainConfig.trace_count``; docs/performance.md).

    A step of online or dataset training costs the five ``batch × d × n`` products of the forward
    and backward passes, 10·batch·d·n; a step of GD on the exact risk costs about three exact risks.
    An exact risk costs the two ``n × n × d`` products of the Gram matrix and of ``A C_ss``
    (4·n²·d), a Monte Carlo risk ``trace_samples`` forward passes (4·d·n each).

    Examples:
        >>> from aejax import TrainConfig
        >>> trace_point_cost(TrainConfig(d=1024, n=1024, steps=100))  # exact risk at d = n = 1024
        3.2
    """
    if config.trace_risk == "none":
        return 0.0
    d, n = config.d, config.n
    risk = 4.0 * n * n * d if config.trace_risk == "exact" else 4.0 * d * n * config.trace_samples
    step = 3 * 4.0 * n * n * d if config.mode == "population" else 10.0 * config.batch * d * n
    return risk / step


def affordable_trace_points(config: Run) -> int:
    """The most trace points whose cost stays within ``TRACE_BUDGET`` of the training's FLOPs. The
    last point is not counted: it is the final weights' exact risk, which the record needs anyway.

    Examples:
        >>> from aejax import TrainConfig
        >>> affordable_trace_points(TrainConfig(d=2048, n=2048, steps=1000))
        7
    """
    cost = trace_point_cost(config)
    if cost == 0:
        return MAX_STEPS
    return 1 + int(TRACE_BUDGET * config.total_steps / cost)
