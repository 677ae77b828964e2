"""A run's structure (``TrainConfig``) and the model it trains once bound to its swept numbers.

``TrainConfig`` is static structure: changing it recompiles. ``TrainConfig.bind(hparams)`` returns
a ``Model``: the config plus the swept numbers (learning rate ``lr``, surrogate ``slope``,
HeLU/hysteresis ``margin``, ``rate`` and sparsity ``p``) as traced leaves. The ``Model`` is the one
object that knows how a run's autoencoder is applied, which data it sees, how its exact and Monte
Carlo risks are computed and what its per-run record holds; training, sweeps, the CLI and the
reproductions all evaluate runs through it.

Examples:
    >>> import jax
    >>> model = TrainConfig(d=32, n=16, steps=100).bind({"rate": 0.25})
    >>> params = model.init(jax.random.key(0))
    >>> round(float(model.exact_risk(params)), 4)  # the initial decoder is zero: R = tr Σ / d
    1.0
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aejax import _validate, record
from aejax.activations import check_activation, check_surrogate
from aejax.decoders import DECODERS, NonlinearDecoder, init_params
from aejax.identity import unwrap
from aejax.model import INIT_KINDS, Architecture, Params, init, rate_mask
from aejax.optim import OPTIMIZERS, SCHEDULES, check_transformation
from aejax.risk import dataset_risk, exact_risk, mc_risk
from aejax.sources import SOURCE_ALIASES, SOURCES, Empirical, Gaussian, SecondMoments, Source, make_source

Array = jax.Array
MODES = ("online", "dataset", "population")
RISK_EVALS = ("auto", "exact", "mc", "none")
HPARAMS = ("lr", "slope", "margin", "rate", "p")
TRAINABLE = ("all", "decoder", "head")
MAX_STEPS = 2**31 - 1  # step indices, sizes and sample counts are int32 inside the compiled program
TRACE_SPACINGS = ("linear", "log")
MATMUL_PRECISIONS = {"highest": "highest", "tensorfloat32": "tensorfloat32", "bfloat16": "BF16_BF16_F32"}
OPT_STATE_DTYPES = ("float32", "bfloat16")
DEFAULT_TRACE_POINTS = 20
MIN_TRACE_POINTS = 4  # the default trace keeps at least this many points, whatever they cost
TRACE_BUDGET = 0.04  # default traces cost at most this fraction of the training's FLOPs (time: <= 5%)
_SGD_LIKE = ("sgd", "momentum", "nesterov")
DEFAULT_LR = 0.01  # adaptive optimizers (Adam, ...); plain and momentum SGD default to 1
_SOURCE_PRIORS = {"gaussian": "bg", "bernoulli_gaussian": "bg", "bg": "bg", "sparse_rademacher": "sr", "sr": "sr"}


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
        self._check_decoder()
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
        than ``TRACE_BUDGET`` (4%) of the training's FLOPs (``affordable_trace_points``) but at
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
            hparams: swept numbers (``HPARAMS``; missing ones take ``default_hparams``).
            data: the config's data objects as traced leaves (``TrainConfig.data``, or new data of
                the same structure); ``None``: the config's own.

        Examples:
            >>> TrainConfig(d=8, n=8, steps=10).bind({"rate": 0.5}).mask
            Array([1., 1., 1., 1., 0., 0., 0., 0.], dtype=float32)
        """
        return Model(self, full_hparams(self, hparams), self.data if data is None else _check_data(self, data))


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


def trace_point_cost(config: TrainConfig) -> float:
    """FLOPs of one trace point over those of one training step (the cost model behind
    ``trace_count``; docs/performance.md).

    A step of online or dataset training costs the five ``batch × d × n`` products of the forward
    and backward passes, 10·batch·d·n; a step of GD on the exact risk costs about three exact risks.
    An exact risk costs the two ``n × n × d`` products of the Gram matrix and of ``A C_ss``
    (4·n²·d), a Monte Carlo risk ``trace_samples`` forward passes (4·d·n each).

    Examples:
        >>> trace_point_cost(TrainConfig(d=1024, n=1024, steps=100))  # exact risk at d = n = 1024
        3.2
    """
    if config.trace_risk == "none":
        return 0.0
    d, n = config.d, config.n
    risk = 4.0 * n * n * d if config.trace_risk == "exact" else 4.0 * d * n * config.trace_samples
    step = 3 * 4.0 * n * n * d if config.mode == "population" else 10.0 * config.batch * d * n
    return risk / step


