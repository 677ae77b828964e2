"""The per-run record: one schema, name → dimensions, units, long name and how it is computed.

``FIELDS`` drives everything that touches a run's results: the compiled run (``evaluate``), the
training trace (``trace_observables``), the chunk store, the results ``Dataset`` and the
multi-host gather. A new observable is one line here. An ``Observable`` is a function of the
model and its weights, recorded at the end of the run and, when ``traced``, at every trace point
too (as ``<name>_trace``). A ``Field`` is computed from the finished run (``Outcome``); a field
without ``value`` is filled in on the host (``wall_time``).

Examples:
    >>> [f.name for f in FIELDS if f.per_step]
    ['identity_likeness_trace', 'loss_trace', 'risk_trace']
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Protocol

import jax
import numpy as np

from aejax._threefry import key as threefry_key
from aejax.model import Params, coherence, exact_tie_fraction, identity_likeness, inverse_participation_ratio
from aejax.sources import Source

Array = jax.Array
EVAL_FOLD = 0x5EED  # fold_in constant separating the final Monte Carlo key from the training key
TIE_KEY, TIE_SAMPLES = 0x71E, 1024  # fixed probe samples of exact_tie_fraction (the same for every run)


class _TraceRisk(Protocol):
    @property
    def trace_risk(self) -> str: ...


class RecordedModel(Protocol):
    """What the record reads of a run's model: ``aejax.bound.Model`` (``TrainConfig.bind``) is one.

    The record needs the model's interface only, so this module never imports the model's own
    module (which sits above it and calls ``evaluate``). An observable that reads more of the model
    adds the method here.
    """

    @property
    def config(self) -> _TraceRisk: ...
    @property
    def mask(self) -> Array | None: ...
    @property
    def source(self) -> Source: ...
    def exact_risk(self, params: Params) -> Array: ...
    def heldout_risk(self, params: Params) -> Array: ...
    def train_risk(self, params: Params) -> Array: ...
    def gaussian_equivalent_risk(self, params: Params) -> Array: ...
    def mc_risk(self, params: Params, key: Array, n_samples: int) -> tuple[Array, Array]: ...


class Outcome:
    """A finished run as its record fields see it: ``model``, final ``params``, ``trace``, and
    the final Monte Carlo estimate ``mc = (mean, se)``, computed once on first use."""

    def __init__(self, model: RecordedModel, params: Params, trace: dict[str, Array], key: Array, mc_samples: int):
        self.model, self.params, self.trace = model, params, trace
        self._key, self._mc_samples = key, mc_samples

    @property
    def final_exact_risk(self) -> Array:
        """The exact risk of the final weights: the trace's last point when the trace holds exact
        risks (it is evaluated at the final weights), else computed here."""
        if self.model.config.trace_risk == "exact":
            return self.trace["risk"][-1]
        return self.model.exact_risk(self.params)

    @functools.cached_property
    def mc(self) -> tuple[Array, Array]:
        return self.model.mc_risk(self.params, jax.random.fold_in(self._key, EVAL_FOLD), self._mc_samples)


@dataclasses.dataclass(frozen=True)
class Field:
    """One recorded quantity: a float32 scalar per run, or one value per trace point (``per_step``)."""

    name: str
    long_name: str
    units: str = "1"
    per_step: bool = False
    value: Callable[[Outcome], Any] | None = None


@dataclasses.dataclass(frozen=True)
class Observable:
    """A function ``of(model, params)`` of the weights, recorded at the end and, if ``traced``, at every trace point."""

    name: str
    long_name: str
    of: Callable[[RecordedModel, Params], Any]
    traced: bool = False
    units: str = "1"

    def fields(self) -> tuple[Field, ...]:
        final = Field(self.name, self.long_name, self.units, value=lambda o: self.of(o.model, o.params))
        if not self.traced:
            return (final,)
        trace = Field(
            f"{self.name}_trace",
            f"{self.long_name}, at each trace point",
            self.units,
            per_step=True,
            value=lambda o: o.trace[self.name],
        )
        return final, trace


OBSERVABLES = (
    Observable(
        "identity_likeness",
        "encoder's identity-likeness: mean over live rows of max_j b̄_ij²",
        lambda m, p: identity_likeness(p.B, m.mask),
        traced=True,
    ),
    Observable(
        "inverse_participation_ratio",
        "encoder's inverse participation ratio: mean over live rows of Σ_j b̄_ij⁴",
        lambda m, p: inverse_participation_ratio(p.B, m.mask),
    ),
    Observable(
        "heldout_risk",
        "risk on every held-out row (config.test_source; NaN without one)",
        lambda m, p: m.heldout_risk(p),
    ),
    Observable(
        "train_risk",
        "risk on every training row of an Empirical source (NaN for other sources)",
        lambda m, p: m.train_risk(p),
    ),
    Observable(
        "gaussian_equivalent_risk",
        "exact risk on a Gaussian with the Empirical training rows' covariance "
        "(NaN for other sources and non-linear decoders)",
        lambda m, p: m.gaussian_equivalent_risk(p),
    ),
    Observable("coherence", "largest |b̄_i·b̄_j| over pairs of live rows", lambda m, p: coherence(p.B, m.mask)),
    Observable(
        "exact_tie_fraction",
        f"fraction of u = 0 exactly where a live row's dominant input is 0 ({TIE_SAMPLES} fixed samples; "
        "1: sign(0) = +1 decides, 0: ties broken by the other coordinates)",
        lambda m, p: exact_tie_fraction(p.B, m.source.sample(threefry_key(TIE_KEY), TIE_SAMPLES), m.mask),
    ),
)

FIELDS: tuple[Field, ...] = (
    Field("risk", "final Monte Carlo risk", value=lambda o: o.mc[0]),
    Field("risk_se", "standard error of risk", value=lambda o: o.mc[1]),
    Field(
        "exact_risk",
        "exact Gaussian risk of the final parameters (NaN if not Gaussian)",
        value=lambda o: o.final_exact_risk,
    ),
    *(field for observable in OBSERVABLES for field in observable.fields()),
    Field("loss_trace", "mean training loss over each trace block", per_step=True, value=lambda o: o.trace["loss"]),
    Field(
        "risk_trace",
        "risk after each trace block (exact, Monte Carlo or NaN)",
        per_step=True,
        value=lambda o: o.trace["risk"],
    ),
    Field("wall_time", "wall time per run (its chunk's time over its runs)", units="s"),
)
NAMES = tuple(field.name for field in FIELDS)
COMPUTED = tuple(field for field in FIELDS if field.value is not None)


def trace_observables_names() -> tuple[str, ...]:
    """Names of the observables recorded at every trace point."""
    return tuple(o.name for o in OBSERVABLES if o.traced)


def trace_observables(model: RecordedModel, params: Params) -> dict[str, Array]:
    """The traced observables of ``params``, by name (called at every trace point during training)."""
    return {o.name: o.of(model, params) for o in OBSERVABLES if o.traced}


def evaluate(
    model: RecordedModel, params: Params, trace: dict[str, Array], key: Array, mc_samples: int
) -> dict[str, Array]:
    """Every computed field of a finished run (jittable; ``key`` is the run's training key)."""
    outcome = Outcome(model, params, trace, key, mc_samples)
    return {
        field.name: jax.numpy.asarray(field.value(outcome), jax.numpy.float32)
        for field in COMPUTED
        if field.value is not None  # always true in COMPUTED; narrows the Optional for the type checker
    }


def empty(n_runs: int, n_steps: int) -> dict[str, np.ndarray]:
    """Zero-filled float32 arrays for ``n_runs`` records (``n_steps`` trace points), by field name."""
    return {field.name: np.zeros((n_runs, n_steps) if field.per_step else (n_runs,), np.float32) for field in FIELDS}


def shape_of(field: Field, n_steps: int) -> tuple[int, ...]:
    """The per-run shape of ``field``'s values: ``()`` or ``(n_steps,)``."""
    return (n_steps,) if field.per_step else ()
