"""Centring and whitening of real data (NumPy, eager): the statistics ``Empirical`` sources and the
data loaders share.

``fit_preprocessing`` learns a ``Preprocessing`` (mean and linear transform) from data; PCA keeps
the leading components and skips zero- and near-zero-variance directions, ZCA and full PCA refuse
rank deficiency with a message naming the option that works.

Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 4)) * [1.0, 2.0, 3.0, 4.0]
    >>> z = preprocess(x, whiten="zca")
    >>> bool(np.allclose(np.cov(z.T, bias=True), np.eye(4), atol=1e-6))
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from aejax import _validate

WHITENINGS = ("pca", "zca")


@dataclasses.dataclass(frozen=True, eq=False)
class Preprocessing:
    """Fitted preprocessing ``x ↦ (x − mean) @ transform`` (see ``fit_preprocessing``).

    Attributes:
        mean: ``(d,)`` column means subtracted (zeros without centring).
        transform: ``(d, k)`` matrix: a global scale times the identity (no whitening), the PCA
            whitening map (k = components) or the ZCA one (k = d). Columns constant in the fitted
            data (dropped, or never needed by PCA) have zero rows, so other data's values there
            are ignored.
        eigenvalues: ``(d,)`` covariance eigenvalues of the fitted data, largest first.
        constant_columns: indices of the columns constant in the fitted data.
        rank: numerical rank of the fitted covariance (eigenvalues at or above the floor).
        ignored_directions: directions of zero or near-zero variance (below the floor, constant
            columns included) that the output leaves out: ``d − rank`` when whitening, the number
            of dropped constant columns without whitening.

    Examples:
        >>> prep = fit_preprocessing(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 2.0]]))
        >>> prep.apply(np.array([[2.0, 2.0]]))
        array([[0., 0.]])
    """

    mean: np.ndarray
    transform: np.ndarray
    eigenvalues: np.ndarray
    constant_columns: tuple[int, ...] = ()
    rank: int | None = None
    ignored_directions: int = 0

    def apply(self, data: Any) -> np.ndarray:
        """Transform ``(samples, d)`` data with the fitted statistics; returns ``(samples, k)``."""
        x = check_data(data, min_samples=1)
        if x.shape[1] != self.mean.shape[0]:
            raise _validate.InputError(
                f"data has {x.shape[1]} columns but the preprocessing was fitted on {self.mean.shape[0]}"
            )
        return (x - self.mean) @ self.transform

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: input and output dimensions, rank, constant columns, ignored directions.

        Examples:
            >>> x = np.c_[np.random.default_rng(0).normal(size=(20, 3)), np.zeros(20)]
            >>> fit_preprocessing(x, whiten="pca", components=2).describe()["ignored_directions"]
            1
        """
        return {
            "input_d": int(self.transform.shape[0]),
            "d": int(self.transform.shape[1]),
            "rank": self.rank,
            "constant_columns": len(self.constant_columns),
            "ignored_directions": int(self.ignored_directions),
        }


def fit_preprocessing(
    data: Any,
    center: bool = True,
    whiten: str | None = None,
    components: int | None = None,
    eig_floor: float = 1e-6,
    drop_constant: bool = False,
) -> Preprocessing:
    """Fit centring and scaling or whitening on ``data`` (float64).

    Without whitening, one global scale makes ``tr Σ / d = 1`` (unit variance per coordinate on
    average, the sources' normalisation). ``"pca"`` rotates to the principal axes, keeps the
    ``components`` largest and scales each to unit variance; ``"zca"`` whitens and rotates back.
    Σ is the second-moment matrix of the (centred) data.

    Rank deficiency (e.g. image pixels that are always blank, or blank in a training split): PCA
    with ``components`` at most the numerical rank ignores the zero- and near-zero-variance
    directions (it never needs them; ``Preprocessing.ignored_directions`` says how many there
    were). ZCA and full PCA refuse a rank-deficient covariance, naming the rank and the option
    that works; ``drop_constant=True`` removes constant columns first (the output then has fewer
    coordinates), which is enough when they are the only deficiency.

    Args:
        data: ``(samples, d)`` finite numbers, at least 2 samples; without whitening and without
            ``drop_constant``, no constant columns.
        center: subtract the column means.
        whiten: ``None``, ``"pca"`` or ``"zca"``.
        components: principal components kept by ``"pca"`` (default all d, or all non-constant
            columns with ``drop_constant``).
        eig_floor: relative eigenvalue floor for whitening, in (0, 1).
        drop_constant: leave out the columns constant in ``data`` (zero rows of the transform).

    Returns:
        A ``Preprocessing``.

    Examples:
        >>> x = np.random.default_rng(1).normal(size=(50, 3)) * [1.0, 2.0, 3.0]
        >>> fit_preprocessing(x, whiten="pca", components=2).apply(x).shape
        (50, 2)
        >>> blank = np.c_[x, np.zeros(50)]  # a column that is always zero
        >>> fit_preprocessing(blank, whiten="zca")  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        aejax.InputError: cannot whiten: the data covariance has numerical rank 3 < 4 at eig_floor=1e-06
        (1 constant column(s), e.g. [3]); use whiten='pca' with components<=3, or drop_constant=True
        >>> fit_preprocessing(blank, whiten="zca", drop_constant=True).apply(blank).shape
        (50, 3)
    """
    x = check_data(data)
    _check_options(whiten, eig_floor, drop_constant)
    d = x.shape[1]
    # Work on x / 2^e with 2^e ≈ max|x| (exact in binary): data at 1e-300 or 1e300 would otherwise
    # underflow to a zero covariance (NaN transform) or overflow in xᵀx. ``scale`` undoes it at the end.
    scale = float(np.ldexp(1.0, np.frexp(np.max(np.abs(x)))[1]))
    x = x / scale
    constant, kept = _split_columns(x, whiten, drop_constant)
    mean = x.mean(axis=0) if center else np.zeros(d)
    eigval, eigvec, rank = _spectrum(x[:, kept] - mean[kept], eig_floor)
    if whiten is None:
        transform = np.zeros((d, kept.size))
        transform[kept, np.arange(kept.size)] = np.sqrt(kept.size / np.sum(eigval))
        ignored = int(constant.size)
    else:
        k = _components(components, whiten, d, kept, constant, rank, drop_constant, eig_floor)
        transform = _whitening(eigval, eigvec, kept, d, k, whiten)
        ignored = d - rank
    with np.errstate(under="ignore", over="ignore"):  # Σ's own eigenvalues: may under/overflow
        true_eigval = np.r_[eigval, np.zeros(constant.size)] * np.float64(scale) * np.float64(scale)
    return Preprocessing(
        mean * scale,
        transform / scale,
        true_eigval,
        ignored_directions=ignored,
        constant_columns=tuple(constant.tolist()),
        rank=rank,
    )


