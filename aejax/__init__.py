"""aejax: a JAX simulation engine for two-layer autoencoders x̂ = A σ(Bx) in the proportional regime.

Examples:
    >>> import jax, aejax
    >>> cfg = aejax.TrainConfig(d=32, n=16, steps=100, mode="population")
    >>> params, trace = aejax.make_train(cfg)(jax.random.key(0), {"lr": 0.05})
    >>> float(trace["risk"][-1]) < 0.75
    True
"""

from typing import TYPE_CHECKING, Any

from aejax import activations, sources, theory
from aejax._validate import InputError, InputTypeError
from aejax._version import __version__ as __version__
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

if TYPE_CHECKING:
    from aejax import nn, scaling

_LAZY = ("nn", "scaling")


def __getattr__(name: str) -> Any:
    """``aejax.nn`` (Flax NNX modules) and ``aejax.scaling`` (fits, with SciPy) are imported on first
    use: importing flax costs about a second that commands and sweeps do not need."""
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"aejax.{name}")
    raise AttributeError(f"module 'aejax' has no attribute {name!r}")


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
