"""A run's static structure: ``TrainConfig`` (changing it recompiles).

``TrainConfig`` holds everything that shapes the compiled program (sizes, activation, optimizer,
source, trace, precision) and checks it on construction. Its trace schedule follows the cost
model of ``aejax.trace_cost``. ``TrainConfig.bind(hparams)`` returns the evaluating
``aejax.bound.Model``: the config plus the swept numbers of ``aejax.hparams`` as traced leaves.

Examples:
    >>> config = TrainConfig(d=32, n=16, steps=100)
    >>> config.trace_steps[:3], config.total_steps
    ((5, 10, 15), 100)
    >>> type(config.bind({"rate": 0.25})).__name__
    'Model'
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aejax import _validate
from aejax._validate import MAX_STEPS
from aejax.activations import check_activation, check_surrogate
from aejax.decoders import DECODERS
from aejax.hparams import check_lr_power, full_hparams
from aejax.identity import unwrap
from aejax.model import INIT_KINDS
from aejax.optim import OPTIMIZERS, SCHEDULES, check_transformation
from aejax.sources import SOURCE_ALIASES, SOURCES, Empirical, Source
from aejax.trace_cost import DEFAULT_TRACE_POINTS, MIN_TRACE_POINTS, affordable_trace_points, default_trace_every

if TYPE_CHECKING:  # the one upward reference, allowed in tests/test_layers.py: bind is Model's factory
    from aejax.bound import Model

MODES = ("online", "dataset", "population")
RISK_EVALS = ("auto", "exact", "mc", "none")
TRAINABLE = ("all", "decoder", "head")
TRACE_SPACINGS = ("linear", "log")
MATMUL_PRECISIONS = {"highest": "highest", "tensorfloat32": "tensorfloat32", "bfloat16": "BF16_BF16_F32"}
OPT_STATE_DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static structure of a training run.

    The defaults (online Adam, lr 0.01, batch 128, cosine schedule, clip surrogate, row-normalised
    encoder) are the ones every entry point uses; with them ``make_train(TrainConfig(d, n, steps))``
    reaches the Gaussian limit (docs/theory.md §3) up to the finite-time gap.

    Args:
        d: input dimension.
        n: hidden units compiled (the largest rate's ``round(rate·d)``).
        steps: optimizer steps (or give ``time``).
        batch: samples per step (online and dataset modes).
        activation: ``sign``, ``helu``, ``relu``, ``tanh`` or ``linear``, or a callable ``f(u)``
            (``f(u, slope=..., margin=...)`` receives the swept, traced values; see
            ``aejax.activations.get_activation``). A sweep fingerprints a callable by
            ``aejax.identity.describe``: give a lambda or closure a name with ``aejax.named``.
        surrogate: surrogate derivative of ``sign``: a name in ``aejax.activations.SURROGATES`` or
            a callable ``g(u, k)`` of the pre-activation and the traced slope.
        optimizer: optimizer name (``aejax.optim.OPTIMIZERS``) or an optax transformation: a
            direction (``optax.scale_by_adam()``) or a full optimizer with learning rate 1
            (``optax.adam(1.0)``); aejax applies ``lr`` and the schedule, and warns when the
            transformation carries a learning rate or schedule of its own (``aejax.optim``).
            Give it a name for sweeps that resume: ``aejax.named(tx, "adam-b1=0.8")``.
        schedule: learning-rate schedule shape: ``constant``, ``cosine`` or ``linear``.
        warmup: linear warm-up steps.
        mode: ``online``, ``dataset`` or ``population``.
        source: source name (``gaussian``, ``bernoulli_gaussian``/``bg``, ``sparse_rademacher``/``sr``)
            or a ``Source`` object (its arrays are pytree leaves: ``Model.data``; it compares and
            hashes by content).
        n_train: dataset size in ``dataset`` mode for named sources.
        init: encoder initialisation, ``gaussian`` or ``orthogonal``.
        row_normalize: apply unit-norm rows ``B̄`` (pre-activations of unit variance on whitened data).
        tied: weight-tied decoder ``A = α B̄ᵀ``.
        eval_every: steps between trace points (``None``: about ``trace_count`` points, dividing
            ``steps``; ``trace_every`` holds the value in use).
        risk_eval: trace risk: ``exact`` (Gaussian sources), ``mc``, ``none`` or ``auto``.
        trace_samples: Monte Carlo samples per trace point when the risk is estimated.
        decoder: kind of decoder: ``linear`` (``A s``), or the non-linear ``denoiser``,
            ``posterior_mean`` or ``multilayer`` (``aejax.decoders``).
        layers: layers of the multilayer decoder.
        width: tanh pairs of the learned denoiser.
        prior: prior of the posterior-mean and multilayer decoders (``bg``, ``sr`` or a
            ``theory.Prior``; default: that of a named source).
        trainable: ``all``, ``decoder`` (encoder frozen) or ``head`` (only the non-linear head trains).
        time: training time per input dimension τ = steps·batch/d (samples seen per input
            dimension; steps for GD on the exact risk), instead of ``steps``: runs at different d
            then train for the same τ (``total_steps = ceil(τ·d/batch)``) and trace on a shared τ grid.
        trace_points: trace points (``None``: 20, or fewer where 20 would cost more than 5% of the
            training's FLOPs, see ``trace_count``).
        trace_spacing: ``linear`` or ``log`` (three decades) τ grid.
        lr_power: the learning rate applied is ``lr · (d_ref/d) ** lr_power`` (0: the same at every d;
            see docs/theory.md §11 for the measured rule).
        d_ref: the dimension at which the swept ``lr`` applies unchanged.
        matmul_precision: precision of every matrix product: ``highest`` (float32, the default),
            ``tensorfloat32`` or ``bfloat16`` (bfloat16 operands, float32 accumulation). XLA:CPU
            computes float32 products in float32 whatever this says; GPUs and TPUs honour it
            (docs/performance.md has the measured effect).
        opt_state_dtype: dtype the optimizer state is stored in between steps, ``float32`` or
            ``bfloat16`` (updates are computed in float32).
        test_source: held-out data, an ``Empirical`` source with the same ``d`` (e.g. the second
            source of ``aejax.data.train_test_sources``); the run then records its risk on every
            held-out row (``Model.heldout_risk``). Real-data runs train on ``source``, an
            ``Empirical`` of the training rows, usually in ``dataset`` mode.

    Examples:
        >>> TrainConfig(d=64, n=32, steps=100).trace_every
        5
        >>> TrainConfig(d=256, n=256, time=10.0, batch=128).total_steps
        20
    """

    d: int
    n: int
    steps: int | None = None
    batch: int = 128
    activation: str = "sign"
    surrogate: str = "clip"
    optimizer: Any = "adam"
    schedule: str = "cosine"
    warmup: int = 0
    mode: str = "online"
    source: Any = "gaussian"
    n_train: int = 4096
    init: str = "gaussian"
    row_normalize: bool = True
    tied: bool = False
    eval_every: int | None = None
    risk_eval: str = "auto"
    trace_samples: int = 2048
    decoder: str = "linear"
    layers: int = 1
    width: int = 8
    prior: Any = None
    trainable: str = "all"
    time: float | None = None
    trace_points: int | None = None
    trace_spacing: str = "linear"
    lr_power: float = 0.0
    d_ref: int = 128
    matmul_precision: str = "highest"
    opt_state_dtype: str = "float32"
    test_source: Any = None

    def __post_init__(self):
        self._check_length()
        self._check_choices()
        self._check_sources()
        self._check_decoder()
        self._check_trace()

    def _check_length(self) -> None:
        """Sizes within int32, and exactly one of ``steps`` and ``time``, training at least one step."""
        for name in ("d", "n", "batch", "n_train", "trace_samples", "d_ref"):  # int32 sizes
            _validate.positive_int(name, getattr(self, name), maximum=MAX_STEPS)
        if self.trace_points is not None:
            _validate.positive_int("trace_points", self.trace_points, maximum=MAX_STEPS)
        if (self.steps is None) == (self.time is None):
            raise _validate.InputError(
                f"give exactly one of steps (optimizer steps) and time (samples seen per input "
                f"dimension, τ = steps·batch/d), got steps={self.steps!r}, time={self.time!r}"
            )
        if self.steps is not None:
            _validate.positive_int("steps", self.steps)
        else:
            _validate.positive_number("time", self.time, scalar=True)
            if cast(float, self.time) < self.tau_per_step * (1 - 1e-12):  # not trained: refused, never relabelled
                raise _validate.InputError(
                    f"time={self.time:g} is shorter than one optimizer step at d={self.d}, batch={self.batch} "
                    f"(one step trains τ = batch/d = {self.tau_per_step:g}); the minimum is time={self.tau_per_step:g}"
                )
        if self.total_steps > MAX_STEPS:
            raise _validate.InputError(
                f"steps must be at most {MAX_STEPS} (2**31 - 1), got {self.total_steps}"
                + ("" if self.steps is not None else f" from time={self.time} at d={self.d}")
            )

    def _check_choices(self) -> None:
        """Every named choice (spacing, precision, optimizer, schedule, mode, ...) and flag."""
        _validate.choice("trace_spacing", self.trace_spacing, TRACE_SPACINGS)
        _validate.choice("matmul_precision", self.matmul_precision, MATMUL_PRECISIONS)
        _validate.choice("opt_state_dtype", self.opt_state_dtype, OPT_STATE_DTYPES)
        _validate.positive_number("lr_power", self.lr_power, allow_zero=True, scalar=True)
        check_lr_power("lr_power", self.lr_power)  # so (d_ref/d)^lr_power is a normal float32 at any int32 d
        _validate.non_negative_int("warmup", self.warmup)
        _validate.boolean("row_normalize", self.row_normalize)
        _validate.boolean("tied", self.tied)
        check_activation(self.activation)
        check_surrogate(self.surrogate)
        if isinstance(unwrap(self.optimizer), optax.GradientTransformation):
            check_transformation(self.optimizer)  # warns once about its own learning rate or schedule
        else:
            _validate.choice("optimizer", unwrap(self.optimizer), OPTIMIZERS)
        _validate.choice("schedule", self.schedule, SCHEDULES)
        _validate.choice("mode", self.mode, MODES)
        _validate.choice("init", self.init, INIT_KINDS)
        _validate.choice("risk_eval", self.risk_eval, RISK_EVALS)

    def _check_sources(self) -> None:
        """The source and held-out set match ``d``, and exact risks have a Gaussian source."""
        if isinstance(self.source, Source):
            if self.source.d != self.d:
                raise _validate.InputError(f"source has d={self.source.d} but the config has d={self.d}")
        else:
            _validate.choice("source", self.source, [*SOURCES, *SOURCE_ALIASES])
        if self.test_source is not None:
            if not isinstance(self.test_source, Empirical):
                raise _validate.InputTypeError(
                    f"test_source must be None or an aejax.sources.Empirical of held-out rows, got "
                    f"{type(self.test_source).__name__}"
                )
            if self.test_source.d != self.d:
                raise _validate.InputError(f"test_source has d={self.test_source.d} but the config has d={self.d}")
        if self.mode == "population" and not self.is_gaussian:
            raise _validate.InputError(
                f"mode 'population' needs a Gaussian source, got source={_validate.summary(self.source)}"
            )
        if self.risk_eval == "exact" and not self.is_gaussian:
            raise _validate.InputError(
                f"risk_eval 'exact' needs a Gaussian source, got source={_validate.summary(self.source)}"
            )

    def _check_trace(self) -> None:
        """``eval_every`` divides the run, and the trace's steps are distinct."""
        if self.eval_every is not None:
            every = _validate.positive_int("eval_every", self.eval_every)
            if self.total_steps % every:
                raise _validate.InputError(f"eval_every must divide steps={self.total_steps}, got {every}")
        steps = self.trace_steps
        if len(set(steps)) != len(steps):
            given = f"time={self.time} is" if self.time is not None else "the run has"
            raise _validate.InputError(
                f"trace_points={self.trace_count} ({self.trace_spacing} spacing) needs distinct trace "
                f"steps, but {given} only {self.total_steps} steps at d={self.d}, batch={self.batch}; "
                "lower trace_points"
                + (", use trace_spacing='linear'" if self.trace_spacing == "log" else "")
                + " or train longer"
            )

    def __repr__(self) -> str:
        """The fields, with arrays (a source's data, a spectrum) shown as ``dtype[shape]``, never in full.

        Examples:
            >>> import numpy as np
            >>> rows = Empirical(np.random.default_rng(0).normal(size=(1000, 8)))
            >>> print(repr(TrainConfig(d=8, n=8, steps=10, source=rows))[:41])
            TrainConfig(d=8, n=8, steps=10, batch=128
            >>> "source=Empirical(data=float32[1000, 8], d=8)" in repr(TrainConfig(d=8, n=8, steps=10, source=rows))
            True
        """
        fields = ", ".join(f"{f.name}={_validate.summary(getattr(self, f.name))}" for f in dataclasses.fields(self))
        return f"{type(self).__name__}({fields})"

    def _check_decoder(self) -> None:
        _validate.choice("decoder", self.decoder, DECODERS)
        _validate.choice("trainable", self.trainable, TRAINABLE)
        _validate.positive_int("layers", self.layers)
        _validate.positive_int("width", self.width)
        if self.decoder == "linear":
            if self.trainable == "head":
                raise _validate.InputError("trainable 'head' needs a non-linear decoder, got decoder='linear'")
            return
        if self.mode == "population" or self.risk_eval == "exact":
            raise _validate.InputError(
                f"decoder {self.decoder!r} has no exact risk: use mode 'online'/'dataset' and risk_eval "
                f"'mc'/'auto'/'none', got mode={self.mode!r}, risk_eval={self.risk_eval!r}"
            )
        if self.tied:
            raise _validate.InputError(f"decoder {self.decoder!r} needs an untied decoder, got tied=True")
        if self.decoder in ("posterior_mean", "multilayer") and self.prior is None and isinstance(self.source, Source):
            raise _validate.InputError(
                f"decoder {self.decoder!r} with a Source object needs prior= ('bg', 'sr' or a theory.Prior)"
            )

    @property
    def is_gaussian(self) -> bool:
        """Whether the source is Gaussian (exact risk available)."""
        if isinstance(self.source, Source):
            return self.source.is_gaussian
        return self.source == "gaussian"

    @property
    def tau_per_step(self) -> float:
        """Training time per optimizer step: ``batch/d`` samples per input dimension (online and dataset
        modes); 1 for gradient descent on the exact risk, where a step sees the whole population."""
        return 1.0 if self.mode == "population" else self.batch / self.d

    @property
    def total_steps(self) -> int:
        """Optimizer steps: ``steps``, or ``ceil(time / tau_per_step)`` when the run is given a ``time``."""
        if self.steps is not None:
            return self.steps
        time = cast(float, self.time)  # __post_init__ requires exactly one of steps and time
        return max(1, math.ceil(time / self.tau_per_step * (1 - 1e-12)))

    @property
    def traced_by_time(self) -> bool:
        """Whether trace points sit on a grid of τ shared by every d (``time`` or log spacing)."""
        return self.eval_every is None and (self.time is not None or self.trace_spacing == "log")

    @property
    def trace_count(self) -> int:
        """Trace points: ``trace_points`` if given, else 20, fewer where the trace would cost more
        than ``aejax.trace_cost.TRACE_BUDGET`` (4%) of the training's FLOPs (``affordable_trace_points``) but at
        least 4, and at most one per step. The 1% left to the 5% time budget covers what the FLOP
        count leaves out (an exact risk's element-wise work on n² correlations).

        Examples:
            >>> TrainConfig(d=256, n=256, steps=1000).trace_count
            20
            >>> TrainConfig(d=2048, n=2048, steps=1000).trace_count  # an exact risk costs 6.4 steps
            7
        """
        if self.trace_points is not None:
            return self.trace_points
        affordable = max(MIN_TRACE_POINTS, min(DEFAULT_TRACE_POINTS, affordable_trace_points(self)))
        return min(affordable, self.total_steps)

    @property
    def trace_taus(self) -> tuple[float, ...]:
        """The τ grid of the trace: ``trace_count`` values ending at the run's time, evenly or
        log-spaced (three decades), shared by every d at the same ``time``."""
        end = self.time if self.time is not None else self.total_steps * self.tau_per_step
        points = self.trace_count
        k = np.arange(1, points + 1)
        log = 1e-3 ** ((points - k) / max(1, points - 1))  # three decades
        fractions = log if self.trace_spacing == "log" else k / points
        return tuple(float(end * f) for f in fractions)

    @property
    def trace_every(self) -> int | None:
        """Steps between evenly spaced trace points (``None`` when traced on a τ grid)."""
        if self.traced_by_time:
            return None
        if self.eval_every is not None:
            return self.eval_every
        every = default_trace_every(self.total_steps, self.trace_count)
        if self.total_steps // every > max(self.trace_count, affordable_trace_points(self)):
            # steps with few divisors: the divisor at or above steps/points keeps the trace within budget
            every = default_trace_every(self.total_steps, self.trace_count, at_least=True)
        return every

    @property
    def trace_steps(self) -> tuple[int, ...]:
        """The step counts at which the trace is recorded (the last is ``total_steps``)."""
        if not self.traced_by_time:
            every = cast(int, self.trace_every)  # an int whenever the trace is not on a τ grid
            return tuple(range(every, self.total_steps + 1, every))
        steps = [max(1, math.ceil(tau / self.tau_per_step * (1 - 1e-12))) for tau in self.trace_taus]
        steps[-1] = self.total_steps
        return tuple(steps)

    def precision(self) -> Any:
        """A context in which the matrix products traced take ``matmul_precision``.

        Examples:
            >>> with TrainConfig(d=8, n=8, steps=1, matmul_precision="bfloat16").precision():
            ...     pass
        """
        return jax.default_matmul_precision(MATMUL_PRECISIONS[self.matmul_precision])

    def learning_rate(self, lr: Any) -> Any:
        """The learning rate applied at this d: ``lr · (d_ref / d) ** lr_power`` (docs/theory.md §11)."""
        return lr * (self.d_ref / self.d) ** self.lr_power

    @property
    def trace_risk(self) -> str:
        """How the trace's risk is computed: ``exact``, ``mc`` or ``none`` (``auto`` resolved)."""
        if self.risk_eval != "auto":
            return self.risk_eval
        return "exact" if self.is_gaussian and self.decoder == "linear" else "mc"

    @property
    def data(self) -> dict[str, Source | None]:
        """The config's data objects, ``{"source": ..., "test_source": ...}`` (``None`` for a named
        source or no held-out set): a pytree whose arrays are leaves. Pass it (or new data of the
        same shapes) to ``bind`` and to ``make_train``'s ``train(key, hparams, data)`` as an
        argument, and a jitted program takes the arrays as inputs instead of constants.

        Examples:
            >>> TrainConfig(d=8, n=8, steps=10).data
            {'source': None, 'test_source': None}
        """
        source = self.source if isinstance(self.source, Source) else None
        return {"source": source, "test_source": self.test_source}

    def bind(self, hparams: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> Model:
        """The ``Model`` of this config with swept numbers ``hparams`` (defaults filled in, checked).

        Args:
            hparams: swept numbers (``aejax.hparams.HPARAMS``; missing ones take ``default_hparams``).
            data: the config's data objects as traced leaves (``TrainConfig.data``, or new data of
                the same structure); ``None``: the config's own.

        Examples:
            >>> TrainConfig(d=8, n=8, steps=10).bind({"rate": 0.5}).mask
            Array([1., 1., 1., 1., 0., 0., 0., 0.], dtype=float32)
        """
        from aejax.bound import Model  # Model's module sits above this one: the one allowed upward import

        return Model(self, full_hparams(self, hparams), self.data if data is None else _check_data(self, data))


def _check_data(config: TrainConfig, data: Any) -> dict[str, Any]:
    """``data`` if it has the structure of ``config.data`` (same keys, types and array shapes)."""
    expected = config.data
    if not isinstance(data, dict) or set(data) != set(expected):
        raise _validate.InputTypeError(
            f"data must be a dict with keys {sorted(expected)} like TrainConfig.data, got {_brief_data(data)}"
        )
    for name, like in expected.items():
        given = data[name]
        if (like is None) != (given is None) or (like is not None and type(given) is not type(like)):
            raise _validate.InputTypeError(
                f"data[{name!r}] must be a {type(like).__name__} like the config's {name}, got {type(given).__name__}"
            )
        if like is not None:
            shapes = [jnp.shape(a) for a in jax.tree_util.tree_leaves(like)]
            got = [jnp.shape(a) for a in jax.tree_util.tree_leaves(given)]
            if shapes != got:
                raise _validate.InputError(f"data[{name!r}] must have arrays of shapes {shapes}, got {got}")
    return data


def _brief_data(data: Any) -> str:
    return f"keys {sorted(data)}" if isinstance(data, dict) else type(data).__name__