def _check_options(whiten: str | None, eig_floor: float, drop_constant: bool) -> None:
    """``fit_preprocessing``'s options: ``eig_floor`` in (0, 1), ``whiten`` a name, ``drop_constant`` a bool."""
    if not 0 < eig_floor < 1:
        raise _validate.InputError(
            f"eig_floor must be in (0, 1) (relative to the largest eigenvalue), got {eig_floor!r}"
        )
    if whiten is not None:
        _validate.choice("whiten", whiten, WHITENINGS)
    _validate.boolean("drop_constant", drop_constant)


def _split_columns(x: np.ndarray, whiten: str | None, drop_constant: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the constant and of the other columns; an error if all are constant, or if some are and
    neither whitening nor ``drop_constant`` can leave them out."""
    d = x.shape[1]
    constant = np.nonzero(np.ptp(x, axis=0) == 0)[0]
    kept = np.nonzero(np.ptp(x, axis=0) > 0)[0]
    if kept.size == 0:
        raise _validate.InputError(f"data has only constant columns ({d} of them); nothing to preprocess")
    if constant.size and whiten is None and not drop_constant:
        raise _validate.InputError(
            f"data has constant columns {constant[:10].tolist()} (zero variance); pass "
            "drop_constant=True, or whiten='pca' with components"
        )
    return constant, kept


def _spectrum(centred: np.ndarray, eig_floor: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Eigenvalues (largest first) and eigenvectors of the second-moment matrix of ``centred`` rows, and its
    numerical rank: the eigenvalues at least ``eig_floor`` times the largest."""
    eigval, eigvec = np.linalg.eigh(centred.T @ centred / centred.shape[0])
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
    rank = int(np.sum(eigval >= eig_floor * eigval[0]))
    return eigval, eigvec, rank


def _components(
    components: int | None,
    whiten: str,
    d: int,
    kept: np.ndarray,
    constant: np.ndarray,
    rank: int,
    drop_constant: bool,
    eig_floor: float,
) -> int:
    """The number of whitened components: ``components`` (default all allowed), at most the allowed columns
    (all of them for zca) and at most the rank (else an error naming the option that works)."""
    allowed = kept.size if drop_constant else d
    k = allowed if components is None else _validate.positive_int("components", components)
    if k > allowed or (whiten == "zca" and k != allowed):
        raise _validate.InputError(
            f"components must be at most d={allowed} (and all of them for zca), got {components}"
        )
    if k > rank:
        constants = (
            f" ({constant.size} constant column(s), e.g. {constant[:5].tolist()})"
            if constant.size and not drop_constant
            else ""
        )
        hint = ", or drop_constant=True" if constant.size and not drop_constant and rank == kept.size else ""
        raise _validate.InputError(
            f"cannot whiten: the data covariance has numerical rank {rank} < {k} at eig_floor="
            f"{eig_floor:g}{constants}; use whiten='pca' with components<={rank}{hint}"
        )
    return k


def _whitening(eigval: np.ndarray, eigvec: np.ndarray, kept: np.ndarray, d: int, k: int, whiten: str) -> np.ndarray:
    """The ``(d, k)`` PCA transform onto the ``k`` leading axes at unit variance (for zca rotated back),
    zero in the rows of the columns left out."""
    kept_transform = eigvec[:, :k] / np.sqrt(eigval[:k])
    if whiten == "zca":
        kept_transform = kept_transform @ eigvec[:, :k].T
    transform = np.zeros((d, kept_transform.shape[1]))
    transform[kept] = kept_transform
    return transform


def preprocess(
    data: Any,
    center: bool = True,
    whiten: str | None = None,
    components: int | None = None,
    eig_floor: float = 1e-6,
    drop_constant: bool = False,
) -> np.ndarray:
    """``fit_preprocessing(data, ...).apply(data)``: preprocess data with its own statistics.

    Examples:
        >>> x = np.random.default_rng(2).normal(size=(40, 3)) + 5
        >>> bool(np.allclose(preprocess(x).mean(axis=0), 0))
        True
    """
    return fit_preprocessing(data, center, whiten, components, eig_floor, drop_constant).apply(data)


def check_data(data: Any, min_samples: int = 2) -> np.ndarray:
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < min_samples or x.shape[1] < 1:
        raise _validate.InputError(
            f"data must be a 2-D array (samples, d) with at least {min_samples} "
            f"sample{'s' * (min_samples > 1)}, got shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        rows = np.unique(np.nonzero(~np.isfinite(x))[0])[:5].tolist()
        raise _validate.InputError(f"data must be finite; rows {rows} hold NaN or inf")
    return x
