"""The swept numbers (hyper-parameters) of a run: their names, defaults and checks.

``TrainConfig.bind(hparams)`` fills in ``default_hparams`` and checks the numbers given with
``full_hparams``; the learning-rate rule ``lr·(d_ref/d)^lr_power`` is checked by ``check_lr_power``
and ``check_learning_rate``. The functions read a run's structure through ``Structure`` (a
``TrainConfig`` is one).

Examples:
    >>> from aejax import TrainConfig
    >>> HPARAMS
    ('lr', 'slope', 'margin', 'rate', 'p')
    >>> default_hparams(TrainConfig(d=8, n=4, steps=10, optimizer="sgd"))["lr"]
    1.0
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from aejax import _validate

Array = jax.Array
HPARAMS = ("lr", "slope", "margin", "rate", "p")
DEFAULT_LR = 0.01  # adaptive optimizers (Adam, ...); plain and momentum SGD default to 1
_SGD_LIKE = ("sgd", "momentum", "nesterov")
MAX_LR_POWER = 4.0  # lr_power's bound: the rule measured for Adam is 1 (docs/theory.md §11)
_FLOAT32 = np.finfo(np.float32)


class Structure(Protocol):
    """What the defaults and checks read of a run's structure (``aejax.TrainConfig`` provides it)."""

    @property
    def d(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def optimizer(self) -> Any: ...
    @property
    def activation(self) -> Any: ...
    @property
    def decoder(self) -> str: ...


def default_hparams(config: Structure) -> dict[str, float]:
    """Default swept numbers for a config.

    Examples:
        >>> from aejax import TrainConfig
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


def full_hparams(config: Structure, hparams: dict[str, Any] | None) -> dict[str, Array]:
    """Defaults overridden by ``hparams``; unknown names and bad concrete values are refused.

    Examples:
        >>> from aejax import TrainConfig
        >>> full_hparams(TrainConfig(d=8, n=4, steps=10), {"lr": 0.1})["lr"]
        Array(0.1, dtype=float32)
    """
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


def _check_rate(rate: Any, config: Structure) -> None:
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
