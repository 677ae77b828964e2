"""aejax: a JAX simulation engine for two-layer autoencoders x̂ = A σ(Bx) in the proportional regime.

Examples:
    >>> import jax, aejax
    >>> cfg = aejax.TrainConfig(d=32, n=16, steps=100, mode="population")
    >>> params, trace = aejax.make_train(cfg)(jax.random.key(0), {"lr": 0.05})
    >>> float(trace["risk"][-1]) < 0.75
    True
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from aejax._version import __version__ as __version__

if TYPE_CHECKING:
    from aejax import activations, nn, scaling, sources, theory
    from aejax._validate import InputError, InputTypeError
    from aejax.activations import get_activation, helu, sign
    from aejax.bound import Model
    from aejax.cache import enable_compilation_cache
    from aejax.config import TrainConfig
    from aejax.hparams import default_hparams
    from aejax.identity import named
    from aejax.model import Architecture, Params, apply, decode, encode, init
    from aejax.results import load_results
    from aejax.risk import exact_risk, mc_risk, optimal_decoder
    from aejax.shards import initialize_cluster
    from aejax.sweeping import sweep, sweep_shard
    from aejax.train import make_train, run_key

# Where each public name lives. ``import aejax`` imports none of them (nor JAX, about a second): a name
# is imported on first use, then kept as an ordinary attribute of the package.
_HOMES = {
    "InputError": "aejax._validate",
    "InputTypeError": "aejax._validate",
    "get_activation": "aejax.activations",
    "helu": "aejax.activations",
    "sign": "aejax.activations",
    "Model": "aejax.bound",
    "enable_compilation_cache": "aejax.cache",
    "TrainConfig": "aejax.config",
    "default_hparams": "aejax.hparams",
    "named": "aejax.identity",
    "Architecture": "aejax.model",
    "Params": "aejax.model",
    "apply": "aejax.model",
    "decode": "aejax.model",
    "encode": "aejax.model",
    "init": "aejax.model",
    "load_results": "aejax.results",
    "exact_risk": "aejax.risk",
    "mc_risk": "aejax.risk",
    "optimal_decoder": "aejax.risk",
    "initialize_cluster": "aejax.shards",
    "sweep": "aejax.sweeping",
    "sweep_shard": "aejax.sweeping",
    "make_train": "aejax.train",
    "run_key": "aejax.train",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (see ``_HOMES``); a submodule such as
    ``aejax.theory`` or ``aejax.nn`` likewise."""
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"aejax.{name}") is not None:
        value = importlib.import_module(f"aejax.{name}")
    else:
        raise AttributeError(f"module 'aejax' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Architecture",
    "InputError",
    "InputTypeError",
    "Model",
    "Params",
    "TrainConfig",
    "activations",
    "apply",
    "decode",
    "default_hparams",
    "enable_compilation_cache",
    "encode",
    "exact_risk",
    "get_activation",
    "helu",
    "init",
    "initialize_cluster",
    "load_results",
    "make_train",
    "mc_risk",
    "named",
    "nn",
    "optimal_decoder",
    "run_key",
    "scaling",
    "sign",
    "sources",
    "sweep",
    "sweep_shard",
    "theory",
]
