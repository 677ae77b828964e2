"""``Model``: a ``TrainConfig`` bound to its swept numbers, the one object that evaluates a run.

``TrainConfig.bind(hparams)`` returns a ``Model``: the config plus the swept numbers (learning rate
``lr``, surrogate ``slope``, HeLU/hysteresis ``margin``, ``rate`` and sparsity ``p``) as traced
leaves. It knows how a run's autoencoder is applied, which data it sees, how its exact and Monte
Carlo risks are computed and what its per-run record holds (``aejax.record``); training, sweeps,
the CLI and the reproductions all evaluate runs through it.

Examples:
    >>> import jax
    >>> from aejax import TrainConfig
    >>> model = TrainConfig(d=32, n=16, steps=100).bind({"rate": 0.25})
    >>> params = model.init(jax.random.key(0))
    >>> round(float(model.exact_risk(params)), 4)  # the initial decoder is zero: R = tr Σ / d
    1.0
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from aejax import _validate, record
from aejax.config import TrainConfig
from aejax.decoders import NonlinearDecoder, init_params
from aejax.model import Architecture, Params, init, rate_mask
from aejax.risk import dataset_risk, exact_risk, mc_risk
from aejax.sources import Empirical, SecondMoments, Source, gaussian_equivalent, make_source

Array = jax.Array
_SOURCE_PRIORS = {"gaussian": "bg", "bernoulli_gaussian": "bg", "bg": "bg", "sparse_rademacher": "sr", "sr": "sr"}


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A ``TrainConfig`` bound to its swept numbers: the one object that evaluates a run.

    A pytree whose ``config`` is static and whose ``hparams`` (a dict of float32 arrays) and
    ``data`` (the source objects of ``TrainConfig.data``, whose arrays are leaves) are leaves, so
    it can be built inside ``jit`` and ``vmap``-ed. Build it with ``config.bind(hparams)``.

    Examples:
        >>> from aejax import TrainConfig
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
