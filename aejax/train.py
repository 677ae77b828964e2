"""Pure, compiled training: ``make_train(config)`` returns ``train(key, hparams)``.

``TrainConfig`` is structure (changing it recompiles); ``hparams`` is a dict of numbers that may
be traced and vmapped (changing them never recompiles): learning rate ``lr``, surrogate ``slope``,
HeLU/hysteresis ``margin``, ``rate`` (hidden units in use = round(rate·d) of the ``n`` compiled
ones) and sparsity ``p`` of a named sparse source. The whole run is one ``lax.scan``.

Modes: ``"online"`` (fresh samples every step), ``"dataset"`` (minibatches drawn uniformly with
replacement from a fixed set of ``n_train`` samples, or from an ``Empirical`` source's rows) and
``"population"`` (full-batch gradient descent on the exact Gaussian risk).

Decoders (``aejax.decoders``): ``decoder="linear"`` (default) or a non-linear one, ``denoiser``,
``posterior_mean`` or ``multilayer`` (with ``layers``, ``prior``); ``trainable`` freezes the encoder
(``"decoder"``) or the encoder and the linear decoder (``"head"``). The trace also records the
encoder's ``identity_likeness`` (``aejax.model.identity_likeness``) at every trace point.

Example:
    >>> import jax
    >>> cfg = TrainConfig(d=32, n=16, steps=200, batch=64)
    >>> params, trace = jax.jit(make_train(cfg))(jax.random.key(0), {"lr": 0.01})
    >>> trace["risk"].shape
    (20,)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from aejax import _validate
from aejax.activations import ACTIVATIONS, SURROGATES
from aejax.decoders import DECODERS, Decoder, init_params
from aejax.model import INIT_KINDS, Params, apply, identity_likeness, init, rate_mask
from aejax.optim import OPTIMIZERS, SCHEDULES, get_optimizer, schedule_factor
from aejax.risk import exact_risk, mc_risk
from aejax.sources import SOURCE_ALIASES, SOURCES, Empirical, Source, make_source

Array = jax.Array
MODES = ("online", "dataset", "population")
RISK_EVALS = ("auto", "exact", "mc", "none")
HPARAMS = ("lr", "slope", "margin", "rate", "p")
TRAINABLE = ("all", "decoder", "head")
_SOURCE_PRIORS = {"gaussian": "bg", "bernoulli_gaussian": "bg", "bg": "bg", "sparse_rademacher": "sr", "sr": "sr"}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static structure of a training run.

    Args:
        d: input dimension.
        n: hidden units compiled (the largest rate's ``round(rate·d)``).
        steps: optimizer steps.
        batch: samples per step (online and dataset modes).
        activation: ``sign``, ``helu``, ``relu``, ``tanh`` or ``linear``.
        surrogate: surrogate derivative of ``sign`` (see ``aejax.activations.SURROGATES``).
        optimizer: optimizer name (``aejax.optim.OPTIMIZERS``) or an optax transformation built
            with learning rate 1.
        schedule: learning-rate schedule shape: ``constant``, ``cosine`` or ``linear``.
        warmup: linear warm-up steps.
        mode: ``online``, ``dataset`` or ``population``.
        source: source name (``gaussian``, ``bernoulli_gaussian``/``bg``, ``sparse_rademacher``/``sr``)
            or a ``Source`` object.
        n_train: dataset size in ``dataset`` mode for named sources.
        init: encoder initialisation, ``gaussian`` or ``orthogonal``.
        row_normalize: apply unit-norm rows ``B̄`` (pre-activations of unit variance on whitened data).
        tied: weight-tied decoder ``A = α B̄ᵀ``.
        eval_every: steps between trace points (default: about steps/20, dividing ``steps``).
        risk_eval: trace risk: ``exact`` (Gaussian sources), ``mc``, ``none`` or ``auto``.
        trace_samples: Monte Carlo samples per trace point when the risk is estimated.
        decoder: ``linear``, ``denoiser``, ``posterior_mean`` or ``multilayer`` (``aejax.decoders``).
        layers: layers of the multilayer decoder.
        width: tanh pairs of the learned denoiser.
        prior: prior of the posterior-mean and multilayer decoders (``bg``, ``sr`` or a
            ``theory.Prior``; default: that of a named source).
        trainable: ``all``, ``decoder`` (encoder frozen) or ``head`` (only the non-linear head trains).

    Example:
        >>> TrainConfig(d=64, n=32, steps=100).eval_every
        5
    """

    d: int
    n: int
    steps: int
    batch: int = 256
    activation: str = "sign"
    surrogate: str = "clip"
    optimizer: Any = "adam"
    schedule: str = "constant"
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

    def __post_init__(self):
        for name in ("d", "n", "steps", "batch", "n_train", "trace_samples"):
            _validate.positive_int(name, getattr(self, name))
        _validate.non_negative_int("warmup", self.warmup)
        _validate.boolean("row_normalize", self.row_normalize)
        _validate.boolean("tied", self.tied)
        _validate.choice("activation", self.activation, ACTIVATIONS)
        _validate.choice("surrogate", self.surrogate, SURROGATES)
        if not isinstance(self.optimizer, optax.GradientTransformation):
            _validate.choice("optimizer", self.optimizer, OPTIMIZERS)
        _validate.choice("schedule", self.schedule, SCHEDULES)
        _validate.choice("mode", self.mode, MODES)
        _validate.choice("init", self.init, INIT_KINDS)
        _validate.choice("risk_eval", self.risk_eval, RISK_EVALS)
        if isinstance(self.source, Source):
            if self.source.d != self.d:
                raise ValueError(f"source has d={self.source.d} but the config has d={self.d}")
        else:
            _validate.choice("source", self.source, [*SOURCES, *SOURCE_ALIASES])
        if self.mode == "population" and not self.is_gaussian:
            raise ValueError(f"mode 'population' needs a Gaussian source, got source={self.source!r}")
        if self.risk_eval == "exact" and not self.is_gaussian:
            raise ValueError(f"risk_eval 'exact' needs a Gaussian source, got source={self.source!r}")
        self._check_decoder()
        if self.eval_every is None:
            object.__setattr__(self, "eval_every", _default_eval_every(self.steps))
        every = _validate.positive_int("eval_every", self.eval_every)
        if self.steps % every:
            raise ValueError(f"eval_every must divide steps={self.steps}, got {every}")

    def _check_decoder(self) -> None:
        _validate.choice("decoder", self.decoder, DECODERS)
        _validate.choice("trainable", self.trainable, TRAINABLE)
        _validate.positive_int("layers", self.layers)
        _validate.positive_int("width", self.width)
        if self.decoder == "linear":
            if self.trainable == "head":
                raise ValueError("trainable 'head' needs a non-linear decoder, got decoder='linear'")
            return
        if self.mode == "population" or self.risk_eval == "exact":
            raise ValueError(f"decoder {self.decoder!r} has no exact risk: use mode 'online'/'dataset' and risk_eval "
                             f"'mc'/'auto'/'none', got mode={self.mode!r}, risk_eval={self.risk_eval!r}")
        if self.tied:
            raise ValueError(f"decoder {self.decoder!r} needs an untied decoder, got tied=True")
        if self.decoder in ("posterior_mean", "multilayer") and self.prior is None and isinstance(self.source, Source):
            raise ValueError(f"decoder {self.decoder!r} with a Source object needs prior= ('bg', 'sr' or a theory.Prior)")

    def decoder_spec(self, hparams: dict[str, Array]) -> Decoder | None:
        """The ``aejax.decoders.Decoder`` of this config and (full) hparams; ``None`` for the linear one."""
        if self.decoder == "linear":
            return None
        prior = self.prior if self.prior is not None else _SOURCE_PRIORS.get(self.source, "bg")
        return Decoder(self.decoder, prior, self.layers, self.width, hparams["p"], hparams["rate"])

    @property
    def is_gaussian(self) -> bool:
        """Whether the source is Gaussian (exact risk available)."""
        if isinstance(self.source, Source):
            return self.source.is_gaussian
        return self.source == "gaussian"

    @property
    def trace_steps(self) -> tuple[int, ...]:
        """The step counts at which the trace is recorded."""
        return tuple(range(self.eval_every, self.steps + 1, self.eval_every))

    def model_kw(self, hparams: dict[str, Array]) -> dict[str, Any]:
        """Keyword arguments of ``aejax.apply`` for this config and (full) hparams.

        The multilayer decoder reads every compiled unit, so it gets no rate mask (its rate is n/d).
        """
        kw = dict(activation=self.activation, surrogate=self.surrogate, slope=hparams["slope"],
                  margin=hparams["margin"], mask=rate_mask(hparams["rate"], self.d, self.n),
                  row_normalize=self.row_normalize)
        if self.decoder != "linear":
            kw["decoder"] = self.decoder_spec(hparams)
        if self.decoder == "multilayer":
            kw["mask"] = None
        return kw

    def make_source(self, hparams: dict[str, Array]) -> Source:
        """The data source, built from the swept sparsity ``p`` for named sparse sources."""
        if isinstance(self.source, Source):
            return self.source
        return make_source(self.source, self.d, hparams["p"])


