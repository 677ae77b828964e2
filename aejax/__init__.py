"""aejax: a JAX simulation engine for two-layer autoencoders x̂ = A σ(Bx) in the proportional regime.

Example:
    >>> import jax, aejax
    >>> cfg = aejax.TrainConfig(d=32, n=16, steps=100, mode="population")
    >>> params, trace = aejax.make_train(cfg)(jax.random.key(0), {"lr": 0.05})
    >>> float(trace["risk"][-1]) < 0.75
    True
"""

from aejax import activations, nn, sources, theory
from aejax.activations import get_activation, helu, sign
from aejax.model import Params, apply, decode, encode, init
from aejax.results import load_results
from aejax.risk import exact_risk, mc_risk, optimal_decoder
from aejax.sweep import run_key, sweep
from aejax.train import TrainConfig, default_hparams, make_train

from aejax._version import __version__ as __version__

__all__ = [
    "Params", "TrainConfig", "activations", "apply", "decode", "default_hparams", "encode", "exact_risk",
    "get_activation", "helu", "init", "load_results", "make_train", "mc_risk", "nn", "optimal_decoder", "sign", "sources",
    "run_key", "sweep", "theory",
]