def affordable_trace_points(config: TrainConfig) -> int:
    """The most trace points whose cost stays within ``TRACE_BUDGET`` of the training's FLOPs. The
    last point is not counted: it is the final weights' exact risk, which the record needs anyway.

    Examples:
        >>> affordable_trace_points(TrainConfig(d=2048, n=2048, steps=1000))
        7
    """
    cost = trace_point_cost(config)
    if cost == 0:
        return MAX_STEPS
    return 1 + int(TRACE_BUDGET * config.total_steps / cost)


def default_hparams(config: TrainConfig) -> dict[str, float]:
    """Default swept numbers for a config.

    Examples:
        >>> default_hparams(TrainConfig(d=8, n=4, steps=10))["rate"]
        0.5
    """
    return {
        "lr": 1.0 if config.optimizer in _SGD_LIKE else DEFAULT_LR,
        "slope": 1.0,
        "margin": 0.05 if config.activation == "helu" else 0.0,
        "rate": config.n / config.d,
        "p": 1.0,
    }


def full_hparams(config: TrainConfig, hparams: dict[str, Any] | None) -> dict[str, Array]:
    """Defaults overridden by ``hparams``; unknown names and bad concrete values are refused."""
    if hparams is not None and not isinstance(hparams, dict):
        raise _validate.InputTypeError(f"hparams must be a dict {{name: number}} or None, got {type(hparams).__name__}")
    hparams = dict(hparams or {})
    unknown = sorted(set(hparams) - set(HPARAMS))
    if unknown:
        raise _validate.InputError(f"unknown hparams {unknown}; allowed: {', '.join(HPARAMS)}")
    _validate.positive_number("lr", hparams.get("lr", 1.0))
    _validate.positive_number("slope", hparams.get("slope", 1.0))
    _validate.positive_number("margin", hparams.get("margin", 0.0), allow_zero=True)
    _validate.probability("p", hparams.get("p", 1.0))
    if "rate" in hparams:
        _check_rate(hparams["rate"], config)
    merged = {**default_hparams(config), **hparams}
    return {k: jnp.asarray(v, jnp.float32) for k, v in merged.items()}