def _default_eval_every(steps: int) -> int:
    target = max(1, steps // 20)
    return max(k for k in range(1, target + 1) if steps % k == 0)


def default_hparams(config: TrainConfig) -> dict[str, float]:
    """Default swept numbers for a config.

    Example:
        >>> default_hparams(TrainConfig(d=8, n=4, steps=10))["rate"]
        0.5
    """
    return {"lr": 0.01 if config.optimizer not in ("sgd", "momentum", "nesterov") else 1.0,
            "slope": 1.0, "margin": 0.05 if config.activation == "helu" else 0.0,
            "rate": config.n / config.d, "p": 1.0}


def full_hparams(config: TrainConfig, hparams: dict[str, Any] | None) -> dict[str, Array]:
    """Defaults overridden by ``hparams``; unknown names and bad concrete values are refused."""
    if hparams is not None and not isinstance(hparams, dict):
        raise TypeError(f"hparams must be a dict {{name: number}} or None, got {type(hparams).__name__}")
    hparams = dict(hparams or {})
    unknown = sorted(set(hparams) - set(HPARAMS))
    if unknown:
        raise ValueError(f"unknown hparams {unknown}; allowed: {', '.join(HPARAMS)}")
    _validate.positive_number("lr", hparams.get("lr", 1.0))
    _validate.positive_number("slope", hparams.get("slope", 1.0))
    _validate.positive_number("margin", hparams.get("margin", 0.0), allow_zero=True)
    _validate.probability("p", hparams.get("p", 1.0))
    if "rate" in hparams:
        _check_rate(hparams["rate"], config)
    merged = {**default_hparams(config), **hparams}
    return {k: jnp.asarray(v, jnp.float32) for k, v in merged.items()}


def _check_rate(rate: Any, config: TrainConfig) -> None:
    _validate.positive_number("rate", rate)
    if _validate.is_concrete(rate):
        units = jnp.round(jnp.asarray(rate) * config.d)
        if jnp.any(units < 1) or jnp.any(units > config.n):
            raise ValueError(f"rate must give between 1 and n={config.n} hidden units at d={config.d} "
                             f"(rate in [{0.5 / config.d:.4g}, {(config.n + 0.49) / config.d:.4g}]), got {rate}")
        if config.decoder == "multilayer" and jnp.any(units != config.n):
            raise ValueError(f"the multilayer decoder uses all n={config.n} units: rate must be n/d = "
                             f"{config.n / config.d:.4g}, got {rate}")


def make_train(config: TrainConfig) -> Callable[[Array, dict[str, Any]], tuple[Params, dict[str, Array]]]:
    """Build the pure training function for ``config``.

    Args:
        config: a ``TrainConfig``.

    Returns:
        ``train(key, hparams) -> (params, trace)``: jittable and vmappable over ``key`` and every
        entry of ``hparams``. ``trace`` has ``loss`` (mean training loss over each block of
        ``eval_every`` steps) and ``risk`` (exact or Monte Carlo risk after the block; NaN when
        ``risk_eval="none"``) and ``identity_likeness`` of the encoder, one entry per
        ``config.trace_steps``.

    Example:
        >>> cfg = TrainConfig(d=16, n=8, steps=20, mode="population")
        >>> params, trace = make_train(cfg)(jax.random.key(0), {"lr": 0.05})
        >>> bool(trace["risk"][-1] < trace["risk"][0])
        True
    """
    optimizer = get_optimizer(config.optimizer)
    risk_eval = config.risk_eval
    if risk_eval == "auto":
        risk_eval = "exact" if config.is_gaussian and config.decoder == "linear" else "mc"
    blocks = config.steps // config.eval_every

    def train(key: Array, hparams: dict[str, Any] | None = None) -> tuple[Params, dict[str, Array]]:
        _validate.prng_key("key", key)
        hp = full_hparams(config, hparams)
        model_kw = config.model_kw(hp)
        source = config.make_source(hp)
        k_init, k_data, k_steps, k_eval = jax.random.split(key, 4)
        params = init(k_init, config.d, config.n, kind=config.init, tied=config.tied)
        if config.decoder != "linear":
            params = init_params(model_kw["decoder"], params)
        data = _training_set(config, source, k_data)

        def sample_loss(p, x):
            p = _freeze(p, config.trainable, jax.lax.stop_gradient)  # frozen parts: no backward pass
            return jnp.mean((x - apply(p, x, **model_kw)) ** 2)

        def population_loss(p, _):
            return exact_risk(p, source, config.activation, mask=model_kw["mask"], row_normalize=config.row_normalize)

        def batch_at(t):
            k = jax.random.fold_in(k_steps, t)
            if config.mode == "population":
                return None
            if data is None:
                return source.sample(k, config.batch)
            return data[jax.random.randint(k, (config.batch,), 0, data.shape[0])]

        loss_fn = population_loss if config.mode == "population" else sample_loss

        def step(carry, t):
            p, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, batch_at(t))
            updates, opt_state = optimizer.update(grads, opt_state, p)
            updates = _freeze(updates, config.trainable, jnp.zeros_like)  # also no weight decay
            lr = hp["lr"] * schedule_factor(config.schedule, t, config.steps, config.warmup)
            p = optax.apply_updates(p, jax.tree_util.tree_map(lambda u: lr * u, updates))
            return (p, opt_state), loss

        def evaluate(p, j):
            if risk_eval == "exact":
                return population_loss(p, None)
            if risk_eval == "mc":
                return mc_risk(p, source, jax.random.fold_in(k_eval, j), config.trace_samples, **model_kw)[0]
            return jnp.nan

        def block(carry, j):
            carry, losses = jax.lax.scan(step, carry, j * config.eval_every + jnp.arange(config.eval_every))
            order = identity_likeness(carry[0].B, model_kw["mask"])
            return carry, (jnp.mean(losses), evaluate(carry[0], j), order)

        (params, _), (loss, risk, order) = jax.lax.scan(block, (params, optimizer.init(params)), jnp.arange(blocks))
        return params, {"loss": loss, "risk": jnp.broadcast_to(jnp.asarray(risk, jnp.float32), loss.shape),
                        "identity_likeness": order}

    return train


def _freeze(tree: Params, trainable: str, fn: Callable[[Array], Array]) -> Params:
    """``fn`` applied to the parts that ``trainable`` keeps fixed (B for "decoder"; A and B for "head")."""
    if trainable == "all":
        return tree
    frozen = tree._replace(B=fn(tree.B))
    return frozen._replace(A=fn(tree.A)) if trainable == "head" else frozen


def _training_set(config: TrainConfig, source: Source, key: Array) -> Array | None:
    if config.mode != "dataset":
        return None
    if isinstance(source, Empirical):
        return source.data
    return source.sample(key, config.n_train)
