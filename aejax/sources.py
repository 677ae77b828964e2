"""Data distributions as pure samplers (docs/theory.md §1, §4).

Each source is a frozen pytree: its dimension ``d`` is static structure, its numbers (sparsity
``p``, spectrum, covariance factor, data) are leaves, so a source can be built inside jit and
vmapped over ``p``. ``sample(key, batch)`` is pure and returns a ``(batch, d)`` array.
Sparse sources have unit variance per coordinate.

Examples:
    >>> import jax
    >>> x = BernoulliGaussian(d=8, p=0.25).sample(jax.random.key(0), 4)
    >>> x.shape
    (4, 8)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from aejax import _validate
from aejax.identity import array_digest, describe
from aejax.preprocessing import fit_preprocessing

Array = jax.Array


class Source:
    """Base class: pytree plumbing, content identity and the interface every source provides.

    A source is a frozen dataclass (``@dataclasses.dataclass(frozen=True)``) that implements
    ``sample(key, batch)`` (and, for the exact risk of a Gaussian source, ``cov_apply`` and
    ``cov_trace``). Its arrays are pytree leaves, so new data of the same shape never recompiles
    and is never baked into a compiled program as constants; every other field is static structure
    (hashable: ``d``, flags, names). By default a field is a leaf when it holds an array (NumPy or
    JAX, or a tracer), so give numbers that should be traced or vmapped as arrays
    (``jnp.asarray(0.3)``); a subclass may instead list its leaves in ``_leaves``, and an array
    found in any other field is then an error that names the field. Unflattening skips
    ``__init__`` so that validation never sees tracers twice.

    Sources compare and hash by content (type, static fields and the bytes of their arrays), so
    identical data in a new object hits every cache and sweep fingerprint
    (``content_description``).

    Examples:
        >>> import dataclasses, jax, jax.numpy as jnp
        >>> @dataclasses.dataclass(frozen=True)
        ... class Scaled(Source):
        ...     d: int
        ...     scale: jax.Array
        ...     def sample(self, key, batch):
        ...         return self.scale * jax.random.normal(key, (batch, self.d))
        >>> jax.tree_util.tree_leaves(Scaled(3, jnp.ones(3)))
        [Array([1., 1., 1.], dtype=float32)]
        >>> Scaled(3, jnp.ones(3)) == Scaled(3, jnp.ones(3))
        True
    """

    _leaves: ClassVar[tuple[str, ...] | None] = None
    d: int
    is_gaussian: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # set in the subclass's own namespace, so that @dataclass (eq=True by default) keeps them
        cls.__eq__ = Source.__eq__
        cls.__hash__ = Source.__hash__
        jax.tree_util.register_pytree_node(cls, cls._flatten, cls._unflatten)

    def _fields(self) -> tuple[dataclasses.Field, ...]:
        if not dataclasses.is_dataclass(self):
            raise _validate.InputTypeError(
                f"{type(self).__name__} must be a dataclass: declare it with @dataclasses.dataclass(frozen=True)"
            )
        return dataclasses.fields(self)

    def _leaf_names(self) -> tuple[str, ...]:
        names = [f.name for f in self._fields()]
        if self._leaves is not None:
            for name in names:
                if name not in self._leaves and _is_array(getattr(self, name)):
                    raise _validate.InputTypeError(
                        f"field {name!r} of {type(self).__name__} holds an array but is not in _leaves "
                        f"{self._leaves}: add it to _leaves (or drop _leaves, and every array field is a leaf)"
                    )
            return tuple(self._leaves)
        return tuple(name for name in names if _is_array(getattr(self, name)))

    def _flatten(self):
        leaves = self._leaf_names()
        static = tuple((f.name, getattr(self, f.name)) for f in self._fields() if f.name not in leaves)
        for name, value in static:
            try:
                hash(value)
            except TypeError:
                raise _validate.InputTypeError(
                    f"field {name!r} of {type(self).__name__} is static structure and must be hashable, got "
                    f"{type(value).__name__}: make it an array (a leaf), a tuple or a number"
                ) from None
        return tuple(getattr(self, name) for name in leaves), (static, leaves)

    @classmethod
    def _unflatten(cls, aux, leaves):
        static, names = aux
        obj = object.__new__(cls)
        for name, value in (*static, *zip(names, leaves, strict=True)):
            object.__setattr__(obj, name, value)
        return obj

    def content_description(self) -> dict[str, Any]:
        """JSON-able identity, the same in every process: type, static fields, SHA-1 of the arrays.

        Examples:
            >>> Gaussian(2, spectrum=[1.0, 2.0]).content_description()["type"]
            'aejax.sources:Gaussian'
        """
        leaves, (static, _) = self._flatten()
        cls = type(self)
        return {
            "type": f"{cls.__module__}:{cls.__qualname__}",
            **{name: describe(f"{cls.__name__}.{name}", value) for name, value in static},
            "sha1": array_digest([a for a in jax.tree_util.tree_leaves(leaves)]),
        }

    def _content_key(self) -> Any:
        """``(type, static, digest)``, cached; ``None`` while any leaf is a tracer."""
        cached = self.__dict__.get("_aejax_content_key")
        if cached is not None:
            return cached
        leaves, (static, _) = self._flatten()
        arrays = jax.tree_util.tree_leaves(leaves)
        if any(isinstance(a, Tracer) for a in arrays):
            return None
        key = (type(self), static, array_digest(arrays))
        object.__setattr__(self, "_aejax_content_key", key)
        return key

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = self._content_key(), other._content_key()  # pyright: ignore[reportAttributeAccessIssue]
        return mine is not None and mine == theirs

    def __hash__(self) -> int:
        key = self._content_key()
        return id(self) if key is None else hash(key)

    def sample(self, key: Array, batch: int) -> Array:
        """Draw ``batch`` independent samples, shape ``(batch, d)``."""
        raise NotImplementedError

    def covariance(self) -> Array:
        """The ``(d, d)`` covariance matrix ``E[x xᵀ]`` (sources are centred)."""
        return self.cov_apply(jnp.eye(self.d))

    def cov_apply(self, m: Array) -> Array:
        """``Σ @ m`` for a ``(d, k)`` matrix ``m``, without forming Σ where it is structured."""
        return m

    def cov_trace(self) -> Array:
        """``tr Σ``."""
        return jnp.asarray(float(self.d))


@dataclasses.dataclass(frozen=True, eq=False)
class Gaussian(Source):
    """Centred Gaussian ``N(0, Σ)``: isotropic, diagonal (``spectrum``) or full (``covariance``).

    Args:
        d: dimension.
        spectrum: optional ``(d,)`` variances; Σ = diag(spectrum).
        covariance: optional ``(d, d)`` symmetric positive semi-definite matrix.

    Examples:
        >>> Gaussian(4, spectrum=[2.0, 1.0, 0.5, 0.5]).cov_trace()
        Array(4., dtype=float32)
    """

    _leaves: ClassVar[tuple[str, ...] | None] = ("spectrum", "cov", "factor")
    is_gaussian: ClassVar[bool] = True
    d: int
    spectrum: Any = None
    cov: Any = dataclasses.field(init=False, default=None)
    factor: Any = dataclasses.field(init=False, default=None)

    def __init__(self, d: int, spectrum: Any = None, covariance: Any = None):
        object.__setattr__(self, "d", _validate.positive_int("d", d))
        if spectrum is not None and covariance is not None:
            raise _validate.InputError("give at most one of spectrum and covariance, got both")
        object.__setattr__(self, "spectrum", None if spectrum is None else _spectrum(d, spectrum))
        object.__setattr__(self, "cov", None)
        object.__setattr__(self, "factor", None)
        if covariance is not None:
            cov, factor = _covariance_and_factor(d, covariance)
            object.__setattr__(self, "cov", cov)
            object.__setattr__(self, "factor", factor)

    def sample(self, key: Array, batch: int) -> Array:
        z = jax.random.normal(key, (batch, self.d))
        if self.spectrum is not None:
            return z * jnp.sqrt(self.spectrum)
        if self.factor is not None:
            return z @ self.factor.T
        return z

    def cov_apply(self, m: Array) -> Array:
        if self.spectrum is not None:
            return self.spectrum[:, None] * m
        if self.cov is not None:
            return self.cov @ m
        return m

    def cov_trace(self) -> Array:
        if self.spectrum is not None:
            return jnp.sum(self.spectrum)
        if self.cov is not None:
            return jnp.trace(self.cov)
        return jnp.asarray(float(self.d))


@dataclasses.dataclass(frozen=True, eq=False)
class SparseSource(Source):
    """A coordinate is non-zero with probability ``p``, then ``nonzero(key, shape) / sqrt(p)``
    with a unit-variance law, so ``E x_i² = 1``; ``p`` is a leaf (vmappable, traced)."""

    _leaves: ClassVar[tuple[str, ...] | None] = ("p",)
    d: int
    p: Any

    def __post_init__(self):
        object.__setattr__(self, "d", _validate.positive_int("d", self.d))
        object.__setattr__(self, "p", _validate.probability("p", self.p))

    def nonzero(self, key: Array, shape: tuple[int, ...]) -> Array:
        """Unit-variance values of the non-zero coordinates."""
        raise NotImplementedError

    def sample(self, key: Array, batch: int) -> Array:
        k_support, k_value = jax.random.split(key)
        on = jax.random.uniform(k_support, (batch, self.d)) < self.p
        return jnp.where(on, self.nonzero(k_value, (batch, self.d)) / jnp.sqrt(self.p), 0.0)


@dataclasses.dataclass(frozen=True, eq=False)
class BernoulliGaussian(SparseSource):
    """Bernoulli–Gaussian BG(p): ``x_i = β_i g_i``, ``β_i ~ Bern(p)``, ``g_i ~ N(0, 1/p)``.

    Examples:
        >>> BernoulliGaussian(16, 0.1).sample(jax.random.key(1), 2).shape
        (2, 16)
    """

    def nonzero(self, key: Array, shape: tuple[int, ...]) -> Array:
        return jax.random.normal(key, shape)


@dataclasses.dataclass(frozen=True, eq=False)
class SparseRademacher(SparseSource):
    """Sparse Rademacher SR(p): ``x_i ∈ {0, ±1/sqrt(p)}`` with ``P(x_i ≠ 0) = p``.

    Examples:
        >>> SparseRademacher(16, 0.5).sample(jax.random.key(2), 3).shape
        (3, 16)
    """

    def nonzero(self, key: Array, shape: tuple[int, ...]) -> Array:
        return jax.random.rademacher(key, shape, dtype=jnp.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class Empirical(Source):
    """Real data: rows of ``data`` drawn uniformly with replacement, after preprocessing.

    Preprocessing (eager, in float64 NumPy): centring; then either whitening — ``"pca"`` (rotate
    to the principal axes, keep ``components`` of them, scale each to unit variance) or ``"zca"``
    (whiten and rotate back) — or, without whitening, one global scale so that ``tr Σ / d = 1``.
    Whitening refuses directions whose variance is below ``eig_floor`` times the largest one.

    Args:
        data: ``(samples, d)`` array of finite numbers without constant columns.
        center: subtract the column means.
        whiten: ``None``, ``"pca"`` or ``"zca"``.
        components: number of principal components kept by ``"pca"`` (default: all).
        eig_floor: relative eigenvalue floor for whitening.
        preprocessing: an ``aejax.preprocessing.Preprocessing`` fitted elsewhere (e.g. on a training split)
            to apply instead of fitting one on ``data``; the other options are then ignored.

    Examples:
        >>> import numpy as np
        >>> src = Empirical(np.random.default_rng(0).normal(size=(100, 5)), whiten="zca")
        >>> bool(jnp.allclose(src.covariance(), jnp.eye(5), atol=1e-4))
        True
    """

    _leaves: ClassVar[tuple[str, ...] | None] = ("data",)
    data: Any
    d: int = dataclasses.field(init=False)

    def __init__(
        self,
        data: Any,
        center: bool = True,
        whiten: str | None = None,
        components: int | None = None,
        eig_floor: float = 1e-6,
        *,
        preprocessing: Any = None,
    ):

        if preprocessing is None:
            preprocessing = fit_preprocessing(data, center, whiten, components, eig_floor)
        object.__setattr__(self, "data", jnp.asarray(preprocessing.apply(data), dtype=jnp.float32))
        object.__setattr__(self, "d", int(self.data.shape[1]))

    def sample(self, key: Array, batch: int) -> Array:
        return self.data[jax.random.randint(key, (batch,), 0, self.data.shape[0])]

    def cov_apply(self, m: Array) -> Array:
        return self.data.T @ (self.data @ m) / self.data.shape[0]

    def cov_trace(self) -> Array:
        return jnp.sum(self.data**2) / self.data.shape[0]


@dataclasses.dataclass(frozen=True, eq=False)
class SecondMoments(Source):
    """The centred Gaussian with the second moments ``E[x xᵀ] = rowsᵀ rows / m`` of ``rows``, applied
    without forming the covariance, so that ``rows`` may be traced (``Model.gaussian_equivalent_risk``
    inside a compiled run; ``gaussian_equivalent`` builds it on the host in float64).

    Examples:
        >>> SecondMoments(2, jnp.asarray([[1.0, 0.0], [0.0, 3.0]])).cov_trace()
        Array(5., dtype=float32)
    """

    _leaves: ClassVar[tuple[str, ...] | None] = ("rows",)
    is_gaussian: ClassVar[bool] = True
    d: int
    rows: Any

    def sample(self, key: Array, batch: int) -> Array:
        return jax.random.normal(key, (batch, self.rows.shape[0])) @ self.rows / jnp.sqrt(self.rows.shape[0])

    def cov_apply(self, m: Array) -> Array:
        return self.rows.T @ (self.rows @ m) / self.rows.shape[0]

    def cov_trace(self) -> Array:
        return jnp.sum(self.rows**2) / self.rows.shape[0]


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


def _is_array(value: Any) -> bool:
    return isinstance(value, (jax.Array, np.ndarray))


SOURCES = {"gaussian": Gaussian, "bernoulli_gaussian": BernoulliGaussian, "sparse_rademacher": SparseRademacher}
SOURCE_ALIASES = {"bg": "bernoulli_gaussian", "sr": "sparse_rademacher"}


def make_source(name: str, d: int, p: Any = None) -> Source:
    """Build a source by name (``gaussian``, ``bernoulli_gaussian``/``bg``, ``sparse_rademacher``/``sr``).

    Args:
        name: source name.
        d: dimension.
        p: sparsity for the sparse sources (may be traced); ignored for ``gaussian``.

    Returns:
        The source object.

    Examples:
        >>> make_source("bg", 4, p=0.5).p
        0.5
    """
    name = SOURCE_ALIASES.get(name, name)
    _validate.choice("source", name, [*SOURCES, *SOURCE_ALIASES])
    if name == "gaussian":
        return Gaussian(d)
    return SOURCES[name](d, 1.0 if p is None else p)


def _spectrum(d: int, spectrum: Any) -> Array:
    if np.shape(spectrum) != (d,):
        raise _validate.InputError(f"spectrum must have shape ({d},) to match d={d}, got shape {np.shape(spectrum)}")
    if not _validate.is_concrete(spectrum):  # built inside jit from traced numbers: checked where concrete
        return jnp.asarray(spectrum, dtype=jnp.float32)
    arr = np.asarray(spectrum, dtype=np.float64)
    _validate.positive_number("spectrum", arr, allow_zero=True)
    if arr.sum() > np.finfo(np.float32).max:
        raise _validate.InputError(f"spectrum must fit float32: its total variance {arr.sum():.3g} overflows float32")
    return jnp.asarray(arr, dtype=jnp.float32)


def _covariance_and_factor(d: int, covariance: Any) -> tuple[Array, Array]:
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.shape != (d, d):
        raise _validate.InputError(f"covariance must have shape ({d}, {d}) to match d={d}, got shape {cov.shape}")
    _validate.finite_array("covariance", cov)
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-8 * max(1.0, np.abs(cov).max())):
        raise _validate.InputError("covariance must be symmetric")
    eigval, eigvec = np.linalg.eigh(cov)
    if eigval.min() < -1e-8 * max(1.0, eigval.max()):
        raise _validate.InputError(
            f"covariance must be positive semi-definite; its smallest eigenvalue is {eigval.min():.3g}"
        )
    factor = eigvec * np.sqrt(np.clip(eigval, 0, None))
    return jnp.asarray(cov, dtype=jnp.float32), jnp.asarray(factor, dtype=jnp.float32)