def _check_rate(rate: Any, config: TrainConfig) -> None:
    """Refuse a concrete ``rate`` whose unit count ``round(rate·d)`` (in float32, as ``rate_mask``
    computes it) is not in [1, n]. Computed with NumPy, so a Python or NumPy number is checked inside
    ``jit`` too; a traced rate is not checked."""
    _validate.positive_number("rate", rate)
    if not _validate.is_concrete(rate):
        return
    with np.errstate(over="ignore"):  # a rate beyond float32 is inf units: refused below
        units = np.round(np.asarray(rate, np.float64).astype(np.float32) * np.float32(config.d))
    bad = (units < 1) | (units > config.n)
    if bad.any():
        raise _validate.InputError(
            f"rate must give between 1 and n={config.n} hidden units at d={config.d} "
            f"(rate in ({0.5 / config.d:.4g}, {(config.n + 0.49) / config.d:.4g}]), "
            f"got {_validate._show(np.asarray(rate, np.float64)[bad])}"
        )
    if config.decoder == "multilayer" and (units != config.n).any():
        raise _validate.InputError(
            f"the multilayer decoder uses all n={config.n} units: rate must be n/d = "
            f"{config.n / config.d:.4g}, got {_validate.summary(rate)}"
        )


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


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A ``TrainConfig`` bound to its swept numbers: the one object that evaluates a run.

    A pytree whose ``config`` is static and whose ``hparams`` (a dict of float32 arrays) and
    ``data`` (the source objects of ``TrainConfig.data``, whose arrays are leaves) are leaves, so
    it can be built inside ``jit`` and ``vmap``-ed. Build it with ``config.bind(hparams)``.

    Examples:
        >>> import jax
        >>> model = TrainConfig(d=16, n=16, steps=10, source="bg").bind({"p": 0.5})
        >>> model.source.p, model.arch.row_normalize
        (Array(0.5, dtype=float32), True)
    """

    config: TrainConfig
    hparams: dict[str, Array]
    data: dict[str, Any] = dataclasses.field(default_factory=lambda: {"source": None, "test_source": None})

    def _data(self, name: str) -> Any:
        """The data object ``name`` of ``TrainConfig.data``: the bound one, else the config's own."""
        given = self.data.get(name)
        return given if given is not None else self.config.data[name]

    @property
    def decoder(self) -> NonlinearDecoder | None:
        """The non-linear decoder, or ``None`` for the linear one."""
        config = self.config
        if config.decoder == "linear":
            return None
        prior = config.prior if config.prior is not None else _SOURCE_PRIORS.get(config.source, "bg")
        return NonlinearDecoder(
            config.decoder, prior, config.layers, config.width, self.hparams["p"], self.hparams["rate"]
        )

    @property
    def mask(self) -> Array | None:
        """The rate's hidden-unit mask (``None`` for the multilayer decoder, which reads every unit)."""
        if self.config.decoder == "multilayer":
            return None
        return rate_mask(self.hparams["rate"], self.config.d, self.config.n)

    @property
    def arch(self) -> Architecture:
        """The map x ↦ x̂ of this run (``aejax.model.Architecture``)."""
        config = self.config
        return Architecture(
            config.activation,
            config.surrogate,
            config.row_normalize,
            self.hparams["slope"],
            self.hparams["margin"],
            self.mask,
            self.decoder,
        )

    @property
    def source(self) -> Source:
        """The data source (named sparse sources take the swept ``p``)."""
        if self._data("source") is not None:
            return self._data("source")
        return make_source(self.config.source, self.config.d, self.hparams["p"])

    def init(self, key: Array) -> Params:
        """Initial parameters (with the non-linear decoder's head attached)."""
        config = self.config
        params = init(key, config.d, config.n, kind=config.init, tied=config.tied)
        decoder = self.decoder
        return params if decoder is None else init_params(decoder, params)

    def apply(self, params: Params, x: Array) -> Array:
        """Reconstructions of ``x`` (shape ``(..., d)``)."""
        return self.arch.apply(params, x)

    def loss(self, params: Params, x: Array) -> Array:
        """Mean squared reconstruction error per coordinate on the batch ``x``."""
        return self.arch.loss(params, x)

    def exact_risk(self, params: Params) -> Array:
        """Exact population risk (docs/theory.md §2); NaN for non-Gaussian sources and non-linear decoders."""
        if not self.config.is_gaussian:
            return jnp.full((), jnp.nan, jnp.float32)
        return jnp.asarray(exact_risk(params, self.source, arch=self.arch), jnp.float32)

    def heldout_risk(self, params: Params) -> Array:
        """Risk on every row of ``config.test_source`` (``risk.dataset_risk``); NaN without one."""
        test = self._data("test_source")
        if test is None:
            return jnp.full((), jnp.nan, jnp.float32)
        return jnp.asarray(dataset_risk(params, test.data, arch=self.arch), jnp.float32)

    def train_risk(self, params: Params) -> Array:
        """Risk on every training row of an ``Empirical`` source; NaN for the other sources."""
        source = self._data("source")
        if not isinstance(source, Empirical):
            return jnp.full((), jnp.nan, jnp.float32)
        return jnp.asarray(dataset_risk(params, source.data, arch=self.arch), jnp.float32)

    def gaussian_equivalent_risk(self, params: Params) -> Array:
        """Exact risk on a Gaussian with the ``Empirical`` training rows' covariance (docs/theory.md §2).

        What the Gaussian theory sees of real data: its second moments only. NaN for the other
        sources (use ``exact_risk``) and for non-linear decoders.

        Examples:
            >>> import jax, numpy as np
            >>> rows = Empirical(np.random.default_rng(0).normal(size=(64, 8)), whiten="zca")
            >>> model = TrainConfig(d=8, n=8, steps=10, mode="dataset", source=rows).bind()
            >>> round(float(model.gaussian_equivalent_risk(model.init(jax.random.key(0)))), 4)  # A = 0: tr Σ / d
            1.0
        """
        source = self._data("source")
        if not isinstance(source, Empirical) or self.config.decoder != "linear":
            return jnp.full((), jnp.nan, jnp.float32)
        if _validate.is_concrete(source.data):
            equivalent = gaussian_equivalent(source)  # float64 second moments on the host
        else:  # the rows are an argument of a compiled program: the same moments in float32
            equivalent = SecondMoments(source.d, source.data)
        return jnp.asarray(exact_risk(params, equivalent, arch=self.arch), jnp.float32)

    def mc_risk(self, params: Params, key: Array, n_samples: int) -> tuple[Array, Array]:
        """Monte Carlo risk on ``n_samples`` fresh samples and its standard error."""
        return mc_risk(params, self.source, key, n_samples, arch=self.arch)

    def record(self, params: Params, trace: dict[str, Array], key: Array, mc_samples: int) -> dict[str, Array]:
        """The run's record (``aejax.record.FIELDS``) from its final ``params``, ``trace`` and run ``key``.

        The final Monte Carlo risk uses the key ``fold_in(key, record.EVAL_FOLD)`` and
        ``mc_samples`` samples, in ``aejax sweep``, ``aejax train`` and ``aejax.sweep`` alike.
        """
        with self.config.precision():
            return record.evaluate(self, params, trace, key, mc_samples)


jax.tree_util.register_dataclass(Model, data_fields=["hparams", "data"], meta_fields=["config"])


def gaussian_equivalent(source: Empirical) -> Gaussian:
    """The centred Gaussian with an ``Empirical`` source's second-moment matrix ``E[x xᵀ]`` over its rows.

    The one Gaussian equivalent of data in aejax (``Model.gaussian_equivalent_risk``, the
    ``universality`` reproduction). It is uncentred on purpose: the autoencoder has no biases, so
    its risk d·R = E‖x‖² − 2 tr(A E[s xᵀ]) + tr(A E[s sᵀ] Aᵀ) sees the data through ``E[x xᵀ]``
    (docs/theory.md §2 with Σ = E[x xᵀ]), not through the covariance: a mean is coded like any
    other direction. The universality statement compares the risk on the data with that on the
    Gaussian of the same second moments; on centred rows the two matrices coincide.

    Computed on the host in float64 from the concrete rows (also while tracing a run, where the
    source is part of the static config).

    Examples:
        >>> import numpy as np
        >>> g = gaussian_equivalent(Empirical(np.random.default_rng(0).normal(size=(50, 3)), whiten="zca"))
        >>> bool(np.allclose(g.cov, np.eye(3), atol=1e-5))
        True
    """
    if not isinstance(source, Empirical):
        raise _validate.InputTypeError(f"source must be an aejax.sources.Empirical, got {type(source).__name__}")
    rows = np.asarray(source.data, np.float64)
    return Gaussian(source.d, covariance=rows.T @ rows / rows.shape[0])


MAX_LR_POWER = 4.0  # lr_power's bound: the rule measured for Adam is 1 (docs/theory.md §11)
_FLOAT32 = np.finfo(np.float32)


def check_lr_power(name: str, lr_power: float) -> float:
    """Check that ``lr_power`` lies in ``[0, MAX_LR_POWER]`` and return it.

    Examples:
        >>> check_lr_power("--lr-power", 1000)
        Traceback (most recent call last):
        ...
        aejax.InputError: --lr-power must lie in [0, 4] (the learning rate applied is ...), got 1000
    """
    _validate.positive_number(name, lr_power, allow_zero=True, scalar=True)
    if lr_power > MAX_LR_POWER:
        raise _validate.InputError(
            f"{name} must lie in [0, {MAX_LR_POWER:g}] (the learning rate applied is lr·(d_ref/d)^lr_power; the rule "
            f"measured for Adam is 1, docs/theory.md §11), got {lr_power!r}"
        )
    return lr_power


def check_learning_rate(name: str, lr: float, d: int, d_ref: int, lr_power: float) -> None:
    """Check that the learning rate applied at ``d``, ``lr·(d_ref/d)^lr_power``, is a finite, normal float32
    (not one that overflows to inf or underflows to 0 in the compiled step); ``name`` is the argument blamed.

    Examples:
        >>> check_learning_rate("--lr-power", 1e5, d=1, d_ref=2**30, lr_power=4)
        Traceback (most recent call last):
        ...
        aejax.InputError: --lr-power 4 at d=1 (d_ref=1073741824) makes the learning rate
        100000·(1073741824/1)^4 ≈ 1.3e+41, outside float32's finite, non-zero range [1.2e-38, 3.4e+38]; ...
    """
    log_lr = math.log(lr) + lr_power * math.log(d_ref / d)
    if math.log(float(_FLOAT32.tiny)) <= log_lr <= math.log(float(_FLOAT32.max)):
        return
    value = f"{math.exp(log_lr):.2g}" if abs(log_lr) < 700 else f"10^{log_lr / math.log(10):.0f}"
    raise _validate.InputError(
        f"{name} {lr_power:g} at d={d} (d_ref={d_ref}) makes the learning rate {lr:g}·({d_ref}/{d})^{lr_power:g} ≈ "
        f"{value}, outside float32's finite, non-zero range [{float(_FLOAT32.tiny):.2g}, {float(_FLOAT32.max):.2g}]; "
        "lower lr_power or lr, or choose d_ref within the grid of d"
    )
